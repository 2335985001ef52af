"""Store formats 2 and 3: compressed power within 0.001 dB of the exact, format 1 still read, and ``upgrade``.

``tests/data/format1.zarr`` is a store of format 1 written by the code before
compression (see ``tests/data/README.md``), from ``format1_20260301_120000.wav`` beside it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import librosa
import numpy as np
import pytest
import soundfile as sf
from conftest import noise, tone
from test_cli import run
from test_store import digest

from data_access import (
    FormatError,
    ParameterError,
    SourceNotFoundError,
    StftConfig,
    ingest,
    open_atlas,
    open_store,
    open_timeline,
    store_info,
    upgrade,
)
from data_access.demo import make_demo
from data_access.pyramid import level_lengths
from data_access.schema import FORMAT_VERSION, PYRAMID_FACTOR
from data_access.store import LEVEL0_BITS, StoreReader, keep_bits

DATA = Path(__file__).parent / "data"
FORMAT1 = DATA / "format1.zarr"
WAV = DATA / "format1_20260301_120000.wav"
CONFIG = StftConfig(n_fft=64, hop_length=32)  # the fixture's
BOUND_DB = 0.001


def arrays(store: Path) -> dict[str, np.ndarray]:
    """Every decoded array of a store, by path."""
    tree = open_store(store)
    return {f"{node.path}/{name}": node[name].values for node in tree.subtree for name in node.variables}


def max_db_error(stored: np.ndarray, exact: np.ndarray, within_db: float = 120.0) -> float:
    """Largest |dB difference| over the bins within ``within_db`` of their frame's (column's) maximum."""
    shown = exact > np.nanmax(exact, axis=0, keepdims=True) * 10 ** (-within_db / 10)
    return float(np.max(np.abs(10 * np.log10(stored[shown] / exact[shown]))))


def frame_means(level0: np.ndarray, k: int) -> np.ndarray:
    """The mean of the frames behind each column of level ``k`` (NaN frames left out)."""
    n = level0.shape[1]
    step = PYRAMID_FACTOR**k
    cols = -(-n // step)
    padded = np.full((level0.shape[0], cols * step), np.nan)
    padded[:, :n] = level0
    with np.errstate(invalid="ignore"):
        return np.nanmean(padded.reshape(level0.shape[0], cols, step), axis=2)


@pytest.fixture
def format1(tmp_path):
    """A copy of the format-1 fixture, its sources found where they are (their paths are relative to the repo)."""
    store = shutil.copytree(FORMAT1, tmp_path / "format1.zarr")
    return store


# ------------------------------------------------------------------ format 1 still read


def test_a_format1_store_opens_views_and_computes_bands(format1):
    atlas = open_atlas(format1)
    reader = StoreReader(format1)
    assert reader.format_version == 1 and "format_version" not in reader.attrs
    level0 = reader.read(0, "power", (slice(None), slice(None)))
    exact = np.abs(librosa.stft(sf.read(WAV, dtype="float32")[0], n_fft=64, hop_length=32, center=False)) ** 2
    np.testing.assert_allclose(level0, exact, rtol=2e-5, atol=1e-10)  # format 1: plain float32
    view = atlas.view(width=400, height=33)
    assert view.shape == (33, 400) and np.isfinite(view.values).all()
    bands = atlas.band_energy({"tone": (900.0, 1100.0)}, points=100)
    assert np.isfinite(bands["tone"].values).all()
    info = store_info(format1)
    assert info["format_version"] == 1 and info["size"]["ratio_to_pcm16"] > 4


def test_appending_to_a_format1_store_writes_the_current_format(format1, tmp_path):
    later = tmp_path / "format1_20260301_120012.wav"  # right after the fixture's 12 s
    sf.write(later, 0.3 * tone(1000.0, 4.0, sr=8000), 8000, subtype="PCM_16")
    before = StoreReader(format1).read(0, "power", (slice(None), slice(0, 2048)))
    ingest(open_timeline([later]), format1, CONFIG, append=True, progress=False)
    after = StoreReader(format1)
    assert after.format_version == FORMAT_VERSION == 3 and after.has_waveform  # computed from its recordings
    # the kept columns are the old ones kept to format 2's bits (format 1's chunks cannot be linked into it)
    np.testing.assert_array_equal(after.read(0, "power", (slice(None), slice(0, 2048))), keep_bits(before, LEVEL0_BITS))


# ------------------------------------------------------------------ format 2: exact to 0.001 dB


def test_level0_is_within_a_thousandth_of_a_db_of_librosa_on_real_audio(tmp_path):
    """The demo deployment's FLAC (whistles, clicks, a ship, noise) against librosa's STFT of the same samples."""
    demo = make_demo(tmp_path / "demo", hours=0.02, progress=False)
    flac = sorted(demo.parent.glob("*.flac"))[0]
    y, sr = sf.read(flac, dtype="float32")
    config = StftConfig(n_fft=4096, hop_length=2048)
    store = ingest(open_timeline([flac]), tmp_path / "real.zarr", config, progress=False)
    stored = StoreReader(store).read(0, "power", (slice(None), slice(None)))
    exact = np.abs(librosa.stft(y.astype(np.float64), n_fft=4096, hop_length=2048, center=False)) ** 2
    error = max_db_error(stored, exact)
    print(f"\nformat 2 level 0 vs librosa.stft (real audio): max {error:.5f} dB")
    assert error <= BOUND_DB


def test_quiet_bins_140_db_down_keep_their_accuracy(write_audio, tmp_path):
    """A tone over noise 140 dB quieter: bins within 120 dB of a frame's peak are all within 0.001 dB."""
    sr = 8000
    y = (tone(1000.0, 30.0, sr=sr, amp=0.9) + noise(30.0, sr=sr, amp=0.9e-7, seed=3)).astype(np.float32)
    path = write_audio("q_20260301_120000.wav", y, subtype="FLOAT")
    config = StftConfig(n_fft=256, hop_length=128)
    store = ingest(open_timeline([path]), tmp_path / "q.zarr", config, progress=False)
    reader = StoreReader(store)
    stored = reader.read(0, "power", (slice(None), slice(None)))
    exact = np.abs(librosa.stft(y.astype(np.float64), n_fft=256, hop_length=128, center=False)) ** 2
    span = 10 * np.log10(exact.max(axis=0) / exact.min(axis=0))
    assert span.min() > 140  # the recording does span that range
    assert max_db_error(stored, exact) <= BOUND_DB
    # the pyramid's means: within the same bound of the mean of the exact level-0 frames
    for k in range(1, int(reader.attrs["n_levels"])):
        mean = reader.read(k, "power", (slice(None), slice(None)))
        assert max_db_error(mean, frame_means(exact, k)) <= BOUND_DB, k


def test_the_store_is_compressed_in_zarr_and_netcdf(tmp_path):
    demo = make_demo(tmp_path / "demo", hours=0.02, progress=False)
    flac = sorted(demo.parent.glob("*.flac"))[0]
    config = StftConfig(n_fft=4096, hop_length=2048)
    for name, fmt in (("c.zarr", "zarr"), ("c.nc", "netcdf")):
        store = ingest(open_timeline([flac]), tmp_path / name, config, format=fmt, progress=False)
        size = store_info(store)["size"]
        print(f"\n{name}: {size['ratio_to_pcm16']:.2f}x the audio as 16-bit PCM")
        assert size["bytes"] < 0.7 * size["float32_bytes"]  # plain float32 would be 1.0
    with h5py.File(tmp_path / "c.nc") as f:
        assert f["0/power"].compression == "gzip" and f["0/power"].shuffle  # netCDF-4's own filters


# ------------------------------------------------------------------ upgrade


def test_an_upgraded_store_equals_a_fresh_ingest_array_for_array(format1, tmp_path):
    assert upgrade(format1) == 1  # the format it had
    fresh = ingest(open_timeline([WAV]), tmp_path / "fresh.zarr", CONFIG, progress=False)
    upgraded, written = arrays(format1), arrays(fresh)
    assert upgraded.keys() == written.keys() and len(level_lengths(2999, PYRAMID_FACTOR)) == 2
    for name, values in written.items():
        np.testing.assert_array_equal(upgraded[name], values, err_msg=name)
    assert StoreReader(format1).format_version == FORMAT_VERSION
    assert upgrade(format1) is None  # already the current format: nothing is done


def test_upgrade_through_the_cli_says_what_it_did(cli, format1):
    done = run(cli, "upgrade", str(format1))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{format1}: format 1 -> 3, now 0.3 MiB (")
    info = run(cli, "info", str(format1)).stdout
    assert "format      3\n" in info and "x its audio as 16-bit PCM" in info


def test_an_interrupted_upgrade_leaves_the_old_store_as_it_was(cli, tmp_path):
    demo = make_demo(tmp_path / "demo", hours=0.02, progress=False)
    flac = sorted(demo.parent.glob("*.flac"))
    store = tmp_path / "big.zarr"
    ingest(open_timeline(flac), store, StftConfig(n_fft=512, hop_length=64), progress=False)
    _as_format1(store)
    before = digest(store)
    building = tmp_path / ".big.zarr.upgrading"
    proc = subprocess.Popen([*cli, "upgrade", str(store)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(building.glob("0/power/c/*/*")) and time.monotonic() < deadline:  # the new store half written
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert building.exists() and digest(store) == before  # killed mid-way: the old store untouched
    assert run(cli, "upgrade", str(store)).returncode == 0  # run again: it starts over and finishes
    assert StoreReader(store).format_version == FORMAT_VERSION and not building.exists()


def _as_format1(store: Path) -> None:
    """Make a format-2 store look like format 1 to an upgrade (its data stays rounded: upgrading it is idempotent)."""
    meta = store / "zarr.json"
    document = json.loads(meta.read_text())
    del document["attributes"]["format_version"]
    for node in document.get("consolidated_metadata", {}).get("metadata", {}).values():
        node.get("attributes", {}).pop("format_version", None)
    meta.write_text(json.dumps(document))


def test_upgrade_refuses_what_it_cannot_upgrade_in_one_line(cli, format1, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "x.txt").write_text("no store")
    partial = shutil.copytree(format1, tmp_path / ".s.zarr.partial")
    cases = [
        (notes, FormatError, "is not a Spectral Atlas store"),
        (tmp_path / "missing.zarr", SourceNotFoundError, "no store at"),
        (partial, ParameterError, "is an unfinished ingest: run the same ingest again to finish it"),
        ("https://example.org/x.zarr", ParameterError, "upgrade a local copy"),
    ]
    for path, error, said in cases:
        with pytest.raises(error, match=said):
            upgrade(path)
        done = run(cli, "upgrade", str(path))
        assert done.returncode == 1 and len(done.stderr.splitlines()) == 1 and said in done.stderr
    assert digest(partial) == digest(format1)


def test_a_store_on_a_read_only_file_system_is_not_upgraded(format1, tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a file system here (not root?)")
    try:
        shutil.copytree(format1, mount / "s.zarr")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        before = digest(mount / "s.zarr")
        with pytest.raises(ParameterError, match="cannot be written"):
            upgrade(mount / "s.zarr")
        assert digest(mount / "s.zarr") == before
    finally:
        subprocess.run(["umount", str(mount)])


def test_keep_bits_is_numcodecs_bitround_bit_for_bit():
    from numcodecs import BitRound

    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            (rng.standard_normal(100_000) * 10.0 ** rng.integers(-40, 38, 100_000)).astype(np.float32),
            np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4e38, 1.0, 1.5, 1.75], np.float32),
        ]
    ).reshape(-1, 10)
    for bits in (3, 12, 14, 22, 23):
        expected = BitRound(keepbits=bits).encode(values).view(np.float32).reshape(values.shape)
        finite = np.isfinite(values)
        got = keep_bits(values, bits)
        np.testing.assert_array_equal(got[finite].view(np.int32), expected[finite].view(np.int32), err_msg=str(bits))
        np.testing.assert_array_equal(got[~finite], values[~finite])  # inf and NaN as they were
        copy = values.copy()
        assert keep_bits(copy, bits, inplace=True) is copy and np.array_equal(copy, got, equal_nan=True)
