"""The joint-angle plot: a PNG of the size asked for, and a one-line hint without matplotlib."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from vitpose_live.angles import ANGLE_NAMES
from vitpose_live.plots import PlotError, plot_angles


def angles(frames: int = 90) -> tuple[np.ndarray, dict[str, list[float | None]]]:
    times = np.arange(frames) / 30.0
    series = {name: (90 + 60 * np.sin(times + i)).tolist() for i, name in enumerate(ANGLE_NAMES)}
    series["left_knee"][10:20] = [None] * 10  # unknown for a third of a second: a gap
    return times, series


@pytest.mark.parametrize("size", [(1200, 900), (640, 480), (333, 777)])
def test_the_plot_is_a_png_of_the_size_asked_for(tmp_path, size):
    times, series = angles()
    path = plot_angles(times, series, tmp_path / "angles.png", size=size, title="person 3")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == size


def test_the_plot_draws_both_sides_of_every_joint(tmp_path):
    times, series = angles()
    path = plot_angles(times, series, tmp_path / "angles.png", size=(800, 800))
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)
    for color in ((0x3C, 0xDC, 0x5A), (0xFF, 0x96, 0x1E)):  # left green, right orange
        assert (np.abs(pixels - color).sum(axis=1) < 30).sum() > 500


def test_series_and_times_must_be_as_long(tmp_path):
    with pytest.raises(ValueError, match="left_elbow: 3 angles but 4 times"):
        plot_angles([0, 1, 2, 3], {"left_elbow": [1, 2, 3]}, tmp_path / "a.png")
    with pytest.raises(PlotError, match="no joint angles"):
        plot_angles([0, 1], {}, tmp_path / "a.png")


def test_without_matplotlib_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    times, series = angles()
    with pytest.raises(PlotError) as error:
        plot_angles(times, series, tmp_path / "angles.png")
    assert error.value.one_line() == "plots need matplotlib: pip install 'vitpose-live[plot]'"
    assert not (tmp_path / "angles.png").exists()
