"""Loading checkpoints and processor settings: a Hub id, a local directory or a ready instance.

Every failure becomes a ``ModelLoadError`` with one line a person can act on.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from .device import Placement
from .errors import VitposeError

log = logging.getLogger(__name__)


class ModelLoadError(VitposeError, RuntimeError):
    """A model or its processor settings could not be loaded (message is one user-facing line)."""


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    lowered = str(error).lower()
    if "connect" in lowered or "offline" in lowered or "resolve" in lowered or "network" in lowered:
        return "not found locally and the Hugging Face Hub cannot be reached"
    if "does not appear to have" in lowered or "no such file" in lowered:
        return "no model files there"
    return first[:200]


def describe(spec: Any) -> str:
    return spec if isinstance(spec, str) else type(spec).__name__


def load_model(model_class, spec, placement: Placement, *, what: str, flag: str) -> torch.nn.Module:
    """``spec`` is a ready ``torch.nn.Module``, a local directory, or a Hub id."""
    if isinstance(spec, torch.nn.Module):
        model = spec
    else:
        if not isinstance(spec, (str, os.PathLike)):
            raise ModelLoadError(f"{what} must be a Hub id, a directory or a model instance, got {describe(spec)}")
        spec = os.fspath(spec)
        looks_local = os.path.sep in spec and not os.path.isdir(spec) and spec.startswith((".", "/", "~"))
        if looks_local:
            raise ModelLoadError(f"cannot load {what} '{spec}': no such directory (check {flag} PATH)")
        try:
            model = model_class.from_pretrained(spec)
        except Exception as error:  # transformers raises OSError, ValueError, HF hub errors...
            raise ModelLoadError(
                f"cannot load {what} '{spec}': {_reason(error)} "
                f"(pass a directory saved with save_pretrained as {flag} PATH)"
            ) from error
    return model.to(device=placement.device, dtype=placement.dtype).eval()


def processor_settings(spec, *, fallback_class_name: str | None, what: str) -> dict[str, Any]:
    """The image processor's settings as a plain dict.

    ``spec`` is a processor instance, a directory / Hub id holding ``preprocessor_config.json``,
    or ``None`` with ``fallback_class_name`` naming the transformers processor whose defaults to use.
    """
    if spec is None:
        if fallback_class_name is None:
            raise ModelLoadError(f"no image processor settings for {what}: pass processor=")
        import transformers

        processor_class = getattr(transformers, fallback_class_name, None)
        if processor_class is None:
            raise ModelLoadError(f"transformers has no {fallback_class_name} for {what}")
        return _instance_settings(processor_class)
    if isinstance(spec, (str, os.PathLike)):
        from transformers import ImageProcessingMixin

        try:
            settings, _ = ImageProcessingMixin.get_image_processor_dict(os.fspath(spec))
        except Exception as error:
            raise ModelLoadError(f"cannot load the image processor of {what} '{spec}': {_reason(error)}") from error
        return dict(settings)
    return _instance_settings(spec)


_SETTING_NAMES = (
    "size",
    "do_resize",
    "resample",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "do_pad",
    "pad_size",
    "normalize_factor",
    "do_affine_transform",
)


def _instance_settings(processor) -> dict[str, Any]:
    if isinstance(processor, type):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            processor = processor()
    settings = {}
    for name in _SETTING_NAMES:
        if hasattr(processor, name):
            value = getattr(processor, name)
            if hasattr(value, "value"):  # an enum such as PIL's Resampling
                value = value.value
            elif hasattr(value, "__dict__") and not isinstance(value, dict):  # SizeDict
                value = {k: v for k, v in vars(value).items() if v is not None}
            settings[name] = value
    return settings


def default_processor_class(model_type: str) -> str | None:
    """The name of transformers' default image processor class for a model type (no torchvision needed)."""
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES

    names = IMAGE_PROCESSOR_MAPPING_NAMES.get(model_type)
    if isinstance(names, dict):
        return names.get("pil") or next(iter(names.values()), None)
    if isinstance(names, (tuple, list)):
        return next((name for name in names if name), None)
    return names
