"""The explorer's science views (issue 19): dashboard/science.py on real stores, in Python and in Chromium.

The first half builds :class:`dashboard.explorer.SpectrogramExplorer` on the generated demo
deployment (6 min, 64 kHz) and checks that what each tab draws is what the data API gives for
the state's span: the Statistics tab's lines are :meth:`Atlas.spectrum_stats`'s, the Spectrum
tab's curves :meth:`Atlas.spectrum`'s (a click on the spectrogram picks the frame), the Bands
table :meth:`Atlas.band_stats`'s, the Diel image :meth:`Atlas.diel`'s (and its sunrise/sunset
:meth:`Atlas.sun_times`'s when the store has a location), the CQT :meth:`Atlas.cqt`'s; that a
diel cell's click shows that cell; that nothing is computed until the card is opened, and then
only the tab shown; and that every refusal or failure is one line, never a path or traceback.
The second half serves the demo to headless Chromium and opens each tab: it draws, its numbers
on screen are the data's, a click on the spectrogram shows that frame's spectrum, a diel cell's
click moves the view, and the console stays clean. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import SR, noise, tone
from playwright.sync_api import expect
from test_browser import (  # noqa: F401  (the two fixtures launch Debian's Chromium; app opens the page)
    ARTIFACTS,
    _free_port,
    _info_text,
    app,
    browser_context_args,
    browser_type_launch_args,
    frame,
    ms,
    plot_ranges,
    running,
    settled,
    shot,
    wait_for,
)
from test_listen_app import show

from data_access import StftConfig, ingest, open_atlas, open_timeline, set_location
from data_access.demo import make_demo
from data_access.spectra import MAX_CQT_SECONDS

S = np.timedelta64(1, "s")
SEATTLE = (47.6062, -122.3321)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("science")
    make_demo(folder, hours=0.1, progress=False)  # 6 min, 0..32 kHz, from 2026-01-15 00:00 UTC
    return folder


@pytest.fixture(scope="module")
def located_dir(demo_dir, tmp_path_factory):
    """The demo with a location (Seattle): the diel map draws sunrise and sunset."""
    folder = tmp_path_factory.mktemp("located") / "demo"
    shutil.copytree(demo_dir, folder)
    set_location(folder / "demo.zarr", SEATTLE)
    return folder


def _explorer(store, tmp_path):
    import holoviews as hv

    from dashboard.explorer import SpectrogramExplorer

    hv.extension("bokeh")
    explorer = SpectrogramExplorer(str(store), annotations=str(tmp_path / "a.sqlite"))
    explorer.__panel__()
    return explorer


@pytest.fixture
def explorer(demo_dir, tmp_path):
    return _explorer(demo_dir / "demo.zarr", tmp_path)


def _open(explorer, tab: str):
    from dashboard.science import TABS

    science = explorer.science
    science.__panel__().collapsed = False  # the visitor opens the card
    science.active = TABS.index(tab)
    return science


def _at(explorer, seconds: float) -> np.datetime64:
    return explorer.state.atlas.time_range[0] + np.timedelta64(int(seconds * 1e9), "ns")


def _curves(overlay) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import holoviews as hv

    return {
        c.label: (c.dimension_values(0), c.dimension_values(1)) for c in overlay.values() if isinstance(c, hv.Curve)
    }


def _line(science, tab: str) -> str:
    import html

    return html.unescape(science._lines[tab].object)


# =========================================================================================== in Python
def test_nothing_is_computed_until_the_card_is_opened_and_then_only_the_tab_shown(explorer):
    science = explorer.science
    card = science.__panel__()
    assert card.collapsed and len(card.objects) == 1  # a line of text: no plot on the page
    explorer.state.set_time(_at(explorer, 10), _at(explorer, 70))
    explorer.state.agg = "max"
    assert set(science.computed.values()) == {0}
    card.collapsed = False
    assert science.computed == {"Statistics": 1, "Spectrum": 0, "Bands": 0, "Diel": 0, "CQT": 0}
    explorer.state.set_time(_at(explorer, 20), _at(explorer, 80))  # the view moves: the tab shown follows
    assert science.computed["Statistics"] == 2 and science.computed["Bands"] == 0
    science.active = 2  # Bands
    science.active = 0  # back: its statistics are still those of the view, nothing is read again
    assert science.computed == {"Statistics": 2, "Spectrum": 0, "Bands": 1, "Diel": 0, "CQT": 0}
    card.collapsed = True
    explorer.state.set_time(_at(explorer, 30), _at(explorer, 90))
    assert science.computed["Statistics"] == 2  # closed: nothing


@pytest.mark.parametrize("period", [1.0, 10.0, 60.0])
def test_the_statistics_tab_draws_spectrum_stats_of_the_view(explorer, period):
    explorer.state.set_time(_at(explorer, 30), _at(explorer, 330))
    science = _open(explorer, "Statistics")
    science.period = period
    atlas = explorer.state.atlas
    expected = atlas.spectrum_stats(time=explorer.state.time_range, period=period)
    level = expected.attrs["pyramid_level"]  # the level whose columns are nearest the period (the demo has 0..2)
    shown = science.stats
    assert shown.attrs["pyramid_level"] == level
    drawn = _curves(science._stats_plot(science._pipes["Statistics"].data))
    freq = atlas.spectrum_stats(time=explorer.state.time_range, period=period).freq.values[1:]  # log axis: from bin 1
    np.testing.assert_array_equal(drawn["median"][0], freq)
    np.testing.assert_array_equal(drawn["median"][1], expected["median"].values[1:])
    np.testing.assert_array_equal(drawn["mean"][1], expected["mean"].values[1:])
    for q in (1, 5, 10, 50, 90, 95, 99):
        np.testing.assert_array_equal(drawn[f"{q} %"][1], expected.percentiles.sel(percentile=q).values[1:])
    line = _line(science, "Statistics")
    seconds = expected.attrs["period_seconds"]
    assert line.startswith(f"{expected.attrs['n_periods']} periods of {seconds:g} s (pyramid level {level}, asked ")
    assert "MAX_STATS_COLUMNS" not in line


def test_the_spd_image_keeps_each_frequencys_shares(explorer):
    from dashboard.science import spd_columns

    science = _open(explorer, "Statistics")
    stats = science.stats
    edges, values = spd_columns(stats.freq.values, stats.spd.values)
    assert len(edges) == values.shape[1] + 1 <= 241 and np.all(np.diff(edges) > 0)
    np.testing.assert_allclose(np.nansum(values, axis=0), 1.0, atol=1e-5)  # a column is still a distribution
    # At the low end a column is one bin: its shares are that bin's.
    df = stats.freq.values[1]
    assert edges[0] == pytest.approx(df / 2) and edges[1] == pytest.approx(1.5 * df)
    np.testing.assert_array_equal(values[:, 0], stats.spd.values[:, 1])


def test_a_long_span_reads_a_coarser_level_and_the_line_says_so(explorer, monkeypatch):
    from data_access import spectra

    monkeypatch.setattr(spectra, "MAX_STATS_COLUMNS", 1000)
    science = _open(explorer, "Statistics")
    # The 6-minute demo has levels 0..2 (0.032, 0.128, 0.512 s): a period of 0.1 s is nearest level 1,
    # whose 2813 columns are over the cap.
    science.param.period.objects = {"0.1 s": 0.1, **science.param.period.objects}
    science.period = 0.1
    line = _line(science, "Statistics")
    assert science.stats.attrs["pyramid_level"] == 2
    n = explorer.state.atlas.spectrum_stats(time=explorer.state.time_range, period=0.1).attrs["n_periods"]
    assert line.startswith(f"{n} periods of 0.512 s (pyramid level 2, asked 0.1 s), dB re full scale; ")
    assert "more than 1000 columns of level 1 (0.128 s): level 2 (0.512 s periods) was read instead" in line


def test_a_click_on_the_spectrogram_shows_that_frames_spectrum_beside_the_views_mean(explorer):
    science = _open(explorer, "Spectrum")
    state = explorer.state
    state.set_time(_at(explorer, 60), _at(explorer, 120))
    assert "Click the spectrogram" in _line(science, "Spectrum") and "point" not in science.spectra
    selections = explorer._selections
    selections.ruler = True  # the selections' own use of a click goes on
    clicked = _at(explorer, 75.3)
    explorer._spectrogram.tapped(clicked, 1000.0)
    assert state.point == clicked and len(selections.ruler_points) == 1
    atlas = state.atlas
    drawn = _curves(science._spectrum_plot(science._pipes["Spectrum"].data))
    frame = atlas.spectrum(time=clicked)
    mean = atlas.spectrum(time=state.time_range)
    np.testing.assert_array_equal(drawn["clicked frame"][1], frame.values[1:])
    np.testing.assert_array_equal(drawn["clicked frame"][0], frame.freq.values[1:])
    np.testing.assert_array_equal(drawn["mean of the view"][1], mean.values[1:])
    assert _line(science, "Spectrum").startswith("clicked: the frame at 2026-01-15 00:01:15.300; mean of the view: ")


def test_the_bands_table_is_band_stats_of_the_view_and_follows_mean_or_max(explorer):
    from dashboard.science import shown_table

    state = explorer.state
    state.set_time(_at(explorer, 30), _at(explorer, 200))
    science = _open(explorer, "Bands")
    atlas = state.atlas
    expected = atlas.band_stats(state.bands, time=state.time_range, agg="mean")
    pd.testing.assert_frame_equal(science.band_table, expected)
    pd.testing.assert_frame_equal(science._bands_pane.object, shown_table(expected))
    assert science._bands_pane.object.loc["shipping", "L50"] == f"{expected.loc['shipping', 'L50']:.1f}"
    assert "SEL needs a calibrated store" in _line(science, "Bands")
    state.agg = "max"
    peak = atlas.band_stats(state.bands, time=state.time_range, agg="max")
    pd.testing.assert_frame_equal(science.band_table, peak)
    assert (peak["peak"] >= expected["peak"]).all() and f"(level {peak.attrs['level']}, max)" in _line(science, "Bands")


def test_a_band_name_from_a_link_is_shown_as_text(explorer):
    import html

    from bokeh.document import Document

    state = explorer.state
    state.add_band("<img src=x onerror=alert(1)>", 100.0, 200.0)
    science = _open(explorer, "Bands")
    assert "<img src=x onerror=alert(1)>" in science.band_table.index
    shown = html.unescape(science._bands_pane.get_root(Document()).text)  # (the model's text is escaped for transport)
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown and "<img" not in shown


def test_band_curves_follow_mean_or_max_as_the_image_does(explorer):
    state = explorer.state
    state.set_time(_at(explorer, 0), _at(explorer, 300))
    state.agg = "max"
    curves = explorer._curves.curves(points=200)
    expected = state.atlas.band_energy(state.bands, time=state.time_range, points=200, agg="max")
    xr_equal = [np.array_equal(curves[b].values, expected[b].values, equal_nan=True) for b in state.bands]
    assert all(xr_equal) and curves.attrs["agg"] == "max"
    mean = state.atlas.band_energy(state.bands, time=state.time_range, points=200)
    for band in state.bands:
        assert np.nanmin(curves[band].values - mean[band].values) >= -0.27  # peak-hold: at or above the mean
        assert np.nanmax(curves[band].values - mean[band].values) > 1  # and above it where the level varies


def test_the_diel_map_is_diel_of_the_band_chosen_and_a_click_shows_that_cell(explorer):
    state = explorer.state
    science = _open(explorer, "Diel")
    atlas = state.atlas
    np.testing.assert_array_equal(science.diel_grid.values, atlas.diel(resolution="1h").values)
    assert science.sun is None and "the store has no location" in _line(science, "Diel")
    science.diel_band = "shipping"
    science.resolution = "1min"
    expected = atlas.diel(band=(50.0, 500.0), resolution="1min")
    np.testing.assert_array_equal(science.diel_grid.values, expected.values)
    image = science._diel_plot(science._pipes["Diel"].data).get(0)
    np.testing.assert_array_equal(image.dimension_values(2, flat=False), expected.values)
    assert image.bounds.lbrt() == (0, -0.5, 24, 0.5)
    freq = state.freq_range = (100.0, 8000.0)
    science.diel_tap.event(x=3.5 / 60, y=0.0)  # a click in the cell of 00:03 on the first date
    assert state.time_range == (np.datetime64("2026-01-15T00:03:00", "ns"), np.datetime64("2026-01-15T00:04:00", "ns"))
    assert state.freq_range == freq
    science.diel_tap.event(x=12.0, y=0.0)  # a cell without data, outside the recording: said, nothing moves
    assert "is outside the recording" in _line(science, "Diel")
    assert state.time_range[0] == np.datetime64("2026-01-15T00:03:00", "ns")
    # A band the diel map showed, removed: broadband again.
    state.remove_band("shipping")
    assert science.diel_band == science.param.diel_band.default
    np.testing.assert_array_equal(science.diel_grid.values, atlas.diel(resolution="1min").values)


def test_the_diel_map_draws_sunrise_and_sunset_when_the_store_has_a_location(located_dir, tmp_path):
    import holoviews as hv

    explorer = _explorer(located_dir / "demo.zarr", tmp_path)
    science = _open(explorer, "Diel")
    atlas = explorer.state.atlas
    expected = atlas.sun_times(science.diel_grid.date.values)
    pd.testing.assert_frame_equal(science.sun, expected)
    marks = {e.label: e for e in science._diel_plot(science._pipes["Diel"].data) if isinstance(e, hv.Scatter)}
    for column in ("sunrise", "sunset"):
        hours = (expected[column].iloc[0] - expected.index[0]) / pd.Timedelta(hours=1)
        assert marks[column].dimension_values(0)[0] == pytest.approx(hours)
    assert "sunrise ▲ and sunset ▼" in _line(science, "Diel")


def test_a_calibrated_store_shows_psd_re_1_upa_and_the_sound_exposure(demo_dir, tmp_path):
    from data_access import Calibration, calibrate

    folder = tmp_path / "calibrated"
    shutil.copytree(demo_dir, folder)
    calibrate(folder / "demo.zarr", Calibration(sensitivity_db=-170.0, gain_db=0.0, full_scale_volts=1.0))
    explorer = _explorer(folder / "demo.zarr", tmp_path)
    state, atlas = explorer.state, explorer.state.atlas
    science = _open(explorer, "Statistics")
    expected = atlas.spectrum_stats(time=state.time_range, period=1.0)
    assert expected.attrs["units"] == "dB re 1 µPa²/Hz" and _line(science, "Statistics").endswith(", dB re 1 µPa²/Hz")
    median = _curves(science._stats_plot(science._pipes["Statistics"].data))["median"][1]
    np.testing.assert_array_equal(median, expected["median"].values[1:])
    assert 40 < np.nanmedian(median) < 160  # a hydrophone's levels, not full scale's
    science.active = 2
    table = atlas.band_stats(state.bands, time=state.time_range)
    pd.testing.assert_frame_equal(science.band_table, table)
    assert np.isfinite(table["SEL"]).all()
    assert (science._bands_pane.object["SEL"] == [f"{v:.1f}" for v in table["SEL"]]).all()
    assert _line(science, "Bands").endswith("dB re 1 µPa, SEL dB re 1 µPa²·s")


def test_the_cqt_is_computed_on_demand_for_a_short_span_and_refused_over_the_limit(explorer):
    state = explorer.state
    science = _open(explorer, "CQT")
    assert science.cqt_array is None and "Press “CQT of this span”" in _line(science, "CQT")
    science.compute_cqt()  # the whole 6 minutes
    assert science.cqt_array is None
    assert _line(science, "CQT") == (
        f"The CQT is computed for spans up to {MAX_CQT_SECONDS:g} s; this view shows 360 s: zoom in."
    )
    state.set_time(_at(explorer, 60), _at(explorer, 70))
    science.compute_cqt()
    expected = state.atlas.cqt(time=state.time_range)
    np.testing.assert_array_equal(science.cqt_array.values, expected.values)
    assert _line(science, "CQT").startswith(f"|CQT| of {expected.sizes['time']} frames, 84 bins (12 an octave)")
    state.set_time(_at(explorer, 70), _at(explorer, 80))  # another span: the old CQT goes
    assert science.cqt_array is None


def test_a_store_without_its_recordings_has_no_cqt_and_says_so_without_a_path(tmp_path):
    wav = tmp_path / "s_20260301_120000.wav"
    sf.write(wav, noise(30.0) + tone(1000.0, 30.0), SR, subtype="FLOAT")
    store = ingest(open_timeline(wav), tmp_path / "s.zarr", StftConfig(n_fft=256), progress=False)
    wav.unlink()  # the store without its recording
    explorer = _explorer(store, tmp_path)
    explorer.state.set_time(_at(explorer, 10), _at(explorer, 20))
    science = _open(explorer, "CQT")
    science.compute_cqt()
    line = _line(science, "CQT")
    assert line == "No CQT: the CQT needs the store's recordings, which this server cannot read."
    assert science.cqt_array is None


def test_a_failed_read_is_one_line_with_a_reference_not_the_errors_text(explorer, monkeypatch, caplog):
    atlas = explorer.state.atlas

    def broken(**kwargs):
        raise OSError("/srv/secret/demo.zarr/2/power/c/0/0: checksum failed")

    monkeypatch.setattr(atlas, "spectrum_stats", broken)
    science = _open(explorer, "Statistics")
    line = _line(science, "Statistics")
    assert re.fullmatch(
        r"Could not compute the spectrum statistics: an error on the server \(OSError\), logged as [0-9a-f]{8}\.", line
    )
    assert "secret" not in line and "secret" in caplog.text  # the log has it
    monkeypatch.undo()
    explorer.state.set_time(_at(explorer, 10), _at(explorer, 20))  # the next change reads again
    assert science.stats is not None and "periods of" in _line(science, "Statistics")


def test_a_bad_request_is_its_own_line(explorer):
    science = _open(explorer, "Statistics")
    explorer.state.set_time(_at(explorer, 10.1), _at(explorer, 10.4))  # no 0.512 s column is centred in it
    assert science.stats.attrs["time_start"] != str(explorer.state.time_range[0])  # (the old one stays)
    assert "holds no 0.512 s period with data (level 2): choose a longer span or a shorter period" in _line(
        science, "Statistics"
    )


def test_the_science_views_render_to_bokeh_in_each_tab(explorer):
    from bokeh.document import Document
    from bokeh.models import Plot as Figure

    science = explorer.science
    card = science.__panel__()
    card.collapsed = False
    root = card.get_root(Document())
    for i in range(5):
        science.active = i
        if i != 2:  # (the Bands tab is a table)
            assert root.select({"type": Figure}), i


# =========================================================================================== in Chromium
@pytest.fixture(scope="module")
def server(located_dir, tmp_path_factory, cli):
    port = _free_port()
    cmd = [*cli, "serve", str(located_dir / "demo.zarr"), "--port", str(port)]
    # Up once it serves a static file: a page takes over the probe's 2 s to build on a loaded machine.
    probe = f"http://127.0.0.1:{port}/static/js/bokeh.min.js"
    with running(cmd, probe, tmp_path_factory.mktemp("log") / "serve.log"):
        yield f"http://127.0.0.1:{port}/"


def card_shot(page, name: str) -> None:
    """A screenshot of the page (``name``) and of the science card alone (``name-card``), scrolled into sight."""
    card = page.locator(".science-card").first
    card.scroll_into_view_if_needed()
    shot(page, name)
    ARTIFACTS.mkdir(exist_ok=True)
    card.screenshot(path=str(ARTIFACTS / f"{name}-card.png"))


def _tab(page, name: str) -> None:
    page.locator(".bk-tab", has_text=re.compile(f"^{name}$")).first.click()


# The data of the curve a legend names, as the page holds it.
CURVE = """(label) => { for (const m of Bokeh.documents[0].all_models)
    if (m.type === 'LegendItem' && m.label && m.label.value === label) {
        const data = m.renderers[0].data_source.data;
        return {x: Array.from(data.freq), y: Array.from(data.level)}; }
    return null; }"""
# The figure whose title area holds the diel map: the one with an image and scatter marks, its frame in page pixels.
DIEL_FRAME = """() => { const views = [...Bokeh.index.all_views()].filter((v) => v.model.type === 'Figure' && v.frame
        && v.model.renderers.some((r) => r.glyph && r.glyph.type === 'Image')
        && v.model.renderers.some((r) => r.glyph && r.glyph.type === 'Scatter'));
    if (!views.length) return null;
    const v = views[0], box = v.canvas_view.el.getBoundingClientRect(), f = v.frame.bbox;
    return {x: box.x + f.x, y: box.y + f.y, width: f.width, height: f.height}; }"""


def _time_from(text: str) -> np.datetime64:
    return np.datetime64(
        re.search(r"frame at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})", text)[1].replace(" ", "T"), "ns"
    )


def test_each_science_tab_draws_the_datas_numbers_in_the_browser(app, located_dir):  # noqa: F811 (test_browser's app)
    from dashboard.science import shown_table, stats_line

    atlas = open_atlas(located_dir / "demo.zarr")
    span = atlas.time_range  # the page opens on the whole recording
    app.get_by_text("Science views").click()
    line = app.locator(".science-statistics-line")
    expect(line).to_contain_text(stats_line(atlas.spectrum_stats(time=span, period=1.0)), timeout=60_000)
    settled(app)
    card_shot(app, "science-1-statistics")
    for period in ("10 s", "1 min"):  # the period's scale: the level and the line follow
        app.get_by_role("button", name=period, exact=True).click()
        seconds = {"10 s": 10.0, "1 min": 60.0}[period]
        expect(line).to_contain_text(stats_line(atlas.spectrum_stats(time=span, period=seconds)), timeout=60_000)
    median = app.evaluate(CURVE, "median")
    expected = atlas.spectrum_stats(time=span, period=60.0)
    np.testing.assert_allclose(median["x"], expected.freq.values[1:])
    np.testing.assert_allclose(np.array(median["y"], dtype=float), expected["median"].values[1:], rtol=1e-6)

    _tab(app, "Bands")
    table = shown_table(atlas.band_stats(dict(_bands(atlas)), time=span))
    cells = app.locator(".science-bands-table")
    for band in table.index:
        expect(cells).to_contain_text(band, timeout=60_000)
        for column in ("L5", "L50", "L95", "mean", "peak"):
            expect(cells).to_contain_text(table.loc[band, column])
    settled(app)
    card_shot(app, "science-3-bands")
    app.get_by_role("button", name="max", exact=True).click()  # the image's scale: peak-hold
    peak = shown_table(atlas.band_stats(dict(_bands(atlas)), time=span, agg="max"))
    expect(cells).to_contain_text(peak.loc["shipping", "peak"], timeout=60_000)
    expect(app.locator(".science-bands-line")).to_contain_text("max)")
    _tab(app, "Statistics")
    # The spectrogram's frequency scale, switched with the card open (the info pane names the scale drawn).
    for scale, said in (("log", "log frequency scale"), ("mel", "mel scale"), ("linear", "linear frequency scale")):
        app.get_by_role("button", name=scale, exact=True).click()
        wait_for(lambda said=said: said in _info_text(app))
        settled(app)
    expect(line).to_contain_text(stats_line(atlas.spectrum_stats(time=span, period=60.0)))
    assert app.errors == []


def _bands(atlas):
    from dashboard.state import PRESET_BANDS

    return {name: band for name, band in PRESET_BANDS.items() if band[1] <= atlas.freq_range[1]}


def test_a_click_on_the_spectrogram_shows_that_frames_spectrum(app, located_dir):  # noqa: F811 (test_browser's app)
    atlas = open_atlas(located_dir / "demo.zarr")
    line = _open_tab(app, "Spectrum", "Click the spectrogram")
    box = frame(app)
    app.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    expect(line).to_contain_text("clicked: the frame at", timeout=60_000)
    settled(app)
    card_shot(app, "science-2-spectrum")
    clicked = _time_from(_plain(app, ".science-spectrum-line"))
    x0, x1, *_ = plot_ranges(app)
    assert abs((clicked - np.datetime64(int((x0 + 0.4 * (x1 - x0)) * 1e6), "ns")) / S) < 1.0  # where it was clicked
    drawn = app.evaluate(CURVE, "clicked frame")
    y = np.array(drawn["y"], dtype=float)
    # The line says the time to the millisecond: the frame holding it, or the one beside it at a boundary.
    candidates = [atlas.spectrum(time=clicked + d * np.timedelta64(1, "ms")).values[1:] for d in (0, -1, 1)]
    assert any(np.allclose(y, c, rtol=1e-6, equal_nan=True) for c in candidates)
    mean = np.array(app.evaluate(CURVE, "mean of the view")["y"], dtype=float)
    np.testing.assert_allclose(mean, atlas.spectrum(time=atlas.time_range).values[1:], rtol=1e-6)
    assert app.errors == []


def _open_tab(page, name: str, says: str):
    """Open the card and its tab ``name``; wait until the tab's line says ``says``; return that line."""
    page.get_by_text("Science views").click()
    _tab(page, name)
    line = page.locator(f".science-{name.lower()}-line")
    expect(line).to_contain_text(says, timeout=60_000)
    return line


def _plain(page, selector: str) -> str:
    return page.locator(selector).evaluate("(host) => (host.shadowRoot || host).textContent")


def test_a_diel_cell_click_moves_the_view_and_the_cqt_draws(app, located_dir):  # noqa: F811 (test_browser's app)
    atlas = open_atlas(located_dir / "demo.zarr")
    _open_tab(app, "Diel", "sunrise ▲ and sunset ▼")
    card_shot(app, "science-4-diel")
    # From a minute of the recording, a click on the 1 h cell of 00:00 on its date: the view shows that hour
    # (the recording's 6 minutes of it), the frequencies shown stay.
    show(app, "2026-01-15 00:02:00", "2026-01-15 00:03:00")
    app.locator(".science-diel-plot").first.scroll_into_view_if_needed()  # (typing the times scrolled it away)
    box = wait_for(lambda: app.evaluate(DIEL_FRAME))
    app.mouse.click(box["x"] + box["width"] * (0.5 / 24), box["y"] + box["height"] * 0.5)
    wait_for(lambda: "showing 2026-01-15 00:00:00.000 → 2026-01-15 00:06:00.000" in _info_text(app))
    settled(app)
    x0, x1, y0, y1 = plot_ranges(app)
    assert (x0, x1) == (pytest.approx(ms("2026-01-15T00:00:00")), pytest.approx(ms("2026-01-15T00:06:00")))
    assert (y0, y1) == (0, 32_000)
    card_shot(app, "science-5-diel-flown")
    # Zoomed to 10 s, the CQT of the span.
    _tab(app, "CQT")
    show(app, "2026-01-15 00:02:10", "2026-01-15 00:02:20")
    app.locator(".science-cqt-button").locator("button").click()
    expected = atlas.cqt(time=(np.datetime64("2026-01-15T00:02:10"), np.datetime64("2026-01-15T00:02:20")))
    expect(app.locator(".science-cqt-line")).to_contain_text(
        f"|CQT| of {expected.sizes['time']} frames, 84 bins", timeout=60_000
    )
    settled(app)
    card_shot(app, "science-6-cqt")
    assert app.errors == []
