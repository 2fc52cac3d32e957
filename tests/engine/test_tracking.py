"""Tracking, boxes from keypoints and keypoint smoothing, on synthetic scenes."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from vitpose_live.engine.smoothing import OneEuroFilter, PoseSmoother
from vitpose_live.engine.tracking import PersonTracker, TrackingStage, boxes_from_keypoints
from vitpose_live.types import Detections, Poses

FPS = 30.0
K = 17

# Where COCO keypoints sit in a standing person's detector box, as fractions of its width and height.
BODY = np.array([
    (0.50, 0.10), (0.45, 0.08), (0.55, 0.08), (0.38, 0.10), (0.62, 0.10),  # face
    (0.25, 0.22), (0.75, 0.22), (0.18, 0.38), (0.82, 0.38), (0.15, 0.52), (0.85, 0.52),  # arms
    (0.33, 0.55), (0.67, 0.55), (0.35, 0.75), (0.65, 0.75), (0.36, 0.94), (0.64, 0.94),  # legs
])  # fmt: skip


def poses_of(keypoints, scores, boxes, track_ids=None) -> Poses:
    keypoints = np.asarray(keypoints, np.float32).reshape(-1, K, 2)
    n = len(keypoints)
    return Poses(
        keypoints, np.reshape(scores, (n, K)), np.reshape(boxes, (n, 4)), np.full(n, 0.9), track_ids=track_ids
    )


# --------------------------------------------------------------------------------------------
# PersonTracker and TrackingStage on a moving scene


@dataclass(frozen=True)
class Walker:
    name: str
    first: int  # first frame in the scene
    last: int  # last frame in the scene
    start: tuple[float, float]  # box centre at `first`, may be outside the image
    velocity: tuple[float, float]  # pixels per second
    score: float
    size: tuple[float, float] = (120.0, 300.0)

    def box(self, frame: int) -> np.ndarray:
        t = (frame - self.first) / FPS
        cx, cy = self.start[0] + self.velocity[0] * t, self.start[1] + self.velocity[1] * t
        w, h = self.size
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


IMAGE = (1280, 720)
FRAMES = 180  # 6 s
# Three people walking; C walks out on the right (gone after frame ~80), D walks in from the left.
SCENE = (
    Walker("A", 0, FRAMES - 1, (150, 380), (100, 5), 0.92),
    Walker("B", 0, FRAMES - 1, (520, 360), (120, -8), 0.85),
    Walker("C", 0, FRAMES - 1, (900, 400), (180, 0), 0.88),
    Walker("D", 100, FRAMES - 1, (-50, 370), (160, 4), 0.9),
)


def clipped(box: np.ndarray) -> np.ndarray:
    return np.array([np.clip(box[0], 0, IMAGE[0]), np.clip(box[1], 0, IMAGE[1]),
                     np.clip(box[2], 0, IMAGE[0]), np.clip(box[3], 0, IMAGE[1])])  # fmt: skip


def visible_fraction(walker: Walker, frame: int) -> float:
    if not walker.first <= frame <= walker.last:
        return 0.0
    box, seen = walker.box(frame), clipped(walker.box(frame))
    return float((seen[2] - seen[0]) * (seen[3] - seen[1]) / ((box[2] - box[0]) * (box[3] - box[1])))


def detect(frame: int) -> Detections:
    """A detector that finds everyone at least half in the picture, with their box cut to it."""
    found = [w for w in SCENE if visible_fraction(w, frame) >= 0.5]
    found.sort(key=lambda w: -w.score)
    return Detections(
        np.array([clipped(w.box(frame)) for w in found]).reshape(-1, 4), [w.score for w in found]
    )


def overlap(box: np.ndarray, walker: Walker, frame: int) -> float:
    """How much of ``box`` lies on the walker."""
    other = walker.box(frame)
    w = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
    h = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
    return w * h / max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)


def who_is_in(frame: int, box: np.ndarray) -> Walker | None:
    """The person that most of the box lies on, if any."""
    present = [w for w in SCENE if visible_fraction(w, frame) > 0]
    best = max(present, key=lambda w: overlap(box, w, frame), default=None)
    return best if best is not None and overlap(box, best, frame) >= 0.5 else None


def estimate_poses(frame: int, boxes: Detections) -> Poses:
    """A pose model: the true keypoints of whoever fills the box, unsure ones outside the picture."""
    keypoints, scores = [], []
    for box in boxes.boxes:
        walker = who_is_in(frame, box)
        if walker is None:
            keypoints.append(np.repeat([(box[:2] + box[2:]) / 2], K, axis=0))
            scores.append(np.full(K, 0.05))
            continue
        x1, y1, x2, y2 = walker.box(frame)
        points = np.array([x1, y1]) + BODY * [x2 - x1, y2 - y1]
        inside = (points >= 0).all(axis=1) & (points < IMAGE).all(axis=1)
        keypoints.append(points)
        scores.append(np.where(inside, 0.9, 0.05))
    n = len(boxes)
    return Poses(np.reshape(keypoints, (n, K, 2)), np.reshape(scores, (n, K)), boxes.boxes, boxes.scores)


@pytest.mark.parametrize(
    ("detect_every", "timed"),
    [(1, True), (5, True), (10, True), pytest.param(5, False, id="5-untimed at the rate of the calls")],
)
def test_ids_stay_with_people_across_detection_gaps(detect_every, timed):
    stage = TrackingStage(PersonTracker(FPS if timed else FPS / detect_every))
    seen: dict[str, set[int]] = {w.name: set() for w in SCENE}
    shown: dict[str, set[int]] = {w.name: set() for w in SCENE}  # frames each person was in the output
    for frame in range(FRAMES):
        detections = detect(frame) if frame % detect_every == 0 else None
        boxes, ids = stage.boxes(detections, frame / FPS if timed else None, IMAGE)
        assert ids.dtype == np.int64 and len(ids) == len(boxes)
        assert len(set(ids.tolist())) == len(ids), f"frame {frame}: one id given twice"
        stage.poses(estimate_poses(frame, boxes).replace(track_ids=ids))
        for box, track_id in zip(boxes.boxes, ids.tolist(), strict=True):
            walker = who_is_in(frame, box)
            assert walker is not None, f"frame {frame}: box {box} around nobody"
            seen[walker.name].add(track_id)
            shown[walker.name].add(frame)

    for name, ids in seen.items():
        assert len(ids) == 1, f"{name} had ids {sorted(ids)}"
    all_ids = [next(iter(ids)) for ids in seen.values()]
    assert len(set(all_ids)) == len(SCENE), f"people share ids: {seen}"

    for walker in SCENE:
        # Tracked from the first detector run that sees the person for as long as they are in full view.
        first_seen = next(
            f for f in range(FRAMES) if f % detect_every == 0 and visible_fraction(walker, f) >= 0.5
        )
        in_view = {f for f in range(first_seen, FRAMES) if visible_fraction(walker, f) >= 0.99}
        assert in_view, f"the scene never shows {walker.name} in full"
        assert in_view <= shown[walker.name], (
            f"{walker.name} missing in frames {sorted(in_view - shown[walker.name])}"
        )
    # C leaves: gone from the output by the first detector frame after the detector stops finding them.
    last_found = max(
        f for f in range(FRAMES) if f % detect_every == 0 and visible_fraction(SCENE[2], f) >= 0.5
    )
    assert max(shown["C"]) < last_found + detect_every


P = ([100, 100, 220, 400], 0.9)  # a person
Q = ([600, 100, 720, 400], 0.7)  # another, well apart
WEAK_P = ([102, 101, 222, 401], 0.4)  # P found again, but below the high-confidence split


@pytest.mark.parametrize(
    ("runs", "expected_ids"),
    [
        pytest.param([[P], [P], [P]], [[0], [0], [0]], id="a person gets an id on the first detector run"),
        pytest.param([[P], [], [], []], [[0], [], [], []], id="a one-off detection is gone once not found"),
        pytest.param([[WEAK_P]] * 3, [[], [], []], id="a weak detection never starts a track"),
        pytest.param([[P], [WEAK_P], [WEAK_P]], [[0], [0], [0]], id="a weak detection keeps a track"),
        pytest.param([[P], [P], [], [P]], [[0], [0], [], [0]], id="a track survives a missed detection"),
        pytest.param([[Q, P], [Q, P]], [[1, 0], [1, 0]], id="more confident people come first"),  # P: 0.9, Q: 0.7
    ],
)
def test_tracker_starts_tracks_above_the_threshold_and_keeps_them_on_weaker_ones(runs, expected_ids):
    tracker = PersonTracker(FPS)
    for i, (run, expected) in enumerate(zip(runs, expected_ids, strict=True)):
        detections = Detections(np.array([box for box, _ in run]).reshape(-1, 4), [score for _, score in run])
        boxes, ids = tracker.update(detections, frame_time=i * 5 / FPS)
        assert ids.tolist() == expected
        assert (np.diff(boxes.scores) <= 0).all()


def test_tracker_returns_the_detector_boxes_of_confirmed_people():
    tracker = PersonTracker(FPS)
    detections = Detections(np.array([P[0], Q[0]]), [P[1], Q[1]])
    tracker.update(detections, 0.0)
    boxes, ids = tracker.update(detections, 0.1)
    np.testing.assert_array_equal(boxes.boxes, detections.boxes)
    np.testing.assert_array_equal(boxes.scores, detections.scores)


def test_time_going_back_starts_over_without_reusing_ids():
    tracker = PersonTracker(FPS)
    person = Detections(np.array([P[0]]), [P[1]])
    for t in (10.0, 10.1):
        _, ids = tracker.update(person, t)
    assert ids.tolist() == [0]
    assert tracker.update(person, 0.0)[1].tolist() == [1]  # new stream: a new track, a new id
    assert tracker.update(person, 0.1)[1].tolist() == [1]


def test_tracker_drops_tracks_lost_for_longer_than_the_buffer():
    tracker = PersonTracker(FPS, lost_track_seconds=1.0)
    person = Detections(np.array([P[0]]), [P[1]])
    tracker.update(person, 0.0)
    assert tracker.update(person, 0.2)[1].tolist() == [0]
    tracker.update(Detections.empty(), 0.7)
    assert tracker.update(person, 1.1)[1].tolist() == [0], "0.9 s without a detection is within the buffer"
    tracker.update(Detections.empty(), 1.5)
    assert tracker.update(person, 2.5)[1].tolist() == [1], "1.4 s is not: the person starts over, a new id"


def test_tracker_rejects_a_non_finite_time():
    with pytest.raises(ValueError):
        PersonTracker().update(Detections.empty(), float("nan"))


# --------------------------------------------------------------------------------------------
# boxes_from_keypoints

PREVIOUS = [0, 0, 50, 100]


def one_person(points, scores, box=PREVIOUS) -> Poses:
    keypoints = np.zeros((K, 2), np.float32)
    all_scores = np.zeros(K, np.float32)
    keypoints[: len(points)] = points
    all_scores[: len(scores)] = scores
    return poses_of(keypoints, all_scores, box)


THREE = [(10, 20), (30, 20), (20, 60)]  # spans x 10..30, y 20..60: centre (20, 40), size 20 x 40

GROWN = [7.5, 15, 32.5, 65]  # THREE's box grown by 1.25: centre (20, 40), size 25 x 50
NAN, INF = np.nan, np.inf
BOX_CASES = {  # what: (keypoints, their scores, options, expected box)
    "the keypoint box grown 12.5 % per side": (THREE, [0.9] * 3, {}, GROWN),
    "padding 1 is the keypoint box": (THREE, [0.9] * 3, {"padding": 1.0}, [10, 20, 30, 60]),
    "unsure keypoints are ignored": ([*THREE, (500, 500)], [0.9, 0.9, 0.9, 0.1], {}, GROWN),
    "too few sure keypoints keep the previous box": (THREE, [0.9, 0.9, 0.2], {}, PREVIOUS),
    "min_keypoints sets how few is too few": (
        THREE,
        [0.9, 0.2, 0.9],
        {"min_keypoints": 2},
        [8.75, 15, 21.25, 65],
    ),
    "keypoints on one point keep the previous box": ([(5, 5)] * 3, [0.9] * 3, {}, PREVIOUS),
    "clipped to the image": (THREE, [0.9] * 3, {"image_size": (30, 50)}, [7.5, 15, 30, 50]),
    "NaN keypoints are ignored": ([*THREE, (NAN, 900)], [0.9] * 4, {}, GROWN),
    "all NaN keeps the previous box": ([(NAN, NAN)] * 5, [NAN] * 5, {}, PREVIOUS),
    "infinite keypoints are ignored": ([(-INF, 0), (0, INF), *THREE], [0.9] * 5, {}, GROWN),
}


@pytest.mark.parametrize(
    ("points", "scores", "options", "expected"), BOX_CASES.values(), ids=BOX_CASES.keys()
)
def test_boxes_from_keypoints(points, scores, options, expected):
    boxes = boxes_from_keypoints(one_person(points, scores), **options)
    assert boxes.dtype == np.float32 and boxes.shape == (1, 4)
    assert np.isfinite(boxes).all()
    np.testing.assert_allclose(boxes[0], expected, atol=1e-4)


def test_boxes_from_keypoints_treats_every_person_on_their_own():
    cases = [case for case in BOX_CASES.values() if not case[2]]  # the ones with default options
    people = [one_person(points, scores) for points, scores, _, _ in cases]
    together = Poses(
        np.concatenate([person.keypoints for person in people]),
        np.concatenate([person.scores for person in people]),
        np.concatenate([person.boxes for person in people]),
        np.ones(len(people)),
    )
    np.testing.assert_allclose(boxes_from_keypoints(together), [case[3] for case in cases], atol=1e-4)


def test_boxes_from_keypoints_of_nobody_is_empty():
    assert boxes_from_keypoints(Poses.empty()).shape == (0, 4)


# --------------------------------------------------------------------------------------------
# OneEuroFilter and PoseSmoother


def smooth_track(smoother: PoseSmoother, keypoints: np.ndarray, scores=None) -> np.ndarray:
    """Feed one tracked person's (T,K,2) keypoints at 30 fps; returns what came out."""
    out = []
    for i, points in enumerate(keypoints):
        frame_scores = np.full(K, 0.9) if scores is None else scores[i]
        poses = poses_of(points, frame_scores, [0, 0, 1, 1], track_ids=[7])
        out.append(smoother(poses, i / FPS).keypoints[0])
    return np.array(out)


def rms(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - b) ** 2)))


TIME = np.arange(0, 10, 1 / FPS)
PHASES = np.random.default_rng(1).uniform(0, 2 * np.pi, (K, 2))


@pytest.mark.parametrize(
    "truth",
    [
        pytest.param(np.broadcast_to(np.array(300.0), (len(TIME), K, 2)), id="standing still"),
        pytest.param(300 + 10 * np.sin(2 * np.pi * 0.25 * TIME[:, None, None] + PHASES), id="swaying slowly"),
    ],
)
def test_smoothing_takes_out_at_least_40_percent_of_the_jitter(truth):
    noisy = truth + np.random.default_rng(0).normal(0, 3, truth.shape)
    smoothed = smooth_track(PoseSmoother(), noisy)
    raw_error, smoothed_error = rms(noisy, truth), rms(smoothed, truth)
    assert smoothed_error <= 0.6 * raw_error, f"raw {raw_error:.2f} px, smoothed {smoothed_error:.2f} px"


def test_fast_motion_lags_only_a_few_pixels():
    truth = np.zeros((len(TIME), K, 2))
    truth[..., 0] = 600 * TIME[:, None]  # 600 px/s to the right
    lag = np.abs(smooth_track(PoseSmoother(), truth) - truth)[30:].max()  # after 1 s
    assert lag < 5
    stiff_lag = np.abs(smooth_track(PoseSmoother(beta=0.0), truth) - truth)[30:].max()
    assert stiff_lag > 50, "without beta the same filter trails far behind"


@pytest.mark.parametrize(("beta", "most_frames"), [(0.05, 3), (0.0, None)])
def test_a_jump_is_caught_up_within_a_few_frames(beta, most_frames):
    truth = np.full((60, K, 2), 200.0)
    truth[30:] += 100
    error = np.abs(smooth_track(PoseSmoother(beta=beta), truth) - truth).max(axis=(1, 2))
    settled = [i for i in range(30, 60) if (error[i:] < 3).all()]
    frames = settled[0] - 30 + 1 if settled else None
    if most_frames is None:
        assert frames is None or frames > 10, "without beta the catch-up is slow"
    else:
        assert frames is not None and frames <= most_frames, f"settled after {frames} frames"


def test_each_track_has_its_own_state_and_is_forgotten_after_a_while():
    smoother = PoseSmoother(forget_after=1.0)
    at = lambda x: np.full((K, 2), x, np.float32)  # noqa: E731
    for i in range(10):
        out = smoother(poses_of(at(100 + i), np.ones(K), [0, 0, 1, 1], track_ids=[0]), i / FPS)
    assert out.keypoints[0, 0, 0] < 109, "track 0 is being smoothed (it lags the ramp)"

    both = poses_of(np.stack([at(110), at(500)]), np.ones((2, K)), np.zeros((2, 4)), track_ids=[0, 1])
    out = smoother(both, 10 / FPS)
    assert out.keypoints[1, 0, 0] == 500, "a new track starts from its raw keypoints"
    assert 100 < out.keypoints[0, 0, 0] < 110
    assert smoother.track_ids == [0, 1]

    out = smoother(poses_of(at(120), np.ones(K), [0, 0, 1, 1], track_ids=[0]), 10 / FPS + 0.9)
    assert 110 < out.keypoints[0, 0, 0] < 120, "track 0, unseen for 0.9 s, is still smoothed"
    assert smoother.track_ids == [0, 1]
    out = smoother(poses_of(at(300), np.ones(K), [0, 0, 1, 1], track_ids=[1]), 10 / FPS + 2.0)
    assert out.keypoints[0, 0, 0] == 300, "track 1, unseen for 2 s, comes back as new"
    assert smoother.track_ids == [1], "track 0, unseen for 1.1 s, is forgotten"


def test_a_keypoint_below_the_threshold_restarts_from_its_raw_value():
    smoother = PoseSmoother(kpt_threshold=0.3)
    steps = [(100.0, 0.9)] * 20 + [(300.0, 0.1), (310.0, 0.9), (310.0, 0.9)]
    keypoints = np.array([np.full((K, 2), x) for x, _ in steps])
    scores = np.array([np.full(K, s) for _, s in steps])
    out = smooth_track(smoother, keypoints, scores)[:, 0, 0]
    assert out[20] == 300, "an unsure keypoint comes out raw"
    assert out[21] == 310, "and starts over from there once it is sure again"
    assert out[22] == 310


def test_the_others_keep_their_state_when_one_keypoint_drops():
    smoother = PoseSmoother()
    scores = np.full((3, K), 0.9)
    scores[2, 0] = 0.0
    keypoints = np.stack([np.full((K, 2), 100.0), np.full((K, 2), 100.0), np.full((K, 2), 120.0)])
    out = smooth_track(smoother, keypoints, scores)
    assert out[2, 0, 0] == 120
    assert 100 < out[2, 1, 0] < 120


def test_poses_without_track_ids_pass_through_unchanged():
    smoother = PoseSmoother()
    poses = poses_of(np.full((K, 2), 5.0), np.ones(K), [0, 0, 1, 1])
    for t in range(3):
        assert smoother(poses.replace(keypoints=poses.keypoints + t), t / FPS).keypoints[0, 0, 0] == 5 + t
    assert smoother.track_ids == []


def test_negative_track_ids_pass_through_unchanged():
    smoother = PoseSmoother()
    for t in range(3):
        out = smoother(poses_of(np.full((K, 2), 5.0 + t), np.ones(K), [0, 0, 1, 1], track_ids=[-1]), t / FPS)
        assert out.keypoints[0, 0, 0] == 5 + t


@pytest.mark.parametrize(
    "times",
    [
        pytest.param([0.0, 0.0, 0.0], id="first frames at the same time"),
        pytest.param([0.0, 1 / FPS, 1 / FPS, 2 / FPS], id="a repeated time later on"),
        pytest.param([5.0, 5.1, 0.0, 0.1], id="time going back"),
    ],
)
def test_time_not_moving_forward_never_divides_by_zero(times):
    smoother = PoseSmoother()
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for i, t in enumerate(times):
            poses = poses_of(np.full((K, 2), 100.0 + 10 * i), np.ones(K), [0, 0, 1, 1], track_ids=[3])
            out = smoother(poses, t)
            assert np.isfinite(out.keypoints).all()
            assert 100 <= out.keypoints[0, 0, 0] <= 100 + 10 * i


def test_one_euro_filter_state_follows_the_clock():
    one_euro = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    assert one_euro(np.array([0.0]), 0.0)[0] == 0
    assert one_euro(np.array([10.0]), 0.0)[0] == 10, "no time step yet: restart from the raw value"
    first = one_euro(np.array([20.0]), 0.1)[0]
    assert 10 < first < 20
    again = one_euro(np.array([20.0]), 0.1)[0]
    assert first < again < 20, "a repeated time reuses the last step"


def test_one_euro_filter_works_element_by_element_on_any_shape():
    rng = np.random.default_rng(2)
    signal = rng.normal(0, 5, (40, 3, 4, 2)).cumsum(axis=0)
    together = OneEuroFilter(1.0, 0.05)
    alone = [OneEuroFilter(1.0, 0.05) for _ in range(24)]
    for i, values in enumerate(signal):
        out = together(values, i / FPS)
        one_by_one = [f(np.array(v), i / FPS) for f, v in zip(alone, values.reshape(-1), strict=True)]
        np.testing.assert_allclose(out.reshape(-1), np.ravel(one_by_one))
    assert out.dtype == np.float64 and out.shape == (3, 4, 2)


def test_one_euro_filter_restarts_elements_that_were_not_finite():
    one_euro = OneEuroFilter(1.0, 0.0)
    one_euro(np.array([0.0, 0.0]), 0.0)
    out = one_euro(np.array([np.nan, 10.0]), 0.1)
    assert np.isnan(out[0]) and 0 < out[1] < 10
    out = one_euro(np.array([50.0, 10.0]), 0.2)
    assert out[0] == 50 and np.isfinite(out).all()


def test_the_stage_remembers_raw_poses_and_smooths_what_it_returns():
    stage = TrackingStage(smoother=PoseSmoother())
    standing = BODY * [100, 300] + [100, 50]
    first = poses_of(standing, np.full(K, 0.9), [0, 0, 1, 1], track_ids=[4])
    second = first.replace(keypoints=[standing + 20])
    stage.poses(first, 0.0)
    out = stage.poses(second, 1 / FPS)
    assert (out.keypoints < second.keypoints).all(), "smoothed: lagging behind the move"
    boxes, ids = stage.boxes(None, 2 / FPS)
    assert ids.tolist() == [4]
    np.testing.assert_array_equal(
        boxes.boxes, boxes_from_keypoints(second), "boxes come from the raw keypoints"
    )


def test_the_stage_has_no_boxes_before_any_pose():
    boxes, ids = TrackingStage().boxes(None, 0.0)
    assert len(boxes) == 0 and ids.dtype == np.int64
