"""The explorer's science views (issue 19), as tabs in one collapsible card.

Spectrum statistics, a spectrum at a point, band statistics, the diel map and the CQT of a span.

Each tab shows what :mod:`data_access.spectra` computes, through the :class:`~data_access.Atlas` methods:

- **Statistics**: :meth:`~data_access.Atlas.spectrum_stats` of the visible span: the percentiles
  (1, 5, 10, 50, 90, 95, 99), the median and the mean of the PSD over periods of 1 s, 10 s or 1 min
  as lines, over the spectral probability density as an image, on a log-frequency axis; one line
  says the pyramid level read, its period and any cap (a coarser level read for a long span).
- **Spectrum**: :meth:`~data_access.Atlas.spectrum` of the frame at the last click on the spectrogram
  (``state.point``), and the mean spectrum of the visible span, on a log-frequency axis.
- **Bands**: :meth:`~data_access.Atlas.band_stats` of the state's bands over the visible span, with
  the image's mean/max (``state.agg``): L5, L50, L95, mean, peak and SEL (calibrated stores).
- **Diel**: :meth:`~data_access.Atlas.diel` of a band (or broadband) over the whole deployment, date x
  time of day (UTC), with sunrise and sunset (:meth:`~data_access.Atlas.sun_times`) when the store
  has a location; a click on a cell shows that cell's span in the explorer (the frequencies stay).
- **CQT**: :meth:`~data_access.Atlas.cqt` of the visible span, on demand (a button), up to
  :data:`~data_access.spectra.MAX_CQT_SECONDS`; over the limit, or without the recordings, one line.

Nothing is computed until the card is opened, and then only the tab shown, once the view has
settled (:func:`~dashboard.session.visible_after_image`). On a server the work runs on a thread of
its own (the page is answered meanwhile) and the result is shown on the page's turn; a newer
request makes an older result moot. A failure is one line: a :class:`~data_access.ParameterError`'s
own text in the tab, anything else through :mod:`dashboard.failures` (the log holds the rest).
Every text from the store or a request (band names, notes) is shown as text, never markup.
"""

from __future__ import annotations

import concurrent.futures
import html
import logging
from collections.abc import Callable

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr
from panel.io.state import set_curdoc

from dashboard.failures import report, visitor_line
from dashboard.session import follow, in_served_session, visible_after_image
from dashboard.spectrogram import CANVAS, FREQ_TICKS, TIME_TICKS
from dashboard.state import ExplorerState, typed_time
from data_access import ParameterError, SourceNotFoundError
from data_access.spectra import MAX_CQT_SECONDS
from data_access.times import to_datetime64

#: The averaging periods offered for the statistics, in seconds.
PERIODS = {"1 s": 1.0, "10 s": 10.0, "1 min": 60.0}
#: The diel map's cells offered (each divides a day).
RESOLUTIONS = {"1 h": "1h", "30 min": "30min", "15 min": "15min", "10 min": "10min", "5 min": "5min", "1 min": "1min"}
#: The diel map's band when none of the state's is chosen.
BROADBAND = "broadband (0 Hz .. Nyquist)"
#: The tabs, in order.
TABS = ("Statistics", "Spectrum", "Bands", "Diel", "CQT")
#: The SPD's columns drawn at most (log-spaced groups of bins; the lines keep every bin).
SPD_COLUMNS = 240

HEIGHT = 400
_NS = np.timedelta64(1, "ns")
_SECOND = np.timedelta64(1_000_000_000, "ns")
# The percentiles' lines: light at the tails, dark at the middle.
_PERCENTILE_COLORS = {1: "#9ecae1", 5: "#6baed6", 10: "#4292c6", 50: "#08306b", 90: "#4292c6", 95: "#6baed6",
                      99: "#9ecae1"}  # fmt: skip
_MEAN_COLOR = "#d62728"
_COMPUTING = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="science")
log = logging.getLogger("spectral_atlas")


def _text(text: str, css_class: str) -> pn.pane.HTML:
    """A line of plain text (escaped: a store's or a request's text is never read as markup)."""
    return pn.pane.HTML(
        html.escape(text, quote=False),
        css_classes=[css_class],
        styles={"color": "#495057", "font-size": "0.85em"},
        sizing_mode="stretch_width",
        margin=(2, 5),
    )


def _say(pane: pn.pane.HTML, text: str) -> None:
    pane.object = html.escape(text, quote=False)


def _attempt(compute: Callable[[], object]) -> tuple[object, BaseException | None]:
    try:
        return compute(), None
    except Exception as error:  # handed to the page's turn, which says it (see _deliver)
        return None, error


def stats_line(stats: xr.Dataset) -> str:
    """The one line under the statistics: the level and period read, the periods, and any cap."""
    a = stats.attrs
    line = (
        f"{a['n_periods']} periods of {a['period_seconds']:g} s (pyramid level {a['pyramid_level']}, "
        f"asked {a['period_requested_seconds']:g} s), {a['units']}"
    )
    if "MAX_STATS_COLUMNS" in a.get("note", ""):
        line += f"; {a['note']}"
    return line


def spd_columns(freq: np.ndarray, spd: np.ndarray, columns: int = SPD_COLUMNS) -> tuple[np.ndarray, np.ndarray]:
    """The SPD (level, freq) on at most ``columns`` log-spaced columns from the first non-zero bin.

    Each column is the mean of the SPD of the bins it groups (a column still sums to 1 over the levels);
    where bins are wider than a column (low frequencies) a column is one bin.

    Returns
    -------
    edges : ndarray, shape (groups + 1,)
        The columns' edges in Hz (the outer edges of the bins' cells).
    values : ndarray, shape (levels, groups)
    """
    df = freq[1] - freq[0]
    f = freq[1:]
    spd = spd[:, 1:]
    if len(f) > 1:
        position = np.log(f / f[0]) / np.log(f[-1] / f[0]) * columns
        group = np.minimum(position.astype(np.int64), columns - 1)
    else:
        group = np.zeros(len(f), dtype=np.int64)
    _, first = np.unique(group, return_index=True)
    sums = np.add.reduceat(spd, first, axis=1)
    sizes = np.diff(np.append(first, len(f)))
    edges = np.append(f[first] - df / 2, f[-1] + df / 2)
    return edges, sums / sizes


def diel_cell(grid: xr.DataArray, hour: float, day: float) -> tuple[np.datetime64, np.datetime64]:
    """The span of the diel cell at ``hour`` (time of day, hours) on day row ``day`` (0: the first date)."""
    cell = np.timedelta64(int(round(grid.attrs["resolution_seconds"] * 1e9)), "ns")
    dates = grid.date.values
    row = min(max(int(round(day)), 0), len(dates) - 1)
    column = min(max(int(np.floor(hour * 3600 / (cell / _SECOND))), 0), grid.sizes["time_of_day"] - 1)
    start = dates[row] + grid.time_of_day.values[column]
    return start, start + cell


class SciencePanel(pn.viewable.Viewer):
    """Spectrum statistics, a spectrum at a point, band statistics, the diel map and the CQT, as tabs.

    What each tab last computed is kept as data: :attr:`stats`, :attr:`spectra`,
    :attr:`band_table`, :attr:`diel_grid` (with :attr:`sun`), :attr:`cqt_array`.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")
    period = param.Selector(default=1.0, objects=PERIODS, doc="The statistics' averaging period, in seconds.")
    diel_band = param.String(default=BROADBAND, doc="The diel map's band: one of the state's, or broadband.")
    resolution = param.Selector(default="1h", objects=RESOLUTIONS, doc="The diel map's cell.")
    open = param.Boolean(default=False, doc="Whether the card is open (nothing is computed while it is closed).")
    active = param.Integer(default=0, bounds=(0, len(TABS) - 1), doc="The tab shown (an index into TABS).")

    stats = param.Parameter(default=None, doc="The statistics shown: spectrum_stats' Dataset.")
    spectra = param.Dict(default={}, doc="The spectra shown: 'point' (the clicked frame) and 'mean' (the span).")
    band_table = param.DataFrame(default=None, doc="The band statistics shown: band_stats' DataFrame.")
    diel_grid = param.Parameter(default=None, doc="The diel map shown: diel's DataArray.")
    sun = param.DataFrame(default=None, doc="Sunrise and sunset of the diel map's dates (a store with a location).")
    cqt_array = param.Parameter(default=None, doc="The CQT shown: cqt's DataArray.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        state = self.state
        self._done: dict[int, object] = {}  # per tab: the inputs of what it shows
        self._asked = dict.fromkeys(range(len(TABS)), 0)  # per tab: requests made (an older answer is moot)
        self.computed = dict.fromkeys(TABS, 0)  # per tab: computations run (tests count them)
        self._served = in_served_session()
        self._doc = pn.state.curdoc if self._served else None
        self._lines = {name: _text("", f"science-{name.lower()}-line") for name in TABS}
        self._pipes = {name: hv.streams.Pipe(data=None) for name in ("Statistics", "Spectrum", "Diel", "CQT")}
        self.diel_tap = None
        self._visible = visible_after_image(state)
        self._visible.add_subscriber(lambda **_: self._refresh())
        follow(state, lambda *_: self._refresh(), ["channel", "bands", "agg", "point"])
        self.param.watch(lambda *_: self._refresh(), ["period", "diel_band", "resolution", "open", "active"])
        self._tabs = None
        self._card = None

    # ------------------------------------------------------------------ what each tab needs
    def _keys(self) -> dict[int, object]:
        s = self.state
        span = tuple(self._visible.time_range or s.time_range)
        return {
            0: (span, s.channel, self.period),
            1: (span, s.channel, None if s.point is None else np.datetime64(s.point, "ns")),
            2: (span, s.channel, s.agg, tuple(s.bands.items())),
            3: (s.channel, self._diel_range(), self.resolution),
            4: (span, s.channel),
        }

    def _diel_range(self) -> tuple[float, float] | None:
        return self.state.bands.get(self.diel_band)

    def _refresh(self) -> None:
        """Compute the tab shown if what it shows is not for the current view (nothing while closed)."""
        choices = [BROADBAND, *self.state.bands]
        if self._tabs is not None and self._band_choice.options != choices:  # (a change only: one message less)
            self._band_choice.options = choices
        if self.diel_band != BROADBAND and self.diel_band not in self.state.bands:
            self.diel_band = BROADBAND  # (its watcher refreshes)
            return
        if not self.open:
            return
        tab = self.active
        key = self._keys()[tab]
        if self._done.get(tab) == key:
            return
        if tab == 4:  # the CQT waits for its button; a new span clears it
            self.cqt_array = None
            self._pipes["CQT"].send(None)
            self._done[tab] = key
            _say(self._lines["CQT"], f"Press “CQT of this span” (spans up to {MAX_CQT_SECONDS:g} s).")
            return
        self._done[tab] = key
        [self._compute_stats, self._compute_spectrum, self._compute_bands, self._compute_diel][tab](key)

    def _run(self, tab: int, doing: str, compute: Callable[[], object], show: Callable[[object], None]) -> None:
        """``compute()`` (off the server's loop when served), then ``show(result)`` on the page's turn.

        A failure is said in the tab's line (a ParameterError's text) or reported (anything else);
        an answer to an older request is dropped.
        """
        self._asked[tab] += 1
        n = self._asked[tab]
        self.computed[TABS[tab]] += 1
        _say(self._lines[TABS[tab]], f"computing the {TABS[tab].lower()}…")
        if not self._served:
            self._deliver(tab, n, doing, _attempt(compute), show)
            return
        doc = self._doc
        future = _COMPUTING.submit(_attempt, compute)

        def delivered() -> None:
            with set_curdoc(doc):
                self._deliver(tab, n, doing, future.result(), show)

        def done(future) -> None:
            try:
                doc.add_next_tick_callback(delivered)
            except Exception:  # the page has gone meanwhile (its document is closed): nobody to tell
                log.debug("science: an answer for a closed page was dropped", exc_info=True)

        future.add_done_callback(done)

    def _deliver(self, tab: int, n: int, doing: str, outcome: tuple, show: Callable[[object], None]) -> None:
        if n != self._asked[tab]:
            return
        result, error = outcome
        line = self._lines[TABS[tab]]
        if error is None:
            show(result)
            return
        self._done.pop(tab, None)  # the next change asks again
        if isinstance(error, SourceNotFoundError):  # (its text names the server's paths: those stay in the log)
            _say(line, "No CQT: the CQT needs the store's recordings, which this server cannot read.")
        elif isinstance(error, ParameterError):
            _say(line, visitor_line(error, ""))
        else:
            ref = report(error, self.state, doing)
            _say(line, visitor_line(error, ref, doing))

    # ------------------------------------------------------------------ statistics
    def _compute_stats(self, key) -> None:
        span, channel, period = key
        atlas = self.state.atlas
        self._run(
            0,
            "compute the spectrum statistics",
            lambda: atlas.spectrum_stats(time=span, period=period, channel=channel),
            self._show_stats,
        )

    def _show_stats(self, stats: xr.Dataset) -> None:
        self.stats = stats
        self._pipes["Statistics"].send(stats)
        _say(self._lines["Statistics"], stats_line(stats))

    def _stats_plot(self, data: xr.Dataset | None = None) -> hv.Overlay:
        """The SPD as a mesh under the percentile, median and mean lines (the same elements with or without data)."""
        units = self.state.atlas.units
        level = hv.Dimension("level", label=units)
        freq = hv.Dimension("freq", label="frequency (Hz)")
        share = hv.Dimension("spd", label="share of periods")
        lines = {f"{q:g} %": (_PERCENTILE_COLORS[q], 1, "solid") for q in _PERCENTILE_COLORS}
        lines.update({"median": ("#000000", 2, "solid"), "mean": (_MEAN_COLOR, 1.5, "dashed")})
        values: dict[str, tuple] = dict.fromkeys(lines, ([], []))
        mesh, alpha = (np.array([1.0, 2.0]), np.array([0.0, 1.0]), np.zeros((1, 1))), 0  # (transparent: no data)
        if data is not None:
            f = data.freq.values
            edges, spd = spd_columns(f, data.spd.values)
            level_edges = np.asarray(data.level.attrs["bin_edges"], dtype=np.float64)
            shown = np.where(spd > 0, spd, np.nan)
            rows = np.flatnonzero(np.isfinite(shown).any(axis=1))
            if len(rows):
                r0, r1 = rows[0], rows[-1] + 1
                mesh, alpha = (edges, level_edges[r0 : r1 + 1], shown[r0:r1]), 1
            for q, row in zip(data.percentile.values, data.percentiles.values, strict=True):
                values[f"{q:g} %"] = (f[1:], row[1:])
            values["median"] = (f[1:], data["median"].values[1:])
            values["mean"] = (f[1:], data["mean"].values[1:])
        elements = [hv.QuadMesh(mesh, [freq, level], share).opts(backend="bokeh", cmap="Greys", tools=[], alpha=alpha)]
        for label, (color, width, dash) in lines.items():
            elements.append(
                hv.Curve(values[label], freq, level, label=label).opts(
                    backend="bokeh", color=color, line_width=width, line_dash=dash
                )
            )
        return hv.Overlay(elements)

    # ------------------------------------------------------------------ spectrum
    def _compute_spectrum(self, key) -> None:
        span, channel, point = key
        atlas = self.state.atlas

        def compute() -> dict:
            out = {"mean": atlas.spectrum(time=span, channel=channel)}
            if point is not None:
                out["point"] = atlas.spectrum(time=point, channel=channel)
            return out

        self._run(1, "compute the spectrum", compute, self._show_spectrum)

    def _show_spectrum(self, spectra: dict) -> None:
        self.spectra = spectra
        self._pipes["Spectrum"].send(spectra)
        mean = spectra["mean"]
        line = f"mean of the view: {mean.attrs['frames']} frames (level {mean.attrs['level']}), {mean.attrs['units']}"
        if "point" in spectra:
            line = f"clicked: the frame at {typed(spectra['point'].attrs['time_start'])}; " + line
        else:
            line = "Click the spectrogram for the spectrum of a frame; " + line
        _say(self._lines["Spectrum"], line)

    def _spectrum_plot(self, data: dict | None = None) -> hv.Overlay:
        units = self.state.atlas.units
        level = hv.Dimension("level", label=units)
        freq = hv.Dimension("freq", label="frequency (Hz)")
        curves = []
        for name, color, label in (("mean", "#1f77b4", "mean of the view"), ("point", "#d62728", "clicked frame")):
            spectrum = (data or {}).get(name)
            if spectrum is None:
                curves.append(hv.Curve([], freq, level, label=label).opts(backend="bokeh", color=color))
                continue
            f = spectrum.freq.values[1:]
            curves.append(
                hv.Curve((f, spectrum.values[1:]), freq, level, label=label).opts(
                    backend="bokeh", color=color, line_width=1.5
                )
            )
        return hv.Overlay(curves)

    # ------------------------------------------------------------------ bands
    def _compute_bands(self, key) -> None:
        span, channel, agg, bands = key
        if not bands:
            self.band_table = None
            self._bands_pane.object = pd.DataFrame()
            _say(self._lines["Bands"], "No bands: add one in the band editor.")
            return
        atlas = self.state.atlas
        self._run(
            2,
            "compute the band statistics",
            lambda: atlas.band_stats(dict(bands), time=span, agg=agg, channel=channel),
            self._show_bands,
        )

    def _show_bands(self, table: pd.DataFrame) -> None:
        self.band_table = table
        self._bands_pane.object = shown_table(table)
        a = table.attrs
        line = f"{a['frames']} frames, columns of {a['seconds_per_column']:g} s (level {a['level']}, {a['agg']}); "
        line += f"{a['units']}; {a['note']}" if a.get("note") else f"{a['units']}, SEL {a['SEL_units']}"
        _say(self._lines["Bands"], line)

    # ------------------------------------------------------------------ diel
    def _compute_diel(self, key) -> None:
        channel, band, resolution = key
        atlas = self.state.atlas

        def compute() -> tuple:
            grid = atlas.diel(band=band, resolution=resolution, channel=channel)
            sun = atlas.sun_times(grid.date.values) if atlas.location is not None else None
            return grid, sun

        self._run(3, "compute the diel map", compute, self._show_diel)

    def _show_diel(self, result: tuple) -> None:
        grid, sun = result
        self.diel_grid, self.sun = grid, sun
        self._pipes["Diel"].send(result)
        a = grid.attrs
        line = (
            f"{a['long_name']}, {a['units']}; cells of {a['resolution_seconds'] / 60:g} min (UTC), level {a['level']}"
        )
        line += "; sunrise ▲ and sunset ▼" if sun is not None else "; no sunrise/sunset: the store has no location"
        _say(self._lines["Diel"], line + ". Click a cell to show it.")

    _HOUR = hv.Dimension("hour", label="time of day (UTC, h)", range=(0, 24))
    _DAY = hv.Dimension("day", label="date")

    def _diel_image(self, data: tuple | None = None) -> hv.Image:
        """The diel grid as an image: hours 0..24 across, row ``i`` (date ``i``) at y = -i, the first on top."""
        band = hv.Dimension("band", label=self.state.atlas.band_units)
        if data is None:  # (a transparent cell: the plot and its colour bar exist before the data)
            empty = hv.Image(np.zeros((1, 1)), [self._HOUR, self._DAY], band, bounds=(0, -0.5, 24, 0.5))
            return empty.opts(backend="bokeh", alpha=0)
        grid, _ = data
        n_days = grid.sizes["date"]
        dates = [str(d)[:10] for d in grid.date.values]
        ticks = [(-i, dates[i]) for i in range(0, n_days, max(1, n_days // 8))]
        image = hv.Image(grid.values, [self._HOUR, self._DAY], band, bounds=(0, 0.5 - n_days, 24, 0.5))
        return image.opts(backend="bokeh", alpha=1, yticks=ticks)

    def _diel_marks(self, data: tuple | None = None) -> hv.Overlay:
        """Sunrise (▲) and sunset (▼) on each date's row, when the store has a location (else no marks)."""
        sun = None if data is None else data[1]
        marks = []
        for column, marker, color in (("sunrise", "triangle", "#2ca02c"), ("sunset", "inverted_triangle", "#1f77b4")):
            points = ([], [])
            if sun is not None:
                hours = (sun[column].to_numpy() - sun.index.to_numpy()) / np.timedelta64(1, "h")
                points = (hours, -np.arange(len(sun), dtype=np.float64))
            marks.append(
                hv.Scatter(points, self._HOUR, self._DAY, label=column).opts(
                    backend="bokeh", color=color, marker=marker, size=9
                )
            )
        return hv.Overlay(marks)

    def _diel_plot(self, data: tuple | None = None) -> hv.Overlay:
        """What the Diel tab draws for ``data``: the image under the sun's marks."""
        return self._diel_image(data) * self._diel_marks(data)

    def diel_clicked(self, hour: float | None, day: float | None) -> None:
        """A click on the diel map at ``hour`` (time of day, h) on row ``day`` (0: first date): show that cell.

        The frequencies shown stay; a cell outside the recording is said in the tab's line.
        """
        grid = self.diel_grid
        if grid is None or hour is None or day is None:
            return
        start, end = diel_cell(grid, float(hour), float(day))
        try:
            self.state.set_time(start, end, keep="ends")
        except ParameterError as err:
            _say(self._lines["Diel"], visitor_line(err, ""))

    # ------------------------------------------------------------------ CQT
    def compute_cqt(self) -> None:
        """The CQT of the visible span (the button), or one line saying why not."""
        state = self.state
        t0, t1 = state.time_range
        seconds = (t1 - t0) / _SECOND
        self._done[4] = self._keys()[4]
        if seconds > MAX_CQT_SECONDS:
            self.cqt_array = None
            self._pipes["CQT"].send(None)
            _say(
                self._lines["CQT"],
                f"The CQT is computed for spans up to {MAX_CQT_SECONDS:g} s; this view shows {seconds:.4g} s: zoom in.",
            )
            return
        atlas, channel = state.atlas, state.channel
        self._run(4, "compute the CQT", lambda: atlas.cqt(time=(t0, t1), channel=channel), self._show_cqt)

    def _show_cqt(self, array: xr.DataArray) -> None:
        self.cqt_array = array
        self._pipes["CQT"].send(array)
        line = f"|CQT| of {len(array.time)} frames, {len(array.freq)} bins ({array.attrs['bins_per_octave']} an octave)"
        if array.attrs.get("note"):
            line += f"; {array.attrs['note']}"
        _say(self._lines["CQT"], line)

    def _cqt_plot(self, data: xr.DataArray | None = None) -> hv.Image:
        array = data
        time = hv.Dimension("time", label="time (UTC)")
        row = hv.Dimension("bin", label="frequency (Hz)")
        value = hv.Dimension("dB", label="dB (magnitude)")
        if array is None or array.sizes.get("time", 0) < 2:
            return hv.Image(np.zeros((1, 1)), [time, row], value).opts(backend="bokeh", alpha=0)
        with np.errstate(divide="ignore"):
            db = 20 * np.log10(array.values.astype(np.float64))
        db[np.isneginf(db)] = np.nan
        freqs = array.freq.values
        octave = int(array.attrs["bins_per_octave"])
        ticks = [(i, f"{freqs[i]:,.0f}") for i in range(0, len(freqs), octave)]
        return hv.Image((array.time.values, np.arange(len(freqs)), db), [time, row], value).opts(
            backend="bokeh", yticks=ticks, xformatter=TIME_TICKS, alpha=1
        )

    # ------------------------------------------------------------------ layout
    def _plot_pane(self, name: str, plot: Callable, logx: bool) -> pn.pane.HoloViews:
        pipe = self._pipes[name]
        if name == "Diel":
            # A click reaches the image's own DynamicMap (a Tap on an overlay's is never linked).
            image = hv.DynamicMap(self._diel_image, streams=[pipe])
            self.diel_tap = hv.streams.Tap(source=image)
            self.diel_tap.add_subscriber(lambda x, y: self.diel_clicked(x, None if y is None else -y))
            dmap = image * hv.DynamicMap(self._diel_marks, streams=[pipe])
        else:
            dmap = hv.DynamicMap(plot, streams=[pipe])
        common = dict(framewise=True, responsive=True, height=HEIGHT, default_tools=["save", "reset"])
        options = {
            "Curve": dict(framewise=True, logx=logx, tools=["hover"], default_tools=["save", "reset", "wheel_zoom"]),
            "Overlay": dict(
                **common,
                logx=logx,
                title="",
                show_legend=True,
                # Inside the plot (top right: above the spectra's high end), the colour bar below and the tools
                # above: the card is narrow, and the plot keeps its width.
                legend_position="top_right",
                legend_cols=2,
                legend_opts={"label_text_font_size": "7pt", "spacing": 0, "padding": 2, "glyph_height": 10},
                toolbar="above",
                xformatter=FREQ_TICKS if logx else None,
                backend_opts=CANVAS,
            ),
            # A colour bar from the first draw on (one added to a plot already drawn is an error in the page).
            "Image": dict(**common, cmap="fire", colorbar=True, colorbar_position="bottom", backend_opts=CANVAS),
            "QuadMesh": dict(framewise=True, logx=logx, colorbar=True, colorbar_position="bottom"),
            "Scatter": dict(framewise=True),
        }
        if name == "Diel":  # (the line names the marks: ▲ sunrise, ▼ sunset)
            options["Overlay"]["show_legend"] = False
            options["Image"].update(
                tools=["hover"], hover_tooltips=[("time of day", "$x{0.00} h"), ("level", "@image{0.0} dB")]
            )
        dmap = dmap.opts(options, backend="bokeh")
        return pn.pane.HoloViews(
            backend="bokeh",
            object=dmap,
            linked_axes=False,
            sizing_mode="stretch_width",
            height=HEIGHT,
            css_classes=[f"science-{name.lower()}-plot"],
        )

    def _build(self) -> pn.Tabs:
        """The tabs, built when the card is first opened (a closed card adds no plot to the page)."""
        self._band_choice = pn.widgets.Select.from_param(
            self.param.diel_band, options=[BROADBAND, *self.state.bands], name="band", width=200
        )
        self._bands_pane = pn.pane.DataFrame(
            pd.DataFrame(),
            escape=True,
            index=True,
            sizing_mode="stretch_width",
            css_classes=["science-bands-table"],
            # (the card is narrow: every column in sight)
            stylesheets=[":host {overflow-x: auto} table.panel-df {font-size: 11px} td, th {padding: 2px 4px}"],
        )
        cqt_button = pn.widgets.Button(label="CQT of this span", css_classes=["science-cqt-button"], width=160)
        cqt_button.on_click(lambda event: self.compute_cqt())
        tabs = pn.Tabs(
            (
                "Statistics",
                pn.Column(
                    pn.widgets.RadioButtonGroup.from_param(self.param.period, name="period"),
                    self._plot_pane("Statistics", self._stats_plot, True),
                    self._lines["Statistics"],
                    sizing_mode="stretch_width",
                ),
            ),
            (
                "Spectrum",
                pn.Column(
                    self._plot_pane("Spectrum", self._spectrum_plot, True),
                    self._lines["Spectrum"],
                    sizing_mode="stretch_width",
                ),
            ),
            ("Bands", pn.Column(self._bands_pane, self._lines["Bands"], sizing_mode="stretch_width")),
            (
                "Diel",
                pn.Column(
                    pn.Row(
                        self._band_choice,
                        pn.widgets.Select.from_param(self.param.resolution, name="cell", width=100),
                    ),
                    self._plot_pane("Diel", self._diel_plot, False),
                    self._lines["Diel"],
                    sizing_mode="stretch_width",
                ),
            ),
            (
                "CQT",
                pn.Column(
                    cqt_button,
                    self._plot_pane("CQT", self._cqt_plot, False),
                    self._lines["CQT"],
                    sizing_mode="stretch_width",
                ),  # fmt: skip
            ),
            dynamic=True,  # only the tab shown is on the page
            active=self.active,
            sizing_mode="stretch_width",
        )
        tabs.link(self, active="active", bidirectional=True)
        return tabs

    def _collapsed(self, event) -> None:
        if not event.new:
            self._show_tabs()
        self.open = not event.new

    def _show_tabs(self) -> None:
        if self._tabs is None:
            self._tabs = self._build()
            self._card.objects = [self._tabs]

    def __panel__(self) -> pn.viewable.Viewable:
        if self._card is None:
            self._card = pn.Card(
                _text(
                    "Open for spectrum statistics, spectra, band statistics, the diel map and the CQT.", "science-hint"
                ),
                title="Science views",
                collapsed=not self.open,
                sizing_mode="stretch_width",
                css_classes=["science-card"],
            )
            self._card.param.watch(self._collapsed, "collapsed")
            if self.open:
                self._show_tabs()
                self._refresh()
        return self._card


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The band statistics as the Bands tab shows them: the band's edges in whole Hz, levels to 0.1 dB."""
    out = pd.DataFrame({"Hz": [f"{lo:,.0f}–{hi:,.0f}" for lo, hi in zip(table.f_low, table.f_high, strict=True)]})
    out.index = list(table.index)
    for column in ("L5", "L50", "L95", "mean", "peak", "SEL"):
        out[column] = table[column].map(lambda v: "—" if not np.isfinite(v) else f"{v:.1f}")
    return out


def typed(text: str) -> str:
    """A time from an attribute, as the inputs show it (UTC, milliseconds)."""
    return typed_time(to_datetime64(text))
