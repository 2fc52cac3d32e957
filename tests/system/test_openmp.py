"""OpenMP's wait policy is decided once, by the faces, before torch loads; a value the user set wins."""

import os
import subprocess
import sys

from vitpose_live.system.openmp import idle_workers_sleep

SHOW = "import os, sys, vitpose_live.apps; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"


def policy_after_importing_the_faces(**env) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    done = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True, env=clean, check=True)
    return done.stdout.split()


def test_importing_any_face_makes_idle_openmp_workers_sleep_before_torch_loads():
    assert policy_after_importing_the_faces() == ["PASSIVE", "False"]


def test_a_wait_policy_the_user_set_is_kept():
    assert policy_after_importing_the_faces(OMP_WAIT_POLICY="ACTIVE") == ["ACTIVE", "False"]


def test_once_torch_is_loaded_the_policy_is_not_set_any_more(monkeypatch):
    import torch  # noqa: F401 - its pools have read the environment

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    idle_workers_sleep()
    assert "OMP_WAIT_POLICY" not in os.environ
