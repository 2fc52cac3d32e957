"""A folder of images, or the files a glob pattern matches, played as frames."""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..types import Frame
from .base import Closable, SourceError, VideoInfo
from .files import read_image
from .spec import IMAGE_EXTENSIONS, SourceKind, natural_key

log = logging.getLogger(__name__)


class FolderSource(Closable):
    """The images of a directory (those with an image extension) or of a glob pattern
    (``"frames/*.png"``), in natural order (``img2`` before ``img10``).

    ``index`` counts the frames yielded; ``time`` is ``index / fps`` when ``fps`` is given, else
    None. Files that cannot be read as images are skipped with a logged warning. Opening lists
    the files and reads the first readable one (for :attr:`info`); nothing to read fails with
    :class:`SourceError`. Pictures may differ in size. Iterating again starts over.
    """

    kind = SourceKind.FOLDER
    is_live = False

    def __init__(self, spec: str | Path, *, fps: float | None = None) -> None:
        self.spec = str(spec)
        self.fps = float(fps) if fps else None
        if fps is not None and not fps > 0:
            raise SourceError(f"fps must be positive, got {fps}")
        if os.path.isdir(self.spec):
            names = [os.path.join(self.spec, name) for name in os.listdir(self.spec)]
            paths = [p for p in names if os.path.isfile(p) and Path(p).suffix.lower() in IMAGE_EXTENSIONS]
            if not paths:
                raise SourceError(f"no images in folder '{self.spec}'")
        else:
            paths = [p for p in glob.glob(self.spec) if os.path.isfile(p)]
            if not paths:
                raise SourceError(f"no files match '{self.spec}'")
        self.paths = [Path(p) for p in sorted(paths, key=natural_key)]
        self._first: tuple[int, np.ndarray] | None = None
        for position, path in enumerate(self.paths):
            image = self._load(path)
            if image is not None:
                self._first = (position, image)
                break
        if self._first is None:
            raise SourceError(f"none of the {len(self.paths)} file(s) of '{self.spec}' is a readable image")
        height, width = self._first[1].shape[:2]
        self._info = VideoInfo(
            width=int(width),
            height=int(height),
            fps=self.fps or 30.0,
            frame_count=len(self.paths),
            duration=None,
            has_audio=False,
            codec="images",
        )
        self._closed = False

    @property
    def info(self) -> VideoInfo:
        """Size of the first image; ``fps`` is 30 when none was given; ``frame_count`` counts files."""
        return self._info

    @staticmethod
    def _load(path: Path) -> np.ndarray | None:
        try:
            return read_image(path)
        except (SourceError, OSError, cv2.error) as error:
            log.warning("skipped '%s': %s", path, error)
            return None

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise SourceError(f"'{self.spec}' is closed")
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        first_position, first_image = self._first
        index = 0
        for position in range(first_position, len(self.paths)):
            image = first_image if position == first_position else self._load(self.paths[position])
            if image is None:
                continue
            if self._closed:
                return
            seconds = index / self.fps if self.fps else None
            yield Frame(image=image, index=index, time=seconds, captured_at=time.monotonic())
            index += 1

    def close(self) -> None:
        self._closed = True
