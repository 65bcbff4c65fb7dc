"""Static and dynamic radiance fields: outputs, switches and gradients."""

import math

import pytest
import torch

from semflow_ns.fields.encoding import PlaneEncodingConfig
from semflow_ns.fields.radiance_field import RadianceField, RadianceFieldConfig

CONFIG = RadianceFieldConfig(
    planes=PlaneEncodingConfig(resolutions=(8,), num_components=4), hidden_dim=16, feature_dim=5
)


def test_static_field_outputs():
    field = RadianceField(CONFIG, time_dependent=False)
    out = field(torch.rand(3, 7, 3) * 2 - 1)
    assert out.density.shape == (3, 7, 1) and (out.density > 0).all()
    assert out.rgb.shape == (3, 7, 3) and ((out.rgb >= 0) & (out.rgb <= 1)).all()
    assert out.features.shape == (3, 7, 5) and field.feature_dim == 5
    assert out.blend is None


def test_dynamic_field_has_a_blending_weight_and_needs_times():
    field = RadianceField(CONFIG, time_dependent=True, num_frames=4)
    coords = torch.rand(3, 7, 3) * 2 - 1
    out = field(coords, times=torch.rand(3, 7, 1))
    assert out.blend is not None and out.blend.shape == (3, 7, 1)
    assert ((out.blend > 0) & (out.blend < 1)).all()
    with pytest.raises(ValueError, match="times"):
        field(coords)


def test_a_zero_density_layer_gives_the_density_of_its_bias():
    """density = exp(raw - 1) with the first output of the density MLP as raw."""
    field = RadianceField(CONFIG, time_dependent=False)
    last = field.density_mlp.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[0] = 3.0
    out = field(torch.rand(10, 3) * 2 - 1)
    assert torch.allclose(out.density, torch.full_like(out.density, math.exp(2.0)))
    assert torch.equal(out.features, torch.zeros_like(out.features))


def test_colour_depends_on_the_direction_only_when_view_dependent():
    coords = torch.rand(8, 3) * 2 - 1
    up, side = torch.tensor([0.0, 0.0, 1.0]).expand(8, 3), torch.tensor([1.0, 0.0, 0.0]).expand(8, 3)
    plain = RadianceField(CONFIG, time_dependent=False)
    assert torch.equal(plain(coords, directions=up).rgb, plain(coords, directions=side).rgb)
    viewing = RadianceField(RadianceFieldConfig(**{**vars(CONFIG), "view_dependent": True}), time_dependent=False)
    assert not torch.allclose(viewing(coords, directions=up).rgb, viewing(coords, directions=side).rgb)
    assert torch.equal(viewing(coords, directions=up).density, viewing(coords, directions=side).density)


def test_gradients_reach_every_parameter():
    field = RadianceField(CONFIG, time_dependent=True, num_frames=4)
    out = field(torch.rand(400, 3) * 2 - 1, times=torch.rand(400, 1))
    assert out.blend is not None
    (out.density.sum() + out.rgb.sum() + out.features.sum() + out.blend.sum()).backward()
    missing = [n for n, p in field.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
