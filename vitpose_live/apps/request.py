"""The one typed request record: what a person asked for, built once from the command line
(:func:`Request.from_args`) and checked before any model loads. The single-input job, a
collection and each Ray worker receive this record (a collection derives one per input with
:meth:`Request.for_input`); nothing downstream reads an ``argparse.Namespace``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from ..defaults import (AUTO, CONNECT_TIMEOUT_S, DET_THRESHOLD, FILL_GAPS, FOLLOW_SIZE, KPT_THRESHOLD, check_at_least,
                        check_fraction, check_not_negative)
from ..errors import UserError

FORMATS = ("jsonl", "csv", "coco")
OFFLINE = "offline"  # --smooth offline: the two-pass, zero-lag analysis of a file


@dataclass(frozen=True)
class Request:
    """Every option of the command line, by its flag's name (``--det-threshold`` → ``det_threshold``)."""

    source: str
    output: str | None = None
    keypoints: str | None = None
    # models
    model: str = AUTO
    detector: str = AUTO
    detector_size: str = AUTO
    device: str = AUTO
    dtype: str = AUTO
    expert: str | None = None
    flip_test: bool = False
    cuda_graphs: bool = False
    compile: bool = False
    batch: int | None = None
    # detection and drawing
    det_threshold: float = DET_THRESHOLD
    max_persons: int | None = None
    kpt_threshold: float = KPT_THRESHOLD
    show_boxes: bool = False
    # live
    window: bool | None = None
    realtime: bool = False
    det_every: int | None = None
    latency_target: float | None = None
    smooth: bool | str | None = None  # True: One Euro; OFFLINE: the offline analysis; None: the source's default
    fill_gaps: int | None = None
    smooth_min_cutoff: float = 1.0
    smooth_beta: float = 0.05
    hud: bool | None = None
    stats_json: str | None = None
    snapshot_dir: str = "."
    camera_size: str | None = None
    camera_fps: float | None = None
    connect_timeout: float = CONNECT_TIMEOUT_S
    # following one person
    follow: str | None = None
    follow_only: bool = False
    follow_video: str | None = None
    follow_size: str | None = None
    plot: str | None = None
    # collections
    output_dir: str | None = None
    formats: str = "jsonl"
    no_video: bool = False
    overwrite: bool = False
    ray: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None
    retries: int = 2
    # the run
    io_processes: bool = False
    no_progress: bool = False
    verbose: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Request:
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})

    def for_input(self, source: Path, *, output: Path | None, keypoints: Path) -> Request:
        """One input of a collection: its own outputs, quiet, no window, not paced."""
        return replace(self, source=str(source), output=None if output is None else str(output),
                       keypoints=str(keypoints), stats_json=None, no_progress=True, window=False, realtime=False)

    @property
    def is_collection(self) -> bool:
        return self.output_dir is not None

    @property
    def offline(self) -> bool:
        """``--smooth offline``: two passes over a file, zero-lag smoothing, gaps filled, ids joined."""
        return self.smooth == OFFLINE

    @property
    def gaps_filled(self) -> int:
        """Frames ``--fill-gaps`` fills (offline), the default when not given."""
        return FILL_GAPS if self.fill_gaps is None else self.fill_gaps


def check_request(request: Request):
    """The source's kind, once everything that needs no model is checked (before torch loads)."""
    from ..sources.spec import SourceKind, classify

    spec = classify(request.source)
    if not spec.live and spec.kind is not SourceKind.FOLDER and not os.path.exists(spec.text):
        raise UserError(f"cannot open '{request.source}': file not found")
    if not (request.output or request.keypoints or request.stats_json or request.follow_video or request.plot
            or wants_window(request, spec)):
        raise UserError("nothing to do: give --output, --keypoints or --stats-json (or --window to watch)")
    _check_outputs(request, spec)
    _check_following(request, spec)
    _check_numbers(request, live=spec.live or request.realtime)
    if request.camera_size:
        camera_size(request)
    if not os.path.isdir(request.snapshot_dir):
        raise UserError(f"--snapshot-dir '{request.snapshot_dir}' is not a folder")
    return spec


def wants_window(request: Request, spec) -> bool:
    """A window when asked for, or by default for cameras and streams."""
    from ..sources.spec import SourceKind

    return bool(request.window or (request.window is None and spec.live and spec.kind is not SourceKind.SYNTHETIC))


def _check_outputs(request: Request, spec) -> None:
    from ..outputs.paths import IMAGE_OUTPUT_EXTENSIONS, VIDEO_EXTENSIONS, SinkError, check_writable, keypoints_format
    from ..sources.spec import SourceKind

    if request.output:
        image = spec.kind is SourceKind.IMAGE
        wanted = IMAGE_OUTPUT_EXTENSIONS if image else VIDEO_EXTENSIONS
        if Path(request.output).suffix.lower() not in wanted:
            raise UserError(f"--output for {'an image' if image else 'a video'} must end in one of {', '.join(sorted(wanted))}")
    try:
        _check_single_input(request)
        if request.keypoints:
            keypoints_format(request.keypoints)
        for path in (request.output, request.keypoints, request.stats_json):
            if path:
                check_writable(Path(path))
    except SinkError as error:
        raise UserError(str(error)) from None


def _check_following(request: Request, spec) -> None:
    """``--follow``, ``--follow-only``, ``--follow-video``, ``--follow-size`` and ``--plot``."""
    from ..outputs.paths import VIDEO_EXTENSIONS, SinkError, check_writable
    from ..sources.spec import SourceKind

    follow_mode(request)
    follow_size(request)
    for flag, given in (("--follow-only", request.follow_only), ("--follow-video", request.follow_video)):
        if given and request.follow is None:
            raise UserError(f"{flag} needs --follow ID|largest|center (whom to follow)")
    if request.follow_size and not (request.follow_video or wants_window(request, spec)):
        raise UserError("--follow-size is the size of --follow-video (and of the window's framed view): give that too")
    if request.io_processes and request.follow is not None:
        raise UserError("--follow draws in the run's own process: it does not go with --io-processes")
    for flag, path, wanted in (("--follow-video", request.follow_video, VIDEO_EXTENSIONS),
                               ("--plot", request.plot, {".png"})):
        if not path:
            continue
        if spec.kind is SourceKind.IMAGE:
            raise UserError(f"{flag} is for videos and live sources, not an image")
        if Path(path).suffix.lower() not in wanted:
            raise UserError(f"{flag} must end in {' or '.join(sorted(wanted))}")
        if request.output and Path(path).resolve() == Path(request.output).resolve():
            raise UserError(f"{flag} and --output name the same file")
        try:
            check_writable(Path(path))
        except SinkError as error:
            raise UserError(str(error)) from None
    if request.plot:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise UserError('--plot needs matplotlib: pip install "vitpose-live[plot]"')


def follow_mode(request: Request) -> str | int | None:
    """``--follow`` parsed: ``"largest"``, ``"center"``, a track id, or None."""
    from ..analysis.follow import FollowError, parse_follow

    if request.follow is None:
        return None
    try:
        return parse_follow(request.follow)
    except FollowError as error:
        raise UserError(str(error)) from None


def follow_size(request: Request) -> tuple[int, int]:
    """``--follow-size`` parsed (the default when not given): (width, height)."""
    from ..analysis.framing import FramingError, parse_size

    try:
        return parse_size(request.follow_size or FOLLOW_SIZE)
    except FramingError as error:
        raise UserError(str(error)) from None


def _check_numbers(request: Request, *, live: bool) -> None:
    try:
        _check_ranges(request)
    except ValueError as error:
        raise UserError(str(error)) from None
    if request.io_processes and request.window:
        raise UserError("--io-processes draws in another process: it does not go with --window")
    if request.latency_target and not live:
        raise UserError("--latency-target is for live sources (a webcam, a stream, or a file with --realtime)")
    if request.offline and live:
        raise UserError("--smooth offline is for files: a live source (a webcam, a stream, --realtime) stays causal; "
                        "use --smooth")
    if request.fill_gaps is not None and not request.offline:
        raise UserError("--fill-gaps is for --smooth offline")


def _check_ranges(request: Request) -> None:
    """The shared validators (:mod:`vitpose_live.defaults`) on the flags' values."""
    for name in ("max_persons", "det_every", "batch"):
        check_at_least(_flag(name), getattr(request, name), 1)
    if request.fill_gaps is not None:
        check_not_negative("--fill-gaps", request.fill_gaps)
    if request.detector_size != AUTO:
        side = int(request.detector_size) if str(request.detector_size).isdigit() else 0
        if side < 32:
            raise ValueError("--detector-size must be auto or a whole number of pixels, at least 32")
    if request.connect_timeout <= 0:
        raise ValueError("--connect-timeout must be a positive number of seconds")
    if request.latency_target is not None and request.latency_target <= 0:
        raise ValueError("--latency-target must be a positive number of milliseconds")
    for name in ("det_threshold", "kpt_threshold"):
        check_fraction(_flag(name), getattr(request, name))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_single_input(request: Request) -> None:
    """Collection options given without ``--output-dir`` would be ignored: say so instead."""
    if request.is_collection:
        return
    given = [flag for flag, value in (("--formats", request.formats != "jsonl"), ("--no-video", request.no_video),
                                      ("--overwrite", request.overwrite), ("--ray", request.ray is not None),
                                      ("--workers", request.workers is not None)) if value]
    if given:
        raise UserError(f"{given[0]} is for collections: add --output-dir OUT (and a folder or glob as --source)")


def check_collection(request: Request) -> tuple[str, ...]:
    """The collection's own options checked; the keypoint formats it asks for."""
    single = {"output": "--output", "keypoints": "--keypoints", "window": "--window", "realtime": "--realtime",
              "stats_json": "--stats-json", "latency_target": "--latency-target", "follow": "--follow",
              "follow_only": "--follow-only", "follow_video": "--follow-video", "follow_size": "--follow-size",
              "plot": "--plot"}
    for name, flag in single.items():
        if getattr(request, name, None):
            raise UserError(f"{flag} is for one input; with --output-dir every input gets its own outputs")
    if request.ray is None and (request.workers is not None or request.gpus_per_worker is not None):
        raise UserError("--workers and --gpus-per-worker are for --ray")
    try:
        check_at_least("--workers", request.workers, 1)
        check_not_negative("--gpus-per-worker", request.gpus_per_worker or 0)
        check_not_negative("--retries", request.retries)
    except ValueError as error:
        raise UserError(str(error)) from None
    names = tuple(dict.fromkeys(name.strip().lower() for name in request.formats.split(",") if name.strip()))
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise UserError(f"--formats takes a comma-separated list of {', '.join(FORMATS)}; got '{request.formats}'")
    return names


def camera_size(request: Request) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in request.camera_size.lower().split("x"))
    except ValueError:
        raise UserError("--camera-size must look like 1280x720") from None
    return width, height
