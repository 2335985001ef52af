"""The Spectral Atlas explorer: one component, served or shown in a notebook.

``SpectrogramExplorer("demo.zarr")`` renders inline in a Jupyter cell;
``panel serve dashboard/app.py --args STORE`` and ``spectral-atlas serve STORE``
serve the same component in a template.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from dashboard.keys import KeyboardShortcuts
from dashboard.state import PRESET_BANDS, ExplorerState
from dashboard.views import BandCurves, Overview, SpectrogramView, busy_indicator
from data_access import AtlasError, ParameterError, open_atlas
from data_access.query import warm_up


@pn.cache
def shared_atlas(path: str):
    """One open store per process, shared by every session (it holds no data, only metadata)."""
    return open_atlas(path)


def _to_datetime(t: np.datetime64) -> dt.datetime:
    """A naive UTC datetime for Panel's pickers (microsecond precision)."""
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
        Path of a Zarr or NetCDF store written by ``spectral-atlas ingest``.
    """

    store = param.String(doc="Path of the store shown.")
    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection of the views.")

    def __init__(self, store: str, **params) -> None:
        super().__init__(store=str(store), state=ExplorerState(shared_atlas(str(store))), **params)
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
        return state.atlas.view(time=state.time_range, freq=state.freq_range, width=width, height=height, agg=state.agg)

    def _curves_frame(self, points: int) -> pd.DataFrame:
        if not self.state.bands:
            return pd.DataFrame(index=pd.DatetimeIndex([], dtype="datetime64[ns]", name="time_utc"))
        curves = self._curves.curves(points=points)
        frame = curves.to_dataframe().rename_axis("time_utc")
        frame.attrs.update(curves.attrs)
        return frame

    def _time_inputs(self) -> pn.viewable.Viewable:
        """Precise start and end pickers, two-way with the shared time range."""
        state = self.state
        first, last = (_to_datetime(t) for t in state.atlas.time_range)
        # Typed inputs rather than calendar pickers: a time to the second is typed faster than clicked.
        fmt = "%Y-%m-%d %H:%M:%S"
        start = pn.widgets.DatetimeInput(label="start (UTC)", start=first, end=last, format=fmt, width=170)
        end = pn.widgets.DatetimeInput(label="end (UTC)", start=first, end=last, format=fmt, width=170)

        showing = False  # while the inputs are being set from the state, they must not set it back

        def show(*_):
            nonlocal showing
            showing = True
            try:
                start.value, end.value = (_to_datetime(t) for t in state.time_range)
            finally:
                showing = False

        def apply(*_):
            if not showing and start.value and end.value and start.value < end.value:
                state.set_time(np.datetime64(start.value, "ns"), np.datetime64(end.value, "ns"))

        show()
        state.param.watch(show, "time_range")
        start.param.watch(apply, "value")
        end.param.watch(apply, "value")
        return pn.Row(start, end)

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

        def sync_listing(*_):
            listing.options = list(state.bands)
            listing.value = list(state.bands)

        def drop(event):
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
            pn.pane.Markdown(
                pn.bind(self._info, state.param.level, state.param.read_ms, state.param.time_range),
                css_classes=["atlas-info"],
            ),
            width=380,
        )

    def _info(self, level: int, read_ms: float, time_range) -> str:
        atlas = self.state.atlas
        stft = atlas.stft
        shown = " → ".join(_to_datetime(t).isoformat(sep=" ", timespec="milliseconds") for t in time_range)
        recorded = " → ".join(_to_datetime(t).isoformat(sep=" ", timespec="seconds") for t in atlas.time_range)
        sources = f"{len(atlas.sources)} file{'s' * (len(atlas.sources) != 1)}"
        return (
            f"**{atlas.path.name}** · {sources}  \nrecording {recorded}  \nshowing {shown}  \n"
            f"{atlas.sample_rate:g} Hz · n_fft {stft.n_fft} · hop {stft.hop_length} · {stft.window}  \n"
            f"level **{level}** ({atlas.levels[level].step:.4g} s/column) · read {read_ms:.0f} ms"
        )

    def __panel__(self) -> pn.viewable.Viewable:
        main = pn.Column(
            Overview(state=self.state),
            pn.Row(pn.layout.HSpacer(), busy_indicator(self.state), height=26),
            self._spectrogram,
            self._curves,
            sizing_mode="stretch_width",
        )
        return pn.Row(self._controls(), main)


class StorePicker(pn.viewable.Viewer):
    """The explorer of one store at a time, with a selector when several are offered."""

    explorer = param.ClassSelector(class_=SpectrogramExplorer, doc="The explorer shown.")

    def __init__(self, stores: list[str], **params) -> None:
        super().__init__(explorer=SpectrogramExplorer(stores[0]), **params)
        self.stores = [str(s) for s in stores]
        names = {Path(s).name: s for s in self.stores}
        if len(names) < len(self.stores):  # two stores of one name: tell them apart by their folder
            names = {f"{Path(s).parent.name}/{Path(s).name}": s for s in self.stores}
        self.select = pn.widgets.Select(label="store", options=names, value=self.stores[0], width=300)
        self.select.param.watch(lambda event: setattr(self, "explorer", SpectrogramExplorer(event.new)), "value")

    @param.depends("explorer")
    def _shown(self) -> SpectrogramExplorer:
        return self.explorer

    def __panel__(self) -> pn.viewable.Viewable:
        if len(self.stores) == 1:
            return pn.Column(self._shown, sizing_mode="stretch_width")
        return pn.Column(self.select, self._shown, sizing_mode="stretch_width")


def explorer_page(stores: list[str]) -> StorePicker:
    """The served page's content: see :class:`StorePicker`."""
    return StorePicker(list(stores))


def page_template(content: pn.viewable.Viewable) -> pn.template.BootstrapTemplate:
    """The served page around ``content``.

    Bootstrap rather than Fast: the Fast design fetches a web font from a CDN,
    which a server on a closed network (a ship, an observatory) cannot reach.
    """
    return pn.template.BootstrapTemplate(title="Spectral Atlas", main=[content], header_background="#0b3d5c")


def serve(stores: list[str], *, port: int = 5006, address: str = "127.0.0.1", allow_websocket_origin=None, show=False):
    """Serve the explorer on ``stores`` until interrupted (``spectral-atlas serve``)."""
    for store in stores:
        shared_atlas(str(store))  # open every store now: a bad path fails before the server starts
    warm_up()
    origins = allow_websocket_origin or [f"{address}:{port}", f"localhost:{port}"]

    def page():
        pn.extension(sizing_mode="stretch_width", inline=True)
        return page_template(explorer_page(list(stores)))

    pn.serve(page, port=port, address=address, websocket_origin=origins, show=show, title="Spectral Atlas")


if pn.state.served:  # a plain import has no side effects
    pn.extension(sizing_mode="stretch_width", inline=True)
    if not sys.argv[1:]:
        raise SystemExit("usage: panel serve dashboard/app.py --args STORE [STORE ...]")
    warm_up()
    page_template(explorer_page(sys.argv[1:])).servable()
