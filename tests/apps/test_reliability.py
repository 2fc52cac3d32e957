"""The reliability matrix: what users point this at (broken downloads, phone videos, 1x1 and 4K,
crowds, full disks, GPUs out of memory) and what they get back.

Each test is a row of the README's "Reliability" table; the rows already covered elsewhere
(test_cli.py, test_sources.py, test_sinks.py, test_live_sources.py, test_pipeline.py) are not
repeated here. Every CLI run ends either with exit 0 and outputs that play, or with exit 2, one
line on stderr and no output file.

Run as a script (``python tests/test_reliability.py fuzz WORK_DIR CASES SEED CLIP...``) it is the fuzz
worker that ``test_randomly_damaged_videos_give_an_error_or_valid_frames_never_a_hang_or_crash``
starts in a child process, so that a hang or a crash in FFmpeg fails the test instead of CI.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from support.models import detector_processor
from support.media import _add_audio, _write_tone, drawn_frame, make_clip, make_image, make_song, probe

REPO = Path(__file__).resolve().parents[2]
FUZZ_CASES = 300  # corrupted copies decoded by the fuzz worker, split over the .mp4 and the .mkv
FUZZ_SEED = 20240611
CASE_SECONDS = 20.0  # one damaged file decoding longer than this is a hang


# --- helpers ------------------------------------------------------------------------------------


def cli_command(pose_dir, detector_dir, *args) -> list[str]:
    return [sys.executable, "app.py", "--model", pose_dir, "--detector", detector_dir, "--device", "cpu",
            *map(str, args)]  # fmt: skip


def child_env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def assert_one_clear_line(stderr: str, *words: str) -> None:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("vitpose-live: error:") and "Traceback" not in stderr, stderr
    for word in words:
        assert word in lines[0], lines[0]


def keypoint_frames(path: Path) -> list[dict]:
    from vitpose_live.outputs.sinks import read_keypoints_jsonl

    return read_keypoints_jsonl(path)[1]


def first_picture(path: Path) -> tuple[np.ndarray, int]:
    """The first decoded RGB picture of a video as stored (no display matrix applied) and the
    rotation a player would apply to it."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24"), int(frame.rotation or 0)


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --- damaged files: the fuzz ---------------------------------------------------------------------


def corrupt(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """``data`` damaged one way: a few bit flips (half of the time within the first KiB, where
    the headers are), a zeroed byte range, or cut short at a random point."""
    data = bytearray(data)
    n = len(data)
    if kind == "flip":
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(0, n if rng.random() < 0.5 else min(n, 1024)))
            data[i] ^= 1 << int(rng.integers(0, 8))
    elif kind == "zero":
        start = int(rng.integers(0, n))
        stop = min(n, start + int(rng.integers(1, 4096)))
        data[start:stop] = bytes(stop - start)
    elif kind == "truncate":
        del data[int(rng.integers(0, n)) :]
    else:
        raise ValueError(kind)
    return bytes(data)


FUZZ_KINDS = ("flip", "zero", "truncate")


def _decode_case(path: Path) -> dict:
    """What ``VideoFileSource`` makes of one file: an error or frames, checked."""
    from vitpose_live.sources import SourceError, VideoFileSource

    try:
        with VideoFileSource(path) as source:
            info = source.info
            frames = list(source)
    except SourceError as error:
        message = str(error)
        if not message or "\n" in message:
            return {"outcome": "bad message", "detail": repr(message)}
        return {"outcome": "source error"}
    except Exception as error:  # noqa: BLE001 - anything else is what the fuzz looks for
        return {"outcome": "unexpected exception", "detail": f"{type(error).__name__}: {error}"}
    problems = []
    if not frames:
        problems.append("opened but yielded nothing")
    for i, frame in enumerate(frames):
        image = frame.image
        if image.dtype != np.uint8 or image.shape != (info.height, info.width, 3) or not image.flags.c_contiguous:
            problems.append(f"frame {i}: {image.dtype} {image.shape}, expected uint8 {(info.height, info.width, 3)}")
        if frame.index != i:
            problems.append(f"frame {i} has index {frame.index}")
        if frame.time is None or not math.isfinite(frame.time):
            problems.append(f"frame {i} has time {frame.time}")
    if problems:
        return {"outcome": "bad frames", "detail": "; ".join(problems[:3])}
    return {"outcome": "frames", "frames": len(frames)}


def fuzz(originals: list[Path], folder: Path, cases: int, seed: int, case_seconds: float = CASE_SECONDS) -> dict:
    """Decode ``cases`` damaged copies of ``originals``; counts of outcomes per container and kind.

    Each case runs on its own thread; one that does not finish within ``case_seconds`` is
    reported and the process ends with status 3 (a hung FFmpeg call cannot be cancelled).
    """
    import logging

    logging.disable(logging.WARNING)  # every damaged file logs its decode error
    rng = np.random.default_rng(seed)
    originals = [Path(p) for p in originals]
    data = {p: p.read_bytes() for p in originals}
    counts: dict[str, dict[str, int]] = {}
    odd: list[str] = []
    slowest = 0.0
    for case in range(cases):
        original = originals[case % len(originals)]
        kind = FUZZ_KINDS[(case // len(originals)) % len(FUZZ_KINDS)]
        path = folder / f"case{case:04d}{original.suffix}"
        path.write_bytes(corrupt(data[original], kind, rng))
        print(f"case {case}: {kind} {original.name} -> {path.name}", flush=True)
        outcome: dict = {}
        started = time.monotonic()
        worker = threading.Thread(target=lambda: outcome.update(_decode_case(path)), daemon=True)
        worker.start()
        worker.join(case_seconds)
        if worker.is_alive():
            print(f"HANG: {path} did not finish decoding in {case_seconds} s", flush=True)
            os._exit(3)
        slowest = max(slowest, time.monotonic() - started)
        key = f"{original.suffix} {kind}"
        name = outcome["outcome"]
        if name == "frames":
            name = "all frames" if outcome["frames"] >= 20 else "some frames"
        counts.setdefault(key, {})
        counts[key][name] = counts[key].get(name, 0) + 1
        if "detail" in outcome:
            odd.append(f"{path.name} ({kind} {original.name}): {outcome['outcome']}: {outcome['detail']}")
        else:
            path.unlink()  # keep only the files worth looking at
    return {"cases": cases, "counts": counts, "problems": odd, "slowest_case_s": round(slowest, 3)}


@pytest.fixture(scope="module")
def small_clips(tmp_path_factory) -> dict[str, Path]:
    """The fuzz's originals: 96x64, 20 frames at 20 fps with AAC audio, in MP4 (+faststart) and MKV."""
    folder = tmp_path_factory.mktemp("small-clips")
    return {
        ext: make_clip(folder / f"clip{ext}", width=96, height=64, frames=20, fps=20)
        for ext in (".mp4", ".mkv")
    }


def test_randomly_damaged_videos_give_an_error_or_valid_frames_never_a_hang_or_crash(tmp_path, small_clips):
    """Hundreds of seeded bit flips, zeroed ranges and truncations through ``VideoFileSource``
    in a child process: each ends in a one-line SourceError or in frames of the announced size."""
    work = tmp_path / "cases"
    work.mkdir()
    clips = map(str, small_clips.values())
    command = [sys.executable, __file__, "fuzz", str(work), str(FUZZ_CASES), str(FUZZ_SEED), *clips]
    try:
        child = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240, env=child_env())
    except subprocess.TimeoutExpired as error:
        last = (error.stdout or b"").decode(errors="replace").strip().splitlines()[-1:]
        pytest.fail(f"the fuzz did not finish in 240 s; last case started: {last}")
    tail = child.stdout.strip().splitlines()[-3:]
    assert child.returncode == 0, f"the fuzz worker ended with {child.returncode} (a crash?): {tail}\n{child.stderr[-2000:]}"
    report = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=1))  # outcome counts, shown with -s
    assert report["problems"] == []
    totals: dict[str, int] = {}
    for outcomes in report["counts"].values():
        for name, count in outcomes.items():
            totals[name] = totals.get(name, 0) + count
    assert sum(totals.values()) == FUZZ_CASES
    assert set(totals) <= {"source error", "some frames", "all frames"}
    assert totals.get("source error", 0) > 0 and totals.get("some frames", 0) > 0  # both paths exercised
    assert len(report["counts"]) == 2 * len(FUZZ_KINDS)


CLI_DAMAGE = [
    # (original, how): a fixed sample of the fuzz's damage, through the whole command line
    (".mp4", "cut at 3%"),
    (".mp4", "cut at 40%"),
    (".mp4", "cut at 90%"),
    (".mp4", "zeros over 40%-45%"),
    (".mp4", "zeros over the first 64 bytes"),
    (".mkv", "cut at 10%"),
    (".mkv", "cut at 55%"),
    (".mkv", "zeros over 30%-40%"),
    (".mkv", "16 flipped bits"),
    (".mkv", "random bytes"),
]


def damage(data: bytes, how: str) -> bytes:
    n = len(data)
    if how.startswith("cut at"):
        return data[: n * int(how.split()[2].rstrip("%")) // 100]
    if how.startswith("zeros over the first"):
        count = int(how.split()[4])
        return bytes(count) + data[count:]
    if how.startswith("zeros over"):
        start, stop = (n * int(v.rstrip("%")) // 100 for v in how.split()[2].split("-"))
        return data[:start] + bytes(stop - start) + data[stop:]
    rng = np.random.default_rng(sum(map(ord, how)))
    if how == "random bytes":
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    damaged = bytearray(data)
    for i in rng.integers(0, n, int(how.split()[0])):
        damaged[i] ^= 1 << int(rng.integers(0, 8))
    return bytes(damaged)


@pytest.mark.parametrize("original, how", CLI_DAMAGE, ids=[f"{o[1:]}: {h}" for o, h in CLI_DAMAGE])
def test_a_damaged_video_through_the_cli_plays_as_far_as_it_can_or_fails_in_one_line(
    run_cli, tmp_path, small_clips, original, how
):
    source = tmp_path / f"damaged{original}"
    source.write_bytes(damage(small_clips[original].read_bytes(), how))
    out, keypoints = tmp_path / "out.mp4", tmp_path / "k.jsonl"

    code, err = run_cli("--source", source, "--output", out, "--keypoints", keypoints, "--max-persons", 1)

    if code == 0:
        result = probe(out)
        assert result["video_codec"] == "h264" and 1 <= result["frames"] <= 20
        assert len(keypoint_frames(keypoints)) == result["frames"]
        assert err.startswith("done:"), err
    else:
        assert code == 2, err
        assert_one_clear_line(err, source.name)
        assert not out.exists() and not keypoints.exists()


# --- files that are not videos, or hold no pictures -------------------------------------------------


def zero_frame_video(path: Path) -> Path:
    """An AVI with a video stream header and not one frame."""
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        container.start_encoding()
    return path


def audio_only(path: Path) -> Path:
    """An M4A-like MP4 with one AAC track and no video stream at all."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = _add_audio(container, "aac", 44100)
        _write_tone(container, stream, 0.5, 44100)
    return path


def random_file(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    return path


NOT_VIDEOS = [
    # (what, make(tmp_path) -> source, words of the one line)
    ("zero-frame video", lambda tmp: zero_frame_video(tmp / "zero.avi"), ["zero.avi", "no frames"]),
    ("audio only", lambda tmp: audio_only(tmp / "voice.mp4"), ["voice.mp4", "no video stream"]),
    ("music with cover art", lambda tmp: make_song(tmp / "song.mp3"), ["song.mp3", "no video stream"]),
    ("random bytes named .mkv", lambda tmp: random_file(tmp / "x.mkv"), ["x.mkv"]),
    ("a folder named .mp4", lambda tmp: (tmp / "dir.mp4", (tmp / "dir.mp4").mkdir())[0], ["dir.mp4"]),
]  # fmt: skip


@pytest.mark.parametrize("what, make, words", NOT_VIDEOS, ids=[row[0] for row in NOT_VIDEOS])
def test_a_file_without_pictures_is_one_clear_line_and_no_output(run_cli, tmp_path, what, make, words):
    source = make(tmp_path)
    out, keypoints = tmp_path / "out.mp4", tmp_path / "k.jsonl"

    code, err = run_cli("--source", source, "--output", out, "--keypoints", keypoints)

    assert code == 2
    assert_one_clear_line(err, *words)
    assert not out.exists() and not keypoints.exists()


def _without_read_permission(tmp_path, small_clips):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode (the /proc/self/mem case runs as root)")
    source = tmp_path / "private.mp4"
    shutil.copy(small_clips[".mp4"], source)
    source.chmod(0)
    return source


def _reading_fails_even_for_root(tmp_path, small_clips):
    source = tmp_path / "private.mp4"
    source.symlink_to("/proc/self/mem")  # reading at offset 0 is an I/O error for every user
    return source


@pytest.mark.skipif(os.name != "posix" or not os.path.exists("/proc/self/mem"), reason="needs Linux's /proc")
@pytest.mark.parametrize("make, reason", [(_without_read_permission, "private.mp4"),
                                          (_reading_fails_even_for_root, "input/output error")],
                         ids=["mode 000", "reads fail for root too"])  # fmt: skip
def test_an_unreadable_file_is_one_clear_line(run_cli, tmp_path, small_clips, make, reason):
    source = make(tmp_path, small_clips)
    try:
        code, err = run_cli("--source", source, "--output", tmp_path / "out.mp4")
    finally:
        if not source.is_symlink():
            source.chmod(0o644)
    assert code == 2
    assert_one_clear_line(err, "private.mp4", reason)
    assert not (tmp_path / "out.mp4").exists()


# --- phone videos, screen recordings, sizes, image formats ------------------------------------------


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_a_rotated_phone_video_comes_out_upright(run_cli, tmp_path, rotation):
    clip = make_clip(tmp_path / "phone.mp4", width=96, height=64, frames=3, audio=False, rotation=rotation)
    out = tmp_path / "out.mp4"

    code, err = run_cli("--source", clip, "--output", out, "--det-threshold", 1.0)  # nothing drawn over it

    assert code == 0, err
    picture, stored_rotation = first_picture(out)
    upright = np.rot90(drawn_frame(0, 96, 64), (rotation // 90) % 4)  # what a player shows for the source
    assert stored_rotation == 0  # turned in the pixels, so players must not turn it again
    assert picture.shape == upright.shape
    assert mean_difference(picture, upright) < 6
    assert mean_difference(picture, np.rot90(upright, 2)) > 12  # and not upside down


def test_a_variable_frame_rate_recording_keeps_its_timestamps(run_cli, tmp_path):
    times = [0.0, 0.03, 0.1, 0.12, 0.5, 0.52, 1.5]
    clip = make_clip(tmp_path / "screen.mp4", width=96, height=64, frames=len(times), times=times, audio=False)
    out, keypoints = tmp_path / "out.mp4", tmp_path / "k.jsonl"

    code, err = run_cli("--source", clip, "--output", out, "--keypoints", keypoints, "--max-persons", 1)

    assert code == 0, err
    assert probe(out)["times"] == pytest.approx(times, abs=1e-3)
    assert [f["time"] for f in keypoint_frames(keypoints)] == pytest.approx(times, abs=1e-3)


def test_a_1x1_video_and_a_1x1_image_are_annotated(run_cli, tmp_path):
    clip = make_clip(tmp_path / "dot.mkv", width=1, height=1, frames=3, codec="ffv1", audio=False)
    image = tmp_path / "dot.png"
    make_image(image, width=1, height=1)

    code, err = run_cli("--source", clip, "--output", tmp_path / "out.mp4", "--keypoints", tmp_path / "k.jsonl",
                        "--max-persons", 1)  # fmt: skip
    assert code == 0, err
    result = probe(tmp_path / "out.mp4")
    assert (result["width"], result["height"], result["frames"]) == (2, 2, 3)  # H.264 4:2:0 needs even sizes
    assert len(keypoint_frames(tmp_path / "k.jsonl")) == 3

    code, err = run_cli("--source", image, "--output", tmp_path / "out.png", "--max-persons", 1)
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "out.png")).shape == (1, 1, 3)


def test_a_4k_clip_keeps_its_size_frames_and_audio(run_cli, tmp_path):
    clip = make_clip(tmp_path / "uhd.mp4", width=3840, height=2160, frames=3)
    out = tmp_path / "out.mp4"

    code, err = run_cli("--source", clip, "--output", out, "--max-persons", 2)

    assert code == 0, err
    result = probe(out)
    assert (result["width"], result["height"], result["frames"]) == (3840, 2160, 3)
    assert result["audio_codec"] == "aac"


@pytest.mark.parametrize("mode, name", [("gray16", "gray16.png"), ("rgb16", "rgb16.tif"), ("rgba", "rgba.webp")])
def test_more_image_formats_are_annotated(run_cli, tmp_path, mode, name):
    """(8-bit gray, RGBA and 16-bit RGB PNGs are in test_cli.py.)"""
    image = tmp_path / name
    make_image(image, width=90, height=70, mode=mode)

    code, err = run_cli("--source", image, "--output", tmp_path / "out.png", "--keypoints", tmp_path / "k.jsonl")

    assert code == 0, err
    assert cv2.imread(str(tmp_path / "out.png")).shape == (70, 90, 3)
    assert len(keypoint_frames(tmp_path / "k.jsonl")) == 1


# --- crowds and bad boxes ---------------------------------------------------------------------------


def crowd_boxes(count: int, width: int = 1920, height: int = 1080, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sizes = rng.uniform([60, 150], [220, 300], (count, 2))
    corners = rng.uniform(0, [width - 220, height - 300], (count, 2))
    return np.concatenate([corners, corners + sizes], axis=1).astype(np.float32)


def test_fifty_persons_in_a_1080p_frame_get_fifty_poses_in_time_linear_in_persons(pose_model, rng):
    from vitpose_live.models.pose import PoseEstimator

    estimator = PoseEstimator(pose_model, device="cpu")
    image = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    boxes = crowd_boxes(50)
    estimator(image, boxes[:2])  # first-call costs

    def seconds(count: int) -> float:
        best = math.inf
        for _ in range(2):
            started = time.perf_counter()
            poses = estimator(image, boxes[:count])
            best = min(best, time.perf_counter() - started)
        assert poses.keypoints.shape == (count, 17, 2) and poses.scores.shape == (count, 17)
        assert np.isfinite(poses.keypoints).all() and np.array_equal(poses.boxes, boxes[:count])
        return best

    ten, fifty = seconds(10), seconds(50)
    assert fifty < 8 * ten, f"10 persons {ten:.2f} s, 50 persons {fifty:.2f} s"  # linear is 5x; quadratic 25x


def test_fifty_persons_through_the_cli(run_cli, tmp_path):
    """The tiny detector finds persons everywhere: ``--max-persons 50`` keeps 50 on every frame."""
    clip = make_clip(tmp_path / "crowd.mp4", width=1920, height=1080, frames=2, audio=False)
    out, keypoints = tmp_path / "out.mp4", tmp_path / "k.jsonl"

    code, err = run_cli("--source", clip, "--output", out, "--keypoints", keypoints,
                        "--max-persons", 50, "--det-threshold", 0.05)  # fmt: skip

    assert code == 0, err
    frames = keypoint_frames(keypoints)
    assert [len(f["persons"]) for f in frames] == [50, 50]
    assert all(len(p["keypoints"]) == 17 for p in frames[1]["persons"])
    assert probe(out)["frames"] == 2


class BoxesDetector:
    """Stands in for ``PersonDetector``: the same boxes for every image."""

    name = "fixed boxes"

    def __init__(self, boxes, scores):
        from vitpose_live.types import Detections

        self.detections = Detections(np.asarray(boxes, np.float32), np.asarray(scores, np.float32))

    def __call__(self, image, threshold=None, max_persons=None):
        return self.detections

    def detect_batch(self, images, threshold=None, max_persons=None):
        return [self.detections for _ in images]


GOOD_BOXES = [[10, 10, 60, 120], [100, 20, 150, 110]]
BAD_BOXES = [
    [np.nan, 0, 50, 50],
    [30, 30, 30, 80],  # no width
    [0, 0, np.inf, 40],
    [80, 90, 40, 20],  # upside down
    [-np.inf, -np.inf, np.nan, np.nan],
]


def frames_of(count: int, rng) -> list:
    from vitpose_live.types import Frame

    image = rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
    return [Frame(image, i, i / 30, time.monotonic()) for i in range(count)]


def test_nan_and_degenerate_boxes_from_the_detector_are_skipped(pose_model, rng):
    from vitpose_live.engine.engine import PoseEngine
    from vitpose_live.models.pose import PoseEstimator

    boxes = [BAD_BOXES[0], GOOD_BOXES[0], *BAD_BOXES[1:], GOOD_BOXES[1]]
    scores = [0.9] * len(boxes)
    engine = PoseEngine(PoseEstimator(pose_model, device="cpu"), BoxesDetector(boxes, scores))

    one = engine(frames_of(1, rng)[0]).poses
    batch = engine.process_batch(frames_of(2, rng))

    for poses in (one, batch[0].poses, batch[1].poses):
        assert np.array_equal(poses.boxes, np.array(GOOD_BOXES, np.float32))
        assert poses.keypoints.shape == (2, 17, 2) and np.isfinite(poses.keypoints).all()


@pytest.mark.parametrize("det_every", [1, 3])
def test_degenerate_finite_boxes_are_skipped_with_tracking(pose_model, rng, det_every):
    from vitpose_live.engine.engine import PoseEngine
    from vitpose_live.models.pose import PoseEstimator
    from vitpose_live.engine.tracking import TrackingStage

    boxes = [BAD_BOXES[1], GOOD_BOXES[0], BAD_BOXES[3], GOOD_BOXES[1]]
    engine = PoseEngine(PoseEstimator(pose_model, device="cpu"), BoxesDetector(boxes, [0.9] * 4),
                        det_every=det_every, tracking=TrackingStage())  # fmt: skip

    results = [engine(frame) for frame in frames_of(7, rng)]

    assert len(results[-1].poses) == 2 and len(set(results[-1].poses.track_ids)) == 2
    for result in results:
        assert len(result.poses) <= 2 and np.isfinite(result.poses.keypoints).all()


@pytest.mark.parametrize("det_every", [1, 3])
def test_nan_boxes_are_skipped_with_tracking(pose_model, rng, det_every):
    from vitpose_live.engine.engine import PoseEngine
    from vitpose_live.models.pose import PoseEstimator
    from vitpose_live.engine.tracking import TrackingStage

    boxes = [BAD_BOXES[0], GOOD_BOXES[0], BAD_BOXES[2], GOOD_BOXES[1], BAD_BOXES[4]]
    engine = PoseEngine(PoseEstimator(pose_model, device="cpu"), BoxesDetector(boxes, [0.9] * 5),
                        det_every=det_every, tracking=TrackingStage())  # fmt: skip

    results = [engine(frame) for frame in frames_of(7, rng)]

    assert len(results[-1].poses) == 2
    for result in results:
        assert np.isfinite(result.poses.keypoints).all()


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
from vitpose_live.outputs.sinks import VideoFileSink
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


# --- GPU out of memory --------------------------------------------------------------------------


class RunsOutOfMemoryAbove:
    """A model that raises ``torch.OutOfMemoryError`` for batches above ``limit`` items."""

    def __init__(self, model, limit: int):
        self.model, self.limit = model, limit
        self.batches: list[int] = []

    def __call__(self, pixel_values, **kwargs):
        self.batches.append(int(pixel_values.shape[0]))
        if pixel_values.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.model(pixel_values=pixel_values, **kwargs)


@pytest.mark.parametrize("flip_test", [False, True])
def test_out_of_memory_halves_the_pose_batch_and_gives_the_same_poses(pose_model, rng, flip_test):
    from vitpose_live.models.pose import PoseEstimator

    per_crop = 2 if flip_test else 1  # with flip_test a forward pass holds each crop twice
    normal = PoseEstimator(pose_model, device="cpu", flip_test=flip_test)
    squeezed = PoseEstimator(pose_model, device="cpu", flip_test=flip_test)
    squeezed.model = RunsOutOfMemoryAbove(pose_model, limit=5 * per_crop)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    boxes = crowd_boxes(11, 640, 480)

    expected, got = normal(image, boxes), squeezed(image, boxes)

    assert squeezed.model.batches == [11 * per_crop, 5 * per_crop, 5 * per_crop, 1 * per_crop]  # 11 → 5 (half)
    assert squeezed.max_batch == 5
    assert np.allclose(got.keypoints, expected.keypoints, atol=1e-4)
    assert np.allclose(got.scores, expected.scores, atol=1e-5)
    tried = len(squeezed.model.batches)
    squeezed(image, boxes)  # the smaller batch is kept: no more failed attempts
    assert max(squeezed.model.batches[tried:]) <= 5 * per_crop


def test_out_of_memory_with_a_single_crop_is_one_line_after_halving_down_to_one(pose_model, rng):
    from vitpose_live.models.device import DeviceMemoryError
    from vitpose_live.models.pose import PoseEstimator

    estimator = PoseEstimator(pose_model, device="cpu")
    estimator.model = RunsOutOfMemoryAbove(pose_model, limit=0)

    with pytest.raises(DeviceMemoryError) as caught:
        estimator(rng.integers(0, 256, (100, 100, 3), dtype=np.uint8), [[10, 10, 60, 90]] * 11)
    assert estimator.model.batches == [11, 5, 2, 1]
    assert caught.value.one_line() == str(caught.value)
    assert "out of memory on cpu with a single crop in the pose model" in str(caught.value)


def test_out_of_memory_halves_the_detector_batch_and_gives_the_same_detections(detector_model, rng):
    from vitpose_live.models.detector import PersonDetector

    normal = PersonDetector(detector_model, processor=detector_processor(320), device="cpu", threshold=0.3)
    squeezed = PersonDetector(detector_model, processor=detector_processor(320), device="cpu", threshold=0.3)
    squeezed.model = RunsOutOfMemoryAbove(detector_model, limit=3)
    frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(8)]

    expected, got = normal.detect_batch(frames), squeezed.detect_batch(frames)

    assert squeezed.model.batches == [8, 4, 2, 2, 2, 2] and squeezed.max_batch == 2
    for a, b in zip(expected, got):
        assert np.allclose(a.boxes, b.boxes, atol=1e-3) and np.allclose(a.scores, b.scores, atol=1e-5)
    squeezed.detect_batch(frames)
    assert squeezed.model.batches[6:] == [2, 2, 2, 2]  # the smaller batch is kept


def test_out_of_memory_in_the_detector_with_one_frame_ends_the_cli_in_one_line(run_cli, tmp_path, small_clips,
                                                                                 monkeypatch):  # fmt: skip
    from vitpose_live.models.detector import PersonDetector

    def always_out_of_memory(self, pixel_values):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore lines")

    monkeypatch.setattr(PersonDetector, "forward", always_out_of_memory)
    out = tmp_path / "out.mp4"

    code, err = run_cli("--source", small_clips[".mp4"], "--output", out, "--batch", 4)

    assert code == 2
    backing_off = [line for line in err.splitlines() if line.startswith("WARNING")]  # 4 → 2 → 1 frames
    assert all("detector batches are now at most" in line for line in backing_off)
    error = "\n".join(line for line in err.splitlines() if not line.startswith("WARNING"))
    assert_one_clear_line(error, "out of memory on cpu with a single frame in the detector", "--detector")
    assert not out.exists()


# --- models that do not load --------------------------------------------------------------------


CORRUPT_CHECKPOINTS = [
    ("garbage weights", lambda d: (d / "model.safetensors").write_bytes(np.random.default_rng(2).bytes(4096))),
    ("truncated weights", lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:3000])),
    ("empty weights", lambda d: (d / "model.safetensors").write_bytes(b"")),
    ("config not json", lambda d: (d / "config.json").write_text("{not json")),
]  # fmt: skip


@pytest.mark.parametrize("what, spoil", CORRUPT_CHECKPOINTS, ids=[row[0] for row in CORRUPT_CHECKPOINTS])
@pytest.mark.parametrize("role", ["pose", "detector"])
def test_a_checkpoint_directory_with_corrupt_files_is_a_model_load_error_naming_it(
    tmp_path, pose_dir, detector_dir, role, what, spoil
):
    from vitpose_live.models.detector import PersonDetector
    from vitpose_live.models.loading import ModelLoadError
    from vitpose_live.models.pose import PoseEstimator

    checkpoint = tmp_path / f"{role}-checkpoint"
    shutil.copytree(pose_dir if role == "pose" else detector_dir, checkpoint)
    spoil(checkpoint)
    load, flag = (PoseEstimator, "--model") if role == "pose" else (PersonDetector, "--detector")

    with pytest.raises(ModelLoadError) as caught:
        load(str(checkpoint), device="cpu")

    message = str(caught.value)
    assert str(checkpoint) in message and flag in message and "\n" not in message


def test_a_corrupt_checkpoint_through_the_cli_is_one_line(run_cli, tmp_path, pose_dir, small_clips):
    checkpoint = tmp_path / "vitpose"
    shutil.copytree(pose_dir, checkpoint)
    (checkpoint / "model.safetensors").write_bytes(np.random.default_rng(3).bytes(4096))
    out = tmp_path / "out.mp4"

    code, err = run_cli("--source", small_clips[".mp4"], "--output", out, "--model", checkpoint)

    assert code == 2
    assert_one_clear_line(err, str(checkpoint), "--model")
    assert not out.exists()


# --- soak ----------------------------------------------------------------------------------------


def load_soak():
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import soak
    finally:
        sys.path.remove(str(REPO / "bench"))
    return soak


SOAK_WARMUP, SOAK_FITTED = 300, 2000  # processed frames: left out, then fitted


@pytest.mark.parametrize("policy, frames", [("fifo", SOAK_WARMUP + SOAK_FITTED), ("latest", 400)])
def test_a_soak_keeps_memory_threads_and_files_flat_and_the_counts_consistent(
    pose_model, detector_model, policy, frames
):
    """``bench/soak.py`` in small (10,000 frames there; bench/results/soak-*.json). FIFO processes
    every frame, so its RSS slope is fitted over 2,000 frames after the warm-up: at most 4 KiB a frame."""
    soak = load_soak()
    report = soak.soak(frames, policy=policy, width=160, height=120, warmup=SOAK_WARMUP, pose_model=pose_model,
                       detector_model=detector_model)  # fmt: skip

    print(soak.table(report))  # shown with -s
    assert report["ok"], report["problems"]
    assert report["frames_in"] == frames == report["frames_processed"] + report["frames_dropped"]
    if policy == "fifo":
        assert report["frames_dropped"] == 0 and report["persons_per_processed_frame"] > 0
        assert report["rss_mb"]["slope_fitted_frames"] == SOAK_FITTED
        assert report["rss_mb"]["slope_bytes_per_frame"] <= soak.RSS_SLOPE_LIMIT == 4096


@pytest.mark.parametrize("leak, seen", [(0, False), (10_000, True), (30_000, True)])
def test_the_soak_verdict_sees_a_leak_of_ten_kb_per_frame_through_allocator_noise(leak, seen):
    """RSS samples as a run gives them: 500 MiB, and 0-2 arenas of 2 MiB that the allocator takes
    and returns at random (up to 4 MiB of noise: at worst 2 kB a frame of slope), plus ``leak``
    bytes per frame."""
    soak = load_soak()
    rng = np.random.default_rng(1)
    arenas = np.clip(np.cumsum(rng.choice([-1, 0, 1], size=SOAK_WARMUP + SOAK_FITTED, p=[0.02, 0.96, 0.02])), 0, 2)
    rss = [int(500 * 2**20 + held * 2**21 + leak * i) for i, held in enumerate(arenas)]

    slope, fitted = soak.rss_slope(rss, SOAK_WARMUP)

    assert fitted == SOAK_FITTED
    assert (slope > soak.RSS_SLOPE_LIMIT) is seen, slope


# --- the fuzz worker ------------------------------------------------------------------------------


if __name__ == "__main__":
    if len(sys.argv) < 6 or sys.argv[1] != "fuzz":
        sys.exit("usage: python tests/test_reliability.py fuzz WORK_DIR CASES SEED CLIP...")
    _, _, work_dir, cases, seed, *clips = sys.argv
    print(json.dumps(fuzz([Path(c) for c in clips], Path(work_dir), int(cases), int(seed))), flush=True)
