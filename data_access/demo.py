"""The generated demo deployment: a synthetic ocean hydrophone with known events.

:func:`write_demo_audio` writes a deterministic, realistic-looking recording of
a moored hydrophone as 16-bit FLAC files named with their start times
(``HYD01_20260115_001000.flac``, the AudioMoth pattern, so
``open_timeline(directory)`` places them with no options), together with
``events.csv``, the ground truth of every event placed. :func:`make_demo`
then ingests it into ``demo.zarr``: the embedded default of the explorer.

What is in the water
--------------------
Levels are in dB re 1 µPa for a recorder whose full scale (RMS 1.0) is
160 dB re 1 µPa, a hydrophone at a typical mid gain.

ambient
    Wenz-like: distant shipping, a broad hump of about 70 dB re 1 µPa²/Hz
    around 40 Hz, plus wind-driven surface noise that is flat around 300 Hz and
    falls by 5 dB per octave above 500 Hz, at ``50 + 20 log10(u / 2.5 m/s)`` dB
    re 1 µPa²/Hz at 1 kHz (Knudsen's sea states) for a wind speed ``u`` that
    wanders between 2.5 and 8 m/s over tens of minutes and gusts in the squall.
ship (``kind="ship"``)
    Passing ships, 10-20 min each: cavitation noise, 25-800 Hz and falling
    above (90-98 dB re 1 µPa²/Hz at the closest approach), amplitude-modulated
    at the blade rate, plus the blade-rate tonal (35-65 Hz, 110-118 dB) and
    its harmonics, all rising and falling as ``1 / range`` around the closest
    point of approach, with the Doppler shift of the ship's real speed (a
    fraction of a hertz).
fin whale (``kind="fin_whale"``)
    Bouts of several minutes of 20 Hz pulses: 1 s downsweeps from about
    23 to 17 Hz every 12-15 s, 104-114 dB.
whistles (``kind="whistles"``)
    Dolphin whistle bouts: frequency-modulated tonal contours between 6 and
    24 kHz, 0.3-1.5 s each, with a second harmonic, several animals each
    repeating its own signature contour, about one whistle a second, 94-108 dB.
clicks (``kind="clicks"``)
    Echolocation click trains of a few seconds, some inside whistle bouts and
    some alone: clicks of 8-15 µs Gaussian width (20-50 µs long) peaking at
    40-70 kHz, as a recorder's anti-alias filter leaves them: most of their
    energy in the top 10 kHz below Nyquist (20-30 kHz at 64 kHz), peaks of
    1-8% of full scale, inter-click intervals of 40-90 ms drifting over the
    train.
rain (``kind="rain"``)
    A squall of several minutes: broadband noise above 1 kHz with the hump of
    small-drop bubbles at 13-20 kHz (66-76 dB re 1 µPa²/Hz at 15 kHz), gusty,
    with the wind rising under it.
gap (``kind="gap"``)
    A recorder restart between two files in the middle: no samples, so the
    timeline reads NaN there.

Event placement scales with the length of the deployment: two hours hold
three ships, four fin-whale bouts, three whistle bouts with one to three click
trains each, three lone click trains and a rain squall, and a demo of a few
minutes still holds one of each kind. Events sharing a band do not overlap
(ships and fin whales below 2 kHz; whistle bouts, lone click trains and rain
above; only the dolphins click while they whistle), so each can be measured
against the ambient outside every event. At sample rates under 64 kHz what
lies above 0.45 of the rate is left out, as an anti-alias filter would: below
44.4 kHz there are no clicks.

Determinism and streaming
-------------------------
Everything follows from ``seed``: the layout, and the noise, drawn from a
generator seeded by ``(seed, stream, second)`` for each whole second of the
deployment, so the samples do not depend on how they are cut into blocks or
files. Files are written block by block and in parallel, one thread per file;
filters carry their state from block to block, and a file starts with its
filters warmed up on the seconds before it, so there is no seam at block or
file boundaries. Memory stays at a few blocks whatever the duration.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf

from data_access.errors import ParameterError
from data_access.ingest import ingest
from data_access.sources import TIME_PATTERNS, open_timeline
from data_access.stft import StftConfig
from data_access.store import check_output
from data_access.times import seconds_to_ns, to_datetime64

log = logging.getLogger(__name__)

#: RMS level, in dB re 1 µPa, of a full-scale (RMS 1.0) signal.
FULL_SCALE_DB = 160.0
#: File names are ``{FILE_PREFIX}_YYYYMMDD_HHMMSS.flac``.
FILE_PREFIX = "HYD01"
#: Every ``kind`` the events table can hold.
EVENT_KINDS = ("ship", "fin_whale", "whistles", "clicks", "rain", "gap")
#: Columns of ``events.csv``.
EVENT_COLUMNS = ("kind", "start", "end", "f_low_hz", "f_high_hz", "note")

# Samples are generated and written in blocks of this many seconds; the output
# does not depend on it (the tests change it).
_BLOCK_SECONDS = 10
# Seconds of noise a file's filters run over before its first sample. The slowest
# pole (10 Hz) decays by e**-125 in that time.
_WARMUP_SECONDS = 2
# Envelopes, the wind gain and the Doppler lag vary slowly: they are computed on
# a grid of samples this far apart and interpolated linearly.
_GRID = 256
_MIN_SECONDS = 60
_SOUND_SPEED = 1500.0
_WIND_KNOT_SECONDS = 600.0
_WIND_REF = 2.5  # m/s at which wind noise is 50 dB re 1 µPa²/Hz at 1 kHz
_PEAK_LIMIT = 0.9  # worst-case peak the levels are scaled to stay under
# Top of the band any sound is synthesized in, as a fraction of the sample rate,
# like a recorder's anti-alias filter.
_BAND_TOP = 0.45

# First element after the seed of every generator's key.
_LAYOUT, _AMBIENT, _SHIP, _RAIN, _WIND = 1, 2, 3, 4, 5
_LANE_LOW, _LANE_HIGH = 0, 1
_KIND_CODE = {kind: i for i, kind in enumerate(EVENT_KINDS)}


@dataclass(frozen=True, kw_only=True)
class DemoAudio:
    """What :func:`write_demo_audio` wrote.

    Attributes
    ----------
    files : list of Path
        The FLAC files, in time order.
    events : Path
        ``events.csv``, the ground truth (see :func:`read_events`).
    start_time : numpy.datetime64
        Time of the first sample, UTC, ``datetime64[ns]``.
    sample_rate : int
    """

    files: list[Path]
    events: Path
    start_time: np.datetime64
    sample_rate: int


@dataclass(frozen=True, kw_only=True)
class DemoEvent:
    """One row of ``events.csv``.

    Attributes
    ----------
    kind : {"ship", "fin_whale", "whistles", "clicks", "rain", "gap"}
    start, end : numpy.datetime64
        UTC, ``datetime64[ns]``.
    f_low_hz, f_high_hz : float
        The band the event occupies.
    note : str
        Parameters of the event, for people.
    """

    kind: str
    start: np.datetime64
    end: np.datetime64
    f_low_hz: float
    f_high_hz: float
    note: str = ""


def read_events(path: str | os.PathLike) -> list[DemoEvent]:
    """Read an ``events.csv`` written by :func:`write_demo_audio`.

    Returns
    -------
    list of DemoEvent
        In the order of the file (by start time).
    """
    with open(path, newline="", encoding="utf-8") as f:
        return [
            DemoEvent(
                kind=row["kind"],
                start=to_datetime64(row["start"]),
                end=to_datetime64(row["end"]),
                f_low_hz=float(row["f_low_hz"]),
                f_high_hz=float(row["f_high_hz"]),
                note=row["note"],
            )
            for row in csv.DictReader(f)
        ]


def write_demo_audio(
    directory: str | os.PathLike,
    *,
    hours: float = 2.0,
    seed: int = 0,
    sample_rate: int = 64000,
    file_minutes: float = 10.0,
    start: object = "2026-01-15T00:00:00",
) -> DemoAudio:
    """Write a synthetic hydrophone deployment and its events table.

    Parameters
    ----------
    directory : path-like
        Created if missing. Files of the same names are replaced; other files
        are left alone (a warning names earlier demo files that
        ``open_timeline(directory)`` would also read).
    hours : float, default: 2.0
        Span of the deployment from its first to its last sample, gap
        included; at least one minute.
    seed : int, default: 0
        Non-negative; the same seed gives the same samples, bit for bit.
    sample_rate : int, default: 64000
        Samples per second, at least 8000. Sounds above 0.45 of it are left
        out (whistles and clicks need 64 kHz to be seen whole).
    file_minutes : float, default: 10.0
        Length of each file, rounded to whole seconds; the last file is
        shorter, and a deployment too short for two files of this length gets
        two shorter ones, so there is always a gap between two files.
    start : time-like, default: "2026-01-15T00:00:00"
        Time of the first sample (UTC), a whole second (file names carry
        seconds only).

    Returns
    -------
    DemoAudio
        Files ``{FILE_PREFIX}_YYYYMMDD_HHMMSS.flac`` (16-bit, mono) and
        ``events.csv`` with columns ``kind, start, end, f_low_hz, f_high_hz,
        note`` (ISO 8601 UTC times), one row per event, sorted by start.
    """
    plan = _plan(hours=hours, seed=seed, sample_rate=sample_rate, file_minutes=file_minutes, start=start)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    scene = _build_scene(plan)
    files = [directory / name for name in plan.file_names]
    _warn_stale(directory, files)
    tic = time.perf_counter()
    workers = max(1, min(len(files), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        clipped = sum(pool.map(lambda i: _write_file(scene, i, files[i]), range(len(files))))
    if clipped:
        log.warning("%d samples reached full scale and were clipped", clipped)
    events = directory / "events.csv"
    _write_events(events, scene.rows, plan.start_time)
    log.info(
        "wrote %d demo files (%.2f h at %d Hz) and %d events to %s in %.1f s",
        len(files),
        plan.total_seconds / 3600,
        sample_rate,
        len(scene.rows),
        directory,
        time.perf_counter() - tic,
    )
    return DemoAudio(files=files, events=events, start_time=plan.start_time, sample_rate=plan.fs)


def make_demo(
    directory: str | os.PathLike,
    *,
    hours: float = 2.0,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool | None = None,
    config: StftConfig | None = None,
) -> Path:
    """Generate the demo deployment in ``directory`` and ingest it into ``demo.zarr`` there.

    Parameters
    ----------
    directory : path-like
        Created if missing; receives the FLAC files, ``events.csv`` and
        ``demo.zarr``, and ``ANNOTATIONS.sqlite``: the selection database,
        with each event of ``events.csv`` marked (label its kind, notes its
        note) so the explorer opens with them.
    hours : float, default: 2.0
        Length of the deployment, see :func:`write_demo_audio`.
    seed : int, default: 0
    overwrite : bool, default: False
        Replace an existing ``demo.zarr``. Without it an existing store
        raises :class:`~data_access.errors.StoreExistsError` before any audio
        is generated.
    progress : bool, optional
        Show the ingest progress bar; by default only on a terminal.
    config : StftConfig, optional
        Default ``StftConfig(n_fft=4096, hop_length=2048)``.

    Returns
    -------
    Path
        The store, ``directory / "demo.zarr"``.
    """
    _check_hours(hours)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    store = check_output(directory / "demo.zarr", overwrite=overwrite)
    audio = write_demo_audio(directory, hours=hours, seed=seed)
    config = config or StftConfig(n_fft=4096, hop_length=2048)
    path = ingest(open_timeline(audio.files), store, config, overwrite=overwrite, progress=progress)
    _mark_events(path, audio.events)
    return path


def _mark_events(store: Path, events: Path) -> None:
    """Import ``events.csv`` into the store's selection database (nothing twice: a re-made demo adds none)."""
    from data_access.annotations import AnnotationError, default_annotations_path, open_annotations
    from data_access.query import open_atlas
    from data_access.raven import read_table

    atlas = open_atlas(store)
    try:
        rows = read_table(events, atlas)
        with open_annotations(default_annotations_path(store), author="demo") as db:
            added = db.add_many(atlas.name, rows, source=events.name)
    except AnnotationError as err:  # the demo is whole without its marks: say so and go on
        log.warning("the demo's events were not marked as selections: %s", err)
        return
    finally:
        atlas.close()
    log.info("marked %d of the %d demo events as selections", added, len(rows))


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class _Plan:
    """The validated arguments and the cut of the deployment into files."""

    seed: int
    fs: int
    start_time: np.datetime64
    total_seconds: int
    file_spans: tuple[tuple[int, int], ...]  # (first second, seconds) of each file
    gap: tuple[int, int]  # seconds [start, end) with no file

    @property
    def file_names(self) -> list[str]:
        names = []
        for first, _ in self.file_spans:
            t = (self.start_time + np.timedelta64(first, "s")).astype("datetime64[s]").item()
            names.append(f"{FILE_PREFIX}_{t.strftime(TIME_PATTERNS['audiomoth'])}.flac")
        return names


def _check_hours(hours: object) -> float:
    if isinstance(hours, bool) or not isinstance(hours, (int, float, np.integer, np.floating)):
        raise ParameterError(f"hours={hours!r} must be a number")
    if not math.isfinite(hours) or hours <= 0:
        raise ParameterError(f"hours={hours!r} must be a positive number")
    if round(hours * 3600) < _MIN_SECONDS:
        raise ParameterError(
            f"hours={hours!r} is too short: the demo needs at least {_MIN_SECONDS} s "
            f"(hours >= {_MIN_SECONDS / 3600:.4f})"
        )
    return float(hours)


def _plan(*, hours: float, seed: int, sample_rate: int, file_minutes: float, start: object) -> _Plan:
    hours = _check_hours(hours)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed={seed!r} must be a non-negative integer")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate < 8000:
        raise ParameterError(f"sample_rate={sample_rate!r} must be an integer of at least 8000 Hz")
    if (
        isinstance(file_minutes, bool)
        or not isinstance(file_minutes, (int, float, np.integer, np.floating))
        or not math.isfinite(file_minutes)
        or round(file_minutes * 60) < 1
    ):
        raise ParameterError(f"file_minutes={file_minutes!r} must be a number of at least 1/60 (one second)")
    start_time = to_datetime64(start)
    if start_time != start_time.astype("datetime64[s]"):
        raise ParameterError(f"start={start!r} must be a whole second: file names carry seconds only")
    total = round(hours * 3600)
    gap_seconds = max(1, min(30, round(0.05 * total)))
    recorded = total - gap_seconds
    file_seconds = min(round(file_minutes * 60), -(-recorded // 2))
    n_files = -(-recorded // file_seconds)
    spans, t = [], 0
    gap = (0, 0)
    for i in range(n_files):
        if i == n_files // 2:
            gap = (t, t + gap_seconds)
            t += gap_seconds
        length = min(file_seconds, recorded - i * file_seconds)
        spans.append((t, length))
        t += length
    return _Plan(int(seed), int(sample_rate), start_time, total, tuple(spans), gap)


def _warn_stale(directory: Path, files: list[Path]) -> None:
    pattern = re.compile(rf"{FILE_PREFIX}_\d{{8}}_\d{{6}}\.flac")
    stale = sorted(p.name for p in directory.iterdir() if pattern.fullmatch(p.name) and p not in files)
    if stale:
        log.warning(
            "%s holds %d demo files from an earlier run (%s%s); open_timeline(directory) would read them too",
            directory,
            len(stale),
            ", ".join(stale[:3]),
            " ..." if len(stale) > 3 else "",
        )


# --------------------------------------------------------------------------- levels and filters


def _rms(level_db: float | np.ndarray) -> float | np.ndarray:
    """RMS amplitude (full scale 1.0) of a level in dB re 1 µPa."""
    return 10.0 ** ((np.asarray(level_db) - FULL_SCALE_DB) / 20.0)


def _noise_gain(sos: np.ndarray, fs: int, f_ref: float, density_db: float) -> float:
    """Gain that makes unit white noise through ``sos`` have ``density_db`` dB re 1 µPa²/Hz at ``f_ref``."""
    _, h = scipy.signal.sosfreqz(sos, worN=[f_ref], fs=fs)
    # One-sided density of unit-variance white noise through H: 2 |H|**2 / fs.
    return float(np.sqrt(_rms(density_db) ** 2 * fs / 2) / abs(h[0]))


def _noise_rms(sos: np.ndarray, gain: float) -> float:
    """RMS of unit white noise through ``gain * sos``."""
    _, h = scipy.signal.sosfreqz(sos, worN=8192)
    return float(gain * np.sqrt(np.mean(np.abs(h) ** 2)))


def _sloped_sos(fs: int) -> np.ndarray:
    """Wind noise shape: high-pass at 100 Hz, flat to 500 Hz, then -5 dB per octave.

    The slope is a ladder of first-order pole-zero pairs, two per decade: each
    pair steps the amplitude down by a factor ``r**gamma`` over a spacing ``r``.
    """
    gamma = 5.0 / (20 * np.log10(2))  # amplitude slope for -5 dB/octave in power
    step = np.sqrt(10.0)
    top = min(25_000.0, 0.4 * fs)
    poles, zeros = [100.0], [0.0]
    f = 500.0
    while f < top:
        poles.append(f)
        zeros.append(f * step**gamma)
        f *= step
    z = -2 * np.pi * np.array(zeros)
    p = -2 * np.pi * np.array(poles)
    zd, pd, kd = scipy.signal.bilinear_zpk(z, p, 1.0, fs)
    return scipy.signal.zpk2sos(zd, pd, kd)


def _peaking_sos(fs: int, f0: float, gain_db: float, q: float) -> np.ndarray:
    """Design a peaking-EQ biquad (RBJ audio cookbook)."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / fs
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]


def _sin(phase: np.ndarray) -> np.ndarray:
    """``sin`` of a float64 phase, reduced to one turn and evaluated in float32 (20x faster, ample for 16 bits)."""
    turns = phase * (0.5 / np.pi)
    turns -= np.floor(turns)
    turns *= 2 * np.pi
    return np.sin(turns.astype(np.float32))


def _fade(freq: np.ndarray, fs: int) -> np.ndarray:
    """1 below ``0.4 fs`` falling to 0 at ``_BAND_TOP * fs``: keeps partials under Nyquist."""
    return np.clip((_BAND_TOP * fs - freq) / (0.05 * fs), 0.0, 1.0)


# --------------------------------------------------------------------------- the scene


@dataclass
class _Ship:
    index: int
    start: float
    end: float
    speed: float
    blade_hz: float
    tonal_amps: np.ndarray  # peak amplitude of harmonic h = 1..H at the closest approach
    tonal_phases: np.ndarray
    broadband_gain: float  # scales the unit-white-noise filter output at closest approach
    modulation: float

    @property
    def cpa(self) -> float:
        return 0.5 * (self.start + self.end)

    @property
    def k(self) -> float:
        # 1/range falls to a sixth (-16 dB) at the event edges: u = k (t - cpa) = sqrt(35).
        return np.sqrt(35.0) / (0.5 * (self.end - self.start))

    def envelope(self, t: np.ndarray) -> np.ndarray:
        """Amplitude re closest approach: ``1 / range``, tapered to 0 at the event's edges."""
        u = self.k * (t - self.cpa)
        return _edge_taper(t, self.start, self.end, 0.25 * (self.end - self.start)) / np.sqrt(1 + u * u)

    def doppler_lag(self, t: np.ndarray) -> np.ndarray:
        """Seconds the tonal phase lags ``t - cpa``: ``d/dt (t - cpa - lag) = 1 - v_r / c``."""
        u = self.k * (t - self.cpa)
        return (self.speed / _SOUND_SPEED) * (np.sqrt(1 + u * u) - 1) / self.k

    def render(self, noise: np.ndarray, lo: int, fs: int) -> np.ndarray:
        """Ship sound for samples ``lo, lo + 1, ..`` given its filtered noise, shape (len(noise),)."""
        hi = lo + len(noise)
        # Blade-rate turns, reduced to [0, 1) in float64 before the float32 trigonometry.
        turns = self.blade_hz * ((np.arange(lo, hi) / fs - self.cpa) - _slow(self.doppler_lag, lo, hi, fs))
        turns -= np.floor(turns)
        x = (2 * np.pi * turns).astype(np.float32)
        s1, c1 = np.sin(x), np.cos(x)
        # Harmonics by the Chebyshev recurrence sin((h+1)x) = 2 cos(x) sin(hx) - sin((h-1)x).
        tonal = np.zeros(len(x), dtype=np.float32)
        s_prev, c_prev, s_h, c_h = np.zeros_like(s1), np.ones_like(c1), s1, c1
        two_c1 = 2 * c1
        for amp, ph in zip(self.tonal_amps, self.tonal_phases, strict=True):
            tonal += np.float32(amp * np.cos(ph)) * s_h + np.float32(amp * np.sin(ph)) * c_h
            s_prev, c_prev, s_h, c_h = s_h, c_h, two_c1 * s_h - s_prev, two_c1 * c_h - c_prev
        sig = noise * self.broadband_gain
        sig *= 1 + self.modulation * s1  # cavitation pulses with the blades
        sig += tonal
        sig *= _slow(self.envelope, lo, hi, fs)
        return sig


@dataclass
class _Rain:
    index: int
    start: float
    end: float
    gain: float  # scales the unit-white-noise filter output at the squall's peak
    gust_period: float
    gust_phase: float

    def envelope(self, t: np.ndarray) -> np.ndarray:
        """Fast rise, slow decay, gusty; 0 outside the event."""
        x = np.clip((t - self.start) / (self.end - self.start), 0.0, 1.0)
        shape = np.sin(np.pi * x**0.6) ** 2
        return shape * (1 + 0.3 * np.sin(2 * np.pi * t / self.gust_period + self.gust_phase)) / 1.3


@dataclass
class _Transients:
    """Short sounds (pulses, whistles, clicks) computed whole, then cut to the block."""

    starts: np.ndarray  # first sample, global index, sorted
    lengths: np.ndarray
    peaks: np.ndarray  # bound on each one's absolute peak
    make: Callable[[int], np.ndarray]  # index -> samples, shape (lengths[i],)

    def add_to(self, x: np.ndarray, a: int) -> None:
        if not len(self.starts):
            return
        b = a + len(x)
        first = np.searchsorted(self.starts, a - self.lengths.max(), side="left")
        last = np.searchsorted(self.starts, b, side="left")
        for i in range(first, last):
            s, n = int(self.starts[i]), int(self.lengths[i])
            lo, hi = max(a, s), min(b, s + n)
            if lo < hi:
                x[lo - a : hi - a] += self.make(i)[lo - s : hi - s]


@dataclass
class _Scene:
    plan: _Plan
    rows: list[tuple[str, float, float, float, float, str]]  # kind, start s, end s, f_low, f_high, note
    ships: list[_Ship]
    rains: list[_Rain]
    transients: list[_Transients]
    sos_low: np.ndarray  # distant shipping, includes its gain
    sos_wind: np.ndarray  # wind noise at the reference wind speed, includes its gain
    sos_ship: np.ndarray
    sos_rain: np.ndarray
    wind_knots: np.ndarray  # m/s every _WIND_KNOT_SECONDS
    gain: float = 1.0
    file_samples: list[tuple[int, int]] = field(default_factory=list)  # (first global sample, n)

    def wind_gain(self, t: np.ndarray) -> np.ndarray:
        """Amplitude of wind noise relative to _WIND_REF: wind speed over 2.5 m/s."""
        pos = np.clip(t / _WIND_KNOT_SECONDS, 0, len(self.wind_knots) - 1.000001)
        i = pos.astype(np.int64)
        w = 0.5 - 0.5 * np.cos(np.pi * (pos - i))
        u = self.wind_knots[i] * (1 - w) + self.wind_knots[i + 1] * w
        for rain in self.rains:
            u = u + 4.0 * rain.envelope(t)
        return u / _WIND_REF


def _edge_taper(t: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """0 outside ``[start, end]``, raised-cosine ramps of ``ramp`` seconds, 1 between."""
    x = np.clip(np.minimum(t - start, end - t) / ramp, 0.0, 1.0)
    return np.sin(0.5 * np.pi * x) ** 2


def _place(durations: list[float], segments: list[tuple[float, float]], rng: np.random.Generator):
    """Non-overlapping start times for events of ``durations`` inside ``segments``.

    Longest first, each event goes to the segment with the most room left; in
    each segment the events come in random order with random spaces between.
    Durations are shrunk, all alike, if they cannot all fit in 70% of the room.

    Returns
    -------
    starts, durations : ndarray, shape (n,)
    """
    wanted = np.asarray(durations, dtype=np.float64)
    room = np.array([hi - lo for lo, hi in segments])
    scale = min(1.0, 0.7 * room.sum() / wanted.sum())
    while True:
        d = wanted * scale
        free, where = room.copy(), np.zeros(len(d), dtype=np.int64)
        for i in np.argsort(-d, kind="stable"):
            j = int(np.argmax(free))
            if d[i] > free[j]:
                break
            where[i], free[j] = j, free[j] - d[i]
        else:
            break
        scale *= 0.8
    starts = np.zeros(len(d))
    for j, (lo, _) in enumerate(segments):
        members = rng.permutation(np.flatnonzero(where == j))
        spaces = rng.dirichlet(np.ones(len(members) + 1)) * free[j]
        t = lo
        for space, i in zip(spaces, members, strict=False):
            t += space
            starts[i] = t
            t += d[i]
    return starts, d


def _build_scene(plan: _Plan) -> _Scene:
    """Draw every event of the deployment and design the filters and levels."""
    fs, seed, total = plan.fs, plan.seed, float(plan.total_seconds)

    def rng(*key: int) -> np.random.Generator:
        return np.random.default_rng([seed, _LAYOUT, *key])

    def count(seconds_each: float) -> int:
        return max(1, round(total / seconds_each))

    margin = min(20.0, 0.02 * total)
    segments = [(margin, plan.gap[0] - margin), (plan.gap[1] + margin, total - margin)]
    rows: list[tuple[str, float, float, float, float, str]] = []
    transients: list[_Transients] = []

    # Low band: ships and fin-whale bouts take turns.
    r = rng(_KIND_CODE["ship"])
    ship_durs = [min(r.uniform(600, 1200), 0.3 * total) for _ in range(count(2400))]
    r = rng(_KIND_CODE["fin_whale"])
    fin_durs = [min(r.uniform(240, 540), 0.25 * total) for _ in range(count(1800))]
    starts, durs = _place(ship_durs + fin_durs, segments, rng(100 + _LANE_LOW))
    ships = _make_ships(starts[: len(ship_durs)], durs[: len(ship_durs)], rng(_KIND_CODE["ship"], 1), fs, rows)
    transients.append(
        _make_fin_whales(starts[len(ship_durs) :], durs[len(ship_durs) :], rng(_KIND_CODE["fin_whale"], 1), fs, rows)
    )

    # High band: rain, whistle bouts and lone click trains take turns.
    r = rng(_KIND_CODE["rain"])
    rain_durs = [min(r.uniform(300, 600), 0.2 * total) for _ in range(count(7200))]
    r = rng(_KIND_CODE["whistles"])
    bout_durs = [min(r.uniform(90, 300), 0.2 * total) for _ in range(count(2400))]
    r = rng(_KIND_CODE["clicks"])
    train_durs = [min(r.uniform(2, 6), 0.05 * total) for _ in range(count(2400))]
    starts, durs = _place(rain_durs + bout_durs + train_durs, segments, rng(100 + _LANE_HIGH))
    n_rain, n_bout = len(rain_durs), len(bout_durs)
    rains = _make_rains(starts[:n_rain], durs[:n_rain], rng(_KIND_CODE["rain"], 1), fs, rows)
    bout_starts, bout_durs = starts[n_rain : n_rain + n_bout], durs[n_rain : n_rain + n_bout]
    transients.append(_make_whistles(bout_starts, bout_durs, rng(_KIND_CODE["whistles"], 1), fs, rows))

    # Click trains: the lone ones placed above, and one to three inside each whistle bout.
    r = rng(_KIND_CODE["clicks"], 1)
    train_starts = list(starts[n_rain + n_bout :])
    train_durs = list(durs[n_rain + n_bout :])
    for s, d in zip(bout_starts, bout_durs, strict=True):
        for _ in range(r.integers(1, 4)):
            length = min(r.uniform(2, 6), 0.3 * d)
            train_starts.append(s + r.uniform(0.05 * d, 0.95 * d - length))
            train_durs.append(length)
    if 20_000 < _BAND_TOP * fs:  # clicks need a sample rate above 44.4 kHz
        r = rng(_KIND_CODE["clicks"], 2)
        transients.append(_make_clicks(np.array(train_starts), np.array(train_durs), r, fs, rows))

    rows.append(("gap", float(plan.gap[0]), float(plan.gap[1]), 0.0, fs / 2, "recorder restart: no data"))
    # Leave out what a recorder at this sample rate cannot hear.
    rows = sorted((row for row in rows if row[3] < _BAND_TOP * fs), key=lambda row: (row[1], row[0]))

    # Ambient: distant shipping around 40 Hz, wind noise sloping down from 500 Hz.
    sos_low = scipy.signal.butter(1, [10, 150], btype="bandpass", fs=fs, output="sos")
    sos_low[0, :3] *= _noise_gain(sos_low, fs, 40.0, 70.0)
    sos_wind = _sloped_sos(fs)
    sos_wind[0, :3] *= _noise_gain(sos_wind, fs, 1000.0, 50.0)
    # Unit gains here; each ship and squall carries its own.
    sos_ship = scipy.signal.butter(2, [25, min(800, 0.4 * fs)], btype="bandpass", fs=fs, output="sos")
    hump = min(15_000.0, 0.35 * fs)
    sos_rain = np.vstack(
        [scipy.signal.butter(2, 1000, btype="highpass", fs=fs, output="sos"), _peaking_sos(fs, hump, 10.0, 1.0)]
    )
    unit = _noise_gain(sos_ship, fs, 200.0, FULL_SCALE_DB)  # gain for 0 dB re full scale per Hz
    for ship in ships:
        ship.broadband_gain *= unit
    unit = _noise_gain(sos_rain, fs, hump, FULL_SCALE_DB)
    for rain in rains:
        rain.gain *= unit
    r = np.random.default_rng([seed, _WIND])
    wind_knots = r.uniform(2.5, 8.0, int(total // _WIND_KNOT_SECONDS) + 2)

    scene = _Scene(plan, rows, ships, rains, transients, sos_low, sos_wind, sos_ship, sos_rain, wind_knots)
    scene.file_samples = [(first * fs, n * fs) for first, n in plan.file_spans]
    scene.gain = _headroom(scene)
    return scene


def _headroom(scene: _Scene) -> float:
    """Scale factor keeping the worst case (every source at once, noise at 6 sigma) under _PEAK_LIMIT."""
    gusty = np.max(scene.wind_knots) + 4.0
    bound = 6 * (_noise_rms(scene.sos_low, 1.0) + _noise_rms(scene.sos_wind, gusty / _WIND_REF))
    ships = [
        6 * _noise_rms(scene.sos_ship, s.broadband_gain) * (1 + s.modulation) + s.tonal_amps.sum() for s in scene.ships
    ]
    bound += max(ships, default=0.0)
    bound += max((6 * _noise_rms(scene.sos_rain, r.gain) for r in scene.rains), default=0.0)
    for tr in scene.transients:
        # Up to three whistles may overlap; pulses and clicks do not overlap their own kind.
        bound += 3 * max(tr.peaks, default=0.0)
    if bound <= _PEAK_LIMIT:
        return 1.0
    log.info("scaling every level by %.3f to keep the peak under %.2f of full scale", _PEAK_LIMIT / bound, _PEAK_LIMIT)
    return _PEAK_LIMIT / bound


def _make_ships(starts, durs, r: np.random.Generator, fs: int, rows: list) -> list[_Ship]:
    order = np.argsort(starts)  # number ships in time order
    starts, durs = np.asarray(starts)[order], np.asarray(durs)[order]
    ships = []
    for i, (s, d) in enumerate(zip(starts, durs, strict=True)):
        n_harm = int(r.integers(4, 8))
        tonal_db = r.uniform(110, 118)
        amps = np.sqrt(2) * _rms(tonal_db) * np.arange(1, n_harm + 1) ** -0.8 * r.uniform(0.5, 1.0, n_harm)
        amps[0] = np.sqrt(2) * _rms(tonal_db)
        ship = _Ship(
            index=i,
            start=float(s),
            end=float(s + d),
            speed=r.uniform(5, 10),
            blade_hz=r.uniform(35, 65),
            tonal_amps=amps,
            tonal_phases=r.uniform(0, 2 * np.pi, n_harm),
            broadband_gain=float(_rms(r.uniform(90, 98))),  # density re full scale, until _build_scene scales it
            modulation=r.uniform(0.2, 0.5),
        )
        ships.append(ship)
        doppler = ship.blade_hz * ship.speed / _SOUND_SPEED
        rows.append(
            (
                "ship",
                ship.start,
                ship.end,
                10.0,
                2000.0,
                f"ship {i + 1} of {len(starts)}: closest approach at +{ship.cpa:.0f} s, {ship.speed:.1f} m/s, "
                f"{ship.speed / ship.k:.0f} m; blade rate {ship.blade_hz:.1f} Hz +/- {doppler:.2f} Hz Doppler "
                f"with {n_harm - 1} harmonics; cavitation 25-800 Hz at "
                f"{20 * np.log10(ship.broadband_gain) + FULL_SCALE_DB:.0f} dB re 1 uPa^2/Hz",
            )
        )
    return ships


def _make_fin_whales(starts, durs, r: np.random.Generator, fs: int, rows: list) -> _Transients:
    t0, length, f_hi, f_lo, amp = [], [], [], [], []
    for s, d in zip(starts, durs, strict=True):
        ipi, dur = r.uniform(12, 15), r.uniform(0.8, 1.2)
        hi, lo, level = r.uniform(22, 24), r.uniform(16.5, 18), r.uniform(104, 114)
        n = max(1, int((d - 0.5 - dur) // ipi) + 1)
        times = s + 0.5 + ipi * np.arange(n) + np.clip(r.normal(0, 0.15, n), -0.4, 0.4)
        times[0] = s + 0.5
        times = np.minimum(times, s + d - dur)  # stay inside the bout's slot
        t0 += list(times)
        length += [dur] * n
        f_hi += [hi] * n
        f_lo += [lo] * n
        amp += list(np.sqrt(2) * _rms(level) * r.uniform(0.8, 1.2, n))
        rows.append(
            (
                "fin_whale",
                float(times[0]),
                float(times[-1] + dur),
                round(lo, 1),
                round(hi, 1),
                f"fin whale bout: {n} pulses {hi:.1f}->{lo:.1f} Hz, {dur:.2f} s long, every {ipi:.1f} s; "
                f"{level:.0f} dB re 1 uPa",
            )
        )
    t0, length, f_hi, f_lo, amp = map(np.asarray, (t0, length, f_hi, f_lo, amp))
    order = np.argsort(t0)
    t0, length, f_hi, f_lo, amp = t0[order], length[order], f_hi[order], f_lo[order], amp[order]
    first = np.ceil(t0 * fs).astype(np.int64)
    n_samples = np.floor(length * fs).astype(np.int64)

    def make(i: int) -> np.ndarray:
        tau = (first[i] + np.arange(n_samples[i])) / fs - t0[i]
        d = length[i]
        phase = 2 * np.pi * (f_hi[i] * tau + (f_lo[i] - f_hi[i]) * tau * tau / (2 * d))
        return amp[i] * _edge_taper(tau, 0.0, d, 0.25 * d) * _sin(phase)

    return _Transients(first, n_samples, amp, make)


def _make_whistles(starts, durs, r: np.random.Generator, fs: int, rows: list) -> _Transients:
    params = []  # t0, dur, fa, fb, fm, cycles, phase, harmonic, amp
    for s, d in zip(starts, durs, strict=True):
        n_sig = int(r.integers(2, 5))
        sigs = np.column_stack(
            [
                r.uniform(0.3, 1.5, n_sig),  # duration
                r.uniform(7000, 18000, n_sig),  # start frequency
                r.uniform(7000, 18000, n_sig),  # end frequency
                r.uniform(0, 2500, n_sig),  # modulation depth
                r.uniform(0.5, 2.5, n_sig),  # modulation cycles
                r.uniform(0, 2 * np.pi, n_sig),
                r.uniform(0.15, 0.4, n_sig),  # harmonic amplitude
            ]
        )
        rate, level = r.uniform(0.8, 1.5), r.uniform(98, 106)
        t, mine = s + 0.1, []
        while True:
            sig = sigs[r.integers(n_sig)]
            dur = float(np.clip(sig[0] * r.uniform(0.9, 1.1), 0.3, 1.5))
            if t + dur > s + d and mine:
                break
            scale = r.uniform(0.97, 1.03)
            amp = np.sqrt(2) * _rms(level + r.uniform(-4, 2))
            mine.append((t, dur, sig[1] * scale, sig[2] * scale, sig[3] * scale, sig[4], sig[5], sig[6], amp))
            t += r.exponential(1 / rate)
        params += mine
        lows, highs = zip(*(_contour_range(p) for p in mine), strict=True)
        rows.append(
            (
                "whistles",
                float(s + 0.1),
                float(max(p[0] + p[1] for p in mine)),
                round(min(lows)),
                round(min(max(highs), fs / 2)),
                f"dolphin whistle bout: {len(mine)} whistles from {n_sig} signature contours, with a 2nd harmonic; "
                f"{level:.0f} dB re 1 uPa",
            )
        )
    p = np.array(sorted(params)) if params else np.zeros((0, 9))
    first = np.ceil(p[:, 0] * fs).astype(np.int64)
    n_samples = np.floor(p[:, 1] * fs).astype(np.int64)

    def make(i: int) -> np.ndarray:
        t0, dur, fa, fb, fm, cycles, ph, harm, amp = p[i]
        tau = (first[i] + np.arange(n_samples[i])) / fs - t0
        freq = _contour(tau / dur, fa, fb, fm, cycles, ph)
        phase = (2 * np.pi / fs) * np.cumsum(freq)
        env = amp * _edge_taper(tau, 0.0, dur, 0.03)
        return env * (_fade(freq, fs) * _sin(phase) + harm * _fade(2 * freq, fs) * _sin(2 * phase))

    return _Transients(first, n_samples, p[:, 8] * (1 + p[:, 7]), make)


def _contour(x: np.ndarray, fa: float, fb: float, fm: float, cycles: float, phase: float) -> np.ndarray:
    """Whistle frequency in Hz at fraction ``x`` of its duration: a smooth sweep plus a slow wiggle."""
    sweep = x * x * (3 - 2 * x)
    return np.clip(fa + (fb - fa) * sweep + fm * np.sin(2 * np.pi * cycles * x + phase), 6000, 24000)


def _contour_range(p: tuple) -> tuple[float, float]:
    f = _contour(np.linspace(0, 1, 257), *p[2:7])
    return float(f.min()), float(f.max())


def _click_template(fs: int, centre: float, width: float) -> np.ndarray:
    """Make a click of Gaussian width ``width`` s around ``centre`` Hz as a recorder at ``fs`` records it.

    Built in the frequency domain: the click's Gaussian spectrum times an
    anti-alias roll-off from 0.40 to 0.47 of ``fs`` and a high-pass below 2 kHz,
    so the samples hold no aliased energy. Peak 1.
    """
    n = 2 * int(np.ceil(0.5e-3 * fs))
    n_fft = 8 * n
    f = np.fft.rfftfreq(n_fft, 1 / fs)
    sigma_f = 1 / (2 * np.pi * width)
    spectrum = np.exp(-0.5 * ((f - centre) / sigma_f) ** 2)
    spectrum *= np.clip((0.47 * fs - f) / (0.07 * fs), 0, 1) * np.clip(f / 2000, 0, 1)
    pulse = np.fft.irfft(spectrum * np.exp(-2j * np.pi * f * (n / 2) / fs), n_fft)[:n]
    pulse *= scipy.signal.windows.tukey(n, 0.5)
    return pulse / np.abs(pulse).max()


def _make_clicks(starts, durs, r: np.random.Generator, fs: int, rows: list) -> _Transients:
    positions, amps, which, templates = [], [], [], []
    for k, (s, d) in enumerate(zip(starts, durs, strict=True)):
        centre, width = r.uniform(40_000, 70_000), r.uniform(8e-6, 15e-6)
        ici0 = r.uniform(0.04, 0.09)
        ici1 = ici0 * r.uniform(0.5, 1.1)
        peak, scans, phase = r.uniform(0.01, 0.08), r.uniform(0.5, 2), r.uniform(0, 2 * np.pi)
        templates.append(_click_template(fs, centre, width))
        t, times = float(s), []
        while t <= s + d:
            times.append(t)
            x = (t - s) / d
            t += (ici0 + (ici1 - ici0) * x) * (1 + 0.02 * r.standard_normal())
        times = np.array(times)
        x = (times - s) / d
        # The beam sweeps across the hydrophone: loud on axis, faint off it.
        amp = peak * (0.2 + 0.8 * np.sin(np.pi * scans * x + phase) ** 2) * r.uniform(0.8, 1.2, len(times))
        positions += list(np.round(times * fs).astype(np.int64) - len(templates[-1]) // 2)
        amps += list(amp)
        which += [k] * len(times)
        top = min(centre + 2 * 1 / (2 * np.pi * width), 0.47 * fs)
        rows.append(
            (
                "clicks",
                float(times[0]),
                float(times[-1]),
                20_000.0,
                round(top),
                f"echolocation click train: {len(times)} clicks, inter-click interval {1e3 * ici0:.0f}->"
                f"{1e3 * ici1:.0f} ms, {2.355e6 * width:.0f} us wide at {centre / 1e3:.0f} kHz",
            )
        )
    order = np.argsort(positions, kind="stable")
    positions = np.asarray(positions, dtype=np.int64)[order]
    amps = np.asarray(amps)[order]
    which = np.asarray(which, dtype=np.int64)[order]
    lengths = np.array([len(templates[k]) for k in which], dtype=np.int64)

    def make(i: int) -> np.ndarray:
        return amps[i] * templates[which[i]]

    return _Transients(positions, lengths, amps, make)


def _make_rains(starts, durs, r: np.random.Generator, fs: int, rows: list) -> list[_Rain]:
    rains = []
    for i, (s, d) in enumerate(zip(starts, durs, strict=True)):
        level = r.uniform(66, 76)
        rain = _Rain(
            index=i,
            start=float(s),
            end=float(s + d),
            gain=float(_rms(level)),
            gust_period=r.uniform(40, 90),
            gust_phase=r.uniform(0, 2 * np.pi),
        )
        rains.append(rain)
        rows.append(
            (
                "rain",
                rain.start,
                rain.end,
                1000.0,
                round(min(30_000.0, 0.47 * fs)),
                f"rain squall: broadband above 1 kHz with the drop hump at 13-20 kHz, peak {level:.0f} dB re "
                "1 uPa^2/Hz at 15 kHz; wind rises by up to 4 m/s",
            )
        )
    return rains


# --------------------------------------------------------------------------- rendering


class _FilteredNoise:
    """White noise through IIR filters whose state carries from call to call.

    Second ``j`` of the noise (samples ``origin + j * fs ..``) comes from a
    generator seeded by ``(*key, j)``, so any range can be drawn alone. The
    first call warms the filters up on up to ``_WARMUP_SECONDS`` of the noise
    before it; later calls must continue where the last one stopped.
    """

    def __init__(self, key: tuple[int, ...], origin: int, fs: int, sos: list[np.ndarray]):
        self.key, self.origin, self.fs, self.sos = key, origin, fs, sos
        self.zi = [np.zeros((s.shape[0], 2)) for s in sos]
        self.pos: int | None = None

    def read(self, lo: int, hi: int) -> list[np.ndarray]:
        """Return samples ``[lo, hi)`` (global indices) through each filter."""
        if self.pos is None:
            warm = max(self.origin, lo - _WARMUP_SECONDS * self.fs)
            if warm < lo:
                self._filter(self._white(warm, lo))
        elif lo != self.pos:
            raise RuntimeError(f"noise read at {lo}, expected {self.pos}")  # a bug, not a user error
        self.pos = hi
        return self._filter(self._white(lo, hi))

    def _white(self, lo: int, hi: int) -> np.ndarray:
        fs, out = self.fs, np.empty(hi - lo)
        for j in range((lo - self.origin) // fs, (hi - 1 - self.origin) // fs + 1):
            s = self.origin + j * fs
            a, b = max(lo, s), min(hi, s + fs)
            gen = np.random.default_rng([*self.key, j])
            if a == s and b == s + fs:
                gen.standard_normal(out=out[a - lo : b - lo])
            else:
                out[a - lo : b - lo] = gen.standard_normal(fs)[a - s : b - s]
        return out

    def _filter(self, white: np.ndarray) -> list[np.ndarray]:
        out = []
        for i, sos in enumerate(self.sos):
            y, self.zi[i] = scipy.signal.sosfilt(sos, white, zi=self.zi[i])
            out.append(y)
        return out


class _FileRenderer:
    """Renders consecutive blocks of one file; holds that file's filter states."""

    def __init__(self, scene: _Scene):
        self.scene = scene
        fs, seed = scene.plan.fs, scene.plan.seed
        # The ambient noise starts before the deployment, so even its first sample is steady.
        origin = -_WARMUP_SECONDS * fs
        self.ambient = _FilteredNoise((seed, _AMBIENT), origin, fs, [scene.sos_low, scene.sos_wind])
        self.streams: dict[tuple[int, int], _FilteredNoise] = {}

    def _stream(self, code: int, index: int, start: float, sos: np.ndarray) -> _FilteredNoise:
        key = (code, index)
        if key not in self.streams:
            plan = self.scene.plan
            origin = math.ceil(start * plan.fs)
            self.streams[key] = _FilteredNoise((plan.seed, code, index), origin, plan.fs, [sos])
        return self.streams[key]

    def render(self, a: int, b: int) -> np.ndarray:
        """Return samples ``[a, b)`` of the deployment (global indices), float64, full scale 1."""
        scene, fs = self.scene, self.scene.plan.fs
        low, wind = self.ambient.read(a, b)
        wind *= _slow(scene.wind_gain, a, b, fs)
        x = low
        x += wind
        for ship in scene.ships:
            lo, hi = max(a, math.ceil(ship.start * fs)), min(b, math.ceil(ship.end * fs))
            if lo >= hi:
                continue
            (noise,) = self._stream(_SHIP, ship.index, ship.start, scene.sos_ship).read(lo, hi)
            x[lo - a : hi - a] += ship.render(noise, lo, fs)
        for rain in scene.rains:
            lo, hi = max(a, math.ceil(rain.start * fs)), min(b, math.ceil(rain.end * fs))
            if lo >= hi:
                continue
            (noise,) = self._stream(_RAIN, rain.index, rain.start, scene.sos_rain).read(lo, hi)
            noise *= rain.gain
            noise *= _slow(rain.envelope, lo, hi, fs)
            x[lo - a : hi - a] += noise
        for tr in scene.transients:
            tr.add_to(x, a)
        if scene.gain != 1.0:
            x *= scene.gain
        return x


def _slow(fn: Callable[[np.ndarray], np.ndarray], a: int, b: int, fs: int) -> np.ndarray:
    """Evaluate a slowly varying ``fn(t)`` for samples ``[a, b)``, shape (b - a,).

    ``fn`` is evaluated every ``_GRID`` samples of the deployment (4 ms at
    64 kHz) and interpolated linearly: the grid is fixed, so the values do not
    depend on where blocks start.
    """
    g = _GRID
    k0, k1 = a // g, -(-b // g)
    grid = fn(np.arange(k0, k1 + 1) * (g / fs))
    ramp = np.arange(g) / g
    full = (grid[:-1, None] + (grid[1:] - grid[:-1])[:, None] * ramp).ravel()
    return full[a - k0 * g : b - k0 * g]


def _write_file(scene: _Scene, index: int, path: Path) -> int:
    """Write file ``index`` block by block; returns how many samples were clipped."""
    fs = scene.plan.fs
    first, n = scene.file_samples[index]
    renderer = _FileRenderer(scene)
    block = _BLOCK_SECONDS * fs
    clipped = 0
    with sf.SoundFile(path, "w", samplerate=fs, channels=1, subtype="PCM_16", format="FLAC") as f:
        for a in range(first, first + n, block):
            x = renderer.render(a, min(a + block, first + n)) * 32768.0
            over = np.abs(x) > 32767.0
            if over.any():
                clipped += int(over.sum())
                np.clip(x, -32767.0, 32767.0, out=x)
            f.write(np.rint(x).astype(np.int16))
    log.debug("wrote %s", path.name)
    return clipped


def _write_events(path: Path, rows: list[tuple[str, float, float, float, float, str]], start: np.datetime64) -> None:
    def iso(seconds: float) -> str:
        return np.datetime_as_string(start + seconds_to_ns(seconds), unit="ms") + "Z"

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(EVENT_COLUMNS)
        for kind, s, e, lo, hi, note in rows:
            writer.writerow([kind, iso(s), iso(e), f"{lo:.1f}", f"{hi:.1f}", note])
