"""The PoseEngine and its recipe (EngineOptions -> build_engine) on files: detection on every
``det_every``-th frame inline, settings replaced between frames, reset, and batches of frames.
The detector is scripted (tests/support/scripted.py), so who is in each frame is known; the pose
model is the tiny random one. (Live detection: tests/engine/test_live_runtime.py.)"""

import time

import numpy as np
import pytest
from support.models import pose_processor
from support.media import drawn_frame
from support.scripted import A_SCORE, B_SCORE, THRESHOLD, ScriptedDetector, write_frames

from vitpose_live.engine.engine import PoseEngine
from vitpose_live.engine.recipe import EngineOptions, FrameSettings, build_engine
from vitpose_live.models.pose import PoseEstimator
from vitpose_live.types import Frame


@pytest.fixture
def scene(pose_model, tmp_path):
    """(frames as Frame objects, a recipe-built engine maker, the scripted detector)."""
    pictures = write_frames(tmp_path / "frames", 8)
    detector = ScriptedDetector(pictures)
    pose = PoseEstimator(pose_model, processor=pose_processor(), device="cpu")
    frames = [Frame(image, i, i / 30, time.monotonic()) for i, image in enumerate(pictures)]

    def engine(**options):
        settings = FrameSettings(det_threshold=THRESHOLD)
        return build_engine(EngineOptions(settings=settings, **options), models=(pose, detector))

    return frames, engine, detector


def test_a_file_detects_inline_on_every_det_every_th_frame_and_tracks_between(scene):
    frames, make, detector = scene
    engine = make(det_every=3)

    results = [engine(frame) for frame in frames]

    assert detector.frames_seen == [0, 3, 6]
    assert [r.detected for r in results] == [i % 3 == 0 for i in range(8)]
    assert [len(r.poses) for r in results] == [2] * 8  # A and B, above the threshold, on every frame
    assert all(r.detection_age_ms is None for r in results)  # inline: no detection is older than its frame


def test_a_person_cap_set_between_frames_applies_on_the_next_frame_and_keeps_the_first_persons_track(scene):
    frames, make, _ = scene
    engine = make(tracking=True)
    before = engine(frames[0]).poses
    best = int(before.track_ids[int(np.argmax(before.box_scores))])

    engine.settings = FrameSettings(det_threshold=THRESHOLD, max_persons=1)
    after = engine(frames[1]).poses

    assert len(before) == 2 and len(after) == 1
    assert after.track_ids.tolist() == [best]  # the highest-scoring person, under the same id
    assert engine.settings.max_persons == 1


def test_reset_detects_on_the_next_frame_and_gives_new_ids(scene):
    frames, make, detector = scene
    engine = make(det_every=4)
    first = [engine(frame).poses for frame in frames[:2]]

    engine.reset()
    again = engine(frames[2])

    assert detector.frames_seen == [0, 2]  # frame 2 would be a tracked-only frame without the reset
    assert again.detected and len(again.poses) == 2
    assert not set(again.poses.track_ids.tolist()) & set(first[-1].track_ids.tolist())


def test_a_batch_of_frames_gives_the_same_poses_as_one_frame_at_a_time(scene):
    frames, make, _ = scene
    engine = make()  # det_every 1, no smoothing: no tracking, so batches are allowed
    assert engine.tracking is None

    one_by_one = [engine(frame) for frame in frames]
    batched = engine.process_batch(frames[:5]) + engine.process_batch(frames[5:])

    assert [r.frame.index for r in batched] == list(range(8))
    for single, batch in zip(one_by_one, batched):
        assert len(single.poses) == len(batch.poses) == 2
        assert np.allclose(single.poses.boxes, batch.poses.boxes)
        assert np.allclose(single.poses.keypoints, batch.poses.keypoints, atol=1e-3)
        assert np.allclose(single.poses.scores, batch.poses.scores, atol=1e-4)


def test_the_recipe_turns_tracking_on_for_det_every_and_smoothing_and_refuses_bad_values():
    assert EngineOptions(det_every=2).tracking and EngineOptions(settings=FrameSettings(smooth=True)).tracking
    assert EngineOptions(live=True).tracking and not EngineOptions().tracking
    with pytest.raises(ValueError, match="det_every must be at least 1"):
        EngineOptions(det_every=0)
    with pytest.raises(ValueError, match="det threshold must be between 0 and 1"):
        FrameSettings(det_threshold=1.5)


def test_two_engines_over_one_detector_keep_their_own_thresholds_and_person_caps(pose_model):
    image = drawn_frame(0, 320, 240)
    detector = ScriptedDetector([image])
    pose = PoseEstimator(pose_model, processor=pose_processor(), device="cpu")
    strict = build_engine(EngineOptions(settings=FrameSettings(det_threshold=(A_SCORE + B_SCORE) / 2)), (pose, detector))
    loose = build_engine(EngineOptions(settings=FrameSettings(det_threshold=0.1, max_persons=2)), (pose, detector))
    frame = Frame(image, 0, 0.0, time.monotonic())

    assert len(strict(frame).poses) == 1  # A only
    assert len(loose(frame).poses) == 2  # A and B (C too, but capped at 2)
    assert len(strict(frame).poses) == 1
    assert strict.detector is loose.detector is detector  # shared, not copied
    assert (detector.threshold, detector.max_persons) == (0.5, None)  # and never written onto


def test_an_engine_without_settings_uses_the_detectors_own_threshold(pose_model):
    image = drawn_frame(0, 320, 240)
    detector = ScriptedDetector([image])
    detector.threshold = 0.1
    engine = PoseEngine(PoseEstimator(pose_model, processor=pose_processor(), device="cpu"), detector)

    poses = engine(Frame(image, 0, 0.0, time.monotonic())).poses

    assert len(poses) == 3 and np.isclose(poses.box_scores.max(), A_SCORE)
    assert engine.settings.det_threshold == 0.1
