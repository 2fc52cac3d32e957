"""What ``auto`` means on each kind of device: the models, the detector's input size, how often
the detector runs and how many persons are posed. Plain data, cheap to import (torch is imported
only to ask whether CUDA is there), so the command line and the web app read the same choice.

The CPU profile was picked from measurements on a 2-core machine (README "Speed on a CPU",
bench/RESULTS.md "CPU profile, live"): the smallest pose model, and a detector that costs about
half a pose pass at a reduced input size (every person's keypoints still come from a full 256x192
crop), run at most every 5th frame and resting between passes while persons are tracked.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..defaults import AUTO, DEFAULT_DETECTOR, DEFAULT_POSE_MODEL, auto_means_cuda, check_at_least, check_not_negative


@dataclass(frozen=True)
class DeviceProfile:
    """One device kind's choice.

    ``detector_size``: the detector's input side in pixels (None: the checkpoint's own).
    ``det_every``: files (and the web app's jobs) detect on every Nth frame; live sources at most
    once per N frames. ``detector_gap_s``: live sources leave at least this many seconds between
    the end of one detector pass and the start of the next while persons are tracked (the tracker
    follows them by their keypoints meanwhile), so that the detector cannot take the cores from
    the pose model; with nobody tracked the rest does not apply, and a person who enters among
    tracked ones is found within about one gap plus two passes. ``max_persons``: persons posed
    per frame (None: all).
    """

    name: str
    pose_model: str
    detector: str
    detector_size: int | None
    det_every: int
    detector_gap_s: float
    max_persons: int | None
    device_label: str

    def __post_init__(self) -> None:
        check_at_least("det_every", self.det_every, 1)
        check_not_negative("detector_gap_s", self.detector_gap_s)
        check_at_least("detector_size", self.detector_size, 32, "pixels")


# The choice on a GPU: the defaults every figure in README "Speed" was measured with.
GPU_PROFILE = DeviceProfile("cuda", DEFAULT_POSE_MODEL, DEFAULT_DETECTOR, detector_size=None, det_every=1,
                            detector_gap_s=0.0, max_persons=None, device_label="GPU")
# The choice without one (table and reasons: README "Speed on a CPU"). Change it here, only here.
CPU_PROFILE = DeviceProfile("cpu", "usyd-community/vitpose-plus-small", "ustc-community/dfine-nano-coco",
                            detector_size=416, det_every=5, detector_gap_s=1.0, max_persons=6, device_label="CPU")


def on_cuda(device: str) -> bool:
    """Whether ``device`` is CUDA, or ``auto`` and CUDA is there (:func:`~vitpose_live.defaults.auto_means_cuda`)."""
    return auto_means_cuda(device)


def profile_for(device: str) -> DeviceProfile:
    """:data:`GPU_PROFILE` on CUDA, :data:`CPU_PROFILE` elsewhere (CPU, and MPS until measured there)."""
    return GPU_PROFILE if on_cuda(device) else CPU_PROFILE


@dataclass(frozen=True)
class Choice:
    """The ``auto`` values resolved: what loads, and what the profile sets when its detector runs."""

    model: str
    detector: str
    detector_size: int | None
    det_every: int
    detector_gap_s: float
    max_persons: int | None
    profile: DeviceProfile


def resolve(profile: DeviceProfile, model: str = AUTO, detector: str = AUTO, detector_size: str | int | None = AUTO,
            det_every: int | None = None, max_persons: int | None = None) -> Choice:
    """Explicit values win; ``auto`` ones come from ``profile``. The one rule every face follows:
    the interval, the rest between live passes and the person cap are the device's budget (the
    pose pass per person is what they bound), so they apply whichever detector runs; only the
    input size belongs to the profile's own detector (another checkpoint keeps its own size)."""
    own_detector = detector in (None, AUTO)
    if detector_size in (None, AUTO):
        size = profile.detector_size if own_detector else None
    else:
        size = int(detector_size)
    return Choice(
        model=profile.pose_model if model in (None, AUTO) else model,
        detector=profile.detector if own_detector else detector,
        detector_size=size,
        det_every=det_every if det_every is not None else profile.det_every,
        detector_gap_s=profile.detector_gap_s,
        max_persons=max_persons if max_persons is not None else profile.max_persons,
        profile=profile,
    )


def describe(det_every: int, max_persons: int | None) -> str:
    """The detection settings in words, as the summary line and the page say them."""
    every = "every frame" if det_every == 1 else f"every {_ordinal(det_every)} frame"
    persons = "all persons" if max_persons is None else f"at most {max_persons} persons"
    return f"detector on {every}, {persons}"


def _ordinal(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
