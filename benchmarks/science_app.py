"""Benchmark: the explorer's science views (dashboard/science.py) against the data API they show.

Run from the repository root::

    python benchmarks/science_app.py                  # a 24 h store (benchmarks/query.py's build_store)
    python benchmarks/science_app.py --store demo/demo.zarr --repeat 5

For the whole recording and for one hour of it, each tab is refreshed through
:class:`dashboard.science.SciencePanel` (not served: computed in the calling thread,
as a notebook does; a server runs the same work on a thread of its own) and its plot
built for Bokeh, and the API call it makes is timed alone, both cold
(``CACHE.clear()`` first). Printed: median ms of each and the ratio panel / API
(what drawing adds). The load average is printed before and after: other people's
processes share these cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _median_ms(fn, repeat: int) -> float:
    from data_access.query import CACHE

    times = []
    for _ in range(repeat):
        CACHE.clear()
        begin = time.perf_counter()
        fn()
        times.append((time.perf_counter() - begin) * 1000)
    return statistics.median(times)


def _time_span(atlas, span, repeat: int) -> list[tuple[str, float, float]]:
    """(tab, panel ms, API ms) of the first four tabs for a view of ``span``."""
    from bokeh.document import Document

    from dashboard.science import TABS, SciencePanel
    from dashboard.state import ExplorerState

    state = ExplorerState(atlas)
    state.set_time(*span)
    state.point = span[0] + (span[1] - span[0]) // 2
    panel = SciencePanel(state=state)
    card = panel.__panel__()
    card.collapsed = False
    card.get_root(Document())  # (drawn as on a page: only the tab shown)
    api = {
        "Statistics": lambda: atlas.spectrum_stats(time=state.time_range, period=panel.period),
        "Spectrum": lambda: (atlas.spectrum(time=state.time_range), atlas.spectrum(time=state.point)),
        "Bands": lambda: atlas.band_stats(state.bands, time=state.time_range),
        "Diel": lambda: atlas.diel(),
    }
    out = []
    for i, tab in enumerate(TABS[:4]):

        def refresh(i=i) -> None:
            panel._done.clear()
            panel.active = i
            panel._refresh()

        out.append((tab, _median_ms(refresh, repeat), _median_ms(api[tab], repeat)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="an existing store (default: build a 24 h one)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import holoviews as hv

    hv.extension("bokeh")
    from data_access import open_atlas

    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            path = Path(args.store)
        else:
            from benchmarks.query import build_store

            path = Path(tmp) / "24h.zarr"
            build_store(path, 24 * 3600, seed=0)
        atlas = open_atlas(path)
        first = atlas.time_range[0]
        spans = {"whole": atlas.time_range, "1 h": (first, first + np.timedelta64(3600, "s"))}
        print(f"{'span':>6} {'tab':>10} {'panel ms':>9} {'API ms':>8} {'ratio':>6}")
        for label, span in spans.items():
            for tab, panel_ms, api_ms in _time_span(atlas, span, args.repeat):
                print(f"{label:>6} {tab:>10} {panel_ms:9.0f} {api_ms:8.0f} {panel_ms / api_ms:6.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
