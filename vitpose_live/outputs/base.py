"""What the run loop writes to: the three kinds of sink (pictures, keypoint records, scenes drawn
elsewhere) and :class:`Outputs`, which finalises them all or removes them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Self

import numpy as np

from ..types import Frame
from .paths import SinkError


class FileSink:
    """The context-manager rule of every file sink: leaving normally or by ``KeyboardInterrupt``
    finalises the file (``close``); any other exception removes it (``abort``)."""

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close()
        else:
            self.abort()


class PictureSink(Protocol):
    def write(self, picture: np.ndarray, time: float | None = None) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class RecordSink(Protocol):
    def write(self, frame_index: int, time: float | None, poses, **extras) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class SceneSink(Protocol):
    """A picture sink that draws the poses itself (in another process: ``--io-processes``), so
    it gets the frame, the poses and the HUD's lines instead of a drawn picture."""

    stage_ms: dict[str, float]
    cpu_s: float | None

    def write_scene(self, frame: Frame, poses, time: float | None, hud: tuple[str, ...] = ()) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


@dataclass
class Outputs:
    """Where results go: annotated pictures (a video or an image file), keypoint records, and
    scenes (a video drawn and encoded elsewhere)."""

    pictures: list[PictureSink] = field(default_factory=list)
    records: list[RecordSink] = field(default_factory=list)
    scenes: list[SceneSink] = field(default_factory=list)

    def _all(self) -> list:
        return [*self.pictures, *self.scenes, *self.records]

    def stage_ms(self) -> dict[str, float]:
        """The scene sinks' own milliseconds per frame (known once closed), e.g. ``render_process.encode``."""
        return {f"render_process.{name}": ms for sink in self.scenes for name, ms in sink.stage_ms.items()}

    def cpu_s(self) -> dict[str, float]:
        """The CPU seconds of the scene sinks' processes (known once closed)."""
        return {"render_process": sink.cpu_s for sink in self.scenes if sink.cpu_s is not None}

    def close(self) -> None:
        """Finalise every output; if one fails, remove them all and raise its :class:`SinkError`."""
        try:
            for sink in self._all():
                sink.close()
        except (SinkError, OSError) as error:
            self.abort()
            if isinstance(error, SinkError):
                raise
            raise SinkError(f"cannot write an output: {error}") from None

    def abort(self) -> None:
        for sink in self._all():
            sink.abort()
