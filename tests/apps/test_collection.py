"""Collections (--output-dir): a folder of real clips, an image and a broken file in, a results
folder that mirrors it out, with a manifest; resumable after a finished, failed or killed run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from support.collections import (
    SMALL,
    by_source,
    collection_args,
    make_collection,
    output_files,
    read_manifest,
)
from support.media import make_clip, probe

from vitpose_live.apps.collection import discover, plan
from vitpose_live.outputs.records import read_keypoints_jsonl

REPO = Path(__file__).resolve().parents[2]


def as_in_a_terminal():
    """Ctrl-C reaches the child as in a terminal, even when the suite runs as a background job
    (which starts children with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_folder_gives_mirrored_outputs_a_manifest_line_per_input_and_exit_1_for_the_broken_file(run_cli, tmp_path):
    source, out = make_collection(tmp_path / "in"), tmp_path / "out"
    code, err = run_cli(*collection_args(source, out, "--formats", "jsonl,csv,coco"))
    assert code == 1 and "done: 3 input(s) ok, 0 skipped, 1 failed" in err and "Traceback" not in err
    assert err.strip().endswith("; detector on every 5th frame, at most 2 persons")  # the CPU interval, --max-persons 2
    entries = by_source(read_manifest(out))
    assert {name: e["status"] for name, e in entries.items()} == {
        "a.mp4": "ok", "broken.mp4": "error", "photo.jpg": "ok", "sub/b.mov": "ok"}
    assert set(output_files(out)) == {f"{stem}.{ext}" for stem in ("a", "photo", "sub/b") for ext in ("jsonl", "csv", "json")
                                      } | {"a.mp4", "sub/b.mp4", "photo.jpg"}
    for name, output in (("a.mp4", "a.mp4"), ("sub/b.mov", "sub/b.mp4")):
        frames = probe(source / name)["frames"]
        assert entries[name]["frames"] == probe(out / output)["frames"] == frames
        assert len(read_keypoints_jsonl(out / output.replace(".mp4", ".jsonl"))[1]) == frames
    assert probe(out / "a.mp4")["audio_codec"] == "aac"
    assert cv2.imread(str(out / "photo.jpg")).shape == (60, 80, 3) and entries["photo.jpg"]["frames"] == 1
    assert 0 < entries["a.mp4"]["persons_per_frame"] <= 2
    _, single_file_err = run_cli("--source", source / "broken.mp4", "--output", tmp_path / "x.mp4")
    assert single_file_err == f"vitpose-live: error: {entries['broken.mp4']['error']}\n"


def test_a_second_run_skips_what_is_done_touching_no_output_and_overwrite_redoes_it(run_cli, tmp_path):
    source, out = make_collection(tmp_path / "in"), tmp_path / "out"
    run_cli(*collection_args(source, out, "--no-video"))
    before = output_files(out)
    assert set(before) == {"a.jsonl", "photo.jsonl", "sub/b.jsonl"}  # --no-video: keypoints only
    code, err = run_cli(*collection_args(source, out, "--no-video"))
    assert code == 1 and "0 input(s) ok, 3 skipped, 1 failed" in err
    second = read_manifest(out)[4:]
    assert sorted((e["source"], e["status"]) for e in second) == [
        ("a.mp4", "skipped"), ("broken.mp4", "error"), ("photo.jpg", "skipped"), ("sub/b.mov", "skipped")]
    assert by_source(second)["a.mp4"]["frames"] == 8  # repeated from the run that did it
    assert output_files(out) == before
    for path in out.rglob("*.jsonl"):
        os.utime(path, ns=(1, 1))
    (source / "broken.mp4").unlink()
    code, err = run_cli(*collection_args(source, out, "--no-video", "--overwrite"))
    assert code == 0 and "3 input(s) ok, 0 skipped, 0 failed" in err
    assert all(mtime > 1 for mtime in output_files(out).values())


def test_discovery_recurses_follows_globs_and_leaves_out_hidden_files_and_the_output_folder(tmp_path):
    root = tmp_path / "in"
    for name in ("b.mp4", "a10.mp4", "a2.mp4", "sub/c.png", ".hidden/d.mp4", "sub/.e.mp4", "out/old.mp4",
                 "x.mp4", "x.mov", "notes.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
    found = lambda spec: [p.relative_to(root).as_posix() for p in discover(str(spec), root / "out")[1]]  # noqa: E731
    assert found(root) == ["a2.mp4", "a10.mp4", "b.mp4", "sub/c.png", "x.mov", "x.mp4"]
    assert found(root / "a*.mp4") == ["a2.mp4", "a10.mp4"]
    assert found(root / "**" / "*.png") == ["sub/c.png"]
    root_of, files = discover(str(root), tmp_path / "results")
    jobs = {job.name: job for job in plan(root_of, files, tmp_path / "results", ("jsonl", "csv"), video=True)}
    assert jobs["sub/c.png"].outputs == (tmp_path / "results/sub/c.png", tmp_path / "results/sub/c.jsonl",
                                         tmp_path / "results/sub/c.csv")
    assert jobs["x.mov"].video.name == "x.mov.mp4" and jobs["x.mp4"].video.name == "x.mp4.mp4"  # same stem
    assert jobs["b.mp4"].video.name == "b.mp4"


def test_a_glob_of_clips_only_in_subfolders_gives_the_same_tree(run_cli, tmp_path):
    for name in ("x/1.mp4", "y/z/2.mp4"):
        (tmp_path / "in" / name).parent.mkdir(parents=True)
        make_clip(tmp_path / "in" / name, frames=2, audio=False, **SMALL)
    code, err = run_cli(*collection_args(tmp_path / "in" / "**" / "*.mp4", tmp_path / "out"))
    assert code == 0, err
    assert sorted(output_files(tmp_path / "out")) == ["x/1.jsonl", "x/1.mp4", "y/z/2.jsonl", "y/z/2.mp4"]


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--output", "x.mp4"], ["--output is for one input"]),
        (["--formats", "jsonl,xml"], ["--formats", "xml"]),
        (["--workers", "2"], ["--workers", "--ray"]),
        (["--det-threshold", "2"], ["--det-threshold"]),
    ],
)
def test_bad_collection_options_are_one_line_and_exit_2_before_any_work(run_cli, tmp_path, extra, words):
    source, out = make_collection(tmp_path / "in"), tmp_path / "out"
    code, err = run_cli("--source", source, "--output-dir", out, *extra)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vitpose-live: error:")
    assert all(word in lines[0] for word in words), lines[0]
    assert not (out / "manifest.jsonl").exists()


@pytest.mark.parametrize("extra", [["--formats", "csv"], ["--no-video"], ["--ray"], ["--overwrite"]])
def test_collection_options_without_output_dir_are_one_line_not_ignored(run_cli, tmp_path, extra):
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=False, **SMALL)
    code, err = run_cli("--source", clip, "--keypoints", tmp_path / "k.jsonl", *extra)
    assert code == 2 and err == f"vitpose-live: error: {extra[0]} is for collections: add --output-dir OUT " \
        "(and a folder or glob as --source)\n"


def test_a_folder_without_media_is_one_line(run_cli, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("text\n")
    code, err = run_cli("--source", tmp_path / "in", "--output-dir", tmp_path / "out")
    assert code == 2 and err == f"vitpose-live: error: no videos or images under '{tmp_path / 'in'}'\n"


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_collection_stopped_mid_input_keeps_what_is_done_and_the_next_run_finishes_the_rest(
        run_cli, tmp_path, pose_dir, detector_dir, stop_signal):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    for name, frames in (("1.mp4", 4), ("2.mp4", 48), ("3.mp4", 4)):
        make_clip(source / name, frames=frames, audio=False, **SMALL)
    process = subprocess.Popen(
        [sys.executable, "app.py", *map(str, collection_args(source, out, "--model", pose_dir, "--detector",
                                                             detector_dir, "--device", "cpu", "--no-progress"))],
        cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stderr=subprocess.PIPE, text=True,
        preexec_fn=as_in_a_terminal,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob(".2.partial-*.jsonl")):
        time.sleep(0.02)  # the second input has begun: its partial outputs are open
    process.send_signal(stop_signal)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert [(e["source"], e["status"]) for e in read_manifest(out)] == [("1.mp4", "ok")]
    assert sorted(output_files(out)) == ["1.jsonl", "1.mp4"]  # nothing of 2.mp4, not even a partial file
    code, err = run_cli(*collection_args(source, out))
    assert code == 0 and "2 input(s) ok, 1 skipped, 0 failed" in err
    assert [(e["source"], e["status"]) for e in read_manifest(out)[1:]] == [
        ("1.mp4", "skipped"), ("2.mp4", "ok"), ("3.mp4", "ok")]
    assert probe(out / "2.mp4")["frames"] == 48 and len(read_keypoints_jsonl(out / "2.jsonl")[1]) == 48
