"""Output paths checked before any work: which extensions mean what, and whether a file can be
created there. Cheap to import (no PyAV, no OpenCV, no torch)."""

from __future__ import annotations

import os
from pathlib import Path

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov"})
IMAGE_OUTPUT_EXTENSIONS = frozenset({".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"})


class SinkError(Exception):
    """An output that cannot be written; the message is one line meant for the user."""


def check_writable(path: str | Path) -> None:
    """Raise :class:`SinkError` now, before any work is done, when ``path`` clearly cannot be
    created: its directory is missing, is a file or is not writable, or ``path`` is a directory."""
    path = Path(path)
    parent = path.parent
    if not parent.exists():
        raise SinkError(f"cannot write '{path}': directory '{parent}' does not exist")
    if not parent.is_dir():
        raise SinkError(f"cannot write '{path}': '{parent}' is not a directory")
    if path.is_dir():
        raise SinkError(f"cannot write '{path}': it is a directory")
    if not os.access(parent, os.W_OK):
        raise SinkError(f"cannot write '{path}': permission denied")
