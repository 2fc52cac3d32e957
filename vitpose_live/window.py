"""The local OpenCV window: a thin shell that shows frames and turns keys into actions.

Import this (and create the window) before PyAV is imported: PyAV's bundled libraries can make
``cv2.imshow`` hang otherwise.
"""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

from .errors import VitposeError

KEYS = {
    ord("q"): "quit",
    27: "quit",  # Esc
    ord(" "): "pause",
    ord("s"): "snapshot",
    ord("b"): "boxes",
    ord("i"): "ids",
    ord("h"): "hud",
    ord("+"): "more",
    ord("="): "more",
    ord("-"): "fewer",
}


class NoDisplayError(VitposeError, RuntimeError):
    """There is no screen to open a window on."""


def display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class Window:
    """A resizable window showing RGB frames; ``show`` returns the action of a pressed key."""

    def __init__(self, title: str = "vitpose-live"):
        if not display_available():
            raise NoDisplayError(
                "no display to open a window on: write a video with --output, or start the web UI with `python app.py`"
            )
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as error:
            raise NoDisplayError(f"cannot open a window: {str(error).strip().splitlines()[-1]}") from error
        self._shown = False

    def show(self, rgb: np.ndarray, wait_ms: int = 1) -> str | None:
        """Show a frame; the action of the key pressed meanwhile, "closed" when the window was closed."""
        if self._shown and self.closed:
            return "closed"
        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self._shown = True
        return self.poll(wait_ms)

    def poll(self, wait_ms: int = 1) -> str | None:
        key = cv2.waitKey(wait_ms)
        if self.closed:
            return "closed"
        return KEYS.get(key & 0xFF) if key >= 0 else None

    @property
    def closed(self) -> bool:
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass
