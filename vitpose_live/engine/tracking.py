"""Person ids across frames, boxes for frames without a detection, and keypoint smoothing.

The live pipeline runs the person detector only every N frames. :class:`TrackingStage` holds the
policy for that; the pieces it uses are:

- :class:`PersonTracker`: ByteTrack (``trackers`` package) on the frames where the detector ran;
- :func:`boxes_from_keypoints`: a box around each person's keypoints, for the frames in between;
- :class:`~.smoothing.PoseSmoother` (:mod:`.smoothing`): per-track keypoint smoothing.

Everything here is plain state, no threads: call it from one thread.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ..defaults import DET_THRESHOLD, KPT_THRESHOLD
from ..types import Detections, Poses
from .smoothing import PoseSmoother

__all__ = [
    "PersonTracker",
    "TrackingStage",
    "boxes_from_keypoints",
]

log = logging.getLogger(__name__)

_NO_IDS = np.zeros((0,), np.int64)


class PersonTracker:
    """Stable person ids from detector boxes, with ByteTrack.

    Call :meth:`update` on the frames where the detector ran, and only those (this is how
    :class:`TrackingStage` uses it). ``trackers``' ByteTrack needs no image and need not see every
    frame: given ``frame_time`` it predicts each track's box over the real time since the last
    call (its Kalman step is scaled by ``elapsed * frame_rate``) and expires lost tracks after
    ``lost_track_seconds`` of wall time, however many frames were skipped. Without ``frame_time``
    every call counts as one frame at ``frame_rate``, so pass the rate of the *calls* then
    (camera fps / N).

    The rule, the same for files and live sources: a detection scoring at least ``threshold``
    starts a track and gets its id on the detector pass that first sees it (``trackers`` would
    wait for a second pass; we name the new tracklets ourselves, so a person is drawn as soon as a
    file run would draw them). Weaker detections, down to the detector's own floor, can only keep
    an existing track alive (ByteTrack's second stage).

    Why not feed it the keypoint boxes of the frames in between as well: those boxes come from
    the tracks themselves, so matching them would keep every track alive forever, including one
    the detector no longer finds.

    Args:
        frame_rate: frames per second of the calls when no ``frame_time`` is given; with
            ``frame_time`` it only sizes the first Kalman step.
        lost_track_seconds: how long a track survives without a matching detection (1 s: long
            enough to bridge a missed detection or a short occlusion, short enough that someone
            else walking in at the same place is not given the old id).
        threshold: the detection score that starts a track and is matched first (the user's
            ``--det-threshold``); settable between calls.
        minimum_iou_threshold: lowest IoU between a predicted track box and a detection to match.
    """

    def __init__(
        self,
        frame_rate: float = 30.0,
        *,
        lost_track_seconds: float = 1.0,
        threshold: float = DET_THRESHOLD,
        minimum_iou_threshold: float = 0.1,
    ) -> None:
        from trackers import ByteTrackTracker

        if lost_track_seconds < 0:
            raise ValueError(f"lost_track_seconds must be >= 0, got {lost_track_seconds}")
        # trackers counts the buffer in frames of a 30 fps video (seconds = buffer / 30).
        self._tracker = ByteTrackTracker(
            lost_track_buffer=round(lost_track_seconds * 30),
            frame_rate=frame_rate,
            track_activation_threshold=threshold,
            minimum_consecutive_frames=1,
            minimum_iou_threshold=minimum_iou_threshold,
            high_conf_det_threshold=threshold,
        )
        self._last_time: float | None = None
        self._next_id = 0  # ids are ours and never reused, across resets too

    @property
    def threshold(self) -> float:
        return float(self._tracker.track_activation_threshold)

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._tracker.track_activation_threshold = float(value)
        self._tracker.high_conf_det_threshold = float(value)

    def update(
        self, detections: Detections, frame_time: float | None = None
    ) -> tuple[Detections, np.ndarray]:
        """Match this frame's detections to the tracks.

        Returns the detections that belong to a track (the detector's own boxes and scores, not
        the Kalman estimates), highest score first, and their ids (N,) int64. Dropped: weak
        detections that match no track.

        ``frame_time`` (seconds) should not decrease; when it does (a file looped, a camera
        reconnected) the tracks are cleared first. A repeated time is matched without moving
        the tracks (``trackers`` warns about it).
        """
        import supervision as sv

        if frame_time is not None:
            frame_time = float(frame_time)
            if not math.isfinite(frame_time):
                raise ValueError(f"frame_time must be finite or None, got {frame_time}")
            if self._last_time is not None and frame_time < self._last_time:
                log.info(
                    "time went back from %.3f s to %.3f s: clearing the tracks", self._last_time, frame_time
                )
                self.reset()
            self._last_time = frame_time

        n = len(detections)
        tracked = self._tracker.update(
            sv.Detections(xyxy=detections.boxes, confidence=detections.scores, class_id=np.zeros(n, int)),
            timestamp=frame_time,
        )
        boxes = np.asarray(tracked.xyxy, np.float32).reshape(-1, 4)
        scores = np.asarray(tracked.confidence, np.float32).reshape(-1)
        ids = self._name_newborn(boxes, np.asarray(tracked.tracker_id, np.int64).reshape(-1))
        keep = ids >= 0
        if not keep.any():
            return Detections.empty(), _NO_IDS.copy()
        boxes, scores, ids = boxes[keep], scores[keep], ids[keep]
        order = np.lexsort((ids, -scores))
        return Detections(boxes[order], scores[order]), ids[order]

    def _name_newborn(self, boxes: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Ids for the tracklets this update started (``trackers`` leaves them at -1 until their
        second match); each is found by its first box, which is its detection's box."""
        ids = ids.copy()
        for tracklet in self._tracker.tracks:
            if tracklet.tracker_id != -1:
                continue
            tracklet.tracker_id = self._next_id
            self._next_id += 1
            unnamed = np.flatnonzero(ids == -1)
            if len(unnamed):
                gap = np.abs(boxes[unnamed] - tracklet.get_state_bbox().reshape(1, 4)).max(axis=1)
                ids[unnamed[int(np.argmin(gap))]] = tracklet.tracker_id
        return ids

    def reset(self) -> None:
        """Forget every track. Ids keep counting up, so a new person never gets an old id."""
        self._tracker.reset()
        self._last_time = None


def boxes_from_keypoints(
    poses: Poses,
    *,
    kpt_threshold: float = KPT_THRESHOLD,
    padding: float = 1.25,
    min_keypoints: int = 3,
    image_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """A person box (N,4) float32 xyxy around each person's confident keypoints.

    For the frames without a detection: the box for the next frame comes from this frame's pose.
    The box spanned by the keypoints scoring at least ``kpt_threshold`` is grown about its centre
    by ``padding`` in width and height. Keypoints sit at joint centres, inside the body outline a
    detector draws its box around: the top of the head is above the eyes and ears, the feet reach
    below the ankles, the body's sides lie outside shoulders and hips. Growing the keypoint box by
    12.5 % per side (``padding=1.25``) brings it back to about the detector's box, so ViTPose's own
    crop, which adds another 1.25 around whatever box it gets, sees the person as it does on the
    detector's frames. Do not add ViTPose's 1.25 here as well.

    A person with fewer than ``min_keypoints`` confident, finite keypoints (or whose keypoints all
    fall on one point) keeps ``poses.boxes``, the box the pose was estimated in. With
    ``image_size=(width, height)`` the boxes are clipped to the image. Non-finite keypoints count
    as not confident, so no NaN comes out when ``poses.boxes`` is finite.
    """
    if padding <= 0:
        raise ValueError(f"padding must be positive, got {padding}")
    keypoints = poses.keypoints.astype(np.float64)
    usable = (poses.scores >= kpt_threshold) & np.isfinite(keypoints).all(axis=-1)  # NaN >= t is False
    inside = usable[..., None]
    low = np.where(inside, keypoints, np.inf).min(axis=1)  # (N, 2)
    high = np.where(inside, keypoints, -np.inf).max(axis=1)
    enough = (usable.sum(axis=1) >= max(min_keypoints, 1)) & ((high - low).max(axis=1, initial=0.0) > 0)

    boxes = poses.boxes.astype(np.float64)  # a copy
    if enough.any():
        centre = (low[enough] + high[enough]) / 2
        half = (high[enough] - low[enough]) * (padding / 2)
        boxes[enough] = np.concatenate([centre - half, centre + half], axis=1)
    if image_size is not None:
        width, height = image_size
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    return boxes.astype(np.float32)


class TrackingStage:
    """Boxes and ids for every frame from a detector that runs only on some, then smoothing.

    Per frame::

        dets, ids = stage.boxes(detections_or_None, frame.time, (frame.width, frame.height))
        poses = pose_model(frame, dets).replace(track_ids=ids)
        poses = stage.poses(poses, frame.time)

    On a detector frame the tracker matches the detections and returns the tracked ones. On
    the other frames each person of the previous frame's poses gets a box around their keypoints
    (:func:`boxes_from_keypoints`) and keeps their id: box *i* comes from person *i*. A person the
    detector stops finding is dropped at the next detector frame.

    A *late* detection (live sources: computed on an earlier frame, by the detector's own thread)
    is matched against the tracks as they were at that frame's time (the tracker only ever sees
    detection times). A person already posed keeps the box of their latest keypoints, which is
    newer than the detection's; only newcomers take the detection's box.
    """

    def __init__(
        self,
        tracker: PersonTracker | None = None,
        smoother: PoseSmoother | None = None,
        *,
        kpt_threshold: float = KPT_THRESHOLD,
        padding: float = 1.25,
        min_keypoints: int = 3,
    ) -> None:
        self.tracker = tracker if tracker is not None else PersonTracker()
        self.smoother = smoother
        self.kpt_threshold = kpt_threshold
        self.padding, self.min_keypoints = padding, min_keypoints
        self._last: Poses | None = None

    def _keypoint_boxes(self, image_size: tuple[int, int] | None, kpt_threshold: float | None) -> np.ndarray:
        return boxes_from_keypoints(
            self._last, kpt_threshold=self.kpt_threshold if kpt_threshold is None else kpt_threshold,
            padding=self.padding,
            min_keypoints=self.min_keypoints, image_size=image_size,
        )

    def boxes(
        self,
        detections: Detections | None,
        time: float | None = None,
        image_size: tuple[int, int] | None = None,
        *,
        detected_at: float | None = None,
        kpt_threshold: float | None = None,
    ) -> tuple[Detections, np.ndarray]:
        """The boxes to estimate poses in and their track ids (N,) int64. ``detected_at``: the
        time of the frame a late detection was computed on (default: this frame's);
        ``kpt_threshold``: the keypoints a box is drawn around (None: this stage's own)."""
        last = self._last
        known = self.following
        if detections is None:
            if not known:
                return Detections.empty(), _NO_IDS.copy()
            return Detections(self._keypoint_boxes(image_size, kpt_threshold), last.box_scores), last.track_ids.copy()
        late = detected_at is not None and detected_at != time
        tracked, ids = self.tracker.update(detections, detected_at if late else time)
        if not (late and known) or len(ids) == 0:
            return tracked, ids
        newest = dict(zip(last.track_ids.tolist(), self._keypoint_boxes(image_size, kpt_threshold)))
        boxes = np.stack([newest.get(i, box) for i, box in zip(ids.tolist(), tracked.boxes)])
        return Detections(boxes, tracked.scores), ids

    @property
    def following(self) -> bool:
        """Whether the last frame's poses have anyone to follow into the next frame."""
        last = self._last
        return last is not None and len(last) > 0 and last.track_ids is not None

    def poses(self, poses: Poses, time: float | None = None, kpt_threshold: float | None = None) -> Poses:
        """Remember the raw poses for the next frame's boxes; smoothed when there is a smoother
        (keypoints under ``kpt_threshold`` stay raw; None: the smoother's own)."""
        self._last = poses
        if self.smoother is None:
            return poses
        if time is None:
            raise ValueError("smoothing needs the frame time")
        return self.smoother(poses, time, kpt_threshold)

    def reset(self) -> None:
        self.tracker.reset()
        if self.smoother is not None:
            self.smoother.reset()
        self._last = None
