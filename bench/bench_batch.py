"""Benchmark: a collection of clips (``--output-dir``) on this machine alone, then on a local Ray.

    python bench/bench_batch.py [--clips 8] [--frames 30] [--workers 2] [--out bench/results/batch-cpu.json]

Makes ``--clips`` clips of ``--frames`` frames (``tests/support/media.py``: 320x240, AAC audio) and runs
the command line over the folder twice, in this process, with the same models and settings:

* **local** — ``--source DIR --output-dir OUT``: one engine, one input after another;
* **ray** — the same plus ``--ray --workers W``: a Ray started here (timed apart, as ``ray_init_s``),
  W actors with 1 CPU each (so 1 torch thread each), each loading the models once.

Each whole run is timed, model loading and (for Ray) starting the actors included, and printed as
inputs/s and frames/s; the JSON (with the machine, the 1-minute load average before each run and
the manifest's per-input seconds, from which ``frames_per_s_excluding_startup`` = frames ÷ (summed
per-input seconds ÷ parallel workers)) goes to ``--out``. Models: the random-weight tiny models of
``tests/support/models.py`` (detector input 320x320), ``--max-persons 2``. See bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run(name: str, argv: list[str], out: Path, parallel: int = 1) -> dict:
    from vitpose_live.apps.cli import main

    load = os.getloadavg()[0]
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = main([*argv, "--output-dir", str(out)])
    seconds = time.perf_counter() - started
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    frames = sum(entry["frames"] for entry in entries if entry["status"] == "ok")
    result = {
        "run": name, "exit": code, "inputs": len(entries), "frames": frames, "seconds": round(seconds, 2),
        "inputs_per_s": round(len(entries) / seconds, 3), "frames_per_s": round(frames / seconds, 2),
        "input_seconds": [entry["seconds"] for entry in entries], "load_average_before": round(load, 2),
        "summary": err.getvalue().strip().splitlines()[-1],
    }
    busy = sum(result["input_seconds"]) / parallel  # start-up (imports, models, Ray actors) left out
    result["frames_per_s_excluding_startup"] = round(frames / busy, 2)
    print(f"{name:>6}: {len(entries)} inputs, {frames} frames in {seconds:.1f} s -> "
          f"{result['inputs_per_s']:.2f} inputs/s, {result['frames_per_s']:.1f} frames/s; "
          f"{result['frames_per_s_excluding_startup']:.1f} frames/s excluding start-up (load {load:.1f})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "batch-cpu.json"))
    options = parser.parse_args()

    import ray
    import torch
    from support.media import make_clip
    from support.models import save_tiny_models

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pose, detector = save_tiny_models(tmp)
        (tmp / "in").mkdir()
        for n in range(options.clips):
            make_clip(tmp / "in" / f"clip{n:03d}.mp4", width=320, height=240, frames=options.frames)
        common = ["--source", str(tmp / "in"), "--model", pose, "--detector", detector, "--device", "cpu",
                  "--max-persons", "2", "--no-progress"]
        local = run("local", common, tmp / "out-local")
        started = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray_init = time.perf_counter() - started
        on_ray = run("ray", [*common, "--ray", "--workers", str(options.workers)], tmp / "out-ray",
                     options.workers)
        ray.shutdown()
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                    "ray": ray.__version__, "torch_threads_local": torch.get_num_threads()},
        "clips": options.clips, "frames_per_clip": options.frames, "size": "320x240", "models": "tiny (tests/support/models.py)",
        "workers": options.workers, "ray_init_s": round(ray_init, 2), "local": local, "ray": on_ray,
    }
    Path(options.out).parent.mkdir(parents=True, exist_ok=True)
    Path(options.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"ray.init {ray_init:.1f} s; written to {options.out}")


if __name__ == "__main__":
    main()
