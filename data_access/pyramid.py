"""The multiscale pyramid: each level halves the time axis by the mean of power.

Beside the mean, every level above 0 keeps the maximum of power over the same
frames (``power_max``), so a 5 ms click still shows when a whole day is on one
screen, where the mean would dilute it ten-thousandfold.

Level ``k`` column ``j`` is the mean of the valid (non-NaN) full-resolution
frames ``j * 2**k .. (j + 1) * 2**k - 1``. Each level keeps ``frame_count``, the
number of valid frames behind every column, so a level is built exactly from
the one below it (a count-weighted mean of pairs) even where gaps leave some
frames NaN. The mean of power commutes with sums over frequency, so a band's
energy read from any level is exact for that level's resolution.

:class:`PyramidBuilder` builds levels ``1..N`` while level 0 streams past in
time order, holding at most about one chunk per level: memory grows with the
logarithm of the recording's length, never with the length itself.
:func:`rebuild_levels` builds them again from level 0 as stored, level by
level, for an ingest that was resumed or appended to. Each pair of columns is
halved on its own, from the columns as stored (:func:`next_level`: rounded to the
mantissa bits the store keeps), so both give the same bits whatever pieces they
work in.

A multichannel store (``channel="all"``) has a leading ``channel`` axis on
power, ``(channel, freq, time)``, and on frame counts, ``(channel, time)``:
every function here takes it, and halves each channel exactly as a mono
store's, so channel ``k`` is bit for bit the store of channel ``k`` alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from data_access.store import MAX_BITS, MEAN_BITS, TIME_CHUNK, VECTOR_CHUNK, StoreWriter, keep_bits

#: The coarsest level has at most this many columns: the whole recording on one screen.
TOP_FRAMES = 2048


def level_lengths(n_frames: int, *, top: int = TOP_FRAMES) -> list[int]:
    """Columns of each level, from ``n_frames`` at level 0 down to ``<= top``."""
    lengths = [n_frames]
    while lengths[-1] > top:
        lengths.append(-(-lengths[-1] // 2))
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


def halve(power: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average pairs of consecutive columns, weighted by their frame counts.

    Parameters
    ----------
    power : ndarray, float32, shape (n_freq, n) or (n_channels, n_freq, n)
        Columns along the last axis; NaN where a column has no valid frame.
    counts : ndarray, int, shape (n,) or (n_channels, n)
        Valid full-resolution frames behind each column (of each channel).

    Returns
    -------
    power : ndarray, float32, shape (n_freq, ceil(n / 2)) or (n_channels, n_freq, ceil(n / 2))
    counts : ndarray, int32, shape (ceil(n / 2),) or (n_channels, ceil(n / 2))
        An odd last column stands alone.
    """
    if power.ndim == 3:  # each channel on its own, as a mono store halves it
        means, pairs = zip(*(halve(p, c) for p, c in zip(power, counts, strict=True)), strict=True)
        return np.stack(means), np.stack(pairs)
    counts = np.asarray(counts, dtype=np.int32)
    if len(counts) % 2:
        power = np.concatenate([power, np.zeros((len(power), 1), np.float32)], axis=1)
        counts = np.append(counts, np.int32(0))
    c0, c1 = counts[0::2], counts[1::2]
    pair_counts = c0 + c1
    mean = (power[:, 0::2] + power[:, 1::2]) * np.float32(0.5)  # the usual case, equal counts: a plain mean
    uneven = np.flatnonzero(c0 != c1)
    if len(uneven):
        # Weighted by counts in float64; a column with no frame adds nothing. Only these pairs are
        # redone, so a column never depends on which other columns were halved in the same call.
        w0, w1 = c0[uneven].astype(np.float64), c1[uneven].astype(np.float64)
        p0 = np.where(w0 > 0, power[:, 2 * uneven], 0.0) * w0
        p1 = np.where(w1 > 0, power[:, 2 * uneven + 1], 0.0) * w1
        mean[:, uneven] = (p0 + p1) / (w0 + w1)
    return mean, pair_counts


def halve_max(peak: np.ndarray) -> np.ndarray:
    """Maximum of pairs of consecutive columns, ignoring NaN.

    Parameters
    ----------
    peak : ndarray, float32, shape (..., n_freq, n)

    Returns
    -------
    peak : ndarray, float32, shape (..., n_freq, ceil(n / 2))
        An odd last column stands alone; a pair of NaN columns stays NaN.
    """
    if peak.shape[-1] % 2:
        return np.concatenate([np.fmax(peak[..., 0:-1:2], peak[..., 1::2]), peak[..., -1:]], axis=-1)
    return np.fmax(peak[..., 0::2], peak[..., 1::2])


def next_level(power: np.ndarray, peak: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The next level's columns as a store of format 2 keeps them: mean, max and frame counts of pairs.

    ``power`` and ``peak`` are a level's columns as stored; the mean keeps
    :data:`~data_access.store.MEAN_BITS` mantissa bits, the max
    :data:`~data_access.store.MAX_BITS`. Built from stored columns only, a level
    is the same bits whether it was built in one pass or again from disk.
    """
    mean, pair_counts = halve(power, counts)
    return keep_bits(mean, MEAN_BITS, inplace=True), keep_bits(halve_max(peak), MAX_BITS, inplace=True), pair_counts


def rebuild_levels(
    store: StoreWriter, lengths: list[int], *, kept: list[int] | None = None, chunk: int = TIME_CHUNK
) -> None:
    """Rewrite levels ``1..N``, and level 0's frame counts, from level 0 as stored.

    Each level is read back from disk ``2 * chunk`` columns at a time and halved
    into one chunk of the level above, so memory is two chunks whatever the
    length. A resumed ingest rebuilds every level; an append keeps the columns
    no new frame reaches and rebuilds each level from its first changed chunk.

    Parameters
    ----------
    store : StoreWriter
        A store whose level-0 ``power`` is complete.
    lengths : list of int
        Columns per level, from :func:`level_lengths`.
    kept : list of int, optional
        Columns of each level to leave as they are, a multiple of ``chunk``
        (level 0's frame counts are rewritten from ``2 * kept[1]``); by
        default none.
    chunk : int, default: TIME_CHUNK
        The store's columns per chunk along time (even).
    """
    kept = kept or [0] * len(lengths)
    for k in range(len(lengths)):
        up = k + 1 < len(lengths)
        if k and not up:
            break
        start = 2 * kept[k + 1] if up else kept[0]  # first column of level k to read
        own = _CountBuffer(start)
        above = _CountBuffer(start // 2)
        for a in range(start, lengths[k], 2 * chunk):
            b = min(a + 2 * chunk, lengths[k])
            power = store.read(k, "power", a, b)
            if k == 0:  # level 0 keeps no max, and its counts are whether a frame is valid
                peak, counts = power, frame_counts(power)
                own.push(counts, lambda at, c: store.write_counts(0, at, c))
            else:
                peak, counts = store.read(k, "power_max", a, b), store.read(k, "frame_count", a, b)
            if up:
                mean, top, pair_counts = next_level(power, peak, counts)
                store.write_power(k + 1, a // 2, mean, top)
                above.push(pair_counts, lambda at, c, level=k + 1: store.write_counts(level, at, c))
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
    chunk : int, default: TIME_CHUNK
        Columns per write along time (even, so pairs never straddle writes).
    """

    def __init__(
        self,
        lengths: list[int],
        write_power: Callable[[int, int, np.ndarray, np.ndarray], None],
        write_counts: Callable[[int, int, np.ndarray], None],
        *,
        chunk: int = TIME_CHUNK,
    ) -> None:
        if chunk < 2 or chunk % 2:
            raise ValueError(f"chunk={chunk} must be an even number of columns")
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
        """Write the buffered columns of ``level`` and pass them on, halved, to the next."""
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
            self.push(level + 1, *next_level(power, peak, counts))

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
