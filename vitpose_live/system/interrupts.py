"""Hold Ctrl-C and SIGTERM while one frame's outputs are written, so a stop never lands between
the annotated picture and its keypoints line ("one keypoints line per frame" stays true).

A signal that arrives inside ``held()`` is re-delivered, through whatever handler was installed
before, as soon as the block ends. Off the main thread (where Python cannot install handlers)
the block runs unguarded: signals are only ever delivered to the main thread.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum, _frame) -> None:
        pending.append(signum)

    previous = {signum: signal.signal(signum, hold) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if pending:
            signal.raise_signal(pending[0])
