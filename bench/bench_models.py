"""Model throughput next to the hardware limit: ViTPose-S/B/L/H crops/s and RT-DETR images/s.

    python bench/bench_models.py                      # CPU: ViTPose-S/B, RT-DETR R18, small batches
    python bench/bench_models.py --device cuda        # GPU: all sizes, fp16, batch 1..128

Random weights of the real architectures (timing does not depend on the values). For each model
and batch size: the median time of one forward pass, items/s, and the fraction of the limit:
FLOPs per item (counted with ``torch.utils.flop_counter``) x items/s / the matmul rate measured
in the same run (a large matmul in the run's dtype). Writes JSON (``--out``) and prints a table.
The pose models run through ``PoseEstimator.forward`` (the engine's path); the detector through
``PersonDetector.forward``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vitpose_live.models.detector import PersonDetector
from vitpose_live.models.device import resolve
from vitpose_live.models.fuse import fold_batch_norms
from vitpose_live.models.pose import PoseEstimator

OUT = Path(__file__).resolve().parent / "out"

# ViTPose backbones as in the paper (Xu et al. 2022, table 1): hidden size, layers, heads.
VITPOSE_SIZES = {"S": (384, 12, 12), "B": (768, 12, 12), "L": (1024, 24, 16), "H": (1280, 32, 16)}
# RT-DETR ResNet-vd backbones: layer type, widths, depths, encoder inputs, decoder layers and the
# encoder's hidden expansion (transformers' conversion script for the R18 and R50 checkpoints;
# R18's 0.5 was missing before 2026-11-29, which made it ~1.5x too heavy: 92.5 against 61 GFLOP).
RTDETR_SIZES = {
    "R18": ("basic", [64, 128, 256, 512], [2, 2, 2, 2], [128, 256, 512], 3, 0.5),
    "R50": ("bottleneck", [256, 512, 1024, 2048], [3, 4, 6, 3], [512, 1024, 2048], 6, 1.0),
}


def vitpose(size: str, attention: str):
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    hidden, layers, heads = VITPOSE_SIZES[size]
    backbone = VitPoseBackboneConfig(
        image_size=[256, 192], patch_size=[16, 16], hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, mlp_ratio=4, out_indices=[layers],
    )  # fmt: skip
    config = VitPoseConfig(backbone_config=backbone, use_simple_decoder=False)
    config.num_labels = 17
    model = VitPoseForPoseEstimation(config).eval()
    model.backbone.config._attn_implementation = attention  # the backbone's attention (sdpa by default)
    return model


def rtdetr(size: str):
    from transformers import RTDetrConfig, RTDetrForObjectDetection, RTDetrResNetConfig

    layer_type, widths, depths, encoder_in, decoder_layers, expansion = RTDETR_SIZES[size]
    backbone = RTDetrResNetConfig(
        layer_type=layer_type, hidden_sizes=widths, depths=depths, out_features=["stage2", "stage3", "stage4"]
    )
    labels = {0: "person", **{i: f"class_{i}" for i in range(1, 80)}}
    config = RTDetrConfig(
        backbone_config=backbone, encoder_in_channels=encoder_in, decoder_layers=decoder_layers,
        hidden_expansion=expansion, id2label=labels, label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    return RTDetrForObjectDetection(config).eval()


def median_seconds(function, device: torch.device, *, min_time: float, max_reps: int) -> float:
    """The median of repeated calls after two warm-ups; CUDA timed with events."""
    for _ in range(2):
        function()
    times = []
    started = time.perf_counter()
    while len(times) < max_reps and (len(times) < 3 or time.perf_counter() - started < min_time):
        if device.type == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            function()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end) / 1e3)
        else:
            begin = time.perf_counter()
            function()
            times.append(time.perf_counter() - begin)
    return statistics.median(times)


def matmul_rate(device: torch.device, dtype: torch.dtype) -> float:
    """FLOP/s of a large square matmul in ``dtype``, over four rotating input pairs (never zeros)."""
    n = 8192 if device.type == "cuda" else 2048
    pairs = [(torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype))
             for _ in range(4)]  # fmt: skip
    turn = iter(range(1 << 30))

    def run():
        a, b = pairs[next(turn) % 4]
        return a @ b

    seconds = median_seconds(run, device, min_time=1.0, max_reps=50)
    return 2 * n**3 / seconds


def count_flops(function) -> int:
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def bench_pose(size: str, batches: list[int], placement, args, rate: float, attention: str = "sdpa",
               graphs: bool = False) -> list[dict]:
    estimator = PoseEstimator(vitpose(size, attention), device=placement.device, dtype=placement.dtype,
                              max_batch=max(batches), cuda_graphs=graphs)  # fmt: skip
    params = sum(p.numel() for p in estimator.model.parameters()) / 1e6
    one = torch.randn(1, 3, 256, 192, device=placement.device, dtype=placement.dtype)
    estimator.model.backbone.config._attn_implementation = "eager"  # the counter sees every matmul
    flops = count_flops(lambda: estimator._heatmaps(one))  # eager: a graph's capture would count thrice
    estimator.model.backbone.config._attn_implementation = attention
    rows = []
    for batch in batches:
        crops = torch.randn(batch, 3, 256, 192, device=placement.device, dtype=placement.dtype)
        seconds = median_seconds(lambda: estimator.forward(crops), placement.device,
                                 min_time=args.min_time, max_reps=args.max_reps)  # fmt: skip
        per_s = batch / seconds
        label = attention + (" + CUDA graphs" if graphs else "")
        rows.append(_row(f"ViTPose-{size}", label, params, batch, seconds, per_s, flops, rate, "crops/s"))
        print(_line(rows[-1]), flush=True)
    _free(placement.device)
    return rows


def bench_detector(size: str, batches: list[int], placement, args, rate: float) -> list[dict]:
    model = rtdetr(size).eval()
    fold_batch_norms(model)  # as the detector does with a checkpoint it loads
    detector = PersonDetector(model, device=placement.device, dtype=placement.dtype)
    params = sum(p.numel() for p in detector.model.parameters()) / 1e6
    one = torch.randn(1, 3, 640, 640, device=placement.device, dtype=placement.dtype)
    flops = count_flops(lambda: detector.forward(one))
    rows = []
    for batch in batches:
        images = torch.randn(batch, 3, 640, 640, device=placement.device, dtype=placement.dtype)
        seconds = median_seconds(lambda: detector.forward(images), placement.device,
                                 min_time=args.min_time, max_reps=args.max_reps)  # fmt: skip
        rows.append(_row(f"RT-DETR-{size}", "-", params, batch, seconds, batch / seconds, flops, rate, "images/s"))
        print(_line(rows[-1]), flush=True)
    _free(placement.device)
    return rows


def _row(model, attention, params, batch, seconds, per_s, flops, rate, unit) -> dict:
    return {
        "model": model, "attention": attention, "params_M": round(params, 1), "batch": batch,
        "ms_per_batch": seconds * 1e3, "items_per_s": per_s, "unit": unit, "gflops_per_item": flops / 1e9,
        "achieved_tflops": flops * per_s / 1e12, "fraction_of_matmul_rate": flops * per_s / rate,
    }  # fmt: skip


def _line(row: dict) -> str:
    return (f"| {row['model']} | {row['attention']} | {row['params_M']:.1f} | {row['batch']} | "
            f"{row['ms_per_batch']:.2f} | {row['items_per_s']:.1f} {row['unit']} | {row['gflops_per_item']:.2f} | "
            f"{row['achieved_tflops']:.1f} | {100 * row['fraction_of_matmul_rate']:.1f} % |")  # fmt: skip


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="auto", help="auto (fp16 on CUDA, fp32 on CPU), fp16, bf16, fp32")
    parser.add_argument("--pose", help="ViTPose sizes, e.g. S,B,L,H (default: S,B on CPU, all on CUDA)")
    parser.add_argument("--detectors", help="RT-DETR sizes, e.g. R18,R50 (default: R18 on CPU, both on CUDA)")
    parser.add_argument("--batches", help="pose batch sizes (default 1,8 on CPU; 1,8,32,64,128 on CUDA)")
    parser.add_argument("--det-batches", help="detector batch sizes (default 1 on CPU; 1,4,8,16 on CUDA)")
    parser.add_argument("--eager", action="store_true", help="also time ViTPose-B with eager attention")
    parser.add_argument("--graphs", action="store_true", help="also time ViTPose-B replayed from CUDA graphs")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds of timed calls per row (at least 3)")
    parser.add_argument("--max-reps", type=int, default=50)
    parser.add_argument("--out", default=str(OUT / "models.json"))
    args = parser.parse_args(argv)
    placement = resolve(args.device, args.dtype)
    cuda = placement.device.type == "cuda"
    pose_sizes = (args.pose or ("S,B,L,H" if cuda else "S,B")).split(",")
    det_sizes = (args.detectors or ("R18,R50" if cuda else "R18")).split(",")
    batches = _ints(args.batches or ("1,8,32,64,128" if cuda else "1,8"))
    det_batches = _ints(args.det_batches or ("1,4,8,16" if cuda else "1"))
    if cuda:
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(placement.device) if cuda else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
    rate = matmul_rate(placement.device, placement.dtype)
    print(f"{name}, {placement.dtype}: matmul rate {rate / 1e12:.1f} TFLOP/s (measured)\n", flush=True)
    print("| model | attention | params M | batch | ms/batch | throughput | GFLOP/item | TFLOP/s | of matmul rate |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    rows = []
    with torch.inference_mode():
        for size in pose_sizes:
            rows += bench_pose(size, batches, placement, args, rate)
        if args.eager:
            rows += bench_pose("B", batches, placement, args, rate, attention="eager")
        if args.graphs and cuda:
            rows += bench_pose("B", batches, placement, args, rate, graphs=True)
        for size in det_sizes:
            rows += bench_detector(size, det_batches, placement, args, rate)
    result = {
        "device": name, "dtype": str(placement.dtype), "torch": torch.__version__,
        "matmul_tflops": rate / 1e12, "rows": rows,
    }  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
