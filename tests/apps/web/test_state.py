"""The web app's pieces without a server: a session's engine is built once per model (a moved
control changes the next frame, keeps the engine and its tracks), a left tab pauses the
session, the webcam's JPEG is decoded straight to RGB and the answer comes back inline, and
the defaults per device; a followed person framed, clicks on the framed view, their angles in
the live line."""

import base64
import os
import time

import cv2
import numpy as np
import pytest

from support.media import drawn_frame
from support.models import pose_processor
from support.scripted import ScriptedDetector

from vitpose_live.models.pose import PoseEstimator
from vitpose_live.sources import SyntheticSource
from vitpose_live.types import Detections
from vitpose_live.apps.web.jobs import stats_line
from vitpose_live.apps.web.frames import inline_jpeg
from vitpose_live.apps.web.payloads import Limits, image_from_payload
from vitpose_live.apps.web.settings import PAGE_VIEW_SIZE, Settings, defaults_for
from vitpose_live.apps.web.state import LiveSession, ModelCache


@pytest.fixture(scope="module")
def models(detector_dir):
    return ModelCache(detector_dir, "cpu")


@pytest.fixture
def frames():
    source = SyntheticSource(width=160, height=120, persons=2, realtime=False, frames=6)
    return [frame.image for frame in source]


def _settings(pose_dir, **changes):
    return Settings(pose_dir, max_persons=3, det_every=1, **changes)


def test_a_moved_control_keeps_the_engine_and_its_tracks_and_a_new_model_reloads(models, pose_dir, frames):
    session = LiveSession()
    try:
        session.process(frames[0].copy(), _settings(pose_dir), models)
        engine, tracker = session.engine, session.engine.tracking.tracker
        picture, result, row = session.process(frames[1].copy(), _settings(pose_dir, kpt_threshold=0.9, smooth=True,
                                                                           show_boxes=True), models)
        assert session.engine is engine and session.engine.tracking.tracker is tracker
        assert session.engines_built == 1 and models.loads == 2  # one pose model, one detector
        assert engine.settings.kpt_threshold == 0.9 and engine.tracking.smoother is not None
        assert {"decode", "engine", "draw"} <= set(row) and "between" not in row  # the first answer is not out yet

        other = os.path.join(pose_dir, "")  # the same checkpoint under another name: another model
        session.process(frames[2].copy(), _settings(other), models)
        assert session.engine is not engine and session.engines_built == 2
    finally:
        session.close()
    assert session.closed and session.engine is None


def test_a_paused_session_stops_its_detector_thread_and_keeps_its_tracks(models, pose_dir, frames):
    session = LiveSession()
    try:
        session.process(frames[0].copy(), _settings(pose_dir), models)
        tracker = session.engine.tracking.tracker
        assert session.engine.detector_running
        session.pause()
        assert session.away and not session.engine.detector_running
        assert session.engine.tracking.tracker is tracker
    finally:
        session.close()


def test_the_mirrored_display_flips_the_picture_not_what_the_models_see(models, pose_dir, frames):
    session = LiveSession()
    try:
        straight, _, _ = session.process(frames[0].copy(), _settings(pose_dir, kpt_threshold=1.0, show_ids=False), models)
        mirrored, result, _ = session.process(frames[0].copy(), _settings(pose_dir, kpt_threshold=1.0, show_ids=False,
                                                                          mirror=True), models)
    finally:
        session.close()
    assert np.array_equal(result.frame.image, frames[0])  # the models saw the frame as the camera sent it
    assert np.abs(mirrored.astype(int) - straight[:, ::-1]).mean() < 5


def test_a_webcam_jpeg_is_decoded_to_rgb_and_the_answer_comes_back_inline(frames):
    picture = frames[3]
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    url = "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()
    image, name = image_from_payload({"url": url, "path": None}, Limits())
    assert image.shape == picture.shape and np.abs(image.astype(int) - picture).mean() < 4  # RGB, not BGR

    value = inline_jpeg(image)
    assert value["path"] is None and value["url"].startswith("data:image/jpeg;base64,")
    back = cv2.imdecode(np.frombuffer(base64.b64decode(value["url"].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR_RGB)
    assert np.abs(back.astype(int) - image).mean() < 4


@pytest.mark.parametrize(
    "controls, error",
    [
        ({"model": "m", "kpt_threshold": 0.2, "mirror": True}, None),
        ({"model": "/etc"}, "unknown model"),
        ({"model": "m", "colour": "red"}, "unexpected keyword"),
    ],
)
def test_settings_come_from_the_controls_by_name(controls, error):
    if error is None:
        settings = Settings.from_controls({"m"}, **controls)
        assert settings.kpt_threshold == 0.2 and settings.mirror and settings.max_persons == 20
    else:
        with pytest.raises((ValueError, TypeError), match=error):
            Settings.from_controls({"m"}, **controls)


def test_without_a_gpu_the_page_starts_with_the_fastest_usable_defaults():
    cpu, gpu = defaults_for("cpu"), defaults_for("cuda:0")
    assert cpu.det_every > gpu.det_every and cpu.max_persons < gpu.max_persons
    assert "small" in cpu.model and cpu.detector_size is not None and gpu.detector_size is None


def test_frames_of_a_session_whose_tab_was_left_are_ignored_until_it_is_back(pose_dir, detector_dir, frames):
    import gradio as gr
    from types import SimpleNamespace

    from vitpose_live.apps.web import PoseWebApp

    app = PoseWebApp(pose_dir, detector_dir, "cpu")
    request = SimpleNamespace(session_hash="tab-1")
    ok, jpeg = cv2.imencode(".jpg", frames[0])
    payload = {"url": "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode(), "path": None}
    controls = {"model": pose_dir, "max_persons": 3, "mirror": False}
    picture, line, session = app.stream(payload, None, request, **controls)
    assert picture["url"].startswith("data:image/jpeg") and "fps" in line and session.frames == 1
    try:
        app.leave_webcam(request)
        skipped = app.stream(payload, session, request, **controls)
        assert skipped[0] == gr.skip() and session.frames == 1
        app.enter_webcam(request)
        app.stream(payload, session, request, **controls)
        assert session.frames == 2
    finally:
        app.unload(request)
    assert session.closed and len(app.sessions) == 0


class ScriptedModels:
    """A model cache whose detector is scripted: two persons side by side, A the larger."""

    detector_gap_s = 0.0

    def __init__(self, pose, pictures) -> None:
        boxes = np.array([[90, 30, 140, 210], [150, 40, 190, 200]], np.float32)
        self.models = (pose, ScriptedDetector(pictures, lambda i: Detections(boxes, np.array([0.9, 0.8], np.float32))))

    def get(self, model):
        return self.models


def test_the_followed_person_is_shown_framed_and_a_click_on_the_framed_view_lands_where_it_shows(pose_model, pose_dir):
    pictures = [drawn_frame(i, 320, 240) for i in range(40)]
    models = ScriptedModels(PoseEstimator(pose_model, processor=pose_processor(), device="cpu"), pictures)
    session = LiveSession()
    framed = Settings(pose_dir, det_every=1, smooth=True, framed=True, mirror=True)
    try:
        for i, image in enumerate(pictures):  # until the detector thread's first boxes are tracked
            picture, result, _ = session.process(image.copy(), framed, models)
            if len(result.poses) == 2:
                break
            time.sleep(0.02)
        assert picture.shape == (240, 320, 3)  # nobody followed yet: the full frame
        followed = session.pick(319 - 115, 120)  # on the mirrored picture
        assert followed in result.poses.track_ids.tolist()
        for image in pictures[i + 1 : i + 6]:
            picture, result, _ = session.process(image.copy(), framed, models)
        assert picture.shape == (PAGE_VIEW_SIZE[1], PAGE_VIEW_SIZE[0], 3) and session.followed() == followed
        assert [line.split()[0] for line in session.followed_angles] == ["elbow", "shoulder", "hip", "knee"]

        window, picked = session.view.window, []
        session.follower.pick_at = lambda x, y: picked.append((x, y))
        session.pick(300, 100)  # a click on the framed, mirrored view
        x, y = window.to_source(300, 100, PAGE_VIEW_SIZE)
        assert picked == [(pytest.approx(319 - x), pytest.approx(y))]  # that pixel of the camera's frame
        del session.follower.pick_at

        picture, _, _ = session.process(pictures[i + 6].copy(), Settings(pose_dir, det_every=1, smooth=True), models)
        assert picture.shape == (240, 320, 3)  # framing off: the full frame again
    finally:
        session.close()


def test_the_live_line_says_whom_it_follows_and_their_angles_now():
    info = {"fps": 12.0, "person_count": 2, "session_frames": 40, "server_ms": {"engine": 20.0}, "followed": 3,
            "followed_angles": ["elbow L 90 R 178", "shoulder L - R 45", "hip L 170 R 171", "knee L 179 R 180"]}
    assert "following 3 (elbow L 90 R 178 · shoulder L - R 45 · hip L 170 R 171 · knee L 179 R 180)" in stats_line(info)
