"""A real WebRTC client (aiortc) for the WebRTC tests: a camera track whose frames carry their
index as a barcode, a peer that sends it to a :class:`~vitpose_live.apps.web.webrtc.WebRTCManager` and
records every frame that comes back (its barcode, capture timestamp and arrival time), and a
``process`` that draws a known marker; and what a page's video shows (Playwright).

Run as a script it is a client in a process of its own, signalled over stdin/stdout (one JSON
offer out, one JSON answer in), so that a test can kill it without a goodbye:

    python tests/support/webrtc_client.py [--size 160x120] [--key K]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import fractions
import json
import sys
import time
from dataclasses import dataclass, field

import av
import cv2
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

BITS = 10  # frame index modulo 1024
BLOCK = 8  # barcode cell side (pixels)
MARKER = (0, 255, 0)  # what marker_process draws (RGB)
MARKER_SIDE = 24


def barcode_frame(index: int, width: int, height: int) -> np.ndarray:
    """A grey picture with ``index`` as a row of black and white cells near the bottom, framed
    by a white cell on the left and a black one on the right (so a mirrored picture is told)."""
    image = np.full((height, width, 3), 96, np.uint8)
    bits = [1] + [(index >> b) & 1 for b in range(BITS)] + [0]
    y = height - 2 * BLOCK
    for n, bit in enumerate(bits):
        x = BLOCK * (n + 1)
        image[y:y + BLOCK, x:x + BLOCK] = 255 if bit else 0
    return image


def read_barcode(picture: np.ndarray) -> tuple[int, bool] | None:
    """``(index, mirrored)`` from a picture made by :func:`barcode_frame` (as sent, or flipped
    left to right), None when it cannot be read."""
    height = picture.shape[0]
    y = height - 2 * BLOCK + BLOCK // 2
    for mirrored in (False, True):
        row = picture[:, ::-1] if mirrored else picture
        cells = [row[y, BLOCK * (n + 1) + BLOCK // 2].mean() for n in range(BITS + 2)]
        bits = [c > 128 for c in cells]
        if bits[0] and not bits[-1] and all(c < 60 or c > 190 for c in cells):
            return sum(1 << b for b, bit in enumerate(bits[1:-1]) if bit), mirrored
    return None


def has_marker(picture: np.ndarray) -> bool:
    """Whether ``picture`` has :func:`marker_process`'s marker in its top left corner."""
    patch = picture[4:MARKER_SIDE - 4, 4:MARKER_SIDE - 4].astype(int)
    return bool(np.abs(patch - MARKER).max(axis=-1).mean() < 40)


def marker_process(image: np.ndarray, peer) -> tuple[np.ndarray, dict]:
    """Flip the picture when the page asks (``settings["mirror"]``), draw the marker at the top
    left, count this peer's frames in its own state."""
    picture = np.ascontiguousarray(image[:, ::-1]) if peer.settings.get("mirror") else image.copy()
    picture[:MARKER_SIDE, :MARKER_SIDE] = MARKER
    peer.state["frames"] = peer.state.get("frames", 0) + 1
    return picture, {"persons": peer.state["frames"] % 3}


class BarcodeTrack(VideoStreamTrack):
    """A camera at ``fps`` whose frames carry their index (:func:`barcode_frame`)."""

    def __init__(self, width: int = 160, height: int = 120, fps: int = 30) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.sent: list[tuple[int, float]] = []  # (index, when)
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        index = len(self.sent)
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + index / self.fps - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = av.VideoFrame.from_ndarray(barcode_frame(index, self.width, self.height), format="rgb24")
        frame.pts, frame.time_base = index * (90000 // self.fps), fractions.Fraction(1, 90000)
        self.sent.append((index, time.monotonic()))
        return frame


@dataclass
class Received:
    index: int | None
    mirrored: bool
    marker: bool
    pts: int
    at: float


@dataclass
class Client:
    """One connected client: its peer connection, camera, data channel, what came back."""

    pc: RTCPeerConnection
    camera: BarcodeTrack
    channel: object
    answer: dict
    received: list[Received] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)
    pictures: collections.deque = field(default_factory=lambda: collections.deque(maxlen=30))  # (Received, RGB)

    def send(self, **message) -> None:
        self.channel.send(json.dumps(message))

    async def frames(self, n: int, timeout: float = 20.0) -> list[Received]:
        """Wait until ``n`` frames came back; all so far."""
        deadline = time.monotonic() + timeout
        while len(self.received) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} frames came back in {timeout} s, not {n}")
            await asyncio.sleep(0.02)
        return list(self.received)

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def make_offer(*, size=(160, 120), fps: int = 30, audio: bool = False, video: str | None = "sendrecv",
                     channel: bool = True):
    """A peer connection with a barcode camera and its offer (ICE gathered)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    camera = BarcodeTrack(*size, fps=fps)
    if video == "sendrecv":
        pc.addTrack(camera)
    elif video:
        pc.addTransceiver(camera if video == "sendonly" else "video", direction=video)
    if audio:
        pc.addTransceiver("audio", direction="sendrecv")
    dc = pc.createDataChannel("vitpose") if channel else None
    await pc.setLocalDescription(await pc.createOffer())
    return pc, camera, dc


async def connect(manager, *, key: str = "page", settings: dict | None = None, size=(160, 120),
                  fps: int = 30, quick: bool = False) -> Client:
    """A client streaming to ``manager``; raises AssertionError when the offer was refused.
    ``quick``: its receiver hands frames on at their last packet, as a browser does."""
    pc, camera, dc = await make_offer(size=size, fps=fps)
    if quick:
        from vitpose_live.apps.web.webrtc.track import fit_receiver

        fit_receiver(next(t for t in pc.getTransceivers() if t.kind == "video").receiver)
    payload = {"type": "offer", "sdp": pc.localDescription.sdp, "key": key, "settings": settings or {}}
    answer = await manager.offer_async(payload)
    if "error" in answer:
        await pc.close()
        raise AssertionError(answer["error"])
    client = Client(pc, camera, dc, answer)
    dc.on("open", client.opened.set)
    dc.on("message", lambda message: client.messages.append(json.loads(message)))

    @pc.on("track")
    def on_track(track) -> None:
        client.tasks.append(asyncio.ensure_future(_collect(client, track)))

    await pc.setRemoteDescription(_answer(answer))
    return client


def _answer(answer: dict):
    from aiortc import RTCSessionDescription

    return RTCSessionDescription(sdp=answer["sdp"], type="answer")


async def _collect(client: Client, track) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        picture = frame.to_ndarray(format="rgb24")
        code = read_barcode(picture)
        mirrored = bool(code and code[1])
        client.received.append(Received(code[0] if code else None, mirrored, has_marker(picture),
                                        frame.pts, time.monotonic()))
        client.pictures.append((client.received[-1], picture))


# -- the browser side (Playwright) ------------------------------------------------------
def shown_fps(page, seconds: float, video: str = "#webrtc video") -> float:
    """Frames a page's ``video`` presented per second (``requestVideoFrameCallback``)."""
    page.evaluate("""(selector) => {
        const video = document.querySelector(selector);
        const shown = window.__shown = [];
        const tick = (now) => {
            if (window.__shown === shown) { shown.push(now); video.requestVideoFrameCallback(tick); }
        };
        video.requestVideoFrameCallback(tick);
    }""", video)
    time.sleep(seconds)
    stamps = page.evaluate("() => { const shown = window.__shown; window.__shown = null; return shown; }")
    return (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1e3) if len(stamps) > 1 else 0.0


def video_picture(page) -> np.ndarray:
    """The frame the video shows now (RGB)."""
    data = page.evaluate("""() => {
        const video = document.querySelector('#webrtc video');
        const canvas = document.createElement('canvas');
        canvas.width = video.videoWidth; canvas.height = video.videoHeight;
        canvas.getContext('2d').drawImage(video, 0, 0);
        return canvas.toDataURL('image/png');
    }""")
    raw = np.frombuffer(base64.b64decode(data.split(",", 1)[1]), np.uint8)
    return cv2.cvtColor(cv2.imdecode(raw, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


async def _subprocess_client(size, key: str = "subprocess") -> None:
    """Offer on stdout, answer from stdin, then stream until killed."""
    pc, _, dc = await make_offer(size=size)
    print(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp, "key": key}), flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await pc.setRemoteDescription(_answer(json.loads(line)))
    dc.on("open", lambda: print("open", flush=True))
    while True:
        await asyncio.sleep(0.5)
        if dc.readyState == "open":
            dc.send(json.dumps({"ping": time.monotonic()}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="160x120")
    parser.add_argument("--key", default="subprocess")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    asyncio.run(_subprocess_client((width, height), args.key))


# What a browser that may use no direct UDP path does (a policy; a network without TURN is the same).
RELAY_ONLY = """(() => {
    const Original = window.RTCPeerConnection;
    window.RTCPeerConnection = function (config) {
        return new Original({...config, iceTransportPolicy: "relay"});
    };
    window.RTCPeerConnection.prototype = Original.prototype;
})();"""
