"""Names a package imports only when first asked for (so ``import vitpose_live`` loads no torch,
and ``vitpose_live.sources`` no OpenCV or PyAV until a source is opened)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def on_first_use(package: str, table: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``name`` from the module ``table[name]`` (relative
    to ``package``) the first time it is asked for, and keeps it in ``namespace``."""

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name], package), name)
        namespace[name] = value
        return value

    return __getattr__
