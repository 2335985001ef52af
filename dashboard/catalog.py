"""The stores a server offers: paths and URLs named on the command line and stores found under data roots.

A request can only ever give a *name*. :meth:`Catalog.resolve` looks the name up
among the listed entries and never joins it onto a path, so ``..``, absolute
paths and their URL-encoded forms open nothing. Under a root, a store is a Zarr
group or a NetCDF file that opens as a store of ``spectral-atlas ingest`` (one
that does not is left out with a warning, and the rest are listed); hidden
entries (partial ingests) are skipped, stores are not descended into, and a
symlink whose target lies outside its root is not listed.
A store given by URL (``https://host/x.zarr``, ``s3://bucket/x.zarr``) is
listed by its last part with the time span read from it over the network; the
local file system is never asked about it.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_access import Atlas, AtlasError, FormatError, ParameterError, SourceNotFoundError
from data_access.store import NETCDF_SUFFIXES, store_location, store_name

log = logging.getLogger("spectral_atlas")


@dataclass(frozen=True)
class Entry:
    """One store of a catalog.

    Attributes
    ----------
    name : str
        What the page lists and ``?store=`` names: the path relative to its
        root (posix), or the file name of a store given by path (the last part of a URL).
    path : Path or str
        The store opened for this name; under a root, its real (symlink-free)
        path; a remote store's URL.
    start_time, end_time : str
        UTC time span of the recording (ISO 8601).
    duration_seconds : float
        Length of the recording.
    """

    name: str
    path: Path | str
    start_time: str
    end_time: str
    duration_seconds: float


class Catalog:
    """The stores given by path and those found under data roots, by name.

    Parameters
    ----------
    stores : iterable of path-like or str
        Stores offered as they are, local paths or fsspec URLs of published
        Zarr stores; each must be a store (checked now, a URL over the network).
    roots : iterable of path-like
        Directories searched for stores, at any depth; each must exist.

    Raises
    ------
    SourceNotFoundError
        A store or root does not exist.
    FormatError
        A store given by path is not a Spectral Atlas store.
    ParameterError
        Neither stores nor roots are given, or no store is found.

    Examples
    --------
    >>> catalog = Catalog(roots=["/data"])
    >>> [(e.name, e.duration_seconds) for e in catalog.entries]
    [('2024/site-a.zarr', 86400.0), ('2024/site-b.nc', 3600.0)]
    >>> catalog.get("../etc/passwd") is None
    True
    """

    def __init__(self, stores: Iterable[str | os.PathLike] = (), roots: Iterable[str | os.PathLike] = ()) -> None:
        self.stores = [store_location(s) for s in stores]
        self.roots = [Path(r) for r in roots]
        if not self.stores and not self.roots:
            raise ParameterError("give at least one store or data root (STORE or --data-root DIR)")
        for root in self.roots:
            if not root.is_dir():
                raise SourceNotFoundError(f"data root {str(root)!r} is not a directory")
        self._entries: dict[str, Entry] = {}
        self._scan(strict=True)
        if not self._entries:
            roots = ", ".join(repr(str(r)) for r in self.roots)
            raise ParameterError(
                f"no stores under {roots}: no Zarr directory or NetCDF file from spectral-atlas ingest"
            )

    @property
    def entries(self) -> list[Entry]:
        """The listed stores: those given by path first, in order, then those under the roots by name."""
        return list(self._entries.values())

    def scan(self) -> list[Entry]:
        """Look for stores again (new ingests appear, removed stores go); returns :attr:`entries`."""
        self._scan(strict=False)
        return self.entries

    def _scan(self, *, strict: bool) -> None:
        found = []  # (path, name, name qualified by its folder, summary)
        for store in self.stores:
            try:
                found.append((store, store_name(store), _qualified_name(store), _summary(store)))
            except (FormatError, SourceNotFoundError) as err:
                if strict:  # at start-up a bad path fails before the server starts
                    raise
                log.warning("store %s is gone from the listing: %s", store, err)
        for root in self.roots:
            for path in sorted(_discover(root)):
                try:
                    summary = _summary(path.resolve())
                except (AtlasError, OSError) as err:  # a broken store must not take the listing down
                    log.warning("data root %s: skipping %s", root, err)
                    continue
                except Exception:  # nor one broken in a way no one foresaw: its traceback is logged
                    log.warning("data root %s: skipping %s, which does not open", root, path, exc_info=True)
                    continue
                relative = path.relative_to(root).as_posix()
                found.append((path.resolve(), relative, f"{root.name}/{relative}", summary))
        plain = Counter(name for _, name, _, _ in found)
        entries: dict[str, Entry] = {}
        for path, name, qualified, (start, end, duration) in found:
            name = name if plain[name] == 1 else qualified  # two stores of one name: tell them apart by folder
            unique, n = name, 1
            while unique in entries:
                n += 1
                unique = f"{name} ({n})"
            entries[unique] = Entry(unique, path, start, end, duration)
        self._entries = entries  # one assignment: a session reading meanwhile sees the old or the new listing

    def get(self, name: str | None) -> Path | str | None:
        """The path of the store listed as ``name``, or None if no store is listed by that name."""
        entry = self._entries.get(name) if isinstance(name, str) else None
        return entry.path if entry else None

    def resolve(self, name: str) -> Path | str:
        """The path of the store listed as ``name``.

        Raises
        ------
        ParameterError
            No store is listed as ``name``: the name is never read as a path.
        """
        path = self.get(name)
        if path is None:
            raise ParameterError(f"no store named {name!r} in the catalog; choose one of {sorted(self._entries)}")
        return path

    def name_of(self, path: str | os.PathLike) -> str | None:
        """The name under which ``path`` is listed, or None."""
        return next((e.name for e in self._entries.values() if str(e.path) == str(path)), None)


def _qualified_name(store: Path | str) -> str:
    """A store's name with its folder's: ``data/x.zarr`` for ``/srv/data/x.zarr`` or ``https://host/data/x.zarr``."""
    if isinstance(store, str):
        return "/".join(store.rsplit("/", 2)[-2:])
    return f"{store.parent.name}/{store.name}"


def _summary(path: Path | str) -> tuple[str, str, float]:
    """Start, end and duration of a store, opened as a page opens it (FormatError if it is none or does not open)."""
    atlas = Atlas(path)
    try:
        t0, t1 = atlas.time_range
        return str(atlas.attrs["start_time"]), str(atlas.attrs["end_time"]), float((t1 - t0) / np.timedelta64(1, "s"))
    finally:
        atlas.close()


def _is_zarr_group(folder: Path) -> bool:
    return (folder / "zarr.json").is_file() or (folder / ".zgroup").is_file()


def _discover(root: Path) -> Iterator[Path]:
    """Candidate stores under ``root``: Zarr groups and NetCDF files whose real path is inside it."""
    inside = root.resolve()
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            children = list(os.scandir(folder))
        except OSError as err:
            log.warning("data root %s: cannot list %s: %s", root, folder, err.strerror)
            continue
        for child in children:
            if child.name.startswith("."):  # partial ingests (.NAME.partial), .ingest records, dot files
                continue
            path = Path(child.path)
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):  # a dangling or looping symlink
                continue
            if not real.is_relative_to(inside):
                log.warning("data root %s: not listing %s, it points outside the root to %s", root, path, real)
                continue
            if real.is_dir():
                if _is_zarr_group(real):
                    yield path  # a group is never descended into, store or not
                elif not child.is_symlink():  # a linked folder inside the root is reached directly
                    folders.append(path)
            elif path.suffix in NETCDF_SUFFIXES:
                yield path
