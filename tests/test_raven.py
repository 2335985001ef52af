"""Raven Pro selection tables and CSV, in and out, on a real multi-file deployment with a gap; the CLI."""

from __future__ import annotations

import csv
import logging
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import SR, noise, tone

from data_access import StftConfig, ingest, open_annotations, open_atlas, open_timeline
from data_access import raven as raven_module
from data_access.annotations import FILE_NAME, AnnotationError
from data_access.raven import CSV_COLUMNS, MEASUREMENTS, RAVEN_COLUMNS, read_table, write_table

T0 = np.datetime64("2026-03-01T12:00:00", "ns")
S = np.timedelta64(1_000_000_000, "ns")
MS = np.timedelta64(1_000_000, "ns")
# Three 10 s files: the first two back to back, then a 5 s gap (12:00:20-12:00:25) before the third.
FILES = [("d_20260301_120000.wav", 0), ("d_20260301_120010.wav", 10), ("d_20260301_120025.wav", 25)]
HEADER = "\t".join(RAVEN_COLUMNS)


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deployment")
    for k, (name, _) in enumerate(FILES):
        sf.write(folder / name, noise(10.0, seed=k, amp=0.01) + tone(1000.0, 10.0, amp=0.2), SR, subtype="PCM_16")
    store = ingest(open_timeline(folder), folder / "site.zarr", StftConfig(n_fft=256), progress=False)
    return open_atlas(store)


@pytest.fixture(scope="module")
def stereo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stereo")
    wav = folder / "s_20260301_120000.wav"
    sf.write(wav, np.stack([noise(5.0, seed=1), noise(5.0, seed=2)], axis=1), SR)
    return open_atlas(ingest(open_timeline(wav, channel="all"), folder / "st.zarr", StftConfig(n_fft=256),
                             progress=False))  # fmt: skip


@pytest.fixture
def db(tmp_path):
    with open_annotations(tmp_path / FILE_NAME, author="ann") as db:
        yield db


def at(seconds: float) -> np.datetime64:
    return T0 + np.timedelta64(round(seconds * 1e9), "ns")


def fill(db, store="site.zarr") -> None:
    """Selections in each file, across the join of the first two, in the gap, at nanoseconds, with awkward text."""
    rows = [
        (at(1.000000001), at(2.5), 900.0, 1100.0, "whistle", "two animals; one faint"),
        (at(9.5), at(10.75), 0.0, 4000.0, "ship", "across the join of two files"),
        (at(21), at(23), 100.0, 200.0, "gap", "no data here"),
        (at(26.123456789), at(26.2), 1000.1, 1234.5678, "=SUM(A1:A9)", "-3 dB, 'quoted', tab-free, ünïcödé"),
        (at(30), at(35), 1.5, 3999.9, "'tis", "@ends at the recording's end"),
    ]
    for start, end, low, high, label, notes in rows:
        db.add(store, start=start, end=end, low_hz=low, high_hz=high, label=label, notes=notes)


@pytest.mark.parametrize("fmt", ["raven", "csv"])
def test_export_import_export_is_byte_identical(atlas, db, tmp_path, fmt):
    fill(db)
    first = write_table(db.selections("site.zarr"), tmp_path / f"a.{fmt}", atlas, format=fmt, measurements=False)
    rows = read_table(first, atlas)
    with open_annotations(tmp_path / "other.sqlite") as fresh:
        assert fresh.add_many("site.zarr", rows, source=first.name) == 5
        again = write_table(fresh.selections("site.zarr"), tmp_path / f"b.{fmt}", atlas, format=fmt,
                            measurements=False)  # fmt: skip
        # the same selections, to the nanosecond
        columns = ["start", "end", "low_hz", "high_hz", "channel", "label", "notes"]
        pd.testing.assert_frame_equal(fresh.selections("site.zarr")[columns], db.selections("site.zarr")[columns])
    assert again.read_bytes() == first.read_bytes()
    # and into the database it came from: nothing new
    assert db.add_many("site.zarr", read_table(first, atlas)) == 0


def test_raven_columns_say_where_each_selection_is(atlas, db, tmp_path):
    fill(db)
    path = write_table(db.selections("site.zarr"), tmp_path / "t.txt", atlas, measurements=False)
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0] == HEADER + "\tLabel\tNotes" and lines[-1] == ""
    rows = [line.split("\t") for line in lines[1:-1]]
    assert [r[:3] for r in rows] == [[str(k), "Spectrogram 1", "1"] for k in range(1, 6)]
    first, join, gap, third, last = (dict(zip(lines[0].split("\t"), r, strict=True)) for r in rows)
    assert (first["Begin Time (s)"], first["End Time (s)"]) == ("1.000000001", "2.500000000")
    assert (first["Low Freq (Hz)"], first["High Freq (Hz)"]) == ("900.0", "1100.0")
    assert (first["Begin Date"], first["Begin Clock Time"]) == ("2026/03/01", "12:00:01.000000")
    assert (first["Begin File"], first["File Offset (s)"]) == ("d_20260301_120000.wav", "1.000000001")
    assert (join["Begin File"], join["File Offset (s)"]) == ("d_20260301_120000.wav", "9.500000000")
    assert (gap["Begin File"], gap["File Offset (s)"]) == ("", "")  # no file holds it
    assert (third["Begin File"], third["File Offset (s)"], third["Begin Clock Time"]) == (
        "d_20260301_120025.wav", "1.123456789", "12:00:26.123456")  # fmt: skip
    assert (third["High Freq (Hz)"], third["Label"]) == ("1234.5678", "'=SUM(A1:A9)")  # a spreadsheet shows text
    assert (third["Notes"], last["Label"], last["Notes"]) == (
        "'-3 dB, 'quoted', tab-free, ünïcödé", "''tis", "'@ends at the recording's end")  # fmt: skip


def test_csv_columns(atlas, db, tmp_path):
    fill(db)
    path = write_table(db.selections("site.zarr"), tmp_path / "t.csv", atlas, format="csv", measurements=False)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[1] == ["2026-03-01T12:00:01.000000001Z", "2026-03-01T12:00:02.500000000Z", "900.0", "1100.0", "0",
                       "whistle", "two animals; one faint"]  # fmt: skip


def test_tombstones_are_not_exported(atlas, db, tmp_path):
    fill(db)
    one = db.selections("site.zarr").iloc[0]
    db.delete("site.zarr", int(one["id"]), version=1)
    path = write_table(db.selections("site.zarr", include_deleted=True), tmp_path / "t.txt", atlas, measurements=False)
    assert len(read_table(path, atlas)) == 4


def raven(tmp_path, text: str, name="r.txt", encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_raven_times_from_the_clock_from_files_or_from_the_start(atlas, tmp_path):
    clock = raven(tmp_path, "Selection\tView\tChannel\tBegin Date\tBegin Clock Time\tDelta Time (s)\tLow Freq (Hz)\t"
                  "High Freq (Hz)\tAnnotation\n"
                  "1\tSpectrogram 1\t1\t2026/03/01\t12:00:26.5\t0.25\t100\t200\tfin\n"
                  "1\tWaveform 1\t1\t2026/03/01\t12:00:26.5\t0.25\t100\t200\tfin\n", name="clock.txt")  # fmt: skip
    rows = read_table(clock, atlas)
    assert list(rows["start"]) == [at(26.5)] and list(rows["end"]) == [at(26.75)]  # one row per selection
    assert (rows["label"][0], rows["channel"][0], rows["line"][0]) == ("fin", "0", 2)
    # Raven counts a file sequence's sound without its gaps: the file and offset place it right.
    files = raven(tmp_path, "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\t"
                  "Begin File\tFile Offset (s)\n"
                  "1\tSpectrogram 1\t1\t21.5\t22.0\t10\t20\td_20260301_120025.wav\t1.5\n",
                  name="files.txt")  # fmt: skip
    rows = read_table(files, atlas)
    assert (rows["start"][0], rows["end"][0]) == (at(26.5), at(27.0))
    begin = raven(tmp_path, "Selection\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\n"
                  "7\t1.25\t2\t10\t20\n", name="begin.txt")  # fmt: skip
    assert read_table(begin, atlas)["start"][0] == at(1.25)
    assert read_table(begin, atlas, origin="2026-03-01T12:00:30Z")["start"][0] == at(31.25)
    with pytest.raises(AnnotationError, match=r"^origin 'noon' is not a time \(ISO 8601, UTC\)$"):
        read_table(begin, atlas, origin="noon")


def test_the_demo_events_table_is_read_as_csv(atlas, tmp_path):
    path = tmp_path / "events.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:  # as data_access.demo writes it
        writer = csv.writer(f)
        writer.writerow(["kind", "start", "end", "f_low_hz", "f_high_hz", "note"])
        writer.writerow(["ship", "2026-03-01T12:00:01.250Z", "2026-03-01T12:00:08.000Z", "25.0", "800.0",
                         "passing ship: CPA 1.2 km, 12 kn"])  # fmt: skip
    rows = read_table(path, atlas)
    assert list(rows.iloc[0][["start", "end", "low_hz", "high_hz", "channel", "label", "notes"]]) == [
        at(1.25), at(8), 25.0, 800.0, "0", "ship", "passing ship: CPA 1.2 km, 12 kn"]  # fmt: skip


def test_byte_order_marks_are_read(atlas, tmp_path):
    text = "Begin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tLabel\n1\t2\t10\t20\tbaleine à bosse\n"
    for encoding in ("utf-8-sig", "utf-16"):
        assert read_table(raven(tmp_path, text, encoding=encoding), atlas)["label"][0] == "baleine à bosse"


RAVEN_HEADER = "Selection\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tLabel\n"
GOOD = "1\t1\t1\t2\t10\t20\tok\n"
BAD_TABLES = [
    ("missing", "Selection\tBegin Time (s)\tEnd Time (s)\tHigh Freq (Hz)\n1\t1\t2\t20\n",
     r"line 1: no column Low Freq \(Hz\); the columns are: 'Selection', 'Begin Time \(s\)', "),
    ("no-time", "Selection\tLow Freq (Hz)\tHigh Freq (Hz)\n1\t1\t2\n", r"line 1: no column Begin Time \(s\) \(or "),
    ("text", RAVEN_HEADER + GOOD + "2\t1\t3\t4\tten\t20\tx\n", r"line 3: Low Freq \(Hz\) 'ten' is not a number$"),
    ("empty", RAVEN_HEADER + GOOD + "2\t1\t3\t4\t\t20\tx\n", r"line 3: Low Freq \(Hz\) is empty$"),
    ("seconds", RAVEN_HEADER + "2\t1\tsoon\t4\t1\t20\tx\n", r"line 2: Begin Time \(s\) 'soon' is not a number$"),
    ("inverted", RAVEN_HEADER + GOOD + GOOD + "3\t1\t5\t4\t1\t20\tx\n",
     r"line 4: the end 2026-03-01T12:00:04.000000000Z is not after the start 2026-03-01T12:00:05.000000000Z$"),
    ("outside", RAVEN_HEADER + "1\t1\t30\t40\t1\t20\tx\n",
     r"line 2: the selection 2026-03-01T12:00:30.000000000Z .. 2026-03-01T12:00:40.000000000Z is outside the "
     r"recording, 2026-03-01T12:00:00.000000000Z .. 2026-03-01T12:00:35.000000000Z$"),
    ("before", RAVEN_HEADER + "1\t1\t-1\t4\t1\t20\tx\n", r"line 2: the selection .* is outside the recording"),
    ("channel", RAVEN_HEADER + "1\t2\t1\t2\t1\t20\tx\n",
     r"line 2: Channel 2 is not one of the store's channels, 1..1$"),
    ("nyquist", RAVEN_HEADER + "1\t1\t1\t2\t1\t5000\tx\n",
     r"line 2: the high frequency 5000 Hz is above the store's Nyquist frequency, 4000 Hz$"),
    ("band", RAVEN_HEADER + "1\t1\t1\t2\t300\t200\tx\n", r"line 2: the high frequency 200 Hz is not above the low"),
    ("label", RAVEN_HEADER + "1\t1\t1\t2\t1\t20\t" + "x" * 81 + "\n", r"line 2: Label has 81 characters; at most 80$"),
    ("cells", RAVEN_HEADER + "1\t1\t1\t2\t1\t20\tx\ty\n", r"line 2: 8 cells, but the header names 7 columns$"),
    ("file", "Begin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tBegin File\tFile Offset (s)\n"
     "1\t2\t1\t20\tnope.wav\t1\n", r"line 2: Begin File 'nope.wav' is not one of the store's 3 files$"),
    ("clock", "Begin Date\tBegin Clock Time\tDelta Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\n"
     "2026/03/01\t25:00:00\t1\t1\t20\n", r"line 2: Begin Clock Time '25:00:00' is not a time of day like "),
    ("date", "Begin Date\tBegin Clock Time\tDelta Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\n"
     "03/01/2026\t12:00:00\t1\t1\t20\n", r"line 2: Begin Date '03/01/2026' is not a date like 2026/03/01$"),
    ("csv-time", "start,end,low_hz,high_hz\n2026-03-01T12:00:01Z,later,1,2\n",
     r"line 2: end 'later' is not a time \(ISO 8601, UTC\)$"),
    ("csv-missing", "begin,end,low_hz,high_hz\n1,2,3,4\n", r"line 1: no column start: a CSV table has columns "),
    ("csv-channel", "start,end,low_hz,high_hz,channel\n2026-03-01T12:00:01Z,2026-03-01T12:00:02Z,1,2,1\n",
     r"line 2: channel '1' is not one of the store's channels, 0$"),
    ("quote", 'start,end,low_hz,high_hz\n"2026-03-01T12:00:01Z,2026-03-01T12:00:02Z,1,2\n', r"line 2: unexpected end"),
    ("empty-file", "", r"line 1: the file is empty: no header$"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in BAD_TABLES], ids=[c[0] for c in BAD_TABLES])
def test_a_bad_table_is_one_line_naming_file_and_line_and_nothing_is_imported(atlas, db, tmp_path, text, message):
    path = raven(tmp_path, text, name="bad.csv" if text.startswith(("start", "begin,", '"')) else "bad.txt")
    with pytest.raises(AnnotationError, match=rf"^{path}, {message}") as err:
        db.add_many("site.zarr", read_table(path, atlas))
    assert "\n" not in str(err.value)
    assert db.revision("site.zarr") == 0


def test_bytes_that_are_not_utf8_are_named(atlas, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(("Begin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tLabel\n1\t2\t1\t20\tok\n"
                      "3\t4\t1\t20\tbaleine à bosse\n").encode("latin-1"))  # fmt: skip
    with pytest.raises(AnnotationError, match=rf"^{path}, line 3: the bytes b'\\xe0 bo' are not UTF-8 \(unknown "
                       r"encoding\): save the table as UTF-8$"):  # fmt: skip
        read_table(path, atlas)
    binary = tmp_path / "x.txt"
    binary.write_bytes(b"Begin Time (s)\tEnd\n\x00\x01")
    with pytest.raises(AnnotationError, match=r"line 2: a NUL character: this is not a text table$"):
        read_table(binary, atlas)
    with pytest.raises(AnnotationError, match=r"^cannot read '.*nope.txt': No such file or directory$"):
        read_table(tmp_path / "nope.txt", atlas)


def test_channels_are_numbered_from_one_in_raven(stereo, db, tmp_path):
    db.add("st.zarr", start=T0 + S, end=T0 + 2 * S, low_hz=10, high_hz=20, channel="1")
    path = write_table(db.selections("st.zarr"), tmp_path / "t.txt", stereo, measurements=False)
    assert path.read_text().split("\n")[1].split("\t")[2] == "2"
    assert list(read_table(path, stereo)["channel"]) == ["1"]
    bad = raven(tmp_path, RAVEN_HEADER + "1\t3\t1\t2\t1\t20\tx\n")
    with pytest.raises(AnnotationError, match=r"line 2: Channel 3 is not one of the store's channels, 1..2$"):
        read_table(bad, stereo)


def fake_measure(atlas, time, freq, channel=None):
    t0, t1 = time
    if freq[0] == 0.0:
        raise AnnotationError("nothing to measure")  # an AtlasError, as measure raises
    return {"Delta Time (s)": (t1 - t0) / S, "Delta Freq (Hz)": freq[1] - freq[0], "Peak Freq (Hz)": 1000.0,
            "Peak Time": t0 + 250 * MS, "Max Power (dB)": -12.3456789, "Center Freq (Hz)": 1000.0,
            "Freq 5% (Hz)": 990.0, "Freq 95% (Hz)": 1010.0, "BW 90% (Hz)": 20.0, "Time 5%": t0, "Time 95%": t1,
            "Dur 90% (s)": (t1 - t0) / S, "Inband Power (dB)": -15.0, "Energy (dB)": -3.0, "SNR (dB)": float("nan"),
            "SNR note": "no quiet frames", "units": "dB re full scale", "frames": 12}  # fmt: skip


def test_measurements_come_from_the_cache_or_are_measured(atlas, db, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(raven_module, "measure", fake_measure)
    fill(db)
    first = db.selections("site.zarr").iloc[0]
    cached = {**fake_measure(atlas, (first["start"], first["end"]), (900.0, 1100.0)), "Peak Freq (Hz)": 1001.5}
    db.set_measurements("site.zarr", int(first["id"]), cached)
    with caplog.at_level(logging.WARNING, logger="data_access.raven"):
        path = write_table(db.selections("site.zarr"), tmp_path / "m.txt", atlas)
    assert "1 of 5 selections could not be measured (left empty); the first: nothing to measure" in caplog.text
    lines = path.read_text().split("\n")
    names = lines[0].split("\t")
    assert names == [*RAVEN_COLUMNS, "Delta Time (s)", "Delta Freq (Hz)", "Peak Freq (Hz)", "Peak Time (s)",
                     "Max Power (dB)", "Center Freq (Hz)", "Freq 5% (Hz)", "Freq 95% (Hz)", "BW 90% (Hz)",
                     "Time 5% (s)", "Time 95% (s)", "Dur 90% (s)", "Inband Power (dB)", "Energy (dB)", "SNR (dB)",
                     "Label", "Notes"]  # fmt: skip
    one, ship = (dict(zip(names, line.split("\t"), strict=True)) for line in lines[1:3])
    assert one["Peak Freq (Hz)"] == "1001.5"  # the cached value
    assert (one["Peak Time (s)"], one["Time 5% (s)"], one["Max Power (dB)"], one["SNR (dB)"]) == (
        "1.250000001", "1.000000001", "-12.345679", "")  # fmt: skip
    assert (one["Delta Time (s)"], one["Delta Freq (Hz)"]) == ("1.5", "200")  # measurements to 6 decimals
    assert {ship[k] for k in names[len(RAVEN_COLUMNS) : -2]} == {""}  # could not be measured: empty
    table = write_table(db.selections("site.zarr"), tmp_path / "m.csv", atlas, format="csv")
    with open(table, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert (rows[0]["Peak Time"], rows[0]["SNR note"], rows[0]["frames"]) == (
        "2026-03-01T12:00:01.250000001Z", "no quiet frames", "12")  # fmt: skip
    # A table with measurements reads back as the same selections.
    assert len(read_table(path, atlas)) == len(read_table(table, atlas)) == 5
    assert MEASUREMENTS[0] == "Delta Time (s)"


def test_measured_by_data_access_measure(atlas, db, tmp_path, caplog):
    """The real measure on the real deployment: the 1 kHz tone is the peak; the box in the gap is left empty."""
    fill(db)
    with caplog.at_level(logging.WARNING, logger="data_access.raven"):
        path = write_table(db.selections("site.zarr"), tmp_path / "m.txt", atlas)
    assert "1 of 5 selections could not be measured" in caplog.text and "gap" in caplog.text
    lines = path.read_text().split("\n")
    names = lines[0].split("\t")
    whistle, _, gap = (dict(zip(names, line.split("\t"), strict=True)) for line in lines[1:4])
    assert abs(float(whistle["Peak Freq (Hz)"]) - 1000.0) <= atlas.df
    assert 1.0 <= float(whistle["Peak Time (s)"]) <= 2.5 and whistle["Delta Time (s)"] == "1.5"
    assert {gap[k] for k in names[len(RAVEN_COLUMNS) : -2]} == {""}


def test_export_of_nothing_is_a_header(atlas, db, tmp_path):
    path = write_table(db.selections("site.zarr"), tmp_path / "e.txt", atlas, measurements=False)
    assert path.read_text() == HEADER + "\tLabel\tNotes\n"
    assert read_table(path, atlas).empty


# ---------------------------------------------------------------------- the console script


def run(cli, *args, cwd=None):
    return subprocess.run([*cli, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_import_list_export(cli, atlas, db, tmp_path):
    fill(db, store="elsewhere.zarr")
    table = write_table(db.selections("elsewhere.zarr"), tmp_path / "in.txt", atlas, measurements=False)
    store = str(atlas.path)
    done = run(cli, "annotations", "import", store, str(table), "--author", "carol")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{table}: 5 selections added to site.zarr in {Path(store).parent / FILE_NAME}\n"
    again = run(cli, "annotations", "import", store, str(table))
    assert again.stdout == f"{table}: 0 selections added to site.zarr in {Path(store).parent / FILE_NAME} " \
        "(5 already there)\n"  # fmt: skip
    listing = run(cli, "annotations", "list", store)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["id", "start", "end", "low_hz", "high_hz", "channel", "label", "author"]
    assert lines[1].split() == ["1", "2026-03-01T12:00:01.000000001", "2026-03-01T12:00:02.500000000", "900.0",
                                "1100.0", "0", "whistle", "carol"]  # fmt: skip
    assert len(lines) == 6
    out = tmp_path / "out.txt"
    done = run(cli, "annotations", "export", store, "-o", str(out), "--no-measurements")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == table.read_bytes()
    csv_out = tmp_path / "out.csv"
    done = run(cli, "annotations", "export", store, "-o", str(csv_out), "--no-measurements", "--label", "ship",
               "--label", "gap")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with open(csv_out, encoding="utf-8") as f:
        assert [r["label"] for r in csv.DictReader(f)] == ["ship", "gap"]


def test_cli_errors_are_one_line(cli, atlas, tmp_path):
    bad = raven(tmp_path, RAVEN_HEADER + "1\t1\t1\t2\tten\t20\tx\n")
    store = str(atlas.path)
    db = tmp_path / "x.sqlite"
    done = run(cli, "annotations", "import", store, str(bad), "--annotations", str(db))
    assert done.returncode == 1
    assert done.stderr == f"spectral-atlas: error: {bad}, line 2: Low Freq (Hz) 'ten' is not a number\n"
    notdb = tmp_path / "notes.sqlite"
    notdb.write_text("not a database " * 100)
    done = run(cli, "annotations", "list", store, "--annotations", str(notdb))
    assert (done.returncode, done.stderr) == (1, f"spectral-atlas: error: '{notdb}' is not an SQLite database\n")
    done = run(cli, "annotations", "export", store)
    assert done.returncode == 2 and "-o/--output" in done.stderr
