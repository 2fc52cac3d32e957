"""PoseEngine's per-call settings: the detector is shared, each engine's thresholds travel with
its calls and nothing is written onto the detector."""

from __future__ import annotations

import time

import numpy as np
from support.models import pose_processor
from support.media import drawn_frame
from support.scripted import A_SCORE, B_SCORE, ScriptedDetector

from vitpose_live.engine.engine import PoseEngine
from vitpose_live.engine.recipe import EngineOptions, FrameSettings, build_engine
from vitpose_live.models.pose import PoseEstimator
from vitpose_live.types import Frame


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
