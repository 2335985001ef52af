"""Viewport and band-energy reads in O(pixels), whatever the recording's length.

:func:`open_atlas` opens a store without reading any of its data. Each read
picks the coarsest pyramid level that still has at least one column per pixel
(or per output point), reads just the time chunks that cover the window
through a bounded, process-wide LRU cache of decoded chunks, and reduces them
to the pixel grid. A view of a month costs what a view of a minute costs.
Zoomed in further than one frame (or one bin) per pixel, a view is not
upsampled: it returns the frames (bins) that meet the window themselves, at
their centres, so a plot draws each one over exactly its own time (centre ±
hop / 2) and frequency (centre ± sample_rate / n_fft / 2).

The level's column ``j`` is placed by arithmetic on the regular frame grid
(``start_time``, ``hop_length``, ``pyramid_factor**k``), never by loading a time coordinate,
so opening a 30-day store reads a few kilobytes of metadata.

Conventions
-----------
- ``view`` returns dB of power per bin (``10 log10 |X|^2``), re full scale for
  PCM audio; the mean of power is taken before dB, never the mean of dB.
  On a calibrated store it returns the power spectral density instead, in
  dB re 1 µPa²/Hz: ``k(f) |X|^2 * 2 / (sample_rate * sum(window**2))`` (not
  doubled at DC and Nyquist), which is ``scipy.signal.spectrogram``'s
  ``scaling="density"`` times the calibration factor ``k(f)``.
- ``band_energy`` returns dB of *band power*: the one-sided sum of ``|X|^2``
  over the band's bins, a bin straddling a band edge weighted by the fraction
  of its width inside the band, divided by ``n_fft * sum(window**2)``. By
  Parseval, the band 0..Nyquist then equals the window-weighted mean square of
  the frame: a full-scale sine reads -3.01 dB re full scale.
  On a calibrated store each bin's power is first multiplied by ``k(f)``, so
  band levels are dB re 1 µPa (mean-square pressure in the band).
- Calibration (:class:`~data_access.calibration.Calibration`, held in the
  store's root attributes) is the factor ``k(f)`` from stored power to µPa² per
  bin (:attr:`Atlas.power_scale`), applied at read time; stored power is never
  rewritten.
- ``waveform`` returns the min, max and RMS of the samples per column of the
  same level a view of that width reads (a store of format 3 keeps them: see
  :mod:`data_access.waveform`), in the samples' units (full scale 1.0 for PCM
  audio, counts for MiniSEED; never calibrated); zoomed in to a few samples a
  pixel, the samples themselves when the recordings can be read.
- A store of every channel (``channel="all"``) lists them in
  :attr:`Atlas.channels`; ``view``, ``band_energy`` and ``waveform`` read one at a time,
  ``channel=0`` by default. A single-channel store has ``channels == []`` and
  takes ``channel=None`` or ``0`` only.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import xarray as xr

from data_access.errors import AtlasError, FormatError, ParameterError
from data_access.schema import BAND_UNITS, PSD_UNITS, WAVE_NAMES, column_times, read_location, read_root
from data_access.stft import StftConfig
from data_access.store import StoreReader, store_name
from data_access.times import samples_to_timedelta, seconds_to_ns, to_datetime64
from data_access.waveform import reduce_wave

if TYPE_CHECKING:
    from data_access.audio import AudioClip

Agg = Literal["mean", "max"]
FreqScale = Literal["linear", "log", "mel"]
TimeLike = object

#: Default size of the process-wide chunk cache; ``SPECTRAL_ATLAS_CACHE_MB`` overrides it.
DEFAULT_CACHE_BYTES = int(float(os.environ.get("SPECTRAL_ATLAS_CACHE_MB", "512")) * 2**20)

_SECOND = np.timedelta64(1_000_000_000, "ns")

#: The largest view and curve a read makes, whoever asks (a served page states its own plot size):
#: a 4096 x 2048 view is 32 MB of float32, 8192 points per band curve.
MAX_WIDTH, MAX_HEIGHT, MAX_POINTS = 4096, 2048, 8192
#: A waveform of a window holding at most this many samples per pixel is the samples themselves
#: (when the recordings can be read), not summaries.
SAMPLES_PER_PIXEL = 4

# A cell that meets a window by less than this fraction of its width is left out of it:
# a window read back from a plot whose edges were on cell edges (float ms in Bokeh) is
# off them by a few 1e-7 s, and would otherwise take in one more cell at each read.
_SLIVER = 1e-3


class ChunkCache:
    """A thread-safe LRU of decoded chunks, bounded in bytes.

    Parameters
    ----------
    max_bytes : int
        Chunks are evicted, least recently used first, to stay under this.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: tuple) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: tuple, load) -> np.ndarray:
        """The chunk under ``key``, calling ``load()`` to read it on a miss."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
        value = load()
        value.setflags(write=False)  # shared by every caller: nobody may change it
        with self._lock:
            if key not in self._items:
                self._items[key] = value
                self.nbytes += value.nbytes
            while self.nbytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self.nbytes -= old.nbytes
        return value

    def resize(self, max_bytes: int) -> None:
        """Change the bound, evicting at once if it shrank."""
        with self._lock:
            self.max_bytes = max_bytes
            while self.nbytes > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self.nbytes -= old.nbytes

    def clear(self) -> None:
        """Forget every chunk (and the hit counts)."""
        with self._lock:
            self._items.clear()
            self.nbytes = self.hits = self.misses = 0


#: The process-wide cache every :class:`Atlas` reads through.
CACHE = ChunkCache()


def set_cache_size(megabytes: float) -> None:
    """Bound the process-wide chunk cache to ``megabytes``."""
    if not megabytes > 0:
        raise ParameterError(f"cache size {megabytes!r} MB must be positive")
    CACHE.resize(int(megabytes * 2**20))


@dataclass(frozen=True)
class Level:
    """One pyramid level on the regular frame grid.

    Attributes
    ----------
    level : int
    n_columns : int
    first : numpy.datetime64
        Centre time of column 0.
    step : float
        Seconds between column centres (``factor**level * hop / sample_rate``).
    time_chunk : int
        Columns per stored chunk along time.
    start : numpy.datetime64
        The recording's first sample.
    stft : StftConfig
        The store's STFT parameters (the columns' times: :func:`~data_access.schema.column_times`).
    sample_rate : float
    factor : int
        The store's pyramid factor: level ``k`` averages ``factor**k`` frames per column.
    """

    level: int
    n_columns: int
    first: np.datetime64
    step: float
    time_chunk: int
    start: np.datetime64
    stft: StftConfig
    sample_rate: float
    factor: int

    @property
    def frames_per_column(self) -> int:
        """Full-resolution frames averaged into one column."""
        return self.factor**self.level

    def coarser(self, levels: int) -> Level:
        """The level ``levels`` above this one, as the pyramid would make it: for reductions made on reading."""
        group = self.factor**levels
        level = self.level + levels
        return dataclasses.replace(
            self,
            level=level,
            n_columns=-(-self.n_columns // group),
            first=column_times(self.start, self.sample_rate, self.stft, level, 0, 1, factor=self.factor)[0],
            step=self.step * group,
            time_chunk=1,  # (no chunks: nothing of it is stored)
        )

    def column_times(self, start: int, stop: int) -> np.ndarray:
        """Centre times of columns ``start..stop-1``, datetime64[ns].

        Counted in samples from the recording's start, as the store's own time
        coordinate is, so a level-0 column's time is its frame's centre to the
        nanosecond (``first + j * step`` in float seconds can be 1 ns off).
        """
        return column_times(self.start, self.sample_rate, self.stft, self.level, start, stop, factor=self.factor)


def _at_least_two(lo: int, hi: int, n: int) -> tuple[int, int]:
    """Widen ``[lo, hi)`` to two items where ``n`` allows: by the one before, else the one after.

    Either neighbour would do; taking the earlier one keeps a lone item at index 1,
    where the upsampled views of earlier versions showed it.
    """
    if hi - lo >= 2 or n < 2:
        return lo, hi
    return (lo - 1, lo + 1) if lo >= 1 else (0, 2)


class Atlas:
    """A spectrogram store opened for O(pixels) reads.

    Use :func:`open_atlas`. Attributes describe the recording: ``time_range``
    (first sample to end of last sample), ``freq_range`` (0 to Nyquist, Hz),
    ``levels``, ``stft`` (:class:`StftConfig`), ``sample_rate``, ``sources``,
    ``calibration`` (a :class:`~data_access.calibration.Calibration` or None),
    ``channels`` (labels of a multichannel store's channels: SEED ids for
    MiniSEED, else "0", "1", ...; ``[]`` for a single-channel store), and the
    units of views (``units``) and of band curves (``band_units``).
    ``path`` is where the store is: a :class:`~pathlib.Path`, or the URL of a
    remote store as a str; ``name`` is its last part (``x.zarr``). ``audio_root``
    (a Path or None) is where :meth:`audio` looks for recordings that moved.
    """

    def __init__(self, path: str | os.PathLike, audio_root: str | os.PathLike | None = None) -> None:
        self._reader = StoreReader(path)
        self.path: Path | str = self._reader.path
        self.audio_root = None if audio_root is None else Path(audio_root)
        attrs = self.attrs = self._reader.attrs
        try:
            root = read_root(attrs)
        except FormatError as err:
            raise FormatError(f"{str(self.path)!r}: {err}") from None
        self.sample_rate, self.stft, self.sources = root.sample_rate, root.stft, root.sources
        self.calibration = root.calibration
        start = root.start_time
        self.time_range = (start, root.end_time)
        n_levels = root.n_levels
        self.freq_range = (0.0, self.sample_rate / 2)
        self.df = self.sample_rate / self.stft.n_fft
        self.channels: list[str] = self._reader.channels
        self._chunks: dict[tuple[int, str], int] = {}  # columns per chunk of each array read
        hop, n_fft = self.stft.hop_length, self.stft.n_fft
        self.levels = [
            Level(
                level=k,
                n_columns=self._reader.shape(k, "power")[-1],
                first=column_times(start, self.sample_rate, self.stft, k, 0, 1, factor=root.pyramid_factor)[0],
                step=root.pyramid_factor**k * hop / self.sample_rate,
                time_chunk=self._reader.time_chunk(k),
                start=start,
                stft=self.stft,
                sample_rate=self.sample_rate,
                factor=root.pyramid_factor,
            )
            for k in range(n_levels)
        ]
        sum_w2 = float(np.sum(self.stft.window_array**2))
        self._band_norm = n_fft * sum_w2
        if self.calibration is None:
            counts = self._reader.array_attrs(0, "power").get("units") == "count2"
            self.units = self.band_units = "dB re 1 count²" if counts else "dB re full scale"
            self._power_scale = self._psd_scale = None
        else:
            self.units, self.band_units = PSD_UNITS, BAND_UNITS
            self._power_scale = self.calibration.power_factor(self.stft.frequencies(self.sample_rate))
            one_sided = np.full(self.stft.n_freq, 2.0)
            one_sided[0] = 1.0  # DC and Nyquist have no mirror image to fold in
            if n_fft % 2 == 0:
                one_sided[-1] = 1.0
            # float32, so views stay float32 (the dtype warm_up compiled datashader's kernels for).
            self._psd_scale = (self._power_scale * one_sided / (self.sample_rate * sum_w2)).astype(np.float32)

    def close(self) -> None:
        """Let go of the store (an Atlas dropped does so too)."""
        self._reader.close()

    def __repr__(self) -> str:
        t0, t1 = self.time_range
        return f"<Atlas {self.name}: {t0} .. {t1}, {len(self.levels)} levels, {self.sample_rate:g} Hz>"

    # ------------------------------------------------------------------ choices
    @property
    def name(self) -> str:
        """The store's file or directory name, the last part of its path or URL (``x.zarr``)."""
        return store_name(self.path)

    @property
    def has_waveform(self) -> bool:
        """Whether the store keeps the waveform summaries :meth:`waveform` reads (format 3)."""
        return self._reader.has_waveform

    @property
    def power_scale(self) -> np.ndarray | None:
        """Factor per bin from stored power to µPa², or None for an uncalibrated store.

        ``k(f)`` of the store's calibration at the bin centres, shape
        ``(n_freq,)``: applied at read time to power before any sum or dB.
        """
        return self._power_scale

    def choose_level(self, time: tuple[TimeLike, TimeLike], columns: int) -> Level:
        """The level a view ``columns`` pixels wide reads: at most two of its columns per pixel, and the coarsest such.

        That is the coarsest level with at least ``columns * 2 / factor`` columns
        in ``time`` (``factor`` the pyramid's): one to two columns a pixel in a
        store whose pyramid halves (format 1), half a column to two in one that
        quarters (format 2), so a view reads no more than format 1's did, and
        its columns are at most two pixels wide.
        """
        t0, t1 = self._time_window(time)
        span = (t1 - t0) / _SECOND
        factor = self.levels[0].factor
        ratio = span / (self.levels[0].step * columns * 2 / factor)
        k = int(math.floor(math.log(ratio) / math.log(factor) + 1e-9)) if ratio >= 1 else 0
        return self.levels[min(max(k, 0), len(self.levels) - 1)]

    # -------------------------------------------------------------------- reads
    def view(
        self,
        *,
        time: tuple[TimeLike, TimeLike] | None = None,
        freq: tuple[float, float] | None = None,
        width: int,
        height: int,
        agg: Agg = "mean",
        channel: int | None = None,
        freq_scale: FreqScale = "linear",
        n_mels: int = 128,
        fmin: float | None = None,
        fmax: float | None = None,
        htk: bool = False,
        norm: str | float | None = "slaney",
    ) -> xr.DataArray:
        """The spectrogram of a window, in dB: ``height x width`` pixels, or the frames and bins themselves.

        Parameters
        ----------
        time : (start, end), optional
            Times as datetime64, pandas Timestamps or ISO strings, inside
            :attr:`time_range`; default the whole recording.
        freq : (low, high), optional
            Hz, inside :attr:`freq_range`; default all of it.
        width, height : int
            Pixels along time and frequency, at most :data:`MAX_WIDTH` (4096) and
            :data:`MAX_HEIGHT` (2048).
        agg : {"mean", "max"}, default: "mean"
            How frames sharing a pixel combine: the mean of power, or the
            largest power (so a 5 ms click stays visible in a day's view).
        channel : int, optional
            Index into :attr:`channels` of a multichannel store, default 0; a
            single-channel store takes only None or 0.
        freq_scale : {"linear", "log", "mel"}, default: "linear"
            The rows: the STFT bins (as below), or the true array of a
            :func:`~data_access.spectra.filterbank` applied to power (to the
            PSD on a calibrated store) before dB. ``"mel"``: ``n_mels`` rows of
            librosa's filterbank (``height`` is checked but not used); ``"log"``:
            ``height`` rows log-spaced from ``fmin`` to ``fmax``, each the mean of
            the bins' power over its band (rows narrower than a bin repeat it).
            Since level ``k`` holds the mean of power over ``factor**k`` frames and
            the filterbank is linear, a mel view of level ``k`` is exactly the mean
            of the level-0 mel frames it covers. With ``agg="max"`` above level 0
            the filterbank weighs each bin's largest power (a peak-hold). A mel
            window so narrow that a filter falls between two bins leaves that row
            empty: NaN, as digital silence.
        n_mels, htk, norm
            The mel filterbank's, as ``librosa.filters.mel``'s.
        fmin, fmax : float, optional
            The rows' frequency window for ``"log"`` and ``"mel"``; default the
            ends of ``freq`` (log: from the first non-zero bin when ``freq`` starts at 0).

        Returns
        -------
        DataArray, float32, dims ("freq", "time"), shape (height, width) or less
            dB of power (power spectral density in dB re 1 µPa²/Hz on a
            calibrated store); NaN where the recording has a gap.
            On a log or mel scale, ``freq`` holds the rows' centres in Hz and
            ``attrs["freq_edges"]`` their boundaries (rows + 1 values, for
            drawing non-uniform rows); time is as for a linear view.

            Along time, when more of the chosen level's columns meet the window
            than ``width``, they are reduced to ``width`` pixels over the window
            and ``time`` holds the pixel centres. Otherwise (at frame-level zoom)
            the columns are returned themselves, unresampled: every one whose
            cell (its centre ± ``seconds_per_column / 2``) meets the window, at
            least two, ``time`` holding their centres (a level-0 column is a
            frame, centred at ``start_time + (i * hop + n_fft / 2) / sample_rate``).
            Those cells cover the window and may reach past its ends by less
            than a column; a plot that takes each cell as its centre ± half the
            coordinate step (``holoviews.Image``) draws each frame over exactly
            its samples' centre ± hop / 2. Frequency likewise: ``height`` pixels
            when more bins than that meet the window, else those bins, at least
            two, ``freq`` holding the bin centres ``k * sample_rate / n_fft``.

            ``attrs`` carry ``units``, ``level``, ``seconds_per_column`` (of the
            level read: the hop in seconds at level 0), ``agg``, ``freq_scale``,
            and for a multichannel store ``channel`` (its label).
        """
        if freq_scale != "linear":
            from data_access import spectra  # (spectra.py reads through this class)

            spectra.check_freq_scale(freq_scale)
        index = self._channel_index(channel)
        t0, t1 = self._time_window(time)
        f0, f1 = self._freq_window(freq)
        for name, n, most in (("width", width, MAX_WIDTH), ("height", height, MAX_HEIGHT)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ParameterError(f"{name}={n!r} must be a whole number of pixels >= 1")
            if n > most:
                raise ParameterError(f"{name}={n} is more than the {most} pixels a view may have (MAX_{name.upper()})")
        if agg not in ("mean", "max"):
            raise ParameterError(f"agg={agg!r} must be 'mean' or 'max'")
        lvl = self.choose_level((t0, t1), width)
        # Two cells per axis at least: a plot (and datashader) infers a cell's size from its neighbour.
        j0, j1 = _at_least_two(*self._columns(lvl, t0, t1), lvl.n_columns)
        name = "power_max" if agg == "max" and lvl.level > 0 else "power"
        scale: dict[str, object] = {"freq_scale": freq_scale}
        if freq_scale == "linear":
            b0, b1 = _at_least_two(*self._bins(f0, f1), self.stft.n_freq)
            # Contiguous, so numba runs the kernels warm_up compiled rather than a new layout.
            power = np.ascontiguousarray(self._read_columns(lvl, name, j0, j1, index)[b0:b1])
            if self._psd_scale is not None:
                power = power * self._psd_scale[b0:b1, None]
            freqs = np.arange(b0, b1) * self.df
            keep_freq = b1 - b0 <= height
        else:  # the rows are the array asked for: never resampled
            power, freqs, edges = spectra.scale_rows(
                self, lvl, name, j0, j1, index, freq_scale=freq_scale, freq=(f0, f1), height=height,
                n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm,
            )  # fmt: skip
            scale["freq_edges"] = np.asarray(edges)
            keep_freq = True
        times = lvl.column_times(j0, j1)
        # No more cells than pixels along an axis: keep the cells, each at its own centre.
        # Resampled, the cells would be stretched over whole pixels from the window's edges
        # (datashader places them by index), most of a cell off their times at worst.
        keep_time = j1 - j0 <= width
        if not (keep_time and keep_freq):
            start = self.time_range[0]
            x = (times - start) / _SECOND
            x_range = ((t0 - start) / _SECOND, (t1 - start) / _SECOND)
            one_row = len(freqs) == 1  # (a single mel or log row: datashader sizes a cell by its neighbour)
            power, x, y = _rasterize(
                np.repeat(power, 2, axis=0) if one_row else power,
                x,
                np.repeat(freqs, 2) if one_row else freqs,
                None if keep_time else (x_range, width),
                None if keep_freq else ((f0, f1), height),
                agg,
            )
            power = power[:1] if one_row else power
            if not keep_time:
                times = start + seconds_to_ns(x)
            if not keep_freq:
                freqs = y
        with np.errstate(divide="ignore"):
            db = 10 * np.log10(power.astype(np.float64))
        db[np.isneginf(db)] = np.nan  # digital silence has no level
        quantity = "power spectral density" if self.calibration else "power spectral level"
        return xr.DataArray(
            db.astype(np.float32),
            dims=("freq", "time"),
            coords={"freq": freqs, "time": times},
            name="power_db",
            attrs={
                "long_name": quantity if agg == "mean" else f"maximum {quantity}",
                "units": self.units,
                "level": lvl.level,
                "seconds_per_column": lvl.step,
                "agg": agg,
                **scale,
                **({} if index is None else {"channel": self.channels[index]}),
            },
        )

    def band_energy(
        self,
        bands: Mapping[str, tuple[float, float]],
        *,
        time: tuple[TimeLike, TimeLike] | None = None,
        points: int,
        channel: int | None = None,
        agg: Agg = "mean",
    ) -> xr.Dataset:
        """Band power over time, in dB, at ``points`` evenly spaced times.

        Parameters
        ----------
        bands : mapping of str to (f_low, f_high)
            Hz, inside 0..Nyquist; a bin straddling an edge counts by the
            fraction of its width inside the band.
        time : (start, end), optional
            Default the whole recording.
        points : int
            Output samples along time, at most :data:`MAX_POINTS` (8192); the level
            is chosen as for a view ``points`` pixels wide.
        channel : int, optional
            Index into :attr:`channels` of a multichannel store, default 0; a
            single-channel store takes only None or 0.
        agg : {"mean", "max"}, default: "mean"
            ``"max"``: peak-hold, as the image's "max": each point is the highest
            column's band power in it rather than the mean. A column of level
            ``k > 0`` keeps only each bin's maximum over its frames
            (``power_max``), so its peak is the band sum of those per-bin
            maxima: an upper bound of the loudest frame's band power (equal to
            it when one frame holds every bin's maximum, as a click or a
            transient does). At level 0 it is the loudest frame's band power.

        Returns
        -------
        Dataset
            One variable per band, dims ``("time",)``, dB of band power (see
            the module notes; dB re 1 µPa on a calibrated store); each point is
            the mean of band power over the valid frames whose columns are
            centred in it (``agg="max"``: the highest), NaN over gaps. A
            multichannel store's carries the channel's label in
            ``attrs["channel"]``; ``attrs["agg"]`` says which.
        """
        index = self._channel_index(channel)
        t0, t1 = self._time_window(time)
        if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 1:
            raise ParameterError(f"points={points!r} must be a whole number >= 1")
        if points > MAX_POINTS:
            raise ParameterError(f"points={points} is more than the {MAX_POINTS} points a curve may have (MAX_POINTS)")
        if agg not in ("mean", "max"):
            raise ParameterError(f"agg={agg!r} must be 'mean' or 'max'")
        weights = {name: self._band_weights(name, band) for name, band in bands.items()}
        if self.power_scale is not None:
            weights = {name: w * self.power_scale for name, w in weights.items()}
        if not weights:
            raise ParameterError("bands is empty: name at least one band as {'name': (f_low, f_high)}")
        lvl = self.choose_level((t0, t1), points)
        j0, j1 = self._columns(lvl, t0, t1)
        names = list(weights)
        matrix = np.stack([weights[name] for name in names])  # (bands, bins)
        used = np.flatnonzero(matrix.any(axis=0))
        b0, b1 = int(used[0]), int(used[-1]) + 1
        counts = self._read_counts(lvl, j0, j1, index).astype(np.float64)
        peak = agg == "max" and lvl.level > 0
        power = self._read_columns(lvl, "power_max" if peak else "power", j0, j1, index)[b0:b1]
        # One float32 product for every band. A column with no valid frame is NaN in every bin (a
        # valid one in none), so its products are NaN alone: they are zeroed, and add nothing.
        band_power = (matrix[:, b0:b1].astype(np.float32) @ power).astype(np.float64)
        band_power[:, counts == 0] = 0.0
        band_power /= self._band_norm
        # Assign each column to the output point its centre falls in.
        edges = t0 + seconds_to_ns(np.arange(points + 1) * ((t1 - t0) / _SECOND / points))
        centres = lvl.column_times(j0, j1)
        if j1 == lvl.n_columns:  # the last column may hold fewer frames: use their true centre
            first_frame = (lvl.n_columns - 1) * lvl.frames_per_column
            mid = (first_frame + self.levels[0].n_columns - 1) / 2
            centres[-1] = self.levels[0].first + seconds_to_ns(mid * self.levels[0].step)
        bounds = np.searchsorted(centres, edges)
        point_times = edges[:-1] + (edges[1:] - edges[:-1]) // 2
        # A point narrower than a column takes the column that covers it.
        nearest = np.clip(np.round((point_times - lvl.first) / _SECOND / lvl.step).astype(int) - j0, 0, j1 - j0 - 1)
        empty = bounds[1:] == bounds[:-1]
        n = np.concatenate([[0.0], np.cumsum(counts)])
        frames = n[bounds[1:]] - n[bounds[:-1]]
        out = xr.Dataset(coords={"time": point_times})
        for name, band in zip(names, band_power, strict=True):
            if agg == "max":
                # The highest column of each point (a column without data, 0 here, is below any with).
                mean = np.full(points, np.nan)
                full = ~empty
                if full.any():
                    mean[full] = np.maximum.reduceat(band[: bounds[-1]], bounds[:-1][full])
                    mean[full & (frames == 0)] = np.nan
            else:
                sums = np.concatenate([[0.0], np.cumsum(band * counts)])
            with np.errstate(invalid="ignore", divide="ignore"):
                if agg != "max":
                    mean = (sums[bounds[1:]] - sums[bounds[:-1]]) / frames
                mean[empty] = np.where(counts[nearest[empty]] > 0, band[nearest[empty]], np.nan)
                db = 10 * np.log10(mean)
            db[np.isneginf(db)] = np.nan
            lo, hi = bands[name]
            out[name] = xr.DataArray(
                db.astype(np.float32),
                dims="time",
                attrs={
                    "long_name": f"{'band level' if self.calibration else 'band power'} {lo:g}-{hi:g} Hz",
                    "units": self.band_units,
                    "f_low": lo,
                    "f_high": hi,
                },
            )
        out.attrs.update({"level": lvl.level, "seconds_per_column": lvl.step, "units": self.band_units, "agg": agg})
        if index is not None:
            out.attrs["channel"] = self.channels[index]
        return out

    def waveform(
        self,
        *,
        time: tuple[TimeLike, TimeLike] | None = None,
        width: int,
        channel: int | None = None,
    ) -> xr.Dataset:
        """The waveform of a window, for a strip ``width`` pixels wide: min, max and RMS per column, or the samples.

        Parameters
        ----------
        time : (start, end), optional
            Times as for :meth:`view`; default the whole recording.
        width : int
            Pixels along time, at most :data:`MAX_WIDTH`.
        channel : int, optional
            Index into :attr:`channels` of a multichannel store, default 0; a
            single-channel store takes only None or 0.

        Returns
        -------
        Dataset
            Variables ``min``, ``max`` and ``rms``, float32, dims ``("time",)``,
            in the samples' units (``attrs["units"]``: ``"1"``, full scale, or
            ``"count"``); NaN over gaps. Either

            - ``attrs["kind"] == "summary"``: the columns of the level a view
              ``width`` pixels wide reads (:meth:`choose_level`) that meet the
              window, at least two and at most ``2 * width``, ``time`` their
              centres; ``attrs["level"]`` and ``attrs["seconds_per_column"]`` say
              which. Only those columns are read, through the chunk cache. Where
              even the coarsest stored level has more (it may have up to 2048),
              its columns are reduced on reading to the levels the pyramid would
              have above it, by the pyramid's own rule.
            - ``attrs["kind"] == "samples"``: when the window holds at most
              :data:`SAMPLES_PER_PIXEL` samples a pixel and the recordings can be
              read (:meth:`audio` without reconstruction), the samples themselves:
              ``min == max`` the sample, ``rms`` its magnitude, ``time`` each
              sample's time; NaN where the recording has no data.
              ``attrs["seconds_per_column"]`` is the sample period. When the
              recordings cannot be read, the level-0 summaries instead.

            A multichannel store's carries the channel's label in ``attrs["channel"]``.

        Raises
        ------
        ParameterError
            A bad window, width or channel, or a store without waveform
            summaries (format 1 or 2: ``spectral-atlas upgrade`` adds them).
        """
        index = self._channel_index(channel)
        t0, t1 = self._time_window(time)
        if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
            raise ParameterError(f"width={width!r} must be a whole number of pixels >= 1")
        if width > MAX_WIDTH:
            raise ParameterError(f"width={width} is more than the {MAX_WIDTH} pixels a view may have (MAX_WIDTH)")
        if not self.has_waveform:
            where = self.path if isinstance(self.path, str) else str(self.path)
            raise ParameterError(
                f"this store ({self.name!r}, format {self._reader.format_version}) has no waveform summaries; "
                f"run spectral-atlas upgrade {where}"
            )
        labelled = {} if index is None else {"channel": self.channels[index]}
        units = self._reader.array_attrs(0, WAVE_NAMES[0]).get("units", "1")
        if (t1 - t0) / _SECOND * self.sample_rate <= SAMPLES_PER_PIXEL * width:
            try:  # never a reconstruction: its samples are not the recording's
                clip = self.audio(time=(t0, t1), channel=index, reconstruct=False)
            except AtlasError:  # not reachable (gone, changed, a gap): the summaries say what the store knows
                clip = None
            if clip is not None:
                samples = np.where(clip.mask, clip.samples, np.float32(np.nan))
                # Counted in samples from the recording's first, as the store's times are (exact to the ns).
                origin = self.time_range[0]
                first = int(round((clip.start - origin) / np.timedelta64(1, "ns") * 1e-9 * self.sample_rate))
                times = origin + samples_to_timedelta(np.arange(first, first + clip.n_samples), self.sample_rate)
                out = xr.Dataset(
                    {
                        "min": ("time", samples),
                        "max": ("time", samples.copy()),
                        "rms": ("time", np.abs(samples)),
                    },
                    coords={"time": times},
                )
                out.attrs.update(
                    {"kind": "samples", "seconds_per_column": 1 / self.sample_rate, "units": units, **labelled}
                )
                return out
        stored = lvl = self.choose_level((t0, t1), width)
        j0, j1 = _at_least_two(*self._columns(lvl, t0, t1), lvl.n_columns)
        above = 0  # levels above the coarsest stored one, reduced here as the pyramid reduces
        while j1 - j0 > 2 * width:  # (the coarsest level has up to 2048 columns; a window's edges one more)
            if stored.level + 1 < len(self.levels):
                stored = lvl = self.levels[stored.level + 1]
            else:
                above += 1
                lvl = stored.coarser(above)
            j0, j1 = _at_least_two(*self._columns(lvl, t0, t1), lvl.n_columns)
        group = stored.factor**above
        wave = tuple(
            self._read_columns(stored, name, j0 * group, min(j1 * group, stored.n_columns), index)
            for name in WAVE_NAMES
        )
        for _ in range(above):
            wave = reduce_wave(wave, stored.factor)
        values = {key: ("time", x) for key, x in zip(("min", "max", "rms"), wave, strict=True)}
        out = xr.Dataset(values, coords={"time": lvl.column_times(j0, j1)})
        out.attrs.update(
            {"kind": "summary", "level": lvl.level, "seconds_per_column": lvl.step, "units": units, **labelled}
        )
        return out

    def measure(
        self,
        *,
        time: tuple[TimeLike, TimeLike] | None = None,
        freq: tuple[float, float] | None = None,
        channel: int | None = None,
    ) -> dict:
        """Raven's measurements of a selection box, from level 0: see :func:`data_access.measure.measure`."""
        from data_access.measure import measure  # (measure.py reads through this class)

        return measure(self, time, freq, channel)

    # ------------------------------------------------- science views (spectra.py)
    @property
    def location(self) -> tuple[float, float] | None:
        """The deployment's ``(latitude, longitude)`` in degrees, or None: the root attribute ``location``."""
        return read_location(self.attrs)

    def mfcc(self, *, time: tuple[TimeLike, TimeLike], n_mfcc: int = 20, n_mels: int = 128, **options) -> xr.DataArray:
        """MFCCs of the level-0 frames of a span, as librosa computes them: see :func:`data_access.spectra.mfcc`."""
        from data_access import spectra

        return spectra.mfcc(self, time=time, n_mfcc=n_mfcc, n_mels=n_mels, **options)

    def cqt(self, *, time: tuple[TimeLike, TimeLike], **options) -> xr.DataArray:
        """The CQT magnitude of a span, from the recordings: see :func:`data_access.spectra.cqt`."""
        from data_access import spectra

        return spectra.cqt(self, time=time, **options)

    def spectrum(self, *, time, channel: int | None = None) -> xr.DataArray:
        """The spectrum at an instant, or the mean over a span, in dB: see :func:`data_access.spectra.spectrum`."""
        from data_access import spectra

        return spectra.spectrum(self, time=time, channel=channel)

    def spectrum_stats(self, *, time: tuple[TimeLike, TimeLike] | None = None, **options) -> xr.Dataset:
        """PSD percentiles and the SPD of a span: see :func:`data_access.spectra.spectrum_stats`."""
        from data_access import spectra

        return spectra.spectrum_stats(self, time=time, **options)

    def band_stats(self, bands: Mapping[str, tuple[float, float]], **options):
        """L5, L50, L95, mean, peak and SEL of each band: see :func:`data_access.spectra.band_stats`."""
        from data_access import spectra

        return spectra.band_stats(self, bands, **options)

    def diel(self, **options) -> xr.DataArray:
        """A band's level as a date x time-of-day grid: see :func:`data_access.spectra.diel`."""
        from data_access import spectra

        return spectra.diel(self, **options)

    def sun_times(self, dates=None):
        """Sunrise and sunset (UTC) at the store's location on ``dates`` (default every day of the recording).

        See :func:`data_access.spectra.sun_times`; a ParameterError when the store has no location.
        """
        from data_access import spectra

        if self.location is None:
            where = self.path if isinstance(self.path, str) else str(self.path)
            raise ParameterError(
                f"{self.name!r} has no location for sunrise and sunset: set one with "
                f"spectral-atlas set-location {where} LAT,LON (or ingest --location LAT,LON)"
            )
        if dates is None:
            first, last = (t.astype("datetime64[D]") for t in self.time_range)
            dates = np.arange(first, last + np.timedelta64(1, "D"))
        return spectra.sun_times(*self.location, dates)

    def frames(
        self,
        *,
        columns: tuple[int, int],
        bins: tuple[int, int] | None = None,
        level: int = 0,
        channel: int | None = None,
    ) -> xr.DataArray:
        """Columns ``j0..j1-1`` of a level's power exactly as stored: no dB, no calibration, no resampling.

        Parameters
        ----------
        columns : (j0, j1)
            Column indices, ``0 <= j0 < j1 <= levels[level].n_columns``; at
            level 0 a column is a frame (samples ``[j * hop, j * hop + n_fft)``).
        bins : (b0, b1), optional
            Frequency bins ``b0..b1-1`` (bin ``k`` is centred at ``k * sample_rate / n_fft``);
            default all of them.
        level : int, default: 0
            The pyramid level: level ``k`` holds the mean of power over ``factor**k`` frames.
        channel : int, optional
            Index into :attr:`channels`, as for :meth:`view`.

        Returns
        -------
        DataArray, float32, dims ("freq", "time"), shape (b1 - b0, j1 - j0)
            ``|STFT|**2`` as stored (level 0 rounded to 12 mantissa bits in a
            store of format 2 or 3); NaN in a column without data (a gap:
            :meth:`frame_counts` has each column's number of frames). Coordinates
            ``freq`` (bin centres, Hz) and ``time`` (column centres).
        """
        index = self._channel_index(channel)
        lvl = self._level(level)
        j0, j1 = self._index_range("columns", columns, lvl.n_columns)
        b0, b1 = (0, self.stft.n_freq) if bins is None else self._index_range("bins", bins, self.stft.n_freq)
        power = self._read_columns(lvl, "power", j0, j1, index)[b0:b1]
        return xr.DataArray(
            power,
            dims=("freq", "time"),
            coords={"freq": np.arange(b0, b1) * self.df, "time": lvl.column_times(j0, j1)},
            name="power",
            attrs={**self._power_attrs, "level": lvl.level, "seconds_per_column": lvl.step},
        )

    @functools.cached_property
    def _power_attrs(self) -> dict:
        """The CF attributes of level 0's ``power`` (read once)."""
        return dict(self._reader.array_attrs(0, "power"))

    def frame_counts(
        self, *, columns: tuple[int, int] | None = None, level: int = 0, channel: int | None = None
    ) -> np.ndarray:
        """Frames with data per column ``j0..j1-1`` of a level (default all): int32, ``(j1 - j0,)``, 0 in a gap."""
        lvl = self._level(level)
        index = self._channel_index(channel)
        j0, j1 = (0, lvl.n_columns) if columns is None else self._index_range("columns", columns, lvl.n_columns)
        return self._read_counts(lvl, j0, j1, index)

    def clips(self, spans, **options) -> xr.DataArray:
        """Labelled spectrogram matrices of spans, for models: see :func:`data_access.export.clips`."""
        from data_access.export import clips  # (export.py reads through this class)

        return clips(self, spans, **options)

    def windows(self, *, time: tuple[TimeLike, TimeLike] | None = None, length: float, **options) -> xr.DataArray:
        """Fixed windows tiling a time range, as :meth:`clips`: see :func:`data_access.export.windows`."""
        from data_access.export import windows

        return windows(self, time=time, length=length, **options)

    def audio(
        self,
        *,
        time: tuple[TimeLike, TimeLike] | None = None,
        channel: int | None = None,
        max_seconds: float | None = None,
        reconstruct: bool = True,
    ) -> AudioClip:
        """The audio of a span, read from the store's recordings (or rebuilt): see :func:`data_access.audio.read_audio`.

        Unpacks as ``samples, sample_rate = atlas.audio(time=(t0, t1))``. ``max_seconds``
        defaults to :data:`~data_access.audio.MAX_AUDIO_SECONDS`.
        """
        from data_access import audio  # (audio.py reads through this class)

        limit = audio.MAX_AUDIO_SECONDS if max_seconds is None else max_seconds
        return audio.read_audio(self, time, channel, max_seconds=limit, reconstruct=reconstruct)

    # ----------------------------------------------------------------- helpers
    def _level(self, level) -> Level:
        """Pyramid level ``level``, checked."""
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 0 <= level < len(self.levels):
            last = len(self.levels) - 1
            raise ParameterError(f"level={level!r} is not one of the levels of {self.name!r}: 0 .. {last}")
        return self.levels[int(level)]

    @staticmethod
    def _index_range(name: str, pair, n: int) -> tuple[int, int]:
        """``(i0, i1)`` with ``0 <= i0 < i1 <= n``, checked."""
        try:
            i0, i1 = (operator.index(i) for i in pair)
        except (TypeError, ValueError):
            raise ParameterError(f"{name}={pair!r} must be a pair of whole numbers (first, stop)") from None
        if not 0 <= i0 < i1 <= n:
            raise ParameterError(f"{name}={pair!r} must satisfy 0 <= first < stop <= {n}")
        return i0, i1

    def _channel_index(self, channel) -> int | None:
        """The index of ``channel`` in a multichannel store (default 0), or None for a single-channel one."""
        if channel is not None and (isinstance(channel, bool) or not isinstance(channel, (int, np.integer))):
            raise ParameterError(f"channel={channel!r} must be a channel index (an int)")
        if not self.channels:
            if channel not in (None, 0):
                raise ParameterError(
                    f"channel={channel} but {self.name!r} holds one channel ({self.attrs['channel']}); "
                    "only channel 0 (or None) can be read"
                )
            return None
        channel = 0 if channel is None else int(channel)
        if not 0 <= channel < len(self.channels):
            named = [str(i) if label == str(i) else f"{i} ({label})" for i, label in enumerate(self.channels)]
            listing = ", ".join(named)
            raise ParameterError(f"channel={channel} is not one of the channels of {self.name!r}: {listing}")
        return channel

    def _time_window(self, time) -> tuple[np.datetime64, np.datetime64]:
        start, end = self.time_range
        if time is None:
            return start, end
        try:
            t0, t1 = time
        except (TypeError, ValueError):
            raise ParameterError(f"time={time!r} must be a (start, end) pair") from None
        t0, t1 = to_datetime64(t0), to_datetime64(t1)
        if not t0 < t1:
            raise ParameterError(f"time range {t0} .. {t1} is empty or inverted: start must come before end")
        if t0 < start or t1 > end:
            raise ParameterError(f"time range {t0} .. {t1} is outside the recording, which spans {start} .. {end}")
        return t0, t1

    def _freq_window(self, freq) -> tuple[float, float]:
        lo, hi = self.freq_range
        if freq is None:
            return lo, hi
        f0, f1 = (float(f) for f in freq)
        if not f0 < f1:
            raise ParameterError(f"frequency range {f0:g} .. {f1:g} Hz is empty or inverted")
        if f0 < lo or f1 > hi:
            raise ParameterError(f"frequency range {f0:g} .. {f1:g} Hz is outside 0 .. {hi:g} Hz (Nyquist)")
        return f0, f1

    def _band_weights(self, name: str, band) -> np.ndarray:
        """One-sided weight of every bin in a band: 2 x the fraction of its cell inside."""
        try:
            lo, hi = (float(f) for f in band)
        except (TypeError, ValueError):
            raise ParameterError(f"band {name!r}={band!r} must be a (f_low, f_high) pair in Hz") from None
        nyquist = self.freq_range[1]
        if not 0 <= lo < hi <= nyquist:
            raise ParameterError(
                f"band {name!r} = {lo:g} .. {hi:g} Hz must have 0 <= f_low < f_high <= {nyquist:g} Hz (Nyquist)"
            )
        centres = np.arange(self.stft.n_freq) * self.df
        cell_lo = np.clip(centres - self.df / 2, 0, nyquist)
        cell_hi = np.clip(centres + self.df / 2, 0, nyquist)
        return 2 * np.clip(np.minimum(cell_hi, hi) - np.maximum(cell_lo, lo), 0, None) / self.df

    def _columns(self, lvl: Level, t0: np.datetime64, t1: np.datetime64) -> tuple[int, int]:
        """Columns whose cells (centre ± step / 2) meet ``[t0, t1)``, by more than ``_SLIVER`` of a cell."""
        a = (t0 - lvl.first) / _SECOND / lvl.step + 0.5
        b = (t1 - lvl.first) / _SECOND / lvl.step + 0.5
        j0 = min(max(int(math.floor(a + _SLIVER)), 0), lvl.n_columns - 1)
        return j0, min(max(int(math.ceil(b - _SLIVER)), j0 + 1), lvl.n_columns)

    def _bins(self, f0: float, f1: float) -> tuple[int, int]:
        """Bins whose cells (centre ± df / 2) meet ``[f0, f1)``, by more than ``_SLIVER`` of a cell."""
        b0 = max(int(math.floor(f0 / self.df + 0.5 + _SLIVER)), 0)
        return b0, min(max(int(math.ceil(f1 / self.df + 0.5 - _SLIVER)), b0 + 1), self.stft.n_freq)

    def _read_columns(self, lvl: Level, name: str, j0: int, j1: int, channel: int | None = None) -> np.ndarray:
        """Columns ``j0..j1-1`` of an array (of one channel), assembled from cached whole chunks.

        ``power`` and ``power_max`` give every bin, shape ``(n_freq, j1 - j0)``; the
        one-dimensional arrays (the waveform's), shape ``(j1 - j0,)``. Chunks are
        the array's own, along time.
        """
        if (lvl.level, name) not in self._chunks:
            self._chunks[lvl.level, name] = self._reader.time_chunk(lvl.level, name)
        size = self._chunks[lvl.level, name]
        which = () if channel is None else (channel,)
        lead = (*which, slice(None)) if name.startswith("power") else which  # (every bin)
        wanted = range(j0 // size, (j1 - 1) // size + 1)
        key = (str(self.path), lvl.level, name, *which)
        missing = [c for c in wanted if (*key, c) not in CACHE]
        read = {}
        if len(missing) > 1:  # one read of their span: zarr decodes the chunks at once, not one after another
            first, last = missing[0], missing[-1] + 1
            block = self._reader.read(lvl.level, name, (*lead, slice(first * size, last * size)))
            read = {c: block[..., (c - first) * size : (c - first + 1) * size].copy() for c in missing}
        parts = []
        for c in wanted:
            chunk = CACHE.get(
                (*key, c),
                lambda c=c: (
                    read.get(c)
                    if c in read
                    else self._reader.read(lvl.level, name, (*lead, slice(c * size, (c + 1) * size)))
                ),
            )
            lo, hi = max(j0 - c * size, 0), min(j1 - c * size, chunk.shape[-1])
            parts.append(chunk[..., lo:hi])
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)

    def _read_counts(self, lvl: Level, j0: int, j1: int, channel: int | None = None) -> np.ndarray:
        lead = () if channel is None else (channel,)
        return self._reader.read(lvl.level, "frame_count", (*lead, slice(j0, j1)))


def _rasterize(
    power: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    along_x: tuple[tuple[float, float], int] | None,
    along_y: tuple[tuple[float, float], int] | None,
    agg: Agg,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample ``power`` (y, x) to pixels with datashader, along the axes asked for.

    Parameters
    ----------
    power : ndarray, shape (len(y), len(x))
    x, y : ndarray
        Cell centres, evenly spaced, at least two of each.
    along_x, along_y : ((low, high), pixels) or None
        The window and pixel count of an axis to resample, or None to keep
        that axis's cells as they are.
    agg : {"mean", "max"}

    Returns
    -------
    values : ndarray, shape (y pixels or len(y), x pixels or len(x))
    x, y : ndarray
        Pixel centres of a resampled axis; a kept axis's ``x`` or ``y`` unchanged.
    """
    import datashader as ds  # imported on first use: it brings numba, which ingest never needs

    def axis(centres, along):
        if along is None:
            # Cell indices over exactly their edges: datashader copies the cells (checked in the tests).
            n = len(centres)
            return np.arange(n, dtype=np.float64), (-0.5, n - 0.5), n
        window, pixels = along
        return centres, window, pixels

    xs, x_range, width = axis(x, along_x)
    ys, y_range, height = axis(y, along_y)
    source = xr.DataArray(power, dims=("freq", "time"), coords={"freq": ys, "time": xs})
    canvas = ds.Canvas(plot_width=width, plot_height=height, x_range=x_range, y_range=y_range)
    raster = canvas.raster(source, agg=agg, interpolate="nearest")
    return (
        raster.values,
        x if along_x is None else raster.time.values,
        y if along_y is None else raster.freq.values,
    )


def warm_up() -> None:
    """Compile datashader's raster kernels (numba) now rather than at the first view.

    Each of downsampling and upsampling, for the mean and the max, compiles on
    its first use (about a second each); a server calls this at start-up.
    """
    import datashader as ds

    power = np.arange(64, dtype=np.float32).reshape(8, 8)
    source = xr.DataArray(power, dims=("freq", "time"), coords={"freq": np.arange(8.0), "time": np.arange(8.0)})
    # Views pass a source wider than the canvas, which datashader slices: compile
    # for those (non-contiguous) slices too, not only for whole arrays.
    for agg in ("mean", "max"):
        for width, height in ((4, 4), (16, 16), (4, 16), (16, 4)):
            for window in ((0, 7), (0.6, 6.4)):
                ds.Canvas(plot_width=width, plot_height=height, x_range=window, y_range=window).raster(
                    source, agg=agg, interpolate="nearest"
                )


def open_atlas(path: str | os.PathLike, *, audio_root: str | os.PathLike | None = None) -> Atlas:
    """Open a store for viewport and band-energy reads, reading only metadata.

    Parameters
    ----------
    path : path-like or str
        A Zarr directory or NetCDF file written by :func:`data_access.ingest`,
        or the fsspec URL of a published Zarr store: ``https://host/x.zarr``
        (a directory served as static files), ``s3://bucket/x.zarr`` (with
        s3fs), ``gs://...`` (with gcsfs). Chunks are fetched by their keys as
        views need them, through the same chunk cache as a local store's.
    audio_root : path-like, optional
        Where :meth:`Atlas.audio` looks for recordings no longer at the paths the
        store recorded: by their path relative to the folder they shared, then by name.

    Returns
    -------
    Atlas

    Raises
    ------
    SourceNotFoundError
        Nothing is at ``path``, or the URL does not answer (the HTTP status is named).
    FormatError
        What is there is not a Spectral Atlas store (or is a NetCDF file given by URL).
    """
    return Atlas(path, audio_root=audio_root)
