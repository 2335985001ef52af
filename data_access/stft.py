"""The exact, chunkable short-time Fourier transform.

Frame ``i`` covers samples ``[i * hop_length, i * hop_length + n_fft)`` of the
timeline (librosa's ``center=False``). A block of frames is computed from exactly
the samples it covers, frame by frame, so any split of a recording into blocks
gives bit-for-bit the frames of one whole-recording transform: there are no
seams at block edges.

The arithmetic follows librosa: the window (``scipy.signal.get_window`` with
``fftbins=True``, zero-padded to ``n_fft`` about its centre) multiplies the
samples in float64, the real FFT runs in float64, and the power ``|X|**2`` is
stored as float32. The result matches
``np.abs(librosa.stft(y, center=False, ...))**2`` to float32 precision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import scipy.fft
import scipy.signal

from data_access.errors import ParameterError

#: Frames transformed per FFT call: big enough to amortise the call, small
#: enough that the float64 temporaries stay in cache (about 4 MB at n_fft 4096).
_FFT_BATCH = 128
#: Samples per FFT call at most: frames longer than 4096 go fewer at a time (one
#: at n_fft >= 2**19), so a call's temporaries stay near 12 MB whatever n_fft.
_FFT_BATCH_SAMPLES = _FFT_BATCH * 4096

#: Longest FFT: 2**20 samples (22 s at 48 kHz, 0.05 Hz bins). One frame's float64
#: samples and complex128 spectrum take 24 bytes a sample, 24 MiB here, per
#: worker; a block of frames is bounded apart (``data_access.ingest.MAX_BLOCK_BYTES``).
MAX_N_FFT = 2**20


@dataclass(frozen=True, kw_only=True)
class StftConfig:
    """Parameters of the short-time Fourier transform (librosa's names).

    Parameters
    ----------
    n_fft : int, default: 4096
        FFT length in samples, ``2 <= n_fft <=`` :data:`MAX_N_FFT`; the
        spectrum has ``n_fft // 2 + 1`` bins.
    hop_length : int, default: n_fft // 2
        Samples between the starts of consecutive frames, ``1 <= hop <= n_fft``.
    win_length : int, default: n_fft
        Window length, ``<= n_fft``; a shorter window is zero-padded on both
        sides to ``n_fft`` as librosa does.
    window : str, default: "hann"
        Any window name ``scipy.signal.get_window`` accepts without extra
        parameters: "hann", "hamming", "blackman", "blackmanharris", "boxcar", ...
    """

    n_fft: int = 4096
    hop_length: int | None = None
    win_length: int | None = None
    window: str = "hann"

    def __post_init__(self) -> None:
        if not _is_int(self.n_fft) or not 2 <= self.n_fft <= MAX_N_FFT:
            raise ParameterError(f"n_fft={self.n_fft!r} must be an integer >= 2 and <= {MAX_N_FFT} (MAX_N_FFT)")
        if self.hop_length is None:
            object.__setattr__(self, "hop_length", self.n_fft // 2)
        if self.win_length is None:
            object.__setattr__(self, "win_length", self.n_fft)
        for name in ("hop_length", "win_length"):
            value = getattr(self, name)
            if not _is_int(value) or not 1 <= value <= self.n_fft:
                raise ParameterError(f"{name}={value!r} must be between 1 and n_fft={self.n_fft}, an integer")
        try:
            self.window_array  # noqa: B018 - validate the name once, here
        except (ValueError, TypeError) as err:
            raise ParameterError(
                f"window={self.window!r} is not a window scipy.signal.get_window knows "
                f"(try 'hann', 'hamming', 'blackman'): {err}"
            ) from None

    @property
    def n_freq(self) -> int:
        """Number of frequency bins, ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @cached_property
    def window_array(self) -> np.ndarray:
        """The analysis window, float64, shape ``(n_fft,)``."""
        win = scipy.signal.get_window(self.window, self.win_length, fftbins=True)
        lpad = (self.n_fft - self.win_length) // 2
        return np.pad(win.astype(np.float64), (lpad, self.n_fft - self.win_length - lpad))

    def frequencies(self, sample_rate: float) -> np.ndarray:
        """Bin centre frequencies in Hz, shape ``(n_freq,)``."""
        return np.fft.rfftfreq(self.n_fft, d=1.0 / sample_rate)

    def n_frames(self, n_samples: int) -> int:
        """Number of whole frames in ``n_samples`` samples (``center=False``)."""
        return 0 if n_samples < self.n_fft else 1 + (n_samples - self.n_fft) // self.hop_length

    def frame_span(self, start: int, stop: int) -> tuple[int, int]:
        """Sample range ``[first, last)`` that frames ``start..stop-1`` cover."""
        return start * self.hop_length, (stop - 1) * self.hop_length + self.n_fft

    def to_attrs(self) -> dict[str, int | str]:
        """The parameters as flat attributes for a store."""
        return asdict(self)


def power_spectrogram(samples: np.ndarray, config: StftConfig) -> np.ndarray:
    """Power ``|STFT|**2`` of every whole frame in ``samples``.

    Parameters
    ----------
    samples : ndarray, shape (n_samples,)
        Mono audio; NaN marks missing samples.
    config : StftConfig

    Returns
    -------
    power : ndarray, float32, shape (n_freq, n_frames)
        Laid out as librosa returns it and as the store keeps it; frames that
        touch a NaN sample are all NaN.
    """
    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ParameterError(f"samples must be one-dimensional, got shape {samples.shape}")
    n_frames = config.n_frames(len(samples))
    out = np.empty((config.n_freq, n_frames), dtype=np.float32)
    if n_frames == 0:
        return out
    frames = np.lib.stride_tricks.sliding_window_view(samples, config.n_fft)[:: config.hop_length][:n_frames]
    window = config.window_array
    batch = max(1, min(_FFT_BATCH, _FFT_BATCH_SAMPLES // config.n_fft))
    for i in range(0, n_frames, batch):
        spec = scipy.fft.rfft(frames[i : i + batch] * window, axis=-1)
        out[:, i : i + batch] = (spec.real**2 + spec.imag**2).T
    # Make a frame that touches a NaN sample NaN in every bin, whatever the FFT spread.
    bad = ~np.isfinite(samples)
    if bad.any():
        out[:, _frames_touching(bad, config, n_frames)] = np.nan
    return out


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _frames_touching(bad: np.ndarray, config: StftConfig, n_frames: int) -> np.ndarray:
    """Boolean mask of the frames whose samples include any ``bad`` one."""
    # A running count of bad samples tells, per frame, whether its span holds one.
    cum = np.concatenate([[0], np.cumsum(bad)])
    starts = np.arange(n_frames) * config.hop_length
    return cum[starts + config.n_fft] > cum[starts]
