"""The Webcam tab over WebRTC, through the app's own parts: :class:`WebcamPeers` runs each camera
frame a peer sends through the page session's :class:`~.state.LiveSession` (the shared model
cache, the session's engine, tracks and smoothing, detection off the frame path), with the
settings the page's controls last had, exactly as the HTTP stream does.

The controls reach the server as Gradio events (:meth:`WebcamPeers.remember`, on load and on
every change), keyed by the page's session hash, which the page's offer carries: a moved slider
or the mirror toggle acts on the next frame the peer's worker takes. A client outside the page
(a Python WebRTC client) can also send settings on the data channel; they go on top.
"""

from __future__ import annotations

import logging
import threading

from .jobs import LoadingModels
from .state import SessionClosed
from .webrtc import WebRTCManager

log = logging.getLogger(__name__)


class WebcamPeers:
    """The app's WebRTC peers (:attr:`manager`) and the controls of each page session.

    Args:
        app: the :class:`~.app.PoseWebApp` whose sessions, models and settings check are used.
        max_sessions: WebRTC streams at once (the next page is told the server is busy).
        ice_servers: RTCIceServer dicts for both peers (default: ``$VITPOSE_ICE_SERVERS``).
        time_limit_s: a stream's longest life (the HTTP stream's limit).
    """

    def __init__(self, app, *, max_sessions: int = 4, ice_servers: list[dict] | None = None,
                 time_limit_s: float | None = None, idle_timeout_s: float = 5.0) -> None:
        self.app = app
        self._controls: dict[str, dict] = {}
        self._lock = threading.Lock()
        self.manager = WebRTCManager(self.process, max_sessions=max_sessions, ice_servers=ice_servers,
                                     time_limit_s=time_limit_s, idle_timeout_s=idle_timeout_s,
                                     on_close=self._closed, on_pick=self.pick)

    def defaults(self) -> dict:
        """The controls a stream starts with before its page said anything (the page's own
        starting values: the device's model, interval and person cap; smoothing and mirror on)."""
        app = self.app
        return {"model": app.default_model, "det_every": app.defaults.det_every,
                "max_persons": app.defaults.max_persons, "smooth": True, "mirror": True}

    def remember(self, key: str | None, controls: dict) -> None:
        """The page session ``key``'s controls now (its streams' next frames use them)."""
        if key:
            with self._lock:
                self._controls[key] = dict(controls)

    def controls(self, key: str | None) -> dict:
        with self._lock:
            return dict(self._controls.get(key, {})) if key else {}

    def forget(self, key: str | None, reason: str = "the page was closed") -> int:
        """The page session ``key`` ended: its streams close, its controls go; how many streams."""
        with self._lock:
            self._controls.pop(key, None)
        return self.stop(key, reason)

    def stop(self, key: str | None, reason: str) -> int:
        """Close the streams of the page session ``key`` (its controls stay)."""
        return self.manager.close_key(key, reason) if key else 0

    def process(self, image, peer):
        """One camera frame of ``peer`` → ``(picture, {"persons": n})``, on the peer's worker."""
        controls = {**self.defaults(), **self.controls(peer.key), **peer.settings}
        settings = self.app.settings(**controls)
        session = self._session(peer)
        try:
            picture, result, row = session.process(image, settings, LoadingModels(self.app.models))
        except SessionClosed:  # freed (the page closed, the state expired) while this frame was in
            peer.state.pop("session", None)
            session = self._session(peer)
            picture, result, row = session.process(image, settings, LoadingModels(self.app.models))
        session.finish(row)
        return picture, {"persons": len(result.poses), "followed": session.followed(),
                         "angles": " · ".join(session.followed_angles)}

    def pick(self, peer, point) -> int | None:
        """A click on the peer's shown video at ``point`` (its pixels), or None: release. Whom the
        session follows now."""
        session = self._session(peer)
        if point is None:
            session.release()
            return None
        return session.pick(*point)

    def _session(self, peer):
        """The page session's live session (the one its HTTP stream used, if any: tracks kept)."""
        sessions = self.app.sessions
        current = peer.state.get("session") or sessions.get(peer.key or None)
        session = peer.state["session"] = sessions.session_for(peer.key or None, current)
        return session

    def _closed(self, peer) -> None:
        """A stream ended: its session's detector thread stops, its tracks stay for the next."""
        session = peer.state.get("session")
        if session is not None:
            session.pause(away=False)
        log.info("webrtc stream of session %r ended: %s", peer.key, peer.closed)

    def close(self) -> None:
        self.manager.close()
