"""Times, parsed and written one way everywhere: UTC ``datetime64[ns]``, exact to the nanosecond.

Stores, links, file names and typed inputs all come through :func:`to_datetime64`
(naive times are UTC); sample positions become times through
:func:`samples_to_timedelta`, exact days into a recording; a file name's time
through :func:`time_from_filename`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from data_access.errors import ParameterError

_STRFTIME_REGEX = {
    "%Y": r"\d{4}",
    "%y": r"\d{2}",
    "%m": r"\d{2}",
    "%d": r"\d{2}",
    "%H": r"\d{2}",
    "%M": r"\d{2}",
    "%S": r"\d{2}",
    "%f": r"\d{1,6}",
    "%j": r"\d{3}",
}


def to_datetime64(value: object) -> np.datetime64:
    """Convert a time (ISO string, datetime, Timestamp, datetime64) to UTC ``datetime64[ns]``.

    Time-zone-aware inputs are converted to UTC; naive ones are taken as UTC.
    """
    ts = utc_timestamp(value)
    if not pd.Timestamp.min <= ts <= pd.Timestamp.max:
        raise ParameterError(
            f"{str(value)!r} is outside {pd.Timestamp.min:%Y-%m-%d} .. {pd.Timestamp.max:%Y-%m-%d}, "
            "the times a datetime64[ns] holds"
        )
    return np.datetime64(ts.as_unit("ns").asm8, "ns")


def utc_timestamp(value: object) -> pd.Timestamp:
    """``value`` as a naive UTC Timestamp, at a resolution that holds it."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise ParameterError(f"cannot read {value!r} as a time: {err}") from None
    if ts is pd.NaT:
        raise ParameterError(f"{value!r} is not a time")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def seconds_to_ns(seconds: float | np.ndarray) -> np.ndarray:
    """Seconds (float) to integer nanoseconds, rounded, as ``timedelta64[ns]``."""
    return np.round(np.asarray(seconds, dtype=np.float64) * 1e9).astype("int64").astype("timedelta64[ns]")


def samples_to_timedelta(samples: float | np.ndarray, sample_rate: float) -> np.ndarray:
    """Offset of (possibly fractional) sample positions as ``timedelta64[ns]``.

    Whole seconds and the remainder are converted separately so a position days
    into a recording is still exact to the nanosecond.
    """
    samples = np.asarray(samples, dtype=np.float64)
    whole = np.floor(samples / sample_rate)
    rest = samples - whole * sample_rate
    return whole.astype("int64") * np.timedelta64(1_000_000_000, "ns") + seconds_to_ns(rest / sample_rate)


def time_from_filename(name: str, patterns: Iterable[str]) -> np.datetime64 | None:
    """The first time any strftime ``patterns`` finds in the file name, or None."""
    for pattern in patterns:
        regex = re.escape(pattern)
        for code, digits in _STRFTIME_REGEX.items():
            regex = regex.replace(re.escape(code), f"({digits})" if code == "%f" else digits)
        for match in re.finditer(f"(?<!\\d){regex}(?!\\d)", name):
            try:
                return to_datetime64(dt.datetime.strptime(match.group(0), pattern))
            except ValueError:
                continue
    return None
