"""A long WebRTC session against the web app: does latency stay flat, does anything pile up?

    python bench/soak_webrtc.py [--seconds 600] [--size 640x480] [--real-size] [--max-persons N]
                                [--out bench/results/soak-webrtc-cpu.json]

The web app (:class:`vitpose_live.apps.web.PoseWebApp`, the tiny test models or, with
``--real-size``, the CPU profile's models at real size with random weights) answers an aiortc
client in this process whose camera sends barcoded 30 frames/s frames for ``--seconds``, with the
page's default controls. Every returned frame's capture-to-return latency is known by its
timestamp (:func:`bench_webrtc.returned_at`). Per minute: frames returned per second and
latency p50 / p95, and this process's full garbage collections (how many, the longest pause);
over the run: the server's arrived / processed / dropped counts, and the
process's resident memory, threads and open file descriptors after a 5 s warm-up session (which
starts the manager's loop and the session's engine once), at every minute and after the soak's
session closed. Verdicts: "flat", the last minute's p50 within 1.5x (or 20 ms) of the second
minute's; "nothing left", the same threads after the close as before it, Python's and native
ones (but the client loop's own executor threads, ``asyncio_N``), and at most 2 more descriptors.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests")]
RESULTS = HERE / "results"


def process_counts() -> dict:
    """Resident MiB, OS threads, Python threads and open descriptors of this process."""
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mib": round(int(fields["VmRSS"].split()[0]) / 1024, 1), "os_threads": int(fields["Threads"]),
            "python_threads": threading.active_count(), "fds": len(os.listdir("/proc/self/fd"))}


class CollectionPauses:
    """Every full (generation 2) garbage collection of this process: when, and how long it held
    every thread (the GIL) — a pause that grows with the heap would show as latency."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float]] = []  # (time.monotonic(), ms)
        self._start = None
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._start = time.perf_counter()
        elif self._start is not None:
            self.pauses.append((time.monotonic(), (time.perf_counter() - self._start) * 1e3))
            self._start = None

    def per_minute(self, started: float, seconds: float) -> list[dict]:
        rows = []
        for start in range(0, int(np.ceil(seconds)), 60):
            ms = [ms for at, ms in self.pauses if start <= at - started < start + 60]
            rows.append({"minute": start // 60 + 1, "full_collections": len(ms),
                         "max_ms": round(max(ms), 1) if ms else None})
        return rows


def thread_names() -> list[str]:
    return sorted(thread.name for thread in threading.enumerate())


def minute_rows(client, started: float, seconds: float) -> list[dict]:
    """Per minute of the session: returned frames/s and capture-to-return p50 / p95 ms."""
    from bench_webrtc import returned_at

    returned = returned_at(client.camera.sent, client.received)
    rows = []
    for start in range(0, int(np.ceil(seconds)), 60):
        picked = [ms for at, ms in returned if start <= at - started < start + 60]
        span = min(60.0, seconds - start)
        if len(picked) < 4 or span <= 0:
            continue
        rows.append({"minute": start // 60 + 1, "fps": round(len(picked) / span, 2),
                     "ms_p50": round(float(np.percentile(picked, 50)), 1),
                     "ms_p95": round(float(np.percentile(picked, 95)), 1)})
    return rows


async def soak(manager, seconds: float, size, settings: dict | None) -> dict:
    from support.webrtc_client import connect

    warm = await connect(manager, key="warm-up", size=size, settings=settings, quick=True)
    await asyncio.sleep(5.0)  # the manager's loop, the session's engine and its threads start once
    await warm.close()
    await asyncio.sleep(12.0)
    counts = [dict(process_counts(), at_s=0, names=thread_names())]
    client = await connect(manager, key="soak", size=size, settings=settings, quick=True)
    pauses = CollectionPauses()
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        await asyncio.sleep(min(60.0, seconds - elapsed))
        counts.append(dict(process_counts(), at_s=round(time.monotonic() - started)))
        peers = manager.peers()
        counts[-1]["server"] = peers[0].stats_dict() if peers else None
        if not peers:
            print("  the server ended the session", flush=True)
            break
        print(f"  {counts[-1]['at_s']} s: {len(client.received)} frames back, {counts[-1]}", flush=True)
    peers = manager.peers()
    server = peers[0].stats_dict() if peers else None
    await client.close()
    await asyncio.sleep(12.0)  # the manager's clean-up of a closed peer: within 10 s
    counts.append(dict(process_counts(), at_s="after close", names=thread_names()))
    return {"minutes": minute_rows(client, started, seconds), "counts": counts, "server": server,
            "full_collections": pauses.per_minute(started, seconds),
            "returned": len(client.received), "sent": len(client.camera.sent)}


def verdict(result: dict) -> dict:
    minutes = [m for m in result["minutes"] if m["minute"] > 1] or result["minutes"]
    first, last = minutes[0]["ms_p50"], minutes[-1]["ms_p50"]
    before, after = result["counts"][0], result["counts"][-1]
    def server_threads(counts):  # asyncio_N: this process's client loop's own executor, not the app's
        return sorted(name for name in counts["names"] if not name.startswith("asyncio_"))

    def client_threads(counts):
        return len(counts["names"]) - len(server_threads(counts))

    new_client_threads = client_threads(after) - client_threads(before)
    return {"latency_flat": last <= max(1.5 * first, first + 20.0),
            "nothing_left": server_threads(after) == server_threads(before) and after["fds"] <= before["fds"] + 2
            and after["os_threads"] <= before["os_threads"] + new_client_threads}  # native ones too (codecs')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--real-size", action="store_true", help="the CPU profile's models at real size")
    parser.add_argument("--max-persons", type=int, help="the page's person cap (default: the device's)")
    parser.add_argument("--out", type=Path, default=RESULTS / "soak-webrtc-cpu.json")
    args = parser.parse_args()
    size = tuple(map(int, args.size.split("x")))

    from support.models import save_tiny_models

    from vitpose_live.apps.web import PoseWebApp

    folder = Path(tempfile.mkdtemp(prefix="soak-webrtc-"))
    profile = {}
    limit = int(args.seconds) + 60  # the page's --stream-minutes: longer than the soak
    if args.real_size:
        from bench_live import profile_models

        pose_dir, det_dir, profile = profile_models("cpu", folder / "real")
        app = PoseWebApp(str(pose_dir), str(det_dir), "cpu", stream_time_limit=limit)
        app.models.detector_size, app.models.detector_gap_s = profile["detector_size"], profile["detector_gap_s"]
    else:
        pose_dir, det_dir = save_tiny_models(folder)
        app = PoseWebApp(pose_dir, det_dir, "cpu", stream_time_limit=limit)
    settings = {"max_persons": args.max_persons} if args.max_persons is not None else None
    try:
        result = asyncio.run(soak(app.webrtc.manager, args.seconds, size, settings))
    finally:
        app.webrtc.close()
    result.update(verdict=verdict(result), seconds=args.seconds, camera=args.size, models="real size" if args.real_size
                  else "tiny", real_size_profile=profile, max_persons=args.max_persons,
                  machine=f"{platform.machine()} {os.cpu_count()} cores", load_average=os.getloadavg(),
                  when=time.strftime("%Y-%m-%d %H:%M"))
    for row in result["minutes"]:
        print(f"minute {row['minute']}: {row['fps']} frames/s back, latency p50 {row['ms_p50']} ms, "
              f"p95 {row['ms_p95']}")
    print(f"verdict: {result['verdict']}; counts before/after: {result['counts'][0]} / {result['counts'][-1]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
