"""Spectral Atlas data access: audio files to a multiscale spectrogram store.

The flow is ``sources -> stft -> store``; each step is a small function-first
API, re-exported here::

    from data_access import open_timeline, StftConfig, ingest, open_store

    timeline = open_timeline(["deploy/*.flac"])
    ingest(timeline, "deploy.zarr", StftConfig(n_fft=4096, hop_length=2048))
    tree = open_store("deploy.zarr")          # xarray.DataTree, groups "0".."N"
    atlas = open_atlas("deploy.zarr")         # O(pixels) reads
    img = atlas.view(time=(t0, t1), freq=(0, 32_000), width=1200, height=600)
    curves = atlas.band_energy({"whistles": (12_500, 25_000)}, time=(t0, t1), points=1200)
    clip = atlas.audio(time=(t0, t1))         # the recorded samples: samples, rate = clip
    mel = atlas.view(time=(t0, t1), width=1200, height=600, freq_scale="mel")  # the true mel array
    stats = atlas.spectrum_stats(time=(t0, t1), period="60s")  # PSD percentiles and the SPD
    grid = atlas.diel(band=(50, 500))         # date x time-of-day band levels
    write_audio(clip, "clip.wav")             # dated to the sample in a BWF bext chunk
    X = atlas.clips(selections, duration=2.0, freq=(10_000, 32_000))  # (clip, freq, time): the stored matrix
    export.export(atlas, selections, "clips.zarr", duration=2.0)  # streamed; ClipDataset(path)[i] -> (x, label)

Conventions
-----------
- Times are numpy ``datetime64[ns]`` in UTC; frame ``i`` is stamped at its
  centre, ``start_time + (i * hop_length + n_fft / 2) / sample_rate``.
- Frame ``i`` covers samples ``[i * hop_length, i * hop_length + n_fft)``
  (librosa's ``center=False``); gaps are NaN samples and give NaN frames.
- Stored power is raw ``|STFT|**2`` as float32, re full scale (PCM audio) or
  raw counts (MiniSEED); dB and calibration are display transforms: a
  :class:`Calibration` in the store's attributes makes reads report
  dB re 1 µPa²/Hz (views) and dB re 1 µPa (band levels).
- Level ``k`` of the pyramid is the mean of power over ``4**k`` frames (``2**k`` in
  a store of format 1: the root attribute ``pyramid_factor`` says).
- Mel and log-frequency rows are a filterbank applied to power, never to dB
  (:func:`~data_access.spectra.filterbank`): being linear, it commutes with the
  pyramid's mean, so a mel view of level ``k`` is the mean of level-0 mel frames.
- This package never imports Panel, HoloViews or param.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spectral-atlas")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from data_access.annotations import ConflictError, default_annotations_path, open_annotations
from data_access.audio import AudioClip, write_audio
from data_access.calibration import Calibration
from data_access.errors import AtlasError, FormatError, ParameterError, SourceNotFoundError, StoreExistsError
from data_access.export import ClipDataset
from data_access.ingest import ingest
from data_access.query import Atlas, open_atlas
from data_access.sources import AudioSource, Timeline, open_source, open_timeline
from data_access.spectra import filterbank, sun_times
from data_access.stft import StftConfig, power_spectrogram
from data_access.store import calibrate, open_store, set_location, store_info
from data_access.upgrade import upgrade

__all__ = [
    "Atlas",
    "AtlasError",
    "AudioClip",
    "AudioSource",
    "Calibration",
    "ClipDataset",
    "ConflictError",
    "FormatError",
    "ParameterError",
    "SourceNotFoundError",
    "StftConfig",
    "StoreExistsError",
    "Timeline",
    "calibrate",
    "default_annotations_path",
    "filterbank",
    "ingest",
    "open_annotations",
    "open_atlas",
    "open_source",
    "open_store",
    "open_timeline",
    "power_spectrogram",
    "set_location",
    "store_info",
    "sun_times",
    "upgrade",
    "write_audio",
]
