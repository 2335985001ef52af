"""Mends for faults in the libraries under the app, each applied where it runs (served page or notebook kernel).

Each names the fault, how it showed here, and what it changes; each is idempotent,
and touches nothing unless its entry in :mod:`data_access.compat` (versions,
upstream issue, canary test) says it fits the installed library.
:func:`apply_patches` applies the process-wide ones once at start-up.
"""

from __future__ import annotations

import collections

import holoviews as hv
import panel as pn
import panel.io.document as _panel_document
from bokeh.models import CustomJS

from dashboard.session import in_served_session
from data_access.compat import (
    EARLY_COMM_MESSAGES,
    GESTURE_STREAM,
    LOCAL_STYLESHEETS,
    LONG_PRESS,
    PATCHES,
    QUEUED_MESSAGES,
)


def apply_patches() -> None:
    """Apply the process-wide patches (idempotent), and say in the log which cannot be."""
    send_every_queued_message()
    for patch in PATCHES.values():
        patch.usable()


def register_stream_callback(stream: type, callback: type) -> bool:
    """Give a HoloViews stream class its Bokeh callback; False (nothing done) if HoloViews has no place for it."""
    if not GESTURE_STREAM.usable():
        return False
    hv.streams.Stream._callbacks["bokeh"][stream] = callback
    return True


def use_local_stylesheets(dist_url: str) -> None:
    """Make this served page's Panel stylesheets come from ``dist_url`` on this server, however the session began.

    Panel points its components' stylesheets at this server when it renders the
    page for a session; until then (and for good, if the page's session was
    discarded before its websocket connected and Bokeh made a new one for that
    websocket, as happens under load) it points them at cdn.holoviz.org, which a
    closed network cannot reach and no one asked for. Set the page's value
    (Panel's own) before anything is built.
    """
    if in_served_session() and LOCAL_STYLESHEETS.usable():
        pn.state.curdoc._template_variables.setdefault("dist_url", dist_url)


# See drags_always_pan: no drag is ever taken for a long press.
_NO_LONG_PRESS = """
const gestures = Bokeh.require('core/ui_gestures');
if (gestures && gestures.UIGestures && 'press_threshold' in gestures.UIGestures) {
    gestures.UIGestures.press_threshold = 1e9;
} else {
    console.warn('spectral-atlas compat: BokehJS has no UIGestures.press_threshold; drags-always-pan not applied');
}
"""


def drags_always_pan() -> None:
    """Make a drag on this served page pan however long the pointer rested before it.

    Bokeh (3.9) takes a pointer held still for 300 ms after the press as a long press,
    and then ignores the drag that follows: a person who presses on the spectrogram,
    looks, then drags saw nothing move, and so did a busy page whose pointer moves
    reached it 300 ms after the press (unanswered pans in ``benchmarks/load.py``).
    Nothing on this page uses a long press (on a touch device, a long press on a
    toolbar button opens its tool menu; this toolbar has none). Not in a notebook,
    whose page other people's plots share.
    """
    if in_served_session() and LONG_PRESS.usable():
        pn.state.curdoc.js_on_event("document_ready", CustomJS(code=_NO_LONG_PRESS))


def send_every_queued_message() -> None:
    """Make Panel send a session's queued messages at once, not at the session's next change.

    Panel (1.9) queues a session's messages while its websocket is busy writing and
    hands them to a task that writes them once the socket is free. That task gives
    up at once if the queue's "busy" mark is gone. The mark is taken away by the
    previous task when it has written its own messages, even if more were queued
    while it waited for its writes. Queued in that moment, a message waited for
    the session's next change. Here: a pressed button's image reached the page
    but the info pane, the band curves and the URL that follow it did not, until
    the person's next gesture (one to four of ~600 gestures in a run of
    ``benchmarks/load.py``, 20 sessions, each an unanswered gesture there).

    The mend: a task that finds messages queued and no mark puts the mark back
    and writes them.
    """
    if not QUEUED_MESSAGES.usable():
        return
    write = _panel_document._dispatch_msgs  # (looked up by name on every call, so replaced here for all)
    if getattr(write, "sends_every_queued_message", False):
        return

    async def write_queued(doc) -> None:
        if doc not in _panel_document._WRITE_BLOCK and _panel_document._WRITE_MSGS.get(doc):
            _panel_document._WRITE_BLOCK[doc] = True
        await write(doc)

    write_queued.sends_every_queued_message = True
    write_queued.__wrapped__ = write  # (Panel's own, for the test that shows the fault)
    _panel_document._dispatch_msgs = write_queued


# See keep_early_comm_messages: how many early messages are kept, for how many comms.
_EARLY_MESSAGES, _EARLY_COMMS = 64, 16


def keep_early_comm_messages() -> None:
    """Make this notebook kernel keep a comm's messages that arrive before the comm is opened.

    In JupyterLab, pyviz_comms (3.0.6) can send the first message of a cell's output
    from the browser before it opens the comm for it: when the output renders before
    its kernel is known, its comm becomes able to send on one half-second retry
    timer and is opened on another, later one. The kernel drops a message for a
    comm it does not know, silently (seen here: a ``comm_msg`` 470 ms before its
    ``comm_open``). Panel's page then never got its acknowledgement: it holds back
    the page's changes for 5 s, and after that sends them only with the next
    change. A zoom in those seconds never reached the kernel: the plot moved, but
    the kernel's ``time_range``, the info pane, the overview box and the band
    curves did not (the JupyterLab test failed so in about half the full test runs).
    The message lost also carried the plot's size.

    The mend: a message for a comm not (yet) open is kept, and handed to the comm
    when it opens; at most 64 messages for each of the 16 latest such comms.
    Nothing else changes. Only inside an IPython kernel (a notebook).
    """
    kernel = _ipython_kernel()
    if kernel is None or not EARLY_COMM_MESSAGES.usable():
        return
    handlers = getattr(kernel, "shell_handlers", {})  # (ipykernel's; another kind of kernel is left as it is)
    comms = getattr(getattr(kernel, "comm_manager", None), "comms", None)
    if comms is None or not {"comm_msg", "comm_open"} <= handlers.keys():
        return
    if getattr(handlers["comm_msg"], "keeps_early_messages", False):
        return
    deliver, open_comm = handlers["comm_msg"], handlers["comm_open"]
    early: collections.OrderedDict[str, list] = collections.OrderedDict()

    def comm_msg(stream, ident, msg):
        comm_id = msg["content"].get("comm_id")
        if comm_id in comms:
            return deliver(stream, ident, msg)
        kept = early.setdefault(comm_id, [])
        if len(kept) < _EARLY_MESSAGES:
            kept.append((stream, ident, msg))
        while len(early) > _EARLY_COMMS:
            early.popitem(last=False)

    def comm_open(stream, ident, msg):
        opened = open_comm(stream, ident, msg)
        for message in early.pop(msg["content"].get("comm_id"), []):
            deliver(*message)
        return opened

    comm_msg.keeps_early_messages = True
    handlers.update(comm_msg=comm_msg, comm_open=comm_open)


def _ipython_kernel():
    """The IPython kernel this runs in, if any."""
    try:
        from IPython import get_ipython
    except ImportError:  # (IPython comes with Panel's notebook support, not with the app)
        return None
    return getattr(get_ipython(), "kernel", None)
