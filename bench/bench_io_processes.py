"""What ``--io-processes`` does to the inference thread: its ms per frame alone (``engine.process_batch``
on frames decoded beforehand), next to the threaded decode + draw + encode, and next to the same
work in two processes (frames through shared memory).

    python bench/bench_io_processes.py [--frames 120] [--size tiny|base] [--device cpu|cuda] [--runs 3]
                                       [--out bench/results/cpu-io-processes.json]

The CLI runs (video + keypoints, ``--stats-json``, each a process of its own as in
``bench_e2e.py``) alternate threads / processes ``--runs`` times each, so that other work on the
machine weighs on both alike; the 1-minute load average is kept with every figure. The inference
thread's ms per frame is the CLI's own ``stage_ms.inference`` (a batch's time shared by its
frames); the render process's draw and encode ms and the decode process's decode ms come from
those processes. CPU seconds: the CLI process's during the run (model loading not included), and
each child's whole life (its start-up included). Same clip and random-weight models as
``bench_e2e.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests")]

import torch  # noqa: E402
from bench_e2e import (  # noqa: E402
    OUT,
    _load_average,
    build_models,
    in_worker_thread,
    prepare_clip,
    probe,
    run_engine_cli,
    warm_up,
)

WAYS = {"threads": "", "processes": "--io-processes"}


def engine_alone(clip: Path, pose_dir: Path, det_dir: Path, args) -> dict:
    """``engine.process_batch`` over the clip's frames, decoded beforehand, at the CLI's batch."""
    from vitpose_live.apps import job
    from vitpose_live.apps.cli import parse_request
    from vitpose_live.engine.recipe import build_engine
    from vitpose_live.sources import VideoFileSource

    argv = ["--source", str(clip), "--model", str(pose_dir), "--detector", str(det_dir),
            "--device", args.device, "--dtype", args.dtype, "--max-persons", str(args.max_persons),
            *(["--cuda-graphs"] if args.cuda_graphs else [])]
    ns = parse_request(argv + (["--batch", str(args.batch)] if args.batch else []))
    engine = build_engine(job.engine_options(ns, live=False))
    batch = job.file_batch(ns, engine)
    with VideoFileSource(clip) as source:
        frames = list(source)
    batches = [frames[i : i + batch] for i in range(0, len(frames), batch)]
    load = [_load_average()]
    with torch.inference_mode():
        engine.process_batch(batches[0])  # first-call costs
        _sync(args.device)
        started = time.perf_counter()
        for frames_of_batch in batches:
            engine.process_batch(frames_of_batch)
        _sync(args.device)
    seconds = time.perf_counter() - started
    engine.close()
    return {"batch": batch, "frames": len(frames), "ms_per_frame": seconds / len(frames) * 1e3,
            "load_average_1min": load + [_load_average()]}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def cli_run(clip: Path, pose_dir: Path, det_dir: Path, folder: Path, args, way: str) -> dict:
    """One CLI run (video + keypoints, a process of its own), with its ``--stats-json`` figures:
    stage ms per frame and the CPU seconds of its process during the run and of its children."""
    args.cli_args = f"{WAYS[way]} --keypoints {folder / 'k.jsonl'}"
    run = run_engine_cli(clip, pose_dir, det_dir, folder / f"{way}.mp4", args)
    stats = run["cli_stats"]
    cpu_s = stats["cpu_s"]
    return {"way": way, "fps": run["frames"] / run["wall_s"], "wall_s": run["wall_s"],
            "load_s": run["load_s"], "cpu_s_this_process": cpu_s["this_process"],
            "cpu_s_children": sum(v for k, v in cpu_s.items() if k != "this_process"), "cpu_s": cpu_s,
            "inference_ms": stats["stage_ms"]["inference"], "stage_ms": stats["stage_ms"],
            "frames": run["frames"], "load_average_1min": run["load_average_1min"]}


def summary(runs: list[dict], alone: dict) -> dict:
    out = {"alone_ms_per_frame": alone["ms_per_frame"]}
    for way in WAYS:
        mine = [r for r in runs if r["way"] == way]
        out[way] = {"fps_mean": statistics.mean(r["fps"] for r in mine),
                    "inference_ms_mean": statistics.mean(r["inference_ms"] for r in mine),
                    "inference_ms_runs": [round(r["inference_ms"], 2) for r in mine],
                    "fps_runs": [round(r["fps"], 2) for r in mine],
                    "cpu_s_this_process_mean": statistics.mean(r["cpu_s_this_process"] for r in mine),
                    "cpu_s_children_mean": statistics.mean(r["cpu_s_children"] for r in mine)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=120, help="frames of gradio's a.mp4 (0: all)")
    parser.add_argument("--source", help="another clip (used whole)")
    parser.add_argument("--size", choices=("tiny", "base"), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--max-persons", type=int, default=5)
    parser.add_argument("--batch", type=int, help="the CLI's --batch (default its own)")
    parser.add_argument("--cuda-graphs", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="CLI runs of each way, alternating")
    parser.add_argument("--out", default=str(OUT / "io_processes.json"))
    args = parser.parse_args(argv)
    args.compile, args.threads = False, None
    clip, note = prepare_clip(0 if args.source else args.frames, args.source)
    with tempfile.TemporaryDirectory(prefix="bench_io_") as tmp:
        folder = Path(tmp)
        pose_dir, det_dir, params = build_models(args.size, folder)
        in_worker_thread(warm_up, pose_dir, det_dir, args)
        alone = in_worker_thread(engine_alone, clip, pose_dir, det_dir, args)
        print(f"engine.process_batch alone: {alone['ms_per_frame']:.2f} ms/frame "
              f"(load {alone['load_average_1min']})", flush=True)
        runs = []
        for i in range(args.runs):
            for way in (WAYS if i % 2 == 0 else reversed(list(WAYS))):
                runs.append(cli_run(clip, pose_dir, det_dir, folder, args, way))
                r = runs[-1]
                print(f"CLI {way:<9} {r['fps']:6.2f} frames/s, inference thread "
                      f"{r['inference_ms']:6.2f} ms/frame, CPU s here {r['cpu_s_this_process']:.1f} / "
                      f"in children {r['cpu_s_children']:.1f}, load {r['load_average_1min']}", flush=True)
    result = {"device": args.device, "size": args.size, "models": params,
              "clip": probe(clip) | {"note": note},
              "max_persons": args.max_persons, "torch_threads": torch.get_num_threads(), "alone": alone,
              "cli_runs": runs, "summary": summary(runs, alone)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
