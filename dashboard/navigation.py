"""Where the view is: typed start/end times and frequency limits, page and zoom buttons, keys."""

from __future__ import annotations

import math

import panel as pn
import param

from dashboard.keys import KeyboardShortcuts
from dashboard.messages import Message
from dashboard.session import follow, visible_after_image
from dashboard.state import ExplorerState, read_typed_time, typed_time
from data_access import AtlasError


def _hz(value: float) -> str:
    return f"{value:.6g}"


class Navigation(pn.viewable.Viewer):
    """Start and end to the millisecond, low and high frequency in Hz, buttons and keys.

    Typed values act on Enter only, never on a change of their text: in a notebook the
    browser sends back every text the kernel puts in them, a moment later, and a text
    taken as typed would move the view back to where it was then. A time without a
    date (``00:20:00``) is that time on the day the field shows. A time past the
    recording is clamped to it, the other end kept, and the message says so.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.start = pn.widgets.TextInput(label="start (UTC)", width=205, css_classes=["time-start"])
        self.end = pn.widgets.TextInput(label="end (UTC)", width=205, css_classes=["time-end"])
        self.fmin = pn.widgets.TextInput(label="low (Hz)", width=100, css_classes=["freq-low"])
        self.fmax = pn.widgets.TextInput(label="high (Hz)", width=100, css_classes=["freq-high"])
        self.message = Message("time-message", reserve=True)
        self._show_times()
        self._show_freqs()
        follow(self.state, self._show_times, "time_range", target=visible_after_image(self.state))
        follow(self.state, self._show_freqs, "freq_range")
        for field in (self.start, self.end):
            field.param.watch(self._go_time, "enter_pressed")
        for field in (self.fmin, self.fmax):
            field.param.watch(self._go_freq, "enter_pressed")

    def _show_times(self, *_) -> None:
        self.start.value, self.end.value = (typed_time(t) for t in self.state.time_range)

    def _show_freqs(self, *_) -> None:
        self.fmin.value, self.fmax.value = (_hz(f) for f in self.state.freq_range)

    def _go_time(self, *_) -> None:
        state = self.state
        try:
            t0 = read_typed_time(self.start.value, state.time_range[0])
            t1 = read_typed_time(self.end.value, state.time_range[1])
            clamped = state.set_time(t0, t1, keep="ends")
        except AtlasError as err:
            self.message.say(f"⚠ {err}")
            return
        first, last = state.atlas.time_range
        said = []
        if clamped and t0 < first:
            said.append(f"start {typed_time(t0)} is before the recording: showing from {typed_time(first)}")
        if clamped and t1 > last:
            said.append(f"end {typed_time(t1)} is past the recording: showing to {typed_time(last)}")
        self.message.say("⚠ " + "; ".join(said) if said else "")
        self._show_times()

    def _go_freq(self, *_) -> None:
        typed = {"low": self.fmin.value.strip(), "high": self.fmax.value.strip()}
        values = {}
        for which, text in typed.items():
            try:
                values[which] = float(text.replace(",", ""))
            except ValueError:
                values[which] = math.nan
            if not math.isfinite(values[which]):
                self.message.say(f"⚠ {which} {text!r} is not a frequency in Hz")
                return
        try:
            clipped = self.state.set_freq(values["low"], values["high"])
        except AtlasError as err:
            self.message.say(f"⚠ {err}")
            return
        nyquist = self.state.atlas.freq_range[1]
        self.message.say(f"⚠ high {typed['high']} Hz is above Nyquist: showing to {_hz(nyquist)} Hz" if clipped else "")
        self._show_freqs()

    def __panel__(self) -> pn.viewable.Viewable:
        state = self.state
        buttons = pn.Row(
            pn.widgets.Button(label="whole", on_click=lambda e: state.whole(), width=60),
            pn.widgets.Button(label="◀", on_click=lambda e: state.page(-1), width=40),
            pn.widgets.Button(label="▶", on_click=lambda e: state.page(1), width=40),
            pn.widgets.Button(label="zoom +", on_click=lambda e: state.zoom(0.5), width=70),
            pn.widgets.Button(label="zoom −", on_click=lambda e: state.zoom(2.0), width=70),
        )
        keys = KeyboardShortcuts(
            {
                "ArrowLeft": lambda: state.page(-1),
                "ArrowRight": lambda: state.page(1),
                "+": lambda: state.zoom(0.5),
                "=": lambda: state.zoom(0.5),
                "-": lambda: state.zoom(2.0),
                "Home": state.whole,
            }
        )
        return pn.Column(
            pn.Row(self.start, self.end),
            pn.Row(self.fmin, self.fmax),
            self.message,
            buttons,
            pn.pane.HTML("keys: ← → page · + − zoom · Home whole", styles={"font-size": "0.8em"}),
            keys,
            sizing_mode="stretch_width",
        )
