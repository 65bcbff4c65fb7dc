"""The frame encoder and its feature bank: the output convolution computed cheaply, and features of neighbour
frames kept between training steps."""

import torch
import torch.nn.functional as F

from semflow_ns.field_components.frame_encoder import FrameEncoder, FrameEncoderConfig, FrameFeatureBank


def test_the_split_output_convolution_equals_the_convolution_of_the_concatenated_maps():
    torch.manual_seed(0)
    encoder = FrameEncoder(FrameEncoderConfig(feature_dim=5, hidden_dim=4))
    images = torch.rand(2, 3, 20, 28)
    fine = encoder.fine((images - 0.5) / 0.25)
    coarse = F.interpolate(encoder.coarse(fine), size=fine.shape[-2:], mode="bilinear", align_corners=False)
    expected = encoder.out(torch.cat([fine, coarse], dim=1))
    assert torch.allclose(encoder(images), expected, atol=1e-5)


def _bank(refresh_steps: int) -> FrameFeatureBank:
    torch.manual_seed(0)
    frames = torch.randint(0, 255, (6, 12, 16, 3), dtype=torch.uint8)
    return FrameFeatureBank(
        FrameEncoderConfig(feature_dim=3, hidden_dim=4, neighbour_refresh_steps=refresh_steps), frames
    )


def _change_encoder(bank: FrameFeatureBank) -> None:
    with torch.no_grad():
        bank.encoder.out.bias.add_(1.0)


def test_in_training_only_the_fresh_frames_carry_gradients():
    bank = _bank(refresh_steps=5)
    features = bank(torch.tensor([1, 2, 3]), fresh=torch.tensor([2, 2]))
    features.sum().backward()
    assert bank.encoder.out.bias.grad is not None
    # the gradient reaches the encoder through frame 2 alone: one frame's worth of bias gradient per channel
    assert torch.allclose(bank.encoder.out.bias.grad, torch.full((3,), float(features[1, 0].numel())))


def test_neighbour_features_are_kept_until_they_are_too_old():
    bank = _bank(refresh_steps=2)
    ids, fresh = torch.tensor([0, 1]), torch.tensor([0])
    bank.set_step(0)
    first = bank(ids, fresh).detach()
    _change_encoder(bank)
    bank.set_step(2)  # two steps old: still used
    kept = bank(ids, fresh).detach()
    assert torch.equal(kept[1], first[1]), "frame 1 (a neighbour) keeps its features"
    assert not torch.equal(kept[0], first[0]), "frame 0 (fresh) follows the encoder"
    bank.set_step(3)  # three steps old: recomputed
    refreshed = bank(ids, fresh).detach()
    with torch.no_grad():
        current = bank.encoder(bank.images[ids])
    assert torch.allclose(refreshed, current, atol=1e-6)


def test_a_frame_refreshed_as_a_fresh_frame_serves_later_steps_as_a_neighbour():
    bank = _bank(refresh_steps=10)
    bank.set_step(0)
    bank(torch.tensor([3]), fresh=torch.tensor([0]))  # frame 3 computed (no gradients) at step 0
    _change_encoder(bank)
    bank.set_step(4)
    bank(torch.tensor([3]), fresh=torch.tensor([3]))  # frame 3 is a batch frame at step 4
    bank.set_step(5)
    as_neighbour = bank(torch.tensor([3, 0]), fresh=torch.tensor([0]))[0]
    with torch.no_grad():
        assert torch.allclose(as_neighbour, bank.encoder(bank.images[[3]])[0], atol=1e-6)


def test_without_refresh_steps_every_frame_is_encoded_with_gradients():
    bank = _bank(refresh_steps=0)
    features = bank(torch.tensor([1, 2]), fresh=torch.tensor([2]))
    features.sum().backward()
    assert torch.allclose(bank.encoder.out.bias.grad, torch.full((3,), float(features[:, 0].numel())))
