"""The README's screenshot of the Webcam tab over WebRTC: the web app with the tiny random test
models (random skeletons), headless Chromium whose fake camera plays the synthetic stick figures
at 640x480, 30 frames/s; the page is shot once the annotated track has played a few seconds.

    python bench/screenshot_webrtc.py [--out assets/web-webrtc.jpg] [--quality 80]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "assets" / "web-webrtc.jpg")
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality")
    parser.add_argument("--seconds", type=float, default=4.0, help="how long the stream plays before the shot")
    args = parser.parse_args()

    from support.models import save_tiny_models
    from support.webcam import browser, have_chromium, launch, open_page, set_number, write_y4m

    from vitpose_live.apps.web import PoseWebApp

    if not have_chromium():
        sys.exit("needs /usr/bin/chromium (Debian package 'chromium') and the playwright package")
    folder = Path(tempfile.mkdtemp(prefix="shot-webrtc-"))
    clip = write_y4m(folder / "camera.y4m", width=640, height=480, fps=30, frames=60)
    app = PoseWebApp(*save_tiny_models(folder), "cpu")
    demo = app.build()
    url = launch(demo)
    try:
        with browser(clip) as chromium:
            page = open_page(chromium, url, ready="#webrtc .vl-start")
            set_number(page, "max-persons", 3)  # the tiny random detector finds ~50 boxes in any picture
            set_number(page, "kpt-threshold", 0)  # random keypoint scores: draw them all
            page.click("#webrtc .vl-start")
            page.wait_for_function("() => document.querySelector('#webrtc video').videoWidth > 0", timeout=60_000)
            time.sleep(args.seconds)
            print(page.inner_text("#webrtc .vl-line"))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), type="jpeg", quality=args.quality, full_page=True)
            page.click("#webrtc .vl-stop")
            page.context.close()
    finally:
        demo.close()
        app.webrtc.close()
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
