"""Failures on a hosted server: stores that do not open or cannot be read, and what a stranger's link does.

A data root holds a good store, two that do not open (an attribute that does not
parse, a half-written ``zarr.json``), one that opens but whose coarse level is
corrupt, and one whose name is markup. A real ``spectral-atlas serve`` behind a
login serves it; a real Chromium, logged in, opens links on it. What the visitor
sees is one line of text; what the operator's log holds is the rest.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import urllib.parse

import numpy as np
import pytest
from playwright.sync_api import expect
from test_browser import (  # noqa: F401  (the two fixtures launch Debian's Chromium)
    ARTIFACTS,
    _free_port,
    _info_text,
    browser_context_args,
    browser_type_launch_args,
    frame,
    frame_pixels,
    running,
    settled,
    shot,
    text_of,
    wait_for,
)
from test_hosted import _cookies, _request

from dashboard.catalog import Catalog
from data_access import FormatError, open_atlas
from data_access.demo import make_demo
from data_access.query import MAX_HEIGHT, MAX_POINTS, MAX_WIDTH

PASSWORD = "a long enough password"
#: A store's name that is markup in every language a page speaks (no slash: it is a file name).
MARKUP = "`tick`<img src=x onerror=alert(3)>**bold**[a](javascript:alert(4)).zarr"


def _set_attr(store, name: str, value: str) -> None:
    """Change a root attribute of a Zarr store in place, as a careless hand or a broken tool would."""
    meta = store / "zarr.json"
    document = json.loads(meta.read_text())
    document["attributes"][name] = value
    meta.write_text(json.dumps(document))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("failures")
    root = base / "root"
    root.mkdir()
    demo = make_demo(base / "demo", hours=0.02, seed=4, progress=False)  # 72 s, two levels
    for name in ("good.zarr", "bad-attrs.zarr", "half-written.zarr", "corrupt.zarr", MARKUP):
        shutil.copytree(demo, root / name)
    _set_attr(root / "bad-attrs.zarr", "n_fft", "abc")
    meta = root / "half-written.zarr" / "zarr.json"
    meta.write_bytes(meta.read_bytes()[:200])
    for chunk in (root / "corrupt.zarr" / "1").rglob("c/*/*"):  # the coarse level: what a whole view reads
        chunk.write_bytes(chunk.read_bytes()[:100])
    return root


# ------------------------------------------------------------------ the listing, without a server


def test_a_store_that_does_not_open_is_left_out_with_a_warning_and_the_rest_listed(root, caplog):
    with caplog.at_level(logging.WARNING, "spectral_atlas"):
        catalog = Catalog(roots=[root])
    assert [e.name for e in catalog.entries] == [MARKUP, "corrupt.zarr", "good.zarr"]
    warned = "\n".join(r.getMessage() for r in caplog.records)
    assert "bad-attrs.zarr': the root attribute n_fft='abc' does not parse" in warned
    assert "half-written.zarr' is not a Spectral Atlas store" in warned


def test_refresh_leaves_out_a_store_broken_since_and_lists_the_rest(root, tmp_path, caplog):
    for name in ("one.zarr", "two.zarr"):
        shutil.copytree(root / "good.zarr", tmp_path / name)
    catalog = Catalog(roots=[tmp_path])
    _set_attr(tmp_path / "one.zarr", "start_time", "not a time")
    with caplog.at_level(logging.WARNING, "spectral_atlas"):
        assert [e.name for e in catalog.scan()] == ["two.zarr"]
    assert "the root attribute start_time='not a time' does not parse" in caplog.text


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("sources", "[{not json", "the root attribute sources='[{not json' does not parse"),
        ("sample_rate", "-1", "the root attribute sample_rate='-1' does not parse (not a positive number)"),
        ("end_time", "2026-13-45", "the root attribute end_time='2026-13-45' does not parse"),
    ],
)
def test_a_root_attribute_that_does_not_parse_is_a_format_error_naming_it(root, tmp_path, name, value, said):
    store = shutil.copytree(root / "good.zarr", tmp_path / "x.zarr")
    _set_attr(store, name, value)
    with pytest.raises(FormatError, match=re.escape(said)):
        open_atlas(store)


# ------------------------------------------------------------------ a served root, logged in


@pytest.fixture(scope="module")
def served(root, tmp_path_factory, cli):
    """``serve --data-root`` behind a login: it starts though two stores under the root do not open."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("log") / "serve.log"
    cmd = [*cli, "serve", "--data-root", str(root), "--port", str(port)]
    cmd += ["--basic-auth", PASSWORD, "--cookie-secret", "s" * 32]
    with running(cmd, f"http://127.0.0.1:{port}/login", log_path):
        yield port, log_path


def test_serve_starts_and_logs_the_stores_it_leaves_out(served):
    _, log_path = served
    log = log_path.read_text()
    assert "skipping '" in log and "bad-attrs.zarr': the root attribute n_fft='abc' does not parse" in log
    assert "half-written.zarr' is not a Spectral Atlas store" in log


def _log_in(context, port: int) -> None:
    """Give a browser context the cookies of a login on the server at ``port``."""
    _, headers, _ = _request(port, "POST", "/login", {"username": "bo", "password": PASSWORD})
    cookies = [c.split("=", 1) for c in _cookies(headers).split("; ")]
    context.add_cookies([{"name": n, "value": v, "url": f"http://127.0.0.1:{port}/"} for n, v in cookies])


@pytest.fixture
def visitor(page, served):
    """A logged-in page on the served root; ``visitor.open(query)`` opens a link and waits for its first image."""
    port, _ = served
    _log_in(page.context, port)
    page.dialogs, page.requested = [], []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: page.requested.append(r.url))

    def open_link(query: dict[str, str]):
        page.goto(f"http://127.0.0.1:{port}/?{urllib.parse.urlencode(query)}")
        page.locator(".atlas-info").wait_for(timeout=60_000)
        wait_for(lambda: "read 0 ms" not in _info_text(page))
        settled(page)

    page.open = open_link
    return page


def _drawn(pixels: np.ndarray) -> float:
    """Share of the pixels drawn in the colormap's colours (coloured or dark: not grey hatching, not white)."""
    return float(((pixels.max(axis=2) - pixels.min(axis=2) > 30) | (pixels.max(axis=2) < 100)).mean())


def test_a_store_that_cannot_be_read_says_so_in_one_line_and_the_session_goes_on(visitor, served):
    _, log_path = served
    visitor.open({"store": "corrupt.zarr"})
    message = visitor.locator(".failure-message")
    # The view and the band curves both fail: the latest is said.
    line = re.compile(r"^Could not (read this view|compute the band curves): an error on the server \((\w+)\), "
                      r"logged as (\w+)\.$")  # fmt: skip
    expect(message).to_contain_text(line)
    said = text_of(visitor, ".failure-message").strip()
    shot(visitor, "20-a-store-that-cannot-be-read")
    assert line.match(said), repr(said)
    doing, kind, ref = line.match(said).groups()  # one line: no traceback, no server path
    log = log_path.read_text()
    assert f"failure {ref} (could not {doing}): {kind}: " in log and "Traceback (most recent call last)" in log
    assert _drawn(frame_pixels(visitor)) < 0.05  # nothing drawn as if it were data

    # The session goes on: ten seconds read from the finer level, which is intact.
    for label, value in (("start (UTC)", "2026-01-15 00:00:10"), ("end (UTC)", "2026-01-15 00:00:20")):
        field = visitor.locator(f"text={label}").locator("xpath=..").locator("input").first
        field.fill(value)
        field.press("Enter")
    wait_for(lambda: "showing 2026-01-15 00:00:10.000 → 2026-01-15 00:00:20.000" in _info_text(visitor))
    settled(visitor)
    shot(visitor, "21-the-session-goes-on")
    assert _drawn(frame_pixels(visitor)) > 0.9


# Elements a value could have injected, through every shadow root: images and links to where the
# values point, scripts, javascript: links.
INJECTED = """() => {
    const found = [];
    const walk = (root) => {
        for (const el of root.querySelectorAll('*')) {
            const src = el.getAttribute('src') || '', href = el.getAttribute('href') || '';
            if (src === 'x' || src.includes('127.0.0.1:9') || href.includes('127.0.0.1:9')
                || href.startsWith('javascript:') || (el.tagName === 'SCRIPT' && /alert/.test(el.textContent))
                || el.tagName === 'STRONG' && /bold/.test(el.textContent)) found.push(el.outerHTML);
            if (el.shadowRoot) walk(el.shadowRoot);
        }
    };
    walk(document);
    return found;
}"""


def test_a_store_named_in_markup_and_markup_in_a_link_are_shown_as_text(visitor):
    payload = "<img src=x onerror=alert(1)>"
    visitor.open({"store": MARKUP, "channel": payload, "fmax": payload, "end": payload})
    expect(visitor.locator(".atlas-info")).to_contain_text(MARKUP)  # the store's name, as text
    expect(visitor.locator(".link-message")).to_contain_text(f"channel {payload!r}: this store holds a single channel")
    shot(visitor, "22-markup-in-a-store-name")
    assert visitor.evaluate(INJECTED) == []

    markdown = "[a](http://127.0.0.1:9/x)![i](http://127.0.0.1:9/i.png)"
    visitor.open({"store": markdown})
    expect(visitor.locator(".store-message")).to_contain_text(f"No store is listed as {markdown!r}")
    time.sleep(1)
    assert visitor.evaluate(INJECTED) == []
    assert not [url for url in visitor.requested if "127.0.0.1:9/" in url]  # no remote image was fetched
    assert visitor.dialogs == []


def test_a_control_character_in_a_band_and_a_view_narrower_than_a_millisecond(visitor):
    # ?bands=%00:1-2 once took the page down with a traceback; a 1 µs view drew nothing and froze the image.
    visitor.open({"store": "good.zarr", "bands": "\x00:1-2", "start": "2026-01-15T00:00:20Z"})
    expect(visitor.locator(".link-message")).to_contain_text("holds U+0000")
    visitor.open({"store": "good.zarr", "start": "2026-01-15T00:00:20Z", "end": "2026-01-15T00:00:20.000001Z"})
    wait_for(lambda: "showing 2026-01-15 00:00:19.999 → 2026-01-15 00:00:20.000" in _info_text(visitor))
    shot(visitor, "23-the-narrowest-view")
    assert _drawn(frame_pixels(visitor)) > 0.9
    assert text_of(visitor, ".failure-message") == ""


# What the page holds: each image's shape (rows, columns) and each other data source's length.
HELD = """() => [...Bokeh.documents[0].all_models].filter((m) => m.type === "ColumnDataSource").map((m) => {
    const data = m.data instanceof Map ? m.data : new Map(Object.entries(m.data));
    if (data.has("image")) {
        const image = data.get("image")[0];
        return ["image", image.shape ? [...image.shape] : [image.length, image[0].length]];
    }
    return ["rows", data.size ? data.values().next().value.length : 0];
})"""


def test_a_plot_larger_than_the_largest_view_is_sent_the_largest_view(browser, served):
    # A page states its plot's size: one claiming 8000 x 4000 once had the server read and send a 128 MB message.
    port, _ = served
    context = browser.new_context(viewport={"width": 9000, "height": 5200})
    try:
        _log_in(context, port)
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/?store=good.zarr")
        page.locator(".atlas-info").wait_for(timeout=60_000)
        wait_for(lambda: "read 0 ms" not in _info_text(page))
        settled(page)
        box = frame(page)
        assert box["width"] > MAX_POINTS and box["height"] > MAX_HEIGHT  # the page's plot is that large
        held = page.evaluate(HELD)
        rows, columns = max(shape for kind, shape in held if kind == "image")  # (the overview's is 60 rows)
        assert rows == MAX_HEIGHT and columns <= MAX_WIDTH  # 2048 of 2049 bins; all 2249 frames of the store
        curves = [n for kind, n in held if kind == "rows" and n > 1000]
        assert curves and max(curves) == MAX_POINTS  # each band curve: 8192 points, not one per pixel
        page.screenshot(
            path=str(ARTIFACTS / "24-a-huge-plot.png"), clip={"x": 0, "y": 0, "width": 2400, "height": 1400}
        )
    finally:
        context.close()
