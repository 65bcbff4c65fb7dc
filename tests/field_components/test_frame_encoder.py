"""The frame encoder and its feature bank: the output convolution computed cheaply, features normalised per pixel
and scaled by a fixed gain (encoders saved before either option load without it), and features of neighbour frames
kept between training steps."""

from typing import Optional

import torch
import torch.nn.functional as F
import yaml

from semflow_ns.field_components.frame_encoder import (
    FrameEncoder,
    FrameEncoderConfig,
    FrameFeatureBank,
    sample_feature_maps,
)


def test_the_split_output_convolution_equals_the_convolution_of_the_concatenated_maps():
    torch.manual_seed(0)
    encoder = FrameEncoder(FrameEncoderConfig(feature_dim=5, hidden_dim=4, normalize_features=False))
    images = torch.rand(2, 3, 20, 28)
    fine = encoder.fine((images - 0.5) / 0.25)
    coarse = F.interpolate(encoder.coarse(fine), size=fine.shape[-2:], mode="bilinear", align_corners=False)
    expected = encoder.out(torch.cat([fine, coarse], dim=1))
    assert torch.allclose(encoder(images), expected, atol=1e-5)


def test_normalised_features_stay_bounded_however_large_the_weights_grow():
    torch.manual_seed(0)
    plain = FrameEncoder(FrameEncoderConfig(feature_dim=5, hidden_dim=4, normalize_features=False))
    normalised = FrameEncoder(
        FrameEncoderConfig(feature_dim=5, hidden_dim=4, normalize_features=True, feature_gain=1.0)
    )
    normalised.load_state_dict(plain.state_dict())  # the option adds no parameters
    images = torch.rand(2, 3, 20, 28)
    with torch.no_grad():
        for encoder in (plain, normalised):
            encoder.out.weight.mul_(1000.0)
    raw, features = plain(images), normalised(images)
    assert raw.abs().max() > 100.0
    assert torch.allclose(features.mean(dim=1), torch.zeros(()), atol=1e-4)
    assert torch.allclose(features.var(dim=1, unbiased=False), torch.ones(()), atol=1e-3)
    # the same features up to each pixel's offset and scale
    expected = (raw - raw.mean(1, keepdim=True)) / raw.var(1, unbiased=False, keepdim=True).add(1e-5).sqrt()
    assert torch.allclose(features, expected, atol=1e-4)


def test_the_feature_gain_sets_the_size_of_the_normalised_features_and_old_runs_load_without_it():
    torch.manual_seed(0)
    unit = FrameEncoder(FrameEncoderConfig(feature_dim=5, hidden_dim=4, feature_gain=1.0))
    scaled = FrameEncoder(FrameEncoderConfig(feature_dim=5, hidden_dim=4, feature_gain=5.0))
    scaled.load_state_dict(unit.state_dict())  # the gain is fixed, not a parameter
    images = torch.rand(2, 3, 20, 28)
    rms = scaled(images).square().mean(dim=1).sqrt()
    assert torch.allclose(rms, torch.full_like(rms, 5.0), atol=1e-3)
    assert torch.allclose(scaled(images), 5.0 * unit(images), atol=1e-5)
    saved = "!!python/object:semflow_ns.field_components.frame_encoder.FrameEncoderConfig\nnormalize_features: true\n"
    assert FrameEncoder(yaml.load(saved, Loader=yaml.Loader)).gain == 1.0
    assert FrameEncoder(yaml.load(yaml.dump(FrameEncoderConfig(feature_gain=5.0)), Loader=yaml.Loader)).gain == 5.0


def test_an_encoder_saved_before_normalisation_existed_loads_without_it():
    old = yaml.load(
        "!!python/object:semflow_ns.field_components.frame_encoder.FrameEncoderConfig\nfeature_dim: 5\nhidden_dim: 4\n",
        Loader=yaml.Loader,
    )
    assert not FrameEncoder(old).normalize
    assert FrameEncoder(FrameEncoderConfig(feature_dim=5, hidden_dim=4)).normalize  # the default now
    saved = yaml.load(yaml.dump(FrameEncoderConfig(normalize_features=False)), Loader=yaml.Loader)
    assert not FrameEncoder(saved).normalize
    assert FrameEncoder(yaml.load(yaml.dump(FrameEncoderConfig()), Loader=yaml.Loader)).normalize


def _bank(refresh_steps: int) -> FrameFeatureBank:
    torch.manual_seed(0)
    frames = torch.randint(0, 255, (6, 12, 16, 3), dtype=torch.uint8)
    return FrameFeatureBank(
        FrameEncoderConfig(
            feature_dim=3, hidden_dim=4, neighbour_refresh_steps=refresh_steps, normalize_features=False
        ),
        frames,
    )


def read_maps(bank: FrameFeatureBank, ids: torch.Tensor, fresh: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Every texel of the feature maps of frames ``ids``, read through ``bank.lookup`` at texel centres:
    ``[len(ids), feat_dim, h, w]``."""
    height, width = bank.images.shape[-2:]
    with torch.no_grad():
        h, w = bank.encoder(bank.images[:1]).shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    uv = torch.stack([(xs.flatten() + 0.5) * width / w, (ys.flatten() + 0.5) * height / h], dim=-1)
    frames = ids[:, None].expand(len(ids), h * w)
    size = torch.tensor([float(width), float(height)]).expand(len(ids), h * w, 2)
    features = bank.lookup(frames, uv.expand(len(ids), h * w, 2), size, fresh)
    return features.transpose(1, 2).reshape(len(ids), -1, h, w)


def _change_encoder(bank: FrameFeatureBank) -> None:
    with torch.no_grad():
        bank.encoder.out.bias.add_(1.0)


def test_in_training_only_the_fresh_frames_carry_gradients():
    bank = _bank(refresh_steps=5)
    features = read_maps(bank, torch.tensor([1, 2, 3]), fresh=torch.tensor([2, 2]))
    features.sum().backward()
    assert bank.encoder.out.bias.grad is not None
    # the gradient reaches the encoder through frame 2 alone: one frame's worth of bias gradient per channel
    assert torch.allclose(bank.encoder.out.bias.grad, torch.full((3,), float(features[1, 0].numel())))


def test_neighbour_features_are_kept_until_they_are_too_old():
    bank = _bank(refresh_steps=2)
    ids, fresh = torch.tensor([0, 1]), torch.tensor([0])
    bank.set_step(0)
    first = read_maps(bank, ids, fresh).detach()
    _change_encoder(bank)
    bank.set_step(2)  # two steps old: still used
    kept = read_maps(bank, ids, fresh).detach()
    assert torch.allclose(kept[1], first[1], atol=1e-5), "frame 1 (a neighbour) keeps its features"
    assert not torch.allclose(kept[0], first[0], atol=0.5), "frame 0 (fresh) follows the encoder"
    bank.set_step(3)  # three steps old: recomputed
    refreshed = read_maps(bank, ids, fresh).detach()
    with torch.no_grad():
        current = bank.encoder(bank.images[ids])
    assert torch.allclose(refreshed, current, atol=1e-6)


def test_a_frame_refreshed_as_a_fresh_frame_serves_later_steps_as_a_neighbour():
    bank = _bank(refresh_steps=10)
    bank.set_step(0)
    read_maps(bank, torch.tensor([3]), fresh=torch.tensor([0]))  # frame 3 computed (no gradients) at step 0
    _change_encoder(bank)
    bank.set_step(4)
    read_maps(bank, torch.tensor([3]), fresh=torch.tensor([3]))  # frame 3 is a batch frame at step 4
    bank.set_step(5)
    as_neighbour = read_maps(bank, torch.tensor([3, 0]), fresh=torch.tensor([0]))[0]
    with torch.no_grad():
        assert torch.allclose(as_neighbour, bank.encoder(bank.images[[3]])[0], atol=1e-6)


def test_without_refresh_steps_every_frame_is_encoded_with_gradients():
    bank = _bank(refresh_steps=0)
    features = read_maps(bank, torch.tensor([1, 2]), fresh=torch.tensor([2]))
    features.sum().backward()
    assert torch.allclose(bank.encoder.out.bias.grad, torch.full((3,), float(features[:, 0].numel())))


def test_feature_bank_caches_without_gradients_and_recomputes_with_them():
    frames = torch.randint(0, 255, (4, 12, 16, 3), dtype=torch.uint8)
    bank = FrameFeatureBank(FrameEncoderConfig(feature_dim=3, hidden_dim=4, normalize_features=False), frames)
    with torch.no_grad():
        cached = read_maps(bank, torch.tensor([2, 0]))
        assert bank._cache is not None and bank._cache.shape[1] == 4  # every frame, channel first
    fresh = read_maps(bank, torch.tensor([2, 0]))
    assert fresh.requires_grad and bank._cache is None
    assert torch.allclose(fresh.detach(), cached, atol=1e-6)


def test_lookups_in_kept_and_fresh_frames_give_the_encoder_s_features_and_gradients_of_points():
    """One lookup mixing points in a fresh frame and in kept frames: values as the encoder gives them, gradients
    for the pixel coordinates of every point, and for the encoder through the fresh frame only."""
    bank = _bank(refresh_steps=5)
    bank.set_step(0)
    torch.manual_seed(1)
    frames = torch.tensor([[0, 3, 5], [3, 3, 1]])
    uv = (torch.rand(2, 3, 2) * torch.tensor([16.0, 12.0])).requires_grad_()
    size = torch.tensor([16.0, 12.0]).expand(2, 3, 2)
    out = bank.lookup(frames, uv, size, fresh=torch.tensor([3]))
    with torch.no_grad():
        maps = bank.encoder(bank.images).transpose(0, 1)
        expected = sample_feature_maps(maps, frames, uv, size)
    assert torch.allclose(out, expected, atol=1e-6)
    out.sum().backward()
    assert uv.grad is not None and (uv.grad.abs().sum(-1) > 0).all()
    # the encoder's bias gradient counts the lookups in frame 3 (bilinear weights sum to 1 per lookup)
    assert torch.allclose(bank.encoder.out.bias.grad, torch.full((3,), 3.0), atol=1e-5)
