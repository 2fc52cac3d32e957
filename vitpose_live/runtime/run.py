"""The one run loop: source → pipeline → engine → annotators → sinks, for every face (the command
line, the window, the web app's video job, the benchmarks).

The buffering policy comes from the source kind: a live source keeps only the newest frame and
the newest result (older ones are dropped and counted); a file waits and never drops. Frames go
through the models in batches whenever nothing is tracked across frames. A frame's picture and
its keypoints line are written both or neither, even when Ctrl-C lands in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..models.device import background_io
from ..engine.engine import PoseEngine, Result, warm_up
from ..system.interrupts import held
from .following import FollowOptions, Following
from .pipeline import Pipeline, PipelineStats, Policy
from ..render import HudAnnotator, PoseAnnotator
from ..outputs.base import Outputs


@dataclass(frozen=True)
class RunOptions:
    """How to drive the loop. ``live``: newest-only buffering (a camera, a stream, or a file
    played ``realtime_fps``); ``batch``: frames per model pass when nothing is tracked."""

    live: bool = False
    realtime_fps: float | None = None
    batch: int = 1
    draw: bool = False  # make pictures even without a picture sink (a window shows them)
    total: int | None = None  # frames expected, for the progress bar
    progress: bool = True
    on_count: Callable[[int], None] | None = None  # frames written so far, after each (a collection's bar)


# The bar shows a rate only once it means something: batches of frames finishing together made
# the first ones read 65 frames/s on a clip that ran at 5.
RATE_AFTER_S, RATE_AFTER_FRAMES = 1.0, 10
# No tqdm rate of its own (it counts batches arriving at once as the rate); ours is in the postfix.
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"


@dataclass(frozen=True)
class RunReport:
    frames: int
    persons: int
    seconds: float
    interrupted: bool
    stats: dict


# on_frame(result, picture, stats) -> True to stop the run (a window's quit key)
FrameCallback = Callable[[Result, "np.ndarray | None", PipelineStats], bool]


def run(
    source,
    engine: PoseEngine,
    outputs: Outputs,
    options: RunOptions,
    *,
    annotator: PoseAnnotator | None = None,
    hud: HudAnnotator | None = None,
    on_frame: FrameCallback | None = None,
    on_latency: Callable[[float], None] | None = None,
    on_idle: Callable[[], None] | None = None,
    following: Following | None = None,
) -> RunReport:
    """Run ``source`` through ``engine`` into ``outputs`` until it ends, ``on_frame`` asks to
    stop, or Ctrl-C (outputs are then finalised: ``interrupted``). Any other error removes the
    outputs and is raised. The source and the engine's threads are closed in every case.
    ``on_idle`` is called every few milliseconds while waiting for a frame (a window's keys).
    ``following`` (:class:`~.following.Following`): the followed person drawn in full, the
    others dimmed, a live follow video; without it, keypoint records still get joint angles."""
    annotator = annotator or PoseAnnotator()
    if options.live:
        warm_up(engine)
    pipeline = _pipeline(source, engine, options)
    following = following or Following(FollowOptions(), live=options.live)
    loop = _Loop(engine, outputs, options, (annotator, hud), on_frame, on_latency, on_idle, following)
    interrupted, cpu_started = False, time.process_time()
    try:
        with pipeline:
            loop.consume(pipeline)
    except KeyboardInterrupt:
        interrupted = True
        pipeline.stop(timeout=3.0)  # let the model call in flight finish before finalising
    except BaseException:
        pipeline.stop()
        outputs.abort()
        following.abort()
        raise
    finally:
        engine.close()
        source.close()
    _close(outputs, following)
    stats = pipeline.stats.summary()
    stats["stage_ms"].update(outputs.stage_ms())
    stats["cpu_s"] = {"this_process": round(time.process_time() - cpu_started, 3), **outputs.cpu_s()}
    stats["detector_passes"] = engine.detector_passes if engine.live else loop.detections
    seconds = time.monotonic() - pipeline.stats.started_at
    stats["detector_rate"] = round(stats["detector_passes"] / max(seconds, 1e-9), 2)
    stats["seconds"], stats["persons"] = round(seconds, 4), loop.persons
    return RunReport(loop.frames, loop.persons, seconds, interrupted, stats)


def _close(outputs: Outputs, following: Following) -> None:
    """Finalise the outputs and the live follow video, or remove them all when one fails."""
    try:
        following.close()
    except BaseException:
        outputs.abort()
        raise
    try:
        outputs.close()
    except BaseException:
        following.abort()
        raise


def _pipeline(source, engine: PoseEngine, options: RunOptions) -> Pipeline:
    batch = 1 if (options.live or engine.tracking is not None) else max(1, options.batch)

    def process(frame):
        with torch.inference_mode():
            return engine(frame)

    def process_batch(frames):
        with torch.inference_mode():
            return engine.process_batch(frames)

    return Pipeline(source, process, policy=Policy.LATEST if options.live else Policy.FIFO,
                    realtime_fps=options.realtime_fps, batch=batch,
                    process_batch=process_batch if batch > 1 else None,
                    background_capture=background_io(engine.pose.device, live=options.live))


class _Loop:
    """The caller's side of the pipeline: draw, write, count, report."""

    def __init__(self, engine, outputs: Outputs, options: RunOptions, drawing, on_frame, on_latency, on_idle=None,
                 following: Following | None = None):
        from tqdm import tqdm

        self.engine, self.outputs, self.options = engine, outputs, options
        self.following = following or Following(FollowOptions(), live=options.live)
        self.annotator, self.hud = drawing
        self.on_frame, self.on_latency, self.on_idle = on_frame, on_latency, on_idle
        self.frames = self.persons = self.detections = 0
        self._first_capture: float | None = None
        self._first_result: float | None = None
        self._bar = tqdm(total=options.total, unit="frame", dynamic_ncols=True, bar_format=BAR_FORMAT,
                         disable=not options.progress or options.total == 1)

    def consume(self, pipeline: Pipeline) -> None:
        with self._bar:
            for result in pipeline.results(idle=self.on_idle):
                if self._one(result, pipeline.stats):
                    return
            self._advance(pipeline.stats)  # the frames dropped after the last result count too

    def _advance(self, stats: PipelineStats) -> None:
        """The bar counts the source's frames: written and dropped (a ``--realtime`` file ends at 100 %)."""
        self._bar.update(self.frames + stats.frames_dropped - self._bar.n)

    def rate(self) -> float | None:
        """Frames per second since the first result, once there are enough of both to mean it."""
        if self._first_result is None:
            self._first_result = time.monotonic()
            return None
        seconds = time.monotonic() - self._first_result
        if seconds < RATE_AFTER_S or self.frames < RATE_AFTER_FRAMES:
            return None
        return (self.frames - 1) / seconds

    def _stamp(self, frame) -> float | None:
        if not self.options.live:
            return frame.time
        if self._first_capture is None:
            self._first_capture = frame.captured_at
        return frame.captured_at - self._first_capture

    def _canvas(self, image: np.ndarray) -> np.ndarray:
        """What to draw on: a file's frame itself (nothing reads its pixels once its result is
        here: a copy of a 1080p frame is a millisecond), a copy of a live one (the detector thread
        may still be reading it), of one that is not ours to write, or of one a scene sink will
        draw on itself."""
        image = np.asarray(image)
        mine = not self.options.live and not self.outputs.scenes and image.flags.writeable
        return image if mine else image.copy()

    def _one(self, result: Result, stats: PipelineStats) -> bool:
        frame, poses = result.frame, result.poses
        started = time.perf_counter()
        stamp = self._stamp(frame)
        picture = None
        # the engine's keypoint threshold: the one the smoother, the keypoint files and the angles use
        kpt = self.engine.settings.kpt_threshold
        followed = self.following.frame(frame, poses, stamp, kpt)
        lines = []
        if self.hud is not None and self.hud.enabled:
            lines = hud_lines(stats, poses) + self.following.hud_lines(followed)
        shown = None
        if self.outputs.pictures or self.options.draw:
            picture = draw(self.annotator, self._canvas(frame.image), poses, kpt, followed=followed.drawn)
            shown = self.following.shown(picture, followed, stamp, frame.index) if self.options.draw else picture
            for image in (picture,) if shown is picture else (picture, shown):
                draw_hud(self.hud, image, lines)
        with held():  # a frame's picture, its keypoints line and its follow view: all or none
            write_frame(self.outputs, frame, poses, stamp, picture, lines, **self.following.extras(followed))
            self.following.write_view(frame, followed, stamp)
            self.frames += 1
            self.persons += len(poses)
        self.detections += int(result.detected)
        for name, ms in (("detect", result.times.detect), ("pose", result.times.pose),
                         ("track", result.times.track), ("render", (time.perf_counter() - started) * 1e3)):
            stats.add_stage(name, ms)
        if result.detection_age_ms is not None:
            stats.add_stage("detection_age", result.detection_age_ms)
            stats.add_stage("detector_pass", result.detector_pass_ms)
        stop = bool(self.on_frame(result, shown, stats)) if self.on_frame is not None else False
        latency = (time.monotonic() - frame.captured_at) * 1e3
        stats.add_latency(latency)
        if self.on_latency is not None:
            self.on_latency(latency)
        self._advance(stats)
        rate = self.rate()
        shown = {"fps": f"{rate:.1f}"} if rate is not None else {}
        if stats.frames_dropped:
            shown["dropped"] = stats.frames_dropped
        self._bar.set_postfix(**shown, persons=len(poses), refresh=False)
        if self.options.on_count is not None:
            self.options.on_count(self.frames)
        return stop


def draw(annotator: PoseAnnotator, canvas: np.ndarray, poses, kpt_threshold: float, hud: HudAnnotator | None = None,
         lines=(), interpolated: np.ndarray | None = None, followed: int | None = None) -> np.ndarray:
    """``canvas`` with ``poses`` drawn at ``kpt_threshold`` (persons ``interpolated`` (N,) bool
    dimmed; with ``followed``, all but that track id dimmed) and the HUD's ``lines`` over them."""
    picture = annotator.annotate(canvas, poses, kpt_threshold, interpolated=interpolated, followed=followed)
    return draw_hud(hud, picture, lines)


def draw_hud(hud: HudAnnotator | None, picture: np.ndarray, lines=()) -> np.ndarray:
    """The HUD's ``lines`` over ``picture``, in place (nothing without a HUD or lines)."""
    if lines and hud is not None:
        hud.annotate(picture, list(lines))
    return picture


def write_frame(outputs: Outputs, frame, poses, stamp: float | None, picture: np.ndarray | None, lines=(),
                **extras) -> None:
    """One frame to every output: its picture to the picture sinks, frame + poses to the scene sinks,
    its keypoints record (with ``extras``, e.g. ``interpolated``) to the record sinks; all or
    none, even when Ctrl-C lands in between (the run loop and the offline second pass both)."""
    with held():
        for sink in outputs.pictures:
            sink.write(picture, stamp)
        for scene in outputs.scenes:
            scene.write_scene(frame, poses, stamp, tuple(lines))
        for sink in outputs.records:
            sink.write(frame.index, stamp, poses, **extras)


def hud_lines(stats: PipelineStats, poses) -> list[str]:
    recent = list(stats.latency_ms)[-30:]
    latency = sum(recent) / len(recent) if recent else 0.0
    return [
        f"fps {stats.recent_fps():.1f}",
        f"latency {latency:.0f} ms",
        f"persons {len(poses)}",
        f"dropped {stats.frames_dropped}",
    ]

