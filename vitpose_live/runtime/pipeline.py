"""Threads: capture → inference → the caller (render, sinks), with a named buffering policy.

- ``Policy.LATEST`` (live sources): the buffer holds only the newest frame; older ones are
  dropped and counted, so latency stays at one inference.
- ``Policy.FIFO`` (files): a bounded queue with back-pressure; nothing is dropped, order is kept.

Stopping is one shared event; every wait between the stages polls it. ``stop()`` also closes a
live source, which ends a read blocked on the camera or the network, and waits for the model call
in flight, so that within its second no thread of the pipeline is left. (A read stuck in native
code that closing cannot end would stay: ``alive()`` names it.) An exception in any stage stops
the pipeline and is raised again from ``results()`` / ``join()``.
"""

from __future__ import annotations

import collections
import enum
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ..errors import VitposeError, one_line
from ..system.priority import lower_this_thread
from ..types import Frame

_POLL = 0.05  # seconds between checks of the stop event in blocking calls
_IDLE_POLL = 0.01  # seconds between calls of a waiting consumer's idle function


class Policy(enum.Enum):
    LATEST = "latest"
    FIFO = "fifo"


class PipelineError(VitposeError, RuntimeError):
    """A stage failed; the message names the stage and the cause."""


class _End:
    """End of stream marker."""


END = _End()


class FrameBuffer:
    """A hand-over point between two threads, with the buffering policy made explicit."""

    def __init__(self, policy: Policy, stop: threading.Event, capacity: int = 8):
        self.policy = policy
        self.capacity = 1 if policy is Policy.LATEST else max(1, capacity)
        self._stop = stop
        self._items: collections.deque = collections.deque()
        self._lock = threading.Condition()
        self.dropped = 0
        self.put_count = 0

    def put(self, item) -> bool:
        """Hand ``item`` on; False when stopped first. LATEST replaces what is waiting
        (counted as dropped); FIFO waits for room. The end marker is never dropped."""
        with self._lock:
            if item is not END and self._stop.is_set():
                return False
            if self.policy is Policy.LATEST:
                while item is not END and self._items and self._items[-1] is not END:
                    self._items.pop()
                    self.dropped += 1
            else:
                while len(self._items) >= self.capacity:
                    if self._stop.is_set():
                        return False
                    self._lock.wait(_POLL)
            self._items.append(item)
            if item is not END:
                self.put_count += 1
            self._lock.notify_all()
            return True

    def get(self, idle: Callable[[], None] | None = None):
        """The next item, ``END`` at the end of stream or when stopped. While waiting, ``idle``
        (if any) is called every few milliseconds, outside the lock."""
        while True:
            with self._lock:
                if self._items:
                    item = self._items.popleft()
                    self._lock.notify_all()
                    return item
                if self._stop.is_set():
                    return END
                self._lock.wait(_IDLE_POLL if idle else _POLL)
            if idle is not None and not self._items:
                idle()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclass
class PipelineStats:
    """Counters and timings, updated by the stages, read by anyone."""

    frames_in: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    results_dropped: int = 0  # of frames_dropped: inferred, then replaced by a newer result unshown
    started_at: float = field(default_factory=time.monotonic)
    stage_ms: dict[str, collections.deque] = field(default_factory=dict)
    latency_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=2000))
    done_at: collections.deque = field(default_factory=lambda: collections.deque(maxlen=120))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_stage(self, name: str, ms: float) -> None:
        with self._lock:
            self.stage_ms.setdefault(name, collections.deque(maxlen=2000)).append(ms)

    def add_latency(self, ms: float) -> None:
        with self._lock:
            self.latency_ms.append(ms)

    def fps(self) -> float:
        elapsed = time.monotonic() - self.started_at
        return self.frames_processed / elapsed if elapsed > 0 else 0.0

    def recent_fps(self, window: int = 30) -> float:
        """Processed frames per second over the last ``window`` latencies' frames."""
        with self._lock:
            stamps = list(self.done_at)[-window:]
        if len(stamps) < 2:
            return self.fps()
        return (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9)

    def mark_done(self) -> None:
        with self._lock:
            self.done_at.append(time.monotonic())

    def summary(self) -> dict:
        import numpy as np

        with self._lock:
            latency = np.array(self.latency_ms, dtype=float)
            stages = {name: float(np.mean(values)) for name, values in self.stage_ms.items() if values}

        def pct(q):
            return round(float(np.percentile(latency, q)), 2) if latency.size else 0.0

        return {
            "frames_in": self.frames_in,
            "frames_processed": self.frames_processed,
            "frames_dropped": self.frames_dropped,
            "results_dropped": self.results_dropped,
            "fps": round(self.fps(), 2),
            "latency_ms": {"p50": pct(50), "p95": pct(95), "max": round(float(latency.max()), 2) if latency.size else 0.0},
            "stage_ms": {name: round(ms, 2) for name, ms in stages.items()},
        }


class Pipeline:
    """Run ``process`` over ``source`` frames in threads; consume results with ``results()``.

    ``source`` is an iterable of ``Frame`` (or a callable returning one, so tests can inject
    producers). ``process(frame) -> result`` runs on the inference thread; results come out in
    order on the caller's thread (where the window and sinks live). With ``batch`` > 1 (FIFO
    only, for files) ``process_batch(frames) -> results`` gets up to ``batch`` frames at a time.
    With ``background_capture`` the capture thread runs below normal priority (:mod:`.priority`).
    """

    def __init__(
        self,
        source: Iterable[Frame] | Callable[[], Iterable[Frame]],
        process: Callable[[Frame], object],
        *,
        policy: Policy = Policy.FIFO,
        capacity: int = 8,
        realtime_fps: float | None = None,
        batch: int = 1,
        process_batch: Callable[[list[Frame]], list] | None = None,
        background_capture: bool = False,
    ):
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if batch > 1 and (policy is not Policy.FIFO or process_batch is None):
            raise ValueError("batches need the FIFO policy and a process_batch function")
        self._source = source
        self._background_capture = background_capture
        self._process = process
        self._process_batch = process_batch
        self.batch = batch
        self.policy = policy
        self.realtime_fps = realtime_fps
        self._stop = threading.Event()
        capacity = max(capacity, 2 * batch)
        self._frames = FrameBuffer(policy, self._stop, capacity)
        # Live results are newest-only too: when drawing or display is slower than inference,
        # an older result is dropped (and counted) rather than queued behind.
        self._results = FrameBuffer(policy, self._stop, capacity)
        self._error: BaseException | None = None
        self._error_stage = ""
        self.stats = PipelineStats()
        self._threads: list[threading.Thread] = []
        self._opened = None  # the source being read, once the capture thread has it

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Pipeline:
        self.stats = PipelineStats()
        for name, target in (("capture", self._capture), ("inference", self._infer)):
            thread = threading.Thread(target=self._guard, args=(name, target), name=f"vitpose-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Signal every stage to stop, close a live source (ending a blocked read) and wait up to
        ``timeout`` seconds in all for the threads to end."""
        self._stop.set()
        source = self._opened
        if source is not None and getattr(source, "is_live", False) and self._threads[0].is_alive():
            # Live sources close from any thread, but may wait for a read in flight: not on ours.
            closer = threading.Thread(target=source.close, name="vitpose-close", daemon=True)
            closer.start()
            self._threads.append(closer)
            self._opened = None
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._account_for_unfinished_frames()

    def _account_for_unfinished_frames(self) -> None:
        """Frames still queued or in a model call when the run stopped count as dropped, so that
        in = processed + dropped holds however the run ended."""
        self.stats.frames_in = self._frames.put_count
        self.stats.frames_dropped = self.stats.frames_in - self.stats.frames_processed
        self.stats.results_dropped = self._results.dropped

    def alive(self) -> list[str]:
        return [thread.name for thread in self._threads if thread.is_alive()]

    def join(self, timeout: float = 0.5) -> None:
        self.stop(timeout)
        self.raise_error()

    def raise_error(self) -> None:
        if self._error is not None:
            error = self._error
            if isinstance(error, (KeyboardInterrupt, MemoryError)):
                raise error
            cause = one_line(error, with_type=not isinstance(error, VitposeError))
            raise PipelineError(f"{self._error_stage} failed: {cause}") from error

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- stages ---------------------------------------------------------------------------
    def _guard(self, name: str, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            if self._error is None:
                self._error, self._error_stage = error, name
            self._stop.set()

    def _capture(self) -> None:
        if self._background_capture:
            lower_this_thread()
        source = self._opened = self._source() if callable(self._source) else self._source
        interval = 1.0 / self.realtime_fps if self.realtime_fps else 0.0
        next_at = time.monotonic()
        try:
            for frame in source:
                if self._stop.is_set():
                    return
                if interval:  # pace a file like a camera
                    delay = next_at - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                    next_at = max(next_at + interval, time.monotonic() - interval)
                    frame = Frame(frame.image, frame.index, frame.time, time.monotonic())
                if not self._frames.put(frame):  # stopped: the frame never went in
                    return
                self.stats.frames_in += 1
                self._count_drops()
        finally:
            close = getattr(source, "close", None)
            if close is not None and source is not self._source:
                close()
            self._frames.put(END)

    def _infer(self) -> None:
        while True:
            frames = []
            while len(frames) < self.batch and (frame := self._frames.get()) is not END:
                frames.append(frame)
            if self._stop.is_set():  # stopped: frames still queued are not worth a model call
                return
            if frames:
                start = time.perf_counter()
                results = self._process_batch(frames) if self.batch > 1 else [self._process(frames[0])]
                share = (time.perf_counter() - start) * 1e3 / len(frames)
                self._count_drops()
                for result in results:
                    self.stats.add_stage("inference", share)
                    if not self._results.put(result):
                        return
            if len(frames) < self.batch:  # the source ended (or the pipeline stopped)
                self._results.put(END)
                return

    def _count_drops(self) -> None:
        self.stats.frames_dropped = self._frames.dropped + self._results.dropped
        self.stats.results_dropped = self._results.dropped

    def results(self, idle: Callable[[], None] | None = None) -> Iterator[object]:
        """Results in order until the source ends; raises a stage's error when one failed.
        ``idle`` is called every few milliseconds while waiting (a window polls its keys there)."""
        while True:
            item = self._results.get(idle)
            if item is END:
                self._count_drops()
                self.raise_error()
                return
            self.stats.frames_processed += 1
            self.stats.mark_done()
            yield item
