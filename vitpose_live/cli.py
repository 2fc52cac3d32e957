"""Command line: ``vitpose-live --source IN --output OUT [--keypoints K.jsonl]``.

User mistakes end with one line on stderr and exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130

# Idle OpenMP workers sleep instead of spinning, so decode/encode threads keep their cores
# (before torch is imported; measured in bench/README.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def build_parser() -> argparse.ArgumentParser:
    from .detector import DEFAULT_DETECTOR
    from .pose import DEFAULT_POSE_MODEL, EXPERTS

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
    models.add_argument("--model", default=DEFAULT_POSE_MODEL, help="ViTPose Hub id or local directory")
    models.add_argument("--detector", default=DEFAULT_DETECTOR, help="person detector Hub id or local directory")
    models.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    models.add_argument("--dtype", default="auto", help="auto (fp16 on CUDA, fp32 elsewhere), fp32, fp16, bf16")
    models.add_argument("--expert", help=f"ViTPose++ expert: {', '.join(EXPERTS)} or an index (default coco)")
    models.add_argument("--flip-test", action="store_true", help="average with the horizontally flipped crop")
    models.add_argument("--cuda-graphs", action="store_true",
                        help="replay the pose model from CUDA graphs (fixed batch sizes; CUDA only)")
    models.add_argument("--batch", type=int, default=None,
                        help="video frames per forward pass for files (default: 8 on CUDA, 4 elsewhere)")
    detection = parser.add_argument_group("detection and drawing")
    detection.add_argument("--det-threshold", type=float, default=0.5, help="person score threshold (default 0.5)")
    detection.add_argument("--max-persons", type=int, default=None, help="keep at most this many persons per frame")
    detection.add_argument("--kpt-threshold", type=float, default=0.3, help="draw keypoints above this score")
    detection.add_argument("--show-boxes", action="store_true", help="draw person boxes")
    live = parser.add_argument_group("live")
    live.add_argument("--window", action=argparse.BooleanOptionalAction, default=None,
                      help="show an OpenCV window (default: on for webcams and streams when a display exists)")
    live.add_argument("--realtime", action="store_true", help="play a file like a camera: paced, dropping when behind")
    live.add_argument("--det-every", type=int, default=None,
                      help="run the detector every N frames, tracking in between (default: 3 for live sources, 1 for files)")
    live.add_argument("--latency-target", type=float, default=None, metavar="MS",
                      help="live sources: detect less often while the median latency is over MS (and more often "
                      "when well under); the interval is reported in --stats-json")
    live.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=None,
                      help="One Euro smoothing of keypoints per person (default: on for live sources)")
    live.add_argument("--smooth-min-cutoff", type=float, default=1.0, help="One Euro min cutoff in Hz (lower: smoother)")
    live.add_argument("--smooth-beta", type=float, default=0.05, help="One Euro speed coefficient (higher: less lag)")
    live.add_argument("--hud", action=argparse.BooleanOptionalAction, default=None, help="draw fps/latency on frames")
    live.add_argument("--stats-json", help="write run statistics (fps, latency, drops, stage ms) as JSON")
    live.add_argument("--camera-size", help="ask the webcam for WIDTHxHEIGHT, e.g. 1280x720")
    live.add_argument("--camera-fps", type=float, help="ask the webcam for this frame rate")
    from .batch import add_collection_arguments

    add_collection_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="log details (and show tracebacks)")
    return parser


class UserError(Exception):
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


def _is_live_spec(source: str) -> bool:
    return source.isdigit() or "://" in source or source.startswith("synthetic")


def _validate(args: argparse.Namespace) -> None:
    from .sinks import IMAGE_OUTPUT_EXTENSIONS, VIDEO_EXTENSIONS, check_writable
    from .sources import IMAGE_EXTENSIONS

    live = _is_live_spec(args.source)
    if not live and not any(ch in args.source for ch in "*?") and not os.path.exists(args.source):
        raise UserError(f"cannot open '{args.source}': file not found")
    if args.output is None and args.keypoints is None and not (args.window or (args.window is None and live)):
        raise UserError("nothing to do: give --output and/or --keypoints (or --window to watch)")
    source_is_image = Path(args.source).suffix.lower() in IMAGE_EXTENSIONS
    if args.output:
        suffix = Path(args.output).suffix.lower()
        wanted = IMAGE_OUTPUT_EXTENSIONS if source_is_image else VIDEO_EXTENSIONS
        if suffix not in wanted:
            kind = "an image" if source_is_image else "a video"
            raise UserError(f"--output for {kind} must end in one of {', '.join(sorted(wanted))}")
        check_writable(Path(args.output))
    from .batch import check_single_input
    from .exports import keypoints_format

    check_single_input(args)
    if args.keypoints:
        keypoints_format(args.keypoints)
    for path in (args.keypoints, args.stats_json):
        if path:
            check_writable(Path(path))
    if args.max_persons is not None and args.max_persons < 1:
        raise UserError("--max-persons must be at least 1")
    if args.det_every is not None and args.det_every < 1:
        raise UserError("--det-every must be at least 1")
    if args.batch is not None and args.batch < 1:
        raise UserError("--batch must be at least 1")
    if args.latency_target is not None and args.latency_target <= 0:
        raise UserError("--latency-target must be a positive number of milliseconds")
    for name in ("det_threshold", "kpt_threshold"):
        value = getattr(args, name)
        if not 0.0 <= value <= 1.0:
            raise UserError(f"--{name.replace('_', '-')} must be between 0 and 1")


def open_input(args: argparse.Namespace):
    from . import sources

    open_source = getattr(sources, "open_source", None)
    if open_source is None:
        return sources.open_file_source(args.source)
    options = {}
    if args.source.isdigit():
        if args.camera_size:
            try:
                width, height = (int(v) for v in args.camera_size.lower().split("x"))
            except ValueError:
                raise UserError("--camera-size must look like 1280x720") from None
            options.update(width=width, height=height)
        if args.camera_fps:
            options["fps"] = args.camera_fps
    return open_source(args.source, **options)


def build_engine(args: argparse.Namespace, *, live: bool):
    from .detector import PersonDetector
    from .engine import PoseEngine
    from .pose import PoseEstimator
    from .tracking import PersonTracker, PoseSmoother, TrackingStage

    pose = PoseEstimator(args.model, device=args.device, dtype=args.dtype, expert=args.expert, flip_test=args.flip_test,
                         cuda_graphs=args.cuda_graphs)
    # Live: detect every 3rd frame everywhere. Eager RT-DETR is bound by kernel launches, so even
    # an H100 spends 20-26 ms per single-frame detection (bench/RESULTS.md); ByteTrack fills in.
    det_every = args.det_every or (3 if live else 1)
    smooth = live if args.smooth is None else args.smooth
    detector = PersonDetector(
        args.detector,
        device=pose.placement.device,
        dtype=pose.placement.dtype,
        threshold=min(args.det_threshold, 0.3) if (live or det_every > 1) else args.det_threshold,
        max_persons=args.max_persons,
    )
    tracking = None
    if live or det_every > 1 or smooth:
        smoother = PoseSmoother(args.smooth_min_cutoff, args.smooth_beta, kpt_threshold=args.kpt_threshold) if smooth else None
        activation = min(max(args.det_threshold, 0.35) + 0.1, max(args.det_threshold, 0.9))  # never above 1
        tracker = PersonTracker(track_activation_threshold=activation, high_conf_det_threshold=args.det_threshold)
        tracking = TrackingStage(tracker, smoother, kpt_threshold=args.kpt_threshold)
    return PoseEngine(pose, detector, det_every=det_every, tracking=tracking)


def keypoints_header(engine, source_info: dict) -> dict:
    return {
        "model": engine.pose.name,
        "detector": engine.detector.name,
        "keypoint_names": list(engine.skeleton.keypoint_names),
        "edges": [list(edge) for edge in engine.skeleton.edges],
        **source_info,
    }


@dataclass
class View:
    """What the window's keys change while running."""

    paused: bool = False
    show_hud: bool = True


def _source_info(source, spec: str) -> tuple[dict, int | None]:
    info = getattr(source, "info", None)
    if info is None:  # an image
        return {"source": spec, "width": source.width, "height": source.height, "fps": None}, 1
    return (
        {"source": spec, "width": info.width, "height": info.height, "fps": info.fps},
        getattr(info, "frame_count", None),
    )


def open_window(args: argparse.Namespace):
    """The OpenCV window when asked for (or by default for cameras and streams), created before
    anything imports PyAV; ``None`` without one."""
    wants = args.window or (args.window is None and _is_live_spec(args.source) and not args.source.startswith("synthetic"))
    if not wants:
        return None
    from .window import NoDisplayError, Window

    try:
        return Window()
    except NoDisplayError as error:
        if args.window or not (args.output or args.keypoints):
            raise UserError(str(error)) from None
        return None


def file_batch(args: argparse.Namespace, engine, live: bool) -> int:
    """Frames per forward pass: several for files when nothing tracks across frames (a GPU's
    per-call overhead shared by the batch), one for live sources (latency first)."""
    if live or engine.tracking is not None:
        return 1
    return args.batch or (8 if engine.pose.placement.is_cuda else 4)


def annotate_file(args: argparse.Namespace, window=None, engine=None) -> Summary:
    """Decode → detect → pose → draw → encode/show (and keypoints), in threads. ``engine``: one
    built before (a collection reuses one per process); its tracking state is reset."""
    from tqdm import tqdm

    from .engine import warm_up
    from .pipeline import Pipeline, Policy
    from .render import HudAnnotator, PoseAnnotator
    from .exports import open_keypoints_sink
    from .sinks import ImageFileSink, SinkError, VideoFileSink
    from .sources import ImageSource

    from .control import LatencyController

    source = open_input(args)
    live = bool(getattr(source, "is_live", False)) or args.realtime
    if args.latency_target and not live:
        source.close()
        raise UserError("--latency-target is for live sources (a webcam, a stream, or a file with --realtime)")
    video_sink = image_sink = keypoints_sink = None
    frames = persons = 0
    interrupted = False
    pipeline = controller = None
    try:
        if engine is None:
            engine = build_engine(args, live=live)
        else:
            engine.reset()
        controller = LatencyController(args.latency_target) if args.latency_target else None
        info, total = _source_info(source, args.source)
        if live:
            warm_up(engine)
        annotator = PoseAnnotator(kpt_threshold=args.kpt_threshold, show_boxes=args.show_boxes)
        hud = HudAnnotator()
        view = View(show_hud=args.hud if args.hud is not None else (live or window is not None))
        realtime_fps = info["fps"] if args.realtime and not getattr(source, "is_live", False) else None
        batch = file_batch(args, engine, live)
        pipeline = Pipeline(source, engine, policy=Policy.LATEST if live else Policy.FIFO, realtime_fps=realtime_fps,
                            batch=batch, process_batch=engine.process_batch if batch > 1 else None)
        if args.output and isinstance(source, ImageSource):
            image_sink = ImageFileSink(args.output)
        elif args.output:
            video_info = getattr(source, "info", None)
            video_sink = VideoFileSink(
                args.output,
                width=info["width"],
                height=info["height"],
                fps=info["fps"] or 30.0,
                audio_from=args.source if getattr(video_info, "has_audio", False) and not live else None,
            )
        if args.keypoints:
            keypoints_sink = open_keypoints_sink(args.keypoints, header=keypoints_header(engine, info))
        first_capture = None
        bar = tqdm(total=total, unit="frame", disable=args.no_progress or total == 1, dynamic_ncols=True)
        with bar, pipeline:
            for result in pipeline.results():
                frame, poses = result.frame, result.poses
                render_start = time.perf_counter()
                first_capture = frame.captured_at if first_capture is None else first_capture
                stamp = frame.time if not live else frame.captured_at - first_capture
                if keypoints_sink is not None:
                    keypoints_sink.write(frame.index, stamp, poses)
                picture = None
                if video_sink is not None or image_sink is not None or window is not None:
                    picture = annotator.annotate(frame.image.copy(), poses)
                    if view.show_hud:
                        hud.annotate(picture, _hud_lines(pipeline.stats, poses))
                    if video_sink is not None:
                        video_sink.write(picture, stamp)
                    elif image_sink is not None:
                        image_sink.write(picture)
                pipeline.stats.add_stage("detect", result.times.detect)
                pipeline.stats.add_stage("pose", result.times.pose)
                pipeline.stats.add_stage("track", result.times.track)
                pipeline.stats.add_stage("render", (time.perf_counter() - render_start) * 1e3)
                action = window.show(picture) if window is not None else None
                latency = (time.monotonic() - frame.captured_at) * 1e3
                pipeline.stats.add_latency(latency)
                if controller is not None:
                    controller.update(engine, latency)
                if window is not None and _handle_key(action, window, view, annotator, picture, frame, poses) == "quit":
                    break
                frames += 1
                persons += len(poses)
                bar.update(1)
                bar.set_postfix(fps=f"{pipeline.stats.recent_fps():.1f}", persons=len(poses), refresh=False)
    except KeyboardInterrupt:
        interrupted = True
        if pipeline is not None:
            pipeline.stop(timeout=3.0)  # let the model call in flight finish before finalising
    except BaseException:
        if pipeline is not None:
            pipeline.stop()
        _discard(args, video_sink, image_sink, keypoints_sink)
        raise
    finally:
        source.close()
    stats = pipeline.stats.summary() if pipeline is not None else {}
    if stats and controller is not None:
        stats["latency_control"] = controller.report(engine)
    try:
        for sink in (video_sink, image_sink, keypoints_sink):
            if sink is not None:
                sink.close()
        if args.stats_json and stats:
            Path(args.stats_json).write_text(json.dumps(stats, indent=2) + "\n")
    except (SinkError, OSError) as error:  # e.g. the disk filled up: leave nothing half-written
        _discard(args, video_sink, image_sink, keypoints_sink, stats_written=bool(args.stats_json))
        raise UserError(_one_line(error) if isinstance(error, SinkError) else
                        f"cannot write '{args.stats_json}': {os.strerror(error.errno or 0).lower()}") from None
    if frames == 0 and not interrupted and not live:
        raise UserError(f"'{args.source}' has no frames")
    return Summary(frames, time.monotonic() - pipeline.stats.started_at, persons, args.output, args.keypoints,
                   interrupted, stats if live else None)


def _discard(args: argparse.Namespace, video_sink, image_sink, keypoints_sink, stats_written=False) -> None:
    """Remove the outputs this run opened, so nothing half-written looks like a result."""
    opened = []
    if video_sink is not None:
        video_sink.abort()
        opened.append(args.output)
    if image_sink is not None:
        opened.append(args.output)
    if keypoints_sink is not None:
        keypoints_sink.abort()
        opened.append(args.keypoints)
    if stats_written:
        opened.append(args.stats_json)
    for path in opened:
        if os.path.islink(path) or os.path.isfile(path):
            os.remove(path)


def _hud_lines(stats, poses) -> list[str]:
    summary_latency = list(stats.latency_ms)[-30:]
    latency = sum(summary_latency) / len(summary_latency) if summary_latency else 0.0
    return [
        f"fps {stats.recent_fps():.1f}",
        f"latency {latency:.0f} ms",
        f"persons {len(poses)}",
        f"dropped {stats.frames_dropped}",
    ]


def _handle_key(action, window, view: View, annotator, picture, frame, poses) -> str | None:
    """Apply a window key; "quit" ends the run."""
    while True:
        if action in ("quit", "closed"):
            return "quit"
        if action == "boxes":
            annotator.show_boxes = not annotator.show_boxes
        elif action == "ids":
            annotator.show_ids = not annotator.show_ids
        elif action == "hud":
            view.show_hud = not view.show_hud
        elif action in ("more", "fewer"):
            step = 0.05 if action == "more" else -0.05
            annotator.kpt_threshold = round(min(0.95, max(0.0, annotator.kpt_threshold + step)), 2)
        elif action == "snapshot":
            _snapshot(picture, frame, poses)
        elif action == "pause":
            view.paused = not view.paused
        if not view.paused:
            return None
        action = window.poll(50)  # paused: wait for keys; live frames are dropped meanwhile


def _snapshot(picture, frame, poses) -> None:
    import cv2

    from .sinks import frame_record

    stem = f"snapshot-{time.strftime('%Y%m%d-%H%M%S')}-{frame.index}"
    cv2.imwrite(f"{stem}.png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    Path(f"{stem}.json").write_text(json.dumps(frame_record(frame.index, frame.time, poses)) + "\n")
    print(f"saved {stem}.png and {stem}.json", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "output_dir", None) is not None:  # a collection: every video and image under --source
        from .batch import run_collection

        return run_collection(args)
    try:
        window = open_window(args)  # first: PyAV (imported by sources/sinks) can hang cv2's GUI
    except UserError as error:
        return _fail(args, error)
    from .loading import ModelLoadError
    from .pipeline import PipelineError
    from .sinks import SinkError
    from .sources import SourceError

    try:
        _validate(args)
        summary = annotate_file(args, window)
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
    print(f"vitpose-live: error: {_one_line(error)}", file=sys.stderr)
    return EXIT_USAGE


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:
        _quiet_libraries()
    return run(args)


def console_main() -> None:
    """The process entry point: outputs are finalised by ``main``; if a stage thread is still
    stuck in native code (a hung camera read), exit without waiting for it, since tearing down
    the interpreter under it can abort the process."""
    import signal
    import threading

    def terminate(signum, frame):  # SIGTERM stops like Ctrl-C: outputs are finalised
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if any(t.name.startswith("vitpose-") and t.is_alive() for t in threading.enumerate()):
        os._exit(code)
    sys.exit(code)


def _quiet_libraries() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetics only
        pass


if __name__ == "__main__":
    console_main()
