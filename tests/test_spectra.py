"""Science views (issue 19): filterbanks against librosa and a direct integration, views, statistics, diel grids."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from data_access import ParameterError
from data_access.spectra import filterbank, row_edges

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
