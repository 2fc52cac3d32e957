"""What the user typed as a source, decided once: :func:`classify` turns it into a
:class:`SourceSpec` that everyone downstream reads instead of deciding again.

Cheap on purpose: the CLI calls it before torch loads and before the window exists (which must
come before PyAV), so this imports none of torch, PyAV or OpenCV, and touches the disk only to
ask whether a path is a directory and, for a GIF, to walk its block headers to count frames.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO

from .base import SourceError, SourceKind

IMAGE_EXTENSIONS = frozenset(
    {".bmp", ".jpeg", ".jpg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm", ".pnm"}
)
STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp"})


_LIVE = frozenset({SourceKind.CAMERA, SourceKind.STREAM, SourceKind.SYNTHETIC})


@dataclass(frozen=True)
class SourceSpec:
    """A classified source: ``text`` is what the user typed (stripped), ``kind`` what it names."""

    text: str
    kind: SourceKind

    @property
    def live(self) -> bool:
        """Frames arrive at the world's pace (cameras, streams, the synthetic scene unless
        ``realtime=false`` is in the spec)."""
        if self.kind is SourceKind.SYNTHETIC:
            return synthetic_options(self.text).get("realtime", True)
        return self.kind in _LIVE

    @property
    def is_file(self) -> bool:
        """One image or video file."""
        return self.kind in (SourceKind.IMAGE, SourceKind.VIDEO)


def classify(spec: str | int | os.PathLike) -> SourceSpec:
    """What ``spec`` names.

    An integer, or a string of digits: a camera. ``"synthetic"`` or ``"synthetic:persons=3,fps=60"``
    (options checked here): the synthetic scene; ``"synthetic_walk.mp4"`` is a file. A URL whose
    scheme is in :data:`STREAM_SCHEMES`: a stream; another ``scheme://`` is a :class:`SourceError`.
    A directory or a glob pattern (with ``*`` or ``?``): a folder of images. A file with an image
    extension (:data:`IMAGE_EXTENSIONS`), or a GIF holding exactly one frame: an image. Anything
    else: a video (whether it exists is for opening to say).
    """
    if isinstance(spec, int) and not isinstance(spec, bool):
        return SourceSpec(str(spec), SourceKind.CAMERA)
    text = str(spec).strip()
    if not text:
        raise SourceError("no source given (a file, folder, camera index, URL or 'synthetic')")
    if re.fullmatch(r"[0-9]+", text):
        return SourceSpec(text, SourceKind.CAMERA)
    if text == "synthetic" or text.startswith("synthetic:"):
        synthetic_options(text)  # a bad option fails now, before anything loads
        return SourceSpec(text, SourceKind.SYNTHETIC)
    scheme, sep, _ = text.partition("://")
    if sep and scheme.lower() in STREAM_SCHEMES:
        return SourceSpec(text, SourceKind.STREAM)
    if sep and re.fullmatch(r"[a-zA-Z][a-zA-Z0-9+.-]*", scheme):
        schemes = ", ".join(sorted(STREAM_SCHEMES))
        raise SourceError(f"unsupported URL scheme '{scheme}://' (use one of {schemes})")
    if os.path.isdir(text) or any(ch in text for ch in "*?"):
        return SourceSpec(text, SourceKind.FOLDER)
    return SourceSpec(text, file_kind(text))


def file_kind(path: str | Path) -> SourceKind:
    """IMAGE or VIDEO for a file path, by extension; a GIF of one frame is an image."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return SourceKind.IMAGE
    if suffix == ".gif" and _gif_frames(path, most=2) == 1:
        return SourceKind.IMAGE
    return SourceKind.VIDEO


def _gif_frames(path: str | Path, most: int) -> int | None:
    """How many frames a GIF holds, counting no further than ``most``; None when it cannot be
    read or is not a GIF. Reads block headers only: no pixels are decoded."""
    try:
        with open(path, "rb") as f:
            if f.read(6) not in (b"GIF87a", b"GIF89a"):
                return None
            screen = f.read(7)
            if len(screen) < 7:
                return None
            _skip_color_table(f, screen[4])
            frames = 0
            while frames < most:
                block = f.read(1)
                if block == b"\x2c":  # image descriptor, local color table, LZW size, data
                    frames += 1
                    descriptor = f.read(9)
                    if len(descriptor) < 9:
                        break
                    _skip_color_table(f, descriptor[8])
                    f.read(1)
                    _skip_sub_blocks(f)
                elif block == b"\x21":  # extension: label, then data
                    f.read(1)
                    _skip_sub_blocks(f)
                else:  # trailer, end of file or damage: what was counted is what there is
                    break
            return frames
    except OSError:
        return None


def _skip_color_table(f: BinaryIO, flags: int) -> None:
    if flags & 0x80:
        f.seek(3 * 2 ** ((flags & 0x07) + 1), os.SEEK_CUR)


def _skip_sub_blocks(f: BinaryIO) -> None:
    while (size := f.read(1)) and size[0]:
        f.seek(size[0], os.SEEK_CUR)


_SYNTHETIC_OPTIONS = {
    "width": int, "height": int, "fps": float, "frames": int, "persons": int, "seed": int, "realtime": bool
}  # fmt: skip


def synthetic_options(spec: str) -> dict:
    """``"synthetic:persons=3,fps=60"`` → ``{"persons": 3, "fps": 60.0}``."""
    _, _, text = spec.partition(":")
    options: dict = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = (s.strip() for s in item.partition("="))
        kind = _SYNTHETIC_OPTIONS.get(key)
        if kind is None or not sep:
            choices = ", ".join(_SYNTHETIC_OPTIONS)
            raise SourceError(f"bad synthetic option '{item}' (use key=value with keys {choices})")
        try:
            if kind is bool:
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                options[key] = value.lower() in ("1", "true", "yes", "on")
            else:
                options[key] = kind(value)
        except ValueError:
            needed = "true or false" if kind is bool else "a number"
            raise SourceError(f"synthetic option {key} needs {needed}, got '{value}'") from None
    return options


def natural_key(path: str | PurePath) -> list:
    """Sort key putting ``img2`` before ``img10`` (case-insensitive; a path by its POSIX form)."""
    text = path.as_posix() if isinstance(path, PurePath) else path
    return [int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", text)]
