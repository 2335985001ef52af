"""The generated demo deployment: files, events table, determinism, and that the events are really there."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import soundfile as sf

import data_access.demo as demo
from data_access import StftConfig, open_store, open_timeline, power_spectrogram
from data_access.demo import EVENT_COLUMNS, EVENT_KINDS, DemoAudio, make_demo, read_events, write_demo_audio
from data_access.errors import ParameterError, StoreExistsError

HOURS = 0.05  # three minutes: still one event of every kind
FS = 64000  # whistles and clicks need it
START = np.datetime64("2026-01-15T00:00:00", "ns")
SOUNDS = ["ship", "fin_whale", "whistles", "clicks", "rain"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> DemoAudio:
    # One-minute files give three files: a gap between the first two, a seamless join between the last two.
    return write_demo_audio(tmp_path_factory.mktemp("demo"), hours=HOURS, file_minutes=1)


@pytest.fixture(scope="module")
def analysis(deployment):
    """Power of the whole deployment, frame spans in absolute time, and the events."""
    timeline = open_timeline(deployment.files)
    config = StftConfig(n_fft=8192, hop_length=4096)  # 7.8 Hz bins: fine enough for 20 Hz pulses
    power = power_spectrogram(timeline.read(0, timeline.n_samples), config)
    starts = np.arange(power.shape[1]) * config.hop_length
    ns = 1e9 / timeline.sample_rate
    frame_start = START + (starts * ns).astype("timedelta64[ns]")
    frame_end = START + ((starts + config.n_fft) * ns).astype("timedelta64[ns]")
    events = read_events(deployment.events)
    return power, config.frequencies(timeline.sample_rate), frame_start, frame_end, events


def read_int16(files) -> list[np.ndarray]:
    return [sf.read(f, dtype="int16")[0] for f in files]


def test_files_are_named_by_their_start_times(deployment):
    assert deployment.start_time == START
    assert deployment.sample_rate == FS
    assert [f.name for f in deployment.files] == [
        "HYD01_20260115_000000.flac",
        "HYD01_20260115_000109.flac",  # 60 s of audio, then a 9 s gap
        "HYD01_20260115_000209.flac",
    ]
    timeline = open_timeline(deployment.files[0].parent)  # the directory, no options
    assert [s.path.name for s in timeline.sources] == [f.name for f in deployment.files]
    assert {s.start_time_from for s in timeline.sources} == {"filename"}
    assert timeline.start_time == START
    assert timeline.duration == pytest.approx(HOURS * 3600)
    for f in deployment.files:
        info = sf.info(f)
        assert (info.format, info.subtype, info.channels, info.samplerate) == ("FLAC", "PCM_16", 1, FS)


def test_the_gap_is_in_the_timeline_and_the_table(deployment):
    timeline = open_timeline(deployment.files[0].parent)
    (gap,) = timeline.gaps()
    assert gap == (60 * FS, 69 * FS)
    (row,) = [e for e in read_events(deployment.events) if e.kind == "gap"]
    assert (row.start, row.end) == (START + np.timedelta64(60, "s"), START + np.timedelta64(69, "s"))
    samples = timeline.read(gap[0] - 10, gap[1] + 10)
    assert np.isfinite(samples[:10]).all() and np.isfinite(samples[-10:]).all()
    assert np.isnan(samples[10:-10]).all()


def test_events_table(deployment):
    with open(deployment.events, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(deployment.events, newline="") as f:
        assert tuple(next(csv.reader(f))) == EVENT_COLUMNS
    assert {r["kind"] for r in rows} == set(EVENT_KINDS)
    iso = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
    assert all(iso.fullmatch(r["start"]) and iso.fullmatch(r["end"]) for r in rows)
    assert all(r["note"] for r in rows)

    events = read_events(deployment.events)
    end = START + np.timedelta64(int(HOURS * 3600), "s")
    (gap,) = [e for e in events if e.kind == "gap"]
    assert [e.start for e in events] == sorted(e.start for e in events)
    for e in events:
        assert START <= e.start < e.end <= end, e
        assert 0 <= e.f_low_hz < e.f_high_hz <= FS / 2, e
        if e.kind != "gap":
            assert e.end <= gap.start or e.start >= gap.end, f"{e} overlaps the gap"


def test_no_clipping_and_not_silent(deployment):
    for samples in read_int16(deployment.files):
        assert np.abs(samples.astype(np.int32)).max() < 16384  # under half of full scale
        assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 3  # well above the last bit


def test_levels_are_scaled_down_to_fit_the_headroom(tmp_path, monkeypatch):
    loud = write_demo_audio(tmp_path / "loud", hours=0.02)
    monkeypatch.setattr(demo, "_PEAK_LIMIT", 0.01)  # far below the worst case of the real levels
    quiet = write_demo_audio(tmp_path / "quiet", hours=0.02)
    loud_peak = max(np.abs(x.astype(np.int32)).max() for x in read_int16(loud.files))
    quiet_peak = max(np.abs(x.astype(np.int32)).max() for x in read_int16(quiet.files))
    assert quiet_peak < 0.01 * 32768 < loud_peak


def test_same_seed_same_samples_other_seed_other_samples(tmp_path):
    a = write_demo_audio(tmp_path / "a", hours=0.02, seed=3)
    b = write_demo_audio(tmp_path / "b", hours=0.02, seed=3)
    c = write_demo_audio(tmp_path / "c", hours=0.02, seed=4)
    assert [f.name for f in a.files] == [f.name for f in b.files] == [f.name for f in c.files]
    for x, y, z in zip(read_int16(a.files), read_int16(b.files), read_int16(c.files), strict=True):
        np.testing.assert_array_equal(x, y)
        assert len(x) == len(z) and np.mean(x != z) > 0.9
    assert a.events.read_text() == b.events.read_text()
    assert a.events.read_text() != c.events.read_text()


def test_block_size_does_not_change_the_samples(deployment, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "_BLOCK_SECONDS", 3)
    again = write_demo_audio(tmp_path, hours=HOURS, file_minutes=1)
    for x, y in zip(read_int16(deployment.files), read_int16(again.files), strict=True):
        np.testing.assert_array_equal(x, y)


def test_no_seam_where_files_join(deployment):
    # The last two files are contiguous: the step across the join is like any other step.
    first, second = (sf.read(f)[0] for f in deployment.files[1:])
    steps = np.diff(np.concatenate([first[-FS // 10 :], second[: FS // 10]]))
    across = abs(steps[FS // 10 - 1])
    assert across < 4 * steps.std()


@pytest.mark.parametrize("kind", SOUNDS)
def test_events_stand_out_in_their_band(analysis, kind):
    power, freq, frame_start, frame_end, events = analysis
    # "Outside": frames that touch no event and no gap.
    quiet = np.isfinite(power[0])
    for e in events:
        quiet &= (frame_end <= e.start) | (frame_start >= e.end)
    assert quiet.sum() > 100
    df = freq[1]
    mine = [e for e in events if e.kind == kind]
    assert mine
    for e in mine:
        band = (freq >= e.f_low_hz - df) & (freq <= e.f_high_hz + df)
        inside = (frame_start >= e.start) & (frame_end <= e.end)
        energy = power[band].sum(axis=0)
        gain_db = 10 * np.log10(energy[inside].mean() / energy[quiet].mean())
        assert gain_db > 6, f"{kind} at {e.start} is only {gain_db:.1f} dB above the ambient in its band"


def test_a_low_sample_rate_leaves_out_what_it_cannot_hold(tmp_path):
    audio = write_demo_audio(tmp_path, hours=0.02, sample_rate=16000)
    kinds = {e.kind for e in read_events(audio.events)}
    assert "clicks" not in kinds
    assert {"ship", "fin_whale", "rain", "gap"} <= kinds
    assert all(sf.info(f).samplerate == 16000 for f in audio.files)
    assert all(e.f_high_hz <= 8000 for e in read_events(audio.events))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"hours": 0}, "hours=0 must be a positive number"),
        ({"hours": -1.0}, "must be a positive number"),
        ({"hours": float("nan")}, "must be a positive number"),
        ({"hours": "2"}, "hours='2' must be a number"),
        ({"hours": 0.001}, "too short"),
        ({"seed": -1}, "seed=-1 must be a non-negative integer"),
        ({"seed": 1.5}, "seed=1.5"),
        ({"sample_rate": 4000}, "sample_rate=4000 must be an integer of at least 8000"),
        ({"sample_rate": 64000.0}, "sample_rate=64000.0"),
        ({"file_minutes": 0}, "file_minutes=0"),
        ({"start": "2026-01-15T00:00:00.5"}, "must be a whole second"),
        ({"start": "yesterday-ish"}, "cannot read"),
    ],
)
def test_bad_arguments(tmp_path, options, match):
    with pytest.raises(ParameterError, match=match):
        write_demo_audio(tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_make_demo_writes_a_store_and_refuses_to_overwrite(tmp_path, monkeypatch):
    directory = tmp_path / "new" / "demo"
    path = make_demo(directory, hours=0.02, progress=False)
    assert path == directory / "demo.zarr"
    assert (directory / "events.csv").exists()
    tree = open_store(path)
    assert "0" in tree.children
    assert (tree.attrs["n_fft"], tree.attrs["hop_length"], tree.attrs["sample_rate"]) == (4096, 2048, FS)
    assert np.datetime64(tree.attrs["start_time"]) == START
    assert tree.attrs["duration_seconds"] == pytest.approx(72)
    assert json.loads(tree.attrs["gaps_seconds"]) == [[34.0, 38.0]]  # 72 s: 34 s, a 4 s gap, 34 s
    tree.close()

    def no_audio(*args, **kwargs):
        raise AssertionError("the existing store must be refused before any audio is generated")

    with monkeypatch.context() as m:
        m.setattr(demo, "write_demo_audio", no_audio)
        with pytest.raises(StoreExistsError, match="already exists"):
            make_demo(directory, hours=0.02)

    path = make_demo(directory, hours=0.02, seed=1, overwrite=True, progress=False, config=StftConfig(n_fft=1024))
    tree = open_store(path)
    assert tree.attrs["n_fft"] == 1024
    tree.close()


def test_make_demo_checks_hours_before_touching_the_disk(tmp_path):
    with pytest.raises(ParameterError, match="hours"):
        make_demo(tmp_path / "never", hours=0)
    assert not (tmp_path / "never").exists()
