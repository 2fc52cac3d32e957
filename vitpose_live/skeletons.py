"""Keypoint names and skeleton edges, chosen by the number of keypoints a pose head predicts."""

from __future__ import annotations

from dataclasses import dataclass

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

COCO_EDGES: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12),
    (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10),
    (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip

# Pairs (left, right) swapped when a crop is flipped horizontally.
COCO_FLIP_PAIRS: tuple[tuple[int, int], ...] = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))


@dataclass(frozen=True)
class Skeleton:
    """What a pose head's keypoints are called and how they connect."""

    keypoint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)


COCO = Skeleton(COCO_KEYPOINTS, COCO_EDGES, COCO_FLIP_PAIRS)


def _generic_names(num_keypoints: int) -> tuple[str, ...]:
    return tuple(f"keypoint_{i}" for i in range(num_keypoints))


def _is_real_name(name: str) -> bool:
    return bool(name) and not name.startswith("LABEL_")


_SIDES = (("left", ("left_", "left", "l_")), ("right", ("right_", "right", "r_")))


def side_of(name: str) -> tuple[str | None, str]:
    """(``"left"``, ``"right"`` or ``None``, the rest of the name), for both spellings in use:
    ``left_eye``/``right_eye`` (COCO, COCO-WholeBody) and ``L_Eye``/``R_Eye`` (transformers' ViTPose
    configs, AP-10K)."""
    key = "_".join(name.strip().lower().replace("-", " ").split())
    for side, prefixes in _SIDES:
        for prefix in prefixes:
            if key.startswith(prefix) and len(key) > len(prefix):
                return side, key[len(prefix) :].lstrip("_")
    return None, key


def flip_pairs_for(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """(left, right) index pairs of keypoints whose names differ only by their side."""
    sides = [side_of(name) for name in names]
    rights = {rest: i for i, (side, rest) in enumerate(sides) if side == "right"}
    return tuple((i, rights[rest]) for i, (side, rest) in enumerate(sides) if side == "left" and rest in rights)


def _normalised(name: str) -> str:
    side, rest = side_of(name)
    return f"{side}_{rest}" if side else rest


def skeleton_for(num_keypoints: int, id2label: dict | None = None) -> Skeleton:
    """The COCO skeleton for 17 keypoints named like COCO's (or not named: ``LABEL_i``);
    otherwise names from ``id2label`` (when they are real names) or ``keypoint_i``, with no edges
    and flip pairs found by the left/right naming conventions (:func:`side_of`)."""
    names = _generic_names(num_keypoints)
    if id2label and len(id2label) == num_keypoints:
        labels = [str(id2label.get(i, id2label.get(str(i), ""))) for i in range(num_keypoints)]
        if all(_is_real_name(label) for label in labels):
            names = tuple(labels)
    if num_keypoints == len(COCO_KEYPOINTS) and (
        names == _generic_names(num_keypoints) or tuple(map(_normalised, names)) == COCO_KEYPOINTS
    ):
        return COCO
    return Skeleton(names, (), flip_pairs_for(names))
