"""Frames in shared memory between processes, and the child processes that use them.

Decoding and drawing+encoding can run in processes of their own (``--io-processes``), so that the
inference thread does not share the GIL with them. Pictures do not travel through pipes: a ring
of :class:`SharedFrames` slots holds them, and only a slot number travels. The parent creates
every slot and always unlinks it (also when a child is killed); children only attach.

Children are started with ``spawn`` (``fork`` next to torch's threads can deadlock), with Ctrl-C
ignored: the parent decides how a run ends (finalise or remove the outputs) and tells them.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import secrets
import signal
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

from ..errors import VitposeError, one_line
from ..sources.base import SourceError

CONTEXT = multiprocessing.get_context("spawn")
POLL = 0.05  # seconds between checks of a child's (or the parent's) life while waiting
SHM_DIR = "/dev/shm"
NAME_PREFIX = "vitpose_"  # then the parent's pid: tests find a run's segments by it


@dataclass(frozen=True)
class Layout:
    """Where the slots are: their shared-memory names and the (height, width, 3) of a frame."""

    names: tuple[str, ...]
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class Failed:
    """A child's last message when it fails: one line for the user."""

    text: str

    @classmethod
    def of(cls, error: BaseException, doing: str = "") -> Failed:
        """``error`` as one line (our errors as they are, others with their type's name)."""
        return cls(doing + one_line(error, with_type=not isinstance(error, VitposeError)))


class SharedFrames:
    """``slots`` RGB frames of one size in shared memory, and the queue of free slot numbers.

    Whoever fills a slot takes its number from :attr:`free`; whoever is done with it puts it back.
    :meth:`unlink` (idempotent, also run when the object is collected) removes every segment
    from ``/dev/shm``; processes that attached keep their mapping until they detach.
    """

    def __init__(self, slots: int, height: int, width: int) -> None:
        shape = (int(height), int(width), 3)
        size = shape[0] * shape[1] * 3
        _check_space(slots * size)
        token = f"{NAME_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        self._memory: list[shared_memory.SharedMemory] = []
        self._unlinked = False
        self._finalizer = weakref.finalize(self, _unlink_all, self._memory)
        try:
            for slot in range(slots):
                self._memory.append(shared_memory.SharedMemory(f"{token}_{slot}", create=True, size=size))
        except BaseException:
            self._finalizer()
            raise
        self.layout = Layout(tuple(m.name for m in self._memory), shape)
        self._views = [np.ndarray(shape, np.uint8, buffer=m.buf) for m in self._memory]
        self.free = CONTEXT.Queue()
        for slot in range(slots):
            self.free.put(slot)
        self.hand_over = False  # True once a render process releases the slots it encodes
        self._owed: dict[int, int] = {}  # frame index -> its slot, until handed to the renderer
        self.watched: list[Child] = []

    def view(self, slot: int) -> np.ndarray:
        return self._views[slot]

    def owe(self, index: int, slot: int) -> None:
        """Frame ``index`` keeps ``slot`` until :meth:`settle` hands it over."""
        self._owed[index] = slot

    def settle(self, index: int) -> int:
        return self._owed.pop(index)

    def check(self) -> None:
        """Raise the error of the first watched child that ended without being asked to."""
        for child in self.watched:
            child.check()

    def unlink(self) -> None:
        if not self._unlinked:
            self._unlinked = True
            self._finalizer.detach()
            self._views.clear()
            _unlink_all(self._memory)
            self.free.cancel_join_thread()
            self.free.close()


def _unlink_all(memory: list[shared_memory.SharedMemory]) -> None:
    for segment in memory:
        try:
            segment.unlink()
        except FileNotFoundError:
            pass
        try:
            segment.close()
        except BufferError:  # a frame still viewing it: the mapping goes when that frame does
            pass


def _check_space(needed: int) -> None:
    """Shared memory beyond what ``/dev/shm`` holds is not refused when made, but kills the
    process (SIGBUS) when written: refuse it here, in one line."""
    if not os.path.isdir(SHM_DIR):
        return
    stats = os.statvfs(SHM_DIR)
    available = stats.f_bavail * stats.f_frsize
    if needed > available:
        raise SharedMemoryError(
            f"--io-processes needs {needed / 2**20:.0f} MiB of shared memory but {SHM_DIR} has "
            f"{available / 2**20:.0f} MiB free: run without --io-processes or give {SHM_DIR} more room"
        )


class SharedMemoryError(SourceError):
    """Not enough shared memory for the frames in flight (a source's error: it makes the ring)."""


@contextmanager
def attached(layout: Layout) -> Iterator[list[np.ndarray]]:
    """A child's life: Ctrl-C ignored (the parent stops us), the parent's slots attached as numpy
    views, detached on the way out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    memory = [shared_memory.SharedMemory(name) for name in layout.names]
    views = [np.ndarray(layout.shape, np.uint8, buffer=m.buf) for m in memory]
    try:
        yield views
    finally:
        views.clear()
        for segment in memory:
            try:
                segment.close()
            except BufferError:
                pass


class Child:
    """A spawned process the parent watches: :meth:`check` raises ``error`` (a one-line message
    naming the process) once it has ended on its own; :meth:`stop` ends it within ``timeout``."""

    def __init__(self, what: str, error: type[VitposeError], target: Callable, args: tuple) -> None:
        self.what, self._error = what, error
        self.expected_end = False
        self._process = CONTEXT.Process(target=target, args=args, name=f"vitpose-{what}", daemon=True)

    def start(self) -> None:
        with _stops_held():  # a Ctrl-C while the child starts reaches it only once it ignores them
            self._process.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.is_alive()

    def check(self) -> None:
        if not self.expected_end and self._process.pid is not None and not self._process.is_alive():
            raise self.ended()

    def ended(self) -> VitposeError:
        """The error to raise for an end nobody asked for (waiting a moment for the exit status)."""
        self._process.join(1.0)
        how = ended_how(self._process.exitcode)
        return self._error(f"the {self.what} process ended unexpectedly ({how})")

    def stop(self, timeout: float = 1.0) -> None:
        self.expected_end = True
        if self._process.pid is None:
            return
        self._process.join(timeout)
        for end in (self._process.terminate, self._process.kill):
            if not self._process.is_alive():
                break
            end()
            self._process.join(0.5)


def ended_how(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


@contextmanager
def _stops_held() -> Iterator[None]:
    """SIGINT and SIGTERM blocked on this thread (children inherit the mask) while starting one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def parent_alive() -> bool:
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


def take_free(free, stop) -> int | None:
    """In a child: the next free slot, or None once ``stop`` is set or the parent is gone."""
    while not stop.is_set() and parent_alive():
        try:
            return free.get(timeout=POLL)
        except queue.Empty:
            continue
    return None
