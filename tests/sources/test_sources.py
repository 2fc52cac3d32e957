"""File and image sources: what comes out of real and generated clips, and how bad files fail."""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from support.media import CORNER, drawn_frame, make_clip, make_image, make_song

from vitpose_live.sources import (
    IMAGE_EXTENSIONS,
    ImageSource,
    SourceError,
    VideoFileSource,
    VideoInfo,
    open_file_source,
    read_image,
)
from vitpose_live.types import Frame

# Real clips shipped with gradio, found without importing it (that takes seconds).
GRADIO_VIDEOS = Path(importlib.util.find_spec("gradio").origin).parent / "media_assets" / "videos"

CLIPS = {  # name -> make_clip arguments; all 160x120, 30 frames at 30 fps unless said
    "aac.mp4": {},
    "mp3.mp4": {"audio_codec": "mp3"},
    "silent.mp4": {"audio": False},
    "mpeg4_pcm.avi": {"codec": "mpeg4", "audio_codec": "pcm_s16le"},
    "pcm.mkv": {"audio_codec": "pcm_s16le"},
    "moov_at_end.mp4": {"faststart": False},
    "vfr.mp4": {"audio": False, "frames": 6, "times": [0.0, 0.03, 0.1, 0.12, 0.5, 0.52]},
    "rot90.mp4": {"audio": False, "frames": 3, "rotation": 90},
    "rot-90.mp4": {"audio": False, "frames": 3, "rotation": -90},
    "rot180.mp4": {"audio": False, "frames": 3, "rotation": 180},
    "odd.mp4": {"audio": False, "frames": 3, "codec": "mpeg4", "width": 161, "height": 121},
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {name: make_clip(folder / name, **kwargs) for name, kwargs in CLIPS.items()}


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def corner_holding_the_marker(image: np.ndarray) -> str:
    corners = {
        "top-left": image[:CORNER, :CORNER],
        "top-right": image[:CORNER, -CORNER:],
        "bottom-left": image[-CORNER:, :CORNER],
        "bottom-right": image[-CORNER:, -CORNER:],
    }
    return max(corners, key=lambda name: corners[name].mean())


# --- videos: frames -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["aac.mp4", "mp3.mp4", "silent.mp4", "mpeg4_pcm.avi", "pcm.mkv"])
def test_a_video_yields_every_frame_in_order_as_upright_rgb_with_its_time(clips, name):
    with VideoFileSource(clips[name]) as source:
        frames = list(source)

    assert [f.index for f in frames] == list(range(30))
    assert all(isinstance(f, Frame) for f in frames)
    for frame in frames:
        assert frame.image.shape == (120, 160, 3)
        assert frame.image.dtype == np.uint8 and frame.image.flags["C_CONTIGUOUS"]
        assert frame.time == pytest.approx(frame.index / 30, abs=1e-3)  # mkv stores milliseconds
        assert mean_difference(frame.image, drawn_frame(frame.index, 160, 120)) < 6  # RGB, not BGR
    assert all(a.captured_at <= b.captured_at for a, b in itertools.pairwise(frames))


@pytest.mark.parametrize(
    "name, expected",
    [
        ("aac.mp4", dict(width=160, height=120, fps=30.0, frame_count=30, has_audio=True, codec="h264")),
        ("silent.mp4", dict(width=160, height=120, fps=30.0, frame_count=30, has_audio=False, codec="h264")),
        (
            "mpeg4_pcm.avi",
            dict(width=160, height=120, fps=30.0, frame_count=30, has_audio=True, codec="mpeg4"),
        ),
        ("pcm.mkv", dict(width=160, height=120, fps=30.0, frame_count=None, has_audio=True, codec="h264")),
        ("odd.mp4", dict(width=161, height=121, fps=30.0, frame_count=3, has_audio=False, codec="mpeg4")),
        ("rot90.mp4", dict(width=120, height=160, rotation=90)),
        ("rot-90.mp4", dict(width=120, height=160, rotation=-90)),
        ("rot180.mp4", dict(width=160, height=120, rotation=180)),
    ],
)
def test_video_info_describes_the_file_and_the_frames_it_yields(clips, name, expected):
    with VideoFileSource(clips[name]) as source:
        info = source.info
        first = next(iter(source))

    assert isinstance(info, VideoInfo)
    assert {key: getattr(info, key) for key in expected} == expected
    assert (first.width, first.height) == (info.width, info.height)
    if info.frame_count:
        assert info.duration == pytest.approx(info.frame_count / info.fps, abs=0.05)


@pytest.mark.parametrize(
    "name, width, height, frames, has_audio",
    [
        ("b.mp4", 480, 270, 150, True),
        ("muted_b.mp4", 480, 270, 150, False),
        ("b.avi", 480, 270, 150, True),  # its index lists 151 entries; one of them is an empty chunk
    ],
)
def test_real_clips_decode_completely_with_increasing_times(name, width, height, frames, has_audio):
    with VideoFileSource(GRADIO_VIDEOS / name) as source:
        got = list(source)
        info = source.info

    assert (info.width, info.height, info.has_audio, info.fps) == (width, height, has_audio, 30.0)
    assert len(got) == frames
    assert got[0].time == 0.0
    assert all(a.time < b.time for a, b in itertools.pairwise(got))
    assert got[-1].time == pytest.approx(info.duration - 1 / 30, abs=0.04)


def test_decoding_on_the_reading_thread_gives_the_same_frames_as_ffmpegs_threads():
    clip = GRADIO_VIDEOS / "a.mp4"
    with VideoFileSource(clip) as threaded, VideoFileSource(clip, threads=1) as single:
        pairs = list(zip(itertools.islice(threaded, 12), itertools.islice(single, 12), strict=True))

    assert (threaded.threads, single.threads) == (None, 1)
    assert len(pairs) == 12
    for a, b in pairs:
        assert (a.index, a.time) == (b.index, b.time)
        assert np.array_equal(a.image, b.image)


@pytest.mark.parametrize("threads", [0, -1])
def test_a_video_cannot_decode_on_no_threads(clips, threads):
    with pytest.raises(ValueError, match="threads must be at least 1"):
        VideoFileSource(clips["silent.mp4"], threads=threads)


def test_a_full_hd_clip_is_described_without_decoding_it_all():
    with VideoFileSource(GRADIO_VIDEOS / "a.mp4") as source:
        info = source.info

    assert (info.width, info.height, info.frame_count, info.has_audio) == (1920, 1080, 209, True)
    assert info.duration == pytest.approx(209 / 30, abs=0.05)


def test_variable_frame_rate_times_come_from_the_timestamps(clips):
    with VideoFileSource(clips["vfr.mp4"]) as source:
        times = [frame.time for frame in source]

    assert times == pytest.approx(CLIPS["vfr.mp4"]["times"], abs=1e-6)


@pytest.mark.parametrize(
    "name, marker",
    [("rot90.mp4", "bottom-left"), ("rot-90.mp4", "top-right"), ("rot180.mp4", "bottom-right")],
)
def test_rotated_videos_come_out_upright_exactly_as_opencv_shows_them(clips, name, marker):
    with VideoFileSource(clips[name]) as source:
        ours = next(iter(source)).image
    capture = cv2.VideoCapture(str(clips[name]))  # OpenCV applies the display matrix by default
    ok, bgr = capture.read()
    capture.release()

    assert ok
    assert corner_holding_the_marker(ours) == marker
    assert ours.shape == bgr.shape
    assert mean_difference(ours, bgr[..., ::-1]) < 1


def test_iterating_again_starts_again_from_the_first_frame(clips):
    with VideoFileSource(clips["silent.mp4"]) as source:
        first_pass = [frame.index for frame in source]
        second_pass = [(frame.index, frame.time) for frame in source]

    assert first_pass == list(range(30))
    assert [i for i, _ in second_pass] == list(range(30)) and second_pass[0][1] == 0.0


def test_closing_ends_an_iteration_in_progress(clips):
    source = VideoFileSource(clips["silent.mp4"])
    frames = iter(source)
    next(frames)
    source.close()

    assert list(frames) == []


def test_a_closed_source_cannot_be_iterated(clips):
    source = VideoFileSource(clips["silent.mp4"])
    source.close()
    source.close()  # twice is fine

    with pytest.raises(SourceError, match="closed"):
        iter(source)


# --- videos: bad files ---------------------------------------------------------------------------


def cut(path: Path, fraction: float, to: Path) -> Path:
    data = path.read_bytes()
    to.write_bytes(data[: int(len(data) * fraction)])
    return to


def cut_after_mdat_header(path: Path, to: Path) -> Path:
    data = path.read_bytes()
    to.write_bytes(data[: data.index(b"mdat") + 4])  # index and headers intact, no picture data
    return to


def scramble_middle(path: Path, to: Path) -> Path:
    data = bytearray(path.read_bytes())
    start, stop = int(len(data) * 0.6), int(len(data) * 0.8)  # past the first key frame
    data[start:stop] = np.random.default_rng(0).integers(0, 256, stop - start, dtype=np.uint8).tobytes()
    to.write_bytes(bytes(data))
    return to


def zero_frame_file(path: Path, fmt: str, codec: str) -> Path:
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        container.start_encoding()
    return path


BAD_FILES = [
    # (what, make(tmp_path, clips) -> path, message pattern)
    ("missing", lambda tmp, clips: tmp / "nope.mp4", r"^cannot open video '.*nope\.mp4': file not found$"),
    ("a directory", lambda tmp, clips: tmp, r"^cannot open video '.*': it is a directory$"),
    (
        "empty",
        lambda tmp, clips: (tmp / "empty.mp4", (tmp / "empty.mp4").touch())[0],
        r"^'.*empty\.mp4' is not a video FFmpeg can read \(invalid data",
    ),
    (
        "text named .mp4",
        lambda tmp, clips: (tmp / "notes.mp4", (tmp / "notes.mp4").write_text("hi\n" * 99))[0],
        r"^'.*notes\.mp4' is not a video FFmpeg can read \(invalid data",
    ),
    (
        "header-only avi",
        lambda tmp, clips: zero_frame_file(tmp / "zero.avi", "avi", "mpeg4"),
        r"^'.*zero\.avi' has no frames$",
    ),
    (
        "mp4 without samples",
        lambda tmp, clips: zero_frame_file(tmp / "zero.mp4", "mp4", "libx264"),
        r"^'.*zero\.mp4' is not a video \(no video stream\)$",
    ),
    (
        "music with cover art",
        lambda tmp, clips: make_song(tmp / "song.mp3"),
        r"^'.*song\.mp3' is not a video \(no video stream\)$",
    ),
    (
        "mp4 cut before its moov",
        lambda tmp, clips: cut(clips["moov_at_end.mp4"], 0.5, tmp / "cut.mp4"),
        r"^'.*cut\.mp4' is not a video FFmpeg can read",
    ),
    (
        "mp4 cut inside its moov",
        lambda tmp, clips: cut(clips["aac.mp4"], 0.02, tmp / "cut.mp4"),
        r"^'.*cut\.mp4' is not a video FFmpeg can read",
    ),
    (
        "mp4 cut before its pictures",
        lambda tmp, clips: cut_after_mdat_header(clips["silent.mp4"], tmp / "cut.mp4"),
        r"^'.*cut\.mp4' has no decodable frames",
    ),
]


@pytest.mark.parametrize("what, make, message", BAD_FILES, ids=[row[0] for row in BAD_FILES])
def test_unusable_videos_fail_on_opening_with_a_one_line_message(tmp_path, clips, what, make, message):
    with pytest.raises(SourceError, match=message) as caught:
        VideoFileSource(make(tmp_path, clips))

    assert "\n" not in str(caught.value)


def decode_in_a_thread(path: Path, seconds: float = 20.0) -> list[Frame]:
    """All frames of ``path``, failing the test instead of hanging when decoding never ends."""
    frames: list[Frame] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with VideoFileSource(path) as source:
                frames.extend(source)
        except BaseException as error:  # handed to the test thread
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"decoding {path.name} did not finish in {seconds} s"
    if errors:
        raise errors[0]
    return frames


@pytest.mark.parametrize("name", ["aac.mp4", "mpeg4_pcm.avi", "pcm.mkv"])
def test_a_file_cut_in_half_yields_the_frames_before_the_cut(tmp_path, clips, name):
    frames = decode_in_a_thread(cut(clips[name], 0.5, tmp_path / f"half_{name}"))

    assert 0 < len(frames) < 30
    assert [f.index for f in frames] == list(range(len(frames)))
    for frame in frames[:-1]:  # the last one may be half-drawn
        assert mean_difference(frame.image, drawn_frame(frame.index, 160, 120)) < 6


def test_garbage_in_the_middle_ends_the_frames_with_a_warning(tmp_path, clips, caplog):
    damaged = scramble_middle(clips["silent.mp4"], tmp_path / "damaged.mp4")

    with caplog.at_level(logging.WARNING, logger="vitpose_live.sources"):
        frames = decode_in_a_thread(damaged)

    assert 0 < len(frames) < 30
    assert any("decode error" in record.getMessage() for record in caplog.records)


# --- images --------------------------------------------------------------------------------------


def gray_as_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2)


@pytest.mark.parametrize(
    "mode, extension, expected",
    [
        ("rgb", ".png", lambda written: written),
        ("rgb", ".bmp", lambda written: written),
        ("gray", ".png", gray_as_rgb),
        ("rgba", ".png", lambda written: written[..., :3]),
        ("rgb16", ".png", lambda written: np.round(written / 257).astype(np.uint8)),
        ("gray16", ".png", lambda written: gray_as_rgb(np.round(written / 257).astype(np.uint8))),
        ("gray16", ".tiff", lambda written: gray_as_rgb(np.round(written / 257).astype(np.uint8))),
    ],
)
def test_images_of_any_kind_are_read_as_8_bit_rgb(tmp_path, mode, extension, expected):
    path = tmp_path / f"{mode}{extension}"
    written = make_image(path, width=64, height=48, mode=mode)

    image = read_image(path)

    assert image.shape == (48, 64, 3) and image.dtype == np.uint8 and image.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(image, expected(written))


def test_a_jpeg_is_turned_upright_by_its_exif_orientation(tmp_path):
    from PIL import Image

    picture = Image.fromarray(drawn_frame(0, 64, 48))
    exif = picture.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    picture.save(tmp_path / "phone.jpg", exif=exif, quality=95)

    image = read_image(tmp_path / "phone.jpg")

    assert image.shape == (64, 48, 3)
    assert corner_holding_the_marker(image) == "top-right"


def test_an_image_source_yields_one_frame_without_a_time(tmp_path):
    written = make_image(tmp_path / "still.png", width=64, height=48)

    with ImageSource(tmp_path / "still.png") as source:
        frames = list(source)

    assert len(frames) == 1
    assert (frames[0].index, frames[0].time) == (0, None)
    assert (source.width, source.height) == (64, 48)
    np.testing.assert_array_equal(frames[0].image, written)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.png", None, r"^cannot read image '.*missing\.png': file not found$"),
        ("empty.png", b"", r"^cannot read image '.*empty\.png': not an image"),
        ("notes.jpg", b"not really a jpeg\n", r"^cannot read image '.*notes\.jpg': not an image"),
    ],
)
def test_unreadable_images_fail_with_a_one_line_message(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)

    with pytest.raises(SourceError, match=message):
        ImageSource(tmp_path / name)


# --- choosing a source ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kind",
    [
        ("photo.png", ImageSource),
        ("PHOTO.JPG", ImageSource),
        ("clip.mp4", VideoFileSource),
        ("clip.avi", VideoFileSource),
        ("clip.mkv", VideoFileSource),
    ],
)
def test_the_extension_picks_image_or_video(tmp_path, name, kind):
    path = tmp_path / name
    if kind is ImageSource:
        make_image(path.with_suffix(path.suffix.lower()))
        os.replace(path.with_suffix(path.suffix.lower()), path)
    else:
        make_clip(path, frames=2, audio=False, codec="mpeg4" if name.endswith(".avi") else "libx264")

    with open_file_source(path) as source:
        assert type(source) is kind
        assert len(list(source)) >= 1


def test_image_extensions_are_lower_case_with_a_dot():
    assert {".png", ".jpg", ".jpeg"} <= IMAGE_EXTENSIONS
    assert all(ext.startswith(".") and ext == ext.lower() for ext in IMAGE_EXTENSIONS)
