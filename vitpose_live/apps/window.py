"""The local OpenCV window: a thin shell that shows frames and turns keys into actions.

Import this (and create the window) before PyAV is imported: PyAV's bundled libraries can make
``cv2.imshow`` hang otherwise.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import os
import sys
import time
from typing import NamedTuple

import cv2
import numpy as np

from ..errors import VitposeError

KEYS = {
    ord("q"): "quit",
    27: "escape",  # Esc: release the followed person, or quit when nobody is followed
    ord("f"): "release",
    ord(" "): "pause",
    ord("s"): "snapshot",
    ord("b"): "boxes",
    ord("i"): "ids",
    ord("h"): "hud",
    ord("v"): "view",  # the followed person framed, or the full frame
    ord("+"): "more",
    ord("="): "more",
    ord("-"): "fewer",
}


class Pick(NamedTuple):
    """A left click on the picture, at its pixel ``(x, y)`` (the frame's own pixels, whatever the
    window's size): follow the person there."""

    x: int
    y: int


class NoDisplayError(VitposeError, RuntimeError):
    """There is no screen to open a window on."""


def display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def screen_size() -> tuple[int, int]:
    """The screen's width and height in pixels (1920x1080 when it cannot be asked)."""
    try:
        if sys.platform == "win32":
            metrics = ctypes.windll.user32.GetSystemMetrics
            return metrics(0), metrics(1)
        if os.environ.get("DISPLAY") and (size := _x11_screen_size()):
            return size
    except (OSError, AttributeError):
        pass
    return 1920, 1080


def _x11_screen_size() -> tuple[int, int] | None:
    library = ctypes.util.find_library("X11")
    if not library:
        return None
    x11 = ctypes.CDLL(library)
    x11.XOpenDisplay.argtypes, x11.XOpenDisplay.restype = [ctypes.c_char_p], ctypes.c_void_p
    x11.XDefaultScreen.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x11.XDisplayWidth.argtypes = x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    display = x11.XOpenDisplay(None)
    if not display:
        return None
    try:
        screen = x11.XDefaultScreen(display)
        return x11.XDisplayWidth(display, screen), x11.XDisplayHeight(display, screen)
    finally:
        x11.XCloseDisplay(display)


def fitted_size(width: int, height: int, screen: tuple[int, int]) -> tuple[int, int]:
    """The frame's size, scaled down (aspect ratio kept) to leave room for title bars and panels."""
    scale = min(1.0, 0.9 * screen[0] / width, 0.85 * screen[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class Window:
    """A resizable window showing RGB frames; ``show`` returns the action of a pressed key, or a
    :class:`Pick` for a left click.

    The window remembers only the last key pressed between two ``cv2.waitKey`` calls, so a
    consumer calls :meth:`pump` every few milliseconds while it waits for a frame: each key is
    queued, and ``show`` / ``poll`` hand them out one at a time. Clicks are queued with them, in
    the order they came (OpenCV calls back during ``waitKey``, on this thread).
    """

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
        self._size: tuple[int, ...] | None = None  # the (height, width) the window was fitted to
        self._keys: collections.deque[str | Pick] = collections.deque()
        cv2.setMouseCallback(title, self._mouse)

    def _mouse(self, event: int, x: int, y: int, flags: int, param) -> None:
        if event == cv2.EVENT_LBUTTONDOWN:
            self._keys.append(Pick(int(x), int(y)))

    def show(self, rgb: np.ndarray, wait_ms: int = 1) -> str | Pick | None:
        """Show a frame; the action of the key pressed meanwhile, "closed" when the window was closed."""
        if self._shown and self.closed:
            return "closed"
        if self._size != rgb.shape[:2]:  # open at the frame's size, fitted to the screen (not Qt's 400x300),
            cv2.resizeWindow(self.title, *fitted_size(rgb.shape[1], rgb.shape[0], screen_size()))  # and refit
            self._size = rgb.shape[:2]  # when the picture's shape changes (the framed view, and back)
        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self._shown = True
        return self.poll(wait_ms)

    def pump(self) -> None:
        """Queue the key pressed since the last call, if any (about a millisecond)."""
        key = cv2.waitKey(1)
        action = KEYS.get(key & 0xFF) if key >= 0 else None
        if action is not None:
            self._keys.append(action)

    def poll(self, wait_ms: int = 1) -> str | Pick | None:
        """The next queued action, waiting up to ``wait_ms`` for one; "closed" when the window was closed."""
        deadline = time.monotonic() + wait_ms / 1000
        self.pump()
        while not self._keys and time.monotonic() < deadline:
            self.pump()
        if self.closed:
            return "closed"
        return self._keys.popleft() if self._keys else None

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
