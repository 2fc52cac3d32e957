"""Detection off the frame path, for live sources: the detector runs on its own thread, on the
newest frame it is offered, at its own pace; pose and tracking never wait for it (but on the
first frame, which has nothing else to go on).

Why a thread and not every Nth frame inline: one detector pass costs many pose passes (see
bench/RESULTS.md), so inline detection turns a steady stream into quick frames and a freeze.
Here a detection arrives late instead, and :class:`~vitpose_live.engine.tracking.TrackingStage` matches
it against the tracks as they were on the frame it was computed from.
"""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from ..models.device import image_to_device
from ..models.crops import valid_boxes
from ..types import Detections, Frame

_POLL = 0.05  # seconds between checks of the stop flag while waiting


@dataclass(frozen=True)
class LateDetections:
    """The persons found on one earlier frame."""

    detections: Detections
    frame: Frame
    ms: float  # how long the pass took


class DetectorThread:
    """``offer(frame, threshold, max_persons)`` the newest frame, with the detection settings for
    its pass; ``take()`` the newest finished detection (once).

    An error in the detector is raised again from the next ``take``. On CUDA the passes run on
    a stream of their own, so a pose pass on the default stream need not queue behind them.
    """

    def __init__(self, detector) -> None:
        self.detector = detector
        self.passes = 0
        self.finished_at: float | None = None  # time.monotonic() when the last pass ended
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._keep: tuple[float | None, int | None] = (None, None)  # the offered frame's threshold, cap
        self._busy = False
        self._done: LateDetections | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="vitpose-detector", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        """No frame waiting and no pass running."""
        with self._cond:
            return self._frame is None and not self._busy

    def offer(self, frame: Frame, threshold: float | None = None, max_persons: int | None = None) -> None:
        """Detect on ``frame`` next (replacing a frame still waiting), keeping persons above
        ``threshold``, at most ``max_persons`` (None: the detector's own)."""
        with self._cond:
            self._frame, self._keep = frame, (threshold, max_persons)
            self._cond.notify_all()

    def take(self, wait: bool = False) -> LateDetections | None:
        """The newest detection not taken yet; with ``wait``, block until there is one."""
        with self._cond:
            while wait and self._done is None and self._error is None and not self._closed:
                self._cond.wait(_POLL)
            if self._error is not None:
                raise self._error
            done, self._done = self._done, None
            return done

    def close(self, timeout: float = 1.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _next_frame(self) -> tuple[Frame, tuple[float | None, int | None]] | None:
        with self._cond:
            while self._frame is None and not self._closed:
                self._cond.wait(_POLL)
            if self._closed:
                return None
            frame, self._frame, self._busy = self._frame, None, True
            return frame, self._keep

    def _run(self) -> None:
        placement = self.detector.placement
        stream = torch.cuda.Stream(placement.device) if placement.is_cuda else None
        try:
            with torch.inference_mode(), (torch.cuda.stream(stream) if stream else nullcontext()):
                if getattr(self.detector, "compiling", False):
                    # compiled (and its CUDA graphs captured) on the thread that calls it; a size
                    # that follows the image's compiles on the first frame, on this thread too
                    self.detector.warm([1])
                while (offered := self._next_frame()) is not None:
                    frame, (threshold, max_persons) = offered
                    start = time.perf_counter()
                    image = image_to_device(frame.image, placement) if stream else frame.image
                    detections = self.detector(image, threshold, max_persons)
                    good = valid_boxes(detections.boxes)  # a NaN or empty box must not reach the tracker
                    done = LateDetections(
                        Detections(detections.boxes[good], detections.scores[good]),
                        frame,
                        (time.perf_counter() - start) * 1e3,
                    )
                    with self._cond:
                        self._done, self._busy = done, False
                        self.passes += 1
                        self.finished_at = time.monotonic()
                        self._cond.notify_all()
        except BaseException as error:  # noqa: BLE001 - raised again by take()
            with self._cond:
                self._error, self._busy = error, False
                self._cond.notify_all()

