"""Zero-lag smoothing of a whole keypoint series, for files (known whole, so no causal filter).

Each keypoint coordinate is fitted, at every frame, by a local quadratic in time, weighted by the
keypoint scores (a score-weighted Savitzky–Golay fit), over a window that is chosen per frame by
the intersection-of-confidence-intervals rule (LPA-ICI: Goldenshluger & Nemirovski 1997,
Katkovnik 1999): the estimates of growing symmetric windows are kept while their confidence
intervals (``± gamma · sigma · sqrt(variance factor)``) still share a point; the largest such window
wins. Still and slowly moving keypoints get the widest window (``window_s``), a step or a fast
swing the narrow ones, so fast real motion is not flattened. Symmetric windows give zero lag. A
keypoint that jumps away for one frame and comes back, with a low score, is not a measurement
(weight 0). The noise ``sigma`` is measured per track and keypoint (the median absolute second
difference). Frames marked interpolated weigh almost nothing (they only bridge a gap).

Why this and not the other zero-phase smoothers: ``bench/compare_smoothers.py``, 30 fps, 17
keypoints with σ = 2 px white noise, every fixed method tuned to just cut a slow walk's error 3x;
"step": mean error two frames after a 100 px step; "swing": share of a ±50 px, 2 Hz swing kept;
"jump": px left where a 60 px, score-0.2 one-frame jump was; ms per track-minute on a shared
2-core CPU.

=============================  =========  ===  ========  =====  =======  ===========
method                         walk cut   lag  step      swing  jump     ms
=============================  =========  ===  ========  =====  =======  ===========
weighted SG, 23 frames         3.04x      0    26.0 px   22 %   1.4 px   8
filtfilt Butterworth-2 1.5 Hz  3.04x      0    24.3 px   24 %   6.6 px   4
RTS, constant velocity         3.08x      0    21.1 px   35 %   1.9 px   81
**weighted SG + ICI (this)**   3.39x      0    0.9 px    87 %   0.4 px   71
=============================  =========  ===  ========  =====  =======  ===========

All four are zero-phase. Each fixed-bandwidth smoother must trade the 3x noise cut against fast
motion (at 30 fps no linear filter passes 2 Hz and cuts white noise 3x: the band to 2 Hz holds
2/15 of its power, a cut of at most 2.7x), so all three leave 21-26 px of a 100 px step two frames
after it and flatten the swing; RTS would need a switching motion model to do better. Choosing
the window per frame keeps both, and the local fit is the one that takes scores as weights,
missing keypoints (NaN) and track ends (a truncated, one-sided window) as they are; filtfilt
needs every sample, no weights and padding at the ends. At σ = 0.5 px the ICI fit cuts the walk's error 3.3x with a 0.2 px step
error. Long tracks are processed in blocks with a halo of one window, which gives the result of
one pass in bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import correlate1d

__all__ = ["SmoothSettings", "noise_levels", "one_frame_jumps", "smooth_series"]

INTERPOLATED_WEIGHT = 1e-4  # an interpolated frame only matters where there is nothing else
_BLOCK = 4096  # frames smoothed at once: ~40 float64 arrays of (BLOCK + halo) x K, 22 MB for K = 17


@dataclass(frozen=True)
class SmoothSettings:
    """How :func:`smooth_series` smooths.

    ``window_s``: the widest window, in seconds (1 s: 31 frames at 30 fps, which cuts white noise
    ~3.7x where the keypoint moves slowly). ``gamma``: how wide each confidence interval is, in
    standard deviations (smaller: narrower windows, less smoothing, less bias). ``spike_score``:
    a one-frame jump is rejected only below this keypoint score; ``spike_sigmas``: how far (in
    noise sigmas) it must jump from both neighbours while they stay together. ``min_sigma``: the
    noise floor in pixels, so that noise-free input still gets intervals of some width.
    """

    window_s: float = 1.0
    gamma: float = 2.0
    spike_score: float = 0.5
    spike_sigmas: float = 6.0
    min_sigma: float = 0.05

    def __post_init__(self) -> None:
        if not self.window_s > 0 or not self.gamma > 0 or not self.spike_sigmas > 0 or self.min_sigma <= 0:
            raise ValueError(f"smoothing settings must be positive, got {self}")

    def half_widths(self, fps: float) -> np.ndarray:
        """The window half-widths tried, in frames: 1, 2, 3 (so a step is caught by the first window
        that reaches across it), then growing by about 1.4x to half the widest window."""
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        top = max(1, int(round(self.window_s * fps / 2)))
        steps = max(1, int(np.ceil(np.log(max(top, 3) / 3) / np.log(1.4))))
        widths = np.concatenate([[1, 2, 3], np.geomspace(3, max(top, 3), steps + 1)])
        return np.unique(np.minimum(np.round(widths).astype(int), top))


def _weights(scores: np.ndarray, keypoints: np.ndarray, interpolated: np.ndarray) -> np.ndarray:
    """The weight of each keypoint measurement (T, K): its score, 0 when not finite, almost 0 on
    interpolated frames."""
    weights = np.clip(np.nan_to_num(scores.astype(np.float64), nan=0.0), 0.0, 1.0)
    weights[~np.isfinite(keypoints).all(axis=-1)] = 0.0
    weights[interpolated] *= INTERPOLATED_WEIGHT
    return weights


def noise_levels(keypoints: np.ndarray, weights: np.ndarray, min_sigma: float) -> np.ndarray:
    """Each keypoint's noise sigma in pixels (K,), robustly from the second differences of
    consecutive measured frames (white noise of sigma gives second differences of sigma·sqrt(6)).
    A keypoint with fewer than 8 of them takes the whole track's; at least ``min_sigma``."""
    x = keypoints.astype(np.float64)
    usable = weights > 0.05
    d2 = np.abs(x[2:] - 2 * x[1:-1] + x[:-2])  # (T-2, K, 2)
    ok = usable[2:] & usable[1:-1] & usable[:-2]

    def sigma(values: np.ndarray) -> float:
        return 1.4826 * float(np.median(values)) / np.sqrt(6)

    pooled = sigma(d2[ok]) if ok.any() else min_sigma
    sigmas = [sigma(d2[ok[:, k], k]) if ok[:, k].sum() >= 8 else pooled for k in range(x.shape[1])]
    return np.maximum(np.array(sigmas), min_sigma)


def one_frame_jumps(
    keypoints: np.ndarray, scores: np.ndarray, sigmas: np.ndarray, settings: SmoothSettings
) -> np.ndarray:
    """Where a low-score keypoint leaves both its neighbours by more than ``spike_sigmas`` sigmas
    for one frame while the neighbours stay close together (T, K) bool: an outlier, not motion."""
    jumps = np.zeros(scores.shape, bool)
    if len(keypoints) < 3:
        return jumps
    x = keypoints.astype(np.float64)
    before = np.linalg.norm(x[1:-1] - x[:-2], axis=-1)
    after = np.linalg.norm(x[1:-1] - x[2:], axis=-1)
    across = np.linalg.norm(x[2:] - x[:-2], axis=-1)
    away = np.minimum(before, after)
    with np.errstate(invalid="ignore"):
        jumps[1:-1] = (
            (away > settings.spike_sigmas * sigmas)
            & (across < away / 2)
            & (scores[1:-1] < settings.spike_score)
        )
    return jumps


def _moments(weights: np.ndarray, values: np.ndarray, h: int):
    """Windowed weighted moments of time offsets u = (s - t) / h over s in [t - h, t + h]:
    S_k = Σ w u^k (k = 0..4) (T, K) and B_k = Σ w x u^k (k = 0..2) (T, K, 2); outside the
    series counts as weight 0, so windows at the ends are one-sided."""
    u = np.arange(-h, h + 1) / h
    s = [correlate1d(weights, u**k, axis=0, mode="constant") for k in range(5)]
    wx = weights[..., None] * values
    b = [correlate1d(wx, u**k, axis=0, mode="constant") for k in range(3)]
    return s, b


def _local_quadratic(weights: np.ndarray, values: np.ndarray, h: int):
    """The weighted least-squares quadratic of every window, evaluated at its centre (T, K, 2),
    and its variance factor (T, K): the variance of that value is sigma² times it. A window with
    too few distinct frames drops to a line, then to a weighted mean; an empty one gives NaN, inf."""
    (s0, s1, s2, s3, s4), (b0, b1, b2) = _moments(weights, values, h)
    with np.errstate(divide="ignore", invalid="ignore"):
        c0, c1, c2 = s2 * s4 - s3 * s3, s2 * s3 - s1 * s4, s1 * s3 - s2 * s2
        det3 = s0 * c0 + s1 * c1 + s2 * c2
        quad = det3 > 1e-9 * np.maximum(s0 * s2 * s4, 1e-300)
        det2 = s0 * s2 - s1 * s1
        line = ~quad & (det2 > 1e-9 * np.maximum(s0 * s2, 1e-300))
        flat = ~quad & ~line & (s0 > 0)
        estimate = np.full(values.shape, np.nan)
        variance = np.full(weights.shape, np.inf)
        q = quad[..., None]
        estimate = np.where(
            q, (c0[..., None] * b0 + c1[..., None] * b1 + c2[..., None] * b2) / det3[..., None], estimate
        )
        variance = np.where(quad, c0 / det3, variance)
        estimate = np.where(
            line[..., None], (s2[..., None] * b0 - s1[..., None] * b1) / det2[..., None], estimate
        )
        variance = np.where(line, s2 / det2, variance)
        estimate = np.where(flat[..., None], b0 / s0[..., None], estimate)
        variance = np.where(flat, 1 / s0, variance)
    return estimate, variance


def _ici(values: np.ndarray, weights: np.ndarray, sigmas: np.ndarray, settings: SmoothSettings, fps: float):
    """The estimate of the largest window whose confidence interval still meets every smaller
    one's, per frame and keypoint (x and y choose together), and the half-width it used."""
    clean = np.where(weights[..., None] > 0, values, 0.0)
    best = np.full(values.shape, np.nan)
    chosen = np.zeros(weights.shape, np.int32)
    low = np.full(values.shape, -np.inf)
    high = np.full(values.shape, np.inf)
    alive = np.ones(weights.shape, bool)
    for h in settings.half_widths(fps):
        estimate, variance = _local_quadratic(weights, clean, int(h))
        radius = (settings.gamma * sigmas[None, :] * np.sqrt(variance))[..., None]
        known = np.isfinite(estimate).all(axis=-1)
        low = np.where(known[..., None], np.maximum(low, estimate - radius), low)
        high = np.where(known[..., None], np.minimum(high, estimate + radius), high)
        alive &= (low <= high).all(axis=-1)
        take = alive & known
        best = np.where(take[..., None], estimate, best)
        chosen = np.where(take, h, chosen)
    return best, chosen


def smooth_series(
    keypoints: np.ndarray,
    scores: np.ndarray,
    fps: float,
    settings: SmoothSettings | None = None,
    interpolated: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Smooth one track's keypoints, sampled on consecutive frames (T, K, 2) with their scores
    (T, K); ``interpolated`` (T,) marks frames that were filled in. Returns the smoothed
    keypoints (T, K, 2) float32 and how many one-frame jumps were rejected. A keypoint that was not
    finite stays NaN; a track of at most 3 frames comes back as it was (a quadratic fits it)."""
    settings = settings or SmoothSettings()
    keypoints = np.asarray(keypoints, np.float32)
    scores = np.asarray(scores, np.float32)
    count = len(keypoints)
    interpolated = np.zeros(count, bool) if interpolated is None else np.asarray(interpolated, bool)
    if keypoints.ndim != 3 or keypoints.shape[2] != 2 or scores.shape != keypoints.shape[:2]:
        raise ValueError(f"need keypoints (T, K, 2) and scores (T, K), got {keypoints.shape}, {scores.shape}")
    if count < 3:
        return keypoints.copy(), 0
    weights = _weights(scores, keypoints, interpolated)
    sigmas = noise_levels(keypoints, weights, settings.min_sigma)
    jumps = one_frame_jumps(keypoints, scores, sigmas, settings) & ~interpolated[:, None]
    weights[jumps] = 0.0
    halo = int(settings.half_widths(fps)[-1])
    out = np.empty_like(keypoints)
    for start in range(0, count, _BLOCK):
        stop = min(start + _BLOCK, count)
        lo, hi = max(0, start - halo), min(count, stop + halo)
        best, _ = _ici(keypoints[lo:hi].astype(np.float64), weights[lo:hi], sigmas, settings, fps)
        out[start:stop] = best[start - lo : stop - lo]
    missing = ~np.isfinite(keypoints)
    out[missing] = np.nan
    out[~np.isfinite(out)] = keypoints[~np.isfinite(out)]
    return out, int(jumps.sum())
