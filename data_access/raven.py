"""Selection tables in and out: Raven Pro's tab-separated tables and plain CSV.

:func:`read_table` reads a table whole, checks every row against the store
(times inside the recording, a channel it has, a band below Nyquist) and
returns the rows :meth:`~data_access.annotations.Annotations.add_many` adds in
one transaction; a bad row stops it with one line naming the file, the line
and the problem, and nothing is imported. :func:`write_table` writes a
selections frame; reading what it wrote and writing again gives the same bytes.

Where a Raven row's time comes from
-----------------------------------
1. ``Begin Date`` + ``Begin Clock Time`` (UTC, to the microsecond);
2. else ``Begin File`` + ``File Offset (s)``, through the files the store was
   ingested from (its ``sources``);
3. else ``Begin Time (s)`` from the store's first sample, or from ``origin``.

The end is the start plus ``End Time (s) - Begin Time (s)`` (or ``Delta Time
(s)``). When the table has ``Begin Time (s)`` and it agrees with 1 or 2 to
within a microsecond, it is taken: it carries nanoseconds, so an exported
selection comes back exactly and a re-import finds it already there.

Our ``Begin Time (s)`` is the time since the store's first sample *on the
clock*, gaps included. Raven's own, in a session of several files, counts only
the sound it played (files back to back, gaps left out): a Raven table of a
deployment with gaps is read by its clock times or file offsets, never by that.
"""

from __future__ import annotations

import csv
import decimal
import io
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from data_access.annotations import LABEL_MAX, NOTES_MAX, AnnotationError
from data_access.errors import AtlasError
from data_access.measure import KEYS, measure
from data_access.times import to_datetime64

if TYPE_CHECKING:
    from data_access.query import Atlas

log = logging.getLogger(__name__)

TableFormat = Literal["raven", "csv"]

#: Raven's view name for the rows we write.
VIEW = "Spectrogram 1"
#: Columns of a Raven table as written, before the measurements.
RAVEN_COLUMNS = (
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Begin Date",
    "Begin Clock Time",
    "Begin File",
    "File Offset (s)",
)
#: Annotation columns of a Raven table, after the measurements.
RAVEN_ANNOTATIONS = ("Label", "Notes")
#: Columns of a CSV table as written, before the measurements.
CSV_COLUMNS = ("start", "end", "low_hz", "high_hz", "channel", "label", "notes")
#: Measurements that are times.
MEASURED_TIMES = ("Peak Time", "Time 5%", "Time 95%")
#: Measurements of text, written to CSV only (Raven has no such columns).
MEASURED_TEXT = ("SNR note", "units", "frames")
#: Measurements written, as :func:`data_access.measure.measure` names them; each is a Raven column of
#: the same name, but for the times, which become seconds from the store's first sample ("Peak Time (s)").
MEASUREMENTS = tuple(key for key in KEYS if key not in MEASURED_TEXT)

# Other names of a column, in the tables people bring (compared in lower case).
_RAVEN_ALIASES = {
    "label": ("label", "annotation", "species", "call type"),
    "notes": ("notes", "comments", "comment"),
}
_CSV_ALIASES = {
    "start": ("start",),
    "end": ("end",),
    "low_hz": ("low_hz", "f_low_hz"),
    "high_hz": ("high_hz", "f_high_hz"),
    "channel": ("channel",),
    "label": ("label", "kind"),  # (the demo's events.csv: kind, start, end, f_low_hz, f_high_hz, note)
    "notes": ("notes", "note"),
}
_SECOND = 1_000_000_000
_CLOCK = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")
_DATE = re.compile(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})")
# A cell a spreadsheet would run as a formula starts with one of these; written with a leading ' (and so is
# one starting with ', so that reading strips exactly what writing added).
_FORMULA = ("=", "+", "-", "@", "'")
# How far the clock (or file offset) and Begin Time (s) may differ and still be one time.
_AGREE_NS = 1000


class _Bad(Exception):
    """A problem with one cell or row (internal: read_table adds the file and line)."""


# ---------------------------------------------------------------------- reading


def read_table(path: str | os.PathLike, atlas: Atlas, *, origin: object = None) -> pd.DataFrame:
    """Read a Raven selection table (tab-separated) or a CSV table of selections of ``atlas``.

    Parameters
    ----------
    path : path-like
        UTF-8 text (with or without a byte-order mark; UTF-16 with one).
        Tab-separated is a Raven table; comma-separated is CSV with ISO 8601
        times: ``start, end, low_hz, high_hz[, channel, label, notes]``, or
        the demo's ``events.csv`` (``kind, start, end, f_low_hz, f_high_hz,
        note``: ``kind`` becomes the label, ``note`` the notes).
    atlas : Atlas
        The store the selections are on: its time range, channels, Nyquist
        frequency and source files.
    origin : time-like, optional
        Time of ``Begin Time (s) = 0`` for a Raven table with neither clock
        times nor file offsets; default the store's first sample.

    Returns
    -------
    DataFrame
        Columns ``start``, ``end`` (``datetime64[ns]``, UTC), ``low_hz``,
        ``high_hz``, ``channel`` (the store's channel label), ``label``,
        ``notes`` and ``line`` (where the row is in the file), in file order.

    Raises
    ------
    AnnotationError
        One line: ``FILE, line N: problem``, for a missing column, a cell that
        is not a number or time, an end not after its start, a time outside
        the recording, an unknown channel or file, a band outside 0..Nyquist,
        an over-long or unprintable label, or bytes that are not UTF-8.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise AnnotationError(f"cannot read {str(path)!r}: {err.strerror or err}") from None
    text = _decode(data, path)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first else ","
    rows = _rows(text, delimiter, path)
    if not rows:
        raise AnnotationError(f"{path}, line 1: the file is empty: no header")
    (_, header), body = rows[0], rows[1:]
    names = {name.strip().lower(): i for i, name in reversed(list(enumerate(header)))}
    context = _Context(atlas, origin)
    raven = delimiter == "\t" or any(n in names for n in ("begin time (s)", "begin clock time", "begin file"))
    try:
        reader = _RavenRows(names, header, context) if raven else _CsvRows(names, header, context)
    except _Bad as err:
        raise AnnotationError(f"{path}, line 1: {err}") from None
    if raven:
        body = reader.one_per_selection(body)
    out = []
    for line, cells in body:
        if not any(c.strip() for c in cells):
            continue  # (a blank line)
        try:
            if len(cells) > len(header):
                raise _Bad(f"{len(cells)} cells, but the header names {len(header)} columns")
            cells = cells + [""] * (len(header) - len(cells))
            row = reader.row(cells)
            context.check(row)
        except _Bad as err:
            raise AnnotationError(f"{path}, line {line}: {err}") from None
        out.append((*row, line))
    columns = ["start", "end", "low_hz", "high_hz", "channel", "label", "notes", "line"]
    frame = pd.DataFrame(out, columns=columns) if out else pd.DataFrame({c: [] for c in columns})
    for c in ("start", "end"):
        frame[c] = np.asarray(frame[c].tolist(), dtype=np.int64).astype("datetime64[ns]")
    frame["low_hz"] = frame["low_hz"].astype(np.float64)
    frame["high_hz"] = frame["high_hz"].astype(np.float64)
    frame["line"] = frame["line"].astype(np.int64)
    return frame


def _decode(data: bytes, path: Path) -> str:
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            data, encoding = data[len(bom) :], codec
            break
    else:
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise AnnotationError(
            f"{path}, line {line}: the bytes {data[err.start : err.start + 4]!r} are not {encoding.upper()} "
            "(unknown encoding): save the table as UTF-8"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise AnnotationError(f"{path}, line {line}: a NUL character: this is not a text table")
    return text


def _rows(text: str, delimiter: str, path: Path) -> list[tuple[int, list[str]]]:
    """``(line, cells)`` of each record; ``line`` is where the record starts."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows, line = [], 1
    try:
        for cells in reader:
            rows.append((line, cells))
            line = reader.line_num + 1
    except csv.Error as err:
        raise AnnotationError(f"{path}, line {reader.line_num}: {err}") from None
    return rows


class _Context:
    """What a row is checked against: the store's span, channels, Nyquist frequency and files."""

    def __init__(self, atlas: Atlas, origin: object) -> None:
        self.atlas = atlas
        self.t0, self.t1 = (int(np.datetime64(t, "ns").astype(np.int64)) for t in atlas.time_range)
        try:
            self.origin = self.t0 if origin is None else _time_ns(origin, "origin")
        except _Bad as err:
            raise AnnotationError(str(err)) from None
        self.channels = list(atlas.channels) or ["0"]
        self.nyquist = float(atlas.freq_range[1])
        self.files = _files(atlas)

    def channel_of_number(self, text: str) -> str:
        """The channel label of a Raven channel number (1-based)."""
        if not text.strip():
            return self.channels[0]
        try:
            number = int(text)
        except ValueError:
            raise _Bad(f"Channel {text!r} is not a whole number") from None
        if not 1 <= number <= len(self.channels):
            raise _Bad(f"Channel {number} is not one of the store's channels, 1..{len(self.channels)}")
        return self.channels[number - 1]

    def channel_of_label(self, text: str) -> str:
        if not text.strip():
            return self.channels[0]
        if text not in self.channels:
            raise _Bad(f"channel {text!r} is not one of the store's channels, {', '.join(self.channels)}")
        return text

    def file(self, name: str) -> int:
        """Start (ns) of the store's file named ``name``."""
        matches = [f for f in self.files if f[0] == name] or [f for f in self.files if f[0].lower() == name.lower()]
        if not matches:
            raise _Bad(f"Begin File {name!r} is not one of the store's {len(self.files)} files")
        if len({f[1] for f in matches}) > 1:
            raise _Bad(f"Begin File {name!r} names {len(matches)} of the store's files")
        return matches[0][1]

    def check(self, row: tuple) -> None:
        start, end, low, high, *_ = row
        if end <= start:
            raise _Bad(f"the end {_iso(end)} is not after the start {_iso(start)}")
        if start < self.t0 or end > self.t1:
            raise _Bad(
                f"the selection {_iso(start)} .. {_iso(end)} is outside the recording, {_iso(self.t0)} .. "
                f"{_iso(self.t1)}"
            )
        if low < 0:
            raise _Bad(f"the low frequency {low:g} Hz is below 0")
        if high <= low:
            raise _Bad(f"the high frequency {high:g} Hz is not above the low, {low:g} Hz")
        if high > self.nyquist:
            raise _Bad(f"the high frequency {high:g} Hz is above the store's Nyquist frequency, {self.nyquist:g} Hz")


def _files(atlas: Atlas) -> list[tuple[str, int, int]]:
    """``(name, start ns, end ns)`` of each file the store was ingested from, in time order."""
    files = []
    for record in atlas.sources:
        try:
            start = int(to_datetime64(record["start_time"]).astype(np.int64))
            length = round(int(record["n_samples"]) / float(record["sample_rate"]) * _SECOND)
            name = Path(str(record["path"])).name
        except (KeyError, TypeError, ValueError, AtlasError):
            continue  # (a record we cannot place: its file cannot be named either)
        files.append((name, start, start + length))
    return sorted(files, key=lambda f: f[1])


class _RavenRows:
    """Reads the rows of a Raven table."""

    def __init__(self, names: dict[str, int], header: list[str], context: _Context) -> None:
        self.names, self.context = names, context

        def col(name: str) -> int | None:
            return names.get(name.lower())

        self.begin, self.end = col("Begin Time (s)"), col("End Time (s)")
        self.delta = col("Delta Time (s)")
        self.date, self.clock = col("Begin Date"), col("Begin Clock Time")
        self.file, self.offset = col("Begin File"), col("File Offset (s)")
        self.low, self.high = col("Low Freq (Hz)"), col("High Freq (Hz)")
        self.channel, self.selection, self.view = col("Channel"), col("Selection"), col("View")
        self.label = next((names[a] for a in _RAVEN_ALIASES["label"] if a in names), None)
        self.notes = next((names[a] for a in _RAVEN_ALIASES["notes"] if a in names), None)
        missing = [n for n, i in (("Low Freq (Hz)", self.low), ("High Freq (Hz)", self.high)) if i is None]
        if self.date is not None and self.clock is not None:
            self.route = "clock"
        elif self.file is not None and self.offset is not None:
            self.route = "file"
        elif self.begin is not None:
            self.route = "begin"
        else:
            self.route = None
            missing.insert(0, "Begin Time (s) (or Begin Date and Begin Clock Time, or Begin File and File Offset (s))")
        if not (self.begin is not None and self.end is not None) and self.delta is None:
            missing.append("End Time (s) (or Delta Time (s))")
        if missing:
            raise _Bad(f"no column {' and no column '.join(missing)}; the columns are: {_listing(header)}")

    def one_per_selection(self, body: list[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
        """One row per selection: Raven lists a selection once per view (Spectrogram 1, Waveform 1, ...)."""
        if self.selection is None:
            return body
        chosen: dict[str, tuple[int, list[str]]] = {}
        for line, cells in body:
            key = _cell(cells, self.selection).strip()
            if not key:
                chosen[f"line {line}"] = (line, cells)
                continue
            view = _cell(cells, self.view).strip().lower() if self.view is not None else ""
            if key not in chosen or (view.startswith("spectrogram") and not _is_spectrogram(chosen[key], self.view)):
                chosen[key] = (line, cells)
        return sorted(chosen.values(), key=lambda item: item[0])

    def row(self, cells: list[str]) -> tuple:
        ctx = self.context
        begin = _seconds_ns(cells[self.begin], "Begin Time (s)") if self.begin is not None else None
        if self.begin is not None and self.end is not None:
            length = _seconds_ns(cells[self.end], "End Time (s)") - begin
        else:
            length = _seconds_ns(cells[self.delta], "Delta Time (s)")
        if self.route == "clock":
            start = _date_ns(cells[self.date]) + _clock_ns(cells[self.clock])
        elif self.route == "file":
            start = ctx.file(_unformula(cells[self.file].strip())) + _seconds_ns(cells[self.offset], "File Offset (s)")
        else:
            start = ctx.origin + begin
        if self.route != "begin" and begin is not None and abs(ctx.t0 + begin - start) < _AGREE_NS:
            start = ctx.t0 + begin  # the same time, to the nanosecond
        low = _number(cells[self.low], "Low Freq (Hz)")
        high = _number(cells[self.high], "High Freq (Hz)")
        channel = ctx.channel_of_number(cells[self.channel]) if self.channel is not None else ctx.channels[0]
        label = _text(cells, self.label, "Label", LABEL_MAX)
        notes = _text(cells, self.notes, "Notes", NOTES_MAX)
        return start, start + length, low, high, channel, label, notes


def _is_spectrogram(item: tuple[int, list[str]], view: int | None) -> bool:
    return view is not None and _cell(item[1], view).strip().lower().startswith("spectrogram")


class _CsvRows:
    """Reads the rows of a CSV table with ISO times."""

    def __init__(self, names: dict[str, int], header: list[str], context: _Context) -> None:
        self.context = context
        self.cols = {
            field: next((names[a] for a in aliases if a in names), None) for field, aliases in _CSV_ALIASES.items()
        }
        missing = [field for field in ("start", "end", "low_hz", "high_hz") if self.cols[field] is None]
        if missing:
            raise _Bad(
                f"no column {', '.join(missing)}: a CSV table has columns start, end, low_hz, high_hz and optionally "
                f"channel, label, notes; this one has: {_listing(header)}"
            )

    def row(self, cells: list[str]) -> tuple:
        c = self.cols
        start = _time_ns(cells[c["start"]], "start")
        end = _time_ns(cells[c["end"]], "end")
        low = _number(cells[c["low_hz"]], "low_hz")
        high = _number(cells[c["high_hz"]], "high_hz")
        channel = (
            self.context.channel_of_label(cells[c["channel"]]) if c["channel"] is not None else self.context.channels[0]
        )
        return (
            start,
            end,
            low,
            high,
            channel,
            _text(cells, c["label"], "label", LABEL_MAX),
            _text(cells, c["notes"], "notes", NOTES_MAX),
        )


def _cell(cells: list[str], i: int | None) -> str:
    return cells[i] if i is not None and i < len(cells) else ""


def _listing(header: Sequence[str]) -> str:
    names = ", ".join(repr(h) for h in header[:20])
    return names + (f", ... ({len(header) - 20} more)" if len(header) > 20 else "")


def _number(text: str, column: str) -> float:
    text = text.strip()
    if not text:
        raise _Bad(f"{column} is empty")
    try:
        value = float(text)
    except ValueError:
        raise _Bad(f"{column} {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise _Bad(f"{column} {text[:40]!r} is not a finite number")
    return value


def _seconds_ns(text: str, column: str) -> int:
    """Seconds written in decimal as exact integer nanoseconds."""
    text = text.strip()
    if not text:
        raise _Bad(f"{column} is empty")
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise _Bad(f"{column} {text[:40]!r} is not a number") from None
    if not value.is_finite() or abs(value) > 10**10:  # (three centuries: more is not a time in a recording)
        raise _Bad(f"{column} {text[:40]!r} is not a number of seconds")
    return int((value * _SECOND).to_integral_value(decimal.ROUND_HALF_EVEN))


def _date_ns(text: str) -> int:
    m = _DATE.fullmatch(text.strip())
    if not m:
        raise _Bad(f"Begin Date {text[:40]!r} is not a date like 2026/03/01")
    try:
        return int(np.datetime64(f"{int(m[1]):04d}-{int(m[2]):02d}-{int(m[3]):02d}", "ns").astype(np.int64))
    except ValueError:
        raise _Bad(f"Begin Date {text[:40]!r} is not a date like 2026/03/01") from None


def _clock_ns(text: str) -> int:
    m = _CLOCK.fullmatch(text.strip())
    if not m or int(m[1]) > 23 or int(m[2]) > 59 or int(m[3]) > 60:
        raise _Bad(f"Begin Clock Time {text[:40]!r} is not a time of day like 13:05:59.25")
    fraction = int((m[4] or "").ljust(9, "0"))
    return ((int(m[1]) * 60 + int(m[2])) * 60 + int(m[3])) * _SECOND + fraction


def _time_ns(value: object, column: str) -> int:
    if isinstance(value, str) and not value.strip():
        raise _Bad(f"{column} is empty")
    try:
        return int(to_datetime64(value).astype(np.int64))
    except AtlasError:
        raise _Bad(f"{column} {str(value)[:40]!r} is not a time (ISO 8601, UTC)") from None


def _text(cells: list[str], i: int | None, column: str, cap: int) -> str:
    value = _unformula(_cell(cells, i))
    if len(value) > cap:
        raise _Bad(f"{column} has {len(value)} characters; at most {cap}")
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        raise _Bad(f"{column} holds {bad!r}: it must be printable text")
    return value


def _unformula(cell: str) -> str:
    """A cell as it was before :func:`_no_formula` guarded it."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] and cell[1:2] in _FORMULA else cell


# ---------------------------------------------------------------------- writing


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike,
    atlas: Atlas,
    *,
    format: TableFormat = "raven",
    measurements: bool = True,
) -> Path:
    """Write selections of ``atlas`` as a Raven selection table or as CSV.

    Parameters
    ----------
    df : DataFrame
        Selections as :meth:`~data_access.annotations.Annotations.selections`
        returns them (``start, end, low_hz, high_hz``; ``channel``, ``label``,
        ``notes``, ``id`` and ``measurements`` when present); tombstones are
        left out. Rows are written by start, then id.
    path : path-like
        The file, replaced if it exists.
    atlas : Atlas
        The store: times in Raven are seconds from its first sample
        (``atlas.time_range[0]``), and ``Begin File`` and ``File Offset (s)``
        come from its sources.
    format : {"raven", "csv"}, default: "raven"
        Raven: tab-separated, columns :data:`RAVEN_COLUMNS`, the measurements,
        then ``Label`` and ``Notes``; times to the nanosecond in seconds, the
        clock time to the microsecond. CSV: :data:`CSV_COLUMNS`, times ISO 8601
        UTC to the nanosecond, then the measurements.
    measurements : bool, default: True
        Add the measurements (:data:`MEASUREMENTS`; in CSV also
        :data:`MEASURED_TEXT`): a row's cached ``measurements`` when it has
        them, else :func:`data_access.measure.measure` of its box. A box that
        cannot be measured (all in a gap, say) gets empty cells and a warning.

    Returns
    -------
    Path

    Raises
    ------
    AnnotationError
        ``format`` is not one of the two, a column is missing, or the file
        cannot be written.
    """
    if format not in ("raven", "csv"):
        raise AnnotationError(f"format={format!r} is not one of 'raven', 'csv'")
    path = Path(path)
    missing = [c for c in ("start", "end", "low_hz", "high_hz") if c not in df.columns]
    if missing:
        raise AnnotationError(f"the selections lack the columns {', '.join(missing)}")
    rows = df[~df["deleted"].astype(bool)] if "deleted" in df.columns else df
    order = ["start", "id"] if "id" in rows.columns else ["start"]
    rows = rows.sort_values(order, kind="stable").reset_index(drop=True)
    n = len(rows)
    start = _ns_array(rows["start"])
    end = _ns_array(rows["end"])
    channel = [str(c) for c in rows["channel"]] if "channel" in rows.columns else ["0"] * n
    label = [str(v) for v in rows["label"]] if "label" in rows.columns else [""] * n
    notes = [str(v) for v in rows["notes"]] if "notes" in rows.columns else [""] * n
    low, high = rows["low_hz"].to_numpy(np.float64), rows["high_hz"].to_numpy(np.float64)
    measured = _measured(rows, start, end, low, high, channel, atlas) if measurements else None
    t0 = int(np.datetime64(atlas.time_range[0], "ns").astype(np.int64))
    buffer = io.StringIO(newline="")
    if format == "raven":
        names = [*RAVEN_COLUMNS, *(_raven_name(k) for k in MEASUREMENTS if measurements), *RAVEN_ANNOTATIONS]
        buffer.write("\t".join(names) + "\n")
        channels = list(atlas.channels) or ["0"]
        files = _files(atlas)
        for i in range(n):
            s = start[i]
            name, offset = _file_at(files, s)
            cells = [
                str(i + 1),
                VIEW,
                str(channels.index(channel[i]) + 1 if channel[i] in channels else channel[i]),
                _seconds(s - t0),
                _seconds(end[i] - t0),
                _hz(low[i]),
                _hz(high[i]),
                np.datetime_as_string(np.datetime64(s, "ns"), unit="D").replace("-", "/"),
                np.datetime_as_string(np.datetime64(s, "ns"), unit="us")[11:],
                _no_formula(name),
                "" if offset is None else _seconds(offset),
            ]
            if measured is not None:
                cells += [_measurement(measured[i].get(k), k, t0, raven=True) for k in MEASUREMENTS]
            cells += [_no_formula(label[i]), _no_formula(notes[i])]
            buffer.write("\t".join(cells) + "\n")
    else:
        writer = csv.writer(buffer, lineterminator="\n")
        keys = [*MEASUREMENTS, *MEASURED_TEXT] if measurements else []
        writer.writerow([*CSV_COLUMNS, *keys])
        for i in range(n):
            cells = [_iso(start[i]), _iso(end[i]), _hz(low[i]), _hz(high[i]), channel[i]]
            cells += [_no_formula(label[i]), _no_formula(notes[i])]
            if measured is not None:
                cells += [_measurement(measured[i].get(k), k, t0, raven=False) for k in keys]
            writer.writerow(cells)
    try:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(buffer.getvalue())
    except OSError as err:
        raise AnnotationError(f"cannot write {str(path)!r}: {err.strerror or err}") from None
    return path


def _ns_array(column: pd.Series) -> list[int]:
    values = pd.to_datetime(column)
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.astype("datetime64[ns]").to_numpy().astype(np.int64).tolist()


def _measured(rows, start, end, low, high, channel, atlas) -> list[Mapping]:
    """Each row's measurements: cached, or measured now."""
    cached = list(rows["measurements"]) if "measurements" in rows.columns else [None] * len(rows)
    todo = [i for i, m in enumerate(cached) if not isinstance(m, Mapping) or not m]
    if not todo:
        return cached
    channels = list(atlas.channels)
    failed: list[str] = []
    for i in todo:
        index = channels.index(channel[i]) if channel[i] in channels else None
        try:
            cached[i] = measure(
                atlas,
                time=(np.datetime64(start[i], "ns"), np.datetime64(end[i], "ns")),
                freq=(float(low[i]), float(high[i])),
                channel=index,
            )
        except AtlasError as err:
            cached[i] = {}
            failed.append(str(err))
    if failed:
        log.warning("%d of %d selections could not be measured (left empty); the first: %s", len(failed),
                    len(cached), failed[0])  # fmt: skip
    return cached


def _file_at(files: list[tuple[str, int, int]], t: int) -> tuple[str, int | None]:
    """The file holding time ``t`` (the later where files overlap) and the offset into it; ``("", None)`` in a gap."""
    found = ("", None)
    for name, start, end in files:
        if start > t:
            break
        if t < end:
            found = (name, t - start)
    return found


def _raven_name(key: str) -> str:
    return f"{key} (s)" if key in MEASURED_TIMES else key


def _measurement(value: object, key: str, t0: int, *, raven: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if key in MEASURED_TIMES:
        try:
            ns = int(to_datetime64(value).astype(np.int64))
        except AtlasError:
            return ""
        return _seconds(ns - t0) if raven else _iso(ns)
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return np.format_float_positional(value, precision=6, trim="-") if math.isfinite(value) else ""
    return _no_formula(" ".join(str(value).split()))  # (text on one line: no tab, no newline)


def _seconds(ns: int) -> str:
    """Integer nanoseconds as seconds with nine decimals, exactly."""
    sign = "-" if ns < 0 else ""
    whole, frac = divmod(abs(int(ns)), _SECOND)
    return f"{sign}{whole}.{frac:09d}"


def _hz(value: float) -> str:
    """The shortest decimal that reads back as the same float."""
    return np.format_float_positional(float(value), unique=True, trim="0")


def _iso(ns: int) -> str:
    return np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="ns") + "Z"


def _no_formula(cell: str) -> str:
    """A cell a spreadsheet shows as text: one starting with = + - @ (a formula there) or ' gets a leading '."""
    return "'" + cell if cell[:1] and cell[:1] in _FORMULA else cell
