"""Folding batch norms into convolutions changes no output beyond float rounding; the simple
decoder's channels-last upsampling changes none at all."""

import sys
from pathlib import Path

import numpy as np
import torch
from support.models import tiny_rtdetr, tiny_vitpose

from vitpose_live.models.detector import PersonDetector
from vitpose_live.models.fuse import ChannelsLastUpsample, channels_last_upsampling, fold_batch_norms
from vitpose_live.models.pose import PoseEstimator

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


def norms(model):
    return [m for m in model.modules() if "BatchNorm" in type(m).__name__]


def randomise_norm_statistics(model, seed=0):
    """Fresh norms are identities; give them real statistics so that folding has work to do."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for norm in norms(model):
            for name in ("weight", "bias", "running_mean"):
                getattr(norm, name).copy_(torch.randn(getattr(norm, name).shape, generator=generator) * 0.5)
            norm.running_var.copy_(torch.rand(norm.running_var.shape, generator=generator) + 0.5)
    return model


def test_a_folded_detector_computes_the_same_features_with_no_batch_norm_left():
    """Compared before the top-k query selection, where near-tied random scores may swap."""
    model = randomise_norm_statistics(tiny_rtdetr())
    pixels = torch.rand(2, 3, 320, 320)
    with torch.no_grad():
        before = model.model(pixel_values=pixels)
        count = len(norms(model))
        assert fold_batch_norms(model) == count > 0
        after = model.model(pixel_values=pixels)
    assert norms(model) == []
    for old, new in zip(before.encoder_last_hidden_state, after.encoder_last_hidden_state, strict=True):
        assert (old - new).abs().max() <= 1e-5 * old.abs().max()
    assert torch.allclose(before.enc_outputs_class, after.enc_outputs_class, atol=1e-4)


def test_the_real_size_detector_folds_every_norm_of_its_backbone_and_encoder():
    from bench_e2e import base_rtdetr

    model = base_rtdetr()
    count = len(norms(model))
    assert count > 90 and fold_batch_norms(model) == count and norms(model) == []


def test_a_model_in_training_mode_is_left_alone():
    model = tiny_rtdetr().train()
    count = len(norms(model))
    assert fold_batch_norms(model) == 0 and len(norms(model)) == count


def test_a_detector_folds_the_model_it_loads_and_finds_the_same_persons(detector_dir, rng):
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    folded = PersonDetector(detector_dir, device="cpu")
    plain = PersonDetector(detector_dir, device="cpu", fold_norms=False)
    assert norms(folded.model) == [] and norms(plain.model) != []
    a, b = folded(image).boxes, plain(image).boxes  # near-tied random scores may swap places
    assert np.allclose(a[np.lexsort(a.T)], b[np.lexsort(b.T)], atol=1e-2)


def test_a_ready_model_instance_is_used_as_given():
    model = tiny_rtdetr()
    count = len(norms(model))
    PersonDetector(model, device="cpu")
    assert len(norms(model)) == count


def test_a_loaded_simple_decoder_upsamples_in_channels_last_to_the_same_heatmaps_bit_for_bit(pose_dir, pose_model):
    loaded = PoseEstimator(pose_dir, device="cpu")
    assert type(loaded.model.head.upsampling) is ChannelsLastUpsample
    crops = torch.randn(6, 3, 256, 192, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(loaded.forward(crops), pose_model(pixel_values=crops).heatmaps)
    assert type(pose_model.head.upsampling) is torch.nn.Upsample  # a ready instance is used as given


def test_only_a_simple_decoders_bilinear_upsampling_is_rewritten():
    assert channels_last_upsampling(tiny_vitpose(simple=False)) == 0
    assert channels_last_upsampling(tiny_rtdetr()) == 0
    model = tiny_vitpose()
    assert channels_last_upsampling(model) == 1 and channels_last_upsampling(model) == 0
