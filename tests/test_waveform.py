"""Waveform summaries (format 3): min, max and RMS of the samples per column, their pyramid, reads, upgrades.

Every level-0 column is checked against numpy on the exact samples it
summarises (read back from the files the tests write), every level above
against its reduction of the level below, and stores written in pieces
(append, resume after ``kill -9``, upgrade) against a store written at once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import zarr
from conftest import SR, chirp, noise, tone
from test_append_resume import assert_same_store, finished_blocks, interrupt
from test_store import digest

from data_access import (
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
from data_access.plan import plan_ingest
from data_access.query import CACHE
from data_access.schema import FORMAT_VERSION, PYRAMID_FACTOR, WAVE_NAMES, wave_span
from data_access.store import StoreReader, StoreWriter
from data_access.waveform import build_wave_levels, reduce_wave, wave_kept

# n_fft - hop odd (67): a segment starts 33 samples into its frame, and is centred half a sample before it.
CONFIG = StftConfig(n_fft=100, hop_length=33)
CHUNK = 64
T0 = np.datetime64("2026-03-01T12:00:00", "ns")
FORMAT1 = Path(__file__).parent / "data" / "format1.zarr"


def at(seconds: float) -> np.datetime64:
    return T0 + np.timedelta64(int(round(seconds * 1e9)), "ns")


def stamped(seconds: float) -> str:
    """A file name holding its start time, 12:00 + ``seconds``, to the microsecond."""
    return f"w-2026-03-01T12:{int(seconds) // 60:02d}:{seconds % 60:09.6f}.wav"


def signal_of(seconds: float, seed: int) -> np.ndarray:
    """A chirp growing louder over noise, with a NaN and an infinite sample (missing, as gaps are)."""
    y = chirp(200, 3000, seconds, amp=0.4) * np.linspace(0.1, 1.0, int(seconds * SR), dtype=np.float32)
    y += noise(seconds, amp=0.02, seed=seed)
    y[int(1.2345 * SR)] = np.nan
    y[int(2.5 * SR) + 5] = np.inf  # (not a frame's first sample, whose window is 0: inf * 0 warns in the STFT)
    return y


def expected_level0(samples: np.ndarray, config: StftConfig, n_columns: int) -> tuple[np.ndarray, ...]:
    """Numpy's min, max and RMS of the finite samples of each column's segment, one segment at a time."""
    out = np.full((3, n_columns), np.nan, np.float32)
    for j in range(n_columns):
        a, b = wave_span(config, j, j + 1)
        seg = samples[a:b]
        seg = seg[np.isfinite(seg)].astype(np.float64)
        if seg.size:
            out[:, j] = seg.min(), seg.max(), np.sqrt(np.sum(seg * seg) / seg.size)
    return tuple(out)


def expected_next(wave: tuple[np.ndarray, ...], factor: int) -> tuple[np.ndarray, ...]:
    """Min of min, max of max and the root of the mean of squared RMS over each group's non-NaN columns, in numpy."""
    n = wave[0].shape[-1]
    groups = -(-n // factor)

    def grouped(x):
        padded = np.full(groups * factor, np.nan)
        padded[:n] = x
        return padded.reshape(groups, factor)

    lo, hi, rms = (grouped(x) for x in wave)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN group (a gap) is NaN, as expected
        return (
            np.nanmin(lo, axis=1).astype(np.float32),
            np.nanmax(hi, axis=1).astype(np.float32),
            np.sqrt(np.nanmean(rms * rms, axis=1)).astype(np.float32),
        )


def waves(tree, level: str) -> tuple[np.ndarray, ...]:
    return tuple(tree[level][name].values for name in WAVE_NAMES)


def as_format2(store: Path, into: Path) -> Path:
    """A copy of a format-3 store as a format-2 store: without its waveform arrays, and ``format_version`` 2.

    No code writes format 2 any more, so one is made from what format 3 adds to it: the
    waveform arrays (``k/wave_*``, each a folder and an entry in the root's consolidated
    metadata) and the version. Everything else of format 2 is as format 3 writes it.
    """
    shutil.copytree(store, into)
    document = json.loads((into / "zarr.json").read_text())
    document["attributes"]["format_version"] = 2
    meta = document["consolidated_metadata"]["metadata"]
    for key in [k for k in meta if k.rsplit("/", 1)[-1] in WAVE_NAMES]:
        del meta[key]
        shutil.rmtree(into / key)
    (into / "zarr.json").write_text(json.dumps(document))
    return into


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Two files, 0-20 s and 22.5-40 s (a gap of 2.5 s, off the hop grid), and their store: three levels."""
    d = tmp_path_factory.mktemp("wave")
    files = [d / stamped(0), d / stamped(22.5)]
    sf.write(files[0], signal_of(20.0, seed=1), SR, subtype="FLOAT")
    sf.write(files[1], signal_of(17.5, seed=2), SR, subtype="FLOAT")
    timeline = open_timeline(files)
    store = ingest(timeline, d / "s.zarr", CONFIG, time_chunk=CHUNK, progress=False)
    return timeline, store


# ----------------------------------------------------------------------------- level 0 and the pyramid


def test_level0_is_numpys_min_max_and_rms_of_each_segments_samples(recording):
    timeline, store = recording
    tree = open_store(store)
    samples = timeline.read(0, timeline.n_samples)  # NaN over the gap and at the files' NaN and inf
    n = tree["0"].sizes["time"]
    assert n == CONFIG.n_frames(timeline.n_samples) and len(tree.children) == 3
    got, want = waves(tree, "0"), expected_level0(samples, CONFIG, n)
    for name, g, w in zip(WAVE_NAMES, got, want, strict=True):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, w, err_msg=name)  # the first and last columns among them
    # The columns the test is about are there: a segment across the gap's edge is the finite part's...
    gap = (20 * SR, int(22.5 * SR))
    edge = next(j for j in range(n) if wave_span(CONFIG, j, j + 1)[0] < gap[0] < wave_span(CONFIG, j, j + 1)[1])
    a, b = wave_span(CONFIG, edge, edge + 1)
    assert np.isfinite(got[0][edge]) and got[1][edge] == samples[a : gap[0]].max()
    # ...one inside it is NaN, and the sample at 1.2345 s is left out of its column, not NaN
    inside = (gap[0] + 200) // CONFIG.hop_length
    assert all(np.isnan(x[inside]) for x in got)
    nan_column = next(
        j for j in range(n) if wave_span(CONFIG, j, j + 1)[0] <= int(1.2345 * SR) < wave_span(CONFIG, j, j + 1)[1]
    )
    assert all(np.isfinite(x[nan_column]) for x in got)
    assert wave_span(CONFIG, 0, 1) == (33, 66) and wave_span(CONFIG, n - 1, n)[1] <= timeline.n_samples
    # every column shares power's time axis: its centre within half a sample of the segment's
    centres = (tree["0"].time.values - T0) / np.timedelta64(1, "ns") * 1e-9 * SR
    mids = np.array([np.mean(wave_span(CONFIG, j, j + 1)) for j in (0, n - 1)])
    np.testing.assert_allclose(centres[[0, -1]], mids, atol=0.5 + 1e-6)


def test_each_level_is_the_reduction_of_the_level_below(recording):
    _, store = recording
    tree = open_store(store)
    level0 = waves(tree, "0")
    for k in range(1, len(tree.children)):
        got, below = waves(tree, str(k)), waves(tree, str(k - 1))
        assert got[0].shape == tree[str(k)].frame_count.shape  # the level's time axis
        for name, g, w in zip(WAVE_NAMES, got, expected_next(below, PYRAMID_FACTOR), strict=True):
            np.testing.assert_array_equal(g, w, err_msg=f"{k}/{name}")
        # min and max are those of level 0 over the level's frames; RMS too, where no column is a gap
        step = PYRAMID_FACTOR**k
        direct = expected_next(level0, step)
        np.testing.assert_array_equal(got[0], direct[0])
        np.testing.assert_array_equal(got[1], direct[1])
        n0 = len(level0[2])  # (a short last group's RMS weighs the columns below it, not level 0's)
        whole = np.array(
            [
                (j + 1) * step <= n0 and np.isfinite(level0[2][j * step : (j + 1) * step]).all()
                for j in range(len(got[2]))
            ]
        )
        assert whole.sum() > 0.8 * len(whole)
        np.testing.assert_allclose(got[2][whole], direct[2][whole], rtol=1e-6)


def test_reduce_wave_by_hand():
    nan = np.nan
    lo = np.array([[-1, -3, nan, -2, nan, nan, nan, nan, -5]], np.float32)
    hi = -lo
    rms = np.array([[3, 4, nan, 0, nan, nan, nan, nan, 2]], np.float32)
    got = reduce_wave((lo, hi, rms), 4)
    np.testing.assert_array_equal(got[0], [[-3, nan, -5]])
    np.testing.assert_array_equal(got[1], [[3, nan, 5]])
    np.testing.assert_array_equal(got[2], np.array([[np.sqrt(25 / 3), nan, 2]], np.float32))  # 3 columns, not 4


def test_a_mean_store_summarises_the_mean_of_the_channels(tmp_path):
    y = np.stack([tone(500.0, 6.0, amp=0.5), noise(6.0, amp=0.2)], axis=1)
    path = tmp_path / "m_20260301_120000.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    timeline = open_timeline(path, channel="mean")
    tree = open_store(ingest(timeline, tmp_path / "m.zarr", CONFIG, time_chunk=CHUNK, progress=False))
    mean = timeline.read(0, timeline.n_samples)
    np.testing.assert_array_equal(mean, y.mean(axis=1, dtype=np.float32))
    for g, w in zip(waves(tree, "0"), expected_level0(mean, CONFIG, tree["0"].sizes["time"]), strict=True):
        np.testing.assert_array_equal(g, w)


def test_channel_k_of_an_all_store_is_the_store_of_channel_k(tmp_path):
    y = np.stack([tone(500.0, 12.0, amp=0.5), noise(12.0, amp=0.2), chirp(100, 3000, 12.0, amp=0.1)], axis=1)
    y[20_000:21_000, 1] = np.nan  # a gap in channel 1 alone
    path = tmp_path / "c_20260301_120000.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    every = open_store(ingest(open_timeline(path, channel="all"), tmp_path / "all.zarr", CONFIG, time_chunk=CHUNK))
    assert every["0"].wave_rms.dims == ("channel", "time") and every["1"].wave_min.dims == ("channel", "time")
    assert np.isnan(every["0"].wave_max.values[1]).any() and not np.isnan(every["0"].wave_max.values[0]).any()
    for k in range(3):
        alone = open_store(ingest(open_timeline(path, channel=k), tmp_path / f"{k}.zarr", CONFIG, time_chunk=CHUNK))
        for level in alone.children:
            for name in WAVE_NAMES:
                np.testing.assert_array_equal(
                    every[level][name].values[k], alone[level][name].values, f"{level}/{name}"
                )
    chunks = zarr.open_group(tmp_path / "all.zarr", mode="r")["0/wave_min"].chunks
    assert chunks == (1, CHUNK)  # one channel a chunk, a block's columns a chunk


# ----------------------------------------------------------------------------- in pieces: append, resume, rebuild


def test_append_to_a_format3_store_equals_ingesting_at_once(tmp_path):
    files = [tmp_path / stamped(t) for t in (0, 12.25, 30)]
    for i, path in enumerate(files):
        sf.write(path, signal_of(10.0, seed=i), SR, subtype="FLOAT")
    store = ingest(open_timeline(files[0]), tmp_path / "s.zarr", CONFIG, time_chunk=CHUNK)
    first = os.stat(store / "0" / "wave_rms" / "c" / "0").st_ino
    ingest(open_timeline(files[1:]), store, append=True)
    assert os.stat(store / "0" / "wave_rms" / "c" / "0").st_ino == first  # a kept chunk: hard-linked, not rewritten
    everything = ingest(open_timeline(files), tmp_path / "all.zarr", CONFIG, time_chunk=CHUNK)
    assert_same_store(store, everything)  # every array of every level, the waveform's too
    assert all(name in open_store(store)["2"] for name in WAVE_NAMES)


def test_append_to_a_format2_store_computes_its_waveform_from_its_recordings(tmp_path):
    files = [tmp_path / stamped(t) for t in (0, 12.25)]
    for i, path in enumerate(files):
        sf.write(path, signal_of(10.0, seed=i), SR, subtype="FLOAT")
    three = ingest(open_timeline(files[0]), tmp_path / "three.zarr", CONFIG, time_chunk=CHUNK)
    old = as_format2(three, tmp_path / "s.zarr")
    assert StoreReader(old).format_version == 2 and not StoreReader(old).has_waveform
    ingest(open_timeline(files[1]), old, append=True)
    assert StoreReader(old).format_version == FORMAT_VERSION
    assert_same_store(old, ingest(open_timeline(files), tmp_path / "all.zarr", CONFIG, time_chunk=CHUNK))


def test_an_append_without_the_stores_recordings_is_refused_in_one_line(cli, tmp_path):
    files = [tmp_path / stamped(t) for t in (0, 12.25)]
    for i, path in enumerate(files):
        sf.write(path, signal_of(10.0, seed=i), SR, subtype="FLOAT")
    old = as_format2(ingest(open_timeline(files[0]), tmp_path / "three.zarr", CONFIG), tmp_path / "s.zarr")
    before = digest(old)
    files[0].rename(tmp_path / "elsewhere.wav")
    done = subprocess.run([*cli, "ingest", str(files[1]), "--append", str(old)], capture_output=True, text=True)
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
    assert "cannot append to" in done.stderr and "one of its sources cannot be opened" in done.stderr
    assert digest(old) == before


def test_resume_after_kill_has_each_finished_blocks_waveform_and_equals_an_uninterrupted_ingest(cli, tmp_path):
    wav = tmp_path / "20260301_120000.wav"
    sf.write(wav, noise(30.0, amp=0.05) + chirp(100, 3900, 30.0), SR, subtype="FLOAT")
    reference = ingest(open_timeline(wav), tmp_path / "reference.zarr", StftConfig(n_fft=128, hop_length=64))
    store, partial = tmp_path / "s.zarr", tmp_path / ".s.zarr.partial"
    args = ["ingest", str(wav), "-o", str(store), "--n-fft", "128", "--hop-length", "64", "--time-chunk", "16"]
    killed = interrupt(cli, args, partial, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    done = finished_blocks(partial)
    for block in done:  # written by the block's task before it marked the block finished
        for name in WAVE_NAMES:
            assert (partial / "0" / name / "c" / str(block)).is_file(), (name, block)
    resumed = subprocess.run([*cli, *args, "--no-progress"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {len(done)} of" in resumed.stderr
    assert_same_store(store, reference)


def test_levels_rebuilt_from_the_first_changed_column_equal_levels_built_at_once(recording, tmp_path):
    """The rebuild an append makes, with chunks of 16 columns: whole chunks below the first change kept."""
    _, store = recording
    lengths = [open_store(store)[str(k)].sizes["time"] for k in range(3)]
    copy = Path(shutil.copytree(store, tmp_path / "copy.zarr"))
    changed = 2 * 1024 + 64  # the first level-0 column written again
    kept = wave_kept(changed, len(lengths), PYRAMID_FACTOR, base_levels=3, chunk=16)
    assert kept == (changed, 528, 128)
    writer = StoreWriter(copy)
    for k in range(1, 3):  # what was not kept is gone
        for name in WAVE_NAMES:
            writer.root[f"{k}/{name}"][kept[k] :] = np.nan
    build_wave_levels(writer, lengths, PYRAMID_FACTOR, kept=kept, chunk=16)
    for k in range(1, 3):
        for name in WAVE_NAMES:
            np.testing.assert_array_equal(
                writer.read(k, name, 0, lengths[k]), StoreReader(store).read(k, name, (slice(None),)), f"{k}/{name}"
            )


def test_the_plan_keeps_whole_waveform_chunks_only_of_a_store_that_has_them():
    job = {"software": "test"}
    plan = plan_ingest(2_000_000, 512, job=job, keep=1_500_000, base_levels=5)
    assert plan.wave_kept[0] == plan.kept[0] == 1_499_648
    assert plan.wave_kept[1:3] == (327_680, 65_536)  # multiples of VECTOR_CHUNK
    assert plan.wave_kept[3:] == (0,) * (len(plan.lengths) - 3)
    assert plan_ingest(2_000_000, 512, job=job, keep=1_500_000, base_levels=5, base_waveform=False).wave_kept == (
        0,
    ) * len(plan.lengths)
    assert plan_ingest(2_000_000, 512, job=job, keep=1_500_000, base_levels=5, base_factor=2).wave_kept[1:] == (0,) * (
        len(plan.lengths) - 1
    )


# ----------------------------------------------------------------------------- reads


@pytest.mark.parametrize(("start", "seconds", "width"), [(0.0, 40.0, 400), (3.0, 10.0, 200), (5.1, 0.9, 400)])
def test_a_waveform_reads_the_level_a_view_reads_and_only_the_windows_columns(recording, start, seconds, width):
    _, store = recording
    atlas = open_atlas(store)
    window = (at(start), at(min(start + seconds, 40.0)))
    CACHE.clear()
    reads = []
    read = atlas._reader.read
    atlas._reader.read = lambda level, name, index: reads.append((level, name, index)) or read(level, name, index)
    got = atlas.waveform(time=window, width=width)
    lvl = atlas.choose_level(window, width)
    assert got.attrs["kind"] == "summary" and got.attrs["level"] == lvl.level
    assert got.attrs["seconds_per_column"] == lvl.step and got.attrs["units"] == "1"
    assert 2 <= got.sizes["time"] <= 2 * width  # O(pixels): at most two columns a pixel
    j0, j1 = atlas._columns(lvl, *window)
    np.testing.assert_array_equal(got.time.values, lvl.column_times(j0, j1))
    stored = StoreReader(store)
    for key, name in zip(("min", "max", "rms"), WAVE_NAMES, strict=True):
        assert got[key].dtype == np.float32 and got[key].dims == ("time",)
        np.testing.assert_array_equal(got[key].values, stored.read(lvl.level, name, (slice(j0, j1),)))
    # read: the three arrays of that level, only the chunks under the window
    chunk = stored.time_chunk(lvl.level, WAVE_NAMES[0])
    assert {(level, name) for level, name, _ in reads} == {(lvl.level, name) for name in WAVE_NAMES}
    for _, _, index in reads:
        assert index[-1].start <= j0 // chunk * chunk + chunk and index[-1].stop >= j1 - chunk
        assert index[-1].start >= j0 // chunk * chunk and index[-1].stop <= -(-j1 // chunk) * chunk
    reads.clear()
    atlas.waveform(time=window, width=width)
    assert reads == []  # again: from the chunk cache


@pytest.mark.parametrize("width", [20, 100, 200])
def test_beyond_the_coarsest_level_the_columns_are_reduced_as_the_pyramid_would(recording, width):
    _, store = recording
    atlas = open_atlas(store)
    top = atlas.levels[-1]
    assert top.n_columns == 606 > 2 * width  # the coarsest level: more columns than two a pixel
    got = atlas.waveform(width=width)
    assert got.sizes["time"] <= 2 * width and got.attrs["level"] > top.level
    above = got.attrs["level"] - top.level
    assert got.attrs["seconds_per_column"] == top.step * PYRAMID_FACTOR**above
    wave = waves(open_store(store), str(top.level))
    for _ in range(above):
        wave = expected_next(wave, PYRAMID_FACTOR)
    for key, w in zip(("min", "max", "rms"), wave, strict=True):
        np.testing.assert_array_equal(got[key].values, w, key)
    assert got.time.values[0] == T0 + np.timedelta64(
        int(round(((PYRAMID_FACTOR ** got.attrs["level"] - 1) / 2 * 33 + 50) / SR * 1e9)), "ns"
    )


def test_deep_zoom_returns_the_samples_themselves(recording):
    timeline, store = recording
    atlas = open_atlas(store)
    a = int(19.99 * SR)
    window = (at(a / SR), at(a / SR + 0.0125))  # 100 samples on 40 pixels: 2.5 a pixel, 20 of them in the gap
    got = atlas.waveform(time=window, width=40)
    assert got.attrs["kind"] == "samples" and got.sizes["time"] == 100
    expected = timeline.read(a, a + 100)
    np.testing.assert_array_equal(got["min"].values, expected)  # NaN over the gap, as the summaries are
    np.testing.assert_array_equal(got["max"].values, expected)
    np.testing.assert_array_equal(got["rms"].values, np.abs(expected))
    assert np.isnan(expected[-20:]).all() and np.isfinite(expected[:80]).all()
    np.testing.assert_array_equal(got.time.values, T0 + (np.arange(a, a + 100) * 125_000).astype("timedelta64[ns]"))
    assert got.attrs["seconds_per_column"] == 1 / SR
    # more than four samples a pixel: summaries
    assert atlas.waveform(time=window, width=24).attrs["kind"] == "summary"


def test_deep_zoom_without_the_recordings_shows_the_level0_summaries(tmp_path):
    wav = tmp_path / "20260301_120000.wav"
    sf.write(wav, signal_of(5.0, seed=3), SR, subtype="FLOAT")
    store = ingest(open_timeline(wav), tmp_path / "s.zarr", CONFIG, time_chunk=CHUNK)
    window = (at(2.0), at(2.01))
    assert open_atlas(store).waveform(time=window, width=100).attrs["kind"] == "samples"
    wav.unlink()
    got = open_atlas(store).waveform(time=window, width=100)  # never reconstructed from the spectrogram
    assert got.attrs["kind"] == "summary" and got.attrs["level"] == 0
    assert np.isfinite(got["rms"].values).all() and 2 <= got.sizes["time"] <= 5


def test_a_multichannel_waveform_reads_the_channel_asked_for(tmp_path):
    y = np.stack([tone(500.0, 6.0, amp=0.5), tone(700.0, 6.0, amp=0.1)], axis=1)
    path = tmp_path / "c_20260301_120000.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    atlas = open_atlas(ingest(open_timeline(path, channel="all"), tmp_path / "all.zarr", CONFIG, time_chunk=CHUNK))
    whole = atlas.waveform(width=100, channel=1)
    assert whole.attrs["channel"] == "1" and 0.09 < whole["max"].max() <= np.float32(0.1)
    near = atlas.waveform(time=(at(1.0), at(1.005)), width=20, channel=1)
    assert near.attrs["kind"] == "samples"
    np.testing.assert_array_equal(near["min"].values, y[SR : SR + 40, 1])
    with pytest.raises(ParameterError, match="channel=2 is not one of the channels"):
        atlas.waveform(width=100, channel=2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width": 0}, r"width=0 must be a whole number of pixels >= 1"),
        ({"width": 5000}, r"width=5000 is more than the 4096 pixels"),
        ({"width": 10, "time": (at(30), at(20))}, r"is empty or inverted"),
        ({"width": 10, "channel": 1}, r"holds one channel"),
    ],
)
def test_waveform_errors(recording, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        open_atlas(recording[1]).waveform(**kwargs)


# ----------------------------------------------------------------------------- older formats and upgrade


def test_stores_without_a_waveform_say_to_upgrade(recording, tmp_path):
    two = as_format2(recording[1], tmp_path / "two.zarr")
    one = shutil.copytree(FORMAT1, tmp_path / "format1.zarr")
    for store, version in ((two, 2), (one, 1)):
        atlas = open_atlas(store)
        assert not atlas.has_waveform
        said = (
            rf"this store \('{store.name}', format {version}\) has no waveform summaries; run spectral-atlas upgrade "
        )
        with pytest.raises(ParameterError, match=said + re.escape(str(store))):
            atlas.waveform(width=100)
        assert store_info(store)["waveform"] is False and not any(lv["waveform"] for lv in store_info(store)["levels"])
        atlas.view(width=100, height=10)  # the rest reads as before
    assert open_atlas(recording[1]).has_waveform


def test_upgrade_2_to_3_adds_the_waveform_a_fresh_ingest_writes_linking_the_power(recording, tmp_path):
    _, store = recording
    two = as_format2(store, tmp_path / "two.zarr")
    power_chunk = os.stat(two / "1" / "power_max" / "c" / "0" / "0").st_ino
    assert upgrade(two) == 2
    assert os.stat(two / "1" / "power_max" / "c" / "0" / "0").st_ino == power_chunk  # hard-linked, not copied
    assert StoreReader(two).format_version == FORMAT_VERSION and not (tmp_path / ".two.zarr.upgrading").exists()
    got, want = open_store(two), open_store(store)
    for level in want.children:
        for name in want[level].variables:
            np.testing.assert_array_equal(got[level][name].values, want[level][name].values, f"{level}/{name}")


def test_upgrade_1_to_3_adds_the_waveform_a_fresh_ingest_writes(tmp_path):
    one = shutil.copytree(FORMAT1, tmp_path / "format1.zarr")
    assert upgrade(one) == 1
    wav = FORMAT1.parent / "format1_20260301_120000.wav"
    fresh = open_store(ingest(open_timeline([wav]), tmp_path / "fresh.zarr", StftConfig(n_fft=64, hop_length=32)))
    got = open_store(one)
    for level in fresh.children:
        for name in WAVE_NAMES:
            np.testing.assert_array_equal(got[level][name].values, fresh[level][name].values, f"{level}/{name}")
    samples = sf.read(wav, dtype="float32")[0]
    np.testing.assert_array_equal(
        got["0"].wave_max.values[:3], [samples[16 + 32 * j : 48 + 32 * j].max() for j in range(3)]
    )


def test_upgrade_without_the_recordings_is_refused_and_changes_nothing(cli, recording, tmp_path):
    timeline, store = recording
    moved = tmp_path / "moved"
    moved.mkdir()
    rec = tmp_path / "rec"
    shutil.copytree(timeline.sources[0].path.parent, rec, ignore=shutil.ignore_patterns("*.zarr"))
    # a store of the copies, made format 2; then its recordings move away
    own = as_format2(
        ingest(open_timeline(sorted(rec.glob("*.wav"))), tmp_path / "s3.zarr", CONFIG, time_chunk=CHUNK),
        tmp_path / "s.zarr",
    )
    for path in rec.glob("*.wav"):
        path.rename(moved / path.name)
    before = digest(own)
    with pytest.raises(SourceNotFoundError, match=r"cannot upgrade '.*s\.zarr': its source 'w-2026.*\.wav' is not at"):
        upgrade(own)
    done = subprocess.run([*cli, "upgrade", str(own)], capture_output=True, text=True)
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "its waveform is computed from its recordings, so nothing was changed" in done.stderr
    assert "--audio-root" in done.stderr
    assert digest(own) == before and not (tmp_path / ".s.zarr.upgrading").exists()
    # told where they are, it upgrades
    done = subprocess.run([*cli, "upgrade", str(own), "--audio-root", str(moved)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{own}: format 2 -> 3")
    assert_same_store_arrays(own, tmp_path / "s3.zarr")


def assert_same_store_arrays(path: Path, expected: Path) -> None:
    got, want = open_store(path), open_store(expected)
    for level in want.children:
        for name in want[level].variables:
            np.testing.assert_array_equal(got[level][name].values, want[level][name].values, f"{level}/{name}")


def test_info_reports_the_waveform_and_its_bytes(recording, cli):
    _, store = recording
    info = store_info(store)
    assert info["waveform"] is True and all(level["waveform"] for level in info["levels"])
    size = info["size"]
    on_disk = sum(
        p.stat().st_size for k in range(3) for n in WAVE_NAMES for p in (store / str(k) / n).rglob("*") if p.is_file()
    )
    assert size["waveform_bytes"] == on_disk > 0
    assert size["float32_bytes"] == 4 * sum(
        np.prod(open_store(store)[str(k)][n].shape)
        for k in range(3)
        for n in ("power", "power_max", *WAVE_NAMES)
        if n in open_store(store)[str(k)]
    )
