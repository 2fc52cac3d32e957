"""Crowds and bad boxes: fifty persons in a frame, NaN and degenerate boxes from the detector.

Rows of the README's "Reliability" table (split out of the former tests/apps/test_reliability.py).
Every CLI run ends either with exit 0 and outputs that play, or with exit 2, one line on stderr
and no output file.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from support.media import make_clip, probe
from support.reliability import crowd_boxes, keypoint_frames

# --- crowds and bad boxes ---------------------------------------------------------------------------



def test_fifty_persons_in_a_1080p_frame_get_fifty_poses_in_time_linear_in_persons(pose_model, rng):
    from vitpose_live.models.pose import PoseEstimator

    estimator = PoseEstimator(pose_model, device="cpu")
    image = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    boxes = crowd_boxes(50)
    estimator(image, boxes[:2])  # first-call costs

    def seconds(count: int) -> float:
        best = math.inf
        for _ in range(2):
            started = time.perf_counter()
            poses = estimator(image, boxes[:count])
            best = min(best, time.perf_counter() - started)
        assert poses.keypoints.shape == (count, 17, 2) and poses.scores.shape == (count, 17)
        assert np.isfinite(poses.keypoints).all() and np.array_equal(poses.boxes, boxes[:count])
        return best

    ten, fifty = seconds(10), seconds(50)
    assert fifty < 8 * ten, f"10 persons {ten:.2f} s, 50 persons {fifty:.2f} s"  # linear is 5x; quadratic 25x


def test_fifty_persons_through_the_cli(run_cli, tmp_path):
    """The tiny detector finds persons everywhere: ``--max-persons 50`` keeps 50 on every frame."""
    clip = make_clip(tmp_path / "crowd.mp4", width=1920, height=1080, frames=2, audio=False)
    out, keypoints = tmp_path / "out.mp4", tmp_path / "k.jsonl"

    code, err = run_cli("--source", clip, "--output", out, "--keypoints", keypoints,
                        "--max-persons", 50, "--det-threshold", 0.05)  # fmt: skip

    assert code == 0, err
    frames = keypoint_frames(keypoints)
    assert [len(f["persons"]) for f in frames] == [50, 50]
    assert all(len(p["keypoints"]) == 17 for p in frames[1]["persons"])
    assert probe(out)["frames"] == 2


class BoxesDetector:
    """Stands in for ``PersonDetector``: the same boxes for every image."""

    name = "fixed boxes"

    def __init__(self, boxes, scores):
        from vitpose_live.types import Detections

        self.detections = Detections(np.asarray(boxes, np.float32), np.asarray(scores, np.float32))

    def __call__(self, image, threshold=None, max_persons=None):
        return self.detections

    def detect_batch(self, images, threshold=None, max_persons=None):
        return [self.detections for _ in images]


GOOD_BOXES = [[10, 10, 60, 120], [100, 20, 150, 110]]
BAD_BOXES = [
    [np.nan, 0, 50, 50],
    [30, 30, 30, 80],  # no width
    [0, 0, np.inf, 40],
    [80, 90, 40, 20],  # upside down
    [-np.inf, -np.inf, np.nan, np.nan],
]


def frames_of(count: int, rng) -> list:
    from vitpose_live.types import Frame

    image = rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
    return [Frame(image, i, i / 30, time.monotonic()) for i in range(count)]


def test_nan_and_degenerate_boxes_from_the_detector_are_skipped(pose_model, rng):
    from vitpose_live.engine.engine import PoseEngine
    from vitpose_live.models.pose import PoseEstimator

    boxes = [BAD_BOXES[0], GOOD_BOXES[0], *BAD_BOXES[1:], GOOD_BOXES[1]]
    scores = [0.9] * len(boxes)
    engine = PoseEngine(PoseEstimator(pose_model, device="cpu"), BoxesDetector(boxes, scores))

    one = engine(frames_of(1, rng)[0]).poses
    batch = engine.process_batch(frames_of(2, rng))

    for poses in (one, batch[0].poses, batch[1].poses):
        assert np.array_equal(poses.boxes, np.array(GOOD_BOXES, np.float32))
        assert poses.keypoints.shape == (2, 17, 2) and np.isfinite(poses.keypoints).all()


@pytest.mark.parametrize("det_every", [1, 3])
def test_degenerate_finite_boxes_are_skipped_with_tracking(pose_model, rng, det_every):
    from vitpose_live.engine.engine import PoseEngine
    from vitpose_live.engine.tracking import TrackingStage
    from vitpose_live.models.pose import PoseEstimator

    boxes = [BAD_BOXES[1], GOOD_BOXES[0], BAD_BOXES[3], GOOD_BOXES[1]]
    engine = PoseEngine(PoseEstimator(pose_model, device="cpu"), BoxesDetector(boxes, [0.9] * 4),
                        det_every=det_every, tracking=TrackingStage())  # fmt: skip

    results = [engine(frame) for frame in frames_of(7, rng)]

    assert len(results[-1].poses) == 2 and len(set(results[-1].poses.track_ids)) == 2
    for result in results:
        assert len(result.poses) <= 2 and np.isfinite(result.poses.keypoints).all()


@pytest.mark.parametrize("det_every", [1, 3])
def test_nan_boxes_are_skipped_with_tracking(pose_model, rng, det_every):
    from vitpose_live.engine.engine import PoseEngine
    from vitpose_live.engine.tracking import TrackingStage
    from vitpose_live.models.pose import PoseEstimator

    boxes = [BAD_BOXES[0], GOOD_BOXES[0], BAD_BOXES[2], GOOD_BOXES[1], BAD_BOXES[4]]
    engine = PoseEngine(PoseEstimator(pose_model, device="cpu"), BoxesDetector(boxes, [0.9] * 5),
                        det_every=det_every, tracking=TrackingStage())  # fmt: skip

    results = [engine(frame) for frame in frames_of(7, rng)]

    assert len(results[-1].poses) == 2
    for result in results:
        assert np.isfinite(result.poses.keypoints).all()
