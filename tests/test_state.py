"""ExplorerState without Panel: the selection every view shares."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import T0, S

from data_access import ParameterError


def test_state_imports_no_panel():
    code = "import sys, dashboard.state; assert 'panel' not in sys.modules and 'holoviews' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_defaults_show_everything(state, atlas):
    assert state.time_range == atlas.time_range
    assert state.freq_range == atlas.freq_range
    # presets that fit under Nyquist (4 kHz here): fin whale and shipping only
    assert state.bands == {"fin whale": (15.0, 30.0), "shipping": (50.0, 500.0)}


def test_zoom_page_and_whole(state):
    state.set_time(T0 + 40 * S, T0 + 80 * S)
    state.zoom(0.5)
    assert state.time_range == (T0 + 50 * S, T0 + 70 * S)
    state.page(1)
    assert state.time_range == (T0 + 70 * S, T0 + 90 * S)
    state.page(10)  # clamped at the end, keeping the width
    assert state.time_range == (T0 + 100 * S, T0 + 120 * S)
    state.zoom(100)
    assert state.time_range == (T0, T0 + 120 * S)
    state.set_time(T0 + 1 * S, T0 + 2 * S)
    state.whole()
    assert state.time_range == (T0, T0 + 120 * S)


def test_set_time_clamps_and_refuses_inverted(state):
    state.set_time(T0 - 10 * S, T0 + 5 * S)
    assert state.time_range == (T0, T0 + 15 * S)
    with pytest.raises(ParameterError, match="empty or inverted"):
        state.set_time(T0 + 5 * S, T0 + 5 * S)


def test_bands(state):
    state.add_band("  tone ", 900, 1100)
    assert state.bands["tone"] == (900.0, 1100.0)
    state.remove_band("tone")
    assert "tone" not in state.bands
    with pytest.raises(ParameterError, match=r"band 'x' = 100 \.\. 5000 Hz must have 0 <= low < high <= 4000 Hz"):
        state.add_band("x", 100, 5000)
    with pytest.raises(ParameterError, match="a band needs a name"):
        state.add_band(" ", 1, 2)


def test_auto_db_range_from_percentiles(state):
    values = np.concatenate([np.linspace(-80, -20, 1000), [np.nan, np.nan]])
    state.auto_db_range(values)
    assert state.db_range == (-79.0, -20.0)


def test_a_pan_or_zoom_is_one_change_and_rounding_is_none(state):
    events = []
    state.param.watch(lambda *evs: events.append(sorted(e.name for e in evs)), ["time_range", "freq_range"])
    t0, t1 = state.time_range
    state.set_view(time=(t0 + 10 * S, t0 + 20 * S), freq=(500.0, 2000.0))
    assert events == [["freq_range", "time_range"]]  # one batch: the image is drawn once
    assert state.time_range == (t0 + 10 * S, t0 + 20 * S) and state.freq_range == (500.0, 2000.0)
    # A plot's rounding (nanoseconds, a millionth of a hertz) is not a move.
    state.set_view(time=(t0 + 10 * S + np.timedelta64(3, "ns"), t0 + 20 * S), freq=(500.000001, 2000.0))
    assert len(events) == 1
    state.set_view(time=(t0 - 5 * S, t0 + 5 * S), freq=(-100.0, 1e6))  # clamped to the recording and 0..Nyquist
    assert state.time_range == (t0, t0 + 10 * S) and state.freq_range == (0.0, 4000.0)


def test_a_view_is_never_narrower_than_a_millisecond(state):
    from dashboard.state import MIN_SPAN

    t = T0 + 2 * S
    assert state.set_time(t, t + np.timedelta64(1, "ns")) is True  # widened: it says so
    assert state.time_range == (t - MIN_SPAN // 2, t + MIN_SPAN // 2)
    for _ in range(30):  # zoom in as far as it goes
        state.zoom(0.5)
    assert state.time_range[1] - state.time_range[0] == MIN_SPAN
    first = state.atlas.time_range[0]
    state.set_time(first - np.timedelta64(5, "us"), first + np.timedelta64(1, "us"), keep="ends")
    assert state.time_range == (first, first + MIN_SPAN)  # widened, inside the recording


@pytest.mark.parametrize("name", ["a\x00b", "two\nlines", "tab\there", "\u202eevil"])
def test_a_band_name_is_printed_text_on_one_line(state, name):
    before = dict(state.bands)
    with pytest.raises(ParameterError, match=r"a band's name is text on one line; .* holds U\+"):
        state.add_band(name, 10, 20)
    assert state.bands == before
