"""Hydrophone calibration: from stored power to sound pressure, applied at read time.

A store keeps raw ``|STFT|**2`` of the samples as they were recorded; a
:class:`Calibration` held in the store's root attributes tells the reader how
to turn it into pressure. Stored power is never rewritten, so a calibration
can be set, corrected or removed later (:func:`data_access.store.calibrate`)
without a new ingest. This module is the maths only: how a calibration is kept
in a store's attributes is :mod:`data_access.schema`'s.

The chain, for a sample ``x`` (1.0 = full scale for PCM audio, one count for
MiniSEED) at frequency ``f``::

    volts at the recorder's input   v = x * full_scale_volts
    volts at the hydrophone         v / 10**(gain_db / 20)
    pressure in µPa                 p = v / 10**(gain_db / 20) / 10**(S(f) / 20)

where ``S(f)`` is the hydrophone's sensitivity in dB re 1 V/µPa. Power scales
by the square, so each frequency bin of stored power is multiplied by::

    k(f) = full_scale_volts**2 / 10**(gain_db / 10) / 10**(S(f) / 10)     [µPa² per unit²]

``S(f)`` is either one flat value or a table of (frequency in Hz, dB re
1 V/µPa), interpolated linearly in dB over linear frequency between its rows
and held at the first (last) row's value below (above) the table.

``full_scale_volts`` is the voltage of one unit of the stored samples: the
peak voltage the recorder maps to digital full scale (1.0) for WAV/FLAC/...,
and the volts per count of the digitiser for MiniSEED counts. Its default,
1.0, with ``gain_db`` 0, makes ``sensitivity_db`` an end-to-end system
sensitivity in dB re 1 FS/µPa (dB re 1 count/µPa for MiniSEED), the way many
recorders (SoundTrap, AMAR) are calibrated.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from data_access.errors import FormatError, ParameterError, SourceNotFoundError


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """Sensitivity, gain and full-scale voltage of a recording chain.

    Give exactly one of ``sensitivity_db`` or the table ``response_hz`` /
    ``response_db``.

    Parameters
    ----------
    sensitivity_db : float, optional
        Flat hydrophone sensitivity, dB re 1 V/µPa (typically -150 .. -210).
    response_hz, response_db : sequence of float, optional
        A frequency response: frequencies in Hz (strictly increasing, >= 0,
        at least two) and the sensitivity at each, dB re 1 V/µPa. Interpolated
        linearly in dB between rows, constant beyond the first and last row.
    gain_db : float, default: 0
        Gain of the preamplifier between the hydrophone and the recorder, dB.
    full_scale_volts : float, default: 1.0
        Volts of one unit of the stored samples: the recorder's full-scale
        voltage for PCM audio, volts per count for MiniSEED. Must be > 0.
    sensitivity_file : str, optional
        Name of the CSV file the table came from, kept for provenance only.
    """

    sensitivity_db: float | None = None
    response_hz: tuple[float, ...] | None = None
    response_db: tuple[float, ...] | None = None
    gain_db: float = 0.0
    full_scale_volts: float = 1.0
    sensitivity_file: str | None = None

    def __post_init__(self) -> None:
        table = (self.response_hz, self.response_db)
        if (self.sensitivity_db is None) == (table == (None, None)):
            raise ParameterError(
                "give exactly one of sensitivity_db (flat, dB re 1 V/µPa) or response_hz + response_db (a table)"
            )
        if self.sensitivity_db is not None:
            object.__setattr__(self, "sensitivity_db", _finite("sensitivity_db", self.sensitivity_db))
        else:
            if None in table:
                raise ParameterError("response_hz and response_db must be given together")
            hz, db = _numbers("response_hz", self.response_hz), _numbers("response_db", self.response_db)
            if len(hz) != len(db):
                raise ParameterError(f"response_hz has {len(hz)} values but response_db has {len(db)}")
            if len(hz) < 2:
                raise ParameterError(f"a frequency response needs at least 2 rows, not {len(hz)}")
            if hz[0] < 0:
                raise ParameterError(f"response_hz starts at {hz[0]:g} Hz: frequencies must be >= 0")
            bad = next((i for i in range(1, len(hz)) if not hz[i] > hz[i - 1]), None)
            if bad is not None:
                raise ParameterError(
                    f"response_hz must be strictly increasing: {hz[bad]:g} Hz follows {hz[bad - 1]:g} Hz"
                )
            object.__setattr__(self, "response_hz", hz)
            object.__setattr__(self, "response_db", db)
        object.__setattr__(self, "gain_db", _finite("gain_db", self.gain_db))
        fsv = _finite("full_scale_volts", self.full_scale_volts)
        if not fsv > 0:
            raise ParameterError(f"full_scale_volts={fsv:g} must be > 0 (volts at full scale, or per count)")
        object.__setattr__(self, "full_scale_volts", fsv)

    # ------------------------------------------------------------- building
    @classmethod
    def from_sensitivity(
        cls, sensitivity: float | str | os.PathLike, *, gain_db: float = 0.0, full_scale_volts: float = 1.0
    ) -> Calibration:
        """A calibration from a flat sensitivity or a response CSV, as ``--sensitivity`` takes it.

        Parameters
        ----------
        sensitivity : float, str or path-like
            A number (or a string holding one), dB re 1 V/µPa; anything else
            is the path of a CSV file for :meth:`from_csv`.
        gain_db, full_scale_volts : float
            As for :class:`Calibration`.

        Returns
        -------
        Calibration
        """
        if isinstance(sensitivity, (int, float, np.number)) and not isinstance(sensitivity, bool):
            return cls(sensitivity_db=float(sensitivity), gain_db=gain_db, full_scale_volts=full_scale_volts)
        try:
            value = float(str(sensitivity))
        except ValueError:
            return cls.from_csv(sensitivity, gain_db=gain_db, full_scale_volts=full_scale_volts)
        return cls(sensitivity_db=value, gain_db=gain_db, full_scale_volts=full_scale_volts)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, *, gain_db: float = 0.0, full_scale_volts: float = 1.0) -> Calibration:
        """A calibration whose sensitivity is a frequency response read from a CSV file.

        Parameters
        ----------
        path : path-like
            Two comma-separated columns, frequency (Hz) and sensitivity (dB re
            1 V/µPa), one row per frequency in increasing order, at least two
            rows. A first row of column names is allowed; blank lines and
            lines starting with ``#`` are skipped.
        gain_db, full_scale_volts : float
            As for :class:`Calibration`.

        Returns
        -------
        Calibration
        """
        path = Path(path)
        if not path.is_file():
            raise SourceNotFoundError(f"no sensitivity file {str(path)!r}")
        rows: list[tuple[float, float]] = []
        for line, cells in _csv_rows(path):
            where = f"sensitivity file {path.name!r} line {line}"
            if len(cells) != 2:
                raise FormatError(f"{where}: expected 2 columns (frequency Hz, sensitivity dB), found {len(cells)}")
            try:
                hz, db = float(cells[0]), float(cells[1])
            except ValueError:
                if not rows and _is_header(cells):
                    continue
                raise FormatError(f"{where}: {','.join(cells)!r} is not two numbers") from None
            if not (math.isfinite(hz) and math.isfinite(db)):
                raise FormatError(f"{where}: values must be finite")
            if hz < 0:
                raise FormatError(f"{where}: frequency {hz:g} Hz is negative")
            if rows and not hz > rows[-1][0]:
                raise FormatError(
                    f"{where}: frequency {hz:g} Hz does not increase (the row before is {rows[-1][0]:g} Hz); "
                    "sort the rows by frequency"
                )
            rows.append((hz, db))
        if len(rows) < 2:
            raise FormatError(
                f"sensitivity file {path.name!r} has {len(rows)} data row(s); a frequency response needs at least 2"
            )
        return cls(
            response_hz=[hz for hz, _ in rows],
            response_db=[db for _, db in rows],
            gain_db=gain_db,
            full_scale_volts=full_scale_volts,
            sensitivity_file=path.name,
        )

    # ----------------------------------------------------------------- use
    def sensitivity_at(self, freq_hz: np.ndarray) -> np.ndarray:
        """Sensitivity ``S(f)`` in dB re 1 V/µPa at each frequency (Hz)."""
        freq_hz = np.asarray(freq_hz, dtype=np.float64)
        if self.sensitivity_db is not None:
            return np.full(freq_hz.shape, self.sensitivity_db)
        return np.interp(freq_hz, self.response_hz, self.response_db)  # constant beyond the table

    def power_factor(self, freq_hz: np.ndarray) -> np.ndarray:
        """Factor ``k(f)`` from stored power (full scale² or count²) to µPa², per frequency.

        Parameters
        ----------
        freq_hz : ndarray, shape (n,)
            Bin centres in Hz.

        Returns
        -------
        ndarray, float64, shape (n,)
            ``full_scale_volts**2 / 10**(gain_db / 10) / 10**(S(f) / 10)``.
        """
        return self.full_scale_volts**2 * 10.0 ** (-(self.gain_db + self.sensitivity_at(freq_hz)) / 10)

    def summary(self) -> str:
        """One line describing the calibration, for ``spectral-atlas info``."""
        if self.sensitivity_db is not None:
            sens = f"{self.sensitivity_db:g} dB re 1 V/µPa"
        else:
            lo, hi = min(self.response_db), max(self.response_db)
            name = f" from {self.sensitivity_file}" if self.sensitivity_file else ""
            sens = (
                f"{lo:g} .. {hi:g} dB re 1 V/µPa over {self.response_hz[0]:g} .. {self.response_hz[-1]:g} Hz "
                f"({len(self.response_hz)} rows{name})"
            )
        return f"sensitivity {sens}, gain {self.gain_db:g} dB, full scale {self.full_scale_volts:g} V"

    def to_json(self) -> dict[str, object]:
        """The fields as JSON-friendly values, plus ``summary``."""
        fields = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        return {**fields, "summary": self.summary()}


def _finite(name: str, value: object) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={value!r} must be a number") from None
    if not math.isfinite(number):
        raise ParameterError(f"{name}={value!r} must be finite")
    return number


def _numbers(name: str, values: object) -> tuple[float, ...]:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={values!r} must be a sequence of numbers") from None
    if array.ndim != 1:
        raise ParameterError(f"{name}={values!r} must be a one-dimensional sequence of numbers")
    if not np.isfinite(array).all():
        raise ParameterError(f"{name}={values!r} must hold finite numbers only")
    return tuple(array.tolist())


def _csv_rows(path: Path):
    """``(line number, stripped cells)`` of each row, skipping blank lines and ``#`` comments."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.reader(f), start=1):
                cells = [c.strip() for c in row]
                if any(cells) and not cells[0].startswith("#"):
                    yield line, cells
    except UnicodeDecodeError:
        raise FormatError(f"sensitivity file {path.name!r} is not a text CSV file") from None


def _is_header(cells: list[str]) -> bool:
    """A row of column names: no cell parses as a number."""
    for cell in cells:
        try:
            float(cell)
        except ValueError:
            continue
        return False
    return True
