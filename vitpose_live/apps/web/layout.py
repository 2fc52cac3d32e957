"""The page: a settings panel, then one function per tab, wired to a :class:`~.app.PoseWebApp`."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ...defaults import DET_THRESHOLD, KPT_THRESHOLD
from .follow import NOBODY
from .payloads import MB
from .webrtc.page import webrtc_html

ASSETS = Path(__file__).resolve().parents[3] / "assets"
EXAMPLE_IMAGES = ("astronaut.jpg", "cameraman.jpg")
CAMERA = {
    "video": {"width": {"ideal": 640, "max": 1280}, "height": {"ideal": 480, "max": 720},
              "frameRate": {"ideal": 15, "max": 30}},
    "audio": False,
}
# Leaving the Webcam tab stops the camera in the page (WebRTC's Stop, or the HTTP webcam's record button) (the same button started it), so no
# frame is sent while another tab's job runs.
STOP_CAMERA_JS = """() => {
    const rtcStop = document.querySelector("#webrtc .vl-stop");
    if (rtcStop && !rtcStop.disabled) rtcStop.click();
    const recording = document.querySelector('#camera [title="stop recording"]');
    if (recording) document.querySelector("#camera button[aria-label='capture photo']")?.click();
}"""


def build_page(app) -> gr.Blocks:
    with gr.Blocks(title="vitpose_live: pose estimation", delete_cache=app.delete_cache) as demo:
        gr.Markdown(
            "# vitpose_live\nMulti-person pose estimation with "
            "[ViTPose](https://huggingface.co/docs/transformers/model_doc/vitpose): a person detector "
            "(RT-DETR) finds people, ViTPose finds their 17 COCO keypoints. Models load on first use."
        )
        gr.Markdown(app.describe(), elem_id="runs-on")
        controls = settings_panel(app)
        with gr.Tabs():
            webcam = webcam_tab(app, controls)
            video = video_tab(app, controls)
            image = image_tab(app, controls)
        webcam.select(app.enter_webcam, None, None, queue=False, show_progress="hidden")
        for other in (video, image):
            other.select(app.leave_webcam, None, None, js=STOP_CAMERA_JS, queue=False, show_progress="hidden")
        demo.unload(app.unload)
    demo.queue(max_size=64)  # beyond that, callers are told the app is busy instead of piling up
    return demo


def settings_panel(app) -> dict[str, gr.components.Component]:
    """The controls every tab reads, by :class:`~.settings.Settings` field name."""
    with gr.Accordion("Settings", open=True):
        with gr.Row():
            model = gr.Dropdown(app.choices, value=app.default_model, label="Pose model", elem_id="model")
            det_threshold = gr.Slider(0.05, 0.95, value=DET_THRESHOLD, step=0.05, label="Person detection threshold",
                                      elem_id="det-threshold")
            max_persons = gr.Slider(1, 100, value=app.defaults.max_persons, step=1, label="At most this many persons", elem_id="max-persons")
            kpt_threshold = gr.Slider(0.0, 0.95, value=KPT_THRESHOLD, step=0.05, label="Keypoint threshold",
                                      elem_id="kpt-threshold")
        with gr.Row():
            det_every = gr.Slider(1, 10, value=app.defaults.det_every, step=1, elem_id="det-every",
                                  label="Run the detector every N frames (webcam, video)")
            smooth = gr.Checkbox(value=True, label="Smooth keypoints (webcam, video)", elem_id="smooth")
            smooth_strength = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Smoothing strength",
                                        elem_id="smooth-strength")
            show_boxes = gr.Checkbox(value=False, label="Show boxes", elem_id="show-boxes")
            show_ids = gr.Checkbox(value=True, label="Show ids", elem_id="show-ids")
    return {"model": model, "det_threshold": det_threshold, "max_persons": max_persons,
            "kpt_threshold": kpt_threshold, "det_every": det_every, "smooth": smooth,
            "smooth_strength": smooth_strength, "show_boxes": show_boxes, "show_ids": show_ids}


def webcam_tab(app, controls: dict) -> gr.Tab:
    """The camera streams over WebRTC (Start / Stop); without a WebRTC connection within 5 s,
    over HTTP by itself (Gradio's streaming webcam). Every control acts on the next frame."""
    with gr.Tab("Webcam", id="webcam") as tab:
        how = ("Press **Start**: your camera streams to the server over WebRTC and comes back annotated. When no "
               "WebRTC connection comes up within 5 s (a firewall, no TURN server), the tab streams over HTTP by "
               "itself, slower." if app.webrtc else "Start the camera; frames go to the server and come back annotated.")
        gr.Markdown(f"{how} Controls act on the next frame. A stream stops after {app.stream_time_limit // 60} min, "
                    "or when you leave this tab: start it again to go on.")
        rtc = webrtc_html(app.webrtc.manager, mirror_toggle=False, http_camera="#camera") if app.webrtc else None
        with gr.Column(visible=rtc is None, elem_id="http-webcam") as http:  # shown by the fallback event
            with gr.Row():
                camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera (HTTP stream)",
                                  elem_id="camera", webcam_options=gr.WebcamOptions(mirror=False, constraints=CAMERA))
                camera_out = gr.Image(label="Poses", format="jpeg", interactive=False, elem_id="camera-out")
            stats = gr.Textbox(label="Live (HTTP)", interactive=False, lines=2, elem_id="live-stats")
            with gr.Row():  # a click on the poses picture follows that person
                following = gr.Markdown(NOBODY, elem_id="live-following")
                release = gr.Button("Follow nobody", size="sm", elem_id="live-release")
        with gr.Row():
            mirror = gr.Checkbox(value=True, label="Mirror the display", elem_id="mirror")
            framed = gr.Checkbox(value=False, label="Frame the followed person (click one to follow them)",
                                 elem_id="framed")
        frame_info = gr.JSON(label="Frame", visible=False)
        frame_button = gr.Button("One frame", visible=False)
        session = gr.State(None, time_to_live=app.session_ttl, delete_callback=app.sessions.forget)
        live = {**controls, "mirror": mirror, "framed": framed}
        if rtc is not None:  # on load and on every change: what the WebRTC stream uses from its next frame
            gr.on(None, app.remember_controls, None, None, inputs_kwargs=live, queue=False, show_progress="hidden",
                  api_visibility="private")
            rtc.fallback(app.fall_back, None, http, queue=False, show_progress="hidden", api_visibility="private")
        camera.stream(app.stream, [camera, session], [camera_out, stats, session], inputs_kwargs=live,
                      stream_every=app.stream_every, time_limit=app.stream_time_limit,
                      concurrency_limit=app.live_concurrency, concurrency_id="live", show_progress="hidden",
                      api_visibility="undocumented",
                      preprocess=False,  # image_from_payload explains what is wrong with a bad image
                      postprocess=False)  # the picture comes back as an inline JPEG (frames.inline_jpeg)
        camera_out.select(app.pick_live, [session], [following], queue=False, show_progress="hidden",
                          api_visibility="private")
        release.click(app.release_live, [session], [following], queue=False, show_progress="hidden",
                      api_visibility="private")
        frame_button.click(app.frame, [camera, session], [camera_out, stats, frame_info, session],
                           inputs_kwargs=live, api_name="frame", preprocess=False,
                           concurrency_limit=app.live_concurrency, concurrency_id="live", show_progress="hidden")
    return tab


def video_tab(app, controls: dict) -> gr.Tab:
    limits = app.limits
    with gr.Tab("Video", id="video") as tab:
        # Not bold: Gradio's bold font lacks "A" and "B" ("200 M B").
        gr.Markdown(f"Videos up to {limits.video_seconds:.0f} s and {limits.video_bytes // MB} MB "
                    "(MP4, MOV, WebM, MKV, AVI…). You get an H.264 MP4 with the original audio, and every "
                    "keypoint as JSON lines (a header, then one line per frame) and as CSV.")
        with gr.Row():
            video_in = gr.Video(sources=["upload"], label="Video", elem_id="video-in")
            video_out = gr.Video(label="Annotated", interactive=False, elem_id="video-out")
        with gr.Row():
            jsonl_out = gr.File(label="Keypoints (JSON lines)")
            csv_out = gr.File(label="Keypoints (CSV)")
        plot_out = gr.Image(label="Joint angles over time (the person largest when first seen)", format="png",
                            interactive=False, elem_id="video-plot")
        summary = gr.Textbox(label="Result", interactive=False)
        button = gr.Button("Annotate the video", variant="primary", elem_id="video-run")
        button.click(app.video, [video_in], [video_out, jsonl_out, csv_out, plot_out, summary], inputs_kwargs=controls,
                     api_name="video", concurrency_limit=1, concurrency_id="video")
    return tab


def image_tab(app, controls: dict) -> gr.Tab:
    used = ("model", "det_threshold", "max_persons", "kpt_threshold", "show_boxes", "show_ids")
    with gr.Tab("Image", id="image") as tab:
        gr.Markdown(f"Images up to {app.limits.image_bytes // MB} MB (JPEG, PNG, WebP, BMP, TIFF).")
        with gr.Row():
            image_in = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"], label="Image",
                                elem_id="image-in")
            image_out = gr.Image(label="Poses", format="jpeg", interactive=False, elem_id="image-out")
        following = gr.Markdown("Click a person in the result to follow them.", elem_id="image-following")
        pick = gr.State(None)  # the last result, for a click on it
        image_json = gr.JSON(label="Keypoints", elem_id="image-json")
        button = gr.Button("Estimate poses", variant="primary", elem_id="image-run")
        examples = [[str(ASSETS / name)] for name in EXAMPLE_IMAGES if (ASSETS / name).is_file()]
        if examples:
            gr.Examples(examples, inputs=[image_in], label="Examples (public domain / CC0)")
        button.click(app.image, [image_in], [image_out, image_json, pick, following],
                     inputs_kwargs={k: controls[k] for k in used}, api_name="image", preprocess=False,
                     concurrency_limit=2, concurrency_id="image")
        image_out.select(app.pick_image, [pick], [image_out, following], concurrency_limit=2, concurrency_id="image",
                         show_progress="hidden", api_visibility="private")
    return tab
