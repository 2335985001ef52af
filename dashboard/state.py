"""The explorer's shared selection: what is on screen, with no Panel import.

:class:`ExplorerState` holds the store, the visible time and frequency window,
the colour settings and the bands; every view reads it and writes it, so the
spectrogram, the overview and the band curves always agree. It is a plain
``param.Parameterized``, tested without a browser or a server.
"""

from __future__ import annotations

import numpy as np
import param

from data_access import Atlas, ParameterError
from data_access.sources import to_datetime64

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

_NS = np.timedelta64(1, "ns")


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
    channel = param.Selector(
        default=None,
        objects=[None],
        doc="Channel shown, an index into atlas.channels (named by its label); None for a single-channel store.",
    )
    bands = param.Dict(default={}, doc="Named frequency bands (low, high) in Hz, drawn as curves.")
    level = param.Integer(default=0, doc="Pyramid level of the last image (read-only for users).")
    read_ms = param.Number(default=0.0, doc="Milliseconds the last image took to read and rasterize.")
    busy = param.Boolean(default=False, doc="A pan or zoom is being answered with a new image.")

    def __init__(self, atlas: Atlas, **params) -> None:
        super().__init__(atlas=atlas)
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
            self.auto_db_range(atlas.view(width=400, height=200, channel=self.channel).values)
        if not self.bands:
            nyquist = atlas.freq_range[1]
            self.bands = {name: band for name, band in PRESET_BANDS.items() if band[1] <= nyquist}

    # ----------------------------------------------------------------- actions
    def set_time(self, start: object, end: object) -> None:
        """Show ``start..end``, clamped to the recording; keeps the width when clamping."""
        self.time_range = self._clamped_time(start, end)

    def set_view(self, time: tuple[object, object], freq: tuple[float, float] | None = None) -> None:
        """Show a time range and, if given, a frequency range, in one change.

        This is what a pan or zoom of the plot reports: the views redraw once, not
        once per axis. Ranges that differ from the shown ones by less than a
        millionth of their width (a plot's rounding) change nothing.
        """
        changes = {}
        t0, t1 = self._clamped_time(*time)
        shown = self.time_range
        if max(abs(t0 - shown[0]), abs(t1 - shown[1])) > (shown[1] - shown[0]) * 1e-6:
            changes["time_range"] = (t0, t1)
        if freq is not None:
            lo, hi = self.atlas.freq_range
            f0, f1 = max(float(freq[0]), lo), min(float(freq[1]), hi)
            width = self.freq_range[1] - self.freq_range[0]
            if f0 < f1 and max(abs(f0 - self.freq_range[0]), abs(f1 - self.freq_range[1])) > width * 1e-6:
                changes["freq_range"] = (f0, f1)
        self.param.update(changes)

    def _clamped_time(self, start: object, end: object) -> tuple[np.datetime64, np.datetime64]:
        t0, t1 = to_datetime64(start), to_datetime64(end)
        if not t0 < t1:
            raise ParameterError(f"time range {t0} .. {t1} is empty or inverted: start must come before end")
        first, last = self.atlas.time_range
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
        """Show the whole recording."""
        self.time_range = self.atlas.time_range

    def add_band(self, name: str, low: float, high: float) -> None:
        """Add (or replace) a band, checked against 0..Nyquist."""
        name = name.strip()
        if not name:
            raise ParameterError("a band needs a name")
        nyquist = self.atlas.freq_range[1]
        if not 0 <= low < high <= nyquist:
            raise ParameterError(f"band {name!r} = {low:g} .. {high:g} Hz must have 0 <= low < high <= {nyquist:g} Hz")
        self.bands = {**self.bands, name: (float(low), float(high))}

    def remove_band(self, name: str) -> None:
        """Drop a band by name (no error if it is not there)."""
        self.bands = {k: v for k, v in self.bands.items() if k != name}

    def auto_db_range(self, view_db: np.ndarray, low: float = 2.0, high: float = 99.5) -> None:
        """Set the colour limits from percentiles of the dB values on screen."""
        finite = view_db[np.isfinite(view_db)]
        if finite.size:
            lo, hi = np.percentile(finite, [low, high])
            self.db_range = (float(np.floor(lo)), float(np.ceil(max(hi, lo + 1))))
