"""One input, start to end: the source a request names → the engine its recipe builds → the
outputs it asks for (and the window), through the one run loop (:func:`vitpose_live.runtime.run.run`).
The command line, every input of a collection and each Ray worker run this, with a :class:`Request`.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from ..defaults import file_batch
from ..errors import UserError
from .console import PROG
from .request import Request, camera_size, wants_window


@dataclass(frozen=True)
class Summary:
    frames: int
    seconds: float
    persons: int
    output: str | None
    keypoints: str | None
    interrupted: bool = False
    stats: dict | None = None
    detection: str | None = None  # the detector's interval and the person cap, in words
    analysis: dict | None = None  # --smooth offline: the analysis' counts (tracklets joined, ...)
    others: tuple[str, ...] = ()  # the follow video and the plot

    def line(self) -> str:
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        per_frame = self.persons / self.frames if self.frames else 0.0
        outputs = ", ".join(p for p in (self.output, self.keypoints, *self.others) if p) or "no output file"
        head = "interrupted after" if self.interrupted else "done:"
        line = (
            f"{head} {self.frames} frame(s) in {self.seconds:.1f} s ({rate:.1f} frames/s), "
            f"{per_frame:.1f} person(s) per frame -> {outputs}"
        )
        if self.detection:
            line += f"; {self.detection}"
        if self.stats:
            latency = self.stats["latency_ms"]
            line += (
                f"; latency p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms; "
                f"{self.stats['frames_dropped']} frame(s) dropped"
            )
        if self.analysis:
            line += (f"; offline: {self.analysis['tracklets_joined']} tracklet(s) joined, "
                     f"{self.analysis['interpolated']} person-frame(s) filled in")
        return line


def model_choice(request: Request):
    """The ``auto`` arguments resolved through the device's profile (:mod:`vitpose_live.engine.profiles`);
    explicit ones win. Imports torch when ``--device auto`` (to see whether CUDA is there)."""
    from ..engine.profiles import profile_for, resolve

    return resolve(profile_for(request.device), request.model, request.detector, request.detector_size,
                   request.det_every, request.max_persons)


def engine_options(request: Request, *, live: bool, tracking: bool = False):
    """The shared recipe's options from the command line; tracked with ``tracking`` (a window to
    click in), ``--follow`` or ``--plot``."""
    from ..engine.recipe import EngineOptions, FrameSettings, ModelOptions

    choice = model_choice(request)
    models = ModelOptions(choice.model, choice.detector, request.device, request.dtype, request.expert, request.flip_test,
                          request.cuda_graphs, request.compile, detector_size=choice.detector_size)
    one_euro = live if request.smooth is None else request.smooth is True  # offline smooths after the run instead
    settings = FrameSettings(
        det_threshold=request.det_threshold, max_persons=choice.max_persons, kpt_threshold=request.kpt_threshold,
        smooth=one_euro, smooth_min_cutoff=request.smooth_min_cutoff, smooth_beta=request.smooth_beta,
    )
    return EngineOptions(models, settings, live=live, det_every=choice.det_every or 1,
                         detector_gap_s=choice.detector_gap_s if live else 0.0,
                         tracking=tracking or request.offline or request.follow is not None or request.plot is not None)


def open_input(request: Request, spec):
    """The source ``spec`` names; with ``--io-processes`` a video file is decoded in a process of
    its own (then :func:`open_outputs` draws and encodes in another). A video file is decoded on
    the threads :func:`~vitpose_live.models.device.decode_threads` gives for the models' device."""
    from ..models.device import background_io, decode_threads
    from ..sources import open_source
    from ..sources.spec import SourceKind

    options = {}
    if spec.kind is SourceKind.VIDEO:
        options["threads"] = decode_threads(request.device)
    if request.io_processes and spec.kind is SourceKind.VIDEO and not request.realtime:
        from ..procs.decode_process import DecodeProcessSource

        # room for the frames in flight: two batches queued for the model, one in it, some drawn
        return DecodeProcessSource(spec.text, slots=2 * (request.batch or 8) + 4,
                                   background=background_io(request.device, live=False), **options)
    if spec.kind is SourceKind.STREAM:
        options["connect_timeout"] = request.connect_timeout
        options["on_status"] = lambda text: print(f"{PROG}: {text}", file=sys.stderr, flush=True)
    if spec.kind is SourceKind.CAMERA:
        if request.camera_size:
            options["width"], options["height"] = camera_size(request)
        if request.camera_fps:
            options["fps"] = request.camera_fps
    return open_source(spec, **options)


def open_outputs(request: Request, spec, source, engine, *, live: bool, drawing: tuple, person_fields=()):
    """The outputs asked for. A source decoded in another process (``--io-processes``) gets its
    video drawn, with ``drawing`` (the annotator and the HUD), and encoded in another one too."""
    from ..analysis.angles import angle_names_for
    from ..models.device import background_io
    from ..outputs.keypoints import open_keypoints_sink
    from ..outputs.base import Outputs
    from ..outputs.image import ImageFileSink
    from ..outputs.video import VideoFileSink
    from ..outputs.records import keypoints_header
    from ..procs.decode_process import DecodeProcessSource
    from ..sources.spec import SourceKind

    info = source.info
    outputs = Outputs()
    try:
        if request.output and spec.kind is SourceKind.IMAGE:
            outputs.pictures.append(ImageFileSink(request.output))
        elif request.output:
            audio = request.source if info.has_audio and not live else None
            size = {"width": info.width, "height": info.height, "fps": info.fps or 30.0,
                    "background": background_io(engine.pose.device, live=live)}
            if isinstance(source, DecodeProcessSource):
                from ..procs.render_process import RenderProcessSink, VideoSettings

                annotator, hud = drawing
                video = VideoSettings(request.output, audio_from=audio, **size)
                outputs.scenes.append(RenderProcessSink(source.ring, video, annotator=annotator,
                                                        hud=hud if hud.enabled else None))
            else:
                outputs.pictures.append(VideoFileSink(request.output, audio_from=audio, **size))
        if request.keypoints:
            header = keypoints_header(engine, {"source": request.source, "width": info.width,
                                               "height": info.height, "fps": info.fps},
                                      angle_names_for(engine.skeleton.keypoint_names))
            if person_fields:  # optional per-person fields this file's persons may carry (CSV columns)
                header["person_fields"] = list(person_fields)
            outputs.records.append(open_keypoints_sink(request.keypoints, header=header))
    except BaseException:
        outputs.abort()
        raise
    return outputs


def open_window(request: Request, spec):
    """The OpenCV window when asked for (or by default for cameras and streams), created before
    anything imports PyAV; ``None`` without one."""
    if not wants_window(request, spec):
        return None
    from .window import NoDisplayError, Window

    try:
        return Window()
    except NoDisplayError as error:
        if request.window or not (request.output or request.keypoints or request.stats_json):
            raise UserError(str(error)) from None
        return None


def annotate(request: Request, spec, window=None, engine=None, on_count=None) -> Summary:
    """Source → engine → outputs (and the window), through the one run loop. ``engine``: one built
    before for a file (a collection reuses one per process); its tracking state is reset.
    ``on_count(frames)``: after each frame written (a collection's bar)."""
    from ..engine.control import LatencyController
    from ..engine.profiles import describe
    from ..engine.recipe import build_engine
    from ..render import HudAnnotator, PoseAnnotator
    from ..runtime.run import RunOptions, run
    from ..procs.decode_process import DecodeProcessSource
    from .viewer import Viewer

    if request.offline:
        return annotate_offline(request, spec, engine)
    source = open_input(request, spec)
    live = source.is_live or request.realtime
    try:
        if engine is None or live:
            engine = build_engine(engine_options(request, live=live, tracking=window is not None))
            _warn_about(engine, request)
        else:
            engine.reset()
        annotator = PoseAnnotator(kpt_threshold=request.kpt_threshold, show_boxes=request.show_boxes,
                                  hide_others=request.follow_only)
        hud = HudAnnotator(enabled=request.hud if request.hud is not None else (live or window is not None))
        outputs = open_outputs(request, spec, source, engine, live=live, drawing=(annotator, hud))
        following = _following(request, source, engine, outputs, live=live, clicks=window is not None)
    except BaseException:
        source.close()
        raise
    controller = LatencyController(request.latency_target) if request.latency_target else None
    info = source.info
    options = RunOptions(
        live=live, realtime_fps=info.fps if request.realtime and not source.is_live else None,
        batch=file_batch(engine.pose.placement.is_cuda, request.batch), draw=window is not None, total=info.frame_count,
        progress=not request.no_progress, on_count=on_count,
    )
    viewer = Viewer(window, annotator, hud, request.snapshot_dir, engine, following) if window else None
    report = run(source, engine, outputs, options, annotator=annotator, hud=hud, on_frame=viewer,
                 on_latency=(lambda ms: controller.update(engine, ms)) if controller else None,
                 on_idle=window.pump if window is not None else None, following=following)
    if report.frames:
        _finish_following(request, spec, following, audio=info.has_audio and not live)
    stats = report.stats
    if isinstance(source, DecodeProcessSource):
        stats["stage_ms"].update(source.stage_ms)
        if source.cpu_s is not None:
            stats["cpu_s"]["decode_process"] = source.cpu_s
    if controller is not None:
        stats["latency_control"] = controller.report(engine)
    if request.stats_json:
        write_stats(request, outputs, stats)
    if report.frames == 0 and not report.interrupted and not live:
        raise UserError(f"'{request.source}' has no frames")
    return Summary(report.frames, report.seconds, report.persons, request.output, request.keypoints,
                   report.interrupted, stats if live else None, describe(engine.det_every, engine.settings.max_persons),
                   others=_made(request, report.frames))


def annotate_offline(request: Request, spec, engine=None) -> Summary:
    """``--smooth offline``: the file through the engine (tracked, keypoints kept), analysed, then
    decoded again and every output written from the analysed poses
    (:func:`~vitpose_live.runtime.offline_run.run_offline`). Decoded and drawn in this process
    (``--io-processes`` is for one-pass runs)."""
    from ..analysis.offline import AnalysisSettings
    from ..engine.profiles import describe
    from ..engine.recipe import build_engine
    from ..render import HudAnnotator, PoseAnnotator
    from ..runtime.offline_run import run_offline
    from ..runtime.run import RunOptions

    request = replace(request, io_processes=False)
    source = open_input(request, spec)
    try:
        if engine is None:
            engine = build_engine(engine_options(request, live=False))
            _warn_about(engine, request)
        else:
            engine.reset()
        annotator = PoseAnnotator(kpt_threshold=request.kpt_threshold, show_boxes=request.show_boxes,
                                  hide_others=request.follow_only)
        hud = HudAnnotator(enabled=bool(request.hud))  # off unless --hud, as for a one-pass file
        outputs = open_outputs(request, spec, source, engine, live=False, person_fields=("interpolated",),
                               drawing=(annotator, hud))  # fmt: skip
        following = _following(request, source, engine, outputs, live=False, clicks=False)
    except BaseException:
        source.close()
        raise
    info = source.info
    options = RunOptions(batch=1, total=info.frame_count, progress=not request.no_progress)
    report = run_offline(source, lambda: open_input(request, spec), engine, outputs, options,
                         AnalysisSettings(fill_gaps=request.gaps_filled), annotator=annotator, hud=hud,
                         following=following)  # fmt: skip
    if report.frames:
        _finish_following(request, spec, following, audio=source.info.has_audio)
    if request.stats_json:
        write_stats(request, outputs, report.stats)
    if report.frames == 0 and not report.interrupted:
        raise UserError(f"'{request.source}' has no frames")
    return Summary(report.frames, report.seconds, report.persons, request.output, request.keypoints,
                   report.interrupted, detection=describe(engine.det_every, engine.settings.max_persons),
                   analysis=report.stats["offline"], others=_made(request, report.frames))


def _made(request: Request, frames: int) -> tuple[str, ...]:
    """The follow video and the plot, when the run wrote any frame."""
    return tuple(p for p in (request.follow_video, request.plot) if p and frames)


def _following(request: Request, source, engine, outputs, *, live: bool, clicks: bool):
    """The run's :class:`~vitpose_live.runtime.following.Following` (a live follow video opened
    here); the outputs are removed when it cannot be made."""
    from ..models.device import background_io
    from ..runtime.following import FollowOptions, Following
    from .request import follow_mode, follow_size

    options = FollowOptions(follow_mode(request), clicks=clicks, video=request.follow_video,
                            size=follow_size(request), plot=request.plot)
    try:
        return Following(options, live=live, fps=source.info.fps,
                         background=background_io(engine.pose.device, live=live))
    except BaseException:
        outputs.abort()
        raise


def _finish_following(request: Request, spec, following, *, audio: bool) -> None:
    """After the run: the plot and a file's follow video (the source decoded once more)."""
    from ..outputs.plots import PlotError

    try:
        following.finish(lambda: open_input(request, spec), audio_from=request.source if audio else None,
                         title=Path(request.source).name)
    except PlotError as error:
        raise UserError(str(error)) from None


def _warn_about(engine, request: Request) -> None:
    """One line each for settings that work but are probably not what the user wants."""
    placement = engine.pose.placement
    if placement.device.type == "cpu" and placement.dtype != _float32() and not _native_on_cpu(placement.dtype):
        print(f"{PROG}: note: --dtype {request.dtype} on a CPU runs several times slower than fp32 "
              "(use --dtype fp32)", file=sys.stderr)
    queries = getattr(engine.detector.model.config, "num_queries", None)
    if request.max_persons and queries and request.max_persons > queries:
        print(f"{PROG}: note: the detector finds at most {queries} persons per frame; "
              f"--max-persons {request.max_persons} keeps them all", file=sys.stderr)


def _float32():
    import torch

    return torch.float32


def _native_on_cpu(dtype) -> bool:
    """bfloat16 on a CPU with bfloat16 instructions (oneDNN says): faster than float32 there
    (bench/RESULTS.md); float16, and bfloat16 elsewhere, are emulated and slower."""
    import torch

    return dtype == torch.bfloat16 and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def write_stats(request: Request, outputs, stats: dict) -> None:
    try:
        Path(request.stats_json).write_text(json.dumps(stats, indent=2) + "\n")
    except OSError as error:  # e.g. the disk filled up: leave nothing half-written
        Path(request.stats_json).unlink(missing_ok=True)
        for path in (request.output, request.keypoints):
            if path:
                Path(path).unlink(missing_ok=True)
        raise UserError(f"cannot write '{request.stats_json}': {os.strerror(error.errno or 0).lower()}") from None


