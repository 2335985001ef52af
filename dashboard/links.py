"""Deep links: the explorer's view as a URL query, and back.

A copied link reproduces the view: ``?start=…&end=…&fmin=…&fmax=…&db=lo,hi&cmap=…&agg=…&scale=…&bands=…``
(times ISO 8601 UTC to the nanosecond; frequencies in Hz on every scale; ``scale`` linear, log or mel; bands as
``name:low-high`` joined by ``;``, names percent-encoded), plus ``&channel=K`` (an index into
the store's channels, or a channel's label) for a multichannel store, and ``&selection=ID`` (the
current selection's id: :mod:`dashboard.selections` checks it names one of the store's selections and
opens the view around it). Reading a link never fails: each value that
cannot be used (a bad date, an inverted or outside range, an unknown colormap,
a huge number) is left at its default and reported in one sentence, so the page
opens on the default view with a visible message instead of an error.

No Panel import: the state is :class:`~dashboard.state.ExplorerState`.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Mapping

import numpy as np

from dashboard.state import COLORMAPS, ExplorerState, band_name
from data_access import AtlasError, ParameterError
from data_access.times import to_datetime64

#: Query keys a link may carry (besides ``store``, which the page resolves).
KEYS = ("start", "end", "fmin", "fmax", "db", "cmap", "agg", "scale", "bands", "channel", "selection")


def _iso(t: np.datetime64) -> str:
    return str(np.datetime64(t, "ns")).rstrip("0").rstrip(".") + "Z"


def _number(text: str) -> str:
    return f"{float(text):.10g}"


def view_query(state: ExplorerState) -> dict[str, str]:
    """The query that reproduces what ``state`` shows."""
    start, end = state.time_range
    return {
        "start": _iso(start),
        "end": _iso(end),
        "fmin": _number(state.freq_range[0]),
        "fmax": _number(state.freq_range[1]),
        "db": ",".join(_number(v) for v in state.db_range),
        "cmap": state.cmap,
        "agg": state.agg,
        "scale": state.freq_scale,
        "bands": ";".join(
            f"{urllib.parse.quote(name, safe=' ')}:{_number(lo)}-{_number(hi)}"
            for name, (lo, hi) in state.bands.items()
        ),
        **({} if state.channel is None else {"channel": str(state.channel)}),
        **({} if state.selection is None else {"selection": str(state.selection)}),
    }


def _finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > 1e12:
        raise ValueError(f"{what} {text!r} is out of range")
    return value


def _time(text: str, what: str) -> np.datetime64:
    try:
        return to_datetime64(text.removesuffix("Z"))
    except (AtlasError, ValueError, OverflowError) as err:
        raise ValueError(f"{what} {text!r} is not a time ({err})") from None


#: Bands a link may name: the rest are left out, and the page says so. (A link of 1000 bands,
#: a 13 KB URL, once took the server 163 s to build and blocked every other page meanwhile.)
MAX_LINK_BANDS = 32
#: Characters a band's name may have in a link.
MAX_BAND_NAME = 80


def _bands(text: str, nyquist: float) -> tuple[dict[str, tuple[float, float]], str | None]:
    """The bands a link names, at most :data:`MAX_LINK_BANDS`, and a sentence on those left out (or None)."""
    items = [item for item in text.split(";", MAX_LINK_BANDS + 1)[: MAX_LINK_BANDS + 1] if item]
    named = text.count(";") + 1 if len(items) > MAX_LINK_BANDS else len(items)
    bands = {}
    for item in items[:MAX_LINK_BANDS]:
        quoted, _, span = item.rpartition(":")
        low, sep, high = span.partition("-")
        if not quoted.strip() or not sep:
            raise ValueError(f"band {item[:100]!r} is not name:low-high")
        if len(quoted) > MAX_BAND_NAME:
            raise ValueError(f"band name {quoted[:40]!r}... is longer than {MAX_BAND_NAME} characters")
        try:
            name = band_name(urllib.parse.unquote(quoted))
        except ParameterError as err:
            raise ValueError(str(err)) from None
        lo, hi = _finite(low, f"band {name!r} low"), _finite(high, f"band {name!r} high")
        if not 0 <= lo < hi <= nyquist:
            raise ValueError(f"band {name!r} {lo:g}-{hi:g} Hz is not within 0..{nyquist:g} Hz")
        bands[name] = (lo, hi)
    left_out = None
    if named > MAX_LINK_BANDS:
        left_out = f"the link names {named} bands: the first {MAX_LINK_BANDS} are shown, the rest left out"
    return bands, left_out


def _channel(text: str, labels: list[str]) -> int:
    """A channel index from its index or its label."""
    if not labels:
        raise ValueError(f"channel {text!r}: this store holds a single channel")
    if text.isdigit() and int(text) < len(labels):
        return int(text)
    if text in labels:
        return labels.index(text)
    choices = ", ".join(f"{i} ({label})" if label != str(i) else label for i, label in enumerate(labels))
    raise ValueError(f"channel {text!r} is not one of {choices}")


def selection_id(text: str) -> int:
    """A selection's id as a link gives it: a positive integer of at most 18 digits.

    Raises
    ------
    ValueError
        The text is not one (quoted, cut to 40 characters).
    """
    if not re.fullmatch(r"[0-9]{1,18}", text) or int(text) < 1:
        raise ValueError(f"selection {text[:40]!r} is not a selection's number")
    return int(text)


def apply_query(state: ExplorerState, query: Mapping[str, str]) -> list[str]:
    """Show what ``query`` asks for; return a sentence for each part that could not be used.

    Parts are applied independently, all in one change of ``state``.
    """
    problems: list[str] = []
    changes: dict[str, object] = {}
    first, last = state.atlas.time_range
    nyquist = state.atlas.freq_range[1]

    def attempt(keys: tuple[str, ...], read) -> None:
        if any(k in query for k in keys):
            try:
                changes.update(read())
            except ValueError as err:
                problems.append(f"{err}: ignored")

    def times():
        start = _time(query["start"], "start") if "start" in query else state.time_range[0]
        end = _time(query["end"], "end") if "end" in query else state.time_range[1]
        if not start < end:
            raise ValueError(f"time range {_iso(start)} .. {_iso(end)} is empty or inverted")
        if end <= first or start >= last:
            raise ValueError(f"time range {_iso(start)} .. {_iso(end)} is outside the recording")
        return {"time_range": state.clamped_time(start, end, keep="ends")}

    def freqs():
        lo = _finite(query["fmin"], "fmin") if "fmin" in query else state.freq_range[0]
        hi = _finite(query["fmax"], "fmax") if "fmax" in query else state.freq_range[1]
        lo, hi = max(lo, 0.0), min(hi, nyquist)
        if not lo < hi:
            raise ValueError(f"frequency range {query.get('fmin')}..{query.get('fmax')} Hz is empty or inverted")
        return {"freq_range": (lo, hi)}

    def db():
        parts = query["db"].split(",")
        if len(parts) != 2:
            raise ValueError(f"db {query['db']!r} is not low,high")
        lo, hi = (_finite(p, "db") for p in parts)
        if not lo < hi:
            raise ValueError(f"db range {lo:g},{hi:g} is inverted")
        return {"db_range": (lo, hi)}

    def choice(key: str, options: list[str], name: str | None = None):
        def read():
            if query[key] not in options:
                raise ValueError(f"{key} {query[key]!r} is not one of {', '.join(options)}")
            return {name or key: query[key]}

        return read

    attempt(("start", "end"), times)
    attempt(("fmin", "fmax"), freqs)
    attempt(("db",), db)
    attempt(("cmap",), choice("cmap", COLORMAPS))
    attempt(("agg",), choice("agg", ["mean", "max"]))
    attempt(("scale",), choice("scale", state.param.freq_scale.objects, "freq_scale"))

    def bands():
        named, left_out = _bands(query["bands"], nyquist)
        if left_out:
            problems.append(left_out)
        return {"bands": named}

    attempt(("bands",), bands)
    attempt(("channel",), lambda: {"channel": _channel(query["channel"], state.atlas.channels)})
    # Only its form here: whether the store has such a selection is the selections panel's to check.
    attempt(("selection",), lambda: {"selection": selection_id(query["selection"])})
    state.param.update(changes)
    return problems
