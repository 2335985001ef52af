"""The register of private reliances (data_access/compat.py) and the mends it gates (dashboard/fixes.py).

Each mend is shown failing without it; the canaries say when a patch can go.
"""

from __future__ import annotations

import ast
import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import panel.io.document as panel_document
import pytest
from bokeh.document import Document
from bokeh.document.events import ModelChangedEvent
from bokeh.models import Div
from bokeh.protocol import Protocol
from jupyter_client.manager import start_new_kernel

from dashboard.fixes import send_every_queued_message


class _Websocket:
    """A session's websocket, through Panel's hook for other kinds of socket: each write stays open until let go."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.open_writes: list[asyncio.Future] = []

    def write(self, conn, events=None, msg=None) -> list[asyncio.Future]:
        self.texts += [event["new"] for event in msg.content["events"]]
        self.open_writes.append(asyncio.get_running_loop().create_future())
        return self.open_writes[-1:]

    def finish_writes(self) -> None:
        for write in self.open_writes:
            if not write.done():
                write.set_result(None)


class _Connection:
    def __init__(self, socket: _Websocket) -> None:
        self._socket, self.protocol = socket, Protocol()


@pytest.fixture
def websocket():
    socket = _Websocket()
    panel_document.extra_socket_handlers[_Websocket] = socket.write
    yield socket
    del panel_document.extra_socket_handlers[_Websocket]


async def _queue_while_the_last_write_ends(socket: _Websocket) -> list[str]:
    doc, div = Document(), Div(text="")
    doc.add_root(div)
    conn = _Connection(socket)

    def queue(text: str) -> None:  # what Panel does with a change while the session's socket is busy
        panel_document.schedule_write_events(doc, [conn], [ModelChangedEvent(doc, div, "text", text)])

    queue("the image")
    await asyncio.sleep(0.01)  # its task writes it and waits for the write
    socket.finish_writes()  # the write ends: that task goes on at the loop's next turn...
    queue("the info pane")  # ...and a change is queued in the same moment
    for _ in range(20):
        await asyncio.sleep(0.01)
        socket.finish_writes()
    return socket.texts


def _written(socket: _Websocket) -> list[str]:
    # On an event loop of its own, in a thread of its own: the browser tests leave one running in this thread.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(lambda: asyncio.run(_queue_while_the_last_write_ends(socket))).result()


def test_a_message_queued_as_the_last_write_ends_is_sent(websocket):
    send_every_queued_message()
    assert _written(websocket) == ["the image", "the info pane"]


def test_without_the_mend_panel_leaves_it_queued(websocket, monkeypatch):
    # The fault the mend is for, still in the Panel installed: if this fails, Panel has mended it.
    panels_own = getattr(panel_document._dispatch_msgs, "__wrapped__", panel_document._dispatch_msgs)
    monkeypatch.setattr(panel_document, "_dispatch_msgs", panels_own)
    assert _written(websocket) == ["the image"]


# A kernel-side comm target that records what its comms receive, as Panel's client comm does.
_RECORDING_TARGET = """
received = []
def _opened(comm, msg):
    comm.on_msg(lambda m: received.append(m["content"]["data"]))
get_ipython().kernel.comm_manager.register_target("early-test", _opened)
"""


@pytest.fixture
def kernel():
    """A real IPython kernel, and a client talking to it as JupyterLab does."""
    manager, client = start_new_kernel(kernel_name="python3")
    client.execute_interactive(_RECORDING_TARGET, timeout=60)
    yield client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def _received_when_the_message_comes_first(client) -> list:
    """Send a comm's first message, then open the comm (as pyviz_comms can in JupyterLab)."""
    comm_id = uuid.uuid4().hex
    for kind, content in [
        ("comm_msg", {"comm_id": comm_id, "data": {"patch": 1}}),
        ("comm_open", {"comm_id": comm_id, "target_name": "early-test", "data": {}}),
        ("comm_msg", {"comm_id": comm_id, "data": {"patch": 2}}),
    ]:
        client.shell_channel.send(client.session.msg(kind, content))
    shown: list[str] = []
    client.execute_interactive(
        "print(received)", timeout=60, output_hook=lambda m: shown.append(m["content"].get("text", ""))
    )
    return ast.literal_eval("".join(shown))


def test_a_kernel_keeps_a_message_that_comes_before_its_comm_opens(kernel):
    kernel.execute_interactive(
        "from dashboard.fixes import keep_early_comm_messages; keep_early_comm_messages()", timeout=60
    )
    assert _received_when_the_message_comes_first(kernel) == [{"patch": 1}, {"patch": 2}]


def test_without_the_mend_the_kernel_drops_it(kernel):
    # The fault the mend is for, in the ipykernel and comm installed: if this fails, they keep such messages now.
    assert _received_when_the_message_comes_first(kernel) == [{"patch": 2}]


# ------------------------------------------------------------------ the registry of patches


def test_every_patch_fits_the_installed_libraries():
    """A canary for upgrades: a library outside a patch's versions, or without what it relies on, fails here."""
    from data_access.compat import PATCHES

    assert {name: patch.usable() for name, patch in PATCHES.items()} == dict.fromkeys(PATCHES, True)


@pytest.mark.parametrize(
    ("versions", "exists", "said"),
    [
        ("<0.1", lambda: True, "panel {v} is not one of the versions it was made for (<0.1)"),
        (">=1", lambda: False, "panel {v} has no a private thing any more"),
        (">=1", lambda: {}["gone"], "panel {v} has no a private thing any more"),  # a check that fails outright
    ],
)
def test_a_patch_that_does_not_fit_is_skipped_and_logged_once(caplog, versions, exists, said):
    import importlib.metadata

    from data_access.compat import Patch

    patch = Patch(f"test-{uuid.uuid4().hex}", "panel", versions, "a private thing", exists, "org/lib#1", "a canary")
    with caplog.at_level("WARNING", "spectral_atlas"):
        assert patch.usable() is False and patch.usable() is False
    said = said.format(v=importlib.metadata.version("panel"))
    assert [r.getMessage() for r in caplog.records] == [
        f"compat: not applying {patch.name}: {said}; see org/lib#1 and a canary"
    ]


def test_without_its_patch_a_basic_login_server_does_not_start(monkeypatch):
    from dashboard.login import LoginProvider
    from data_access import ParameterError, compat

    monkeypatch.setitem(compat._USABLE, compat.BASIC_LOGIN.name, False)  # as if Panel no longer called _validate
    with pytest.raises(ParameterError, match=r"^--basic-auth needs panel.auth.BasicLoginHandler._validate"):
        LoginProvider(password="pw")


def test_a_stream_callback_is_not_registered_where_holoviews_has_no_place_for_it(monkeypatch):
    import holoviews as hv

    from dashboard.fixes import register_stream_callback
    from data_access import compat

    class Stream(hv.streams.RangeXY):
        pass

    monkeypatch.setitem(compat._USABLE, compat.GESTURE_STREAM.name, False)
    assert register_stream_callback(Stream, object) is False
    assert Stream not in hv.streams.Stream._callbacks["bokeh"]


def test_holoviews_still_waits_after_a_gesture():
    """When HoloViews answers a range without waiting, GestureRangeXY (compat.GESTURE_STREAM) can go."""
    from holoviews.plotting.bokeh.callbacks import RangeXYCallback

    assert RangeXYCallback.debounce, "HoloViews no longer debounces RangeXY: drop GestureRangeXY"
