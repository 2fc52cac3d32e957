"""Offline analysis of a whole file's tracks: join tracklets, fill short gaps, smooth without lag.

A run fills a :class:`TrackStore` frame by frame (keypoints, no pixels); once the file has been
read, :func:`analyse` joins the tracklets of one person (:func:`~vitpose_live.analysis.joining.join_tracklets`),
fills gaps of up to ``fill_gaps`` frames (:func:`fill_gaps`) and smooths every track
(:func:`~vitpose_live.analysis.smoothing.smooth_series`). The :class:`Analysis` it returns answers
:meth:`Analysis.poses_at` for each frame index, so a second decode of the file can draw and
write frame by frame.

Memory: a sighting (one person in one frame) costs ``4 + 12 K + 20`` bytes in the store (frame
int32, keypoints float32 (K, 2), scores float32 (K,), box float32 (4,), box score float32): 228 B
for COCO's 17 keypoints, so an hour at 30 fps with 5 persons always in view is 123 MB, whatever
the resolution. A track grows in chunks that double up to 1024 sightings, so a short tracklet
wastes at most its own size and a long track at most one chunk. :func:`analyse` holds the store,
its result (the same size plus an interpolated flag per row and an offset per frame) and one
track's work at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..defaults import FILL_GAPS
from .joining import Joining, JoinSettings, join_tracklets
from .smoothing import SmoothSettings, smooth_series
from ..skeletons import COCO
from ..types import Poses

__all__ = ["Analysis", "AnalysisSettings", "FramePoses", "Track", "TrackStore", "analyse", "fill_gaps"]

_FIRST_CHUNK, _LAST_CHUNK = 4, 1024


@dataclass(frozen=True)
class Track:
    """One person's sightings in frame order: ``frames`` (T,) int64 strictly increasing,
    ``keypoints`` (T, K, 2) float32, ``scores`` (T, K) float32, ``boxes`` (T, 4) float32 xyxy,
    ``box_scores`` (T,) float32, ``interpolated`` (T,) bool (filled in, not seen)."""

    track_id: int
    frames: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    interpolated: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)

    @classmethod
    def concatenate(cls, track_id: int, parts: Iterable[Track]) -> Track:
        """The sightings of ``parts`` as one track, in frame order (they must not share a frame)."""
        parts = sorted(parts, key=lambda part: int(part.frames[0]))
        fields = ("frames", "keypoints", "scores", "boxes", "box_scores", "interpolated")
        return cls(track_id, *(np.concatenate([getattr(p, name) for p in parts]) for name in fields))


class _Series:
    """One track's columns, in chunks that double in size up to ``_LAST_CHUNK`` rows."""

    def __init__(self, k: int) -> None:
        self.k, self.chunks, self.used = k, [], 0  # used: rows filled in the last chunk

    def _grow(self) -> None:
        rows = min(_FIRST_CHUNK << len(self.chunks), _LAST_CHUNK)
        k = self.k
        self.chunks.append((np.empty(rows, np.int32), np.empty((rows, k, 2), np.float32),
                            np.empty((rows, k), np.float32), np.empty((rows, 4), np.float32),
                            np.empty(rows, np.float32)))  # fmt: skip
        self.used = 0

    def append(self, frame: int, keypoints, scores, box, box_score) -> None:
        if not self.chunks or self.used == len(self.chunks[-1][0]):
            self._grow()
        for column, value in zip(self.chunks[-1], (frame, keypoints, scores, box, box_score)):
            column[self.used] = value
        self.used += 1

    @property
    def last_frame(self) -> int:
        return int(self.chunks[-1][0][self.used - 1])

    def column(self, i: int) -> np.ndarray:
        parts = [chunk[i] for chunk in self.chunks[:-1]] + [self.chunks[-1][i][: self.used]]
        return np.concatenate(parts)

    @property
    def nbytes(self) -> int:
        return sum(column.nbytes for chunk in self.chunks for column in chunk)

    def __len__(self) -> int:
        return sum(len(chunk[0]) for chunk in self.chunks[:-1]) + self.used


class TrackStore:
    """Every tracked person's keypoints over a run, filled one frame at a time with :meth:`add`."""

    def __init__(self, keypoint_names: tuple[str, ...] = COCO.keypoint_names,
                 edges: tuple[tuple[int, int], ...] = COCO.edges) -> None:  # fmt: skip
        self.keypoint_names, self.edges = tuple(keypoint_names), tuple(edges)
        self._series: dict[int, _Series] = {}
        self.frames = 0  # one past the highest frame index added

    def add(self, frame_index: int, poses: Poses) -> None:
        """Keep ``poses`` (tracked: ``track_ids`` set) as frame ``frame_index``'s sightings.
        Frame indices must increase from call to call; a frame with nobody still counts."""
        frame_index = int(frame_index)
        if frame_index < self.frames:
            raise ValueError(f"frame {frame_index} comes after frame {self.frames - 1}: frames must increase")
        if poses.keypoint_names != self.keypoint_names:
            raise ValueError(
                f"poses have {poses.num_keypoints} keypoints, the store {len(self.keypoint_names)}"
            )
        if len(poses) and poses.track_ids is None:
            raise ValueError("offline analysis needs tracked poses (track_ids)")
        self.frames = frame_index + 1
        ids = [] if poses.track_ids is None else poses.track_ids.tolist()
        if len(set(ids)) != len(ids):
            raise ValueError(f"frame {frame_index} has a track id twice: {ids}")
        for i, track_id in enumerate(ids):
            series = self._series.get(track_id)
            if series is None:
                series = self._series[track_id] = _Series(len(self.keypoint_names))
            series.append(
                frame_index, poses.keypoints[i], poses.scores[i], poses.boxes[i], poses.box_scores[i]
            )

    @property
    def track_ids(self) -> list[int]:
        return sorted(self._series)

    def motion(self, track_id: int) -> tuple[np.ndarray, np.ndarray]:
        """A track's frames (T,) int64 and boxes (T, 4) float32, without its keypoints."""
        series = self._series[track_id]
        return series.column(0).astype(np.int64), series.column(3)

    def track(self, track_id: int) -> Track:
        series = self._series[track_id]
        frames, keypoints, scores, boxes, box_scores = (series.column(i) for i in range(5))
        return Track(track_id, frames.astype(np.int64), keypoints, scores, boxes, box_scores,
                     np.zeros(len(frames), bool))  # fmt: skip

    @property
    def sightings(self) -> int:
        return sum(len(series) for series in self._series.values())

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored columns (chunks included, filled or not)."""
        return sum(series.nbytes for series in self._series.values())

    @property
    def bytes_per_sighting(self) -> int:
        """What one person in one frame costs once chunks are full: ``4 + 12 K + 20``."""
        return 4 + 12 * len(self.keypoint_names) + 20


def _gaps(frames: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frames to fill between sightings ``frames``: for each, the sighting it comes after and
    how many frames after it (1, 2, ...); and the size of every gap filled."""
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    missing = np.diff(frames) - 1
    gaps = np.flatnonzero((missing >= 1) & (missing <= max_gap))
    counts = missing[gaps]
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    return np.repeat(gaps, counts), step, counts


def fill_gaps(track: Track, max_gap: int) -> Track:
    """``track`` with every run of at most ``max_gap`` missing frames between two sightings filled
    in: keypoints, scores, boxes and box scores interpolated linearly, ``interpolated`` true.
    (Smoothing then refines the filled keypoints from the frames around them.)"""
    before, step, counts = _gaps(track.frames, max_gap)
    if len(before) == 0:
        return track
    share = (step / np.repeat(counts + 1, counts)).astype(np.float32)
    new_frames = track.frames[before] + step

    def between(values: np.ndarray) -> np.ndarray:
        s = share.reshape((-1,) + (1,) * (values.ndim - 1))
        return (values[before] * (1 - s) + values[before + 1] * s).astype(values.dtype)

    order = np.argsort(np.concatenate([track.frames, new_frames]), kind="stable")
    merged = [np.concatenate([old, new])[order] for old, new in (
        (track.frames, new_frames), (track.keypoints, between(track.keypoints)), (track.scores, between(track.scores)),
        (track.boxes, between(track.boxes)), (track.box_scores, between(track.box_scores)),
        (track.interpolated, np.ones(len(new_frames), bool)))]  # fmt: skip
    return Track(track.track_id, *merged)


def _runs(frames: np.ndarray) -> list[slice]:
    """The stretches of consecutive frames."""
    cuts = np.flatnonzero(np.diff(frames) > 1) + 1
    edges = [0, *cuts.tolist(), len(frames)]
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


def smooth_track(track: Track, fps: float, settings: SmoothSettings | None = None) -> tuple[Track, int]:
    """``track`` with smoothed keypoints, each stretch of consecutive frames on its own (an
    unfilled gap is not smoothed across), and how many one-frame jumps were rejected."""
    settings = settings or SmoothSettings()
    keypoints, rejected = track.keypoints.copy(), 0
    for run in _runs(track.frames):
        keypoints[run], jumps = smooth_series(track.keypoints[run], track.scores[run], fps, settings,
                                              track.interpolated[run])  # fmt: skip
        rejected += jumps
    return Track(track.track_id, track.frames, keypoints, track.scores, track.boxes, track.box_scores,
                 track.interpolated), rejected  # fmt: skip


@dataclass(frozen=True)
class AnalysisSettings:
    """What :func:`analyse` does: ``join`` tracklets (:class:`JoinSettings`), ``fill_gaps`` up to
    that many missing frames (0: none), ``smooth`` (:class:`SmoothSettings`; None: not at all)."""

    join: JoinSettings | None = field(default_factory=JoinSettings)
    fill_gaps: int = FILL_GAPS
    smooth: SmoothSettings | None = field(default_factory=SmoothSettings)


@dataclass(frozen=True)
class FramePoses:
    """One frame of an :class:`Analysis`: the tracked poses (ids ascending) and, per person,
    whether they were filled in rather than seen (N,) bool."""

    poses: Poses
    interpolated: np.ndarray


class Analysis:
    """The analysed tracks, one flat table sorted by frame then id, answering per frame."""

    def __init__(self, frames: int, columns: dict[str, np.ndarray], offsets: np.ndarray,
                 joining: Joining, rejected: int, names, edges) -> None:  # fmt: skip
        self.frames, self._columns, self._offsets = frames, columns, offsets
        self.joining, self.rejected_jumps = joining, rejected
        self._names, self._edges = names, edges

    def poses_at(self, frame_index: int) -> FramePoses:
        if not 0 <= frame_index < self.frames:
            raise IndexError(f"frame {frame_index} is outside the analysed 0..{self.frames - 1}")
        rows = slice(int(self._offsets[frame_index]), int(self._offsets[frame_index + 1]))
        c = {name: column[rows] for name, column in self._columns.items()}
        poses = Poses(c["keypoints"], c["scores"], c["boxes"], c["box_scores"], self._names, self._edges,
                      track_ids=c["track_ids"])  # fmt: skip
        return FramePoses(poses, c["interpolated"].copy())

    @property
    def nbytes(self) -> int:
        return sum(column.nbytes for column in self._columns.values()) + self._offsets.nbytes

    def summary(self) -> dict:
        """Counts for a run's summary and ``--stats-json``."""
        return {"tracklets_joined": self.joining.joins, "tracks": len(set(self.joining.mapping.values())),
                "interpolated": int(self._columns["interpolated"].sum()),
                "rejected_jumps": self.rejected_jumps}  # fmt: skip


def _chains(store: TrackStore, joining: Joining) -> dict[int, list[int]]:
    chains: dict[int, list[int]] = {}
    for old in store.track_ids:
        chains.setdefault(joining.mapping.get(old, old), []).append(old)
    return chains


def _filled_frames(store: TrackStore, chain: list[int], max_gap: int) -> np.ndarray:
    """The frames a joined, filled track will have (as :func:`fill_gaps` makes them)."""
    frames = np.sort(np.concatenate([store.motion(i)[0] for i in chain]))
    before, step, _ = _gaps(frames, max_gap)
    return np.sort(np.concatenate([frames, frames[before] + step]))


def analyse(store: TrackStore, fps: float, settings: AnalysisSettings | None = None) -> Analysis:
    """Join, fill, then smooth every track of ``store`` (a file run at ``fps`` frames per second)."""
    settings = settings or AnalysisSettings()
    joining = (
        join_tracklets(store, fps, settings.join)
        if settings.join is not None
        else Joining.none(store.track_ids)
    )
    chains = _chains(store, joining)
    # Where each track's rows go in the frame-major table, known from frame numbers alone.
    frames_of = {joined: _filled_frames(store, chain, settings.fill_gaps) for joined, chain in chains.items()}
    counts = np.zeros(store.frames, np.int64)
    for frames in frames_of.values():
        counts[frames] += 1
    sizes = {joined: len(frames) for joined, frames in frames_of.items()}
    del frames_of
    offsets = np.concatenate([[0], np.cumsum(counts)])
    total, k = int(offsets[-1]), len(store.keypoint_names)
    columns = {"track_ids": np.empty(total, np.int64), "keypoints": np.empty((total, k, 2), np.float32),
               "scores": np.empty((total, k), np.float32), "boxes": np.empty((total, 4), np.float32),
               "box_scores": np.empty(total, np.float32), "interpolated": np.empty(total, bool)}  # fmt: skip
    cursor, rejected = offsets[:-1].copy(), 0
    for joined in sorted(chains):
        track = fill_gaps(
            Track.concatenate(joined, (store.track(i) for i in chains[joined])), settings.fill_gaps
        )
        if len(track) != sizes[joined]:
            raise RuntimeError(f"track {joined}: {len(track)} rows filled, {sizes[joined]} laid out")
        if settings.smooth is not None:
            track, jumps = smooth_track(track, fps, settings.smooth)
            rejected += jumps
        rows = cursor[track.frames]
        cursor[track.frames] += 1
        columns["track_ids"][rows] = joined
        for name in ("keypoints", "scores", "boxes", "box_scores", "interpolated"):
            columns[name][rows] = getattr(track, name)
    return Analysis(store.frames, columns, offsets, joining, rejected, store.keypoint_names, store.edges)
