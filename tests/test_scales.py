"""The spectrogram's frequency scales without a browser: Hz <-> y, the rows read, ticks, overlays, gestures in Hz."""

from __future__ import annotations

import subprocess
import sys

import librosa
import numpy as np
import pytest
from conftest import T0, S

from data_access import ParameterError

HZ = np.array([1.0, 15.625, 31.25, 100.0, 999.0, 1000.0, 1001.0, 2500.0, 4000.0])


def test_scales_import_no_panel_or_holoviews():
    code = "import sys, dashboard.scales; assert 'panel' not in sys.modules and 'holoviews' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


@pytest.mark.parametrize(
    ("scale", "reference"),
    [("linear", lambda f: f), ("log", np.log10), ("mel", lambda f: librosa.hz_to_mel(f, htk=False))],
)
def test_hz_to_y_and_back(scale, reference):
    from dashboard.scales import hz_range, to_hz, to_plot

    y = to_plot(scale, HZ)
    np.testing.assert_allclose(y, reference(HZ), rtol=1e-12)
    np.testing.assert_allclose(to_hz(scale, y), HZ, rtol=1e-12)
    assert np.all(np.diff(y) > 0)
    assert hz_range(scale, (y[2], y[-1])) == pytest.approx((31.25, 4000.0), rel=1e-12)


def test_known_points_of_the_scales():
    from dashboard.scales import LOG_FLOOR_HZ, to_plot

    assert to_plot("log", 1000.0) == 3.0
    assert to_plot("mel", 1000.0) == pytest.approx(15.0)  # Slaney: linear to 1 kHz (200/3 Hz a mel), then log
    assert to_plot("mel", 0.0) == 0.0
    assert to_plot("log", 0.0) == np.log10(LOG_FLOOR_HZ) == -3.0  # a band from 0 Hz is drawn from far below


def test_an_unknown_scale_is_named_with_the_choices(state):
    from dashboard.scales import to_plot, window

    with pytest.raises(ParameterError, match=r"freq_scale='bark' is not one of linear, log, mel"):
        to_plot("bark", 100.0)
    with pytest.raises(ParameterError, match=r"freq_scale='Log' is not one of linear, log, mel"):
        window(state.atlas, "Log", (0.0, 4000.0))
    with pytest.raises(ValueError, match="bark"):  # param's own refusal
        state.freq_scale = "bark"
    assert state.freq_scale == "linear"


def _cells(scale: str, view) -> tuple[float, float, float]:
    """An image's extent along y (as hv.Image draws it: centre ± half the step) and its largest step error."""
    from dashboard.scales import to_plot

    y = to_plot(scale, view.freq.values)
    step = np.diff(y)
    return y[0] - step[0] / 2, y[-1] + step[-1] / 2, float(np.ptp(step) / step.mean())


@pytest.mark.parametrize("scale", ["log", "mel"])
@pytest.mark.parametrize("freq", [(0.0, 4000.0), (200.0, 3000.0), (990.0, 1010.0), (0.0, 300.0), (3000.0, 4000.0)])
def test_the_rows_read_are_uniform_on_the_scale_and_tile_its_axis(atlas, scale, freq):
    """hv.Image needs uniform rows: the view's rows, in the scale's coordinate, fill exactly the axis' window."""
    from dashboard.scales import N_MELS, window

    shown = window(atlas, scale, freq)
    view = atlas.view(freq=freq, width=50, height=300, **shown.options)
    assert view.attrs["freq_scale"] == scale and view.sizes["freq"] == (300 if scale == "log" else N_MELS)
    low, high, uneven = _cells(scale, view)
    assert uneven < 1e-6
    assert (low, high) == pytest.approx(shown.y, rel=1e-9, abs=1e-9)
    assert freq[0] - 1e-9 <= shown.hz[0] < shown.hz[1] <= freq[1] + 1e-9


def test_a_log_axis_from_0_hz_starts_at_the_first_bin_and_mel_at_its_lowest_rows_edge(atlas):
    from dashboard.scales import describe, window

    first_bin = atlas.sample_rate / atlas.stft.n_fft  # 31.25 Hz
    assert window(atlas, "log", (0.0, 4000.0)).hz == (first_bin, 4000.0)
    assert window(atlas, "log", (100.0, 4000.0)).hz == (100.0, 4000.0)
    assert window(atlas, "log", (0.0, 20.0)).hz == (10.0, 20.0)  # below the first bin: a decade under the top
    assert "from 31.25 Hz (the first non-zero bin)" in describe(atlas, "log", (0.0, 4000.0))
    assert "from" not in describe(atlas, "log", (100.0, 4000.0))
    mel = window(atlas, "mel", (0.0, 4000.0))
    assert 0 < mel.hz[0] < 20 and 3950 < mel.hz[1] < 4000  # half a row inside 0 Hz and Nyquist
    assert describe(atlas, "mel", (0.0, 4000.0)).startswith("mel scale, 128 rows (Slaney), from ")
    assert window(atlas, "mel", (500.0, 2000.0)).hz == pytest.approx((500.0, 2000.0))  # inside: exactly
    assert describe(atlas, "linear", (0.0, 4000.0)) == "linear frequency scale (31.25 Hz bins)"


@pytest.mark.parametrize(
    ("scale", "freq", "sig_digits"),
    [
        ("log", (31.25, 4000.0), 2),
        ("log", (10.0, 32_000.0), 2),
        ("mel", (17.0, 32_000.0), 2),
        ("mel", (0.5, 4000.0), 2),
        ("log", (1000.0, 1010.0), 4),
        ("mel", (1000.0, 1010.0), 4),
        ("linear", (0.0, 4000.0), 2),
    ],
)
def test_ticks_are_round_hz_values_inside_the_range(scale, freq, sig_digits):
    from dashboard.scales import hz_ticks, to_plot

    ticks = hz_ticks(scale, tuple(to_plot(scale, freq)))
    assert len(ticks) >= 3
    assert np.all(np.diff(ticks) > 0) and ticks[0] >= freq[0] - 1e-9 and ticks[-1] <= freq[1] + 1e-9
    for t in ticks:
        assert float(f"{t:.{sig_digits}g}") == pytest.approx(t, rel=1e-12), ticks


def test_overlays_in_hz_are_drawn_on_the_scale():
    import holoviews as hv
    import pandas as pd

    from dashboard.scales import to_plot
    from dashboard.spectrogram import in_scale

    t = np.array([T0, T0 + S])
    spans = hv.HSpans([(100.0, 1000.0, "b")], kdims=["y0", "y1"], vdims=["band"]).opts(line_dash="dashed")
    rects = hv.Rectangles(pd.DataFrame({"x0": t[:1], "y0": [0.0], "x1": t[1:], "y1": [2000.0]}))
    path = hv.Path([{"time": t, "freq": np.array([100.0, 2000.0])}], kdims=["time", "freq"])
    points = hv.Points((t, [100.0, 2000.0]), kdims=["time", "freq"])
    gaps = hv.VSpans([(t[0], t[1])], kdims=["time", "time_end"])
    drawn = in_scale(spans * rects * path * points * gaps, "log")
    assert drawn.get(0).dframe()[["y0", "y1"]].values.tolist() == [[2.0, 3.0]]
    assert drawn.get(0).opts.get().kwargs["line_dash"] == "dashed"  # its options stay
    assert drawn.get(1).dframe()[["y0", "y1"]].values.tolist() == [[-3.0, to_plot("log", 2000.0)]]
    np.testing.assert_allclose(drawn.get(2).split()[0].dframe()["freq"], to_plot("log", [100.0, 2000.0]))
    np.testing.assert_allclose(drawn.get(3).dframe()["freq"], to_plot("log", [100.0, 2000.0]))
    assert drawn.get(4) is gaps  # time only
    assert in_scale(hv.Path([], kdims=["time", "freq"]), "mel").data == []
    assert in_scale(spans, "linear") is spans
    with pytest.raises(TypeError, match="cannot draw Curve on a mel scale"):
        in_scale(hv.Curve([1, 2]), "mel")


@pytest.fixture
def view(state):
    """A SpectrogramView on the small store, rendered, that records boxes and clicks; gestures answered at once."""
    import holoviews as hv
    import panel as pn
    from bokeh.models import Plot

    from dashboard.spectrogram import SpectrogramView, band_edges

    hv.extension("bokeh")
    got = []
    spectrogram = SpectrogramView(state=state, box_drawn=lambda *box: got.append(box), tapped=lambda *p: got.append(p))
    spectrogram.overlay(*band_edges(state))
    root = pn.panel(spectrogram).get_root()
    spectrogram.main = next(iter(root.select({"type": Plot})))
    spectrogram.got = got
    return spectrogram


def _y_range(plot) -> tuple[float, float]:
    return plot.y_range.start, plot.y_range.end


def _renderers(plot, glyph: str):
    return [r for r in plot.renderers if type(getattr(r, "glyph", None)).__name__ == glyph]


@pytest.mark.parametrize("scale", ["log", "mel"])
def test_the_plot_draws_the_scale_and_labels_it_in_hz(view, scale):
    from dashboard.scales import hz_ticks, to_plot, window

    state, main = view.state, view.main
    state.freq_scale = scale
    shown = window(state.atlas, scale, state.freq_range)
    assert _y_range(main) == pytest.approx(shown.y)
    axis = main.yaxis[0]
    assert axis.axis_label == f"frequency (Hz, {scale} scale)"
    np.testing.assert_allclose(axis.ticker.ticks, to_plot(scale, hz_ticks(scale, shown.y)))
    assert axis.formatter.args["scale"] == scale
    (image,) = _renderers(main, "Image")
    bottom, height = image.data_source.data["y"][0], image.data_source.data["dh"][0]
    assert (bottom, bottom + height) == pytest.approx(shown.y)  # the image fills the frame
    (edges,) = _renderers(main, "HStrip")
    lo, hi = state.bands["shipping"]
    assert (50.0, 500.0) == (lo, hi)
    np.testing.assert_allclose(edges.data_source.data["y0"], to_plot(scale, [b[0] for b in state.bands.values()]))
    state.freq_scale = "linear"
    assert _y_range(main) == state.freq_range and axis.axis_label == "frequency (Hz)"
    assert type(axis.ticker).__name__ == "BasicTicker" and axis.formatter.format == "0,0.[00]"


def test_a_zoom_a_box_and_a_click_in_log_scale_are_in_hz(view, monkeypatch):
    import panel as pn

    from dashboard.scales import to_plot

    monkeypatch.setattr(pn.state, "execute", lambda callback, schedule=False: callback())
    state, main = view.state, view.main
    state.freq_scale = "log"
    x = (T0 + 10 * S, T0 + 20 * S)
    y = (2.0, 3.0)  # 100 Hz .. 1 kHz on the axis
    main.x_range.update(start=x[0], end=x[1])  # (the page's own range, synced, then its gesture's event)
    main.y_range.update(start=y[0], end=y[1])
    view.range_stream.event(x_range=x, y_range=y)
    assert state.freq_range == pytest.approx((100.0, 1000.0), rel=1e-12)
    assert _y_range(main) == y  # the page's own range stands
    view.box_stream.event(bounds=(x[0], float(to_plot("log", 200.0)), x[1], float(to_plot("log", 300.0))))
    assert view.got[-1][2:] == pytest.approx((200.0, 300.0), rel=1e-12)
    view.tap_stream.event(x=x[0], y=float(to_plot("log", 440.0)))
    assert view.got[-1][1] == pytest.approx(440.0, rel=1e-12)
    state.freq_scale = "mel"  # a new scale: the axis shows the state's range on it
    assert _y_range(main) == pytest.approx(tuple(to_plot("mel", [100.0, 1000.0])))
    view.box_stream.event(bounds=(x[0], float(to_plot("mel", 200.0)), x[1], float(to_plot("mel", 300.0))))
    assert view.got[-1][2:] == pytest.approx((200.0, 300.0), rel=1e-12)


def test_a_link_keeps_the_scale_and_the_download_holds_its_rows(view):
    import xarray as xr

    from dashboard.info import Downloads
    from dashboard.scales import N_MELS

    state = view.state
    state.freq_scale = "mel"

    def visible(width, height):
        from dashboard.scales import window

        rows = window(state.atlas, state.freq_scale, state.freq_range).options
        return state.atlas.view(time=state.time_range, freq=state.freq_range, width=width, height=height, **rows)

    downloads = Downloads(state=state, curves=lambda points: None, view=visible)
    saved = xr.open_dataarray(downloads._netcdf(), engine="h5netcdf")
    assert saved.attrs["freq_scale"] == "mel" and saved.sizes["freq"] == N_MELS
    assert saved.attrs["freq_edges"].shape == (N_MELS + 1,) and saved.freq.attrs["units"] == "Hz"
