"""Joint angles a coach or physiotherapist reads, from COCO keypoints: degrees from 0 to 180.

Each angle is the one at the middle keypoint of a triple, between the limbs to the other two:
``elbow`` (shoulder-elbow-wrist), ``shoulder`` (hip-shoulder-elbow), ``hip`` (shoulder-hip-knee)
and ``knee`` (hip-knee-ankle), each on the left and the right. A straight limb is 180, a right
angle 90. An angle is unknown (NaN, ``None`` in records) when any of its three keypoints scores at
or under the keypoint threshold, is not finite, or two of them coincide.

Only skeletons with COCO's keypoints get angles (:func:`has_coco_keypoints`); the angles are in
the fixed order of :data:`ANGLE_NAMES` (CSV columns :func:`angle_columns`).
"""

from __future__ import annotations

import numpy as np

from ..skeletons import COCO_KEYPOINTS

__all__ = [
    "ANGLE_NAMES",
    "ANGLE_TRIPLES",
    "angle_columns",
    "angle_names_for",
    "angle_record",
    "angle_summary",
    "has_coco_keypoints",
    "joint_angles",
    "pose_angles",
]

# (angle name, (end, vertex, end)) in the order of the CSV columns: left before right, arm then leg.
ANGLE_TRIPLES: tuple[tuple[str, tuple[str, str, str]], ...] = tuple(
    (f"{side}_{joint}", tuple(f"{side}_{part}" for part in parts))
    for joint, parts in (
        ("elbow", ("shoulder", "elbow", "wrist")),
        ("shoulder", ("hip", "shoulder", "elbow")),
        ("hip", ("shoulder", "hip", "knee")),
        ("knee", ("hip", "knee", "ankle")),
    )
    for side in ("left", "right")
)
ANGLE_NAMES: tuple[str, ...] = tuple(name for name, _ in ANGLE_TRIPLES)
# (A, 3) COCO keypoint indices of each angle's (end, vertex, end).
_INDICES = np.array([[COCO_KEYPOINTS.index(part) for part in parts] for _, parts in ANGLE_TRIPLES], np.intp)


def has_coco_keypoints(keypoint_names) -> bool:
    """Whether a skeleton's keypoints are COCO's 17, in COCO's order (only those get angles)."""
    return tuple(keypoint_names) == COCO_KEYPOINTS


def angle_names_for(keypoint_names) -> tuple[str, ...]:
    """:data:`ANGLE_NAMES` for COCO's keypoints, none for any other skeleton (a keypoints header's
    ``angle_names``)."""
    return ANGLE_NAMES if has_coco_keypoints(keypoint_names) else ()


def angle_columns() -> list[str]:
    """``angle_left_elbow``, ``angle_right_elbow``, ... ``angle_right_knee``: the CSV columns."""
    return [f"angle_{name}" for name in ANGLE_NAMES]


def joint_angles(keypoints, scores, kpt_threshold: float = 0.3) -> np.ndarray:
    """Every person's joint angles: (N, len(ANGLE_NAMES)) float64 degrees in [0, 180], NaN unknown.

    ``keypoints`` (N, 17, 2) COCO keypoints in pixels, ``scores`` (N, 17). A keypoint counts when
    its score is above ``kpt_threshold`` (the drawing rule) and its coordinates are finite.
    """
    keypoints = np.asarray(keypoints, np.float64)
    scores = np.asarray(scores, np.float64)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (len(COCO_KEYPOINTS), 2):
        raise ValueError(f"keypoints must have shape (N, 17, 2) for angles, got {keypoints.shape}")
    if scores.shape != keypoints.shape[:2]:
        raise ValueError(f"scores must have shape {keypoints.shape[:2]}, got {scores.shape}")
    triples = keypoints[:, _INDICES]  # (N, A, 3, 2)
    usable = (scores[:, _INDICES] > kpt_threshold) & np.isfinite(triples).all(-1)  # NaN > t is False
    one = triples[:, :, 0] - triples[:, :, 1]
    two = triples[:, :, 2] - triples[:, :, 1]
    cross = one[..., 0] * two[..., 1] - one[..., 1] * two[..., 0]
    dot = (one * two).sum(-1)
    with np.errstate(invalid="ignore"):
        degrees = np.degrees(np.arctan2(np.abs(cross), dot))  # stable near 0 and 180, unlike arccos
    lengths = np.linalg.norm(one, axis=-1) * np.linalg.norm(two, axis=-1)
    return np.where(usable.all(-1) & (lengths > 0), degrees, np.nan)


def pose_angles(poses, kpt_threshold: float = 0.3) -> np.ndarray | None:
    """:func:`joint_angles` of a :class:`~vitpose_live.types.Poses`; ``None`` when its keypoints
    are not COCO's."""
    if not has_coco_keypoints(poses.keypoint_names):
        return None
    return joint_angles(poses.keypoints, poses.scores, kpt_threshold)


def angle_record(angles, decimals: int = 1) -> dict[str, float | None]:
    """One person's angles (a row of :func:`joint_angles`) as the JSON-ready ``"angles"`` object:
    name to degrees rounded to ``decimals``, ``None`` when unknown."""
    values = np.asarray(angles, np.float64).reshape(-1)
    if len(values) != len(ANGLE_NAMES):
        raise ValueError(f"need {len(ANGLE_NAMES)} angles, got {len(values)}")
    return {
        name: round(float(value), decimals) if np.isfinite(value) else None
        for name, value in zip(ANGLE_NAMES, values.tolist(), strict=True)
    }


def angle_summary(angles) -> list[str]:
    """One person's angles (a row of :func:`joint_angles`) as lines a person reads at a glance,
    one per joint, left then right, ``-`` when unknown: ``["elbow L 92 R 178", ...]`` (the
    window's HUD and the page's live line)."""
    values = dict(zip(ANGLE_NAMES, np.asarray(angles, np.float64).reshape(-1).tolist(), strict=True))

    def degrees(value: float) -> str:
        return f"{value:.0f}" if np.isfinite(value) else "-"

    return [f"{joint} L {degrees(values[f'left_{joint}'])} R {degrees(values[f'right_{joint}'])}"
            for joint in ("elbow", "shoulder", "hip", "knee")]
