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

With no picture to draw (keypoint files only) pass 2 decodes nothing: each frame's index and time
are pass 1's (8 bytes a frame), and its picture a zero-byte stand-in of the frame's size.

Ctrl-C in pass 1 analyses the frames read so far and writes those; in pass 2 it finalises the
outputs with the frames written (``interrupted`` either way, as in a one-pass run).
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..analysis.offline import Analysis, AnalysisSettings, TrackStore, analyse
from ..engine.engine import PoseEngine
from ..models.device import background_io
from ..outputs.base import Outputs
from ..render import HudAnnotator, PoseAnnotator
from ..types import Frame
from .following import FollowOptions, Following
from .pipeline import Pipeline, PipelineError, Policy
from .run import FrameCallback, RunOptions, RunReport, draw, run, write_frame

__all__ = ["OfflineReport", "StoreSink", "hud_lines", "records_pass", "run_offline", "second_pass"]


class StoreSink:
    """Pass 1's only output: a record sink that keeps each frame's tracked poses in ``store`` and
    its time in ``times`` (NaN: none)."""

    def __init__(self, store: TrackStore) -> None:
        self.store, self.times = store, array("d")

    def write(self, frame_index: int, time: float | None, poses, **extras) -> None:
        """``extras`` (the run loop's angles, ...) are pass 2's to write: pass 1 keeps the poses."""
        self.store.add(frame_index, poses)
        self.times.extend([math.nan] * (frame_index - len(self.times)))  # frames without a line (none in a file)
        self.times.append(math.nan if time is None else float(time))

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
                hud: HudAnnotator | None = None, on_frame: FrameCallback | None = None,
                following: Following | None = None) -> OfflineReport:
    """Run the file ``source`` through ``engine`` (tracked), analyse its tracks with ``settings``,
    then read it again from ``reopen()`` and write ``outputs`` from the analysed poses. ``outputs``
    are finalised at the end (or on Ctrl-C) and removed on any other error; ``source`` is closed.
    ``on_frame`` is pass 1's (:func:`~vitpose_live.runtime.run.run`'s: progress, a stop).
    ``following`` (angles, ``--follow``, what ``--plot`` and a follow video need) is asked in pass
    2, so it sees the analysed tracks: joined ids, smoothed keypoints. ``hud`` (when enabled) is
    drawn in pass 2 with what is true of each drawn frame (:func:`hud_lines`)."""
    if engine.tracking is None:
        source.close()
        raise ValueError("offline analysis needs a tracking engine (ids across frames)")
    annotator = annotator or PoseAnnotator()
    kpt_threshold = engine.settings.kpt_threshold
    started = time.monotonic()
    try:
        fps, size = source.info.fps or 30.0, (source.info.width, source.info.height)
        sink = StoreSink(TrackStore(engine.skeleton.keypoint_names, engine.skeleton.edges))
        first = run(source, engine, Outputs(records=[sink]), options, annotator=annotator, on_frame=on_frame)
        analysed_at = time.monotonic()
        analysis = analyse(sink.store, fps, settings)
        sink.store = None
        second_at = time.monotonic()
        if outputs.pictures or outputs.scenes:
            frames, persons, stopped = second_pass(reopen, analysis, outputs, annotator, kpt_threshold,
                                                   options=options, background=_background(engine),
                                                   following=following, hud=hud)  # fmt: skip
        else:
            frames, persons, stopped = records_pass(sink.times, size, analysis, outputs, kpt_threshold,
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
                following: Following | None = None, hud: HudAnnotator | None = None) -> tuple[int, int, bool]:  # fmt: skip
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
                _write_analysed(frame, at, outputs, following, kpt_threshold, annotator, hud)
                frames, persons = frames + 1, persons + len(at.poses)
                bar.update(1)
    except KeyboardInterrupt:
        return frames, persons, True
    if frames < analysis.frames:
        raise PipelineError(f"the second decode gave {frames} frame(s), the first {analysis.frames}")
    return frames, persons, False


def records_pass(times, size: tuple[int, int], analysis: Analysis, outputs: Outputs, kpt_threshold: float, *,
                 following: Following | None = None) -> tuple[int, int, bool]:
    """Pass 2 without pictures: each of the first ``analysis.frames`` frames written to
    ``outputs`` (keypoint records) from the analysed poses, at pass 1's ``times`` (NaN: none),
    with no second decode; ``size``: the frames' (width, height). As :func:`second_pass` returns."""
    following = following or Following(FollowOptions(), live=False)
    blank = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (size[1], size[0], 3))  # no bytes of its own
    frames = persons = 0
    try:
        for index in range(analysis.frames):
            stamp = times[index] if index < len(times) and not math.isnan(times[index]) else None
            at = analysis.poses_at(index)
            _write_analysed(Frame(blank, index, stamp), at, outputs, following, kpt_threshold)
            frames, persons = frames + 1, persons + len(at.poses)
    except KeyboardInterrupt:
        return frames, persons, True
    return frames, persons, False


def _write_analysed(frame, at, outputs: Outputs, following: Following, kpt_threshold: float,
                    annotator: PoseAnnotator | None = None, hud: HudAnnotator | None = None) -> None:
    """One frame of pass 2: following asked, the picture drawn (when there are picture sinks),
    every output written."""
    followed = following.frame(frame, at.poses, frame.time, kpt_threshold)
    picture = None
    if outputs.pictures:
        image = np.asarray(frame.image)
        canvas = image if image.flags.writeable else image.copy()
        lines = hud_lines(at, following.hud_lines(followed)) if hud is not None and hud.enabled else ()
        picture = draw(annotator, canvas, at.poses, kpt_threshold, hud, lines, interpolated=at.interpolated,
                       followed=followed.drawn)  # fmt: skip
    write_frame(outputs, frame, at.poses, frame.time, picture, interpolated=at.interpolated,
                **following.extras(followed))  # fmt: skip


def hud_lines(at, following_lines=()) -> list[str]:
    """The HUD of an offline frame: who is drawn (how many filled in) and the followed person's
    lines; no rate or latency, which would be pass 2's drawing, not the inference's."""
    filled = int(np.count_nonzero(at.interpolated))
    persons = f"persons {len(at.poses)}" + (f" ({filled} filled in)" if filled else "")
    return [persons, *following_lines]
