"""The one run loop (vitpose_live.runtime.run.run): a file never drops a frame and keeps their
order, a frame's picture and its keypoints line are written both or neither, outputs are
finalised at the end and removed on an error, and batches give the poses single frames give.
The detector is scripted (tests/support/scripted.py); the pose model is the tiny random one."""

import os
import signal

import numpy as np
import pytest
from support.models import pose_processor
from support.scripted import THRESHOLD, ScriptedDetector, write_frames

from vitpose_live.engine.recipe import EngineOptions, FrameSettings, build_engine
from vitpose_live.models.pose import PoseEstimator
from vitpose_live.outputs.base import Outputs
from vitpose_live.runtime.run import RunOptions, run
from vitpose_live.sources import FolderSource

FRAMES = 12


class Records:
    """A keypoint sink that keeps what it is given; ``fail_at``: the frame whose write fails."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at, self.lines, self.closed, self.aborted = fail_at, [], False, False

    def write(self, frame_index, time, poses, **extras) -> None:
        if frame_index == self.fail_at:
            raise OSError(28, "No space left on device")
        self.lines.append((frame_index, poses.keypoints.copy(), poses.scores.copy()))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class Pictures(Records):
    """A picture sink; ``interrupt_at``: the write during which Ctrl-C arrives."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        super().__init__()
        self.interrupt_at, self.pictures = interrupt_at, 0

    def write(self, picture, time=None) -> None:
        assert picture is not None and picture.dtype == np.uint8
        if self.pictures == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # delivered between this write and the keypoints line
        self.pictures += 1


@pytest.fixture
def scripted_run(pose_model, tmp_path):
    """run() over a folder of scripted frames; returns (report, sinks...) per call."""
    folder = tmp_path / "frames"
    frames = write_frames(folder, FRAMES, width=160, height=120)
    pose = PoseEstimator(pose_model, processor=pose_processor(), device="cpu")

    def go(*, outputs: Outputs, delay: float = 0.0, batch: int = 1, **engine_options):
        detector = ScriptedDetector(frames, delay=delay)
        options = EngineOptions(settings=FrameSettings(det_threshold=THRESHOLD), **engine_options)
        engine = build_engine(options, models=(pose, detector))
        return run(FolderSource(folder), engine, outputs, RunOptions(batch=batch, progress=False))

    return go


def test_a_file_never_drops_a_frame_and_keeps_their_order_even_with_a_slow_detector(scripted_run):
    records = Records()
    report = scripted_run(outputs=Outputs(records=[records]), delay=0.02, det_every=1)

    assert [line[0] for line in records.lines] == list(range(FRAMES))
    assert report.frames == FRAMES and report.stats["frames_dropped"] == 0 and not report.interrupted
    assert records.closed and not records.aborted


def test_ctrl_c_during_a_pictures_write_still_writes_its_keypoints_line_and_finalises_both(scripted_run):
    pictures, records = Pictures(interrupt_at=4), Records()
    report = scripted_run(outputs=Outputs(pictures=[pictures], records=[records]))

    assert report.interrupted
    assert pictures.pictures == len(records.lines) == report.frames == 5  # both or neither, for every frame
    assert pictures.closed and records.closed and not (pictures.aborted or records.aborted)


def test_an_error_while_writing_removes_every_output_and_is_raised(scripted_run):
    pictures, records = Pictures(), Records(fail_at=3)

    with pytest.raises(OSError, match="No space left on device"):
        scripted_run(outputs=Outputs(pictures=[pictures], records=[records]))

    assert pictures.aborted and records.aborted
    assert not (pictures.closed or records.closed)


def test_batches_of_frames_give_the_same_poses_as_one_frame_at_a_time(scripted_run):
    single, batched = Records(), Records()
    scripted_run(outputs=Outputs(records=[single]), batch=1)
    scripted_run(outputs=Outputs(records=[batched]), batch=5)  # 5 + 5 + 2 frames per model pass

    assert [line[0] for line in batched.lines] == [line[0] for line in single.lines] == list(range(FRAMES))
    for (_, keypoints_a, scores_a), (_, keypoints_b, scores_b) in zip(single.lines, batched.lines):
        assert len(keypoints_a) == len(keypoints_b) == 2
        assert np.allclose(keypoints_a, keypoints_b, atol=1e-3) and np.allclose(scores_a, scores_b, atol=1e-4)
