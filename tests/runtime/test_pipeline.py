"""The threaded pipeline: buffering policies, order, drops, stopping and errors."""

import socket
import threading
import time

import numpy as np
import pytest

from vitpose_live.runtime.pipeline import END, FrameBuffer, Pipeline, PipelineError, Policy
from vitpose_live.types import Frame


def frames(count, *, every=0.0):
    for index in range(count):
        if every:
            time.sleep(every)
        yield Frame(np.zeros((4, 4, 3), np.uint8), index, index / 30, time.monotonic())


def test_fifo_keeps_every_item_in_order_and_waits_for_room():
    stop = threading.Event()
    buffer = FrameBuffer(Policy.FIFO, stop, capacity=2)
    assert buffer.put(1) and buffer.put(2)
    threading.Timer(0.2, buffer.get).start()
    started = time.monotonic()
    assert buffer.put(3)  # blocks until the timer takes one
    assert time.monotonic() - started >= 0.15
    assert [buffer.get(), buffer.get()] == [2, 3] and buffer.dropped == 0


def test_latest_keeps_only_the_newest_item_and_counts_the_rest():
    buffer = FrameBuffer(Policy.LATEST, threading.Event())
    for item in range(5):
        buffer.put(item)
    assert buffer.get() == 4 and buffer.dropped == 4


def test_the_end_marker_is_never_dropped():
    buffer = FrameBuffer(Policy.LATEST, threading.Event())
    buffer.put(1)
    buffer.put(END)
    assert [buffer.get(), buffer.get()] == [1, END]  # the last frame is kept too


def test_a_file_source_never_drops_and_keeps_order_even_with_slow_inference():
    def slow(frame):
        time.sleep(0.005)
        return frame.index

    pipeline = Pipeline(frames(60), slow, policy=Policy.FIFO, capacity=4).start()
    assert list(pipeline.results()) == list(range(60))
    assert pipeline.stats.frames_dropped == 0 and pipeline.stats.frames_processed == 60


def test_a_live_source_faster_than_inference_drops_frames_but_stays_in_order():
    def slow(frame):
        time.sleep(0.03)
        return frame.index

    pipeline = Pipeline(frames(100, every=0.002), slow, policy=Policy.LATEST).start()
    indices = list(pipeline.results())
    stats = pipeline.stats
    assert indices == sorted(indices) and len(indices) < 100
    assert stats.frames_dropped > 0
    assert stats.frames_in == stats.frames_processed + stats.frames_dropped


def test_a_live_source_slower_than_inference_drops_nothing():
    pipeline = Pipeline(frames(20, every=0.01), lambda f: f.index, policy=Policy.LATEST).start()
    assert list(pipeline.results()) == list(range(20)) and pipeline.stats.frames_dropped == 0


class SocketSource:
    """A live source whose read blocks in the kernel (``recv`` on a socket nobody writes to), as a
    network camera's does; closing it from another thread shuts the socket, which ends the read."""

    is_live = True

    def __init__(self):
        self._socket, self._peer = socket.socketpair()

    def __iter__(self):
        yield Frame(np.zeros((4, 4, 3), np.uint8), 0, 0.0, time.monotonic())
        while self._socket.recv(1):  # blocks: the peer never writes; b"" once shut down
            pass

    def close(self):
        self._socket.shutdown(socket.SHUT_RDWR)


def our_threads() -> list[str]:
    """The pipeline's threads still running (those of engines other tests left are not ours)."""
    return [thread.name for thread in threading.enumerate()
            if thread.name.startswith("vitpose-") and thread.name != "vitpose-detector"]


def test_stop_ends_a_read_blocked_in_the_kernel_within_a_second_and_leaves_no_thread():
    source = SocketSource()
    pipeline = Pipeline(source, lambda f: f.index, policy=Policy.LATEST).start()
    assert next(pipeline.results()) == 0
    time.sleep(0.2)  # the capture thread is now in recv()

    started = time.monotonic()
    pipeline.stop()

    assert time.monotonic() - started < 1.0
    assert pipeline.alive() == [] and our_threads() == []


def test_stop_waits_for_a_model_call_in_flight_within_a_second_and_leaves_no_thread():
    in_call = threading.Event()

    def slow_model(frame):  # a forward pass that does not look at any stop event
        in_call.set()
        time.sleep(0.6)
        return frame.index

    pipeline = Pipeline(frames(10), slow_model, policy=Policy.FIFO).start()
    assert in_call.wait(1.0)

    started = time.monotonic()
    pipeline.stop()

    assert 0.3 < time.monotonic() - started < 1.0
    assert pipeline.alive() == [] and our_threads() == []


@pytest.mark.parametrize("stage", ["capture", "inference"])
def test_an_error_in_a_stage_stops_the_pipeline_and_is_raised_with_its_stage(stage):
    def broken_source():
        yield from frames(3)
        raise OSError("camera unplugged")

    def broken_model(frame):
        if frame.index == 2:
            raise RuntimeError("CUDA error: out of memory")
        return frame.index

    source, process = (broken_source, lambda f: f.index) if stage == "capture" else (lambda: frames(10), broken_model)
    pipeline = Pipeline(source, process).start()
    with pytest.raises(PipelineError, match=f"^{stage} failed: "):
        list(pipeline.results())
    pipeline.stop()
    assert pipeline.alive() == []


def test_realtime_pacing_plays_a_file_at_its_frame_rate():
    pipeline = Pipeline(frames(15), lambda f: f.index, policy=Policy.LATEST, realtime_fps=30).start()
    started = time.monotonic()
    list(pipeline.results())
    assert 0.4 <= time.monotonic() - started <= 1.5


def test_stats_summary_has_the_documented_fields():
    pipeline = Pipeline(frames(10), lambda f: f.index).start()
    for _ in pipeline.results():
        pipeline.stats.add_latency(5.0)
    summary = pipeline.stats.summary()
    assert set(summary) == {"frames_in", "frames_processed", "frames_dropped", "results_dropped", "fps", "latency_ms",
                            "stage_ms"}
    assert summary["frames_in"] == summary["frames_processed"] == 10
    assert summary["latency_ms"] == {"p50": 5.0, "p95": 5.0, "max": 5.0} and summary["fps"] > 0


def test_frames_in_batches_come_out_in_order_with_a_short_last_batch():
    seen = []

    def process_batch(batch):
        seen.append(len(batch))
        return [frame.index for frame in batch]

    pipeline = Pipeline(frames(10), None, batch=4, process_batch=process_batch).start()
    assert list(pipeline.results()) == list(range(10))
    assert seen == [4, 4, 2] and pipeline.stats.frames_processed == 10


def test_batches_are_refused_for_live_sources():
    with pytest.raises(ValueError, match="FIFO"):
        Pipeline(frames(3), lambda f: f, policy=Policy.LATEST, batch=4, process_batch=lambda b: b)


@pytest.mark.parametrize("policy", [Policy.FIFO, Policy.LATEST])
def test_frames_still_queued_when_the_consumer_stops_count_as_dropped(policy):
    pipeline = Pipeline(frames(10), lambda f: f.index, policy=policy, capacity=8).start()
    results = pipeline.results()
    next(results)
    deadline = time.monotonic() + 5
    while pipeline.stats.frames_in < 10 and time.monotonic() < deadline:
        time.sleep(0.01)  # the source has handed on every frame; most are still queued
    pipeline.stop()
    stats = pipeline.stats.summary()
    assert stats["frames_in"] == 10 and stats["frames_processed"] == 1
    assert stats["frames_in"] == stats["frames_processed"] + stats["frames_dropped"]


def test_a_frame_arriving_after_stop_is_not_counted_in():
    stop = threading.Event()
    buffer = FrameBuffer(Policy.LATEST, stop)
    stop.set()
    assert not buffer.put(1) and buffer.put_count == 0 and len(buffer) == 0
