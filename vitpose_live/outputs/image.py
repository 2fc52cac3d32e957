"""An annotated still image (PNG, JPEG, ... by the file name's extension)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import os_reason
from .base import FileSink
from .paths import SinkError, check_writable


class ImageFileSink(FileSink):
    """A still image file (PNG, JPEG... by extension) written from an RGB array."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        check_writable(self.path)
        if not cv2.haveImageWriter(str(self.path)):
            raise SinkError(f"cannot write '{self.path}': no image format for '{self.path.suffix}'")

    def write(self, image: np.ndarray, time: float | None = None) -> None:
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        try:
            ok, encoded = cv2.imencode(self.path.suffix, image)
        except cv2.error as error:
            raise SinkError(f"cannot write '{self.path}': {str(error).strip().splitlines()[-1]}") from None
        if not ok:
            raise SinkError(f"cannot write '{self.path}': OpenCV could not encode the image")
        try:
            self.path.write_bytes(encoded.tobytes())
        except OSError as error:
            self.path.unlink(missing_ok=True)
            raise SinkError(f"cannot write '{self.path}': {os_reason(error)}") from None

    def close(self) -> None:
        pass

    def abort(self) -> None:
        """Delete what was written."""
        self.path.unlink(missing_ok=True)
