"""Calibration at read time: hand-computed levels of known signals in dB re 1 µPa, stored power untouched."""

from __future__ import annotations

import hashlib
import json
import subprocess

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
from conftest import SR, noise, tone
from test_store import digest

from data_access import (
    Calibration,
    FormatError,
    ParameterError,
    SourceNotFoundError,
    StftConfig,
    calibrate,
    ingest,
    open_atlas,
    open_store,
    open_timeline,
    store_info,
)
from data_access.schema import calibration_attrs, read_calibration

CONFIG = StftConfig(n_fft=256, hop_length=128)
S_DB, GAIN_DB, FSV = -170.0, 20.0, 2.0
CAL = Calibration(sensitivity_db=S_DB, gain_db=GAIN_DB, full_scale_volts=FSV)
AMP = 0.5


def run(cli, *args):
    return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=300)


def tone_level(amp: float, sensitivity_db: float, gain_db: float = GAIN_DB, fsv: float = FSV) -> float:
    """dB re 1 µPa of a sine of peak ``amp`` (full scale): its rms pressure, by hand."""
    rms_upa = amp / np.sqrt(2) * fsv / 10 ** (gain_db / 20) / 10 ** (sensitivity_db / 20)
    return 20 * np.log10(rms_upa)


def factor(sensitivity_db: float = S_DB) -> float:
    """µPa² per full scale², by hand."""
    return FSV**2 / 10 ** (GAIN_DB / 10) / 10 ** (sensitivity_db / 10)


@pytest.fixture
def tone_wav(write_audio):
    return write_audio("t_20260301_120000.wav", tone(1000.0, 20.0, amp=AMP))


def test_a_calibrated_tone_reads_its_hand_computed_level(tone_wav, tmp_path, report):
    atlas = open_atlas(ingest(open_timeline(tone_wav), tmp_path / "t.zarr", CONFIG, calibration=CAL, progress=False))
    assert atlas.calibration == CAL
    curves = atlas.band_energy({"tone": (900, 1100)}, points=10)
    expected = tone_level(AMP, S_DB)  # 146.99 dB re 1 µPa
    np.testing.assert_allclose(curves.tone.values, expected, atol=0.05)
    report("calibrated tone band level - hand value", f"{np.abs(curves.tone.values - expected).max():.4f} dB")
    assert curves.tone.attrs["units"] == curves.attrs["units"] == "dB re 1 µPa"
    assert curves.tone.attrs["long_name"] == "band level 900-1100 Hz"
    view = atlas.view(width=20, height=16)
    assert view.attrs["units"] == "dB re 1 µPa²/Hz" and view.attrs["long_name"] == "power spectral density"
    assert atlas.view(width=20, height=16, agg="max").attrs["long_name"] == "maximum power spectral density"


def test_uncalibrated_units_are_unchanged(tone_wav, tmp_path):
    atlas = open_atlas(ingest(open_timeline(tone_wav), tmp_path / "t.zarr", CONFIG, progress=False))
    assert atlas.calibration is None and atlas.power_scale is None
    assert atlas.view(width=20, height=16).attrs["units"] == "dB re full scale"
    curves = atlas.band_energy({"tone": (900, 1100)}, points=3)
    assert curves.tone.attrs["units"] == "dB re full scale"
    np.testing.assert_allclose(curves.tone.values, 10 * np.log10(AMP**2 / 2), atol=0.01)
    assert store_info(atlas.path)["calibration"] is None


def test_cli_ingest_with_calibration_then_info(cli, tone_wav, tmp_path):
    out = tmp_path / "c.zarr"
    args = ["--sensitivity", str(S_DB), "--gain", str(GAIN_DB), "--full-scale-volts", str(FSV)]
    done = run(cli, "ingest", str(tone_wav), "-o", str(out), "--n-fft", "256", "--hop-length", "128", *args)
    assert done.returncode == 0, done.stderr
    curves = open_atlas(out).band_energy({"tone": (900, 1100)}, points=5)
    np.testing.assert_allclose(curves.tone.values, tone_level(AMP, S_DB), atol=0.05)
    summary = json.loads(run(cli, "info", str(out), "--json").stdout)["calibration"]
    assert summary["sensitivity_db"] == S_DB and summary["gain_db"] == GAIN_DB
    assert summary["full_scale_volts"] == FSV and summary["band_units"] == "dB re 1 µPa"
    text = run(cli, "info", str(out)).stdout
    assert "calibration sensitivity -170 dB re 1 V/µPa, gain 20 dB, full scale 2 V" in text


def test_white_noise_psd_matches_2_sigma2_over_fs(write_audio, tmp_path, report):
    wav = write_audio("n_20260301_120000.wav", noise(60.0, amp=0.1, seed=3))
    variance = float(np.var(sf.read(wav, dtype="float64")[0]))
    atlas = open_atlas(ingest(open_timeline(wav), tmp_path / "n.zarr", CONFIG, calibration=CAL, progress=False))
    view = atlas.view(freq=(100, 3900), width=8, height=32)  # many frames and bins per pixel
    measured = 10 * np.log10(np.mean(10 ** (view.values.astype(np.float64) / 10)))
    expected = 10 * np.log10(2 * variance / SR * factor())
    report("white-noise PSD - 10 log10(2 sigma^2 / fs * k)", f"{measured - expected:+.4f} dB")
    assert abs(measured - expected) < 0.2, (measured, expected)


def test_calibrated_view_is_scipy_psd_times_the_factor(write_audio, tmp_path):
    """One frame at full resolution against scipy.signal.spectrogram(scaling="density"), DC and Nyquist included."""
    x = noise(10.0, amp=0.05, seed=4) + tone(1500.0, 10.0, amp=0.3)
    wav = write_audio("p_20260301_120000.wav", x)
    store = ingest(open_timeline(wav), tmp_path / "p.zarr", CONFIG, calibration=CAL, progress=False)
    atlas = open_atlas(store)
    _, _, psd = scipy.signal.spectrogram(
        x.astype(np.float64), SR, window="hann", nperseg=256, noverlap=128, detrend=False, scaling="density"
    )
    i = 300
    centre = open_store(store)["0"].time.values[i]
    view = atlas.view(time=(centre - np.timedelta64(2, "ms"), centre + np.timedelta64(2, "ms")), width=4, height=129)
    assert view.attrs["level"] == 0
    np.testing.assert_allclose(view.values[:, 1], 10 * np.log10(psd[:, i] * factor()), atol=1e-3)


def test_csv_sensitivity_is_applied_per_bin(write_audio, tmp_path):
    """Two tones on bin centres: 1000 Hz between two rows (interpolated in dB), 3500 Hz beyond the last (held)."""
    csv = tmp_path / "response.csv"
    csv.write_text("frequency_hz,sensitivity_db\n# from the manufacturer's sheet\n500,-180\n1500,-160\n3000,-150\n")
    wav = write_audio("d_20260301_120000.wav", tone(1000.0, 20.0, amp=AMP) + tone(3500.0, 20.0, amp=AMP))
    cal = Calibration.from_csv(csv, gain_db=GAIN_DB, full_scale_volts=FSV)
    assert cal.sensitivity_file == "response.csv" and cal.response_hz == (500.0, 1500.0, 3000.0)
    atlas = open_atlas(ingest(open_timeline(wav), tmp_path / "d.zarr", CONFIG, calibration=cal, progress=False))
    curves = atlas.band_energy({"low": (900, 1100), "high": (3400, 3600)}, points=4)
    # -180 + (1000 - 500) / (1500 - 500) * (-160 - -180) = -170; beyond 3000 Hz the last row, -150.
    np.testing.assert_allclose(curves.low.values, tone_level(AMP, -170.0), atol=0.05)
    np.testing.assert_allclose(curves.high.values, tone_level(AMP, -150.0), atol=0.05)


@pytest.mark.parametrize("fmt", ["zarr", "netcdf"])
def test_calibration_round_trips_through_a_store(tone_wav, tmp_path, fmt):
    cal = Calibration(response_hz=[10, 2000.5], response_db=[-165.25, -171], gain_db=-6, sensitivity_file="x.csv")
    assert read_calibration(calibration_attrs(cal)) == cal
    store = ingest(open_timeline(tone_wav), tmp_path / f"r.{fmt}", CONFIG, format=fmt, calibration=cal, progress=False)
    assert open_atlas(store).calibration == cal
    assert store_info(store)["calibration"]["response_db"] == [-165.25, -171.0]


def power_digest(store) -> str:
    """Digest of every power, power_max and frame_count file of a Zarr store."""
    h = hashlib.sha256()
    for name in ("power", "power_max", "frame_count"):
        for array in sorted(store.glob(f"*/{name}")):
            h.update(digest(array).encode())
    return h.hexdigest()


def test_cli_calibrate_sets_and_removes_without_touching_power(cli, tone_wav, tmp_path):
    store = ingest(open_timeline(tone_wav), tmp_path / "s.zarr", CONFIG, progress=False)
    before_bytes, before = power_digest(store), open_store(store)["0"].power.values
    raw = open_atlas(store).band_energy({"tone": (900, 1100)}, points=5).tone.values

    args = ["--sensitivity", str(S_DB), "--gain", str(GAIN_DB), "--full-scale-volts", str(FSV)]
    done = run(cli, "calibrate", str(store), *args)
    assert done.returncode == 0, done.stderr
    assert power_digest(store) == before_bytes
    np.testing.assert_array_equal(open_store(store)["0"].power.values, before)
    curves = open_atlas(store).band_energy({"tone": (900, 1100)}, points=5)
    np.testing.assert_allclose(curves.tone.values, tone_level(AMP, S_DB), atol=0.05)
    np.testing.assert_allclose(curves.tone.values - raw, 10 * np.log10(factor()), atol=1e-3)

    csv = tmp_path / "s.csv"
    csv.write_text("0,-160\n4000,-160\n")
    assert run(cli, "calibrate", str(store), "--sensitivity", str(csv)).returncode == 0
    replaced = open_atlas(store)
    flat = Calibration(response_hz=[0, 4000], response_db=[-160, -160], sensitivity_file="s.csv")
    assert replaced.calibration == flat
    assert "calibration_sensitivity_db" not in replaced.attrs  # the flat value was replaced, not kept beside

    assert run(cli, "calibrate", str(store), "--remove").returncode == 0
    assert power_digest(store) == before_bytes
    plain = open_atlas(store)
    assert plain.calibration is None and plain.units == "dB re full scale"
    np.testing.assert_array_equal(plain.band_energy({"tone": (900, 1100)}, points=5).tone.values, raw)


def test_calibrate_a_store_open_elsewhere_fails_cleanly(tone_wav, tmp_path):
    store = ingest(open_timeline(tone_wav), tmp_path / "s.nc", CONFIG, format="netcdf", progress=False)
    atlas = open_atlas(store)  # holds the NetCDF file open for reading
    with pytest.raises(FormatError, match=r"cannot write the attributes of '.*s\.nc' \(is it open elsewhere\?\)"):
        calibrate(store, CAL)
    del atlas
    calibrate(store, CAL)
    assert open_atlas(store).calibration == CAL


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        (None, SourceNotFoundError, r"no sensitivity file '.*bad\.csv'"),
        ("", FormatError, r"'bad\.csv' has 0 data row\(s\); a frequency response needs at least 2"),
        ("hz,db\n1000,-170\n", FormatError, r"'bad\.csv' has 1 data row\(s\)"),
        ("100,-170\n200,loud\n", FormatError, r"'bad\.csv' line 2: '200,loud' is not two numbers"),
        ("100,-170\n200,-171,x\n", FormatError, r"'bad\.csv' line 2: expected 2 columns .* found 3"),
        ("100,-170\n300,-171\n200,-172\n", FormatError, r"line 3: frequency 200 Hz does not increase .* 300 Hz"),
        ("100,-170\n100,-171\n", FormatError, r"line 2: frequency 100 Hz does not increase"),
        ("-5,-170\n100,-171\n", FormatError, r"line 1: frequency -5 Hz is negative"),
        ("100,-170\n200,nan\n", FormatError, r"line 2: values must be finite"),
    ],
)
def test_bad_csv(tmp_path, text, error, match):
    path = tmp_path / "bad.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(error, match=match):
        Calibration.from_csv(path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, r"give exactly one of sensitivity_db .* or response_hz \+ response_db"),
        ({"sensitivity_db": -170, "response_hz": [1, 2], "response_db": [1, 2]}, r"give exactly one of"),
        ({"response_hz": [1, 2]}, r"response_hz and response_db must be given together"),
        ({"response_hz": [1, 2, 3], "response_db": [1, 2]}, r"response_hz has 3 values but response_db has 2"),
        ({"response_hz": [2, 1], "response_db": [1, 2]}, r"strictly increasing: 1 Hz follows 2 Hz"),
        ({"sensitivity_db": float("nan")}, r"sensitivity_db=nan must be finite"),
        ({"sensitivity_db": "loud"}, r"sensitivity_db='loud' must be a number"),
        ({"sensitivity_db": -170, "full_scale_volts": 0}, r"full_scale_volts=0 must be > 0"),
        ({"sensitivity_db": -170, "gain_db": float("inf")}, r"gain_db=inf must be finite"),
    ],
)
def test_bad_calibration(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        Calibration(**kwargs)


def test_from_sensitivity_takes_a_number_or_a_csv(tmp_path):
    assert Calibration.from_sensitivity("-170", gain_db=20) == Calibration(sensitivity_db=-170, gain_db=20)
    assert Calibration.from_sensitivity(-165.5) == Calibration(sensitivity_db=-165.5)
    (tmp_path / "r.csv").write_text("10,-170\n20,-171\n")
    assert Calibration.from_sensitivity(tmp_path / "r.csv").response_db == (-170.0, -171.0)


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("calibrate", ["--sensitivity", "{dir}/nope.csv"], "spectral-atlas: error: no sensitivity file '"),
        ("calibrate", ["--sensitivity", "-170", "--full-scale-volts", "-1"], "full_scale_volts=-1 must be > 0"),
        ("ingest", ["--gain", "20"], "spectral-atlas: error: --gain and --full-scale-volts need --sensitivity"),
        ("ingest", ["--sensitivity", "{dir}/bad.csv"], "sensitivity file 'bad.csv' line 1: expected 2 columns"),
    ],
)
def test_cli_bad_calibration_is_one_line_and_the_store_is_untouched(cli, tone_wav, tmp_path, command, args, message):
    store = ingest(open_timeline(tone_wav), tmp_path / "s.zarr", CONFIG, calibration=CAL, progress=False)
    (tmp_path / "bad.csv").write_text("x,y,z\n")
    before = digest(store)
    args = [a.format(dir=tmp_path) for a in args]
    where = [str(store)] if command == "calibrate" else [str(tone_wav), "-o", str(store), "--overwrite"]
    done = run(cli, command, *where, *args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert digest(store) == before
