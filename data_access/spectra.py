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

Reads (each behind a thin :class:`~data_access.query.Atlas` method)
--------------------------------------------------------------------
- :func:`scale_rows`: a view's columns on a mel or log scale (``Atlas.view(freq_scale=)``).
- :func:`mfcc`: librosa's MFCCs of the level-0 frames of a span (:data:`MAX_MFCC_FRAMES`).
- :func:`cqt`: ``abs(librosa.cqt)`` of the recorded samples of a span (:data:`MAX_CQT_SECONDS`).
- :func:`spectrum`: one frame's spectrum, or the mean over a span, in dB.
- :func:`spectrum_stats`: per frequency, the mean, median and percentiles of the PSD over
  averaging periods (the columns of one level: :data:`MAX_STATS_COLUMNS` at most), and the
  spectral probability density; :func:`write_stats` keeps it as CF NetCDF.
- :func:`band_stats`: L5, L50, L95, mean, peak and SEL of bands over a span.
- :func:`diel`: a band's level as a date x time-of-day grid; :func:`sun_times` (astral).

Levels, band power and units are those of :meth:`Atlas.view` and
:meth:`Atlas.band_energy`: dB of power re full scale, or on a calibrated store the
PSD in dB re 1 µPa²/Hz and band levels in dB re 1 µPa. Every read is chunk by
chunk through the process-wide chunk cache, its cost bounded by the columns read.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from data_access.errors import ParameterError, SourceNotFoundError
from data_access.query import FreqScale
from data_access.schema import FREQ_ATTRS, check_location
from data_access.store import check_output
from data_access.times import samples_to_timedelta, seconds_to_ns, to_datetime64

if TYPE_CHECKING:
    from data_access.query import Atlas, Level

_SECOND = np.timedelta64(1_000_000_000, "ns")

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


def check_freq_scale(scale: str) -> None:
    """Refuse a frequency scale that is not one of :data:`FREQ_SCALES`, naming them."""
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
    check_freq_scale(scale)
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
    check_freq_scale(scale)
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


# ------------------------------------------------------------------ reads
@functools.lru_cache(maxsize=64)
def _bank(
    scale: str,
    sample_rate: float,
    n_fft: int,
    n_rows: int | None,
    n_mels: int,
    fmin: float | None,
    fmax: float | None,
    htk: bool,
    norm: str | float | None,
) -> tuple[sparse.csr_array, int, int, np.ndarray, np.ndarray]:
    """A filterbank as a float32 sparse matrix over the bins it uses ``b0..b1-1``, with its centres and edges.

    Sparse: a log or mel row touches a few bins, so ``rows @ power`` costs about
    ``(n_bins + rows) * columns`` rather than ``rows * n_bins * columns``.
    """
    options = {"n_rows": n_rows, "n_mels": n_mels, "fmin": fmin, "fmax": fmax, "htk": htk}
    with warnings.catch_warnings():
        # A mel window narrower than its filters leaves some between two bins: empty rows, NaN in dB (documented).
        warnings.filterwarnings("ignore", "Empty filters detected", UserWarning)
        weights, centres = filterbank(scale, sample_rate=sample_rate, n_fft=n_fft, norm=norm, **options)
    edges = row_edges(scale, sample_rate=sample_rate, n_fft=n_fft, **options)
    used = np.flatnonzero(weights.any(axis=0))
    b0, b1 = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 1)
    matrix = sparse.csr_array(weights[:, b0:b1].astype(np.float32))
    for array in (centres, edges):
        array.setflags(write=False)  # shared by every caller through the cache
    return matrix, b0, b1, centres, edges


def scale_rows(
    atlas: Atlas,
    lvl: Level,
    name: str,
    j0: int,
    j1: int,
    channel: int | None,
    *,
    freq_scale: FreqScale,
    freq: tuple[float, float],
    height: int,
    n_mels: int = 128,
    fmin: float | None = None,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | float | None = "slaney",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns ``j0..j1-1`` of array ``name`` of a level on a mel or log scale: what :meth:`Atlas.view` draws.

    The filterbank is applied to power (times the PSD scale of a calibrated
    store, so a row is a mean of PSD), never to dB. ``fmin``/``fmax`` default to
    the ends of ``freq`` (log: the low end raised to the first non-zero bin).

    Returns
    -------
    rows : ndarray, float32, shape (rows, j1 - j0)
        Power (not dB); ``height`` rows for log, ``n_mels`` for mel.
    centres, edges : ndarray
        The rows' centres, shape (rows,), and boundaries, shape (rows + 1,), in Hz.
    """
    check_freq_scale(freq_scale)
    df = atlas.df
    fmin = freq[0] if fmin is None else fmin
    fmax = freq[1] if fmax is None else fmax
    if freq_scale == "log" and fmin == 0:
        fmin = df
    options = (freq_scale, atlas.sample_rate, atlas.stft.n_fft, height, n_mels, fmin, fmax, htk, norm)
    matrix, b0, b1, centres, edges = _bank(*options)
    power = atlas._read_columns(lvl, name, j0, j1, channel)[b0:b1]
    if atlas._psd_scale is not None:
        power = power * atlas._psd_scale[b0:b1, None]
    return np.ascontiguousarray(matrix @ power, dtype=np.float32), centres, edges


def to_db(power: np.ndarray) -> np.ndarray:
    """``10 log10(power)`` in float64, NaN where power is 0 (digital silence has no level) or NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10 * np.log10(np.asarray(power, dtype=np.float64))
    db[np.isneginf(db)] = np.nan
    return db


def _psd(atlas: Atlas, power: np.ndarray) -> np.ndarray:
    """Stored power per bin as a view reports it: times the PSD scale on a calibrated store (axis 0 is freq)."""
    if atlas._psd_scale is None:
        return power
    return power * atlas._psd_scale.reshape((-1,) + (1,) * (power.ndim - 1)).astype(np.float64)


def _centred_in(atlas: Atlas, lvl: Level, t0: np.datetime64, t1: np.datetime64) -> tuple[int, int]:
    """Columns of a level whose centres lie in ``[t0, t1)`` (possibly none: ``j0 == j1``).

    The last column may hold fewer frames than the others: its centre is its
    frames' (:func:`_centres`), which the regular grid would put up to half a
    column later, past the recording's end.
    """
    a = (t0 - lvl.first) / _SECOND / lvl.step
    b = (t1 - lvl.first) / _SECOND / lvl.step
    j0 = min(max(int(math.ceil(a - 1e-9)), 0), lvl.n_columns)
    j1 = min(max(int(math.ceil(b - 1e-9)), j0), lvl.n_columns)
    last = lvl.n_columns - 1
    if j1 >= last and j0 <= last:
        inside = t0 <= _centres(atlas, lvl, last, lvl.n_columns)[0] < t1
        j1 = last + 1 if inside else min(j1, last)
    return j0, j1


def _centres(atlas: Atlas, lvl: Level, a: int, b: int) -> np.ndarray:
    """Centre times of columns ``a..b-1`` of a level, the last column's at the centre of the frames it holds."""
    centres = lvl.column_times(a, b)
    if b == lvl.n_columns and b > a:
        frame0 = atlas.levels[0]
        mid = ((lvl.n_columns - 1) * lvl.frames_per_column + frame0.n_columns - 1) / 2
        centres[-1] = frame0.first + seconds_to_ns(mid * frame0.step)
    return centres


def _chunks(lvl: Level, j0: int, j1: int) -> Iterator[tuple[int, int]]:
    """``[a, b)`` ranges of columns ``j0..j1-1``, one stored time chunk each."""
    size = max(lvl.time_chunk, 1)
    a = j0
    while a < j1:
        b = min((a // size + 1) * size, j1)
        yield a, b
        a = b


def _frame_span(atlas: Atlas, time, limit: int, what: str) -> tuple[np.datetime64, np.datetime64, int, int]:
    t0, t1 = atlas._time_window(time)
    j0, j1 = _centred_in(atlas, atlas.levels[0], t0, t1)
    if j1 <= j0:
        raise ParameterError(f"time range {t0} .. {t1} holds no frame centre: there is no {what} in it")
    if j1 - j0 > limit:
        raise ParameterError(
            f"time range {t0} .. {t1} holds {j1 - j0} frames, more than the {limit} {what} reads at once "
            f"(MAX_{what.upper()}_FRAMES): choose a shorter span"
        )
    return t0, t1, j0, j1


#: The most level-0 frames :func:`mfcc` reads (at 64 kHz and hop 2048, 53 minutes).
MAX_MFCC_FRAMES = 100_000


def mfcc(
    atlas: Atlas,
    *,
    time,
    n_mfcc: int = 20,
    n_mels: int = 128,
    channel: int | None = None,
    fmin: float | None = None,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | float | None = "slaney",
    dct_type: int = 2,
    lifter: float = 0,
) -> xr.DataArray:
    """Mel-frequency cepstral coefficients of the level-0 frames centred in a span, as librosa computes them.

    The mel spectrogram is the store's filterbank (:func:`filterbank`) applied to
    the stored level-0 power ``|STFT|**2`` (never calibrated: these are model
    inputs, as librosa makes them from the samples), then
    ``librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=n_mfcc, dct_type=dct_type, lifter=lifter)``
    over the frames with data (``power_to_db``'s ``top_db`` of 80 is relative to
    their loudest mel value). Frames in a gap are NaN. Read a chunk at a time:
    memory holds ``n_mels`` values a frame.

    Returns
    -------
    DataArray, float32, dims ("mfcc", "time"), shape (n_mfcc, frames)
        ``time`` the frames' centre times.

    Raises
    ------
    ParameterError
        A bad span (or one with more than :data:`MAX_MFCC_FRAMES` frames), a
        bad mel option, or ``n_mfcc`` not a positive integer.
    """
    import librosa

    index = atlas._channel_index(channel)
    n_mfcc = _check_rows("n_mfcc", n_mfcc)
    matrix, b0, b1, _, _ = _bank("mel", atlas.sample_rate, atlas.stft.n_fft, None, n_mels, fmin, fmax, htk, norm)
    t0, t1, j0, j1 = _frame_span(atlas, time, MAX_MFCC_FRAMES, "mfcc")
    level = atlas.levels[0]
    mel = np.empty((matrix.shape[0], j1 - j0), dtype=np.float32)
    for a, b in _chunks(level, j0, j1):
        mel[:, a - j0 : b - j0] = matrix @ atlas._read_columns(level, "power", a, b, index)[b0:b1]
    valid = np.isfinite(mel).all(axis=0)
    db = np.full(mel.shape, np.nan, dtype=np.float32)
    if valid.any():
        db[:, valid] = librosa.power_to_db(mel[:, valid])
    coefficients = librosa.feature.mfcc(S=db, n_mfcc=n_mfcc, dct_type=dct_type, norm="ortho", lifter=lifter)
    return xr.DataArray(
        coefficients.astype(np.float32),
        dims=("mfcc", "time"),
        coords={"mfcc": np.arange(n_mfcc), "time": level.column_times(j0, j1)},
        name="mfcc",
        attrs={
            "long_name": "mel-frequency cepstral coefficients",
            "units": "1",
            "n_mels": int(matrix.shape[0]),
            "htk": int(htk),
            "norm": str(norm),
            "dct_type": dct_type,
            "lifter": lifter,
            "source": "librosa.feature.mfcc(S=librosa.power_to_db(mel)) of the stored level-0 power",
            **_channel_attr(atlas, index),
        },
    )


def _channel_attr(atlas: Atlas, index: int | None) -> dict[str, str]:
    return {} if index is None else {"channel": atlas.channels[index]}


#: The longest span :func:`cqt` transforms, in seconds.
MAX_CQT_SECONDS = 120.0


def cqt(
    atlas: Atlas,
    *,
    time,
    fmin: float | None = None,
    n_bins: int = 84,
    bins_per_octave: int = 12,
    hop_length: int = 512,
    channel: int | None = None,
) -> xr.DataArray:
    """The constant-Q transform's magnitude of a span, from the recorded samples: ``abs(librosa.cqt(...))``.

    The samples are the store's recordings (:meth:`Atlas.audio` without
    reconstruction: a phase-estimated rebuild has no CQT worth showing), samples
    in a gap read as zeros. ``librosa.cqt(y, sr=sample_rate, hop_length=hop_length,
    fmin=fmin, n_bins=n_bins, bins_per_octave=bins_per_octave)`` with librosa's
    other defaults (frames centred: frame ``t`` at sample ``t * hop_length``).

    Parameters
    ----------
    time : (start, end)
        At most :data:`MAX_CQT_SECONDS`.
    fmin : float, optional
        The lowest bin's frequency; default librosa's, C1 (32.70 Hz).
    n_bins, bins_per_octave : int
        The highest bin, ``fmin * 2**((n_bins - 1) / bins_per_octave)``, must be
        below Nyquist.
    hop_length : int, default: 512
        Samples between frames; librosa needs it divisible by ``2**(octaves - 1)``.

    Returns
    -------
    DataArray, float32, dims ("freq", "time"), shape (n_bins, frames)
        Magnitude (not power), in the samples' units; ``freq`` the bins'
        centre frequencies (``librosa.cqt_frequencies``), ``time`` the frames'.

    Raises
    ------
    ParameterError
        A bad span, longer than :data:`MAX_CQT_SECONDS`, or bins beyond Nyquist.
    SourceNotFoundError
        The recordings cannot be read: "the CQT needs the recordings".
    """
    import librosa

    fmin = float(librosa.note_to_hz("C1")) if fmin is None else float(fmin)
    n_bins, bins_per_octave = _check_rows("n_bins", n_bins), _check_rows("bins_per_octave", bins_per_octave)
    hop_length = _check_rows("hop_length", hop_length)
    top = fmin * 2 ** ((n_bins - 1) / bins_per_octave)
    nyquist = atlas.sample_rate / 2
    if not 0 < fmin or top >= nyquist:
        raise ParameterError(
            f"fmin={fmin:g} Hz, n_bins={n_bins} and bins_per_octave={bins_per_octave} put the top bin at "
            f"{top:g} Hz: the bins must lie in 0 .. {nyquist:g} Hz (Nyquist)"
        )
    t0, t1 = atlas._time_window(time)
    if (t1 - t0) / _SECOND > MAX_CQT_SECONDS:
        raise ParameterError(
            f"time range {t0} .. {t1} is {(t1 - t0) / _SECOND:g} s, more than the {MAX_CQT_SECONDS:g} s "
            "a CQT is computed over (MAX_CQT_SECONDS): choose a shorter span"
        )
    try:
        clip = atlas.audio(time=(t0, t1), channel=channel, max_seconds=MAX_CQT_SECONDS, reconstruct=False)
    except SourceNotFoundError as err:
        raise SourceNotFoundError(f"the CQT needs the recordings: {err}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # librosa's "n_fft=... is too large for input signal"
            magnitude = np.abs(
                librosa.cqt(
                    clip.samples,
                    sr=clip.sample_rate,
                    hop_length=hop_length,
                    fmin=fmin,
                    n_bins=n_bins,
                    bins_per_octave=bins_per_octave,
                )
            )
    except librosa.util.exceptions.ParameterError as err:
        raise ParameterError(f"librosa.cqt refused the options: {err}") from None
    except UserWarning as err:
        q_seconds = 1 / (2 ** (1 / bins_per_octave) - 1) / fmin  # the lowest bin's filter
        raise ParameterError(
            f"{clip.duration:g} s is too short for a CQT from fmin={fmin:g} Hz (librosa: {err}): "
            f"choose a span of several times {q_seconds:.2g} s, or a higher fmin"
        ) from None
    times = clip.start + samples_to_timedelta(np.arange(magnitude.shape[1]) * hop_length, clip.sample_rate)
    index = atlas._channel_index(channel)
    return xr.DataArray(
        magnitude.astype(np.float32),
        dims=("freq", "time"),
        coords={"freq": librosa.cqt_frequencies(n_bins, fmin=fmin, bins_per_octave=bins_per_octave), "time": times},
        name="cqt",
        attrs={
            "long_name": "constant-Q transform magnitude",
            "units": "1",
            "bins_per_octave": bins_per_octave,
            "hop_length": hop_length,
            "note": clip.note,
            **_channel_attr(atlas, index),
        },
    )


#: A mean spectrum over a span reads the coarsest level with at least this many columns in it.
SPECTRUM_COLUMNS = 256


def spectrum(atlas: Atlas, *, time, channel: int | None = None) -> xr.DataArray:
    """The spectrum at an instant (the level-0 frame containing it) or the mean spectrum over a span, in dB.

    Parameters
    ----------
    time : time or (start, end)
        One instant: the frame whose cell (centre ± hop / 2) holds it. A pair:
        the mean of power over the span's valid frames, read from the coarsest
        level with at least :data:`SPECTRUM_COLUMNS` columns centred in it (at
        most ``4 * SPECTRUM_COLUMNS``; level 0 for a short span), each column
        weighted by its frames with data (gaps left out); the span's edges are
        exact to half a column.

    Returns
    -------
    DataArray, float32, dims ("freq",)
        dB as :meth:`Atlas.view` reports it: of power per bin, or power spectral
        density re 1 µPa²/Hz on a calibrated store. NaN where there is no data.
        ``attrs``: ``level``, ``seconds_per_column``, ``frames`` (valid level-0
        frames averaged), ``time_start``, ``time_end``, ``units``.
    """
    index = atlas._channel_index(channel)
    if isinstance(time, (tuple, list)):
        t0, t1 = atlas._time_window(time)
        lvl = atlas.levels[0]
        for candidate in atlas.levels:
            a, b = _centred_in(atlas, candidate, t0, t1)
            if b - a >= SPECTRUM_COLUMNS:
                lvl = candidate
        j0, j1 = _centred_in(atlas, lvl, t0, t1)
        if j1 <= j0:  # shorter than a frame step: the frame that holds its middle
            j0 = _containing(lvl, t0 + (t1 - t0) // 2)
            j1 = j0 + 1
    else:
        t = to_datetime64(time)
        start, end = atlas.time_range
        if not start <= t <= end:
            raise ParameterError(f"time {t} is outside the recording, which spans {start} .. {end}")
        lvl = atlas.levels[0]
        j0 = _containing(lvl, t)
        j1 = j0 + 1
        t0 = t1 = t
    sums, frames = _weighted_sum(atlas, lvl, j0, j1, index)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / frames
    return xr.DataArray(
        to_db(_psd(atlas, mean)).astype(np.float32),
        dims="freq",
        coords={"freq": np.arange(atlas.stft.n_freq) * atlas.df},
        name="spectrum",
        attrs={
            "long_name": ("mean " if j1 - j0 > 1 else "") + _quantity(atlas),
            "units": atlas.units,
            "level": lvl.level,
            "seconds_per_column": lvl.step,
            "frames": int(frames),
            "time_start": str(t0),
            "time_end": str(t1),
            **_channel_attr(atlas, index),
        },
    )


def _quantity(atlas: Atlas) -> str:
    return "power spectral density" if atlas.calibration else "power spectral level"


def _containing(lvl: Level, t: np.datetime64) -> int:
    """The column of a level whose cell (centre ± step / 2) holds ``t``."""
    return min(max(int(math.floor((t - lvl.first) / _SECOND / lvl.step + 0.5)), 0), lvl.n_columns - 1)


def _weighted_sum(atlas: Atlas, lvl: Level, j0: int, j1: int, index: int | None) -> tuple[np.ndarray, float]:
    """Sum over columns ``j0..j1-1`` of power times frames with data, per bin, and the frames: chunk by chunk."""
    counts = atlas._read_counts(lvl, j0, j1, index).astype(np.float64)
    sums = np.zeros(atlas.stft.n_freq)
    for a, b in _chunks(lvl, j0, j1):
        power = atlas._read_columns(lvl, "power", a, b, index).astype(np.float64)
        weight = counts[a - j0 : b - j0]
        sums += np.where(weight > 0, power, 0.0) @ weight
    return sums, float(counts.sum())


def _seconds(name: str, value) -> float:
    """A duration given as seconds, a timedelta, or a pandas string ("60s", "1min"), in seconds (> 0)."""
    if isinstance(value, str):
        try:
            seconds = pd.Timedelta(value).total_seconds()
        except ValueError:
            raise ParameterError(f"{name}={value!r} is not a duration (like '60s', '10min', '1h')") from None
    elif isinstance(value, (dt.timedelta, np.timedelta64)):
        seconds = pd.Timedelta(value).total_seconds()
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ParameterError(f"{name}={value!r} must be seconds, a timedelta or a string like '60s'")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ParameterError(f"{name}={value!r} must be a positive duration")
    return seconds


#: The most columns :func:`spectrum_stats` reads: a longer span uses a coarser level (and says so).
MAX_STATS_COLUMNS = 10_000
#: The percentiles :func:`spectrum_stats` gives by default.
PERCENTILES = (1, 5, 10, 50, 90, 95, 99)


def spectrum_stats(
    atlas: Atlas,
    *,
    time=None,
    period="60s",
    percentiles=PERCENTILES,
    channel: int | None = None,
    db_bins=None,
    progress: bool = False,
) -> xr.Dataset:
    """Long-term spectrum statistics of a span: mean, median and percentiles of the PSD, and its SPD.

    The averaging periods are the columns of one pyramid level: the one whose
    column length is nearest ``period`` (on a log scale), or, when the span holds
    more than :data:`MAX_STATS_COLUMNS` of its columns, the finest coarser level
    that holds no more (``attrs["note"]`` says so). A period is the mean of power
    over its column's frames (the pyramid's rule); the columns centred in the span
    with data are the periods (a column in a gap is left out). Read a chunk at a
    time; memory holds the periods' spectra, at most ``MAX_STATS_COLUMNS x n_freq``.

    Parameters
    ----------
    time : (start, end), optional
        Default the whole recording.
    period : str, timedelta or float (seconds), default: "60s"
        At least a frame step (``hop_length / sample_rate``).
    percentiles : sequence of float, default: (1, 5, 10, 50, 90, 95, 99)
    db_bins : float or sequence of float, optional
        The SPD's dB bins: a width (default 1 dB) over the levels' range, or the edges.

    Returns
    -------
    Dataset, over ``freq`` (the bins, Hz)
        - ``mean`` (freq): dB of the mean power over the span's valid frames;
        - ``median`` (freq): the 50th percentile of the periods' levels;
        - ``percentiles`` (percentile, freq): of the periods' levels in dB
          (numpy's linear method, NaN levels of digital silence left out; the
          coordinate ``percentile`` holds the percentages);
        - ``spd`` (level, freq): the spectral probability density (Merchant et
          al. 2015): per frequency, the share of the periods whose level lies in
          each dB bin (``level`` their centres); each column sums to 1.

        All in dB as :meth:`Atlas.view` reports them (dB re 1 µPa²/Hz on a
        calibrated store). ``attrs``: ``pyramid_level``, ``period_seconds`` (the
        level's column length), ``period_requested_seconds``, ``n_periods``,
        ``units``, ``time_start``, ``time_end``, ``note``. A plot draws it on a
        log-frequency axis from the first non-zero bin.

    Raises
    ------
    ParameterError
        A bad span or period (shorter than a frame step), or no periods with data.
    """
    index = atlas._channel_index(channel)
    t0, t1 = atlas._time_window(time)
    seconds = _seconds("period", period)
    finest = atlas.levels[0].step
    if seconds < finest * (1 - 1e-9):
        raise ParameterError(
            f"period={period!r} ({seconds:g} s) is shorter than a frame step ({finest:g} s): "
            f"the shortest period is one frame, {finest:g} s"
        )
    q = np.asarray(percentiles, dtype=np.float64).reshape(-1)
    if not (len(q) and np.all((q >= 0) & (q <= 100))):
        raise ParameterError(f"percentiles={percentiles!r} must be numbers from 0 to 100")
    _db_edges(db_bins, 0.0, 1.0)  # checked before anything is read
    nearest = min(atlas.levels, key=lambda lvl: abs(math.log(lvl.step / seconds)))
    lvl, note = nearest, ""
    for candidate in atlas.levels[nearest.level :]:
        lvl = candidate
        j0, j1 = _centred_in(atlas, lvl, t0, t1)
        if j1 - j0 <= MAX_STATS_COLUMNS:
            break
    if lvl is not nearest:
        note = (
            f"the span holds more than {MAX_STATS_COLUMNS} columns of level {nearest.level} ({nearest.step:g} s): "
            f"level {lvl.level} ({lvl.step:g} s periods) was read instead (MAX_STATS_COLUMNS)"
        )
    j0, j1 = _centred_in(atlas, lvl, t0, t1)
    if j1 - j0 > MAX_STATS_COLUMNS:
        raise ParameterError(f"the span holds {j1 - j0} columns even at the coarsest level, over MAX_STATS_COLUMNS")
    counts = atlas._read_counts(lvl, j0, j1, index) if j1 > j0 else np.zeros(0)
    valid = np.flatnonzero(counts > 0)
    if not len(valid):
        raise ParameterError(
            f"time range {t0} .. {t1} holds no {lvl.step:g} s period with data (level {lvl.level}): "
            "choose a longer span or a shorter period"
        )
    n_freq = atlas.stft.n_freq
    levels = np.empty((n_freq, len(valid)), dtype=np.float32)
    sums = np.zeros(n_freq)
    done = 0
    ranges = list(_chunks(lvl, j0, j1))
    for a, b in _progress(ranges, progress, "spectrum statistics"):
        keep = valid[(valid >= a - j0) & (valid < b - j0)]
        if not len(keep):
            continue
        # float32 throughout (a chunk's sum too): 1e-6 dB, and half the memory traffic of float64.
        power = atlas._read_columns(lvl, "power", a, b, index)[:, keep - (a - j0)]
        if atlas._psd_scale is not None:
            power = power * atlas._psd_scale[:, None]
        sums += power @ counts[keep].astype(np.float32)
        with np.errstate(divide="ignore"):
            np.log10(power, out=levels[:, done : done + len(keep)])
        done += len(keep)
    levels *= 10
    levels[np.isneginf(levels)] = np.nan  # digital silence has no level
    mean = to_db(sums / counts[valid].sum())
    # Sorted once (numpy's SIMD sort: several times faster than a selection per percentile), NaN last.
    levels.sort(axis=1)
    finite = np.count_nonzero(np.isfinite(levels), axis=1)
    both = _sorted_percentiles(levels, finite, np.append(q, 50.0))
    pct, median = both[:-1], both[-1]
    top = np.take_along_axis(levels, np.maximum(finite - 1, 0)[:, None], axis=1)[finite > 0]
    edges = _db_edges(db_bins, float(np.nanmin(levels[:, 0])) if len(top) else 0.0, float(top.max(initial=1.0)))
    spd = _sorted_histogram(levels, finite, edges)
    units = atlas.units
    freq = xr.DataArray(np.arange(n_freq) * atlas.df, dims="freq", attrs=FREQ_ATTRS)
    level_coord = xr.DataArray(
        (edges[:-1] + edges[1:]) / 2,
        dims="level",
        attrs={"long_name": "centre of the level bin", "units": units, "bin_edges": edges},
    )
    quantity = _quantity(atlas)
    out = xr.Dataset(
        {
            "mean": ("freq", mean.astype(np.float32), {"long_name": f"mean {quantity}", "units": units}),
            "median": ("freq", median.astype(np.float32), {"long_name": f"median {quantity}", "units": units}),
            "percentiles": (
                ("percentile", "freq"),
                pct.astype(np.float32),
                {"long_name": f"percentiles of {quantity}", "units": units},
            ),
            "spd": (
                ("level", "freq"),
                spd.astype(np.float32),
                {
                    "long_name": "spectral probability density: share of periods per level bin",
                    "units": "1",
                    "description": "per frequency, the fraction of the periods whose level lies in each bin; "
                    "each column sums to 1 (Merchant et al. 2015)",
                },
            ),
        },
        coords={
            "freq": freq,
            "percentile": ("percentile", q, {"long_name": "percentile", "units": "percent"}),
            "level": level_coord,
        },
    )
    out.attrs.update(
        {
            "title": "Spectral Atlas long-term spectrum statistics",
            "pyramid_level": lvl.level,
            "period_seconds": lvl.step,
            "period_requested_seconds": seconds,
            "n_periods": int(len(valid)),
            "units": units,
            "time_start": str(t0),
            "time_end": str(t1),
            "note": note or f"periods are the columns of level {lvl.level}, the nearest to {seconds:g} s",
            **_channel_attr(atlas, index),
        }
    )
    return out


def _progress(items: list, progress: bool, what: str):
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=what, unit="chunk")


def _db_edges(db_bins, lo: float, hi: float) -> np.ndarray:
    """The SPD's bin edges: ``db_bins`` if it is a sequence, else bins of that width (1 dB) covering ``lo..hi``."""
    if db_bins is not None and np.ndim(db_bins) == 1:
        edges = np.asarray(db_bins, dtype=np.float64)
        if len(edges) < 2 or not np.all(np.diff(edges) > 0):
            raise ParameterError(f"db_bins={db_bins!r} must be increasing edges, at least two")
        return edges
    try:
        width = 1.0 if db_bins is None else float(db_bins)
    except (TypeError, ValueError):
        width = math.nan
    if not (math.isfinite(width) and width > 0):
        raise ParameterError(f"db_bins={db_bins!r} must be a positive width in dB or a sequence of edges")
    return np.arange(math.floor(lo / width), math.floor(hi / width) + 2) * width


def _sorted_percentiles(ordered: np.ndarray, finite: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Percentiles ``q`` of each row's finite values, rows sorted (NaN last): numpy's linear method.

    Returns shape (len(q), rows); NaN for a row without a finite value.
    """
    n = finite.astype(np.float64)[None, :]
    h = (n - 1) * q[:, None] / 100  # numpy's "linear": the virtual index (n - 1) * q
    lo = np.floor(h)
    below = np.take_along_axis(ordered, np.clip(lo, 0, None).astype(np.intp).T, axis=1).T.astype(np.float64)
    above = np.take_along_axis(ordered, np.clip(np.minimum(lo + 1, n - 1), 0, None).astype(np.intp).T, axis=1)
    t = h - lo
    # numpy's _lerp: from below for t < 0.5, from above otherwise (exact at both ends).
    value = np.where(t >= 0.5, above.T - (above.T - below) * (1 - t), below + (above.T - below) * t)
    value[:, finite == 0] = np.nan
    return value


def _sorted_histogram(ordered: np.ndarray, finite: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per row of sorted ``ordered`` (freq, periods), the share of its finite values in each bin: (bins, freq).

    Bins as ``numpy.histogram``'s: ``[edges[i], edges[i + 1])``, the last closed;
    values outside the edges are not counted (the default edges hold them all).
    """
    place = np.empty((ordered.shape[0], len(edges)), dtype=np.intp)
    for row, values in enumerate(ordered):  # a binary search of the edges per row: rows are sorted
        place[row, :-1] = np.searchsorted(values[: finite[row]], edges[:-1], side="left")
        place[row, -1] = np.searchsorted(values[: finite[row]], edges[-1], side="right")
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.diff(place, axis=1) / finite[:, None]).T


def _band_columns(
    atlas: Atlas, lvl: Level, name: str, j0: int, j1: int, index: int | None, matrix: np.ndarray
) -> np.ndarray:
    """Band power of each column ``j0..j1-1`` of array ``name``, shape (bands, columns), as ``band_energy`` weighs it.

    ``matrix`` (bands, bins) holds the bins' one-sided weights (times ``k(f)`` when
    calibrated); a column without data is NaN.
    """
    used = np.flatnonzero(matrix.any(axis=0))
    b0, b1 = int(used[0]), int(used[-1]) + 1
    power = atlas._read_columns(lvl, name, j0, j1, index)[b0:b1].astype(np.float64)
    return matrix[:, b0:b1] @ power / atlas._band_norm


def _band_matrix(atlas: Atlas, bands: Mapping[str, tuple[float, float]]) -> np.ndarray:
    if not bands:
        raise ParameterError("bands is empty: name at least one band as {'name': (f_low, f_high)}")
    matrix = np.stack([atlas._band_weights(name, band) for name, band in bands.items()])
    return matrix if atlas.power_scale is None else matrix * atlas.power_scale


#: The columns a band statistic reads: those of the level a view this wide reads.
BAND_STATS_WIDTH = 1200


def band_stats(
    atlas: Atlas,
    bands: Mapping[str, tuple[float, float]],
    *,
    time=None,
    agg: Literal["mean", "max"] = "mean",
    channel: int | None = None,
    width: int = BAND_STATS_WIDTH,
) -> pd.DataFrame:
    """Level statistics of each band over a span: exceedance levels, mean, peak and sound exposure.

    The columns are those a view ``width`` pixels wide reads (:meth:`Atlas.choose_level`:
    ``attrs["level"]``), each column's band power weighted as
    :meth:`Atlas.band_energy` weighs it (dB re 1 µPa on a calibrated store).

    Returns
    -------
    DataFrame, one row per band (index the band's name)
        ``f_low``, ``f_high``; ``L5``, ``L50``, ``L95``: the levels exceeded 5, 50
        and 95 % of the time (the 95th, 50th and 5th percentiles of the columns'
        levels); ``peak``: the highest column level; with ``agg="max"`` these
        four are of each column's largest frame power per bin (peak-hold, as the
        image's "max"). ``mean``: dB of the mean power over the valid frames;
        ``SEL``: the sound exposure level, dB re 1 µPa²·s, the mean power times the
        valid frames' duration (``frames * hop / sample_rate``), NaN on an
        uncalibrated store (``attrs["note"]``). ``attrs``: ``level``,
        ``seconds_per_column``, ``units``, ``agg``, ``note``.
    """
    index = atlas._channel_index(channel)
    t0, t1 = atlas._time_window(time)
    if agg not in ("mean", "max"):
        raise ParameterError(f"agg={agg!r} must be 'mean' or 'max'")
    matrix = _band_matrix(atlas, bands)
    lvl = atlas.choose_level((t0, t1), _check_rows("width", width))
    j0, j1 = atlas._columns(lvl, t0, t1)
    counts = atlas._read_counts(lvl, j0, j1, index).astype(np.float64)
    valid = counts > 0
    if not valid.any():
        raise ParameterError(f"time range {t0} .. {t1} holds no data (it falls in a gap): no band statistics")
    mean_power = _band_columns(atlas, lvl, "power", j0, j1, index, matrix)[:, valid]
    levels = (
        to_db(_band_columns(atlas, lvl, "power_max", j0, j1, index, matrix)[:, valid])
        if agg == "max" and lvl.level > 0
        else to_db(mean_power)
    )
    frames = counts[valid].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = mean_power @ counts[valid] / frames
    seconds = frames * atlas.stft.hop_length / atlas.sample_rate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (a span without data: All-NaN slice)
        l5, l50, l95 = (np.nanpercentile(levels, q, axis=1) for q in (95, 50, 5))
        peak = np.nanmax(levels, axis=1)
    calibrated = atlas.calibration is not None
    table = pd.DataFrame(
        {
            "f_low": [float(band[0]) for band in bands.values()],
            "f_high": [float(band[1]) for band in bands.values()],
            "L5": l5,
            "L50": l50,
            "L95": l95,
            "mean": to_db(mean),
            "peak": peak,
            "SEL": to_db(mean * seconds) if calibrated else np.nan,
        },
        index=pd.Index(list(bands), name="band"),
    )
    table.attrs.update(
        {
            "level": lvl.level,
            "seconds_per_column": lvl.step,
            "units": atlas.band_units,
            "SEL_units": "dB re 1 µPa²·s",
            "agg": agg,
            "frames": int(frames),
            "note": "" if calibrated else "SEL needs a calibrated store (spectral-atlas calibrate): NaN here",
            **_channel_attr(atlas, index),
        }
    )
    return table


#: A diel cell holds at least this many columns of the level it is read from.
DIEL_COLUMNS_PER_CELL = 4


def diel(
    atlas: Atlas,
    *,
    band: tuple[float, float] | None = None,
    channel: int | None = None,
    resolution="1h",
    time=None,
    progress: bool = False,
) -> xr.DataArray:
    """A band's level as a date x time-of-day grid over the deployment (UTC).

    Each cell is the mean band power of the valid frames of the columns centred
    in it, in dB (as :meth:`Atlas.band_energy` reports: dB re 1 µPa on a calibrated
    store), NaN where it holds no data. The columns are those of the coarsest
    level with at least :data:`DIEL_COLUMNS_PER_CELL` columns a cell, read a chunk
    at a time, so a cell's edges are exact to half a column (an eighth of a cell
    at most) and a month costs a few thousand columns.

    Parameters
    ----------
    band : (f_low, f_high), optional
        Hz; default broadband, 0 .. Nyquist.
    resolution : str, timedelta or float (minutes), default: "1h"
        A cell's length; it must divide a day into whole cells.
    time : (start, end), optional
        Default the whole recording.

    Returns
    -------
    DataArray, float32, dims ("date", "time_of_day")
        ``date`` the UTC days (datetime64[ns] at midnight), ``time_of_day`` each
        cell's start after midnight (timedelta64[ns]). ``attrs``: ``level``,
        ``seconds_per_column``, ``resolution_seconds``, ``units``, ``f_low``,
        ``f_high``, and ``latitude``/``longitude`` when the store has a location.
    """
    index = atlas._channel_index(channel)
    t0, t1 = atlas._time_window(time)
    if isinstance(resolution, (int, float, np.integer, np.floating)) and not isinstance(resolution, bool):
        cell = _seconds("resolution", float(resolution) * 60)
    else:
        cell = _seconds("resolution", resolution)
    per_day = 86_400 / cell
    if abs(per_day - round(per_day)) > 1e-9 or round(per_day) < 1:
        raise ParameterError(f"resolution={resolution!r} ({cell:g} s) must divide a day into whole cells")
    per_day = round(per_day)
    lo, hi = (0.0, atlas.freq_range[1]) if band is None else band
    matrix = _band_matrix(atlas, {"band": (lo, hi)})
    lvl = atlas.levels[0]
    for candidate in atlas.levels:
        if candidate.step * DIEL_COLUMNS_PER_CELL <= cell:
            lvl = candidate
    j0, j1 = _centred_in(atlas, lvl, t0, t1)
    day0 = t0.astype("datetime64[D]").astype("datetime64[ns]")
    n_days = (
        int(
            ((t1 - np.timedelta64(1, "ns")).astype("datetime64[D]") - t0.astype("datetime64[D]"))
            / np.timedelta64(1, "D")
        )
        + 1
    )
    sums = np.zeros(n_days * per_day)
    frames = np.zeros(n_days * per_day)
    counts = atlas._read_counts(lvl, j0, j1, index).astype(np.float64)
    for a, b in _progress(list(_chunks(lvl, j0, j1)), progress, "diel map"):
        weight = counts[a - j0 : b - j0]
        power = _band_columns(atlas, lvl, "power", a, b, index, matrix)[0]
        cells = ((_centres(atlas, lvl, a, b) - day0) / _SECOND // cell).astype(np.int64)
        keep = (weight > 0) & (cells >= 0) & (cells < len(sums))  # (centred in the span: inside the grid)
        sums += np.bincount(cells[keep], weights=power[keep] * weight[keep], minlength=len(sums))
        frames += np.bincount(cells[keep], weights=weight[keep], minlength=len(sums))
    with np.errstate(invalid="ignore", divide="ignore"):
        grid = to_db(sums / frames).reshape(n_days, per_day)
    location = atlas.location
    return xr.DataArray(
        grid.astype(np.float32),
        dims=("date", "time_of_day"),
        coords={
            "date": day0 + np.arange(n_days) * np.timedelta64(86_400_000_000_000, "ns"),
            "time_of_day": seconds_to_ns(np.arange(per_day) * cell),
        },
        name="band_level",
        attrs={
            "long_name": f"{'band level' if atlas.calibration else 'band power'} {lo:g}-{hi:g} Hz",
            "units": atlas.band_units,
            "f_low": float(lo),
            "f_high": float(hi),
            "level": lvl.level,
            "seconds_per_column": lvl.step,
            "resolution_seconds": cell,
            **({} if location is None else {"latitude": location[0], "longitude": location[1]}),
            **_channel_attr(atlas, index),
        },
    )


def sun_times(latitude: float, longitude: float, dates) -> pd.DataFrame:
    """Sunrise and sunset (UTC) at a place on each of ``dates``, by the astral package.

    Each is the one that falls on that UTC date (as a diel map's rows are UTC
    dates): west of Greenwich a date's sunset is often the local evening before's.

    Parameters
    ----------
    latitude, longitude : float
        Degrees, -90..90 and -180..180 (east positive).
    dates : sequence of dates (datetime64, Timestamps, ISO strings)

    Returns
    -------
    DataFrame, index ``date`` (datetime64[ns] at midnight UTC)
        ``sunrise`` and ``sunset``, datetime64[ns] UTC (naive, as the store's
        times); NaT on a day the sun does not rise or set (polar day or night).
    """
    from astral import Observer
    from astral.sun import sunrise, sunset

    latitude, longitude = check_location(latitude, longitude)
    observer = Observer(latitude=latitude, longitude=longitude)
    days = pd.DatetimeIndex(pd.to_datetime(list(dates))).normalize()
    rows = []
    for day in days:
        row = []
        for event in (sunrise, sunset):
            try:
                row.append(pd.Timestamp(event(observer, date=day.date(), tzinfo=dt.UTC)).tz_convert(None))
            except ValueError:  # astral: "Sun never reaches the horizon on this day"
                row.append(pd.NaT)
        rows.append(row)
    table = pd.DataFrame(rows, columns=["sunrise", "sunset"], index=pd.Index(days, name="date"), dtype="datetime64[ns]")
    table.attrs.update({"latitude": latitude, "longitude": longitude})
    return table


def stats_output(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """``path`` checked as :func:`write_stats`'s output before anything is read: ``.nc``, new unless ``overwrite``.

    Raises
    ------
    ParameterError
        The suffix is not ``.nc``.
    StoreExistsError
        ``path`` exists and ``overwrite`` is False.
    SourceNotFoundError
        The folder to write in does not exist.
    """
    path = Path(path)
    if path.suffix.lower() != ".nc":
        raise ParameterError(f"cannot write statistics to {path.name!r}: its suffix {path.suffix!r} is not .nc")
    return check_output(path, overwrite=overwrite)


def write_stats(stats: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False, source: str = "") -> Path:
    """Write :func:`spectrum_stats`'s Dataset as NetCDF with CF attributes, via a temporary file moved into place.

    Never over an existing file unless ``overwrite``.
    """
    from data_access import __version__
    from data_access.audio import _place  # (the one never-over-a-file move)

    path = stats_output(path, overwrite=overwrite)
    out = stats.copy()
    out.attrs.update(
        {
            "Conventions": "CF-1.10",
            "source": f"Spectral Atlas store {source}".strip(),
            "software": f"spectral-atlas {__version__}",
            "history": f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} spectral-atlas stats",
            "references": "Merchant et al. (2015), Measuring acoustic habitats, Methods Ecol. Evol. 6, 257-265",
        }
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        out.to_netcdf(tmp, engine="h5netcdf", invalid_netcdf=False)
        _place(tmp, path, overwrite)
    finally:
        tmp.unlink(missing_ok=True)
    return path
