"""Where the host waits for the GPU: every synchronising call in one detector and one pose
forward pass (and the engine's own pre/post-processing), with the line that made it; the
detector's forward both ways: transformers' own and the fixed-shape one (vitpose_live/models/rtdetr.py).

    python bench/syncs.py                    # CUDA: torch's sync debug mode; RT-DETR R50, ViTPose-B
    python bench/syncs.py --cpu              # no GPU: tests/support/host_syncs.py at torch's dispatcher; tiny models
    python bench/syncs.py --out bench/results/syncs_cpu.json
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_e2e import base_rtdetr  # noqa: E402
from bench_models import vitpose  # noqa: E402

from vitpose_live.models.detector import PersonDetector
from vitpose_live.models.device import image_to_device
from vitpose_live.models.pose import PoseEstimator


RESULTS: dict[str, dict] = {}


def report(label: str, places: collections.Counter) -> None:
    RESULTS[label] = {"syncs": sum(places.values()), "places": dict(places.most_common())}
    print(f"{label}: {sum(places.values())} sync(s)")
    for place, count in places.most_common():
        print(f"  {count:4d}  {place}")


def syncs_in(label: str, function) -> None:
    """Run ``function`` with torch's sync debug mode on and print where each sync came from."""
    if not torch.cuda.is_available():
        from support.host_syncs import count

        report(label, count(function).places)
        return
    places: collections.Counter = collections.Counter()

    def record(message, category, filename, lineno, file=None, line=None):
        frames = [f for f in traceback.extract_stack()[:-1] if "warnings" not in f.filename]
        inner = next((f for f in reversed(frames) if "/torch/" not in f.filename or "nn/modules" in f.filename), frames[-1])
        places[f"{Path(inner.filename).name}:{inner.lineno} {inner.line}"] += 1

    torch.cuda.synchronize()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = record
        torch.cuda.set_sync_debug_mode("warn")
        try:
            function()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    report(label, places)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="host syncs per detector and pose pass")
    parser.add_argument("--cpu", action="store_true", help="count on the CPU with tiny models (no GPU needed)")
    parser.add_argument("--out", default=None, help="write the counts as JSON here")
    args = parser.parse_args(argv)
    if args.cpu:
        from support.models import tiny_rtdetr, tiny_vitpose

        device, detector_model, pose_model = "cpu", tiny_rtdetr(), tiny_vitpose()
    elif torch.cuda.is_available():
        device, detector_model, pose_model = "cuda", base_rtdetr(), vitpose("B", "sdpa")
    else:
        raise SystemExit("needs CUDA, or --cpu")
    detector = PersonDetector(detector_model, device=device, max_persons=5, fixed_shapes=True)
    stock = PersonDetector(detector.model, device=device, max_persons=5, fixed_shapes=False)
    pose = PoseEstimator(pose_model, device=device)
    image = image_to_device(np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8), pose.placement)
    boxes = np.array([[100, 100, 400, 900], [500, 100, 800, 900], [900, 50, 1200, 1000]], np.float32)
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            detector(image)
            stock(image)
            pose(image, boxes)
        pixels = detector.preprocess(image)
        syncs_in("detector preprocess", lambda: detector.preprocess(image))
        syncs_in("detector forward, transformers' RT-DETR forward", lambda: stock.forward(pixels))
        syncs_in("detector forward, fixed-shape RT-DETR forward (the default)", lambda: detector.forward(pixels))
        outputs = detector.forward(pixels)
        syncs_in("detector postprocess (one copy to the host is expected)", lambda: detector.postprocess(outputs, [(1080, 1920)]))

        def pose_path():  # the device path (the gather warp), also on a CPU
            device_boxes = pose._boxes_to_device(boxes)
            xs, ys = pose._sample_points(device_boxes)
            pose.keypoints_from_heatmaps(pose.forward(pose._crops_gather(image, xs, ys)), device_boxes)

        syncs_in("pose crops (device path) + forward + decode", pose_path)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        how = "torch.cuda.set_sync_debug_mode" if device == "cuda" else "tests/support/host_syncs.py (CPU proxy)"
        Path(args.out).write_text(json.dumps({"device": device, "counted_with": how, "torch": torch.__version__,
                                              "parts": RESULTS}, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
