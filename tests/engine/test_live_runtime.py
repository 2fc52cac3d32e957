"""The live runtime: detection off the frame path, the one threshold rule for live and files,
newest-only results, and the one recipe and loop every face uses. The detector is scripted
(tests/scripted.py) so that who is where, and how slow the detector is, are known."""

import json
import time

import numpy as np
import pytest
from support.scripted import B_SCORE, THRESHOLD, ScriptedDetector, scene, write_frames

from vitpose_live.engine import recipe as recipe_module
from vitpose_live.outputs.records import read_keypoints_jsonl


@pytest.fixture
def scripted(monkeypatch, pose_model, tmp_path):
    """Frames in a folder and a detector that knows them; the CLI's recipe loads the tiny pose
    model and this detector."""
    from support.models import pose_processor

    from vitpose_live.models.pose import PoseEstimator

    def make(count: int = 45, delay: float = 0.0):
        folder = tmp_path / "frames"
        frames = write_frames(folder, count)
        detector = ScriptedDetector(frames, delay=delay)
        pose = PoseEstimator(pose_model, processor=pose_processor(), device="cpu")
        monkeypatch.setattr(recipe_module, "load_models", lambda options: (pose, detector))
        return folder, detector

    return make


def persons(records: list[dict]) -> list[list[dict]]:
    return [record["persons"] for record in records]


@pytest.fixture
def back_to_back(monkeypatch):
    """A device whose budget lets the detector run pass after pass, on every frame it can (the
    one rule applies the device's interval and rest to any detector: here there are none)."""
    from dataclasses import replace

    from vitpose_live.engine import profiles

    monkeypatch.setattr(profiles, "CPU_PROFILE", replace(profiles.CPU_PROFILE, det_every=1, detector_gap_s=0.0,
                                                         max_persons=None))


def test_live_and_file_runs_draw_the_same_persons_and_live_ids_survive_detection_gaps(run_cli, scripted, tmp_path,
                                                                                      back_to_back):
    folder, detector = scripted(delay=0.1)  # a pass costs three frames at 30 fps
    live, file = tmp_path / "live.jsonl", tmp_path / "file.jsonl"
    code, err = run_cli("--source", folder, "--realtime", "--keypoints", live, "--det-threshold", THRESHOLD)
    assert code == 0, err
    records = read_keypoints_jsonl(live)[1]
    live_calls = len(detector.frames_seen)
    assert live_calls < len(records), "the detector runs on fewer frames than the pose model"

    assert len(persons(records)[0]) == 2, "A and B are drawn from the first detection pass"
    assert all(len(p) == 2 for p in persons(records)), "nobody blinks out between detections"
    ids = {person["track_id"] for frame in persons(records) for person in frame}
    assert len(ids) == 2, f"one id per person across every detection gap, got {sorted(ids)}"
    scores = {round(person["score"], 2) for frame in persons(records) for person in frame}
    assert round(B_SCORE, 2) in scores, "B, just above the threshold, is drawn live"

    code, err = run_cli("--source", folder, "--keypoints", file, "--det-threshold", THRESHOLD)
    assert code == 0, err
    by_frame = {record["frame"]: record["persons"] for record in read_keypoints_jsonl(file)[1]}
    for record in records:
        assert len(by_frame[record["frame"]]) == len(record["persons"]), "the file run draws the same persons"
    expected = scene(0)
    np.testing.assert_allclose(by_frame[0][1]["box"], expected.boxes[1], atol=0.01)  # B, not C, is second


def test_a_detector_ten_times_slower_than_pose_never_holds_up_a_frame(run_cli, scripted, tmp_path):
    folder, detector = scripted(count=60, delay=0.3)
    stats_path = tmp_path / "stats.json"
    code, err = run_cli("--source", folder, "--realtime", "--stats-json", stats_path)
    assert code == 0, err
    stats = json.loads(stats_path.read_text())
    waited = stats["stage_ms"]["detect"] * stats["frames_processed"]  # ms the frame path waited, in all
    assert waited < 2 * 300, "no frame but the first waits for a detector pass"
    assert stats["stage_ms"]["detector_pass"] >= 300
    assert stats["frames_processed"] >= 3 * stats["detector_passes"], "pose sets the output rate, not detection"
    assert 0 < stats["detector_rate"] <= 1 / 0.3 + 0.5
    assert stats["stage_ms"]["detection_age"] > 0, "the age of the detection each frame used is reported"
    assert stats["frames_in"] == stats["frames_processed"] + stats["frames_dropped"]


def test_a_stats_file_alone_is_a_valid_live_run(run_cli, scripted, tmp_path):
    folder, _ = scripted(count=10)
    stats_path = tmp_path / "s.json"
    code, err = run_cli("--source", folder, "--realtime", "--stats-json", stats_path)
    assert code == 0, err
    assert json.loads(stats_path.read_text())["frames_processed"] > 0


class SlowPictureSink:
    """Drawing, encoding or a display slower than inference."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.written = seconds, 0

    def write(self, picture, stamp=None) -> None:
        time.sleep(self.seconds)
        self.written += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def test_a_slow_sink_drops_old_results_instead_of_queueing_them(scripted):
    from vitpose_live.engine.recipe import EngineOptions, build_engine
    from vitpose_live.outputs.base import Outputs
    from vitpose_live.runtime.run import RunOptions, run
    from vitpose_live.sources import FolderSource

    folder, _ = scripted(count=90)
    engine = build_engine(EngineOptions(live=True))
    sink = SlowPictureSink(0.15)
    report = run(FolderSource(folder), engine, Outputs([sink]), RunOptions(live=True, realtime_fps=30, progress=False))
    stats = report.stats
    assert stats["results_dropped"] > 0, "results the sink had no time for are dropped and counted"
    assert stats["frames_in"] == stats["frames_processed"] + stats["frames_dropped"]
    # At worst a frame waits for the inference before it, then its own, then the write before
    # its own, then its own: two of each. A queue of old results would add a write per result.
    one_frame = stats["stage_ms"]["inference"] + 150
    assert stats["latency_ms"]["p95"] < 3 * one_frame, "no queue of old results builds up"
    assert sink.written == stats["frames_processed"] < 90


def test_settings_apply_on_the_next_frame_without_resetting_tracks(scripted):
    from vitpose_live.engine.recipe import EngineOptions, FrameSettings, build_engine
    from vitpose_live.sources import read_image
    from vitpose_live.types import Frame

    folder, _ = scripted(count=6)
    frames = [read_image(path) for path in sorted(folder.iterdir())]
    engine = build_engine(EngineOptions(settings=FrameSettings(det_threshold=THRESHOLD), det_every=2))

    def poses_of(index):
        return engine(Frame(frames[index], index, index / 30, time.monotonic())).poses

    first = poses_of(0)
    assert len(first) == 2
    engine.update(det_threshold=0.4)  # now C (0.45) counts too
    poses_of(1)
    later = poses_of(2)
    assert len(later) == 3
    assert set(first.track_ids.tolist()) <= set(later.track_ids.tolist()), "A and B keep their ids"
    engine.close()


def test_the_web_video_job_and_the_command_line_give_the_same_keypoints(run_cli, pose_dir, detector_dir, tmp_path):
    from support.media import make_clip

    from vitpose_live.apps.web import PoseWebApp

    clip = make_clip(tmp_path / "walk.mp4", width=160, height=120, frames=10, audio=False)
    app = PoseWebApp(pose_dir, detector_dir, "cpu")
    _, web_jsonl, *_ = app.video(str(clip), progress=lambda *args, **kwargs: None, model=pose_dir,
                                   det_threshold=0.5, max_persons=3, kpt_threshold=0.3, det_every=1, smooth=False)
    cli_jsonl = tmp_path / "cli.jsonl"
    code, err = run_cli("--source", clip, "--keypoints", cli_jsonl, "--det-threshold", 0.5, "--max-persons", 3,
                        "--det-every", 1)  # the same settings as the page's
    assert code == 0, err
    web, cli = read_keypoints_jsonl(web_jsonl)[1], read_keypoints_jsonl(cli_jsonl)[1]
    assert [r["frame"] for r in web] == [r["frame"] for r in cli] == list(range(10))
    assert sum(len(r["persons"]) for r in cli) > 0
    for a, b in zip(web, cli):
        assert len(a["persons"]) == len(b["persons"])
        for p, q in zip(a["persons"], b["persons"]):
            np.testing.assert_allclose(p["keypoints"], q["keypoints"], atol=1e-3)
            np.testing.assert_allclose(p["box"], q["box"], atol=1e-3)


def _feed(engine, frames, period: float = 0.02):
    """Each frame to the engine as a camera would give it, ``period`` seconds apart; the results."""
    from vitpose_live.types import Frame

    results, start = [], time.monotonic()
    for index, image in enumerate(frames):
        time.sleep(max(0.0, start + index * period - time.monotonic()))
        results.append((time.monotonic(), engine(Frame(image, index, index * period, time.monotonic()))))
    engine.close()
    return results


def _paced_engine(pose_model, frames, gap: float, script=scene, delay: float = 0.05):
    from support.models import pose_processor

    from vitpose_live.engine.engine import PoseEngine

    from vitpose_live.engine.recipe import FrameSettings
    from vitpose_live.models.pose import PoseEstimator
    from vitpose_live.engine.tracking import PersonTracker, TrackingStage

    detector = ScriptedDetector(frames, script, delay=delay)
    pose = PoseEstimator(pose_model, processor=pose_processor(), device="cpu")
    engine = PoseEngine(pose, detector, tracking=TrackingStage(PersonTracker()), live=True, detector_gap_s=gap,
                        settings=FrameSettings(det_threshold=THRESHOLD))
    return engine, detector


def test_a_paced_detector_rests_between_passes_while_persons_are_tracked(pose_model, tmp_path):
    frames = write_frames(tmp_path / "frames", 80)  # 1.6 s at 50 frames/s
    paced, paced_detector = _paced_engine(pose_model, frames, gap=0.4)
    results = _feed(paced, frames)
    free, free_detector = _paced_engine(pose_model, frames, gap=0.0)
    _feed(free, frames)
    seconds = results[-1][0] - results[0][0]
    assert len(paced_detector.frames_seen) <= seconds / 0.4 + 2, "at most one pass per gap (plus the first)"
    assert len(free_detector.frames_seen) >= 2 * len(paced_detector.frames_seen), "unpaced it runs back to back"
    assert all(len(result.poses) == 2 for _, result in results), "A and B are followed between passes"


def test_with_nobody_tracked_the_paced_detector_runs_back_to_back(pose_model, tmp_path):
    from vitpose_live.types import Detections

    frames = write_frames(tmp_path / "frames", 60)
    engine, detector = _paced_engine(pose_model, frames, gap=0.4, script=lambda index: Detections.empty())
    results = _feed(engine, frames)
    seconds = results[-1][0] - results[0][0]
    assert len(detector.frames_seen) >= seconds / 0.4 + 3, "an empty scene is searched as often as the detector can"


def test_a_person_entering_a_paced_scene_is_found_within_the_gap_plus_two_passes(pose_model, tmp_path):
    from vitpose_live.types import Detections

    enters = 40

    def script(index: int) -> Detections:
        people = scene(index)
        keep = 1 if index < enters else 2  # A from the start, B from frame 40 on
        return Detections(people.boxes[:keep], people.scores[:keep])

    frames = write_frames(tmp_path / "frames", 100)
    gap, delay = 0.4, 0.05
    engine, _ = _paced_engine(pose_model, frames, gap=gap, script=script, delay=delay)
    results = _feed(engine, frames)
    entered_at = results[enters][0]
    found_at = next(at for at, result in results if len(result.poses) == 2)
    assert found_at - entered_at <= gap + 2 * delay + 0.15, f"found {found_at - entered_at:.2f} s after entering"
