"""RT-DETR's inference forward with its feature-map shapes made once per input size.

transformers' ``RTDetrModel.forward`` writes the shape of every feature level into a device
tensor from Python ints (``spatial_shapes[level, 0] = height``): on CUDA each write is a copy
from pageable host memory, so a pass makes 6 host syncs, and no CUDA graph can be captured
around it (bench/RESULTS.md). This forward calls the same submodules in the same order, with
the shapes, level offsets and anchors built once per input size and kept on the device; it also
skips the backbone's padding masks, which RT-DETR computes and never reads. Outputs are the same
bits as the stock forward (tests/test_detector.py). transformers itself is not patched.
"""

from __future__ import annotations

import torch

from .device import host_to_device


def supports(model) -> bool:
    """Whether ``model`` is the RT-DETR (v1) detector this forward was written against."""
    inner = getattr(model, "model", None)
    return type(model).__name__ == "RTDetrForObjectDetection" and all(
        hasattr(inner, name)
        for name in ("backbone", "encoder_input_proj", "encoder", "decoder_input_proj", "enc_output",
                     "enc_score_head", "enc_bbox_head", "decoder", "generate_anchors")
    )


class FixedShapeRTDetr(torch.nn.Module):
    """``RTDetrForObjectDetection`` for inference: ``forward(pixel_values) -> (logits, pred_boxes)``
    with no host sync and no host-to-device copy once an input size has been seen."""

    def __init__(self, model) -> None:
        super().__init__()
        if not supports(model):
            raise TypeError(f"{type(model).__name__} is not transformers' RTDetrForObjectDetection")
        self.detector = model
        self._levels: dict = {}  # (shapes, device, dtype) -> what the decoder needs per level

    def levels(self, shapes: tuple[tuple[int, int], ...], device: torch.device, dtype: torch.dtype):
        """Spatial shapes (tensor and list), level start offsets, anchors and their valid mask."""
        key = (shapes, device, dtype)
        if key not in self._levels:
            rtdetr = self.detector.model
            table = torch.tensor(shapes, dtype=torch.long)
            starts = torch.cat([table.new_zeros(1), table.prod(1).cumsum(0)[:-1]])
            if rtdetr.config.anchor_image_size is None:
                anchors, valid = rtdetr.generate_anchors(shapes, device=device, dtype=dtype)
            else:
                anchors, valid = rtdetr.anchors, rtdetr.valid_mask
            self._levels[key] = (
                host_to_device(table, device), list(shapes), host_to_device(starts, device),
                anchors.to(device, dtype), valid.to(device, dtype),
            )
        return self._levels[key]

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rtdetr = self.detector.model
        config = rtdetr.config
        features = rtdetr.backbone.model(pixel_values).feature_maps
        proj_feats = [project(source) for project, source in zip(rtdetr.encoder_input_proj, features)]
        encoded = rtdetr.encoder(proj_feats).last_hidden_state
        sources = [project(source) for project, source in zip(rtdetr.decoder_input_proj, encoded)]
        for level in range(len(sources), config.num_feature_levels):  # extra levels, all from the last map (as stock)
            sources.append(rtdetr.decoder_input_proj[level](encoded[-1]))
        shapes = tuple((int(source.shape[-2]), int(source.shape[-1])) for source in sources)
        source_flatten = torch.cat([source.flatten(2).transpose(1, 2) for source in sources], 1)
        spatial_shapes, shapes_list, level_start_index, anchors, valid_mask = self.levels(
            shapes, source_flatten.device, source_flatten.dtype)

        memory = valid_mask.to(source_flatten.dtype) * source_flatten
        output_memory = rtdetr.enc_output(memory)
        enc_outputs_class = rtdetr.enc_score_head(output_memory)
        enc_outputs_coord_logits = rtdetr.enc_bbox_head(output_memory) + anchors
        _, topk_ind = torch.topk(enc_outputs_class.max(-1).values, config.num_queries, dim=1)
        reference_points_unact = enc_outputs_coord_logits.gather(
            dim=1, index=topk_ind.unsqueeze(-1).repeat(1, 1, enc_outputs_coord_logits.shape[-1]))
        if config.learn_initial_query:
            target = rtdetr.weight_embedding.tile([source_flatten.shape[0], 1, 1])
        else:
            target = output_memory.gather(dim=1, index=topk_ind.unsqueeze(-1).repeat(1, 1, output_memory.shape[-1]))
        decoded = rtdetr.decoder(
            inputs_embeds=target,
            encoder_hidden_states=source_flatten,
            encoder_attention_mask=None,
            reference_points=reference_points_unact,
            spatial_shapes=spatial_shapes,
            spatial_shapes_list=shapes_list,
            level_start_index=level_start_index,
        )
        return decoded.intermediate_logits[:, -1], decoded.intermediate_reference_points[:, -1]
