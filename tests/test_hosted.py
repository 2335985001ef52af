"""Hosting: the data-root catalog, its traversal guards, and the server's login and origin checks.

Real ``spectral-atlas serve`` processes on free ports, spoken to over real HTTP
(urllib), Bokeh's own client (``pull_session``: the document a visitor's browser
would receive) and tornado's websocket client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import http.client
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, tone
from test_browser import _free_port, running
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from dashboard.catalog import Catalog
from data_access import FormatError, ParameterError, SourceNotFoundError, StftConfig, ingest, open_timeline
from data_access.demo import make_demo


def run_async(coroutine):
    """Run a coroutine to the end on a thread of its own.

    Not ``asyncio.run`` here: the browser tests' Playwright (sync API) keeps an
    event loop running in this thread for the rest of the session.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


HOURS = 0.02  # 72 s demo deployments
TONE_SECONDS = 5.0


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A data root holding a Zarr store, a NetCDF store, a store two folders down, and traps around them.

    ``root/site-a/alpha.zarr``, ``root/site-b/deep/beta.zarr``, ``root/tone.nc`` are stores;
    ``outside/secret.zarr`` is a store beside the root, reached from inside only by the symlink
    ``root/link.zarr``; ``root/.gamma.zarr.partial`` is an unfinished ingest.
    """
    base = tmp_path_factory.mktemp("hosted")
    root, outside = base / "root", base / "outside"
    for folder in (root / "site-a", root / "site-b" / "deep", outside):
        folder.mkdir(parents=True)
    (make_demo(base / "d1", hours=HOURS, seed=1, progress=False)).rename(root / "site-a" / "alpha.zarr")
    (make_demo(base / "d2", hours=HOURS, seed=2, progress=False)).rename(root / "site-b" / "deep" / "beta.zarr")
    (make_demo(base / "d3", hours=HOURS, seed=3, progress=False)).rename(outside / "secret.zarr")
    sf.write(base / "tone.wav", tone(1000.0, TONE_SECONDS), SR, subtype="FLOAT")
    timeline = open_timeline([base / "tone.wav"], start_time="2024-05-01T00:00:00")
    ingest(timeline, root / "tone.nc", StftConfig(n_fft=256), format="netcdf", progress=False)
    shutil.copytree(root / "site-a" / "alpha.zarr", root / ".gamma.zarr.partial")
    (root / "link.zarr").symlink_to(outside / "secret.zarr", target_is_directory=True)
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a store")
    return {"root": root, "outside": outside, "secret": outside / "secret.zarr"}


# ------------------------------------------------------------------ the catalog, without a server

LISTED = ["site-a/alpha.zarr", "site-b/deep/beta.zarr", "tone.nc"]


def test_catalog_lists_the_stores_under_a_root_with_their_time_span(tree):
    catalog = Catalog(roots=[tree["root"]])
    entries = {e.name: e for e in catalog.entries}
    # Not the partial ingest, not the link pointing out, not a folder inside a store, not the text file.
    assert list(entries) == LISTED
    assert entries["tone.nc"].start_time.startswith("2024-05-01T00:00:00")
    hop = 128  # n_fft / 2: the last full frame ends within a hop of the end of the tone
    assert TONE_SECONDS - hop / SR <= entries["tone.nc"].duration_seconds <= TONE_SECONDS
    assert entries["site-a/alpha.zarr"].duration_seconds == pytest.approx(HOURS * 3600, abs=1.0)
    start = np.datetime64(entries["site-a/alpha.zarr"].start_time)
    end = np.datetime64(entries["site-a/alpha.zarr"].end_time)
    assert (end - start) / np.timedelta64(1, "s") == pytest.approx(entries["site-a/alpha.zarr"].duration_seconds, abs=1)
    for entry in entries.values():
        assert entry.path.resolve().is_relative_to(tree["root"].resolve())


TRAVERSALS = [
    "..",
    "../outside/secret.zarr",
    "../../etc/passwd",
    "/etc/passwd",
    "site-a/../../outside/secret.zarr",
    "site-a/alpha.zarr/../../../outside/secret.zarr",
    "%2e%2e%2foutside%2fsecret.zarr",
    "..%2F..%2Fetc%2Fpasswd",
    "link.zarr",  # a symlink in the root pointing to a store outside it
    "site-a",
    "site-a/alpha.zarr/0",
    "./tone.nc",
    "",
]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_resolve_opens_nothing_but_a_listed_name(tree, name):
    catalog = Catalog(roots=[tree["root"]])
    assert catalog.get(name) is None
    with pytest.raises(ParameterError, match="no store named"):
        catalog.resolve(name)


def test_resolve_refuses_absolute_paths_even_of_listed_stores(tree):
    catalog = Catalog(roots=[tree["root"]])
    for path in (tree["secret"], tree["root"] / "tone.nc", catalog.resolve("tone.nc")):
        assert catalog.get(str(path)) is None
    assert catalog.resolve("tone.nc") == (tree["root"] / "tone.nc").resolve()


def test_scan_finds_new_stores_and_forgets_removed_ones(tree, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(tree["root"] / "site-a" / "alpha.zarr", root / "one.zarr")
    catalog = Catalog(roots=[root])
    shutil.copytree(tree["root"] / "site-a" / "alpha.zarr", root / "two.zarr")
    assert [e.name for e in catalog.entries] == ["one.zarr"]
    assert [e.name for e in catalog.scan()] == ["one.zarr", "two.zarr"]
    shutil.rmtree(root / "one.zarr")
    assert [e.name for e in catalog.scan()] == ["two.zarr"]
    assert catalog.get("one.zarr") is None


def test_stores_and_roots_together_get_unique_names(tree):
    catalog = Catalog(stores=[tree["secret"]], roots=[tree["root"], tree["outside"]])
    names = [e.name for e in catalog.entries]
    # secret.zarr is given by path and found under the second root: the folder tells them apart.
    assert names == ["outside/secret.zarr", *LISTED, "outside/secret.zarr (2)"]
    assert catalog.resolve("outside/secret.zarr") == tree["secret"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ParameterError, "at least one store or data root"),
        ({"roots": ["/no/such/root"]}, SourceNotFoundError, "data root '/no/such/root' is not a directory"),
        ({"stores": ["/no/such.zarr"]}, SourceNotFoundError, "no store at '/no/such.zarr'"),
        ({"roots": ["NOTES"]}, ParameterError, "no stores under"),
        ({"stores": ["README"]}, FormatError, "is not a Spectral Atlas store"),
    ],
)
def test_catalog_errors(tree, kwargs, error, match):
    notes = tree["root"] / "notes"
    kwargs = {k: [{"NOTES": notes, "README": notes / "readme.txt"}.get(v, v) for v in vs] for k, vs in kwargs.items()}
    with pytest.raises(error, match=match):
        Catalog(**kwargs)


# ------------------------------------------------------------------ a served catalog


@pytest.fixture(scope="module")
def catalog_server(tree, tmp_path_factory, cli):
    port = _free_port()
    log_path = tmp_path_factory.mktemp("log") / "catalog.log"
    cmd = [*cli, "serve", "--data-root", str(tree["root"]), "--port", str(port)]
    with running(cmd, f"http://127.0.0.1:{port}/", log_path):
        yield port, log_path


def _session(port: int, path: str, cookie: str = "") -> str:
    """GET a page (the URL exactly as given, which opens a session); the token of its session."""
    status, _, page = _request(port, "GET", path, cookie=cookie)
    assert status == 200, (path, status)
    return re.search(r'"token":\s*"([^"]+)"', page).group(1)


async def _messages(port: int, ws_path: str, token: str, headers: dict, *, pull: bool):
    """Open a session's websocket: its first frame (None if the server closes first), and, with
    ``pull``, the document the server then sends (Bokeh's PULL-DOC exchange, JSON as sent)."""
    request = HTTPRequest(f"ws://127.0.0.1:{port}{ws_path}", headers=headers)
    connection = await websocket_connect(request, subprotocols=["bokeh", token])
    try:
        first = await asyncio.wait_for(connection.read_message(), 60)
        if not pull or first is None:
            return first, None
        for part in ({"msgid": "pull", "msgtype": "PULL-DOC-REQ"}, {}, {}):  # header, metadata, content
            await connection.write_message(json.dumps(part))
        while (frame := await asyncio.wait_for(connection.read_message(), 60)) is not None:
            if isinstance(frame, str) and frame.startswith('{"doc"'):
                return first, frame
        raise AssertionError("the server closed the websocket before sending the document")
    finally:
        connection.close()
        while await asyncio.wait_for(connection.read_message(), 10) is not None:  # until the socket is closed
            pass


def _document_text(port: int, query: str = "") -> str:
    """All the text of the document a browser opening ``/?query`` receives, HTML entities decoded."""
    token = _session(port, f"/{query and '?' + query}")
    _, document = run_async(_messages(port, "/ws", token, {"Origin": f"http://127.0.0.1:{port}"}, pull=True))
    return html.unescape(json.dumps(json.loads(document), ensure_ascii=False))


def test_the_served_catalog_lists_the_stores_and_opens_one_by_name(catalog_server):
    port, _ = catalog_server
    text = _document_text(port)
    for name in LISTED:
        assert name in text
    assert "<b>site-a/alpha.zarr</b>" in text  # the first store is shown, named as listed
    assert "<b>site-b/deep/beta.zarr</b>" in _document_text(port, "store=site-b/deep/beta.zarr")
    assert "No store is listed" not in text


@pytest.mark.parametrize(
    "query",
    [
        "store=../outside/secret.zarr",
        "store=%2e%2e%2foutside%2fsecret.zarr",  # URL-encoded: tornado decodes it to the line above
        "store=%252e%252e%252foutside%252fsecret.zarr",  # encoded twice: the name is the literal %2e...
        "store=link.zarr",  # a symlink in the root pointing to a store outside it
        "store=SECRET",  # the absolute path of the store outside
        "store=..&store=site-a%2F..%2F..%2Foutside%2Fsecret.zarr",
    ],
)
def test_a_name_outside_the_catalog_opens_the_first_store_with_a_warning(catalog_server, tree, query):
    port, log_path = catalog_server
    query = query.replace("SECRET", urllib.parse.quote(str(tree["secret"]), safe=""))
    text = _document_text(port, query)
    name = urllib.parse.parse_qs(query)["store"][0]
    assert f"No store is listed as {name!r}" in text
    assert "<b>site-a/alpha.zarr</b>" in text  # the first store is shown
    # Nothing of the store outside: "secret" only in the URL (the page's location) and the name echoed.
    assert "secret" not in text.replace(query, "").replace(repr(name), "")
    assert f"refused store {name!r}" in log_path.read_text()


# ------------------------------------------------------------------ login, websocket and origin checks

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def auth_server(tree, tmp_path_factory, cli):
    """A server behind a login (a credentials file) under the prefix /atlas."""
    folder = tmp_path_factory.mktemp("auth")
    credentials = folder / "users.json"
    credentials.write_text(json.dumps({"ana": PASSWORD}))
    port = _free_port()
    cmd = [*cli, "serve", str(tree["root"] / "tone.nc"), "--port", str(port), "--prefix", "/atlas"]
    cmd += ["--basic-auth", str(credentials), "--cookie-secret", "x" * 32]
    with running(cmd, f"http://127.0.0.1:{port}/atlas/login", folder / "serve.log"):
        yield port


def _request(port: int, method: str, path: str, body: dict | None = None, cookie: str = ""):
    """One request, redirects not followed: (status, headers, text)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Cookie": cookie} if cookie else {}
    data = None
    if body is not None:
        data = urllib.parse.urlencode(body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, body=data, headers=headers)
    reply = connection.getresponse()
    result = reply.status, reply.headers, reply.read().decode(errors="replace")
    connection.close()
    return result


def _redirected_to(path: str, headers) -> str:
    """Where a redirect from ``path`` leads, as an absolute path."""
    return urllib.parse.urljoin(path, headers["Location"])


def _login(port: int, password: str):
    return _request(port, "POST", "/atlas/login", {"username": "ana", "password": password})


def _cookies(headers) -> str:
    return "; ".join(value.split(";", 1)[0] for value in headers.get_all("Set-Cookie") or [])


def test_the_page_needs_a_login(auth_server):
    status, headers, _ = _request(auth_server, "GET", "/atlas/")
    assert status == 302 and _redirected_to("/atlas/", headers).startswith("/atlas/login")


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_page(auth_server):
    status, headers, _ = _login(auth_server, "wrong password")
    assert status == 302 and _redirected_to("/atlas/login", headers).startswith("/atlas/login?error=")
    assert "user=" not in _cookies(headers)
    status, headers, _ = _request(auth_server, "GET", "/atlas/", cookie=_cookies(headers))
    assert status == 302 and _redirected_to("/atlas/", headers).startswith("/atlas/login")

    status, headers, _ = _login(auth_server, PASSWORD)
    assert status == 302 and "user=" in _cookies(headers)
    status, _, page = _request(auth_server, "GET", "/atlas/", cookie=_cookies(headers))
    assert status == 200 and "<title>Spectral Atlas</title>" in page


def test_the_app_answers_under_its_prefix_only(auth_server):
    assert _request(auth_server, "GET", "/")[0] == 404
    assert _request(auth_server, "GET", "/atlas/login")[0] == 200


@pytest.fixture
def logged_in(auth_server):
    """The cookies of a login and the session token of the page it opened."""
    _, headers, _ = _login(auth_server, PASSWORD)
    cookie = _cookies(headers)
    return cookie, _session(auth_server, "/atlas/", cookie=cookie)


def test_an_unauthenticated_websocket_is_refused(auth_server, logged_in):
    cookie, token = logged_in
    origin = f"http://127.0.0.1:{auth_server}"
    accepted, _ = run_async(
        _messages(auth_server, "/atlas/ws", token, {"Cookie": cookie, "Origin": origin}, pull=False)
    )
    assert accepted is not None and '"ACK"' in accepted  # with the login cookie, the session opens
    with pytest.raises(HTTPClientError) as refused:  # the same request without it: no upgrade
        run_async(_messages(auth_server, "/atlas/ws", token, {"Origin": origin}, pull=False))
    assert refused.value.code == 403


def test_a_websocket_from_an_origin_not_allowed_is_refused(auth_server, logged_in):
    cookie, token = logged_in
    with pytest.raises(HTTPClientError) as refused:
        headers = {"Cookie": cookie, "Origin": "http://evil.example"}
        run_async(_messages(auth_server, "/atlas/ws", token, headers, pull=False))
    assert refused.value.code == 403


# ------------------------------------------------------------------ options that do not fit together


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--basic-auth", "pw"], "--basic-auth needs --cookie-secret (or PANEL_COOKIE_SECRET)"),
        (["--oauth-provider", "generic", "--cookie-secret", "s"], "--oauth-provider generic needs --oauth-key"),
        (["--oauth-key", "id"], "--oauth-key needs --oauth-provider"),
    ],
)
def test_a_login_option_without_its_companion_fails_in_one_line(tree, cli, options, message):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANEL_")}
    store = str(tree["root"] / "tone.nc")
    result = subprocess.run([*cli, "serve", store, *options], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


@pytest.mark.slow  # two processes compile datashader's kernels at once: 40-75 s on a busy 2-core machine
def test_two_server_processes_share_the_port(tree, tmp_path, cli):
    port = _free_port()
    cmd = [*cli, "serve", "--data-root", str(tree["root"]), "--port", str(port), "--num-procs", "2"]
    with running(cmd, f"http://127.0.0.1:{port}/", tmp_path / "serve.log"):
        for _ in range(2):  # sessions land on either process; each opens the store it is asked for
            assert "recording 2024-05-01 00:00:00 → 2024-05-01 00:00:05" in _document_text(port, "store=tone.nc")
    time.sleep(2.5)  # the forked processes follow their parent out
    assert subprocess.run(["pgrep", "-f", f"port {port}"], capture_output=True).stdout == b""
