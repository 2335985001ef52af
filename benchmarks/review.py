"""Benchmark: 100 000 selections in the browser: what they add to a pan, and ``n``/``p`` review.

Run from the repository root::

    python benchmarks/review.py                       # 100 000 selections, 40 pans a server, 200 n (+ 20 p)
    python benchmarks/review.py --pans 20 --review 100 --json review.json
    python benchmarks/review.py --store /data/24h.zarr --keep

The selection database's own figures (import, pages, the overlay's query, polls) are
``benchmarks/annotations.py``'s; this script measures what a person sees of them, with
the pieces of ``benchmarks/browser.py`` (imported, not copied): its 24 h store (built
by ``benchmarks/query.py``'s ``build_store`` unless ``--store`` names one), a real
``spectral-atlas serve STORE --annotations DB``, Debian's Chromium at 1500 x 1000
through Playwright (no browser is downloaded), and its in-page monitor, which times
each gesture from its DOM event to the paint of the main plot's new image.

The database: ``--n`` selections (default 100 000) spread uniformly over the day,
0.2-5 s long, bands of 200 Hz to 8 kHz anywhere in 10 Hz..31.9 kHz, six labels
(and one in twenty without), added with ``Annotations.add_many`` in one transaction.

1. Pans. The same ``--pans`` drag pans (seeded: the same drags in each run), half of
   them on a 30 s view and half on a 10 min view (``--pan-spans``), opened by a link
   (``?start=&end=``), each run on a fresh server and browser, with an empty database
   or the full one: empty, full, full, empty, each run half the pans (``--order abba``,
   the default: a drift of the shared machine's load falls on both alike; ``ab``: one
   run of each).
   Per pan: ``pointerup`` to the first paint of a new image of the new time range
   ("first", as ``browser.py``), and to the info pane's new span. The boxes the page
   draws are counted after each pan. Target: p50 and p95 of "first" with the
   selections at most 20 ms above those without.

   The overlay reads only the selections in view: ``SelectionsPanel.boxes`` asks
   the database for them through ``Annotations.spread`` (all, up to ``MAX_BOXES``; else
   the first of each of ``SLICES`` equal stretches of the view); the query's plan is
   printed (it must search the ``(store, start_ns)`` index), and, for views of 30 s to a
   day, the rows it reads and how many of the selections in the view are drawn.

2. Review, on the full server (a new page): a 60 s view at 12:00 by a link; ``n``
   makes the first selection at or after the view's start current, then ``n``
   ``--review`` times, with a ``p`` after every ``--back-every``-th ``n``. Each key is
   timed in the page from its ``keydown`` to the first paint of a new image whose
   extent is that of the selection's view with context (``context_view`` and
   ``ExplorerState.clamped_time``, the app's own functions: the span and half of it
   each side; the band's frequencies kept, or widened to hold it). Before the next
   key: Bokeh's x range equals that view (to 1 ms), the selections panel's readout
   names the selection (``selection ID``; it too is timed), the info pane shows the
   new span, and nothing has arrived for ``SETTLE_S``. Target: p95 key -> new image
   <= 400 ms. A screenshot halfway goes to ``benchmarks/screenshots/4-review.png``.

Figures on this shared 2-core machine are noisy: compare the two runs of one
invocation (the difference, the ratio), not milliseconds across days.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from browser import (  # noqa: E402  (the browser benchmark's store, server, monitor and statistics)
    GESTURE_TIMEOUT_MS,
    IDLE,
    SCREENSHOTS,
    SETTLE_S,
    VIEWPORT,
    _stats,
    build_24h_store,
    cpu_seconds,
    free_port,
    info_facts,
    open_monitored,
    perform,
    rss_mb,
    settle,
    start_server,
    stop_server,
)
from chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (one place for how Chromium is launched)

from dashboard.selections import MAX_BOXES, MAX_LABELS, SLICES, context_view  # noqa: E402
from dashboard.state import ExplorerState  # noqa: E402
from data_access import open_atlas  # noqa: E402
from data_access.annotations import open_annotations  # noqa: E402

log = logging.getLogger("benchmarks.review")

LABELS = ["whistle", "click", "fin_whale", "ship", "unknown", "humpback", ""]
WEIGHTS = [0.35, 0.25, 0.1, 0.1, 0.1, 0.05, 0.05]
TARGET_PAN_EXTRA_MS = 20.0  # p50 and p95 of a pan's first image, with the selections minus without
TARGET_REVIEW_P95_MS = 400.0  # key -> the selection's view painted
PAN_AT = {30: "06:00:00", 600: "18:00:00"}  # where each pan span's view opens (others: 09:00)
REVIEW_AT, REVIEW_SPAN_S = "12:00:00", 60
QUIET_S = 1.5  # after a page has opened, before its first gesture
_NS = np.timedelta64(1, "ns")

# Added after browser.py's MONITOR_JS: keys, the selections panel's readout, the plot's x range, and the
# paint of the image of an expected view.
REVIEW_JS = r"""
(() => {
  const m = window.__atlas;
  const now = () => performance.now();
  window.addEventListener("keydown", (e) => m.events.push(["keydown", now(), e.key]), {capture: true});
  m.readouts = [];
  m.readoutText = () => {
    if (!(m._readout && m._readout.isConnected)) m._readout = m.deepFind("selection-current");
    return m._readout ? (m._readout.shadowRoot || m._readout).textContent : null;
  };
  setInterval(() => {
    const text = m.readoutText();
    if (text !== m.readout) {
      m.readout = text;
      m.readouts.push([now(), text]);
      m.last = now();
    }
  }, 10);
  m.armKey = () => { m.readouts = []; return m.arm(); };
  m.xRange = () => { const r = m.plot().view.model.x_range; return [r.start, r.end]; };
  // The first paint since the key of a new image over [t0, t1] (ms): the image's edge frames may reach
  // beyond the view by up to a column, so its ends are compared within 5% of the span (at least 70 ms).
  m.viewPaint = (t0, t1) => {
    const tol = Math.max(0.05 * (t1 - t0), 70);
    return m.paints.find(([, id, [x, dw]]) =>
      id !== m.armed.image && Math.abs(x - t0) <= tol && Math.abs(x + dw - t1) <= tol) || null;
  };
  m.reviewed = (t0, t1, sid) => {
    const [a, b] = m.xRange();
    return m.viewPaint(t0, t1) != null && Math.abs(a - t0) <= 1 && Math.abs(b - t1) <= 1;
  };
  m.named = (sid) => (m.readoutText() || "").includes(`selection ${sid} `);
  m.reviewRecord = (t0, t1, sid) => {
    const ev = m.events.filter(([type]) => type === "keydown").pop();
    const k = ev ? ev[1] : m.armed.t;
    const p = m.viewPaint(t0, t1);
    const r = m.readouts.find(([t, text]) => t >= k && (text || "").includes(`selection ${sid} `));
    return {...m.record("keydown"), key_event: ev != null, image: p ? p[0] - k : null,
            extent: p ? p[2] : null, readout: r ? r[0] - k : null, x_range: m.xRange()};
  };
  // A pan's record, its first image counted from the pointerup (an image painted before it, sent for
  // something earlier, is counted apart: "early").
  m.panRecord = () => {
    const r = m.record("pointerup");
    const fresh = m.paints.filter(m.fresh);
    const after = fresh.filter(([t]) => t >= r.t0);
    r.early = fresh.length - after.length;
    r.first = after.length ? after[0][0] - r.t0 : null;
    return r;
  };
  // Rows of the selections table shown, and of them those without a peak frequency yet: the page's
  // rows are measured in the background once it opens.
  m.unmeasured = () => {
    let rows = 0, missing = 0;
    const walk = (root) => {
      for (const row of root.querySelectorAll(".tabulator-row")) {
        rows++;
        const cell = row.querySelector('.tabulator-cell[tabulator-field="Peak Freq (Hz)"]');
        if (cell && !cell.textContent.trim()) missing++;
      }
      for (const el of root.querySelectorAll("*")) if (el.shadowRoot) walk(el.shadowRoot);
    };
    walk(document);
    return {rows, missing};
  };
  // The selection boxes drawn (quads but the dark halos under them) and their labels (text glyphs).
  m.boxCount = () => {
    let boxes = 0, labels = 0;
    for (const r of Bokeh.documents[0].all_models) {
      if (r.type !== "GlyphRenderer" || !r.visible) continue;
      const data = r.data_source.data, n = (data instanceof Map ? [...data.values()][0] : Object.values(data)[0]);
      const rows = n ? n.length : 0;
      const line = r.glyph.line_color, color = line && typeof line === "object" ? line.value : line;
      if (r.glyph.type === "Quad" && color !== "black") boxes += rows;
      if (r.glyph.type === "Text") labels += rows;
    }
    return {boxes, labels};
  };
})();
"""


# --- the database ---------------------------------------------------------------------------------


def selections(n: int, start: np.datetime64, seconds: int, seed: int = 17) -> pd.DataFrame:
    """``n`` selections spread over ``seconds`` from ``start``: 0.2-5 s long, bands of 200 Hz..8 kHz."""
    rng = np.random.default_rng(seed)
    length = rng.uniform(0.2e9, 5e9, n).astype(np.int64)
    begin = rng.uniform(0, seconds * 1e9 - 5e9, n).astype(np.int64)
    width = rng.uniform(200, 8000, n)
    low = np.round(rng.uniform(10, 31_900 - width), 1)
    t0 = np.datetime64(start, "ns").astype(np.int64)
    return pd.DataFrame(
        {
            "start": (t0 + begin).astype("datetime64[ns]"),
            "end": (t0 + begin + length).astype("datetime64[ns]"),
            "low_hz": low,
            "high_hz": np.round(low + width, 1),
            "channel": "0",
            "label": rng.choice(LABELS, n, p=WEIGHTS),
        }
    )


def fill(path: Path, store: str, rows: pd.DataFrame) -> float:
    """Add ``rows`` to a new database at ``path`` in one transaction; returns the seconds it took."""
    with open_annotations(path, author="bench") as db:
        tic = time.perf_counter()
        added = db.add_many(store, rows, source="benchmarks/review.py")
        took = time.perf_counter() - tic
    if added != len(rows):
        raise RuntimeError(f"add_many added {added} of {len(rows)} selections")
    return took


def review_order(path: Path, store: str) -> pd.DataFrame:
    """The store's live selections in the order ``n`` steps through them: by start, then by id (the panel's)."""
    with open_annotations(path, readonly=True) as db:
        rows = db.selections(store).set_index("id")
    return rows.sort_index().sort_values("start", kind="stable")


def overlay_reads(path: Path, store: str, first: np.datetime64, last: np.datetime64) -> list[dict]:
    """What the overlay reads for views of several spans at noon (and the whole day), as ``boxes`` asks.

    ``SelectionsPanel.boxes`` reads the selections in view through ``Annotations.spread``: all of
    them up to ``MAX_BOXES``, else the first of each of ``SLICES`` equal stretches; returned per
    span: the rows read, the selections in the view, and how many of those are drawn.
    """
    out = []
    noon = first + (last - first) // 2
    with open_annotations(path, readonly=True) as db:
        for span in (30, 600, 1800, 3600, None):
            if span is None:
                t0, t1 = first, last
            else:
                t0 = noon - np.timedelta64(span * 10**9 // 2, "ns")
                t1 = t0 + np.timedelta64(span * 10**9, "ns")
            tic = time.perf_counter()
            read = db.spread(store, start=t0, end=t1, limit=MAX_BOXES, slices=SLICES, channel="0")
            took = time.perf_counter() - tic
            in_view = db.count(store, start=t0, end=t1, channel="0")
            drawn = int(((read["start"] < t1) & (read["end"] > t0)).sum())
            out.append({"span_s": (t1 - t0) / np.timedelta64(1, "s"), "read": len(read), "in_view": in_view,
                        "drawn_in_view": drawn, "query_ms": took * 1e3})  # fmt: skip
    return out


# --- the page -------------------------------------------------------------------------------------


def ms(t: np.datetime64) -> float:
    """A time as Bokeh's datetime axis holds it: milliseconds since 1970."""
    return float(np.datetime64(t, "ns").astype(np.int64)) / 1e6


def view_url(base: str, day: np.datetime64, at: str, span_s: float) -> str:
    """A link to ``span_s`` seconds from ``at`` (HH:MM:SS) on the store's first day."""
    t0 = np.datetime64(str(day.astype("datetime64[D]")) + "T" + at, "ns")
    t1 = t0 + np.timedelta64(int(span_s * 1e9), "ns")
    return f"{base}?start={np.datetime_as_string(t0, unit='ms')}Z&end={np.datetime_as_string(t1, unit='ms')}Z"


def open_page(context, url: str, errors: list[str]):
    """A new page at ``url``, loaded, colour limits fitted (untimed); returns (page, seconds to the first image)."""
    begin = time.perf_counter()
    page = open_monitored(context, url, errors, [REVIEW_JS])
    settle(page)
    load_s = time.perf_counter() - begin
    # The synthetic store's levels lie above the default 0 dB top: fit the colours once (as browser.py does).
    page.get_by_role("button", name="auto", exact=True).click()
    settle(page)
    # The table's first page is measured in the background (each result redraws the boxes): gestures wait
    # for it, and for QUIET_S of nothing received, painted or changed.
    try:
        page.wait_for_function("() => __atlas.unmeasured().missing === 0", polling=250, timeout=120_000)
    except PlaywrightError:
        log.warning("the table's rows shown were not all measured within 120 s: %s", page.evaluate(
            "() => __atlas.unmeasured()"))  # fmt: skip
    page.wait_for_function(f"() => __atlas.quietFor() >= {QUIET_S * 1e3}", polling=50, timeout=60_000)
    return page, load_s


def pan_params(rng, geo: dict, offset: float) -> tuple[dict, float]:
    """A drag pan of 10-40% of the frame along time (a little in frequency), back towards where it began."""
    u = rng.uniform(size=4)
    frac = 0.1 + 0.3 * u[0]
    direction = 1.0 if u[1] < 0.5 else -1.0  # +1 drags right: earlier times come into view
    if abs(offset + direction * frac) > 1.0:
        direction = -direction
    y0 = geo["top"] + geo["height"] * (0.1 + 0.8 * u[2])
    x0 = geo["left"] + geo["width"] * (0.5 - direction * frac / 2)
    dy = geo["height"] * (0.06 * u[3] - 0.03)
    return {"x0": x0, "y0": y0, "x1": x0 + direction * frac * geo["width"], "y1": y0 + dy}, offset + direction * frac


def pans(page, n: int, seed: int, span_s: float, server: subprocess.Popen) -> list[dict]:
    """``n`` seeded drag pans on the page, each timed as ``browser.py`` times a gesture."""
    rng = np.random.default_rng(seed)
    offset, records = 0.0, []
    for i in range(n):
        geo = page.evaluate("() => __atlas.geometry()")
        params, offset = pan_params(rng, geo, offset)
        page.evaluate("() => __atlas.arm()")
        perform(page, "pan", params)
        timed_out = False
        try:
            page.wait_for_function(f"() => __atlas.drawn() && ({IDLE[6:]})", polling=10, timeout=GESTURE_TIMEOUT_MS)
            page.wait_for_function("() => __atlas.caughtUp()", polling=10, timeout=GESTURE_TIMEOUT_MS)
        except PlaywrightError:
            timed_out = True
        settle(page)
        rec = page.evaluate("() => __atlas.panRecord()")
        facts = info_facts(rec.pop("info"))
        rec.pop("infos")
        rec.update(
            i=i, span=span_s, timed_out=timed_out, span_s=facts["span_s"], read_ms=facts["read_ms"],
            **page.evaluate("() => __atlas.boxCount()"),
        )  # fmt: skip
        records.append(rec)
        log.info(
            "pan %2d (%4.0f s view): first %s, final %s, info pane %s, %d images (+%d of the old range, %d early), "
            "%d boxes, %d labels%s",
            i, span_s, _ms(rec["first"]), _ms(rec["final"]), _ms(rec["caught_up"]), rec["images"],
            rec["same_range_images"], rec["early"], rec["boxes"], rec["labels"], " TIMED OUT" if timed_out else "",
        )  # fmt: skip
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode} after pan {i}")
    return records


def review(page, order: pd.DataFrame, state: ExplorerState, keys: list[str], shot_at: int) -> tuple[list[dict], bytes]:
    """Press ``keys`` (``n``/``p``) one at a time, each timed to the paint of its selection's view."""
    t_view = np.datetime64(round(page.evaluate("() => __atlas.xRange()[0]") * 1e6), "ns")
    starts = order["start"].to_numpy()
    at = None
    freq = tuple(page.evaluate("() => { const r = __atlas.plot().view.model.y_range; return [r.start, r.end]; }"))
    nyquist = state.atlas.freq_range[1]
    records, shot = [], b""
    for i, key in enumerate(keys):
        if at is None:  # no current selection: n shows the first starting at or after the view's start
            at = int(np.searchsorted(starts, t_view, side="left")) - (key == "p")
        else:
            at += 1 if key == "n" else -1
        sid = int(order.index[at])
        row = order.iloc[at]
        (t0, t1), freq = context_view(row["start"], row["end"], row["low_hz"], row["high_hz"], freq, nyquist)
        t0, t1 = state.clamped_time(t0, t1)
        a, b = ms(t0), ms(t1)
        page.evaluate("() => __atlas.armKey()")
        page.keyboard.press(key)
        timed_out = False
        try:
            page.wait_for_function(
                f"([a, b, sid]) => __atlas.reviewed(a, b, sid) && ({IDLE[6:]})",
                arg=[a, b, sid],
                polling=10,
                timeout=GESTURE_TIMEOUT_MS,
            )
            page.wait_for_function("(sid) => __atlas.named(sid)", arg=sid, polling=10, timeout=GESTURE_TIMEOUT_MS)
            page.wait_for_function("() => __atlas.caughtUp()", polling=10, timeout=GESTURE_TIMEOUT_MS)
        except PlaywrightError:
            timed_out = True
        settle(page)
        rec = page.evaluate("([a, b, sid]) => __atlas.reviewRecord(a, b, sid)", [a, b, sid])
        rec.pop("infos")
        facts = info_facts(rec.pop("info"))
        x0, x1 = rec["x_range"]
        rec.update(
            i=i, key=key, sid=sid, timed_out=timed_out, level=facts["level"], read_ms=facts["read_ms"],
            view_ok=abs(x0 - a) <= 1 and abs(x1 - b) <= 1, span_s=(t1 - t0) / np.timedelta64(1, "s"),
            **page.evaluate("() => __atlas.boxCount()"),
        )  # fmt: skip
        records.append(rec)
        log.info(
            "%3d %s -> selection %6d (%5.2f s view): image %s, readout %s, info pane %s, final %s, %d images "
            "(+%d of the old range), %d boxes%s%s",
            i, key, sid, rec["span_s"], _ms(rec["image"]), _ms(rec["readout"]), _ms(rec["caught_up"]),
            _ms(rec["final"]), rec["images"], rec["same_range_images"], rec["boxes"],
            "" if rec["view_ok"] else f" VIEW {x0:.0f}..{x1:.0f} != {a:.0f}..{b:.0f}",
            " TIMED OUT" if timed_out else "",
        )  # fmt: skip
        if i == shot_at:
            page.mouse.move(2, 2)  # no hover tooltip in the picture
            time.sleep(0.2)
            shot = page.screenshot()
    return records, shot


def _ms(value) -> str:
    return "-" if value is None else f"{value:.0f} ms"


# --- runs -----------------------------------------------------------------------------------------


def run(name: str, store: Path, db: Path, spans: list[float], n_pans: int, workdir: Path, args, keys=None) -> dict:
    """A fresh server on ``db`` and a fresh browser: the pans on each span, then (``keys``) the review."""
    port = args.port or free_port()
    log_path = workdir / f"serve-{name}.log"
    log.info("run %r: serving %s with %s on http://127.0.0.1:%d/ (log %s)", name, store.name, db.name, port, log_path)
    server = start_server(store, port, log_path, serve_args=["--annotations", str(db)])
    base = f"http://127.0.0.1:{port}/"
    day = open_atlas(store).time_range[0]
    out: dict = {"name": name, "pans": [], "loads": {}, "rss": {"listening": rss_mb(server)}, "errors": []}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                context = browser.new_context(viewport=VIEWPORT)
                per_span = [n_pans // len(spans) + (k < n_pans % len(spans)) for k in range(len(spans))]
                cpu = dict.fromkeys(("server", "chromium", "wall"), 0.0)
                for k, (span, n) in enumerate(zip(spans, per_span, strict=True)):
                    url = view_url(base, day, PAN_AT.get(int(span), "09:00:00"), span)
                    page, load_s = open_page(context, url, out["errors"])
                    out["loads"][f"{span:g} s view"] = load_s
                    log.info("%s: page at a %g s view loaded in %.1f s", name, span, load_s)
                    before = cpu_seconds(server, None)
                    out["pans"] += pans(page, n, args.seed + k, span, server)
                    after = cpu_seconds(server, None)
                    for key in cpu:
                        cpu[key] += after[key] - before[key]
                    if k == len(spans) - 1 and name.startswith("full") and args.pan_shot:
                        page.mouse.move(2, 2)
                        time.sleep(0.2)
                        (SCREENSHOTS / "5-pans-10-min-view.png").write_bytes(page.screenshot())
                    page.close()
                out["cpu_per_pan"] = {key: value / max(1, len(out["pans"])) for key, value in cpu.items()}
                out["rss"]["after pans"] = rss_mb(server)
                if keys:
                    state = ExplorerState(atlas=open_atlas(store))
                    order = review_order(db, open_atlas(store).name)
                    url = view_url(base, day, REVIEW_AT, REVIEW_SPAN_S)
                    page, load_s = open_page(context, url, out["errors"])
                    out["loads"]["review"] = load_s
                    log.info("%s: review page loaded in %.1f s", name, load_s)
                    cpu_before = cpu_seconds(server, None)
                    out["review"], shot = review(page, order, state, keys, shot_at=len(keys) // 2)
                    cpu_after = cpu_seconds(server, None)
                    out["cpu_per_key"] = {
                        k: (cpu_after[k] - cpu_before[k]) / len(keys) for k in ("server", "chromium", "wall")
                    }
                    if shot:
                        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                        (SCREENSHOTS / "4-review.png").write_bytes(shot)
                    out["rss"]["after review"] = rss_mb(server)
                out["chromium"] = browser.version
            finally:
                browser.close()
    finally:
        out["server_exit"] = server.poll()
        stop_server(server)
    return out


# --- report ---------------------------------------------------------------------------------------


def report(runs: list[dict], args, *, n: int, add_s: float, plan: list[str], reads: list[dict], took_s: float) -> dict:
    """Print the figures and the targets; return the summary."""
    print(f"\nSelections in the browser: headless Chromium {runs[0].get('chromium', '?')}, viewport "
          f"{VIEWPORT['width']}x{VIEWPORT['height']}, a 24 h store")  # fmt: skip
    print(f"machine: nproc {os.cpu_count()}, load average {[round(x, 2) for x in os.getloadavg()]} (1, 5, 15 min), "
          f"python {platform.python_version()}; this run took {took_s / 60:.1f} min")  # fmt: skip
    print(f"database: {n:,} selections over the day (0.2-5 s, bands 200 Hz-8 kHz, {len(LABELS) - 1} labels), "
          f"added in {add_s:.2f} s (add_many, one transaction)")  # fmt: skip
    print(f"overlay query plan (a view's selections, at most {MAX_BOXES} spread over it): {' / '.join(plan)}")
    for r in reads:
        span = "the whole day" if r["span_s"] >= 86_000 else f"a {r['span_s']:g} s view"
        print(f"  {span:<16}: reads {r['read']:>5} rows of {n:,} ({r['query_ms']:.1f} ms); of the "
              f"{r['in_view']} selections in the view, {r['drawn_in_view']} are drawn")  # fmt: skip
    short = [r for r in reads if r["drawn_in_view"] < min(r["in_view"], MAX_BOXES // SLICES * SLICES)]
    if short:
        spans = ", ".join(f"{r['span_s']:g} s" for r in short)
        print(f"NOTE: for {spans} views, fewer selections are drawn than the overlay's {MAX_BOXES}")
    print()
    summary: dict = {"pans": {}, "review": {}}
    groups = {"empty": [r for r in runs if r["name"].startswith("empty")],
              "full": [r for r in runs if r["name"].startswith("full")]}  # fmt: skip
    spans = sorted({p["span"] for r in runs for p in r["pans"]})
    head = f"{'pan (drag): pointerup -> first new image':<44} {'n':>4} {'p50':>6} {'p90':>6} {'p95':>6} {'max':>6}"
    print(head + "\n" + "-" * len(head))
    for what in [*spans, None]:
        for g in ("empty", "full"):
            recs = [p for r in groups[g] for p in r["pans"] if what is None or p["span"] == what]
            s = _stats(p["first"] for p in recs)
            if not s:
                continue
            label = ("empty database" if g == "empty" else f"{n:,} selections") + (
                f", {what:g} s view" if what is not None else ", all"
            )
            boxes = np.median([p["boxes"] for p in recs]) if recs else 0
            summary["pans"][label] = {**s, "boxes_median": float(boxes)}
            print(f"{label:<44} {s['n']:>4} {s['p50']:>6.0f} {s['p90']:>6.0f} {s['p95']:>6.0f} {s['max']:>6.0f}"
                  f"   boxes drawn: median {boxes:.0f}")  # fmt: skip
        a = summary["pans"].get(f"empty database, {what:g} s view" if what is not None else "empty database, all")
        b = summary["pans"].get(f"{n:,} selections, {what:g} s view" if what is not None else f"{n:,} selections, all")
        if a and b:
            d = {q: b[q] - a[q] for q in ("p50", "p90", "p95", "max")}
            summary["pans"][f"difference, {what:g} s view" if what is not None else "difference, all"] = d
            print(f"{'  difference (with - without)':<44} {'':>4} {d['p50']:>+6.0f} {d['p90']:>+6.0f} "
                  f"{d['p95']:>+6.0f} {d['max']:>+6.0f}")  # fmt: skip
    print("(milliseconds)")
    if len(runs) > 2:  # in the order they ran: a drift of the machine's load shows here
        each = [(r["name"], _stats(p["first"] for p in r["pans"])) for r in runs]
        print("each run in turn, first image p50 / p95: "
              + "; ".join(f"{name} {s['p50']:.0f} / {s['p95']:.0f} ms" for name, s in each if s))  # fmt: skip
    for g in ("empty", "full"):
        info = _stats(p["caught_up"] for r in groups[g] for p in r["pans"])
        cpu = [r["cpu_per_pan"] for r in groups[g] if "cpu_per_pan" in r]
        if info and cpu:
            print(f"{g:>5}: pointerup -> info pane's new span p50 {info['p50']:.0f} / p95 {info['p95']:.0f} ms; "
                  f"CPU per pan: server {np.mean([c['server'] for c in cpu]):.3f} s, Chromium "
                  f"{np.mean([c['chromium'] for c in cpu]):.3f} s; page loads "
                  + ", ".join(f"{k} {v:.1f} s" for r in groups[g] for k, v in r["loads"].items()))  # fmt: skip
    timeouts = sum(p["timed_out"] for r in runs for p in r["pans"])
    early = sum(p["early"] > 0 for r in runs for p in r["pans"])
    print(f"pans that drew no new image within {GESTURE_TIMEOUT_MS / 1e3:.0f} s: {timeouts}; pans during whose drag "
          f"a new image (sent for something before) was painted, not timed: {early}")  # fmt: skip

    recs = [x for r in runs for x in r.get("review", [])]
    checks = []
    if recs:
        steps = [x for x in recs if x["i"] > 0]  # (the first n starts from no current selection: shown apart)
        print(f"\n{'review: key -> ':<44} {'n':>4} {'p50':>6} {'p90':>6} {'p95':>6} {'max':>6}")
        print("-" * len(head))
        rows = [
            ("new image of the selection's view, n and p", "image", steps),
            ("  n", "image", [x for x in steps if x["key"] == "n"]),
            ("  p", "image", [x for x in steps if x["key"] == "p"]),
            ("the readout names the selection", "readout", steps),
            ("the info pane shows its span", "caught_up", steps),
            ("last image (nothing new for 0.5 s)", "final", steps),
        ]
        for label, field, sel in rows:
            s = _stats(x[field] for x in sel)
            if s:
                summary["review"][label.strip()] = s
                print(f"{label:<44} {s['n']:>4} {s['p50']:>6.0f} {s['p90']:>6.0f} {s['p95']:>6.0f} {s['max']:>6.0f}")
        print("(milliseconds)")
        first = recs[0]
        print(f"the first n (no current selection yet, from the {REVIEW_SPAN_S} s view): image {_ms(first['image'])}, "
              f"readout {_ms(first['readout'])}")  # fmt: skip
        spans = [x["span_s"] for x in recs]
        wrong = [x["i"] for x in recs if not x["view_ok"] or x["image"] is None or x["readout"] is None]
        cpu = next(r["cpu_per_key"] for r in runs if "cpu_per_key" in r)
        print(f"{len(recs)} keys ({sum(x['key'] == 'n' for x in recs)} n, {sum(x['key'] == 'p' for x in recs)} p); "
              f"views {min(spans):.2f}..{max(spans):.2f} s, levels "
              f"{sorted({x['level'] for x in recs if x['level'] is not None})}; boxes drawn median "
              f"{np.median([x['boxes'] for x in recs]):.0f}; CPU per key: server {cpu['server']:.3f} s, "
              f"Chromium {cpu['chromium']:.3f} s, {cpu['wall']:.2f} s of clock")  # fmt: skip
        print(f"keys whose view, image or readout was not the expected selection's: {len(wrong)}"
              + (f" (at {wrong[:10]})" if wrong else ""))  # fmt: skip
        summary["review"]["wrong"] = wrong
    for r in runs:
        died = f"; THE SERVER EXITED with {r['server_exit']}" if r["server_exit"] is not None else ""
        print(f"server RSS, {r['name']}: " + ", ".join(f"{k} {v:.0f} MB" for k, v in r["rss"].items()) + died)
    errors = [e for r in runs for e in r["errors"]]
    print(f"browser console errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))

    index = next((line.split(" USING ")[1].split(" (")[0] for line in plan if "selections USING" in line), "a scan")
    indexed = index.startswith(("INDEX", "COVERING INDEX"))
    checks.append(("overlay reads the selections in view (time index)", index.lower(), indexed))
    pa, pb = summary["pans"].get("empty database, all"), summary["pans"].get(f"{n:,} selections, all")
    if pa and pb:
        for q in ("p50", "p95"):
            extra = pb[q] - pa[q]
            checks.append((f"pan {q}: with - without <= {TARGET_PAN_EXTRA_MS:g} ms",
                           f"{pb[q]:.0f} - {pa[q]:.0f} = {extra:+.0f} ms", extra <= TARGET_PAN_EXTRA_MS))  # fmt: skip
    if "new image of the selection's view, n and p" in summary["review"]:
        p95 = summary["review"]["new image of the selection's view, n and p"]["p95"]
        checks.append((f"review n/p: key -> new image p95 <= {TARGET_REVIEW_P95_MS:g} ms", f"{p95:.0f} ms",
                       p95 <= TARGET_REVIEW_P95_MS))  # fmt: skip
    print()
    for target, value, ok in checks:
        print(f"target {target:<52} {value:>34}  {'PASS' if ok else 'MISS'}")
    summary["targets"] = [{"target": t, "value": v, "pass": ok} for t, v, ok in checks]
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="selections in the full database (default 100 000)")
    parser.add_argument("--pans", type=int, default=40, help="drag pans on each server (default 40)")
    parser.add_argument("--pan-spans", default="30,600", help="view spans (s) the pans are shared out over")
    parser.add_argument("--review", type=int, default=200, help="n presses after the first (default 200)")
    parser.add_argument("--back-every", type=int, default=10, help="a p after every this many n (0: none)")
    parser.add_argument("--order", choices=("ab", "abba"), default="abba", help="empty, full, full, empty "
                        "with half the pans each (default), or empty then full")  # fmt: skip
    parser.add_argument("--store", type=Path, help="use this 24 h store instead of building one")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (store, databases, server logs)")
    parser.add_argument("--json", type=Path, help="also write the records and summary to this file")
    parser.add_argument("--port", type=int, help="server port (default: a free one)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the pans")
    parser.add_argument("--no-pan-shot", dest="pan_shot", action="store_false", help="no screenshot after the pans")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        parser.error(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_BIN)")
    spans = [float(x) for x in args.pan_spans.split(",")]
    keys = ["n"]
    for k in range(1, args.review + 1):
        keys.append("n")
        if args.back_every and k % args.back_every == 0 and k < args.review:
            keys.append("p")
    begin = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="atlas-review-bench-"))
    failed = False
    try:
        store = args.store or build_24h_store(workdir)
        atlas = open_atlas(store)
        full, empty = workdir / "selections.sqlite", workdir / "empty.sqlite"
        seconds = int((atlas.time_range[1] - atlas.time_range[0]) / np.timedelta64(1, "s"))
        rows = selections(args.n, atlas.time_range[0], seconds)
        add_s = fill(full, atlas.name, rows)
        log.info("%d selections added in %.2f s", args.n, add_s)
        with open_annotations(full, readonly=True) as db:
            t0 = np.datetime64(str(atlas.time_range[0].astype("datetime64[D]")) + "T06:00:00", "ns")
            w = np.timedelta64(30, "s")
            plan = db.query_plan(atlas.name, start=t0, end=t0 + w, channel="0")
        reads = overlay_reads(full, atlas.name, *atlas.time_range)
        if args.order == "ab":
            plan_runs = [("empty", empty, args.pans, False), ("full", full, args.pans, True)]
        else:
            half = args.pans // 2
            rest = args.pans - half
            plan_runs = [("empty-1", empty, half, False), ("full-1", full, half, False),
                         ("full-2", full, rest, True), ("empty-2", empty, rest, False)]  # fmt: skip
        runs = []
        for name, db, n_pans, with_review in plan_runs:
            result = run(name, store, db, spans, n_pans, workdir, args, keys=keys if with_review else None)
            failed = failed or result["server_exit"] is not None
            runs.append(result)
        summary = report(runs, args, n=args.n, add_s=add_s, plan=plan, reads=reads, took_s=time.perf_counter() - begin)
        print(f"screenshots in {SCREENSHOTS.relative_to(ROOT)}/: 4-review.png (halfway through the review)"
              + (", 5-pans-10-min-view.png (after the pans on a 10 min view)" if args.pan_shot else ""))  # fmt: skip
        print(f"(at most {MAX_BOXES} boxes are drawn, with their labels up to {MAX_LABELS}; settle {SETTLE_S:g} s)")
        if args.json:
            record = {"store": str(store), "n": args.n, "add_s": add_s, "plan": plan, "overlay_reads": reads,
                      "runs": runs, "summary": summary}  # fmt: skip
            args.json.write_text(json.dumps(record, indent=2, default=str))
            log.info("wrote %s", args.json)
    except BaseException:
        failed = True
        raise
    finally:
        if args.keep:
            log.info("kept %s", workdir)
        elif failed:
            shutil.rmtree(workdir / "24h.zarr", ignore_errors=True)
            log.info("kept the server logs and databases in %s", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(t["pass"] for t in summary["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
