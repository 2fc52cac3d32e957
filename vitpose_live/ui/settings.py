"""The controls' values as one checked record, and the app's defaults per device.

:class:`Settings` is built once per call from the controls (``Settings.from_controls``) and is all
a job needs: the engine's frame settings, the detection interval, the annotator, the mirror.
:func:`defaults_for` is the one place that picks the models and the detection interval a page
starts with: the fastest usable ones when no GPU is there (a CPU-only Space).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..defaults import DEFAULT_DETECTOR, DEFAULT_POSE_MODEL
from ..engine import EngineOptions, FrameSettings
from ..render import PoseAnnotator

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


@dataclass(frozen=True)
class DeviceDefaults:
    """What a page starts with on a device: the pose model, the detector, how often the webcam
    and video jobs run the detector, and how many persons are posed per frame (each one is a
    pose model crop: on a CPU the pose pass grows with them)."""

    pose_model: str
    detector: str
    det_every: int
    max_persons: int
    device_label: str


# The models a page runs without a GPU: change them here (and only here).
CPU_DEFAULTS = DeviceDefaults("usyd-community/vitpose-plus-small", DEFAULT_DETECTOR, det_every=5, max_persons=6,
                              device_label="CPU")
GPU_DEFAULTS = DeviceDefaults(DEFAULT_POSE_MODEL, DEFAULT_DETECTOR, det_every=1, max_persons=20, device_label="GPU")


def defaults_for(device: str) -> DeviceDefaults:
    """:data:`GPU_DEFAULTS` when ``device`` is (or ``auto`` finds) CUDA, else :data:`CPU_DEFAULTS`."""
    import torch

    device = str(device)
    on_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return GPU_DEFAULTS if on_cuda else CPU_DEFAULTS


@dataclass(frozen=True)
class Settings:
    """The controls' values, checked (API callers can send anything). Every field but ``model``
    applies from the next frame of a running stream, tracks kept; ``model`` reloads."""

    model: str
    det_threshold: float = 0.5
    max_persons: int = 20
    kpt_threshold: float = 0.3
    det_every: int = 1
    smooth: bool = False
    smooth_strength: float = 0.5
    show_boxes: bool = False
    show_ids: bool = True
    mirror: bool = False

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
        for name in ("smooth", "show_boxes", "show_ids", "mirror"):
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

    def engine_options(self, *, live: bool) -> EngineOptions:
        return EngineOptions(settings=self.frame_settings(), live=live, det_every=self.det_every)

    def annotator(self) -> PoseAnnotator:
        return PoseAnnotator(kpt_threshold=self.kpt_threshold, show_boxes=self.show_boxes, show_ids=self.show_ids)


CONTROL_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Settings))
