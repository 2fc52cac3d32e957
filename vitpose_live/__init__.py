"""vitpose_live: real-time multi-person pose estimation with ViTPose."""

from .skeletons import COCO, Skeleton, skeleton_for
from .types import Detections, Frame, Poses

__all__ = ["COCO", "Detections", "Frame", "Poses", "Skeleton", "skeleton_for"]
