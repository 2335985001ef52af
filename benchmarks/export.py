"""Benchmark: labelled clips for models, from a store, against the per-file librosa approach.

Run from the repository root::

    python benchmarks/export.py                       # 10 000 clips of a 24 h store; 1 h of WAV for librosa
    python benchmarks/export.py --clips 2000 --files 4 --json export.json --tmp /data --keep

Two parts, in one run:

1. **Throughput and memory at scale.** A 24 h, 64 kHz store (n_fft 4096, hop 2048)
   built by ``benchmarks/query.py``'s ``build_store`` (synthetic power, no audio;
   a few real chunks per level, the rest hard links), and a CSV of ``--clips``
   labelled 2-s selections at random times (sorted by time, as a database or a
   Raven table gives them). Timed: the whole command ``spectral-atlas export STORE
   --selections CSV --duration 2 --freq 10000:32000 -o clips.zarr`` in a child
   process (imports and the CSV's checks included), and its peak RSS (VmHWM: the
   child's own). Target: peak RSS <= 400 MB.

2. **Against librosa, fairly.** The per-file approach needs audio, so ``--files``
   WAV files of ``--file-minutes`` each (64 kHz, 16-bit, noise with tones and
   sweeps, contiguous) are written and ingested into a store. The same clips
   are then made both ways, into memory (neither side writes anything):

   - per file (librosa): for each file, ``soundfile.read`` it, ``np.abs(librosa.stft(y,
     n_fft=4096, hop_length=2048, window="hann", center=False))**2``, and slice out
     the frames and bins (10-32 kHz) of every clip in that file. This is the best
     case of that approach: each file is read and transformed once, however many
     clips it holds. The naive loop (for each clip, load its file, STFT, slice) is
     timed too, on a few clips, and printed beside it;
   - ours: ``Atlas.clips(selections, duration=2, freq=(10_000, 32_000))`` on the
     ingested store, the chunk cache emptied first (the OS page cache is warm for
     both: the files and the store were just written).

   The clips are as dense in time as part 1's (``--clips`` per 24 h) and none
   crosses a file boundary (which the per-file approach cannot cut), and the
   first clips of both sides are checked equal (within the store's 12-bit mantissa
   rounding, 2.5e-4 relative). Clips per second each way and the ratio (target >= 10x).

The load average is printed: other people's processes share these 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from query import build_store  # noqa: E402  (benchmarks/query.py: the 24 h store without audio)

from data_access import StftConfig, ingest, open_atlas, open_timeline  # noqa: E402
from data_access.query import CACHE  # noqa: E402

log = logging.getLogger("benchmarks.export")

SAMPLE_RATE, N_FFT, HOP = 64_000, 4096, 2048
DURATION, FREQ = 2.0, (10_000.0, 32_000.0)
LABELS = ("whistle", "click", "burst", "moan")
TARGET_RATIO, TARGET_RSS_MB = 10.0, 400.0
START = np.datetime64("2026-01-01T00:00:00", "ns")
RTOL = 2.5e-4
NAIVE_CLIPS = 12  # clips timed with the naive per-clip loop (each costs a whole file's STFT)

# The child's own peak memory: VmHWM (ru_maxrss would carry the parent's peak over exec).
_CHILD = """
import re, sys
from dashboard.cli import main
status = main(sys.argv[1:])
print(re.search(r"VmHWM:\\s*(\\d+) kB", open("/proc/self/status").read()).group(1))
sys.exit(status)
"""


def selections(rng, n: int, seconds: float, *, margin: float = 1.5) -> pd.DataFrame:
    """``n`` labelled spans of 0.3-1.5 s at random times in ``[margin, seconds - margin)``, sorted by start."""
    starts = np.sort(rng.uniform(margin, seconds - margin - 1.5, n))
    lengths = rng.uniform(0.3, 1.5, n)
    ns = lambda s: START + (np.asarray(s) * 1e9).astype("timedelta64[ns]")  # noqa: E731
    return pd.DataFrame(
        {
            "start": ns(starts),
            "end": ns(starts + lengths),
            "low_hz": FREQ[0],
            "high_hz": FREQ[1],
            "label": rng.choice(LABELS, n),
        }
    )


def write_csv(rows: pd.DataFrame, path: Path) -> None:
    table = rows.assign(
        start=[np.datetime_as_string(t, unit="ns") + "Z" for t in rows["start"].to_numpy()],
        end=[np.datetime_as_string(t, unit="ns") + "Z" for t in rows["end"].to_numpy()],
    )
    table.to_csv(path, index=False)


# --- part 1 ----------------------------------------------------------------------------------------
def at_scale(tmp: Path, n_clips: int, rng) -> dict:
    store = tmp / "24h.zarr"
    figures = build_store(store, 86_400, seed=20260101)
    log.info("24 h store built in %.1f s (%.0f MB on disk)", figures["build_s"], figures["disk_mb"])
    rows = selections(rng, n_clips, 86_400.0)
    csv = tmp / "selections.csv"
    write_csv(rows, csv)
    out = tmp / "clips.zarr"
    args = ["export", str(store), "--selections", str(csv), "--duration", str(DURATION)]
    args += ["--freq", f"{FREQ[0]:g}:{FREQ[1]:g}", "-o", str(out), "--no-progress"]
    begin = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - begin
    if done.returncode:
        raise SystemExit(f"export failed: {done.stderr}")
    line, peak = done.stdout.strip().splitlines()
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {
        "clips": n_clips,
        "command": "spectral-atlas " + " ".join(a if " " not in a else repr(a) for a in args),
        "said": line,
        "seconds": seconds,
        "clips_per_s": n_clips / seconds,
        "peak_rss_mb": int(peak) / 1024,
        "dataset_mb": size / 2**20,
    }


# --- part 2 ----------------------------------------------------------------------------------------
def write_recordings(folder: Path, n_files: int, minutes: float, rng) -> list[Path]:
    """Contiguous 16-bit WAV files named by their start (the timeline places them), each a whole number of hops."""
    folder.mkdir(parents=True, exist_ok=True)
    n = int(minutes * 60 * SAMPLE_RATE) // HOP * HOP
    t = np.arange(n) / SAMPLE_RATE
    paths = []
    for k in range(n_files):
        sweep = 0.05 * np.sin(2 * np.pi * (12_000 * t + 4_000 * np.sin(2 * np.pi * t / 7) * 7 / (2 * np.pi)))
        y = 0.02 * rng.standard_normal(n) + 0.03 * np.sin(2 * np.pi * (15_000 + 500 * k) * t) + sweep
        start = (START + np.timedelta64(k * n * 1_000_000_000 // SAMPLE_RATE, "ns")).astype("datetime64[s]")
        path = folder / f"rec_{str(start).replace('-', '').replace(':', '').replace('T', '_')}.wav"
        sf.write(path, y.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def per_file_librosa(paths: list[Path], rows: pd.DataFrame, file_frames: int, bins: slice, n: int) -> np.ndarray:
    """Load each file, STFT it, slice its clips: the frames and bins the store's clips hold."""
    import librosa

    out = np.empty((len(rows), bins.stop - bins.start, n), dtype=np.float32)
    j0 = rows["j0"].to_numpy()
    for k, path in enumerate(paths):
        mine = np.flatnonzero(j0 // file_frames == k)
        if not len(mine):
            continue
        y, _ = sf.read(path, dtype="float32")
        power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, window="hann", center=False)) ** 2
        for i in mine:
            a = j0[i] - k * file_frames
            out[i] = power[bins, a : a + n]
    return out


def per_clip_librosa(paths: list[Path], rows: pd.DataFrame, file_frames: int, bins: slice, n: int) -> np.ndarray:
    """The naive loop: for each clip, load the file holding it, STFT it, slice the clip."""
    import librosa

    out = np.empty((len(rows), bins.stop - bins.start, n), dtype=np.float32)
    for i, j0 in enumerate(rows["j0"].to_numpy()):
        y, _ = sf.read(paths[j0 // file_frames], dtype="float32")
        power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, window="hann", center=False)) ** 2
        a = j0 % file_frames
        out[i] = power[bins, a : a + n]
    return out


def against_librosa(tmp: Path, n_files: int, minutes: float, density: float, rng, repeat: int) -> dict:
    import librosa

    folder = tmp / "recordings"
    begin = time.perf_counter()
    paths = write_recordings(folder, n_files, minutes, rng)
    written = time.perf_counter() - begin
    begin = time.perf_counter()
    store = ingest(
        open_timeline(paths), tmp / "recordings.zarr", StftConfig(n_fft=N_FFT, hop_length=HOP), progress=False
    )
    ingested = time.perf_counter() - begin
    atlas = open_atlas(store)
    file_samples = sf.info(paths[0]).frames
    file_frames = file_samples // HOP  # (each file a whole number of hops: its frames start on the store's grid)
    seconds = n_files * file_samples / SAMPLE_RATE
    n_clips = max(int(round(density * seconds)), n_files)
    n = int(np.floor(DURATION * SAMPLE_RATE / HOP + 0.5))
    # Clips within one file, so that a file's own STFT holds every frame of them.
    rows = selections(rng, 3 * n_clips, seconds)
    centre = ((rows["start"] - START) + (rows["end"] - rows["start"]) / 2).dt.total_seconds().to_numpy()
    rows["j0"] = np.floor((centre * SAMPLE_RATE - N_FFT / 2) / HOP - (n - 1) / 2 + 0.5).astype(np.int64)
    last_ok = file_frames - 1 - (N_FFT // HOP - 1)  # the file's last frame whose samples are all its own
    inside = (rows["j0"] // file_frames == (rows["j0"] + n - 1) // file_frames) & (
        (rows["j0"] + n - 1) % file_frames <= last_ok
    )
    rows = rows[inside].iloc[:n_clips].reset_index(drop=True)
    freqs = np.arange(N_FFT // 2 + 1) * SAMPLE_RATE / N_FFT
    inband = np.flatnonzero((freqs >= FREQ[0]) & (freqs <= FREQ[1]))
    bins = slice(int(inband[0]), int(inband[-1]) + 1)

    # Alternated, each `repeat` times (the medians count): the load of this shared machine changes by the minute.
    ref_times, our_times = [], []
    for _ in range(repeat):
        ref_begin = time.perf_counter()
        theirs = per_file_librosa(paths, rows, file_frames, bins, n)
        ref_times.append(time.perf_counter() - ref_begin)
        CACHE.clear()
        ours_begin = time.perf_counter()
        ours = atlas.clips(rows.drop(columns="j0"), duration=DURATION, freq=FREQ)
        our_times.append(time.perf_counter() - ours_begin)
    ref_s, ours_s = float(np.median(ref_times)), float(np.median(our_times))
    naive_rows = rows.iloc[:NAIVE_CLIPS]
    naive_begin = time.perf_counter()
    naive = per_clip_librosa(paths, naive_rows, file_frames, bins, n)
    naive_s = (time.perf_counter() - naive_begin) / len(naive_rows)
    np.testing.assert_array_equal(naive, theirs[: len(naive_rows)])
    if ours.shape != theirs.shape:
        raise SystemExit(f"shapes differ: ours {ours.shape}, librosa's {theirs.shape}")
    top = float(theirs[:20].max())
    np.testing.assert_allclose(ours.values[:20], theirs[:20], rtol=RTOL, atol=1e-7 * top)
    return {
        "files": n_files,
        "file_minutes": file_samples / SAMPLE_RATE / 60,
        "write_wav_s": written,
        "ingest_s": ingested,
        "clips": len(rows),
        "librosa_s": ref_s,
        "ours_s": ours_s,
        "librosa_clips_per_s": len(rows) / ref_s,
        "ours_clips_per_s": len(rows) / ours_s,
        "ratio": ref_s / ours_s,
        "best_ratio": min(ref_times) / min(our_times),
        "naive_clips_timed": len(naive_rows),
        "naive_clips_per_s": 1 / naive_s,
        "naive_ratio": len(rows) / ours_s * naive_s,
        "librosa_runs_s": ref_times,
        "ours_runs_s": our_times,
        "checked_equal": "first 20 clips within 2.5e-4 relative",
        "librosa": librosa.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=10_000, help="clips from the 24 h store (default 10 000)")
    parser.add_argument("--files", type=int, default=12, help="WAV files for the librosa comparison (default 12)")
    parser.add_argument("--file-minutes", type=float, default=5.0, help="minutes per WAV file (default 5)")
    parser.add_argument("--repeat", type=int, default=5, help="alternated runs of each side of part 2 (median)")
    parser.add_argument("--part", choices=("1", "2", "both"), default="both", help="run only part 1 or part 2")
    parser.add_argument("--tmp", type=Path, help="where to build (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep what was built")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tmp = Path(tempfile.mkdtemp(prefix="export-bench-", dir=args.tmp))
    rng = np.random.default_rng(20)
    scale = fair = None
    try:
        load_before = os.getloadavg()
        if args.part != "2":
            scale = at_scale(tmp, args.clips, rng)
        if args.part != "1":
            fair = against_librosa(tmp, args.files, args.file_minutes, args.clips / 86_400, rng, args.repeat)
        load_after = os.getloadavg()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"\nmachine: {machine}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)")
    if scale:
        print(f"\n1. {scale['clips']} labelled 2-s clips, 10-32 kHz, from a 24 h 64 kHz store, to Zarr:")
        print(f"   {scale['command']}\n   -> {scale['said']}")
        print(
            f"   {scale['seconds']:.1f} s: {scale['clips_per_s']:.0f} clips/s (the whole command, imports included); "
            f"dataset {scale['dataset_mb']:.0f} MB"
        )
        verdict = "pass" if scale["peak_rss_mb"] <= TARGET_RSS_MB else "MISS"
        print(f"   peak RSS {scale['peak_rss_mb']:.0f} MB (target <= {TARGET_RSS_MB:.0f} MB: {verdict})")
    if fair:
        print(
            f"\n2. the same density of clips ({fair['clips']}) in {fair['files']} WAV files of "
            f"{fair['file_minutes']:.1f} min, into memory, median of {len(fair['ours_runs_s'])} alternated runs; "
            f"{fair['checked_equal']}:"
        )
        runs = ", ".join(f"{x:.2f}" for x in fair["librosa_runs_s"])
        print(
            f"   per-file librosa {fair['librosa']} (load, STFT, slice): {fair['librosa_s']:.2f} s "
            f"({runs}), {fair['librosa_clips_per_s']:.0f} clips/s"
        )
        runs = ", ".join(f"{x:.2f}" for x in fair["ours_runs_s"])
        print(
            f"   Atlas.clips on the ingested store: {fair['ours_s']:.2f} s ({runs}), "
            f"{fair['ours_clips_per_s']:.0f} clips/s"
        )
        print(
            f"   per clip, librosa (load the clip's file, STFT, slice; {fair['naive_clips_timed']} clips timed): "
            f"{fair['naive_clips_per_s']:.1f} clips/s, ours {fair['naive_ratio']:.0f}x that"
        )
        verdict = "pass" if fair["ratio"] >= TARGET_RATIO else "MISS"
        print(
            f"   ratio {fair['ratio']:.1f}x of the medians (target >= {TARGET_RATIO:g}x: {verdict}), "
            f"{fair['best_ratio']:.1f}x of the best runs; the store's ingest took {fair['ingest_s']:.1f} s, once"
        )
    if args.json:
        figures = {"at_scale": scale, "against_librosa": fair, "load": [load_before, load_after]}
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
