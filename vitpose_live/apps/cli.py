"""Command line: ``vitpose-live --source IN --output OUT [--keypoints K.jsonl]``.

User mistakes end with one line on stderr and exit status 2 — never a traceback. Arguments and
paths are checked before torch loads; the work itself is :func:`vitpose_live.runtime.run.run` over the
engine :func:`vitpose_live.engine.recipe.build_engine` makes from :func:`engine_options`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import VitposeError, one_line

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130

# Idle OpenMP workers sleep instead of spinning, so decode/encode threads keep their cores
# (before torch is imported; measured in bench/README.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def build_parser() -> argparse.ArgumentParser:
    from ..defaults import EXPERTS
    from ..engine.profiles import CPU_PROFILE, GPU_PROFILE

    parser = argparse.ArgumentParser(
        prog="vitpose-live",
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
    models = parser.add_argument_group("models")
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
    detection = parser.add_argument_group("detection and drawing")
    detection.add_argument("--det-threshold", type=float, default=0.5, help="person score threshold (default 0.5)")
    detection.add_argument("--max-persons", type=int, default=None, help="keep at most this many persons per frame "
                           f"(default: the device profile's with its own detector, {CPU_PROFILE.max_persons} on a CPU; else all)")
    detection.add_argument("--kpt-threshold", type=float, default=0.3, help="draw keypoints above this score")
    detection.add_argument("--show-boxes", action="store_true", help="draw person boxes")
    live = parser.add_argument_group("live")
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
    live.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=None,
                      help="One Euro smoothing of keypoints per person (default: on for live sources)")
    live.add_argument("--smooth-min-cutoff", type=float, default=1.0, help="One Euro min cutoff in Hz (lower: smoother)")
    live.add_argument("--smooth-beta", type=float, default=0.05, help="One Euro speed coefficient (higher: less lag)")
    live.add_argument("--hud", action=argparse.BooleanOptionalAction, default=None, help="draw fps/latency on frames")
    live.add_argument("--stats-json", help="write run statistics (fps, latency, drops, stage ms) as JSON")
    live.add_argument("--snapshot-dir", default=".", help="where the window's s key saves snapshots (default: here)")
    live.add_argument("--camera-size", help="ask the webcam for WIDTHxHEIGHT, e.g. 1280x720")
    live.add_argument("--camera-fps", type=float, help="ask the webcam for this frame rate")
    from .collection import add_collection_arguments

    add_collection_arguments(parser)
    parser.add_argument("--io-processes", action="store_true",
                        help="video files: decode, and draw + encode, in two processes of their own (frames "
                        "through shared memory), off the inference thread's GIL; other sources ignore it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="log details (and show tracebacks)")
    return parser


class UserError(VitposeError):
    """A problem the user can fix; printed as one line."""


@dataclass(frozen=True)
class Summary:
    frames: int
    seconds: float
    persons: int
    output: str | None
    keypoints: str | None
    interrupted: bool = False
    stats: dict | None = None

    def line(self) -> str:
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        per_frame = self.persons / self.frames if self.frames else 0.0
        outputs = ", ".join(p for p in (self.output, self.keypoints) if p) or "no output file"
        head = "interrupted after" if self.interrupted else "done:"
        line = (
            f"{head} {self.frames} frame(s) in {self.seconds:.1f} s ({rate:.1f} frames/s), "
            f"{per_frame:.1f} person(s) per frame -> {outputs}"
        )
        if self.stats:
            latency = self.stats["latency_ms"]
            line += (
                f"; latency p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms; "
                f"{self.stats['frames_dropped']} frame(s) dropped"
            )
        return line


def check_arguments(args: argparse.Namespace):
    """The source's kind, once everything that needs no model is checked (before torch loads)."""
    from .collection import check_single_input
    from ..outputs.paths import (
        IMAGE_OUTPUT_EXTENSIONS,
        VIDEO_EXTENSIONS,
        SinkError,
        check_writable,
        keypoints_format,
    )
    from ..sources.spec import SourceKind, classify

    spec = classify(args.source)
    if not spec.live and spec.kind is not SourceKind.FOLDER and not os.path.exists(spec.text):
        raise UserError(f"cannot open '{args.source}': file not found")
    live = spec.live or args.realtime
    window = args.window or (args.window is None and spec.live and spec.kind is not SourceKind.SYNTHETIC)
    if not (args.output or args.keypoints or args.stats_json or window):
        raise UserError("nothing to do: give --output, --keypoints or --stats-json (or --window to watch)")
    if args.output:
        suffix = Path(args.output).suffix.lower()
        image = spec.kind is SourceKind.IMAGE
        wanted = IMAGE_OUTPUT_EXTENSIONS if image else VIDEO_EXTENSIONS
        if suffix not in wanted:
            raise UserError(f"--output for {'an image' if image else 'a video'} must end in one of {', '.join(sorted(wanted))}")
    try:
        check_single_input(args)
        if args.keypoints:
            keypoints_format(args.keypoints)
    except SinkError as error:
        raise UserError(str(error)) from None
    for path in (args.output, args.keypoints, args.stats_json):
        if path:
            try:
                check_writable(Path(path))
            except SinkError as error:
                raise UserError(str(error)) from None
    for name, low in (("max_persons", 1), ("det_every", 1), ("batch", 1)):
        value = getattr(args, name)
        if value is not None and value < low:
            raise UserError(f"--{name.replace('_', '-')} must be at least {low}")
    if args.detector_size != "auto":
        try:
            side = int(args.detector_size)
        except ValueError:
            side = 0
        if side < 32:
            raise UserError("--detector-size must be auto or a whole number of pixels, at least 32")
    if args.io_processes and args.window:
        raise UserError("--io-processes draws in another process: it does not go with --window")
    if args.latency_target is not None and args.latency_target <= 0:
        raise UserError("--latency-target must be a positive number of milliseconds")
    if args.latency_target and not live:
        raise UserError("--latency-target is for live sources (a webcam, a stream, or a file with --realtime)")
    for name in ("det_threshold", "kpt_threshold"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise UserError(f"--{name.replace('_', '-')} must be between 0 and 1")
    if args.camera_size:
        camera_size(args)
    if not os.path.isdir(args.snapshot_dir):
        raise UserError(f"--snapshot-dir '{args.snapshot_dir}' is not a folder")
    return spec


def camera_size(args: argparse.Namespace) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in args.camera_size.lower().split("x"))
    except ValueError:
        raise UserError("--camera-size must look like 1280x720") from None
    return width, height


def model_choice(args: argparse.Namespace):
    """The ``auto`` arguments resolved through the device's profile (:mod:`vitpose_live.engine.profiles`);
    explicit ones win. Imports torch when ``--device auto`` (to see whether CUDA is there)."""
    from ..engine.profiles import profile_for, resolve

    return resolve(profile_for(args.device), args.model, args.detector, getattr(args, "detector_size", "auto"),
                   args.det_every, args.max_persons)


def engine_options(args: argparse.Namespace, *, live: bool):
    """The shared recipe's options from the command line."""
    from ..engine.recipe import EngineOptions, FrameSettings, ModelOptions

    choice = model_choice(args)
    models = ModelOptions(choice.model, choice.detector, args.device, args.dtype, args.expert, args.flip_test,
                          args.cuda_graphs, args.compile, detector_size=choice.detector_size)
    settings = FrameSettings(
        det_threshold=args.det_threshold, max_persons=choice.max_persons, kpt_threshold=args.kpt_threshold,
        smooth=live if args.smooth is None else args.smooth, smooth_min_cutoff=args.smooth_min_cutoff,
        smooth_beta=args.smooth_beta,
    )
    return EngineOptions(models, settings, live=live, det_every=choice.det_every or 1,
                         detector_gap_s=choice.detector_gap_s if live else 0.0)


def open_input(args: argparse.Namespace, spec):
    """The source ``spec`` names; with ``--io-processes`` a video file is decoded in a process of
    its own (then :func:`open_outputs` draws and encodes in another). A video file is decoded on
    the threads :func:`~vitpose_live.models.device.decode_threads` gives for the models' device."""
    from ..models.device import background_io, decode_threads
    from ..sources import open_source
    from ..sources.spec import SourceKind

    options = {}
    if spec.kind is SourceKind.VIDEO:
        options["threads"] = decode_threads(args.device)
    if args.io_processes and spec.kind is SourceKind.VIDEO and not args.realtime:
        from ..procs.decode_process import DecodeProcessSource

        # room for the frames in flight: two batches queued for the model, one in it, some drawn
        return DecodeProcessSource(spec.text, slots=2 * (args.batch or 8) + 4,
                                   background=background_io(args.device, live=False), **options)
    if spec.kind is SourceKind.CAMERA:
        if args.camera_size:
            options["width"], options["height"] = camera_size(args)
        if args.camera_fps:
            options["fps"] = args.camera_fps
    return open_source(spec, **options)


def open_outputs(args: argparse.Namespace, spec, source, engine, *, live: bool, drawing: tuple):
    """The outputs asked for. A source decoded in another process (``--io-processes``) gets its
    video drawn, with ``drawing`` (the annotator and the HUD), and encoded in another one too."""
    from ..models.device import background_io
    from ..outputs.exports import open_keypoints_sink
    from ..runtime.run import Outputs
    from ..outputs.sinks import ImageFileSink, VideoFileSink, keypoints_header
    from ..procs.decode_process import DecodeProcessSource
    from ..sources.spec import SourceKind

    info = source.info
    outputs = Outputs()
    try:
        if args.output and spec.kind is SourceKind.IMAGE:
            outputs.pictures.append(ImageFileSink(args.output))
        elif args.output:
            audio = args.source if info.has_audio and not live else None
            size = {"width": info.width, "height": info.height, "fps": info.fps or 30.0,
                    "background": background_io(engine.pose.device, live=live)}
            if isinstance(source, DecodeProcessSource):
                from ..procs.render_process import RenderProcessSink, VideoSettings

                annotator, hud = drawing
                video = VideoSettings(args.output, audio_from=audio, **size)
                outputs.scenes.append(RenderProcessSink(source.ring, video, annotator=annotator,
                                                        hud=hud if hud.enabled else None))
            else:
                outputs.pictures.append(VideoFileSink(args.output, audio_from=audio, **size))
        if args.keypoints:
            header = keypoints_header(engine, {"source": args.source, "width": info.width,
                                               "height": info.height, "fps": info.fps})
            outputs.records.append(open_keypoints_sink(args.keypoints, header=header))
    except BaseException:
        outputs.abort()
        raise
    return outputs


def open_window(args: argparse.Namespace, spec):
    """The OpenCV window when asked for (or by default for cameras and streams), created before
    anything imports PyAV; ``None`` without one."""
    from ..sources.spec import SourceKind

    wants = args.window or (args.window is None and spec.live and spec.kind is not SourceKind.SYNTHETIC)
    if not wants:
        return None
    from .window import NoDisplayError, Window

    try:
        return Window()
    except NoDisplayError as error:
        if args.window or not (args.output or args.keypoints or args.stats_json):
            raise UserError(str(error)) from None
        return None


def file_batch(args: argparse.Namespace, engine) -> int:
    """Frames per forward pass for files when nothing tracks across frames (a GPU's per-call
    overhead shared by the batch)."""
    return args.batch or (8 if engine.pose.placement.is_cuda else 4)


def annotate(args: argparse.Namespace, spec, window=None, engine=None) -> Summary:
    """Source → engine → outputs (and the window), through the one run loop. ``engine``: one built
    before for a file (a collection reuses one per process); its tracking state is reset."""
    from ..engine.control import LatencyController
    from ..engine.recipe import build_engine
    from ..render import HudAnnotator, PoseAnnotator
    from ..runtime.run import RunOptions, run
    from ..procs.decode_process import DecodeProcessSource
    from .viewer import Viewer

    source = open_input(args, spec)
    live = source.is_live or args.realtime
    try:
        if engine is None or live:
            engine = build_engine(engine_options(args, live=live))
            _warn_about(engine, args)
        else:
            engine.reset()
        annotator = PoseAnnotator(kpt_threshold=args.kpt_threshold, show_boxes=args.show_boxes)
        hud = HudAnnotator(enabled=args.hud if args.hud is not None else (live or window is not None))
        outputs = open_outputs(args, spec, source, engine, live=live, drawing=(annotator, hud))
    except BaseException:
        source.close()
        raise
    controller = LatencyController(args.latency_target) if args.latency_target else None
    info = source.info
    options = RunOptions(
        live=live, realtime_fps=info.fps if args.realtime and not source.is_live else None,
        batch=file_batch(args, engine), draw=window is not None, total=info.frame_count,
        progress=not args.no_progress,
    )
    report = run(source, engine, outputs, options, annotator=annotator, hud=hud,
                 on_frame=Viewer(window, annotator, hud, args.snapshot_dir) if window is not None else None,
                 on_latency=(lambda ms: controller.update(engine, ms)) if controller else None,
                 on_idle=window.pump if window is not None else None)
    stats = report.stats
    if isinstance(source, DecodeProcessSource):
        stats["stage_ms"].update(source.stage_ms)
        if source.cpu_s is not None:
            stats["cpu_s"]["decode_process"] = source.cpu_s
    if controller is not None:
        stats["latency_control"] = controller.report(engine)
    if args.stats_json:
        _write_stats(args, outputs, stats)
    if report.frames == 0 and not report.interrupted and not live:
        raise UserError(f"'{args.source}' has no frames")
    return Summary(report.frames, report.seconds, report.persons, args.output, args.keypoints,
                   report.interrupted, stats if live else None)


def _warn_about(engine, args: argparse.Namespace) -> None:
    """One line each for settings that work but are probably not what the user wants."""
    placement = engine.pose.placement
    if placement.device.type == "cpu" and placement.dtype != _float32() and not _native_on_cpu(placement.dtype):
        print(f"vitpose-live: note: --dtype {args.dtype} on a CPU runs several times slower than fp32 "
              "(use --dtype fp32)", file=sys.stderr)
    queries = getattr(engine.detector.model.config, "num_queries", None)
    if args.max_persons and queries and args.max_persons > queries:
        print(f"vitpose-live: note: the detector finds at most {queries} persons per frame; "
              f"--max-persons {args.max_persons} keeps them all", file=sys.stderr)


def _float32():
    import torch

    return torch.float32


def _native_on_cpu(dtype) -> bool:
    """bfloat16 on a CPU with bfloat16 instructions (oneDNN says): faster than float32 there
    (bench/RESULTS.md); float16, and bfloat16 elsewhere, are emulated and slower."""
    import torch

    return dtype == torch.bfloat16 and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _write_stats(args: argparse.Namespace, outputs, stats: dict) -> None:
    try:
        Path(args.stats_json).write_text(json.dumps(stats, indent=2) + "\n")
    except OSError as error:  # e.g. the disk filled up: leave nothing half-written
        Path(args.stats_json).unlink(missing_ok=True)
        for path in (args.output, args.keypoints):
            if path:
                Path(path).unlink(missing_ok=True)
        raise UserError(f"cannot write '{args.stats_json}': {os.strerror(error.errno or 0).lower()}") from None


def run_cli(args: argparse.Namespace) -> int:
    if args.output_dir is not None:  # a collection: every video and image under --source
        from .collection import run_collection

        return run_collection(args)
    try:
        spec = check_arguments(args)
        window = open_window(args, spec)  # first: PyAV (imported by sources/sinks) can hang cv2's GUI
    except UserError as error:
        return _fail(args, error)
    from ..models.loading import ModelLoadError, check_models
    from ..runtime.pipeline import PipelineError
    from ..outputs.sinks import SinkError
    from ..sources import SourceError

    try:
        choice = model_choice(args)
        check_models(choice.model, choice.detector)  # both named at once, in seconds even without the Hub
        summary = annotate(args, spec, window)
    except (UserError, SourceError, SinkError, ModelLoadError, PipelineError, ValueError) as error:
        return _fail(args, error)
    except KeyboardInterrupt:
        print("vitpose-live: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if window is not None:
            window.close()
    print(summary.line(), file=sys.stderr)
    return EXIT_INTERRUPTED if summary.interrupted else EXIT_OK


def _fail(args: argparse.Namespace, error: BaseException) -> int:
    if args.verbose:
        logging.getLogger("vitpose_live").exception("failed")
    print(f"vitpose-live: error: {one_line(error)}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:
        _quiet_libraries()
    return run_cli(args)


def stop_on_sigterm() -> None:
    """SIGTERM stops like Ctrl-C: outputs are finalised."""
    import signal

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)


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


def _quiet_libraries() -> None:
    import warnings

    from ..models.loading import quiet_hub_logging

    warnings.filterwarnings("ignore")
    quiet_hub_logging()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetics only
        pass


if __name__ == "__main__":
    console_main()
