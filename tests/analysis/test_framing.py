"""The virtual camera on a scripted walk: exact crop sizes, no distortion, a smooth path with no
lag for files and little live, in bounds, held then eased when the person is missing."""

from __future__ import annotations

import numpy as np
import pytest

from vitpose_live.analysis.framing import (
    CropWindow,
    FramingError,
    FramingSettings,
    VirtualCamera,
    crop,
    fit_window,
    frame_path,
    full_view,
    parse_size,
    target_window,
    zero_lag,
)

FPS = 30.0
IMAGE = (1280, 720)
SETTINGS = FramingSettings(size=(360, 640))


def walk(frames: int = 240, jitter: float = 3.0, seed: int = 0):
    """A person 120x360 px walking right at 200 px/s for 4 s, then back: true and jittery boxes."""
    t = np.arange(frames) / FPS
    cx = np.where(t < 4, 200 + 200 * t, 1800 - 200 * t)
    truth = np.stack([cx - 60, np.full_like(cx, 200), cx + 60, np.full_like(cx, 560)], axis=1)
    noisy = truth + np.random.default_rng(seed).normal(0, jitter, truth.shape)
    return t, truth, noisy


def xs(windows) -> np.ndarray:
    return np.array([w.x for w in windows])


def roughness(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x, 2)).mean())


def best_shift(path: np.ndarray, truth: np.ndarray, reach: int = 10) -> int:
    """The delay in frames (positive: the path is late) that best lines ``path`` up with ``truth``."""
    inner = slice(reach + 15, len(truth) - reach - 15)
    errors = {s: np.mean((path[inner] - np.roll(truth, s)[inner]) ** 2) for s in range(-reach, reach + 1)}
    return min(errors, key=errors.get)


def in_bounds(window: CropWindow, image=IMAGE) -> bool:
    x1, y1, x2, y2 = window.box
    ok = []
    for low, high, extent, frame in ((x1, x2, window.width, image[0]), (y1, y2, window.height, image[1])):
        inside = low >= -1e-6 and high <= frame + 1e-6
        covers = low <= 1e-6 and high >= frame - 1e-6
        ok.append(inside if extent <= frame else covers)
    return all(ok)


def test_the_target_centres_the_person_filling_the_set_share_of_the_window():
    window = target_window([600, 200, 720, 560], IMAGE, SETTINGS)
    assert (window.x, window.y) == (660, 380)
    assert window.height == pytest.approx(360 / SETTINGS.fill)
    assert window.width / window.height == pytest.approx(360 / 640)
    lying = target_window([300, 500, 900, 600], IMAGE, SETTINGS)  # wider than tall: width decides
    assert lying.width >= 600 and in_bounds(lying)


def test_a_window_is_moved_into_the_frame_where_it_fits_and_covers_it_where_it_does_not():
    assert fit_window(CropWindow(20, 700, 400, 0.5), IMAGE).box == (0, 320, 200, 720)
    tall = fit_window(CropWindow(20, 700, 1000, 0.5), IMAGE)
    assert tall.box[0] == 0 and tall.box[1] <= 0 and tall.box[3] >= 720
    assert full_view(IMAGE, 0.5625).height == 720 and full_view((400, 900), 1.0).height == 400


def test_the_file_path_is_smooth_has_no_lag_and_keeps_the_scale_steady():
    t, truth, noisy = walk()
    path = frame_path(list(noisy), t, IMAGE, SETTINGS)
    raw = xs(target_window(b, IMAGE, SETTINGS) for b in noisy)
    ideal = xs(target_window(b, IMAGE, SETTINGS) for b in truth)
    assert len(path) == len(t)
    assert roughness(xs(path)) < roughness(raw) / 10
    assert best_shift(xs(path), ideal) == 0
    heights = np.array([w.height for w in path])
    assert heights.std() < 0.01 * heights.mean()
    assert all(in_bounds(w) for w in path)
    assert {round(w.width / w.height, 9) for w in path} == {round(360 / 640, 9)}


def test_the_live_path_is_smooth_and_only_a_frame_or_two_late():
    t, truth, noisy = walk()
    camera = VirtualCamera(IMAGE, SETTINGS)
    live = xs(camera.update(b, time) for b, time in zip(noisy, t))
    raw = xs(target_window(b, IMAGE, SETTINGS) for b in noisy)
    ideal = xs(target_window(b, IMAGE, SETTINGS) for b in truth)
    assert roughness(live) < roughness(raw) / 3
    assert 0 <= best_shift(live, ideal) <= 2
    assert np.abs(live - ideal)[30:-30].mean() < 0.05 * SETTINGS.size[1]  # well within the picture


def test_a_still_person_gives_a_still_camera():
    t = np.arange(120) / FPS
    noisy = np.array([600, 200, 720, 560]) + np.random.default_rng(1).normal(0, 3, (len(t), 4))
    camera = VirtualCamera(IMAGE, SETTINGS)
    live = [camera.update(b, time) for b, time in zip(noisy, t)][30:]
    heights = [w.height for w in live]
    assert np.std([w.x for w in live]) < 1.0 and np.std(heights) < 0.005 * np.mean(heights)
    still = frame_path(list(noisy), t, IMAGE, SETTINGS)
    assert np.std([w.x for w in still]) < 0.5


def test_a_person_walking_off_the_edge_keeps_the_window_in_the_frame():
    """They come closer too, so the window grows as it nears the edge (smoothing alone would
    carry it past)."""
    t = np.arange(90) / FPS
    grow = np.linspace(0, 1, len(t)) ** 2
    boxes = [[cx - 60 - 100 * g, 400 - 200 - 300 * g, cx + 60 + 100 * g, 400 + 160 + 300 * g]
             for cx, g in zip(np.linspace(900, 1400, len(t)), grow)]  # fmt: skip
    camera = VirtualCamera(IMAGE, SETTINGS)
    assert all(in_bounds(camera.update(b, time)) for b, time in zip(boxes, t))
    assert all(in_bounds(w) for w in frame_path(boxes, t, IMAGE, SETTINGS))


@pytest.mark.parametrize("mode", ["live", "file"])
def test_a_missing_person_is_held_then_eased_out_to_the_whole_frame_and_back(mode):
    settings = FramingSettings(size=(360, 640), hold_seconds=1.0, ease_seconds=1.0)
    t = np.arange(300) / FPS  # present 0-2 s, missing 2-7 s, back at 7 s
    person = [400, 250, 520, 610]
    boxes = [person if not 2 <= time < 7 else None for time in t]
    if mode == "live":
        camera = VirtualCamera(IMAGE, settings)
        path = [camera.update(b, time) for b, time in zip(boxes, t)]
    else:
        path = frame_path(boxes, t, IMAGE, settings)
    heights = np.array([w.height for w in path])
    framed, whole = target_window(person, IMAGE, settings).height, full_view(IMAGE, settings.aspect).height
    at = {s: int(s * FPS) for s in (1.5, 2.5, 5.0, 9.9)}
    assert heights[at[1.5]] == pytest.approx(framed, rel=0.01)
    assert heights[at[2.5]] == pytest.approx(framed, rel=0.02)  # held
    assert heights[at[5.0]] == pytest.approx(whole, rel=0.03)  # eased out
    assert heights[at[9.9]] == pytest.approx(framed, rel=0.01)  # and in again
    assert np.abs(np.diff(heights)).max() < 0.05 * whole  # no jump anywhere
    assert all(in_bounds(w) for w in path)


def test_zero_lag_keeps_a_ramp_where_it_is_and_a_constant_constant():
    t = np.arange(200) / FPS
    ramp = zero_lag(5.0 * t, t, 0.5)
    assert np.abs(ramp - 5.0 * t)[80:-80].max() < 1e-3  # away from the ends
    assert np.abs(ramp - 5.0 * t).max() < 0.02 * 5.0  # and at the ends within 20 ms of the walk
    assert np.allclose(zero_lag(np.full((200, 2), 3.0), t, 0.5), 3.0)
    with pytest.raises(ValueError, match="times"):
        zero_lag(np.zeros(3), np.zeros(4), 1.0)


@pytest.mark.parametrize(
    "window",
    [CropWindow(x, y, height, 0.5625) for x, y, height in
     [(640, 360, 640), (3.3, 711.7, 533.1), (640, 360, 2000), (-500, 360, 100), (640, 360, 20)]],
)
@pytest.mark.parametrize("size", [(360, 640), (720, 1280), (361, 641)])
def test_a_crop_is_exactly_the_output_size(window, size):
    image = np.random.default_rng(2).integers(0, 256, (IMAGE[1], IMAGE[0], 3), np.uint8)
    out = crop(image, window, size)
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8


def white_square(side: int = 100) -> np.ndarray:
    image = np.zeros((IMAGE[1], IMAGE[0], 3), np.uint8)
    image[300 : 300 + side, 600 : 600 + side] = 255
    return image


@pytest.mark.parametrize("height", [300.0, 720.0, 1500.0])  # up, down (area first), past the edges
def test_a_crop_scales_evenly_and_pads_with_black(height):
    window = CropWindow(650, 350, height, 0.5625)
    out = crop(white_square(), window, (360, 640))
    rows, cols = np.nonzero(out[..., 0] > 127)
    side = 100 * 640 / height
    assert np.ptp(rows) + 1 == pytest.approx(side, abs=1.5)
    assert np.ptp(cols) + 1 == pytest.approx(side, abs=1.5)
    assert rows.mean() == pytest.approx(320, abs=1.5) and cols.mean() == pytest.approx(180, abs=1.5)
    if height > 720:  # the rows beyond the frame are black
        band = int((height - 720) / 2 * 640 / height) - 2
        assert out[:band].max() == 0 and out[-band:].max() == 0


def test_a_crop_much_larger_than_the_output_is_averaged_not_aliased():
    stripes = np.zeros((IMAGE[1], IMAGE[0], 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel columns
    out = crop(stripes, CropWindow(640, 360, 600, 0.5625), (135, 240)).astype(float)  # 2.5x smaller
    assert np.abs(out[5:-5, 5:-5] - 127.5).max() < 50


def test_a_crop_at_the_frames_own_scale_is_the_frames_pixels():
    image = np.random.default_rng(3).integers(0, 256, (IMAGE[1], IMAGE[0], 3), np.uint8)
    out = crop(image, CropWindow(500, 400, 640, 0.5625), (360, 640))
    assert np.array_equal(out, image[80:720, 320:680])


def test_a_click_on_the_framed_view_maps_back_to_the_source():
    window = CropWindow(500, 400, 640, 0.5625)
    assert window.to_source(180, 320, (360, 640)) == (500, 400)
    assert window.to_source(0, 0, (720, 1280)) == (320, 80)


@pytest.mark.parametrize(("text", "expected"), [("720x1280", (720, 1280)), (" 360X640 ", (360, 640))])
def test_sizes_are_width_by_height(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["720", "720x", "0x10", "720x1280x3", "big", "-4x8", "9000x10"])
def test_other_sizes_are_refused_in_one_line(text):
    with pytest.raises(FramingError, match="WIDTHxHEIGHT") as error:
        parse_size(text)
    assert "\n" not in error.value.one_line()
