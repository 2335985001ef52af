"""Audio sources and the multi-file timeline.

An :class:`AudioSource` is one file: it knows its ``sample_rate``, absolute
``start_time`` (numpy ``datetime64[ns]``, UTC), ``n_samples`` and ``channels``,
and ``read(start, stop)`` returns any sample range without reading the rest.
Readers are chosen by suffix (:data:`READERS`): libsndfile (through soundfile)
for WAV, FLAC, OGG, MP3 and AIFF; obspy for MiniSEED.

A :class:`Timeline` joins sources on one sample grid by absolute time. Missing
samples (a gap between files, a gap inside a MiniSEED file) read as NaN: gaps
are never closed up, so every later sample keeps its true time.
"""

from __future__ import annotations

import bisect
import datetime as dt
import glob
import itertools
import logging
import os
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import soundfile as sf

from data_access.errors import FormatError, ParameterError, SourceNotFoundError

log = logging.getLogger(__name__)

StartTimeFrom = Literal["header", "filename", "user", "mtime"]
Channel = int | Literal["mean"]

#: Filename time patterns tried, in order, when a file has no time in its header.
TIME_PATTERNS: dict[str, str] = {
    "ooi": "%Y-%m-%dT%H:%M:%S.%f",  # OOI: ...-YYYY-MM-DDTHH:MM:SS.ffffff.mseed
    "iso": "%Y%m%dT%H%M%S",  # compact ISO 8601
    "audiomoth": "%Y%m%d_%H%M%S",  # AudioMoth: YYYYMMDD_HHMMSS.WAV
    "soundtrap": "%y%m%d%H%M%S",  # SoundTrap: SERIAL.YYMMDDHHMMSS.wav
}

_STRFTIME_REGEX = {
    "%Y": r"\d{4}",
    "%y": r"\d{2}",
    "%m": r"\d{2}",
    "%d": r"\d{2}",
    "%H": r"\d{2}",
    "%M": r"\d{2}",
    "%S": r"\d{2}",
    "%f": r"\d{1,6}",
    "%j": r"\d{3}",
}


def to_datetime64(value: object) -> np.datetime64:
    """Convert a time (ISO string, datetime, Timestamp, datetime64) to UTC ``datetime64[ns]``.

    Time-zone-aware inputs are converted to UTC; naive ones are taken as UTC.
    """
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise ParameterError(f"cannot read {value!r} as a time: {err}") from None
    if ts is pd.NaT:
        raise ParameterError(f"{value!r} is not a time")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return np.datetime64(ts.as_unit("ns").asm8, "ns")


def seconds_to_ns(seconds: float | np.ndarray) -> np.ndarray:
    """Seconds (float) to integer nanoseconds, rounded, as ``timedelta64[ns]``."""
    return np.round(np.asarray(seconds, dtype=np.float64) * 1e9).astype("int64").astype("timedelta64[ns]")


def samples_to_timedelta(samples: float | np.ndarray, sample_rate: float) -> np.ndarray:
    """Offset of (possibly fractional) sample positions as ``timedelta64[ns]``.

    Whole seconds and the remainder are converted separately so a position days
    into a recording is still exact to the nanosecond.
    """
    samples = np.asarray(samples, dtype=np.float64)
    whole = np.floor(samples / sample_rate)
    rest = samples - whole * sample_rate
    return whole.astype("int64") * np.timedelta64(1_000_000_000, "ns") + seconds_to_ns(rest / sample_rate)


def time_from_filename(name: str, patterns: Iterable[str]) -> np.datetime64 | None:
    """The first time any strftime ``patterns`` finds in the file name, or None."""
    for pattern in patterns:
        regex = re.escape(pattern)
        for code, digits in _STRFTIME_REGEX.items():
            regex = regex.replace(re.escape(code), f"({digits})" if code == "%f" else digits)
        for match in re.finditer(f"(?<!\\d){regex}(?!\\d)", name):
            try:
                return to_datetime64(dt.datetime.strptime(match.group(0), pattern))
            except ValueError:
                continue
    return None


@dataclass(frozen=True, kw_only=True)
class AudioSource:
    """One audio file on an absolute time axis.

    Attributes
    ----------
    path : Path
    sample_rate : float
        Samples per second.
    start_time : numpy.datetime64
        Time of the first sample, UTC, nanosecond precision.
    n_samples : int
        Samples per channel that can really be read.
    channels : int
    start_time_from : {"header", "filename", "user", "mtime"}
        Where ``start_time`` came from.
    """

    path: Path
    sample_rate: float
    start_time: np.datetime64
    n_samples: int
    channels: int
    start_time_from: StartTimeFrom
    missing_samples: int = 0

    suffixes: ClassVar[tuple[str, ...]] = ()

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.sample_rate

    @property
    def end_time(self) -> np.datetime64:
        """Time just after the last sample."""
        return self.start_time + samples_to_timedelta(self.n_samples, self.sample_rate)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` of every channel.

        Returns
        -------
        samples : ndarray, float32, shape (stop - start, channels)
            Full scale is 1.0 for PCM files; MiniSEED gives counts. Missing
            samples are NaN.
        """
        if not 0 <= start <= stop <= self.n_samples:
            raise ParameterError(f"sample range [{start}, {stop}) is outside 0..{self.n_samples} of {self.path.name!r}")
        return self._read(start, stop)

    def _read(self, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def open(cls, path: Path, start_time: np.datetime64 | None, time_patterns: Sequence[str]) -> AudioSource:
        """Read the header of ``path``; subclasses implement this."""
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        """A JSON-friendly record of this source, for store attributes."""
        return {
            "path": str(self.path),
            "start_time": str(self.start_time),
            "start_time_from": self.start_time_from,
            "sample_rate": self.sample_rate,
            "n_samples": int(self.n_samples),
            "channels": int(self.channels),
            "missing_samples": int(self.missing_samples),
        }


def _resolve_start(
    path: Path,
    header_time: np.datetime64 | None,
    user_time: np.datetime64 | None,
    time_patterns: Sequence[str],
    duration: float,
) -> tuple[np.datetime64, StartTimeFrom]:
    if user_time is not None:
        return user_time, "user"
    if header_time is not None:
        return header_time, "header"
    found = time_from_filename(path.name, time_patterns)
    if found is not None:
        return found, "filename"
    # A recorder sets mtime when it closes the file, so the start is a duration earlier.
    end = to_datetime64(dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC))
    log.warning(
        "%s: no start time in the header or file name (tried %s); using its modification time "
        "minus its duration. Pass --start-time to set it.",
        path.name,
        ", ".join(time_patterns) or "no patterns",
    )
    return end - seconds_to_ns(duration), "mtime"


def _declared_wav_frames(path: Path, info: sf._SoundFileInfo) -> int | None:
    """Frames a WAV header promises (its data chunk size), or None if not a plain RIFF WAV."""
    bytes_per_sample = {"PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}.get(info.subtype)
    if info.format != "WAV" or bytes_per_sample is None:
        return None
    with open(path, "rb") as f:
        if f.read(4) != b"RIFF":
            return None
        f.seek(12)
        while header := f.read(8):
            if len(header) < 8:
                return None
            chunk_id, size = struct.unpack("<4sI", header)
            if chunk_id == b"data":
                return size // (bytes_per_sample * info.channels)
            f.seek(size + (size & 1), os.SEEK_CUR)
    return None


def _can_read_at(path: Path, position: int) -> bool:
    try:
        with sf.SoundFile(path) as f:
            f.seek(position)
            return len(f.read(1, dtype="float32")) == 1
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return False


def _readable_frames(path: Path, frames: int) -> int:
    """How many of the ``frames`` a header promises can really be decoded."""
    if frames == 0 or _can_read_at(path, frames - 1):
        return frames
    lo, hi = 0, frames - 1  # lo is readable (or 0), hi is not
    if not _can_read_at(path, 0):
        return 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _can_read_at(path, mid) else (lo, mid)
    return lo + 1


@dataclass(frozen=True, kw_only=True)
class SoundFileSource(AudioSource):
    """WAV, FLAC, OGG, MP3, AIFF and the rest of libsndfile's formats."""

    suffixes: ClassVar[tuple[str, ...]] = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".w64", ".rf64")

    @classmethod
    def open(cls, path: Path, start_time: np.datetime64 | None, time_patterns: Sequence[str]) -> SoundFileSource:
        """Read the header, and find where a truncated file's data really ends."""
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError) as err:
            raise FormatError(f"cannot read {path.name!r} as audio: {_libsndfile_reason(err)}") from None
        declared = _declared_wav_frames(path, info) or info.frames
        readable = _readable_frames(path, info.frames)
        if readable == 0:
            raise FormatError(f"{path.name!r} contains no audio samples")
        missing = max(declared - readable, 0)
        if missing:
            log.warning(
                "%s is truncated: reading the %.3f s that are there, "
                "%.3f s (%d samples) promised by its header are missing",
                path.name,
                readable / info.samplerate,
                missing / info.samplerate,
                missing,
            )
        start, how = _resolve_start(path, None, start_time, time_patterns, readable / info.samplerate)
        return cls(
            path=path,
            sample_rate=float(info.samplerate),
            start_time=start,
            n_samples=readable,
            channels=info.channels,
            start_time_from=how,
            missing_samples=missing,
        )

    def _read(self, start: int, stop: int) -> np.ndarray:
        try:
            with sf.SoundFile(self.path) as f:
                f.seek(start)
                data = f.read(stop - start, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:  # changed or damaged since it was opened
            raise FormatError(
                f"cannot read samples {start}..{stop} of {self.path.name!r}: {_libsndfile_reason(err)}"
            ) from None
        if len(data) < stop - start:  # a lossy codec's last frame can fall short
            data = np.vstack([data, np.full((stop - start - len(data), self.channels), np.nan, np.float32)])
        return data


def _libsndfile_reason(err: Exception) -> str:
    text = str(err)
    return text.split(": ", 1)[1] if ": " in text else text


@dataclass(frozen=True, kw_only=True)
class MiniSeedSource(AudioSource):
    """MiniSEED through obspy: traces of one SEED id become one channel.

    Traces are placed on the sample grid of the earliest trace by their own
    start times; samples no trace covers read as NaN.
    """

    suffixes: ClassVar[tuple[str, ...]] = (".mseed", ".miniseed", ".ms")
    seed_ids: tuple[str, ...] = field(default=())
    first_trace_time: str = ""  # the header time of sample 0, even when start_time was overridden

    @classmethod
    def open(cls, path: Path, start_time: np.datetime64 | None, time_patterns: Sequence[str]) -> MiniSeedSource:
        """Read the record headers only: traces, their times and sample counts."""
        import obspy

        try:
            stream = obspy.read(str(path), format="MSEED", headonly=True)
        except Exception as err:  # obspy raises many types for a bad file
            raise FormatError(f"cannot read {path.name!r} as MiniSEED: {err}") from None
        if not stream:
            raise FormatError(f"{path.name!r} contains no MiniSEED traces")
        rates = sorted({tr.stats.sampling_rate for tr in stream})
        if len(rates) > 1:
            raise FormatError(f"{path.name!r} mixes sample rates {rates}")
        rate = rates[0]
        first = min(tr.stats.starttime for tr in stream)
        last = max(tr.stats.endtime for tr in stream)
        n_samples = int(round((last - first) * rate)) + 1
        header_time = to_datetime64(first.datetime)
        start, how = _resolve_start(path, header_time, start_time, time_patterns, n_samples / rate)
        return cls(
            path=path,
            sample_rate=float(rate),
            start_time=start,
            n_samples=n_samples,
            channels=len({tr.id for tr in stream}),
            start_time_from=how,
            seed_ids=tuple(sorted({tr.id for tr in stream})),
            first_trace_time=str(first),
        )

    def _read(self, start: int, stop: int) -> np.ndarray:
        import obspy

        out = np.full((stop - start, self.channels), np.nan, dtype=np.float32)
        if stop == start:
            return out
        t0 = obspy.UTCDateTime(self.first_trace_time)
        stream = obspy.read(
            str(self.path),
            format="MSEED",
            starttime=t0 + (start - 1) / self.sample_rate,
            endtime=t0 + stop / self.sample_rate,
        )
        for tr in stream:
            data = np.ma.filled(np.ma.asarray(tr.data, dtype=np.float32), np.nan)
            offset = int(round((tr.stats.starttime - t0) * self.sample_rate)) - start
            lo, hi = max(offset, 0), min(offset + len(data), stop - start)
            if lo < hi:
                out[lo:hi, self.seed_ids.index(tr.id)] = data[lo - offset : hi - offset]
        return out


#: Reader class for each file suffix (lower case).
READERS: dict[str, type[AudioSource]] = {
    suffix: reader for reader in (SoundFileSource, MiniSeedSource) for suffix in reader.suffixes
}


def open_source(
    path: str | os.PathLike,
    *,
    start_time: object | None = None,
    time_patterns: Sequence[str] = tuple(TIME_PATTERNS.values()),
) -> AudioSource:
    """Open one audio file, reading only its header.

    Parameters
    ----------
    path : path-like
    start_time : time-like, optional
        Absolute time of the first sample; overrides the header and file name.
    time_patterns : sequence of str
        strftime patterns to look for in the file name when the header has no time.

    Returns
    -------
    AudioSource
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise SourceNotFoundError(f"{str(path)!r} is a broken link (it points to {os.readlink(path)!r})")
    if not path.exists():
        raise SourceNotFoundError(f"no such file: {str(path)!r}")
    if path.is_dir():
        raise FormatError(f"{str(path)!r} is a directory; give the files in it or a glob pattern")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise FormatError(f"cannot read {path.name!r}: suffix {path.suffix!r} is not one of {sorted(READERS)}")
    if path.stat().st_size == 0:
        raise FormatError(f"{path.name!r} is empty (0 bytes)")
    user_time = None if start_time is None else to_datetime64(start_time)
    return reader.open(path, user_time, time_patterns)


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand ``inputs`` into files, keeping order and dropping duplicates.

    Files are kept as given, directories are searched recursively for known
    audio suffixes, glob patterns are expanded.
    """
    found: list[Path] = []
    for item in inputs:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            audio = sorted(p for p in path.rglob("*") if p.suffix.lower() in READERS and p.is_file())
            if not audio:
                raise SourceNotFoundError(f"directory {text!r} contains no audio files ({', '.join(sorted(READERS))})")
            found.extend(audio)
        elif glob.has_magic(text) and not path.exists():
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            if not matches:
                raise SourceNotFoundError(f"pattern {text!r} matches no files")
            found.extend(matches)
        else:
            found.append(path)
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Timeline:
    """Several sources on one sample grid, read as one mono signal.

    Attributes
    ----------
    sources : tuple of AudioSource
        Sorted by start time.
    offsets : tuple of int
        Sample index on the timeline of each source's first sample.
    channel : int or "mean"
        Which channel to read, or the mean of all channels.
    """

    sources: tuple[AudioSource, ...]
    offsets: tuple[int, ...]
    channel: Channel = 0

    @property
    def sample_rate(self) -> float:
        """Samples per second, shared by every source."""
        return self.sources[0].sample_rate

    @property
    def start_time(self) -> np.datetime64:
        """Time of sample 0 of the timeline (the earliest source's first sample)."""
        return self.sources[0].start_time

    @property
    def n_samples(self) -> int:
        """Samples from the first source's start to the last source's end."""
        return max(off + src.n_samples for off, src in zip(self.offsets, self.sources, strict=True))

    @property
    def duration(self) -> float:
        """Length in seconds, gaps included."""
        return self.n_samples / self.sample_rate

    def gaps(self) -> list[tuple[int, int]]:
        """Sample ranges ``[start, stop)`` between files that no file covers."""
        gaps, covered = [], 0
        for off, src in zip(self.offsets, self.sources, strict=True):
            if off > covered:
                gaps.append((covered, off))
            covered = max(covered, off + src.n_samples)
        return gaps

    def read(self, start: int, stop: int) -> np.ndarray:
        """Mono samples ``[start, stop)`` of the timeline.

        Returns
        -------
        samples : ndarray, float32, shape (stop - start,)
            NaN where no file has data. Where files overlap, the later file wins.
        """
        out = np.full(stop - start, np.nan, dtype=np.float32)
        # Sources are sorted by offset; the first that can reach `start` is found by bisection.
        first = max(bisect.bisect_right(self.offsets, start) - 1, 0)
        longest = max(src.n_samples for src in self.sources)
        first = bisect.bisect_left(self.offsets, start - longest, hi=first + 1)
        for off, src in zip(self.offsets[first:], self.sources[first:], strict=True):
            if off >= stop:
                break
            lo, hi = max(start, off), min(stop, off + src.n_samples)
            if lo < hi:
                data = src.read(lo - off, hi - off)
                out[lo - start : hi - start] = data.mean(axis=1) if self.channel == "mean" else data[:, self.channel]
        return out

    def describe(self) -> list[dict[str, object]]:
        """One record per source, with its offset on the timeline."""
        return [{**src.describe(), "offset": int(off)} for off, src in zip(self.offsets, self.sources, strict=True)]


def open_timeline(
    inputs: Iterable[str | os.PathLike] | str | os.PathLike,
    *,
    start_time: object | None = None,
    time_pattern: str | None = None,
    channel: Channel = 0,
) -> Timeline:
    """Join audio files into one timeline ordered by absolute start time.

    Parameters
    ----------
    inputs : path-like or iterable of path-like
        Files, directories (searched recursively) and glob patterns.
    start_time : time-like, optional
        Start of the first file. With several files, they are taken as one
        continuous recording in the order given.
    time_pattern : str, optional
        strftime pattern of the start time in the file names, tried before the
        built-in presets (:data:`TIME_PATTERNS`).
    channel : int or "mean", default: 0
        Channel to analyse, or the mean of all channels.

    Returns
    -------
    Timeline
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths = expand_inputs(inputs)
    if not paths:
        raise ParameterError("no input files given")
    patterns = ([time_pattern] if time_pattern else []) + list(TIME_PATTERNS.values())
    if start_time is None:
        sources = [open_source(p, time_patterns=patterns) for p in paths]
    else:
        sources, t = [], to_datetime64(start_time)
        for p in paths:
            sources.append(open_source(p, start_time=t))
            t = sources[-1].end_time
    rates = {src.sample_rate for src in sources}
    if len(rates) > 1:
        by_rate = {rate: [s.path.name for s in sources if s.sample_rate == rate] for rate in sorted(rates)}
        listing = "; ".join(
            f"{rate:g} Hz: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}" for rate, names in by_rate.items()
        )
        raise FormatError(f"input files have different sample rates ({listing})")
    _check_channel(channel, sources)
    sources.sort(key=lambda s: s.start_time)
    rate = sources[0].sample_rate
    t0 = sources[0].start_time
    offsets = [int(round((src.start_time - t0) / np.timedelta64(1, "ns") * 1e-9 * rate)) for src in sources]
    for (a_off, a), (b_off, b) in itertools.pairwise(zip(offsets, sources, strict=True)):
        if b_off < a_off + a.n_samples:
            log.warning(
                "%s overlaps %s by %.3f s; the later file's samples are used there",
                b.path.name,
                a.path.name,
                (a_off + a.n_samples - b_off) / rate,
            )
    return Timeline(tuple(sources), tuple(offsets), channel)


def _check_channel(channel: Channel, sources: Sequence[AudioSource]) -> None:
    if channel == "mean":
        return
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
        raise ParameterError(f"channel={channel!r} must be a channel index or 'mean'")
    for src in sources:
        if not 0 <= channel < src.channels:
            raise ParameterError(
                f"channel={channel} is out of range: {src.path.name!r} has channels 0..{src.channels - 1}"
            )
