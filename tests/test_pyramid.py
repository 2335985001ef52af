"""The multiscale pyramid: each level is the exact mean of level 0 over its frames, whatever its factor."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import chirp, noise

from data_access import StftConfig, ingest, open_store, open_timeline
from data_access.pyramid import TOP_FRAMES, PyramidBuilder, level_lengths, rebuild_levels, reduce, reduce_max
from data_access.schema import PYRAMID_FACTOR
from data_access.store import MAX_BITS, MEAN_BITS, StoreWriter, keep_bits

F = PYRAMID_FACTOR


def nanmean_over(level0: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: NaN-aware mean of level-0 columns in groups of F**k (float64), and valid counts."""
    step = F**k
    padded = np.pad(level0.astype(np.float64), ((0, 0), (0, -level0.shape[1] % step)), constant_values=np.nan)
    groups = padded.reshape(len(level0), -1, step)
    valid = np.isfinite(groups)
    counts = valid[0].sum(axis=1)
    with np.errstate(invalid="ignore"):
        return np.where(valid, groups, 0.0).sum(axis=2) / counts, counts


def nanmax_over(level0: np.ndarray, k: int) -> np.ndarray:
    """Reference: largest level-0 power in each group of F**k columns, NaN where all are NaN."""
    step = F**k
    padded = np.pad(level0, ((0, 0), (0, -level0.shape[1] % step)), constant_values=np.nan)
    groups = padded.reshape(len(level0), -1, step)
    valid = np.isfinite(groups)
    return np.where(valid.any(axis=2), np.where(valid, groups, -np.inf).max(axis=2), np.nan)


@pytest.mark.parametrize(
    ("n", "factor", "expected"),
    [
        (1, 4, [1]),
        (2048, 4, [2048]),
        (2049, 4, [2049, 513]),
        (100_000, 4, [100_000, 25_000, 6250, 1563]),
        (10_000, 2, [10_000, 5000, 2500, 1250]),  # format 1's halving pyramid
    ],
)
def test_level_lengths(n, factor, expected):
    assert level_lengths(n, factor) == expected
    assert level_lengths(n, factor)[-1] <= TOP_FRAMES


def test_reduce_max_by_hand():
    peak = np.array([[1.0, 3.0, np.nan, np.nan, 7.0]], np.float32)
    np.testing.assert_array_equal(reduce_max(peak, 2), [[3.0, np.nan, 7.0]])
    peak = np.array([[1.0, 3.0, np.nan, 2.0, np.nan, np.nan, np.nan, np.nan, 7.0]], np.float32)
    np.testing.assert_array_equal(reduce_max(peak, 4), [[3.0, np.nan, 7.0]])


def test_reduce_by_hand():
    power = np.array([[1.0, 3.0, np.nan, 5.0, 7.0]], np.float32)
    counts = np.array([1, 1, 0, 1, 1])
    mean, group_counts = reduce(power, counts, 2)
    np.testing.assert_array_equal(mean, [[2.0, 5.0, 7.0]])
    np.testing.assert_array_equal(group_counts, [2, 1, 1])
    mean, group_counts = reduce(np.array([[1.0, 3.0, 5.0, 7.0, np.nan, 9.0]], np.float32), [1, 1, 1, 1, 0, 1], 4)
    np.testing.assert_array_equal(mean, [[4.0, 9.0]])
    np.testing.assert_array_equal(group_counts, [4, 1])
    # weighted: columns that already average 3 and 1 frames (and 4, 0 and 8)
    mean, group_counts = reduce(np.array([[2.0, 10.0]], np.float32), np.array([3, 1]), 2)
    np.testing.assert_allclose(mean, [[4.0]])
    assert group_counts.tolist() == [4]
    mean, group_counts = reduce(np.array([[1.0, 2.0, np.nan, 4.0]], np.float32), np.array([4, 4, 0, 8]), 4)
    np.testing.assert_allclose(mean, [[(4 * 1.0 + 4 * 2.0 + 8 * 4.0) / 16]])
    assert group_counts.tolist() == [16]


@pytest.mark.parametrize("factor", [2, 4])
def test_reduce_of_a_group_does_not_depend_on_the_other_groups(factor):
    """So a level rebuilt from disk in other pieces than the ingest's is bit for bit the same."""
    rng = np.random.default_rng(0)
    power = rng.random((5, 64)).astype(np.float32) * 1e3
    counts = rng.integers(0, 4, 64)
    power[:, counts == 0] = np.nan
    whole, whole_counts = reduce(power, counts, factor)
    for cut in (4, 12, 32):
        left, right = reduce(power[:, :cut], counts[:cut], factor), reduce(power[:, cut:], counts[cut:], factor)
        np.testing.assert_array_equal(np.concatenate([left[0], right[0]], axis=1), whole)
        np.testing.assert_array_equal(np.concatenate([left[1], right[1]]), whole_counts)


@pytest.mark.parametrize("time_chunk", [8, 64])
def test_every_level_is_the_mean_of_level0_over_its_frames(write_audio, tmp_path, time_chunk):
    """Through a real ingest with a gap between files and an odd number of frames."""
    config = StftConfig(n_fft=128, hop_length=64)
    a = noise(20.0, seed=1) + chirp(100, 3900, 20.0)
    b = noise(13.3, seed=2)
    paths = [write_audio("p_20260301_120000.wav", a), write_audio("p_20260301_120021.wav", b)]
    store = ingest(open_timeline(paths), tmp_path / "p.zarr", config, time_chunk=time_chunk, progress=False)
    tree = open_store(store)
    level0 = tree["0"].power.values
    assert np.isnan(level0).any(axis=0).sum() > 0  # the 0.7 s gap
    assert len(tree.children) == len(level_lengths(level0.shape[1], F))
    for k in range(1, len(tree.children)):
        expected, counts = nanmean_over(level0, k)
        got = tree[str(k)]
        np.testing.assert_array_equal(got.frame_count.values, counts)
        # Format 2: each level keeps MEAN_BITS of the mean of the stored level below (0.00013 dB a level).
        np.testing.assert_array_equal(np.isnan(got.power.values), np.isnan(expected))
        off = np.abs(10 * np.log10(got.power.values / expected))
        assert np.nanmax(off) <= k * 10 * np.log10(1 + 2.0**-MEAN_BITS - 1e-12), (k, np.nanmax(off))
        # The max of values rounded alike is the rounded max: exact, whatever the chain.
        np.testing.assert_array_equal(got.power_max.values, keep_bits(nanmax_over(level0, k), MAX_BITS))
        # time of a column is the mean of its frames' centres
        t0 = tree["0"].time.values
        first = t0[0] + (t0[1] - t0[0]) * ((F**k - 1) / 2)
        assert got.time.values[0] == first


def test_builder_writes_whole_chunks_and_bounded_buffers():
    lengths = level_lengths(5000, F, top=100)
    writes: dict[int, list[tuple[int, int]]] = {}

    def write_power(level, start, power, peak):
        assert peak.shape == power.shape
        writes.setdefault(level, []).append((start, power.shape[1]))

    builder = PyramidBuilder(lengths, write_power, lambda *a: None, factor=F, chunk=16)
    rng = np.random.default_rng(0)
    level1 = rng.random((3, lengths[1])).astype(np.float32)
    for i in range(0, lengths[1], 8):
        piece = level1[:, i : i + 8]
        builder.push(1, piece, piece, np.full(piece.shape[1], 2))
        assert all(buf.fill < 16 for buf in builder._levels[1:])
    builder.finish()
    for level, spans in writes.items():
        assert [s for s, _ in spans] == list(np.cumsum([0] + [n for _, n in spans[:-1]]))
        assert all(n == 16 for _, n in spans[:-1])
        assert sum(n for _, n in spans) == lengths[level]


@pytest.mark.parametrize("kept", [None, [512, 128, 0]])
def test_rebuild_levels_from_level0_on_disk_equals_the_in_pass_build(write_audio, tmp_path, kept):
    """Levels wiped (wholly, or past the kept columns) and rebuilt from level 0 as stored, with a gap."""
    config = StftConfig(n_fft=128, hop_length=64)
    paths = [write_audio("r_20260301_120000.wav", noise(70.0)), write_audio("r_20260301_120111.wav", noise(9.9))]
    store = ingest(open_timeline(paths), tmp_path / "r.zarr", config, time_chunk=64)
    expected = {k: open_store(store)[k].to_dataset().load() for k in open_store(store).children}
    lengths = level_lengths(expected["0"].sizes["time"], F)
    assert len(lengths) == 3
    writer = StoreWriter(store)
    keep = kept or [0] * len(lengths)
    writer.root["0/frame_count"][F * keep[1] :] = 0
    for k in range(1, len(lengths)):
        writer.root[f"{k}/power"][:, keep[k] :] = np.nan
        writer.root[f"{k}/power_max"][:, keep[k] :] = 0.0
        writer.root[f"{k}/frame_count"][keep[k] :] = -1
    rebuild_levels(writer, lengths, F, kept=kept, chunk=64)
    for k, level in expected.items():
        xr.testing.assert_identical(open_store(store)[k].to_dataset().load(), level)
