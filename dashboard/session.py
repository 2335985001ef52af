"""What every panel of one explorer shares with the page it is on: the session, and when to follow.

- :func:`in_served_session`: whether this runs for a page a server serves.
- :func:`visible_after_image`: the visible time range, changed once the new image is on its way;
  :func:`report_image`: facts about that image, changed with it.
- :func:`follow`: watch the shared state for the life of the explorer's session; :func:`release`
  removes every such watcher when the session ends.
- :func:`state_stream`: a stream of some of the state's parameters for a plot, triggered together
  with the others, so one change of the state is one redraw of each plot.
"""

from __future__ import annotations

import weakref

import holoviews as hv
import panel as pn
from panel.io.state import set_curdoc

from dashboard.state import ExplorerState

_Visible = hv.streams.Stream.define("Visible", time_range=None)
_AFTER_IMAGE_MS = 150

_AFTER_IMAGE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_WATCHERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FACTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TOGETHER: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def in_served_session() -> bool:
    """Whether this runs for a page a server serves (not in a notebook, nor outside any page)."""
    doc = pn.state.curdoc
    return doc is not None and doc.session_context is not None


def follow(state: ExplorerState, callback, names: str | list[str], target=None) -> None:
    """``target.param.watch(callback, names)`` (``target`` defaults to ``state``), undone by :func:`release`.

    Every watcher a panel adds on its explorer's state (or on the state's streams)
    goes through here, so that none outlives the explorer's session.
    """
    target = state if target is None else target
    watcher = target.param.watch(callback, names)
    _WATCHERS.setdefault(state, []).append((target, watcher))


def state_stream(state: ExplorerState, names: list[str], **params) -> hv.streams.Params:
    """A stream of the state's parameters ``names`` (``hv.streams.Params``; ``params`` such as ``rename``).

    Unlike a Params stream watching on its own, it triggers together with every other
    stream made here for the same state: a change of several of the state's parameters
    at once (``n`` moves the view and the current selection in one update) triggers
    the streams it concerns in one ``Stream.trigger``, which calls each subscriber
    (each plot's refresh) once. So a plot whose image and overlays follow different
    parameters is drawn once per change, not once per stream (two whole redraws of
    the spectrogram and its eleven layers a key, before).
    """
    stream = hv.streams.Params(state, names, watch=False, **params)
    if state not in _TOGETHER:
        group = _TOGETHER[state] = []

        def changed(*events) -> None:
            names = {event.name for event in events}
            concerned = [s for s in group if names & {p.name for p in s.parameters}]
            if concerned:
                hv.streams.Stream.trigger(concerned)

        follow(state, changed, [name for name in state.param if name != "name"])
    _TOGETHER[state].append(stream)
    return stream


def release(state: ExplorerState) -> int:
    """Remove every watcher :func:`follow` added for ``state``; returns how many."""
    _AFTER_IMAGE.pop(state, None)
    _FACTS.pop(state, None)
    _TOGETHER.pop(state, None)
    watchers = _WATCHERS.pop(state, [])
    for target, watcher in watchers:
        target.param.unwatch(watcher)
    return len(watchers)


def visible_after_image(state: ExplorerState) -> hv.streams.Stream:
    """A stream of ``state.time_range`` that follows it once the new image is on its way.

    Everything around the spectrogram that follows the time shown (band curves,
    the overview's box, the info pane, the start/end inputs, the page's URL)
    listens to this instead of the state, so a pan or zoom sends the browser its
    new image first: Bokeh sends a message in several awaited writes, work queued
    on the server's loop in between delays it, and every other change the browser
    receives first costs it a layout. Moves within 150 ms become one update; the
    stream is shared by all of one state's followers. Outside a server (a
    notebook, tests) it follows at once.
    """
    if state not in _AFTER_IMAGE:
        _AFTER_IMAGE[state] = _Visible(time_range=state.time_range)
        follow(state, lambda event: _catch_up_later(state), "time_range")
    return _AFTER_IMAGE[state]


def report_image(state: ExplorerState, **facts) -> None:
    """Set facts about the image just drawn (``level``, ``read_ms``, ...) on ``state``, with its followers.

    They change in the same held batch as the followers of the time shown (one
    message and one layout of the page per gesture, not one for the facts and
    another for the span); outside a server, at once.
    """
    _FACTS.setdefault(state, {}).update(facts)
    _catch_up_later(state)


def _catch_up_later(state: ExplorerState) -> None:
    doc = pn.state.curdoc
    if in_served_session():

        def in_session() -> None:  # Bokeh's timeout callbacks do not say whose page they are for
            # Held: all the followers' changes go to the browser as one message (one
            # layout there); frozen: Bokeh walks the document's models once, not per change.
            with set_curdoc(doc), pn.io.hold(doc, freeze=True):
                _catch_up(state)

        doc.add_timeout_callback(in_session, _AFTER_IMAGE_MS)
    else:
        _catch_up(state)


def _catch_up(state: ExplorerState) -> None:
    facts = _FACTS.pop(state, None)
    if facts:
        state.param.update(facts)
    stream = _AFTER_IMAGE.get(state)
    if stream is not None and stream.time_range != state.time_range:
        stream.event(time_range=state.time_range)
