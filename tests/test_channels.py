"""Multichannel stores (``channel="all"``): a ``channel`` dimension, read one channel at a time.

Every check is against a known signal (a different tone per channel lands in its
own bin, Parseval for band levels) or against the single-channel stores the same
files give with ``channel=k``, which the rest of the suite checks against librosa.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import obspy
import pytest
import soundfile as sf
import xarray as xr
from conftest import SR, noise, tone
from test_append_resume import assert_same_store, finished_blocks, interrupt

from data_access import (
    FormatError,
    ParameterError,
    StftConfig,
    ingest,
    open_atlas,
    open_store,
    open_timeline,
    store_info,
)

CONFIG = StftConfig(n_fft=128, hop_length=64)
CHUNK = 16  # many blocks and several pyramid levels from a few seconds
TONES = (500.0, 1250.0, 2000.0, 3000.0)  # one per channel, each on a bin centre (df = 62.5 Hz)
AMPS = (0.5, 0.25, 0.1, 0.05)
T0 = np.datetime64("2026-03-01T12:00:00", "ns")


def channels_signal(seconds: float, n_channels: int, seed: int = 0) -> np.ndarray:
    """Shape (n, n_channels): channel ``k`` is a tone at ``TONES[k]`` of amplitude ``AMPS[k]`` over faint noise."""
    return np.stack(
        [tone(TONES[k], seconds, amp=AMPS[k]) + noise(seconds, amp=1e-4, seed=seed + k) for k in range(n_channels)],
        axis=1,
    )


def write(path: Path, samples: np.ndarray) -> Path:
    sf.write(path, samples, SR, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    """Two 4-channel files with a gap between them, and NaN stretches in some channels only."""
    d = tmp_path_factory.mktemp("four")
    first, second = channels_signal(30.0, 4), channels_signal(10.0, 4, seed=10)
    first[3000:3900, 1] = np.nan  # a gap in channel 1 alone: its frame counts differ from the others'
    first[50_000:50_100, 3] = np.nan
    second[1000:1500, 2] = np.nan
    return [write(d / "x_20260301_120000.wav", first), write(d / "x_20260301_120031.wav", second)]


@pytest.fixture(scope="module")
def four_stores(four, tmp_path_factory):
    """The ``channel="all"`` store of ``four`` and its ``channel=k`` stores, Zarr (and two of them NetCDF)."""
    d = tmp_path_factory.mktemp("four_stores")
    stores = {}
    for fmt, suffix, channels in (("zarr", "zarr", ("all", 0, 1, 2, 3)), ("netcdf", "nc", ("all", 1))):
        for channel in channels:
            stores[fmt, channel] = ingest(
                open_timeline(four, channel=channel), d / f"{channel}.{suffix}", CONFIG, format=fmt, time_chunk=CHUNK
            )
    return stores


@pytest.mark.parametrize("fmt", ["zarr", "netcdf"])
def test_channel_k_of_an_all_store_is_the_store_of_channel_k(four_stores, fmt):
    every = open_store(four_stores[fmt, "all"])
    assert len(every.children) >= 2
    assert every.attrs["channel"] == "all" and every.attrs["n_channels"] == 4
    assert json.loads(every.attrs["channel_labels"]) == ["0", "1", "2", "3"]
    for level in every.children:
        ds = every[level].to_dataset()
        assert ds.power.dims == ("channel", "freq", "time")
        assert ds.frame_count.dims == ("channel", "time")
        assert list(ds.channel.values) == [0, 1, 2, 3]
    counts = every["0"].frame_count.values
    assert (counts[1] != counts[0]).any()  # channel 1's own gap
    for k in [k for k in range(4) if (fmt, k) in four_stores]:
        alone = open_store(four_stores[fmt, k])
        for level in alone.children:
            got = every[level].to_dataset().isel(channel=k).drop_vars("channel").load()
            xr.testing.assert_identical(got, alone[level].to_dataset().load())  # power, power_max, frame_count, time


def test_zarr_chunks_hold_one_channel(four_stores):
    import zarr

    root = zarr.open_group(four_stores["zarr", "all"], mode="r")
    mono = zarr.open_group(four_stores["zarr", 0], mode="r")
    assert root["1/power"].chunks == (1, *mono["1/power"].chunks)
    assert root["1/power_max"].chunks == (1, *mono["1/power_max"].chunks)
    assert root["1/frame_count"].chunks == (1, *mono["1/frame_count"].chunks)


def test_each_channel_shows_its_own_tone(four_stores):
    atlas = open_atlas(four_stores["zarr", "all"])
    assert atlas.channels == ["0", "1", "2", "3"]
    for k in range(4):
        view = atlas.view(
            time=(T0 + np.timedelta64(1, "s"), T0 + np.timedelta64(19, "s")), width=40, height=65, channel=k
        )
        assert view.attrs["channel"] == str(k)
        spectrum = view.mean("time").values
        assert view.freq.values[np.nanargmax(spectrum)] == pytest.approx(TONES[k], abs=atlas.df)
        others = [TONES[j] for j in range(4) if j != k]
        for f in others:  # the other channels' tones are not in this one (faint noise only)
            assert spectrum[np.argmin(abs(view.freq.values - f))] < spectrum.max() - 60


def test_band_energy_per_channel(four_stores):
    atlas, span = open_atlas(four_stores["zarr", "all"]), (T0 + np.timedelta64(1, "s"), T0 + np.timedelta64(19, "s"))
    for k in range(4):
        band = {"tone": (TONES[k] - 250, TONES[k] + 250)}
        curves = atlas.band_energy(band, time=span, points=50, channel=k)
        # Parseval: a sine of amplitude a has mean square a**2 / 2.
        np.testing.assert_allclose(curves["tone"].values, 10 * np.log10(AMPS[k] ** 2 / 2), atol=0.05)
        assert curves.attrs["channel"] == str(k)
        alone = open_atlas(four_stores["zarr", k]).band_energy(band, time=span, points=50)
        np.testing.assert_array_equal(curves["tone"].values, alone["tone"].values)


def test_a_gap_in_one_channel_is_a_gap_in_that_channel_only(four_stores):
    atlas = open_atlas(four_stores["zarr", "all"])
    span = (T0 + np.timedelta64(300, "ms"), T0 + np.timedelta64(500, "ms"))  # samples 2400..4000: channel 1's NaN
    for k in range(4):
        view = atlas.view(time=span, width=8, height=4, channel=k)
        assert np.isnan(view.values).any() == (k == 1)


@pytest.mark.parametrize(
    ("channel", "match"),
    [
        (4, r"channel=4 is not one of the channels of 'all.zarr': 0, 1, 2, 3$"),
        (-1, r"channel=-1 is not one of the channels"),
        ("1", r"channel='1' must be a channel index"),
        (True, r"channel=True must be a channel index"),
    ],
)
def test_a_bad_channel_is_a_clear_error(four_stores, channel, match):
    atlas = open_atlas(four_stores["zarr", "all"])
    with pytest.raises(ParameterError, match=match):
        atlas.view(width=10, height=10, channel=channel)
    with pytest.raises(ParameterError, match=match):
        atlas.band_energy({"b": (100, 200)}, points=10, channel=channel)


def test_a_single_channel_store_has_no_channels_and_refuses_another(four_stores):
    atlas = open_atlas(four_stores["zarr", 2])
    assert atlas.channels == []
    np.testing.assert_array_equal(atlas.view(width=10, height=10, channel=0), atlas.view(width=10, height=10))
    assert "channel" not in atlas.view(width=10, height=10).attrs
    with pytest.raises(ParameterError, match=r"channel=1 but '2.zarr' holds one channel \(2\)"):
        atlas.view(width=10, height=10, channel=1)


def test_files_with_different_channel_counts_are_refused_by_name(tmp_path):
    stereo = write(tmp_path / "a_20260301_120000.wav", channels_signal(2.0, 2))
    mono = write(tmp_path / "b_20260301_120002.wav", channels_signal(2.0, 1))
    with pytest.raises(FormatError, match=r"differ \(1 channel: b_20260301_120002.wav; 2 channels: a_2026"):
        open_timeline([stereo, mono], channel="all")
    assert open_timeline([stereo, mono], channel=0).read(0, 10).shape == (10,)  # one channel is still fine


def test_timeline_reads_every_channel(four):
    timeline = open_timeline(four, channel="all")
    assert timeline.n_channels == 4 and timeline.channel_labels() == ["0", "1", "2", "3"]
    block = timeline.read(30 * SR - 100, 31 * SR + 100)  # across the gap between the files
    assert block.shape == (SR + 200, 4)
    for k in range(4):
        np.testing.assert_array_equal(block[:, k], open_timeline(four, channel=k).read(30 * SR - 100, 31 * SR + 100))
    assert np.isnan(block[100:-100]).all() and not np.isnan(block[:100, 0]).any()


def test_miniseed_channels_are_labelled_by_seed_id_and_keep_their_own_gaps(tmp_path):
    start = obspy.UTCDateTime(str(T0))
    rng = np.random.default_rng(1)
    data = {cha: (rng.standard_normal(12 * SR) * 1000).astype(np.int32) for cha in ("HHE", "HHN")}
    traces = [
        obspy.Trace(data["HHE"], header={"sampling_rate": SR, "starttime": start, "station": "HYD", "channel": "HHE"}),
        # HHN misses 2 s in the middle: two traces with a gap
        obspy.Trace(
            data["HHN"][: 4 * SR],
            header={"sampling_rate": SR, "starttime": start, "station": "HYD", "channel": "HHN"},
        ),
        obspy.Trace(
            data["HHN"][6 * SR :],
            header={"sampling_rate": SR, "starttime": start + 6, "station": "HYD", "channel": "HHN"},
        ),
    ]
    path = tmp_path / "hyd.mseed"
    obspy.Stream(traces).write(str(path), format="MSEED", encoding="STEIM2")
    every = ingest(open_timeline(path, channel="all"), tmp_path / "all.zarr", CONFIG, time_chunk=CHUNK)
    atlas = open_atlas(every)
    assert atlas.channels == [".HYD..HHE", ".HYD..HHN"]
    tree = open_store(every)
    for k in range(2):
        alone = open_store(ingest(open_timeline(path, channel=k), tmp_path / f"{k}.zarr", CONFIG, time_chunk=CHUNK))
        for level in alone.children:
            got = tree[level].to_dataset().isel(channel=k).drop_vars("channel").load()
            xr.testing.assert_identical(got, alone[level].to_dataset().load())
    counts = tree["0"].frame_count.values
    assert counts[0].all() and not counts[1].all()  # only HHN has a gap
    assert store_info(every)["channels"] == [".HYD..HHE", ".HYD..HHN"]
    with pytest.raises(ParameterError, match=r"'all.zarr': 0 \(\.HYD\.\.HHE\), 1 \(\.HYD\.\.HHN\)$"):
        atlas.view(width=10, height=10, channel=2)


# ---------------------------------------------------------------- append and resume


def stamped(seconds: int) -> str:
    return f"s_20260301_12{seconds // 60:02d}{seconds % 60:02d}.wav"


def test_append_to_a_two_channel_store_equals_ingesting_everything(tmp_path):
    files = [write(tmp_path / stamped(t), channels_signal(n, 2, seed=t)) for t, n in ((0, 12), (15, 6), (21, 9))]
    store = ingest(open_timeline(files[0], channel="all"), tmp_path / "s.zarr", CONFIG, time_chunk=CHUNK)
    ingest(open_timeline(files[1], channel="all"), store, append=True)
    ingest(open_timeline(files[2], channel="all"), store, append=True)
    everything = ingest(open_timeline(files, channel="all"), tmp_path / "all.zarr", CONFIG, time_chunk=CHUNK)
    assert_same_store(store, everything)
    assert open_store(store)["0"].power.shape[0] == 2


def test_append_refuses_another_channel_layout(tmp_path):
    old = write(tmp_path / stamped(0), channels_signal(5, 2))
    store = ingest(open_timeline(old, channel="all"), tmp_path / "s.zarr", CONFIG, time_chunk=CHUNK)
    three = write(tmp_path / stamped(10), channels_signal(5, 3))
    with pytest.raises(ParameterError, match=r"cannot append to .*: 2 channels in the store, 3 in the new files"):
        ingest(open_timeline(three, channel="all"), store, append=True)
    with pytest.raises(ParameterError, match=r"channel all in the store, 0 asked"):
        ingest(open_timeline(three, channel=0), store, append=True)


def test_resume_after_kill_of_a_multichannel_ingest(cli, tmp_path):
    wav = write(tmp_path / "s_20260301_120000.wav", channels_signal(30.0, 2))
    reference = ingest(open_timeline(wav, channel="all"), tmp_path / "reference.zarr", CONFIG, time_chunk=CHUNK)
    store, partial = tmp_path / "s.zarr", tmp_path / ".s.zarr.partial"
    args = ["ingest", str(wav), "-o", str(store), "--n-fft", "128", "--hop-length", "64", "--time-chunk", "16"]
    args += ["--channel", "all", "--no-progress"]
    killed = interrupt(cli, args, partial, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    done = finished_blocks(partial)
    resumed = subprocess.run([*cli, *args], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {len(done)} of" in resumed.stderr
    assert_same_store(store, reference)


# ---------------------------------------------------------------- console script


def test_cli_ingest_all_and_info(cli, tmp_path):
    wav = write(tmp_path / "s_20260301_120000.wav", channels_signal(4.0, 2))
    store = tmp_path / "s.zarr"
    args = ["ingest", str(wav), "-o", str(store), "--n-fft", "128", "--channel", "all", "--no-progress"]
    done = subprocess.run([*cli, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert open_atlas(store).channels == ["0", "1"]
    info = subprocess.run([*cli, "info", str(store)], capture_output=True, text=True)
    assert info.returncode == 0 and "channels 0, 1" in info.stdout
    as_json = json.loads(subprocess.run([*cli, "info", str(store), "--json"], capture_output=True, text=True).stdout)
    assert as_json["channel"] == "all" and as_json["channels"] == ["0", "1"]
    bad_args = ["ingest", str(wav), "-o", str(tmp_path / "b.zarr"), "--channel", "left"]
    bad = subprocess.run([*cli, *bad_args], capture_output=True, text=True)
    assert bad.returncode == 2 and "'left' is neither a channel index, 'mean' nor 'all'" in bad.stderr


def test_cli_mismatched_channels_is_one_line(cli, tmp_path):
    stereo = write(tmp_path / "a_20260301_120000.wav", channels_signal(2.0, 2))
    mono = write(tmp_path / "b_20260301_120002.wav", channels_signal(2.0, 1))
    args = ["ingest", str(stereo), str(mono), "-o", str(tmp_path / "s.zarr"), "--channel", "all", "--no-progress"]
    done = subprocess.run([*cli, *args], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "b_20260301_120002.wav" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "s.zarr").exists()


# ---------------------------------------------------------------- dashboard


def test_state_and_views_show_one_channel_at_a_time(four_stores):
    import holoviews as hv
    import panel as pn

    from dashboard.explorer import SpectrogramExplorer
    from dashboard.state import ExplorerState

    hv.extension("bokeh")
    explorer = SpectrogramExplorer(str(four_stores["zarr", "all"]))
    state = explorer.state
    assert state.channel == 0 and state.param.channel.names == {"0": 0, "1": 1, "2": 2, "3": 3}
    pn.panel(explorer).get_root()  # renders to Bokeh, with the channel selector
    selectors = [w for w in explorer._controls().select(pn.widgets.Select) if w.name == "channel"]
    assert len(selectors) == 1 and selectors[0].visible and selectors[0].options == {"0": 0, "1": 1, "2": 2, "3": 3}

    span = (T0 + np.timedelta64(1, "s"), T0 + np.timedelta64(19, "s"))

    def image(channel):
        drawn = explorer._spectrogram._image(span, (0.0, 4000.0), "fire", (-90, 0), "mean", 64, 65, channel=channel)
        return drawn.Image.I  # (under the "no data" marks)

    first, second = image(0), image(1)
    assert not np.array_equal(first.dimension_values(2), second.dimension_values(2), equal_nan=True)
    rows = first.dimension_values("freq", expanded=False)
    for k, picture in ((0, first), (1, second)):
        spectrum = np.nanmean(picture.dimension_values(2, flat=False), axis=1)
        assert rows[np.nanargmax(spectrum)] == pytest.approx(TONES[k], abs=62.5)
    state.param.update(bands={"tone 1": (1000.0, 1500.0)}, time_range=span, channel=1)
    curves = explorer._curves.curves(points=20)
    assert curves.attrs["channel"] == "1"
    np.testing.assert_allclose(curves["tone 1"].values, 10 * np.log10(AMPS[1] ** 2 / 2), atol=0.05)

    mono = ExplorerState(open_atlas(four_stores["zarr", 0]))
    assert mono.channel is None
    mono_explorer = SpectrogramExplorer(str(four_stores["zarr", 0]))
    hidden = [w for w in mono_explorer._controls().select(pn.widgets.Select) if w.name == "channel"]
    assert all(not w.visible for w in hidden)
