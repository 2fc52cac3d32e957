"""The webcam over WebRTC: a server peer for each browser that streams its camera, independent of
the engine (:class:`WebRTCManager` takes a ``process(image_rgb, peer) -> picture`` callable).

A page sends an offer (through a Gradio server function, :mod:`.page`); the manager checks
it (:mod:`.offer`), answers once its ICE candidates are gathered, and from then on:

- the camera's frames go to one worker thread per peer, newest only (:mod:`.track`): the
  event loop never waits for a model, and the delay does not grow however slow ``process`` is;
- the annotated frames go back as a video track with the camera's capture timestamps, encoded at
  a bitrate fit to the picture (aiortc's default of 0.5-1.5 Mbps blurs 720p);
- a data channel carries the page's pings (answered with the round trip's stamp and the stats:
  server ms per frame, frames dropped, and what ``process`` reported, e.g. persons) and its
  settings (``peer.settings``, read by ``process`` on the next frame);
- at most ``max_sessions`` peers at once (the next is told the server is busy); a peer that sent
  nothing (no frame, no ping) for ``idle_timeout_s`` has vanished and is closed, as is one past
  ``time_limit_s``; closing frees its thread, its peer connection and its sockets.

aiortc needs an asyncio loop; Gradio's server functions run on uvicorn's (async ones) or in its
thread pool (sync ones). The manager owns a loop of its own in one thread, started with the first
offer: no web framework's loop ever encodes, decodes or waits for a peer, and the same manager
serves a test's Python client. Calls from other threads go through :meth:`WebRTCManager.offer`
(blocking) or :meth:`WebRTCManager.offer_async` (awaitable from any loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamError

from ....errors import one_line
from .offer import (
    MAX_MESSAGE_BYTES,
    MAX_OFFER_BYTES,
    WebRTCError,
    check_offer,
    ice_servers_from_env,
    rtc_ice_servers,
)
from .track import FrameWorker, Peer, browser_bitrate_hints, fit_encoder, fit_receiver

log = logging.getLogger(__name__)
WATCH_EVERY_S = 0.5


class WebRTCManager:
    """Server peers for browsers' cameras; see the module's docstring.

    Args:
        process: ``process(image_rgb, peer)`` → an RGB picture (any size), or ``(picture, info)``
            where ``info`` is a small dict for the page's live line (e.g. ``{"persons": 2}``).
            Called on the peer's worker thread, one frame at a time per peer. An exception ends
            the stream, and its first line is what the page shows.
        max_sessions: peers at once; the next offer is answered ``busy``.
        ice_servers: RTCIceServer dicts (:func:`~.offer.ice_servers`); default:
            ``$VITPOSE_ICE_SERVERS``. The page is given the same list (:attr:`ice_servers`).
        idle_timeout_s: a peer that sent no frame and no message for this long is closed.
        time_limit_s: a stream's longest life (None: no limit).
        on_close: ``on_close(peer)``, called (on a pool thread) once a peer is closed.
        on_pick: ``on_pick(peer, point)``: a click on the shown video (``point`` the picture's
            ``[x, y]``, None: release), called on a pool thread; its answer goes back as ``following``.
        answer_timeout_s: the longest an answer may take (ICE gathering included).
        max_pixels: the largest camera picture taken (a larger one ends the stream).
        quick_receiver: hand the camera's frames on at their last packet
            (:class:`~.track.MarkerJitterBuffer`: 33 ms less delay at 30 frames/s).
    """

    def __init__(self, process: Callable, *, max_sessions: int = 2, ice_servers: list[dict] | None = None,
                 idle_timeout_s: float = 5.0, time_limit_s: float | None = None,
                 on_close: Callable | None = None, max_offer_bytes: int = MAX_OFFER_BYTES,
                 answer_timeout_s: float = 15.0, max_pixels: int = 1920 * 1080,
                 quick_receiver: bool = True, on_pick: Callable | None = None) -> None:
        self.process, self.on_pick = process, on_pick
        self.max_sessions = max(1, int(max_sessions))
        self.ice_servers = ice_servers_from_env() if ice_servers is None else list(ice_servers)
        self._rtc_ice = rtc_ice_servers(self.ice_servers)
        self.idle_timeout_s, self.time_limit_s = float(idle_timeout_s), time_limit_s
        self.on_close, self.max_offer_bytes = on_close, max_offer_bytes
        self.answer_timeout_s, self.max_pixels = answer_timeout_s, int(max_pixels)
        self.quick_receiver = quick_receiver
        self._peers: dict[str, Peer] = {}
        self._closing: set[Peer] = set()  # closed, their threads and sockets on their way out
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.closed_peers = 0  # peers closed so far (tests, benches)

    # -- from any thread ------------------------------------------------------------------
    def offer(self, payload, timeout: float | None = None) -> dict:
        """Answer a page's offer: ``{"type": "answer", "sdp": ..., "id": peer id}``, or
        ``{"error": one line, "busy": bool}``. Blocks the calling thread (not the manager's)."""
        return self._wait(self._answer(payload), timeout or self.answer_timeout_s + 5)

    async def offer_async(self, payload) -> dict:
        """:meth:`offer`, awaitable from any event loop (Gradio's included)."""
        return await asyncio.wrap_future(self._submit(self._answer(payload)))

    def stop(self, peer_id: str, reason: str = "stopped") -> bool:
        """Close the peer ``peer_id`` (the ``id`` of its answer); False when there is none."""
        return self._wait(self._stop(peer_id, reason), 15)

    async def stop_async(self, peer_id: str, reason: str = "stopped") -> bool:
        return await asyncio.wrap_future(self._submit(self._stop(peer_id, reason)))

    def close_key(self, key: str, reason: str = "the page was closed") -> int:
        """Close every peer of the page session ``key`` (Gradio's unload event); how many."""
        peers = [p for p in self.peers() if key and p.key == key]
        for peer in peers:
            self.stop(peer.id, reason)
        return len(peers)

    def peers(self) -> list[Peer]:
        """The open peers (a snapshot)."""
        return list(dict(self._peers).values())

    def __len__(self) -> int:
        return len(self._peers)

    def server_functions(self) -> list[Callable]:
        """``webrtc_offer(payload)`` and ``webrtc_stop(payload)`` for ``gr.HTML(server_functions=...)``:
        plain async functions (Gradio marks each function object, so bound methods cannot be
        given) that never raise (Gradio's page turns a raised error into ``undefined``)."""
        manager = self

        async def webrtc_offer(payload) -> dict:
            return await manager.offer_async(payload)

        async def webrtc_stop(payload) -> dict:
            peer_id = payload.get("id") if isinstance(payload, dict) else None
            stopped = isinstance(peer_id, str) and await manager.stop_async(peer_id, "stopped by the page")
            return {"stopped": bool(stopped)}

        return [webrtc_offer, webrtc_stop]

    def close(self, timeout: float = 20.0) -> None:
        """Close every peer and end the manager's loop and threads (a later offer starts them again)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close_all("the server stopped"), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)

    # -- the loop thread --------------------------------------------------------------------
    def _wait(self, coro, timeout: float):
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("this WebRTCManager call blocks: on the manager's loop use the *_async one")
        return self._submit(coro).result(timeout)

    def _submit(self, coro) -> concurrent.futures.Future:
        with self._lock:
            if self._loop is None:
                ready = threading.Event()
                self._thread = threading.Thread(target=self._run_loop, args=(ready,), name="webrtc-loop",
                                                daemon=True)
                self._thread.start()
                ready.wait()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def _run_loop(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        # aiortc encodes in the loop's default executor: a pool of our own, bounded and named.
        workers = 2 * self.max_sessions + 2
        pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="webrtc-pool")
        loop.set_default_executor(pool)
        asyncio.set_event_loop(loop)
        self._loop = loop
        watch = loop.create_task(self._watch())
        ready.set()
        try:
            loop.run_forever()
        finally:
            watch.cancel()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _answer(self, payload) -> dict:
        try:
            offer = check_offer(payload, self.max_offer_bytes)
            for old in [p for p in self._peers.values() if offer.key and p.key == offer.key]:
                await self._close(old, "the page started another stream")  # one stream per page
            if len(self._peers) >= self.max_sessions:
                raise WebRTCError(f"busy: {self.max_sessions} WebRTC streams are running, the most this "
                                  "server takes; try again in a moment", busy=True)
            peer = Peer(offer.key, offer.settings)
            self._peers[peer.id] = peer  # the slot is taken while the answer is made
            try:
                answer = await asyncio.wait_for(self._connect(peer, offer), self.answer_timeout_s)
            except BaseException as error:
                await self._close(peer, "the offer was refused")
                if isinstance(error, asyncio.TimeoutError):
                    raise WebRTCError(f"no answer within {self.answer_timeout_s:g} s") from None
                if isinstance(error, Exception) and not isinstance(error, WebRTCError):
                    raise WebRTCError(f"the offer cannot be used: {one_line(error)}") from None
                raise
            log.info("webrtc: peer %s of session %r answered (%d open)", peer.id[:8], peer.key,
                     len(self._peers))
            return {"type": "answer", "sdp": answer, "id": peer.id}
        except WebRTCError as error:
            return {"error": error.one_line(), "busy": error.busy}
        except Exception as error:  # the page gets one line, the log the rest
            log.warning("webrtc: the answer failed", exc_info=True)
            return {"error": f"the WebRTC answer failed: {one_line(error, with_type=True)}", "busy": False}

    async def _connect(self, peer: Peer, offer) -> str:
        peer.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=self._rtc_ice))
        loop = asyncio.get_running_loop()
        peer.worker = FrameWorker(self.process, peer, lambda frame: self._later(loop, peer.track.push, frame),
                                  lambda message: self._later(loop, self._fail, peer, message), peer.stats,
                                  name=f"webrtc-worker-{peer.id[:6]}")

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind == "video" and peer.reader is None:
                peer.reader = asyncio.ensure_future(self._read(peer, track))

        @pc.on("datachannel")
        def on_datachannel(channel) -> None:
            peer.channel = channel
            channel.on("message", lambda message: self._message(peer, channel, message))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._close(peer, f"the connection {pc.connectionState}")

        await pc.setRemoteDescription(offer.description)
        if peer.reader is None:
            raise WebRTCError("the offer's video track did not arrive")
        video = next(t for t in pc.getTransceivers() if t.kind == "video")
        peer.quick_receiver = fit_receiver(video.receiver) if self.quick_receiver else False
        sender = pc.addTrack(peer.track)
        await pc.setLocalDescription(await pc.createAnswer())
        peer.encoder = fit_encoder(sender, pc.localDescription.sdp)
        peer.worker.start()
        return browser_bitrate_hints(pc.localDescription.sdp)

    @staticmethod
    def _later(loop, fn, *args) -> None:
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop has ended: the peer is gone
            pass

    def _fail(self, peer: Peer, message: str) -> None:
        asyncio.ensure_future(self._close(peer, f"processing failed: {message}"))

    async def _read(self, peer: Peer, track) -> None:
        """Take every camera frame as it arrives (aiortc queues them without bound otherwise)."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            peer.last_seen = time.monotonic()
            if frame.width * frame.height > self.max_pixels:
                size = f"{frame.width}x{frame.height}"
                reason = f"the camera's picture is {size}: at most {self.max_pixels / 1e6:g} megapixels"
                asyncio.ensure_future(self._close(peer, reason))
                return
            peer.worker.put(frame)

    def _message(self, peer: Peer, channel, message) -> None:
        peer.last_seen = time.monotonic()
        if not isinstance(message, str) or len(message) > MAX_MESSAGE_BYTES:
            return
        try:
            data = json.loads(message)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        if isinstance(data.get("settings"), dict):
            settings = {**peer.settings, **data["settings"]}
            if len(json.dumps(settings, default=str)) <= MAX_MESSAGE_BYTES:  # keys cannot pile up
                peer.settings = settings
        if "pick" in data and self.on_pick is not None:
            point = data["pick"]
            if point is None or (isinstance(point, list) and len(point) == 2
                                 and all(isinstance(v, (int, float)) for v in point)):
                asyncio.ensure_future(self._pick(peer, channel, point))
        if "ping" in data and channel.readyState == "open":
            channel.send(json.dumps({"pong": data["ping"], **peer.stats_dict()}, default=str))

    async def _pick(self, peer: Peer, channel, point) -> None:
        """A click on the page's video: ``on_pick`` off the loop, its answer back on the channel."""
        try:
            following = await asyncio.get_running_loop().run_in_executor(None, self.on_pick, peer, point)
        except Exception:
            log.warning("webrtc: on_pick failed", exc_info=True)
            return
        if channel.readyState == "open":
            with contextlib.suppress(InvalidStateError, ConnectionError):
                channel.send(json.dumps({"following": following}))

    async def _watch(self) -> None:
        """Close the peers that vanished (nothing from them for ``idle_timeout_s``) or ran out of time."""
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            now = time.monotonic()
            for peer in list(self._peers.values()):
                if peer.pc is None or peer.reader is None:
                    continue  # its answer is being made
                if now - peer.last_seen > self.idle_timeout_s:
                    reason = f"nothing came from the page for {self.idle_timeout_s:g} s"
                elif self.time_limit_s and now - peer.created > self.time_limit_s:
                    reason = f"the stream's time limit ({self.time_limit_s:g} s) was reached"
                else:
                    continue
                asyncio.ensure_future(self._close(peer, reason))  # not awaited: the watch goes on

    async def _stop(self, peer_id: str, reason: str) -> bool:
        peer = self._peers.get(peer_id)
        if peer is None:
            return False
        await self._close(peer, reason)
        return True

    async def _close(self, peer: Peer, reason: str) -> None:
        """End ``peer``: the page is told why, its worker, tracks and connection stop. A second
        call waits for the first to finish."""
        if peer.done is not None:
            await asyncio.shield(peer.done)
            return
        loop = asyncio.get_running_loop()
        peer.done, peer.closed = loop.create_future(), reason
        self._peers.pop(peer.id, None)
        self._closing.add(peer)
        try:
            if peer.worker is not None:
                peer.worker.stop()
            peer.track.stop()
            if peer.reader is not None:
                peer.reader.cancel()
            await self._say_closed(peer, reason)
            if peer.pc is not None:
                try:
                    await asyncio.wait_for(peer.pc.close(), 10)
                except Exception:  # closing must go on
                    log.warning("webrtc: closing peer %s", peer.id[:8], exc_info=True)
            if peer.worker is not None and not await loop.run_in_executor(None, peer.worker.join, 10.0):
                log.warning("webrtc: peer %s's worker is still in process() after 10 s", peer.id[:8])
            self.closed_peers += 1
            log.info("webrtc: peer %s closed: %s", peer.id[:8], reason)
            if self.on_close is not None:
                try:
                    await loop.run_in_executor(None, self.on_close, peer)
                except Exception:
                    log.warning("webrtc: on_close failed", exc_info=True)
        finally:
            self._closing.discard(peer)
            peer.release()
            peer.done.set_result(None)

    @staticmethod
    async def _say_closed(peer: Peer, reason: str) -> None:
        channel = peer.channel
        if channel is not None and channel.readyState == "open":
            with contextlib.suppress(InvalidStateError, ConnectionError):  # the page may be gone already
                channel.send(json.dumps({"closed": reason}))
                await asyncio.sleep(0.05)  # on its way before the transport closes

    async def _close_all(self, reason: str) -> None:
        """Close every peer, and wait for those being closed."""
        peers = [*self._peers.values(), *self._closing]
        await asyncio.gather(*(self._close(peer, reason) for peer in peers))


__all__ = ["Peer", "WebRTCError", "WebRTCManager"]
