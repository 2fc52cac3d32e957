"""A video file decoded in a process of its own (``--io-processes``): the frames are those of
:class:`~.files.VideoFileSource`, written into shared-memory slots; only slot numbers come back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..system.priority import lower_this_process
from .shared_frames import CONTEXT, POLL, Child, Failed, Layout, SharedFrames, attached, take_free
from ..types import Frame
from ..sources.base import Closable, SourceError, VideoInfo
from ..sources.files import VideoFileSource
from ..sources.spec import SourceKind


@dataclass(frozen=True)
class Finished:
    """The end of the file; ``cpu_s``: the child's CPU time, its start-up included."""

    cpu_s: float


@dataclass(frozen=True)
class Decoded:
    """Frame ``index`` (shown at ``time``) is in ``slot``."""

    slot: int
    index: int
    time: float | None
    ms: float = 0.0  # the child's time to decode it and copy it into the slot (not its wait for a slot)


class DecodeProcessSource(Closable):
    """The frames of a video file, decoded in a child process into a :class:`SharedFrames` ring
    of ``slots`` frames (:attr:`ring`).

    The file is opened here first, so a bad file fails with the same :class:`SourceError` as
    :class:`VideoFileSource`. A frame's ``image`` is its slot itself when a render process takes
    the slots over (``ring.hand_over``), else a copy and the slot is free at once. A child that
    dies or fails ends the iteration with a one-line :class:`SourceError`. Iterated once.
    ``threads``: the decoder's (see :class:`VideoFileSource`); ``background``: the child runs
    below normal priority (:mod:`~vitpose_live.system.priority`).
    """

    kind = SourceKind.VIDEO
    is_live = False

    def __init__(self, path: str | Path, *, slots: int, threads: int | None = None, background: bool = False) -> None:
        self.path = Path(path)
        with VideoFileSource(self.path, threads) as probe:
            self._info = probe.info
        self.ring = SharedFrames(slots, self._info.height, self._info.width)
        self._stop = CONTEXT.Event()
        receiver, sender = CONTEXT.Pipe(duplex=False)
        self._child = Child("decode", SourceError, _decode, (str(self.path), threads, background,
                                                             self.ring.layout, self.ring.free, sender, self._stop))
        self.ring.watched.append(self._child)
        try:
            self._child.start()
        except BaseException:
            self.ring.unlink()
            raise
        finally:
            sender.close()  # ours: with it closed, the child's death reads as the end of the pipe
        self._frames = receiver
        self._iterated = self._closed = False
        self._decode_ms, self._decoded = 0.0, 0
        self.cpu_s: float | None = None  # the decode process's CPU seconds, once it has finished

    @property
    def info(self) -> VideoInfo:
        return self._info

    @property
    def stage_ms(self) -> dict[str, float]:
        """The decode process's mean milliseconds per frame to decode and copy into its slot."""
        return {"decode_process.decode": round(self._decode_ms / max(self._decoded, 1), 3)}

    def __iter__(self) -> Iterator[Frame]:
        if self._iterated or self._closed:
            raise SourceError(f"'{self.path}' is decoded in another process once: open it again")
        self._iterated = True
        return self._read()

    def _read(self) -> Iterator[Frame]:
        while (message := self._receive()) is not None:
            self._decode_ms, self._decoded = self._decode_ms + message.ms, self._decoded + 1
            image = self.ring.view(message.slot)
            if self.ring.hand_over:
                self.ring.owe(message.index, message.slot)
            else:
                image = image.copy()
                self.ring.free.put(message.slot)
            yield Frame(image=image, index=message.index, time=message.time, captured_at=time.monotonic())
        self._child.expected_end = True

    def _receive(self) -> Decoded | None:
        """The next frame's message; None at the end (or once closed)."""
        try:
            while not self._frames.poll(POLL):
                if self._closed:
                    return None
                self.ring.check()
            message = self._frames.recv()
        except (EOFError, OSError):  # the child closed the pipe without its end marker, or we did
            if self._closed:
                return None
            raise self._child.ended() from None
        if isinstance(message, Failed):
            raise SourceError(message.text)
        if isinstance(message, Finished):
            self.cpu_s = message.cpu_s
            return None
        return message

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._stop.set()
            self._child.stop(timeout=1.0)
            self._frames.close()
            self.ring.unlink()


def _decode(path: str, threads: int | None, background: bool, layout: Layout, free, frames, stop) -> None:
    """The child: decode ``path`` (on ``threads``; below normal priority with ``background``) into
    free slots, sending a :class:`Decoded` for each, then :class:`Finished`."""
    if background:
        lower_this_process()
    with attached(layout) as views, frames:
        _decode_into(path, threads, views, free, frames, stop)


def _decode_into(path: str, threads: int | None, views, free, frames, stop) -> None:
    try:
        with VideoFileSource(path, threads) as source:
            decoding = iter(source)
            while (frame := _timed(next, decoding, None)).value is not None:
                slot = take_free(free, stop)
                if slot is None:
                    return
                copy = _timed(np.copyto, views[slot], frame.value.image)
                frames.send(Decoded(slot, frame.value.index, frame.value.time, frame.ms + copy.ms))
        frames.send(Finished(round(time.process_time(), 3)))
    except (BrokenPipeError, EOFError):  # the parent is gone or stopped reading
        pass
    except Exception as error:  # noqa: BLE001 - sent to the parent as its one line
        frames.send(Failed.of(error, f"decoding '{path}' failed: "))


@dataclass(frozen=True)
class _Timed:
    value: object
    ms: float


def _timed(function, *args) -> _Timed:
    started = time.perf_counter()
    value = function(*args)
    return _Timed(value, (time.perf_counter() - started) * 1e3)
