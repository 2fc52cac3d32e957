"""Damaged and odd input files: broken downloads, files without pictures, unreadable files,
phone videos, variable frame rates, 1x1 and 4K, more image formats.

Run as a script (``python tests/sources/test_damaged_inputs.py fuzz WORK_DIR CASES SEED CLIP...``) it is
the fuzz worker that ``test_randomly_damaged_videos_give_an_error_or_valid_frames_never_a_hang_or_crash``
starts in a child process, so that a hang or a crash in FFmpeg fails the test instead of CI.

Rows of the README's "Reliability" table (split out of the former tests/apps/test_reliability.py).
Every CLI run ends either with exit 0 and outputs that play, or with exit 2, one line on stderr
and no output file.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

if __name__ == "__main__":  # run as the fuzz worker: find tests/support as pytest's conftest does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.media import _add_audio, _write_tone, drawn_frame, make_clip, make_image, make_song, probe
from support.reliability import (
    REPO,
    assert_one_clear_line,
    child_env,
    first_picture,
    keypoint_frames,
    mean_difference,
)

FUZZ_CASES = 300  # corrupted copies decoded by the fuzz worker, split over the .mp4 and the .mkv
FUZZ_SEED = 20240611
CASE_SECONDS = 20.0  # one damaged file decoding longer than this is a hang


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


# --- the fuzz worker ------------------------------------------------------------------------------


if __name__ == "__main__":
    if len(sys.argv) < 6 or sys.argv[1] != "fuzz":
        sys.exit("usage: python tests/sources/test_damaged_inputs.py fuzz WORK_DIR CASES SEED CLIP...")
    _, _, work_dir, cases, seed, *clips = sys.argv
    print(json.dumps(fuzz([Path(c) for c in clips], Path(work_dir), int(cases), int(seed))), flush=True)
