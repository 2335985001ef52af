"""Thin Panel views over :class:`~dashboard.state.ExplorerState`.

Each view reads the shared state and writes to it; none holds data of its own.
Pixels always come from :meth:`data_access.Atlas.view` and curves from
:meth:`data_access.Atlas.band_energy`, for exactly what is on screen.
"""

from __future__ import annotations

import functools
import time
import weakref

import colorcet as cc
import holoviews as hv
import numpy as np
import panel as pn
import param
from holoviews.plotting.bokeh.callbacks import RangeXYCallback
from panel.io.state import set_curdoc

from dashboard.state import ExplorerState

_DEFAULT_SIZE = (1000, 450)

# Every plot draws on a plain canvas, not WebGL (HoloViews' default where the browser has it).
# An image and a few curves gain nothing from WebGL, and without a GPU (virtual machines,
# remote desktops, hosted browsers) Bokeh's copy of the software-rendered WebGL canvas onto
# the page cost ~115 ms of every zoom (measured in headless Chromium: 0.28 -> 0.18 s of the
# page's main thread per zoom, 4.4 -> 2.8 CPU s per page load).
_CANVAS = {"plot.output_backend": "canvas"}


def _band_colors(n: int) -> list[str]:
    return [cc.glasbey_light[i % len(cc.glasbey_light)] for i in range(n)]


def _quick_range_updates(plot, element) -> None:
    # Bokeh reports a wheel zoom's new range only when its low-detail mode ends
    # (lod_timeout, 500 ms by default): ask for the new image after 50 ms instead.
    plot.state.lod_timeout = 50


class GestureRangeXY(hv.streams.RangeXY):
    """RangeXY reported as soon as a gesture ends.

    HoloViews waits for 100 ms of quiet after each of Bokeh's ``rangesupdate``
    events, in case more follow. Bokeh sends that event once per gesture (at the
    end of a pan, or when a wheel zoom's low-detail mode ends), so the wait only
    delays every new image.
    """


class _GestureRangeXYCallback(RangeXYCallback):
    debounce = None


hv.streams.Stream._callbacks["bokeh"][GestureRangeXY] = _GestureRangeXYCallback


@functools.lru_cache(maxsize=64)
def _band_spans(bands: tuple[tuple[str, tuple[float, float]], ...]) -> hv.HSpans:
    # One glyph for all bands (a renderer per band costs every redraw a few ms), built once per set of bands.
    rows = [(lo, hi, name, color) for (name, (lo, hi)), color in zip(bands, _band_colors(len(bands)), strict=True)]
    return hv.HSpans(rows, kdims=["y0", "y1"], vdims=["band", "color"]).opts(color="color", alpha=0.08)


_Visible = hv.streams.Stream.define("Visible", time_range=None)
_AFTER_IMAGE_MS = 150


_AFTER_IMAGE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def in_served_session() -> bool:
    """Whether this runs for a page a server serves (not in a notebook, nor outside any page)."""
    doc = pn.state.curdoc
    return doc is not None and doc.session_context is not None


def visible_after_image(state: ExplorerState) -> hv.streams.Stream:
    """A stream of ``state.time_range`` that follows it once the new image is on its way.

    Everything around the spectrogram that follows the time shown (band curves,
    the overview's box, the info pane, the start/end inputs, the page's URL)
    listens to this instead of the state, so a pan or zoom sends the browser its
    new image first: Bokeh sends a message in several awaited writes, work queued
    on the server's loop in between delays it, and every other change the browser
    receives first costs it a layout. Moves within 150 ms become one update; the
    stream is shared by all of one state's followers. Outside a server (a
    notebook, tests) it follows at once.
    """
    if state in _AFTER_IMAGE:
        return _AFTER_IMAGE[state]
    stream = _AFTER_IMAGE[state] = _Visible(time_range=state.time_range)

    def catch_up() -> None:
        if stream.time_range != state.time_range:
            stream.event(time_range=state.time_range)

    def later(event) -> None:
        doc = pn.state.curdoc
        if in_served_session():

            def in_session() -> None:  # Bokeh's timeout callbacks do not say whose page they are for
                # Held: all the followers' changes go to the browser as one message (one
                # layout there); frozen: Bokeh walks the document's models once, not per change.
                with set_curdoc(doc), pn.io.hold(doc, freeze=True):
                    catch_up()

            doc.add_timeout_callback(in_session, _AFTER_IMAGE_MS)
        else:
            catch_up()

    state.param.watch(later, "time_range")
    return stream


class SpectrogramView(pn.viewable.Viewer):
    """The main image: re-read at every pan and zoom, at the plot's own pixel size."""

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")
    _wanted = None  # the latest gesture's (x_range, y_range) not yet answered

    def _image(self, time_range, freq_range, cmap, db_range, agg, width, height, scale=1.0, channel=None) -> hv.Image:
        width, height = width or _DEFAULT_SIZE[0], height or _DEFAULT_SIZE[1]
        started = time.perf_counter()
        view = self.state.atlas.view(
            time=time_range, freq=freq_range, width=width, height=height, agg=agg, channel=channel
        )
        facts = {"level": view.attrs["level"], "read_ms": (time.perf_counter() - started) * 1e3}
        pn.state.execute(lambda: self.state.param.update(facts), schedule=True)  # the info pane: after the image
        image = hv.Image(
            (view.time.values, view.freq.values, view.values),
            kdims=["time", "freq"],
            vdims=[hv.Dimension("dB", label=view.attrs["units"])],
        )
        return image.opts(cmap=cc.palette[cmap], clim=tuple(db_range))

    def _spans(self, bands) -> hv.HSpans:
        return _band_spans(tuple((name, tuple(band)) for name, band in bands.items()))

    def __panel__(self) -> pn.viewable.Viewable:
        inputs = hv.streams.Params(self.state, ["time_range", "freq_range", "cmap", "db_range", "agg", "channel"])
        size = hv.streams.PlotSize()
        dmap = hv.DynamicMap(self._image, streams=[inputs, size]).opts(
            framewise=True,
            colorbar=True,
            tools=["hover", "box_select"],
            active_tools=["wheel_zoom", "pan"],
            responsive=True,
            min_height=350,
            xlabel="time (UTC)",
            ylabel="frequency (Hz)",
            hooks=[_quick_range_updates],
            backend_opts=_CANVAS,
        )
        # A pan or zoom in the plot moves the shared selection, which redraws the image.
        self.range_stream = GestureRangeXY(source=dmap)
        self.range_stream.add_subscriber(self._follow_plot)
        # A box drawn with the box-select tool becomes a band over its frequencies.
        self.box_stream = hv.streams.BoundsXY(source=dmap)
        self.box_stream.add_subscriber(self._band_from_box)
        spans = hv.DynamicMap(self._spans, streams=[hv.streams.Params(self.state, ["bands"])])
        # Not linked to the other panes' axes: they follow the shared state instead, and a
        # linked range would no longer report this plot's pans and zooms to RangeXY.
        # Room for the widest frequency labels, so the image's pixel size does not change (and
        # re-render) when the labels get shorter or longer. Set on the overlay, which applies
        # its own border (HoloViews' ``border``) at each resize: set on the image, the overlay's
        # 10 px won after the first resize, and every page load drew the image twice more.
        plot = (dmap * spans).opts(hv.opts.Overlay(backend_opts={"plot.min_border_left": 75}))
        return pn.pane.HoloViews(plot, linked_axes=False, sizing_mode="stretch_width", min_height=350)

    def _band_from_box(self, bounds) -> None:
        if bounds is None:
            return
        nyquist = self.state.atlas.freq_range[1]
        low, high = max(float(bounds[1]), 0.0), min(float(bounds[3]), nyquist)
        if low < high:
            drawn = sum(name.startswith("box ") for name in self.state.bands)
            self.state.add_band(f"box {drawn + 1}", round(low, 1), round(high, 1))

    def _follow_plot(self, x_range, y_range) -> None:
        if x_range is None:
            return
        # Say "busy" first (it reaches the browser at once), then read the new image
        # on the next tick: a slow read shows its indicator while it runs. Gestures
        # that arrive while one is read are answered once, with the latest range.
        self._wanted = (x_range, y_range)
        self.state.busy = True

        def answer() -> None:
            if self._wanted is None:
                return
            (x, y), self._wanted = self._wanted, None
            try:
                self.state.set_view(time=x, freq=y)
            finally:
                self.state.busy = self._wanted is not None

        pn.state.execute(answer, schedule=True)


def busy_indicator(state: ExplorerState) -> pn.viewable.Viewable:
    """A spinner shown while a new image is read, only once it has taken 250 ms.

    It fades in by style (opacity after a 250 ms delay), never by ``visible``:
    showing or hiding an element costs the browser a layout of the page. While
    hidden its animation is paused, through a custom property the spinner's own
    shadow root inherits (an invisible spinner turning at 60 frames a second was
    most of an idle page's CPU), in the same style change: no message of its own.
    """

    def style(busy: bool) -> dict[str, str]:
        if busy:
            return {"opacity": "1", "transition": "opacity 0s linear 250ms", "--atlas-spin": "running"}
        return {"opacity": "0", "transition": "none", "--atlas-spin": "paused"}

    return pn.Row(
        pn.indicators.LoadingSpinner(
            value=True,
            size=20,
            stylesheets=[":host(.loader.spin) div::after { animation-play-state: var(--atlas-spin, paused); }"],
        ),
        pn.pane.Str("reading…", margin=(2, 5)),
        styles=pn.bind(style, state.param.busy),
        css_classes=["atlas-busy"],
        align="end",
        sizing_mode="fixed",
        width=130,
        height=26,
    )


class BandCurves(pn.viewable.Viewer):
    """Band power against time for the visible range, at the plot's pixel resolution."""

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")

    def curves(self, points: int = 800):
        """The visible band curves as an ``xr.Dataset`` (one variable per band, dB)."""
        state = self.state
        return state.atlas.band_energy(state.bands, time=state.time_range, points=points, channel=state.channel)

    def _plot(self, time_range, bands, width, height, scale=1.0, channel=None) -> hv.Overlay:
        if not bands:
            return hv.Overlay([hv.Curve([], "time", "dB")])
        data = self.state.atlas.band_energy(bands, time=time_range, points=max(int(width or 800), 2), channel=channel)
        return hv.Overlay(
            [
                hv.Curve(
                    (data.time.values, data[name].values),
                    "time",
                    hv.Dimension("dB", label=data.attrs["units"]),
                    label=name,
                ).opts(color=color, xlim=tuple(time_range), framewise=True)  # the spectrogram's span
                for name, color in zip(bands, _band_colors(len(bands)), strict=True)
            ]
        )

    def __panel__(self) -> pn.viewable.Viewable:
        bands = hv.streams.Params(self.state, ["bands", "channel"])
        dmap = hv.DynamicMap(self._plot, streams=[visible_after_image(self.state), bands, hv.streams.PlotSize()]).opts(
            framewise=True,
            responsive=True,
            min_height=200,
            xlabel="time (UTC)",
            show_legend=True,
            backend_opts=_CANVAS,
        )
        return pn.pane.HoloViews(dmap, linked_axes=False, sizing_mode="stretch_width", min_height=200)


class Overview(pn.viewable.Viewer):
    """The whole recording from the coarsest level, with the visible range boxed.

    Select a stretch with the box tool (drag) to show it in the main view.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")

    def _box(self, time_range) -> hv.VSpan:
        return hv.VSpan(*time_range).opts(color="white", alpha=0.25, line_color="white")

    def __panel__(self) -> pn.viewable.Viewable:
        # Read once per channel; only its colours follow the state.
        @functools.cache
        def base(channel) -> hv.Image:
            view = self.state.atlas.view(width=1200, height=60, channel=channel)
            return hv.Image((view.time.values, view.freq.values, view.values), kdims=["time", "freq"], vdims=["dB"])

        def coloured(cmap, db_range, channel):
            return base(channel).opts(cmap=cc.palette[cmap], clim=tuple(db_range), clone=True)

        streams = [hv.streams.Params(self.state, ["cmap", "db_range", "channel"])]
        image = hv.DynamicMap(coloured, streams=streams).opts(
            responsive=True,
            height=110,
            xaxis="bottom",
            yaxis=None,
            toolbar=None,
            tools=["xbox_select"],
            active_tools=["xbox_select"],
            xlabel="",
            default_tools=[],
            backend_opts=_CANVAS,
        )
        box = hv.DynamicMap(self._box, streams=[visible_after_image(self.state)])
        selection = hv.streams.BoundsX(source=image)
        selection.add_subscriber(self._select)
        return pn.pane.HoloViews(image * box, linked_axes=False, sizing_mode="stretch_width", height=120)

    def _select(self, boundsx) -> None:
        if boundsx is not None and boundsx[0] != boundsx[1]:
            start, end = sorted(np.datetime64(t, "ns") for t in boundsx)
            self.state.set_time(start, end)
