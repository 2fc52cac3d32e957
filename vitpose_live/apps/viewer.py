"""The window face of the run loop: shows each annotated frame and applies the keys (quit, pause,
snapshot, boxes, ids, HUD, keypoint threshold, the framed view) and clicks (follow the person
clicked; Esc or f releases them)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..render import HudAnnotator, PoseAnnotator
from .window import Pick


class Viewer:
    """``on_frame`` for :func:`vitpose_live.runtime.run.run`: returns True when the user quits.
    Snapshots (``s``) go to ``snapshot_dir`` as a PNG and its keypoints JSON. The keypoint
    threshold keys (``+``/``-``) change the engine's: the run loop draws with it, and the smoother and
    the keypoint files use the same one. With ``following`` (the run's
    :class:`~vitpose_live.runtime.following.Following`), a left click follows the person under it
    (on the framed view too), Esc or ``f`` releases them (Esc quits when nobody is followed) and
    ``v`` shows the followed person framed in place of the full frame, or the full frame again."""

    def __init__(self, window, annotator: PoseAnnotator, hud: HudAnnotator, snapshot_dir: str | Path = ".",
                 engine=None, following=None) -> None:
        self.window, self.annotator, self.hud, self.engine = window, annotator, hud, engine
        self.following = following
        self.follower = following.follower if following is not None else None
        self.snapshot_dir = Path(snapshot_dir)
        self.paused = False

    def __call__(self, result, picture: np.ndarray | None, stats) -> bool:
        action = self.window.show(picture)
        while True:
            if action == "escape":
                following = self.follower is not None and self.follower.person is not None
                action = "release" if following else "quit"
            if action in ("quit", "closed"):
                return True
            self._apply(action, result, picture)
            if not self.paused:
                return False
            action = self.window.poll(50)  # paused: wait for keys; live frames are dropped meanwhile

    def _apply(self, action, result, picture) -> None:
        if isinstance(action, Pick):
            if self.following is not None:
                self.following.pick_at(action.x, action.y)
        elif action == "release":
            if self.follower is not None:
                self.follower.release()
        elif action == "view":
            if self.following is not None:
                self.following.viewing = not self.following.viewing
        elif action == "boxes":
            self.annotator.show_boxes = not self.annotator.show_boxes
        elif action == "ids":
            self.annotator.show_ids = not self.annotator.show_ids
        elif action == "hud":
            self.hud.enabled = not self.hud.enabled
        elif action in ("more", "fewer"):
            step = 0.05 if action == "more" else -0.05
            threshold = round(min(0.95, max(0.0, self.engine.settings.kpt_threshold + step)), 2)
            self.engine.update(kpt_threshold=threshold)
        elif action == "snapshot":
            self.snapshot(picture, result)
        elif action == "pause":
            self.paused = not self.paused

    def snapshot(self, picture: np.ndarray, result) -> Path:
        import cv2

        from ..outputs.records import frame_record

        frame = result.frame
        stem = self.snapshot_dir / f"snapshot-{time.strftime('%Y%m%d-%H%M%S')}-{frame.index}"
        cv2.imwrite(f"{stem}.png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        Path(f"{stem}.json").write_text(json.dumps(frame_record(frame.index, frame.time, result.poses)) + "\n")
        print(f"saved {stem}.png and {stem}.json", file=sys.stderr)
        return stem
