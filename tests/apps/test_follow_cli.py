"""Following one person from the command line: --follow, --follow-only, --follow-video,
--follow-size and --plot on real clips with the tiny models, and each mistake as one line."""

import csv
import sys
from pathlib import Path

import cv2
import gradio
import numpy as np
import pytest
from support.media import make_clip, make_image, probe

from vitpose_live.analysis.angles import ANGLE_NAMES, ANGLE_TRIPLES, joint_angles
from vitpose_live.outputs.records import read_keypoints_jsonl
from vitpose_live.skeletons import COCO

GRADIO_VIDEOS = Path(gradio.__file__).parent / "media_assets" / "videos"


def assert_one_clear_line(stderr: str, *words: str):
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("vitpose-live: error:") and "Traceback" not in stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_following_the_largest_person_of_a_bundled_clip_gives_a_framed_video_of_every_frame_with_its_audio(
        run_cli, tmp_path):
    clip = GRADIO_VIDEOS / "b.mp4"  # 480x270, 150 frames, AAC
    follow, keypoints, plot = tmp_path / "F.mp4", tmp_path / "k.jsonl", tmp_path / "angles.png"
    code, err = run_cli("--source", clip, "--follow", "largest", "--follow-video", follow, "--follow-size", "360x640",
                        "--keypoints", keypoints, "--plot", plot, "--max-persons", 8)
    assert code == 0, err
    assert str(follow) in err and str(plot) in err  # the summary names them
    source, framed = probe(clip), probe(follow)
    assert (framed["width"], framed["height"], framed["frames"]) == (360, 640, source["frames"])
    assert framed["times"] == pytest.approx(source["times"], abs=2e-3)
    assert framed["audio_codec"] == "aac" and framed["audio_duration"] > 0
    header, frames = read_keypoints_jsonl(keypoints)
    assert header["angle_names"] == list(ANGLE_NAMES)
    assert len(frames) == source["frames"] and all("followed" in frame for frame in frames)
    followed = [frame["followed"] for frame in frames]
    most = max(set(followed), key=followed.count)
    assert most is not None and followed.count(most) > 0.5 * len(frames)
    for frame in frames:  # the followed id is one of the frame's persons
        assert frame["followed"] is None or frame["followed"] in [p["track_id"] for p in frame["persons"]]
    assert cv2.imread(str(plot)).shape == (900, 1200, 3)


def test_the_csvs_angles_agree_with_its_own_keypoints_and_a_silent_source_gives_a_silent_follow_video(
        run_cli, tmp_path):
    clip = GRADIO_VIDEOS / "muted_b.mp4"
    table, follow = tmp_path / "k.csv", tmp_path / "F.mp4"
    code, err = run_cli("--source", clip, "--follow", "center", "--follow-video", follow, "--keypoints", table,
                        "--max-persons", 2, "--kpt-threshold", 0.2)
    assert code == 0, err
    framed = probe(follow)
    assert (framed["width"], framed["height"]) == (720, 1280) and framed["audio_codec"] is None
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and [c for c in rows[0] if c.startswith("angle_")] == [f"angle_{n}" for n in ANGLE_NAMES]
    cell = lambda row, column: float(row[column]) if row[column] != "" else np.nan  # noqa: E731
    keypoints = np.array([[[cell(r, f"{k}_x"), cell(r, f"{k}_y")] for k in COCO.keypoint_names] for r in rows])
    scores = np.array([[cell(r, f"{k}_score") for k in COCO.keypoint_names] for r in rows])
    expected = joint_angles(keypoints, scores, 0.2)  # from the file's own rounded keypoints
    written = np.array([[cell(r, f"angle_{n}") for n in ANGLE_NAMES] for r in rows])
    near_threshold = (np.abs(scores - 0.2) < 1e-4).any(axis=1, keepdims=True)  # rounding may flip these
    known = ~np.isnan(written) & ~np.isnan(expected)
    assert ((np.isnan(written) == np.isnan(expected)) | near_threshold).all()
    assert np.isfinite(written).mean() > 0.5
    # within the written angle's 0.05 rounding plus what rounding keypoints to 0.01 px can turn a
    # limb of that length by (short limbs of random keypoints turn most)
    index = {name: i for i, name in enumerate(COCO.keypoint_names)}
    shortest = np.stack([np.minimum(np.linalg.norm(keypoints[:, index[a]] - keypoints[:, index[b]], axis=-1),
                                    np.linalg.norm(keypoints[:, index[c]] - keypoints[:, index[b]], axis=-1))
                         for _, (a, b, c) in ANGLE_TRIPLES], axis=1)
    allowed = 0.051 + 2 * np.degrees(0.01 / np.maximum(shortest, 1e-6))
    assert (np.abs(written - expected) <= allowed)[known].all()
    assert np.median(np.abs(written - expected)[known]) < 0.05


def test_follow_only_leaves_the_others_out_where_follow_dims_them(run_cli, tmp_path):
    from vitpose_live.sources import VideoFileSource

    clip = make_clip(tmp_path / "in.mp4", width=320, height=240, frames=6, audio=False)
    pictures = {}
    for name, extra in (("dimmed", []), ("only", ["--follow-only"])):
        out, keypoints = tmp_path / f"{name}.mp4", tmp_path / f"{name}.jsonl"
        code, err = run_cli("--source", clip, "--output", out, "--keypoints", keypoints, "--follow", "largest",
                            "--max-persons", 3, *extra)
        assert code == 0, err
        with VideoFileSource(out) as frames:
            pictures[name] = np.stack([frame.image for frame in frames]).astype(int)
    _, frames = read_keypoints_jsonl(keypoints)
    assert all(len(frame["persons"]) > 1 for frame in frames)  # somebody else to dim or leave out
    assert pictures["dimmed"].shape == pictures["only"].shape == (6, 240, 320, 3)
    assert np.abs(pictures["dimmed"] - pictures["only"]).max() > 60  # the others' skeletons


@pytest.mark.parametrize(
    "case, words",
    [
        ("bad_follow", ["--follow", "'tallest'"]),
        ("only_without_follow", ["--follow-only", "--follow"]),
        ("video_without_follow", ["--follow-video", "--follow"]),
        ("bad_size", ["--follow-size", "WIDTHxHEIGHT"]),
        ("size_without_video", ["--follow-size", "--follow-video"]),
        ("video_extension", ["--follow-video", ".mp4"]),
        ("plot_extension", ["--plot", ".png"]),
        ("image", ["--follow-video", "image"]),
        ("io_processes", ["--follow", "--io-processes"]),
        ("collection", ["--follow", "one input"]),
    ],
)
def test_each_following_mistake_is_one_clear_line_and_leaves_no_file(run_cli, tmp_path, case, words):
    clip = make_clip(tmp_path / "ok.mp4", frames=3, audio=False)
    image = tmp_path / "photo.png"
    make_image(image)
    out, follow = tmp_path / "out.mp4", tmp_path / "f.mp4"
    base = ["--source", clip, "--output", out]
    args = {
        "bad_follow": [*base, "--follow", "tallest"],
        "only_without_follow": [*base, "--follow-only"],
        "video_without_follow": [*base, "--follow-video", follow],
        "bad_size": [*base, "--follow", "largest", "--follow-video", follow, "--follow-size", "360by640"],
        "size_without_video": [*base, "--follow", "largest", "--follow-size", "360x640"],
        "video_extension": [*base, "--follow", "largest", "--follow-video", tmp_path / "f.gif"],
        "plot_extension": [*base, "--plot", tmp_path / "p.jpg"],
        "image": ["--source", image, "--output", tmp_path / "out.jpg", "--follow", "0", "--follow-video", follow],
        "io_processes": [*base, "--follow", "largest", "--io-processes"],
        "collection": ["--source", tmp_path, "--output-dir", tmp_path / "results", "--follow", "largest"],
    }[case]
    code, err = run_cli(*args)
    assert code == 2
    assert_one_clear_line(err, *words)
    assert not out.exists() and not follow.exists()


def test_without_matplotlib_plot_says_in_one_line_how_to_install_it(run_cli, tmp_path, monkeypatch):
    clip = make_clip(tmp_path / "ok.mp4", frames=3, audio=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails, as when it is not installed
    code, err = run_cli("--source", clip, "--keypoints", tmp_path / "k.jsonl", "--plot", tmp_path / "p.png")
    assert code == 2
    assert_one_clear_line(err, 'pip install "vitpose-live[plot]"')
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "k.jsonl").exists()


def test_follow_with_offline_smoothing_runs_in_the_second_pass_and_writes_angles_and_followed(run_cli, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", width=320, height=240, frames=12, audio=False)
    keypoints, table = tmp_path / "k.jsonl", tmp_path / "k.csv"
    for path in (keypoints, table):
        code, err = run_cli("--source", clip, "--keypoints", path, "--smooth", "offline", "--follow", "largest",
                            "--max-persons", 3)
        assert code == 0, err
    header, frames = read_keypoints_jsonl(keypoints)
    assert header["angle_names"] == list(ANGLE_NAMES) and header["person_fields"] == ["interpolated"]
    assert len(frames) == 12 and all("followed" in frame for frame in frames)
    assert all(set(person["angles"]) == set(ANGLE_NAMES) for frame in frames for person in frame["persons"])
    with open(table, newline="") as f:
        columns = next(csv.reader(f))
    assert [c for c in columns if c.startswith("angle_")] == [f"angle_{n}" for n in ANGLE_NAMES]
