"""Resuming an interrupted ingest, appending to a store, and counting bad samples in the files."""

from __future__ import annotations

import contextlib
import logging
import os
import pty
import re
import select
import signal
import subprocess
import termios
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import xarray as xr
from conftest import SR, chirp, noise, tone
from test_store import digest

from data_access import (
    AtlasError,
    FormatError,
    ParameterError,
    SourceNotFoundError,
    StftConfig,
    ingest,
    open_store,
    open_timeline,
)
from data_access.ingest import CLIP_LEVEL
from data_access.store import store_info

# Small frames and chunks: many blocks and several pyramid levels from a few seconds of audio.
CONFIG = StftConfig(n_fft=128, hop_length=64)
CHUNK = 128


def assert_same_store(path: Path, expected: Path) -> None:
    """Every level's arrays and coordinates equal, and every root attribute but the creation time."""
    got, want = open_store(path), open_store(expected)
    assert sorted(got.children) == sorted(want.children)
    for level in want.children:
        xr.testing.assert_identical(got[level].to_dataset().load(), want[level].to_dataset().load())
    assert {k: v for k, v in got.attrs.items() if k != "created"} == {
        k: v for k, v in want.attrs.items() if k != "created"
    }


def write(path: Path, samples: np.ndarray, sr: int = SR, subtype: str = "FLOAT") -> Path:
    sf.write(path, samples, sr, subtype=subtype)
    return path


def signal_at(seconds: float, seed: int) -> np.ndarray:
    """Noise and a tone, with a few NaN, infinite and clipped samples so their counts are appended too."""
    y = noise(seconds, amp=0.05, seed=seed) + tone(500.0 + 100 * seed, seconds, amp=0.3)
    rng = np.random.default_rng(seed)
    y[rng.choice(len(y), 3, replace=False)] = np.nan
    y[rng.choice(len(y), 2, replace=False)] = [1.0, -1.5]
    y[len(y) - 100] = np.inf  # near the end: in the frames an append recomputes
    return y


# ---------------------------------------------------------------- append


def stamped(seconds: float) -> str:
    """A file name holding its start time, 12:00 + ``seconds``, to the microsecond (OOI style)."""
    return f"h-2026-03-01T12:{int(seconds) // 60:02d}:{seconds % 60:09.6f}.wav"


@pytest.mark.parametrize(
    ("old", "new", "levels"),
    [
        # (start, length) of each file in seconds after 12:00; pyramid levels before and after
        pytest.param([(0, 40)], [(45, 10)], (2, 2), id="gap-between-old-and-new"),
        pytest.param([(0, 40)], [(40, 12)], (2, 2), id="contiguous"),
        pytest.param([(0, 40)], [(39.5, 10)], (2, 2), id="new-file-overlaps-the-old-end"),
        pytest.param([(0, 15)], [(15, 60)], (1, 3), id="adds-pyramid-levels"),
        pytest.param([(0, 20), (35, 20)], [(25, 5), (60, 5)], (2, 2), id="fills-a-gap-in-the-middle"),
    ],
)
def test_append_equals_ingesting_everything_at_once(tmp_path, old, new, levels, caplog):
    files = [write(tmp_path / stamped(t0), signal_at(n, seed=i)) for i, (t0, n) in enumerate(old + new)]
    old_files, new_files = files[: len(old)], files[len(old) :]
    store = ingest(open_timeline(old_files), tmp_path / "s.zarr", CONFIG, time_chunk=CHUNK)
    assert len(open_store(store).children) == levels[0]
    first_chunk = os.stat(store / "0" / "power" / "c" / "0" / "0").st_ino
    with caplog.at_level(logging.INFO, logger="data_access.ingest"):
        ingest(open_timeline(new_files), store, append=True)
    assert os.stat(store / "0" / "power" / "c" / "0" / "0").st_ino == first_chunk  # hard-linked, not rewritten
    everything = ingest(open_timeline(files), tmp_path / "all.zarr", CONFIG, time_chunk=CHUNK)
    assert_same_store(store, everything)
    assert len(open_store(store).children) == levels[1]
    assert not list(tmp_path.glob(".*partial*"))
    # The frames that end before the first changed sample were copied (whole chunks), not computed.
    kept, to_compute = map(int, re.search(r"(\d+) frames kept, (\d+) blocks to compute", caplog.text).groups())
    changed = round(min(new[0][0], max(t0 + n for t0, n in old)) * SR)
    n_frames = open_store(store).attrs["n_frames"]
    assert kept == ((changed - CONFIG.n_fft) // CONFIG.hop_length + 1) // CHUNK * CHUNK > 0
    assert to_compute == -(-(n_frames - kept) // CHUNK)


def test_append_twice_and_to_netcdf(tmp_path):
    files = [write(tmp_path / stamped(t), signal_at(10, seed=t)) for t in (0, 12, 30)]
    for fmt, name in [("zarr", "s.zarr"), ("netcdf", "s.nc")]:
        store = ingest(open_timeline(files[0]), tmp_path / name, CONFIG, format=fmt, time_chunk=CHUNK)
        ingest(open_timeline(files[1]), store, append=True)
        ingest(open_timeline(files[2]), store, append=True)
        assert store.is_dir() == (fmt == "zarr")
        everything = ingest(open_timeline(files), tmp_path / f"all-{name}", CONFIG, format=fmt, time_chunk=CHUNK)
        assert_same_store(store, everything)


@pytest.fixture
def appendable(tmp_path):
    """A store of one 20 s file, and its digest."""
    old = write(tmp_path / "20260301_120000.wav", noise(20.0))
    store = ingest(open_timeline(old), tmp_path / "s.zarr", CONFIG, time_chunk=CHUNK)
    return store, old, digest(store)


def later(tmp_path, sr=SR):
    return open_timeline(write(tmp_path / "20260301_120030.wav", noise(5.0, sr=sr), sr=sr))


TO = r"cannot append to '.*s\.zarr': "


@pytest.mark.parametrize(
    ("make", "options", "match"),
    [
        (later, {"config": StftConfig(n_fft=256)}, TO + r"n_fft 128 in the store, 256 asked"),
        (
            later,
            {"config": StftConfig(n_fft=128, hop_length=64, window="hamming")},
            TO + r"window hann in the store, hamming asked",
        ),
        (lambda d: later(d, sr=16_000), {}, TO + r"sample_rate 8000 Hz in the store, 16000 Hz in the new files"),
        (
            lambda d: open_timeline(write(d / "20260301_115950.wav", noise(5.0))),
            {},
            TO + r"'20260301_115950.wav' starts at 2026-03-01T11:59:50.000000000, before the store's start "
            r"2026-03-01T12:00:00.000000000; ingest all the files into a new store instead",
        ),
        (lambda d: open_timeline(d / "20260301_120000.wav"), {}, TO + r"'20260301_120000.wav' is already in the store"),
        (
            lambda d: open_timeline(write(d / "20260301_120030.wav", np.stack([noise(5.0)] * 2, axis=1)), channel=1),
            {},
            TO + r"channel 0 in the store, 1 asked",
        ),
        (later, {"format": "netcdf"}, TO + r"format zarr in the store, netcdf asked"),
        (later, {"overwrite": True}, r"append and overwrite exclude each other"),
        (later, {"time_chunk": 3}, r"time_chunk=3 must be a multiple of 4 frames"),
    ],
)
def test_append_refuses_what_does_not_fit_and_keeps_the_store(appendable, tmp_path, make, options, match):
    store, _, before = appendable
    with pytest.raises(ParameterError, match=match):
        ingest(make(tmp_path), store, append=True, **options)
    assert digest(store) == before
    assert not list(tmp_path.glob(".*partial*"))


def test_append_needs_the_stores_sources(appendable, tmp_path):
    store, old, before = appendable
    new = later(tmp_path)
    old.rename(tmp_path / "moved.wav")
    with pytest.raises(SourceNotFoundError, match=r"cannot append to '.*s.zarr': one of its sources cannot be opened"):
        ingest(new, store, append=True)
    write(old, noise(19.0))  # back, but shorter
    with pytest.raises(
        FormatError, match=r"its source '20260301_120000.wav' has changed since it was ingested \(n_samples 160000 "
    ):
        ingest(new, store, append=True)
    with pytest.raises(SourceNotFoundError, match=r"no store at '.*none.zarr' to append to"):
        ingest(new, tmp_path / "none.zarr", append=True)
    assert digest(store) == before


def test_failed_append_leaves_the_store_as_it_was(appendable, tmp_path):
    store, _, before = appendable
    path = tmp_path / "20260301_120030.flac"
    sf.write(path, noise(30.0), SR)
    new = open_timeline(path)
    path.write_bytes(path.read_bytes()[:3000])  # damaged after it was opened: the append fails part way
    with pytest.raises(FormatError, match=r"cannot read samples .* of '20260301_120030.flac'"):
        ingest(new, store, append=True)
    assert digest(store) == before
    assert not list(tmp_path.glob(".*partial*"))
    assert open_store(store).attrs["n_samples"] == 20 * SR


def test_cli_append(cli, appendable, tmp_path):
    store, old, _ = appendable
    new = write(tmp_path / "20260301_120030.wav", noise(5.0, seed=3))
    done = subprocess.run([*cli, "ingest", str(new), "--append", str(store)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    everything = ingest(open_timeline([old, new]), tmp_path / "all.zarr", CONFIG, time_chunk=CHUNK)
    assert_same_store(store, everything)
    before = digest(store)
    refused = subprocess.run(
        [*cli, "ingest", str(new), "--append", str(store), "--n-fft", "512"], capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"spectral-atlas: error: cannot append to {str(store)!r}: n_fft 128 in the store, 512 asked"
    ]
    assert digest(store) == before


# ---------------------------------------------------------------- resume


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    """30 s, 235 blocks of 16 frames, and its store made in one go."""
    d = tmp_path_factory.mktemp("long")
    wav = write(d / "20260301_120000.wav", noise(30.0, amp=0.05) + chirp(100, 3900, 30.0))
    reference = ingest(open_timeline(wav), d / "reference.zarr", CONFIG)
    return wav, reference


#: Blocks an interrupted ingest has written, at least, when it stops to wait for its terminal: the
#: first whole batch (the ingest computes a block per CPU at a time) that brings it to this many.
PAUSE_AFTER = 10

# tqdm's own settings (its documented TQDM_* variables): no progress line when the bar is made
# (any delay > 0), then one at the first update that brings PAUSE_AFTER blocks of 16 frames, and
# no line forced by tqdm's monitor thread, however long that takes.
TQDM_SETTINGS = {
    "TQDM_DELAY": "1e-9",
    "TQDM_MININTERVAL": "0",
    "TQDM_MINITERS": str(PAUSE_AFTER * 16),
    "TQDM_MAXINTERVAL": "inf",
}


@contextlib.contextmanager
def ctrl_c_not_ignored():
    """Start children with SIGINT's default action, as an interactive shell starts a command.

    A non-interactive shell starts its background jobs (``make test &``) with SIGINT ignored;
    children inherit that, Python then keeps ignoring it, and an ingest would finish (exit 0).
    """
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a caught signal is reset to default by exec
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def read_terminal(master: int, timeout: float = 60) -> str:
    """What was written to a pseudo-terminal until every process holding it closed it, with \\n line ends."""
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while select.select([master], [], [], max(deadline - time.monotonic(), 0))[0]:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: no one holds the terminal any more
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def interrupt(cli, args: list[str], partial: Path, sig: signal.Signals) -> subprocess.CompletedProcess:
    """Run the console script on a terminal and send it ``sig`` while it waits there, mid-way.

    The terminal's output is stopped (what Ctrl-S does) before the ingest starts. With
    :data:`TQDM_SETTINGS`, the first line of its progress bar comes once :data:`PAUSE_AFTER`
    blocks are written, and writing it blocks: the ingest waits there, no later block started,
    until ``sig`` comes; only then does the output go on (Ctrl-Q). The signal is pending before
    the write can end, and interrupts it (or is handled as soon as Python runs again), so no other
    block starts. However fast or loaded the machine, the signal finds the ingest mid-way:
    nothing here depends on timing.
    ``args`` must not hold ``--no-progress``. The result's ``stderr`` is all the terminal showed.
    """
    master, terminal = pty.openpty()
    termios.tcsetwinsize(terminal, (24, 80))  # a width, or tqdm draws an empty bar
    termios.tcflow(terminal, termios.TCOOFF)  # Ctrl-S
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQDM_")} | TQDM_SETTINGS
    with ctrl_c_not_ignored():
        proc = subprocess.Popen([*cli, *args], stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (paused := blocks_written(partial) >= PAUSE_AFTER):
            if proc.poll() is not None or time.monotonic() > deadline:
                break  # broken, not slow: the assertion below shows what it wrote
            time.sleep(0.005)
        proc.send_signal(sig if paused else signal.SIGKILL)
        termios.tcflow(terminal, termios.TCOON)  # Ctrl-Q
        os.close(terminal)
        shown = read_terminal(master)
        returncode = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert paused, f"no pause after {PAUSE_AFTER} blocks (exit status {returncode}); the terminal showed {shown!r}"
    return subprocess.CompletedProcess(proc.args, returncode, None, shown)


def finished_blocks(partial: Path) -> set[int]:
    return {int(p.name) for p in (partial / ".ingest" / "blocks").iterdir() if p.name.isdigit()}


def blocks_written(partial: Path) -> int:
    """How many blocks an ingest running into ``partial`` has written so far (0 before it starts or after it ends)."""
    try:
        return len(finished_blocks(partial))
    except FileNotFoundError:
        return 0


def ingest_args(wav: Path, store: Path, *extra: str) -> list[str]:
    return ["ingest", str(wav), "-o", str(store), "--n-fft", "128", "--hop-length", "64", "--time-chunk", "16", *extra]


def test_resume_after_kill_equals_an_uninterrupted_ingest(cli, long_recording, tmp_path):
    wav, reference = long_recording
    store, partial = tmp_path / "s.zarr", tmp_path / ".s.zarr.partial"
    ingest(open_timeline(write(tmp_path / "20260301_110000.wav", noise(5.0))), store, CONFIG)
    before = digest(store)
    killed = interrupt(cli, ingest_args(wav, store, "--overwrite"), partial, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert digest(store) == before  # the old store is untouched
    done = finished_blocks(partial)
    n_blocks = -(-CONFIG.n_frames(30 * SR) // 16)
    assert PAUSE_AFTER <= len(done) < n_blocks
    # zarr writes a chunk by renaming a new file over it: an unchanged inode means it was not written again
    inodes = {b: os.stat(partial / "0" / "power" / "c" / "0" / str(b)).st_ino for b in done}
    resumed = subprocess.run(
        [*cli, *ingest_args(wav, store, "--overwrite", "--no-progress")], capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {len(done)} of {n_blocks} blocks already written" in resumed.stderr
    assert {b: os.stat(store / "0" / "power" / "c" / "0" / str(b)).st_ino for b in done} == inodes
    assert_same_store(store, reference)
    assert not partial.exists() and not (store / ".ingest").exists()


def test_ctrl_c_says_how_to_resume_and_another_job_starts_over(cli, long_recording, tmp_path):
    wav, reference = long_recording
    store, partial = tmp_path / "s.zarr", tmp_path / ".s.zarr.partial"
    stopped = interrupt(cli, ingest_args(wav, store), partial, signal.SIGINT)
    assert stopped.returncode == 130, stopped.stderr
    n_blocks = -(-CONFIG.n_frames(30 * SR) // 16)
    # Besides its progress bar, one line, with no traceback. The bar's line the ingest was writing
    # may show before the message, on the same line: "\ringest:   4%|█▏   | 160/3.75k [00:00<00:01, 1.2kframe/s]".
    said = [line for line in re.sub(r"\ringest: [^\]]*\] *", "", stopped.stderr).splitlines() if line]
    assert len(said) == 1, stopped.stderr
    kept = re.fullmatch(
        rf"spectral-atlas: interrupted; (\d+) of {n_blocks} blocks are kept in {re.escape(repr(str(partial)))}; "
        r"run the same command again to resume",
        said[0],
    )
    assert kept, stopped.stderr
    # Blocks of the last batch may finish after the message counted them; none starts after the pause.
    assert PAUSE_AFTER <= int(kept[1]) <= len(finished_blocks(partial)) < n_blocks
    assert not store.exists()
    # The source changed since: the partial belongs to another job.
    os.utime(wav)
    again = subprocess.run([*cli, *ingest_args(wav, store, "--no-progress")], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "is an unfinished ingest of another job (sources differ); starting over" in again.stderr
    assert "resuming" not in again.stderr
    assert_same_store(store, reference)


@pytest.fixture
def small_disk(tmp_path):
    """A real file system of 1 MiB (tmpfs), and how to make it bigger."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mount)]).returncode:
        pytest.skip("mounting a tmpfs needs root")
    yield mount, lambda size: subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_keeps_the_finished_blocks_and_a_rerun_resumes(small_disk, long_recording, caplog):
    disk, grow = small_disk
    wav, reference = long_recording
    timeline = open_timeline(wav)
    with pytest.raises(AtlasError, match=r"No space left on device.*; (\d+) of (\d+) blocks are kept in") as err:
        ingest(timeline, disk / "s.zarr", CONFIG, time_chunk=64)
    done, total = map(int, re.search(r"(\d+) of (\d+) blocks", str(err.value)).groups())
    assert 0 < done < total
    grow("64M")
    with caplog.at_level(logging.WARNING, logger="data_access.ingest"):
        ingest(timeline, disk / "s.zarr", CONFIG, time_chunk=64)
    # Blocks already running when the disk filled may finish after the message counted them (as after Ctrl-C).
    resumed = int(re.search(rf"resuming: (\d+) of {total} blocks already written", caplog.text)[1])
    assert done <= resumed < total
    assert_same_store(disk / "s.zarr", reference)


# ---------------------------------------------------------------- sample quality


@pytest.mark.parametrize("time_chunk", [16, 512])
def test_nan_inf_and_clipped_samples_are_counted_and_their_frames_are_gaps(tmp_path, caplog, time_chunk):
    a = noise(10.0, amp=0.1)
    bad = {1000: np.nan, 20_000: np.inf, 20_001: -np.inf, 50_000: np.nan}
    clipped_a = {30_000: 1.0, 30_500: -1.0, 40_000: 1.7, 40_001: -CLIP_LEVEL}
    for i, v in {**bad, **clipped_a}.items():
        a[i] = v
    a[60_000] = 0.999  # loud but not clipped
    b = noise(5.0, amp=0.1, seed=1)
    b[[100, 200]] = 1.0  # 16-bit: written as 32767, read as 1 - 2**-15
    b[300] = -1.0
    files = [write(tmp_path / "20260301_120000.wav", a), write(tmp_path / "20260301_120012.wav", b, subtype="PCM_16")]
    with caplog.at_level(logging.WARNING, logger="data_access.ingest"):
        store = ingest(open_timeline(files), tmp_path / "q.zarr", CONFIG, time_chunk=time_chunk)
    tree = open_store(store)
    assert tree.attrs["nonfinite_samples"] == 4  # the 2 s gap between the files is NaN too, but not counted
    assert tree.attrs["clipped_samples"] == 7
    assert (store_info(store)["nonfinite_samples"], store_info(store)["clipped_samples"]) == (4, 7)
    assert "4 samples inside the audio files are NaN or infinite; their frames are NaN, as gaps" in caplog.text
    assert "7 samples are clipped (|x| >= 0.999969 of full scale)" in caplog.text
    power = tree["0"].power.values
    starts = np.arange(power.shape[1]) * CONFIG.hop_length
    for i in bad:
        touching = (starts <= i) & (i < starts + CONFIG.n_fft)
        assert np.isnan(power[:, touching]).all()
    for level in tree.children:
        for name in ("power", "power_max"):
            if name in tree[level]:
                assert not np.isinf(tree[level][name].values).any()


def test_clean_recording_counts_nothing(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="data_access.ingest"):
        store = ingest(open_timeline(write(tmp_path / "20260301_120000.wav", noise(5.0))), tmp_path / "c.zarr", CONFIG)
    assert (open_store(store).attrs["nonfinite_samples"], open_store(store).attrs["clipped_samples"]) == (0, 0)
    assert caplog.text == ""
