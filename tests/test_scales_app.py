"""The frequency-scale selector in a real browser (issue 19): log and mel spectrograms labelled in Hz.

A real ``spectral-atlas serve`` of the demo store (64 kHz, n_fft 4096) driven by headless
Chromium, as tests/test_browser.py does (its fixtures). Switching to log and to mel: the
image fills its frame, the y axis' labels are Hz values, increasing, each at the height of
its value on the scale (read from Bokeh's own ticker and formatter in the page), the hover
reads Hz, a band's dashed edges sit at its Hz, a wheel zoom leaves the link's fmin/fmax equal
to the axis' Hz range, the link keeps ``scale=`` and a fresh page opens on that scale, and
the console stays clean. Screenshots land in ``test-artifacts/``.
"""

# ruff: noqa: F811  (test_browser's fixtures, imported, are the tests' arguments)
from __future__ import annotations

import re
import time

import numpy as np
import pytest
from chromium import MAIN_FIGURE
from test_browser import (  # noqa: F401  (fixtures: Debian's Chromium, the demo store, its server, the page)
    IDLE,
    _free_port,
    _info_text,
    app,
    browser_context_args,
    browser_type_launch_args,
    colormap_select,
    demo_store,
    frame,
    frame_pixels,
    link,
    plot_ranges,
    running,
    settled,
    shot,
    wait_for,
)

from dashboard.scales import to_plot, window
from data_access import open_atlas

# The spectrogram's y axis as the page has it: its label, ticks, their labels (Bokeh's own formatter)
# and their heights in the canvas, the frame's top and height, and the y range.
Y_AXIS = f"""() => {{ const v = {MAIN_FIGURE}; const m = v.model;
    const axis = m.left.find((a) => a.ticker !== undefined);
    const ticks = axis.ticker.ticks === undefined ? null : Array.from(axis.ticker.ticks);
    return {{label: axis.axis_label, ticks,
             labels: ticks && axis.formatter.doFormat(ticks, {{loc: 0}}),
             heights: ticks && ticks.map((t) => v.frame.y_scale.compute(t)),
             top: v.frame.bbox.top, height: v.frame.bbox.height,
             range: [m.y_range.start, m.y_range.end]}}; }}"""
# The dashed band edges (HStrip) as drawn: (y0, y1) of each, in the plot's coordinate.
BAND_EDGES = f"""() => {{ const m = ({MAIN_FIGURE}).model;
    const r = m.renderers.find((r) => r.glyph && r.glyph.type === "HStrip");
    return [Array.from(r.data_source.data.y0), Array.from(r.data_source.data.y1)]; }}"""
# The boxes drawn (Quad glyphs): (bottom, top) of each, in the plot's coordinate.
QUADS = """() => { const out = [];
    for (const m of Bokeh.documents[0].all_models) {
        if (m.type !== "GlyphRenderer" || m.glyph.type !== "Quad") continue;
        const d = m.data_source.data instanceof Map ? m.data_source.data : new Map(Object.entries(m.data_source.data));
        (d.get("bottom") || []).forEach((b, i) => out.push([b, d.get("top")[i]]));
    }
    return out; }"""
# What the hover says for a height of the plot: the CustomJSHover's own output.
HOVER_HZ = """(y) => { for (const m of Bokeh.documents[0].all_models)
    if (m.type === "CustomJSHover") return m.format(y, "", {}); return null; }"""


@pytest.fixture(scope="module")
def server(demo_store, tmp_path_factory, cli):
    """test_browser's server, ready once it serves BokehJS: a probe of the page itself builds a session a time,
    over 2 s each on a loaded machine (the probe's timeout), so it never saw one answered."""
    port = _free_port()
    cmd = [*cli, "serve", str(demo_store), "--port", str(port)]
    log = tmp_path_factory.mktemp("log") / "serve.log"
    with running(cmd, f"http://127.0.0.1:{port}/static/js/bokeh.min.js", log):
        yield f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def atlas(demo_store):
    return open_atlas(demo_store)


def choose(page, scale: str) -> None:
    page.get_by_role("button", name=scale, exact=True).click()
    wait_for(lambda: link(page).get("scale") == scale)
    settled(page)


def hz_of_label(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+) (Hz|kHz)", text).groups()
    return float(number) * (1000 if unit == "kHz" else 1)


def check_y_axis(page, scale: str) -> dict:
    """The axis names the scale; each tick's label is the Hz its height stands for; labels increase up the axis."""
    axis = page.evaluate(Y_AXIS)
    assert axis["label"] == f"frequency (Hz, {scale} scale)"
    assert len(axis["ticks"]) >= 4, axis
    hz = np.array([hz_of_label(text) for text in axis["labels"]])
    np.testing.assert_allclose(to_plot(scale, hz), axis["ticks"], rtol=1e-9)  # each label at its value's height
    assert np.all(np.diff(hz) > 0)
    y0, y1 = axis["range"]
    expected = axis["top"] + (y1 - np.array(axis["ticks"])) / (y1 - y0) * axis["height"]
    np.testing.assert_allclose(axis["heights"], expected, atol=0.5)  # drawn there, inside the frame
    assert np.all(
        (np.array(axis["heights"]) >= axis["top"]) & (np.array(axis["heights"]) <= axis["top"] + axis["height"])
    )
    return axis


def assert_filled(page) -> None:
    """The image fills its frame: under 2 % of it blank (near-white), and no row of it half blank.

    In the bgy colormap, which has no white (fire's loudest parts are white: the demo's ship, wide on a
    log scale); the demo's gap is hatched grey. A row the image leaves unpainted is all blank.
    """
    colormap_select(page).select_option("bgy")
    settled(page)
    white = frame_pixels(page).min(axis=2) > 225
    # (Inside its edge pixels: after a zoom Bokeh leaves the frame's top pixel row unpainted on every
    # scale, linear too: 82 % of it white there, the rest the gap's hatching.)
    rows = white[1:-1].mean(axis=1)
    assert white.mean() < 0.02 and rows.max() < 0.5, f"{white.mean():.1%} blank, {(rows > 0.5).sum()} blank rows"


def test_log_scale_is_drawn_in_log10_hz_and_labelled_in_hz(app, atlas):
    choose(app, "log")
    shot(app, "scales-1-log")
    shown = window(atlas, "log", (0.0, 32_000.0))
    assert shown.hz == (15.625, 32_000.0)  # from the first non-zero bin
    assert plot_ranges(app)[2:] == pytest.approx(list(shown.y), rel=1e-12)
    assert "log frequency scale (rows uniform in log10 Hz), from 15.62 Hz" in _info_text(app)
    check_y_axis(app, "log")
    assert_filled(app)
    assert app.evaluate(HOVER_HZ, 3.0) == "1,000.0 Hz"
    # The dashed edges of each band at its own Hz.
    y0, y1 = app.evaluate(BAND_EDGES)
    bands = list(link(app)["bands"].split(";"))
    lows = [float(b.rpartition(":")[2].split("-")[0]) for b in bands]
    highs = [float(b.rpartition(":")[2].split("-")[1]) for b in bands]
    np.testing.assert_allclose(y0, to_plot("log", lows), rtol=1e-12)
    np.testing.assert_allclose(y1, to_plot("log", highs), rtol=1e-12)
    assert app.errors == []


def test_a_wheel_zoom_in_log_scale_keeps_the_state_in_the_axis_hz(app, browser, server):
    choose(app, "log")
    box = frame(app)
    app.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.7)
    for _ in range(3):
        app.mouse.wheel(0, -200)
        time.sleep(0.1)
    settled(app, 2.5)
    shot(app, "scales-2-log-zoomed")
    y0, y1 = plot_ranges(app)[2:]
    query = link(app)
    assert (float(query["fmin"]), float(query["fmax"])) == pytest.approx((10**y0, 10**y1), rel=1e-6)
    assert 10**y1 - 10**y0 < 32_000 * 0.7  # the frequency axis zoomed too
    check_y_axis(app, "log")
    assert_filled(app)
    assert app.errors == []
    # The link opens the same view, on a log scale, in a fresh page.
    fresh = browser.new_page()
    errors: list[str] = []
    fresh.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    fresh.on("pageerror", lambda e: errors.append(str(e)))
    fresh.goto(app.evaluate("window.location.href"))
    fresh.wait_for_function(IDLE, timeout=60_000)
    settled(fresh, 2.0)
    shot(fresh, "scales-3-log-link")
    assert link(fresh)["scale"] == "log"
    assert plot_ranges(fresh)[2:] == pytest.approx([y0, y1], rel=1e-6)
    check_y_axis(fresh, "log")
    assert errors == []
    fresh.close()


def test_mel_scale_fills_its_frame_and_reads_in_hz_then_linear_again(app, atlas):
    choose(app, "mel")
    shot(app, "scales-4-mel")
    shown = window(atlas, "mel", (0.0, 32_000.0))
    assert plot_ranges(app)[2:] == pytest.approx(list(shown.y), rel=1e-9)
    check_y_axis(app, "mel")
    assert_filled(app)
    assert "mel scale, 128 rows (Slaney), from " in _info_text(app)
    assert app.evaluate(HOVER_HZ, 15.0) == "1,000.0 Hz"  # Slaney's mel: 15 at 1 kHz
    y0, _ = app.evaluate(BAND_EDGES)
    np.testing.assert_allclose(y0, to_plot("mel", [float(b.rpartition(":")[2].split("-")[0])
                                                    for b in link(app)["bands"].split(";")]), rtol=1e-9)  # fmt: skip
    choose(app, "linear")
    axis = app.evaluate(Y_AXIS)
    assert axis["label"] == "frequency (Hz)" and axis["range"] == [0, 32_000]
    assert app.evaluate(HOVER_HZ, 1000.0) == "1,000.0 Hz"
    assert app.errors == []


def test_a_box_drawn_in_log_scale_saves_the_hz_the_axis_showed(app, demo_store):
    from data_access.annotations import default_annotations_path, open_annotations

    choose(app, "log")
    with open_annotations(default_annotations_path(demo_store), author="tester") as db:
        before = set(db.selections("demo.zarr")["id"])
    app.locator('[title="Box Select"]').first.click()
    box = frame(app)
    tops = (round(box["height"] * 0.30), round(box["height"] * 0.55))  # whole pixels down from the frame's top
    app.mouse.move(box["x"] + box["width"] * 0.30, box["y"] + tops[0])
    app.mouse.down()
    app.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + tops[1], steps=12)
    app.mouse.up()

    def added():
        with open_annotations(default_annotations_path(demo_store), author="tester") as db:
            rows = db.selections("demo.zarr")
        return rows[~rows["id"].isin(before)]

    wait_for(lambda: len(added()) == 1)
    new = added()
    settled(app)
    shot(app, "scales-5-log-box")
    y0, y1 = plot_ranges(app)[2:]
    shown = [10 ** (y1 - px / box["height"] * (y1 - y0)) for px in reversed(tops)]  # the axis' Hz at those heights
    saved = [float(new["low_hz"].iloc[0]), float(new["high_hz"].iloc[0])]
    assert saved == pytest.approx(shown, rel=0.01)  # within half a pixel (1 % of a frequency here)
    assert 300 < saved[0] < saved[1] < 10_000
    # Drawn back where it was drawn: its box on the plot at log10 of the saved Hz.
    quads = app.evaluate(QUADS)
    assert any(np.allclose([bottom, top], np.log10(saved), rtol=1e-9) for bottom, top in quads), quads
    assert app.errors == []
