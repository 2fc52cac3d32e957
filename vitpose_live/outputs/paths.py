"""Output paths checked before any work: which extensions mean what, and whether a file can be
created there. Cheap to import (no PyAV, no OpenCV, no torch)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import VitposeError, os_reason

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov"})
IMAGE_OUTPUT_EXTENSIONS = frozenset({".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"})
KEYPOINTS_FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".json": "coco"}
FORMAT_SUFFIXES = {name: suffix for suffix, name in KEYPOINTS_FORMATS.items()}


class SinkError(VitposeError):
    """An output that cannot be written; the message is one line meant for the user."""


def check_writable(path: str | Path) -> None:
    """Raise :class:`SinkError` now, before any work is done, when ``path`` cannot be created. A
    missing directory is created with its parents (as ``mkdir -p``, and as ``--output-dir`` makes
    its folder); a parent that is a file, ``path`` being a directory, or creating a file next to
    it failing are errors. That last check really creates (and removes) a file, since permission
    bits say nothing to root, who may still not write in ``/proc`` or on a read-only mount."""
    path = Path(path)
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        pass  # a file in the way: said below
    except OSError as error:
        raise SinkError(f"cannot write '{path}': cannot create directory '{parent}': {os_reason(error)}") from None
    if not parent.is_dir():
        in_the_way = next((folder for folder in (parent, *parent.parents) if folder.exists()), parent)
        raise SinkError(f"cannot write '{path}': '{in_the_way}' is not a directory")
    if path.is_dir():
        raise SinkError(f"cannot write '{path}': it is a directory")
    probe = parent / f".{path.name}.{os.getpid()}.probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        raise SinkError(f"cannot write '{path}': {os_reason(error)}") from None
    os.remove(probe)


def keypoints_format(path: str | Path) -> str:
    """``"jsonl"``, ``"csv"`` or ``"coco"`` from the file's extension, else :class:`SinkError`."""
    name = KEYPOINTS_FORMATS.get(Path(path).suffix.lower())
    if name is None:
        raise SinkError(f"cannot write keypoints to '{path}': use a .jsonl, .csv or .json (COCO) file name")
    return name
