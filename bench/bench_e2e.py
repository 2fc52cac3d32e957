"""Benchmark: the vitpose_live engine vs the transformers docs recipe, end to end, same frames and models.

    python bench/bench_e2e.py [--frames 120] [--size tiny|base] [--device cpu|cuda] [--out bench/out/e2e.json]

Both sides turn the same 1080p clip (gradio's bundled ``a.mp4``, with its AAC audio) into an
annotated H.264 MP4 with the same detector and pose weights:

* **recipe** — what a user writes from the transformers ViTPose docs, frame by frame: PyAV decode
  to PIL, the checkpoint's ``AutoImageProcessor`` (``RTDetrImageProcessorPil`` here) → RT-DETR →
  ``post_process_object_detection`` → person boxes as xywh → ``VitPoseImageProcessorPil`` →
  ViTPose → ``post_process_pose_estimation`` → ``sv.KeyPoints.from_transformers`` → supervision
  ``EdgeAnnotator`` + ``VertexAnnotator`` → PyAV libx264 encode (veryfast, crf 23, as our sink).
  Timed per stage; it is sequential, so its whole run is the sum of its stages.
* **engine** — the command line in a process of its own, as people run it (``console_main``),
  timed as a whole from its ``--stats-json`` (its threads overlap decode, inference and encode;
  ``--cli-runs`` runs, split before and after the stage loops),
  plus a frame-by-frame loop over the engine's own pieces (``PersonDetector.preprocess/forward/
  postprocess``, ``PoseEstimator.preprocess/forward/postprocess``, ``PoseAnnotator.annotate``,
  ``VideoFileSink.write``) for stage rows comparable with the recipe's.

The recipe loop and the engine's stage loop run interleaved (frame i of one, then of the other,
the order alternating), on a worker thread like the engine's models, so that other work on the
machine weighs on both alike; the 1-minute load average is recorded next to every number.

Models are random-weight copies of the real architectures (no download): ``--size tiny`` the
tiny test models of ``tests/support/models.py``, ``--size base`` ViTPose-B (768 hidden, 12 layers, 12
heads, 256x192) and RT-DETR R50 (``RTDetrConfig()`` defaults) — random weights cost the same
time as trained ones. Persons are capped to ``--max-persons`` (5) per frame on both sides (the
highest-scoring person boxes), and the detector's person class is biased so that there are that
many on every frame; persons/frame is reported for each side.

Prints a table and writes everything as JSON to ``--out``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

OUT = Path(__file__).resolve().parent / "out"
STAGES = (
    "decode", "det_pre", "det_forward", "det_post", "pose_pre", "pose_forward", "pose_post", "draw", "encode",
)  # fmt: skip
# Not "CPU overhead": the models' forward passes and the H.264 encoder itself.
HEAVY = ("det_forward", "pose_forward", "encode")
DET_THRESHOLD, KPT_THRESHOLD = 0.5, 0.3
CRF, PRESET = 23, "veryfast"  # what VideoFileSink uses


def gradio_clip() -> Path | None:
    try:
        import gradio
    except Exception:  # noqa: BLE001 - optional
        return None
    path = Path(gradio.__file__).resolve().parent / "media_assets" / "videos" / "a.mp4"
    return path if path.is_file() else None


# -- the clip ---------------------------------------------------------------------------------
def prepare_clip(frames: int | None, source: str | None) -> tuple[Path, str]:
    """A 1080p clip with audio of ``frames`` frames: gradio's a.mp4 (trimmed and re-encoded at
    high quality when shorter is wanted, cached in bench/out/), or a synthetic one."""
    OUT.mkdir(parents=True, exist_ok=True)
    src = Path(source) if source else gradio_clip()
    if src is None:
        from support.media import make_clip

        n = frames or 120
        path = OUT / f"e2e_synthetic_{n}.mp4"
        if not path.exists():
            make_clip(path, width=1920, height=1080, frames=n, fps=30, audio=True)
        return path, f"synthetic 1920x1080 clip from tests/support/media.py ({n} frames, 30 fps, AAC)"
    with av.open(str(src)) as container:
        total = container.streams.video[0].frames
    if not frames or (total and frames >= total):
        return src, f"{src.name} as is"
    path = OUT / f"e2e_{src.stem}_{frames}.mp4"
    if not path.exists():
        from vitpose_live.outputs.video import VideoFileSink
        from vitpose_live.sources import VideoFileSource

        with VideoFileSource(src) as video:
            info = video.info
            sink = VideoFileSink(
                path, width=info.width, height=info.height, fps=info.fps,
                audio_from=src if info.has_audio else None, crf=18, preset="fast",
            )  # fmt: skip
            with sink:
                for frame in video:
                    if frame.index >= frames:
                        break
                    sink.write(frame.image, frame.time)
    return path, f"first {frames} frames of {src.name}, re-encoded (libx264 crf 18, audio copied)"


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames = video.frames or sum(1 for packet in container.demux(video) if packet.size)
        return {
            "path": str(path),
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "frames": frames,
            "fps": float(video.average_rate) if video.average_rate else None,
            "video_codec": video.codec_context.name,
            "audio_codec": audio.codec_context.name if audio is not None else None,
        }


# -- the models -------------------------------------------------------------------------------
def build_models(size: str, directory: Path) -> tuple[Path, Path, dict]:
    """Save a pose model and a detector (weights + processors) for both sides to load."""
    from transformers import RTDetrImageProcessorPil, VitPoseImageProcessorPil

    torch.manual_seed(0)
    if size == "tiny":
        from support.models import tiny_rtdetr, tiny_vitpose

        pose, detector = tiny_vitpose(), tiny_rtdetr()
    else:
        pose, detector = base_vitpose(), base_rtdetr()
    pose_dir, det_dir = directory / "pose", directory / "detector"
    pose.save_pretrained(pose_dir)
    VitPoseImageProcessorPil().save_pretrained(pose_dir)
    detector.save_pretrained(det_dir)
    RTDetrImageProcessorPil(size={"height": 640, "width": 640}).save_pretrained(det_dir)
    params = {
        "pose_params_M": round(sum(p.numel() for p in pose.parameters()) / 1e6, 2),
        "detector_params_M": round(sum(p.numel() for p in detector.parameters()) / 1e6, 2),
    }
    return pose_dir, det_dir, params


def base_vitpose():
    """ViTPose-B with the simple decoder (usyd-community/vitpose-base-simple's shape)."""
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    backbone = VitPoseBackboneConfig(
        image_size=[256, 192], patch_size=[16, 16], hidden_size=768, num_hidden_layers=12,
        num_attention_heads=12, mlp_ratio=4, out_indices=[12],
    )  # fmt: skip
    config = VitPoseConfig(backbone_config=backbone, use_simple_decoder=True)
    config.num_labels = 17
    return VitPoseForPoseEstimation(config).eval()


def base_rtdetr():
    """RT-DETR R50 (RTDetrConfig() and RTDetrResNetConfig() defaults) with 80 COCO-sized classes;
    the person class is biased so that every query is a confident person (a random detector
    finds no one; the work after detection should be that of a scene with people)."""
    from transformers import RTDetrConfig, RTDetrForObjectDetection

    labels = {0: "person", **{i: f"class_{i}" for i in range(1, 80)}}
    config = RTDetrConfig(id2label=labels, label2id={v: k for k, v in labels.items()})
    model = RTDetrForObjectDetection(config).eval()
    with torch.no_grad():
        for head in (model.model.enc_score_head, *model.model.decoder.class_embed):
            head.weight.normal_(0.0, 1.0 / np.sqrt(head.weight.shape[1]))
            head.bias[0] = 3.0
    return model


# -- timing helpers ---------------------------------------------------------------------------
class Clock:
    """perf_counter, with torch.cuda.synchronize() first on CUDA so GPU work lands in its stage."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


def summarise(samples: dict[str, list[float]], frames: int) -> dict[str, dict]:
    """Per stage: mean ms/frame (with one-off flushes spread over the frames), median and p90."""
    out = {}
    for name in STAGES:
        values = samples.get(name, [])
        total = sum(values) + samples.get(f"{name}_flush", [0.0])[0]
        out[name] = {
            "mean_ms": total / frames if frames else 0.0,
            "median_ms": statistics.median(values) if values else 0.0,
            "p90_ms": float(np.percentile(values, 90)) if values else 0.0,
        }
    return out


# -- side A: the transformers docs recipe -----------------------------------------------------
class Side:
    """One way of turning the clip into an annotated video, a frame per :meth:`step`.

    ``open`` and ``close`` (encoder flush, file finalised) are timed too; ``wall_s`` is their
    sum with every step's, i.e. the side's whole run with model loading left out.
    """

    name = ""

    def __init__(self, args):
        self.args = args
        self.clock = Clock(args.device)
        self.samples: dict[str, list[float]] = {name: [] for name in STAGES}
        self.persons: list[int] = []
        self.frames = 0
        self.seconds = 0.0  # open + steps + close
        self.load_s = 0.0

    def run_open(self) -> None:
        t0 = self.clock()
        self.open()
        self.seconds += self.clock() - t0

    def run_step(self) -> bool:
        if self.args.frames and self.frames >= self.args.frames:
            return False
        t0 = self.clock()
        stamps = self.step()
        if stamps is None:
            return False
        stamps = [t0, *stamps]
        for name, a, b in zip(STAGES, stamps, stamps[1:]):
            self.samples[name].append((b - a) * 1e3)
        self.seconds += stamps[-1] - t0
        self.frames += 1
        return True

    def run_close(self) -> None:
        t0 = self.clock()
        self.close()
        ms = (self.clock() - t0) * 1e3
        self.samples["encode_flush"] = [ms]
        self.seconds += ms / 1e3

    def result(self) -> dict:
        return {
            "frames": self.frames,
            "wall_s": self.seconds,
            "load_s": self.load_s,
            "persons_per_frame": float(np.mean(self.persons)) if self.persons else 0.0,
            "stages": summarise(self.samples, self.frames),
        }


class Recipe(Side):
    """The docs recipe as a user writes it for a video, one frame at a time."""

    name = "recipe"

    def __init__(self, clip: Path, pose_dir: Path, det_dir: Path, out_path: Path, args):
        super().__init__(args)
        import supervision as sv
        from transformers import AutoImageProcessor, RTDetrForObjectDetection, VitPoseForPoseEstimation

        self.clip, self.out_path, self.sv = clip, out_path, sv
        self.device = device = torch.device(args.device)
        loaded = time.perf_counter()
        self.person_processor = AutoImageProcessor.from_pretrained(det_dir)
        self.person_model = RTDetrForObjectDetection.from_pretrained(det_dir).to(device).eval()
        self.pose_processor = AutoImageProcessor.from_pretrained(pose_dir)
        self.pose_model = VitPoseForPoseEstimation.from_pretrained(pose_dir).to(device).eval()
        self.load_s = time.perf_counter() - loaded
        self.edge_annotator = sv.EdgeAnnotator()  # defaults: 2 px lines
        self.vertex_annotator = sv.VertexAnnotator()  # radius 4

    def open(self) -> None:
        self.source = av.open(str(self.clip))
        stream = self.source.streams.video[0]
        self.output = av.open(str(self.out_path), "w", format="mp4")
        rate = stream.average_rate or Fraction(30)
        options = {"crf": str(CRF), "preset": PRESET}
        self.encoder = self.output.add_stream("libx264", rate=rate, options=options)
        self.encoder.width, self.encoder.height = stream.codec_context.width, stream.codec_context.height
        self.encoder.pix_fmt = "yuv420p"
        self.decoded = self.source.decode(stream)

    def step(self) -> list[float] | None:
        clock, device, sv = self.clock, self.device, self.sv
        frame = next(self.decoded, None)
        if frame is None:
            return None
        image = frame.to_image()  # PIL RGB
        t1 = clock()
        inputs = self.person_processor(images=image, return_tensors="pt").to(device)
        t2 = clock()
        with torch.no_grad():
            outputs = self.person_model(**inputs)
        t3 = clock()
        result = self.person_processor.post_process_object_detection(
            outputs, target_sizes=torch.tensor([(image.height, image.width)]), threshold=DET_THRESHOLD
        )[0]
        is_person = result["labels"] == 0  # COCO's person
        top = result["scores"][is_person].argsort(descending=True)[: self.args.max_persons]
        person_boxes = result["boxes"][is_person][top].cpu().numpy()
        person_boxes[:, 2] = person_boxes[:, 2] - person_boxes[:, 0]  # VOC xyxy -> COCO xywh
        person_boxes[:, 3] = person_boxes[:, 3] - person_boxes[:, 1]
        t4 = clock()
        self.persons.append(len(person_boxes))
        if len(person_boxes):
            inputs = self.pose_processor(image, boxes=[person_boxes], return_tensors="pt").to(device)
            t5 = clock()
            with torch.no_grad():
                outputs = self.pose_model(**inputs)
            t6 = clock()
            # No threshold here: with one, persons keep different numbers of keypoints, which
            # from_transformers cannot stack and which shifts the skeleton's edge indices.
            pose_results = self.pose_processor.post_process_pose_estimation(outputs, boxes=[person_boxes])
            t7 = clock()
        else:
            pose_results, t5, t6, t7 = [[]], t4, t4, t4
        key_points = sv.KeyPoints.from_transformers(pose_results[0])
        if len(key_points):  # draw keypoints above the threshold, edges between two of them
            key_points.visible = key_points.keypoint_confidence > KPT_THRESHOLD
        scene = np.array(image)
        scene = self.edge_annotator.annotate(scene, key_points)
        scene = self.vertex_annotator.annotate(scene, key_points)
        t8 = clock()
        picture = av.VideoFrame.from_ndarray(scene, format="rgb24")
        picture.pts = self.frames
        self.output.mux(self.encoder.encode(picture))
        t9 = clock()
        return [t1, t2, t3, t4, t5, t6, t7, t8, t9]

    def close(self) -> None:
        self.output.mux(self.encoder.encode())
        self.output.close()
        self.source.close()

    def result(self) -> dict:
        return super().result() | {
            "processors": [type(self.person_processor).__name__, type(self.pose_processor).__name__],
            "output": str(self.out_path),
        }


# -- side B: the engine -----------------------------------------------------------------------
def engine_argv(clip: Path, out_path: Path, pose_dir: Path, det_dir: Path, args) -> list[str]:
    return [
        "--source", str(clip), "--output", str(out_path),
        "--model", str(pose_dir), "--detector", str(det_dir),
        "--device", args.device, "--dtype", args.dtype, "--det-threshold", str(DET_THRESHOLD),
        "--kpt-threshold", str(KPT_THRESHOLD), "--max-persons", str(args.max_persons), "--no-progress",
        *(["--batch", str(args.batch)] if args.batch else []), *(["--cuda-graphs"] if args.cuda_graphs else []),
        *(["--compile"] if getattr(args, "compile", False) else []),
        *shlex.split(getattr(args, "cli_args", "") or ""),
    ]  # fmt: skip


def run_engine_cli(clip: Path, pose_dir: Path, det_dir: Path, out_path: Path, args) -> dict:
    """The command line as people run it: a process of its own (``console_main``, which also makes
    the process settings the programs make, see ``vitpose_live/system/host_memory.py``); its
    ``--stats-json`` gives the run's seconds after loading, its frames and persons."""
    stats_path = out_path.with_suffix(".stats.json")
    stats_path.unlink(missing_ok=True)
    argv = [*engine_argv(clip, out_path, pose_dir, det_dir, args), "--stats-json", str(stats_path)]
    command = [sys.executable, "-c", "from vitpose_live.apps.cli import console_main; console_main()", *argv]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    before = _load_average()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    total = time.perf_counter() - started
    if done.returncode != 0 or not stats_path.exists():
        raise SystemExit(f"the engine's CLI failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    stats = json.loads(stats_path.read_text())
    frames = stats["frames_processed"]
    return {
        "frames": frames,
        "wall_s": stats["seconds"],
        "load_s": total - stats["seconds"],  # interpreter start, imports and model loading
        "total_s": total,
        "persons_per_frame": stats["persons"] / frames if frames else 0.0,
        "load_average_1min": [before, _load_average()],
        "cli_stats": stats,
        "cli_line": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "",
        "output": str(out_path),
    }


class EngineStages(Side):
    """The engine's pieces one after another, frame by frame (no threads), each timed."""

    name = "engine"

    def __init__(self, clip: Path, pose_dir: Path, det_dir: Path, out_path: Path, args):
        super().__init__(args)
        from vitpose_live.apps import job
        from vitpose_live.apps.cli import parse_request
        from vitpose_live.engine.recipe import build_engine
        from vitpose_live.render import PoseAnnotator

        self.clip, self.out_path = clip, out_path
        ns = parse_request(engine_argv(clip, out_path, pose_dir, det_dir, args))
        loaded = time.perf_counter()
        self.engine = build_engine(job.engine_options(ns, live=False))  # the file job's recipe
        self.load_s = time.perf_counter() - loaded
        self.annotator = PoseAnnotator(kpt_threshold=ns.kpt_threshold, show_boxes=ns.show_boxes)

    def open(self) -> None:
        from vitpose_live.models.device import background_io, decode_threads
        from vitpose_live.outputs.video import VideoFileSink
        from vitpose_live.sources import VideoFileSource

        self.source = VideoFileSource(self.clip, threads=decode_threads(self.engine.pose.device))  # as the CLI
        info = self.source.info
        self.sink = VideoFileSink(
            self.out_path, width=info.width, height=info.height, fps=info.fps,
            audio_from=self.clip if info.has_audio else None, background=background_io(self.engine.pose.device, live=False),
        )  # fmt: skip
        self.frame_iter = iter(self.source)

    def step(self) -> list[float] | None:
        from vitpose_live.models.crops import valid_boxes

        clock, detector, pose = self.clock, self.engine.detector, self.engine.pose
        frame = next(self.frame_iter, None)
        if frame is None:
            return None
        t1 = clock()
        image = self.engine.upload(frame.image)  # the frame on the device once (no-op on CPU)
        pixels = detector.preprocess(image)
        t2 = clock()
        outputs = detector.forward(pixels)
        t3 = clock()
        settings = self.engine.settings  # the engine's own per-call threshold and cap (no tracking here)
        detections = detector.postprocess(outputs, [frame.image.shape[:2]], settings.det_threshold, settings.max_persons)[0]
        keep = valid_boxes(detections.boxes)
        boxes, scores = detections.boxes[keep], detections.scores[keep]
        t4 = clock()
        crops = pose.preprocess(image, boxes)
        t5 = clock()
        heatmaps = pose.forward(crops)
        t6 = clock()
        poses = pose.postprocess(heatmaps, boxes, scores)
        t7 = clock()
        picture = self.annotator.annotate(frame.image, poses)  # a file's frame is drawn on (vitpose_live/runtime/run.py)
        t8 = clock()
        self.sink.write(picture, frame.time)
        t9 = clock()
        self.persons.append(len(poses))
        return [t1, t2, t3, t4, t5, t6, t7, t8, t9]

    def close(self) -> None:
        self.sink.close()
        self.source.close()

    def result(self) -> dict:
        return super().result() | {"output": str(self.out_path)}


def run_interleaved(sides: list[Side]) -> None:
    """Frame i of every side, then frame i+1..., the order turning each frame, so that whatever
    else the machine does at the time weighs on both sides alike."""
    for side in sides:
        side.run_open()
    active = list(sides)
    turn = 0
    while active:
        order = active[turn % len(active):] + active[: turn % len(active)]
        for side in order:
            if not side.run_step():
                active.remove(side)
        turn += 1
    for side in sides:
        side.run_close()


def in_worker_thread(function, *args):
    """``function(*args)`` on a fresh thread, as the engine runs its models (on its inference
    thread). On a busy small CPU, torch's OpenMP team driven from the main thread can be several
    times slower than the same work driven from another thread (its spinning threads fight the
    other processes); running every side's models off the main thread keeps the comparison about
    the code, not about that. ``--main-thread`` measures the other way."""
    import threading

    outcome = {}

    def target():
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # noqa: BLE001 - raised again below
            outcome["error"] = error

    thread = threading.Thread(target=target, name="bench-worker")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def warm_up(pose_dir: Path, det_dir: Path, args) -> None:
    """One pass of each model at the run's shapes, so neither side pays the process's first-call
    costs (thread pools, oneDNN kernels, CUDA context)."""
    from transformers import RTDetrForObjectDetection, VitPoseForPoseEstimation

    device = torch.device(args.device)
    det = RTDetrForObjectDetection.from_pretrained(det_dir).to(device).eval()
    pose = VitPoseForPoseEstimation.from_pretrained(pose_dir).to(device).eval()
    with torch.no_grad():
        for _ in range(2):
            det(pixel_values=torch.rand(1, 3, 640, 640, device=device))
            pose(pixel_values=torch.rand(args.max_persons, 3, 256, 192, device=device))
    if device.type == "cuda":
        torch.cuda.synchronize()


# -- report -----------------------------------------------------------------------------------
def ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def report(result: dict) -> str:
    recipe, stages = result["recipe"], result["engine_stages"]
    rows = [("stage", "recipe ms/frame", "engine ms/frame", "recipe/engine")]
    for name in STAGES:
        a, b = recipe["stages"][name]["mean_ms"], stages["stages"][name]["mean_ms"]
        rows.append((name, f"{a:.1f}", f"{b:.1f}", _x(ratio(a, b))))
    sums = result["stage_sums"]
    rows.append(("sum of stages", f"{sums['recipe_ms']:.1f}", f"{sums['engine_ms']:.1f}", _x(sums["ratio"])))
    over = result["cpu_overhead"]
    rows.append(("CPU overhead*", f"{over['recipe_ms']:.1f}", f"{over['engine_ms']:.1f}", _x(over["ratio"])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    whole = result["whole_run"]
    runs = result["engine_cli_runs"]
    lines += [
        "* everything except det_forward, pose_forward and encode",
        "",
        f"whole run (models loaded -> file closed): recipe {whole['recipe_s']:.2f} s "
        f"({whole['recipe_fps']:.2f} frames/s), engine CLI {whole['engine_s']:.2f} s "
        f"({whole['engine_fps']:.2f} frames/s) -> recipe/engine {_x(whole['ratio'])}",
        "engine CLI runs: " + ", ".join(f"{r['wall_s']:.2f} s (load avg {_load(r)})" for r in runs)
        + f"; model loading {recipe['load_s']:.2f} s recipe, {runs[0]['load_s']:.2f} s engine CLI",
        f"persons/frame: recipe {recipe['persons_per_frame']:.2f}, engine CLI "
        + "/".join(f"{r['persons_per_frame']:.2f}" for r in runs)
        + f", engine stage loop {stages['persons_per_frame']:.2f}",
        f"stage loops run interleaved on {result['stage_loops_on']} "
        f"(load avg {_load(result['interleaved'])})",
    ]
    return "\n".join(lines)


def _load(side: dict) -> str:
    values = side.get("load_average_1min") or [None, None]
    return "/".join("?" if v is None else f"{v:.1f}" for v in values)


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=120, help="frames to process (0: the whole clip)")
    parser.add_argument("--size", choices=("tiny", "base"), default="tiny",
                        help="model size (random weights)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    parser.add_argument("--dtype", default="fp32",
                        help="the engine's --dtype (fp32 = the recipe's; auto: fp16 on CUDA)")
    parser.add_argument("--max-persons", type=int, default=5, help="persons per frame on both sides")
    parser.add_argument("--batch", type=int, help="the engine CLI's --batch (default: its own, 8 on CUDA)")
    parser.add_argument("--cuda-graphs", action="store_true", help="the engine CLI's --cuda-graphs")
    parser.add_argument("--compile", action="store_true",
                        help="the engine CLI's --compile (compile time falls inside each CLI run's seconds)")
    parser.add_argument("--threads", type=int,
                        help="torch intra-op threads for both sides (default: torch's, = cores)")
    parser.add_argument("--cli-runs", type=int, default=2,
                        help="engine CLI runs, split before and after the stage loops "
                        "(default 2; the mean is reported)")
    parser.add_argument("--main-thread", action="store_true",
                        help="run the recipe and the stage loop on the main thread "
                        "(default: a worker thread)")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="make this process (both stage loops) keep freed memory, as the engine's "
                        "programs do (vitpose_live/system/host_memory.py); the recipe's whole run then "
                        "is not the docs recipe's as people run it")
    parser.add_argument("--cli-args", default="", help='more flags for the engine CLI, e.g. "--io-processes"')
    parser.add_argument("--source", help="another clip instead of gradio's a.mp4 (used whole)")
    parser.add_argument("--out", default=str(OUT / "e2e.json"), help="JSON results")
    args = parser.parse_args(argv)
    if args.source:
        args.frames = 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: torch has no CUDA here")
    if args.cli_runs < 1:
        parser.error("--cli-runs must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.keep_freed_memory:
        from vitpose_live.system.host_memory import keep_freed_memory

        keep_freed_memory()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clip, clip_note = prepare_clip(args.frames, args.source)
    clip_info = probe(clip)
    log(f"clip: {clip} ({clip_info['width']}x{clip_info['height']}, {clip_info['frames']} frames, "
        f"audio {clip_info['audio_codec']}) - {clip_note}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench_e2e_") as tmp:
        tmp = Path(tmp)
        pose_dir, det_dir, params = build_models(args.size, tmp)
        log(f"models: {args.size} {params}; warming up")
        call = (lambda f, *a: f(*a)) if args.main_thread else in_worker_thread
        call(warm_up, pose_dir, det_dir, args)
        stem = out.stem  # output videos named after the JSON, so runs do not overwrite each other's
        cli_runs = []
        before = (args.cli_runs + 1) // 2
        for i in range(before):
            log(f"engine CLI, run {i + 1}/{args.cli_runs}")
            cli_runs.append(run_engine_cli(clip, pose_dir, det_dir, OUT / f"{stem}_engine.mp4", args))
        log("recipe and engine stage by stage, interleaved frame by frame")
        recipe = Recipe(clip, pose_dir, det_dir, OUT / f"{stem}_recipe.mp4", args)
        stages = EngineStages(clip, pose_dir, det_dir, OUT / f"{stem}_engine_stages.mp4", args)
        load_before = _load_average()
        call(run_interleaved, [recipe, stages])
        interleaved = {"load_average_1min": [load_before, _load_average()]}
        for i in range(before, args.cli_runs):
            log(f"engine CLI, run {i + 1}/{args.cli_runs}")
            cli_runs.append(run_engine_cli(clip, pose_dir, det_dir, OUT / f"{stem}_engine.mp4", args))
    recipe, engine_stages = recipe.result(), stages.result()

    def stage_sum(side):
        return sum(side["stages"][name]["mean_ms"] for name in STAGES)

    def overhead(side):
        return sum(side["stages"][name]["mean_ms"] for name in STAGES if name not in HEAVY)

    engine_wall = statistics.mean(r["wall_s"] for r in cli_runs)
    engine_frames = cli_runs[0]["frames"]
    result = {
        "device": args.device,
        "device_description": (
            torch.cuda.get_device_name(0) if args.device.startswith("cuda")
            else f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), no GPU"
        ),  # fmt: skip
        "torch_threads": torch.get_num_threads(),
        "stage_loops_keep_freed_memory": bool(args.keep_freed_memory),
        "engine_cli": "a process of its own (console_main: keeps freed memory)",
        "engine_cli_args": args.cli_args,
        "stage_loops_on": "main thread" if args.main_thread else "a worker thread",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "av": av.__version__,
                     **_versions("transformers", "supervision", "numpy", "cv2")},  # fmt: skip
        "size": args.size,
        "dtype_engine": args.dtype,
        "models": params,
        "max_persons": args.max_persons,
        "thresholds": {"detection": DET_THRESHOLD, "keypoint": KPT_THRESHOLD},
        "encoder": {"codec": "libx264", "pix_fmt": "yuv420p", "crf": CRF, "preset": PRESET},
        "clip": clip_info | {"note": clip_note},
        "recipe": recipe,
        "engine_stages": engine_stages,
        "engine_cli_runs": cli_runs,
        "interleaved": interleaved,
    }
    result["stage_sums"] = {
        "recipe_ms": stage_sum(recipe),
        "engine_ms": stage_sum(engine_stages),
        "ratio": ratio(stage_sum(recipe), stage_sum(engine_stages)),
    }
    result["cpu_overhead"] = {
        "definition": "ms/frame of every stage except det_forward, pose_forward and encode",
        "recipe_ms": overhead(recipe),
        "engine_ms": overhead(engine_stages),
        "ratio": ratio(overhead(recipe), overhead(engine_stages)),
    }
    result["whole_run"] = {
        "recipe_s": recipe["wall_s"],
        "engine_s": engine_wall,
        "recipe_fps": recipe["frames"] / recipe["wall_s"],
        "engine_fps": engine_frames / engine_wall,
        "ratio": ratio(recipe["wall_s"], engine_wall),
        "note": "seconds from models loaded to output file closed. recipe: its open + every frame's stages + "
        "flush (it is sequential); engine: the mean over the CLI runs of the CLI's own summary seconds",
    }
    counts = {recipe["frames"], engine_stages["frames"], *(r["frames"] for r in cli_runs)}
    if len(counts) > 1:
        log(f"warning: frame counts differ: recipe {recipe['frames']}, "
            f"engine stages {engine_stages['frames']}, "
            f"engine CLI {[r['frames'] for r in cli_runs]}")  # fmt: skip
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{result['device_description']}, torch threads {result['torch_threads']}, {args.size} models, "
          f"{recipe['frames']} frames {clip_info['width']}x{clip_info['height']}, "
          f"max {args.max_persons} persons/frame\n")  # fmt: skip
    print(report(result))
    print(f"\nwrote {out}")
    return 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _versions(*names: str) -> dict:
    import importlib

    out = {}
    for name in names:
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:  # noqa: BLE001 - informative only
            out[name] = None
    return out


if __name__ == "__main__":
    sys.exit(main())
