"""Keyboard shortcuts for the explorer: a tiny Panel JS component.

``←``/``→`` page back and forward, ``+``/``-`` zoom, ``Home`` shows the whole
recording. Keys typed into an input field are left alone (:data:`TYPING_JS`, which
the player's space bar uses too: see :mod:`dashboard.listen`).
"""

from __future__ import annotations

from collections.abc import Callable

import param
from panel.custom import JSComponent

#: A JavaScript function of a KeyboardEvent: whether it goes to a field being typed into (left alone by every key).
TYPING_JS = """(e) => {
    const target = e.composedPath()[0];
    return target && (["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) || target.isContentEditable);
  }"""

_ESM = f"""
const typing = {TYPING_JS};
export function render({{ model }}) {{
  const keys = new Set(model.keys);
  const onKey = (e) => {{
    if (keys.has(e.key) && !typing(e) && !e.ctrlKey && !e.metaKey && !e.altKey) {{
      e.preventDefault();
      model.send_msg(e.key);
    }}
  }};
  document.addEventListener("keydown", onKey);
  model.on("remove", () => document.removeEventListener("keydown", onKey));
  return document.createElement("span");
}}
"""


class KeyboardShortcuts(JSComponent):
    """Calls ``actions[key]()`` on the server when ``key`` is pressed anywhere on the page."""

    keys = param.List(default=[], doc="The keys listened for (KeyboardEvent.key names).")

    _esm = _ESM

    def __init__(self, actions: dict[str, Callable[[], None]], **params) -> None:
        super().__init__(keys=list(actions), width=0, height=0, margin=0, **params)
        self._actions = actions

    def _handle_msg(self, msg: str) -> None:
        action = self._actions.get(msg)
        if action is not None:
            action()
