"""Outputs that cannot be written: a disk full at open, while frames are written, or while finalising.

Rows of the README's "Reliability" table (split out of the former tests/apps/test_reliability.py).
Every CLI run ends either with exit 0 and outputs that play, or with exit 2, one line on stderr
and no output file.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from support.media import make_image
from support.reliability import REPO, assert_one_clear_line, child_env, cli_command

# --- outputs that cannot be written ----------------------------------------------------------------

FULL_DISK = [
    # (output file name, its flag, kind of source)
    pytest.param("out.mp4", "--output", "video", id="video"),
    pytest.param("out.png", "--output", "image", id="image"),
    pytest.param("k.jsonl", "--keypoints", "video", id="keypoints"),
    pytest.param("stats.json", "--stats-json", "video", id="stats-json"),
]  # fmt: skip


@pytest.mark.parametrize("name, flag, kind", FULL_DISK)
def test_a_full_disk_is_one_clear_line_and_leaves_no_file(run_cli, tmp_path, small_clips, name, flag, kind):
    """The output is a link to /dev/full: every write fails with ENOSPC ("no space left")."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    output = tmp_path / name
    output.symlink_to("/dev/full")
    source = small_clips[".mp4"]
    if kind == "image":
        source = tmp_path / "photo.png"
        make_image(source, width=64, height=48)
    keypoints = [] if flag == "--keypoints" else ["--keypoints", tmp_path / "other.jsonl"]

    code, err = run_cli("--source", source, flag, output, *keypoints, "--max-persons", 1)

    assert code == 2, err
    assert_one_clear_line(err, name, "no space left")
    assert not output.exists() and not output.is_symlink()  # nothing left that looks like a result
    assert not (tmp_path / "other.jsonl").exists()


def _limit_file_size(limit: int):
    def apply() -> None:  # in the child: files stop growing at ``limit`` bytes (EFBIG), like a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an ignored signal stays ignored across exec

    return apply


def test_a_disk_that_fills_up_while_finalising_is_one_clear_line_and_leaves_no_file(
    tmp_path, pose_dir, detector_dir, small_clips
):
    """Files stop growing at 6 kB (RLIMIT_FSIZE in a child process): the video fails when it is
    finalised, the keypoints when their last lines are flushed."""
    out, keypoints = tmp_path / "out.mp4", tmp_path / "k.jsonl"
    command = cli_command(pose_dir, detector_dir, "--source", small_clips[".mp4"], "--output", out,
                          "--keypoints", keypoints, "--max-persons", 1, "--no-progress")  # fmt: skip
    child = subprocess.run(command, cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=180,
                           preexec_fn=_limit_file_size(6000))  # fmt: skip

    assert child.returncode == 2, child.stderr[-2000:]
    assert_one_clear_line(child.stderr, "out.mp4")
    assert not out.exists() and not keypoints.exists()


def noise_clip(path: Path, frames: int = 60) -> Path:
    """160x120 random pixels: x264 cannot compress them, so the annotated video grows fast."""
    rng = np.random.default_rng(5)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for _ in range(frames):
            picture = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())
    return path


# The CLI, noting in a file whether the video sink ever got to finalising (an empty file: within any size limit).
CLI_NOTING_CLOSE = """import sys
from pathlib import Path
from vitpose_live.outputs.video import VideoFileSink
close = VideoFileSink.close
def noting_close(self):
    Path(sys.argv[1]).touch()
    return close(self)
VideoFileSink.close = noting_close
from vitpose_live.apps.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_a_disk_that_fills_up_while_frames_are_written_is_one_clear_line_and_leaves_no_file(
    tmp_path, pose_dir, detector_dir
):
    """The annotated noise grows about 8 kB a frame; files stop growing at 64 kB (RLIMIT_FSIZE in
    the child), so a frame's write fails long before the last frame, and the sink never finalises."""
    source, out, closed = noise_clip(tmp_path / "noise.mp4"), tmp_path / "out.mp4", tmp_path / "closed"
    arguments = cli_command(pose_dir, detector_dir, "--source", source, "--output", out, "--max-persons", 1,
                            "--no-progress")[2:]  # fmt: skip
    child = subprocess.run([sys.executable, "-c", CLI_NOTING_CLOSE, closed, *arguments], cwd=REPO, env=child_env(),
                           capture_output=True, text=True, timeout=180, preexec_fn=_limit_file_size(65536))  # fmt: skip

    assert child.returncode == 2, child.stderr[-2000:]
    assert_one_clear_line(child.stderr, "out.mp4", "file too large")
    assert not closed.exists()  # it failed while writing frames, not while finalising
    assert not out.exists()
