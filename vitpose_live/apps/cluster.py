"""Collections on Ray: ``--workers N`` actors, each loading the models once and taking one whole
input at a time (so tracking sees a video's frames in order); the driver hands out inputs, writes
the manifest and, when a worker dies mid-input, gives that input to a fresh worker (at most
``--retries`` times). Inputs and ``OUT`` must be on storage every node sees.

An input's outputs are written under partial names and renamed by the worker when finished
(:func:`vitpose_live.apps.collection.process_input`), so a worker lost mid-input leaves nothing that
counts as done, and the retry cleans up after it.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import replace

from ..errors import UserError, one_line
from .collection import Job, ManifestEntry, Recorder, process_input
from .request import Request

# Test hook: with this set to a path (in the environment Ray starts with), the first worker that
# manages to create that file dies (os._exit) while its input is half written — a killed process
# or a lost node.
CRASH_ONCE_ENV = "VITPOSE_LIVE_TEST_CRASH_ONCE"


class Worker:
    """One Ray actor: the models, loaded on its first input and kept for the next ones."""

    def __init__(self, request: Request) -> None:
        from ..system.host_memory import keep_freed_memory
        from .console import quiet_libraries

        keep_freed_memory()  # a Ray worker is a process of ours, like the command line's
        self._request = request
        self._engine = None
        if not request.verbose:
            quiet_libraries()

    def warm(self) -> None:
        """Load the models now (a replacement takes inputs only once they are loaded)."""
        from ..engine.recipe import build_engine
        from .job import engine_options

        if self._engine is None:
            self._engine = build_engine(engine_options(self._request, live=False))

    def process(self, job: Job, attempt: int) -> ManifestEntry:
        self.warm()
        _crash_once_mid_input(job)
        return process_input(job, self._request, self._engine, attempt=attempt)


def _crash_once_mid_input(job: Job) -> None:
    marker = os.environ.get(CRASH_ONCE_ENV)
    if not marker:
        return
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return

    def die_once_writing() -> None:
        while not list(job.base.parent.glob(f".{job.base.name}.partial-*.jsonl")):
            time.sleep(0.005)
        os._exit(1)  # its outputs are open, half written

    threading.Thread(target=die_once_writing, daemon=True).start()


def _connect(address: str, verbose: bool) -> bool:
    """Start (``local``) or join a Ray cluster; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    options = dict(log_to_driver=verbose, configure_logging=verbose)
    try:
        if address == "local":
            ray.init(include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except Exception as error:  # noqa: BLE001 - any failure to connect is one line for the user
        raise UserError(f"cannot reach the Ray cluster at '{address}': {str(error).strip().splitlines()[0]}") from None
    return True


def run_on_ray(jobs: list[Job], request: Request, recorder: Recorder) -> None:
    """Every job on Ray actors; manifest lines are appended by this (the driver's) process."""
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'vitpose-live[ray]'") from None
    started = _connect(request.ray, request.verbose)
    try:
        gpus = request.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        workers = request.workers or _default_workers(gpus)
        # Actors run in other folders, on other nodes: absolute paths (the same on every node).
        jobs = [replace(job, source=job.source.absolute(), base=job.base.absolute()) for job in jobs]
        _Scheduler(request, recorder, gpus).run(jobs, min(workers, len(jobs)))
    finally:
        if started:
            ray.shutdown()


def _default_workers(gpus: float) -> int:
    import ray

    resources = ray.cluster_resources()
    if gpus > 0:
        return max(1, int(resources.get("GPU", 0) // gpus))
    return max(1, int(resources.get("CPU", 1)))


class _Scheduler:
    """Hands one input at a time to each idle actor. An actor that dies is replaced by a new one,
    which takes inputs once its models are loaded (until then, warm actors take them, the retried
    input first); at most ``(retries + 1) × workers`` replacements in all."""

    def __init__(self, request: Request, recorder: Recorder, gpus: float) -> None:
        import ray

        self._actor = ray.remote(Worker).options(num_cpus=1, num_gpus=gpus, max_restarts=0)
        self._request = request  # a frozen record: what each actor receives
        self._recorder = recorder
        self._retries = request.retries
        self._replacements = 0
        self._starting: dict = {}  # ref of warm() -> the actor loading its models

    def run(self, jobs: list[Job], workers: int) -> None:
        import ray

        self._replacements = (self._retries + 1) * workers
        queue = deque((job, 1) for job in jobs)
        idle = [self._actor.remote(self._request) for _ in range(workers)]
        running: dict = {}
        try:
            while queue or running:
                while queue and idle:
                    actor, (job, attempt) = idle.pop(), queue.popleft()
                    self._recorder.start(job)
                    running[actor.process.remote(job, attempt)] = (actor, job, attempt)
                if not (running or self._starting):  # no worker left and none could be started
                    self._give_up(queue)
                    return
                (ref,), _ = ray.wait([*running, *self._starting], num_returns=1)
                if ref in self._starting:
                    self._started(ref, idle)
                    continue
                actor, job, attempt = running.pop(ref)
                entry, alive = self._outcome(ref, job, attempt)
                if entry is None:
                    queue.appendleft((job, attempt + 1))
                else:
                    self._recorder.record(entry)
                if alive:
                    idle.append(actor)
                elif queue:
                    self._replace()
        except KeyboardInterrupt:
            for actor, _, _ in running.values():
                ray.kill(actor)
            if running:  # until they are gone, so that no rename comes after the clean-up
                ray.wait(list(running), num_returns=len(running), timeout=10)
            for _, job, _ in running.values():
                job.remove_partials()
            raise

    def _replace(self) -> None:
        if self._replacements > 0:
            self._replacements -= 1
            actor = self._actor.remote(self._request)
            self._starting[actor.warm.remote()] = actor

    def _started(self, ref, idle: list) -> None:
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        from ..models.loading import ModelLoadError

        actor = self._starting.pop(ref)
        try:
            ray.get(ref)
        except RayActorError:
            self._replace()
            return
        except RayTaskError as error:
            if isinstance(error.cause, ModelLoadError):
                raise error.cause from None
            raise UserError(f"a Ray worker could not load the models: {one_line(error.cause or error)}") from None
        idle.append(actor)

    def _give_up(self, queue: deque) -> None:
        for job, attempt in queue:
            reason = "no worker could be started to take it (workers died)"
            self._recorder.record(ManifestEntry(job.name, "error", error=reason, attempts=attempt))

    def _outcome(self, ref, job: Job, attempt: int) -> tuple[ManifestEntry | None, bool]:
        """(the entry, or None to try again; whether the actor is still alive)."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        from ..models.loading import ModelLoadError

        try:
            return ray.get(ref), True
        except RayActorError:  # the process died or its node was lost
            job.remove_partials()
            if attempt <= self._retries:
                return None, False
            reason = f"its worker died {attempt} time(s) (killed, out of memory or node lost)"
            return ManifestEntry(job.name, "error", error=reason, attempts=attempt), False
        except RayTaskError as error:  # raised outside process_input: loading the models
            cause = error.cause if isinstance(error.cause, BaseException) else error
            if isinstance(cause, ModelLoadError):
                raise cause from None
            return ManifestEntry(job.name, "error", error=one_line(cause), attempts=attempt), True
