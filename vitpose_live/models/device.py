"""The one place that decides which device and dtype the models run on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..defaults import AUTO, auto_means_cuda
from ..errors import VitposeError

# What torch raises when an allocation fails on the device (torch.cuda.OutOfMemoryError is the same class).
OUT_OF_MEMORY = (torch.OutOfMemoryError,)


class DeviceMemoryError(VitposeError, RuntimeError):
    """The device ran out of memory even for one item at a time (one line for the user)."""


def back_off(device: torch.device, failed: int, *, what: str, items: str, flag: str) -> int:
    """The batch size to try after ``failed`` items at once ran out of memory: half of it (the
    device's cached blocks freed first); at one item, :class:`DeviceMemoryError`."""
    if failed <= 1:
        raise DeviceMemoryError(
            f"out of memory on {device} with a single {items} in the {what}: "
            f"try a smaller {flag}, --dtype fp16, or --device cpu"
        )
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return failed // 2

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
    if name in ("", AUTO):
        if auto_means_cuda(name):
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


def decode_threads(device: str | torch.device = "auto") -> int | None:
    """Threads for decoding a video file next to models on ``device``: FFmpeg's choice (None) when
    they run on a GPU; on the CPU, whose cores the models keep busy, one: decode and the conversion
    to RGB on the reading thread. FFmpeg's own threads only add work there (on 2 cores 0.4-0.6 ms
    more CPU per 1080p frame, and a decode stage that waits on threads the models hold,
    bench/RESULTS.md)."""
    return 1 if resolve_device(device).type == "cpu" else None


def background_io(device: str | torch.device = "auto", *, live: bool) -> bool:
    """Whether a run's decode and encode threads give way to the models (:mod:`.priority`): for
    files when the models run on the CPU. A live source keeps its priority: its frames must not
    wait."""
    return not live and resolve_device(device).type == "cpu"


def host_to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor on ``device`` without making the host wait: on CUDA the copy goes through pinned
    memory and is queued (a plain copy from pageable memory synchronises the stream)."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def tensor_from_numpy(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor sharing ``array``'s memory; a read-only array (``np.asarray(pil_image)``,
    a memory map) is copied first, since torch warns that it could write to it otherwise."""
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


def image_to_device(image, placement: Placement) -> torch.Tensor:
    """An image as an HxWx3 uint8 tensor on ``placement.device``: from an HxW(x3|x4) uint8 numpy
    array (gray is repeated, alpha dropped; pinned for a non-blocking CUDA copy) or a uint8 torch
    tensor in HWC or CHW layout."""
    if isinstance(image, torch.Tensor):
        tensor = image
        if tensor.ndim == 3 and tensor.shape[0] == 3 and tensor.shape[-1] != 3:
            tensor = tensor.permute(1, 2, 0)
    else:
        array = np.asarray(image)
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        if array.ndim != 3 or array.shape[2] not in (3, 4):
            raise ValueError(f"image must be HxWx3 RGB, got shape {array.shape}")
        tensor = tensor_from_numpy(np.ascontiguousarray(array[:, :, :3]))
        if placement.is_cuda:
            tensor = tensor.pin_memory()
    if tensor.dtype != torch.uint8:
        raise ValueError(f"image must be uint8, got {tensor.dtype}")
    return tensor.to(placement.device, non_blocking=True).contiguous()


def wide_float(device: torch.device) -> torch.dtype:
    """float64 for exact index and step maths, where the device has it (MPS has not)."""
    return torch.float32 if device.type == "mps" else torch.float64
