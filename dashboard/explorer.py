"""The explorer: one panel per capability, composed; shown in a notebook or served (see dashboard.server).

``SpectrogramExplorer("demo.zarr")`` renders inline in a Jupyter cell; in a
served page it also follows and writes the page's link. Each panel reads and
writes one shared :class:`~dashboard.state.ExplorerState`:

- :class:`~dashboard.overview.Overview`: the whole recording, the span shown boxed;
- :class:`~dashboard.spectrogram.SpectrogramView`: the image, and the overlays over it;
- :class:`~dashboard.waveform.WaveformStrip`: the samples' envelope under the spectrogram, on its time axis;
- :class:`~dashboard.curves.BandCurves`: band power against time;
- :class:`~dashboard.listen.ListenPanel`: the player over the spectrogram (its playhead on the spectrogram,
  the overview and the waveform), what it plays, and saving the audio;
- :class:`~dashboard.selections.SelectionsPanel`: the store's shared selection table, its boxes
  over the spectrogram and ticks on the overview, labels, review keys and the ruler;
- :class:`~dashboard.science.SciencePanel`: spectrum statistics, a clicked frame's spectrum, band
  statistics, the diel map and the CQT, in a card of tabs (computed only when shown);
- :class:`~dashboard.navigation.Navigation`, :class:`~dashboard.display.DisplayControls`,
  :class:`~dashboard.bands.BandEditor`, :class:`~dashboard.info.InfoPane` and
  :class:`~dashboard.info.Downloads`: the controls column;
- :class:`~dashboard.address.LinkedView`: the link (served pages only).
"""

from __future__ import annotations

from typing import NamedTuple

# The panels draw with HoloViews' Bokeh backend, named in every option and pane (``backend="bokeh"``),
# never through the current backend or ``hv.opts`` builders, which exist only after ``hv.extension``:
# the explorer works whatever was imported or loaded first (``pn.extension()`` before this module,
# a plain script with ``.show()``, a server) and leaves a notebook's own choice of backend alone.
import holoviews.plotting.bokeh  # noqa: E402, F401  (registers the backend's plots)
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from dashboard.address import LinkedView, request_query
from dashboard.bands import BandEditor
from dashboard.curves import BandCurves
from dashboard.display import DisplayControls
from dashboard.failures import say_failures_in
from dashboard.fixes import apply_patches, keep_early_comm_messages
from dashboard.info import Downloads, InfoPane
from dashboard.listen import ListenPanel
from dashboard.messages import Message
from dashboard.navigation import Navigation
from dashboard.overview import Overview
from dashboard.scales import check_scale, window
from dashboard.science import SciencePanel
from dashboard.selections import SelectionsPanel, current_user
from dashboard.session import follow, in_served_session, release
from dashboard.spectrogram import SpectrogramView, band_edges, busy_indicator
from dashboard.state import ExplorerState
from dashboard.waveform import WaveformStrip
from data_access import open_atlas
from data_access.annotations import AnnotationError, default_annotations_path, open_annotations
from data_access.audio import MAX_AUDIO_SECONDS
from data_access.store import is_url


@pn.cache
def shared_atlas(path: str, audio_root: str | None = None):
    """One open store per process, shared by every session (it holds no data, only metadata).

    ``audio_root``: where its recordings are looked for if they moved (``serve --audio-root``).
    """
    return open_atlas(path, audio_root=audio_root)


class Selection(NamedTuple):
    """What an explorer shows, as data: the result of :meth:`SpectrogramExplorer.selection`.

    A named tuple: ``view, curves = explorer.selection()`` or ``explorer.selection().curves``.

    Attributes
    ----------
    spectrogram : DataArray, float32, dims ("freq", "time")
        The visible time and frequency window in dB, what the NetCDF download
        holds (see :meth:`data_access.Atlas.view`), on the scale shown; ``attrs`` carry ``units``,
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
    :meth:`remove_band`, take what is on screen as data with
    :meth:`selection`, and listen to it with :meth:`audio` or :meth:`play` (what the
    player plays: :attr:`listen`). Clicks and code move the same :attr:`state`.

    Parameters
    ----------
    store : str
        Path of a Zarr or NetCDF store written by ``spectral-atlas ingest``, or
        the fsspec URL of a published Zarr store (``https://host/x.zarr``).
    height : int, default: 860
        Pixels the explorer takes in a notebook; a served page gives it the window's height.
    annotations : str, optional
        The selection database (:mod:`data_access.annotations`); default ``ANNOTATIONS.sqlite``
        beside a local store. A store opened by URL keeps no selections unless one is named
        (its panel says so in one line). A database that cannot be written is shown read-only.
    audio_root : str, optional
        Where the store's recordings are, if they moved since the ingest (see
        :func:`data_access.open_atlas`); without them, what is played is reconstructed
        from the spectrogram, and says so.
    max_play_seconds : float, default: 600
        The most of the recording played or saved at once.
    """

    store = param.String(doc="Path or URL of the store shown.")
    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection of the views.")
    link_name = param.String(default=None, allow_None=True, doc="The store's name in a served page's link.")
    header = param.List(default=[], doc="Shown first in the controls column (a server's store picker).")
    height = param.Integer(default=860, bounds=(400, None), doc="Height in a notebook, in pixels.")
    annotations = param.String(
        default=None, allow_None=True, doc="The selection database (default: ANNOTATIONS.sqlite beside a local store)."
    )
    audio_root = param.String(default=None, allow_None=True, doc="Where the recordings are, if they moved.")
    max_play_seconds = param.Number(
        default=MAX_AUDIO_SECONDS, bounds=(0, None), inclusive_bounds=(False, True),
        doc="The most of the recording played or saved at once, in seconds.",
    )  # fmt: skip

    def __init__(self, store: str, **params) -> None:
        root = params.get("audio_root")
        state = ExplorerState(shared_atlas(str(store), None if root is None else str(root)))
        super().__init__(store=str(store), state=state, **params)
        apply_patches()  # (once per process; see dashboard.fixes)
        keep_early_comm_messages()  # in a notebook kernel
        state = self.state
        self._linked = LinkedView(state=state, store_name=self.link_name) if in_served_session() else None
        if self._linked is not None:
            self.param.watch(lambda e: setattr(self._linked, "store_name", e.new), "link_name")
            # Watchers on the shared state go with the page: none outlives its session.
            pn.state.on_session_destroyed(lambda context: release(state))
        # A read or callback that fails is said here in one line (the log has the rest): see dashboard.failures.
        self._failure = Message("failure-message", kind="warning")
        say_failures_in(self._failure, state, *([pn.state.curdoc] if in_served_session() else []))
        self._selections = self._open_selections()
        marks = self._selections
        self._spectrogram = SpectrogramView(
            state=state, box_drawn=marks.box_drawn if marks.writable else None, tapped=self._tapped
        )
        self._spectrogram.overlay(*band_edges(state))
        self._spectrogram.overlay(*marks.boxes_overlay())
        self._spectrogram.overlay(*marks.ruler_overlay())
        self._overview = Overview(state=state)
        self._overview.overlay(*marks.ticks_overlay())
        self._waveform = WaveformStrip(state=state)
        self._listen = ListenPanel(state=state, selection=self._current_selection, max_seconds=self.max_play_seconds)
        for plot in (self._spectrogram, self._overview, self._waveform):
            plot.overlay(*self._listen.playhead())
        if self._linked is not None:
            # The address follows the current selection (LinkedView writes the view on its own changes).
            follow(state, lambda e: self._linked.param.trigger("store_name"), "selection")
            self._follow_link_selection()
            marks.start_polling()
            pn.state.on_session_destroyed(lambda context: self.close())
        self._curves = BandCurves(state=state)
        self._science = SciencePanel(state=state)
        self._display = DisplayControls(state=state)
        self._downloads = Downloads(state=state, curves=self._curves_frame, view=self._visible_view)

    def _tapped(self, t: np.datetime64, f: float) -> None:
        """A click on the spectrogram: the selections' (ruler, click-to-select), and the point the spectrum shows."""
        self._selections.tapped(t, f)
        self.state.point = np.datetime64(t, "ns")

    @property
    def science(self):
        """The science views (:class:`~dashboard.science.SciencePanel`): statistics, spectra, bands, diel, CQT."""
        return self._science

    def _open_selections(self) -> SelectionsPanel:
        """The selections panel on the store's annotations database (or, without one, a panel saying why)."""
        state = self.state
        if self.annotations is None and is_url(self.store):
            why = (
                "Selections are not kept for a store opened by URL: start the server with --annotations FILE "
                "(or give annotations=FILE) to keep them."
            )
            return SelectionsPanel(state, None, unavailable=why)
        path = self.annotations if self.annotations is not None else default_annotations_path(self.store)
        try:
            db = open_annotations(path, author=current_user())
        except AnnotationError as err:
            return SelectionsPanel(state, None, unavailable=f"Selections are not available: {err}")
        return SelectionsPanel(state, db)

    def _follow_link_selection(self) -> None:
        """A link's ``selection=ID``: shown if this store has it (around it unless the link names times), else said."""
        sid = self.state.selection
        if sid is None:
            return
        panel = self._selections
        if panel.db is None:
            problem = f"selection {sid}: this store keeps no selections here"
        elif sid not in panel.rows.index:
            problem = f"selection {sid} is not one of this store's selections"
        else:
            panel.go_to(sid, move=not ({"start", "end"} & request_query().keys()))
            return
        self.state.selection = None
        message = self._linked.message
        said = message.text.rstrip(".")
        message.say(
            f"{said}; {problem}: ignored." if said else f"This link could not be followed in full: {problem}: ignored."
        )

    def close(self) -> None:
        """Stop following the database's changes and close it; delete the audio prepared (the page is gone)."""
        self._selections.close()
        self._listen.close()

    def _current_selection(self) -> dict | None:
        """The current selection as the player needs it (see :class:`~dashboard.listen.ListenPanel`), or None."""
        sid = self.state.selection
        rows = self._selections.rows
        if sid is None or sid not in rows.index:
            return None
        row = rows.loc[sid]
        channels = self.state.atlas.channels
        channel = channels.index(row["channel"]) if channels and row["channel"] in channels else None
        return {
            "id": int(sid),
            "start": row["start"],
            "end": row["end"],
            "low_hz": float(row["low_hz"]),
            "high_hz": float(row["high_hz"]),
            "channel": channel,
        }

    # ------------------------------------------------- listening
    @property
    def listen(self) -> ListenPanel:
        """What is played and how: set ``source`` ("view", "selection", "band"), ``band``, ``band_pass``, ``rate``."""
        return self._listen

    def audio(self, *, source: str | None = None, rate: float | None = None, band_pass: bool | None = None):
        """The visible span (or the current selection, or a band) as an ``IPython.display.Audio`` player.

        What the page's player would play now: read from the recordings (or reconstructed
        from the spectrogram, when they are not reachable), at ``rate``, band-passed if
        asked, normalised, at 48 kHz (see :meth:`data_access.audio.AudioClip.to_ipython`).

        Parameters
        ----------
        source : {"view", "selection", "band"}, optional
            What to play; default the player's setting (the visible span).
        rate : float, optional
            Speed, 1/32 to 4 (0.1 plays ten times slower and a decade lower); default the player's.
        band_pass : bool, optional
            Keep only the selection's (or the shown) frequencies; default the player's.

        Raises
        ------
        AtlasError
            No current selection, a span longer than ``max_play_seconds``, or one that
            cannot be read (in a gap, a changed recording, ...): the message says which.

        Examples
        --------
        >>> explorer.time_range = ("2026-01-15 00:01:00", "2026-01-15 00:01:10")
        >>> explorer.audio(rate=0.1)  # ten times slower: the clicks come down to hearing
        """
        return self._listen.to_ipython(source=source, rate=rate, band_pass=band_pass)

    def play(self, **kwargs):
        """As :meth:`audio`, starting to play as soon as it is shown."""
        audio = self.audio(**kwargs)
        audio.autoplay = True
        return audio

    # ------------------------------------------------- selections
    @property
    def selections(self) -> pd.DataFrame:
        """The store's selections (not the deleted ones), read from its annotations database now.

        One row per selection in time order, the columns of
        :meth:`data_access.annotations.Annotations.selections`: ``id``, ``start``, ``end``
        (datetime64[ns] UTC), ``low_hz``, ``high_hz``, ``channel``, ``label``, ``notes``,
        ``author``, ``created``, ``modified``, ``modified_by``, ``version``, ``revision``,
        ``deleted``, ``measurements`` (a dict of :func:`data_access.measure.measure`'s
        values once measured, else None), ``source``.

        Set it to write selections (the panel, the boxes and every other session follow):

        - a row without an ``id`` (no such column, or NaN) is **added**: ``start``, ``end``,
          ``low_hz`` and ``high_hz`` are needed, ``channel`` (default ``"0"``), ``label`` and
          ``notes`` are optional; all such rows are added in one transaction, and a row equal
          to a live selection (start, end, band, channel and label) is not added twice;
        - a row with the ``id`` of one of this store's selections **replaces** the fields of
          that selection it holds (``start``, ``end``, ``low_hz``, ``high_hz``, ``channel``,
          ``label``, ``notes``) where they differ; with a ``version`` column, a selection
          changed since that version refuses the whole assignment
          (:class:`~data_access.annotations.ConflictError`) before anything is written;
          ``deleted=True`` deletes it (restorable);
        - selections the frame does not name are left as they are: assigning never deletes
          what it does not name.

        Every id and version is checked before anything is written, and the whole
        assignment is one transaction (:meth:`~data_access.annotations.Annotations.edit_many`):
        should any row be refused (a value out of range, someone else's edit in between),
        nothing at all is saved and the error says which.

        Raises
        ------
        AnnotationError
            The database is read-only or missing, an id is not one of this store's
            selections, or a value is out of range (the message names the row and field).

        Examples
        --------
        >>> frame = explorer.selections
        >>> frame.loc[frame.label == "", "label"] = "whistle"
        >>> explorer.selections = frame                      # relabel the unlabelled ones
        >>> explorer.selections = pd.DataFrame({"start": [t0], "end": [t1], "low_hz": [12e3], "high_hz": [18e3]})
        """
        panel = self._selections
        if panel.db is None:
            return panel.rows.reset_index()
        return panel.db.selections(panel.store)

    @selections.setter
    def selections(self, frame: pd.DataFrame) -> None:
        self._selections.assign(frame)

    # ------------------------------------------------- state a notebook user reaches from the kernel
    @property
    def time_range(self) -> tuple[np.datetime64, np.datetime64]:
        """Visible (start, end), datetime64[ns] UTC; set it to move the view.

        Set from a pair of times (datetime64, pandas Timestamps, ISO strings);
        a range reaching outside the recording is moved inside it, keeping its
        width, as a page or zoom does. An empty or inverted range raises
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
        self.state.set_freq(*value)

    @property
    def freq_scale(self) -> str:
        """The spectrogram's frequency scale, "linear", "log" or "mel" (see :mod:`dashboard.scales`); set it to switch.

        Ranges, bands and selections stay in Hz. Another name raises :class:`~data_access.errors.ParameterError`.
        """
        return self.state.freq_scale

    @freq_scale.setter
    def freq_scale(self, value: str) -> None:
        check_scale(value)
        self.state.freq_scale = value

    @property
    def bands(self) -> dict[str, tuple[float, float]]:
        """Named bands (low, high) in Hz, a copy: change them with :meth:`add_band` and :meth:`remove_band`."""
        return dict(self.state.bands)

    def add_band(self, name: str, low: float, high: float, *, replace: bool = False) -> None:
        """Add a band: its edges on the spectrogram and its curve follow.

        Raises :class:`~data_access.errors.ParameterError` unless 0 <= low < high <= Nyquist,
        or if a band of that name is shown already (unless ``replace``).
        """
        self.state.add_band(name, low, high, replace=replace)

    def remove_band(self, name: str) -> None:
        """Drop a band and its curve (no error if there is no band of that name)."""
        self.state.remove_band(name)

    def auto_db_range(self) -> None:
        """Fit the colour limits to the 2nd..99.5th percentiles of what is on screen."""
        self._display.auto()

    def selection(self, *, width: int = 1200, height: int = 600, points: int = 800) -> Selection:
        """The visible spectrogram and band curves, as data (what the two downloads hold).

        Parameters
        ----------
        width, height : int, default: 1200, 600
            Pixels of the spectrogram along time and frequency (fewer where the
            view holds fewer frames or bins: then the frames and bins themselves).
        points : int, default: 800
            Points of each band curve, evenly spaced over the visible time range.

        Returns
        -------
        Selection
            ``(spectrogram, curves)``: the :class:`xarray.DataArray` of the
            visible window, dims ("freq", "time"), and a
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
            **window(state.atlas, state.freq_scale, state.freq_range).options,  # the rows of the scale shown
        )

    def _curves_frame(self, points: int | None) -> pd.DataFrame:
        if not self.state.bands:
            return pd.DataFrame(index=pd.DatetimeIndex([], dtype="datetime64[ns]", name="time_utc"))
        curves = self._curves.curves(points=points)
        frame = curves.to_dataframe().rename_axis("time_utc")
        frame.attrs.update(curves.attrs)
        return frame

    # ---------------------------------------------------------------- layout
    def _controls(self) -> pn.viewable.Viewable:
        state = self.state
        copy = [self._linked.copy_button()] if self._linked is not None else []
        return pn.Column(
            *self.header,
            self._failure,
            *([self._linked] if self._linked is not None else []),
            InfoPane(state=state, store_label=self.link_name),  # first: in sight at any window size
            Navigation(state=state),
            self._display,
            BandEditor(state=state),
            pn.Row(self._downloads, *copy),
            self._science,
            self._listen,
            self._selections,
            width=440,
            sizing_mode="stretch_height",
            scroll="y-auto",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        main = pn.Column(
            self._overview,
            pn.Row(self._listen.player, busy_indicator(self.state), height=30, sizing_mode="stretch_width"),
            # The spectrogram takes two parts of the height left, the curves one.
            pn.Column(self._spectrogram, sizing_mode="stretch_both", styles={"flex": "2 1 0"}, min_height=300),
            self._waveform,
            pn.Column(self._curves, sizing_mode="stretch_both", styles={"flex": "1 1 0"}, min_height=190),
            sizing_mode="stretch_both",
        )
        if in_served_session():  # the window's height, less the page's header
            size = {"sizing_mode": "stretch_width", "styles": {"height": "calc(100vh - 90px)"}, "min_height": 560}
        else:
            size = {"sizing_mode": "stretch_width", "height": self.height}
        return pn.Row(self._controls(), main, **size)
