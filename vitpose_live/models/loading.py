"""Loading checkpoints and processor settings: a Hub id, a local directory or a ready instance.

Every failure becomes a ``ModelLoadError`` with one line a person can act on. ``check_models``
checks the pose model and the detector together before either loads, and fails within seconds
when the Hugging Face Hub cannot be reached: one short probe instead of the library's retries.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from .device import Placement

from ..errors import VitposeError

log = logging.getLogger(__name__)

HUB_PROBE_TIMEOUT = 3.0  # seconds for the one request that tells whether the Hub answers
_HUB_DOWN_MEMORY = 30.0  # seconds an unreachable Hub is remembered (then asked again)
_hub_down_at: float | None = None


@dataclass(frozen=True)
class ModelProblem:
    """Why one model cannot be loaded: ``what`` ("pose model"), its ``spec``, the ``flag`` that sets it."""

    what: str
    spec: str
    flag: str
    reason: str
    offline: bool = False  # a Hub id that needs a checkpoint directory (no cache, no network)


class ModelLoadError(VitposeError, RuntimeError):
    """A model or its processor settings could not be loaded (message is one user-facing line);
    ``problems`` lists each model that failed, for faces that word it their own way."""

    def __init__(self, message: str, problems: tuple[ModelProblem, ...] = ()):
        super().__init__(message)
        self.problems = tuple(problems)


def problems_line(problems: list[ModelProblem] | tuple[ModelProblem, ...]) -> str:
    """Every problem in one line (models failing for the same reason named together), with what to do."""
    by_reason: dict[str, list[ModelProblem]] = {}
    for problem in problems:
        by_reason.setdefault(problem.reason, []).append(problem)
    parts = [
        "cannot load " + " or ".join(f"the {p.what} '{p.spec}' ({p.flag})" for p in group) + f": {reason}"
        for reason, group in by_reason.items()
    ]
    offline = [p for p in problems if p.offline]
    if offline:
        flags = " / ".join(f"{p.flag} DIR" for p in offline)
        parts.append(
            f"on a connected machine, `hf download ID --local-dir DIR` (or save_pretrained) makes a checkpoint "
            f"directory to pass as {flags}" + ("" if _offline() else "; HF_HUB_OFFLINE=1 skips the network")
        )
    return "; ".join(parts)


def check_models(pose_spec, detector_spec) -> None:
    """Raise one ``ModelLoadError`` naming every model (pose, detector) that cannot be loaded.

    Quick: local directories are looked at, Hub ids are looked up in the local cache, and the Hub
    is asked at most once per id with a short timeout (not at all with ``HF_HUB_OFFLINE=1``).
    Ready model instances pass.
    """
    problems = [
        problem
        for what, spec, flag in (("pose model", pose_spec, "--model"), ("detector", detector_spec, "--detector"))
        if (problem := find_problem(spec, what=what, flag=flag)) is not None
    ]
    if problems:
        raise ModelLoadError(problems_line(problems), tuple(problems))


def find_problem(spec, *, what: str, flag: str) -> ModelProblem | None:
    """Why ``spec`` cannot be loaded, or ``None`` when it looks loadable."""
    if spec is None or not isinstance(spec, (str, os.PathLike)):
        return None  # a ready instance (or the caller's default)
    spec = os.fspath(spec)

    def problem(reason: str, offline: bool = False) -> ModelProblem:
        return ModelProblem(what, spec, flag, reason, offline)

    if os.path.isdir(spec):
        return None if os.path.isfile(os.path.join(spec, "config.json")) else problem("no config.json there")
    if _looks_local(spec) or os.path.exists(spec):
        return problem("no such directory")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(spec)
    except HFValidationError:
        return problem("no such directory, and not a Hub id")
    cached = _cached(spec)
    if _offline():
        return None if cached else problem("not in the local Hub cache, and HF_HUB_OFFLINE=1", offline=True)
    reason = _ask_hub(spec)
    if reason is None or (cached and reason == _unreachable()):
        return None  # on the Hub, or cached while the Hub is down (loaded from the cache)
    return problem(reason, offline=reason == _unreachable())


def _looks_local(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or (os.sep != "/" and os.sep in spec)


def _cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - an unreadable cache is no cache
        return False


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _unreachable() -> str:
    from huggingface_hub import constants

    return f"not in the local cache, and the Hugging Face Hub ({constants.ENDPOINT}) cannot be reached"


def _hub_is_down() -> bool:
    return _hub_down_at is not None and time.monotonic() - _hub_down_at < _HUB_DOWN_MEMORY


def _ask_hub(repo_id: str) -> str | None:
    """One short request: ``None`` when the Hub has ``repo_id``, else why not."""
    global _hub_down_at
    if _hub_is_down():
        return _unreachable()
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    try:
        HfApi().model_info(repo_id, timeout=HUB_PROBE_TIMEOUT)
    except GatedRepoError:
        return None  # loading says so if this machine's token may not read it
    except RepositoryNotFoundError:
        return "no such directory, nor a model on the Hugging Face Hub (check the id; a private one needs `hf auth login`)"
    except HfHubHTTPError as error:
        return f"the Hugging Face Hub answered: {_first_line(error)}"
    except Exception:  # noqa: BLE001 - connection refused, DNS, timeout, proxy: the Hub is out of reach
        _hub_down_at = time.monotonic()
        return _unreachable()
    _hub_down_at = None
    return None


def _hub_kwargs() -> dict[str, Any]:
    """Load from the cache alone while the Hub is known to be out of reach (no retries)."""
    return {"local_files_only": True} if _hub_is_down() else {}


def quiet_hub_logging() -> None:
    """Keep huggingface_hub's retry warnings out of the terminal (failures are reported as one line)."""
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def _reason(error: BaseException) -> str:
    lowered = str(error).lower()
    if "connect" in lowered or "offline" in lowered or "resolve" in lowered or "network" in lowered:
        return "not found locally and the Hugging Face Hub cannot be reached"
    if "does not appear to have" in lowered or "no such file" in lowered:
        return "no model files there"
    return _first_line(error)


def describe(spec: Any) -> str:
    return spec if isinstance(spec, str) else type(spec).__name__


def load_model(model_class, spec, placement: Placement, *, what: str, flag: str) -> torch.nn.Module:
    """``spec`` is a ready ``torch.nn.Module``, a local directory, or a Hub id."""
    import torch

    if isinstance(spec, torch.nn.Module):
        model = spec
    else:
        if not isinstance(spec, (str, os.PathLike)):
            raise ModelLoadError(f"{what} must be a Hub id, a directory or a model instance, got {describe(spec)}")
        spec = os.fspath(spec)
        problem = find_problem(spec, what=what, flag=flag)
        if problem is not None:
            raise ModelLoadError(problems_line([problem]), (problem,))
        try:
            model = model_class.from_pretrained(spec, **_hub_kwargs())
        except Exception as error:  # transformers raises OSError, ValueError, HF hub errors...
            problem = ModelProblem(what, spec, flag, f"{_reason(error)} (pass a directory saved with save_pretrained as {flag} PATH)")
            raise ModelLoadError(problems_line([problem]), (problem,)) from error
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
            settings, _ = ImageProcessingMixin.get_image_processor_dict(os.fspath(spec), **_hub_kwargs())
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


# Model types whose checkpoints ship another type's processor and that transformers' auto mapping
# does not list: the D-FINE and RT-DETRv2 checkpoints' preprocessor_config.json name RT-DETR's.
_PROCESSOR_OF = {"d_fine": "rt_detr", "rt_detr_v2": "rt_detr"}


def default_processor_class(model_type: str) -> str | None:
    """The name of transformers' default image processor class for a model type (no torchvision needed)."""
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES

    names = IMAGE_PROCESSOR_MAPPING_NAMES.get(model_type) or IMAGE_PROCESSOR_MAPPING_NAMES.get(
        _PROCESSOR_OF.get(model_type, "")
    )
    if isinstance(names, dict):
        return names.get("pil") or next(iter(names.values()), None)
    if isinstance(names, (tuple, list)):
        return next((name for name in names if name), None)
    return names
