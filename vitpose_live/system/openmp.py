"""OpenMP, torch's CPU thread pools, for the whole process: decided before torch loads, here only.

Idle workers sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``), so that the threads which
decode, encode and send frames keep their cores while a model rests, and two models' pools do not
spin against each other (measured in bench/README.md). A value the user set wins.
"""

from __future__ import annotations

import os
import sys


def idle_workers_sleep() -> None:
    """Set the wait policy for OpenMP's pools unless the user did; a no-op once torch is loaded
    (its pools read the variable when they start), so the faces call this on import."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
