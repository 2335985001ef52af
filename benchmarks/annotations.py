"""Benchmark: the selection database at 100 000 selections over 30 days.

Run from the repository root::

    python benchmarks/annotations.py                 # 100 000 selections, 200 queries of each kind
    python benchmarks/annotations.py --n 20000 --queries 50 --tmp /data

Timed, on a fresh SQLite file (WAL, synchronous=FULL, as the app runs it):

- import: a Raven selection table of ``--n`` selections read whole and checked
  (``raven.read_table``), then added in one transaction (``add_many``); then the
  same file imported again (every row found already there, nothing added);
- a page of the selection list: 50 rows of one label (and of two labels) at a
  random offset, with the count of all such rows, as a paged table asks;
- the overlay: the selections in view in a random 1-minute window (and a
  1-hour one), through the index on ``(store, start_ns)``, against the same
  query with the index switched off (``NOT INDEXED``);
- the poll each session makes once a second: ``revision`` and, when nothing
  changed, nothing more; and ``changes`` after one edit.

``read_table`` needs of the store only its metadata (time range, channels,
Nyquist frequency, source files): a stand-in with a 30-day deployment's
metadata (720 one-hour files at 64 kHz) takes the place of a real store.
Selections last 0.2 s to 60 s, and one in a thousand 20 minutes (a ship),
which sets how far before a window the overlay query reads the index.

What a person sees of them in the browser (a pan's cost with 100 000 selections
against none, and ``n``/``p`` review of 200 selections, timed in headless Chromium
on a served 24 h store) is ``benchmarks/review.py``'s.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_access.annotations import open_annotations  # noqa: E402
from data_access.raven import read_table, write_table  # noqa: E402

STORE = "month.zarr"
START = np.datetime64("2026-01-01T00:00:00", "ns")
DAYS = 30
RATE = 64000.0
LABELS = ["whistle", "click", "fin_whale", "ship", "rain", "unknown", "humpback", "minke", "seal", "noise"]
WEIGHTS = [0.3, 0.25, 0.1, 0.05, 0.05, 0.1, 0.05, 0.04, 0.03, 0.03]
TARGETS = {"import": 10.0, "page": 300.0}  # s, ms


def stand_in() -> types.SimpleNamespace:
    """The metadata of a 30-day store of 720 one-hour files, as ``open_atlas`` gives it."""
    hour = np.timedelta64(3600, "s")
    sources = [
        {
            "path": f"/deploy/HYD01_{(START + k * hour).astype('datetime64[s]').item():%Y%m%d_%H%M%S}.flac",
            "start_time": str(START + k * hour),
            "sample_rate": RATE,
            "n_samples": int(3600 * RATE),
        }
        for k in range(24 * DAYS)
    ]
    return types.SimpleNamespace(
        name=STORE,
        time_range=(START, START + DAYS * 24 * hour),
        channels=[],
        freq_range=(0.0, RATE / 2),
        sources=sources,
    )


def selections(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    span = DAYS * 86400e9
    length = rng.uniform(0.2e9, 60e9, n)
    length[rng.random(n) < 0.001] = 1200e9
    start = rng.uniform(0, span - 1300e9, n).astype(np.int64)
    low = np.round(rng.uniform(10, 20000, n), 1)
    return pd.DataFrame(
        {
            "start": (START.astype(np.int64) + start).astype("datetime64[ns]"),
            "end": (START.astype(np.int64) + start + length.astype(np.int64)).astype("datetime64[ns]"),
            "low_hz": low,
            "high_hz": np.round(low + rng.uniform(50, 10000, n), 1),
            "channel": "0",
            "label": rng.choice(LABELS, n, p=WEIGHTS),
            "notes": "",
            "id": np.arange(n),
        }
    )


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        tic = time.perf_counter()
        fn()
        out.append(time.perf_counter() - tic)
    return out


def ms(values: list[float]) -> str:
    return f"p50 {1e3 * statistics.median(values):7.2f} ms, p95 {1e3 * np.percentile(values, 95):7.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="selections (default: 100 000)")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind (default: 200)")
    parser.add_argument("--tmp", help="folder for the database and table (default: the system's)")
    args = parser.parse_args()
    atlas = stand_in()
    folder = Path(tempfile.mkdtemp(prefix="annotations-bench-", dir=args.tmp))
    rng = np.random.default_rng(1)
    checks = []
    try:
        table = write_table(selections(args.n), folder / "table.txt", atlas, measurements=False)
        size = table.stat().st_size / 2**20
        with open_annotations(folder / "ANNOTATIONS.sqlite", author="bench") as db:
            tic = time.perf_counter()
            rows = read_table(table, atlas)
            read = time.perf_counter() - tic
            added = db.add_many(STORE, rows, source=table.name)
            total = time.perf_counter() - tic
            assert added == args.n, added
            tic = time.perf_counter()
            again = db.add_many(STORE, read_table(table, atlas), source=table.name)
            reimport = time.perf_counter() - tic
            assert again == 0, again

            def page(labels):
                count = db.count(STORE, labels=labels)
                offset = int(rng.integers(0, max(1, count - 50)))
                assert len(db.selections(STORE, labels=labels, limit=50, offset=offset)) == 50

            one = timed(lambda: page(["whistle"]), args.queries)
            two = timed(lambda: page(["fin_whale", "seal"]), args.queries)

            span = DAYS * 86400 * 10**9
            found = []

            def window(seconds: int, indexed: bool = True):
                t0 = START + np.timedelta64(int(rng.integers(0, span - seconds * 10**9)), "ns")
                t1 = t0 + np.timedelta64(seconds, "s")
                if indexed:
                    found.append(len(db.selections(STORE, start=t0, end=t1)))
                else:
                    db._read(
                        "SELECT * FROM selections NOT INDEXED WHERE store = ? AND start_ns < ? AND end_ns > ? "
                        "AND deleted = 0 ORDER BY start_ns",
                        [STORE, int(t1.astype(np.int64)), int(t0.astype(np.int64))],
                    )

            minute = timed(lambda: window(60), args.queries)
            in_minute = statistics.mean(found)
            found.clear()
            hour = timed(lambda: window(3600), args.queries)
            in_hour = statistics.mean(found)
            scan = timed(lambda: window(60, indexed=False), max(5, args.queries // 10))
            plan = db.query_plan(STORE, start=START, end=START + np.timedelta64(60, "s"))[0]
            longest = db._read("SELECT longest_ns FROM stores WHERE store = ?", [STORE])[0][0] / 1e9

            poll = timed(lambda: db.revision(STORE), args.queries)
            since = db.revision(STORE)
            nothing = timed(lambda: db.changes(STORE, since), args.queries)
            first = db.selections(STORE, limit=1).iloc[0]
            db.update(STORE, int(first["id"]), version=int(first["version"]), notes="edited")
            after = timed(lambda: db.changes(STORE, since), args.queries)
            edit = timed(
                lambda: db.update(STORE, int(first["id"]), version=int(db.get(STORE, int(first["id"]))["version"]),
                                  notes=f"edited {time.perf_counter()}"),
                max(5, args.queries // 10),
            )  # fmt: skip
        db_mb = sum(p.stat().st_size for p in folder.glob("ANNOTATIONS.sqlite*")) / 2**20
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"machine: nproc {os.cpu_count()}, load {[round(x, 2) for x in os.getloadavg()]}, python "
          f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, pandas {pd.__version__}")  # fmt: skip
    print(f"{args.n:,} selections over {DAYS} days in a Raven table of {size:.1f} MB; database {db_mb:.1f} MB; "
          f"longest selection {longest:.0f} s")  # fmt: skip
    print(f"WAL, synchronous=FULL; {args.queries} queries of each kind\n")
    rows = [
        (f"import {args.n:,} (read_table + add_many)", f"{total:.2f} s", f"<= {TARGETS['import']:g} s",
         total <= TARGETS["import"]),
        ("  of which read_table (parse + check)", f"{read:.2f} s", "", None),
        ("  of which add_many (one transaction)", f"{total - read:.2f} s", "", None),
        ("re-import of the same file (adds 0)", f"{reimport:.2f} s", "", None),
        ("page: 1 label, 50 rows + count", ms(one), f"p95 <= {TARGETS['page']:g} ms",
         1e3 * np.percentile(one, 95) <= TARGETS["page"]),
        ("page: 2 labels, 50 rows + count", ms(two), f"p95 <= {TARGETS['page']:g} ms",
         1e3 * np.percentile(two, 95) <= TARGETS["page"]),
        (f"overlay: 1-minute window ({in_minute:.1f} rows)", ms(minute), "(report)", None),
        (f"overlay: 1-hour window ({in_hour:.0f} rows)", ms(hour), "(report)", None),
        ("overlay: 1-minute window, NOT INDEXED", ms(scan), "(report)", None),
        ("poll: revision(store)", ms(poll), "(report)", None),
        ("poll: changes(store, since), none", ms(nothing), "(report)", None),
        ("poll: changes(store, since), one edit", ms(after), "(report)", None),
        ("one edit (update, one fsync'd commit)", ms(edit), "(report)", None),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    for name, value, target, ok in rows:
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        print(f"{name:<{width}}  {value:>34}  {target:<16} {verdict}")
        if ok is not None:
            checks.append(ok)
    print(f"\noverlay query plan: {plan}")
    speedup = statistics.median(scan) / statistics.median(minute)
    print(f"index speed-up, 1-minute window: {speedup:.0f}x")
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
