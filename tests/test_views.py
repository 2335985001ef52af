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

    from dashboard.app import SpectrogramExplorer

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


def test_downloads(explorer):
    explorer.state.add_band("tone", 1000, 2000)
    frame = pd.read_csv(explorer._curves_csv(), index_col="time_utc")
    assert {"fin whale", "tone", "broadband"} <= set(frame.columns) and len(frame) > 100
    view = xr.open_dataarray(io.BytesIO(explorer._view_netcdf().getvalue()), engine="h5netcdf")
    assert view.dims == ("freq", "time") and view.shape == (600, 1200)


def test_auto_db_range(explorer):
    explorer.auto_db_range()
    lo, hi = explorer.state.db_range
    assert -200 < lo < hi < 60


def test_a_box_drawn_on_the_spectrogram_becomes_a_band(explorer):
    view = explorer._spectrogram
    view.__panel__().get_root()
    t0, t1 = explorer.state.time_range
    view.box_stream.event(bounds=(t0, 12_000.0, t1, 18_000.0))
    view.box_stream.event(bounds=(t0, 100.0, t1, 40_000.0))  # clipped at Nyquist
    assert explorer.state.bands["box 1"] == (12_000.0, 18_000.0)
    assert explorer.state.bands["box 2"] == (100.0, 32_000.0)


def test_several_stores_get_a_selector(demo_store, tmp_path):
    import holoviews as hv
    import panel as pn

    from dashboard.app import explorer_page

    hv.extension("bokeh")
    other = make_demo(tmp_path, hours=0.02, seed=3, progress=False)
    page = explorer_page([str(demo_store), str(other)])
    pn.panel(page).get_root()
    assert list(page.select.options.values()) == [str(demo_store), str(other)]
    assert len(set(page.select.options)) == 2  # both are demo.zarr: labelled by folder
    page.select.value = str(other)
    assert page.explorer.store == str(other)
    assert page.explorer.state.atlas.path == other


def test_one_move_of_the_view_is_one_change_of_the_time_range(explorer):
    """The start/end inputs show the state without setting it back (no intermediate ranges)."""
    changes = []
    explorer.state.param.watch(lambda event: changes.append(event.new), "time_range")
    explorer._time_inputs()
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

    from dashboard.app import SpectrogramExplorer
    from data_access import Calibration, calibrate

    store = make_demo(tmp_path, hours=0.02, seed=5, progress=False)
    calibrate(store, Calibration(sensitivity_db=-170.0, gain_db=20.0, full_scale_volts=2.0))
    hv.extension("bokeh")
    explorer = SpectrogramExplorer(store)
    pn.panel(explorer).get_root()
    lo, hi = explorer.state.db_range
    assert 20 < lo < hi < 200  # dB re 1 µPa²/Hz, not the -70..0 of full scale
    state = explorer.state
    image = explorer._spectrogram._image(state.time_range, state.freq_range, "fire", (lo, hi), "mean", 300, 100)
    assert "µPa" in image.vdims[0].label
    curves = explorer._curves.curves(points=50)
    assert curves.attrs["units"] == "dB re 1 µPa"


def test_band_curves_span_the_view_in_their_bands_colours_after_edits(explorer):
    import panel as pn
    from bokeh.models import GlyphRenderer, HStrip, Line, Plot

    root = pn.panel(explorer).get_root()
    t0, _ = explorer.state.time_range
    explorer.time_range = (t0 + np.timedelta64(30, "s"), t0 + np.timedelta64(90, "s"))
    explorer.remove_band("shipping")  # a band before others: their positions (and colours) move up
    explorer.add_band("tone", 1000, 2000)
    glyphs = [r for p in root.select({"type": Plot}) for r in p.renderers if isinstance(r, GlyphRenderer)]
    spans = next(r for r in glyphs if isinstance(r.glyph, HStrip))
    span_colour = dict(zip(explorer.bands, spans.data_source.data["color"], strict=True))  # (in the bands' order)
    curves = next(p for p in root.select({"type": Plot}) if p.legend and isinstance(p.renderers[0].glyph, Line))
    shown = {item.label.value: item.renderers[0] for item in curves.legend[0].items}
    assert list(shown) == list(explorer.bands) == list(span_colour)
    for name, renderer in shown.items():
        assert isinstance(renderer, GlyphRenderer) and renderer.glyph.line_color == span_colour[name], name
    assert (curves.x_range.start, curves.x_range.end) == explorer.time_range  # the spectrogram's span


def test_the_time_inputs_act_on_enter_only_and_say_what_is_wrong(explorer):
    (start, end), message = explorer._time_inputs()
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
    assert message.object == ""
    for typed, problem in (("yesterday-ish", "cannot read"), ("2026-01-15 00:02:30", "start must come before end")):
        start.value = typed
        start.enter_pressed = True
        assert problem in message.object and explorer.time_range[0] == t0 + np.timedelta64(60, "s")
    start.value, end.value = "2026-01-14 23:00:00", "2026-01-14 23:00:10"  # before the recording: shown clamped
    end.enter_pressed = True
    assert "the recording spans 2026-01-15 00:00:00.000" in message.object
    assert explorer.time_range == (t0, t0 + np.timedelta64(10, "s"))
