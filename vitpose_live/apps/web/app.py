"""The web app's behaviour (:class:`PoseWebApp`: the events the page calls), :func:`build_demo`
and :func:`main` (``python app.py``, what Hugging Face Spaces runs)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import weakref
from pathlib import Path

import gradio as gr

from ...models.loading import ModelLoadError, check_models, quiet_hub_logging
from ..flags import STREAM_MINUTES, web_app_parser
from . import jobs
from .follow import NOBODY, ImagePick, following_line
from .frames import jpeg_file
from .payloads import Limits
from .settings import MODEL_CHOICES, Settings, defaults_for
from .state import LiveSession, ModelCache, SessionClosed, SessionRegistry, gpu
from .webcam_rtc import WebcamPeers
from .webrtc import WebRTCError

log = logging.getLogger(__name__)


class PoseWebApp:
    """The web app's behaviour; :meth:`build` lays it out as a ``gr.Blocks`` (:mod:`.layout`).

    Args:
        model: a ViTPose Hub id or local directory, offered first in the model list and selected
            (default: the device's, :func:`.settings.defaults_for`).
        detector: the person detector (Hub id or directory) every session uses.
        device, dtype: as on the command line (``auto``: CUDA fp16, then MPS, then CPU fp32).
        limits: upload limits.
        live_concurrency: webcam frames processed at once over all sessions.
        stream_every: seconds between webcam frames the browser sends (at most; it skips a
            beat while the previous answer is on its way).
        stream_time_limit: seconds one webcam stream may run before it has to be restarted.
        session_ttl: seconds a session's state survives without a frame.
        delete_cache: Gradio's ``(every, older_than)`` seconds for deleting the files it made.
        webrtc_sessions: WebRTC webcam streams at once (the next page is told the server is busy).
        ice_servers: RTCIceServer dicts for WebRTC (default: ``$VITPOSE_ICE_SERVERS``).
        webrtc: the Webcam tab streams over WebRTC (falling back to HTTP); False: over HTTP only.
    """

    def __init__(self, model: str | None = None, detector: str | None = None, device: str = "auto",
                 dtype: str = "auto", *, limits: Limits = Limits(), live_concurrency: int = 2,
                 stream_every: float = 0.1, stream_time_limit: int = 60 * STREAM_MINUTES, session_ttl: float = 3600,
                 delete_cache: tuple[int, int] = (120, 900), max_models: int = 2, webrtc_sessions: int = 4,
                 ice_servers: list[dict] | None = None, webrtc: bool = True) -> None:
        self.defaults = defaults_for(device, os.fspath(model) if model else None, detector)
        self.default_model = self.defaults.model
        self.choices = list(MODEL_CHOICES)
        if self.default_model not in {value for _, value in self.choices}:
            self.choices.insert(0, (f"{Path(self.default_model).name} (--model)", self.default_model))
        self.allowed = {value for _, value in self.choices}
        self.detector = self.defaults.detector
        self.models = ModelCache(self.detector, device, dtype, max_models=max_models,
                                 detector_size=self.defaults.detector_size, detector_gap_s=self.defaults.detector_gap_s)
        self.sessions = SessionRegistry()
        self.limits = limits
        self.live_concurrency = max(1, int(live_concurrency))
        self.stream_every = float(stream_every)
        self.stream_time_limit = int(stream_time_limit)
        self.session_ttl = session_ttl
        self.delete_cache = delete_cache
        self._work = Path(tempfile.mkdtemp(prefix="vitpose-live-ui-"))
        self._swept_at = 0.0
        weakref.finalize(self, shutil.rmtree, str(self._work), True)
        self.video = gpu(self._video)
        self.webrtc = WebcamPeers(self, max_sessions=webrtc_sessions, ice_servers=ice_servers,
                                  time_limit_s=self.stream_time_limit) if webrtc else None
        if self.webrtc is not None:
            weakref.finalize(self, self.webrtc.close)

    def settings(self, **controls) -> Settings:
        """The controls' values as one :class:`Settings`; ``gr.Error`` when one is out of range."""
        try:
            return Settings.from_controls(self.allowed, **controls)
        except (TypeError, ValueError) as error:
            raise gr.Error(str(error)) from None

    def describe(self) -> str:
        """What runs where, for the page: the device, the models, the detection interval."""
        name = {value: label for label, value in self.choices}.get(self.default_model, self.default_model)
        size = f" at {self.defaults.detector_size}x{self.defaults.detector_size}" if self.defaults.detector_size else ""
        return (f"Running on **{self.defaults.profile.device_label}**: pose model **{name}**, person detector "
                f"**{Path(self.detector).name}**{size}, run on {_every(self.defaults.det_every)} (webcam, video), "
                f"at most {self.defaults.max_persons} persons per frame. "
                "The Webcam tab shows the rate it reaches and where a frame's time goes.")

    # -- events ---------------------------------------------------------------------------
    def frame(self, frame, session, request: gr.Request = None, **controls):
        """One webcam frame of this session → (annotated frame, stats line, info, session).
        The ``/frame`` endpoint: the picture comes back as a file of its own (``jpeg_file``)."""
        picture, line, info, session = self._frame(frame, session, request, controls, inline=False)
        if picture is not None:
            picture = jpeg_file(picture, self._output_dir())
        return picture, line, info, session

    def stream(self, frame, session, request: gr.Request = None, **controls):
        """The Webcam tab's stream: (inline JPEG, stats line, session)."""
        current = self.sessions.get(_session_key(request))
        if current is not None and current.away:  # its tab was left: do nothing until it is back
            return gr.skip(), gr.skip(), session
        picture, line, _, session = self._frame(frame, session, request, controls, inline=True)
        return picture, line, session

    def _frame(self, frame, session, request, controls: dict, *, inline: bool):
        if frame is None:
            return None, "waiting for the camera", {}, session
        settings = self.settings(**controls)
        image, decode_ms = jobs.decode_frame(frame, self.limits)
        key = _session_key(request)
        session = self.sessions.session_for(key, session)
        try:
            picture, info = jobs.webcam_frame(image, decode_ms, settings, session, self.models, inline=inline)
        except SessionClosed:  # freed (tab closed, state expired) while this frame was on its way
            session = self.sessions.session_for(key, None)
            picture, info = jobs.webcam_frame(image, decode_ms, settings, session, self.models, inline=inline)
        return picture, jobs.stats_line(info), info, session

    def image(self, image, **controls):
        """An uploaded image → (annotated image as a file of its own, keypoints record with the
        header's fields, what a click on it needs, the following line)."""
        picture, info, pick = jobs.annotate_image(image, self.settings(**controls), self.models, self.limits)
        return jpeg_file(picture, self._output_dir()), info, pick, following_line(None)

    def pick_image(self, pick: ImagePick | None, event: gr.SelectData):
        """A click on the image result: it is drawn again with that person followed, the others dimmed."""
        if not isinstance(pick, ImagePick) or not event.index:
            return gr.skip(), NOBODY
        picture, person = pick.pick(*event.index[:2])
        return jpeg_file(picture, self._output_dir()), following_line(person)

    def pick_live(self, session, event: gr.SelectData):
        """A click on the live (HTTP) video: its session follows that person from the next frame."""
        if not isinstance(session, LiveSession) or not event.index:
            return NOBODY
        if session.engine is None or not session.track_ids:
            return "Nobody to follow yet (following needs 'Smooth keypoints': tracked persons)."
        return following_line(session.pick(*event.index[:2]))

    def release_live(self, session):
        if isinstance(session, LiveSession):
            session.release()
        return NOBODY

    def _video(self, video, progress=gr.Progress(), **controls):
        """An uploaded video → (annotated MP4 with its audio, keypoints JSONL, keypoints CSV, angle
        plot, summary)."""
        settings = self.settings(**controls)
        return jobs.annotate_video(video, settings, self.models, self.limits, self._output_dir(), progress)

    def leave_webcam(self, request: gr.Request = None) -> None:
        """Another tab was selected: the stream stops (the page's script stops the camera) and
        the session's frames are ignored until the Webcam tab is back."""
        key = _session_key(request)
        if self.webrtc is not None:
            self.webrtc.stop(key, "the Webcam tab was left")
        session = self.sessions.get(key)
        if session is not None:
            session.pause()

    def enter_webcam(self, request: gr.Request = None) -> None:
        session = self.sessions.get(_session_key(request))
        if session is not None:
            session.away = False

    def unload(self, request: gr.Request = None) -> None:
        if self.webrtc is not None:
            self.webrtc.forget(_session_key(request))
        self.sessions.close(_session_key(request))

    def remember_controls(self, request: gr.Request = None, **controls) -> None:
        """The page's controls changed (or it loaded): its WebRTC stream's next frame uses them."""
        self.webrtc.remember(_session_key(request), controls)

    def fall_back(self, request: gr.Request = None):
        """The page has no WebRTC connection: its HTTP webcam is shown (the script starts it)."""
        log.info("webrtc: session %r falls back to the HTTP stream", _session_key(request))
        return gr.update(visible=True)

    def _output_dir(self, keep_seconds: float = 600) -> Path:
        """A fresh folder for one call's outputs (Gradio serves copies of them); folders of
        earlier calls older than ``keep_seconds`` are deleted (looked for at most every
        ``keep_seconds / 10``, since ``/frame`` callers may ask many times a second)."""
        now = time.time()
        if now - self._swept_at > keep_seconds / 10:
            self._swept_at = now
            for old in self._work.iterdir():
                try:
                    if now - old.stat().st_mtime > keep_seconds:
                        shutil.rmtree(old, ignore_errors=True)
                except OSError:
                    pass
        return Path(tempfile.mkdtemp(dir=self._work))

    def build(self) -> gr.Blocks:
        from .layout import build_page

        return build_page(self)


def _every(n: int) -> str:
    return "every frame" if n == 1 else f"every {n}{'nd' if n == 2 else 'rd' if n == 3 else 'th'} frame"


def _session_key(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def build_demo(model: str | None = None, detector: str | None = None, device: str = "auto", dtype: str = "auto",
               **options) -> gr.Blocks:
    """The web app as a ``gr.Blocks`` (not launched). ``options`` go to :class:`PoseWebApp`."""
    return PoseWebApp(model, detector, device, dtype, **options).build()


def build_parser() -> argparse.ArgumentParser:
    """The web app's flags (:func:`vitpose_live.apps.flags.web_app_parser`, readable without gradio)."""
    return web_app_parser()


def main(argv: list[str] | None = None) -> None:
    """``python app.py [--model PATH] [--detector PATH] [--device D] [--dtype T] [--server-name H]
    [--server-port P] [--share]``: launch the web app (blocks until stopped)."""
    from ...models.device import resolve
    from ...system.host_memory import keep_freed_memory

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        resolve(args.device, args.dtype)
    except ValueError as error:
        parser.error(str(error))
    quiet_hub_logging()
    keep_freed_memory()
    try:
        app = PoseWebApp(args.model, args.detector, args.device, args.dtype, webrtc_sessions=args.webrtc_sessions,
                         stream_time_limit=60 * args.stream_minutes)
    except WebRTCError as error:  # $VITPOSE_ICE_SERVERS
        parser.error(error.one_line())
    try:
        check_models(app.default_model, app.models.detector)
    except ModelLoadError as error:  # the page says so too, when the model is first used
        print(f"app.py: warning: {error}", file=sys.stderr)
    demo = app.build()
    demo.launch(server_name=args.server_name, server_port=args.server_port, share=args.share,
                max_file_size=app.limits.video_bytes,
                quiet=True,  # Gradio's own hint names `share=True`; ours names the flag
                prevent_thread_lock=True)
    print(launch_lines(demo.local_url, demo.share_url), flush=True)
    demo.block_thread()




def launch_lines(local_url: str, share_url: str | None) -> str:
    """What the console says once the app is up."""
    line = f"* Running on local URL:  {local_url}"
    return line if share_url else line + "\n* For a temporary public link, add --share"  # Gradio printed share_url


__all__ = ["LiveSession", "PoseWebApp", "build_demo", "build_parser", "launch_lines", "main"]
