"""The ingest's plan, on its own: pure arithmetic, no file or store (data_access.plan)."""

from __future__ import annotations

import numpy as np
import pytest

from data_access.plan import job_record, plan_ingest
from data_access.stft import StftConfig

JOB = job_record(
    software="test",
    config=StftConfig(n_fft=256, hop_length=128),
    sample_rate=8000.0,
    channel=0,
    format="zarr",
    time_chunk=128,
    sources=[{"path": "/data/a.wav", "offset": 0, "size": 1000, "mtime_ns": 1}],
    append_to=None,
)


def test_a_new_store_computes_every_block_in_one_pass():
    plan = plan_ingest(10_000, 128, job=JOB)
    assert plan.lengths == (10_000, 2500, 625) and plan.kept == (0, 0, 0)
    assert plan.blocks == range(0, 10_000, 128)
    todo = list(plan.todo(set()))
    assert todo[0] == (0, 128) and todo[-1] == (9984, 10_000) and len(todo) == 79
    assert plan.in_pass(set()) and plan.frames_done(set()) == 0


def test_a_resumed_store_skips_finished_blocks_and_rebuilds_the_pyramid():
    plan = plan_ingest(10_000, 128, job=JOB)
    finished = {0, 1, 78}  # block numbers, as the partial's records name them
    todo = list(plan.todo(finished))
    assert (0, 128) not in todo and (9984, 10_000) not in todo and todo[0] == (256, 384) and len(todo) == 76
    assert plan.frames_done(finished) == 128 + 128 + 16  # the last block holds 16 frames
    assert not plan.in_pass(finished)


def test_an_append_keeps_whole_chunks_no_new_frame_reaches_at_every_level():
    plan = plan_ingest(20_000, 128, job=JOB, keep=5000, base_levels=3)
    assert plan.kept == (4992, 1152, 256)  # 5000 // 4**k frames' columns, whole chunks of 128
    assert plan.blocks[0] == 4992 and not plan.in_pass(set())


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_kept_columns_never_reach_past_the_level_below(factor):
    """Each level is rebuilt from the first column the level below changed: nothing stale is kept."""
    rng = np.random.default_rng(0)
    for keep in rng.integers(0, 10**6, 200):
        plan = plan_ingest(10**6, 64, job=JOB, keep=int(keep), base_levels=8, base_factor=factor, factor=factor)
        assert plan.kept[0] <= keep and all(k % 64 == 0 for k in plan.kept)
        for below, above in zip(plan.kept, plan.kept[1:], strict=False):
            assert above * factor <= below


def test_an_append_to_a_format1_store_keeps_level0_only():
    """Format 1's halving pyramid is no part of a quartering one: its levels are rebuilt whole."""
    plan = plan_ingest(20_000, 128, job=JOB, keep=5000, base_levels=5, base_factor=2)
    assert plan.kept == (4992, 0, 0)


def test_a_long_recording_is_planned_in_constant_memory():
    plan = plan_ingest(10**12, 512, job=JOB)  # a billion blocks: a range, never a list
    assert len(plan.blocks) == 10**12 // 512 and plan.lengths[-1] <= 2048
    assert next(plan.todo(set())) == (0, 512)


def test_the_fingerprint_is_the_job_and_changes_with_any_part_of_it():
    same = plan_ingest(10_000, 128, job=JOB).fingerprint
    assert same == plan_ingest(10_000, 128, job=JOB).fingerprint == JOB
    touched = {**JOB, "sources": [{**JOB["sources"][0], "mtime_ns": 2}]}
    assert plan_ingest(10_000, 128, job=touched).fingerprint != same


@pytest.mark.parametrize("chunk", [2, 6, 130])
def test_blocks_must_hold_whole_groups_of_the_pyramid(chunk):
    with pytest.raises(ValueError, match="multiple of the pyramid's factor 4"):
        plan_ingest(10_000, chunk, job=JOB)
