"""Joint angles on hand-made COCO keypoints."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vitpose_live.angles import (
    ANGLE_NAMES,
    angle_columns,
    angle_record,
    has_coco_keypoints,
    joint_angles,
    pose_angles,
)
from vitpose_live.skeletons import COCO, COCO_KEYPOINTS, skeleton_for
from vitpose_live.types import Poses

K = len(COCO_KEYPOINTS)
AT = {name: i for i, name in enumerate(COCO_KEYPOINTS)}


def person(points: dict[str, tuple[float, float]], score: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """One person's (1, 17, 2) keypoints and (1, 17) scores; the keypoints not given are far away
    and confident, so only the angles that use the given ones are meaningful."""
    keypoints = np.random.default_rng(0).uniform(1000, 2000, (1, K, 2))
    for name, xy in points.items():
        keypoints[0, AT[name]] = xy
    return keypoints, np.full((1, K), score)


ARM = {"left_shoulder": (0, 0), "left_elbow": (0, 10), "left_wrist": (10, 10)}


def angle(name: str, keypoints, scores, threshold: float = 0.3) -> float:
    return float(joint_angles(keypoints, scores, threshold)[0, ANGLE_NAMES.index(name)])


@pytest.mark.parametrize(
    ("name", "points", "expected"),
    [
        ("left_elbow", {"left_shoulder": (0, 0), "left_elbow": (0, 10), "left_wrist": (10, 10)}, 90.0),
        ("right_elbow", {"right_shoulder": (5, 5), "right_elbow": (5, 25), "right_wrist": (5, 45)}, 180.0),
        ("left_knee", {"left_hip": (0, 0), "left_knee": (0, 10), "left_ankle": (0, 0.0001)}, 0.0),
        ("right_knee", {"right_hip": (0, 0), "right_knee": (0, 10), "right_ankle": (10, 20)}, 135.0),
        ("left_shoulder", {"left_hip": (0, 50), "left_shoulder": (0, 0), "left_elbow": (-30, 0)}, 90.0),
        ("right_hip", {"right_shoulder": (0, 0), "right_hip": (0, 50), "right_knee": (86.6025, 100)}, 120.0),
    ],
)
def test_an_angle_is_the_one_at_the_middle_keypoint(name, points, expected):
    assert angle(name, *person(points)) == pytest.approx(expected, abs=1e-3)


def test_a_straight_limb_is_180_and_a_right_angle_90_whatever_the_rotation():
    for turn in np.linspace(0, 2 * math.pi, 13):
        rotate = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
        straight = {k: tuple(rotate @ v) for k, v in {**ARM, "left_wrist": (0, 25)}.items()}
        bent = {k: tuple(rotate @ v) for k, v in ARM.items()}
        assert angle("left_elbow", *person(straight)) == pytest.approx(180, abs=1e-6)
        assert angle("left_elbow", *person(bent)) == pytest.approx(90, abs=1e-6)


@pytest.mark.parametrize("weak", ["left_shoulder", "left_elbow", "left_wrist"])
def test_an_angle_is_empty_when_any_of_its_keypoints_scores_at_or_under_the_threshold(weak):
    keypoints, scores = person(ARM)
    scores[0, AT[weak]] = 0.3
    assert math.isnan(angle("left_elbow", keypoints, scores, threshold=0.3))
    scores[0, AT[weak]] = 0.31
    assert angle("left_elbow", keypoints, scores, threshold=0.3) == pytest.approx(90)


def test_an_angle_is_empty_when_a_keypoint_is_not_finite_or_two_coincide():
    keypoints, scores = person(ARM)
    keypoints[0, AT["left_wrist"]] = (np.nan, 3)
    assert math.isnan(angle("left_elbow", keypoints, scores))
    keypoints, scores = person({**ARM, "left_wrist": (0, 10)})  # on the elbow
    assert math.isnan(angle("left_elbow", keypoints, scores))


def test_angles_are_computed_for_every_person_at_once():
    first, s1 = person(ARM)
    second, s2 = person({"left_shoulder": (0, 0), "left_elbow": (0, 10), "left_wrist": (0, 20)})
    s2[0, AT["left_knee"]] = 0.0
    angles = joint_angles(np.concatenate([first, second]), np.concatenate([s1, s2]))
    assert angles.shape == (2, len(ANGLE_NAMES))
    column = ANGLE_NAMES.index("left_elbow")
    assert angles[:, column].tolist() == pytest.approx([90, 180])
    assert math.isnan(angles[1, ANGLE_NAMES.index("left_knee")])
    assert not math.isnan(angles[0, ANGLE_NAMES.index("left_knee")])
    assert ((angles[np.isfinite(angles)] >= 0) & (angles[np.isfinite(angles)] <= 180)).all()
    assert joint_angles(np.zeros((0, K, 2)), np.zeros((0, K))).shape == (0, len(ANGLE_NAMES))


def test_the_angle_names_and_csv_columns_are_in_a_fixed_order():
    assert ANGLE_NAMES == ("left_elbow", "right_elbow", "left_shoulder", "right_shoulder",
                           "left_hip", "right_hip", "left_knee", "right_knee")  # fmt: skip
    assert angle_columns()[0] == "angle_left_elbow" and angle_columns()[-1] == "angle_right_knee"


def test_only_coco_keypoints_get_angles():
    assert has_coco_keypoints(COCO.keypoint_names)
    other = skeleton_for(133)
    assert not has_coco_keypoints(other.keypoint_names)
    poses = Poses(np.zeros((1, 133, 2)), np.ones((1, 133)), np.zeros((1, 4)), np.ones(1),
                  other.keypoint_names, other.edges)  # fmt: skip
    assert pose_angles(poses) is None
    keypoints, scores = person(ARM)
    coco = Poses(keypoints, scores, np.zeros((1, 4)), np.ones(1))
    assert pose_angles(coco)[0, 0] == pytest.approx(90)


def test_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match="17, 2"):
        joint_angles(np.zeros((1, 16, 2)), np.zeros((1, 16)))
    with pytest.raises(ValueError, match="scores"):
        joint_angles(np.zeros((1, K, 2)), np.zeros((2, K)))


def test_a_record_names_every_angle_rounded_with_none_for_the_unknown():
    keypoints, scores = person(ARM)
    scores[0, AT["left_knee"]] = 0.0
    record = angle_record(joint_angles(keypoints, scores)[0])
    assert list(record) == list(ANGLE_NAMES)
    assert record["left_elbow"] == 90.0
    assert record["left_knee"] is None and record["left_hip"] is None
    assert all(v is None or (isinstance(v, float) and round(v, 1) == v) for v in record.values())
