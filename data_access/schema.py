"""The store's schema, where the code meets it: the time of every column, and the root attributes read back.

Writers and readers both come here, so a store written by ``ingest`` is read by
``open_atlas`` with the same formulas: :func:`column_times` is the one place the
time of column ``j`` of level ``k`` is computed (exact to the nanosecond, counted
in samples from the recording's first), and :func:`read_root` the one place a
store's root attributes are parsed (a :class:`~data_access.errors.FormatError`
naming the attribute that does not).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from data_access.calibration import Calibration
from data_access.errors import AtlasError, FormatError, ParameterError
from data_access.stft import StftConfig
from data_access.times import samples_to_timedelta, to_datetime64


def column_centres(config: StftConfig, level: int, start: int, stop: int) -> np.ndarray:
    """Samples from the recording's first to the centres of columns ``start..stop-1`` of a level.

    Column ``j`` of level ``k`` spans frames ``j * 2**k .. (j + 1) * 2**k - 1``; its
    centre is the mean of theirs, ``((j + 1/2) * 2**k - 1/2) * hop + n_fft / 2``
    (whole and half samples: exact in float64 for any recording).
    """
    step = 2**level
    return (np.arange(start, stop, dtype=np.float64) * step + (step - 1) / 2) * config.hop_length + config.n_fft / 2


def column_times(
    start_time: np.datetime64, sample_rate: float, config: StftConfig, level: int, start: int, stop: int
) -> np.ndarray:
    """Centre times (datetime64[ns], UTC) of columns ``start..stop-1`` of a level: see :func:`column_centres`."""
    return start_time + samples_to_timedelta(column_centres(config, level, start, stop), sample_rate)


@dataclass(frozen=True)
class RootAttributes:
    """A store's root attributes, parsed: what a reader needs of them."""

    sample_rate: float
    stft: StftConfig
    start_time: np.datetime64
    end_time: np.datetime64
    sources: list
    n_levels: int
    calibration: Calibration | None


def read_root(attrs: Mapping[str, object]) -> RootAttributes:
    """Parse a store's root attributes.

    Raises
    ------
    FormatError
        An attribute is missing or does not parse; the message names it.
    """
    try:
        return RootAttributes(
            sample_rate=_attr(attrs, "sample_rate", _positive),
            stft=StftConfig(
                n_fft=_attr(attrs, "n_fft", int),
                hop_length=_attr(attrs, "hop_length", int),
                win_length=_attr(attrs, "win_length", int),
                window=_attr(attrs, "window", str),
            ),
            start_time=_attr(attrs, "start_time", to_datetime64),
            end_time=_attr(attrs, "end_time", to_datetime64),
            sources=_attr({"sources": "[]", **attrs}, "sources", _json_list),
            n_levels=_attr(attrs, "n_levels", int),
            calibration=Calibration.from_attrs(attrs),
        )
    except ParameterError as err:  # (StftConfig's own checks)
        raise FormatError(str(err)) from None


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


def _json_list(text: object) -> list:
    value = json.loads(str(text))
    if not isinstance(value, list):
        raise ValueError("not a JSON list")
    return value
