"""Offline analysis (join, fill, zero-lag smoothing) on scripted scenes whose truth is known."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from vitpose_live import offline_smooth
from vitpose_live.offline import AnalysisSettings, Track, TrackStore, analyse, fill_gaps
from vitpose_live.offline_join import JoinSettings, join_tracklets
from vitpose_live.offline_smooth import SmoothSettings, smooth_series
from vitpose_live.tracking import PersonTracker, TrackingStage
from vitpose_live.types import Detections, Poses

FPS = 30.0
K = 17
HEIGHT = 300.0  # a person's box height in pixels
# COCO keypoints as fractions of a person's box, centred (like tests/test_tracking.py's BODY).
BODY = np.array([
    (0.50, 0.10), (0.45, 0.08), (0.55, 0.08), (0.38, 0.10), (0.62, 0.10),
    (0.25, 0.22), (0.75, 0.22), (0.18, 0.38), (0.82, 0.38), (0.15, 0.52), (0.85, 0.52),
    (0.33, 0.55), (0.67, 0.55), (0.35, 0.75), (0.65, 0.75), (0.36, 0.94), (0.64, 0.94),
]) - 0.5  # fmt: skip


@dataclass(frozen=True)
class Person:
    """Somebody on a known path: ``centre(frame) -> (x, y)``, seen on ``frames`` under the
    tracker ids of ``ids(frame)``."""

    centre: Callable[[np.ndarray], np.ndarray]
    frames: range
    ids: Callable[[int], int]
    height: float = HEIGHT

    def keypoints(self, frame: int) -> np.ndarray:
        return self.centre(np.array([frame]))[0] + BODY * (self.height * 0.4, self.height)

    def box(self, frame: int) -> np.ndarray:
        (x, y), w = self.centre(np.array([frame]))[0], self.height * 0.4
        return np.array([x - w / 2, y - self.height / 2, x + w / 2, y + self.height / 2])


def walk(x0: float, y0: float, vx: float, vy: float = 0.0, sway: float = 0.0):
    """A walk at (vx, vy) px/s with a gentle sideways sway of ``sway`` px at 0.3 Hz."""

    def centre(frames: np.ndarray) -> np.ndarray:
        t = frames / FPS
        return np.stack([x0 + vx * t, y0 + vy * t + sway * np.sin(2 * np.pi * 0.3 * t)], axis=-1)

    return centre


def store_of(
    people: list[Person], frames: int, sigma: float = 0.0, seed: int = 0, score: float = 0.9
) -> TrackStore:
    """What a tracked run of the scene would keep: every person's keypoints plus noise."""
    rng, store = np.random.default_rng(seed), TrackStore()
    for frame in range(frames):
        seen = [p for p in people if frame in p.frames]
        keypoints = [p.keypoints(frame) + rng.normal(0, sigma, (K, 2)) for p in seen]
        n = len(seen)
        store.add(frame, Poses(np.reshape(keypoints, (n, K, 2)), np.full((n, K), score),
                               np.reshape([p.box(frame) for p in seen], (n, 4)), np.full(n, 0.9),
                               track_ids=[p.ids(frame) for p in seen]))  # fmt: skip
    return store


def series(analysis, track_id: int, frames) -> np.ndarray:
    """Keypoints (T, K, 2) of one analysed track over ``frames``."""
    out = []
    for frame in frames:
        at = analysis.poses_at(frame).poses
        out.append(at.keypoints[list(at.track_ids).index(track_id)])
    return np.array(out)


def truth(person: Person, frames) -> np.ndarray:
    return np.array([person.keypoints(f) for f in frames])


def rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def one(track_id: int):
    return lambda frame: track_id


# ------------------------------------------------------------------------------- the store


def test_a_long_run_costs_228_bytes_per_person_frame_whatever_the_picture_size():
    people = [Person(walk(100 + 200 * i, 400, 20), range(3000), one(i)) for i in range(5)]
    store = store_of(people, 3000)
    assert store.sightings == 5 * 3000 and store.bytes_per_sighting == 4 + 12 * K + 20 == 228
    assert store.nbytes <= 1.1 * 228 * store.sightings


def test_many_short_tracklets_waste_less_than_they_hold():
    people = [Person(walk(100, 400, 20), range(3 * i, 3 * i + 3), one(i)) for i in range(300)]
    store = store_of(people, 900)
    assert store.nbytes <= 2 * 228 * store.sightings


def test_the_store_gives_back_what_was_added_per_track():
    person = Person(walk(100, 400, 60), range(50), one(4))
    store = store_of([person], 50, sigma=1.0)
    track = store.track(4)
    assert track.frames.tolist() == list(range(50)) and not track.interpolated.any()
    assert np.abs(track.keypoints - truth(person, range(50))).max() < 5
    np.testing.assert_array_equal(track.boxes[7], person.box(7).astype(np.float32))


@pytest.mark.parametrize(
    ("frame", "poses", "message"),
    [
        (3, Poses(np.zeros((1, K, 2)), np.ones((1, K)), np.zeros((1, 4)), [0.9]), "tracked"),
        (
            3,
            Poses(np.zeros((2, K, 2)), np.ones((2, K)), np.zeros((2, 4)), [0.9] * 2, track_ids=[1, 1]),
            "twice",
        ),
        (1, Poses.empty(), "increase"),
    ],
)
def test_the_store_refuses_what_it_cannot_analyse(frame, poses, message):
    store = TrackStore()
    store.add(2, Poses.empty())
    with pytest.raises(ValueError, match=message):
        store.add(frame, poses)


# ------------------------------------------------------------------------------- smoothing


def best_shift(smoothed: np.ndarray, true: np.ndarray) -> int:
    """The shift (frames) of the smoothed series that correlates best with the truth (detrended)."""
    t = np.arange(len(true))

    def detrended(a):
        flat = a.reshape(len(a), -1)
        return flat - np.polynomial.polynomial.polyval(t, np.polynomial.polynomial.polyfit(t, flat, 1)).T

    s, r = detrended(smoothed)[20:-20], detrended(true)
    return max(range(-5, 6), key=lambda shift: float((s * r[20 + shift : len(r) - 20 + shift]).sum()))


def test_a_noisy_walk_jitters_three_times_less_with_no_lag():
    frames = range(300)
    person = Person(walk(200, 400, 80, sway=25), frames, one(1))
    analysis = analyse(store_of([person], 300, sigma=3.0), FPS)
    raw = store_of([person], 300, sigma=3.0).track(1).keypoints  # the same noise (same seed)
    smoothed, true = series(analysis, 1, frames), truth(person, frames)
    assert rms(raw - true) / rms(smoothed - true) >= 3.0
    assert best_shift(smoothed, true) == 0
    second = np.abs(np.diff(smoothed, 2, axis=0)).mean()
    assert second <= np.abs(np.diff(raw, 2, axis=0)).mean() / 10


def step_series(at: int, size: float, sigma: float, frames: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    true = np.zeros((frames, K, 2)) + 300.0
    true[at:, :, 0] += size
    return true, true + rng.normal(0, sigma, true.shape)


def test_a_true_fast_step_is_followed_within_2_px_after_two_frames():
    true, noisy = step_series(at=60, size=80.0, sigma=0.5)
    smoothed, _ = smooth_series(noisy, np.full((120, K), 0.9), FPS)
    error = np.abs(smoothed - true).max(axis=(1, 2))
    assert error[62:].max() <= 2.0 and error[:58].max() <= 2.0


def test_a_fast_arm_swing_keeps_most_of_its_amplitude():
    t = np.arange(300) / FPS
    true = np.zeros((300, K, 2)) + 300.0
    true[:, :, 0] += 50 * np.sin(2 * np.pi * 2.0 * t)[:, None]  # 2 Hz, ±50 px
    noisy = true + np.random.default_rng(0).normal(0, 2.0, true.shape)
    smoothed, _ = smooth_series(noisy, np.full((300, K), 0.9), FPS)
    swing = true[30:-30, :, 0] - 300
    assert ((smoothed[30:-30, :, 0] - 300) * swing).sum() / (swing**2).sum() >= 0.8


def test_unsure_keypoints_weigh_less():
    rng = np.random.default_rng(2)
    true = np.zeros((240, K, 2)) + 300.0
    unsure = rng.random((240, K)) < 0.3
    noisy = (
        true + rng.normal(0, 1.0, true.shape) + np.where(unsure[..., None], rng.normal(0, 8.0, true.shape), 0)
    )
    weighted, _ = smooth_series(noisy, np.where(unsure, 0.1, 0.9), FPS)
    unweighted, _ = smooth_series(noisy, np.full((240, K), 0.9), FPS)
    assert rms(weighted - true) <= 0.6 * rms(unweighted - true)


def test_one_frame_jumps_of_unsure_keypoints_are_rejected_and_counted():
    true, noisy = step_series(at=999, size=0, sigma=1.0)
    scores = np.full((120, K), 0.9)
    for frame, keypoint in ((30, 9), (70, 10), (71, 3)):
        noisy[frame, keypoint] += (60.0, -40.0)
        scores[frame, keypoint] = 0.2
    smoothed, rejected = smooth_series(noisy, scores, FPS)
    assert rejected == 3
    assert np.abs(smoothed - true).max() < 2.0


def test_a_sure_keypoint_that_jumps_for_one_frame_is_not_rejected():
    _, noisy = step_series(at=999, size=0, sigma=1.0)
    noisy[30, 9] += 60.0
    _, rejected = smooth_series(noisy, np.full((120, K), 0.9), FPS)
    assert rejected == 0


@pytest.mark.parametrize("length", [1, 2, 3, 5, 12])
def test_short_tracks_come_back_finite_and_near_their_keypoints(length):
    true, noisy = step_series(at=999, size=0, sigma=1.0, frames=length)
    smoothed, _ = smooth_series(noisy, np.full((length, K), 0.9), FPS)
    assert smoothed.shape == noisy.shape and np.isfinite(smoothed).all()
    if length <= 3:  # a quadratic passes through every point: nothing to smooth
        np.testing.assert_allclose(smoothed, noisy, atol=1e-3)
    else:
        assert rms(smoothed - true) < rms(noisy - true)


def test_track_ends_are_smoothed_without_an_edge_artefact():
    frames = range(90)
    person = Person(walk(200, 400, 120), frames, one(1))
    raw = store_of([person], 90, sigma=2.0, seed=3).track(1).keypoints
    smoothed = series(analyse(store_of([person], 90, sigma=2.0, seed=3), FPS), 1, frames)
    true = truth(person, frames)
    for ends in (slice(0, 4), slice(-4, None)):
        assert rms(smoothed[ends] - true[ends]) <= rms(raw[ends] - true[ends])


def test_missing_keypoints_stay_missing_and_leave_their_neighbours_smooth():
    _, noisy = step_series(at=999, size=0, sigma=2.0)
    noisy[40:44, 5] = np.nan
    smoothed, _ = smooth_series(noisy, np.full((120, K), 0.9), FPS)
    assert (
        np.isnan(smoothed[40:44, 5]).all() and np.isfinite(np.delete(smoothed, slice(40, 44), axis=0)).all()
    )
    assert (
        rms(smoothed[:, 5][np.isfinite(smoothed[:, 5, 0])] - 300)
        < rms(noisy[:, 5][np.isfinite(noisy[:, 5, 0])] - 300) / 2
    )


def test_a_long_track_smoothed_in_blocks_equals_one_pass(monkeypatch):
    _, noisy = step_series(at=150, size=40.0, sigma=2.0, frames=400)
    scores = np.random.default_rng(1).uniform(0.2, 1.0, (400, K))
    whole, _ = smooth_series(noisy, scores, FPS)
    monkeypatch.setattr(offline_smooth, "_BLOCK", 64)
    np.testing.assert_allclose(smooth_series(noisy, scores, FPS)[0], whole, atol=1e-3)


# ------------------------------------------------------------------------------- gaps


def test_short_gaps_are_filled_and_marked_longer_ones_are_not():
    person = Person(walk(200, 400, 90), [*range(20), *range(23, 40), *range(50, 60)], one(1))
    analysis = analyse(store_of([person], 60), FPS, AnalysisSettings(fill_gaps=5))
    marks = {f: analysis.poses_at(f).interpolated.tolist() for f in range(60)}
    assert [f for f, m in marks.items() if m == [True]] == [20, 21, 22]
    assert all(marks[f] == [] for f in range(40, 50)) and all(marks[f] == [False] for f in range(23, 40))
    filled = series(analysis, 1, range(20, 23))
    assert np.abs(filled - truth(person, range(20, 23))).max() < 1.0  # a straight walk: exact
    assert analysis.summary()["interpolated"] == 3


def test_fill_gaps_interpolates_every_column_between_the_two_sightings():
    track = Track(2, np.array([10, 14]), np.array([[[0, 0]] * K, [[8, 4]] * K], np.float32),
                  np.array([[0.2] * K, [0.6] * K], np.float32), np.array([[0, 0, 10, 10], [4, 0, 14, 10]], np.float32),
                  np.array([0.5, 0.9], np.float32), np.zeros(2, bool))  # fmt: skip
    filled = fill_gaps(track, max_gap=3)
    assert filled.frames.tolist() == [10, 11, 12, 13, 14]
    assert filled.interpolated.tolist() == [False, True, True, True, False]
    np.testing.assert_allclose(filled.keypoints[2, 0], [4, 2])
    np.testing.assert_allclose(filled.scores[1, 0], 0.3)
    np.testing.assert_allclose(filled.boxes[3], [3, 0, 13, 10])
    assert fill_gaps(track, max_gap=2) is track


# ------------------------------------------------------------------------------- joining


def test_a_person_occluded_for_one_second_keeps_one_id():
    walker = walk(100, 400, 150)
    person = Person(walker, [*range(60), *range(90, 150)], lambda f: 1 if f < 60 else 2)
    other = Person(walk(1100, 380, -40), range(150), one(3))
    analysis = analyse(store_of([person, other], 150, sigma=1.0), FPS)
    assert analysis.joining.mapping == {1: 1, 2: 1, 3: 3} and analysis.joining.joins == 1
    assert analysis.poses_at(120).poses.track_ids.tolist() == [1, 3]


def test_two_people_who_cross_keep_their_own_ids():
    # Both lost where they cross (frames 45-60), then found again under new ids.
    right, left = walk(200, 400, 150), walk(700, 410, -150)
    a = Person(right, [*range(45), *range(60, 120)], lambda f: 1 if f < 45 else 4)
    b = Person(left, [*range(45), *range(60, 120)], lambda f: 2 if f < 45 else 3)
    joining = join_tracklets(store_of([a, b], 120, sigma=1.0), FPS)
    assert joining.mapping == {1: 1, 2: 2, 3: 2, 4: 1}


def test_someone_else_walking_off_where_one_left_is_not_joined():
    leaving = Person(walk(600, 400, 150), range(40), one(1))
    coming = Person(walk(900, 400, -150), range(55, 100), one(2))  # the other way
    taller = Person(walk(200, 400, 90), range(40), one(3))
    bigger = Person(walk(200 + 90 * 45 / FPS, 400, 90), range(45, 100), one(4), height=1.6 * HEIGHT)
    assert join_tracklets(store_of([leaving, coming, taller, bigger], 100), FPS).joins == 0


def test_nobody_is_joined_across_more_than_the_longest_gap():
    person = Person(walk(200, 400, 30), [*range(30), *range(150, 180)], lambda f: 1 if f < 30 else 2)
    store = store_of([person], 180)
    assert join_tracklets(store, FPS, JoinSettings(max_gap_s=3.0)).joins == 0
    assert join_tracklets(store, FPS, JoinSettings(max_gap_s=5.0)).mapping == {1: 1, 2: 1}


def test_the_joins_are_chosen_together_not_first_come_first_served():
    # Costs: 1->3 0.08, 1->4 0.35, 2->3 0.00, 2->4 0.11. Start 3 comes first and fits end 2 best,
    # so joining greedily in time order gives 3 to 2 and 4 to 1 (0.35 in all); together, 1->3 and
    # 2->4 cost 0.19.
    one_end = Person(walk(400, 400, 60), range(30), one(1))
    two_end = Person(walk(470, 400, 60), range(30), one(2))
    three = Person(walk(465, 400, 60), range(40, 80), one(3))
    four = Person(walk(560, 400, 60), range(45, 80), one(4))
    mapping = join_tracklets(store_of([one_end, two_end, three, four], 80), FPS).mapping
    assert mapping == {1: 1, 2: 2, 3: 1, 4: 2}


def test_bytetrack_ids_split_by_an_occlusion_are_joined_into_one():
    person = Person(walk(150, 380, 120), range(150), one(0))
    hidden = range(50, 95)  # 1.5 s: longer than ByteTrack keeps a lost track
    other = Person(walk(1000, 360, -60), range(150), one(0))
    stage, store = TrackingStage(PersonTracker(FPS)), TrackStore()
    rng = np.random.default_rng(0)
    for frame in range(150):
        present = [p for p in (person, other) if not (p is person and frame in hidden)]
        boxes, ids = stage.boxes(
            Detections(np.array([p.box(frame) for p in present]), [0.9] * len(present)), frame / FPS
        )
        owners = [min(present, key=lambda p: np.abs(p.box(frame) - box).sum()) for box in boxes.boxes]
        keypoints = np.array([p.keypoints(frame) + rng.normal(0, 1.0, (K, 2)) for p in owners]).reshape(
            -1, K, 2
        )
        poses = Poses(keypoints, np.full((len(owners), K), 0.9), boxes.boxes, boxes.scores, track_ids=ids)
        stage.poses(poses, frame / FPS)
        store.add(frame, poses)
    assert len(store.track_ids) == 3  # ByteTrack gave the person a second id
    analysis = analyse(store, FPS)
    assert analysis.joining.joins == 1 and len(set(analysis.joining.mapping.values())) == 2


# ------------------------------------------------------------------------------- analyse


def test_every_frame_answers_even_the_empty_ones_and_ids_come_in_order():
    people = [
        Person(walk(200, 400, 60), range(10, 50), one(5)),
        Person(walk(800, 400, -60), range(30), one(2)),
    ]
    analysis = analyse(store_of(people, 60, sigma=1.0), FPS)
    assert analysis.frames == 60
    assert [analysis.poses_at(f).poses.track_ids.tolist() for f in (0, 20, 55)] == [[2], [2, 5], []]
    assert analysis.poses_at(55).poses.keypoints.shape == (0, K, 2)
    with pytest.raises(IndexError):
        analysis.poses_at(60)


def test_nothing_asked_for_gives_the_stored_keypoints_back():
    person = Person(walk(200, 400, 60), [*range(10), *range(12, 20)], one(1))
    store = store_of([person], 20, sigma=2.0)
    analysis = analyse(store, FPS, AnalysisSettings(join=None, fill_gaps=0, smooth=None))
    np.testing.assert_array_equal(series(analysis, 1, [*range(10), *range(12, 20)]), store.track(1).keypoints)
    assert analysis.poses_at(10).poses.track_ids.tolist() == []


def test_smoothing_settings_are_checked():
    with pytest.raises(ValueError):
        SmoothSettings(window_s=0)
    with pytest.raises(ValueError):
        JoinSettings(velocity=-1)
