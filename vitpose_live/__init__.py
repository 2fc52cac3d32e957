"""vitpose_live: real-time multi-person pose estimation with ViTPose.

The model classes are imported on first use, so ``import vitpose_live`` stays light.
"""

from .errors import VitposeError
from .skeletons import COCO, Skeleton, skeleton_for
from .types import Detections, Frame, Poses

_LAZY = {
    "PoseEstimator": ".models.pose",
    "PersonDetector": ".models.detector",
    "PoseEngine": ".engine.engine",
    "PoseAnnotator": ".render",
    "HudAnnotator": ".render",
    "Pipeline": ".runtime.pipeline",
    "Policy": ".runtime.pipeline",
    "open_source": ".sources",
    "ModelLoadError": ".models.loading",
}

__all__ = ["COCO", "Detections", "Frame", "Poses", "Skeleton", "VitposeError", "skeleton_for", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vitpose_live' has no attribute {name!r}")
