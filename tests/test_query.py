"""Viewport and band-energy reads: known signals at every zoom, exactness across levels."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from conftest import SR, chirp, noise, tone

from data_access import ParameterError, SourceNotFoundError, StftConfig, ingest, open_timeline
from data_access.query import CACHE, open_atlas
from data_access.schema import PYRAMID_FACTOR
from data_access.store import MAX_BITS, keep_bits

CONFIG = StftConfig(n_fft=256, hop_length=128)
T0 = np.datetime64("2026-03-01T12:00:00", "ns")
MINUTES = 6
CLICK_AT = 200.0  # seconds into the first file
TONE_HZ = 1000.0


def sec(s: float) -> np.datetime64:
    return T0 + np.timedelta64(int(round(s * 1e9)), "ns")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Six minutes at 8 kHz in two files with a 20 s gap: a steady tone, a chirp sweeping
    2-3.5 kHz over the first file, one 2 ms click, and faint noise."""
    d = tmp_path_factory.mktemp("q")
    first_s, second_s = 200.0 + 40.0, MINUTES * 60 - 240.0 - 20.0
    a = noise(first_s, amp=0.001) + tone(TONE_HZ, first_s, amp=0.2) + chirp(2000, 3500, first_s, amp=0.2)
    click = int(CLICK_AT * SR)
    a[click : click + 2] += [0.9, -0.9]  # a doublet: its energy peaks at Nyquist
    b = noise(second_s, amp=0.001, seed=5) + tone(TONE_HZ, second_s, amp=0.2)
    import soundfile as sf

    sf.write(d / "q_20260301_120000.wav", a, SR, subtype="FLOAT")
    sf.write(d / "q_20260301_120420.wav", b, SR, subtype="FLOAT")  # starts at 260 s: gap 240..260 s
    timeline = open_timeline([d / "q_20260301_120000.wav", d / "q_20260301_120420.wav"])
    return ingest(timeline, d / "q.zarr", CONFIG, time_chunk=64, progress=False)


@pytest.fixture(scope="module")
def atlas(store):
    return open_atlas(store)


def test_metadata(atlas):
    assert atlas.time_range == (T0, sec(MINUTES * 60))
    assert atlas.freq_range == (0.0, SR / 2)
    assert atlas.stft == CONFIG
    steps = [CONFIG.hop_length * PYRAMID_FACTOR**k / SR for k in range(len(atlas.levels))]
    assert [lv.step for lv in atlas.levels] == steps
    assert atlas.levels[-1].n_columns <= 2048 < atlas.levels[-2].n_columns


HOP, N_FFT = CONFIG.hop_length, CONFIG.n_fft
DF = SR / N_FFT
N_FRAMES = (MINUTES * 60 * SR - N_FFT) // HOP + 1  # the gap is NaN samples, framed like the rest
MS = np.timedelta64(1_000_000, "ns")


def frame_centres(frames, start=T0, sr=SR, hop=HOP, n_fft=N_FFT) -> np.ndarray:
    """Centres of frames (samples ``[i * hop, i * hop + n_fft)``), by exact integer arithmetic to the ns."""
    ns = [round(Fraction(2 * int(i) * hop + n_fft, 2) * 10**9 / Fraction(sr)) for i in frames]
    return start + np.array(ns, dtype="int64").astype("timedelta64[ns]")


def frames_meeting(t0, t1, n_frames=N_FRAMES, sr=SR, hop=HOP, n_fft=N_FFT) -> np.ndarray:
    """The frames whose cells (centre ± hop / 2) meet ``[t0, t1)``; at least two, adding the one before."""
    frames = np.arange(n_frames)
    half = np.timedelta64(round(hop / 2 / sr * 1e9), "ns")
    centres = frame_centres(frames, start=T0, sr=sr, hop=hop, n_fft=n_fft)
    meeting = frames[(centres + half > t0) & (centres - half < t1)]
    if len(meeting) == 1:
        meeting = np.array([meeting[0] - 1, meeting[0]]) if meeting[0] > 0 else np.array([0, 1])
    return meeting if len(meeting) else np.array([0, 1])  # before the first cell: the first two


def bins_meeting(f0, f1) -> np.ndarray:
    """The bins whose cells (k * df ± df / 2) meet ``[f0, f1)``."""
    k = np.arange(N_FFT // 2 + 1)
    return k[(k * DF + DF / 2 > f0) & (k * DF - DF / 2 < f1)]


@pytest.mark.parametrize(
    ("window", "size"),
    [
        ((0, 360), (1200, 100)),
        ((0, 360), (1, 1)),
        ((10, 70), (200, 7)),  # 234 columns of level 2 to 200 pixels
        ((100, 101), (40, 100)),  # 63 frames to 40 pixels
    ],
)
def test_a_view_with_more_cells_than_pixels_is_height_by_width(atlas, window, size):
    width, height = size
    view = atlas.view(time=(sec(window[0]), sec(window[1])), width=width, height=height)
    assert view.shape == (height, width) and view.dims == ("freq", "time")
    assert view.dtype == np.float32 and view.attrs["units"] == "dB re full scale"
    assert view.time.dtype == "datetime64[ns]"
    assert sec(window[0]) <= view.time.values[0] <= view.time.values[-1] <= sec(window[1])


@pytest.mark.parametrize(
    ("window", "size"),
    [
        ((0, 360), (1200, 600)),  # 129 bins under 600 pixels: the bins
        ((100.0, 100.05), (640, 480)),  # a few frames and all the bins
        ((100.0123, 100.3123), (1000, 40)),  # frames, and 129 bins to 40 pixels
        ((359.99, 360), (50, 40)),  # at the very end: the last frame and the one before
        ((0, 0.001), (3, 2)),  # at the very start, before the first frame's cell: the first two
    ],
)
def test_a_view_with_fewer_cells_than_pixels_is_the_cells(atlas, window, size):
    width, height = size
    t0, t1 = sec(window[0]), sec(window[1])
    view = atlas.view(time=(t0, t1), width=width, height=height)
    frames, bins = frames_meeting(t0, t1), bins_meeting(0, SR / 2)
    n_time = len(frames) if len(frames) <= width else width
    n_freq = len(bins) if len(bins) <= height else height
    assert view.shape == (n_freq, n_time) and view.dtype == np.float32
    if len(frames) <= width:
        np.testing.assert_array_equal(view.time.values, frame_centres(frames))
    if len(bins) <= height:
        np.testing.assert_array_equal(view.freq.values, bins * DF)


def test_frame_zoom_returns_the_stored_frames_at_their_centres(atlas, store):
    """A 0.3 s window 1000 pixels wide holds 20 frames: the view is those frames, unresampled."""
    from data_access import open_store

    t0, t1 = sec(100.0123), sec(100.3123)
    view = atlas.view(time=(t0, t1), width=1000, height=200)
    frames = frames_meeting(t0, t1)
    assert len(frames) == 20 and view.shape == (N_FFT // 2 + 1, 20)
    np.testing.assert_array_equal(view.time.values, frame_centres(frames))  # to the nanosecond
    assert view.attrs["level"] == 0 and view.attrs["seconds_per_column"] == HOP / SR
    stored = open_store(store)["0"].power.values[:, frames]
    assert stored.dtype == np.float32
    np.testing.assert_allclose(view.values, (10 * np.log10(stored.astype(np.float64))).astype(np.float32), rtol=1e-6)
    # The frame cells cover the window, reaching past each end by less than a frame.
    half = np.timedelta64(HOP * 10**9 // SR // 2, "ns")
    assert view.time.values[0] - half <= t0 < view.time.values[0] + half
    assert view.time.values[-1] - half < t1 <= view.time.values[-1] + half


@pytest.mark.parametrize("agg", ["mean", "max"])
def test_frame_zoom_with_bins_reduced_to_pixels_keeps_the_frames(atlas, store, agg):
    """64 whole bins (1..64) onto 16 pixels: each pixel is the mean (or max) of 4 bins' power, frame by frame."""
    from data_access import open_store

    t0, t1 = sec(100.0123), sec(100.3123)
    view = atlas.view(time=(t0, t1), freq=(DF / 2, 64.5 * DF), width=1000, height=16, agg=agg)
    frames = frames_meeting(t0, t1)
    np.testing.assert_array_equal(view.time.values, frame_centres(frames))
    np.testing.assert_allclose(view.freq.values, (np.arange(16) * 4 + 2.5) * DF)  # pixel centres
    groups = open_store(store)["0"].power.values[1:65, frames].astype(np.float64).reshape(16, 4, -1)
    expected = groups.mean(axis=1) if agg == "mean" else groups.max(axis=1)
    np.testing.assert_allclose(view.values, 10 * np.log10(expected), atol=1e-4)


def test_frame_zoom_draws_each_frame_over_its_centre_plus_minus_half_a_hop(atlas):
    """What HoloViews draws (each cell its centre ± half the coordinate step): the frames' own cells."""
    import holoviews as hv

    t0, t1 = sec(100.0123), sec(100.3123)
    for freq, bins in (((0, SR / 2), np.arange(N_FFT // 2 + 1)), ((900, 1100), np.arange(29, 36))):
        view = atlas.view(time=(t0, t1), freq=freq, width=1000, height=300)
        image = hv.Image((view.time.values, view.freq.values, view.values), kdims=["time", "freq"])
        frames = frames_meeting(t0, t1)
        assert len(bins) < 300 and list(bins) == list(bins_meeting(*freq))
        left, bottom, right, top = image.bounds.lbrt()
        assert left == frame_centres(frames[:1])[0] - 8 * MS  # hop / 2 = 8 ms
        assert right == frame_centres(frames[-1:])[0] + 8 * MS
        assert (bottom, top) == (bins[0] * DF - DF / 2, bins[-1] * DF + DF / 2)
        # Edge to edge over the window, past it by less than a cell at each end.
        assert left <= t0 < left + 16 * MS and right - 16 * MS < t1 <= right
        assert bottom <= freq[0] < bottom + DF and top - DF < freq[1] <= top


def test_bins_fewer_than_pixels_are_the_bins_at_any_zoom(tmp_path):
    """Every frame of a 128-sample noise block repeated is the same, so whatever frames a pixel
    averages (or takes the max of), each bin of each column is that frame's."""
    import soundfile as sf

    from data_access import open_store

    block = noise(HOP / SR, amp=0.3, seed=11)
    sf.write(tmp_path / "r_20260301_120000.wav", np.tile(block, 60 * SR // HOP), SR, subtype="FLOAT")
    store = ingest(open_timeline(tmp_path / "r_20260301_120000.wav"), tmp_path / "r.zarr", CONFIG, progress=False)
    frame = open_store(store)["0"].power.values[:, 100]
    atlas = open_atlas(store)
    bins = bins_meeting(500, 1500)
    for agg in ("mean", "max"):
        view = atlas.view(freq=(500, 1500), width=50, height=100, agg=agg)
        assert view.shape == (len(bins), 50) and view.attrs["level"] > 0
        np.testing.assert_array_equal(view.freq.values, bins * DF)
        kept = frame[bins] if agg == "mean" else keep_bits(frame[bins], MAX_BITS)  # (the max pyramid's precision)
        expected = np.repeat(10 * np.log10(kept.astype(np.float64))[:, None], 50, axis=1)
        np.testing.assert_allclose(view.values, expected, atol=1e-4)


CLICK_SR = 11025  # frame centres are not whole nanoseconds: times must be counted in samples
CLICK_EVERY = 1540  # samples between clicks, 0.1397 s (12 hops and 4 samples)


@pytest.fixture(scope="module")
def click_train(tmp_path_factory):
    """10 s at 11.025 kHz: a one-sample click every 1540 samples from sample 3000, over faint noise."""
    import soundfile as sf

    d = tmp_path_factory.mktemp("clicks")
    x = noise(10.0, sr=CLICK_SR, amp=0.001, seed=2)
    clicks = np.arange(3000, len(x), CLICK_EVERY)
    x[clicks] += 0.9
    sf.write(d / "c_20260301_120000.wav", x, CLICK_SR, subtype="FLOAT")
    store = ingest(open_timeline(d / "c_20260301_120000.wav"), d / "c.zarr", CONFIG, progress=False)
    return open_atlas(store), clicks


def test_clicks_sit_in_their_frames_columns_and_under_the_curve_peaks(click_train):
    """Each click is loudest in the frame whose centre is nearest it: the image's column for that
    frame is at that centre, the inter-click interval reads to within a hop, and the band curve's
    plateau over that frame's cell is centred on the column to within one point."""
    atlas, clicks = click_train
    t0 = T0 + np.timedelta64(2_000_000_000, "ns")
    t1 = T0 + np.timedelta64(3_000_000_000, "ns")
    view = atlas.view(time=(t0, t1), width=1000, height=200)
    curves = atlas.band_energy({"all": (0, CLICK_SR / 2)}, time=(t0, t1), points=1000)
    n_frames = (10 * CLICK_SR - N_FFT) // HOP + 1
    frames = frames_meeting(t0, t1, n_frames=n_frames, sr=CLICK_SR)
    assert view.shape == (N_FFT // 2 + 1, len(frames)) and len(frames) == 87
    np.testing.assert_array_equal(view.time.values, frame_centres(frames, sr=CLICK_SR))
    column_power = (10 ** (view.values.astype(np.float64) / 10)).sum(axis=0)
    times, curve = view.time.values, curves["all"].values
    click_times = T0 + np.round(clicks / CLICK_SR * 1e9).astype("int64").astype("timedelta64[ns]")
    inside = clicks[(click_times > t0 + 100 * MS) & (click_times < t1 - 100 * MS)]
    assert len(inside) == 5
    hop = np.timedelta64(round(HOP / CLICK_SR * 1e9), "ns")
    point = (t1 - t0) / 1000
    peaks = []
    for click in inside:
        at = T0 + np.timedelta64(round(click / CLICK_SR * 1e9), "ns")
        near = np.flatnonzero(np.abs(times - at) < 5 * hop)
        peak = times[near[np.argmax(column_power[near])]]
        nearest_frame = round((click - N_FFT / 2) / HOP)
        assert peak == frame_centres([nearest_frame], sr=CLICK_SR)[0]
        assert abs(peak - at) <= hop / 2
        # The curve: its points inside the loud frame's cell read that frame, a plateau.
        around = np.flatnonzero(np.abs(curves.time.values - at) < 5 * hop)
        plateau = curves.time.values[around[curve[around] == curve[around].max()]]
        middle = plateau[0] + (plateau[-1] - plateau[0]) / 2
        assert abs(middle - peak) <= point
        assert abs(plateau[0] - (peak - hop / 2)) <= point and abs(plateau[-1] - (peak + hop / 2)) <= point
        peaks.append(peak)
    intervals = np.diff(np.array(peaks)) / np.timedelta64(1, "ns") / 1e9
    assert np.abs(intervals - CLICK_EVERY / CLICK_SR).max() < HOP / CLICK_SR


def test_level_choice(atlas):
    """The coarsest level with at least half a column a pixel (2 / factor of them): at most two a pixel."""
    assert atlas.levels[0].factor == PYRAMID_FACTOR == 4
    whole = atlas.view(width=1200, height=100)
    k = whole.attrs["level"]
    assert atlas.levels[k].n_columns >= 600 and (k + 1 == len(atlas.levels) or atlas.levels[k + 1].n_columns < 600)
    assert atlas.view(time=(sec(100), sec(101)), width=1200, height=100).attrs["level"] == 0
    mid = atlas.view(time=(sec(0), sec(60)), width=1200, height=100)  # 3750 frames: 938 columns of level 1 meet it
    assert 0 < mid.attrs["level"] < k and mid.sizes["time"] == 938


@pytest.mark.parametrize("window", [(0, 360), (30, 150), (100, 101)])
def test_tone_and_chirp_show_where_they_are(atlas, window):
    view = atlas.view(time=(sec(window[0]), sec(window[1])), width=200, height=400)
    db = view.values
    valid = np.isfinite(db).all(axis=0)
    freqs = view.freq.values
    low = freqs < 1800
    tone_peak = freqs[np.nanargmax(np.where(low[:, None], db, -np.inf), axis=0)]
    assert (np.abs(tone_peak[valid] - TONE_HZ) <= SR / CONFIG.n_fft / 2 + SR / 2 / 400).all()
    # the chirp's peak above 1.8 kHz follows its sweep in the first file
    seconds = (view.time.values - T0) / np.timedelta64(1, "s")
    in_first = valid & (seconds < 238)
    peak = freqs[np.nanargmax(np.where(~low[:, None], db, -np.inf), axis=0)]
    expected = 2000 + 1500 * seconds / 240.0
    pixel = SR / 2 / 400
    column = (window[1] - window[0]) / 200 * 1500 / 240.0  # the sweep inside one pixel column
    assert np.abs(peak[in_first] - expected[in_first]).max() <= 2 * (SR / CONFIG.n_fft) + pixel + column


def test_gap_is_nan_exactly(atlas):
    view = atlas.view(time=(sec(200), sec(300)), width=1000, height=10)
    seconds = (view.time.values - T0) / np.timedelta64(1, "s")
    nan_columns = np.isnan(view.values).all(axis=0)
    # frames touching the gap (240..260 s) are NaN; a frame is 32 ms, a pixel 100 ms
    assert nan_columns[(seconds > 240.1) & (seconds < 259.9)].all()
    assert not nan_columns[(seconds < 239.8) | (seconds > 260.2)].any()


def test_max_keeps_an_isolated_click_visible_when_mean_dilutes_it(atlas):
    kwargs = dict(freq=(3800, 4000), width=300, height=4)  # above the chirp: only noise and the click
    mean = atlas.view(**kwargs)
    peak = atlas.view(agg="max", **kwargs)
    assert mean.attrs["level"] == peak.attrs["level"] >= 2  # 16 frames a column
    seconds = (mean.time.values - T0) / np.timedelta64(1, "s")
    at_click = np.abs(seconds - CLICK_AT).argmin()
    away = np.abs(seconds - CLICK_AT) > 5
    rise_max = np.nanmean(peak.values[:, at_click]) - np.nanmedian(peak.values[:, away])
    rise_mean = np.nanmean(mean.values[:, at_click]) - np.nanmedian(mean.values[:, away])
    assert rise_max > 30  # the click stands out of the noise in the max view
    assert rise_max - rise_mean > 9  # averaging 4**k frames dilutes it by ~10 log10(4**k) dB


def test_single_frame_zoom_shows_that_frame(atlas, store):
    from data_access import open_store

    level0 = open_store(store)["0"]
    i = 5000
    centre = level0.time.values[i]
    view = atlas.view(time=(centre - np.timedelta64(2, "ms"), centre + np.timedelta64(2, "ms")), width=4, height=129)
    assert view.attrs["level"] == 0 and view.shape == (129, 2)  # the frame and the one before it
    np.testing.assert_array_equal(view.time.values, level0.time.values[i - 1 : i + 1])
    expected = 10 * np.log10(level0.power.values[:, i])
    np.testing.assert_allclose(view.values[:, 1], expected[:129], rtol=1e-5, atol=1e-4)


def test_times_accept_strings_timestamps_and_datetime64(atlas):
    a = atlas.view(time=("2026-03-01T12:01:00", "2026-03-01T12:02:00Z"), width=50, height=5)
    b = atlas.view(
        time=(pd.Timestamp("2026-03-01 12:01"), pd.Timestamp("2026-03-01 13:02", tz="Europe/Paris")), width=50, height=5
    )
    c = atlas.view(time=(sec(60), sec(120)), width=50, height=5)
    np.testing.assert_array_equal(a.values, c.values)
    np.testing.assert_array_equal(b.values, c.values)


def band_power_level0(store, lo, hi, atlas):
    """Reference band power per level-0 frame, from the stored matrix by hand."""
    from data_access import open_store

    power = open_store(store)["0"].power.values.astype(np.float64)
    return (atlas._band_weights("ref", (lo, hi)) @ power) / (CONFIG.n_fft * np.sum(CONFIG.window_array**2))


@pytest.mark.parametrize("points", [7, 100, 640])
@pytest.mark.parametrize("band", [(900.0, 1100.0), (950.3, 1003.1), (0.0, 4000.0)])
def test_band_energy_from_level_k_equals_level0_averaged_over_the_same_frames(atlas, store, points, band):
    curves = atlas.band_energy({"b": band}, time=(sec(10), sec(350)), points=points)
    k = curves.attrs["level"]
    assert curves.b.shape == (points,) and curves.b.attrs["f_low"] == band[0]
    per_frame = band_power_level0(store, *band, atlas)
    lvl = atlas.levels[k]
    edges = sec(10) + (np.arange(points + 1) * (340 / points) * 1e9).astype("int64").astype("timedelta64[ns]")
    column_of_frame = np.arange(len(per_frame)) // PYRAMID_FACTOR**k
    column_time = lvl.column_times(0, lvl.n_columns)[column_of_frame]
    point_of_frame = np.searchsorted(edges, column_time, side="right") - 1
    for p in range(points):
        frames = per_frame[point_of_frame == p]
        if np.isfinite(frames).any():
            expected = 10 * np.log10(np.nanmean(frames))
            np.testing.assert_allclose(curves.b.values[p], expected, rtol=1e-5)
        else:
            assert np.isnan(curves.b.values[p])


@pytest.mark.parametrize("points", [7, 100, 5000])
@pytest.mark.parametrize("band", [(900.0, 1100.0), (0.0, 4000.0)])
def test_band_energy_peak_hold_is_the_loudest_column_and_bounds_the_loudest_frame(atlas, store, points, band):
    """agg="max": per point, the highest column's band sum of per-bin maxima (from level 0 by hand).

    Not the loudest frame's band power (the store keeps per-bin maxima only) but an upper bound of it,
    up to the max pyramid's rounding; at level 0 it is the loudest frame's.
    """
    from data_access import open_store

    span = (sec(10), sec(350))
    peak = atlas.band_energy({"b": band}, time=span, points=points, agg="max")
    mean = atlas.band_energy({"b": band}, time=span, points=points)
    k = peak.attrs["level"]
    assert peak.attrs["agg"] == "max" and mean.attrs["agg"] == "mean" and mean.attrs["level"] == k
    power = open_store(store)["0"].power.values.astype(np.float64)
    weights = atlas._band_weights("ref", band) / (CONFIG.n_fft * np.sum(CONFIG.window_array**2))
    per_frame = weights @ power
    lvl, n = atlas.levels[k], PYRAMID_FACTOR**k
    columns = -(-power.shape[1] // n)
    padded = np.pad(power, ((0, 0), (0, columns * n - power.shape[1])), constant_values=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-gap columns
        per_bin = np.nanmax(padded.reshape(len(power), columns, n), axis=2)
        # Level k > 0 keeps each bin's max to MAX_BITS (within 2**-4, 0.26 dB); level 0 is the frames themselves.
        column_peak = weights @ (keep_bits(per_bin, MAX_BITS).astype(np.float64) if k else per_bin)
        frame_peak = np.nanmax(np.pad(per_frame, (0, columns * n - len(per_frame)), constant_values=np.nan)
                               .reshape(columns, n), axis=1)  # fmt: skip
    edges = span[0] + (np.arange(points + 1) * (340 / points) * 1e9).astype("int64").astype("timedelta64[ns]")
    point_of_column = np.searchsorted(edges, lvl.column_times(0, lvl.n_columns), side="right") - 1
    checked = 0
    for p in range(points):
        inside = (point_of_column == p) & np.isfinite(column_peak)
        if not inside.any():
            continue
        checked += 1
        np.testing.assert_allclose(peak.b.values[p], 10 * np.log10(column_peak[inside].max()), atol=0.01)
        # An upper bound of the loudest frame and of the mean, but for the max pyramid's rounding (0.26 dB).
        assert peak.b.values[p] >= 10 * np.log10(frame_peak[inside].max()) - 0.27
        assert peak.b.values[p] >= mean.b.values[p] - 0.27
        if k == 0:
            np.testing.assert_allclose(peak.b.values[p], 10 * np.log10(frame_peak[inside].max()), atol=0.01)
    assert checked >= min(points, 7) // 2
    # Over the gap, no level either way.
    assert np.isnan(peak.b.values[np.isnan(mean.b.values)]).all()


def test_parseval_the_whole_band_is_the_mean_square(atlas, store):
    """Band 0..Nyquist over the whole recording = mean over frames of sum((x w)**2) / sum(w**2)."""
    timeline = open_timeline(sorted(p for p in store.parent.glob("*.wav")))
    y = timeline.read(0, timeline.n_samples).astype(np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(y, CONFIG.n_fft)[:: CONFIG.hop_length]
    w = CONFIG.window_array
    mean_square = np.nanmean(((frames * w) ** 2).sum(axis=1) / np.sum(w**2))
    curve = atlas.band_energy({"all": atlas.freq_range}, points=1)
    np.testing.assert_allclose(curve["all"].values[0], 10 * np.log10(mean_square), atol=1e-4)


def test_a_full_scale_sine_reads_minus_3_db(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "s_20260301_120000.wav", tone(1000.0, 30.0, amp=1.0), SR, subtype="FLOAT")
    atlas = open_atlas(ingest(open_timeline(tmp_path / "s_20260301_120000.wav"), tmp_path / "s.zarr", CONFIG))
    curves = atlas.band_energy({"tone": (900, 1100), "rest": (1500, 4000)}, points=10)
    np.testing.assert_allclose(curves.tone.values, 10 * np.log10(0.5), atol=0.01)
    assert (curves.rest.values < -60).all()


def test_gap_in_band_curves(atlas):
    curves = atlas.band_energy({"tone": (900, 1100)}, time=(sec(200), sec(300)), points=100)
    seconds = (curves.time.values - T0) / np.timedelta64(1, "s")
    assert np.isnan(curves.tone.values[(seconds > 241) & (seconds < 259)]).all()
    assert np.isfinite(curves.tone.values[(seconds < 239) | (seconds > 261)]).all()


def test_pan_rereads_only_the_new_edge(atlas):
    CACHE.clear()
    atlas.view(time=(sec(100), sec(130)), width=200, height=10)
    first = CACHE.misses
    atlas.view(time=(sec(100), sec(130)), width=200, height=10)
    assert CACHE.misses == first and CACHE.hits > 0
    atlas.view(time=(sec(102), sec(132)), width=200, height=10)
    assert CACHE.misses - first <= 1  # one new chunk at the edge at most


def test_netcdf_store_reads_the_same(store, tmp_path, atlas):
    timeline = open_timeline(sorted(p for p in store.parent.glob("*.wav")))
    nc = open_atlas(ingest(timeline, tmp_path / "q.nc", CONFIG, format="netcdf", time_chunk=64))
    a = nc.view(time=(sec(50), sec(90)), width=100, height=30)
    b = atlas.view(time=(sec(50), sec(90)), width=100, height=30)
    np.testing.assert_array_equal(a.values, b.values)


ERRORS = [
    (dict(time=(sec(100), sec(100))), r"time range .* is empty or inverted"),
    (dict(time=(sec(100), sec(50))), r"time range .* is empty or inverted"),
    (
        dict(time=(sec(-1), sec(10))),
        r"is outside the recording, which spans 2026-03-01T12:00:00.* \.\. 2026-03-01T12:06:00",
    ),
    (dict(time=(sec(300), sec(361))), r"is outside the recording"),
    (dict(time=("yesterday", sec(10))), r"cannot read 'yesterday' as a time"),
    (dict(freq=(100, 5000)), r"frequency range 100 \.\. 5000 Hz is outside 0 \.\. 4000 Hz \(Nyquist\)"),
    (dict(freq=(300, 300)), r"frequency range 300 \.\. 300 Hz is empty or inverted"),
    (dict(width=0), r"width=0 must be a whole number of pixels >= 1"),
    (dict(height=2.5), r"height=2.5 must be a whole number of pixels >= 1"),
    # A served page states its own plot size: bounded before anything is read or allocated.
    (dict(width=8000), r"width=8000 is more than the 4096 pixels a view may have \(MAX_WIDTH\)"),
    (dict(height=4000), r"height=4000 is more than the 2048 pixels a view may have \(MAX_HEIGHT\)"),
    (dict(agg="median"), r"agg='median' must be 'mean' or 'max'"),
]


@pytest.mark.parametrize(("kwargs", "match"), ERRORS)
def test_view_errors(atlas, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        atlas.view(**{"width": 10, "height": 10, **kwargs})


@pytest.mark.parametrize(
    ("bands", "kwargs", "match"),
    [
        ({"x": (100, 5000)}, {}, r"band 'x' = 100 \.\. 5000 Hz must have 0 <= f_low < f_high <= 4000 Hz"),
        ({"x": (500, 500)}, {}, r"band 'x' = 500 \.\. 500 Hz"),
        ({"x": (-5, 10)}, {}, r"band 'x' = -5 \.\. 10 Hz"),
        ({"x": "low"}, {}, r"band 'x'='low' must be a \(f_low, f_high\) pair in Hz"),
        ({}, {}, r"bands is empty"),
        ({"x": (1, 10)}, {"points": 0}, r"points=0 must be a whole number >= 1"),
        ({"x": (1, 10)}, {"points": 10**7}, r"points=10000000 is more than the 8192 points a curve may have"),
        ({"x": (1, 10)}, {"time": (sec(0), sec(400))}, r"is outside the recording"),
        ({"x": (1, 10)}, {"agg": "median"}, r"agg='median' must be 'mean' or 'max'"),
    ],
)
def test_band_energy_errors(atlas, bands, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        atlas.band_energy(bands, **{"points": 10, **kwargs})


def test_missing_store(tmp_path):
    with pytest.raises(SourceNotFoundError, match=r"no store at '.*nothing.zarr'"):
        open_atlas(tmp_path / "nothing.zarr")


@pytest.mark.parametrize(("window", "width"), [((0, 360), 64), ((10, 20), 64), ((100, 101), 32), ((0, 360), 200)])
def test_a_view_reads_only_the_chunks_under_it(atlas, window, width):
    """The chosen level has fewer than 2 x width columns in the window (unless it is the top
    level, at most 2048 columns in all), so a view reads that many columns' chunks plus the edges."""
    CACHE.clear()
    view = atlas.view(time=(sec(window[0]), sec(window[1])), width=width, height=16)
    level = atlas.levels[view.attrs["level"]]
    columns = level.n_columns if level is atlas.levels[-1] else 2 * width
    assert CACHE.misses <= -(-columns // level.time_chunk) + 2
