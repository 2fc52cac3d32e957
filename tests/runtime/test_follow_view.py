"""The framed view a window or page shows instead of the full frame: the followed person centred
at the follow size, the full frame when nobody is followed, and clicks on it mapped back."""

from __future__ import annotations

import numpy as np
from test_following import tracked

from vitpose_live.runtime.follow_view import FollowView
from vitpose_live.runtime.following import FollowOptions, Following
from vitpose_live.types import Frame

WIDTH, HEIGHT = 320, 240
A_BOX, B_BOX = [100, 40, 140, 200], [150, 40, 190, 200]  # side by side, both inside A's framing


def picture_with(box) -> np.ndarray:
    """A black frame with ``box`` painted white and its centre pixel red."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = 255
    image[(y1 + y2) // 2 - 2 : (y1 + y2) // 2 + 2, (x1 + x2) // 2 - 2 : (x1 + x2) // 2 + 2] = (255, 0, 0)
    return image


def test_with_nobody_followed_the_view_is_the_full_frame_unchanged():
    view = FollowView((90, 160))
    image = picture_with(A_BOX)
    assert view.show(image, None, 0.0, following=False) is image
    assert view.to_source(12, 34) == (12, 34)


def test_a_still_followed_person_is_centred_at_the_view_size():
    view = FollowView((90, 160))
    image = picture_with(A_BOX)
    for i in range(10):
        shown = view.show(image, np.array(A_BOX, np.float32), i / 30, following=True)
    assert shown.shape == (160, 90, 3)
    assert tuple(shown[80, 45]) == (255, 0, 0)  # the person's centre at the view's centre
    x, y = view.to_source(45, 80)
    assert abs(x - 120) < 2 and abs(y - 120) < 2


def test_a_click_on_the_framed_view_follows_the_person_under_it_in_the_frame():
    following = Following(FollowOptions("largest", clicks=True, size=(160, 240)), live=True)
    following.viewing = True
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    poses = tracked([[90, 30, 140, 210], B_BOX], [1, 2])  # 1 is the largest
    for i in range(5):
        followed = following.frame(Frame(image, i, i / 30, 0.0), poses, i / 30, 0.3)
        shown = following.shown(image, followed, i / 30, i)
    assert followed.followed == 1 and shown.shape == (240, 160, 3)
    window = following.view.window
    scale = window.height / 240
    b_centre = ((B_BOX[0] + B_BOX[2]) / 2, (B_BOX[1] + B_BOX[3]) / 2)
    u, v = ((b_centre[0] - window.box[0]) / scale, (b_centre[1] - window.box[1]) / scale)
    assert 0 <= u < 160 and 0 <= v < 240  # B is in the framed view, away from where B is in the frame
    assert abs(u - b_centre[0]) > 20
    assert following.pick_at(u, v) == 2


def test_the_view_is_the_full_frame_again_once_nobody_is_followed():
    following = Following(FollowOptions("largest", clicks=True, size=(160, 240)), live=True)
    following.viewing = True
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    poses = tracked([A_BOX], [1])
    followed = following.frame(Frame(image, 0, 0.0, 0.0), poses, 0.0, 0.3)
    assert following.shown(image, followed, 0.0, 0).shape == (240, 160, 3)
    following.follower.release()
    followed = following.frame(Frame(image, 1, 0.04, 0.0), poses, 0.04, 0.3)
    assert following.shown(image, followed, 0.04, 1) is image
    following.viewing = False
    following.follower.pick_at(120, 120)
    followed = following.frame(Frame(image, 2, 0.08, 0.0), poses, 0.08, 0.3)
    assert followed.followed == 1 and following.shown(image, followed, 0.08, 2) is image  # the view is off
