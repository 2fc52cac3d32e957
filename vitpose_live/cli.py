"""Command line: ``vitpose-live --source IN --output OUT [--keypoints K.jsonl]``.

User mistakes end with one line on stderr and exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


def build_parser() -> argparse.ArgumentParser:
    from .detector import DEFAULT_DETECTOR
    from .pose import DEFAULT_POSE_MODEL, EXPERTS

    parser = argparse.ArgumentParser(
        prog="vitpose-live",
        description="Multi-person pose estimation with ViTPose on images and videos.",
    )
    parser.add_argument("--source", required=True, help="a video file or an image")
    parser.add_argument("--output", help="annotated video (.mp4) or image (.jpg/.png) to write")
    parser.add_argument("--keypoints", help="write keypoints as JSON lines (a header, then one line per frame)")
    models = parser.add_argument_group("models")
    models.add_argument("--model", default=DEFAULT_POSE_MODEL, help="ViTPose Hub id or local directory")
    models.add_argument("--detector", default=DEFAULT_DETECTOR, help="person detector Hub id or local directory")
    models.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    models.add_argument("--dtype", default="auto", help="auto (fp16 on CUDA, fp32 elsewhere), fp32, fp16, bf16")
    models.add_argument("--expert", help=f"ViTPose++ expert: {', '.join(EXPERTS)} or an index (default coco)")
    models.add_argument("--flip-test", action="store_true", help="average with the horizontally flipped crop")
    detection = parser.add_argument_group("detection and drawing")
    detection.add_argument("--det-threshold", type=float, default=0.5, help="person score threshold (default 0.5)")
    detection.add_argument("--max-persons", type=int, default=None, help="keep at most this many persons per frame")
    detection.add_argument("--kpt-threshold", type=float, default=0.3, help="draw keypoints above this score")
    detection.add_argument("--show-boxes", action="store_true", help="draw person boxes")
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

    def line(self) -> str:
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        per_frame = self.persons / self.frames if self.frames else 0.0
        outputs = ", ".join(p for p in (self.output, self.keypoints) if p) or "no output file"
        head = "interrupted after" if self.interrupted else "done:"
        return (
            f"{head} {self.frames} frame(s) in {self.seconds:.1f} s ({rate:.1f} frames/s), "
            f"{per_frame:.1f} person(s) per frame -> {outputs}"
        )


def _validate(args: argparse.Namespace) -> None:
    from .sinks import IMAGE_OUTPUT_EXTENSIONS, VIDEO_EXTENSIONS, check_writable
    from .sources import IMAGE_EXTENSIONS

    if not os.path.exists(args.source):
        raise UserError(f"cannot open '{args.source}': file not found")
    if args.output is None and args.keypoints is None:
        raise UserError("nothing to write: give --output and/or --keypoints")
    source_is_image = Path(args.source).suffix.lower() in IMAGE_EXTENSIONS
    if args.output:
        suffix = Path(args.output).suffix.lower()
        wanted = IMAGE_OUTPUT_EXTENSIONS if source_is_image else VIDEO_EXTENSIONS
        if suffix not in wanted:
            kind = "an image" if source_is_image else "a video"
            raise UserError(f"--output for {kind} must end in one of {', '.join(sorted(wanted))}")
        check_writable(Path(args.output))
    if args.keypoints:
        check_writable(Path(args.keypoints))
    if args.max_persons is not None and args.max_persons < 1:
        raise UserError("--max-persons must be at least 1")
    for name in ("det_threshold", "kpt_threshold"):
        value = getattr(args, name)
        if not 0.0 <= value <= 1.0:
            raise UserError(f"--{name.replace('_', '-')} must be between 0 and 1")


def build_engine(args: argparse.Namespace):
    from .detector import PersonDetector
    from .engine import PoseEngine
    from .pose import PoseEstimator

    pose = PoseEstimator(args.model, device=args.device, dtype=args.dtype, expert=args.expert, flip_test=args.flip_test)
    detector = PersonDetector(
        args.detector,
        device=pose.placement.device,
        dtype=pose.placement.dtype,
        threshold=args.det_threshold,
        max_persons=args.max_persons,
    )
    return PoseEngine(pose, detector)


def keypoints_header(engine, source_info: dict) -> dict:
    return {
        "model": engine.pose.name,
        "detector": engine.detector.name,
        "keypoint_names": list(engine.skeleton.keypoint_names),
        "edges": [list(edge) for edge in engine.skeleton.edges],
        **source_info,
    }


def annotate_file(args: argparse.Namespace) -> Summary:
    """The file job: decode → detect → pose → draw → encode (and keypoints), in threads."""
    from tqdm import tqdm

    from .pipeline import Pipeline, Policy
    from .render import PoseAnnotator
    from .sinks import ImageFileSink, KeypointsJsonlSink, VideoFileSink
    from .sources import ImageSource, open_file_source

    source = open_file_source(args.source)
    engine = build_engine(args)
    if isinstance(source, ImageSource):
        info = {"source": str(args.source), "width": source.width, "height": source.height, "fps": None}
        total = 1
    else:
        video = source.info
        info = {"source": str(args.source), "width": video.width, "height": video.height, "fps": video.fps}
        total = video.frame_count
    annotator = PoseAnnotator(kpt_threshold=args.kpt_threshold, show_boxes=args.show_boxes)
    video_sink = image_sink = keypoints_sink = None
    frames = persons = 0
    started = time.monotonic()
    interrupted = False
    pipeline = Pipeline(source, engine, policy=Policy.FIFO)
    try:
        if args.output and isinstance(source, ImageSource):
            image_sink = ImageFileSink(args.output)
        elif args.output:
            video_sink = VideoFileSink(
                args.output,
                width=video.width,
                height=video.height,
                fps=video.fps,
                audio_from=args.source if video.has_audio else None,
            )
        if args.keypoints:
            keypoints_sink = KeypointsJsonlSink(args.keypoints, header=keypoints_header(engine, info))
        bar = tqdm(total=total, unit="frame", disable=args.no_progress or total == 1, dynamic_ncols=True)
        with bar, pipeline:
            for result in pipeline.results():
                if keypoints_sink is not None:
                    keypoints_sink.write(result.frame.index, result.frame.time, result.poses)
                if video_sink is not None or image_sink is not None:
                    picture = annotator.annotate(result.frame.image.copy(), result.poses)
                    if video_sink is not None:
                        video_sink.write(picture, result.frame.time)
                    else:
                        image_sink.write(picture)
                frames += 1
                persons += len(result.poses)
                bar.update(1)
                bar.set_postfix(persons=len(result.poses), refresh=False)
    except KeyboardInterrupt:
        interrupted = True
        pipeline.stop()
    except BaseException:
        pipeline.stop()
        for sink in (video_sink, image_sink):
            if sink is not None and hasattr(sink, "abort"):
                sink.abort()
        if keypoints_sink is not None:
            keypoints_sink.close()
            if args.keypoints and os.path.exists(args.keypoints):
                os.remove(args.keypoints)
        raise
    finally:
        source.close()
    for sink in (video_sink, image_sink, keypoints_sink):
        if sink is not None:
            sink.close()
    if frames == 0 and not interrupted:
        raise UserError(f"'{args.source}' has no frames")
    return Summary(frames, time.monotonic() - started, persons, args.output, args.keypoints, interrupted)


def run(args: argparse.Namespace) -> int:
    from .loading import ModelLoadError
    from .pipeline import PipelineError
    from .sinks import SinkError
    from .sources import SourceError

    try:
        _validate(args)
        summary = annotate_file(args)
    except (UserError, SourceError, SinkError, ModelLoadError, PipelineError, ValueError) as error:
        if args.verbose:
            logging.getLogger("vitpose_live").exception("failed")
        print(f"vitpose-live: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("vitpose-live: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary.line(), file=sys.stderr)
    return EXIT_INTERRUPTED if summary.interrupted else EXIT_OK


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:
        _quiet_libraries()
    return run(args)


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
    sys.exit(main())
