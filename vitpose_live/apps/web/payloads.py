"""What uploads may be, and turning what the browser sends into pixels, with a one-line
``gr.Error`` saying what is wrong when it cannot be used."""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import PIL.Image

from ...sources import SourceError, read_image

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What uploads may be; stated in the page and enforced on every call."""

    video_seconds: float = 60.0
    video_bytes: int = 200 * MB
    image_bytes: int = 25 * MB
    image_pixels: int = 40_000_000


def image_from_payload(payload, limits: Limits) -> tuple[np.ndarray, str]:
    """An image input's raw value → ``(HxWx3 uint8 RGB, name)``, or ``gr.Error`` saying why not.

    The events that take images run with ``preprocess=False``, so that a file that is not an
    image, or is too large, gets a message (``gr.Image`` would fail with an unexplained error).
    Gradio has still checked that an uploaded path lies in its upload folder. The value is an
    uploaded file (``path``) or, from a streaming webcam, a ``data:`` URL (a JPEG). The size is
    read from the header before anything is decoded, so a small file of huge dimensions is
    refused cheaply.
    """
    if isinstance(payload, dict):
        path, url, name = payload.get("path"), payload.get("url"), payload.get("orig_name")
    else:  # a plain path (a direct call)
        path, url, name = payload, None, None
    if path:
        return _from_file(path, name or Path(path).name, limits)
    if isinstance(url, str) and url.startswith("data:") and "," in url:
        return _from_data_url(url, name or "the frame", limits)
    raise gr.Error("Upload an image first.")


def _unreadable(name: str) -> gr.Error:
    return gr.Error(f"'{name}' is not an image that can be read (use JPEG, PNG, WebP, BMP or TIFF)")


def _check_header(opened, name: str, limits: Limits) -> None:
    try:
        with PIL.Image.open(opened) as header:
            width, height = header.size
    except (PIL.UnidentifiedImageError, OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError):
        raise _unreadable(name) from None
    if width * height > limits.image_pixels:
        raise gr.Error(f"'{name}' is {width}x{height}: at most {limits.image_pixels / 1e6:g} megapixels please")


def _from_file(path, name: str, limits: Limits) -> tuple[np.ndarray, str]:
    try:
        size = os.path.getsize(path)
    except OSError:
        raise gr.Error(f"'{name}' cannot be read") from None
    if size > limits.image_bytes:
        raise gr.Error(f"'{name}' is {size / MB:.1f} MB: images can be at most {limits.image_bytes // MB} MB")
    _check_header(path, name, limits)
    try:
        return read_image(path), name  # as the command line reads images (EXIF, 16 bits, alpha)
    except SourceError:
        raise _unreadable(name) from None


def _from_data_url(url: str, name: str, limits: Limits) -> tuple[np.ndarray, str]:
    data = url.split(",", 1)[1]
    if len(data) * 3 // 4 > limits.image_bytes:
        raise gr.Error(f"{name} is larger than {limits.image_bytes // MB} MB")
    try:
        raw = base64.b64decode(data, validate=False)
    except (ValueError, binascii.Error):
        raise gr.Error(f"{name} is not an image that can be read") from None
    _check_header(io.BytesIO(raw), name, limits)
    # Straight to RGB: no colour conversion after decoding.
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR_RGB)
    if image is None:
        raise _unreadable(name)
    return image, name


def check_video_size(path: Path, name: str, limits: Limits) -> None:
    if path.is_file() and path.stat().st_size > limits.video_bytes:
        size = path.stat().st_size / MB
        raise gr.Error(f"'{name}' is {size:.0f} MB: videos can be at most {limits.video_bytes // MB} MB")


def check_video_info(info, name: str, limits: Limits) -> float | None:
    """The video's duration in seconds (None when unknown), or ``gr.Error`` when too long or too
    large a picture."""
    duration = info.duration or (info.frame_count / info.fps if info.frame_count else None)
    if duration is not None and duration > limits.video_seconds + 0.05:
        raise gr.Error(f"'{name}' lasts {duration:.0f} s: videos can be at most {limits.video_seconds:.0f} s long")
    if info.width * info.height > limits.image_pixels:
        raise gr.Error(f"'{name}' is {info.width}x{info.height}: too large a picture")
    return duration


def safe_stem(name: str) -> str:
    """A file stem safe to serve: letters, digits, ``._-``; at most 80 characters."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._") or "video"
    return stem[:80]
