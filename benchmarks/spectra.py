"""Benchmark: science views (issue 19): scale switches, spectrum statistics and diel maps, at scale.

Run from the repository root::

    python benchmarks/spectra.py                    # 24 h and 30 d stores; 60 views of each scale
    python benchmarks/spectra.py --n 20 --json spectra.json --tmp /data --keep
    python benchmarks/spectra.py --stores-dir DIR   # reuse DIR/24h.zarr and DIR/30d.zarr (from --keep)

The stores are ``benchmarks/query.py``'s (``build_store``: 64 kHz, n_fft 4096, hop
2048, synthetic power, a few real chunks per level and hard links for the rest),
so the reads cost what a real store's do. Timed, each call cold (``CACHE.clear()``
first; the OS page cache is warm, as in ``benchmarks/query.py``):

1. **Scale switch** on the 24 h store: ``--n`` random windows (``query.windows``:
   whole, ~1 h, ~1 min, ~1 s, 30 % with a frequency range, 20 % ``agg="max"``),
   each viewed at 1200 x 600 as ``linear``, ``mel`` (128 rows) and ``log`` (600
   rows). p50/p95 per scale and the ratio to linear in the same run.
   Target: mel and log p95 <= 150 ms.
2. **Spectrum statistics** of the whole 24 h (period 60 s: level 5, 32.8 s
   columns), ``--repeat`` times. Target <= 1 s.
3. **Diel map** of the whole 30 d store, broadband and a 50-500 Hz band, one-hour
   cells (level 7, 524 s columns), ``--repeat`` times. Target <= 2 s.

The load average is printed before and after: other people's processes share these cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from query import HEIGHT, STORES, WIDTH, build_store, stats, windows  # noqa: E402  (benchmarks/query.py)

from data_access import open_atlas  # noqa: E402
from data_access.query import CACHE, warm_up  # noqa: E402

log = logging.getLogger("benchmarks.spectra")

TARGET_SWITCH_P95_MS, TARGET_STATS_S, TARGET_DIEL_S = 150.0, 1.0, 2.0
SCALES = {"linear": {}, "mel": {"freq_scale": "mel", "n_mels": 128}, "log": {"freq_scale": "log"}}


def cold(call):
    """Seconds ``call()`` takes with an empty chunk cache, and its result."""
    CACHE.clear()
    begin = time.perf_counter()
    out = call()
    return time.perf_counter() - begin, out


def time_scales(atlas, rng, n: int) -> dict[str, list[float]]:
    """Milliseconds of cold views of each scale over the same windows, the scales in turn per window."""
    rows: dict[str, list[float]] = {scale: [] for scale in SCALES}
    for w in windows(rng, atlas, n):
        window = {"time": w["time"], "freq": w["freq"], "width": WIDTH, "height": HEIGHT, "agg": w["agg"]}
        for scale, options in SCALES.items():
            seconds, _ = cold(lambda kw={**window, **options}: atlas.view(**kw))
            rows[scale].append(seconds * 1e3)
    return rows


def store(directory: Path, name: str, seed: int) -> Path:
    path = directory / f"{name}.zarr"
    if not path.exists():
        begin = time.perf_counter()
        build_store(path, STORES[name], seed=seed)
        log.info("built %s in %.0f s", path, time.perf_counter() - begin)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="windows of each scale (default 60)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of the statistics and of each diel map")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--tmp", type=Path, help="parent of the working directory (default the system temp)")
    parser.add_argument("--stores-dir", type=Path, help="reuse (or build into) this directory's 24h.zarr, 30d.zarr")
    parser.add_argument("--keep", action="store_true", help="keep the stores (their directory is logged)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    workdir = args.stores_dir or Path(tempfile.mkdtemp(prefix="atlas-spectra-bench-", dir=args.tmp))
    workdir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    try:
        day = open_atlas(store(workdir, "24h", args.seed))
        month = open_atlas(store(workdir, "30d", args.seed + 1))
        warm_up()
        rng = np.random.default_rng(args.seed)
        day.view(width=WIDTH, height=HEIGHT, freq_scale="mel")  # the filterbanks, built once per process
        day.view(width=WIDTH, height=HEIGHT, freq_scale="log")
        switch = time_scales(day, rng, args.n)
        stat_runs = [cold(lambda: day.spectrum_stats(period="60s")) for _ in range(args.repeat)]
        band = (50.0, 500.0)
        diel_runs = {
            "broadband": [cold(lambda: month.diel()) for _ in range(args.repeat)],
            "50-500 Hz": [cold(lambda: month.diel(band=band)) for _ in range(args.repeat)],
        }
    finally:
        if not (args.keep or args.stores_dir):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log.info("stores kept in %s", workdir)
    load_after = os.getloadavg()

    results: dict[str, object] = {"load_before": load_before, "load_after": load_after, "cpus": os.cpu_count()}
    print(f"\nload average before {load_before[0]:.2f} / after {load_after[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"\n1. scale switch, 24 h store, {args.n} cold views of each at {WIDTH} x {HEIGHT}")
    linear = stats(switch["linear"])
    for scale, values in switch.items():
        s = stats(values)
        verdict = "" if scale == "linear" else ("  pass" if s["p95"] <= TARGET_SWITCH_P95_MS else "  MISS")
        print(
            f"   {scale:7s} p50 {s['p50']:7.1f} ms  p95 {s['p95']:7.1f} ms  max {s['max']:7.1f} ms   "
            f"x linear: p50 {s['p50'] / linear['p50']:.2f}, p95 {s['p95'] / linear['p95']:.2f}{verdict}"
        )
        results[f"switch_{scale}"] = s
    seconds = [s for s, _ in stat_runs]
    last = stat_runs[-1][1]
    verdict = "pass" if np.median(seconds) <= TARGET_STATS_S else "MISS"
    print(
        f"\n2. spectrum_stats of 24 h, period 60 s: level {last.attrs['pyramid_level']} "
        f"({last.attrs['period_seconds']:.1f} s), {last.attrs['n_periods']} periods: "
        f"median {np.median(seconds):.3f} s, max {max(seconds):.3f} s (target <= {TARGET_STATS_S:g} s: {verdict})"
    )
    results["stats_s"] = seconds
    print("\n3. diel map of 30 d, one-hour cells")
    for name, runs in diel_runs.items():
        seconds = [s for s, _ in runs]
        grid = runs[-1][1]
        verdict = "pass" if np.median(seconds) <= TARGET_DIEL_S else "MISS"
        print(
            f"   {name:10s} level {grid.attrs['level']} ({grid.attrs['seconds_per_column']:.0f} s), "
            f"{grid.shape[0]} x {grid.shape[1]} cells: median {np.median(seconds):.3f} s, max {max(seconds):.3f} s "
            f"(target <= {TARGET_DIEL_S:g} s: {verdict})"
        )
        results[f"diel_{name}_s"] = seconds
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
