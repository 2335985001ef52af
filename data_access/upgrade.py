"""``spectral-atlas upgrade STORE``: rewrite a store of an older format as the current one, in place, atomically.

Format 1 (every store written before compression) becomes format 2: level 0's
power is kept to :data:`~data_access.store.LEVEL0_BITS` mantissa bits and the
pyramid is built again from it with format 2's factor, as an ingest builds it, so an
upgraded store equals, array for array, the store a fresh ingest of the same
audio writes. The new store is built beside the old one (``.NAME.upgrading``)
and only moved into place when complete: the old store is untouched until
then, and an interrupted upgrade is simply run again.
"""

from __future__ import annotations

import logging
import os
import shutil
from contextlib import closing
from pathlib import Path

from tqdm import tqdm  # plain text, as ingest's

from data_access.errors import ParameterError
from data_access.pyramid import level_lengths, rebuild_levels
from data_access.schema import FORMAT_VERSION, PYRAMID_FACTOR, column_times, pyramid_attrs, read_root
from data_access.store import (
    TIME_CHUNK,
    LevelSpec,
    StoreReader,
    StoreWriter,
    commit,
    is_url,
)

log = logging.getLogger(__name__)

#: Attributes of ``power`` an upgrade keeps (a NetCDF file's arrays carry the library's own too).
_POWER_ATTRS = ("long_name", "units", "description")


def upgrade(path: str | os.PathLike, *, progress: bool | None = None) -> int | None:
    """Rewrite the store at ``path`` in the current format, if it is older.

    Parameters
    ----------
    path : path-like
        A local Zarr or NetCDF store written by :func:`data_access.ingest`.
    progress : bool, optional
        Show a progress bar (default: when writing to a terminal).

    Returns
    -------
    int or None
        The format the store had, if it was rewritten; None if it is of the current format already.

    Raises
    ------
    SourceNotFoundError, FormatError
        Nothing at ``path``, or not a store.
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
        building = path.with_name(f".{path.name}.upgrading")
        shutil.rmtree(building, ignore_errors=True)  # left by an interrupted upgrade
        try:
            _rewrite(old, building, progress=progress)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    commit(building, path, format="zarr" if old.is_zarr else "netcdf")
    log.info("upgraded %s from format %d to %d", path, old.format_version, FORMAT_VERSION)
    return old.format_version


def _rewrite(old: StoreReader, building: Path, *, progress: bool | None) -> None:
    """Write ``old`` into a new Zarr tree at ``building`` in the current format."""
    attrs, root = old.attrs, read_root(old.attrs)
    lengths = level_lengths(old.shape(0, "power")[-1], PYRAMID_FACTOR)
    chunk = old.time_chunk(0) if old.is_zarr else TIME_CHUNK
    if chunk % PYRAMID_FACTOR:
        chunk = TIME_CHUNK
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
    # Level 0 kept to its mantissa bits, a chunk at a time; the levels above built again from it.
    step = chunk * max(1, 64 * 2**20 // (4 * chunk * old.shape(0, "power")[-2]))  # ~64 MiB a copy
    with tqdm(
        total=lengths[0], unit="frame", desc="upgrade", disable=(None if progress is None else not progress)
    ) as bar:
        for start in range(0, lengths[0], step):
            stop = min(start + step, lengths[0])
            writer.copy_columns(old, 0, stop, start=start)
            bar.update(stop - start)
    rebuild_levels(writer, lengths, PYRAMID_FACTOR, chunk=chunk)
    writer.close()


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` is on a file system mounted read-only (which ``os.access`` does not say to root)."""
    return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
