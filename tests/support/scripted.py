"""A scripted scene for tests of tracking and detection policy: frames written as PNG (lossless,
so the detector can tell which frame it is looking at), and a person detector that returns the
script's boxes and scores for that frame, counts its calls, and can be made slow."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
from support.media import drawn_frame

from vitpose_live.models.device import resolve
from vitpose_live.types import Detections


def _key(image) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(np.asarray(image)).tobytes()).digest()


# Three people well apart: A walks right and scores high, B stands and scores just above the
# threshold 0.5, C stands and scores just below it.
THRESHOLD = 0.5
A_SCORE, B_SCORE, C_SCORE = 0.9, THRESHOLD + 0.05, THRESHOLD - 0.05


def scene(index: int) -> Detections:
    a = [10 + 2 * index, 20, 70 + 2 * index, 180]
    b = [150, 30, 200, 190]
    c = [240, 30, 290, 190]
    return Detections(np.array([a, b, c], np.float32), np.array([A_SCORE, B_SCORE, C_SCORE], np.float32))


def write_frames(folder: Path, count: int, width: int = 320, height: int = 240) -> list[np.ndarray]:
    """``count`` distinct pictures as ``folder/0000.png``…; returns them (RGB)."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = [drawn_frame(i, width, height) for i in range(count)]
    for i, image in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return frames


def write_lossless_clip(path: Path, frames, fps: int = 30) -> Path:
    """``frames`` (RGB arrays, any iterable) as a lossless FFV1 video at ``fps``: decoded, each is
    the same pixels again (so :class:`ScriptedDetector` knows it), and unlike a folder of frames
    a video's frames have times (a tracker then goes by the video's time, not the clock's)."""
    import av

    with av.open(str(path), "w") as container:
        stream = None
        for image in frames:
            if stream is None:
                stream = container.add_stream("ffv1", rate=fps)
                stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "bgr0"
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="bgr0")))
        if stream is not None:
            container.mux(stream.encode())
    return path


class ScriptedDetector:
    """Knows each frame by its exact pixels and returns ``script(index)`` above its threshold
    (strictly greater, like the real one), highest first, at most ``max_persons``. An unknown
    picture (a warm-up frame) has nobody in it. ``calls`` lists the frame indices it was
    called on (None for unknown pictures); every call takes at least ``delay`` seconds."""

    def __init__(self, frames, script=scene, *, delay: float = 0.0) -> None:
        """``frames``: any iterable of the pictures (only their digests are kept)."""
        self._index = {_key(image): i for i, image in enumerate(frames)}
        self.script, self.delay = script, delay
        self.placement = resolve("cpu", "fp32")
        self.threshold, self.max_persons = 0.5, None
        self.name = "scripted-detector"
        self.model = SimpleNamespace(config=SimpleNamespace())
        self.calls: list[int | None] = []
        self._lock = threading.Lock()

    def __call__(self, image, threshold: float | None = None, max_persons: int | None = None) -> Detections:
        started = time.monotonic()
        index = self._index.get(_key(image))
        with self._lock:
            self.calls.append(index)
        found = self.script(index) if index is not None else Detections.empty()
        threshold = self.threshold if threshold is None else threshold
        cap = self.max_persons if max_persons is None else max_persons
        keep = np.flatnonzero(found.scores > threshold)[:cap]
        time.sleep(max(0.0, self.delay - (time.monotonic() - started)))
        return Detections(found.boxes[keep], found.scores[keep])

    def detect_batch(self, images, threshold: float | None = None, max_persons: int | None = None) -> list[Detections]:
        return [self(image, threshold, max_persons) for image in images]

    @property
    def frames_seen(self) -> list[int]:
        with self._lock:
            return [i for i in self.calls if i is not None]
