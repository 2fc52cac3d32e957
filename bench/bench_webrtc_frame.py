"""Where a WebRTC webcam frame's server time goes, without a browser: the web app's worker step
(:class:`~vitpose_live.apps.web.webrtc.track.FrameWorker`: the camera frame to RGB, the page
session's ``process`` (engine, then drawing on the mirrored picture), back to YUV) on camera
frames that went through VP8 as Chromium's do, then aiortc's VP8 encoder as the sender runs it,
at the page's defaults (the CPU profile: at most 6 persons, the detector on its own thread at
most every 5th frame and resting 1 s while persons are tracked), tiny test models.

Frames are fed back to back (the worker is never idle, as at 6 persons in the browser), so the
figures are the worker's capacity; the live detector thread runs meanwhile on the same cores.
The pose model's three stages are timed by wrapping its methods; the rest comes from the
session's own split and the engine's ``StageTimes``.

``--repo`` runs another checkout's ``vitpose_live`` (a baseline) with this script; ``--ab``
alternates this checkout and ``--repo`` in fresh processes, ``--runs`` times each, so that both
see the same machine load:

    python bench/bench_webrtc_frame.py [--frames 300] [--threads N] [--repo PATH] [--out FILE]
    python bench/bench_webrtc_frame.py --ab --repo /tmp/base [--runs 3] [--out bench/results/X.json]
"""

from __future__ import annotations

import argparse
import fractions
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def camera_frames(count: int = 60, width: int = 640, height: int = 480) -> list:
    """The bench's fake camera (the synthetic scene of ``write_y4m``), VP8 encoded and decoded by
    aiortc's codecs: yuv420p frames as the receiver hands them on."""
    import av
    from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, VpxPayloadDescriptor
    from aiortc.jitterbuffer import JitterFrame

    from vitpose_live.sources.synthetic import SyntheticSource

    source = SyntheticSource(width=width, height=height, fps=30, frames=count, persons=2, realtime=False)
    encoder, decoder, frames = Vp8Encoder(), Vp8Decoder(), []
    for index, frame in enumerate(source):
        picture = av.VideoFrame.from_ndarray(frame.image, format="rgb24").reformat(format="yuv420p")
        picture.pts, picture.time_base = index * 3000, fractions.Fraction(1, 90000)
        payloads, timestamp = encoder.encode(picture)
        data = b"".join(VpxPayloadDescriptor.parse(p)[1] for p in payloads)
        frames += decoder.decode(JitterFrame(data=data, timestamp=timestamp))
    return frames


def _timed(owner, name: str, into: dict) -> None:
    """Wrap ``owner.name`` (a bound method) so that each call adds its milliseconds to ``into[name]``."""
    method = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            into[name] = into.get(name, 0.0) + (time.perf_counter() - start) * 1e3

    setattr(owner, name, wrapper)


def one_run(frames_n: int, threads: int | None) -> dict:
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE.parent / "tests"))
    from support.models import save_tiny_models

    from vitpose_live.apps.web import PoseWebApp
    from vitpose_live.apps.web.webrtc.track import FittedVp8Encoder, FrameStats, FrameWorker, Peer

    if threads:
        torch.set_num_threads(threads)
    frames = camera_frames()
    pose_dir, det_dir = save_tiny_models(Path(tempfile.mkdtemp(prefix="bench-webrtc-frame-")))
    app = PoseWebApp(pose_dir, det_dir, "cpu")
    peer, stats = Peer("bench", {}), FrameStats(window=frames_n)
    worker = FrameWorker(app.webrtc.process, peer, lambda frame: None, lambda message: None, stats)
    encoder = FittedVp8Encoder()
    worker_ms, encode_ms = [], []
    for index in range(20):  # warm-up: models loaded, the detector thread started
        encoder.encode(worker._one(frames[index % len(frames)]))
    session = peer.state["session"]
    pose = session.engine.pose
    parts: dict = {}
    for name in ("preprocess", "forward", "keypoints_from_heatmaps"):
        _timed(pose, name, parts)
    for name in ("boxes", "poses"):  # the tracking stage: ids and boxes, then smoothing
        _timed(session.engine.tracking, name, parts)
    rows, persons, pose_parts = [], [], []
    passes = session.engine.detector_passes
    load = [os.getloadavg()[0]]
    started = time.perf_counter()
    for index in range(frames_n):
        parts.clear()
        start = time.perf_counter()
        out = worker._one(frames[index % len(frames)])
        middle = time.perf_counter()
        encoder.encode(out)
        end = time.perf_counter()
        worker_ms.append((middle - start) * 1e3)
        encode_ms.append((end - middle) * 1e3)
        rows.append(dict(session.times._rows[-1]))
        persons.append(stats.info.get("persons", 0))
        pose_parts.append(dict(parts))
    elapsed = time.perf_counter() - started
    load.append(os.getloadavg()[0])
    passes = session.engine.detector_passes - passes
    session.close()

    def median(values):
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 2) if values else None

    engine = [r["engine"] for r in rows]
    draw = [r["draw"] for r in rows]
    process = list(stats._ms)
    split = {
        "worker_ms": median(worker_ms),  # the worker's whole step: to RGB, process, to YUV
        "process_ms": median(process),
        "engine_ms": median(engine),
        "pose_crops_ms": median([p.get("preprocess") for p in pose_parts]),
        "pose_forward_ms": median([p.get("forward") for p in pose_parts]),
        "pose_keypoints_ms": median([p.get("keypoints_from_heatmaps") for p in pose_parts]),
        "track_boxes_ms": median([p.get("boxes") for p in pose_parts]),
        "track_smooth_ms": median([p.get("poses") for p in pose_parts]),
        "draw_ms": median(draw),  # the mirrored copy and the overlay
        "conversions_ms": median([w - p for w, p in zip(worker_ms, process)]),  # to RGB and back to YUV
        "encode_ms": median(encode_ms),  # aiortc's VP8 encoder, on the sender's executor thread
    }
    return {
        "frames": frames_n,
        "persons_median": statistics.median(persons),
        "detector_passes": passes,
        "detector_passes_per_s": round(passes / elapsed, 2),
        "frames_per_s_worker_and_encode": round(frames_n / elapsed, 2),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": load,
        "median_ms": split,
        "mean_worker_ms": round(float(np.mean(worker_ms)), 2),
    }


def ab(args) -> dict:
    """This checkout and ``--repo`` in turns, in fresh processes."""
    here, base = str(HERE.parent), str(Path(args.repo).resolve())
    runs = []
    for run in range(args.runs):
        for name, repo in (("base", base), ("change", here)) if run % 2 == 0 else (("change", here), ("base", base)):
            command = [sys.executable, __file__, "--frames", str(args.frames), "--repo", repo]
            if args.threads:
                command += ["--threads", str(args.threads)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            runs.append({"which": name, **row})
            print(f"{name}: {json.dumps(row['median_ms'])} load {row['load_average_1min']}", flush=True)
    return {"runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--repo", help="the checkout whose vitpose_live runs (default: this one)")
    parser.add_argument("--ab", action="store_true", help="alternate this checkout and --repo")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.ab:
        if not args.repo:
            sys.exit("--ab needs --repo (the baseline checkout)")
        report = {"machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
                  "when": time.strftime("%Y-%m-%d %H:%M:%S"), "baseline": str(args.repo), **ab(args)}
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1) + "\n")
            print(f"wrote {args.out}")
        return
    sys.path.insert(0, str(Path(args.repo).resolve()) if args.repo else str(HERE.parent))
    import logging

    logging.disable(logging.WARNING)
    print(json.dumps(one_run(args.frames, args.threads)))


if __name__ == "__main__":
    main()
