"""A failure on the server as the visitor and the operator see it: one line on the page, the rest in the log.

A hosted page faces strangers, and an exception's text can hold the server's
paths and the traceback its code: the visitor is told in one line what could
not be done (the text of a :class:`~data_access.ParameterError`, which is about
what they asked; else only the kind of error) and a reference, under which the
log holds the whole traceback. The page goes on: a read that fails shows an
empty view marked "not readable" and the next gesture reads again.

Where the line appears: the :class:`~dashboard.messages.Message` an explorer
names with :func:`say_failures_in`, for its state and (served) its page. A
served process hands Panel's own callbacks' failures here too
(:func:`report_session_failures`: ``pn.config.exception_handler``).
"""

from __future__ import annotations

import logging
import secrets
import weakref
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import panel as pn
import xarray as xr

from dashboard.messages import Message
from data_access import ParameterError

log = logging.getLogger("spectral_atlas")

T = TypeVar("T")

#: Where each state's (and each served page's) failures are said.
_SAID_IN: weakref.WeakKeyDictionary[object, Message] = weakref.WeakKeyDictionary()


def say_failures_in(message: Message, *owners: object) -> None:
    """Say the failures of each of ``owners`` (an explorer's state, a page's document) in ``message``."""
    for owner in owners:
        _SAID_IN[owner] = message


def visitor_line(error: BaseException, ref: str, doing: str = "do that") -> str:
    """The one line a visitor reads: a ParameterError's own first line, else what failed and the log's reference."""
    if isinstance(error, ParameterError):
        return str(error).splitlines()[0][:300] if str(error) else f"could not {doing}"
    return f"Could not {doing}: an error on the server ({type(error).__name__}), logged as {ref}."


def report(error: BaseException, owner: object = None, doing: str = "do that") -> str:
    """Log ``error`` with its traceback under a new reference, and tell the page of ``owner`` in one line.

    ``owner`` is an explorer's state; without one, the current served page. Returns the reference.
    """
    ref = secrets.token_hex(4)
    log.error("failure %s (could not %s): %s: %s", ref, doing, type(error).__name__, error, exc_info=error)
    message = _SAID_IN.get(owner) if owner is not None else None
    if message is None and pn.state.curdoc is not None:
        message = _SAID_IN.get(pn.state.curdoc)
    if message is not None:
        # Once the page is there: a change made while the page is first drawn does not reach it.
        line = visitor_line(error, ref, doing)
        pn.state.onload(lambda: message.say(line))
    return ref


def read_or_report(owner: object, doing: str, read: Callable[[], T], instead: Callable[[], T]) -> T:
    """``read()``; should it fail, the failure reported (see :func:`report`) and ``instead()`` in its place."""
    try:
        return read()
    except Exception as error:  # whatever a read met (a corrupt chunk, a store changed under it): the page goes on
        report(error, owner, doing)
        return instead()


def unreadable_view(time: tuple, freq: tuple, units: str, level: int) -> xr.DataArray:
    """What a view that could not be read shows: no level over its time and frequency range, marked unreadable."""
    return xr.DataArray(
        np.full((2, 2), np.nan, dtype=np.float32),
        coords={"freq": np.asarray(freq, dtype=np.float64), "time": np.asarray(time, dtype="datetime64[ns]")},
        dims=("freq", "time"),
        attrs={"units": units, "level": level, "unreadable": True},
    )


def report_session_failures() -> None:
    """Make this process report every failure in a session's callbacks (Panel's exception handler) as above."""
    pn.config.exception_handler = report


def failed_page(error: BaseException) -> Message:
    """A page that could not be built: one line saying so (the log holds the rest)."""
    message = Message("page-failure", kind="warning")
    message.say(visitor_line(error, report(error, doing="open this page"), "open this page"))
    return message
