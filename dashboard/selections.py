"""Mark and measure: the store's shared selection table, as Raven users know it.

A *selection* is a box drawn on the spectrogram with the box-select tool: a
time span (exact UTC) by a frequency band, on the channel shown, with a label
from the store's vocabulary, free notes, its author and when it was made and
changed. Selections live in the store's annotations database
(:mod:`data_access.annotations`: SQLite, shared by every session and process);
this panel shows them and edits them:

- the table (:class:`panel.widgets.Tabulator`, a page of 50 rows at a time,
  sortable, filtered by label, notes and author in its header): Raven's columns
  and measurements (:func:`data_access.measure.measure`), measured lazily for the
  rows of the page shown and the current selection (off the server's loop), and
  cached in the database; a click on a row shows it (its span and 50 % more on each
  side, the frequency range widened to hold it) and makes it current; a double click
  on a label or notes cell edits it;
- the boxes over the spectrogram (those in view only, coloured by label, the
  current one outlined) and ticks on the overview strip;
- keys: ``n``/``p`` the next/previous selection in time, ``1``..``9`` give the
  current selection the 1st..9th label, ``Delete`` deletes it and ``u`` undoes
  the last delete; a click inside a box makes it current;
- labels: add, rename, and a filter of the table, the boxes, the ticks and ``n``/``p``;
- "band from selection": a band (:meth:`~dashboard.state.ExplorerState.add_band`) over
  the current selection's frequencies; drawing a box never makes a band;
- the ruler: with it on, two clicks on the spectrogram read the time and
  frequency between them (a line with the numbers), and make no selection.

Sharing: every session reads the database's changes once a second
(:meth:`SelectionsPanel.poll`, new, changed and deleted rows alike), and the
pages of one server process are also told of each other's edits at once: the
others' selections reach a page's table and boxes within two seconds (within a
fraction of one on the same server), without reloading.

Conflicts (first edit wins): each edit names the version of the row it was based
on: for a cell edited in the table, the row as it was when that cell was clicked
(the click of the double click that opened it), whatever this session reads
while it is open; for keys and buttons, the row as this session last read it. If
the row has changed since (someone else's edit or delete), the database refuses
the edit and saves nothing: the message area says who changed it and when, in
one line, and the row shows what the database holds. The earlier edit stands;
the later one is made again by hand if still wanted. (A page whose table is
redrawn by the others' changes while a cell is open closes that cell: what was
typed there is lost, never saved over theirs.)

Everything a person typed (labels, notes, authors) is shown as text, never as
markup: the table's text columns use Tabulator's ``plaintext`` formatter, the
other lists escape it, the plot draws it as canvas text.
"""

from __future__ import annotations

import concurrent.futures
import getpass
import html
import logging
import time
import weakref
import zlib

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import panel.models.tabulator  # noqa: F401  (see below)
import param
from bokeh.models.widgets.tables import NumberFormatter
from panel.io.state import set_curdoc

from dashboard.failures import report
from dashboard.keys import KeyboardShortcuts
from dashboard.messages import Message
from dashboard.session import follow, in_served_session, state_stream
from dashboard.state import ExplorerState, band_name, typed_time
from data_access import AtlasError
from data_access.annotations import FIELDS, LABEL_MAX, NOTES_MAX, AnnotationError, Annotations, ConflictError
from data_access.measure import measure

log = logging.getLogger("spectral_atlas")

# The table's Bokeh model is imported with this module, not when a table is first drawn: a notebook's
# ``pn.extension()`` (after ``from dashboard import ...``) then sends its JavaScript with Panel's, and the
# explorer renders without ``pn.extension("tabulator")``. A served page names the extension itself.

#: Measurements shown as table columns (Raven's names; see :func:`data_access.measure.measure`).
MEASURED = (
    "Peak Freq (Hz)",
    "Center Freq (Hz)",
    "Freq 5% (Hz)",
    "Freq 95% (Hz)",
    "BW 90% (Hz)",
    "Dur 90% (s)",
    "Max Power (dB)",
    "Inband Power (dB)",
    "Energy (dB)",
    "SNR (dB)",
)
#: Rows of the table a page shows.
PAGE_SIZE = 50
#: Seconds a row clicked in the table is kept as it was shown while others change it (a cell of it may be open).
HOLD_S = 60.0
#: How often a session reads the others' changes, in milliseconds.
POLL_MS = 1000
#: Boxes drawn over the spectrogram at most (and the current one), their labels up to MAX_LABELS; a view that
#: holds more shows the first MAX_BOXES / SLICES of each of SLICES equal stretches of it.
MAX_BOXES, MAX_LABELS, SLICES = 2000, 200, 20
#: The served panels of this process, each told at once of the others' edits (other processes: by their polls).
_SERVED: weakref.WeakSet = weakref.WeakSet()
#: Measures the selections of every served page, one at a time (a bounded share of the server's CPU), off its loop.
_MEASURING = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="measure")
#: Share of a selection's span shown before and after it when the view goes to it.
CONTEXT = 0.5
#: Colours of the labels (by their place in the vocabulary), and of a selection without a label: bright, to show
#: on the dark end of every colormap offered (each box also has a dark edge, for the bright end).
LABEL_PALETTE = [
    "#39ff14", "#ff4fd8", "#00d9ff", "#ffe600", "#ff8c00", "#b49bff", "#7fffd4", "#ff6b6b", "#c0ff3e", "#66b3ff",
]  # fmt: skip
NO_LABEL_COLOR = "#ffffff"
#: The ruler's colour.
RULER_COLOR = "#00ffff"
#: Name of the label filter's entry for selections without a label.
NO_LABEL = "(no label)"

_TEXT = ("Label", "Notes", "Author", "Begin (UTC)", "End (UTC)", "Channel")
_NS = np.timedelta64(1, "ns")


# ------------------------------------------------------------------------------------------- pure parts
def current_user() -> str:
    """Who edits from here: the logged-in user of a hosted page, else this process's user name."""
    user = pn.state.user if in_served_session() else None
    if user:
        return str(user)
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "unknown"


def context_view(
    start: np.datetime64,
    end: np.datetime64,
    low: float,
    high: float,
    freq_range: tuple[float, float],
    nyquist: float,
    *,
    context: float = CONTEXT,
) -> tuple[tuple[np.datetime64, np.datetime64], tuple[float, float]]:
    """The view that shows a selection with context: its span and ``context`` of it before and after.

    The frequency range shown stays if it holds the selection's band; else it is
    widened to hold it with a tenth of the band to spare each side (within 0..Nyquist).

    Returns
    -------
    ((t0, t1), (f0, f1))
        datetime64[ns] and Hz, not yet clamped to the recording (see
        :meth:`~dashboard.state.ExplorerState.clamped_time`).
    """
    start, end = np.datetime64(start, "ns"), np.datetime64(end, "ns")
    pad = np.timedelta64(int((end - start) / _NS * context), "ns")
    f0, f1 = freq_range
    if not (f0 <= low and high <= f1):
        spare = (high - low) * 0.1
        f0, f1 = max(min(f0, low - spare), 0.0), min(max(f1, high + spare), nyquist)
    return (start - pad, end + pad), (float(f0), float(f1))


def label_colors(labels: list[str]) -> dict[str, str]:
    """The colour of each label: the palette's in the vocabulary's order, white for no label."""
    return {"": NO_LABEL_COLOR, **{name: LABEL_PALETTE[i % len(LABEL_PALETTE)] for i, name in enumerate(labels)}}


def label_color(label: str, colors: dict[str, str]) -> str:
    """A label's colour; one not (yet) in the vocabulary gets one from its name, the same in every session."""
    return colors.get(label) or LABEL_PALETTE[zlib.crc32(label.encode()) % len(LABEL_PALETTE)]


def ruler_reading(a: tuple[np.datetime64, float], b: tuple[np.datetime64, float]) -> tuple[float, float]:
    """Δt in milliseconds and Δf in Hz from point ``a`` to point ``b`` (each ``(time, Hz)``), both signed."""
    dt_ms = (np.datetime64(b[0], "ns") - np.datetime64(a[0], "ns")) / _NS / 1e6
    return float(dt_ms), float(b[1] - a[1])


def ruler_text(a: tuple[np.datetime64, float], b: tuple[np.datetime64, float]) -> str:
    """``Δt 123.4 ms · Δf 567.8 Hz`` between two points (absolute values)."""
    dt_ms, df = ruler_reading(a, b)
    return f"Δt {abs(dt_ms):,.1f} ms · Δf {abs(df):,.1f} Hz"


def _times_text(values) -> np.ndarray:
    """Times as the table shows them: ``2026-01-15 00:01:02.345`` (UTC, milliseconds)."""
    text = np.datetime_as_string(np.asarray(values, dtype="datetime64[ns]"), unit="ms")
    return np.char.replace(text, "T", " ") if text.size else text.astype(object)


def _number(value: object) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return np.nan
    return value if np.isfinite(value) else np.nan


def table_frame(rows: pd.DataFrame, *, channels: bool = False) -> pd.DataFrame:
    """What the table shows of ``rows`` (a frame of :meth:`Annotations.selections`, indexed by id).

    Label and notes, then Raven's columns: begin and end (UTC, as text to the millisecond),
    Delta Time (s), Low / High / Delta Freq (Hz), the channel (``channels``), the author, and
    :data:`MEASURED` (NaN until measured).
    """
    out = pd.DataFrame(index=pd.Index(rows.index, name="id"))
    out["Label"] = rows["label"].to_numpy()  # (first: what a review edits, in sight in a narrow table)
    out["Notes"] = rows["notes"].to_numpy()
    out["Begin (UTC)"] = _times_text(rows["start"].to_numpy())
    out["End (UTC)"] = _times_text(rows["end"].to_numpy())
    out["Delta Time (s)"] = (rows["end"] - rows["start"]).to_numpy() / np.timedelta64(1, "s")
    out["Low Freq (Hz)"] = rows["low_hz"].to_numpy()
    out["High Freq (Hz)"] = rows["high_hz"].to_numpy()
    out["Delta Freq (Hz)"] = (rows["high_hz"] - rows["low_hz"]).to_numpy()
    if channels:
        out["Channel"] = rows["channel"].to_numpy()
    out["Author"] = rows["author"].to_numpy()
    measured = {name: np.full(len(rows), np.nan) for name in MEASURED}
    for i, values in enumerate(rows["measurements"].to_numpy()):
        if isinstance(values, dict):
            for name in MEASURED:
                measured[name][i] = _number(values.get(name))
    for name in MEASURED:
        out[name] = measured[name]
    return out


def _same(a: object, b: object) -> bool:
    """Whether a frame's value equals the database's (times compared as UTC datetime64[ns])."""
    if isinstance(b, (np.datetime64, pd.Timestamp)):
        try:
            t = pd.Timestamp(a)
        except (TypeError, ValueError):
            return False
        if t.tzinfo is not None:
            t = t.tz_convert("UTC").tz_localize(None)
        return t.to_datetime64() == np.datetime64(b, "ns")
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _sorted(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows in time order, then by id (the database's order)."""
    return rows.sort_index().sort_values("start", kind="stable")


def _no_rows() -> pd.DataFrame:
    """A frame of :meth:`Annotations.selections`'s columns with no row, indexed by id."""
    columns = {
        "start": "datetime64[ns]", "end": "datetime64[ns]", "low_hz": float, "high_hz": float, "channel": object,
        "label": object, "notes": object, "author": object, "created": "datetime64[ns]",
        "modified": "datetime64[ns]", "modified_by": object, "version": np.int64, "revision": np.int64,
        "deleted": bool, "measurements": object, "source": object,
    }  # fmt: skip
    return pd.DataFrame(
        {name: pd.Series([], dtype=dtype) for name, dtype in columns.items()},
        index=pd.Index([], dtype=np.int64, name="id"),
    )


# ------------------------------------------------------------------------------------------- the panel
class SelectionsPanel(pn.viewable.Viewer):
    """The selection table of one store, its boxes, labels, review keys and the ruler.

    Parameters
    ----------
    state : ExplorerState
        The explorer's shared state: the view, the channel, and ``selection`` (the current one).
    db : Annotations or None
        The open database; None: selections are not kept (``unavailable`` says why).
    unavailable : str
        Why there is no database (a remote store without ``--annotations``), said in one line.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")
    label_filter = param.List(default=[], doc="Labels shown in the table, as boxes and ticks, and by n/p; []: all.")
    labels = param.List(default=[], doc="The store's label vocabulary, sorted (read-only).")
    ruler = param.Boolean(default=False, doc="Clicks on the spectrogram measure between two points.")
    ruler_points = param.List(default=[], doc="The ruler's points, (time, Hz), at most two.")
    revision = param.Integer(default=0, doc="Counts the changes of the selections this session has shown.")

    def __init__(self, state: ExplorerState, db: Annotations | None, *, unavailable: str = "", **params) -> None:
        super().__init__(state=state, **params)
        self.db = db
        self.store = state.atlas.name
        # Room kept for the message and the current selection's lines: the table below never moves (a
        # table that moves redraws, and closes the cell being edited).
        self.message = Message("selection-message", kind="warning", reserve=True)
        self.writable = db is not None and not db.read_only
        self._since = 0  # the database's revision this session has read up to
        self._table_rows: pd.DataFrame | None = None  # what the table shows of them, all (see _changed)
        self._rows = _no_rows()  # the store's live selections as the database holds them, by id, in time order
        self._deleted: list[int] = []  # this session's deletes, for undo
        self._clicked_version: tuple[int, int] | None = None  # (id, version) of the row last clicked in the table
        self._clicked_at = 0.0  # (time.monotonic() of that click)
        self._table_stale = False  # the table was left as it was, for a cell that may be open (see _changed)
        self._pending: list[int] = []  # selections waiting to be measured
        self._unmeasurable: dict[int, str] = {}  # why a selection could not be measured (this session)
        self._measuring = False
        self._polling = None
        self._doc = None  # the served page's document (see start_polling)
        self._quiet = False  # the boxes and ticks are drawn again by what follows (see add)
        nyquist = state.atlas.freq_range[1]
        self._nyquist = nyquist
        if db is None:
            self.message.say(unavailable)
        elif db.read_only:
            self.message.say(f"Selections are read-only here ({db.read_only_reason}): they are shown, not edited.")
        self.table = self._make_table()
        self.readout = pn.pane.HTML(
            "",
            css_classes=["selection-current"],
            sizing_mode="stretch_width",
            height=100,
            stylesheets=[".selection-line { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }"],
        )
        self.ruler_readout = pn.pane.HTML("", css_classes=["ruler-readout"], sizing_mode="stretch_width", height=24)
        self.count = pn.pane.HTML("", css_classes=["selection-count"], sizing_mode="stretch_width")
        self.filter = pn.widgets.MultiChoice(
            label="show labels (all when empty)", options={}, value=[], css_classes=["label-filter"]
        )
        self.new_label = pn.widgets.TextInput(placeholder="new label", width=150, max_length=LABEL_MAX)
        self.rename_from = pn.widgets.Select(options={}, width=130)
        self.rename_to = pn.widgets.TextInput(placeholder="relabel as", width=130, max_length=LABEL_MAX)
        if db is not None:
            self.reload()
        self.filter.param.watch(lambda e: setattr(self, "label_filter", list(e.new)), "value")
        self.param.watch(self._filtered, "label_filter")
        self.param.watch(self._show_labels, "labels")
        self.param.watch(self._ruler_switched, "ruler")
        follow(state, self._current_changed, "selection")
        self._show_labels()
        self._current_changed()

    # ------------------------------------------------------------------ reading
    def reload(self) -> None:
        """Read the store's selections and labels afresh (the table, boxes and ticks follow)."""
        rows = self.db.selections(self.store)
        self._since = int(rows["revision"].max()) if len(rows) else self.db.revision(self.store)
        self._rows = _sorted(rows.set_index("id"))
        self.labels = self.db.labels(self.store)
        self._changed()

    def poll(self) -> bool:
        """Read what changed in the database since this session last read it; returns whether anything did.

        Called once a second on a served page (and after each of this session's own edits).
        """
        if self.db is None:
            return False
        try:
            labels = self.db.labels(self.store)
            changes = self.db.changes(self.store, self._since) if self.db.revision(self.store) > self._since else None
        except AnnotationError as err:  # locked for longer than the timeout, say: the next poll tries again
            log.warning("%s: could not read the selections' changes: %s", self.store, err)
            return False
        if self._table_stale and self._held_row() is None:  # (a cell left open for a minute: the table catches up)
            self._show_table()
        moved = labels != self.labels
        with param.parameterized.batch_call_watchers(self):  # (the boxes are drawn again once)
            if moved:
                self.labels = labels
            if changes is not None and len(changes):
                self._since = max(self._since, int(changes["revision"].max()))
                moved = self._apply(changes.set_index("id")) or moved
        return moved

    def _apply(self, changes: pd.DataFrame) -> bool:
        """Bring this session's rows to ``changes`` (rows as they are now, tombstones too)."""
        known = self._rows
        same = changes.index.isin(known.index)
        changes = changes[same | ~changes["deleted"].to_numpy()]  # (a row this session never had, deleted: nothing)
        if not len(changes):
            return False
        same = changes.index.isin(known.index)
        if same.all() and len(known):
            old = known.loc[changes.index]
            unchanged = (
                (old["version"].to_numpy() == changes["version"].to_numpy())
                & (old["revision"].to_numpy() == changes["revision"].to_numpy())
                & ~changes["deleted"].to_numpy()
            )
            if unchanged.all():
                return False
        in_place = (
            same.all()
            and not changes["deleted"].any()
            and (known.loc[changes.index, ["start", "end"]].to_numpy() == changes[["start", "end"]].to_numpy()).all()
        )
        redraw = True  # (the boxes and ticks: not for measurements or notes, which they do not show)
        if in_place:  # (edits that leave the order: the rows changed only, not 100 000 sorted again)
            drawn = ["low_hz", "high_hz", "label", "channel"]
            redraw = not (known.loc[changes.index, drawn].to_numpy() == changes[drawn].to_numpy()).all()
            for column in known.columns:
                known.loc[changes.index, column] = changes[column].to_numpy()
        else:
            live = changes[~changes["deleted"]]
            self._rows = _sorted(pd.concat([known.drop(index=changes.index, errors="ignore"), live]))
        if self.state.selection is not None and self.state.selection not in self._rows.index:
            gone = self.state.selection
            self.state.selection = None
            if gone in changes.index and bool(changes.at[gone, "deleted"]) and gone not in self._deleted:
                who = changes.at[gone, "modified_by"]
                self.message.say(f"Selection {gone} was deleted by {who}.")
        for sid in changes.index:
            self._unmeasurable.pop(sid, None)
        self._changed(list(changes.index) if in_place else None, redraw=redraw)
        return True

    @property
    def rows(self) -> pd.DataFrame:
        """The store's live selections as this session last read them, indexed by id, in time order (a copy)."""
        return self._rows.copy()

    def _shown_rows(self) -> pd.DataFrame:
        """The rows the label filter lets through."""
        if not self.label_filter or not len(self._rows):
            return self._rows
        return self._rows[self._rows["label"].isin(self.label_filter)]

    # ------------------------------------------------------------------ the table
    def _make_table(self) -> pn.widgets.Tabulator:
        numbers = {
            name: NumberFormatter(format="0,0.000" if "(s)" in name else "0,0.0", nan_format="")
            for name in ("Delta Time (s)", "Low Freq (Hz)", "High Freq (Hz)", "Delta Freq (Hz)", *MEASURED)
        }
        text = dict.fromkeys(_TEXT, "plaintext")  # as text, never markup (Tabulator's own escaping)
        editors = {name: None for name in (*numbers, "Begin (UTC)", "End (UTC)", "Channel", "Author")}
        if self.writable:
            editors["Label"] = {"type": "input", "elementAttributes": {"maxlength": str(LABEL_MAX)}}
            editors["Notes"] = {"type": "input", "elementAttributes": {"maxlength": str(NOTES_MAX)}}
        like = {"type": "input", "func": "like", "placeholder": "filter"}
        table = pn.widgets.Tabulator(
            value=table_frame(self._rows, channels=len(self.state.atlas.channels) > 1),
            pagination="remote",
            page_size=PAGE_SIZE,
            formatters={**numbers, **text},
            editors=editors,
            header_filters={"Label": like, "Notes": like, "Author": like},
            selectable=1,
            # A click makes a row current (and shows it); a double click edits a cell, as in a spreadsheet.
            configuration={"editTriggerEvent": "dblclick"},
            disabled=not self.writable,
            show_index=True,
            frozen_columns=["id"],
            layout="fit_data_table",
            height=380,
            sizing_mode="stretch_width",
            css_classes=["selections-table"],
        )  # fmt: skip
        table.on_click(self._clicked)
        table.on_edit(self._edited)
        table.param.watch(lambda *_: self._measure_page(), ["page", "sorters", "filters"])
        return table

    def _changed(self, ids: list[int] | None = None, *, redraw: bool = True) -> None:
        """The rows changed (only ``ids``, in place, if given): the table and the count follow.

        With ``redraw``, the boxes and ticks too. The rows of the page shown are then measured.
        """
        channels = len(self.state.atlas.channels) > 1
        if ids is None or self._table_rows is None:
            self._table_rows = table_frame(self._rows, channels=channels)
        else:
            self._table_rows.loc[ids] = table_frame(self._rows.loc[ids], channels=channels)
        shown = self._shown_rows()
        held = self._held_row()
        # Redrawing the table closes a cell being edited: while the row last clicked may be open for editing, a
        # change of that row alone (someone else's edit) leaves the table as it is, until this session's edit
        # (refused: the row changed since it was clicked), a click elsewhere, or a minute; the current selection's
        # lines above show it meanwhile. Rows added or deleted are shown at once (an open cell then closes).
        stale = held is not None and ids is not None and held in ids
        with pn.io.hold():
            if stale:
                self._table_stale = True
            else:
                self._show_table()
            n, total = len(shown), len(self._rows)
            self.count.object = f"{n} selection{'s' * (n != 1)}" + (
                f" of {total} (filtered by label)" if n != total else ""
            )
            self._show_current_in_table()
            self._show_readout()
            if redraw and not self._quiet:
                self.revision += 1
        self._measure_page()

    def _filtered(self, *_) -> None:
        self._changed()

    def _show_current_in_table(self) -> None:
        sid = self.state.selection
        value = self.table.value
        if sid is None or value is None or sid not in value.index:
            if self.table.selection:
                self.table.selection = []
            return
        view = self.table.current_view
        if isinstance(view, pd.DataFrame) and sid in view.index:
            page = view.index.get_loc(sid) // PAGE_SIZE + 1
            if page != self.table.page:
                self.table.page = page
        where = [int(value.index.get_loc(sid))]
        if self.table.selection != where:
            self.table.selection = where

    def _show_table(self) -> None:
        """Show the rows (through the label filter) in the table."""
        table, shown = self._table_rows, self._shown_rows()
        self.table.value = table.loc[shown.index] if len(shown) != len(table) else table.copy()
        self._table_stale = False

    def _held_row(self) -> int | None:
        """The row a cell may be open in (clicked less than a minute ago, not edited since), or None."""
        if self._clicked_version is None or time.monotonic() - self._clicked_at > HOLD_S:
            return None
        return self._clicked_version[0]

    def _row_id(self, row: int) -> int | None:
        value = self.table.value
        return int(value.index[row]) if value is not None and 0 <= row < len(value) else None

    def _clicked(self, event) -> None:
        sid = self._row_id(event.row)
        if sid is None or sid not in self._rows.index:
            return
        # A cell is edited after a click on it (a double click): the edit is based on the row as it was then,
        # even if the others' changes reach this session while the cell is edited (see _edited).
        before = self._held_row()
        self._clicked_version, self._clicked_at = (sid, int(self._rows.at[sid, "version"])), time.monotonic()
        if self._table_stale and before != sid:  # (the row held before is no longer being edited)
            self._show_table()
        if sid != self.state.selection:
            self.go_to(sid)

    def _edited(self, event) -> None:
        sid = self._row_id(event.row)
        field = {"Label": "label", "Notes": "notes"}.get(event.column)
        if sid is None or field is None or sid not in self._rows.index:
            self._changed()  # shows the rows as the database holds them
            return
        clicked, self._clicked_version = self._clicked_version, None
        version = clicked[1] if clicked is not None and clicked[0] == sid else None
        self._update(sid, version=version, **{field: str(event.value if event.value is not None else "")})

    # ------------------------------------------------------------------ writing
    def _write(self, doing: str, action) -> object:
        """Run a write; a refusal (a conflict, a value out of range, a lock) is said in one line. Returns its result."""
        if not self.writable:
            self.message.say(f"Could not {doing}: selections are read-only here.")
            return None
        try:
            result = action()
        except ConflictError as err:
            self.message.say(f"⚠ {err}.")
            self.poll()
            self._changed()  # (the row as the database holds it, also when the poll had nothing new)
            return None
        except AnnotationError as err:
            self.message.say(f"⚠ could not {doing}: {err}")
            self._changed()
            return None
        self.message.clear()
        self.poll()
        self._tell_the_others()
        return result if result is not None else True

    def _update(self, sid: int, *, version: int | None = None, **fields) -> bool:
        """Save ``fields`` of ``sid``, based on ``version`` (default: the version this session last read)."""
        version = int(self._rows.at[sid, "version"]) if version is None else version
        return bool(self._write(f"change selection {sid}", lambda: self.db.update(self.store, sid, version=version,
                                                                                    **fields)))  # fmt: skip

    def add(
        self, start: object, end: object, low: float, high: float, *, label: str = "", notes: str = ""
    ) -> int | None:
        """Add a selection on the channel shown and make it current (the view stays); returns its id.

        The box is clipped to the recording and to 0..Nyquist; one left empty adds nothing (None).
        """
        first, last = self.state.atlas.time_range
        t0, t1 = sorted((np.datetime64(start, "ns"), np.datetime64(end, "ns")))
        t0, t1 = max(t0, first), min(t1, last)
        f0, f1 = sorted((float(low), float(high)))
        f0, f1 = max(f0, 0.0), min(f1, self._nyquist)
        if not (t0 < t1 and f0 < f1):
            return None
        channel = self.channel_label()
        self._quiet = True  # (made current below: the boxes and ticks, which follow the current one, are drawn once)
        try:
            sid = self._write(
                "add the selection",
                lambda: self.db.add(self.store, start=t0, end=t1, low_hz=f0, high_hz=f1, channel=channel,
                                    label=label, notes=notes),
            )  # fmt: skip
        finally:
            self._quiet = False
        if sid is not None:
            self.go_to(int(sid), move=False)
        else:
            self.revision += 1
        return sid

    def set_label(self, label: str, sid: int | None = None) -> bool:
        """Give selection ``sid`` (default: the current one) the label ``label``; returns whether it was saved."""
        sid = self.state.selection if sid is None else sid
        if sid is None or sid not in self._rows.index:
            return False
        return self._update(sid, label=label)

    def label_key(self, k: int) -> None:
        """Key ``k`` (1..9): the current selection gets the k-th label of the vocabulary (if there is one)."""
        if 1 <= k <= len(self.labels):
            self.set_label(self.labels[k - 1])
        else:
            self.message.say(f"No label {k}: the store's vocabulary has {len(self.labels)}.")

    def delete(self, sid: int | None = None) -> bool:
        """Delete selection ``sid`` (default: the current one); :meth:`undo` brings it back."""
        sid = self.state.selection if sid is None else sid
        if sid is None or sid not in self._rows.index:
            return False
        version = int(self._rows.at[sid, "version"])
        following = self._neighbour(sid, +1)
        self._deleted.append(sid)
        if not self._write(f"delete selection {sid}", lambda: self.db.delete(self.store, sid, version=version)):
            self._deleted.pop()
            return False
        if self.state.selection is None and following is not None and following in self._rows.index:
            self.go_to(following, move=False)  # (review goes on from the next one)
        return True

    def undo(self) -> int | None:
        """Restore the last selection this session deleted, and make it current; returns its id."""
        if not self._deleted:
            self.message.say("Nothing to undo.")
            return None
        sid = self._deleted.pop()
        if self._write(f"restore selection {sid}", lambda: self.db.restore(self.store, sid)) is None:
            return None
        self.go_to(sid, move=False)
        return sid

    def add_label(self, name: str) -> bool:
        """Add ``name`` to the store's vocabulary."""
        name = name.strip()
        if not self._write(f"add the label {name!r}", lambda: self.db.add_label(self.store, name)):
            return False
        self.new_label.value = ""
        return True

    def rename_label(self, old: str, new: str) -> bool:
        """Rename a label on every selection that has it (one transaction)."""
        new = new.strip()
        if not self._write(f"rename the label {old!r}", lambda: self.db.rename_label(self.store, old, new)):
            return False
        self.rename_to.value = ""
        return True

    def band_from_selection(self) -> str | None:
        """Add a band over the current selection's frequencies, named by its label; returns the band's name."""
        sid = self.state.selection
        if sid is None or sid not in self._rows.index:
            self.message.say("No current selection to make a band from.")
            return None
        row = self._rows.loc[sid]
        base = row["label"] or f"selection {sid}"
        name = next(n for i in range(1, len(self.state.bands) + 2) if (n := base if i == 1 else f"{base} {i}")
                    not in self.state.bands)  # fmt: skip
        try:
            self.state.add_band(band_name(name), float(row["low_hz"]), float(row["high_hz"]))
        except AtlasError as err:
            self.message.say(f"⚠ {err}")
            return None
        return name

    def assign(self, frame: pd.DataFrame) -> tuple[int, int]:
        """Write ``frame``'s rows to the database: what ``explorer.selections = frame`` does (see there).

        Returns
        -------
        (added, changed) : (int, int)
        """
        if self.db is None or not self.writable:
            reason = self.message.text if self.db is None else f"read-only ({self.db.read_only_reason})"
            raise AnnotationError(f"selections cannot be written here: {reason}")
        if not isinstance(frame, pd.DataFrame):
            raise AnnotationError(f"selections must be a DataFrame, not {type(frame).__name__}")
        if frame.index.name == "id":
            frame = frame.reset_index()
        ids = frame["id"] if "id" in frame.columns else pd.Series(np.nan, index=frame.index, dtype=float)
        named = ids.notna().to_numpy()
        updates = []
        for i in np.flatnonzero(named):  # every id and version checked before anything is written
            row = frame.iloc[i]
            sid = int(row["id"])
            now = self.db.get(self.store, sid)  # (AnnotationError: no such selection in this store)
            if bool(now["deleted"]) and not bool(row.get("deleted", False)):
                raise AnnotationError(f"rows[{i}]: selection {sid} is deleted; restore it before editing it")
            if "version" in frame.columns and pd.notna(row["version"]) and int(row["version"]) != int(now["version"]):
                raise ConflictError(
                    f"rows[{i}]: selection {sid} was changed by {now['modified_by']} since version "
                    f"{int(row['version'])}; nothing was saved"
                )
            fields = {f: row[f] for f in FIELDS if f in frame.columns and not _same(row[f], now[f])}
            updates.append((sid, int(now["version"]), bool(row.get("deleted", False)), fields))
        try:
            added, changed = self.db.edit_many(
                self.store,
                add=frame[~named].drop(columns=["id"], errors="ignore") if (~named).any() else None,
                update=[(sid, version, fields) for sid, version, delete, fields in updates if fields and not delete],
                delete=[(sid, version) for sid, version, delete, _ in updates if delete],
            )
        except AnnotationError as err:
            self.poll()
            raise type(err)(f"{err} (nothing was saved)") from None
        self.poll()
        return added, changed

    # ------------------------------------------------------------------ review
    def channel_label(self) -> str:
        """The channel shown, as the database names it: its label in a multichannel store, else ``"0"``."""
        channels = self.state.atlas.channels
        return channels[self.state.channel] if channels and self.state.channel is not None else "0"

    def go_to(self, sid: int, *, move: bool = True) -> bool:
        """Make selection ``sid`` current; with ``move``, show it with context (:func:`context_view`), in one change.

        Returns False (nothing changes) if the store has no such live selection.
        """
        if sid not in self._rows.index:
            return False
        row = self._rows.loc[sid]
        changes: dict[str, object] = {"selection": int(sid)}
        if move:
            state = self.state
            (t0, t1), freq = context_view(
                row["start"], row["end"], row["low_hz"], row["high_hz"], state.freq_range, self._nyquist
            )
            changes["time_range"] = state.clamped_time(t0, t1)
            changes["freq_range"] = freq
            channels = state.atlas.channels
            if channels and row["channel"] in channels:
                changes["channel"] = channels.index(row["channel"])
        self.state.param.update(changes)
        self._want_measured([int(sid)])
        return True

    def _neighbour(self, sid: int | None, step: int) -> int | None:
        rows = self._shown_rows()
        if not len(rows):
            return None
        if sid is None or sid not in rows.index:
            starts = rows["start"].to_numpy()
            t0 = self.state.time_range[0]
            i = int(np.searchsorted(starts, t0, side="left"))
            i = i if step > 0 else i - 1
        else:
            i = rows.index.get_loc(sid) + step
        return int(rows.index[i]) if 0 <= i < len(rows) else None

    def step(self, step: int) -> int | None:
        """Show the next (``step`` +1) or previous (-1) selection in time; returns its id (None at either end).

        Without a current selection, the first one starting at or after the view's start (or the last before it).
        """
        sid = self._neighbour(self.state.selection, step)
        if sid is None:
            self.message.say("No later selection." if step > 0 else "No earlier selection.")
            return None
        self.go_to(sid)
        return sid

    def _current_changed(self, *_) -> None:
        # (Within the state's change: nothing here may redraw the plot, whose image follows the same change.
        # The boxes and ticks follow ``selection`` themselves; it is measured once the change is done.)
        self._show_current_in_table()
        self._show_readout()

    def _show_readout(self) -> None:
        sid = self.state.selection
        if sid is None or sid not in self._rows.index:
            self.readout.object = "<i>no current selection</i>"
            return
        row = self._rows.loc[sid]
        span = (row["end"] - row["start"]) / np.timedelta64(1, "s")
        what = html.escape(row["label"]) if row["label"] else "<i>no label</i>"
        lines = [
            f"<b>selection {sid}</b> · {what} · by {html.escape(row['author'])}",
            f"{typed_time(row['start'])} → {typed_time(row['end'])[11:]} ({span:,.3f} s)",
            f"{row['low_hz']:,.1f} – {row['high_hz']:,.1f} Hz" + (f" · channel {html.escape(row['channel'])}"
                                                                  if self.state.atlas.channels else ""),
        ]  # fmt: skip
        values = row["measurements"]
        if isinstance(values, dict) and "error" not in values:
            units = html.escape(str(values.get("units", "")))
            peak, top = _number(values.get("Peak Freq (Hz)")), _number(values.get("Max Power (dB)"))
            inband, snr = _number(values.get("Inband Power (dB)")), _number(values.get("SNR (dB)"))
            lines.append(f"peak {peak:,.1f} Hz · max {top:.1f} dB · inband {inband:.1f} {units} · SNR {snr:.1f} dB")
        elif sid in self._unmeasurable or isinstance(values, dict):
            why = self._unmeasurable.get(sid) or values.get("error", "")
            lines.append(f"not measured: {html.escape(str(why))}")
        if row["notes"]:
            lines.append(f"notes: {html.escape(row['notes'])}")
        self.readout.object = "".join(f'<div class="selection-line">{line}</div>' for line in lines)

    # ------------------------------------------------------------------ measuring
    def _measure_page(self) -> None:
        view = self.table.current_view if self.table.value is not None else None
        if not isinstance(view, pd.DataFrame) or not len(view):
            return
        start = (self.table.page - 1) * PAGE_SIZE
        self._want_measured([int(i) for i in view.index[start : start + PAGE_SIZE]])

    def _want_measured(self, ids: list[int]) -> None:
        rows = self._rows
        wanted = [
            sid
            for sid in ids
            if sid in rows.index and rows.at[sid, "measurements"] is None and sid not in self._unmeasurable
        ]
        current = self.state.selection
        # The current selection first, then the page's in the table's order.
        self._pending = sorted(dict.fromkeys([*wanted, *self._pending]), key=lambda s: s != current)
        if not self._pending or self._measuring:
            return
        if in_served_session():
            self._measuring = True
            self._measure_next(pn.state.curdoc)
        else:
            self.measure_pending()

    def _boxes_to_measure(self, n: int) -> list[tuple]:
        """The next ``n`` waiting selections as ``(id, version, start, end, low, high, channel index)``."""
        channels, out = self.state.atlas.channels, []
        while self._pending and len(out) < n:
            sid = self._pending.pop(0)
            if sid in self._rows.index:
                row = self._rows.loc[sid]
                channel = channels.index(row["channel"]) if row["channel"] in channels else None
                out.append((sid, int(row["version"]), row["start"], row["end"], row["low_hz"], row["high_hz"], channel))
        return out

    def _measure_boxes(self, boxes: list[tuple]) -> dict[int, tuple]:
        """``{id: (values, version)}`` of each box: ``measure``'s dict, ``{"error": why}``, or an exception.

        Touches nothing of the session: on a server it runs on the measuring thread.
        """
        results = {}
        for sid, version, start, end, low, high, channel in boxes:
            try:
                values = measure(self.state.atlas, time=(start, end), freq=(low, high), channel=channel)
            except AtlasError as err:
                values = {"error": str(err).splitlines()[0][:300]}
            except Exception as err:  # a read that failed (a corrupt chunk): said once, not cached
                values = err
            results[sid] = (values, version)
        return results

    def _measure_next(self, doc) -> None:
        """Measure the next few waiting selections on the measuring thread; keep the results on the page's turn.

        The server's loop goes on meanwhile (a selection of minutes takes a second to measure): pans,
        keys and the others' changes are answered while it is measured.
        """
        boxes = self._boxes_to_measure(4)
        if not boxes or self.db is None:
            self._measuring = False
            return
        future = _MEASURING.submit(self._measure_boxes, boxes)

        def measured(future) -> None:
            if self.db is None:  # the page has gone (or shows another store) meanwhile
                return
            with set_curdoc(doc):
                self._keep_measured(future.result())
                self._measure_next(doc)

        future.add_done_callback(lambda future: doc.add_next_tick_callback(lambda: measured(future)))

    def measure_pending(self, budget: float | None = None) -> int:
        """Measure the selections waiting for it (for at most ``budget`` seconds); returns how many were.

        Each result is cached in the database (:meth:`Annotations.set_measurements`, against
        the version measured: an edit meanwhile wins); a box that cannot be measured
        (all gap, narrower than a frame) is cached with its reason as ``{"error": ...}``.
        A served page measures on a thread of its own instead (see ``_measure_next``).
        """
        started, results = time.perf_counter(), {}
        while self._pending and (budget is None or time.perf_counter() - started < budget):
            results.update(self._measure_boxes(self._boxes_to_measure(1)))
        return self._keep_measured(results)

    def _keep_measured(self, results: dict[int, tuple]) -> int:
        """Cache measurements (see :meth:`measure_pending`); returns how many there were."""
        cached = {}
        for sid, (values, version) in results.items():
            if isinstance(values, Exception):
                report(values, self.state, f"measure selection {sid}")
                self._unmeasurable[sid] = "not readable"
            else:
                cached[sid] = (values, version)
        done = len(cached)
        if not cached:
            return done
        if self.writable:
            for sid, (values, version) in cached.items():
                try:
                    self.db.set_measurements(self.store, sid, values, version=version)
                except AnnotationError:  # changed meanwhile (its new box is measured when shown), or locked
                    continue
            self.poll()
            self._tell_the_others()
        else:  # kept in this session only
            for sid, (values, _) in cached.items():
                self._rows.at[sid, "measurements"] = values
            self._changed(list(cached))
        return done

    # ------------------------------------------------------------------ labels
    def _show_labels(self, *_) -> None:
        names = self.labels
        self.filter.options = {html.escape(NO_LABEL): "", **{html.escape(n): n for n in names}}
        self.filter.value = [v for v in self.filter.value if v == "" or v in names]
        self.rename_from.options = {html.escape(n): n for n in names}

    def keys_text(self) -> str:
        """The label keys as the panel lists them (escaped): ``1 click · 2 whistle · ...``."""
        keys = " · ".join(f"<b>{i}</b> {html.escape(n)}" for i, n in enumerate(self.labels[:9], start=1))
        return keys or "<i>no labels yet: add one</i>"

    # ------------------------------------------------------------------ the ruler and clicks
    def _ruler_switched(self, *_) -> None:
        self.ruler_points = []
        self.ruler_readout.object = "click two points on the spectrogram" if self.ruler else ""

    def tapped(self, t: np.datetime64, f: float) -> None:
        """A click on the spectrogram: a ruler point with the ruler on, else the box under it becomes current."""
        if self.ruler:
            points = self.ruler_points if len(self.ruler_points) < 2 else []
            self.ruler_points = [*points, (np.datetime64(t, "ns"), float(f))]
            if len(self.ruler_points) == 2:
                self.ruler_readout.object = html.escape(ruler_text(*self.ruler_points))
            else:
                self.ruler_readout.object = "click the second point"
            return
        if self.db is None:
            return
        under = self._in_view(t, t + _NS)
        under = under[(under["low_hz"] <= f) & (under["high_hz"] >= f)]
        if len(under):
            area = (under["end"] - under["start"]).to_numpy() / _NS * (under["high_hz"] - under["low_hz"]).to_numpy()
            self.go_to(int(under["id"].iloc[int(np.argmin(area))]), move=False)

    def box_drawn(self, start: np.datetime64, end: np.datetime64, low: float, high: float) -> None:
        """A box drawn with the box-select tool: a new selection (the ruler on: nothing)."""
        if not self.ruler:
            self.add(start, end, low, high)

    # ------------------------------------------------------------------ overlays
    def _in_view(self, t0: np.datetime64, t1: np.datetime64, limit: int | None = None) -> pd.DataFrame:
        """The selections over ``[t0, t1)`` on the channel shown, through the label filter, from the database.

        At most ``limit``: when more lie there, the first of each of :data:`SLICES` equal stretches of the
        span (so a zoomed-out view shows boxes all along it, not its first minutes). None should the database
        not answer (the log says why).
        """
        query = {"channel": self.channel_label(), "labels": self.label_filter or None}
        try:
            if limit is None:
                return self.db.selections(self.store, start=t0, end=t1, **query)
            return self.db.spread(self.store, start=t0, end=t1, limit=limit, slices=SLICES, **query)
        except AnnotationError as err:
            log.warning("%s: could not read the selections in view: %s", self.store, err)
            return _no_rows().reset_index()

    def boxes(self, time_range, selection=None, channel=None, revision=None, label_filter=None, labels=None):
        """The selections in view as boxes, coloured by label, the current one outlined (an overlay's callback).

        Read from the database for the view, at most :data:`MAX_BOXES` of them (spread over the view when it
        holds more), and the current one.
        """
        t0, t1 = time_range
        colors = label_colors(self.labels)
        empty = pd.DataFrame(
            {"x0": [], "y0": [], "x1": [], "y1": [], "color": pd.Series([], dtype=object), "width": []}
        )
        drawn = self._in_view(t0, t1, MAX_BOXES) if self.db is not None else None
        if drawn is not None and selection is not None and selection not in drawn["id"].to_numpy():
            here = self._rows.loc[[selection]] if selection in self._rows.index else self._rows.iloc[:0]
            here = here[(here["channel"] == self.channel_label()) & (here["end"] > t0) & (here["start"] < t1)]
            drawn = pd.concat([drawn, here.reset_index()]) if len(here) else drawn
        if drawn is None or not len(drawn):
            frame = empty.astype({"x0": "datetime64[ns]", "x1": "datetime64[ns]"})
            texts = ([], [], np.array([], dtype=object), np.array([], dtype=object))
        else:
            is_current = (drawn["id"] == selection).to_numpy()
            frame = pd.DataFrame(
                {
                    "x0": drawn["start"].to_numpy(),
                    "y0": drawn["low_hz"].to_numpy(),
                    "x1": drawn["end"].to_numpy(),
                    "y1": drawn["high_hz"].to_numpy(),
                    "color": [label_color(label, colors) for label in drawn["label"]],
                    "width": np.where(is_current, 3.0, 1.5),
                }
            )
            texts = ([], [], np.array([], dtype=object), np.array([], dtype=object))
            if len(drawn) <= MAX_LABELS:
                text = [label or (f"#{i}" if c else "") for label, i, c in zip(drawn["label"], drawn["id"], is_current,
                                                                                strict=True)]  # fmt: skip
                keep = [bool(t) for t in text]
                texts = (
                    frame["x0"].to_numpy()[keep],
                    frame["y1"].to_numpy()[keep],
                    [t for t, k in zip(text, keep, strict=True) if k],
                    frame["color"].to_numpy()[keep],
                )
        kdims = ["x0", "y0", "x1", "y1"]
        # A dark edge under each line (wider under the current one's): the boxes show on bright parts too.
        halo = hv.Rectangles(frame.assign(width=frame["width"] * 2 + 1), kdims=kdims, vdims=["width"]).opts(
            backend="bokeh", fill_alpha=0, line_color="black", line_alpha=0.6, line_width="width", apply_ranges=False
        )
        rects = hv.Rectangles(frame, kdims=kdims, vdims=["color", "width"]).opts(
            backend="bokeh", fill_alpha=0, line_color="color", line_width="width", apply_ranges=False
        )
        labels = hv.Labels(
            {"time": texts[0], "freq": texts[1], "text": texts[2], "color": texts[3]},
            kdims=["time", "freq"],
            vdims=["text", "color"],
        ).opts(
            backend="bokeh",
            text_color="color",
            text_font_size="9pt",
            text_align="left",
            text_baseline="bottom",
            xoffset=0,
            apply_ranges=False,
        )
        return halo * rects * labels

    def boxes_overlay(self):
        """The overlay of :meth:`boxes` for :meth:`~dashboard.spectrogram.SpectrogramView.overlay`."""
        # The state's own time range, not visible_after_image's: that one changes while the image is drawn
        # (at once outside a server), and would have the plot draw the image again.
        streams = [
            state_stream(self.state, ["time_range", "selection", "channel"]),
            hv.streams.Params(self, ["revision", "label_filter", "labels"]),
        ]
        return self.boxes, streams

    def ruler_marks(self, ruler_points) -> hv.Overlay:
        """The ruler's points, the line between them and its reading (an overlay's callback)."""
        times = np.array([p[0] for p in ruler_points], dtype="datetime64[ns]")
        freqs = np.array([p[1] for p in ruler_points], dtype=float)
        line = hv.Path([{"time": times, "freq": freqs}] if len(times) == 2 else [], kdims=["time", "freq"]).opts(
            backend="bokeh", color=RULER_COLOR, line_width=2, apply_ranges=False
        )
        points = hv.Points((times, freqs), kdims=["time", "freq"]).opts(
            backend="bokeh", color=RULER_COLOR, size=8, apply_ranges=False
        )
        text = [ruler_text(*ruler_points)] if len(times) == 2 else []
        middle = ([times[0] + (times[1] - times[0]) / 2], [freqs.mean()]) if text else ([], [])
        reading = hv.Labels((*middle, text), kdims=["time", "freq"], vdims=["text"]).opts(
            backend="bokeh", text_color=RULER_COLOR, text_font_size="11pt", text_baseline="bottom", apply_ranges=False
        )
        return line * points * reading

    def ruler_overlay(self):
        """The overlay of :meth:`ruler_marks`."""
        return self.ruler_marks, [hv.streams.Params(self, ["ruler_points"])]

    def ticks(self, revision=None, label_filter=None, selection=None) -> hv.Overlay:
        """Ticks on the overview strip where selections start (one per strip column at most), the current one too."""
        first, last = self.state.atlas.time_range
        nyquist = self._nyquist
        rows = self._shown_rows()
        starts = rows["start"].to_numpy() if len(rows) else np.array([], dtype="datetime64[ns]")
        edges = first + (last - first) * np.linspace(0, 1, 1201)
        if len(starts):
            counts, _ = np.histogram(starts.astype("int64"), bins=edges.astype("int64"))
            at = edges[:-1][counts > 0] + (edges[1] - edges[0]) / 2
        else:
            at = np.array([], dtype="datetime64[ns]")
        ticks = hv.Segments(
            (at, np.full(len(at), nyquist * 0.6), at, np.full(len(at), nyquist)), kdims=["x0", "y0", "x1", "y1"]
        ).opts(backend="bokeh", color="#00e5ff", line_width=1.5, apply_ranges=False)
        here = rows.loc[[selection]] if selection is not None and selection in rows.index else rows.iloc[:0]
        mark = here["start"].to_numpy() if len(here) else np.array([], dtype="datetime64[ns]")
        current = hv.Segments(
            (mark, np.zeros(len(mark)), mark, np.full(len(mark), nyquist)), kdims=["x0", "y0", "x1", "y1"]
        ).opts(backend="bokeh", color="#ffee00", line_width=3, apply_ranges=False)
        return ticks * current

    def ticks_overlay(self):
        """The overlay of :meth:`ticks` for :meth:`~dashboard.overview.Overview.overlay`."""
        return self.ticks, [hv.streams.Params(self, ["revision", "label_filter"]),
                            state_stream(self.state, ["selection"])]  # fmt: skip

    # ------------------------------------------------------------------ the session
    def start_polling(self) -> None:
        """Read the others' changes once a second, for the life of this page (served pages only).

        The pages of this server process are also told of each other's edits at once (see
        :meth:`_tell_the_others`); the polls bring those of other processes and other programs.
        """
        if self.db is not None and self._polling is None and in_served_session():
            self._polling = pn.state.add_periodic_callback(self.poll, period=POLL_MS)
            self._doc = pn.state.curdoc
            _SERVED.add(self)

    def _tell_the_others(self) -> None:
        """Have the other pages of this process on the same database and store read it now, each on its own turn."""
        for other in list(_SERVED):
            if other is self or other.db is None or other.store != self.store or other.db.path != self.db.path:
                continue
            doc = other._doc

            def read(other=other, doc=doc) -> None:
                if other.db is not None:
                    with set_curdoc(doc):
                        other.poll()

            doc.add_next_tick_callback(read)

    def close(self) -> None:
        """Stop reading changes and close the database (the page is gone, or shows another store)."""
        _SERVED.discard(self)
        if self._polling is not None:
            self._polling.stop()
            self._polling = None
        if self.db is not None:
            self.db.close()
            self.db = None
            self.writable = False

    def keys(self) -> KeyboardShortcuts:
        """The review keys: n/p always; 1..9, Delete (or Backspace) and u where selections can be edited."""
        actions = {"n": lambda: self.step(+1), "p": lambda: self.step(-1)}
        if self.writable:
            actions.update({str(k): (lambda k=k: self.label_key(k)) for k in range(1, 10)})
            actions.update({"Delete": self.delete, "Backspace": self.delete, "u": self.undo})
        return KeyboardShortcuts(actions)

    def __panel__(self) -> pn.viewable.Viewable:
        ruler = pn.widgets.Toggle.from_param(self.param.ruler, label="ruler", width=70, css_classes=["ruler-toggle"])
        if self.db is None:  # the ruler needs no database
            return pn.Column(self.message, pn.Row(ruler, self.ruler_readout), sizing_mode="stretch_width")
        band = pn.widgets.Button(label="band from selection", width=150, css_classes=["band-from-selection"])
        band.on_click(lambda e: self.band_from_selection())
        edit = []
        if self.writable:
            delete = pn.widgets.Button(label="delete", width=70, css_classes=["selection-delete"])
            delete.on_click(lambda e: self.delete())
            undo = pn.widgets.Button(label="undo delete", width=100, css_classes=["selection-undo"])
            undo.on_click(lambda e: self.undo())
            add = pn.widgets.Button(label="add label", width=90)
            add.on_click(lambda e: self.add_label(self.new_label.value))
            rename = pn.widgets.Button(label="rename", width=70)
            rename.on_click(lambda e: self.rename_label(self.rename_from.value, self.rename_to.value))
            labels = pn.Card(
                pn.Row(self.new_label, add),
                pn.Row(self.rename_from, self.rename_to, rename),
                title="labels: add, rename",
                collapsed=True,
                sizing_mode="stretch_width",
                css_classes=["label-editor"],
            )
            edit = [pn.Row(delete, undo, band), labels]
        else:
            edit = [pn.Row(band)]
        keys = pn.pane.HTML(
            pn.bind(lambda labels: "keys: " + self.keys_text() + " · <b>n</b>/<b>p</b> next/previous"
                    + (" · <b>Delete</b> · <b>u</b> undo" if self.writable else ""), self.param.labels),
            styles={"font-size": "0.8em"}, css_classes=["label-keys"],
        )  # fmt: skip
        hint = "draw a box with the box-select tool to add a selection" if self.writable else ""
        return pn.Card(
            self.message,
            pn.pane.HTML(f"<i>{hint}</i>", styles={"font-size": "0.8em"}) if hint else pn.Spacer(height=0),
            self.readout,
            pn.Row(ruler, self.ruler_readout),
            *edit,
            self.filter,
            self.count,
            self.table,
            keys,  # (below the table: a longer vocabulary never moves it, which would close a cell being edited)
            self.keys(),
            title="selections",
            collapsed=False,
            sizing_mode="stretch_width",
            css_classes=["selections"],
        )
