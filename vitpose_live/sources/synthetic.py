"""A made-up scene of stick figures, for trying the app without a camera and for tests."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np

from ..skeletons import COCO_KEYPOINTS
from ..types import Frame
from .base import Closable, SourceError, VideoInfo
from .spec import SourceKind

# The synthetic figures face the camera, so a person's left side is on the image's right.
_SIDES = {"left": 1.0, "right": -1.0}
_BONES = (  # drawn as lines: torso, arms, legs (the head is a disc)
    (5, 6), (5, 11), (6, 12), (11, 12),
    (5, 7), (7, 9), (6, 8), (8, 10),
    (11, 13), (13, 15), (12, 14), (14, 16),
)  # fmt: skip
_PALETTE = ((255, 170, 60), (80, 200, 255), (120, 255, 120), (255, 110, 200), (240, 240, 90), (170, 140, 255))


def _limb(joint: tuple[float, float], length: float, angle: float, side: float) -> tuple[float, float]:
    """The far end of a bone of ``length`` pixels hanging from ``joint``, ``angle`` radians out
    from straight down towards ``side`` (+1 image right, -1 image left)."""
    return joint[0] + length * side * math.sin(angle), joint[1] + length * math.cos(angle)


class SyntheticSource(Closable):
    """A made-up scene: ``persons`` stick figures (head, torso, swinging arms and legs) walking
    back and forth, on a shaded background with mild noise, with the frame index stamped in the
    top-right corner, clear of the HUD (white on a black box, :attr:`stamp_box`).

    Everything is a function of ``seed`` and the frame index, so two sources with the same
    arguments give the same pictures and :meth:`ground_truth` gives the COCO joints drawn.
    ``time`` is ``index / fps``. With ``realtime`` frames come at ``fps`` (monotonic clock,
    sleeping in short steps so ``close`` stops it quickly) and the source is live; without, as
    fast as they are drawn. ``frames=None`` never ends. For trying the app without a camera,
    and for tests.
    """

    kind = SourceKind.SYNTHETIC

    def __init__(
        self,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        frames: int | None = None,
        persons: int = 2,
        realtime: bool = True,
        seed: int = 0,
    ) -> None:
        if width < 64 or height < 48:
            raise SourceError(f"synthetic frames must be at least 64x48, got {width}x{height}")
        if not fps > 0:
            raise SourceError(f"synthetic fps must be positive, got {fps}")
        if persons < 0 or (frames is not None and frames < 0):
            raise SourceError("synthetic persons and frames cannot be negative")
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.stamp_box = (max(0, self.width - 96), 0, 96, 22)  # x, y, width, height
        self.frames = None if frames is None else int(frames)
        self.persons = int(persons)
        self.realtime = bool(realtime)
        self.is_live = self.realtime
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        w, h = self.width, self.height
        self._people = []
        for p in range(self.persons):
            size = h * rng.uniform(0.45, 0.7)
            self._people.append(
                {
                    "size": size,
                    "feet_y": h * rng.uniform(0.86, 0.96),
                    "low": 0.4 * size,
                    "high": max(0.4 * size + 1.0, w - 0.4 * size),
                    "speed": w * rng.uniform(0.08, 0.2),
                    "phase": rng.uniform(0, 1),
                    "stride": rng.uniform(0.8, 1.5),  # steps per second
                    "swing": rng.uniform(0, 2 * math.pi),
                    "color": _PALETTE[p % len(_PALETTE)],
                }
            )
        shade = np.linspace(70, 30, h, dtype=np.float32)[:, None, None]
        tint = np.array([0.9, 1.0, 1.15], np.float32)
        self._background = np.ascontiguousarray(np.broadcast_to(shade * tint, (h, w, 3)), dtype=np.uint8)
        cv2.line(self._background, (0, int(h * 0.8)), (w - 1, int(h * 0.8)), (90, 90, 90), 1)
        self._noise = [rng.normal(0, 3, (h, w, 3)).round().astype(np.int16) for _ in range(4)]
        self._closed = threading.Event()
        self._info = VideoInfo(
            width=w,
            height=h,
            fps=self.fps,
            frame_count=self.frames,
            duration=self.frames / self.fps if self.frames is not None else None,
            has_audio=False,
            codec="synthetic",
        )

    @property
    def info(self) -> VideoInfo:
        return self._info

    def ground_truth(self, index: int) -> np.ndarray:
        """(persons, 17, 2) float32 COCO joints (x, y pixels) of the figures in frame ``index``."""
        t = index / self.fps
        out = np.zeros((self.persons, 17, 2), np.float32)
        for p, person in enumerate(self._people):
            size, span = person["size"], person["high"] - person["low"]
            travel = (person["phase"] + t * person["speed"] / span) % 2.0
            x = person["low"] + span * (travel if travel < 1.0 else 2.0 - travel)  # back and forth
            beat = 2 * math.pi * person["stride"] * t + person["swing"]
            feet = person["feet_y"] - 0.01 * size * abs(math.sin(beat))

            def at(dx: float, up: float) -> tuple[float, float]:
                return x + dx * size, feet - up * size

            joints = {"nose": at(0.0, 0.90)}
            for side, s in _SIDES.items():
                arm = 0.3 + 0.35 * math.sin(beat + (0.0 if s > 0 else math.pi))
                leg = 0.1 + 0.16 * math.sin(beat + (math.pi if s > 0 else 0.0))
                joints[f"{side}_eye"] = at(0.03 * s, 0.925)
                joints[f"{side}_ear"] = at(0.065 * s, 0.905)
                shoulder = at(0.13 * s, 0.80)
                hip = at(0.08 * s, 0.48)
                elbow = _limb(shoulder, 0.16 * size, arm, s)
                wrist = _limb(elbow, 0.15 * size, arm + 0.25, s)
                knee = _limb(hip, 0.24 * size, leg, s)
                ankle = _limb(knee, 0.24 * size, leg * 0.4, s)
                joints |= {f"{side}_shoulder": shoulder, f"{side}_hip": hip, f"{side}_elbow": elbow}
                joints |= {f"{side}_wrist": wrist, f"{side}_knee": knee, f"{side}_ankle": ankle}
            out[p] = [joints[name] for name in COCO_KEYPOINTS]
        return out

    def render(self, index: int) -> np.ndarray:
        """The RGB picture of frame ``index`` (what iterating yields)."""
        image = self._background.copy()
        everyone = self.ground_truth(index)
        for person, joints in sorted(zip(self._people, everyone), key=lambda pair: pair[0]["feet_y"]):
            size, color = person["size"], person["color"]
            thick = max(2, int(round(0.03 * size)))

            def pt(j: int) -> tuple[int, int]:
                return int(round(joints[j][0] * 16)), int(round(joints[j][1] * 16))  # 4 fractional bits

            def line(a, b) -> None:
                cv2.line(image, a, b, color, thick, cv2.LINE_AA, shift=4)

            neck = tuple((np.array(pt(5)) + np.array(pt(6))) // 2)
            for a, b in _BONES:
                line(pt(a), pt(b))
            head = (pt(0)[0], int(round((joints[0][1] - 0.01 * size) * 16)))
            line(neck, (head[0], head[1] + int(0.07 * size * 16)))
            cv2.circle(image, head, int(round(0.075 * size * 16)), color, -1, cv2.LINE_AA, shift=4)
            eye = int(max(1.0, 0.012 * size) * 16)
            for j in (1, 2):
                cv2.circle(image, pt(j), eye, (30, 30, 30), -1, cv2.LINE_AA, shift=4)
        noisy = image.astype(np.int16)
        noisy += self._noise[index % len(self._noise)]
        image = np.clip(noisy, 0, 255).astype(np.uint8)
        x, y, w, h = self.stamp_box
        image[y : y + h, x : x + w] = 0
        font, white = cv2.FONT_HERSHEY_SIMPLEX, (255, 255, 255)
        cv2.putText(image, f"#{index}", (x + 4, y + h - 6), font, 0.5, white, 1, cv2.LINE_AA)
        return image

    def __iter__(self) -> Iterator[Frame]:
        if self._closed.is_set():
            raise SourceError("the synthetic source is closed")
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        step = 1.0 / self.fps
        start = time.monotonic()
        index = 0
        while (self.frames is None or index < self.frames) and not self._closed.is_set():
            image = self.render(index)
            if self.realtime:
                due = start + index * step
                while (left := due - time.monotonic()) > 0:
                    if self._closed.wait(min(left, 0.02)):
                        return
                if time.monotonic() - due > step:  # fell behind (a slow consumer): keep the pace from now
                    start = time.monotonic() - index * step
            yield Frame(image=image, index=index, time=index * step, captured_at=time.monotonic())
            index += 1

    def close(self) -> None:
        self._closed.set()
