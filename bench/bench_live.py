"""Live mode before/after: detection inline on every 3rd frame (how live runs worked before the
live runtime) against detection on its own thread (now), through the one recipe and run loop.

A bundled clip is played like a camera (paced at its frame rate, newest frame and newest result
only). Per policy it prints processed fps, latency p50/p95/max, p95 over the mean period between
processed frames, how latency moves from the first to the last third of the run, frames dropped,
detector passes per second and the age of the detection each frame used. Random weights of the
real architectures cost what real ones do; ``--size tiny`` uses the test models.

``--profile cpu`` runs the CPU profile instead (:mod:`vitpose_live.engine.profiles`: its pose model and
detector at real size with random weights, its detector input size, interval and pacing), as the
profile has it and with the detector unpaced, in alternating turns, and times the pose model's
own forward pass on one 256x192 crop in the same run (before and after every run): the live bar
is processed fps >= 0.6x that single-crop rate (of the median crop time).

    python bench/bench_live.py [--size tiny|base] [--seconds 30] [--device cpu|cuda] [--clip PATH]
    python bench/bench_live.py --profile cpu --seconds 60 --max-persons 1   # 3 turns of 20 s per policy
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

# As the command line does before torch loads: idle OpenMP workers sleep instead of spinning, so
# the detector thread's and the pose model's thread pools do not spin against each other.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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


POLICIES = ("inline every 3rd frame (before)", "detector thread (now)")
PROFILE_POLICIES = ("profile: detector paced", "profile, detector unpaced")


def engine_options(name: str, args):
    from vitpose_live.engine.recipe import EngineOptions, FrameSettings
    from vitpose_live.engine.profiles import profile_for

    settings = FrameSettings(max_persons=args.max_persons, smooth=True)
    if name in PROFILE_POLICIES:
        profile = profile_for(args.device)
        gap = profile.detector_gap_s if name == PROFILE_POLICIES[0] else 0.0
        return EngineOptions(settings=settings, live=True, det_every=profile.det_every, detector_gap_s=gap)
    inline = name == POLICIES[0]
    return EngineOptions(settings=settings, live=not inline, det_every=3 if inline else 1)


def run_policy(name: str, models, clip: LoopedClip, args) -> dict:
    from vitpose_live.engine.recipe import build_engine
    from vitpose_live.outputs.base import Outputs
    from vitpose_live.runtime.run import RunOptions, run

    engine = build_engine(engine_options(name, args), models=models)
    latencies: list[float] = []
    report = run(clip, engine, Outputs(), RunOptions(live=True, realtime_fps=clip.info.fps, progress=False),
                 on_latency=latencies.append)
    stats = report.stats
    third = max(1, len(latencies) // 3)
    period_ms = 1e3 / stats["fps"] if stats["fps"] else float("inf")
    return {
        "policy": name,
        "load_1min_end": round(os.getloadavg()[0], 2),
        **stats,
        "mean_period_ms": round(period_ms, 1),
        "p95_over_period": round(stats["latency_ms"]["p95"] / period_ms, 2),
        "latency_p50_first_third_ms": round(statistics.median(latencies[:third]), 1),
        "latency_p50_last_third_ms": round(statistics.median(latencies[-third:]), 1),
    }


def profile_models(device: str, directory: Path) -> tuple[Path, Path, dict]:
    """The device profile's pose model and detector at real size, random weights, saved with
    their processors (the detector's at its checkpoint's 640x640; the profile resizes it)."""
    import torch
    from bench_cpu_profile import DETECTORS, POSE_MODELS
    from transformers import RTDetrImageProcessorPil, VitPoseImageProcessorPil

    from vitpose_live.engine.profiles import profile_for

    profile = profile_for(device)
    pose = next(c for c in POSE_MODELS if c.hub_id == profile.pose_model).build()
    detector = next(c for c in DETECTORS if c.hub_id == profile.detector).build()
    with torch.no_grad():  # a random detector finds no one: make every query a confident person
        for name, module in detector.named_modules():
            if isinstance(module, torch.nn.Linear) and module.out_features == detector.config.num_labels:
                module.bias.zero_()
                module.bias[0] = 3.0
    pose_dir, det_dir = directory / "pose", directory / "detector"
    pose.save_pretrained(pose_dir)
    VitPoseImageProcessorPil().save_pretrained(pose_dir)
    detector.save_pretrained(det_dir)
    RTDetrImageProcessorPil(size={"height": 640, "width": 640}).save_pretrained(det_dir)
    params = {"pose_model": profile.pose_model, "detector": profile.detector,
              "detector_size": profile.detector_size, "det_every": profile.det_every,
              "detector_gap_s": profile.detector_gap_s,
              "pose_params_M": round(sum(p.numel() for p in pose.parameters()) / 1e6, 2),
              "detector_params_M": round(sum(p.numel() for p in detector.parameters()) / 1e6, 2)}
    return pose_dir, det_dir, params


def single_crop_ms(pose, reps: int = 15) -> dict:
    """The pose model's own forward pass on one 256x192 crop: median ms, with the load average."""
    import torch

    crop = torch.randn(1, 3, 256, 192)
    times = []
    with torch.inference_mode():
        pose.forward(crop)
        for _ in range(reps):
            start = time.perf_counter()
            pose.forward(crop)
            times.append((time.perf_counter() - start) * 1e3)
    return {"ms_median": round(statistics.median(times), 1), "ms_min": round(min(times), 1),
            "load_1min": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    from bench_e2e import build_models

    from vitpose_live.engine.recipe import ModelOptions, load_models

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("tiny", "base"), default="tiny")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clip", type=Path, default=None, help="default: gradio's bundled world.mp4")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--max-persons", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="the CLI's --compile (compiled on the detector thread)")
    parser.add_argument("--profile", choices=("cpu",), help="the device profile's models and pacing (see above)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--segments", type=int, default=3, help="--profile: each policy's seconds in this many "
                        "turns, the policies alternating, the single crop timed before and after every turn")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from vitpose_live.system.host_memory import keep_freed_memory

    keep_freed_memory()  # as the programs run (vitpose_live/system/host_memory.py)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    segments = args.segments if args.profile else 1
    clip = LoopedClip(args.clip or bundled_clip(), args.seconds / segments)
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            pose_dir, det_dir, params = profile_models(args.device, Path(tmp))
        else:
            pose_dir, det_dir, params = build_models(args.size, Path(tmp))
        models = load_models(ModelOptions(str(pose_dir), str(det_dir), args.device, args.dtype, compile=args.compile,
                                          detector_size=params.get("detector_size")))
        if args.profile:
            rows, crop = run_profile(models, clip, args)
        else:
            rows, crop = [run_policy(name, models, clip, args) for name in POLICIES], {}
    info = clip.info
    name = f"profile-{args.profile}" if args.profile else args.size
    print(f"\nlive, {name} models {params}, {info.width}x{info.height} at {info.fps:.0f} fps, "
          f"{args.seconds:.0f} s, device {args.device}")
    print(f"{'policy':<32} {'fps':>5} {'p50':>6} {'p95':>6} {'max':>6} {'p95/period':>10} "
          f"{'p50 1st/last 3rd':>17} {'dropped':>7} {'det/s':>6} {'det age':>7}")
    for row in rows:
        lat = row["latency_ms"]
        age = row["stage_ms"].get("detection_age", 0.0)
        label = row["policy"] + (f" #{row['turn']}" if "turn" in row else "")
        print(f"{label:<32} {row['fps']:>5.1f} {lat['p50']:>6.0f} {lat['p95']:>6.0f} {lat['max']:>6.0f} "
              f"{row['p95_over_period']:>10.2f} {row['latency_p50_first_third_ms']:>8.0f}/"
              f"{row['latency_p50_last_third_ms']:<8.0f} {row['frames_dropped']:>7} {row['detector_rate']:>6.2f} "
              f"{age:>7.0f}")
    out = args.out or RESULTS / f"live-{args.device}-{name}.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"platform": platform.platform(), "processor": platform.processor(), "python": platform.python_version(),
               "cpus": os.cpu_count()}
    out.write_text(json.dumps({"size": name, "params": params, "device": args.device, "machine": machine,
                               "clip": str(args.clip or "gradio media_assets/videos/world.mp4"),
                               "resolution": [info.width, info.height], "fps": info.fps,
                               "max_persons": args.max_persons, "bar": crop, "rows": rows},
                              indent=2) + "\n")
    print(f"written {out}")
    return 0


def run_profile(models, clip: LoopedClip, args) -> tuple[list[dict], dict]:
    """The profile's policies in alternating turns (each first in every other turn), the pose
    model's single crop timed before the first run and after every run, so that the load of a
    shared machine falls on all of them alike; per policy, processed fps over its turns against
    the single-crop rate of the median crop time."""
    crops = [single_crop_ms(models[0])]
    rows = []
    for turn in range(args.segments):
        for name in PROFILE_POLICIES[:: 1 if turn % 2 == 0 else -1]:  # each goes first in turn
            rows.append({**run_policy(name, models, clip, args), "turn": turn + 1})
            crops.append(single_crop_ms(models[0]))
    crop_ms = statistics.median(c["ms_median"] for c in crops)
    pose_rate = 1e3 / crop_ms
    bar = {"crop_ms_median": round(crop_ms, 1), "pose_rate_fps": round(pose_rate, 2), "crops": crops}
    times = ", ".join(f"{c['ms_median']:.0f}" for c in crops)
    loads = ", ".join(str(c["load_1min"]) for c in crops)
    print(f"\npose model alone, one crop: median {crop_ms:.0f} ms over {len(crops)} timings ({times} ms; load {loads})")
    for name in PROFILE_POLICIES:
        fps = statistics.mean(row["fps"] for row in rows if row["policy"] == name)
        bar[name] = {"fps": round(fps, 2), "fps_over_pose_rate": round(fps / pose_rate, 2),
                     "turns_fps": [row["fps"] for row in rows if row["policy"] == name]}
        print(f"{name:<28} processed {fps:.2f} fps = {fps / pose_rate:.2f}x the pose rate {pose_rate:.2f} (bar 0.6x)")
    return rows, bar


if __name__ == "__main__":
    sys.exit(main())
