"""Per-process and per-session state: the models every session shares (:class:`ModelCache`),
one browser session's webcam engine, tracks and timings (:class:`LiveSession`), and the sessions
by Gradio session hash (:class:`SessionRegistry`)."""

from __future__ import annotations

import collections
import itertools
import logging
import statistics
import threading
import time
from collections.abc import Callable

import numpy as np
import torch

from ...analysis.angles import angle_summary, pose_angles
from ...analysis.follow import Follower
from ...models.detector import PersonDetector
from ...engine.engine import PoseEngine
from ...engine.recipe import build_engine
from ...models.loading import check_models
from ...models.pose import PoseEstimator
from ...runtime.follow_view import FollowView
from ...types import Frame
from .frames import mirror_poses, mirrored
from .settings import PAGE_VIEW_SIZE, Settings

log = logging.getLogger(__name__)

# Where a webcam frame's time goes on the server; "between" is from one answer to the next frame:
# Gradio's own work, the network, the browser, and waiting for the browser's next frame.
STAGES = ("decode", "engine", "draw", "encode", "between")


class ModelCache:
    """Pose models and the person detector, loaded on first use, shared by every session.

    Keyed on the models only (pose model; detector, device, dtype): settings never reload.
    Thread-safe: loading one model happens once however many sessions ask at the same time (a
    lock per key), and does not hold up sessions using another. At most ``max_models`` pose
    models stay loaded; the least recently used goes first (sessions holding it keep it until they let
    go). A model that fails to load is not remembered, so the next call tries again.
    """

    def __init__(self, detector: str, device: str = "auto", dtype: str = "auto", *, max_models: int = 2,
                 detector_size: int | None = None, detector_gap_s: float = 0.0) -> None:
        self.detector, self.device, self.dtype = detector, device, dtype
        self.detector_size = detector_size  # the detector's input side (None: its processor's)
        self.detector_gap_s = detector_gap_s  # live sessions' detector pace while persons are tracked
        self.max_models = max(1, int(max_models))
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}
        self._models: collections.OrderedDict[tuple, object] = collections.OrderedDict()
        self.loads = 0  # models actually loaded (tests count them)

    def get(self, model: str) -> tuple[PoseEstimator, PersonDetector]:
        """The loaded pose model and the detector on its device (one detector for every pose
        model on the same device and dtype); raises ``ModelLoadError`` or ``ValueError``."""
        if ("pose", model) not in self._models:
            check_models(model, self.detector)  # both named at once, in seconds without the Hub
        pose = self._cached(("pose", model), lambda: PoseEstimator(model, device=self.device, dtype=self.dtype))
        placement = pose.placement
        detector = self._cached(("detector", str(placement.device), str(placement.dtype)),
                                lambda: PersonDetector(self.detector, device=placement.device, dtype=placement.dtype,
                                                       input_side=self.detector_size))
        return pose, detector

    def _cached(self, key: tuple, load: Callable):
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            value = load()
            log.info("loaded %s %s", *key[:2])
            with self._lock:
                self._models[key] = value
                self.loads += 1
                self._loading.pop(key, None)
                kind = [k for k in self._models if k[0] == key[0]]
                for old in kind[: max(0, len(kind) - self.max_models)]:
                    del self._models[old]
            return value


class SessionClosed(RuntimeError):
    """A :class:`LiveSession` was used after :meth:`LiveSession.close`."""


class FrameTimes:
    """The last ``window`` frames' milliseconds per stage (:data:`STAGES`)."""

    def __init__(self, window: int = 30) -> None:
        self._rows: collections.deque[dict[str, float]] = collections.deque(maxlen=window)

    def add(self, row: dict[str, float]) -> None:
        self._rows.append(row)

    def medians(self) -> dict[str, float]:
        rows = list(self._rows)
        return {stage: round(statistics.median(r[stage] for r in rows if stage in r), 1)
                for stage in STAGES if any(stage in r for r in rows)}


class LiveSession:
    """One browser session's webcam: an engine of its own (tracker, smoother, live detector
    thread over the shared models), rebuilt only when the model changes, and its stats. Calls are
    serialised by a lock; :meth:`close` frees it all."""

    _ids = itertools.count(1)

    def __init__(self, window: int = 30) -> None:
        self.id = next(self._ids)
        self._lock = threading.Lock()
        self._engine: PoseEngine | None = None
        self._model: str | None = None
        self._started: float | None = None
        self._answered: float | None = None  # when the last frame's answer was ready
        self._done: collections.deque[float] = collections.deque(maxlen=window)
        self.times = FrameTimes(window)
        self.frames = 0
        self.engines_built = 0
        self.away = False  # its tab was left: the stream's frames are ignored
        self.settings: Settings | None = None  # what the last frame was processed with
        self.track_ids: list[int] = []  # the last frame's
        self.history: collections.deque[tuple[Settings, list[int]]] = collections.deque(maxlen=window)
        self.follower = Follower(None)  # whom a click on the live video picked (tracked streams only)
        self.view = FollowView(PAGE_VIEW_SIZE)  # the followed person framed ("framed" setting)
        self.followed_angles: list[str] = []  # the followed person's angles in the last frame, as read
        self._followed_row: int | None = None  # their row in the last frame's poses
        self._shown: tuple[int, bool] | None = None  # the last frame's width and whether it was mirrored
        self.closed = False

    @property
    def engine(self) -> PoseEngine | None:
        return self._engine

    def _engine_for(self, settings: Settings, models) -> PoseEngine:
        if self._model != settings.model:  # the only change that reloads
            if self._engine is not None:
                self._engine.close()
            options = settings.engine_options(live=True, detector_gap_s=models.detector_gap_s)
            self._engine = build_engine(options, models.get(settings.model))
            self._model = settings.model
            self.engines_built += 1
        else:  # a moved control: from this frame on, tracks kept
            self._engine.settings, self._engine.det_every = settings.frame_settings(), settings.det_every
        return self._engine

    def process(self, image: np.ndarray, settings: Settings, models, *, decode_ms: float = 0.0):
        """Annotate one frame (``image`` is this call's own, RGB): ``(picture, result, row)``
        where ``row`` holds this frame's timings so far (the caller adds ``encode``)."""
        with self._lock:
            if self.closed:
                raise SessionClosed("this session has been closed")
            arrived = time.monotonic()
            row = {"decode": decode_ms}
            if self._answered is not None:
                row["between"] = max(0.0, (arrived - self._answered) * 1e3 - decode_ms)
            if self._started is None:
                self._started = arrived
            engine = self._engine_for(settings, models)
            frame = Frame(image, self.frames, arrived - self._started, arrived)
            with torch.inference_mode():
                result = engine(frame)
            self.settings = settings
            ids = result.poses.track_ids
            self.track_ids = [] if ids is None else ids.tolist()
            self.history.append((settings, self.track_ids))
            drawn = time.monotonic()
            row["engine"] = (drawn - arrived) * 1e3
            followed = self._follow(result.poses, frame, settings)
            picture = self._draw(image, result.poses, frame, settings, followed)
            row["draw"] = (time.monotonic() - drawn) * 1e3
            self.frames += 1
            return picture, result, row

    def _draw(self, image: np.ndarray, poses, frame: Frame, settings: Settings, followed: int | None) -> np.ndarray:
        """The picture shown: drawn (mirrored or not), then the followed person framed when asked."""
        if settings.mirror:
            image, poses = mirrored(image), mirror_poses(poses, frame.width)
        else:  # a copy: the live detector thread may still be reading the frame
            image = image.copy()
        picture = settings.annotator().annotate(image, poses, followed=followed)
        box = poses.boxes[self._followed_row] if self._followed_row is not None else None
        return self.view.show(picture, box, frame.time, settings.framed and self.follower.person is not None)

    def _follow(self, poses, frame: Frame, settings: Settings) -> int | None:
        """This frame for the follower; the id drawn in full (the others dimmed), None: all alike."""
        self._shown = (frame.width, bool(settings.mirror))
        self.followed_angles, self._followed_row = [], None
        if poses.track_ids is None:
            self.follower.followed = None
            return None
        self.follower.kpt_threshold = settings.kpt_threshold
        followed = self.follower.update_poses(poses, frame.time, (frame.width, frame.height))
        if followed is not None:  # their row in this frame's poses (the mirrored ones keep the order)
            self._followed_row = int(np.flatnonzero(poses.track_ids == followed)[0])
            angles = pose_angles(poses, settings.kpt_threshold)
            self.followed_angles = angle_summary(angles[self._followed_row]) if angles is not None else []
        return followed if followed is not None else self.follower.person

    def followed(self) -> int | None:
        """The followed person's id in the last frame (None: not in it, or nobody followed)."""
        return self.follower.followed

    def pick(self, x: float, y: float) -> int | None:
        """A click at (x, y) on the last picture shown (mirrored or not, framed or not): follow the
        person there."""
        with self._lock:
            if self._shown is None:
                return None
            width, mirrored = self._shown
            x, y = self.view.to_source(x, y)
            return self.follower.pick_at((width - 1) - x if mirrored else x, y)

    def release(self) -> None:
        with self._lock:
            self.follower.release()

    def finish(self, row: dict[str, float]) -> None:
        """The frame's answer is ready (encoded): count it, keep its timings."""
        with self._lock:
            self._answered = time.monotonic()
            self._done.append(self._answered)
            self.times.add(row)

    def fps(self) -> float:
        done = list(self._done)
        return 0.0 if len(done) < 2 else (len(done) - 1) / max(done[-1] - done[0], 1e-9)

    def pause(self, away: bool = True) -> None:
        """The stream stopped (its tab was left, or its WebRTC stream ended with ``away``
        False): the detector thread stops, tracks are kept."""
        with self._lock:
            self.away = away
            if self._engine is not None:
                self._engine.close()
            self._answered = None

    def close(self) -> None:
        """Free the engine; the next frame gets a new session."""
        self.pause()
        with self._lock:
            self.closed, self._engine, self._model = True, None, None


class SessionRegistry:
    """Live sessions by Gradio session hash, so that a closing tab (unload event) frees its state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, LiveSession] = {}
        self._latest: LiveSession | None = None

    def session_for(self, key: str | None, current: LiveSession | None) -> LiveSession:
        """``current`` while it is open, else a new session registered under ``key``."""
        if isinstance(current, LiveSession) and not current.closed:
            self._latest = current
            return current
        session = self._latest = LiveSession()
        if key:
            with self._lock:
                old = self._sessions.pop(key, None)
                self._sessions[key] = session
            if old is not None:
                old.close()
        return session

    def get(self, key: str | None) -> LiveSession | None:
        with self._lock:
            return self._sessions.get(key) if key else None

    def close(self, key: str | None) -> None:
        with self._lock:
            session = self._sessions.pop(key, None) if key else None
        if session is not None:
            session.close()

    def forget(self, session) -> None:
        """``gr.State``'s delete callback: the state expired or its session ended."""
        if not isinstance(session, LiveSession):
            return
        with self._lock:
            for key in [k for k, v in self._sessions.items() if v is session]:
                del self._sessions[key]
        session.close()

    def sessions(self) -> list[LiveSession]:
        with self._lock:
            return list(self._sessions.values())

    def timings(self) -> dict[str, float]:
        """The median split of the session that streamed last (benchmarks show it)."""
        latest = self._latest
        return latest.times.medians() if latest is not None else {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


def gpu(fn: Callable, duration: int = 120) -> Callable:
    """``@spaces.GPU`` (Hugging Face ZeroGPU) when the ``spaces`` package is there; else ``fn``."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)
