"""How the spectrogram is drawn: colormap, channel, mean or max, frequency scale, and the dB range (with "auto")."""

from __future__ import annotations

import panel as pn
import param

from dashboard.messages import Message
from dashboard.scales import window
from dashboard.state import ExplorerState
from data_access import AtlasError


class DisplayControls(pn.viewable.Viewer):
    """Colormap, channel (a multichannel store), mean/max, frequency scale, dB range; "auto" fits it to the view."""

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.message = Message("display-message")

    def auto(self) -> None:
        """Fit the colour limits to the 2nd..99.5th percentiles of what is on screen, on its scale (or say why not)."""
        state = self.state
        rows = window(state.atlas, state.freq_scale, state.freq_range).options
        view = state.atlas.view(
            time=state.time_range, freq=state.freq_range, width=400, height=200, agg=state.agg, channel=state.channel,
            **rows,
        )  # fmt: skip
        try:
            state.auto_db_range(view.values)
        except AtlasError as err:
            self.message.say(f"⚠ auto: {err}")
            return
        self.message.clear()

    def __panel__(self) -> pn.viewable.Viewable:
        state = self.state
        lo, hi = state.db_range  # fitted to the recording: the slider reaches well beyond
        return pn.Column(
            pn.widgets.Select.from_param(state.param.cmap, label="colormap"),
            # A store of several channels (ingest --channel all) shows one at a time.
            pn.widgets.Select.from_param(state.param.channel, label="channel", visible=len(state.atlas.channels) > 1),
            pn.Row(
                pn.widgets.RadioButtonGroup.from_param(state.param.agg),
                # Rows uniform in Hz, log10 Hz or mel; the axis, hover, bands and selections read in Hz.
                pn.widgets.RadioButtonGroup.from_param(state.param.freq_scale, name="frequency scale"),
            ),
            pn.Row(
                pn.widgets.RangeSlider.from_param(
                    state.param.db_range, start=lo - 80, end=hi + 40, step=1, label=f"dB range ({state.atlas.units})"
                ),
                pn.widgets.Button(label="auto", on_click=lambda e: self.auto(), width=60, align="end"),
            ),
            self.message,
            sizing_mode="stretch_width",
        )
