"""Person detection with any transformers object detector (RT-DETR by default), on the device.

Resize, rescale and normalise follow the checkpoint's processor settings; post-processing
reproduces the processor's ``post_process_object_detection`` and keeps the person class.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .device import OUT_OF_MEMORY, Placement, back_off, host_to_device, image_to_device, resolve
from .fuse import fold_batch_norms
from .loading import ModelLoadError, default_processor_class, load_model, processor_settings
from .types import Detections

log = logging.getLogger(__name__)

from .defaults import DEFAULT_DETECTOR  # noqa: F401 - re-exported
PERSON_LABELS = ("person", "people", "human", "pedestrian")
# Detectors trained with sigmoid focal loss score every (query, class) pair and keep the top-k.
_FOCAL_MODEL_TYPES = {"rt_detr", "rt_detr_v2", "d_fine", "deformable_detr", "deim", "lw_detr"}
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


@dataclass(frozen=True)
class DetectorOutputs:
    """What post-processing reads of a detector's outputs."""

    logits: torch.Tensor
    pred_boxes: torch.Tensor


def find_person_class(id2label: dict) -> int:
    """The index of the person class, found by its label name."""
    for index, label in sorted((int(k), str(v).strip().lower()) for k, v in (id2label or {}).items()):
        if label in PERSON_LABELS:
            return index
    names = ", ".join(str(v) for v in list((id2label or {}).values())[:10])
    raise ModelLoadError(f"the detector has no 'person' class (its labels: {names or 'none'})")


class PersonDetector:
    """Person boxes from an object detector: ``model`` is a Hub id, a directory or an instance.

    ``threshold`` keeps scores strictly greater (like transformers); ``max_persons`` caps the
    count (highest scores first); ``min_box_size`` drops boxes narrower or shorter than that.
    ``fold_norms`` folds the batch norms into the convolutions before them (same outputs up to
    float rounding, fewer kernels) in a model it loads; a ready instance keeps its layers.
    ``compile`` runs the model through ``torch.compile`` (with CUDA graphs on CUDA) at one batch
    size, the first call's: the first call compiles (a minute or two), later ones are padded or
    split to that size. Eager RT-DETR is bound by kernel launches on a GPU (bench/RESULTS.md).
    A string instead of True names another ``torch.compile`` backend (the tests use "aot_eager").
    Call it from one thread: on an H100, CUDA-graph capture failed when the compiled detector was
    first called from a second thread (bench/RESULTS.md), so the CLI does not offer it yet.
    """

    def __init__(
        self,
        model=DEFAULT_DETECTOR,
        processor=None,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        threshold: float = 0.5,
        max_persons: int | None = None,
        min_box_size: float = 0,
        fold_norms: bool = True,
        compile: bool | str = False,
    ):
        from transformers import AutoModelForObjectDetection

        self.placement: Placement = resolve(device, dtype)
        self.name = model if isinstance(model, str) else type(model).__name__
        self.model = load_model(AutoModelForObjectDetection, model, self.placement, what="detector", flag="--detector")
        if fold_norms and not isinstance(model, torch.nn.Module):  # never rewrite a caller's model
            fold_batch_norms(self.model)
        # NHWC convolutions: 25 % less time for RT-DETR on a CPU (oneDNN), tensor-core friendly on CUDA
        self.model.to(memory_format=torch.channels_last)
        self._compiled = None
        self._compiled_batch: int | None = None
        if compile is True:
            mode = "reduce-overhead" if self.placement.is_cuda else None
            self._compiled = torch.compile(self.model, mode=mode, dynamic=False)
        elif compile:
            self._compiled = torch.compile(self.model, backend=compile, dynamic=False)
        config = self.model.config
        if processor is None and isinstance(model, str):
            processor = model
        fallback = default_processor_class(config.model_type)
        self.resize = ResizeSettings.from_processor(
            processor_settings(processor, fallback_class_name=fallback, what="detector")
        )
        self.person_class = find_person_class(config.id2label)
        self.focal = bool(getattr(config, "use_focal_loss", config.model_type in _FOCAL_MODEL_TYPES))
        self.threshold = float(threshold)
        self.max_persons = None if max_persons is None else int(max_persons)
        self.min_box_size = float(min_box_size)
        self.max_batch: int | None = None  # frames per forward pass; set by running out of memory
        device = self.placement.device
        self._mean = torch.tensor(self.resize.mean).view(1, 3, 1, 1).to(device)
        self._std = torch.tensor(self.resize.std).view(1, 3, 1, 1).to(device)

    @property
    def device(self) -> torch.device:
        return self.placement.device

    # -- stage 1 --------------------------------------------------------------------------
    def preprocess(self, image) -> torch.Tensor:
        """The model input (1,3,h,w) in the model's dtype: resized like the reference (antialiased,
        rounded back to uint8), rescaled and normalised."""
        pixels = image_to_device(image, self.placement).permute(2, 0, 1).unsqueeze(0)
        height, width = pixels.shape[-2:]
        out_h, out_w = self.resize.output_size(height, width)
        if (out_h, out_w) != (height, width):
            if self.device.type == "cpu" and self.resize.mode == "bilinear":
                # torch's uint8 path: antialiased and rounded to uint8 in one fast kernel.
                channels_last = pixels.contiguous(memory_format=torch.channels_last)
                pixels = F.interpolate(channels_last, size=(out_h, out_w), mode="bilinear", antialias=True)
            else:
                resized = F.interpolate(pixels.float(), size=(out_h, out_w), mode=self.resize.mode, antialias=True)
                pixels = resized.round_().clamp_(0, 255)
        values = pixels.float()
        if self.resize.do_rescale:
            values = values * self.resize.rescale_factor
        if self.resize.do_normalize:
            values = (values - self._mean) / self._std
        return values.to(self.placement.dtype).contiguous(memory_format=torch.channels_last)

    # -- stage 2 --------------------------------------------------------------------------
    @torch.inference_mode()
    def forward(self, pixel_values: torch.Tensor):
        """The model's outputs (``logits`` and ``pred_boxes``) for a batch of inputs."""
        if self._compiled is None:
            return self.model(pixel_values=pixel_values)
        count = pixel_values.shape[0]
        size = self._compiled_batch = self._compiled_batch or count
        parts = []
        for start in range(0, count, size):
            chunk = pixel_values[start : start + size]
            if len(chunk) < size:  # padded, never a new shape to compile for
                chunk = torch.cat([chunk, chunk.new_zeros((size - len(chunk), *chunk.shape[1:]))])
            chunk = chunk.contiguous(memory_format=torch.channels_last)  # same strides every call
            if self.placement.is_cuda:
                torch.compiler.cudagraph_mark_step_begin()
            outputs = self._compiled(pixel_values=chunk)
            parts.append((outputs.logits.clone(), outputs.pred_boxes.clone()))  # graph outputs get overwritten
        logits, boxes = (torch.cat(values)[:count] for values in zip(*parts))
        return DetectorOutputs(logits, boxes)

    # -- stage 3 --------------------------------------------------------------------------
    def ranked(self, outputs, sizes: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Device tensors per image and query, best score first: boxes (B,Q,4) xyxy pixels, scores
        (B,Q) and whether each is a person kept by ``threshold`` and ``min_box_size`` (B,Q)."""
        logits = outputs.logits.float()
        boxes = outputs.pred_boxes.float()
        cx, cy, w, h = boxes.unbind(-1)
        boxes = torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)
        scale = torch.tensor([[width, height, width, height] for height, width in sizes], dtype=torch.float32)
        boxes = boxes * host_to_device(scale, boxes.device)[:, None, :]
        num_queries, num_classes = logits.shape[1:]
        if self.focal:
            scores, index = torch.sigmoid(logits).flatten(1).topk(num_queries, dim=-1)
            labels = index % num_classes
            boxes = boxes.gather(1, (index // num_classes).unsqueeze(-1).expand(-1, -1, 4))
        else:
            scores, labels = torch.softmax(logits, dim=-1)[..., :-1].max(dim=-1)
            scores, order = scores.sort(dim=-1, descending=True)
            labels = labels.gather(1, order)
            boxes = boxes.gather(1, order.unsqueeze(-1).expand(-1, -1, 4))
        keep = (labels == self.person_class) & (scores > self.threshold)
        if self.min_box_size > 0:
            keep &= (boxes[..., 2] - boxes[..., 0] >= self.min_box_size) & (
                boxes[..., 3] - boxes[..., 1] >= self.min_box_size
            )
        return boxes, scores, keep

    def postprocess(self, outputs, sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        """Person ``Detections`` per image, brought to the host in one transfer."""
        boxes, scores, keep = self.ranked(outputs, sizes)
        packed = torch.cat([boxes, scores.unsqueeze(-1), keep.unsqueeze(-1).float()], dim=-1).cpu().numpy()
        results = []
        for rows in packed:
            rows = rows[rows[:, 5] > 0][: self.max_persons]
            results.append(Detections(rows[:, :4], rows[:, 4]))
        return results

    # -- all three ------------------------------------------------------------------------
    def __call__(self, image) -> Detections:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence) -> list[Detections]:
        """Detections for several images; images of one size share a forward pass of at most
        ``max_batch`` of them. When a pass runs out of device memory, ``max_batch`` halves (and
        stays there) and the pass is tried again; with a single image it is a ``DeviceMemoryError``."""
        sizes = [tuple(_image_size(image)) for image in images]
        limit = len(images) if len(set(sizes)) == 1 else 1  # different sizes: one at a time
        results: list[Detections] = []
        while len(results) < len(images):
            start = len(results)
            count = min(limit, self.max_batch or limit, len(images) - start)
            try:
                results.extend(self._detect(images[start : start + count], sizes[start : start + count]))
                continue
            except OUT_OF_MEMORY:
                pass  # handled here, where the failed pass's tensors are freed
            self.max_batch = back_off(self.device, count, what="detector", items="frame", flag="--detector")
            log.warning("%s out of memory with %d frames at once: detector batches are now at most %d",
                        self.device, count, self.max_batch)  # fmt: skip
        return results

    def _detect(self, images: Sequence, sizes: list[tuple[int, int]]) -> list[Detections]:
        batch = torch.cat([self.preprocess(image) for image in images])
        return self.postprocess(self.forward(batch), sizes)


def _image_size(image) -> tuple[int, int]:
    if isinstance(image, torch.Tensor) and image.ndim == 3 and image.shape[0] == 3:
        return int(image.shape[1]), int(image.shape[2])
    return int(image.shape[0]), int(image.shape[1])
