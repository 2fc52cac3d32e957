"""Following on the page: a click on the image result or on the live video follows the person
under it (the page says who), every record carries its persons' joint angles, and a Video-tab
run ends with the followed (the largest at first sight) person's angles over time as a plot."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...analysis.angles import ANGLE_NAMES, angle_names_for, pose_angles
from ...analysis.follow import Follower
from ...outputs.plots import PlotError
from ...runtime.following import FollowOptions, Following
from ...types import Poses

log = logging.getLogger(__name__)

NOBODY = "Following nobody: click a person in the picture to follow them."


def following_line(person: int | None, *, seen: bool = True) -> str:
    """What the page says about whom it follows."""
    if person is None:
        return NOBODY
    return f"Following person {person}" + ("." if seen else " (not in view).")


def record_angles(poses: Poses, kpt_threshold: float) -> dict | None:
    """A keypoints record's ``angles`` (angle name -> (N,) degrees), None for non-COCO keypoints."""
    angles = pose_angles(poses, kpt_threshold)
    return None if angles is None else dict(zip(ANGLE_NAMES, angles.T, strict=True))


def numbered(poses: Poses) -> Poses:
    """An image's poses with ids 0, 1, ... (in the detector's order) when not tracked, so that a
    click and the keypoints name the same person."""
    if poses.track_ids is not None:
        return poses
    return poses.replace(track_ids=np.arange(len(poses), dtype=np.int64))


@dataclass
class ImagePick:
    """The last image result of a page (a ``gr.State``): what a click on it needs to redraw it."""

    pixels: np.ndarray
    poses: Poses
    settings: object  # web Settings: the annotator and the keypoint threshold

    def pick(self, x: float, y: float) -> tuple[np.ndarray, int | None]:
        """The picture redrawn with the person at (x, y) followed (the others dimmed), and their id."""
        follower = Follower(None, kpt_threshold=self.settings.kpt_threshold)
        follower.update_poses(self.poses, 0.0, (self.pixels.shape[1], self.pixels.shape[0]))
        person = follower.pick_at(x, y)
        return self.settings.annotator().annotate(self.pixels.copy(), self.poses, followed=person), person


def video_following(engine, plot: Path) -> Following:
    """A Video-tab run's :class:`Following`: angles in the records, the plot's series kept."""
    return Following(FollowOptions(plot=str(plot) if angle_names_for(engine.skeleton.keypoint_names) else None),
                     live=False)


def write_plot(following: Following, path: Path, title: str) -> str | None:
    """The angle plot as a file, or None when it cannot be made (no COCO keypoints, no matplotlib)."""
    if not following.options.plot:
        return None
    try:
        return str(following.write_plot(path, title=title))
    except PlotError as error:
        log.warning("no angle plot: %s", error)
        return None
