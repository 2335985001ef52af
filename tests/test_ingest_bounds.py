"""Resource bounds of an ingest: sizes, rates, dates and spans out of range are one clear line, before any work.

Each case runs the real console script over an existing store and checks the
error is one line, with no traceback, and the store is left as it was; the
Python API raises the same error.
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import obspy
import pytest
import soundfile as sf
from conftest import SR, noise
from test_store import digest

from data_access import FormatError, ParameterError, StftConfig, ingest, open_source, open_timeline


def run(cli, *args):
    return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=120)


def write_mseed(path, start: str, seconds: float = 5.0):
    """A real MiniSEED file: one trace of int32 counts starting at ``start`` (UTC)."""
    data = np.random.default_rng(0).integers(-1000, 1000, int(seconds * SR)).astype(np.int32)
    header = {"sampling_rate": SR, "starttime": obspy.UTCDateTime(start), "network": "OO", "station": "HYD"}
    obspy.Trace(data, header=header).write(str(path), format="MSEED")
    return path


def corrupt_flac(path):
    """A real 10 s FLAC whose STREAMINFO says a minimum block size of 0 (bytes 8..10: after 'fLaC' and a header)."""
    sf.write(path, noise(10.0), SR)
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    data[8:10] = b"\x00\x00"
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def wav(write_audio):
    return write_audio("h_20260301_120000.wav", noise(10.0))


def _case(kind, tmp_path, wav):
    """Arguments of one out-of-range ingest, and the message expected on stderr."""
    if kind == "n_fft":
        return [str(wav), "--n-fft", str(2**30)], f"n_fft={2**30} must be an integer >= 2 and <= 1048576 (MAX_N_FFT)"
    if kind == "time_chunk":
        return [str(wav), "--n-fft", "256", "--time-chunk", str(10**9)], (
            "time_chunk=1000000000 frames of n_fft=256 x 1 channel(s) make blocks of 980,377 MiB of float32 "
            "samples and power, more than 256 MiB (MAX_BLOCK_BYTES); pass --time-chunk 512 (time_chunk=) or less"
        )
    if kind == "sample_rate":
        return [str(wav), "--sample-rate", "1e9"], "sample_rate=1000000000.0 must be a number of samples per second "
    if kind == "start_time":
        return [str(wav), "--start-time", "0001-01-01"], (
            "start_time '0001-01-01' is outside 1900-01-01 .. 2100-01-01, the dates a recording may have"
        )
    if kind == "mseed_2100":
        paths = [write_mseed(tmp_path / "a.mseed", "2024-06-01"), write_mseed(tmp_path / "b.mseed", "2100-01-01")]
        return [*map(str, paths), "--n-fft", "256"], (
            "'b.mseed' starts at 2100-01-01T00:00:00.000000000 (from its header) and lasts 5.000 s, outside "
            "1900-01-01 .. 2100-01-01"
        )
    if kind == "mseed_span":
        paths = [write_mseed(tmp_path / "a.mseed", "2024-06-01"), write_mseed(tmp_path / "b.mseed", "2099-06-01")]
        return [*map(str, paths), "--n-fft", "256"], (
            "the recording spans 75.0 years, from 2024-06-01T00:00:00.000000000 ('a.mseed' starts) to "
            "2099-06-01T00:00:05.000000000 ('b.mseed' ends), more than the 2 years one store may span"
        )
    if kind == "flac_header":
        return [str(corrupt_flac(tmp_path / "c_20260301_120000.flac")), "--n-fft", "256"], (
            "'c_20260301_120000.flac' has a corrupt FLAC header (block sizes 0 .. 4096 samples, where FLAC needs "
            "16 <= minimum <= maximum): the file is damaged, not truncated"
        )
    raise AssertionError(kind)


CASES = ["n_fft", "time_chunk", "sample_rate", "start_time", "mseed_2100", "mseed_span", "flac_header"]


@pytest.mark.parametrize("kind", CASES)
def test_out_of_range_is_one_clear_line_fast_and_the_store_is_untouched(cli, wav, tmp_path, kind):
    out = tmp_path / "s.zarr"
    assert run(cli, "ingest", str(wav), "-o", str(out), "--n-fft", "256").returncode == 0
    before = digest(out), {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    args, message = _case(kind, tmp_path, wav)
    began = time.monotonic()
    done = run(cli, "ingest", *args, "-o", str(out), "--overwrite", "--no-progress")
    assert time.monotonic() - began < 60  # refused up front, not after filling memory or the disk
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spectral-atlas: error: "), done.stderr
    assert message in lines[0]
    assert "Traceback" not in done.stderr and "is truncated" not in done.stderr  # no truncation warning
    assert (digest(out), {p: p.stat().st_mtime_ns for p in out.rglob("*")}) == before
    assert sorted(p.name for p in tmp_path.glob("*.zarr*")) == ["s.zarr"]  # no partial left behind either


def test_python_api_gets_the_same_errors(wav, tmp_path):
    with pytest.raises(ParameterError, match=r"n_fft=1073741824 must be an integer >= 2 and <= 1048576"):
        StftConfig(n_fft=2**30)
    with pytest.raises(ParameterError, match=r"hop_length=1.5 must be between 1 and n_fft=256, an integer"):
        StftConfig(n_fft=256, hop_length=1.5)
    timeline = open_timeline(wav)
    with pytest.raises(ParameterError, match=r"time_chunk=1000000000 frames of n_fft=256 .* \(MAX_BLOCK_BYTES\)"):
        ingest(timeline, tmp_path / "s.zarr", StftConfig(n_fft=256), time_chunk=10**9)
    for rate in (1e9, float("nan"), float("inf"), 0, -8000):
        with pytest.raises(ParameterError, match=r"must be a number of samples per second from 0.001 to 4e\+06"):
            open_timeline(wav, sample_rate=rate)
    for start in ("0001-01-01", "1899-12-31", "2100-01-01"):
        with pytest.raises(ParameterError, match=rf"start_time '{start}' is outside 1900-01-01 .. 2100-01-01"):
            open_timeline(wav, start_time=start)
    with pytest.raises(FormatError, match=r"'b.mseed' starts at 2100-01-01T00:00:00.000000000 \(from its header\)"):
        open_source(write_mseed(tmp_path / "b.mseed", "2100-01-01"))
    with pytest.raises(FormatError, match=r"'c.flac' has a corrupt FLAC header \(block sizes 0 .. 4096 samples"):
        open_source(corrupt_flac(tmp_path / "c.flac"), start_time="2026-03-01")
    assert not (tmp_path / "s.zarr").exists()


def test_a_bad_date_is_skipped_with_skip_bad(tmp_path):
    good = write_mseed(tmp_path / "a.mseed", "2024-06-01")
    timeline = open_timeline([good, write_mseed(tmp_path / "b.mseed", "2100-01-01")], skip_bad=True)
    assert [s.path.name for s in timeline.sources] == ["a.mseed"]
    assert "2100-01-01" in timeline.skipped[0][1]


def test_a_span_inside_one_miniseed_file_is_refused(tmp_path):
    """Traces of one file six years apart: the file alone would make a store of six years of empty columns."""
    traces = [
        obspy.Trace(np.zeros(SR, np.int32), header={"sampling_rate": SR, "starttime": obspy.UTCDateTime(t)})
        for t in ("2024-01-01", "2030-01-01")
    ]
    obspy.Stream(traces).write(str(tmp_path / "two.mseed"), format="MSEED")
    with pytest.raises(FormatError, match=r"the recording spans 6.0 years, .* more than the 2 years one store"):
        open_timeline(tmp_path / "two.mseed")


def test_a_header_time_no_datetime64_holds_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match=r"'y.mseed' has a time out of range in its header: '2500-01-01 00:00:00'"):
        open_source(write_mseed(tmp_path / "y.mseed", "2500-01-01"))


def test_a_large_n_fft_gets_a_time_chunk_that_fits(write_audio, tmp_path):
    """Without time_chunk, blocks of a large n_fft are made smaller than 512 frames, not refused."""
    from data_access import open_store

    timeline = open_timeline(write_audio("l_20260301_120000.wav", noise(40.0)))
    config = StftConfig(n_fft=2**18, hop_length=1024)
    tree = open_store(ingest(timeline, tmp_path / "l.zarr", config, progress=False))
    assert tree["0"].power.encoding["chunks"][-1] == 256  # 512 frames would take 259 MiB
    assert tree.attrs["n_frames"] == config.n_frames(40 * SR)
