"""Audio sources and the timeline: real files, real gaps, real damage."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import obspy
import pytest
import soundfile as sf
from conftest import SR, noise, tone

from data_access import FormatError, ParameterError, SourceNotFoundError, open_source, open_timeline
from data_access.times import samples_to_timedelta, time_from_filename, to_datetime64

T0 = np.datetime64("2026-03-01T12:00:00", "ns")


def write_mseed(path: Path, pieces: list[tuple[float, np.ndarray]], sr: float = SR, station: str = "HYD") -> Path:
    """One trace per (start offset in seconds, int32 samples) piece."""
    start = obspy.UTCDateTime(str(T0))
    traces = [
        obspy.Trace(
            data.astype(np.int32),
            header={"sampling_rate": sr, "starttime": start + offset, "network": "OO", "station": station},
        )
        for offset, data in pieces
    ]
    obspy.Stream(traces).write(str(path), format="MSEED", encoding="STEIM2")
    return path


def test_read_any_range(write_audio):
    y = noise(5.0)
    src = open_source(write_audio("a.wav", y), start_time=T0)
    assert (src.sample_rate, src.n_samples, src.channels, src.start_time) == (SR, len(y), 1, T0)
    np.testing.assert_array_equal(src.read(12345, 12400)[:, 0], y[12345:12400])
    assert src.read(7, 7).shape == (0, 1)
    with pytest.raises(ParameterError, match=r"sample range \[0, 40001\) is outside 0..40000 of 'a.wav'"):
        src.read(0, 40001)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".aiff"])
def test_formats_read_by_libsndfile(write_audio, suffix):
    y = tone(440.0, 2.0)
    src = open_source(write_audio("a" + suffix, y), start_time=T0)
    assert src.n_samples == len(y)
    got = src.read(1000, 3000)[:, 0]
    tolerance = 0.05 if suffix == ".ogg" else 1e-4  # Vorbis is lossy
    assert np.abs(got - y[1000:3000]).max() < tolerance


def test_mp3_is_read(tmp_path):
    y = tone(440.0, 2.0, sr=48000)
    sf.write(tmp_path / "a.mp3", y, 48000)
    src = open_source(tmp_path / "a.mp3", start_time=T0)
    assert src.sample_rate == 48000 and src.n_samples > 0.9 * len(y)
    assert np.isfinite(src.read(0, 1000)).all()


def test_multichannel_channel_and_mean(write_audio):
    left, right = tone(500.0, 1.0), tone(1500.0, 1.0, amp=0.25)
    path = write_audio("st.wav", np.stack([left, right], axis=1))
    for channel, expected in [(0, left), (1, right), ("mean", (left + right) / 2)]:
        timeline = open_timeline(path, start_time=T0, channel=channel)
        np.testing.assert_allclose(timeline.read(0, 500), expected[:500], atol=1e-6)
    with pytest.raises(ParameterError, match=r"channel=2 is out of range: 'st.wav' has channels 0..1"):
        open_timeline(path, start_time=T0, channel=2)


def test_timeline_orders_files_by_time_and_keeps_gaps(write_audio):
    """Names give start times; a missing stretch reads as NaN, never closed up."""
    a, b, c = noise(10.0, seed=1), noise(10.0, seed=2), noise(10.0, seed=3)
    # given out of order; file b starts 15 s after a (5 s gap), c right after b
    paths = [
        write_audio("rec_20260301_120025.wav", c),
        write_audio("rec_20260301_120000.wav", a),
        write_audio("rec_20260301_120015.wav", b),
    ]
    timeline = open_timeline(paths)
    assert timeline.start_time == T0
    assert [s.path.name for s in timeline.sources] == sorted(p.name for p in paths)
    assert timeline.offsets == (0, 15 * SR, 25 * SR)
    assert timeline.gaps() == [(10 * SR, 15 * SR)]
    assert all(s.start_time_from == "filename" for s in timeline.sources)
    whole = timeline.read(0, timeline.n_samples)
    np.testing.assert_array_equal(whole[: 10 * SR], a)
    assert np.isnan(whole[10 * SR : 15 * SR]).all()
    np.testing.assert_array_equal(whole[15 * SR : 25 * SR], b)
    np.testing.assert_array_equal(whole[25 * SR :], c)
    # a read that straddles the gap and a file boundary
    np.testing.assert_array_equal(timeline.read(24 * SR, 26 * SR), np.concatenate([b[-SR:], c[:SR]]))


def test_timeline_overlap_later_file_wins(write_audio, caplog):
    a, b = noise(10.0, seed=1), noise(10.0, seed=2)
    paths = [write_audio("x_20260301_120000.wav", a), write_audio("x_20260301_120008.wav", b)]
    with caplog.at_level(logging.WARNING):
        timeline = open_timeline(paths, max_overlap=2.0)
    assert "x_20260301_120008.wav overlaps x_20260301_120000.wav by 2.000 s" in caplog.text
    whole = timeline.read(0, timeline.n_samples)
    assert len(whole) == 18 * SR
    np.testing.assert_array_equal(whole[8 * SR :], b)


def test_start_time_given_for_several_files_makes_them_continuous(write_audio):
    paths = [write_audio("one.wav", noise(2.0)), write_audio("two.wav", noise(3.0))]
    timeline = open_timeline(paths, start_time="2026-03-01T12:00:00Z")
    assert timeline.offsets == (0, 2 * SR) and timeline.gaps() == []


def test_no_start_time_is_an_error_naming_what_was_tried(write_audio):
    """No header time, no pattern match, no start_time: never a silent guess from the modification time."""
    path = write_audio("untimed.wav", noise(4.0))
    message = (
        r"'untimed.wav' has no start time: no BWF 'bext' origination time in its header, its name matches none "
        r"of the time patterns \(%Y-%m-%dT%H:%M:%S.%f, %Y%m%dT%H%M%S, %Y%m%d_%H%M%S, %y%m%d%H%M%S\) and no "
        r"start time was given; pass --time-pattern PATTERN \(time_pattern=\) or --start-time TIME"
    )
    with pytest.raises(FormatError, match=message):
        open_source(path)
    with pytest.raises(FormatError, match=r"'untimed.flac' has no start time: FLAC headers carry no time, .*%Y-%j"):
        open_timeline(
            [write_audio("dated_20260301_120000.flac", noise(1.0)), write_audio("untimed.flac", noise(1.0))],
            time_pattern="%Y-%j",
        )
    assert open_timeline(path, start_time=T0).sources[0].start_time_from == "user"


@pytest.mark.parametrize(
    ("name", "pattern", "expected"),
    [
        ("20260115_093000.WAV", None, "2026-01-15T09:30:00"),
        ("6713.260115093000.wav", None, "2026-01-15T09:30:00"),
        ("OO-HYEA1--YDH-2026-01-15T09:30:00.250000.mseed", None, "2026-01-15T09:30:00.25"),
        ("site3_2026-015_0930.flac", "%Y-%j_%H%M", "2026-01-15T09:30:00"),
        ("no-time-here.wav", None, None),
    ],
)
def test_time_from_filename(name, pattern, expected):
    from data_access.sources import TIME_PATTERNS

    patterns = ([pattern] if pattern else []) + list(TIME_PATTERNS.values())
    got = time_from_filename(name, patterns)
    assert got == (None if expected is None else np.datetime64(expected, "ns"))


def test_miniseed_gap_is_nan_exactly_and_times_stay_true(tmp_path):
    rng = np.random.default_rng(0)
    first, second = rng.integers(-1000, 1000, 3 * SR), rng.integers(-1000, 1000, 2 * SR)
    gap = 1234  # samples
    path = write_mseed(tmp_path / "hyd.mseed", [(0.0, first), ((len(first) + gap) / SR, second)])
    src = open_source(path)
    assert src.start_time_from == "header" and src.start_time == T0
    assert src.n_samples == len(first) + gap + len(second)
    whole = src.read(0, src.n_samples)[:, 0]
    np.testing.assert_array_equal(whole[: len(first)], first)
    assert np.isnan(whole[len(first) : len(first) + gap]).all()
    np.testing.assert_array_equal(whole[len(first) + gap :], second)
    # a partial read inside the second trace is placed exactly
    np.testing.assert_array_equal(src.read(len(first) + gap + 10, len(first) + gap + 20)[:, 0], second[10:20])


def test_miniseed_matches_obspy_merge_on_its_own_example_file():
    """obspy ships a real MiniSEED with gaps: our reading equals obspy's merge, NaN for the masked gaps."""
    path = Path(obspy.__file__).parent / "io/mseed/tests/data/gaps.mseed"
    merged = obspy.read(str(path)).merge(method=1)[0]
    expected = np.ma.filled(np.ma.asarray(merged.data, dtype=np.float64), np.nan)
    src = open_source(path)
    assert src.n_samples == len(expected)
    assert src.start_time == to_datetime64(merged.stats.starttime.datetime)
    got = src.read(0, src.n_samples)[:, 0]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(got[~np.isnan(got)], expected[~np.isnan(expected)])
    assert np.isnan(got).sum() > 0


def test_truncated_wav_reads_what_is_there_and_warns(tmp_path, caplog):
    y = noise(10.0)
    full = tmp_path / "full.wav"
    sf.write(full, y, SR, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    data = full.read_bytes()
    cut.write_bytes(data[: 44 + 2 * 6 * SR])  # header + 6 s of 16-bit samples
    with caplog.at_level(logging.WARNING):
        src = open_source(cut, start_time=T0)
    assert src.n_samples == 6 * SR and src.missing_samples == 4 * SR
    assert "cut.wav is truncated: reading the 6.000 s that are there, 4.000 s (32000 samples)" in caplog.text
    np.testing.assert_allclose(src.read(0, src.n_samples)[:, 0], sf.read(full, dtype="float32")[0][: 6 * SR])


def test_truncated_flac_reads_what_is_there_and_warns(tmp_path, caplog):
    y = noise(10.0)
    full = tmp_path / "full.flac"
    sf.write(full, y, SR)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        src = open_source(cut, start_time=T0)
    assert 3 * SR < src.n_samples < 7 * SR
    assert "cut.flac is truncated" in caplog.text
    reference = sf.read(full, dtype="float32")[0]
    np.testing.assert_array_equal(src.read(0, src.n_samples)[:, 0], reference[: src.n_samples])


def _make_bad(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "nothere.wav"
    if kind == "empty":
        (tmp_path / "empty.wav").touch()
        return tmp_path / "empty.wav"
    if kind == "corrupt":
        (tmp_path / "corrupt.flac").write_bytes(b"this is not audio at all " * 40)
        return tmp_path / "corrupt.flac"
    if kind == "wrong-format":
        (tmp_path / "notes.txt").write_text("hello")
        return tmp_path / "notes.txt"
    if kind == "zero-length":
        sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), SR)
        return tmp_path / "zero.wav"
    if kind == "broken-link":
        (tmp_path / "link.wav").symlink_to(tmp_path / "gone.wav")
        return tmp_path / "link.wav"
    if kind == "directory":
        (tmp_path / "adir").mkdir()
        return tmp_path / "adir"
    raise AssertionError(kind)


BAD_INPUTS = [
    ("missing", SourceNotFoundError, r"no such file: '.*nothere.wav'"),
    ("empty", FormatError, r"'empty.wav' is empty \(0 bytes\)"),
    ("corrupt", FormatError, r"cannot read 'corrupt.flac' as audio: Format not recognised"),
    ("wrong-format", FormatError, r"cannot read 'notes.txt': suffix '.txt' is not one of \["),
    ("zero-length", FormatError, r"'zero.wav' contains no audio samples"),
    ("broken-link", SourceNotFoundError, r"'.*link.wav' is a broken link \(it points to '.*gone.wav'\)"),
]


@pytest.mark.parametrize(("kind", "error", "match"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_errors(tmp_path, kind, error, match):
    with pytest.raises(error, match=match):
        open_source(_make_bad(tmp_path, kind), start_time=T0)


def test_directory_without_audio_is_an_error(tmp_path):
    _make_bad(tmp_path, "directory")
    with pytest.raises(SourceNotFoundError, match=r"directory '.*adir' contains no audio files"):
        open_timeline(tmp_path / "adir")


def test_glob_matching_nothing_is_an_error(tmp_path):
    with pytest.raises(SourceNotFoundError, match=r"pattern '.*\*.flac' matches no files"):
        open_timeline(str(tmp_path / "*.flac"))


def test_mixed_sample_rates_name_the_files(write_audio):
    paths = [
        write_audio("a_20260301_120000.wav", noise(1.0)),
        write_audio("b_20260301_120001.wav", noise(1.0), sr=16000),
    ]
    with pytest.raises(FormatError, match=r"different sample rates \(8000 Hz: a_.*\.wav; 16000 Hz: b_.*\.wav\)"):
        open_timeline(paths)


def test_directories_are_searched_recursively(write_audio, tmp_path):
    (tmp_path / "day1").mkdir()
    write_audio("day1/r_20260301_120000.wav", noise(1.0))
    write_audio("r_20260301_120001.flac", noise(1.0))
    timeline = open_timeline(tmp_path)
    assert [s.path.name for s in timeline.sources] == ["r_20260301_120000.wav", "r_20260301_120001.flac"]


def test_exact_nanosecond_times_far_into_a_recording():
    # 30 days at 64 kHz: the offset of the last sample is still exact to the nanosecond
    n = 30 * 86400 * 64000 - 1
    assert samples_to_timedelta(n, 64000) == np.timedelta64(30 * 86400 * 10**9 - 15625, "ns")
