"""ViTPose on person crops: batched affine crops, one forward pass, DARK decoding — all on the device.

Matches transformers' ``VitPoseImageProcessor`` + ``post_process_pose_estimation`` numerically
(tests/test_pose.py proves it), without scipy and without a Python loop over persons or pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from ..defaults import DEFAULT_POSE_MODEL, EXPERTS
from .device import (
    OUT_OF_MEMORY,
    Placement,
    back_off,
    host_to_device,
    image_to_device,
    resolve,
    tensor_from_numpy,
)
from .crops import CropSettings, boxes_to_center_scale, crops_cpu, crops_gather, sample_points
from .fuse import channels_last_upsampling, keep_one_expert
from .heatmaps import decode_heatmaps
from .loading import default_processor_class, load_model, processor_settings
from ..skeletons import Skeleton, skeleton_for
from ..types import Poses, valid_boxes

log = logging.getLogger(__name__)


# How many keypoints each ViTPose++ expert's dataset has; transformers' conversions keep only
# the COCO head.
EXPERT_KEYPOINTS: dict[str, int] = {"coco": 17, "aic": 14, "mpii": 16, "ap10k": 17, "apt36k": 17, "wholebody": 133}
_ANIMAL_WORDS = ("paw", "tail", "withers")  # AP-10K / APT-36K keypoints; COCO's 17 are human



def head_datasets(skeleton: Skeleton) -> tuple[str, ...]:
    """The datasets whose keypoints a pose head predicts, judged by their number and names."""
    count = skeleton.num_keypoints
    if count == EXPERT_KEYPOINTS["coco"]:
        animal = any(word in name.lower() for name in skeleton.keypoint_names for word in _ANIMAL_WORDS)
        return ("ap10k", "apt36k") if animal else ("coco",)
    return tuple(name for name, n in EXPERT_KEYPOINTS.items() if n == count)


def _describe_head(skeleton: Skeleton, num_experts: int) -> str:
    names = skeleton.keypoint_names
    datasets = head_datasets(skeleton)
    owner = f"{'/'.join(d.upper() for d in datasets)}'s " if datasets else ""
    return (
        f"this checkpoint has {num_experts} expert(s) and one head, for {owner}{len(names)} keypoints "
        f"({names[0]} … {names[-1]})"
    )


def resolve_expert(expert: str | int | None, num_experts: int, skeleton: Skeleton) -> int:
    """The MoE expert index for ``expert`` (a name from ``EXPERTS`` or an index), accepted only when
    the checkpoint's head predicts that dataset's keypoints; by default the expert of the head's
    dataset (COCO for the transformers checkpoints)."""
    datasets = head_datasets(skeleton)
    if expert is None:
        return EXPERTS[datasets[0]] if datasets and EXPERTS[datasets[0]] < num_experts else 0
    if isinstance(expert, str) and not expert.strip().lstrip("-").isdigit():
        key = expert.strip().lower().replace("-", "").replace("_", "")
        if key not in EXPERTS:
            raise ValueError(f"unknown expert {expert!r}: use one of {', '.join(EXPERTS)} or an index")
    else:
        index = int(expert)
        if not 0 <= index < len(EXPERTS):
            raise ValueError(f"expert {expert!r} is out of range: the ViTPose++ experts are 0-{len(EXPERTS) - 1}")
        key = list(EXPERTS)[index]
    if key not in datasets or EXPERTS[key] >= num_experts:
        fits = [name for name in datasets if EXPERTS[name] < num_experts]
        hint = f": use --expert {fits[0]}" if fits else ""
        raise ValueError(
            f"expert {expert!r} needs a head for {key.upper()}'s {EXPERT_KEYPOINTS[key]} keypoints, but "
            f"{_describe_head(skeleton, num_experts)}{hint}"
        )
    return EXPERTS[key]


class PoseEstimator:
    """ViTPose (and ViTPose++) keypoints for person boxes.

    ``model`` is a Hub id, a local directory or a ready ``VitPoseForPoseEstimation``;
    ``processor`` the same for its image processor (default: the checkpoint's own, or
    transformers' defaults for a bare instance). ``expert`` selects a ViTPose++ expert.
    """

    def __init__(
        self,
        model=DEFAULT_POSE_MODEL,
        processor=None,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "auto",
        expert: str | int | None = None,
        flip_test: bool = False,
        max_batch: int = 64,
        cuda_graphs: bool = False,
    ):
        from transformers import VitPoseForPoseEstimation

        self.placement: Placement = resolve(device, dtype)
        self.name = model if isinstance(model, str) else type(model).__name__
        self.model = load_model(VitPoseForPoseEstimation, model, self.placement, what="pose model", flag="--model")
        if processor is None and isinstance(model, str):
            processor = model
        fallback = default_processor_class("vitpose")
        settings = processor_settings(processor, fallback_class_name=fallback, what="pose model")
        self.crop = CropSettings.from_processor(settings)
        config = self.model.config
        self.num_experts = int(getattr(config.backbone_config, "num_experts", 1) or 1)
        self.skeleton: Skeleton = skeleton_for(_head_keypoints(self.model), getattr(config, "id2label", None))
        self.expert = resolve_expert(expert, self.num_experts, self.skeleton)
        if self.num_experts > 1 and not isinstance(model, torch.nn.Module):  # never rewrite a caller's model
            keep_one_expert(self.model, self.expert)  # every crop is posed with self.expert
        if not isinstance(model, torch.nn.Module):
            channels_last_upsampling(self.model)  # the same heatmaps, sooner on a CPU
        if flip_test and not self.skeleton.flip_pairs:
            names = self.skeleton.keypoint_names
            raise ValueError(
                f"--flip-test needs left/right keypoint pairs to swap in the mirrored crop, and this "
                f"checkpoint's {len(names)} keypoints ({names[0]} … {names[-1]}) have none"
            )
        self.flip_test = flip_test
        self.max_batch = max(1, int(max_batch))
        self._graphed = None
        if cuda_graphs and self.placement.is_cuda:
            from .graphs import GraphedForward

            self._graphed = GraphedForward(self._heatmaps, max_batch=self.max_batch * (2 if flip_test else 1))
        device, dtype = self.placement.device, self.placement.dtype
        factor = self.crop.rescale_factor if self.crop.do_rescale else 1.0
        mean = torch.tensor(self.crop.mean if self.crop.do_normalize else (0.0, 0.0, 0.0), dtype=torch.float64)
        std = torch.tensor(self.crop.std if self.crop.do_normalize else (1.0, 1.0, 1.0), dtype=torch.float64)
        self._scale = (factor / std).to(device=device, dtype=torch.float32)  # per channel, last axis
        self._shift = (-mean / std).to(device=device, dtype=torch.float32)
        flip = torch.arange(self.skeleton.num_keypoints)
        for left, right in self.skeleton.flip_pairs:
            flip[left], flip[right] = right, left
        self._flip_order = flip.to(device)
        self._dtype = dtype

    @property
    def device(self) -> torch.device:
        return self.placement.device

    # -- stage 1: crops -------------------------------------------------------------------
    def preprocess(self, image, boxes) -> torch.Tensor:
        """All crops of one image as one batch (N,3,H,W) on the model's device and dtype.

        The reference's affine warp (scipy ``affine_transform``, order 1, mode 'constant'):
        bilinear inside the image, 0 outside with no blending across the border, rounded to
        uint8, then rescaled and normalised.
        """
        pixels = image_to_device(image, self.placement)
        return self._crops(pixels, self._boxes_to_device(boxes))

    def _boxes_to_device(self, boxes) -> torch.Tensor:
        return host_to_device(tensor_from_numpy(np.asarray(boxes, dtype=np.float32).reshape(-1, 4)), self.device)

    def _crops(self, pixels: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        out_h, out_w = self.crop.height, self.crop.width
        n = boxes.shape[0]
        if n == 0:
            return torch.zeros((0, 3, out_h, out_w), device=self.device, dtype=self._dtype)
        height, width = pixels.shape[:2]
        xs, ys = self._sample_points(boxes)
        if pixels.device.type == "cpu" and 2 <= min(height, width) and max(height, width) < 2**15:  # int16 maps
            return crops_cpu(np.ascontiguousarray(pixels.numpy()), xs.numpy(), ys.numpy(), self._shift, self._scale,
                             self._dtype)
        return self._crops_gather(pixels, xs, ys)

    def _sample_points(self, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`~.crops.sample_points` for this model's crops (benches and tests time it)."""
        return sample_points(boxes, self.crop, self.device)

    def _crops_gather(self, pixels: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        """:func:`~.crops.crops_gather` with this model's normalisation (benches and tests time it)."""
        return crops_gather(pixels, xs, ys, self._shift, self._scale, self._dtype)

    # -- stage 2: the model ---------------------------------------------------------------
    @torch.inference_mode()
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Heatmaps (N,K,h,w) for a batch of crops, in chunks of ``max_batch``; with ``flip_test``
        averaged with the flipped crops' heatmaps flipped back (one forward pass for both).

        When a chunk runs out of device memory, ``max_batch`` halves (and stays there for later
        calls) and the chunk is tried again; out of memory with a single crop is a
        ``DeviceMemoryError``."""
        n = pixel_values.shape[0]
        if n == 0:
            h, w = self.crop.height // 4, self.crop.width // 4
            return torch.zeros((0, self.skeleton.num_keypoints, h, w), device=self.device, dtype=self._dtype)
        chunks = []
        start = 0
        while start < n:
            size = min(self.max_batch, n - start)
            batch = pixel_values[start : start + size]
            if self.flip_test:
                batch = torch.cat([batch, batch.flip(-1)])
            try:
                heatmaps = (self._graphed or self._heatmaps)(batch)
            except OUT_OF_MEMORY:
                heatmaps = None
            if heatmaps is None:  # out of memory; handled here, where the failed pass's tensors are freed
                del batch
                self.max_batch = back_off(self.device, size, what="pose model", items="crop", flag="--model")
                log.warning(
                    "%s out of memory with %d crops at once: pose batches are now at most %d",
                    self.device, size, self.max_batch,
                )
                continue
            if self.flip_test:
                plain, flipped = heatmaps.chunk(2)
                heatmaps = (plain + flipped[:, self._flip_order].flip(-1)) * 0.5
            chunks.append(heatmaps)
            start += size
        return torch.cat(chunks) if len(chunks) > 1 else chunks[0]

    def _heatmaps(self, batch: torch.Tensor) -> torch.Tensor:
        kwargs = {}
        if self.num_experts > 1:
            kwargs["dataset_index"] = torch.full((batch.shape[0],), self.expert, device=self.device)
        return self.model(pixel_values=batch, **kwargs).heatmaps

    # -- stage 3: keypoints ---------------------------------------------------------------
    def keypoints_from_heatmaps(self, heatmaps: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image-pixel keypoints (N,K,2) and scores (N,K) as device tensors (the unbiased inverse
        transform of the reference's ``transform_preds``)."""
        coords, scores = decode_heatmaps(heatmaps)
        center, size = boxes_to_center_scale(boxes.to(self.device), self.crop.width / self.crop.height)
        h, w = heatmaps.shape[-2:]
        step = torch.stack([size[:, 0] / (w - 1.0), size[:, 1] / (h - 1.0)], dim=1)
        keypoints = coords * step[:, None, :] + center[:, None, :] - size[:, None, :] * 0.5
        return keypoints, scores

    def postprocess(self, heatmaps: torch.Tensor, boxes, box_scores=None) -> Poses:
        """Heatmaps of crops cut from ``boxes`` (N,4 xyxy) → ``Poses`` in image pixels."""
        boxes_np = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        keypoints, scores = self.keypoints_from_heatmaps(heatmaps, self._boxes_to_device(boxes_np))
        return self._poses(keypoints.cpu().numpy(), scores.cpu().numpy(), boxes_np, box_scores)

    def _poses(self, keypoints, scores, boxes, box_scores) -> Poses:
        n = len(boxes)
        return Poses(
            keypoints=keypoints,
            scores=scores,
            boxes=boxes,
            box_scores=np.ones(n, np.float32) if box_scores is None else np.asarray(box_scores, np.float32),
            keypoint_names=self.skeleton.keypoint_names,
            edges=self.skeleton.edges,
        )

    # -- all three ------------------------------------------------------------------------
    def __call__(self, image, boxes, box_scores=None) -> Poses:
        """Keypoints of every person box in one image. Boxes with non-finite coordinates or no
        area are dropped (``Poses.boxes`` holds the ones kept)."""
        return self.estimate_batch([image], [boxes], None if box_scores is None else [box_scores])[0]

    def estimate_batch(self, images: Sequence, boxes_per_image: Sequence, box_scores_per_image=None) -> list[Poses]:
        """One forward pass over the crops of several images; one ``Poses`` per image."""
        if len(images) != len(boxes_per_image):
            raise ValueError(f"{len(images)} images but {len(boxes_per_image)} box lists")
        kept_boxes, kept_scores, crops = [], [], []
        for i, (image, boxes) in enumerate(zip(images, boxes_per_image)):
            boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
            keep = valid_boxes(boxes)
            scores = None if box_scores_per_image is None else np.asarray(box_scores_per_image[i], np.float32)
            kept_boxes.append(boxes[keep])
            kept_scores.append(None if scores is None else scores.reshape(-1)[keep])
            if keep.any():
                crops.append(self.preprocess(image, boxes[keep]))
        if not crops:
            return [self._poses(*self._empty(), b, s) for b, s in zip(kept_boxes, kept_scores)]
        all_boxes = np.concatenate(kept_boxes)
        heatmaps = self.forward(torch.cat(crops) if len(crops) > 1 else crops[0])
        keypoints, scores = self.keypoints_from_heatmaps(heatmaps, self._boxes_to_device(all_boxes))
        keypoints, scores = keypoints.cpu().numpy(), scores.cpu().numpy()
        results, start = [], 0
        for boxes, box_scores in zip(kept_boxes, kept_scores):
            end = start + len(boxes)
            results.append(self._poses(keypoints[start:end], scores[start:end], boxes, box_scores))
            start = end
        return results

    def _empty(self) -> tuple[np.ndarray, np.ndarray]:
        k = self.skeleton.num_keypoints
        return np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)


def _head_keypoints(model) -> int:
    """Keypoints the head predicts: its last convolution's output channels (``config.num_labels``
    for a model as transformers builds it)."""
    convolutions = [m for m in model.head.modules() if isinstance(m, torch.nn.Conv2d)] if hasattr(model, "head") else []
    return int(convolutions[-1].out_channels) if convolutions else int(model.config.num_labels)
