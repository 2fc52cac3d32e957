"""The CUDA path: the same parity bounds on the GPU, fp16 within a pixel of fp32, and no host syncs
inside the per-person path. Skipped on machines without CUDA (bench/run_gpu.sh runs it on one)."""

import numpy as np
import pytest
import torch
from support.media import make_clip, probe
from support.models import detector_processor, pose_processor, tiny_rtdetr, tiny_vitpose
from test_pose import awkward_boxes, natural_image, reference_keypoints, xywh
from transformers.models.vitpose.modeling_vitpose import VitPoseEstimatorOutput

from vitpose_live.models.detector import PersonDetector
from vitpose_live.models.device import decode_threads, image_to_device, resolve
from vitpose_live.engine.engine import PoseEngine
from vitpose_live.models.pose import PoseEstimator
from vitpose_live.types import Frame

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SIZES = [(37, 53), (1281, 719), (2160, 3840)]


@pytest.fixture(scope="module")
def gpu_estimator():
    """On its own copy of the tiny model: a ready instance is moved to the device in place."""
    return PoseEstimator(tiny_vitpose(), device="cuda", dtype="fp32")


def test_auto_means_fp16_on_cuda():
    placement = resolve("auto", "auto")
    assert placement.device.type == "cuda" and placement.dtype == torch.float16


def test_video_files_keep_ffmpegs_decode_threads_when_the_models_run_on_the_gpu():
    assert decode_threads("cuda") is None and decode_threads("auto") is None


@pytest.mark.parametrize("height,width", SIZES)
def test_crops_on_the_gpu_match_the_reference_processor(gpu_estimator, rng, height, width):
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    boxes = awkward_boxes(rng, height, width)
    reference = pose_processor()(image, boxes=[xywh(boxes)], return_tensors="pt").pixel_values
    ours = gpu_estimator.preprocess(image, boxes)
    assert ours.is_cuda and ours.dtype == torch.float32
    difference = (ours.cpu() - reference).abs()
    assert difference.mean() <= 1e-3
    assert difference.max() <= 2e-2


@pytest.mark.parametrize("height,width", SIZES)
def test_keypoints_decoded_on_the_gpu_match_the_reference(gpu_estimator, pose_model, rng, height, width):
    assert not next(pose_model.parameters()).is_cuda
    boxes = awkward_boxes(rng, height, width)
    crops = gpu_estimator.preprocess(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), boxes).cpu()
    with torch.no_grad():
        heatmaps = pose_model(pixel_values=crops).heatmaps
    for maps in (heatmaps, heatmaps - heatmaps.amax(dim=(2, 3), keepdim=True) * 0.99 - 0.1):  # also maxima <= 0
        keypoints, scores = reference_keypoints(VitPoseEstimatorOutput(heatmaps=maps), boxes)
        poses = gpu_estimator.postprocess(maps.cuda(), boxes)
        assert np.abs(poses.keypoints - keypoints).max() <= 0.05
        assert np.abs(poses.scores - scores).max() <= 1e-5


def distinct_peaks(heatmaps: torch.Tensor, margin: float = 0.05) -> np.ndarray:
    """(N,K): where a heatmap's maximum beats every value more than 2 px away by ``margin`` of the
    map's range. A random model's maps are often flat; there any rounding moves the argmax to
    another, equally good spot, hundreds of pixels away, so only distinct peaks are comparable."""
    heatmaps = heatmaps.float().cpu()
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    top, index = flat.max(-1)
    ys, xs = torch.arange(h)[:, None], torch.arange(w)[None, :]
    far = ((ys - (index // w)[..., None, None]).abs() > 2) | ((xs - (index % w)[..., None, None]).abs() > 2)
    runner_up = heatmaps.masked_fill(~far, -torch.inf).amax(dim=(2, 3))
    return ((top - runner_up) > margin * (top - flat.min(-1).values)).numpy()


def test_fp16_on_the_gpu_stays_within_a_pixel_of_fp32_on_the_cpu(rng):
    """Every keypoint whose fp32 heatmap has a distinct peak (28 of the 68 with these seeds, counted
    on the CPU) lands within 1 px in fp16; every score, distinct or not, within 1e-2."""
    image = natural_image(rng, 720, 1280)
    boxes = np.array([[100, 50, 360, 700], [400, 80, 620, 690], [700, 100, 1000, 710], [1100, 0, 1279, 719]], np.float32)
    fp32 = PoseEstimator(tiny_vitpose(), device="cpu", dtype="fp32")
    reference = fp32(image, boxes)
    distinct = distinct_peaks(fp32.forward(fp32.preprocess(image, boxes)))
    half = PoseEstimator(tiny_vitpose(), device="cuda", dtype="auto")
    assert half.placement.dtype == torch.float16
    poses = half(image, boxes)
    distance = np.linalg.norm(poses.keypoints - reference.keypoints, axis=-1)
    assert distinct.sum() >= 27  # 28 on the CPU; one may tip over the margin on another BLAS
    assert distance[distinct].max() <= 1.0
    assert np.abs(poses.scores - reference.scores).max() <= 1e-2


def test_the_detector_on_the_gpu_finds_the_reference_persons(rng):
    image = natural_image(rng, 480, 640)
    model = tiny_rtdetr()
    processor = detector_processor(640)
    inputs = processor(image, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    reference = processor.post_process_object_detection(outputs, threshold=0.5, target_sizes=[(480, 640)])[0]
    person = reference["labels"] == 0
    expected = reference["boxes"][person].numpy()
    ours = PersonDetector(tiny_rtdetr(), processor=processor, device="cuda", dtype="fp32", threshold=0.5)(image)
    assert len(expected) > 0 and ours.boxes.shape == expected.shape
    assert np.abs(ours.boxes - expected).max() <= 1.0


def test_the_per_person_path_never_makes_the_host_wait(gpu_estimator, rng):
    """Crops, the forward pass and heatmap decoding are queued without one host sync: the first
    wait is the copy of the finished keypoints (torch raises on any synchronising call here)."""
    image = image_to_device(rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8), gpu_estimator.placement)
    boxes = awkward_boxes(rng, 1080, 1920)
    gpu_estimator.keypoints_from_heatmaps(gpu_estimator.forward(gpu_estimator.preprocess(image, boxes)), torch.as_tensor(boxes).cuda())
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        crops = gpu_estimator.preprocess(image, boxes)
        heatmaps = gpu_estimator.forward(crops)
        keypoints, scores = gpu_estimator.keypoints_from_heatmaps(heatmaps, gpu_estimator._boxes_to_device(boxes))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert keypoints.shape == (len(boxes), 17, 2) and torch.isfinite(keypoints).all().item()


def test_a_batch_of_frames_on_the_gpu_gives_each_frame_its_own_persons(rng):
    """The file path on CUDA: one detector pass and one pose pass for several frames; each frame
    gets the boxes the CPU finds and the poses the GPU gives that frame alone."""
    frames = [Frame(natural_image(rng, 360, 640), i, i / 30, 0.0) for i in range(3)]
    gpu = PoseEngine(PoseEstimator(tiny_vitpose(), device="cuda"),
                     PersonDetector(tiny_rtdetr(), device="cuda", dtype="fp32", max_persons=4))  # fmt: skip
    cpu = PoseEngine(PoseEstimator(tiny_vitpose(), device="cpu"), PersonDetector(tiny_rtdetr(), device="cpu", max_persons=4))
    for on_gpu, on_cpu, frame in zip(gpu.process_batch(frames), cpu.process_batch(frames), frames):
        assert len(on_gpu.poses) == len(on_cpu.poses) > 0
        assert np.abs(on_gpu.poses.boxes - on_cpu.poses.boxes).max() <= 1.0
        alone = gpu.pose(frame.image, on_gpu.poses.boxes)
        assert np.abs(alone.keypoints - on_gpu.poses.keypoints).max() <= 1e-2


def test_the_command_line_annotates_a_video_on_the_gpu(tmp_path, pose_dir, detector_dir):
    from vitpose_live.apps.cli import main

    clip = make_clip(tmp_path / "in.mp4", frames=20, width=640, height=360)
    out = tmp_path / "out.mp4"
    keypoints = tmp_path / "k.jsonl"
    code = main([str(v) for v in ("--source", clip, "--output", out, "--keypoints", keypoints, "--model", pose_dir,
                                  "--detector", detector_dir, "--device", "cuda", "--batch", 4, "--cuda-graphs",
                                  "--no-progress")])
    assert code == 0
    info = probe(out)
    assert info["frames"] == 20 and info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert len(keypoints.read_text().splitlines()) == 21


def test_the_pose_model_replayed_from_cuda_graphs_gives_the_eager_heatmaps(rng):
    from vitpose_live.models.graphs import bucket_for

    eager = PoseEstimator(tiny_vitpose(), device="cuda", max_batch=16)
    graphed = PoseEstimator(tiny_vitpose(), device="cuda", max_batch=16, cuda_graphs=True)
    for count in (1, 3, 11, 16, 3, 40):  # new buckets, reused buckets, and more than one chunk
        crops = torch.randn(count, 3, 256, 192, device="cuda", dtype=torch.float16)
        assert torch.allclose(graphed.forward(crops), eager.forward(crops), rtol=1e-2, atol=2e-2)
    assert graphed._graphed.buckets == [1, 4, 8, 16]
    assert [bucket_for(n, 64) for n in (1, 3, 5, 9, 17, 63, 64)] == [1, 4, 8, 16, 24, 64, 64]


def assert_no_host_sync(function, *args) -> None:
    """``function(*args)`` under torch's sync debug mode: any host sync raises."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        function(*args)
    finally:
        torch.cuda.set_sync_debug_mode(0)


def test_the_fixed_shape_detector_forward_never_makes_the_host_wait(rng):
    """transformers' RT-DETR forward syncs 6 times (spatial shapes written from Python ints); the
    fixed-shape forward (vitpose_live/models/rtdetr.py) gives the same outputs with none."""
    fixed = PersonDetector(tiny_rtdetr(), device="cuda", dtype="fp32", fixed_shapes=True)
    stock = PersonDetector(fixed.model, device="cuda", dtype="fp32", fixed_shapes=False)
    pixels = torch.rand(2, 3, 320, 320, device="cuda").contiguous(memory_format=torch.channels_last)
    expected, outputs = stock.forward(pixels), fixed.forward(pixels)
    assert torch.allclose(outputs.logits, expected.logits, atol=1e-5)
    assert torch.allclose(outputs.pred_boxes, expected.pred_boxes, atol=1e-6)
    assert_no_host_sync(fixed.forward, pixels)


def test_the_detector_replayed_from_cuda_graphs_gives_the_eager_boxes_on_any_thread(rng):
    """--cuda-graphs: the fixed-shape forward captured once per batch bucket (on the thread that
    first calls it), replayed there and on another thread, chunked past the largest bucket;
    replaying makes the host wait for nothing."""
    import threading

    processor = detector_processor(320)
    eager = PersonDetector(tiny_rtdetr(), processor=processor, device="cuda", dtype="fp32")
    graphed = PersonDetector(tiny_rtdetr(), processor=processor, device="cuda", dtype="fp32", cuda_graphs=True)
    assert graphed._graphed is not None
    for count in (1, 3, 4, 20):
        pixels = torch.rand(count, 3, 320, 320, device="cuda").contiguous(memory_format=torch.channels_last)
        expected, outputs = eager.forward(pixels), graphed.forward(pixels)
        assert outputs.logits.shape == expected.logits.shape
        assert torch.allclose(outputs.logits, expected.logits, atol=1e-4)
        assert torch.allclose(outputs.pred_boxes, expected.pred_boxes, atol=1e-5)
    assert graphed._graphed.buckets == [1, 4, 16]
    images = [natural_image(rng, 240, 320) for _ in range(3)]
    got = {}
    worker = threading.Thread(target=lambda: got.setdefault("batch", graphed.detect_batch(images)))
    worker.start()
    worker.join()
    for ours, reference in zip(got["batch"], eager.detect_batch(images), strict=True):
        assert len(ours) == len(reference)
        assert np.abs(ours.boxes - reference.boxes).max(initial=0) <= 1.0
    pixels = torch.rand(4, 3, 320, 320, device="cuda").contiguous(memory_format=torch.channels_last)
    assert_no_host_sync(graphed.forward, pixels)


def test_the_live_detector_thread_compiles_and_replays_a_compiled_detector_on_itself(rng):
    """--compile on a live source: compiled (CUDA graphs) and warmed on the detector thread, in its
    own CUDA stream; its boxes are the eager detector's."""
    from vitpose_live.engine.live_detection import DetectorThread

    processor = detector_processor(320)
    eager = PersonDetector(tiny_rtdetr(), processor=processor, device="cuda", dtype="fp32")
    compiled = PersonDetector(tiny_rtdetr(), processor=processor, device="cuda", dtype="fp32", compile=True)
    for _ in range(2):  # a live run warms up on one detector thread, resets, and goes on with a new one
        thread = DetectorThread(compiled)
        try:
            for index in range(3):
                frame = Frame(natural_image(rng, 240, 320), index, index / 30, 0.0)
                thread.offer(frame)
                late = thread.take(wait=True)
                expected = eager(frame.image)
                assert late is not None and len(late.detections) == len(expected)
                assert np.abs(late.detections.boxes - expected.boxes).max(initial=0) <= 1.0
        finally:
            thread.close(timeout=5.0)
    assert compiled._buckets == (1,)


def test_a_detector_compiled_on_the_inference_thread_batches_there_like_eager(rng):
    """--compile on a file: the pipeline's inference thread compiles at its batch size on the
    first call and pads a shorter last batch."""
    import threading

    processor = detector_processor(320)
    eager = PersonDetector(tiny_rtdetr(), processor=processor, device="cuda", dtype="fp32")
    compiled = PersonDetector(tiny_rtdetr(), processor=processor, device="cuda", dtype="fp32", compile=True)
    images = [natural_image(rng, 240, 320) for _ in range(4)]
    got = {}

    def inference_thread():
        try:
            got["batches"] = [compiled.detect_batch(images[:n]) for n in (4, 4, 3)]
        except BaseException as error:  # noqa: BLE001 - raised again on the test's thread
            got["error"] = error

    worker = threading.Thread(target=inference_thread)
    worker.start()
    worker.join()
    if "error" in got:
        raise got["error"]
    expected = eager.detect_batch(images)
    for n, batch in zip((4, 4, 3), got["batches"]):
        for ours, reference in zip(batch, expected[:n]):
            assert len(ours) == len(reference)
            assert np.abs(ours.boxes - reference.boxes).max(initial=0) <= 1.0
    assert compiled._buckets == (4,)
