"""The command line end to end: real decode, tiny real models, real H.264 encode, keypoints JSONL."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import gradio
import numpy as np
import pytest
from support.interrupted import stop_mid_run
from support.media import make_clip, make_image, probe

from vitpose_live.outputs.records import read_keypoints_jsonl

GRADIO_VIDEOS = Path(gradio.__file__).parent / "media_assets" / "videos"
REPO = Path(__file__).resolve().parents[2]




def run_subprocess(*args, env_extra=None, **kwargs):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "app.py", *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, **kwargs)


def assert_one_clear_line(stderr: str, *words: str):
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(("vitpose-live: error:", "app.py: error:")) and "Traceback" not in stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_a_clip_with_audio_becomes_an_annotated_h264_video_with_its_audio_and_keypoints(run_cli, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", width=320, height=240, frames=24, fps=24)
    out, keypoints = tmp_path / "out.mp4", tmp_path / "k.jsonl"
    code, err = run_cli("--source", clip, "--output", out, "--keypoints", keypoints, "--max-persons", 3)
    assert code == 0 and err.startswith("done: 24 frame(s)")
    source, result = probe(clip), probe(out)
    assert result["video_codec"] == "h264" and result["pix_fmt"] == "yuv420p"
    assert (result["width"], result["height"], result["frames"]) == (320, 240, 24)
    assert result["average_rate"] == pytest.approx(24, abs=0.01)
    assert result["times"] == pytest.approx(source["times"], abs=1e-3)
    assert result["audio_codec"] == "aac"
    assert result["audio_duration"] == pytest.approx(source["audio_duration"], abs=0.1)
    header, frames = read_keypoints_jsonl(keypoints)
    assert header["keypoint_names"][0] == "nose" and len(header["edges"]) == 19
    assert (header["width"], header["height"], header["fps"]) == (320, 240, pytest.approx(24))
    assert [f["frame"] for f in frames] == list(range(24))
    assert frames[1]["time"] == pytest.approx(1 / 24, abs=1e-3)
    persons = frames[0]["persons"]
    assert 1 <= len(persons) <= 3
    assert len(persons[0]["keypoints"]) == 17 and len(persons[0]["keypoints"][0]) == 3 and len(persons[0]["box"]) == 4


def test_a_video_for_models_on_the_cpu_is_decoded_on_the_reading_thread_whose_cores_they_share(tmp_path):
    from vitpose_live.apps.cli import parse_request
    from vitpose_live.apps.job import open_input
    from vitpose_live.sources import classify

    clip = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=3, audio=False)
    request = parse_request(["--source", str(clip), "--device", "cpu"])

    with open_input(request, classify(str(clip))) as source:
        assert source.threads == 1
        assert len(list(source)) == 3


@pytest.mark.parametrize("name,audio", [("a.mp4", "aac"), ("b.avi", "mp3")])
def test_the_clips_bundled_with_gradio_keep_frame_count_fps_size_and_audio(run_cli, tmp_path, name, audio):
    clip = GRADIO_VIDEOS / name
    out, keypoints = tmp_path / "out.mp4", tmp_path / "k.jsonl"
    code, err = run_cli("--source", clip, "--output", out, "--keypoints", keypoints, "--max-persons", 2)
    assert code == 0, err
    source, result = probe(clip), probe(out)
    assert result["video_codec"] == "h264" and result["pix_fmt"] == "yuv420p"
    assert (result["width"], result["height"]) == (source["width"], source["height"])
    assert result["frames"] == source["frames"]
    assert result["times"] == pytest.approx(source["times"], abs=2e-3)  # the source's timestamps, gaps included
    if name.endswith(".mp4"):
        assert result["average_rate"] == pytest.approx(source["average_rate"], abs=0.05)
    assert result["audio_codec"] == audio and result["audio_duration"] > 0
    _, frames = read_keypoints_jsonl(keypoints)
    assert len(frames) == source["frames"]


def test_a_video_without_audio_gives_a_video_without_audio(run_cli, tmp_path):
    clip = make_clip(tmp_path / "silent.mp4", frames=10, audio=False)
    code, _ = run_cli("--source", clip, "--output", tmp_path / "out.mp4")
    assert code == 0
    assert probe(tmp_path / "out.mp4")["audio_codec"] is None


def test_an_odd_sized_video_is_encoded_with_every_frame(run_cli, tmp_path):
    clip = make_clip(tmp_path / "odd.mkv", width=641, height=479, frames=8, codec="mpeg4", audio=False)
    code, _ = run_cli("--source", clip, "--output", tmp_path / "out.mp4")
    assert code == 0
    result = probe(tmp_path / "out.mp4")
    assert result["frames"] == 8 and (result["width"], result["height"]) == (642, 480)  # padded by one pixel


@pytest.mark.parametrize("mode", ["rgb", "gray", "rgba", "rgb16"])
def test_an_image_becomes_an_annotated_image_and_one_keypoints_line(run_cli, tmp_path, mode):
    image = tmp_path / "photo.png"
    make_image(image, width=200, height=150, mode=mode)
    out, keypoints = tmp_path / "out.jpg", tmp_path / "k.jsonl"
    code, err = run_cli("--source", image, "--output", out, "--keypoints", keypoints)
    assert code == 0, err
    import cv2

    assert cv2.imread(str(out)).shape == (150, 200, 3)
    header, frames = read_keypoints_jsonl(keypoints)
    assert len(frames) == 1 and header["fps"] is None


def test_no_persons_gives_empty_keypoint_lines_and_an_unannotated_video(run_cli, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=6, audio=False)
    code, _ = run_cli("--source", clip, "--output", tmp_path / "out.mp4", "--keypoints", tmp_path / "k.jsonl", "--det-threshold", 1.0)
    assert code == 0
    _, frames = read_keypoints_jsonl(tmp_path / "k.jsonl")
    assert [f["persons"] for f in frames] == [[]] * 6
    assert probe(tmp_path / "out.mp4")["frames"] == 6


def test_frames_in_batches_give_the_same_keypoints_as_one_at_a_time(run_cli, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", width=320, height=240, frames=11, audio=False)
    for batch in (1, 4):
        code, err = run_cli("--source", clip, "--output", tmp_path / f"out{batch}.mp4",
                            "--keypoints", tmp_path / f"k{batch}.jsonl", "--batch", batch)  # fmt: skip
        assert code == 0 and err.startswith("done: 11 frame(s)")
    one, batched = (read_keypoints_jsonl(tmp_path / f"k{batch}.jsonl")[1] for batch in (1, 4))
    assert [f["frame"] for f in batched] == list(range(11))
    for a, b in zip(one, batched):
        assert len(a["persons"]) == len(b["persons"]) > 0
        for p, q in zip(a["persons"], b["persons"]):
            assert np.allclose(p["keypoints"], q["keypoints"], atol=1e-2) and np.allclose(p["box"], q["box"], atol=1e-2)
    assert probe(tmp_path / "out4.mp4")["frames"] == 11


def corrupt_files(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    truncated = make_clip(tmp_path / "full.mp4", frames=30, audio=False, faststart=False)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(truncated.read_bytes()[:200])
    return {"text": text, "truncated": cut}


@pytest.mark.parametrize(
    "case,words",
    [
        ("missing", ["missing.mp4", "not found"]),
        ("text", ["notes.mp4"]),
        ("truncated", ["cut.mp4"]),
        ("no_output", ["--output"]),
        ("file_as_dir", ["notes.mp4' is not a directory"]),
        ("unwritable", ["'/proc/out.mp4'"]),  # even as root, and before the (here missing) models load
        ("bad_extension", ["--output"]),
        ("bad_threshold", ["--det-threshold"]),
        ("bad_batch", ["--batch"]),
    ],
)
def test_bad_input_is_one_clear_line_and_leaves_no_file(run_cli, tmp_path, case, words):
    files = corrupt_files(tmp_path)
    clip = make_clip(tmp_path / "ok.mp4", frames=3, audio=False)
    out = tmp_path / "out.mp4"
    args = {
        "missing": ["--source", tmp_path / "missing.mp4", "--output", out],
        "text": ["--source", files["text"], "--output", out],
        "truncated": ["--source", files["truncated"], "--output", out],
        "no_output": ["--source", clip],
        "file_as_dir": ["--source", clip, "--output", tmp_path / "notes.mp4/sub/out.mp4"],
        "unwritable": ["--source", clip, "--output", "/proc/out.mp4", "--model", tmp_path / "no-model"],
        "bad_extension": ["--source", clip, "--output", tmp_path / "out.gif"],
        "bad_threshold": ["--source", clip, "--output", out, "--det-threshold", 2],
        "bad_batch": ["--source", clip, "--output", out, "--batch", 0],
    }[case]
    code, err = run_cli(*args)
    assert code == 2
    assert_one_clear_line(err, *words)
    assert not out.exists()


def test_outputs_in_missing_folders_get_their_parents_created_as_output_dir_does(run_cli, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    out, keypoints = tmp_path / "new/a/out.mp4", tmp_path / "other/b/k.jsonl"
    code, err = run_cli("--source", clip, "--output", out, "--keypoints", keypoints)
    assert code == 0, err
    assert probe(out)["frames"] == 3 and len(keypoints.read_text().splitlines()) == 4


def test_a_missing_model_is_named_in_one_line_without_a_traceback(tmp_path, detector_dir):
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    result = run_subprocess("--source", clip, "--output", tmp_path / "out.mp4", "--model", "no-such-org/vitpose", "--detector", detector_dir, "--device", "cpu", timeout=300)
    assert result.returncode == 2
    assert_one_clear_line(result.stderr, "no-such-org/vitpose", "--model")
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("first_write", ["video", "keypoints"])
@pytest.mark.parametrize("io_processes", [(), ("--io-processes",)], ids=["threads", "io-processes"])
def test_a_stop_landing_between_a_frames_picture_and_its_keypoints_line_still_writes_both(
    run_cli, tmp_path, monkeypatch, first_write, stop_signal, io_processes
):
    """The signal is raised on purpose right after one of the two writes of frame 10 (not by
    luck): the run still writes the other, so video and keypoints hold the same 11 frames. With
    ``--io-processes`` the video's write is the hand-over of the frame to the render process."""
    from vitpose_live.apps import cli
    from vitpose_live.outputs.keypoints import KeypointsJsonlSink
    from vitpose_live.outputs.video import VideoFileSink
    from vitpose_live.procs.render_process import RenderProcessSink

    video = (RenderProcessSink, "write_scene") if io_processes else (VideoFileSink, "write")
    sink, method = {"video": video, "keypoints": (KeypointsJsonlSink, "write")}[first_write]
    real_write, calls = getattr(sink, method), []

    def write_then_signal(self, *args, **kwargs):
        real_write(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 11:
            signal.raise_signal(stop_signal)

    monkeypatch.setattr(sink, method, write_then_signal)
    previous = signal.getsignal(signal.SIGTERM)
    cli.stop_on_sigterm()
    try:
        clip = make_clip(tmp_path / "in.mp4", width=160, height=120, frames=40, audio=True)
        out, keypoints = tmp_path / "out.mp4", tmp_path / "k.jsonl"
        code, err = run_cli("--source", clip, "--output", out, "--keypoints", keypoints, "--batch", 1, *io_processes)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 130 and "interrupted after 11 frame(s)" in err, err
    assert probe(out)["frames"] == 11 and probe(out)["audio_codec"] == "aac"
    assert len(read_keypoints_jsonl(keypoints)[1]) == 11


def as_in_a_terminal():
    """A child started from a background job inherits an ignored SIGINT (and Python then keeps
    ignoring it); in a terminal, Ctrl-C reaches the program. Restore that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_mid_run_leaves_a_finalised_playable_video(tmp_path, pose_dir, detector_dir, stop_signal):
    stop_mid_run(tmp_path, pose_dir, detector_dir, lambda process: process.send_signal(stop_signal),
                 preexec_fn=as_in_a_terminal)


def test_a_mistake_is_reported_before_torch_loads(tmp_path):
    probe_script = (
        "import sys, time; start = time.monotonic(); from vitpose_live.apps.cli import main; "
        f"code = main(['--source', {str(tmp_path / 'missing.mp4')!r}, '--output', {str(tmp_path / 'o.mp4')!r}]); "
        "print(code, 'torch' in sys.modules, round(time.monotonic() - start, 2))"
    )
    result = subprocess.run([sys.executable, "-c", probe_script], cwd=REPO, capture_output=True, text=True, timeout=60)
    code, torch_loaded, _seconds = result.stdout.split()
    assert code == "2" and torch_loaded == "False", result.stderr
    assert_one_clear_line(result.stderr, "missing.mp4", "file not found")


@pytest.mark.parametrize(
    "args, words",
    [
        (["--snapshot-dir", "no-such-folder"], ["--snapshot-dir", "not a folder"]),
        (["--det-threshold", "1.5"], ["--det-threshold", "between 0 and 1"]),
        (["--max-persons", "0"], ["--max-persons", "at least 1"]),
    ],
)
def test_argument_mistakes_are_one_line(run_cli, tmp_path, args, words):
    image = make_image(tmp_path / "in.png")
    code, err = run_cli("--source", tmp_path / "in.png", "--output", tmp_path / "out.png", *args)
    assert code == 2 and image is not None
    assert_one_clear_line(err, *words)


def test_settings_that_work_but_surprise_get_a_note(run_cli, tmp_path):
    make_image(tmp_path / "in.png")
    code, err = run_cli("--source", tmp_path / "in.png", "--output", tmp_path / "out.png", "--dtype", "fp16",
                        "--max-persons", 100_000_000)
    assert code == 0, err
    assert "note: --dtype fp16 on a CPU runs several times slower than fp32" in err
    assert "note: the detector finds at most" in err and "--max-persons 100000000" in err


def test_bfloat16_on_a_cpu_gets_the_slow_note_only_without_bfloat16_instructions(run_cli, tmp_path):
    import torch

    make_image(tmp_path / "in.png")
    code, err = run_cli("--source", tmp_path / "in.png", "--output", tmp_path / "out.png", "--dtype", "bf16")
    assert code == 0, err
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert ("note: --dtype bf16 on a CPU runs several times slower" in err) is not native


def test_snapshots_go_to_the_folder_given(tmp_path):
    from vitpose_live.engine.engine import Result, StageTimes
    from vitpose_live.render import HudAnnotator, PoseAnnotator
    from vitpose_live.types import Frame, Poses
    from vitpose_live.apps.viewer import Viewer

    picture = np.zeros((48, 64, 3), np.uint8)
    result = Result(Frame(picture, 7, 0.25), Poses.empty(), StageTimes())
    stem = Viewer(None, PoseAnnotator(), HudAnnotator(), tmp_path).snapshot(picture, result)
    assert stem.parent == tmp_path
    assert Path(f"{stem}.png").is_file() and '"frame": 7' in Path(f"{stem}.json").read_text()


@pytest.mark.parametrize("frames, output, works", [(1, "out.png", True), (3, "out.mp4", True), (3, "out.png", False)])
def test_a_one_frame_gif_is_an_image_and_an_animated_one_a_video(run_cli, tmp_path, frames, output, works):
    from PIL import Image

    pictures = [Image.fromarray(np.full((48, 64, 3), 40 + 60 * i, np.uint8)).convert("P") for i in range(frames)]
    pictures[0].save(tmp_path / "in.gif", save_all=True, append_images=pictures[1:], duration=100)  # a palette GIF
    code, err = run_cli("--source", tmp_path / "in.gif", "--output", tmp_path / output)
    assert (code == 0) is works, err
    assert (tmp_path / output).exists() is works
    if not works:
        assert_one_clear_line(err, "--output for a video")
