"""The view in the page's address: the URL always equals the view, and a link opens it.

Reading a link is :mod:`dashboard.links`' job (no Panel there). Here, the page's
address follows the view by replacing its history entry (never adding one: the
Back button then leaves the page instead of changing the address without the
view), from the first paint on; "copy link" copies it and says so.
"""

from __future__ import annotations

import urllib.parse

import panel as pn
import param
from panel.custom import JSComponent

from dashboard.links import KEYS, apply_query, view_query
from dashboard.messages import Message
from dashboard.session import follow, visible_after_image
from dashboard.state import ExplorerState

_ESM = """
export function render({ model }) {
  const write = () => {
    if (!model.query) return;
    const url = window.location.pathname + "?" + model.query + window.location.hash;
    if (url !== window.location.pathname + window.location.search + window.location.hash) {
      window.history.replaceState(window.history.state, "", url);
    }
  };
  model.on("query", write);
  write();
  return document.createElement("span");
}
"""


class AddressBar(JSComponent):
    """Keeps the page's address at ``?query`` by replacing its history entry (no new entries)."""

    query = param.String(default="", doc="The query the address shows, without '?'.")

    _esm = _ESM


def request_query() -> dict[str, str]:
    """The served page's query arguments, as the request gave them (URL-decoded); empty outside a server."""
    return {key: values[0].decode(errors="replace") for key, values in (pn.state.session_args or {}).items() if values}


class LinkedView(pn.viewable.Viewer):
    """On a served page: follow the link the page was opened with, then keep the address equal to the view.

    Parameters
    ----------
    state : ExplorerState
    store_name : str, optional
        The store's name in the link (``?store=``), as the server's catalog lists it.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")
    store_name = param.String(default=None, allow_None=True, doc="The link's ?store= (the catalog's name).")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.message = Message("link-message", kind="warning")
        self.bar = AddressBar(width=0, height=0, margin=0, visible=False)
        query = request_query()
        problems = apply_query(self.state, {k: v for k, v in query.items() if k in KEYS})
        if problems:
            self.message.say("This link could not be followed in full: " + "; ".join(problems) + ".")
        self._write()
        follow(self.state, self._write, ["freq_range", "db_range", "cmap", "agg", "freq_scale", "bands", "channel"])
        follow(self.state, self._write, "time_range", target=visible_after_image(self.state))
        self.param.watch(self._write, "store_name")

    def _write(self, *_) -> None:
        store = {} if self.store_name is None else {"store": self.store_name}
        self.bar.query = urllib.parse.urlencode({**store, **view_query(self.state)})

    def copy_button(self) -> pn.widgets.Button:
        """A button that copies the page's address (the view) and says that it did."""
        button = pn.widgets.Button(label="copy link", width=90, css_classes=["copy-link"])
        # The clipboard API needs a secure origin (https or 127.0.0.1); elsewhere the link is offered to copy by hand.
        button.js_on_click(
            args={"button": button},
            code="""
            const url = window.location.href;
            const said = () => {
              button.label = "link copied ✓";
              setTimeout(() => { button.label = "copy link"; }, 2000);
            };
            if (navigator.clipboard && window.isSecureContext) {
              navigator.clipboard.writeText(url).then(() => { window.atlasCopiedLink = url; said(); });
            } else {
              window.prompt("Copy this link", url);
            }
            """,
        )
        return button

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.bar, self.message, sizing_mode="stretch_width", margin=0)
