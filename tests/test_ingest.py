"""End-to-end ingest: known signals through the store, chunking invariance, a real dask cluster."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SR, chirp, noise, stored, tone
from test_sources import T0, write_mseed

from data_access import StftConfig, ingest, open_store, open_timeline, power_spectrogram

CONFIG = StftConfig(n_fft=256, hop_length=100)


@pytest.fixture
def recording(write_audio):
    return open_timeline(write_audio("r_20260301_120000.wav", noise(60.0, amp=0.05) + chirp(100, 3900, 60.0)))


@pytest.mark.parametrize("time_chunk", [64, 1024, 10_000])
def test_level0_is_the_whole_file_transform_for_any_chunking(recording, tmp_path, time_chunk):
    path = ingest(recording, tmp_path / "s.zarr", CONFIG, time_chunk=time_chunk, progress=False)
    whole = power_spectrogram(recording.read(0, recording.n_samples), CONFIG)
    np.testing.assert_array_equal(open_store(path)["0"].power.values, stored(whole))


def test_tone_through_the_store_lands_in_its_bin(write_audio, tmp_path):
    path = ingest(open_timeline(write_audio("t_20260301_120000.flac", tone(1250.0, 20.0))), tmp_path / "t.zarr", CONFIG)
    tree = open_store(path)
    for level in tree.children:
        peak = tree[level].power.idxmax("freq").values
        assert (np.abs(peak - 1250.0) <= SR / CONFIG.n_fft / 2).all()


def test_miniseed_gap_gives_nan_frames_exactly_and_true_times_after(tmp_path):
    rng = np.random.default_rng(1)
    first, second = rng.integers(-3000, 3000, 20 * SR), rng.integers(-3000, 3000, 10 * SR)
    gap = 5000
    path = write_mseed(tmp_path / "g.mseed", [(0.0, first), ((len(first) + gap) / SR, second)])
    tree = open_store(ingest(open_timeline(path), tmp_path / "g.zarr", CONFIG))
    level0 = tree["0"]
    starts = np.arange(level0.sizes["time"]) * CONFIG.hop_length
    touches_gap = (starts < len(first) + gap) & (starts + CONFIG.n_fft > len(first))
    nan_frames = np.isnan(level0.power.values).all(axis=0)
    np.testing.assert_array_equal(nan_frames, touches_gap)
    assert np.isfinite(level0.power.values[:, ~touches_gap]).all()
    # the first frame wholly after the gap starts on the second trace's first sample... or later
    i = int(np.argmax(starts >= len(first) + gap))
    centre = (starts[i] + CONFIG.n_fft / 2) / SR
    assert level0.time.values[i] == T0 + np.timedelta64(int(round(centre * 1e9)), "ns")
    assert level0.frame_count.values[touches_gap].sum() == 0
    assert tree.attrs["gaps_seconds"] == "[]"  # the gap is inside one file, not between files
    # missing samples are not bad samples; raw counts have no full scale to clip at
    assert (tree.attrs["nonfinite_samples"], tree.attrs["clipped_samples"]) == (0, 0)
    assert tree["0"].power.attrs["units"] == "count2"


def test_too_short_recording_is_an_error(write_audio, tmp_path):
    from data_access import ParameterError

    timeline = open_timeline(write_audio("s_20260301_120000.wav", noise(0.01)))
    with pytest.raises(ParameterError, match=r"the recording has 80 samples, fewer than n_fft=256: no whole frame"):
        ingest(timeline, tmp_path / "s.zarr", CONFIG)


@pytest.mark.parametrize("bad", [0, 6, 7, True, 4.0])
def test_time_chunk_must_be_a_multiple_of_the_pyramid_factor(recording, tmp_path, bad):
    from data_access import ParameterError

    with pytest.raises(ParameterError, match=r"time_chunk=.* must be a multiple of 4 frames \(the pyramid's factor\)"):
        ingest(recording, tmp_path / "s.zarr", CONFIG, time_chunk=bad)


def test_progress_bar(recording, tmp_path, capsys):
    ingest(recording, tmp_path / "s.zarr", CONFIG, progress=True)
    assert "ingest: 100%" in capsys.readouterr().err


@pytest.mark.slow
def test_distributed_ingest_equals_local(recording, tmp_path):
    """A real LocalCluster with two worker processes writes the same store as the thread pool."""
    from distributed import LocalCluster

    local = open_store(ingest(recording, tmp_path / "local.zarr", CONFIG, time_chunk=64))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = open_store(
            ingest(recording, tmp_path / "remote.zarr", CONFIG, time_chunk=64, scheduler=cluster.scheduler_address)
        )
    for level in local.children:
        assert local[level].to_dataset().load().identical(remote[level].to_dataset().load())


def test_unreachable_scheduler_is_a_clear_error(recording, tmp_path):
    from data_access import ParameterError

    with pytest.raises(ParameterError, match=r"cannot reach a dask scheduler at 'tcp://127.0.0.1:1'"):
        ingest(recording, tmp_path / "s.zarr", CONFIG, scheduler="tcp://127.0.0.1:1")
    assert not (tmp_path / "s.zarr").exists()
