"""The store's schema, where the code meets it: every attribute, the time of every column, both ways.

Writers and readers both come here, so a store written by ``ingest`` is read by
``open_atlas`` with the same names and formulas:

- :func:`root_attrs` writes a store's root attributes and :func:`read_root`
  parses them (a :class:`~data_access.errors.FormatError` naming the attribute
  that does not);
- :func:`stft_attrs` / :func:`read_stft`, :func:`calibration_attrs` /
  :func:`read_calibration` and :func:`location_attrs` / :func:`read_location`
  save and load the STFT parameters, the calibration and the deployment's
  place, which are plain values here and maths in their own modules;
- :func:`power_attrs`, :func:`max_attrs` and :func:`wave_attrs` are the CF
  attributes of the arrays;
- :func:`column_times` is the one place the time of column ``j`` of level
  ``k`` is computed (exact to the nanosecond, counted in samples from the
  recording's first), and :func:`wave_span` the one place the samples a
  level-0 waveform column summarises are.

Format 1 (no ``format_version``) is every store written before compression: its
pyramid halves (``pyramid_factor`` 2, which it does not record). Format 2
compresses, and its pyramid divides by :data:`PYRAMID_FACTOR`. Format 3 is format
2 plus the waveform summaries (:data:`WAVE_NAMES`) at every level.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from data_access import __version__
from data_access.calibration import Calibration
from data_access.errors import AtlasError, FormatError, ParameterError
from data_access.stft import StftConfig
from data_access.times import samples_to_timedelta, to_datetime64

if TYPE_CHECKING:
    from data_access.sources import Timeline

#: The store format written (root attribute ``format_version``; a store without it is format 1).
#: 1: uncompressed, a halving pyramid. 2: compressed power, a quartering pyramid. 3: format 2 and
#: the waveform summaries (``wave_min``, ``wave_max``, ``wave_rms``) at every level.
FORMAT_VERSION = 3
#: The waveform arrays of every level of a store of format 3 (:func:`wave_attrs`).
WAVE_NAMES = ("wave_min", "wave_max", "wave_rms")
#: Frames per column grow by this factor from one level to the next in stores written now
#: (root attribute ``pyramid_factor``). Format 1's pyramid halves: 2, not recorded. Four
#: levels' worth of pyramid cost a third of level 0 instead of all of it, and a view reads
#: one to four times its pixels' columns instead of one to two.
PYRAMID_FACTOR = 4
#: ``pyramid_factor`` of a store that does not say (format 1).
FORMAT1_PYRAMID_FACTOR = 2
#: Every calibration attribute of a store's root starts with this.
CALIBRATION_PREFIX = "calibration_"
#: Units of a calibrated view (power spectral density) and of calibrated band levels.
PSD_UNITS = "dB re 1 µPa²/Hz"
BAND_UNITS = "dB re 1 µPa"
_STFT_ATTRS = ("n_fft", "hop_length", "win_length", "window")
#: The root attribute holding a deployment's place (:func:`location_attrs`).
LOCATION_ATTR = "location"


# ------------------------------------------------------------------ times
def column_centres(config: StftConfig, level: int, start: int, stop: int, *, factor: int) -> np.ndarray:
    """Samples from the recording's first to the centres of columns ``start..stop-1`` of a level.

    With ``m = factor**level`` frames per column, column ``j`` spans frames
    ``j * m .. (j + 1) * m - 1``; its centre is the mean of theirs,
    ``((j + 1/2) * m - 1/2) * hop + n_fft / 2`` (whole and half samples: exact in
    float64 for any recording).
    """
    step = factor**level
    return (np.arange(start, stop, dtype=np.float64) * step + (step - 1) / 2) * config.hop_length + config.n_fft / 2


def column_times(
    start_time: np.datetime64,
    sample_rate: float,
    config: StftConfig,
    level: int,
    start: int,
    stop: int,
    *,
    factor: int,
) -> np.ndarray:
    """Centre times (datetime64[ns], UTC) of columns ``start..stop-1`` of a level: see :func:`column_centres`."""
    return start_time + samples_to_timedelta(column_centres(config, level, start, stop, factor=factor), sample_rate)


def wave_span(config: StftConfig, start: int, stop: int) -> tuple[int, int]:
    """Samples ``[first, last)`` the level-0 waveform columns ``start..stop-1`` summarise.

    Column ``j`` summarises the hop of samples centred on frame ``j``'s centre,
    ``[j * hop + (n_fft - hop) // 2, j * hop + (n_fft - hop) // 2 + hop)``: one hop
    each, side by side, so the columns tile the recording (but for the first
    ``(n_fft - hop) // 2`` samples and the tail after the last frame's hop), and
    each lies inside its own frame, whose samples an ingest reads anyway. The
    segment's centre is the frame's, or half a sample before it when
    ``n_fft - hop`` is odd.
    """
    offset = (config.n_fft - config.hop_length) // 2
    return start * config.hop_length + offset, stop * config.hop_length + offset


# ------------------------------------------------------------- the parts
def stft_attrs(config: StftConfig) -> dict[str, int | str]:
    """The STFT parameters as flat root attributes."""
    return asdict(config)


def read_stft(attrs: Mapping[str, object]) -> StftConfig:
    """The STFT parameters of a store's root attributes (FormatError naming one that does not parse)."""
    try:
        return StftConfig(
            n_fft=_attr(attrs, "n_fft", int),
            hop_length=_attr(attrs, "hop_length", int),
            win_length=_attr(attrs, "win_length", int),
            window=_attr(attrs, "window", str),
        )
    except ParameterError as err:  # (StftConfig's own checks)
        raise FormatError(str(err)) from None


def calibration_attrs(calibration: Calibration | None) -> dict[str, float | str]:
    """A calibration as flat root attributes (the table as JSON), all starting with :data:`CALIBRATION_PREFIX`.

    Only plain floats and strings, so NetCDF can hold them too; ``{}`` for None.
    """
    if calibration is None:
        return {}
    attrs: dict[str, float | str] = {}
    if calibration.sensitivity_db is not None:
        attrs["calibration_sensitivity_db"] = calibration.sensitivity_db
    else:
        table = {"freq_hz": list(calibration.response_hz), "sensitivity_db": list(calibration.response_db)}
        attrs["calibration_response"] = json.dumps(table)
    if calibration.sensitivity_file is not None:
        attrs["calibration_sensitivity_file"] = calibration.sensitivity_file
    attrs["calibration_gain_db"] = calibration.gain_db
    attrs["calibration_full_scale_volts"] = calibration.full_scale_volts
    attrs["calibration_formula"] = (
        "pressure (uPa) = sample * full_scale_volts / 10**(gain_db/20) / 10**(S(f)/20), "
        "S(f) the sensitivity in dB re 1 V/uPa; applied at read time, power is stored uncalibrated"
    )
    return attrs


def read_calibration(attrs: Mapping[str, object]) -> Calibration | None:
    """The calibration held in a store's root attributes, or None if it has none.

    Raises
    ------
    FormatError
        If the calibration attributes are present but malformed.
    """
    if not any(key.startswith(CALIBRATION_PREFIX) for key in attrs):
        return None
    try:
        table = attrs.get("calibration_response")
        response = json.loads(table) if table is not None else {}
        return Calibration(
            sensitivity_db=attrs.get("calibration_sensitivity_db"),
            response_hz=response.get("freq_hz"),
            response_db=response.get("sensitivity_db"),
            gain_db=attrs.get("calibration_gain_db", 0.0),
            full_scale_volts=attrs.get("calibration_full_scale_volts", 1.0),
            sensitivity_file=attrs.get("calibration_sensitivity_file"),
        )
    except (ParameterError, ValueError, TypeError, AttributeError) as err:
        raise FormatError(f"the store's calibration attributes are malformed: {err}") from None


def check_location(latitude: object, longitude: object) -> tuple[float, float]:
    """``(latitude, longitude)`` as floats, checked: -90..90 and -180..180 degrees (north and east positive)."""
    try:
        lat, lon = float(latitude), float(longitude)
    except (TypeError, ValueError):
        raise ParameterError(f"location {latitude!r}, {longitude!r} must be two numbers of degrees") from None
    if not -90 <= lat <= 90:
        raise ParameterError(f"latitude={lat:g} must lie in -90..90 degrees")
    if not -180 <= lon <= 180:
        raise ParameterError(f"longitude={lon:g} must lie in -180..180 degrees")
    return lat, lon


def location_attrs(location: tuple[float, float] | None) -> dict[str, str]:
    """A deployment's place as the root attribute ``location``; ``{}`` for None.

    JSON ``{"latitude": .., "longitude": ..}``, degrees (WGS 84), north and east
    positive: what the diel map's sunrise and sunset need.
    """
    if location is None:
        return {}
    lat, lon = check_location(*location)
    return {LOCATION_ATTR: json.dumps({"latitude": lat, "longitude": lon})}


def read_location(attrs: Mapping[str, object]) -> tuple[float, float] | None:
    """The ``(latitude, longitude)`` held in a store's root attributes, or None if it has none.

    Raises
    ------
    FormatError
        If the attribute is present but malformed.
    """
    if LOCATION_ATTR not in attrs:
        return None
    return _attr(attrs, LOCATION_ATTR, _location)


def _location(text: object) -> tuple[float, float]:
    value = json.loads(str(text))
    return check_location(value["latitude"], value["longitude"])


# ------------------------------------------------------------- writing
def root_attrs(
    timeline: Timeline,
    config: StftConfig,
    *,
    n_frames: int,
    n_levels: int,
    calibration: Calibration | None = None,
    factor: int = PYRAMID_FACTOR,
    location: tuple[float, float] | None = None,
) -> dict[str, object]:
    """The root attributes of a store of ``timeline``'s spectrogram, in the current format."""
    rate = timeline.sample_rate
    end = timeline.start_time + samples_to_timedelta(timeline.n_samples, rate)
    return {
        "title": "Spectral Atlas multiscale spectrogram",
        "format_version": FORMAT_VERSION,
        "Conventions": "CF-1.10",
        "software": f"spectral-atlas {__version__}",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sample_rate": rate,
        **stft_attrs(config),
        "channel": str(timeline.channel),
        **(
            {"n_channels": timeline.n_channels, "channel_labels": json.dumps(timeline.channel_labels())}
            if timeline.channel == "all"
            else {}
        ),
        "start_time": str(timeline.start_time),
        "end_time": str(end),
        "duration_seconds": timeline.n_samples / rate,
        "n_samples": int(timeline.n_samples),
        "n_frames": int(n_frames),
        **pyramid_attrs(n_levels, factor),
        "frame_time": "centre: start_time + (i * hop_length + n_fft / 2) / sample_rate",
        "sources": json.dumps(timeline.describe()),
        "gaps_seconds": json.dumps([[a / rate, b / rate] for a, b in timeline.gaps()]),
        "deployment": json.dumps(timeline.summary()),
        **calibration_attrs(calibration),
        **location_attrs(location),
    }


def pyramid_attrs(n_levels: int, factor: int) -> dict[str, object]:
    """The root attributes that describe the pyramid: its levels and their factor."""
    return {
        "n_levels": int(n_levels),
        "pyramid_factor": int(factor),
        "pyramid": f"level k averages {factor}**k frames: NaN-aware mean of power, weighted by frame_count",
    }


def power_attrs(raw_counts: bool) -> dict[str, str]:
    """CF attributes of every ``power`` array: of raw counts (MiniSEED), or of fractions of full scale."""
    return {
        "long_name": "spectral power |STFT|^2" + (" of raw counts" if raw_counts else " re full scale"),
        "units": "count2" if raw_counts else "1",
        "description": "raw power of the windowed FFT, not scaled by window or sample rate; "
        "coarser levels hold the mean over the frames of each column",
    }


def max_attrs(power: Mapping[str, str]) -> dict[str, str]:
    """CF attributes of a ``power_max`` array beside a ``power`` array with attributes ``power``."""
    return {
        **power,
        "long_name": power["long_name"].replace("spectral power", "maximum spectral power"),
        "description": "the largest full-resolution power among the frames of each column",
    }


_WAVE_NAMES = {
    "wave_min": ("minimum sample", "the smallest finite sample"),
    "wave_max": ("maximum sample", "the largest finite sample"),
    "wave_rms": ("root mean square of the samples", "the root mean square of the finite samples"),
}


def wave_attrs(name: str, raw_counts: bool) -> dict[str, str]:
    """CF attributes of waveform array ``name`` (one of :data:`WAVE_NAMES`): of raw counts, or of full scale.

    Level 0's column ``j`` summarises the samples :func:`wave_span` gives; a level
    above takes the minimum of the minima, the maximum of the maxima and the root
    of the mean of the squared RMS of its ``pyramid_factor`` columns below (NaN
    columns left out). NaN where the segment holds no finite sample (a gap).
    """
    long_name, what = _WAVE_NAMES[name]
    return {
        "long_name": long_name + (" (raw counts)" if raw_counts else " re full scale"),
        "units": "count" if raw_counts else "1",
        "coordinates": "time",
        "description": f"{what} of the hop of samples centred on each level-0 frame's centre, "
        "[j * hop_length + (n_fft - hop_length) // 2, + hop_length); coarser levels reduce the columns below "
        "(min of min, max of max, RMS through the mean of squares, NaN columns left out); NaN over gaps",
    }


def raw_counts_power(power: Mapping[str, object]) -> bool:
    """Whether power with attributes ``power`` is of raw counts (MiniSEED) rather than of full scale."""
    return power.get("units") == "count2"


#: Attributes of each level's coordinates and counts (CF conventions).
FREQ_ATTRS = {"units": "Hz", "long_name": "frequency", "standard_name": "sound_frequency"}
TIME_ATTRS = {
    "long_name": "time at the centre of each column (UTC)",
    "standard_name": "time",
    "units": "nanoseconds since 1970-01-01",
    "calendar": "proleptic_gregorian",
}
FRAME_COUNT_ATTRS = {
    "long_name": "valid full-resolution frames averaged into each column",
    "units": "1",
    "coordinates": "time",
}


def level_attrs(level: int, n_columns: int, factor: int) -> dict[str, int]:
    """Attributes of level ``level``'s group."""
    return {"level": level, "frames_per_column": factor**level, "n_frames": n_columns}


def channel_attrs(labels: list[str]) -> dict[str, str]:
    """Attributes of a multichannel store's ``channel`` coordinate: each channel's label (JSON)."""
    return {"long_name": "channel index in the input files", "labels": json.dumps(labels)}


# ------------------------------------------------------------- reading
@dataclass(frozen=True)
class RootAttributes:
    """A store's root attributes, parsed: what a reader needs of them."""

    sample_rate: float
    stft: StftConfig
    start_time: np.datetime64
    end_time: np.datetime64
    sources: list
    n_levels: int
    pyramid_factor: int
    calibration: Calibration | None
    location: tuple[float, float] | None = None


def read_root(attrs: Mapping[str, object]) -> RootAttributes:
    """Parse a store's root attributes.

    Raises
    ------
    FormatError
        An attribute is missing or does not parse; the message names it.
    """
    return RootAttributes(
        sample_rate=_attr(attrs, "sample_rate", _positive),
        stft=read_stft(attrs),
        start_time=_attr(attrs, "start_time", to_datetime64),
        end_time=_attr(attrs, "end_time", to_datetime64),
        sources=_attr({"sources": "[]", **attrs}, "sources", _json_list),
        n_levels=_attr(attrs, "n_levels", int),
        pyramid_factor=read_pyramid_factor(attrs),
        calibration=read_calibration(attrs),
        location=read_location(attrs),
    )


def read_pyramid_factor(attrs: Mapping[str, object]) -> int:
    """Frames per column grow by this from level to level: ``pyramid_factor``, or 2 in a format-1 store."""
    return _attr({"pyramid_factor": FORMAT1_PYRAMID_FACTOR, **attrs}, "pyramid_factor", _factor)


def _attr(attrs: Mapping[str, object], name: str, parse):
    """Root attribute ``name`` read by ``parse``; a FormatError naming it if it is missing or unreadable."""
    if name not in attrs:
        raise FormatError(f"the root attribute {name!r} is missing")
    try:
        return parse(attrs[name])
    except (ValueError, TypeError, OverflowError, AtlasError) as err:
        raise FormatError(f"the root attribute {name}={str(attrs[name])[:60]!r} does not parse ({err})") from None


def _positive(text: object) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise ValueError("not a positive number")
    return value


def _factor(value: object) -> int:
    if isinstance(value, bool) or int(value) != value or not 2 <= int(value) <= 64:
        raise ValueError("not a whole number of frames from 2 to 64")
    return int(value)


def _json_list(text: object) -> list:
    value = json.loads(str(text))
    if not isinstance(value, list):
        raise ValueError("not a JSON list")
    return value
