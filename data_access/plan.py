"""An ingest worked out before anything is read or written: which blocks, which columns kept, which job.

Pure: :func:`plan_ingest` takes numbers and plain records and returns a
:class:`Plan`, with no file, store or clock touched, so every choice an ingest
makes (the pyramid's levels, the columns an append keeps, the blocks left to
compute after an interruption, when the pyramid can be built in one pass) is
unit-tested on its own (``tests/test_plan.py``). :mod:`data_access.ingest`
gathers the facts (the timeline, the files' sizes, the store appended to), runs
the plan's blocks on dask, commits the store and reports.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from data_access.pyramid import level_lengths
from data_access.schema import FORMAT_VERSION, PYRAMID_FACTOR, stft_attrs
from data_access.stft import StftConfig
from data_access.waveform import wave_kept


@dataclass(frozen=True)
class Plan:
    """What an ingest computes and writes.

    Attributes
    ----------
    n_frames : int
        Level-0 frames of the whole timeline.
    time_chunk : int
        Frames per block and per chunk along time, a multiple of ``factor``.
    factor : int
        The pyramid's factor.
    lengths : tuple of int
        Columns of each level (:func:`~data_access.pyramid.level_lengths`).
    kept : tuple of int
        Columns of each level copied unchanged from the store appended to:
        whole chunks that no new frame reaches (all 0 for a new store). Level
        ``k + 1``'s kept columns never reach past level ``k``'s, so every column
        above a changed one is rebuilt.
    wave_kept : tuple of int
        Waveform columns of each level copied unchanged: level 0's are
        ``kept[0]`` if the store appended to has a waveform, else 0 (its kept
        columns' waveform is computed from the recordings); above, whole
        ``VECTOR_CHUNK``s of groups of unchanged columns below
        (:func:`~data_access.waveform.wave_kept`).
    fingerprint : dict
        The job as plain JSON values: a partial store is resumed only by a job
        with the same fingerprint.
    """

    n_frames: int
    time_chunk: int
    factor: int
    lengths: tuple[int, ...]
    kept: tuple[int, ...]
    wave_kept: tuple[int, ...]
    fingerprint: dict = field(compare=True)

    @property
    def blocks(self) -> range:
        """First frames of the level-0 blocks to compute (a range: O(1) whatever the span)."""
        return range(self.kept[0], self.n_frames, self.time_chunk)

    def block_index(self, first: int) -> int:
        """The number of the block starting at frame ``first`` (its record in a partial store)."""
        return first // self.time_chunk

    def todo(self, finished: Collection[int]) -> Iterator[tuple[int, int]]:
        """``(first, stop)`` frames of every block not among ``finished`` (block numbers), in time order."""
        for a in self.blocks:
            if self.block_index(a) not in finished:
                yield a, min(a + self.time_chunk, self.n_frames)

    def frames_done(self, finished: Collection[int]) -> int:
        """Level-0 frames already in place: those kept, and those of the finished blocks."""
        return self.kept[0] + sum(min(self.time_chunk, self.n_frames - i * self.time_chunk) for i in finished)

    def in_pass(self, finished: Collection[int]) -> bool:
        """Whether levels ``1..N`` can be built as the blocks stream past, in one pass.

        Only when every block is computed, in order, from the first: otherwise
        (a resumed ingest, an append that keeps columns) they are rebuilt from
        level 0 on disk once it is complete.
        """
        return not finished and not any(self.kept)


def plan_ingest(
    n_frames: int,
    time_chunk: int,
    *,
    job: Mapping[str, object],
    keep: int = 0,
    base_levels: int = 0,
    base_factor: int = PYRAMID_FACTOR,
    base_waveform: bool = True,
    factor: int = PYRAMID_FACTOR,
) -> Plan:
    """Plan an ingest of ``n_frames`` frames in blocks of ``time_chunk``.

    Parameters
    ----------
    n_frames, time_chunk : int
    job : mapping
        The job's identity (from :func:`job_record`), kept as the fingerprint.
    keep : int
        Level-0 frames an append takes unchanged from the store it extends
        (the frames that end before the first changed sample); 0 for a new store.
    base_levels, base_factor : int
        Levels of that store and its pyramid's factor: only a pyramid of the
        same factor keeps its levels' columns (a format-1 store's halving
        pyramid is rebuilt whole; its level 0 is kept).
    base_waveform : bool, default: True
        Whether that store holds the waveform summaries (format 3): only then
        are its waveform columns kept.
    factor : int
        The pyramid's factor of the store written.
    """
    if time_chunk < factor or time_chunk % factor:
        raise ValueError(f"time_chunk={time_chunk} must be a multiple of the pyramid's factor {factor}")
    lengths = tuple(level_lengths(n_frames, factor))
    same_pyramid = base_factor == factor
    kept = tuple(
        (keep // factor**k) // time_chunk * time_chunk if k == 0 or (same_pyramid and k < base_levels) else 0
        for k in range(len(lengths))
    )
    waves = (
        wave_kept(kept[0], len(lengths), factor, base_levels=base_levels if same_pyramid else 1)
        if base_waveform
        else (0,) * len(lengths)
    )
    return Plan(n_frames, time_chunk, factor, lengths, kept, waves, json.loads(json.dumps(dict(job))))


def job_record(
    *,
    software: str,
    config: StftConfig,
    sample_rate: float,
    channel: object,
    format: str,
    time_chunk: int,
    sources: Sequence[Mapping[str, object]],
    append_to: Mapping[str, object] | None,
) -> dict:
    """An ingest's identity as plain JSON values: its fingerprint.

    ``sources`` are the timeline's source records with each file's ``size`` and
    ``mtime_ns``; ``append_to`` names the store extended (its path, creation time
    and frames), or None.
    """
    return {
        "software": software,
        "format_version": FORMAT_VERSION,  # (a partial of an older format is not resumed)
        "stft": stft_attrs(config),
        "sample_rate": sample_rate,
        "channel": str(channel),
        "format": format,
        "time_chunk": time_chunk,
        "sources": [dict(record) for record in sources],
        "append_to": None if append_to is None else dict(append_to),
    }
