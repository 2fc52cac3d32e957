"""DARK heatmap decoding: each keypoint's peak, refined by one Newton step on the log of the
Gaussian-blurred heatmap, as transformers' ``post_process_pose_estimation`` does it
(tests/test_pose.py proves the match), batched and without a Python loop over persons.

On a GPU it runs as tensor ops on the device (no host sync); on a CPU the same arithmetic runs
in NumPy, whose per-call cost on these small arrays is a fraction of torch's (about 1 ms less per
frame of 5 persons, bench/RESULTS.md). The two are equal bit for bit (tests/test_pose.py).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .device import host_to_device, wide_float

_DARK_KERNEL = 11
_DARK_SIGMA = 0.8


@functools.cache
def _gaussian_taps(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return host_to_device(torch.from_numpy(_TAPS).to(dtype), device)


# The 7 points DARK reads around a maximum, in the order: centre, x+1, x-1, y+1, y-1,
# (x+1,y+1), (x-1,y-1); and, for keypoints at (-1,-1), the padded corner they land on (x, y
# offsets from the map's far edge) and whether the step leaves the map into the previous one.
_NEIGHBOURS = np.array(
    [
        [0, 1, -1, 0, 0, 1, -1],  # dx
        [0, 0, 0, 1, -1, 1, -1],  # dy
        [0, 0, 1, 0, 0, 0, 1],  # corner at the last column
        [0, 0, 1, 0, 1, 0, 1],  # corner at the last row; also "from the previous map"
    ]
)
_TAPS = np.exp(-0.5 * (np.arange(-(_DARK_KERNEL // 2), _DARK_KERNEL // 2 + 1) / _DARK_SIGMA) ** 2)
_TAPS /= _TAPS.sum()  # float64


@functools.cache
def _neighbours(device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(host_to_device(torch.from_numpy(_NEIGHBOURS), device).unbind(0))


def _reflect(index, n: int):
    """scipy's 'reflect' boundary (the edge sample repeats: d c b a | a b c d | d c b a), for
    tensors and arrays alike."""
    index = index % (2 * n)  # Python's modulo, torch.remainder and np.mod agree: never negative
    return (2 * n - 1 - index) * (index >= n) + index * (index < n)


def _blurred_at(heatmaps: torch.Tensor, maps: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """The Gaussian-blurred heatmap value (σ 0.8, 11 taps, scipy 'reflect') at given points only.

    ``heatmaps`` (M,H,W) float32; ``maps``/``ys``/``xs`` index points. Like scipy, the first pass
    (along rows) is rounded to float32 before the second.
    """
    _, height, width = heatmaps.shape
    wide = wide_float(heatmaps.device)
    radius = (_DARK_KERNEL - 1) // 2
    offsets = torch.arange(-radius, radius + 1, device=heatmaps.device)
    rows = _reflect(ys.unsqueeze(-1) + offsets, height)  # (P,11)
    cols = _reflect(xs.unsqueeze(-1) + offsets, width)  # (P,11)
    window = heatmaps[maps[:, None, None], rows[:, :, None], cols[:, None, :]]  # (P,11,11)
    taps = _gaussian_taps(heatmaps.device, wide)
    first = (window.to(wide) * taps[None, :, None]).sum(dim=1).to(torch.float32)
    return (first.to(wide) * taps[None, :]).sum(dim=1).to(torch.float32)


def decode_heatmaps(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax + DARK refinement → (coords (N,K,2) in heatmap pixels, scores (N,K)), float32, on
    the heatmaps' device.

    Reproduces ``get_keypoint_predictions`` + ``post_dark_unbiased_data_processing`` exactly,
    including how the reference reads its flattened, edge-padded array for keypoints whose
    maximum is ≤ 0 (coordinates -1: its neighbours come from the previous map).
    """
    heatmaps = heatmaps.to(torch.float32)
    if heatmaps.device.type == "cpu":
        coords, scores = decode_heatmaps_numpy(heatmaps.detach().numpy())
        return torch.from_numpy(coords), torch.from_numpy(scores)
    return _decode_on_device(heatmaps)


def _decode_on_device(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n, k, height, width = heatmaps.shape
    flat = heatmaps.reshape(n, k, height * width)
    index = flat.argmax(dim=-1)
    scores = flat.gather(-1, index.unsqueeze(-1)).squeeze(-1)
    positive = scores > 0
    x = torch.where(positive, index % width, -1)
    y = torch.where(positive, index // width, -1)
    if n == 0:
        return torch.zeros((0, k, 2), device=heatmaps.device), scores

    maps = torch.arange(n * k, device=heatmaps.device).reshape(n, k)
    previous = torch.remainder(maps - 1, n * k)
    dx, dy, at_last_x, at_last_y = _neighbours(heatmaps.device)
    nx = (x.unsqueeze(-1) + dx).clamp(0, width - 1)  # edge padding = clamping
    ny = (y.unsqueeze(-1) + dy).clamp(0, height - 1)
    nmap = maps.unsqueeze(-1).expand(n, k, 7).clone()
    # Keypoints at (-1,-1) sit on the padded corner; steps back leave the map, into the previous one.
    outside = ~positive.unsqueeze(-1)
    nx = torch.where(outside, at_last_x * (width - 1), nx)
    ny = torch.where(outside, at_last_y * (height - 1), ny)
    nmap = torch.where(outside & (at_last_y == 1), previous.unsqueeze(-1), nmap)

    values = _blurred_at(heatmaps.reshape(n * k, height, width), nmap.reshape(-1), ny.reshape(-1), nx.reshape(-1))
    # log in float64, rounded to float32: CPU and CUDA float32 logs differ in the last bit, which a
    # flat peak's near-singular Hessian turns into hundredths of a pixel.
    values = values.clamp(0.001, 50).to(wide_float(heatmaps.device)).log().to(torch.float32).reshape(n, k, 7)
    i_, ix1, ix1_, iy1, iy1_, ix1y1, ix1_y1_ = values.unbind(-1)
    derivative = torch.stack([0.5 * (ix1 - ix1_), 0.5 * (iy1 - iy1_)], dim=-1)
    dxx = ix1 - 2 * i_ + ix1_
    dyy = iy1 - 2 * i_ + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + i_ + i_ - ix1_ - iy1_ + ix1_y1_)

    wide = wide_float(heatmaps.device)
    eps = float(np.finfo(np.float32).eps)
    a, b, d = dxx.to(wide) + eps, dxy.to(wide), dyy.to(wide) + eps
    det = a * d - b * b
    gx, gy = derivative.to(wide).unbind(-1)
    step_x = (d * gx - b * gy) / det
    step_y = (a * gy - b * gx) / det
    coords = torch.stack([x, y], dim=-1).to(torch.float32)
    coords = (coords.to(wide) - torch.stack([step_x, step_y], dim=-1)).to(torch.float32)
    return coords, scores


def decode_heatmaps_numpy(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`decode_heatmaps` for float32 (N,K,H,W) arrays in host memory: the same steps and
    float32/float64 roundings in NumPy."""
    n, k, height, width = heatmaps.shape
    if n == 0:
        return np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)
    flat = heatmaps.reshape(n, k, height * width)
    index = flat.argmax(axis=-1)
    scores = np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]
    positive = scores > 0
    x = np.where(positive, index % width, -1)
    y = np.where(positive, index // width, -1)

    maps = np.arange(n * k).reshape(n, k, 1)
    dx, dy, at_last_x, at_last_y = _NEIGHBOURS
    outside = ~positive[..., None]
    nx = np.where(outside, at_last_x * (width - 1), np.clip(x[..., None] + dx, 0, width - 1))
    ny = np.where(outside, at_last_y * (height - 1), np.clip(y[..., None] + dy, 0, height - 1))
    nmap = np.where(outside & (at_last_y == 1), (maps - 1) % (n * k), maps)

    # the blurred heatmap at those points: 11x11 windows, rows first, each pass rounded to float32
    radius = _DARK_KERNEL // 2
    spread = np.arange(_DARK_KERNEL)  # offsets -radius..radius, counted from -radius
    rows = _reflect(np.arange(-radius, height + radius), height)[ny.reshape(-1, 1) + spread]  # (P,11)
    cols = _reflect(np.arange(-radius, width + radius), width)[nx.reshape(-1, 1) + spread]
    starts = (nmap.reshape(-1, 1) * height + rows) * width
    window = np.take(heatmaps.reshape(-1), starts[:, :, None] + cols[:, None, :]).astype(np.float64)  # (P,11,11)
    first = window[:, 0] * _TAPS[0]
    for row in range(1, _DARK_KERNEL):  # in order, as a sum over the rows adds them
        first += window[:, row] * _TAPS[row]
    values = (first.astype(np.float32).astype(np.float64) * _TAPS).sum(axis=1).astype(np.float32)
    values = np.log(values.clip(0.001, 50).astype(np.float64)).astype(np.float32).reshape(n, k, 7)

    i_, ix1, ix1_, iy1, iy1_, ix1y1, ix1_y1_ = np.moveaxis(values, -1, 0)
    gx, gy = (0.5 * (ix1 - ix1_)).astype(np.float64), (0.5 * (iy1 - iy1_)).astype(np.float64)
    dxx = ix1 - 2 * i_ + ix1_
    dyy = iy1 - 2 * i_ + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + i_ + i_ - ix1_ - iy1_ + ix1_y1_)
    eps = float(np.finfo(np.float32).eps)
    a, b, d = dxx.astype(np.float64) + eps, dxy.astype(np.float64), dyy.astype(np.float64) + eps
    det = a * d - b * b
    step = np.stack([(d * gx - b * gy) / det, (a * gy - b * gx) / det], axis=-1)
    coords = np.stack([x, y], axis=-1).astype(np.float32)
    return (coords.astype(np.float64) - step).astype(np.float32), scores
