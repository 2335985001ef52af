"""Benchmark: the served explorer on a 24 h store, driven by a real headless Chromium.

Run from the repository root::

    python benchmarks/browser.py                         # build a 24 h store; 50 gestures idle, 50 loaded
    python benchmarks/browser.py --interactions 20 --keep --load none
    python benchmarks/browser.py --store /data/24h.zarr --json browser.json --port 5007

A 24 h store (64 kHz, n_fft 4096, hop 2048) is built cheaply by
``benchmarks/query.py``'s ``build_store`` (a few real chunks per level, the rest
hard links), unless ``--store`` names one. ``spectral-atlas serve`` (as
``python -m dashboard.cli serve``) runs it on 127.0.0.1, and Debian's Chromium
(``/usr/bin/chromium``, through Playwright's ``executable_path``, the arguments of
``tests/test_browser.py``; no browser is downloaded) opens the page at 1500 x 1000 and,
untimed, presses "auto" once (the synthetic store's levels lie above the default 0 dB top).

From the whole day, ``--interactions`` scripted gestures act on the main plot: wheel
zooms in and out at random places (over the time axis, which zooms time only, or over
the image, which zooms time and frequency) and drag pans (mouse down, move, up), going
down to seconds, back up to hours and down again (seeded, so repeatable).

What is measured, per gesture, all in the page (``performance.now()``): from the
browser's ``wheel`` event (zoom) or ``pointerup`` (the end of a drag) to the first
paint of the main plot showing a new image of a new time range ("first image"; a
new image of the time range shown before answers something else and is not timed),
and to the paint of the last image the gesture caused, once nothing has arrived for
``SETTLE_S`` ("final image"; one gesture is drawn several times). The Python side
waits with ``page.wait_for_function`` polling every 10 ms for that paint and for
``Bokeh.documents[0].is_idle`` (which, in Bokeh 3, stays true after the first load,
so the paint is what tells), then for the info pane to show the new span ("info pane":
what follows the image, sent 150 ms after it, has arrived, so no gesture's follow-up
work on the server runs into the next gesture's timing), then for ``SETTLE_S`` of
quiet. The info panel's "read N ms" (the server's ``Atlas.view`` call) and the
websocket timeline split "first" into: browser wait
(gesture to Bokeh's ``rangesupdate`` event leaving the page), server (event sent to
the last frame received before the paint: HoloViews' debounce, the read, the band
curves, serialisation) and draw (that frame to the paint).

Also recorded: every websocket frame the server sends (Playwright's ``framereceived``),
grouped into Bokeh protocol messages (header, metadata, content, then a header and a
binary payload per buffer), and the server's RSS (psutil) when it is listening, after
the page has loaded and after the gestures, and the CPU seconds the server and Chromium
spent on the gestures (per gesture). Screenshots of the whole day, a mid zoom and the
deepest zoom go to ``benchmarks/screenshots/`` (from the first run).

``--load`` (default ``both``): the same gestures (same seed) in two runs, each with its
own fresh server (an empty chunk cache) and browser: ``none``, nothing added (an idle
machine, if nobody else uses it), then ``one-core``, with a second CPU-bound process (a
pure-Python busy loop in its own ``python -c``, at the server's priority and not pinned:
a core's worth of demand the kernel shares out with the server and Chromium) running
from before the server starts until after the browser closes. It is bounded
(``BUSY_LIMIT_S``, and it exits when this script does) and always stopped at the end of
its run, on error too. Both runs are printed in full, then side by side with their
ratio (p50, p90, p95 per gesture kind): on a shared, noisy machine the ratio within one
invocation is the figure to compare, not either run's milliseconds against another
day's. The CPU seconds per gesture of everything else on the machine are reported too:
far from 0, the "idle" run was not idle.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import psutil
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "benchmarks" / "screenshots"
sys.path.insert(0, str(ROOT / "tests"))
from chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402 - the same launch as the browser tests

VIEWPORT = {"width": 1500, "height": 1000}
DAY_S = 86_400
TARGET_P95_MS = 300.0
TARGET_MESSAGE_MB = 4.0
SETTLE_S = 0.5  # nothing received, painted or changed in the info panel for this long: the gesture is done
GESTURE_TIMEOUT_MS = 30_000
IDLE = "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle"
LOADS = ("none", "one-core")
BUSY_LIMIT_S = 1800.0  # the busy loop's own bound, should this script be killed before it can stop it
# A core's worth of pure-Python work (no I/O, no sleeping), until its time is up or its parent has gone.
BUSY_LOOP = """
import os, sys, time
end, parent = time.monotonic() + float(sys.argv[1]), os.getppid()
while time.monotonic() < end and os.getppid() == parent:
    for _ in range(100_000):
        pass
"""

log = logging.getLogger("benchmarks.browser")

# Installed before the page's own scripts: timestamps gestures, websocket traffic, info panel changes
# and paints of the main plot (with the identity of the image they show).
MONITOR_JS = r"""
(() => {
  const now = () => performance.now();
  const m = (window.__atlas = {events: [], sent: [], recv: [], paints: [], infos: [], armed: null, last: 0});
  for (const type of ["wheel", "pointerup"]) {
    window.addEventListener(type, () => m.events.push([type, now()]), {capture: true, passive: true});
  }
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        const size = typeof e.data === "string" ? e.data.length : (e.data.byteLength ?? e.data.size ?? 0);
        m.recv.push([now(), size]);
        m.last = now();
      });
    }
    send(data) {
      m.sent.push([now(), typeof data === "string" && data.includes('"rangesupdate"')]);
      m.last = now();
      return super.send(data);
    }
  };
  const ids = new WeakMap();
  let nextId = 1;
  const column = (source, name) => {
    const data = source.data;
    return data instanceof Map ? data.get(name) : data[name];
  };
  // Where the image lies in time, [x, dw] (ms): a new one answers a new time range.
  m.extent = (plot) => {
    const x = plot && column(plot.source, "x"), dw = plot && column(plot.source, "dw");
    return x && dw ? [Number(x[0]), Number(dw[0])] : [NaN, NaN];
  };
  // Moved or resized by more than 2% of the old width; a re-render of the same range at another
  // pixel size (the frame resized) shifts the image by about a pixel only.
  const moved = ([x, dw], [x0, dw0]) => !(Math.abs(x - x0) <= 0.02 * dw0 && Math.abs(dw - dw0) <= 0.02 * dw0);
  m.imageId = (plot) => {
    const image = plot && column(plot.source, "image");
    const array = image && image[0];
    if (array == null || typeof array !== "object") return 0;
    if (!ids.has(array)) ids.set(array, nextId++);
    return ids.get(array);
  };
  // The main plot: of the plots drawing an image, the one with the tallest frame.
  m.plot = () => {
    const p = m._plot;
    if (p && !p.view.is_destroyed && p.view.model.renderers.some((r) => r.data_source === p.source)) return p;
    if (!(window.Bokeh && Bokeh.index)) return null;
    let best = null;
    for (const view of Bokeh.index.all_views()) {
      if (!view.frame || !Array.isArray(view.model.renderers)) continue;
      for (const r of view.model.renderers) {
        const source = r.data_source;
        if (source && source.data && column(source, "image") != null) {
          const h = view.frame.bbox.height;
          if (best == null || h > best.h) best = {view, source, h};
        }
      }
    }
    if (best && !best.view.__atlasPaint) {
      const paint = best.view.paint;
      best.view.paint = function (...args) {
        const painted = !this.is_paused && !this.model.hold_render;
        const out = paint.apply(this, args);
        if (painted) {
          const {width, height} = this.frame.bbox;
          m.paints.push([now(), m.imageId(m._plot), m.extent(m._plot), `${width}x${height}`]);
          m.last = now();
        }
        return out;
      };
      best.view.__atlasPaint = true;
    }
    m._plot = best;
    return best;
  };
  const deepFind = (cls) => {
    const stack = [document];
    while (stack.length) {
      for (const el of stack.pop().querySelectorAll("*")) {
        if (el.classList && el.classList.contains(cls)) return el;
        if (el.shadowRoot) stack.push(el.shadowRoot);
      }
    }
    return null;
  };
  m.deepFind = deepFind;  // (for scripts added after this one: benchmarks/review.py)
  m.infoText = () => {
    if (!(m._info && m._info.isConnected)) m._info = deepFind("atlas-info");
    return m._info ? (m._info.shadowRoot || m._info).textContent : null;
  };
  setInterval(() => {
    const info = m.infoText();
    if (info !== m.info) {
      m.info = info;
      m.infos.push([now(), info]);
      m.last = now();
    }
  }, 10);
  m.geometry = () => {
    const p = m.plot();
    const c = p.view.canvas.events_el.getBoundingClientRect();
    const b = p.view.frame.bbox;
    const {x_range, y_range} = p.view.model;
    return {left: c.left + b.left, top: c.top + b.top, width: b.width, height: b.height,
            canvas_bottom: c.top + c.height, y0: y_range.start, y1: y_range.end};
  };
  m.arm = () => {
    m.events = []; m.sent = []; m.recv = []; m.paints = []; m.infos = [];
    const p = m.plot();
    const {width, height} = p.view.frame.bbox;
    const info = m.infoText();
    m.armed = {t: now(), image: m.imageId(p), extent: m.extent(p), info, shown: m.shown(info),
               frame: `${width}x${height}`};
    return m.armed.info;
  };
  m.fresh = ([, id, extent]) => id !== m.armed.image && moved(extent, m.armed.extent);
  m.drawn = () => m.paints.some(m.fresh);
  // The info pane's "showing <start> → <end>": it follows the image (with the band curves, the
  // overview's box and the URL), so once it has changed the gesture's follow-up work has arrived too.
  m.shown = (text) => {
    const x = /showing \d{4}-\d\d-\d\d [\d:.]+ → \d{4}-\d\d-\d\d [\d:.]+/.exec(text || "");
    return x ? x[0] : null;
  };
  m.caughtUp = () => {
    const shown = m.shown(m.infoText());
    return shown != null && shown !== m.armed.shown;
  };
  m.quietFor = () => now() - Math.max(m.last, m.armed ? m.armed.t : 0);
  m.record = (kind) => {
    const ev = m.events.filter(([type]) => type === kind).pop();
    const t0 = ev ? ev[1] : m.armed.t;
    const after = (list, t) => list.find((x) => x[0] >= t);
    const sent = m.sent.find(([t, ranges]) => ranges && t >= t0);
    // New images of the time range shown before the gesture answer something else: not timed.
    const fresh = m.paints.filter(m.fresh);
    const same = m.paints.filter(([, id, extent]) => id !== m.armed.image && !moved(extent, m.armed.extent));
    const first = fresh[0];
    const final = fresh.length ? fresh.find(([, id]) => id === fresh[fresh.length - 1][1]) : null;
    const before = first ? m.recv.filter(([t]) => t <= first[0]).pop() : null;
    const info = after(m.infos, t0);
    const caught = m.infos.find(([t, text]) => t >= t0 && m.shown(text) != null && m.shown(text) !== m.armed.shown);
    return {
      t0, found_event: ev != null,
      sent: sent ? sent[0] - t0 : null,
      data: before ? before[0] - t0 : null,
      first: first ? first[0] - t0 : null,
      final: final ? final[0] - t0 : null,
      info_changed: info ? info[0] - t0 : null,
      caught_up: caught ? caught[0] - t0 : null,
      images: new Set(fresh.map(([, id]) => id)).size,
      same_range_images: new Set(same.map(([, id]) => id)).size,
      same_range_frames: [m.armed.frame, ...new Set(same.map(([, , , frame]) => frame))],
      recv_bytes: m.recv.reduce((s, [, n]) => s + n, 0),
      info: m.infoText(),
      infos: m.infos.map(([t, text]) => [t - t0, text]),
    };
  };
})();
"""


# --- the store and the server --------------------------------------------------------------------


def build_24h_store(directory: Path) -> Path:
    """A 24 h store built by ``benchmarks/query.py``'s ``build_store`` (hard-linked chunks)."""
    spec = importlib.util.spec_from_file_location("benchmarks_query", ROOT / "benchmarks" / "query.py")
    bench = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
    spec.loader.exec_module(bench)
    path = directory / "24h.zarr"
    log.info("building a 24 h store in %s", path)
    figures = bench.build_store(path, DAY_S, seed=20260101)
    log.info("built in %.1f s: %d levels, %.0f MB on disk", figures["build_s"], figures["n_levels"], figures["disk_mb"])
    os.sync()
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    store: Path, port: int, log_path: Path, *, verbose: bool = False, serve_args: Sequence[str] = ()
) -> subprocess.Popen:
    """``spectral-atlas [-v] serve STORE --port PORT [SERVE_ARGS]``; returns once the port accepts connections.

    ``serve_args``: more options of ``serve``, e.g. ``["--annotations", path]`` (``benchmarks/review.py``).
    """
    options = ["-v"] if verbose else []
    cmd = [sys.executable, "-m", "dashboard.cli", *options, "serve", str(store), "--port", str(port), *serve_args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while True:  # a TCP connect, not a GET: a GET would open a session before the RSS is taken
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.terminate()
                raise TimeoutError(f"the server did not listen on {port} within 180 s; see {log_path}") from None
            time.sleep(0.3)


def stop_server(server: subprocess.Popen) -> None:
    """Terminate the server, then kill it if it has not exited within 20 s."""
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def rss_mb(proc: subprocess.Popen) -> float:
    """Resident memory of the server and any children, MB."""
    p = psutil.Process(proc.pid)
    return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2**20


class BusyCore:
    """A second CPU-bound process, busy on one core while the ``with`` block runs.

    A ``python -c`` busy loop (``BUSY_LOOP``), at this script's priority and not pinned to
    a core: the kernel shares the machine between it, the server and Chromium as it would
    with any other process a person runs. It stops itself after ``limit_s`` or when this
    script is gone; leaving the block (on error too) terminates it, then kills it if needed.
    """

    def __init__(self, limit_s: float = BUSY_LIMIT_S) -> None:
        self.limit_s = limit_s
        self.proc: subprocess.Popen | None = None
        self.cpu_s = self.wall_s = float("nan")  # over the block, known once it has been left

    def __enter__(self) -> BusyCore:
        self.proc = subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(self.limit_s)])
        self._ps = psutil.Process(self.proc.pid)
        self._begin = time.perf_counter()
        log.info("a CPU-bound process (pid %d) is busy for at most %.0f s", self.proc.pid, self.limit_s)
        return self

    def cpu_seconds(self) -> float:
        """CPU seconds the busy loop has used so far (NaN once it has ended)."""
        try:
            times = self._ps.cpu_times()
        except psutil.Error:
            return float("nan")
        return times.user + times.system

    def __exit__(self, *exc) -> None:
        self.wall_s = time.perf_counter() - self._begin
        self.cpu_s = self.cpu_seconds()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif self.wall_s < self.limit_s - 1:
            log.warning("the CPU-bound process ended early, with %s", self.proc.returncode)
        log.info(
            "the CPU-bound process used %.0f CPU s in %.0f s (%.2f cores); stopped",
            self.cpu_s,
            self.wall_s,
            self.cpu_s / self.wall_s,
        )


def chromium_processes() -> list[psutil.Process]:
    """The Chromium processes this script started (through Playwright's driver)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.name().startswith("chrom"):
                found.append(proc)
        except psutil.Error:  # a process that has just ended
            pass
    return found


def cpu_seconds(server: subprocess.Popen, busy: BusyCore | None) -> dict[str, float]:
    """CPU seconds so far: server, Chromium, busy loop, harness (this script, Playwright's driver), machine; clock.

    Chromium's count includes its processes that have ended (their parents' ``children_*`` times).
    """
    chromium = harness = 0.0
    chromes = chromium_processes()
    others = {server.pid, busy.proc.pid if busy else None, *(p.pid for p in chromes)}
    for proc in chromes:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        chromium += times.user + times.system + times.children_user + times.children_system
    for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        if proc.pid not in others:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            harness += times.user + times.system
    mine = psutil.Process(server.pid).cpu_times()
    machine = psutil.cpu_times()
    return {
        "server": mine.user + mine.system,
        "chromium": chromium,
        "busy loop": busy.cpu_seconds() if busy else 0.0,
        "harness": harness,
        "machine": machine.user + machine.nice + machine.system + machine.irq + machine.softirq,
        "wall": time.perf_counter(),
    }


# --- websocket messages --------------------------------------------------------------------------


class BokehMessages:
    """Websocket frames from the server grouped into Bokeh protocol messages, with their sizes."""

    def __init__(self) -> None:
        self.messages: list[dict] = []  # {"type", "bytes", "frames", "largest_frame"}
        self.frames = 0
        self.largest_frame = 0
        self._state, self._current, self._buffers = "header", None, 0

    def feed(self, payload: str | bytes) -> None:
        size = len(payload) if isinstance(payload, bytes) else len(payload.encode())
        self.frames += 1
        self.largest_frame = max(self.largest_frame, size)
        if self._state == "header":
            try:
                header = json.loads(payload)
            except (TypeError, ValueError):
                header = {"msgtype": "?"}
            self._current = {"type": header.get("msgtype", "?"), "bytes": 0, "frames": 0, "largest_frame": 0}
            self._buffers = int(header.get("num_buffers") or 0)
        cur = self._current
        cur["bytes"] += size
        cur["frames"] += 1
        cur["largest_frame"] = max(cur["largest_frame"], size)
        if self._state == "header":
            self._state = "metadata"
        elif self._state == "metadata":
            self._state = "content"
        elif self._state == "buffer_header":
            self._state = "buffer_payload"
        else:  # content, or a buffer's payload
            if self._state == "buffer_payload":
                self._buffers -= 1
            self._state = "buffer_header" if self._buffers > 0 else "done"
        if self._state == "done":
            self.messages.append(cur)
            self._state, self._current = "header", None


# --- the page ------------------------------------------------------------------------------------


def info_facts(text: str | None) -> dict:
    """Level, read time and shown span from the info panel's text."""
    text = text or ""
    out: dict = {"level": None, "read_ms": None, "span_s": None, "start": None, "end": None}
    if m := re.search(r"level (\d+)", text):
        out["level"] = int(m.group(1))
    if m := re.search(r"read (\d+) ms", text):
        out["read_ms"] = int(m.group(1))
    stamp = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)"
    if m := re.search(rf"showing {stamp} → {stamp}", text):
        a, b = (datetime.fromisoformat(s) for s in m.groups())
        out.update(start=a, end=b, span_s=(b - a).total_seconds())
    if m := re.search(rf"recording {stamp} → {stamp}", text):
        out["recording"] = tuple(datetime.fromisoformat(s) for s in m.groups())
    return out


def wait_for_first_image(page, timeout_s: float = 120.0) -> None:
    page.wait_for_function(IDLE, timeout=timeout_s * 1e3)
    page.wait_for_function(
        "() => { const p = __atlas.plot(); const t = __atlas.infoText();"
        " return p && __atlas.paints.length > 0 && t && !t.includes('read 0 ms'); }",
        polling=100,
        timeout=timeout_s * 1e3,
    )


def open_monitored(context, url: str, errors: list[str], scripts: Sequence[str] = ()):
    """A new page of ``context`` at ``url``, once its first image is drawn.

    ``MONITOR_JS`` and then ``scripts`` are installed before the page's own; its console
    errors and page errors are appended to ``errors``.
    """
    page = context.new_page()
    for script in (MONITOR_JS, *scripts):
        page.add_init_script(script)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, timeout=120_000)
    wait_for_first_image(page)
    return page


def settle(page) -> None:
    """Wait until nothing has been received, painted or changed in the info panel for ``SETTLE_S``."""
    page.wait_for_function(f"() => __atlas.quietFor() >= {SETTLE_S * 1e3}", polling=50, timeout=60_000)


def plan(rng, phase: str, facts: dict, geo: dict, freq_top: float) -> tuple[str, dict, str]:
    """The next gesture: (kind, parameters, phase). Down to seconds, up to hours, down again."""
    span = facts["span_s"] or DAY_S
    if phase == "down" and span < 3:
        phase = "up"
    elif phase == "up" and span > 2 * 3600:
        phase = "down"
    fspan = geo["y1"] - geo["y0"]
    # The same draws whatever the branch: two runs stay on one script unless what they showed differs.
    u = rng.uniform(size=7)
    x = geo["left"] + geo["width"] * (0.05 + 0.9 * u[0])
    in_frame_y = geo["top"] + geo["height"] * (0.1 + 0.8 * u[1])
    over_axis_y = geo["top"] + geo["height"] + 12  # the time axis' tick labels: zooms time only
    whole = span > 0.6 * DAY_S
    r, coin = u[2], u[3]
    if phase == "down" and (whole or r < 0.6):
        on_image = fspan > freq_top / 6 and coin < 0.4  # keep a few kHz on screen
        delta = -(250 + 250 * u[4])  # Bokeh: span x (1 - delta / 600): 1.7x to 6x in
        return "zoom in", {"x": x, "y": in_frame_y if on_image else over_axis_y, "delta": delta}, phase
    if phase == "up" and r < 0.65:
        on_image = fspan < 0.8 * freq_top and coin < 0.5
        delta = 350 + 190 * u[4]  # 1.6x to 1.9x out (Bokeh caps a wheel step at 1.9x)
        return "zoom out", {"x": x, "y": in_frame_y if on_image else over_axis_y, "delta": delta}, phase
    # A drag pan, mostly along time, away from the recording's nearer edge when it is close.
    frac = 0.1 + 0.3 * u[4]
    direction = 1.0 if u[5] < 0.5 else -1.0  # +1 drags right: earlier times come into view
    rec = facts.get("recording")
    if rec and facts["start"] is not None:
        room_before = (facts["start"] - rec[0]).total_seconds()
        room_after = (rec[1] - facts["end"]).total_seconds()
        if room_before < frac * span:
            direction = -1.0
        elif room_after < frac * span:
            direction = 1.0
    y0 = in_frame_y
    dy = geo["height"] * (0.06 * u[6] - 0.03)
    x0 = geo["left"] + geo["width"] * (0.5 - direction * frac / 2)
    return "pan", {"x0": x0, "y0": y0, "x1": x0 + direction * frac * geo["width"], "y1": y0 + dy}, phase


def perform(page, kind: str, p: dict) -> str:
    """Do the gesture with Playwright's mouse; returns the DOM event it is timed from."""
    if kind == "pan":
        page.mouse.move(p["x0"], p["y0"])
        page.mouse.down()
        page.mouse.move(p["x1"], p["y1"], steps=8)
        page.mouse.up()
        return "pointerup"
    page.mouse.move(p["x"], p["y"])
    page.mouse.wheel(0, p["delta"])
    return "wheel"


def run_browser(
    url: str, server: subprocess.Popen, args, *, busy: BusyCore | None = None, screenshots: bool = True
) -> dict:
    """Load the page, do the gestures; return the records.

    Screenshots are taken either way (the same pauses between gestures in every run), and
    written to ``SCREENSHOTS`` when ``screenshots``.
    """
    messages = BokehMessages()
    errors: list[str] = []
    rss = {"listening": rss_mb(server)}
    rng = np.random.default_rng(args.seed)
    records: list[dict] = []
    shots: dict[str, tuple[float, bytes]] = {}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    cpu: dict[str, dict[str, float]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.add_init_script(MONITOR_JS)
            page.on("websocket", lambda ws: ws.on("framereceived", messages.feed))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            begin = time.perf_counter()
            response = page.goto(url, timeout=120_000)
            html_bytes = len(response.body()) if response else 0
            wait_for_first_image(page)
            settle(page)
            load_s = time.perf_counter() - begin
            rss["page loaded"] = rss_mb(server)
            load_messages = len(messages.messages)
            facts = info_facts(page.evaluate("() => __atlas.infoText()"))
            log.info("page loaded in %.1f s: level %s, read %s ms", load_s, facts["level"], facts["read_ms"])
            # Fit the colour limits to what is shown (the synthetic store's levels lie above the default 0 dB top).
            page.get_by_role("button", name="auto", exact=True).click()
            settle(page)
            whole_day = page.screenshot()
            if screenshots:
                (SCREENSHOTS / "1-whole-day.png").write_bytes(whole_day)
            freq_top = page.evaluate("() => __atlas.geometry()")["y1"]
            phase, rss_max = "down", rss["page loaded"]
            cpu["before gestures"] = cpu_seconds(server, busy)
            for i in range(args.interactions):
                if server.poll() is not None:
                    log.error("the server exited with %s after %d gestures", server.returncode, i)
                    break
                geo = page.evaluate("() => __atlas.geometry()")
                kind, params, phase = plan(rng, phase, facts, geo, freq_top)
                before = facts
                n_msgs = len(messages.messages)
                page.evaluate("() => __atlas.arm()")
                event = perform(page, kind, params)
                timed_out = False
                try:
                    page.wait_for_function(
                        f"() => __atlas.drawn() && ({IDLE[6:]})", polling=10, timeout=GESTURE_TIMEOUT_MS
                    )
                except PlaywrightError:
                    timed_out = True
                if not timed_out:  # and the follow-up (info pane, curves, overview): a gesture leaves no work behind
                    try:
                        page.wait_for_function("() => __atlas.caughtUp()", polling=10, timeout=GESTURE_TIMEOUT_MS)
                    except PlaywrightError:
                        log.warning("gesture %d: the info pane still shows the span from before it", i)
                settle(page)
                rec = page.evaluate("(kind) => __atlas.record(kind)", event)
                facts = info_facts(rec.pop("info"))
                shown = [info_facts(text)["span_s"] for _, text in rec.pop("infos")]
                rec["spans_shown"] = [x for k, x in enumerate(shown) if x is not None and (k == 0 or x != shown[k - 1])]
                new = messages.messages[n_msgs:]
                rec.update(
                    i=i,
                    kind=kind,
                    where="image" if kind == "pan" or params["y"] < geo["top"] + geo["height"] else "time axis",
                    timed_out=timed_out,
                    span_before_s=before["span_s"],
                    span_s=facts["span_s"],
                    level=facts["level"],
                    read_ms=facts["read_ms"],
                    messages=len(new),
                    largest_message=max((m["bytes"] for m in new), default=0),
                )
                records.append(rec)
                rss_max = max(rss_max, rss_mb(server))
                log.info(
                    "%2d %-8s %-9s span %9.2f s -> %9.2f s  level %s  read %s ms  first %s  final %s  images %d"
                    "%s  %d msgs, largest %.0f kB; spans shown on the way %s",
                    i,
                    kind,
                    rec["where"],
                    before["span_s"] or 0,
                    facts["span_s"] or 0,
                    facts["level"],
                    facts["read_ms"],
                    _ms(rec["first"]),
                    _ms(rec["final"]),
                    rec["images"],
                    f" (+{rec['same_range_images']} of the old range, frame {' -> '.join(rec['same_range_frames'])})"
                    if rec["same_range_images"]
                    else "",
                    len(new),
                    rec["largest_message"] / 1e3,
                    [round(x, 2) for x in rec["spans_shown"]],
                )
                span = facts["span_s"] or DAY_S
                if (120 <= span <= 1800 and "mid" not in shots) or span < shots.get("deep", (60, b""))[0]:
                    page.mouse.move(2, 2)  # no hover tooltip in the picture (after the timing, before the next)
                if 120 <= span <= 1800 and "mid" not in shots:
                    shots["mid"] = (span, page.screenshot())
                if span < 60 and span < shots.get("deep", (np.inf, b""))[0]:
                    shots["deep"] = (span, page.screenshot())
            if server.poll() is None:
                cpu["after gestures"] = cpu_seconds(server, busy)
            rss["after gestures"] = rss_mb(server) if server.poll() is None else float("nan")
            rss["max"] = max(rss_max, rss["after gestures"])
            for name, file in (("mid", "2-mid-zoom.png"), ("deep", "3-deepest-zoom.png")):
                if screenshots and name in shots:
                    (SCREENSHOTS / file).write_bytes(shots[name][1])
            version = browser.version
        finally:
            browser.close()
    return {
        "records": records,
        "messages": messages,
        "load_messages": load_messages,
        "errors": errors,
        "rss": rss,
        "load_s": load_s,
        "html_bytes": html_bytes,
        "chromium": version,
        "shots": {k: v[0] for k, v in shots.items()} if screenshots else {},
        "server_exit": server.poll(),
        "cpu": cpu,
    }


def _ms(value) -> str:
    return "-" if value is None else f"{value:.0f} ms"


# --- report --------------------------------------------------------------------------------------


def _stats(values) -> dict | None:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not len(v):
        return None
    return {"n": len(v), **{f"p{q}": float(np.percentile(v, q)) for q in (50, 90, 95)}, "max": float(v.max())}


def gesture_kinds(records: list[dict]) -> dict[str, list[dict]]:
    """The records grouped by what the gesture was (a record can be in several groups)."""
    zooms = [r for r in records if r["kind"] != "pan"]
    return {
        "all": records,
        "wheel zooms": zooms,
        "zoom in": [r for r in records if r["kind"] == "zoom in"],
        "zoom out": [r for r in records if r["kind"] == "zoom out"],
        "pan": [r for r in records if r["kind"] == "pan"],
        "zoom on time axis": [r for r in zooms if r["where"] == "time axis"],
        "zoom on image": [r for r in zooms if r["where"] == "image"],
    }


def split_part(r: dict, name: str) -> float | None:
    """One part of a gesture's time to its first image (ms); see ``report``."""
    if name == "browser wait":
        return r["sent"]
    if name == "server":
        return None if r["sent"] is None or r["data"] is None else r["data"] - r["sent"]
    if name == "draw":
        return None if r["data"] is None or r["first"] is None else r["first"] - r["data"]
    if name == "info pane":
        return r.get("caught_up")
    return r["read_ms"]


SPLIT = ("browser wait", "server", "read", "draw")
PARTS = (*SPLIT, "info pane")  # the last: not a part of "first", the time to the follow-up


def cpu_per_gesture(result: dict) -> dict[str, float] | None:
    """CPU seconds per gesture, from before the first gesture to after the last (None if the server died)."""
    cpu, n = result["cpu"], len(result["records"])
    if "after gestures" not in cpu or not n:
        return None
    a, b = cpu["before gestures"], cpu["after gestures"]
    out = {k: (b[k] - a[k]) / n for k in ("server", "chromium", "busy loop", "harness", "machine")}
    # Everything else: whatever else shares the machine (it was not idle if this is not near 0).
    out["others"] = out["machine"] - out["server"] - out["chromium"] - out["busy loop"] - out["harness"]
    out["wall"] = (b["wall"] - a["wall"]) / n
    return out


def report(result: dict, store: Path, title: str = "") -> dict:
    """Print the result table; return the summary."""
    records, msgs = result["records"], result["messages"]
    size = f"{VIEWPORT['width']}x{VIEWPORT['height']}"
    if title:
        print(f"\n===== {title} " + "=" * max(0, 72 - len(title)))
    print(f"\nSpectral Atlas in headless Chromium {result['chromium']}, viewport {size}")
    print(f"store {store}; machine: nproc {os.cpu_count()}, load {[round(x, 2) for x in os.getloadavg()]}, ", end="")
    print(f"python {platform.python_version()}")
    print(
        f"page load: {result['load_s']:.1f} s to the first image drawn; HTML {result['html_bytes'] / 2**20:.2f} MB; "
        f"{result['load_messages']} websocket messages during the load"
    )
    print(
        "latency: in the page, from the gesture's DOM event (wheel; pointerup ending a drag) to the first\n"
        "paint of the main plot showing a new image of a new time range (first), and to the paint of the\n"
        f"last image the gesture caused, with nothing new for {SETTLE_S:g} s after (final). Split of 'first':\n"
        "browser wait = event -> Bokeh's rangesupdate sent; server = sent -> last frame received before that\n"
        "paint; draw = that frame -> paint.\n"
        "read = the info panel's 'read N ms' (the server's Atlas.view call alone).\n"
        "info pane = the gesture's event -> the info pane showing the new span (what follows the image: the\n"
        "band curves, the overview's box, the URL, the info pane; sent together 150 ms after it).\n"
    )
    kinds = gesture_kinds(records)
    head = (
        f"{'gestures':<18} {'n':>3}  {'first p50':>9} {'p90':>6} {'p95':>6} {'max':>6}"
        f"  {'final p50':>9} {'p90':>6} {'p95':>6} {'max':>6}"
    )
    print(head + "\n" + "-" * len(head))
    summary: dict = {}
    for name, sel in kinds.items():
        first, final = _stats(r["first"] for r in sel), _stats(r["final"] for r in sel)
        if not first:
            continue
        summary[name] = {"first": first, "final": final}
        print(
            f"{name:<18} {len(sel):>3}  {first['p50']:>9.0f} {first['p90']:>6.0f} {first['p95']:>6.0f} "
            f"{first['max']:>6.0f}  {final['p50']:>9.0f} {final['p90']:>6.0f} {final['p95']:>6.0f} {final['max']:>6.0f}"
        )
    print("(milliseconds)\n")

    head = f"{'split of first':<18} {'gestures':<8} {'n':>3}  {'p50':>7} {'p90':>7} {'p95':>7} {'max':>7}"
    print(head + "\n" + "-" * len(head))
    for name in PARTS:
        for kind in ("zoom in", "zoom out", "pan"):
            s = _stats(split_part(r, name) for r in kinds[kind])
            if s:
                summary.setdefault("split", {})[f"{name} / {kind}"] = s
                print(
                    f"{name:<18} {kind:<8} {s['n']:>3}  {s['p50']:>7.0f} {s['p90']:>7.0f} {s['p95']:>7.0f} "
                    f"{s['max']:>7.0f}"
                )
    twice = sum(r["images"] > 1 for r in records)
    timeouts = sum(r["timed_out"] for r in records)
    spans = [r["span_s"] for r in records if r["span_s"]]
    levels = [r["level"] for r in records if r["level"] is not None]
    detours = sum(len(r["spans_shown"]) > 1 for r in records)
    same = sum(r["same_range_images"] > 0 for r in records)
    print(f"(milliseconds; {twice} gestures drew more than one image; {timeouts} drew none within the timeout)")
    print(f"{detours} gestures showed more than one time span in the info panel on the way to their last one")
    print(f"{same} gestures also drew a new image of the time range shown before them (not timed)")
    if spans:
        print(f"spans shown: {min(spans):.2f} s .. {max(spans):.0f} s; levels {min(levels)} .. {max(levels)}")
    largest = max(msgs.messages, key=lambda m: m["bytes"], default={"bytes": 0, "type": "-"})
    during = [r["largest_message"] for r in records]
    print(
        f"\nwebsocket, server to browser: {len(msgs.messages)} Bokeh messages in {msgs.frames} frames; largest message "
        f"{largest['bytes'] / 2**20:.2f} MB ({largest['type']}), largest frame {msgs.largest_frame / 2**20:.2f} MB; "
        f"largest during the gestures {max(during, default=0) / 2**20:.2f} MB; "
        f"received during the gestures {sum(r['recv_bytes'] for r in records) / 2**20:.1f} MB"
    )
    if cpu := cpu_per_gesture(result):
        summary["cpu_per_gesture"] = cpu
        print(
            f"CPU per gesture (from the first gesture to the last, {cpu['wall']:.2f} s of clock each, settling "
            f"included): server {cpu['server']:.2f} s, Chromium {cpu['chromium']:.2f} s, busy loop "
            f"{cpu['busy loop']:.2f} s, this script and Playwright {cpu['harness']:.2f} s, other processes "
            f"{cpu['others']:.2f} s ({cpu['others'] / cpu['wall']:.2f} cores); whole machine {cpu['machine']:.2f} s "
            f"of {os.cpu_count() * cpu['wall']:.2f}"
        )
    rss = result["rss"]
    print("server RSS: " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()))
    if result["server_exit"] is not None:
        print(f"THE SERVER EXITED with status {result['server_exit']} during the run")
    errors = result["errors"]
    print(f"browser console errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    shots = ", ".join(f"{k} ({v:.1f} s span)" for k, v in result["shots"].items())
    print(f"screenshots in {SCREENSHOTS.relative_to(ROOT)}/: whole day" + (f", {shots}" if shots else ""))
    p95 = summary["all"]["final"]["p95"] if "all" in summary else float("inf")
    p95_first = summary["all"]["first"]["p95"] if "all" in summary else float("inf")
    big = largest["bytes"] / 2**20
    checks = [
        (f"gesture -> final image p95 <= {TARGET_P95_MS:g} ms", f"{p95:.0f} ms", p95 <= TARGET_P95_MS),
        (f"gesture -> first image p95 <= {TARGET_P95_MS:g} ms", f"{p95_first:.0f} ms", p95_first <= TARGET_P95_MS),
        (f"largest websocket message <= {TARGET_MESSAGE_MB:g} MB", f"{big:.2f} MB", big <= TARGET_MESSAGE_MB),
    ]
    print()
    for target, value, ok in checks:
        print(f"target {target:<42} {value:>10}  {'PASS' if ok else 'MISS'}")
    summary["targets"] = [{"target": t, "value": v, "pass": ok} for t, v, ok in checks]
    summary["largest_message"] = largest
    return summary


def compare(results: dict[str, dict]) -> dict:
    """Print the runs side by side with their ratio (the second run's over the first's); return it."""
    (base, a), (other, b) = results.items()
    ka, kb = gesture_kinds(a["records"]), gesture_kinds(b["records"])
    qs = ("p50", "p90", "p95")
    print(f"\n===== {other} vs {base}: the same gestures, side by side " + "=" * 20)
    print(f"(milliseconds; ratio = {other} / {base}; n = gestures with a figure in each run)\n")
    head = (
        f"{'':<32} {'n':>7}  {base + ' p50':>11} {'p90':>5} {'p95':>5}  {other + ' p50':>13} {'p90':>5} {'p95':>5}"
        f"  {'ratio p50':>9} {'p90':>5} {'p95':>5}"
    )
    print(head + "\n" + "-" * len(head))
    out: dict = {}

    def row(label: str, sa: dict | None, sb: dict | None) -> None:
        if not (sa and sb):
            return
        ratio = {q: sb[q] / sa[q] if sa[q] > 0 else float("nan") for q in qs}
        out[label] = {base: sa, other: sb, "ratio": ratio}
        print(
            f"{label:<32} {sa['n']:>3}/{sb['n']:<3}  {sa['p50']:>11.0f} {sa['p90']:>5.0f} {sa['p95']:>5.0f}  "
            f"{sb['p50']:>13.0f} {sb['p90']:>5.0f} {sb['p95']:>5.0f}  "
            f"{ratio['p50']:>9.2f} {ratio['p90']:>5.2f} {ratio['p95']:>5.2f}"
        )

    for what in ("first", "final"):
        for kind in ka:
            row(f"{what} image / {kind}", _stats(r[what] for r in ka[kind]), _stats(r[what] for r in kb[kind]))
    for name in PARTS:
        for kind in ("wheel zooms", "pan"):
            row(
                f"{name} / {kind}",
                _stats(split_part(r, name) for r in ka[kind]),
                _stats(split_part(r, name) for r in kb[kind]),
            )
    ca, cb = cpu_per_gesture(a), cpu_per_gesture(b)
    if ca and cb:
        out["cpu_per_gesture"] = {base: ca, other: cb}
        print(f"\n{'CPU seconds per gesture':<35} {base:>7} {other:>10}  ratio")
        labels = {"harness": "this script and Playwright", "others": "other processes", "wall": "clock"}
        for k in ("server", "chromium", "busy loop", "harness", "others", "machine", "wall"):
            ratio = f"{cb[k] / ca[k]:6.2f}" if ca[k] > 0 else "     -"
            print(f"  {labels.get(k, k):<33} {ca[k]:>7.3f} {cb[k]:>10.3f}  {ratio}")
        for name, c in ((base, ca), (other, cb)):
            if c["others"] / c["wall"] > 0.2:
                print(
                    f"NOTE: other processes kept {c['others'] / c['wall']:.2f} of the {os.cpu_count()} cores busy "
                    f"during the {name!r} run: it ran beside more than this benchmark's own load"
                )
    # Each run follows what it showed (the span, the recording's edges): say if the two scripts parted.
    pairs = zip(a["records"], b["records"], strict=False)  # a run cut short by a dead server has fewer
    parted = sum((x["kind"], x["where"]) != (y["kind"], y["where"]) for x, y in pairs)
    if parted or len(a["records"]) != len(b["records"]):
        print(f"NOTE: the runs made different gestures at {parted} of {min(len(a['records']), len(b['records']))}")
    failed = {name: sum(r["timed_out"] for r in res["records"]) for name, res in results.items()}
    print("gestures that drew no new image within the timeout: " + ", ".join(f"{k} {v}" for k, v in failed.items()))
    return out


def run_once(name: str, store: Path, workdir: Path, args, *, screenshots: bool) -> tuple[dict, int | None]:
    """One run on a fresh server (and, for ``one-core``, beside a busy process); returns (result, server's exit)."""
    port = args.port or free_port()
    log_path = workdir / f"serve-{name}.log"
    log.info("run %r: serving %s on http://127.0.0.1:%d/ (log %s)", name, store, port, log_path)
    server = None
    with BusyCore() if name == "one-core" else contextlib.nullcontext() as busy:
        try:
            server = start_server(store, port, log_path)
            result = run_browser(f"http://127.0.0.1:{port}/", server, args, busy=busy, screenshots=screenshots)
        finally:
            if server is not None:
                stop_server(server)
    if busy is not None:
        result["busy"] = {"cpu_s": busy.cpu_s, "wall_s": busy.wall_s}
    return result, server.returncode


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=50, help="scripted gestures per run (default 50)")
    parser.add_argument("--store", type=Path, help="use this store instead of building a 24 h one")
    parser.add_argument("--keep", action="store_true", help="keep the built store (its directory is logged)")
    parser.add_argument("--json", type=Path, help="also write the records and summary to this file")
    parser.add_argument("--port", type=int, help="server port (default: a free one)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the gesture script")
    parser.add_argument(
        "--load",
        choices=(*LOADS, "both"),
        default="both",
        help="none: nothing added to the machine; one-core: beside a second, CPU-bound process; both "
        "(default): one run of each, then side by side with their ratio",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        parser.error(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_BIN)")
    loads = LOADS if args.load == "both" else (args.load,)
    workdir = Path(tempfile.mkdtemp(prefix="atlas-browser-bench-"))
    failed = False  # an error, or a server that exited by itself: keep its log
    try:
        store = args.store or build_24h_store(workdir)
        results, summaries = {}, {}
        for k, name in enumerate(loads):
            result, exit_code = run_once(name, store, workdir, args, screenshots=k == 0)
            failed = failed or exit_code not in (None, -15)
            results[name] = result
            summaries[name] = report(result, store, title=f"run {k + 1} of {len(loads)}: load {name}")
        comparison = compare(results) if len(results) == 2 else None
        if args.json:
            record = {
                "store": str(store),
                "runs": {
                    name: {
                        "interactions": result["records"],
                        "messages": result["messages"].messages,
                        "rss_mb": result["rss"],
                        "cpu_s": result["cpu"],
                        "busy": result.get("busy"),
                        "load_s": result["load_s"],
                        "errors": result["errors"],
                        "summary": summaries[name],
                    }
                    for name, result in results.items()
                },
                "comparison": comparison,
            }
            args.json.write_text(json.dumps(record, indent=2, default=str))
            log.info("wrote %s", args.json)
    except BaseException:
        failed = True
        raise
    finally:
        if args.keep:
            log.info("kept %s", workdir)
        elif failed:  # the logs say why; the store (hundreds of MB) is rebuilt in seconds
            shutil.rmtree(workdir / "24h.zarr", ignore_errors=True)
            log.info("kept the server logs in %s", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
