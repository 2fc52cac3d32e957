"""What a WebRTC peer may send before anything runs: the offer (checked, with a one-line reason
when refused) and the ICE servers both peers use (``VITPOSE_ICE_SERVERS``, checked once).

An offer is a dict ``{"type": "offer", "sdp": str, "key": str, "settings": dict}``: ``key`` names
the page's session (the Gradio session hash), ``settings`` the page's controls at the start. The
SDP must describe exactly one video sent both ways (the camera in, the annotated picture back),
at most one data channel, nothing else (no audio), within :data:`MAX_OFFER_BYTES`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from aiortc import RTCIceServer, RTCSessionDescription
from aiortc.sdp import SessionDescription

from ....errors import VitposeError
from ...flags import ICE_ENV

MAX_OFFER_BYTES = 64 * 1024  # Chromium's offer with a data channel and its candidates: ~4 KB
MAX_MESSAGE_BYTES = 4096  # a data channel message, and an offer's settings as JSON
MAX_KEY_CHARS = 128
_FINGERPRINT = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){15,63}")  # sha-1 (20 bytes) to sha-512 (64)


class WebRTCError(VitposeError):
    """A WebRTC stream was refused or ended; the message is for the page. ``busy``: every slot
    is taken, try again later."""

    def __init__(self, message: str, *, busy: bool = False) -> None:
        super().__init__(message)
        self.busy = busy


@dataclass(frozen=True)
class Offer:
    """A checked offer: its description, the page's session key and its settings."""

    description: RTCSessionDescription
    key: str = ""
    settings: dict = field(default_factory=dict)
    has_channel: bool = False


def check_offer(payload, max_bytes: int = MAX_OFFER_BYTES) -> Offer:
    """``payload`` (what the page sent) as an :class:`Offer`, or :class:`WebRTCError` saying
    what is wrong with it in one line."""
    if not isinstance(payload, dict):
        raise WebRTCError("not a WebRTC offer: expected {type: 'offer', sdp: ...}")
    sdp, kind = payload.get("sdp"), payload.get("type", "offer")
    if kind != "offer" or not isinstance(sdp, str):
        raise WebRTCError("not a WebRTC offer: expected {type: 'offer', sdp: ...}")
    size = len(sdp.encode("utf-8", "replace"))
    if size > max_bytes:
        raise WebRTCError(f"the offer is {size // 1024} KB: at most {max_bytes // 1024} KB")
    key, settings = payload.get("key") or "", payload.get("settings") or {}
    if not isinstance(key, str) or len(key) > MAX_KEY_CHARS:
        raise WebRTCError(f"the offer's session key must be a string of at most {MAX_KEY_CHARS} characters")
    if not isinstance(settings, dict) or len(json.dumps(settings, default=str)) > MAX_MESSAGE_BYTES:
        raise WebRTCError(f"the offer's settings must be an object of at most {MAX_MESSAGE_BYTES} bytes")
    media = _media(sdp)
    kinds = [m.kind for m in media]
    if "video" not in kinds:
        what = "audio only" if "audio" in kinds else "no camera"
        raise WebRTCError(f"the offer has no video track ({what})")
    if kinds.count("video") > 1:
        raise WebRTCError(f"the offer has {kinds.count('video')} video tracks: send one camera")
    others = sorted(set(kinds) - {"video", "application"})
    if others or kinds.count("application") > 1:
        raise WebRTCError("the offer may only have the camera's video and one data channel "
                          f"(it has {', '.join(kinds)})")
    video = next(m for m in media if m.kind == "video")
    if (video.direction or "sendrecv") != "sendrecv":
        raise WebRTCError(f"the offer's video must go both ways (sendrecv), not {video.direction}")
    if video.ice is None or not video.ice.usernameFragment or not video.ice.password:
        raise WebRTCError("the offer's video has no ICE credentials (ice-ufrag, ice-pwd)")
    fingerprints = video.dtls.fingerprints if video.dtls is not None else []
    if not fingerprints or not all(_FINGERPRINT.fullmatch(f.value or "") for f in fingerprints):
        raise WebRTCError("the offer's video has no valid DTLS fingerprint")
    if not video.rtp.codecs:
        raise WebRTCError("the offer's video has no codecs")
    return Offer(RTCSessionDescription(sdp=sdp, type="offer"), key, settings, "application" in kinds)


def _media(sdp: str) -> list:
    if not sdp.lstrip().startswith("v=0"):
        raise WebRTCError("not an SDP offer (it must start with v=0)")
    try:
        media = SessionDescription.parse(sdp).media
    except Exception as error:  # noqa: BLE001 - aiortc's parser raises whatever the text causes
        raise WebRTCError(f"the offer's SDP cannot be read ({type(error).__name__})") from None
    if not media:
        raise WebRTCError("the offer's SDP has no media")
    return media


def ice_servers(text: str | None) -> list[dict]:
    """The RTCIceServer list in ``text`` (JSON, as a browser's ``RTCPeerConnection`` takes it:
    ``[{"urls": "stun:host:3478"}, {"urls": ["turn:host:3478"], "username": u, "credential": p}]``),
    checked; ``[]`` for none. aiortc uses the first STUN and the first TURN server of the list."""
    if not text or not text.strip():
        return []
    try:
        servers = json.loads(text)
    except json.JSONDecodeError as error:
        raise WebRTCError(f"{ICE_ENV} is not JSON ({error.msg} at character {error.pos})") from None
    if isinstance(servers, dict):
        servers = [servers]
    if not isinstance(servers, list):
        raise WebRTCError(f"{ICE_ENV} must be a list of RTCIceServer objects")
    checked = []
    for n, server in enumerate(servers, 1):
        urls = server.get("urls") if isinstance(server, dict) else None
        urls = [urls] if isinstance(urls, str) else urls
        if not urls or not all(isinstance(u, str) and u.split(":", 1)[0] in ("stun", "stuns", "turn", "turns")
                               for u in urls):
            raise WebRTCError(f"{ICE_ENV}: server {n} needs 'urls' of stun:, stuns:, turn: or turns: "
                              "addresses")
        extra = {k: server[k] for k in ("username", "credential") if server.get(k) is not None}
        if any(u.startswith("turn") for u in urls) and len(extra) != 2:
            raise WebRTCError(f"{ICE_ENV}: server {n} is a TURN server and needs 'username' and 'credential'")
        if not all(isinstance(v, str) for v in extra.values()):
            raise WebRTCError(f"{ICE_ENV}: server {n}'s username and credential must be strings")
        checked.append({"urls": urls, **extra})
    return checked


def ice_servers_from_env() -> list[dict]:
    """The ICE servers of ``$VITPOSE_ICE_SERVERS`` (a Space secret), checked."""
    return ice_servers(os.environ.get(ICE_ENV))


def rtc_ice_servers(servers: list[dict]) -> list[RTCIceServer]:
    """:func:`ice_servers`'s list as aiortc takes it (an empty list: no STUN at all; aiortc's
    default of Google's STUN server would stall gathering on a machine without internet)."""
    return [RTCIceServer(**server) for server in servers]
