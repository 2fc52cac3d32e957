"""Benchmark: the offline analysis pass (``vitpose_live/analysis/offline.py``) on a scripted file.

``--persons`` people walk for ``--minutes`` at ``--fps`` with 2 px keypoint noise; each is lost
for 1.5 s once a minute and comes back under a new id (so joining has work to do), and misses 3
frames every 10 s (so filling has). Times filling the store frame by frame (what the first pass
adds to inference) and :func:`analyse` (join, fill, smooth: what runs between the two passes),
and gives the memory of both. The second pass's cost next to inference's, on real clips:
``bench/bench_offline_passes.py``.

    python bench/bench_offline.py [--persons 5] [--minutes 10] [--fps 30] [--memory]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitpose_live.analysis.offline import TrackStore, analyse  # noqa: E402
from vitpose_live.types import Poses  # noqa: E402

K = 17
OUT = Path(__file__).resolve().parent / "out"


def scene(persons: int, frames: int, fps: float, seed: int = 0):
    """Per frame: (keypoints (N, K, 2), boxes (N, 4), ids (N,)) of who is seen."""
    rng = np.random.default_rng(seed)
    body = rng.uniform(-0.5, 0.5, (K, 2)) * (120, 300)
    starts = rng.uniform(200, 1700, persons)
    speeds = rng.uniform(-60, 60, persons)
    minute, ten_s = int(60 * fps), int(10 * fps)
    for frame in range(frames):
        t = frame / fps
        seen = [p for p in range(persons) if not (
            (frame + p * 97) % minute < 1.5 * fps or (frame + p * 31) % ten_s < 3)]  # fmt: skip
        centres = np.array([(starts[p] + speeds[p] * np.sin(t / 20), 540 + 30 * np.sin(t + p)) for p in seen])
        keypoints = centres.reshape(-1, 1, 2) + body + rng.normal(0, 2.0, (len(seen), K, 2))
        boxes = np.concatenate([centres - (60, 150), centres + (60, 150)], axis=1).reshape(-1, 4)
        ids = np.array([p + persons * ((frame + p * 97) // minute) for p in seen], np.int64)
        yield keypoints.astype(np.float32), boxes.astype(np.float32), ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--memory", action="store_true", help="also trace the analysis' peak memory (slower)")
    parser.add_argument("--out", type=Path, default=OUT / "offline.json")
    args = parser.parse_args()
    frames = int(args.minutes * 60 * args.fps)

    frames_in = list(scene(args.persons, frames, args.fps))
    store, add_s = TrackStore(), 0.0
    for index, (keypoints, boxes, ids) in enumerate(frames_in):
        n = len(ids)
        poses = Poses(
            keypoints, np.full((n, K), 0.9, np.float32), boxes, np.full(n, 0.9, np.float32), track_ids=ids
        )
        started = time.perf_counter()
        store.add(index, poses)
        add_s += time.perf_counter() - started
    del frames_in

    started, cpu = time.perf_counter(), time.process_time()
    analysis = analyse(store, args.fps)
    analyse_s, analyse_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    for index in range(frames):
        analysis.poses_at(index)
    query_s = time.perf_counter() - started

    report = {
        "persons": args.persons, "minutes": args.minutes, "fps": args.fps, "frames": frames,
        "sightings": store.sightings, "tracklets": len(store.track_ids), **analysis.summary(),
        "store_add_us_per_frame": round(add_s / frames * 1e6, 1),
        "analyse_s": round(analyse_s, 3), "analyse_cpu_s": round(analyse_cpu, 3),
        "analyse_ms_per_frame": round(analyse_s / frames * 1e3, 4),
        "analyse_us_per_person_frame": round(analyse_s / store.sightings * 1e6, 2),
        "poses_at_us_per_frame": round(query_s / frames * 1e6, 1),
        "store_mb": round(store.nbytes / 2**20, 2), "store_bytes_per_sighting": round(store.nbytes / store.sightings, 1),
        "analysis_mb": round(analysis.nbytes / 2**20, 2),
        "machine": platform.processor() or platform.machine(),
    }  # fmt: skip
    if args.memory:
        tracemalloc.start()
        analyse(store, args.fps)
        report["analyse_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    for key, value in report.items():
        print(f"{key:32} {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
