"""What every source is: the :class:`Source` protocol, the :class:`VideoInfo` record it
describes itself with, and :class:`SourceError`.

Imports neither OpenCV nor PyAV, so the classifier (:mod:`.spec`) can use it before they load.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

from ..errors import VitposeError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..types import Frame


class SourceKind(enum.Enum):
    """What a source text names."""

    IMAGE = "image"
    VIDEO = "video"
    FOLDER = "folder"
    CAMERA = "camera"
    STREAM = "stream"
    SYNTHETIC = "synthetic"


class SourceError(VitposeError):
    """A source that cannot be opened or read; the message is one line meant for the user."""


@dataclass(frozen=True)
class VideoInfo:
    """What a source holds, as known when it is opened.

    ``width`` and ``height`` are those of the frames the source yields, i.e. after ``rotation``
    (degrees counter-clockwise, in (-180, 180], from the display matrix; rounded to quarter turns)
    has been applied. ``fps`` is None for a still image, which has ``frame_count`` 1.
    ``frame_count`` and ``duration`` are None when unknown or endless (cameras, streams).
    ``time_base`` is the video stream's, handy for a sink keeping timestamps.
    """

    width: int
    height: int
    fps: float | None
    frame_count: int | None
    duration: float | None
    has_audio: bool
    codec: str
    rotation: int = 0
    time_base: Fraction | None = None


@runtime_checkable
class Source(Protocol):
    """Where frames come from. Iterating yields :class:`~vitpose_live.types.Frame` records (RGB
    uint8, contiguous); ``is_live`` is True when frames arrive at the pace of the world and may be
    dropped; a source that cannot be used raises :class:`SourceError`. ``close`` ends an
    iteration in progress; ``with source:`` closes it on the way out."""

    @property
    def kind(self) -> SourceKind: ...

    @property
    def is_live(self) -> bool: ...

    @property
    def info(self) -> VideoInfo: ...

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class Closable:
    """The context-manager half of :class:`Source`: ``with source:`` calls ``close``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DeviceReader(Closable):
    """A source read by one thread and closed from another (a camera, a stream): :meth:`close`
    marks it closed and lets its device go (``_release``) under the read lock; when a read holds
    the lock for over a second, the reading thread lets it go after that read instead."""

    def __init__(self) -> None:
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def _release(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._closed.set()
        if self._lock.acquire(timeout=1.0):
            try:
                self._release()
            finally:
                self._lock.release()
