"""The one place that decides which device and dtype the models run on."""

from __future__ import annotations

from dataclasses import dataclass

import torch

_DTYPE_NAMES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}


@dataclass(frozen=True)
class Placement:
    """Where a model runs and in which floating point type."""

    device: torch.device
    dtype: torch.dtype

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then MPS, then CPU; anything else is parsed as a torch device."""
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available on this machine")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} was asked for but MPS is not available on this machine")
    return resolved


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``"auto"`` is float16 on CUDA and float32 elsewhere; names like fp16/bf16/fp32 are accepted."""
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        name = str(dtype).strip().lower().removeprefix("torch.")
        if name in ("", "auto"):
            return torch.float16 if device.type == "cuda" else torch.float32
        if name not in _DTYPE_NAMES:
            raise ValueError(f"unknown dtype {dtype!r}: use auto, fp32, fp16 or bf16")
        resolved = _DTYPE_NAMES[name]
    if not resolved.is_floating_point:
        raise ValueError(f"dtype {dtype!r} is not a floating point type")
    return resolved


def resolve(device: str | torch.device = "auto", dtype: str | torch.dtype = "auto") -> Placement:
    """Decide device and dtype together, the way every model in the package does."""
    resolved = resolve_device(device)
    return Placement(resolved, resolve_dtype(dtype, resolved))
