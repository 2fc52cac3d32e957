"""The media side of a WebRTC peer (:mod:`.manager`): the worker thread that runs ``process`` on
the newest camera frame, the track that sends what it made, the encoders whose bitrate fits the
picture, the jitter buffer that hands a frame on at its last packet, and :class:`Peer`, the
record of one stream that ``process`` is given.

The event loop never waits for a model: :class:`FrameWorker` takes frames from the loop without
blocking it and keeps only the newest (a frame replaced before the worker took it is counted as
dropped), converts and processes it on its own thread, and hands the result back to the loop.
:class:`ProcessedTrack` gives the sender each result once, newest first, with the capture
timestamp of the camera frame it was made from, so the browser plays the frames at the camera's
cadence and the delay stays that of one frame in the model (the pattern of streamlit-webrtc's
worker; a model run inside ``recv()`` is a known cause of ever-growing delay).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import statistics
import threading
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import SessionDescription
from av.video.reformatter import VideoReformatter

from ....errors import one_line

log = logging.getLogger(__name__)


def fitted_bitrate(width: int, height: int) -> int:
    """Bits per second for a ``width x height`` picture: libwebrtc's default ceilings per size
    (``GetMaxDefaultVideoBitrateKbps``, what Chrome sends a camera at), where aiortc caps every
    size at 1.5 Mbps (VP8) and starts at 0.5 Mbps, which blurs 720p."""
    pixels = width * height
    if pixels <= 320 * 240:
        return 600_000
    if pixels <= 640 * 480:
        return 1_700_000
    if pixels <= 960 * 540:
        return 2_000_000
    return 2_500_000


class _Fitted:
    """An aiortc encoder whose bitrate is the picture's :func:`fitted_bitrate`, lowered (never
    below ``FLOOR``) while the receiver's estimate (REMB) says the path carries less. aiortc's
    own encoders clamp every estimate to their module's ``MAX_BITRATE``; this class replaces
    their ``target_bitrate`` and leaves the rest (keyframes on request, packetizing) to them."""

    FLOOR = 250_000

    def __init__(self) -> None:
        super().__init__()
        self.ceiling: int | None = None  # the picture's fitted bitrate, once a frame was seen
        self.estimate: int | None = None  # the receiver's last estimate
        self._bitrate = fitted_bitrate(640, 480)

    @property
    def target_bitrate(self) -> int:
        return self._bitrate

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:  # aiortc's sender sets it on each REMB
        self.estimate = int(bitrate)
        self._update()

    def _update(self) -> None:
        ceiling = self.ceiling or fitted_bitrate(640, 480)
        self._bitrate = max(self.FLOOR, min(ceiling, self.estimate or ceiling))
        # Vp8Encoder sizes its rate buffer (``bufsize``) from its private copy: keep it at 1 s.
        self._Vp8Encoder__target_bitrate = self._bitrate

    def encode(self, frame, force_keyframe: bool = False):
        ceiling = fitted_bitrate(frame.width, frame.height)
        if ceiling != self.ceiling:
            self.ceiling = ceiling
            self._update()
        return super().encode(frame, force_keyframe)


class FittedVp8Encoder(_Fitted, Vp8Encoder):
    """aiortc's VP8 encoder at :func:`fitted_bitrate`."""


class FittedH264Encoder(_Fitted, H264Encoder):
    """aiortc's H.264 encoder at :func:`fitted_bitrate`."""


FITTED_ENCODERS = {"video/vp8": FittedVp8Encoder, "video/h264": FittedH264Encoder}


def fit_encoder(sender, answer_sdp: str):
    """Give ``sender`` an encoder at :func:`fitted_bitrate` for the codec the answer chose and
    return it; None (aiortc's default encoder stays) for another codec or aiortc version.

    aiortc has no public way to choose a sender's encoder or its bitrate ceiling (its encoders
    clamp to module constants, patching them would change every peer in the process). Its
    sender creates an encoder at the first frame only when it has none, so one set now (on this
    sender alone, a private attribute checked to exist) is the one used.
    """
    video = next((m for m in SessionDescription.parse(answer_sdp).media if m.kind == "video"), None)
    codec = video.rtp.codecs[0].mimeType.lower() if video and video.rtp.codecs else None
    encoder_class = FITTED_ENCODERS.get(codec)
    slot = "_RTCRtpSender__encoder"
    if encoder_class is None or getattr(sender, slot, False) is not None:
        log.warning("webrtc: the outgoing video (%s) keeps aiortc's default bitrate", codec)
        return None
    encoder = encoder_class()
    setattr(sender, slot, encoder)
    return encoder


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, handing a frame on at its last packet (the RTP marker bit)
    rather than at the first packet of the next frame, which costs a frame interval (33 ms at
    30 frames/s) on every frame received. A frame without its marker (lost) still goes on when
    the next one begins, as in aiortc's."""

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        packets, timestamp = [], None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None or (timestamp is not None and packet.timestamp != timestamp):
                break
            timestamp = packet.timestamp
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)
        return super()._remove_frame(sequence_number)


def fit_receiver(receiver) -> bool:
    """Give a video ``receiver`` a :class:`MarkerJitterBuffer` (on this receiver alone, before
    its first packet; a private attribute checked to exist); False when aiortc's stays."""
    slot = "_RTCRtpReceiver__jitter_buffer"
    current = getattr(receiver, slot, None)
    if type(current) is not JitterBuffer or current._origin is not None:
        log.warning("webrtc: the incoming video keeps aiortc's jitter buffer")
        return False
    setattr(receiver, slot, MarkerJitterBuffer(capacity=current.capacity, is_video=True))
    return True


def browser_bitrate_hints(answer_sdp: str, start: int = fitted_bitrate(640, 480),
                          most: int = fitted_bitrate(1280, 720)) -> str:
    """``answer_sdp`` with Chrome's ``x-google-start-bitrate`` and ``x-google-max-bitrate`` (the
    page's camera: 640x480 ideal, 1280x720 at most) on each video codec.

    What the browser sends is what the model sees. Chrome starts a camera at 300 kbps and, with
    aiortc's receiver estimate (REMB: it starts from the rate it measures, then adds a little),
    climbs about 20 kbps a second; meanwhile it scales 640x480 down to 480x360 (measured here:
    still 480x360 at 640 kbps after 16 s). With these hints (read by Chromium from the remote
    description, ignored by other browsers and by aiortc) it starts at 1.7 Mbps and keeps
    640x480 from the first second. No floor: a slow uplink still lowers the rate.
    """
    hint = f"x-google-start-bitrate={start // 1000};x-google-max-bitrate={most // 1000}"
    lines, out, video = answer_sdp.splitlines(), [], False
    fmtp = {line.split()[0][len("a=fmtp:"):] for line in lines if line.startswith("a=fmtp:")}
    for line in lines:
        if line.startswith("m="):
            video = line.startswith("m=video")
        if video and line.startswith("a=fmtp:") and "apt=" not in line:
            line = f"{line};{hint}"
        out.append(line)
        if video and line.startswith("a=rtpmap:"):
            pt, codec = line[len("a=rtpmap:"):].split(" ", 1)
            if pt not in fmtp and codec.split("/")[0].lower() not in ("rtx", "red", "ulpfec"):
                out.append(f"a=fmtp:{pt} {hint}")
    return "\r\n".join(out) + "\r\n"


class FrameStats:
    """A peer's counts: frames that arrived, were processed, were dropped (replaced by a newer
    one before the worker was free), and the last ``window`` frames' milliseconds in ``process``."""

    def __init__(self, window: int = 30) -> None:
        self.arrived = 0
        self.processed = 0
        self.dropped = 0
        self.info: dict = {}  # what process said about its last frame (e.g. persons)
        self._ms: collections.deque[float] = collections.deque(maxlen=window)

    def add_ms(self, ms: float) -> None:
        self._ms.append(ms)

    def as_dict(self) -> dict:
        ms = list(self._ms)
        return {"arrived": self.arrived, "processed": self.processed, "dropped": self.dropped,
                "server_ms": round(statistics.median(ms), 1) if ms else None, **self.info}


class ProcessedTrack(MediaStreamTrack):
    """The outgoing video: each processed frame once, the newest first. ``recv()`` waits for
    the next one (the sender encodes nothing twice); one not yet taken when a newer arrives is
    replaced (``skipped``). Lives on the peer's event loop; :meth:`push` is called there."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._latest: av.VideoFrame | None = None
        self._ready = asyncio.Event()
        self.skipped = 0
        self.sent = 0

    def push(self, frame: av.VideoFrame) -> None:
        if self._latest is not None:
            self.skipped += 1
        self._latest = frame
        self._ready.set()

    async def recv(self) -> av.VideoFrame:
        while self._latest is None:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        frame, self._latest = self._latest, None
        self.sent += 1
        return frame

    def stop(self) -> None:
        super().stop()
        self._ready.set()  # a waiting recv() sees the end


class FrameWorker:
    """One thread running ``process(image_rgb, peer)`` on the newest frame :meth:`put` gave it.

    ``deliver(frame)`` is called on the worker thread with each result, an ``av.VideoFrame``
    carrying the source frame's ``pts`` and ``time_base``; ``failed(message)`` once, when
    ``process`` raised (the worker then stops). ``process`` may return the picture, or
    ``(picture, info)`` where ``info`` (a small dict, e.g. ``{"persons": 2}``) goes to the stats.
    """

    def __init__(self, process: Callable, peer, deliver: Callable[[av.VideoFrame], None],
                 failed: Callable[[str], None], stats: FrameStats, *, name: str = "webrtc-worker") -> None:
        self._process, self._peer, self._deliver, self._failed = process, peer, deliver, failed
        self.stats = stats
        self._wake = threading.Condition()
        self._pending: av.VideoFrame | None = None
        self._stopped = False
        # One converter each way, kept: a frame's own (``to_ndarray(format=)``, ``reformat``) sets
        # up libswscale again for every frame, 1.3 ms of the two conversions' 2.8 ms at 640x480
        # (bench/RESULTS.md); a kept one is set up again only when the picture's size changes.
        self._to_rgb, self._to_yuv = VideoReformatter(), VideoReformatter()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def put(self, frame: av.VideoFrame) -> None:
        """A new camera frame (never blocks: the lock is only held to swap a reference)."""
        with self._wake:
            self.stats.arrived += 1
            if self._pending is not None:
                self.stats.dropped += 1
            self._pending = frame
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._pending = None
            self._wake.notify()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end (it finishes the frame in ``process`` first)."""
        if self.thread.is_alive():
            self.thread.join(timeout)
        return not self.thread.is_alive()

    def _next(self) -> av.VideoFrame | None:
        with self._wake:
            while self._pending is None and not self._stopped:
                self._wake.wait(1.0)
            if self._stopped:
                return None
            frame, self._pending = self._pending, None
            return frame

    def _run(self) -> None:
        while (frame := self._next()) is not None:
            try:
                out = self._one(frame)
            except Exception as error:  # said to the page, once
                log.warning("webrtc: process failed: %s", error, exc_info=True)
                self._failed(one_line(error))
                return
            if not self._stopped:
                self._deliver(out)

    def _one(self, frame: av.VideoFrame) -> av.VideoFrame:
        image = self._to_rgb.reformat(frame, format="rgb24").to_ndarray()
        started = time.perf_counter()
        result = self._process(image, self._peer)
        self.stats.add_ms((time.perf_counter() - started) * 1e3)
        picture, info = result if isinstance(result, tuple) else (result, None)
        if info:
            self.stats.info = dict(info)
        picture = np.ascontiguousarray(picture, dtype=np.uint8)
        if picture.ndim != 3 or picture.shape[2] != 3:
            raise ValueError(f"process returned a {picture.shape} array, not an HxWx3 RGB picture")
        out = self._to_yuv.reformat(av.VideoFrame.from_ndarray(picture, format="rgb24"), format="yuv420p")
        out.pts, out.time_base = frame.pts, frame.time_base  # the capture time the browser plays it at
        self.stats.processed += 1
        return out


class Peer:
    """One browser's stream, as ``process`` sees it (its second argument): ``key`` (the page's
    session, e.g. Gradio's session hash), ``settings`` (the page's latest; replaced whole on each
    message, so the worker reads one consistent dict), ``state`` (a dict for ``process``'s own
    use, one per connection), ``stats``; ``closed`` is the reason once it ended."""

    def __init__(self, key: str, settings: dict) -> None:
        self.id = secrets.token_hex(16)  # the page's handle to stop it: not guessable
        self.key = key
        self.settings = dict(settings)
        self.state: dict = {}
        self.stats = FrameStats()
        self.created = self.last_seen = time.monotonic()
        self.closed: str | None = None
        self.encoder = None  # the outgoing track's encoder (FITTED_ENCODERS), once negotiated
        self.quick_receiver = False  # whether the camera's frames leave at their last packet
        self.pc = None  # its RTCPeerConnection
        self.track = ProcessedTrack()
        self.worker: FrameWorker | None = None
        self.channel = None
        self.reader: asyncio.Task | None = None
        self.done: asyncio.Future | None = None  # set once closing began; done once closed

    def stats_dict(self) -> dict:
        return {**self.stats.as_dict(), "sent": self.track.sent, "skipped": self.track.skipped}

    def release(self) -> None:
        """Let go of a closed stream's encoder (libvpx's threads and buffers), connection, worker
        and channel now: the callbacks that point back at the peer make cycles, which would keep
        them, threads and all, until Python's next full garbage collection. Its ``key``,
        ``state``, ``stats`` and ``closed`` stay readable."""
        self.encoder = self.pc = self.worker = self.channel = self.reader = None
