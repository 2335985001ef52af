"""Measurements of a selection box, with Raven Pro's names, read from level 0 a chunk at a time.

A box is a time range and a band. Its frames are the level-0 columns whose
centre times lie in ``[t0, t1)``; gap frames (``frame_count`` 0) are left out.
Its bins are weighted as :meth:`~data_access.query.Atlas.band_energy` weights
them (one-sided, a bin straddling an edge by the fraction of its cell inside),
so the box's Inband Power is the band curve's value over the same frames. On a
calibrated store each bin's power is first multiplied by ``k(f)``.

Level 0 is read one stored chunk (``time_chunk`` columns) at a time and reduced
to sums per bin and per chunk, so a selection of hours holds one chunk in memory;
the percentiles along time re-read only the two chunks where they fall.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from data_access.errors import ParameterError
from data_access.times import seconds_to_ns

if TYPE_CHECKING:
    from data_access.query import Atlas, Level

_SECOND = np.timedelta64(1_000_000_000, "ns")

#: The longest selection measured: every level-0 frame in it is read (a day at 64 kHz, hop 2048, is 22 GB).
MAX_SPAN = np.timedelta64(86_400, "s")

#: The keys of :func:`measure`'s result, in order.
KEYS = (
    "Delta Time (s)",
    "Delta Freq (Hz)",
    "Peak Freq (Hz)",
    "Peak Time",
    "Max Power (dB)",
    "Center Freq (Hz)",
    "Freq 5% (Hz)",
    "Freq 95% (Hz)",
    "BW 90% (Hz)",
    "Time 5%",
    "Time 95%",
    "Dur 90% (s)",
    "Inband Power (dB)",
    "Energy (dB)",
    "SNR (dB)",
    "SNR note",
    "units",
    "frames",
)


def measure(atlas: Atlas, time, freq, channel: int | None = None) -> dict:
    """Raven Pro's measurements of the box ``time`` x ``freq``, from level 0 of the store.

    Parameters
    ----------
    atlas : Atlas
        An open store (:func:`~data_access.query.open_atlas`).
    time : (start, end) or None
        Times as datetime64, pandas Timestamps or ISO strings, inside the
        recording, at most :data:`MAX_SPAN` apart (None: the whole recording);
        the box's frames are those centred in ``[start, end)``, at least one
        with data.
    freq : (low, high) or None
        Hz, inside 0 .. Nyquist (None: all of it).
    channel : int, optional
        Index into ``atlas.channels`` of a multichannel store, default 0.

    Returns
    -------
    dict
        The keys of :data:`KEYS`, in that order. Band power is the one-sided
        weighted sum of a frame's bin powers over ``n_fft * sum(window**2)``, as
        ``band_energy`` has it; dB values are NaN where the power is zero.

        - "Delta Time (s)": end - start of the box.
        - "Delta Freq (Hz)": high - low of the box.
        - "Peak Freq (Hz)": centre frequency of the bin holding the box's largest power.
        - "Peak Time": centre time (UTC datetime64[ns]) of the frame holding the box's largest power.
        - "Max Power (dB)": that largest power in dB as ``view`` shows it (``atlas.units``: PSD on a calibrated store).
        - "Center Freq (Hz)": the frequency dividing the box's energy (summed over its frames) in half.
        - "Freq 5% (Hz)", "Freq 95% (Hz)": the frequencies below which 5% and 95% of the box's energy lie.
        - "BW 90% (Hz)": Freq 95% - Freq 5%.
        - "Time 5%", "Time 95%": the times (UTC) before which 5% and 95% of the box's energy lie.
        - "Dur 90% (s)": Time 95% - Time 5%, in seconds.
        - "Inband Power (dB)": mean band power over the box's frames, as ``band_energy`` reads it.
        - "Energy (dB)": band power summed over the box's frames (Inband Power + 10 log10 frames).
        - "SNR (dB)": Inband Power minus that of the same band over an equal span ending at the box's start.
        - "SNR note": "" or why SNR is NaN (that span is outside the recording, or meets a gap).
        - "units": the units of Inband Power, Energy (``atlas.band_units``) and so of SNR's terms.
        - "frames": the number of frames measured (gaps left out).

        Percentiles are interpolated linearly inside a bin's cell (centre ± df / 2)
        or a frame's (centre ± hop / 2), each clipped to the box.

    Raises
    ------
    ParameterError
        A range is malformed, empty, inverted or outside the recording (or 0 ..
        Nyquist), the span is longer than :data:`MAX_SPAN`, or the box holds no
        frame with data.
    """
    index = atlas._channel_index(channel)
    t0, t1 = atlas._time_window(time)
    f0, f1 = atlas._freq_window(_freq_pair(freq))
    if t1 - t0 > MAX_SPAN:
        raise ParameterError(
            f"time range {t0} .. {t1} is longer than the {MAX_SPAN / _SECOND:g} s a selection may measure "
            "(MAX_SPAN): every frame of it is read"
        )
    lvl = atlas.levels[0]
    j0, j1 = _frames_centred_in(lvl, t0, t1)
    if j1 <= j0:
        raise ParameterError(
            f"time range {t0} .. {t1} holds no frame centre: frames are centred every {lvl.step * 1e3:g} ms, "
            "so a selection must span at least that"
        )

    weights = atlas._band_weights("selection", (f0, f1))
    if atlas.power_scale is not None:
        weights = weights * atlas.power_scale
    used = np.flatnonzero(weights)
    b0, b1 = int(used[0]), int(used[-1]) + 1
    w = weights[b0:b1]
    # Max Power is read as the view shows that bin: PSD on a calibrated store.
    shown = np.ones(b1 - b0) if atlas._psd_scale is None else atlas._psd_scale[b0:b1].astype(np.float64)

    bin_energy = np.zeros(b1 - b0)
    chunk_energy = []  # (a, b, energy of frames a..b-1): where the time percentiles fall
    frames, peak = 0, (-np.inf, b0, j0)
    for a, b in _chunks(lvl, j0, j1):
        power, valid = _read(atlas, lvl, a, b, index, b0, b1)
        if not valid.any():
            chunk_energy.append((a, b, 0.0))
            continue
        power = power[:, valid]
        per_bin = w * power.sum(axis=1)
        bin_energy += per_bin
        chunk_energy.append((a, b, float(per_bin.sum())))
        frames += int(valid.sum())
        scaled = power * shown[:, None]
        k, i = np.unravel_index(np.argmax(scaled), scaled.shape)
        if scaled[k, i] > peak[0]:
            peak = (float(scaled[k, i]), b0 + int(k), a + int(np.flatnonzero(valid)[i]))
    if frames == 0:
        raise ParameterError(f"time range {t0} .. {t1} falls in a gap of the recording: none of its frames has data")

    total = float(bin_energy.sum())
    band_power = total / atlas._band_norm
    inband = _db(band_power / frames)
    centres = np.arange(b0, b1) * atlas.df
    cell_lo = np.clip(centres - atlas.df / 2, f0, f1)
    cell_hi = np.clip(centres + atlas.df / 2, f0, f1)
    f05, f50, f95 = (_percentile(bin_energy, cell_lo, cell_hi, q) for q in (0.05, 0.5, 0.95))
    t05, t95 = (_time_percentile(atlas, lvl, index, chunk_energy, w, b0, b1, t0, t1, q) for q in (0.05, 0.95))
    snr, note = _snr(atlas, lvl, index, w, b0, b1, t0, t1, inband)
    return {
        "Delta Time (s)": (t1 - t0) / _SECOND,
        "Delta Freq (Hz)": f1 - f0,
        "Peak Freq (Hz)": peak[1] * atlas.df,
        "Peak Time": lvl.column_times(peak[2], peak[2] + 1)[0],
        "Max Power (dB)": _db(peak[0]),
        "Center Freq (Hz)": f50,
        "Freq 5% (Hz)": f05,
        "Freq 95% (Hz)": f95,
        "BW 90% (Hz)": f95 - f05,
        "Time 5%": t05,
        "Time 95%": t95,
        "Dur 90% (s)": (t95 - t05) / _SECOND,
        "Inband Power (dB)": inband,
        "Energy (dB)": _db(band_power),
        "SNR (dB)": snr,
        "SNR note": note,
        "units": atlas.band_units,
        "frames": frames,
    }


def _freq_pair(freq) -> tuple[float, float] | None:
    """``freq`` as two floats (None stays None: the whole band)."""
    if freq is None:
        return None
    try:
        f0, f1 = (float(f) for f in freq)
    except (TypeError, ValueError):
        raise ParameterError(f"freq={freq!r} must be a (low, high) pair in Hz") from None
    return f0, f1


def _frames_centred_in(lvl: Level, t0: np.datetime64, t1: np.datetime64) -> tuple[int, int]:
    """Level-0 columns ``j0..j1-1``: those whose centre times lie in ``[t0, t1)``, to the nanosecond."""

    def first_at_or_after(t: np.datetime64) -> int:
        # Estimated in float seconds, then settled on the exact centres.
        j = min(max(math.ceil((t - lvl.first) / _SECOND / lvl.step), 0), lvl.n_columns)
        while j > 0 and lvl.column_times(j - 1, j)[0] >= t:
            j -= 1
        while j < lvl.n_columns and lvl.column_times(j, j + 1)[0] < t:
            j += 1
        return j

    return first_at_or_after(t0), first_at_or_after(t1)


def _chunks(lvl: Level, j0: int, j1: int):
    """``(a, b)`` pieces of ``j0..j1-1`` that each lie in one stored chunk."""
    size = lvl.time_chunk
    a = j0
    while a < j1:
        b = min((a // size + 1) * size, j1)
        yield a, b
        a = b


def _read(atlas: Atlas, lvl: Level, a: int, b: int, index, b0: int, b1: int) -> tuple[np.ndarray, np.ndarray]:
    """Power of bins ``b0..b1-1`` in columns ``a..b-1`` (float64, gaps zero) and which columns have data."""
    valid = atlas._read_counts(lvl, a, b, index) > 0
    power = np.nan_to_num(atlas._read_columns(lvl, "power", a, b, index)[b0:b1].astype(np.float64), nan=0.0)
    return power, valid


def _percentile(energy: np.ndarray, lo: np.ndarray, hi: np.ndarray, q: float) -> float:
    """Where the cumulative ``energy`` of cells ``[lo, hi]`` reaches ``q`` of its total, linear inside a cell."""
    cumulative = np.cumsum(energy)
    total = cumulative[-1]
    if not total > 0:
        return math.nan
    target = q * total
    i = min(int(np.searchsorted(cumulative, target)), len(energy) - 1)  # the first cell reaching it
    before = cumulative[i - 1] if i > 0 else 0.0
    fraction = (target - before) / energy[i] if energy[i] > 0 else 0.0
    return float(lo[i] + fraction * (hi[i] - lo[i]))


def _time_percentile(
    atlas: Atlas, lvl: Level, index, chunk_energy: list, w: np.ndarray, b0: int, b1: int, t0, t1, q: float
) -> np.datetime64:
    """The time before which ``q`` of the box's energy lies; re-reads only the chunk it falls in."""
    sums = np.array([e for _, _, e in chunk_energy])
    total = sums.sum()
    if not total > 0:
        return np.datetime64("NaT", "ns")
    c = min(int(np.searchsorted(np.cumsum(sums), q * total)), len(sums) - 1)
    a, b, _ = chunk_energy[c]
    power, valid = _read(atlas, lvl, a, b, index, b0, b1)
    energy = np.where(valid, w @ power, 0.0)
    centres = (lvl.column_times(a, b) - t0) / _SECOND
    span = (t1 - t0) / _SECOND
    lo, hi = np.clip(centres - lvl.step / 2, 0, span), np.clip(centres + lvl.step / 2, 0, span)
    # The target within this chunk: what is left of q * total after the chunks before it.
    share = (q * total - sums[:c].sum()) / energy.sum()
    return t0 + seconds_to_ns(_percentile(energy, lo, hi, min(max(share, 0.0), 1.0)))


def _snr(atlas: Atlas, lvl: Level, index, w, b0, b1, t0, t1, inband: float) -> tuple[float, str]:
    """Inband power of the box over that of an equal span just before it, in dB, or NaN and the reason."""
    n0 = t0 - (t1 - t0)
    if n0 < atlas.time_range[0]:
        return math.nan, "the window before the selection is outside the recording"
    j0, j1 = _frames_centred_in(lvl, n0, t0)
    if j1 <= j0:
        return math.nan, "the window before the selection holds no frame centre"
    energy = 0.0
    for a, b in _chunks(lvl, j0, j1):
        power, valid = _read(atlas, lvl, a, b, index, b0, b1)
        if not valid.all():
            return math.nan, "the window before the selection falls in a gap"
        energy += float(w @ power.sum(axis=1))
    noise = _db(energy / atlas._band_norm / (j1 - j0))
    if math.isnan(noise):
        return math.nan, "the window before the selection is digital silence"
    return inband - noise, ""


def _db(power: float) -> float:
    """``10 log10 power``, NaN for zero power (digital silence has no level)."""
    return 10 * math.log10(power) if power > 0 else math.nan
