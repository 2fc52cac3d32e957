"""A collection from start to end: the command line's ``--output-dir`` mode. The inputs are
listed and checked (:mod:`.collection`), those already done are skipped, and the rest run here,
one after another, or on Ray (:mod:`.cluster`)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UserError
from .collection import Recorder, prepare, run_local, skip_done
from .console import EXIT_FAILED, EXIT_OK, reported
from .request import Request


def run_collection(request: Request) -> int:
    """Exit status 0 when every input is ok or skipped, 1 when any failed, 2 for a usage error
    before any work, 130 when interrupted."""
    from ..models.loading import ModelLoadError
    from ..outputs.paths import SinkError
    from ..sources import SourceError

    errors = (UserError, SourceError, SinkError, ModelLoadError, ValueError)
    recorder: list[Recorder] = []  # the one made, closed whatever happens
    try:
        return reported(lambda: _run(request, recorder), errors=errors, verbose=request.verbose,
                        interrupted="interrupted; run the same command again to finish the rest")
    finally:
        for made in recorder:
            made.close()


def _run(request: Request, made: list[Recorder]) -> int:
    jobs = prepare(request)
    recorder = Recorder(Path(request.output_dir), len(jobs), progress=not request.no_progress)
    made.append(recorder)
    todo = jobs if request.overwrite else skip_done(jobs, recorder)
    if todo and request.ray is not None:
        from .cluster import run_on_ray

        run_on_ray(todo, request, recorder)
    elif todo:
        run_local(todo, request, recorder)
    recorder.close()
    print(recorder.summary(), file=sys.stderr)
    return EXIT_FAILED if recorder.counts["error"] else EXIT_OK
