"""Pictures on their way back to the browser: mirrored poses for a mirrored display, a picture
as an inline JPEG that the page shows without fetching a file, or as a JPEG file of its own."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np

from ...types import Poses

# Quality of the webcam tab's JPEGs: what the browser sends (its canvas default is 0.92) less
# a little; thin skeleton lines stay crisp (bench/RESULTS.md, "Web app").
JPEG_QUALITY = 85


def mirrored(image: np.ndarray) -> np.ndarray:
    """A copy of ``image`` flipped left to right (the pixels of ``image[:, ::-1]``), by OpenCV:
    0.05 ms for 640x480 where numpy's copy of the reversed view took 1.7 ms (bench/RESULTS.md)."""
    return cv2.flip(image, 1)


def mirror_poses(poses: Poses, width: int) -> Poses:
    """``poses`` as they lie on the :func:`mirrored` picture (``image[:, ::-1]``).

    Keypoints and boxes are mirrored (pixel centre x goes to ``width - 1 - x``); names and
    colours stay with the person's real left and right, and text drawn afterwards reads normally.
    """
    keypoints = poses.keypoints.copy()
    keypoints[..., 0] = (width - 1) - keypoints[..., 0]
    boxes = poses.boxes.copy()
    boxes[:, 0], boxes[:, 2] = (width - 1) - poses.boxes[:, 2], (width - 1) - poses.boxes[:, 0]
    return poses.replace(keypoints=keypoints, boxes=boxes)


def inline_jpeg(picture: np.ndarray, quality: int = JPEG_QUALITY) -> dict:
    """An RGB picture as an image output's value that carries the JPEG itself (a ``data:`` URL):
    Gradio sends it with the answer, so no file is written and the browser fetches nothing.
    Events returning it run with ``postprocess=False``."""
    url = "data:image/jpeg;base64," + base64.b64encode(_jpeg(picture, quality)).decode("ascii")
    return {"url": url, "path": None, "orig_name": "frame.jpg", "mime_type": "image/jpeg"}


def jpeg_file(picture: np.ndarray, folder: Path, quality: int = JPEG_QUALITY) -> str:
    """An RGB picture written as ``folder/poses.jpg``, a file of its own: an image output's value
    that Gradio copies into its cache atomically. (A picture Gradio encodes itself is written
    over in place at a path named by its content, so a second answer with the same picture can
    rewrite the file while the first is being downloaded, which then arrives short.)"""
    path = Path(folder) / "poses.jpg"
    path.write_bytes(_jpeg(picture, quality))
    return str(path)


def _jpeg(picture: np.ndarray, quality: int) -> bytes:
    bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)  # OpenCV encodes BGR
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("the picture could not be encoded as JPEG")
    return jpeg.tobytes()
