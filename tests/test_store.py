"""Store round trips (Zarr and NetCDF) and what a failed write leaves behind."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import SR, chirp, noise

from data_access import (
    FormatError,
    SourceNotFoundError,
    StftConfig,
    StoreExistsError,
    ingest,
    open_store,
    open_timeline,
    power_spectrogram,
)
from data_access.schema import FORMAT_VERSION
from data_access.store import LEVEL0_BITS, StoreReader, keep_bits, store_info

CONFIG = StftConfig(n_fft=256, hop_length=128, window="hamming")


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture
def recording(write_audio):
    # 45.1 s at 8 kHz, n_fft 256 / hop 128: 2817 frames, so every last chunk is uneven
    return open_timeline(write_audio("r_20260301_120000.wav", noise(45.1) + chirp(200, 3000, 45.1)))


@pytest.mark.parametrize("fmt", ["zarr", "netcdf"])
def test_round_trip(recording, tmp_path, fmt):
    path = ingest(recording, tmp_path / f"s.{'zarr' if fmt == 'zarr' else 'nc'}", CONFIG, format=fmt, time_chunk=256)
    tree = open_store(path)
    assert path.is_dir() == (fmt == "zarr")
    n_frames = CONFIG.n_frames(recording.n_samples)
    level0 = tree["0"]
    assert level0.power.dims == ("freq", "time") and level0.power.shape == (129, n_frames)
    assert level0.power.dtype == np.float32
    expected = power_spectrogram(recording.read(0, recording.n_samples), CONFIG)
    np.testing.assert_array_equal(level0.power.values, keep_bits(expected, LEVEL0_BITS))  # format 2's precision
    assert StoreReader(path).attrs["format_version"] == FORMAT_VERSION == 3
    # frame i is stamped at its centre
    i = np.array([0, 1, n_frames - 1])
    centre_ns = np.round((i * CONFIG.hop_length + CONFIG.n_fft / 2) / SR * 1e9).astype("int64")
    np.testing.assert_array_equal(level0.time.values[i], np.datetime64("2026-03-01T12:00:00", "ns") + centre_ns)
    np.testing.assert_allclose(level0.freq.values, np.arange(129) * SR / 256)
    assert level0.freq.attrs["units"] == "Hz" and level0.power.attrs["units"] == "1"
    attrs = tree.attrs
    for key, value in {
        "n_fft": 256,
        "hop_length": 128,
        "win_length": 256,
        "window": "hamming",
        "sample_rate": SR,
    }.items():
        assert attrs[key] == value
    assert attrs["channel"] == "0" and attrs["software"].startswith("spectral-atlas ")
    sources = json.loads(attrs["sources"])
    assert sources[0]["path"].endswith("r_20260301_120000.wav") and sources[0]["n_samples"] == recording.n_samples
    info = store_info(path)
    assert [lv["n_frames"] for lv in info["levels"]] == [n_frames, 705]  # a quarter: the pyramid's factor is 4
    assert attrs["pyramid_factor"] == info["pyramid_factor"] == 4
    assert info["levels"][1]["seconds_per_frame"] == 4 * CONFIG.hop_length / SR
    assert [lv["pyramids"] for lv in info["levels"]] == [["mean"], ["mean", "max"]]
    assert info["waveform"] and [lv["waveform"] for lv in info["levels"]] == [True, True]
    # format 3: the waveform at every level, on the level's time axis, chunked by the time chunk at level 0
    assert [level0[n].dims for n in ("wave_min", "wave_max", "wave_rms")] == [("time",)] * 3
    assert level0.wave_min.dtype == np.float32 and tree["1"].wave_rms.shape == (705,)
    assert level0.wave_rms.attrs["units"] == "1"
    assert level0.wave_min.attrs["long_name"] == "minimum sample re full scale"
    if fmt == "zarr":
        assert StoreReader(path)._root["0/wave_max"].chunks == (256,)
    assert info["format"] == fmt and info["units"] == "1"


def test_zarr_and_netcdf_hold_the_same_tree(recording, tmp_path):
    z = open_store(ingest(recording, tmp_path / "s.zarr", CONFIG))
    n = open_store(ingest(recording, tmp_path / "s.nc", CONFIG, format="netcdf"))
    for level in z.children:
        xr.testing.assert_identical(z[level].to_dataset().load(), n[level].to_dataset().load())


def test_existing_store_needs_overwrite_and_is_left_alone(recording, tmp_path):
    path = ingest(recording, tmp_path / "s.zarr", CONFIG)
    before = digest(path)
    with pytest.raises(StoreExistsError, match=r"'.*s.zarr' already exists; pass --overwrite to replace it"):
        ingest(recording, path, CONFIG)
    assert digest(path) == before


def test_failed_overwrite_leaves_the_old_store_intact(write_audio, tmp_path):
    good = write_audio("a_20260301_120000.flac", noise(30.0))
    path = ingest(open_timeline(good), tmp_path / "s.zarr", CONFIG)
    before = digest(path)
    # the file is damaged after it was opened: the ingest fails part way through its blocks
    timeline = open_timeline(good)
    good.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(FormatError, match=r"cannot read samples .* of 'a_20260301_120000.flac'"):
        ingest(timeline, path, CONFIG, overwrite=True, time_chunk=64)
    assert digest(path) == before
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_overwrite_replaces(recording, write_audio, tmp_path):
    path = ingest(recording, tmp_path / "s.zarr", CONFIG)
    other = open_timeline(write_audio("b_20260301_130000.wav", noise(5.0)))
    ingest(other, path, CONFIG, overwrite=True)
    assert open_store(path).attrs["start_time"].startswith("2026-03-01T13:00:00")


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda d: d / "none.zarr", SourceNotFoundError, r"no store at '.*none.zarr'"),
        (
            lambda d: (d / "x.nc").write_text("nope") and d / "x.nc",
            FormatError,
            r"'.*x.nc' is not a Spectral Atlas store",
        ),
        (lambda d: (d / "empty.zarr").mkdir() or d / "empty.zarr", FormatError, r"is not a Spectral Atlas store"),
    ],
)
def test_open_store_errors(tmp_path, make, error, match):
    with pytest.raises(error, match=match):
        open_store(make(tmp_path))


def test_output_directory_must_exist(recording, tmp_path):
    with pytest.raises(SourceNotFoundError, match=r"directory '.*nowhere' for the output does not exist"):
        ingest(recording, tmp_path / "nowhere" / "s.zarr", CONFIG)
