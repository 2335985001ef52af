"""The selection database on real SQLite files: sessions sharing one file, conflicts, a killed writer,
read-only and locked databases, the overlay's indexed query."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_access import ConflictError, default_annotations_path, open_annotations
from data_access.annotations import COLUMNS, FILE_NAME, AnnotationError, Annotations

STORE = "site.zarr"
T0 = np.datetime64("2026-03-01T12:00:00", "ns")
S = np.timedelta64(1_000_000_000, "ns")
REPO = Path(__file__).resolve().parents[1]


def box(seconds: float, length: float = 2.0, **fields) -> dict:
    """Keyword arguments of ``add`` for a box from ``seconds`` after T0."""
    start = T0 + np.timedelta64(round(seconds * 1e9), "ns")
    return dict(start=start, end=start + np.timedelta64(round(length * 1e9), "ns"), low_hz=100.0, high_hz=900.0,
                **fields)  # fmt: skip


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / FILE_NAME


@pytest.fixture
def db(path):
    with open_annotations(path, author="ann") as db:
        yield db


def child(code: str, *args: str) -> subprocess.Popen:
    """A Python process running ``code`` with the repository importable; its stdout a text pipe."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )


def test_default_path_is_beside_the_store(tmp_path):
    assert default_annotations_path(tmp_path / "deploy" / "a.zarr") == tmp_path / "deploy" / FILE_NAME
    assert default_annotations_path("a.nc") == Path.cwd() / FILE_NAME
    with pytest.raises(AnnotationError, match=r"is a remote store: .* \(--annotations FILE\)$"):
        default_annotations_path("https://host/data/a.zarr")


def test_a_selection_reads_back_with_every_column(db):
    before = np.datetime64(time.time_ns(), "ns")
    i = db.add(STORE, **box(10, channel="1", label="whistle", notes="faint, two animals"), author="bob")
    df = db.selections(STORE)
    assert list(df.columns) == list(COLUMNS)
    row = df.iloc[0]
    assert (row["id"], row["start"], row["end"]) == (i, T0 + 10 * S, T0 + 12 * S)
    assert (row["low_hz"], row["high_hz"], row["channel"], row["label"], row["notes"]) == (
        100.0, 900.0, "1", "whistle", "faint, two animals")  # fmt: skip
    assert (row["author"], row["modified_by"], row["version"], row["deleted"], row["measurements"]) == (
        "bob", "bob", 1, False, None)  # fmt: skip
    assert before <= row["created"] == row["modified"] <= np.datetime64(time.time_ns(), "ns")
    assert df.dtypes["start"] == "datetime64[ns]" and df.dtypes["id"] == "int64" and df.dtypes["deleted"] == "bool"
    empty = db.selections("other.zarr")
    assert len(empty) == 0 and (empty.dtypes == df.dtypes).all()


def test_times_in_any_form_are_utc_to_the_nanosecond(db):
    i = db.add(STORE, start="2026-03-01T13:00:00.000000001+01:00", end=pd.Timestamp("2026-03-01T12:00:01Z"),
               low_hz=0, high_hz=1)  # fmt: skip
    row = db.get(STORE, i)
    assert (row["start"], row["end"]) == (T0 + np.timedelta64(1, "ns"), T0 + S)


def test_the_overlay_reads_what_overlaps_the_view_through_the_time_index(db):
    for k in range(10):  # boxes [10k, 10k + 2) s
        db.add(STORE, **box(10 * k))
    db.add(STORE, **box(5, length=60, label="ship"))  # a long one starting well before the view
    db.add("other.zarr", **box(40))
    view = db.selections(STORE, start=T0 + 41 * S, end=T0 + 61 * S)
    assert [(s - T0) / S for s in view["start"]] == [5, 40, 50, 60]  # sorted by start; the long one first
    # [40, 42) and [50, 52) touch [42, 50) at its ends only; the long one [5, 65) covers it
    assert list(db.selections(STORE, start=T0 + 42 * S, end=T0 + 50 * S)["label"]) == ["ship"]
    assert len(db.selections(STORE, start=T0 + 66 * S)) == 3 and len(db.selections(STORE, end=T0 + 5 * S)) == 1
    plan = " ".join(db.query_plan(STORE, start=T0 + 41 * S, end=T0 + 61 * S))
    assert "USING INDEX selections_by_time (store=? AND start_ns>? AND start_ns<?)" in plan
    changes_plan = db._read("EXPLAIN QUERY PLAN SELECT id FROM selections WHERE store = ? AND revision > ?", [STORE, 0])
    assert "selections_by_revision" in changes_plan[0][-1]


def test_filters_and_pages(db):
    for k in range(30):
        db.add(STORE, **box(k, label="a" if k % 3 else "b", channel=str(k % 2)))
    b = db.selections(STORE, labels="b")
    assert len(b) == 10 and set(b["label"]) == {"b"}
    assert db.count(STORE, labels=["a", "b"]) == 30 and db.count(STORE, labels=[]) == 0
    page = db.selections(STORE, labels=["a"], limit=5, offset=5)
    assert list(page["id"]) == list(db.selections(STORE, labels="a")["id"][5:10])
    assert set(db.selections(STORE, channel="1")["channel"]) == {"1"}


def test_two_sessions_see_each_others_adds_updates_and_deletes(path):
    ann, bob = open_annotations(path, author="ann"), open_annotations(path, author="bob")
    try:
        seen = bob.revision(STORE)
        assert seen == 0 and len(bob.changes(STORE, 0)) == 0
        i = ann.add(STORE, **box(1))
        assert bob.revision(STORE) > seen
        new = bob.changes(STORE, seen)
        assert list(new["id"]) == [i]
        seen = bob.revision(STORE)
        v = bob.update(STORE, i, version=1, label="fin whale", notes="20 Hz pulses")
        assert v == 2
        change = ann.changes(STORE, seen)
        assert (list(change["id"]), change["label"][0], change["modified_by"][0]) == ([i], "fin whale", "bob")
        seen = ann.revision(STORE)
        ann.delete(STORE, i, version=2)
        gone = bob.changes(STORE, seen)
        assert list(gone["id"]) == [i] and gone["deleted"][0]  # tombstones travel too
        assert len(bob.selections(STORE)) == 0 and len(bob.selections(STORE, include_deleted=True)) == 1
        assert bob.restore(STORE, i) == 4
        assert list(ann.selections(STORE)["id"]) == [i]
        assert len(ann.changes(STORE, ann.revision(STORE))) == 0
    finally:
        ann.close()
        bob.close()


def test_an_edit_based_on_an_old_version_is_refused(path):
    ann, bob = open_annotations(path, author="ann"), open_annotations(path, author="bob")
    try:
        i = ann.add(STORE, **box(1, label="whistle"))
        assert bob.update(STORE, i, version=1, label="click") == 2
        with pytest.raises(
            ConflictError, match=rf"^selection {i} was changed by bob at \d\d:\d\d:\d\d UTC; your edit was not saved$"
        ):
            ann.update(STORE, i, version=1, notes="mine")
        with pytest.raises(ConflictError, match="was changed by bob"):
            ann.delete(STORE, i, version=1)
        row = ann.get(STORE, i)
        assert (row["label"], row["notes"], row["version"], row["deleted"]) == ("click", "", 2, False)
        bob.delete(STORE, i, version=2)
        with pytest.raises(ConflictError, match=rf"^selection {i} was deleted by bob at "):
            ann.update(STORE, i, version=2, notes="mine")
        with pytest.raises(AnnotationError, match="is deleted; restore it before editing it"):
            ann.update(STORE, i, version=3, notes="mine")
    finally:
        ann.close()
        bob.close()


def test_an_edit_that_changes_nothing_saves_nothing(db):
    i = db.add(STORE, **box(1, label="x"))
    revision = db.revision(STORE)
    assert db.update(STORE, i, version=1, label="x") == 1
    assert db.revision(STORE) == revision


def test_updates_move_boxes_and_keep_the_rest(db):
    i = db.add(STORE, **box(1, label="x", notes="n"))
    v = db.update(STORE, i, version=1, start=T0, high_hz=2000.0)
    row = db.get(STORE, i)
    assert (v, row["start"], row["end"], row["high_hz"], row["notes"]) == (2, T0, T0 + 3 * S, 2000.0, "n")
    with pytest.raises(AnnotationError, match=r"^end=2026-03-01T12:00:03.000000000Z must be after start="):
        db.update(STORE, i, version=2, start=T0 + 5 * S)
    with pytest.raises(AnnotationError, match=r"^cannot update created, revision: the fields are start, end, "):
        db.update(STORE, i, version=2, created=T0, revision=3)


BAD = [
    (dict(end=T0), r"^end=2026-03-01T12:00:00.000000000Z must be after start=2026-03-01T12:00:01"),
    (dict(low_hz=-1), r"^low_hz=-1.0 must be >= 0$"),
    (dict(high_hz=50), r"^high_hz=50.0 must be above low_hz=100.0$"),
    (dict(low_hz=float("nan")), r"^low_hz=nan must be a finite number$"),
    (dict(high_hz=float("inf")), r"^high_hz=inf must be a finite number$"),
    (dict(high_hz="9"), r"^high_hz='9' must be a number$"),
    (dict(start=12.5), r"^start=12.5 must be a time \(datetime64, ISO string or Timestamp\), not a number$"),
    (dict(start="soon"), r"^start: cannot read 'soon' as a time"),
    (dict(label="x" * 81), r"^label must be at most 80 characters, not 81$"),
    (dict(label="a\nb"), r"^label must be printable text on one line: it holds '\\n'$"),
    (dict(notes="n" * 2001), r"^notes must be at most 2000 characters, not 2001$"),
    (dict(notes="bell\x07"), r"^notes must be printable text on one line: it holds '\\x07'$"),
    (dict(label=3), r"^label must be text, not int$"),
    (dict(channel=""), r"^channel must not be empty$"),
]


@pytest.mark.parametrize(("fields", "message"), BAD, ids=[str(list(f)[0]) + str(i) for i, (f, _) in enumerate(BAD)])
def test_a_bad_field_is_refused_naming_it(db, fields, message):
    with pytest.raises(AnnotationError, match=message):
        db.add(STORE, **{**box(1), **fields})
    assert db.revision(STORE) == 0


def test_add_many_is_one_transaction_and_a_reimport_adds_nothing(db):
    rows = pd.DataFrame([box(k, label="whistle" if k % 2 else "click") for k in range(100)])
    assert db.add_many(STORE, rows, author="importer", source="a.txt") == 100
    revision = db.revision(STORE)
    assert db.add_many(STORE, rows, source="a.txt") == 0
    assert db.revision(STORE) == revision  # nothing written
    df = db.selections(STORE)
    assert len(df) == 100 and set(df["source"]) == {"a.txt"} and set(df["author"]) == {"importer"}
    assert set(df["revision"]) == {revision}  # one transaction, one revision
    assert db.labels(STORE) == ["click", "whistle"]
    # One more row and one changed label: only those two are new.
    more = pd.concat([rows, pd.DataFrame([box(500)])], ignore_index=True)
    more.loc[3, "label"] = "other"
    assert db.add_many(STORE, more) == 2
    # A deleted row is not live: importing it again brings it back as a new selection.
    first = db.selections(STORE).iloc[0]
    db.delete(STORE, int(first["id"]), version=1)
    assert db.add_many(STORE, rows.iloc[:1]) == 1


def test_edit_many_saves_additions_edits_and_deletes_together_or_not_at_all(db):
    a, b, c = (db.add(STORE, **box(k)) for k in range(3))
    revision = db.revision(STORE)
    added, changed = db.edit_many(
        STORE,
        add=pd.DataFrame([box(10)]),
        update=[(a, 1, {"label": "whistle"}), (b, 1, {"notes": ""})],  # b: a change of nothing
        delete=[(c, 1)],
    )
    assert (added, changed) == (1, 2)
    df = db.selections(STORE, include_deleted=True).set_index("id")
    assert df.loc[a, "label"] == "whistle" and df.loc[a, "version"] == 2 and df.loc[b, "version"] == 1
    assert bool(df.loc[c, "deleted"]) and db.revision(STORE) == revision + 1  # one transaction
    # Someone else's edit of b in between: the whole batch is refused, the addition and a's edit too.
    db.update(STORE, b, version=1, notes="theirs")
    before = db.selections(STORE, include_deleted=True)
    with pytest.raises(ConflictError, match=f"selection {b} was changed by"):
        db.edit_many(STORE, add=pd.DataFrame([box(11)]), update=[(a, 2, {"label": "x"}), (b, 1, {"label": "y"})])
    pd.testing.assert_frame_equal(db.selections(STORE, include_deleted=True), before)
    with pytest.raises(AnnotationError, match="cannot update colour"):
        db.edit_many(STORE, update=[(a, 2, {"colour": "red"})])


def test_spread_gives_all_that_fit_else_the_first_of_each_equal_stretch(db):
    db.add_many(STORE, pd.DataFrame([box(k, length=0.5) for k in range(100)]))  # one a second, 100 s
    end = T0 + np.timedelta64(100, "s")
    assert len(db.spread(STORE, start=T0, end=end, limit=100)) == 100
    few = db.spread(STORE, start=T0, end=end, limit=20, slices=4)
    seconds = ((few["start"] - T0) / np.timedelta64(1, "s")).to_numpy()
    assert seconds.tolist() == [0, 1, 2, 3, 4, 25, 26, 27, 28, 29, 50, 51, 52, 53, 54, 75, 76, 77, 78, 79]


def test_add_many_takes_strings_and_aware_times_and_refuses_a_bad_row_whole(db):
    rows = pd.DataFrame(
        {
            "start": ["2026-03-01T12:00:00Z", "2026-03-01T12:00:05Z"],
            "end": ["2026-03-01T12:00:01Z", "2026-03-01T12:00:06Z"],
            "low_hz": [1, 2],
            "high_hz": [5, 6],
        }
    )
    assert db.add_many(STORE, rows) == 2
    assert list(db.selections(STORE)["start"]) == [T0, T0 + 5 * S]
    aware = rows.assign(start=pd.to_datetime(rows["start"]), end=pd.to_datetime(rows["end"]))
    assert db.add_many(STORE, aware) == 0  # the same rows
    bad = rows.assign(low_hz=[1, 7])
    with pytest.raises(AnnotationError, match=r"^rows\[1\]: high_hz=6.0 must be above low_hz=7.0$"):
        db.add_many("new.zarr", bad)
    with pytest.raises(AnnotationError, match=r"^rows\[0\]: label must be at most 80 characters, not 81$"):
        db.add_many("new.zarr", rows.assign(label=["x" * 81, ""]))
    with pytest.raises(AnnotationError, match=r"^rows lack the columns high_hz$"):
        db.add_many("new.zarr", rows.drop(columns="high_hz"))
    assert db.selections("new.zarr").empty


def test_labels_are_a_vocabulary_and_a_rename_relabels_in_one_transaction(path):
    ann, bob = open_annotations(path, author="ann"), open_annotations(path, author="bob")
    try:
        ann.add_label(STORE, "whistel")
        ann.add_label(STORE, "whistel")
        ids = [ann.add(STORE, **box(k, label="whistel")) for k in range(3)]
        other = ann.add(STORE, **box(9, label="click"))
        assert ann.labels(STORE) == ["click", "whistel"]
        seen = bob.revision(STORE)
        assert bob.rename_label(STORE, "whistel", "whistle") == 3
        assert ann.labels(STORE) == ["click", "whistle"]
        changed = ann.changes(STORE, seen)
        assert sorted(changed["id"]) == ids and set(changed["label"]) == {"whistle"}
        assert set(changed["version"]) == {2} and set(changed["modified_by"]) == {"bob"}
        with pytest.raises(ConflictError):  # an edit begun before the rename
            ann.update(STORE, ids[0], version=1, notes="x")
        assert ann.get(STORE, other)["version"] == 1
        with pytest.raises(AnnotationError, match=r"^no label 'nope' in 'site.zarr'$"):
            ann.rename_label(STORE, "nope", "x")
        with pytest.raises(AnnotationError, match=r"^label must not be empty$"):
            ann.rename_label(STORE, "click", "")
        assert ann.rename_label(STORE, "click", "whistle") == 1  # onto an existing label: merged
        assert ann.labels(STORE) == ["whistle"]
    finally:
        ann.close()
        bob.close()


def test_measurements_are_a_cache_cleared_when_the_box_moves(db):
    i = db.add(STORE, **box(1))
    revision = db.revision(STORE)
    values = {"Peak Freq (Hz)": np.float32(440.0), "Peak Time": T0 + S, "SNR (dB)": float("nan"), "frames": 7,
              "units": "dB re full scale"}  # fmt: skip
    db.set_measurements(STORE, i, values)
    row = db.get(STORE, i)
    assert row["measurements"] == {"Peak Freq (Hz)": 440.0, "Peak Time": "2026-03-01T12:00:01.000000000Z",
                                   "SNR (dB)": None, "frames": 7, "units": "dB re full scale"}  # fmt: skip
    assert row["version"] == 1 and row["revision"] > revision  # not an edit, but others see it
    v = db.update(STORE, i, version=1, notes="kept")
    assert db.get(STORE, i)["measurements"] is not None
    db.update(STORE, i, version=v, low_hz=200.0)
    assert db.get(STORE, i)["measurements"] is None
    with pytest.raises(ConflictError):
        db.set_measurements(STORE, i, values, version=1)
    with pytest.raises(AnnotationError, match=r"^no selection 99 in 'site.zarr'$"):
        db.set_measurements(STORE, 99, values)


def test_nothing_committed_is_lost_when_the_writer_is_killed(path):
    """A real SIGKILL in the middle of a loop of adds: every id the child printed is in the file."""
    writer = child(
        """
        import sys
        from data_access import open_annotations
        db = open_annotations(sys.argv[1], author="child")
        for k in range(100_000):
            i = db.add("site.zarr", start=f"2026-03-01T12:00:{k % 60:02d}", end="2026-03-02", low_hz=k, high_hz=1e5)
            print(i, flush=True)
        """,
        str(path),
    )
    committed = [int(writer.stdout.readline()) for _ in range(200)]
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    committed += [int(line) for line in writer.stdout.read().split()]  # printed before the kill landed
    writer.stdout.close()
    writer.stdin.close()
    with open_annotations(path) as db:
        assert set(committed) <= set(db.selections(STORE)["id"])
        assert db._read("PRAGMA integrity_check") == [("ok",)]


def test_readonly_reads_and_refuses_writes_naming_why(path):
    with open_annotations(path) as db:
        i = db.add(STORE, **box(1))
    with open_annotations(path, readonly=True) as db:
        assert db.read_only and db.read_only_reason == "opened read-only"
        assert list(db.selections(STORE)["id"]) == [i]
        with pytest.raises(AnnotationError, match=r"is read-only \(opened read-only\); nothing was saved$"):
            db.add(STORE, **box(2))
        with pytest.raises(AnnotationError, match="is read-only"):
            db.update(STORE, i, version=1, label="x")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):  # SQLite's own guard behind ours
            db._conn.execute("UPDATE counter SET revision = 0")
    assert sorted(p.name for p in path.parent.iterdir()) == [FILE_NAME]  # no -wal or -shm left behind
    with open_annotations(path.with_name("missing.sqlite"), readonly=True) as db:
        assert db.read_only and db.selections(STORE).empty and db.revision(STORE) == 0
    with open_annotations(path.parent / "nowhere" / "x.sqlite", readonly=True) as db:
        assert db.read_only and db.selections(STORE).empty
    assert sorted(p.name for p in path.parent.iterdir()) == [FILE_NAME]


def test_a_database_locked_by_another_process_refuses_writes_after_two_seconds(path):
    with open_annotations(path) as db:
        i = db.add(STORE, **box(1))
    holder = child(
        """
        import sqlite3, sys
        conn = sqlite3.connect(sys.argv[1], isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        print("locked", flush=True)
        sys.stdin.read()  # until the test closes our stdin
        conn.execute("ROLLBACK")
        """,
        str(path),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with open_annotations(path, author="ann") as db:  # opens: the schema is there, and WAL readers are not blocked
            assert list(db.selections(STORE)["id"]) == [i]
            tic = time.perf_counter()
            locked = r"is locked by another process \(waited 2 s\); nothing was saved"
            with pytest.raises(AnnotationError, match=locked):
                db.add(STORE, **box(2))
            assert 1.5 < time.perf_counter() - tic < 10
            with pytest.raises(AnnotationError, match="is locked by another process"):
                db.update(STORE, i, version=1, label="x")
            holder.stdin.close()
            holder.wait(timeout=30)
            assert db.update(STORE, i, version=1, label="x") == 2  # free again
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_a_file_that_is_not_a_database_is_an_error(tmp_path):
    text = tmp_path / "notes.sqlite"
    text.write_text("these are my notes, not a database\n" * 100)
    for readonly in (False, True):
        with pytest.raises(AnnotationError, match=r"^'.*notes.sqlite' is not an SQLite database$"):
            open_annotations(text, readonly=readonly)
    assert text.read_text().startswith("these are my notes")
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(AnnotationError, match=r"is an SQLite database, but not of Spectral Atlas annotations$"):
        open_annotations(other)
    with pytest.raises(AnnotationError, match=r"is a folder, not an annotations database$"):
        open_annotations(tmp_path)
    with pytest.raises(AnnotationError, match=r"cannot create '.*' its folder does not exist|folder does not exist"):
        open_annotations(tmp_path / "nope" / "a.sqlite")


def test_a_newer_schema_is_refused(path):
    open_annotations(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(AnnotationError, match=r"written by a newer Spectral Atlas \(schema 99; this one reads 1\)"):
        open_annotations(path)


def test_on_a_read_only_file_system_it_opens_read_only(tmp_path):
    """A real read-only bind mount (root in a private mount namespace): reads work, writes say why."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) for a read-only mount")
    folder = tmp_path / "ro"
    folder.mkdir()
    with open_annotations(folder / FILE_NAME) as db:
        db.add(STORE, **box(1, label="kept"))
    code = textwrap.dedent(
        """
        import sys
        from data_access import open_annotations
        from data_access.annotations import AnnotationError
        folder = sys.argv[1]
        for name in ("ANNOTATIONS.sqlite", "missing.sqlite"):
            db = open_annotations(f"{folder}/{name}")
            print(db.read_only, db.read_only_reason, list(db.selections("site.zarr")["label"]))
            try:
                db.add("site.zarr", start="2026-03-01", end="2026-03-02", low_hz=0, high_hz=1)
            except AnnotationError as err:
                print(err)
        """
    )
    mount = f'mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && exec {sys.executable} -c "$0" '
    try:
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount + str(folder), code],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except OSError as err:
        pytest.skip(f"cannot run unshare: {err}")
    if done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"no read-only mount here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    reason = f"its folder '{folder}' is on a read-only file system"
    assert lines == [
        f"True {reason} ['kept']",
        f"'{folder / FILE_NAME}' is read-only ({reason}); nothing was saved",
        f"True {reason} []",
        f"'{folder / 'missing.sqlite'}' is read-only ({reason}); nothing was saved",
    ]


def test_an_object_is_safe_to_share_between_threads(db):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda k: db.add(STORE, **box(k)), range(64)))
    assert sorted(ids) == sorted(db.selections(STORE)["id"]) and len(set(ids)) == 64


def test_closed_is_an_error(path):
    db = open_annotations(path)
    db.close()
    with pytest.raises(AnnotationError, match="is closed"):
        db.selections(STORE)
    assert isinstance(db, Annotations)


def test_the_demo_opens_with_its_events_marked(tmp_path):
    from data_access.demo import make_demo, read_events

    store = make_demo(tmp_path, hours=0.02, progress=False)
    events = read_events(tmp_path / "events.csv")
    with open_annotations(default_annotations_path(store)) as db:
        marked = db.selections("demo.zarr")
        assert list(marked["label"]) == [e.kind for e in events] and set(marked["author"]) == {"demo"}
        assert list(marked["start"]) == [e.start for e in events] and list(marked["notes"]) == [e.note for e in events]
        assert db.labels("demo.zarr") == sorted({e.kind for e in events})
        revision = db.revision("demo.zarr")
    make_demo(tmp_path, hours=0.02, progress=False, overwrite=True)  # made again: nothing marked twice
    with open_annotations(default_annotations_path(store)) as db:
        assert db.revision("demo.zarr") == revision and len(db.selections("demo.zarr")) == len(events)
