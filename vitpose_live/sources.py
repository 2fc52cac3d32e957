"""Where frames come from: files (videos with PyAV, images with OpenCV), folders of images,
cameras (OpenCV), network streams (PyAV) and a synthetic scene of stick figures.

Every source yields :class:`~vitpose_live.types.Frame` records (RGB uint8, contiguous), has
``is_live`` (True when frames arrive at the pace of the world and may be dropped), and raises
:class:`SourceError` with a one-line message a user can act on when it cannot be used.
:func:`open_source` picks the source from what the user typed.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import VitposeError
from .skeletons import COCO_KEYPOINTS
from .types import Frame

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".bmp", ".jpeg", ".jpg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm", ".pnm"}
)


class SourceError(VitposeError):
    """A file that cannot be read as frames; the message is one line meant for the user."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as read from its headers when it is opened.

    ``width`` and ``height`` are those of the frames the source yields, i.e. after ``rotation``
    (degrees counter-clockwise, in (-180, 180], from the display matrix; rounded to quarter turns)
    has been applied. ``time_base`` is the video stream's, handy for a sink keeping timestamps.
    """

    width: int
    height: int
    fps: float
    frame_count: int | None
    duration: float | None
    has_audio: bool
    codec: str
    rotation: int = 0
    time_base: Fraction | None = None


class VideoFileSource:
    """The frames of a video file, decoded with PyAV on FFmpeg's own threads.

    Opening decodes the first frame, so a file that is missing, not media, without a video
    stream or without a single decodable frame fails here with :class:`SourceError`. Frames come
    out upright (the display matrix is applied) with ``time`` in seconds from the stream start.
    A decode error part-way ends the iteration with a logged warning instead of raising.
    Iterating a second time starts again from the beginning; closing ends an iteration in
    progress (close from the iterating thread, or once it has stopped).
    """

    is_live = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._name = str(path)
        self._container, self._stream = _open_video(self.path)
        try:
            self._reader = _Reader(self._container, self._stream, self._name)
            first = next(self._reader, None)
            if first is None:
                if self._reader.failure is None and not self._reader.packets and not self._stream.frames:
                    raise SourceError(f"'{self._name}' has no frames")
                raise SourceError(f"'{self._name}' has no decodable frames (damaged or truncated?)")
        except BaseException:
            self._container.close()
            raise
        self._first: av.VideoFrame | None = first
        self._info = _video_info(self._container, self._stream, first)
        self._closed = False

    @property
    def info(self) -> VideoInfo:
        return self._info

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise SourceError(f"'{self._name}' is closed")
        if self._first is None:  # iterated before: decode again from the start
            self._container.close()
            self._container, self._stream = _open_video(self.path)
            self._reader = _Reader(self._container, self._stream, self._name)
            first = next(self._reader, None)
        else:
            first, self._first = self._first, None
        return self._frames(first, self._reader, self._stream.start_time)

    def _frames(self, first: av.VideoFrame | None, reader: _Reader, start: int | None) -> Iterator[Frame]:
        if first is None:
            return
        turns = (self._info.rotation // 90) % 4
        fps = self._info.fps
        if start is None:
            start = first.pts
        pending: av.VideoFrame | None = first
        index = 0
        while pending is not None:
            image = pending.to_ndarray(format="rgb24")
            if turns:
                image = np.rot90(image, turns)
            if pending.pts is not None and pending.time_base is not None and start is not None:
                seconds = float((pending.pts - start) * pending.time_base)
            else:
                seconds = index / fps
            yield Frame(
                image=np.ascontiguousarray(image),
                index=index,
                time=seconds,
                captured_at=time.monotonic(),
            )
            index += 1
            pending = None if self._closed else next(reader, None)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()

    def __enter__(self) -> VideoFileSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Reader:
    """Decoded ``av.VideoFrame``s of one stream; stops (and remembers why) at the first error."""

    def __init__(self, container, stream, name: str) -> None:
        self._packets = container.demux(stream)
        self._name = name
        self._queue: list[av.VideoFrame] = []
        self.packets = 0  # packets with data seen
        self.failure: Exception | None = None

    def __iter__(self) -> _Reader:
        return self

    def __next__(self) -> av.VideoFrame:
        while not self._queue:
            if self._packets is None:
                raise StopIteration
            try:
                packet = next(self._packets)
                if packet.size:
                    self.packets += 1
                self._queue = list(packet.decode())
            except StopIteration:
                self._packets = None
            except (av.error.FFmpegError, ValueError, OSError) as error:
                self._packets = None
                self.failure = error
                log.warning("stopped reading '%s' after a decode error: %s", self._name, error)
        return self._queue.pop(0)


def _open_video(path: Path):
    name = str(path)
    if not path.exists():
        raise SourceError(f"cannot open video '{name}': file not found")
    if path.is_dir():
        raise SourceError(f"cannot open video '{name}': it is a directory")
    try:
        container = av.open(name, metadata_errors="ignore")
    except (FileNotFoundError, PermissionError, IsADirectoryError) as error:
        raise SourceError(f"cannot open video '{name}': {_reason(error)}") from None
    except (av.error.FFmpegError, OSError) as error:
        raise SourceError(f"'{name}' is not a video FFmpeg can read ({_reason(error)})") from None
    moving = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not moving:  # cover art of a music file is a "video" stream of one picture
        container.close()
        raise SourceError(f"'{name}' is not a video (no video stream)")
    stream = moving[0]
    stream.thread_type = "AUTO"
    return container, stream


def _reason(error: BaseException) -> str:
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return reason[0].lower() + reason[1:]


def _video_info(container, stream, first: av.VideoFrame) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 30.0
    rotation = round((getattr(first, "rotation", 0) or 0) / 90) * 90  # quarter turns only
    rotation = (rotation + 179) % 360 - 179  # in (-180, 180]: -180 reads as 180
    width, height = first.width, first.height
    if (rotation // 90) % 2:
        width, height = height, width
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = None
    return VideoInfo(
        width=width,
        height=height,
        fps=fps,
        frame_count=stream.frames or None,
        duration=duration,
        has_audio=bool(container.streams.audio),
        codec=stream.codec_context.codec.canonical_name,
        rotation=rotation,
        time_base=stream.time_base,
    )


def read_image(path: str | Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB: gray is expanded, alpha dropped, 16-bit scaled to 8,
    EXIF orientation applied."""
    path = Path(path)
    if not path.is_file():
        reason = "it is a directory" if path.is_dir() else "file not found"
        raise SourceError(f"cannot read image '{path}': {reason}")
    data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it cannot open non-ASCII paths everywhere
    image = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR) if data.size else None
    if image is None:
        raise SourceError(f"cannot read image '{path}': not an image OpenCV can decode")
    return _to_rgb8(image)


def _to_rgb8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB))
    if image.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGRA2RGB))
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


class ImageSource:
    """One still image as a one-frame source (``index`` 0, ``time`` None). Read on opening."""

    is_live = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.image = read_image(self.path)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(image=self.image, index=0, time=None, captured_at=time.monotonic())

    def close(self) -> None:
        pass

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_file_source(path: str | Path) -> VideoFileSource | ImageSource:
    """An :class:`ImageSource` for image extensions (:data:`IMAGE_EXTENSIONS`), else a video."""
    if Path(path).suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(path)
    return VideoFileSource(path)


# --- live sources ---------------------------------------------------------------------------------


def _to_rgb(picture: np.ndarray) -> np.ndarray:
    """An OpenCV picture (BGR, BGRA or gray) as contiguous RGB."""
    if picture.ndim == 2 or picture.shape[2] == 1:
        return np.ascontiguousarray(cv2.cvtColor(picture, cv2.COLOR_GRAY2RGB))
    if picture.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(picture, cv2.COLOR_BGRA2RGB))
    return np.ascontiguousarray(cv2.cvtColor(picture, cv2.COLOR_BGR2RGB))


def _default_capture(index: int):
    """``cv2.VideoCapture`` on the platform's native camera API (V4L2 on Linux)."""
    if sys.platform.startswith("linux"):
        return cv2.VideoCapture(index, cv2.CAP_V4L2)
    return cv2.VideoCapture(index)


class CameraSource:
    """Frames from a local camera through OpenCV, converted to RGB.

    ``width``, ``height`` and ``fps`` are requested from the camera, which honours what it
    can; :attr:`info` says what it agreed to. ``time`` is seconds since the first frame
    (monotonic clock). A camera that is not there fails on opening. One that stops delivering
    is reopened up to ``reconnect_attempts`` times, ``backoff`` seconds apart and doubling
    (under 2 s in all by default), before :class:`SourceError` ends the iteration; ``index``
    keeps counting across a reconnection. ``capture_factory(index)`` makes the capture object
    (anything with ``isOpened``/``read``/``set``/``get``/``release``), so tests can fake one.
    ``close`` may be called from another thread: it waits up to a second for a read in progress.
    """

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
        self.reconnect_attempts = max(0, int(reconnect_attempts))
        self.backoff = float(backoff)
        self._factory = capture_factory
        self._closed = threading.Event()
        self._lock = threading.Lock()
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
        for attempt in range(self.reconnect_attempts):
            if self._closed.wait(self.backoff * 2**attempt):
                return None
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
                log.warning("camera %d is back after %d attempt(s)", self.index, attempt + 1)
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

    def close(self) -> None:
        self._closed.set()
        if self._lock.acquire(timeout=1.0):  # else the reading thread releases it after its read
            try:
                self._release()
            finally:
                self._lock.release()

    def __enter__(self) -> CameraSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp"})


def _redact(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def _stream_reason(error: BaseException) -> str:
    if isinstance(error, av.error.ExitError):  # PyAV's timeout interrupts FFmpeg this way
        return "timed out waiting for data"
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return reason[0].lower() + reason[1:]


class StreamSource:
    """Frames of a network stream (rtsp, rtmp, http(s), udp, tcp) decoded with PyAV, tuned for
    low delay: RTSP over TCP, slice-threaded decoding and, except over HTTP (often a file or
    HLS), no input buffering, so the packets read while probing are dropped and the first
    frame shown is a current one.

    Opening connects and reads the stream headers, trying ``reconnect_attempts`` times, so a
    URL that refuses or says nothing fails here with :class:`SourceError`. While iterating, a
    stream that ends, errors or goes quiet for ``read_timeout`` seconds is reopened up to
    ``reconnect_attempts`` times with back-off (``backoff`` seconds, doubling, at most
    ``max_backoff``); ``index`` keeps counting. A stream with a known duration (a file served
    over HTTP) that played to its end simply ends. ``time`` is seconds from the first frame,
    from the stream's timestamps, kept increasing across reconnections (the monotonic clock when
    frames carry none). ``options`` adds FFmpeg options. ``close`` may be called from another
    thread: it waits up to a second for a read in progress.
    """

    is_live = True

    def __init__(
        self,
        url: str,
        *,
        reconnect_attempts: int = 5,
        backoff: float = 0.5,
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
        max_backoff: float = 2.0,
        options: dict[str, str] | None = None,
    ) -> None:
        self.url = str(url)
        self._name = _redact(self.url)
        self.reconnect_attempts = max(1, int(reconnect_attempts))
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._timeouts = (float(open_timeout), float(read_timeout))
        scheme = self.url.split("://", 1)[0].lower()
        self._options = {"flags": "low_delay", "max_delay": "500000"}
        if scheme not in ("http", "https"):  # real-time protocols: drop what probing read, start now
            self._options["fflags"] = "nobuffer"
        if scheme in ("rtsp", "rtsps"):
            self._options["rtsp_transport"] = "tcp"
        self._options.update({str(k): str(v) for k, v in (options or {}).items()})
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._container = self._stream = self._packets = None
        self._next_index = 0
        self._started: float | None = None
        self._last_time: float | None = None
        self._anchor: tuple[float, float] | None = None  # (pts seconds, source time) of a connection
        self.reconnects = 0
        reason = ""
        for attempt in range(self.reconnect_attempts):
            if attempt and self._closed.wait(self._delay(attempt)):
                break
            reason = self._connect()
            if not reason:
                break
        if reason:
            tries = f"{self.reconnect_attempts} attempts" if self.reconnect_attempts > 1 else "1 attempt"
            raise SourceError(f"cannot open stream '{self._name}' ({reason}; tried {tries})")
        self._info = self._make_info()

    @property
    def info(self) -> VideoInfo:
        return self._info

    def _delay(self, attempt: int) -> float:
        return min(self.backoff * 2 ** (attempt - 1), self.max_backoff)

    def _connect(self) -> str:
        """Open the stream; '' on success, else why not."""
        try:
            container = av.open(
                self.url, options=dict(self._options), timeout=self._timeouts, metadata_errors="ignore"
            )
        except (av.error.FFmpegError, OSError, ValueError) as error:
            return _stream_reason(error)
        pictures = av.stream.Disposition.attached_pic
        videos = [s for s in container.streams.video if not s.disposition & pictures]
        if not videos:
            container.close()
            return "no video in it"
        stream = videos[0]
        stream.thread_type = "AUTO"
        stream.codec_context.options = {"flags": "+low_delay"}  # slice threads: no frames held back
        with self._lock:
            if self._closed.is_set():
                container.close()
                return "closed"
            self._container, self._stream = container, stream
            self._packets = container.demux(stream)
            self._anchor = None
        return ""

    def _make_info(self) -> VideoInfo:
        container, stream = self._container, self._stream
        rate = stream.average_rate or stream.guessed_rate
        duration = container.duration / av.time_base if (container.duration or 0) > 0 else None
        return VideoInfo(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=float(rate) if rate else 30.0,
            frame_count=None,
            duration=duration,
            has_audio=bool(container.streams.audio),
            codec=stream.codec_context.codec.canonical_name,
            time_base=stream.time_base,
        )

    def _disconnect(self) -> None:
        container, self._container, self._stream, self._packets = self._container, None, None, None
        if container is not None:
            container.close()

    def _read(self) -> tuple[list[av.VideoFrame], str | None]:
        """The frames of the next packet and, when the connection is over, why ('' at a clean end)."""
        with self._lock:
            if self._closed.is_set() or self._packets is None:
                return [], "closed"
            try:
                packet = next(self._packets)
            except StopIteration:
                return [], ""
            except (av.error.FFmpegError, OSError, ValueError) as error:
                return [], _stream_reason(error)
            try:
                frames = list(packet.decode())
            except (av.error.FFmpegError, ValueError) as error:  # one bad packet: skip it
                log.debug("skipped a packet of '%s': %s", self._name, error)
                frames = []
            if self._closed.is_set():
                self._disconnect()
                return [], "closed"
            return frames, None

    def _played_to_end(self) -> bool:
        duration = self._info.duration
        if duration is None or self._anchor is None or self._last_time is None:
            return False
        anchor_pts, anchor_time = self._anchor
        start = float((self._stream.start_time or 0) * self._stream.time_base)
        played = self._last_time - anchor_time + anchor_pts - start  # the last frame's stream time
        return played >= duration - max(2.0 / self._info.fps, 0.1)

    def _reconnect(self, reason: str) -> bool:
        """Reopen after a drop; False once closed; SourceError when it does not come back."""
        log.warning("stream '%s' dropped (%s); reconnecting", self._name, reason or "it ended")
        with self._lock:
            self._disconnect()
        for attempt in range(1, self.reconnect_attempts + 1):
            if self._closed.wait(self._delay(attempt)):
                return False
            reason = self._connect()
            if not reason:
                self.reconnects += 1
                log.warning("stream '%s' is back after %d attempt(s)", self._name, attempt)
                return True
            if self._closed.is_set():
                return False
        attempts = self.reconnect_attempts
        raise SourceError(
            f"stream '{self._name}' dropped and did not come back after {attempts} attempts ({reason})"
        )

    def _time_of(self, frame: av.VideoFrame, now: float) -> float:
        wall = now - self._started
        step = 1.0 / self._info.fps
        if frame.pts is None or frame.time_base is None:
            seconds = wall
        else:
            pts = float(frame.pts * frame.time_base)
            if self._anchor is None:  # first frame of a connection
                self._anchor = (pts, 0.0 if self._last_time is None else max(self._last_time + step, wall))
            seconds = self._anchor[1] + pts - self._anchor[0]
            if self._last_time is not None and seconds <= self._last_time:  # timestamps jumped back
                self._anchor = (pts, self._last_time + step)
                seconds = self._anchor[1]
        if self._last_time is not None:
            seconds = max(seconds, self._last_time)
        self._last_time = seconds
        return seconds

    def __iter__(self) -> Iterator[Frame]:
        if self._closed.is_set():
            raise SourceError(f"stream '{self._name}' is closed")
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        barren = 0  # reconnections in a row that gave no frame: a stream that connects, then drops
        while not self._closed.is_set():
            frames, ended = self._read()
            for frame in frames:
                now = time.monotonic()
                if self._started is None:
                    self._started = now
                image = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
                seconds = self._time_of(frame, now)
                yield Frame(image=image, index=self._next_index, time=seconds, captured_at=now)
                self._next_index += 1
                barren = 0
            if ended is None:
                continue
            if ended == "closed" or (ended == "" and self._played_to_end()):
                return
            if barren >= self.reconnect_attempts:
                attempts = self.reconnect_attempts
                raise SourceError(
                    f"stream '{self._name}' dropped and did not come back after {attempts} attempts"
                    f" (it connects but sends no pictures)"
                )
            if not self._reconnect(ended):
                return
            barren += 1

    def close(self) -> None:
        self._closed.set()
        if self._lock.acquire(timeout=1.0):  # else the reading thread closes it after its read
            try:
                self._disconnect()
            finally:
                self._lock.release()

    def __enter__(self) -> StreamSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _natural_key(path: str) -> list:
    """Sort key putting ``img2`` before ``img10``."""
    return [int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", path)]


class FolderSource:
    """The images of a directory (those with an image extension) or of a glob pattern
    (``"frames/*.png"``), in natural order (``img2`` before ``img10``).

    ``index`` counts the frames yielded; ``time`` is ``index / fps`` when ``fps`` is given, else
    None. Files that cannot be read as images are skipped with a logged warning. Opening lists
    the files and reads the first readable one (for :attr:`info`); nothing to read fails with
    :class:`SourceError`. Pictures may differ in size. Iterating again starts over.
    """

    is_live = False

    def __init__(self, spec: str | Path, *, fps: float | None = None) -> None:
        self.spec = str(spec)
        self.fps = float(fps) if fps else None
        if fps is not None and not fps > 0:
            raise SourceError(f"fps must be positive, got {fps}")
        if os.path.isdir(self.spec):
            names = [os.path.join(self.spec, name) for name in os.listdir(self.spec)]
            paths = [p for p in names if os.path.isfile(p) and Path(p).suffix.lower() in IMAGE_EXTENSIONS]
            if not paths:
                raise SourceError(f"no images in folder '{self.spec}'")
        else:
            paths = [p for p in glob.glob(self.spec) if os.path.isfile(p)]
            if not paths:
                raise SourceError(f"no files match '{self.spec}'")
        self.paths = [Path(p) for p in sorted(paths, key=_natural_key)]
        self._first: tuple[int, np.ndarray] | None = None
        for position, path in enumerate(self.paths):
            image = self._load(path)
            if image is not None:
                self._first = (position, image)
                break
        if self._first is None:
            raise SourceError(f"none of the {len(self.paths)} file(s) of '{self.spec}' is a readable image")
        height, width = self._first[1].shape[:2]
        self._info = VideoInfo(
            width=int(width),
            height=int(height),
            fps=self.fps or 30.0,
            frame_count=len(self.paths),
            duration=None,
            has_audio=False,
            codec="images",
        )
        self._closed = False

    @property
    def info(self) -> VideoInfo:
        """Size of the first image; ``fps`` is 30 when none was given; ``frame_count`` counts files."""
        return self._info

    @staticmethod
    def _load(path: Path) -> np.ndarray | None:
        try:
            return read_image(path)
        except (SourceError, OSError, cv2.error) as error:
            log.warning("skipped '%s': %s", path, error)
            return None

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise SourceError(f"'{self.spec}' is closed")
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        first_position, first_image = self._first
        index = 0
        for position in range(first_position, len(self.paths)):
            image = first_image if position == first_position else self._load(self.paths[position])
            if image is None:
                continue
            if self._closed:
                return
            seconds = index / self.fps if self.fps else None
            yield Frame(image=image, index=index, time=seconds, captured_at=time.monotonic())
            index += 1

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> FolderSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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


class SyntheticSource:
    """A made-up scene: ``persons`` stick figures (head, torso, swinging arms and legs) walking
    back and forth, on a shaded background with mild noise, with the frame index stamped in the
    top-left corner (white on a black box, :attr:`stamp_box`).

    Everything is a function of ``seed`` and the frame index, so two sources with the same
    arguments give the same pictures and :meth:`ground_truth` gives the COCO joints drawn.
    ``time`` is ``index / fps``. With ``realtime`` frames come at ``fps`` (monotonic clock,
    sleeping in short steps so ``close`` stops it quickly) and the source is live; without, as
    fast as they are drawn. ``frames=None`` never ends. For trying the app without a camera,
    and for tests.
    """

    stamp_box = (0, 0, 96, 22)  # x, y, width, height

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

    def __enter__(self) -> SyntheticSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_SYNTHETIC_OPTIONS = {
    "width": int, "height": int, "fps": float, "frames": int, "persons": int, "seed": int, "realtime": bool
}  # fmt: skip


def _synthetic_options(spec: str) -> dict:
    """``"synthetic:persons=3,fps=60"`` → ``{"persons": 3, "fps": 60.0}``."""
    _, _, text = spec.partition(":")
    options: dict = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = (s.strip() for s in item.partition("="))
        kind = _SYNTHETIC_OPTIONS.get(key)
        if kind is None or not sep:
            choices = ", ".join(_SYNTHETIC_OPTIONS)
            raise SourceError(f"bad synthetic option '{item}' (use key=value with keys {choices})")
        try:
            if kind is bool:
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                options[key] = value.lower() in ("1", "true", "yes", "on")
            else:
                options[key] = kind(value)
        except ValueError:
            needed = "true or false" if kind is bool else "a number"
            raise SourceError(f"synthetic option {key} needs {needed}, got '{value}'") from None
    return options


def open_source(spec: str | int | Path, **options):
    """The source ``spec`` names, built with ``options``.

    ``0`` / ``"0"`` (any integer): :class:`CameraSource`; ``"synthetic"`` or
    ``"synthetic:persons=3,fps=60"``: :class:`SyntheticSource`; a URL (rtsp, rtsps, rtmp, rtmps,
    http, https, udp, tcp): :class:`StreamSource`; a directory or a glob pattern (with ``*`` or
    ``?``): :class:`FolderSource`; anything else a video or image file (:func:`open_file_source`,
    which takes no options).
    """
    if isinstance(spec, int) and not isinstance(spec, bool):
        return CameraSource(spec, **options)
    text = str(spec).strip()
    if re.fullmatch(r"[0-9]+", text):
        return CameraSource(int(text), **options)
    if text == "synthetic" or text.startswith("synthetic:"):
        return SyntheticSource(**(_synthetic_options(text) | options))
    scheme, sep, _ = text.partition("://")
    if sep and scheme.lower() in STREAM_SCHEMES:
        return StreamSource(text, **options)
    if sep and re.fullmatch(r"[a-zA-Z][a-zA-Z0-9+.-]*", scheme):
        schemes = ", ".join(sorted(STREAM_SCHEMES))
        raise SourceError(f"unsupported URL scheme '{scheme}://' (use one of {schemes})")
    if os.path.isdir(text) or any(ch in text for ch in "*?"):
        return FolderSource(text, **options)
    if options:
        raise TypeError(f"a file source takes no options, got {', '.join(sorted(options))}")
    return open_file_source(text)
