"""A browser with a fake camera, for the browser tests and ``bench/bench_web.py``: a clip of the
synthetic stick figures played by Chromium's fake capture device, the trivial Gradio stream app
the web app is measured against, and the measurement of a page's webcam output rate."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

import cv2
import numpy as np

from vitpose_live.sources import SyntheticSource

CHROMIUM = "/usr/bin/chromium"
STREAM_EVERY = 0.1  # the trivial app streams as often as the web app does
CAMERA = {  # what both apps ask the browser for
    "video": {
        "width": {"ideal": 640, "max": 1280},
        "height": {"ideal": 480, "max": 720},
        "frameRate": {"ideal": 15, "max": 30},
    },
    "audio": False,
}


def have_chromium() -> bool:
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


def write_y4m(path: Path, *, width: int = 320, height: int = 240, fps: int = 15, frames: int = 45) -> Path:
    """A YUV4MPEG2 clip (what Chromium's fake camera plays, in a loop) of the synthetic scene."""
    source = SyntheticSource(width=width, height=height, fps=fps, frames=frames, persons=2, realtime=False)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in source:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame.image, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(demo) -> str:
    """Serve ``demo`` on a free local port; returns its address."""
    _, address, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    return address


TRIVIAL_FRAMES = [0]  # frames the trivial app answered (benchmarks read it)


def trivial_stream_app(stream_every: float = STREAM_EVERY):
    """Gradio's own cost: the same streaming webcam input, a function that only draws a line."""
    import gradio as gr

    def line(frame):
        if frame is None:
            return None
        TRIVIAL_FRAMES[0] += 1
        frame = np.array(frame)  # Gradio's decoded frame is read-only
        cv2.line(frame, (0, 0), (frame.shape[1] - 1, frame.shape[0] - 1), (255, 0, 0), 3)
        return frame

    with gr.Blocks(title="trivial stream") as demo:
        with gr.Row():
            camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", elem_id="camera",
                              webcam_options=gr.WebcamOptions(mirror=False, constraints=CAMERA))
            out = gr.Image(elem_id="camera-out")
        camera.stream(line, camera, out, stream_every=stream_every)
    return demo


CHROMIUM_ARGS = [
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
]


@contextlib.contextmanager
def browser(clip: Path):
    """Headless Chromium whose camera plays ``clip`` (a .y4m)."""
    from playwright.sync_api import sync_playwright

    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={clip}"]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(chromium, url: str, ready: str = "#camera"):
    """A fresh page (its own Gradio session) on ``url``, its script errors in ``page.errors``,
    once the element ``ready`` is there."""
    context = chromium.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector(ready, timeout=60_000)
    return page


def start_camera(page) -> None:
    """Open the webcam (once per page) and start streaming ("Record")."""
    video = page.query_selector("#camera video")
    if video is None or not video.is_visible():
        page.click("#camera >> text=Click to Access Webcam")
    page.wait_for_selector("#camera video", state="visible", timeout=30_000)
    page.click("#camera button[aria-label='capture photo']")


def recording(page) -> bool:
    return page.query_selector('#camera [title="stop recording"]') is not None


def stop_camera(page) -> None:
    """Stop streaming: the button that started it, pressed again."""
    if recording(page):
        page.click("#camera button[aria-label='capture photo']")


_COUNTER = """() => {
    const seen = window.__outputs = [];
    let last = null;
    window.__poll = setInterval(() => {
        const img = document.querySelector('#camera-out img');
        const src = img && img.getAttribute('src');
        if (src && src !== last) { last = src; seen.push(performance.now()); }
    }, 5);
}"""


def output_rate(page, seconds: float, *, warm_up: float = 3.0, first_timeout: float = 90.0, served=None) -> dict:
    """Annotated frames per second the page shows, counted over ``seconds`` once frames come
    (after ``warm_up`` seconds more): every change of the output image's source. With
    ``served`` (a callable giving the server's count of answered frames) also the answers per
    second (a repeated camera frame may give an identical picture the page cannot tell apart)."""
    deadline = time.monotonic() + first_timeout
    while page.query_selector("#camera-out img") is None:
        if time.monotonic() > deadline:
            raise TimeoutError("no annotated frame came back")
        time.sleep(0.1)
    time.sleep(warm_up)
    page.evaluate(_COUNTER)
    answered, started = (served() if served else 0), time.monotonic()
    time.sleep(seconds)
    stamps = page.evaluate("() => { clearInterval(window.__poll); return window.__outputs; }")
    answered_fps = (served() - answered) / (time.monotonic() - started) if served else None
    if len(stamps) < 2:
        return {"frames": len(stamps), "fps": 0.0, "seconds": seconds}
    span = (stamps[-1] - stamps[0]) / 1e3
    gaps = np.diff(stamps)
    return {"frames": len(stamps), "fps": round((len(stamps) - 1) / span, 3), "seconds": round(span, 2),
            **({"answered_fps": round(answered_fps, 3)} if served else {}),
            "gap_ms_p50": round(float(np.median(gaps)), 1), "gap_ms_p95": round(float(np.percentile(gaps, 95)), 1)}


def output_picture(page) -> np.ndarray:
    """The output image as the page shows it (RGB), decoded from what the browser loaded."""
    data = page.evaluate("""async () => {
        const img = document.querySelector('#camera-out img');
        await img.decode();
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        canvas.getContext('2d').drawImage(img, 0, 0);
        return canvas.toDataURL('image/png');
    }""")
    import base64

    raw = np.frombuffer(base64.b64decode(data.split(",", 1)[1]), np.uint8)
    return cv2.cvtColor(cv2.imdecode(raw, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def set_number(page, elem_id: str, value) -> None:
    """Type ``value`` into a slider's number box (applies at once)."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
