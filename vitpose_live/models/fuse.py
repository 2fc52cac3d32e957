"""Inference-time rewrites that keep the maths: batch norms folded into the convolutions before
them; a ViTPose++ backbone that runs only the expert it is asked for; ViTPose's simple decoder
upsampling in channels-last on a CPU.

RT-DETR's ResNet runs a frozen batch norm after every convolution as five separate tensor
operations (about a third of the detector's 1,600 kernel launches per forward pass, and two extra
passes over each feature map on a CPU). Folded into the convolution's weights and bias they cost
nothing. Only layers whose forward is known to be ``conv → norm → activation`` are folded.
"""

from __future__ import annotations

import torch
from torch import nn

# (class name, convolution attribute, norm attribute): forward is conv, then norm, then the rest.
_CONV_NORM_LAYERS = {
    "RTDetrResNetConvLayer": ("convolution", "normalization"),
    "RTDetrResNetShortCut": ("convolution", "normalization"),
    "RTDetrConvNormLayer": ("conv", "norm"),
    "RTDetrV2ConvNormLayer": ("conv", "norm"),
}
_FROZEN_EPS = 1e-5  # RTDetrFrozenBatchNorm2d's fixed epsilon


def _norm_scale_shift(norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The per-channel (scale, shift) of an inference-mode batch norm, in float64; None if ``norm``
    is not one."""
    needed = ("weight", "bias", "running_mean", "running_var")
    if not all(isinstance(getattr(norm, name, None), torch.Tensor) for name in needed):
        return None
    if isinstance(norm, nn.modules.batchnorm._BatchNorm):
        if norm.training or not norm.track_running_stats:
            return None
        eps = norm.eps
    elif type(norm).__name__.endswith("FrozenBatchNorm2d"):
        eps = _FROZEN_EPS
    else:
        return None
    weight, bias, mean, var = (getattr(norm, name).detach().double() for name in needed)
    scale = weight * (var + eps).rsqrt()
    return scale, bias - mean * scale


def _pairs(model: nn.Module):
    """(parent, conv attribute, norm attribute) of every conv directly followed by a norm: in the
    known layers, and in ``nn.Sequential`` where one child feeds the next."""
    for module in model.modules():
        names = _CONV_NORM_LAYERS.get(type(module).__name__)
        if names is not None:
            yield module, *names
        elif isinstance(module, nn.Sequential):
            children = list(module._modules)
            yield from ((module, a, b) for a, b in zip(children, children[1:]))


def fold_batch_norms(model: nn.Module) -> int:
    """Fold every conv → batch-norm pair of an inference-mode ``model`` in place; returns how many
    (none for a model in training mode, whose weights must stay as they are)."""
    if model.training:
        return 0
    folded = 0
    for module, conv_name, norm_name in list(_pairs(model)):
        conv, norm = getattr(module, conv_name, None), getattr(module, norm_name, None)
        if not isinstance(conv, nn.Conv2d) or (factors := _norm_scale_shift(norm)) is None:
            continue
        scale, shift = factors
        with torch.no_grad():
            weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
            bias = shift if conv.bias is None else conv.bias.double() * scale + shift
            conv.weight.copy_(weight.to(conv.weight.dtype))
            if conv.bias is None:
                conv.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=False)
            else:
                conv.bias.copy_(bias.to(conv.bias.dtype))
        setattr(module, norm_name, nn.Identity())
        folded += 1
    return folded


class OneExpertMoe(nn.ModuleList):
    """transformers' ``VitPoseNaiveMoe`` runs every expert of a ViTPose++ feed-forward layer on
    every token and keeps one per crop with a 0/1 mask: six experts' work for one's. When every
    crop uses the same expert (the engine's case: one ``--expert`` per model), this runs that one
    only, with the same result bit for bit (the naive sum adds exact zeros to it)."""

    expert: int

    def forward(self, hidden_state: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        return self[self.expert](hidden_state)


def keep_one_expert(model: nn.Module, expert: int) -> int:
    """Make every ``VitPoseNaiveMoe`` of ``model`` an :class:`OneExpertMoe` of ``expert``, in place;
    returns how many. Only for a model that is always called with ``dataset_index`` = ``expert``."""
    count = 0
    for module in model.modules():
        if type(module).__name__ == "VitPoseNaiveMoe" and 0 <= expert < len(module):
            module.__class__ = OneExpertMoe
            module.expert = int(expert)
            count += 1
    return count


class ChannelsLastUpsample(nn.Upsample):
    """``nn.Upsample`` (bilinear) computed in channels-last memory and handed on contiguous, the
    same values bit for bit. torch's CPU bilinear upsampling of a contiguous (NCHW) batch copies
    it through channels-last and back in slow strided passes: ViTPose's simple decoder (4x, to
    64x48) took 2.7-3.1 ms for 6 crops of the tiny test model and 106-121 ms at ViTPose-B's 768
    channels, and 0.9 ms and 68 ms this way (one thread, bench/RESULTS.md)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.device.type != "cpu" or input.dim() != 4:
            return super().forward(input)
        return super().forward(input.contiguous(memory_format=torch.channels_last)).contiguous()


def channels_last_upsampling(model: nn.Module) -> int:
    """Make every bilinear ``nn.Upsample`` of a ViTPose simple decoder in ``model`` a
    :class:`ChannelsLastUpsample`, in place; returns how many."""
    count = 0
    for module in model.modules():
        if type(module).__name__ != "VitPoseSimpleDecoder":
            continue
        upsampling = getattr(module, "upsampling", None)
        if type(upsampling) is nn.Upsample and upsampling.mode == "bilinear":
            upsampling.__class__ = ChannelsLastUpsample
            count += 1
    return count
