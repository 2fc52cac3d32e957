"""The virtual camera: a crop of fixed aspect that keeps the followed person centred at a steady scale.

Per frame the followed person's box gives a *target* window (:func:`target_window`): centred on
the box, ``fill`` of its height (or width) taken by the person, never zoomed in more than
``max_zoom`` output pixels per source pixel, and no larger than the biggest window that fits
the frame unless the person needs more. When the person is missing, the last target is *held*
for ``hold_seconds``, then the target *eases* (a smoothstep over ``ease_seconds``) out to the
whole frame; when they come back it eases in again. The targets are then smoothed:

- live (:class:`VirtualCamera`): causally, by One Euro filters (centre and size apart), which
  smooth jitter hard at rest and open up as the person moves, so the lag stays small;
- files (:func:`frame_path`): with no lag at all, by a first-order low-pass run forwards and then
  backwards over the whole path (a symmetric kernel: its phase, hence its delay, is zero).

Sizes are smoothed as logarithms (a zoom is a ratio). Every window is then moved back into the
frame where it fits (:func:`fit_window`); one larger than the frame is placed to cover all of it,
and :func:`crop` pads the rest with black, never stretching the picture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import VitposeError
from ..engine.smoothing import OneEuroFilter

__all__ = [
    "CropWindow",
    "FramingError",
    "FramingSettings",
    "VirtualCamera",
    "crop",
    "fit_window",
    "frame_path",
    "full_view",
    "parse_size",
    "target_window",
    "zero_lag",
]


class FramingError(VitposeError, ValueError):
    """A ``--follow-size`` that is not WIDTHxHEIGHT."""


def parse_size(text: str) -> tuple[int, int]:
    """``"720x1280"`` -> ``(720, 1280)``: width and height, each 2 to 8192 pixels."""
    parts = str(text).strip().lower().replace("×", "x").split("x")
    if len(parts) == 2 and all(part.strip().isdigit() for part in parts):
        width, height = (int(part) for part in parts)
        if 2 <= width <= 8192 and 2 <= height <= 8192:
            return width, height
    raise FramingError(f"--follow-size takes WIDTHxHEIGHT in pixels (2 to 8192), e.g. 720x1280, not {text!r}")


@dataclass(frozen=True)
class CropWindow:
    """A crop of the source picture: centre ``(x, y)`` and ``height`` in source pixels, and the
    output's ``aspect`` (width / height), so ``width = height * aspect``."""

    x: float
    y: float
    height: float
    aspect: float

    @property
    def width(self) -> float:
        return self.height * self.aspect

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2) in source pixels; may reach past the frame."""
        half_w, half_h = self.width / 2, self.height / 2
        return self.x - half_w, self.y - half_h, self.x + half_w, self.y + half_h

    def to_source(self, u: float, v: float, size: tuple[int, int]) -> tuple[float, float]:
        """The source pixel under output pixel ``(u, v)`` of a crop of ``size`` (a click on the
        framed view -> where to :meth:`~vitpose_live.analysis.follow.Follower.pick_at`)."""
        x1, y1, _, _ = self.box
        scale = self.height / size[1]
        return x1 + u * scale, y1 + v * scale


@dataclass(frozen=True)
class FramingSettings:
    """How the virtual camera frames. Cutoffs are in Hz; One Euro's ``beta`` per frame height per
    second of movement (centre) and per doubling per second (size)."""

    size: tuple[int, int] = (720, 1280)
    fill: float = 0.7
    max_zoom: float = 4.0
    hold_seconds: float = 1.0
    ease_seconds: float = 1.0
    centre_cutoff: float = 0.6  # files: zero-lag low-pass of the centre
    size_cutoff: float = 0.4  # files: and of the size, lower: a steady scale
    live_centre: tuple[float, float] = (0.2, 4.0)  # live: One Euro (min_cutoff, beta) of the centre
    live_size: tuple[float, float] = (0.1, 1.0)  # live: and of log(size)

    def __post_init__(self) -> None:
        width, height = self.size
        if not (width >= 2 and height >= 2):
            raise FramingError(f"the output size must be at least 2x2 pixels, got {width}x{height}")
        if not 0 < self.fill <= 1 or self.max_zoom <= 0 or self.hold_seconds < 0 or self.ease_seconds < 0:
            raise ValueError("need 0 < fill <= 1, max_zoom > 0, hold_seconds >= 0, ease_seconds >= 0")

    @property
    def aspect(self) -> float:
        return self.size[0] / self.size[1]


def full_view(image_size: tuple[int, int], aspect: float) -> CropWindow:
    """The largest window of ``aspect`` inside the frame, centred: where the camera goes when
    there is nobody to follow."""
    width, height = image_size
    return CropWindow(width / 2, height / 2, min(float(height), width / aspect), aspect)


def _centred(centre: float, extent: float, frame: float) -> float:
    """``centre`` moved so the window is inside the frame when it fits, else covers all of it."""
    low, high = extent / 2, frame - extent / 2
    return min(max(centre, min(low, high)), max(low, high))


def fit_window(window: CropWindow, image_size: tuple[int, int]) -> CropWindow:
    """``window`` moved (not resized) to be inside the frame, or to cover it where it is larger."""
    width, height = image_size
    x = _centred(window.x, window.width, width)
    y = _centred(window.y, window.height, height)
    return CropWindow(x, y, window.height, window.aspect)


def target_window(
    box, image_size: tuple[int, int], settings: FramingSettings = FramingSettings()
) -> CropWindow:
    """The unsmoothed window for a person's box (x1, y1, x2, y2): see the module's docstring."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, np.float64).reshape(4))
    aspect = settings.aspect
    box_w, box_h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    tight = max(box_h, box_w / aspect)  # the smallest window that holds the whole person
    height = min(tight / settings.fill, max(full_view(image_size, aspect).height, tight))
    height = max(height, settings.size[1] / settings.max_zoom)
    return fit_window(CropWindow((x1 + x2) / 2, (y1 + y2) / 2, height, aspect), image_size)


def _smoothstep(p: float) -> float:
    p = min(max(p, 0.0), 1.0)
    return p * p * (3 - 2 * p)


class _Targets:
    """The causal target per frame as (x, y, log height), with hold and ease (both modes use it)."""

    def __init__(self, image_size: tuple[int, int], settings: FramingSettings) -> None:
        self.image_size, self.settings = image_size, settings
        self.away = self._vector(full_view(image_size, settings.aspect))
        self._person: np.ndarray | None = None  # the last target from the person
        self._seen_at = -math.inf
        self._out: np.ndarray | None = None  # the last target given
        self._ease: tuple[np.ndarray, float] | None = None  # (from, start time)
        self._on_person: bool | None = None

    @staticmethod
    def _vector(window: CropWindow) -> np.ndarray:
        return np.array([window.x, window.y, math.log(window.height)])

    def __call__(self, box, time: float) -> np.ndarray:
        s = self.settings
        if box is not None and np.isfinite(np.asarray(box, np.float64)).all():
            self._person = self._vector(target_window(box, self.image_size, s))
            self._seen_at = time
        elif time < self._seen_at:  # time went back: a new stream
            self._seen_at = -math.inf
        on_person = self._person is not None and time - self._seen_at <= s.hold_seconds
        raw = self._person if on_person else self.away
        if self._on_person is not None and on_person != self._on_person and self._out is not None:
            self._ease = (self._out, time)
        self._on_person = on_person
        out = raw
        if self._ease is not None:
            start, since = self._ease
            p = 1.0 if s.ease_seconds == 0 else _smoothstep((time - since) / s.ease_seconds)
            out = start + (raw - start) * p
            if p >= 1 or time < since:
                self._ease = None
        self._out = out
        return out


def _window(vector: np.ndarray, image_size: tuple[int, int], aspect: float) -> CropWindow:
    x, y, log_height = vector.tolist()
    return fit_window(CropWindow(x, y, math.exp(log_height), aspect), image_size)


class VirtualCamera:
    """Live framing: ``update(box_or_None, time) -> CropWindow`` once per frame, causally.

    The centre is filtered in frame heights, the size as its logarithm, each by its own One Euro
    filter (``settings.live_centre``, ``settings.live_size``). Measured on the tests' scripted walk
    (200 px/s in a 1280x720 frame, 3 px of box jitter, 30 fps): the path is 3.3x smoother than the
    raw targets (mean |second difference|), 2 frames late, 11 px off on average; a still person's
    window moves by under a pixel. ``min_cutoff`` 0.2-0.5 Hz changes little; ``beta`` trades lag
    for smoothness (2: 11 px behind, 8: 5 px but 30 % rougher).
    """

    def __init__(self, image_size: tuple[int, int], settings: FramingSettings = FramingSettings()) -> None:
        self.image_size, self.settings = (int(image_size[0]), int(image_size[1])), settings
        self.reset()

    def reset(self) -> None:
        self._targets = _Targets(self.image_size, self.settings)
        self._centre = OneEuroFilter(*self.settings.live_centre)
        self._size = OneEuroFilter(*self.settings.live_size)
        self.window = full_view(self.image_size, self.settings.aspect)

    def update(self, box, time: float) -> CropWindow:
        """The window for this frame; ``box`` the followed person's (x1, y1, x2, y2), or ``None``."""
        target = self._targets(box, float(time))
        unit = self.image_size[1]
        centre = self._centre(target[:2] / unit, float(time)) * unit
        log_height = self._size(target[2:], float(time))
        self.window = _window(np.concatenate([centre, log_height]), self.image_size, self.settings.aspect)
        return self.window


def zero_lag(values, times, cutoff: float) -> np.ndarray:
    """``values`` (T, ...) low-passed at ``cutoff`` Hz forwards, then backwards: no delay.

    Each pass is the first-order low-pass of One Euro at a fixed cutoff, its step from the times
    (s), so uneven frame times are fine. Together the two passes weigh neighbours by a symmetric,
    two-sided exponential of time constant ``1 / (2 pi cutoff)``.
    """
    values = np.array(values, np.float64)
    times = np.asarray(times, np.float64).reshape(-1)
    if len(values) != len(times):
        raise ValueError(f"{len(values)} values but {len(times)} times")
    if len(values) < 2:
        return values
    # Odd reflection at both ends (as scipy's filtfilt pads, 3 time constants), about the end of a
    # straight line fitted to the last 1.5 time constants there: a walk goes on as it went, so the
    # first and last frames are not pulled towards the middle of the path (on a 1.5 s walk they
    # were, by up to 16 px), and one noisy end frame does not swing it.
    pad = min(len(values) - 1, max(1, math.ceil(3 * _frames_per_time_constant(times, cutoff))))
    fit = min(len(values), max(2, pad // 2 + 1))
    first, last = _line_end(values[:fit], times[:fit]), _line_end(values[-fit:][::-1], times[-fit:][::-1])
    values = np.concatenate([2 * first - values[pad:0:-1], values, 2 * last - values[-2 : -pad - 2 : -1]])
    times = np.concatenate([2 * times[0] - times[pad:0:-1], times, 2 * times[-1] - times[-2 : -pad - 2 : -1]])
    return _forward_backward(values, times, cutoff)[pad:-pad]


def _frames_per_time_constant(times: np.ndarray, cutoff: float) -> float:
    steps = np.diff(times)
    step = float(np.median(steps[steps > 0])) if (steps > 0).any() else 1.0
    return 1 / (2 * math.pi * cutoff * step)


def _line_end(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The least-squares line through ``values`` over ``times``, at the first time: (1, ...)."""
    design = np.stack([np.ones(len(times)), times - times[0]], axis=1)
    flat = values.reshape(len(values), -1)
    (intercept, _), *_ = np.linalg.lstsq(design, flat, rcond=None)
    return intercept.reshape((1,) + values.shape[1:])


def _forward_backward(values: np.ndarray, times: np.ndarray, cutoff: float) -> np.ndarray:
    steps = np.diff(times)
    steps = np.where(steps > 0, steps, np.median(steps[steps > 0]) if (steps > 0).any() else 1.0)
    rate = 2 * math.pi * cutoff * steps
    alphas = (rate / (rate + 1)).tolist()
    for order in (range(1, len(values)), range(len(values) - 2, -1, -1)):
        forward = order.step > 0
        for i in order:
            a = alphas[i - 1] if forward else alphas[i]
            previous = values[i - 1] if forward else values[i + 1]
            values[i] = previous + a * (values[i] - previous)
    return values


def frame_path(
    boxes: Sequence, times, image_size: tuple[int, int], settings: FramingSettings = FramingSettings()
) -> list[CropWindow]:
    """Files: the window of every frame, with no lag, from every frame's followed box (or
    ``None``) and time in seconds (a whole video's path: (T, 3) floats, small; an hour at 30 fps
    takes about 2 s). On the tests' scripted walk: 40x smoother than the raw targets, best shift 0
    frames; a sudden turn is rounded off (up to 57 px off at the turning point)."""
    times = np.asarray(times, np.float64).reshape(-1)
    if len(boxes) != len(times):
        raise ValueError(f"{len(boxes)} boxes but {len(times)} times")
    if not len(times):
        return []
    image_size = (int(image_size[0]), int(image_size[1]))
    targets = _Targets(image_size, settings)
    path = np.stack([targets(box, float(t)) for box, t in zip(boxes, times.tolist(), strict=True)])
    path[:, :2] = zero_lag(path[:, :2], times, settings.centre_cutoff)
    path[:, 2] = zero_lag(path[:, 2], times, settings.size_cutoff)
    return [_window(vector, image_size, settings.aspect) for vector in path]


def crop(image: np.ndarray, window: CropWindow, size: tuple[int, int]) -> np.ndarray:
    """The ``window`` of ``image`` (HxWx3 uint8) scaled to exactly ``size`` (width, height),
    sub-pixel placed, black where the window reaches past the frame. A window more than 1.5 times
    the output is first shrunk by area averaging (no aliasing), then placed."""
    out_w, out_h = int(size[0]), int(size[1])
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be HxWx3, got {image.shape}")
    x1, y1, x2, y2 = window.box
    scale_x, scale_y = out_w / max(x2 - x1, 1e-6), out_h / max(y2 - y1, 1e-6)
    source, left, top = image, 0, 0
    if min(scale_x, scale_y) < 1 / 1.5:
        h, w = image.shape[:2]
        left, top = max(0, math.floor(x1) - 1), max(0, math.floor(y1) - 1)
        right, bottom = min(w, math.ceil(x2) + 1), min(h, math.ceil(y2) + 1)
        if right > left and bottom > top:
            roi = image[top:bottom, left:right]
            shrunk = (max(1, round((right - left) * scale_x)), max(1, round((bottom - top) * scale_y)))
            source = cv2.resize(roi, shrunk, interpolation=cv2.INTER_AREA)
            pre_x, pre_y = shrunk[0] / (right - left), shrunk[1] / (bottom - top)
            # Positions in the shrunk picture: x' = (x - left) * pre (pixel edges, not centres).
            x1, x2 = (x1 - left) * pre_x, (x2 - left) * pre_x
            y1, y2 = (y1 - top) * pre_y, (y2 - top) * pre_y
            scale_x, scale_y = out_w / (x2 - x1), out_h / (y2 - y1)
    # Pixel i covers [i, i + 1): output centre u + 0.5 = scale * (x + 0.5 - x1).
    matrix = np.array(
        [[scale_x, 0, scale_x * (0.5 - x1) - 0.5], [0, scale_y, scale_y * (0.5 - y1) - 0.5]], np.float64
    )
    return cv2.warpAffine(
        source, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
