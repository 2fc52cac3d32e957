"""The web app in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright,
with a fake camera playing a clip of the synthetic stick figures. The webcam stream must keep
bringing back annotated frames, and an image uploaded in the Image tab must come back annotated.
Screenshots go to test-artifacts/."""

import os
import socket
import time
from pathlib import Path

import cv2
import pytest
from needs import need

from vitpose_live.sources import SyntheticSource

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"

need(os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK), f"no {CHROMIUM} (Debian package 'chromium')",
     module=True)  # fmt: skip
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    need(False, "the 'playwright' Python package is not installed", module=True)


def write_y4m(path: Path, *, width: int = 320, height: int = 240, fps: int = 15, frames: int = 45) -> Path:
    """A YUV4MPEG2 clip (what Chromium's fake camera plays, in a loop) of the synthetic scene."""
    source = SyntheticSource(width=width, height=height, fps=fps, frames=frames, persons=2, realtime=False)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in source:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame.image, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url(pose_dir, detector_dir):
    from vitpose_live.ui.gradio_app import PoseWebApp

    demo = PoseWebApp(pose_dir, detector_dir, "cpu").build()
    _, address, _ = demo.launch(
        prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), quiet=True
    )
    yield address
    demo.close()


@pytest.fixture(scope="module")
def page(url, tmp_path_factory):
    clip = write_y4m(tmp_path_factory.mktemp("camera") / "camera.y4m")
    args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1100})
            page = context.new_page()
            page.errors = []  # uncaught exceptions in the page's scripts
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            page.goto(url)
            page.wait_for_selector("#camera", timeout=60_000)
            yield page
        finally:
            browser.close()


def _screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def _set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_the_webcam_stream_keeps_coming_back_annotated(page):
    # Detect on every frame, few persons: the tiny random detector finds dozens of boxes.
    _set_number(page, "det-every", 1)
    _set_number(page, "max-persons", 3)
    page.click("#camera >> text=Click to Access Webcam")
    page.wait_for_selector("#camera video", state="visible", timeout=30_000)
    page.click("#camera button[aria-label='capture photo']")  # "Record": starts streaming
    sources: list[str] = []
    persons_seen = 0
    deadline = time.monotonic() + 90
    while (len(set(sources)) < 5 or not persons_seen) and time.monotonic() < deadline:
        image = page.query_selector("#camera-out img")
        src = image.get_attribute("src") if image is not None else None
        if src and (not sources or src != sources[-1]):
            sources.append(src)
        stats = page.input_value("#live-stats textarea")
        if "person(s)" in stats:
            persons_seen = max(persons_seen, int(stats.split(" person(s)")[0].rsplit("· ", 1)[1]))
        time.sleep(0.1)
    assert len(set(sources)) >= 5, f"the annotated frame changed only {len(set(sources))} time(s)"
    assert persons_seen, "no frame came back with a person in it"
    stats = page.input_value("#live-stats textarea")
    assert "fps" in stats and int(stats.rsplit("frame", 1)[1]) >= 5, stats
    shot = _screenshot(page, "gradio.png")
    assert shot.stat().st_size > 10_000
    assert not page.errors, page.errors


def test_an_uploaded_image_comes_back_annotated_with_keypoints(page, tmp_path):
    picture = tmp_path / "figures.png"
    source = SyntheticSource(width=320, height=240, persons=2, realtime=False)
    cv2.imwrite(str(picture), cv2.cvtColor(source.render(3), cv2.COLOR_RGB2BGR))
    page.get_by_role("tab", name="Image").click()
    page.wait_for_selector("#image-in", state="visible")
    page.set_input_files("#image-in input[type=file]", str(picture))
    page.wait_for_selector("#image-in img", timeout=30_000)
    page.click("#image-run")
    page.wait_for_selector("#image-out img", timeout=60_000)
    assert page.get_attribute("#image-out img", "src")
    page.wait_for_function(
        "() => document.querySelector('#image-json')?.innerText.includes('keypoint_names')", timeout=30_000
    )
    assert "figures.png" in page.inner_text("#image-json")
    _screenshot(page, "gradio-image.png")
    assert not page.errors, page.errors
