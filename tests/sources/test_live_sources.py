"""Live and generated sources: cameras (faked), network streams (served from 127.0.0.1 by the
tests themselves), folders of images, the synthetic scene, and how ``open_source`` picks one."""

from __future__ import annotations

import functools
import http.server
import logging
import socket
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from support.media import drawn_frame, make_clip, make_image

from vitpose_live.runtime.pipeline import Pipeline, Policy
from vitpose_live.sources import (
    CameraSource,
    FolderSource,
    ImageSource,
    Source,
    SourceError,
    SourceKind,
    StreamSource,
    SyntheticSource,
    VideoFileSource,
    VideoInfo,
    open_source,
)
from vitpose_live.types import Frame


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def collect(source, limit: int = 10_000) -> tuple[list[Frame], SourceError | None]:
    """The frames a source yields until it ends, fails or ``limit`` is reached, and its error."""
    frames = []
    try:
        for frame in source:
            frames.append(frame)
            if len(frames) >= limit:
                break
    except SourceError as error:
        return frames, error
    return frames, None


def in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


# --- cameras (a fake capture object stands in for cv2.VideoCapture) ----------------------------


class FakeCapture:
    """Like ``cv2.VideoCapture`` on a camera that gives ``frames`` BGR pictures, then fails
    (``frames=None``: never). Picture k is filled with (blue, green, red) = (k, 100, 200 + tag)."""

    def __init__(self, frames: int | None = 0, *, opened: bool = True, tag: int = 0, delay: float = 0.0):
        self.frames, self.opened, self.tag, self.delay = frames, opened, tag, delay
        self.delivered = 0
        self.released = False
        self.props = {cv2.CAP_PROP_FRAME_WIDTH: 32.0, cv2.CAP_PROP_FRAME_HEIGHT: 24.0, cv2.CAP_PROP_FPS: 30.0}
        self.requests: dict[int, float] = {}

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def read(self):
        time.sleep(self.delay)
        if self.released or not self.opened or (self.frames is not None and self.delivered >= self.frames):
            return False, None
        height, width = int(self.props[cv2.CAP_PROP_FRAME_HEIGHT]), int(self.props[cv2.CAP_PROP_FRAME_WIDTH])
        picture = np.empty((height, width, 3), np.uint8)
        picture[:] = (self.delivered % 256, 100, 200 + self.tag)
        self.delivered += 1
        return True, picture

    def set(self, prop: int, value: float) -> bool:
        self.requests[prop] = value
        if prop in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT):
            self.props[prop] = min(value, 64.0)  # a small camera: honours sizes up to 64
            return True
        return False

    def get(self, prop: int) -> float:
        return self.props.get(prop, 0.0)

    def release(self) -> None:
        self.released = True


class CaptureFactory:
    """Hands out the given captures in turn, then cameras that are not there."""

    def __init__(self, *captures: FakeCapture):
        self.captures = list(captures)
        self.calls: list[int] = []

    def __call__(self, index: int) -> FakeCapture:
        self.calls.append(index)
        return self.captures.pop(0) if self.captures else FakeCapture(opened=False)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (3, "no camera at index 3 (is it connected? try --source 0)"),
        (0, "no camera at index 0 (is it connected?)"),
    ],
)
def test_a_camera_that_is_not_there_fails_on_opening_with_a_hint(index, message):
    factory = CaptureFactory(FakeCapture(opened=False))

    with pytest.raises(SourceError) as caught:
        CameraSource(index, capture_factory=factory)

    assert str(caught.value) == message
    assert factory.calls == [index]


def test_a_camera_index_with_no_device_behind_it_fails_fast_through_opencv():
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"^no camera at index 97 \(is it connected\? try --source 0\)$"):
        CameraSource(97)
    assert time.monotonic() - started < 3.0


def test_a_missing_camera_is_our_one_line_without_opencvs_warnings_before_it(pose_dir, detector_dir, tmp_path):
    import subprocess
    import sys

    args = ["--source", "5", "--keypoints", str(tmp_path / "k.jsonl"), "--no-window", "--device", "cpu",
            "--model", pose_dir, "--detector", detector_dir, "--no-progress"]
    result = subprocess.run([sys.executable, "-m", "vitpose_live.apps.cli", *args], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert result.returncode == 2
    assert result.stderr == "vitpose-live: error: no camera at index 5 (is it connected? try --source 0)\n"


def test_a_camera_yields_rgb_frames_timed_from_the_first_one():
    factory = CaptureFactory(FakeCapture(4))

    with CameraSource(0, capture_factory=factory, reconnect_attempts=0) as camera:
        assert camera.is_live is True
        frames, error = collect(camera)

    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert frames[0].image.shape == (24, 32, 3) and frames[0].image.dtype == np.uint8
    assert [tuple(f.image[0, 0]) for f in frames] == [(200, 100, k) for k in range(4)]  # BGR → RGB
    assert frames[0].time == 0.0
    assert all(b.time >= a.time and b.captured_at >= a.captured_at for a, b in zip(frames, frames[1:]))
    assert error is not None


def test_a_camera_is_asked_for_the_size_and_rate_wanted_and_reports_what_it_agreed_to():
    capture = FakeCapture(1)

    camera = CameraSource(1, width=1280, height=48, fps=60, capture_factory=CaptureFactory(capture))

    assert capture.requests[cv2.CAP_PROP_FRAME_WIDTH] == 1280
    assert capture.requests[cv2.CAP_PROP_FRAME_HEIGHT] == 48
    assert capture.requests[cv2.CAP_PROP_FPS] == 60
    assert (camera.info.width, camera.info.height, camera.info.fps) == (64, 48, 30.0)
    assert camera.info.frame_count is None and camera.info.has_audio is False
    camera.close()
    assert capture.released


def test_a_camera_that_stops_delivering_is_reopened_a_few_times_then_reported_unplugged():
    first = FakeCapture(5)
    factory = CaptureFactory(first)

    camera = CameraSource(0, reconnect_attempts=3, backoff=0.01, capture_factory=factory)
    started = time.monotonic()
    frames, error = collect(camera)

    assert [f.index for f in frames] == [0, 1, 2, 3, 4]  # everything before the failure
    assert str(error) == "camera 0 stopped delivering frames (unplugged?)"
    assert factory.calls == [0] * 4  # opened once, then three attempts
    assert first.released
    assert time.monotonic() - started < 1.0


def test_a_camera_that_comes_back_keeps_counting_frames():
    factory = CaptureFactory(FakeCapture(3), FakeCapture(opened=False), FakeCapture(4, tag=50))

    camera = CameraSource(0, reconnect_attempts=3, backoff=0.01, capture_factory=factory)
    frames, error = collect(camera)

    assert [f.index for f in frames] == list(range(7))
    assert [int(f.image[0, 0, 0]) for f in frames] == [200] * 3 + [250] * 4  # the second camera's pictures
    assert all(b.time >= a.time for a, b in zip(frames, frames[1:]))
    assert "stopped delivering frames" in str(error)
    assert len(factory.calls) == 3 + 3  # first camera, two tries to get it back, three more before giving up


def test_by_default_a_camera_gives_up_within_about_two_seconds():
    camera = CameraSource(0, capture_factory=CaptureFactory(FakeCapture(1)))

    started = time.monotonic()
    frames, error = collect(camera)

    assert len(frames) == 1 and error is not None
    assert 0.5 < time.monotonic() - started < 2.5


def test_a_camera_that_opens_but_never_delivers_says_so():
    camera = CameraSource(2, backoff=0.01, capture_factory=CaptureFactory(FakeCapture(0)))

    frames, error = collect(camera)

    assert frames == []
    assert str(error) == "camera 2 opened but delivered no frames (in use by another program?)"


def test_closing_a_camera_from_another_thread_ends_the_iteration_and_releases_it():
    capture = FakeCapture(None, delay=0.01)
    camera = CameraSource(0, capture_factory=CaptureFactory(capture))
    frames: list[Frame] = []
    reader = in_thread(lambda: frames.extend(camera))
    while len(frames) < 3:
        time.sleep(0.005)

    started = time.monotonic()
    camera.close()
    reader.join(1.0)

    assert not reader.is_alive()
    assert time.monotonic() - started < 1.0
    assert capture.released
    with pytest.raises(SourceError, match="closed"):
        iter(camera)


# --- network streams (served by the test on 127.0.0.1) -----------------------------------------

CLIP_FRAMES = 90


def make_ts(path: Path, frames: int = CLIP_FRAMES, fps: int = 30) -> Path:
    """An MPEG-TS clip of :func:`drawn_frame` pictures, a key frame every 5, as a live encoder sends."""
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=fps, options={"g": "5", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(drawn_frame(i, 160, 120), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def ts_bytes(tmp_path_factory) -> bytes:
    return make_ts(tmp_path_factory.mktemp("stream") / "clip.ts").read_bytes()


class ByteServer:
    """A TCP server on 127.0.0.1 that serves ``data`` once per connection, as ``plan`` says:
    ``"all"`` sends it and hangs up, ``"half"`` hangs up half-way, ``"head"`` after the first
    8 kB (headers, not a picture), ``"stall"`` sends nothing and keeps the line open,
    ``"half+stall"`` sends half and keeps the line open. Once the plan is used up it stops
    listening, so connections are refused."""

    def __init__(self, data: bytes, plan: list[str]):
        self.data, self.plan = data, list(plan)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = in_thread(self._serve)

    def _serve(self) -> None:
        held = []
        with self.listener:
            while self.plan and not self._stop.is_set():
                try:
                    client, _ = self.listener.accept()
                except TimeoutError:
                    continue
                self.connections += 1
                step = self.plan.pop(0)
                part = {"half": self.data[: len(self.data) // 2], "head": self.data[:8000]}.get(
                    step.split("+")[0], self.data
                )
                try:
                    if step != "stall":
                        client.sendall(part)
                except OSError:
                    pass
                if step.endswith("stall"):
                    held.append(client)
                else:
                    client.close()
        self._stop.wait(10)
        for client in held:
            client.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def __enter__(self) -> ByteServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def clip_numbers(frames: list[Frame]) -> list[int]:
    """Which :func:`drawn_frame` each frame shows, checking it shows it faithfully (RGB order)."""
    pictures = [drawn_frame(i, 160, 120) for i in range(CLIP_FRAMES)]
    numbers = []
    for frame in frames:
        differences = [mean_difference(frame.image, picture) for picture in pictures]
        best = int(np.argmin(differences))
        assert differences[best] < 4.0, f"frame {frame.index} looks like no clip picture"
        assert mean_difference(frame.image[..., ::-1], pictures[best]) > differences[best] + 3.0  # not BGR
        numbers.append(best)
    return numbers


FAST = {"backoff": 0.05, "open_timeout": 0.5, "read_timeout": 0.5}


def test_a_stream_yields_its_pictures_in_order_with_times_from_its_timestamps(ts_bytes):
    with ByteServer(ts_bytes, ["all"]) as server:
        source = StreamSource(server.url, reconnect_attempts=2, **FAST)
        frames, error = collect(source)
        source.close()

    assert source.is_live is True
    assert (source.info.width, source.info.height, source.info.fps) == (160, 120, 30.0)
    assert len(frames) >= 30  # the packets read while probing are dropped (no buffering), not more
    assert [f.index for f in frames] == list(range(len(frames)))
    numbers = clip_numbers(frames)
    assert numbers == list(range(numbers[0], CLIP_FRAMES))  # consecutive, up to the last one
    assert [f.time for f in frames] == pytest.approx([(n - numbers[0]) / 30 for n in numbers], abs=1e-3)
    assert str(error).startswith(f"stream '{server.url}' dropped and did not come back after 2 attempts")


def test_a_stream_that_drops_is_reconnected_and_keeps_counting(ts_bytes):
    with ByteServer(ts_bytes, ["half", "all"]) as server:
        source = StreamSource(server.url, reconnect_attempts=2, **FAST)
        frames, error = collect(source)

    numbers = clip_numbers(frames)
    restart = next(i for i in range(1, len(numbers)) if numbers[i] < numbers[i - 1])
    assert numbers[restart - 1] < CLIP_FRAMES // 2 + 5  # the first connection ended half-way
    assert numbers[-1] == CLIP_FRAMES - 1  # the second one played to the end
    assert [f.index for f in frames] == list(range(len(frames)))
    times = [f.time for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert source.reconnects == 1 and server.connections == 2
    assert "dropped and did not come back" in str(error)


def test_a_stream_that_goes_quiet_is_reconnected_after_the_read_timeout(ts_bytes):
    with ByteServer(ts_bytes, ["half+stall", "all"]) as server:
        source = StreamSource(server.url, reconnect_attempts=1, **FAST)
        started = time.monotonic()
        frames, error = collect(source)
        elapsed = time.monotonic() - started

    numbers = clip_numbers(frames)
    assert numbers[-1] == CLIP_FRAMES - 1 and source.reconnects == 1
    assert numbers.count(numbers[-1]) == 1 and len(set(numbers)) < len(numbers)  # two runs of the clip
    assert 0.5 <= elapsed < 3.0
    assert "dropped and did not come back after 1 attempts" in str(error)


def test_a_stream_that_reconnects_but_never_sends_a_picture_again_is_given_up(ts_bytes):
    with ByteServer(ts_bytes, ["all"] + ["head"] * 10) as server:
        source = StreamSource(server.url, reconnect_attempts=3, **FAST)
        started = time.monotonic()
        frames, error = collect(source)

    assert frames and source.reconnects == 3 and server.connections == 4
    assert str(error) == (
        f"stream '{server.url}' dropped and did not come back after 3 attempts"
        " (it connects but sends no pictures)"
    )
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        ([], "connection refused"),
        (["stall"] * 3, "no answer within 0.5 s"),
    ],
    ids=["refused", "silent"],
)
def test_a_stream_that_cannot_be_opened_fails_after_its_attempts_within_bounded_time(ts_bytes, plan, reason):
    url = ByteServer(ts_bytes, plan).url if plan else f"tcp://127.0.0.1:{free_port()}"

    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        StreamSource(url, reconnect_attempts=3, **FAST)

    assert str(caught.value).startswith(f"cannot open stream '{url}': {reason}; gave up after 3 attempt(s) in ")
    assert time.monotonic() - started < 0.15 + 3 * 0.5 + 1.0


def test_a_video_file_served_over_http_plays_whole_and_ends(tmp_path):
    make_clip(tmp_path / "clip.mp4", frames=30, audio=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    in_thread(server.serve_forever)
    try:
        source = StreamSource(f"http://127.0.0.1:{server.server_address[1]}/clip.mp4", **FAST)
        frames, error = collect(source)
    finally:
        server.shutdown()
        server.server_close()

    assert error is None and source.reconnects == 0
    assert [f.index for f in frames] == list(range(30))
    assert clip_numbers(frames) == list(range(30))
    assert source.info.duration == pytest.approx(1.0, abs=0.05)


def test_closing_a_quiet_stream_from_another_thread_returns_within_a_second(ts_bytes):
    with ByteServer(ts_bytes, ["half+stall"]) as server:
        source = StreamSource(server.url, reconnect_attempts=1, backoff=0.05, read_timeout=2.0)
        frames: list[Frame] = []
        reader = in_thread(lambda: collect_into(source, frames))
        time.sleep(0.3)  # the reader is now waiting for data that does not come

        started = time.monotonic()
        source.close()
        assert time.monotonic() - started < 1.2
        reader.join(3.0)

    assert not reader.is_alive()
    assert frames and source.reconnects == 0  # it ended, no reconnection after close


def collect_into(source, frames: list[Frame]) -> None:
    frames.extend(collect(source)[0])


def test_a_stream_url_hides_its_password_in_messages():
    port = free_port()
    with pytest.raises(SourceError) as caught:
        StreamSource(f"rtsp://admin:secret@127.0.0.1:{port}/live", reconnect_attempts=1, **FAST)

    assert "secret" not in str(caught.value)
    assert f"rtsp://admin:***@127.0.0.1:{port}/live" in str(caught.value)


# --- folders of images ---------------------------------------------------------------------------


def make_folder(folder: Path, names: list[str]) -> Path:
    """Images told apart by their width: ``img<k>.png`` is 40 + k pixels wide."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        number = int("".join(ch for ch in Path(name).stem if ch.isdigit()) or 0)
        make_image(folder / name, width=40 + number, height=30)
    return folder


@pytest.mark.parametrize(
    ("names", "pattern", "expected_numbers"),
    [
        (["img10.png", "img2.png", "img1.png", "img9.png"], "", [1, 2, 9, 10]),
        (["frame_010.jpg", "frame_002.jpg", "frame_001.jpg"], "", [1, 2, 10]),
        (["a2.png", "a10.png", "b1.jpg", "a1.png"], "*.png", [1, 2, 10]),
        (["shot3.png", "shot12.png", "shot1.png"], "shot?.png", [1, 3]),
    ],
    ids=["folder", "zero-padded", "glob", "single-character-glob"],
)
def test_a_folder_or_glob_yields_its_images_in_natural_order(tmp_path, names, pattern, expected_numbers):
    folder = make_folder(tmp_path / "frames", names)
    spec = str(folder / pattern) if pattern else str(folder)

    with FolderSource(spec) as source:
        frames = list(source)

    assert source.is_live is False
    assert [f.width - 40 for f in frames] == expected_numbers
    assert [f.index for f in frames] == list(range(len(expected_numbers)))
    assert all(f.time is None for f in frames)
    assert (source.info.width, source.info.height) == (40 + expected_numbers[0], 30)


def test_a_folder_with_a_frame_rate_times_its_frames_and_starts_over_when_iterated_again(tmp_path):
    folder = make_folder(tmp_path / "frames", ["1.png", "2.png", "3.png"])

    source = FolderSource(folder, fps=10)

    assert [f.time for f in source] == pytest.approx([0.0, 0.1, 0.2])
    assert [f.index for f in source] == [0, 1, 2]
    assert np.array_equal(next(iter(source)).image, make_image(tmp_path / "again.png", width=41, height=30))


def test_a_folder_skips_files_it_cannot_read_with_a_warning(tmp_path, caplog):
    folder = make_folder(tmp_path / "frames", ["img1.png", "img3.png", "img5.png"])
    (folder / "img2.png").write_bytes(b"not a picture")
    (folder / "img0.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image either, and not even looked at")

    with caplog.at_level(logging.WARNING, logger="vitpose_live.sources"):
        frames = list(FolderSource(folder))

    assert [f.width - 40 for f in frames] == [1, 3, 5]
    assert [f.index for f in frames] == [0, 1, 2]
    messages = [record.getMessage() for record in caplog.records]
    skipped = sorted(Path(text.split("'")[1]).name for text in messages if text.startswith("skipped"))
    assert skipped == ["img0.png", "img2.png"]


@pytest.mark.parametrize(
    ("make", "spec", "message"),
    [
        (lambda d: None, "{d}", "no images in folder '{d}'"),
        (lambda d: (d / "readme.txt").write_text("hi"), "{d}", "no images in folder '{d}'"),
        (lambda d: make_folder(d, ["a1.png"]), "{d}/*.jpg", "no files match '{d}/*.jpg'"),
        (
            lambda d: (d / "bad.png").write_bytes(b"junk"),
            "{d}",
            "none of the 1 file(s) of '{d}' is a readable image",
        ),
    ],
    ids=["empty", "no-image-files", "glob-without-matches", "only-unreadable"],
)
def test_a_folder_with_nothing_to_show_fails_on_opening(tmp_path, make, spec, message):
    folder = tmp_path / "frames"
    folder.mkdir()
    make(folder)

    with pytest.raises(SourceError) as caught:
        FolderSource(spec.format(d=folder))

    assert str(caught.value) == message.format(d=folder)


# --- synthetic scene -----------------------------------------------------------------------------


def test_the_synthetic_scene_is_the_same_for_the_same_seed_and_differs_for_another():
    def first_frames(seed: int) -> list[np.ndarray]:
        source = SyntheticSource(width=160, height=120, frames=3, realtime=False, seed=seed)
        return [f.image for f in source]

    same, again, other = first_frames(1), first_frames(1), first_frames(2)

    assert all(np.array_equal(a, b) for a, b in zip(same, again))
    assert not any(np.array_equal(a, b) for a, b in zip(same, other))
    assert not np.array_equal(same[0], same[1])  # it moves


def test_a_synthetic_frame_carries_its_index_stamped_in_the_corner():
    scenes = [SyntheticSource(realtime=False, seed=seed) for seed in (0, 1)]
    x, y, w, h = scenes[0].stamp_box

    def stamp(source: SyntheticSource, index: int) -> np.ndarray:
        return source.render(index)[y : y + h, x : x + w]

    assert np.array_equal(stamp(scenes[0], 7), stamp(scenes[1], 7))  # only the number is there
    assert not np.array_equal(stamp(scenes[0], 7), stamp(scenes[0], 8))
    written = (stamp(scenes[0], 7) > 200).all(axis=2).sum()
    assert 20 < written < w * h // 4  # white text on black


def test_the_synthetic_ground_truth_holds_where_the_figures_are_drawn():
    source = SyntheticSource(width=320, height=240, persons=3, realtime=False, seed=5)
    background = SyntheticSource(width=320, height=240, persons=0, realtime=False, seed=5)

    for index in (0, 17, 40):
        truth = source.ground_truth(index)
        image, empty = source.render(index), background.render(index)
        assert truth.shape == (3, 17, 2) and truth.dtype == np.float32
        assert (truth[..., 0] >= 0).all() and (truth[..., 0] < 320).all()
        assert (truth[..., 1] >= 0).all() and (truth[..., 1] < 240).all()
        for person in truth:
            for a, b in ((5, 11), (6, 12), (11, 13), (12, 14), (5, 7), (6, 8)):  # torso, thighs, upper arms
                mx, my = np.round((person[a] + person[b]) / 2).astype(int)
                assert mean_difference(image[my, mx], empty[my, mx]) > 40, (index, a, b)

    assert not np.allclose(source.ground_truth(0), source.ground_truth(10))
    twin = SyntheticSource(width=320, height=240, persons=3, seed=5)
    assert np.array_equal(source.ground_truth(17), twin.ground_truth(17))


def test_a_realtime_synthetic_source_keeps_to_its_frame_rate():
    source = SyntheticSource(width=128, height=96, fps=50, frames=16, realtime=True)

    started = time.monotonic()
    frames = list(source)
    elapsed = time.monotonic() - started

    assert source.is_live is True
    assert [f.index for f in frames] == list(range(16))
    assert [f.time for f in frames] == pytest.approx([i / 50 for i in range(16)])
    assert 0.27 < elapsed < 0.6  # 15 intervals of 20 ms
    gaps = np.diff([f.captured_at for f in frames])
    assert np.median(gaps) == pytest.approx(0.02, abs=0.006)


def test_a_synthetic_source_not_in_realtime_is_not_live_and_does_not_wait():
    source = SyntheticSource(width=128, height=96, fps=1, frames=5, realtime=False)

    started = time.monotonic()
    frames = list(source)

    assert source.is_live is False and len(frames) == 5
    assert time.monotonic() - started < 0.5


def test_closing_a_slow_synthetic_source_stops_it_promptly():
    source = SyntheticSource(width=128, height=96, fps=0.5)
    frames: list[Frame] = []
    reader = in_thread(lambda: frames.extend(source))
    while not frames:
        time.sleep(0.005)

    started = time.monotonic()
    source.close()
    reader.join(1.0)

    assert not reader.is_alive() and time.monotonic() - started < 0.2
    assert len(frames) == 1


# --- in the pipeline ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["synthetic", "camera", "quiet stream"])
def test_a_live_source_in_the_pipeline_stops_within_a_second(ts_bytes, kind):
    server = ByteServer(ts_bytes, ["half+stall"]) if kind == "quiet stream" else None
    if kind == "synthetic":
        source = SyntheticSource(width=128, height=96, fps=100)
    elif kind == "camera":
        source = CameraSource(0, capture_factory=CaptureFactory(FakeCapture(None, delay=0.005)))
    else:  # after half the clip the server goes quiet: the capture thread waits in a read
        source = StreamSource(server.url, reconnect_attempts=1, backoff=0.05, read_timeout=3.0)
    pipeline = Pipeline(lambda: source, lambda frame: frame.index, policy=Policy.LATEST)

    with pipeline:
        indices = []
        for index in pipeline.results():
            indices.append(index)
            if len(indices) == 3:
                break
        time.sleep(0.2)
        started = time.monotonic()
        pipeline.stop()
        stopped_in = time.monotonic() - started

    assert stopped_in < 1.1
    assert indices == sorted(set(indices))
    if server is not None:
        server.close()


# --- open_source ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def media_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("open")
    images = make_folder(folder / "images", ["p1.png", "p2.png"])
    return {
        "video": make_clip(folder / "clip.mp4", frames=3, audio=False),
        "image": images / "p1.png",
        "folder": images,
        "glob": images / "p?.png",
    }


@pytest.mark.parametrize(
    ("spec", "options", "kind", "attributes"),
    [
        ("synthetic", {}, SyntheticSource, {"persons": 2, "fps": 30.0, "width": 640, "is_live": True}),
        ("synthetic:persons=3,fps=60", {}, SyntheticSource, {"persons": 3, "fps": 60.0}),
        (
            "synthetic:realtime=false, frames=5",
            {"seed": 4},
            SyntheticSource,
            {"is_live": False, "frames": 5, "seed": 4},
        ),
        ("video", {}, VideoFileSource, {"is_live": False, "threads": None}),
        ("video", {"threads": 1}, VideoFileSource, {"threads": 1}),
        ("image", {}, ImageSource, {"is_live": False}),
        ("folder", {}, FolderSource, {"is_live": False}),
        ("glob", {"fps": 5}, FolderSource, {"fps": 5.0}),
    ],
)
def test_open_source_picks_the_source_from_the_spec(media_files, spec, options, kind, attributes):
    source = open_source(str(media_files.get(spec, spec)), **options)

    assert type(source) is kind
    assert {name: getattr(source, name) for name in attributes} == attributes
    source.close()


@pytest.mark.parametrize("spec", ["0", 0, "2", 2])
def test_open_source_takes_a_number_for_a_camera(spec):
    factory = CaptureFactory(FakeCapture(1))

    source = open_source(spec, width=64, capture_factory=factory)

    assert type(source) is CameraSource and source.is_live is True
    assert factory.calls == [int(spec)] and source.info.width == 64


@pytest.mark.parametrize("scheme", ["tcp", "rtsp", "http", "rtmp", "udp"])
def test_open_source_takes_a_url_for_a_stream(scheme):
    url = f"{scheme}://127.0.0.1:{free_port()}/live"

    with pytest.raises(SourceError, match=r"^cannot open stream '.*': .*; gave up after 1 attempt\(s\) in "):
        open_source(url, reconnect_attempts=1, **FAST)


def test_open_source_streams_a_served_clip(ts_bytes):
    with ByteServer(ts_bytes, ["all"]) as server:
        source = open_source(server.url, reconnect_attempts=1, **FAST)
        frames, _ = collect(source, limit=5)
        source.close()

    assert type(source) is StreamSource and [f.index for f in frames] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("spec", "options", "error", "message"),
    [
        ("synthetic:people=3", {}, SourceError, "bad synthetic option 'people=3'"),
        ("synthetic:fps=fast", {}, SourceError, "synthetic option fps needs a number, got 'fast'"),
        ("gopher://127.0.0.1/live", {}, SourceError, "unsupported URL scheme 'gopher://'"),
        ("video", {"fps": 5}, TypeError, "a video file source takes only threads, got fps"),
        ("image", {"threads": 1}, TypeError, "an image source takes no options, got threads"),
        ("missing.mp4", {}, SourceError, "file not found"),
    ],
)
def test_open_source_explains_what_it_cannot_open(media_files, spec, options, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_source(str(media_files.get(spec, spec)), **options)


@pytest.mark.parametrize("width, height", [(640, 480), (320, 240), (1920, 1080)])
def test_the_synthetic_frame_stamp_is_not_under_the_hud(width, height):
    from vitpose_live.render import HudAnnotator

    source = SyntheticSource(width=width, height=height, realtime=False)
    hud = HudAnnotator().annotate(np.zeros((height, width, 3), np.uint8), ["fps 30.0", "latency 120 ms", "persons 2", "dropped 0"])
    x, y, w, h = source.stamp_box
    assert hud.any() and not hud[y : y + h, x : x + w].any()


# --- the Source protocol ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind", "live", "fps", "frame_count"),
    [
        ("image", SourceKind.IMAGE, False, None, 1),
        ("video", SourceKind.VIDEO, False, 30.0, 3),
        ("folder", SourceKind.FOLDER, False, 30.0, 2),
        ("camera", SourceKind.CAMERA, True, 30.0, None),
        ("stream", SourceKind.STREAM, True, 30.0, None),
        ("synthetic", SourceKind.SYNTHETIC, True, 30.0, None),
    ],
)
def test_every_source_has_a_kind_an_info_and_says_whether_it_is_live(
    media_files, ts_bytes, spec, kind, live, fps, frame_count
):
    with ByteServer(ts_bytes, ["all"]) as server:
        if spec == "camera":
            source = CameraSource(0, capture_factory=CaptureFactory(FakeCapture(1)))
        elif spec == "stream":
            source = StreamSource(server.url, reconnect_attempts=1, **FAST)
        else:
            source = open_source(str(media_files.get(spec, spec)))
        with source:
            first = next(iter(source))

    assert isinstance(source, Source)
    assert source.kind is kind and source.is_live is live
    assert isinstance(source.info, VideoInfo)
    assert (source.info.fps, source.info.frame_count) == (fps, frame_count)
    assert (source.info.width, source.info.height) == first.image.shape[1::-1]
