"""The OpenCV window under Xvfb: its size on opening, and keys pressed in quick succession.

Each check runs in a child process: Qt stays tied to the display it first opened, and each test
has its own Xvfb.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vitpose_live.apps.window import fitted_size

REPO = Path(__file__).resolve().parents[2]

# Presses keys through the XTest extension, as a person at the keyboard would.
KEYBOARD = """
import ctypes, time
x11, xtst = ctypes.CDLL("libX11.so.6"), ctypes.CDLL("libXtst.so.6")
x11.XOpenDisplay.argtypes, x11.XOpenDisplay.restype = [ctypes.c_char_p], ctypes.c_void_p
x11.XStringToKeysym.argtypes, x11.XStringToKeysym.restype = [ctypes.c_char_p], ctypes.c_ulong
x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
x11.XFlush.argtypes = [ctypes.c_void_p]
xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
xtst.XTestFakeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_ulong]
display = x11.XOpenDisplay(None)

def point_at(x, y):  # without a window manager, keys go to the window under the pointer
    xtst.XTestFakeMotionEvent(display, -1, x, y, 0)
    x11.XFlush(display)

def press(char):
    code = x11.XKeysymToKeycode(display, x11.XStringToKeysym(char.encode()))
    xtst.XTestFakeKeyEvent(display, code, 1, 0)
    xtst.XTestFakeKeyEvent(display, code, 0, 0)
    x11.XFlush(display)
"""

OPEN = """
import numpy as np, cv2
from vitpose_live.apps.window import Window
window = Window()
for _ in range(30):
    window.show(np.zeros(({height}, {width}, 3), np.uint8))
_, _, width, height = cv2.getWindowImageRect(window.title)
print(width, height)
"""

TWO_KEYS_AT_THREE_FRAMES_PER_SECOND = KEYBOARD + """
import threading
import numpy as np
from vitpose_live.runtime.pipeline import Pipeline, Policy
from vitpose_live.types import Frame
from vitpose_live.apps.window import Window

def frames():
    for index in range(8):
        yield Frame(np.zeros((240, 320, 3), np.uint8), index, index / 30, time.monotonic())

def slow_model(frame):
    time.sleep(0.3)
    return frame

def typist():
    time.sleep(1.0)
    press("b"); time.sleep(0.04); press("i")  # both between two frames

window = Window()
window.show(np.zeros((240, 320, 3), np.uint8))
point_at(50, 50)
threading.Thread(target=typist, daemon=True).start()
actions = []
with Pipeline(frames(), slow_model, policy=Policy.FIFO) as pipeline:
    for frame in pipeline.results(idle=window.pump):
        actions.append(window.show(frame.image))
while (action := window.poll(10)) is not None:
    actions.append(action)
print(" ".join(a for a in actions if a))
"""


def run_on(display: str, script: str) -> str:
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env={**os.environ, "DISPLAY": display},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("width, height", [(640, 480), (1280, 720), (400, 1600)])
def test_the_window_opens_at_the_frames_size_fitted_to_the_screen(xvfb, width, height):
    shown = tuple(int(v) for v in run_on(xvfb, OPEN.format(width=width, height=height)).split())
    expected = fitted_size(width, height, (1024, 768))  # the Xvfb screen
    assert abs(shown[0] - expected[0]) <= 2 and abs(shown[1] - expected[1]) <= 2, shown
    assert shown[0] <= 1024 and shown[1] <= 768


@pytest.mark.parametrize(
    "frame, screen, expected",
    [((640, 480), (1920, 1080), (640, 480)), ((3840, 2160), (1920, 1080), (1632, 918)), ((1000, 3000), (1920, 1080), (306, 918))],
)
def test_a_large_frame_is_scaled_down_keeping_its_aspect_ratio(frame, screen, expected):
    assert fitted_size(*frame, screen) == expected


def test_two_keys_pressed_in_quick_succession_at_three_frames_per_second_are_both_seen(xvfb):
    assert run_on(xvfb, TWO_KEYS_AT_THREE_FRAMES_PER_SECOND) == "boxes ids"
