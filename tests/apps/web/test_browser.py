"""The web app in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright,
with a fake camera playing a clip of the synthetic stick figures. The webcam tab keeps pace with
a trivial Gradio stream app measured in the same test and draws the poses; controls act on the
next frame with tracks kept; two sessions keep their own; leaving the tab stops the stream; an
uploaded image comes back annotated. Screenshots go to test-artifacts/."""

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import webcam
from support.needs import need
from support.webcam import open_page, output_picture, output_rate, set_number, start_camera, stop_camera

from vitpose_live.apps.web.settings import PAGE_VIEW_SIZE
from vitpose_live.sources import SyntheticSource

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts"
CLIP = {"width": 320, "height": 240, "fps": 15, "frames": 45}
# The goal is 0.85 of the trivial app's rate (bench/RESULTS.md has what was measured);
# on this shared 2-core machine the test asks for less, and still fails when the pose pipeline
# adds a frame's worth of work (the browser then skips every other beat: 0.5).
RATE_BOUND = 0.6

need(webcam.have_chromium(), f"no {webcam.CHROMIUM} (Debian package 'chromium')", module=True)
try:
    import playwright  # noqa: F401
except ImportError:
    need(False, "the 'playwright' Python package is not installed", module=True)


@pytest.fixture(scope="module")
def served(pose_dir, detector_dir):
    from vitpose_live.apps.web import PoseWebApp

    app = PoseWebApp(pose_dir, detector_dir, "cpu", webrtc=False)  # the HTTP stream (WebRTC: test_webrtc_app.py)
    demo = app.build()
    url = webcam.launch(demo)
    yield app, url
    demo.close()


@pytest.fixture(scope="module")
def clip_frames(tmp_path_factory):
    """The fake camera's clip (.y4m) and its frames (RGB)."""
    path = webcam.write_y4m(tmp_path_factory.mktemp("camera") / "camera.y4m", **CLIP)
    source = SyntheticSource(width=CLIP["width"], height=CLIP["height"], fps=CLIP["fps"], frames=CLIP["frames"],
                             persons=2, realtime=False)
    return path, [frame.image for frame in source]


@pytest.fixture(scope="module")
def chromium(clip_frames):
    with webcam.browser(clip_frames[0]) as browser:
        yield browser


@pytest.fixture
def page(served, chromium):
    page = open_page(chromium, served[1])
    set_number(page, "det-every", 1)
    set_number(page, "max-persons", 3)  # the tiny random detector finds ~50 boxes in any picture
    yield page
    stop_camera(page)
    page.context.close()


def _screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def _closest(picture: np.ndarray, frames: list[np.ndarray]) -> tuple[float, float, np.ndarray]:
    """How far ``picture`` is from the nearest clip frame, as shown and mirrored: (distance as
    is, distance mirrored, the nearest frame as the picture shows it)."""
    picture = picture.astype(np.int16)
    straight = min(frames, key=lambda f: np.abs(picture - f).mean())
    mirrored = min(frames, key=lambda f: np.abs(picture - f[:, ::-1]).mean())
    d_straight, d_mirrored = np.abs(picture - straight).mean(), np.abs(picture - mirrored[:, ::-1]).mean()
    return d_straight, d_mirrored, (straight if d_straight < d_mirrored else mirrored[:, ::-1])


def _wait(condition, timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _session(app, **match):
    """The server session whose last frame used settings with these values."""
    for session in app.sessions.sessions():
        if session.settings is not None and all(getattr(session.settings, k) == v for k, v in match.items()):
            return session
    return None


def test_the_webcam_tab_keeps_pace_with_gradio_and_draws_the_poses(served, chromium, page, clip_frames):
    trivial = webcam.trivial_stream_app()
    trivial_url = webcam.launch(trivial)
    try:
        plain = open_page(chromium, trivial_url)
        start_camera(plain)
        baseline = output_rate(plain, 8.0)
        stop_camera(plain)
        plain.context.close()
    finally:
        trivial.close()
    set_number(page, "kpt-threshold", 0)
    start_camera(page)
    ours = output_rate(page, 8.0)
    ratio = ours["fps"] / max(baseline["fps"], 1e-9)
    print(f"webcam tab {ours['fps']:.2f}/s, trivial app {baseline['fps']:.2f}/s: {ratio:.2f}")
    assert ratio >= RATE_BOUND, (ours, baseline)

    picture = output_picture(page)
    assert picture.shape == clip_frames[1][0].shape
    d_straight, d_mirrored, nearest = _closest(picture, clip_frames[1])
    assert d_mirrored < d_straight  # "Mirror the display" is on by default
    drawn = (np.abs(picture.astype(int) - nearest).max(axis=2) > 80).sum()
    assert drawn > 150, f"only {drawn} pixels differ from the camera's frame: no skeleton drawn"
    stats = page.input_value("#live-stats textarea")
    assert "fps" in stats and "engine" in stats and "encode" in stats, stats
    shot = _screenshot(page, "gradio.png")
    cv2.imwrite(str(ARTIFACTS / "webcam-frame.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    assert shot.stat().st_size > 10_000
    assert not page.errors, page.errors


def test_a_control_moved_during_a_stream_acts_on_the_next_frames_and_keeps_the_tracks(served, page, clip_frames):
    app, _ = served
    set_number(page, "det-every", 10)  # tracks carried between detections (random boxes churn)
    start_camera(page)
    _wait(lambda: _session(app, max_persons=3) is not None and _session(app, max_persons=3).frames >= 5,
          what="five frames")
    session = _session(app, max_persons=3)
    engine, tracker = session.engine, session.engine.tracking.tracker
    d_straight, d_mirrored, _ = _closest(output_picture(page), clip_frames[1])
    assert d_mirrored < d_straight  # "Mirror the display" is on by default

    set_number(page, "kpt-threshold", 0.9)
    page.click("#mirror input[type=checkbox]")  # the display is no longer mirrored
    _wait(lambda: session.settings.kpt_threshold == 0.9 and not session.settings.mirror, what="the new settings")
    frames = session.frames
    _wait(lambda: session.frames >= frames + 3, what="three more frames")
    d_straight, d_mirrored, _ = _closest(output_picture(page), clip_frames[1])
    assert d_straight < d_mirrored, "the frames after the click are still mirrored"
    assert session.engine is engine and session.engines_built == 1, "a moved control rebuilt the engine"
    assert session.engine.tracking.tracker is tracker
    # The frames on either side of the slider's move: the same persons keep their ids.
    history = list(session.history)
    moved = next(n for n, (settings, _) in enumerate(history) if settings.kpt_threshold == 0.9)
    before, after = history[moved - 1][1], history[moved][1]
    assert before and set(before) & set(after), (before, after)


def test_two_sessions_stream_at_once_with_their_own_tracks_and_settings(served, chromium, page):
    app, url = served
    other = open_page(chromium, url)
    try:
        set_number(other, "det-every", 1)
        set_number(other, "max-persons", 1)
        start_camera(page)
        start_camera(other)
        _wait(lambda: all(_session(app, max_persons=n) is not None and _session(app, max_persons=n).frames >= 5
                          for n in (1, 3)), timeout=60, what="both sessions streaming")
        one, three = _session(app, max_persons=1), _session(app, max_persons=3)
        assert one is not three
        assert one.engine.tracking.tracker is not three.engine.tracking.tracker
        _wait(lambda: len(one.track_ids) == 1 and len(three.track_ids) == 3, what="each session's own persons")
        assert not other.errors, other.errors
    finally:
        stop_camera(other)
        other.context.close()


def test_leaving_the_webcam_tab_stops_the_stream(served, page):
    app, _ = served
    start_camera(page)
    _wait(lambda: _session(app, max_persons=3) is not None and _session(app, max_persons=3).frames >= 3,
          what="three frames")
    session = _session(app, max_persons=3)
    page.get_by_role("tab", name="Video").click()
    _wait(lambda: not webcam.recording(page), timeout=5, what="the camera to stop")
    time.sleep(1.0)  # a frame on its way may still land
    frames = session.frames
    time.sleep(2.0)
    assert session.frames == frames, "frames were still processed after the tab was left"
    assert session.engine is None or not session.engine.detector_running  # its detector thread stopped

    page.get_by_role("tab", name="Webcam").click()
    start_camera(page)
    _wait(lambda: session.frames > frames or _session(app, max_persons=3) is not session, timeout=30,
          what="the stream to start again")


def test_an_uploaded_image_comes_back_annotated_with_keypoints(page, tmp_path):
    picture = tmp_path / "figures.png"
    source = SyntheticSource(width=320, height=240, persons=2, realtime=False)
    cv2.imwrite(str(picture), cv2.cvtColor(source.render(3), cv2.COLOR_RGB2BGR))
    page.get_by_role("tab", name="Image").click()
    page.wait_for_selector("#image-in", state="visible")
    page.set_input_files("#image-in input[type=file]", str(picture))
    page.wait_for_selector("#image-in img", timeout=30_000)
    page.click("#image-run")
    page.wait_for_selector("#image-out img", timeout=60_000)
    assert page.get_attribute("#image-out img", "src")
    page.wait_for_function(
        "() => document.querySelector('#image-json')?.innerText.includes('keypoint_names')", timeout=30_000
    )
    assert "figures.png" in page.inner_text("#image-json")
    _screenshot(page, "gradio-image.png")
    assert not page.errors, page.errors


def _click_on_picture(page, selector: str, x: float, y: float) -> None:
    """A mouse click on the picture's pixel (x, y), placed as Gradio shows it (scaled to fit, at most 1:1,
    centred)."""
    page.locator(selector).scroll_into_view_if_needed()
    box = page.evaluate("""(selector) => {
        const img = document.querySelector(selector);
        const r = img.getBoundingClientRect();
        return [r.left, r.top, r.width, r.height, img.naturalWidth, img.naturalHeight];
    }""", selector)
    left, top, width, height, natural_w, natural_h = box
    scale = min(width / natural_w, height / natural_h, 1)
    page.mouse.click(left + (width - natural_w * scale) / 2 + (x + 0.5) * scale,
                     top + (height - natural_h * scale) / 2 + (y + 0.5) * scale)


def _two_people_apart(pick) -> list[tuple[float, float, int]]:
    """Two points on the picture where a click follows two different persons: (x, y, their id)."""
    found = {}
    threshold = pick.settings.kpt_threshold
    for keypoints, scores in zip(pick.poses.keypoints, pick.poses.scores):
        for (x, y), score in zip(keypoints, scores):
            if score > threshold:
                person = pick.pick(round(x), round(y))[1]
                found.setdefault(person, (round(x), round(y), person))
    assert len(found) >= 2, "the tiny detector found fewer than two persons to tell apart"
    return list(found.values())[:2]


def test_a_click_on_the_image_result_follows_that_person_and_the_page_says_who(served, page, tmp_path):
    app, _ = served
    picture = tmp_path / "figures.png"
    cv2.imwrite(str(picture), cv2.cvtColor(SyntheticSource(width=320, height=240, persons=2, realtime=False).render(3),
                                           cv2.COLOR_RGB2BGR))
    _, _, pick, _ = app.image(str(picture), model=app.default_model, max_persons=3)  # what the page gets
    page.get_by_role("tab", name="Image").click()
    page.set_input_files("#image-in input[type=file]", str(picture))
    page.wait_for_selector("#image-in img", timeout=30_000)
    page.click("#image-run")
    page.wait_for_selector("#image-out img", timeout=60_000)
    page.wait_for_function("() => document.querySelector('#image-following')?.innerText.includes('nobody')",
                           timeout=30_000)
    for x, y, person in _two_people_apart(pick):
        before = page.get_attribute("#image-out img", "src")
        _click_on_picture(page, "#image-out img", x, y)
        page.wait_for_function(f"() => document.querySelector('#image-following').innerText.includes("
                               f"'Following person {person}.')", timeout=30_000)
        page.wait_for_function(f"() => document.querySelector('#image-out img').getAttribute('src') !== {before!r}",
                               timeout=30_000)  # drawn again: that person in full, the others dimmed
    _screenshot(page, "gradio-image-followed.png")
    assert not page.errors, page.errors


def test_a_click_on_the_live_video_follows_that_person_for_the_session(served, page):
    app, _ = served
    start_camera(page)
    page.wait_for_selector("#camera-out img", timeout=90_000)
    page.wait_for_function("() => document.querySelector('#live-stats textarea')?.value.includes('person(s)')",
                           timeout=60_000)
    session = next(s for s in app.sessions.sessions() if s.frames)
    _, boxes, _, _ = session.follower._last  # the last frame's persons, in the camera's pixels
    width = session._shown[0]
    x, y = (boxes[0, 0] + boxes[0, 2]) / 2, (boxes[0, 1] + boxes[0, 3]) / 2
    _click_on_picture(page, "#camera-out img", (width - 1) - x, y)  # the display is mirrored
    page.wait_for_function("() => /Following person \\d+/.test(document.querySelector('#live-following').innerText)",
                           timeout=30_000)
    named = int(page.inner_text("#live-following").split("person ")[1].rstrip(". (not in view)"))
    assert session.follower.person == named
    page.wait_for_function(f"() => document.querySelector('#live-stats textarea').value.includes('following {named} (elbow L')",
                           timeout=30_000)  # the next frames: the live line says so too, with their angles now
    page.click("#framed input[type=checkbox]")  # the followed person framed, in place of the full frame
    page.wait_for_function(f"() => document.querySelector('#camera-out img')?.naturalHeight === {PAGE_VIEW_SIZE[1]}",
                           timeout=30_000)
    page.click("#framed input[type=checkbox]")
    page.wait_for_function(f"() => document.querySelector('#camera-out img')?.naturalWidth === {width}", timeout=30_000)
    page.click("#live-release")
    page.wait_for_function("() => document.querySelector('#live-following').innerText.includes('nobody')",
                           timeout=30_000)
    assert session.follower.person is None
    assert not page.errors, page.errors
