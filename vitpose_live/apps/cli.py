"""Command line: ``vitpose-live --source IN --output OUT [--keypoints K.jsonl]``.

The face maps its arguments onto one :class:`~vitpose_live.apps.request.Request`, checked before
torch loads, and hands it to the single-input job (:mod:`.job`) or, with ``--output-dir``, to a
collection (:mod:`.batch`). User mistakes end with one line on stderr and exit status 2 — never a
traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..defaults import CONNECT_TIMEOUT_S, DET_THRESHOLD, FILL_GAPS, FOLLOW_SIZE, KPT_THRESHOLD
from ..errors import UserError
from .collection import add_collection_arguments
from .console import EXIT_INTERRUPTED, EXIT_OK, PROG, fail, quiet_libraries, reported, stop_on_sigterm
from .flags import check_flags
from .request import OFFLINE, Request, check_request

__all__ = ["UserError", "build_parser", "console_main", "main", "parse_request", "run_request", "stop_on_sigterm"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Multi-person pose estimation with ViTPose on images and videos.",
    )
    parser.add_argument(
        "--source",
        required=True,
        help="a video file, an image, a folder or glob of images, a webcam index (0), "
        "an rtsp/rtmp/http URL, or 'synthetic'",
    )
    parser.add_argument("--output", help="annotated video (.mp4) or image (.jpg/.png) to write")
    parser.add_argument("--keypoints", help="write keypoints: .jsonl (JSON lines: a header, then one line per frame), "
                        ".csv (one row per person per frame) or .json (COCO keypoint results)")
    _model_arguments(parser.add_argument_group("models"))
    _detection_arguments(parser.add_argument_group("detection and drawing"))
    _live_arguments(parser.add_argument_group("live"))
    _follow_arguments(parser.add_argument_group("following one person"))
    add_collection_arguments(parser)
    parser.add_argument("--io-processes", action="store_true",
                        help="video files: decode, and draw + encode, in two processes of their own (frames "
                        "through shared memory), off the inference thread's GIL; other sources ignore it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="log details (and show tracebacks)")
    return parser


def _model_arguments(models) -> None:
    from ..defaults import EXPERTS
    from ..engine.profiles import CPU_PROFILE, GPU_PROFILE

    models.add_argument("--model", default="auto", help="ViTPose Hub id or local directory (default auto: the "
                        f"device's profile, {GPU_PROFILE.pose_model} on a GPU, {CPU_PROFILE.pose_model} on a CPU)")
    models.add_argument("--detector", default="auto", help="person detector Hub id or local directory (default auto: "
                        f"{GPU_PROFILE.detector} on a GPU, {CPU_PROFILE.detector} on a CPU)")
    models.add_argument("--detector-size", default="auto", metavar="PIXELS",
                        help="the detector's input side in pixels (fewer: faster, small people missed; default auto: "
                        "the profile's for its own detector, else the checkpoint's own)")
    models.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    models.add_argument("--dtype", default="auto", help="auto (fp16 on CUDA, fp32 elsewhere), fp32, fp16, bf16")
    models.add_argument("--expert", help=f"ViTPose++ expert: {', '.join(EXPERTS)} or an index; only one the checkpoint "
                        "has a head for (default: its head's, coco for the transformers checkpoints)")
    models.add_argument("--flip-test", action="store_true",
                        help="average with the horizontally flipped crop, left/right keypoints swapped")
    models.add_argument("--cuda-graphs", action="store_true",
                        help="replay the pose model and the detector (RT-DETR) from CUDA graphs "
                             "(fixed batch sizes; CUDA only)")
    models.add_argument("--compile", action="store_true",
                        help="torch.compile the detector (CUDA graphs on CUDA), on the thread that runs it; "
                             "the first detection waits a minute or two")
    models.add_argument("--batch", type=int, default=None,
                        help="video frames per forward pass for files (default: 8 on CUDA, 4 elsewhere)")


def _detection_arguments(detection) -> None:
    from ..engine.profiles import CPU_PROFILE
    detection.add_argument("--det-threshold", type=float, default=DET_THRESHOLD,
                           help=f"person score threshold (default {DET_THRESHOLD})")
    detection.add_argument("--max-persons", type=int, default=None, help="keep at most this many persons per frame "
                           f"(default: the device profile's with its own detector, {CPU_PROFILE.max_persons} on a CPU; else all)")
    detection.add_argument("--kpt-threshold", type=float, default=KPT_THRESHOLD, help="draw keypoints above this score")
    detection.add_argument("--show-boxes", action="store_true", help="draw person boxes")


def _live_arguments(live) -> None:
    from ..engine.profiles import CPU_PROFILE, GPU_PROFILE
    live.add_argument("--window", action=argparse.BooleanOptionalAction, default=None,
                      help="show an OpenCV window (default: on for webcams and streams when a display exists)")
    live.add_argument("--realtime", action="store_true", help="play a file like a camera: paced, dropping when behind")
    live.add_argument("--det-every", type=int, default=None,
                      help="files: detect on every Nth frame, tracking in between; live sources: detect at most "
                      "once per N frames, off the frame path (default: the device profile's with its own detector, "
                      f"{GPU_PROFILE.det_every} on a GPU, {CPU_PROFILE.det_every} on a CPU; else 1)")
    live.add_argument("--latency-target", type=float, default=None, metavar="MS",
                      help="live sources: detect less often while the median latency is over MS (and more often "
                      "when well under); the interval is reported in --stats-json")
    live.add_argument("--smooth", nargs="?", const=True, default=None, choices=[OFFLINE],
                      help="--smooth: One Euro smoothing of keypoints per person, causal (default: on for live "
                      "sources); --smooth offline (files and collections): a second pass over every track, "
                      "zero lag, gaps filled, ids joined through occlusions (implies tracking)")
    live.add_argument("--no-smooth", dest="smooth", action="store_const", const=False, help="no smoothing")
    live.add_argument("--fill-gaps", type=int, default=None, metavar="N",
                      help=f"--smooth offline: interpolate a person unseen for up to N frames between two sightings "
                      f"(marked interpolated; default {FILL_GAPS}, 0: none)")
    live.add_argument("--smooth-min-cutoff", type=float, default=1.0, help="One Euro min cutoff in Hz (lower: smoother)")
    live.add_argument("--smooth-beta", type=float, default=0.05, help="One Euro speed coefficient (higher: less lag)")
    live.add_argument("--hud", action=argparse.BooleanOptionalAction, default=None, help="draw fps/latency on frames")
    live.add_argument("--stats-json", help="write run statistics (fps, latency, drops, stage ms) as JSON")
    live.add_argument("--snapshot-dir", default=".", help="where the window's s key saves snapshots (default: here)")
    live.add_argument("--camera-size", help="ask the webcam for WIDTHxHEIGHT, e.g. 1280x720")
    live.add_argument("--camera-fps", type=float, help="ask the webcam for this frame rate")
    live.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT_S, metavar="S",
                      help=f"streams: give up connecting after S seconds, every attempt together (default {CONNECT_TIMEOUT_S:g})")


def _follow_arguments(follow) -> None:
    follow.add_argument("--follow", metavar="ID|largest|center",
                        help="follow one person (turns tracking on): a track id, or the largest / most central "
                        "person when they first appear; drawn in full, the others dimmed; kept through gaps "
                        "(live: taken up by a new track where they were lost); JSONL lines say whom")
    follow.add_argument("--follow-only", action="store_true", help="with --follow: draw only the followed person")
    follow.add_argument("--follow-video", metavar="PATH.mp4",
                        help="with --follow: a second video keeping the followed person centred at a steady scale "
                        "(audio kept; files: a second pass with no lag; live: smoothed as it goes)")
    follow.add_argument("--follow-size", metavar="WxH", help=f"the size of --follow-video and of the window's framed view, key v (default {FOLLOW_SIZE})")
    follow.add_argument("--plot", metavar="PATH.png",
                        help="a PNG of the followed person's joint angles over time (without --follow: the largest "
                        'person\'s); needs matplotlib: pip install "vitpose-live[plot]"')


def parse_request(argv: list[str] | None = None) -> Request:
    """The command line's arguments as the request record (argparse's usage errors exit 2; an
    unknown flag first, in one line with the nearest one: :func:`~.flags.check_flags`)."""
    parser = build_parser()
    check_flags(sys.argv[1:] if argv is None else [str(arg) for arg in argv], parser)
    return Request.from_args(parser.parse_args(argv))


def run_request(request: Request) -> int:
    """Run what ``request`` asks for; the exit status."""
    if request.is_collection:  # every video and image under --source
        from .batch import run_collection

        return run_collection(request)
    from .job import open_window

    try:
        spec = check_request(request)
        window = open_window(request, spec)  # first: PyAV (imported by sources/sinks) can hang cv2's GUI
    except UserError as error:
        return fail(error, verbose=request.verbose)
    from ..models.loading import ModelLoadError
    from ..outputs.paths import SinkError
    from ..runtime.pipeline import PipelineError
    from ..sources import SourceError

    errors = (UserError, SourceError, SinkError, ModelLoadError, PipelineError, ValueError)
    try:
        return reported(lambda: _annotate(request, spec, window), errors=errors, verbose=request.verbose,
                        interrupted="interrupted")
    finally:
        if window is not None:
            window.close()


def _annotate(request: Request, spec, window) -> int:
    from ..models.loading import check_models
    from .job import annotate, model_choice

    choice = model_choice(request)
    check_models(choice.model, choice.detector)  # both named at once, in seconds even without the Hub
    summary = annotate(request, spec, window)
    print(summary.line(), file=sys.stderr)
    return EXIT_INTERRUPTED if summary.interrupted else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    request = parse_request(argv)
    logging.basicConfig(level=logging.INFO if request.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not request.verbose:
        quiet_libraries()
    return run_request(request)


def console_main() -> None:
    """The process entry point: outputs are finalised by ``main``; if a stage thread is still
    stuck in native code (a hung camera read), exit without waiting for it, since tearing down
    the interpreter under it can abort the process."""
    import threading

    from ..system.host_memory import keep_freed_memory

    stop_on_sigterm()
    keep_freed_memory()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if any(t.name.startswith("vitpose-") and t.is_alive() for t in threading.enumerate()):
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console_main()
