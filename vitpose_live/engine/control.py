"""Keeping live latency under a target by changing how often the detector runs.

The detector is the expensive stage, even on a GPU (figures in bench/RESULTS.md); between
detections the tracker carries the boxes. When the median latency of the
last frames is over the target, the detector runs one frame less often; when it is well under,
one frame more often, within ``[min_every, max_every]``. Each change waits for a fresh window.
"""

from __future__ import annotations

import collections
import statistics
from dataclasses import dataclass, field


@dataclass
class LatencyController:
    """``update(engine, latency_ms)`` after every shown frame; ``engine.det_every`` is adjusted."""

    target_ms: float
    min_every: int = 1
    max_every: int = 10
    window: int = 15
    low_fraction: float = 0.6  # speed detection back up under this share of the target
    changes: list[tuple[int, int]] = field(default_factory=list)  # (frame number, new det_every)
    _recent: collections.deque = field(default_factory=collections.deque, repr=False)
    _frames: int = 0

    def __post_init__(self) -> None:
        if self.target_ms <= 0:
            raise ValueError("the latency target must be positive")
        if not 1 <= self.min_every <= self.max_every:
            raise ValueError("need 1 <= min_every <= max_every")

    def update(self, engine, latency_ms: float) -> None:
        self._frames += 1
        self._recent.append(latency_ms)
        if len(self._recent) < self.window:
            return
        median = statistics.median(self._recent)
        current = engine.det_every
        if median > self.target_ms and current < self.max_every:
            wanted = current + 1
        elif median < self.low_fraction * self.target_ms and current > self.min_every:
            wanted = current - 1
        else:
            self._recent.popleft()  # a sliding window while nothing changes
            return
        engine.det_every = wanted
        self.changes.append((self._frames, wanted))
        self._recent.clear()  # judge the new setting on frames it produced

    def report(self, engine) -> dict:
        return {"target_ms": self.target_ms, "det_every": engine.det_every, "changes": [list(c) for c in self.changes]}
