"""Science views of a store: mel, log-frequency and CQT arrays, spectrum statistics, diel grids.

Every frequency scale here is a matrix applied to *power*: ``rows = weights @ power``
with ``weights`` of shape ``(rows, n_fft // 2 + 1)`` (:func:`filterbank`). Since the
pyramid stores the mean of power over ``factor**k`` frames and a filterbank is
linear, a mel (or log) spectrogram read from level ``k`` is exactly the mean of the
level-0 mel frames it covers: no level ever needs a second pyramid.

Scales
------
- ``"linear"``: the identity over the STFT bins; the rows are the bins, centred at
  ``k * sample_rate / n_fft``.
- ``"mel"``: librosa's filterbank, ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft,
  n_mels=n_mels, fmin=fmin or 0, fmax=fmax, htk=htk, norm=norm)``, exactly; the row
  centres are ``librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=htk)[1:-1]``.
- ``"log"``: ``n_rows`` rows with edges ``geomspace(fmin, fmax, n_rows + 1)`` (fmin
  defaults to the first non-zero bin centre, ``sample_rate / n_fft``; fmax to Nyquist;
  ``n_rows`` to ``n_mels``, 128). A row is the overlap-weighted *mean* of the power of
  the bins its ``[lo, hi)`` covers: a bin counts by the fraction of its cell (centre
  ± ``df / 2``) inside the row, and a row's weights sum to 1. That is the mean over
  ``[lo, hi)`` of the piecewise-constant spectrum the bins define, so where rows are
  narrower than bins (low frequencies) a row is the bin it lies in (or the mix of the
  two it straddles): neighbouring rows repeat the bin's value, and no detail finer
  than the STFT's is invented.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from data_access.errors import ParameterError

FreqScale = Literal["linear", "log", "mel"]
FREQ_SCALES: tuple[str, ...] = get_args(FreqScale)

#: The number of rows of a log-frequency filterbank when none is given (librosa's default ``n_mels``).
DEFAULT_ROWS = 128


def _freq_window(
    scale: str, sample_rate: float, n_fft: int, fmin: float | None, fmax: float | None
) -> tuple[float, float]:
    """The checked ``(fmin, fmax)`` of a scale, with its defaults filled in."""
    nyquist = sample_rate / 2
    if fmin is None:
        fmin = sample_rate / n_fft if scale == "log" else 0.0
    if fmax is None:
        fmax = nyquist
    fmin, fmax = float(fmin), float(fmax)
    if not (0 <= fmin <= nyquist and 0 <= fmax <= nyquist):
        raise ParameterError(f"fmin={fmin:g} and fmax={fmax:g} must lie in 0..{nyquist:g} Hz (the Nyquist frequency)")
    if fmin >= fmax:
        raise ParameterError(f"fmin={fmin:g} must be below fmax={fmax:g}")
    if scale == "log" and fmin <= 0:
        raise ParameterError(f"fmin={fmin:g} must be above 0 Hz on a log-frequency scale")
    return fmin, fmax


def _check_scale(scale: str) -> None:
    if scale not in FREQ_SCALES:
        raise ParameterError(f"freq_scale={scale!r} is not one of {list(FREQ_SCALES)}")


def _check_rows(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{name}={value!r} must be a positive integer")
    return int(value)


def _log_edges(fmin: float, fmax: float, n_rows: int) -> np.ndarray:
    return np.geomspace(fmin, fmax, n_rows + 1)


def _mel_points(n: int, fmin: float, fmax: float, htk: bool) -> np.ndarray:
    import librosa

    return librosa.mel_frequencies(n, fmin=fmin, fmax=fmax, htk=htk)


def filterbank(
    scale: FreqScale,
    *,
    sample_rate: float,
    n_fft: int,
    n_rows: int | None = None,
    n_mels: int = 128,
    fmin: float | None = None,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | float | None = "slaney",
) -> tuple[np.ndarray, np.ndarray]:
    """The matrix that turns a power spectrum into the rows of a frequency scale.

    Parameters
    ----------
    scale : {"linear", "log", "mel"}
    sample_rate : float
        The store's sample rate in Hz.
    n_fft : int
        The store's FFT length; the spectra have ``n_fft // 2 + 1`` bins.
    n_rows : int, optional
        The number of log-frequency rows (default ``n_mels``, 128). Ignored by
        ``"mel"`` (``n_mels`` rows) and ``"linear"`` (one row a bin).
    n_mels : int, default: 128
    fmin, fmax : float, optional
        The frequency window in Hz, within ``0..sample_rate / 2``. Defaults:
        mel 0 and Nyquist; log the first non-zero bin centre and Nyquist.
        ``"linear"`` ignores them (crop with the view's ``freq``).
    htk, norm
        Passed to ``librosa.filters.mel``.

    Returns
    -------
    weights : ndarray, shape (rows, n_fft // 2 + 1), float64
        ``rows = weights @ power``.
    centres : ndarray, shape (rows,), float64
        Each row's centre frequency in Hz: the bin centres (linear), the
        geometric centres ``sqrt(lo * hi)`` of the rows (log), or
        ``librosa.mel_frequencies(n_mels + 2, fmin, fmax, htk)[1:-1]`` (mel).

    Raises
    ------
    ParameterError
        An unknown scale, a non-positive ``n_mels``/``n_rows``, or a window
        outside ``0..Nyquist`` or empty (``fmin >= fmax``; log needs ``fmin > 0``).
    """
    _check_scale(scale)
    n_bins = n_fft // 2 + 1
    df = sample_rate / n_fft
    if scale == "linear":
        return np.eye(n_bins), np.arange(n_bins) * df
    fmin, fmax = _freq_window(scale, sample_rate, n_fft, fmin, fmax)
    if scale == "mel":
        import librosa

        n_mels = _check_rows("n_mels", n_mels)
        weights = librosa.filters.mel(
            sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm, dtype=np.float64
        )
        return weights, _mel_points(n_mels + 2, fmin, fmax, htk)[1:-1]
    n_rows = _check_rows("n_rows", n_mels if n_rows is None else n_rows)
    edges = _log_edges(fmin, fmax, n_rows)
    lo, hi = edges[:-1, None], edges[1:, None]
    cells = np.arange(n_bins) * df
    # The overlap of each row [lo, hi) with each bin's cell [centre - df/2, centre + df/2).
    overlap = np.clip(np.minimum(hi, cells + df / 2) - np.maximum(lo, cells - df / 2), 0, None)
    # The cells tile [-df/2, nyquist + df/2], so every row is covered and this is the mean.
    weights = overlap / (hi - lo)
    return weights, np.sqrt(edges[:-1] * edges[1:])


def row_edges(
    scale: FreqScale,
    *,
    sample_rate: float,
    n_fft: int,
    n_rows: int | None = None,
    n_mels: int = 128,
    fmin: float | None = None,
    fmax: float | None = None,
    htk: bool = False,
) -> np.ndarray:
    """The boundaries in Hz between the rows of :func:`filterbank`, for drawing non-uniform rows.

    Returns
    -------
    edges : ndarray, shape (rows + 1,)
        Linear: the bins' cell edges ``(k - 1/2) * df``. Log: the rows' own
        ``[lo, hi)`` edges. Mel: the points halfway (on the mel scale) between
        consecutive centres, and half a step beyond the outer ones (a mel row's
        triangle is wider than this: these only tile the axis).
    """
    _check_scale(scale)
    n_bins = n_fft // 2 + 1
    df = sample_rate / n_fft
    if scale == "linear":
        return (np.arange(n_bins + 1) - 0.5) * df
    fmin, fmax = _freq_window(scale, sample_rate, n_fft, fmin, fmax)
    if scale == "log":
        return _log_edges(fmin, fmax, _check_rows("n_rows", n_mels if n_rows is None else n_rows))
    import librosa

    n_mels = _check_rows("n_mels", n_mels)
    mels = np.linspace(librosa.hz_to_mel(fmin, htk=htk), librosa.hz_to_mel(fmax, htk=htk), n_mels + 2)
    step = mels[1] - mels[0]
    return librosa.mel_to_hz(mels[1:] - step / 2, htk=htk)
