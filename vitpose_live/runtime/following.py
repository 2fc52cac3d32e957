"""One run's analysis per frame, in the run loop's thread: every person's joint angles, the person
followed (``--follow``, clicks), their live follow video, and what ``--plot`` and a file's follow
video need once the run has ended.

:class:`Following` is made per run (never shared): the run loop asks it once per frame
(:meth:`Following.frame`, causal: only this frame and the ones before), gives the annotator the
id it answers and the keypoint sinks its extras; a window or page picks and releases through its
``follower``. After the run, :meth:`Following.finish` writes the plot and, for a file, the
zero-lag follow video (:mod:`.follow_video`).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis.angles import ANGLE_NAMES, angle_summary, pose_angles
from ..analysis.follow import Follower
from ..analysis.framing import FramingSettings, VirtualCamera, crop
from ..outputs.video import VideoFileSink
from .follow_video import BoxTrail, write_follow_video
from .follow_view import FollowView

__all__ = ["FollowOptions", "Followed", "Following"]


@dataclass(frozen=True)
class FollowOptions:
    """``mode``: ``--follow`` (``"largest"``, ``"center"``, a track id) or None; ``clicks``: a
    window or page may pick someone (a follower is kept even without a mode); ``video`` and
    ``size``: ``--follow-video`` and ``--follow-size``; ``plot``: ``--plot``."""

    mode: str | int | None = None
    clicks: bool = False
    video: str | None = None
    size: tuple[int, int] = (720, 1280)
    plot: str | None = None

    @property
    def follows(self) -> bool:
        return self.mode is not None or self.clicks


@dataclass(frozen=True)
class Followed:
    """What one frame's analysis says: ``angles`` (N, A) degrees (None: not COCO keypoints),
    ``followed`` the followed track id in this frame (None: not in it, or nobody is followed),
    ``drawn`` the id the annotator gets (the followed one, or the one awaited: the others are
    dimmed; None: draw everybody alike), ``index`` and ``box`` the followed person's row in the
    poses and box (None when not in this frame)."""

    angles: np.ndarray | None
    followed: int | None
    drawn: int | None
    index: int | None
    box: np.ndarray | None = None

    def angles_of_followed(self) -> np.ndarray | None:
        if self.angles is None or self.index is None:
            return None
        return self.angles[self.index]


class Following:
    """See the module's docstring. ``live``: the follow video is framed causally as the run goes
    (else after it, with no lag); ``fps`` of the source, for the follow video."""

    def __init__(self, options: FollowOptions, *, live: bool, fps: float | None = None,
                 background: bool = False) -> None:
        self.options, self.live, self.background = options, live, background
        self.fps = fps or 30.0
        self.follower = Follower(options.mode) if options.follows else None
        # --plot without anybody followed: the person largest when they first appear
        self._plotted = self.follower or (Follower("largest") if options.plot else None)
        self.framing = FramingSettings(size=options.size)
        self.boxes = BoxTrail() if options.video and not live else None
        self._angle_trail = array("f") if options.plot else None
        self._times = array("d")
        self._camera: VirtualCamera | None = None
        self._coco = False  # whether any frame's keypoints were COCO's (only those have angles)
        # what a window shows with its view key on: the followed person framed, at the follow size
        self.view = FollowView(options.size) if options.clicks else None
        self.viewing = False
        self.sink = None
        if options.video and live:
            self.sink = VideoFileSink(options.video, width=options.size[0], height=options.size[1], fps=self.fps,
                                      background=background)

    def frame(self, frame, poses, time: float | None, kpt_threshold: float) -> Followed:
        """This frame's angles and followed person (kept for the plot and the follow video)."""
        seconds = float(time) if time is not None else frame.index / self.fps
        size = (frame.width, frame.height)
        angles = pose_angles(poses, kpt_threshold)
        followed = index = None
        if self._plotted is not None and poses.track_ids is not None:
            if self.follower is not None:
                self.follower.kpt_threshold = kpt_threshold  # clicks count the keypoints drawn
            followed = self._plotted.update_poses(poses, seconds, size)
            index = None if followed is None else int(np.flatnonzero(poses.track_ids == followed)[0])
        box = None if index is None else poses.boxes[index]
        if self.boxes is not None:
            self.boxes.add(box, seconds, size)
        if self._angle_trail is not None:
            self._times.append(seconds)
            row = angles[index] if angles is not None and index is not None else np.full(len(ANGLE_NAMES), np.nan)
            self._angle_trail.extend(np.asarray(row, np.float32))
        self._coco = self._coco or angles is not None
        if self.follower is None:
            return Followed(angles, None, None, None, box)
        drawn = followed if followed is not None else self.follower.person
        return Followed(angles, followed, drawn, index, box)

    def extras(self, followed: Followed | None) -> dict:
        """The keypoint sinks' extras: ``angles`` (COCO keypoints) and ``followed`` (when following)."""
        extras = {}
        if followed is not None and followed.angles is not None:
            extras["angles"] = dict(zip(ANGLE_NAMES, followed.angles.T, strict=True))
        if followed is not None and self.follower is not None:
            extras["followed"] = followed.followed
        return extras

    def hud_lines(self, followed: Followed) -> list[str]:
        """The HUD's lines about the followed person: who, and their angles now."""
        if self.follower is None:
            return []
        if followed.followed is None:
            return ["following nobody (click a person)" if self.follower.person is None
                    else f"following {self.follower.person} (not in view)"]
        row = followed.angles_of_followed()
        return [f"following {followed.followed}", *(angle_summary(row) if row is not None else [])]

    def shown(self, picture: np.ndarray, followed: Followed, time: float | None, index: int) -> np.ndarray:
        """What a window shows of the drawn ``picture``: the framed view (:class:`.follow_view.FollowView`)
        while :attr:`viewing` and somebody is followed; else the picture itself."""
        if self.view is None:
            return picture
        on = self.viewing and self.follower is not None and self.follower.person is not None
        return self.view.show(picture, followed.box, float(time) if time is not None else index / self.fps, on)

    def pick_at(self, x: float, y: float) -> int | None:
        """A click at ``(x, y)`` on what the window showed last: follow the person there."""
        if self.follower is None:
            return None
        if self.view is not None:
            x, y = self.view.to_source(x, y)
        return self.follower.pick_at(x, y)

    def write_view(self, frame, followed: Followed, time: float | None) -> None:
        """Live: this frame's crop into the follow video (the source's picture, not the drawn one)."""
        if self.sink is None:
            return
        if self._camera is None:
            self._camera = VirtualCamera((frame.width, frame.height), self.framing)
        seconds = float(time) if time is not None else frame.index / self.fps
        window = self._camera.update(followed.box, seconds)
        self.sink.write(crop(np.asarray(frame.image), window, self.options.size), time)

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()

    def abort(self) -> None:
        if self.sink is not None:
            self.sink.abort()

    def finish(self, reopen: Callable[[], Iterable], *, audio_from: str | None = None, title: str | None = None) -> None:
        """After the run: the plot (``--plot``) and a file's follow video (``reopen()``: the source
        decoded again, closed afterwards when it has ``close``)."""
        if self.options.plot:
            self.write_plot(self.options.plot, title=title)
        if self.boxes is not None and len(self.boxes):
            source = reopen()
            try:
                write_follow_video(source, self.boxes, self.options.video, self.framing, fps=self.fps,
                                   audio_from=audio_from, background=self.background)
            finally:
                getattr(source, "close", lambda: None)()

    def angle_series(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The plotted person's angles over the run: times (T,) and angle name -> (T,) degrees."""
        trail = np.frombuffer(self._angle_trail or array("f"), np.float32).reshape(-1, len(ANGLE_NAMES))
        times = np.frombuffer(self._times, np.float64)
        if not self._coco:  # no angles at all: plot_angles says so
            return times, {}
        return times, {name: trail[:, i] for i, name in enumerate(ANGLE_NAMES)}

    def write_plot(self, path: str | Path, title: str | None = None) -> Path:
        from ..outputs.plots import plot_angles

        times, series = self.angle_series()
        return plot_angles(times, series, path, title=title)

