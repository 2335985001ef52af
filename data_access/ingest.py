"""Sources -> STFT -> store, block by block, in parallel on dask; resumable, and appendable.

What an ingest does is planned first, purely (:mod:`data_access.plan`: the
levels, the blocks, the columns an append keeps, the job's fingerprint); this
module gathers the facts the plan needs, runs its blocks on dask, builds the
pyramid, commits the store and reports.

Level 0 is cut into blocks of :data:`~data_access.store.TIME_CHUNK` frames,
one dask task each: a task reads just the samples its frames cover, computes
their power and their waveform summaries (:mod:`data_access.waveform`: min,
max and RMS of the hop around each frame's centre), writes its own
chunk-aligned region of level 0 (regions never overlap, so workers need no
locks) and hands back the block reduced to level 1 (mean and max of power). The
calling process builds the coarser levels from those pieces in time order, in a
thread of its own so it overlaps with the FFTs, and once level 0 is complete the
waveform's levels from level 0 on disk. Peak memory is a few blocks per worker
plus about one chunk per level, whatever the length.

With ``channel="all"`` every task computes the power of every channel of its
frames (each channel exactly as a single-channel ingest does) and writes the
``(channel, freq, time)`` region; blocks, the pyramid, resuming and appending
work as for one channel, with memory times the number of channels.

Resuming
--------
The store is built in a hidden ``.NAME.partial`` directory beside it, which
replaces ``NAME`` only once complete, so an interrupted ingest never touches an
existing store. The partial also holds ``.ingest/job.json``, the job's
fingerprint (STFT parameters, sample rate, channel, format, time chunk, each
source's path, size, modification time and place on the timeline, and the
store appended to), written once the empty arrays exist, and
``.ingest/blocks/I``, one small file per finished level-0 block holding its
sample counts, which the block's task writes only after its chunks (power and
waveform) are written
(zarr writes a chunk to a temporary file and renames it, so a chunk is whole
or absent). Running the same ingest again finds the partial: with the same
fingerprint it skips the finished blocks, computes the rest and rebuilds levels
``1..N`` from level 0 on disk (:func:`~data_access.pyramid.rebuild_levels`);
with another it logs why and starts over.

When an ingest stops, its partial is

- kept after Ctrl-C (:class:`IngestInterrupted`, whose message says how to
  resume), ``kill`` or a crash of the machine's processes, and after an
  ``OSError`` while writing (a full disk, a lost mount: raised again as an
  :class:`~data_access.AtlasError` that says to run the same command again);
- removed after an :class:`~data_access.AtlasError` (a damaged or changed
  file, a bad parameter, an unreachable scheduler) or any other exception: the
  same job would fail the same way, and a file that is repaired changes the
  fingerprint anyway.

A block's file means its chunk was handed to the operating system, which keeps
it through a killed process; it is not flushed to the disk (``fsync`` on every
block would cost a disk flush each), so a power cut may lose finished blocks.

Appending
---------
``ingest(new_files, store, append=True)`` extends a store in time. The
timeline becomes the store's sources (re-opened from their recorded paths and
start times) plus the new files, on the grid of the store's start time. Level-0
frames no new sample reaches are copied from the store, not recomputed; the
blocks from the first changed frame on are computed, and each level is rebuilt
from its first changed chunk on, from the level below it as stored. A store
without waveform summaries (format 1 or 2) gets them: its kept columns' are
computed from its recordings, which an append re-opens anyway. Copying
costs reading and writing the old store once; the rebuild costs about twice
the new frames. The appended store is built in a partial like any other, so a
failed append leaves the store as it was.

Sample quality
--------------
Each task counts, among the samples it owns (from its first frame's start to
the next block's, or to its last frame's end), the ones the files hold as NaN
or infinite, and the clipped ones, ``|x| >= CLIP_LEVEL``. Samples missing
(between files, or inside a MiniSEED file) read as NaN too and are not
counted: :meth:`~data_access.sources.Timeline.missing` says where they are.
Raw counts (MiniSEED) have no full scale, so nothing counts as clipped there.
With ``channel="all"`` the samples of every channel are counted.
The totals are logged as warnings and kept as root attributes
``nonfinite_samples`` and ``clipped_samples``. A frame holding a NaN or
infinite sample is NaN, a gap, never infinite.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import dask
import numpy as np
import zarr
from tqdm import tqdm  # plain text: no ipywidgets needed in a notebook

from data_access import __version__
from data_access.calibration import Calibration
from data_access.errors import AtlasError, FormatError, ParameterError, SourceNotFoundError
from data_access.plan import Plan, job_record, plan_ingest
from data_access.pyramid import PyramidBuilder, frame_counts, next_level, rebuild_levels
from data_access.schema import (
    PYRAMID_FACTOR,
    WAVE_NAMES,
    check_location,
    column_times,
    power_attrs,
    read_calibration,
    read_location,
    read_pyramid_factor,
    read_stft,
    root_attrs,
    stft_attrs,
)
from data_access.sources import (
    AudioSource,
    MiniSeedSource,
    Timeline,
    reopen_source,
)
from data_access.stft import StftConfig, power_spectrogram
from data_access.store import (
    LEVEL0_BITS,
    TIME_CHUNK,
    LevelSpec,
    StoreFormat,
    StoreReader,
    StoreWriter,
    check_output,
    commit,
    keep_bits,
    partial_path,
)
from data_access.times import to_datetime64
from data_access.waveform import build_wave_levels, summarise, write_level0_wave

log = logging.getLogger(__name__)

#: A sample this close to full scale counts as clipped: one 16-bit step below 1.0, since a
#: 16-bit file clipped at the top holds 32767 / 32768 (1.0 - 1e-6 would count only the bottom).
CLIP_LEVEL = 1.0 - 2**-15

#: Most bytes one block's float32 samples and power may take (a worker holds a few
#: blocks, and level 0 is written a block at a time: one chunk along time). The
#: default time chunk is halved until a block fits; a time_chunk given is refused.
MAX_BLOCK_BYTES = 256 * 2**20


#: Blocks given to each worker per batch of tasks (see _run_blocks).
BLOCKS_PER_WORKER = 4


class IngestInterrupted(KeyboardInterrupt):
    """Ctrl-C during an ingest; the message says what was kept and how to resume."""


def timeline_column_times(timeline: Timeline, config: StftConfig, level: int, start: int, stop: int) -> np.ndarray:
    """Centre times of columns ``start..stop-1`` of a level of ``timeline``'s store (see schema.column_times)."""
    return column_times(timeline.start_time, timeline.sample_rate, config, level, start, stop, factor=PYRAMID_FACTOR)


@dataclasses.dataclass(frozen=True)
class _Job:
    """What one ingest writes: a timeline's spectrogram, maybe extending a store."""

    timeline: Timeline
    config: StftConfig
    path: Path
    format: StoreFormat
    time_chunk: int
    calibration: Calibration | None = None
    base: Path | None = None  # the store appended to
    keep: int = 0  # level-0 frames taken from it unchanged
    base_levels: int = 0  # levels it has
    base_factor: int = PYRAMID_FACTOR  # its pyramid's factor (2 in format 1: then only level 0 is kept)
    base_waveform: bool = True  # whether it has the waveform summaries (format 3)
    kept_quality: tuple[int, int] = (0, 0)  # (non-finite, clipped) samples those frames own
    location: tuple[float, float] | None = None  # (latitude, longitude) of the deployment

    @property
    def n_frames(self) -> int:
        return self.config.n_frames(self.timeline.n_samples)

    def plan(self) -> Plan:
        """The job's plan (:mod:`data_access.plan`), from the facts gathered here: files' sizes and times."""
        stats = [src.path.stat() for src in self.timeline.sources]
        base = None
        if self.base is not None:
            with closing(StoreReader(self.base)) as old:
                base = {"path": str(self.base), "created": old.attrs["created"], "n_frames": old.attrs["n_frames"]}
        record = job_record(
            software=__version__,
            config=self.config,
            sample_rate=self.timeline.sample_rate,
            channel=self.timeline.channel,
            format=self.format,
            time_chunk=self.time_chunk,
            sources=[
                {**record, "mtime_ns": st.st_mtime_ns}  # (the record has the size, from the opening)
                for record, st in zip(self.timeline.describe(), stats, strict=True)
            ],
            append_to=base,
        )
        return plan_ingest(
            self.n_frames,
            self.time_chunk,
            job=record,
            keep=self.keep,
            base_levels=self.base_levels,
            base_factor=self.base_factor,
            base_waveform=self.base_waveform,
        )


def ingest(
    timeline: Timeline,
    store: str | os.PathLike,
    config: StftConfig | None = None,
    *,
    format: StoreFormat | None = None,
    overwrite: bool = False,
    append: bool = False,
    scheduler: str | None = None,
    progress: bool | None = None,
    time_chunk: int | None = None,
    calibration: Calibration | None = None,
    location: tuple[float, float] | None = None,
) -> Path:
    """Compute the spectrogram of a timeline into a multiscale store.

    An interrupted ingest is resumed by calling it again with the same
    arguments (see the module's docstring).

    Parameters
    ----------
    timeline : Timeline
        From :func:`data_access.open_timeline`; with ``append``, the new files only.
    store : path-like
        Output: a Zarr directory, or a NetCDF file with ``format="netcdf"``.
    config : StftConfig, optional
        STFT parameters; default ``StftConfig()`` (n_fft 4096, hop 2048, hann),
        or with ``append`` the store's (given, they must equal the store's).
    format : {"zarr", "netcdf"}, optional
        Default "zarr", or with ``append`` the store's.
    overwrite : bool, default: False
        Replace an existing store (only once the new one is complete).
    append : bool, default: False
        Extend the existing ``store`` in time with the timeline's files, which
        must start at or after its start and share its STFT parameters, sample
        rate and channel. The result equals ingesting all the files at once;
        the store is replaced only once it is complete.
    scheduler : str, optional
        Address of a ``dask.distributed`` scheduler (``tcp://host:8786``) to
        run on; by default a local thread pool.
    progress : bool, optional
        Show a progress bar; by default only on a terminal.
    time_chunk : int, optional
        Frames per chunk along time (a multiple of 4, the pyramid's factor): the unit of work of one task and of
        one write at every level; a block's float32 samples and power may take at
        most :data:`MAX_BLOCK_BYTES`. Default 512 (halved until a block fits), or
        with ``append`` the store's.
    calibration : Calibration, optional
        Sensitivity, gain and full-scale voltage, kept in the store's root
        attributes; reads then report dB re 1 µPa. Stored power is the same
        with or without it. With ``append``, the store's calibration is kept
        unless one is given.
    location : (latitude, longitude), optional
        Where the recorder was, degrees north and east (root attribute
        ``location``: the diel map's sunrise and sunset). With ``append``, the
        store's is kept unless one is given.

    Returns
    -------
    Path
        The store written.
    """
    if format is not None and format not in ("zarr", "netcdf"):
        raise ParameterError(f"format={format!r} must be 'zarr' or 'netcdf'")
    if time_chunk is not None and (
        isinstance(time_chunk, bool)
        or not isinstance(time_chunk, int)
        or time_chunk < PYRAMID_FACTOR
        or time_chunk % PYRAMID_FACTOR
    ):
        raise ParameterError(
            f"time_chunk={time_chunk!r} must be a multiple of {PYRAMID_FACTOR} frames (the pyramid's factor)"
        )
    if location is not None:
        location = check_location(*location)
    if append:
        if overwrite:
            raise ParameterError("append and overwrite exclude each other: an append keeps the store's frames")
        job = _append_job(timeline, Path(store), config, format, time_chunk, calibration, location)
    else:
        timeline.check_span()
        config = config or StftConfig()
        job = _Job(
            timeline,
            config,
            check_output(store, overwrite=overwrite),
            format or "zarr",
            time_chunk or _default_time_chunk(config, timeline.n_channels),
            calibration,
            location=location,
        )
    _check_block_bytes(job.config, job.timeline.n_channels, job.time_chunk)
    if job.n_frames == 0:
        raise ParameterError(
            f"the recording has {timeline.n_samples} samples, fewer than n_fft={job.config.n_fft}: no whole frame"
        )
    return _build(job, job.plan(), scheduler=scheduler, progress=progress)


def _block_bytes(config: StftConfig, channels: int, frames: int) -> int:
    """Bytes of the float32 samples and power of a block of ``frames`` frames."""
    first, last = config.frame_span(0, frames)
    return 4 * channels * (last - first + frames * config.n_freq)


def _default_time_chunk(config: StftConfig, channels: int) -> int:
    """:data:`~data_access.store.TIME_CHUNK`, halved until a block fits in :data:`MAX_BLOCK_BYTES`."""
    chunk = TIME_CHUNK
    while chunk > PYRAMID_FACTOR and _block_bytes(config, channels, chunk) > MAX_BLOCK_BYTES:
        chunk //= 2
    return chunk


def _check_block_bytes(config: StftConfig, channels: int, time_chunk: int) -> None:
    """Refuse blocks of ``time_chunk`` frames that take more than :data:`MAX_BLOCK_BYTES`."""
    size = _block_bytes(config, channels, time_chunk)
    if size > MAX_BLOCK_BYTES:
        fits = _default_time_chunk(config, channels)
        advice = (
            f"pass --time-chunk {fits} (time_chunk=) or less"
            if _block_bytes(config, channels, fits) <= MAX_BLOCK_BYTES
            else "lower n_fft, or ingest fewer channels"
        )
        raise ParameterError(
            f"time_chunk={time_chunk} frames of n_fft={config.n_fft} x {channels} channel(s) make blocks of "
            f"{size / 2**20:,.0f} MiB of float32 samples and power, more than {MAX_BLOCK_BYTES // 2**20} MiB "
            f"(MAX_BLOCK_BYTES); {advice}"
        )


def _build(job: _Job, plan: Plan, *, scheduler: str | None, progress: bool | None) -> Path:
    """Carry out ``plan`` in the job's partial, resuming one left by the same job, and commit it."""
    timeline, config, chunk = job.timeline, job.config, plan.time_chunk
    lengths, kept, blocks = list(plan.lengths), list(plan.kept), plan.blocks
    partial = _Partial(partial_path(job.path))
    fingerprint = plan.fingerprint
    finished = partial.finished(fingerprint)
    attrs = root_attrs(
        timeline,
        config,
        n_frames=job.n_frames,
        n_levels=len(lengths),
        calibration=job.calibration,
        location=job.location,
    )
    try:
        if finished is None:
            shutil.rmtree(partial.path, ignore_errors=True)
            writer = StoreWriter.create(
                partial.path,
                freq=config.frequencies(timeline.sample_rate),
                levels=[LevelSpec(k, n, PYRAMID_FACTOR) for k, n in enumerate(lengths)],
                time_fn=lambda k, a, b: timeline_column_times(timeline, config, k, a, b),
                attrs=attrs,
                power_attrs=power_attrs(_raw_counts(timeline)),
                time_chunk=chunk,
                channels=timeline.channel_labels() if timeline.channel == "all" else None,
            )
            if job.base is not None:
                log.info("appending to %s: %d frames kept, %d blocks to compute", job.base, kept[0], len(blocks))
                with closing(StoreReader(job.base)) as old:
                    for level, stop in enumerate(kept):
                        writer.copy_columns(old, level, stop)
                    for level, stop in enumerate(plan.wave_kept):
                        if stop:
                            writer.copy_wave(old, level, stop)
                if plan.wave_kept[0] < kept[0]:  # a store without waveform: its kept columns' from the recordings
                    log.info("appending to %s: computing the waveform of its %d kept frames", job.base, kept[0])
                    write_level0_wave(writer, timeline, config, plan.wave_kept[0], kept[0], chunk)
            partial.start(fingerprint)
            finished = {}
        else:
            writer = StoreWriter(partial.path)
            log.warning("resuming: %d of %d blocks already written", len(finished), len(blocks))
        in_pass = plan.in_pass(finished)
        task = _BlockTask(
            timeline,
            config,
            str(partial.path),
            partial.blocks,
            chunk,
            _missing(timeline),
            not _raw_counts(timeline),
            in_pass,
        )
        builder = (
            PyramidBuilder(lengths, writer.write_power, writer.write_counts, factor=PYRAMID_FACTOR, chunk=chunk)
            if in_pass
            else None
        )
        quality = _run_blocks(
            task,
            plan.todo(finished),
            builder,
            lengths,
            scheduler=scheduler,
            progress=progress,
            initial=plan.frames_done(finished),
        )
        if not in_pass:
            rebuild_levels(writer, lengths, PYRAMID_FACTOR, kept=kept, chunk=chunk)
        build_wave_levels(writer, lengths, PYRAMID_FACTOR, kept=plan.wave_kept)
        nonfinite, clipped = np.sum([job.kept_quality, *finished.values(), quality], axis=0, dtype=np.int64)
        _warn_quality(int(nonfinite), int(clipped))
        writer.set_attrs({**attrs, "nonfinite_samples": int(nonfinite), "clipped_samples": int(clipped)})
        if job.format == "zarr":  # not to be renamed into the store; a NetCDF conversion leaves it behind
            partial.clear()
        writer.close()
    except KeyboardInterrupt:
        raise IngestInterrupted(partial.resume_hint(len(blocks))) from None
    except AtlasError:
        shutil.rmtree(partial.path, ignore_errors=True)
        raise
    except OSError as err:
        raise AtlasError(f"{_reason(err)}; {partial.resume_hint(len(blocks))}") from err
    except BaseException:
        shutil.rmtree(partial.path, ignore_errors=True)
        raise
    # Renames for Zarr; an interrupted NetCDF conversion leaves the partial and its record, for a rerun to resume.
    try:
        return commit(partial.path, job.path, format=job.format)
    except OSError as err:
        raise AtlasError(f"{_reason(err)}; {str(job.path)!r} was not replaced") from err


def _reason(err: OSError) -> str:
    """An operating-system error in a few words: what went wrong, and with which file."""
    return f"{err.strerror or err}: {err.filename!r}" if err.filename else str(err.strerror or err)


class _Partial:
    """The record, inside a ``.partial`` store, of which level-0 blocks are finished."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = path / ".ingest"
        self.blocks = self.state / "blocks"

    def finished(self, fingerprint: dict) -> dict[int, tuple[int, int]] | None:
        """Sample counts of each finished block of the same job, or None to start over."""
        if not self.path.exists():
            return None
        try:
            found = json.loads((self.state / "job.json").read_text())
        except (OSError, ValueError):
            log.warning("%s holds no record of its progress; starting over", self.path)
            return None
        if found != fingerprint:
            differ = ", ".join(k for k in fingerprint if found.get(k) != fingerprint[k])
            log.warning("%s is an unfinished ingest of another job (%s differ); starting over", self.path, differ)
            return None
        return {int(p.name): tuple(json.loads(p.read_text())) for p in self.blocks.iterdir() if p.name.isdigit()}

    def start(self, fingerprint: dict) -> None:
        """Record the job, once the arrays exist: from now on the partial can be resumed."""
        self.blocks.mkdir(parents=True)
        _write_atomic(self.state / "job.json", json.dumps(fingerprint))

    def resume_hint(self, n_blocks: int) -> str:
        """What an interrupted run leaves, and how to go on."""
        if not (self.state / "job.json").exists():
            shutil.rmtree(self.path, ignore_errors=True)
            return "nothing was changed"
        done = sum(1 for p in self.blocks.iterdir() if p.name.isdigit())
        return f"{done} of {n_blocks} blocks are kept in {str(self.path)!r}; run the same command again to resume"

    def clear(self) -> None:
        shutil.rmtree(self.state)


def _write_atomic(path: Path, text: str) -> None:
    """Write a small file whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclasses.dataclass(frozen=True, eq=False)
class _BlockTask:
    """One dask task: frames ``start..stop-1`` -> level 0 on disk, level 1 and sample counts returned."""

    timeline: Timeline
    config: StftConfig
    store: str  # the partial store's root
    marks: Path
    chunk: int
    missing: list[np.ndarray]  # per channel read, (n, 2) sample ranges with no data, which read as NaN
    full_scale: bool
    level1: bool  # return the block reduced to level 1, for the in-pass pyramid
    # Level 0's arrays, opened once per process (each opening reads its metadata: 0.6 ms, four a block).
    _arrays: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def _array(self, name: str) -> zarr.Array:
        if name not in self._arrays:
            self._arrays[name] = zarr.open_array(f"{self.store}/0/{name}", mode="r+")
        return self._arrays[name]

    def __getstate__(self) -> dict:  # (to a dask worker: without open arrays)
        return {**self.__dict__, "_arrays": {}}

    def __call__(self, start: int, stop: int):
        first, last = self.config.frame_span(start, stop)
        samples = self.timeline.read(first, last)
        power = keep_bits(_power(samples, self.config), LEVEL0_BITS, inplace=True)  # as stored: the pyramid's source
        self._array("power")[..., start:stop] = power
        # The waveform's columns lie inside these frames: no more is read for them.
        for name, values in zip(WAVE_NAMES, summarise(samples, self.config, stop - start), strict=True):
            self._array(name)[..., start:stop] = values
        # A block owns its samples up to the next block's first; the last one, all it reads.
        last_frame = stop == self.config.n_frames(self.timeline.n_samples)
        own = last if last_frame else stop * self.config.hop_length
        quality = _sample_quality(samples[: own - first], _overlap(self.missing, first, own), self.full_scale)
        _write_atomic(self.marks / str(start // self.chunk), json.dumps(quality))
        counts = frame_counts(power)
        if not self.level1:
            return counts, None, quality
        return counts, next_level(power, power, counts, PYRAMID_FACTOR), quality


def _power(samples: np.ndarray, config: StftConfig) -> np.ndarray:
    """Power of a block: ``(n_freq, n)``, or ``(n_channels, n_freq, n)`` from samples ``(n, n_channels)``."""
    if samples.ndim == 1:
        return power_spectrogram(samples, config)
    return np.stack([power_spectrogram(np.ascontiguousarray(column), config) for column in samples.T])


def _sample_quality(samples: np.ndarray, missing: int, full_scale: bool) -> tuple[int, int]:
    """(non-finite, clipped) samples the files hold, of ``samples`` of which ``missing`` are missing (NaN)."""
    nonfinite = int(np.count_nonzero(~np.isfinite(samples))) - missing
    if not full_scale:
        return nonfinite, 0
    size = np.abs(samples)
    return nonfinite, int(np.count_nonzero((size >= CLIP_LEVEL) & (size < np.inf)))


def _overlap(missing: list[np.ndarray], start: int, stop: int) -> int:
    """Samples of ``[start, stop)`` inside the ranges, shape (n, 2), of each channel, summed."""
    return sum(
        int(np.clip(np.minimum(ranges[:, 1], stop) - np.maximum(ranges[:, 0], start), 0, None).sum())
        for ranges in missing
    )


def _missing(timeline: Timeline) -> list[np.ndarray]:
    """The sample ranges with no data of each channel the timeline reads, shape (n, 2) each."""
    channels = range(timeline.n_channels) if timeline.channel == "all" else [timeline.channel]
    return [
        np.array(dataclasses.replace(timeline, channel=c).missing(), dtype=np.int64).reshape(-1, 2) for c in channels
    ]


def _count_quality(timeline: Timeline, start: int, stop: int) -> tuple[int, int]:
    """:func:`_sample_quality` of samples ``[start, stop)`` of a timeline, read a piece at a time."""
    missing = _missing(timeline)
    total = np.zeros(2, dtype=np.int64)
    for a in range(start, stop, 2**20):
        b = min(a + 2**20, stop)
        total += _sample_quality(timeline.read(a, b), _overlap(missing, a, b), not _raw_counts(timeline))
    return int(total[0]), int(total[1])


def _warn_quality(nonfinite: int, clipped: int) -> None:
    if nonfinite:
        log.warning("%d samples inside the audio files are NaN or infinite; their frames are NaN, as gaps", nonfinite)
    if clipped:
        log.warning("%d samples are clipped (|x| >= %.6f of full scale)", clipped, CLIP_LEVEL)


def _run_blocks(
    task: _BlockTask,
    blocks: Iterator[tuple[int, int]],
    builder: PyramidBuilder | None,
    lengths: list[int],
    *,
    scheduler: str | None,
    progress: bool | None,
    initial: int,
) -> np.ndarray:
    """Compute ``blocks``, feeding the builder if there is one; their (non-finite, clipped) samples summed."""
    quality = np.zeros(2, dtype=np.int64)
    run = dask.delayed(task, pure=False)
    with _scheduler(scheduler) as (get, workers), ThreadPoolExecutor(1) as pyramid_thread:
        # Several blocks per worker in each batch, so a worker that finishes early takes
        # the next block rather than waiting at the batch's end for the slowest; one batch
        # is computed while the previous one feeds the pyramid. (A batch's results are
        # level 1 only, a quarter of its blocks: memory stays a few blocks.)
        pending = None
        bar = tqdm(
            total=lengths[0],
            initial=initial,
            unit="frame",
            unit_scale=True,
            disable=(None if progress is None else not progress),
            desc="ingest",
        )
        while batch := list(itertools.islice(blocks, BLOCKS_PER_WORKER * workers)):
            results = dask.compute(*(run(a, z) for a, z in batch), scheduler=get)
            quality += np.sum([r[2] for r in results], axis=0, dtype=np.int64)
            if builder is not None:
                if pending is not None:
                    pending.result()
                pending = pyramid_thread.submit(_feed, builder, results, lengths)
            bar.update(sum(r[0].shape[-1] for r in results))
        if pending is not None:
            pending.result()
        if builder is not None:
            builder.finish()
        bar.close()
    return quality


def _feed(builder: PyramidBuilder, results, lengths: list[int]) -> None:
    for counts0, level1, _ in results:
        builder.push_level0_counts(counts0)
        if len(lengths) > 1:
            builder.push(1, *level1)


def _append_job(
    new: Timeline,
    path: Path,
    config: StftConfig | None,
    format: StoreFormat | None,
    time_chunk: int | None,
    calibration: Calibration | None,
    location: tuple[float, float] | None = None,
) -> _Job:
    """Check that ``new`` can extend the store at ``path``, and plan what to keep of it."""
    if not path.exists():
        raise SourceNotFoundError(f"no store at {str(path)!r} to append to")
    with closing(StoreReader(path)) as old:
        attrs = old.attrs
        stored = read_stft(attrs)
        kept_format = "zarr" if old.is_zarr else "netcdf"
        base_factor = read_pyramid_factor(attrs)
        base_waveform = old.has_waveform
        if time_chunk is None:  # the store's, unless a format-1 store's does not suit the pyramid
            chunk = old.time_chunk(0)
            time_chunk = chunk if chunk % PYRAMID_FACTOR == 0 else _default_time_chunk(stored, new.n_channels)
    config = config or stored

    def refuse(why: str) -> ParameterError:
        return ParameterError(f"cannot append to {str(path)!r}: {why}")

    for name, value in stft_attrs(stored).items():
        if getattr(config, name) != value:
            raise refuse(f"{name} {value} in the store, {getattr(config, name)} asked")
    if new.sample_rate != attrs["sample_rate"]:
        raise refuse(f"sample_rate {attrs['sample_rate']:g} Hz in the store, {new.sample_rate:g} Hz in the new files")
    if str(new.channel) != attrs["channel"]:
        raise refuse(f"channel {attrs['channel']} in the store, {new.channel} asked")
    if new.channel == "all" and new.n_channels != attrs["n_channels"]:
        raise refuse(f"{attrs['n_channels']} channels in the store, {new.n_channels} in the new files")
    if format not in (None, kept_format):
        raise refuse(f"format {kept_format} in the store, {format} asked")
    start = to_datetime64(attrs["start_time"])
    records = json.loads(attrs["sources"])
    paths = {str(Path(r["path"]).resolve()) for r in records}
    for src in new.sources:
        if src.start_time < start:
            raise refuse(
                f"{src.path.name!r} starts at {src.start_time}, before the store's start {start}; "
                "ingest all the files into a new store instead"
            )
        if str(src.path.resolve()) in paths:
            raise refuse(f"{src.path.name!r} is already in the store")
    old_sources = [_reopen(record, path) for record in records]
    before = Timeline.of(old_sources, new.channel)
    timeline = Timeline.of([*old_sources, *new.sources], new.channel)
    timeline.check_span()
    if timeline.start_time != start or before.n_samples != attrs["n_samples"]:
        raise FormatError(f"{str(path)!r}: its sources attribute does not match its time span")
    added = {id(src) for src in new.sources}
    for a, b, n in timeline.overlaps():
        earlier, later = timeline.sources[a], timeline.sources[b]
        if (id(earlier) in added) != (id(later) in added):
            log.warning(
                "%s overlaps %s by %.3f s; the later file's samples are used there",
                later.path.name,
                earlier.path.name,
                n / timeline.sample_rate,
            )
    # The first sample that changes: the first new file's, or the old end (a new file can fill a gap).
    first_new = min(off for off, src in zip(timeline.offsets, timeline.sources, strict=True) if id(src) in added)
    changed = min(first_new, before.n_samples)
    keep = max(0, (changed - config.n_fft) // config.hop_length + 1)  # frames that end before it
    own = keep // time_chunk * time_chunk * config.hop_length  # samples the kept blocks own
    if "nonfinite_samples" in attrs:  # the store's counts, less those of the samples now recounted
        end = config.frame_span(0, attrs["n_frames"])[1]
        recount = _count_quality(before, own, end)
        kept_quality = (attrs["nonfinite_samples"] - recount[0], attrs["clipped_samples"] - recount[1])
    else:  # written before the counts were kept
        kept_quality = _count_quality(before, 0, own)
    return _Job(
        timeline,
        config,
        path,
        kept_format,
        time_chunk,
        calibration or read_calibration(attrs),
        base=path,
        keep=keep,
        base_levels=int(attrs["n_levels"]),
        base_factor=base_factor,
        base_waveform=base_waveform,
        kept_quality=kept_quality,
        location=location or read_location(attrs),
    )


def _reopen(record: dict, store: Path) -> AudioSource:
    """A source of a store, opened again as it was recorded; an error if it is gone or has changed."""
    try:
        return reopen_source(record)
    except AtlasError as err:
        raise type(err)(f"cannot append to {str(store)!r}: {err}") from None


def _raw_counts(timeline: Timeline) -> bool:
    """Whether samples are raw counts (MiniSEED) rather than fractions of full scale."""
    return any(isinstance(s, MiniSeedSource) for s in timeline.sources)


class _scheduler:
    """``(get, n_workers)`` for dask.compute: local threads or a distributed cluster."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.client = None

    def __enter__(self):
        if self.address is None:
            return "threads", os.cpu_count() or 1
        from distributed import Client

        try:
            self.client = Client(self.address, timeout="10s", set_as_default=False)
        except OSError as err:
            raise ParameterError(f"cannot reach a dask scheduler at {self.address!r}: {err}") from None
        return self.client.get, max(sum(self.client.nthreads().values()), 1)

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
