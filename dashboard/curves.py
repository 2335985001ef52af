"""Band curves: the power of each named band against time, for the span the spectrogram shows."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param
import xarray as xr

from dashboard.failures import read_or_report
from dashboard.session import visible_after_image
from dashboard.spectrogram import CANVAS, TIME_TICKS
from dashboard.state import ExplorerState
from data_access.query import MAX_POINTS


class BandCurves(pn.viewable.Viewer):
    """Band power against time for the visible range, at the plot's pixel resolution.

    The time axis is the state's ``time_range``, always: the plot has no pan or zoom of
    its own (pan and zoom the spectrogram, or type the times), so it can never show a
    third range. The curves follow the image's ``agg``: with "max", each point is the
    loudest column's band power (peak-hold; see :meth:`data_access.Atlas.band_energy`).
    Each band keeps its colour (``state.band_colors``); the legend sits
    outside the data, beside the plot, in the order of the bands list.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")
    points = param.Integer(default=800, bounds=(2, None), doc="Points per curve: the plot's width in pixels.")

    def curves(self, points: int | None = None) -> xr.Dataset:
        """The visible band curves as an ``xr.Dataset`` (one variable per band, dB); ``points`` default: as shown."""
        state = self.state
        return state.atlas.band_energy(
            state.bands, time=state.time_range, points=points or self.points, channel=state.channel, agg=state.agg
        )

    def _plot(self, time_range, bands, band_colors, width, height, scale=1.0, channel=None, agg="mean") -> hv.Overlay:
        t0, t1 = time_range
        if width:  # the plot's width on the page (a page states its own: at most MAX_POINTS)
            self.points = min(max(int(width), 2), MAX_POINTS)
        if not bands:
            empty = hv.Curve([], "time", "dB").opts(backend="bokeh", xlim=(t0, t1))
            return hv.Overlay([empty.opts(backend="bokeh", show_legend=False)])
        atlas = self.state.atlas
        data = read_or_report(
            self.state,
            "compute the band curves",
            lambda: atlas.band_energy(bands, time=time_range, points=self.points, channel=channel, agg=agg),
            lambda: xr.Dataset(
                {name: ("time", [np.nan, np.nan]) for name in bands},
                coords={"time": np.asarray(time_range, dtype="datetime64[ns]")},
                attrs={"units": atlas.band_units},
            ),
        )
        units = hv.Dimension("dB", label=data.attrs["units"])
        return hv.Overlay(
            [
                hv.Curve((data.time.values, data[name].values), "time", units, label=name).opts(
                    backend="bokeh", color=band_colors.get(name, "#888888"), xlim=(t0, t1)
                )
                for name in bands
            ]
        )

    def __panel__(self) -> pn.viewable.Viewable:
        streams = [
            visible_after_image(self.state),
            hv.streams.Params(self.state, ["bands", "band_colors", "channel", "agg"]),
            hv.streams.PlotSize(),
        ]
        dmap = hv.DynamicMap(self._plot, streams=streams).opts(
            {
                "Curve": dict(
                    framewise=True,
                    default_tools=["save", "reset"],
                    tools=["hover"],
                    hover_tooltips=[("band", "$name"), ("time", "$x{%F %T.%3N}"), ("level", "$y{0.0} dB")],
                    hover_formatters={"$x": "datetime"},
                    hover_mode="vline",
                    xformatter=TIME_TICKS,
                ),
                "Overlay": dict(
                    framewise=True,
                    responsive=True,
                    min_height=190,
                    title="",
                    xlabel="time (UTC)",
                    show_legend=True,
                    legend_position="right",
                    legend_opts={"label_text_font_size": "8pt", "spacing": 0, "padding": 4, "glyph_height": 12},
                    default_tools=["save", "reset"],
                    toolbar="right",
                    backend_opts={**CANVAS, "plot.min_border_left": 75},
                ),
            },
            backend="bokeh",
        )
        return pn.pane.HoloViews(
            backend="bokeh", object=dmap, linked_axes=False, sizing_mode="stretch_both", min_height=190
        )
