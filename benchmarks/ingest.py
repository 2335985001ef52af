"""Benchmark: a long recording to a stored power spectrogram, three ways.

Run from the repository root::

    python benchmarks/ingest.py --hours 1
    python benchmarks/ingest.py --hours 0.05 --methods ours --formats wav
    python benchmarks/ingest.py --keep /data/bench --json results.json

Methods, all with n_fft 4096 and hop 2048 on the same generated recording
(noise, tones, a warbling whistle and clicks; 64 kHz mono PCM_16, WAV and FLAC):

ours
    ``ingest(open_timeline(path, ...), "out.zarr", StftConfig(...))``, end to
    end: every frame, the whole multiscale pyramid, written to Zarr.
librosa
    ``soundfile.read`` of the whole file, ``np.abs(librosa.stft(y, center=False))**2``,
    then written to Zarr with xarray (uncompressed ~4 MiB chunks, like ours).
cluster1, cluster2
    ``ours`` with ``scheduler=`` a real ``dask.distributed.LocalCluster`` of one and
    of two single-threaded worker processes (started before the clock): the ratio
    says whether a cluster helps on this machine.
seed
    The approach Spectral Atlas replaces: 10 s windows, each read with soundfile
    and passed through ``dask.delayed(scipy.signal.spectrogram)``, one DataArray
    per window, ``xr.concat`` along time and ``.to_netcdf``. (It also drops the
    frames that straddle window edges, so it is not even the same spectrogram.)

Each measurement runs in a fresh child process (``--child METHOD``). The child
imports everything it needs first; the clock covers only the work, not the
interpreter or import time. Peak memory is ``ru_maxrss`` of the child, which
does include the imported libraries (shown separately as "import MB"). Linux
carries the parent's RSS high-water mark into a child started by vfork + exec,
so the parent stays small on purpose: it imports only the standard library
and even the recording is generated in a child.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

log = logging.getLogger("benchmarks.ingest")

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("ours", "librosa", "seed", "cluster1", "cluster2")
#: Ours again, on a real dask.distributed LocalCluster of this many single-threaded worker processes.
CLUSTERS = {"cluster1": 1, "cluster2": 2}
FORMATS = ("wav", "flac")
N_FFT, HOP = 4096, 2048
START_TIME = "2026-01-01T00:00:00"
SEED_WINDOW_SECONDS = 10
TARGET_SPEED = 1000.0  # x real time, ours on WAV, end to end
TARGET_RSS_MB = 300.0  # peak RSS of ours
TARGET_STORE_RATIO = 1.5  # ours' store (every level, both pyramids) over the audio as 16-bit PCM
PACKAGES = ("numpy", "scipy", "soundfile", "librosa", "xarray", "dask", "zarr", "h5netcdf")

# Modules each child imports before its clock starts. librosa loads its
# submodules lazily, so the one holding ``stft`` is named explicitly; the first
# ``dask.compute`` imports ``distributed`` when it is installed ("?": optional).
WARM_IMPORTS = {
    "generate": ["numpy", "scipy.signal", "soundfile"],
    "ours": ["data_access", "dask.threaded", "?distributed"],
    "librosa": ["numpy", "soundfile", "librosa", "librosa.core.spectrum", "xarray", "xarray.backends.zarr"],
    "seed": ["soundfile", "scipy.signal", "dask.threaded", "?distributed", "xarray", "xarray.backends.h5netcdf_"],
    "cluster1": ["data_access", "distributed"],
    "cluster2": ["data_access", "distributed"],
}


# --- the work each child times -------------------------------------------------------------------


def generate(paths: list[Path], *, seconds: float, sample_rate: int, block_seconds: float = 10.0) -> None:
    """Write the same synthetic recording to every path in ``paths``, block by block.

    Memory stays at a few blocks whatever the duration. Files that already hold
    a recording of the right length and rate are kept as they are.
    """
    import numpy as np
    import scipy.signal
    import soundfile as sf

    n_total = round(seconds * sample_rate)
    todo = []
    for path in paths:
        if path.exists():
            info = sf.info(str(path))
            if (info.frames, info.samplerate, info.channels, info.subtype) == (n_total, sample_rate, 1, "PCM_16"):
                log.info("reusing %s", path)
                continue
        todo.append(path)
    if not todo:
        return
    rng = np.random.default_rng(20260101)
    # A low-passed noise floor (state carried across blocks) under white noise.
    b, a = scipy.signal.butter(2, 500, fs=sample_rate)
    zi = np.zeros(max(len(a), len(b)) - 1)
    block = round(block_seconds * sample_rate)
    files = [sf.SoundFile(str(p), "w", samplerate=sample_rate, channels=1, subtype="PCM_16") for p in todo]
    try:
        for start in range(0, n_total, block):
            n = min(block, n_total - start)
            t = (start + np.arange(n)) / sample_rate
            rumble, zi = scipy.signal.lfilter(b, a, rng.standard_normal(n), zi=zi)
            y = 0.3 * rumble + 0.01 * rng.standard_normal(n)
            for freq, amp in ((120.0, 0.03), (2_500.0, 0.01), (18_000.0, 0.005)):  # ship and instrument tones
                y += amp * np.sin(2 * np.pi * freq * t)
            # A whistle warbling 8-16 kHz, sounding for 2 s in every 20 s.
            phase = 2 * np.pi * (12_000 * t - 4_000 * 30 / (2 * np.pi) * np.cos(2 * np.pi * t / 30))
            y += 0.05 * np.sin(phase) * (t % 20 < 2)
            clicks = rng.integers(0, n, size=rng.poisson(5 * n / sample_rate))
            y[clicks] += rng.choice([-0.5, 0.5], size=len(clicks))
            for f in files:
                f.write(np.clip(y, -1, 1 - 2**-15).astype(np.float32))
    finally:
        for f in files:
            f.close()


def run_ours(path: Path, out: Path, scheduler: str | None = None) -> None:
    """Spectral Atlas: timeline -> chunked STFT -> multiscale Zarr pyramid."""
    from data_access import StftConfig, ingest, open_timeline

    timeline = open_timeline(path, start_time=START_TIME)
    ingest(timeline, out, StftConfig(n_fft=N_FFT, hop_length=HOP), overwrite=True, progress=False, scheduler=scheduler)


def run_librosa(path: Path, out: Path) -> None:
    """Whole file in memory, ``librosa.stft``, one xarray write to Zarr."""
    import librosa
    import numpy as np
    import soundfile as sf
    import xarray as xr

    y, sr = sf.read(str(path), dtype="float32")
    power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=False)) ** 2
    centres = (np.arange(power.shape[1]) * HOP + N_FFT / 2) / sr
    coords = {"freq": librosa.fft_frequencies(sr=sr, n_fft=N_FFT), "time": _times(centres)}
    ds = xr.DataArray(power, dims=("freq", "time"), coords=coords).to_dataset(name="power")
    # Uncompressed chunks of about 4 MiB, the size ours aims at: the whole spectrum, ~500 frames.
    chunks = (power.shape[0], 2**20 // power.shape[0])
    ds.to_zarr(out, mode="w", encoding={"power": {"chunks": chunks, "compressors": None}})


def run_seed(path: Path, out: Path) -> None:
    """The seed approach: 10 s windows through ``dask.delayed(scipy.signal.spectrogram)``."""
    import dask
    import scipy.signal
    import soundfile as sf
    import xarray as xr

    info = sf.info(str(path))
    sr, window = info.samplerate, SEED_WINDOW_SECONDS * info.samplerate
    starts = range(0, info.frames, window)
    read = dask.delayed(lambda a: sf.read(str(path), start=a, stop=min(a + window, info.frames), dtype="float32")[0])
    spectrogram = dask.delayed(scipy.signal.spectrogram)
    tasks = [spectrogram(read(a), fs=sr, nperseg=N_FFT, noverlap=N_FFT - HOP) for a in starts]
    pieces = []
    for a, (freq, t, sxx) in zip(starts, dask.compute(*tasks), strict=True):
        pieces.append(xr.DataArray(sxx, dims=("freq", "time"), coords={"freq": freq, "time": _times(a / sr + t)}))
    xr.concat(pieces, dim="time").to_dataset(name="power").to_netcdf(out, engine="h5netcdf")


def _times(seconds):
    """Seconds after :data:`START_TIME` as ``datetime64[ns]``."""
    import numpy as np

    return np.datetime64(START_TIME, "ns") + np.round(seconds * 1e9).astype("timedelta64[ns]")


def child(method: str, inputs: list[Path], out: Path, *, seconds: float, sample_rate: int) -> dict[str, float]:
    """Run one method in this (fresh) process; return its wall time and peak RSS."""
    for name in WARM_IMPORTS[method]:
        try:
            importlib.import_module(name.lstrip("?"))
        except ModuleNotFoundError:
            if not name.startswith("?"):
                raise
    cluster = None
    if method in CLUSTERS:  # started before the clock: a service that is up before the work comes
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=CLUSTERS[method], threads_per_worker=1, dashboard_address=None)
    import_mb = _peak_rss_mb()
    begin = time.perf_counter()
    if method == "generate":
        generate(inputs, seconds=seconds, sample_rate=sample_rate)
    elif cluster is not None:
        run_ours(inputs[0], out, scheduler=cluster.scheduler_address)
    else:
        {"ours": run_ours, "librosa": run_librosa, "seed": run_seed}[method](inputs[0], out)
    wall = time.perf_counter() - begin
    if cluster is not None:
        cluster.close()
    return {"wall_s": wall, "peak_rss_mb": _peak_rss_mb(), "import_rss_mb": import_mb}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# --- the parent: launch children, print the figures ----------------------------------------------


def launch(method: str, inputs: list[Path], out: Path, args: argparse.Namespace) -> dict[str, object]:
    """Run ``method`` in a child process; a dict with the figures, or with ``error``."""
    cmd = [sys.executable, __file__, "--child", method, "--output", str(out), "--hours", str(args.hours)]
    cmd += ["--sample-rate", str(args.sample_rate), "--inputs", *map(str, inputs)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout:g} s"}
    if proc.returncode != 0:
        if proc.returncode == -9:
            return {"error": "killed (SIGKILL: out of memory?)"}
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        return {"error": f"exit {proc.returncode}: {lines[-1] if lines else 'no message'}"}
    return json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])


def measure(method: str, fmt: str, path: Path, workdir: Path, args: argparse.Namespace, seconds: float) -> dict:
    """Best wall time and highest peak RSS over ``args.repeat`` runs of one method on one file."""
    out = workdir / f"{method}_{fmt}{'.nc' if method == 'seed' else '.zarr'}"
    runs = []
    for i in range(args.repeat):
        log.info("running %s on %s (%d/%d)", method, path.name, i + 1, args.repeat)
        run = launch(method, [path], out, args)
        if "error" not in run:
            run["store_mb"] = _size_mb(out)
        _remove(out)
        if "error" in run:
            log.warning("%s on %s failed: %s", method, path.name, run["error"])
            return {"method": method, "format": fmt, **run}
        log.info("%s on %s: %.2f s, peak RSS %.0f MB", method, path.name, run["wall_s"], run["peak_rss_mb"])
        runs.append(run)
    wall = min(r["wall_s"] for r in runs)
    return {
        "method": method,
        "format": fmt,
        "wall_s": wall,
        "x_real_time": seconds / wall,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "import_rss_mb": max(r["import_rss_mb"] for r in runs),
        "store_mb": runs[-1]["store_mb"],
    }


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def machine_facts() -> dict[str, object]:
    """CPU, memory, load and library versions, without importing the libraries."""
    facts: dict[str, object] = {"nproc": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0))}
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            facts["cpu"] = line.split(":", 1)[1].strip()
            break
    facts["mem_total_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    facts["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    facts["python"] = platform.python_version()
    for name in PACKAGES:
        try:
            facts[name] = version(name)
        except PackageNotFoundError:
            facts[name] = "not installed"
    return facts


def report(rows: list[dict], facts: dict, seconds: float, sample_rate: int) -> list[dict]:
    """Print the machine, the table, the ratios and the targets; return the target checks."""
    print(
        f"\nmachine: {facts.get('cpu', '?')}; nproc {facts['nproc']} (usable {facts['usable_cpus']}); "
        f"{facts['mem_total_gib']} GiB; load {facts['load_avg']}"
    )
    print("versions: " + ", ".join(f"{k} {facts[k]}" for k in ("python", *PACKAGES)))
    print(f"recording: {seconds / 3600:g} h ({seconds:g} s) at {sample_rate} Hz mono PCM_16; n_fft {N_FFT}, hop {HOP}")
    print("wall time covers the work only (not interpreter start-up or imports); peak RSS includes imports\n")
    header = f"{'method':<8} {'format':<6} {'wall s':>9} {'x real time':>12} {'peak RSS MB':>12} {'import MB':>10}"
    header += f" {'store MB':>9} {'x PCM':>6}"
    pcm_mb = seconds * sample_rate * 2 / 2**20
    print(header + "\n" + "-" * len(header))
    for r in rows:
        if "error" in r:
            print(f"{r['method']:<8} {r['format']:<6} FAILED: {r['error']}")
        else:
            print(
                f"{r['method']:<8} {r['format']:<6} {r['wall_s']:>9.2f} {r['x_real_time']:>12.1f} "
                f"{r['peak_rss_mb']:>12.0f} {r['import_rss_mb']:>10.0f} {r['store_mb']:>9.0f}"
                f" {r['store_mb'] / pcm_mb:>6.2f}"
            )
    ok = {(r["method"], r["format"]): r for r in rows if "error" not in r}
    print("\nratios above 1 favour ours: speed = their wall time / ours, memory = their peak RSS / ours")
    for fmt in FORMATS:
        ours = ok.get(("ours", fmt))
        for other in ("librosa", "seed"):
            base = ok.get((other, fmt))
            if ours and base:
                print(
                    f"{fmt:<4} speed ours/{other:<7} {base['wall_s'] / ours['wall_s']:5.1f}x   "
                    f"peak RSS {other + '/ours':<12} {base['peak_rss_mb'] / ours['peak_rss_mb']:5.1f}x"
                )
    for fmt in FORMATS:
        one, two = ok.get(("cluster1", fmt)), ok.get(("cluster2", fmt))
        if one and two:
            print(
                f"{fmt:<4} LocalCluster 2 workers / 1 worker: {one['wall_s'] / two['wall_s']:5.2f}x the speed "
                f"(peak RSS is the client's; each worker is a process of its own)"
            )
    checks = []  # (target, measured, passed); the speed target is for WAV, the memory one for any format
    wav = ok.get(("ours", "wav"))
    if wav:
        speed = wav["x_real_time"]
        checks.append((f"ours wav >= {TARGET_SPEED:g}x real time", f"{speed:.0f}x", speed >= TARGET_SPEED))
    for fmt in FORMATS:
        if ours := ok.get(("ours", fmt)):
            rss = ours["peak_rss_mb"]
            checks.append((f"ours {fmt} peak RSS <= {TARGET_RSS_MB:g} MB", f"{rss:.0f} MB", rss <= TARGET_RSS_MB))
    if wav:
        ratio = wav["store_mb"] / pcm_mb
        target = f"ours store <= {TARGET_STORE_RATIO:g}x PCM_16"
        checks.append((target, f"{ratio:.2f}x", ratio <= TARGET_STORE_RATIO))
    print()
    for name, value, passed in checks:
        print(f"target {name:<32} {value:>9}  {'PASS' if passed else 'MISS'}")
    return [{"target": n, "value": v, "pass": p} for n, v, p in checks]


def main(argv: list[str] | None = None) -> None:
    """Parse the command line; run one child, or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0, help="length of the recording (default 1)")
    parser.add_argument("--sample-rate", type=int, default=64_000, help="Hz (default 64000)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest is kept")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per child")
    parser.add_argument("--tmp", type=Path, help="parent of the temporary working directory")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the recordings in this directory")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--child", choices=("generate", *METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--inputs", nargs="+", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    seconds = round(args.hours * 3600 * args.sample_rate) / args.sample_rate
    if args.child:
        result = child(args.child, args.inputs, args.output, seconds=seconds, sample_rate=args.sample_rate)
        print(json.dumps(result))
        return
    facts = machine_facts()
    with tempfile.TemporaryDirectory(prefix="atlas-bench-", dir=args.tmp) as tmp:
        workdir = Path(tmp)
        datadir = args.keep or workdir
        datadir.mkdir(parents=True, exist_ok=True)
        stem = f"recording_{args.hours:g}h_{args.sample_rate}Hz"
        paths = {fmt: datadir / f"{stem}.{fmt}" for fmt in args.formats}
        log.info("preparing %g s of audio in %s", seconds, datadir)
        made = launch("generate", list(paths.values()), workdir / "unused", args)
        if "error" in made:
            sys.exit(f"could not generate the recording: {made['error']}")
        log.info("recording ready in %.1f s (peak RSS %.0f MB)", made["wall_s"], made["peak_rss_mb"])
        rows = [measure(m, fmt, paths[fmt], workdir, args, seconds) for m in args.methods for fmt in args.formats]
    checks = report(rows, facts, seconds, args.sample_rate)
    if args.json:
        record = {
            "machine": facts,
            "seconds": seconds,
            "sample_rate": args.sample_rate,
            "n_fft": N_FFT,
            "hop_length": HOP,
            "results": rows,
            "targets": checks,
        }
        args.json.write_text(json.dumps(record, indent=2))
        log.info("wrote %s", args.json)


if __name__ == "__main__":
    main()
