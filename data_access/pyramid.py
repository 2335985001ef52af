"""The multiscale pyramid: each level divides the time axis by a factor, by the mean of power.

The factor is the store's ``pyramid_factor`` (:data:`~data_access.schema.PYRAMID_FACTOR`,
4, in stores written now; 2 in format 1): every function here takes it.

Beside the mean, every level above 0 keeps the maximum of power over the same
frames (``power_max``), so a 5 ms click still shows when a whole day is on one
screen, where the mean would dilute it ten-thousandfold.

Level ``k`` column ``j`` is the mean of the valid (non-NaN) full-resolution
frames ``j * F**k .. (j + 1) * F**k - 1`` (``F`` the factor). Each level keeps
``frame_count``, the number of valid frames behind every column, so a level is
built exactly from the one below it (a count-weighted mean of ``F`` columns)
even where gaps leave some frames NaN. The mean of power commutes with sums
over frequency, so a band's energy read from any level is exact for that
level's resolution.

:class:`PyramidBuilder` builds levels ``1..N`` while level 0 streams past in
time order, holding at most about one chunk per level: memory grows with the
logarithm of the recording's length, never with the length itself.
:func:`rebuild_levels` builds them again from level 0 as stored, level by
level, for an ingest that was resumed or appended to. Each group of columns is
reduced on its own, from the columns as stored (:func:`next_level`: rounded to the
mantissa bits the store keeps), so both give the same bits whatever pieces they
work in.

A multichannel store (``channel="all"``) has a leading ``channel`` axis on
power, ``(channel, freq, time)``, and on frame counts, ``(channel, time)``:
every function here takes it, and reduces each channel exactly as a mono
store's, so channel ``k`` is bit for bit the store of channel ``k`` alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from data_access.store import MAX_BITS, MEAN_BITS, TIME_CHUNK, VECTOR_CHUNK, StoreWriter, keep_bits

#: The coarsest level has at most this many columns: the whole recording on one screen.
TOP_FRAMES = 2048


def level_lengths(n_frames: int, factor: int, *, top: int = TOP_FRAMES) -> list[int]:
    """Columns of each level, from ``n_frames`` at level 0 down to ``<= top``, each ``1/factor`` of the last."""
    lengths = [n_frames]
    while lengths[-1] > top:
        lengths.append(-(-lengths[-1] // factor))
    return lengths


def frame_counts(power: np.ndarray) -> np.ndarray:
    """Whether each full-resolution frame is valid (1) or a gap (0).

    Parameters
    ----------
    power : ndarray, shape (n_freq, n) or (n_channels, n_freq, n)

    Returns
    -------
    counts : ndarray, int32, shape (n,) or (n_channels, n)
    """
    return np.isfinite(power[..., 0, :]).astype(np.int32)


def reduce(power: np.ndarray, counts: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Average groups of ``factor`` consecutive columns, weighted by their frame counts.

    Parameters
    ----------
    power : ndarray, float32, shape (n_freq, n) or (n_channels, n_freq, n)
        Columns along the last axis; NaN where a column has no valid frame.
    counts : ndarray, int, shape (n,) or (n_channels, n)
        Valid full-resolution frames behind each column (of each channel).
    factor : int
        Columns per group.

    Returns
    -------
    power : ndarray, float32, shape (n_freq, ceil(n / factor)) or (n_channels, n_freq, ceil(n / factor))
    counts : ndarray, int32, shape (ceil(n / factor),) or (n_channels, ceil(n / factor))
        A short last group stands as it is.
    """
    if power.ndim == 3:  # each channel on its own, as a mono store reduces it
        means, groups = zip(*(reduce(p, c, factor) for p, c in zip(power, counts, strict=True)), strict=True)
        return np.stack(means), np.stack(groups)
    counts = np.asarray(counts, dtype=np.int32)
    pad = -len(counts) % factor
    if pad:  # padding of no frames, which the weighted mean below leaves out
        power = np.concatenate([power, np.zeros((len(power), pad), np.float32)], axis=1)
        counts = np.append(counts, np.zeros(pad, np.int32))
    parts = [counts[i::factor] for i in range(factor)]
    group_counts = np.sum(parts, axis=0, dtype=np.int32)
    # The usual case, equal counts: a plain mean, summed column after column (element-wise, so
    # the same bits whatever the arrays' layout) and scaled by 1/factor, exact for a power of two.
    total = power[:, 0::factor]
    for i in range(1, factor):
        total = total + power[:, i::factor]
    mean = total * np.float32(1 / factor)
    uneven = np.flatnonzero(np.any(np.not_equal(parts[1:], parts[0]), axis=0)) if factor > 1 else []
    if len(uneven):
        # Weighted by counts in float64; a column with no frame adds nothing. Only these groups are
        # redone, so a column never depends on which other columns were reduced in the same call.
        weighted = np.zeros((len(power), len(uneven)))
        for i, part in enumerate(parts):
            w = part[uneven].astype(np.float64)
            weighted = weighted + np.where(w > 0, power[:, factor * uneven + i], 0.0) * w
        mean[:, uneven] = weighted / group_counts[uneven]
    return mean, group_counts


def reduce_max(peak: np.ndarray, factor: int) -> np.ndarray:
    """Maximum of groups of ``factor`` consecutive columns, ignoring NaN.

    Parameters
    ----------
    peak : ndarray, float32, shape (..., n_freq, n)

    Returns
    -------
    peak : ndarray, float32, shape (..., n_freq, ceil(n / factor))
        A short last group stands as it is; a group of NaN columns stays NaN.
    """
    pad = -peak.shape[-1] % factor
    if pad:
        peak = np.concatenate([peak, np.full((*peak.shape[:-1], pad), np.nan, np.float32)], axis=-1)
    top = peak[..., 0::factor]
    for i in range(1, factor):
        top = np.fmax(top, peak[..., i::factor])
    return top


def next_level(
    power: np.ndarray, peak: np.ndarray, counts: np.ndarray, factor: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The next level's columns as a store of format 2 keeps them: mean, max and frame counts of groups.

    ``power`` and ``peak`` are a level's columns as stored; the mean keeps
    :data:`~data_access.store.MEAN_BITS` mantissa bits, the max
    :data:`~data_access.store.MAX_BITS`. Built from stored columns only, a level
    is the same bits whether it was built in one pass or again from disk.
    """
    mean, group_counts = reduce(power, counts, factor)
    top = reduce_max(peak, factor)
    return keep_bits(mean, MEAN_BITS, inplace=True), keep_bits(top, MAX_BITS, inplace=True), group_counts


def rebuild_levels(
    store: StoreWriter,
    lengths: list[int],
    factor: int,
    *,
    kept: list[int] | None = None,
    chunk: int = TIME_CHUNK,
) -> None:
    """Rewrite levels ``1..N``, and level 0's frame counts, from level 0 as stored.

    Each level is read back from disk ``factor * chunk`` columns at a time and
    reduced into one chunk of the level above, so memory is ``factor`` chunks whatever the
    length. A resumed ingest rebuilds every level; an append keeps the columns
    no new frame reaches and rebuilds each level from its first changed chunk.

    Parameters
    ----------
    store : StoreWriter
        A store whose level-0 ``power`` is complete.
    lengths : list of int
        Columns per level, from :func:`level_lengths`.
    factor : int
        The pyramid's factor.
    kept : list of int, optional
        Columns of each level to leave as they are, a multiple of ``chunk``
        (level 0's frame counts are rewritten from ``factor * kept[1]``); by
        default none.
    chunk : int, default: TIME_CHUNK
        The store's columns per chunk along time (a multiple of ``factor``).
    """
    kept = kept or [0] * len(lengths)
    for k in range(len(lengths)):
        up = k + 1 < len(lengths)
        if k and not up:
            break
        start = factor * kept[k + 1] if up else kept[0]  # first column of level k to read
        own = _CountBuffer(start)
        above = _CountBuffer(start // factor)
        for a in range(start, lengths[k], factor * chunk):
            b = min(a + factor * chunk, lengths[k])
            power = store.read(k, "power", a, b)
            if k == 0:  # level 0 keeps no max, and its counts are whether a frame is valid
                peak, counts = power, frame_counts(power)
                own.push(counts, lambda at, c: store.write_counts(0, at, c))
            else:
                peak, counts = store.read(k, "power_max", a, b), store.read(k, "frame_count", a, b)
            if up:
                mean, top, group_counts = next_level(power, peak, counts, factor)
                store.write_power(k + 1, a // factor, mean, top)
                above.push(group_counts, lambda at, c, level=k + 1: store.write_counts(level, at, c))
        own.flush(lambda at, c: store.write_counts(0, at, c))
        above.flush(lambda at, c, level=k + 1: store.write_counts(level, at, c))


class _Level:
    """One level's columns waiting to fill a chunk, in buffers allocated once."""

    def __init__(self, chunk: int) -> None:
        self.chunk = chunk
        self.power: np.ndarray | None = None  # ([n_channels,] n_freq, chunk) mean, allocated at the first push
        self.peak: np.ndarray | None = None  # ([n_channels,] n_freq, chunk) max
        self.counts: np.ndarray | None = None  # ([n_channels,] chunk)
        self.fill = 0  # columns in the buffer
        self.start = 0  # level column of the buffer's first column


class PyramidBuilder:
    """Builds levels ``1..N`` from level-1 columns pushed in time order.

    Parameters
    ----------
    lengths : list of int
        Columns per level, from :func:`level_lengths`.
    write_power : callable
        ``write_power(level, start, power, peak)`` with the mean and the max
        of power, each of shape ``(n_freq, n)`` (``(n_channels, n_freq, n)``
        for a multichannel store); called
        with whole ``chunk`` blocks except at a level's end.
    write_counts : callable
        ``write_counts(level, start, counts)``; called for every level including 0.
    factor : int
        The pyramid's factor.
    chunk : int, default: TIME_CHUNK
        Columns per write along time (a multiple of ``factor``, so groups never straddle writes).
    """

    def __init__(
        self,
        lengths: list[int],
        write_power: Callable[[int, int, np.ndarray, np.ndarray], None],
        write_counts: Callable[[int, int, np.ndarray], None],
        *,
        factor: int,
        chunk: int = TIME_CHUNK,
    ) -> None:
        if chunk < factor or chunk % factor:
            raise ValueError(f"chunk={chunk} must be a multiple of the pyramid's factor {factor}")
        self.factor = factor
        self.chunk = chunk
        self.lengths = lengths
        self.write_power = write_power
        self.write_counts = write_counts
        self._levels = [_Level(chunk) for _ in lengths]
        self._counts = [_CountBuffer() for _ in lengths]

    def push_level0_counts(self, counts: np.ndarray) -> None:
        """Frame counts (0 or 1) of the next level-0 columns, shape ``(n,)`` or ``(n_channels, n)``."""
        self._push_counts(0, counts)

    def push(self, level: int, power: np.ndarray, peak: np.ndarray, counts: np.ndarray) -> None:
        """The next columns of ``level`` (>= 1): mean and max of power, ``([n_channels,] n_freq, n)``."""
        buf = self._levels[level]
        if buf.power is None:
            buf.power = np.empty((*power.shape[:-1], self.chunk), dtype=np.float32)
            buf.peak = np.empty_like(buf.power)
            buf.counts = np.zeros((*counts.shape[:-1], self.chunk), dtype=np.int32)
        done, n = 0, counts.shape[-1]
        while done < n:
            take = min(self.chunk - buf.fill, n - done)
            buf.power[..., buf.fill : buf.fill + take] = power[..., done : done + take]
            buf.peak[..., buf.fill : buf.fill + take] = peak[..., done : done + take]
            buf.counts[..., buf.fill : buf.fill + take] = counts[..., done : done + take]
            buf.fill += take
            done += take
            if buf.fill == self.chunk:
                self._emit(level)

    def finish(self) -> None:
        """Write what is left at every level, finest first."""
        for level in range(1, len(self.lengths)):
            if self._levels[level].fill:
                self._emit(level)
        for level, cbuf in enumerate(self._counts):
            cbuf.flush(lambda start, c, level=level: self.write_counts(level, start, c))
        for level in range(1, len(self.lengths)):
            if self._levels[level].start != self.lengths[level]:
                raise RuntimeError(
                    f"pyramid level {level} got {self._levels[level].start} of {self.lengths[level]} columns"
                )

    def _emit(self, level: int) -> None:
        """Write the buffered columns of ``level`` and pass them on, reduced, to the next."""
        buf = self._levels[level]
        n = buf.fill
        # A partial (last) chunk is copied so the writer gets contiguous memory.
        power = buf.power if n == self.chunk else np.ascontiguousarray(buf.power[..., :n])
        peak = buf.peak if n == self.chunk else np.ascontiguousarray(buf.peak[..., :n])
        counts = buf.counts[..., :n].copy()
        self.write_power(level, buf.start, power, peak)
        self._push_counts(level, counts)
        buf.start += n
        buf.fill = 0
        if level + 1 < len(self.lengths):
            self.push(level + 1, *next_level(power, peak, counts, self.factor))

    def _push_counts(self, level: int, counts: np.ndarray) -> None:
        self._counts[level].push(counts, lambda start, c: self.write_counts(level, start, c))


class _CountBuffer:
    """Frame counts of one level from column ``start`` on, written in ``VECTOR_CHUNK`` pieces."""

    def __init__(self, start: int = 0) -> None:
        self.parts: list[np.ndarray] = []  # each ([n_channels,] n)
        self.length = 0
        self.start = start

    def push(self, counts: np.ndarray, write: Callable[[int, np.ndarray], None]) -> None:
        self.parts.append(np.asarray(counts, dtype=np.int32))
        self.length += counts.shape[-1]
        if self.length >= VECTOR_CHUNK:
            joined = np.concatenate(self.parts, axis=-1)
            whole = self.length // VECTOR_CHUNK * VECTOR_CHUNK
            write(self.start, joined[..., :whole])
            self.start += whole
            self.parts, self.length = [joined[..., whole:]], self.length - whole

    def flush(self, write: Callable[[int, np.ndarray], None]) -> None:
        if self.length:
            write(self.start, np.concatenate(self.parts, axis=-1))
            self.start += self.length
            self.parts, self.length = [], 0
