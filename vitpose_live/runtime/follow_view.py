"""The framed view a window or a page shows in place of the full frame while somebody is followed.

It is the live follow video's framing (:class:`~vitpose_live.analysis.framing.VirtualCamera`:
causal, the person centred at a steady scale) applied to the *drawn* picture, skeletons and all,
so what a person watches is what ``--follow-video`` would record, with the overlay. A click on
the framed view is mapped back to the frame's own pixels (:meth:`FollowView.to_source`) before
it picks anybody. With nobody followed the view is the full frame, unchanged.
"""

from __future__ import annotations

import numpy as np

from ..analysis.framing import CropWindow, FramingSettings, VirtualCamera, crop

__all__ = ["FollowView"]


class FollowView:
    """``show(picture, box, time, following)`` once per shown frame; ``to_source(x, y)`` for a
    click on what was shown last. ``size``: the view's (width, height)."""

    def __init__(self, size: tuple[int, int] = (720, 1280)) -> None:
        self.settings = FramingSettings(size=(int(size[0]), int(size[1])))
        self._camera: VirtualCamera | None = None
        self.window: CropWindow | None = None  # the crop shown last; None: the full frame was

    @property
    def size(self) -> tuple[int, int]:
        return self.settings.size

    def show(self, picture: np.ndarray, box, time: float, following: bool) -> np.ndarray:
        """The framed crop of ``picture`` (HxWx3) around ``box`` (the followed person's, None when
        they are not in this frame) while ``following``; the picture itself otherwise (and the
        camera starts afresh the next time somebody is followed)."""
        if not following:
            self._camera = self.window = None
            return picture
        image_size = (picture.shape[1], picture.shape[0])
        if self._camera is None or self._camera.image_size != image_size:
            self._camera = VirtualCamera(image_size, self.settings)
        self.window = self._camera.update(box, time)
        return crop(picture, self.window, self.size)

    def to_source(self, x: float, y: float) -> tuple[float, float]:
        """The frame's pixel under ``(x, y)`` of the picture shown last."""
        if self.window is None:
            return float(x), float(y)
        return self.window.to_source(x, y, self.size)
