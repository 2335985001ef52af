"""Mends for faults in the libraries under the app, each applied where the app is served.

Each names the fault, how it showed here, and what it changes; each is idempotent.
"""

from __future__ import annotations

import panel as pn
import panel.io.document as _panel_document
from bokeh.models import CustomJS

from dashboard.views import in_served_session

# See drags_always_pan: no drag is ever taken for a long press.
_NO_LONG_PRESS = "Bokeh.require('core/ui_gestures').UIGestures.press_threshold = 1e9;"


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
    if in_served_session():
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
