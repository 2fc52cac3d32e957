"""Collections on a local 2-CPU Ray: the same statuses and keypoints as on this machine alone, and
an input whose worker dies half-way is finished by another worker, once, with nothing left over."""

import numpy as np
import pytest
from support.collections import (
    SMALL,
    by_source,
    collection_args,
    make_collection,
    output_files,
    read_manifest,
)
from support.media import make_clip, probe

from vitpose_live.apps.cluster import CRASH_ONCE_ENV
from vitpose_live.outputs.records import read_keypoints_jsonl

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A 2-CPU Ray whose workers die once mid-input after :func:`arm_the_crash` (they inherit
    the environment it starts with)."""
    marker = tmp_path_factory.mktemp("crash") / "crashed"
    marker.touch()  # disarmed: only a worker that creates the file dies
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CRASH_ONCE_ENV, str(marker))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield marker
    ray.shutdown()


def same_keypoints(a, b) -> bool:
    """Frame by frame, the same persons within the 0.01 px the files are rounded to."""
    header_a, frames_a = read_keypoints_jsonl(a)
    header_b, frames_b = read_keypoints_jsonl(b)
    assert header_a == header_b and len(frames_a) == len(frames_b) > 0
    for x, y in zip(frames_a, frames_b):
        assert len(x["persons"]) == len(y["persons"])
        for p, q in zip(x["persons"], y["persons"]):
            assert np.allclose(p["keypoints"], q["keypoints"], atol=0.011) and np.allclose(p["box"], q["box"], atol=0.011)
    return True


def test_ray_gives_the_same_statuses_and_keypoints_as_the_local_run(run_cli, tmp_path, local_ray):
    source = make_collection(tmp_path / "in")
    code, _ = run_cli(*collection_args(source, tmp_path / "local", "--no-video"))
    ray_code, err = run_cli(*collection_args(source, tmp_path / "ray", "--no-video", "--ray", "--workers", 2))
    assert ray_code == code == 1 and "3 input(s) ok, 0 skipped, 1 failed" in err
    local, on_ray = (by_source(read_manifest(tmp_path / name)) for name in ("local", "ray"))
    for name, entry in local.items():
        assert {k: on_ray[name][k] for k in ("status", "frames", "error")} == {k: entry[k] for k in ("status", "frames", "error")}
    assert set(output_files(tmp_path / "ray")) == set(output_files(tmp_path / "local"))
    for name in output_files(tmp_path / "local"):
        assert same_keypoints(tmp_path / "local" / name, tmp_path / "ray" / name)


def test_an_input_whose_worker_dies_half_way_is_retried_on_another_worker_and_finished(
        run_cli, tmp_path, local_ray):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    for name in ("1.mp4", "2.mp4"):
        make_clip(source / name, frames=12, audio=False, **SMALL)
    local_ray.unlink()  # armed: the first worker to start an input dies half-way through it
    code, err = run_cli(*collection_args(source, out, "--ray", "--workers", 2))
    assert code == 0, err
    assert local_ray.exists()
    entries = read_manifest(out)
    assert sorted((e["source"], e["status"]) for e in entries) == [("1.mp4", "ok"), ("2.mp4", "ok")]  # once each
    assert sorted(e["attempts"] for e in entries) == [1, 2]
    assert set(output_files(out)) == {"1.mp4", "1.jsonl", "2.mp4", "2.jsonl"}  # no partial file left
    for name in ("1", "2"):
        assert probe(out / f"{name}.mp4")["frames"] == 12 and len(read_keypoints_jsonl(out / f"{name}.jsonl")[1]) == 12
