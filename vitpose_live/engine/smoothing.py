"""Per-track keypoint smoothing: the One Euro filter (:class:`OneEuroFilter`) and
:class:`PoseSmoother`, one filter per track id over its keypoints; plain state, one thread."""

from __future__ import annotations

import math

import numpy as np

from ..defaults import KPT_THRESHOLD
from ..types import Poses

__all__ = ["OneEuroFilter", "PoseSmoother"]


def _alpha(cutoff, dt: float):
    """The exponential smoothing factor of a first-order low-pass at ``cutoff`` Hz, step ``dt`` s."""
    r = 2 * math.pi * cutoff * dt
    return r / (r + 1)


class OneEuroFilter:
    """The 1€ filter (Casiez, Roussel, Vogel, CHI 2012), element-wise over an array of any shape.

    A low-pass whose cutoff rises with speed: ``cutoff = min_cutoff + beta * |dx/dt|`` (Hz, with
    the speed itself low-passed at ``d_cutoff``). Slow or still signals are smoothed hard (jitter
    goes), fast ones are followed closely (lag goes). The speed is taken against the previous
    *filtered* value, so a lagging output raises its own cutoff and catches up after a jump.

    Call with the new values and their time in seconds. The first call, a change of shape, and
    elements that :meth:`reset` marked or that were not finite start from the raw value. When
    time does not advance (``dt <= 0``) the last positive step is reused; before there is one the
    raw values come out and restart the filter.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(
                f"need min_cutoff > 0, d_cutoff > 0, beta >= 0; got {min_cutoff}, {d_cutoff}, {beta}"
            )
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self, mask=None) -> None:
        """Forget everything, or only the elements where ``mask`` (broadcast to the values) is true."""
        if mask is None or self._x is None:
            self._x: np.ndarray | None = None  # last output, finite
            self._dx: np.ndarray | None = None  # last smoothed speed, units per second
            self._fresh: np.ndarray | None = None  # elements to restart from the raw value
            self._t: float | None = None
            self._dt: float | None = None
            return
        self._fresh = self._fresh | np.broadcast_to(np.asarray(mask, bool), self._x.shape)

    def __call__(self, x, t: float) -> np.ndarray:
        x = np.asarray(x)
        out_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        x = x.astype(np.float64)
        finite = np.isfinite(x)
        dt = None if self._t is None else t - self._t
        if not (dt is not None and dt > 0):  # also catches NaN
            dt = self._dt
        if self._x is None or self._x.shape != x.shape or dt is None:
            self._x = np.where(finite, x, 0.0)
            self._dx = np.zeros_like(x)
            self._fresh = ~finite
            self._t, self._dt = t, None
            return x.astype(out_dtype)

        fresh = self._fresh | ~finite
        x_in = np.where(finite, x, self._x)  # keeps inf out of the arithmetic
        a_d = _alpha(self.d_cutoff, dt)
        dx = a_d * (x_in - self._x) / dt + (1 - a_d) * self._dx
        a = _alpha(self.min_cutoff + self.beta * np.abs(dx), dt)
        smooth = a * x_in + (1 - a) * self._x

        self._x = np.where(fresh, x_in, smooth)
        self._dx = np.where(fresh, 0.0, dx)
        self._fresh = ~finite
        self._t, self._dt = t, dt
        return np.where(finite, self._x, x).astype(out_dtype)


class PoseSmoother:
    """One-Euro smoothing of each tracked person's keypoints, in image pixels.

    Defaults, for keypoints in pixels of a 480p-1080p picture at 15-60 fps: at rest the cutoff is
    ``min_cutoff = 1 Hz``; ``beta = 0.05`` raises it by 1 Hz per 20 px/s of speed. With 3 px of
    jitter at 30 fps that halves the error of a still or slowly swaying keypoint (the jitter itself
    fakes some 30 px/s of speed, which opens the filter a little), while a keypoint moving at
    600 px/s is followed at about 30 Hz, some 3 px behind (~100 px with ``beta = 0``), and a
    100 px jump is caught up to within 3 px in two frames. A smaller ``beta`` (0.02) smooths still
    keypoints more but lags visibly once people move; a larger one barely smooths. ``d_cutoff =
    1 Hz`` is the paper's choice for the speed estimate. Being in pixels, the filter smooths a small
    far-away person less than a large near one.

    Call with each frame's poses and its time in seconds. Every track id has its own filter
    state; poses without ``track_ids``, and ids below 0, pass through unchanged. A keypoint scoring
    below ``kpt_threshold`` comes out raw and restarts from its raw value once it is confident
    again. A track not seen for more than ``forget_after`` seconds is forgotten. When the time goes
    back (a new stream) everything is forgotten; when it stands still, the last time step is reused.
    """

    def __init__(
        self,
        min_cutoff: float = 1.0,
        beta: float = 0.05,
        d_cutoff: float = 1.0,
        kpt_threshold: float = KPT_THRESHOLD,
        forget_after: float = 1.0,
    ) -> None:
        OneEuroFilter(min_cutoff, beta, d_cutoff)  # validates
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.kpt_threshold = kpt_threshold
        self.forget_after = forget_after
        self.reset()

    def reset(self) -> None:
        self._tracks: dict[int, tuple[OneEuroFilter, float]] = {}  # id -> (filter, last time seen)
        self._last_time: float | None = None

    @property
    def track_ids(self) -> list[int]:
        """The ids that currently have a filter state."""
        return sorted(self._tracks)

    def __call__(self, poses: Poses, time: float, kpt_threshold: float | None = None) -> Poses:
        """``poses`` smoothed per track; keypoints under ``kpt_threshold`` (None: this
        smoother's own) come out raw."""
        time = float(time)
        kpt_threshold = self.kpt_threshold if kpt_threshold is None else kpt_threshold
        if self._last_time is not None and time < self._last_time:
            self.reset()
        self._last_time = time
        if poses.track_ids is None:
            return poses

        keypoints = poses.keypoints.copy()
        seen: set[int] = set()
        for i, track_id in enumerate(poses.track_ids.tolist()):
            if track_id < 0 or track_id in seen:
                continue
            seen.add(track_id)
            one_euro, last_seen = self._tracks.get(track_id, (None, -math.inf))
            if one_euro is None or time - last_seen > self.forget_after:
                one_euro = OneEuroFilter(self.min_cutoff, self.beta, self.d_cutoff)
            unsure = ~(poses.scores[i] >= kpt_threshold)[:, None]
            smoothed = one_euro(poses.keypoints[i], time)
            one_euro.reset(unsure)  # to start from their next raw value
            keypoints[i] = np.where(unsure, poses.keypoints[i], smoothed)
            self._tracks[track_id] = (one_euro, time)

        self._tracks = {k: v for k, v in self._tracks.items() if time - v[1] <= self.forget_after}
        return poses.replace(keypoints=keypoints)
