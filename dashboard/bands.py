"""The band editor: name a band by its limits in Hz, or pick a preset; the list of bands shown."""

from __future__ import annotations

import html
import math
import time

import panel as pn
import param

from dashboard.messages import Message
from dashboard.session import follow, in_served_session
from dashboard.state import PRESET_BANDS, ExplorerState
from data_access import AtlasError

#: Seconds within which a listing a notebook's browser sends back may be its answer to one sent to it.
_ECHO_S = 2.0


def _typed_hz(which: str, text: str) -> float:
    """A frequency typed in Hz (``12500``, ``12,500``, ``1.25e4``), or an error that quotes the text as typed."""
    try:
        value = float(text.strip().replace(",", ""))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{which} {text.strip()!r} is not a frequency in Hz")
    return value


def _as_text(names) -> dict[str, str]:
    """The listing's options: each band's name labelled as text.

    Bokeh's MultiChoice (choices.js with ``allowHTML``) renders a label as HTML: a band
    named ``<img src=x onerror=...>`` in a link ran script in the page. Escaped, the
    label shows the name as it is.
    """
    return {html.escape(name): name for name in names}


class BandEditor(pn.viewable.Viewer):
    """Add a band (name, low, high, or a preset) and remove bands from the list shown.

    A name already shown is refused with a message (a band is never replaced
    silently); a limit that is not a number is quoted as it was typed.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        state = self.state
        self.band_name = pn.widgets.TextInput(label="band", placeholder="name", width=110)
        self.low = pn.widgets.TextInput(label="low (Hz)", value="1000", width=95)
        self.high = pn.widgets.TextInput(label="high (Hz)", value="2000", width=95)
        self.message = Message("band-message")
        self.listing = pn.widgets.MultiChoice(
            label="bands shown", options=_as_text(state.bands), value=list(state.bands), css_classes=["band-listing"]
        )
        self.presets = pn.widgets.Select(label="preset", options=["", *PRESET_BANDS], width=170)
        # In a notebook the browser answers each listing it is sent with that listing, a
        # moment later: after two quick edits from code, the answer to the first would
        # look like a person removing the second band. There, a listing the browser sends
        # back that this side sent within the last 2 s is such an answer, not an edit.
        # (A served page does not answer: there every change is a person's.)
        self._sent: list[tuple[float, tuple[str, ...]]] = []
        follow(state, self._sync_listing, "bands")
        self.listing.param.watch(self._drop, "value")
        self.presets.param.watch(self._add_preset, "value")

    def _add(self, _=None) -> None:
        try:
            low, high = _typed_hz("low", self.low.value), _typed_hz("high", self.high.value)
            self.state.add_band(self.band_name.value, low, high)
        except (AtlasError, ValueError) as err:
            self.message.say(f"⚠ {err}")
            return
        self.message.clear()

    def _add_preset(self, event) -> None:
        if not event.new:
            return
        lo, hi = PRESET_BANDS[event.new]
        hi = min(hi, self.state.atlas.freq_range[1])
        try:
            if not lo < hi:
                raise ValueError(f"preset {event.new!r} lies above Nyquist ({hi:g} Hz) in this store")
            self.state.add_band(event.new, lo, hi)
            self.message.clear()
        except (AtlasError, ValueError) as err:
            self.message.say(f"⚠ {err}")
        self.presets.value = ""

    def _sync_listing(self, *_) -> None:
        now, bands = time.monotonic(), tuple(self.state.bands)
        self._sent[:] = [(t, v) for t, v in self._sent if now - t < _ECHO_S] + [(now, bands)]
        self.listing.param.update(options=_as_text(bands), value=list(bands))

    def _drop(self, event) -> None:
        now, shown = time.monotonic(), tuple(event.new)
        answer = any(v == shown and now - t < _ECHO_S for t, v in self._sent)
        if not in_served_session() and shown != tuple(self.state.bands) and answer:
            self._sync_listing()  # an answer to an earlier listing: show the bands as they are
            return
        for gone in set(event.old) - set(event.new):
            self.state.remove_band(gone)

    def __panel__(self) -> pn.viewable.Viewable:
        add = pn.widgets.Button(label="add band", color="primary", width=90)
        add.on_click(self._add)
        return pn.Column(
            pn.Row(self.band_name, self.low, self.high),
            pn.Row(add, self.presets),
            self.message,
            self.listing,
            sizing_mode="stretch_width",
        )
