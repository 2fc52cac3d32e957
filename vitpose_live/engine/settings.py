"""The settings one engine applies frame by frame (thresholds, person cap, smoothing): the one
owner of them inside the engine, replaced between frames with the models and tracks kept."""

from __future__ import annotations

from dataclasses import dataclass

from ..defaults import DET_THRESHOLD, KPT_THRESHOLD, check_at_least, check_fraction


@dataclass(frozen=True)
class FrameSettings:
    """What applies from the next frame on, with the models and the tracks kept."""

    det_threshold: float = DET_THRESHOLD
    max_persons: int | None = None
    kpt_threshold: float = KPT_THRESHOLD
    smooth: bool = False
    smooth_min_cutoff: float = 1.0
    smooth_beta: float = 0.05

    def __post_init__(self) -> None:
        check_fraction("det threshold", self.det_threshold)
        check_fraction("kpt threshold", self.kpt_threshold)
        check_at_least("max persons", self.max_persons, 1)
