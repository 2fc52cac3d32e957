"""Models that do not load: checkpoint directories with corrupt files.

Rows of the README's "Reliability" table (split out of the former tests/apps/test_reliability.py).
Every CLI run ends either with exit 0 and outputs that play, or with exit 2, one line on stderr
and no output file.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from support.reliability import assert_one_clear_line

# --- models that do not load --------------------------------------------------------------------


CORRUPT_CHECKPOINTS = [
    ("garbage weights", lambda d: (d / "model.safetensors").write_bytes(np.random.default_rng(2).bytes(4096))),
    ("truncated weights", lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:3000])),
    ("empty weights", lambda d: (d / "model.safetensors").write_bytes(b"")),
    ("config not json", lambda d: (d / "config.json").write_text("{not json")),
]  # fmt: skip


@pytest.mark.parametrize("what, spoil", CORRUPT_CHECKPOINTS, ids=[row[0] for row in CORRUPT_CHECKPOINTS])
@pytest.mark.parametrize("role", ["pose", "detector"])
def test_a_checkpoint_directory_with_corrupt_files_is_a_model_load_error_naming_it(
    tmp_path, pose_dir, detector_dir, role, what, spoil
):
    from vitpose_live.models.detector import PersonDetector
    from vitpose_live.models.loading import ModelLoadError
    from vitpose_live.models.pose import PoseEstimator

    checkpoint = tmp_path / f"{role}-checkpoint"
    shutil.copytree(pose_dir if role == "pose" else detector_dir, checkpoint)
    spoil(checkpoint)
    load, flag = (PoseEstimator, "--model") if role == "pose" else (PersonDetector, "--detector")

    with pytest.raises(ModelLoadError) as caught:
        load(str(checkpoint), device="cpu")

    message = str(caught.value)
    assert str(checkpoint) in message and flag in message and "\n" not in message


def test_a_corrupt_checkpoint_through_the_cli_is_one_line(run_cli, tmp_path, pose_dir, small_clips):
    checkpoint = tmp_path / "vitpose"
    shutil.copytree(pose_dir, checkpoint)
    (checkpoint / "model.safetensors").write_bytes(np.random.default_rng(3).bytes(4096))
    out = tmp_path / "out.mp4"

    code, err = run_cli("--source", small_clips[".mp4"], "--output", out, "--model", checkpoint)

    assert code == 2
    assert_one_clear_line(err, str(checkpoint), "--model")
    assert not out.exists()
