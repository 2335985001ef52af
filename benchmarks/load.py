"""Benchmark: many people on one server at once.

Run from the repository root::

    python benchmarks/load.py                          # 20 sessions for 3 minutes on a 1 h demo store
    python benchmarks/load.py --sessions 5 --minutes 1 --store demo/demo.zarr --json load.json

One ``spectral-atlas serve`` (as ``python -m dashboard.cli serve``) on 127.0.0.1, and
one Debian Chromium (``/usr/bin/chromium`` through Playwright's ``executable_path``;
nothing is downloaded) holding ``--sessions`` separate browser contexts, so each
is a session of its own (its own cookies and websocket), at a lower CPU priority than
the server (``--browser-nice``: the browsers stand in for people's own computers, and
twenty renderers would otherwise take the server's share). Every session loads the
page (sessions arrive ``--stagger`` seconds apart), then loops until the time is up
over scripted gestures on its own random path, ``--think`` seconds apart on average
(10 s: a person reads the picture between gestures; at 3 s, 20 sessions ask this
2-core machine for ~7 answered gestures a second, each costing the page ~0.3 and
the server ~0.25 CPU s, more than its two cores): wheel zooms in and out on the
spectrogram, drag pans, the zoom / whole / ◀ ▶ buttons, and band edits (add a
band by name, remove it). Only gestures that must change the view are made (no
pan past the recording's ends).

What is measured:

- **errors** (must be 0): browser console errors and page errors, gestures whose
  answer never came (``--timeout``), and ``ERROR`` or ``Traceback`` lines in the
  server's log;
- **interaction latency**: in the page's own clock, from the gesture's last input
  event (the wheel, or the pointer's release that ends a drag or a click) to the
  info pane showing the new time span (for pans, zooms and paging: it follows the
  new image by 150 ms), or to the band listing changing (band edits); p50 / p95 /
  max over all sessions;
- **CPU** used during the load by the server, by Chromium and by the machine;
- **server RSS** every 5 s (psutil, the server process), from listening through
  the load to 45 s after every session has closed (Bokeh drops a closed session
  after 15 s, looking every 17 s), with the number of open sessions the server
  reports (its log line on each session's end). RSS must plateau: stores and the
  chunk cache are shared by the process, and a session holds no copy of a level.
  The server's chunk cache is bounded at ``--cache-mb`` (128 MB: full within the
  run, so what grows after it is per-session memory; the server's default is 512).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from browser import chromium_processes, free_port, rss_mb, start_server  # noqa: E402  (the browser benchmark's)
from chromium import CHROMIUM, CHROMIUM_ARGS, MAIN_FIGURE  # noqa: E402  (one place for how Chromium is launched)

log = logging.getLogger("load")

VIEWPORT = {"width": 1400, "height": 950}
IDLE = "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle"
# What a gesture changes, as functions of the element (found once per page: they live in shadow roots):
# the span the info pane says is shown, or the band listing.
INFO, LISTING = ".atlas-info", ".band-listing"
TEXT = "(e) => (e.shadowRoot || e).textContent"
SHOWING = f"(e) => {{ const t = ({TEXT})(e); return t.includes('showing ') ? t.split('showing ')[1].slice(0, 50) : t }}"
# Installed in the page before a gesture: a promise of the milliseconds from the gesture's last input
# event (the wheel, the pointer's release ending a drag or a click; the install if none is seen) to the
# mutation that changes ``key`` of the element, or null after the timeout. A MutationObserver costs the
# page nothing while it waits; Playwright's usual polling at every animation frame keeps each waiting
# page painting 60 frames a second.
WATCH = """([e, timeoutMs]) => {{
    const key = {key}, before = key(e);
    let started = window.atlasInput = performance.now();
    window.atlasInputs = [];  // the input events seen (for the report of an unanswered gesture)
    const input = (event) => {{ started = window.atlasInput = event.timeStamp; atlasInputs.push(event.type); }};
    const kinds = ["wheel", "pointerdown", "pointerup", "keydown"];
    kinds.forEach((kind) => window.addEventListener(kind, input, {{capture: true}}));
    window.atlasAnswer = new Promise((resolve) => {{
        const done = (value) => {{
            seen.disconnect(); clearTimeout(timer);
            kinds.forEach((kind) => window.removeEventListener(kind, input, {{capture: true}}));
            resolve(value);
        }};
        const seen = new MutationObserver(() => {{ if (key(e) !== before) done(performance.now() - started); }});
        const timer = setTimeout(() => done(null), timeoutMs);
        seen.observe(e.shadowRoot || e, {{subtree: true, childList: true, characterData: true}});
    }});
}}"""
TARGET_P95_MS = 1000.0
# Installed in every page before it loads: when the page last sent and received a websocket message,
# and the main plot's time range, so an unanswered gesture says where it was lost (the page never
# sent its new range, the server never answered, or the page never showed the answer).
WIRE = """
window.atlasWire = {sent: [], received: []};
const keep = (list) => { list.push(performance.now()); if (list.length > 8) list.shift(); };
window.WebSocket = class extends window.WebSocket {
    constructor(...args) { super(...args); this.addEventListener("message", () => keep(atlasWire.received)); }
    send(data) { keep(atlasWire.sent); return super.send(data); }
};
"""
WHERE = """(e) => {
    const since = (times) => times.map((t) => ((t - window.atlasInput) / 1e3).toFixed(2)).join(" ");
    const attached = e.isConnected ? "is" : "is not";
    const page = `inputs seen: ${atlasInputs.join(" ") || "none"}; the element ${attached} on the page`;
    const plot = MAIN_FIGURE;
    const range = plot ? plot.model.x_range : null;
    const stamp = (t) => new Date(t).toISOString().slice(11, 23);
    const shown = range ? `${stamp(range.start)} -> ${stamp(range.end)}` : "?";
    const wire = `the last messages sent ${since(atlasWire.sent)}, received ${since(atlasWire.received)}`;
    return `${page}; plot shows ${shown}; ${wire} (s from the last input)`;
}""".replace("MAIN_FIGURE", MAIN_FIGURE)


def lower_priority(nice: int) -> None:
    """Run every thread of this process's Chromium processes at ``nice`` or lower priority.

    The browsers stand in for people's own computers. Here they share the server's cores,
    and the kernel's fair share per thread gave twenty renderers' threads most of the CPU
    the server needs to answer them. At a lower priority they take what the server leaves;
    their own work still counts in every latency, which is measured in the page.

    Per thread: on Linux each thread has its own priority, and Chromium sets its own
    (its compositor and IO threads run at -8, above the server), also in every new renderer.
    """
    threads = []
    for proc in chromium_processes():
        try:
            threads += [thread.id for thread in proc.threads()]
        except psutil.Error:  # a process that has just ended
            pass
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:  # a thread that has just ended
            pass


def cpu_seconds(server: subprocess.Popen) -> dict[str, float]:
    """CPU seconds used so far by the server, by this run's Chromium processes, and by everything on the machine.

    Chromium's counts its processes that have ended too (their parents' ``children_*`` times), so a
    renderer that goes away does not take its CPU seconds with it.
    """
    chromium = 0.0
    for proc in chromium_processes():
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        chromium += times.user + times.system + times.children_user + times.children_system
    mine = psutil.Process(server.pid).cpu_times()
    machine = psutil.cpu_times()
    busy = machine.user + machine.nice + machine.system + machine.irq + machine.softirq  # (nice: the browsers)
    return {"server": mine.user + mine.system, "browsers": chromium, "machine": busy}


class Session:
    """One browser context: one person, one session on the server."""

    def __init__(self, index: int, browser, url: str, seed: int, timeout_s: float) -> None:
        self.index, self.browser, self.url, self.timeout_s = index, browser, url, timeout_s
        self.rng = np.random.default_rng(seed + index)
        self.answered: list[tuple[str, float, float]] = []  # (kind, when (time.monotonic), ms)
        self.unanswered: list[tuple[str, float, str]] = []  # (kind, when, what: the gesture and the view)
        self.opened = float("inf")  # when the page had its first image (time.monotonic)
        self.errors: list[str] = []
        self.gestures = 0
        self._plot_box: dict | None = None

    async def info(self) -> str:
        return await self.watched[INFO].evaluate(TEXT)

    async def open(self) -> None:
        self.context = await self.browser.new_context(viewport=VIEWPORT)
        await self.context.add_init_script(WIRE)
        self.page = await self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url[:120]} ({r.failure})"))
        await self.page.goto(self.url, timeout=180_000)
        await self.page.wait_for_function(IDLE, polling=250, timeout=180_000)
        self.watched = {
            selector: await self.page.locator(selector).element_handle(timeout=180_000) for selector in (INFO, LISTING)
        }
        await self.page.wait_for_function(
            f"(e) => !({TEXT})(e).includes('read 0 ms')", arg=self.watched[INFO], polling=250, timeout=180_000
        )
        self.opened = time.monotonic()

    async def plot_box(self) -> dict:
        """The spectrogram's box on the page: the tallest canvas, found once (the layout does not move).

        Found again at every gesture, a canvas Bokeh replaced between counting and measuring
        left Playwright waiting 30 s for it, and the session ended.
        """
        if self._plot_box is None:
            canvases = self.page.locator("canvas")
            boxes = [await canvases.nth(i).bounding_box() for i in range(await canvases.count())]
            self._plot_box = max((b for b in boxes if b), key=lambda b: b["height"])
        return self._plot_box

    async def _timed(self, kind: str, act, selector: str, key: str, what: str) -> None:
        """Time ``act`` until ``key`` (a JavaScript function of the element) changes, as the page sees it."""
        element = self.watched[selector]
        await self.page.evaluate(WATCH.format(key=key), [element, self.timeout_s * 1e3])
        shown = await element.evaluate(key)
        await act()
        latency = await self.page.evaluate("() => window.atlasAnswer")
        if latency is None:
            where = await element.evaluate(WHERE)
            now = await self.page.locator(selector).evaluate(key, timeout=5_000)  # found again
            where += f"; the element found again shows {now.strip()[:60]!r}"
            self.unanswered.append((kind, time.monotonic(), f"{what}, showing {shown.strip()[:60]!r}; {where}"))
        else:
            self.answered.append((kind, time.monotonic(), latency))

    async def zoomed_in(self) -> tuple[bool, bool]:
        """(room before, room after) the span shown, from the info pane; a gesture that cannot move is not timed."""
        stamps = re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", await self.info())
        if len(stamps) < 4:
            return False, False
        rec0, rec1, shown0, shown1 = stamps[:4]
        return shown0 > rec0, shown1 < rec1

    async def gesture(self) -> None:
        box = await self.plot_box()
        x = box["x"] + box["width"] * self.rng.uniform(0.15, 0.85)
        y = box["y"] + box["height"] * self.rng.uniform(0.2, 0.8)
        before, after = await self.zoomed_in()
        r = self.rng.random()
        mouse = self.page.mouse
        if r < 0.35 or not (before or after):  # a zoom (only in, when the whole recording is shown)
            delta = float((1 if (before or after) and self.rng.random() < 0.4 else -1) * self.rng.uniform(250, 500))

            async def act():
                await mouse.move(x, y)
                await mouse.wheel(0, delta)

            kind = "zoom out" if delta > 0 else "zoom in"
            await self._timed(kind, act, INFO, SHOWING, f"wheel {delta:+.0f}")
        elif r < 0.65:
            direction = 1.0 if before and (not after or self.rng.random() < 0.5) else -1.0  # +1: earlier comes in
            dx = box["width"] * self.rng.uniform(0.1, 0.3) * direction

            async def act():
                await mouse.move(x, y)
                await mouse.down()
                await mouse.move(x + dx, y, steps=6)
                await mouse.up()

            await self._timed("pan", act, INFO, SHOWING, f"drag {dx:+.0f} px")
        elif r < 0.85:
            label = str(self.rng.choice(["zoom +", "whole", *(["◀"] if before else []), *(["▶"] if after else [])]))
            button = self.page.get_by_role("button", name=label, exact=True)
            await self._timed("button", lambda: button.click(), INFO, SHOWING, f"button {label}")
        else:
            name = f"s{self.index}-{self.gestures}"
            lo = float(self.rng.uniform(100, 8000))
            await self.page.get_by_placeholder("name").fill(name)
            await self.page.get_by_label("low (Hz)").fill(f"{lo:.0f}")
            await self.page.get_by_label("high (Hz)").fill(f"{lo + 2000:.0f}")
            add = self.page.get_by_role("button", name="add band")
            await self._timed("band edit", lambda: add.click(), LISTING, TEXT, f"add band {name}")
            remove = self.page.locator(f"{LISTING} .choices__item[data-value='{name}'] .choices__button")
            if await remove.count():
                await self._timed("band edit", lambda: remove.first.click(), LISTING, TEXT, f"remove band {name}")
        self.gestures += 1

    async def run(self, until: float, delay: float, think: tuple[float, float]) -> None:
        try:
            await asyncio.sleep(delay)  # people arrive one after another, not in the same second
            await self.open()
            while True:
                await asyncio.sleep(float(self.rng.uniform(*think)))  # a person looks at the picture, the first too
                if time.monotonic() >= until:
                    break
                await self.gesture()
        except Exception as err:  # a session that breaks is an error of the run, not the end of it
            self.errors.append(f"session {self.index}: {type(err).__name__}: {str(err).splitlines()[0]}")

    async def close(self) -> None:
        if hasattr(self, "context"):
            await self.context.close()


async def drive(url: str, server: subprocess.Popen, args, server_log: Path) -> dict:
    rss: list[tuple[float, float, int, dict[str, float]]] = []
    t0 = time.monotonic()
    stop_sampling = asyncio.Event()

    async def sample() -> None:
        while not stop_sampling.is_set():
            rss.append((time.monotonic() - t0, rss_mb(server), open_sessions(server_log), cpu_seconds(server)))
            try:
                await asyncio.wait_for(stop_sampling.wait(), 5.0)
            except TimeoutError:
                pass

    async def keep_browsers_nice() -> None:
        while not stop_sampling.is_set():
            lower_priority(args.browser_nice)
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    nicer = asyncio.create_task(keep_browsers_nice())
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        sessions = [Session(i, browser, url, args.seed, args.timeout) for i in range(args.sessions)]
        until = time.monotonic() + args.minutes * 60
        load_started = time.monotonic() - t0
        cpu_before = cpu_seconds(server)
        think = (args.think * 0.5, args.think * 1.5)
        await asyncio.gather(*(s.run(until, i * args.stagger, think) for i, s in enumerate(sessions)))
        load_ended = time.monotonic() - t0
        cpu = {k: v - cpu_before[k] for k, v in cpu_seconds(server).items()}  # (while every renderer lives)
        await asyncio.gather(*(s.close() for s in sessions))
        await browser.close()
    await asyncio.sleep(args.linger)  # the server notices closed sessions and lets them go
    stop_sampling.set()
    await asyncio.gather(sampler, nicer)
    return {
        "sessions": sessions,
        "rss": rss,
        "t0": t0,
        "load_started": load_started,
        "load_ended": load_ended,
        "cpu": cpu,
    }


def open_sessions(server_log: Path) -> int:
    """The server's count of open sessions, from its last ``sessions open:`` log line (-1 if none yet)."""
    found = re.findall(r"sessions open: (\d+)", server_log.read_text(errors="replace"))
    return int(found[-1]) if found else -1


def server_errors(server_log: Path) -> list[str]:
    return [
        line for line in server_log.read_text(errors="replace").splitlines() if "ERROR" in line or "Traceback" in line
    ]


def _latency_row(rows: dict, label: str, values: list[float]) -> None:
    """Add and print one row of the latency tables (ms): n, p50, p95, max."""
    if values:
        p50, p95, top = np.percentile(values, 50), np.percentile(values, 95), max(values)
        rows[label] = {"n": len(values), "p50": p50, "p95": p95, "max": top}
        print(f"{label:<32}{len(values):>6}{p50:>9.0f}{p95:>9.0f}{top:>9.0f}")


def report(result: dict, server_log: Path, args) -> dict:
    sessions, t0 = result["sessions"], result["t0"]
    # Once every page has loaded: 20 page loads in 40 s are themselves most of what two cores can do.
    last_arrival = max(s.opened for s in sessions)
    timeouts = [
        f"session {s.index}: {kind} got no answer in {args.timeout:g} s, {when - t0:.0f} s into the run "
        f"({'after every page had loaded' if when > last_arrival else 'while pages were still loading'}; {what})"
        for s in sessions
        for kind, when, what in s.unanswered
    ]
    errors = [e for s in sessions for e in s.errors] + timeouts + server_errors(server_log)
    answered = [(s.index, kind, when, ms) for s in sessions for kind, when, ms in s.answered]
    pace = f"a gesture every {args.think * 0.5:g}-{args.think * 1.5:g} s each, browsers at nice {args.browser_nice}"
    print(f"\n{args.sessions} sessions for {args.minutes:g} min on {platform.node()} ({os.cpu_count()} cores), "
          f"{pace}, chunk cache {args.cache_mb:g} MB")  # fmt: skip
    print(f"{'interaction':<32}{'n':>6}{'p50':>9}{'p95':>9}{'max':>9}  (ms, gesture -> answer in the page)")
    rows: dict[str, dict] = {}
    for kind in sorted({kind for _, kind, _, _ in answered}):
        _latency_row(rows, kind, [ms for _, k, _, ms in answered if k == kind])
    _latency_row(rows, "all", [ms for *_, ms in answered])
    _latency_row(rows, "all, after the last page loaded", [ms for _, _, when, ms in answered if when > last_arrival])
    print(f"(time to the last page loaded: {last_arrival - t0:.0f} s)")
    # By minute of the run: the arrivals (and each page's first zoom from the whole recording) come first.
    print(f"\n{'minute of the run':<32}{'n':>6}{'p50':>9}{'p95':>9}{'max':>9}")
    for minute in sorted({int((when - t0) // 60) for _, _, when, _ in answered}):
        _latency_row(
            rows, f"minute {minute + 1}", [ms for _, _, when, ms in answered if int((when - t0) // 60) == minute]
        )
    cpu, wall = result["cpu"], result["load_ended"] - result["load_started"]
    cores = os.cpu_count() or 1
    print(f"\nCPU seconds over the {wall:.0f} s of load ({cores} cores: {cores * wall:.0f} available): "
          f"server {cpu['server']:.0f}, the Chromium processes {cpu['browsers']:.0f}, "
          f"the whole machine {cpu['machine']:.0f}")  # fmt: skip
    print("\nserver RSS (MB), open sessions, and the cores busy since the sample before, over time:")
    print(f"  {'time':>9}  {'RSS':>11}  {'sessions':>12}  {'server':>6}  {'Chromium':>8}  {'machine':>7}")
    previous = None
    for t, mb, n, used in result["rss"]:
        phase = "load" if result["load_started"] <= t <= result["load_ended"] else "idle"
        # (max 0: when the browser itself exits, its CPU seconds leave with it)
        cores = {k: max(v - previous[1][k], 0) / (t - previous[0]) for k, v in used.items()} if previous else {}
        busy = (
            "".join(f"  {cores[k]:{w}.2f}" for k, w in (("server", 6), ("browsers", 8), ("machine", 7)))
            if cores
            else ""
        )
        print(f"  {t:7.1f} s  {mb:8.1f} MB  sessions {n if n >= 0 else '?':>3}{busy}  {phase}")
        previous = (t, used)
    during = [mb for t, mb, _, _ in result["rss"] if result["load_started"] <= t <= result["load_ended"]]
    half = len(during) // 2
    first_half, second_half = max(during[:half] or [0]), max(during[half:] or [0])
    growth = second_half - first_half
    after = result["rss"][-1][:3]
    print(f"\nRSS max in the first half of the load {first_half:.0f} MB, second half {second_half:.0f} MB "
          f"(growth {growth:+.0f} MB); {after[1]:.0f} MB with {after[2]} sessions open after all closed")  # fmt: skip
    print(f"errors: {len(errors)}")
    for e in errors[:20]:
        print(f"  {e}")
    p95 = rows.get("all", {}).get("p95", float("nan"))
    checks = [
        ("errors == 0", len(errors) == 0, f"{len(errors)}"),
        (f"interaction p95 <= {TARGET_P95_MS:.0f} ms", p95 <= TARGET_P95_MS, f"{p95:.0f} ms"),
        (
            "RSS plateaus (second-half max within 10% of first-half max)",
            growth <= 0.1 * first_half,
            f"{growth:+.0f} MB",
        ),
        ("sessions released after close", after[2] == 0, f"{after[2]} open"),
    ]
    print()
    for name, ok, value in checks:
        print(f"target {name:<62}{value:>12}  {'PASS' if ok else 'MISS'}")
    return {
        "sessions": args.sessions,
        "minutes": args.minutes,
        "latency_ms": rows,
        "gestures": [(i, kind, when - t0, ms) for i, kind, when, ms in answered],  # seconds into the run, ms
        "errors": errors,
        "rss": result["rss"],
        "cpu_seconds": result["cpu"],
        "checks": {name: ok for name, ok, _ in checks},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help="concurrent browser sessions (default 20)")
    parser.add_argument("--minutes", type=float, default=3.0, help="minutes of load (default 3)")
    parser.add_argument("--store", type=Path, help="store to serve (default: a 1 h demo built in a temp dir)")
    parser.add_argument("--hours", type=float, default=1.0, help="length of the demo built without --store")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a gesture counts as an error")
    parser.add_argument("--linger", type=float, default=45.0, help="seconds of RSS sampling after the sessions close")
    parser.add_argument(
        "--think", type=float, default=10.0, help="mean seconds between a person's gestures (default 10; 0.5-1.5x)"
    )
    parser.add_argument(
        "--cache-mb",
        type=float,
        default=128.0,
        help="the server's chunk cache bound (default 128 MB, so it fills within minutes; the server's own is 512)",
    )
    parser.add_argument("--stagger", type=float, default=2.0, help="seconds between sessions' arrivals")
    parser.add_argument(
        "--browser-nice",
        type=int,
        default=10,
        help="niceness of the Chromium processes (default 10: the browsers stand in for people's own "
        "computers and take what the server leaves; 0: they compete with it)",
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="atlas-load-") as tmp:
        store = args.store
        if store is None:
            from data_access.demo import make_demo

            log.info("building a %g h demo store", args.hours)
            store = make_demo(Path(tmp), hours=args.hours, progress=False)
        port = free_port()
        server_log = Path(tmp) / "serve.log"
        os.environ["SPECTRAL_ATLAS_CACHE_MB"] = f"{args.cache_mb:g}"  # the server inherits the environment
        server = start_server(store, port, server_log, verbose=True)
        try:
            result = asyncio.run(drive(f"http://127.0.0.1:{port}/", server, args, server_log))
        finally:
            server.terminate()
            server.wait(timeout=30)
        figures = report(result, server_log, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
