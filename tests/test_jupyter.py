"""The explorer in Jupyter: ``examples/explore.ipynb`` run by nbclient, and in a real JupyterLab.

The JupyterLab test starts ``jupyter lab`` on 127.0.0.1, opens the example notebook
in Debian's Chromium (through Playwright, as tests/test_browser.py does), runs
it, zooms the spectrogram with the mouse wheel and re-runs the cell that reads
``explorer.time_range``: the kernel must hold the range the browser shows. Both
tests point the notebook's parameters cell at a demo deployment in a temporary
folder. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from chromium import MAIN_FIGURE
from nbclient import NotebookClient
from playwright.sync_api import expect
from test_browser import (  # noqa: F401  (the two fixtures launch Debian's Chromium)
    ROOT,
    _free_port,
    _info_text,
    browser_context_args,
    browser_type_launch_args,
    main_plot,
    running,
    shot,
    wait_for,
)

from data_access.demo import make_demo

NOTEBOOK = ROOT / "examples" / "explore.ipynb"
LOAD, EXEC = "application/vnd.holoviews_load.v0+json", "application/vnd.holoviews_exec.v0+json"
TOKEN = "spectral-atlas-test"
SECOND = np.timedelta64(1, "s")


def example_notebook(store_dir: Path, hours: float = 0.05) -> nbformat.NotebookNode:
    """The example notebook, its parameters cell pointed at ``store_dir`` (made there if missing)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (cell,) = (c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = f"from pathlib import Path\nDEMO_DIR = Path({str(store_dir)!r})\nDEMO_HOURS = {hours}\n"
    cell.source += 'STORE = DEMO_DIR / "demo.zarr"'
    return nb


def tagged(nb: nbformat.NotebookNode, tag: str) -> int:
    """Index of the one cell carrying ``tag``."""
    (index,) = (i for i, c in enumerate(nb.cells) if tag in c.metadata.get("tags", []))
    return index


def times_in(text: str) -> tuple[np.datetime64, np.datetime64]:
    """The (start, end) in a printed ``explorer.time_range`` or the info pane's "showing" line."""
    found = re.findall(r"\d{4}-\d\d-\d\d[T ][\d:.]+", text)
    start, end = (np.datetime64(t.replace(" ", "T"), "ns") for t in found)
    return start, end


def same(a: tuple[np.datetime64, ...], b: tuple[np.datetime64, ...]) -> bool:
    """Equal to the millisecond the info pane shows."""
    return all(abs(x - y) <= np.timedelta64(1, "ms") for x, y in zip(a, b, strict=True))


def test_the_example_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 6
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "widgets" not in nb.metadata  # no saved widget state either
    assert "pn.extension(inline=True)" in "".join(c.source for c in code)  # offline: no CDN


# ------------------------------------------------------------------------------------------- nbclient
@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The example notebook run top to bottom in a fresh kernel; it makes its own demo store."""
    folder = tmp_path_factory.mktemp("nbclient")
    nb = example_notebook(folder / "demo")
    started = time.perf_counter()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    nb.metadata["seconds"] = time.perf_counter() - started
    nbformat.write(nb, folder / "executed.ipynb")
    return nb


def _result(nb, tag: str) -> str:
    (text,) = (o["data"]["text/plain"] for o in nb.cells[tagged(nb, tag)].outputs if o.output_type == "execute_result")
    return text


def test_the_notebook_shows_the_explorer_as_panel_output(executed, report):
    report("example notebook under nbclient (demo store made in it)", f"{executed.metadata['seconds']:.1f} s")
    mimes = set().union(*(o.get("data", {}).keys() for c in executed.cells for o in c.get("outputs", [])))
    assert {LOAD, EXEC, "text/html"} <= mimes
    explorer = [o for o in executed.cells[tagged(executed, "explorer")].outputs if o.output_type == "execute_result"]
    assert EXEC in explorer[0]["data"]  # the explorer itself is the cell's Panel output
    plot = executed.cells[tagged(executed, "plot")].outputs
    assert any(EXEC in o.get("data", {}) for o in plot)  # so is the band curve plotted from the DataFrame
    assert not [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]


def test_the_notebook_reads_and_sets_the_state_from_code(executed):
    start, end = times_in(_result(executed, "time_range"))
    assert end - start == 180 * SECOND  # 0.05 h: the whole demo recording is shown first

    view_shape, curves_shape, units, level = ast.literal_eval(_result(executed, "selection"))
    assert view_shape == (600, 1200) and curves_shape == (800, 5)  # five preset bands under 32 kHz
    assert units == "dB re full scale" and level >= 0

    start, end = times_in(_result(executed, "set_time"))
    assert end - start == 60 * SECOND
    view_shape, curves_shape, columns = ast.literal_eval(_result(executed, "selection_after"))
    # 60 s are 1875 frames: level 1's 469 columns, each drawn over its own time (at most two a pixel)
    assert view_shape == (300, 469) and curves_shape == (120, 6) and columns[-1] == "whistle core"


# ----------------------------------------------------------------------------------------- JupyterLab
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``jupyter lab`` on a free port of 127.0.0.1, serving a folder with the example notebook."""
    root = tmp_path_factory.mktemp("labroot")
    store_dir = tmp_path_factory.mktemp("demo")
    make_demo(store_dir, hours=0.05, progress=False)
    nbformat.write(example_notebook(store_dir), root / "explore.ipynb")
    settings = tmp_path_factory.mktemp("labsettings")
    for plugin, values in {
        # No news or update toasts (they would cover the page and try to go online).
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        # Every cell stays in the page, so cells can be found by their index.
        "notebook-extension/tracker": {"windowingMode": "none"},
    }.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = _free_port()
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
        "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={settings / 'workspaces'}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run the notebook, see the kernel's status
    ]  # fmt: skip
    with running(cmd, f"http://127.0.0.1:{port}/api/status?token={TOKEN}", settings / "lab.log"):
        yield f"http://127.0.0.1:{port}/lab/tree/explore.ipynb?token={TOKEN}"


def _offline(page) -> None:
    """Answer Panel's CDN stylesheets from the installed panel/dist; refuse every other off-machine request."""
    import panel

    dist = Path(panel.__file__).parent / "dist"
    cdn = re.compile(r"https://cdn\.holoviz\.org/panel/[^/]+/dist/([^?]*)")

    def from_dist(route):
        file = dist / cdn.match(route.request.url).group(1)
        route.fulfill(path=str(file)) if file.is_file() else route.abort()

    # Playwright tries the latest route first: the catch-all goes in first.
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), lambda route: route.abort())
    page.route(cdn, from_dist)


# The time range of the spectrogram as Bokeh has it in the page: the tallest figure's x range, in ms.
PLOT_RANGE = f"() => {{ const main = {MAIN_FIGURE}; return [main.model.x_range.start, main.model.x_range.end]; }}"
# What each of the page's Panel comm managers holds: its client comm (browser -> kernel), whether
# it waits for the kernel's acknowledgement, and how many browser changes it has not sent yet.
COMM_MANAGERS = """() => Bokeh.documents.flatMap(d => [...d.all_models])
    .filter(m => m.client_comm_id !== undefined)
    .map(m => ({plot: m.plot_id, models: m.document.all_models.size,
        client_comm: m._client_comm && {active: m._client_comm.active, connected: m._client_comm.connected},
        blocked: m._blocked, unsent: m._event_buffer.length}))"""

KERNEL_IDLE = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return k && k.status === 'idle'; }"""


def test_in_jupyterlab_a_wheel_zoom_reaches_the_kernel(page, lab, report):
    started = time.perf_counter()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    console: list[str] = []  # (the page's warnings and errors, for the report of a zoom that did not settle)
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("warning", "error") else None)
    _offline(page)
    page.goto(lab)
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cells = page.locator(".jp-Notebook .jp-Cell")
    wait_for(lambda: cells.count() == len(nb.cells))

    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    last = cells.nth(tagged(nb, "selection_after")).locator(".jp-OutputArea-output")
    expect(last).to_contain_text("whistle core", timeout=120_000)  # every cell has run
    explorer = cells.nth(tagged(nb, "explorer")).locator(".jp-OutputArea")
    expect(explorer.locator("canvas").first).to_be_visible()
    plot = main_plot(explorer)
    plot.scroll_into_view_if_needed()
    ran = time.perf_counter() - started

    def shown() -> tuple[np.datetime64, np.datetime64]:
        return times_in(_info_text(explorer).split("showing ")[1].split("\n")[0])

    def plotted() -> tuple[np.datetime64, np.datetime64]:
        return tuple(np.datetime64(round(ms * 1e6), "ns") for ms in page.evaluate(PLOT_RANGE))

    # Code -> browser: the cell that set the time range from the kernel moved the plot.
    set_in_code = times_in(cells.nth(tagged(nb, "set_time")).locator(".jp-OutputArea-output").inner_text())
    wait_for(lambda: same(shown(), set_in_code) and same(plotted(), set_in_code))
    shot(page, "jupyterlab-1-run")

    # Browser -> kernel: a wheel zoom over the spectrogram, then the cell that reads the time range.
    zoomed = time.perf_counter()
    for _ in range(3):  # (on a busy machine the notebook's layout can still move under the mouse: wheel again)
        box = plot.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        for _ in range(4):
            page.mouse.wheel(0, -300)
            page.wait_for_timeout(150)
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: not same(plotted(), set_in_code), timeout=10)
            break

    last_seen: dict[str, object] = {}

    def settled() -> tuple[np.datetime64, np.datetime64] | None:
        """The plot's range, once the kernel is idle and the info pane (drawn from its state) shows it."""
        first = page.evaluate(KERNEL_IDLE) and plotted()
        time.sleep(0.5)  # (still so half a second later: no image of an earlier wheel step is on its way)
        kernel_idle, now, info = page.evaluate(KERNEL_IDLE), plotted(), shown()
        last_seen.update(kernel_idle=kernel_idle, plotted=now, info_pane=info, set_in_code=set_in_code)
        idle = kernel_idle and now == first and same(info, first)
        return first if idle and not same(first, set_in_code) else None

    try:
        browser = wait_for(settled)
    except TimeoutError:
        shot(page, "jupyterlab-2-not-settled")
        last_seen.update(comm_managers=page.evaluate(COMM_MANAGERS), console=console[-10:])
        raise AssertionError(f"the wheel zoom did not settle in 30 s; last seen: {last_seen}") from None
    report("JupyterLab: wheel zoom until the page shows the kernel's range", f"{time.perf_counter() - zoomed:.1f} s")
    shot(page, "jupyterlab-2-zoomed")
    reader = cells.nth(tagged(nb, "time_range"))
    output = reader.locator(".jp-OutputArea-output")
    before = output.inner_text()
    reader.locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")
    # (The output is cleared while the cell runs: wait for the new one, not for a change.)
    kernel = wait_for(lambda: (texts := output.all_inner_texts()) and texts[0] != before and times_in(texts[0]))
    shot(page, "jupyterlab-3-read-in-code")

    assert set_in_code[0] < kernel[0] < kernel[1] < set_in_code[1]  # zoomed in, inside the minute
    assert kernel[1] - kernel[0] < 40 * SECOND
    assert same(kernel, browser) and same(kernel, plotted())  # the kernel holds what the browser shows
    assert errors == []
    assert "Traceback" not in explorer.inner_text()  # the kernel's errors in a comm callback land in the output
    report("JupyterLab: start, run the example notebook", f"{ran:.1f} s")

    # Kernel -> browser -> kernel: band edits made in one go from code survive the browser's
    # answers to them (a stale echo of the band listing must not undo the later edits).
    # One execution adds two bands, faster than any answer from the browser.
    in_kernel(page, 'explorer.add_band("echo a", 100, 200); explorer.add_band("echo b", 300, 400)')
    listing = explorer.locator(".band-listing")
    expect(listing).to_contain_text("echo b")
    time.sleep(3)  # (room for any late message from the browser)
    bands = ast.literal_eval(in_kernel(page, "print(sorted(explorer.bands))").strip())
    assert {"echo a", "echo b", "whistle core", "shipping"} <= set(bands)
    for name in ("echo a", "echo b", "whistle core", "shipping"):
        expect(listing).to_contain_text(name)
    assert errors == []
    # (Not asserted here: the browser also sends back a recoloured curve's line_color, in a form
    # Bokeh's Python side refuses with a traceback in the output; a known fault, see the README.)


def in_kernel(page, code: str) -> str:
    """Run ``code`` in the notebook's kernel (as a cell would, without one) and return what it printed."""
    return page.evaluate(
        """async (code) => {
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
            const future = kernel.requestExecute({code});
            let printed = "";
            future.onIOPub = (msg) => {
                if (msg.header.msg_type === "stream") printed += msg.content.text;
                if (msg.header.msg_type === "error") printed += msg.content.ename + ": " + msg.content.evalue;
            };
            await future.done;
            return printed;
        }""",
        code,
    )
