"""The web app's webcam tab against Gradio's own speed, in a real browser.

Headless Chromium with a fake camera (a clip of the synthetic stick figures) opens, in turns, a
trivial Gradio app (the same streaming ``gr.Image`` webcam input, ``stream_every=0.1``, a function
that only draws a line) and the web app's Webcam tab, and counts the annotated frames each page
shows per second. Rounds alternate so that both see the same machine load. It prints both rates,
their ratio per round, and the server-side split of the web app's frames (decode, engine, draw,
encode, and the time between frames spent in Gradio, the network and the browser), and with
``GRADIO_PROFILING=1`` (set here) Gradio's own phases per event. Tiny random models by default.

    python bench/bench_web.py [--rounds 3] [--seconds 15] [--size 640x480] [--out bench/results/web-cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_PROFILING", "1")  # before gradio is imported
os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]
if "--package" in sys.argv:  # measure another checkout's web app (e.g. main, for a before/after)
    sys.path.insert(0, sys.argv[sys.argv.index("--package") + 1])
RESULTS = HERE / "results"
MAX_PERSONS = 3
DET_EVERY = 3  # the same for every checkout measured (main's CPU default)


def gradio_phases(frames: int) -> dict:
    """Gradio's own phases per frame (ms) of the ``frames`` served since the profiler was
    cleared: a stream's trace is filed when the stream ends and sums its frames."""
    from gradio.profiling import collector

    traces = collector.get_all()
    if not frames or not traces:
        return {}
    keys = ("queue_wait_ms", "preprocess_ms", "fn_call_ms", "postprocess_ms", "total_ms")
    return {"frames": frames, **{k: round(sum(t[k] for t in traces) / frames, 2) for k in keys}}


def served_frames(app) -> int:
    """Frames the server answered so far: the web app's sessions, or the trivial app's count."""
    from support.webcam import TRIVIAL_FRAMES

    if app is None:
        return TRIVIAL_FRAMES[0]
    return sum(session.frames for session in app.sessions._sessions.values())


def measure(chromium, url: str, seconds: float, app=None) -> dict:
    from support.webcam import open_page, output_rate, set_number, start_camera, stop_camera

    from gradio.profiling import collector

    page = open_page(chromium, url)
    try:
        if app is not None:  # the scene has 2 figures; the tiny random detector finds ~50 boxes
            set_number(page, "max-persons", MAX_PERSONS)
            set_number(page, "det-every", DET_EVERY)
        collector.clear()
        served = served_frames(app)
        start_camera(page)
        rate = output_rate(page, seconds, served=lambda: served_frames(app))
        if app is not None:
            rate["stats_line"] = page.input_value("#live-stats textarea")
            rate["server_ms"] = app.sessions.timings() if hasattr(app.sessions, "timings") else {}
        stop_camera(page)
        time.sleep(2.0)  # the stream's trace is filed when it ends
        rate["gradio_ms"] = gradio_phases(served_frames(app) - served)
        return rate
    finally:
        page.context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--size", default="640x480", help="the fake camera's picture size")
    parser.add_argument("--model", help="pose model (default: the tiny test model)")
    parser.add_argument("--detector", help="person detector (default: the tiny test model)")
    parser.add_argument("--stream-every", type=float, default=0.1,
                        help="seconds between the browser's frames, both apps (below 0.1: how much headroom each has)")
    parser.add_argument("--package", help="a checkout whose vitpose_live to measure (default: this one)")
    parser.add_argument("--out", type=Path, default=RESULTS / "web-cpu.json")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))

    from support.models import save_tiny_models
    from support.webcam import browser, have_chromium, launch, trivial_stream_app, write_y4m

    from vitpose_live.apps.web import PoseWebApp

    if not have_chromium():
        sys.exit("needs /usr/bin/chromium (Debian package 'chromium') and the playwright package")
    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    model, detector = (args.model, args.detector) if args.model else save_tiny_models(work)
    clip = write_y4m(work / "camera.y4m", width=width, height=height, fps=15, frames=60)
    app = PoseWebApp(model, detector, "cpu", stream_every=args.stream_every)
    app.models.get(model)  # loaded before the clock starts
    ours, trivial = app.build(), trivial_stream_app(args.stream_every)
    urls = {"trivial": launch(trivial), "webcam tab": launch(ours)}
    rounds = []
    try:
        with browser(clip) as chromium:
            version = chromium.version
            for n in range(args.rounds):
                row = {"trivial": measure(chromium, urls["trivial"], args.seconds)}
                row["webcam tab"] = measure(chromium, urls["webcam tab"], args.seconds, app)
                row["ratio"] = round(row["webcam tab"]["fps"] / max(row["trivial"]["fps"], 1e-9), 3)
                rounds.append(row)
                print(f"round {n + 1}: trivial {row['trivial']['fps']:.2f}/s, webcam tab "
                      f"{row['webcam tab']['fps']:.2f}/s, ratio {row['ratio']:.2f} (answered: trivial "
                      f"{row['trivial']['answered_fps']:.2f}/s, webcam tab {row['webcam tab']['answered_fps']:.2f}/s)",
                      flush=True)
                print("  server split (ms, median):", json.dumps(row["webcam tab"]["server_ms"]), flush=True)
                print("  gradio (ms, median): trivial", json.dumps(row["trivial"]["gradio_ms"]),
                      "| webcam tab", json.dumps(row["webcam tab"]["gradio_ms"]), flush=True)
    finally:
        ours.close()
        trivial.close()
    report = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
        "load_average": os.getloadavg(),
        "camera": f"{width}x{height} @15",
        "stream_every": args.stream_every,
        "browser": f"Chromium {version}",
        "package": str(Path(sys.modules["vitpose_live"].__file__).parent),
        "models": "tiny test models" if not args.model else f"{args.model} + {args.detector}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "rounds": rounds,
        "ratios": [r["ratio"] for r in rounds],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"ratios {report['ratios']} (load average {report['load_average'][0]:.1f}); wrote {args.out}")


if __name__ == "__main__":
    main()
