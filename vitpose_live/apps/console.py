"""What every command-line face shares: exit codes, the one-line failure, quiet libraries, and
SIGTERM stopping like Ctrl-C."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from ..errors import one_line

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def program_name(argv0: str | None = None) -> str:
    """The name the user typed: ``app.py`` or ``vitpose-live`` (also for ``python -m``)."""
    name = os.path.basename(argv0 if argv0 is not None else (sys.argv[0] if sys.argv else ""))
    return name if name in ("app.py", "vitpose-live") else "vitpose-live"


PROG = program_name()  # in every message of the command line


def fail(error: BaseException, *, verbose: bool = False) -> int:
    """Print ``error`` as one line (with its traceback in the log when ``verbose``): exit status 2."""
    if verbose:
        logging.getLogger("vitpose_live").exception("failed")
    print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
    return EXIT_USAGE


def reported(work: Callable[[], int], *, errors: tuple[type[BaseException], ...], verbose: bool,
             interrupted: str) -> int:
    """``work()``'s exit status; one of ``errors`` is one line (exit 2), Ctrl-C the line
    ``interrupted`` (exit 130)."""
    try:
        return work()
    except errors as error:
        return fail(error, verbose=verbose)
    except KeyboardInterrupt:
        print(f"{PROG}: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED


def quiet_libraries() -> None:
    """Warnings and the Hub's and transformers' chatter off (``--verbose`` keeps them)."""
    import warnings

    from ..models.loading import quiet_hub_logging

    warnings.filterwarnings("ignore")
    quiet_hub_logging()
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetics only
        pass


def stop_on_sigterm() -> None:
    """SIGTERM stops like Ctrl-C: outputs are finalised."""
    import signal

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
