"""Decoded pictures as the RGB uint8 every source yields."""

from __future__ import annotations

import cv2
import numpy as np


def _to_rgb8(image: np.ndarray) -> np.ndarray:
    """A decoded image of any depth (8/16-bit, float in [0, 1]) and layout as contiguous RGB uint8."""
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return _to_rgb(image)


def _to_rgb(picture: np.ndarray) -> np.ndarray:
    """An OpenCV picture (BGR, BGRA or gray) as contiguous RGB."""
    if picture.ndim == 2 or picture.shape[2] == 1:
        return np.ascontiguousarray(cv2.cvtColor(picture, cv2.COLOR_GRAY2RGB))
    if picture.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(picture, cv2.COLOR_BGRA2RGB))
    return np.ascontiguousarray(cv2.cvtColor(picture, cv2.COLOR_BGR2RGB))
