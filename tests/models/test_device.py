"""Where the models run, decided in one place: device and dtype names on a CPU machine, the auto
choices, the I/O choices that follow from the device, and one clear error for a bad name.
(The CUDA side: tests/models/test_cuda.py; fp16/bf16 accuracy on a CPU: tests/models/test_pose.py.)"""

import pytest
import torch

from vitpose_live.engine.recipe import ModelOptions, load_models
from vitpose_live.models.device import background_io, decode_threads, resolve, resolve_device, resolve_dtype

CPU = torch.device("cpu")


def test_cpu_by_name_resolves_to_the_cpu_in_fp32_when_the_dtype_is_auto():
    placement = resolve("cpu", "auto")
    assert placement.device == CPU and placement.dtype == torch.float32 and not placement.is_cuda
    assert resolve_device(" CPU ") == CPU  # case and spaces do not matter
    assert resolve_device(CPU) is CPU  # a torch device is taken as it is


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto picks the GPU where there is one")
def test_auto_on_a_machine_without_a_gpu_is_the_cpu_in_fp32():
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        pytest.skip("auto picks MPS where there is one")
    placement = resolve("auto", "auto")
    assert placement.device == CPU and placement.dtype == torch.float32


@pytest.mark.parametrize(
    "name, dtype",
    [("fp32", torch.float32), ("float", torch.float32), ("fp16", torch.float16), ("half", torch.float16),
     ("bf16", torch.bfloat16), ("torch.bfloat16", torch.bfloat16), (torch.float16, torch.float16)],
)  # fmt: skip
def test_dtype_names_and_torch_dtypes_are_taken_on_the_cpu(name, dtype):
    assert resolve_dtype(name, CPU) is dtype


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_both_models_load_on_the_cpu_in_the_dtype_asked_for(pose_dir, detector_dir, dtype):
    """The detector follows the pose model's placement: one decision for the pair."""
    pose, detector = load_models(ModelOptions(model=pose_dir, detector=detector_dir, device="cpu", dtype=dtype))
    wanted = resolve_dtype(dtype, CPU)
    assert pose.placement == detector.placement == resolve("cpu", dtype)
    assert next(pose.model.parameters()).dtype == wanted
    assert next(detector.model.parameters()).dtype == wanted


def test_video_files_are_decoded_on_one_thread_next_to_models_on_the_cpu():
    assert decode_threads("cpu") == 1


def test_a_files_io_gives_way_to_models_on_the_cpu_but_a_live_sources_does_not():
    assert background_io("cpu", live=False) is True
    assert background_io("cpu", live=True) is False


@pytest.mark.parametrize("device, words", [("gpu0", "unknown device 'gpu0'"), ("cuda:x", "unknown device")])
def test_a_bad_device_string_is_one_clear_line(device, words):
    with pytest.raises(ValueError) as caught:
        resolve_device(device)
    message = str(caught.value)
    assert words in message and "use auto, cpu, cuda, cuda:N or mps" in message and "\n" not in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_a_gpu_says_so_in_one_line():
    with pytest.raises(ValueError, match="CUDA is not available on this machine"):
        resolve("cuda:0")


@pytest.mark.parametrize("dtype, words", [("int8", "unknown dtype 'int8'"), (torch.int32, "not a floating point")])
def test_a_bad_dtype_is_one_clear_line(dtype, words):
    with pytest.raises(ValueError, match=words):
        resolve_dtype(dtype, CPU)
