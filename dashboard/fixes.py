"""Mends for faults in the libraries under the app, each applied where the app is served.

Each names the fault, how it showed here, and what it changes; each is idempotent.
"""

from __future__ import annotations

import panel.io.document as _panel_document


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
