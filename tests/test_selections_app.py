"""The selections panel: its logic on a real store and SQLite file, and a real server in Chromium.

The Python tests drive :class:`~dashboard.selections.SelectionsPanel` through a real
:class:`~dashboard.explorer.SpectrogramExplorer` on the generated demo deployment and an
annotations database in a temporary folder. The browser tests run ``spectral-atlas serve
--annotations FILE`` and draw, label, review, edit and delete with the mouse and keys, in one
page and in two; screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect
from test_browser import (  # noqa: F401  (the two fixtures launch Debian's Chromium)
    IDLE,
    _free_port,
    _info_text,
    browser_context_args,
    browser_type_launch_args,
    frame,
    link,
    open_app,
    plot_ranges,
    running,
    settled,
    shot,
    text_of,
    wait_for,
)

from data_access.annotations import AnnotationError, ConflictError, open_annotations
from data_access.demo import make_demo

S = np.timedelta64(1, "s")

# Bokeh 3.9's ColumnDataSource.from_df (every Panel table's data) calls reset_index(inplace=True), which
# pandas 3.1 deprecates: Bokeh's to change, nothing of ours (pyproject's filterwarnings is the place for it).
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index:DeprecationWarning")


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("demo"), hours=0.1, progress=False)  # 6 min, 0..32 kHz


# =========================================================================================== in Python
@pytest.fixture
def explorer(demo_store, tmp_path):
    import holoviews as hv

    from dashboard.explorer import SpectrogramExplorer

    hv.extension("bokeh")
    return SpectrogramExplorer(demo_store, annotations=str(tmp_path / "a.sqlite"))


def _at(explorer, seconds: float) -> np.datetime64:
    return explorer.state.atlas.time_range[0] + np.timedelta64(int(seconds * 1e9), "ns")


def test_a_view_with_context_is_the_span_and_half_of_it_each_side_and_holds_the_band():
    from dashboard.selections import context_view

    t0 = np.datetime64("2026-01-15T00:01:00", "ns")
    (a, b), freq = context_view(t0, t0 + 2 * S, 12_000, 18_000, (10_000, 20_000), 32_000)
    assert (a, b) == (t0 - S, t0 + 3 * S) and freq == (10_000, 20_000)  # the band fits: kept
    _, freq = context_view(t0, t0 + 2 * S, 12_000, 18_000, (0, 15_000), 32_000)
    assert freq == (0, 18_600)  # widened to hold it, a tenth of the band to spare
    _, freq = context_view(t0, t0 + 2 * S, 100, 31_000, (5_000, 6_000), 32_000)
    assert freq == (0, 32_000)  # within 0..Nyquist


def test_the_ruler_reads_milliseconds_and_hertz_between_two_points():
    from dashboard.selections import ruler_reading, ruler_text

    t0 = np.datetime64("2026-01-15T00:01:00", "ns")
    a, b = (t0, 1000.0), (t0 + np.timedelta64(1_234_500, "ns"), 250.0)
    assert ruler_reading(a, b) == (1.2345, -750.0)
    assert ruler_text(b, a) == "Δt 1.2 ms · Δf 750.0 Hz"


def test_a_box_becomes_a_selection_that_is_current_measured_and_drawn_in_view_only(explorer):
    panel = explorer._selections
    explorer.state.set_time(_at(explorer, 0), _at(explorer, 60))
    shown = explorer.state.time_range, explorer.state.freq_range
    explorer._spectrogram.__panel__()  # (makes the plot's streams)
    explorer._spectrogram.box_stream.event(bounds=(_at(explorer, 10), 12_000.0, _at(explorer, 12), 40_000.0))
    (sid,) = explorer.selections["id"]
    row = explorer.selections.iloc[0]
    assert (row["start"], row["end"], row["low_hz"], row["high_hz"]) == (
        _at(explorer, 10),
        _at(explorer, 12),
        12_000,
        32_000,
    )
    assert row["channel"] == "0" and row["author"] and row["label"] == ""
    assert explorer.state.selection == sid  # current, and the view stays where it was
    assert (explorer.state.time_range, explorer.state.freq_range) == shown
    assert row["measurements"]["Delta Time (s)"] == 2.0  # measured at once outside a server, and cached
    assert panel.table.value.loc[sid, "Peak Freq (Hz)"] == row["measurements"]["Peak Freq (Hz)"]
    assert explorer.bands.keys() == {"fin whale", "shipping", "dolphin whistles", "clicks", "broadband"}  # no band
    boxes = panel.boxes(explorer.state.time_range, selection=sid)
    rects = boxes.get(1)
    assert len(rects) == 1 and rects.dframe()["width"].tolist() == [3.0] and len(boxes.get(0)) == 1  # outlined
    far = (_at(explorer, 200), _at(explorer, 260))
    assert len(panel.boxes(far, selection=sid).get(1)) == 0  # out of view: not drawn
    ticks = panel.ticks(selection=sid)
    assert len(ticks.get(0)) == 1 and len(ticks.get(1)) == 1


def test_a_view_holding_more_selections_than_are_drawn_shows_boxes_all_along_it(explorer):
    from dashboard.selections import MAX_BOXES

    panel = explorer._selections
    starts = _at(explorer, 1) + np.arange(3000) * np.timedelta64(110, "ms")  # 1 s .. 331 s
    rows = pd.DataFrame({"start": starts, "end": starts + np.timedelta64(50, "ms"), "low_hz": 100.0, "high_hz": 900.0})
    panel.db.add_many(panel.store, rows)
    panel.poll()
    t0, t1 = explorer.state.atlas.time_range
    drawn = panel.boxes((t0, t1)).get(1).dframe()
    assert len(drawn) <= MAX_BOXES
    share = (drawn["x0"] - t0) / (t1 - t0)
    assert share.min() < 0.05 and share.max() > 0.85  # from the start of the view to its end, not its first part
    assert len(panel.boxes((_at(explorer, 100), _at(explorer, 101))).get(1)) == 10  # a view of fewer: all of them


def test_n_and_p_step_in_time_show_each_with_context_and_read_one_image_per_step(explorer, monkeypatch):
    import panel as pn

    panel = explorer._selections
    pn.panel(explorer).get_root()
    spans = [(100, 101, 1000, 2000), (20, 22, 12_000, 18_000), (50, 50.5, 200, 400)]
    for a, b, lo, hi in spans:
        panel.add(_at(explorer, a), _at(explorer, b), lo, hi)
    explorer.state.param.update(selection=None)
    explorer.state.set_time(_at(explorer, 0), _at(explorer, 10))
    explorer.state.set_freq(10_000, 20_000)
    atlas = explorer.state.atlas
    reads = []
    real_view = type(atlas).view
    monkeypatch.setattr(atlas, "view", lambda *a, **k: reads.append(k) or real_view(atlas, *a, **k))
    expected = [
        ((19, 23), (10_000, 20_000)),  # the first after the view's start; its band fits: kept
        ((49.75, 50.75), (180, 20_000)),  # 200..400 Hz is below: widened to hold it, 20 Hz to spare
        ((99.5, 101.5), (180, 20_000)),
    ]
    for (t0, t1), freq in expected:
        reads.clear()
        sid = panel.step(+1)
        assert explorer.time_range == (_at(explorer, t0), _at(explorer, t1))
        assert explorer.freq_range == pytest.approx(freq)
        assert explorer.state.selection == sid
        assert len([r for r in reads if r.get("width") != 400]) == 1  # one image (not one per changed parameter)
    assert panel.step(+1) is None and "No later selection" in panel.message.text
    assert panel.step(-1) == explorer.selections["id"].iloc[1]
    assert explorer.time_range == (_at(explorer, 49.75), _at(explorer, 50.75))


def test_label_keys_filter_rename_and_markup_stay_text(explorer):
    panel = explorer._selections
    markup = "<img src=x onerror=alert(1)>"
    for name in ("whistle", "click", markup):
        panel.add_label(name)
    assert panel.labels == sorted(["whistle", "click", markup])
    a = panel.add(_at(explorer, 10), _at(explorer, 11), 12_000, 18_000)
    panel.label_key(3)  # the third label, sorted: whistle
    b = panel.add(_at(explorer, 30), _at(explorer, 31), 1000, 2000)
    panel.label_key(1)  # the first: the markup
    panel.label_key(9)
    assert "No label 9" in panel.message.text
    frame = explorer.selections.set_index("id")
    assert frame.at[a, "label"] == "whistle" and frame.at[b, "label"] == markup
    assert "&lt;img" in panel.keys_text() and "<img" not in panel.keys_text()
    assert "<img" not in panel.readout.object and "&lt;img" in panel.readout.object
    assert all("<img" not in option for option in panel.filter.options)
    assert panel.table.formatters["Label"] == panel.table.formatters["Notes"] == "plaintext"
    panel.filter.value = ["whistle"]
    assert list(panel.table.value.index) == [a]
    assert panel.step(+1) is None or explorer.state.selection == a  # n/p only through the filter
    assert len(panel.boxes((_at(explorer, 0), _at(explorer, 60))).get(1)) == 1
    panel.filter.value = []
    assert panel.rename_label("whistle", "upsweep")
    assert explorer.selections.set_index("id").at[a, "label"] == "upsweep" and "whistle" not in panel.labels
    long = "x" * 81
    assert not panel.set_label(long, a) and "at most 80 characters" in panel.message.text


def test_delete_and_undo_and_a_band_from_the_selection(explorer):
    panel = explorer._selections
    a = panel.add(_at(explorer, 10), _at(explorer, 11), 12_000, 18_000, label="whistle")
    b = panel.add(_at(explorer, 30), _at(explorer, 31), 1000, 2000)
    panel.go_to(a)
    assert panel.band_from_selection() == "whistle"
    assert explorer.bands["whistle"] == (12_000, 18_000)
    assert panel.band_from_selection() == "whistle 2"  # never a silent replacement
    assert panel.delete()
    assert list(explorer.selections["id"]) == [b] and explorer.state.selection == b  # review goes on
    assert list(panel.table.value.index) == [b]
    assert panel.undo() == a
    assert list(explorer.selections["id"]) == [a, b] and explorer.state.selection == a
    assert panel.undo() is None and "Nothing to undo" in panel.message.text


def test_a_notes_edit_in_the_table_is_saved_and_a_stale_one_is_refused_and_reloaded(explorer, demo_store, tmp_path):
    from types import SimpleNamespace

    from dashboard.explorer import SpectrogramExplorer

    panel = explorer._selections
    sid = panel.add(_at(explorer, 10), _at(explorer, 11), 12_000, 18_000)
    other = SpectrogramExplorer(demo_store, annotations=str(tmp_path / "a.sqlite"))._selections  # a second session
    row = int(panel.table.value.index.get_loc(sid))
    panel.table.value.loc[sid, "Notes"] = "**bold**"  # (what the page's edit does to the table's value)
    panel._edited(SimpleNamespace(row=row, column="Notes", value="**bold**"))
    assert explorer.selections.set_index("id").at[sid, "notes"] == "**bold**"
    assert other.poll() and other.rows.at[sid, "notes"] == "**bold**"  # the other session's next poll has it

    # Both edit before either reads the other's change: the later edit is refused, the row shows the first.
    panel._edited(SimpleNamespace(row=row, column="Notes", value="first"))
    other.table.value.loc[sid, "Notes"] = "second"
    other._edited(SimpleNamespace(row=row, column="Notes", value="second"))
    assert explorer.selections.set_index("id").at[sid, "notes"] == "first"
    assert other.message.text.startswith(f"⚠ selection {sid} was changed by ")
    assert "your edit was not saved" in other.message.text and "\n" not in other.message.text
    assert other.table.value.loc[sid, "Notes"] == "first"  # reloaded
    other.close()


def test_two_sessions_see_each_others_adds_changes_and_deletes_at_their_next_poll(explorer, demo_store, tmp_path):
    from dashboard.explorer import SpectrogramExplorer

    one = explorer._selections
    two = SpectrogramExplorer(demo_store, annotations=str(tmp_path / "a.sqlite"))
    other = two._selections
    sid = one.add(_at(explorer, 10), _at(explorer, 11), 12_000, 18_000)
    assert sid not in other.rows.index
    assert other.poll() and sid in other.table.value.index
    revision = other.revision
    assert not other.poll() and other.revision == revision  # nothing new: nothing redrawn
    one.set_label("whistle", sid)
    other.poll()
    assert other.table.value.at[sid, "Label"] == "whistle" and "whistle" in other.labels
    two.state.selection = sid
    one.delete(sid)
    other.poll()
    assert sid not in other.table.value.index and two.state.selection is None
    assert other.message.text == f"Selection {sid} was deleted by {one.db.author}."
    two.close()


def test_assigning_selections_adds_and_replaces_in_the_database(explorer):
    t = explorer.state.atlas.time_range[0]
    explorer.selections = pd.DataFrame(
        {"start": [t + 10 * S, t + 20 * S], "end": [t + 11 * S, t + 21 * S], "low_hz": [100.0, 200.0],
         "high_hz": [300.0, 400.0], "label": ["a", "b"]}
    )  # fmt: skip
    frame = explorer.selections
    assert frame["label"].tolist() == ["a", "b"] and len(explorer._selections.table.value) == 2
    frame.loc[0, "notes"] = "seen"
    frame.loc[1, "high_hz"] = 500.0
    new = {"start": t + 30 * S, "end": t + 31 * S, "low_hz": 1.0, "high_hz": 2.0, "label": "c"}
    explorer.selections = pd.concat([frame, pd.DataFrame([new])], ignore_index=True)
    after = explorer.selections
    assert after["notes"].tolist() == ["seen", "", ""] and after["high_hz"].tolist() == [300.0, 500.0, 2.0]
    assert after["version"].tolist() == [2, 2, 1]
    explorer.selections = after.iloc[:1]  # a frame that leaves rows out deletes nothing
    assert len(explorer.selections) == 3
    with pytest.raises(ConflictError, match="was changed by .* since version 1; nothing was saved"):
        explorer.selections = frame.assign(notes="stale")  # versions of before the edit
    gone = after.iloc[[2]].assign(deleted=True)
    explorer.selections = gone
    assert explorer.selections["label"].tolist() == ["a", "b"]
    with pytest.raises(AnnotationError, match="no selection 999"):
        explorer.selections = after.iloc[:1].assign(id=999)
    # One assignment is one transaction: a bad last row leaves the earlier edits and additions unsaved.
    before = explorer.selections
    bad = pd.concat([before.assign(notes="all or nothing"), pd.DataFrame([new])], ignore_index=True)
    bad.loc[1, "end"] = bad.loc[1, "start"] - S
    with pytest.raises(AnnotationError, match="nothing was saved"):
        explorer.selections = bad
    pd.testing.assert_frame_equal(explorer.selections, before)


def test_a_read_only_database_shows_its_selections_and_offers_no_editing(explorer, tmp_path):
    import panel as pn

    from dashboard.selections import SelectionsPanel
    from dashboard.spectrogram import SpectrogramView
    from dashboard.state import ExplorerState

    explorer._selections.add(_at(explorer, 10), _at(explorer, 11), 12_000, 18_000, label="whistle")
    state = ExplorerState(explorer.state.atlas)
    panel = SelectionsPanel(state, open_annotations(tmp_path / "a.sqlite", readonly=True))
    assert not panel.writable and panel.message.text == (
        "Selections are read-only here (opened read-only): they are shown, not edited."
    )
    assert len(panel.table.value) == 1 and panel.table.disabled
    assert set(panel.keys()._actions) == {"n", "p"}
    assert panel.add(_at(explorer, 20), _at(explorer, 21), 1, 2) is None and "read-only" in panel.message.text
    assert panel.step(+1) is not None  # review still works
    view = SpectrogramView(state=state, box_drawn=None, tapped=panel.tapped)
    pn.panel(view).get_root()
    assert not hasattr(view, "box_stream")  # no box-select tool
    panel.close()


def test_a_remote_store_without_annotations_keeps_no_selections_and_says_so(demo_store):
    import holoviews as hv
    from test_remote import StaticFiles

    from dashboard.explorer import SpectrogramExplorer

    hv.extension("bokeh")
    files = StaticFiles(demo_store.parent)
    try:
        explorer = SpectrogramExplorer(f"{files.url}/{demo_store.name}")
        panel = explorer._selections
        assert panel.db is None and panel.message.text.startswith("Selections are not kept for a store opened by URL")
        assert "--annotations" in panel.message.text
        assert len(explorer.selections) == 0 and not hasattr(explorer._spectrogram, "box_stream")
    finally:
        files.close()


def test_the_demo_opens_with_its_events_as_selections_from_the_default_database(demo_store):
    import holoviews as hv

    from dashboard.explorer import SpectrogramExplorer

    hv.extension("bokeh")
    explorer = SpectrogramExplorer(demo_store)  # ANNOTATIONS.sqlite beside the store, made by make_demo
    panel = explorer._selections
    assert panel.db.path == demo_store.parent / "ANNOTATIONS.sqlite" and panel.writable
    frame = explorer.selections
    assert len(frame) > 0 and set(frame["author"]) == {"demo"} and set(frame["label"]) <= set(panel.labels)
    assert len(panel.table.value) == len(frame)
    # The page shown is measured (outside a server: at once), or says why not (the demo's rain spans its gap).
    measured = explorer.selections["measurements"]
    assert all(isinstance(m, dict) for m in measured)
    assert any("Peak Freq (Hz)" in m for m in measured)
    panel.close()


def test_a_click_inside_a_box_makes_it_current_and_a_box_over_a_gap_says_why_it_is_not_measured(explorer):
    from dashboard.spectrogram import gap_spans

    panel = explorer._selections
    outer = panel.add(_at(explorer, 10), _at(explorer, 14), 1000, 9000)
    inner = panel.add(_at(explorer, 11), _at(explorer, 12), 2000, 3000)
    explorer.state.selection = None
    panel.tapped(_at(explorer, 11.5), 2500.0)
    assert explorer.state.selection == inner  # the smallest box under the click
    panel.tapped(_at(explorer, 13), 8000.0)
    assert explorer.state.selection == outer
    panel.tapped(_at(explorer, 30), 8000.0)
    assert explorer.state.selection == outer  # nothing there: nothing changes
    start, end = gap_spans(explorer.state.atlas.view(width=2000, height=10))[0]
    gap = panel.add(start + (end - start) / 4, end - (end - start) / 4, 1000, 2000)
    assert (
        explorer.selections.set_index("id")
        .at[gap, "measurements"]["error"]
        .endswith("falls in a gap of the recording: none of its frames has data")
    )
    assert "not measured: time range" in panel.readout.object
    assert np.isnan(panel.table.value.at[gap, "Peak Freq (Hz)"])


def test_serve_refuses_an_annotations_file_that_is_no_database_and_a_folder_that_is_not_there(demo_store, tmp_path):
    from dashboard.options import ServerOptions
    from dashboard.server import serve
    from data_access import ParameterError

    with pytest.raises(ParameterError, match="--annotations .* its folder does not exist"):
        ServerOptions(annotations=str(tmp_path / "nowhere" / "a.sqlite"))
    with pytest.raises(ParameterError, match="is a folder"):
        ServerOptions(annotations=str(tmp_path))
    assert ServerOptions(annotations="a.sqlite").annotations == str(Path("a.sqlite").resolve())
    text = tmp_path / "notes.txt"
    text.write_text("not a database, but long enough to be read as a header of one " * 10)
    with pytest.raises(AnnotationError, match="is not an SQLite database"):
        serve([str(demo_store)], annotations=str(text))


@pytest.mark.parametrize("text", ["abc", "0", "1" * 19, "１", "-3", "1e3", "<b>1</b>"])
def test_a_links_selection_must_be_a_positive_integer(state, text):
    from dashboard.links import apply_query, view_query

    assert apply_query(state, {"selection": text}) == [f"selection {text!r} is not a selection's number: ignored"]
    assert state.selection is None and "selection" not in view_query(state)
    assert apply_query(state, {"selection": "12"}) == [] and state.selection == 12  # (whether it exists: the panel's)
    assert view_query(state)["selection"] == "12"


# =========================================================================================== in Chromium
@pytest.fixture(scope="module")
def served(demo_store, tmp_path_factory, cli):
    """``serve --annotations FILE``: the URL and the database's path."""
    folder = tmp_path_factory.mktemp("served")
    db = folder / "shared.sqlite"
    port = _free_port()
    cmd = [*cli, "serve", str(demo_store), "--port", str(port), "--annotations", str(db)]
    with running(cmd, f"http://127.0.0.1:{port}/", folder / "serve.log") as url:
        yield url, db


def _open(page, url: str):
    open_app(page, url)
    page.locator(".selections-table .tabulator").wait_for()
    return page


def rows(page) -> list[dict[str, str]]:
    """The table's rows as shown: each cell's text by its column's field."""
    return page.evaluate("""() => {
        const out = [];
        const walk = (root) => {
            for (const row of root.querySelectorAll('.tabulator-row')) {
                const cells = {};
                for (const cell of row.querySelectorAll('.tabulator-cell')) {
                    const field = cell.getAttribute('tabulator-field');
                    if (field) cells[field] = cell.textContent;
                }
                out.push(cells);
            }
            for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
        };
        walk(document);
        return out;
    }""")


# The selection boxes the page draws: [x0, x1, y0, y1, line width, colour] of each quad but the current one's
# dark halo (x in ms since 1970, Hz; HoloViews sends a style all boxes share as one value, not a column).
BOXES = """() => {
    const out = [];
    for (const m of Bokeh.documents[0].all_models) {
        if (m.type !== "GlyphRenderer" || m.glyph.type !== "Quad") continue;
        const d = m.data_source.data instanceof Map ? m.data_source.data : new Map(Object.entries(m.data_source.data));
        const spec = (p) => { const v = m.glyph[p]; return v && typeof v === "object" ? v : {value: v}; };
        const at = (p, i) => (spec(p).field ? d.get(spec(p).field)[i] : spec(p).value);
        if (spec("line_color").value === "black") continue;
        (d.get("left") || []).forEach((x, i) => out.push(
            [x, d.get("right")[i], d.get("bottom")[i], d.get("top")[i], at("line_width", i), at("line_color", i)]));
    }
    return out;
}"""


def draw_box(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag with the box-select tool between two points given as fractions of the spectrogram's frame."""
    page.locator('[title="Box Select"]').first.click()
    box = frame(page)
    page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1], steps=12)
    page.mouse.up()


def test_a_box_drawn_with_the_mouse_is_a_selection_in_the_table_and_on_the_plot(page, served):
    url, db = served
    app = _open(page, url)
    before = len(rows(app))
    x0, x1 = plot_ranges(app)[:2]
    draw_box(app, (0.30, 0.30), (0.45, 0.55))
    wait_for(lambda: len(rows(app)) == before + 1)
    settled(app)
    shot(app, "40-selection-drawn")
    boxes = wait_for(lambda: app.evaluate(BOXES))
    (bx0, bx1, by0, by1, width, color) = boxes[-1]
    assert bx0 == pytest.approx(x0 + 0.30 * (x1 - x0), rel=1e-6, abs=(x1 - x0) * 0.01)
    assert width == 3.0  # the new selection is the current one: outlined
    assert app.errors == []


def _clear(db_path) -> None:
    """Delete every selection of the demo store in the served database (a test starts from none)."""
    with open_annotations(db_path, author="tester") as db:
        for row in db.selections("demo.zarr").itertuples():
            db.delete("demo.zarr", int(row.id), version=int(row.version))


def ms(t: np.datetime64) -> float:
    return float(np.datetime64(t, "ns").astype("int64")) / 1e6


def current(page) -> str:
    return text_of(page, ".selection-current")


def test_keys_label_and_step_with_context_a_cell_edit_is_saved_and_delete_is_undone(page, served):
    url, db_path = served
    _clear(db_path)
    t0 = np.datetime64("2026-01-15T00:00:00", "ns")
    with open_annotations(db_path, author="tester") as db:
        for name in ("click", "whistle"):
            db.add_label("demo.zarr", name)
        ids = [
            db.add("demo.zarr", start=t0 + a * S, end=t0 + b * S, low_hz=lo, high_hz=hi)
            for a, b, lo, hi in ((20, 22, 12_000, 18_000), (100, 101, 200, 400), (250, 254, 1000, 5000))
        ]
    app = _open(page, url)
    expect(app.locator(".selection-count")).to_contain_text("3 selections")
    expect(app.locator(".label-keys")).to_contain_text("1 click · 2 whistle")

    # n: the first selection, its span and half of it each side; the axes, the state and the address agree.
    app.keyboard.press("n")
    expect(app.locator(".selection-current")).to_contain_text(f"selection {ids[0]}")
    wait_for(lambda: link(app).get("selection") == str(ids[0]))
    settled(app)
    x0, x1, y0, y1 = plot_ranges(app)
    assert (x0, x1) == (pytest.approx(ms(t0 + 19 * S), abs=1), pytest.approx(ms(t0 + 23 * S), abs=1))
    assert (y0, y1) == (0, 32_000)  # the band fits in the frequencies shown: kept
    shot(app, "41-review-first")

    app.keyboard.press("2")  # the second label
    wait_for(lambda: open_annotations(db_path, readonly=True).get("demo.zarr", ids[0])["label"] == "whistle")
    expect(app.locator(".selection-current")).to_contain_text("whistle")
    wait_for(lambda: any(r.get("Label") == "whistle" for r in rows(app)))

    app.keyboard.press("n")
    wait_for(lambda: link(app).get("selection") == str(ids[1]))
    app.keyboard.press("n")
    wait_for(lambda: link(app).get("selection") == str(ids[2]))
    app.keyboard.press("p")
    wait_for(lambda: link(app).get("selection") == str(ids[1]))
    settled(app)
    x0, x1 = plot_ranges(app)[:2]
    assert (x0, x1) == (pytest.approx(ms(t0 + 99 * S) + 500, abs=1), pytest.approx(ms(t0 + 101 * S) + 500, abs=1))
    assert link(app)["start"].startswith("2026-01-15T00:01:39.5")
    shot(app, "42-review-back")

    # Notes, edited in their cell (a double click): saved, and shown as the text typed.
    cell = app.locator('.selections-table .tabulator-row.tabulator-selected .tabulator-cell[tabulator-field="Notes"]')
    cell.click()  # (the current row already: nothing moves)
    settled(app, 0.5)
    cell.dblclick()
    editor = app.locator(".selections-table .tabulator-cell.tabulator-editing input")
    expect(editor).to_be_visible()
    editor.fill("**bold** <b>x</b>")
    editor.press("Enter")
    wait_for(lambda: open_annotations(db_path, readonly=True).get("demo.zarr", ids[1])["notes"] == "**bold** <b>x</b>")
    expect(cell).to_have_text("**bold** <b>x</b>")
    expect(app.locator(".selection-current")).to_contain_text("notes: **bold** <b>x</b>")

    # Delete (the key) and undo.
    app.locator(".atlas-info").click()  # (the keys act outside the table's cells)
    app.keyboard.press("Delete")
    wait_for(lambda: len(rows(app)) == 2)
    assert bool(open_annotations(db_path, readonly=True).get("demo.zarr", ids[1])["deleted"])
    app.keyboard.press("u")
    wait_for(lambda: len(rows(app)) == 3)
    assert not bool(open_annotations(db_path, readonly=True).get("demo.zarr", ids[1])["deleted"])
    expect(app.locator(".selection-current")).to_contain_text(f"selection {ids[1]}")
    # Its box is back, outlined as the current one.
    wait_for(lambda: [b[:5] for b in app.evaluate(BOXES)] == [[ms(t0 + 100 * S), ms(t0 + 101 * S), 200, 400, 3]])
    settled(app)
    shot(app, "43-review-undone")
    assert app.errors == []


def _edit_notes(page, sid: int, text: str) -> None:
    """Make ``sid`` current with a click on its row, open its notes cell (a double click) and type ``text``."""
    at = [r.get("id", "").strip() for r in rows(page)].index(str(sid))
    cell = page.locator(".selections-table .tabulator-row").nth(at).locator('.tabulator-cell[tabulator-field="Notes"]')

    def click() -> bool:  # (a click the table takes while it is redrawn, as a measurement arrives, is lost)
        cell.click()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and f"selection {sid} " not in current(page):
            time.sleep(0.1)
        return f"selection {sid} " in current(page)

    wait_for(click, timeout=20)
    settled(page, 0.5)
    cell.dblclick()
    editor = page.locator(".selections-table .tabulator-cell.tabulator-editing input")
    expect(editor).to_be_visible()
    editor.fill(text)


# The number of rows of the selections table a page shows (through every shadow root), for wait_for_function.
ROW_COUNT = """() => {
    let n = 0;
    const walk = (root) => {
        n += root.querySelectorAll(".tabulator-row").length;
        for (const el of root.querySelectorAll("*")) if (el.shadowRoot) walk(el.shadowRoot);
    };
    walk(document);
    return n;
}"""


def test_two_pages_see_each_others_selections_within_two_seconds_and_a_stale_edit_is_refused(browser, served):
    url, db_path = served
    _clear(db_path)
    contexts = [browser.new_context(viewport={"width": 1500, "height": 1000}) for _ in range(2)]
    try:
        a, b = (_open(context.new_page(), url) for context in contexts)
        assert rows(a) == rows(b) == []

        # A new selection drawn on B: in A's table and on A's plot within two seconds of being saved, unreloaded.
        draw_box(b, (0.55, 0.2), (0.65, 0.4))
        with open_annotations(db_path, readonly=True) as db:
            while not len(db.selections("demo.zarr")):
                time.sleep(0.01)
        saved = time.monotonic()
        a.wait_for_function(f"() => ({ROW_COUNT})() === 1", polling="raf", timeout=10_000)
        a.wait_for_function(f"() => ({BOXES})().length === 1", polling="raf", timeout=10_000)
        seen = time.monotonic() - saved
        assert seen < 2.0, f"A saw B's selection {seen:.1f} s after it was saved"
        (sid,) = (int(r["id"]) for r in rows(a))
        settled(a)
        shot(a, "44-seen-by-the-other-page")

        # Both open the notes of that selection; A saves first. B's session is told of A's edit at once, but
        # B's table is left as it is while B's cell is open (the lines of its current selection show A's notes);
        # B's edit is based on the row as B opened it, changed since: refused, said in one line, and the row
        # then shows A's notes.
        _edit_notes(a, sid, "from A")
        _edit_notes(b, sid, "from B")
        a.keyboard.press("Enter")
        wait_for(lambda: open_annotations(db_path, readonly=True).get("demo.zarr", sid)["notes"] == "from A")
        expect(b.locator(".selection-current")).to_contain_text("notes: from A")
        editor = b.locator(".selections-table .tabulator-cell.tabulator-editing input")
        assert editor.input_value() == "from B"
        b.keyboard.press("Enter")
        message = b.locator(".selection-message")
        expect(message).to_contain_text(f"selection {sid} was changed by ")
        expect(message).to_contain_text("your edit was not saved")
        assert "\n" not in text_of(b, ".selection-message").strip()
        assert open_annotations(db_path, readonly=True).get("demo.zarr", sid)["notes"] == "from A"
        wait_for(lambda: [r["Notes"] for r in rows(b)] == ["from A"])
        settled(b)
        b.locator(".selection-message").scroll_into_view_if_needed()
        shot(b, "45-a-stale-edit-refused")
        assert a.errors == [] and b.errors == []
    finally:
        for context in contexts:
            context.close()


def test_markup_in_labels_and_notes_is_text_links_name_a_selection_and_the_ruler_reads(page, served):
    from test_failures import INJECTED

    url, db_path = served
    _clear(db_path)
    markup = "<img src=x onerror=alert(1)>"
    t0 = np.datetime64("2026-01-15T00:00:00", "ns")
    with open_annotations(db_path, author="<b>author</b>") as db:
        sid = db.add(
            "demo.zarr", start=t0 + 200 * S, end=t0 + 202 * S, low_hz=1000, high_hz=3000, label=markup,
            notes="**bold** [a](javascript:alert(4))",
        )  # fmt: skip
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # A link naming the selection opens the view around it, and the selection is current.
    app = _open(page, f"{url}?selection={sid}")
    expect(app.locator(".selection-current")).to_contain_text(f"selection {sid} · {markup} · by <b>author</b>")
    settled(app)
    assert plot_ranges(app)[:2] == [pytest.approx(ms(t0 + 199 * S), abs=1), pytest.approx(ms(t0 + 203 * S), abs=1)]
    assert link(app)["selection"] == str(sid)
    assert [r["Label"] for r in rows(app)] == [markup] and [r["Notes"] for r in rows(app)] == [
        "**bold** [a](javascript:alert(4))"
    ]
    expect(app.locator(".label-keys")).to_contain_text(f"1 {markup}")
    app.locator(".selections-table").scroll_into_view_if_needed()
    shot(app, "46-markup-is-text")
    assert app.evaluate(INJECTED) == [] and dialogs == []

    # The ruler: two clicks, the time and frequency between them; no selection is made.
    app.locator(".ruler-toggle button, .ruler-toggle").first.click()
    expect(app.locator(".ruler-readout")).to_contain_text("click two points")
    box = frame(app)
    x0, x1, y0, y1 = plot_ranges(app)
    for fx, fy in ((0.25, 0.75), (0.75, 0.25)):
        app.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        time.sleep(0.3)
    expect(app.locator(".ruler-readout")).to_contain_text("Δt 2,000.0 ms · Δf")
    df = float(text_of(app, ".ruler-readout").split("Δf ")[1].split(" Hz")[0].replace(",", ""))
    assert df == pytest.approx((y1 - y0) * 0.5, rel=0.02)
    settled(app)
    shot(app, "47-ruler")
    assert len(rows(app)) == 1

    # A link naming no selection of this store, or no number: the default view and one line saying so.
    for bad, said in ((str(sid + 1000), f"selection {sid + 1000} is not one of this store's selections"),
                      ("<b>1</b>", "selection '<b>1</b>' is not a selection's number")):  # fmt: skip
        other = _open(page, f"{url}?{urllib.parse.urlencode({'selection': bad})}")
        expect(other.locator(".link-message")).to_contain_text(f"could not be followed in full: {said}: ignored")
        assert "selection" not in link(other)
        assert "showing 2026-01-15 00:00:00.000 → 2026-01-15 00:06:00.000" in _info_text(other)
    assert app.errors == [] and dialogs == []
