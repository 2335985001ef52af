"""Measurements of a selection box: a tone burst in quiet noise, checked against librosa by hand."""

from __future__ import annotations

import importlib
import shutil

import librosa
import numpy as np
import pytest
import soundfile as sf
from conftest import noise, tone

from data_access import Calibration, ParameterError, StftConfig, calibrate, ingest, open_atlas, open_timeline
from data_access.measure import KEYS, measure

# The module itself, whatever the package later re-exports under the name "measure".
measure_module = importlib.import_module("data_access.measure")

SR = 16_000
CONFIG = StftConfig(n_fft=512, hop_length=256)  # 32 ms frames every 16 ms, bins 31.25 Hz apart
N_FFT, HOP = CONFIG.n_fft, CONFIG.hop_length
DF = SR / N_FFT
STEP = HOP / SR
T0 = np.datetime64("2026-03-01T12:00:00", "ns")
TONE_HZ, BURST = 5000.0, (8.0, 10.0)  # a 2 s burst at 5 kHz, on bin 160's centre
TONE_AMP, NOISE_AMP = 0.5, 0.01
FIRST_S, GAP, SECOND_S = 20.0, (20.0, 22.0), 8.0  # two files: a 2 s gap between them
BAND = (4000.0, 6000.0)
CAL = Calibration(sensitivity_db=-170.0, gain_db=20.0, full_scale_volts=2.0)


def sec(s: float) -> np.datetime64:
    return T0 + np.timedelta64(int(round(s * 1e9)), "ns")


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    d = tmp_path_factory.mktemp("measure")
    first = noise(FIRST_S, sr=SR, amp=NOISE_AMP, seed=1)
    a, b = (int(t * SR) for t in BURST)
    first[a:b] += tone(TONE_HZ, BURST[1] - BURST[0], sr=SR, amp=TONE_AMP)
    second = noise(SECOND_S, sr=SR, amp=NOISE_AMP, seed=2)
    sf.write(d / "m_20260301_120000.wav", first, SR, subtype="FLOAT")
    sf.write(d / "m_20260301_120022.wav", second, SR, subtype="FLOAT")  # starts at 22 s
    return [d / "m_20260301_120000.wav", d / "m_20260301_120022.wav"]


@pytest.fixture(scope="module")
def store(wavs):
    # 64-frame chunks: a 2 s box spans three of them, so the streaming is exercised.
    return ingest(open_timeline(wavs), wavs[0].with_name("m.zarr"), CONFIG, time_chunk=64, progress=False)


@pytest.fixture(scope="module")
def atlas(store):
    atlas = open_atlas(store)
    assert len(atlas.levels) == 1  # under 2048 frames: band_energy reads level 0 as measure does
    return atlas


@pytest.fixture(scope="module")
def reference(wavs):
    """|librosa.stft(center=False)|**2 of the whole timeline, NaN frames where a sample is missing, and centres."""
    y = open_timeline(wavs).read(0, int(30 * SR)).astype(np.float64)
    ok = np.lib.stride_tricks.sliding_window_view(np.isfinite(y), N_FFT)[::HOP].all(axis=1)
    power = np.abs(librosa.stft(np.nan_to_num(y), n_fft=N_FFT, hop_length=HOP, window="hann", center=False)) ** 2
    power[:, ~ok] = np.nan
    centres = (np.arange(power.shape[1]) * HOP + N_FFT / 2) / SR  # seconds from T0
    return power, centres


def weights(lo: float, hi: float) -> np.ndarray:
    """One-sided weight of each bin: 2 x the fraction of its cell (clipped to 0 .. Nyquist) inside [lo, hi]."""
    c = np.arange(N_FFT // 2 + 1) * DF
    cell_lo, cell_hi = np.clip(c - DF / 2, 0, SR / 2), np.clip(c + DF / 2, 0, SR / 2)
    return 2 * np.clip(np.minimum(cell_hi, hi) - np.maximum(cell_lo, lo), 0, None) / DF


def band_powers(reference, t0: float, t1: float, band=BAND) -> np.ndarray:
    """Band power of every valid frame centred in [t0, t1): sum of w |X|^2 over n_fft * sum(window**2)."""
    power, centres = reference
    inside = (centres >= t0) & (centres < t1)
    per_frame = weights(*band) @ np.nan_to_num(power[:, inside]) / (N_FFT * np.sum(CONFIG.window_array**2))
    return per_frame[np.isfinite(power[0, inside])]


def test_keys_and_types(atlas):
    m = measure(atlas, (sec(7), sec(11)), BAND)
    assert tuple(m) == KEYS
    assert m["Delta Time (s)"] == 4.0 and m["Delta Freq (Hz)"] == 2000.0
    for key in ("Peak Time", "Time 5%", "Time 95%"):
        assert m[key].dtype == np.dtype("datetime64[ns]")
    assert isinstance(m["frames"], int) and m["units"] == "dB re full scale" and m["SNR note"] == ""


def test_tone_burst_peak_centre_and_spread(atlas, reference):
    m = measure(atlas, (sec(7), sec(11)), BAND)
    assert abs(m["Peak Freq (Hz)"] - TONE_HZ) <= DF / 2
    assert abs(m["Center Freq (Hz)"] - TONE_HZ) < 1.0  # a hann-windowed tone on a bin centre: symmetric
    assert BURST[0] < (m["Peak Time"] - T0) / np.timedelta64(1, "s") < BURST[1]
    # Dur 90% of a 2 s burst: 90% of it, give or take the 32 ms frame smearing its edges.
    duration = BURST[1] - BURST[0]
    assert abs(m["Dur 90% (s)"] - 0.9 * duration) < 2 * STEP
    assert abs((m["Time 5%"] - sec(BURST[0])) / np.timedelta64(1, "s") - 0.05 * duration) < 2 * STEP
    # The frames centred in [7, 11) s, by hand.
    _, centres = reference
    assert m["frames"] == int(((centres >= 7) & (centres < 11)).sum())


def test_peak_and_max_power_match_librosa(atlas, reference):
    power, centres = reference
    m = measure(atlas, (sec(7), sec(11)), BAND)
    inside = np.flatnonzero((centres >= 7) & (centres < 11))
    rows = np.flatnonzero(weights(*BAND))
    box = power[np.ix_(rows, inside)]
    k, j = np.unravel_index(np.argmax(box), box.shape)
    assert m["Peak Freq (Hz)"] == rows[k] * DF
    assert m["Peak Time"] == sec(centres[inside[j]])
    np.testing.assert_allclose(m["Max Power (dB)"], 10 * np.log10(box.max()), atol=0.01)


def test_frequency_percentiles_match_a_direct_cumulative_sum(atlas, reference):
    """Energy summed over frames, cumulated over the bins' cells clipped to the band, interpolated by np.interp."""
    power, centres = reference
    band = (4990.3, 5203.1)  # edges inside bins: partial weights
    m = measure(atlas, (sec(7), sec(11)), band)
    inside = (centres >= 7) & (centres < 11)
    w = weights(*band)
    rows = np.flatnonzero(w)
    energy = w[rows] * power[np.ix_(rows, inside)].sum(axis=1)
    edges = np.clip(np.r_[rows * DF - DF / 2, rows[-1] * DF + DF / 2], *band)
    cumulative = np.r_[0.0, np.cumsum(energy)]
    for key, q in (("Freq 5% (Hz)", 0.05), ("Center Freq (Hz)", 0.5), ("Freq 95% (Hz)", 0.95)):
        np.testing.assert_allclose(m[key], np.interp(q * cumulative[-1], cumulative, edges), atol=0.05)
    np.testing.assert_allclose(m["BW 90% (Hz)"], m["Freq 95% (Hz)"] - m["Freq 5% (Hz)"])


def test_time_percentiles_match_a_direct_cumulative_sum(atlas, reference):
    power, centres = reference
    m = measure(atlas, (sec(7), sec(11)), BAND)
    inside = (centres >= 7) & (centres < 11)
    energy = weights(*BAND) @ power[:, inside]
    edges = np.clip(np.r_[centres[inside] - STEP / 2, centres[inside][-1] + STEP / 2], 7, 11)
    cumulative = np.r_[0.0, np.cumsum(energy)]
    for key, q in (("Time 5%", 0.05), ("Time 95%", 0.95)):
        expected = np.interp(q * cumulative[-1], cumulative, edges)
        assert abs((m[key] - T0) / np.timedelta64(1, "s") - expected) < 1e-4  # 0.1 ms of a 16 ms hop


@pytest.mark.parametrize("band", [BAND, (4990.3, 5203.1), (0.0, 8000.0)])
def test_inband_power_is_the_band_curve_over_the_same_frames(atlas, band):
    time = (sec(7.3), sec(10.9))
    m = measure(atlas, time, band)
    curve = atlas.band_energy({"b": band}, time=time, points=1)
    assert curve.attrs["level"] == 0
    np.testing.assert_allclose(m["Inband Power (dB)"], curve.b.values[0], rtol=1e-6)


def test_energy_is_the_sum_of_librosa_band_power_over_the_frames(atlas, reference):
    band = (4990.3, 5203.1)
    m = measure(atlas, (sec(7.3), sec(10.9)), band)
    per_frame = band_powers(reference, 7.3, 10.9, band)
    assert m["frames"] == len(per_frame)
    np.testing.assert_allclose(10 ** (m["Energy (dB)"] / 10), per_frame.sum(), rtol=1e-3)
    np.testing.assert_allclose(10 ** (m["Inband Power (dB)"] / 10), per_frame.mean(), rtol=1e-3)


def test_snr_of_the_burst_over_the_noise_before_it(atlas, reference):
    m = measure(atlas, (sec(BURST[0]), sec(BURST[1])), BAND)
    signal, before = band_powers(reference, *BURST), band_powers(reference, 6.0, 8.0)
    np.testing.assert_allclose(m["SNR (dB)"], 10 * np.log10(signal.mean() / before.mean()), atol=0.005)
    # By hand: a sine of peak A has power A^2 / 2; white noise of variance s^2 puts 2000 / 8000 of it in the band.
    # The frames at the burst's edges hold part of it: about (duration - hop) / duration on average.
    noise_power = NOISE_AMP**2 * (BAND[1] - BAND[0]) / (SR / 2)
    tone_power = TONE_AMP**2 / 2 * (2.0 - STEP) / 2.0
    assert abs(m["SNR (dB)"] - 10 * np.log10((tone_power + noise_power) / noise_power)) < 0.5
    assert m["SNR note"] == ""


@pytest.mark.parametrize(
    ("window", "note"),
    [
        ((0.5, 3.0), "the window before the selection is outside the recording"),
        ((22.5, 23.5), "the window before the selection falls in a gap"),
    ],
)
def test_snr_is_nan_with_a_reason(atlas, window, note):
    m = measure(atlas, (sec(window[0]), sec(window[1])), BAND)
    assert np.isnan(m["SNR (dB)"]) and m["SNR note"] == note
    assert np.isfinite(m["Inband Power (dB)"])


def test_gap_frames_are_left_out(atlas, reference):
    m = measure(atlas, (sec(19.0), sec(23.0)), BAND)
    per_frame = band_powers(reference, 19.0, 23.0)
    _, centres = reference
    assert m["frames"] == len(per_frame) < ((centres >= 19) & (centres < 23)).sum()
    np.testing.assert_allclose(10 ** (m["Inband Power (dB)"] / 10), per_frame.mean(), rtol=1e-3)


def test_calibrated_store_reads_db_re_1_upa(store, atlas, tmp_path):
    copy = shutil.copytree(store, tmp_path / "c.zarr")
    calibrated = open_atlas(calibrate(copy, CAL))
    time = (sec(7), sec(11))
    m, raw = measure(calibrated, time, BAND), measure(atlas, time, BAND)
    assert m["units"] == "dB re 1 µPa"
    k = 10 * np.log10(CAL.full_scale_volts**2 / 10 ** (CAL.gain_db / 10) / 10 ** (CAL.sensitivity_db / 10))
    for key in ("Inband Power (dB)", "Energy (dB)"):
        np.testing.assert_allclose(m[key], raw[key] + k, atol=1e-6)
    # Max Power as the view shows it: power spectral density, k |X|^2 * 2 / (sample_rate * sum(window**2)).
    psd = k + 10 * np.log10(2 / (SR * np.sum(CONFIG.window_array**2)))
    np.testing.assert_allclose(m["Max Power (dB)"], raw["Max Power (dB)"] + psd, atol=1e-5)
    np.testing.assert_allclose(m["SNR (dB)"], raw["SNR (dB)"], atol=1e-6)
    curve = calibrated.band_energy({"b": BAND}, time=time, points=1)
    np.testing.assert_allclose(m["Inband Power (dB)"], curve.b.values[0], rtol=1e-6)
    for key in ("Peak Freq (Hz)", "Peak Time", "Center Freq (Hz)", "Time 5%", "Dur 90% (s)", "frames"):
        assert m[key] == pytest.approx(raw[key]) if isinstance(m[key], float) else m[key] == raw[key]


def test_a_long_selection_is_read_a_chunk_at_a_time(atlas, monkeypatch):
    spans = []
    read = type(atlas)._read_columns

    def spy(self, lvl, name, j0, j1, channel=None):
        spans.append((j0, j1))
        return read(self, lvl, name, j0, j1, channel)

    monkeypatch.setattr(type(atlas), "_read_columns", spy)
    m = measure(atlas, (sec(1), sec(19)), BAND)
    size = atlas.levels[0].time_chunk
    assert m["frames"] > 10 * size
    assert all(j1 - j0 <= size and j0 // size == (j1 - 1) // size for j0, j1 in spans)


def test_chunking_does_not_change_the_measurements(wavs, atlas, tmp_path):
    other = open_atlas(ingest(open_timeline(wavs), tmp_path / "big.zarr", CONFIG, time_chunk=512, progress=False))
    time = (sec(9.61), sec(18.77))  # the window before it is 0.45 .. 9.61 s: SNR is measured too
    a, b = measure(atlas, time, (4321.0, 5678.9)), measure(other, time, (4321.0, 5678.9))
    for key in KEYS:
        if isinstance(a[key], float):
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-9), key  # NaN is not expected
        else:
            assert a[key] == b[key], key


def hop_after(s: float) -> np.datetime64:
    """A time 1 ms after the centre of the frame centred nearest ``s`` seconds."""
    j = round((s - N_FFT / 2 / SR) / STEP)
    return sec((j * HOP + N_FFT / 2) / SR + 0.001)


@pytest.mark.parametrize(
    ("time", "freq", "kwargs", "match"),
    [
        ((sec(-1), sec(5)), BAND, {}, r"time range .* is outside the recording, which spans 2026-03-01T12:00:00"),
        ((sec(25), sec(31)), BAND, {}, r"time range .* is outside the recording"),
        ((sec(5), sec(4)), BAND, {}, r"time range .* is empty or inverted"),
        ((sec(5), sec(5)), BAND, {}, r"time range .* is empty or inverted"),
        ((sec(5), "noon"), BAND, {}, r"cannot read 'noon' as a time"),
        ((sec(5), sec(6)), (4000, 9000), {}, r"frequency range 4000 \.\. 9000 Hz is outside 0 \.\. 8000 Hz \(Nyquist"),
        ((sec(5), sec(6)), (-10, 100), {}, r"frequency range -10 \.\. 100 Hz is outside 0 \.\. 8000 Hz"),
        ((sec(5), sec(6)), (6000, 4000), {}, r"frequency range 6000 \.\. 4000 Hz is empty or inverted"),
        ((sec(5), sec(6)), "high", {}, r"freq='high' must be a \(low, high\) pair in Hz"),
        ((sec(5), sec(6)), (1, 2, 3), {}, r"freq=\(1, 2, 3\) must be a \(low, high\) pair in Hz"),
        (
            (hop_after(5), hop_after(5) + np.timedelta64(10, "ms")),
            BAND,
            {},
            r"holds no frame centre: frames are centred every 16 ms, so a selection must span at least that",
        ),
        ((sec(20.6), sec(21.4)), BAND, {}, r"falls in a gap of the recording: none of its frames has data"),
        ((sec(5), sec(6)), BAND, {"channel": 1}, r"channel=1 but 'm.zarr' holds one channel"),
        ((sec(5), sec(6)), BAND, {"channel": "left"}, r"channel='left' must be a channel index"),
    ],
)
def test_bad_input(atlas, time, freq, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        measure(atlas, time, freq, **kwargs)


def test_a_span_longer_than_max_span_is_refused(atlas, monkeypatch):
    monkeypatch.setattr(measure_module, "MAX_SPAN", np.timedelta64(10, "s"))
    with pytest.raises(ParameterError, match=r"is longer than the 10 s a selection may measure \(MAX_SPAN\)"):
        measure(atlas, (sec(1), sec(12)), BAND)
    assert measure(atlas, (sec(1), sec(11)), BAND)["frames"] > 0
