"""Real deployments: dozens of files with real names and header times, gaps, overlaps, bad files,
mixed sample rates, BWF origination times and fragmented MiniSEED, from open_timeline to the store."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import shutil
import struct
import subprocess
from pathlib import Path

import librosa
import numpy as np
import obspy
import pytest
import soundfile as sf
import soxr
from conftest import SR, noise, stored, tone
from obspy.core.compatibility import round_away
from test_sources import T0, write_mseed

from data_access import FormatError, ParameterError, StftConfig, ingest, open_source, open_store, open_timeline
from data_access.sources import ResampledSource

CONFIG = StftConfig(n_fft=256, hop_length=128)
START = dt.datetime(2026, 3, 1, 12, 0, 0)
OBSPY_DATA = Path(obspy.__file__).parent / "io/mseed/tests/data"

# An AudioMoth on a duty cycle: 2 s recorded every 5 s, 36 files; one file was never
# written (the card was full) and one is corrupt.
N_FILES, EVERY, LENGTH, MISSING, CORRUPT = 36, 5, 2, 9, 20
PRESENT = [i for i in range(N_FILES) if i not in (MISSING, CORRUPT)]
REASON = "cannot read '20260301_120140.WAV' as audio: Error in WAV file. No 'data' chunk marker."


def moth_name(i: int) -> str:
    return f"{START + dt.timedelta(seconds=EVERY * i):%Y%m%d_%H%M%S}.WAV"


@pytest.fixture
def moth(tmp_path) -> Path:
    folder = tmp_path / "moth"
    folder.mkdir()
    for i in range(N_FILES):
        if i == CORRUPT:
            (folder / moth_name(i)).write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 50)
        elif i != MISSING:
            sf.write(folder / moth_name(i), noise(LENGTH, seed=i), SR, subtype="PCM_16")
    return folder


def run(cli, *args):
    return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=300)


def test_bad_file_stops_the_opening_naming_it(moth):
    with pytest.raises(FormatError, match=r"^cannot read '20260301_120140.WAV' as audio: "):
        open_timeline(moth)


@pytest.mark.parametrize("given", ["directory", "glob", "shuffled files"])
def test_duty_cycled_deployment_lands_on_exact_offsets(moth, caplog, given):
    files = sorted(moth.glob("*.WAV"))
    random.Random(3).shuffle(files)
    inputs = {"directory": moth, "glob": str(moth / "2026*.WAV"), "shuffled files": files}[given]
    with caplog.at_level(logging.WARNING):
        timeline = open_timeline(inputs, skip_bad=True)
    assert [r.message for r in caplog.records if "skipping" in r.message] == [
        f"skipping {moth_name(CORRUPT)}: {REASON}"
    ]
    assert [s.path.name for s in timeline.sources] == [moth_name(i) for i in PRESENT]
    assert timeline.offsets == tuple(i * EVERY * SR for i in PRESENT)
    assert timeline.start_time == np.datetime64(START, "ns")
    # across a file boundary, and across the gap left by the missing file
    a = timeline.read(2 * EVERY * SR - 10, 2 * EVERY * SR + 10)
    assert np.isnan(a[:10]).all()
    np.testing.assert_array_equal(a[10:], sf.read(moth / moth_name(2), dtype="float32")[0][:10])
    end_of_8 = 8 * EVERY * SR + LENGTH * SR
    b = timeline.read(end_of_8 - 5, 10 * EVERY * SR + 5)
    np.testing.assert_array_equal(b[:5], sf.read(moth / moth_name(8), dtype="float32")[0][-5:])
    assert np.isnan(b[5:-5]).all() and len(b) == 8 * SR + 10
    np.testing.assert_array_equal(b[-5:], sf.read(moth / moth_name(10), dtype="float32")[0][:5])


def test_duty_cycled_deployment_summary(moth):
    summary = open_timeline(moth, skip_bad=True).summary()
    duration = (N_FILES - 1) * EVERY + LENGTH  # 177 s
    assert summary["n_files"] == len(PRESENT) == 34
    assert summary["start_time"] == "2026-03-01T12:00:00.000000000"
    assert summary["end_time"] == "2026-03-01T12:02:57.000000000"
    assert summary["duration_seconds"] == duration
    assert summary["coverage_seconds"] == 34 * LENGTH
    assert summary["coverage_fraction"] == pytest.approx(68 / 177)
    # 31 gaps of 3 s between neighbours, and 8 s where file 9 and file 20 are missing
    assert summary["gaps"] == {
        "count": 33,
        "total_seconds": duration - 68,
        "largest_seconds": 8.0,
        "largest_start": "2026-03-01T12:00:42.000000000",
        "between_files": 33,
    }
    assert summary["overlaps"] == {"count": 0, "total_seconds": 0.0, "list": []}
    assert summary["skipped"] == [
        {
            "path": str(moth / moth_name(CORRUPT)),
            "reason": REASON,
        }
    ]
    assert summary["sample_rates"] == {"8000": 34} and summary["resampled"] == [] and summary["truncated"] == []
    assert summary["start_time_from"] == {"header": 0, "filename": 34, "user": 0}
    json.dumps(summary)  # JSON-friendly as it is


def test_duty_cycled_deployment_through_the_store(moth, tmp_path):
    """Frame times are exact across files; a frame is NaN exactly when it touches a gap; the rest is librosa's STFT."""
    timeline = open_timeline(moth, skip_bad=True)
    tree = open_store(ingest(timeline, tmp_path / "moth.zarr", CONFIG, progress=False))
    level0 = tree["0"]
    n_frames = level0.sizes["time"]
    assert n_frames == (177 * SR - CONFIG.n_fft) // CONFIG.hop_length + 1
    # frame i is centred on sample i * hop + n_fft / 2: (i + 1) * 16 ms here, exact to the nanosecond
    expected_times = np.datetime64(START, "ns") + (np.arange(n_frames) + 1) * np.timedelta64(16_000_000, "ns")
    np.testing.assert_array_equal(level0.time.values, expected_times)
    starts = np.arange(n_frames) * CONFIG.hop_length
    file_index = starts // (EVERY * SR)
    inside = np.isin(file_index, PRESENT) & (starts + CONFIG.n_fft <= file_index * EVERY * SR + LENGTH * SR)
    power = level0.power.values
    np.testing.assert_array_equal(np.isnan(power).all(axis=0), ~inside)
    assert np.isfinite(power[:, inside]).all()
    for i in (0, 1, 8, 10, 35):  # 40000 samples between starts: odd files start half a hop off the frame grid
        y = sf.read(moth / moth_name(i), dtype="float32")[0]
        first = -(-i * EVERY * SR // CONFIG.hop_length)
        shift = first * CONFIG.hop_length - i * EVERY * SR
        reference = np.abs(librosa.stft(y[shift:], n_fft=256, hop_length=128, center=False, window="hann")) ** 2
        np.testing.assert_allclose(power[:, first : first + reference.shape[1]], reference, rtol=2e-4, atol=1e-9)
    assert json.loads(tree.attrs["deployment"]) == timeline.summary()


def test_soundtrap_files_join_without_a_gap(write_audio):
    """SoundTrap names (SERIAL.YYMMDDHHMMSS.wav) of back-to-back 4 s files: one continuous timeline."""
    pieces = [noise(4.0, seed=k) for k in range(3)]
    paths = [write_audio(f"6713.2603011200{4 * k:02d}.wav", y) for k, y in enumerate(pieces)]
    timeline = open_timeline(paths[::-1])
    assert timeline.offsets == (0, 4 * SR, 8 * SR) and timeline.gaps() == []
    np.testing.assert_array_equal(timeline.read(0, 12 * SR), np.concatenate(pieces))
    assert timeline.summary()["coverage_fraction"] == 1.0 and timeline.summary()["gaps"]["count"] == 0


def test_ooi_miniseed_files_keep_their_sub_second_header_times(tmp_path):
    """OOI-named MiniSEED files 3 s long every 3.25 s: header times to the microsecond, 0.25 s gaps."""
    rng = np.random.default_rng(0)
    paths = []
    for k in range(3):
        start = 3.25 * k
        name = f"OO-HYEA1--YDH-{(START + dt.timedelta(seconds=start)).isoformat(timespec='microseconds')}.mseed"
        paths.append(write_mseed(tmp_path / name, [(start, rng.integers(-999, 999, 3 * SR))]))
    timeline = open_timeline(paths)
    assert [s.start_time_from for s in timeline.sources] == ["header"] * 3
    assert timeline.offsets == (0, 26000, 52000)  # 3.25 s = 26000 samples
    assert timeline.gaps() == [(24000, 26000), (50000, 52000)]
    summary = timeline.summary()
    assert summary["gaps"]["count"] == 2 and summary["gaps"]["total_seconds"] == 0.5
    assert summary["coverage_seconds"] == 9.0


# -- overlaps -----------------------------------------------------------------------------------


def ooi_name(prefix: str, seconds: float) -> str:
    return f"{prefix}-{(START + dt.timedelta(seconds=seconds)).isoformat(timespec='microseconds')}.wav"


def test_small_overlap_is_reported_and_the_later_file_wins(write_audio, caplog):
    a, b = noise(10.0, seed=1), noise(4.0, seed=2)
    first, second = write_audio(ooi_name("a", 0), a), write_audio(ooi_name("b", 9.5), b)
    with caplog.at_level(logging.WARNING):
        timeline = open_timeline([second, first])
    assert f"{second.name} overlaps {first.name} by 0.500 s; the later file's samples are used there" in caplog.text
    whole = timeline.read(0, timeline.n_samples)
    np.testing.assert_array_equal(whole[: int(9.5 * SR)], a[: int(9.5 * SR)])
    np.testing.assert_array_equal(whole[int(9.5 * SR) :], b)
    overlaps = timeline.summary()["overlaps"]
    assert overlaps == {
        "count": 1,
        "total_seconds": 0.5,
        "list": [{"earlier": str(first), "later": str(second), "seconds": 0.5}],
    }
    assert timeline.summary()["coverage_seconds"] == 13.5


def test_overlap_beyond_the_tolerance_is_an_error_naming_both_files(write_audio):
    paths = [write_audio(ooi_name("a", 0), noise(10.0, seed=1)), write_audio(ooi_name("b", 8), noise(4.0, seed=2))]
    message = (
        rf"^'{paths[1].name}' overlaps '{paths[0].name}' by 2.000 s, more than max_overlap=1 s: "
        r"duplicated or mis-timed files\? Remove them, or allow it with --max-overlap SECONDS$"
    )
    with pytest.raises(FormatError, match=message):
        open_timeline(paths)
    with pytest.raises(FormatError, match=r"by 2.000 s, more than max_overlap=1.999 s"):
        open_timeline(paths, max_overlap=1.999)
    assert open_timeline(paths, max_overlap=2.0).summary()["overlaps"]["total_seconds"] == 2.0
    with pytest.raises(ParameterError, match=r"max_overlap=-1 must be a number of seconds >= 0"):
        open_timeline(paths, max_overlap=-1)


def test_duplicated_file_is_an_overlap_of_its_whole_length(write_audio, tmp_path):
    original = write_audio("rec_20260301_120000.wav", noise(3.0))
    copy = tmp_path / "copy_20260301_120000.wav"
    shutil.copy(original, copy)
    with pytest.raises(FormatError, match=r"overlaps '.*_20260301_120000.wav' by 3.000 s \(all of it\)"):
        open_timeline([original, copy])


# -- sample rates -------------------------------------------------------------------------------


def test_mixed_rates_need_a_target_rate(write_audio):
    paths = [write_audio(ooi_name("a", 0), tone(1000.0, 1.0, sr=44100), sr=44100)]
    paths.append(write_audio(ooi_name("b", 2), tone(1000.0, 1.0, sr=48000), sr=48000))
    with pytest.raises(
        FormatError, match=r"different sample rates \(44100 Hz: a-.*; 48000 Hz: b-.*\); pass --sample-rate HZ"
    ):
        open_timeline(paths)


def test_tones_at_44k1_and_48k_land_in_the_same_bin_with_the_same_level(write_audio, tmp_path):
    amp = 0.5
    paths = [write_audio(ooi_name("a", 0), tone(1000.0, 1.0, sr=44100, amp=amp), sr=44100)]
    paths.append(write_audio(ooi_name("b", 2), tone(1000.0, 1.0, sr=48000, amp=amp), sr=48000))
    timeline = open_timeline(paths, sample_rate=48000)
    assert timeline.sample_rate == 48000 and timeline.offsets == (0, 96000)
    assert isinstance(timeline.sources[0], ResampledSource) and timeline.sources[0].n_samples == 48000
    summary = timeline.summary()
    assert summary["sample_rates"] == {"44100": 1, "48000": 1}
    assert summary["resampled"] == [{"path": str(paths[0]), "from_sample_rate": 44100.0}]
    config = StftConfig(n_fft=4800, hop_length=2400)  # 10 Hz bins: 1000 Hz is bin 100
    power = open_store(ingest(timeline, tmp_path / "r.zarr", config, progress=False))["0"].power
    window = np.hanning(4801)[:-1]  # scipy's periodic hann
    expected = (amp * window.sum() / 2) ** 2  # a tone's peak power on its bin
    for t0, t1 in [(0.1, 0.9), (2.1, 2.9)]:  # frames inside each file
        frames = power.sel(
            time=slice(T0 + np.timedelta64(int(t0 * 1e9), "ns"), T0 + np.timedelta64(int(t1 * 1e9), "ns"))
        )
        assert frames.sizes["time"] >= 10
        assert (frames.argmax("freq").values == 100).all()
        np.testing.assert_allclose(frames.sel(freq=1000.0).values, expected, rtol=1e-3)


@pytest.mark.parametrize(("rate", "target"), [(44100, 48000), (48000, 8000), (8000, 44100)])
def test_resampled_blocks_equal_soxr_on_the_whole_file(write_audio, rate, target):
    y = noise(3.0, sr=rate, seed=4)
    src = ResampledSource.wrap(open_source(write_audio("n.wav", y, sr=rate), start_time=T0), target)
    whole = soxr.resample(sf.read(src.path, dtype="float32")[0], rate, target)
    assert src.n_samples == len(whole)
    rng = np.random.default_rng(0)
    blocks = [(0, 1000), (len(whole) - 777, len(whole)), (0, len(whole))]
    blocks += [tuple(sorted(rng.integers(0, len(whole), 2))) for _ in range(20)]
    for a, b in blocks:
        np.testing.assert_allclose(src.read(a, b)[:, 0], whole[a:b], atol=2e-6, err_msg=f"block {a}..{b}")
    for n in (1, 147, 1000, 44099):  # soxr's length for any input length
        short = ResampledSource.wrap(open_source(write_audio("s.wav", y[:n], sr=rate), start_time=T0), target)
        assert short.n_samples == len(soxr.resample(y[:n], rate, target))


# -- BWF origination time -------------------------------------------------------------------------


def write_bwf(path: Path, samples: np.ndarray, date: str, time: str, reference: int, sr: int = SR) -> Path:
    """A real Broadcast WAV: soundfile's WAV with a ``bext`` chunk (EBU Tech 3285) before its ``fmt``."""
    sf.write(path, samples, sr, subtype="PCM_16")
    riff = path.read_bytes()
    bext = (
        b"spectral-atlas test".ljust(256, b"\0")  # Description
        + b"tests".ljust(32, b"\0")  # Originator
        + b"ref".ljust(32, b"\0")  # OriginatorReference
        + date.encode()
        + time.encode()
        + struct.pack("<QH", reference, 1)  # TimeReference (samples since midnight), Version
        + bytes(64 + 10 + 180)  # UMID, loudness, reserved
    )
    chunk = b"bext" + struct.pack("<I", len(bext)) + bext
    body = riff[12:]
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunk) + len(body)) + b"WAVE" + chunk + body)
    return path


@pytest.mark.parametrize(
    ("date", "time", "reference", "expected"),
    [
        ("2026-03-01", "12:00:00", 43200 * SR + 1000, "2026-03-01T12:00:00.125"),  # TimeReference to the sample
        ("2026:03:01", "12:00:07", 0, "2026-03-01T12:00:07"),  # no TimeReference: OriginationTime
        ("2026-03-02", "00:00:03", (86400 - 2) * SR, "2026-03-01T23:59:58"),  # dated just after midnight
    ],
)
def test_bwf_origination_time_is_the_header_time(tmp_path, date, time, reference, expected):
    y = noise(2.0)
    path = write_bwf(tmp_path / "rec_20250101_000000.wav", y, date, time, reference)  # the name says otherwise
    src = open_source(path)
    assert (src.start_time_from, src.start_time) == ("header", np.datetime64(expected, "ns"))
    np.testing.assert_allclose(src.read(0, src.n_samples)[:, 0], y, atol=1 / 2**15)  # libsndfile skips bext
    assert src.n_samples == len(y) and src.missing_samples == 0


def test_bwf_placeholder_date_falls_back_to_the_file_name(tmp_path):
    path = write_bwf(tmp_path / "rec_20260301_120000.wav", noise(1.0), "0000-00-00", "00:00:00", 0)
    src = open_source(path)
    assert (src.start_time_from, src.start_time) == ("filename", T0)


def test_bwf_files_place_a_deployment_to_the_sample(tmp_path):
    """Three BWF files whose names carry no time: the bext TimeReference places them."""
    references = [43200 * SR, 43200 * SR + 2 * SR + 123, 43200 * SR + 5 * SR]
    paths = [
        write_bwf(tmp_path / f"take{k}.wav", noise(2.0, seed=k), "2026-03-01", "12:00:00", r)
        for k, r in enumerate(references)
    ]
    timeline = open_timeline(tmp_path)
    assert timeline.offsets == (0, 2 * SR + 123, 5 * SR) and timeline.gaps() == [
        (2 * SR, 2 * SR + 123),
        (4 * SR + 123, 5 * SR),
    ]
    assert [s.path for s in timeline.sources] == paths


# -- MiniSEED: obspy's merge ----------------------------------------------------------------------


def obspy_merged(path: Path) -> tuple[obspy.UTCDateTime, dict[str, np.ndarray]]:
    """obspy's own ``Stream.merge(method=1)``: start of the earliest and each id's samples, NaN where masked."""
    merged = obspy.read(str(path)).merge(method=1)
    first = min(tr.stats.starttime for tr in merged)
    return first, {tr.id: tr for tr in merged}


def assert_reads_as_obspy_merges(path: Path) -> np.ndarray:
    first, merged = obspy_merged(path)
    src = open_source(path)
    assert src.start_time == np.datetime64(first.datetime, "ns") and list(src.seed_ids) == sorted(merged)
    whole = src.read(0, src.n_samples)
    for c, seed_id in enumerate(src.seed_ids):
        tr = merged[seed_id]
        offset = int(round_away((tr.stats.starttime - first) * tr.stats.sampling_rate))
        expected = np.ma.filled(np.ma.asarray(tr.data, dtype=np.float32), np.nan)
        np.testing.assert_array_equal(whole[offset : offset + len(expected), c], expected)
        assert np.isnan(whole[:offset, c]).all() and np.isnan(whole[offset + len(expected) :, c]).all()
    return whole


@pytest.mark.parametrize(
    "name",
    [
        "gaps.mseed",  # four traces with gaps
        "qualityflags.mseed",  # 18 traces over the same span
        "bizarre/mseed_data_offset_0.mseed",  # an empty trace between two
        "three_records_zero_data_in_middle.mseed",
        "two_channels.mseed",  # two SEED ids
        "constructedFileToTestReadViaRecords.mseed",
    ],
)
def test_miniseed_reads_as_obspy_merges_its_own_example_files(name):
    assert_reads_as_obspy_merges(OBSPY_DATA / name)


def jittered_miniseed(path: Path, seed: int, n_traces: int = 60) -> tuple[Path, int]:
    """Many short traces of one SEED id, each start jittered by up to +-1 ms (8 samples at 8 kHz), one duplicated
    and one short trace of other samples inside another: as OOI has delivered since 2023."""
    rng = np.random.default_rng(seed)
    start, traces, at = obspy.UTCDateTime(str(T0)), [], 0
    for _ in range(n_traces):
        n = int(rng.integers(300, 900))
        header = {"sampling_rate": SR, "starttime": start + at / SR + rng.uniform(-1e-3, 1e-3), "station": "HYEA1"}
        traces.append(obspy.Trace(rng.integers(-5000, 5000, n).astype(np.int32), header={**header, "network": "OO"}))
        at += n
    traces.append(traces[10].copy())
    inside = traces[20].copy()
    inside.data = rng.integers(-5000, 5000, 100).astype(np.int32)
    inside.stats.starttime += 50 / SR
    traces.append(inside)
    obspy.Stream(traces).write(str(path), format="MSEED", encoding="STEIM2", reclen=512)
    return path, at


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fragmented_miniseed_with_jitter_reads_as_obspy_merges(tmp_path, seed):
    path, _ = jittered_miniseed(tmp_path / "OO-HYEA1--YDH-2026-03-01T12:00:00.000000.mseed", seed)
    assert len(obspy.read(str(path), headonly=True)) > 40  # many traces, not one
    whole = assert_reads_as_obspy_merges(path)[:, 0]
    _, merged = obspy_merged(path)
    assert np.isnan(whole).sum() > 20  # jitter opened gaps of a few samples...
    src = open_source(path)
    # ...and closed others: the plan drops samples of traces that later traces overlap
    assert sum(n for _, _, n in src.traces) > src.n_samples - np.isnan(whole).sum()
    rng = np.random.default_rng(seed)
    for _ in range(60):  # any block reads as the same slice of the merged trace
        a = int(rng.integers(0, src.n_samples))
        b = min(a + int(rng.integers(1, 3000)), src.n_samples)
        np.testing.assert_array_equal(src.read(a, b)[:, 0], whole[a:b])
    summary = open_timeline(path).summary()
    assert summary["gaps"]["count"] == len(np.flatnonzero(np.diff(np.isnan(whole).astype(int)) == 1))
    assert summary["gaps"]["between_files"] == 0
    assert summary["coverage_seconds"] == (len(whole) - np.isnan(whole).sum()) / SR


def test_fragmented_miniseed_through_the_store_matches_obspy(tmp_path):
    path, _ = jittered_miniseed(tmp_path / "frag.mseed", seed=5)
    _, merged = obspy_merged(path)
    samples = np.ma.filled(np.ma.asarray(next(iter(merged.values())).data, dtype=np.float32), np.nan)
    from data_access import power_spectrogram

    power = open_store(ingest(open_timeline(path), tmp_path / "f.zarr", CONFIG, time_chunk=8, progress=False))[
        "0"
    ].power
    np.testing.assert_array_equal(power.values, stored(power_spectrogram(samples, CONFIG)))


# -- bad files ---------------------------------------------------------------------------------


def make_bad(folder: Path, kind: str) -> tuple[Path, str]:
    """A bad file named like its neighbours, and the reason the error gives."""
    path = folder / "20260301_120002.wav"
    if kind == "corrupt":
        path.write_bytes(b"\x00garbage" * 100)
        return path, r"cannot read '20260301_120002.wav' as audio: "
    if kind == "empty":
        path.touch()
        return path, r"'20260301_120002.wav' is empty \(0 bytes\)"
    if kind == "zero-length":
        sf.write(path, np.zeros(0, np.float32), SR)
        return path, r"'20260301_120002.wav' contains no audio samples"
    if kind == "truncated-to-nothing":
        sf.write(path, noise(1.0), SR, subtype="PCM_16")
        path.write_bytes(path.read_bytes()[:44])  # the header promises 1 s, no sample is left
        return path, r"'20260301_120002.wav' contains no audio samples"
    if kind == "wrong-format":
        path = folder / "20260301_120002.txt"
        path.write_text("field notes")
        return path, r"cannot read '20260301_120002.txt': suffix '.txt' is not one of"
    if kind == "broken-link":
        path.symlink_to(folder / "gone.wav")
        return path, r"'.*20260301_120002.wav' is a broken link \(it points to '.*gone.wav'\)"
    if kind == "no-start-time":
        path = folder / "untitled.wav"
        sf.write(path, noise(1.0), SR)
        return path, r"'untitled.wav' has no start time: no BWF 'bext' origination time in its header"
    raise AssertionError(kind)


BAD_KINDS = ["corrupt", "empty", "zero-length", "truncated-to-nothing", "wrong-format", "broken-link", "no-start-time"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_skip_bad_skips_each_kind_of_bad_file(tmp_path, kind, caplog):
    folder = tmp_path / "d"
    folder.mkdir()
    good = [folder / "20260301_120000.wav", folder / "20260301_120004.wav"]
    for k, path in enumerate(good):
        sf.write(path, noise(1.0, seed=k), SR)
    bad, reason = make_bad(folder, kind)
    inputs = [str(folder / "*")]  # a glob picks up everything, whatever its suffix
    with pytest.raises((FormatError, FileNotFoundError), match=reason):
        open_timeline(inputs)
    with caplog.at_level(logging.WARNING):
        timeline = open_timeline(inputs, skip_bad=True)
    assert [s.path for s in timeline.sources] == good and timeline.offsets == (0, 4 * SR)
    skipped = timeline.summary()["skipped"]
    assert [s["path"] for s in skipped] == [str(bad)]
    assert f"skipping {bad.name}: " in caplog.text


def test_every_file_bad_is_an_error(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    make_bad(folder, "empty")
    (folder / "20260301_120009.flac").write_bytes(b"fLaC\x00\x00\x00")
    with pytest.raises(FormatError, match=r"^none of the 2 input files can be used; the first: .*is empty"):
        open_timeline(str(folder / "*"), skip_bad=True)


# -- the console script -----------------------------------------------------------------------


def test_cli_skip_bad_and_info_shows_the_deployment(cli, moth, tmp_path):
    out = tmp_path / "moth.zarr"
    refused = run(cli, "ingest", str(moth), "-o", str(out), "--n-fft", "256", "--no-progress")
    assert refused.returncode == 1 and not out.exists()
    assert refused.stderr.strip().splitlines() == [f"spectral-atlas: error: {REASON}"]
    done = run(cli, "ingest", str(moth), "-o", str(out), "--n-fft", "256", "--skip-bad", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == [f"spectral-atlas: WARNING: skipping {moth_name(CORRUPT)}: {REASON}"]
    summary = json.loads(run(cli, "info", str(out), "--json").stdout)["deployment"]
    assert (summary["n_files"], summary["gaps"]["count"], summary["coverage_seconds"]) == (34, 33, 68.0)
    assert [s["path"] for s in summary["skipped"]] == [str(moth / moth_name(CORRUPT))]
    text = run(cli, "info", str(out)).stdout
    assert "deployment  34 files, 68.000 s of 177.000 s covered (38.4 %)" in text
    assert "  gaps      33 (33 between files), 109.000 s, largest 8.000 s at 2026-03-01T12:00:42" in text
    assert f"  skipped   1: {REASON}" in text


def test_cli_max_overlap_and_sample_rate(cli, write_audio, tmp_path):
    a = write_audio(ooi_name("a", 0), tone(1000.0, 3.0, sr=16000), sr=16000)
    b = write_audio(ooi_name("b", 1.5), tone(1000.0, 3.0))
    out = tmp_path / "o.zarr"
    args = [str(a), str(b), "-o", str(out), "--n-fft", "256", "--no-progress"]
    rates = run(cli, "ingest", *args)
    assert rates.returncode == 1 and "pass --sample-rate HZ" in rates.stderr and len(rates.stderr.splitlines()) == 1
    overlap = run(cli, "ingest", *args, "--sample-rate", "8000")
    assert overlap.returncode == 1 and not out.exists()
    assert f"{b.name!r} overlaps {a.name!r} by 1.500 s, more than max_overlap=1 s" in overlap.stderr
    done = run(cli, "ingest", *args, "--sample-rate", "8000", "--max-overlap", "1.5")
    assert done.returncode == 0, done.stderr
    assert f"{b.name} overlaps {a.name} by 1.500 s; the later file's samples are used there" in done.stderr
    summary = json.loads(run(cli, "info", str(out), "--json").stdout)["deployment"]
    assert summary["resampled"] == [{"path": str(a), "from_sample_rate": 16000.0}]
    assert summary["overlaps"]["list"] == [{"earlier": str(a), "later": str(b), "seconds": 1.5}]
    text = run(cli, "info", str(out)).stdout
    assert f"  overlaps  1, 1.500 s: {b.name} over {a.name} 1.500 s" in text
    assert "  rates     8000 Hz x1, 16000 Hz x1; 1 resampled to 8000 Hz" in text
