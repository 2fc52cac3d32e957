"""Makes ``assets/follow.jpg``, ``assets/framed.jpg`` and ``assets/angles.png`` for the README: one
person followed in the synthetic scene (drawn in full, the others dimmed, the HUD naming them with
their angles now), the same frame in the framed view (the window's ``v``, the page's "Frame the
followed person": 360x640 portrait), and that person's joint angles over the clip, as ``--plot``
draws them.

The keypoints are the synthetic source's own ground truth (``SyntheticSource.ground_truth``), not
a model's: this repository's machines have only tiny random-weight test models, whose skeletons
land at random. Everything else is the run's own code: ``Following`` (the follower, the angles,
the HUD lines, the plot), the framed view (``FollowView``) and the run loop's drawing (on the
picture faded to 20 %).

    python assets/make_follow_assets.py
"""

from pathlib import Path

import cv2
import numpy as np

from vitpose_live.render import HudAnnotator, PoseAnnotator
from vitpose_live.runtime.follow_view import FollowView
from vitpose_live.runtime.following import FollowOptions, Following
from vitpose_live.runtime.run import draw_hud
from vitpose_live.sources import SyntheticSource
from vitpose_live.types import Poses

HERE = Path(__file__).resolve().parent
FRAMES, SHOWN, FOLLOWED = 150, 40, 1


def truth_poses(source: SyntheticSource, index: int) -> Poses:
    keypoints = source.ground_truth(index)
    n = len(keypoints)
    pad = 0.08 * (keypoints[..., 1].max(axis=1) - keypoints[..., 1].min(axis=1))
    boxes = np.concatenate([keypoints.min(axis=1) - pad[:, None], keypoints.max(axis=1) + pad[:, None]], axis=1)
    return Poses(keypoints, np.full((n, 17), 0.9, np.float32), boxes.astype(np.float32), np.full(n, 0.9, np.float32),
                 track_ids=np.arange(n))


def main() -> None:
    source = SyntheticSource(width=640, height=360, persons=3, frames=FRAMES, realtime=False, seed=3)
    following = Following(FollowOptions(FOLLOWED, plot=str(HERE / "angles.png")), live=False, fps=source.fps)
    annotator, hud = PoseAnnotator(show_ids=True), HudAnnotator()
    view = FollowView((360, 640))  # the page's framed view (its camera is causal: it runs from the first frame)
    for frame in source:
        poses = truth_poses(source, frame.index)
        followed = following.frame(frame, poses, frame.time, 0.3)
        faded = (frame.image * 0.2).astype(np.uint8)  # the figures faded, so that the skeletons stand out
        drawn = annotator.annotate(faded, poses, 0.3, followed=followed.drawn)
        framed = draw_hud(hud, view.show(drawn.copy(), followed.box, frame.time, True), following.hud_lines(followed))
        if frame.index == SHOWN:
            save(draw_hud(hud, drawn.copy(), following.hud_lines(followed)), "follow.jpg")
            save(framed, "framed.jpg")
    following.write_plot(HERE / "angles.png", title=f"synthetic walk: person {FOLLOWED} (ground-truth keypoints)")


def save(picture: np.ndarray, name: str) -> None:
    cv2.imwrite(str(HERE / name), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])


if __name__ == "__main__":
    main()
