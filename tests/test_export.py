"""Model inputs (issue 20): clips and windows of a store's own matrix, the streaming export, the loader.

Exactness is against librosa on the recorded samples (real WAV files, across a
file boundary): a level-0 clip equals ``np.abs(librosa.stft(y, center=False))**2``
of the same samples within ``RTOL = 2.5e-4`` relative. Why that tolerance: the
store keeps level 0 as float32 with its mantissa rounded to 12 bits (within
2**-13 = 1.2e-4 relative of the exact power), and both sides are float32 FFTs
(1e-6 relative of a frame's energy); ``ATOL`` covers the bins that are 1e-7 of a
frame's peak, where float32's own roundoff is the larger term.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import librosa
import nbformat
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import xarray as xr
from conftest import SR, T0
from nbclient import NotebookClient
from test_audio import FILES, A, B, deployment, t  # noqa: F401  (the deployment: three files, a gap)

from dashboard.cli import main
from data_access import ParameterError, open_annotations, open_atlas
from data_access.export import ClipDataset, clips, export, iter_clips, selection_spans, window_spans, windows

RTOL = 2.5e-4
N_FFT, HOP = 256, 128  # the deployment's StftConfig(n_fft=256): hop n_fft / 2


@pytest.fixture
def store(deployment):  # noqa: F811  (test_audio's fixture)
    path, rec = deployment
    samples = np.concatenate([sf.read(rec / A, dtype="float32")[0], sf.read(rec / B, dtype="float32")[0]])
    return open_atlas(path), samples  # the timeline's first 20 s, contiguous across the A|B boundary


def librosa_power(samples: np.ndarray, j0: int, n: int) -> np.ndarray:
    """|STFT|**2 of frames j0..j0+n-1 of the timeline: frame j is samples [j * hop, j * hop + n_fft)."""
    y = samples[j0 * HOP : (j0 + n - 1) * HOP + N_FFT]
    return np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, window="hann", center=False)) ** 2


def columns(seconds: float) -> int:
    """Frames in a duration: rounded half up (62.5 -> 63)."""
    return int(np.floor(seconds * SR / HOP + 0.5))


def first_frame(centre_s: float, n: int) -> int:
    """The documented rule: the n frames whose centres are nearest the span's centre."""
    x = (centre_s * SR - N_FFT / 2) / HOP
    return int(np.floor(x - (n - 1) / 2 + 0.5))


def assert_power_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=1e-7 * float(np.max(expected)))


# ------------------------------------------------------------------------------------------- exactness
def test_a_clip_across_a_file_boundary_equals_librosa_on_the_same_samples(store):
    atlas, samples = store
    spans = pd.DataFrame({"start": [t(9.2), t(3.0)], "end": [t(10.6), t(4.5)], "label": ["tone", "other"]})
    out = atlas.clips(spans, duration=2.0, freq=(500, 2000))
    n = columns(2.0)
    assert out.dims == ("clip", "freq", "time") and out.dtype == np.float32
    assert out.shape == (2, len(out.freq), n)
    bins = np.flatnonzero(
        (np.arange(N_FFT // 2 + 1) * SR / N_FFT >= 500) & (np.arange(N_FFT // 2 + 1) * SR / N_FFT <= 2000)
    )
    np.testing.assert_array_equal(out.freq, bins * SR / N_FFT)  # whole bins, trimmed, never resampled
    for i, centre in enumerate((9.9, 3.75)):
        j0 = first_frame(centre, n)
        assert_power_close(out.values[i], librosa_power(samples, j0, n)[bins])
        # The clip's start is its first frame's cell: centre - hop / 2; its time axis the frames' centres from there.
        assert out.start.values[i] == t((j0 * HOP + N_FFT / 2 - HOP / 2) / SR)
        assert out.end.values[i] == out.start.values[i] + np.timedelta64(int(n * HOP / SR * 1e9), "ns")
    assert (j0 := first_frame(9.9, n)) * HOP < 10 * SR < (j0 + n - 1) * HOP + N_FFT  # it does cross the boundary
    np.testing.assert_allclose(out.time, (np.arange(n) + 0.5) * HOP / SR)
    assert list(out.label.values) == ["tone", "other"]
    assert list(out.span_start.values) == [t(9.2), t(3.0)]
    attrs = out.attrs
    assert (attrs["n_fft"], attrs["hop_length"], attrs["window"], attrs["sample_rate"]) == (N_FFT, HOP, "hann", SR)
    assert (attrs["level"], attrs["scale"], attrs["freq_low"], attrs["freq_high"]) == (0, "power", 500, 2000)
    assert attrs["store"] == "s.zarr" and attrs["software"].startswith("spectral-atlas ")


def test_spans_without_a_duration_take_the_frames_centred_inside(store):
    atlas, samples = store
    # Frame j is centred at (j * hop + n_fft / 2) / sr: frames 10..19 are centred in [t(c10), t(c20)).
    centre = [(j * HOP + N_FFT / 2) / SR for j in (10, 20, 50, 60)]
    out = atlas.clips([(t(centre[0]), t(centre[1]), "a"), (t(centre[2] - 1e-4), t(centre[3] - 1e-4))])
    assert out.sizes["time"] == 10 and list(out.label.values) == ["a", ""]
    assert_power_close(out.values[0], librosa_power(samples, 10, 10))
    assert_power_close(out.values[1], librosa_power(samples, 50, 10))
    with pytest.raises(ParameterError, match=r"different numbers of frames \(10, 20; 0.016 s each.*--duration"):
        atlas.clips([(t(centre[0]), t(centre[1])), (t(centre[2]), t(centre[2] + 20 * HOP / SR))])


def test_db_and_mel_clips_equal_librosa(store):
    atlas, samples = store
    n = columns(1.0)
    j0 = first_frame(10.0, n)
    power = librosa_power(samples, j0, n)
    db = atlas.clips([(t(9.5), t(10.5))], duration=1.0, scale="db")
    # 10 log10 of a value within RTOL: within 10 log10(1 + RTOL) = 0.0011 dB.
    np.testing.assert_allclose(db.values[0], librosa.power_to_db(power, top_db=None), atol=0.0011 + 1e-4)
    assert db.attrs["units"] == "dB re 1"
    mel = atlas.clips([(t(9.5), t(10.5))], duration=1.0, scale="mel", n_mels=40)
    expected = librosa.feature.melspectrogram(S=power, sr=SR, n_fft=N_FFT, n_mels=40)
    assert_power_close(mel.values[0], expected)
    np.testing.assert_allclose(mel.freq, librosa.mel_frequencies(42, fmin=0, fmax=SR / 2)[1:-1])
    band = atlas.clips([(t(9.5), t(10.5))], duration=1.0, scale="mel", n_mels=16, freq=(500, 3000))
    expected = librosa.feature.melspectrogram(S=power, sr=SR, n_fft=N_FFT, n_mels=16, fmin=500, fmax=3000)
    assert_power_close(band.values[0], expected)
    log = atlas.clips([(t(9.5), t(10.5))], duration=1.0, scale="log", n_mels=24, freq=(100, 4000))
    assert log.shape == (1, 24, n) and log.attrs["scale"] == "log"
    # A log row is a weighted mean of bins: a tone at 1 kHz is loudest in the row holding 1 kHz.
    row = int(np.argmax(log.values[0].mean(axis=1)))
    assert abs(np.log(log.freq.values[row] / 1000)) < np.log(4000 / 100) / 24


def test_a_level_1_clip_is_the_mean_of_power_over_its_frames(atlas):
    samples = sf.read(atlas.sources[0]["path"], dtype="float32")[0]  # (the 2-minute store has two levels)
    factor = atlas.levels[1].frames_per_column
    out = atlas.clips([(t(60.0), t(64.0))], duration=4.0, level=1)
    n, step = out.sizes["time"], factor * HOP / SR
    assert n == int(np.floor(4.0 / step + 0.5)) and out.attrs["frames_per_column"] == factor
    j0 = int(np.floor((62.0 - (N_FFT / 2 + (factor - 1) * HOP / 2) / SR) / step - (n - 1) / 2 + 0.5))
    frames = librosa_power(samples, j0 * factor, n * factor)
    expected = frames.reshape(frames.shape[0], n, factor).mean(axis=2)
    np.testing.assert_allclose(out.values[0], expected, rtol=1e-3, atol=1e-7 * float(expected.max()))


def test_windows_tile_a_range_with_the_frames_of_the_duration_rule(store):
    atlas, samples = store
    out = atlas.windows(time=(t(0), t(10)), length=2.0, hop=1.0, freq=(900, 1100))
    assert out.sizes["clip"] == 9 and set(out.label.values) == {""}
    np.testing.assert_array_equal(out.span_start.values, [t(k) for k in range(9)])
    n = out.sizes["time"]
    for k in (0, 8):
        j0 = first_frame(k + 1.0, n)
        bins = slice(int(np.ceil(900 / (SR / N_FFT))), int(1100 // (SR / N_FFT)) + 1)  # centres in [900, 1100]
        assert_power_close(out.values[k], librosa_power(samples, j0, n)[bins])
    assert window_spans(atlas, time=(t(0), t(3)), length=1.0).shape[0] == 3
    with pytest.raises(ParameterError, match="shorter than one window of 5 s"):
        windows(atlas, time=(t(0), t(3)), length=5.0)


def test_a_channel_of_a_multichannel_store(tmp_path):
    from conftest import noise, tone

    from data_access import StftConfig, ingest, open_timeline

    y = np.stack([tone(500, 5.0) + noise(5.0, seed=1), tone(1500, 5.0) + noise(5.0, seed=2)], axis=1)
    sf.write(tmp_path / "s_20260301_120000.wav", y, SR, subtype="FLOAT")
    timeline = open_timeline(tmp_path / "s_20260301_120000.wav", channel="all")
    atlas = open_atlas(ingest(timeline, tmp_path / "s.zarr", StftConfig(n_fft=N_FFT), progress=False))
    out = atlas.clips([(t(1), t(2))], duration=1.0, channel=1)
    n = out.sizes["time"]
    assert out.attrs["channel"] == "1"
    assert_power_close(out.values[0], librosa_power(np.ascontiguousarray(y[:, 1]), first_frame(1.5, n), n))
    with pytest.raises(ParameterError, match="channel=2 is not one of the channels of 's.zarr': 0, 1"):
        atlas.clips([(t(1), t(2))], duration=1.0, channel=2)


# ------------------------------------------------------------------------------------- gaps and edges
def test_spans_outside_the_recording_or_over_a_gap_follow_pad(store, caplog):
    atlas, _ = store
    spans = [(t(20.5), t(21.5), "gap"), (t(-0.5), t(0.5), "before"), (t(5), t(6), "inside")]
    out = atlas.clips(spans, duration=1.0)
    nan_columns = np.isnan(out.values).all(axis=1)
    assert nan_columns[0].all()  # the gap 20-25 s: no data at all
    assert nan_columns[1].any() and not nan_columns[1].all()  # half before the first sample
    assert not np.isnan(out.values[2]).any()
    zero = atlas.clips(spans, duration=1.0, pad="zero")
    assert not np.isnan(zero.values).any() and (zero.values[0] == 0).all()
    np.testing.assert_array_equal(zero.values[2], out.values[2])
    with caplog.at_level("INFO", logger="data_access.export"):
        kept = atlas.clips(spans, duration=1.0, pad="drop")
    assert list(kept.label.values) == ["inside"] and list(kept["clip"].values) == [2]
    assert (kept.attrs["dropped"], kept.attrs["dropped_outside"], kept.attrs["dropped_gap"]) == (2, 1, 1)
    assert "dropped 2 of 3 clips: 1 outside the recording, 1 over a gap" in caplog.text
    with pytest.raises(ParameterError, match="every one of the 1 clips was dropped.*1 over a gap"):
        atlas.clips(spans[:1], duration=1.0, pad="drop")


def test_gaps_are_found_a_window_of_frame_counts_at_a_time(store, monkeypatch):
    import data_access.export as export_module

    atlas, _ = store
    starts = np.arange(-1.0, 30.0, 0.25)
    spans = [(t(s), t(s + 0.5)) for s in starts[::-1]]  # (not in time order)
    whole = atlas.clips(spans, duration=0.5, pad="drop")
    monkeypatch.setattr(export_module, "COUNTS_WINDOW", 7)  # frame_count read 7 columns at a time
    windowed = atlas.clips(spans, duration=0.5, pad="drop")
    np.testing.assert_array_equal(windowed["clip"], whole["clip"])
    # Dropped are exactly the clips with a NaN column (outside the recording, or in the gap).
    padded = atlas.clips(spans, duration=0.5).values
    np.testing.assert_array_equal(whole["clip"], np.flatnonzero(~np.isnan(padded).any(axis=(1, 2))))
    assert whole.attrs["dropped_gap"] == 22 and whole.attrs["dropped_outside"] == 5


@pytest.mark.parametrize(
    ("spans", "options", "message"),
    [
        ([], {}, "the selection set is empty"),
        (pd.DataFrame({"start": [], "end": []}), {}, "the selection set is empty"),
        ([(T0, T0 + np.timedelta64(1, "s"))], {"duration": 0.01}, r"duration=0.01 s is shorter than one frame: "),
        ([(T0, T0 + np.timedelta64(1, "s"))], {"freq": (0, 5000)}, r"0 .. 5000 Hz is outside 0 .. 4000 Hz \(Nyquist"),
        ([(T0, T0 + np.timedelta64(1, "s"))], {"freq": (2000, 1000)}, "empty or inverted"),
        ([(T0, T0 + np.timedelta64(1, "s"))], {"freq": (1001, 1020)}, "holds no bin centre"),
        ([(T0, T0 + np.timedelta64(1, "s"))], {"scale": "bark"}, "scale='bark' is not one of 'power', 'db'"),
        ([(T0, T0 + np.timedelta64(1, "s"))], {"pad": "edge"}, "pad='edge' is not one of 'nan', 'zero', 'drop'"),
        ([(T0, T0 + np.timedelta64(1, "s"))], {"level": 9}, "level=9 is not one of the levels of 's.zarr'"),
        ([(T0, T0 + np.timedelta64(1, "s"))], {"channel": 2}, "only channel 0"),
        ([(T0 + np.timedelta64(1, "s"), T0)], {}, "span 0 ends at or before its start"),
        (pd.DataFrame({"begin": [T0]}), {}, "spans has no column 'start'"),
    ],
)
def test_bad_input_is_one_clear_error(store, spans, options, message):
    with pytest.raises(ParameterError, match=message):
        clips(store[0], spans, **options)


def test_a_result_too_large_for_memory_names_the_streaming_ways(store, monkeypatch):
    import data_access.export as export_module

    monkeypatch.setattr(export_module, "MAX_BYTES", 1000)
    with pytest.raises(
        ParameterError, match=r"are 0.0325 MB, more than the 0.001 MB .*spectral-atlas export .*export.iter_clips"
    ):
        store[0].clips([(t(1), t(2))], duration=1.0)
    batches = list(iter_clips(store[0], [(t(1), t(2)), (t(3), t(4)), (t(5), t(6))], duration=1.0, batch=2))
    assert [b.sizes["clip"] for b in batches] == [2, 1] and list(batches[1]["clip"].values) == [2]


def test_frames_reads_whole_columns_as_stored_and_checks_them(store):
    atlas, samples = store
    frames = atlas.frames(columns=(100, 110), bins=(10, 20))
    assert frames.dims == ("freq", "time") and frames.shape == (10, 10)
    assert_power_close(frames.values, librosa_power(samples, 100, 10)[10:20])
    assert atlas.frame_counts().shape == (atlas.levels[0].n_columns,)
    with pytest.raises(ParameterError, match=r"columns=\(5, 5\) must satisfy 0 <= first < stop <= "):
        atlas.frames(columns=(5, 5))
    with pytest.raises(ParameterError, match="bins=.*must be a pair of whole numbers"):
        atlas.frames(columns=(0, 1), bins=(0.5, 3))


# --------------------------------------------------------------------------------- export and the loader
@pytest.mark.parametrize("suffix", [".zarr", ".nc", ".npz"])
def test_the_loader_reads_back_what_clips_returns_item_by_item(store, tmp_path, suffix):
    atlas, _ = store
    rng = np.random.default_rng(0)
    starts = np.sort(rng.uniform(0, 28, 40))
    spans = pd.DataFrame({"start": [t(s) for s in starts], "end": [t(s + 0.3) for s in starts]})
    spans["label"] = rng.choice(["whistle", "click", "noise"], len(spans))
    expected = atlas.clips(spans, duration=0.5, freq=(300, 3000), pad="drop")
    done = export(atlas, spans, tmp_path / f"clips{suffix}", duration=0.5, freq=(300, 3000), pad="drop")
    assert done.clips == expected.sizes["clip"] and done.dropped["gap"] > 0  # some fall in the 20-25 s gap
    ds = ClipDataset(done.path)
    assert len(ds) == done.clips and ds.labels.tolist() == expected.label.values.tolist()
    np.testing.assert_array_equal(ds.freq, expected.freq)
    np.testing.assert_array_equal(ds.start, expected.start)
    assert ds.parameters["n_fft"] == N_FFT and ds.parameters["scale"] == "power" and "float32" in ds.description
    # As a framework's data loader uses it: shuffled indices, items stacked into batches.
    order = rng.permutation(len(ds))
    for batch in np.array_split(order, 4):
        items = [ds[int(i)] for i in batch]
        x = np.stack([item[0] for item in items])
        assert x.dtype == np.float32 and x.shape == (len(batch), *expected.shape[1:])
        np.testing.assert_array_equal(x, expected.values[batch])
        assert [item[1] for item in items] == expected.label.values[batch].tolist()
    assert ds[-1][1] == expected.label.values[-1]
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_the_datasets_open_with_their_own_readers(store, tmp_path):
    atlas, _ = store
    spans = [(t(1), t(2), "a"), (t(3), t(4), "b")]
    for suffix in (".zarr", ".nc"):
        export(atlas, spans, tmp_path / f"d{suffix}", duration=1.0, scale="db")
        with xr.open_dataset(tmp_path / f"d{suffix}", engine="zarr" if suffix == ".zarr" else "h5netcdf") as ds:
            assert ds.X.dims == ("clip", "freq", "time") and ds.X.dtype == np.float32
            assert list(ds.label.values) == ["a", "b"] and ds.start.dtype == np.dtype("datetime64[ns]")
            assert json.loads(ds.attrs["parameters"])["scale"] == "db" and "dB" in ds.attrs["description"]
    export(atlas, spans, tmp_path / "d.npz", duration=1.0)
    with np.load(tmp_path / "d.npz") as z:
        assert z["X"].shape == (2, N_FFT // 2 + 1, columns(1.0)) and list(z["label"]) == ["a", "b"]
    with zipfile.ZipFile(tmp_path / "d.npz") as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}


def test_a_failed_export_leaves_nothing_and_keeps_what_was_there(store, tmp_path, monkeypatch):
    import data_access.export as export_module

    atlas, _ = store
    tmp_path = tmp_path / "out"  # (the deployment is in tmp_path itself)
    tmp_path.mkdir()
    spans = [(t(k), t(k + 0.5)) for k in range(10)]
    calls = {"n": 0}
    real = export_module._Plan._fill

    def failing(self, *args):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError("disk full")
        return real(self, *args)

    monkeypatch.setattr(export_module, "BATCH_CLIPS", 2)
    monkeypatch.setattr(export_module._Plan, "_fill", failing)
    for suffix in (".zarr", ".nc", ".npz"):
        calls["n"] = 0
        with pytest.raises(OSError, match="disk full"):
            export(atlas, spans, tmp_path / f"x{suffix}", duration=0.5)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(export_module._Plan, "_fill", real)
    export(atlas, spans[:2], tmp_path / "x.npz", duration=0.5)
    monkeypatch.setattr(export_module._Plan, "_fill", failing)
    calls["n"] = 0
    with pytest.raises(OSError):
        export(atlas, spans, tmp_path / "x.npz", duration=0.5, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"] and len(ClipDataset(tmp_path / "x.npz")) == 2


# ----------------------------------------------------------------------------------------------- the CLI
@pytest.fixture
def marked(store, tmp_path):
    """The deployment's store with three selections in an annotations database."""
    atlas, _ = store
    db = tmp_path / "marks.sqlite"
    with open_annotations(db, author="test") as marks:
        for (a, b), label in zip([(1, 2), (9.5, 10.5), (26, 27)], ["whistle", "click", "whistle"], strict=True):
            marks.add(atlas.name, start=t(a), end=t(b), low_hz=500, high_hz=2000, label=label)
    return atlas, db


def test_export_command_writes_the_selections_of_a_label(marked, tmp_path, cli):
    atlas, db = marked
    out = tmp_path / "w.zarr"
    args = ["export", str(atlas.path), "--annotations", str(db), "--label", "whistle", "--duration", "1"]
    done = subprocess.run([*cli, *args, "--freq", "500:2000", "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote 2 clips of 49 x {columns(1.0)} to {out}"
    ds = ClipDataset(out)
    assert ds.labels.tolist() == ["whistle", "whistle"] and ds.coords["id"].tolist() == [1, 3]
    np.testing.assert_array_equal(
        ds[1][0],
        atlas.clips(selection_spans(atlas, annotations=db, labels=["whistle"]), duration=1.0, freq=(500, 2000)).values[
            1
        ],
    )


def test_export_command_reads_a_selection_table(store, tmp_path, capsys):
    atlas, _ = store
    table = tmp_path / "table.csv"
    table.write_text(
        "start,end,low_hz,high_hz,label\n"
        "2026-03-01T12:00:01Z,2026-03-01T12:00:02Z,500,2000,whistle\n"
        "2026-03-01T12:00:05Z,2026-03-01T12:00:06Z,500,2000,click\n"
        "2026-03-01T12:00:12Z,2026-03-01T12:00:13Z,500,2000,whistle\n"
    )
    out = tmp_path / "mel.npz"
    args = ["export", str(atlas.path), "--selections", str(table), "--label", "whistle", "--end", "2026-03-01T12:00:10"]
    assert main([*args, "--duration", "1", "--scale", "mel", "--n-mels", "20", "-o", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 1 clips of 20 x {columns(1.0)} to {out}"
    ds = ClipDataset(out)
    assert ds.labels.tolist() == ["whistle"] and ds.parameters["scale"] == "mel" and ds.parameters["n_mels"] == 20
    expected = atlas.clips([(t(1), t(2))], duration=1.0, scale="mel", n_mels=20)
    np.testing.assert_array_equal(ds[0][0], expected.values[0])
    assert main(
        ["export", str(atlas.path), "--selections", str(table), "--label", "song", "-o", str(tmp_path / "x.nc")]
    )
    assert "unknown label 'song': the selections of " in capsys.readouterr().err


def test_export_shows_progress_in_clips(store, tmp_path, capsys):
    export(store[0], [(t(k), t(k + 1)) for k in range(5)], tmp_path / "p.npz", duration=1.0, progress=True)
    assert re.search(r"export: 100%.*5/5 \[", capsys.readouterr().err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--annotations", "{db}", "--label", "song"],
            "unknown label 'song': the selections of s.zarr in .* have the labels 'click', 'whistle'",
        ),
        (
            ["--annotations", "{db}", "--start", "2026-03-02T00:00:00"],
            "the selection set is empty: s.zarr in .* has no selections overlapping that time range",
        ),
        (["--annotations", "{db}", "--duration", "0.001"], "duration=0.001 s is shorter than one frame"),
        (["--annotations", "{db}", "--duration", "1", "--freq", "100:9000"], r"outside 0 .. 4000 Hz \(Nyquist\)"),
        (["--windows", "1", "-o", "{tmp}/x.csv"], r"its suffix '.csv' is not one of .zarr, .nc, .npz"),
        (["--windows", "1", "-o", "{tmp}/there.npz"], "there.npz' already exists; pass --overwrite to replace it"),
        (["--windows", "1", "--label", "a"], "--windows are unlabelled"),
        (
            [
                "--annotations",
                "{db}",
                "--duration",
                "1",
                "--pad",
                "drop",
                "--start",
                "2026-03-01T12:00:20.5",
                "--end",
                "2026-03-01T12:00:24",
            ],
            "the selection set is empty",
        ),
    ],
)
def test_export_command_bad_input_is_one_line(marked, tmp_path, capsys, args, message):
    atlas, db = marked
    (tmp_path / "there.npz").write_bytes(b"mine")
    args = [a.format(db=db, tmp=tmp_path) for a in args]
    output = [] if "-o" in args else ["-o", str(tmp_path / "out.nc")]
    assert main(["export", str(atlas.path), *args, *output]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("spectral-atlas: error: ")
    assert re.search(message, err), err
    assert (tmp_path / "there.npz").read_bytes() == b"mine" and not (tmp_path / "out.nc").exists()


def test_export_command_drops_and_says_why_and_overwrites_when_asked(marked, tmp_path, capsys):
    atlas, db = marked
    out = tmp_path / "all.nc"
    assert main(["export", str(atlas.path), "--windows", "2:1", "--pad", "drop", "-o", str(out), "--no-progress"]) == 0
    line = capsys.readouterr().out.strip()
    # 0..30 s in 2 s windows every 1 s: 29. A frame reaches n_fft / 2 = 16 ms either side of its centre, so
    # the windows starting at 18..25 s hold frames touching the 20-25 s gap; the last (28..30 s) would need a
    # frame centred at 30.0 s, whose samples end after the recording's.
    assert line.endswith("dropped 9: 1 outside the recording, 8 over a gap (frames without data)"), line
    assert line.startswith(f"wrote 20 clips of 129 x 125 to {out}")
    assert main(["export", str(atlas.path), "--windows", "2", "-o", str(out)]) == 1
    assert main(["export", str(atlas.path), "--windows", "2", "-o", str(out), "--overwrite", "--no-progress"]) == 0
    assert len(ClipDataset(out)) == 15


# ---------------------------------------------------------------------------------------- bounded memory
# The peak of this process's own memory: VmHWM (ru_maxrss would carry over the parent's peak across exec).
_RSS = """
import re, sys
from dashboard.cli import main
status = main(sys.argv[1:])
print(re.search(r"VmHWM:\\s*(\\d+) kB", open("/proc/self/status").read()).group(1))
sys.exit(status)
"""


def test_an_export_of_10000_clips_holds_one_batch_in_memory(atlas, tmp_path, report):
    """Peak RSS exporting 10 000 clips is that of 1 000 (within 30 %), though the dataset is ten times larger.

    The clips are 0.5 s windows of the 2-minute ``atlas`` store (129 bins x 31 frames, 16 KB each): 160 MB
    of X for 10 000, which a writer holding them all would add to a peak of about 200 MB.
    """
    peaks = {}
    for count, hop in ((1000, 0.1195), (10_000, 0.01195)):
        out = tmp_path / f"w{count}.zarr"
        args = ["export", str(atlas.path), "--windows", f"0.5:{hop}", "-o", str(out), "--no-progress"]
        done = subprocess.run([sys.executable, "-c", _RSS, *args], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert len(ClipDataset(out)) == pytest.approx(count, rel=0.01)
        peaks[count] = int(done.stdout.split()[-1]) / 1024  # KiB -> MiB
    report("export peak RSS, 1 000 vs 10 000 clips", f"{peaks[1000]:.0f} MB vs {peaks[10_000]:.0f} MB")
    assert peaks[10_000] < 1.3 * peaks[1000]


# ------------------------------------------------------------------------------------------ the notebook
def test_the_model_inputs_notebook_runs_top_to_bottom(tmp_path):
    from test_jupyter import ROOT

    nb = nbformat.read(ROOT / "examples" / "model_inputs.ipynb", as_version=4)
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")  # stored without outputs
    (cell,) = (c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = f"from pathlib import Path\nDEMO_DIR = Path({str(tmp_path / 'demo')!r})\nDEMO_HOURS = 0.05"
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    nbformat.write(nb, tmp_path / "executed.ipynb")
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "batch (16, 1985, 63) float32" in text and "wrote 6 clips of 1985 x 63" in text
    (image,) = (c for c in nb.cells if "image" in c.metadata.get("tags", []))
    assert any("application/vnd.holoviews_exec.v0+json" in o.get("data", {}) for o in image.outputs)
    assert (tmp_path / "demo" / "clips.zarr").exists()
