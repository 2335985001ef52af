"""The spectrogram's frequency scales: Hz to the plot's y and back, the rows a view reads, round-Hz ticks.

A log or mel spectrogram has rows uniform in its own coordinate, not in Hz, and a
Bokeh image cannot be drawn on a log axis: the spectrogram plots y in that
coordinate and labels it in Hz. This module is the one place that knows the
coordinate (everything else, the state, links, bands, selections, stays in Hz):

- ``"linear"``: y is Hz.
- ``"log"``: y is ``log10(Hz)``.
- ``"mel"``: y is ``librosa.hz_to_mel(Hz)`` (Slaney's mel, ``htk=False``, as
  :meth:`data_access.Atlas.view`'s default).

:data:`HZ_JS` is the same inverse in JavaScript, for the page's hover and tick labels.

No Panel or HoloViews import: tested directly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple, get_args

import librosa
import numpy as np

from data_access import ParameterError
from data_access.query import FreqScale

if TYPE_CHECKING:
    from data_access import Atlas

#: The scales the explorer offers, as :meth:`data_access.Atlas.view` names them.
FREQ_SCALES: tuple[str, ...] = get_args(FreqScale)

#: The mel rows of a mel view (librosa's default ``n_mels``).
N_MELS = 128

#: The lowest frequency a log axis can place: 0 Hz (a band or a box from 0) is drawn from here, far below any axis.
LOG_FLOOR_HZ = 1e-3

#: ``hz(scale, y)``: the inverse of :func:`to_plot` in JavaScript (Slaney's mel: linear to 1 kHz, then log).
HZ_JS = """
function hz(scale, y) {
  if (scale === "log") return Math.pow(10, y);
  if (scale === "mel") return y < 15 ? y * 200 / 3 : 1000 * Math.exp(Math.log(6.4) / 27 * (y - 15));
  return y;
}
"""


def check_scale(scale: str) -> None:
    """Refuse a scale that is not one of :data:`FREQ_SCALES`, naming them (:class:`~data_access.ParameterError`)."""
    if scale not in FREQ_SCALES:
        raise ParameterError(f"freq_scale={scale!r} is not one of {', '.join(FREQ_SCALES)}")


#: Each scale's (Hz -> y, y -> Hz).
_TRANSFORMS = {
    "linear": (lambda hz: hz, lambda y: y),
    "log": (lambda hz: np.log10(np.maximum(hz, LOG_FLOOR_HZ)), lambda y: 10.0**y),
    "mel": (lambda hz: librosa.hz_to_mel(hz, htk=False), lambda y: librosa.mel_to_hz(y, htk=False)),
}


def _transform(scale: str, values, inverse: bool) -> np.ndarray:
    check_scale(scale)
    return np.asarray(_TRANSFORMS[scale][inverse](np.asarray(values, dtype=np.float64)), dtype=np.float64)


def to_plot(scale: str, hz) -> np.ndarray:
    """Frequencies in Hz as the plot's y on ``scale`` (see the module notes); log places 0 Hz at 1 mHz.

    Parameters
    ----------
    scale : {"linear", "log", "mel"}
    hz : float or array_like
        Frequencies in Hz, >= 0.

    Returns
    -------
    ndarray, float64, the shape of ``hz``
    """
    return _transform(scale, hz, inverse=False)


def to_hz(scale: str, y) -> np.ndarray:
    """The plot's y on ``scale`` back in Hz: the inverse of :func:`to_plot`.

    Returns
    -------
    ndarray, float64, the shape of ``y``
    """
    return _transform(scale, y, inverse=True)


def hz_range(scale: str, y_range: tuple[float, float]) -> tuple[float, float]:
    """A plot's y range as (low, high) Hz."""
    low, high = to_hz(scale, [y_range[0], y_range[1]])
    return float(low), float(high)


class Window(NamedTuple):
    """What the spectrogram shows of a frequency range on a scale (see :func:`window`)."""

    #: The axis' (low, high) in the plot's y coordinate.
    y: tuple[float, float]
    #: The same in Hz: where the axis starts and ends (log: from the first non-zero bin at the lowest).
    hz: tuple[float, float]
    #: Keywords for :meth:`data_access.Atlas.view`: ``freq_scale``, and ``fmin``, ``fmax``, ``n_mels`` off linear.
    options: dict


def window(atlas: Atlas, scale: str, freq_range: tuple[float, float]) -> Window:
    """The axis and the view's rows that show ``freq_range`` (Hz) on ``scale``, rows tiling the axis exactly.

    - linear: the range itself; the view's bins cover it.
    - log: from ``max(low, first non-zero bin)`` (``sample_rate / n_fft``: a log axis has
      no 0 Hz), to ``high``; the view's ``height`` rows have edges geomspace(low, high),
      so each row is one equal step of the axis.
    - mel: :data:`N_MELS` rows whose cells (centre ± half the mel step between centres,
      as an image draws them) tile the axis: the filterbank's ``fmin``/``fmax`` lie half
      a row beyond the axis' ends. Where that would pass 0 Hz or Nyquist, the filterbank
      stops there and the axis ends at its outer cell's edge (about half a row inside:
      from 0 Hz, the axis starts a few Hz up); the other end stays where asked.
    """
    check_scale(scale)
    low, high = float(freq_range[0]), float(freq_range[1])
    if scale == "linear":
        return Window((low, high), (low, high), {"freq_scale": "linear"})
    if scale == "log":
        first_bin = atlas.sample_rate / atlas.stft.n_fft
        low = max(low, min(first_bin, high / 2))
        y = (math.log10(low), math.log10(high))
        return Window(y, (low, high), {"freq_scale": "log", "fmin": low, "fmax": high})
    m0, m1 = (float(m) for m in to_plot("mel", [low, high]))
    top = float(to_plot("mel", atlas.freq_range[1]))
    half = (m1 - m0) / N_MELS / 2
    lo_mel, hi_mel = m0 - half, m1 + half
    k = 2 * (N_MELS + 1)  # (an end held at 0 Hz or Nyquist: the other stays where asked, the rows a little wider)
    if lo_mel < 0:
        lo_mel, hi_mel = 0.0, m1 * k / (k - 1)
    if hi_mel > top:
        lo_mel, hi_mel = max((m0 * k - top) / (k - 1), 0.0), top
    half = (hi_mel - lo_mel) / (N_MELS + 1) / 2  # half the centres' step
    y = (lo_mel + half, hi_mel - half)
    fmin, fmax = hz_range("mel", (lo_mel, hi_mel))
    options = {"freq_scale": "mel", "fmin": fmin, "fmax": min(fmax, atlas.freq_range[1]), "n_mels": N_MELS}
    return Window(y, hz_range("mel", y), options)


def _roundest(hz: float, spacing: float) -> float:
    """The roundest value within ``spacing / 2`` of ``hz``.

    That is a multiple of the largest step (5, 2 or 1 times a power of ten) that has one
    there; the step ``spacing`` rounds down to always has one.
    """
    power = 10.0 ** math.ceil(math.log10(max(abs(hz), spacing)) + 1)
    while True:
        for mantissa in (5.0, 2.0, 1.0):
            step = power * mantissa / 10
            value = round(hz / step) * step
            if abs(value - hz) <= spacing / 2:
                return value
        power /= 10


def hz_ticks(scale: str, y_range: tuple[float, float], count: int = 8) -> np.ndarray:
    """Round frequencies (Hz) to label a y axis on ``scale``, about ``count`` of them spread evenly along it.

    At each of ``count`` evenly spaced heights, the roundest frequency within half the
    Hz between neighbouring heights there (see :func:`_roundest`): 20, 50, 100 Hz,
    1, 2, 5 kHz over decades; 1 002, 1 004 Hz zoomed in; as dense in Hz as the scale is.

    Returns
    -------
    ndarray, float64, shape (n,), n <= count
        Increasing, inside the range, positive.
    """
    y0, y1 = float(min(y_range)), float(max(y_range))
    heights = np.linspace(y0, y1, count)
    dy = (y1 - y0) / (count - 1)
    spacing = np.abs(to_hz(scale, heights + dy / 2) - to_hz(scale, heights - dy / 2))
    hz = to_hz(scale, heights)
    ticks = np.unique([_roundest(h, max(d, 1e-9)) for h, d in zip(hz, spacing, strict=True)])
    low, high = hz_range(scale, (y0, y1))
    return ticks[(ticks >= low) & (ticks <= high) & (ticks > 0)]


def describe(atlas: Atlas, scale: str, freq_range: tuple[float, float]) -> str:
    """One line on the scale shown, for the info pane: its rows and where its axis starts when not at the range's."""
    shown = window(atlas, scale, freq_range)
    if scale == "linear":
        return f"linear frequency scale ({atlas.sample_rate / atlas.stft.n_fft:.4g} Hz bins)"
    if scale == "log":
        text = "log frequency scale (rows uniform in log10 Hz)"
    else:
        text = f"mel scale, {N_MELS} rows (Slaney)"
    if shown.hz[0] > freq_range[0] * (1 + 1e-9) + 1e-9:
        why = "the first non-zero bin" if scale == "log" else "the lowest row's edge"
        text += f", from {shown.hz[0]:.4g} Hz ({why})"
    return text
