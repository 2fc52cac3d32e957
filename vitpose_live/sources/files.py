"""Files: videos decoded with PyAV, still images decoded with OpenCV."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from ..types import Frame
from ..errors import os_reason
from .base import Closable, SourceError, VideoInfo
from .pixels import _to_rgb8
from .spec import SourceKind, file_kind

log = logging.getLogger(__name__)


class VideoFileSource(Closable):
    """The frames of a video file, decoded with PyAV: on FFmpeg's own threads, or with
    ``threads=1`` on the thread that iterates (decode and the conversion to RGB alike).

    Opening decodes the first frame, so a file that is missing, not media, without a video
    stream or without a single decodable frame fails here with :class:`SourceError`. Frames come
    out upright (the display matrix is applied) with ``time`` in seconds from the stream start.
    A decode error part-way ends the iteration with a logged warning instead of raising.
    Iterating a second time starts again from the beginning; closing ends an iteration in
    progress (close from the iterating thread, or once it has stopped).
    """

    kind = SourceKind.VIDEO
    is_live = False

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1 (None: FFmpeg's choice), got {threads}")
        self.path = Path(path)
        self._name = str(path)
        self._threads = threads
        self._container, self._stream = _open_video(self.path, threads)
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

    @property
    def threads(self) -> int | None:
        """The threads it decodes on (None: FFmpeg's choice)."""
        return self._threads

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise SourceError(f"'{self._name}' is closed")
        if self._first is None:  # iterated before: decode again from the start
            self._container.close()
            self._container, self._stream = _open_video(self.path, self._threads)
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
            image = pending.to_ndarray(format="rgb24", threads=self._threads or 0)
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


def _open_video(path: Path, threads: int | None = None):
    name = str(path)
    if not path.exists():
        raise SourceError(f"cannot open video '{name}': file not found")
    if path.is_dir():
        raise SourceError(f"cannot open video '{name}': it is a directory")
    try:
        container = av.open(name, metadata_errors="ignore")
    except (FileNotFoundError, PermissionError, IsADirectoryError) as error:
        raise SourceError(f"cannot open video '{name}': {os_reason(error)}") from None
    except (av.error.FFmpegError, OSError) as error:
        raise SourceError(f"'{name}' is not a video FFmpeg can read ({os_reason(error)})") from None
    moving = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not moving:  # cover art of a music file is a "video" stream of one picture
        container.close()
        raise SourceError(f"'{name}' is not a video (no video stream)")
    stream = moving[0]
    if threads is None:
        stream.thread_type = "AUTO"
    else:
        stream.thread_type = "NONE" if threads == 1 else "AUTO"
        stream.codec_context.thread_count = threads
    return container, stream


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
    EXIF orientation applied. A GIF is read with PyAV when this OpenCV has no GIF decoder
    (before 4.11), so a one-frame GIF (an image to :func:`~.spec.classify`) always opens."""
    path = Path(path)
    if not path.is_file():
        reason = "it is a directory" if path.is_dir() else "file not found"
        raise SourceError(f"cannot read image '{path}': {reason}")
    data = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it cannot open non-ASCII paths everywhere
    image = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR) if data.size else None
    if image is None and path.suffix.lower() == ".gif":
        picture = _first_picture(path)
        if picture is not None:
            return picture
    if image is None:
        raise SourceError(f"cannot read image '{path}': not an image OpenCV can decode")
    return _to_rgb8(image)


def _first_picture(path: Path) -> np.ndarray | None:
    """The first frame PyAV decodes from ``path`` as contiguous RGB, or None."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            for frame in container.decode(video=0):
                return np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, OSError, ValueError) as error:
        log.debug("PyAV could not read '%s' either: %s", path, error)
    return None


class ImageSource(Closable):
    """One still image as a one-frame source (``index`` 0, ``time`` None). Read on opening."""

    kind = SourceKind.IMAGE
    is_live = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.image = read_image(self.path)
        codec = self.path.suffix.lower().lstrip(".") or "image"
        self._info = VideoInfo(
            width=self.width,
            height=self.height,
            fps=None,
            frame_count=1,
            duration=None,
            has_audio=False,
            codec=codec,
        )

    @property
    def info(self) -> VideoInfo:
        """The picture's size; ``fps`` None, ``frame_count`` 1, ``codec`` the file's extension."""
        return self._info

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


def open_file_source(path: str | Path, threads: int | None = None) -> VideoFileSource | ImageSource:
    """An :class:`ImageSource` for what :func:`~.spec.classify` calls an image (an image
    extension, or a GIF of one frame), else a :class:`VideoFileSource` decoding on ``threads``."""
    if file_kind(path) is SourceKind.IMAGE:
        return ImageSource(path)
    return VideoFileSource(path, threads)
