"""Helpers shared by the collection tests (tests/apps/test_collection.py, tests/apps/test_cluster.py):
a small folder of inputs, and reading back the manifest and the outputs of a run."""

import json
from pathlib import Path

from support.media import make_clip, make_image

SMALL = {"width": 96, "height": 72}


def make_collection(root: Path) -> Path:
    """a.mp4 (8 frames, audio), sub/b.mov (6 frames), photo.jpg, broken.mp4 (text), notes.txt."""
    (root / "sub").mkdir(parents=True)
    make_clip(root / "a.mp4", frames=8, **SMALL)
    make_clip(root / "sub" / "b.mov", frames=6, audio=False, **SMALL)
    make_image(root / "photo.jpg", width=80, height=60)
    (root / "broken.mp4").write_text("this is not a video\n")
    (root / "notes.txt").write_text("not media: not an input\n")
    return root


def read_manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def by_source(entries: list[dict]) -> dict[str, dict]:
    return {entry["source"]: entry for entry in entries}


def output_files(out: Path) -> dict[str, int]:
    """Every file under ``out`` but the manifest, with its modification time in nanoseconds."""
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in out.rglob("*")
            if p.is_file() and p.name != "manifest.jsonl"}


def collection_args(source, out, *more):
    return ["--source", source, "--output-dir", out, "--max-persons", 2, *more]
