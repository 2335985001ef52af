"""The ``spectral-atlas`` console script.

``ingest``, ``calibrate``, ``demo``, ``info``, ``upgrade``, ``annotations``, ``audio``, ``export``, ``stats``
and ``set-location`` call :mod:`data_access`;
``serve`` runs the Panel app of :mod:`dashboard.app`. An error the user
can fix (an :class:`~data_access.AtlasError`) becomes one line on stderr and
exit status 1, with no traceback; usage errors exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from dashboard.options import ServerOptions

log = logging.getLogger("spectral_atlas")


# Characters that would start a new line or move the cursor in a terminal or a log file.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with its control characters written as escapes (a newline as backslash-n): no forged lines."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class _OneLineFormatter(logging.Formatter):
    """Each message on one line: control characters in it (from a file's name, a store's attributes) escaped.

    A traceback, when a record carries one, follows on its own lines as usual.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802  (logging's name)
        return one_line(super().formatMessage(record))


def _channel(text: str) -> int | str:
    if text in ("mean", "all"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a channel index, 'mean' nor 'all'") from None


def _calibration_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    group = parser.add_argument_group("calibration (reads then report dB re 1 µPa²/Hz and dB re 1 µPa)")
    which = group.add_mutually_exclusive_group(required=required)
    which.add_argument(
        "--sensitivity",
        metavar="DB|CSV",
        help="hydrophone sensitivity in dB re 1 V/µPa, or a CSV file of frequency (Hz), sensitivity (dB)",
    )
    if required:  # the calibrate command can also take the calibration away
        which.add_argument("--remove", action="store_true", help="remove the calibration: dB re full scale again")
    group.add_argument("--gain", type=float, metavar="DB", help="preamplifier gain in dB (default: 0)")
    group.add_argument(
        "--full-scale-volts",
        type=float,
        metavar="V",
        help="volts at digital full scale; for MiniSEED, volts per count (default: 1)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spectral-atlas",
        description="Explore long audio recordings as multiscale spectrograms.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = sub.add_parser("ingest", help="compute the spectrogram of audio files into a store")
    ingest.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files, directories or glob patterns")
    target = ingest.add_mutually_exclusive_group(required=True)
    target.add_argument("-o", "--output", metavar="STORE", help="store to write (.zarr or .nc)")
    target.add_argument("--append", metavar="STORE", help="extend this store in time with the inputs (newer files)")
    ingest.add_argument("--n-fft", type=int, help="FFT length in samples (default: 4096, or the store's)")
    ingest.add_argument("--hop-length", type=int, help="samples between frames (default: n_fft / 2)")
    ingest.add_argument("--win-length", type=int, help="window length, <= n_fft (default: n_fft)")
    ingest.add_argument("--window", help="scipy.signal.get_window name (default: hann)")
    ingest.add_argument(
        "--channel",
        type=_channel,
        default=0,
        help="channel index, 'mean', or 'all' (every channel, as a channel dimension) (default: 0)",
    )
    ingest.add_argument("--start-time", help="UTC start of the first file (ISO 8601), if not in headers or names")
    ingest.add_argument("--time-pattern", help="strftime pattern of the start time in the file names")
    ingest.add_argument("--sample-rate", type=float, metavar="HZ", help="resample files at other rates to HZ")
    ingest.add_argument(
        "--max-overlap", type=float, default=1.0, metavar="SECONDS", help="longest overlap between files (default: 1)"
    )
    ingest.add_argument("--skip-bad", action="store_true", help="skip unreadable files with a warning")
    ingest.add_argument("--format", choices=("zarr", "netcdf"), help="store format (default: zarr, or the store's)")
    ingest.add_argument("--time-chunk", type=int, metavar="FRAMES", help="frames per chunk and per task (default: 512)")
    ingest.add_argument("--scheduler", metavar="ADDRESS", help="dask.distributed scheduler to run on")
    ingest.add_argument("--overwrite", action="store_true", help="replace an existing store")
    ingest.add_argument("--no-progress", action="store_true", help="no progress bar")
    ingest.add_argument(
        "--location", type=_location, metavar="LAT,LON", help="where the recorder was (degrees; see set-location)"
    )
    _calibration_options(ingest)

    demo = sub.add_parser("demo", help="generate the demo deployment and ingest it into DIR/demo.zarr")
    demo.add_argument("directory", type=Path, metavar="DIR")
    demo.add_argument("--hours", type=float, default=2.0, help="length of the deployment (default: 2)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--overwrite", action="store_true", help="replace an existing demo store")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")

    serve = sub.add_parser("serve", help="serve the explorer on stores and data roots", description=_SERVE_DESCRIPTION)
    serve.add_argument("stores", nargs="*", metavar="STORE", help="stores to offer (the first is shown)")
    ServerOptions.add_arguments(serve)

    calibrate = sub.add_parser(
        "calibrate", help="set, replace or remove the calibration of a store (its power is not rewritten)"
    )
    calibrate.add_argument("store", metavar="STORE")
    _calibration_options(calibrate, required=True)

    info = sub.add_parser("info", help="describe a store")
    info.add_argument("store", metavar="STORE")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")

    upgrade = sub.add_parser(
        "upgrade",
        help="rewrite stores of an older format (1: uncompressed, 2: no waveform) in the current one, in place",
        description="Rewrite each store in the current format (3: compressed, with waveform summaries), as a "
        "fresh ingest would write it; the waveform is computed from the store's recordings. The new store is "
        "built beside the old and moved into place only when complete.",
    )
    upgrade.add_argument("stores", nargs="+", metavar="STORE")
    upgrade.add_argument("--audio-root", metavar="DIR", help="where the recordings are, if they moved since the ingest")

    _annotations_parser(sub)
    _audio_parser(sub)
    _spectra_parsers(sub)
    _export_parser(sub)
    return parser


def _speed(text: str) -> float:
    """A playback speed: a number or a fraction (``0.1``, ``1/10``)."""
    try:
        num, _, den = text.partition("/")
        return float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a speed such as 0.1 or 1/10") from None


def _band(text: str) -> tuple[float, float]:
    """A band ``LO:HI`` in Hz."""
    try:
        lo, hi = (float(f) for f in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a band LO:HI in Hz, such as 500:2000") from None
    return lo, hi


def _location(text: str) -> tuple[float, float]:
    """``LAT,LON`` in degrees: signed numbers (``--location=-33.9,18.4``) or with N/S and E/W (``33.9S,18.4E``)."""

    def degrees(part: str, positive: str, negative: str) -> float:
        part = part.strip().upper()
        sign = -1.0 if part.endswith(negative) else 1.0
        return sign * float(part.rstrip(positive + negative))

    try:
        lat, lon = text.split(",")
        return degrees(lat, "N", "S"), degrees(lon, "E", "W")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not LAT,LON in degrees, such as 47.6,-122.3 or 33.9S,18.4E"
        ) from None


def _spectra_parsers(sub) -> None:
    stats = sub.add_parser(
        "stats",
        help="write long-term spectrum statistics (PSD percentiles, SPD) of a span of a store to NetCDF",
        description="Per frequency, the mean, median and percentiles (1, 5, 10, 50, 90, 95, 99) of the PSD over "
        "averaging periods of --period (the columns of the pyramid level whose length is nearest: the file says "
        "which), and the spectral probability density, in dB (re 1 µPa²/Hz when the store is calibrated), "
        "written as NetCDF with CF attributes.",
    )
    stats.add_argument("store", metavar="STORE")
    stats.add_argument("--start", metavar="TIME", help="UTC start of the span (ISO 8601; default: the recording's)")
    stats.add_argument("--end", metavar="TIME", help="UTC end of the span (ISO 8601; default: the recording's)")
    stats.add_argument("--period", default="60s", metavar="DURATION", help="averaging period: 1s, 10s, 1min (60s)")
    stats.add_argument("--db-bin", type=float, metavar="DB", help="width of the SPD's level bins (default: 1 dB)")
    stats.add_argument("--channel", type=int, metavar="C", help="channel of a store of every channel (default: 0)")
    stats.add_argument("-o", "--output", required=True, metavar="FILE", help="the NetCDF file to write (.nc)")
    stats.add_argument("--overwrite", action="store_true", help="replace an existing file")
    stats.add_argument("--no-progress", action="store_true", help="no progress bar")

    place = sub.add_parser(
        "set-location",
        help="set or remove where a store's recorder was (its power is not rewritten)",
        description="Write the root attribute location (latitude, longitude in degrees, north and east positive): "
        "the diel map draws sunrise and sunset from it. A southern or western place: 33.9S,18.4E, or after --.",
    )
    place.add_argument("store", metavar="STORE")
    where = place.add_mutually_exclusive_group(required=True)
    where.add_argument("location", nargs="?", type=_location, metavar="LAT,LON")
    where.add_argument("--remove", action="store_true", help="remove the location")


def _audio_parser(sub) -> None:
    audio = sub.add_parser(
        "audio",
        help="write the audio of a span of a store to a WAV or FLAC file",
        description="Read the span from the store's recordings (exactly their samples; gaps as silence), or, "
        "when they are not found, reconstruct it from the spectrogram (phase estimated, at most 60 s), and write "
        "it: WAV as 32-bit float with the start time in a BWF bext chunk, FLAC as 16-bit with it in a Vorbis "
        "comment. At most 10 minutes of the recording.",
    )
    audio.add_argument("store", metavar="STORE")
    audio.add_argument("--start", required=True, metavar="TIME", help="UTC start of the span (ISO 8601)")
    audio.add_argument("--end", required=True, metavar="TIME", help="UTC end of the span (ISO 8601)")
    audio.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write: .wav or .flac")
    audio.add_argument(
        "--rate",
        type=_speed,
        default=1.0,
        metavar="R",
        help="playback speed, 1/32 to 4: 0.1 (or 1/10) plays ten times slower and lower (default: 1)",
    )
    audio.add_argument("--band", type=_band, metavar="LO:HI", help="keep only LO..HI Hz of the recording")
    audio.add_argument("--channel", type=int, metavar="C", help="channel of a store of every channel (default: 0)")
    audio.add_argument("--audio-root", metavar="DIR", help="where the recordings are, if they moved since the ingest")
    audio.add_argument("--normalise", action="store_true", help="scale the peak to 0.9 of full scale")
    audio.add_argument(
        "--no-reconstruct", action="store_true", help="fail rather than reconstruct when the recordings are not found"
    )
    audio.add_argument("--overwrite", action="store_true", help="replace an existing file")


def _windows(text: str) -> tuple[float, float | None]:
    """Windows ``LEN[:HOP]`` in seconds."""
    try:
        length, _, hop = text.partition(":")
        return float(length), float(hop) if hop else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LEN[:HOP] in seconds, such as 30 or 30:15") from None


def _export_parser(sub) -> None:
    export = sub.add_parser(
        "export",
        help="write labelled spectrogram clips (or fixed windows) of a store as a dataset for models",
        description="Cut the store's own matrix (stored |STFT|^2 of whole frames and bins, never resampled; "
        "optionally dB, mel or log rows) to each selection, or to fixed windows, and write X (clip, freq, time) "
        "float32 with label, start and end per clip, a description and the parameters as JSON, to .zarr, .nc or "
        ".npz; clip by clip (one batch in memory), to a temporary name renamed into place when complete.",
    )
    export.add_argument("store", metavar="STORE")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--selections", metavar="FILE", help="a Raven selection table or CSV of selections")
    which.add_argument("--annotations", metavar="DB", help="the selections of STORE in this annotations database")
    which.add_argument("--windows", type=_windows, metavar="LEN[:HOP]", help="fixed windows of LEN s every HOP s")
    export.add_argument("--label", action="append", metavar="L", help="only selections of this label (repeatable)")
    export.add_argument("--origin", metavar="TIME", help="UTC time of Begin Time (s) = 0 (see annotations import)")
    export.add_argument("--start", metavar="TIME", help="UTC start: selections ending after it, or the windows' range")
    export.add_argument("--end", metavar="TIME", help="UTC end: selections starting before it, or the windows' range")
    export.add_argument("--duration", type=float, metavar="SECONDS", help="clips of this length centred on each span")
    export.add_argument("--freq", type=_band, metavar="LO:HI", help="bins (or mel/log bands) over LO..HI Hz")
    export.add_argument("--scale", choices=("power", "db", "mel", "log"), default="power", help="default: power")
    export.add_argument("--n-mels", type=int, default=128, metavar="N", help="rows of a mel or log scale (default 128)")
    export.add_argument("--level", type=int, default=0, help="pyramid level (default 0: every frame)")
    export.add_argument("--channel", type=int, metavar="C", help="channel of a store of every channel (default: 0)")
    export.add_argument(
        "--pad", choices=("nan", "zero", "drop"), default="nan", help="frames outside the recording or in gaps"
    )
    export.add_argument("-o", "--output", required=True, metavar="DATASET", help="the dataset: .zarr, .nc or .npz")
    export.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    export.add_argument("--no-progress", action="store_true", help="no progress bar")


def _annotations_parser(sub) -> None:
    annotations = sub.add_parser(
        "annotations",
        help="import, export and list the selections marked on a store",
        description="Selections live in an SQLite database, by default ANNOTATIONS.sqlite beside the store; "
        "tables are Raven Pro selection tables (tab-separated .txt) or CSV with ISO 8601 UTC times.",
    )
    action = annotations.add_subparsers(dest="action", required=True, metavar="ACTION")
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--annotations", metavar="DB", help="the database (default: ANNOTATIONS.sqlite beside STORE)")

    imports = action.add_parser(
        "import",
        parents=[database],
        help="add the selections of Raven tables or CSV files (each checked whole first; a row already there is "
        "not added again)",
    )
    imports.add_argument("store", metavar="STORE")
    imports.add_argument("files", nargs="+", metavar="FILE")
    imports.add_argument(
        "--origin", metavar="TIME", help="UTC time of Begin Time (s) = 0 for a Raven table without clock times or files"
    )
    imports.add_argument("--author", metavar="NAME", help="author of the selections (default: your user name)")

    export = action.add_parser("export", parents=[database], help="write the selections as a Raven table or CSV")
    export.add_argument("store", metavar="STORE")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="the table to write (replaced)")
    export.add_argument("--format", choices=("raven", "csv"), help="default: csv for a .csv file, else raven")
    export.add_argument("--label", action="append", metavar="L", help="only selections of this label (repeatable)")
    export.add_argument(
        "--no-measurements", action="store_true", help="leave out the measurements (those not cached take time)"
    )

    listing = action.add_parser("list", parents=[database], help="print the selections as a table")
    listing.add_argument("store", metavar="STORE")


def _ingest(args: argparse.Namespace) -> int:
    from data_access import StftConfig, ingest, open_timeline

    stft = (args.n_fft, args.hop_length, args.win_length, args.window)
    config = None  # an append takes the store's parameters
    if args.append is None or any(v is not None for v in stft):
        config = StftConfig(
            n_fft=4096 if args.n_fft is None else args.n_fft,
            hop_length=args.hop_length,
            win_length=args.win_length,
            window=args.window or "hann",
        )
    timeline = open_timeline(
        args.inputs,
        start_time=args.start_time,
        time_pattern=args.time_pattern,
        channel=args.channel,
        sample_rate=args.sample_rate,
        max_overlap=args.max_overlap,
        skip_bad=args.skip_bad,
    )
    path = ingest(
        timeline,
        args.output or args.append,
        config,
        format=args.format,
        overwrite=args.overwrite,
        append=args.append is not None,
        time_chunk=args.time_chunk,
        scheduler=args.scheduler,
        progress=False if args.no_progress else None,
        calibration=_calibration(args),
        location=args.location,
    )
    log.info("wrote %s", path)
    return 0


def _calibration(args: argparse.Namespace):
    """The Calibration the options describe, or None without ``--sensitivity``."""
    from data_access import Calibration, ParameterError

    if args.sensitivity is None:
        if args.gain is not None or args.full_scale_volts is not None:
            raise ParameterError("--gain and --full-scale-volts need --sensitivity")
        return None
    return Calibration.from_sensitivity(
        args.sensitivity,
        gain_db=0.0 if args.gain is None else args.gain,
        full_scale_volts=1.0 if args.full_scale_volts is None else args.full_scale_volts,
    )


def _calibrate(args: argparse.Namespace) -> int:
    from data_access import calibrate

    calibration = _calibration(args)
    calibrate(args.store, calibration)
    log.info("%s: %s", args.store, calibration.summary() if calibration else "calibration removed")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from data_access.demo import make_demo

    path = make_demo(
        args.directory,
        hours=args.hours,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=False if args.no_progress else None,
    )
    log.info("wrote %s", path)
    return 0


_SERVE_DESCRIPTION = """Serve the explorer. The options go to Panel's server (panel.serve) once checked;
--basic-auth's login is ours (a credentials file read at each change, attempts limited).
A login needs --cookie-secret; secrets are better passed as PANEL_COOKIE_SECRET, PANEL_OAUTH_KEY and
PANEL_OAUTH_SECRET in the environment than on a command line other users can read."""


def _serve(args: argparse.Namespace) -> int:
    from dashboard.server import serve

    serve(args.stores, **vars(ServerOptions.from_arguments(args)))
    return 0


def _info(args: argparse.Namespace) -> int:
    from data_access import store_info

    info = store_info(args.store)
    info.setdefault("deployment", _deployment(args.store))
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def _deployment(store: str) -> dict | None:
    """The deployment summary ingest keeps in the root attribute ``deployment``, if any."""
    from data_access.store import StoreReader

    text = StoreReader(store).attrs.get("deployment")  # metadata only; the reader is dropped here
    return json.loads(text) if text else None


def _deployment_lines(summary: dict | None) -> list[str]:
    """A few lines on the files behind a store: coverage, gaps, overlaps, skipped and resampled files."""
    if not summary:
        return []

    def some(items: list[str]) -> str:
        return "; ".join(items[:3]) + (f"; ... ({len(items) - 3} more)" if len(items) > 3 else "")

    gaps, overlaps = summary["gaps"], summary["overlaps"]
    largest = f", largest {gaps['largest_seconds']:.3f} s at {gaps['largest_start']}" if gaps["count"] else ""
    pairs = [f"{Path(o['later']).name} over {Path(o['earlier']).name} {o['seconds']:.3f} s" for o in overlaps["list"]]
    rates = ", ".join(f"{rate} Hz x{n}" for rate, n in summary["sample_rates"].items())
    if summary["resampled"]:
        rates += f"; {len(summary['resampled'])} resampled to {summary['sample_rate']:g} Hz"
    lines = [
        f"deployment  {summary['n_files']} files, {summary['coverage_seconds']:.3f} s of "
        f"{summary['duration_seconds']:.3f} s covered ({100 * summary['coverage_fraction']:.1f} %)",
        f"  gaps      {gaps['count']} ({gaps['between_files']} between files), {gaps['total_seconds']:.3f} s{largest}",
        f"  overlaps  {overlaps['count']}, {overlaps['total_seconds']:.3f} s" + (f": {some(pairs)}" if pairs else ""),
        f"  rates     {rates}",
    ]
    if summary["skipped"]:
        lines.append(f"  skipped   {len(summary['skipped'])}: " + some([s["reason"] for s in summary["skipped"]]))
    if summary["truncated"]:
        lines.append(
            f"  truncated {len(summary['truncated'])}: "
            + some([f"{Path(t['path']).name} ({t['missing_seconds']:.3f} s missing)" for t in summary["truncated"]])
        )
    return lines


def format_info(info: dict) -> str:
    """The text ``spectral-atlas info`` prints for a :func:`~data_access.store_info` summary."""
    stft = info["stft"]
    lines = [
        f"time span   {info['start_time']} .. {info['end_time']}",
        f"duration    {info['duration_seconds']:.3f} s ({info['duration_seconds'] / 3600:.2f} h)",
        f"sample rate {info['sample_rate']:g} Hz, "
        + (f"channels {', '.join(info['channels'])}" if info.get("channels") else f"channel {info['channel']}"),
        f"STFT        n_fft={stft['n_fft']} hop_length={stft['hop_length']} "
        f"win_length={stft['win_length']} window={stft['window']}",
        f"levels      {len(info['levels'])}",
    ]
    for level in info["levels"]:
        lines.append(
            f"  {level['level']:>2}  {level['n_frames']:>10} frames  {level['seconds_per_frame']:10.4f} s/frame"
            f"  {' + '.join(level['pyramids'])} of power"
        )
    calibration = info.get("calibration")
    lines.append(f"calibration {calibration['summary'] if calibration else 'none'}")
    location = info.get("location")
    lines.append("location    " + ("{:g}, {:g} (latitude, longitude)".format(*location) if location else "none"))
    lines.append(
        f"format      {info['format_version']}"
        + (" (uncompressed: spectral-atlas upgrade compresses it)" if info["format_version"] < 2 else "")
    )
    size = info.get("size")
    if size:
        lines.append(
            f"size        {size['bytes'] / 2**20:,.1f} MiB: {size['ratio_to_pcm16']:.2f}x its audio as 16-bit PCM, "
            f"{size['bytes'] / size['float32_bytes']:.2f}x its power as plain float32"
        )
    lines += _deployment_lines(info.get("deployment"))
    lines.append(f"sources     {len(info['sources'])}")
    for src in info["sources"]:
        lines.append(
            f"  {Path(src['path']).name}  {src['start_time']}  {src['n_samples']} samples"
            f"  (start from {src['start_time_from']})"
        )
    return "\n".join(one_line(line) for line in lines)  # (a file's name may hold a newline)


def _upgrade(args: argparse.Namespace) -> int:
    from data_access import store_info, upgrade

    for store in args.stores:
        was = upgrade(store, progress=None if args.verbose else False, audio_root=args.audio_root)
        now = store_info(store)
        if was is None:
            print(f"{store}: format {now['format_version']} already; nothing to do")
        else:
            print(
                f"{store}: format {was} -> {now['format_version']}, now {now['size']['bytes'] / 2**20:,.1f} MiB "
                f"({now['size']['ratio_to_pcm16']:.2f}x its audio as 16-bit PCM)"
            )
    return 0


def _annotations(args: argparse.Namespace) -> int:
    import getpass

    from data_access import default_annotations_path, open_annotations, open_atlas
    from data_access.raven import read_table, write_table

    atlas = open_atlas(args.store)
    path = Path(args.annotations) if args.annotations else default_annotations_path(args.store)
    store = atlas.name  # (the key of a store's selections: its name, unique in the folder of its database)
    if args.action == "import":
        tables = [(name, read_table(name, atlas, origin=args.origin)) for name in args.files]  # all checked first
        author = args.author if args.author is not None else getpass.getuser()
        with open_annotations(path, author=author) as db:
            for name, rows in tables:
                added = db.add_many(store, rows, source=Path(name).name)
                there = f" ({len(rows) - added} already there)" if added < len(rows) else ""
                print(one_line(f"{name}: {added} selections added to {store} in {path}{there}"))
        return 0
    with open_annotations(path, readonly=True) as db:
        rows = db.selections(store, labels=args.label if args.action == "export" else None)
    if args.action == "export":
        fmt = args.format or ("csv" if Path(args.output).suffix.lower() == ".csv" else "raven")
        out = write_table(rows, args.output, atlas, format=fmt, measurements=not args.no_measurements)
        log.info("wrote %d selections to %s", len(rows), out)
        return 0
    print(format_selections(rows))
    return 0


def _audio(args: argparse.Namespace) -> int:
    from data_access import open_atlas
    from data_access.audio import audio_output, prepare, write_audio

    audio_output(args.output, overwrite=args.overwrite)  # refused before anything is read
    atlas = open_atlas(args.store, audio_root=args.audio_root)
    clip = atlas.audio(time=(args.start, args.end), channel=args.channel, reconstruct=not args.no_reconstruct)
    if args.rate != 1 or args.band is not None or args.normalise:
        # The file's rate is the recording's times the speed: its samples unchanged, but for a band or a gain.
        clip = prepare(
            clip,
            rate=args.rate,
            band=args.band,
            out_rate=max(round(clip.sample_rate * args.rate), 1),
            normalise=args.normalise,
        )
    path = write_audio(clip, args.output, overwrite=args.overwrite)
    print(
        one_line(
            f"wrote {path}: {clip.duration:.3f} s of {atlas.name} from {clip.start}Z as "
            f"{clip.n_samples / clip.sample_rate:.3f} s at {clip.sample_rate:g} Hz; {clip.note}"
        )
    )
    return 0


def _stats(args: argparse.Namespace) -> int:
    from data_access import open_atlas
    from data_access.spectra import stats_output, write_stats

    stats_output(args.output, overwrite=args.overwrite)  # refused before anything is read
    atlas = open_atlas(args.store)
    t0, t1 = atlas.time_range
    time = None if args.start is None and args.end is None else (args.start or t0, args.end or t1)
    stats = atlas.spectrum_stats(
        time=time,
        period=args.period,
        channel=args.channel,
        db_bins=args.db_bin,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    path = write_stats(stats, args.output, overwrite=args.overwrite, source=atlas.name)
    a = stats.attrs
    print(
        one_line(
            f"wrote {path}: {a['n_periods']} periods of {a['period_seconds']:g} s (level {a['pyramid_level']}) "
            f"of {atlas.name} from {a['time_start']}Z to {a['time_end']}Z, in {a['units']}; {a['note']}"
        )
    )
    return 0


def _set_location(args: argparse.Namespace) -> int:
    from data_access.store import set_location

    set_location(args.store, None if args.remove else args.location)
    where = "location removed" if args.remove else "location {:g}, {:g}".format(*args.location)
    print(one_line(f"{args.store}: {where}"))
    return 0


def _export(args: argparse.Namespace) -> int:
    from data_access import ParameterError, open_atlas
    from data_access.export import dataset_output, export, selection_spans, window_spans

    dataset_output(args.output, overwrite=args.overwrite)  # refused before anything is read
    atlas = open_atlas(args.store)
    duration = args.duration
    if args.windows is not None:
        if args.label:
            raise ParameterError("--label picks selections; --windows are unlabelled")
        (length, hop), (t0, t1) = args.windows, atlas.time_range
        time = None if args.start is None and args.end is None else (args.start or t0, args.end or t1)
        spans, duration = window_spans(atlas, time=time, length=length, hop=hop), length
    else:
        where = {"annotations": args.annotations, "table": args.selections, "origin": args.origin}
        spans = selection_spans(atlas, labels=args.label, start=args.start, end=args.end, **where)
    options = {name: getattr(args, name) for name in ("freq", "scale", "level", "channel", "pad", "n_mels")}
    progress = False if args.no_progress else None
    done = export(atlas, spans, args.output, overwrite=args.overwrite, progress=progress, duration=duration, **options)
    print(one_line(done.summary()))
    return 0


def format_selections(rows) -> str:
    """The text ``spectral-atlas annotations list`` prints: one selection a line, in columns."""
    import numpy as np

    header = ["id", "start", "end", "low_hz", "high_hz", "channel", "label", "author"]
    table = [header] + [
        [
            str(r.id),
            np.datetime_as_string(r.start.to_datetime64(), unit="ns"),
            np.datetime_as_string(r.end.to_datetime64(), unit="ns"),
            f"{r.low_hz:.1f}",
            f"{r.high_hz:.1f}",
            r.channel,
            r.label,
            r.author,
        ]
        for r in rows.itertuples()
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    return "\n".join(one_line(line) for line in lines)


_COMMANDS = {
    "ingest": _ingest,
    "demo": _demo,
    "info": _info,
    "serve": _serve,
    "calibrate": _calibrate,
    "upgrade": _upgrade,
    "annotations": _annotations,
    "audio": _audio,
    "export": _export,
    "stats": _stats,
    "set-location": _set_location,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the exit status."""
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLineFormatter("spectral-atlas: %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    from data_access import AtlasError

    try:
        return _COMMANDS[args.command](args)
    except AtlasError as err:
        print(f"spectral-atlas: error: {one_line(str(err))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:  # an ingest's says what it kept and how to resume
        print(f"spectral-atlas: interrupted; {str(err) or 'nothing was changed'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
