"""The multiscale spectrogram store: an xarray DataTree in Zarr or NetCDF.

Layout (every group a CF-style dataset)::

    /                  attrs: sample_rate, n_fft, hop_length, win_length, window,
                       channel, start_time, n_frames, n_levels, sources (JSON), ...
    /0/power           (freq, time) float32: |STFT|**2 at full resolution
    /0/frame_count     (time) int32: valid full-resolution frames behind each column
    /0/time, /0/freq   frame centres (datetime64[ns], UTC) and bin centres (Hz)
    /1 ... /N          the same, each dividing the time axis by 4 by the mean of power,
    /k/power_max       and beside it the max of power over the same frames
    /k/wave_min, /k/wave_max, /k/wave_rms
                       (time) float32 (format 3): min, max and RMS of the samples, level 0's
                       column j over the hop centred on frame j's centre (schema.wave_span),
                       each level above reducing the one below; chunked by the time chunk at
                       level 0 (each ingest task writes its own) and by VECTOR_CHUNK above

A store of every channel (``channel="all"``; root attrs ``channel = "all"``,
``n_channels`` and ``channel_labels``, a JSON list: SEED ids for MiniSEED, else
"0", "1", ...) puts a ``channel`` dimension first::

    /k/power, /k/power_max   (channel, freq, time) float32, chunks (1, freq chunk, time chunk)
    /k/frame_count           (channel, time) int32: valid frames per channel, since
                             channels of a MiniSEED file can have gaps of their own
    /k/wave_min, ...         (channel, time) float32, chunks (1, time chunk or VECTOR_CHUNK)
    /k/channel               (channel) int32 coordinate 0..C-1, attrs ``labels`` (JSON)

Channel ``k`` of it equals, at every level, the store of ``channel=k`` alone.
A single-channel store (a channel index, or ``"mean"``) has no channel
dimension, as before.

Arrays are written with zarr directly, chunk by chunk, into a hidden
``.partial`` directory that is renamed into place only when complete, so an
existing store is never touched by a failed or interrupted ingest (or append:
an appended store is a new tree too, which takes the old one's unchanged
columns with :meth:`StoreWriter.copy_columns`). zarr writes each chunk to a
temporary file and renames it, so a chunk on disk is whole or absent. NetCDF is
written by converting that finished Zarr tree with xarray, streaming chunk by
chunk through dask.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from data_access.calibration import Calibration
from data_access.errors import AtlasError, FormatError, ParameterError, SourceNotFoundError, StoreExistsError
from data_access.schema import (
    BAND_UNITS,
    CALIBRATION_PREFIX,
    FRAME_COUNT_ATTRS,
    FREQ_ATTRS,
    LOCATION_ATTR,
    PSD_UNITS,
    TIME_ATTRS,
    WAVE_NAMES,
    calibration_attrs,
    channel_attrs,
    level_attrs,
    location_attrs,
    max_attrs,
    raw_counts_power,
    read_calibration,
    read_location,
    read_pyramid_factor,
    wave_attrs,
)

log = logging.getLogger(__name__)

StoreFormat = Literal["zarr", "netcdf"]

#: Frames per chunk along time, at every level. A 1200-pixel view reads a level
#: with 1200..2400 frames, so it touches three to six chunks along time. It is
#: also the unit of work of an ingest task and of the pyramid's buffers, so it
#: sets the ingest's peak memory (a 4 MiB chunk at n_fft 4096).
TIME_CHUNK = 512
#: Bytes aimed at per power chunk; the frequency axis is split to stay near it.
CHUNK_BYTES = 4 * 2**20
#: Elements per chunk of the one-dimensional arrays (time, frame_count).
VECTOR_CHUNK = 2**16

#: Suffixes of NetCDF (HDF5) stores; any other store is a Zarr directory.
NETCDF_SUFFIXES = (".nc", ".h5", ".hdf5")

# The formats (schema.FORMAT_VERSION). 1: uncompressed float32, a pyramid that halves, no
# ``format_version`` attribute (every store before compression; still read, appended to and
# calibrated, and rewritten as 3 by ``spectral-atlas upgrade``). 2: power kept to the mantissa
# bits below, then bit-shuffled and compressed with lz4 (Blosc; see _COMPRESSORS). 3: format 2
# and the waveform summaries, float32 stored exactly (the same codec): min and max are samples
# themselves, and the summaries are 3 floats a hop, too few to be worth rounding.
#: Mantissa bits kept of float32's 23 (Klöwer et al. 2021: keep the bits that carry
#: information). Level 0: every value within 2**-13 of the exact power (0.00053 dB).
LEVEL0_BITS = 12
#: Pyramid means, each computed from the stored level below: within 2**-15 of that mean
#: (0.00013 dB) per level; their independent errors average, so they stay well inside
#: 0.001 dB of the mean of the exact level-0 frames (tests/test_format.py measures it).
MEAN_BITS = 14
#: The max pyramid only colours a display: within 2**-4 (0.26 dB) of the maximum.
MAX_BITS = 3
# Bit shuffle then lz4 (Blosc): on rounded power of noise and tones, 1.10x the audio's 16-bit PCM
# for level 0, 3 GB/s to compress and 3.7 GB/s to decompress a core (zstd after a byte shuffle:
# 1.14x, 0.5 and 0.8 GB/s, which made a cold view 1.85x slower than format 1's uncompressed reads).
_COMPRESSORS = (BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),)


def keep_bits(values: np.ndarray, bits: int, *, inplace: bool = False) -> np.ndarray:
    """``values`` as float32 with each mantissa rounded to ``bits`` bits, to nearest, ties to even; NaN and inf kept.

    numcodecs' ``BitRound``, bit for bit (``tests/test_format.py`` checks it), done in
    place a slice at a time: ``BitRound.encode`` holds four arrays the size of its
    input at once, which with every block and level in flight raised an ingest's peak
    memory by 50 MB. With ``inplace`` (a float32 C-contiguous array the caller owns)
    ``values`` itself is rounded and returned; otherwise a copy.
    """
    owned = inplace and values.dtype == np.float32 and values.flags.c_contiguous and values.flags.writeable
    rounded = values if owned else np.array(values, dtype=np.float32, order="C")
    flat = rounded.reshape(-1).view(np.int32)
    drop = 23 - bits
    if drop <= 0:
        return rounded
    mask, half = np.int32(-1 << drop), np.int32((1 << (drop - 1)) - 1)
    step = 1 << 18
    for a in range(0, flat.size, step):
        part = flat[a : a + step]
        odd = ~np.isfinite(part.view(np.float32))
        kept = part[odd] if odd.any() else None  # (rounding a NaN's payload could carry into its exponent)
        carry = np.right_shift(part, drop)
        np.bitwise_and(carry, 1, out=carry)
        carry += half
        part += carry
        part &= mask
        if kept is not None:
            part[odd] = kept
    return rounded


def freq_chunk(n_freq: int, time_chunk: int = TIME_CHUNK) -> int:
    """Bins per chunk along frequency for a spectrum of ``n_freq`` bins."""
    parts = max(1, round(n_freq * time_chunk * 4 / CHUNK_BYTES))
    return -(-n_freq // parts)


@dataclass(frozen=True)
class LevelSpec:
    """Shape of one pyramid level.

    Attributes
    ----------
    level : int
        0 is full resolution; level ``k`` averages ``factor**k`` frames per column.
    n_frames : int
        Columns along time.
    factor : int
        The pyramid's factor (:data:`~data_access.schema.PYRAMID_FACTOR`).
    """

    level: int
    n_frames: int
    factor: int

    @property
    def frames_per_column(self) -> int:
        """Full-resolution frames averaged into one column."""
        return self.factor**self.level


class StoreWriter:
    """Creates a store's arrays and writes regions of them.

    Writes of different ``power`` time chunks never overlap, so several
    processes may write one level at once without locks.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.root = zarr.open_group(self.path, mode="r+")

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        freq: np.ndarray,
        levels: list[LevelSpec],
        time_fn: Callable[[int, int, int], np.ndarray],
        attrs: dict[str, object],
        power_attrs: dict[str, str],
        time_chunk: int = TIME_CHUNK,
        channels: list[str] | None = None,
        compressed: bool = True,
        waveform: bool = True,
    ) -> StoreWriter:
        """Create an empty store at ``path`` with every level's arrays and coordinates.

        Parameters
        ----------
        freq : ndarray, shape (n_freq,)
            Bin centres in Hz.
        levels : list of LevelSpec
        time_fn : callable
            ``time_fn(level, start, stop)`` -> datetime64[ns] centres of columns.
        attrs : dict
            Root attributes (JSON-serialisable values).
        power_attrs : dict
            Attributes of every ``power`` array (CF units, long_name).
        time_chunk : int, default: TIME_CHUNK
            Columns per chunk along time, at every level.
        channels : list of str, optional
            Labels of the channels of a multichannel store: ``power`` gets a
            leading ``channel`` dimension (one chunk per channel), and so does
            ``frame_count``. By default a single-channel store.
        compressed : bool, default: True
            Compress ``power`` (format 2); False lays it out as format 1 did,
            for ``benchmarks/query.py`` to compare the two.
        waveform : bool, default: True
            Create the waveform arrays (format 3), of raw counts if ``power_attrs``
            are: chunked by ``time_chunk`` at level 0, by :data:`VECTOR_CHUNK` above.
        """
        root = zarr.open_group(Path(path), mode="w-", attributes=attrs)
        n_freq = len(freq)
        # A multichannel store puts the channel first, one channel per chunk.
        lead, lead_chunks, lead_dims = ((len(channels),), (1,), ("channel",)) if channels else ((), (), ())
        for spec in levels:
            group = root.create_group(
                str(spec.level),
                attributes=level_attrs(spec.level, spec.n_frames, spec.factor),
            )
            names = ("power", "power_max") if spec.level else ("power",)
            for name in names:
                group.create_array(
                    name,
                    shape=(*lead, n_freq, spec.n_frames),
                    chunks=(*lead_chunks, freq_chunk(n_freq, time_chunk), time_chunk),
                    dtype="float32",
                    fill_value=np.nan,
                    compressors=_COMPRESSORS if compressed else None,
                    dimension_names=(*lead_dims, "freq", "time"),
                    attributes=power_attrs if name == "power" else max_attrs(power_attrs),
                )
            group.create_array(
                "frame_count",
                shape=(*lead, spec.n_frames),
                chunks=(*lead_chunks, VECTOR_CHUNK),
                dtype="int32",
                fill_value=0,
                dimension_names=(*lead_dims, "time"),
                attributes=FRAME_COUNT_ATTRS,
            )
            for name in WAVE_NAMES if waveform else ():
                group.create_array(
                    name,
                    shape=(*lead, spec.n_frames),
                    # Level 0 by the time chunk, so each ingest task writes whole chunks of its own.
                    chunks=(*lead_chunks, time_chunk if spec.level == 0 else VECTOR_CHUNK),
                    dtype="float32",
                    fill_value=np.nan,
                    compressors=_COMPRESSORS if compressed else None,
                    dimension_names=(*lead_dims, "time"),
                    attributes=wave_attrs(name, raw_counts_power(power_attrs)),
                )
            fa = group.create_array(
                "freq",
                shape=(n_freq,),
                dtype="float64",
                dimension_names=("freq",),
                attributes=FREQ_ATTRS,
            )
            fa[:] = freq
            if channels:
                ca = group.create_array(
                    "channel",
                    shape=(len(channels),),
                    dtype="int32",
                    dimension_names=("channel",),
                    attributes=channel_attrs(channels),
                )
                ca[:] = np.arange(len(channels), dtype=np.int32)
            ta = group.create_array(
                "time",
                shape=(spec.n_frames,),
                chunks=(VECTOR_CHUNK,),
                dtype="int64",
                dimension_names=("time",),
                attributes=TIME_ATTRS,
            )
            for start in range(0, spec.n_frames, VECTOR_CHUNK):
                stop = min(start + VECTOR_CHUNK, spec.n_frames)
                ta[start:stop] = time_fn(spec.level, start, stop).astype("datetime64[ns]").astype("int64")
        return cls(path)

    def write_power(self, level: int, start: int, power: np.ndarray, peak: np.ndarray | None = None) -> None:
        """Write columns ``start..`` of a level: mean (and, above level 0, max) of power.

        Both blocks are C-contiguous, shape ``(n_freq, n)``, or ``(n_channels, n_freq, n)``
        in a multichannel store.
        """
        self.root[f"{level}/power"][..., start : start + power.shape[-1]] = power
        if peak is not None:
            self.root[f"{level}/power_max"][..., start : start + peak.shape[-1]] = peak

    def write_counts(self, level: int, start: int, counts: np.ndarray) -> None:
        """Write ``frame_count`` of columns ``start..``; ``counts`` is ``(n,)`` or ``(n_channels, n)``."""
        self.root[f"{level}/frame_count"][..., start : start + counts.shape[-1]] = counts

    def write_wave(self, level: int, start: int, wave: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """Write columns ``start..`` of a level's waveform ``(min, max, rms)``, each ``(n,)`` or ``(n_channels, n)``."""
        for name, values in zip(WAVE_NAMES, wave, strict=True):
            self.root[f"{level}/{name}"][..., start : start + values.shape[-1]] = values

    def read(self, level: int, name: str, start: int, stop: int) -> np.ndarray:
        """Columns ``start..stop-1`` of array ``name`` of a level, as written so far."""
        array = self.root[f"{level}/{name}"]
        return array[..., start:stop]

    def copy_columns(self, source: StoreReader, level: int, stop: int, *, start: int = 0) -> None:
        """Copy columns ``start..stop-1`` of a level (every array but ``time``) from another store.

        ``start`` is a multiple of the time chunk. A format-1 source's power is
        kept to this format's mantissa bits on the way.

        Whole chunks of a Zarr store chunked alike are hard-linked, not copied:
        zarr replaces a chunk file whenever it writes one, so a linked chunk is
        never changed in place and the two stores stay independent. Otherwise
        one chunk at a time is read and written.
        """
        for name in ("power", "power_max") if level else ("power",):
            bits = MAX_BITS if name == "power_max" else MEAN_BITS if level else LEVEL0_BITS
            self._copy(source, level, name, start, stop, lambda part, bits=bits: keep_bits(part, bits, inplace=True))
        for a in range(start, stop, VECTOR_CHUNK):
            counts = source.read(level, "frame_count", (Ellipsis, slice(a, min(a + VECTOR_CHUNK, stop))))
            self.write_counts(level, a, counts)

    def copy_wave(self, source: StoreReader, level: int, stop: int) -> None:
        """Copy columns ``0..stop-1`` of a level's waveform arrays from a store that has them (linked where alike)."""
        for name in WAVE_NAMES:
            self._copy(source, level, name, 0, stop, None)

    def _copy(self, source: StoreReader, level: int, name: str, start: int, stop: int, convert) -> None:
        """Columns ``start..stop-1`` of one array from ``source``: linked chunks, or ``convert``-ed copies.

        Chunks are linked when the columns are whole chunks, or run to the end of
        arrays of the same length (whose last, short chunk holds the same columns).
        """
        array = self.root[f"{level}/{name}"]
        chunk = array.chunks[-1]
        whole = stop % chunk == 0 or stop == array.shape[-1] == source.shape(level, name)[-1]
        linkable = start % chunk == 0 and start < stop and whole
        if linkable and self._link_chunks(source, f"{level}/{name}", range(start // chunk, -(-stop // chunk))):
            return
        for a in range(start, stop, chunk):
            cols = (Ellipsis, slice(a, min(a + chunk, stop)))
            part = source.read(level, name, cols)
            array[cols] = part if convert is None else convert(part)  # (format 1: to this format's bits)

    def _link_chunks(self, source: StoreReader, key: str, chunks: range) -> bool:
        """Hard-link time chunks ``chunks`` of array ``key``; False if they cannot be."""
        if not source.is_zarr:
            return False
        src, dst = source._root[key], self.root[key]
        alike = (src.chunks, src.metadata.chunk_key_encoding, src.metadata.codecs)
        if alike != (dst.chunks, dst.metadata.chunk_key_encoding, dst.metadata.codecs):  # (format 1 into 2: no)
            return False
        try:
            for lead in np.ndindex(*src.cdata_shape[:-1]):  # (freq chunk) or (channel, freq chunk)
                for t in chunks:
                    name = src.metadata.encode_chunk_key((*lead, t))
                    if (source.path / key / name).exists():  # a chunk that is all fill value is not stored
                        (self.path / key / name).parent.mkdir(parents=True, exist_ok=True)
                        os.link(source.path / key / name, self.path / key / name)
        except OSError:  # no hard links on this file system, or across devices
            return False
        return True

    def set_attrs(self, attrs: dict[str, object]) -> None:
        """Replace the root attributes."""
        self.root.attrs.put(attrs)

    def close(self) -> None:
        """Consolidate the metadata so readers open the tree with one request."""
        with warnings.catch_warnings():
            # Not yet in the Zarr v3 spec, but xarray and zarr-python read it.
            warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
            # A resumable ingest keeps its record in a hidden folder (.ingest) that is not zarr's.
            warnings.filterwarnings("ignore", r"Object at \.\w+ is not recognized", UserWarning)
            zarr.consolidate_metadata(self.path)


def partial_path(path: Path) -> Path:
    """Where a store is built before it is moved to ``path``."""
    return path.with_name(f".{path.name}.partial")


def check_output(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; say so before any work."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise StoreExistsError(f"{str(path)!r} already exists; pass --overwrite to replace it")
    if not path.parent.exists():
        raise SourceNotFoundError(f"directory {str(path.parent)!r} for the output does not exist")
    return path


def commit(tmp: Path, path: Path, *, format: StoreFormat = "zarr") -> Path:
    """Move a finished Zarr build at ``tmp`` to ``path``, as NetCDF if asked.

    What was at ``path`` is replaced only now that the new store is complete:
    it is renamed aside, the new store renamed into place, and only then the
    old one deleted, so no moment leaves neither.
    """
    if format == "netcdf":
        built = tmp.with_name(tmp.name + ".nc")
        tree = xr.open_datatree(tmp, engine="zarr", chunks={}, consolidated=True)
        # The rounded power through netCDF-4's own filters (shuffle + zlib), which every netCDF reader has.
        squeeze = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
        encoding = {
            node.path: {name: squeeze for name in ("power", "power_max", *WAVE_NAMES) if name in node.data_vars}
            for node in tree.subtree
            if "power" in node.data_vars
        }
        tree.to_netcdf(built, engine="h5netcdf", invalid_netcdf=False, encoding=encoding)
        tree.close()
        shutil.rmtree(tmp)
        tmp = built
    old = path.with_name(f".{path.name}.replaced")
    _remove(old)  # left by a commit killed between its renames
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    _remove(old)
    return path


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def is_url(path: object) -> bool:
    """Whether ``path`` is an fsspec URL (``https://``, ``s3://``, ``gs://``, ...) rather than a local path."""
    return isinstance(path, str) and "://" in path


def store_location(path: str | os.PathLike) -> Path | str:
    """Where a store is: a local :class:`~pathlib.Path`, or a remote store's URL (no trailing slash)."""
    return path.rstrip("/") if is_url(path) else Path(path)


def store_name(location: Path | str) -> str:
    """The last part of a store's path or URL: ``x.zarr`` for ``https://host/data/x.zarr``."""
    return location.rsplit("/", 1)[-1] if isinstance(location, str) else location.name


def open_store(path: str | os.PathLike) -> xr.DataTree:
    """Open a store lazily as an :class:`xarray.DataTree`.

    Parameters
    ----------
    path : path-like or str
        A Zarr directory or a NetCDF file written by :func:`data_access.ingest`,
        or the fsspec URL of a published Zarr store (``https://host/x.zarr``, ``s3://bucket/x.zarr``).

    Returns
    -------
    DataTree
        Groups ``"0"..."N"``, each with ``power(freq, time)`` backed by dask.
    """
    path = store_location(path)
    if isinstance(path, str):
        StoreReader(path).close()  # a missing or foreign store fails here, in one line naming the URL
        return xr.open_datatree(path, engine="zarr", chunks={}, consolidated=True, zarr_format=3)
    if not path.exists():
        raise SourceNotFoundError(f"no store at {str(path)!r}")
    try:
        if path.is_dir():
            tree = xr.open_datatree(path, engine="zarr", chunks={}, consolidated=True)
        else:
            tree = xr.open_datatree(path, engine="h5netcdf", chunks={})
    except Exception as err:  # the backends raise many types for "not this format"
        raise FormatError(f"{str(path)!r} is not a Spectral Atlas store: {err}") from None
    if "0" not in tree.children or "n_fft" not in tree.attrs:
        raise FormatError(f"{str(path)!r} is not a Spectral Atlas store (no level '0' or no STFT attributes)")
    return tree


def _open_remote(url: str) -> zarr.Group:
    """The root group of the Zarr store published at ``url``, read-only.

    The store's consolidated metadata (in its root ``zarr.json``) describes
    every array, so opening reads that one file and each read then fetches
    chunk files by their known keys: no directory is ever listed, which a plain
    static file server cannot do.
    """
    if url.lower().endswith(NETCDF_SUFFIXES):
        raise FormatError(f"cannot read {url!r}: NetCDF stores must be local; publish Zarr")
    try:
        store = zarr.storage.FsspecStore.from_url(url, read_only=True)
    except (ImportError, ValueError) as err:  # no fsspec implementation for the protocol (s3fs, gcsfs, ...)
        raise ParameterError(f"cannot read {url!r}: {err}") from None
    try:
        return zarr.open_group(store, mode="r", zarr_format=3)
    except FileNotFoundError:  # zarr found no zarr.json: ask for it once more, for the server's answer
        reason = f"{_fetch_error(f'{url}/zarr.json') or 'not a Zarr v3 group'} for its zarr.json"
    except Exception as err:  # the server's status, or why it did not answer
        reason = _remote_reason(url, err)
    raise SourceNotFoundError(f"no store at {url!r}: {reason}")


def _fetch_error(url: str) -> str | None:
    """Why the file at ``url`` cannot be fetched, or None if it can."""
    import fsspec

    fs, path = fsspec.url_to_fs(url)
    try:
        fs.cat_file(path)
    except Exception as err:
        return _remote_reason(url, err)
    return None


def _remote_reason(url: str, err: Exception) -> str:
    """A failed request in a few words: the HTTP status where there is one."""
    status = getattr(err, "status", None)  # aiohttp.ClientResponseError: any status but 404
    if status is not None:
        return f"HTTP {status} {getattr(err, 'message', '')}".rstrip()
    if isinstance(err, FileNotFoundError):  # fsspec's HTTP file system raises it for 404 alone
        return "HTTP 404 Not Found" if url.lower().startswith(("http://", "https://")) else "not found"
    return f"no answer ({type(err).__name__}: {err})"


class StoreReader:
    """Attributes and numpy slices of a store's arrays, with no xarray and no index loading.

    Zarr through zarr-python, NetCDF through h5py. Opening reads metadata only,
    so a 30-day store opens as fast as a one-minute one. A Zarr store may also
    be given by an fsspec URL (``https://host/x.zarr``, ``s3://bucket/x.zarr``):
    then it is read over the network, through :class:`zarr.storage.FsspecStore`.

    Parameters
    ----------
    path : path-like or str
        A local store, or the URL of a published Zarr store.

    Raises
    ------
    SourceNotFoundError
        Nothing is at ``path``, or the URL does not answer (the HTTP status is named).
    FormatError
        What is there is not a Spectral Atlas store.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = store_location(path)
        remote = isinstance(self.path, str)
        if not remote and not self.path.exists():
            raise SourceNotFoundError(f"no store at {str(self.path)!r}")
        path = self.path
        self.is_zarr = remote or path.is_dir()
        try:
            if remote:
                self._root = _open_remote(path)
                attrs = dict(self._root.attrs)
            elif self.is_zarr:
                import zarr

                self._root = zarr.open_group(path, mode="r")
                attrs = dict(self._root.attrs)
            else:
                import h5py

                self._root = h5py.File(path, "r")
                attrs = {k: _plain(v) for k, v in self._root.attrs.items()}
        except AtlasError:  # already one line naming the URL
            raise
        except Exception as err:  # each backend has its own "not my format"
            raise FormatError(f"{str(path)!r} is not a Spectral Atlas store: {err}") from None
        if "n_fft" not in attrs or "0" not in self._root:
            raise FormatError(f"{str(path)!r} is not a Spectral Atlas store (no level '0' or no STFT attributes)")
        self.attrs = attrs
        self._arrays: dict[str, object] = {}
        # h5py serialises every call anyway; zarr reads run concurrently.
        self._lock = contextlib.nullcontext() if self.is_zarr else threading.Lock()

    @property
    def format_version(self) -> int:
        """The store's format: 3 (waveform), 2 (compressed) or 1 (every store before, with no ``format_version``)."""
        return int(self.attrs.get("format_version", 1))

    @property
    def has_waveform(self) -> bool:
        """Whether the store holds the waveform summaries (format 3)."""
        return self.has(0, WAVE_NAMES[0])

    def shape(self, level: int, name: str) -> tuple[int, ...]:
        """Shape of array ``name`` of a level."""
        return tuple(self._root[f"{level}/{name}"].shape)

    def array_attrs(self, level: int, name: str) -> dict:
        """Attributes of array ``name`` of a level, as plain Python values."""
        return {k: _plain(v) for k, v in self._root[f"{level}/{name}"].attrs.items()}

    def time_chunk(self, level: int, name: str = "power") -> int:
        """Columns per stored chunk along time of array ``name`` (512 for a contiguous NetCDF array)."""
        chunks = self._root[f"{level}/{name}"].chunks
        return int(chunks[-1]) if chunks else TIME_CHUNK

    @property
    def channels(self) -> list[str]:
        """Labels of the channels of a multichannel store (``channel="all"``); ``[]`` for a single channel."""
        return json.loads(self.attrs["channel_labels"]) if self.attrs.get("channel") == "all" else []

    def has(self, level: int, name: str) -> bool:
        """Whether a level holds array ``name``."""
        return f"{level}/{name}" in self._root if self.is_zarr else name in self._root[str(level)]

    def read(self, level: int, name: str, index: tuple) -> np.ndarray:
        """``array[index]`` of array ``name`` of a level, as numpy."""
        key = f"{level}/{name}"
        if key not in self._arrays:
            self._arrays[key] = self._root[key]
        with self._lock:
            return np.asarray(self._arrays[key][index])

    def close(self) -> None:
        """Close the file (NetCDF); a Zarr store holds nothing open."""
        if not self.is_zarr:
            self._root.close()


def _plain(value):
    """A plain Python value from an attribute as h5py gives it (bytes, 1-element arrays)."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode()
    if isinstance(value, np.ndarray) and value.size == 1:
        return value.item()
    return value.item() if isinstance(value, np.generic) else value


def store_info(path: str | os.PathLike) -> dict[str, object]:
    """A JSON-friendly summary of a store, from its metadata alone.

    Parameters
    ----------
    path : path-like or str
        A local store, or the fsspec URL of a published Zarr store.

    Returns
    -------
    dict
        Time span, STFT parameters, channel (an index, "mean" or "all"),
        ``channels`` (labels of a multichannel store's channels, else []),
        calibration (None if none),
        and per level its columns, seconds per column, chunking, the
        pyramids of power it holds (``mean``, and ``max`` above level 0) and
        ``waveform`` (whether it holds the waveform summaries; also at the top,
        for the store), plus the sources and the counts of NaN/infinite and
        clipped samples in them (None for a store written before they were
        counted). ``size`` (None for a remote store): ``bytes`` on disk,
        ``float32_bytes`` of its arrays as plain float32, ``waveform_bytes``
        the waveform arrays' share of ``bytes``, and ``pcm16_bytes`` of its
        audio as 16-bit PCM.
    """
    reader = StoreReader(path)  # a local path or a URL
    attrs = reader.attrs
    calibration = read_calibration(attrs)
    factor = read_pyramid_factor(attrs)
    levels = []
    for k in range(int(attrs["n_levels"])):
        levels.append(
            {
                "level": k,
                "n_frames": reader.shape(k, "power")[-1],
                "seconds_per_frame": attrs["hop_length"] * factor**k / attrs["sample_rate"],
                "time_chunk": reader.time_chunk(k),
                "pyramids": ["mean", "max"] if reader.has(k, "power_max") else ["mean"],
                "waveform": reader.has(k, WAVE_NAMES[0]),
            }
        )
    return {
        "path": str(reader.path),
        "format": "zarr" if reader.is_zarr else "netcdf",
        "start_time": attrs["start_time"],
        "end_time": attrs["end_time"],
        "duration_seconds": attrs["duration_seconds"],
        "sample_rate": attrs["sample_rate"],
        "stft": {k: attrs[k] for k in ("n_fft", "hop_length", "win_length", "window")},
        "channel": attrs["channel"],
        "channels": reader.channels,
        "n_frames": attrs["n_frames"],
        "units": reader.array_attrs(0, "power").get("units"),
        "calibration": (
            {**calibration.to_json(), "psd_units": PSD_UNITS, "band_units": BAND_UNITS} if calibration else None
        ),
        "location": read_location(attrs),
        "pyramid_factor": factor,
        "levels": levels,
        "sources": json.loads(attrs.get("sources", "[]")),
        "gaps_seconds": json.loads(attrs.get("gaps_seconds", "[]")),
        "nonfinite_samples": attrs.get("nonfinite_samples"),
        "clipped_samples": attrs.get("clipped_samples"),
        "software": attrs.get("software"),
        "format_version": reader.format_version,
        "waveform": reader.has_waveform,
        "size": _sizes(reader),
    }


def _sizes(reader: StoreReader) -> dict[str, int | float] | None:
    """Bytes of a store on disk (and its waveform's), of its arrays as plain float32, and of its audio as 16-bit PCM.

    None for a remote store.
    """
    if isinstance(reader.path, str):
        return None  # (a remote store's size would need a listing, which a static server does not give)
    files = [reader.path] if reader.path.is_file() else [p for p in reader.path.rglob("*") if p.is_file()]
    on_disk = sum(p.stat().st_size for p in files)
    names = ("power", "power_max", *WAVE_NAMES)
    levels = range(int(reader.attrs["n_levels"]))
    plain = sum(4 * int(np.prod(reader.shape(k, n))) for k in levels for n in names if reader.has(k, n))
    waves = [(k, n) for k in levels for n in WAVE_NAMES if reader.has(k, n)]
    if reader.is_zarr:
        wave_bytes = sum(
            p.stat().st_size for k, n in waves for p in (reader.path / str(k) / n).rglob("*") if p.is_file()
        )
    else:  # one HDF5 file: each dataset's own storage
        wave_bytes = sum(int(reader._root[f"{k}/{n}"].id.get_storage_size()) for k, n in waves)
    pcm16 = 2 * int(reader.attrs["n_samples"]) * int(reader.attrs.get("n_channels", 1))
    return {
        "bytes": on_disk,
        "float32_bytes": plain,
        "waveform_bytes": wave_bytes,
        "pcm16_bytes": pcm16,
        "ratio_to_pcm16": on_disk / pcm16,
    }


def calibrate(store: str | os.PathLike, calibration: Calibration | None) -> Path:
    """Set, replace or (with None) remove the calibration of an existing store.

    Only the root attributes change; the power arrays are not touched, so this
    takes a moment whatever the store's size. Stores open elsewhere keep the
    calibration they opened with.

    Parameters
    ----------
    store : path-like
        A Zarr directory or NetCDF file written by :func:`data_access.ingest`.
    calibration : Calibration or None

    Returns
    -------
    Path
        The store.
    """
    return update_root_attrs(store, calibration_attrs(calibration), drop=lambda key: key.startswith(CALIBRATION_PREFIX))


def set_location(store: str | os.PathLike, location: tuple[float, float] | None) -> Path:
    """Set, replace or (with None) remove the place of an existing store's deployment (latitude, longitude).

    Only the root attribute ``location`` changes (:func:`~data_access.schema.location_attrs`),
    as :func:`calibrate` changes the calibration's.

    Raises
    ------
    ParameterError
        A latitude outside -90..90 or a longitude outside -180..180 degrees.
    """
    new = location_attrs(location)  # checked before the store is opened
    return update_root_attrs(store, new, drop=lambda key: key == LOCATION_ATTR)


def update_root_attrs(store: str | os.PathLike, new: dict[str, object], *, drop) -> Path:
    """Replace the root attributes of an existing store for which ``drop(key)`` holds by ``new``, in one write.

    Zarr: the root's attributes are written whole and the metadata consolidated
    again; NetCDF: the attributes are changed in place with h5py.
    """
    path = Path(store)
    if not path.exists():
        raise SourceNotFoundError(f"no store at {str(path)!r}")
    reader = StoreReader(path)  # checks that it is a store before anything is written
    if reader.is_zarr:
        root = zarr.open_group(path, mode="r+")
        attrs = {k: v for k, v in root.attrs.asdict().items() if not drop(k)}
        root.attrs.put({**attrs, **new})
        with warnings.catch_warnings():
            # Not yet in the Zarr v3 spec, but xarray and zarr-python read it.
            warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
            zarr.consolidate_metadata(path)  # readers open the consolidated copy
    else:
        import h5py

        reader.close()  # its read-only handle would block opening the file for writing
        try:
            with h5py.File(path, "r+") as f:
                for key in [k for k in f.attrs if drop(k)]:
                    del f.attrs[key]
                f.attrs.update(new)
        except OSError as err:
            raise FormatError(f"cannot write the attributes of {str(path)!r} (is it open elsewhere?): {err}") from None
    return path
