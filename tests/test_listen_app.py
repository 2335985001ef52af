"""Listening in the app (issue 18): the player, the playhead, the waveform strip, saving, bad input.

The first half drives :class:`dashboard.listen.ListenPanel` and
:class:`dashboard.waveform.WaveformStrip` in Python on stores ingested from real
audio files (a 1 kHz tone over noise, two files with a gap between them): what is
read, what the browser is given, what a person is told. The second half serves a
real ``spectral-atlas serve`` to headless Chromium (as tests/test_browser.py does)
and checks what a person hears and sees: the ``<audio>`` element plays, the playhead
moves with it, the space bar pauses, 1/10 speed serves a clip ten times longer over
HTTP ranges, a span over the limit is one line, the waveform strip shares the
spectrogram's axis, and a store without its recordings plays a labelled
reconstruction. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from chromium import MAIN_FIGURE
from conftest import SR, noise, tone
from PIL import Image
from playwright.sync_api import expect
from test_browser import (  # noqa: F401  (the two fixtures launch Debian's Chromium)
    IDLE,
    _free_port,
    _info_text,
    browser_context_args,
    browser_type_launch_args,
    frame,
    open_app,
    running,
    settled,
    shot,
    wait_for,
)

from data_access import ParameterError, StftConfig, ingest, open_atlas, open_timeline
from data_access.audio import RECONSTRUCTED
from data_access.demo import make_demo

T0 = np.datetime64("2026-03-01T12:00:00", "ns")
S = np.timedelta64(1, "s")
MS = np.timedelta64(1, "ms")


# ------------------------------------------------------------------------------------------ stores
def _deployment(folder: Path) -> Path:
    """Two 20 s files at 8 kHz, 5 s apart (a gap 12:00:20-12:00:25), a 1 kHz tone over noise; ingested."""
    folder.mkdir(parents=True, exist_ok=True)
    wavs = []
    for i, name in enumerate(("s_20260301_120000.wav", "s_20260301_120025.wav")):
        path = folder / name
        sf.write(path, noise(20.0, amp=0.01, seed=i) + tone(1000.0, 20.0, amp=0.1), SR, subtype="FLOAT")
        wavs.append(path)
    return ingest(open_timeline(wavs), folder / "s.zarr", StftConfig(n_fft=256), progress=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return _deployment(tmp_path_factory.mktemp("listen"))


@pytest.fixture
def fresh_store(tmp_path) -> Path:
    """A store of its own, whose recordings a test may move or break."""
    return _deployment(tmp_path / "deployment")


def _listen(store: Path, *, audio_root: str | None = None, selection=None, **params):
    from dashboard.listen import ListenPanel
    from dashboard.state import ExplorerState

    state = ExplorerState(open_atlas(store, audio_root=audio_root))
    return ListenPanel(state=state, selection=selection, **params)


def _decoded(url: str) -> tuple[np.ndarray, int]:
    """The samples and rate of a ``data:`` URL's audio file."""
    assert url.startswith("data:audio/"), url[:40]
    data = base64.b64decode(url.split(",", 1)[1])
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    return samples, rate


def _peak_hz(samples: np.ndarray, rate: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


# ------------------------------------------------------------------------------------------ playing
def test_play_gives_the_page_the_visible_span_at_48_khz_from_its_first_sample(store):
    panel = _listen(store)
    panel.state.set_time(T0 + 2 * S, T0 + 12 * S)
    panel.play()
    player = panel.player
    assert player.message == ""
    assert player.note == "the visible span: recorded audio"
    command = player.command
    clip = player.clip
    assert command["action"] == "play" and command["clip_id"] == clip["id"]
    assert clip["start_ms"] == (T0 + 2 * S).astype("datetime64[ms]").astype(np.int64)  # the span's first sample
    assert clip["speed"] == 1.0 and clip["seconds"] == pytest.approx(10.0)
    samples, rate = _decoded(clip["src"])
    assert rate == 48_000 and len(samples) == 480_000
    assert np.max(np.abs(samples)) == pytest.approx(0.9, abs=1e-3)  # normalised
    assert _peak_hz(samples, rate) == pytest.approx(1000, abs=2)  # the tone, where it was
    # Pressed again with nothing changed: the same clip resumes (no new read).
    panel.play()
    assert player.command["action"] == "play" and player.command["n"] == command["n"] + 1
    assert player.clip is clip


def test_one_tenth_speed_lasts_ten_times_longer_and_brings_the_tone_a_decade_down(store):
    panel = _listen(store, rate=0.1)
    panel.state.set_time(T0 + 2 * S, T0 + 6 * S)
    panel.play()
    clip = panel.player.clip
    assert clip["speed"] == pytest.approx(0.1) and clip["seconds"] == pytest.approx(40.0)
    samples, rate = _decoded(clip["src"])
    assert len(samples) == 40 * 48_000  # 4 s of recording play for 40 s
    assert _peak_hz(samples, rate) == pytest.approx(100, abs=0.5)  # 1 kHz heard at 100 Hz
    assert "1/10×" in panel.player.note


def test_band_pass_to_the_selection_removes_the_tone_outside_it(store):
    box = {"id": 7, "start": T0 + 1 * S, "end": T0 + 5 * S, "low_hz": 2000.0, "high_hz": 3500.0, "channel": None}
    shares = {}
    for band_pass in (False, True):
        panel = _listen(store, selection=lambda: box, source="selection", band_pass=band_pass)
        request = panel.request()
        assert request.time == (box["start"], box["end"]) and request.what == "selection 7"
        assert request.band == ((2000.0, 3500.0) if band_pass else None)
        panel.play()
        samples, rate = _decoded(panel.player.clip["src"])
        power = np.abs(np.fft.rfft(samples)) ** 2
        hz = np.fft.rfftfreq(len(samples), 1 / rate)
        shares[band_pass] = power[(hz > 950) & (hz < 1050)].sum() / power.sum()
    assert shares[False] > 0.9  # the tone is most of the unfiltered clip
    assert shares[True] < 0.01  # one octave below the band: gone (>= 40 dB down)
    assert "band-pass 2000–3500 Hz" in panel.player.note


def test_a_band_plays_the_visible_span_band_passed_to_it(store):
    panel = _listen(store, source="band")
    panel.state.add_band("tone", 900, 1100)
    panel.band = "tone"
    panel.state.set_time(T0 + 1 * S, T0 + 3 * S)
    assert panel.request().band == (900.0, 1100.0)
    assert panel.request().what == "the band 'tone'"


@pytest.mark.parametrize(
    "where, source, line",
    [
        ("long", "view", "The visible span is 45 s of recording; at most 30 s is played at once (--max-play-seconds)"),
        ("gap", "view", "holds no recorded audio: it falls in a gap between the files"),
        ("none", "selection", "No current selection to play"),
    ],
)
def test_what_cannot_be_played_is_one_line_and_nothing_is_read(store, monkeypatch, where, source, line):
    panel = _listen(store, max_seconds=30, source=source)
    spans = {"long": None, "gap": (T0 + 21 * S, T0 + 24 * S), "none": (T0, T0 + 2 * S)}
    if spans[where] is not None:
        panel.state.set_time(*spans[where])
    panel.play()
    player = panel.player
    assert line in player.message and "\n" not in player.message and len(player.message) <= 300
    assert player.command == {}  # the page is given nothing to play
    # The panel goes on: a span that can be played plays.
    panel.source = "view"
    panel.state.set_time(T0 + 1 * S, T0 + 2 * S)
    panel.play()
    assert player.message == "" and player.command["action"] == "play"


def test_recordings_that_moved_are_found_under_audio_root_or_else_reconstructed_and_labelled(fresh_store, tmp_path):
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(fresh_store.parent / "s_20260301_120000.wav", moved / "s_20260301_120000.wav")
    span = (T0 + 2 * S, T0 + 7 * S)
    rebuilt = _listen(fresh_store)
    rebuilt.state.set_time(*span)
    rebuilt.play()
    assert rebuilt.player.message == ""
    assert rebuilt.player.note == f"the visible span: {RECONSTRUCTED}"
    assert str(tmp_path) not in rebuilt.player.note  # no server path on the page
    samples, rate = _decoded(rebuilt.player.clip["src"])
    assert len(samples) == 5 * 48_000 and _peak_hz(samples, rate) == pytest.approx(1000, abs=20)
    from dashboard.explorer import SpectrogramExplorer  # (serve --audio-root DIR gives the explorer audio_root)

    explorer = SpectrogramExplorer(str(fresh_store), audio_root=str(moved))
    explorer.time_range = span
    explorer.listen.play()
    assert explorer.listen.player.note == "the visible span: recorded audio"


@pytest.mark.parametrize("damage", ["changed", "unreadable"])
def test_a_changed_or_unreadable_recording_is_refused_in_one_line_without_its_path(fresh_store, damage, caplog):
    wav = fresh_store.parent / "s_20260301_120000.wav"
    if damage == "changed":
        sf.write(wav, tone(500.0, 19.0), SR, subtype="FLOAT")  # another recording under the same name
    else:
        wav.write_bytes(b"not audio at all" * 1000)
    panel = _listen(fresh_store)
    panel.state.set_time(T0 + 2 * S, T0 + 7 * S)
    panel.play()
    line = panel.player.message
    assert line.startswith(
        "Could not play: a recording of this span has changed since it was ingested, or cannot be read"
    )
    assert str(fresh_store.parent) not in line and "\n" not in line
    ref = re.search(r"logged as (\w+)", line).group(1)
    assert ref in caplog.text and "s_20260301_120000.wav" in caplog.text  # the log has what the page does not
    assert panel.player.command == {}


# ------------------------------------------------------------------------------------------ saving and notebooks
@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_save_downloads_the_span_at_the_recordings_rate(store, fmt):
    panel = _listen(store)
    span = (T0 + 2 * S, T0 + 4500 * MS)
    panel.state.set_time(*span)
    panel.save(fmt)
    command = panel.player.command
    assert command["action"] == "download"
    assert command["filename"] == f"audio_20260301T120002.000-20260301T120004.500.{fmt}"
    samples, rate = _decoded(command["url"])
    recorded = open_atlas(store).audio(time=span).samples
    assert rate == SR and len(samples) == len(recorded) == 2.5 * SR
    if fmt == "wav":
        np.testing.assert_array_equal(samples, recorded)  # 32-bit float: the samples themselves
    else:
        np.testing.assert_allclose(samples, recorded, atol=1 / 2**15)  # 16-bit
    assert panel.player.note.startswith(f"saved {command['filename']} (recorded audio, 8000 Hz)")


def test_the_explorer_gives_a_notebook_an_ipython_audio_of_the_view(store):
    from IPython.display import Audio

    from dashboard.explorer import SpectrogramExplorer

    explorer = SpectrogramExplorer(str(store))
    explorer.time_range = (T0 + 1 * S, T0 + 3 * S)
    audio = explorer.audio()
    assert isinstance(audio, Audio) and not audio.autoplay
    held = sf.info(io.BytesIO(audio.data))  # what the notebook's player is given: a WAV file
    assert (held.samplerate, held.frames) == (48_000, 2 * 48_000)
    slow = explorer.play(rate=0.25)
    assert slow.autoplay and sf.info(io.BytesIO(slow.data)).frames == 8 * 48_000  # four times longer
    assert explorer.listen.rate == 1.0  # the player's own setting is left as it was
    with pytest.raises(ParameterError, match="No current selection to play"):
        explorer.audio(source="selection")
    with pytest.raises(ParameterError, match="rate=8 must be a speed from 1/32 to 4"):
        explorer.audio(rate=8)


# ------------------------------------------------------------------------------------------ waveform strip
def test_the_waveform_strip_reads_the_visible_span_at_its_width_and_shows_samples_when_zoomed_in(store):
    import holoviews as hv
    import panel as pn
    from bokeh.models import GlyphRenderer, Patch, Plot

    from dashboard.state import ExplorerState
    from dashboard.waveform import WaveformStrip

    hv.extension("bokeh")
    state = ExplorerState(open_atlas(store))
    strip = WaveformStrip(state=state)
    root = pn.panel(strip).get_root()
    (figure,) = root.select({"type": Plot})

    def x_range() -> tuple[np.datetime64, np.datetime64]:
        return tuple(np.datetime64(v, "ns") for v in (figure.x_range.start, figure.x_range.end))

    assert x_range() == state.time_range
    patches = [r for r in root.select({"type": GlyphRenderer}) if isinstance(r.glyph, Patch)]
    assert len(patches) == 2  # min..max, and -RMS..RMS inside it
    whole = strip.read(state.time_range, 800)
    assert whole.attrs["kind"] == "summary" and whole.sizes["time"] <= 2 * 800
    gap = (whole.time.values > T0 + 21 * S) & (whole.time.values < T0 + 24 * S)
    assert np.isnan(whole["max"].values[gap]).all()  # the gap between the files is no waveform
    state.set_time(T0 + 10 * S, T0 + 10 * S + 100 * MS)  # 800 samples
    assert x_range() == state.time_range
    close = strip.read(state.time_range, 800)
    assert close.attrs["kind"] == "samples" and close.sizes["time"] == 800
    overlay = strip._plot(state.time_range, 800, 90)
    assert [type(e).__name__ for e in overlay] == ["Curve"]  # the samples, as a line


def test_a_store_without_waveform_summaries_shows_one_quiet_line_instead():
    import panel as pn

    from dashboard.state import ExplorerState
    from dashboard.waveform import WaveformStrip

    old = open_atlas(Path(__file__).parent / "data" / "format1.zarr")
    assert not old.has_waveform
    shown = pn.panel(WaveformStrip(state=ExplorerState(old)))
    assert "waveform-missing" in shown.css_classes
    assert "spectral-atlas upgrade format1.zarr" in shown.object


@pytest.mark.parametrize(
    "options, message",
    [
        ({"audio_root": "/no/such/folder"}, "--audio-root '/no/such/folder' is not a folder"),
        ({"max_play_seconds": 0}, "--max-play-seconds 0 must be a positive number of seconds"),
    ],
)
def test_serve_refuses_listening_options_that_cannot_work(options, message):
    from dashboard.options import ServerOptions

    with pytest.raises(ParameterError, match=re.escape(message)):
        ServerOptions(**options)


# ------------------------------------------------------------------------------------------ in the browser
@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("demo"), hours=0.1, progress=False).parent


@pytest.fixture(scope="module")
def server(demo_dir, tmp_path_factory, cli):
    port = _free_port()
    cmd = [*cli, "serve", str(demo_dir / "demo.zarr"), "--port", str(port), "--max-play-seconds", "60"]
    with running(cmd, f"http://127.0.0.1:{port}/", tmp_path_factory.mktemp("log") / "serve.log") as url:
        yield url


@pytest.fixture
def app(page, server):
    return open_app(page, server)


def show(page, start: str, end: str) -> None:
    for label, value in (("end (UTC)", end), ("start (UTC)", start)):
        field = page.locator(f"text={label}").locator("xpath=..").locator("input").first
        field.fill(value)
        field.press("Enter")
    wait_for(lambda: f"showing {start}.000 → {end}.000" in _info_text(page))


# What the page's player holds: its audio element and the playhead lines.
AUDIO = """(host) => { const a = host.shadowRoot.querySelector('audio');
    return {time: a.currentTime, paused: a.paused, src: a.src, duration: a.duration,
            status: host.shadowRoot.querySelector('.atlas-status').textContent}; }"""
HEADS = """() => [...Bokeh.documents[0].all_models].filter((m) => m.name && m.name.startsWith('atlas-playhead'))
    .map((m) => [m.location, m.visible])"""
# For `seconds`, at every animation frame: [page clock (ms), audio.currentTime (s), the spectrogram's playhead (ms)].
RECORD = """([host, seconds]) => new Promise((done) => {
    const audio = host.shadowRoot.querySelector('audio'), out = [], end = performance.now() + seconds * 1000;
    const main = MAIN_FIGURE;
    const head = [...Bokeh.documents[0].all_models].find((m) => m.name && m.name.startsWith('atlas-playhead')
        && Bokeh.index.find_one(m).parent === main);
    const step = () => {
        out.push([performance.now(), audio.currentTime, head.location]);
        if (performance.now() < end) requestAnimationFrame(step); else done(out);
    };
    requestAnimationFrame(step);
})""".replace("MAIN_FIGURE", MAIN_FIGURE)


def player(page):
    return page.locator(".atlas-player-host")


SENT = """() => {
  window.atlasSent = 0;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (...args) { window.atlasSent += 1; return send.apply(this, args); };
}"""


def test_play_moves_the_playhead_with_the_sound_and_space_pauses(app, report):
    show(app, "2026-01-15 00:01:00", "2026-01-15 00:01:20")
    settled(app, 0.5)
    app.locator(".atlas-play").click()
    wait_for(lambda: player(app).evaluate(AUDIO)["time"] > 0.5)
    assert "the visible span: recorded audio" in player(app).evaluate(AUDIO)["status"]
    # The playhead is drawn from the audio element's clock at the page's frames, moved once it is half a
    # pixel off (25 ms here): over 6 s it stays within that and a frame of it; the clock keeps to the page's.
    # Count what the page sends the server meanwhile (the page's one websocket, through its prototype).
    app.evaluate(SENT)
    samples = np.array(app.evaluate(RECORD, [player(app).element_handle(), 6.0]))
    sent = app.evaluate("window.atlasSent")
    wall, clock, head = samples[:, 0] / 1e3, samples[:, 1], samples[:, 2]
    start_ms = np.datetime64("2026-01-15T00:01:00", "ms").astype(np.int64)
    behind = np.abs(head - (start_ms + clock * 1000)).max()
    drift = np.abs((clock - clock[0]) - (wall - wall[0])).max() * 1e3
    report("playhead behind the audio clock (6 s)", f"{behind:.1f} ms max over {len(samples)} frames")
    report("audio clock against the page's clock (6 s)", f"{drift:.1f} ms max")
    assert behind <= 50 and drift <= 50
    # The moves are the page's own (data_access.compat.PAGE_ONLY_PLAYHEAD): not a message a frame.
    report("messages the page sent while the playhead moved (6 s)", f"{sent} over {len(samples)} frames")
    assert sent < len(samples) / 10
    heads = app.evaluate(HEADS)
    assert len(heads) == 3 and all(visible for _, visible in heads)  # spectrogram, overview, waveform strip
    locations = [location for location, _ in heads]
    assert max(locations) - min(locations) <= 200  # (half a pixel of the 6 min overview is 180 ms)
    # The line is where the clock says, on the picture.
    box = frame(app)
    at = player(app).evaluate(AUDIO)["time"]
    shot(app, "50-playhead")
    pixels = np.asarray(Image.open(io.BytesIO(app.screenshot(clip=box))).convert("RGB")).astype(int)
    green = (pixels[:, :, 1] > 200) & (pixels[:, :, 0] < 120) & (pixels[:, :, 2] < 160)
    columns = np.flatnonzero(green.mean(axis=0) > 0.8)  # a line the frame's height
    assert columns.size, "no playhead on the spectrogram"
    expected = at / 20 * box["width"]
    assert abs(columns.mean() - expected) < box["width"] * 0.02  # (it moved on a little meanwhile)
    # Space pauses; space again resumes the same clip where it stopped.
    app.locator("body").click(position={"x": 5, "y": 990})
    app.keyboard.press(" ")
    wait_for(lambda: player(app).evaluate(AUDIO)["paused"])
    paused = player(app).evaluate(AUDIO)
    time.sleep(0.8)
    assert player(app).evaluate(AUDIO)["time"] == paused["time"]
    app.keyboard.press(" ")
    wait_for(lambda: player(app).evaluate(AUDIO)["time"] > paused["time"] + 0.3)
    assert player(app).evaluate(AUDIO)["src"] == paused["src"]
    app.keyboard.press(" ")
    assert app.errors == []


def test_one_tenth_speed_serves_a_clip_ten_times_longer_over_http_ranges(app, server):
    show(app, "2026-01-15 00:04:00", "2026-01-15 00:04:06")
    app.locator("select").filter(has=app.locator("option", has_text="1/10×")).select_option("1/10×")
    time.sleep(0.5)
    app.locator(".atlas-play").click()
    wait_for(lambda: player(app).evaluate(AUDIO)["time"] > 0.2)
    held = player(app).evaluate(AUDIO)
    assert held["duration"] == pytest.approx(60.0, abs=0.01)  # 6 s of recording, ten times slower
    assert "1/10×" in held["status"]
    # The browser asked for it in ranges, and the server answers any range of it.
    request = urllib.request.Request(held["src"], headers={"Range": "bytes=0-43"})
    with urllib.request.urlopen(request) as reply:
        assert reply.status == 206 and reply.headers["Content-Range"].endswith(f"/{44 + 60 * 48_000 * 2}")
        header = reply.read()
    info = sf.info(io.BytesIO(header + bytes(16)))
    assert (info.samplerate, info.channels, info.subtype) == (48_000, 1, "PCM_16")
    # A name that is not one of the server's tokens is nothing.
    for name in ("..%2F..%2Fetc%2Fpasswd", "AAAAAAAAAAAAAAAAAAAAAAAA.wav"):
        with pytest.raises(urllib.error.HTTPError, match="404") as answer:
            urllib.request.urlopen(f"{server}audio/{name}")
        answer.value.close()
    player(app).locator(".atlas-stop").click()
    wait_for(lambda: player(app).evaluate(AUDIO)["paused"])
    assert not any(visible for _, visible in app.evaluate(HEADS))
    # Saved as the settings make it: the recording's samples at its rate times the speed (as spectral-atlas audio).
    with app.expect_download() as download:
        app.get_by_role("button", name="audio (FLAC)").click()
    assert download.value.suggested_filename == "audio_20260115T000400.000-20260115T000406.000.flac"
    saved = sf.SoundFile(download.value.path())
    assert (saved.samplerate, saved.frames, saved.subtype) == (6_400, 6 * 64_000, "PCM_16")  # 60 s long
    assert saved.date.startswith("2026-01-15T00:04:00")


def test_the_audio_route_is_behind_the_servers_login(demo_dir, tmp_path, cli):
    port = _free_port()
    cmd = [*cli, "serve", str(demo_dir / "demo.zarr"), "--port", str(port), "--prefix", "/atlas"]
    cmd += ["--basic-auth", "a-password", "--cookie-secret", "a-cookie-secret-of-some-length"]
    with running(cmd, f"http://127.0.0.1:{port}/atlas/", tmp_path / "serve.log"):

        class Stay(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args):
                return None

        opener = urllib.request.build_opener(Stay)
        with pytest.raises(urllib.error.HTTPError) as answer:
            opener.open(f"http://127.0.0.1:{port}/atlas/audio/AAAAAAAAAAAAAAAAAAAAAAAA.wav")
        answer.value.close()
        assert answer.value.code == 302 and "/atlas/login?" in answer.value.headers["Location"]


def test_a_span_over_the_limit_says_one_line_and_the_page_goes_on(app):
    app.locator(".atlas-play").click()  # the whole recording: 6 min, the server plays at most 1 min
    expect(player(app)).to_contain_text("The visible span is 6 min of recording; at most 1 min is played at once")
    shot(app, "51-over-the-limit")
    assert player(app).evaluate(AUDIO)["paused"]
    app.locator("text=zoom +").first.click()
    wait_for(lambda: "showing 2026-01-15 00:01:30.000 → 2026-01-15 00:04:30.000" in _info_text(app))
    assert app.errors == []


# The figures of the page as Bokeh holds them: the spectrogram (tallest) and the waveform strip (names amplitude).
AXES = f"""() => {{
    const views = [...Bokeh.index.all_views()].filter((v) => v.model.type === "Figure" && v.frame);
    const main = {MAIN_FIGURE};
    const strip = views.find((v) => v.model.left.some((axis) => axis.axis_label === "full scale"));
    const edges = (v) => {{ const r = v.el.getBoundingClientRect(), f = v.frame.bbox;
        return [r.x + f.x, r.x + f.x + f.width]; }};
    return {{main: [main.model.x_range.start, main.model.x_range.end], strip: [strip.model.x_range.start,
             strip.model.x_range.end], main_edges: edges(main), strip_edges: edges(strip)}};
}}"""


def test_the_waveform_strip_shares_the_spectrograms_time_axis_and_follows_a_zoom(app):
    def same_axis() -> dict:
        axes = app.evaluate(AXES)
        return axes if axes["strip"] == pytest.approx(axes["main"], abs=1) else None

    axes = wait_for(same_axis)
    assert axes["strip_edges"] == pytest.approx(axes["main_edges"], abs=1)  # one above the other
    box = frame(app)
    app.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.5)
    for _ in range(4):
        app.mouse.wheel(0, -300)
        time.sleep(0.3)
    settled(app)
    axes = wait_for(same_axis)
    shown = _info_text(app).split("showing ")[1].split(" → ")
    start = np.datetime64(shown[0].strip()[:23].replace(" ", "T"), "ms").astype(np.int64)
    assert axes["main"][0] == pytest.approx(start, abs=1)  # the state's span, as the info pane says it
    assert axes["main"][1] - axes["main"][0] < 0.5 * 360_000  # zoomed in
    shot(app, "52-waveform-zoomed")
    assert app.errors == []


def test_a_store_without_its_recordings_plays_a_labelled_reconstruction(page, tmp_path, cli):
    store = make_demo(tmp_path / "demo", hours=0.03, progress=False)
    for flac in store.parent.glob("*.flac"):  # the store copied without its recordings
        flac.unlink()
    port = _free_port()
    cmd = [*cli, "serve", str(store), "--port", str(port)]
    with running(cmd, f"http://127.0.0.1:{port}/", tmp_path / "serve.log") as url:
        page.goto(url)
        page.wait_for_function(IDLE, timeout=60_000)
        show(page, "2026-01-15 00:01:00", "2026-01-15 00:01:10")
        page.locator(".atlas-play").click()
        expect(player(page)).to_contain_text(f"the visible span: {RECONSTRUCTED}", timeout=60_000)
        wait_for(lambda: player(page).evaluate(AUDIO)["time"] > 0.5)
        shot(page, "53-reconstructed")
        assert str(tmp_path) not in player(page).evaluate(AUDIO)["status"]
