"""The web app served for real (tiny models, a local port) and called through gradio_client:
/image, /video and /frame, upload limits and refusals, and per-session state."""

import csv
import json
import os
import runpy
import socket
import sys
import threading
import time
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from support.media import make_clip, make_image, probe

from vitpose_live.models.detector import PersonDetector
from vitpose_live.engine.engine import PoseEngine
from vitpose_live.models.pose import PoseEstimator
from vitpose_live.analysis.angles import ANGLE_NAMES
from vitpose_live.outputs.keypoints import csv_columns
from vitpose_live.outputs.records import read_keypoints_jsonl
from vitpose_live.types import Frame, Poses
from vitpose_live.apps.web import Limits, PoseWebApp, Settings, build_demo, mirror_poses
from vitpose_live.apps.web.frames import mirrored

REPO = Path(__file__).resolve().parents[3]
LIMITS = Limits(video_seconds=3.0, video_bytes=1024 * 1024, image_bytes=1024 * 1024, image_pixels=100_000)
# The tiny random detector finds ~50 boxes scoring about 0.735 in any picture; 3 keep the tests quick.
FAST = {"det_threshold": 0.5, "max_persons": 3}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(pose_dir, detector_dir):
    """The app on a free local port: (PoseWebApp, url). Heartbeats every 0.5 s, so that a client
    that closes is noticed quickly (Gradio's default is 15 s)."""
    old = os.environ.get("GRADIO_HEARTBEAT_INTERVAL")
    os.environ["GRADIO_HEARTBEAT_INTERVAL"] = "0.5"
    app = PoseWebApp(pose_dir, detector_dir, "cpu", limits=LIMITS)
    demo = app.build()
    _, url, _ = demo.launch(
        prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), quiet=True
    )
    try:
        yield app, url
    finally:
        demo.close()
        if old is None:
            os.environ.pop("GRADIO_HEARTBEAT_INTERVAL", None)
        else:
            os.environ["GRADIO_HEARTBEAT_INTERVAL"] = old


@pytest.fixture(scope="module")
def client(served):
    c = Client(served[1], verbose=False)
    yield c
    c.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ui-media")
    image = folder / "still.png"
    make_image(image, width=160, height=120)
    notes = folder / "notes.txt"
    notes.write_text("not a picture\n")
    return {"image": image, "notes": notes, "folder": folder}


def test_build_demo_returns_blocks_without_launching(pose_dir, detector_dir):
    demo = build_demo(model=pose_dir, detector=detector_dir, device="cpu")
    assert isinstance(demo, gr.Blocks)
    assert getattr(demo, "server", None) is None and not getattr(demo, "is_running", False)
    assert demo.delete_cache is not None  # streamed frames are cleaned up


def test_named_endpoints(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/image", "/video", "/frame"} <= set(endpoints)
    frame_params = [p["parameter_name"] for p in endpoints["/frame"]["parameters"]]
    assert frame_params[0] == "frame" and "session" not in frame_params  # the state stays on the server


def test_image_gives_the_engines_keypoints_drawn_on_the_picture(client, media, pose_dir, detector_dir):
    picture_path, record, following = client.predict(
        handle_file(media["image"]), kpt_threshold=0.0, api_name="/image", **FAST
    )
    assert following.startswith("Following nobody")
    picture = cv2.cvtColor(cv2.imread(picture_path), cv2.COLOR_BGR2RGB)
    source = cv2.cvtColor(cv2.imread(str(media["image"])), cv2.COLOR_BGR2RGB)
    assert picture.shape == source.shape

    assert record["model"] == pose_dir and record["width"] == 160 and record["height"] == 120
    assert len(record["keypoint_names"]) == 17 and record["frame"] == 0
    persons = record["persons"]
    assert 1 <= len(persons) <= 3
    # The same frame through the engine directly: the app adds nothing and loses nothing.
    pose = PoseEstimator(pose_dir, device="cpu")
    engine = PoseEngine(pose, PersonDetector(detector_dir, device="cpu", threshold=0.5, max_persons=3))
    expected = engine(Frame(source, 0, None, 0.0)).poses
    got = np.array([[kp[:2] for kp in person["keypoints"]] for person in persons])
    np.testing.assert_allclose(got, expected.keypoints, atol=0.01)
    np.testing.assert_allclose([p["box"] for p in persons], expected.boxes, atol=0.01)

    # Drawn: far from the source, unlike the same call finding nobody (JPEG noise only).
    empty_path, empty, _ = client.predict(handle_file(media["image"]), det_threshold=0.95, api_name="/image")
    assert empty["persons"] == []
    untouched = cv2.cvtColor(cv2.imread(empty_path), cv2.COLOR_BGR2RGB)
    noise = (np.abs(untouched.astype(int) - source).max(axis=2) > 60).sum()
    drawn = (np.abs(picture.astype(int) - source).max(axis=2) > 60).sum()
    assert drawn > 3 * noise + 100, (drawn, noise)


def test_identical_answers_are_files_of_their_own_so_no_download_is_rewritten_under_it(served, media):
    """Gradio writes a picture it encodes itself in place at a path named by its content, so two
    sessions' identical answers shared one file, rewritten while the other was downloading it
    (which arrived short). The app answers with a JPEG file of its own per call instead."""
    app, _ = served
    controls = {"model": app.defaults.model, **FAST}
    first, *_ = app.image(str(media["image"]), **controls)
    second, *_ = app.image(str(media["image"]), **controls)
    frame_picture, _, _, _ = app.frame({"path": str(media["image"])}, None, None, **controls)

    assert len({first, second, frame_picture}) == 3
    assert Path(first).read_bytes() == Path(second).read_bytes()
    assert cv2.imread(first).shape == cv2.imread(frame_picture).shape == (120, 160, 3)


def test_video_gives_h264_with_audio_and_a_keypoints_line_per_frame(client, media):
    clip = make_clip(media["folder"] / "walk.mp4", width=160, height=120, frames=12, audio=True)
    video, jsonl, table, plot, summary = client.predict(
        handle_file(clip), det_every=1, smooth=False, api_name="/video", **FAST
    )
    info = probe(video)
    assert info["frames"] == 12 and info["video_codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (160, 120)
    assert info["audio_codec"] == "aac" and info["audio_duration"] == pytest.approx(12 / 30, abs=0.05)
    header, frames = read_keypoints_jsonl(jsonl)
    assert header["source"] == "walk.mp4" and header["fps"] == pytest.approx(30)
    assert [f["frame"] for f in frames] == list(range(12))
    assert [f["time"] for f in frames] == pytest.approx([i / 30 for i in range(12)], abs=1e-3)
    with open(table, newline="") as f:
        rows = list(csv.reader(f))
    # the CLI's columns: keypoints, then the joint angles (the header's angle_names)
    assert rows[0] == csv_columns(header["keypoint_names"], header["angle_names"])
    assert header["angle_names"] == list(ANGLE_NAMES) and len(rows[0]) == 9 + 17 * 3 + 8
    assert all(set(p["angles"]) == set(ANGLE_NAMES) for f in frames for p in f["persons"])
    assert cv2.imread(plot).shape == (900, 1200, 3)  # the angle plot, as --plot draws it
    assert len(rows) - 1 == sum(len(f["persons"]) for f in frames) > 0
    assert "12 frame(s)" in summary and "audio kept" in summary


def test_video_smoothing_and_tracking_give_track_ids(client, media):
    clip = make_clip(media["folder"] / "tracked.mp4", width=160, height=120, frames=8, audio=False)
    video, jsonl, table, plot, summary = client.predict(
        handle_file(clip), det_every=2, smooth=True, api_name="/video", **FAST
    )
    assert probe(video)["frames"] == 8 and probe(video)["audio_codec"] is None
    header, frames = read_keypoints_jsonl(jsonl)
    tracked = [p for f in frames for p in f["persons"]]
    assert tracked and all("track_id" in p for p in tracked)
    assert "audio kept" not in summary
    assert "smoothed with no lag" in summary and "tracklet(s) joined" in summary  # the offline analysis ran
    with open(table, newline="") as f:  # smoothed offline: angles of the analysed keypoints, then interpolated
        assert next(csv.reader(f)) == csv_columns(header["keypoint_names"], ANGLE_NAMES, ["interpolated"])
    assert cv2.imread(plot).shape == (900, 1200, 3)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda folder: make_clip(folder / "long.mp4", frames=120, fps=30, audio=False), "at most 3 s"),
        (lambda folder: _junk(folder / "big.mp4", 1024 * 1024 + 10), "at most 1 MB"),
        (lambda folder: folder / "notes.txt", "not a video"),
    ],
    ids=["too-long", "too-large", "not-media"],
)
def test_video_refusals_say_why(client, media, make, message):
    path = make(media["folder"])
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(path), api_name="/video", **FAST)


@pytest.mark.parametrize("endpoint", ["/image", "/frame"])
def test_non_images_and_oversized_images_are_refused(client, media, endpoint):
    with pytest.raises(Exception, match="not an image"):
        client.predict(handle_file(media["notes"]), api_name=endpoint)
    big = _junk(media["folder"] / "big.png", 1024 * 1024 + 10)
    with pytest.raises(Exception, match="at most 1 MB"):
        client.predict(handle_file(big), api_name=endpoint)
    wide = media["folder"] / "wide.png"
    cv2.imwrite(str(wide), np.zeros((300, 400, 3), np.uint8))  # 0.12 megapixels, a 2 KB file
    with pytest.raises(Exception, match="400x300: at most 0.1 megapixels"):
        client.predict(handle_file(wide), api_name=endpoint)


def test_a_model_that_cannot_be_loaded_is_a_clear_error(served, client, media):
    app, _ = served
    # A Hub checkpoint from the list, with no network (conftest sets HF_HUB_OFFLINE=1).
    with pytest.raises(Exception, match="The pose model 'usyd-community/vitpose-plus-small' could not be loaded: .* restart it with --model DIR"):
        client.predict(
            handle_file(media["image"]), model="usyd-community/vitpose-plus-small", api_name="/image"
        )
    with pytest.raises(Exception, match="not in the list of choices|unknown model"):  # no arbitrary paths
        client.predict(handle_file(media["image"]), model="/etc", api_name="/image")
    loads = app.models.loads
    client.predict(handle_file(media["image"]), api_name="/image", **FAST)
    assert app.models.loads == loads  # the default model was loaded once, and is shared


def test_sessions_have_their_own_tracks_and_stats_and_are_freed_on_disconnect(served, media):
    """Four clients (four sessions) send 1-4 frames each, at the same time: each counts only its
    own frames, and each numbers its persons from 0 (a tracker of its own). Then a fresh session
    right after one that has tracked for a while starts again from 0: trackers are not shared."""
    app, url = served
    clients = [Client(url, verbose=False) for _ in range(4)]
    answers: dict[int, list[dict]] = {}
    failures = []

    def run(n: int) -> None:
        try:
            answers[n] = [client_call(clients[n], media["image"]) for _ in range(n + 1)]
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    for n, infos in answers.items():
        assert [i["session_frames"] for i in infos] == list(range(1, n + 2))
        assert [i["frame"] for i in infos] == list(range(n + 1))
        first = infos[0]["track_ids"]
        assert first and sorted(first) == list(range(len(first))), first
    trackers = {id(session._engine.tracking.tracker) for session in app.sessions._sessions.values()}
    assert len(trackers) == len(app.sessions) >= 4, "every session tracks with a tracker of its own"

    tracked = clients[3]
    for _ in range(3):
        info = client_call(tracked, media["image"])
    assert info["session_frames"] > 4 and info["track_ids"]
    newcomer_client = Client(url, verbose=False)
    clients.append(newcomer_client)
    newcomer = client_call(newcomer_client, media["image"])
    assert newcomer["session_frames"] == 1 and sorted(newcomer["track_ids"]) == list(range(len(newcomer["track_ids"])))
    assert len(app.sessions) >= 5

    before = len(app.sessions)
    for c in clients:
        c.close()
    deadline = time.monotonic() + 10
    while len(app.sessions) > before - 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(app.sessions) == before - 5


def client_call(c: Client, image: Path) -> dict:
    picture, line, info = c.predict(handle_file(image), det_every=1, mirror=False, api_name="/frame", **FAST)
    assert Path(picture).is_file() and "fps" in line
    return info


def test_mirrored_display_mirrors_the_picture(client, media):
    nobody = {"det_threshold": 0.95}
    straight, _, info = client.predict(handle_file(media["image"]), mirror=False, api_name="/frame", **nobody)
    mirrored, _, _ = client.predict(handle_file(media["image"]), mirror=True, api_name="/frame", **nobody)
    assert info["persons"] == []
    a = cv2.imread(straight).astype(int)
    b = cv2.imread(mirrored).astype(int)
    # The white marker square of the test picture is top-left; mirrored, it is top-right.
    assert a[2:8, 2:8].mean() > 200 and b[2:8, -8:-2].mean() > 200
    assert np.abs(a[:, ::-1] - b).mean() < np.abs(a - b).mean()


@pytest.mark.parametrize(
    "x, width, expected",
    [(0.0, 100, 99.0), (10.0, 100, 89.0), (49.5, 100, 49.5), (99.0, 100, 0.0)],
)
def test_mirror_poses_maps_pixel_centres(x, width, expected):
    poses = Poses(
        keypoints=np.full((1, 17, 2), x, np.float32),
        scores=np.ones((1, 17), np.float32),
        boxes=np.array([[x, 5, x + 1, 9]], np.float32),
        box_scores=np.ones(1, np.float32),
    )
    flipped = mirror_poses(poses, width)
    assert flipped.keypoints[0, :, 0] == pytest.approx(expected)
    assert flipped.keypoints[0, :, 1] == pytest.approx(x)
    assert flipped.boxes[0].tolist() == pytest.approx([expected - 1, 5, expected, 9])
    assert mirror_poses(flipped, width).keypoints.tolist() == poses.keypoints.tolist()


@pytest.mark.parametrize("height, width", [(480, 640), (7, 5), (1, 1)])
def test_the_mirrored_picture_is_a_copy_with_the_pixels_of_the_reversed_view(rng, height, width):
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    picture = mirrored(image)
    assert np.array_equal(picture, image[:, ::-1]) and picture.flags.c_contiguous
    assert not np.shares_memory(picture, image)


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], "web app"),
        (["--model", "x", "--server-port", "7860", "--share"], "web app"),
        (["--source", "0"], "command line"),
        (["--source=clip.mp4", "--output", "out.mp4"], "command line"),
    ],
)
def test_app_py_starts_the_web_app_unless_given_a_source(monkeypatch, argv, expected):
    import vitpose_live.apps.cli
    import vitpose_live.apps.web

    started = []
    monkeypatch.setattr(vitpose_live.apps.web, "main", lambda: started.append("web app"))
    monkeypatch.setattr(vitpose_live.apps.cli, "console_main", lambda: started.append("command line"))
    monkeypatch.setattr(sys, "argv", ["app.py", *argv])
    runpy.run_path(str(REPO / "app.py"), run_name="__main__")
    assert started == [expected]


def test_ui_flags():
    from vitpose_live.apps.web import build_parser

    args = build_parser().parse_args(
        [
            "--model",
            "m",
            "--detector",
            "d",
            "--device",
            "cpu",
            "--dtype",
            "fp32",
            "--server-name",
            "0.0.0.0",
            "--server-port",
            "7861",
            "--share",
        ]
    )
    assert (args.model, args.detector, args.device, args.dtype) == ("m", "d", "cpu", "fp32")
    assert (args.server_name, args.server_port, args.share) == ("0.0.0.0", 7861, True)


def test_a_webcam_streams_longest_life_is_a_flag_in_minutes(monkeypatch, capsys):
    from vitpose_live.apps.web import app as web_app
    from vitpose_live.apps.web import build_parser

    assert build_parser().parse_args([]).stream_minutes == 5
    made = {}

    def record(*args, **kwargs):
        made.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(web_app, "PoseWebApp", record)
    with pytest.raises(SystemExit):
        web_app.main(["--device", "cpu", "--stream-minutes", "12"])
    assert made["stream_time_limit"] == 12 * 60
    with pytest.raises(SystemExit) as exit_info:
        web_app.main(["--stream-minutes", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and "--stream-minutes: must be a whole number of at least 1" in err[-1]


def test_ui_main_refuses_an_unknown_device_before_launching(capsys):
    from vitpose_live.apps.web import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "tpu9"])
    assert exit_info.value.code == 2 and "unknown device" in capsys.readouterr().err


def _junk(path: Path, size: int) -> Path:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def test_keypoints_json_is_plain_json(client, media):
    _, record, _ = client.predict(handle_file(media["image"]), api_name="/image", **FAST)
    assert json.loads(json.dumps(record)) == record


@pytest.mark.parametrize(
    "changes, error",
    [
        ({}, None),
        ({"det_threshold": 1.5}, "det threshold must be between 0 and 1"),
        ({"kpt_threshold": -0.1}, "kpt threshold must be between 0 and 1"),
        ({"det_every": 0}, "detection interval must be a whole number"),
        ({"det_every": 2.5}, "detection interval must be a whole number"),
        ({"max_persons": 101}, "max persons must be a whole number"),
        ({"smooth_strength": float("nan")}, "smooth strength must be between 0 and 1"),
    ],
)
def test_settings_from_api_callers_are_checked(changes, error):
    if error is None:
        settings = Settings("m", **changes)
        assert settings.det_every == 1 and settings.min_cutoff == pytest.approx(1.0)  # the CLI's default
        assert Settings("m", smooth_strength=0.0).min_cutoff == pytest.approx(10.0)
        assert Settings("m", smooth_strength=1.0).min_cutoff == pytest.approx(0.1)
    else:
        with pytest.raises(ValueError, match=error):
            Settings("m", **changes)


def test_without_the_hub_the_console_names_the_models_once_without_tracebacks_and_the_page_says_what_to_do(
    tmp_path, media
):
    import subprocess

    port = _free_port()
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "console.txt", "w+")
    process = subprocess.Popen([sys.executable, "app.py", "--device", "cpu", "--server-port", str(port)],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while "Running on local URL" not in (tmp_path / "console.txt").read_text() and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "console.txt").read_text()
            time.sleep(0.3)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        with pytest.raises(Exception) as caught:
            client.predict(handle_file(media["image"]), api_name="/image")
        client.close()
    finally:
        process.terminate()
        process.wait(30)
    page = str(caught.value)
    from vitpose_live.engine.profiles import CPU_PROFILE

    assert f"The pose model '{CPU_PROFILE.pose_model}' could not be loaded" in page
    assert f"The detector '{CPU_PROFILE.detector}' could not be loaded" in page
    assert "--model DIR and --detector DIR" in page and "hf download" in page and "pass --model PATH" not in page
    console = (tmp_path / "console.txt").read_text()
    assert "Traceback" not in console and "share=True" not in console and "add --share" in console
    assert "Retry" not in console


def test_the_upload_limits_are_not_bold_where_gradios_font_splits_mb(pose_dir, detector_dir):
    demo = build_demo(model=pose_dir, detector=detector_dir, device="cpu")
    texts = [block.value for block in demo.blocks.values() if isinstance(block, gr.Markdown)]
    limits = [text for text in texts if "MB" in text]
    assert limits and not any("MB**" in text for text in limits)


def test_app_py_help_shows_the_web_app_and_the_command_line():
    import subprocess

    result = subprocess.run([sys.executable, "app.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    web_app, _, command_line = result.stdout.partition("== The command line ==")
    assert "--server-port" in web_app and "--share" in web_app
    assert "--source SOURCE" in command_line and "--det-every" in command_line and "usage: app.py" in command_line
