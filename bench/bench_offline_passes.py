"""Benchmark: ``--smooth offline``'s second pass as a share of its first, on real clips.

    python bench/bench_offline_passes.py [--clips b.mp4 a.mp4] [--runs 3] [--out bench/out/offline-passes.json]

Gradio's bundled clips (``b.mp4`` 480x270, 150 frames; ``a.mp4`` 1920x1080, 209 frames; both
30 fps), the tiny random-weight models of ``tests/support/models.py`` (detector input 640x640,
as the real RT-DETR's), on the CPU.

* **as people run it**: the command line in a process of its own with ``--smooth offline
  --output --keypoints --stats-json``; its ``stats["offline"]`` gives ``pass1_s`` (inference),
  ``analyse_s`` and ``pass2_s`` (decode again, draw, encode, write), and the share is
  ``pass2_s / pass1_s``. Next to it the same clip and outputs in one pass (no analysis): what
  the offline run costs in all over the run people would otherwise make. ``--runs`` of each,
  interleaved, medians reported.
* **what pass 2 spends**: in this process, one pass 1 and analysis, then the real
  :func:`~vitpose_live.runtime.offline_run.second_pass` with its outputs growing: none (decode,
  the analysis' look-up, following), + keypoints JSONL, + drawing (a picture sink that drops the
  pictures), + encoding (the real H.264 sink). Each step's cost is its difference to the one
  before. And keypoints alone as the command line writes them (no picture: no second decode,
  :func:`~vitpose_live.runtime.offline_run.records_pass`). ``--runs`` rounds, interleaved, medians.

The 1-minute load average is recorded (the machine may be shared). See bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

VIDEOS = Path(importlib.util.find_spec("gradio").origin).parent / "media_assets" / "videos"
OUT = Path(__file__).resolve().parent / "out"


def save_models(directory: Path) -> tuple[Path, Path]:
    from support.models import detector_processor, pose_processor, tiny_rtdetr, tiny_vitpose

    pose_dir, det_dir = directory / "pose", directory / "detector"
    tiny_vitpose().save_pretrained(pose_dir)
    pose_processor().save_pretrained(pose_dir)
    tiny_rtdetr().save_pretrained(det_dir)
    detector_processor(640).save_pretrained(det_dir)
    return pose_dir, det_dir


def cli_run(clip: Path, models: tuple[Path, Path], work: Path, offline: bool) -> dict:
    """One command-line run in a process of its own; its stats plus the wall seconds."""
    stats = work / "stats.json"
    argv = [sys.executable, str(ROOT / "app.py"), "--model", str(models[0]), "--detector", str(models[1]),
            "--device", "cpu", "--no-progress", "--source", str(clip), "--output", str(work / "out.mp4"),
            "--keypoints", str(work / "k.jsonl"), "--stats-json", str(stats)]  # fmt: skip
    if offline:
        argv += ["--smooth", "offline"]
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, text=True)
    report = json.loads(stats.read_text())
    report["wall_s"] = time.perf_counter() - started
    return report


def as_people_run_it(clip: Path, models, work: Path, runs: int) -> dict:
    """``runs`` rounds of an offline run then a one-pass run, same outputs; medians."""
    samples: dict[str, list[float]] = {key: [] for key in (
        "pass1_s", "analyse_s", "pass2_s", "share", "offline_s", "one_pass_s", "load_1min")}  # fmt: skip
    for _ in range(runs):
        samples["load_1min"].append(os.getloadavg()[0])
        offline = cli_run(clip, models, work, offline=True)["offline"]
        one_pass = cli_run(clip, models, work, offline=False)
        for key in ("pass1_s", "analyse_s", "pass2_s"):
            samples[key].append(offline[key])
        samples["share"].append(offline["pass2_s"] / offline["pass1_s"])
        samples["offline_s"].append(offline["pass1_s"] + offline["analyse_s"] + offline["pass2_s"])
        samples["one_pass_s"].append(one_pass["seconds"])
    medians = {key: round(statistics.median(values), 3) for key, values in samples.items()}
    medians["offline_over_one_pass"] = round(medians["offline_s"] / medians["one_pass_s"], 3)
    return medians | {"frames": offline["frames"], "samples": samples}


class DroppedPictures:
    """A picture sink that keeps nothing: pass 2 draws for it, nothing is encoded."""

    def write(self, picture, time=None) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def pass_two_parts(clip: Path, models, work: Path, runs: int) -> dict:
    """Pass 1 and the analysis once, in process; then pass 2 with its outputs growing, ``runs``
    rounds; the median seconds of each and what each step adds."""
    from vitpose_live.analysis.offline import TrackStore, analyse
    from vitpose_live.apps.cli import parse_request
    from vitpose_live.apps.job import engine_options, open_input
    from vitpose_live.engine.recipe import build_engine
    from vitpose_live.outputs.base import Outputs
    from vitpose_live.outputs.keypoints import open_keypoints_sink
    from vitpose_live.outputs.records import keypoints_header
    from vitpose_live.outputs.video import VideoFileSink
    from vitpose_live.render import PoseAnnotator
    from vitpose_live.runtime.offline_run import StoreSink, records_pass, second_pass
    from vitpose_live.runtime.run import RunOptions, run
    from vitpose_live.sources.spec import classify

    request = parse_request(["--model", str(models[0]), "--detector", str(models[1]), "--device", "cpu",
                             "--source", str(clip), "--smooth", "offline", "--keypoints", "unused.jsonl"])  # fmt: skip
    spec = classify(request.source)
    engine = build_engine(engine_options(request, live=False))
    source = open_input(request, spec)
    info, kpt = source.info, engine.settings.kpt_threshold
    sink = StoreSink(TrackStore(engine.skeleton.keypoint_names, engine.skeleton.edges))
    run(source, engine, Outputs(records=[sink]), RunOptions(batch=1, progress=False))
    store, analysis = sink.store, analyse(sink.store, info.fps or 30.0)
    header = keypoints_header(engine, {"source": str(clip), "width": info.width, "height": info.height, "fps": info.fps})

    def outputs(step: str) -> Outputs:
        made = Outputs()
        if step != "decode":
            made.records.append(open_keypoints_sink(work / "k.jsonl", header=header | {"person_fields": ["interpolated"]}))
        if step == "+draw":
            made.pictures.append(DroppedPictures())
        if step == "+encode":
            made.pictures.append(VideoFileSink(work / "out.mp4", width=info.width, height=info.height,
                                               fps=info.fps or 30.0, audio_from=clip if info.has_audio else None))
        return made

    steps = ("decode", "+jsonl", "+draw", "+encode")
    seconds: dict[str, list[float]] = {step: [] for step in (*steps, "keypoints_alone")}
    for _ in range(runs):
        made = outputs("+jsonl")
        started = time.perf_counter()
        records_pass(sink.times, (info.width, info.height), analysis, made, kpt)
        made.close()
        seconds["keypoints_alone"].append(time.perf_counter() - started)
        for step in steps:
            made = outputs(step)
            started = time.perf_counter()
            second_pass(lambda: open_input(request, spec), analysis, made, PoseAnnotator(), kpt,
                        options=RunOptions(progress=False))
            made.close()
            seconds[step].append(time.perf_counter() - started)
    medians = {step: statistics.median(values) for step, values in seconds.items()}
    added = {step: medians[step] - (medians[steps[i - 1]] if i else 0.0) for i, step in enumerate(steps)}
    added["keypoints_alone"] = medians["keypoints_alone"]
    frames = analysis.frames
    return {"frames": frames, "persons_per_frame": round(store.sightings / max(frames, 1), 2),
            "total_s": {step: round(value, 3) for step, value in medians.items()},
            "added_ms_per_frame": {step: round(value / frames * 1e3, 2) for step, value in added.items()},
            "samples_s": seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=["b.mp4", "a.mp4"], help="gradio's bundled clips")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT / "offline-passes.json")
    args = parser.parse_args()
    report = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "clips": {}}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        models = save_models(work)
        for name in args.clips:
            clip = VIDEOS / name
            cli = as_people_run_it(clip, models, work, args.runs)
            parts = pass_two_parts(clip, models, work, args.runs)
            report["clips"][name] = {"cli": cli, "pass2_parts": parts}
            print(f"{name}: pass 1 {cli['pass1_s']:.2f} s, analyse {cli['analyse_s']:.3f} s, pass 2 "
                  f"{cli['pass2_s']:.2f} s -> pass 2 is {100 * cli['share']:.0f} % of pass 1 (aim <= 15 %); "
                  f"offline {cli['offline_s']:.2f} s vs one pass {cli['one_pass_s']:.2f} s "
                  f"({cli['offline_over_one_pass']:.2f}x); load {cli['load_1min']:.1f}")
            print("  pass 2 per frame (ms): " + ", ".join(f"{k} {v}" for k, v in parts["added_ms_per_frame"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
