"""The time-dependent proposal density field."""

import math

import torch
from nerfstudio.data.scene_box import SceneBox

from semflow_ns.fields.density_field import ProposalDensityField
from semflow_ns.fields.encoding import PlaneEncodingConfig, SceneNormalizer

PLANES = PlaneEncodingConfig(resolutions=(8,), num_components=4)


def make_field() -> ProposalDensityField:
    normalizer = SceneNormalizer(SceneBox(aabb=torch.tensor([[-2.0] * 3, [2.0] * 3])), contract=False)
    return ProposalDensityField(PLANES, normalizer, num_frames=6)


def test_density_is_positive_per_sample():
    field = make_field()
    density = field(torch.randn(5, 9, 3), times=torch.rand(5, 1, 1))  # times broadcast over the samples
    assert density.shape == (5, 9, 1)
    assert (density > 0).all()


def test_missing_times_mean_time_zero():
    field = make_field()
    with torch.no_grad():
        field.encoding.grids[0].plane_coefs[-1].uniform_(0.5, 1.5)  # a time plane: make time matter
    positions = torch.randn(4, 3)
    assert torch.equal(field(positions), field(positions, times=torch.zeros(4, 1)))
    assert not torch.allclose(field(positions), field(positions, times=torch.ones(4, 1)))


def test_a_zero_decoder_gives_the_density_of_its_bias():
    """density = exp(decoder - 1): a zero decoder with bias b gives exp(b - 1) everywhere."""
    field = make_field()
    with torch.no_grad():
        field.decoder.weight.zero_()
        field.decoder.bias.fill_(2.0)
    density = field(torch.randn(6, 3), times=torch.rand(6, 1))
    assert torch.allclose(density, torch.full_like(density, math.exp(1.0)))


def test_gradients_reach_the_grid_and_the_decoder():
    field = make_field()
    field(torch.rand(300, 3) * 4 - 2, times=torch.rand(300, 1)).sum().backward()
    missing = [n for n, p in field.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
