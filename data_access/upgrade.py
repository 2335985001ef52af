"""``spectral-atlas upgrade STORE``: rewrite a store of an older format as the current one, in place, atomically.

The new store is written so that it equals, array for array, the store a fresh
ingest of the same audio writes now (format 3):

- **Format 1** (every store written before compression): level 0's power is
  kept to :data:`~data_access.store.LEVEL0_BITS` mantissa bits and the pyramid
  built again from it with the current factor, as an ingest builds it.
- **Format 2** (compressed, without waveform): its power, maxima and frame
  counts are taken as they are (their chunks hard-linked where the file system
  allows, so this costs little space or time).
- **Both** gain the waveform summaries (:mod:`data_access.waveform`), computed
  from the store's recordings: the files its ``sources`` attribute records, found
  at their paths or under ``audio_root`` (as :meth:`~data_access.query.Atlas.audio`
  finds them) and checked unchanged. Without them the store is not upgraded:
  one line says which file is missing, and nothing is changed.

The new store is built beside the old one (``.NAME.upgrading``) and only moved
into place when complete: the old store is untouched until then, and an
interrupted upgrade is simply run again.
"""

from __future__ import annotations

import logging
import os
import shutil
from contextlib import closing
from pathlib import Path

from tqdm import tqdm  # plain text, as ingest's

from data_access.errors import AtlasError, ParameterError
from data_access.pyramid import level_lengths, rebuild_levels
from data_access.schema import (
    FORMAT_VERSION,
    PYRAMID_FACTOR,
    column_times,
    pyramid_attrs,
    read_pyramid_factor,
    read_root,
)
from data_access.sources import Timeline
from data_access.store import (
    TIME_CHUNK,
    LevelSpec,
    StoreReader,
    StoreWriter,
    commit,
    is_url,
)
from data_access.waveform import build_wave_levels, recorded_timeline, write_level0_wave

log = logging.getLogger(__name__)

#: Attributes of ``power`` an upgrade keeps (a NetCDF file's arrays carry the library's own too).
_POWER_ATTRS = ("long_name", "units", "description")


def upgrade(
    path: str | os.PathLike, *, progress: bool | None = None, audio_root: str | os.PathLike | None = None
) -> int | None:
    """Rewrite the store at ``path`` in the current format, if it is older.

    Parameters
    ----------
    path : path-like
        A local Zarr or NetCDF store written by :func:`data_access.ingest`.
    progress : bool, optional
        Show a progress bar (default: when writing to a terminal).
    audio_root : path-like, optional
        Where to look for recordings no longer at the paths the store recorded
        (as :func:`~data_access.query.open_atlas`'s ``audio_root``): the waveform
        summaries of format 3 are computed from them.

    Returns
    -------
    int or None
        The format the store had, if it was rewritten; None if it is of the current format already.

    Raises
    ------
    SourceNotFoundError, FormatError
        Nothing at ``path``, or not a store; or one of its recordings is nowhere
        to be found, or has changed since it was ingested. Nothing is changed.
    ParameterError
        A remote store, an unfinished ingest (``.NAME.partial``), or a store whose
        folder cannot be written. Nothing is changed.
    """
    if is_url(path):
        raise ParameterError(f"cannot upgrade {str(path)!r}: upgrade a local copy and publish it again")
    path = Path(path)
    if path.name.endswith(".partial"):
        raise ParameterError(
            f"{str(path)!r} is an unfinished ingest: run the same ingest again to finish it, or remove it"
        )
    with closing(StoreReader(path)) as old:
        if old.format_version >= FORMAT_VERSION:
            return None
        if not os.access(path.parent, os.W_OK) or _read_only(path.parent):
            raise ParameterError(f"cannot upgrade {str(path)!r}: its folder {str(path.parent)!r} cannot be written")
        recordings = None
        if not old.has_waveform:  # found and checked first: without them nothing is built
            try:
                recordings = recorded_timeline(
                    read_root(old.attrs).sources, old.attrs["channel"], audio_root=audio_root, store_folder=path.parent
                )
            except AtlasError as err:
                raise type(err)(
                    f"cannot upgrade {str(path)!r}: {err}; its waveform is computed from its recordings, "
                    "so nothing was changed"
                ) from None
        building = path.with_name(f".{path.name}.upgrading")
        shutil.rmtree(building, ignore_errors=True)  # left by an interrupted upgrade
        try:
            _rewrite(old, building, recordings, progress=progress)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    commit(building, path, format="zarr" if old.is_zarr else "netcdf")
    log.info("upgraded %s from format %d to %d", path, old.format_version, FORMAT_VERSION)
    return old.format_version


def _rewrite(old: StoreReader, building: Path, recordings: Timeline | None, *, progress: bool | None) -> None:
    """Write ``old`` into a new Zarr tree at ``building`` in the current format.

    ``recordings`` is the timeline of its sources, to compute the waveform from;
    None when ``old`` has one already (then it is copied).
    """
    attrs, root = old.attrs, read_root(old.attrs)
    lengths = level_lengths(old.shape(0, "power")[-1], PYRAMID_FACTOR)
    chunk = old.time_chunk(0) if old.is_zarr else TIME_CHUNK
    if chunk % PYRAMID_FACTOR:
        chunk = TIME_CHUNK
    # Format 2 has the current pyramid: its levels are kept. Format 1's halves: built again from level 0.
    same_pyramid = read_pyramid_factor(attrs) == PYRAMID_FACTOR and old.format_version >= 2
    writer = StoreWriter.create(
        building,
        freq=old.read(0, "freq", (slice(None),)),
        levels=[LevelSpec(k, n, PYRAMID_FACTOR) for k, n in enumerate(lengths)],
        time_fn=lambda k, a, b: column_times(
            root.start_time, root.sample_rate, root.stft, k, a, b, factor=PYRAMID_FACTOR
        ),
        attrs={**attrs, "format_version": FORMAT_VERSION, **pyramid_attrs(len(lengths), PYRAMID_FACTOR)},
        power_attrs={k: v for k, v in old.array_attrs(0, "power").items() if k in _POWER_ATTRS},
        time_chunk=chunk,
        channels=old.channels or None,
    )
    # A chunk at a time: level 0 kept to its mantissa bits (a no-op on format 2), and its waveform.
    step = chunk * max(1, 64 * 2**20 // (4 * chunk * old.shape(0, "power")[-2]))  # ~64 MiB a copy
    with tqdm(
        total=lengths[0], unit="frame", desc="upgrade", disable=(None if progress is None else not progress)
    ) as bar:
        for start in range(0, lengths[0], step):
            stop = min(start + step, lengths[0])
            writer.copy_columns(old, 0, stop, start=start)
            if recordings is not None:
                write_level0_wave(writer, recordings, root.stft, start, stop, chunk)
            bar.update(stop - start)
    if recordings is None:
        writer.copy_wave(old, 0, lengths[0])
    if same_pyramid:
        for k in range(1, len(lengths)):
            writer.copy_columns(old, k, lengths[k])
    else:
        rebuild_levels(writer, lengths, PYRAMID_FACTOR, chunk=chunk)
    build_wave_levels(writer, lengths, PYRAMID_FACTOR)
    writer.close()


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` is on a file system mounted read-only (which ``os.access`` does not say to root)."""
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
