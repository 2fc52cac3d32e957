"""GPU out of memory (simulated): the pose and detector batches halve, down to one.

Rows of the README's "Reliability" table (split out of the former tests/apps/test_reliability.py).
Every CLI run ends either with exit 0 and outputs that play, or with exit 2, one line on stderr
and no output file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.models import detector_processor
from support.reliability import assert_one_clear_line, crowd_boxes

# --- GPU out of memory --------------------------------------------------------------------------


class RunsOutOfMemoryAbove:
    """A model that raises ``torch.OutOfMemoryError`` for batches above ``limit`` items."""

    def __init__(self, model, limit: int):
        self.model, self.limit = model, limit
        self.batches: list[int] = []

    def __call__(self, pixel_values, **kwargs):
        self.batches.append(int(pixel_values.shape[0]))
        if pixel_values.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.model(pixel_values=pixel_values, **kwargs)


@pytest.mark.parametrize("flip_test", [False, True])
def test_out_of_memory_halves_the_pose_batch_and_gives_the_same_poses(pose_model, rng, flip_test):
    from vitpose_live.models.pose import PoseEstimator

    per_crop = 2 if flip_test else 1  # with flip_test a forward pass holds each crop twice
    normal = PoseEstimator(pose_model, device="cpu", flip_test=flip_test)
    squeezed = PoseEstimator(pose_model, device="cpu", flip_test=flip_test)
    squeezed.model = RunsOutOfMemoryAbove(pose_model, limit=5 * per_crop)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    boxes = crowd_boxes(11, 640, 480)

    expected, got = normal(image, boxes), squeezed(image, boxes)

    assert squeezed.model.batches == [11 * per_crop, 5 * per_crop, 5 * per_crop, 1 * per_crop]  # 11 → 5 (half)
    assert squeezed.max_batch == 5
    assert np.allclose(got.keypoints, expected.keypoints, atol=1e-4)
    assert np.allclose(got.scores, expected.scores, atol=1e-5)
    tried = len(squeezed.model.batches)
    squeezed(image, boxes)  # the smaller batch is kept: no more failed attempts
    assert max(squeezed.model.batches[tried:]) <= 5 * per_crop


def test_out_of_memory_with_a_single_crop_is_one_line_after_halving_down_to_one(pose_model, rng):
    from vitpose_live.models.device import DeviceMemoryError
    from vitpose_live.models.pose import PoseEstimator

    estimator = PoseEstimator(pose_model, device="cpu")
    estimator.model = RunsOutOfMemoryAbove(pose_model, limit=0)

    with pytest.raises(DeviceMemoryError) as caught:
        estimator(rng.integers(0, 256, (100, 100, 3), dtype=np.uint8), [[10, 10, 60, 90]] * 11)
    assert estimator.model.batches == [11, 5, 2, 1]
    assert caught.value.one_line() == str(caught.value)
    assert "out of memory on cpu with a single crop in the pose model" in str(caught.value)


def test_out_of_memory_halves_the_detector_batch_and_gives_the_same_detections(detector_model, rng):
    from vitpose_live.models.detector import PersonDetector

    normal = PersonDetector(detector_model, processor=detector_processor(320), device="cpu", threshold=0.3)
    squeezed = PersonDetector(detector_model, processor=detector_processor(320), device="cpu", threshold=0.3)
    squeezed.model = RunsOutOfMemoryAbove(detector_model, limit=3)
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(8)]

    expected, got = normal.detect_batch(frames), squeezed.detect_batch(frames)

    assert squeezed.model.batches == [8, 4, 2, 2, 2, 2] and squeezed.max_batch == 2
    for a, b in zip(expected, got):
        assert np.allclose(a.boxes, b.boxes, atol=1e-3) and np.allclose(a.scores, b.scores, atol=1e-5)
    squeezed.detect_batch(frames)
    assert squeezed.model.batches[6:] == [2, 2, 2, 2]  # the smaller batch is kept


def test_out_of_memory_in_the_detector_with_one_frame_ends_the_cli_in_one_line(run_cli, tmp_path, small_clips,
                                                                                 monkeypatch):  # fmt: skip
    from vitpose_live.models.detector import PersonDetector

    def always_out_of_memory(self, pixel_values):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore lines")

    monkeypatch.setattr(PersonDetector, "forward", always_out_of_memory)
    out = tmp_path / "out.mp4"

    code, err = run_cli("--source", small_clips[".mp4"], "--output", out, "--batch", 4)

    assert code == 2
    backing_off = [line for line in err.splitlines() if line.startswith("WARNING")]  # 4 → 2 → 1 frames
    assert all("detector batches are now at most" in line for line in backing_off)
    error = "\n".join(line for line in err.splitlines() if not line.startswith("WARNING"))
    assert_one_clear_line(error, "out of memory on cpu with a single frame in the detector", "--detector")
    assert not out.exists()
