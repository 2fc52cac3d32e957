"""Soak: memory, threads and files stay flat over a long run; the verdict sees a leak.

Rows of the README's "Reliability" table (split out of the former tests/apps/test_reliability.py).
Every CLI run ends either with exit 0 and outputs that play, or with exit 2, one line on stderr
and no output file.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from support.reliability import REPO

# --- soak ----------------------------------------------------------------------------------------


def load_soak():
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import soak
    finally:
        sys.path.remove(str(REPO / "bench"))
    return soak


SOAK_WARMUP, SOAK_FITTED = 300, 2000  # processed frames: left out, then fitted


@pytest.mark.parametrize("policy, frames", [("fifo", SOAK_WARMUP + SOAK_FITTED), ("latest", 400)])
def test_a_soak_keeps_memory_threads_and_files_flat_and_the_counts_consistent(
    pose_model, detector_model, policy, frames
):
    """``bench/soak.py`` in small (10,000 frames there; bench/results/soak-*.json). FIFO processes
    every frame, so its RSS slope is fitted over 2,000 frames after the warm-up: at most 4 KiB a frame."""
    soak = load_soak()
    report = soak.soak(frames, policy=policy, width=160, height=120, warmup=SOAK_WARMUP, pose_model=pose_model,
                       detector_model=detector_model)  # fmt: skip

    print(soak.table(report))  # shown with -s
    assert report["ok"], report["problems"]
    assert report["frames_in"] == frames == report["frames_processed"] + report["frames_dropped"]
    if policy == "fifo":
        assert report["frames_dropped"] == 0 and report["persons_per_processed_frame"] > 0
        assert report["rss_mb"]["slope_fitted_frames"] == SOAK_FITTED
        assert report["rss_mb"]["slope_bytes_per_frame"] <= soak.RSS_SLOPE_LIMIT == 4096


@pytest.mark.parametrize("leak, seen", [(0, False), (10_000, True), (30_000, True)])
def test_the_soak_verdict_sees_a_leak_of_ten_kb_per_frame_through_allocator_noise(leak, seen):
    """RSS samples as a run gives them: 500 MiB, and 0-2 arenas of 2 MiB that the allocator takes
    and returns at random (up to 4 MiB of noise: at worst 2 kB a frame of slope), plus ``leak``
    bytes per frame."""
    soak = load_soak()
    rng = np.random.default_rng(1)
    arenas = np.clip(np.cumsum(rng.choice([-1, 0, 1], size=SOAK_WARMUP + SOAK_FITTED, p=[0.02, 0.96, 0.02])), 0, 2)
    rss = [int(500 * 2**20 + held * 2**21 + leak * i) for i, held in enumerate(arenas)]

    slope, fitted = soak.rss_slope(rss, SOAK_WARMUP)

    assert fitted == SOAK_FITTED
    assert (slope > soak.RSS_SLOPE_LIMIT) is seen, slope
