"""One frame in, every person's pose out: detector + pose model (+ tracking and smoothing). The
one recipe that builds it (:class:`~.recipe.EngineOptions` → :func:`~.recipe.build_engine`),
used by the command line, the window, the web app and the benchmarks alike, is in :mod:`.recipe`.

Detection policy: files detect on every ``det_every``-th frame, inline (deterministic); live
sources detect on a thread of their own (:mod:`.live_detection`), at most once per
``det_every`` frames, and no frame but the first waits for it. Either way a person scoring above
the detection threshold is posed from the first detection that finds them (README: "How live
works").
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..defaults import WEAK_DETECTION_FLOOR
from ..models.detector import PersonDetector
from ..models.device import image_to_device
from ..models.crops import valid_boxes
from ..models.pose import PoseEstimator
from ..types import Detections, Frame, Poses
from .live_detection import DetectorThread
from .settings import FrameSettings
from .smoothing import PoseSmoother
from .tracking import TrackingStage

@dataclass(frozen=True)
class StageTimes:
    """Milliseconds spent per stage on one frame (host wall clock)."""

    detect: float = 0.0
    pose: float = 0.0
    track: float = 0.0


@dataclass(frozen=True)
class Result:
    """A frame and what was found in it; pixels and predictions travel together. ``detected``:
    a detection was applied on this frame; live only: ``detection_age_ms``, how much older than
    this frame the frame it was computed on is, and ``detector_pass_ms``, how long that pass took
    on the detector's thread."""

    frame: Frame
    poses: Poses
    times: StageTimes
    detected: bool = True
    detection_age_ms: float | None = None
    detector_pass_ms: float | None = None


class PoseEngine:
    """Detect persons, estimate their poses in one batch, and — with a ``tracking`` stage — give
    them ids, boxes between detections and smoothing. ``settings`` may be replaced between frames.
    With ``live`` the detector runs on its own thread; call :meth:`close` when done.

    ``detector_gap_s`` (live): while anyone is tracked, the next detector pass starts at least
    this long after the last one ended. On a CPU the detector thread and the pose model share the
    cores, so back-to-back passes slow every frame; tracked persons are followed by their
    keypoints meanwhile. With nobody tracked there is no rest (a newcomer in an empty scene is
    found as soon as ``det_every`` allows; among tracked persons, within the gap plus two passes)."""

    def __init__(
        self,
        pose: PoseEstimator,
        detector: PersonDetector,
        *,
        det_every: int = 1,
        tracking: TrackingStage | None = None,
        settings: FrameSettings | None = None,
        live: bool = False,
        detector_gap_s: float = 0.0,
    ):
        if det_every < 1:
            raise ValueError("det_every must be at least 1")
        if (det_every > 1 or live) and tracking is None:
            raise ValueError("detecting on some frames only needs a tracking stage for the frames between")
        self.pose = pose
        self.detector = detector
        self.det_every = int(det_every)  # may change between frames (a LatencyController does)
        self.tracking = tracking
        self.live = live
        self.detector_gap_s = float(detector_gap_s)
        self._since_detection: int | None = None
        self._detector_thread: DetectorThread | None = None
        self._passes = 0
        self._settings: FrameSettings | None = None
        if settings is not None:
            self.settings = settings

    @property
    def skeleton(self):
        return self.pose.skeleton

    @property
    def settings(self) -> FrameSettings:
        if self._settings is None:
            return FrameSettings(self.detector.threshold, self.detector.max_persons)
        return self._settings

    @settings.setter
    def settings(self, settings: FrameSettings) -> None:
        """Thresholds and smoothing from the next frame on; tracks and models are kept. The
        detector is shared: its threshold and person cap are passed per call, never written."""
        self._settings = settings
        if self.tracking is None:
            return
        self.tracking.tracker.threshold = settings.det_threshold
        smoother = self.tracking.smoother
        # the keypoint threshold is passed per frame (:meth:`__call__`); a smoother is made again
        # (its filters restarted) when its cut-offs or the threshold it was made for change
        wanted = (settings.smooth_min_cutoff, settings.smooth_beta, settings.kpt_threshold)
        if not settings.smooth:
            self.tracking.smoother = None
        elif smoother is None or (smoother.min_cutoff, smoother.beta, smoother.kpt_threshold) != wanted:
            self.tracking.smoother = PoseSmoother(*wanted[:2], kpt_threshold=settings.kpt_threshold)

    def update(self, **changes) -> None:
        self.settings = replace(self.settings, **changes)

    def _detection_keep(self) -> tuple[float | None, int | None]:
        """(threshold, max_persons) for this engine's detector calls; (None, None) before any
        settings: the detector's own. With tracking, detections down to the weak floor come back
        (they keep tracks alive; only those above the threshold start one)."""
        settings = self._settings
        if settings is None:
            return None, None
        threshold = settings.det_threshold
        if self.tracking is not None:
            threshold = min(threshold, WEAK_DETECTION_FLOOR)
        return threshold, settings.max_persons

    @property
    def detector_running(self) -> bool:
        """Whether the live detector thread is started (it stops on :meth:`close`)."""
        return self._detector_thread is not None

    @property
    def detector_passes(self) -> int:
        """Live detector passes since the last reset."""
        thread = self._detector_thread
        return self._passes + (thread.passes if thread is not None else 0)

    def reset(self) -> None:
        self._since_detection = None
        self.close()
        self._passes = 0
        if self.tracking is not None:
            self.tracking.reset()

    def close(self) -> None:
        """Stop the live detector thread (a new one starts on the next frame)."""
        if self._detector_thread is not None:
            self._detector_thread.close()
            self._passes += self._detector_thread.passes
            self._detector_thread = None

    def upload(self, image: np.ndarray):
        """The frame on the model's device once, shared by detector and pose model (the first
        stage of a frame; a no-op on a CPU). Public for benchmarks that time the stages."""
        if self.pose.device.type == "cpu":
            return image
        return image_to_device(image, self.pose.placement)

    def _inline_detections(self, image) -> Detections | None:
        since = self._since_detection
        if since is not None and since + 1 < self.det_every:
            self._since_detection = since + 1
            return None
        self._since_detection = 0
        detections = self.detector(image, *self._detection_keep())
        good = valid_boxes(detections.boxes)  # a NaN or empty box must not reach the tracker
        return Detections(detections.boxes[good], detections.scores[good])

    def _live_detections(self, frame: Frame):
        """(detections or None, the frame they were computed on, ms waited for them, pass ms)."""
        thread = self._detector_thread
        first = thread is None
        if first:
            thread = self._detector_thread = DetectorThread(self.detector)
            weakref.finalize(self, thread.close, 0.0)  # an engine dropped unclosed stops its thread
            self._since_detection = None
        since = self._since_detection
        if thread.idle and (since is None or since + 1 >= self.det_every) and not self._pausing(thread):
            thread.offer(frame, *self._detection_keep())
            self._since_detection = 0
        else:
            self._since_detection = (since or 0) + 1
        waited = time.perf_counter()
        late = thread.take(wait=first)
        waited = (time.perf_counter() - waited) * 1e3
        return (None, None, waited, None) if late is None else (late.detections, late.frame, waited, late.ms)

    def _pausing(self, thread: DetectorThread) -> bool:
        """Whether the detector rests: persons are tracked and its last pass ended under
        ``detector_gap_s`` ago."""
        if self.detector_gap_s <= 0 or self.tracking is None or not self.tracking.following:
            return False
        ended = thread.finished_at
        return ended is not None and time.monotonic() - ended < self.detector_gap_s

    def __call__(self, frame: Frame) -> Result:
        image = self.upload(frame.image)
        start = time.perf_counter()
        age = pass_ms = None
        if self.live:  # detect: what this frame waited (the first frame only)
            detections, source, detect_ms, pass_ms = self._live_detections(frame)
            detected_at = None if source is None else _seconds(source)
            age = None if source is None else max(0.0, (frame.captured_at - source.captured_at) * 1e3)
        else:
            detections, detected_at = self._inline_detections(image), None
            detect_ms = (time.perf_counter() - start) * 1e3
        fresh = detections is not None
        posing = time.perf_counter()
        ids = None
        kpt = None if self._settings is None else self._settings.kpt_threshold  # None: the stage's own
        if self.tracking is not None:
            detections, ids = self.tracking.boxes(detections, _seconds(frame), (frame.width, frame.height),
                                                  detected_at=detected_at, kpt_threshold=kpt)
        keep = valid_boxes(detections.boxes)
        poses = self.pose(image, detections.boxes, detections.scores)
        posed_at = time.perf_counter()
        if self.tracking is not None:
            poses = self.tracking.poses(poses.replace(track_ids=ids[keep]), _seconds(frame), kpt)
        times = StageTimes(detect=detect_ms, pose=(posed_at - posing) * 1e3, track=(time.perf_counter() - posed_at) * 1e3)
        return Result(frame, poses, times, fresh, age, pass_ms)

    def process_batch(self, frames: Sequence[Frame]) -> list[Result]:
        """Several frames with detection on each and one pose forward pass over all their crops
        (for files, where latency does not matter; no tracking)."""
        start = time.perf_counter()
        images = [self.upload(frame.image) for frame in frames]
        detections = self.detector.detect_batch(images, *self._detection_keep())
        detected_at = time.perf_counter()
        poses = self.pose.estimate_batch(images, [d.boxes for d in detections], [d.scores for d in detections])
        posed_at = time.perf_counter()
        share = 1e3 / max(len(frames), 1)
        times = StageTimes(detect=(detected_at - start) * share, pose=(posed_at - detected_at) * share)
        return [Result(frame, p, times) for frame, p in zip(frames, poses)]


def warm_up(engine: PoseEngine, height: int = 480, width: int = 640) -> None:
    """One throw-away frame so that start-up costs don't count as latency."""
    with torch.inference_mode():
        engine(Frame(np.zeros((height, width, 3), np.uint8), -1, 0.0, time.monotonic()))
    engine.reset()


def _seconds(frame: Frame) -> float:
    return frame.time if frame.time is not None else frame.captured_at
