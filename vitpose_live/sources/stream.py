"""A network stream (rtsp, rtmp, http(s), udp, tcp), read through PyAV."""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import av
import numpy as np

from ..defaults import CONNECT_TIMEOUT_S
from ..types import Frame
from ..errors import os_reason
from .base import DeviceReader, SourceError, VideoInfo
from .reconnect import Backoff
from .spec import SourceKind

log = logging.getLogger(__name__)


def _redact(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def _stream_reason(error: BaseException) -> str:
    if isinstance(error, av.error.ExitError):  # PyAV's timeout interrupts FFmpeg this way
        return "timed out waiting for data"
    return os_reason(error)


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True


def _cause(error: BaseException, url: str, seconds: float, limit: float) -> str:
    """Why a connection failed, in words a user knows. FFmpeg says "input/output error" for a
    name that does not resolve and "invalid data" for an RTSP server that never answers, so the
    name is looked up and the time taken is read before its words are used."""
    host = urlsplit(url).hostname
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if host and not _resolves(host):
        return f"name not found: '{host}'"
    if isinstance(error, av.error.ExitError) or seconds >= 0.9 * limit:
        return f"no answer within {round(limit, 1):g} s"
    if isinstance(error, av.error.InvalidDataError):
        return "not a video stream (what it sends is no video format FFmpeg knows)"
    return os_reason(error)


class StreamSource(DeviceReader):
    """Frames of a network stream (rtsp, rtmp, http(s), udp, tcp) decoded with PyAV, tuned for
    low delay: RTSP over TCP, slice-threaded decoding and, except over HTTP (often a file or
    HLS), no input buffering, so the packets read while probing are dropped and the first
    frame shown is a current one.

    Opening connects and reads the stream headers, trying ``reconnect_attempts`` times within
    ``connect_timeout`` seconds in all (each try waits at most ``open_timeout``), saying each try
    to ``on_status`` ("connecting to '…' (attempt 2 of 5)"; without it, the log); a URL that
    cannot be opened fails here with :class:`SourceError` naming the cause (name not found,
    connection refused, no answer within N s, not a video stream). While iterating, a
    stream that ends, errors or goes quiet for ``read_timeout`` seconds is reopened up to
    ``reconnect_attempts`` times with back-off (``backoff`` seconds, doubling, at most
    ``max_backoff``; :attr:`retry`); ``index`` keeps counting. A stream with a known duration
    (a file served over HTTP) that played to its end simply ends. ``time`` is seconds from the first frame,
    from the stream's timestamps, kept increasing across reconnections (the monotonic clock when
    frames carry none). ``options`` adds FFmpeg options. ``close`` may be called from another
    thread: it waits up to a second for a read in progress.
    """

    kind = SourceKind.STREAM
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
        connect_timeout: float = CONNECT_TIMEOUT_S,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        self.url = str(url)
        self._name = _redact(self.url)
        self.connect_timeout = float(connect_timeout)
        self._on_status = on_status
        self.retry = Backoff(max(1, int(reconnect_attempts)), first=float(backoff), most=float(max_backoff))
        self._timeouts = (float(open_timeout), float(read_timeout))
        scheme = self.url.split("://", 1)[0].lower()
        self._options = {"flags": "low_delay", "max_delay": "500000"}
        if scheme not in ("http", "https"):  # real-time protocols: drop what probing read, start now
            self._options["fflags"] = "nobuffer"
        if scheme in ("rtsp", "rtsps"):
            self._options["rtsp_transport"] = "tcp"
        self._options.update({str(k): str(v) for k, v in (options or {}).items()})
        super().__init__()
        self._container = self._stream = self._packets = None
        self._next_index = 0
        self._started: float | None = None
        self._last_time: float | None = None
        self._anchor: tuple[float, float] | None = None  # (pts seconds, source time) of a connection
        self.reconnects = 0
        self._open()
        self._info = self._make_info()

    @property
    def info(self) -> VideoInfo:
        return self._info

    def _say(self, text: str, level: int = logging.INFO) -> None:
        if self._on_status is not None:
            self._on_status(text)
        else:
            log.log(level, "%s", text)

    def _open(self) -> None:
        """Connect within :attr:`connect_timeout` (the first try at once, the others after the
        back-off), or raise :class:`SourceError` with the last cause."""
        started = time.monotonic()
        deadline, attempts = started + self.connect_timeout, self.retry.attempts
        reason, attempt = "", 0
        while attempt < attempts:
            if attempt and (time.monotonic() + self.retry.delay(attempt) >= deadline
                            or self._closed.wait(self.retry.delay(attempt))):
                break
            attempt += 1
            self._say(f"connecting to '{self._name}' (attempt {attempt} of {attempts})")
            reason = self._connect(min(self._timeouts[0], max(deadline - time.monotonic(), 0.05)))
            if not reason or time.monotonic() >= deadline:
                break
        if reason:
            seconds = time.monotonic() - started
            raise SourceError(f"cannot open stream '{self._name}': {reason}; gave up after {attempt} attempt(s) in "
                              f"{seconds:.1f} s (--connect-timeout {self.connect_timeout:g} s)")

    def _connect(self, open_timeout: float | None = None) -> str:
        """Open the stream (waiting at most ``open_timeout`` seconds for it); '' on success, else why not."""
        limit = self._timeouts[0] if open_timeout is None else open_timeout
        started = time.monotonic()
        try:
            container = av.open(
                self.url, options=dict(self._options), timeout=(limit, self._timeouts[1]), metadata_errors="ignore"
            )
        except (av.error.FFmpegError, OSError, ValueError) as error:
            return _cause(error, self.url, time.monotonic() - started, limit)
        pictures = av.stream.Disposition.attached_pic
        videos = [s for s in container.streams.video if not s.disposition & pictures]
        if not videos:
            container.close()
            return "not a video stream (no video in it)"
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

    def _release(self) -> None:
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
                self._release()
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
        self._say(f"stream '{self._name}' dropped ({reason or 'it ended'})", logging.WARNING)
        with self._lock:
            self._release()
        for attempt in self.retry.retries(self._closed):
            self._say(f"reconnecting to '{self._name}' (attempt {attempt} of {self.retry.attempts})", logging.WARNING)
            reason = self._connect()
            if not reason:
                self.reconnects += 1
                self._say(f"stream '{self._name}' is back after {attempt} attempt(s)", logging.WARNING)
                return True
            if self._closed.is_set():
                return False
        if self._closed.is_set():  # closed while waiting to try again
            return False
        attempts = self.retry.attempts
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
            if barren >= self.retry.attempts:
                attempts = self.retry.attempts
                raise SourceError(
                    f"stream '{self._name}' dropped and did not come back after {attempts} attempts"
                    f" (it connects but sends no pictures)"
                )
            if not self._reconnect(ended):
                return
            barren += 1

