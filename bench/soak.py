"""Soak: many frames through the live pipeline, watching memory, threads and open files.

    python bench/soak.py [--frames 10000] [--policy latest|fifo] [--persons 3] [--out bench/out/soak.json]

The synthetic scene (``SyntheticSource(realtime=False)``, ``--persons`` walking figures) goes
through ``Pipeline`` → ``PoseEngine`` with tracking and One Euro smoothing (detector every
``--det-every`` frames, at most ``--max-persons`` persons) → ``PoseAnnotator`` + ``HudAnnotator``
on the caller's thread, as the CLI's live mode does, with the tiny random-weight models of
``tests/support/models.py`` (no download). ``--policy latest`` (the live policy) drops the frames
inference cannot keep up with; ``fifo`` (files) processes every one.

After every result it samples the resident set size (psutil when installed, else
``/proc/self/statm``), the Python threads (``threading.active_count()``), the OS threads of the
process (``/proc/self/status``) and the open file descriptors (``/proc/self/fd``). Verdicts:

* RSS flat: the least-squares slope of RSS against the processed frame, fitted after the first
  ``--warmup`` processed frames, at most ``RSS_SLOPE_LIMIT`` (4 KiB) per frame. A leak of tens of
  kB per frame shows as tens of kB here; allocator noise on a healthy run is a few hundred bytes.
  (Over 2,000 frames the limit is 8 MiB in all. The mean RSS per tenth of the run is reported too.)
* no thread or descriptor growth: the same counts in the last tenth as in the second, and the
  same after the pipeline has stopped as before it started;
* stats consistent: ``frames_in == frames_processed + frames_dropped`` and every frame of the
  source went in.

Prints a table and writes ``--out`` (JSON). ``tests/runtime/test_soak.py`` runs :func:`soak` on a
few hundred frames.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

OUT = Path(__file__).resolve().parent / "out"
RSS_SLOPE_LIMIT = 4096  # bytes per processed frame

try:
    import psutil
except ImportError:  # not a dependency: /proc does the same on Linux
    psutil = None


def rss_bytes() -> int:
    """Resident set size of this process."""
    if psutil is not None:
        return psutil.Process().memory_info().rss
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def os_threads() -> int:
    """Threads of the process, native ones (torch, FFmpeg, OpenCV) included."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def _sample() -> tuple[int, int, int, int]:
    return rss_bytes(), threading.active_count(), os_threads(), open_fds()


def build_engine(pose_model=None, detector_model=None, *, max_persons: int = 3, det_every: int = 3):
    """The CLI's recipe with tracking and smoothing, around the tiny test models."""
    from support.models import detector_processor, pose_processor, tiny_rtdetr, tiny_vitpose

    import vitpose_live as vl

    pose_model = pose_model if pose_model is not None else tiny_vitpose()
    pose = vl.PoseEstimator(pose_model, processor=pose_processor(), device="cpu")
    detector = vl.PersonDetector(detector_model if detector_model is not None else tiny_rtdetr(),
                              processor=detector_processor(320), device="cpu")
    settings = vl.FrameSettings(det_threshold=0.5, max_persons=max_persons, smooth=True)
    return vl.build_engine(vl.EngineOptions(settings=settings, det_every=det_every), models=(pose, detector))


def rss_slope(rss: list[int], warmup: int) -> tuple[float, int]:
    """(bytes per frame, frames fitted): the least-squares slope of ``rss`` (one sample per
    processed frame) after the first ``warmup`` samples."""
    fitted = rss[warmup:]
    n = len(fitted)
    if n < 2:
        return 0.0, n
    mean_x, mean_y = (n - 1) / 2, statistics.fmean(fitted)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(fitted))
    variance = sum((x - mean_x) ** 2 for x in range(n))
    return covariance / variance, n


def _tenths(values: list) -> tuple[list, list]:
    """The second and the last tenth of ``values`` (at least one value each)."""
    n = len(values)
    tenth = max(1, n // 10)
    return values[tenth : 2 * tenth] or values[:1], values[-tenth:]


def _parts(values: list, count: int) -> list[list]:
    """``values`` cut into ``count`` consecutive parts (fewer when there are fewer values)."""
    bounds = [round(i * len(values) / count) for i in range(count + 1)]
    return [values[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def soak(
    frames: int = 10_000,
    *,
    policy: str = "latest",
    persons: int = 3,
    width: int = 640,
    height: int = 480,
    max_persons: int = 3,
    det_every: int = 3,
    warmup: int = 200,
    pose_model=None,
    detector_model=None,
) -> dict:
    """Run the soak and return its measurements and verdicts (``report["ok"]``, ``report["problems"]``)."""
    from vitpose_live.engine.engine import warm_up
    from vitpose_live.runtime.pipeline import Pipeline, Policy
    from vitpose_live.render import HudAnnotator, PoseAnnotator
    from vitpose_live.sources import SyntheticSource

    engine = build_engine(pose_model, detector_model, max_persons=max_persons, det_every=det_every)
    annotator, hud = PoseAnnotator(kpt_threshold=0.3), HudAnnotator()
    source = SyntheticSource(realtime=False, frames=frames, persons=persons, width=width, height=height)
    warm_up(engine, height, width)
    annotator.annotate(source.render(0), _no_poses(engine))  # drawing's first-call costs, too

    before = _sample()
    samples: list[tuple[int, int, int, int]] = []
    found = 0
    started = time.monotonic()
    pipeline = Pipeline(source, engine, policy=Policy(policy))
    with pipeline:
        for result in pipeline.results():
            picture = annotator.annotate(result.frame.image.copy(), result.poses)
            hud.annotate(picture, [f"fps {pipeline.stats.recent_fps():.1f}", f"persons {len(result.poses)}"])
            pipeline.stats.add_latency((time.monotonic() - result.frame.captured_at) * 1e3)
            found += len(result.poses)
            samples.append(_sample())
    seconds = time.monotonic() - started
    pipeline.join(timeout=2.0)
    after = _settled(before)
    stats = pipeline.stats.summary()
    return _report(frames, policy, persons, (width, height), seconds, found, stats, before, samples, after, warmup)


def _settled(before: tuple[int, int, int, int], seconds: float = 2.0) -> tuple[int, int, int, int]:
    """A sample taken once the counts are back to ``before`` or ``seconds`` have passed: a thread
    that Python has joined is still being torn down by the OS for a moment (with its OpenMP team)."""
    deadline = time.monotonic() + seconds
    while True:
        now = _sample()
        if all(a <= b for a, b in zip(now[1:], before[1:])) or time.monotonic() > deadline:
            return now
        time.sleep(0.02)


def _no_poses(engine):
    from vitpose_live.types import Poses

    return Poses.empty(engine.skeleton)


def _report(frames, policy, persons, size, seconds, found, stats, before, samples, after, warmup) -> dict:
    rss = [s[0] for s in samples] or [before[0]]
    second, last = _tenths(rss)
    second_mb, last_mb = statistics.fmean(second) / 2**20, statistics.fmean(last) / 2**20
    change = last_mb / second_mb - 1.0
    slope, fitted = rss_slope(rss, warmup)
    counts = {}
    for i, name in ((1, "python_threads"), (2, "os_threads"), (3, "open_fds")):
        values = [s[i] for s in samples] or [before[i]]
        early, late = _tenths(values)
        counts[name] = {
            "before": before[i],
            "second_tenth_max": max(early),
            "last_tenth_max": max(late),
            "peak": max(values),
            "after": after[i],
        }
    processed, dropped, frames_in = stats["frames_processed"], stats["frames_dropped"], stats["frames_in"]
    problems = []
    if slope > RSS_SLOPE_LIMIT:
        problems.append(f"RSS grew {slope:.0f} bytes per frame over {fitted} frames (limit {RSS_SLOPE_LIMIT})")
    for name, count in counts.items():
        if count["last_tenth_max"] > count["second_tenth_max"]:
            problems.append(f"{name} grew during the run: {count['second_tenth_max']} -> {count['last_tenth_max']}")
        if count["after"] > count["before"]:
            problems.append(f"{name} left behind: {count['before']} before, {count['after']} after")
    if frames_in != processed + dropped:
        problems.append(f"frames_in {frames_in} != processed {processed} + dropped {dropped}")
    if frames_in != frames:
        problems.append(f"{frames_in} frames went in, the source had {frames}")
    if len(samples) != processed:
        problems.append(f"{len(samples)} results came out, stats say {processed} were processed")
    return {
        "frames": frames,
        "policy": policy,
        "persons_drawn": persons,
        "size": list(size),
        "seconds": round(seconds, 2),
        "frames_in": frames_in,
        "frames_processed": processed,
        "frames_dropped": dropped,
        "persons_per_processed_frame": round(found / max(processed, 1), 2),
        "processed_fps": round(processed / seconds, 2) if seconds > 0 else 0.0,
        "latency_ms": stats["latency_ms"],
        "stage_ms": stats["stage_ms"],
        "rss_mb": {
            "before": round(before[0] / 2**20, 1),
            "second_tenth_mean": round(second_mb, 1),
            "last_tenth_mean": round(last_mb, 1),
            "peak": round(max(rss) / 2**20, 1),
            "after": round(after[0] / 2**20, 1),
            "change": round(change, 4),
            "slope_bytes_per_frame": round(slope, 1),
            "slope_limit_bytes_per_frame": RSS_SLOPE_LIMIT,
            "slope_fitted_frames": fitted,
            "warmup_frames": warmup,
            "by_tenth": [round(statistics.fmean(part) / 2**20, 1) for part in _parts(rss, 10)],
        },
        "rss_source": "psutil" if psutil is not None else "/proc/self/statm",
        **counts,
        "problems": problems,
        "ok": not problems,
    }


def table(report: dict) -> str:
    rss = report["rss_mb"]
    rows = [
        ("frames in / processed / dropped",
         f"{report['frames_in']} / {report['frames_processed']} / {report['frames_dropped']}"),
        ("policy", report["policy"]),
        ("wall time", f"{report['seconds']:.1f} s ({report['processed_fps']:.1f} processed frames/s)"),
        ("persons per processed frame", f"{report['persons_per_processed_frame']:.2f}"),
        ("RSS before / 2nd tenth / last tenth",
         f"{rss['before']:.1f} / {rss['second_tenth_mean']:.1f} / {rss['last_tenth_mean']:.1f} MiB"),
        ("RSS slope after warm-up",
         f"{rss['slope_bytes_per_frame']:+.0f} bytes/frame over {rss['slope_fitted_frames']} frames "
         f"(limit {RSS_SLOPE_LIMIT}); peak {rss['peak']:.1f} MiB"),
        ("RSS by tenth of the run (MiB)", " ".join(f"{v:.0f}" for v in rss["by_tenth"])),
    ]
    for name in ("python_threads", "os_threads", "open_fds"):
        c = report[name]
        rows.append(
            (f"{name.replace('_', ' ')}: before/2nd/last/after",
             f"{c['before']} / {c['second_tenth_max']} / {c['last_tenth_max']} / {c['after']} (peak {c['peak']})")
        )
    rows.append(("latency p50 / p95 / max", "{p50:.0f} / {p95:.0f} / {max:.0f} ms".format(**report["latency_ms"])))
    rows.append(("verdict", "OK" if report["ok"] else "FAIL: " + "; ".join(report["problems"])))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--policy", choices=("latest", "fifo"), default="latest")
    parser.add_argument("--persons", type=int, default=3, help="figures in the synthetic scene")
    parser.add_argument("--max-persons", type=int, default=3)
    parser.add_argument("--det-every", type=int, default=3)
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the synthetic frames")
    parser.add_argument("--warmup", type=int, default=200, help="processed frames left out of the RSS fit")
    parser.add_argument("--out", type=Path, default=OUT / "soak.json")
    args = parser.parse_args(argv)

    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    width, height = (int(v) for v in args.size.lower().split("x"))
    from vitpose_live.system.host_memory import keep_freed_memory

    kept = keep_freed_memory()  # as the programs run (vitpose_live/system/host_memory.py)
    report = soak(
        args.frames,
        policy=args.policy,
        persons=args.persons,
        width=width,
        height=height,
        max_persons=args.max_persons,
        det_every=args.det_every,
        warmup=args.warmup,
    )
    import torch

    report["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "keeps_freed_memory": kept,
    }
    print(table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
