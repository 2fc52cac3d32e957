"""Defaults, named choices and range checks, each decided once: plain constants and functions,
cheap to import (no torch until :func:`auto_means_cuda` is asked), so the command line and the
web page can check their values before any model code loads."""

from __future__ import annotations

DEFAULT_POSE_MODEL = "usyd-community/vitpose-base-simple"
DEFAULT_DETECTOR = "PekingU/rtdetr_r50vd_coco_o365"

# ViTPose++ mixture-of-experts heads, in the order the checkpoints were trained with.
EXPERTS: dict[str, int] = {"coco": 0, "aic": 1, "mpii": 2, "ap10k": 3, "apt36k": 4, "wholebody": 5}

AUTO = "auto"

DET_THRESHOLD = 0.5  # a person is detected above this score
KPT_THRESHOLD = 0.3  # a keypoint is drawn, smoothed and written above this score
# Tracking keeps existing people alive on detections down to this score (ByteTrack's second
# stage); only those above the user's threshold start a track.
WEAK_DETECTION_FLOOR = 0.3
# Offline (--smooth offline): a track unseen for up to this many frames between two sightings
# gets interpolated keypoints (--fill-gaps); a sixth of a second at 30 fps.
FILL_GAPS = 5
# A stream that has not connected within this many seconds (every attempt together) is given up.
CONNECT_TIMEOUT_S = 10.0
FOLLOW_SIZE = "720x1280"  # --follow-size: the follow video's width x height (portrait)


def auto_means_cuda(device: str = AUTO) -> bool:
    """Whether ``device`` is CUDA, or ``auto`` and CUDA is there (``auto`` picks CUDA first)."""
    device = str(device).strip().lower()
    if device in ("", AUTO):
        import torch

        return torch.cuda.is_available()
    return device.startswith("cuda")


def file_batch(on_cuda: bool, asked: int | None = None) -> int:
    """Frames per forward pass for files: what was asked, else 8 on CUDA and 4 elsewhere."""
    return asked or (8 if on_cuda else 4)


def check_fraction(label: str, value: float, *, show: bool = False) -> None:
    """ValueError ``"<label> must be between 0 and 1"`` (``, got <value>`` with ``show``)."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{label} must be between 0 and 1" + (f", got {value}" if show else ""))


def check_at_least(label: str, value: float | None, low: float, unit: str = "") -> None:
    """ValueError ``"<label> must be at least <low>[ <unit>]"``; None passes (not set)."""
    if value is not None and value < low:
        raise ValueError(f"{label} must be at least {low}" + (f" {unit}" if unit else ""))


def check_not_negative(label: str, value: float) -> None:
    """ValueError ``"<label> must not be negative"``."""
    if value < 0:
        raise ValueError(f"{label} must not be negative")
