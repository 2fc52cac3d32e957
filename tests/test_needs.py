"""Tests needing Xvfb or Chromium skip on a developer's machine but fail under .ci/run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

A_TEST_WITHOUT_ITS_TOOL = """
from support.needs import need

def test_the_window():
    need(False, "needs Xvfb")
"""


@pytest.mark.parametrize("required, outcome", [(None, "1 skipped"), ("1", "1 failed")])
def test_a_missing_tool_skips_the_test_unless_ci_requires_it(tmp_path, required, outcome):
    (tmp_path / "test_window.py").write_text(A_TEST_WITHOUT_ITS_TOOL)
    env = {key: value for key, value in os.environ.items() if key != "VITPOSE_REQUIRE_DISPLAY"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    if required:
        env["VITPOSE_REQUIRE_DISPLAY"] = required

    child = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(tmp_path)],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip

    assert outcome in child.stdout, child.stdout
    assert "needs Xvfb" in child.stdout


def test_ci_requires_the_window_and_browser_tests_and_fails_when_it_cannot_install_their_tools():
    script = (TESTS.parent / ".ci" / "run").read_text()
    assert "export VITPOSE_REQUIRE_DISPLAY=1" in script
    assert "warning" not in script and script.count("exit 1") >= 2
