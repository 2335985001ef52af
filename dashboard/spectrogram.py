"""The spectrogram: one image re-read at every pan and zoom, and the marks drawn over it.

The axes show :class:`~dashboard.state.ExplorerState`'s ``time_range`` and
``freq_range``, nothing else (on a log or mel ``freq_scale``, y is drawn in the scale's
own coordinate and labelled in Hz: :mod:`dashboard.scales`; a log axis from 0 Hz starts
at the first non-zero bin): the image declares exactly those as its limits,
and every overlay (band edges, gaps, selections, the ruler, the player's playhead) is added
through :meth:`SpectrogramView.overlay`, which keeps it out of the axes' ranges and
draws its frequencies (given in Hz) on the scale shown.
A box drawn with the box-select tool and a click on the image are handed to
whoever asked for them in Hz (``box_drawn``, ``tapped``: the selections panel); a box
never makes a band by itself.
"""

from __future__ import annotations

import functools
import operator
import time

import colorcet as cc
import holoviews as hv
import numpy as np
import panel as pn
import param
import xarray as xr
from bokeh.models import CustomJSHover, CustomJSTickFormatter, DatetimeTickFormatter, FixedTicker, NumeralTickFormatter
from holoviews.plotting.bokeh.callbacks import RangeXYCallback

from dashboard import scales
from dashboard.failures import read_or_report, unreadable_view
from dashboard.fixes import register_stream_callback
from dashboard.session import follow, in_served_session, report_image, state_stream
from dashboard.state import ExplorerState, same_range
from data_access.query import MAX_HEIGHT, MAX_WIDTH
from data_access.times import to_datetime64

_DEFAULT_SIZE = (1000, 450)

# Every plot draws on a plain canvas, not WebGL (HoloViews' default where the browser has it).
# An image and a few curves gain nothing from WebGL, and without a GPU (virtual machines,
# remote desktops, hosted browsers) Bokeh's copy of the software-rendered WebGL canvas onto
# the page cost ~115 ms of every zoom (measured in headless Chromium: 0.28 -> 0.18 s of the
# page's main thread per zoom, 4.4 -> 2.8 CPU s per page load).
CANVAS = {"plot.output_backend": "canvas"}

#: Time ticks as people read them, to the millisecond when zoomed that far.
TIME_TICKS = DatetimeTickFormatter(
    milliseconds="%H:%M:%S.%3N",
    seconds="%H:%M:%S",
    minsec="%H:%M:%S",
    minutes="%H:%M",
    hourmin="%H:%M",
    hours="%H:%M",
    days="%Y-%m-%d",
    months="%Y-%m",
    years="%Y",
)
#: Frequency ticks in Hz, with thousands separated (never ``1.441e+4``).
FREQ_TICKS = NumeralTickFormatter(format="0,0.[00]")

_NO_DATA = "#9e9e9e"
_SETTLE_MS = 300


def _quick_range_updates(plot, element) -> None:
    # Bokeh reports a wheel zoom's new range only when its low-detail mode ends
    # (lod_timeout, 500 ms by default): ask for the new image after 50 ms instead.
    plot.state.lod_timeout = 50


def _hatched(plot, element) -> None:
    # "No data" regions: hatched, so they cannot be mistaken for a colour of the map.
    glyph = plot.handles.get("glyph")
    if glyph is not None and hasattr(glyph, "hatch_pattern"):
        glyph.update(hatch_pattern="/", hatch_color="#707070", hatch_alpha=0.6, hatch_scale=10)


class GestureRangeXY(hv.streams.RangeXY):
    """RangeXY reported as soon as a gesture ends.

    HoloViews waits for 100 ms of quiet after each of Bokeh's ``rangesupdate``
    events, in case more follow. Bokeh sends that event once per gesture (at the
    end of a pan, or when a wheel zoom's low-detail mode ends), so the wait only
    delays every new image.
    """


class _GestureRangeXYCallback(RangeXYCallback):
    debounce = None


#: The stream of a gesture's ranges: ours, or HoloViews' own (100 ms later) where it cannot be registered.
RANGE_STREAM = (
    GestureRangeXY if register_stream_callback(GestureRangeXY, _GestureRangeXYCallback) else hv.streams.RangeXY
)


def _as_time(value) -> np.datetime64:
    """A datetime axis's range end as Bokeh holds it (ms since 1970 once the page has moved it), in ns."""
    if isinstance(value, (int, float)):
        return np.datetime64(round(value * 1e6), "ns")
    return to_datetime64(value)


def _same_view(a: tuple, b: tuple) -> bool:
    """Whether two (time, freq) pairs of ranges are the same view, up to a plot's rounding."""
    return same_range(a[0], b[0]) and same_range(a[1], b[1])


#: The y dimensions of the elements an overlay may draw, by position (kdims, then vdims): none for time-only marks.
_Y_DIMS = (
    ((hv.VSpans, hv.VLines, hv.VSpan, hv.VLine), ()),
    ((hv.Rectangles, hv.Segments), (1, 3)),
    ((hv.HSpans,), (0, 1)),
    ((hv.Path, hv.Points, hv.Labels), (1,)),
)


def in_scale(element, scale: str):
    """``element`` (drawn in Hz along y) with its y in the plot's coordinate on ``scale`` (see dashboard.scales).

    An overlay's code stays in Hz: :meth:`Overlaid.overlay` passes what it draws through here.
    """
    if scale == "linear":
        return element
    if isinstance(element, hv.Overlay):
        return element.clone([in_scale(e, scale) for e in element])
    positions = next((at for types, at in _Y_DIMS if isinstance(element, types)), None)
    if positions is None:
        raise TypeError(f"an overlay of the spectrogram cannot draw {type(element).__name__} on a {scale} scale")
    if not positions:
        return element
    dims = [element.dimensions()[i].name for i in positions]
    if isinstance(element, hv.Path):
        paths = [p.dframe() for p in element.split()] if len(element.data) else []
        return element.clone([p.assign(**{d: scales.to_plot(scale, p[d]) for d in dims}) for p in paths])
    frame = element.dframe()
    return element.clone(frame.assign(**{d: scales.to_plot(scale, frame[d].to_numpy(float)) for d in dims}))


def gap_spans(view: xr.DataArray) -> list[tuple[np.datetime64, np.datetime64]]:
    """The stretches of ``view``'s time axis where no column has a level, as (start, end) times.

    Each column covers its centre ± half the step between centres.
    """
    empty = np.isnan(view.values).all(axis=0)
    if not empty.any():
        return []
    times = view.time.values
    step = (times[1] - times[0]) if times.size > 1 else np.timedelta64(0, "ns")
    edges = np.concatenate([[times[0] - step / 2], times[:-1] + (times[1:] - times[:-1]) / 2, [times[-1] + step / 2]])
    change = np.flatnonzero(np.diff(np.concatenate([[0], empty.astype(np.int8), [0]])))
    return [(edges[a], edges[b]) for a, b in zip(change[::2], change[1::2], strict=True)]


class Overlaid:
    """A plot other panels draw on through one door, :meth:`overlay`: what they draw never moves its axes.

    The class using it sets ``self._overlays = []`` and draws :meth:`overlaid` of its own element.
    """

    _overlays: list[hv.DynamicMap]

    def _y_scale(self) -> hv.streams.Stream | None:
        """A stream of ``y_scale``, the frequency scale y is drawn on; None: y is not frequency (the default)."""
        return None

    def overlay(self, callback, streams) -> None:
        """Draw ``callback(**stream values)``'s element over the plot, never changing the axes' ranges.

        Call before the plot is shown. The element is drawn as it is, with its ranges
        left out of the axes' (``apply_ranges=False``): an overlay cannot move, widen
        or snap the axes, whatever it spans. On a plot whose y is frequency, the element
        gives y in Hz, and is drawn on the scale shown (:func:`in_scale`).
        """
        y_scale = self._y_scale()

        def drawn(y_scale="linear", **kwargs):
            return in_scale(callback(**kwargs), y_scale).opts(backend="bokeh", apply_ranges=False)

        self._overlays.append(hv.DynamicMap(drawn, streams=[*streams, *([y_scale] if y_scale else [])]))

    def overlaid(self, element):
        """``element`` with every overlay over it."""
        return functools.reduce(operator.mul, self._overlays, element)


class SpectrogramView(Overlaid, pn.viewable.Viewer):
    """The main image: re-read at every pan and zoom, at the plot's own pixel size.

    Its axes always equal the state's ``time_range`` and ``freq_range``. A pan or
    zoom of the plot moves the state (and so every other panel); the plot keeps the
    range it shows while its image is read, so gestures made meanwhile are never undone:
    the state changed from code (inputs, buttons, links, a notebook) moves the axes.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")
    box_drawn = param.Callable(
        default=None,
        doc="Called with (start, end, low, high) of each box drawn with the box-select tool "
        "(times datetime64[ns], Hz); None: the plot offers no box-select tool.",
    )
    tapped = param.Callable(
        default=None, doc="Called with (time, freq) of a click on the image (datetime64[ns], Hz); None: not listened."
    )

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._overlays: list[hv.DynamicMap] = []
        self._wanted = None  # the latest gesture's (x_range, y_range) not yet answered
        self._asked = None  # the (time, freq) ranges the last gesture answered asked for, until moved from code
        self._answering = False
        self._models = None  # the plot's Bokeh (x_range, y_range)
        self._settling = None  # the timeout that reconciles the state with the page's range
        self._drawn_scale = ("linear", None)  # the last image's frequency scale and y limits (for the y axis)
        # The page's frequency readouts: Hz from the plot's y on the scale shown (args follow the scale).
        self._hz_hover = CustomJSHover(
            args={"scale": "linear"},
            code=scales.HZ_JS + "const f = hz(scale, value);"
            "return f.toLocaleString('en-US', {minimumFractionDigits: 1, maximumFractionDigits: 1}) + ' Hz';",
        )
        self._hz_ticks = CustomJSTickFormatter(
            args={"scale": "linear"},
            code=scales.HZ_JS + "const f = Number(hz(scale, tick).toPrecision(6));"
            "return f >= 1000 ? `${f / 1000} kHz` : `${f} Hz`;",
        )
        self._y_ticker = FixedTicker(ticks=[])
        self._linear_ticker = None  # the axis' own ticker, for the linear scale
        # (Added before the image's own watchers: it runs first.)
        follow(self.state, self._moved, ["time_range", "freq_range", "freq_scale"])

    def _moved(self, *_) -> None:
        if not self._answering:  # moved from code (inputs, buttons, a link, a notebook): the axes follow
            self._asked = None

    # --------------------------------------------------------------- overlays
    def _y_scale(self) -> hv.streams.Stream:
        return state_stream(self.state, ["freq_scale"], rename={"freq_scale": "y_scale"})

    # ------------------------------------------------------------- frequency
    def _window(self) -> scales.Window:
        """The state's frequency range as the axis shows it on the scale shown."""
        return scales.window(self.state.atlas, self.state.freq_scale, self.state.freq_range)

    def _scale_axis(self, plot, element) -> None:
        """The y axis of the last image's scale: labelled in Hz at round values, hover in Hz (a hook)."""
        scale, ylim = self._drawn_scale
        figure = plot.state
        axis = figure.yaxis[0]
        if self._linear_ticker is None:
            self._linear_ticker = axis.ticker
        for model in (self._hz_hover, self._hz_ticks):
            if model.args.get("scale") != scale:
                model.args = {"scale": scale}
        if scale == "linear" or ylim is None:
            axis.update(ticker=self._linear_ticker, formatter=FREQ_TICKS, axis_label="frequency (Hz)")
            return
        self._y_ticker.ticks = [float(y) for y in scales.to_plot(scale, scales.hz_ticks(scale, ylim))]
        axis.update(ticker=self._y_ticker, formatter=self._hz_ticks, axis_label=f"frequency (Hz, {scale} scale)")

    # ------------------------------------------------------------------ image
    def _axes(self) -> tuple[tuple, tuple]:
        """The plot's limits: the page's own ranges while its gestures lead, else the state's.

        After a gesture, the page's axes stand as they are (the page may have zoomed on
        since: its range, synced to the plot's Bokeh models, is what stays); a state that
        is not what a gesture asked for (set from code, or clamped) moves the axes.

        The page's own are given back exactly as the models hold them (ms since 1970 as
        floats, once the page has moved them), so Bokeh finds nothing changed and sends
        the page nothing: the models may be a gesture behind the page (its later gestures
        are still on their way), and a value sent, even the same instant as a datetime64,
        would move the page's axes back to that earlier gesture until its answer came.
        """
        wanted = (self.state.time_range, self.state.freq_range)
        led = self._wanted is not None or (self._asked is not None and _same_view(self._asked, wanted))
        if led and self._models is not None:
            x, y = self._models
            return (x.start, x.end), (y.start, y.end)
        return wanted[0], self._window().y  # (y in the plot's coordinate: see dashboard.scales)

    def _remember_models(self, plot, element) -> None:
        # The plot's Bokeh ranges, which the page keeps in step with what it shows.
        models = (plot.handles["x_range"], plot.handles["y_range"])
        if self._models != models:
            self._models = models
            if in_served_session():
                for model in models:
                    model.on_change("start", self._page_moved)
                    model.on_change("end", self._page_moved)

    def _page_moved(self, attr, old, new) -> None:
        """The page's range changed: make sure the state follows it once the page is still.

        Bokeh reports a gesture's range in an event at its end; should a fast run of
        gestures leave its last range unreported, the page's own range (synced to the
        plot's models) still reaches the state, 300 ms after it last changed.
        """
        doc = self._models[0].document  # (the page's: a plot's first render comes before it joins one)
        if doc is None:
            return
        if self._settling is not None:
            doc.remove_timeout_callback(self._settling)
        self._settling = doc.add_timeout_callback(self._settle, _SETTLE_MS)

    def _settle(self) -> None:
        self._settling = None
        if self._wanted is not None or self._models is None:
            return  # a reported gesture is on its way
        x, y = self._models
        page = ((_as_time(x.start), _as_time(x.end)), (float(y.start), float(y.end)))
        if not _same_view(page, (self.state.time_range, self._window().y)):  # (y as the plot has it)
            self._follow_plot(page[0], page[1])

    def _image(
        self, time_range, freq_range, cmap, db_range, agg, width, height, scale=1.0, channel=None, freq_scale="linear"
    ):
        # A page states its own plot size: read at most what a view may be (MAX_WIDTH x MAX_HEIGHT).
        width = min(width or _DEFAULT_SIZE[0], MAX_WIDTH)
        height = min(height or _DEFAULT_SIZE[1], MAX_HEIGHT)
        started = time.perf_counter()
        atlas = self.state.atlas
        rows = scales.window(atlas, freq_scale, freq_range).options  # rows uniform on the scale, tiling its axis
        view = read_or_report(
            self.state,
            "read this view",
            lambda: atlas.view(
                time=time_range, freq=freq_range, width=width, height=height, agg=agg, channel=channel, **rows
            ),
            lambda: unreadable_view(time_range, freq_range, atlas.units, self.state.level),
        )
        unreadable = view.attrs.get("unreadable", False)
        gaps = gap_spans(view)
        empty = 0.0 if unreadable else float(np.isnan(view.values).all(axis=0).mean())
        facts = {"level": view.attrs["level"], "read_ms": (time.perf_counter() - started) * 1e3, "gap_share": empty}
        report_image(self.state, **facts)  # the info pane: after the image, with the span shown
        xlim, ylim = self._axes()
        (t0, t1), (y0, y1) = (_as_time(t) for t in xlim), (float(y) for y in ylim)
        self._drawn_scale = (freq_scale, (y0, y1))
        image = hv.Image(
            # y in the plot's coordinate, where the rows are uniform (Hz on the axis' labels and the hover).
            (view.time.values, scales.to_plot(freq_scale, view.freq.values), view.values),
            kdims=["time", "freq"],
            vdims=[hv.Dimension("dB", label=view.attrs["units"])],
        ).opts(
            backend="bokeh",
            cmap=cc.palette[cmap],
            clim=tuple(db_range),
            # The axes show exactly these ranges, whatever the image covers (edge frames reach beyond).
            xlim=xlim,
            ylim=ylim,
        )
        mid = (y0 + y1) / 2
        wide = [(a, b) for a, b in gaps if (b - a) > (t1 - t0) * 0.06]
        no_data = hv.VSpans(gaps, kdims=["time", "time_end"]).opts(
            backend="bokeh", fill_color=_NO_DATA, fill_alpha=0.5, line_alpha=0, hooks=[_hatched], apply_ranges=False
        )
        said = "not readable" if unreadable else "no data"
        labels = hv.Labels(
            ([a + (b - a) / 2 for a, b in wide], [mid] * len(wide), [said] * len(wide)), ["time", "freq"], "text"
        ).opts(backend="bokeh", text_color="#303030", text_font_size="12pt", apply_ranges=False)
        return image * no_data * labels

    def __panel__(self) -> pn.viewable.Viewable:
        names = ["time_range", "freq_range", "cmap", "db_range", "agg", "channel", "freq_scale"]
        inputs = state_stream(self.state, names)
        size = hv.streams.PlotSize()
        dmap = hv.DynamicMap(self._image, streams=[inputs, size])
        # A pan or zoom in the plot moves the shared selection, which redraws the image.
        self.range_stream = RANGE_STREAM(source=dmap)
        self.range_stream.add_subscriber(self._follow_plot)
        # A box drawn with the box-select tool, a click: to whoever asked (see box_drawn, tapped).
        tools = ["hover"]
        if self.box_drawn is not None:
            tools.append("box_select")
            self.box_stream = hv.streams.BoundsXY(source=dmap)
            self.box_stream.add_subscriber(self._box)
        if self.tapped is not None:
            self.tap_stream = hv.streams.Tap(source=dmap)
            self.tap_stream.add_subscriber(self._tap)
        plot = self.overlaid(dmap).opts(
            {
                "Image": dict(
                    framewise=True,
                    colorbar=True,
                    tools=tools,
                    hover_tooltips=[
                        ("time", "$x{%F %T.%3N}"),
                        ("frequency", "$y{custom}"),
                        ("level", "@image{0.0} dB"),
                    ],
                    hover_formatters={"$x": "datetime", "$y": self._hz_hover},
                    xformatter=TIME_TICKS,
                    yformatter=FREQ_TICKS,
                ),
                # Room for the widest frequency labels, so the image's pixel size does not change (and
                # re-render) when the labels get shorter or longer. Set on the overlay, which applies
                # its own border (HoloViews' ``border``) at each resize.
                "Overlay": dict(
                    framewise=True,
                    responsive=True,
                    min_height=300,
                    active_tools=["wheel_zoom", "pan"],
                    xlabel="time (UTC)",
                    ylabel="frequency (Hz)",
                    hooks=[_quick_range_updates, self._remember_models, self._scale_axis],
                    backend_opts={**CANVAS, "plot.min_border_left": 75},
                ),
            },
            backend="bokeh",
        )
        return pn.pane.HoloViews(
            backend="bokeh", object=plot, linked_axes=False, sizing_mode="stretch_both", min_height=300
        )

    def _box(self, bounds) -> None:
        if bounds is not None:
            x0, y0, x1, y1 = bounds
            low, high = scales.hz_range(self.state.freq_scale, (y0, y1))
            self.box_drawn(_as_time(x0), _as_time(x1), low, high)

    def _tap(self, x, y) -> None:
        if x is not None and y is not None:
            self.tapped(_as_time(x), float(scales.to_hz(self.state.freq_scale, y)))

    def _follow_plot(self, x_range, y_range) -> None:
        """A range of the page's plot (y in its coordinate on the scale shown): the state shows it, in Hz."""
        if x_range is None:
            return
        if y_range is not None:
            y_range = scales.hz_range(self.state.freq_scale, y_range)
        # Say "busy" first (it reaches the browser at once), then read the new image
        # on the next tick: a slow read shows its indicator while it runs. Gestures
        # that arrive while one is read are answered once, with the latest range:
        # the page keeps every gesture's range meanwhile, so none is lost.
        self._wanted = (x_range, y_range)
        self.state.busy = True

        def answer() -> None:
            if self._wanted is None:
                return
            (x, y), self._wanted = self._wanted, None
            self._asked = (tuple(to_datetime64(t) for t in x), tuple(float(f) for f in y))
            self._answering = True
            try:
                self.state.set_view(time=x, freq=y)  # the image drawn for the page's range leaves its axes alone
            finally:
                self._answering = False
                self.state.busy = self._wanted is not None

        pn.state.execute(answer, schedule=True)


def band_edges(state: ExplorerState):
    """An overlay for :meth:`SpectrogramView.overlay`: each band's edges as dashed lines of its colour.

    Lines only, never a fill: the image's colours stay those of the colour bar.
    """

    def draw(bands, band_colors):
        if not bands:
            return hv.HSpans([], kdims=["y0", "y1"])
        rows = [(lo, hi, name, band_colors.get(name, "#888888")) for name, (lo, hi) in bands.items()]
        return hv.HSpans(rows, kdims=["y0", "y1"], vdims=["band", "color"]).opts(
            backend="bokeh", fill_alpha=0, line_color="color", line_width=1.5, line_dash="dashed", line_alpha=0.9
        )

    return draw, [state_stream(state, ["bands", "band_colors"])]


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
