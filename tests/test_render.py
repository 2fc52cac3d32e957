"""PoseAnnotator and HudAnnotator draw what they should, where they should, and nothing else."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vitpose_live.render import (
    BOX,
    FACE,
    LEFT,
    PALETTE,
    RIGHT,
    TORSO,
    HudAnnotator,
    PoseAnnotator,
    default_sizes,
)
from vitpose_live.skeletons import COCO, skeleton_for
from vitpose_live.types import Poses

H, W = 480, 640
NAN, INF = float("nan"), float("inf")
K = {name: i for i, name in enumerate(COCO.keypoint_names)}


def scene(h: int = H, w: int = W) -> np.ndarray:
    return np.zeros((h, w, 3), np.uint8)


def person(points: dict[str, tuple[float, float]], score: float = 0.9, skeleton=COCO, **fields) -> Poses:
    """One person with only the named keypoints confident (the rest at score 0, placed at 1,1)."""
    names = skeleton.keypoint_names
    keypoints = np.ones((1, len(names), 2), np.float32)
    scores = np.zeros((1, len(names)), np.float32)
    for name, xy in points.items():
        keypoints[0, names.index(name)] = xy
        scores[0, names.index(name)] = score
    fields.setdefault("boxes", [[100, 100, 500, 400]])
    return Poses(keypoints, scores, box_scores=[0.9], keypoint_names=names, edges=skeleton.edges, **fields)


def at(image: np.ndarray, xy) -> np.ndarray:
    return image[int(round(xy[1])), int(round(xy[0]))].astype(int)


def near(color, expected, tolerance: int = 40) -> bool:
    return bool(np.abs(np.asarray(color, int) - np.asarray(expected, int)).max() <= tolerance)


def unchanged_at(image: np.ndarray, xy, radius: int = 2) -> bool:
    x, y = int(round(xy[0])), int(round(xy[1]))
    return not image[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1].any()


A, B = (200.0, 150.0), (420.0, 150.0)  # two places on one row, far apart
MID = (310.0, 150.0)


@pytest.mark.parametrize(
    "annotator",
    [PoseAnnotator(), PoseAnnotator(show_boxes=True), PoseAnnotator(antialias=False, radius=9, thickness=7)],
)
def test_nothing_is_drawn_and_the_same_array_comes_back_when_there_are_no_persons(annotator):
    image = scene()
    out = annotator.annotate(image, Poses.empty())
    assert out is image
    assert not image.any()


@pytest.mark.parametrize("shape", [(480, 640), (1080, 1920), (37, 53)])
def test_output_keeps_shape_and_dtype_and_is_drawn_in_place(shape):
    image = scene(*shape)
    h, w = shape
    poses = person({"left_shoulder": (w * 0.3, h * 0.4), "left_elbow": (w * 0.6, h * 0.5)})
    out = PoseAnnotator().annotate(image, poses)
    assert out is image
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    assert image.any()


@pytest.mark.parametrize(
    "view, error",
    [
        (lambda image: image[10:200, 20:300], None),
        (lambda image: image[:, ::-1], "contiguous"),
        (lambda image: image[..., ::-1], "contiguous"),
        (lambda image: image[..., 0], "HxWx3"),
        (lambda image: image.astype(np.float32), "uint8"),
    ],
)
def test_crops_are_drawn_into_and_other_layouts_are_refused_clearly(view, error):
    image = scene()
    target = view(image)
    poses = person({"left_shoulder": (20, 20), "left_elbow": (120, 90)})
    for annotate in (
        lambda: PoseAnnotator().annotate(target, poses),
        lambda: HudAnnotator().annotate(target, ["x"]),
    ):
        if error is None:
            assert annotate() is target
            assert image.any()
        else:
            with pytest.raises(ValueError, match=error):
                annotate()


@pytest.mark.parametrize(
    "keypoint, color",
    [
        ("nose", FACE),
        ("left_eye", FACE),
        ("left_wrist", LEFT),
        ("left_hip", LEFT),
        ("right_shoulder", RIGHT),
        ("right_ankle", RIGHT),
    ],
)
def test_a_confident_keypoint_is_a_disc_of_its_side_colour(keypoint, color):
    image = PoseAnnotator().annotate(scene(), person({keypoint: A}))
    assert near(at(image, A), color, tolerance=2)
    radius = default_sizes(image)[1]
    assert near(at(image, (A[0] + radius - 1, A[1])), color)
    assert near(at(image, (A[0], A[1] - radius + 1)), color)
    assert unchanged_at(image, (A[0] + radius + 3, A[1]), radius=0)


@pytest.mark.parametrize(
    "start, end, color",
    [
        ("left_shoulder", "left_elbow", LEFT),
        ("left_knee", "left_ankle", LEFT),
        ("right_elbow", "right_wrist", RIGHT),
        ("right_hip", "right_knee", RIGHT),
        ("left_shoulder", "right_shoulder", TORSO),
        ("left_hip", "right_hip", TORSO),
        ("right_shoulder", "right_hip", TORSO),
        ("nose", "left_eye", FACE),
        ("left_ear", "left_shoulder", FACE),
    ],
)
def test_a_confident_edge_is_drawn_in_its_limb_colour(start, end, color):
    image = PoseAnnotator(show_keypoints=False).annotate(scene(), person({start: A, end: B}))
    assert near(at(image, MID), color)
    assert near(at(image, (250, 150)), color)
    assert unchanged_at(image, (MID[0], MID[1] + 10))


@pytest.mark.parametrize(
    "score, drawn",
    [(0.0, False), (0.2, False), (0.3, False), (0.31, True), (0.9, True), (NAN, False)],
)
def test_a_keypoint_and_its_edges_are_drawn_only_above_the_threshold(score, drawn):
    poses = person({"left_shoulder": A, "left_elbow": B})
    scores = poses.scores.copy()
    scores[0, K["left_elbow"]] = score
    image = PoseAnnotator(kpt_threshold=0.3).annotate(scene(), poses.replace(scores=scores))
    assert near(at(image, A), LEFT)  # the confident end is drawn either way
    assert unchanged_at(image, B) is not drawn
    assert unchanged_at(image, MID) is not drawn


@pytest.mark.parametrize("threshold, drawn", [(0.5, False), (0.3, True)])
def test_a_calls_keypoint_threshold_wins_over_the_annotators_own_and_leaves_it(threshold, drawn):
    poses = person({"left_shoulder": A, "left_elbow": B})
    scores = poses.scores.copy()
    scores[0, K["left_elbow"]] = 0.4
    annotator = PoseAnnotator(kpt_threshold=0.9)

    image = annotator.annotate(scene(), poses.replace(scores=scores), kpt_threshold=threshold)

    assert unchanged_at(image, B) is not drawn
    assert annotator.kpt_threshold == 0.9


@pytest.mark.parametrize(
    "bad",
    [(NAN, NAN), (NAN, 150.0), (INF, 150.0), (-INF, -INF), (1e30, 1e30), (-1e9, 5.0)],
)
def test_non_finite_and_absurd_keypoints_are_skipped_without_crashing(bad):
    poses = person({"left_shoulder": A, "left_elbow": bad, "left_hip": B})
    image = PoseAnnotator(show_boxes=True).annotate(scene(), poses)
    assert near(at(image, A), LEFT)
    assert near(at(image, B), LEFT)
    assert unchanged_at(image, (A[0] + 30, A[1] - 30))  # no edge from A towards anything


@pytest.mark.parametrize("far", [(5000.0, 150.0), (-3000.0, -3000.0), (1e5, 150.0)])
def test_keypoints_outside_the_image_draw_the_visible_part_of_their_edges(far):
    poses = person({"left_shoulder": A, "left_elbow": far})
    image = PoseAnnotator(show_keypoints=False).annotate(scene(), poses)
    direction = np.subtract(far, A) / np.hypot(*np.subtract(far, A))
    assert near(at(image, np.add(A, 20 * direction)), LEFT)


@pytest.mark.parametrize(
    "settings, boxes, drawn",
    [
        ({"show_boxes": True}, [[100, 100, 500, 400]], True),
        ({"show_boxes": False}, [[100, 100, 500, 400]], False),
        ({}, [[100, 100, 500, 400]], False),
        ({"show_boxes": True}, [[NAN, 100, 500, 400]], False),
        ({"show_boxes": True}, [[INF, -INF, INF, INF]], False),
    ],
)
def test_boxes_are_drawn_only_when_asked_and_finite(settings, boxes, drawn):
    image = PoseAnnotator(**settings).annotate(scene(), person({"nose": A}, boxes=boxes))
    left_side_middle = (100, 250)
    assert (not unchanged_at(image, left_side_middle)) is drawn
    if drawn:
        assert near(at(image, left_side_middle), BOX)


@pytest.mark.parametrize(
    "settings, track_ids, drawn",
    [
        ({}, [7], True),
        ({"show_boxes": True}, [7], True),
        ({}, None, False),
        ({"show_ids": False}, [7], False),
    ],
)
def test_track_ids_are_written_at_the_box_top_left_when_tracked(settings, track_ids, drawn):
    image = PoseAnnotator(**settings).annotate(scene(), person({"nose": (300, 300)}, track_ids=track_ids))
    above_top_left = image[60:100, 100:140]
    assert bool(above_top_left.any()) is drawn
    if drawn:
        colors = above_top_left.reshape(-1, 3)
        assert any(near(c, PALETTE[7], tolerance=10) for c in colors)


def test_ids_of_boxes_at_the_image_border_stay_inside_the_image():
    poses = person({"nose": (300, 300)}, boxes=[[-50, -50, 100, 100]], track_ids=[123])
    image = PoseAnnotator().annotate(scene(), poses)
    assert image[:40, :80].any()


def test_generic_poses_draw_their_points_in_the_palette_and_no_edges():
    skeleton = skeleton_for(5)
    places = {name: (100.0 + 100 * i, 200.0) for i, name in enumerate(skeleton.keypoint_names)}
    image = PoseAnnotator().annotate(scene(), person(places, skeleton=skeleton))
    for i, xy in enumerate(places.values()):
        assert near(at(image, xy), PALETTE[i], tolerance=2)
        assert unchanged_at(image, (xy[0] + 50, xy[1]))  # between points: no edge


def test_generic_poses_with_edges_draw_them():
    skeleton = skeleton_for(5)
    skeleton = type(skeleton)(skeleton.keypoint_names, ((0, 1),), ())
    image = PoseAnnotator().annotate(scene(), person({"keypoint_0": A, "keypoint_1": B}, skeleton=skeleton))
    assert near(at(image, MID), PALETTE[0])


def test_edges_reaching_past_the_keypoints_are_an_error():
    skeleton = type(COCO)(skeleton_for(5).keypoint_names, ((0, 9),), ())
    with pytest.raises(ValueError, match="outside"):
        PoseAnnotator().annotate(scene(), person({"keypoint_0": A}, skeleton=skeleton))


@pytest.mark.parametrize(
    "settings, at_keypoint, at_edge",
    [
        ({}, True, True),
        ({"show_keypoints": False}, False, True),
        ({"show_edges": False}, True, False),
        ({"show_keypoints": False, "show_edges": False}, False, False),
    ],
)
def test_keypoints_and_edges_can_be_switched_off(settings, at_keypoint, at_edge):
    annotator = PoseAnnotator(thickness=2, radius=8, **settings)
    image = annotator.annotate(scene(), person({"left_shoulder": A, "left_elbow": B}))
    assert (not unchanged_at(image, (A[0], A[1] - 6), radius=0)) is at_keypoint  # disc, above the line
    assert (not unchanged_at(image, MID, radius=0)) is at_edge


@pytest.mark.parametrize("antialias, most_colors", [(False, 2), (True, 1000)])
def test_without_antialiasing_only_the_limb_colours_appear(antialias, most_colors):
    poses = person({"left_shoulder": (100.3, 100.7), "left_elbow": (400.6, 333.1)})
    image = PoseAnnotator(antialias=antialias).annotate(scene(), poses)
    colors = np.unique(image.reshape(-1, 3), axis=0)
    assert 2 <= len(colors) <= most_colors


def test_many_persons_are_drawn_at_once():
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(0, [W, H], (20, 17, 2))
    image = PoseAnnotator().annotate(
        scene(), Poses(keypoints, np.ones((20, 17)), np.zeros((20, 4)), np.ones(20))
    )
    for xy in keypoints.reshape(-1, 2)[:50]:
        assert at(image, xy).any()


@pytest.mark.parametrize(
    "shape, width, radius",
    [
        ((480, 640), (1.0, 2.0), 2),
        ((720, 1280), (2.5, 4.0), 3),
        ((1080, 1920), (3.0, 4.0), 4),
        ((2160, 3840), (6, 8), 8),
    ],
)
def test_lines_and_discs_scale_with_the_image(shape, width, radius):
    h, w = shape
    poses = person({"left_shoulder": (w * 0.1, h * 0.3 + 0.3), "left_elbow": (w * 0.9, h * 0.4 + 0.6)})
    image = PoseAnnotator(show_keypoints=False).annotate(scene(h, w), poses)
    coverage = image[:, w // 2].max(-1).sum() / max(LEFT)  # anti-aliased pixels count in part
    assert width[0] <= coverage <= width[1]
    assert default_sizes(image)[1] == radius


def test_an_explicit_line_width_is_drawn_as_wide_as_cv2_draws_it():
    poses = person({"left_shoulder": (100, 200), "left_elbow": (500, 200)})
    image = PoseAnnotator(thickness=9, show_keypoints=False).annotate(scene(), poses)
    reference = cv2.line(scene(), (100, 200), (500, 200), LEFT, 9, cv2.LINE_AA)
    assert np.abs(image[:, 300].astype(int) - reference[:, 300]).max() <= 2


HUD_LINES = ["fps 30.0", "latency 40 ms", "persons 3"]
CORNERS = {
    "top_left": (slice(0, 60), slice(0, 100)),
    "top_right": (slice(0, 60), slice(W - 100, W)),
    "bottom_left": (slice(H - 60, H), slice(0, 100)),
    "bottom_right": (slice(H - 60, H), slice(W - 100, W)),
}


@pytest.mark.parametrize("position", list(CORNERS))
def test_the_hud_writes_in_its_corner_only(position):
    image = np.full((H, W, 3), 128, np.uint8)
    out = HudAnnotator(position=position).annotate(image, HUD_LINES)
    assert out is image
    for corner, region in CORNERS.items():
        touched = bool((image[region] != 128).any())
        assert touched is (corner == position), corner
    box = image[CORNERS[position]].reshape(-1, 3)
    assert (box < 128).all(-1).any()  # darkened background
    assert (box > 200).all(-1).any()  # white text


def test_the_hud_draws_nothing_without_lines():
    image = np.full((H, W, 3), 128, np.uint8)
    assert HudAnnotator().annotate(image, []) is image
    assert (image == 128).all()


def test_the_hud_refuses_an_unknown_position():
    with pytest.raises(ValueError, match="position"):
        HudAnnotator(position="middle")


def test_the_hud_fits_a_tiny_image():
    image = np.full((20, 30, 3), 128, np.uint8)
    HudAnnotator(position="bottom_right").annotate(image, HUD_LINES)
    assert image.shape == (20, 30, 3)


def two_people_one_filled_in() -> Poses:
    """The same left arm twice, 200 px apart: the first person seen, the second interpolated."""
    seen = person({"left_shoulder": A, "left_elbow": (A[0], A[1] + 100)})
    filled = person({"left_shoulder": B, "left_elbow": (B[0], B[1] + 100)})
    return Poses(np.concatenate([seen.keypoints, filled.keypoints]), np.concatenate([seen.scores, filled.scores]),
                 np.concatenate([seen.boxes, filled.boxes]), [0.9, 0.9], track_ids=[1, 2])


def test_an_interpolated_person_is_drawn_dimmed_and_thinner_so_a_viewer_can_tell():
    poses = two_people_one_filled_in()
    image = PoseAnnotator(show_ids=False).annotate(scene(), poses, interpolated=np.array([False, True]))
    seen_edge, filled_edge = (A[0], A[1] + 50), (B[0], B[1] + 50)
    assert near(at(image, seen_edge), LEFT) and near(at(image, A), LEFT, tolerance=2)
    assert near(at(image, filled_edge), np.array(LEFT) // 2, tolerance=25)  # half as bright
    assert near(at(image, B), np.array(LEFT) // 2, tolerance=2)

    def width(x: float) -> int:  # lit pixels across the arm, on its middle row
        return int((image[int(A[1]) + 50, int(x) - 10 : int(x) + 11].max(axis=1) > 20).sum())

    image = PoseAnnotator(show_ids=False).annotate(scene(1080, 1920), poses, interpolated=np.array([False, True]))
    assert width(B[0]) < width(A[0])  # at 1080p the lines of persons seen are thicker than one pixel
    plain = PoseAnnotator(show_ids=False).annotate(scene(), poses)
    assert near(at(plain, filled_edge), LEFT)  # unmarked: both drawn alike


def two_tracked() -> Poses:
    """Track 4 with its left hip at A, track 9 with its left hip at B."""
    one, two = person({"left_hip": A}), person({"left_hip": B})
    return Poses(np.concatenate([one.keypoints, two.keypoints]), np.concatenate([one.scores, two.scores]),
                 [[150, 100, 250, 200], [370, 100, 470, 200]], [0.9, 0.8], track_ids=[4, 9])


def test_the_followed_person_is_drawn_in_full_and_the_others_dimmed():
    image = PoseAnnotator(show_ids=False).annotate(scene(), two_tracked(), followed=9)
    assert near(at(image, B), LEFT, tolerance=2)  # the followed one in its own colour
    dimmed = at(image, A)
    assert dimmed.any() and dimmed.max() < 0.6 * max(LEFT)  # the other there, but darker
    assert np.array_equal(image, PoseAnnotator(show_ids=False).annotate(scene(), two_tracked(), followed=9))


def test_with_hide_others_only_the_followed_person_is_drawn():
    image = PoseAnnotator(show_ids=False, hide_others=True).annotate(scene(), two_tracked(), followed=9)
    assert near(at(image, B), LEFT, tolerance=2) and unchanged_at(image, A)


def test_a_followed_id_not_in_the_frame_dims_everybody_and_none_draws_everybody_alike():
    annotator = PoseAnnotator(show_ids=False)
    awaited = annotator.annotate(scene(), two_tracked(), followed=7)
    assert 0 < at(awaited, A).max() < 0.6 * max(LEFT) and 0 < at(awaited, B).max() < 0.6 * max(LEFT)
    plain = annotator.annotate(scene(), two_tracked(), followed=None)
    assert near(at(plain, A), LEFT, tolerance=2) and near(at(plain, B), LEFT, tolerance=2)
    assert np.array_equal(plain, annotator.annotate(scene(), two_tracked()))
