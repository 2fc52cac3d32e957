"""The follow video of a file (``--follow-video`` on a video file): a post-pass after the run.

Framing a file with no lag needs the followed person's whole path first
(:func:`~vitpose_live.analysis.framing.frame_path` smooths it forwards and backwards), so the run
keeps only the followed box and the time of every frame (:class:`BoxTrail`: 40 bytes a frame,
about 4 MB an hour at 30 fps) and, once it has ended, :func:`write_follow_video` decodes the
source again and writes the crops, one frame at a time (memory does not grow with the picture
count; the crop path of an hour is a few megabytes). Live sources frame causally instead, in the
run itself (:class:`~vitpose_live.runtime.following.Following`).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..analysis.framing import FramingSettings, crop, frame_path
from ..outputs.video import VideoFileSink

__all__ = ["BoxTrail", "write_follow_video"]


class BoxTrail:
    """Per frame, the followed person's box (NaN when nobody is followed there) and the time."""

    def __init__(self) -> None:
        self._boxes = array("f")
        self._times = array("d")
        self.image_size: tuple[int, int] | None = None  # (width, height) of the first frame

    def add(self, box, time: float, image_size: tuple[int, int]) -> None:
        if self.image_size is None:
            self.image_size = (int(image_size[0]), int(image_size[1]))
        self._boxes.extend(np.full(4, np.nan) if box is None else np.asarray(box, np.float32).reshape(4))
        self._times.append(float(time))

    def __len__(self) -> int:
        return len(self._times)

    @property
    def boxes(self) -> np.ndarray:
        return np.frombuffer(self._boxes, np.float32).reshape(-1, 4)

    @property
    def times(self) -> np.ndarray:
        return np.frombuffer(self._times, np.float64)


def write_follow_video(
    frames: Iterable,
    trail: BoxTrail,
    path: str | Path,
    settings: FramingSettings,
    *,
    fps: float,
    audio_from: str | Path | None = None,
    background: bool = False,
) -> int:
    """The crops of ``frames`` (the source decoded again: :class:`~vitpose_live.types.Frame` s in
    the run's order) along the zero-lag path of ``trail``, as an H.264 MP4 of ``settings.size``
    with the audio of ``audio_from``; as many frames as the run had (fewer when the source now
    ends sooner). Returns the frames written. Any error but Ctrl-C removes the file."""
    if not len(trail) or trail.image_size is None:
        raise ValueError("the follow video needs at least one frame of the run")
    boxes = [None if not np.isfinite(box).all() else box for box in trail.boxes]
    path_windows = frame_path(boxes, trail.times, trail.image_size, settings)
    times = trail.times.tolist()
    width, height = settings.size
    written = 0
    with VideoFileSink(path, width=width, height=height, fps=fps, audio_from=audio_from,
                       background=background) as sink:
        for frame, window in zip(frames, path_windows):  # the run's frames, no more
            sink.write(crop(np.asarray(frame.image), window, settings.size), times[written])
            written += 1
    return written
