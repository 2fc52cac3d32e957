"""The controls' values as one checked record, and the app's defaults per device.

:class:`Settings` is built once per call from the controls (``Settings.from_controls``) and is all
a job needs: the engine's frame settings, the detection interval, the annotator, the mirror.
:func:`defaults_for` gives the models, the detector's input size and pace and the detection
interval a page starts with: the device's profile (:mod:`vitpose_live.engine.profiles`), the one the
command line's ``auto`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...analysis.offline import AnalysisSettings
from ...analysis.smoothing import SmoothSettings
from ...defaults import DEFAULT_POSE_MODEL, DET_THRESHOLD, KPT_THRESHOLD, check_fraction
from ...engine.recipe import EngineOptions, FrameSettings
from ...engine.profiles import AUTO, Choice, profile_for, resolve
from ...render import PoseAnnotator

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


# The max persons slider's start where the profile caps nothing (a GPU).
PAGE_MAX_PERSONS = 20
# The webcam's framed view of the followed person (the "Frame the followed person" toggle): a
# portrait 9:16, as the command line's --follow-size, at a size a 640x480 camera fills.
PAGE_VIEW_SIZE = (360, 640)


def defaults_for(device: str, model: str | None = None, detector: str | None = None) -> Choice:
    """What a page starts with: the device's profile (:mod:`vitpose_live.engine.profiles`, the same
    choice as the command line's ``auto``), with ``--model`` / ``--detector`` winning, by the same
    rule (:func:`~vitpose_live.engine.profiles.resolve`). Where the profile caps nothing (a GPU),
    the person slider starts at :data:`PAGE_MAX_PERSONS`."""
    choice = resolve(profile_for(device), model or AUTO, detector or AUTO)
    return replace(choice, max_persons=choice.max_persons or PAGE_MAX_PERSONS)


@dataclass(frozen=True)
class Settings:
    """The controls' values, checked (API callers can send anything). Every field but ``model``
    applies from the next frame of a running stream, tracks kept; ``model`` reloads."""

    model: str
    det_threshold: float = DET_THRESHOLD
    max_persons: int = 20
    kpt_threshold: float = KPT_THRESHOLD
    det_every: int = 1
    smooth: bool = False
    smooth_strength: float = 0.5
    show_boxes: bool = False
    show_ids: bool = True
    mirror: bool = False
    framed: bool = False  # the webcam shows the followed person framed, not the full frame

    def __post_init__(self) -> None:
        for name in ("det_threshold", "kpt_threshold", "smooth_strength"):
            value = float(getattr(self, name))
            check_fraction(name.replace("_", " "), value, show=True)
            object.__setattr__(self, name, value)
        for name, low, high in (("det_every", 1, 30), ("max_persons", 1, 100)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value == int(value) and low <= value <= high):
                label = "detection interval" if name == "det_every" else "max persons"
                raise ValueError(f"{label} must be a whole number from {low} to {high}, got {value}")
            object.__setattr__(self, name, int(value))
        for name in ("smooth", "show_boxes", "show_ids", "mirror", "framed"):
            object.__setattr__(self, name, bool(getattr(self, name)))

    @classmethod
    def from_controls(cls, allowed: set[str], **controls) -> Settings:
        """From the controls' values by name (unknown names are a ``TypeError``); ``model`` must
        be one of ``allowed`` (no arbitrary paths from API callers)."""
        model = controls.get("model")
        if model not in allowed:
            raise ValueError(f"unknown model {model!r}: pick one from the list")
        return cls(**{name: value for name, value in controls.items() if value is not None})

    @property
    def min_cutoff(self) -> float:
        """The One Euro minimum cutoff for the strength slider: 0 → 10 Hz (hardly smoothed),
        0.5 → 1 Hz (the command line's default), 1 → 0.1 Hz (heavily smoothed)."""
        return 10.0 ** (1.0 - 2.0 * self.smooth_strength)

    def frame_settings(self) -> FrameSettings:
        """What the engine applies from the next frame on (no reload, tracks kept)."""
        return FrameSettings(det_threshold=self.det_threshold, max_persons=self.max_persons,
                             kpt_threshold=self.kpt_threshold, smooth=self.smooth, smooth_min_cutoff=self.min_cutoff)

    def engine_options(self, *, live: bool, detector_gap_s: float = 0.0) -> EngineOptions:
        """``detector_gap_s``: the detector's pace while persons are tracked (live only). A video
        (not live) with smoothing is tracked and smoothed afterwards (:meth:`offline_settings`),
        not by One Euro."""
        frame = self.frame_settings() if live else replace(self.frame_settings(), smooth=False)
        return EngineOptions(settings=frame, live=live, det_every=self.det_every, tracking=self.smooth,
                             detector_gap_s=detector_gap_s if live else 0.0)

    def offline_settings(self) -> AnalysisSettings | None:
        """The Video tab's smoothing: the offline analysis (zero lag, gaps filled, ids joined), its
        widest window from the strength slider (0 → 0.5 s, 0.5 → 1 s as on the command line,
        1 → 2 s); None without smoothing."""
        if not self.smooth:
            return None
        return AnalysisSettings(smooth=SmoothSettings(window_s=2.0 ** (2.0 * self.smooth_strength - 1.0)))

    def annotator(self) -> PoseAnnotator:
        return PoseAnnotator(kpt_threshold=self.kpt_threshold, show_boxes=self.show_boxes, show_ids=self.show_ids)

