"""Opening what a spec names: :func:`open_source` classifies once and builds that source."""

from __future__ import annotations

import os

from .base import Source
from .camera import CameraSource
from .files import ImageSource, VideoFileSource
from .folder import FolderSource
from .spec import SourceKind, SourceSpec, synthetic_options, classify
from .stream import StreamSource
from .synthetic import SyntheticSource


def open_source(spec: SourceSpec | str | int | os.PathLike, **options) -> Source:
    """The source ``spec`` names (see :func:`~.spec.classify`; a :class:`SourceSpec` is used as
    it is), built with ``options``: those of :class:`CameraSource`, :class:`StreamSource`,
    :class:`FolderSource` or :class:`SyntheticSource` (which override the spec's own
    ``synthetic:key=value`` options), or a video file's ``threads``. An image takes no options.
    """
    if not isinstance(spec, SourceSpec):
        spec = classify(spec)
    kind, text = spec.kind, spec.text
    if kind is SourceKind.CAMERA:
        return CameraSource(int(text), **options)
    if kind is SourceKind.SYNTHETIC:
        return SyntheticSource(**(synthetic_options(text) | options))
    if kind is SourceKind.STREAM:
        return StreamSource(text, **options)
    if kind is SourceKind.FOLDER:
        return FolderSource(text, **options)
    allowed = set() if kind is SourceKind.IMAGE else {"threads"}
    if set(options) - allowed:
        takes = "no options" if not allowed else "only threads"
        raise TypeError(f"{'an image' if not allowed else 'a video file'} source takes {takes}, "
                        f"got {', '.join(sorted(options))}")
    if kind is SourceKind.IMAGE:
        return ImageSource(text)
    return VideoFileSource(text, **options)
