"""Drawing and video encoding in a process of its own (``--io-processes``): the frame is read
from its shared-memory slot (drawn on in place, then encoded), the poses come through a pipe.

:class:`RenderProcessSink` is a scene sink of :mod:`.run` (it draws the poses itself); the video
is the one :class:`~vitpose_live.outputs.video.VideoFileSink` writes, audio included, with the same drawing, so the
file is the threaded path's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..outputs.paths import SinkError
from ..system.priority import lower_this_process
from ..render import HudAnnotator, PoseAnnotator
from .shared_frames import CONTEXT, POLL, Child, Failed, Layout, SharedFrames, attached, parent_alive
from ..types import Frame, Poses

_CLOSE, _ABORT = "close", "abort"  # what the parent can say besides a Scene


@dataclass(frozen=True)
class Ready:
    """The child opened the video file."""


@dataclass(frozen=True)
class VideoSettings:
    """What the child's :class:`~vitpose_live.outputs.video.VideoFileSink` is opened with."""

    path: str
    width: int
    height: int
    fps: float | Fraction
    audio_from: str | None = None
    background: bool = False  # the whole child below normal priority (vitpose_live/system/priority.py)


@dataclass(frozen=True)
class Scene:
    """Draw ``poses`` (and the HUD's ``hud`` lines, if any) on the frame in ``slot``, encode it
    at ``time``, then free the slot."""

    slot: int
    time: float | None
    poses: Poses
    hud: tuple[str, ...] = ()


@dataclass(frozen=True)
class Closed:
    """The finished file's frame count, and the child's mean milliseconds per frame by step."""

    frames: int
    stage_ms: dict[str, float]
    cpu_s: float  # the child's CPU time, its start-up included


class RenderProcessSink:
    """An MP4 (H.264 + the source's audio) drawn and encoded in a child process.

    Opening waits for the child to open the file, so an output that cannot be written fails here
    with the :class:`SinkError` the threaded sink gives. From then on the slots of ``ring`` are
    handed over: each frame's slot is freed by the child once encoded. :meth:`close` finalises
    the file and waits for it; :meth:`abort` (or a child that dies) removes it. After
    :meth:`close`, :attr:`stage_ms` holds the child's ``draw`` and ``encode`` ms per frame and
    :attr:`cpu_s` its CPU seconds.
    """

    def __init__(self, ring: SharedFrames, video: VideoSettings, *, annotator: PoseAnnotator,
                 hud: HudAnnotator | None = None, start_timeout: float = 60.0) -> None:
        self.path = Path(video.path)
        self.stage_ms: dict[str, float] = {}
        self.cpu_s: float | None = None
        self._ring, self._state = ring, "open"
        self._conn, theirs = CONTEXT.Pipe()
        self._child = Child("drawing and encoding", SinkError, _render,
                            (ring.layout, ring.free, theirs, video, annotator, hud))
        try:
            self._child.start()
        finally:
            theirs.close()
        try:
            self._expect(Ready, start_timeout)
        except BaseException:
            self._state = "aborted"
            self._child.stop()
            self._conn.close()
            raise
        ring.watched.append(self._child)
        ring.hand_over = True

    def write_scene(self, frame: Frame, poses: Poses, time: float | None, hud: tuple[str, ...] = ()) -> None:
        """Hand ``frame``'s slot to the child with what to draw on it."""
        if self._state != "open":
            raise SinkError(f"cannot write '{self.path}': it is already {self._state}")
        if self._conn.poll():  # the child failed (its last words wait in the pipe)
            self._answer()
        self._send(Scene(self._ring.settle(frame.index), time, poses, tuple(hud)))

    def close(self) -> None:
        """Encode what was handed over, flush and finalise the file (or remove it on failure)."""
        if self._state == "open":
            self._state = "closed"
            try:
                self._send(_CLOSE)
                closed = self._expect(Closed, timeout=120.0)
                self.stage_ms, self.cpu_s = closed.stage_ms, closed.cpu_s
            except BaseException:
                self._remove()
                raise
            finally:
                self._child.stop()
                self._conn.close()

    def abort(self) -> None:
        """Stop the child and delete the partial file (nothing happens after :meth:`close`)."""
        if self._state == "open":
            self._state = "aborted"
            _send_quietly(self._conn, _ABORT)
            self._remove()
            self._conn.close()

    def _send(self, message) -> None:
        try:
            self._conn.send(message)
        except OSError:
            raise self._child.ended() from None

    def _remove(self) -> None:
        self._child.stop()
        self.path.unlink(missing_ok=True)

    def _expect(self, kind: type, timeout: float):
        """The child's next answer, which must be ``kind``; its failure or death as SinkError."""
        deadline = time.monotonic() + timeout
        while not self._conn.poll(POLL):
            self._child.check()
            if time.monotonic() > deadline:
                raise SinkError(f"the {self._child.what} process did not answer within {timeout:.0f} s")
        answer = self._answer()
        if not isinstance(answer, kind):
            raise SinkError(f"the {self._child.what} process answered {answer!r}")
        return answer

    def _answer(self):
        try:
            answer = self._conn.recv()
        except (EOFError, OSError):
            raise self._child.ended() from None
        if isinstance(answer, Failed):
            raise SinkError(answer.text)
        return answer


class _Means:
    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.count = 0

    def add(self, **ms: float) -> None:
        for name, value in ms.items():
            self.totals[name] = self.totals.get(name, 0.0) + value
        self.count += 1

    def means(self) -> dict[str, float]:
        return {name: round(total / max(self.count, 1), 3) for name, total in self.totals.items()}


def _render(layout: Layout, free, conn, video: VideoSettings, annotator: PoseAnnotator,
            hud: HudAnnotator | None) -> None:
    """The child: open the video, then draw and encode each scene until told to close or abort
    (or the parent is gone: the partial file is removed)."""
    if video.background:
        lower_this_process()  # before x264 starts its threads, which inherit it
    with attached(layout) as views, conn:
        _draw_and_encode(views, free, conn, video, annotator, hud)


def _draw_and_encode(views, free, conn, video: VideoSettings, annotator: PoseAnnotator,
                     hud: HudAnnotator | None) -> None:
    from ..outputs.video import VideoFileSink

    sink = None
    try:
        sink = VideoFileSink(video.path, width=video.width, height=video.height, fps=video.fps,
                             audio_from=video.audio_from)
        conn.send(Ready())
        means = _Means()
        while (message := _next(conn)) is not None and message != _ABORT:
            if message == _CLOSE:
                sink.close()
                conn.send(Closed(sink.frames_written, means.means(), round(time.process_time(), 3)))
                return
            started = time.perf_counter()
            picture = annotator.annotate(views[message.slot], message.poses)
            if hud is not None and message.hud:
                hud.annotate(picture, list(message.hud))
            drawn = time.perf_counter()
            sink.write(picture, message.time)
            free.put(message.slot)
            means.add(draw=(drawn - started) * 1e3, encode=(time.perf_counter() - drawn) * 1e3)
        sink.abort()
    except Exception as error:  # noqa: BLE001 - sent to the parent as its one line
        if sink is not None:
            sink.abort()
        _send_quietly(conn, Failed.of(error))


def _next(conn):
    """The parent's next message; None when it is gone."""
    while not conn.poll(POLL):
        if not parent_alive():
            return None
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


def _send_quietly(conn, message) -> None:
    try:
        conn.send(message)
    except OSError:
        pass
