"""The selection database: time-frequency boxes people draw on a store, shared by every session.

One SQLite file (standard-library :mod:`sqlite3`) holds the selections of many
stores, each keyed by the store's name (:attr:`~data_access.Atlas.name`, e.g.
``"demo.zarr"``). By default it is ``ANNOTATIONS.sqlite`` beside the stores
(:func:`default_annotations_path`), so the stores of one folder share it and a
name is unique in it.

Conventions
-----------
- A selection is ``start, end`` (UTC, stored as int64 nanoseconds), ``low_hz,
  high_hz``, a ``channel`` (the store's channel label, ``"0"`` for a
  single-channel store), a ``label`` from the store's vocabulary and free
  ``notes``; it records its ``author``, who changed it last (``modified_by``)
  and when.
- Every edit is one transaction (``BEGIN IMMEDIATE``: it takes the write lock
  at once, so two writers queue rather than fail halfway). The file is in WAL
  mode with ``synchronous=FULL``: a committed edit survives the process being
  killed *and* the machine losing power (NORMAL would keep it through a kill
  only); each commit costs one fsync, nothing at the rate people edit, and a
  whole import is one commit.
- Revisions: one counter per database, bumped by every transaction that
  changes a row, which then carries it; ``changes(store, since)`` returns the
  rows whose revision is above ``since``, tombstones included, through an
  index. A session that polls ``revision(store)`` once a second and asks for
  the changes when it moved sees every other session's edits.
- Versions: each row's own count of user edits. An edit names the version it
  was based on; **if the row has changed since, the edit is refused with a
  ConflictError naming who changed it and when, and nothing is saved** (the
  later edit loses, never the earlier one silently): the person re-reads the
  selection and edits again.
- Deleting leaves a tombstone (``deleted=True``) that ``restore`` undoes;
  ``selections`` leaves tombstones out unless asked.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import math
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from data_access.errors import AtlasError, ParameterError
from data_access.times import to_datetime64

log = logging.getLogger(__name__)

#: File name of the database beside the stores.
FILE_NAME = "ANNOTATIONS.sqlite"
#: ``PRAGMA application_id`` of an annotations database ("SAan").
APPLICATION_ID = 0x5341616E
#: ``PRAGMA user_version``: the schema this module writes.
SCHEMA_VERSION = 1
#: Longest label and notes, in characters.
LABEL_MAX, NOTES_MAX = 80, 2000
#: Longest store name, channel label, author and source.
NAME_MAX = 200
#: Seconds a write waits for another process's lock before giving up.
BUSY_TIMEOUT = 2.0
#: Fields an update may change.
FIELDS = ("start", "end", "low_hz", "high_hz", "channel", "label", "notes")
#: Columns of the frames :meth:`Annotations.selections` and :meth:`Annotations.changes` return.
COLUMNS = (
    "id",
    "start",
    "end",
    "low_hz",
    "high_hz",
    "channel",
    "label",
    "notes",
    "author",
    "created",
    "modified",
    "modified_by",
    "version",
    "revision",
    "deleted",
    "measurements",
    "source",
)
# Fields that change what a measurement measures: changing one clears the cached measurements.
_MEASURED = {"start", "end", "low_hz", "high_hz", "channel"}
_MEASUREMENTS_MAX = 65536  # bytes of JSON

_SCHEMA = """
CREATE TABLE counter (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    revision INTEGER NOT NULL
);
INSERT INTO counter VALUES (1, 0);
-- The longest selection each store ever held: the lower bound of an overlap query's index range.
CREATE TABLE stores (
    store TEXT PRIMARY KEY,
    longest_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE selections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL CHECK (end_ns > start_ns),
    low_hz REAL NOT NULL CHECK (low_hz >= 0),
    high_hz REAL NOT NULL CHECK (high_hz > low_hz),
    channel TEXT NOT NULL,
    label TEXT NOT NULL,
    notes TEXT NOT NULL,
    author TEXT NOT NULL,
    source TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    modified_ns INTEGER NOT NULL,
    modified_by TEXT NOT NULL,
    version INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    measurements TEXT
);
CREATE INDEX selections_by_time ON selections (store, start_ns);
CREATE INDEX selections_by_label ON selections (store, label, start_ns);
CREATE INDEX selections_by_revision ON selections (store, revision);
CREATE TABLE labels (
    store TEXT NOT NULL,
    name TEXT NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (store, name)
) WITHOUT ROWID;
"""

_SELECT = (
    "SELECT id, start_ns, end_ns, low_hz, high_hz, channel, label, notes, author, created_ns, modified_ns, "
    "modified_by, version, revision, deleted, measurements, source FROM selections"
)


class AnnotationError(AtlasError):
    """The selection database or a selection table cannot be read or written as asked."""


class ConflictError(AnnotationError):
    """An edit was based on a version of a selection that someone has changed since; it was not saved."""


def default_annotations_path(store_path: str | os.PathLike) -> Path:
    """The database of a store's annotations: ``ANNOTATIONS.sqlite`` in the store's folder.

    Parameters
    ----------
    store_path : path-like
        A local store (``deploy/site.zarr``).

    Raises
    ------
    AnnotationError
        ``store_path`` is a URL: a remote store has no folder of ours to write in.
    """
    text = os.fspath(store_path)
    if "://" in str(text):
        raise AnnotationError(
            f"{text!r} is a remote store: it has no local folder for an annotations database; name one "
            "(--annotations FILE)"
        )
    return Path(os.path.abspath(text)).parent / FILE_NAME


def open_annotations(path: str | os.PathLike, *, readonly: bool = False, author: str | None = None) -> Annotations:
    """Open (or create) a selection database.

    Parameters
    ----------
    path : path-like
        The SQLite file; created with its folder's permission when missing.
    readonly : bool, default: False
        Open it for reading only.
    author : str, optional
        Who edits through this object (``modified_by`` of updates, deletes,
        restores and renames); default the local user name.

    Returns
    -------
    Annotations
        Read-only (``read_only`` True, ``read_only_reason`` saying why) when
        asked, when the file or its folder cannot be written, or when the file
        is missing and cannot be created (then it is empty).

    Raises
    ------
    AnnotationError
        The file is not an SQLite database, is another program's database, was
        written by a newer version, or another process holds it locked for
        longer than :data:`BUSY_TIMEOUT` seconds while it is being set up.
    """
    return Annotations(path, readonly=readonly, author=author)


class Annotations:
    """A selection database; use :func:`open_annotations`.

    Attributes
    ----------
    path : Path
    read_only : bool
    read_only_reason : str
        Why writes are refused; ``""`` when writable.
    author : str
        Who edits through this object.

    Notes
    -----
    One connection, guarded by a lock: an object may be shared by the threads
    of a server. Two objects on one file (two sessions, two processes) see
    each other's commits at their next read.
    """

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False, author: str | None = None) -> None:
        self.path = Path(path)
        self.author = _text(author if author is not None else _user(), "author", NAME_MAX)
        self.read_only = False
        self.read_only_reason = ""
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        if self.path.is_dir():
            raise AnnotationError(f"{str(self.path)!r} is a folder, not an annotations database")
        if readonly:
            # Where the file could be written, it is opened as usual with writes switched off: its last reader
            # then tidies the WAL's -wal and -shm files away on closing, as a read-only connection cannot.
            writable = self.path.parent.is_dir() and not self._why_not_writable()
            self._open_read_only("opened read-only", query_only=writable)
            return
        reason = self._why_not_writable()
        if reason:
            self._open_read_only(reason)
        else:
            try:
                self._open_writable()
            except _ReadOnly as err:
                self._open_read_only(str(err))

    # ------------------------------------------------------------------ opening
    def _why_not_writable(self) -> str:
        folder = self.path.parent
        if not folder.is_dir():
            raise AnnotationError(f"cannot create {str(self.path)!r}: its folder does not exist")
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"its folder {str(folder)!r} is on a read-only file system"
        if self.path.exists() and not os.access(self.path, os.W_OK):
            return f"{str(self.path)!r} is not writable"
        if not os.access(folder, os.W_OK):  # (the WAL's -wal and -shm files are made beside it)
            return f"its folder {str(folder)!r} is not writable"
        return ""

    def _open_writable(self) -> None:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        try:
            fresh = self._check(conn)
            mode = self._run(conn, "PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":  # a file system without shared memory, say: still correct, only slower
                log.warning("%s: journal mode %s, not WAL", self.path, mode)
            conn.execute("PRAGMA synchronous=FULL")
            if fresh:
                self._run(conn, "BEGIN IMMEDIATE")
                try:
                    if self._check(conn):  # (another process may have set it up while we waited)
                        _create_schema(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _open_read_only(self, reason: str, *, query_only: bool = False) -> None:
        self.read_only, self.read_only_reason = True, reason
        if not self.path.exists():
            # Nothing to read: an empty database in memory, so every read works.
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            _create_schema(conn)
            self._conn = conn
            return
        if query_only:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            try:
                self._check(conn)
                conn.execute("PRAGMA query_only=ON")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            return
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.path)) + "?mode=ro"
        for extra in ("", "&immutable=1"):  # a WAL file in a folder we cannot write needs immutable
            conn = sqlite3.connect(uri + extra, uri=True, timeout=BUSY_TIMEOUT, check_same_thread=False)
            conn.isolation_level = None
            try:
                self._check(conn)
            except _CannotOpen:
                conn.close()
                continue
            except BaseException:
                conn.close()
                raise
            conn.execute("PRAGMA query_only=ON")
            self._conn = conn
            return
        raise AnnotationError(f"cannot open {str(self.path)!r} even for reading")

    def _check(self, conn: sqlite3.Connection) -> bool:
        """Whether the file is new (no tables yet); errors if it is not an annotations database we can read."""
        app = self._run(conn, "PRAGMA application_id").fetchone()[0]
        schema = self._run(conn, "PRAGMA user_version").fetchone()[0]
        tables = self._run(conn, "SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app == APPLICATION_ID:
            if schema > SCHEMA_VERSION:
                raise AnnotationError(
                    f"{str(self.path)!r} was written by a newer Spectral Atlas (schema {schema}; this one reads "
                    f"{SCHEMA_VERSION}): upgrade spectral-atlas"
                )
            return False
        if tables or schema:
            raise AnnotationError(f"{str(self.path)!r} is an SQLite database, but not of Spectral Atlas annotations")
        return True

    def _run(self, conn: sqlite3.Connection, sql: str, params: Iterable = ()) -> sqlite3.Cursor:
        try:
            return conn.execute(sql, tuple(params))
        except sqlite3.Error as err:
            raise self._error(err) from None

    def _error(self, err: sqlite3.Error) -> Exception:
        """The AnnotationError (or internal signal) for an error of SQLite."""
        name = getattr(err, "sqlite_errorname", "")
        text = str(err)
        where = repr(str(self.path))
        if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "locked" in text:
            return AnnotationError(
                f"{where} is locked by another process (waited {BUSY_TIMEOUT:g} s); nothing was saved, try again"
            )
        if name == "SQLITE_NOTADB" or "not a database" in text:
            return AnnotationError(f"{where} is not an SQLite database")
        if name.startswith("SQLITE_READONLY") or "readonly database" in text:
            return _ReadOnly(f"{where} cannot be written ({text})")
        if name.startswith("SQLITE_CANTOPEN"):
            return _CannotOpen(text)
        return AnnotationError(f"{where}: {text}")

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        """Close the connection; the object cannot be used afterwards."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Annotations:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = f"read-only: {self.read_only_reason}" if self.read_only else "writable"
        return f"<Annotations {str(self.path)!r} ({mode})>"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise AnnotationError(f"{str(self.path)!r} is closed")
        return self._conn

    def _read(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._run(self._connection(), sql, params).fetchall()

    @contextmanager
    def _write(self) -> Iterator[_Transaction]:
        """One transaction holding the write lock; committed when the block ends, rolled back if it raises."""
        if self.read_only:
            raise AnnotationError(f"{str(self.path)!r} is read-only ({self.read_only_reason}); nothing was saved")
        with self._lock:
            conn = self._connection()
            try:
                self._run(conn, "BEGIN IMMEDIATE")
            except _ReadOnly as err:
                raise AnnotationError(f"{err}; nothing was saved") from None
            try:
                yield _Transaction(self, conn)
                self._run(conn, "COMMIT")
            except BaseException as err:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(err, _ReadOnly):
                    raise AnnotationError(f"{err}; nothing was saved") from None
                raise

    # ------------------------------------------------------------------ reads
    def selections(
        self,
        store: str,
        *,
        start: object = None,
        end: object = None,
        labels: str | Iterable[str] | None = None,
        channel: str | None = None,
        include_deleted: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """The selections of ``store`` that overlap ``[start, end)``.

        Parameters
        ----------
        store : str
            The store's name.
        start, end : time-like, optional
            UTC (datetime64, ISO string, Timestamp); default unbounded. The
            query reads the time index from ``start`` minus the longest
            selection the store has held, not the whole table.
        labels : str or iterable of str, optional
            Only these labels.
        channel : str, optional
            Only this channel.
        include_deleted : bool, default: False
            Tombstones too.
        limit, offset : int, optional
            A page of the result: ``limit`` rows after the first ``offset``.

        Returns
        -------
        DataFrame
            One row per selection, sorted by ``start`` then ``id``, columns
            :data:`COLUMNS`: ``id`` (int), ``start``, ``end``, ``created``,
            ``modified`` (``datetime64[ns]``, naive UTC), ``low_hz``,
            ``high_hz`` (float), ``channel``, ``label``, ``notes``, ``author``,
            ``modified_by``, ``source`` (str), ``version``, ``revision`` (int),
            ``deleted`` (bool), ``measurements`` (dict or None).
        """
        where, params = self._where(store, start, end, labels, channel, include_deleted)
        sql = f"{_SELECT} WHERE {where} ORDER BY start_ns, id"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else _count(limit, "limit"), _count(offset, "offset")]
        return _frame(self._read(sql, params))

    def count(
        self,
        store: str,
        *,
        start: object = None,
        end: object = None,
        labels: str | Iterable[str] | None = None,
        channel: str | None = None,
        include_deleted: bool = False,
    ) -> int:
        """How many rows :meth:`selections` would return without ``limit``."""
        where, params = self._where(store, start, end, labels, channel, include_deleted)
        return self._read(f"SELECT count(*) FROM selections WHERE {where}", params)[0][0]

    def spread(self, store: str, *, start: object, end: object, limit: int, slices: int = 20, **query) -> pd.DataFrame:
        """At most ``limit`` of the selections over ``[start, end)``, spread over it when more lie there.

        All of them when they are ``limit`` or fewer; else the first ``limit // slices``
        of each of ``slices`` equal stretches of the span (a selection meeting two
        stretches once), so a zoomed-out view has marks all along it, not only in its
        first minutes. ``query``: :meth:`selections`' ``labels``, ``channel``.
        """
        if self.count(store, start=start, end=end, **query) <= limit:
            return self.selections(store, start=start, end=end, **query)
        t0, t1 = to_datetime64(start), to_datetime64(end)
        edges = [t0 + (t1 - t0) * k // slices for k in range(slices + 1)]
        parts = [
            self.selections(store, start=a, end=b, limit=limit // slices, **query)
            for a, b in zip(edges[:-1], edges[1:], strict=True)
        ]
        return pd.concat(parts).drop_duplicates("id")

    def query_plan(self, store: str, **query) -> list[str]:
        """SQLite's plan for :meth:`selections` with these arguments (to check it uses an index)."""
        where, params = self._where(store, **query)
        rows = self._read(f"EXPLAIN QUERY PLAN {_SELECT} WHERE {where} ORDER BY start_ns, id", params)
        return [row[-1] for row in rows]

    def _where(self, store, start=None, end=None, labels=None, channel=None, include_deleted=False) -> tuple[str, list]:
        clauses, params = ["store = ?"], [_store(store)]
        if end is not None:
            clauses.append("start_ns < ?")
            params.append(_ns(end, "end"))
        if start is not None:
            t0 = _ns(start, "start")
            # start_ns bounds both sides: the index is read from t0 minus the longest selection only (the
            # bound is read in the same statement, so in the same snapshot as the rows).
            clauses += [
                "start_ns >= ? - coalesce((SELECT longest_ns FROM stores WHERE stores.store = ?), 0)",
                "end_ns > ?",
            ]
            params += [t0, params[0], t0]
        if labels is not None:
            names = [labels] if isinstance(labels, str) else list(labels)
            clauses.append(f"label IN ({', '.join('?' * len(names))})" if names else "0")
            params += names
        if channel is not None:
            clauses.append("channel = ?")
            params.append(str(channel))
        if not include_deleted:
            clauses.append("deleted = 0")
        return " AND ".join(clauses), params

    def get(self, store: str, id: int) -> pd.Series:
        """Selection ``id`` of ``store`` (a tombstone too), as a row of :meth:`selections`.

        Raises
        ------
        AnnotationError
            There is no such selection in that store.
        """
        rows = self._read(f"{_SELECT} WHERE id = ? AND store = ?", [_id(id), _store(store)])
        if not rows:
            raise AnnotationError(f"no selection {id} in {store!r}")
        return _frame(rows).iloc[0]

    def revision(self, store: str) -> int:
        """The highest revision of ``store``'s rows (0 if it has none): poll it to learn of others' edits."""
        return self._read("SELECT max(revision) FROM selections WHERE store = ?", [_store(store)])[0][0] or 0

    def changes(self, store: str, since: int) -> pd.DataFrame:
        """The rows of ``store`` changed after revision ``since``, tombstones included, sorted by revision.

        Each row appears once, as it is now. Read through the index on ``(store, revision)``.
        """
        rows = self._read(
            f"{_SELECT} WHERE store = ? AND revision > ? ORDER BY revision, id", [_store(store), _count(since, "since")]
        )
        return _frame(rows)

    def stores(self) -> list[str]:
        """Names of the stores that have selections here."""
        return [row[0] for row in self._read("SELECT DISTINCT store FROM selections ORDER BY store")]

    def labels(self, store: str) -> list[str]:
        """The label vocabulary of ``store``, sorted (every label a selection uses is in it)."""
        return [row[0] for row in self._read("SELECT name FROM labels WHERE store = ? ORDER BY name", [_store(store)])]

    # ------------------------------------------------------------------ writes
    def add(
        self,
        store: str,
        *,
        start: object,
        end: object,
        low_hz: float,
        high_hz: float,
        channel: str = "0",
        label: str = "",
        notes: str = "",
        author: str | None = None,
    ) -> int:
        """Add one selection; returns its id.

        Raises
        ------
        AnnotationError
            A field is out of range (the message names it), or the database is
            read-only or locked.
        """
        row = _checked_row(
            dict(start=start, end=end, low_hz=low_hz, high_hz=high_hz, channel=channel, label=label, notes=notes)
        )
        who = self.author if author is None else _text(author, "author", NAME_MAX)
        store = _store(store)
        with self._write() as tx:
            revision = tx.next_revision()
            now = time.time_ns()
            cur = tx.run(
                "INSERT INTO selections (store, start_ns, end_ns, low_hz, high_hz, channel, label, notes, author, "
                "source, created_ns, modified_ns, modified_by, version, revision) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, 1, ?)",
                [store, *(row[f] for f in FIELDS), who, now, now, who, revision],
            )
            tx.grew(store, row["end"] - row["start"])
            tx.use_labels(store, [row["label"]], revision)
            return cur.lastrowid

    def add_many(self, store: str, rows: pd.DataFrame, *, author: str | None = None, source: str = "") -> int:
        """Add many selections in one transaction; returns how many were added.

        Parameters
        ----------
        store : str
        rows : DataFrame
            Columns ``start``, ``end`` (datetime64 or time strings, UTC),
            ``low_hz``, ``high_hz``, and optionally ``channel`` (default
            ``"0"``), ``label`` and ``notes`` (default ``""``).
        author : str, optional
            Default this object's author.
        source : str, default: ""
            Where the rows came from (a file name), kept with each.

        Notes
        -----
        A row equal to a live selection of the store in ``start, end, low_hz,
        high_hz, channel, label`` is not added again: importing a file twice
        adds nothing the second time. Every row is checked before any is
        written; one bad row adds none (an AnnotationError names its position
        and field).
        """
        table = _checked_frame(rows)
        who = self.author if author is None else _text(author, "author", NAME_MAX)
        source = _text(source, "source", NAME_MAX)
        store = _store(store)
        if not len(table):
            return 0
        with self._write() as tx:
            return tx.add_rows(store, table, who, source)

    def update(self, store: str, id: int, *, version: int, author: str | None = None, **fields) -> int:
        """Change fields of selection ``id``; returns its new version.

        Parameters
        ----------
        store : str
        id : int
        version : int
            The version the edit was based on.
        author : str, optional
            Who edits; default this object's author.
        **fields
            Among ``start, end, low_hz, high_hz, channel, label, notes``.
            Changing the box or channel clears its cached measurements. An
            edit that changes nothing saves nothing and returns ``version``.

        Raises
        ------
        ConflictError
            The selection changed since ``version`` (someone else's edit, or a
            delete); the edit is refused and nothing is saved.
        AnnotationError
            No such selection, it is deleted, a field is unknown or out of
            range, or the database is read-only or locked.
        """
        who = self.author if author is None else _text(author, "author", NAME_MAX)
        store = _store(store)
        with self._write() as tx:
            return tx.update_row(store, id, version, fields, who)

    def delete(self, store: str, id: int, *, version: int, author: str | None = None) -> None:
        """Delete selection ``id`` (a tombstone :meth:`restore` undoes).

        Raises
        ------
        ConflictError
            The selection changed since ``version``; it is not deleted.
        """
        who = self.author if author is None else _text(author, "author", NAME_MAX)
        store = _store(store)
        with self._write() as tx:
            tx.delete_row(store, id, version, who)

    def edit_many(
        self,
        store: str,
        *,
        add: pd.DataFrame | None = None,
        update: Iterable[tuple[int, int, Mapping]] = (),
        delete: Iterable[tuple[int, int]] = (),
        author: str | None = None,
        source: str = "",
    ) -> tuple[int, int]:
        """Add, change and delete selections in one transaction: all of it is saved, or none.

        Parameters
        ----------
        store : str
        add : DataFrame, optional
            New selections, as :meth:`add_many` takes them (a row equal to a live
            selection is not added again).
        update : iterable of (id, version, fields)
            Edits as :meth:`update` makes them, each based on ``version``.
        delete : iterable of (id, version)
            Deletes as :meth:`delete` makes them.
        author : str, optional
            Default this object's author.
        source : str, default: ""
            Where the new rows came from, kept with each.

        Returns
        -------
        (added, changed) : (int, int)
            Selections added, and selections changed or deleted (an edit that
            changes nothing is not counted).

        Raises
        ------
        ConflictError, AnnotationError
            As :meth:`update` and :meth:`delete` raise them, for the first edit
            that fails; nothing at all is saved then.
        """
        who = self.author if author is None else _text(author, "author", NAME_MAX)
        source = _text(source, "source", NAME_MAX)
        store = _store(store)
        table = None if add is None else _checked_frame(add)
        update, delete = list(update), list(delete)
        with self._write() as tx:
            added = tx.add_rows(store, table, who, source) if table is not None and len(table) else 0
            changed = sum(tx.update_row(store, sid, version, fields, who) != version for sid, version, fields in update)
            changed += sum(tx.delete_row(store, sid, version, who) for sid, version in delete)
            return added, changed

    def restore(self, store: str, id: int, *, author: str | None = None) -> int:
        """Undo the delete of selection ``id``; returns its new version (its version if it was not deleted)."""
        who = self.author if author is None else _text(author, "author", NAME_MAX)
        store = _store(store)
        with self._write() as tx:
            old = tx.current(store, id, None)
            if not old["deleted"]:
                return old["version"]
            tx.run(
                "UPDATE selections SET deleted = 0, version = version + 1, revision = ?, modified_ns = ?, "
                "modified_by = ? WHERE id = ?",
                [tx.next_revision(), time.time_ns(), who, id],
            )
            return old["version"] + 1

    def add_label(self, store: str, name: str) -> None:
        """Add ``name`` to the vocabulary of ``store`` (nothing if it is there)."""
        name = _text(name, "label", LABEL_MAX, empty=False)
        store = _store(store)
        with self._write() as tx:
            tx.use_labels(store, [name], None)

    def rename_label(self, store: str, old: str, new: str, *, author: str | None = None) -> int:
        """Rename label ``old`` to ``new`` in the vocabulary and on every selection of ``store``; one transaction.

        Each relabelled selection gets a new version and revision (an edit
        based on its old version is then refused). Renaming onto a label that
        exists merges the two. Returns how many selections were relabelled.
        """
        new = _text(new, "label", LABEL_MAX, empty=False)
        old = _text(old, "label", LABEL_MAX)
        who = self.author if author is None else _text(author, "author", NAME_MAX)
        store = _store(store)
        with self._write() as tx:
            known = tx.run("SELECT 1 FROM labels WHERE store = ? AND name = ?", [store, old]).fetchone()
            if not known:
                raise AnnotationError(f"no label {old!r} in {store!r}")
            if old == new:
                return 0
            revision = tx.next_revision()
            cur = tx.run(
                "UPDATE selections SET label = ?, version = version + 1, revision = ?, modified_ns = ?, "
                "modified_by = ? WHERE store = ? AND label = ?",
                [new, revision, time.time_ns(), who, store, old],
            )
            tx.run("DELETE FROM labels WHERE store = ? AND name = ?", [store, old])
            tx.use_labels(store, [new], revision)
            return cur.rowcount

    def set_measurements(self, store: str, id: int, values: Mapping | None, *, version: int | None = None) -> None:
        """Cache the measurements of selection ``id`` (:func:`data_access.measure.measure`'s dict).

        Datetimes are kept as ISO strings (UTC, ``...Z``), NaN as None. Not a
        user edit: the version stays, the revision moves (other sessions get
        the values through :meth:`changes`). ``values=None`` clears them.

        Parameters
        ----------
        version : int, optional
            The version the values were measured on: if the selection has
            changed since, ConflictError and nothing is saved.
        """
        text = None if values is None else _measurements_json(values)
        store = _store(store)
        with self._write() as tx:
            tx.current(store, id, version)
            tx.run("UPDATE selections SET measurements = ?, revision = ? WHERE id = ?", [text, tx.next_revision(), id])


def _create_schema(conn: sqlite3.Connection) -> None:
    """The tables and indexes, in the transaction the caller holds (executescript would commit it)."""
    for statement in _SCHEMA.split(";\n"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


class _ReadOnly(Exception):
    """SQLite refused a write: the file system or file is read-only (internal)."""


class _CannotOpen(Exception):
    """SQLite could not open the file (internal: read-only opening tries again as immutable)."""


_COLUMN = {
    "start": "start_ns",
    "end": "end_ns",
    "low_hz": "low_hz",
    "high_hz": "high_hz",
    "channel": "channel",
    "label": "label",
    "notes": "notes",
}


class _Transaction:
    """What the writes share inside one transaction."""

    def __init__(self, db: Annotations, conn: sqlite3.Connection) -> None:
        self.db, self.conn = db, conn
        self._revision: int | None = None

    def run(self, sql: str, params: Iterable = ()) -> sqlite3.Cursor:
        return self.db._run(self.conn, sql, params)

    def run_many(self, sql: str, rows: Iterable) -> None:
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.Error as err:
            raise self.db._error(err) from None

    def next_revision(self) -> int:
        """The revision of this transaction (one per transaction, taken from the counter once)."""
        if self._revision is None:
            self._revision = self.run("UPDATE counter SET revision = revision + 1 RETURNING revision").fetchone()[0]
        return self._revision

    def grew(self, store: str, duration_ns: int) -> None:
        self.run(
            "INSERT INTO stores VALUES (?, ?) ON CONFLICT (store) DO UPDATE SET longest_ns = "
            "max(longest_ns, excluded.longest_ns)",
            [store, int(duration_ns)],
        )

    def use_labels(self, store: str, names: list[str], revision: int | None) -> None:
        names = [name for name in names if name]
        if names:
            revision = self.next_revision() if revision is None else revision
            self.run_many("INSERT OR IGNORE INTO labels VALUES (?, ?, ?)", [(store, name, revision) for name in names])

    def add_rows(self, store: str, table: pd.DataFrame, who: str, source: str) -> int:
        """Insert checked rows, leaving out those equal to a live selection; returns how many."""
        existing = self.run(
            "SELECT start_ns, end_ns, low_hz, high_hz, channel, label FROM selections "
            "WHERE store = ? AND deleted = 0 AND start_ns BETWEEN ? AND ?",
            [store, int(table["start"].min()), int(table["start"].max())],
        ).fetchall()
        keys = list(zip(*(table[f].tolist() for f in FIELDS[:6]), strict=True))
        if existing:
            there = set(existing)
            table = table[[key not in there for key in keys]]
        if not len(table):
            return 0
        revision = self.next_revision()
        now = time.time_ns()
        fixed = (who, source, now, now, who, revision)
        self.run_many(
            "INSERT INTO selections (store, start_ns, end_ns, low_hz, high_hz, channel, label, notes, author, "
            "source, created_ns, modified_ns, modified_by, version, revision) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
            ((store, *row, *fixed) for row in zip(*(table[f].tolist() for f in FIELDS), strict=True)),
        )
        self.grew(store, int((table["end"] - table["start"]).max()))
        self.use_labels(store, table["label"].unique().tolist(), revision)
        return len(table)

    def update_row(self, store: str, id: int, version: int, fields: Mapping, who: str) -> int:
        """Change a selection based on ``version``; returns its new version (``version`` if nothing changed)."""
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise AnnotationError(f"cannot update {', '.join(unknown)}: the fields are {', '.join(FIELDS)}")
        old = self.current(store, id, version)
        if old["deleted"]:
            raise AnnotationError(f"selection {id} is deleted; restore it before editing it")
        times = {f: _ns(fields[f], f) for f in ("start", "end") if f in fields}
        new = _checked_row({**{f: old[f] for f in FIELDS}, **fields, **times}, ns=True)
        changed = [f for f in FIELDS if new[f] != old[f]]
        if not changed:
            return version
        revision = self.next_revision()
        sets = ", ".join(f"{_COLUMN[f]} = ?" for f in changed)
        clear = ", measurements = NULL" if _MEASURED & set(changed) else ""
        self.run(
            f"UPDATE selections SET {sets}{clear}, version = version + 1, revision = ?, modified_ns = ?, "
            "modified_by = ? WHERE id = ?",
            [*(new[f] for f in changed), revision, time.time_ns(), who, id],
        )
        self.grew(store, new["end"] - new["start"])
        self.use_labels(store, [new["label"]], revision)
        return version + 1

    def delete_row(self, store: str, id: int, version: int, who: str) -> bool:
        """Tombstone a selection based on ``version``; returns whether it was live."""
        old = self.current(store, id, version)
        if old["deleted"]:
            return False
        self.run(
            "UPDATE selections SET deleted = 1, version = version + 1, revision = ?, modified_ns = ?, "
            "modified_by = ? WHERE id = ?",
            [self.next_revision(), time.time_ns(), who, id],
        )
        return True

    def current(self, store: str, id: int, version: int | None) -> dict:
        """Selection ``id`` as it is; ConflictError if ``version`` is given and is not its version."""
        rows = self.run(f"{_SELECT} WHERE id = ? AND store = ?", [_id(id), store]).fetchall()
        if not rows:
            raise AnnotationError(f"no selection {id} in {store!r}")
        row = dict(zip(COLUMNS, rows[0], strict=True))  # (times as int ns)
        if version is not None and row["version"] != _count(version, "version"):
            what = "deleted" if row["deleted"] else "changed"
            raise ConflictError(
                f"selection {id} was {what} by {row['modified_by']} at {_clock(row['modified'])}; "
                "your edit was not saved"
            )
        return row


# ---------------------------------------------------------------------- values


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "unknown"


def _store(store: object) -> str:
    return _text(store, "store", NAME_MAX, empty=False)


def _text(value: object, field: str, cap: int, *, empty: bool = True) -> str:
    """``value`` as printable text on one line of at most ``cap`` characters."""
    if not isinstance(value, str):
        raise AnnotationError(f"{field} must be text, not {type(value).__name__}")
    if not empty and not value:
        raise AnnotationError(f"{field} must not be empty")
    if len(value) > cap:
        raise AnnotationError(f"{field} must be at most {cap} characters, not {len(value)}")
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        raise AnnotationError(f"{field} must be printable text on one line: it holds {bad!r}")
    return value


def _id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise AnnotationError(f"a selection id must be an integer, not {value!r}")
    return int(value)


def _count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise AnnotationError(f"{field}={value!r} must be a non-negative integer")
    return int(value)


def _ns(value: object, field: str) -> int:
    """A time as int64 nanoseconds since 1970, UTC."""
    if isinstance(value, bool) or isinstance(value, (int, float, np.integer, np.floating)):
        raise AnnotationError(f"{field}={value!r} must be a time (datetime64, ISO string or Timestamp), not a number")
    try:
        return int(to_datetime64(value).astype("int64"))
    except ParameterError as err:
        raise AnnotationError(f"{field}: {err}") from None


def _hz(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise AnnotationError(f"{field}={value!r} must be a number")
    value = float(value)
    if not math.isfinite(value):
        raise AnnotationError(f"{field}={value!r} must be a finite number")
    return value


def _checked_row(fields: dict, *, ns: bool = False) -> dict:
    """The fields of one selection, checked; times as int ns (``ns``: they are already)."""
    row = {
        "start": fields["start"] if ns else _ns(fields["start"], "start"),
        "end": fields["end"] if ns else _ns(fields["end"], "end"),
        "low_hz": _hz(fields["low_hz"], "low_hz"),
        "high_hz": _hz(fields["high_hz"], "high_hz"),
        "channel": _text(fields["channel"], "channel", NAME_MAX, empty=False),
        "label": _text(fields["label"], "label", LABEL_MAX),
        "notes": _text(fields["notes"], "notes", NOTES_MAX),
    }
    if row["end"] <= row["start"]:
        raise AnnotationError(f"end={_iso(row['end'])} must be after start={_iso(row['start'])}")
    if row["low_hz"] < 0:
        raise AnnotationError(f"low_hz={row['low_hz']!r} must be >= 0")
    if row["high_hz"] <= row["low_hz"]:
        raise AnnotationError(f"high_hz={row['high_hz']!r} must be above low_hz={row['low_hz']!r}")
    return row


def _checked_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows as a frame of plain columns (times int64 ns), every row checked; errors name row and field."""
    if not isinstance(rows, pd.DataFrame):
        raise AnnotationError(f"rows must be a DataFrame, not {type(rows).__name__}")
    missing = [c for c in ("start", "end", "low_hz", "high_hz") if c not in rows.columns]
    if missing:
        raise AnnotationError(f"rows lack the columns {', '.join(missing)}")
    n = len(rows)
    out = pd.DataFrame(index=range(n))
    for f in ("start", "end"):
        out[f] = _ns_column(rows[f], f)
    for f in ("low_hz", "high_hz"):
        try:
            values = pd.to_numeric(rows[f], errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            bad = next(i for i, v in enumerate(rows[f]) if not _is_number(v))
            raise AnnotationError(f"rows[{bad}]: {f}={rows[f].iloc[bad]!r} must be a number") from None
        out[f] = values
    for f, default, cap, empty in (("channel", "0", NAME_MAX, False), ("label", "", LABEL_MAX, True),
                                   ("notes", "", NOTES_MAX, True)):  # fmt: skip
        # (a missing cell, None or NaN, takes the default: a frame concatenated from partial tables has them)
        values = [default if _missing(v) else v for v in rows[f].tolist()] if f in rows.columns else [default] * n
        for i, v in enumerate(values):
            try:
                _text(v, f, cap, empty=empty)
            except AnnotationError as err:
                raise AnnotationError(f"rows[{i}]: {err}") from None
        out[f] = values
    checks = (
        (~np.isfinite(out["low_hz"].to_numpy()), lambda r: f"low_hz={float(r.low_hz)!r} must be a finite number"),
        (~np.isfinite(out["high_hz"].to_numpy()), lambda r: f"high_hz={float(r.high_hz)!r} must be a finite number"),
        ((out["end"] <= out["start"]).to_numpy(), lambda r: f"end={_iso(r.end)} must be after start={_iso(r.start)}"),
        ((out["low_hz"] < 0).to_numpy(), lambda r: f"low_hz={float(r.low_hz)!r} must be >= 0"),
        (
            (out["high_hz"] <= out["low_hz"]).to_numpy(),
            lambda r: f"high_hz={float(r.high_hz)!r} must be above low_hz={float(r.low_hz)!r}",
        ),
    )
    for bad, message in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise AnnotationError(f"rows[{i}]: {message(out.iloc[i])}")
    return out


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_number(value: object) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _ns_column(column: pd.Series, field: str) -> np.ndarray:
    """A column of times as int64 ns UTC (datetime64 columns at once, others value by value)."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        values = column
        if getattr(column.dt, "tz", None) is not None:
            values = column.dt.tz_convert("UTC").dt.tz_localize(None)
        values = values.astype("datetime64[ns]")
        if values.isna().any():
            i = int(np.argmax(values.isna().to_numpy()))
            raise AnnotationError(f"rows[{i}]: {field} is not a time")
        return values.to_numpy().astype("int64")
    out = np.empty(len(column), dtype=np.int64)
    for i, v in enumerate(column.tolist()):
        try:
            out[i] = _ns(v, field)
        except AnnotationError as err:
            raise AnnotationError(f"rows[{i}]: {err}") from None
    return out


def _iso(ns: int) -> str:
    return np.datetime_as_string(np.datetime64(int(ns), "ns")) + "Z"


def _clock(ns: int) -> str:
    """A time of day for a message: ``14:02:11 UTC``, with the date when it is not today."""
    t = dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)
    return f"{t:%H:%M:%S} UTC" if t.date() == dt.datetime.now(dt.UTC).date() else f"{t:%Y-%m-%d %H:%M:%S} UTC"


def _plain(value: object) -> object:
    """A measurement value as JSON: datetimes as ISO strings, NaN and NaT as None, numpy scalars as Python."""
    if isinstance(value, (np.datetime64, pd.Timestamp, dt.datetime)):
        if pd.isna(value):
            return None
        return _iso(int(to_datetime64(value).astype("int64")))
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    raise AnnotationError(f"cannot keep a measurement of type {type(value).__name__}")


def _measurements_json(values: Mapping) -> str:
    if not isinstance(values, Mapping):
        raise AnnotationError(f"measurements must be a dict, not {type(values).__name__}")
    text = json.dumps(_plain(values), allow_nan=False, ensure_ascii=False)
    if len(text.encode()) > _MEASUREMENTS_MAX:
        raise AnnotationError(f"measurements are {len(text.encode())} bytes of JSON; at most {_MEASUREMENTS_MAX}")
    return text


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows of ``_SELECT`` as the documented frame."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    data = dict(zip(COLUMNS, columns, strict=True))

    def times(values) -> np.ndarray:
        return np.asarray(values, dtype=np.int64).astype("datetime64[ns]")

    return pd.DataFrame(
        {
            "id": np.asarray(data["id"], dtype=np.int64),
            "start": times(data["start"]),
            "end": times(data["end"]),
            "low_hz": np.asarray(data["low_hz"], dtype=np.float64),
            "high_hz": np.asarray(data["high_hz"], dtype=np.float64),
            "channel": pd.Series(data["channel"], dtype=object),
            "label": pd.Series(data["label"], dtype=object),
            "notes": pd.Series(data["notes"], dtype=object),
            "author": pd.Series(data["author"], dtype=object),
            "created": times(data["created"]),
            "modified": times(data["modified"]),
            "modified_by": pd.Series(data["modified_by"], dtype=object),
            "version": np.asarray(data["version"], dtype=np.int64),
            "revision": np.asarray(data["revision"], dtype=np.int64),
            "deleted": np.asarray(data["deleted"], dtype=bool),
            "measurements": pd.Series(
                [None if m is None else json.loads(m) for m in data["measurements"]], dtype=object
            ),
            "source": pd.Series(data["source"], dtype=object),
        }  # fmt: skip
    )
