"""Scene-flow field: identity at initialisation, shapes, gradients, Euler integration."""

import pytest
import torch

from semflow_ns.field_components.scene_flow import SceneFlow, SceneFlowField, SceneFlowFieldConfig
from semflow_ns.fields.encoding import PlaneEncodingConfig


def tiny_field(**overrides) -> SceneFlowField:
    config = SceneFlowFieldConfig(planes=PlaneEncodingConfig(resolutions=(8,), num_components=4), hidden_dim=16)
    for key, value in overrides.items():
        setattr(config, key, value)
    return SceneFlowField(config, num_frames=4)


def test_zero_init_is_identity():
    """The output layer starts at zero: no motion anywhere, and stepping leaves points in place."""
    field = tiny_field(num_substeps=2)
    points, times = torch.rand(4, 8, 3) * 2 - 1, torch.rand(4, 8, 1)
    flow = field(points, times)
    assert torch.equal(flow.forward, torch.zeros_like(points))
    assert torch.equal(flow.backward, torch.zeros_like(points))
    moved = field.step(points, times, torch.full_like(times, 0.25), direction=1)
    assert torch.equal(moved, points)


def test_shapes_and_bound():
    field = tiny_field(max_displacement=0.1)
    torch.nn.init.normal_(field.head.weight, std=10.0)
    flow = field(torch.rand(3, 5, 3) * 2 - 1, torch.rand(3, 5, 1))
    assert flow.forward.shape == flow.backward.shape == (3, 5, 3)
    assert flow.forward.abs().max() <= 0.1 + 1e-6


def test_gradients_reach_every_parameter_once_the_head_is_perturbed():
    field = tiny_field()
    torch.nn.init.normal_(field.head.weight, std=0.1)
    flow = field(torch.rand(64, 3) * 2 - 1, torch.rand(64, 1))
    (flow.forward.square().sum() + flow.backward.square().sum()).backward()
    for name, param in field.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_direction_selects_the_matching_head():
    flow = SceneFlow(forward=torch.ones(2, 3), backward=-torch.ones(2, 3))
    assert torch.equal(flow.toward(1), flow.forward)
    assert torch.equal(flow.toward(-1), flow.backward)


def test_euler_substeps_integrate_a_constant_velocity():
    """With a constant displacement d per frame, n sub-steps of d/n move a point by exactly d."""
    field = tiny_field(num_substeps=4)
    with torch.no_grad():
        field.head.bias.copy_(torch.atanh(torch.tensor([0.4, 0.0, 0.0, -0.4, 0.0, 0.0])))  # constant motion
    points = torch.zeros(1, 3)
    moved = field.step(points, torch.zeros(1, 1), torch.full((1, 1), 0.1), direction=1)
    expected = field(points, torch.zeros(1, 1)).forward
    assert torch.allclose(moved, expected, atol=1e-6)
    back = field.step(points, torch.zeros(1, 1), torch.full((1, 1), 0.1), direction=-1)
    assert torch.allclose(back, -expected, atol=1e-6)


@pytest.mark.parametrize("window", [2, 4, 1])
def test_invalid_window_raises(window):
    with pytest.raises(ValueError, match="odd number"):
        tiny_field(window=window)


def test_out_of_range_inputs_stay_finite():
    field = tiny_field()
    torch.nn.init.normal_(field.head.weight)
    flow = field(torch.full((4, 3), 7.0), torch.full((4, 1), 3.0))
    assert torch.isfinite(flow.forward).all() and torch.isfinite(flow.backward).all()
