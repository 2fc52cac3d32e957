"""The WebRTC webcam (vitpose_live.apps.web.webrtc) next to a bare aiortc echo, in one run.

Headless Chromium with a fake 30 frames/s camera opens, in turns, three pages with the same
script (:mod:`vitpose_live.apps.web.webrtc.page`): a bare aiortc echo (the camera's track sent straight
back, on Gradio's own loop: aiortc decodes and encodes it, nothing else), the manager with a
trivial ``process`` (a line drawn on a copy), and the manager with a slow one (``--slow-ms`` of
sleep, as a model on a GPU would take, then the line). Each page's video is counted with
``requestVideoFrameCallback``: frames shown per second. Rounds alternate so that all three see
the same machine load. Then an aiortc client in this process (frames known by a barcode and
their timestamps) measures capture-to-return latency through the manager, trivial and slow:
p50/p95 over the run and the p50 of its first and second halves (a delay that grows would show).
With ``--app``, the web app itself next to Gradio's trivial stream app, in the same browser
(:func:`app_rows`).

    python bench/bench_webrtc.py [--rounds 2] [--seconds 8] [--size 640x480] [--slow-ms 30]
                                 [--app [--real-size] [--max-persons N]]
                                 [--client-seconds S] [--out bench/results/webrtc-cpu.json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]
RESULTS = HERE / "results"


def trivial(image: np.ndarray, peer) -> np.ndarray:
    picture = image.copy()
    cv2.line(picture, (0, 0), (picture.shape[1] - 1, picture.shape[0] - 1), (255, 0, 0), 3)
    return picture


def slow(ms: float):
    def process(image: np.ndarray, peer) -> np.ndarray:
        time.sleep(ms / 1e3)
        return trivial(image, peer)

    return process


class Echo:
    """A bare aiortc echo behind the same page: what WebRTC costs here with nothing added.
    ``hints``: its answer carries the manager's bitrate hints for Chromium (without them the
    camera comes at 480x360 for its first ~20 s), so that it echoes the same picture size."""

    def __init__(self, hints: bool = False) -> None:
        self.ice_servers: list = []
        self.pcs: dict = {}
        self.hints = hints

    def server_functions(self) -> list:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        from vitpose_live.apps.web.webrtc.track import browser_bitrate_hints

        pcs, hints = self.pcs, self.hints

        async def webrtc_offer(payload):
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pcs[key := secrets.token_hex(8)] = pc
            pc.on("track", lambda track: pc.addTrack(track) if track.kind == "video" else None)

            @pc.on("datachannel")
            def on_datachannel(channel):
                @channel.on("message")
                def on_message(message):
                    ping = json.loads(message).get("ping")
                    if ping is not None:
                        channel.send(json.dumps({"pong": ping}))

            await pc.setRemoteDescription(RTCSessionDescription(payload["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            sdp = browser_bitrate_hints(pc.localDescription.sdp) if hints else pc.localDescription.sdp
            return {"type": "answer", "sdp": sdp, "id": key}

        async def webrtc_stop(payload):
            pc = pcs.pop(payload.get("id"), None)
            if pc is not None:
                await pc.close()
            return {"stopped": pc is not None}

        return [webrtc_offer, webrtc_stop]

    def __len__(self) -> int:
        return len(self.pcs)


def measure(chromium, url: str, seconds: float, server, max_persons: int | None = None) -> dict:
    from support.webcam import open_page, set_number
    from support.webrtc_client import shown_fps

    page = open_page(chromium, url, ready="#webrtc .vl-start")
    try:
        if max_persons is not None:  # the web app's control
            set_number(page, "max-persons", max_persons)
        page.click("#webrtc .vl-start")
        page.wait_for_function("() => document.querySelector('#webrtc video').videoWidth > 0", timeout=60_000)
        time.sleep(3.0)  # warm-up: the encoders settle on a bitrate
        row = {"shown_fps": round(shown_fps(page, seconds), 2)}
        live = page.evaluate("() => document.querySelector('.vl-webrtc').parentElement.vlWebrtc")
        row["rtt_ms"] = round(live["rtt"], 1) if live.get("rtt") is not None else None
        row["line"] = page.inner_text("#webrtc .vl-line")
        row["size"] = page.evaluate("() => { const v = document.querySelector('#webrtc video'); "
                                    "return `${v.videoWidth}x${v.videoHeight}`; }")
        peers = server.peers() if hasattr(server, "peers") else []
        if peers:
            row["server"] = peers[0].stats_dict()
            encoder = peers[0].encoder
            if encoder is not None and encoder.codec is not None:
                row["bitrate"] = {"encoder": encoder.codec.bit_rate, "ceiling": encoder.ceiling,
                                  "receiver_estimate": encoder.estimate}
        page.click("#webrtc .vl-stop")
        deadline = time.monotonic() + 10
        while len(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        return row
    finally:
        page.context.close()


async def client_latency(manager, seconds: float, size, settings: dict | None = None) -> dict:
    """Capture-to-return milliseconds of every frame an aiortc client got back (encode, send,
    decode, process, encode, send, decode; no display)."""
    from support.webrtc_client import connect

    client = await connect(manager, key="bench", size=size, settings=settings, quick=True)  # hands frames on as a browser does
    await asyncio.sleep(seconds)
    await client.close()
    latencies = returned_latencies(client.camera.sent, client.received)
    if len(latencies) < 4:
        return {"frames": len(latencies), "returned": len(client.received)}
    half = len(latencies) // 2

    def ms(values, q=50):
        return round(float(np.percentile(values, q)), 1)

    return {"frames": len(latencies), "returned": len(client.received), "fps": round(len(latencies) / seconds, 2),
            "ms_p50": ms(latencies), "ms_p95": ms(latencies, 95), "ms_p50_first_half": ms(latencies[:half]),
            "ms_p50_second_half": ms(latencies[half:])}


def returned_latencies(sent: list, received: list) -> list[float]:
    """Milliseconds from each returned frame's capture to its return (:func:`returned_at`)."""
    return [ms for _, ms in returned_at(sent, received)]


def returned_at(sent: list, received: list) -> list[tuple[float, float]]:
    """(when it came back, milliseconds from its capture) for each returned frame known. A frame
    is known by its barcode (the index mod 1024) where the overlay left it readable; a pose overlay
    covers it in most frames, so every frame is also known by its timestamp: the answer keeps the
    capture's ``pts``, and the two RTP legs add one fixed offset (mod 2**32, give or take a few
    ticks), read off the barcoded frames."""
    step = 90000 // 30  # the client camera's pts per frame (BarcodeTrack at 30 frames/s)
    at = dict(sent)
    offsets = collections.Counter()
    for r in received:
        if r.index is not None:
            indices = [i for i, t in sent if i % 1024 == r.index and t <= r.at]  # the barcode's index mod 1024
            if indices:
                offsets[(r.pts - indices[-1] * step) % 2**32] += 1
    if not offsets:
        return []
    offset = offsets.most_common(1)[0][0]
    latencies = []
    for r in received:
        ticks = (r.pts - offset + 45) % 2**32 - 45  # aiortc's time base conversions round: a few ticks off
        index = round(ticks / step)
        if abs(ticks - index * step) <= 45 and index in at and at[index] <= r.at:
            latencies.append((r.at, (r.at - at[index]) * 1e3))
    return latencies


def off_loop(coroutine):
    """``asyncio.run(coroutine)`` in a thread of its own: Playwright's sync API keeps an event
    loop running in this one, and asyncio.run refuses to start inside a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def http_rate(chromium, url: str, seconds: float) -> dict:
    """Annotated frames per second a page's HTTP webcam (Gradio's streaming ``gr.Image``) shows."""
    from support.webcam import open_page, output_rate, start_camera, stop_camera

    page = open_page(chromium, url)
    try:
        start_camera(page)
        row = output_rate(page, seconds)
        stop_camera(page)
        return row
    finally:
        page.context.close()


def app_rows(chromium, args, size) -> dict:
    """The web app itself, tiny models: over WebRTC (its default), over HTTP only (``webrtc=False``),
    and Gradio's trivial stream app; with ``--real-size`` the CPU profile's models at real size
    with random weights over WebRTC. Each page keeps its default controls."""
    from support.models import save_tiny_models
    from support.webcam import launch, trivial_stream_app

    from vitpose_live.apps.web import PoseWebApp

    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    pose_dir, det_dir = save_tiny_models(folder)
    apps = {"app over WebRTC (tiny models)": PoseWebApp(pose_dir, det_dir, "cpu"),
            "app over HTTP (tiny models)": PoseWebApp(pose_dir, det_dir, "cpu", webrtc=False)}
    persons = {}  # rows whose page sets "at most this many persons" (the others keep the device's default)
    if args.max_persons is not None:
        name = f"app over WebRTC (tiny models, at most {args.max_persons} persons)"
        apps[name], persons[name] = PoseWebApp(pose_dir, det_dir, "cpu"), args.max_persons
    profile = {}
    if args.real_size:
        sys.path.insert(0, str(HERE))
        from bench_live import profile_models

        real_pose, real_det, profile = profile_models("cpu", folder / "real")
        real = PoseWebApp(str(real_pose), str(real_det), "cpu")
        real.models.detector_size, real.models.detector_gap_s = profile["detector_size"], profile["detector_gap_s"]
        apps["app over WebRTC (CPU profile, real size, random weights)"] = real
        if args.max_persons is not None:
            name = f"app over WebRTC (CPU profile, real size, random weights, at most {args.max_persons} persons)"
            capped = PoseWebApp(str(real_pose), str(real_det), "cpu")
            capped.models.detector_size, capped.models.detector_gap_s = real.models.detector_size, real.models.detector_gap_s
            apps[name], persons[name] = capped, args.max_persons
    trivial = trivial_stream_app()
    demos = {name: app.build() for name, app in apps.items()}
    urls = {name: launch(demo) for name, demo in demos.items()}
    trivial_url = launch(trivial)
    rows: dict = {}
    try:
        rows["Gradio trivial stream (HTTP)"] = http_rate(chromium, trivial_url, args.seconds)
        for name, app in apps.items():
            if app.webrtc is None:
                rows[name] = http_rate(chromium, urls[name], args.seconds)
            else:
                rows[name] = measure(chromium, urls[name], args.seconds, app.webrtc.manager, persons.get(name))
                settings = {"max_persons": persons[name]} if name in persons else None
                rows[name]["capture_to_return"] = off_loop(client_latency(app.webrtc.manager, args.seconds, size,
                                                                          settings))
            print(f"  {name}: {json.dumps(rows[name])}", flush=True)
    finally:
        trivial.close()
        for demo in demos.values():
            demo.close()
        for app in apps.values():
            if app.webrtc is not None:
                app.webrtc.close()
    return {"rows": rows, "real_size_profile": profile}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--size", default="640x480", help="the fake camera's picture size")
    parser.add_argument("--slow-ms", type=float, default=30.0)
    parser.add_argument("--client-seconds", type=float, help="the aiortc client's run (default: --seconds)")
    parser.add_argument("--app", action="store_true", help="also the web app: WebRTC, HTTP, Gradio's trivial stream")
    parser.add_argument("--real-size", action="store_true", help="with --app: the CPU profile's real-size models too")
    parser.add_argument("--max-persons", type=int, help="with --app: also the app over WebRTC with this person cap")
    parser.add_argument("--out", type=Path, default=RESULTS / "webrtc-cpu.json")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))

    from support.webcam import browser, have_chromium, launch, write_y4m

    from vitpose_live.apps.web.webrtc import WebRTCManager
    from vitpose_live.apps.web.webrtc.page import webrtc_demo

    if not have_chromium():
        sys.exit("needs /usr/bin/chromium (Debian package 'chromium') and the playwright package")
    clip = write_y4m(Path(tempfile.mkdtemp(prefix="bench-webrtc-")) / "camera.y4m", width=width,
                     height=height, fps=30, frames=60)
    slow_name = f"manager, {args.slow_ms:g} ms process"
    servers = {"aiortc echo": Echo(), "aiortc echo + hints": Echo(hints=True),
               "manager, trivial process": WebRTCManager(trivial, ice_servers=[]),
               slow_name: WebRTCManager(slow(args.slow_ms), ice_servers=[])}
    echoes = [name for name, server in servers.items() if isinstance(server, Echo)]
    demos = {name: webrtc_demo(manager=s) if isinstance(s, WebRTCManager) else _echo_demo(s)
             for name, s in servers.items()}
    urls = {name: launch(demo) for name, demo in demos.items()}
    rounds = []
    try:
        with browser(clip) as chromium:
            version = chromium.version
            for n in range(args.rounds):
                row = {name: measure(chromium, urls[name], args.seconds, servers[name]) for name in servers}
                for echo in echoes:
                    fps = row[echo]["shown_fps"]
                    row[f"ratios to {echo}"] = {name: round(row[name]["shown_fps"] / max(fps, 1e-9), 3)
                                                for name in servers if name not in echoes}
                rounds.append(row)
                rates = [f"{name} {r['shown_fps']:.1f}/s" for name, r in row.items() if "shown_fps" in r]
                print(f"round {n + 1}: " + ", ".join(rates), flush=True)
                for name, r in row.items():
                    if "line" in r:
                        print(f"  {name}: {r['line']} | bitrate {r.get('bitrate')}", flush=True)
            web = app_rows(chromium, args, (width, height)) if args.app else None
        client_seconds = args.client_seconds or args.seconds
        latency = {name: asyncio.run(client_latency(servers[name], client_seconds, (width, height)))
                   for name in servers if name not in echoes}
        print("capture-to-return latency (aiortc client):", json.dumps(latency), flush=True)
    finally:
        for demo in demos.values():
            demo.close()
        for server in servers.values():
            if isinstance(server, WebRTCManager):
                server.close()
    report = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
        "load_average": os.getloadavg(),
        "camera": f"{width}x{height} @30 (Chromium's fake camera)",
        "browser": f"Chromium {version}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "rounds": rounds,
        "client_latency": {"seconds": client_seconds, **latency},
    }
    if web is not None:
        rows = web["rows"]
        echo = rounds[-1]["aiortc echo + hints"]["shown_fps"]
        trivial_fps = rows["Gradio trivial stream (HTTP)"]["fps"]
        for row in rows.values():
            fps = row.get("shown_fps", row.get("fps"))
            row["ratio_to_echo"] = round(fps / max(echo, 1e-9), 3)
            row["ratio_to_trivial_gradio"] = round(fps / max(trivial_fps, 1e-9), 3)
        report["web_app"] = {"echo_shown_fps": echo, **web}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    ratios = [{k: v for k, v in r.items() if k.startswith("ratios")} for r in rounds]
    print(f"{ratios} (load average "
          f"{report['load_average'][0]:.1f}); wrote {args.out}")


def _echo_demo(echo: Echo):
    import gradio as gr

    from vitpose_live.apps.web.webrtc.page import webrtc_html

    with gr.Blocks(title="aiortc echo") as demo:
        webrtc_html(echo)
    return demo


if __name__ == "__main__":
    main()
