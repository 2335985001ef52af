"""Science views (issue 19): filterbanks against librosa and a direct integration, views, statistics, diel grids."""

from __future__ import annotations

import shutil
import subprocess

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import xarray as xr
from conftest import chirp, noise, tone

from dashboard.cli import main
from data_access import (
    Calibration,
    ParameterError,
    SourceNotFoundError,
    StftConfig,
    ingest,
    open_atlas,
    open_store,
    open_timeline,
    spectra,
    store_info,
)
from data_access.spectra import PERCENTILES, filterbank, row_edges, sun_times
from data_access.store import set_location

SR = 16_000
N_FFT = 512


@pytest.mark.parametrize(
    ("n_mels", "fmin", "fmax", "htk", "norm"),
    [(128, None, None, False, "slaney"), (40, 50.0, 7000.0, True, None), (64, 300.0, None, False, 2.0)],
)
def test_mel_filterbank_is_librosas(n_mels, fmin, fmax, htk, norm):
    weights, centres = filterbank(
        "mel", sample_rate=SR, n_fft=N_FFT, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm
    )
    reference = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=n_mels, fmin=fmin or 0, fmax=fmax, htk=htk, norm=norm)
    assert weights.shape == (n_mels, N_FFT // 2 + 1) and weights.dtype == np.float64
    np.testing.assert_allclose(weights, reference, rtol=1e-6, atol=1e-6 * np.abs(reference).max())
    np.testing.assert_allclose(
        centres, librosa.mel_frequencies(n_mels + 2, fmin=fmin or 0, fmax=fmax or SR / 2, htk=htk)[1:-1]
    )
    assert (
        len(row_edges("mel", sample_rate=SR, n_fft=N_FFT, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk)) == n_mels + 1
    )


def _integrated_rows(power: np.ndarray, edges: np.ndarray, df: float) -> np.ndarray:
    """Rows as the mean over [lo, hi) of the piecewise-constant spectrum the bins define, by its running integral."""
    cell_edges = (np.arange(len(power) + 1) - 0.5) * df
    running = np.concatenate([[0.0], np.cumsum(power * df)])  # exact at the cell edges, linear between them
    integral = np.interp(edges, cell_edges, running)
    return np.diff(integral) / np.diff(edges)


@pytest.mark.parametrize(("n_rows", "fmin", "fmax"), [(None, None, None), (300, 1.0, 8000.0), (12, 100.0, 3000.0)])
def test_log_rows_are_the_mean_of_the_piecewise_constant_spectrum(n_rows, fmin, fmax):
    power = np.random.default_rng(3).exponential(size=N_FFT // 2 + 1)
    weights, centres = filterbank("log", sample_rate=SR, n_fft=N_FFT, n_rows=n_rows, fmin=fmin, fmax=fmax)
    edges = row_edges("log", sample_rate=SR, n_fft=N_FFT, n_rows=n_rows, fmin=fmin, fmax=fmax)
    rows = len(edges) - 1
    assert weights.shape == (rows, N_FFT // 2 + 1) and rows == (n_rows or 128)
    assert edges[0] == pytest.approx(fmin or SR / N_FFT) and edges[-1] == pytest.approx(fmax or SR / 2)
    np.testing.assert_allclose(np.diff(np.log(edges)), np.log(edges[-1] / edges[0]) / rows)
    np.testing.assert_allclose(centres, np.sqrt(edges[:-1] * edges[1:]))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    np.testing.assert_allclose(weights @ power, _integrated_rows(power, edges, SR / N_FFT), rtol=1e-12)


def test_log_rows_narrower_than_bins_repeat_the_bin():
    """From 1 Hz, 300 rows over 31.25 Hz bins: the low rows lie inside one bin and take its value, nothing finer."""
    power = np.arange(N_FFT // 2 + 1, dtype=float) + 1
    weights, centres = filterbank("log", sample_rate=SR, n_fft=N_FFT, n_rows=300, fmin=1.0)
    edges = row_edges("log", sample_rate=SR, n_fft=N_FFT, n_rows=300, fmin=1.0)
    df = SR / N_FFT
    inside = np.floor(edges[:-1] / df + 0.5) == np.floor(edges[1:] / df + 0.5)  # both edges in one cell
    assert inside.sum() > 50
    np.testing.assert_allclose((weights @ power)[inside], power[np.floor(centres[inside] / df + 0.5).astype(int)])


def test_linear_filterbank_is_the_identity():
    weights, centres = filterbank("linear", sample_rate=SR, n_fft=N_FFT)
    np.testing.assert_array_equal(weights, np.eye(N_FFT // 2 + 1))
    np.testing.assert_allclose(centres, librosa.fft_frequencies(sr=SR, n_fft=N_FFT))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scale": "bark"}, r"freq_scale='bark' is not one of \['linear', 'log', 'mel'\]"),
        ({"scale": "mel", "n_mels": 0}, "n_mels=0 must be a positive integer"),
        ({"scale": "log", "n_rows": -3}, "n_rows=-3 must be a positive integer"),
        ({"scale": "mel", "fmin": 5000.0, "fmax": 4000.0}, "fmin=5000 must be below fmax=4000"),
        ({"scale": "log", "fmin": 100.0, "fmax": 100.0}, "fmin=100 must be below fmax=100"),
        ({"scale": "mel", "fmax": 9000.0}, r"must lie in 0..8000 Hz \(the Nyquist frequency\)"),
        ({"scale": "log", "fmin": -1.0}, r"must lie in 0..8000 Hz"),
        ({"scale": "log", "fmin": 0.0}, "fmin=0 must be above 0 Hz on a log-frequency scale"),
    ],
)
def test_filterbank_bad_input(kwargs, match):
    scale = kwargs.pop("scale")
    with pytest.raises(ParameterError, match=match):
        filterbank(scale, sample_rate=SR, n_fft=N_FFT, **kwargs)


# ------------------------------------------------------------ a real store
SECONDS = 160.0  # 9 999 frames: levels of 9 999, 2 500 and 625 columns
HOP = 256
T0 = np.datetime64("2026-03-01T12:00:00", "ns")
STEP = HOP / SR
CAL = Calibration(sensitivity_db=-170.0, gain_db=20.0, full_scale_volts=2.0)


def sec(s: float) -> np.datetime64:
    return T0 + np.timedelta64(int(round(s * 1e9)), "ns")


def signal() -> np.ndarray:
    """Quiet noise, a 3 kHz tone, a 200 Hz -> 6 kHz sweep over the first minute and a loud burst at 100..110 s."""
    x = noise(SECONDS, sr=SR, amp=0.01, seed=7) + tone(3000.0, SECONDS, sr=SR, amp=0.1)
    x[: 60 * SR] += chirp(200.0, 6000.0, 60.0, sr=SR, amp=0.2)
    x[100 * SR : 110 * SR] += tone(1200.0, 10.0, sr=SR, amp=0.4)
    return x


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The signal as a WAV file, ingested with n_fft 512, hop 256: (atlas, samples, wav path)."""
    folder = tmp_path_factory.mktemp("spectra")
    x = signal()
    wav = folder / "s_20260301_120000.wav"
    sf.write(wav, x, SR, subtype="FLOAT")
    store = ingest(open_timeline(wav), folder / "s.zarr", StftConfig(n_fft=N_FFT, hop_length=HOP), progress=False)
    return open_atlas(store), x, wav


@pytest.fixture(scope="module")
def power0(recorded):
    """The stored level-0 power, read by xarray (not through the code under test), float64."""
    return open_store(recorded[0].path)["0"].power.values.astype(np.float64)


def test_stored_power_is_librosas_stft_to_12_bits(recorded, power0):
    """The reference power below is the store's: librosa's STFT of the samples to 12 mantissa bits (2.4e-4)."""
    x = recorded[1]
    reference = np.abs(librosa.stft(x, n_fft=N_FFT, hop_length=HOP, window="hann", center=False)) ** 2
    np.testing.assert_allclose(power0, reference, rtol=2**-12, atol=1e-12)


def frames_of(view) -> np.ndarray:
    """The level-0 frame indices of a level-0 view's columns, from their centre times."""
    seconds = (view.time.values - T0) / np.timedelta64(1, "ns") * 1e-9
    return np.round((seconds - N_FFT / 2 / SR) / STEP).astype(int)


def test_mel_view_at_level_0_is_librosas_melspectrogram(recorded, power0):
    atlas, x, _ = recorded
    view = atlas.view(time=(sec(20.0), sec(22.0)), width=400, height=300, freq_scale="mel", n_mels=64)
    assert view.attrs["level"] == 0 and view.attrs["freq_scale"] == "mel" and view.sizes == {"freq": 64, "time": 126}
    i = frames_of(view)
    reference = librosa.feature.melspectrogram(S=power0[:, i], sr=SR, n_fft=N_FFT, n_mels=64)
    np.testing.assert_allclose(10 ** (view.values.astype(np.float64) / 10), reference, rtol=1e-5)
    np.testing.assert_allclose(view.freq, librosa.mel_frequencies(66, fmax=SR / 2)[1:-1])
    assert len(view.attrs["freq_edges"]) == 65


def test_mel_view_of_level_k_is_the_mean_of_level_0_mel_frames(recorded, power0):
    """The filterbank is linear and level k holds the mean of power: mel(level k) = mean of mel(level-0 frames)."""
    atlas, _, _ = recorded
    weights, _ = filterbank("mel", sample_rate=SR, n_fft=N_FFT, n_mels=40, htk=True, norm=None)
    mel0 = weights @ power0
    for level, width in ((1, 3000), (2, 1000)):
        view = atlas.view(width=width, height=100, freq_scale="mel", n_mels=40, htk=True, norm=None)
        assert view.attrs["level"] == level and view.sizes["time"] <= width
        m = 4**level
        j = np.round(((view.time.values - atlas.levels[level].first) / np.timedelta64(1, "ns") * 1e-9) / (m * STEP))
        expected = np.stack([mel0[:, int(c) * m : (int(c) + 1) * m].mean(axis=1) for c in j], axis=1)
        # Level k >= 1 keeps 14 mantissa bits of the mean (MEAN_BITS): 6e-5 relative at most.
        np.testing.assert_allclose(10 ** (view.values.astype(np.float64) / 10), expected, rtol=1.5e-4)


def test_log_view_rows_are_the_mean_of_the_bins_they_cover(recorded, power0):
    atlas, x, _ = recorded
    view = atlas.view(time=(sec(30.0), sec(31.0)), freq=(100.0, 7000.0), width=200, height=90, freq_scale="log")
    assert view.attrs["level"] == 0 and view.sizes["freq"] == 90
    edges = view.attrs["freq_edges"]
    assert edges[0] == pytest.approx(100.0) and edges[-1] == pytest.approx(7000.0)
    power = power0[:, frames_of(view)]
    expected = np.stack([_integrated_rows(p, edges, SR / N_FFT) for p in power.T], axis=1)
    np.testing.assert_allclose(10 ** (view.values.astype(np.float64) / 10), expected, rtol=1e-5)
    # From 0 Hz the rows start at the first non-zero bin.
    assert atlas.view(width=100, height=50, freq_scale="log").attrs["freq_edges"][0] == pytest.approx(SR / N_FFT)


def test_a_mel_view_of_a_narrow_band_has_empty_rows_as_nan(recorded):
    """128 mels over 200 Hz (six bins): librosa warns of empty filters; the view says nothing there (NaN)."""
    view = recorded[0].view(time=(sec(1.0), sec(3.0)), freq=(2900.0, 3100.0), width=100, height=100, freq_scale="mel")
    assert view.sizes["freq"] == 128 and 0 < np.isnan(view.values).all(axis=1).sum() < 128


def test_a_view_of_one_row(recorded):
    """One log row over a resampled view: the band's mean power, the width-weighted mean of ten rows over it."""
    atlas = recorded[0]
    ten = atlas.view(width=50, height=10, freq_scale="log", fmin=2000.0, fmax=4000.0)
    one = atlas.view(width=50, height=1, freq_scale="log", fmin=2000.0, fmax=4000.0)
    assert one.sizes == {"freq": 1, "time": 50} and one.freq.values[0] == pytest.approx(np.sqrt(2000.0 * 4000.0))
    share = np.diff(ten.attrs["freq_edges"]) / 2000.0
    expected = share @ 10 ** (ten.values.astype(np.float64) / 10)
    np.testing.assert_allclose(10 ** (one.values[0].astype(np.float64) / 10), expected, rtol=1e-5)


def test_a_linear_view_is_unchanged_by_the_scale_options(recorded):
    atlas, _, _ = recorded
    plain = atlas.view(time=(sec(5.0), sec(65.0)), width=300, height=200)
    scaled = atlas.view(time=(sec(5.0), sec(65.0)), width=300, height=200, freq_scale="linear", n_mels=7, fmin=9.0)
    xr.testing.assert_identical(plain, scaled)
    assert plain.attrs["freq_scale"] == "linear"


def test_mfcc_is_librosas(recorded, power0):
    atlas, x, _ = recorded
    out = atlas.mfcc(time=(sec(40.0), sec(45.0)), n_mfcc=13)
    power = power0
    seconds = (np.arange(power.shape[1]) * HOP + N_FFT / 2) / SR
    i = np.flatnonzero((seconds >= 40.0) & (seconds < 45.0))
    assert out.dims == ("mfcc", "time") and out.shape == (13, len(i))
    np.testing.assert_array_equal(out.time.values, T0 + (seconds[i] * 1e9).round().astype("timedelta64[ns]"))
    mel = librosa.feature.melspectrogram(S=power[:, i], sr=SR, n_fft=N_FFT)
    reference = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13)
    np.testing.assert_allclose(out.values, reference, rtol=1e-4, atol=1e-3)


def test_cqt_is_librosas_on_the_same_samples(recorded):
    atlas, x, _ = recorded
    out = atlas.cqt(time=(sec(10.0), sec(14.0)), fmin=55.0, n_bins=72, bins_per_octave=12)
    y = x[10 * SR : 14 * SR]
    reference = np.abs(librosa.cqt(y, sr=SR, hop_length=512, fmin=55.0, n_bins=72, bins_per_octave=12))
    assert out.shape == reference.shape and out.time.values[0] == sec(10.0)
    np.testing.assert_allclose(out.values, reference, rtol=1e-5, atol=1e-6 * reference.max())
    np.testing.assert_allclose(out.freq, librosa.cqt_frequencies(72, fmin=55.0))
    sweep = 200.0 + 5800.0 * (10.0 + 10 * 512 / SR) / 60.0  # the sweep's frequency at frame 10: 1198 Hz
    assert out.freq.values[np.argmax(out.values[:, 10])] == pytest.approx(sweep, rel=0.03)  # within a semitone


def test_spectrum_at_an_instant_is_its_frame_and_over_a_span_the_mean(recorded, power0):
    atlas, x, _ = recorded
    power = power0
    i = 2000  # centred at (2000 * 256 + 256) / 16000 = 32.016 s
    at = atlas.spectrum(time=sec(32.016 + 0.004))
    np.testing.assert_allclose(at.values, 10 * np.log10(power[:, i]), atol=1e-4)
    assert at.attrs["level"] == 0 and at.attrs["frames"] == 1
    span = atlas.spectrum(time=(sec(0.0), sec(SECONDS)))
    assert span.attrs["level"] == 2  # 625 columns of 64 frames: the coarsest with >= 256
    mean = power[:, : span.attrs["frames"]].mean(axis=1)
    np.testing.assert_allclose(10 ** (span.values / 10), mean, rtol=2e-4)
    assert span.freq.values[np.argmax(span.values)] == pytest.approx(3000.0, abs=SR / N_FFT)


def test_spectrum_stats_are_numpys_percentiles_of_the_same_columns(recorded):
    atlas, _, _ = recorded
    stats = atlas.spectrum_stats(time=(sec(0.0), sec(SECONDS)), period="1s")
    level = stats.attrs["pyramid_level"]
    assert level == 2 and stats.attrs["period_seconds"] == pytest.approx(16 * STEP)  # 0.256 s, the coarsest
    lvl = atlas.levels[level]
    j = np.flatnonzero(
        (lvl.column_times(0, lvl.n_columns) >= sec(0.0)) & (lvl.column_times(0, lvl.n_columns) < sec(SECONDS))
    )
    columns = atlas._read_columns(lvl, "power", int(j[0]), int(j[-1]) + 1).astype(np.float64)
    db = 10 * np.log10(columns)
    assert stats.attrs["n_periods"] == len(j)
    np.testing.assert_allclose(stats.percentiles, np.percentile(db, PERCENTILES, axis=1), atol=1e-4)
    np.testing.assert_allclose(stats["median"], np.median(db, axis=1), atol=1e-4)
    np.testing.assert_allclose(stats.spd.sum("level"), 1.0, rtol=1e-6)
    counts = atlas._read_counts(lvl, int(j[0]), int(j[-1]) + 1)
    np.testing.assert_allclose(stats["mean"], 10 * np.log10(columns @ counts / counts.sum()), atol=1e-4)
    hist = np.histogram(db[100], bins=stats.level.attrs["bin_edges"])[0] / len(j)
    np.testing.assert_allclose(stats.spd.isel(freq=100), hist, atol=1e-7)


def test_sorted_percentiles_and_histogram_are_numpys_with_nan():
    """The statistics sort each row once; with NaN (digital silence) they equal numpy's nan-aware functions."""
    rng = np.random.default_rng(5)
    levels = rng.normal(-60, 6, size=(50, 333)).astype(np.float32)
    levels[rng.random(levels.shape) < 0.1] = np.nan
    levels[7] = np.nan  # a bin silent throughout
    levels[9, :-1] = np.nan  # one value
    q = np.array([0, 1, 5, 10, 50, 90, 95, 99, 100.0])
    ordered = np.sort(levels, axis=1)
    finite = np.count_nonzero(np.isfinite(levels), axis=1)
    with pytest.warns(RuntimeWarning, match="All-NaN slice"):
        expected = np.nanpercentile(levels.astype(np.float64), q, axis=1)
    np.testing.assert_allclose(spectra._sorted_percentiles(ordered, finite, q), expected, rtol=1e-12)
    edges = np.arange(-90.0, -29.0, 2.0)
    spd = spectra._sorted_histogram(ordered, finite, edges)
    for row in (0, 9, 31):
        values = levels[row][np.isfinite(levels[row])]
        np.testing.assert_allclose(spd[:, row], np.histogram(values, edges)[0] / len(values))
    assert np.isnan(spd[:, 7]).all()


def test_band_stats_of_a_tone(recorded):
    """The 3 kHz tone of amplitude 0.1 alone in its band: every statistic near 10 log10(0.1**2 / 2) = -23.01 dB."""
    atlas, _, _ = recorded
    table = atlas.band_stats({"tone": (2900.0, 3100.0), "burst": (1100.0, 1300.0)}, time=(sec(70.0), sec(130.0)))
    tone_row = table.loc["tone"]
    for key in ("L5", "L50", "L95", "mean"):
        assert tone_row[key] == pytest.approx(10 * np.log10(0.1**2 / 2), abs=0.1)
    burst = table.loc["burst"]  # 10 s of 60: above L50 only
    assert burst.L5 == pytest.approx(10 * np.log10(0.4**2 / 2), abs=0.2) and burst.L50 < burst.L5 - 30
    assert burst.peak >= burst.L5 and np.isnan(burst.SEL) and "calibrated" in table.attrs["note"]
    assert table.attrs["level"] == atlas.choose_level((sec(70.0), sec(130.0)), 1200).level
    peak = atlas.band_stats({"burst": (1100.0, 1300.0)}, time=(sec(0.0), sec(SECONDS)), agg="max", width=300)
    assert peak.attrs["level"] >= 1 and peak.loc["burst", "peak"] >= burst.peak - 0.1


# ------------------------------------------------------------ calibrated white noise
SIGMA = 0.05


# 10 minutes at 8 kHz, n_fft 128, hop 64: 75 000 frames, level 3 averages 64 of them (0.512 s).
W_SR, W_FFT, W_HOP, W_SECONDS = 8000, 128, 64, 600.0


@pytest.fixture(scope="module")
def white(tmp_path_factory):
    folder = tmp_path_factory.mktemp("white")
    wav = folder / "w_20260301_120000.wav"
    sf.write(wav, noise(W_SECONDS, sr=W_SR, amp=SIGMA, seed=11), W_SR, subtype="FLOAT")
    config = StftConfig(n_fft=W_FFT, hop_length=W_HOP)
    return open_atlas(ingest(open_timeline(wav), folder / "w.zarr", config, calibration=CAL, progress=False))


def test_median_psd_of_calibrated_white_noise_is_2_sigma2_over_fs(white, report):
    """The median over 1 172 periods of 64 frames each; a period of few frames would sit below the mean (chi-square)."""
    stats = white.spectrum_stats(period="0.5s")
    assert stats.attrs["pyramid_level"] == 3 and stats.attrs["n_periods"] == 1172
    k = CAL.power_factor(np.array([1000.0]))[0]  # µPa² per full-scale unit², flat
    expected = 10 * np.log10(2 * SIGMA**2 / W_SR * k)
    inner = stats["median"].isel(freq=slice(1, -1))  # DC and Nyquist are not doubled: no one-sided density there
    error = float(np.abs(inner - expected).max())
    report("calibrated white noise: |median PSD - 10 log10(2 sigma^2 / fs)|, worst bin", f"{error:.3f} dB")
    assert error < 0.1 and stats.attrs["units"] == "dB re 1 µPa²/Hz"
    # A log view of the calibrated store is of the PSD too: flat at the same level (rows average power, not dB).
    log = white.view(width=60, height=40, freq_scale="log", fmin=500.0, fmax=3500.0)
    assert log.attrs["units"] == "dB re 1 µPa²/Hz"
    assert float(np.median(log.values)) == pytest.approx(expected, abs=0.1)


def test_band_stats_sel_of_calibrated_noise(white):
    table = white.band_stats({"all": (0.0, W_SR / 2)})
    k = CAL.power_factor(np.array([1000.0]))[0]
    mean = 10 * np.log10(SIGMA**2 * k)
    assert table.loc["all", "mean"] == pytest.approx(mean, abs=0.05)
    frames = table.attrs["frames"]
    assert table.loc["all", "SEL"] == pytest.approx(mean + 10 * np.log10(frames * W_HOP / W_SR), abs=0.05)


# ------------------------------------------------------------ gaps and channels
@pytest.fixture(scope="module")
def gapped(tmp_path_factory):
    """Two stereo files, 30 s each with 10 s between them (8 kHz, n_fft 256): channel 1 is 20 dB louder."""
    folder = tmp_path_factory.mktemp("gapped")
    for i, name in enumerate(("g_20260301_120000.wav", "g_20260301_120040.wav")):
        x = noise(30.0, sr=8000, amp=0.01, seed=20 + i)
        sf.write(folder / name, np.stack([x, 10 * x], axis=1), 8000, subtype="FLOAT")
    timeline = open_timeline(sorted(folder.glob("*.wav")), channel="all")
    return open_atlas(ingest(timeline, folder / "g.zarr", StftConfig(n_fft=256, hop_length=128), progress=False))


def test_gaps_are_left_out_and_channels_read_one_at_a_time(gapped):
    atlas = gapped
    assert atlas.channels == ["0", "1"]
    level = atlas.levels[0]
    counts = atlas._read_counts(level, 0, level.n_columns, 0)
    power = atlas._read_columns(level, "power", 0, level.n_columns, 0).astype(np.float64)
    valid = counts > 0
    assert 0 < (~valid).sum() < 0.2 * len(counts)  # the 10 s gap
    span = atlas.spectrum(time=atlas.time_range)
    np.testing.assert_allclose(10 ** (span.values / 10), power[:, valid].mean(axis=1), rtol=2e-4)
    assert span.attrs["frames"] == valid.sum()
    louder = atlas.spectrum(time=atlas.time_range, channel=1)
    np.testing.assert_allclose(louder.values - span.values, 20.0, atol=0.01)
    assert louder.attrs["channel"] == "1"
    stats = atlas.spectrum_stats(period="1s")
    lvl = atlas.levels[stats.attrs["pyramid_level"]]
    assert stats.attrs["n_periods"] == np.count_nonzero(atlas._read_counts(lvl, 0, lvl.n_columns, 0))
    assert np.isfinite(stats.percentiles).all()
    coefficients = atlas.mfcc(time=(sec(25.0), sec(45.0)))
    first = int(np.searchsorted(level.column_times(0, level.n_columns), coefficients.time.values[0]))
    gap = ~valid[first : first + coefficients.sizes["time"]]  # frames meeting the gap: 10 s and a frame
    assert 10.0 < gap.sum() * 128 / 8000 < 10.1
    assert np.isnan(coefficients.values[:, gap]).all() and np.isfinite(coefficients.values[:, ~gap]).all()
    table = atlas.band_stats({"all": (0.0, 4000.0)}, channel=1)
    assert table.loc["all", "mean"] == pytest.approx(10 * np.log10(0.1**2), abs=0.05)  # gap frames left out
    assert table.loc["all", "L95"] < table.loc["all", "L50"] < table.loc["all", "L5"] < table.loc["all", "peak"]
    mel = atlas.view(time=(sec(25.0), sec(45.0)), width=2000, height=50, freq_scale="mel", n_mels=20, channel=1)
    blank = np.isnan(mel.values).all(axis=0)
    assert mel.attrs["channel"] == "1" and blank.any() and not blank.all()
    grid = atlas.diel(resolution="10s", channel=1)
    assert np.isfinite(grid.values).sum() == 6  # 0-10, 10-20, 20-30, 40-50, 50-60, 60-70 s: the gap is NaN
    with pytest.raises(ParameterError, match="holds no data"):
        atlas.band_stats({"all": (0.0, 4000.0)}, time=(sec(32.0), sec(38.0)))


# ------------------------------------------------------------ diel map, location, sun
@pytest.fixture(scope="module")
def midnight(tmp_path_factory):
    """Six minutes from 23:57:00 UTC at 8 kHz, each minute at its own level, ingested at 47.6 N, 122.3 W."""
    folder = tmp_path_factory.mktemp("diel")
    amps = [0.01, 0.1, 0.03, 0.3, 0.05, 0.2]
    x = np.concatenate([noise(60.0, sr=8000, amp=a, seed=i) for i, a in enumerate(amps)])
    wav = folder / "d_20260301_235700.wav"
    sf.write(wav, x, 8000, subtype="FLOAT")
    config = StftConfig(n_fft=256, hop_length=128)
    return open_atlas(ingest(open_timeline(wav), folder / "d.zarr", config, location=(47.6, -122.3), progress=False))


def test_diel_cells_are_band_energy_averaged_over_the_cell(midnight):
    band = (500.0, 3000.0)
    grid = midnight.diel(band=band, resolution=1)  # one-minute cells
    start = np.datetime64("2026-03-01T23:57:00", "ns")
    assert grid.dims == ("date", "time_of_day") and grid.shape == (2, 1440)
    np.testing.assert_array_equal(grid.date, np.array(["2026-03-01", "2026-03-02"], dtype="datetime64[ns]"))
    assert grid.attrs["level"] == 2 and grid.attrs["latitude"] == 47.6 and grid.attrs["longitude"] == -122.3
    minute = np.timedelta64(60, "s")
    cells = grid.stack(cell=("date", "time_of_day"))
    when = cells.date.values + cells.time_of_day.values
    filled = cells.values[np.isfinite(cells.values)]
    assert len(filled) == 6 and list(when[np.isfinite(cells.values)]) == [start + i * minute for i in range(6)]
    for i, value in enumerate(filled):
        t0 = start + i * minute
        curve = midnight.band_energy({"b": band}, time=(t0, min(t0 + minute, midnight.time_range[1])), points=60)
        assert curve.attrs["level"] == grid.attrs["level"]
        expected = 10 * np.log10(np.nanmean(10 ** (curve.b.values.astype(np.float64) / 10)))
        assert value == pytest.approx(expected, abs=0.02), i
    hourly = midnight.diel()  # broadband, one-hour cells
    assert hourly.shape == (2, 24) and np.isfinite(hourly.values).sum() == 2


def test_the_last_partial_column_counts_at_its_frames_centre(write_audio, tmp_path):
    """Level 4's last column holds one frame of 256: the grid puts its centre 0.5 s past the end (and midnight).

    Every read places it at its frame's, 4 ms before the end: the whole recording's mean spectrum counts every
    frame, the statistics every period, and the diel map puts it in the day's last cell.
    """
    n = 149_760 * 32 + 64  # 149 761 frames of 64 samples every 32
    wav = write_audio("e.wav", noise(n / 8000, sr=8000, amp=0.1), sr=8000)
    timeline = open_timeline(wav, start_time="2026-03-01T23:50:00.952")
    atlas = open_atlas(ingest(timeline, tmp_path / "e.zarr", StftConfig(n_fft=64, hop_length=32), progress=False))
    assert atlas.time_range[1] == np.datetime64("2026-03-02T00:00:00", "ns")
    assert atlas.levels[4].column_times(585, 586)[0] > atlas.time_range[1]
    assert atlas.spectrum(time=atlas.time_range).attrs["frames"] == 149_761
    assert atlas.spectrum_stats(period="1s").attrs["n_periods"] == 586
    grid = atlas.diel(resolution=1)
    assert grid.attrs["level"] == 4 and grid.shape == (1, 1440) and np.isfinite(grid.values).sum() == 10
    assert float(grid.values[0, -1]) == pytest.approx(-20.0, abs=0.1)  # 0.1 amplitude noise, broadband


def test_location_round_trips_and_sun_times(midnight, recorded, tmp_path):
    assert midnight.location == (47.6, -122.3)
    sun = midnight.sun_times()
    assert list(sun.index) == [pd.Timestamp("2026-03-01"), pd.Timestamp("2026-03-02")]
    # Seattle, 1 March 2026: sunrise 06:50 PST (14:50 UTC); the sunset that falls on the UTC date 1 March is
    # the evening before's (17:53 PST on 28 February), and 1 March's (17:55 PST) falls on 2 March UTC.
    assert abs(sun.sunrise.iloc[0] - pd.Timestamp("2026-03-01T14:50")) < pd.Timedelta("3min")
    assert abs(sun.sunset.iloc[0] - pd.Timestamp("2026-03-01T01:53")) < pd.Timedelta("3min")
    assert abs(sun.sunset.iloc[1] - pd.Timestamp("2026-03-02T01:55")) < pd.Timedelta("3min")
    polar = sun_times(78.2, 15.6, ["2026-06-21", "2026-12-21"])  # Longyearbyen: midnight sun, polar night
    assert polar.isna().all().all()
    with pytest.raises(ParameterError, match=r"'s.zarr' has no location .* spectral-atlas set-location .* LAT,LON"):
        recorded[0].sun_times()
    for fmt, name in (("zarr", "c.zarr"), ("netcdf", "c.nc")):
        store = ingest(open_timeline(recorded[2]), tmp_path / name, StftConfig(n_fft=512), format=fmt, progress=False)
        assert open_atlas(store).location is None
        set_location(store, (-33.9, 18.4))
        assert open_atlas(store).location == (-33.9, 18.4)
        set_location(store, None)
        assert open_atlas(store).location is None


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda a: a.view(width=10, height=10, freq_scale="bark"), ParameterError, r"freq_scale='bark' is not one of"),
        (
            lambda a: a.view(width=10, height=10, freq_scale="mel", fmin=5e3, fmax=4e3),
            ParameterError,
            "fmin=5000 must be below fmax=4000",
        ),
        (
            lambda a: a.view(width=10, height=10, freq_scale="log", fmax=9e3),
            ParameterError,
            r"must lie in 0..8000 Hz \(the Nyquist",
        ),
        (
            lambda a: a.view(width=10, height=10, freq_scale="mel", n_mels=0),
            ParameterError,
            "n_mels=0 must be a positive integer",
        ),
        (lambda a: a.mfcc(time=(sec(1), sec(2)), n_mfcc=0), ParameterError, "n_mfcc=0 must be a positive integer"),
        (lambda a: a.band_stats({}), ParameterError, "bands is empty"),
        (
            lambda a: a.band_stats({"b": (500.0, 500.0)}),
            ParameterError,
            r"band 'b' = 500 .. 500 Hz must have 0 <= f_low < f_high",
        ),
        (lambda a: a.diel(band=(900.0, 100.0)), ParameterError, r"must have 0 <= f_low < f_high"),
        (lambda a: a.spectrum_stats(time=(sec(-10), sec(5))), ParameterError, "is outside the recording"),
        (lambda a: a.spectrum(time=sec(500)), ParameterError, "is outside the recording"),
        (
            lambda a: a.spectrum_stats(period="1ms"),
            ParameterError,
            r"period='1ms' \(0.001 s\) is shorter than a frame step \(0.016 s\)",
        ),
        (lambda a: a.spectrum_stats(period="soon"), ParameterError, r"period='soon' is not a duration"),
        (lambda a: a.spectrum_stats(percentiles=(50, 101)), ParameterError, "must be numbers from 0 to 100"),
        (
            lambda a: a.diel(resolution="7min"),
            ParameterError,
            r"resolution='7min' \(420 s\) must divide a day into whole cells",
        ),
        (
            lambda a: a.cqt(time=(sec(0), sec(130))),
            ParameterError,
            r"is 130 s, more than the 120 s a CQT is computed over \(MAX_CQT_SECONDS\)",
        ),
        (
            lambda a: a.cqt(time=(sec(0), sec(1)), n_bins=200),
            ParameterError,
            r"put the top bin at .* Hz: the bins must lie in 0 .. 8000 Hz",
        ),
        (lambda a: a.band_stats({"b": (1, 2)}, agg="median"), ParameterError, "agg='median' must be 'mean' or 'max'"),
    ],
)
def test_bad_input(recorded, call, error, match):
    with pytest.raises(error, match=match):
        call(recorded[0])


def test_caps(recorded, monkeypatch):
    atlas = recorded[0]
    monkeypatch.setattr(spectra, "MAX_MFCC_FRAMES", 100)
    with pytest.raises(
        ParameterError, match=r"holds 313 frames, more than the 100 mfcc reads at once \(MAX_MFCC_FRAMES\)"
    ):
        atlas.mfcc(time=(sec(10), sec(15)))
    monkeypatch.setattr(spectra, "MAX_STATS_COLUMNS", 1000)
    stats = atlas.spectrum_stats(period=0.02)
    assert stats.attrs["pyramid_level"] == 2 and "level 2 (0.256 s periods) was read instead" in stats.attrs["note"]


def test_cqt_without_the_recordings(recorded, tmp_path):
    wav = tmp_path / "gone_20260301_120000.wav"
    shutil.copy(recorded[2], wav)
    atlas = open_atlas(ingest(open_timeline(wav), tmp_path / "gone.zarr", StftConfig(n_fft=512), progress=False))
    wav.unlink()
    with pytest.raises(
        SourceNotFoundError, match=r"the CQT needs the recordings: cannot read the audio of 'gone.zarr'"
    ):
        atlas.cqt(time=(sec(1), sec(5)))


def test_cqt_of_a_span_too_short_for_its_lowest_bin(recorded):
    with pytest.raises(ParameterError, match=r"0.1 s is too short for a CQT from fmin=32.7032 Hz"):
        recorded[0].cqt(time=(sec(1), sec(1.1)))


# ------------------------------------------------------------ the console script
def test_stats_cli_writes_cf_netcdf(recorded, tmp_path, capsys):
    atlas = recorded[0]
    out = tmp_path / "stats.nc"
    args = [
        "stats",
        str(atlas.path),
        "--start",
        str(sec(0)),
        "--end",
        str(sec(150)),
        "--period",
        "250ms",
        "-o",
        str(out),
    ]
    assert main(args) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wrote {out}: 586 periods of 0.256 s (level 2) of s.zarr") and "\n" not in line
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.attrs["Conventions"] == "CF-1.10" and ds.attrs["pyramid_level"] == 2
        assert ds["median"].attrs["units"] == "dB re full scale" and ds.freq.attrs["units"] == "Hz"
        expected = atlas.spectrum_stats(time=(sec(0), sec(150)), period="250ms")
        np.testing.assert_array_equal(ds.percentiles.values, expected.percentiles.values)
        np.testing.assert_allclose(ds.spd.sum("level"), 1.0, rtol=1e-6)
    before = out.stat().st_mtime_ns
    assert main(args) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.stat().st_mtime_ns == before
    assert main([*args, "--overwrite", "--period", "1ms"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "shorter than a frame step" in err


def test_set_location_and_ingest_location_cli(cli, recorded, tmp_path, capsys):
    store = tmp_path / "l.zarr"
    done = subprocess.run(
        [
            *cli,
            "ingest",
            str(recorded[2]),
            "-o",
            str(store),
            "--n-fft",
            "512",
            "--location",
            "33.9S,18.4E",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert open_atlas(store).location == (-33.9, 18.4)
    assert main(["set-location", str(store), "--", "-12.5,130.75"]) == 0
    assert open_atlas(store).location == (-12.5, 130.75)
    assert store_info(store)["location"] == (-12.5, 130.75)
    assert main(["info", str(store)]) == 0
    assert "location    -12.5, 130.75 (latitude, longitude)" in capsys.readouterr().out
    assert main(["set-location", str(store), "91,0"]) == 1
    assert main(["set-location", str(store), "--remove"]) == 0
    assert open_atlas(store).location is None
