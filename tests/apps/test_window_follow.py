"""Picking a person with a click in the real OpenCV window, under Xvfb: the run loop shows a
scripted scene (two persons standing well apart, known boxes) in a :class:`Window`; xdotool
clicks on one of them through XTest, as a person with a mouse would; the follower and the HUD
then name that person; ``v`` shows them framed (the follow size) and ``v`` the full frame again;
Esc releases them, a click on the other and ``f`` likewise, and Esc with nobody followed quits.

The scene runs in a child process (Qt stays tied to the display it first opened); it prints one
JSON line per frame shown: the tracks and their boxes, whom the follower follows, the HUD's
following line, and where the picture sits on the screen.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.needs import need

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
TITLE = "vitpose-live-follow"
WIDTH, HEIGHT = 320, 240
A_BOX, B_BOX = (30, 30, 110, 210), (200, 40, 280, 220)  # xyxy, in the frame's pixels
VIEW = (120, 200)  # the framed view's width and height (portrait, as --follow-size)

SCENE = """
import itertools, json, sys, time
sys.path.insert(0, "tests")
import cv2, numpy as np
from vitpose_live.apps.window import Window
window = Window({title!r})  # before PyAV is imported
from support.media import drawn_frame
from support.scripted import THRESHOLD, ScriptedDetector
from vitpose_live.apps.viewer import Viewer
from vitpose_live.engine.recipe import EngineOptions, FrameSettings, build_engine
from vitpose_live.models.pose import PoseEstimator
from vitpose_live.outputs.base import Outputs
from vitpose_live.render import HudAnnotator, PoseAnnotator
from vitpose_live.runtime.following import FollowOptions, Following
from vitpose_live.runtime.run import RunOptions, run
from vitpose_live.types import Detections, Frame

pictures = [drawn_frame(i, {width}, {height}) for i in range(6)]
still = lambda index: Detections(np.array([{a}, {b}], np.float32), np.array([0.9, 0.8], np.float32))

class Endless:
    "The six pictures over and over, at about 20 frames/s, until the run closes it."
    closed = False
    def __iter__(self):
        for i in itertools.count():
            if self.closed:
                return
            time.sleep(0.05)
            yield Frame(pictures[i % len(pictures)], i, i / 20, time.monotonic())
    def close(self):
        self.closed = True

engine = build_engine(EngineOptions(settings=FrameSettings(det_threshold=THRESHOLD), tracking=True),
                      models=(PoseEstimator({pose_dir!r}, device="cpu"), ScriptedDetector(pictures, still)))
following = Following(FollowOptions(clicks=True, size={view}), live=True)
hud = []
said = following.hud_lines
following.hud_lines = lambda followed: hud.__setitem__(slice(None), said(followed)) or list(hud)
viewer = Viewer(window, PoseAnnotator(), HudAnnotator(), ".", engine, following)

def on_frame(result, picture, stats):
    quit = viewer(result, picture, stats)
    poses = result.poses
    ids = [] if poses.track_ids is None else poses.track_ids.tolist()
    if following.follower.person is not None and len(ids) == 2:
        cv2.imwrite({shot!r}, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    print(json.dumps({{"frame": result.frame.index, "ids": ids, "boxes": poses.boxes.tolist(),
                      "person": following.follower.person, "hud": hud[0] if hud else None,
                      "rect": list(cv2.getWindowImageRect(window.title)),
                      "shape": list(picture.shape[:2])}}), flush=True)
    return quit

run(Endless(), engine, Outputs([], []), RunOptions(live=True, draw=True, progress=False), hud=viewer.hud,
    on_frame=on_frame, on_idle=window.pump, following=following)
print("done", flush=True)
"""


DISPLAY = {}


def xdotool(*args: str) -> str:
    return subprocess.run(["xdotool", *args], check=True, capture_output=True, text=True, timeout=30,
                          env={**os.environ, **DISPLAY}).stdout


class Scene:
    """The child process's frames, read as they are shown."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.last: dict | None = None

    def until(self, what: str, predicate, frames: int = 400) -> dict:
        """The first frame (within ``frames`` more) for which ``predicate`` holds."""
        for _ in range(frames):
            line = self.process.stdout.readline()
            if not line or line.strip() == "done":
                break
            self.last = json.loads(line)
            if predicate(self.last):
                return self.last
        self.process.kill()  # its stderr ends only when it does
        pytest.fail(f"no frame where {what}; last: {self.last}; stderr: {self.process.stderr.read()[-2000:]}")


def track_at(frame: dict, box) -> int:
    """The track id of the person whose box is ``box``."""
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    distance = [abs((b[0] + b[2]) / 2 - centre[0]) + abs((b[1] + b[3]) / 2 - centre[1]) for b in frame["boxes"]]
    return frame["ids"][distance.index(min(distance))]


def click(window: str, frame: dict, x: float, y: float) -> None:
    """A left click on the frame's pixel (x, y): where the picture sits in the window, scaled."""
    geometry = dict(line.split("=") for line in xdotool("getwindowgeometry", "--shell", window).split())
    left, top, width, height = frame["rect"]
    shown_height, shown_width = frame["shape"]
    screen_x = int(geometry["X"]) + left + round(x * width / shown_width)
    screen_y = int(geometry["Y"]) + top + round(y * height / shown_height)
    xdotool("mousemove", "--sync", str(screen_x), str(screen_y))
    xdotool("click", "1")


def test_a_click_in_the_window_follows_that_person_and_esc_or_f_releases_them(xvfb, pose_dir, tmp_path):
    need(bool(shutil.which("xdotool")), "needs xdotool (Debian package 'xdotool')")
    shot = tmp_path / "followed.png"
    DISPLAY["DISPLAY"] = xvfb
    script = SCENE.format(title=TITLE, width=WIDTH, height=HEIGHT, view=VIEW, a=list(A_BOX), b=list(B_BOX), pose_dir=pose_dir,
                          shot=str(shot))
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env={**os.environ, "DISPLAY": xvfb},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    scene = Scene(process)
    try:
        window = xdotool("search", "--sync", "--onlyvisible", "--name", f"^{TITLE}$").split()[0]
        first = scene.until("both persons are tracked and the picture is shown",
                            lambda f: len(f["ids"]) == 2 and f["rect"][2] > 0)
        a, b = track_at(first, A_BOX), track_at(first, B_BOX)
        assert a != b and first["person"] is None and first["hud"].startswith("following nobody")

        click(window, first, (B_BOX[0] + B_BOX[2]) / 2, (B_BOX[1] + B_BOX[3]) / 2)
        picked = scene.until("the clicked person is followed", lambda f: f["person"] is not None)
        assert picked["person"] == b
        # the HUD of the frame after the click (the click lands while a frame is shown)
        shown = scene.until("the HUD names someone", lambda f: not f["hud"].startswith("following nobody"))
        assert shown["hud"] == f"following {b}" and shown["person"] == b

        xdotool("key", "v")  # the followed person framed, in place of the full frame
        framed = scene.until("the framed view is shown", lambda f: f["shape"] == [VIEW[1], VIEW[0]])
        click(window, framed, VIEW[0] / 2, VIEW[1] / 2)  # on the framed person: still them
        assert scene.until("a frame after the click", lambda f: f["frame"] > framed["frame"] + 3)["person"] == b
        xdotool("key", "v")
        assert scene.until("the full frame again", lambda f: f["shape"] == [HEIGHT, WIDTH])["person"] == b

        xdotool("key", "Escape")  # the pointer is on the window: the key goes to it
        released = scene.until("Esc released them", lambda f: f["person"] != b)
        assert released["person"] is None

        click(window, released, (A_BOX[0] + A_BOX[2]) / 2, A_BOX[1] + 20)
        assert scene.until("the other is followed", lambda f: f["person"] is not None)["person"] == a
        xdotool("key", "f")
        assert scene.until("f released them", lambda f: f["person"] != a)["person"] is None

        xdotool("key", "Escape")  # nobody followed: Esc quits
        assert process.wait(30) == 0, process.stderr.read()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if shot.exists():
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(shot, ARTIFACTS / "window-followed.png")
