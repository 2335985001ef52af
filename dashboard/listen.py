"""Listening: play the visible span, the current selection or a band, see a playhead move, save the audio.

What is played is read by :meth:`data_access.Atlas.audio` (the recorded samples, or
a reconstruction from the spectrogram, labelled so, when the recordings are not
reachable) and made ready for the browser by :func:`data_access.audio.prepare`: a
speed from 1/32 to 4 (time expansion: 1/10 plays ten times slower and a decade
lower, a 30 kHz click at 3 kHz), an optional zero-phase band-pass to the
selection's or band's frequencies, a normalised gain, and 48 kHz.

- **The sound streams.** Under ``spectral-atlas serve`` the prepared clip is a
  16-bit WAV file in a folder of the server's own, answered by
  :class:`AudioFileHandler` (tornado's static-file handler: HTTP range requests,
  ``206 Partial Content``, behind the server's login), so the page's ``<audio>``
  element starts playing while the rest arrives, and seeks by asking for the
  bytes it needs; nothing of it goes through the websocket. Elsewhere (a notebook,
  ``panel serve dashboard/app.py``) there is no such route: a clip of at most
  :data:`INLINE_MAX_SECONDS` is sent whole, inline.
- **The playhead is the page's own.** :class:`AudioPlayer` moves a vertical line on
  the spectrogram, the overview and the waveform strip from the ``<audio>``
  element's ``currentTime`` at every animation frame of the page, changing those
  lines in the page only (Bokeh's ``setv(..., {sync: false})``): no message per
  frame, no server round trip, and so no drift beyond a frame.
- **At most** ``max_seconds`` of the recording are played at once (default
  :data:`~data_access.audio.MAX_AUDIO_SECONDS`, ``serve --max-play-seconds``);
  beyond, one line says so. Every other refusal (a span in a gap, a changed or
  unreadable recording, a reconstruction too long) is one line beside the player;
  the page goes on.
- **Saving**: the span as the settings make it, WAV (float, exact) or FLAC (16-bit),
  with :func:`~data_access.audio.write_audio`, downloaded as the other downloads are.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import holoviews as hv
import numpy as np
import panel as pn
import param
import soundfile as sf
from bokeh.server.views.auth_request_handler import AuthRequestHandler
from panel.custom import JSComponent
from panel.io.state import set_curdoc
from tornado.web import StaticFileHandler, authenticated

from dashboard.failures import visitor_line
from dashboard.info import span_name
from dashboard.keys import TYPING_JS
from dashboard.session import follow, in_served_session
from dashboard.state import ExplorerState
from data_access import AtlasError, FormatError, ParameterError, SourceNotFoundError
from data_access.audio import MAX_AUDIO_SECONDS, RATE_RANGE, RECONSTRUCTED, AudioClip, prepare, write_audio
from data_access.compat import PAGE_ONLY_PLAYHEAD
from data_access.times import to_datetime64

log = logging.getLogger("spectral_atlas")

#: Speeds offered, by label: time expansion down to 1/32, up to 4 times faster.
RATES: dict[str, float] = {
    "1/32×": 1 / 32,
    "1/16×": 1 / 16,
    "1/10×": 0.1,
    "1/8×": 0.125,
    "1/4×": 0.25,
    "1/2×": 0.5,
    "1×": 1.0,
    "2×": 2.0,
    "4×": 4.0,
}
#: Sample rate of what the page plays.
OUT_RATE = 48_000
#: Longest playback sent inline where the server has no audio route (a notebook): 19 MB of WAV.
INLINE_MAX_SECONDS = 200.0
#: What is played: the visible span, the current selection, or the visible span of a band.
SOURCES = {"visible span": "view", "current selection": "selection", "a band": "band"}
#: Colour of the playhead on every plot.
PLAYHEAD_COLOR = "#00ff66"

# At most this many clips are prepared at once in a process (each holds a few copies of up to
# 10 min of samples in float64); a session's request waits its turn in its own thread.
_PREPARING = threading.BoundedSemaphore(1)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{24}\.(wav|flac)$")
_LINE = 300


# ---------------------------------------------------------------------------- the server's audio files
class AudioFolder:
    """The folder of one server's prepared audio files, named by unguessable tokens, and their route.

    Made by :func:`serve_audio_files` before the server starts (and forks: every
    process of ``--num-procs`` writes to and answers from the same folder); removed
    when the process that made it exits. Each session keeps at most its latest
    clip and its latest saved file, deleted when replaced and when the session ends.
    """

    def __init__(self, prefix: str = "") -> None:
        _remove_stale_folders()
        self._owner = os.getpid()
        self.path = Path(tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{self._owner}-"))
        self.url = f"{prefix.rstrip('/')}/audio/"

    def new_path(self, suffix: str) -> Path:
        """A fresh, unguessable file name in the folder (not created)."""
        return self.path / f"{secrets.token_urlsafe(18)}{suffix}"

    def url_of(self, path: Path) -> str:
        """The URL the page asks for ``path`` by (an absolute path on this server)."""
        return self.url + path.name

    def remove(self) -> None:
        """Remove the folder (only in the process that made it)."""
        if os.getpid() == self._owner:
            shutil.rmtree(self.path, ignore_errors=True)


_FOLDER_PREFIX = "spectral-atlas-audio-"


def _remove_stale_folders() -> None:
    """Remove the audio folders of servers of this machine that are gone (stopped by a signal, they leave them)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(_FOLDER_PREFIX).split("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # no such process: its folder is left over
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # another user's process: alive, not ours to judge
            pass


class AudioFileHandler(AuthRequestHandler, StaticFileHandler):
    """Prepared audio files, by token: tornado's static files (HTTP ranges), behind the server's login.

    A name that is not a token of ours is 404, before the file system is asked.
    """

    @authenticated
    async def get(self, path: str, include_body: bool = True) -> None:
        """The file (or the range of it asked for), if ``path`` is a token of ours."""
        if not _TOKEN.match(path):
            self.send_error(404)
            return
        await super().get(path, include_body)

    def set_extra_headers(self, path: str) -> None:
        """Its type, and that the browser may keep it."""
        # Each token names one clip for good: the browser may keep it while the page plays it.
        self.set_header("Cache-Control", "private, max-age=3600")
        if path.endswith(".wav"):
            self.set_header("Content-Type", "audio/wav")
        elif path.endswith(".flac"):
            self.set_header("Content-Type", "audio/flac")


_FOLDER: AudioFolder | None = None


def serve_audio_files(prefix: str | None = None) -> list[tuple]:
    """Make this server's audio folder; returns the route to give :func:`panel.serve` (``extra_patterns``)."""
    global _FOLDER
    if _FOLDER is None:
        _FOLDER = AudioFolder(prefix or "")
        import atexit

        atexit.register(_FOLDER.remove)
    return [(r"/audio/(.*)", AudioFileHandler, {"path": str(_FOLDER.path)})]


def audio_folder() -> AudioFolder | None:
    """The server's audio folder, or None where there is none (a notebook, ``panel serve app.py``)."""
    return _FOLDER


# ---------------------------------------------------------------------------- what to play
@dataclass(frozen=True)
class Listening:
    """What is played: a span, a band (or all of it), a speed and a channel, with how to name it.

    Two requests that are equal play the same clip: a paused clip resumes if
    nothing changed, and is read again if anything did.
    """

    time: tuple[np.datetime64, np.datetime64]
    band: tuple[float, float] | None
    rate: float
    channel: int | None
    what: str

    @property
    def seconds(self) -> float:
        """Seconds of the recording."""
        return float((self.time[1] - self.time[0]) / np.timedelta64(1, "ns")) / 1e9


def rate_label(rate: float) -> str:
    """``0.1`` -> ``"1/10×"``; ``2`` -> ``"2×"``."""
    for label, value in RATES.items():
        if math.isclose(value, rate):
            return label
    return f"{rate:g}×"


def problem_line(error: BaseException, doing: str) -> str:
    """One line for the page about a failure to read or prepare audio; the log has the rest.

    A :class:`ParameterError` is about what was asked: its own first line. A missing
    or changed recording is said without its path (a hosted page faces strangers);
    anything else is the kind of error and the log's reference (:func:`~dashboard.failures.visitor_line`).
    """
    if isinstance(error, ParameterError):
        return visitor_line(error, "", doing)[:_LINE]
    ref = secrets.token_hex(4)
    if isinstance(error, AtlasError):
        log.warning("listen %s (could not %s): %s: %s", ref, doing, type(error).__name__, error)
    else:
        log.error("failure %s (could not %s): %s: %s", ref, doing, type(error).__name__, error, exc_info=error)
    if isinstance(error, SourceNotFoundError):
        if "reconstructed from the spectrogram" in str(error):
            return (
                f"Could not {doing}: the recordings of this span are not reachable here, and it is longer than "
                f"a reconstruction from the spectrogram may be: choose a shorter span (logged as {ref})."
            )
        return f"Could not {doing}: the recordings of this span are not reachable here (logged as {ref})."
    if isinstance(error, FormatError):
        return (
            f"Could not {doing}: a recording of this span has changed since it was ingested, or cannot be "
            f"read (logged as {ref})."
        )
    return visitor_line(error, ref, doing)[:_LINE]


def wav_bytes(clip: AudioClip) -> bytes:
    """The clip as a 16-bit PCM WAV file, in memory (samples beyond full scale are clipped)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(clip.samples, -1.0, 1.0), int(round(clip.sample_rate)), format="WAV", subtype="PCM_16")
    return buffer.getvalue()


# ---------------------------------------------------------------------------- the player in the page
_PLAYER_ESM = (
    f"const typing = {TYPING_JS};\n"
    + """
export function render({ model, view }) {
  const root = document.createElement("div");
  root.className = "atlas-player";
  const audio = document.createElement("audio");
  audio.preload = "auto";
  const button = (label, title, name) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.title = title;
    b.className = name;
    b.addEventListener("mousedown", (e) => e.preventDefault());  // never focused: the space bar stays the player's
    return b;
  };
  const play = button("\\u25B6", "play / pause (space)", "atlas-play");
  const stop = button("\\u25A0", "stop", "atlas-stop");
  const clock = document.createElement("span");
  clock.className = "atlas-clock";
  const status = document.createElement("span");
  status.className = "atlas-status";
  root.append(play, stop, clock, status, audio);

  let loaded = null;  // the clip in the audio element: {id, src, start_ms, speed, seconds}
  let heads = [];
  let frame = null;
  let shown = false;  // whether the playhead shows: from a play until a stop, or the end
  const doc = view.model.document;
  const findHeads = () => {
    heads = doc == null ? [] : [...doc.all_models].filter((m) => m.name === model.playhead);
  };
  // Milliseconds of the time axis one pixel of the plot holding ``head`` spans (0 if not laid out).
  const pixel = (head) => {
    const plot = Bokeh.index.find_one(head)?.parent;
    if (plot == null || plot.frame == null) return 0;
    const { start, end } = plot.model.x_range;
    return (end - start) / Math.max(plot.frame.bbox.width, 1);
  };
  // BokehJS internals (data_access.compat.PAGE_ONLY_PLAYHEAD): without them, no playhead rather than a
  // message to the server at every frame.
  const internals = typeof Bokeh.index?.find_one === "function";
  if (model.playhead && !internals) console.warn("spectral-atlas compat: no Bokeh.index.find_one; no playhead");
  const setHeads = (location, visible) => {
    if (!internals) return;
    if (!heads.length || heads.some((h) => h.document == null)) findHeads();
    for (const h of heads) {
      // Drawn again once it has moved half a pixel (a plot is repainted for each move): at most half a
      // pixel from the audio clock, the most a line on the screen can show.
      if (h.visible === visible && Math.abs(h.location - location) < pixel(h) / 2) continue;
      // The page's own change: Bokeh sends nothing to the server for it.
      h.setv({ location, visible }, { sync: false });
    }
  };
  const minutes = (s) => {
    const m = Math.floor(s / 60);
    return `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`;
  };
  const at = () => loaded.start_ms + audio.currentTime * loaded.speed * 1000;
  const show = () => {
    const stamp = loaded ? new Date(at()).toISOString().slice(11, 21) : "";
    const text = loaded ? `${minutes(audio.currentTime)} / ${minutes(loaded.seconds)} \\u00B7 ${stamp}` : "";
    if (text !== clock.textContent) clock.textContent = text;  // (ten times a second: each change is a repaint)
  };
  const tick = () => {
    frame = null;
    if (!loaded) return;
    setHeads(at(), shown);
    show();
    if (!audio.paused && !audio.ended) frame = requestAnimationFrame(tick);
  };
  const say = () => {
    const text = model.message || model.note;
    status.textContent = text;
    status.title = text;
    status.classList.toggle("warn", Boolean(model.message));
  };
  const load = (clip) => {
    loaded = clip;
    audio.src = clip.src;
    show();
  };
  const stopped = () => {
    shown = false;
    audio.pause();
    if (loaded) {
      audio.currentTime = 0;
      setHeads(loaded.start_ms, false);
    }
    show();
  };
  const toggle = () => {
    if (!audio.paused) audio.pause();
    else model.send_msg({ action: "play" });  // the server checks the clip is what the settings ask for
  };
  audio.addEventListener("play", () => {
    shown = true;
    play.textContent = "\\u275A\\u275A";
    if (frame === null) frame = requestAnimationFrame(tick);
    model.send_msg({ playing: true });
  });
  audio.addEventListener("pause", () => {
    play.textContent = "\\u25B6";
    tick();
    model.send_msg({ playing: false });
  });
  audio.addEventListener("ended", () => {
    shown = false;
    if (loaded) setHeads(at(), false);
  });
  audio.addEventListener("seeked", () => { if (frame === null) tick(); });
  audio.addEventListener("error", () => {
    if (audio.getAttribute("src")) {
      status.textContent = "The browser could not play this audio.";
      status.classList.add("warn");
    }
  });
  play.addEventListener("click", toggle);
  stop.addEventListener("click", stopped);
  let pending = false;
  const run = () => {
    const c = model.command || {};
    if (c.clip_id && (!loaded || loaded.id !== c.clip_id)) {
      const clip = model.clip || {};
      pending = clip.id !== c.clip_id;  // its clip is on its way (one message, two changes, either order)
      if (pending) return;
      load(clip);
    }
    pending = false;
    if (c.action === "play" && loaded) {
      audio.play().catch((err) => {
        status.textContent = `The browser would not play: ${err.message}`.slice(0, 300);
        status.classList.add("warn");
      });
    } else if (c.action === "stop") {
      stopped();
    } else if (c.action === "download" && c.url) {
      const a = document.createElement("a");
      a.href = c.url;
      a.download = c.filename;
      a.style.display = "none";
      root.append(a);
      a.click();
      a.remove();
    }
  };
  model.on("command", run);
  model.on("clip", () => { if (pending) run(); });
  model.on(["message", "note"], say);
  if (model.clip && model.clip.id) load(model.clip);  // (a page drawn again: the clip, not its last command)
  say();
  const onKey = (e) => {
    if (e.key !== " " || e.repeat || e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    e.preventDefault();
    toggle();
  };
  document.addEventListener("keydown", onKey);
  model.on("remove", () => {
    document.removeEventListener("keydown", onKey);
    audio.pause();
    audio.removeAttribute("src");
  });
  return root;
}
"""
)

_PLAYER_CSS = """
.atlas-player { display: flex; align-items: center; gap: 6px; height: 28px; white-space: nowrap; overflow: hidden;
  contain: strict; }
.atlas-player button { width: 30px; height: 24px; padding: 0; border: 1px solid #adb5bd; border-radius: 4px;
  background: #f8f9fa; cursor: pointer; font-size: 12px; line-height: 20px; }
.atlas-player button:hover { background: #e9ecef; }
.atlas-clock { font-family: monospace; font-size: 12px; color: #333; flex: 0 0 auto; width: 29ch; height: 16px;
  overflow: hidden; contain: strict; }
.atlas-status { font-size: 12px; color: #555; overflow: hidden; text-overflow: ellipsis; min-width: 0; flex: 1 1 auto; }
.atlas-status.warn { color: #7a3e00; background: #fff3cd; border: 1px solid #ffe08a; border-radius: 4px;
  padding: 0 4px; }
"""


class AudioPlayer(JSComponent):
    """Play, pause and stop buttons, the clock and one line of status; the ``<audio>`` element and the playhead.

    The server says what to do through :attr:`command`, which names the clip it is
    for (the page waits for that clip if the command comes first); the page asks for
    playback with a ``{"action": "play"}`` message, and everything else (pause, stop,
    the playhead, the space bar) happens in the page.
    """

    clip = param.Dict(default={}, doc="The clip the page holds: {id, src, start_ms, speed, seconds}.")
    command = param.Dict(default={}, doc="The latest instruction: {n, action, clip_id, url?, filename?}.")
    message = param.String(default="", doc="One line: why nothing plays (plain text, shown as text).")
    note = param.String(default="", doc="One line: what plays (recorded, or reconstructed), plain text.")
    playhead = param.String(default="", doc="Name of the Bokeh Span models the playhead moves.")
    playing = param.Boolean(default=False, doc="Whether the page is playing (the page says so).")

    _esm = _PLAYER_ESM
    _stylesheets = [_PLAYER_CSS]

    def __init__(self, on_play: Callable[[], None] | None = None, **params) -> None:
        super().__init__(**params)
        self._on_play = on_play
        self._n = 0

    def send(self, action: str, clip: dict | None = None, **fields) -> None:
        """Give the page an instruction (``play``, ``stop``, ``download``), with a new clip to hold if given."""
        self._n += 1
        clip = self.clip if clip is None else clip
        self.param.update(clip=clip, command={"n": self._n, "action": action, "clip_id": clip.get("id"), **fields})

    def _handle_msg(self, msg) -> None:
        if not isinstance(msg, dict):
            return
        if msg.get("action") == "play" and self._on_play is not None:
            self._on_play()
        elif "playing" in msg:
            self.playing = bool(msg["playing"])


# ---------------------------------------------------------------------------- the panel
class ListenPanel(pn.viewable.Viewer):
    """What to play and how, the player, the playhead on the plots, and saving the audio.

    Parameters
    ----------
    state : ExplorerState
    selection : callable, optional
        ``() -> dict or None``: the current selection's ``start``, ``end``
        (datetime64[ns]), ``low_hz``, ``high_hz``, ``channel`` (an index, or None)
        and ``id``; None when there is none.
    max_seconds : float, default: MAX_AUDIO_SECONDS
        The most of the recording played or saved at once.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")
    source = param.Selector(default="view", objects=list(SOURCES.values()), doc="What is played.")
    band = param.Selector(default=None, objects=[None], allow_None=True, doc="The band played (source 'band').")
    band_pass = param.Boolean(default=False, doc="Keep only the selection's (or the view's) frequencies.")
    rate = param.Number(default=1.0, bounds=RATE_RANGE, doc="Playback speed: 0.1 plays ten times slower and lower.")
    max_seconds = param.Number(default=MAX_AUDIO_SECONDS, bounds=(0, None), inclusive_bounds=(False, True))

    def __init__(self, *, selection: Callable[[], dict | None] | None = None, **params) -> None:
        super().__init__(**params)
        self._selection = selection or (lambda: None)
        self.player = AudioPlayer(
            on_play=self.play,
            # (Moved in the page through BokehJS internals: none if they may be gone.)
            playhead=f"atlas-playhead-{uuid.uuid4().hex[:12]}" if PAGE_ONLY_PLAYHEAD.usable() else "",
            sizing_mode="stretch_width",
            height=28,
            margin=(0, 5),
            css_classes=["atlas-player-host"],
        )
        self._loaded: Listening | None = None  # what the player holds
        self._files: dict[str, Path] = {}  # this session's latest clip and saved file, by kind
        self._working = False
        self._closed = False
        self._show_bands()
        follow(self.state, self._show_bands, "bands")

    # ------------------------------------------------------------------ what to play
    def _show_bands(self, *_) -> None:
        names = list(self.state.bands)
        self.param.band.objects = names or [None]
        if self.band not in names:
            self.band = names[0] if names else None

    def request(
        self, *, source: str | None = None, rate: float | None = None, band_pass: bool | None = None
    ) -> Listening:
        """What the settings ask to play now; ``source``, ``rate`` and ``band_pass`` override them.

        Raises
        ------
        ParameterError
            No current selection (source "selection"), no band (source "band"), a
            span longer than :attr:`max_seconds`, or an override out of range.
        """
        state = self.state
        nyquist = state.atlas.freq_range[1]
        channel = state.channel
        source = self.source if source is None else source
        rate = self.rate if rate is None else rate
        band_pass = self.band_pass if band_pass is None else band_pass
        if source not in SOURCES.values():
            raise ParameterError(f"source={source!r} is not one of {list(SOURCES.values())}")
        lo, hi = RATE_RANGE
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not lo <= rate <= hi:
            raise ParameterError(f"rate={rate!r} must be a speed from 1/{1 / lo:g} to {hi:g}")
        band = None
        if source == "selection":
            current = self._selection()
            if current is None:
                raise ParameterError(
                    "No current selection to play: click a box (or press n), or play the visible span."
                )
            time = (current["start"], current["end"])
            if current.get("channel") is not None:
                channel = current["channel"]
            if band_pass:
                band = (float(current["low_hz"]), float(current["high_hz"]))
            what = f"selection {current['id']}"
        elif source == "band":
            if self.band is None or self.band not in state.bands:
                raise ParameterError("No band to play: add a band, or play the visible span.")
            time, band, what = state.time_range, state.bands[self.band], f"the band {self.band!r}"
        else:
            time, what = state.time_range, "the visible span"
            if band_pass:
                band = state.freq_range
        if band is not None:
            lo, hi = max(float(band[0]), 0.0), min(float(band[1]), nyquist)
            band = None if (lo <= 0 and hi >= nyquist) or not lo < hi else (lo, hi)
        request = Listening(
            time=(to_datetime64(time[0]), to_datetime64(time[1])),
            band=band,
            rate=float(rate),
            channel=channel,
            what=what,
        )
        if request.seconds > self.max_seconds:
            raise ParameterError(
                f"{what.capitalize()} is {_duration(request.seconds)} of recording; at most "
                f"{_duration(self.max_seconds)} is played at once (--max-play-seconds): zoom in or play a selection."
            )
        return request

    def clip(self, request: Listening | None = None, *, for_browser: bool = True) -> AudioClip:
        """The audio of a request (default: :meth:`request`), read and prepared.

        ``for_browser``: at the request's speed, band-passed, normalised and at
        :data:`OUT_RATE` (what the page plays). Otherwise as saved: the recording's
        samples, band-passed if asked, at its rate times the speed (as ``spectral-atlas audio``).

        Raises
        ------
        AtlasError
            The span cannot be read (see :meth:`data_access.Atlas.audio`) or prepared.
        """
        request = request or self.request()
        atlas = self.state.atlas
        with _PREPARING:
            clip = atlas.audio(time=request.time, channel=request.channel, max_seconds=self.max_seconds)
            if for_browser:
                return prepare(clip, rate=request.rate, band=request.band, out_rate=OUT_RATE, normalise=True)
            whole = clip.sample_rate == int(clip.sample_rate)
            if request.rate != 1 or request.band is not None or not whole:
                out = max(round(clip.sample_rate * request.rate), 1)
                clip = prepare(clip, rate=request.rate, band=request.band, out_rate=out, normalise=False)
            return clip

    def note_of(self, clip: AudioClip, request: Listening) -> str:
        """The line beside the player: recorded or reconstructed, the speed and the band (no paths)."""
        parts = [RECONSTRUCTED if clip.reconstructed else "recorded audio"]
        if request.rate != 1:
            parts.append(f"{rate_label(request.rate)} (frequencies ×{request.rate:g})")
        if request.band is not None:
            parts.append(f"band-pass {request.band[0]:g}–{request.band[1]:g} Hz")
        gaps = 1.0 - float(np.mean(clip.mask)) if clip.n_samples else 0.0
        if gaps > 0:
            parts.append(f"{100 * gaps:.0f} % gap (silence)")
        return (f"{request.what}: " + " · ".join(parts))[:_LINE]

    # ------------------------------------------------------------------ playing
    def play(self) -> None:
        """Play what the settings ask for: resume the clip loaded if it is that, else read and load it first.

        A failure is said in the player's one line. Under a server the clip is read and
        prepared on a thread of its own (the page says "preparing…" meanwhile).
        """
        player = self.player
        if self._working:
            return  # (a second press while one is prepared: the first plays)
        try:
            request = self.request()
        except AtlasError as err:
            player.message = problem_line(err, "play")
            return
        if request == self._loaded:
            player.message = ""
            player.send("play")
            return
        self._working = True
        player.param.update(message="", note=f"preparing {request.what} ({_duration(request.seconds)})…"[:_LINE])
        self._in_background(lambda: self._prepared(request), lambda result: self._play_prepared(request, result))

    def _prepared(self, request: Listening) -> tuple[AudioClip, dict]:
        clip = self.clip(request)
        seconds = clip.n_samples / clip.sample_rate
        folder = audio_folder()
        if folder is None:
            if seconds > INLINE_MAX_SECONDS:
                raise ParameterError(
                    f"{request.what.capitalize()} plays for {_duration(seconds)}, more than the "
                    f"{_duration(INLINE_MAX_SECONDS)} sent into the page here: choose a shorter span or a faster "
                    "speed (spectral-atlas serve streams longer ones)."
                )
            src = "data:audio/wav;base64," + base64.b64encode(wav_bytes(clip)).decode("ascii")
            path = None
        else:
            path = folder.new_path(".wav")
            sf.write(path, np.clip(clip.samples, -1.0, 1.0), OUT_RATE, format="WAV", subtype="PCM_16")
            src = folder.url_of(path)
        start_ms = float(clip.start.astype("datetime64[ns]").astype(np.int64)) / 1e6
        info = {"id": uuid.uuid4().hex, "src": src, "start_ms": start_ms, "speed": clip.speed, "seconds": seconds}
        return clip, {"info": info, "path": path}

    def _play_prepared(self, request: Listening, result) -> None:
        self._working = False
        player = self.player
        if self._gone(result):
            return
        if isinstance(result, BaseException):
            player.param.update(message=problem_line(result, "play"), note="")
            return
        clip, made = result
        self._keep("clip", made["path"])
        self._loaded = request
        player.param.update(message="", note=self.note_of(clip, request))
        player.send("play", clip=made["info"])

    def stop(self) -> None:
        """Stop playing (the page rewinds the clip and hides the playhead)."""
        self.player.send("stop")

    # ------------------------------------------------------------------ saving
    def save(self, fmt: str) -> None:
        """Save the span as the settings make it as ``fmt`` ("wav" or "flac"): the page downloads the file.

        WAV holds the samples exactly (32-bit float, start time in a BWF chunk); FLAC is
        16-bit, normalised only if the samples pass full scale. A failure is one line.
        """
        player = self.player
        if self._working:
            return
        try:
            request = self.request()
        except AtlasError as err:
            player.message = problem_line(err, "save the audio")
            return
        self._working = True
        player.param.update(message="", note=f"saving {request.what} as {fmt.upper()}…"[:_LINE])
        self._in_background(lambda: self._saved(request, fmt), lambda result: self._download(request, fmt, result))

    def _saved(self, request: Listening, fmt: str) -> tuple[AudioClip, dict]:
        clip = self.clip(request, for_browser=False)
        if fmt == "flac" and clip.n_samples and float(np.max(np.abs(clip.samples))) > 1:
            clip = prepare(clip, out_rate=clip.sample_rate, normalise=True)  # 16-bit FLAC holds full scale only
        name = span_name("audio", request.time, f".{fmt}")
        folder = audio_folder()
        if folder is not None:
            path = write_audio(clip, folder.new_path(f".{fmt}"))
            return clip, {"url": folder.url_of(path), "filename": name, "path": path}
        with tempfile.TemporaryDirectory() as tmp:
            data = write_audio(clip, Path(tmp) / name).read_bytes()
        return clip, {"url": f"data:audio/{fmt};base64," + base64.b64encode(data).decode("ascii"), "filename": name}

    def _download(self, request: Listening, fmt: str, result) -> None:
        self._working = False
        player = self.player
        if self._gone(result):
            return
        if isinstance(result, BaseException):
            player.param.update(message=problem_line(result, "save the audio"), note="")
            return
        clip, made = result
        self._keep("saved", made.get("path"))
        note = RECONSTRUCTED if clip.reconstructed else "recorded audio"
        player.param.update(message="", note=f"saved {made['filename']} ({note}, {clip.sample_rate:g} Hz)")
        player.send("download", url=made["url"], filename=made["filename"])

    # ------------------------------------------------------------------ a notebook
    def to_ipython(self, *, autoplay: bool = False, **overrides):
        """An ``IPython.display.Audio`` of what the settings ask for (see :meth:`AudioClip.to_ipython`).

        ``overrides``: ``source``, ``rate``, ``band_pass`` for this once (see :meth:`request`).

        Raises
        ------
        AtlasError
            What :meth:`request` and :meth:`clip` raise.
        """
        audio = self.clip(self.request(**overrides)).to_ipython()
        audio.autoplay = autoplay
        return audio

    # ------------------------------------------------------------------ plumbing
    def _in_background(self, work: Callable[[], object], then: Callable[[object], None]) -> None:
        """``then(work())`` (or ``then(error)``): under a server, ``work`` on a thread and ``then`` in the session."""
        if not in_served_session():
            try:
                result = work()
            except Exception as error:  # said in one line by ``then``
                result = error
            then(result)
            return
        doc = pn.state.curdoc

        def run() -> None:
            try:
                result = work()
            except Exception as error:
                result = error

            def in_session() -> None:
                with set_curdoc(doc):
                    then(result)

            try:
                doc.add_next_tick_callback(in_session)  # (Bokeh's one thread-safe way into a document)
            except Exception:  # the session ended meanwhile: nothing to say it to, nothing to keep
                self._closed = True
                self._gone(result)

        threading.Thread(target=run, name="spectral-atlas-audio", daemon=True).start()

    def _keep(self, kind: str, path: Path | None) -> None:
        """Remember this session's latest file of ``kind``, deleting the one it replaces."""
        old = self._files.pop(kind, None)
        if old is not None:
            old.unlink(missing_ok=True)
        if path is not None:
            self._files[kind] = path

    def _gone(self, result) -> bool:
        """Whether the panel was closed while ``result`` was made (its file is then deleted at once)."""
        if self._closed and not isinstance(result, BaseException) and result[1].get("path") is not None:
            result[1]["path"].unlink(missing_ok=True)
        return self._closed

    def close(self) -> None:
        """Delete this session's files (the page closed, or shows another store: the page's player stops itself)."""
        self._closed = True
        for path in self._files.values():
            path.unlink(missing_ok=True)
        self._files.clear()

    def playhead(self):
        """An overlay for the plots' ``overlay`` doors: the playhead, a vertical line the page moves and shows."""
        name = self.player.playhead
        first = self.state.atlas.time_range[0]

        def named(plot, element) -> None:
            span = plot.handles.get("glyph")
            if span is not None:  # hidden until the page plays (the page's own changes are never sent back)
                span.update(name=name, visible=False, level="overlay")

        def draw():
            return hv.VLine(first).opts(
                backend="bokeh", color=PLAYHEAD_COLOR, line_width=2, line_alpha=0.95, hooks=[named]
            )

        return draw, []

    def __panel__(self) -> pn.viewable.Viewable:
        """The settings and the save buttons (the player itself sits over the spectrogram: :attr:`player`)."""
        source = pn.widgets.Select.from_param(self.param.source, options=SOURCES, name="play", width=130)
        band = pn.widgets.Select.from_param(
            self.param.band, name="band", width=125, visible=self.param.source.rx() == "band"
        )
        rate = pn.widgets.Select.from_param(self.param.rate, options=RATES, name="speed", width=80)
        band_pass = pn.widgets.Checkbox.from_param(
            self.param.band_pass, name="band-pass to the selection's (or the shown) frequencies"
        )
        wav = pn.widgets.Button(label="audio (WAV)", color="light", css_classes=["save-wav"])
        flac = pn.widgets.Button(label="audio (FLAC)", color="light", css_classes=["save-flac"])
        wav.on_click(lambda e: self.save("wav"))
        flac.on_click(lambda e: self.save("flac"))
        limit = pn.pane.HTML(
            f"plays at most {_duration(self.max_seconds)} of the recording at once, at 48 kHz, normalised; "
            "<b>space</b> plays and pauses",
            styles={"font-size": "0.8em"},
        )
        return pn.Card(
            pn.Row(source, band, rate),
            band_pass,
            pn.Row(wav, flac),
            limit,
            title="listen",
            collapsed=False,
            sizing_mode="stretch_width",
            css_classes=["listen"],
        )


def _duration(seconds: float) -> str:
    """``75`` -> ``"1 min 15 s"``; ``0.25`` -> ``"0.25 s"``."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min" + (f" {rest} s" if rest else "")
