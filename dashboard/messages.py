"""Messages to the person at the page: always text, never markup.

Every message may quote a value from a request, a file name or a store's
attributes, so its text is escaped and shown as it is: nothing in it is ever
read as HTML or Markdown.
"""

from __future__ import annotations

import html

import panel as pn
import param


class Message(pn.viewable.Viewer):
    """One line (or a few) of text, with a × to dismiss it.

    Parameters
    ----------
    css_class : str
        Class on the message's element (tests and styles find it by this).
    kind : {"note", "warning"}, default: "note"
        A note is quiet text; a warning is on a tinted background.
    reserve : bool, default: False
        Keep the message's room when it is empty, so that saying or clearing it
        never moves what is below.
    """

    text = param.String(default="", doc="What is said (plain text); empty: nothing is shown.")

    _STYLES = {
        "note": {"color": "#7a3e00", "font-size": "0.9em"},
        "warning": {
            "background": "#fff3cd",
            "border": "1px solid #ffe08a",
            "border-radius": "4px",
            "padding": "4px 6px",
        },
    }

    def __init__(self, css_class: str, *, kind: str = "note", reserve: bool = False, **params) -> None:
        super().__init__(**params)
        self._css_class, self._kind, self._reserve = css_class, kind, reserve

    def say(self, text: str) -> None:
        """Show ``text`` (plain text; shown as it is)."""
        self.text = text

    def clear(self) -> None:
        """Say nothing (the message's room stays if it was reserved)."""
        self.text = ""

    def __panel__(self) -> pn.viewable.Viewable:
        body = pn.pane.HTML(
            pn.bind(lambda text: html.escape(text, quote=False), self.param.text),
            css_classes=[self._css_class],
            styles=self._STYLES[self._kind],
            sizing_mode="stretch_width",
            margin=(0, 5),
        )
        close = pn.widgets.Button(
            label="×",
            width=28,
            height=28,
            margin=(0, 2),
            color="light",
            description="dismiss",
            css_classes=[f"{self._css_class}-close"],
        )
        close.on_click(lambda event: self.clear())
        row = pn.Row(body, close, sizing_mode="stretch_width", visible=self.param.text.rx.bool())
        if self._reserve:
            return pn.Column(row, min_height=44, sizing_mode="stretch_width", margin=0)
        return row
