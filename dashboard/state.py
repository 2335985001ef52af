"""The explorer's shared selection: what is on screen, with no Panel import.

:class:`ExplorerState` holds the store, the visible time and frequency window,
the colour settings and the bands; every view reads it and writes it, so the
spectrogram, the overview and the band curves always agree. It is a plain
``param.Parameterized``, tested without a browser or a server.
"""

from __future__ import annotations

import logging
import re
from typing import get_args

import colorcet as cc
import numpy as np
import param

from data_access import Atlas, ParameterError
from data_access.query import FreqScale
from data_access.times import to_datetime64

#: Bands this field asks about most, in Hz.
PRESET_BANDS: dict[str, tuple[float, float]] = {
    "fin whale": (15.0, 30.0),
    "shipping": (50.0, 500.0),
    "dolphin whistles": (12_500.0, 25_000.0),
    "clicks": (25_000.0, 32_000.0),
    "broadband": (10.0, 32_000.0),
}

#: colorcet maps offered for the spectrogram, perceptually uniform.
COLORMAPS = ["fire", "bmy", "bgy", "kbc", "rainbow4", "gray"]

#: Colours a band takes, in order: the first one no band shown holds (legible on white and on the colormaps).
BAND_PALETTE = list(cc.palette["glasbey_category10"])

#: The narrowest time range shown: 64 samples at 64 kHz, far below a frame. (A plot's time axis
#: is milliseconds in float64: at a few microseconds it cannot tell its ends apart and draws nothing.)
MIN_SPAN = np.timedelta64(1_000_000, "ns")  # (in ns: halved, it stays exact)

_NS = np.timedelta64(1, "ns")

log = logging.getLogger("spectral_atlas")
_TIME_OF_DAY = re.compile(r"^\s*\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*$")


def same_range(a: tuple, b: tuple) -> bool:
    """Whether range ``a`` is range ``b`` up to a plot's rounding: both ends within a millionth of b's width.

    Works for time ranges (datetime64) and frequency ranges (Hz) alike.
    """
    return max(abs(a[0] - b[0]), abs(a[1] - b[1])) <= (b[1] - b[0]) * 1e-6


def band_name(text: str) -> str:
    """A band's name as given, without surrounding blanks.

    Raises
    ------
    ParameterError
        The name is empty, or holds a character that is not printed text (a
        control character such as a link's ``%00``: no name a plot can label).
    """
    name = text.strip()
    if not name:
        raise ParameterError("a band needs a name")
    if not name.isprintable():
        odd = next(c for c in name if not c.isprintable())
        raise ParameterError(f"a band's name is text on one line; {name!r} holds U+{ord(odd):04X}")
    return name


def typed_time(t: np.datetime64) -> str:
    """A time as people write it and the inputs show it: ``2026-01-15 00:00:30.931`` (UTC, milliseconds)."""
    text = str(np.datetime64(t, "ms")).replace("T", " ")
    return text if "." in text else f"{text}.000"


def read_typed_time(text: str, day_of: np.datetime64) -> np.datetime64:
    """A typed time: a full date and time, or a time of day (``00:20:00``) on the day of ``day_of``.

    Raises
    ------
    ParameterError
        The text is not a time.
    """
    if _TIME_OF_DAY.match(text):
        text = f"{str(np.datetime64(day_of, 'D'))} {text.strip()}"
    return to_datetime64(text.strip())


class ExplorerState(param.Parameterized):
    """The selection every view of one store shares.

    Times are numpy ``datetime64[ns]`` (UTC); frequencies in Hz; levels in dB.
    """

    atlas = param.ClassSelector(class_=Atlas, doc="The open store.")
    time_range = param.Tuple(default=None, length=2, allow_None=True, doc="Visible (start, end), datetime64[ns].")
    freq_range = param.Range(default=None, doc="Visible (low, high) in Hz.")
    db_range = param.Range(default=(-70.0, 0.0), doc="Colour limits in dB.")
    cmap = param.Selector(default="fire", objects=COLORMAPS, doc="colorcet colormap of the spectrogram.")
    agg = param.Selector(default="mean", objects=["mean", "max"], doc="How frames sharing a pixel combine.")
    freq_scale = param.Selector(
        default="linear",
        objects=list(get_args(FreqScale)),
        doc="How the spectrogram's frequency axis is spaced: linear (the STFT's bins), log or mel "
        "(rows even in log Hz or in mel); ranges, bands and selections stay in Hz.",
    )
    channel = param.Selector(
        default=None,
        objects=[None],
        doc="Channel shown, an index into atlas.channels (named by its label); None for a single-channel store.",
    )
    bands = param.Dict(default={}, doc="Named frequency bands (low, high) in Hz, drawn as curves.")
    selection = param.Integer(
        default=None,
        allow_None=True,
        doc="Id of the current selection (a box in the store's selection table, see dashboard.selections); None: none.",
    )
    band_colors = param.Dict(default={}, doc="Colour of each band (read-only: a band keeps its colour for its life).")
    point = param.Parameter(
        default=None, doc="Time of the last click on the spectrogram (datetime64[ns]); None: no click yet."
    )
    level = param.Integer(default=0, doc="Pyramid level of the last image (read-only for users).")
    read_ms = param.Number(default=0.0, doc="Milliseconds the last image took to read and rasterize.")
    gap_share = param.Number(default=0.0, bounds=(0, 1), doc="Share of the last image's time with no data.")
    busy = param.Boolean(default=False, doc="A pan or zoom is being answered with a new image.")

    def __init__(self, atlas: Atlas, **params) -> None:
        super().__init__(atlas=atlas)
        # The first watcher on bands (watchers run in the order they were added): the others find the colours given.
        self.param.watch(self._give_colors, "bands")
        if atlas.channels:  # the choices are this store's channels, by label
            self.param.channel.objects = {label: i for i, label in enumerate(atlas.channels)}
            self.channel = 0
        self.param.update(params)
        if self.time_range is None:
            self.time_range = atlas.time_range
        if self.freq_range is None:
            self.freq_range = atlas.freq_range
        # What a plot about 1000 pixels wide will read, until the first image says.
        self.level = atlas.choose_level(self.time_range, 1000).level
        if "db_range" not in params:
            # Colours fitted to the recording (a calibrated store reads 40..150 dB re 1 µPa²/Hz,
            # an uncalibrated one -120..0 dB re full scale): percentiles of the coarsest picture.
            try:
                self.auto_db_range(atlas.view(width=400, height=200, channel=self.channel).values)
            except ParameterError:  # nothing has a level: the default limits
                pass
            except Exception:  # unreadable (a corrupt chunk): the default limits; the views report what fails
                log.warning("%s: could not read the coarsest level to fit the colours", atlas.name, exc_info=True)
        if not self.bands:
            nyquist = atlas.freq_range[1]
            self.bands = {name: band for name, band in PRESET_BANDS.items() if band[1] <= nyquist}
        self._give_colors()

    def _give_colors(self, *_) -> None:
        """Keep the colours of the bands that stay; give each new band the first colour no band holds."""
        kept = {name: color for name, color in self.band_colors.items() if name in self.bands}
        for name in self.bands:
            if name not in kept:
                taken = set(kept.values())
                free = [c for c in BAND_PALETTE if c not in taken]
                kept[name] = free[0] if free else BAND_PALETTE[len(kept) % len(BAND_PALETTE)]
        if kept != self.band_colors:
            self.band_colors = kept

    # ----------------------------------------------------------------- actions
    def set_time(self, start: object, end: object, *, keep: str = "width") -> bool:
        """Show ``start..end``, clamped to the recording.

        Parameters
        ----------
        keep : {"width", "ends"}, default: "width"
            What clamping keeps: the range's width (a page or zoom moved past an
            end slides back inside), or each end that lies inside the recording
            (typed times: an end past the recording becomes its end, the start stays).
            A range narrower than :data:`MIN_SPAN` is widened about its centre.

        Returns
        -------
        bool
            Whether the range shown differs from the one asked for (it was clamped).

        Raises
        ------
        ParameterError
            An empty or inverted range, or (``keep="ends"``) one entirely outside the recording.
        """
        wanted = (to_datetime64(start), to_datetime64(end))
        self.time_range = self.clamped_time(*wanted, keep=keep)
        return self.time_range != wanted

    def set_freq(self, low: float, high: float) -> bool:
        """Show ``low..high`` Hz, the high end clipped to Nyquist; returns whether it was clipped.

        Raises
        ------
        ParameterError
            Unless 0 <= low < high and low is below Nyquist.
        """
        low, high = float(low), float(high)
        nyquist = self.atlas.freq_range[1]
        if not (np.isfinite(low) and np.isfinite(high) and 0 <= low < min(high, nyquist)):
            raise ParameterError(
                f"frequency range {low:g} .. {high:g} Hz must have 0 <= low < high, low < {nyquist:g} Hz"
            )
        self.freq_range = (low, min(high, nyquist))
        return high > nyquist

    def set_view(self, time: tuple[object, object], freq: tuple[float, float] | None = None) -> None:
        """Show a time range and, if given, a frequency range, in one change.

        This is what a pan or zoom of the plot reports: the views redraw once, not
        once per axis. Ranges that differ from the shown ones by less than a
        millionth of their width (a plot's rounding) change nothing.
        """
        changes = {}
        t0, t1 = self.clamped_time(*time)
        if not same_range((t0, t1), self.time_range):
            changes["time_range"] = (t0, t1)
        if freq is not None:
            lo, hi = self.atlas.freq_range
            f0, f1 = max(float(freq[0]), lo), min(float(freq[1]), hi)
            if f0 < f1 and not same_range((f0, f1), self.freq_range):
                changes["freq_range"] = (f0, f1)
        self.param.update(changes)

    def clamped_time(self, start: object, end: object, keep: str = "width") -> tuple[np.datetime64, np.datetime64]:
        """The range :meth:`set_time` would show for ``start..end`` (see there), without showing it."""
        t0, t1 = to_datetime64(start), to_datetime64(end)
        if not t0 < t1:
            raise ParameterError(
                f"time range {typed_time(t0)} .. {typed_time(t1)} is empty or inverted: start must come before end"
            )
        first, last = self.atlas.time_range
        if keep == "ends":
            if t1 <= first or t0 >= last:
                raise ParameterError(
                    f"time range {typed_time(t0)} .. {typed_time(t1)} is outside the recording, "
                    f"which spans {typed_time(first)} .. {typed_time(last)}"
                )
            t0, t1 = max(t0, first), min(t1, last)
        if t1 - t0 < MIN_SPAN:
            centre = t0 + (t1 - t0) // 2
            t0, t1 = centre - MIN_SPAN // 2, centre + MIN_SPAN // 2
        span = min(t1 - t0, last - first)
        if t0 < first:
            t0, t1 = first, first + span
        if t1 > last:
            t0, t1 = last - span, last
        return t0, t1

    def zoom(self, factor: float) -> None:
        """Zoom about the centre: ``factor`` < 1 zooms in, > 1 out."""
        t0, t1 = self.time_range
        centre = t0 + (t1 - t0) // 2
        half = max(int((t1 - t0) / _NS * factor / 2), 1) * _NS
        self.set_time(centre - half, centre + half)

    def page(self, pages: float) -> None:
        """Move by ``pages`` screen widths (negative: back in time)."""
        t0, t1 = self.time_range
        shift = int((t1 - t0) / _NS * pages) * _NS
        self.set_time(t0 + shift, t1 + shift)

    def whole(self) -> None:
        """Show the whole recording, every frequency."""
        self.param.update(time_range=self.atlas.time_range, freq_range=self.atlas.freq_range)

    def add_band(self, name: str, low: float, high: float, *, replace: bool = False) -> None:
        """Add a band, checked against 0..Nyquist; a name already shown is refused unless ``replace``."""
        name = band_name(name)
        if name in self.bands and not replace:
            lo, hi = self.bands[name]
            raise ParameterError(
                f"a band {name!r} ({lo:g} .. {hi:g} Hz) is already shown: remove it or choose another name"
            )
        nyquist = self.atlas.freq_range[1]
        if not (np.isfinite(low) and np.isfinite(high) and 0 <= low < high <= nyquist):
            raise ParameterError(f"band {name!r} = {low:g} .. {high:g} Hz must have 0 <= low < high <= {nyquist:g} Hz")
        self.bands = {**self.bands, name: (float(low), float(high))}

    def remove_band(self, name: str) -> None:
        """Drop a band by name (no error if it is not there)."""
        self.bands = {k: v for k, v in self.bands.items() if k != name}

    def auto_db_range(self, view_db: np.ndarray, low: float = 2.0, high: float = 99.5) -> None:
        """Set the colour limits from percentiles of the dB values on screen.

        Raises
        ------
        ParameterError
            Nothing on screen has a level (all gap, or digital silence): the limits stay.
        """
        finite = view_db[np.isfinite(view_db)]
        if not finite.size:
            raise ParameterError("nothing shown has a level (the view is all gap or silence): the colour limits stay")
        lo, hi = np.percentile(finite, [low, high])
        self.db_range = (float(np.floor(lo)), float(np.ceil(max(hi, lo + 1))))
