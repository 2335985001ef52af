"""Audio of a store's span: the recorded samples, moved and changed recordings, reconstruction, listening, saving."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import zarr
from conftest import SR, T0, noise, tone
from test_sources import write_mseed

from data_access import (
    AudioClip,
    FormatError,
    ParameterError,
    SourceNotFoundError,
    StftConfig,
    StoreExistsError,
    ingest,
    open_atlas,
    open_source,
    open_timeline,
    write_audio,
)
from data_access.audio import RECONSTRUCTED, band_filter, prepare, read_audio

# A deployment of three files in two folders: 0-10 s and 10-20 s (day1/), a gap, 25-30 s (day2/).
FILES = {"day1/20260301_120000.wav": 10.0, "day1/20260301_120010.wav": 10.0, "day2/20260301_120025.wav": 5.0}
A, B, C = (Path(name) for name in FILES)


def t(seconds: float) -> np.datetime64:
    """``seconds`` after the recording's start."""
    return T0 + np.timedelta64(int(round(seconds * 1e9)), "ns")


def run(cli, *args):
    return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def deployment(tmp_path):
    """(store, folder of the recordings): a 1 kHz tone over noise in each file, as 32-bit float WAV."""
    rec = tmp_path / "rec"
    for k, (name, seconds) in enumerate(FILES.items()):
        (rec / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(rec / name, tone(1000.0, seconds, amp=0.3) + noise(seconds, amp=0.05, seed=k), SR, subtype="FLOAT")
    store = ingest(open_timeline(rec), tmp_path / "s.zarr", StftConfig(n_fft=256), progress=False)
    return store, rec


def samples_of(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32")[0]


def rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2))


# -------------------------------------------------------------------------------- the recorded samples
def test_samples_across_a_file_boundary_are_the_files_own(deployment):
    store, rec = deployment
    atlas = open_atlas(store)
    samples, rate = atlas.audio(time=(t(8), t(12)))  # unpacks as the (samples, sample_rate)
    assert rate == SR
    assert np.array_equal(samples, np.concatenate([samples_of(rec / A)[8 * SR :], samples_of(rec / B)[: 2 * SR]]))
    clip = atlas.audio(time=(t(8), t(12)))
    assert clip.samples.dtype == np.float32 and clip.mask.all() and clip.start == t(8)
    assert (clip.reconstructed, clip.note, clip.duration, clip.end) == (False, "recorded audio", 4.0, t(12))


def test_the_span_is_put_on_the_sample_grid(deployment):
    store, rec = deployment
    clip = open_atlas(store).audio(time=(t(1 + 0.4 / SR), t(2 + 0.6 / SR)))
    assert clip.start == t(1) and clip.n_samples == SR + 1
    assert np.array_equal(clip.samples, samples_of(rec / A)[SR : 2 * SR + 1])


def test_a_gap_reads_as_zeros_with_the_mask_false_exactly_over_it(deployment):
    store, rec = deployment
    clip = open_atlas(store).audio(time=(t(18), t(27)))
    expected = np.zeros(9 * SR, bool)
    expected[: 2 * SR] = expected[7 * SR :] = True
    assert np.array_equal(clip.mask, expected)
    assert not clip.samples[~expected].any()
    assert np.array_equal(clip.samples[: 2 * SR], samples_of(rec / B)[8 * SR :])
    assert np.array_equal(clip.samples[7 * SR :], samples_of(rec / C)[: 2 * SR])
    assert clip.note == "recorded audio; 5 s of gaps as silence"


def test_each_source_records_its_size(deployment):
    store, rec = deployment
    sizes = {Path(r["path"]).name: r["size"] for r in open_atlas(store).sources}
    assert sizes == {name.name: (rec / name).stat().st_size for name in (A, B, C)}


@pytest.mark.parametrize(
    ("channel_setting", "channel", "expected"),
    [
        ("all", None, lambda y: y[:, 0]),
        ("all", 1, lambda y: y[:, 1]),
        ("mean", None, lambda y: y.mean(axis=1)),
        (1, None, lambda y: y[:, 1]),
    ],
)
def test_the_channel_the_store_holds(tmp_path, channel_setting, channel, expected):
    y = np.stack([noise(3.0, seed=1), tone(500.0, 3.0)], axis=1)
    path = tmp_path / "st_20260301_120000.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    store = ingest(open_timeline(path, channel=channel_setting), tmp_path / "s.zarr", StftConfig(n_fft=256))
    clip = open_atlas(store).audio(time=(t(1), t(2)), channel=channel)
    assert clip.samples.shape == (SR,)
    np.testing.assert_array_equal(clip.samples, expected(samples_of(path))[SR : 2 * SR].astype(np.float32))


def test_resampled_sources_read_as_the_ingest_read_them(tmp_path):
    first, second = tmp_path / "a_20260301_120000.wav", tmp_path / "a_20260301_120002.wav"
    sf.write(first, noise(2.0, seed=1), SR, subtype="FLOAT")
    sf.write(second, noise(2.0, sr=2 * SR, seed=2), 2 * SR, subtype="FLOAT")  # twice the rate: resampled
    timeline = open_timeline(tmp_path, sample_rate=SR)
    store = ingest(timeline, tmp_path / "s.zarr", StftConfig(n_fft=256))
    clip = open_atlas(store).audio(time=(t(1.5), t(3.5)))
    np.testing.assert_array_equal(clip.samples, timeline.read(int(1.5 * SR), int(3.5 * SR)))


def test_a_miniseed_gap_inside_a_file_is_masked(tmp_path):
    counts = (1000 * noise(10.0, amp=1.0)).astype(np.int32)
    path = write_mseed(tmp_path / "OO.HYD.mseed", [(0.0, counts[: 5 * SR]), (7.0, counts[7 * SR :])])
    store = ingest(open_timeline(path), tmp_path / "s.zarr", StftConfig(n_fft=256))
    clip = open_atlas(store).audio(time=(t(4), t(8)))
    assert np.array_equal(clip.mask, np.r_[np.ones(SR, bool), np.zeros(2 * SR, bool), np.ones(SR, bool)])
    np.testing.assert_array_equal(clip.samples[clip.mask], np.r_[counts[4 * SR : 5 * SR], counts[7 * SR : 8 * SR]])


# ------------------------------------------------------------------------------ moved and changed recordings
def _move(rec: Path, root: Path, layout: str) -> None:
    if layout == "same tree":  # root/day1/..., root/day2/...: by the path relative to the sources' folder
        shutil.move(rec, root)
        return
    for name in FILES:
        where = root if layout == "flat" else root / "deep" / Path(name).stem[-2:]  # found by name, once
        where.mkdir(parents=True, exist_ok=True)
        shutil.move(rec / name, where / Path(name).name)


@pytest.mark.parametrize("layout", ["same tree", "flat", "by name anywhere"])
def test_moved_recordings_are_found_under_audio_root(deployment, tmp_path, layout):
    store, rec = deployment
    before = open_atlas(store).audio(time=(t(8), t(27)))
    root = tmp_path / "elsewhere"
    _move(rec, root, layout)
    clip = open_atlas(store, audio_root=root).audio(time=(t(8), t(27)))
    assert not clip.reconstructed and np.array_equal(clip.samples, before.samples)
    assert np.array_equal(clip.mask, before.mask)


def test_missing_recordings_are_refused_naming_the_file_and_audio_root(deployment, tmp_path):
    store, rec = deployment
    shutil.move(rec, tmp_path / "moved")
    with pytest.raises(
        SourceNotFoundError,
        match=r"^cannot read the audio of 's.zarr': 1 source file of the span not found \('20260301_120010.wav' at "
        r"'.*rec/day1/20260301_120010.wav'\); pass --audio-root DIR \(audio_root=\) where they moved$",
    ):
        open_atlas(store).audio(time=(t(12), t(14)), reconstruct=False)


def test_a_name_found_twice_under_audio_root_is_not_taken(deployment, tmp_path):
    store, rec = deployment
    root = tmp_path / "elsewhere"
    for copy in ("x", "y"):
        (root / copy).mkdir(parents=True)
        shutil.copy(rec / B, root / copy / B.name)
    shutil.rmtree(rec)
    with pytest.raises(SourceNotFoundError, match=r"'20260301_120010.wav' at .*, nor under '.*elsewhere'\)$"):
        open_atlas(store, audio_root=root).audio(time=(t(12), t(14)), reconstruct=False)


def _append_bytes(path: Path) -> str:
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(bytes(10))  # after the data chunk: libsndfile reads the same samples, only the size tells
    return rf"size {size} then, {size + 10} now"


def _rewrite(path: Path) -> str:
    sf.write(path, noise(8.0, seed=9), SR, subtype="PCM_16")
    return r"n_samples 80000 then, 64000 now"


@pytest.mark.parametrize("change", [_append_bytes, _rewrite])
@pytest.mark.parametrize("moved", [False, True])
def test_a_changed_recording_is_refused_naming_it(deployment, tmp_path, change, moved):
    store, rec = deployment
    differs = change(rec / B)
    if moved:
        _move(rec, tmp_path / "elsewhere", "same tree")
    atlas = open_atlas(store, audio_root=tmp_path / "elsewhere" if moved else None)
    with pytest.raises(
        FormatError,
        match=rf"^cannot read the audio of 's.zarr': its source '20260301_120010.wav' has changed since it was "
        rf"ingested \({differs}\)$",
    ):
        atlas.audio(time=(t(9), t(11)))  # refused, never reconstructed
    assert atlas.audio(time=(t(1), t(2))).mask.all()  # a span of the other files still plays


def test_a_changed_recording_is_refused_even_beside_a_missing_one(deployment):
    store, rec = deployment
    (rec / A).unlink()
    _append_bytes(rec / B)
    with pytest.raises(FormatError, match=r"its source '20260301_120010.wav' has changed since it was ingested"):
        open_atlas(store).audio(time=(t(8), t(12)))  # not reconstructed: B is there, and changed


def test_relative_recorded_paths_are_found_from_the_stores_folder(tmp_path, monkeypatch):
    sf.write(tmp_path / "r_20260301_120000.wav", noise(2.0), SR, subtype="FLOAT")
    monkeypatch.chdir(tmp_path)
    store = ingest(open_timeline("r_20260301_120000.wav"), "s.zarr", StftConfig(n_fft=256))
    assert open_atlas(store).sources[0]["path"] == "r_20260301_120000.wav"  # as given
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    clip = open_atlas(tmp_path / "s.zarr").audio(time=(t(0.5), t(1)))
    assert not clip.reconstructed and np.array_equal(clip.samples, noise(2.0)[SR // 2 : SR])


def test_a_store_from_before_sizes_were_recorded_skips_that_check(deployment):
    store, rec = deployment
    root = zarr.open_group(store, mode="r+")
    records = [{k: v for k, v in r.items() if k != "size"} for r in json.loads(root.attrs["sources"])]
    root.attrs["sources"] = json.dumps(records)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
        zarr.consolidate_metadata(store)
    _append_bytes(rec / B)
    clip = open_atlas(store).audio(time=(t(9), t(11)))
    assert not clip.reconstructed and clip.mask.all()


# ------------------------------------------------------------------------------------------ reconstruction
def test_missing_recordings_are_reconstructed_from_the_spectrogram(deployment, tmp_path, report):
    store, rec = deployment
    original = open_atlas(store).audio(time=(t(1), t(5))).samples
    shutil.move(rec, tmp_path / "gone")
    clip = open_atlas(store).audio(time=(t(1), t(5)))
    assert clip.reconstructed and clip.note.startswith(RECONSTRUCTED + "; 1 source file of the span not found")
    assert clip.n_samples == 4 * SR and clip.start == t(1) and clip.mask.all()
    spectrum = np.abs(np.fft.rfft(clip.samples)) ** 2
    freqs = np.fft.rfftfreq(clip.n_samples, 1 / SR)
    df = SR / 256  # the store's bin width
    assert abs(freqs[np.argmax(spectrum)] - 1000) <= df / 2  # the tone's bin dominates
    level = rms_db(clip.samples) - rms_db(original)
    assert abs(level) < 0.5  # the store's magnitudes, so the same energy

    def tone_share(x):
        power = np.abs(np.fft.rfft(x)) ** 2
        return power[np.abs(freqs - 1000) <= df].sum() / power.sum()

    report(
        "Griffin-Lim clip: level vs the recording (dB), energy within a bin of the tone",
        f"{level:+.3f}, {tone_share(clip.samples):.3f} (recording {tone_share(original):.3f})",
    )
    assert tone_share(clip.samples) == pytest.approx(tone_share(original), abs=0.03)
    # Its spectrogram against the stored one over the same frames (the span starts on a frame: hop 128 at 8 kHz).
    atlas = open_atlas(store)
    hop = atlas.stft.hop_length
    first = int(round(1 * SR / hop))
    rebuilt = np.abs(librosa.stft(clip.samples, n_fft=256, hop_length=hop, window="hann", center=False)) ** 2
    j = np.arange(rebuilt.shape[1])
    stored = atlas._read_columns(atlas.levels[0], "power", first, first + len(j))
    convergence = np.linalg.norm(np.sqrt(rebuilt) - np.sqrt(stored)) / np.linalg.norm(np.sqrt(stored))
    db = 10 * np.log10(rebuilt / stored)
    tone_bins = db[np.abs(np.arange(stored.shape[0]) * SR / 256 - 1000) <= SR / 256]  # the tone and its neighbours
    frames = 10 * np.log10(rebuilt.sum(axis=0) / stored.sum(axis=0))  # each frame's energy
    noise_bins = db[stored < stored.max() * 1e-2]
    report(
        "Griffin-Lim clip vs the stored spectrogram: spectral convergence; median |dB| at the tone, "
        "of frame energy, of the noise's bins",
        f"{convergence:.3f}; {np.median(np.abs(tone_bins)):.2f}, {np.median(np.abs(frames)):.2f}, "
        f"{np.median(np.abs(noise_bins)):.2f} dB",
    )
    # The tone keeps its level; each frame its energy; the noise (whose phase no one can know) its level on the whole.
    assert convergence < 0.3 and np.median(np.abs(tone_bins)) < 1.5 and np.median(np.abs(frames)) < 1.0
    assert abs(np.median(noise_bins)) < 3.0


def test_a_reconstruction_is_silent_over_a_gap(deployment, tmp_path):
    store, rec = deployment
    shutil.move(rec, tmp_path / "gone")
    clip = open_atlas(store).audio(time=(t(18), t(27)))
    assert clip.reconstructed and clip.n_samples == 9 * SR
    gap = slice(2 * SR, 7 * SR)  # the recording's gap: no frame with data covers it
    assert not clip.mask[gap].any() and not clip.samples[gap].any()
    assert clip.mask[: 2 * SR - 256].all() and clip.mask[7 * SR + 256 :].all()  # frames reach to within n_fft of it


def test_a_reconstruction_is_bounded(deployment, tmp_path):
    store, rec = deployment
    shutil.move(rec, tmp_path / "gone")
    with pytest.raises(
        SourceNotFoundError, match=r"; and the span's 5 s are more than the 2 s that may be reconstructed from the"
    ):
        read_audio(open_atlas(store), (t(0), t(5)), max_reconstruct_seconds=2)


# ------------------------------------------------------------------------------------------------- bounds
def test_a_span_over_the_limit_is_refused_naming_both_numbers(atlas):
    # 11 minutes asked of a 2-minute store: the limit speaks first, before the span is even placed.
    with pytest.raises(
        ParameterError, match=r"is 660 s of audio, more than the 600 s read at once \(MAX_AUDIO_SECONDS"
    ):
        atlas.audio(time=(T0, T0 + np.timedelta64(660, "s")))
    with pytest.raises(ParameterError, match=r"is 120 s of audio, more than the 60 s read at once"):
        atlas.audio(max_seconds=60)  # the whole recording


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"time": (t(-1), t(2))}, r"is outside the recording, which spans 2026-03-01T12:00:00.000000000 \.\. "),
        ({"time": (t(3), t(2))}, r"is empty or inverted"),
        ({"time": (t(2), t(2))}, r"is empty or inverted"),
        ({"time": (t(2), t(2) + np.timedelta64(50, "ns"))}, r"is shorter than one sample \(0.000125 s at 8000 Hz\)"),
        ({"time": (t(21), t(24))}, r"holds no recorded audio: it falls in a gap between the files"),
        ({"time": "2026-03-01"}, r"time='2026-03-01' must be a \(start, end\) pair"),
        ({"time": (t(1), t(2)), "channel": 1}, r"channel=1 but 's.zarr' holds one channel"),
        ({"time": (t(1), t(2)), "max_seconds": 0}, r"max_seconds=0 must be a positive number of seconds"),
    ],
)
def test_bad_spans_are_refused_in_one_line(deployment, kwargs, match):
    store, _ = deployment
    with pytest.raises(ParameterError, match=match):
        open_atlas(store).audio(**kwargs)


# ---------------------------------------------------------------------------------------------- listening
def clip_of(samples: np.ndarray, rate: float = SR) -> AudioClip:
    return AudioClip(samples=samples, sample_rate=rate, start=T0, mask=np.ones(len(samples), bool))


@pytest.mark.parametrize(
    ("band", "inside", "outside"),
    [
        ((1000, 2000), 1414.0, (500.0, 4000.0)),  # an octave below and above
        ((0, 2000), 1000.0, (4000.0,)),  # a low-pass
        ((1000, 24_000), 4000.0, (500.0,)),  # a high-pass
        ((300, 600), 424.0, (150.0, 1200.0)),
    ],
)
def test_the_band_pass_rejects_40_db_an_octave_out_and_keeps_the_band(band, inside, outside, report):
    rate = 48_000

    def gain(freq: float) -> float:
        x = tone(freq, 2.0, sr=rate)
        y = prepare(clip_of(x, rate), band=band, out_rate=rate, normalise=False).samples
        middle = slice(rate // 2, 3 * rate // 2)  # away from the ends
        return rms_db(y[middle]) - rms_db(x[middle])

    assert abs(gain(inside)) < 1.0
    for freq in outside:
        report(f"band {band[0]}-{band[1]} Hz: {freq:g} Hz down by (dB)", f"{-gain(freq):.1f}")
        assert gain(freq) <= -40.0
    assert len(band_filter(band, rate)) >= 2


def test_rate_one_tenth_moves_3_khz_to_300_hz():
    clip = prepare(clip_of(tone(3000.0, 1.0)), rate=0.1, out_rate=48_000, normalise=False)
    assert clip.sample_rate == 48_000 and clip.n_samples == 480_000 and clip.speed == 0.1
    assert clip.duration == pytest.approx(1.0) and clip.start == T0 and clip.mask.all()
    spectrum = np.abs(np.fft.rfft(clip.samples))
    assert np.fft.rfftfreq(clip.n_samples, 1 / 48_000)[np.argmax(spectrum)] == pytest.approx(300, abs=0.5)
    assert clip.note == "played at 0.1x"


def test_a_gap_stays_where_it_was_at_one_tenth_and_the_samples_are_soxrs():
    # 4 s at 8 kHz, 1.5-2.5 s missing; at 1/10 and 48 kHz it plays for 40 s, the gap from 15 s to 25 s
    # (output samples 720 000 .. 1 200 000, across the first block of 2**20 the mask is made in).
    mask = np.ones(4 * SR, bool)
    mask[int(1.5 * SR) : int(2.5 * SR)] = False
    x = np.where(mask, noise(4.0), 0).astype(np.float32)
    out = prepare(AudioClip(samples=x, sample_rate=SR, start=T0, mask=mask), rate=0.1, out_rate=48_000, normalise=False)
    assert out.n_samples == 1_920_000 and out.mask.shape == (1_920_000,)
    edge = 60  # one input sample is 60 output samples: the edges fall within one of it
    assert out.mask[: 720_000 - edge].all() and out.mask[1_200_000 + edge :].all()
    assert not out.mask[720_000 + edge : 1_200_000 - edge].any()
    assert abs(int((~out.mask).sum()) - 480_000) <= edge
    # The samples: soxr's HQ resampling of them in float64 (it computes in float32 either way).
    import soxr

    reference = soxr.resample(x.astype(np.float64), SR * 0.1, 48_000)
    assert out.samples.dtype == np.float32
    np.testing.assert_allclose(out.samples, reference, rtol=0, atol=1e-6)


def test_normalising_sets_the_peak_and_keeps_silence_silent():
    loud = prepare(clip_of(tone(440.0, 0.5, amp=0.01)), out_rate=SR)
    assert float(np.max(np.abs(loud.samples))) == pytest.approx(0.9, rel=1e-6) and loud.note == "normalised"
    quiet = prepare(clip_of(np.zeros(SR, np.float32)))
    assert not quiet.samples.any() and quiet.n_samples == 6 * SR


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": 1 / 64}, r"rate=0.015625 must be a speed from 1/32 to 4"),
        ({"rate": 5}, r"rate=5 must be a speed"),
        ({"band": (0, 5000)}, r"band 0 .. 5000 Hz must have 0 <= low < high <= 4000 Hz"),
        ({"band": (2000, 1000)}, r"must have 0 <= low < high"),
        ({"band": "low"}, r"band='low' must be a \(low, high\) pair in Hz"),
        ({"out_rate": 0}, r"out_rate=0 must be a sample rate"),
    ],
)
def test_bad_listening_options_are_refused(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        prepare(clip_of(noise(0.1)), **kwargs)


def test_a_clip_plays_in_ipython():
    display = pytest.importorskip("IPython.display")
    clip = clip_of(tone(440.0, 0.1))
    assert display.Audio(clip.samples, rate=clip.sample_rate).data[:4] == b"RIFF"
    assert clip.to_ipython().data[:4] == b"RIFF"
    assert clip_of(np.zeros(100, np.float32)).to_ipython().data[:4] == b"RIFF"  # silence: no division by zero


def test_a_clip_is_read_only():
    clip = clip_of(noise(0.1))
    with pytest.raises(ValueError, match="read-only"):
        clip.samples[0] = 1
    with pytest.raises(ParameterError, match=r"samples must have shape \(n,\) or \(n, channels\) and its mask \(n,\)"):
        AudioClip(samples=np.zeros(10), sample_rate=SR, start=T0, mask=np.ones(9, bool))


# ------------------------------------------------------------------------------------------------- saving
def test_a_saved_wav_is_dated_to_the_sample_in_its_bext_chunk(deployment, tmp_path):
    store, _ = deployment
    clip = open_atlas(store).audio(time=(t(8 + 1234 / SR), t(12)))
    path = write_audio(clip, tmp_path / "clip.wav")
    src = open_source(path)
    assert (src.start_time_from, src.start_time, src.sample_rate) == ("header", clip.start, SR)
    assert np.array_equal(src.read(0, src.n_samples)[:, 0], clip.samples)  # 32-bit float: exactly the clip
    slow = prepare(clip, rate=0.5, out_rate=SR)  # a time-expanded file keeps its start too
    assert open_source(write_audio(slow, tmp_path / "slow.wav")).start_time == clip.start


def test_a_saved_flac_keeps_its_start_in_vorbis_comments(deployment, tmp_path):
    store, _ = deployment
    clip = open_atlas(store).audio(time=(t(8 + 1234 / SR), t(12)))
    path = write_audio(clip, tmp_path / "clip.flac")
    samples, rate = sf.read(path, dtype="float32")
    assert rate == SR and np.max(np.abs(samples - clip.samples)) <= 1 / 2**15
    with sf.SoundFile(path) as f:
        assert f.date == "2026-03-01T12:00:08.154250000Z"
        assert f.comment.startswith("start_time=2026-03-01T12:00:08.154250000Z; speed=1; recorded audio")


def test_writing_never_replaces_a_file_unless_asked_and_leaves_nothing_when_refused(tmp_path):
    clip = clip_of(tone(440.0, 0.5))
    path = write_audio(clip, tmp_path / "c.flac")
    with pytest.raises(StoreExistsError, match=r"'.*c.flac' exists; pass overwrite=True \(--overwrite\) to replace it"):
        write_audio(clip, path)
    write_audio(clip_of(noise(0.25)), path, overwrite=True)
    assert sf.info(path).frames == SR // 4
    with pytest.raises(ParameterError, match=r"samples reach 2, beyond the full scale 16-bit FLAC holds"):
        write_audio(clip_of(np.full(10, 2.0, np.float32)), tmp_path / "loud.flac")
    assert write_audio(clip_of(np.full(10, 2.0, np.float32)), tmp_path / "loud.wav").exists()  # float WAV holds it
    with pytest.raises(ParameterError, match=r"its suffix is not .wav or .flac"):
        write_audio(clip, tmp_path / "c.mp3")
    with pytest.raises(FormatError, match=r"cannot write 'fast.flac'"):
        write_audio(clip_of(noise(0.01), rate=2_000_000), tmp_path / "fast.flac")  # beyond FLAC's rates
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.flac", "loud.wav"]  # no temporary file left


# ----------------------------------------------------------------------------------------------------- CLI
def test_cli_writes_a_clip_and_refuses_an_existing_file(cli, deployment, tmp_path):
    store, _ = deployment
    out = tmp_path / "clip.flac"
    span = ["--start", str(t(8)), "--end", str(t(12))]
    done = run(cli, "audio", str(store), *span, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"wrote {out}: 4.000 s of s.zarr from 2026-03-01T12:00:08.000000000Z as 4.000 s at 8000 Hz; recorded audio\n"
    )
    again = run(cli, "audio", str(store), *span, "-o", str(out))
    assert again.returncode == 1 and again.stderr == (
        f"spectral-atlas: error: '{out}' exists; pass overwrite=True (--overwrite) to replace it\n"
    )
    slow = run(cli, "audio", str(store), *span, "-o", str(out), "--rate", "1/10", "--band", "500:2000", "--overwrite")
    assert slow.returncode == 0, slow.stderr
    assert "as 40.000 s at 800 Hz; recorded audio; band 500-2000 Hz; played at 0.1x" in slow.stdout
    assert sf.info(out).samplerate == 800 and sf.info(out).frames == 4 * SR  # the samples, ten times as long
    outside = run(cli, "audio", str(store), "--start", str(t(-5)), "--end", str(t(1)), "-o", str(tmp_path / "x.wav"))
    assert outside.returncode == 1 and outside.stderr.count("\n") == 1 and "is outside the recording" in outside.stderr
