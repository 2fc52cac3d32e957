"""`--io-processes`: decoding, and drawing + encoding, in processes of their own, frames through
shared memory. Same files as the threaded path; a dying child is one line, never a hang; no
shared memory is left behind; Ctrl-C and SIGTERM still finalise the video (also
``test_cli.py::test_a_stop_landing_between…[io-processes-…]``: the same 11 frames both ways)."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gradio
import numpy as np
import pytest
from support.interrupted import stop_mid_run
from support.media import make_clip, probe

from vitpose_live.procs import shared_frames
from vitpose_live.outputs.keypoints import KeypointsJsonlSink
from vitpose_live.sources import SourceError, VideoFileSource
from vitpose_live.procs.decode_process import DecodeProcessSource

GRADIO_VIDEOS = Path(gradio.__file__).parent / "media_assets" / "videos"
REPO = Path(__file__).resolve().parents[2]


def segments(pid: int = os.getpid()) -> list[str]:
    """The shared-memory segments a run in process ``pid`` made and has not unlinked."""
    return sorted(name for name in os.listdir("/dev/shm") if name.startswith(f"{shared_frames.NAME_PREFIX}{pid}_"))


def pictures(path: Path) -> list[np.ndarray]:
    with VideoFileSource(path) as video:
        return [frame.image for frame in video]


def differences(same: list[np.ndarray], other: list[np.ndarray]) -> dict[int, int]:
    """Frame index -> how many pixels differ, for the frames that differ."""
    assert len(same) == len(other)
    return {n: int((a != b).any(axis=2).sum()) for n, (a, b) in enumerate(zip(same, other)) if not np.array_equal(a, b)}


@pytest.fixture
def annotate_both_ways(pose_dir, detector_dir):
    """Annotate a clip threaded (into folder/threads) and with --io-processes (folder/processes),
    each in a fresh process as people run it: this test process's state (OpenCV's and FFmpeg's,
    after the Ray tests) can move a chroma sample of the threaded encode by a level or two."""

    def both(clip: Path, folder: Path, *args) -> tuple[Path, Path]:
        for way, extra in (("threads", ()), ("processes", ("--io-processes",))):
            (folder / way).mkdir()
            done = subprocess.run(
                [sys.executable, "app.py", "--source", clip, "--output", folder / way / "out.mp4", "--keypoints",
                 folder / way / "k.jsonl", "--model", pose_dir, "--detector", detector_dir, "--device", "cpu",
                 "--no-progress", *map(str, args), *extra],
                cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, check=False,
            )
            assert done.returncode == 0, done.stderr
        return folder / "threads", folder / "processes"

    return both


@pytest.fixture(autouse=True)
def no_leftovers():
    """Every test here ends with no child process running and no segment left in /dev/shm."""
    yield
    assert not multiprocessing.active_children()
    assert segments() == []


def test_a_clip_with_audio_gives_the_threaded_paths_video_keypoints_and_audio(annotate_both_ways, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", width=320, height=240, frames=36, fps=24, audio=True)
    threads, processes = annotate_both_ways(clip, tmp_path, "--max-persons", 3, "--show-boxes")
    assert (processes / "k.jsonl").read_bytes() == (threads / "k.jsonl").read_bytes()
    same, other = pictures(processes / "out.mp4"), pictures(threads / "out.mp4")
    assert len(same) == len(other) == 36
    assert differences(same, other) == {}
    result, reference = probe(processes / "out.mp4"), probe(threads / "out.mp4")
    assert result["times"] == reference["times"] and result["audio_codec"] == "aac"
    assert result["audio_duration"] == pytest.approx(reference["audio_duration"], abs=1e-3)


def test_a_clip_bundled_with_gradio_gives_the_threaded_paths_files(annotate_both_ways, tmp_path):
    threads, processes = annotate_both_ways(GRADIO_VIDEOS / "b.mp4", tmp_path, "--max-persons", 2)
    assert (processes / "k.jsonl").read_bytes() == (threads / "k.jsonl").read_bytes()
    same, other = pictures(processes / "out.mp4"), pictures(threads / "out.mp4")
    assert len(same) == probe(GRADIO_VIDEOS / "b.mp4")["frames"]
    assert differences(same, other) == {}
    assert probe(processes / "out.mp4")["audio_codec"] == "aac"


def test_keypoints_alone_come_from_the_decode_process_unchanged(run_cli, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", width=160, height=120, frames=20, audio=False)
    for way, extra in (("threads", ()), ("processes", ("--io-processes",))):
        code, err = run_cli("--source", clip, "--keypoints", tmp_path / f"{way}.jsonl", "--batch", 3, *extra)
        assert code == 0, err
    assert (tmp_path / "processes.jsonl").read_bytes() == (tmp_path / "threads.jsonl").read_bytes()


def test_the_stats_name_the_process_steps_and_the_hud_is_drawn_there(run_cli, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", width=160, height=120, frames=12)
    stats = tmp_path / "stats.json"
    code, err = run_cli("--source", clip, "--output", tmp_path / "out.mp4", "--stats-json", stats, "--hud",
                        "--io-processes")
    assert code == 0, err
    import json

    stage_ms, cpu_s = (json.loads(stats.read_text())[key] for key in ("stage_ms", "cpu_s"))
    assert set(cpu_s) == {"this_process", "decode_process", "render_process"} and min(cpu_s.values()) > 0
    assert stage_ms["render_process.draw"] > 0 and stage_ms["render_process.encode"] > 0
    assert stage_ms["decode_process.decode"] > 0
    hud_corner = pictures(tmp_path / "out.mp4")[5][6:20, 6:40]
    assert hud_corner.max() > 200 and hud_corner.min() < 40  # white text on the dark box


def test_a_killed_decode_process_ends_the_iteration_with_one_line_within_seconds(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", width=160, height=120, frames=60, audio=False)
    source = DecodeProcessSource(clip, slots=4)
    frames = iter(source)
    next(frames)
    os.kill(source._child.pid, signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"^the decode process ended unexpectedly \(killed by SIGKILL\)$"):
        for _ in frames:  # the slots already filled come first
            pass
    assert time.monotonic() - started < 3
    source.close()


def test_closing_ends_an_iteration_waiting_for_slots_and_the_child_within_a_second(tmp_path):
    """Every slot held and none handed back: the decode process waits, the reader waits; closing
    from another thread (as a run ends) ends both."""
    import threading

    clip = make_clip(tmp_path / "in.mp4", width=160, height=120, frames=30, audio=False)
    source = DecodeProcessSource(clip, slots=2)
    source.ring.hand_over = True  # as if a render process were to free them
    frames = iter(source)
    held = [next(frames), next(frames)]
    closer = threading.Timer(0.3, source.close)
    closer.start()
    started = time.monotonic()
    assert list(frames) == []
    closer.join()
    assert time.monotonic() - started < 1.3 and not multiprocessing.active_children()
    assert len(held) == 2


@pytest.mark.parametrize("victim", ["decode", "drawing and encoding"])
def test_a_child_killed_mid_run_is_one_clear_line_and_leaves_no_file(run_cli, tmp_path, monkeypatch, victim):
    clip = make_clip(tmp_path / "in.mp4", width=160, height=120, frames=80, audio=True)
    out, keypoints = tmp_path / "out.mp4", tmp_path / "k.jsonl"
    real_write, written = KeypointsJsonlSink.write, []

    def write_then_kill(self, *args, **kwargs):
        real_write(self, *args, **kwargs)
        written.append(1)
        if len(written) == 5:
            child = next(c for c in multiprocessing.active_children() if c.name == f"vitpose-{victim}")
            os.kill(child.pid, signal.SIGKILL)

    monkeypatch.setattr(KeypointsJsonlSink, "write", write_then_kill)
    started = time.monotonic()
    code, err = run_cli("--source", clip, "--output", out, "--keypoints", keypoints, "--batch", 2, "--io-processes")
    assert time.monotonic() - started < 30
    assert code == 2 and err.count("\n") == 1, err
    assert f"the {victim} process ended unexpectedly (killed by SIGKILL)" in err and "Traceback" not in err
    assert not out.exists() and not keypoints.exists()


def test_an_output_the_child_cannot_open_is_the_threaded_paths_one_line(run_cli, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", width=160, height=120, frames=6)
    errors = []
    for extra in ((), ("--io-processes",)):
        code, err = run_cli("--source", clip, "--output", clip, *extra)  # the input itself
        errors.append((code, err))
    assert errors[0] == errors[1] and errors[0][0] == 2 and "it is the input file" in errors[0][1]
    assert clip.stat().st_size > 0


def test_too_little_shared_memory_is_refused_in_one_line(run_cli, tmp_path, monkeypatch):
    clip = make_clip(tmp_path / "in.mp4", width=160, height=120, frames=6)

    class Full:
        f_bavail, f_frsize = 10, 4096

    monkeypatch.setattr(shared_frames.os, "statvfs", lambda path: Full())
    code, err = run_cli("--source", clip, "--output", tmp_path / "out.mp4", "--io-processes")
    assert code == 2 and err.count("\n") == 1, err
    assert "needs 1 MiB of shared memory but /dev/shm has 0 MiB free: run without --io-processes" in err


def test_ctrl_c_to_the_whole_process_group_leaves_a_playable_video_and_clean_shared_memory(
    tmp_path, pose_dir, detector_dir
):
    """A terminal's Ctrl-C reaches the children too: they ignore it and the parent finalises."""
    process = stop_mid_run(tmp_path, pose_dir, detector_dir, lambda process: os.killpg(process.pid, signal.SIGINT),
                           "--io-processes", start_new_session=True)
    assert segments(process.pid) == []
    children = subprocess.run(["pgrep", "-g", str(process.pid), "-f", "spawn_main"], capture_output=True)
    assert children.stdout == b""  # (multiprocessing's resource tracker may still be on its way out)


def test_children_are_spawned_not_forked():
    assert shared_frames.CONTEXT.get_start_method() == "spawn"
