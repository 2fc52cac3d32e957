"""A local camera, read through OpenCV."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from ..types import Frame
from .base import DeviceReader, SourceError, VideoInfo
from .pixels import _to_rgb
from .reconnect import Backoff
from .spec import SourceKind

log = logging.getLogger(__name__)


def _default_capture(index: int):
    """``cv2.VideoCapture`` on the platform's native camera API (V4L2 on Linux), opened with
    OpenCV's own log silenced: a missing camera is our one line ("no camera at index 5"), not
    OpenCV's ``[ WARN ... cap_v4l ...]`` lines before it (``--verbose`` keeps them)."""
    with _opencv_quiet(not log.isEnabledFor(logging.DEBUG)):
        if sys.platform.startswith("linux"):
            return cv2.VideoCapture(index, cv2.CAP_V4L2)
        return cv2.VideoCapture(index)


@contextlib.contextmanager
def _opencv_quiet(quiet: bool = True):
    """OpenCV's log level at errors-only for the block, as it was after (a no-op when not ``quiet``)."""
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if not quiet or logging_api is None:
        yield
        return
    before = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging_api.setLogLevel(before)


class CameraSource(DeviceReader):
    """Frames from a local camera through OpenCV, converted to RGB.

    ``width``, ``height`` and ``fps`` are requested from the camera, which honours what it
    can; :attr:`info` says what it agreed to. ``time`` is seconds since the first frame
    (monotonic clock). A camera that is not there fails on opening. One that stops delivering
    is reopened up to ``reconnect_attempts`` times, ``backoff`` seconds apart and doubling
    (:attr:`retry`; under 2 s in all by default), before :class:`SourceError` ends the
    iteration; ``index`` keeps counting across a reconnection. ``capture_factory(index)`` makes
    the capture object (anything with ``isOpened``/``read``/``set``/``get``/``release``), so
    tests can fake one.
    ``close`` may be called from another thread: it waits up to a second for a read in progress.
    """

    kind = SourceKind.CAMERA
    is_live = True

    def __init__(
        self,
        index: int,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        reconnect_attempts: int = 3,
        backoff: float = 0.25,
        capture_factory: Callable[[int], object] = _default_capture,
    ) -> None:
        self.index = int(index)
        self._wanted = (width, height, fps)
        self.retry = Backoff(attempts=max(0, int(reconnect_attempts)), first=float(backoff))
        self._factory = capture_factory
        super().__init__()
        self._next_index = 0
        self._started: float | None = None
        self._capture = self._open()
        if self._capture is None:
            hint = "is it connected?" if self.index == 0 else "is it connected? try --source 0"
            raise SourceError(f"no camera at index {self.index} ({hint})")
        self._info = self._read_info(self._capture)

    @property
    def info(self) -> VideoInfo:
        return self._info

    def _open(self):
        """A started capture, or None when the camera cannot be opened."""
        try:
            capture = self._factory(self.index)
            opened = capture is not None and capture.isOpened()
        except (cv2.error, OSError) as error:
            log.debug("opening camera %d failed: %s", self.index, error)
            return None
        if not opened:
            if capture is not None:
                capture.release()
            return None
        width, height, fps = self._wanted
        wanted = {"width": (cv2.CAP_PROP_FRAME_WIDTH, width), "height": (cv2.CAP_PROP_FRAME_HEIGHT, height)}
        wanted["fps"] = (cv2.CAP_PROP_FPS, fps)
        for name, (prop, value) in wanted.items():
            if value and not capture.set(prop, float(value)):
                log.info("camera %d ignored the request for %s=%s", self.index, name, value)
        return capture

    def _read_info(self, capture) -> VideoInfo:
        width, height, fps = self._wanted

        def get(prop) -> float:
            try:
                value = float(capture.get(prop))
            except (cv2.error, TypeError, ValueError):
                return 0.0
            return value if math.isfinite(value) and value > 0 else 0.0

        fourcc = int(get(cv2.CAP_PROP_FOURCC))
        codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\0 ").lower()
        return VideoInfo(
            width=int(get(cv2.CAP_PROP_FRAME_WIDTH) or width or 0),
            height=int(get(cv2.CAP_PROP_FRAME_HEIGHT) or height or 0),
            fps=get(cv2.CAP_PROP_FPS) or float(fps or 30.0),
            frame_count=None,
            duration=None,
            has_audio=False,
            codec=codec if codec.isprintable() and codec else "camera",
        )

    def _read(self) -> np.ndarray | None:
        """The next picture as RGB, or None when the camera did not give one."""
        with self._lock:
            if self._closed.is_set() or self._capture is None:
                return None
            try:
                ok, picture = self._capture.read()
            except cv2.error as error:
                log.warning("camera %d read failed: %s", self.index, error)
                ok, picture = False, None
            if self._closed.is_set():
                self._release()
                return None
        if not ok or picture is None or not picture.size:
            return None
        return _to_rgb(picture)

    def _release(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()

    def _reconnect(self) -> np.ndarray | None:
        """Reopen the camera and read one picture; None once closed; SourceError when it gives up."""
        log.warning("camera %d stopped delivering frames; reopening", self.index)
        with self._lock:
            self._release()
        for attempt in self.retry.retries(self._closed):
            capture = self._open()
            if capture is None:
                continue
            with self._lock:
                if self._closed.is_set():
                    capture.release()
                    return None
                self._capture = capture
            picture = self._read()
            if picture is not None:
                log.warning("camera %d is back after %d attempt(s)", self.index, attempt)
                return picture
            with self._lock:
                self._release()
        if self._closed.is_set():
            return None
        if self._next_index == 0:
            raise SourceError(
                f"camera {self.index} opened but delivered no frames (in use by another program?)"
            )
        raise SourceError(f"camera {self.index} stopped delivering frames (unplugged?)")

    def __iter__(self) -> Iterator[Frame]:
        if self._closed.is_set():
            raise SourceError(f"camera {self.index} is closed")
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        while not self._closed.is_set():
            picture = self._read()
            if picture is None:
                picture = self._reconnect()
                if picture is None:
                    return
            now = time.monotonic()
            if self._started is None:
                self._started = now
            yield Frame(image=picture, index=self._next_index, time=now - self._started, captured_at=now)
            self._next_index += 1

