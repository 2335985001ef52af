"""The overview strip: the whole recording, with the span shown boxed; drag or click on it to go there.

Other panels mark things on it (the selections' ticks, the player's playhead) through :meth:`Overview.overlay`.
"""

from __future__ import annotations

import functools

import colorcet as cc
import holoviews as hv
import numpy as np
import panel as pn
import param

from dashboard.failures import read_or_report, unreadable_view
from dashboard.session import state_stream, visible_after_image
from dashboard.spectrogram import CANVAS, TIME_TICKS, Overlaid
from dashboard.state import ExplorerState

#: The box is drawn at least this share of the strip wide, so a span of milliseconds still shows.
_MIN_BOX = 0.004


class Overview(Overlaid, pn.viewable.Viewer):
    """The whole recording from the coarsest level, with the visible range boxed.

    Drag across the strip to show that stretch; click on it to centre the span shown there.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._overlays: list[hv.DynamicMap] = []

    def _box(self, time_range) -> hv.VSpan:
        # An outline (no fill: the strip keeps its colours, also at "whole"), never narrower than a few pixels.
        t0, t1 = time_range
        first, last = self.state.atlas.time_range
        least = (last - first) * _MIN_BOX
        if t1 - t0 < least:
            centre = t0 + (t1 - t0) / 2
            t0, t1 = centre - least / 2, centre + least / 2
        return hv.VSpan(t0, t1).opts(
            backend="bokeh", fill_alpha=0, line_color="white", line_width=2, apply_ranges=False
        )

    def __panel__(self) -> pn.viewable.Viewable:
        # Read once per channel; only its colours follow the state.
        @functools.cache
        def base(channel) -> hv.Image:
            atlas = self.state.atlas
            view = read_or_report(
                self.state,
                "read the overview",
                lambda: atlas.view(width=1200, height=60, channel=channel),
                lambda: unreadable_view(atlas.time_range, atlas.freq_range, atlas.units, len(atlas.levels) - 1),
            )
            return hv.Image((view.time.values, view.freq.values, view.values), kdims=["time", "freq"], vdims=["dB"])

        def coloured(cmap, db_range, channel):
            return base(channel).opts(backend="bokeh", cmap=cc.palette[cmap], clim=tuple(db_range), clone=True)

        streams = [state_stream(self.state, ["cmap", "db_range", "channel"])]
        image = hv.DynamicMap(coloured, streams=streams).opts(
            backend="bokeh",
            responsive=True,
            height=90,
            xaxis="bottom",
            yaxis=None,
            toolbar=None,
            tools=["xbox_select", "tap"],
            active_tools=["xbox_select"],
            xlabel="",
            xformatter=TIME_TICKS,
            default_tools=[],
            backend_opts=CANVAS,
        )
        box = hv.DynamicMap(self._box, streams=[visible_after_image(self.state)])
        marks = self.overlaid(image)
        selection = hv.streams.BoundsX(source=image)
        selection.add_subscriber(self._select)
        tap = hv.streams.Tap(source=image)
        tap.add_subscriber(self._centre)
        return pn.pane.HoloViews(
            backend="bokeh", object=marks * box, linked_axes=False, sizing_mode="stretch_width", height=100
        )

    def _select(self, boundsx) -> None:
        if boundsx is not None and boundsx[0] != boundsx[1]:
            start, end = sorted(np.datetime64(t, "ns") for t in boundsx)
            self.state.set_time(start, end)

    def _centre(self, x, y) -> None:
        if x is None:
            return
        t0, t1 = self.state.time_range
        centre = np.datetime64(x, "ns")
        self.state.set_time(centre - (t1 - t0) / 2, centre + (t1 - t0) / 2)
