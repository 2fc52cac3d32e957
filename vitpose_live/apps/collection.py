"""Collections: every video and image under a folder (or matching a glob) → a results folder that
mirrors the input tree, one manifest line per input, resumable; on this machine or on Ray
(:mod:`vitpose_live.apps.cluster`).

Each input goes through the single-file path (:func:`vitpose_live.apps.job.annotate`) with the
collection's settings, writing hidden ``.NAME.partial-TOKEN.EXT`` files that are renamed when the
input is finished. So an output under its final name is always complete, and "done" simply means
"all of the input's outputs exist": a crash, Ctrl-C or a lost worker leaves nothing that counts.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import logging
import os
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import UserError, one_line
from ..sources.spec import natural_key
from ..system.interrupts import held
from .request import Request, check_collection, check_request

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
VIDEO_INPUT_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv",
     ".flv", ".3gp", ".ogv"}
)
_PARTIAL = ".partial-"


def add_collection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("collections (--source is a folder or a glob)")
    group.add_argument("--output-dir", metavar="OUT",
                       help="annotate every video and image under --source (recursively) into OUT, mirroring "
                       "the tree, with OUT/manifest.jsonl; inputs already done are skipped")
    group.add_argument("--formats", default="jsonl", help="keypoint files per input: jsonl, csv, coco (default jsonl)")
    group.add_argument("--no-video", action="store_true", help="keypoints only: no annotated videos or images")
    group.add_argument("--overwrite", action="store_true", help="redo inputs whose outputs are complete")
    group.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                       help="run on Ray: alone, a Ray started on this machine; or a cluster (auto, ray://host:10001)")
    group.add_argument("--workers", type=int, help="Ray actors, each loading the models once "
                       "(default: one per GPU, or one per CPU without GPUs)")
    group.add_argument("--gpus-per-worker", type=float, help="GPUs per Ray actor (default 1 with GPUs, else 0)")
    group.add_argument("--retries", type=int, default=2,
                       help="Ray: how often an input whose worker died is tried again (default 2)")


@dataclass(frozen=True)
class Job:
    """One input and where its results go. ``name`` is its path under the input root (POSIX), as
    the manifest names it; ``base`` is ``OUT/<name without extension>``."""

    source: Path
    name: str
    base: Path
    video_suffix: str | None  # None: --no-video
    formats: tuple[str, ...]

    def output(self, suffix: str) -> Path:
        return self.base.parent / (self.base.name + suffix)

    @property
    def video(self) -> Path | None:
        return None if self.video_suffix is None else self.output(self.video_suffix)

    @property
    def keypoints(self) -> tuple[Path, ...]:
        from ..outputs.paths import FORMAT_SUFFIXES

        return tuple(self.output(FORMAT_SUFFIXES[name]) for name in self.formats)

    @property
    def outputs(self) -> tuple[Path, ...]:
        return ((self.video,) if self.video else ()) + self.keypoints

    def done(self) -> bool:
        return all(path.is_file() for path in self.outputs)

    def partial(self, suffix: str, token: str) -> Path:
        return self.base.parent / f".{self.base.name}{_PARTIAL}{token}{suffix}"

    def remove_partials(self) -> None:
        """Delete what an unfinished attempt (this run's or a killed one's) left behind."""
        pattern = f".{glob.escape(self.base.name)}{_PARTIAL}*"
        for path in self.base.parent.glob(pattern):
            path.unlink(missing_ok=True)


@dataclass(frozen=True)
class ManifestEntry:
    """One line of ``OUT/manifest.jsonl``; ``status`` is ``ok``, ``error`` or ``skipped``."""

    source: str
    status: str
    frames: int | None = None
    persons_per_frame: float | None = None
    seconds: float | None = None
    error: str | None = None
    attempts: int = 1

    def line(self) -> str:
        return json.dumps(asdict(self))


# --- what to do ------------------------------------------------------------------------------------


def _glob_root(pattern: str) -> Path:
    fixed = []
    for part in Path(pattern).parts:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def discover(spec: str, out_dir: Path) -> tuple[Path, list[Path]]:
    """The input root and the videos and images under ``spec`` (a folder, searched recursively, a
    glob, or one file), in natural order; hidden files and anything under ``out_dir`` left out."""
    from ..sources import IMAGE_EXTENSIONS

    if os.path.isdir(spec):
        root, candidates = Path(spec), Path(spec).rglob("*")
    elif any(ch in spec for ch in "*?["):
        root, candidates = _glob_root(spec), (Path(p) for p in glob.glob(spec, recursive=True))
    elif os.path.isfile(spec):
        root, candidates = Path(spec).parent, [Path(spec)]
    else:
        raise UserError(f"cannot open '{spec}': no such folder or file")
    media = VIDEO_INPUT_EXTENSIONS | IMAGE_EXTENSIONS
    out = out_dir.resolve()
    files = [
        path for path in candidates
        if path.suffix.lower() in media and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and out not in path.resolve().parents
    ]
    if not files:
        raise UserError(f"no videos or images under '{spec}'")
    return root, sorted(files, key=lambda path: natural_key(path.relative_to(root)))


def plan(root: Path, files: list[Path], out_dir: Path, formats: tuple[str, ...], video: bool) -> list[Job]:
    """A job per file; ``DIR/sub/x.mp4`` → ``OUT/sub/x.mp4`` + ``OUT/sub/x.jsonl``. Two inputs of
    one folder with the same stem (``x.mp4``, ``x.mov``) keep their extension: ``x.mov.mp4``."""
    from ..outputs.paths import IMAGE_OUTPUT_EXTENSIONS
    from ..sources import IMAGE_EXTENSIONS

    relative = [path.relative_to(root) for path in files]
    stems = Counter((rel.parent, rel.stem.casefold()) for rel in relative)
    jobs = []
    for path, rel in zip(files, relative):
        name = rel.stem if stems[(rel.parent, rel.stem.casefold())] == 1 else rel.name
        suffix = rel.suffix.lower()
        if suffix in IMAGE_EXTENSIONS:
            suffix = suffix if suffix in IMAGE_OUTPUT_EXTENSIONS else ".png"
        else:
            suffix = ".mp4"
        jobs.append(Job(path, rel.as_posix(), out_dir / rel.parent / name, suffix if video else None, formats))
    return jobs


def prepare(request: Request) -> list[Job]:
    """Check the options, make ``OUT`` and list the jobs (one-line errors before any work)."""
    from ..outputs.paths import SinkError

    formats = check_collection(request)
    out_dir = Path(request.output_dir)
    root, files = discover(request.source, out_dir)
    if out_dir.resolve() == root.resolve():
        raise UserError("--output-dir must not be the input folder (outputs would replace inputs)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SinkError(f"cannot create '{out_dir}': {(error.strerror or str(error)).lower()}") from None
    jobs = plan(root, files, out_dir, formats, video=not request.no_video)
    check_request(request.for_input(jobs[0].source, output=None, keypoints=out_dir / MANIFEST))  # the shared options
    return jobs


# --- one input ------------------------------------------------------------------------------------------


def _commit(job: Job, token: str) -> None:
    """Convert the finished JSON lines to the other formats, then give every file its final name."""
    from ..outputs.keypoints import convert_keypoints
    from ..outputs.paths import FORMAT_SUFFIXES

    jsonl = job.partial(".jsonl", token)
    for name in job.formats:
        if name != "jsonl":
            convert_keypoints(jsonl, job.partial(FORMAT_SUFFIXES[name], token))
    with held():  # Ctrl-C during the renames takes effect after the last one
        for final in job.outputs:
            os.replace(job.partial(final.name[len(job.base.name):], token), final)
        if "jsonl" not in job.formats:
            jsonl.unlink()


def process_input(job: Job, request: Request, engine=None, *, attempt: int = 1, on_count=None) -> ManifestEntry:
    """Annotate one input into partial files and rename them when done. A failure is an ``error``
    entry with the single-file command's one-line message; Ctrl-C removes the partial files and
    stops the collection (``KeyboardInterrupt``)."""
    from .job import annotate

    job.remove_partials()
    job.base.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    video = None if job.video_suffix is None else job.partial(job.video_suffix, token)
    one = request.for_input(job.source, output=video, keypoints=job.partial(".jsonl", token))
    started = time.monotonic()
    try:
        summary = annotate(one, check_request(one), engine=engine, on_count=on_count)
        if summary.interrupted:
            raise KeyboardInterrupt
        _commit(job, token)
    except KeyboardInterrupt:
        job.remove_partials()
        raise
    except Exception as error:  # noqa: BLE001 - one input's failure must not end the collection
        job.remove_partials()
        if request.verbose:
            log.exception("'%s' failed", job.source)
        return ManifestEntry(job.name, "error", seconds=round(time.monotonic() - started, 3),
                             error=one_line(error), attempts=attempt)
    per_frame = summary.persons / summary.frames if summary.frames else 0.0
    return ManifestEntry(job.name, "ok", summary.frames, round(per_frame, 3), round(summary.seconds, 3),
                         attempts=attempt)


# --- the collection --------------------------------------------------------------------------------


class Recorder:
    """Appends manifest lines as inputs end (a crash loses nothing already done), moves the bar
    over inputs and counts for the summary."""

    def __init__(self, out_dir: Path, total: int, *, progress: bool) -> None:
        from tqdm import tqdm

        self.path = out_dir / MANIFEST
        self.counts = {"ok": 0, "skipped": 0, "error": 0}
        self.frames = 0
        self.detection: str | None = None  # the detector's interval and person cap, in words
        self.started = time.monotonic()
        self._bar = tqdm(total=total, unit="input", disable=not progress, dynamic_ncols=True)

    def start(self, job: Job) -> None:
        self._bar.set_postfix_str(job.name, refresh=True)

    def counting(self, job: Job):
        """``on_count`` for ``job``: the bar says the frames of the input in progress too."""
        return lambda frames: self._bar.set_postfix_str(f"{job.name}: {frames} frame(s)", refresh=frames % 10 == 1)

    def record(self, entry: ManifestEntry) -> None:
        with open(self.path, "a", encoding="utf-8") as manifest:
            manifest.write(entry.line() + "\n")
        self.counts[entry.status] += 1
        if entry.status == "ok":
            self.frames += entry.frames or 0
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()

    def summary(self) -> str:
        seconds = time.monotonic() - self.started
        rate = self.frames / seconds if seconds > 0 else 0.0
        ok, skipped, failed = self.counts["ok"], self.counts["skipped"], self.counts["error"]
        line = (f"done: {ok} input(s) ok, {skipped} skipped, {failed} failed; {self.frames} frame(s) in "
                f"{seconds:.1f} s ({rate:.1f} frames/s) -> {self.path}")
        return line + (f"; {self.detection}" if self.detection else "")


def previous_entries(path: Path) -> dict[str, dict]:
    """The last ``ok`` line per source of an existing manifest (to repeat its figures when skipped)."""
    entries: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("status") == "ok":
                    entries[entry["source"]] = entry
    return entries


def skip_done(jobs: list[Job], recorder: Recorder) -> list[Job]:
    """Record the inputs that are done as ``skipped``; the others are returned, to do."""
    before = previous_entries(recorder.path)
    todo = []
    for job in jobs:
        if not job.done():
            todo.append(job)
            continue
        last = before.get(job.name, {})
        recorder.record(ManifestEntry(job.name, "skipped", last.get("frames"), last.get("persons_per_frame")))
    return todo


def run_local(jobs: list[Job], request: Request, recorder: Recorder) -> None:
    """One input after another through one engine (the models load once)."""
    from ..engine.profiles import describe
    from ..engine.recipe import build_engine
    from .job import engine_options

    engine = build_engine(engine_options(request, live=False))
    recorder.detection = describe(engine.det_every, engine.settings.max_persons)
    for job in jobs:
        recorder.start(job)
        recorder.record(process_input(job, request, engine, on_count=recorder.counting(job)))
