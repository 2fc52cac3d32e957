"""The web app: Webcam, Video and Image tabs on the same engine as the command line.

A thin shell over the package: every frame goes through :class:`~vitpose_live.engine.PoseEngine`
(detector + ViTPose; ByteTrack ids and One Euro smoothing between detections), is drawn by
:class:`~vitpose_live.render.PoseAnnotator`; videos are decoded and encoded by the command line's
source, threads and sinks (H.264 with the original audio, keypoints as JSON lines) and keypoints
records are :func:`~vitpose_live.sinks.frame_record`.

- Models load lazily, once per process, and are shared by every session (:class:`ModelCache`).
- Each browser session has its own tracker, smoother and stats (:class:`LiveSession`, held in a
  ``gr.State``), freed when its tab closes (unload event) or after ``session_ttl`` idle seconds.
- Named endpoints for ``gradio_client``: ``/image``, ``/video`` and ``/frame`` (one webcam frame
  with the caller's own session state: a client cannot call the webcam ``.stream`` event).

:func:`build_demo` returns a ``gr.Blocks`` and never launches; :func:`main` (``python app.py``,
what Hugging Face Spaces runs) launches it.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import csv
import io
import itertools
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import PIL.Image
import torch

from ..detector import DEFAULT_DETECTOR, PersonDetector
from ..engine import EngineOptions, FrameSettings, PoseEngine, build_engine
from ..loading import ModelLoadError, check_models, quiet_hub_logging
from ..pipeline import PipelineError
from ..pose import DEFAULT_POSE_MODEL, PoseEstimator
from ..render import PoseAnnotator
from ..run import Outputs, RunOptions, run
from ..sinks import KeypointsJsonlSink, SinkError, VideoFileSink, frame_record, keypoints_header
from ..sources import SourceError, VideoFileSource, read_image
from ..types import Frame, Poses

log = logging.getLogger(__name__)

# ViTPose checkpoints published in transformers format (the usyd-community organisation has no
# ViTPose-S/L/H without "++"; every ViTPose++ size is there).
MODEL_CHOICES: tuple[tuple[str, str], ...] = (
    ("ViTPose-B, simple decoder", DEFAULT_POSE_MODEL),
    ("ViTPose-B", "usyd-community/vitpose-base"),
    ("ViTPose++-S", "usyd-community/vitpose-plus-small"),
    ("ViTPose++-B", "usyd-community/vitpose-plus-base"),
    ("ViTPose++-L", "usyd-community/vitpose-plus-large"),
    ("ViTPose++-H", "usyd-community/vitpose-plus-huge"),
)
ASSETS = Path(__file__).resolve().parents[2] / "assets"
EXAMPLE_IMAGES = ("astronaut.jpg", "cameraman.jpg")
_MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What uploads may be; stated in the page and enforced on every call."""

    video_seconds: float = 60.0
    video_bytes: int = 200 * _MB
    image_bytes: int = 25 * _MB
    image_pixels: int = 40_000_000


@dataclass(frozen=True)
class Settings:
    """The controls' values, checked (API callers can send anything)."""

    model: str
    det_threshold: float = 0.5
    max_persons: int = 20
    kpt_threshold: float = 0.3
    det_every: int = 1
    smooth: bool = False
    smooth_strength: float = 0.5
    show_boxes: bool = False
    show_ids: bool = True

    def __post_init__(self) -> None:
        for name in ("det_threshold", "kpt_threshold", "smooth_strength"):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name.replace('_', ' ')} must be between 0 and 1, got {value}")
            object.__setattr__(self, name, value)
        for name, low, high in (("det_every", 1, 30), ("max_persons", 1, 100)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value == int(value) and low <= value <= high):
                label = "detection interval" if name == "det_every" else "max persons"
                raise ValueError(f"{label} must be a whole number from {low} to {high}, got {value}")
            object.__setattr__(self, name, int(value))
        for name in ("smooth", "show_boxes", "show_ids"):
            object.__setattr__(self, name, bool(getattr(self, name)))

    @property
    def min_cutoff(self) -> float:
        """The One Euro minimum cutoff for the strength slider: 0 → 10 Hz (hardly smoothed),
        0.5 → 1 Hz (the command line's default), 1 → 0.1 Hz (heavily smoothed)."""
        return 10.0 ** (1.0 - 2.0 * self.smooth_strength)

    def frame_settings(self) -> FrameSettings:
        """What the engine applies from the next frame on (no reload, tracks kept)."""
        return FrameSettings(det_threshold=self.det_threshold, max_persons=self.max_persons,
                             kpt_threshold=self.kpt_threshold, smooth=self.smooth, smooth_min_cutoff=self.min_cutoff)

    def engine_options(self, *, live: bool) -> EngineOptions:
        return EngineOptions(settings=self.frame_settings(), live=live, det_every=self.det_every)

    def annotator(self) -> PoseAnnotator:
        return PoseAnnotator(
            kpt_threshold=self.kpt_threshold, show_boxes=self.show_boxes, show_ids=self.show_ids
        )


def make_engine(pose: PoseEstimator, detector: PersonDetector, settings: Settings, *, live: bool) -> PoseEngine:
    """The shared recipe (:func:`vitpose_live.engine.build_engine`) over already loaded models."""
    return build_engine(settings.engine_options(live=live), models=(pose, detector))


def mirror_poses(poses: Poses, width: int) -> Poses:
    """``poses`` as they lie on the picture flipped left to right (``image[:, ::-1]``).

    Keypoints and boxes are mirrored (pixel centre x goes to ``width - 1 - x``); names and
    colours stay with the person's real left and right, and text drawn afterwards reads normally.
    """
    keypoints = poses.keypoints.copy()
    keypoints[..., 0] = (width - 1) - keypoints[..., 0]
    boxes = poses.boxes.copy()
    boxes[:, 0], boxes[:, 2] = (width - 1) - poses.boxes[:, 2], (width - 1) - poses.boxes[:, 0]
    return poses.replace(keypoints=keypoints, boxes=boxes)


def _infer(engine: PoseEngine, frame: Frame):
    with torch.inference_mode():
        return engine(frame)


class ModelCache:
    """Pose models and the person detector, loaded on first use, shared by every session.

    Thread-safe: loading one model happens once however many sessions ask at the same time
    (a lock per model), and loading one model does not hold up sessions using another. Keys are
    (model, detector, device, dtype). At most ``max_models`` pose models stay loaded; the least
    recently used goes first (sessions still holding it keep it until they let go). A model that
    fails to load is not remembered, so the next call tries again.
    """

    def __init__(
        self,
        detector: str = DEFAULT_DETECTOR,
        device: str = "auto",
        dtype: str = "auto",
        *,
        max_models: int = 2,
    ) -> None:
        self.detector = detector
        self.device = device
        self.dtype = dtype
        self.max_models = max(1, int(max_models))
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}
        self._poses: collections.OrderedDict[tuple, PoseEstimator] = collections.OrderedDict()
        self._detectors: collections.OrderedDict[tuple, PersonDetector] = collections.OrderedDict()
        self.loads = 0  # models actually loaded (tests count them)

    def get(self, model: str) -> tuple[PoseEstimator, PersonDetector]:
        """The loaded pose model and detector; raises :class:`ModelLoadError` or ``ValueError``."""
        if ("pose", model, self.detector, self.device, self.dtype) not in self._poses:
            check_models(model, self.detector)  # both named at once, in seconds without the Hub
        pose = self._cached(
            self._poses,
            ("pose", model, self.detector, self.device, self.dtype),
            lambda: PoseEstimator(model, device=self.device, dtype=self.dtype),
        )
        placement = pose.placement
        detector = self._cached(
            self._detectors,
            ("detector", self.detector, str(placement.device), str(placement.dtype)),
            lambda: PersonDetector(self.detector, device=placement.device, dtype=placement.dtype),
        )
        return pose, detector

    def _cached(self, table: collections.OrderedDict, key: tuple, load: Callable):
        with self._lock:
            if key in table:
                table.move_to_end(key)
                return table[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in table:
                    return table[key]
            value = load()
            log.info("loaded %s %s", key[0], key[1])
            with self._lock:
                table[key] = value
                self.loads += 1
                self._loading.pop(key, None)
                while len(table) > self.max_models:
                    table.popitem(last=False)
            return value


class SessionClosed(RuntimeError):
    """A :class:`LiveSession` was used after :meth:`LiveSession.close`."""


class LiveSession:
    """One browser session's webcam state: an engine of its own (tracker and smoother over the
    shared models) and its stats. Calls are serialised by a lock; :meth:`close` frees it all."""

    _ids = itertools.count(1)

    def __init__(self, window: int = 30) -> None:
        self.id = next(self._ids)
        self._lock = threading.Lock()
        self._engine: PoseEngine | None = None
        self._key: tuple | None = None
        self._started: float | None = None
        self._done: collections.deque[float] = collections.deque(maxlen=window)
        self._ms: collections.deque[float] = collections.deque(maxlen=window)
        self.frames = 0
        self.closed = False

    def process(self, image: np.ndarray, settings: Settings, models: ModelCache, *, mirror: bool = False):
        """Annotate one frame: ``(picture, info)`` where ``info`` holds this session's stats and
        the frame's keypoints record (coordinates in the unmirrored frame)."""
        with self._lock:
            if self.closed:
                raise SessionClosed("this session has been closed")
            arrived = time.monotonic()
            if self._started is None:
                self._started = arrived
            if self._key != settings.model:
                if self._engine is not None:
                    self._engine.close()
                pose, detector = models.get(settings.model)
                self._engine = make_engine(pose, detector, settings, live=True)
                self._key = settings.model
            else:  # a moved slider: from this frame on, tracks kept
                self._engine.settings, self._engine.det_every = settings.frame_settings(), settings.det_every
            image = np.ascontiguousarray(image)
            frame = Frame(image, self.frames, arrived - self._started, arrived)
            result = _infer(self._engine, frame)
            poses = result.poses
            if mirror:
                picture = np.ascontiguousarray(image[:, ::-1])
                settings.annotator().annotate(picture, mirror_poses(poses, frame.width))
            else:
                picture = settings.annotator().annotate(image.copy(), poses)
            done = time.monotonic()
            self._done.append(done)
            self._ms.append((done - arrived) * 1e3)
            self.frames += 1
            info = {
                "session_frames": self.frames,
                "fps": round(self._fps(), 2),
                "latency_ms": round(sum(self._ms) / len(self._ms), 1),
                "person_count": len(poses),
                "track_ids": [] if poses.track_ids is None else poses.track_ids.tolist(),
                "detected": bool(result.detected),
                **frame_record(frame.index, frame.time, poses),  # frame, time, persons
            }
            return picture, info

    def _fps(self) -> float:
        if len(self._done) < 2:
            return 0.0
        return (len(self._done) - 1) / max(self._done[-1] - self._done[0], 1e-9)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            if self._engine is not None:
                self._engine.close()
            self._engine = None
            self._key = None


def stats_line(info: dict) -> str:
    return (
        f"{info['fps']:.1f} fps · {info['latency_ms']:.0f} ms per frame on the server · "
        f"{info['person_count']} person(s) · frame {info['session_frames']}"
    )


class SessionRegistry:
    """Live sessions by Gradio session hash, so that a closing tab (unload event) frees its state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, LiveSession] = {}

    def session_for(self, key: str | None, current: LiveSession | None) -> LiveSession:
        """``current`` while it is open, else a new session registered under ``key``."""
        if isinstance(current, LiveSession) and not current.closed:
            return current
        session = LiveSession()
        if key:
            with self._lock:
                old = self._sessions.pop(key, None)
                self._sessions[key] = session
            if old is not None:
                old.close()
        return session

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

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


class KeypointsCsvWriter:
    """Keypoints as CSV: one row per person per frame — frame, time, person, track_id, box
    (x1, y1, x2, y2), box_score, then ``<name>_x``, ``<name>_y``, ``<name>_score`` per keypoint."""

    def __init__(self, path: str | Path, keypoint_names: tuple[str, ...]) -> None:
        self.path = Path(path)
        self._file = open(self.path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        columns = ["frame", "time", "person", "track_id", "x1", "y1", "x2", "y2", "box_score"]
        columns += [f"{name}_{part}" for name in keypoint_names for part in ("x", "y", "score")]
        self._writer.writerow(columns)

    def write(self, frame_index: int, time: float | None, poses: Poses) -> None:
        record = frame_record(frame_index, time, poses)
        for n, person in enumerate(record["persons"]):
            row = [
                record["frame"],
                record["time"],
                n,
                person.get("track_id", ""),
                *person["box"],
                person["score"],
            ]
            row += [value for keypoint in person["keypoints"] for value in keypoint]
            self._writer.writerow(["" if value is None else value for value in row])

    def close(self) -> None:
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> KeypointsCsvWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def image_from_payload(payload, *, max_bytes: int, max_pixels: int) -> tuple[np.ndarray, str]:
    """An image input's raw value → ``(HxWx3 uint8 RGB, name)``, or ``gr.Error`` saying why not.

    The events that take images run with ``preprocess=False``, so that a file that is not an
    image, or is too large, gets a message (``gr.Image`` would fail with an unexplained error).
    Gradio has still checked that an uploaded path lies in its upload folder. The value is an
    uploaded file (``path``) or, from a streaming webcam, a ``data:`` URL. The size is read from
    the header before anything is decoded, so a small file of huge dimensions is refused cheaply.
    """
    if isinstance(payload, dict):
        path, url, name = payload.get("path"), payload.get("url"), payload.get("orig_name")
    else:  # a plain path (a direct call)
        path, url, name = payload, None, None
    if path:
        name = name or Path(path).name
        try:
            size = os.path.getsize(path)
        except OSError:
            raise gr.Error(f"'{name}' cannot be read") from None
        if size > max_bytes:
            raise gr.Error(f"'{name}' is {size / _MB:.1f} MB: images can be at most {max_bytes // _MB} MB")
        opened = path
    elif isinstance(url, str) and url.startswith("data:") and "," in url:
        name = name or "the frame"
        data = url.split(",", 1)[1]
        if len(data) * 3 // 4 > max_bytes:
            raise gr.Error(f"{name} is larger than {max_bytes // _MB} MB")
        try:
            opened = io.BytesIO(base64.b64decode(data, validate=False))
        except (ValueError, binascii.Error):
            raise gr.Error(f"{name} is not an image that can be read") from None
    else:
        raise gr.Error("Upload an image first.")
    unreadable = f"'{name}' is not an image that can be read (use JPEG, PNG, WebP, BMP or TIFF)"
    try:
        with PIL.Image.open(opened) as header:
            width, height = header.size
    except (PIL.UnidentifiedImageError, OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError):
        raise gr.Error(unreadable) from None
    if width * height > max_pixels:
        raise gr.Error(f"'{name}' is {width}x{height}: at most {max_pixels / 1e6:g} megapixels please")
    if path:
        try:
            return read_image(path), name  # as the command line reads images (EXIF, 16 bits, alpha)
        except SourceError:
            raise gr.Error(unreadable) from None
    image = cv2.imdecode(np.frombuffer(opened.getbuffer(), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise gr.Error(unreadable)
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)), name


def model_error(error: ModelLoadError | ValueError) -> gr.Error:
    """What the page says when a model cannot be loaded: which one, why, and what the person running
    the app can do (the console gets the same one line, no traceback)."""
    log.warning("%s", str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
    problems = getattr(error, "problems", ())
    if not problems:
        return gr.Error(str(error), title="Model not available", print_exception=False)
    text = " ".join(f"The {p.what} '{p.spec}' could not be loaded: {p.reason}." for p in problems)
    flags = " and ".join(f"{p.flag} DIR" for p in problems)
    text += (
        f" Whoever runs this app can restart it with {flags}: checkpoint directories made on a machine with "
        "internet access (`hf download ID --local-dir DIR`, or save_pretrained)."
    )
    if any(p.what == "pose model" and not p.offline for p in problems):
        text += " Meanwhile another pose model from the list may work."
    return gr.Error(text, title="Model not available", print_exception=False)


def _gpu(fn: Callable, duration: int = 120) -> Callable:
    """``@spaces.GPU`` (Hugging Face ZeroGPU) when the ``spaces`` package is there; else ``fn``."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)


def _session_key(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def _safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._") or "video"
    return stem[:80]


class PoseWebApp:
    """The web app's behaviour; :meth:`build` lays it out as a ``gr.Blocks``.

    Args:
        model: a ViTPose Hub id or local directory, offered first in the model list and selected
            (default: ViTPose-B simple).
        detector: the person detector (Hub id or directory) every session uses.
        device, dtype: as on the command line (``auto``: CUDA fp16, then MPS, then CPU fp32).
        limits: upload limits.
        live_concurrency: webcam frames processed at once over all sessions.
        stream_every: seconds between webcam frames the browser sends (at most; it waits for
            the previous answer).
        stream_time_limit: seconds one webcam stream may run before it has to be restarted.
        session_ttl: seconds a session's state survives without a frame.
        delete_cache: Gradio's ``(every, older_than)`` seconds for deleting the files it made
            (streamed frames, outputs).
    """

    def __init__(
        self,
        model: str | None = None,
        detector: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        *,
        limits: Limits = Limits(),
        live_concurrency: int = 2,
        stream_every: float = 0.1,
        stream_time_limit: int = 300,
        session_ttl: float = 3600,
        delete_cache: tuple[int, int] = (120, 900),
        max_models: int = 2,
    ) -> None:
        self.default_model = os.fspath(model) if model else DEFAULT_POSE_MODEL
        self.choices = list(MODEL_CHOICES)
        if self.default_model not in {value for _, value in self.choices}:
            self.choices.insert(0, (f"{Path(self.default_model).name} (--model)", self.default_model))
        self._allowed = {value for _, value in self.choices}
        self.models = ModelCache(detector or DEFAULT_DETECTOR, device, dtype, max_models=max_models)
        self.sessions = SessionRegistry()
        self.limits = limits
        self.live_concurrency = max(1, int(live_concurrency))
        self.stream_every = float(stream_every)
        self.stream_time_limit = int(stream_time_limit)
        self.session_ttl = session_ttl
        self.delete_cache = delete_cache
        on_cuda = str(device).startswith("cuda") or (str(device) == "auto" and torch.cuda.is_available())
        self.default_det_every = 1 if on_cuda else 3  # as on the command line
        self._work = Path(tempfile.mkdtemp(prefix="vitpose-live-ui-"))
        weakref.finalize(self, shutil.rmtree, str(self._work), True)
        self.annotate_video_on_gpu = _gpu(self.annotate_video)

    # -- checks ---------------------------------------------------------------------------
    def settings(self, model, **values) -> Settings:
        """The controls' values as :class:`Settings`; ``gr.Error`` when one is out of range."""
        if model not in self._allowed:
            raise gr.Error(f"unknown model {model!r}: pick one from the list")
        try:
            return Settings(model, **values)
        except (TypeError, ValueError) as error:
            raise gr.Error(str(error)) from None

    def _load(self, model: str) -> tuple[PoseEstimator, PersonDetector]:
        try:
            return self.models.get(model)
        except (ModelLoadError, ValueError) as error:
            raise model_error(error) from None

    def _image(self, payload) -> tuple[np.ndarray, str]:
        return image_from_payload(
            payload, max_bytes=self.limits.image_bytes, max_pixels=self.limits.image_pixels
        )

    def _output_dir(self, keep_seconds: float = 600) -> Path:
        """A fresh folder for one call's outputs (Gradio serves copies of them); folders of
        earlier calls older than ``keep_seconds`` are deleted."""
        now = time.time()
        for old in self._work.iterdir():
            try:
                if now - old.stat().st_mtime > keep_seconds:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        return Path(tempfile.mkdtemp(dir=self._work))

    # -- the three jobs -------------------------------------------------------------------
    def annotate_image(self, image, model, det_threshold, max_persons, kpt_threshold, show_boxes, show_ids):
        """An uploaded image → (annotated image, keypoints record with the header's fields)."""
        pixels, name = self._image(image)
        settings = self.settings(
            model,
            det_threshold=det_threshold,
            max_persons=max_persons,
            kpt_threshold=kpt_threshold,
            show_boxes=show_boxes,
            show_ids=show_ids,
        )
        pose, detector = self._load(settings.model)
        engine = make_engine(pose, detector, settings, live=False)
        result = _infer(engine, Frame(pixels, 0, None, time.monotonic()))
        picture = settings.annotator().annotate(pixels.copy(), result.poses)
        info = {"source": name, "width": int(pixels.shape[1]), "height": int(pixels.shape[0]), "fps": None}
        return picture, {**keypoints_header(engine, info), **frame_record(0, None, result.poses)}

    def annotate_video(
        self,
        video,
        model,
        det_threshold,
        max_persons,
        kpt_threshold,
        det_every,
        smooth,
        smooth_strength,
        show_boxes,
        show_ids,
        progress=gr.Progress(),
    ):
        """An uploaded video → (annotated H.264 MP4 with its audio, keypoints JSONL, keypoints CSV, summary)."""
        if not video:
            raise gr.Error("Upload a video first.")
        path = Path(video)
        name = path.name
        limit = self.limits.video_seconds
        if path.is_file() and path.stat().st_size > self.limits.video_bytes:
            size = path.stat().st_size / _MB
            raise gr.Error(
                f"'{name}' is {size:.0f} MB: videos can be at most {self.limits.video_bytes // _MB} MB"
            )
        settings = self.settings(
            model,
            det_threshold=det_threshold,
            max_persons=max_persons,
            kpt_threshold=kpt_threshold,
            det_every=det_every,
            smooth=smooth,
            smooth_strength=smooth_strength,
            show_boxes=show_boxes,
            show_ids=show_ids,
        )
        try:
            source = VideoFileSource(path)
        except SourceError as error:
            raise gr.Error(str(error).replace(str(path), name)) from None
        started = time.monotonic()
        frames = persons = 0
        try:
            info = source.info
            duration = info.duration or (info.frame_count / info.fps if info.frame_count else None)
            if duration is not None and duration > limit + 0.05:
                raise gr.Error(f"'{name}' lasts {duration:.0f} s: videos can be at most {limit:.0f} s long")
            if info.width * info.height > self.limits.image_pixels:
                raise gr.Error(f"'{name}' is {info.width}x{info.height}: too large a picture")
            pose, detector = self._load(settings.model)
            engine = make_engine(pose, detector, settings, live=False)
            out = self._output_dir()
            stem = _safe_stem(name)
            video_out, jsonl_out, csv_out = (
                out / f"{stem}_pose.mp4",
                out / f"{stem}_keypoints.jsonl",
                out / f"{stem}_keypoints.csv",
            )
            header = keypoints_header(
                engine, {"source": name, "width": info.width, "height": info.height, "fps": info.fps}
            )
            total = info.frame_count or (round(duration * info.fps) if duration else None)
            progress(0, desc="Loading the video")
            outputs = Outputs(
                [VideoFileSink(video_out, width=info.width, height=info.height, fps=info.fps,
                               audio_from=path if info.has_audio else None)],
                [KeypointsJsonlSink(jsonl_out, header=header), KeypointsCsvWriter(csv_out, engine.skeleton.keypoint_names)],
            )
            shown = [0.0]

            def on_frame(result, picture, stats) -> bool:
                frame = result.frame
                if frame.time is not None and frame.time > limit + 1.0:  # the headers understated it
                    raise gr.Error(f"'{name}' is longer than {limit:.0f} s")
                if total and time.monotonic() - shown[0] > 0.25:
                    shown[0] = time.monotonic()
                    progress((min(frame.index + 1, total), total), desc="Annotating", unit="frames")
                return False

            on_cuda = engine.pose.placement.is_cuda
            report = run(source, engine, outputs, RunOptions(batch=8 if on_cuda else 4, total=total, progress=False),
                         annotator=settings.annotator(), on_frame=on_frame)
            frames, persons = report.frames, report.persons
            if frames == 0:
                raise gr.Error(f"'{name}' has no frames")
        except (SinkError, PipelineError, ValueError) as error:
            raise gr.Error(str(error).replace(str(path), name)) from None
        finally:
            source.close()
        seconds = time.monotonic() - started
        summary = (
            f"{frames} frame(s) in {seconds:.1f} s ({frames / max(seconds, 1e-9):.1f} frames/s), "
            f"{persons / frames:.1f} person(s) per frame" + ("; audio kept" if info.has_audio else "")
        )
        return str(video_out), str(jsonl_out), str(csv_out), summary

    def live_frame(
        self,
        frame,
        session,
        mirror,
        model,
        det_threshold,
        max_persons,
        kpt_threshold,
        det_every,
        smooth,
        smooth_strength,
        show_boxes,
        show_ids,
        request: gr.Request = None,
    ):
        """One webcam frame of this session → (annotated frame, stats line, info, session)."""
        if frame is None:
            return None, "waiting for the camera", {}, session
        settings = self.settings(
            model,
            det_threshold=det_threshold,
            max_persons=max_persons,
            kpt_threshold=kpt_threshold,
            det_every=det_every,
            smooth=smooth,
            smooth_strength=smooth_strength,
            show_boxes=show_boxes,
            show_ids=show_ids,
        )
        frame, _ = self._image(frame)
        session = self.sessions.session_for(_session_key(request), session)
        try:
            try:
                picture, info = session.process(frame, settings, self.models, mirror=bool(mirror))
            except SessionClosed:  # freed (tab closed, state expired) while this frame was on its way
                session = self.sessions.session_for(_session_key(request), None)
                picture, info = session.process(frame, settings, self.models, mirror=bool(mirror))
        except (ModelLoadError, ValueError) as error:
            raise model_error(error) from None
        return picture, stats_line(info), info, session

    def _stream(self, frame, session, *controls, request: gr.Request = None):
        picture, line, _, session = self.live_frame(frame, session, *controls, request=request)
        return picture, line, session

    def _on_unload(self, request: gr.Request = None) -> None:
        self.sessions.close(_session_key(request))

    # -- the page -------------------------------------------------------------------------
    def build(self) -> gr.Blocks:
        limits = self.limits
        with gr.Blocks(title="vitpose_live: pose estimation", delete_cache=self.delete_cache) as demo:
            gr.Markdown(
                "# vitpose_live\nMulti-person pose estimation with "
                "[ViTPose](https://huggingface.co/docs/transformers/model_doc/vitpose): a person detector "
                "(RT-DETR) finds people, ViTPose finds their 17 COCO keypoints. Models load on first use."
            )
            with gr.Accordion("Settings", open=True):
                with gr.Row():
                    model = gr.Dropdown(
                        self.choices, value=self.default_model, label="Pose model", elem_id="model"
                    )
                    det_threshold = gr.Slider(
                        0.05,
                        0.95,
                        value=0.5,
                        step=0.05,
                        label="Person detection threshold",
                        elem_id="det-threshold",
                    )
                    max_persons = gr.Slider(
                        1, 100, value=20, step=1, label="At most this many persons", elem_id="max-persons"
                    )
                    kpt_threshold = gr.Slider(
                        0.0, 0.95, value=0.3, step=0.05, label="Keypoint threshold", elem_id="kpt-threshold"
                    )
                with gr.Row():
                    det_every = gr.Slider(
                        1,
                        10,
                        value=self.default_det_every,
                        step=1,
                        elem_id="det-every",
                        label="Run the detector every N frames (webcam, video)",
                    )
                    smooth = gr.Checkbox(value=True, label="Smooth keypoints (webcam, video)")
                    smooth_strength = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Smoothing strength")
                    show_boxes = gr.Checkbox(value=False, label="Show boxes")
                    show_ids = gr.Checkbox(value=True, label="Show ids")
            controls = [
                model,
                det_threshold,
                max_persons,
                kpt_threshold,
                det_every,
                smooth,
                smooth_strength,
                show_boxes,
                show_ids,
            ]

            with gr.Tabs():
                with gr.Tab("Webcam", id="webcam"):
                    gr.Markdown(
                        "Start the camera; frames go to the server and come back annotated. "
                        f"A stream stops after {self.stream_time_limit // 60} min: start it again to go on."
                    )
                    with gr.Row():
                        camera = gr.Image(
                            sources=["webcam"],
                            streaming=True,
                            type="numpy",
                            label="Camera",
                            webcam_options=gr.WebcamOptions(
                                mirror=False,
                                constraints={
                                    "video": {
                                        "width": {"ideal": 640, "max": 1280},
                                        "height": {"ideal": 480, "max": 720},
                                        "frameRate": {"ideal": 15, "max": 30},
                                    },
                                    "audio": False,
                                },
                            ),
                            elem_id="camera",
                        )
                        camera_out = gr.Image(
                            label="Poses", format="jpeg", interactive=False, elem_id="camera-out"
                        )
                    with gr.Row():
                        mirror = gr.Checkbox(value=True, label="Mirror the display", elem_id="mirror")
                        stats = gr.Textbox(label="Live", interactive=False, elem_id="live-stats")
                    frame_info = gr.JSON(label="Frame", visible=False)
                    frame_button = gr.Button("One frame", visible=False)
                    session = gr.State(
                        None, time_to_live=self.session_ttl, delete_callback=self.sessions.forget
                    )
                    live_inputs = [camera, session, mirror, *controls]
                    camera.stream(
                        self._stream,
                        live_inputs,
                        [camera_out, stats, session],
                        stream_every=self.stream_every,
                        time_limit=self.stream_time_limit,
                        concurrency_limit=self.live_concurrency,
                        concurrency_id="live",
                        show_progress="hidden",
                        api_visibility="undocumented",
                        preprocess=False,  # image_from_payload explains what is wrong with a bad image
                    )
                    frame_button.click(
                        self.live_frame,
                        live_inputs,
                        [camera_out, stats, frame_info, session],
                        api_name="frame",
                        preprocess=False,
                        concurrency_limit=self.live_concurrency,
                        concurrency_id="live",
                        show_progress="hidden",
                    )

                with gr.Tab("Video", id="video"):
                    gr.Markdown(
                        f"Videos up to {limits.video_seconds:.0f} s and {limits.video_bytes // _MB} MB "  # not bold: Gradio's bold font lacks "A" and "B" ("200 M B")
                        "(MP4, MOV, WebM, MKV, AVI…). You get an H.264 MP4 with the original audio, and every "
                        "keypoint as JSON lines (a header, then one line per frame) and as CSV."
                    )
                    with gr.Row():
                        video_in = gr.Video(sources=["upload"], label="Video", elem_id="video-in")
                        video_out = gr.Video(label="Annotated", interactive=False, elem_id="video-out")
                    with gr.Row():
                        jsonl_out = gr.File(label="Keypoints (JSON lines)")
                        csv_out = gr.File(label="Keypoints (CSV)")
                    video_summary = gr.Textbox(label="Result", interactive=False)
                    video_button = gr.Button("Annotate the video", variant="primary", elem_id="video-run")
                    video_button.click(
                        self.annotate_video_on_gpu,
                        [video_in, *controls],
                        [video_out, jsonl_out, csv_out, video_summary],
                        api_name="video",
                        concurrency_limit=1,
                        concurrency_id="video",
                    )

                with gr.Tab("Image", id="image"):
                    gr.Markdown(f"Images up to {limits.image_bytes // _MB} MB (JPEG, PNG, WebP, BMP, TIFF).")
                    with gr.Row():
                        image_in = gr.Image(
                            type="filepath",
                            image_mode=None,
                            sources=["upload", "clipboard"],
                            label="Image",
                            elem_id="image-in",
                        )
                        image_out = gr.Image(
                            label="Poses", format="jpeg", interactive=False, elem_id="image-out"
                        )
                    image_json = gr.JSON(label="Keypoints", elem_id="image-json")
                    image_button = gr.Button("Estimate poses", variant="primary", elem_id="image-run")
                    examples = [[str(ASSETS / name)] for name in EXAMPLE_IMAGES if (ASSETS / name).is_file()]
                    if examples:
                        gr.Examples(examples, inputs=[image_in], label="Examples (public domain / CC0)")
                    image_button.click(
                        self.annotate_image,
                        [image_in, model, det_threshold, max_persons, kpt_threshold, show_boxes, show_ids],
                        [image_out, image_json],
                        api_name="image",
                        preprocess=False,
                        concurrency_limit=2,
                        concurrency_id="image",
                    )
            demo.unload(self._on_unload)
        demo.queue(max_size=64)  # beyond that, callers are told the app is busy instead of piling up
        return demo


def build_demo(
    model: str | None = None,
    detector: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    **options,
) -> gr.Blocks:
    """The web app as a ``gr.Blocks`` (not launched). ``options`` go to :class:`PoseWebApp`."""
    return PoseWebApp(model, detector, device, dtype, **options).build()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="The vitpose_live web app (Gradio). With --source, app.py is the command line instead "
        "(see app.py --source X --help).",
    )
    parser.add_argument("--model", help="ViTPose Hub id or local directory, offered first in the model list")
    parser.add_argument(
        "--detector", default=DEFAULT_DETECTOR, help="person detector Hub id or local directory"
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps"
    )
    parser.add_argument(
        "--dtype", default="auto", help="auto (fp16 on CUDA, fp32 elsewhere), fp32, fp16, bf16"
    )
    parser.add_argument(
        "--server-name", help="address to listen on (default 127.0.0.1, or $GRADIO_SERVER_NAME)"
    )
    parser.add_argument("--server-port", type=int, help="port (default 7860, or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="also make a temporary public gradio.live link")
    return parser


def main(argv: list[str] | None = None) -> None:
    """``python app.py [--model PATH] [--detector PATH] [--device D] [--dtype T] [--server-name H]
    [--server-port P] [--share]``: launch the web app (blocks until stopped)."""
    from ..device import resolve

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        resolve(args.device, args.dtype)
    except ValueError as error:
        parser.error(str(error))
    quiet_hub_logging()
    app = PoseWebApp(args.model, args.detector, args.device, args.dtype)
    try:
        check_models(app.default_model, app.models.detector)
    except ModelLoadError as error:  # the page says so too, when the model is first used
        print(f"app.py: warning: {error}", file=sys.stderr)
    demo = app.build()
    demo.launch(
        server_name=args.server_name,
        server_port=args.server_port,
        share=args.share,
        max_file_size=app.limits.video_bytes,
        quiet=True,  # Gradio's own hint names `share=True`; ours names the flag
        prevent_thread_lock=True,
    )
    print(launch_lines(demo.local_url, demo.share_url), flush=True)
    demo.block_thread()


def launch_lines(local_url: str, share_url: str | None) -> str:
    """What the console says once the app is up."""
    line = f"* Running on local URL:  {local_url}"
    return line if share_url else line + "\n* For a temporary public link, add --share"  # Gradio printed share_url
