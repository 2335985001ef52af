"""The explorer's notebook API: what is on screen, read and moved from the kernel (no browser)."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import SR, tone

from data_access import ParameterError, StftConfig, ingest, open_timeline

START = np.datetime64("2026-01-15T00:00:00", "ns")
SECOND = np.timedelta64(1, "s")
AMP = 0.5
# A sine of amplitude A has mean square A²/2: its band level in dB re full scale.
TONE_DB = 10 * np.log10(AMP**2 / 2)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """60 s: a 1 kHz tone for the first 30 s, a 3 kHz tone for the last 30 s."""
    import soundfile as sf

    folder = tmp_path_factory.mktemp("two-tones")
    wav = folder / "two_tones.wav"
    sf.write(wav, np.concatenate([tone(1000, 30, amp=AMP), tone(3000, 30, amp=AMP)]), SR, subtype="FLOAT")
    timeline = open_timeline([wav], start_time=str(START))
    return ingest(timeline, folder / "two_tones.zarr", StftConfig(n_fft=512, hop_length=256), progress=False)


@pytest.fixture
def explorer(store):
    from dashboard import SpectrogramExplorer

    return SpectrogramExplorer(store)


def _peak_hz(view: xr.DataArray) -> float:
    """The frequency of the loudest row, from the median over time."""
    return float(view.freq[int(np.nanargmax(view.median("time").values))])


def test_selection_is_the_visible_window_as_data(explorer):
    view, curves = explorer.selection()
    # The store has 257 bins: fewer than 600 rows, so the bins themselves (see Atlas.view).
    assert view.dims == ("freq", "time") and view.shape == (257, 1200)
    assert isinstance(curves, pd.DataFrame) and curves.index.name == "time_utc" and len(curves) == 800
    assert list(curves.columns) == list(explorer.bands)
    assert view.time.values[0] >= START and view.time.values[-1] <= START + 60 * SECOND
    assert view.freq.values[0] == 0 and view.freq.values[-1] == explorer.state.atlas.freq_range[1]

    small = explorer.selection(width=300, height=100, points=50)
    assert small.spectrogram.shape == (100, 300) and small.curves.shape == (50, len(explorer.bands))


def test_setting_the_time_range_from_code_moves_what_is_selected(explorer):
    explorer.time_range = ("2026-01-15T00:00:05", "2026-01-15T00:00:25")
    assert explorer.time_range == (START + 5 * SECOND, START + 25 * SECOND)
    assert explorer.state.time_range == explorer.time_range  # the views follow the same state
    first = explorer.selection(width=200, height=256).spectrogram
    assert START + 5 * SECOND <= first.time.values[0] < first.time.values[-1] <= START + 25 * SECOND
    assert abs(_peak_hz(first) - 1000) < 20

    explorer.time_range = (pd.Timestamp("2026-01-15 00:00:35"), pd.Timestamp("2026-01-15 00:00:55"))
    assert abs(_peak_hz(explorer.selection(width=200, height=256).spectrogram) - 3000) < 20

    explorer.time_range = (START + 50 * SECOND, START + 70 * SECOND)  # past the end: moved inside, same width
    assert explorer.time_range == (START + 40 * SECOND, START + 60 * SECOND)


def test_band_curves_read_the_tone_level(explorer):
    explorer.add_band("tone", 900, 1100)
    explorer.add_band("between", 1600, 2400)
    explorer.time_range = (START + 2 * SECOND, START + 28 * SECOND)
    curves = explorer.selection(points=40).curves
    assert curves.attrs["units"] == "dB re full scale"
    np.testing.assert_allclose(curves["tone"], TONE_DB, atol=0.05)  # Parseval: the whole tone is in its band
    assert (curves["between"] < TONE_DB - 60).all()
    assert curves.index[0] >= START + 2 * SECOND and curves.index[-1] <= START + 28 * SECOND


def test_the_frequency_range_from_code(explorer):
    explorer.freq_range = (2000, 4000)
    assert explorer.freq_range == (2000.0, 4000.0)
    view = explorer.selection(width=100, height=64).spectrogram
    assert 2000 <= float(view.freq.min()) < float(view.freq.max()) <= 4000
    explorer.freq_range = (100, 10_000)  # clipped at Nyquist
    assert explorer.freq_range == (100.0, SR / 2)


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("freq_range", (3000, 1000), r"frequency range 3000 \.\. 1000 Hz must have 0 <= low < high"),
        ("freq_range", (5000, 6000), r"low < 4000 Hz"),
        ("freq_range", (-10, 100), r"0 <= low"),
        ("time_range", ("2026-01-15T00:00:20", "2026-01-15T00:00:10"), r"empty or inverted"),
    ],
)
def test_bad_ranges_from_code_are_refused(explorer, attribute, value, message):
    before = getattr(explorer, attribute)
    with pytest.raises(ParameterError, match=message):
        setattr(explorer, attribute, value)
    assert getattr(explorer, attribute) == before


def test_bands_from_code(explorer):
    shown = explorer.bands
    shown["not added"] = (1.0, 2.0)  # a copy: changing it changes nothing
    assert "not added" not in explorer.bands
    with pytest.raises(ParameterError, match=r"band 'too high' = 3000 \.\. 9000 Hz must have"):
        explorer.add_band("too high", 3000, 9000)
    explorer.add_band("mine", 100, 200)
    assert explorer.bands["mine"] == (100.0, 200.0) and "mine" in explorer.selection(points=10).curves
    for name in explorer.bands:
        explorer.remove_band(name)
    curves = explorer.selection(points=10).curves
    assert curves.shape == (0, 0) and curves.index.name == "time_utc"


def test_the_downloads_hold_the_selection(explorer):
    explorer.time_range = (START + 10 * SECOND, START + 40 * SECOND)
    view, curves = explorer.selection()
    downloads = explorer._downloads
    downloaded = xr.open_dataarray(io.BytesIO(downloads._netcdf().getvalue()), engine="h5netcdf")
    xr.testing.assert_identical(downloaded.drop_attrs(), view.drop_attrs())
    csv = pd.read_csv(downloads._csv(), index_col="time_utc", parse_dates=["time_utc"])
    np.testing.assert_allclose(csv.to_numpy(), curves.to_numpy(), rtol=1e-6)
    # Each column names its band, with the band's limits and the units.
    assert [c.split(" [")[0] for c in csv.columns] == list(curves.columns) and (csv.index == curves.index).all()


def test_the_package_exports_the_explorer_without_loading_panel_for_the_cli():
    import dashboard
    from dashboard.explorer import Selection, SpectrogramExplorer

    assert dashboard.SpectrogramExplorer is SpectrogramExplorer and dashboard.Selection is Selection
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        dashboard.Nothing  # noqa: B018
    code = "import sys, dashboard.cli; sys.exit('panel' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_multichannel_store_selects_the_channel_shown(tmp_path):
    import soundfile as sf

    from dashboard import SpectrogramExplorer

    wav = tmp_path / "stereo.wav"
    sf.write(wav, np.stack([tone(1000, 10, amp=AMP), tone(3000, 10, amp=AMP)], axis=1), SR, subtype="FLOAT")
    timeline = open_timeline([wav], start_time=str(START), channel="all")
    store = ingest(timeline, tmp_path / "stereo.zarr", StftConfig(n_fft=512, hop_length=256), progress=False)
    explorer = SpectrogramExplorer(store)
    explorer.add_band("3 kHz", 2900, 3100)
    explorer.state.channel = 0
    view, curves = explorer.selection(width=100, height=256, points=20)
    assert abs(_peak_hz(view) - 1000) < 20 and (curves["3 kHz"] < TONE_DB - 60).all()
    explorer.state.channel = 1
    view, curves = explorer.selection(width=100, height=256, points=20)
    assert abs(_peak_hz(view) - 3000) < 20
    np.testing.assert_allclose(curves["3 kHz"], TONE_DB, atol=0.05)
