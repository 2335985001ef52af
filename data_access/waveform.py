"""Waveform summaries: the min, max and RMS of the samples of every level-0 column, and their pyramid.

A store of format 3 keeps, beside power, three float32 arrays per level
(:data:`~data_access.schema.WAVE_NAMES`), so a waveform strip over the
spectrogram's time axis draws at any zoom from as many columns as it has
pixels, as Audacity's summaries do:

- **Level 0**, column ``j``: the minimum, maximum and root mean square of the
  finite samples of the hop centred on frame ``j``'s centre
  (:func:`~data_access.schema.wave_span`); NaN where it holds none (a gap).
  The samples are the signal the store transforms: the mean of the channels
  for a ``mean`` store, each channel for a store of every channel. Every
  segment lies inside its own frame, so an ingest task summarises the samples
  it read for its frames (:func:`summarise`) and writes these columns with its
  power, before its block counts as finished.
- **Level k >= 1**, column ``j``: the reduction of columns ``j * F .. (j + 1) * F - 1``
  of level ``k - 1`` as stored (``F`` the pyramid's factor): the minimum of the
  minima and the maximum of the maxima (NaN ignored), and the root of the mean
  of the squared RMS over the columns that are not NaN (:func:`reduce_wave`).
  Built from level 0 as stored, once level 0 is complete
  (:func:`build_wave_levels`), ``F`` chunks at a time, so a store built in
  pieces equals one built at once, bit for bit.

Values are float32, stored exactly: min and max are samples themselves, and the
RMS is computed in float64 (the squares of float32 samples are exact in it) and
rounded once to float32.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from data_access.audio import locate_source
from data_access.errors import SourceNotFoundError
from data_access.schema import WAVE_NAMES, wave_span
from data_access.sources import AudioSource, Timeline, reopen_source
from data_access.stft import StftConfig
from data_access.store import VECTOR_CHUNK, StoreWriter

Wave = tuple[np.ndarray, np.ndarray, np.ndarray]

#: Rows summed at a time by :func:`summarise`: bounds its float64 buffer to about 1 MiB at hop 2048.
_ROWS = 64


def summarise(samples: np.ndarray, config: StftConfig, n_columns: int) -> Wave:
    """Min, max and RMS of the segments of ``n_columns`` consecutive level-0 columns.

    Parameters
    ----------
    samples : ndarray, float32, shape (n,) or (n, n_channels)
        The samples of those columns' frames, from the first frame's first
        sample on (:meth:`~data_access.stft.StftConfig.frame_span`): what an
        ingest task reads for its block. NaN where there is no data.
    config : StftConfig
    n_columns : int

    Returns
    -------
    min, max, rms : ndarray, float32, shape (n_columns,) or (n_channels, n_columns)
        Over the finite samples of each segment; NaN for a segment with none.
        Each channel is summarised exactly as a single-channel store's.
    """
    first, last = wave_span(config, 0, n_columns)
    if samples.ndim == 2:
        parts = [summarise(np.ascontiguousarray(samples[:last, c]), config, n_columns) for c in range(samples.shape[1])]
        return tuple(np.stack(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]
    hop = config.hop_length
    rows = samples[first:last].reshape(n_columns, hop)
    lo, hi, count = rows.min(axis=1), rows.max(axis=1), np.full(n_columns, hop)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):  # (a NaN or infinite sample reaches min or max)
        # Infinite samples count as missing too, as they make their frames gaps.
        finite = np.isfinite(rows)
        kept = np.where(finite, rows, np.float32(np.nan))
        lo, hi, count = np.fmin.reduce(kept, axis=1), np.fmax.reduce(kept, axis=1), finite.sum(axis=1)
        rows = np.where(finite, rows, np.float32(0))
    squares = np.empty(n_columns)
    buffer = np.empty((min(_ROWS, n_columns), hop))
    for a in range(0, n_columns, _ROWS):
        b = min(a + _ROWS, n_columns)
        # Products of float32 samples are exact in float64; each row is summed on its own (pairwise),
        # the same bits whatever block it is in.
        np.multiply(rows[a:b], rows[a:b], out=buffer[: b - a], dtype=np.float64)
        squares[a:b] = buffer[: b - a].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(squares / count).astype(np.float32)  # 0 / 0: NaN, a gap
    return lo.astype(np.float32), hi.astype(np.float32), rms


def reduce_wave(wave: Wave, factor: int) -> Wave:
    """The next level's columns: min of min, max of max and RMS through the mean of squares, of groups of ``factor``.

    Parameters
    ----------
    wave : (min, max, rms), each float32, shape (..., n)
    factor : int

    Returns
    -------
    (min, max, rms), each float32, shape (..., ceil(n / factor))
        A short last group stands as it is; NaN columns are left out, and a group
        of NaN columns is NaN. Summed column after column (element-wise), so a
        group's result never depends on the other groups or on the arrays' layout.
    """
    lo, hi, rms = wave
    pad = -lo.shape[-1] % factor
    if pad:
        lo, hi, rms = (np.concatenate([x, np.full((*x.shape[:-1], pad), np.nan, np.float32)], axis=-1) for x in wave)
    low, high = lo[..., 0::factor], hi[..., 0::factor]
    total = np.zeros(low.shape)
    count = np.zeros(low.shape)
    for i in range(factor):
        if i:
            low, high = np.fmin(low, lo[..., i::factor]), np.fmax(high, hi[..., i::factor])
        part = rms[..., i::factor].astype(np.float64)
        valid = ~np.isnan(part)
        total += np.where(valid, part * part, 0.0)
        count += valid
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(total / count).astype(np.float32)
    return low.astype(np.float32), high.astype(np.float32), root


def read_wave(timeline: Timeline, config: StftConfig, start: int, stop: int) -> Wave:
    """Level-0 waveform columns ``start..stop-1`` of a timeline, read as an ingest task reads them."""
    first, last = config.frame_span(start, stop)
    return summarise(timeline.read(first, last), config, stop - start)


def write_level0_wave(
    store: StoreWriter, timeline: Timeline, config: StftConfig, start: int, stop: int, chunk: int
) -> None:
    """Compute and write level-0 waveform columns ``start..stop-1`` (``start`` a multiple of ``chunk``), in parallel.

    Each block of ``chunk`` columns is read and summarised as the ingest task of
    that block would (:func:`read_wave`), so the columns equal a fresh ingest's.
    """

    def one(a: int) -> None:
        store.write_wave(0, a, read_wave(timeline, config, a, min(a + chunk, stop)))

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        # Bounded: a few blocks in flight per thread, not every block's future at once.
        blocks = range(start, stop, chunk)
        step = 4 * (os.cpu_count() or 1)
        for i in range(0, len(blocks), step):
            list(pool.map(one, blocks[i : i + step]))


def build_wave_levels(
    store: StoreWriter,
    lengths: Sequence[int],
    factor: int,
    *,
    kept: Sequence[int] | None = None,
    chunk: int = VECTOR_CHUNK,
) -> None:
    """Write the waveform of levels ``1..N`` from level 0 as stored.

    Level ``k + 1`` is built from level ``k`` as stored, ``factor * chunk``
    columns read at a time into one chunk of the level above: memory is a few
    chunks whatever the recording's length.

    Parameters
    ----------
    store : StoreWriter
        A store whose level-0 waveform is complete.
    lengths : sequence of int
        Columns per level (:func:`~data_access.pyramid.level_lengths`).
    factor : int
        The pyramid's factor.
    kept : sequence of int, optional
        Columns of each level ``k >= 1`` already in place (copied from the store
        appended to), each a multiple of ``chunk`` whose groups lie in level
        ``k - 1``'s unchanged columns (:attr:`~data_access.plan.Plan.wave_kept`);
        by default none. ``kept[0]`` is not used.
    chunk : int, default: VECTOR_CHUNK
        Columns per chunk of the levels above 0.
    """
    kept = list(kept or [0] * len(lengths))
    for k in range(1, len(lengths)):
        for a in range(kept[k], lengths[k], chunk):
            b = min(a + chunk, lengths[k])
            below = tuple(store.read(k - 1, name, a * factor, min(b * factor, lengths[k - 1])) for name in WAVE_NAMES)
            store.write_wave(k, a, reduce_wave(below, factor))


def wave_kept(
    kept0: int, n_levels: int, factor: int, *, base_levels: int, chunk: int = VECTOR_CHUNK
) -> tuple[int, ...]:
    """Waveform columns of each level an append keeps: whole ``chunk``s of groups of unchanged columns below.

    ``kept0`` is level 0's (the first level-0 column computed again); level
    ``k >= 1`` keeps ``(kept[k - 1] // factor) // chunk * chunk`` columns, and
    none at a level the store appended to does not have.
    """
    kept = [kept0]
    for k in range(1, n_levels):
        kept.append((kept[-1] // factor) // chunk * chunk if k < base_levels else 0)
    return tuple(kept)


# --------------------------------------------------------------------- the recordings
def recorded_timeline(
    records: Sequence[Mapping[str, object]],
    channel: object,
    *,
    audio_root: str | os.PathLike | None = None,
    store_folder: Path | None = None,
) -> Timeline:
    """The timeline a store was ingested from: its recorded sources, found and checked unchanged, at their offsets.

    Files are looked for as :func:`~data_access.audio.locate_source` does (their
    recorded path, then under ``audio_root``) and opened by
    :func:`~data_access.sources.reopen_source`.

    Parameters
    ----------
    records : sequence of mapping
        The store's ``sources`` root attribute, parsed.
    channel : int, "mean" or "all"
        The store's ``channel`` attribute.

    Raises
    ------
    SourceNotFoundError
        The store lists no sources, or one is nowhere to be found (the message names it).
    FormatError
        A source has changed since it was ingested.
    """
    if not records:
        raise SourceNotFoundError("it lists no source files")
    try:
        folder = Path(os.path.commonpath([str(Path(str(r["path"])).parent) for r in records]))
    except ValueError:  # relative and absolute paths mixed
        folder = None
    sources: list[AudioSource] = []
    for record in records:
        path = locate_source(record, folder=folder, audio_root=audio_root, store_folder=store_folder)
        if path is None:
            where = (
                f"nor under {str(audio_root)!r}" if audio_root else "pass --audio-root DIR (audio_root=) if it moved"
            )
            raise SourceNotFoundError(
                f"its source {Path(str(record['path'])).name!r} is not at {str(record['path'])!r} ({where})"
            )
        sources.append(reopen_source(record, path=path))
    stored = str(channel)
    return Timeline(
        sources=tuple(sources),
        offsets=tuple(int(r["offset"]) for r in records),
        channel=stored if stored in ("mean", "all") else int(stored),
    )
