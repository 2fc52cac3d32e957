"""Where frames come from: files (videos with PyAV, images with OpenCV), folders of images,
cameras (OpenCV), network streams (PyAV) and a synthetic scene of stick figures.

:func:`classify` decides once what a spec names (a :class:`SourceSpec`); :func:`open_source`
builds that source. Every source follows the :class:`Source` protocol: it yields
:class:`~vitpose_live.types.Frame` records (RGB uint8, contiguous), has ``kind``, ``is_live``
and ``info`` (a :class:`VideoInfo`), closes, and raises :class:`SourceError` with a one-line
message a user can act on when it cannot be used.

The classifier and the records are imported at once; the sources (which load OpenCV and PyAV)
on first use, so ``classify`` can run before the window exists and before torch loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..system.lazy import on_first_use
from .base import Source, SourceError, VideoInfo
from .spec import IMAGE_EXTENSIONS, STREAM_SCHEMES, SourceKind, SourceSpec, classify

if TYPE_CHECKING:
    from .camera import CameraSource
    from .dispatch import open_source
    from .files import ImageSource, VideoFileSource, open_file_source, read_image
    from .folder import FolderSource
    from .reconnect import Backoff
    from .stream import StreamSource
    from .synthetic import SyntheticSource

_LAZY = {
    "Backoff": ".reconnect",
    "CameraSource": ".camera",
    "FolderSource": ".folder",
    "ImageSource": ".files",
    "StreamSource": ".stream",
    "SyntheticSource": ".synthetic",
    "VideoFileSource": ".files",
    "open_file_source": ".files",
    "open_source": ".dispatch",
    "read_image": ".files",
}

__all__ = [
    "IMAGE_EXTENSIONS",
    "STREAM_SCHEMES",
    "Backoff",
    "CameraSource",
    "FolderSource",
    "ImageSource",
    "Source",
    "SourceError",
    "SourceKind",
    "SourceSpec",
    "StreamSource",
    "SyntheticSource",
    "VideoFileSource",
    "VideoInfo",
    "classify",
    "open_file_source",
    "open_source",
    "read_image",
]


__getattr__ = on_first_use(__name__, _LAZY, globals())
