"""Where a file's frames spend their time on a GPU: the engine alone on decoded frames (batched,
with a per-part breakdown), then the CLI with and without drawing and encoding.

    python bench/profile_gpu_file.py [--source CLIP] [--batch 8]     # needs CUDA; real-size models
    python bench/profile_gpu_file.py --compile --out bench/results/profile_compile.json

With ``--compile`` the detector is compiled (CUDA graphs) on the thread that first runs it: here
the first two ``process_batch`` calls ("warm-up", timed apart), in the CLI runs its inference
thread, inside the run's time (the CLI's clock starts once the models are loaded).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests")]

from bench_e2e import build_models, prepare_clip  # noqa: E402

from vitpose_live.apps import job
from vitpose_live.apps.cli import main as cli_main, parse_request
from vitpose_live.engine.recipe import build_engine
from vitpose_live.models.device import image_to_device
from vitpose_live.sources import VideoFileSource


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(label: str, function, frames: int, results: dict) -> None:
    _sync()
    start = time.perf_counter()
    function()
    _sync()
    seconds = time.perf_counter() - start
    results[label] = seconds / frames * 1e3
    print(f"{label:<48} {seconds / frames * 1e3:7.2f} ms/frame  {frames / seconds:7.1f} frames/s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", default="base", choices=("tiny", "base"))
    parser.add_argument("--frames", type=int, default=0, help="a trimmed copy of gradio's clip (0: whole)")
    parser.add_argument("--compile", action="store_true", help="the CLI's --compile (torch.compile the detector)")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    flags = ["--cuda-graphs", *(["--compile"] if args.compile else [])]
    clip, _ = prepare_clip(args.frames, args.source)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pose_dir, det_dir, _ = build_models(args.size, Path(tmp))
        base = ["--source", str(clip), "--model", str(pose_dir), "--detector", str(det_dir), "--device", args.device,
                "--max-persons", "5", "--no-progress", "--batch", str(args.batch)]
        ns = parse_request([*base, *flags])
        engine = build_engine(job.engine_options(ns, live=False))
        source = VideoFileSource(clip)
        frames = list(source)
        source.close()
        n = len(frames)
        batches = [frames[i : i + args.batch] for i in range(0, n, args.batch)]
        warm_start = time.perf_counter()
        with torch.inference_mode():
            for batch in batches[:2]:
                engine.process_batch(batch)
        _sync()
        results["warm-up s (2 batches; compile included)"] = time.perf_counter() - warm_start
        print(f"warm-up, 2 batches (compile included): {results['warm-up s (2 batches; compile included)']:.1f} s", flush=True)
        timed("decode (VideoFileSource, rgb24 numpy)", lambda: list(VideoFileSource(clip)), n, results)
        timed(f"engine.process_batch, {args.batch} frames per call", lambda: [engine.process_batch(b) for b in batches], n, results)
        detector, pose = engine.detector, engine.pose
        images = [[image_to_device(f.image, pose.placement) for f in b] for b in batches]
        timed("  upload (pinned, non-blocking)", lambda: [[image_to_device(f.image, pose.placement) for f in b] for b in batches], n, results)
        pixels = [torch.cat([detector.preprocess(i) for i in b]) for b in images]
        timed("  detector preprocess", lambda: [torch.cat([detector.preprocess(i) for i in b]) for b in images], n, results)
        outputs = [detector.forward(p) for p in pixels]
        timed("  detector forward", lambda: [detector.forward(p) for p in pixels], n, results)
        detections = [detector.postprocess(o, [frames[0].image.shape[:2]] * len(b)) for o, b in zip(outputs, images)]
        timed("  detector postprocess", lambda: [detector.postprocess(o, [frames[0].image.shape[:2]] * len(b)) for o, b in zip(outputs, images)], n, results)
        boxes = [[d.boxes for d in ds] for ds in detections]
        timed("  pose estimate_batch (crops, graphed forward, decode)",
              lambda: [pose.estimate_batch(b, bx) for b, bx in zip(images, boxes)], n, results)
        crops = [torch.cat([pose.preprocess(i, bx) for i, bx in zip(b, bb)]) for b, bb in zip(images, boxes)]
        timed("    pose crops", lambda: [torch.cat([pose.preprocess(i, bx) for i, bx in zip(b, bb)]) for b, bb in zip(images, boxes)], n, results)
        timed("    pose forward (CUDA graphs)", lambda: [pose.forward(c) for c in crops], n, results)
        for label, extra in (("CLI, keypoints only", ["--keypoints", f"{tmp}/k.jsonl"]),
                             ("CLI, video + keypoints", ["--output", f"{tmp}/o.mp4", "--keypoints", f"{tmp}/k.jsonl"]),
                             ("CLI, video + keypoints, switch interval 0.5 ms", ["--output", f"{tmp}/o.mp4", "--keypoints", f"{tmp}/k.jsonl"])):
            interval = sys.getswitchinterval()
            if "switch" in label:
                sys.setswitchinterval(0.0005)
            stderr = io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stderr(stderr):
                code = cli_main([*base, *flags, *extra, "--stats-json", f"{tmp}/s.json"])
            seconds = time.perf_counter() - start
            results[f"{label}: s with loading"] = seconds
            sys.setswitchinterval(interval)
            line = stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue().strip() else ""
            print(f"{label:<48} exit {code}, {seconds:.2f} s with loading: {line}", flush=True)
            print("   ", Path(f"{tmp}/s.json").read_text().replace("\n", " ")[:400], flush=True)
    print(np.round(list(results.values()), 2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
        Path(args.out).write_text(json.dumps({"gpu": gpu, "flags": flags, "batch": args.batch, "size": args.size,
                                              "frames": n, "ms_per_frame_or_s": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
