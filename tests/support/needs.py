"""Tests that need a tool the machine may lack (Xvfb, Chromium, Playwright): on a developer's
machine they skip with the reason; under ``.ci/run`` (``VITPOSE_REQUIRE_DISPLAY=1``) they fail,
so CI cannot go green without running them."""

from __future__ import annotations

import os

import pytest

REQUIRED = os.environ.get("VITPOSE_REQUIRE_DISPLAY") == "1"


def need(available: bool, reason: str, *, module: bool = False) -> None:
    """Go on when ``available``; otherwise skip (fail when ``VITPOSE_REQUIRE_DISPLAY=1``)."""
    if available:
        return
    if REQUIRED:
        pytest.fail(f"{reason}, and VITPOSE_REQUIRE_DISPLAY=1 says this test must run", pytrace=False)
    pytest.skip(reason, allow_module_level=module)
