"""Live mode before/after: detection inline on every 3rd frame (how live runs worked before the
live runtime) against detection on its own thread (now), through the one recipe and run loop.

A bundled clip is played like a camera (paced at its frame rate, newest frame and newest result
only). Per policy it prints processed fps, latency p50/p95/max, p95 over the mean period between
processed frames, how latency moves from the first to the last third of the run, frames dropped,
detector passes per second and the age of the detection each frame used. Random weights of the
real architectures cost what real ones do; ``--size tiny`` uses the test models.

    python bench/bench_live.py [--size tiny|base] [--seconds 30] [--device cpu|cuda] [--clip PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
RESULTS = HERE / "results"


def bundled_clip() -> Path:
    import gradio

    return Path(gradio.__file__).parent / "media_assets" / "videos" / "world.mp4"


class LoopedClip:
    """The clip's frames decoded once and played again and again for ``seconds`` (a camera that
    does not run out), paced by the run loop."""

    def __init__(self, path: Path, seconds: float) -> None:
        from vitpose_live.sources import VideoFileSource

        with VideoFileSource(path) as source:
            self.info = source.info
            self._frames = [frame.image for frame in source]
        self.count = int(seconds * self.info.fps)
        self.is_live = False

    def __iter__(self):
        from vitpose_live.types import Frame

        for index in range(self.count):
            yield Frame(self._frames[index % len(self._frames)], index, index / self.info.fps)

    def close(self) -> None:
        pass


def run_policy(name: str, models, clip: LoopedClip, args) -> dict:
    from vitpose_live.engine import EngineOptions, FrameSettings, build_engine
    from vitpose_live.run import Outputs, RunOptions, run

    settings = FrameSettings(max_persons=args.max_persons, smooth=True)
    inline = name == "inline every 3rd frame (before)"
    options = EngineOptions(settings=settings, live=not inline, det_every=3 if inline else 1)
    engine = build_engine(options, models=models)
    latencies: list[float] = []
    report = run(clip, engine, Outputs(), RunOptions(live=True, realtime_fps=clip.info.fps, progress=False),
                 on_latency=latencies.append)
    stats = report.stats
    third = max(1, len(latencies) // 3)
    period_ms = 1e3 / stats["fps"] if stats["fps"] else float("inf")
    return {
        "policy": name,
        **stats,
        "mean_period_ms": round(period_ms, 1),
        "p95_over_period": round(stats["latency_ms"]["p95"] / period_ms, 2),
        "latency_p50_first_third_ms": round(statistics.median(latencies[:third]), 1),
        "latency_p50_last_third_ms": round(statistics.median(latencies[-third:]), 1),
    }


def main(argv: list[str] | None = None) -> int:
    from bench_e2e import build_models

    from vitpose_live.engine import ModelOptions, load_models

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("tiny", "base"), default="tiny")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clip", type=Path, default=None, help="default: gradio's bundled world.mp4")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--max-persons", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="the CLI's --compile (compiled on the detector thread)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    clip = LoopedClip(args.clip or bundled_clip(), args.seconds)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pose_dir, det_dir, params = build_models(args.size, Path(tmp))
        models = load_models(ModelOptions(str(pose_dir), str(det_dir), args.device, args.dtype, compile=args.compile))
        for name in ("inline every 3rd frame (before)", "detector thread (now)"):
            rows.append(run_policy(name, models, clip, args))
    info = clip.info
    print(f"\nlive, {args.size} models {params}, {info.width}x{info.height} at {info.fps:.0f} fps, "
          f"{args.seconds:.0f} s, device {args.device}")
    print(f"{'policy':<32} {'fps':>5} {'p50':>6} {'p95':>6} {'max':>6} {'p95/period':>10} "
          f"{'p50 1st/last 3rd':>17} {'dropped':>7} {'det/s':>6} {'det age':>7}")
    for row in rows:
        lat = row["latency_ms"]
        age = row["stage_ms"].get("detection_age", 0.0)
        print(f"{row['policy']:<32} {row['fps']:>5.1f} {lat['p50']:>6.0f} {lat['p95']:>6.0f} {lat['max']:>6.0f} "
              f"{row['p95_over_period']:>10.2f} {row['latency_p50_first_third_ms']:>8.0f}/"
              f"{row['latency_p50_last_third_ms']:<8.0f} {row['frames_dropped']:>7} {row['detector_rate']:>6.2f} "
              f"{age:>7.0f}")
    out = args.out or RESULTS / f"live-{args.device}-{args.size}.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"platform": platform.platform(), "processor": platform.processor(), "python": platform.python_version()}
    out.write_text(json.dumps({"size": args.size, "params": params, "device": args.device, "machine": machine,
                               "clip": str(args.clip or "gradio media_assets/videos/world.mp4"),
                               "resolution": [info.width, info.height], "fps": info.fps, "rows": rows}, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
