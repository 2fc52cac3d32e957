"""One id per person through occlusions: joining tracklets of a whole file.

ByteTrack gives a person a new id when it loses them for longer than its buffer (behind a pillar,
behind another person, out of the picture for a moment). Offline, the end of one tracklet and the
start of a later one can be compared with both sides known. A pair (A ends, B starts ``gap``
frames later, 1 <= gap <= ``max_gap_s``) costs

    ((position error / (p0 + p1 · gap_s))² + (log size ratio / s0)² + (velocity change / v0)²)

where the position error is the mean of A's end carried forward at A's velocity to B's start and
B's start carried back at B's velocity to A's end, and every length is in body heights (the
boxes' mean height), so the same rule holds for people near and far. A pair costing more than 1
(outside the ellipsoid of tolerances) is never joined. The velocity term is what keeps two people
who cross apart: each leaves the crossing moving the way they came, so the tracklet that goes on
to the right belongs to the one who came from the left.

The pairs are chosen by a minimum-cost assignment (``scipy.optimize.linear_sum_assignment``),
with "join nothing" costing 1 for every tracklet end, solved separately for each group of ends
and starts that compete for each other (connected components of the candidate pairs). Greedy
joining in time order gives each new tracklet the best end still free, which can take the only
good partner of an end that comes later (``tests/test_offline.py`` has the case: greedy pairs cost
0.35 in all, the assignment's 0.19); the assignment weighs the whole group at once, and the groups
stay small, so the cost grows with the file's length only linearly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["JoinSettings", "Joining", "TrackletEnds", "join_cost", "join_tracklets", "tracklet_ends"]

_NEVER = 1e6


@dataclass(frozen=True)
class JoinSettings:
    """Tolerances of a join, lengths in body heights: ``position`` at no gap plus
    ``position_per_s`` per second of gap, ``size`` as |log(height ratio)| (0.3: 35 %),
    ``velocity`` in body heights per second (a walk is about 0.8). ``motion_s``: how much of each
    tracklet's end (or start) its velocity is measured over."""

    max_gap_s: float = 3.0
    position: float = 0.5
    position_per_s: float = 0.75
    size: float = 0.3
    velocity: float = 0.6
    motion_s: float = 0.5

    def __post_init__(self) -> None:
        if (
            min(self.max_gap_s, self.position, self.size, self.velocity, self.motion_s) <= 0
            or self.position_per_s < 0
        ):
            raise ValueError(f"join tolerances must be positive, got {self}")


@dataclass(frozen=True)
class TrackletEnds:
    """Where a tracklet starts and ends: frame, box centre (2,), box height, and velocity (2,)
    px/frame (NaN when too short to tell), measured over its first / last ``motion_s``."""

    track_id: int
    first: int
    last: int
    start: np.ndarray
    start_height: float
    start_velocity: np.ndarray
    end: np.ndarray
    end_height: float
    end_velocity: np.ndarray


@dataclass(frozen=True)
class Joining:
    """``mapping``: every tracklet id to the id of the person it joins (the id of their first
    tracklet; itself when not joined); ``joins``: how many tracklets were joined onto another."""

    mapping: dict[int, int]
    joins: int

    @classmethod
    def none(cls, track_ids) -> Joining:
        return cls({int(i): int(i) for i in track_ids}, 0)


def _fit(frames: np.ndarray, centres: np.ndarray, at: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre at frame ``at`` and velocity (px/frame) of a least-squares line through the centres."""
    if len(frames) < 2 or frames[-1] == frames[0]:
        return centres.mean(axis=0), np.full(2, np.nan)
    slope, intercept = np.polyfit(frames - at, centres, 1)
    return intercept, slope


def tracklet_ends(
    track_id: int, frames: np.ndarray, boxes: np.ndarray, fps: float, motion_s: float
) -> TrackletEnds:
    centres = (boxes[:, :2] + boxes[:, 2:]).astype(np.float64) / 2
    heights = (boxes[:, 3] - boxes[:, 1]).astype(np.float64)
    span = max(1, int(round(motion_s * fps)))
    head = frames <= frames[0] + span
    tail = frames >= frames[-1] - span
    start, start_velocity = _fit(frames[head], centres[head], int(frames[0]))
    end, end_velocity = _fit(frames[tail], centres[tail], int(frames[-1]))
    return TrackletEnds(int(track_id), int(frames[0]), int(frames[-1]), start, float(np.median(heights[head])),
                        start_velocity, end, float(np.median(heights[tail])), end_velocity)  # fmt: skip


def join_cost(a: TrackletEnds, b: TrackletEnds, fps: float, settings: JoinSettings) -> float:
    """The cost of ``b`` continuing ``a`` (inf when ``b`` does not start after ``a`` ends within
    ``max_gap_s``); joinable when at most 1."""
    gap = b.first - a.last
    if gap < 1 or gap > settings.max_gap_s * fps:
        return np.inf
    height = np.sqrt(max(a.end_height, 1e-6) * max(b.start_height, 1e-6))
    forward = a.end + np.nan_to_num(a.end_velocity) * gap
    backward = b.start - np.nan_to_num(b.start_velocity) * gap
    position = (np.linalg.norm(forward - b.start) + np.linalg.norm(backward - a.end)) / 2 / height
    cost = (position / (settings.position + settings.position_per_s * gap / fps)) ** 2
    cost += (np.log(max(b.start_height, 1e-6) / max(a.end_height, 1e-6)) / settings.size) ** 2
    change = b.start_velocity - a.end_velocity
    if np.isfinite(change).all():
        cost += (np.linalg.norm(change) * fps / height / settings.velocity) ** 2
    return float(cost)


def _assign(costs: np.ndarray) -> list[tuple[int, int]]:
    """The cheapest set of (end, start) pairs, each end and start used at most once, an end
    left alone costing 1."""
    n = costs.shape[0]
    alone = np.full((n, n), _NEVER)
    np.fill_diagonal(alone, 1.0)
    rows, cols = linear_sum_assignment(np.hstack([np.where(costs <= 1, costs, _NEVER), alone]))
    return [(r, c) for r, c in zip(rows.tolist(), cols.tolist()) if c < costs.shape[1] and costs[r, c] <= 1]


def join_tracklets(store, fps: float, settings: JoinSettings | None = None) -> Joining:
    """Join the tracklets of ``store`` (anything with ``track_ids`` and ``motion(id) -> (frames,
    boxes)``, e.g. :class:`~vitpose_live.offline.TrackStore`) that one person left behind."""
    settings = settings or JoinSettings()
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    ends = [tracklet_ends(i, *store.motion(i), fps, settings.motion_s) for i in store.track_ids]
    ends.sort(key=lambda e: (e.first, e.track_id))
    n, reach = len(ends), settings.max_gap_s * fps
    firsts = np.array([e.first for e in ends])
    pairs: list[tuple[int, int, float]] = []
    for i, a in enumerate(ends):  # candidate starts: after a's end, within reach (firsts are sorted)
        for j in range(np.searchsorted(firsts, a.last + 1), np.searchsorted(firsts, a.last + reach, "right")):
            cost = join_cost(a, ends[j], fps, settings)
            if cost <= 1:
                pairs.append((i, j, cost))
    successor: dict[int, int] = {}
    if pairs:
        i, j, c = (np.array(column) for column in zip(*pairs))
        graph = coo_matrix((np.ones(len(i)), (i, n + j)), shape=(2 * n, 2 * n))
        _, group = connected_components(graph, directed=False)
        for g in np.unique(group[i]):
            mine = group[i] == g
            rows, cols = np.unique(i[mine]), np.unique(j[mine])
            costs = np.full((len(rows), len(cols)), np.inf)
            costs[np.searchsorted(rows, i[mine]), np.searchsorted(cols, j[mine])] = c[mine]
            successor.update((int(rows[r]), int(cols[s])) for r, s in _assign(costs))
    mapping, joins = {}, 0
    for i, e in enumerate(ends):  # in start order, so a predecessor is always named first
        mapping.setdefault(e.track_id, e.track_id)
        if i in successor:
            mapping[ends[successor[i]].track_id] = mapping[e.track_id]
            joins += 1
    return Joining(mapping, joins)
