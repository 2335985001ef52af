"""Labelled spectrogram matrices for models: clips of selections, fixed windows, a streaming writer, a loader.

A clip is the store's own matrix, not a picture of it: the stored power of
whole frames (columns of a pyramid level) and whole bins, cut to a span,
optionally turned into dB or mel / log-frequency rows. Nothing is resampled.

:func:`clips` and :func:`windows` return an in-memory ``DataArray (clip, freq,
time)`` (:data:`MAX_BYTES` at most); :func:`iter_clips` yields the same in
batches; :func:`export` streams any number of clips to a Zarr, NetCDF or
``.npz`` dataset holding one batch in memory at a time; :class:`ClipDataset`
reads such a dataset back lazily, item by item, for any framework's data loader.

Which frames a clip holds
-------------------------
Let ``x(t) = (t - centre of column 0) / step`` be the fractional column index
of time ``t`` at the level read (``step``: ``factor**level * hop / sample_rate``
seconds; a level-0 column is a frame, samples ``[j * hop, j * hop + n_fft)``).

- With ``duration``: ``n = floor(duration / step + 1/2)`` columns (rounded half
  up; a duration shorter than one column is refused), the ``n`` consecutive columns whose
  centres are nearest the span's centre ``c``: the first is
  ``floor(x(c) - (n - 1) / 2 + 1/2)``. Every clip has the same shape.
- Without it: the columns whose centres lie in ``[start, end)`` of the span
  (the rule :func:`~data_access.measure.measure` uses); every span must then
  give the same number, or the error names the numbers found (pass a duration).
- ``time`` within a clip is relative seconds, a column's centre minus the
  clip's ``start`` (the first column's centre minus ``step / 2``), the same
  for every clip; each clip's absolute ``start`` and ``end`` (``start + n *
  step``: the cells its columns cover), and the span's own ``span_start`` and
  ``span_end``, are coordinates along ``clip``.
- Frequency: ``scale="power"`` or ``"db"`` keeps the bins whose centres ``k *
  sample_rate / n_fft`` lie in ``[low, high]`` (default all: 0 .. Nyquist).
  ``"mel"`` and ``"log"`` apply :func:`data_access.spectra.filterbank` with
  ``fmin=low, fmax=high`` to the bins it weights.
- ``level > 0`` reads that pyramid level: each column the mean of power over
  ``factor**level`` frames (its attrs say so); level 0 is every frame.

Values
------
- ``"power"``: ``|STFT|**2`` as stored, float32, re full scale (or counts²
  for MiniSEED); the store keeps level 0 with its mantissa rounded to 12 bits,
  so a clip equals ``np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop,
  window=window, center=False))**2`` of the same samples within 2**-13
  relative. Never calibrated (a calibrated store's summary is in the attrs).
- ``"db"``: ``10 log10(max(power, 1e-10))``, which is
  ``librosa.power_to_db(power, top_db=None)``.
- ``"mel"``, ``"log"``: ``weights @ power`` (``n_mels`` rows): mel equals
  ``librosa.feature.melspectrogram(S=power, sr=sample_rate, n_fft=n_fft,
  n_mels=n_mels, fmin=low, fmax=high)``.

Spans outside the recording or over gaps
----------------------------------------
A column outside the recording, or one with no data (a gap: ``frame_count``
0, NaN power), is NaN with ``pad="nan"``, 0 with ``pad="zero"``; with
``pad="drop"`` the clip is left out, and the result's attrs count the clips
dropped and why (``dropped``, ``dropped_outside``, ``dropped_gap``), which is
also logged at INFO.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import logging
import math
import os
import shutil
import struct
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm  # plain text, as ingest's

from data_access.errors import ParameterError, SourceNotFoundError
from data_access.store import check_output
from data_access.times import seconds_to_ns, to_datetime64

if TYPE_CHECKING:
    from data_access.query import Atlas, Level

log = logging.getLogger(__name__)

Scale = Literal["power", "db", "mel", "log"]
Pad = Literal["nan", "zero", "drop"]
SCALES = ("power", "db", "mel", "log")
PADS = ("nan", "zero", "drop")
#: Dataset formats :func:`export` writes, by the output's suffix.
SUFFIXES = (".zarr", ".nc", ".npz")
#: The largest in-memory result of :func:`clips` and :func:`windows` (float32 bytes); more goes through
#: :func:`export` (``spectral-atlas export``) or :func:`iter_clips`.
MAX_BYTES = 2**30
#: Bytes of clips :func:`export` holds at once (one batch): at most 256 clips, at least one.
BATCH_BYTES = 32 * 2**20
BATCH_CLIPS = 256
#: Bytes aimed at per stored chunk of ``X`` along ``clip``: a loader's random item reads one chunk.
CHUNK_BYTES = 2 * 2**20
#: Clips read between two returns of freed memory to the system (see ``_trim_heap``).
TRIM_EVERY = 16
#: The chunk cache (:data:`data_access.query.CACHE`) is bounded to this while :func:`export` runs.
EXPORT_CACHE_BYTES = 32 * 2**20
#: ``librosa.power_to_db``'s floor.
AMIN = 1e-10
_SECOND = np.timedelta64(1_000_000_000, "ns")
_DROP_REASONS = {"outside": "outside the recording", "gap": "over a gap (frames without data)"}


# ------------------------------------------------------------------------------------------------ the plan
@dataclass
class _Plan:
    """Everything the clips of one call share, checked once, and each kept span's first column."""

    atlas: Atlas
    lvl: Level
    n: int  # columns per clip
    bins: tuple[int, int]
    weights: np.ndarray | None  # (rows, bins) of a mel or log scale
    freq: np.ndarray
    scale: str
    pad: str
    channel: int | None
    table: pd.DataFrame  # the kept spans, with their first column "j0" and input position "row"
    attrs: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(freq, time) of one clip."""
        return len(self.freq), self.n

    def read_many(self, starts: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The clips starting at columns ``starts``, shape ``(len(starts), *shape)``, into ``out`` if given.

        One :meth:`~data_access.query.Atlas.frames` a clip: through the chunk cache, it is a view of the
        cached chunk (or the clip's columns of two), so a clip costs a copy of itself; reading a run of
        clips at once would copy whole chunks (measured: 2.5x slower).
        """
        if out is None:
            out = np.empty((len(starts), *self.shape), dtype=np.float32)
        for i, j0 in enumerate(np.asarray(starts, dtype=np.int64)):
            lo, hi = max(int(j0), 0), min(int(j0) + self.n, self.lvl.n_columns)
            block = None
            if lo < hi:
                block = self.atlas.frames(
                    columns=(lo, hi), bins=self.bins, level=self.lvl.level, channel=self.channel
                ).values
            self._fill(int(j0), out[i], block, lo)
            if i % TRIM_EVERY == TRIM_EVERY - 1:
                _trim_heap()
        return out

    def _fill(self, j0: int, out: np.ndarray, block: np.ndarray | None, origin: int) -> None:
        """Clip ``j0`` into ``out`` from ``block``, the level's columns from ``origin`` (None: none are inside)."""
        plain = self.scale == "power"
        power = out if plain else np.empty((self.bins[1] - self.bins[0], self.n), dtype=np.float32)
        lo, hi = max(j0, 0), min(j0 + self.n, self.lvl.n_columns)
        fill = np.float32(0 if self.pad == "zero" else np.nan)
        power[:, : max(lo - j0, 0)] = fill  # (outside the recording)
        power[:, max(hi - j0, 0) :] = fill
        if lo < hi:
            power[:, lo - j0 : hi - j0] = block[:, lo - origin : hi - origin]
        if self.pad == "zero":
            np.nan_to_num(power, copy=False, nan=0.0)
        if self.scale == "db":
            np.log10(np.maximum(power, np.float32(AMIN)), out=out)
            out *= np.float32(10)
        elif not plain:
            out[...] = self.weights @ power

    def coords(self, table: pd.DataFrame) -> dict:
        """Coordinates along ``clip`` of the rows of ``table``, with ``freq`` and ``time``."""
        j0 = table["j0"].to_numpy(np.int64)
        start = self.lvl.column_times(0, 1)[0] + seconds_to_ns(j0 * self.lvl.step - self.lvl.step / 2)
        out = {
            "clip": ("clip", table["row"].to_numpy(np.int64)),
            "label": ("clip", table["label"].to_numpy(str)),
            "start": ("clip", start),
            "end": ("clip", start + seconds_to_ns(self.n * self.lvl.step)),
            "span_start": ("clip", table["start"].to_numpy("datetime64[ns]")),
            "span_end": ("clip", table["end"].to_numpy("datetime64[ns]")),
        }
        for name, kind in (("id", np.int64), ("low_hz", np.float64), ("high_hz", np.float64), ("channel", str)):
            if name in table:
                out[name] = ("clip", table[name].to_numpy(kind))
        out["freq"] = ("freq", self.freq, {"units": "Hz", "long_name": _FREQ_NAMES[self.scale]})
        time = (np.arange(self.n) + 0.5) * self.lvl.step
        out["time"] = ("time", time, {"units": "s", "long_name": "column centre minus the clip's start"})
        return out

    def array(self, table: pd.DataFrame, values: np.ndarray) -> xr.DataArray:
        """The clips of ``table`` as a DataArray, ``values`` shape ``(len(table), *shape)``."""
        return xr.DataArray(
            values, dims=("clip", "freq", "time"), coords=self.coords(table), name="X", attrs=dict(self.attrs)
        )


_FREQ_NAMES = {
    "power": "bin centre frequency",
    "db": "bin centre frequency",
    "mel": "mel band centre frequency",
    "log": "log-spaced row centre frequency",
}


@dataclass(frozen=True, kw_only=True)
class ClipOptions:
    """How clips are cut: the options of :func:`clips` (see it), checked on creation."""

    duration: float | None = None
    freq: tuple[float, float] | None = None
    scale: Scale = "power"
    level: int = 0
    channel: int | None = None
    pad: Pad = "nan"
    n_mels: int = 128

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ParameterError(f"scale={self.scale!r} is not one of {', '.join(map(repr, SCALES))}")
        if self.pad not in PADS:
            raise ParameterError(f"pad={self.pad!r} is not one of {', '.join(map(repr, PADS))}")


def _options(options: Mapping) -> ClipOptions:
    try:
        return ClipOptions(**options)
    except TypeError:
        unknown = sorted(set(options) - {f.name for f in fields(ClipOptions)})
        raise ParameterError(
            f"unknown option {unknown[0]!r}: the options are {', '.join(f.name for f in fields(ClipOptions))}"
        ) from None


def _plan(atlas: Atlas, spans, options: ClipOptions) -> _Plan:
    duration, freq, scale, level = options.duration, options.freq, options.scale, options.level
    channel, pad, n_mels = options.channel, options.pad, options.n_mels
    atlas.frame_counts(columns=(0, 1), level=level, channel=channel)  # (checks level and channel)
    lvl = atlas.levels[int(level)]
    table = _spans_table(spans)
    lo, hi = _freq_range(atlas, freq)
    weights, rows = None, np.arange(atlas.stft.n_freq) * atlas.df
    if scale in ("mel", "log"):
        weights, rows = _filterbank(atlas, scale, n_mels, lo, hi)
        used = np.flatnonzero(weights.any(axis=0))
        b0, b1 = int(used[0]), int(used[-1]) + 1
        weights = weights[:, b0:b1]
    else:
        inside = np.flatnonzero((rows >= lo) & (rows <= hi))
        if not len(inside):
            raise ParameterError(
                f"frequency range {lo:g} .. {hi:g} Hz holds no bin centre: bins are {atlas.df:g} Hz apart"
            )
        b0, b1 = int(inside[0]), int(inside[-1]) + 1
        rows = rows[b0:b1]

    x0 = (table["start"].to_numpy("datetime64[ns]") - lvl.first) / _SECOND / lvl.step
    x1 = (table["end"].to_numpy("datetime64[ns]") - lvl.first) / _SECOND / lvl.step
    if duration is not None:
        n = _columns_for(duration, lvl, "duration")
        j0 = np.floor((x0 + x1) / 2 - (n - 1) / 2 + 0.5).astype(np.int64)
    else:
        j0 = np.ceil(x0 - 1e-9).astype(np.int64)  # the first centre at or after the start
        sizes = np.ceil(x1 - 1e-9).astype(np.int64) - j0
        found = np.unique(sizes)
        if len(found) > 1 or found[0] < 1:
            listing = ", ".join(str(s) for s in found[:8]) + (" ..." if len(found) > 8 else "")
            raise ParameterError(
                f"the spans hold different numbers of frames ({listing}; {lvl.step:g} s each at level "
                f"{lvl.level}): pass duration= (--duration SECONDS) for clips of one length"
                if len(found) > 1
                else f"the spans hold no frame centre (frames are {lvl.step:g} s apart at level {lvl.level}): "
                "pass duration= (--duration SECONDS)"
            )
        n = int(found[0])
    table["j0"] = j0

    outside = (j0 < 0) | (j0 + n > lvl.n_columns)
    gap = _over_gaps(atlas, lvl, options.channel, j0, n)
    dropped = {"outside": 0, "gap": 0}
    if pad == "drop":
        dropped = {"outside": int(outside.sum()), "gap": int((gap & ~outside).sum())}
        if dropped["outside"] or dropped["gap"]:
            log.info(
                "dropped %d of %d clips: %d %s, %d %s",
                dropped["outside"] + dropped["gap"],
                len(table),
                dropped["outside"],
                _DROP_REASONS["outside"],
                dropped["gap"],
                _DROP_REASONS["gap"],
            )
        table = table[~(outside | gap)].reset_index(drop=True)
        if table.empty:
            raise ParameterError(
                f"every one of the {sum(dropped.values())} clips was dropped (pad='drop'): {dropped['outside']} "
                f"{_DROP_REASONS['outside']}, {dropped['gap']} {_DROP_REASONS['gap']}"
            )
    plan = _Plan(atlas, lvl, n, (b0, b1), weights, rows, scale, pad, _index(atlas, channel), table)
    plan.attrs = _attrs(plan, lo, hi, duration, n_mels, dropped)
    return plan


def _over_gaps(atlas: Atlas, lvl: Level, channel, j0: np.ndarray, n: int) -> np.ndarray:
    """Whether each clip of ``n`` columns from ``j0`` holds a column without data (of those inside the level).

    ``frame_count`` is read :data:`COUNTS_WINDOW` columns at a time over the clips' own stretch only:
    memory is bounded whatever the recording's length.
    """
    a, b = np.clip(j0, 0, lvl.n_columns), np.clip(j0 + n, 0, lvl.n_columns)
    gap = np.zeros(len(j0), dtype=bool)
    inside = np.flatnonzero(a < b)
    order = inside[np.argsort(a[inside], kind="stable")]
    starts = a[order]
    i = 0
    while i < len(order):
        w0 = int(starts[i])
        k = int(np.searchsorted(starts, w0 + COUNTS_WINDOW))  # the clips starting in this window
        mine = order[i:k]
        counts = atlas.frame_counts(columns=(w0, int(b[mine].max())), level=lvl.level, channel=channel)
        holes = np.concatenate([[0], np.cumsum(counts == 0)])
        gap[mine] = holes[b[mine] - w0] > holes[a[mine] - w0]
        i = k
    return gap


#: Columns of ``frame_count`` read at once to find the clips over gaps (4 MB of int32).
COUNTS_WINDOW = 2**20


def _index(atlas: Atlas, channel) -> int | None:
    """The channel index a read takes (None for a single-channel store): checked by ``frame_counts`` already."""
    return None if not atlas.channels else (0 if channel is None else int(channel))


def _columns_for(seconds, lvl: Level, name: str) -> int:
    """Columns of ``lvl`` in ``seconds``, rounded, at least one."""
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={seconds!r} must be a number of seconds") from None
    if not seconds >= lvl.step or not math.isfinite(seconds):
        raise ParameterError(
            f"{name}={seconds:g} s is shorter than one frame: frames are {lvl.step:g} s apart at level {lvl.level}"
        )
    return int(math.floor(seconds / lvl.step + 0.5))


def _freq_range(atlas: Atlas, freq) -> tuple[float, float]:
    nyquist = atlas.freq_range[1]
    if freq is None:
        return 0.0, nyquist
    try:
        lo, hi = (float(f) for f in freq)
    except (TypeError, ValueError):
        raise ParameterError(f"freq={freq!r} must be a (low, high) pair in Hz") from None
    if not lo < hi:
        raise ParameterError(f"frequency range {lo:g} .. {hi:g} Hz is empty or inverted")
    if lo < 0 or hi > nyquist:
        raise ParameterError(f"frequency range {lo:g} .. {hi:g} Hz is outside 0 .. {nyquist:g} Hz (Nyquist)")
    return lo, hi


def _filterbank(atlas: Atlas, scale: str, n_mels: int, lo: float, hi: float):
    """(weights (rows, n_freq), row centres) of :func:`data_access.spectra.filterbank`."""
    if isinstance(n_mels, bool) or not isinstance(n_mels, (int, np.integer)) or n_mels < 1:
        raise ParameterError(f"n_mels={n_mels!r} must be a whole number of rows >= 1")
    try:
        from data_access.spectra import filterbank
    except ImportError:  # (data_access.spectra is being written: issue 19)
        raise ParameterError(f"scale={scale!r} is not available yet (it needs data_access.spectra)") from None
    weights, centres = filterbank(
        scale,
        sample_rate=atlas.sample_rate,
        n_fft=atlas.stft.n_fft,
        n_rows=n_mels if scale == "log" else None,
        n_mels=n_mels,
        fmin=lo if scale == "mel" or lo > 0 else None,  # (a log scale's default: the first bin above 0)
        fmax=hi,
    )
    return np.asarray(weights, dtype=np.float64), np.asarray(centres, dtype=np.float64)


def _spans_table(spans) -> pd.DataFrame:
    """``spans`` as a frame: ``start``, ``end`` (datetime64[ns]), ``label`` (str), ``row``, and what else it has."""
    if isinstance(spans, pd.DataFrame):
        missing = [c for c in ("start", "end") if c not in spans]
        if missing:
            raise ParameterError(f"spans has no column {missing[0]!r}: its columns are {list(spans.columns)}")
        keep = [c for c in ("start", "end", "label", "id", "low_hz", "high_hz", "channel") if c in spans]
        table = spans[keep].reset_index(drop=True).copy()
    else:
        try:
            items = [tuple(s) for s in spans]
            table = pd.DataFrame(
                {
                    "start": [s[0] for s in items],
                    "end": [s[1] for s in items],
                    "label": [s[2] if len(s) > 2 else "" for s in items],
                }
            )
        except (TypeError, IndexError):
            raise ParameterError(
                "spans must be a DataFrame with start and end columns, or a list of (start, end[, label])"
            ) from None
    if table.empty:
        raise ParameterError("the selection set is empty: there are no spans to cut clips from")
    for c in ("start", "end"):
        try:
            table[c] = np.array([to_datetime64(t) for t in table[c]], dtype="datetime64[ns]")
        except (ValueError, TypeError) as err:
            raise ParameterError(f"spans' {c} times are not all times: {err}") from None
    bad = np.flatnonzero(table["end"].to_numpy() <= table["start"].to_numpy())
    if len(bad):
        raise ParameterError(f"span {bad[0]} ends at or before its start ({table['start'][bad[0]]})")
    table["label"] = table["label"].fillna("").astype(str) if "label" in table else ""
    table["row"] = np.arange(len(table))
    return table


def _attrs(plan: _Plan, lo: float, hi: float, duration, n_mels: int, dropped: Mapping[str, int]) -> dict:
    """Every parameter needed to reproduce the clips, as flat attributes."""
    from data_access import __version__

    atlas, lvl = plan.atlas, plan.lvl
    units = _power_units(atlas)
    attrs = {
        "store": atlas.name,
        "sample_rate": float(atlas.sample_rate),
        "n_fft": atlas.stft.n_fft,
        "hop_length": atlas.stft.hop_length,
        "win_length": atlas.stft.win_length,
        "window": atlas.stft.window,
        "center": 0,  # librosa's center=False: frame j covers samples [j * hop, j * hop + n_fft)
        "level": lvl.level,
        "frames_per_column": lvl.frames_per_column,
        "seconds_per_column": lvl.step,
        "n_columns": plan.n,
        "duration": "" if duration is None else float(duration),
        "scale": plan.scale,
        "freq_low": lo,
        "freq_high": hi,
        "first_bin": plan.bins[0],
        "stop_bin": plan.bins[1],
        "pad": plan.pad,
        "channel": atlas.channels[plan.channel] if plan.channel is not None else str(atlas.attrs.get("channel", 0)),
        "units": {"power": units, "db": f"dB re {units}"}.get(plan.scale, units),
        "long_name": _LONG_NAMES[plan.scale] + (f" (mean of {lvl.frames_per_column} frames)" if lvl.level else ""),
        "calibration": atlas.calibration.summary() if atlas.calibration else "",
        "software": f"spectral-atlas {__version__}",
        "dropped": int(sum(dropped.values())),
        "dropped_outside": int(dropped["outside"]),
        "dropped_gap": int(dropped["gap"]),
    }
    if plan.scale in ("mel", "log"):
        attrs.update({"n_mels": int(n_mels), "htk": 0, "norm": "slaney" if plan.scale == "mel" else ""})
    return attrs


def _power_units(atlas: Atlas) -> str:
    return "count2" if atlas.frames(columns=(0, 1), bins=(0, 1)).attrs.get("units") == "count2" else "1"


_LONG_NAMES = {
    "power": "spectral power |STFT|^2",
    "db": "spectral power level 10 log10(max(|STFT|^2, 1e-10))",
    "mel": "mel spectrogram (mel filterbank @ |STFT|^2)",
    "log": "log-frequency spectrogram (overlap-weighted mean of |STFT|^2 bins)",
}


# ------------------------------------------------------------------------------------------ in memory
def clips(
    atlas: Atlas,
    spans,
    *,
    duration: float | None = None,
    freq: tuple[float, float] | None = None,
    scale: Scale = "power",
    level: int = 0,
    channel: int | None = None,
    pad: Pad = "nan",
    n_mels: int = 128,
) -> xr.DataArray:
    """The spectrogram matrix of each span, cut from the store as it is: for training and evaluating models.

    Parameters
    ----------
    atlas : Atlas
        An open store (:func:`~data_access.query.open_atlas`).
    spans : DataFrame or list of (start, end) or (start, end, label)
        A frame with ``start`` and ``end`` (UTC times) and optionally ``label``,
        ``id``, ``low_hz``, ``high_hz``, ``channel``: the selections of
        :meth:`~data_access.annotations.Annotations.selections` or
        :func:`~data_access.raven.read_table` as they come. Reading is fastest
        in time order (as those return them): each stored chunk is then decoded once.
    duration : float, optional
        Seconds: fixed-length clips centred on each span (see the module notes
        for the rule). Without it every span must hold the same number of frames.
    freq : (low, high), optional
        Hz inside 0 .. Nyquist: the bins whose centres lie in it (never
        resampled), or the ``fmin, fmax`` of a mel or log scale.
    scale : {"power", "db", "mel", "log"}, default: "power"
    level : int, default: 0
        Pyramid level read (level ``k``: the mean of power over ``factor**k`` frames).
    channel : int, optional
        Index into ``atlas.channels`` of a multichannel store, default 0 (for every clip).
    pad : {"nan", "zero", "drop"}, default: "nan"
        What columns outside the recording or without data become; ``"drop"``
        leaves such clips out (counted in ``attrs["dropped"]`` and logged).
    n_mels : int, default: 128
        Rows of a mel or log scale.

    Returns
    -------
    DataArray, float32, dims ("clip", "freq", "time"), shape (clips, rows, columns)
        ``clip`` is each clip's position in ``spans``; along it ``label``,
        ``start`` and ``end`` (the cells the clip covers, UTC), ``span_start``,
        ``span_end``, and ``id``, ``low_hz``, ``high_hz``, ``channel`` when
        ``spans`` has them. ``freq`` in Hz (bin or row centres), ``time`` in
        seconds from the clip's start (column centres). ``attrs``: every
        parameter needed to reproduce the clips (store, sample_rate, n_fft,
        hop_length, window, level, scale, frequency range, units, software version, ...).

    Raises
    ------
    ParameterError
        An empty selection set, a duration shorter than one frame, spans of
        different lengths without a duration, a frequency range outside 0 ..
        Nyquist, a bad scale, pad, level or channel, every clip dropped, or a
        result larger than :data:`MAX_BYTES` (use :func:`export`,
        ``spectral-atlas export``, or :func:`iter_clips`).
    """
    chosen = {"duration": duration, "freq": freq, "scale": scale, "level": level, "channel": channel, "pad": pad}
    plan = _plan(atlas, spans, ClipOptions(**chosen, n_mels=n_mels))
    rows, columns = plan.shape
    size = len(plan.table) * rows * columns * 4
    if size > MAX_BYTES:
        raise ParameterError(
            f"{len(plan.table)} clips of {rows} x {columns} are {size / 1e6:.3g} MB, more than the "
            f"{MAX_BYTES / 1e6:.3g} MB clips() returns in memory: write them with spectral-atlas export "
            "(data_access.export.export), or read them in batches with data_access.export.iter_clips"
        )
    return plan.array(plan.table, plan.read_many(plan.table["j0"].to_numpy()))


def iter_clips(atlas: Atlas, spans, *, batch: int = BATCH_CLIPS, **options) -> Iterator[xr.DataArray]:
    """:func:`clips` a batch at a time: DataArrays of at most ``batch`` clips each, in the order of ``spans``.

    Takes the options of :func:`clips`; memory holds one batch whatever the number of spans.
    """
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ParameterError(f"batch={batch!r} must be a whole number of clips >= 1")
    plan = _plan(atlas, spans, _options(options))
    for a in range(0, len(plan.table), batch):
        part = plan.table.iloc[a : a + batch]
        yield plan.array(part, plan.read_many(part["j0"].to_numpy()))


def window_spans(atlas: Atlas, *, time=None, length: float, hop: float | None = None) -> pd.DataFrame:
    """The spans ``[t, t + length)`` for ``t = start, start + hop, ...`` that end inside ``time``, labelled ``""``.

    Parameters
    ----------
    time : (start, end), optional
        Default the whole recording; inside it.
    length, hop : float
        Seconds; ``hop`` defaults to ``length`` (windows side by side).
    """
    t0, t1 = atlas.time_range if time is None else (to_datetime64(time[0]), to_datetime64(time[1]))
    if not t0 < t1:
        raise ParameterError(f"time range {t0} .. {t1} is empty or inverted: start must come before end")
    for name, value in (("length", length), ("hop", length if hop is None else hop)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value > 0:
            raise ParameterError(f"{name}={value!r} must be a positive number of seconds")
    span, step = seconds_to_ns(float(length)), seconds_to_ns(float(length if hop is None else hop))
    count = int((t1 - t0 - span) // step) + 1 if t1 - t0 >= span else 0
    if count < 1:
        raise ParameterError(f"time range {t0} .. {t1} is shorter than one window of {float(length):g} s")
    starts = t0 + step * np.arange(count)
    return pd.DataFrame({"start": starts, "end": starts + span, "label": ""})


def selection_spans(
    atlas: Atlas,
    *,
    annotations: str | os.PathLike | None = None,
    table: str | os.PathLike | None = None,
    labels: list[str] | None = None,
    start: object = None,
    end: object = None,
    origin: object = None,
) -> pd.DataFrame:
    """The selections of ``atlas`` in an annotations database or a Raven / CSV table, as :func:`clips` takes them.

    Parameters
    ----------
    annotations : path-like, optional
        A selection database (:func:`~data_access.annotations.open_annotations`): the
        selections of the store (by :attr:`~data_access.query.Atlas.name`).
    table : path-like, optional
        A Raven selection table or CSV (:func:`~data_access.raven.read_table`; ``origin`` as there).
        Exactly one of ``annotations`` and ``table``.
    labels : list of str, optional
        Only these labels; each must be one the selections have.
    start, end : time-like, optional
        Only the selections that overlap ``[start, end)``.

    Returns
    -------
    DataFrame
        ``start``, ``end``, ``low_hz``, ``high_hz``, ``channel``, ``label`` (and ``id`` from a database), by time.

    Raises
    ------
    ParameterError
        An unknown label, or no selection left.
    """
    from data_access.annotations import open_annotations
    from data_access.raven import read_table

    if (annotations is None) == (table is None):
        raise ParameterError("name the selections: a database (annotations=) or a table (table=), one of them")
    if annotations is not None:
        where = f"{atlas.name} in {annotations}"
        with open_annotations(annotations, readonly=True) as db:
            known = db.labels(atlas.name)
            spans = db.selections(atlas.name, start=start, end=end, labels=labels)
    else:
        where = str(table)
        spans = read_table(table, atlas, origin=origin)
        known = sorted(set(spans["label"]))
        keep = np.ones(len(spans), dtype=bool)
        if start is not None:
            keep &= (spans["end"] > to_datetime64(start)).to_numpy()
        if end is not None:
            keep &= (spans["start"] < to_datetime64(end)).to_numpy()
        if labels:
            keep &= spans["label"].isin(labels).to_numpy()
        spans = spans[keep].sort_values("start", kind="stable").reset_index(drop=True)
    unknown = [label for label in labels or () if label not in known]
    if unknown:
        having = f"the labels {', '.join(map(repr, known))}" if known else "no labels"
        raise ParameterError(f"unknown label {unknown[0]!r}: the selections of {where} have {having}")
    if spans.empty:
        within = " overlapping that time range" if start is not None or end is not None else ""
        raise ParameterError(f"the selection set is empty: {where} has no selections{within}")
    return spans


def windows(atlas: Atlas, *, time=None, length: float, hop: float | None = None, **options) -> xr.DataArray:
    """Fixed windows tiling a time range (unlabelled data, inference), as :func:`clips` returns clips.

    Windows ``[t, t + length)`` from ``time``'s start every ``hop`` seconds (default
    ``length``) while they end inside it (:func:`window_spans`), each ``floor(length / step
    + 1/2)`` columns by the rule of ``duration`` (see the module notes). Takes the
    other options of :func:`clips` (``freq``, ``scale``, ``level``, ``channel``, ``pad``, ``n_mels``).
    """
    if "duration" in options:
        raise ParameterError("windows() takes length=, not duration=")
    return clips(atlas, window_spans(atlas, time=time, length=length, hop=hop), duration=length, **options)


# --------------------------------------------------------------------------------------------- export
@dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote: the dataset's path, its clip count and shape, and the clips dropped by reason."""

    path: Path
    clips: int
    shape: tuple[int, int]
    dropped: dict[str, int]

    def summary(self) -> str:
        """One line: what was written, and what was dropped and why."""
        text = f"wrote {self.clips} clips of {self.shape[0]} x {self.shape[1]} to {self.path}"
        if any(self.dropped.values()):
            reasons = ", ".join(f"{n} {_DROP_REASONS[k]}" for k, n in self.dropped.items() if n)
            text += f"; dropped {sum(self.dropped.values())}: {reasons}"
        return text


def dataset_output(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """``path`` checked as :func:`export`'s output before anything is read.

    Raises
    ------
    ParameterError
        The suffix is not one of :data:`SUFFIXES`.
    StoreExistsError
        ``path`` exists and ``overwrite`` is False.
    SourceNotFoundError
        The folder to write in does not exist.
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ParameterError(
            f"cannot write a dataset to {path.name!r}: its suffix {path.suffix!r} is not one of {', '.join(SUFFIXES)}"
        )
    return check_output(path, overwrite=overwrite)


def export(
    atlas: Atlas,
    spans,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: bool | None = None,
    **options,
) -> Exported:
    """Write the clips of ``spans`` to a dataset, streaming: one batch of clips in memory whatever their number.

    Parameters
    ----------
    atlas, spans
        As for :func:`clips`, which takes the other ``options``.
    path : path-like
        ``.zarr`` (a directory), ``.nc`` (NetCDF-4) or ``.npz`` (numpy's zip of
        ``.npy`` arrays, stored uncompressed so :class:`ClipDataset` reads an item
        without the rest). The dataset holds ``X (clip, freq, time)`` float32, the
        coordinates of :func:`clips` (``label``, ``start``, ``end``, ...), and the
        attributes ``description`` (what ``X`` is, in prose) and ``parameters``
        (JSON of every parameter). It is written to a temporary name beside
        ``path`` and renamed into place when complete: a failed export leaves nothing.
    overwrite : bool, default: False
        Replace an existing ``path`` (only once the new dataset is complete).
    progress : bool, optional
        A progress bar (clips); by default only on a terminal.

    Returns
    -------
    Exported

    Raises
    ------
    ParameterError, StoreExistsError, SourceNotFoundError
        See :func:`dataset_output` and :func:`clips` (but for its memory bound).
    """
    path = dataset_output(path, overwrite=overwrite)
    plan = _plan(atlas, spans, _options(options))
    n, (rows, columns) = len(plan.table), plan.shape
    clip_bytes = max(rows * columns * 4, 1)
    chunk = max(1, min(n, CHUNK_BYTES // clip_bytes))
    batch = max(chunk, min(BATCH_CLIPS, BATCH_BYTES // clip_bytes) // chunk * chunk)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    _remove(tmp)
    template = xr.Dataset(coords=plan.coords(plan.table), attrs=_dataset_attrs(plan))
    writer = None
    try:
        writer = _WRITERS[path.suffix.lower()](tmp, template, (n, rows, columns), chunk)
        with (
            _bounded_cache(),
            tqdm(total=n, unit="clip", disable=None if progress is None else not progress, desc="export") as bar,
        ):
            values = np.empty((min(batch, n), rows, columns), dtype=np.float32)  # (one batch, reused)
            for a in range(0, n, batch):
                starts = plan.table["j0"].to_numpy()[a : a + batch]
                writer.write(a, plan.read_many(starts, values[: len(starts)]))
                _trim_heap()
                bar.update(len(starts))
        writer.close()
        _replace(tmp, path)
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        _remove(tmp)
        raise
    dropped = {"outside": plan.attrs["dropped_outside"], "gap": plan.attrs["dropped_gap"]}
    return Exported(path, n, (rows, columns), dropped)


_X_ATTRS = {"long_name": "spectrogram matrix of each clip"}


def _dataset_attrs(plan: _Plan) -> dict:
    """The dataset's attributes: the clips' own, ``description`` and ``parameters`` (JSON)."""
    a = plan.attrs
    scale = {
        "power": f"power |STFT|^2 (units {a['units']!r}: re full scale for PCM audio, counts squared for MiniSEED)",
        "db": f"power in dB ({a['units']}): 10 log10(max(|STFT|^2, 1e-10)), librosa.power_to_db with top_db=None",
        "mel": f"{a.get('n_mels')} mel bands (librosa.filters.mel, Slaney) applied to |STFT|^2",
        "log": f"{a.get('n_mels')} log-spaced rows, each the overlap-weighted mean of |STFT|^2 bins",
    }[a["scale"]]
    level = (
        "every STFT frame (pyramid level 0)"
        if not a["level"]
        else f"pyramid level {a['level']}: each column the mean power of {a['frames_per_column']} frames"
    )
    rows = "bins whose centres lie in" if a["scale"] in ("power", "db") else "bands over"
    padded = {"nan": "NaN", "zero": "0", "drop": "absent"}[a["pad"]]
    description = (
        f"Spectrogram clips cut from the Spectral Atlas store {a['store']!r} ({a['software']}). "
        f"X (clip, freq, time) is float32: {scale}. Columns are {level}, "
        f"{a['seconds_per_column']:g} s apart, of an STFT with n_fft={a['n_fft']}, hop_length={a['hop_length']}, "
        f"window={a['window']!r}, center=False (frame j covers samples [j*hop, j*hop+n_fft)) at "
        f"{a['sample_rate']:g} Hz; rows are {rows} {a['freq_low']:g}..{a['freq_high']:g} Hz, never resampled. "
        f"Each clip has {a['n_columns']} columns: "
        + (
            f"the ones nearest the centre of its span for a duration of {a['duration']:g} s"
            if a["duration"] != ""
            else "those centred inside its span"
        )
        + ". time is seconds from the clip's start (column centre minus start); start and end (UTC) are the cells "
        "the clip covers, span_start and span_end the labelled span, label its label. Columns outside the "
        f"recording or without data (gaps) are {padded}"
        + (f" ({a['dropped']} clips dropped)" if a["pad"] == "drop" else "")
        + ". Level 0 is stored with 12 mantissa bits: within 2**-13 relative of librosa's |stft(center=False)|**2."
    )
    return {**a, "description": description, "parameters": json.dumps(a, sort_keys=True)}


@contextlib.contextmanager
def _bounded_cache(max_bytes: int = EXPORT_CACHE_BYTES):
    """The process-wide chunk cache bounded to ``max_bytes`` for a while (an export reads in time order)."""
    from data_access.query import CACHE

    before = CACHE.max_bytes
    CACHE.resize(min(before, max_bytes))
    try:
        yield
    finally:
        CACHE.resize(before)


def _trim_heap() -> None:
    """Give the memory freed since the last call back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    Each chunk decoded is a few MB freed again; glibc keeps such blocks in its heaps, fragmented, and
    a long export's RSS would creep up by hundreds of MB (dask.distributed trims its workers the same way).
    """
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC(0)


_LIBC = None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _replace(tmp: Path, path: Path) -> None:
    """Move the finished ``tmp`` to ``path``; what was there goes only once the new one is in place."""
    old = None
    if path.exists() or path.is_symlink():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        _remove(old)
        path.rename(old)
    tmp.rename(path)
    if old is not None:
        _remove(old)


class _ZarrWriter:
    """Coordinates and attributes through xarray; ``X`` created empty, then written a batch at a time by region."""

    def __init__(self, tmp: Path, template: xr.Dataset, shape: tuple[int, int, int], chunk: int) -> None:
        import dask.array as da
        import zarr

        empty = da.zeros(shape, chunks=(chunk, *shape[1:]), dtype=np.float32)
        ds = template.assign(X=(("clip", "freq", "time"), empty, _X_ATTRS))
        ds.to_zarr(tmp, mode="w", compute=False, consolidated=True, zarr_format=2)
        self._x = zarr.open_group(tmp, mode="r+")["X"]

    def write(self, a: int, values: np.ndarray) -> None:
        self._x[a : a + len(values)] = values

    def close(self) -> None:
        pass


class _NetcdfWriter:
    """Coordinates and attributes through xarray (h5netcdf); ``X`` added pre-sized and written a batch at a time."""

    def __init__(self, tmp: Path, template: xr.Dataset, shape: tuple[int, int, int], chunk: int) -> None:
        import h5netcdf

        template.to_netcdf(tmp, engine="h5netcdf")
        self._file = h5netcdf.File(tmp, "a")
        self._x = self._file.create_variable("X", ("clip", "freq", "time"), np.float32, chunks=(chunk, *shape[1:]))
        self._x.attrs.update(_X_ATTRS)

    def write(self, a: int, values: np.ndarray) -> None:
        self._x[a : a + len(values)] = values

    def close(self) -> None:
        self._file.close()


class _NpzWriter:
    """numpy's ``.npz``, uncompressed: the small arrays first, then ``X.npy`` streamed into the zip."""

    def __init__(self, tmp: Path, template: xr.Dataset, shape: tuple[int, int, int], chunk: int) -> None:
        self._zip = zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True)
        arrays = {name: np.asarray(var.values) for name, var in template.variables.items()}
        arrays.update({name: np.array(template.attrs[name]) for name in ("description", "parameters")})
        for name, values in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, values.astype(str) if values.dtype == object else values, allow_pickle=False)
            self._zip.writestr(f"{name}.npy", buffer.getvalue())
        self._x = self._zip.open("X.npy", "w", force_zip64=True)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self._x, header)

    def write(self, a: int, values: np.ndarray) -> None:
        self._x.write(np.ascontiguousarray(values, dtype="<f4").data)

    def close(self) -> None:
        if not self._x.closed:
            self._x.close()
        self._zip.close()


_WRITERS = {".zarr": _ZarrWriter, ".nc": _NetcdfWriter, ".npz": _NpzWriter}


# --------------------------------------------------------------------------------------------- loader
class ClipDataset:
    """A dataset written by :func:`export` (``spectral-atlas export``), read lazily, item by item.

    ``len(ds)`` clips; ``ds[i]`` is ``(X, label)``: a float32 array of shape
    ``(freq, time)`` and a str, read from disk alone (a Zarr or NetCDF dataset
    reads the stored chunk holding it, a few clips; an ``.npz`` just its bytes).
    Use it as a map-style dataset in any framework's loader (PyTorch's
    ``DataLoader(ClipDataset(path), batch_size=32, shuffle=True)``, a
    ``tf.data`` generator, a plain loop); it depends on none. Each process
    (a loader's worker) opens the file for itself.

    Parameters
    ----------
    path : path-like
        A ``.zarr``, ``.nc`` or ``.npz`` dataset.

    Attributes
    ----------
    labels, start, end : ndarray, shape (clips,)
        Each clip's label (str) and the times (UTC datetime64[ns]) it covers.
    freq, time : ndarray
        The rows' frequencies (Hz) and the columns' times from each clip's start (s).
    parameters : dict
        The parameters the clips were made with (the dataset's JSON).
    description : str
        What ``X`` is, in prose.
    coords : dict of str to ndarray
        Every coordinate along ``clip`` (``span_start``, ``id``, ...).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in SUFFIXES:
            raise ParameterError(f"cannot read {self.path.name!r}: its suffix {suffix!r} is not one of {SUFFIXES}")
        if not self.path.exists():
            raise SourceNotFoundError(f"no dataset at {str(self.path)!r}")
        self._suffix = suffix
        self._opened: tuple[int, object] | None = None
        if suffix == ".npz":
            with np.load(self.path, allow_pickle=False) as z:
                small = {name[:-4]: z[name[:-4]] for name in z.zip.namelist() if name != "X.npy"}
            description, parameters = str(small.pop("description")), str(small.pop("parameters"))
            self.shape = self._npz_layout()[1]
        else:
            with self._open_dataset() as ds:
                small = {name: ds[name].values for name in ds.coords}
                description, parameters = ds.attrs["description"], ds.attrs["parameters"]
                self.shape = ds["X"].shape
        self.description = description
        self.parameters = json.loads(parameters)
        self.freq, self.time = small.pop("freq"), small.pop("time")
        self.coords = small
        self.labels = small["label"].astype(str)
        self.start, self.end = small["start"], small["end"]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> tuple[np.ndarray, str]:
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"a clip's index must be an int, not {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"clip {i} of a dataset of {n}")
        i = int(i) % n
        return self._read(i), str(self.labels[i])

    def __repr__(self) -> str:
        return f"<ClipDataset {self.path.name}: {len(self)} clips of {self.shape[1]} x {self.shape[2]}>"

    def _open_dataset(self) -> xr.Dataset:
        engine = "zarr" if self._suffix == ".zarr" else "h5netcdf"
        return xr.open_dataset(self.path, engine=engine, chunks=None)

    def _read(self, i: int) -> np.ndarray:
        if self._suffix == ".npz":  # (a file opened per item: nothing held open to leak or share across a fork)
            offset, shape = self._npz_layout()
            size = shape[1] * shape[2] * 4
            with open(self.path, "rb") as f:
                f.seek(offset + i * size)
                return np.frombuffer(f.read(size), dtype="<f4").reshape(shape[1:])
        if self._opened is None or self._opened[0] != os.getpid():  # this process's own (a loader's worker)
            self._opened = (os.getpid(), self._open_dataset()["X"].variable)
        return np.asarray(self._opened[1][i].values, dtype=np.float32)

    def _npz_layout(self) -> tuple[int, tuple[int, int, int]]:
        """Where ``X``'s data starts in the file, and its shape (the entry is stored, not compressed)."""
        if getattr(self, "_layout", None) is None:
            with zipfile.ZipFile(self.path) as z, open(self.path, "rb") as f:
                info = z.getinfo("X.npy")
                if info.compress_type != zipfile.ZIP_STORED:
                    raise ParameterError(f"{self.path.name!r}: X.npy is compressed; ClipDataset reads stored ones")
                f.seek(info.header_offset)
                local = f.read(30)
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                start = info.header_offset + 30 + name_len + extra_len
                f.seek(start)
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, _ = read(f)
                self._layout = (f.tell(), tuple(int(s) for s in shape))
        return self._layout
