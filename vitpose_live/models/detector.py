"""Person detection with any transformers object detector (RT-DETR by default), on the device.

Resize, rescale and normalise follow the checkpoint's processor settings; post-processing
reproduces the processor's ``post_process_object_detection`` and keeps the person class.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..defaults import DEFAULT_DETECTOR, DET_THRESHOLD
from .device import OUT_OF_MEMORY, Placement, back_off, host_to_device, image_to_device, resolve
from .fuse import fold_batch_norms
from .loading import ModelLoadError, default_processor_class, load_model, processor_settings
from .resize import ResizeSettings
from .rtdetr import FixedShapeRTDetr, supports
from ..types import Detections

log = logging.getLogger(__name__)

PERSON_LABELS = ("person", "people", "human", "pedestrian")
# Detectors trained with sigmoid focal loss score every (query, class) pair and keep the top-k.
_FOCAL_MODEL_TYPES = {"rt_detr", "rt_detr_v2", "d_fine", "deformable_detr", "deim", "lw_detr"}
_GRAPH_MAX_BATCH = 16  # the largest detector batch replayed from one CUDA graph (larger ones split)


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
    ``fixed_shapes`` (RT-DETR only) runs :class:`~vitpose_live.models.rtdetr.FixedShapeRTDetr`, the
    same forward without its host syncs (same outputs, bit for bit); False runs transformers' own;
    by default it is on with ``compile`` only, until it has been run on a GPU.
    ``input_side`` resizes to that many pixels instead of the processor's size
    (:meth:`ResizeSettings.with_side`: a square for RT-DETR; fewer pixels, a faster pass, smaller
    people missed); boxes come back in the image's own pixels either way.
    ``compile`` runs the forward through ``torch.compile`` (with CUDA graphs on CUDA) at fixed
    batch sizes, the buckets: :meth:`warm` compiles them on the thread that calls it, and the
    first forward does it for its own batch size when nobody called :meth:`warm`. Other batch
    sizes are padded to the next bucket or split by the largest. Call the compiled detector from
    the thread that warmed it: CUDA-graph capture failed on an H100 when the detector was
    compiled on one thread and first called from another (bench/RESULTS.md). A string instead of
    True names another ``torch.compile`` backend (the tests use "aot_eager").
    ``cuda_graphs`` (CUDA, RT-DETR, without ``compile``) replays the fixed-shape forward from CUDA
    graphs, one per batch bucket (:mod:`~vitpose_live.models.graphs`), captured on first use: the
    launches leave Python where ``torch.compile`` is not available or too slow to start.
    """

    def __init__(
        self,
        model=DEFAULT_DETECTOR,
        processor=None,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        threshold: float = DET_THRESHOLD,
        max_persons: int | None = None,
        min_box_size: float = 0,
        fold_norms: bool = True,
        compile: bool | str = False,
        fixed_shapes: bool | None = None,
        cuda_graphs: bool = False,
        input_side: int | None = None,
    ):
        from transformers import AutoModelForObjectDetection

        self.placement: Placement = resolve(device, dtype)
        self.name = model if isinstance(model, str) else type(model).__name__
        self.model = load_model(AutoModelForObjectDetection, model, self.placement, what="detector", flag="--detector")
        if fold_norms and not isinstance(model, torch.nn.Module):  # never rewrite a caller's model
            fold_batch_norms(self.model)
        # NHWC convolutions: 25 % less time for RT-DETR on a CPU (oneDNN), tensor-core friendly on CUDA
        self.model.to(memory_format=torch.channels_last)
        graphs = bool(cuda_graphs) and not compile and self.placement.is_cuda and supports(self.model)
        if fixed_shapes is None:  # a flag until measured on a GPU (issue 14); compiling and graphs need it
            fixed_shapes = bool(compile) or graphs
        self._fixed = FixedShapeRTDetr(self.model) if fixed_shapes and supports(self.model) else None
        self._graphed = None
        if graphs and self._fixed is not None:
            from .graphs import GraphedForward

            self._graphed = GraphedForward(self._packed_forward, max_batch=_GRAPH_MAX_BATCH)
        self._compiled = None
        self._buckets: tuple[int, ...] = ()
        self._warmed_on: int | None = None  # the thread that compiled the buckets
        target = self._fixed if self._fixed is not None else self.model
        if compile is True:
            mode = "reduce-overhead" if self.placement.is_cuda else None
            self._compiled = torch.compile(target, mode=mode, dynamic=False)
        elif compile:
            self._compiled = torch.compile(target, backend=compile, dynamic=False)
        config = self.model.config
        if processor is None and isinstance(model, str):
            processor = model
        fallback = default_processor_class(config.model_type)
        self.resize = ResizeSettings.from_processor(
            processor_settings(processor, fallback_class_name=fallback, what="detector")
        ).with_side(input_side)
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
        # float32, channels-last (the uint8 resize returns channels-first) and rescaled in one
        # pass, then the rest of the reference's arithmetic in place
        values = torch.empty(pixels.shape, dtype=torch.float32, device=pixels.device, memory_format=torch.channels_last)
        if self.resize.do_rescale:
            torch.mul(pixels, self.resize.rescale_factor, out=values)  # converted and rescaled in one pass
        else:
            values.copy_(pixels)
        if self.resize.do_normalize:
            values.sub_(self._mean).div_(self._std)
        return values.to(self.placement.dtype)

    # -- stage 2 --------------------------------------------------------------------------
    @property
    def compiling(self) -> bool:
        return self._compiled is not None

    @property
    def compiled_batch(self) -> int | None:
        """The largest compiled batch size (None before the first compile)."""
        return self._buckets[-1] if self._buckets else None

    def input_size(self, image_size: tuple[int, int] | None = None) -> tuple[int, int] | None:
        """(height, width) of the model input for images of ``image_size``; None when that is
        needed and not given."""
        size = self.resize.size
        if not self.resize.do_resize or not ("height" in size and "width" in size):
            return None if image_size is None else self.resize.output_size(*image_size)
        return int(size["height"]), int(size["width"])

    @torch.inference_mode()
    def warm(self, batch_sizes: Sequence[int] = (1,), image_size: tuple[int, int] | None = None) -> None:
        """Compile and run the forward once per batch size in ``batch_sizes`` (the buckets), on
        the calling thread: call it from the thread that will call the detector (the live
        detector thread, the pipeline's inference thread). Without ``compile`` it is one eager
        pass per size. ``image_size`` is needed only by processors whose input size follows the
        image's; without it such a detector compiles on its first forward instead."""
        size = self.input_size(image_size)
        if size is not None:
            self._compile_buckets(batch_sizes, size)

    def _compile_buckets(self, batch_sizes: Sequence[int], size: tuple[int, int]) -> None:
        self._buckets = tuple(sorted(set(self._buckets) | {max(1, int(b)) for b in batch_sizes}))
        self._warmed_on = threading.get_ident()
        if self._compiled is not None:
            log.info("compiling the detector for batches of %s at %dx%d (a minute or two the first time)",
                     ", ".join(map(str, self._buckets)), size[1], size[0])
        for batch in self._buckets:
            dummy = torch.zeros((batch, 3, *size), device=self.device, dtype=self.placement.dtype)
            dummy = dummy.contiguous(memory_format=torch.channels_last)
            self._eager(dummy)  # fills the fixed-shape forward's per-size tables before tracing
            if self._compiled is not None:
                for _ in range(3 if self.placement.is_cuda else 1):  # CUDA graphs: warm-up, record, replay
                    self._run_compiled(dummy)
        if self.placement.is_cuda:
            torch.cuda.synchronize(self.device)

    def _eager(self, pixel_values: torch.Tensor):
        if self._fixed is None:
            return self.model(pixel_values=pixel_values)
        return DetectorOutputs(*self._fixed(pixel_values))

    def _run_compiled(self, chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.placement.is_cuda:
            torch.compiler.cudagraph_mark_step_begin()
        outputs = self._compiled(chunk) if self._fixed is not None else self._compiled(pixel_values=chunk)
        logits, boxes = outputs if self._fixed is not None else (outputs.logits, outputs.pred_boxes)
        return logits.clone(), boxes.clone()  # graph outputs get overwritten by the next replay

    def _packed_forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """logits and boxes side by side (B,Q,classes+4): one output tensor for a CUDA graph."""
        return torch.cat(self._fixed(pixel_values), dim=-1)

    def _replayed(self, pixel_values: torch.Tensor) -> DetectorOutputs:
        parts = [self._graphed(chunk) for chunk in pixel_values.split(self._graphed.max_batch)]
        packed = parts[0] if len(parts) == 1 else torch.cat(parts)
        return DetectorOutputs(packed[..., :-4], packed[..., -4:])

    @torch.inference_mode()
    def forward(self, pixel_values: torch.Tensor):
        """The model's outputs (``logits`` and ``pred_boxes``) for a batch of inputs."""
        if self._graphed is not None:
            return self._replayed(pixel_values)
        if self._compiled is None:
            return self._eager(pixel_values)
        count = pixel_values.shape[0]
        if not self._buckets:  # nobody called warm(): compile for this batch size, on this thread
            self._compile_buckets([count], tuple(pixel_values.shape[-2:]))
        elif self._warmed_on != threading.get_ident() and self.placement.is_cuda:
            log.warning("the compiled detector is called from a thread other than the one that warmed it")
            self._warmed_on = threading.get_ident()
        parts = []
        start = 0
        while start < count:
            left = count - start
            size = next((b for b in self._buckets if b >= left), self._buckets[-1])
            chunk = pixel_values[start : start + size]
            if len(chunk) < size:  # padded, never a new shape to compile for
                chunk = torch.cat([chunk, chunk.new_zeros((size - len(chunk), *chunk.shape[1:]))])
            chunk = chunk.contiguous(memory_format=torch.channels_last)  # same strides every call
            if not chunk.is_inference():  # made outside inference mode: the graphs guard on that too
                chunk = chunk.clone(memory_format=torch.channels_last)
            parts.append(self._run_compiled(chunk))
            start += size
        logits, boxes = (torch.cat(values)[:count] for values in zip(*parts))
        return DetectorOutputs(logits, boxes)

    # -- stage 3 --------------------------------------------------------------------------
    def ranked(self, outputs, sizes: Sequence[tuple[int, int]], threshold: float | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Device tensors per image and query, best score first: boxes (B,Q,4) xyxy pixels, scores
        (B,Q) and whether each is a person kept by ``threshold`` (None: the detector's own) and
        ``min_box_size`` (B,Q)."""
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
        keep = (labels == self.person_class) & (scores > (self.threshold if threshold is None else threshold))
        if self.min_box_size > 0:
            keep &= (boxes[..., 2] - boxes[..., 0] >= self.min_box_size) & (
                boxes[..., 3] - boxes[..., 1] >= self.min_box_size
            )
        return boxes, scores, keep

    def postprocess(self, outputs, sizes: Sequence[tuple[int, int]], threshold: float | None = None,
                    max_persons: int | None = None) -> list[Detections]:
        """Person ``Detections`` per image, brought to the host in one transfer; ``threshold`` and
        ``max_persons`` apply to this call (None: the detector's own)."""
        boxes, scores, keep = self.ranked(outputs, sizes, threshold)
        cap = self.max_persons if max_persons is None else max_persons
        packed = torch.cat([boxes, scores.unsqueeze(-1), keep.unsqueeze(-1).float()], dim=-1).cpu().numpy()
        results = []
        for rows in packed:
            rows = rows[rows[:, 5] > 0][:cap]
            results.append(Detections(rows[:, :4], rows[:, 4]))
        return results

    # -- all three ------------------------------------------------------------------------
    def __call__(self, image, threshold: float | None = None, max_persons: int | None = None) -> Detections:
        return self.detect_batch([image], threshold, max_persons)[0]

    def detect_batch(self, images: Sequence, threshold: float | None = None,
                     max_persons: int | None = None) -> list[Detections]:
        """Detections for several images, kept by this call's ``threshold`` and ``max_persons``
        (None: the detector's own); images of one size share a forward pass of at most
        ``max_batch`` of them. When a pass runs out of device memory, ``max_batch`` halves (and
        stays there) and the pass is tried again; with a single image it is a ``DeviceMemoryError``."""
        sizes = [tuple(_image_size(image)) for image in images]
        limit = len(images) if len(set(sizes)) == 1 else 1  # different sizes: one at a time
        results: list[Detections] = []
        while len(results) < len(images):
            start = len(results)
            count = min(limit, self.max_batch or limit, len(images) - start)
            try:
                chunk = images[start : start + count]
                results.extend(self._detect(chunk, sizes[start : start + count], threshold, max_persons))
                continue
            except OUT_OF_MEMORY:
                pass  # handled here, where the failed pass's tensors are freed
            self.max_batch = back_off(self.device, count, what="detector", items="frame", flag="--detector")
            log.warning("%s out of memory with %d frames at once: detector batches are now at most %d",
                        self.device, count, self.max_batch)  # fmt: skip
        return results

    def _detect(self, images: Sequence, sizes: list[tuple[int, int]], threshold, max_persons) -> list[Detections]:
        batch = torch.cat([self.preprocess(image) for image in images])
        return self.postprocess(self.forward(batch), sizes, threshold, max_persons)


def _image_size(image) -> tuple[int, int]:
    if isinstance(image, torch.Tensor) and image.ndim == 3 and image.shape[0] == 3:
        return int(image.shape[1]), int(image.shape[2])
    return int(image.shape[0]), int(image.shape[1])
