"""The one recipe for an engine: what loads the models (:class:`ModelOptions`), what applies per
frame (:class:`FrameSettings`), the whole of it (:class:`EngineOptions`), and :func:`build_engine`,
used by the command line, the window, the web app and the benchmarks alike."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..defaults import AUTO, DEFAULT_DETECTOR, DEFAULT_POSE_MODEL, check_at_least, check_not_negative
from ..models.detector import PersonDetector
from ..models.pose import PoseEstimator
from .engine import PoseEngine
from .settings import FrameSettings
from .tracking import PersonTracker, TrackingStage

__all__ = ["EngineOptions", "FrameSettings", "ModelOptions", "build_engine", "load_models"]


@dataclass(frozen=True)
class ModelOptions:
    """What loads models: a change means loading again."""

    model: str = DEFAULT_POSE_MODEL
    detector: str = DEFAULT_DETECTOR
    device: str = AUTO
    dtype: str = AUTO
    expert: str | None = None
    flip_test: bool = False
    cuda_graphs: bool = False
    compile: bool = False  # torch.compile the detector (on the thread that calls it; CPU: inductor)
    detector_size: int | None = None  # the detector's input side in pixels (None: its processor's)


@dataclass(frozen=True)
class EngineOptions:
    """The whole recipe. ``live``: detection off the frame path; ``det_every``: detect on every
    Nth frame (files) or at most once per N frames (live); ``tracking``: ids and boxes across
    frames (always on live, with ``det_every`` > 1 or smoothing); ``detector_gap_s`` (live):
    seconds left between detector passes while persons are tracked (:class:`PoseEngine`)."""

    models: ModelOptions = field(default_factory=ModelOptions)
    settings: FrameSettings = field(default_factory=FrameSettings)
    live: bool = False
    det_every: int = 1
    tracking: bool = False
    detector_gap_s: float = 0.0

    def __post_init__(self) -> None:
        check_at_least("det_every", self.det_every, 1)
        check_not_negative("detector_gap_s", self.detector_gap_s)
        if self.live or self.det_every > 1 or self.settings.smooth:
            object.__setattr__(self, "tracking", True)


def load_models(options: ModelOptions) -> tuple[PoseEstimator, PersonDetector]:
    """The pose model, then the detector on the same device and dtype."""
    pose = PoseEstimator(options.model, device=options.device, dtype=options.dtype, expert=options.expert,
                         flip_test=options.flip_test, cuda_graphs=options.cuda_graphs)
    detector = PersonDetector(options.detector, device=pose.placement.device, dtype=pose.placement.dtype,
                              compile=options.compile, cuda_graphs=options.cuda_graphs,
                              input_side=options.detector_size)
    return pose, detector


def build_engine(options: EngineOptions, models: tuple[PoseEstimator, PersonDetector] | None = None) -> PoseEngine:
    """The engine ``options`` describe, over ``models`` when given (loaded ones, shared: the
    engine passes its thresholds to the detector per call and writes nothing onto it)."""
    pose, detector = models if models is not None else load_models(options.models)
    tracking = TrackingStage(PersonTracker()) if options.tracking else None
    return PoseEngine(pose, detector, det_every=options.det_every, tracking=tracking,
                      settings=options.settings, live=options.live, detector_gap_s=options.detector_gap_s)
