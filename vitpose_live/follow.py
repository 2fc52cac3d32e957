"""Choosing one tracked person and keeping them: ``--follow ID|largest|center`` and clicks.

A :class:`Follower` is plain per-frame state, no threads, fed each frame's tracked persons
(``update``); it answers with the track id of the followed person in that frame, or ``None``.

- ``largest`` / ``center``: on the first frame with anybody in it, the person with the largest
  box / the box centre nearest the image centre; then that person's track.
- an id: that track (or, with ``joined``, that person) whenever it is there.
- ``None``: nobody until :meth:`Follower.pick_at` (a click) names someone.

When the followed track is lost, the track that continues it takes over: for files, the joiner's
``joined`` mapping (every track id to its person's id, :mod:`vitpose_live.offline_join`) says
which; live, it is the next *new* track whose box centre comes within ``relink_distance`` box
heights of where the person was last seen, within ``relink_seconds``. After that, ``largest`` and
``center`` choose again among whoever is there; an id (or a click) keeps waiting for its person.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import VitposeError

__all__ = ["FOLLOW_MODES", "FollowError", "Follower", "parse_follow"]

FOLLOW_MODES = ("largest", "center")


class FollowError(VitposeError, ValueError):
    """A ``--follow`` value that is neither a track id nor a mode."""


def parse_follow(text: str | int) -> str | int:
    """``"largest"``, ``"center"`` (``"centre"`` too) or a track id (int >= 0)."""
    value = str(text).strip().lower()
    if value == "centre":
        value = "center"
    if value in FOLLOW_MODES:
        return value
    if value.isdigit():
        return int(value)
    raise FollowError(f"--follow takes a track id (0, 1, ...), 'largest' or 'center', not {str(text)!r}")


@dataclass(frozen=True)
class _Seen:
    """The followed person as last seen: their box and the time."""

    box: np.ndarray
    time: float
    other_ids: frozenset[int] | None = None  # the tracks seen until the loss: a continuation is born later


def _centres(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def _areas(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


class Follower:
    """The followed person, frame by frame (see the module's docstring for the rules).

    Args:
        mode: ``"largest"``, ``"center"``, a track id, or ``None`` (only clicks choose).
        joined: track id -> the id of the person it belongs to (an offline joiner's mapping); then
            the follower follows persons, and proximity relinking is off (the joiner decided).
        relink_seconds: live: how long after a loss a new track may take the person up.
        relink_distance: live: how far from the last seen box centre, in box heights.
        kpt_threshold: keypoints above this score count for clicks.
    """

    def __init__(
        self,
        mode: str | int | None = "largest",
        *,
        joined: Mapping[int, int] | None = None,
        relink_seconds: float = 2.0,
        relink_distance: float = 1.5,
        kpt_threshold: float = 0.3,
    ) -> None:
        self.mode = None if mode is None else parse_follow(mode)
        if relink_seconds < 0 or relink_distance < 0:
            raise ValueError(f"relink limits must be >= 0, got {relink_seconds} s, {relink_distance} heights")
        self.joined = None if joined is None else {int(k): int(v) for k, v in joined.items()}
        self.relink_seconds, self.relink_distance = float(relink_seconds), float(relink_distance)
        self.kpt_threshold = kpt_threshold
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next frame chooses as the first did."""
        self.person: int | None = self._person_of(self.mode) if isinstance(self.mode, int) else None
        self.followed: int | None = None  # the followed track id in the last frame
        self._auto = isinstance(self.mode, str)  # whether the mode may choose (again)
        self._seen: _Seen | None = None
        self._ids_ever: set[int] = set()
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None] | None = None
        self._last_time: float | None = None

    def _person_of(self, track_id: int) -> int:
        """The person a track belongs to (chains in ``joined`` are followed to their end)."""
        if self.joined is None:
            return track_id
        seen = {track_id}
        while (up := self.joined.get(track_id, track_id)) not in seen:
            seen.add(up)
            track_id = up
        return track_id

    def update(
        self,
        ids,
        boxes,
        keypoints=None,
        scores=None,
        *,
        time: float,
        image_size: tuple[int, int] | None = None,
    ) -> int | None:
        """The followed track id among this frame's ``ids`` (N,), or ``None`` when they are not in it.

        ``boxes`` (N,4) xyxy pixels; ``keypoints`` (N,K,2) and ``scores`` (N,K) are kept for
        :meth:`pick_at`; ``time`` in seconds; ``image_size`` (width, height) is needed by ``center``.
        """
        ids = np.asarray(ids, np.int64).reshape(-1)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(ids) != len(boxes):
            raise ValueError(f"{len(ids)} track ids but {len(boxes)} boxes")
        time = float(time)
        if self._last_time is not None and time < self._last_time and self._seen is not None:
            # Time went back (a new stream): the relink window restarts.
            self._seen = _Seen(self._seen.box, time, self._seen.other_ids)
        self._last_time = time
        self._last = (ids, boxes, keypoints, scores)
        index = self._find(ids, boxes, time, image_size)
        if index is None:
            self.followed = None
        else:
            self.followed = int(ids[index])
            self._seen = _Seen(boxes[index].copy(), time)
        self._ids_ever.update(ids.tolist())
        return self.followed

    def update_poses(self, poses, time: float, image_size: tuple[int, int] | None = None) -> int | None:
        """:meth:`update` with a tracked :class:`~vitpose_live.types.Poses`."""
        if poses.track_ids is None:
            raise ValueError("following a person needs tracked poses (track ids)")
        return self.update(
            poses.track_ids, poses.boxes, poses.keypoints, poses.scores, time=time, image_size=image_size
        )

    def _find(self, ids: np.ndarray, boxes: np.ndarray, time: float, image_size) -> int | None:
        if self.person is not None:
            persons = np.array([self._person_of(i) for i in ids.tolist()], np.int64)
            mine = np.flatnonzero(persons == self.person)
            if len(mine):
                return int(mine[np.argmax(_areas(boxes[mine]))])
            if (index := self._relink(ids, boxes, time)) is not None:
                self.person = self._person_of(int(ids[index]))
                return index
            if not self._auto or (self._seen is not None and time - self._seen.time <= self.relink_seconds):
                return None
        if not self._auto or len(ids) == 0:
            return None
        index = self._choose(boxes, image_size)
        self.person = self._person_of(int(ids[index]))
        return index

    def _relink(self, ids: np.ndarray, boxes: np.ndarray, time: float) -> int | None:
        """Live: the new track nearest where the person was lost, when near enough and soon enough."""
        seen = self._seen
        if self.joined is not None or seen is None or time - seen.time > self.relink_seconds:
            return None
        if seen.other_ids is None:  # the first frame without them: every track seen so far is someone else
            seen = self._seen = _Seen(seen.box, seen.time, frozenset(self._ids_ever))
        new = np.array([i not in seen.other_ids for i in ids.tolist()], bool)
        if not new.any():
            return None
        height = max(float(seen.box[3] - seen.box[1]), 1.0)
        distance = np.linalg.norm(_centres(boxes) - _centres(seen.box[None]), axis=1) / height
        distance[~new] = np.inf
        best = int(np.argmin(distance))
        return best if distance[best] <= self.relink_distance else None

    def _choose(self, boxes: np.ndarray, image_size) -> int:
        if self.mode == "largest":
            return int(np.argmax(_areas(boxes)))
        if image_size is None:
            raise ValueError("--follow center needs the image size")
        middle = np.array(image_size, np.float64) / 2
        return int(np.argmin(np.linalg.norm(_centres(boxes) - middle, axis=1)))

    def pick_at(self, x: float, y: float) -> int | None:
        """Follow the person of the last frame at image pixel (x, y): among the boxes that contain
        the point, the one with a confident keypoint nearest to it; when none does, the person
        whose box or keypoints come nearest. Returns their track id (``None``: nobody there)."""
        if self._last is None or len(self._last[0]) == 0:
            return None
        ids, boxes, keypoints, scores = self._last
        point = np.array([x, y], np.float64)
        outside = np.maximum(np.maximum(boxes[:, :2] - point, point - boxes[:, 2:]), 0)
        to_box = np.linalg.norm(outside, axis=1)
        to_keypoint = np.full(len(ids), math.inf)
        if keypoints is not None and scores is not None:
            kp = np.asarray(keypoints, np.float64).reshape(len(ids), -1, 2)
            confident = np.asarray(scores).reshape(len(ids), -1) > self.kpt_threshold
            gaps = np.where(confident, np.linalg.norm(kp - point, axis=-1), math.inf)  # NaN never wins below
            to_keypoint = np.nan_to_num(gaps, nan=math.inf).min(axis=1, initial=math.inf)
        inside = to_box == 0
        if inside.any():
            rank = np.where(inside, to_keypoint, math.inf)
            if not np.isfinite(rank).any():  # no confident keypoint in any of them: the smallest box
                rank = np.where(inside, _areas(boxes), math.inf)
            index = int(np.argmin(rank))
        else:
            index = int(np.argmin(np.minimum(to_box, to_keypoint)))
        self.person = self._person_of(int(ids[index]))
        self._auto = False  # a click is a choice: keep it, do not choose again by the mode
        self.followed = int(ids[index])
        self._seen = _Seen(boxes[index].copy(), self._last_time or 0.0)
        return self.followed

    def release(self) -> None:
        """Follow nobody until the next :meth:`pick_at` (the window's Esc / f)."""
        self.person = self.followed = None
        self._seen = None
        self._auto = False
