"""The three jobs, each taking one :class:`~.settings.Settings` built once per call: a webcam
frame of a session, a video, an image. They raise ``gr.Error`` with a one-line reason."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import gradio as gr
import torch

from ...defaults import file_batch
from ...models.device import background_io, decode_threads
from ...engine.recipe import build_engine
from ...outputs.keypoints import KeypointsCsvSink
from ...models.loading import ModelLoadError
from ...runtime.pipeline import PipelineError
from ...outputs.base import Outputs
from ...runtime.offline_run import run_offline
from ...runtime.run import RunOptions, run
from ...outputs.keypoints import KeypointsJsonlSink
from ...outputs.paths import SinkError
from ...outputs.video import VideoFileSink
from ...outputs.records import frame_record, keypoints_header
from ...sources import SourceError, VideoFileSource
from ...types import Frame
from ...analysis.angles import angle_names_for
from .follow import ImagePick, numbered, record_angles, video_following, write_plot
from .frames import inline_jpeg
from .payloads import Limits, check_video_info, check_video_size, image_from_payload, safe_stem
from .settings import Settings
from .state import LiveSession, ModelCache

log = logging.getLogger(__name__)


def load(models: ModelCache, model: str):
    try:
        return models.get(model)
    except (ModelLoadError, ValueError) as error:
        raise model_error(error) from None


def model_error(error: ModelLoadError | ValueError) -> gr.Error:
    """What the page says when a model cannot be loaded: which one, why, and what the person running
    the app can do (the console gets the same one line, no traceback)."""
    log.warning("%s", str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
    problems = getattr(error, "problems", ())
    if not problems:
        return gr.Error(str(error), title="Model not available", print_exception=False)
    text = " ".join(f"The {p.what} '{p.spec}' could not be loaded: {p.reason}." for p in problems)
    flags = " and ".join(f"{p.flag} DIR" for p in problems)
    text += (
        f" Whoever runs this app can restart it with {flags}: checkpoint directories made on a machine with "
        "internet access (`hf download ID --local-dir DIR`, or save_pretrained)."
    )
    if any(p.what == "pose model" and not p.offline for p in problems):
        text += " Meanwhile another pose model from the list may work."
    return gr.Error(text, title="Model not available", print_exception=False)


class LoadingModels:
    """A :class:`ModelCache` whose load failures are ``gr.Error``."""

    def __init__(self, models: ModelCache) -> None:
        self.models = models
        self.detector_gap_s = models.detector_gap_s

    def get(self, model: str):
        return load(self.models, model)


def decode_frame(payload, limits: Limits):
    """A webcam frame as sent by the browser → ``(RGB image, milliseconds it took)``."""
    started = time.monotonic()
    image, _ = image_from_payload(payload, limits)
    return image, (time.monotonic() - started) * 1e3


def webcam_frame(image, decode_ms: float, settings: Settings, session: LiveSession, models: ModelCache,
                 *, inline: bool = True):
    """One decoded webcam frame of ``session`` → ``(picture, info)``: the picture as an inline
    JPEG (``inline``, for the stream) or an RGB array (for ``/frame`` callers, who get a file),
    and ``info`` with the session's stats, the frame's timings and its keypoints record
    (coordinates in the unmirrored frame)."""
    picture, result, row = session.process(image, settings, LoadingModels(models), decode_ms=decode_ms)
    encoding = time.monotonic()
    if inline:
        picture = inline_jpeg(picture)
    row["encode"] = (time.monotonic() - encoding) * 1e3
    session.finish(row)
    poses = result.poses
    info = {
        "session_frames": session.frames,
        "fps": round(session.fps(), 2),
        "server_ms": session.times.medians(),
        "person_count": len(poses),
        "track_ids": [] if poses.track_ids is None else poses.track_ids.tolist(),
        "detected": bool(result.detected),
        "followed_angles": list(session.followed_angles),  # the followed person's, as the live line reads them
        # frame, time, persons (with their angles), followed
        **frame_record(result.frame.index, result.frame.time, poses,
                       angles=record_angles(poses, settings.kpt_threshold), followed=session.followed()),
    }
    return picture, info


def stats_line(info: dict) -> str:
    """The Webcam tab's live line: rate, persons, and where a frame's time went on the server."""
    split = info["server_ms"]
    parts = " · ".join(f"{stage} {split[stage]:.0f}" for stage in ("decode", "engine", "draw", "encode") if stage in split)
    between = f" · between frames {split['between']:.0f}" if "between" in split else ""
    following = f" · following {info['followed']}" if info.get("followed") is not None else ""
    if info.get("followed_angles"):
        following += " (" + " · ".join(info["followed_angles"]) + ")"
    return (f"HTTP stream · {info['fps']:.1f} fps · {info['person_count']} person(s) · frame {info['session_frames']}"
            f"{following}\n"
            f"server ms per frame: {parts}{between}")


def annotate_image(payload, settings: Settings, models: ModelCache, limits: Limits):
    """An uploaded image → (annotated image, keypoints record with the header's fields, what a
    click on the result needs). Its persons are numbered 0, 1, ... (``track_id``), as a click names them."""
    pixels, name = image_from_payload(payload, limits)
    engine = build_engine(settings.engine_options(live=False), load(models, settings.model))
    with torch.inference_mode():
        result = engine(Frame(pixels, 0, None, time.monotonic()))
    poses = numbered(result.poses)
    picture = settings.annotator().annotate(pixels.copy(), poses)
    info = {"source": name, "width": int(pixels.shape[1]), "height": int(pixels.shape[0]), "fps": None}
    header = keypoints_header(engine, info, angle_names_for(engine.skeleton.keypoint_names))
    record = frame_record(0, None, poses, angles=record_angles(poses, settings.kpt_threshold))
    return picture, {**header, **record}, ImagePick(pixels, poses, settings)


def annotate_video(video, settings: Settings, models: ModelCache, limits: Limits, out: Path, progress):
    """An uploaded video → (annotated H.264 MP4 with its audio, keypoints JSONL, keypoints CSV,
    the angle plot's PNG or None, summary), through the command line's run loop (tracked, as the
    plot follows the person largest when first seen, like ``--plot``)."""
    if not video:
        raise gr.Error("Upload a video first.")
    path = Path(video)
    name = path.name
    check_video_size(path, name, limits)
    try:
        source = VideoFileSource(path, threads=decode_threads(models.device))
    except SourceError as error:
        raise gr.Error(str(error).replace(str(path), name)) from None
    started = time.monotonic()
    try:
        info = source.info
        duration = check_video_info(info, name, limits)
        engine = build_engine(replace(settings.engine_options(live=False), tracking=True), load(models, settings.model))
        stem = safe_stem(name)
        files = out / f"{stem}_pose.mp4", out / f"{stem}_keypoints.jsonl", out / f"{stem}_keypoints.csv"
        header = keypoints_header(engine, {"source": name, "width": info.width, "height": info.height, "fps": info.fps},
                                  angle_names_for(engine.skeleton.keypoint_names))
        following = video_following(engine, out / f"{stem}_angles.png")
        total = info.frame_count or (round(duration * info.fps) if duration else None)
        progress(0, desc="Loading the video")
        offline = settings.offline_settings()
        if offline is not None:
            header["person_fields"] = ["interpolated"]
        outputs = Outputs(
            [VideoFileSink(files[0], width=info.width, height=info.height, fps=info.fps,
                           audio_from=path if info.has_audio else None,
                           background=background_io(engine.pose.device, live=False))],
            [KeypointsJsonlSink(files[1], header=header), KeypointsCsvSink(files[2], header=header)],
        )
        options = RunOptions(batch=file_batch(engine.pose.placement.is_cuda), total=total, progress=False)
        on_frame = _progress(name, limits, total, progress)
        if offline is None:
            report = run(source, engine, outputs, options, annotator=settings.annotator(), on_frame=on_frame,
                         following=following)
        else:  # smoothed with no lag: a second decode draws from the analysed tracks
            reopen = lambda: VideoFileSource(path, threads=decode_threads(models.device))  # noqa: E731
            report = run_offline(source, reopen, engine, outputs, options, offline, annotator=settings.annotator(),
                                 on_frame=on_frame, following=following)  # fmt: skip
    except (SinkError, PipelineError, SourceError, ValueError) as error:
        raise gr.Error(str(error).replace(str(path), name)) from None
    finally:
        source.close()
    if report.frames == 0:
        raise gr.Error(f"'{name}' has no frames")
    plot = write_plot(following, out / f"{stem}_angles.png", name)
    return (*map(str, files), plot, _video_summary(report, time.monotonic() - started, info.has_audio))


def _video_summary(report, seconds: float, audio: bool) -> str:
    """The Video tab's line: frames, rate, persons, and what the offline smoothing did."""
    summary = (f"{report.frames} frame(s) in {seconds:.1f} s ({report.frames / max(seconds, 1e-9):.1f} frames/s), "
               f"{report.persons / report.frames:.1f} person(s) per frame" + ("; audio kept" if audio else ""))
    analysis = report.stats.get("offline")
    if analysis:
        summary += (f"; smoothed with no lag, {analysis['tracklets_joined']} tracklet(s) joined, "
                    f"{analysis['interpolated']} person-frame(s) filled in")
    return summary


def _progress(name: str, limits: Limits, total: int | None, progress):
    """The run loop's ``on_frame``: the progress bar, and a stop when the video runs past the
    limit its headers understated."""
    shown = [0.0]

    def on_frame(result, picture, stats) -> bool:
        frame = result.frame
        if frame.time is not None and frame.time > limits.video_seconds + 1.0:
            raise gr.Error(f"'{name}' is longer than {limits.video_seconds:.0f} s")
        if total and time.monotonic() - shown[0] > 0.25:
            shown[0] = time.monotonic()
            progress((min(frame.index + 1, total), total), desc="Annotating", unit="frames")
        return False

    return on_frame
