"""Threads that give way: a file's decode and encode below normal priority, next to models on the
same CPU, so that the models' threads get the cores first and the I/O takes the time they leave.

On 2 cores this made the command line 6 % faster on a 1080p file (5.66 → 5.32 s, 5 alternating
pairs, bench/RESULTS.md): without it, decode and x264's threads stretch the models' parallel
regions.
Only on Linux, where a nice value belongs to a thread (elsewhere ``setpriority`` would lower
the whole process); a thread cannot raise its priority again, so only threads made for the
purpose are lowered: the pipeline's capture thread, a short-lived thread that opens the
encoder, whose threads inherit its nice value, and the whole of the I/O processes.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

BACKGROUND_NICE = 19  # the lowest priority: time nobody else wants

T = TypeVar("T")


def can_lower_threads() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "setpriority")


def lower_this_thread() -> None:
    """The calling thread, and the threads it starts from now on, run at :data:`BACKGROUND_NICE`
    (nothing happens where a nice value is not per thread)."""
    if can_lower_threads():
        try:
            os.setpriority(os.PRIO_PROCESS, 0, BACKGROUND_NICE)  # who=0: this thread, on Linux
        except OSError:  # a sandbox that forbids it: run at the priority we have
            pass


def lower_this_process() -> None:
    """Every thread of this process, and those it starts from now on, at :data:`BACKGROUND_NICE`:
    for a child process that does only I/O (library thread pools may have started while it
    imported its modules)."""
    if not can_lower_threads():
        return
    lower_this_thread()
    try:
        threads = os.listdir("/proc/self/task")
    except OSError:
        return
    for thread in threads:
        try:
            os.setpriority(os.PRIO_PROCESS, int(thread), BACKGROUND_NICE)  # who: a thread id, on Linux
        except OSError:  # ended meanwhile, or not allowed
            pass


def made_in_background(make: Callable[[], T]) -> T:
    """``make()`` called on a short-lived thread lowered first, so that threads it starts (an
    encoder's) run in the background; its result or its exception comes back to the caller."""
    if not can_lower_threads():
        return make()
    outcome: dict[str, object] = {}

    def target() -> None:
        lower_this_thread()
        try:
            outcome["value"] = make()
        except BaseException as error:  # noqa: BLE001 - raised again on the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name="vitpose-background-open", daemon=True)
    thread.start()
    try:
        thread.join()
    except BaseException:  # Ctrl-C while it opens: let it finish (it is short), throw away what it made
        thread.join()
        abort = getattr(outcome.get("value"), "abort", None)
        if abort is not None:
            abort()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[return-value]
