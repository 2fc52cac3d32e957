"""Helpers shared by the reliability tests (one per concern, under tests/sources, tests/models,
tests/outputs, tests/apps and tests/runtime): the command line as a child process, its one-line error,
reading back keypoints and pictures, crowds of boxes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[2]


def cli_command(pose_dir, detector_dir, *args) -> list[str]:
    return [sys.executable, "app.py", "--model", pose_dir, "--detector", detector_dir, "--device", "cpu",
            *map(str, args)]  # fmt: skip


def child_env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def assert_one_clear_line(stderr: str, *words: str) -> None:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(("vitpose-live: error:", "app.py: error:")) and "Traceback" not in stderr, stderr
    for word in words:
        assert word in lines[0], lines[0]


def keypoint_frames(path: Path) -> list[dict]:
    from vitpose_live.outputs.records import read_keypoints_jsonl

    return read_keypoints_jsonl(path)[1]


def first_picture(path: Path) -> tuple[np.ndarray, int]:
    """The first decoded RGB picture of a video as stored (no display matrix applied) and the
    rotation a player would apply to it."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24"), int(frame.rotation or 0)


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def crowd_boxes(count: int, width: int = 1920, height: int = 1080, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sizes = rng.uniform([60, 150], [220, 300], (count, 2))
    corners = rng.uniform(0, [width - 220, height - 300], (count, 2))
    return np.concatenate([corners, corners + sizes], axis=1).astype(np.float32)
