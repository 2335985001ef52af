"""The Panel views render to Bokeh without a browser, and follow the shared state."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from data_access.demo import make_demo


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("demo"), hours=0.05, progress=False)


@pytest.fixture
def explorer(demo_store):
    import holoviews as hv

    from dashboard.explorer import SpectrogramExplorer

    hv.extension("bokeh")
    return SpectrogramExplorer(demo_store)


def test_renders_to_bokeh_and_reads_the_top_level(explorer):
    import panel as pn
    from bokeh.models import LayoutDOM

    root = pn.panel(explorer).get_root()
    assert isinstance(root, LayoutDOM)
    atlas = explorer.state.atlas
    assert explorer.state.level > 0 and explorer.state.read_ms > 0
    assert explorer.time_range == atlas.time_range
    assert set(explorer.bands) == {"fin whale", "shipping", "dolphin whistles", "clicks", "broadband"}


def test_zooming_the_state_reads_a_finer_level(explorer):
    import panel as pn

    pn.panel(explorer).get_root()
    coarse = explorer.state.level
    t0, _ = explorer.state.time_range
    explorer.state.set_time(t0 + np.timedelta64(60, "s"), t0 + np.timedelta64(70, "s"))
    assert explorer.state.level < coarse


def test_downloads_name_their_span_bands_units_and_parameters(explorer):
    from dashboard.info import Downloads

    explorer.state.add_band("tone", 1000, 2000)
    downloads = Downloads(state=explorer.state, curves=explorer._curves_frame, view=explorer._visible_view)
    t0 = explorer.state.atlas.time_range[0]
    explorer.state.set_time(t0 + np.timedelta64(60, "s"), t0 + np.timedelta64(90_500, "ms"))
    assert downloads.csv.filename == "band_curves_20260115T000100.000-20260115T000130.500.csv"
    assert downloads.netcdf.filename == "spectrogram_view_20260115T000100.000-20260115T000130.500.nc"
    explorer._curves.points = 969  # the curves plot's width on screen: the CSV holds those points
    frame = pd.read_csv(downloads._csv(), index_col="time_utc")
    assert (
        "tone [1000-2000 Hz] (dB re full scale)" in frame.columns
        and "fin whale [15-30 Hz] (dB re full scale)" in frame.columns
    )
    assert len(frame) == 969
    view = xr.open_dataarray(io.BytesIO(downloads._netcdf().getvalue()), engine="h5netcdf")
    assert view.dims == ("freq", "time") and view.shape == (600, 954)  # 30.5 s: its 954 frames themselves
    atlas = explorer.state.atlas
    assert view.attrs["store"] == "demo.zarr" and view.attrs["n_fft"] == atlas.stft.n_fft
    assert view.attrs["hop_length"] == atlas.stft.hop_length and view.attrs["window"] == "hann"
    assert view.attrs["units"] == "dB re full scale" and view.attrs["calibration"] == "none"
    assert view.freq.attrs["units"] == "Hz"


def test_auto_db_range(explorer):
    explorer.auto_db_range()
    lo, hi = explorer.state.db_range
    assert -200 < lo < hi < 60


def test_auto_over_a_gap_says_why_it_did_nothing(explorer):
    import warnings

    from dashboard.spectrogram import gap_spans

    start, end = gap_spans(explorer.state.atlas.view(width=2000, height=10))[0]  # the demo's gap
    explorer.time_range = (start + (end - start) / 4, end - (end - start) / 4)
    before = explorer.state.db_range
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "All-NaN slice" (or any) warning
        explorer.auto_db_range()
    assert explorer.state.db_range == before
    assert "all gap" in explorer._display.message.text


def test_several_stores_get_a_selector(demo_store, tmp_path):
    import holoviews as hv
    import panel as pn

    from dashboard.server import explorer_page

    hv.extension("bokeh")
    other = make_demo(tmp_path, hours=0.02, seed=3, progress=False)
    page = explorer_page([str(demo_store), str(other)])
    pn.panel(page).get_root()
    assert list(page.select.options.values()) == [str(demo_store), str(other)]
    assert len(set(page.select.options)) == 2  # both are demo.zarr: labelled by folder
    cards = [c for c in page.explorer.header if isinstance(c, pn.Card)]
    assert len(cards) == 1 and not cards[0].collapsed  # a choice to make: the listing is open
    first = page.explorer.state
    page.select.value = str(other)
    assert page.explorer.store == str(other)
    assert page.explorer.state.atlas.path == other
    from dashboard.session import release

    assert release(first) == 0  # the explorer closed took its watchers with it


def test_the_overview_box_shows_at_any_span_and_never_fills(explorer):
    from dashboard.overview import Overview

    overview = Overview(state=explorer.state)
    first, last = explorer.state.atlas.time_range
    whole = overview._box((first, last))
    assert whole.opts.get("style").kwargs["fill_alpha"] == 0  # an outline: the strip keeps its colours at "whole"
    t = first + np.timedelta64(60, "s")
    narrow = overview._box((t, t + np.timedelta64(300, "ms")))  # 0.3 s of 3 min: under a pixel
    assert narrow.x2 - narrow.x1 >= (last - first) * 0.004
    assert narrow.x1 + (narrow.x2 - narrow.x1) / 2 == t + np.timedelta64(150, "ms")  # centred on the span


def test_one_move_of_the_view_is_one_change_of_the_time_range(explorer):
    """The start/end inputs show the state without setting it back (no intermediate ranges)."""
    from dashboard.navigation import Navigation

    changes = []
    explorer.state.param.watch(lambda event: changes.append(event.new), "time_range")
    Navigation(state=explorer.state)
    t0 = explorer.state.atlas.time_range[0]
    explorer.state.set_time(t0 + np.timedelta64(60, "s"), t0 + np.timedelta64(70, "s"))
    assert changes == [(t0 + np.timedelta64(60, "s"), t0 + np.timedelta64(70, "s"))]


def test_a_gesture_is_busy_while_its_image_is_read(explorer):
    import panel as pn

    view = explorer._spectrogram
    pn.panel(view).get_root()
    seen = []
    explorer.state.param.watch(lambda e: seen.append(("busy", e.new)), "busy")
    explorer.state.param.watch(lambda e: seen.append(("level", e.new)), "level")
    t0 = explorer.state.atlas.time_range[0]
    view.range_stream.event(x_range=(t0 + np.timedelta64(60, "s"), t0 + np.timedelta64(70, "s")), y_range=(0, 4000))
    assert seen[0] == ("busy", True) and seen[-1] == ("busy", False)
    assert [name for name, _ in seen[1:-1]] == ["level"]  # the new image was read in between
    assert explorer.state.freq_range == (0.0, 4000.0)


def test_a_calibrated_store_is_shown_in_its_units_with_fitted_colours(tmp_path):
    import holoviews as hv
    import panel as pn

    from dashboard.explorer import SpectrogramExplorer
    from data_access import Calibration, calibrate

    store = make_demo(tmp_path, hours=0.02, seed=5, progress=False)
    calibrate(store, Calibration(sensitivity_db=-170.0, gain_db=20.0, full_scale_volts=2.0))
    hv.extension("bokeh")
    explorer = SpectrogramExplorer(store)
    pn.panel(explorer).get_root()
    lo, hi = explorer.state.db_range
    assert 20 < lo < hi < 200  # dB re 1 µPa²/Hz, not the -70..0 of full scale
    state = explorer.state
    drawn = explorer._spectrogram._image(state.time_range, state.freq_range, "fire", (lo, hi), "mean", 300, 100)
    assert "µPa" in drawn.Image.I.vdims[0].label
    curves = explorer._curves.curves(points=50)
    assert curves.attrs["units"] == "dB re 1 µPa"


def test_band_curves_span_the_view_in_their_bands_colours_after_edits(explorer):
    import panel as pn
    from bokeh.models import GlyphRenderer, HStrip, Line, Plot

    root = pn.panel(explorer).get_root()
    colours = dict(explorer.state.band_colors)
    t0, _ = explorer.state.time_range
    explorer.time_range = (t0 + np.timedelta64(30, "s"), t0 + np.timedelta64(90, "s"))
    explorer.remove_band("shipping")  # a band before others: they keep their colours
    explorer.add_band("tone", 1000, 2000)
    assert all(explorer.state.band_colors[name] == colours[name] for name in colours if name != "shipping")
    assert explorer.state.band_colors["tone"] == colours["shipping"]  # the first colour no band holds
    glyphs = [r for p in root.select({"type": Plot}) for r in p.renderers if isinstance(r, GlyphRenderer)]
    spans = next(r for r in glyphs if isinstance(r.glyph, HStrip))
    colour_key = next(k for k in spans.data_source.data if "color" in k)
    span_colour = dict(zip(explorer.bands, spans.data_source.data[colour_key], strict=True))  # (the bands' order)
    assert spans.glyph.fill_alpha == 0  # edges only: the image keeps the colour bar's colours
    curves = next(p for p in root.select({"type": Plot}) if p.legend and isinstance(p.renderers[0].glyph, Line))
    shown = {item.label.value: item.renderers[0] for item in curves.legend[0].items}
    assert list(shown) == list(explorer.bands) == list(span_colour)
    for name, renderer in shown.items():
        assert isinstance(renderer, GlyphRenderer) and renderer.glyph.line_color == span_colour[name], name
        assert span_colour[name] == explorer.state.band_colors[name]
    assert (curves.x_range.start, curves.x_range.end) == explorer.time_range  # the spectrogram's span
    assert curves.legend[0] in curves.right  # outside the data: beside the plot
    assert not any(type(t).__name__ in ("PanTool", "WheelZoomTool", "BoxZoomTool") for t in curves.tools)


def test_removing_every_band_leaves_an_empty_plot_without_a_title(explorer):
    import panel as pn
    from bokeh.models import Line, Plot

    root = pn.panel(explorer).get_root()
    for name in list(explorer.bands):
        explorer.remove_band(name)
    explorer.add_band("only", 1000, 2000)
    curves = next(
        p for p in root.select({"type": Plot}) if any(isinstance(getattr(r, "glyph", None), Line) for r in p.renderers)
    )
    assert not curves.title.text
    explorer.remove_band("only")
    assert not curves.title.text


def test_overlays_never_change_the_axes(explorer):
    import panel as pn
    from bokeh.models import Plot

    root = pn.panel(explorer).get_root()
    main = max(root.select({"type": Plot}), key=lambda p: len(p.renderers) and p.min_height or 0)
    for name in list(explorer.bands):
        explorer.remove_band(name)
    explorer.add_band("dolphin whistles", 12_500, 25_000)  # alone, its span once set the y axis
    explorer.freq_range = (2_667, 29_333)
    assert (main.y_range.start, main.y_range.end) == (2_667, 29_333)
    explorer.state.whole()  # both axes
    assert (main.y_range.start, main.y_range.end) == explorer.state.atlas.freq_range
    assert (main.x_range.start, main.x_range.end) == explorer.state.atlas.time_range


def test_a_gesture_is_answered_without_pushing_the_plot_back(explorer, monkeypatch):
    """While a gesture waits for its image, the plot keeps the page's range: no redraw resets it."""
    import panel as pn
    from bokeh.models import Plot

    queued = []  # a server runs these on the next tick of its loop: here, when the test says
    monkeypatch.setattr(pn.state, "execute", lambda callback, schedule=False: queued.append(callback))

    def next_tick():
        while queued:
            queued.pop(0)()

    view = explorer._spectrogram
    root = pn.panel(view).get_root()
    next_tick()
    main = next(iter(root.select({"type": Plot})))
    t0 = explorer.state.atlas.time_range[0]
    first = (t0 + np.timedelta64(60, "s"), t0 + np.timedelta64(120, "s"))
    main.x_range.update(start=first[0], end=first[1])  # (the page's own range, synced, then its gesture's event)
    main.y_range.update(start=1000.0, end=9000.0)
    view.range_stream.event(x_range=first, y_range=(1000.0, 9000.0))
    next_tick()
    assert explorer.state.freq_range == (1000.0, 9000.0) and (main.y_range.start, main.y_range.end) == (1000, 9000)
    # Six wheel notches: the page zooms on while each answer is on its way; none is undone.
    for step in range(1, 7):
        y = (1000.0 + 400 * step, 9000.0 - 400 * step)
        main.y_range.update(start=y[0], end=y[1])  # (the page's own range, synced)
        view.range_stream.event(x_range=first, y_range=y)
        explorer.state.cmap = ["kbc", "fire"][step % 2]  # a redraw before the gesture is answered
        assert (main.y_range.start, main.y_range.end) == y
        if step % 2:
            next_tick()
    next_tick()
    assert explorer.state.freq_range == (3400.0, 6600.0) == (main.y_range.start, main.y_range.end)
    # A range from code moves the axes.
    explorer.freq_range = (100.0, 500.0)
    assert (main.y_range.start, main.y_range.end) == (100.0, 500.0)


def test_typed_times_clamp_the_end_keep_the_start_and_read_times_of_day(explorer):
    from dashboard.navigation import Navigation

    nav = Navigation(state=explorer.state)
    t0, t1 = explorer.state.atlas.time_range
    nav.start.value, nav.end.value = "2026-01-15 00:02:50", "2026-01-15 00:09:00"
    nav.end.enter_pressed = True
    assert explorer.time_range == (t0 + np.timedelta64(170, "s"), t1)  # the start kept, the end clamped
    assert nav.message.text == "⚠ end 2026-01-15 00:09:00.000 is past the recording: showing to 2026-01-15 00:03:00.000"
    nav.start.value, nav.end.value = "00:01:00", "00:02:00.25"  # times of the day shown
    nav.start.enter_pressed = True
    assert explorer.time_range == (t0 + np.timedelta64(60, "s"), t0 + np.timedelta64(120_250, "ms"))
    assert nav.message.text == ""
    assert (nav.start.value, nav.end.value) == ("2026-01-15 00:01:00.000", "2026-01-15 00:02:00.250")
    nav.fmin.value, nav.fmax.value = "0", "100"
    nav.fmax.enter_pressed = True
    assert explorer.freq_range == (0.0, 100.0)
    nav.fmin.value = "abc"
    nav.fmin.enter_pressed = True
    assert nav.message.text == "⚠ low 'abc' is not a frequency in Hz" and explorer.freq_range == (0.0, 100.0)


def test_the_time_inputs_act_on_enter_only_and_say_what_is_wrong(explorer):
    from dashboard.navigation import Navigation

    nav = Navigation(state=explorer.state)
    start, end, message = nav.start, nav.end, nav.message
    t0, t1 = explorer.state.atlas.time_range
    explorer.state.set_time(t0 + np.timedelta64(30_931_529, "us"), t0 + np.timedelta64(34_681_529, "us"))
    assert (start.value, end.value) == ("2026-01-15 00:00:30.931", "2026-01-15 00:00:34.681")
    shown = explorer.time_range
    # A notebook's browser sends every text back a moment later, some of them stale: not an edit.
    start.value, end.value = "2026-01-15 00:00:28.000", "2026-01-15 00:00:30.931"
    assert explorer.time_range == shown
    start.value = "2026-01-15 00:01:00"  # typed to the second, then Enter in the end field
    end.value = "2026-01-15 00:02:00.5"
    end.enter_pressed = True
    assert explorer.time_range == (t0 + np.timedelta64(60, "s"), t0 + np.timedelta64(120_500, "ms"))
    assert message.text == ""
    for typed, problem in (("yesterday-ish", "cannot read"), ("2026-01-15 00:02:30", "start must come before end")):
        start.value = typed
        start.enter_pressed = True
        assert problem in message.text and explorer.time_range[0] == t0 + np.timedelta64(60, "s")
        assert "000000" not in message.text  # times as people write them
    start.value, end.value = "2026-01-14 23:00:00", "2026-01-14 23:00:10"  # before the recording
    end.enter_pressed = True
    assert "outside the recording, which spans 2026-01-15 00:00:00.000" in message.text


def test_band_editor_refuses_a_duplicate_and_quotes_what_was_typed(explorer):
    from dashboard.bands import BandEditor

    editor = BandEditor(state=explorer.state)
    editor.band_name.value, editor.low.value, editor.high.value = "shipping", "10", "20"
    editor._add()
    assert "already shown" in editor.message.text and explorer.bands["shipping"] == (50.0, 500.0)
    editor.band_name.value, editor.low.value = "mine", "12k"
    editor._add()
    assert editor.message.text == "⚠ low '12k' is not a frequency in Hz" and "mine" not in explorer.bands
    editor.low.value = "12,000"
    editor.high.value = "14000"
    editor._add()
    assert explorer.bands["mine"] == (12_000.0, 14_000.0) and editor.message.text == ""


def test_watchers_on_the_state_go_with_the_session(explorer):
    import panel as pn

    from dashboard.session import release

    pn.panel(explorer).get_root()
    assert release(explorer.state) > 0
    assert release(explorer.state) == 0


@pytest.mark.parametrize(
    "first",
    [
        "import panel as pn; pn.extension()",
        "import panel as pn; pn.extension('tabulator', sizing_mode='stretch_width')",
        "import holoviews as hv; hv.extension('matplotlib'); import panel as pn",
        "import panel as pn",
    ],
)
def test_the_explorer_renders_whatever_was_imported_or_loaded_first(demo_store, first):
    # `pn.extension()` before `from dashboard import SpectrogramExplorer` once failed:
    # "No entry for 'Overlay' registered ... run 'hv.extension'".
    import subprocess
    import sys

    code = f"""{first}
from dashboard import SpectrogramExplorer
root = pn.panel(SpectrogramExplorer({str(demo_store)!r})).get_root()
print(type(root).__name__)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("Row")


def test_a_plain_script_shows_the_explorer_with_show(demo_store):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = f"""import time, urllib.request
from dashboard import SpectrogramExplorer
server = SpectrogramExplorer({str(demo_store)!r}).show(port={port}, address="127.0.0.1", open=False, threaded=True)
for _ in range(600):
    try:
        with urllib.request.urlopen("http://127.0.0.1:{port}/", timeout=30) as reply:
            print(reply.status, "Bokeh" in reply.read().decode())
            break
    except OSError:
        time.sleep(0.2)
server.stop()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.split()[-2:] == ["200", "True"], done.stdout + done.stderr[-3000:]


def test_a_page_claiming_a_huge_plot_gets_at_most_the_largest_view(explorer):
    """A page states its own plot size: an 8000 x 4000 plot or a 10**7-point curve is clamped, not computed."""
    from data_access.query import MAX_HEIGHT, MAX_POINTS, MAX_WIDTH

    state = explorer.state
    drawn = explorer._spectrogram._image(state.time_range, state.freq_range, "fire", (-90, 0), "mean", 8000, 4000)
    rows, columns = drawn.Image.I.dimension_values(2, flat=False).shape
    assert columns <= MAX_WIDTH and rows <= MAX_HEIGHT
    explorer._curves._plot(state.time_range, state.bands, state.band_colors, 10**7, 200)
    assert explorer._curves.points == MAX_POINTS


def test_a_band_name_never_becomes_a_spreadsheet_formula_in_the_csv(explorer):
    from dashboard.info import Downloads

    explorer.add_band('=HYPERLINK("http://example.invalid","x")', 1000, 2000)
    explorer.add_band("@SUM(1)", 3000, 4000)
    downloads = Downloads(state=explorer.state, curves=explorer._curves_frame, view=explorer._visible_view)
    header = pd.read_csv(downloads._csv(), index_col="time_utc").columns
    assert '\'=HYPERLINK("http://example.invalid","x") [1000-2000 Hz] (dB re full scale)' in header
    assert "'@SUM(1) [3000-4000 Hz] (dB re full scale)" in header
