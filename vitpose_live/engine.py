"""One frame in, every person's pose out: detector + pose model (+ tracking and smoothing).

The engine is the single piece of per-frame logic; the CLI, the window and the web UI all call it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .detector import PersonDetector
from .device import image_to_device
from .pose import PoseEstimator, valid_boxes
from .tracking import TrackingStage
from .types import Detections, Frame, Poses


@dataclass(frozen=True)
class StageTimes:
    """Milliseconds spent per stage on one frame (host wall clock)."""

    detect: float = 0.0
    pose: float = 0.0
    track: float = 0.0


@dataclass(frozen=True)
class Result:
    """A frame and what was found in it; pixels and predictions travel together."""

    frame: Frame
    poses: Poses
    times: StageTimes
    detected: bool = True


class PoseEngine:
    """Detect persons (every ``det_every`` frames), estimate their poses in one batch, and — with
    a ``tracking`` stage — give them ids, boxes between detections and smoothing."""

    def __init__(
        self,
        pose: PoseEstimator,
        detector: PersonDetector,
        *,
        det_every: int = 1,
        tracking: TrackingStage | None = None,
    ):
        if det_every < 1:
            raise ValueError("det_every must be at least 1")
        if det_every > 1 and tracking is None:
            raise ValueError("detecting every few frames needs a tracking stage for the frames between")
        self.pose = pose
        self.detector = detector
        self.det_every = int(det_every)  # may change between frames (a LatencyController does)
        self.tracking = tracking
        self._since_detection: int | None = None

    @property
    def skeleton(self):
        return self.pose.skeleton

    def reset(self) -> None:
        self._since_detection = None
        if self.tracking is not None:
            self.tracking.reset()

    def _upload(self, image: np.ndarray):
        """The frame on the model's device once, shared by detector and pose model."""
        if self.pose.device.type == "cpu":
            return image
        return image_to_device(image, self.pose.placement)

    def __call__(self, frame: Frame) -> Result:
        since = self._since_detection
        detect = since is None or since + 1 >= self.det_every
        self._since_detection = 0 if detect else since + 1
        image = self._upload(frame.image)
        start = time.perf_counter()
        detections = self.detector(image) if detect else None
        if detections is not None:  # a NaN or empty box must not reach the tracker
            good = valid_boxes(detections.boxes)
            detections = Detections(detections.boxes[good], detections.scores[good])
        detected_at = time.perf_counter()
        ids = None
        if self.tracking is not None:
            detections, ids = self.tracking.boxes(detections, _seconds(frame), (frame.width, frame.height))
        keep = valid_boxes(detections.boxes)
        poses = self.pose(image, detections.boxes, detections.scores)
        posed_at = time.perf_counter()
        if self.tracking is not None:
            poses = self.tracking.poses(poses.replace(track_ids=ids[keep]), _seconds(frame))
        tracked_at = time.perf_counter()
        times = StageTimes(
            detect=(detected_at - start) * 1e3, pose=(posed_at - detected_at) * 1e3, track=(tracked_at - posed_at) * 1e3
        )
        return Result(frame, poses, times, detect)

    def process_batch(self, frames: Sequence[Frame]) -> list[Result]:
        """Several frames with detection on each and one pose forward pass over all their crops
        (for files, where latency does not matter; no tracking)."""
        start = time.perf_counter()
        images = [self._upload(frame.image) for frame in frames]
        detections = self.detector.detect_batch(images)
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
