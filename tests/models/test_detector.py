"""PersonDetector against the checkpoint's own processor and post_process_object_detection."""

import numpy as np
import pytest
import torch
from support.models import detector_processor, tiny_rtdetr
from transformers import RTDetrImageProcessorPil
from transformers.models.rt_detr.modeling_rt_detr import RTDetrObjectDetectionOutput

from vitpose_live import Detections
from vitpose_live.models.detector import PersonDetector
from vitpose_live.models.loading import ModelLoadError

IMAGE_SIZES = [(37, 53), (479, 641), (1080, 1920), (1281, 719)]


@pytest.fixture(scope="module")
def detector(detector_model):
    return PersonDetector(detector_model, device="cpu", threshold=0.5)


def random_outputs(rng, queries=60, classes=6, images=1):
    """Raw detector outputs with a realistic spread: a few confident boxes among many weak ones."""
    logits = torch.from_numpy(rng.normal(-3.0, 2.0, (images, queries, classes)).astype(np.float32))
    centers = rng.uniform(0.05, 0.95, (images, queries, 2))
    sizes = rng.uniform(0.01, 0.5, (images, queries, 2))
    boxes = torch.from_numpy(np.concatenate([centers, sizes], -1).astype(np.float32))
    return RTDetrObjectDetectionOutput(logits=logits, pred_boxes=boxes)


def reference_persons(outputs, sizes, threshold, person=0):
    results = detector_processor().post_process_object_detection(outputs, threshold=threshold, target_sizes=sizes)
    return [(r["boxes"][r["labels"] == person].numpy(), r["scores"][r["labels"] == person].numpy()) for r in results]


@pytest.mark.parametrize("height,width", IMAGE_SIZES)
def test_the_model_input_matches_the_reference_processor(detector, rng, height, width):
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    reference = detector_processor()(image, return_tensors="pt").pixel_values
    ours = detector.preprocess(image)
    assert ours.shape == reference.shape
    difference = (ours - reference).abs()
    assert difference.max() <= 1.01 / 255  # PIL and torch may round a resized pixel differently
    assert difference.mean() <= 1e-4


@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.5, 0.9])
def test_person_boxes_from_identical_outputs_match_the_reference(detector, rng, threshold):
    outputs = random_outputs(rng, images=2)
    sizes = [(1080, 1920), (719, 1281)]
    ours = detector.postprocess(outputs, sizes, threshold)
    for (boxes, scores), detections in zip(reference_persons(outputs, sizes, threshold), ours):
        assert len(detections) == len(boxes)
        assert np.abs(detections.boxes - boxes).max(initial=0) <= 1.0
        assert np.allclose(detections.scores, scores)
        assert (np.diff(detections.scores) <= 0).all()  # highest score first
    assert detector.threshold == 0.5  # a call's threshold is not written onto the shared detector


def test_end_to_end_boxes_match_the_full_reference_recipe(detector, detector_model, rng):
    image = rng.integers(0, 256, (719, 1281, 3), dtype=np.uint8)
    inputs = detector_processor()(image, return_tensors="pt")
    with torch.no_grad():
        outputs = detector_model(**inputs)
    (boxes, scores), = reference_persons(outputs, [(719, 1281)], 0.5)
    detections = detector(image)
    assert isinstance(detections, Detections) and len(detections) == len(boxes) > 0
    assert np.abs(detections.boxes - boxes).max() <= 1.0


def test_the_person_class_is_found_by_name_not_index(rng):
    labels = {0: "car", 1: "dog", 2: "Person", 3: "bus", 4: "cat", 5: "tree"}
    detector = PersonDetector(tiny_rtdetr(labels=labels), device="cpu")
    assert detector.person_class == 2
    outputs = random_outputs(rng)
    (boxes, _), = reference_persons(outputs, [(480, 640)], 0.5, person=2)
    assert len(detector.postprocess(outputs, [(480, 640)])[0]) == len(boxes)


def test_a_detector_without_a_person_class_is_refused():
    with pytest.raises(ModelLoadError, match="no 'person' class"):
        PersonDetector(tiny_rtdetr(labels={0: "car", 1: "dog"}), device="cpu")


def test_threshold_keeps_only_strictly_greater_scores(detector):
    logits = torch.full((1, 4, 6), -20.0)
    logits[0, :, 0] = torch.logit(torch.tensor([0.9, 0.5, 0.5000001, 0.2]))
    outputs = RTDetrObjectDetectionOutput(logits=logits, pred_boxes=torch.full((1, 4, 4), 0.5))
    assert len(detector.postprocess(outputs, [(100, 100)])[0]) == 2


@pytest.mark.parametrize("max_persons,min_box_size,expected", [(None, 0, 6), (2, 0, 2), (None, 100, 3), (1, 100, 1)])
def test_max_persons_and_min_box_size_filter_the_boxes(detector_model, max_persons, min_box_size, expected):
    logits = torch.full((1, 6, 6), -20.0)
    logits[0, :, 0] = torch.linspace(5, 1, 6)
    sizes = torch.tensor([0.5, 0.05, 0.5, 0.05, 0.5, 0.05])  # 500 px or 50 px boxes in a 1000 px image
    pred_boxes = torch.stack([torch.full((6,), 0.5), torch.full((6,), 0.5), sizes, sizes], -1)[None]
    outputs = RTDetrObjectDetectionOutput(logits=logits, pred_boxes=pred_boxes)
    detector = PersonDetector(detector_model, device="cpu", max_persons=max_persons, min_box_size=min_box_size)
    detections = detector.postprocess(outputs, [(1000, 1000)])[0]
    assert len(detections) == expected
    assert (np.diff(detections.scores) <= 0).all()


def test_a_batch_of_images_gives_the_same_boxes_as_one_at_a_time(detector, rng):
    images = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(3)]
    for alone, batched in zip([detector(image) for image in images], detector.detect_batch(images)):
        assert np.allclose(alone.boxes, batched.boxes, atol=1e-3)


def test_grayscale_and_rgba_images_are_accepted(detector, rng):
    gray = rng.integers(0, 256, (120, 160), dtype=np.uint8)
    rgba = rng.integers(0, 256, (120, 160, 4), dtype=np.uint8)
    assert np.allclose(detector(gray).boxes, detector(np.repeat(gray[:, :, None], 3, 2)).boxes)
    assert np.allclose(detector(rgba).boxes, detector(np.ascontiguousarray(rgba[:, :, :3])).boxes)


def test_a_detector_loads_from_a_saved_directory(detector_dir, detector, rng):
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    loaded = PersonDetector(detector_dir, device="cpu")
    assert loaded.resize.output_size(240, 320) == (320, 320)  # the saved processor's size, not the default
    same = PersonDetector(detector.model, processor=detector_processor(320), device="cpu")
    assert np.allclose(loaded(image).boxes, same(image).boxes, atol=1e-3)


def test_fp16_detector_runs_on_cpu_close_to_fp32(detector_model, rng):
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    fp32 = PersonDetector(tiny_rtdetr(), device="cpu")(image)
    fp16 = PersonDetector(tiny_rtdetr(), device="cpu", dtype="fp16")(image)
    assert len(fp16) == len(fp32)
    assert np.abs(fp16.boxes - fp32.boxes).max(initial=0) <= 2.0


def test_a_compiled_detector_compiles_once_and_pads_or_splits_other_batch_sizes(rng):
    import torch._dynamo

    torch._dynamo.reset()
    eager = PersonDetector(tiny_rtdetr(), device="cpu")
    compiled = PersonDetector(tiny_rtdetr(), device="cpu", compile="aot_eager")
    images = torch.from_numpy(rng.random((5, 3, 320, 320), dtype=np.float32))
    expected = eager.forward(images)
    for batch in (images[:3], images[:1], images):  # the first call's size, a smaller and a larger batch
        outputs = compiled.forward(batch)
        assert torch.allclose(outputs.logits, expected.logits[: len(batch)], atol=1e-5)
        assert torch.allclose(outputs.pred_boxes, expected.pred_boxes[: len(batch)], atol=1e-6)
    assert compiled.compiled_batch == 3
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # compiled once, never again


def test_the_fixed_shape_forward_gives_transformers_bits_without_host_syncs(detector_model):
    from support.host_syncs import count

    stock = PersonDetector(detector_model, device="cpu", fixed_shapes=False)
    fixed = PersonDetector(detector_model, device="cpu", fixed_shapes=True)
    assert fixed._fixed is not None and stock._fixed is None
    images = torch.rand(2, 3, 320, 320)
    with torch.inference_mode():
        expected, outputs = stock.forward(images), fixed.forward(images)
        assert torch.equal(outputs.logits, expected.logits) and torch.equal(outputs.pred_boxes, expected.pred_boxes)
        assert count(lambda: stock.forward(images)).total == 6  # spatial_shapes[level, i] = int, 3 levels
        assert count(lambda: fixed.forward(images)).total == 0


def test_a_compiled_detector_warmed_on_a_second_thread_matches_eager_there(rng):
    """Compile and warm-up happen on the thread that calls the detector (the live detector
    thread, the pipeline's inference thread), at fixed batch buckets."""
    import threading

    import torch._dynamo

    torch._dynamo.reset()
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]  # counted over the whole session
    eager = PersonDetector(tiny_rtdetr(), processor=detector_processor(320), device="cpu")
    compiled = PersonDetector(tiny_rtdetr(), processor=detector_processor(320), device="cpu", compile="aot_eager")
    images = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(3)]
    seen = {}

    def worker():
        compiled.warm([1, 2])
        seen["warmed_on"] = compiled._warmed_on == threading.get_ident()
        seen["batches"] = [compiled.detect_batch(images[:n]) for n in (1, 2, 3)]  # a bucket, a bucket, split

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["warmed_on"] and compiled._buckets == (1, 2)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 2  # one per bucket, none later
    expected = eager.detect_batch(images)
    for n, batch in zip((1, 2, 3), seen["batches"]):
        for ours, reference in zip(batch, expected[:n]):
            assert len(ours) == len(reference)
            assert np.abs(ours.boxes - reference.boxes).max(initial=0) <= 1.0  # the detector parity bound
            assert np.allclose(ours.scores, reference.scores, atol=1e-5)


def test_the_live_detector_thread_warms_a_compiled_detector_on_itself():
    import threading

    from vitpose_live.engine.live_detection import DetectorThread
    from vitpose_live.types import Frame

    class Recorder:
        compiling = True

        def __init__(self):
            from vitpose_live.models.device import resolve

            self.placement, self.threads = resolve("cpu"), []

        def warm(self, batch_sizes):
            self.threads.append(("warm", threading.current_thread().name, tuple(batch_sizes)))

        def __call__(self, image, threshold=None, max_persons=None):
            self.threads.append(("call", threading.current_thread().name, threshold, max_persons))
            return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    detector = Recorder()
    thread = DetectorThread(detector)
    try:
        thread.offer(Frame(np.zeros((8, 8, 3), np.uint8), 0, 0.0, 0.0), 0.4, 3)
        assert thread.take(wait=True) is not None
    finally:
        thread.close()
    # the offered frame's threshold and person cap reach the detector with it
    assert detector.threads == [("warm", "vitpose-detector", (1,)), ("call", "vitpose-detector", 0.4, 3)]


@pytest.mark.parametrize("side", [320, 416])
@pytest.mark.parametrize("height,width", [(479, 641), (1080, 1920)])
def test_a_reduced_input_size_matches_the_processor_given_that_size(detector_model, rng, side, height, width):
    """transformers' processor with ``size=`` overridden is the oracle for ``input_side``."""
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    reference = detector_processor()(image, size={"height": side, "width": side}, return_tensors="pt").pixel_values
    ours = PersonDetector(detector_model, processor=detector_processor(), device="cpu", input_side=side).preprocess(image)
    assert ours.shape == reference.shape == (1, 3, side, side)
    difference = (ours - reference).abs()
    assert difference.max() <= 1.01 / 255 and difference.mean() <= 1e-4


def test_boxes_at_a_reduced_input_size_come_back_in_the_images_pixels(detector_model, rng):
    image = rng.integers(0, 256, (719, 1281, 3), dtype=np.uint8)
    inputs = detector_processor()(image, size={"height": 320, "width": 320}, return_tensors="pt")
    with torch.no_grad():
        outputs = detector_model(**inputs)
    (boxes, _), = reference_persons(outputs, [(719, 1281)], 0.5)
    detections = PersonDetector(detector_model, processor=detector_processor(), device="cpu", input_side=320)(image)
    assert len(detections) == len(boxes) > 0
    assert np.abs(detections.boxes - boxes).max() <= 1.0
    assert detections.boxes[:, 2].max() > 320 and detections.boxes[:, 3].max() > 320  # not the input's pixels


@pytest.mark.parametrize("size,side,expected", [
    ({"height": 640, "width": 640}, 320, {"height": 320, "width": 320}),
    ({"shortest_edge": 800, "longest_edge": 1333}, 400, {"shortest_edge": 400, "longest_edge": 666}),
    ({"shortest_edge": 800}, 480, {"shortest_edge": 480}),
    ({"max_height": 640, "max_width": 640}, 320, {"max_height": 320, "max_width": 320}),
])
def test_an_input_side_scales_each_kind_of_processor_size(size, side, expected):
    from vitpose_live.models.resize import ResizeSettings

    settings = ResizeSettings.from_processor({"size": size}).with_side(side)
    assert settings.size == expected
    assert ResizeSettings.from_processor({"size": size}).with_side(None).size == size


def test_an_input_side_below_32_pixels_is_refused(detector_model):
    with pytest.raises(ValueError, match="at least 32"):
        PersonDetector(detector_model, processor=detector_processor(), device="cpu", input_side=16)


def test_cuda_graphs_are_a_cuda_only_flag_and_their_packed_outputs_unpack_to_the_eager_ones(detector_model):
    """On a CPU --cuda-graphs changes nothing; what a graph would replay (logits and boxes packed
    side by side, batches cut at the largest bucket) unpacks to the fixed-shape forward's outputs.
    The capture itself is tested on a GPU (tests/test_cuda.py)."""
    processor = detector_processor(320)
    on_cpu = PersonDetector(detector_model, processor=processor, device="cpu", cuda_graphs=True)
    assert on_cpu._graphed is None and on_cpu._fixed is None
    fixed = PersonDetector(detector_model, processor=processor, device="cpu", fixed_shapes=True)

    class Replay:  # the graph's callable, run eagerly
        max_batch = 2

        def __call__(self, chunk):
            return fixed._packed_forward(chunk)

    pixels = torch.rand(5, 3, 320, 320).contiguous(memory_format=torch.channels_last)
    expected = fixed.forward(pixels)
    fixed._graphed = Replay()
    outputs = fixed.forward(pixels)
    assert torch.allclose(outputs.logits, expected.logits, atol=1e-6)
    assert torch.allclose(outputs.pred_boxes, expected.pred_boxes, atol=1e-6)


def test_the_cpu_profiles_detector_kind_d_fine_matches_transformers_at_its_reduced_size(rng):
    """D-FINE N at real size (the CPU profile's detector; random weights): preprocessing at the
    profile's input side and the person boxes against transformers' processor and post-processing."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from bench_cpu_profile import dfine

    from vitpose_live.engine.profiles import CPU_PROFILE

    torch.manual_seed(0)
    model = dfine("n")
    with torch.no_grad():  # persons likelier than the other classes, as in a scene with people
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and module.out_features == model.config.num_labels:
                module.bias[0] += 3.0
    side = CPU_PROFILE.detector_size
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    inputs = detector_processor()(image, size={"height": side, "width": side}, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    scores = torch.sigmoid(outputs.logits[0, :, 0])
    ranked = scores.sort(descending=True).values
    threshold = float(ranked[4] + ranked[5]) / 2  # five persons above it, none near it
    results = detector_processor().post_process_object_detection(outputs, threshold=threshold, target_sizes=[(480, 640)])
    reference = results[0]["boxes"][results[0]["labels"] == 0].numpy()
    detector = PersonDetector(model, processor=detector_processor(), device="cpu", threshold=threshold, input_side=side)
    assert detector.focal and detector.preprocess(image).shape[-2:] == (side, side)
    detections = detector(image)
    assert len(detections) == len(reference) > 0
    assert np.abs(detections.boxes - reference).max() <= 1.0


def test_a_bare_d_fine_without_a_processor_resizes_as_its_checkpoints_processor_says(rng):
    """D-FINE's checkpoints ship RT-DETR's processor, which transformers' auto mapping does not
    list for d_fine; a bare instance gets those defaults (640x640, rescaled, not normalised)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from bench_cpu_profile import dfine

    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    model = dfine("n")
    bare = PersonDetector(model, device="cpu")
    told = PersonDetector(model, processor=RTDetrImageProcessorPil(), device="cpu")
    assert bare.resize == told.resize
    assert torch.equal(bare.preprocess(image), told.preprocess(image))


def test_a_calls_person_cap_keeps_the_best_persons_and_leaves_the_detectors_own(detector, rng):
    outputs = random_outputs(rng, images=1)
    every = detector.postprocess(outputs, [(480, 640)], 0.05)[0]
    capped = detector.postprocess(outputs, [(480, 640)], 0.05, max_persons=2)[0]

    assert len(every) > 2 and len(capped) == 2
    assert np.array_equal(capped.scores, every.scores[:2])
    assert detector.max_persons is None
