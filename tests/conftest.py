"""Shared fixtures: signals are generated here and written as real audio files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 8000  # small rates keep the tests fast; the maths does not care
T0 = np.datetime64("2026-03-01T12:00:00", "ns")  # where the `atlas` fixture's recording starts
S = np.timedelta64(1_000_000_000, "ns")

_figures: list[tuple[str, str]] = []


@pytest.fixture
def report():
    """Record a measured figure; they are listed at the end of the run."""

    def add(name: str, value: str) -> None:
        _figures.append((name, value))

    return add


def pytest_terminal_summary(terminalreporter):
    if _figures:
        terminalreporter.section("measured figures")
        for name, value in _figures:
            terminalreporter.write_line(f"{name}: {value}")


def stored(power: np.ndarray) -> np.ndarray:
    """Exact level-0 power as a store of format 2 keeps it (LEVEL0_BITS of mantissa: within 0.00053 dB)."""
    from data_access.store import LEVEL0_BITS, keep_bits

    return keep_bits(power, LEVEL0_BITS)


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp(f0: float, f1: float, seconds: float, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    """Linear sweep; instantaneous frequency f0 + (f1 - f0) * t / seconds."""
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))).astype(np.float32)


def noise(seconds: float, sr: int = SR, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


@pytest.fixture
def write_audio(tmp_path):
    """``write_audio(name, samples, sr=SR, subtype="FLOAT")`` writes a real audio file."""

    def write(name: str, samples: np.ndarray, sr: int = SR, subtype: str = "FLOAT") -> Path:
        path = tmp_path / name
        sf.write(path, samples, sr, subtype=subtype if path.suffix == ".wav" else None)
        return path

    return write


@pytest.fixture(scope="session")
def cli():
    """The installed ``spectral-atlas`` console script (falls back to the module)."""
    script = Path(sys.executable).parent / "spectral-atlas"
    return [str(script)] if script.exists() and os.access(script, os.X_OK) else [sys.executable, "-m", "dashboard.cli"]


@pytest.fixture(scope="session")
def atlas(tmp_path_factory):
    """A 2-minute 8 kHz recording from ``T0`` (1 kHz tone over noise), ingested with n_fft 256, opened.

    The small store of the dashboard's state and link tests; a module may define its own ``atlas``.
    """
    from data_access import StftConfig, ingest, open_atlas, open_timeline

    wav = tmp_path_factory.mktemp("two-minutes") / "s_20260301_120000.wav"
    sf.write(wav, noise(120.0, amp=0.01) + tone(1000.0, 120.0, amp=0.1), SR)
    return open_atlas(ingest(open_timeline(wav), wav.with_name("s.zarr"), StftConfig(n_fft=256)))


@pytest.fixture
def state(atlas):
    """A fresh :class:`~dashboard.state.ExplorerState` on ``atlas``."""
    from dashboard.state import ExplorerState

    return ExplorerState(atlas)
