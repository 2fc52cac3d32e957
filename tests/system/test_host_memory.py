"""The programs keep freed host memory for reuse: a frame-sized buffer allocated again and again
is not faulted in from the kernel each time (vitpose_live/system/host_memory.py)."""

import os
import subprocess
import sys
import textwrap

import pytest

from vitpose_live.system import host_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# Three 1080p RGB frames (6 MiB each) alive at once, written and freed, 40 times; prints whether
# the setting took and how many pages were faulted in meanwhile.
_CYCLES = textwrap.dedent(
    """
    import resource
    import numpy as np
    from vitpose_live.system.host_memory import keep_freed_memory
    applied = keep_freed_memory()
    np.ones((1080, 1920, 3), np.uint8)  # the first one is faulted in either way
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(40):
        held = [np.ones((1080, 1920, 3), np.uint8) for _ in range(3)]
        del held
    print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def faults(**environment) -> tuple[bool, int]:
    env = {**os.environ, **environment}
    out = subprocess.run([sys.executable, "-c", _CYCLES], env=env, capture_output=True, text=True, check=True)
    applied, count = out.stdout.split()
    return applied == "True", int(count)


def test_a_freed_frame_buffer_is_reused_instead_of_faulted_in_again():
    applied, kept = faults()
    switched_off, returned = faults(**{host_memory.ENVIRONMENT_SWITCH: "0"})
    assert applied and not switched_off
    pages_per_frame = 1080 * 1920 * 3 // 4096
    assert returned > 20 * pages_per_frame  # the default: every frame mapped and zeroed afresh
    assert kept < 2 * pages_per_frame  # kept: the same pages, faulted in once


def test_the_setting_is_applied_once_per_process(monkeypatch):
    monkeypatch.setattr(host_memory, "_applied", None)
    calls = []
    monkeypatch.setattr(host_memory, "_apply", lambda: calls.append(1) or True)
    assert host_memory.keep_freed_memory() and host_memory.keep_freed_memory()
    assert calls == [1]


def test_the_command_line_keeps_freed_memory_before_anything_else(monkeypatch):
    from vitpose_live.apps import cli

    calls = []
    monkeypatch.setattr(host_memory, "keep_freed_memory", lambda: calls.append("kept"))
    monkeypatch.setattr(cli, "stop_on_sigterm", lambda: None)
    monkeypatch.setattr(sys, "argv", ["vitpose-live", "--no-such-flag"])
    with pytest.raises(SystemExit):
        cli.console_main()
    assert calls == ["kept"]
