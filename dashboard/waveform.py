"""The waveform strip: the samples' envelope over the time the spectrogram shows, read per gesture in O(pixels).

:meth:`data_access.Atlas.waveform` gives, for the visible span and the strip's
width in pixels, the min, max and RMS of the samples of each column of the level
a view of that width reads (``kind="summary"``), or, zoomed in to a few samples a
pixel, the samples themselves (``kind="samples"``). The strip draws min..max as a
filled band and -RMS..RMS inside it, or the samples as a line. Its time axis is
the state's ``time_range``, always (as the band curves'): it follows each gesture
once the spectrogram's new image is on its way, and has no pan or zoom of its own.
A store written before waveform summaries (format 1 or 2) shows no strip, only a
quiet line saying that ``spectral-atlas upgrade`` adds it.
"""

from __future__ import annotations

import html

import holoviews as hv
import numpy as np
import panel as pn
import param
import xarray as xr

from dashboard.failures import read_or_report
from dashboard.session import visible_after_image
from dashboard.spectrogram import CANVAS, Overlaid
from dashboard.state import ExplorerState
from data_access.query import MAX_WIDTH

#: Pixels the strip takes on the page.
HEIGHT = 90

_ENVELOPE = "#7aa6c2"  # min..max: a light blue
_RMS = "#1f4e6e"  # -RMS..RMS, and the samples' line: a dark blue
_DEFAULT_WIDTH = 1000
# The strip's frame spans the spectrogram's: the same left border (its frequency labels), and on the right
# the room of the spectrogram's colour bar and toolbar (112 px in Bokeh 3.9, whatever the window's width:
# asked as 122, which Bokeh lays out as 112).
_LEFT, _RIGHT = 75, 122


def _frame(time_range: tuple, units: str) -> xr.Dataset:
    """What a strip that could not be read shows: no values over the span."""
    nan = np.full(2, np.nan, dtype=np.float32)
    return xr.Dataset(
        {"min": ("time", nan), "max": ("time", nan.copy()), "rms": ("time", nan.copy())},
        coords={"time": np.asarray(time_range, dtype="datetime64[ns]")},
        attrs={"kind": "summary", "units": units},
    )


def amplitude_label(units: str) -> str:
    """The strip's y-axis label for the samples' units (``"1"``: full scale; ``"count"``: MiniSEED counts)."""
    return "full scale" if units in ("1", "") else units


def missing_line(atlas) -> str:
    """The quiet line a store without waveform summaries shows in place of the strip (plain text)."""
    return (
        f"No waveform strip: this store predates waveform summaries; `spectral-atlas upgrade {atlas.name}` adds them."
    )


class WaveformStrip(Overlaid, pn.viewable.Viewer):
    """The waveform of the visible span, under the spectrogram, on the same time axis.

    Other panels mark things on it (the playhead) through :meth:`overlay`.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._overlays: list[hv.DynamicMap] = []

    def read(self, time_range: tuple, width: int, channel: int | None = None) -> xr.Dataset:
        """The waveform of ``time_range`` for a strip ``width`` pixels wide (see :meth:`data_access.Atlas.waveform`).

        A read that fails is said in the explorer's one line (:mod:`dashboard.failures`) and
        gives no values over the span.
        """
        atlas = self.state.atlas
        width = min(max(int(width or _DEFAULT_WIDTH), 2), MAX_WIDTH)
        return read_or_report(
            self.state,
            "read the waveform",
            lambda: atlas.waveform(time=time_range, width=width, channel=channel),
            lambda: _frame(time_range, "1"),
        )

    def _plot(self, time_range, width, height, scale=1.0, channel=None) -> hv.Overlay:
        t0, t1 = time_range
        wave = self.read(time_range, width, channel)
        units = str(wave.attrs.get("units", "1"))
        amplitude = hv.Dimension("amplitude", label=amplitude_label(units))
        times = wave.time.values
        lo, hi, rms = (wave[name].values.astype(np.float64) for name in ("min", "max", "rms"))
        with np.errstate(invalid="ignore"):
            peak = np.nanmax(np.abs(np.concatenate([lo, hi]))) if np.isfinite(lo).any() else np.nan
        # Symmetric about zero, fitted to what is shown (a quiet hydrophone is not a flat line at full scale).
        reach = float(peak) * 1.05 if np.isfinite(peak) and peak > 0 else 1.0
        common = {"xlim": (t0, t1), "ylim": (-reach, reach)}
        if wave.attrs.get("kind") == "samples":
            line = hv.Curve((times, lo), "time", amplitude).opts(backend="bokeh", color=_RMS, line_width=1, **common)
            return hv.Overlay([line])
        inner_lo, inner_hi = np.maximum(-rms, lo), np.minimum(rms, hi)  # RMS inside the envelope
        envelope = hv.Area((times, lo, hi), "time", [amplitude, "max"]).opts(
            backend="bokeh", color=_ENVELOPE, line_alpha=0, fill_alpha=1.0, **common
        )
        inner = hv.Area((times, inner_lo, inner_hi), "time", [amplitude, "rms_high"]).opts(
            backend="bokeh", color=_RMS, line_alpha=0, fill_alpha=1.0, **common
        )
        return envelope * inner

    def __panel__(self) -> pn.viewable.Viewable:
        atlas = self.state.atlas
        if not atlas.has_waveform:
            return pn.pane.HTML(
                html.escape(missing_line(atlas), quote=False),
                css_classes=["waveform-missing"],
                styles={"color": "#6c757d", "font-size": "0.85em", "font-style": "italic"},
                sizing_mode="stretch_width",
                height=22,
                margin=(0, 5, 0, _LEFT + 5),
            )
        streams = [
            visible_after_image(self.state),
            hv.streams.Params(self.state, ["channel"]),
            hv.streams.PlotSize(),
        ]
        dmap = hv.DynamicMap(self._plot, streams=streams)
        plot = self.overlaid(dmap).opts(
            {
                "Overlay": dict(
                    framewise=True,
                    responsive=True,
                    height=HEIGHT,
                    title="",
                    xlabel="",
                    xaxis=None,  # the spectrogram's above says the time
                    yaxis="left",
                    show_legend=False,
                    default_tools=[],
                    toolbar=None,
                    yticks=3,
                    fontsize={"ylabel": "8pt", "yticks": "8pt"},
                    backend_opts={
                        **CANVAS,
                        "plot.min_border_left": _LEFT,
                        "plot.min_border_right": _RIGHT,
                        "plot.min_border_top": 4,
                    },
                ),
                "Curve": dict(framewise=True, default_tools=[]),
                "Area": dict(framewise=True, default_tools=[]),
            },
            backend="bokeh",
        )
        pane = pn.pane.HoloViews(
            backend="bokeh",
            object=plot,
            linked_axes=False,
            sizing_mode="stretch_width",
            height=HEIGHT,
            css_classes=["waveform-strip"],
        )
        # In a column of its own: Bokeh lines up the frames of the plots of one column (the overview's too).
        return pn.Column(pane, sizing_mode="stretch_width", height=HEIGHT, margin=0)
