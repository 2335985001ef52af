"""Audio sources and the multi-file timeline.

An :class:`AudioSource` is one file: it knows its ``sample_rate``, absolute
``start_time`` (numpy ``datetime64[ns]``, UTC), ``n_samples`` and ``channels``,
and ``read(start, stop)`` returns any sample range without reading the rest.
Readers are chosen by suffix (:data:`READERS`): libsndfile (through soundfile)
for WAV, FLAC, OGG, MP3 and AIFF; obspy for MiniSEED.

A :class:`Timeline` joins sources on one sample grid by absolute time. The rules:

- **Start times** come, in this order, from the user (``start_time``), from the
  file header (MiniSEED record times; the BWF ``bext`` chunk of a WAV file,
  OriginationDate plus TimeReference samples since midnight, else plus
  OriginationTime), or from a strftime pattern in the file name (``time_pattern``,
  then :data:`TIME_PATTERNS`). A file with none of these is an error naming what
  was tried: a modification time is never trusted silently.
- **Gaps**: samples no file covers (between files, or missing inside a MiniSEED
  file) read as NaN. Gaps are never closed up, so every later sample keeps its
  true time.
- **Overlaps**: where files overlap, the later file (later start time) wins.
  Each overlap is measured and reported; one longer than ``max_overlap`` seconds
  (duplicated or mis-timed files) is an error naming both files.
- **MiniSEED traces** of one SEED id are merged onto one sample grid exactly as
  obspy's ``Stream.merge(method=1)`` does (see :func:`_merge_plan`), so a file
  cut into many traces with jittered start times reads as obspy's merged trace.
- **Sample rates** must agree, unless a target ``sample_rate`` is given: then
  every other source is resampled with soxr on the fly (:class:`ResampledSource`).
- **Bad files** (unreadable, empty, no samples, no start time) stop the opening
  with one line naming the file, or with ``skip_bad=True`` are skipped with a
  warning and listed in :meth:`Timeline.summary`.
- **Bounds**: a sample rate outside :data:`SAMPLE_RATE_RANGE`, a file dated
  outside :data:`RECORDING_WINDOW`, or files spanning more than
  :data:`MAX_SPAN_YEARS` (dates from different deployments, or a wrong clock)
  are refused with one line before anything is read or allocated. A FLAC
  file whose STREAMINFO breaks the format is damaged, not truncated.
- **Channels**: a timeline reads one channel, the mean of all channels, or with
  ``channel="all"`` every channel (then every file must have the same number of
  channels, and :meth:`Timeline.read` returns shape ``(n, channels)``).
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import glob
import logging
import math
import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import soundfile as sf

from data_access.errors import AtlasError, FormatError, ParameterError, SourceNotFoundError
from data_access.times import samples_to_timedelta, time_from_filename, to_datetime64, utc_timestamp

if TYPE_CHECKING:
    from obspy import UTCDateTime

log = logging.getLogger(__name__)

StartTimeFrom = Literal["header", "filename", "user"]
Channel = int | Literal["mean", "all"]
#: Sample ranges ``[start, stop)``.
Ranges = list[tuple[int, int]]

#: Filename time patterns tried, in order, when a file has no time in its header.
TIME_PATTERNS: dict[str, str] = {
    "ooi": "%Y-%m-%dT%H:%M:%S.%f",  # OOI: ...-YYYY-MM-DDTHH:MM:SS.ffffff.mseed
    "iso": "%Y%m%dT%H%M%S",  # compact ISO 8601
    "audiomoth": "%Y%m%d_%H%M%S",  # AudioMoth: YYYYMMDD_HHMMSS.WAV
    "soundtrap": "%y%m%d%H%M%S",  # SoundTrap: SERIAL.YYMMDDHHMMSS.wav
}

#: Dates a recording may have, start to end: earlier or later is a wrong clock or a
#: damaged header (a clock never set or run over: 0001-01-01, 2106-02-07); 1900
#: keeps digitised historic recordings.
RECORDING_WINDOW = (np.datetime64("1900-01-01", "ns"), np.datetime64("2100-01-01", "ns"))
#: Longest span, first sample to last, gaps included, of one timeline (one store):
#: a deployment lasts weeks to a year; longer is files from different deployments,
#: or a wrong date, which would make a store of empty columns over the years between.
MAX_SPAN_YEARS = 2
#: Sample rates accepted, in Hz, given or read from a header: from one sample in
#: 1000 s (SEED's slowest long-period channels) to 4 MHz (ultrasonic and broadband
#: hydrophone recorders sample at up to 2 MHz). A faster rate is a damaged header or
#: a mistake, and resampling a file up to it would write a store of terabytes.
SAMPLE_RATE_RANGE = (1e-3, 4e6)

_YEAR = 365.25 * 86400  # seconds in a Julian year

#: obspy's default ``misalignment_threshold``: traces whose sample grids differ by
#: less than this fraction of a sample are snapped onto one grid.
MISALIGNMENT_THRESHOLD = 1e-2


def _day(t: np.datetime64) -> str:
    return str(t.astype("datetime64[D]"))


def _start_time_arg(value: object) -> np.datetime64:
    """A start time given by the user, checked to lie in :data:`RECORDING_WINDOW`."""
    lo, hi = RECORDING_WINDOW
    if not lo <= utc_timestamp(value) < hi:
        raise ParameterError(
            f"start_time {value!r} is outside {_day(lo)} .. {_day(hi)}, the dates a recording may have "
            "(RECORDING_WINDOW)"
        )
    return to_datetime64(value)


def _merge_ranges(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sorted, disjoint union of ``[start, stop)`` ranges (touching ones joined)."""
    merged: Ranges = []
    for a, b in sorted(r for r in ranges if r[0] < r[1]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _complement(ranges: Ranges, start: int, stop: int) -> Ranges:
    """The parts of ``[start, stop)`` that sorted, disjoint ``ranges`` leave out."""
    out, at = [], start
    for a, b in ranges:
        if a > at:
            out.append((at, min(a, stop)))
        at = max(at, b)
    if at < stop:
        out.append((at, stop))
    return [(a, b) for a, b in out if a < b]


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
    start_time_from : {"header", "filename", "user"}
        Where ``start_time`` came from.
    missing_samples : int
        Samples the header promises beyond those that can be read (a truncated file).
    file_size : int or None
        Bytes of the file when it was opened (:func:`open_source` sets it), recorded
        by :meth:`describe` so that a file changed since can be told (:func:`reopen_source`).
    """

    path: Path
    sample_rate: float
    start_time: np.datetime64
    n_samples: int
    channels: int
    start_time_from: StartTimeFrom
    missing_samples: int = 0
    file_size: int | None = None

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

    def segments(self, channel: Channel = 0) -> Ranges:
        """Sample ranges ``[start, stop)`` of this file that hold data for ``channel``.

        The whole file, except where a MiniSEED file has gaps.
        """
        return [(0, self.n_samples)] if self.n_samples else []

    @classmethod
    def open(cls, path: Path, start_time: np.datetime64 | None, time_patterns: Sequence[str]) -> AudioSource:
        """Read the header of ``path``; subclasses implement this."""
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        """A JSON-friendly record of this source, for store attributes (with ``size``, its bytes, when known)."""
        return {
            "path": str(self.path),
            "start_time": str(self.start_time),
            "start_time_from": self.start_time_from,
            "sample_rate": self.sample_rate,
            "n_samples": int(self.n_samples),
            "channels": int(self.channels),
            "missing_samples": int(self.missing_samples),
            **({} if self.file_size is None else {"size": int(self.file_size)}),
        }


def _resolve_start(
    path: Path,
    header_time: np.datetime64 | None,
    user_time: np.datetime64 | None,
    time_patterns: Sequence[str],
    header_tried: str,
) -> tuple[np.datetime64, StartTimeFrom]:
    """The start time and where it came from: the user, else the header, else the file name."""
    if user_time is not None:
        return user_time, "user"
    if header_time is not None:
        return header_time, "header"
    found = time_from_filename(path.name, time_patterns)
    if found is not None:
        return found, "filename"
    raise FormatError(
        f"{path.name!r} has no start time: {header_tried}, its name matches none of the time patterns "
        f"({', '.join(time_patterns) or 'none given'}) and no start time was given; "
        "pass --time-pattern PATTERN (time_pattern=) or --start-time TIME (start_time=)"
    )


def _riff_chunk(path: Path, chunk_id: bytes) -> tuple[int, int] | None:
    """``(offset, size)`` of the first ``chunk_id`` chunk of a RIFF (or RF64/BW64) file, or None."""
    with open(path, "rb") as f:
        if f.read(4) not in (b"RIFF", b"RF64", b"BW64"):
            return None
        f.seek(12)
        while len(header := f.read(8)) == 8:
            found, size = struct.unpack("<4sI", header)
            if found == chunk_id:
                return f.tell(), size
            f.seek(size + (size & 1), os.SEEK_CUR)
    return None


def _declared_wav_frames(path: Path, info: sf._SoundFileInfo) -> int | None:
    """Frames a WAV header promises (its data chunk size), or None if not a plain RIFF WAV."""
    bytes_per_sample = {"PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}.get(info.subtype)
    if info.format != "WAV" or bytes_per_sample is None:
        return None
    found = _riff_chunk(path, b"data")
    return None if found is None else found[1] // (bytes_per_sample * info.channels)


_BEXT_DATE = re.compile(r"(\d{4})\D(\d{2})\D(\d{2})")
_BEXT_TIME = re.compile(r"(\d{2})\D(\d{2})\D(\d{2})")


def _bext_start_time(path: Path, sample_rate: float) -> np.datetime64 | None:
    """Start time from a Broadcast WAV ``bext`` chunk (EBU Tech 3285), or None.

    OriginationDate (bytes 320..330, ``yyyy-mm-dd``) gives the day. TimeReference
    (bytes 338..346, uint64) counts samples since midnight: when it is non-zero it
    gives the time to the sample, on the day that puts it nearest to
    OriginationTime (bytes 330..338, ``hh:mm:ss``), so a recording that starts
    just before midnight keeps its date. With TimeReference 0 the start is
    OriginationDate plus OriginationTime. Times are taken as UTC.
    """
    found = _riff_chunk(path, b"bext")
    if found is None or found[1] < 346:
        return None
    with open(path, "rb") as f:
        f.seek(found[0])
        raw = f.read(346)
    if len(raw) < 346:  # a file cut short inside its bext chunk
        return None
    date = _BEXT_DATE.fullmatch(raw[320:330].decode("ascii", "replace"))
    clock = _BEXT_TIME.fullmatch(raw[330:338].decode("ascii", "replace"))
    (reference,) = struct.unpack("<Q", raw[338:346])
    try:  # datetime rejects placeholders such as 0000-00-00 and 99:99:99
        day = dt.datetime(*map(int, date.groups())) if date else None
        hour, minute, second = map(int, clock.groups()) if clock else (0, 0, 0)
        stated = day.replace(hour=hour, minute=minute, second=second) if day and clock else None
    except ValueError:
        return None
    if day is None:
        return None
    if reference == 0:
        return None if stated is None else to_datetime64(stated)
    start = to_datetime64(day) + samples_to_timedelta(reference, sample_rate)
    if stated is not None:
        one_day = np.timedelta64(1, "D")
        start += int(np.round((to_datetime64(stated) - start) / one_day)) * one_day
    return start


def _flac_header_fault(path: Path) -> str | None:
    """What breaks the FLAC spec (RFC 9639, 8.2) in a FLAC file's STREAMINFO block, or None.

    libsndfile reads such a header without complaint and then stops decoding
    early, which would look like a truncated file.
    """
    with open(path, "rb") as f:
        head = f.read(10)
        if head[:3] == b"ID3" and len(head) == 10:  # an ID3v2 tag first: skip its syncsafe size (and footer)
            size = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
            f.seek(10 + size + (10 if head[5] & 0x10 else 0))
        else:
            f.seek(0)
        magic, block = f.read(4), f.read(38)
    if magic != b"fLaC" or len(block) < 38 or block[0] & 0x7F != 0:
        return "no STREAMINFO block after 'fLaC'"
    min_block, max_block = struct.unpack(">HH", block[4:8])
    packed = int.from_bytes(block[14:22], "big")  # rate 20 bits, channels 3, bits per sample 5, frames 36
    rate, bits = packed >> 44, ((packed >> 36) & 0x1F) + 1
    if not 16 <= min_block <= max_block:
        return f"block sizes {min_block} .. {max_block} samples, where FLAC needs 16 <= minimum <= maximum"
    if rate == 0:
        return "sample rate 0"
    if bits < 4:
        return f"{bits} bits per sample, where FLAC needs 4 to 32"
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
        fault = _flac_header_fault(path) if info.format == "FLAC" else None
        if fault:
            raise FormatError(f"{path.name!r} has a corrupt FLAC header ({fault}): the file is damaged, not truncated")
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
        is_wav = info.format in ("WAV", "WAVEX", "RF64")
        header_time = _bext_start_time(path, info.samplerate) if is_wav and start_time is None else None
        tried = "no BWF 'bext' origination time in its header" if is_wav else f"{info.format} headers carry no time"
        start, how = _resolve_start(path, header_time, start_time, time_patterns, tried)
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


#: A piece of a merged MiniSEED trace: samples ``[dst_lo, dst_hi)`` of the merged
#: trace are samples ``src_lo..`` of trace ``k`` (in the order obspy reads them).
Piece = tuple[int, int, int, int]


@dataclass
class _Run:
    """A trace, or traces joined end to end, while a merge is planned."""

    start: UTCDateTime
    n: int
    pieces: list[Piece]

    def end(self, delta: float) -> UTCDateTime:
        from obspy.core.trace import Stats

        return Stats({"starttime": self.start, "delta": delta, "npts": self.n}).endtime

    def put(self, at: int, other: _Run) -> None:
        """Cut this run at ``at`` samples and put ``other`` there."""
        self.pieces = [(lo, min(hi, at), k, s) for lo, hi, k, s in self.pieces if lo < at]
        self.pieces += [(lo + at, hi + at, k, s) for lo, hi, k, s in other.pieces]
        self.n = at + other.n


def _merge_plan(traces: Sequence[tuple[int, UTCDateTime, int]], sample_rate: float) -> _Run:
    """Where ``obspy.Stream.merge(method=1)`` puts every sample of the traces of one SEED id.

    Header arithmetic only, following obspy step by step, so no sample is read:

    1. ``Stream._cleanup``: traces sorted by (start, end); a trace whose start
       misfits the previous trace's sample grid by at most
       :data:`MISALIGNMENT_THRESHOLD` of a sample, and that overlaps it or
       follows it within that tolerance, is snapped onto that grid; a trace that
       then starts exactly one sample after the previous one ends is joined to it.
    2. ``Trace.__add__(method=1)``, folding the traces in (start, end) order onto
       the first one's grid: trace ``b`` goes to sample
       ``n - 1 + round_away((b.start - end) * rate)`` of the merged trace so far
       (``n`` samples ending at ``end``). A gap between them stays missing (NaN);
       where ``b`` overlaps the end, ``b``'s samples win; a ``b`` that ends no later
       than the merged trace (contained) is dropped.

    obspy also joins overlapping traces whose common samples are identical; this
    plan, knowing no samples, treats overlaps as different data, which gives the
    same values.

    Parameters
    ----------
    traces : sequence of (int, UTCDateTime, int)
        Index, start time and sample count of each trace of one SEED id.
    sample_rate : float

    Returns
    -------
    _Run
        Start and length of the merged trace, and its pieces.
    """
    from obspy.core.compatibility import round_away

    delta = 1.0 / sample_rate
    runs = sorted(
        (_Run(start, n, [(0, n, k, 0)]) for k, start, n in traces if n > 0),
        key=lambda r: (r.start, r.end(delta)),
    )
    cleaned = runs[:1]
    for run in runs[1:]:
        cur = cleaned[-1]
        gap = run.start - (cur.end(delta) + delta)
        misfit = (gap % delta) / delta
        if gap <= MISALIGNMENT_THRESHOLD * delta and misfit != 0 and min(misfit, 1 - misfit) <= MISALIGNMENT_THRESHOLD:
            run.start = cur.start + round((run.start - cur.start) / delta) * delta
        if run.start == cur.end(delta) + delta:
            cur.put(cur.n, run)
        else:
            cleaned.append(run)
    cleaned.sort(key=lambda r: (r.start, r.end(delta)))
    merged = cleaned[0]
    for run in cleaned[1:]:
        end = merged.end(delta)
        gap = int(round_away((run.start - end) * sample_rate)) - 1
        if gap < 0 and end - run.end(delta) >= 0:
            continue  # contained: method=1 keeps the earlier trace's samples
        merged.put(max(merged.n + gap, 0), run)
    return merged


@dataclass(frozen=True, kw_only=True)
class MiniSeedSource(AudioSource):
    """MiniSEED through obspy: traces of one SEED id become one channel.

    The traces of each SEED id are merged as ``obspy.Stream.merge(method=1)``
    merges them (:func:`_merge_plan`): on the first trace's sample grid, later
    traces winning overlaps, gaps NaN. Channels (SEED ids) are placed on the grid
    of the earliest one by their start times.
    """

    suffixes: ClassVar[tuple[str, ...]] = (".mseed", ".miniseed", ".ms")
    seed_ids: tuple[str, ...] = field(default=())
    first_trace_time: str = ""  # the header time of sample 0, even when start_time was overridden
    #: (SEED id, start in ns since 1970, samples) of each trace, in the order obspy reads them
    traces: tuple[tuple[str, int, int], ...] = field(default=(), repr=False)
    #: per channel: offset of its merged trace, and its pieces
    plan: tuple[tuple[int, tuple[Piece, ...]], ...] = field(default=(), repr=False)

    @classmethod
    def open(cls, path: Path, start_time: np.datetime64 | None, time_patterns: Sequence[str]) -> MiniSeedSource:
        """Read the record headers only, and plan the merge of the traces."""
        import obspy
        from obspy.core.compatibility import round_away

        try:
            stream = obspy.read(str(path), format="MSEED", headonly=True)
        except Exception as err:  # obspy raises many types for a bad file
            raise FormatError(f"cannot read {path.name!r} as MiniSEED: {err}") from None
        headers = [(k, tr) for k, tr in enumerate(stream) if tr.stats.npts > 0]
        if not headers:
            raise FormatError(f"{path.name!r} contains no MiniSEED samples")
        rates = sorted({tr.stats.sampling_rate for _, tr in headers})
        if len(rates) > 1:
            raise FormatError(f"{path.name!r} mixes sample rates {rates}")
        rate = rates[0]
        if not rate > 0:
            raise FormatError(f"{path.name!r} has sample rate {rate:g}: not a regularly sampled signal")
        seed_ids = tuple(sorted({tr.id for _, tr in headers}))
        merged = [
            _merge_plan([(k, tr.stats.starttime, tr.stats.npts) for k, tr in headers if tr.id == seed_id], rate)
            for seed_id in seed_ids
        ]
        first = min(run.start for run in merged)
        offsets = [int(round_away((run.start - first) * rate)) for run in merged]
        n_samples = max(off + run.n for off, run in zip(offsets, merged, strict=True))
        start, how = _resolve_start(path, to_datetime64(first.datetime), start_time, time_patterns, "MiniSEED")
        return cls(
            path=path,
            sample_rate=float(rate),
            start_time=start,
            n_samples=n_samples,
            channels=len(seed_ids),
            start_time_from=how,
            seed_ids=seed_ids,
            first_trace_time=str(first),
            traces=tuple((tr.id, tr.stats.starttime.ns, tr.stats.npts) for tr in stream),
            plan=tuple((off, tuple(run.pieces)) for off, run in zip(offsets, merged, strict=True)),
        )

    def segments(self, channel: Channel = 0) -> Ranges:
        """Sample ranges with data: for ``"mean"`` and ``"all"``, where every channel has data."""
        per_channel = [_merge_ranges((lo + off, hi + off) for lo, hi, _, _ in pieces) for off, pieces in self.plan]
        if channel not in ("mean", "all"):
            return per_channel[channel]
        missing = _merge_ranges(r for ranges in per_channel for r in _complement(ranges, 0, self.n_samples))
        return _complement(missing, 0, self.n_samples)

    def _read(self, start: int, stop: int) -> np.ndarray:
        import obspy
        from obspy import UTCDateTime

        out = np.full((stop - start, self.channels), np.nan, dtype=np.float32)
        wanted = [  # (channel, samples [a, b) of this file, trace k, sample of k at a)
            (c, max(lo + off, start), min(hi + off, stop), k, s + max(lo + off, start) - (lo + off))
            for c, (off, pieces) in enumerate(self.plan)
            for lo, hi, k, s in pieces
            if lo + off < stop and hi + off > start
        ]
        if not wanted:
            return out
        ns_per_sample = 1e9 / self.sample_rate
        first = min(self.traces[k][1] + s * ns_per_sample for _, _, _, k, s in wanted)
        last = max(self.traces[k][1] + (s + b - a - 1) * ns_per_sample for _, a, b, k, s in wanted)
        window = {
            "starttime": UTCDateTime(ns=int(first - ns_per_sample)),
            "endtime": UTCDateTime(ns=int(last + ns_per_sample)),
        }
        try:  # (obspy hands the window to its MiniSEED reader, which decodes only the records in it)
            stream = obspy.read(str(self.path), format="MSEED", **window)
        except Exception as err:  # changed or damaged since it was opened
            raise FormatError(f"cannot read samples {start}..{stop} of {self.path.name!r}: {err}") from None
        pieces = self._match(stream)
        for c, a, b, k, s in wanted:
            for j0, data in pieces.get(k, ()):
                lo, hi = max(s, j0), min(s + b - a, j0 + len(data))
                if lo < hi:
                    out[a - start + lo - s : a - start + hi - s, c] = data[lo - j0 : hi - j0]
        return out

    def _match(self, stream) -> dict[int, list[tuple[int, np.ndarray]]]:
        """Each piece obspy read, as (first sample, samples) of the trace ``k`` it is part of.

        A piece is whole records of one trace: of the traces of its SEED id whose
        span holds it (records joined into a trace fit its grid within half a
        sample), it belongs to one that has no piece there yet (duplicated
        records come as one piece per copy), and among those to the one whose
        sample grid it fits best, then to the first.
        """
        found: dict[int, list[tuple[int, np.ndarray]]] = {}
        for tr in stream:
            data = np.ma.filled(np.ma.asarray(tr.data, dtype=np.float32), np.nan)
            candidates = []
            for k, (seed_id, t_ns, n) in enumerate(self.traces):
                position = (tr.stats.starttime.ns - t_ns) * self.sample_rate / 1e9
                j0 = round(position)
                if seed_id == tr.id and abs(position - j0) <= 0.5 and 0 <= j0 <= n - len(data):
                    taken = any(j < j0 + len(data) and j0 < j + len(d) for j, d in found.get(k, ()))
                    candidates.append((taken, round(abs(position - j0), 2), k, j0))
            if candidates:
                *_, k, j0 = min(candidates)
                found.setdefault(k, []).append((j0, data))
        return found

    def describe(self) -> dict[str, object]:
        """A JSON-friendly record of this source, with its SEED ids and trace count."""
        return {**super().describe(), "seed_ids": list(self.seed_ids), "n_traces": len(self.traces)}


#: Margin of source samples resampled on each side of a block, per unit of the
#: down-sampling factor: enough for soxr's "HQ" filter to match a whole-file
#: resampling to float32 precision.
_RESAMPLE_MARGIN = 256


@dataclass(frozen=True, kw_only=True)
class ResampledSource(AudioSource):
    """Another source read at a different sample rate, resampled with soxr.

    Output sample ``j`` is at source position ``j * source.sample_rate /
    sample_rate``, as in ``soxr.resample`` of the whole file. ``read`` resamples
    only the source range it needs plus a margin on each side, starting at a
    source sample that falls exactly on an output sample, so any block equals
    the whole-file resampling up to float rounding. Samples nearest a NaN source
    sample are NaN.
    """

    source: AudioSource

    @classmethod
    def wrap(cls, source: AudioSource, sample_rate: float) -> ResampledSource:
        """``source`` read at ``sample_rate``; its length is soxr's, ``round(n * sample_rate / rate)``."""
        return cls(
            path=source.path,
            sample_rate=float(sample_rate),
            start_time=source.start_time,
            n_samples=int(source.n_samples / (source.sample_rate / sample_rate) + 0.5),
            channels=source.channels,
            start_time_from=source.start_time_from,
            missing_samples=round(source.missing_samples * sample_rate / source.sample_rate),
            file_size=source.file_size,
            source=source,
        )

    @property
    def _ratio(self) -> tuple[int, int]:
        """(output, source) samples per block: the smallest whole numbers in the rate ratio."""
        ratio = Fraction(self.sample_rate).limit_denominator(1000) / Fraction(
            self.source.sample_rate
        ).limit_denominator(1000)
        return ratio.numerator, ratio.denominator

    def _read(self, start: int, stop: int) -> np.ndarray:
        import soxr

        up, down = self._ratio
        margin = math.ceil(_RESAMPLE_MARGIN * max(1, down / up) / down)  # in blocks
        b0, b1 = max(start // up - margin, 0), -(-stop // up) + margin
        i0, i1 = b0 * down, min(b1 * down, self.source.n_samples)
        x = self.source.read(i0, i1)
        missing = np.isnan(x)
        y = soxr.resample(np.where(missing, 0, x), self.source.sample_rate, self.sample_rate)
        out = np.ascontiguousarray(y[start - b0 * up : stop - b0 * up], dtype=np.float32)
        if missing.any():
            nearest = np.minimum((np.arange(start, stop) * down + up // 2) // up - i0, len(x) - 1)
            out[missing[nearest]] = np.nan
        return out

    def segments(self, channel: Channel = 0) -> Ranges:
        """The source's segments at this rate."""
        scale = self.sample_rate / self.source.sample_rate
        return _merge_ranges((round(a * scale), round(b * scale)) for a, b in self.source.segments(channel))

    def describe(self) -> dict[str, object]:
        """The source's record at this rate, with the rate it was resampled from."""
        return {**self.source.describe(), **super().describe(), "resampled_from": self.source.sample_rate}


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

    Raises
    ------
    SourceNotFoundError
        The file does not exist or is a broken link.
    FormatError
        The file is not audio this package reads, has no samples, has no
        start time in its header or name and none was given, or has a sample
        rate outside :data:`SAMPLE_RATE_RANGE`, dates outside
        :data:`RECORDING_WINDOW` or a corrupt FLAC header.
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
    size = path.stat().st_size
    if size == 0:
        raise FormatError(f"{path.name!r} is empty (0 bytes)")
    user_time = None if start_time is None else _start_time_arg(start_time)
    try:
        source = reader.open(path, user_time, time_patterns)
    except ParameterError as err:  # raised by a header only for a time no datetime64[ns] holds
        raise FormatError(f"{path.name!r} has a time out of range in its header: {err}") from None
    _check_header(source)
    return dataclasses.replace(source, file_size=size)


def reopen_source(record: Mapping[str, object], *, path: str | os.PathLike | None = None) -> AudioSource:
    """A source a store recorded (one item of :meth:`Timeline.describe`), opened again and checked unchanged.

    The file is opened with the recorded start time (and where it came from), and
    resampled to the recorded rate when it was. Every recorded key but ``path`` and
    ``offset`` must then equal what the file gives now (:meth:`AudioSource.describe`):
    its sample rate, samples, channels, truncation, MiniSEED traces and its size in
    bytes. Records written before sizes were recorded have no ``size``: that check is
    skipped for them, so such a file rewritten with as many samples passes.

    Parameters
    ----------
    record : mapping
        The source's record, from a store's ``sources`` root attribute.
    path : path-like, optional
        Where the file is now (default: the recorded path), for recordings that moved.

    Returns
    -------
    AudioSource

    Raises
    ------
    SourceNotFoundError, FormatError
        The file cannot be opened (``one of its sources cannot be opened: ...``) or has
        changed (``its source 'NAME' has changed since it was ingested (KEY THEN then,
        NOW now)``); the messages speak of the store as "its", for the caller to name it.
    """
    try:
        src = open_source(record["path"] if path is None else path, start_time=record["start_time"])
    except AtlasError as err:
        raise type(err)(f"one of its sources cannot be opened: {err}") from None
    src = dataclasses.replace(src, start_time_from=record["start_time_from"])
    if "resampled_from" in record:
        src = ResampledSource.wrap(src, record["sample_rate"])
    now = src.describe()
    for key, value in record.items():
        if key not in ("path", "offset") and now.get(key) != value:
            raise FormatError(
                f"its source {src.path.name!r} has changed since it was ingested ({key} {value} then, "
                f"{now.get(key)} now)"
            )
    return src


_TIME_FROM = {"header": "from its header", "filename": "from its name", "user": "given"}


def _check_header(src: AudioSource) -> None:
    """Refuse a source whose sample rate or dates are out of range: a damaged header or a wrong clock."""
    lo, hi = SAMPLE_RATE_RANGE
    if not lo <= src.sample_rate <= hi:
        raise FormatError(
            f"{src.path.name!r} has a sample rate of {src.sample_rate:g} Hz in its header, outside "
            f"{lo:g} .. {hi:g} Hz (SAMPLE_RATE_RANGE): a damaged header?"
        )
    first, last = RECORDING_WINDOW
    if not (first <= src.start_time and src.duration <= (last - src.start_time) / np.timedelta64(1, "s")):
        error = ParameterError if src.start_time_from == "user" else FormatError
        raise error(
            f"{src.path.name!r} starts at {src.start_time} ({_TIME_FROM[src.start_time_from]}) and lasts "
            f"{_span(src.duration)}, outside {_day(first)} .. {_day(last)}, the dates a recording may have "
            "(RECORDING_WINDOW): a wrong clock? Give the start with --start-time (start_time=), or skip the "
            "file with --skip-bad (skip_bad=True)"
        )


def _span(seconds: float) -> str:
    """A duration in the unit that reads best: s, days or years."""
    if seconds >= _YEAR:
        return f"{seconds / _YEAR:.1f} years"
    return f"{seconds / 86400:.1f} days" if seconds >= 86400 else f"{seconds:.3f} s"


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
    """Several sources on one sample grid, read as one mono signal or as all channels.

    Attributes
    ----------
    sources : tuple of AudioSource
        Sorted by start time.
    offsets : tuple of int
        Sample index on the timeline of each source's first sample.
    channel : int, "mean" or "all"
        Which channel to read, the mean of all channels, or every channel.
    skipped : tuple of (str, str)
        Path and reason of each input file skipped as bad (``skip_bad=True``).
    """

    sources: tuple[AudioSource, ...]
    offsets: tuple[int, ...]
    channel: Channel = 0
    skipped: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls, sources: Iterable[AudioSource], channel: Channel = 0, *, skipped: Iterable[tuple[str, str]] = ()
    ) -> Timeline:
        """Sources laid out on one sample grid: the earliest's, each at its start time rounded to a sample.

        The one constructor of a timeline's layout, for :func:`open_timeline` and for an
        append (a store's sources re-opened, plus new files).
        """
        ordered = sorted(sources, key=lambda s: s.start_time)
        t0, rate = ordered[0].start_time, ordered[0].sample_rate
        offsets = [int(round((src.start_time - t0) / np.timedelta64(1, "ns") * 1e-9 * rate)) for src in ordered]
        return cls(tuple(ordered), tuple(offsets), channel, tuple(skipped))

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

    @property
    def n_channels(self) -> int:
        """Channels :meth:`read` returns: every channel of the files for ``"all"``, else 1."""
        return self.sources[0].channels if self.channel == "all" else 1

    def check_span(self) -> None:
        """Refuse a timeline longer than :data:`MAX_SPAN_YEARS`, naming the files at its ends.

        Raises
        ------
        FormatError
            The files' dates span more than :data:`MAX_SPAN_YEARS`.
        """
        if self.duration <= MAX_SPAN_YEARS * _YEAR:
            return
        first = self.sources[0]
        last = max(zip(self.offsets, self.sources, strict=True), key=lambda s: s[0] + s[1].n_samples)[1]
        raise FormatError(
            f"the recording spans {_span(self.duration)}, from {first.start_time} ({first.path.name!r} starts) "
            f"to {last.end_time} ({last.path.name!r} ends), more than the {MAX_SPAN_YEARS} years one store may "
            "span (MAX_SPAN_YEARS): are the files' dates right? Ingest each deployment into a store of its own"
        )

    def channel_labels(self) -> list[str]:
        """A name for each channel :meth:`read` returns.

        The SEED ids (``NET.STA.LOC.CHA``) when every file is MiniSEED with the
        same ones, else the channel indices as text (``"0"``, ``"1"``, ...); for
        one channel, or the mean, that channel (``"0"`` or ``"mean"``).
        """
        if self.channel != "all":
            return [str(self.channel)]
        originals = [src.source if isinstance(src, ResampledSource) else src for src in self.sources]
        ids = {getattr(src, "seed_ids", None) for src in originals}
        if len(ids) == 1 and (seed_ids := ids.pop()):
            return list(seed_ids)
        return [str(c) for c in range(self.n_channels)]

    def gaps(self) -> Ranges:
        """Sample ranges ``[start, stop)`` between files that no file covers."""
        files = _merge_ranges((off, off + src.n_samples) for off, src in zip(self.offsets, self.sources, strict=True))
        return _complement(files, 0, self.n_samples)

    def missing(self) -> Ranges:
        """Sample ranges ``[start, stop)`` with no data: gaps between files and inside MiniSEED files."""
        covered = _merge_ranges(
            (off + a, off + b)
            for off, src in zip(self.offsets, self.sources, strict=True)
            for a, b in src.segments(self.channel)
        )
        return _complement(covered, 0, self.n_samples)

    def overlaps(self) -> list[tuple[int, int, int]]:
        """Overlapping files: ``(earlier, later, samples)``, indices into :attr:`sources`.

        Every pair of files whose spans overlap is listed; the later file's
        samples are the ones read there.
        """
        found, open_files = [], []  # open_files: (end, index) of earlier files still running
        for i, (off, src) in enumerate(zip(self.offsets, self.sources, strict=True)):
            open_files = [(end, j) for end, j in open_files if end > off]
            found += [(j, i, min(end, off + src.n_samples) - off) for end, j in open_files]
            open_files.append((off + src.n_samples, i))
        return found

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` of the timeline: mono, or every channel for ``channel="all"``.

        Returns
        -------
        samples : ndarray, float32, shape (stop - start,), or (stop - start, n_channels) for "all"
            NaN where no file has data. Where files overlap, the later file wins.
        """
        out = np.full((stop - start, self.n_channels) if self.channel == "all" else stop - start, np.nan, np.float32)
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
                if self.channel == "all":
                    out[lo - start : hi - start] = data
                elif self.channel == "mean":
                    out[lo - start : hi - start] = data.mean(axis=1)
                else:
                    out[lo - start : hi - start] = data[:, self.channel]
        return out

    def describe(self) -> list[dict[str, object]]:
        """One record per source, with its offset on the timeline."""
        return [{**src.describe(), "offset": int(off)} for off, src in zip(self.offsets, self.sources, strict=True)]

    def summary(self) -> dict[str, object]:
        """The deployment in numbers, JSON-friendly.

        Returns
        -------
        dict
            ``n_files``; ``start_time``, ``end_time`` (ISO, UTC) and
            ``duration_seconds``; ``coverage_seconds`` and ``coverage_fraction``
            (time with data); ``gaps``: ``count``, ``total_seconds``,
            ``largest_seconds``, ``largest_start`` and ``between_files`` (the
            count not inside a file); ``overlaps``: ``count``, ``total_seconds``
            and ``list`` of ``{earlier, later, seconds}``; ``skipped`` and
            ``truncated`` files; ``sample_rate`` of the timeline,
            ``sample_rates`` (files per original rate), ``resampled`` files and
            ``start_time_from`` (files per origin of their start time).
        """
        rate, n = self.sample_rate, self.n_samples
        missing, between = self.missing(), self.gaps()
        largest = max(missing, key=lambda g: g[1] - g[0], default=(0, 0))
        overlaps = self.overlaps()
        originals = [src.source if isinstance(src, ResampledSource) else src for src in self.sources]
        return {
            "n_files": len(self.sources),
            "start_time": str(self.start_time),
            "end_time": str(self.start_time + samples_to_timedelta(n, rate)),
            "duration_seconds": n / rate,
            "coverage_seconds": (n - sum(b - a for a, b in missing)) / rate,
            "coverage_fraction": (n - sum(b - a for a, b in missing)) / n,
            "gaps": {
                "count": len(missing),
                "total_seconds": sum(b - a for a, b in missing) / rate,
                "largest_seconds": (largest[1] - largest[0]) / rate,
                "largest_start": str(self.start_time + samples_to_timedelta(largest[0], rate)) if missing else None,
                "between_files": len(between),
            },
            "overlaps": {
                "count": len(overlaps),
                "total_seconds": sum(s for _, _, s in overlaps) / rate,
                "list": [
                    {"earlier": str(self.sources[a].path), "later": str(self.sources[b].path), "seconds": s / rate}
                    for a, b, s in overlaps
                ],
            },
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "truncated": [
                {"path": str(src.path), "missing_seconds": src.missing_samples / src.sample_rate}
                for src in originals
                if src.missing_samples
            ],
            "sample_rate": rate,
            "sample_rates": {
                f"{r:g}": sum(s.sample_rate == r for s in originals) for r in sorted({s.sample_rate for s in originals})
            },
            "resampled": [
                {"path": str(src.path), "from_sample_rate": src.source.sample_rate}
                for src in self.sources
                if isinstance(src, ResampledSource)
            ],
            "start_time_from": {
                how: sum(s.start_time_from == how for s in originals) for how in ("header", "filename", "user")
            },
        }


def open_timeline(
    inputs: Iterable[str | os.PathLike] | str | os.PathLike,
    *,
    start_time: object | None = None,
    time_pattern: str | None = None,
    channel: Channel = 0,
    sample_rate: float | None = None,
    max_overlap: float = 1.0,
    skip_bad: bool = False,
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
    channel : int, "mean" or "all", default: 0
        Channel to analyse, the mean of all channels, or every channel (read
        as shape ``(n, channels)``; every file must have the same number).
    sample_rate : float, optional
        Sample rate of the timeline: files at other rates are resampled to it
        (:class:`ResampledSource`). By default all files must share one rate.
    max_overlap : float, default: 1.0
        Longest overlap between two files, in seconds, that is accepted (the
        later file wins there, with a warning); a longer one is an error.
    skip_bad : bool, default: False
        Skip files that cannot be used (unreadable, empty, no samples, no start
        time) with a warning, listing them in :meth:`Timeline.summary`, instead
        of stopping at the first.

    Returns
    -------
    Timeline

    Raises
    ------
    FormatError
        A bad file (unless ``skip_bad``), every file bad, different sample rates
        without ``sample_rate``, an overlap longer than ``max_overlap``, files
        with different numbers of channels for ``channel="all"``, or files
        spanning more than :data:`MAX_SPAN_YEARS`.
    SourceNotFoundError
        An input that does not exist, a directory without audio, a pattern
        matching nothing.
    ParameterError
        A malformed argument, a ``sample_rate`` outside :data:`SAMPLE_RATE_RANGE`
        or a ``start_time`` outside :data:`RECORDING_WINDOW`.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    lo, hi = SAMPLE_RATE_RANGE
    if sample_rate is not None and not (isinstance(sample_rate, (int, float)) and lo <= sample_rate <= hi):
        raise ParameterError(
            f"sample_rate={sample_rate!r} must be a number of samples per second from {lo:g} to {hi:g} "
            "(SAMPLE_RATE_RANGE)"
        )
    if not (isinstance(max_overlap, (int, float)) and 0 <= max_overlap < math.inf):
        raise ParameterError(f"max_overlap={max_overlap!r} must be a number of seconds >= 0")
    paths = expand_inputs(inputs)
    if not paths:
        raise ParameterError("no input files given")
    patterns = ([time_pattern] if time_pattern else []) + list(TIME_PATTERNS.values())
    sources, skipped = _open_all(paths, start_time, patterns, skip_bad)
    sources = _one_rate(sources, sample_rate)
    _check_channel(channel, sources)
    timeline = Timeline.of(sources, channel, skipped=skipped)
    timeline.check_span()
    _check_overlaps(timeline, max_overlap)
    return timeline


def _open_all(
    paths: Sequence[Path], start_time: object | None, patterns: Sequence[str], skip_bad: bool
) -> tuple[list[AudioSource], list[tuple[str, str]]]:
    """Open every file; with ``start_time`` each starts where the previous one ends."""
    sources, skipped = [], []
    t = None if start_time is None else _start_time_arg(start_time)
    for path in paths:
        try:
            source = open_source(path, start_time=t, time_patterns=patterns)
        except (FormatError, SourceNotFoundError) as err:
            if not skip_bad:
                raise
            log.warning("skipping %s: %s", path.name, err)
            skipped.append((str(path), str(err)))
            continue
        sources.append(source)
        if t is not None:
            t = source.end_time
    if not sources:
        raise FormatError(f"none of the {len(paths)} input files can be used; the first: {skipped[0][1]}")
    return sources, skipped


def _one_rate(sources: list[AudioSource], sample_rate: float | None) -> list[AudioSource]:
    """The sources at ``sample_rate`` (resampling the others), or checked to share one rate."""
    if sample_rate is not None:
        return [src if src.sample_rate == sample_rate else ResampledSource.wrap(src, sample_rate) for src in sources]
    rates = {src.sample_rate for src in sources}
    if len(rates) > 1:
        by_rate = {rate: [s.path.name for s in sources if s.sample_rate == rate] for rate in sorted(rates)}
        listing = "; ".join(
            f"{rate:g} Hz: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}" for rate, names in by_rate.items()
        )
        raise FormatError(
            f"input files have different sample rates ({listing}); pass --sample-rate HZ (sample_rate=) "
            "to resample them to one rate"
        )
    return sources


def _check_overlaps(timeline: Timeline, max_overlap: float) -> None:
    """Warn about each overlap; raise on the first longer than ``max_overlap`` seconds."""
    rate, names = timeline.sample_rate, [src.path.name for src in timeline.sources]
    overlaps = timeline.overlaps()
    too_long = [(a, b, s) for a, b, s in overlaps if s / rate > max_overlap]
    if too_long:
        a, b, s = too_long[0]
        whole = " (all of it)" if s == timeline.sources[b].n_samples else ""
        more = f" (and {len(too_long) - 1} more)" if len(too_long) > 1 else ""
        raise FormatError(
            f"{names[b]!r} overlaps {names[a]!r} by {s / rate:.3f} s{whole}, more than max_overlap={max_overlap:g} s"
            f"{more}: duplicated or mis-timed files? Remove them, or allow it with --max-overlap SECONDS"
        )
    for a, b, s in overlaps:
        log.warning("%s overlaps %s by %.3f s; the later file's samples are used there", names[b], names[a], s / rate)


def _check_channel(channel: Channel, sources: Sequence[AudioSource]) -> None:
    if channel == "mean":
        return
    if channel == "all":
        counts = {src.channels for src in sources}
        if len(counts) > 1:
            by_count = {n: [s.path.name for s in sources if s.channels == n] for n in sorted(counts)}
            listing = "; ".join(
                f"{n} channel{'s' * (n != 1)}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                for n, names in by_count.items()
            )
            raise FormatError(
                f"channel='all' needs every file to have the same number of channels, but they differ ({listing}); "
                "ingest them separately, or pick one channel (--channel K) or the mean (--channel mean)"
            )
        return
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
        raise ParameterError(f"channel={channel!r} must be a channel index, 'mean' or 'all'")
    for src in sources:
        if not 0 <= channel < src.channels:
            raise ParameterError(
                f"channel={channel} is out of range: {src.path.name!r} has channels 0..{src.channels - 1}"
            )
