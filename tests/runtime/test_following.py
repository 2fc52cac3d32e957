"""Following one person through the run loop, on scripted scenes: whom the records name, how the
loop draws them, the HUD's angles, the live follow video and a file's follow video (the post-pass)."""

from __future__ import annotations

import numpy as np
import pytest
from support.media import drawn_frame, make_clip, probe
from support.models import pose_processor
from support.scripted import THRESHOLD, ScriptedDetector, scene, write_frames

from vitpose_live.analysis.framing import FramingSettings
from vitpose_live.engine.recipe import EngineOptions, FrameSettings, build_engine
from vitpose_live.models.pose import PoseEstimator
from vitpose_live.outputs.base import Outputs
from vitpose_live.outputs.keypoints import KeypointsJsonlSink
from vitpose_live.outputs.records import read_keypoints_jsonl
from vitpose_live.render import PoseAnnotator
from vitpose_live.runtime.follow_video import BoxTrail, write_follow_video
from vitpose_live.runtime.following import FollowOptions, Following
from vitpose_live.runtime.run import RunOptions, run
from vitpose_live.skeletons import COCO
from vitpose_live.sources import FolderSource, VideoFileSource
from vitpose_live.types import Detections, Frame, Poses

FRAMES = 24
GAP = range(8, 12)  # frames where the detector misses A


def a_missing_for_a_while(index):
    found = scene(index)
    if index in GAP:
        return Detections(found.boxes[1:], found.scores[1:])
    return found


@pytest.fixture
def scripted(pose_model, tmp_path):
    """run() with a Following over scripted frames (A walks right and is the largest, B stands);
    returns (report, keypoint records, the results and pictures given to on_frame)."""
    folder = tmp_path / "frames"
    frames = write_frames(folder, FRAMES, width=320, height=240)
    pose = PoseEstimator(pose_model, processor=pose_processor(), device="cpu")

    def go(following: Following, script=scene, annotator=None):
        engine = build_engine(EngineOptions(settings=FrameSettings(det_threshold=THRESHOLD), tracking=True),
                              models=(pose, ScriptedDetector(frames, script)))
        header = {"model": "tiny", "keypoint_names": list(COCO.keypoint_names), "angle_names": ["left_elbow"]}
        sink = KeypointsJsonlSink(tmp_path / "k.jsonl", header=header)
        seen = []
        report = run(FolderSource(folder, fps=30), engine, Outputs(records=[sink]), RunOptions(draw=True, progress=False),
                     annotator=annotator, following=following,
                     on_frame=lambda result, picture, stats: seen.append((result, picture.copy())))
        return report, read_keypoints_jsonl(tmp_path / "k.jsonl")[1], seen, frames

    return go


def test_largest_follows_the_largest_person_and_every_line_says_so(scripted):
    _, records, seen, _ = scripted(Following(FollowOptions("largest"), live=False))
    a_ids = {int(result.poses.track_ids[0]) for result, _ in seen}  # A is the detector's first, highest score
    assert len(a_ids) == 1
    assert [record["followed"] for record in records] == [a_ids.pop()] * FRAMES
    assert all(set(person["angles"]) == {"left_elbow", "right_elbow", "left_shoulder", "right_shoulder", "left_hip",
                                         "right_hip", "left_knee", "right_knee"}
               for record in records for person in record["persons"])


def test_the_followed_person_is_kept_through_a_detection_gap(scripted):
    _, records, _, _ = scripted(Following(FollowOptions("largest"), live=False), script=a_missing_for_a_while)
    followed = [record["followed"] for record in records]
    first = followed[0]
    assert first is not None and followed[: GAP.start] == [first] * GAP.start
    # the tracker may carry A a frame or two on its prediction; never someone else meanwhile
    assert set(followed[GAP.start : GAP.stop]) <= {first, None}
    assert followed[GAP.stop + 1 :] == [first] * (FRAMES - GAP.stop - 1)


def test_without_anybody_followed_the_records_have_angles_but_no_followed(scripted):
    _, records, _, _ = scripted(Following(FollowOptions(), live=False))
    assert all("followed" not in record for record in records)
    assert all("angles" in person for record in records for person in record["persons"])


def test_the_loop_draws_the_followed_person_in_full_and_the_others_dimmed(scripted):
    annotator = PoseAnnotator(kpt_threshold=0.0)
    _, records, seen, frames = scripted(Following(FollowOptions("largest"), live=False), annotator=annotator)
    for (result, picture), record in zip(seen, records, strict=True):
        drawn = annotator.annotate(frames[result.frame.index].copy(), result.poses, 0.3, followed=record["followed"])
        assert np.array_equal(picture, drawn)
        plain = annotator.annotate(frames[result.frame.index].copy(), result.poses, 0.3)
        assert not np.array_equal(picture, plain)  # B is dimmed


def tracked(boxes, ids) -> Poses:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    keypoints = np.repeat(((boxes[:, :2] + boxes[:, 2:]) / 2)[:, None], 17, axis=1)
    keypoints[:, COCO.keypoint_names.index("left_elbow"), 0] += 10  # an elbow angle can be measured
    return Poses(keypoints, np.full((n, 17), 0.9), boxes, np.full(n, 0.9), track_ids=ids)


def test_the_hud_names_the_followed_person_and_their_angles_now():
    following = Following(FollowOptions("largest"), live=True)
    image = np.zeros((240, 320, 3), np.uint8)
    poses = tracked([[10, 10, 100, 200], [150, 10, 200, 100]], [5, 6])
    followed = following.frame(Frame(image, 0, 0.0, 0.0), poses, 0.0, 0.3)
    lines = following.hud_lines(followed)
    assert lines[0] == "following 5" and [line.split()[0] for line in lines[1:]] == ["elbow", "shoulder", "hip", "knee"]
    following.follower.release()
    gone = following.frame(Frame(image, 1, 0.04, 0.04), poses, 0.04, 0.3)
    assert gone.followed is None and following.hud_lines(gone) == ["following nobody (click a person)"]


def square_box(index: int, width: int, height: int) -> list[float]:
    """The red square of :func:`drawn_frame` picture ``index``."""
    side = max(4, min(width, height) // 4)
    x = (index * 5) % max(1, width - side)
    y = height // 2 - side // 2
    return [x, y, x + side, y + side]


def red_centre(image: np.ndarray) -> np.ndarray:
    red = (image[..., 0] > 150) & (image[..., 1] < 90) & (image[..., 2] < 90)
    ys, xs = np.nonzero(red)
    return np.array([xs.mean(), ys.mean()])


def test_a_live_follow_video_frames_the_followed_person_as_the_run_goes(tmp_path):
    size, width, height = (96, 128), 320, 240
    following = Following(FollowOptions("largest", video=str(tmp_path / "f.mp4"), size=size), live=True, fps=30)
    for index in range(40):
        image = drawn_frame(index, width, height)
        poses = tracked([square_box(index, width, height)], [1])
        following.write_view(Frame(image, index, index / 30, 0.0),
                             following.frame(Frame(image, index, index / 30, 0.0), poses, index / 30, 0.3), index / 30)
    following.close()
    result = probe(tmp_path / "f.mp4")
    assert (result["width"], result["height"], result["frames"]) == (*size, 40)


def test_a_live_follow_video_is_removed_when_the_run_fails(tmp_path):
    following = Following(FollowOptions("largest", video=str(tmp_path / "f.mp4"), size=(64, 64)), live=True)
    following.abort()
    assert not (tmp_path / "f.mp4").exists()


def test_a_files_follow_video_is_written_after_the_run_centred_on_the_person_with_every_frame_and_the_audio(tmp_path):
    width, height, count = 320, 240, 45
    clip = make_clip(tmp_path / "in.mp4", width=width, height=height, frames=count, audio=True)
    trail = BoxTrail()
    for index in range(count):
        trail.add(square_box(index, width, height), index / 30, (width, height))
    settings = FramingSettings(size=(120, 160))
    with VideoFileSource(clip) as frames:
        written = write_follow_video(frames, trail, tmp_path / "f.mp4", settings, fps=30, audio_from=clip)
    result = probe(tmp_path / "f.mp4")
    assert written == count and (result["width"], result["height"], result["frames"]) == (120, 160, count)
    assert result["audio_codec"] == "aac" and result["audio_duration"] > 0
    with VideoFileSource(tmp_path / "f.mp4") as out:
        offsets = [np.abs(red_centre(frame.image) - (60, 80)) for frame in out]
    # kept in the middle with no lag, but for the first frames, where the square is nearer the
    # frame's left edge than half a window (the window stays inside the frame)
    assert max(o[0] for o in offsets[3:]) < 12 and max(o[1] for o in offsets) < 3


def test_the_plot_is_of_the_followed_person(tmp_path):
    pytest.importorskip("matplotlib")
    import cv2

    following = Following(FollowOptions("largest", plot=str(tmp_path / "p.png")), live=False)
    image = np.zeros((240, 320, 3), np.uint8)
    for index in range(10):
        following.frame(Frame(image, index, index / 30, 0.0), tracked([[10, 10, 100, 200]], [3]), index / 30, 0.3)
    times, series = following.angle_series()
    assert len(times) == 10 and np.isfinite(series["left_elbow"]).all() and np.isnan(series["right_elbow"]).all()
    following.finish(lambda: [], title="clip")
    assert cv2.imread(str(tmp_path / "p.png")).shape == (900, 1200, 3)


OCCLUDED = range(30, 66)  # 1.2 s at 30 fps: longer than the tracker keeps a lost track (1 s)


def a_walks_behind_something(index):
    """A walks right (the largest), B stands well apart; A is not seen for 1.2 s."""
    a, b = [10 + index, 20, 70 + index, 200], [220, 30, 270, 190]
    if index in OCCLUDED:
        return Detections(np.array([b], np.float32), np.array([0.8], np.float32))
    return Detections(np.array([a, b], np.float32), np.array([0.9, 0.8], np.float32))


def test_with_offline_smoothing_the_followed_person_keeps_their_id_after_an_occlusion(pose_model, tmp_path):
    from vitpose_live.analysis.offline import AnalysisSettings
    from vitpose_live.runtime.offline_run import run_offline

    folder, count = tmp_path / "frames", 96
    frames = write_frames(folder, count, width=320, height=240)
    pose = PoseEstimator(pose_model, processor=pose_processor(), device="cpu")
    engine = build_engine(EngineOptions(settings=FrameSettings(det_threshold=THRESHOLD), tracking=True),
                          models=(pose, ScriptedDetector(frames, a_walks_behind_something)))
    header = {"model": "tiny", "keypoint_names": list(COCO.keypoint_names)}
    sink = KeypointsJsonlSink(tmp_path / "k.jsonl", header=header)
    report = run_offline(FolderSource(folder, fps=30), lambda: FolderSource(folder, fps=30), engine,
                         Outputs(records=[sink]), RunOptions(progress=False), AnalysisSettings(),
                         following=Following(FollowOptions("largest"), live=False))
    assert report.stats["offline"]["tracklets_joined"] >= 1  # the tracker gave A a new id after the gap
    records = read_keypoints_jsonl(tmp_path / "k.jsonl")[1]
    assert len(records) == count
    followed = [record["followed"] for record in records]

    def a_in(record):  # A's id: the box on the left
        return min(record["persons"], key=lambda person: person["box"][0])["track_id"]

    first = followed[0]
    assert first is not None and first == a_in(records[0])
    assert followed[: OCCLUDED.start] == [first] * OCCLUDED.start
    assert set(followed[OCCLUDED.start : OCCLUDED.stop]) <= {first, None}  # never B meanwhile
    after = records[OCCLUDED.stop :]
    assert [record["followed"] for record in after] == [first] * len(after)
    assert all(a_in(record) == first for record in after)  # the same person, the same id
