"""Checking models before loading them: both named at once, and no waiting on a Hub that does not answer."""

import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import huggingface_hub.constants
import pytest
from support.media import make_clip

from vitpose_live.models import loading
from vitpose_live.models.loading import ModelLoadError, check_models

REPO = Path(__file__).resolve().parents[2]
POSE_ID, DETECTOR_ID = "usyd-community/vitpose-base-simple", "PekingU/rtdetr_r50vd_coco_o365"
CLOSED_PORT = "http://127.0.0.1:9"  # discard: nothing listens there


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """An empty local cache and a Hub at ``endpoint``; returns a function that sets them."""

    def use(endpoint: str = CLOSED_PORT, *, offline: bool = False, cache: Path | None = None):
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", offline)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache or tmp_path / "empty-cache"))
        monkeypatch.setattr(loading, "_hub_down_at", None)

    return use


def cache_checkpoint(cache: Path, repo_id: str, checkpoint: str) -> None:
    """Put a saved checkpoint in the Hub cache layout, as a download would have."""
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    shutil.copytree(checkpoint, folder / "snapshots" / ("0" * 40))


class NoSuchModelHub(http.server.BaseHTTPRequestHandler):
    """A Hub that answers, and has no model at all."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": "Repository not found"}')

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("offline", [False, True], ids=["hub-unreachable", "HF_HUB_OFFLINE"])
def test_both_models_are_named_in_one_line_within_seconds_without_the_hub(hub, offline):
    hub(offline=offline)
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as caught:
        check_models(POSE_ID, DETECTOR_ID)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert POSE_ID in message and DETECTOR_ID in message and "\n" not in message
    assert "--model DIR" in message and "--detector DIR" in message and "hf download" in message
    assert [p.what for p in caught.value.problems] == ["pose model", "detector"]


def test_an_id_the_hub_does_not_have_is_named_and_a_good_directory_passes(hub, detector_dir):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NoSuchModelHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hub(f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(ModelLoadError) as caught:
            check_models("no-such-org/vitpose", detector_dir)
    finally:
        server.shutdown()
    message = str(caught.value)
    assert "'no-such-org/vitpose' (--model): no such directory, nor a model on the Hugging Face Hub" in message
    assert detector_dir not in message and "hf download" not in message


@pytest.mark.parametrize(
    "spec, reason",
    [("./models/vitpose", "no such directory"), ("not a valid id!", "no such directory, and not a Hub id")],
)
def test_a_path_that_is_not_there_is_named_without_asking_the_hub(hub, detector_dir, spec, reason):
    hub()
    with pytest.raises(ModelLoadError, match=f"'{spec}' \\(--model\\): {reason}"):
        check_models(spec, detector_dir)
    assert loading._hub_down_at is None  # the Hub was not asked


def test_checkpoint_directories_and_ready_models_pass_without_the_hub(hub, pose_dir, detector_dir, pose_model):
    hub(offline=True)
    check_models(pose_dir, detector_dir)
    check_models(pose_model, detector_dir)


def test_a_directory_without_a_config_is_named(hub, tmp_path, detector_dir):
    hub()
    with pytest.raises(ModelLoadError, match="no config.json there"):
        check_models(str(tmp_path), detector_dir)


def test_a_cached_model_loads_from_the_cache_while_the_hub_is_down_without_retries(hub, tmp_path, pose_dir):
    from vitpose_live import PoseEstimator

    cache = tmp_path / "cache"
    cache_checkpoint(cache, "someone/tiny-vitpose", pose_dir)
    hub(cache=cache)
    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_models("someone/tiny-vitpose", None)
        pose = PoseEstimator("someone/tiny-vitpose", device="cpu")
    assert time.monotonic() - started < 10 and pose.skeleton.keypoint_names[0] == "nose"


@pytest.mark.parametrize("offline", ["0", "1"])
def test_the_cli_without_the_hub_fails_in_seconds_naming_both_models_without_retry_noise(tmp_path, offline):
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    env = {**os.environ, "HF_ENDPOINT": CLOSED_PORT, "HF_HUB_OFFLINE": offline, "HF_HOME": str(tmp_path / "hf")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "app.py", "--source", clip, "--output", tmp_path / "out.mp4", "--device", "cpu"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    elapsed = time.monotonic() - started
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    from vitpose_live.engine.profiles import CPU_PROFILE

    assert lines[0].startswith("app.py: error: cannot load")
    assert CPU_PROFILE.pose_model in lines[0] and CPU_PROFILE.detector in lines[0]
    assert "WARNING" not in result.stderr and "Retry" not in result.stderr
    assert elapsed < 40  # importing torch takes most of it; the library's retries took over 23 s per model
