"""vitpose_live: real-time multi-person pose estimation with ViTPose.

The public surface: build an engine from its recipe, open a source, run the one loop into
outputs, and the errors a face shows as one line. Everything else is implementation, arranged
in layers (README "How it is built"). Names are imported on first use, so ``import vitpose_live``
stays light (no torch).

    import vitpose_live as vl
    engine = vl.build_engine(vl.EngineOptions())
    with vl.open_source("clip.mp4") as source:
        report = vl.run(source, engine, vl.Outputs(), vl.RunOptions())
"""

from .errors import UserError, VitposeError
from .system.lazy import on_first_use
from .skeletons import COCO, Skeleton, skeleton_for
from .types import Detections, Frame, Poses

# public name -> the module that defines it
_ON_FIRST_USE = {
    "build_engine": ".engine.recipe",
    "EngineOptions": ".engine.recipe",
    "FrameSettings": ".engine.settings",
    "ModelOptions": ".engine.recipe",
    "PoseEngine": ".engine.engine",
    "PoseEstimator": ".models.pose",
    "PersonDetector": ".models.detector",
    "ModelLoadError": ".models.loading",
    "open_source": ".sources",
    "SourceError": ".sources",
    "run": ".runtime.run",
    "RunOptions": ".runtime.run",
    "RunReport": ".runtime.run",
    "Outputs": ".outputs.base",
    "Pipeline": ".runtime.pipeline",
    "Policy": ".runtime.pipeline",
    "PipelineError": ".runtime.pipeline",
    "SinkError": ".outputs.paths",
    "PoseAnnotator": ".render",
    "HudAnnotator": ".render",
}

__all__ = ["COCO", "Detections", "Frame", "Poses", "Skeleton", "UserError", "VitposeError", "skeleton_for",
           *_ON_FIRST_USE]


__getattr__ = on_first_use(__name__, _ON_FIRST_USE, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
