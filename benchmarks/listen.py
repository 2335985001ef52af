"""Benchmark: from pressing play to the first sound, and the server's memory while five sessions play.

Run from the repository root::

    python benchmarks/listen.py                         # a 45 min demo store; 20 + 3 + 3 spans; 5 sessions
    python benchmarks/listen.py --spans 10 --long-spans 3 --store demo/demo.zarr --json listen.json

The store has its recordings: ``make_demo`` (``spectral-atlas demo``) writes 64 kHz
16-bit FLAC files of 10 min each (a 30 s gap between the second and third) and ingests
them, unless ``--store`` names one. ``spectral-atlas serve`` (``benchmarks/browser.py``'s
``start_server``) runs it on 127.0.0.1; Debian's Chromium (``/usr/bin/chromium`` through
Playwright's ``executable_path``, the arguments of the browser tests plus
``--autoplay-policy=no-user-gesture-required``; nothing is downloaded) opens it.

1. **Time to first sound.** For ``--spans`` different 1-minute spans (seeded, inside the
   recorded stretches), a fresh page is opened by a link (``?start=&end=``) and, once its
   first image is drawn, the player's ``.atlas-play`` button is pressed (a real click).
   Timed in the page (``performance.now()``) from the button's ``pointerdown``:
   ``sent`` (the page's ``play`` message leaves on the websocket), ``url`` (the
   ``<audio>`` element is given the clip's URL: the server read, prepared and wrote the
   clip and told the page: the server's part, round trip included), ``playing`` (the
   element's first ``playing`` event) and ``sound`` (its ``currentTime`` first above 0,
   polled every 4 ms: the sound really advancing). ``url -> sound`` is the browser's
   part (HTTP range requests for the WAV, decoding, the audio clock starting). The same
   for ``--long-spans`` 10-minute spans (the default ``--max-play-seconds``) and for 1-minute
   spans at speed 1/10 (a 10-minute clip). Target: p95 press -> sound <= 500 ms for 1 min.
   In-process, on the same store, the server's work for one clip is split into
   ``Atlas.audio`` (read the FLAC), ``prepare`` (resample to 48 kHz, normalise) and
   the 16-bit WAV write, timed, so the server's part is explained.
2. **Memory of five sessions playing.** Five browser contexts (five sessions) each open
   a different span; the server's RSS (psutil, with any children) is sampled every 50 ms
   from 1 s before the five presses until all five sound and ``--after`` seconds more;
   baseline (before the presses), peak, peak - baseline, and per session; for 1-minute
   and 10-minute spans. Compared with the float32 size of a span's samples (10 min at
   64 kHz: 154 MB, the 146 MiB printed). In-process, ``tracemalloc``'s peak over ``ListenPanel``'s own work
   function (read, prepare, write the WAV into the server's audio folder) says what
   holds the memory, for a 1-minute and a 10-minute span.

Figures on a shared 2-core machine are noisy: the load average at the start and the end
is printed with them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from browser import (  # noqa: E402  (the browser benchmark's server, page monitor and statistics)
    IDLE,
    SCREENSHOTS,
    VIEWPORT,
    _stats,
    free_port,
    open_monitored,
    rss_mb,
    settle,
    start_server,
    stop_server,
)
from chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (one place for how Chromium is launched)

from data_access import open_atlas  # noqa: E402

log = logging.getLogger("benchmarks.listen")

TARGET_FIRST_SOUND_MS = 500.0
SHORT_S, LONG_S = 60.0, 600.0
SESSIONS = 5
SAMPLE_S = 0.05  # RSS sampling period
SOUND_TIMEOUT_MS = 300_000
LAUNCH_ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
_NS = np.timedelta64(1, "ns")
_S = np.timedelta64(1_000_000_000, "ns")

# Installed before the page's own scripts (after browser.py's MONITOR_JS): the play button's pointerdown,
# the page's websocket sends, the <audio> element's src being set, play() called, its media events, and the
# first currentTime above 0.
LISTEN_JS = r"""
(() => {
  const now = () => performance.now();
  const L = (window.__listen = {press: null, sent: [], src: null, url: null, play: null, events: [], sound: null});
  window.addEventListener("pointerdown", (e) => {
    if (e.composedPath().some((el) => el.classList && el.classList.contains("atlas-play"))) L.press = now();
  }, {capture: true});
  const WS = window.WebSocket.prototype, send = WS.send;
  WS.send = function (data) { L.sent.push(now()); return send.call(this, data); };
  const media = HTMLMediaElement.prototype;
  const src = Object.getOwnPropertyDescriptor(media, "src");
  const kinds = ["loadstart", "loadedmetadata", "canplay", "playing", "waiting", "stalled", "error"];
  Object.defineProperty(media, "src", {
    ...src,
    set(value) {
      L.src = now();
      L.url = value;
      L.audio = this;
      if (!this.__listened) {
        this.__listened = true;
        for (const kind of kinds) this.addEventListener(kind, () => L.events.push([kind, now()]));
      }
      return src.set.call(this, value);
    },
  });
  const play = media.play;
  media.play = function () { if (L.play === null) L.play = now(); return play.call(this); };
  // From the press: poll the element's clock until it moves (setInterval: 4 ms at the most, once nested).
  L.watch = () => {
    const timer = setInterval(() => {
      if (L.audio && L.audio.currentTime > 0) { L.sound = now(); clearInterval(timer); }
    }, 1);
  };
  L.record = () => {
    const t0 = L.press, rel = (t) => (t === null || t === undefined || t0 === null ? null : t - t0);
    const first = (kind) => { const e = L.events.find(([k, t]) => k === kind && t >= L.src); return e ? e[1] : null; };
    const sent = L.sent.find((t) => t >= t0);
    const a = L.audio;
    return {
      pressed: t0 !== null, sent: rel(sent), url: rel(L.src), play_called: rel(L.play),
      loadedmetadata: rel(first("loadedmetadata")), canplay: rel(first("canplay")), playing: rel(first("playing")),
      sound: rel(L.sound), waiting: L.events.filter(([k]) => k === "waiting").length,
      duration_s: a ? a.duration : null, current_s: a ? a.currentTime : null,
      status: a ? (a.getRootNode().querySelector(".atlas-status") || {}).textContent : null,
    };
  };
})();
"""


# --- the store and its spans --------------------------------------------------------------------


def recorded_stretches(store: Path) -> list[tuple[np.datetime64, np.datetime64]]:
    """The store's stretches of recorded audio (its source files, those that touch merged), as (start, end)."""
    atlas = open_atlas(store)
    rate, origin = atlas.sample_rate, atlas.time_range[0]
    spans = sorted((int(r["offset"]), int(r["offset"]) + int(r["n_samples"])) for r in atlas.sources)
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    to_time = lambda n: origin + np.timedelta64(int(round(n / rate * 1e9)), "ns")  # noqa: E731
    return [(to_time(a), to_time(b)) for a, b in merged]


def pick_spans(stretches, seconds: float, n: int, rng) -> list[tuple[np.datetime64, np.datetime64]]:
    """``n`` spans of ``seconds`` at whole seconds, each inside one recorded stretch (drawn by their lengths)."""
    length = np.timedelta64(int(seconds * 1e9), "ns")
    room = [((b - a) - length) / _S for a, b in stretches]
    weights = np.array([max(r, 0.0) for r in room])
    if not weights.sum():
        raise SystemExit(f"no recorded stretch of the store holds {seconds:g} s: build a longer one (--minutes)")
    out = []
    for _ in range(n):
        k = rng.choice(len(stretches), p=weights / weights.sum())
        start = stretches[k][0] + np.timedelta64(int(rng.uniform(0, room[k])), "s")
        start = start.astype("datetime64[s]").astype("datetime64[ns]")
        start = max(start, np.datetime64(stretches[k][0], "s") + np.timedelta64(1, "s"))
        out.append((start, start + length))
    return out


def link(base: str, span: tuple[np.datetime64, np.datetime64]) -> str:
    """The explorer's link to ``span`` (``?start=&end=``, UTC to the millisecond)."""
    start, end = (np.datetime_as_string(t, unit="ms") + "Z" for t in span)
    return f"{base}?start={start}&end={end}"


# --- the page -----------------------------------------------------------------------------------


def open_page(context, url: str, errors: list[str]):
    """A new page at ``url`` with the monitors, once its first image is drawn and the player is there (untimed)."""
    page = open_monitored(context, url, errors, [LISTEN_JS])
    page.locator(".atlas-play").wait_for(timeout=60_000)
    return page


def set_rate(page, label: str) -> None:
    """Choose the player's speed by its label (``"1/10×"``) in the listen card, as a person does."""
    page.locator("select").filter(has=page.locator("option", has_text=label)).select_option(label)
    page.wait_for_function(IDLE, timeout=60_000)
    time.sleep(0.3)  # the change reaches the server (a websocket message) before the press


def press(page) -> None:
    """Start the clock poll and press the play button (a real click)."""
    page.evaluate("() => __listen.watch()")
    page.locator(".atlas-play").click()


def wait_for_sound(page) -> dict:
    """Wait until the element's clock moves (or the timeout); the page's record of the press."""
    try:
        page.wait_for_function("() => __listen.sound !== null", polling=50, timeout=SOUND_TIMEOUT_MS)
    except Exception:  # (said in the record: sound None)
        log.warning("no sound within %.0f s", SOUND_TIMEOUT_MS / 1e3)
    return page.evaluate("() => __listen.record()")


def stop(page) -> None:
    page.locator(".atlas-stop").click()


def first_sound(browser, base: str, spans, *, rate: str | None, errors: list[str], shot: Path | None) -> list[dict]:
    """Per span: a fresh page by a link, the speed chosen, play pressed, timed to the first sound."""
    records = []
    context = browser.new_context(viewport=VIEWPORT)
    try:
        for i, span in enumerate(spans):
            page = open_page(context, link(base, span), errors)
            if rate is not None:
                set_rate(page, rate)
            time.sleep(0.3)
            press(page)
            rec = wait_for_sound(page)
            rec.update(span=[str(t) for t in span], seconds=float((span[1] - span[0]) / _S), rate=rate or "1×")
            records.append(rec)
            log.info(
                "%2d %s %5.0f s at %s: sent %s, url %s, playing %s, sound %s ms (clip %.0f s)",
                i,
                span[0],
                rec["seconds"],
                rec["rate"],
                _ms(rec["sent"]),
                _ms(rec["url"]),
                _ms(rec["playing"]),
                _ms(rec["sound"]),
                rec["duration_s"] or 0,
            )
            if shot is not None and i == 0:
                time.sleep(1.5)  # the playhead a little way in
                page.mouse.move(2, 2)
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot))
            stop(page)
            page.close()
    finally:
        context.close()
    return records


class RssSampler:
    """The server's RSS (with its children) every ``SAMPLE_S`` on a thread, as (seconds, MB)."""

    def __init__(self, server) -> None:
        self.server, self.samples, self._stop = server, [], threading.Event()
        self._begin = time.perf_counter()

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.perf_counter() - self._begin, rss_mb(self.server)))
            except Exception:  # the server has gone: the samples end there
                return
            self._stop.wait(SAMPLE_S)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def now(self) -> float:
        return time.perf_counter() - self._begin


def five_play(browser, store: Path, spans, workdir: Path, *, after_s: float, errors: list[str]) -> dict:
    """On a fresh server, ``len(spans)`` sessions open a span each and press play at once; its RSS meanwhile."""
    port = free_port()
    server = start_server(store, port, workdir / f"serve-five-{port}.log")
    base = f"http://127.0.0.1:{port}/"
    listening = rss_mb(server)
    contexts = [browser.new_context(viewport=VIEWPORT) for _ in spans]
    try:
        pages = [open_page(c, link(base, s), errors) for c, s in zip(contexts, spans, strict=True)]
        for page in pages:  # each page's follow-up work (curves, selections, waveform) done before the presses
            settle(page)
        with RssSampler(server) as rss:
            time.sleep(1.0)
            pressed = rss.now()
            for page in pages:
                press(page)
            records = [wait_for_sound(page) for page in pages]
            sounding = rss.now()
            time.sleep(after_s)
        for page in pages:
            stop(page)
    finally:
        for c in contexts:
            c.close()
        stop_server(server)
    t, mb = np.array(rss.samples).T
    base_mb = float(mb[t < pressed].mean())
    peak = float(mb.max())
    return {
        "spans": [[str(a), str(b)] for a, b in spans],
        "records": records,
        "listening_mb": listening,
        "baseline_mb": base_mb,
        "peak_mb": peak,
        "peak_at_s": float(t[mb.argmax()] - pressed),
        "all_sounding_s": sounding - pressed,
        "end_mb": float(mb[-1]),
        "samples": [[round(float(a - pressed), 3), round(float(b), 1)] for a, b in zip(t, mb, strict=True)],
    }


# --- in-process: what the server's work costs ---------------------------------------------------


def server_work(store: Path, spans, *, traced: bool) -> list[dict]:
    """Per span: ``Atlas.audio``, ``prepare`` and the WAV write timed; or tracemalloc's peak over ListenPanel's work."""
    from dashboard.listen import OUT_RATE, ListenPanel, serve_audio_files
    from dashboard.state import ExplorerState
    from data_access.audio import prepare

    serve_audio_files()  # the server's audio folder, in this process: the work function writes its WAV there
    atlas = open_atlas(store)
    out = []
    for span, rate in spans:
        rec = {"seconds": float((span[1] - span[0]) / _S), "rate": rate}
        if traced:
            panel = ListenPanel(state=ExplorerState(atlas), rate=rate)
            panel.state.set_time(*span)
            request = panel.request()
            tracemalloc.start()
            begin = time.perf_counter()
            clip, made = panel._prepared(request)
            rec["wall_s"] = time.perf_counter() - begin
            rec["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            rec["wav_mb"] = made["path"].stat().st_size / 2**20
            rec["float32_mb"] = (span[1] - span[0]) / _S * atlas.sample_rate * 4 / 2**20
            made["path"].unlink()
            del clip, made, panel
        else:
            t0 = time.perf_counter()
            clip = atlas.audio(time=span, max_seconds=LONG_S)
            t1 = time.perf_counter()
            ready = prepare(clip, rate=rate, out_rate=OUT_RATE, normalise=True)
            t2 = time.perf_counter()
            with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
                sf.write(tmp.name, np.clip(ready.samples, -1.0, 1.0), OUT_RATE, format="WAV", subtype="PCM_16")
            t3 = time.perf_counter()
            rec.update(read_ms=(t1 - t0) * 1e3, prepare_ms=(t2 - t1) * 1e3, write_ms=(t3 - t2) * 1e3)
            del clip, ready
        out.append(rec)
    return out


# --- report -------------------------------------------------------------------------------------

STEPS = (
    ("press -> sent", lambda r: r["sent"]),
    ("press -> url (server)", lambda r: r["url"]),
    ("url -> playing", lambda r: _minus(r["playing"], r["url"])),
    ("url -> sound (browser)", lambda r: _minus(r["sound"], r["url"])),
    ("press -> playing", lambda r: r["playing"]),
    ("press -> sound", lambda r: r["sound"]),
)


def _minus(a, b):
    return None if a is None or b is None else a - b


def _ms(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def report(result: dict, args) -> dict:
    """Print the tables and the targets; return the summary."""
    print(f"\nSpectral Atlas, listening: headless Chromium {result['chromium']}, store {result['store']}")
    print(
        f"machine: nproc {os.cpu_count()}, python {platform.python_version()}; load average at the start "
        f"{result['load_start']}, at the end {result['load_end']}"
    )
    print(
        "\ntime to first sound: in the page, from the play button's pointerdown (ms). sent = the play message "
        "leaves;\nurl = the <audio> element is given the clip's URL (the server read, prepared and wrote it; "
        "round trip\nincluded); playing = its first 'playing' event; sound = its currentTime first above 0.\n"
    )
    head = f"{'':<34} {'n':>3} {'p50':>7} {'p95':>7} {'max':>7}"
    summary: dict = {"first_sound": {}}
    for name, records in result["first_sound"].items():
        print(f"{name} (clip {_clip(records)})\n" + head + "\n" + "-" * len(head))
        rows = {}
        for step, value in STEPS:
            s = _stats(value(r) for r in records)
            if s:
                rows[step] = s
                print(f"  {step:<32} {s['n']:>3} {s['p50']:>7.0f} {s['p95']:>7.0f} {s['max']:>7.0f}")
        silent = sum(r["sound"] is None for r in records)
        if silent:
            print(f"  {silent} of {len(records)} presses gave no sound within {SOUND_TIMEOUT_MS / 1e3:g} s")
        summary["first_sound"][name] = rows
        print()
    work = result["server_work"]
    print("the server's work for one clip, in-process (ms; read = Atlas.audio of the FLAC, prepare = resample")
    print("to 48 kHz and normalise, write = the 16-bit WAV), and tracemalloc's peak over ListenPanel's work")
    print("function (read, prepare, write into the server's audio folder), against the span's float32 samples:")
    head = f"{'span':>8} {'speed':>6} {'read':>7} {'prepare':>8} {'write':>7} {'total':>7}  {'peak':>8} {'float32':>8}"
    print(head + "\n" + "-" * len(head))
    for timed, traced in zip(work["timed"], work["traced"], strict=True):
        total = timed["read_ms"] + timed["prepare_ms"] + timed["write_ms"]
        print(
            f"{timed['seconds']:>6.0f} s {timed['rate']:>6g} {timed['read_ms']:>7.0f} {timed['prepare_ms']:>8.0f} "
            f"{timed['write_ms']:>7.0f} {total:>7.0f}  {traced['traced_peak_mb']:>5.0f} MB "
            f"{traced['float32_mb']:>5.0f} MB"
        )
    print()
    summary["server_work"] = work
    print(
        f"memory: {SESSIONS} sessions on a fresh server press play at once (its RSS with any children, every ", end=""
    )
    print(f"{SAMPLE_S * 1e3:g} ms)")
    head = (
        f"{'spans':>8} {'listening':>10} {'baseline':>9} {'peak':>8} {'peak-base':>10} {'a session':>10}"
        f" {'float32':>8}  press -> sound, each session (s)"
    )
    print(head + "\n" + "-" * len(head))
    summary["memory"] = {}
    for name, m in result["memory"].items():
        seconds = SHORT_S if name == "1 min" else LONG_S
        float32 = seconds * result["sample_rate"] * 4 / 2**20
        grow = m["peak_mb"] - m["baseline_mb"]
        sounds = sorted(float("inf") if r["sound"] is None else r["sound"] / 1e3 for r in m["records"])
        print(
            f"{name:>8} {m['listening_mb']:>7.0f} MB {m['baseline_mb']:>6.0f} MB {m['peak_mb']:>5.0f} MB "
            f"{grow:>7.0f} MB {grow / SESSIONS:>7.0f} MB {float32:>5.0f} MB  " + " ".join(f"{x:.1f}" for x in sounds)
        )
        summary["memory"][name] = {
            "listening_mb": m["listening_mb"],
            "baseline_mb": m["baseline_mb"],
            "peak_mb": m["peak_mb"],
            "growth_mb": grow,
            "per_session_mb": grow / SESSIONS,
            "float32_span_mb": float32,
            "end_mb": m["end_mb"],
            "sound_s": sounds,
        }
    print(
        "(listening: the fresh server's RSS; baseline: with the five pages open, before the presses; a session:\n"
        "(peak - baseline) / 5; float32: one span's samples at the recording's rate, 4 bytes each)"
    )
    errors = result["errors"]
    print(f"\nbrowser console errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    print(f"screenshot: {args.shot.relative_to(ROOT) if args.shot.is_relative_to(ROOT) else args.shot}")
    checks = []
    for name in result["first_sound"]:
        p95 = summary["first_sound"][name].get("press -> sound", {}).get("p95", float("inf"))
        checks.append((f"press -> sound p95, {name}", p95))
    print()
    for name, value in checks:
        ok = value <= TARGET_FIRST_SOUND_MS
        print(f"target {name + f' <= {TARGET_FIRST_SOUND_MS:g} ms':<52} {value:>7.0f} ms  {'PASS' if ok else 'MISS'}")
    summary["targets"] = [{"target": n, "value_ms": v, "pass": v <= TARGET_FIRST_SOUND_MS} for n, v in checks]
    return summary


def _clip(records: list[dict]) -> str:
    durations = [r["duration_s"] for r in records if r["duration_s"]]
    return f"{np.median(durations):.0f} s at 48 kHz" if durations else "?"


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="a store with its recordings (default: a demo built in a temp dir)")
    parser.add_argument("--minutes", type=float, default=45.0, help="length of the demo built without --store")
    parser.add_argument("--spans", type=int, default=20, help="1-minute spans timed (default 20)")
    parser.add_argument(
        "--long-spans", type=int, default=3, help="10-minute spans, and 1-min spans at 1/10 (default 3)"
    )
    parser.add_argument("--after", type=float, default=5.0, help="seconds of RSS sampling after all five sound")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--port", type=int, help="server port (default: a free one)")
    parser.add_argument("--json", type=Path, help="also write the records and the summary here")
    parser.add_argument("--shot", type=Path, default=SCREENSHOTS / "listen.png", help="screenshot of a playing page")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        parser.error(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_BIN)")
    load_start = [round(x, 2) for x in os.getloadavg()]
    workdir = Path(tempfile.mkdtemp(prefix="atlas-listen-bench-"))
    try:
        store = args.store
        if store is None:
            from data_access.demo import make_demo

            log.info("building a %g min demo store in %s", args.minutes, workdir)
            store = make_demo(workdir, hours=args.minutes / 60, progress=False)
        rng = np.random.default_rng(args.seed)
        stretches = recorded_stretches(store)
        short = pick_spans(stretches, SHORT_S, args.spans, rng)
        long = pick_spans(stretches, LONG_S, args.long_spans, rng)
        slow = pick_spans(stretches, SHORT_S, args.long_spans, rng)
        five_short = pick_spans(stretches, SHORT_S, SESSIONS, rng)
        five_long = pick_spans(stretches, LONG_S, SESSIONS, rng)

        log.info("the server's work, in-process")
        cases = [(short[0], 1.0), (long[0], 1.0), (slow[0], 0.1)]
        work = {"timed": server_work(store, cases, traced=False), "traced": server_work(store, cases, traced=True)}

        errors: list[str] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
            try:
                version = browser.version
                port = args.port or free_port()
                server = start_server(store, port, workdir / "serve.log")
                base = f"http://127.0.0.1:{port}/"
                sound = {}
                try:
                    for name, spans, rate, shot in (
                        ("1 min span, 1×", short, None, args.shot),
                        ("10 min span, 1×", long, None, None),
                        ("1 min span, 1/10×", slow, "1/10×", None),
                    ):
                        log.info("time to first sound: %s, %d spans", name, len(spans))
                        sound[name] = first_sound(browser, base, spans, rate=rate, errors=errors, shot=shot)
                finally:
                    stop_server(server)
                memory = {}
                for name, spans in (("1 min", five_short), ("10 min", five_long)):
                    log.info("memory: %d sessions play %s spans at once, on a fresh server", SESSIONS, name)
                    memory[name] = five_play(browser, store, spans, workdir, after_s=args.after, errors=errors)
                    log.info("  baseline %.0f MB, peak %.0f MB", memory[name]["baseline_mb"], memory[name]["peak_mb"])
            finally:
                browser.close()
        result = {
            "store": str(store),
            "sample_rate": open_atlas(store).sample_rate,
            "chromium": version,
            "load_start": load_start,
            "load_end": [round(x, 2) for x in os.getloadavg()],
            "first_sound": sound,
            "server_work": work,
            "memory": memory,
            "errors": errors,
        }
        summary = report(result, args)
        if args.json:
            args.json.write_text(json.dumps({**result, "summary": summary}, indent=1, default=str))
            log.info("wrote %s", args.json)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
