"""Files as analysis data (``--smooth offline``): two passes over one file, memory flat.

Pass 1 is the one run loop (:func:`~vitpose_live.runtime.run.run`), tracked, with a single record
sink that keeps every person's keypoints in a :class:`~vitpose_live.analysis.offline.TrackStore`
(no picture is drawn, no frame kept). Then :func:`~vitpose_live.analysis.offline.analyse` joins
tracklets, fills short gaps and smooths every track with no lag. Pass 2 decodes the file again
(on a capture thread, through the same :class:`~vitpose_live.runtime.pipeline.Pipeline`) and
writes every output from the analysed poses with the loop's own :func:`~vitpose_live.runtime.run.draw`
and :func:`~vitpose_live.runtime.run.write_frame`: one frame in memory at a time, whatever the
file's length; what grows is the store, 228 bytes per person per frame (an hour at 30 fps with
5 persons: 123 MB).

Ctrl-C in pass 1 analyses the frames read so far and writes those; in pass 2 it finalises the
outputs with the frames written (``interrupted`` either way, as in a one-pass run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..analysis.offline import Analysis, AnalysisSettings, TrackStore, analyse
from ..engine.engine import PoseEngine
from ..models.device import background_io
from ..outputs.base import Outputs
from ..render import PoseAnnotator
from .following import FollowOptions, Following
from .pipeline import Pipeline, PipelineError, Policy
from .run import FrameCallback, RunOptions, RunReport, draw, run, write_frame

__all__ = ["OfflineReport", "StoreSink", "run_offline", "second_pass"]


class StoreSink:
    """Pass 1's only output: a record sink that keeps each frame's tracked poses in ``store``."""

    def __init__(self, store: TrackStore) -> None:
        self.store = store

    def write(self, frame_index: int, time: float | None, poses, **extras) -> None:
        """``extras`` (the run loop's angles) are pass 2's to write: pass 1 keeps only the poses."""
        self.store.add(frame_index, poses)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


@dataclass(frozen=True)
class OfflineReport:
    """``first``: pass 1's report (inference); ``frames`` and ``persons``: what pass 2 wrote
    (interpolated persons included); ``stats``: pass 1's stats with ``offline``: the analysis'
    counts (``tracklets_joined``, ``interpolated``, ...) and each pass' seconds."""

    first: RunReport
    frames: int
    persons: int
    seconds: float
    interrupted: bool
    stats: dict


def run_offline(source, reopen: Callable[[], object], engine: PoseEngine, outputs: Outputs, options: RunOptions,
                settings: AnalysisSettings | None = None, *, annotator: PoseAnnotator | None = None,
                on_frame: FrameCallback | None = None, following: Following | None = None) -> OfflineReport:
    """Run the file ``source`` through ``engine`` (tracked), analyse its tracks with ``settings``,
    then read it again from ``reopen()`` and write ``outputs`` from the analysed poses. ``outputs``
    are finalised at the end (or on Ctrl-C) and removed on any other error; ``source`` is closed.
    ``on_frame`` is pass 1's (:func:`~vitpose_live.runtime.run.run`'s: progress, a stop).
    ``following`` (angles, ``--follow``, what ``--plot`` and a follow video need) is asked in pass
    2, so it sees the analysed tracks: joined ids, smoothed keypoints."""
    if engine.tracking is None:
        source.close()
        raise ValueError("offline analysis needs a tracking engine (ids across frames)")
    annotator = annotator or PoseAnnotator()
    kpt_threshold = engine.settings.kpt_threshold
    started = time.monotonic()
    try:
        fps = source.info.fps or 30.0
        store = TrackStore(engine.skeleton.keypoint_names, engine.skeleton.edges)
        first = run(source, engine, Outputs(records=[StoreSink(store)]), options, annotator=annotator,
                    on_frame=on_frame)
        analysed_at = time.monotonic()
        analysis = analyse(store, fps, settings)
        del store
        second_at = time.monotonic()
        frames, persons, stopped = second_pass(reopen, analysis, outputs, annotator, kpt_threshold,
                                               options=options, background=_background(engine),
                                               following=following)  # fmt: skip
    except BaseException:
        outputs.abort()
        raise
    outputs.close()
    ended = time.monotonic()
    stats = dict(first.stats)
    stats["offline"] = {**analysis.summary(), "frames": frames, "pass1_s": round(analysed_at - started, 3),
                        "analyse_s": round(second_at - analysed_at, 3), "pass2_s": round(ended - second_at, 3)}  # fmt: skip
    return OfflineReport(first, frames, persons, ended - started, first.interrupted or stopped, stats)


def _background(engine: PoseEngine) -> bool:
    return background_io(engine.pose.device, live=False)


def second_pass(open_source: Callable[[], object], analysis: Analysis, outputs: Outputs, annotator: PoseAnnotator,
                kpt_threshold: float, *, options: RunOptions = RunOptions(), background: bool = False,
                following: Following | None = None) -> tuple[int, int, bool]:  # fmt: skip
    """Decode the file again and write each of its first ``analysis.frames`` frames to ``outputs``
    from the analysed poses (asking ``following`` per frame, as the run loop does); (frames
    written, persons written, stopped by Ctrl-C)."""
    from tqdm import tqdm

    def look_up(frame):
        return frame, analysis.poses_at(frame.index) if frame.index < analysis.frames else None

    following = following or Following(FollowOptions(), live=False)
    frames = persons = 0
    pipeline = Pipeline(open_source, look_up, policy=Policy.FIFO, background_capture=background)
    bar = tqdm(total=analysis.frames, unit="frame", desc="drawing", dynamic_ncols=True,
               disable=not options.progress or analysis.frames <= 1)  # fmt: skip
    try:
        with pipeline, bar:
            for frame, at in pipeline.results():
                if at is None:  # past the frames pass 1 read (it was interrupted)
                    break
                followed = following.frame(frame, at.poses, frame.time, kpt_threshold)
                picture = None
                if outputs.pictures:
                    image = np.asarray(frame.image)
                    canvas = image if image.flags.writeable else image.copy()
                    picture = draw(annotator, canvas, at.poses, kpt_threshold, interpolated=at.interpolated,
                                   followed=followed.drawn)  # fmt: skip
                write_frame(outputs, frame, at.poses, frame.time, picture, interpolated=at.interpolated,
                            **following.extras(followed))  # fmt: skip
                frames, persons = frames + 1, persons + len(at.poses)
                bar.update(1)
    except KeyboardInterrupt:
        return frames, persons, True
    if frames < analysis.frames:
        raise PipelineError(f"the second decode gave {frames} frame(s), the first {analysis.frames}")
    return frames, persons, False
