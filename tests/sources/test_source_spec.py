"""The one classifier of source specs, the back-off every reconnecting source shares, and GIFs
(one frame in is an image, more is a video)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import vitpose_live
from vitpose_live.sources import (
    Backoff,
    ImageSource,
    SourceError,
    SourceKind,
    SourceSpec,
    VideoFileSource,
    classify,
    open_file_source,
    open_source,
    read_image,
)

K = SourceKind


def make_gif(path: Path, frames: int, *, width: int = 40, height: int = 30) -> Path:
    """A palette GIF of ``frames`` frames, each a different flat gray with a bright square."""
    pictures = []
    for k in range(frames):
        picture = np.full((height, width, 3), 40 + 60 * k, np.uint8)
        picture[5:15, 5:15] = 250
        pictures.append(Image.fromarray(picture).convert("P"))
    pictures[0].save(path, save_all=frames > 1, append_images=pictures[1:], duration=100, loop=0)
    return path


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("specs")
    (folder / "frames").mkdir()
    make_gif(folder / "one.gif", 1)
    make_gif(folder / "three.gif", 3)
    (folder / "not_a.gif").write_bytes(b"this is text")
    return folder


@pytest.mark.parametrize(
    ("spec", "kind", "live"),
    [
        (0, K.CAMERA, True),
        (2, K.CAMERA, True),
        ("2", K.CAMERA, True),
        (" 0 ", K.CAMERA, True),
        ("synthetic", K.SYNTHETIC, True),
        ("synthetic:persons=3", K.SYNTHETIC, True),
        ("synthetic:realtime=false,frames=5", K.SYNTHETIC, False),
        ("synthetic_walk.mp4", K.VIDEO, False),
        ("rtsp://cam.local:554/live", K.STREAM, True),
        ("RTMP://example.com/app/key", K.STREAM, True),
        ("https://example.com/clip.mp4", K.STREAM, True),
        ("{place}/frames", K.FOLDER, False),
        ("{place}/frames/*.png", K.FOLDER, False),
        ("img_??.jpg", K.FOLDER, False),
        ("x.jpg", K.IMAGE, False),
        ("X.PNG", K.IMAGE, False),
        ("x.mp4", K.VIDEO, False),
        ("x.gif", K.VIDEO, False),  # missing: opening it says so
        ("{place}/one.gif", K.IMAGE, False),
        ("{place}/three.gif", K.VIDEO, False),
        ("{place}/not_a.gif", K.VIDEO, False),
    ],
)
def test_classify_says_what_a_spec_names(place, spec, kind, live):
    if isinstance(spec, str):
        spec = spec.format(place=place)

    result = classify(spec)

    assert result == SourceSpec(str(spec).strip(), kind)
    assert result.live is live
    assert result.is_file is (kind in (K.IMAGE, K.VIDEO))


def test_classify_takes_a_path(place):
    assert classify(place / "one.gif") == SourceSpec(str(place / "one.gif"), K.IMAGE)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ftp://example.com/clip.mp4", "unsupported URL scheme 'ftp://' (use one of http, https, rtmp,"),
        ("gopher://127.0.0.1/live", "unsupported URL scheme 'gopher://'"),
        ("synthetic:people=3", "bad synthetic option 'people=3'"),
        ("synthetic:fps=fast", "synthetic option fps needs a number, got 'fast'"),
        ("  ", "no source given"),
    ],
)
def test_classify_refuses_what_no_source_can_open_with_one_line(spec, message):
    with pytest.raises(SourceError) as caught:
        classify(spec)

    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_importing_the_classifier_loads_neither_torch_nor_pyav_nor_opencv():
    code = (
        "import sys, vitpose_live.sources.spec, vitpose_live.sources\n"
        "from vitpose_live.sources import classify, SourceKind\n"
        "assert classify('synthetic').kind is SourceKind.SYNTHETIC\n"
        "print(sorted(m for m in ('torch', 'av', 'cv2') if m in sys.modules))"
    )
    root = str(Path(vitpose_live.__file__).parents[1])  # this checkout, not an installed copy
    env = {**os.environ, "PYTHONPATH": root}
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_one_frame_gif_opens_as_an_image_and_a_longer_one_as_a_video(place):
    image = open_source(str(place / "one.gif"))
    video = open_file_source(place / "three.gif")

    assert type(image) is ImageSource and image.info.frame_count == 1 and image.info.fps is None
    assert (image.info.width, image.info.height) == (40, 30)
    assert type(video) is VideoFileSource and len(list(video)) == 3
    video.close()


def test_a_gif_is_read_with_pyav_when_opencv_cannot(place, monkeypatch):
    expected = read_image(place / "one.gif")
    monkeypatch.setattr(cv2, "imdecode", lambda *args: None)  # as OpenCV before 4.11

    image = read_image(place / "one.gif")

    assert image.shape == (30, 40, 3) and image.dtype == np.uint8 and image.flags.c_contiguous
    assert np.abs(image.astype(int) - expected.astype(int)).mean() < 2
    with pytest.raises(SourceError, match="not an image OpenCV can decode"):
        read_image(place / "not_a.gif")


# --- back-off -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backoff", "delays"),
    [
        (Backoff(3, first=0.25), [0.25, 0.5, 1.0]),
        (Backoff(5, first=0.5, most=2.0), [0.5, 1.0, 2.0, 2.0, 2.0]),
        (Backoff(0, first=1.0), []),
    ],
)
def test_backoff_doubles_up_to_its_cap(backoff, delays):
    assert [backoff.delay(attempt) for attempt in range(1, backoff.attempts + 1)] == delays


def test_backoff_waits_before_each_retry_and_stops_at_once_when_told():
    stop = threading.Event()
    started = time.monotonic()
    assert list(Backoff(3, first=0.02).retries(stop)) == [1, 2, 3]
    assert time.monotonic() - started >= 0.02 + 0.04 + 0.08 - 0.005

    stop.set()
    started = time.monotonic()
    assert list(Backoff(3, first=10.0).retries(stop)) == []
    assert time.monotonic() - started < 0.1


def test_backoff_refuses_negative_numbers():
    with pytest.raises(ValueError, match="non-negative"):
        Backoff(-1, first=0.1)
