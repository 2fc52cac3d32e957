"""Where the host waits for the GPU: every synchronising call in one detector and one pose
forward pass (and the engine's own pre/post-processing), with the line that made it.

    python bench/syncs.py            # needs CUDA; real-size random models (RT-DETR R50, ViTPose-B)
"""

from __future__ import annotations

import collections
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_e2e import base_rtdetr  # noqa: E402
from bench_models import vitpose  # noqa: E402

from vitpose_live.detector import PersonDetector  # noqa: E402
from vitpose_live.device import image_to_device  # noqa: E402
from vitpose_live.pose import PoseEstimator  # noqa: E402


def syncs_in(label: str, function) -> None:
    """Run ``function`` with torch's sync debug mode on and print where each sync came from."""
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
    print(f"{label}: {sum(places.values())} sync(s)")
    for place, count in places.most_common():
        print(f"  {count:4d}  {place}")


def main() -> int:
    if not torch.cuda.is_available():
        raise SystemExit("needs CUDA")
    detector = PersonDetector(base_rtdetr(), device="cuda", max_persons=5)
    pose = PoseEstimator(vitpose("B", "sdpa"), device="cuda")
    image = image_to_device(np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8), pose.placement)
    boxes = np.array([[100, 100, 400, 900], [500, 100, 800, 900], [900, 50, 1200, 1000]], np.float32)
    for _ in range(2):  # warm-up
        detector(image)
        pose(image, boxes)
    pixels = detector.preprocess(image)
    syncs_in("detector preprocess", lambda: detector.preprocess(image))
    syncs_in("detector forward (transformers RT-DETR)", lambda: detector.forward(pixels))
    outputs = detector.forward(pixels)
    syncs_in("detector postprocess (one copy to the host is expected)", lambda: detector.postprocess(outputs, [(1080, 1920)]))
    syncs_in("pose preprocess + forward + decode", lambda: pose.keypoints_from_heatmaps(
        pose.forward(pose.preprocess(image, boxes)), pose._boxes_to_device(boxes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
