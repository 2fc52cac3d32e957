"""Tiny random-initialised models of the real architectures, built from configs (no Hub access)."""

from __future__ import annotations

import torch
from transformers import (
    RTDetrConfig,
    RTDetrForObjectDetection,
    RTDetrImageProcessorPil,
    RTDetrResNetConfig,
    VitPoseBackboneConfig,
    VitPoseConfig,
    VitPoseForPoseEstimation,
    VitPoseImageProcessorPil,
)

PERSON_BIAS = 1.0
COCO_DETECTION_LABELS = {0: "person", 1: "bicycle", 2: "car", 3: "motorcycle", 4: "airplane", 5: "bus"}


def tiny_vitpose(*, num_experts: int = 1, num_keypoints: int = 17, seed: int = 0, simple: bool = True, labels=None):
    """``labels``: keypoint names for ``config.id2label`` (default ``LABEL_i``, as transformers leaves them)."""
    torch.manual_seed(seed)
    backbone = VitPoseBackboneConfig(
        image_size=[256, 192],
        patch_size=[16, 16],
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_ratio=2,
        num_experts=num_experts,
        part_features=8 if num_experts > 1 else 256,
        out_indices=[2],
    )
    config = VitPoseConfig(backbone_config=backbone, use_simple_decoder=simple)
    config.num_labels = num_keypoints
    if labels is not None:
        config.id2label = dict(enumerate(labels))
        config.label2id = {name: i for i, name in enumerate(labels)}
    model = VitPoseForPoseEstimation(config).eval()
    with torch.no_grad():  # random heads give flat maps; make them peaky like trained ones
        for name, param in model.head.named_parameters():
            if name.endswith("weight"):
                param.mul_(8.0)
    return model


# AP-10K's keypoints as the ViTPose++ configs spell them (L_/R_ sides).
AP10K_KEYPOINTS = ("L_Eye", "R_Eye", "Nose", "Neck", "Root of tail", "L_Shoulder", "L_Elbow", "L_F_Paw", "R_Shoulder",
                   "R_Elbow", "R_F_Paw", "L_Hip", "L_Knee", "L_B_Paw", "R_Hip", "R_Knee", "R_B_Paw")  # fmt: skip


def tiny_rtdetr(*, seed: int = 0, labels: dict[int, str] | None = None):
    torch.manual_seed(seed)
    backbone = RTDetrResNetConfig(
        embedding_size=16,
        hidden_sizes=[16, 32, 48, 64],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_features=["stage2", "stage3", "stage4"],
    )
    labels = labels or COCO_DETECTION_LABELS
    config = RTDetrConfig(
        backbone_config=backbone,
        encoder_in_channels=[32, 48, 64],
        encoder_hidden_dim=32,
        encoder_ffn_dim=64,
        encoder_attention_heads=2,
        d_model=32,
        decoder_in_channels=[32, 32, 32],
        decoder_ffn_dim=64,
        decoder_attention_heads=2,
        decoder_layers=1,
        decoder_n_points=2,
        num_queries=50,
        num_denoising=0,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    model = RTDetrForObjectDetection(config).eval()
    with torch.no_grad():  # a fresh model scores every class alike; make persons the likeliest
        for head in (model.model.enc_score_head, *model.model.decoder.class_embed):
            head.weight.normal_(0.0, 1.0)
            head.bias.zero_()
            head.bias[0] = PERSON_BIAS
    return model


def pose_processor():
    return VitPoseImageProcessorPil()


def detector_processor(side: int = 640):
    return RTDetrImageProcessorPil(size={"height": side, "width": side})


def save_tiny_models(folder) -> tuple[str, str]:
    """The tiny pose model and detector saved like checkpoints under ``folder`` (the detector at a
    320x320 input): their two directories, for code that loads models from paths."""
    from pathlib import Path

    pose, detector = Path(folder) / "pose", Path(folder) / "detector"
    tiny_vitpose().save_pretrained(pose)
    pose_processor().save_pretrained(pose)
    tiny_rtdetr().save_pretrained(detector)
    detector_processor(320).save_pretrained(detector)
    return str(pose), str(detector)
