"""Threads that give way: a file's decode and encode below normal priority next to models on the
CPU, the caller's own priority untouched, and the same output either way."""

from __future__ import annotations

import os
import sys
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from support.media import drawn_frame, make_clip

from vitpose_live.models.device import background_io
from vitpose_live.runtime.pipeline import Pipeline, Policy
from vitpose_live.system.priority import BACKGROUND_NICE, made_in_background
from vitpose_live.outputs.video import VideoFileSink
from vitpose_live.sources import VideoFileSource
from vitpose_live.types import Frame

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a nice value per thread is Linux's")


def nice_in(stat_path: str) -> int:
    """The nice value in a /proc stat file (field 19 of proc(5), after the command's parentheses)."""
    with open(stat_path) as file:
        stat = file.read()
    return int(stat[stat.rindex(")") + 2 :].split()[16])


def thread_nices() -> dict[int, int]:
    """Every thread of this process and its nice value."""
    nices = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            nices[int(tid)] = nice_in(f"/proc/self/task/{tid}/stat")
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return nices


def own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def test_files_next_to_models_on_the_cpu_give_way_and_live_sources_do_not():
    assert background_io("cpu", live=False) is True
    assert background_io("cpu", live=True) is False


def test_what_is_made_in_the_background_starts_its_threads_there_and_the_caller_keeps_its_priority():
    before = own_nice()
    started = threading.Event()
    finish = threading.Event()

    def make():
        worker = threading.Thread(target=lambda: (started.set(), finish.wait(5)))
        worker.start()
        return worker, own_nice(), threading.get_native_id()

    worker, maker_nice, maker_id = made_in_background(make)
    started.wait(5)
    worker_nice = thread_nices()[worker.native_id]
    finish.set()
    worker.join()

    assert maker_id != threading.get_native_id()
    assert maker_nice == worker_nice == BACKGROUND_NICE
    assert own_nice() == before


def test_an_error_while_making_in_the_background_reaches_the_caller():
    def make():
        raise ValueError("no such encoder")

    with pytest.raises(ValueError, match="no such encoder"):
        made_in_background(make)


def test_a_background_sink_runs_x264_below_normal_priority_and_writes_the_same_video(tmp_path):
    pictures = [drawn_frame(index, 96, 64) for index in range(12)]
    paths = {}
    for background in (False, True):
        before = set(thread_nices())
        paths[background] = tmp_path / f"background_{background}.mp4"
        with VideoFileSink(paths[background], width=96, height=64, fps=24, background=background) as sink:
            encoder_nices = {nice for tid, nice in thread_nices().items() if tid not in before}
            for index, picture in enumerate(pictures):
                sink.write(picture, index / 24)
        assert encoder_nices, "x264 started no threads"
        assert encoder_nices == {BACKGROUND_NICE if background else own_nice()}

    decoded = [[f.image for f in VideoFileSource(paths[background])] for background in (False, True)]
    assert len(decoded[0]) == len(decoded[1]) == 12
    assert all(np.array_equal(a, b) for a, b in zip(*decoded, strict=True))


@pytest.mark.parametrize("background", [True, False])
def test_the_capture_thread_gives_way_only_when_told(background):
    seen = []

    def source():
        for index in range(3):
            seen.append(own_nice())
            yield Frame(np.zeros((4, 4, 3), np.uint8), index, index / 30, 0.0)

    before = own_nice()
    pipeline = Pipeline(source(), lambda frame: frame.index, policy=Policy.FIFO, background_capture=background).start()

    assert list(pipeline.results()) == [0, 1, 2]
    assert seen == [BACKGROUND_NICE if background else before] * 3
    assert own_nice() == before


def test_the_command_line_encodes_a_file_next_to_models_on_the_cpu_in_the_background(tmp_path):
    from vitpose_live.apps import job
    from vitpose_live.apps.cli import parse_request
    from vitpose_live.sources import classify

    clip = make_clip(tmp_path / "in.mp4", width=320, height=240, frames=3, audio=False)
    request = parse_request(["--source", str(clip), "--output", str(tmp_path / "out.mp4"), "--device", "cpu"])
    spec = classify(str(clip))
    models_on_the_cpu = SimpleNamespace(pose=SimpleNamespace(device=torch.device("cpu")))

    with job.open_input(request, spec) as source:
        before = set(thread_nices())
        outputs = job.open_outputs(request, spec, source, models_on_the_cpu, live=False, drawing=None)
        encoder_nices = {nice for tid, nice in thread_nices().items() if tid not in before}
        outputs.abort()

    assert encoder_nices == {BACKGROUND_NICE}


@pytest.mark.parametrize("background", [True, False])
def test_the_decode_process_gives_way_with_all_its_threads_only_when_told(tmp_path, background):
    from vitpose_live.procs.decode_process import DecodeProcessSource

    clip = make_clip(tmp_path / "in.mp4", width=160, height=120, frames=8, audio=False)
    source = DecodeProcessSource(clip, slots=4, background=background)
    frames = iter(source)
    next(frames)  # the child has started decoding, so it has set its priority
    tasks = f"/proc/{source._child.pid}/task"
    nices = {nice_in(f"{tasks}/{tid}/stat") for tid in os.listdir(tasks)}
    rest = list(frames)
    source.close()

    assert nices == {BACKGROUND_NICE if background else own_nice()}
    assert len(rest) == 7


@pytest.mark.parametrize("background", [True, False])
def test_the_render_process_and_its_encoder_threads_give_way_only_when_told(tmp_path, background):
    from vitpose_live.render import PoseAnnotator
    from vitpose_live.procs.render_process import RenderProcessSink, VideoSettings
    from vitpose_live.procs.decode_process import DecodeProcessSource

    clip = make_clip(tmp_path / "in.mp4", width=320, height=240, frames=4, audio=False)
    source = DecodeProcessSource(clip, slots=4)
    video = VideoSettings(str(tmp_path / "out.mp4"), width=320, height=240, fps=30, background=background)
    sink = RenderProcessSink(source.ring, video, annotator=PoseAnnotator())  # returns once the child has opened x264
    tasks = f"/proc/{sink._child.pid}/task"
    nices = [nice_in(f"{tasks}/{tid}/stat") for tid in os.listdir(tasks)]
    sink.abort()
    source.close()

    assert len(nices) > 1  # the child and x264's threads
    assert set(nices) == {BACKGROUND_NICE if background else own_nice()}
