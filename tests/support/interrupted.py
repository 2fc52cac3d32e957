"""A command-line run stopped by a signal once 30 frames are done, checked the way every stop
must end: exit 130, one "interrupted" line, a finalised H.264 video holding exactly the frames
that have a keypoints line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from support.media import make_clip, probe

from vitpose_live.outputs.records import read_keypoints_jsonl

REPO = Path(__file__).resolve().parents[2]


def stop_mid_run(folder: Path, pose_dir, detector_dir, stop: Callable[[subprocess.Popen], None], *extra: str,
                 **popen) -> subprocess.Popen:
    """Run the CLI on a 450-frame clip, call ``stop(process)`` after 30 frames, check the ending;
    the finished process."""
    clip = make_clip(folder / "long.mp4", width=320, height=240, frames=450, audio=True)
    out, keypoints = folder / "out.mp4", folder / "k.jsonl"
    process = subprocess.Popen(
        [sys.executable, "app.py", "--source", clip, "--output", out, "--keypoints", keypoints, "--model", pose_dir,
         "--detector", detector_dir, "--device", "cpu", "--max-persons", "2", *extra],
        cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, **popen,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not keypoints.exists() or keypoints.read_text().count("\n") <= 30):
        time.sleep(0.2)  # 30 frames done (keypoints are flushed every 30)
    stop(process)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "interrupted after" in stderr and "Traceback" not in stderr
    result = probe(out)
    assert 30 <= result["frames"] < 450 and result["video_codec"] == "h264"
    assert len(read_keypoints_jsonl(keypoints)[1]) == result["frames"]
    return process
