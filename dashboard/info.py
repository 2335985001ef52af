"""What is shown, as facts and as files: the info pane and the two downloads (curves CSV, view NetCDF)."""

from __future__ import annotations

import html
import io

import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from dashboard.scales import describe
from dashboard.session import follow, visible_after_image
from dashboard.state import ExplorerState, typed_time


def _stamp(t: np.datetime64) -> str:
    """A time for a file name: ``20260115T000030.931``."""
    return typed_time(t).replace("-", "").replace(":", "").replace(" ", "T")


def _no_formula(cell: str) -> str:
    """A CSV cell a spreadsheet shows as text: one starting with = + - @ (a formula there) gets a leading '."""
    return f"'{cell}" if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def span_name(stem: str, time_range: tuple[np.datetime64, np.datetime64], suffix: str) -> str:
    """A download's file name, with the span it holds: ``band_curves_20260115T000000.000-20260115T000600.000.csv``."""
    return f"{stem}_{_stamp(time_range[0])}-{_stamp(time_range[1])}{suffix}"


class InfoPane(pn.viewable.Viewer):
    """Store, files, recording span, span shown, STFT parameters, level and read time; says when all is gap.

    Every value (a store's name may be anything) is escaped: shown as text, never as markup.
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")
    store_label = param.String(default=None, allow_None=True, doc="The store's name as listed (default: its own).")

    def _text(self, time_range, level, read_ms, gap_share, freq_scale="linear", freq_range=None) -> str:
        atlas = self.state.atlas
        stft = atlas.stft
        shown = " → ".join(typed_time(t) for t in time_range)
        recorded = " → ".join(typed_time(t)[:19] for t in atlas.time_range)
        files = f"{len(atlas.sources)} file{'s' * (len(atlas.sources) != 1)}"
        lines = [
            f"<b>{html.escape(self.store_label or atlas.name)}</b> · {files}",
            f"recording {recorded}",
            f"showing {shown}",
            f"{atlas.sample_rate:g} Hz · n_fft {stft.n_fft} · hop {stft.hop_length} · {html.escape(stft.window)}",
            f"level <b>{level}</b> ({atlas.levels[level].step:.4g} s/column) · read {read_ms:.0f} ms",
            describe(atlas, freq_scale, freq_range or self.state.freq_range),
        ]
        if gap_share >= 1.0:
            lines.append("<b>no data in this view</b>: the recording has a gap here")
        elif gap_share > 0:
            lines.append(f"no data over {100 * gap_share:.0f} % of this view (hatched)")
        return "<br>".join(lines)

    def __panel__(self) -> pn.viewable.Viewable:
        state = self.state
        # Follows the image (level, read time), not the gesture: see visible_after_image.
        text = pn.bind(
            self._text,
            visible_after_image(state).param.time_range,
            state.param.level,
            state.param.read_ms,
            state.param.gap_share,
            state.param.freq_scale,
            state.param.freq_range,
        )
        return pn.pane.HTML(text, css_classes=["atlas-info"], sizing_mode="stretch_width")


class Downloads(pn.viewable.Viewer):
    """The visible band curves as CSV and the visible spectrogram as NetCDF, named by their span.

    The CSV's columns name each band's limits and units; the NetCDF carries the
    store, the STFT parameters, the calibration and the units, and the array of the
    scale shown (log or mel rows: ``freq`` their centres, ``freq_scale`` and
    ``freq_edges`` in its attributes).
    """

    state = param.ClassSelector(class_=ExplorerState, doc="The shared selection.")
    curves = param.Callable(doc="points -> DataFrame of the visible curves (index time_utc).")
    view = param.Callable(doc="(width, height) -> the visible spectrogram, a DataArray in dB.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.csv = pn.widgets.FileDownload(callback=self._csv, label="curves (CSV)", color="light")
        self.netcdf = pn.widgets.FileDownload(callback=self._netcdf, label="view (NetCDF)", color="light")
        self._name_files()
        follow(self.state, self._name_files, "time_range", target=visible_after_image(self.state))

    def _name_files(self, *_) -> None:
        self.csv.filename = span_name("band_curves", self.state.time_range, ".csv")
        self.netcdf.filename = span_name("spectrogram_view", self.state.time_range, ".nc")

    def _csv(self) -> io.StringIO:
        frame: pd.DataFrame = self.curves(None)
        units = frame.attrs.get("units", "dB")
        bands = self.state.bands
        frame = frame.rename(
            columns={n: _no_formula(f"{n} [{bands[n][0]:g}-{bands[n][1]:g} Hz] ({units})") for n in frame.columns}
        )
        return io.StringIO(frame.to_csv())

    def _netcdf(self) -> io.BytesIO:
        view: xr.DataArray = self.view(1200, 600)
        atlas = self.state.atlas
        stft = atlas.stft
        view.attrs.update(
            store=atlas.name,
            sample_rate=atlas.sample_rate,
            n_fft=stft.n_fft,
            hop_length=stft.hop_length,
            win_length=stft.win_length,
            window=stft.window,
            calibration=atlas.calibration.summary() if atlas.calibration else "none",
            time_start=typed_time(self.state.time_range[0]),
            time_end=typed_time(self.state.time_range[1]),
            software=str(atlas.attrs.get("software", "spectral-atlas")),
        )
        view.freq.attrs.update(units="Hz", long_name="frequency")
        return io.BytesIO(view.to_netcdf(engine="h5netcdf"))

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(self.csv, self.netcdf)
