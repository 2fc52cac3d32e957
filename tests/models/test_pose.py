"""PoseEstimator against transformers' own VitPoseImageProcessor and post_process_pose_estimation."""

import cv2
import numpy as np
import pytest
import torch
from support.models import AP10K_KEYPOINTS, pose_processor, tiny_vitpose
from transformers.models.vitpose.modeling_vitpose import VitPoseEstimatorOutput

from vitpose_live import Poses
from vitpose_live.models.heatmaps import _decode_on_device, decode_heatmaps
from vitpose_live.models.loading import ModelLoadError
from vitpose_live.models.pose import EXPERTS, PoseEstimator, resolve_expert
from vitpose_live.skeletons import skeleton_for

IMAGE_SIZES = [(37, 53), (479, 641), (1281, 719), (2160, 3840)]


def awkward_boxes(rng, height, width):
    """Random boxes plus the hard cases: partly/mostly outside, thin, wide, 2x2 pixels."""
    boxes = []
    for _ in range(10):
        x1, y1 = rng.uniform(-0.3 * width, width), rng.uniform(-0.3 * height, height)
        boxes.append([x1, y1, x1 + rng.uniform(2, width), y1 + rng.uniform(2, height)])
    boxes += [
        [1, 1, 3, 3],  # 2x2 pixels
        [10, 5, 11.5, height - 2],  # very thin
        [0, height / 2, width, height / 2 + 1.5],  # very wide
        [-0.9 * width, -0.9 * height, 0.2 * width, 0.2 * height],  # mostly outside
        [width - 5, height - 5, width + 100, height + 100],  # hanging off the corner
    ]
    return np.array(boxes, np.float32)


def natural_image(rng, height, width):
    """Smooth colour fields with fine grain: closer to a photo than white noise."""
    small = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(int)
    return np.clip(image + rng.integers(-8, 9, image.shape), 0, 255).astype(np.uint8)


def xywh(boxes):
    out = boxes.copy()
    out[:, 2] -= out[:, 0]
    out[:, 3] -= out[:, 1]
    return out


def reference_keypoints(outputs, boxes):
    results = pose_processor().post_process_pose_estimation(outputs, boxes=[xywh(boxes)])[0]
    return np.stack([r["keypoints"].numpy() for r in results]), np.stack([r["scores"].numpy() for r in results])


@pytest.fixture(scope="module")
def estimator(pose_model):
    return PoseEstimator(pose_model, device="cpu")


@pytest.mark.parametrize("height,width", IMAGE_SIZES)
def test_crops_match_the_reference_processor(estimator, rng, height, width):
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    boxes = awkward_boxes(rng, height, width)
    reference = pose_processor()(image, boxes=[xywh(boxes)], return_tensors="pt").pixel_values
    ours = estimator.preprocess(image, boxes)
    assert ours.shape == reference.shape and ours.dtype == torch.float32
    difference = (ours - reference).abs()
    assert difference.mean() <= 1e-3
    assert difference.max() <= 2e-2


@pytest.mark.parametrize("height,width", IMAGE_SIZES + [(2, 2), (1, 40), (40, 1)])
def test_the_cpu_warp_equals_the_device_gather_warp_bit_for_bit(estimator, rng, height, width):
    """The CPU path (cv2.remap neighbours) and the gather path every other device runs."""
    image = torch.from_numpy(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    boxes = torch.from_numpy(awkward_boxes(rng, max(height, 4), max(width, 4)))
    xs, ys = estimator._sample_points(boxes)
    expected = estimator._crops_gather(image, xs, ys)
    assert torch.equal(estimator.preprocess(image, boxes.numpy()), expected)


def test_crops_accept_a_uint8_tensor_in_either_layout(estimator, rng):
    image = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 60, 100]], np.float32)
    expected = estimator.preprocess(image, boxes)
    hwc = torch.from_numpy(image)
    assert torch.equal(estimator.preprocess(hwc, boxes), expected)
    assert torch.equal(estimator.preprocess(hwc.permute(2, 0, 1), boxes), expected)


@pytest.mark.parametrize("height,width", IMAGE_SIZES)
def test_keypoints_from_identical_heatmaps_match_the_reference(estimator, pose_model, rng, height, width):
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    boxes = awkward_boxes(rng, height, width)
    with torch.no_grad():
        heatmaps = pose_model(pixel_values=estimator.preprocess(image, boxes)).heatmaps
    for maps in (heatmaps, heatmaps - heatmaps.amax(dim=(2, 3), keepdim=True) * 0.99 - 0.1):  # also maxima <= 0
        keypoints, scores = reference_keypoints(VitPoseEstimatorOutput(heatmaps=maps), boxes)
        poses = estimator.postprocess(maps, boxes)
        assert np.abs(poses.keypoints - keypoints).max() <= 0.05
        assert np.abs(poses.scores - scores).max() <= 1e-5


def edge_case_heatmaps(rng, n, k, height, width):
    """Noise; the same with every maximum <= 0 (the reference's (-1,-1) keypoints); and peaks on
    the first and last pixels, where DARK's neighbours are clamped and its blur reflects."""
    noise = rng.normal(size=(n, k, height, width)).astype(np.float32)
    cornered = noise.copy()
    cornered[:, ::2, 0, 0], cornered[:, 1::2, -1, -1] = 9.0, 11.0
    return [noise, noise - noise.max(axis=(2, 3), keepdims=True) * 0.99 - 0.1, cornered]


@pytest.mark.parametrize(("n", "k", "height", "width"), [(5, 17, 64, 48), (3, 133, 64, 48), (2, 4, 1, 3), (1, 2, 5, 2), (0, 17, 64, 48)])
def test_the_cpu_keypoint_decoding_equals_the_device_decoding_bit_for_bit(rng, n, k, height, width):
    """NumPy on a CPU (decode_heatmaps_numpy), tensor ops on every other device (run here on the CPU)."""
    for maps in edge_case_heatmaps(rng, n, k, height, width):
        coords, scores = decode_heatmaps(torch.from_numpy(maps))
        expected_coords, expected_scores = _decode_on_device(torch.from_numpy(maps))
        assert coords.shape == (n, k, 2) and scores.shape == (n, k)
        assert torch.equal(coords, expected_coords) and torch.equal(scores, expected_scores)


def test_keypoints_of_peaked_heatmaps_land_on_the_peaks(estimator):
    """A Gaussian peak at a known sub-pixel spot decodes there (DARK), mapped through the box."""
    height, width = 64, 48
    ys, xs = np.mgrid[0:height, 0:width]
    peak = (20.3, 30.6)  # (x, y) in heatmap pixels
    heatmap = np.exp(-((xs - peak[0]) ** 2 + (ys - peak[1]) ** 2) / (2 * 2.0**2)).astype(np.float32)
    heatmaps = torch.from_numpy(np.broadcast_to(heatmap, (1, 17, height, width)).copy())
    box = np.array([[100, 50, 100 + 192 / 1.25, 50 + 256 / 1.25]], np.float32)  # crop = box·1.25, 1 px/px
    poses = estimator.postprocess(heatmaps, box)
    center = np.array([100 + 192 / 2.5, 50 + 256 / 2.5])
    expected = np.array(peak) * np.array([192 / 47, 256 / 63]) + center - np.array([96, 128])
    assert np.allclose(poses.keypoints[0], expected, atol=0.1)


def test_end_to_end_keypoints_match_the_full_transformers_recipe(estimator, pose_model, rng):
    image = natural_image(rng, 719, 1281)
    boxes = np.concatenate([awkward_boxes(rng, 719, 1281) for _ in range(3)])
    inputs = pose_processor()(image, boxes=[xywh(boxes)], return_tensors="pt")
    with torch.no_grad():
        outputs = pose_model(**inputs)
    keypoints, scores = reference_keypoints(outputs, boxes)
    poses = estimator(image, boxes)
    close = np.linalg.norm(poses.keypoints - keypoints, axis=-1) <= 0.5
    assert close.mean() >= 0.99
    assert np.abs(poses.scores - scores).max() < 2e-2  # inputs differ by uint8 rounding only


def test_a_batch_of_images_gives_the_same_poses_as_one_at_a_time(estimator, rng):
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(120, 160), (90, 70), (200, 300)]]
    boxes = [awkward_boxes(rng, *image.shape[:2])[:n] for image, n in zip(images, [3, 0, 5])]
    batched = estimator.estimate_batch(images, boxes)
    assert [len(p) for p in batched] == [3, 0, 5]
    for image, image_boxes, poses in zip(images, boxes, batched):
        alone = estimator(image, image_boxes)
        assert np.allclose(alone.keypoints, poses.keypoints, atol=1e-3)
        assert np.allclose(alone.boxes, image_boxes)


@pytest.mark.parametrize(
    "boxes,kept",
    [
        ([], 0),
        ([[np.nan, 0, 10, 10]], 0),
        ([[5, 5, 5, 20]], 0),  # zero width
        ([[5, 20, 30, 10]], 0),  # upside down
        ([[-500, -500, -400, -400]], 1),  # fully outside: a crop of zeros, like the reference
        ([[0, 0, 20, 30], [np.inf, 0, 1, 1], [3, 3, 9, 9]], 2),
    ],
)
def test_degenerate_boxes_are_dropped_and_the_rest_kept(estimator, rng, boxes, kept):
    poses = estimator(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8), np.array(boxes, np.float32))
    assert isinstance(poses, Poses) and len(poses) == kept
    assert poses.keypoints.shape == (kept, 17, 2) and np.isfinite(poses.keypoints).all()


def test_fp16_and_bf16_on_cpu_stay_within_a_pixel_of_fp32(pose_model, rng):
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    boxes = np.array([[100, 50, 260, 430], [300, 80, 420, 400], [500, 100, 640, 470]], np.float32)
    reference = PoseEstimator(tiny_vitpose(), device="cpu", dtype="fp32")(image, boxes)
    for dtype in ("fp16", "bf16"):
        poses = PoseEstimator(tiny_vitpose(), device="cpu", dtype=dtype)(image, boxes)
        confident = reference.scores > np.quantile(reference.scores, 0.5)
        distance = np.linalg.norm(poses.keypoints - reference.keypoints, axis=-1)[confident]
        assert np.median(distance) <= 1.0, dtype


def test_flip_test_averages_the_flipped_crop(pose_model, rng):
    image = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
    boxes = np.array([[40, 20, 140, 190]], np.float32)
    plain = PoseEstimator(pose_model, device="cpu")
    flipped = PoseEstimator(pose_model, device="cpu", flip_test=True)
    crops = plain.preprocess(image, boxes)
    with torch.no_grad():
        expected = (pose_model(pixel_values=crops).heatmaps + pose_model(
            pixel_values=crops.flip(-1), flip_pairs=torch.tensor([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13, 14], [15, 16]])
        ).heatmaps) / 2
    assert torch.allclose(flipped.forward(crops), expected, atol=1e-5)


@pytest.mark.parametrize(
    "names, pairs",
    [
        (("nose", "left_eye", "right_eye", "left_hand_root", "right_hand_root"), ((1, 2), (3, 4))),
        (AP10K_KEYPOINTS, ((0, 1), (5, 8), (6, 9), (7, 10), (11, 14), (12, 15), (13, 16))),
        (("Head", "R_Wrist", "L_Wrist", "Left Knee", "Right Knee"), ((2, 1), (3, 4))),
        (("head", "neck", "tail"), ()),
    ],
)
def test_flip_pairs_are_found_for_both_left_right_spellings(names, pairs):
    assert skeleton_for(len(names), dict(enumerate(names))).flip_pairs == pairs


def test_flip_test_on_l_r_named_keypoints_swaps_the_sides_of_the_mirrored_crop(rng):
    model = tiny_vitpose(labels=AP10K_KEYPOINTS)
    image = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
    crops = PoseEstimator(model, device="cpu").preprocess(image, np.array([[40, 20, 140, 190]], np.float32))
    pairs = torch.tensor([[0, 1], [5, 8], [6, 9], [7, 10], [11, 14], [12, 15], [13, 16]])
    with torch.no_grad():
        expected = (model(pixel_values=crops).heatmaps + model(pixel_values=crops.flip(-1), flip_pairs=pairs).heatmaps) / 2
    assert torch.allclose(PoseEstimator(model, device="cpu", flip_test=True).forward(crops), expected, atol=1e-5)


def test_flip_test_is_refused_in_one_line_when_no_keypoints_pair_up():
    with pytest.raises(ValueError, match="^--flip-test needs left/right keypoint pairs") as caught:
        PoseEstimator(tiny_vitpose(num_keypoints=5), device="cpu", flip_test=True)
    assert "5 keypoints (keypoint_0 … keypoint_4) have none" in str(caught.value)


def test_vitpose_plus_uses_the_expert_of_its_head_unless_told_otherwise(rng):
    image = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 80, 90]], np.float32)
    for keypoints, expert in ((17, 0), (16, 2)):  # a COCO head, an MPII head
        model = tiny_vitpose(num_experts=3, num_keypoints=keypoints)
        crops = PoseEstimator(model, device="cpu").preprocess(image, boxes)
        with torch.no_grad():
            expected = model(pixel_values=crops, dataset_index=torch.tensor([expert])).heatmaps
        assert torch.allclose(PoseEstimator(model, device="cpu").forward(crops), expected)
    assert torch.allclose(PoseEstimator(model, device="cpu", expert="mpii").forward(crops), expected)


COCO_HEAD, MPII_HEAD, AIC_HEAD = skeleton_for(17), skeleton_for(16), skeleton_for(14)
ANIMAL_HEAD = skeleton_for(17, dict(enumerate(AP10K_KEYPOINTS)))


@pytest.mark.parametrize(
    "expert, num_experts, head, expected",
    [
        (None, 1, COCO_HEAD, 0), ("coco", 6, COCO_HEAD, 0), (0, 6, COCO_HEAD, 0), ("0", 6, COCO_HEAD, 0),
        ("MPII", 6, MPII_HEAD, 2), (2, 6, MPII_HEAD, 2), (None, 6, MPII_HEAD, 2), ("aic", 6, AIC_HEAD, 1),
        ("ap-10k", 6, ANIMAL_HEAD, 3), (4, 6, ANIMAL_HEAD, 4), (None, 6, ANIMAL_HEAD, 3),
        ("mpii", 6, COCO_HEAD, ValueError), ("ap10k", 6, COCO_HEAD, ValueError), (5, 6, COCO_HEAD, ValueError),
        ("wholebody", 6, COCO_HEAD, ValueError), ("coco", 6, ANIMAL_HEAD, ValueError),
        ("mpii", 1, MPII_HEAD, ValueError), ("yoga", 6, COCO_HEAD, ValueError), (9, 6, COCO_HEAD, ValueError),
    ],
)  # fmt: skip
def test_an_expert_is_accepted_only_when_the_head_predicts_its_datasets_keypoints(expert, num_experts, head, expected):
    if expected is ValueError:
        with pytest.raises(ValueError):
            resolve_expert(expert, num_experts, head)
    else:
        assert resolve_expert(expert, num_experts, head) == expected


@pytest.mark.parametrize("expert", ["aic", "mpii", "ap10k", "apt36k", "wholebody", "3"])
def test_a_coco_only_vitpose_plus_refuses_other_experts_in_one_line_naming_what_it_has(expert):
    with pytest.raises(ValueError) as caught:
        PoseEstimator(tiny_vitpose(num_experts=6), device="cpu", expert=expert)
    message = str(caught.value)
    assert "\n" not in message and "6 expert(s) and one head, for COCO's 17 keypoints (nose … right_ankle)" in message
    assert message.endswith("use --expert coco")


@pytest.mark.parametrize("expert, keypoints, labels", [("aic", 14, None), ("wholebody", 133, None),
                                                       ("ap10k", 17, AP10K_KEYPOINTS)])  # fmt: skip
def test_an_expert_whose_head_the_checkpoint_has_gives_that_heads_keypoints(rng, expert, keypoints, labels):
    estimator = PoseEstimator(tiny_vitpose(num_experts=6, num_keypoints=keypoints, labels=labels), device="cpu",
                              expert=expert)  # fmt: skip
    poses = estimator(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8), np.array([[5, 5, 60, 75]], np.float32))
    assert estimator.expert == EXPERTS[expert] and poses.keypoints.shape == (1, keypoints, 2)
    assert poses.keypoint_names == (labels or tuple(f"keypoint_{i}" for i in range(keypoints)))


def test_a_model_loads_from_a_saved_directory_with_its_processor(pose_dir, pose_model, rng):
    from_dir = PoseEstimator(pose_dir, device="cpu")
    from_instance = PoseEstimator(pose_model, device="cpu")
    assert (from_dir.crop.height, from_dir.crop.width) == (256, 192)
    image = rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 80, 90]], np.float32)
    assert np.allclose(from_dir(image, boxes).keypoints, from_instance(image, boxes).keypoints, atol=1e-4)


@pytest.mark.parametrize("spec", ["/nonexistent/vitpose", "no-such-org/no-such-model"])
def test_a_model_that_cannot_be_found_is_one_clear_error(spec):
    with pytest.raises(ModelLoadError) as error:
        PoseEstimator(spec, device="cpu")
    message = str(error.value)
    assert spec in message and "--model" in message and "\n" not in message


def test_keypoint_names_come_from_the_head_size(rng):
    assert PoseEstimator(tiny_vitpose(num_keypoints=17), device="cpu").skeleton.keypoint_names[0] == "nose"
    other = PoseEstimator(tiny_vitpose(num_keypoints=5), device="cpu")
    assert other.skeleton.keypoint_names == tuple(f"keypoint_{i}" for i in range(5))
    poses = other(rng.integers(0, 256, (60, 60, 3), dtype=np.uint8), np.array([[5, 5, 50, 55]], np.float32))
    assert poses.keypoints.shape == (1, 5, 2) and poses.edges == ()


def test_the_public_names_come_from_the_package():
    import vitpose_live

    assert vitpose_live.PoseEstimator is PoseEstimator
    assert vitpose_live.PersonDetector.__name__ == "PersonDetector" and vitpose_live.Poses is Poses


def test_a_read_only_image_and_boxes_from_pil_run_without_warnings(estimator, detector_model, rng):
    import warnings

    import PIL.Image
    from vitpose_live import PersonDetector

    image = np.asarray(PIL.Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)))
    boxes = np.array([[4, 4, 60, 50]], np.float32)
    boxes.setflags(write=False)
    assert not image.flags.writeable
    detector = PersonDetector(detector_model, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detector(image)
        poses = estimator(image, boxes)
    assert poses.keypoints.shape == (1, 17, 2)


def test_a_loaded_vitpose_plus_runs_only_its_expert_with_the_same_heatmaps_bit_for_bit(tmp_path, rng):
    """transformers runs all six experts of every ViTPose++ feed-forward layer and masks five
    away; a model the engine loads runs the one it uses."""
    model = tiny_vitpose(num_experts=6, num_keypoints=16)  # an MPII head: expert 2
    model.save_pretrained(tmp_path)
    pose_processor().save_pretrained(tmp_path)
    estimator = PoseEstimator(str(tmp_path), device="cpu")
    crops = torch.rand(3, 3, 256, 192)
    with torch.no_grad():
        expected = model(pixel_values=crops, dataset_index=torch.full((3,), 2)).heatmaps
    experts_run = []
    for layer in estimator.model.modules():
        if type(layer).__name__ == "OneExpertMoe":
            for index, expert in enumerate(layer):
                expert.register_forward_hook(lambda *_, index=index: experts_run.append(index))
    assert torch.equal(estimator.forward(crops), expected)
    layers = model.config.backbone_config.num_hidden_layers
    assert experts_run == [2] * layers
