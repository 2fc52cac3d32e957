"""CPU crops, before and after: ms per 1920x1080 frame to cut 1, 5 and 20 person crops (256x192,
normalised, channels first) with the gather warp (what every device ran before, and what CUDA
still runs) and with the CPU warp (``cv2.remap`` neighbours), interleaved call by call.

    python bench/bench_crops.py                       # about 1 minute on 2 cores
    python bench/bench_crops.py --threads 2 --reps 40 --out bench/results/crops_cpu.json

Both paths give the same bits (tests/models/test_pose.py). Each figure is the best and the median of
``--reps`` calls, as thread CPU time (what the call itself cost, less exposed to other processes
on a shared machine; with ``--threads 1`` only, since it misses the work of other threads) and
as wall time; the 1-minute load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests"),
                str(Path(__file__).resolve().parents[1])]

from support.models import tiny_vitpose  # noqa: E402

from vitpose_live.models.device import image_to_device
from vitpose_live.models.pose import PoseEstimator


def person_boxes(rng: np.random.Generator, count: int, height: int, width: int) -> np.ndarray:
    """Standing persons 250–900 px tall, some partly outside the frame."""
    tall = rng.uniform(250, 900, count)
    wide = tall * rng.uniform(0.3, 0.6, count)
    x1 = rng.uniform(-0.1 * width, width - 0.5 * wide)
    y1 = rng.uniform(-0.05 * height, height - 0.7 * tall)
    return np.stack([x1, y1, x1 + wide, y1 + tall], axis=1).astype(np.float32)


def gather_crops(pose: PoseEstimator, image: np.ndarray, boxes: np.ndarray) -> torch.Tensor:
    """The warp as it ran on a CPU before (the device path, unchanged)."""
    pixels = image_to_device(image, pose.placement)
    xs, ys = pose._sample_points(pose._boxes_to_device(boxes))
    return pose._crops_gather(pixels, xs, ys)


def timed(function) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    function()
    return (time.perf_counter() - wall) * 1e3, (time.thread_time() - cpu) * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default 1: thread CPU time is exact)")
    parser.add_argument("--out", default="bench/results/crops_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    pose = PoseEstimator(tiny_vitpose(), device="cpu")
    sides = {"gather (before)": lambda b: gather_crops(pose, image, b), "cv2.remap (after)": lambda b: pose.preprocess(image, b)}
    report = {
        "what": "ms per 1920x1080 frame to cut N crops (256x192, normalised), best / median of reps",
        "threads": args.threads, "reps": args.reps, "torch": torch.__version__, "opencv": cv2.__version__,
        "numpy": np.__version__, "machine": platform.machine(), "cpus": os.cpu_count(),
        "load_before": os.getloadavg()[0], "rows": [],
    }
    print(f"threads {args.threads}, load average {report['load_before']:.2f}")
    print(f"{'persons':>7}  {'side':<18} {'cpu best':>9} {'cpu med':>8} {'wall best':>10} {'wall med':>9}")
    with torch.inference_mode():
        for count in args.persons:
            boxes = person_boxes(rng, count, *image.shape[:2])
            assert torch.equal(sides["gather (before)"](boxes), sides["cv2.remap (after)"](boxes))
            times = {name: [] for name in sides}
            for rep in range(args.reps + 2):
                order = list(sides.items()) if rep % 2 == 0 else list(sides.items())[::-1]
                for name, side in order:
                    result = timed(functools.partial(side, boxes))
                    if rep >= 2:  # two warm-up rounds
                        times[name].append(result)
            row = {"persons": count}
            for name, values in times.items():
                wall, cpu = zip(*values)
                figures = {"cpu_best": min(cpu), "cpu_median": statistics.median(cpu),
                           "wall_best": min(wall), "wall_median": statistics.median(wall)}
                row[name] = {k: round(v, 3) for k, v in figures.items()}
                print(f"{count:7d}  {name:<18} {min(cpu):9.2f} {statistics.median(cpu):8.2f} "
                      f"{min(wall):10.2f} {statistics.median(wall):9.2f}")
            # thread CPU time counts the calling thread only: with more threads, compare wall times
            key = "cpu_best" if args.threads == 1 else "wall_best"
            before, after = row["gather (before)"][key], row["cv2.remap (after)"][key]
            row[f"speed-up ({key})"] = round(before / after, 2)
            print(f"{count:7d}  {'before/after':<18} {before / after:9.2f}x")
            report["rows"].append(row)
    report["load_after"] = os.getloadavg()[0]
    print(f"load average after {report['load_after']:.2f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
