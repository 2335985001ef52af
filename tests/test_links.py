"""Deep links without a browser: the view as a query and back, and links that cannot be followed."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import T0, S, tone

from data_access import StftConfig, ingest, open_atlas, open_timeline


def test_a_link_reproduces_the_view(state, atlas):
    from dashboard.links import apply_query, view_query
    from dashboard.state import ExplorerState

    state.set_view(time=(T0 + 10 * S + np.timedelta64(123_456_789, "ns"), T0 + 20 * S), freq=(500.0, 2500.5))
    state.param.update(db_range=(-90.0, -12.0), cmap="kbc", agg="max", freq_scale="log")
    state.add_band("my tone: 1 kHz; loud", 900.0, 1100.0)  # separators in a name survive
    query = view_query(state)
    fresh = ExplorerState(atlas)
    assert apply_query(fresh, query) == []
    for name in ("time_range", "freq_range", "db_range", "cmap", "agg", "freq_scale", "bands"):
        assert getattr(fresh, name) == getattr(state, name), name
    assert query["start"] == "2026-03-01T12:00:10.123456789Z"
    assert query["scale"] == "log" and query["fmin"] == "500"  # frequencies in Hz on every scale


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"start": "yesterday-ish", "end": "2026-03-01T12:00:30"}, "is not a time"),
        ({"start": "2026-03-01T12:00:30", "end": "2026-03-01T12:00:10"}, "empty or inverted"),
        ({"start": "1990-01-01", "end": "1990-01-02"}, "outside the recording"),
        ({"start": "99999-01-01", "end": "99999-01-02"}, "is not a time"),
        ({"fmin": "3000", "fmax": "1000"}, "empty or inverted"),
        ({"fmin": "1e400"}, "out of range"),
        ({"db": "-1e300,0"}, "out of range"),
        ({"db": "0,-10"}, "inverted"),
        ({"db": "nan,3"}, "out of range"),
        ({"cmap": "<script>"}, "is not one of"),
        ({"agg": "sum"}, "is not one of"),
        ({"scale": "bark"}, "scale 'bark' is not one of linear, log, mel"),
        ({"scale": "LOG"}, "scale 'LOG' is not one of linear, log, mel"),
        ({"bands": "whale:15-1e9"}, "is not within"),
        ({"bands": "justaname"}, "is not name:low-high"),
        ({"bands": "\x00:1-2"}, "a band's name is text on one line; '\\x00' holds U+0000"),  # once a traceback
        ({"bands": "a%0Ab:1-2"}, "holds U+000A"),
    ],
)
def test_a_malformed_link_keeps_the_default_view_and_says_why(state, query, expected):
    from dashboard.links import apply_query

    names = ("time_range", "freq_range", "db_range", "cmap", "agg", "freq_scale", "bands")
    before = {name: getattr(state, name) for name in names}
    problems = apply_query(state, query)
    assert len(problems) == 1 and expected in problems[0], problems
    after = {name: getattr(state, name) for name in before}
    assert after == before


def test_each_scale_in_a_link_opens_that_scale_and_a_link_without_one_opens_linear(state, atlas):
    from dashboard.links import apply_query, view_query
    from dashboard.state import ExplorerState

    assert view_query(state)["scale"] == "linear"
    for scale in ("log", "mel", "linear"):
        assert apply_query(state, {"scale": scale}) == [] and state.freq_scale == scale
    fresh = ExplorerState(atlas)
    assert apply_query(fresh, {"cmap": "kbc"}) == [] and fresh.freq_scale == "linear"
    assert apply_query(fresh, {"scale": "mel;drop", "agg": "max"}) == [
        "scale 'mel;drop' is not one of linear, log, mel: ignored"
    ]
    assert fresh.freq_scale == "linear" and fresh.agg == "max"


def test_good_parts_of_a_partly_bad_link_are_used(state):
    from dashboard.links import apply_query

    problems = apply_query(state, {"start": "2026-03-01T12:00:05", "end": "2026-03-01T12:00:15", "cmap": "nope"})
    assert len(problems) == 1 and "cmap" in problems[0]
    assert state.time_range == (T0 + 5 * S, T0 + 15 * S)


def test_links_need_no_panel():
    import subprocess
    import sys

    code = "import sys, dashboard.links; assert 'panel' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def stereo(tmp_path_factory):
    """A store of both channels of a stereo file (``channel="all"``)."""
    import soundfile as sf

    d = tmp_path_factory.mktemp("stereo")
    y = np.stack([tone(1000.0, 20.0, amp=0.1), tone(2000.0, 20.0, amp=0.1)], axis=1)
    sf.write(d / "s_20260301_120000.wav", y, 8000)
    timeline = open_timeline(d / "s_20260301_120000.wav", channel="all")
    return open_atlas(ingest(timeline, d / "s.zarr", StftConfig(n_fft=256)))


def test_a_link_carries_the_channel_of_a_multichannel_store(stereo, state):
    from dashboard.links import apply_query, view_query
    from dashboard.state import ExplorerState

    shown = ExplorerState(stereo, channel=1)
    query = view_query(shown)
    assert query["channel"] == "1"
    fresh = ExplorerState(stereo)
    assert fresh.channel == 0
    assert apply_query(fresh, query) == [] and fresh.channel == 1
    assert apply_query(fresh, {"channel": "0"}) == [] and fresh.channel == 0  # an index, or a label (here the same)
    assert "channel" not in view_query(state)  # a single-channel store's link has none


@pytest.mark.parametrize(
    ("multichannel", "value", "expected"),
    [
        (True, "2", "channel '2' is not one of 0, 1"),
        (True, "left", "channel 'left' is not one of 0, 1"),
        (True, "-1", "channel '-1' is not one of 0, 1"),
        (False, "1", "channel '1': this store holds a single channel"),
    ],
)
def test_a_bad_channel_in_a_link_is_ignored_and_said(stereo, atlas, multichannel, value, expected):
    from dashboard.links import apply_query
    from dashboard.state import ExplorerState

    state = ExplorerState(stereo if multichannel else atlas)
    before = state.channel
    assert apply_query(state, {"channel": value}) == [f"{expected}: ignored"]
    assert state.channel == before


def test_a_link_names_at_most_32_bands_and_says_what_it_left_out(state):
    """A link of 1000 bands (a 13 KB URL) once took the server 163 s to build, blocking every page."""
    from dashboard.links import MAX_LINK_BANDS, apply_query

    many = ";".join(f"b{i}:{10 + i}-{20 + i}" for i in range(1000))
    problems = apply_query(state, {"bands": many})
    assert list(state.bands) == [f"b{i}" for i in range(MAX_LINK_BANDS)] and MAX_LINK_BANDS == 32
    assert problems == ["the link names 1000 bands: the first 32 are shown, the rest left out"]
    assert len(state.band_colors) == MAX_LINK_BANDS


def test_a_band_name_in_a_link_is_bounded(state):
    from dashboard.links import apply_query

    before = dict(state.bands)
    problems = apply_query(state, {"bands": "x" * 500 + ":10-20"})
    assert len(problems) == 1 and "longer than 80 characters" in problems[0] and state.bands == before


def test_a_link_narrower_than_a_millisecond_opens_a_millisecond_about_its_centre(state):
    # A 1 µs view once drew nothing and froze the image (a plot's axis cannot tell such ends apart).
    from dashboard.links import apply_query
    from dashboard.state import MIN_SPAN

    assert apply_query(state, {"start": "2026-03-01T12:00:05", "end": "2026-03-01T12:00:05.000001"}) == []
    centre = T0 + 5 * S + np.timedelta64(500, "ns")
    assert state.time_range == (centre - MIN_SPAN // 2, centre + MIN_SPAN // 2) and MIN_SPAN == np.timedelta64(1, "ms")
