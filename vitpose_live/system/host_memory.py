"""Keep freed host memory for reuse: a process setting the programs (command line, web app, Ray
workers) make at start, not the library (a process that embeds vitpose_live keeps its own).

glibc's ``malloc`` hands every large block (a decoded frame, a detector activation: megabytes)
straight back to the system when it is freed and maps fresh pages for the next one, so the
kernel zeroes and faults in every page of every such buffer again, frame after frame. On the
2-core development machine that was about a fifth of the tiny RT-DETR's forward pass on a CPU
(bench/RESULTS.md). Two ``mallopt`` settings keep blocks up to 32 MiB (glibc's ceiling for the
setting) in the heap and the heap from shrinking until 512 MiB lie free at its top; memory in
use is unchanged, freed memory is reused instead of returned.

Set ``VITPOSE_KEEP_FREED_MEMORY=0`` to leave the allocator as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

ENVIRONMENT_SWITCH = "VITPOSE_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # the largest value glibc accepts (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 512 * 1024 * 1024

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Apply the settings once per process (later calls return the first answer): True when they
    took effect, False off glibc or when switched off by the environment."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get(ENVIRONMENT_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
