import os
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore", message=".*torchvision.*")

from support.models import detector_processor, pose_processor, tiny_rtdetr, tiny_vitpose  # noqa: E402


@pytest.fixture(scope="session")
def pose_model():
    return tiny_vitpose()


@pytest.fixture(scope="session")
def detector_model():
    return tiny_rtdetr()


@pytest.fixture(scope="session")
def pose_dir(tmp_path_factory, pose_model):
    """The tiny pose model saved like a checkpoint (weights + config + processor config)."""
    path = tmp_path_factory.mktemp("vitpose-tiny")
    pose_model.save_pretrained(path)
    pose_processor().save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def detector_dir(tmp_path_factory, detector_model):
    """Saved with a 320x320 input (the real one is 640x640) to keep end-to-end tests quick."""
    path = tmp_path_factory.mktemp("rtdetr-tiny")
    detector_model.save_pretrained(path)
    detector_processor(320).save_pretrained(path)
    return str(path)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def run_cli(pose_dir, detector_dir, capsys):
    """Run the command line in-process with the tiny models; returns (exit code, stderr)."""
    from vitpose_live.apps.cli import main

    def run(*args):
        code = main(["--model", pose_dir, "--detector", detector_dir, "--device", "cpu", "--no-progress", *map(str, args)])
        return code, capsys.readouterr().err

    return run


@pytest.fixture
def xvfb():
    """A virtual X display (Debian's xvfb) for the window tests; its name, e.g. ":93"."""
    from support.needs import need

    need(bool(shutil.which("Xvfb")), "needs Xvfb (.ci/run installs it)")
    display = ":%d" % (90 + os.getpid() % 9)
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    yield display
    server.terminate()
    server.wait(5)


@pytest.fixture(scope="module")
def small_clips(tmp_path_factory) -> dict:
    """The reliability tests' originals: 96x64, 20 frames at 20 fps with AAC audio, in MP4 (+faststart) and MKV."""
    from support.media import make_clip

    folder = tmp_path_factory.mktemp("small-clips")
    return {
        ext: make_clip(folder / f"clip{ext}", width=96, height=64, frames=20, fps=20)
        for ext in (".mp4", ".mkv")
    }
