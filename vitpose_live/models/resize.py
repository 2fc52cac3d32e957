"""How a detector's input is made from an image: the checkpoint processor's resize, rescale and
normalise settings, and the input side a caller may ask for instead."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .loading import ModelLoadError

_RESAMPLE_MODES = {2: "bilinear", 3: "bicubic"}


@dataclass(frozen=True)
class ResizeSettings:
    """How the detector's input is made from an image (the processor's settings)."""

    size: dict
    do_resize: bool
    mode: str
    do_rescale: bool
    rescale_factor: float
    do_normalize: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_processor(cls, settings: dict) -> ResizeSettings:
        resample = settings.get("resample", 2)
        resample = int(getattr(resample, "value", resample))
        return cls(
            size=dict(settings.get("size") or {"height": 640, "width": 640}),
            do_resize=bool(settings.get("do_resize", True)),
            mode=_RESAMPLE_MODES.get(resample, "bilinear"),
            do_rescale=bool(settings.get("do_rescale", True)),
            rescale_factor=float(settings.get("rescale_factor", 1 / 255)),
            do_normalize=bool(settings.get("do_normalize", False)),
            mean=tuple(float(v) for v in np.broadcast_to(settings.get("image_mean") or (0.485, 0.456, 0.406), 3)),
            std=tuple(float(v) for v in np.broadcast_to(settings.get("image_std") or (0.229, 0.224, 0.225), 3)),
        )

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) the model sees for an image of this size."""
        if not self.do_resize:
            return height, width
        size = self.size
        if "height" in size and "width" in size:
            return int(size["height"]), int(size["width"])
        if "shortest_edge" in size:  # DETR-style: keep the aspect ratio
            shortest, longest = int(size["shortest_edge"]), size.get("longest_edge")
            small, large = min(height, width), max(height, width)
            if longest is not None and large / small * shortest > longest:
                shortest = int(round(longest * small / large))
            if width <= height:
                return int(shortest * height / width), shortest
            return shortest, int(shortest * width / height)
        if "max_height" in size and "max_width" in size:
            scale = min(size["max_height"] / height, size["max_width"] / width)
            return int(height * scale), int(width * scale)
        raise ModelLoadError(f"unsupported detector processor size {size}")

    def with_side(self, side: int | None) -> ResizeSettings:
        """These settings with the model input scaled to ``side`` pixels (None: unchanged). A
        fixed-size processor gets a ``side``×``side`` square; a shortest-edge one (DETR) gets
        ``side`` as its shortest edge and its longest edge scaled by the same factor (the aspect
        ratio limit kept); a max-size one gets ``side`` as both limits."""
        if side is None:
            return self
        side = int(side)
        if side < 32:
            raise ValueError(f"the detector input size must be at least 32 pixels, got {side}")
        size = self.size
        if "height" in size and "width" in size:
            scaled = {"height": side, "width": side}
        elif "shortest_edge" in size:
            scaled = {"shortest_edge": side}
            if size.get("longest_edge") is not None:
                scaled["longest_edge"] = int(round(size["longest_edge"] * side / size["shortest_edge"]))
        elif "max_height" in size and "max_width" in size:
            scaled = {"max_height": side, "max_width": side}
        else:
            raise ModelLoadError(f"unsupported detector processor size {size}")
        return replace(self, size=scaled, do_resize=True)
