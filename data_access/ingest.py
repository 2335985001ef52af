"""Sources -> STFT -> store, block by block, in parallel on dask.

Level 0 is cut into blocks of :data:`~data_access.store.TIME_CHUNK` frames,
one dask task each: a task reads just the samples its frames cover, computes
their power, writes its own chunk-aligned region of level 0 (regions never
overlap, so workers need no locks) and hands back the block reduced to level
1 (mean and max of power). The calling process builds the coarser levels from
those pieces in time order, in a thread of its own so it overlaps with the FFTs. Peak memory is a
few blocks per worker plus about one chunk per level, whatever the length.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import numpy as np
import zarr
from tqdm.auto import tqdm

from data_access import __version__
from data_access.calibration import Calibration
from data_access.errors import ParameterError
from data_access.pyramid import PyramidBuilder, halve, halve_max, level_lengths
from data_access.sources import MiniSeedSource, Timeline, samples_to_timedelta
from data_access.stft import StftConfig, power_spectrogram
from data_access.store import TIME_CHUNK, LevelSpec, StoreFormat, StoreWriter, check_output, commit, partial_path

log = logging.getLogger(__name__)


def column_times(timeline: Timeline, config: StftConfig, level: int, start: int, stop: int) -> np.ndarray:
    """Centre times of columns ``start..stop-1`` of a pyramid level.

    Column ``j`` of level ``k`` spans frames ``j * 2**k .. (j + 1) * 2**k - 1``;
    its time is the mean of their centres,
    ``start_time + ((j + 1/2) * 2**k - 1/2) * hop / sr + n_fft / 2 / sr``.
    """
    step = 2**level
    centres = (np.arange(start, stop, dtype=np.float64) * step + (step - 1) / 2) * config.hop_length + config.n_fft / 2
    return timeline.start_time + samples_to_timedelta(centres, timeline.sample_rate)


def _compute_block(timeline: Timeline, config: StftConfig, level0: str, start: int, stop: int):
    """One task: frames ``start..stop-1`` -> level 0 on disk, level 1 returned."""
    samples = timeline.read(*config.frame_span(start, stop))
    power = power_spectrogram(samples, config)
    zarr.open_array(level0, mode="r+")[:, start:stop] = power
    counts = np.isfinite(power[0]).astype(np.int32)
    mean, pair_counts = halve(power, counts)
    return counts, mean, halve_max(power), pair_counts


def ingest(
    timeline: Timeline,
    store: str | os.PathLike,
    config: StftConfig | None = None,
    *,
    format: StoreFormat = "zarr",
    overwrite: bool = False,
    scheduler: str | None = None,
    progress: bool | None = None,
    time_chunk: int = TIME_CHUNK,
    calibration: Calibration | None = None,
) -> Path:
    """Compute the spectrogram of a timeline into a multiscale store.

    Parameters
    ----------
    timeline : Timeline
        From :func:`data_access.open_timeline`.
    store : path-like
        Output: a Zarr directory, or a NetCDF file with ``format="netcdf"``.
    config : StftConfig, optional
        STFT parameters; default ``StftConfig()`` (n_fft 4096, hop 2048, hann).
    format : {"zarr", "netcdf"}, default: "zarr"
    overwrite : bool, default: False
        Replace an existing store (only once the new one is complete).
    scheduler : str, optional
        Address of a ``dask.distributed`` scheduler (``tcp://host:8786``) to
        run on; by default a local thread pool.
    progress : bool, optional
        Show a progress bar; by default only on a terminal.
    time_chunk : int, default: 512
        Frames per chunk along time (even): the unit of work of one task and of
        one write at every level.
    calibration : Calibration, optional
        Sensitivity, gain and full-scale voltage, kept in the store's root
        attributes; reads then report dB re 1 µPa. Stored power is the same
        with or without it.

    Returns
    -------
    Path
        The store written.
    """
    config = config or StftConfig()
    if format not in ("zarr", "netcdf"):
        raise ParameterError(f"format={format!r} must be 'zarr' or 'netcdf'")
    if isinstance(time_chunk, bool) or not isinstance(time_chunk, int) or time_chunk < 2 or time_chunk % 2:
        raise ParameterError(f"time_chunk={time_chunk!r} must be an even number of frames >= 2")
    path = check_output(store, overwrite=overwrite)
    n_frames = config.n_frames(timeline.n_samples)
    if n_frames == 0:
        raise ParameterError(
            f"the recording has {timeline.n_samples} samples, fewer than n_fft={config.n_fft}: no whole frame"
        )
    lengths = level_lengths(n_frames)
    tmp = partial_path(path)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        writer = StoreWriter.create(
            tmp,
            freq=config.frequencies(timeline.sample_rate),
            levels=[LevelSpec(k, n) for k, n in enumerate(lengths)],
            time_fn=lambda k, a, b: column_times(timeline, config, k, a, b),
            attrs={
                **_root_attrs(timeline, config, n_frames, len(lengths)),
                **(calibration.to_attrs() if calibration else {}),
            },
            power_attrs=_power_attrs(timeline),
            time_chunk=time_chunk,
        )
        _run_blocks(timeline, config, writer, lengths, time_chunk, scheduler=scheduler, progress=progress)
        writer.close()
        return commit(tmp, path, format=format)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _run_blocks(
    timeline: Timeline,
    config: StftConfig,
    writer: StoreWriter,
    lengths: list[int],
    time_chunk: int,
    *,
    scheduler: str | None,
    progress: bool | None,
) -> None:
    n_frames = lengths[0]
    builder = PyramidBuilder(lengths, writer.write_power, writer.write_counts, chunk=time_chunk)
    level0 = str(writer.path / "0" / "power")
    blocks = [(i, min(i + time_chunk, n_frames)) for i in range(0, n_frames, time_chunk)]
    task = dask.delayed(_compute_block, pure=False)
    with _scheduler(scheduler) as (get, workers), ThreadPoolExecutor(1) as pyramid_thread:
        # Enough blocks per batch to keep every worker busy; one batch is
        # computed while the previous one feeds the pyramid.
        batch = workers
        pending = None
        bar = tqdm(
            total=n_frames,
            unit="frame",
            unit_scale=True,
            disable=(None if progress is None else not progress),
            desc="ingest",
        )
        for b in range(0, len(blocks), batch):
            results = dask.compute(
                *(task(timeline, config, level0, a, z) for a, z in blocks[b : b + batch]), scheduler=get
            )
            if pending is not None:
                pending.result()
            pending = pyramid_thread.submit(_feed, builder, results, lengths)
            bar.update(sum(len(r[0]) for r in results))
        if pending is not None:
            pending.result()
        builder.finish()
        bar.close()


def _feed(builder: PyramidBuilder, results, lengths: list[int]) -> None:
    for counts0, mean1, peak1, counts1 in results:
        builder.push_level0_counts(counts0)
        if len(lengths) > 1:
            builder.push(1, mean1, peak1, counts1)


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


def _root_attrs(timeline: Timeline, config: StftConfig, n_frames: int, n_levels: int) -> dict[str, object]:
    end = timeline.start_time + samples_to_timedelta(timeline.n_samples, timeline.sample_rate)
    rate = timeline.sample_rate
    return {
        "title": "Spectral Atlas multiscale spectrogram",
        "Conventions": "CF-1.10",
        "software": f"spectral-atlas {__version__}",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sample_rate": rate,
        **config.to_attrs(),
        "channel": str(timeline.channel),
        "start_time": str(timeline.start_time),
        "end_time": str(end),
        "duration_seconds": timeline.n_samples / rate,
        "n_samples": int(timeline.n_samples),
        "n_frames": int(n_frames),
        "n_levels": int(n_levels),
        "frame_time": "centre: start_time + (i * hop_length + n_fft / 2) / sample_rate",
        "pyramid": "level k averages 2**k frames: NaN-aware mean of power, weighted by frame_count",
        "sources": json.dumps(timeline.describe()),
        "gaps_seconds": json.dumps([[a / rate, b / rate] for a, b in timeline.gaps()]),
        "deployment": json.dumps(timeline.summary()),
    }


def _power_attrs(timeline: Timeline) -> dict[str, str]:
    counts = any(isinstance(s, MiniSeedSource) for s in timeline.sources)
    return {
        "long_name": "spectral power |STFT|^2" + (" of raw counts" if counts else " re full scale"),
        "units": "count2" if counts else "1",
        "description": "raw power of the windowed FFT, not scaled by window or sample rate; "
        "coarser levels hold the mean over the frames of each column",
    }
