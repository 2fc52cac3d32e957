"""The window's keys act on the run: + and - move the engine's keypoint threshold (the one the
loop draws with, and the smoother and keypoint files use), not a copy held by the annotator."""

import numpy as np
from support.models import pose_processor
from support.scripted import THRESHOLD, ScriptedDetector, write_frames

from vitpose_live.apps.viewer import Viewer
from vitpose_live.engine.recipe import EngineOptions, FrameSettings, build_engine
from vitpose_live.models.pose import PoseEstimator
from vitpose_live.render import HudAnnotator, PoseAnnotator
from vitpose_live.outputs.base import Outputs
from vitpose_live.runtime.run import RunOptions, run
from vitpose_live.sources import FolderSource


class KeyWindow:
    """Stands in for the OpenCV window: answers each frame with the next scripted key and keeps
    the pictures it was shown."""

    def __init__(self, keys) -> None:
        self.keys, self.shown = list(keys), []

    def show(self, picture):
        self.shown.append(picture.copy())
        return self.keys.pop(0) if self.keys else None

    def poll(self, ms):
        return None


def test_the_plus_and_minus_keys_move_the_engines_keypoint_threshold_and_the_drawing_follows(pose_model, tmp_path):
    pictures = write_frames(tmp_path / "frames", 4)
    pose = PoseEstimator(pose_model, processor=pose_processor(), device="cpu")
    engine = build_engine(EngineOptions(settings=FrameSettings(det_threshold=THRESHOLD, kpt_threshold=0.9)),
                          models=(pose, ScriptedDetector(pictures)))
    window = KeyWindow(["fewer"] * 2 + [None])  # 0.9 -> 0.85 -> 0.8
    annotator = PoseAnnotator(kpt_threshold=0.0)  # its own threshold is not the one drawn with
    viewer = Viewer(window, annotator, HudAnnotator(enabled=False), tmp_path, engine)

    results = []

    def on_frame(result, picture, stats):
        results.append(result)
        return viewer(result, picture, stats)

    run(FolderSource(tmp_path / "frames"), engine, Outputs([], []), RunOptions(draw=True, progress=False),
        annotator=annotator, hud=viewer.hud, on_frame=on_frame)

    assert engine.settings.kpt_threshold == 0.8
    for result, shown, threshold in zip(results, window.shown, (0.9, 0.85, 0.8, 0.8)):
        original = pictures[result.frame.index].copy()
        assert np.array_equal(shown, annotator.annotate(original, result.poses, threshold))
    viewer._apply("more", None, None)
    assert engine.settings.kpt_threshold == 0.85 and annotator.kpt_threshold == 0.0
