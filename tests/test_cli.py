"""The real ``spectral-atlas`` console script, run as a user runs it."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, noise
from test_store import digest


def run(cli, *args, cwd=None):
    return subprocess.run([*cli, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture
def wav(write_audio):
    return write_audio("h_20260301_120000.wav", noise(20.0))


def test_ingest_then_info(cli, wav, tmp_path):
    out = tmp_path / "s.zarr"
    done = run(
        cli, "ingest", str(wav), "--output", str(out), "--n-fft", "128", "--hop-length", "64", "--window", "hamming"
    )
    assert done.returncode == 0, done.stderr
    info = run(cli, "info", str(out), "--json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["stft"] == {"n_fft": 128, "hop_length": 64, "win_length": 128, "window": "hamming"}
    assert summary["start_time"].startswith("2026-03-01T12:00:00")
    assert summary["duration_seconds"] == pytest.approx(20.0)
    assert summary["levels"][0]["n_frames"] == 1 + (20 * SR - 128) // 64
    text = run(cli, "info", str(out)).stdout
    assert "n_fft=128 hop_length=64" in text and "h_20260301_120000.wav" in text and "s/frame" in text
    assert "mean + max of power" in text  # both pyramids are listed
    assert [lv["pyramids"] for lv in summary["levels"]][-1] == ["mean", "max"]


def test_ingest_netcdf_and_channel_mean(cli, write_audio, tmp_path):
    stereo = write_audio("st_20260301_120000.wav", np.stack([noise(5.0, seed=1), noise(5.0, seed=2)], axis=1))
    out = tmp_path / "s.nc"
    done = run(cli, "ingest", str(stereo), "-o", str(out), "--format", "netcdf", "--channel", "mean", "--n-fft", "256")
    assert done.returncode == 0, done.stderr
    assert json.loads(run(cli, "info", str(out), "--json").stdout)["channel"] == "mean"


def _bad_case(kind, tmp_path, wav):
    """Arguments for one bad invocation, and the message expected on stderr."""
    if kind == "missing":
        return [str(tmp_path / "nope.wav")], "no such file: '"
    if kind == "empty":
        (tmp_path / "e.wav").touch()
        return [str(tmp_path / "e.wav")], "'e.wav' is empty (0 bytes)"
    if kind == "corrupt":
        (tmp_path / "c.flac").write_bytes(b"\x00\x01garbage" * 100)
        return [str(tmp_path / "c.flac")], "cannot read 'c.flac' as audio"
    if kind == "wrong-format":
        (tmp_path / "n.csv").write_text("a,b\n")
        return [str(tmp_path / "n.csv")], "cannot read 'n.csv': suffix '.csv' is not one of"
    if kind == "hop>n_fft":
        return [str(wav), "--n-fft", "256", "--hop-length", "512"], "hop_length=512 must be between 1 and n_fft=256"
    if kind == "bad-window":
        return [str(wav), "--window", "wobbly"], "window='wobbly' is not a window"
    if kind == "bad-start-time":
        return [str(wav), "--start-time", "yesterday-ish"], "cannot read 'yesterday-ish' as a time"
    if kind == "one-bad-among-good":
        (tmp_path / "c_20260301_121000.wav").write_bytes(b"RIFF....WAVEjunk")
        return [str(wav), str(tmp_path / "c_20260301_121000.wav")], "cannot read 'c_20260301_121000.wav' as audio"
    raise AssertionError(kind)


BAD = ["missing", "empty", "corrupt", "wrong-format", "hop>n_fft", "bad-window", "bad-start-time", "one-bad-among-good"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_is_one_clear_line_and_the_store_is_untouched(cli, wav, tmp_path, kind):
    out = tmp_path / "s.zarr"
    assert run(cli, "ingest", str(wav), "-o", str(out), "--n-fft", "256").returncode == 0
    before = digest(out)
    args, message = _bad_case(kind, tmp_path, wav)
    done = run(cli, "ingest", *args, "-o", str(out), "--overwrite")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spectral-atlas: error: "), done.stderr
    assert message in lines[0]
    assert "Traceback" not in done.stderr
    assert digest(out) == before


def test_existing_output_without_overwrite(cli, wav, tmp_path):
    out = tmp_path / "s.zarr"
    assert run(cli, "ingest", str(wav), "-o", str(out)).returncode == 0
    before = digest(out)
    done = run(cli, "ingest", str(wav), "-o", str(out))
    assert done.returncode == 1
    assert done.stderr.strip() == f"spectral-atlas: error: {str(out)!r} already exists; pass --overwrite to replace it"
    assert digest(out) == before


def test_truncated_file_is_read_with_a_one_line_warning(cli, tmp_path):
    full = tmp_path / "full.wav"
    sf.write(full, noise(10.0), SR, subtype="PCM_16")
    cut = tmp_path / "t_20260301_120000.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 2 * 7 * SR])
    done = run(cli, "ingest", str(cut), "-o", str(tmp_path / "t.zarr"), "--n-fft", "256")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "truncated" in line]
    assert warnings == [
        "spectral-atlas: WARNING: t_20260301_120000.wav is truncated: reading the 7.000 s that are there, "
        "3.000 s (24000 samples) promised by its header are missing"
    ]
    summary = json.loads(run(cli, "info", str(tmp_path / "t.zarr"), "--json").stdout)
    assert summary["sources"][0]["missing_samples"] == 3 * SR


def test_info_on_a_missing_store(cli, tmp_path):
    done = run(cli, "info", str(tmp_path / "nothing.zarr"))
    assert done.returncode == 1 and done.stderr.startswith("spectral-atlas: error: no store at ")


def test_usage_error_exits_2(cli):
    done = run(cli, "ingest")
    assert done.returncode == 2 and "usage: spectral-atlas ingest" in done.stderr


def test_a_newline_in_a_file_name_forges_no_line_in_warnings_or_info(cli, tmp_path):
    # A file named "x\nspectral-atlas: WARNING: ..." once printed a fake warning of its own.
    forged = "spectral-atlas: WARNING: all is well"
    full = tmp_path / "full.wav"
    sf.write(full, noise(10.0), SR, subtype="PCM_16")
    cut = tmp_path / f"t_20260301_120000\n{forged}.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 2 * 7 * SR])  # truncated: ingest warns about it by name
    done = run(cli, "ingest", str(cut), "-o", str(tmp_path / "t.zarr"), "--n-fft", "256")
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if "truncated" in line]
    assert len(warned) == 1 and f"t_20260301_120000\\n{forged}.wav is truncated" in warned[0]
    assert not [line for line in done.stderr.splitlines() if line.startswith(forged)]
    info = run(cli, "info", str(tmp_path / "t.zarr")).stdout.splitlines()
    assert not [line for line in info if line.startswith(forged)]
    assert any(f"t_20260301_120000\\n{forged}.wav" in line for line in info)
