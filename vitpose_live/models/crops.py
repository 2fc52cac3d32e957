"""Person crops for the pose model: the reference's box padding and affine warp (scipy
``affine_transform``, order 1, mode 'constant'), bilinear inside the image and 0 outside, rounded
to uint8, rescaled and normalised; a gather path for any device and a cv2.remap path that is
cheaper on a CPU, equal bit for bit. Also what makes a box usable (:func:`valid_boxes`)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .device import wide_float

_PADDING = 1.25  # the box padding of the reference recipe
_CPU_CROPS_AT_ONCE = 2  # crops whose float work (~2.4 MB each) is done together on a CPU (bench_crops.py)


@dataclass(frozen=True)
class CropSettings:
    """How crops are cut and normalised: the image processor's settings."""

    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rescale_factor: float
    do_rescale: bool
    do_normalize: bool

    @classmethod
    def from_processor(cls, settings: dict) -> CropSettings:
        size = settings.get("size") or {"height": 256, "width": 192}
        mean = settings.get("image_mean") or (0.485, 0.456, 0.406)
        std = settings.get("image_std") or (0.229, 0.224, 0.225)
        return cls(
            height=int(size["height"]),
            width=int(size["width"]),
            mean=tuple(float(v) for v in np.broadcast_to(mean, 3)),
            std=tuple(float(v) for v in np.broadcast_to(std, 3)),
            rescale_factor=float(settings.get("rescale_factor", 1 / 255)),
            do_rescale=bool(settings.get("do_rescale", True)),
            do_normalize=bool(settings.get("do_normalize", True)),
        )


def boxes_to_center_scale(boxes: torch.Tensor, aspect_ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """xyxy boxes → (center, scale·200) in float32, the reference's ``box_to_center_and_scale``
    (padded by 1.25 and widened to the crop's aspect ratio), computed in the same float32 order."""
    boxes = boxes.to(torch.float32)
    x, y = boxes[:, 0], boxes[:, 1]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    center = torch.stack([x + w * 0.5, y + h * 0.5], dim=1)
    ratio = torch.tensor(aspect_ratio, dtype=torch.float32)  # a 0-d CPU tensor: a scalar on any device
    wider = w > ratio * h
    taller = w < ratio * h
    h = torch.where(wider, w * 1.0 / ratio, h)
    w = torch.where(taller, h * ratio, w)
    scale = torch.stack([w / 200.0, h / 200.0], dim=1) * _PADDING
    return center, scale * 200.0


def valid_boxes(boxes: np.ndarray) -> np.ndarray:
    """Boxes with finite coordinates and a positive width and height."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    finite = np.isfinite(boxes).all(axis=1)
    with np.errstate(invalid="ignore"):
        return finite & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


def sample_points(boxes: torch.Tensor, crop: CropSettings, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each crop pixel samples the image: xs (N,W') and ys (N,H'), in float64 where the
    device has it."""
    out_h, out_w = crop.height, crop.width
    center, size = boxes_to_center_scale(boxes, out_w / out_h)
    wide = wide_float(device)
    # Warp matrix dst = s·src + t (float32, as the reference builds it), inverted.
    size_wide = size.to(wide)
    s_wide = torch.stack([(out_w - 1.0) / size_wide[:, 0], (out_h - 1.0) / size_wide[:, 1]], dim=1)
    s = s_wide.to(torch.float32)
    t = (s_wide * (-center + 0.5 * size).to(wide)).to(torch.float32)
    inv_s, inv_t = (1.0 / s).to(wide), (-t / s).to(wide)
    xs = inv_s[:, 0:1] * torch.arange(out_w, device=device, dtype=wide) + inv_t[:, 0:1]  # (N,W')
    ys = inv_s[:, 1:2] * torch.arange(out_h, device=device, dtype=wide) + inv_t[:, 1:2]  # (N,H')
    return xs, ys


def crops_gather(pixels: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                 dtype: torch.dtype) -> torch.Tensor:
    """The warp on any device, without a host sync: four gathers of the image, then bilinear
    weights, uint8 rounding and a border mask, as tensor ops over the whole batch."""
    n, out_h, out_w = xs.shape[0], ys.shape[1], xs.shape[1]
    height, width = pixels.shape[:2]
    x_ok = (xs >= 0) & (xs <= width - 1)
    y_ok = (ys >= 0) & (ys <= height - 1)
    x0 = xs.floor().clamp(0, width - 1)
    y0 = ys.floor().clamp(0, height - 1)
    wx = (xs - x0).to(torch.float32).clamp(0, 1)
    wy = (ys - y0).to(torch.float32).clamp(0, 1)
    x0, y0 = x0.long(), y0.long()
    x1 = (x0 + 1).clamp(max=width - 1)
    y1 = (y0 + 1).clamp(max=height - 1)
    flat = pixels.reshape(-1, 3)

    def sample(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        index = (rows[:, :, None] * width + cols[:, None, :]).reshape(-1)
        return flat.index_select(0, index).reshape(n, out_h, out_w, 3).to(torch.float32)

    wx_, wy_ = wx[:, None, :, None], wy[:, :, None, None]
    top = sample(y0, x0).lerp_(sample(y0, x1), wx_)  # one pass each (the CPU path's arithmetic)
    values = sample(y1, x0).lerp_(sample(y1, x1), wx_)
    values = top.lerp_(values, wy_).add_(0.5).floor_()  # bilinear, then uint8 rounding (half up)
    inside = (y_ok[:, :, None] & x_ok[:, None, :]).unsqueeze(-1)
    values.mul_(inside)  # 0 outside the image, no blending across the border
    # rescale and normalise in one step: x·(factor/std) − mean/std
    values = torch.addcmul(shift, values, scale)
    return values.permute(0, 3, 1, 2).to(dtype, memory_format=torch.contiguous_format)


def crops_cpu(pixels: np.ndarray, xs: np.ndarray, ys: np.ndarray, shift: torch.Tensor, scale: torch.Tensor,
              dtype: torch.dtype) -> torch.Tensor:
    """The same warp and arithmetic as the gather path (bit for bit), cheaper on a CPU
    (bench/RESULTS.md): the four neighbours of every crop pixel come from ``cv2.remap``
    (nearest, integer maps: plain copies, no rounding), read from the image shifted by one
    pixel for each neighbour, and a sample outside the image points all four off it, so it
    reads 0 (no border mask)."""
    n, out_h, out_w = len(xs), ys.shape[1], xs.shape[1]
    height, width = pixels.shape[:2]
    # The left/top neighbour at most one before the edge: a sample on the last column reads
    # (W-2, W-1) with weight 1, the same value as (W-1, W-1) with weight 0.
    x0 = np.clip(np.floor(xs), 0, width - 2)
    y0 = np.clip(np.floor(ys), 0, height - 2)
    wx = (xs - x0).astype(np.float32).clip(0, 1)
    wy = (ys - y0).astype(np.float32).clip(0, 1)
    x0 = np.where((xs >= 0) & (xs <= width - 1), x0, -2).astype(np.int16)
    y0 = np.where((ys >= 0) & (ys <= height - 1), y0, -2).astype(np.int16)
    shifted = (pixels[:-1, :-1], pixels[:-1, 1:], pixels[1:, :-1], pixels[1:, 1:])  # TL, TR, BL, BR
    wx_ = torch.from_numpy(np.repeat(wx, 3, axis=1))[:, None, :]  # per channel: a contiguous last axis
    wy_ = torch.from_numpy(wy)[:, :, None]
    out = torch.empty((n, 3, out_h, out_w), dtype=torch.float32)
    step = _CPU_CROPS_AT_ONCE
    corners = np.empty((4, min(n, step), out_h, out_w, 3), np.uint8)
    # uint8 -> float32 by numpy: exact either way, and about ten times cheaper than torch's
    # conversion was on the development machine's CPU (bench/RESULTS.md)
    floats = np.empty((4, min(n, step), out_h, out_w * 3), np.float32)
    grid = np.empty((out_h, out_w, 2), np.int16)
    for first in range(0, n, step):  # a few crops at a time: the float work stays in the cache
        last = min(first + step, n)
        for i in range(first, last):
            grid[..., 0], grid[..., 1] = x0[i][None, :], y0[i][:, None]
            for corner, view in enumerate(shifted):
                cv2.remap(view, grid, None, cv2.INTER_NEAREST, dst=corners[corner, i - first],
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        count = last - first
        np.copyto(floats[:, :count], corners[:, :count].reshape(4, count, out_h, out_w * 3))
        g = torch.from_numpy(floats[:, :count])
        wx_i, wy_i = wx_[first:last], wy_[first:last]
        top = g[0].lerp_(g[1], wx_i)  # torch.lerp: one pass over memory, the gather path's arithmetic
        values = g[2].lerp_(g[3], wx_i)
        values = top.lerp_(values, wy_i).add_(0.5).floor_()  # bilinear, then uint8 rounding (half up)
        # rescale and normalise in one step, written straight into the channels-first batch
        torch.addcmul(shift, values.view(-1, out_h, out_w, 3), scale,
                      out=out[first:last].permute(0, 2, 3, 1))
    return out if dtype == torch.float32 else out.to(dtype)
