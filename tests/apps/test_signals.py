"""Signals: SIGTERM mid-run finalises the outputs like Ctrl-C.

Rows of the README's "Reliability" table (split out of the former tests/apps/test_reliability.py).
Every CLI run ends either with exit 0 and outputs that play, or with exit 2, one line on stderr
and no output file.
"""

from __future__ import annotations

import signal
import subprocess
import time

from support.media import make_clip, probe
from support.reliability import REPO, child_env, cli_command, keypoint_frames

# --- signals ------------------------------------------------------------------------------------


def test_sigterm_mid_run_finalises_the_video_and_keypoints_like_ctrl_c(tmp_path, pose_dir, detector_dir):
    """Stopped once 30 frames are done (the keypoints' first flush, so the moment does not depend
    on how well the video compresses): both outputs are finalised and agree. (Ctrl-C: test_cli.py.)"""
    clip = make_clip(tmp_path / "long.mp4", width=160, height=120, frames=600, audio=True)
    out, keypoints = tmp_path / "out.mp4", tmp_path / "k.jsonl"
    command = cli_command(pose_dir, detector_dir, "--source", clip, "--output", out, "--keypoints", keypoints,
                          "--max-persons", 1, "--no-progress")  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if keypoints.exists() and keypoints.read_text().count("\n") > 30:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 130, stderr
    assert "interrupted after" in stderr and "Traceback" not in stderr
    result = probe(out)
    assert 30 <= result["frames"] < 600 and result["video_codec"] == "h264" and result["audio_codec"] == "aac"
    assert len(keypoint_frames(keypoints)) == result["frames"]
