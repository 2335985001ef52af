"""End to end: a real `spectral-atlas serve` driven by a real headless Chromium.

Debian's chromium is used through Playwright's ``executable_path``; no browser is
downloaded. ``make test`` installs it (as root); without it these tests fail and
say what to install. Screenshots of each step land in ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np
import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS, MAIN_FIGURE
from PIL import Image, ImageChops
from playwright.sync_api import expect

from data_access.demo import make_demo

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
IDLE = "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `apt-get install -y chromium` (make test does it as root)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1500, "height": 1000}, "accept_downloads": True}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(cmd: list[str], url: str, log_path: Path):
    """Run a server command until ``url`` answers 200; stop it afterwards."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd[:3]} exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
                try:
                    # A page's first answer builds a session: 3-4 s on a loaded machine, so a short timeout
                    # never saw one (each try building another) and the server "never came up".
                    with urllib.request.urlopen(url, timeout=30) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("demo"), hours=0.1, progress=False)


@pytest.fixture(scope="module")
def server(demo_store, tmp_path_factory, cli):
    port = _free_port()
    cmd = [*cli, "serve", str(demo_store), "--port", str(port)]
    with running(cmd, f"http://127.0.0.1:{port}/", tmp_path_factory.mktemp("log") / "serve.log") as url:
        yield url


def open_app(page, url: str):
    """Open the explorer at ``url`` once its first image has been read; ``page.errors`` collects console errors."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function(IDLE, timeout=60_000)
    page.locator(".atlas-info").wait_for()
    wait_for(lambda: "read 0 ms" not in _info_text(page))  # the first image has been read
    page.errors = errors
    return page


@pytest.fixture
def app(page, server):
    return open_app(page, server)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def main_plot(page):
    """The spectrogram: the tallest Bokeh canvas on the page."""
    canvases = page.locator("canvas")
    boxes = [(canvases.nth(i).bounding_box() or {"height": 0}, i) for i in range(canvases.count())]
    return canvases.nth(max(boxes, key=lambda b: b[0]["height"])[1])


def overview_plot(page):
    """The overview strip: the canvas about 110 px tall."""
    canvases = page.locator("canvas")
    for i in range(canvases.count()):
        box = canvases.nth(i).bounding_box()
        if box and 80 <= box["height"] <= 130:
            return canvases.nth(i)
    raise AssertionError("no overview strip on the page")


def drag(page, canvas, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press, move and release the mouse between two points given as fractions of ``canvas``."""
    box = canvas.bounding_box()
    x0, y0 = box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1]
    x1, y1 = box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=12)
    page.mouse.up()


def page_url(page) -> str:
    # Not page.url: the sync API only hears of history changes while it is called.
    return page.evaluate("window.location.href")


def colormap_select(page):
    return page.locator("select").filter(has=page.locator("option", has_text="kbc"))


def plot_pixels(page) -> Image.Image:
    return Image.open(io.BytesIO(main_plot(page).screenshot())).convert("RGB")


def text_of(page, css: str) -> str:
    """The text of the element of class ``css``: Panel puts css_classes on a shadow-DOM host, read inside it."""
    return page.locator(css).evaluate(TEXT)


# The text inside an element's shadow root, without its stylesheets.
TEXT = """(e) => {
    let text = '';
    const walk = (node) => {
        for (const child of node.childNodes) {
            if (child.nodeType === Node.TEXT_NODE) text += child.textContent;
            else if (child.nodeName !== 'STYLE') walk(child);
        }
    };
    walk(e.shadowRoot || e);
    return text;
}"""


def _info_text(page) -> str:
    return text_of(page, ".atlas-info")


def info_level(page) -> int:
    return int(_info_text(page).split("level ")[1].split()[0])


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.2)
    return value


def test_page_loads_without_errors_and_shows_a_spectrogram(app):
    shot(app, "1-loaded")
    assert app.errors == []
    pixels = plot_pixels(app)
    assert len(pixels.getcolors(1 << 20) or []) > 200  # a picture, not a blank canvas
    assert info_level(app) > 0
    # Every plot is drawn on a canvas: copying software WebGL onto the page cost a zoom ~115 ms.
    backends = app.evaluate("""() => [...Bokeh.index.all_views()]
        .filter((v) => v.model.type === "Figure").map((v) => v.model.output_backend)""")
    assert backends == ["canvas"] * 4  # spectrogram, waveform strip, band curves, overview


# Every width the spectrogram's frame takes while the page loads, recorded from the page's start.
FRAME_WIDTHS = f"""
window.frameWidths = [];
setInterval(() => {{
    const tallest = window.Bokeh && Bokeh.index ? {MAIN_FIGURE} : undefined;
    const width = tallest ? Math.round(tallest.frame.bbox.width) : 0;
    if (width && width !== window.frameWidths[window.frameWidths.length - 1]) window.frameWidths.push(width);
}}, 10);
"""


def test_the_spectrogram_keeps_one_size_while_the_page_loads(page, server):
    # Each size the frame takes is an image read at that size and sent to the page. The frame once
    # went 773 -> 780 -> 773 px while the page loaded: the image's left border lost its room for the
    # frequency labels at the first resize and got it back at the next, and the page drew it twice more.
    page.add_init_script(FRAME_WIDTHS)
    page.goto(server)
    page.wait_for_function(IDLE, timeout=60_000)
    wait_for(lambda: "read 0 ms" not in _info_text(page))
    time.sleep(2)  # time for a later resize to show
    page.wait_for_function(IDLE)
    widths = page.evaluate("window.frameWidths")
    assert len(widths) == 1, f"the spectrogram's frame took the widths {widths} px"


def test_wheel_zoom_reads_a_finer_level(app):
    before_level, before = info_level(app), plot_pixels(app)
    box = main_plot(app).bounding_box()
    app.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    for _ in range(6):
        app.mouse.wheel(0, -400)
        time.sleep(0.3)
    wait_for(lambda: info_level(app) < before_level)
    app.wait_for_function(IDLE)
    shot(app, "2-zoomed")
    after = plot_pixels(app)
    assert ImageChops.difference(after, before).getbbox() is not None  # a new picture


def test_a_drag_after_the_pointer_rested_still_pans(app):
    # Bokeh takes a pointer held still for 300 ms as a long press and ignores the drag after it:
    # a person who presses, looks, then drags (or a busy page that saw the moves late) got nothing.
    app.locator("text=zoom +").first.click()  # half the recording: room to pan
    half = "showing 2026-01-15 00:01:30.000 → 2026-01-15 00:04:30.000"
    wait_for(lambda: half in _info_text(app))
    box = main_plot(app).bounding_box()
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    app.mouse.move(x, y)
    app.mouse.down()
    time.sleep(0.8)  # resting, well past the 300 ms of a long press
    app.mouse.move(x - box["width"] * 0.2, y, steps=8)
    app.mouse.up()
    wait_for(lambda: half not in _info_text(app) and "showing 2026-01-15 00:0" in _info_text(app))


def test_a_gesture_shows_the_busy_indicator_until_its_image_arrives(app):
    app.locator("text=zoom +").first.click()  # half the recording: a pan has somewhere to go
    wait_for(lambda: "showing 2026-01-15 00:01:30.000" in _info_text(app))
    # Record every change of the indicator's style (its stylesheet lives in its shadow root): busy is
    # opacity 1 after a 250 ms transition delay with the spinner turning, idle is opacity 0 with no
    # transition and the spinner paused (a hidden spinner turning costs an idle page most of its CPU).
    app.locator(".atlas-busy").evaluate("""host => {
        window.busySeen = [];
        const record = () => {
            const css = getComputedStyle(host);
            const spinner = (host.shadowRoot || host).querySelector('.loader');
            const turning = getComputedStyle(spinner.shadowRoot.querySelector('div'), '::after');
            window.busySeen.push([css.transitionProperty !== 'none' || css.opacity === '1',
                                  turning.animationPlayState === 'running']);
        };
        new MutationObserver(record).observe(host.shadowRoot || host,
            {subtree: true, childList: true, characterData: true, attributes: true});
        new MutationObserver(record).observe(host, {attributes: true});
        record();
    }""")
    assert app.evaluate("window.busySeen") == [[False, False]]  # idle: hidden and still
    drag(app, main_plot(app), (0.6, 0.5), (0.3, 0.5))  # a pan
    wait_for(lambda: [True, True] in app.evaluate("window.busySeen"))
    wait_for(lambda: app.evaluate("window.busySeen[window.busySeen.length - 1]") == [False, False])
    assert app.errors == []


def test_dragging_on_the_overview_selects_the_time_shown(app):
    def showing() -> tuple[np.datetime64, np.datetime64]:
        shown = _info_text(app).split("showing ")[1].split(" → ")
        return tuple(np.datetime64(t.strip()[:23]) for t in (shown[0], shown[1].split("\n")[0][:23]))

    level = info_level(app)
    whole = showing()
    drag(app, overview_plot(app), (0.40, 0.25), (0.45, 0.25))  # over the strip (its time axis is below)
    # (The span, not the level: on a busy machine the first image can still be re-read at the final plot size.)
    start, end = wait_for(lambda: (shown := showing()) != whole and shown)
    recording = (np.datetime64("2026-01-15T00:06:00") - np.datetime64("2026-01-15T00:00:00")).astype(float)
    assert 0.03 < (end - start).astype("timedelta64[ms]").astype(float) / 1e3 / recording < 0.07
    wait_for(lambda: info_level(app) < level)
    shot(app, "3-overview-drag")


def test_typing_start_and_end_moves_the_view(app):
    level = info_level(app)
    for label, value in (("end (UTC)", "2026-01-15 00:02:00"), ("start (UTC)", "2026-01-15 00:01:00")):
        field = app.locator(f"text={label}").locator("xpath=..").locator("input").first
        field.fill(value)
        field.press("Enter")
    wait_for(lambda: "showing 2026-01-15 00:01:00.000 → 2026-01-15 00:02:00.000" in _info_text(app))
    wait_for(lambda: info_level(app) < level)  # one minute is read from a finer level
    shot(app, "3-typed-range")


def test_keyboard_pages_and_zooms(app):
    app.locator("text=zoom +").first.click()  # half the recording: room to page
    wait_for(lambda: "showing 2026-01-15 00:01:30.000 → 2026-01-15 00:04:30.000" in _info_text(app))
    app.locator("body").click(position={"x": 5, "y": 900})  # focus the page, not an input
    app.keyboard.press("ArrowRight")
    wait_for(lambda: "showing 2026-01-15 00:03:00.000 → 2026-01-15 00:06:00.000" in _info_text(app))
    app.keyboard.press("Home")
    wait_for(lambda: "showing 2026-01-15 00:00:00.000 → 2026-01-15 00:06:00.000" in _info_text(app))


def test_adding_a_band_adds_a_curve_and_the_csv_has_it(app):
    app.get_by_placeholder("name").fill("my band")
    app.get_by_role("button", name="add band").click()
    expect(app.locator(".band-listing")).to_contain_text("my band")
    shot(app, "4-band-added")
    with app.expect_download() as download:
        app.get_by_role("button", name="curves (CSV)").click()
    header = Path(download.value.path()).read_text().splitlines()[0]
    assert header.startswith("time_utc,") and ",my band [1000-2000 Hz] (dB re full scale)" in header


def test_panel_serve_app_py_serves_the_same_explorer(page, demo_store, tmp_path):
    port = _free_port()
    cmd = [
        sys.executable, "-m", "panel", "serve", "dashboard/app.py",
        "--port", str(port), "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}",
        "--args", str(demo_store),  # last: --args takes everything after it
    ]  # fmt: skip
    with running(cmd, f"http://127.0.0.1:{port}/app", tmp_path / "panel.log") as url:
        page.goto(url)
        page.wait_for_function(IDLE, timeout=60_000)
        expect(page.locator(".atlas-info")).to_contain_text("demo.zarr")
        wait_for(lambda: "read 0 ms" not in _info_text(page))


def test_a_copied_link_opens_the_same_view_in_a_fresh_browser(app, browser, server):
    app.context.grant_permissions(["clipboard-read", "clipboard-write"])
    app.locator("text=zoom +").first.click()
    wait_for(lambda: "start=" in page_url(app))
    app.get_by_placeholder("name").fill("link band")
    app.get_by_role("button", name="add band").click()
    expect(app.locator(".band-listing")).to_contain_text("link band")
    colormap_select(app).select_option("kbc")
    wait_for(lambda: "kbc" in page_url(app) and "link+band" in page_url(app))
    app.get_by_role("button", name="copy link").click()
    link = wait_for(lambda: app.evaluate("window.atlasCopiedLink"))
    assert link == page_url(app)
    shown = _info_text(app).split("showing ")[1][:50]
    fresh = browser.new_context(viewport={"width": 1500, "height": 1000})
    try:
        other = open_app(fresh.new_page(), link)
        assert _info_text(other).split("showing ")[1][:50] == shown
        expect(other.locator(".band-listing")).to_contain_text("link band")
        assert colormap_select(other).input_value() == "kbc"
        assert other.errors == []
        shot(other, "6-deep-link")
    finally:
        fresh.close()


@pytest.mark.parametrize(
    "query, message",
    [
        ("start=not-a-date&end=2026-01-15T00:02:00", "link-message"),
        ("start=2026-01-15T00:04:00&end=2026-01-15T00:01:00", "link-message"),
        ("start=1990-01-01&end=1990-01-02", "link-message"),
        ("fmin=1e999", "link-message"),
        ("db=5,-5&cmap=%3Cscript%3E", "link-message"),
        ("bands=x:1-99999999", "link-message"),
        ("store=..%2F..%2Fetc%2Fpasswd", "store-message"),
        ("store=nothing-here&start=2026-01-15T00:01:00&end=2026-01-15T00:02:00", "store-message"),
    ],
)
def test_a_malformed_link_opens_the_default_view_with_a_message(page, server, query, message):
    opened = open_app(page, f"{server}?{query}")
    expect(opened.locator(f".{message}")).to_contain_text(
        "could not be followed" if message == "link-message" else "No store"
    )
    if "start=2026" not in query:
        assert "showing 2026-01-15 00:00:00.000 → 2026-01-15 00:06:00.000" in _info_text(opened)
    # The address holds the view shown, not the link's bad parts (nor a store it could not open).
    wait_for(lambda: set(link(opened)) == {"start", "end", "fmin", "fmax", "db", "cmap", "agg", "scale", "bands"})
    shown = link(opened)
    assert "<script>" not in page_url(opened) and shown["cmap"] == "fire"
    # The message can be dismissed.
    opened.locator(f".{message}-close").click()
    expect(opened.locator(f".{message}")).to_be_hidden()
    assert opened.errors == []


def test_a_page_whose_websocket_comes_late_styles_itself_from_this_server(page, demo_store, tmp_path, cli):
    # A busy server can take longer to answer a page's websocket than Bokeh keeps the
    # page's session waiting: Bokeh then builds a new session for the websocket, and
    # Panel used to point that session's stylesheets at its CDN (unreachable offline).
    port = _free_port()
    log = tmp_path / "serve.log"
    cmd = [*cli, "-v", "serve", str(demo_store), "--port", str(port)]
    cmd += ["--unused-session-lifetime", "1000", "--check-unused-sessions", "300"]
    elsewhere: list[str] = []
    page.on(
        "request", lambda r: elsewhere.append(r.url) if urlsplit(r.url).hostname not in (None, "127.0.0.1") else None
    )

    def late(ws) -> None:
        time.sleep(3)  # the page's own session is dropped meanwhile
        ws.connect_to_server()

    page.route_web_socket(re.compile(r"/ws$"), late)
    with running(cmd, f"http://127.0.0.1:{port}/", log) as url:
        page = open_app(page, url)
        expect(page.locator(".atlas-info")).to_contain_text("demo.zarr")
        served = log.read_text()
    # One session per GET of the page (the readiness probe's, which a busy machine can make twice,
    # and the page's), and one for the page's late websocket.
    gets = served.count(" GET / (")
    assert gets >= 2 and served.count("session opened") == gets + 1, served[-3000:]
    assert page.errors == []
    assert elsewhere == []


# ------------------------------------------------------------- what a person sees after each gesture
FRAME = f"""() => {{ const v = {MAIN_FIGURE}; const f = v.frame.bbox, r = v.el.getBoundingClientRect();
    return {{x: r.x + f.x, y: r.y + f.y, width: f.width, height: f.height}}; }}"""
RANGES = f"""() => {{ const m = ({MAIN_FIGURE}).model;
    return [m.x_range.start, m.x_range.end, m.y_range.start, m.y_range.end]; }}"""


RECORD_RANGES = f"""() => {{ const m = ({MAIN_FIGURE}).model; window.atlasRanges = [];
    const note = () => window.atlasRanges.push([m.x_range.start, m.x_range.end, m.y_range.start, m.y_range.end]);
    note(); m.x_range.change.connect(note); m.y_range.change.connect(note); }}"""


def frame(page) -> dict:
    """The spectrogram's data area (inside its axes), in page pixels."""
    return page.evaluate(FRAME)


def plot_ranges(page) -> list[float]:
    """The spectrogram's (x0, x1, y0, y1) as Bokeh holds them in the page (x in ms since 1970)."""
    return page.evaluate(RANGES)


def link(page) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(page_url(page)).query))


def ms(text: str) -> float:
    return float(np.datetime64(text.removesuffix("Z"), "ns").astype("int64")) / 1e6


def frame_pixels(page) -> np.ndarray:
    page.mouse.move(1, 1)  # no tooltip over the picture
    time.sleep(0.3)
    return np.asarray(Image.open(io.BytesIO(page.screenshot(clip=frame(page)))).convert("RGB")).astype(int)


def settled(page, seconds: float = 1.5) -> None:
    """Wait until the page's document is idle and nothing is read any more."""
    page.wait_for_function(IDLE)
    time.sleep(seconds)
    page.wait_for_function(IDLE)


def test_a_fast_wheel_zoom_keeps_every_step_and_both_axes_show_the_state(app):
    # Six notches 60 ms apart over the image: the server answered each with the image of an
    # earlier step and snapped the axes back (the y axis to the bands' spans), so the view
    # zoomed like three notches and 75 % of the plot went blank. Later, under load, each answer
    # still sent the page the range of its own (earlier) notch for a moment (the same instant, as a
    # datetime64 rather than the page's float): the axes jumped back and forth before they settled.
    box = frame(app)
    app.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.6)
    app.evaluate(RECORD_RANGES)  # every change of the axes from now on, however late it comes
    for _ in range(6):
        app.mouse.wheel(0, -200)
        time.sleep(0.06)
    # Done when the page has taken all six notches and then nothing changes for a while.
    wait_for(lambda: len({round(x1 - x0, 3) for x0, x1, *_ in app.evaluate("window.atlasRanges")}) >= 7)
    settled(app, 3.0)
    shot(app, "7-fast-wheel-zoom")
    history = np.array(app.evaluate("window.atlasRanges"))
    final = plot_ranges(app)
    assert final == history[-1].tolist()
    # No answer moved the axes back: each axis only ever narrowed, in six steps (one a notch).
    for lo, hi in ((0, 1), (2, 3)):
        span = history[:, hi] - history[:, lo]
        assert (np.diff(span) <= span[:-1] * 1e-9).all(), f"an answer widened the axis again: {span.tolist()}"
    assert len(np.unique(np.round(history[:, 1] - history[:, 0], 3))) == 7, history.tolist()
    query = link(app)  # the state, as the URL holds it
    assert ms(query["start"]) == pytest.approx(final[0], abs=1) and ms(query["end"]) == pytest.approx(final[1], abs=1)
    assert float(query["fmin"]) == pytest.approx(final[2], rel=1e-6)
    assert float(query["fmax"]) == pytest.approx(final[3], rel=1e-6)
    assert (final[3] - final[2]) < 32_000 * 0.6  # six notches zoomed the frequency axis too
    blank = (frame_pixels(app).min(axis=2) > 225).mean()
    assert blank < 0.02, f"{blank:.0%} of the plot is blank"
    assert app.errors == []


def test_whole_resets_both_axes_and_a_link_with_frequencies_keeps_them(app, server):
    app.goto(f"{server}?fmin=2667&fmax=29333&bands=dolphin+whistles:12500-25000")
    app.wait_for_function(IDLE, timeout=60_000)
    settled(app)
    assert plot_ranges(app)[2:] == [2667, 29333]  # not the band's 12.5-25 kHz
    app.get_by_role("button", name="whole").click()
    settled(app)
    assert plot_ranges(app)[2:] == [0, 32000]
    assert link(app)["fmin"] == "0" and link(app)["fmax"] == "32000"


def test_band_edges_leave_the_image_in_the_colour_bars_colours(app):
    # Band shading once tinted the image: the grey colormap turned green and brown.
    colormap_select(app).select_option("gray")
    settled(app)
    shot(app, "8-gray-with-bands")
    pixels = frame_pixels(app)
    tinted = (pixels.max(axis=2) - pixels.min(axis=2) > 12).mean()
    # Only the bands' thin dashed edges and the demo's selections (coloured box edges and labels:
    # ~6 %) are coloured; the shading that tinted the image once coloured most of it.
    assert tinted < 0.10, f"{tinted:.1%} of the grey image is coloured"


def test_a_gap_is_hatched_and_labelled_no_data(app):
    start, end = "2026-01-15T00:02:40", "2026-01-15T00:03:20"  # the demo's gap lies in 00:02:52-00:03:08
    for label, value in (("start (UTC)", start.replace("T", " ")), ("end (UTC)", end.replace("T", " "))):
        field = app.locator(f"text={label}").locator("xpath=..").locator("input").first
        field.fill(value)
        field.press("Enter")
    wait_for(lambda: "showing 2026-01-15 00:02:40.000 → 2026-01-15 00:03:20.000" in _info_text(app))
    wait_for(lambda: "no data over" in _info_text(app))
    settled(app)
    shot(app, "9-gap")
    pixels = frame_pixels(app)
    middle = pixels[:, pixels.shape[1] * 45 // 100 : pixels.shape[1] * 55 // 100]
    assert len(np.unique(middle.reshape(-1, 3), axis=0)) >= 2  # hatched: two or more shades, not one flat colour
    assert (middle.min(axis=2) > 225).mean() < 0.5  # not plain white
    labels = app.evaluate("""() => [...Bokeh.documents[0].all_models]
        .filter((m) => m.type === "ColumnDataSource")
        .map((m) => (m.data instanceof Map ? m.data.get("text") : m.data.text)).filter((t) => t)
        .flatMap((t) => [...t])""")
    assert "no data" in labels


def test_the_address_follows_the_view_without_adding_history(app):
    # Each gesture pushed a history entry: Back changed the address but not the view.
    before = app.evaluate("window.history.length")
    for _ in range(3):
        app.locator("text=zoom +").first.click()
        time.sleep(0.5)
    settled(app)
    assert app.evaluate("window.history.length") == before
    shown = _info_text(app).split("showing ")[1][:47].split(" → ")
    query = link(app)
    assert query["start"].replace("T", " ").startswith(shown[0][:19]) and query["end"].replace("T", " ").startswith(
        shown[1][:19]
    )


def test_removing_every_band_leaves_no_errors_and_no_title(app):
    chips = app.locator(".band-listing .choices__button")
    assert chips.count() == 5
    while chips.count():
        chips.first.click()
        time.sleep(0.3)
    settled(app)
    shot(app, "10-no-bands")
    assert app.errors == []
    titles = app.evaluate("""() => [...Bokeh.documents[0].all_models]
        .filter((m) => m.type === 'Title').map((m) => m.text).filter((t) => t)""")
    assert titles == []


def test_the_layout_shares_the_window_at_any_size(page, server):
    for width, height in ((2400, 1300), (1100, 800)):
        page.set_viewport_size({"width": width, "height": height})
        opened = open_app(page, server)
        settled(opened)
        shot(opened, f"11-layout-{width}x{height}")
        box = frame(opened)
        info = opened.locator(".atlas-info").bounding_box()
        assert info["y"] + info["height"] <= height, "the info pane is below the fold"
        assert box["y"] + box["height"] < height and box["height"] >= 0.4 * height - 120
        curves = opened.evaluate("""() => [...Bokeh.index.all_views()]
            .filter((v) => v.model.type === "Figure" && v.frame).map((v) => v.frame.bbox.height)""")
        assert sorted(curves)[-2] >= 100  # the curves plot, second tallest, is not a sliver
        page_height = opened.evaluate("document.documentElement.scrollHeight")
        assert page_height <= height + 5, f"the page is {page_height} px tall in a {height} px window"


def test_a_click_on_the_overview_centres_the_view_there(app):
    app.locator("text=zoom +").first.click()
    wait_for(lambda: "showing 2026-01-15 00:01:30.000" in _info_text(app))
    box = overview_plot(app).bounding_box()
    app.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.3)
    # The recording is 6 min; 0.8 of it is 04:48, the span 3 min: clamped to 03:00-06:00 at the end.
    wait_for(lambda: "showing 2026-01-15 00:03:00.000 → 2026-01-15 00:06:00.000" in _info_text(app))


def test_copy_link_says_it_copied(app):
    app.context.grant_permissions(["clipboard-read", "clipboard-write"])
    app.get_by_role("button", name="copy link").click()
    expect(app.locator(".copy-link")).to_contain_text("copied")


# Everything in the page that a link's values could have injected: elements found through every shadow root.
INJECTED = """() => {
    const found = [];
    const walk = (root) => {
        for (const el of root.querySelectorAll('*')) {
            const image = el.tagName === 'IMG' && el.getAttribute('src') === 'x';
            if (image || (el.tagName === 'SCRIPT' && /alert/.test(el.textContent))) found.push(el.outerHTML);
            if (el.shadowRoot) walk(el.shadowRoot);
        }
    };
    walk(document);
    return found;
}"""


def test_markup_in_a_link_is_shown_as_text_and_never_runs(page, server):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    payload = "<img src=x onerror=alert(1)>"
    query = urlencode(
        {
            "bands": f"{payload}:10-20;ok:30-40",
            "cmap": "<script>alert(2)</script>",
            "start": payload,
            "fmin": payload,
            "db": payload,
            "agg": payload,
        }
    )
    opened = open_app(page, f"{server}?{query}")
    expect(opened.locator(".band-listing")).to_contain_text(payload)  # the band's name, as text
    expect(opened.locator(".link-message")).to_contain_text("could not be followed")
    time.sleep(1)
    shot(opened, "12-markup-in-a-link")
    assert opened.evaluate(INJECTED) == []
    assert dialogs == []
