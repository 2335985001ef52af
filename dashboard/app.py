"""The Spectral Atlas explorer: one component, served or shown in a notebook.

``SpectrogramExplorer("demo.zarr")`` renders inline in a Jupyter cell;
``panel serve dashboard/app.py --args STORE`` and ``spectral-atlas serve STORE``
serve the same component in a template.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import logging
import os
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr
from panel.io.resources import get_dist_path

from dashboard.catalog import Catalog
from dashboard.fixes import drags_always_pan, keep_early_comm_messages, send_every_queued_message
from dashboard.keys import KeyboardShortcuts
from dashboard.links import KEYS, apply_query, view_query
from dashboard.state import PRESET_BANDS, ExplorerState
from dashboard.views import (
    BandCurves,
    Overview,
    SpectrogramView,
    busy_indicator,
    in_served_session,
    visible_after_image,
)
from data_access import AtlasError, ParameterError, open_atlas
from data_access.query import warm_up
from data_access.sources import to_datetime64

log = logging.getLogger("spectral_atlas")


@pn.cache
def shared_atlas(path: str):
    """One open store per process, shared by every session (it holds no data, only metadata)."""
    return open_atlas(path)


def _typed_time(t: np.datetime64) -> str:
    """A time as the info pane and the start/end inputs show it: ``2026-01-15 00:00:30.931`` (UTC)."""
    return _to_datetime(t).isoformat(sep=" ", timespec="milliseconds")


def _to_datetime(t: np.datetime64) -> dt.datetime:
    """A naive UTC datetime (microsecond precision)."""
    return np.datetime64(t, "us").astype(dt.datetime)


class Selection(NamedTuple):
    """What an explorer shows, as data: the result of :meth:`SpectrogramExplorer.selection`.

    A named tuple: ``view, curves = explorer.selection()`` or ``explorer.selection().curves``.

    Attributes
    ----------
    spectrogram : DataArray, float32, dims ("freq", "time"), shape (height, width)
        The visible time and frequency window in dB, what the NetCDF download
        holds (see :meth:`data_access.Atlas.view`); ``attrs`` carry ``units``,
        ``level``, ``seconds_per_column`` and ``agg``.
    curves : DataFrame, index ``time_utc`` (datetime64[ns]), one float32 column per band
        The visible band curves in dB, what the CSV download holds; no columns
        when no band is named. ``attrs`` carry ``units`` and ``level``.
    """

    spectrogram: xr.DataArray
    curves: pd.DataFrame


#: Seconds within which a listing a notebook's browser sends back may be its answer to one sent to it.
_ECHO_S = 2.0


class SpectrogramExplorer(pn.viewable.Viewer):
    """Spectrogram, controls and band curves of one store.

    In a notebook, the explorer shows inline when it is a cell's value, and what
    it shows is reachable from the kernel: read or set :attr:`time_range` and
    :attr:`freq_range`, change the bands with :meth:`add_band` and
    :meth:`remove_band`, and take what is on screen as data with
    :meth:`selection`. Clicks and code move the same :attr:`state`.

    Parameters
    ----------
    store : str
        Path of a Zarr or NetCDF store written by ``spectral-atlas ingest``, or
        the fsspec URL of a published Zarr store (``https://host/x.zarr``).
    """

    store = param.String(doc="Path or URL of the store shown.")
    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection of the views.")

    def __init__(self, store: str, **params) -> None:
        super().__init__(store=str(store), state=ExplorerState(shared_atlas(str(store))), **params)
        keep_early_comm_messages()  # in a notebook kernel
        self._spectrogram = SpectrogramView(state=self.state)
        self._curves = BandCurves(state=self.state)

    # ------------------------------------------------- state a notebook user reaches from the kernel
    @property
    def time_range(self) -> tuple[np.datetime64, np.datetime64]:
        """Visible (start, end), datetime64[ns] UTC; set it to move the view.

        Set from a pair of times (datetime64, pandas Timestamps, ISO strings);
        a range reaching outside the recording is moved inside it, keeping its
        width, as in the start/end inputs. An empty or inverted range raises
        :class:`~data_access.errors.ParameterError`.
        """
        return self.state.time_range

    @time_range.setter
    def time_range(self, value: tuple[object, object]) -> None:
        start, end = value
        self.state.set_time(start, end)

    @property
    def freq_range(self) -> tuple[float, float]:
        """Visible (low, high) in Hz; set it to move the view (high is clipped to Nyquist)."""
        return self.state.freq_range

    @freq_range.setter
    def freq_range(self, value: tuple[float, float]) -> None:
        low, high = (float(f) for f in value)
        nyquist = self.state.atlas.freq_range[1]
        if not 0 <= low < min(high, nyquist):
            raise ParameterError(f"freq_range {low:g} .. {high:g} Hz must have 0 <= low < high, low < {nyquist:g} Hz")
        self.state.set_view(time=self.state.time_range, freq=(low, high))

    @property
    def bands(self) -> dict[str, tuple[float, float]]:
        """Named bands (low, high) in Hz, a copy: change them with :meth:`add_band` and :meth:`remove_band`."""
        return dict(self.state.bands)

    def add_band(self, name: str, low: float, high: float) -> None:
        """Add (or replace) a band: its span on the spectrogram and its curve follow.

        Raises :class:`~data_access.errors.ParameterError` unless 0 <= low < high <= Nyquist.
        """
        self.state.add_band(name, low, high)

    def remove_band(self, name: str) -> None:
        """Drop a band and its curve (no error if there is no band of that name)."""
        self.state.remove_band(name)

    def selection(self, *, width: int = 1200, height: int = 600, points: int = 800) -> Selection:
        """The visible spectrogram and band curves, as data (what the two downloads hold).

        Parameters
        ----------
        width, height : int, default: 1200, 600
            Pixels of the spectrogram along time and frequency.
        points : int, default: 800
            Points of each band curve, evenly spaced over the visible time range.

        Returns
        -------
        Selection
            ``(spectrogram, curves)``: the :class:`xarray.DataArray` of the
            visible window, dims ("freq", "time"), shape (height, width), and a
            :class:`pandas.DataFrame` of the band curves, index ``time_utc``.

        Examples
        --------
        >>> view, curves = explorer.selection()
        >>> view.shape, list(curves.columns)
        ((600, 1200), ['fin whale', 'shipping', ...])
        """
        return Selection(self._visible_view(width, height), self._curves_frame(points))

    def _visible_view(self, width: int, height: int) -> xr.DataArray:
        state = self.state
        return state.atlas.view(
            time=state.time_range,
            freq=state.freq_range,
            width=width,
            height=height,
            agg=state.agg,
            channel=state.channel,
        )

    def _curves_frame(self, points: int) -> pd.DataFrame:
        if not self.state.bands:
            return pd.DataFrame(index=pd.DatetimeIndex([], dtype="datetime64[ns]", name="time_utc"))
        curves = self._curves.curves(points=points)
        frame = curves.to_dataframe().rename_axis("time_utc")
        frame.attrs.update(curves.attrs)
        return frame

    def _time_inputs(self) -> pn.viewable.Viewable:
        """Precise start and end, to the millisecond; Enter in either shows what both say.

        They act on Enter only, never on a change of their text: in a notebook the
        browser sends back every text the kernel puts in them, a moment later, and
        a text taken as typed would move the view back to where it was then.
        """
        state = self.state
        start = pn.widgets.TextInput(label="start (UTC)", width=190)
        end = pn.widgets.TextInput(label="end (UTC)", width=190)
        message = pn.pane.Markdown("", css_classes=["time-message"], margin=(0, 5))

        def show(*_):
            start.value, end.value = (_typed_time(t) for t in state.time_range)

        def go(*_):
            try:
                wanted = tuple(to_datetime64(field.value.strip()) for field in (start, end))
                state.set_time(*wanted)
            except AtlasError as err:
                message.object = f"⚠ {err}"
                return
            # The state clamps a range to the recording: what it shows differs from what was asked only then.
            first, last = state.atlas.time_range
            clamped = state.time_range != wanted
            message.object = f"⚠ the recording spans {_typed_time(first)} → {_typed_time(last)}" if clamped else ""

        show()
        visible_after_image(state).param.watch(show, "time_range")  # after the image: see there
        start.param.watch(go, "enter_pressed")
        end.param.watch(go, "enter_pressed")
        return pn.Column(pn.Row(start, end), message)

    def _band_editor(self) -> pn.viewable.Viewable:
        state = self.state
        name = pn.widgets.TextInput(label="band", placeholder="name", width=110)
        low = pn.widgets.FloatInput(label="low (Hz)", value=1000.0, start=0.0, width=95)
        high = pn.widgets.FloatInput(label="high (Hz)", value=2000.0, start=0.0, width=95)
        message = pn.pane.Markdown("", css_classes=["band-message"])
        listing = pn.widgets.MultiChoice(
            label="bands shown", options=list(state.bands), value=list(state.bands), css_classes=["band-listing"]
        )

        def add(_):
            try:
                state.add_band(name.value, low.value, high.value)
                message.object = ""
            except AtlasError as err:
                message.object = f"⚠ {err}"

        # In a notebook the browser answers each listing it is sent with that listing, a
        # moment later: after two quick edits from code, the answer to the first would
        # look like a person removing the second band. There, a listing the browser sends
        # back that this side sent within the last 2 s is such an answer, not an edit.
        # (A served page does not answer: there every change is a person's.)
        sent: list[tuple[float, tuple[str, ...]]] = []

        def sync_listing(*_):
            now = time.monotonic()
            sent[:] = [(t, v) for t, v in sent if now - t < _ECHO_S] + [(now, tuple(state.bands))]
            listing.param.update(options=list(state.bands), value=list(state.bands))

        def drop(event):
            now, shown = time.monotonic(), tuple(event.new)
            answer = any(v == shown and now - t < _ECHO_S for t, v in sent)
            if not in_served_session() and shown != tuple(state.bands) and answer:
                sync_listing()  # an answer to an earlier listing: show the bands as they are
                return
            for gone in set(event.old) - set(event.new):
                state.remove_band(gone)

        state.param.watch(sync_listing, "bands")
        listing.param.watch(drop, "value")
        add_button = pn.widgets.Button(label="add band", color="primary", width=90)
        add_button.on_click(add)
        presets = pn.widgets.Select(label="preset", options=["", *PRESET_BANDS], width=170)

        def add_preset(event):
            if event.new:
                lo, hi = PRESET_BANDS[event.new]
                hi = min(hi, state.atlas.freq_range[1])
                if lo < hi:
                    state.add_band(event.new, lo, hi)

        presets.param.watch(add_preset, "value")
        return pn.Column(pn.Row(name, low, high), pn.Row(add_button, presets), message, listing)

    def _downloads(self) -> pn.viewable.Viewable:
        csv = pn.widgets.FileDownload(
            callback=self._curves_csv, filename="band_curves.csv", label="curves (CSV)", color="light"
        )
        netcdf = pn.widgets.FileDownload(
            callback=self._view_netcdf, filename="spectrogram_view.nc", label="view (NetCDF)", color="light"
        )
        return pn.Row(csv, netcdf)

    def _curves_csv(self) -> io.StringIO:
        return io.StringIO(self._curves_frame(800).to_csv())

    def _view_netcdf(self) -> io.BytesIO:
        return io.BytesIO(self._visible_view(1200, 600).to_netcdf(engine="h5netcdf"))

    def auto_db_range(self) -> None:
        """Fit the colour limits to the 2nd..99.5th percentiles of what is on screen."""
        self.state.auto_db_range(self._visible_view(400, 200).values)

    def _controls(self) -> pn.viewable.Viewable:
        state = self.state
        lo, hi = state.db_range  # fitted to the recording: the slider reaches well beyond
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
            self._time_inputs(),
            buttons,
            pn.pane.Markdown("keys: ← → page · + − zoom · Home whole", styles={"font-size": "0.8em"}),
            keys,
            pn.widgets.Select.from_param(state.param.cmap, label="colormap"),
            # A store of several channels (ingest --channel all) shows one at a time.
            pn.widgets.Select.from_param(state.param.channel, label="channel", visible=len(state.atlas.channels) > 1),
            pn.widgets.RadioButtonGroup.from_param(state.param.agg),
            pn.Row(
                pn.widgets.RangeSlider.from_param(
                    state.param.db_range, start=lo - 80, end=hi + 40, step=1, label=f"dB range ({state.atlas.units})"
                ),
                pn.widgets.Button(label="auto", on_click=lambda e: self.auto_db_range(), width=60, align="end"),
            ),
            self._band_editor(),
            self._downloads(),
            self._copy_link(),
            pn.pane.Markdown(
                # Follows the image (level, read time), not the gesture: see visible_after_image.
                pn.bind(
                    self._info, visible_after_image(state).param.time_range, state.param.level, state.param.read_ms
                ),
                css_classes=["atlas-info"],
            ),
            width=380,
        )

    def _info(self, time_range, *_) -> str:
        atlas, level, read_ms = self.state.atlas, self.state.level, self.state.read_ms
        stft = atlas.stft
        shown = " → ".join(_typed_time(t) for t in time_range)
        recorded = " → ".join(_to_datetime(t).isoformat(sep=" ", timespec="seconds") for t in atlas.time_range)
        sources = f"{len(atlas.sources)} file{'s' * (len(atlas.sources) != 1)}"
        return (
            f"**`{atlas.name}`** · {sources}  \nrecording {recorded}  \nshowing {shown}  \n"
            f"{atlas.sample_rate:g} Hz · n_fft {stft.n_fft} · hop {stft.hop_length} · {stft.window}  \n"
            f"level **{level}** ({atlas.levels[level].step:.4g} s/column) · read {read_ms:.0f} ms"
        )

    def _link_to_url(self) -> pn.viewable.Viewable:
        """On a served page, the view follows the URL's query and the query follows the view.

        Returns the message shown for the parts of a link that could not be used.
        """
        message = pn.pane.Alert("", alert_type="warning", visible=False, css_classes=["link-message"])
        location = pn.state.location
        if location is None:  # not served (a notebook cell): no URL to follow
            return message
        query = dict(urllib.parse.parse_qsl(location.search.lstrip("?")))
        problems = apply_query(self.state, {k: v for k, v in query.items() if k in KEYS})
        if problems:
            message.object = "This link could not be followed in full: " + "; ".join(problems) + "."
            message.visible = True

        def write(*_):
            kept = {k: v for k, v in urllib.parse.parse_qsl(location.search.lstrip("?")) if k not in KEYS}
            location.search = "?" + urllib.parse.urlencode({**kept, **view_query(self.state)})

        self.state.param.watch(write, ["freq_range", "db_range", "cmap", "agg", "bands", "channel"])
        visible_after_image(self.state).param.watch(write, "time_range")
        return message

    def _copy_link(self) -> pn.viewable.Viewable:
        button = pn.widgets.Button(label="copy link", width=90, css_classes=["copy-link"])
        # The clipboard API needs a secure origin (https or 127.0.0.1); elsewhere the link is offered to copy by hand.
        button.js_on_click(
            code="""
            const url = window.location.href;
            if (navigator.clipboard && window.isSecureContext) {
              navigator.clipboard.writeText(url).then(() => { window.atlasCopiedLink = url; });
            } else {
              window.prompt("Copy this link", url);
            }
            """
        )
        return button

    def __panel__(self) -> pn.viewable.Viewable:
        main = pn.Column(
            self._link_to_url(),
            Overview(state=self.state),
            pn.Row(pn.layout.HSpacer(), busy_indicator(self.state), height=26),
            self._spectrogram,
            self._curves,
            sizing_mode="stretch_width",
        )
        return pn.Row(self._controls(), main)


class StorePicker(pn.viewable.Viewer):
    """The explorer of one store at a time, with a selector and a listing when several are offered.

    Parameters
    ----------
    stores : list of str, or Catalog
        Store paths, or a :class:`~dashboard.catalog.Catalog` of stores and data roots.
    store : str, optional
        Name of the store to show first (the page's ``?store=NAME``). A name the
        catalog does not list is never read as a path: the first store is shown,
        with a warning on the page.
    """

    explorer = param.ClassSelector(class_=SpectrogramExplorer, doc="The explorer shown.")

    def __init__(self, stores: list[str] | Catalog, *, store: str | None = None, **params) -> None:
        catalog = stores if isinstance(stores, Catalog) else Catalog(stores=stores)
        path = str(catalog.get(store) or catalog.entries[0].path)
        super().__init__(explorer=SpectrogramExplorer(path), **params)
        self.catalog = catalog
        self.message = pn.pane.Alert("", alert_type="warning", visible=False, css_classes=["store-message"])
        self.select = pn.widgets.Select(label="store", options=self._options(), value=path, width=300)
        self.select.param.watch(lambda event: self._open(event.new), "value")
        self.listing = pn.pane.DataFrame(self._table(), index=False, sizing_mode="stretch_width")
        if store is not None and catalog.get(store) is None:
            self._refuse(store)

    def pick_store(self, name: str | None) -> str | None:
        """Show the store listed as ``name``.

        Returns
        -------
        str or None
            The path of the store now shown, or None if the catalog lists no store
            as ``name``: the store shown stays, and the page says so.
        """
        path = self.catalog.get(name)
        if path is None:
            self._refuse(name)
            return None
        self.select.value = str(path)  # opens it (through the selector's watcher)
        return str(path)

    def refresh(self) -> None:
        """Scan the catalog again: new stores under the data roots appear, removed ones go."""
        self.catalog.scan()
        self.select.options = self._options()
        self.listing.object = self._table()

    def _options(self) -> dict[str, str]:
        return {entry.name: str(entry.path) for entry in self.catalog.entries}

    def _table(self) -> pd.DataFrame:
        rows = [
            (e.name, e.start_time[:19], e.end_time[:19], f"{e.duration_seconds / 3600:.2f} h")
            for e in self.catalog.entries
        ]
        return pd.DataFrame(rows, columns=["store", "start (UTC)", "end (UTC)", "duration"])

    def _open(self, path: str) -> None:
        name = self.catalog.name_of(path)
        if name is None:  # a value the listing does not hold (a forged widget message): open nothing
            self._refuse(path)
            return
        self.explorer = SpectrogramExplorer(path)
        self.message.visible = False
        if pn.state.location is not None:
            pn.state.location.update_query(store=name)

    def _refuse(self, name: object) -> None:
        log.warning("refused store %r: the catalog lists no store by that name", name)
        shown = self.catalog.name_of(self.explorer.store)
        # The name is the visitor's text: escaped, it shows as text and never as markup.
        self.message.object = f"No store is listed as {html.escape(repr(name)[:120])}; showing {html.escape(shown)}."
        self.message.visible = True

    @param.depends("explorer")
    def _shown(self) -> SpectrogramExplorer:
        return self.explorer

    def __panel__(self) -> pn.viewable.Viewable:
        if len(self.catalog.stores) == 1 and not self.catalog.roots:
            return pn.Column(self.message, self._shown, sizing_mode="stretch_width")
        refresh = pn.widgets.Button(label="refresh", width=80, align="end", css_classes=["store-refresh"])
        refresh.on_click(lambda event: self.refresh())
        listing = pn.Card(self.listing, title="stores", collapsed=True, sizing_mode="stretch_width")
        return pn.Column(pn.Row(self.select, refresh), listing, self.message, self._shown, sizing_mode="stretch_width")


def explorer_page(stores: list[str] | Catalog) -> StorePicker:
    """The served page's content: see :class:`StorePicker`; the page's ``?store=NAME`` picks the store shown."""
    store = pn.state.session_args.get("store")  # the request's arguments, URL-decoded by tornado
    return StorePicker(
        stores if isinstance(stores, Catalog) else list(stores),
        store=store[0].decode(errors="replace") if store else None,
    )


def page_template(content: pn.viewable.Viewable) -> pn.template.BootstrapTemplate:
    """The served page around ``content``.

    Bootstrap rather than Fast: the Fast design fetches a web font from a CDN,
    which a server on a closed network (a ship, an observatory) cannot reach.
    No busy indicator in the header: Panel's follows the whole process's busy
    flag, so every open page was sent a change, and turned its spinner, while any
    one session was answered (with 20 sessions the pages' spinners took more CPU
    than the server). The explorer's own "reading…" indicator is per session.
    """
    drags_always_pan()
    send_every_queued_message()
    return pn.template.BootstrapTemplate(
        title="Spectral Atlas", main=[content], header_background="#0b3d5c", busy_indicator=None
    )


def _local_stylesheets() -> None:
    """Make this session's Panel stylesheets come from this server, however the session began.

    Panel points its components' stylesheets at this server when it renders the
    page for a session; until then (and for good, if the page's session was
    discarded before its websocket connected and Bokeh made a new one for that
    websocket, as happens under load) it points them at cdn.holoviz.org, which a
    closed network cannot reach and no one asked for. Set the page's value
    (Panel's own) before anything is built.
    """
    if in_served_session():
        pn.state.curdoc._template_variables.setdefault("dist_url", get_dist_path(cdn=False))


def serve(
    stores: list[str] = (),
    *,
    data_roots: list[str] = (),
    port: int = 5006,
    address: str = "127.0.0.1",
    allow_websocket_origin: list[str] | None = None,
    prefix: str | None = None,
    basic_auth: str | None = None,
    cookie_secret: str | None = None,
    oauth_provider: str | None = None,
    oauth_key: str | None = None,
    oauth_secret: str | None = None,
    oauth_extra_params: dict[str, str] | None = None,
    oauth_redirect_uri: str | None = None,
    num_procs: int = 1,
    unused_session_lifetime: int = 15_000,
    check_unused_sessions: int = 17_000,
    show: bool = False,
) -> None:
    """Serve the explorer until interrupted (``spectral-atlas serve``).

    The options go to :func:`panel.serve` and on to Bokeh's server as they are;
    this function checks only that they fit together, so a misconfigured
    service stops at start-up with one line rather than at the first login.

    Parameters
    ----------
    stores : list of str
        Stores offered by path or fsspec URL; the first is shown unless ``?store=NAME`` names another.
    data_roots : list of str
        Directories whose stores, at any depth, are listed and offered
        (see :class:`~dashboard.catalog.Catalog`); nothing else can be opened.
    port : int, default: 5006
        Port to listen on.
    address : str, default: "127.0.0.1"
        Address to listen on (``0.0.0.0``: every interface).
    allow_websocket_origin : list of str, optional
        ``host[:port]`` of the pages allowed to open the app's websocket; behind
        a reverse proxy, its public host name. Default: ``address`` and
        ``localhost`` on ``port``.
    prefix : str, optional
        URL path the app answers under (``/atlas``), to match a reverse proxy's location.
    basic_auth : str, optional
        A password, or the path of a JSON file of ``{"user": "password"}``; needs ``cookie_secret``.
    cookie_secret : str, optional
        Key that signs the login cookie (default: ``PANEL_COOKIE_SECRET``).
    oauth_provider : str, optional
        One of Panel's OAuth providers: ``generic`` (any OpenID Connect server), ``github``,
        ``google``, ``azure``, ``okta``, ``gitlab``, ...; needs ``oauth_key``, ``oauth_secret``
        and ``cookie_secret``.
    oauth_key, oauth_secret : str, optional
        Client id and secret registered with the provider (default: ``PANEL_OAUTH_KEY``,
        ``PANEL_OAUTH_SECRET``).
    oauth_extra_params : dict, optional
        Provider settings, such as ``AUTHORIZE_URL``, ``TOKEN_URL`` and ``USER_URL`` for ``generic``.
    oauth_redirect_uri : str, optional
        Public URL of the login endpoint the provider sends the browser back to.
    num_procs : int, default: 1
        Server processes sharing the port (0: one per CPU).
    unused_session_lifetime : int, default: 15000
        Milliseconds a session without a websocket is kept: one whose page has not connected
        yet, or has closed. Bokeh's default. On a busy server a page can take longer to
        connect; its session is then built again for the websocket (it works, at twice
        the cost): raise it there, and closed sessions are released that much later.
    check_unused_sessions : int, default: 17000
        Milliseconds between Bokeh's looks for such sessions (Bokeh's default).
    show : bool, default: False
        Open a browser.

    Raises
    ------
    ParameterError
        Options that do not fit together, such as a login without a cookie secret.
    SourceNotFoundError, FormatError
        A store or data root that does not exist or is no store.
    """
    options = _server_options(
        basic_auth=basic_auth,
        cookie_secret=cookie_secret,
        oauth_provider=oauth_provider,
        oauth_key=oauth_key,
        oauth_secret=oauth_secret,
        oauth_extra_params=oauth_extra_params,
        oauth_redirect_uri=oauth_redirect_uri,
    )
    if num_procs < 0:
        raise ParameterError(f"--num-procs {num_procs} must be 0 (one per CPU) or more")
    for flag, ms in {
        "--unused-session-lifetime": unused_session_lifetime,
        "--check-unused-sessions": check_unused_sessions,
    }.items():
        if ms <= 0:
            raise ParameterError(f"{flag} {ms} must be a positive number of milliseconds")
    catalog = Catalog(stores=stores, roots=data_roots)  # a bad path fails before the server starts
    if num_procs == 1:
        shared_atlas(str(catalog.entries[0].path))  # the first page opens at once
        warm_up()
    else:  # Bokeh forks the processes: nothing may start OpenMP threads before (datashader's kernels do)
        os.register_at_fork(after_in_child=_in_forked_process)
    origins = allow_websocket_origin or [f"{address}:{port}", f"localhost:{port}"]
    if prefix:
        options["prefix"] = prefix

    def page():
        _local_stylesheets()
        pn.extension(sizing_mode="stretch_width", inline=True)
        _SESSIONS.opened()
        pn.state.on_session_destroyed(_SESSIONS.closed)
        return page_template(explorer_page(catalog))

    pn.serve(
        page,
        port=port,
        address=address,
        websocket_origin=origins,
        show=show,
        title="Spectral Atlas",
        num_procs=num_procs,
        unused_session_lifetime_milliseconds=unused_session_lifetime,
        check_unused_sessions_milliseconds=check_unused_sessions,
        **options,
    )


class _SessionCount:
    """Open sessions of this process, logged as each opens and closes (an operator sees they are released)."""

    def __init__(self) -> None:
        self.open = 0
        self._lock = threading.Lock()

    def opened(self) -> None:
        with self._lock:
            self.open += 1
            log.info("session opened; sessions open: %d", self.open)

    def closed(self, session_context) -> None:
        with self._lock:
            self.open -= 1
            log.info("session closed; sessions open: %d", self.open)


_SESSIONS = _SessionCount()


def _server_options(
    *, basic_auth, cookie_secret, oauth_provider, oauth_key, oauth_secret, oauth_extra_params, oauth_redirect_uri
) -> dict:
    """The login options for :func:`panel.serve`, once they are known to fit together."""
    if basic_auth and oauth_provider:
        raise ParameterError("--basic-auth and --oauth-provider exclude each other: choose one way to log in")
    oauth = {
        "--oauth-key": oauth_key,
        "--oauth-secret": oauth_secret,
        "--oauth-extra-params": oauth_extra_params,
        "--oauth-redirect-uri": oauth_redirect_uri,
    }
    if oauth_provider is None:
        given = [flag for flag, value in oauth.items() if value]
        if given:
            raise ParameterError(f"{given[0]} needs --oauth-provider")
    else:
        from panel.auth import AUTH_PROVIDERS

        if oauth_provider not in AUTH_PROVIDERS:
            raise ParameterError(f"--oauth-provider {oauth_provider!r} is not one of {sorted(AUTH_PROVIDERS)}")
        needed = {
            "--oauth-key": oauth_key or pn.config.oauth_key,
            "--oauth-secret": oauth_secret or pn.config.oauth_secret,
        }
        for flag, value in needed.items():
            if not value and oauth_provider != "pam":  # PAM logs in against the host's own accounts
                env = "PANEL_" + flag[2:].upper().replace("-", "_")
                raise ParameterError(f"--oauth-provider {oauth_provider} needs {flag} (or {env})")
    login = "--basic-auth" if basic_auth else "--oauth-provider" if oauth_provider else None
    if login and not (cookie_secret or pn.config.cookie_secret):
        raise ParameterError(f"{login} needs --cookie-secret (or PANEL_COOKIE_SECRET) to sign the login cookie")
    if basic_auth:
        basic_auth = _credentials(basic_auth)
    options = {
        "basic_auth": basic_auth,
        "cookie_secret": cookie_secret,
        "oauth_provider": oauth_provider,
        "oauth_key": oauth_key,
        "oauth_secret": oauth_secret,
        "oauth_extra_params": oauth_extra_params,
        "oauth_redirect_uri": oauth_redirect_uri,
    }
    return {key: value for key, value in options.items() if value}


def _credentials(basic_auth: str) -> str:
    """A password as it is, or a credentials file checked now and given by its absolute path."""
    path = Path(basic_auth)
    if path.suffix.lower() == ".json" or path.is_file():
        try:
            users = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ParameterError(f"--basic-auth credentials file {basic_auth!r}: {err}") from None
        if not users or not isinstance(users, dict) or not all(isinstance(v, str) for v in users.values()):
            raise ParameterError(f'--basic-auth credentials file {basic_auth!r} must hold {{"user": "password", ...}}')
        return str(path.resolve())  # Panel reads it at each login, whatever the working directory is then
    return basic_auth


def _in_forked_process() -> None:
    """In each server process Bokeh forks: compile the kernels, and exit once the parent is gone."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
    warm_up()


if pn.state.served:  # a plain import has no side effects
    _local_stylesheets()
    pn.extension(sizing_mode="stretch_width", inline=True)
    if not sys.argv[1:]:
        raise SystemExit("usage: panel serve dashboard/app.py --args STORE [STORE ...]")
    warm_up()
    page_template(explorer_page(sys.argv[1:])).servable()
