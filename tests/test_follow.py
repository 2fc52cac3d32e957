"""Choosing and keeping the followed person, on scripted scenes of tracked boxes."""

from __future__ import annotations

import numpy as np
import pytest

from vitpose_live.follow import Follower, FollowError, parse_follow
from vitpose_live.tracking import PersonTracker
from vitpose_live.types import Detections, Poses

FPS = 30.0
IMAGE = (1280, 720)


def box(cx: float, cy: float = 360, w: float = 100, h: float = 300) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def feed(follower: Follower, frames) -> list[int | None]:
    """``frames``: per frame a dict track id -> box; the followed id of every frame."""
    out = []
    for index, persons in enumerate(frames):
        ids = list(persons)
        boxes = np.array([persons[i] for i in ids], np.float64).reshape(-1, 4)
        out.append(follower.update(ids, boxes, time=index / FPS, image_size=IMAGE))
    return out


# Three people: 1 small on the left, 2 large on the right, 3 medium in the middle; from frame 30
# on, 1 comes closer (grows past 2) and 2 walks to the centre.
def three(index: int) -> dict[int, list[float]]:
    grow = max(0, index - 30) * 5
    return {
        1: box(200, w=80 + grow, h=200 + grow),
        2: box(1000 - max(0, index - 30) * 10, w=140, h=400),
        3: box(660, w=110, h=320),
    }


@pytest.mark.parametrize(("mode", "expected"), [("largest", 2), ("center", 3), (1, 1), ("1", 1)])
def test_the_mode_picks_its_person_when_they_first_appear_and_keeps_their_track(mode, expected):
    followed = feed(Follower(mode), [{}] * 5 + [three(i) for i in range(90)])
    assert followed[:5] == [None] * 5  # nobody yet
    assert followed[5:] == [expected] * 90  # kept though 1 grows largest and 2 walks to the centre


def test_an_id_that_is_not_there_follows_nobody():
    assert feed(Follower(9), [three(i) for i in range(10)]) == [None] * 10


def test_the_followed_person_is_kept_through_a_detection_gap():
    frames = [three(i) for i in range(60)]
    for i in range(20, 35):  # half a second without person 2
        del frames[i][2]
    followed = feed(Follower("largest"), frames)
    assert followed[:20] == [2] * 20
    assert followed[20:35] == [None] * 15  # not someone else meanwhile
    assert followed[35:] == [2] * 25


def test_a_lost_track_is_continued_live_by_the_next_new_track_near_where_it_was_lost():
    # 2 walks right and is lost at frame 20; a far newcomer 7 appears at frame 25; the new
    # track 8 appears at frame 30 near 2's last place; 3, there from the start, walks to it.
    frames = []
    for i in range(60):
        persons = {3: box(300 + 12 * i)} if i < 40 else {3: box(780)}
        if i < 20:
            persons[2] = box(500 + 10 * i)
        if i >= 25:
            persons[7] = box(100)
        if i >= 30:
            persons[8] = box(720 + 5 * (i - 30))
        frames.append(persons)
    followed = feed(Follower(2), frames)
    assert followed[:20] == [2] * 20
    assert followed[20:30] == [None] * 10
    assert followed[30:] == [8] * 30


def test_no_new_track_near_enough_or_soon_enough_continues_it():
    far = [{2: box(500)}] * 10 + [{}] * 10 + [{8: box(1100)}] * 10  # 2 box heights away
    late = [{2: box(500)}] * 10 + [{}] * 70 + [{8: box(520)}] * 10  # 2.3 s later
    assert set(feed(Follower(2), far)[10:]) == {None}
    assert set(feed(Follower(2), late)[10:]) == {None}


def test_largest_chooses_again_once_the_person_is_lost_for_good_and_an_id_waits():
    frames = [{1: box(300, h=400), 2: box(900, h=200)}] * 10 + [{2: box(900, h=200)}] * 90
    largest = feed(Follower("largest"), frames)
    assert largest[:10] == [1] * 10
    assert largest[10:68] == [None] * 58  # within relink_seconds (2 s): still waiting for 1
    assert set(largest[72:]) == {2}
    assert set(feed(Follower(1), frames)[10:]) == {None}


def test_files_continue_a_track_through_the_joiners_mapping_only():
    # The joiner says track 7 is person 2 again, wherever it starts; 8, nearer, is someone else.
    frames = [{2: box(500)}] * 10 + [{}] * 20 + [{7: box(1100), 8: box(520)}] * 10
    followed = feed(Follower("largest", joined={2: 2, 7: 2, 8: 8}), frames)
    assert followed[:10] == [2] * 10
    assert followed[10:30] == [None] * 20
    assert followed[30:] == [7] * 10
    by_id = feed(Follower(7, joined={2: 2, 7: 2}), frames)  # an id names its person, all their tracks
    assert by_id == followed


def test_the_mode_keeps_one_person_through_a_real_tracker_and_a_long_occlusion():
    """PersonTracker gives 2's box a new id after an occlusion longer than its lost-track time;
    the follower takes the new track up."""
    tracker = PersonTracker(FPS, lost_track_seconds=1.0)
    follower = Follower("largest")
    followed = []
    for i in range(150):
        boxes = [box(200 + 2 * i, h=420)] if not 40 <= i < 90 else []  # 1.7 s behind something
        boxes.append(box(1000, h=250))
        dets = Detections(np.array(boxes, np.float32), np.full(len(boxes), 0.9, np.float32))
        tracked, ids = tracker.update(dets, i / FPS)
        followed.append(follower.update(ids, tracked.boxes, time=i / FPS))
    first, later = followed[0], followed[-1]
    assert first is not None and later is not None and first != later  # the tracker gave a new id
    assert set(followed[:40]) == {first}
    assert set(followed[40:90]) == {None}
    assert set(followed[90:]) == {later}


def keypoints_in(b: list[float]) -> np.ndarray:
    """17 keypoints on the box's vertical middle line."""
    x = (b[0] + b[2]) / 2
    return np.stack([np.full(17, x), np.linspace(b[1] + 10, b[3] - 10, 17)], axis=1)


def test_a_click_follows_the_person_clicked_and_release_follows_nobody():
    # 4 and 5 overlap; a click in the overlap goes to the one whose keypoints are nearer.
    persons = {4: box(400, w=200), 5: box(480, w=200), 6: box(1000)}
    ids = list(persons)
    boxes = np.array([persons[i] for i in ids])
    keypoints = np.stack([keypoints_in(persons[i]) for i in ids])
    scores = np.full((3, 17), 0.9)
    follower = Follower("largest")

    def frame(t):
        return follower.update(ids, boxes, keypoints, scores, time=t, image_size=IMAGE)

    assert frame(0.0) == 4  # largest: the first of the equals
    assert follower.pick_at(995, 300) == 6
    assert frame(0.1) == 6
    assert follower.pick_at(470, 360) == 5  # in both boxes, 10 px from 5's keypoints
    assert follower.pick_at(415, 360) == 4
    assert follower.pick_at(1240, 20) == 6  # outside every box: the nearest
    follower.release()
    assert frame(0.2) is None and frame(5.0) is None  # released: the mode does not choose again
    assert follower.pick_at(400, 300) == 4 and frame(5.1) == 4


def test_a_click_on_an_empty_frame_picks_nobody():
    follower = Follower(None)
    assert follower.pick_at(10, 10) is None
    assert follower.update([], np.zeros((0, 4)), time=0.0) is None
    assert follower.pick_at(10, 10) is None


@pytest.mark.parametrize(("text", "expected"), [("largest", "largest"), ("Center", "center"),
                                                ("centre", "center"), ("12", 12), (3, 3)])  # fmt: skip
def test_follow_values_are_an_id_or_a_mode(text, expected):
    assert parse_follow(text) == expected


@pytest.mark.parametrize("text", ["biggest", "-1", "1.5", ""])
def test_other_follow_values_are_refused_in_one_line(text):
    with pytest.raises(FollowError, match="--follow takes a track id") as error:
        parse_follow(text)
    assert "\n" not in error.value.one_line()


def test_center_needs_the_image_size():
    with pytest.raises(ValueError, match="image size"):
        Follower("center").update([1], np.array([box(100)]), time=0.0)


def test_tracked_poses_can_be_followed_and_untracked_ones_cannot():
    boxes = np.array([box(300, h=200), box(900, h=400)])
    keypoints = np.stack([keypoints_in(list(b)) for b in boxes])
    poses = Poses(keypoints, np.full((2, 17), 0.9), boxes, np.full(2, 0.9), track_ids=[5, 6])
    follower = Follower("largest")
    assert follower.update_poses(poses, 0.0, IMAGE) == 6
    assert follower.pick_at(300, 300) == 5
    with pytest.raises(ValueError, match="tracked poses"):
        follower.update_poses(poses.replace(track_ids=None), 0.1)
