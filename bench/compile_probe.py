"""Does torch.compile remove the detector's launch overhead on CUDA? Compile time, ms per batch
and the largest difference to eager, for RT-DETR R50 (folded, NHWC, fp16) at batch 1 and 8.

    python bench/compile_probe.py            # needs CUDA
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from bench_models import median_seconds, rtdetr  # noqa: E402

from vitpose_live.detector import PersonDetector  # noqa: E402
from vitpose_live.fuse import fold_batch_norms  # noqa: E402


def main() -> int:
    model = rtdetr("R50").eval()
    fold_batch_norms(model)
    detector = PersonDetector(model, device="cuda")
    device = detector.device
    inputs = {b: torch.rand(b, 3, 640, 640, device=device, dtype=torch.float16).contiguous(memory_format=torch.channels_last)
              for b in (1, 8)}  # fmt: skip
    with torch.inference_mode():
        eager = {b: detector.model(pixel_values=x) for b, x in inputs.items()}
        for b, x in inputs.items():
            ms = median_seconds(lambda: detector.model(pixel_values=x), device, min_time=1.0, max_reps=50) * 1e3
            print(f"eager batch {b}: {ms:.2f} ms", flush=True)
        for mode in ("reduce-overhead", "default"):
            torch._dynamo.reset()
            compiled = torch.compile(detector.model, mode=mode, dynamic=False)
            for b, x in inputs.items():
                start = time.perf_counter()
                try:
                    for _ in range(3):
                        out = compiled(pixel_values=x)
                    torch.cuda.synchronize()
                except Exception as error:  # noqa: BLE001 - a probe reports and goes on
                    print(f"{mode} batch {b}: failed: {type(error).__name__}: {str(error).splitlines()[0][:300]}")
                    continue
                first = time.perf_counter() - start
                ms = median_seconds(lambda: compiled(pixel_values=x), device, min_time=1.0, max_reps=50) * 1e3
                diff = (out.logits.float() - eager[b].logits.float()).abs().max().item()
                box = (out.pred_boxes.float() - eager[b].pred_boxes.float()).abs().max().item()
                print(f"{mode} batch {b}: compile+3 calls {first:.1f} s, {ms:.2f} ms, max |logit diff| {diff:.3g}, box {box:.3g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
