"""Host syncs counted without a GPU: the calls that make the host wait for the device when the
same code runs on CUDA, seen at torch's dispatcher on any device.

Counted: reads of a device value on the host (``.item()``, ``bool()``, ``int()``, ``.tolist()``,
``nonzero``, boolean-mask indexing, ``unique``, ...), and copies of host values into a tensor
(``t[i] = 5``, ``t.copy_(torch.tensor(...))``: on CUDA a copy from pageable memory, which
synchronises). Not seen on a CPU: ``.to("cuda")``/``.cpu()`` of whole tensors (no-ops there) and
``torch.tensor(data, device="cuda")``; ``bench/syncs.py`` on a GPU (torch's sync debug mode)
sees everything.
"""

from __future__ import annotations

import collections
import traceback
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
_READS = {
    aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default, aten._unique2.default,
    aten.unique_dim.default, aten.unique_consecutive.default, aten.repeat_interleave.Tensor, aten.equal.default,
    aten.is_nonzero.default,
}
_LIFTS = {aten.lift_fresh.default, aten.scalar_tensor.default}
_MASKED = {aten.index.Tensor, aten.index_put_.default, aten.index_put.default}


def _caller() -> str:
    frames = [f for f in traceback.extract_stack()[:-2] if "host_syncs.py" not in f.filename]
    inner = next((f for f in reversed(frames) if "/torch/" not in f.filename), frames[-1])
    return f"{Path(inner.filename).name}:{inner.lineno} {inner.line}"


class HostSyncs(TorchDispatchMode):
    """``with HostSyncs() as syncs: ...`` then ``syncs.total`` and ``syncs.places`` (a Counter of
    "file:line code")."""

    def __init__(self) -> None:
        super().__init__()
        self.places: collections.Counter = collections.Counter()
        self._lifted: dict[int, torch.Tensor] = {}  # id -> tensor (kept alive: ids stay unique)

    @property
    def total(self) -> int:
        return sum(self.places.values())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in _LIFTS:
            self._lifted[id(out)] = out
        elif func in _READS:
            self.places[f"read  {_caller()}"] += 1
        elif func in (aten.copy_.default, aten._to_copy.default):
            source = args[1] if func is aten.copy_.default else args[0]
            if id(source) in self._lifted:
                self.places[f"write {_caller()}"] += 1
        elif func in _MASKED:
            indices = args[1] if len(args) > 1 else ()
            if any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ()):
                self.places[f"read  {_caller()}"] += 1
        return out


def count(function) -> HostSyncs:
    """Run ``function()`` and return what it synced."""
    with HostSyncs() as syncs:
        function()
    return syncs
