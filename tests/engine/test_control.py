"""The latency controller: detect less often while latency is over the target, more often when
well under, within bounds, judging each setting on frames it produced."""

from types import SimpleNamespace

import pytest

from vitpose_live.engine.control import LatencyController


def feed(controller, engine, latency_ms, frames):
    for _ in range(frames):
        controller.update(engine, latency_ms)


def test_over_the_target_the_detector_runs_less_often_one_step_per_window():
    engine = SimpleNamespace(det_every=3)
    controller = LatencyController(target_ms=100, window=10)
    feed(controller, engine, 180, 9)
    assert engine.det_every == 3  # not a full window yet
    feed(controller, engine, 180, 1)
    assert engine.det_every == 4
    feed(controller, engine, 180, 25)
    assert engine.det_every == 6 and controller.changes == [(10, 4), (20, 5), (30, 6)]


def test_well_under_the_target_it_runs_more_often_but_near_the_target_it_holds():
    engine = SimpleNamespace(det_every=5)
    controller = LatencyController(target_ms=100, window=10)
    feed(controller, engine, 80, 40)  # under the target, but not well under: hold
    assert engine.det_every == 5 and controller.changes == []
    feed(controller, engine, 30, 20)
    assert engine.det_every == 3


def test_the_interval_stays_within_its_bounds():
    engine = SimpleNamespace(det_every=2)
    controller = LatencyController(target_ms=50, window=5, min_every=1, max_every=4)
    feed(controller, engine, 500, 100)
    assert engine.det_every == 4
    feed(controller, engine, 1, 100)
    assert engine.det_every == 1
    assert controller.report(engine)["det_every"] == 1


@pytest.mark.parametrize("kwargs", [{"target_ms": 0}, {"target_ms": 50, "min_every": 3, "max_every": 2}])
def test_impossible_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        LatencyController(**kwargs)
