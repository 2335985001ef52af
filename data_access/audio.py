"""The audio of a span of a store: its recorded samples, or a reconstruction; prepared for listening; saved.

:func:`read_audio` (``Atlas.audio``) returns an :class:`AudioClip` of ``time =
(t0, t1)``, which unpacks as ``samples, sample_rate``:

- **The recorded samples.** The span is put on the store's sample grid (sample 0
  at ``start_time``; ``t0`` and ``t1`` rounded to the nearest sample) and read from
  the store's source files, whose paths, start times and offsets the store's
  ``sources`` root attribute records: across file boundaries exactly as ingest
  read them (the later file wins an overlap), gaps as zeros with ``mask`` False
  there. A mono store gives its channel (or the mean, for a ``mean`` store); a
  store of every channel gives the one asked for. No path comes from a caller.
- **Moved recordings.** A file that is not at its recorded path is looked for
  under ``audio_root`` (``open_atlas(..., audio_root=)``, ``--audio-root``): at its
  path relative to the folder all the store's sources share, then by its name
  (directly in ``audio_root``, then anywhere under it if exactly one file has it).
- **Changed recordings are refused.** Each file is opened again and checked
  against its record (:func:`~data_access.sources.reopen_source`): sample rate,
  samples, channels and, in stores written since sizes are recorded, its size in
  bytes. A file that changed is an error, never played.
- **Reconstruction.** When a file is nowhere to be found (a remote store, a store
  copied without its recordings), the clip is rebuilt from the store's level-0
  power with Griffin-Lim (``librosa.griffinlim``, ``center=False``, the store's
  STFT parameters): ``reconstructed=True`` and ``note`` says "reconstructed from
  the spectrogram (phase estimated)". Its spectrum over time is the store's; its
  phase is estimated. Gap frames become silence.
- **Bounds**, checked before anything is read or allocated: at most
  :data:`MAX_AUDIO_SECONDS` of audio (``max_seconds=`` per call) and
  :data:`MAX_AUDIO_SAMPLES` samples; a reconstruction at most
  :data:`MAX_RECONSTRUCT_SECONDS` and :data:`MAX_RECONSTRUCT_SAMPLES`. A span
  outside the recording, empty or inverted, or holding no recorded audio is
  refused in one line, as are a missing, changed or unreadable file.

:func:`prepare` makes a clip ready to play: an optional zero-phase band-pass (of
the recording's frequencies), a change of speed (``rate`` 0.1 plays ten times
slower and a decade lower: a 30 kHz click is heard at 3 kHz) by resampling to
``out_rate``, and a peak gain. :func:`write_audio` saves a clip as WAV (32-bit
float, its start in a BWF ``bext`` chunk) or FLAC (16-bit, its start in Vorbis
comments), never replacing a file unless asked.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import struct
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import soundfile as sf

from data_access.errors import AtlasError, FormatError, ParameterError, SourceNotFoundError, StoreExistsError
from data_access.sources import AudioSource, Timeline, reopen_source
from data_access.times import samples_to_timedelta, to_datetime64

if TYPE_CHECKING:
    from IPython.display import Audio

    from data_access.query import Atlas

log = logging.getLogger(__name__)

#: Longest span of audio read at once, in seconds of the recording (``max_seconds=`` overrides it).
MAX_AUDIO_SECONDS = 600.0
#: Most samples read at once, whatever the rate: 1 GiB of float32 (10 min at 384 kHz fits; at 4 MHz, 67 s).
MAX_AUDIO_SAMPLES = 2**28
#: Longest span reconstructed from the spectrogram when the recordings are not found, in seconds.
MAX_RECONSTRUCT_SECONDS = 60.0
#: Most samples reconstructed at once: Griffin-Lim holds a few complex spectrograms of them (60 s at 64 kHz fits).
MAX_RECONSTRUCT_SAMPLES = 2**22
#: Griffin-Lim iterations (librosa's default).
GRIFFIN_LIM_ITERATIONS = 32
#: Speeds :func:`prepare` plays at: 1/32 (32 times slower, five octaves down) to 4.
RATE_RANGE = (1 / 32, 4.0)
#: Output sample rates :func:`prepare` accepts, in Hz.
OUT_RATE_RANGE = (1.0, 4e6)
#: Most samples :func:`prepare` makes: 512 MiB of float32, 46 min at 48 kHz.
MAX_PREPARED_SAMPLES = 2**27
#: Peak level of a normalised clip, a fraction of full scale.
PEAK = 0.9
#: What every reconstructed clip says it is.
RECONSTRUCTED = "reconstructed from the spectrogram (phase estimated)"

#: Samples read from the files at a time (bounds what a block of every channel costs).
_BLOCK = 2**20
_SECOND = np.timedelta64(1_000_000_000, "ns")
#: Sources a folder search under ``audio_root`` looks at at most.
_MAX_SEARCH = 100_000


@dataclass(frozen=True, kw_only=True, eq=False)
class AudioClip:
    """Samples of a span of a recording, with where they come from.

    Unpacks as ``samples, sample_rate``; ``IPython.display.Audio(clip.samples,
    rate=clip.sample_rate)`` plays it (or :meth:`to_ipython`).

    Attributes
    ----------
    samples : ndarray, float32, shape (n,) or (n, channels)
        Full scale 1.0 for PCM recordings (MiniSEED: counts); 0 where ``mask`` is False.
        Read-only.
    sample_rate : float
        Samples per second of ``samples``.
    start : numpy.datetime64
        UTC time (ns) of sample 0 in the recording.
    mask : ndarray, bool, shape (n,)
        True where the recording has data, a finite sample (for a reconstruction:
        where a frame with data covers the sample); read-only.
    reconstructed : bool
        True when the samples were rebuilt from the spectrogram, not read.
    note : str
        What the samples are, for a label: "recorded audio", or
        :data:`RECONSTRUCTED` and why; :func:`prepare` adds what it did.
    speed : float
        Recording seconds per second of ``samples`` at ``sample_rate``: 1 for the
        recording itself, ``rate`` after :func:`prepare`.
    """

    samples: np.ndarray
    sample_rate: float
    start: np.datetime64
    mask: np.ndarray
    reconstructed: bool = False
    note: str = ""
    speed: float = 1.0

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples, dtype=np.float32)
        mask = np.asarray(self.mask, dtype=bool)
        if samples.ndim not in (1, 2) or mask.shape != samples.shape[:1]:
            raise ParameterError(
                f"an AudioClip's samples must have shape (n,) or (n, channels) and its mask (n,), "
                f"not {samples.shape} and {mask.shape}"
            )
        if not (math.isfinite(self.sample_rate) and self.sample_rate > 0):
            raise ParameterError(f"sample_rate={self.sample_rate!r} must be a positive number of samples per second")
        samples.setflags(write=False)
        mask.setflags(write=False)
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "start", to_datetime64(self.start))

    def __iter__(self) -> Iterator:
        """``samples, sample_rate = clip``."""
        return iter((self.samples, self.sample_rate))

    def __repr__(self) -> str:
        return (
            f"<AudioClip {self.duration:.3f} s from {self.start} at {self.sample_rate:g} Hz"
            f"{', reconstructed' if self.reconstructed else ''}>"
        )

    @property
    def n_samples(self) -> int:
        """Samples (per channel)."""
        return len(self.samples)

    @property
    def duration(self) -> float:
        """Seconds of the recording the clip covers (it plays for ``duration / speed`` s)."""
        return self.n_samples / self.sample_rate * self.speed

    @property
    def end(self) -> np.datetime64:
        """UTC time just after the clip's last sample, in the recording."""
        return self.start + samples_to_timedelta(self.n_samples * self.speed, self.sample_rate)

    def to_ipython(self, *, normalize: bool = True) -> Audio:
        """An ``IPython.display.Audio`` player of the clip (IPython is imported here, not before).

        Parameters
        ----------
        normalize : bool, default: True
            Scale the peak to full scale (IPython's ``normalize``); silence stays silence.
            Without it, samples must lie within -1 .. 1.
        """
        from IPython.display import Audio

        data = self.samples.T if self.samples.ndim == 2 else self.samples
        peak = float(np.max(np.abs(data))) if data.size else 0.0
        if not normalize and peak > 1:
            raise ParameterError(f"the clip's samples reach {peak:g}, beyond full scale: play it with normalize=True")
        return Audio(data, rate=int(round(self.sample_rate)), normalize=normalize and peak > 0)


# ---------------------------------------------------------------------------------------- reading
def read_audio(
    atlas: Atlas,
    time: tuple[object, object] | None = None,
    channel: int | None = None,
    *,
    max_seconds: float = MAX_AUDIO_SECONDS,
    reconstruct: bool = True,
    max_reconstruct_seconds: float = MAX_RECONSTRUCT_SECONDS,
) -> AudioClip:
    """The audio of ``time`` in a store: the recorded samples, or a reconstruction when the files are gone.

    Parameters
    ----------
    atlas : Atlas
        The store (:func:`~data_access.query.open_atlas`; its ``audio_root`` is
        where moved recordings are looked for).
    time : (start, end), optional
        Times as datetime64, pandas Timestamps or ISO strings inside the
        recording, each rounded to the nearest sample; default the whole recording.
    channel : int, optional
        Index into ``atlas.channels`` of a store of every channel, default 0; a
        single-channel store takes only None or 0 (and gives its channel, or the mean).
    max_seconds : float, default: :data:`MAX_AUDIO_SECONDS`
        Longest span read, in seconds of the recording.
    reconstruct : bool, default: True
        Rebuild the clip from the spectrogram when a file is not found, rather
        than raise :class:`SourceNotFoundError`.
    max_reconstruct_seconds : float, default: :data:`MAX_RECONSTRUCT_SECONDS`
        Longest span reconstructed.

    Returns
    -------
    AudioClip
        ``samples`` float32, shape (n,), n the samples in the rounded span;
        ``start`` the time of the first.

    Raises
    ------
    ParameterError
        The span is malformed, empty, inverted, outside the recording, longer than
        ``max_seconds`` (or :data:`MAX_AUDIO_SAMPLES`), or holds no recorded audio.
    SourceNotFoundError
        A file of the span is nowhere to be found and ``reconstruct`` is False, or
        the span is too long to reconstruct.
    FormatError
        A file of the span has changed since it was ingested, or cannot be read.
    """
    index = atlas._channel_index(channel)
    max_seconds = _positive("max_seconds", max_seconds)
    max_reconstruct_seconds = _positive("max_reconstruct_seconds", max_reconstruct_seconds)
    if time is not None:  # the length first: a span of a day is refused as that, wherever it lies
        try:
            t0, t1 = time
        except (TypeError, ValueError):
            raise ParameterError(f"time={time!r} must be a (start, end) pair") from None
        t0, t1 = to_datetime64(t0), to_datetime64(t1)
        if (t1 - t0) / _SECOND > max_seconds:
            raise ParameterError(
                f"time range {t0} .. {t1} is {(t1 - t0) / _SECOND:g} s of audio, more than the {max_seconds:g} s "
                "read at once (MAX_AUDIO_SECONDS, max_seconds=): choose a shorter span"
            )
    t0, t1 = atlas._time_window(time)
    rate, origin = atlas.sample_rate, atlas.time_range[0]
    n_total = int(atlas.attrs.get("n_samples", _sample(atlas.time_range[1], origin, rate)))
    a = min(max(_sample(t0, origin, rate), 0), n_total)
    b = min(max(_sample(t1, origin, rate), 0), n_total)
    if b <= a:
        raise ParameterError(
            f"time range {t0} .. {t1} is shorter than one sample ({1 / rate:g} s at {rate:g} Hz): "
            "there is no audio in it"
        )
    seconds = (b - a) / rate
    if seconds > max_seconds:
        raise ParameterError(
            f"time range {t0} .. {t1} is {seconds:g} s of audio, more than the {max_seconds:g} s read at once "
            "(MAX_AUDIO_SECONDS, max_seconds=): choose a shorter span"
        )
    if b - a > MAX_AUDIO_SAMPLES:
        raise ParameterError(
            f"time range {t0} .. {t1} is {b - a} samples at {rate:g} Hz, more than the {MAX_AUDIO_SAMPLES} read at "
            "once (MAX_AUDIO_SAMPLES): choose a shorter span"
        )
    start = origin + samples_to_timedelta(a, rate)
    records = atlas.sources
    if not records:
        why = "the store lists no source files"
        return _rebuild(atlas, index, a, b, start, why, reconstruct, max_reconstruct_seconds)
    needed = [r for r in records if int(r["offset"]) < b and int(r["offset"]) + int(r["n_samples"]) > a]
    if not needed:
        raise ParameterError(f"time range {t0} .. {t1} holds no recorded audio: it falls in a gap between the files")
    folder, home = _common_folder(records), atlas.path.parent if isinstance(atlas.path, Path) else None
    sources: list[AudioSource] = []
    missing: list[Path] = []
    for record in needed:
        path = locate_source(record, folder=folder, audio_root=atlas.audio_root, store_folder=home)
        if path is None:
            missing.append(Path(str(record["path"])))
            continue
        try:  # every file found is checked, even when another is missing: a changed file is never played
            sources.append(reopen_source(record, path=path))
        except AtlasError as err:
            raise type(err)(f"cannot read the audio of {atlas.name!r}: {err}") from None
    if missing:
        root = atlas.audio_root
        hint = f", nor under {str(root)!r})" if root else "); pass --audio-root DIR (audio_root=) where they moved"
        why = (
            f"{len(missing)} source file{'s' * (len(missing) > 1)} of the span not found ({missing[0].name!r} "
            f"at {str(missing[0])!r}{' first' if len(missing) > 1 else ''}{hint}"
        )
        return _rebuild(atlas, index, a, b, start, why, reconstruct, max_reconstruct_seconds)
    # The recorded offsets are the store's grid: Timeline.of on these few files would lay
    # them out from the first of them, which may round a sub-sample start the other way.
    timeline = Timeline(
        sources=tuple(sources),
        offsets=tuple(int(r["offset"]) for r in needed),
        channel=_timeline_channel(atlas, index),
    )
    samples = np.empty(b - a, dtype=np.float32)
    for lo in range(a, b, _BLOCK):
        hi = min(lo + _BLOCK, b)
        samples[lo - a : hi - a] = timeline.read(lo, hi)
    mask = np.isfinite(samples)
    if not mask.any():
        raise ParameterError(f"time range {t0} .. {t1} holds no recorded audio: its samples are all missing")
    samples[~mask] = 0.0
    gaps = int(np.count_nonzero(~mask))
    note = "recorded audio" + (f"; {gaps / rate:g} s of gaps as silence" if gaps else "")
    return AudioClip(samples=samples, sample_rate=rate, start=start, mask=mask, note=note)


def locate_source(
    record: Mapping[str, object],
    *,
    folder: Path | None = None,
    audio_root: str | os.PathLike | None = None,
    store_folder: Path | None = None,
) -> Path | None:
    """Where a store's source file is now, or None.

    Its recorded path if a file is there (a relative one, as an ingest given
    relative paths records them, from the current folder, then from
    ``store_folder``, the store's); else, with ``audio_root``, ``audio_root``
    joined with the path relative to ``folder`` (the folder the store's sources
    share), then ``audio_root / NAME``, then the one file named ``NAME`` anywhere
    under ``audio_root`` (none when several have it; at most 100 000 files are
    looked at). A path found under ``audio_root`` must resolve inside it.
    """
    recorded = Path(str(record["path"]))
    for path in [recorded] + ([store_folder / recorded] if store_folder and not recorded.is_absolute() else []):
        if path.is_file():
            return path
    if audio_root is None:
        return None
    root = Path(audio_root).resolve()
    tries = []
    if folder is not None:
        try:
            tries.append(root / recorded.relative_to(folder))
        except ValueError:
            pass
    tries.append(root / recorded.name)
    for path in tries:
        if path.is_file() and path.resolve().is_relative_to(root):
            return path
    matches, seen = [], 0
    for here, _, files in os.walk(root):
        seen += len(files)
        if recorded.name in files:
            matches.append(Path(here) / recorded.name)
        if len(matches) > 1 or seen > _MAX_SEARCH:
            return None
    return matches[0] if matches and matches[0].resolve().is_relative_to(root) else None


def _common_folder(records: Sequence[Mapping[str, object]]) -> Path | None:
    """The folder every recorded source lies in (None if they share none: relative and absolute paths mixed)."""
    try:
        return Path(os.path.commonpath([str(Path(str(r["path"])).parent) for r in records]))
    except ValueError:
        return None


def _timeline_channel(atlas: Atlas, index: int | None) -> int | str:
    """The channel a timeline of the store's sources reads: the store's (one, or the mean), or the one asked for."""
    if index is not None:
        return index
    stored = str(atlas.attrs.get("channel", "0"))
    return stored if stored == "mean" else int(stored)


def _sample(t: np.datetime64, origin: np.datetime64, rate: float) -> int:
    """The nearest sample to ``t`` on the grid whose sample 0 is at ``origin`` (as ``Timeline.of`` rounds)."""
    return int(round((t - origin) / np.timedelta64(1, "ns") * 1e-9 * rate))


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ParameterError(f"{name}={value!r} must be a positive number of seconds")
    return float(value)


# --------------------------------------------------------------------------------- reconstruction
def _rebuild(
    atlas: Atlas,
    index: int | None,
    a: int,
    b: int,
    start: np.datetime64,
    why: str,
    reconstruct: bool,
    max_seconds: float,
) -> AudioClip:
    """Samples ``[a, b)`` rebuilt from level-0 power with Griffin-Lim, or the refusal that says why not."""
    rate, name = atlas.sample_rate, atlas.name
    if not reconstruct:
        raise SourceNotFoundError(f"cannot read the audio of {name!r}: {why}")
    seconds = (b - a) / rate
    if seconds > max_seconds or b - a > MAX_RECONSTRUCT_SAMPLES:
        limit = min(max_seconds, MAX_RECONSTRUCT_SAMPLES / rate)
        raise SourceNotFoundError(
            f"cannot read the audio of {name!r}: {why}; and the span's {seconds:g} s are more than the {limit:g} s "
            "that may be reconstructed from the spectrogram (MAX_RECONSTRUCT_SECONDS): choose a shorter span"
        )
    import librosa

    config, level = atlas.stft, atlas.levels[0]
    hop, n_fft = config.hop_length, config.n_fft
    i0 = max(0, (a - n_fft) // hop + 1)  # the first frame that ends after sample a
    i1 = min(level.n_columns, (b - 1) // hop + 1)  # the frames that start before sample b
    power = atlas._read_columns(level, "power", i0, i1, index) if i1 > i0 else np.empty((config.n_freq, 0))
    valid = np.isfinite(power).all(axis=0)
    if not valid.any():
        raise ParameterError(
            f"time range {start} .. {start + samples_to_timedelta(b - a, rate)} holds no recorded audio: "
            "no frame of the spectrogram with data covers it"
        )
    magnitude = np.sqrt(np.where(valid, power, 0.0)).astype(np.float32)
    m = i1 - i0
    y = librosa.griffinlim(
        magnitude,
        n_iter=GRIFFIN_LIM_ITERATIONS,
        hop_length=hop,
        win_length=config.win_length,
        n_fft=n_fft,
        window=config.window,
        center=False,
        length=n_fft + hop * (m - 1),
        random_state=0,
    )
    # Sample s of the rebuilt stretch is covered by a frame with data: count them with a running sum.
    edges = np.zeros(len(y) + 1, dtype=np.int64)
    np.add.at(edges, np.flatnonzero(valid) * hop, 1)
    np.add.at(edges, np.flatnonzero(valid) * hop + n_fft, -1)
    covered = np.cumsum(edges[:-1]) > 0
    first = i0 * hop
    samples, mask = np.zeros(b - a, np.float32), np.zeros(b - a, bool)
    lo, hi = max(a, first), min(b, first + len(y))
    samples[lo - a : hi - a] = y[lo - first : hi - first]
    mask[lo - a : hi - a] = covered[lo - first : hi - first]
    samples[~mask] = 0.0  # gaps are silence
    log.info("%s: %s", name, why)
    return AudioClip(
        samples=samples, sample_rate=rate, start=start, mask=mask, reconstructed=True, note=f"{RECONSTRUCTED}; {why}"
    )


# ------------------------------------------------------------------------------------ listening
def band_filter(band: tuple[float, float], sample_rate: float) -> np.ndarray | None:
    """Second-order sections of the Butterworth filter :func:`prepare` applies for ``band``, or None for all of it.

    A band-pass from ``low`` to ``high`` Hz (a high-pass when ``high`` is Nyquist,
    a low-pass when ``low`` is 0). Its order is the lowest that gives 20 dB of
    rejection one octave outside each edge (``scipy.signal.buttord``, 3 dB at the
    edge), so that applied forwards and backwards (``sosfiltfilt``) it rejects at
    least 40 dB there, and 6 dB at the edges.
    """
    from scipy.signal import butter, buttord

    try:
        lo, hi = (float(f) for f in band)
    except (TypeError, ValueError):
        raise ParameterError(f"band={band!r} must be a (low, high) pair in Hz") from None
    nyquist = sample_rate / 2
    if not 0 <= lo < hi <= nyquist:
        raise ParameterError(f"band {lo:g} .. {hi:g} Hz must have 0 <= low < high <= {nyquist:g} Hz (Nyquist)")
    if lo == 0 and hi == nyquist:
        return None
    orders = [2]
    if lo > 0:
        orders.append(buttord(lo, lo / 2, gpass=3, gstop=20, fs=sample_rate)[0])
    if 0 < hi < nyquist and 2 * hi < nyquist:
        orders.append(buttord(hi, 2 * hi, gpass=3, gstop=20, fs=sample_rate)[0])
    order = max(orders)
    if lo > 0 and hi < nyquist:
        return butter(order, [lo, hi], btype="bandpass", output="sos", fs=sample_rate)
    return butter(order, lo if lo > 0 else hi, btype="highpass" if lo > 0 else "lowpass", output="sos", fs=sample_rate)


def prepare(
    clip: AudioClip,
    *,
    rate: float = 1.0,
    band: tuple[float, float] | None = None,
    out_rate: float = 48_000,
    normalise: bool = True,
) -> AudioClip:
    """A clip made ready to play: band-passed, sped up or slowed down, resampled and normalised.

    Parameters
    ----------
    clip : AudioClip
    rate : float, default: 1.0
        Playback speed, :data:`RATE_RANGE` (1/32 .. 4): the clip then lasts
        ``duration / rate`` and every frequency is multiplied by ``rate`` (0.1
        brings a 30 kHz click to 3 kHz). Done by resampling the samples, taken as
        at ``sample_rate * rate``, to ``out_rate`` (soxr, "HQ").
    band : (low, high), optional
        Keep only ``low .. high`` Hz of the recording (frequencies before the
        change of speed): a zero-phase Butterworth band-pass (:func:`band_filter`,
        ``scipy.signal.sosfiltfilt``), at least 40 dB down one octave outside the
        band, applied before resampling.
    out_rate : float, default: 48000
        Sample rate of the result, in Hz.
    normalise : bool, default: True
        Scale the peak to 0.9 of full scale (:data:`PEAK`); silence stays silence.

    Returns
    -------
    AudioClip
        float32 at ``out_rate``, ``speed`` multiplied by ``rate``, the same ``start``,
        ``mask`` resampled (nearest sample), ``reconstructed`` kept, and ``note``
        extended with what was done.

    Raises
    ------
    ParameterError
        ``rate``, ``band`` or ``out_rate`` out of range, or a result of more than
        :data:`MAX_PREPARED_SAMPLES` samples.
    """
    lo, hi = RATE_RANGE
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not lo <= rate <= hi:
        raise ParameterError(f"rate={rate!r} must be a speed from 1/{1 / lo:g} to {hi:g} (RATE_RANGE)")
    lo, hi = OUT_RATE_RANGE
    if isinstance(out_rate, bool) or not isinstance(out_rate, (int, float)) or not lo <= out_rate <= hi:
        raise ParameterError(f"out_rate={out_rate!r} must be a sample rate from {lo:g} to {hi:g} Hz")
    sos = None if band is None else band_filter(band, clip.sample_rate)
    in_rate = clip.sample_rate * rate
    if math.isclose(in_rate, out_rate, rel_tol=1e-12):  # (44100 * 0.1 is 4410.000000000001)
        in_rate = out_rate
    n_out = clip.n_samples if in_rate == out_rate else math.ceil(clip.n_samples * out_rate / in_rate)
    if n_out * (clip.samples.shape[1] if clip.samples.ndim == 2 else 1) > MAX_PREPARED_SAMPLES:
        raise ParameterError(
            f"playing {clip.duration:g} s at rate {rate:g} and {out_rate:g} Hz makes {n_out} samples, more than the "
            f"{MAX_PREPARED_SAMPLES} prepared at once (MAX_PREPARED_SAMPLES): choose a shorter span or a faster rate"
        )
    # float32 throughout: soxr's "HQ" resampling computes in float32 whatever it is given (float64 in, the
    # same samples out), and a 10 min clip at 48 kHz is 115 MB a copy in float32, twice that in float64.
    x = clip.samples
    done = []
    if sos is not None:
        from scipy.signal import sosfiltfilt

        if len(x) > 1:  # a clip shorter than the default padding is padded by all it has
            x = sosfiltfilt(sos, x.astype(np.float64), axis=0, padlen=min(3 * (2 * len(sos) + 1), len(x) - 1))
            x = x.astype(np.float32)
        done.append(f"band {band[0]:g}-{band[1]:g} Hz")
    if rate != 1:
        done.append(f"played at {rate:g}x")
    if in_rate == out_rate:
        y, mask = x, clip.mask
    else:
        import soxr

        y = soxr.resample(x, in_rate, out_rate)
        mask = _nearest_mask(clip.mask, len(y), in_rate / out_rate)
    peak = float(max(y.max(), -y.min())) if y.size else 0.0
    if normalise and peak > 0:
        if y is clip.samples:  # (read-only, and the caller's)
            y = y * np.float32(PEAK / peak)
        else:
            y *= np.float32(PEAK / peak)
        done.append("normalised")
    note = "; ".join([clip.note, *done]) if clip.note else "; ".join(done)
    return AudioClip(
        samples=y,
        sample_rate=float(out_rate),
        start=clip.start,
        mask=mask,
        reconstructed=clip.reconstructed,
        note=note,
        speed=clip.speed * rate,
    )


def _nearest_mask(mask: np.ndarray, n: int, step: float) -> np.ndarray:
    """``mask`` at ``n`` samples ``step`` input samples apart: output sample k takes input sample round(k * step).

    A mask all True (or all False), the usual case, costs a byte an output sample; otherwise
    the indices are made a block at a time (8 bytes each).
    """
    if not len(mask):
        return np.zeros(n, bool)
    if mask.all() or not mask.any():
        return np.full(n, bool(mask[0]))
    out = np.empty(n, bool)
    for lo in range(0, n, _BLOCK):
        nearest = np.floor(np.arange(lo, min(lo + _BLOCK, n)) * step + 0.5).astype(np.int64)
        out[lo : lo + len(nearest)] = mask[np.minimum(nearest, len(mask) - 1)]
    return out


# --------------------------------------------------------------------------------------- saving
AudioFormat = Literal["wav", "flac"]
_SUFFIXES: dict[str, AudioFormat] = {".wav": "wav", ".flac": "flac"}


def audio_output(path: str | os.PathLike, *, format: AudioFormat | None = None, overwrite: bool = False) -> str:
    """The format a clip would be written to ``path`` in, checked before any audio is read.

    Raises
    ------
    ParameterError
        Neither ``format`` nor the suffix is WAV or FLAC.
    StoreExistsError
        ``path`` exists and ``overwrite`` is False.
    SourceNotFoundError
        The folder to write in does not exist.
    """
    path = Path(path)
    fmt = format if format is not None else _SUFFIXES.get(path.suffix.lower())
    if fmt not in ("wav", "flac"):
        raise ParameterError(
            f"cannot write audio to {path.name!r}: "
            + (f"format={format!r} is not 'wav' or 'flac'" if format is not None else "its suffix is not .wav or .flac")
        )
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise StoreExistsError(f"{str(path)!r} exists; pass overwrite=True (--overwrite) to replace it")
    if not path.parent.is_dir():
        raise SourceNotFoundError(f"no folder {str(path.parent)!r} to write {path.name!r} in")
    return fmt


def write_audio(
    clip: AudioClip, path: str | os.PathLike, *, format: AudioFormat | None = None, overwrite: bool = False
) -> Path:
    """Save a clip as WAV or FLAC, with its UTC start time.

    - **WAV** (``.wav``): 32-bit float samples, exactly the clip's (any level;
      MiniSEED counts too), and a Broadcast WAV ``bext`` chunk (EBU Tech 3285):
      OriginationDate and OriginationTime of the start, and TimeReference, the
      samples since that midnight at the file's rate, so readers that know BWF
      (this package's :func:`~data_access.open_source`, Raven, Audition) place it
      to the sample. Description holds the clip's ``note``.
    - **FLAC** (``.flac``): 16-bit PCM; samples beyond full scale are refused
      (normalise the clip, or write WAV). FLAC has no ``bext``: the start is in
      its Vorbis comments, ``DATE`` (ISO 8601 UTC to the nanosecond, ``Z``) and
      ``COMMENT`` (``start_time=...; speed=...``, and the note), which
      ``soundfile.SoundFile(path).date`` reads back.

    The file is written under a temporary name beside ``path`` and renamed into
    place, so a failed write leaves nothing; an existing file is never replaced
    unless ``overwrite``. A clip of another ``speed`` (:func:`prepare`) keeps its
    start; its samples then last ``1 / speed`` times as long as the recording.

    Parameters
    ----------
    clip : AudioClip
    path : path-like
    format : {"wav", "flac"}, optional
        Default: by the suffix of ``path``.
    overwrite : bool, default: False

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ParameterError
        Not WAV or FLAC; a sample rate that is not a whole number of Hz (resample
        with :func:`prepare`); samples beyond full scale for FLAC.
    StoreExistsError
        ``path`` exists and ``overwrite`` is False.
    FormatError
        libsndfile cannot write the clip (a FLAC rate above 655350 Hz).
    """
    path = Path(path)
    fmt = audio_output(path, format=format, overwrite=overwrite)
    rate = clip.sample_rate
    if rate != int(rate):
        raise ParameterError(
            f"WAV and FLAC hold whole-number sample rates, not {rate:g} Hz: resample the clip with prepare(out_rate=)"
        )
    peak = float(np.max(np.abs(clip.samples))) if clip.samples.size else 0.0
    if fmt == "flac" and peak > 1:
        raise ParameterError(
            f"the clip's samples reach {peak:g}, beyond the full scale 16-bit FLAC holds: normalise it "
            "(prepare(normalise=True), --normalise) or write WAV, which holds float samples"
        )
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    raw = tmp.with_name(tmp.name + ".raw")
    try:
        try:
            if fmt == "wav":
                sf.write(raw, clip.samples, int(rate), subtype="FLOAT", format="WAV")
                _with_bext(raw, tmp, _bext(clip, int(rate)))
            else:
                with sf.SoundFile(tmp, "w", int(rate), _channels(clip), subtype="PCM_16", format="FLAC") as f:
                    f.date = np.datetime_as_string(clip.start, unit="ns") + "Z"
                    f.comment = f"start_time={clip.start}Z; speed={clip.speed:g}; {clip.note}"[:1000]
                    f.software = "spectral-atlas"
                    f.write(clip.samples)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise FormatError(f"cannot write {path.name!r}: {err}") from None
        _place(tmp, path, overwrite)
    finally:
        for leftover in (raw, tmp):
            leftover.unlink(missing_ok=True)
    return path


def _channels(clip: AudioClip) -> int:
    return clip.samples.shape[1] if clip.samples.ndim == 2 else 1


def _bext(clip: AudioClip, rate: int) -> bytes:
    """A ``bext`` chunk (EBU Tech 3285, version 1) dating the clip's first sample."""
    day = clip.start.astype("datetime64[D]")
    since = int((clip.start - day) / np.timedelta64(1, "ns"))  # ns since midnight
    reference = (since * rate + 500_000_000) // 1_000_000_000  # samples since midnight, rounded
    clock = np.datetime_as_string(clip.start, unit="s")[11:19]
    text = (clip.note or f"spectral-atlas clip from {clip.start}Z").encode("ascii", "replace")[:256]
    body = (
        text.ljust(256, b"\0")  # Description
        + b"spectral-atlas".ljust(32, b"\0")  # Originator
        + b"".ljust(32, b"\0")  # OriginatorReference
        + str(day).encode("ascii")  # OriginationDate, yyyy-mm-dd
        + clock.encode("ascii")  # OriginationTime, hh:mm:ss
        + struct.pack("<QH", reference, 1)  # TimeReference, Version
        + bytes(64 + 190)  # UMID, reserved
    )
    return b"bext" + struct.pack("<I", len(body)) + body


def _with_bext(raw: Path, out: Path, chunk: bytes) -> None:
    """Copy the RIFF WAV ``raw`` to ``out`` with ``chunk`` first after ``WAVE``, streaming its other chunks."""
    with open(raw, "rb") as src, open(out, "xb") as dst:
        head = src.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise FormatError(f"libsndfile wrote no RIFF WAV for {out.name!r}")
        size = struct.unpack("<I", head[4:8])[0] + len(chunk)
        if size >= 2**32:
            raise ParameterError(f"{out.name!r} would pass the 4 GiB a RIFF WAV file holds: choose a shorter span")
        dst.write(b"RIFF" + struct.pack("<I", size) + b"WAVE" + chunk)
        shutil.copyfileobj(src, dst, 2**22)


def _place(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move ``tmp`` to ``path``; without ``overwrite`` never over a file there (a hard link fails if one is)."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise StoreExistsError(f"{str(path)!r} exists; pass overwrite=True (--overwrite) to replace it") from None
    except OSError:  # a file system without hard links
        if path.exists():
            raise StoreExistsError(f"{str(path)!r} exists; pass overwrite=True (--overwrite) to replace it") from None
        os.replace(tmp, path)
