"""The exact STFT: librosa agreement, seamless blocks, known signals."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from conftest import SR, chirp, noise, tone

from data_access import ParameterError, StftConfig, open_timeline, power_spectrogram


def librosa_power(y, config: StftConfig) -> np.ndarray:
    spec = librosa.stft(
        y,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window=config.window,
        center=False,
    )
    return np.abs(spec) ** 2


@pytest.mark.parametrize(
    "config",
    [
        StftConfig(n_fft=512, hop_length=256, window="hann"),
        StftConfig(n_fft=512, hop_length=128, window="hamming"),
        StftConfig(n_fft=1024, hop_length=1000, window="blackman"),
        StftConfig(n_fft=512, hop_length=100, win_length=300, window="hann"),
        StftConfig(n_fft=256, hop_length=256, window="boxcar"),
    ],
    ids=lambda c: f"{c.window}-{c.n_fft}-{c.hop_length}-{c.win_length}",
)
def test_matches_librosa(config, report):
    y = noise(3.0) + tone(1234.5, 3.0, amp=0.3)
    ours = power_spectrogram(y, config)
    ref = librosa_power(y, config)
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape
    # float32 precision, relative to each frame's strongest bin
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6 * float(ref.max()))
    db_diff = np.abs(10 * np.log10(ours / ref)).max()
    report(f"max |dB difference| vs librosa.stft, {config.window} n_fft={config.n_fft}", f"{db_diff:.2e} dB")
    assert db_diff < 1e-3


@pytest.mark.parametrize("block", [7, 64, 10_000])
def test_blocks_are_bit_for_bit_the_whole_transform(write_audio, block):
    """A recording cut into blocks of frames, each read and transformed alone, has no seams."""
    config = StftConfig(n_fft=256, hop_length=96)
    path = write_audio("x.wav", noise(30.0) + chirp(100, 3900, 30.0))
    timeline = open_timeline(path, start_time="2026-01-01")
    whole = power_spectrogram(timeline.read(0, timeline.n_samples), config)
    n_frames = config.n_frames(timeline.n_samples)
    parts = [
        power_spectrogram(timeline.read(*config.frame_span(i, min(i + block, n_frames))), config)
        for i in range(0, n_frames, block)
    ]
    assert np.array_equal(np.concatenate(parts, axis=1), whole)


@pytest.mark.parametrize("freq", [1000.0, 1015.625, 2222.0])
def test_tone_lands_in_its_bin(freq):
    config = StftConfig(n_fft=512, hop_length=256)
    power = power_spectrogram(tone(freq, 1.0), config)
    expected_bin = round(freq / (SR / config.n_fft))
    assert (power.argmax(axis=0) == expected_bin).all()


def test_chirp_peak_follows_its_sweep():
    config = StftConfig(n_fft=512, hop_length=128)
    f0, f1, seconds = 200.0, 3800.0, 4.0
    power = power_spectrogram(chirp(f0, f1, seconds), config)
    centres = (np.arange(power.shape[1]) * config.hop_length + config.n_fft / 2) / SR
    expected = f0 + (f1 - f0) * centres / seconds
    peak = config.frequencies(SR)[power.argmax(axis=0)]
    assert np.abs(peak - expected).max() <= SR / config.n_fft


def test_parseval_per_frame():
    """One-sided power summed over bins equals n_fft times the windowed frame's energy."""
    config = StftConfig(n_fft=512, hop_length=256, window="hamming")
    y = noise(1.0, amp=0.3)
    power = power_spectrogram(y, config).astype(np.float64)
    one_sided = power[0] + 2 * power[1:-1].sum(axis=0) + power[-1]
    frames = np.lib.stride_tricks.sliding_window_view(y.astype(np.float64), config.n_fft)[:: config.hop_length]
    energy = config.n_fft * ((frames * config.window_array) ** 2).sum(axis=1)
    np.testing.assert_allclose(one_sided, energy, rtol=1e-5)


def test_frames_touching_a_nan_are_nan_and_only_those():
    config = StftConfig(n_fft=256, hop_length=100)
    y = noise(1.0)
    y[1000] = np.nan
    power = power_spectrogram(y, config)
    starts = np.arange(power.shape[1]) * config.hop_length
    touching = (starts <= 1000) & (1000 < starts + config.n_fft)
    assert np.isnan(power[:, touching]).all()
    assert np.isfinite(power[:, ~touching]).all()


def test_too_short_gives_no_frames():
    assert power_spectrogram(np.zeros(100, np.float32), StftConfig(n_fft=256)).shape == (129, 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_fft": 256, "hop_length": 300}, r"hop_length=300 must be between 1 and n_fft=256"),
        ({"n_fft": 256, "hop_length": 0}, r"hop_length=0"),
        ({"n_fft": 256, "win_length": 512}, r"win_length=512 must be between 1 and n_fft=256"),
        ({"n_fft": 1}, r"n_fft=1 must be an integer >= 2"),
        ({"n_fft": 256.0}, r"n_fft=256.0 must be an integer"),
        ({"window": "no-such-window"}, r"window='no-such-window' is not a window"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        StftConfig(**kwargs)
