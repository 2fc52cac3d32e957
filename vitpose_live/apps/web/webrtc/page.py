"""The browser's side of the WebRTC webcam: a ``gr.HTML`` component whose script opens the camera,
connects to a :class:`~.manager.WebRTCManager` and shows the annotated track that comes back, and
:func:`webrtc_demo`, a page with nothing else on it (tests and benches launch it).

Signalling goes through Gradio 6's server functions (``gr.HTML(server_functions=[...])``: the
script calls ``server.webrtc_offer({...})``, a POST to ``/gradio_api/component_server``), so the
page needs no custom component build and no second port. The script's live line says the
transport, the frames shown per second (``requestVideoFrameCallback`` on the received video),
the server's milliseconds per frame, frames dropped, the round trip on the data channel and the
persons. When no connection is up within ``connect_timeout_s`` it says so and fires the
component's ``fallback`` event (``component.fallback(fn)`` in Python), for a page to go on
another way. ``element.vlWebrtc`` holds the live state (tests read it).
"""

from __future__ import annotations

import gradio as gr

from .manager import WebRTCManager

CAMERA = {
    "video": {"width": {"ideal": 640, "max": 1280}, "height": {"ideal": 480, "max": 720},
              "frameRate": {"ideal": 30, "max": 30}},
    "audio": False,
}

TEMPLATE = """<div class="vl-webrtc">
  <div class="vl-controls">
    <button class="vl-start" type="button">Start</button>
    <button class="vl-stop" type="button" disabled>Stop</button>
    <button class="vl-release" type="button" title="A click on a person in the video follows them">Follow nobody</button>
MIRROR_TOGGLE  </div>
  <video class="vl-video" autoplay playsinline muted></video>
  <div class="vl-line" aria-live="polite">Press Start to stream your camera over WebRTC.</div>
</div>"""

MIRROR_TOGGLE = """    <label><input class="vl-mirror" type="checkbox" checked> Mirror the display</label>
"""

CSS = """
.vl-controls { display: flex; gap: 12px; align-items: center; margin-bottom: 8px; }
.vl-controls button { padding: 6px 16px; border-radius: 6px; border: 1px solid var(--border-color-primary);
  background: var(--button-secondary-background-fill); color: var(--body-text-color); cursor: pointer; }
.vl-controls button:disabled { opacity: 0.5; cursor: default; }
.vl-video { cursor: crosshair; width: 100%; max-width: 960px; background: #111; border-radius: 6px; aspect-ratio: 4 / 3; }
.vl-line { font-family: var(--font-mono); font-size: 0.9em; margin-top: 6px; min-height: 1.4em; }
"""

# Runs once per page (js_on_load): `element`, `props`, `server`, `trigger` are Gradio's.
JS = r"""
const $ = (selector) => element.querySelector(selector);
const startButton = $(".vl-start"), stopButton = $(".vl-stop"), mirrorBox = $(".vl-mirror");  // (may be absent)
const video = $(".vl-video"), line = $(".vl-line");
const iceServers = props.ice_servers || [];
const connectMs = props.connect_timeout_ms || 5000;
const httpCamera = props.http_camera || "";  // the page's HTTP webcam, started on fallback
const mirrored = () => (mirrorBox ? {mirror: mirrorBox.checked} : {});
const live = element.vlWebrtc = {state: "idle", shown: 0, rtt: null, server: {}, message: ""};
let pc = null, stream = null, channel = null, peerId = null, timers = [], stamps = [], generation = 0;

const say = (text) => { live.message = text; line.textContent = text; };
const send = (message) => {
  if (channel && channel.readyState === "open") channel.send(JSON.stringify(message));
};

function shownFps() {
  if (stamps.length < 2) return 0;
  return (stamps.length - 1) * 1000 / (stamps[stamps.length - 1] - stamps[0]);
}

function render() {
  if (live.state !== "live") return;
  const s = live.server, parts = ["WebRTC", `shown ${shownFps().toFixed(1)} fps`];
  if (video.videoWidth) parts.push(`${video.videoWidth}x${video.videoHeight}`);
  if (s.server_ms != null) parts.push(`server ${s.server_ms} ms/frame`);
  parts.push(`dropped ${s.dropped ?? 0}`);
  if (live.rtt != null) parts.push(`RTT ${live.rtt.toFixed(0)} ms`);
  if (s.persons != null) parts.push(`persons ${s.persons}`);
  const following = live.following !== undefined ? live.following : s.followed;
  parts.push(following != null ? `following ${following}` : "click a person to follow them");
  if (following != null && following === s.followed && s.angles) parts.push(s.angles);
  line.textContent = live.message = parts.join(" · ");
}

function countFrames(mine) {  // frames the page shows, as the compositor presents them
  if (!video.requestVideoFrameCallback) return;
  const tick = (now) => {
    if (mine !== generation) return;
    live.shown += 1;
    stamps.push(now);
    while (stamps.length > 2 && now - stamps[0] > 2000) stamps.shift();
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
}

function gathered(connection, ms) {  // the offer carries every candidate (no trickle)
  return new Promise((resolve) => {
    if (connection.iceGatheringState === "complete") return resolve();
    connection.addEventListener("icegatheringstatechange", () => {
      if (connection.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, ms);
  });
}

function onMessage(event) {
  let data;
  try { data = JSON.parse(event.data); } catch (error) { return; }
  if (data.pong != null) {
    live.rtt = performance.now() - data.pong; live.server = data;
    if (live.following !== undefined && data.followed === live.following) delete live.following;  // caught up
    render();
  }
  if ("following" in data) { live.following = data.following; render(); }
  if (data.closed) { peerId = null; stop(`The stream ended: ${data.closed}.`); }
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(find, ms) {  // find()'s first truthy value within ms, else null
  for (const end = performance.now() + ms; performance.now() < end; await pause(100)) {
    const found = find();
    if (found) return found;
  }
  return null;
}

const httpRoot = () => (httpCamera ? document.querySelector(httpCamera) : null);
const httpRecording = () => httpRoot()?.querySelector('[title="stop recording"]');

async function startHttp(mine) {  // Gradio's webcam (shown by the fallback event): open it, record
  const find = (root, pattern) => [...root.querySelectorAll("button")].find((b) => pattern.test(b.textContent || ""));
  const ready = await until(() => {
    const root = httpRoot();
    if (!root) return null;
    return find(root, /access webcam/i) || root.querySelector("button[aria-label='capture photo']");
  }, 10000);
  if (!ready || mine !== generation) return;
  if (ready.getAttribute("aria-label") !== "capture photo") ready.click();
  const record = await until(() => httpRoot()?.querySelector("button[aria-label='capture photo']"), 15000);
  if (record && mine === generation && !httpRecording()) { record.click(); live.state = "http"; }
}

function stopHttp() {
  if (httpRecording()) httpRoot().querySelector("button[aria-label='capture photo']")?.click();
}

function stop(message = "Stopped.", fallback = false) {
  generation += 1;
  timers.forEach((timer) => clearInterval(timer));
  timers = [];
  if (peerId) { server.webrtc_stop({id: peerId}); peerId = null; }
  if (channel) { try { channel.close(); } catch (error) {} channel = null; }
  if (pc) { pc.close(); pc = null; }
  if (stream) { stream.getTracks().forEach((track) => track.stop()); stream = null; }
  video.srcObject = null;
  startButton.disabled = false;
  stopButton.disabled = true;
  live.state = fallback ? "fallback" : "idle";
  say(message);
  if (fallback) {
    trigger("fallback");
    if (httpCamera) {
      say(message + " Streaming over HTTP instead (one frame per round trip: slower).");
      video.style.display = "none";  // the HTTP webcam below shows the frames
      stopButton.disabled = false;
      startHttp(generation);
    }
  }
}

async function connect(mine) {
  stream = await navigator.mediaDevices.getUserMedia(props.camera);
  if (mine !== generation) { stream.getTracks().forEach((track) => track.stop()); return; }
  pc = new RTCPeerConnection({iceServers});
  const connection = pc;
  channel = pc.createDataChannel("vitpose");
  channel.onmessage = onMessage;
  channel.onopen = () => {
    if (mirrorBox) send({settings: mirrored()});
    timers.push(setInterval(() => send({ping: performance.now()}), 500));
  };
  stream.getVideoTracks().forEach((track) => pc.addTrack(track, stream));
  pc.ontrack = (event) => {
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
    video.play().catch(() => {});
    countFrames(mine);
  };
  pc.onconnectionstatechange = () => {
    if (mine !== generation) return;
    if (connection.connectionState === "connected") { live.state = "live"; say("WebRTC connected."); }
    else if (connection.connectionState === "failed") stop("The WebRTC connection failed.", true);
  };
  timers.push(setTimeout(() => {
    if (mine === generation && live.state !== "live")
      stop(`No WebRTC connection within ${connectMs / 1000} s: no UDP path between this browser and the ` +
           "server (a firewall or a browser policy; a TURN server would relay it).", true);
  }, connectMs));
  timers.push(setInterval(render, 500));
  say("Connecting…");
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc, 2000);
  if (mine !== generation) return;
  const answer = await server.webrtc_offer({type: "offer", sdp: pc.localDescription.sdp,
    key: window.__gradio_session_hash__ || "", settings: mirrored()});
  if (mine !== generation) { if (answer && answer.id) server.webrtc_stop({id: answer.id}); return; }
  if (!answer || answer.error) return stop(answer ? answer.error : "The server did not answer.");
  peerId = answer.id;
  await connection.setRemoteDescription({type: "answer", sdp: answer.sdp});
}

startButton.addEventListener("click", () => {
  if (pc || stream) return;
  stopHttp();
  video.style.display = "";
  const mine = ++generation;
  startButton.disabled = true;
  stopButton.disabled = false;
  Object.assign(live, {state: "starting", shown: 0, rtt: null, server: {}});
  stamps = [];
  say("Starting the camera…");
  connect(mine).catch((error) => { if (mine === generation) stop(`WebRTC: ${error.message || error}`); });
});
stopButton.addEventListener("click", () => { stopHttp(); stop(); });
video.addEventListener("click", (event) => {  // follow the person clicked: the picture's pixel, as shown
  if (!video.videoWidth) return;
  const r = video.getBoundingClientRect();
  const scale = Math.min(r.width / video.videoWidth, r.height / video.videoHeight);  // object-fit: contain
  const x = (event.clientX - r.left - (r.width - video.videoWidth * scale) / 2) / scale;
  const y = (event.clientY - r.top - (r.height - video.videoHeight * scale) / 2) / scale;
  if (x >= 0 && y >= 0 && x < video.videoWidth && y < video.videoHeight) send({pick: [x, y]});
});
$(".vl-release").addEventListener("click", () => send({pick: null}));
if (mirrorBox) mirrorBox.addEventListener("change", () => send({settings: mirrored()}));
window.addEventListener("pagehide", () => { if (pc) stop("The page was closed."); });
"""


def webrtc_html(manager: WebRTCManager, *, elem_id: str = "webrtc", connect_timeout_s: float = 5.0,
                camera: dict = CAMERA, mirror_toggle: bool = True, http_camera: str = "", **options) -> gr.HTML:
    """The WebRTC webcam as a component of the current ``gr.Blocks``: Start/Stop, the mirror
    toggle (``mirror_toggle``: its own, sent on the data channel; a page with a control of its
    own leaves it out), the annotated video and its live line, signalled through ``manager``.
    ``http_camera``: the selector of a streaming ``gr.Image`` webcam on the page, opened and
    started by the script when it falls back. The page gets ``manager.ice_servers`` (TURN
    credentials included: the browser needs them). ``options`` go to ``gr.HTML``."""
    template = TEMPLATE.replace("MIRROR_TOGGLE", MIRROR_TOGGLE if mirror_toggle else "")
    return gr.HTML(html_template=template, css_template=CSS, js_on_load=JS, elem_id=elem_id,
                   server_functions=manager.server_functions(), ice_servers=manager.ice_servers,
                   connect_timeout_ms=int(connect_timeout_s * 1000), camera=camera, http_camera=http_camera,
                   **options)


def webrtc_demo(process=None, *, manager: WebRTCManager | None = None, title: str = "vitpose_live: WebRTC",
                **manager_options) -> gr.Blocks:
    """A page with only the WebRTC webcam, for ``process`` (or an existing ``manager``; then
    ``manager_options`` must be empty). Closing the page closes its stream. Not launched."""
    if (process is None) == (manager is None):
        raise TypeError("webrtc_demo() takes a process or a manager")
    if manager is None:
        manager = WebRTCManager(process, **manager_options)
    elif manager_options:
        raise TypeError("manager options go to the manager")

    def unload(request: gr.Request) -> None:
        manager.close_key(getattr(request, "session_hash", None) or "")

    with gr.Blocks(title=title) as demo:
        gr.Markdown("# WebRTC webcam\nYour camera goes to the server as a WebRTC video track and comes back "
                    "processed.")
        webrtc_html(manager)
        demo.unload(unload)
    return demo
