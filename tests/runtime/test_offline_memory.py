"""``--smooth offline`` keeps memory flat over a long file: what grows with the file's length is
the track store (228 bytes per person per frame, vitpose_live/analysis/offline.py) and the
analysis made from it, never the frames. Peak resident memory (VmHWM, reset through
/proc/self/clear_refs) over a short and a long run of the same scene, in this process: the long
run may use more by what it stores, plus allocator noise, but not by a fraction of its extra
frames' pixels. Memory, not time, so a loaded machine does not change the verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.media import drawn_frame
from support.models import pose_processor
from support.scripted import ScriptedDetector, write_lossless_clip

from vitpose_live.engine import recipe as recipe_module
from vitpose_live.types import Detections

WIDTH, HEIGHT = 640, 480  # 0.9 MB a frame: 400 frames kept would be 350 MiB
SHORT, LONG = 100, 500
PERSONS = 2
STORE_BYTES = 228  # per person-frame
NOISE = 48 * 2**20  # allocator arenas, the encoder's and decoder's buffers, lazily made caches


def walking(index: int) -> Detections:
    """Two people pacing to and fro across the frame, seen on every frame."""
    x = 20 + (index * 3) % 400
    boxes = [[x, 60, x + 120, 400], [560 - x, 80, 640 - x, 420]]
    return Detections(np.array(boxes, np.float32), np.full(PERSONS, 0.9, np.float32))


def frames(count: int):
    return (drawn_frame(i, WIDTH, HEIGHT) for i in range(count))


def status() -> dict[str, int]:
    """This process' VmRSS and VmHWM (peak RSS) in bytes."""
    with open("/proc/self/status") as f:
        return {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.startswith(("VmRSS", "VmHWM"))}


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux 4.0+)
    except OSError:
        return False
    return status()["VmHWM"] <= status()["VmRSS"] + 2**20


@pytest.fixture
def long_scene(monkeypatch, pose_model, tmp_path):
    """The scene's first ``count`` frames as a lossless clip, the CLI's recipe loading the tiny
    pose model and a detector that plays :func:`walking`."""
    from vitpose_live.models.pose import PoseEstimator

    pose = PoseEstimator(pose_model, processor=pose_processor(), device="cpu")
    detector = ScriptedDetector(frames(LONG), walking)
    monkeypatch.setattr(recipe_module, "load_models", lambda options: (pose, detector))

    def clip(count: int) -> Path:
        return write_lossless_clip(tmp_path / f"scene-{count}.mkv", frames(count))

    return clip


def test_an_offline_run_five_times_longer_grows_by_its_store_not_its_frames(run_cli, long_scene, tmp_path):
    if not reset_peak():
        pytest.skip("needs /proc/self/clear_refs to reset the peak RSS")
    clips = {count: long_scene(count) for count in (SHORT, LONG)}

    def peak_growth(count: int) -> int:
        outputs = ("--keypoints", tmp_path / f"k{count}.jsonl", "--output", tmp_path / f"out{count}.mp4")
        assert reset_peak()
        before = status()["VmRSS"]
        code, err = run_cli("--source", clips[count], "--smooth", "offline", "--det-every", 1, *outputs)
        assert code == 0 and f"done: {count} frame(s)" in err, err
        return status()["VmHWM"] - before

    peak_growth(SHORT)  # warm-up: the first run's one-time allocations (threads, codecs, caches)
    short, long = peak_growth(SHORT), peak_growth(LONG)
    frame_bytes = WIDTH * HEIGHT * 3 * (LONG - SHORT)
    stored = 4 * STORE_BYTES * PERSONS * (LONG - SHORT)  # the store, the analysis' table, the copies between
    assert stored + NOISE < frame_bytes / 4, "the test could not tell a store from kept frames"
    assert long - short <= stored + NOISE, (
        f"{LONG} frames peaked {(long - short) / 2**20:.1f} MiB above {SHORT}; "
        f"their store is {stored / 2**20:.1f} MiB, their frames {frame_bytes / 2**20:.0f} MiB"
    )
