"""Live mode: capture-to-display latency and processed fps, detection every frame vs the default.

Plays a clip like a camera (``--realtime``: paced at its frame rate, newest frame only) through
the same CLI code a user runs, once per (input fps, detection interval), and reads back the
``--stats-json`` figures. Random weights of the real architectures cost the same time as real
ones; ``--size tiny`` uses the test models (fast, for a smoke run).

    python bench/bench_live.py [--size tiny|base] [--seconds 8] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
OUT = HERE / "out"


def make_input(path: Path, fps: int, seconds: float, width: int, height: int) -> Path:
    from media import make_clip

    return make_clip(path, width=width, height=height, frames=int(fps * seconds), fps=fps, audio=False)


def run_once(clip: Path, pose_dir: Path, det_dir: Path, det_every: int | None, args, stats_path: Path) -> dict:
    from vitpose_live.cli import main

    argv = ["--source", str(clip), "--realtime", "--no-window", "--no-progress", "--stats-json", str(stats_path),
            "--model", str(pose_dir), "--detector", str(det_dir), "--device", args.device, "--dtype", args.dtype,
            "--max-persons", str(args.max_persons), "--keypoints", str(stats_path.with_suffix(".jsonl"))]
    if det_every is not None:
        argv += ["--det-every", str(det_every)]
    if main(argv) != 0:
        raise SystemExit(f"the run with --det-every {det_every} failed")
    return json.loads(stats_path.read_text())


def main(argv: list[str] | None = None) -> int:
    from bench_e2e import build_models

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("tiny", "base"), default="tiny")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each input clip")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--max-persons", type=int, default=5)
    parser.add_argument("--out", default=str(OUT / "live.json"))
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pose_dir, det_dir, params = build_models(args.size, tmp)
        for fps in (30, 60):
            clip = make_input(tmp / f"in{fps}.mp4", fps, args.seconds, args.width, args.height)
            for det_every in (1, None):
                stats = run_once(clip, pose_dir, det_dir, det_every, args, tmp / f"s{fps}_{det_every}.json")
                rows.append({"input_fps": fps, "det_every": det_every or "default", **stats})
    print(f"\nlive mode, {args.size} models {params}, {args.width}x{args.height}, device {args.device}")
    print(f"{'in fps':>6} {'det every':>9} {'processed fps':>13} {'dropped':>8} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    for row in rows:
        latency = row["latency_ms"]
        print(f"{row['input_fps']:>6} {str(row['det_every']):>9} {row['fps']:>13.1f} {row['frames_dropped']:>8} "
              f"{latency['p50']:>7.0f} {latency['p95']:>7.0f} {latency['max']:>7.0f}")
    Path(args.out).write_text(json.dumps({"size": args.size, "params": params, "device": args.device,
                                          "resolution": [args.width, args.height], "rows": rows}, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
