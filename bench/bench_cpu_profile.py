"""The CPU profile's measurements: pose models per crop and person detectors per input size.

    python bench/bench_cpu_profile.py [--reps 5] [--threads 2] [--out bench/out/cpu-profile.json]

Real-size models with random weights (timing does not depend on the values), built from the
published checkpoints' configs (where each one comes from is written next to it in
``DETECTORS`` and ``POSE_MODELS``). Pose models run through ``PoseEstimator.forward`` on 256x192
crops (1, 4 and 6 at once); detectors through ``PersonDetector.forward`` (the engine's path: batch
norms folded, channels-last) on one image at each input side the model accepts. Candidates are
interleaved, one call each per round, so that the load of a shared machine falls on all of them
alike; each figure is the median over the rounds, with the 1-minute load average read next to
every call. FLOPs are torch's counter's (matmuls and convolutions; deformable sampling is not
counted). Accuracy cannot be measured with random weights: ``published_ap`` is the authors' COCO
val2017 AP at their own input size, quoted with its source.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command line runs (before torch loads)
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitpose_live.models.detector import PersonDetector
from vitpose_live.models.fuse import fold_batch_norms, keep_one_expert
from vitpose_live.models.pose import PoseEstimator

OUT = Path(__file__).resolve().parent / "out" / "cpu-profile.json"
SIDES = (640, 480, 416, 384, 320)
COCO80 = {0: "person", **{i: f"class_{i}" for i in range(1, 80)}}
COCO91 = {0: "N/A", 1: "person", **{i: f"class_{i}" for i in range(2, 91)}}


@dataclass(frozen=True)
class Candidate:
    name: str
    hub_id: str
    build: object  # () -> model
    config_source: str
    published_ap: str  # the authors' figure and where it is from


def _labels(config, labels: dict) -> None:
    config.id2label, config.label2id = dict(labels), {v: k for k, v in labels.items()}


# -- pose models ------------------------------------------------------------------------------
def vitpose_plus_small():
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    backbone = VitPoseBackboneConfig(image_size=[256, 192], patch_size=[16, 16], hidden_size=384, num_hidden_layers=12,
                                     num_attention_heads=12, mlp_ratio=4, num_experts=6, part_features=96,
                                     out_indices=[12])  # fmt: skip
    config = VitPoseConfig(backbone_config=backbone, use_simple_decoder=False)
    config.num_labels = 17
    return VitPoseForPoseEstimation(config).eval()


def vitpose_base_simple():
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    backbone = VitPoseBackboneConfig(image_size=[256, 192], patch_size=[16, 16], hidden_size=768, num_hidden_layers=12,
                                     num_attention_heads=12, mlp_ratio=4, out_indices=[12])  # fmt: skip
    config = VitPoseConfig(backbone_config=backbone, use_simple_decoder=True)
    config.num_labels = 17
    return VitPoseForPoseEstimation(config).eval()


POSE_MODELS = (
    Candidate("ViTPose++-S", "usyd-community/vitpose-plus-small", vitpose_plus_small,
              "ViTPose+ small (ViT-S: 384 wide, 12 layers, 12 heads, 6 experts; part_features 96 = width/4 as in "
              "ViTPose++-B's 192/768, not read from the checkpoint) with the classic (deconvolution) decoder",
              "not quoted (ViTPose++ paper, COCO val; not re-checked in this session)"),
    Candidate("ViTPose-B simple", "usyd-community/vitpose-base-simple", vitpose_base_simple,
              "transformers' convert_vitpose_to_hf.py: ViT-B (768, 12 layers, 12 heads), use_simple_decoder",
              "not quoted (ViTPose paper, COCO val; not re-checked in this session)"),
)


# -- detectors --------------------------------------------------------------------------------
def rtdetr(size: str, v2: bool = False):
    import transformers as t

    config = (t.RTDetrV2Config if v2 else t.RTDetrConfig)()
    if size == "r18":  # transformers' convert_rt_detr_original_pytorch_checkpoint_to_hf.py, rtdetr_r18vd_coco_o365
        config.backbone_config.hidden_sizes = [64, 128, 256, 512]
        config.backbone_config.depths = [2, 2, 2, 2]
        config.backbone_config.layer_type = "basic"
        config.encoder_in_channels = [128, 256, 512]
        config.hidden_expansion = 0.5
        config.decoder_layers = 3
    _labels(config, COCO80)
    model_class = t.RTDetrV2ForObjectDetection if v2 else t.RTDetrForObjectDetection
    return model_class(config).eval()


def dfine(size: str):
    """transformers' convert_d_fine_original_pytorch_checkpoint_to_hf.py, get_d_fine_config."""
    from transformers import DFineConfig, DFineForObjectDetection

    config = DFineConfig()
    backbone = config.backbone_config
    backbone.hidden_sizes, backbone.stem_channels = [128, 256, 512, 1024], [3, 16, 16]
    backbone.stage_in_channels, backbone.stage_mid_channels = [16, 64, 256, 512], [16, 32, 64, 128]
    backbone.stage_out_channels, backbone.stage_num_blocks = [64, 256, 512, 1024], [1, 1, 2, 1]
    backbone.stage_downsample, backbone.stage_light_block = [False, True, True, True], [False, False, True, True]
    backbone.stage_kernel_size, backbone.stage_numb_of_layers = [3, 3, 5, 5], [3, 3, 3, 3]
    backbone.use_learnable_affine_block = True
    config.decoder_layers = 3
    if size == "n":
        backbone.out_indices = [3, 4]
        config.num_feature_levels, config.encoder_ffn_dim, config.encode_proj_layers = 2, 512, [1]
        config.d_model = config.encoder_hidden_dim = 128
        config.decoder_ffn_dim, config.encoder_in_channels = 512, [512, 1024]
        config.decoder_n_points, config.decoder_in_channels = [6, 6], [128, 128]
        config.feat_strides, config.depth_mult, config.hidden_expansion = [16, 32], 0.5, 0.34
        config.head_dim = config.d_model // config.decoder_attention_heads  # set from d_model at init; 128 / 8
    else:
        config.hidden_expansion, config.depth_mult = 0.5, 0.34
        config.decoder_n_points, config.encoder_in_channels = [3, 6, 3], [256, 512, 1024]
    _labels(config, COCO80)
    return DFineForObjectDetection(config).eval()


def lw_detr_tiny():
    """transformers' convert_lw_detr_to_hf.py, BACKBONE_CONFIGS / MODEL_CONFIGS["tiny"]."""
    from transformers import LwDetrConfig, LwDetrForObjectDetection, LwDetrViTConfig

    backbone = LwDetrViTConfig(image_size=1024, hidden_size=192, num_hidden_layers=6, num_attention_heads=12,
                               window_block_indices=[0, 2, 4], out_indices=[1, 3, 5])  # fmt: skip
    config = LwDetrConfig(backbone_config=backbone, projector_scale_factors=[1.0], num_queries=100, decoder_layers=3,
                          decoder_self_attention_heads=8, decoder_cross_attention_heads=16, decoder_n_points=2,
                          d_model=256)  # fmt: skip
    _labels(config, COCO91)
    return LwDetrForObjectDetection(config).eval()


def rf_detr_nano():
    """transformers' rf_detr conversion script (convert_rf_detr_to_hf.py), "nano"."""
    from transformers import RfDetrConfig, RfDetrDinov2Config, RfDetrForObjectDetection

    backbone = RfDetrDinov2Config(hidden_size=384, num_attention_heads=6, num_hidden_layers=12, mlp_ratio=4,
                                  patch_size=16, num_windows=2, image_size=384,
                                  out_features=["stage3", "stage6", "stage9", "stage12"])  # fmt: skip
    config = RfDetrConfig(backbone_config=backbone, d_model=256, decoder_layers=2, decoder_self_attention_heads=8,
                          decoder_cross_attention_heads=16, decoder_n_points=2, projector_scale_factors=[1.0],
                          num_queries=300)  # fmt: skip
    _labels(config, COCO91)
    return RfDetrForObjectDetection(config).eval()


DETECTORS = (
    Candidate("RT-DETR R18", "PekingU/rtdetr_r18vd_coco_o365", lambda: rtdetr("r18"),
              "transformers' RT-DETR conversion script, rtdetr_r18vd_coco_o365",
              "49.2 AP at 640 (RT-DETR README table, R18 COCO + Objects365; authors' figure, as quoted by "
              "deepwiki.com/lyuwenyu/RT-DETR/8.1-pre-trained-models)"),
    Candidate("RT-DETR R50", "PekingU/rtdetr_r50vd_coco_o365", lambda: rtdetr("r50"),
              "RTDetrConfig() defaults (= rtdetr_r50vd_coco_o365 in the conversion script)",
              "55.3 AP at 640 (RT-DETR README table, R50 COCO + Objects365; authors' figure, as quoted by "
              "deepwiki.com/lyuwenyu/RT-DETR/8.1-pre-trained-models)"),
    Candidate("RT-DETRv2 R18", "PekingU/rtdetr_v2_r18vd", lambda: rtdetr("r18", v2=True),
              "RTDetrV2Config() with the R18 values of the v1 conversion script (assumed the same for v2; not "
              "read from the checkpoint)",
              "48.1 AP at 640 (RT-DETRv2-S, RT-DETR README table; authors' figure, as quoted by "
              "deepwiki.com/lyuwenyu/RT-DETR/8.1-pre-trained-models)"),
    Candidate("D-FINE N", "ustc-community/dfine-nano-coco", lambda: dfine("n"),
              "transformers' D-FINE conversion script, dfine_n_coco",
              "42.8 AP at 640 (D-FINE README table; authors' figure, recalled, not re-checked; its 7 GFLOPs "
              "match this build's count)"),
    Candidate("D-FINE S", "ustc-community/dfine-small-coco", lambda: dfine("s"),
              "transformers' D-FINE conversion script, dfine_s_coco",
              "48.5 AP at 640 (D-FINE README table; authors' figure, recalled, not re-checked)"),
    Candidate("LW-DETR tiny", "AnnaZhang/lwdetr_tiny_60e_coco", lw_detr_tiny,
              "transformers' LW-DETR conversion script, tiny (hub id by the pattern of the config's "
              "AnnaZhang/lwdetr_small_60e_coco, not verified)",
              "42.6 AP at 640 (LW-DETR paper; authors' figure, recalled, not re-checked)"),
    Candidate("RF-DETR nano", "(conversion script: rfdetr nano_coco)", rf_detr_nano,
              "transformers' RF-DETR conversion script, nano (input 384)",
              "48.4 AP at 384 (RF-DETR README; authors' figure, recalled, not re-checked)"),
)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def count_flops(function) -> float | None:
    """GFLOPs of one call (None where the counter cannot follow the model)."""
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            function()
    except Exception:  # noqa: BLE001 - cosmetic: the time is what counts
        return None
    return round(counter.get_total_flops() / 1e9, 2)


def pose_jobs(batches: tuple[int, ...]) -> list[dict]:
    jobs = []
    for candidate in POSE_MODELS:
        estimator = PoseEstimator(candidate.build(), device="cpu", max_batch=max(batches))
        keep_one_expert(estimator.model, estimator.expert)  # as for every checkpoint the engine loads
        for batch in batches:
            crops = torch.randn(batch, 3, 256, 192)
            jobs.append({"kind": "pose", "candidate": candidate, "batch": batch,
                         "call": (lambda e=estimator, c=crops: e.forward(c)),
                         "params_M": sum(p.numel() for p in estimator.model.parameters()) / 1e6})
    return jobs


def detector_jobs(sides: tuple[int, ...], names: set[str] | None) -> list[dict]:
    from transformers import RTDetrImageProcessorPil

    jobs = []
    for candidate in DETECTORS:
        if names and candidate.name not in names:
            continue
        model = candidate.build()
        fold_batch_norms(model)  # as PersonDetector does with a checkpoint it loads
        detector = PersonDetector(model, processor=RTDetrImageProcessorPil(), device="cpu")
        params = sum(p.numel() for p in detector.model.parameters()) / 1e6
        for side in sides:
            image = torch.randn(1, 3, side, side).contiguous(memory_format=torch.channels_last)
            try:
                with torch.inference_mode():
                    detector.forward(image)  # the first call: unsupported sizes fail here
            except Exception as error:  # noqa: BLE001 - recorded, the others go on
                jobs.append({"kind": "detector", "candidate": candidate, "side": side, "error": str(error)[:200]})
                continue
            jobs.append({"kind": "detector", "candidate": candidate, "side": side, "params_M": params,
                         "call": (lambda d=detector, x=image: d.forward(x))})
    return jobs


def run(jobs: list[dict], reps: int) -> None:
    """Every job once per round, ``reps`` rounds; times and load averages onto the jobs."""
    for job in jobs:
        if "call" in job:
            job["gflops"] = count_flops(job["call"])
            job["times"], job["loads"] = [], []
    with torch.inference_mode():
        for job in jobs:  # a warm-up call each
            if "call" in job:
                job["call"]()
        for round_ in range(reps):
            for job in jobs:
                if "call" not in job:
                    continue
                job["loads"].append(load_average())
                start = time.perf_counter()
                job["call"]()
                job["times"].append((time.perf_counter() - start) * 1e3)
            print(f"round {round_ + 1}/{reps} done, load {load_average()}", flush=True)


def row(job: dict) -> dict:
    candidate = job["candidate"]
    out = {"kind": job["kind"], "model": candidate.name, "hub_id": candidate.hub_id,
           "config_source": candidate.config_source, "published_ap": candidate.published_ap}
    out.update({key: job[key] for key in ("batch", "side", "error") if key in job})
    if "times" in job:
        out.update(params_M=round(job["params_M"], 1), gflops=job["gflops"],
                   ms_median=round(statistics.median(job["times"]), 1), ms_min=round(min(job["times"]), 1),
                   ms_all=[round(t, 1) for t in job["times"]], load_1min=job["loads"])
        if job["kind"] == "pose":
            out["ms_per_crop"] = round(out["ms_median"] / job["batch"], 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="rounds over all candidates (median of these)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the machine's 2 cores)")
    parser.add_argument("--sides", default=",".join(map(str, SIDES)))
    parser.add_argument("--batches", default="1,4,6", help="pose crops per call")
    parser.add_argument("--detectors", help="only these (names as in the table, comma-separated)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sides = tuple(int(v) for v in args.sides.split(","))
    names = set(args.detectors.split(",")) if args.detectors else None
    jobs = pose_jobs(tuple(int(v) for v in args.batches.split(","))) + detector_jobs(sides, names)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    run(jobs, args.reps)
    rows = [row(job) for job in jobs]
    print("\n| model | input | ms median (min) | GFLOP | load 1-min | published AP |")
    print("| --- | --- | ---: | ---: | --- | --- |")
    for r in rows:
        what = f"batch {r['batch']}" if r["kind"] == "pose" else f"{r['side']}²"
        if "error" in r:
            print(f"| {r['model']} | {what} | unsupported: {r['error'][:60]} | | | |")
            continue
        loads = f"{min(r['load_1min']):.1f}–{max(r['load_1min']):.1f}"
        print(f"| {r['model']} | {what} | {r['ms_median']:.0f} ({r['ms_min']:.0f}) | {r['gflops'] if r['gflops'] is not None else '-'} | {loads} | "
              f"{r['published_ap'].split(' (')[0]} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
               "threads": args.threads}
    args.out.write_text(json.dumps({"started": started, "machine": machine, "reps": args.reps, "rows": rows},
                                   indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
