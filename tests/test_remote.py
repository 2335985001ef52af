"""Remote stores: a Zarr store published as static files, read over real HTTP.

A ``ThreadingHTTPServer`` with ``SimpleHTTPRequestHandler`` on 127.0.0.1 serves
the folder holding a store, as any static web server would: it lists no
directories for zarr and answers no Range requests (zarr reads each chunk file
whole). Every request it answers is recorded, so the tests can see which chunk
files a view fetched.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import threading

import numpy as np
import pytest
from conftest import SR, chirp
from test_browser import _free_port, running
from test_hosted import _document_text

from dashboard.catalog import Catalog
from data_access import (
    FormatError,
    ParameterError,
    SourceNotFoundError,
    StftConfig,
    ingest,
    open_atlas,
    open_store,
    store_info,
)

SECONDS = 120.0
CONFIG = StftConfig(n_fft=256)  # hop 128: 7499 frames, levels of 7499, 3750 and 1875 columns
TIME_CHUNK = 64  # many chunk files per level, so a zoomed view fetching all of them would show


class StaticFiles:
    """A static file server on 127.0.0.1 in a thread, recording ``(path, status)`` of every request."""

    def __init__(self, directory) -> None:
        requests = self.requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code="-", size="-"):
                requests.append((self.path, int(code)))

            def log_message(self, format, *args):  # no access log on the test's stderr
                pass

        handler = functools.partial(Handler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fetched(self, prefix: str) -> list[str]:
        """Paths fetched (status 200) that start with ``prefix``, in order."""
        return [path for path, status in self.requests if status == 200 and path.startswith(prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A Zarr store (and a NetCDF copy) in a folder served over HTTP: ``(server, local path, url)``."""
    import soundfile as sf

    from data_access import open_timeline

    folder = tmp_path_factory.mktemp("published")
    audio = tmp_path_factory.mktemp("audio") / "sweep.wav"
    sf.write(audio, chirp(200.0, 3800.0, SECONDS), SR, subtype="FLOAT")
    timeline = open_timeline([audio], start_time="2024-05-01T00:00:00")
    store = ingest(timeline, folder / "sweep.zarr", CONFIG, time_chunk=TIME_CHUNK, progress=False)
    ingest(timeline, folder / "sweep.nc", CONFIG, format="netcdf", progress=False)
    server = StaticFiles(folder)
    yield server, store, f"{server.url}/sweep.zarr"
    server.close()


def _window(atlas, start: float, seconds: float):
    t0 = atlas.time_range[0] + np.timedelta64(int(start * 1e9), "ns")
    return t0, t0 + np.timedelta64(int(seconds * 1e9), "ns")


def test_a_remote_store_opens_from_its_metadata_alone(published):
    server, store, url = published
    server.requests.clear()
    atlas = open_atlas(url)
    # One request: the root zarr.json, whose consolidated metadata describes every array.
    assert server.requests == [("/sweep.zarr/zarr.json", 200)]
    assert atlas.name == "sweep.zarr" and atlas.path == url
    local = open_atlas(store)
    assert (atlas.time_range, atlas.levels, atlas.stft) == (local.time_range, local.levels, local.stft)
    assert len(atlas.levels) == 2 and "sweep.zarr" in repr(atlas)


@pytest.mark.parametrize(
    ("start", "seconds", "width", "height", "agg"),
    [
        (0.0, SECONDS, 300, 80, "mean"),  # the whole recording, from the coarsest level
        (40.0, 4.0, 100, 60, "mean"),  # a zoom into level 1
        (70.5, 0.7, 40, 129, "max"),  # level 0, the max pyramid is not there: power
        (100.0, 8.0, 200, 50, "max"),  # level 1's power_max
    ],
)
def test_views_and_band_energy_over_http_equal_the_local_stores(published, start, seconds, width, height, agg):
    _, store, url = published
    remote, local = open_atlas(url), open_atlas(store)
    window = _window(local, start, seconds)
    got = remote.view(time=window, width=width, height=height, agg=agg)
    want = local.view(time=window, width=width, height=height, agg=agg)
    np.testing.assert_array_equal(got.values, want.values)
    np.testing.assert_array_equal(got.time.values, want.time.values)
    assert got.attrs == want.attrs
    bands = {"low": (100.0, 1000.0), "sweep": (200.0, 3800.0)}
    got = remote.band_energy(bands, time=window, points=width)
    want = local.band_energy(bands, time=window, points=width)
    for name in bands:
        np.testing.assert_array_equal(got[name].values, want[name].values)
    assert np.isfinite(want["sweep"].values).all()  # the sweep is in every frame


def test_a_zoomed_view_fetches_only_the_chunks_under_it_once(published, report):
    server, _, url = published
    atlas = open_atlas(url)
    window = _window(atlas, 50.0, 2.0)
    server.requests.clear()
    view = atlas.view(time=window, width=100, height=60)
    level = view.attrs["level"]
    lvl = atlas.levels[level]
    fetched = server.fetched("/sweep.zarr/")
    assert fetched and all(re.fullmatch(rf"/sweep\.zarr/{level}/power/c/0/\d+", p) for p in fetched), fetched
    chunks = sorted(int(p.rsplit("/", 1)[1]) for p in fetched)
    # The chunks holding the window's columns, one neighbour column either side at most, each fetched once.
    first = (window[0] - lvl.first) / np.timedelta64(1, "s") / lvl.step
    last = (window[1] - lvl.first) / np.timedelta64(1, "s") / lvl.step
    assert chunks == list(range(int(first - 1) // TIME_CHUNK, int(last + 1) // TIME_CHUNK + 1))
    n_chunks = -(-lvl.n_columns // TIME_CHUNK)
    assert 0 < len(chunks) <= 3 < n_chunks
    report("remote zoomed view (2 s of 120 s, 100 px)", f"{len(chunks)} of {n_chunks} chunk files of level {level}")
    # The same view again comes from the chunk cache: nothing is fetched.
    server.requests.clear()
    np.testing.assert_array_equal(atlas.view(time=window, width=100, height=60).values, view.values)
    assert server.requests == []


def test_store_info_and_open_store_read_a_remote_store(published):
    _, store, url = published
    remote, local = store_info(url), store_info(store)
    assert remote["path"] == url and remote["size"] is None and local["size"]["bytes"] > 0  # (sizes: local only)
    same = {k: v for k, v in remote.items() if k not in ("path", "size")}
    assert same == {k: v for k, v in local.items() if k not in ("path", "size")}
    tree = open_store(url)
    np.testing.assert_array_equal(tree["1"].power[:, 100:200].values, open_store(store)["1"].power[:, 100:200].values)


def test_the_catalog_lists_a_remote_store_with_its_time_span(published):
    _, store, url = published
    (remote,) = Catalog(stores=[url]).entries
    (local,) = Catalog(stores=[store]).entries
    assert (remote.name, remote.path) == ("sweep.zarr", url)
    assert (remote.start_time, remote.end_time, remote.duration_seconds) == (
        local.start_time,
        local.end_time,
        local.duration_seconds,
    )
    # Beside a local store of the same name, each is named with its folder: the URL's host for the remote one.
    both = Catalog(stores=[url, store]).entries
    assert [e.name for e in both] == [url.removeprefix("http://"), f"{store.parent.name}/sweep.zarr"]


@pytest.mark.parametrize(
    ("where", "error", "match"),
    [
        ("{url}/missing.zarr", SourceNotFoundError, r"no store at 'http://127\.0\.0\.1:\d+/missing\.zarr': HTTP 404"),
        ("{url}/", SourceNotFoundError, r"no store at 'http://127\.0\.0\.1:\d+': HTTP 404 Not Found for its zarr"),
        (
            "http://127.0.0.1:{closed}/x.zarr",
            SourceNotFoundError,
            r"no store at 'http://127\.0\.0\.1:\d+/x\.zarr': no answer",
        ),
        (
            "{url}/sweep.nc",
            FormatError,
            r"'http://127\.0\.0\.1:\d+/sweep\.nc': NetCDF stores must be local; publish Zarr",
        ),
        ("nosuch://host/x.zarr", ParameterError, "cannot read 'nosuch://host/x.zarr': Protocol not known: nosuch"),
    ],
)
def test_a_url_that_is_no_store_fails_in_one_line_naming_it(published, where, error, match):
    server, _, _ = published
    where = where.format(url=server.url, closed=_free_port())
    with pytest.raises(error, match=match) as info:
        open_atlas(where)
    assert "\n" not in str(info.value)


def test_spectral_atlas_info_reads_a_url(published, cli):
    _, store, url = published
    text = subprocess.run([*cli, "info", url], capture_output=True, text=True, check=True).stdout
    local = subprocess.run([*cli, "info", str(store)], capture_output=True, text=True, check=True).stdout
    assert text == re.sub(r"^size .*\n", "", local, flags=re.M)  # (a remote store's size needs a listing)
    assert "levels      2" in text and "time span   2024-05-01T00:00:00" in text
    out = subprocess.run([*cli, "info", "--json", url], capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["path"] == url
    missing = subprocess.run([*cli, "info", url.replace("sweep", "gone")], capture_output=True, text=True)
    assert missing.returncode == 1
    assert re.fullmatch(r"spectral-atlas: error: no store at '\S+/gone\.zarr': HTTP 404 Not Found.*\n", missing.stderr)


def test_spectral_atlas_serve_shows_a_remote_store(published, cli, tmp_path):
    server, _, url = published
    port = _free_port()
    server.requests.clear()
    with running([*cli, "serve", url, "--port", str(port)], f"http://127.0.0.1:{port}/", tmp_path / "serve.log"):
        text = _document_text(port)
    assert "<b>sweep.zarr</b>" in text
    # The server read the store's metadata and the first page's view from the static server, chunk by chunk.
    fetched = server.fetched("/sweep.zarr/")
    assert fetched[0] == "/sweep.zarr/zarr.json"
    assert any(re.fullmatch(r"/sweep\.zarr/\d+/power/c/0/\d+", path) for path in fetched), fetched
