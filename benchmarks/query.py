"""Benchmark: viewport and band-energy reads on 1 h, 24 h and 30 d stores.

Run from the repository root::

    python benchmarks/query.py                      # 1h, 24h and 30d; 200 viewports each
    python benchmarks/query.py --stores 1h --n 20   # a quick look
    python benchmarks/query.py --cache-mb 256 --json query.json --keep --tmp /data
    python benchmarks/query.py --profile            # also cProfile cold whole and 1 s views

The stores are real Spectral Atlas stores (64 kHz, n_fft 4096, hop 2048, the
levels of ``level_lengths``, the attributes ``ingest`` writes, consolidated
metadata), built without audio: ``StoreWriter.create`` makes every array and
the full time coordinate (about 650 MB of int64 for 30 days), a few distinct
synthetic chunks are written per array and level (a 1/f-ish floor, tonal
lines, whistle contours, clicks; ``frame_count`` holds ``2**k``), and every
other chunk file is a hard link to one of them. The last, partial chunk of
each array is written for real. The 30-day store, 1.8 TB were every chunk a
copy, takes about 1.6 GB on disk (1.2 GB of distinct chunks, 0.4 GB of time
coordinates; 1 h: 0.4 GB). The levels are not each other's averages, which
does not matter to the timings. (ext4 allows 65 000 links per file, so 8
distinct chunks per level serve recordings up to about 100 days.)

Timed, per store: ``--n`` random viewports at 1200 x 600 (a quarter each of the
whole recording, ~1 hour, ~1 minute and ~1 second windows, each span jittered
by up to 2x; 30% with a random frequency range; 20% ``agg="max"``), each once
cold (``CACHE.clear()`` first) and again warm; and ``--n`` cold ``band_energy``
calls (five bands, points=1200) over windows of the same mix. datashader's
numba kernels are compiled by ``query.warm_up()`` before any timing.

"Cold" means cold for our chunk cache only: the chunk files come from the OS
page cache, which the build has just filled, and hard links share their pages.
``--drop-caches`` (root only, system-wide, slow) drops the page cache before
every cold call. The naive path (``xr.open_datatree(..., chunks={})["0"].power``,
time made seconds, through ``datashader.Canvas.raster``) runs on the 1 h store
in a child process (``--child naive``) so its memory is measured on its own.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import math
import os
import platform
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_access import query  # noqa: E402
from data_access.pyramid import level_lengths  # noqa: E402
from data_access.schema import (  # noqa: E402
    FORMAT1_PYRAMID_FACTOR,
    PYRAMID_FACTOR,
    column_times,
    power_attrs,
    root_attrs,
)
from data_access.stft import StftConfig  # noqa: E402
from data_access.store import (  # noqa: E402
    LEVEL0_BITS,
    MAX_BITS,
    MEAN_BITS,
    TIME_CHUNK,
    VECTOR_CHUNK,
    LevelSpec,
    StoreWriter,
    keep_bits,
)

log = logging.getLogger("benchmarks.query")

SAMPLE_RATE, N_FFT, HOP = 64_000, 4096, 2048
START_TIME = "2026-01-01T00:00:00"
STORES = {"1h": 3600, "24h": 86_400, "30d": 30 * 86_400}
WIDTH, HEIGHT, POINTS = 1200, 600, 1200
ZOOMS = {"whole": None, "hour": 3600.0, "minute": 60.0, "second": 1.0}
BANDS = {"fin": (15, 30), "shipping": (50, 500), "whistles": (12_500, 25_000), "clicks": (25_000, 32_000)}
BANDS["broadband"] = (10, 32_000)
DISTINCT = 8  # real chunks per array and level; the rest are hard links to them
TARGET_P50_MS, TARGET_P95_MS, TARGET_RATIO, TARGET_BAND_P95_MS = 100.0, 250.0, 1.3, 100.0
RSS_SLACK_MB = 256  # working arrays of one read (a few chunks, their copies, the raster) above the cache
PACKAGES = ("numpy", "zarr", "xarray", "dask", "datashader", "numba")
_SECOND = np.timedelta64(1_000_000_000, "ns")


# --- building a store ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticTimeline:
    """What ``schema.root_attrs`` reads of a Timeline."""

    start_time: np.datetime64
    n_samples: int
    sample_rate: float = SAMPLE_RATE
    channel: int = 0
    sources: tuple = ()

    def describe(self) -> list[dict]:
        return [{"path": "synthetic (benchmarks/query.py)", "start_time": str(self.start_time), "offset": 0}]

    def gaps(self) -> list[tuple[int, int]]:
        return []

    def summary(self) -> dict[str, object]:
        """The deployment summary ``spectral-atlas info`` shows: one gapless synthetic recording."""
        seconds = self.n_samples / self.sample_rate
        return {
            "n_files": 1,
            "start_time": str(self.start_time),
            "duration_seconds": seconds,
            "coverage_seconds": seconds,
            "coverage_fraction": 1.0,
            "sample_rate": self.sample_rate,
            "start_time_from": {"synthetic": 1},
        }


def synthetic_power(
    rng, freq: np.ndarray, level: int, start: int, stop: int, factor: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and max power of columns ``start..stop-1`` of ``level``, shape (n_freq, n), float32."""
    n, m = stop - start, factor**level  # columns, frames per column
    step = m * HOP / SAMPLE_RATE
    t = (start + np.arange(n)) * step
    floor = (5.0 / (1 + freq / 40.0) ** 1.3 + 2e-3).astype(np.float32)[:, None]
    weather = np.exp(0.3 * np.sin(2 * np.pi * t / 7200 + rng.uniform(0, 6))).astype(np.float32)
    if level == 0:  # one frame: |X|^2 of noise is exponential; a mean of m frames is narrower
        spread = rng.standard_exponential((len(freq), n), dtype=np.float32)
    else:
        s = np.float32(1 / math.sqrt(min(m, 256)))
        spread = np.exp(s * rng.standard_normal((len(freq), n), dtype=np.float32) - s * s / 2)
    power = floor * weather * spread
    peak = power * np.float32(1 + math.log(m))
    df = SAMPLE_RATE / N_FFT
    for f, p in ((120, 300.0), (240, 100.0), (360, 40.0), (2500, 80.0), (18_000, 20.0)):  # ship, instrument
        b = round(f / df) + rng.integers(-1, 2)
        on = rng.random(n) < 0.6
        power[b - 1 : b + 2, on] += np.float32(p) * np.array([[0.2], [1.0], [0.2]], np.float32)
        peak[b - 1 : b + 2, on] += np.float32(2 * p)
    # Whistles: a contour warbling 8-16 kHz, sounding 10% of the time, diluted in the mean.
    bins = np.round((12_000 + 4_000 * np.sin(2 * np.pi * t / 30)) / df).astype(int)
    cols = np.arange(n)
    power[bins, cols] += np.float32(50 * min(1.0, 0.1 * m))
    peak[bins, cols] += np.float32(50)
    # Clicks, 5 a second, broadband above 2 kHz: a frame's worth in the mean, all of it in the max.
    clicks = np.minimum(rng.poisson(5 * step, n), m)
    hit = clicks > 0
    power[int(2000 / df) :, hit] += np.float32(30) * (clicks[hit] / m).astype(np.float32)
    peak[int(2000 / df) :, hit] += np.float32(30)
    return power, peak


def _chunk_path(array, directory: Path, coords: tuple[int, ...]) -> Path:
    return directory / array.metadata.encode_chunk_key(coords)


def fill_by_links(array, directory: Path, written: list[int]) -> int:
    """Hard-link every unwritten chunk (along the last axis) to a written full chunk."""
    grid = array.cdata_shape
    full = [c for c in written if c != grid[-1] - 1] or written
    count = 0
    for c in sorted(set(range(grid[-1])) - set(written)):
        for lead in np.ndindex(*grid[:-1]):
            os.link(
                _chunk_path(array, directory, (*lead, full[c % len(full)])), _chunk_path(array, directory, (*lead, c))
            )
            count += 1
    return count


def build_store(path: Path, seconds: int, *, seed: int, compressed: bool = True) -> dict[str, object]:
    """Write a store of ``seconds`` at 64 kHz to ``path`` (format 2, or format 1's layout); return its figures.

    Format 1's layout: uncompressed float32 and a pyramid that halves.
    """
    begin = time.perf_counter()
    config = StftConfig(n_fft=N_FFT, hop_length=HOP)
    timeline = SyntheticTimeline(np.datetime64(START_TIME, "ns"), seconds * SAMPLE_RATE)
    n_frames = config.n_frames(timeline.n_samples)
    factor = PYRAMID_FACTOR if compressed else FORMAT1_PYRAMID_FACTOR
    lengths = level_lengths(n_frames, factor)
    freq = config.frequencies(SAMPLE_RATE)
    attrs = root_attrs(timeline, config, n_frames=n_frames, n_levels=len(lengths), factor=factor)
    if not compressed:
        del attrs["format_version"]
    writer = StoreWriter.create(
        path,
        freq=freq,
        levels=[LevelSpec(k, n, factor) for k, n in enumerate(lengths)],
        time_fn=lambda k, a, b: column_times(timeline.start_time, SAMPLE_RATE, config, k, a, b, factor=factor),
        attrs=attrs,
        power_attrs=power_attrs(raw_counts=False),
        compressed=compressed,
    )
    create_s = time.perf_counter() - begin
    rng = np.random.default_rng(seed)
    links = written = 0
    for k, n in enumerate(lengths):
        n_chunks = -(-n // TIME_CHUNK)
        real = sorted({*range(min(DISTINCT, n_chunks)), n_chunks - 1})
        for c in real:
            a, z = c * TIME_CHUNK, min((c + 1) * TIME_CHUNK, n)
            mean, peak = synthetic_power(rng, freq, k, a, z, factor)
            if compressed:  # kept to format 2's bits, as ingest keeps them
                mean, peak = keep_bits(mean, MEAN_BITS if k else LEVEL0_BITS), keep_bits(peak, MAX_BITS)
            writer.write_power(k, a, mean, peak if k else None)
        for name in ("power", "power_max") if k else ("power",):
            links += fill_by_links(writer.root[f"{k}/{name}"], path / str(k) / name, real)
            written += len(real)
        n_vec = -(-n // VECTOR_CHUNK)
        counts = np.full(min(n, VECTOR_CHUNK), factor**k, np.int32)
        writer.write_counts(k, 0, counts)
        last = np.full(n - (n_vec - 1) * VECTOR_CHUNK, factor**k, np.int32)
        last[-1] = n_frames - (n - 1) * factor**k  # the last column holds the frames that are left
        writer.write_counts(k, (n_vec - 1) * VECTOR_CHUNK, last)
        links += fill_by_links(writer.root[f"{k}/frame_count"], path / str(k) / "frame_count", [0, n_vec - 1])
    writer.close()
    build_s = time.perf_counter() - begin
    disk, apparent = disk_usage(path)
    return {
        "seconds": seconds,
        "n_frames": n_frames,
        "n_levels": len(lengths),
        "build_s": build_s,
        "create_s": create_s,
        "disk_mb": disk / 2**20,
        "apparent_gb": apparent / 2**30,
        "chunks_written": written,
        "hard_links": links,
    }


def disk_usage(path: Path) -> tuple[int, int]:
    """Bytes on disk (each inode once, as ``du``) and bytes as if every link were a copy."""
    seen, disk, apparent = set(), 0, 0
    for root, _, files in os.walk(path):
        for f in files:
            st = os.stat(os.path.join(root, f))
            apparent += st.st_size
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                disk += st.st_blocks * 512
    return disk, apparent


# --- timing reads --------------------------------------------------------------------------------


def windows(rng, atlas, n: int) -> list[dict]:
    """``n`` random (zoom, time, freq, agg) choices: the zooms in turn, random positions."""
    t0, t1 = atlas.time_range
    duration = (t1 - t0) / _SECOND
    out = []
    for i in range(n):
        zoom = list(ZOOMS)[i % len(ZOOMS)]
        window = None
        if ZOOMS[zoom] is not None:
            span = min(ZOOMS[zoom] * 2 ** rng.uniform(-1, 1), duration)
            a = rng.uniform(0, duration - span)
            window = (t0 + np.timedelta64(round(a * 1e9), "ns"), t0 + np.timedelta64(round((a + span) * 1e9), "ns"))
        freq = None
        if rng.random() < 0.3:
            lo = rng.uniform(0, 30_000)
            freq = (lo, min(lo + math.exp(rng.uniform(math.log(200), math.log(32_000))), 32_000.0))
        out.append({"zoom": zoom, "time": window, "freq": freq, "agg": "max" if rng.random() < 0.2 else "mean"})
    return out


def _drop_page_cache() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def time_store(atlas, rng, n: int, *, drop_caches: bool) -> dict[str, list]:
    """Cold and warm views, and cold band energy; milliseconds and chunks read per call."""
    clock, cache = time.perf_counter, query.CACHE
    rows: dict[str, list] = {"view_cold": [], "view_warm": [], "band_cold": []}
    for w in windows(rng, atlas, n):
        kw = {"time": w["time"], "freq": w["freq"], "width": WIDTH, "height": HEIGHT, "agg": w["agg"]}
        cache.clear()
        if drop_caches:
            _drop_page_cache()
        begin = clock()
        img = atlas.view(**kw)
        rows["view_cold"].append((w["zoom"], (clock() - begin) * 1e3, cache.misses, img.attrs["level"]))
        begin = clock()
        atlas.view(**kw)
        rows["view_warm"].append((w["zoom"], (clock() - begin) * 1e3, cache.misses - rows["view_cold"][-1][2], 0))
    for w in windows(rng, atlas, n):
        cache.clear()
        if drop_caches:
            _drop_page_cache()
        begin = clock()
        out = atlas.band_energy(BANDS, time=w["time"], points=POINTS)
        rows["band_cold"].append((w["zoom"], (clock() - begin) * 1e3, cache.misses, out.attrs["level"]))
    return rows


def fill_cache(atlas, cache_bytes: int) -> dict[str, float]:
    """Views of consecutive minutes, never clearing the cache, until twice its size has been read."""
    t0, t1 = atlas.time_range
    span = min(60.0, (t1 - t0) / _SECOND)
    last = (t1 - t0) / _SECOND - span
    largest, k, chunk_bytes = 0, 0, (N_FFT // 2 + 1) * TIME_CHUNK * 4
    while query.CACHE.misses * chunk_bytes < 2 * cache_bytes and k < 5000:
        a = (k * span) % last if last > 0 else 0.0
        start = t0 + np.timedelta64(round(a * 1e9), "ns")
        atlas.view(time=(start, start + np.timedelta64(round(span * 1e9), "ns")), width=WIDTH, height=HEIGHT)
        largest, k = max(largest, query.CACHE.nbytes), k + 1
    return {"views": k, "chunks_read": query.CACHE.misses, "largest_cache_mb": largest / 2**20}


def stats(values) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {"n": len(v), "p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95)), "max": float(v.max())}


def profile(atlas, rng, n: int = 20) -> None:
    """Print where the time goes in cold whole-recording views and cold 1 s views."""
    t0, t1 = atlas.time_range
    for zoom in ("whole", "second"):
        prof = cProfile.Profile()
        for _ in range(n):
            window = None
            if zoom == "second":
                a = rng.uniform(0, (t1 - t0) / _SECOND - 1)
                window = (t0 + np.timedelta64(round(a * 1e9), "ns"), t0 + np.timedelta64(round((a + 1) * 1e9), "ns"))
            query.CACHE.clear()
            prof.runcall(atlas.view, time=window, width=WIDTH, height=HEIGHT)
        print(f"\nprofile: {n} cold {zoom} views of {atlas.path.name}, top 15 by own time")
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(15)


# --- the naive path, in a child process ----------------------------------------------------------


def naive_child(path: Path, repeat: int) -> dict[str, object]:
    """Open level 0 lazily with xarray and rasterize the whole recording with datashader."""
    import datashader as ds
    import xarray as xr

    query.warm_up()
    import_mb = _hwm_mb()
    runs = []
    for _ in range(repeat):
        begin = time.perf_counter()
        power = xr.open_datatree(path, engine="zarr", chunks={})["0"].power
        opened = time.perf_counter()
        # datashader's raster cannot place datetime64 coordinates: seconds from the start, as query does.
        power = power.assign_coords(time=(power.time - power.time[0]) / np.timedelta64(1, "s"))
        img = ds.Canvas(plot_width=WIDTH, plot_height=HEIGHT).raster(power)
        np.asarray(img)  # compute, if datashader left it lazy
        runs.append({"open_s": opened - begin, "raster_s": time.perf_counter() - opened})
        if runs[-1]["raster_s"] > 20:
            break
    return {"runs": runs, "peak_rss_mb": _hwm_mb(), "import_rss_mb": import_mb}


def _hwm_mb() -> float:
    # VmHWM, not ru_maxrss: a child started by vfork + exec inherits the parent's ru_maxrss.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_naive(path: Path, repeat: int, timeout: float) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--child", "naive", "--path", str(path), "--repeat", str(repeat)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        return {"error": f"exit {proc.returncode}: {lines[-1] if lines else 'no message'}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- report --------------------------------------------------------------------------------------


def report(builds: dict, results: dict, naive: dict | None, mem: dict, args) -> list[dict]:
    """Print the tables, ratios and targets; return the target checks."""
    facts = {name: version(name) for name in PACKAGES}
    print(f"\nmachine: nproc {os.cpu_count()}, load {[round(x, 2) for x in os.getloadavg()]}, python ", end="")
    print(platform.python_version() + "; " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    print(f"{SAMPLE_RATE} Hz, n_fft {N_FFT}, hop {HOP}; views {WIDTH}x{HEIGHT}; band energy {len(BANDS)} bands")
    print("datashader kernels compiled by query.warm_up() before timing (JIT time not counted)")
    cold = "page cache dropped before each cold call" if args.drop_caches else "files from the OS page cache"
    print(f"cold = our chunk cache cleared before the call ({cold}); warm = the same call again\n")
    head = f"{'store':<5} {'frames':>10} {'levels':>6} {'build s':>8} {'disk MB':>8} {'as if GB':>9} {'links':>8}"
    print(head + "\n" + "-" * len(head))
    for name, b in builds.items():
        print(
            f"{name:<5} {b['n_frames']:>10} {b['n_levels']:>6} {b['build_s']:>8.1f} {b['disk_mb']:>8.0f} "
            f"{b['apparent_gb']:>9.1f} {b['hard_links']:>8}"
        )
    print("(build s includes creating the time coordinates; 'as if GB' is the size were every chunk a copy)\n")
    head = f"{'store':<5} {'kind':<10} {'zoom':<7} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'chunks':>7}"
    print(head + "\n" + "-" * len(head))
    summary: dict = {}
    for name, rows in results.items():
        for kind, calls in rows.items():
            for zoom in ("all", *ZOOMS):
                sel = [r for r in calls if zoom in ("all", r[0])]
                if not sel:
                    continue
                s = stats([r[1] for r in sel])
                summary[(name, kind, zoom)] = s
                chunks = float(np.median([r[2] for r in sel]))
                print(
                    f"{name:<5} {kind:<10} {zoom:<7} {s['n']:>4} {s['p50']:>8.1f} {s['p95']:>8.1f} "
                    f"{s['max']:>8.1f} {chunks:>7.0f}"
                )
    print("(chunks: median chunks read from disk per call)\n")
    checks = []
    for name in results:
        s, b = summary[(name, "view_cold", "all")], summary[(name, "band_cold", "all")]
        checks.append(
            (f"{name} view cold p50 <= {TARGET_P50_MS:g} ms", f"{s['p50']:.1f} ms", s["p50"] <= TARGET_P50_MS)
        )
        checks.append(
            (f"{name} view cold p95 <= {TARGET_P95_MS:g} ms", f"{s['p95']:.1f} ms", s["p95"] <= TARGET_P95_MS)
        )
        checks.append(
            (f"{name} band cold p95 <= {TARGET_BAND_P95_MS:g} ms", f"{b['p95']:.1f} ms", b["p95"] <= TARGET_BAND_P95_MS)
        )
    if "1h" in results and "30d" in results:
        for q in ("p50", "p95"):
            r = summary[("30d", "view_cold", "all")][q] / summary[("1h", "view_cold", "all")][q]
            print(f"30d / 1h view cold {q}: {r:.2f}")
            checks.append((f"30d/1h view cold {q} <= {TARGET_RATIO:g}", f"{r:.2f}", r <= TARGET_RATIO))
    growth = mem["peak_mb"] - mem["before_reads_mb"]
    print(
        f"peak RSS {mem['peak_mb']:.0f} MB (getrusage); RSS before the first read {mem['before_reads_mb']:.0f} MB; "
        f"cache {args.cache_mb:g} MB, largest it held {mem['largest_cache_mb']:.0f} MB after reading "
        f"{mem['chunks_read']} chunks in {mem['views']} uncleared 1-minute views of {mem['store']}"
    )
    bound = args.cache_mb + RSS_SLACK_MB
    checks.append((f"RSS growth <= cache + {RSS_SLACK_MB} MB", f"{growth:.0f} MB", growth <= bound))
    if naive and "error" in naive:
        print(f"naive (xarray + dask + datashader on level 0 of 1h): FAILED: {naive['error']}")
    elif naive:
        runs, ours = naive["runs"], summary[("1h", "view_cold", "whole")]["p50"]
        best = min(r["raster_s"] for r in runs)
        print(
            f"naive whole 1h view: open {min(r['open_s'] for r in runs):.2f} s + raster {best:.2f} s "
            f"(best of {len(runs)}: {', '.join(format(r['raster_s'], '.2f') for r in runs)}); peak RSS "
            f"{naive['peak_rss_mb']:.0f} MB (after imports {naive['import_rss_mb']:.0f} MB), child process"
        )
        print(f"speed-up, whole 1h view: naive raster {best * 1e3:.0f} ms / ours cold p50 {ours:.1f} ms", end="")
        print(f" = {best * 1e3 / ours:.0f}x")
    print()
    for target, value, ok in checks:
        print(f"target {target:<34} {value:>10}  {'PASS' if ok else 'MISS'}")
    return [{"target": t, "value": v, "pass": ok} for t, v, ok in checks]


def compare_format1(workdir: Path, names: list[str], results: dict, args) -> list[dict]:
    """Time the same viewports on each store laid out as format 1; print format 2 over format 1 (cold p50, p95)."""
    checks = []
    print(f"\nformat 2 (compressed) against format 1 (uncompressed), the same {args.n} viewports, cold:")
    for name in names:
        path = workdir / f"{name}-format1.zarr"
        build = build_store(path, STORES[name], seed=args.seed, compressed=False)
        os.sync()
        old = time_store(query.open_atlas(path), np.random.default_rng(args.seed), args.n, drop_caches=args.drop_caches)
        query.CACHE.clear()
        shutil.rmtree(path, ignore_errors=True)
        for q in ("p50", "p95"):
            two = stats([r[1] for r in results[name]["view_cold"]])[q]
            one = stats([r[1] for r in old["view_cold"]])[q]
            ratio = two / one
            print(f"{name:<5} view cold {q}: format 2 {two:.1f} ms, format 1 {one:.1f} ms: {ratio:.2f}x")
            checks.append({"target": f"{name} format2/format1 view cold {q} <= 1.2", "value": f"{ratio:.2f}",
                           "pass": ratio <= 1.2})  # fmt: skip
        print(f"{name:<5} on disk: format 1 {build['disk_mb']:.0f} MB (distinct chunks; the rest hard links)")
    for c in checks:
        print(f"target {c['target']:<34} {c['value']:>10}  {'PASS' if c['pass'] else 'MISS'}")
    return checks


def main(argv: list[str] | None = None) -> None:
    """Parse the command line; run the naive child, or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="1h,24h,30d", help=f"comma-separated, of {', '.join(STORES)}")
    parser.add_argument("--n", type=int, default=200, help="viewports (and band-energy calls) per store")
    parser.add_argument("--cache-mb", type=float, default=512.0, help="chunk cache size (default 512)")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--tmp", type=Path, help="parent of the working directory (default the system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the stores (their directory is logged)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--drop-caches", action="store_true", help="drop the OS page cache before cold calls (root)")
    parser.add_argument("--profile", action="store_true", help="cProfile cold views of the largest store")
    parser.add_argument("--naive-repeat", type=int, default=3, help="runs of the naive path (one if slow)")
    parser.add_argument("--child", choices=("naive",), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument(
        "--format1", action="store_true", help="also time each store laid out as format 1 (uncompressed): the ratio"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if args.child:
        print(json.dumps(naive_child(args.path, args.repeat)))
        return
    names = [s.strip() for s in args.stores.split(",") if s.strip()]
    if bad := [s for s in names if s not in STORES]:
        parser.error(f"unknown store(s) {bad}; choose from {list(STORES)}")
    if args.drop_caches and os.geteuid() != 0:
        parser.error("--drop-caches needs root (it writes /proc/sys/vm/drop_caches)")
    query.set_cache_size(args.cache_mb)
    workdir = Path(tempfile.mkdtemp(prefix="atlas-query-bench-", dir=args.tmp))
    try:
        builds = {}
        for name in names:
            log.info("building the %s store in %s", name, workdir)
            builds[name] = build_store(workdir / f"{name}.zarr", STORES[name], seed=args.seed)
            log.info("%s: %.1f s, %.0f MB on disk", name, builds[name]["build_s"], builds[name]["disk_mb"])
        os.sync()  # so write-back does not run during the timings
        query.warm_up()
        mem = {"before_reads_mb": _rss_mb()}
        results, rng = {}, np.random.default_rng(args.seed)
        for name in names:
            begin = time.perf_counter()
            atlas = query.open_atlas(workdir / f"{name}.zarr")
            log.info(
                "%s: open_atlas %.1f ms; timing %d views and band-energy calls",
                name,
                1e3 * (time.perf_counter() - begin),
                args.n,
            )
            # The same seed for every store (and for format 1 with --format1): viewports drawn alike.
            results[name] = time_store(atlas, np.random.default_rng(args.seed), args.n, drop_caches=args.drop_caches)
        query.CACHE.clear()
        largest = max(names, key=STORES.get)
        mem.update(fill_cache(query.open_atlas(workdir / f"{largest}.zarr"), query.CACHE.max_bytes), store=largest)
        query.CACHE.clear()
        mem["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        naive = None
        if "1h" in names:
            log.info("naive path on the 1h store, in a child process")
            naive = run_naive(workdir / "1h.zarr", args.naive_repeat, timeout=1800)
        checks = report(builds, results, naive, mem, args)
        if args.format1:
            checks += compare_format1(workdir, names, results, args)
        if args.profile:
            profile(query.open_atlas(workdir / f"{largest}.zarr"), rng)
        if args.json:
            record = {
                "builds": builds,
                "calls": {s: {k: [list(r) for r in v] for k, v in rows.items()} for s, rows in results.items()},
                "memory": mem,
                "naive": naive,
                "targets": checks,
                "cache_mb": args.cache_mb,
            }
            args.json.write_text(json.dumps(record, indent=2, default=str))
            log.info("wrote %s", args.json)
    finally:
        if args.keep:
            log.info("kept the stores in %s", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
