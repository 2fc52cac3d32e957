"""Does torch.compile remove the detector's launch overhead, compiled and called on a second
thread (as the CLI's --compile does)? RT-DETR R50 (folded, NHWC, fp16 on CUDA): ms per batch for
transformers' eager forward, the fixed-shape eager forward (vitpose_live/models/rtdetr.py) and the
compiled one at batch buckets 1 and 8, compile time, and the largest difference to eager.

    python bench/compile_probe.py                              # needs CUDA (reduce-overhead: CUDA graphs)
    python bench/compile_probe.py --cpu --backend aot_eager    # the same steps on a CPU, tiny RT-DETR
    python bench/compile_probe.py --out bench/results/compile_cuda.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1]),
                str(Path(__file__).resolve().parents[1] / "tests")]

from bench_models import median_seconds, rtdetr  # noqa: E402

from vitpose_live.models.detector import PersonDetector


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="tiny RT-DETR on the CPU")
    parser.add_argument("--backend", default=None, help="a torch.compile backend (default: inductor, CUDA graphs on CUDA)")
    parser.add_argument("--buckets", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--reps", type=int, default=12, help="CPU: interleaved calls per variant (best kept)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.cpu:
        from support.models import tiny_rtdetr

        model, device, dtype = tiny_rtdetr(), "cpu", torch.float32
        torch.set_num_threads(1)  # thread CPU time is then the whole cost of a call
    elif torch.cuda.is_available():
        model, device, dtype = rtdetr("R50").eval(), "cuda", torch.float16
    else:
        raise SystemExit("needs CUDA, or --cpu")
    # fold_norms applies to loaded models only; the folding is done on this instance here
    from vitpose_live.models.fuse import fold_batch_norms

    fold_batch_norms(model)
    stock = PersonDetector(model, device=device, dtype=dtype, fixed_shapes=False)
    fixed = PersonDetector(model, device=device, dtype=dtype, fixed_shapes=True)
    compiled = PersonDetector(model, device=device, dtype=dtype, compile=args.backend or True)
    size = (640, 640)
    with torch.inference_mode():  # inference tensors, like the detector's own preprocess makes under the engine
        inputs = {b: torch.rand(b, 3, *size, device=stock.device, dtype=dtype).contiguous(memory_format=torch.channels_last)
                  for b in args.buckets}  # fmt: skip
    report = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
              "backend": args.backend or ("inductor reduce-overhead" if device == "cuda" else "inductor"),
              "threads": torch.get_num_threads(), "load_before": os.getloadavg()[0], "rows": []}
    rows: list[dict] = []

    def timings(variants: dict, x: torch.Tensor) -> dict:
        """ms per call of each variant: CUDA events (median), or on a CPU the best thread CPU time
        of calls interleaved variant by variant (fair on a shared machine)."""
        if device == "cuda":
            return {name: median_seconds(functools.partial(f, x), stock.device, min_time=1.0, max_reps=50) * 1e3
                    for name, f in variants.items()}
        best = {name: float("inf") for name in variants}
        for _ in range(args.reps):
            for name, f in variants.items():
                start = time.thread_time()
                f(x)
                best[name] = min(best[name], (time.thread_time() - start) * 1e3)
        return best

    def on_the_worker() -> None:  # everything on one thread that is not the main one, as in the CLI
        variants = {"transformers eager": stock.forward, "fixed-shape eager": fixed.forward}
        try:
            start = time.perf_counter()
            compiled.warm(args.buckets)
            report["compile_s"] = round(time.perf_counter() - start, 1)
            print(f"compile + warm-up on a worker thread, buckets {args.buckets}: {report['compile_s']:.1f} s", flush=True)
            variants["compiled (worker thread)"] = compiled.forward
        except Exception as error:  # noqa: BLE001 - a probe reports and goes on
            report["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
            print(f"compiled on a worker thread: failed: {report['error']}", flush=True)
        with torch.inference_mode():
            for b, x in inputs.items():
                eager = stock.forward(x)
                try:
                    measured = timings(variants, x)
                except Exception as error:  # noqa: BLE001 - e.g. a replay that fails: report it, time the rest
                    report["error"] = f"batch {b}: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
                    print(f"compiled forward failed: {report['error']}", flush=True)
                    variants.pop("compiled (worker thread)", None)
                    measured = timings(variants, x)
                row = {"batch": b, **{f"{name} ms": round(ms, 3) for name, ms in measured.items()}}
                row["fixed-shape max |logit diff|"] = (fixed.forward(x).logits.float() - eager.logits.float()).abs().max().item()
                if "compiled (worker thread)" in variants:
                    out = compiled.forward(x)
                    row["compiled max |logit diff|"] = (out.logits.float() - eager.logits.float()).abs().max().item()
                    row["compiled max |box diff|"] = (out.pred_boxes.float() - eager.pred_boxes.float()).abs().max().item()
                rows.append(row)

    worker = threading.Thread(target=on_the_worker, name="probe-inference")
    worker.start()
    worker.join()
    for row in rows:
        print(f"batch {row['batch']}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "batch"), flush=True)
    report["rows"] = rows
    report["load_after"] = os.getloadavg()[0]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
