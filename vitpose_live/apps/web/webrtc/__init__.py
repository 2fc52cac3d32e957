"""The Webcam tab over WebRTC: the browser's camera goes to an aiortc peer in the app as a video
track and the annotated picture comes back as one, signalled through Gradio 6's server functions
(no custom component build, no second port).

- :mod:`.offer`: what a peer may send before anything runs (the offer, checked; the ICE servers
  of ``$VITPOSE_ICE_SERVERS``).
- :mod:`.track`: the media side: newest-frame worker thread, outgoing track, fitted bitrate,
  the jitter buffer, :class:`Peer`.
- :mod:`.manager`: :class:`WebRTCManager`, the peers on a loop of their own (session cap,
  vanished peers, time limit).
- :mod:`.page`: the browser's side, a ``gr.HTML`` component (Start / Stop, the video, the live
  line, the fallback event).

Independent of the engine: the manager takes a ``process(image_rgb, peer)`` callable.
"""

from .manager import WebRTCManager
from .offer import ICE_ENV, WebRTCError, check_offer, ice_servers, ice_servers_from_env
from .track import Peer, fitted_bitrate

__all__ = ["ICE_ENV", "Peer", "WebRTCError", "WebRTCManager", "check_offer", "fitted_bitrate", "ice_servers",
           "ice_servers_from_env"]
