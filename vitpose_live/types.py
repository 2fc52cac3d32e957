"""Typed, frozen records passed between the stages: frames in, detections and poses out.

Numpy arrays on the outside; tensors stay inside the models.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .skeletons import COCO, Skeleton


@dataclass(frozen=True)
class Frame:
    """One decoded picture with where it came from in time.

    ``image`` is HxWx3 uint8 RGB. ``time`` is the presentation time in seconds from the start of
    the source (``None`` when the source has none); ``captured_at`` is ``time.monotonic()`` when the
    frame was read, used for latency.
    """

    image: np.ndarray
    index: int
    time: float | None = None
    captured_at: float = 0.0

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


def _as(array, dtype, shape_tail: tuple[int, ...], name: str) -> np.ndarray:
    out = np.ascontiguousarray(np.asarray(array, dtype=dtype))
    if out.ndim != 1 + len(shape_tail) or tuple(out.shape[1:]) != shape_tail:
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, shape_tail))}), got {out.shape}")
    return out


def valid_boxes(boxes: np.ndarray) -> np.ndarray:
    """Which boxes are usable: finite coordinates and a positive width and height. The one
    definition of a valid box, for the engine and the pose model alike."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    finite = np.isfinite(boxes).all(axis=1)
    with np.errstate(invalid="ignore"):
        return finite & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


@dataclass(frozen=True)
class Detections:
    """Person boxes of one image: ``boxes`` (N,4) float32 xyxy pixels, ``scores`` (N,) float32,
    highest score first."""

    boxes: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(boxes) != len(scores):
            raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
        object.__setattr__(self, "boxes", np.ascontiguousarray(boxes))
        object.__setattr__(self, "scores", np.ascontiguousarray(scores))

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def usable(self) -> Detections:
        """Only the boxes a crop can be made of (:func:`valid_boxes`): a NaN or empty box must
        not reach the tracker or the pose model."""
        keep = valid_boxes(self.boxes)
        return self if keep.all() else Detections(self.boxes[keep], self.scores[keep])


@dataclass(frozen=True)
class Poses:
    """Every person's keypoints in one image.

    ``keypoints`` (N,K,2) float32 image pixels, ``scores`` (N,K) float32, ``boxes`` (N,4) float32
    xyxy, ``box_scores`` (N,) float32, ``track_ids`` (N,) int64 or ``None`` when not tracked.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    keypoint_names: tuple[str, ...] = COCO.keypoint_names
    edges: tuple[tuple[int, int], ...] = COCO.edges
    track_ids: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        k = len(self.keypoint_names)
        keypoints = _as(self.keypoints, np.float32, (k, 2), "keypoints")
        n = len(keypoints)
        set_ = object.__setattr__
        set_(self, "keypoints", keypoints)
        set_(self, "scores", _as(np.reshape(self.scores, (n, k)), np.float32, (k,), "scores"))
        set_(self, "boxes", _as(np.reshape(self.boxes, (n, 4)), np.float32, (4,), "boxes"))
        set_(self, "box_scores", np.ascontiguousarray(np.reshape(self.box_scores, (n,)), dtype=np.float32))
        set_(self, "keypoint_names", tuple(self.keypoint_names))
        set_(self, "edges", tuple((int(a), int(b)) for a, b in self.edges))
        if self.track_ids is not None:
            set_(self, "track_ids", np.ascontiguousarray(np.reshape(self.track_ids, (n,)), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.keypoints)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @classmethod
    def empty(cls, skeleton: Skeleton = COCO) -> Poses:
        k = skeleton.num_keypoints
        return cls(
            np.zeros((0, k, 2), np.float32),
            np.zeros((0, k), np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            skeleton.keypoint_names,
            skeleton.edges,
        )

    def replace(self, **changes) -> Poses:
        return dataclasses.replace(self, **changes)

    def to_supervision(self):
        """The same poses as a ``supervision.KeyPoints`` (lossless: names and edges go in ``data``)."""
        import supervision as sv

        data = {
            "boxes": self.boxes.copy(),
            "keypoint_names": np.array([self.keypoint_names] * len(self), dtype=object).reshape(len(self), -1),
        }
        if self.track_ids is not None:
            data["tracker_id"] = self.track_ids.copy()
        return sv.KeyPoints(
            xy=self.keypoints.copy(),
            class_id=np.zeros(len(self), dtype=int),
            keypoint_confidence=self.scores.copy(),
            detection_confidence=self.box_scores.copy(),
            data=data,
        )
