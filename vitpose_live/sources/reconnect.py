"""Trying again with back-off, for the sources that can come back (cameras, streams)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """``attempts`` retries, the first ``first`` seconds after a failure, each wait twice the
    one before, at most ``most`` seconds.

    ``for attempt in backoff.retries(stop):`` waits, then yields 1, 2, … ``attempts``; it ends
    early, without yielding again, once ``stop`` is set (the wait returns at once), so closing a
    source from another thread never waits out a back-off.
    """

    attempts: int
    first: float
    most: float = math.inf

    def __post_init__(self) -> None:
        if self.attempts < 0 or self.first < 0 or self.most < 0:
            raise ValueError(f"back-off needs non-negative numbers, got {self}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (from 1)."""
        return min(self.first * 2 ** (attempt - 1), self.most)

    def retries(self, stop: threading.Event) -> Iterator[int]:
        for attempt in range(1, self.attempts + 1):
            if stop.wait(self.delay(attempt)):
                return
            yield attempt
