"""The shape every keypoints file shares (JSON lines, CSV, COCO): ``write(frame_index, time,
poses)``, ``close()``, ``abort()``."""

from __future__ import annotations

from pathlib import Path

from ..errors import os_reason
from .base import FileSink
from .paths import SinkError, check_writable
from ..types import Poses
from .records import frame_record


class TextSink(FileSink):
    """A keypoints file opened for writing. Subclasses write one frame's record
    (:func:`~vitpose_live.outputs.records.frame_record`) in ``write_record`` and what completes the file in
    ``_finish``; write errors become one-line :class:`SinkError` s; ``abort`` closes and deletes."""

    def __init__(self, path: str | Path, **open_options) -> None:
        self.path = Path(path)
        check_writable(self.path)
        try:
            self._file = open(self.path, "w", encoding="utf-8", **open_options)
        except OSError as error:
            raise SinkError(f"cannot write '{self.path}': {os_reason(error)}") from None
        self.frames_written = 0

    def _guarded(self, action, *values):
        if self._file.closed:
            raise SinkError(f"cannot write '{self.path}': it is already closed")
        try:
            return action(*values)
        except OSError as error:
            raise SinkError(f"cannot write '{self.path}': {os_reason(error)}") from None

    def write(self, frame_index: int, time: float | None, poses: Poses, **extras) -> None:
        """One frame; ``extras`` are :func:`~vitpose_live.outputs.records.frame_record`'s (interpolated, angles, followed)."""
        self.write_record(frame_record(frame_index, time, poses, **extras))

    def write_record(self, record: dict) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """What the format needs written before the file is complete."""

    def close(self) -> None:
        if self._file.closed:
            return
        self._guarded(self._finish)
        try:
            self._file.close()
        except OSError as error:
            raise SinkError(f"cannot write '{self.path}': {os_reason(error)}") from None

    def abort(self) -> None:
        """Close and delete the file."""
        try:
            self._file.close()
        except OSError:
            pass
        self.path.unlink(missing_ok=True)
