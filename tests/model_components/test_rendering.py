"""Blended volume rendering weights against hand-computed values."""

import math

import torch
from nerfstudio.cameras.cameras import Cameras

from semflow_ns.field_components.flow_aggregation import VideoCameras
from semflow_ns.model_components.rendering import blended_weights, composite, expected_point, induced_flow


def test_blended_weights_by_hand():
    """Two samples, δ = 1, densities chosen so that α = 0.5 exactly."""
    ln2 = math.log(2.0)
    deltas = torch.ones(1, 2, 1)
    density_s = torch.tensor([[[ln2], [ln2]]])
    density_d = torch.tensor([[[ln2], [0.0]]])
    blend = torch.tensor([[[0.5], [0.25]]])
    w = blended_weights(deltas, density_s, density_d, blend)
    # sample 0: T=1, a_d = 0.5*0.5 = 0.25, a_s = 0.5*0.5 = 0.25
    # sample 1: T = (1-0.25)(1-0.25) = 0.5625, a_d = 0, a_s = 0.5*0.75 = 0.375
    assert torch.allclose(w.dynamic[0, :, 0], torch.tensor([0.25, 0.0]), atol=1e-6)
    assert torch.allclose(w.static[0, :, 0], torch.tensor([0.25, 0.5625 * 0.375]), atol=1e-6)
    assert torch.allclose(w.total, w.static + w.dynamic)


def test_blend_one_gives_the_dynamic_field_alone():
    deltas = torch.rand(3, 5, 1)
    density_s, density_d = torch.rand(3, 5, 1) * 3, torch.rand(3, 5, 1) * 3
    w = blended_weights(deltas, density_s, density_d, torch.ones(3, 5, 1))
    alpha = 1 - torch.exp(-density_d * deltas)
    trans = torch.cumprod(torch.cat([torch.ones(3, 1, 1), 1 - alpha[:, :-1]], dim=1), dim=1)
    assert torch.allclose(w.dynamic, alpha * trans, atol=1e-5)
    assert torch.allclose(w.static, torch.zeros_like(w.static))


def test_weights_on_one_sample_render_that_sample():
    weights = torch.zeros(2, 4, 1)
    weights[0, 2] = 1.0
    weights[1, 0] = 1.0
    values = torch.randn(2, 4, 6)
    out = composite(weights, values)
    assert torch.allclose(out[0], values[0, 2]) and torch.allclose(out[1], values[1, 0])


def test_static_point_seen_from_the_same_camera_induces_no_flow():
    cameras = Cameras(camera_to_worlds=torch.eye(4)[:3][None].repeat(2, 1, 1), fx=20.0, fy=20.0, cx=8.0, cy=8.0)
    video = VideoCameras(cameras)
    point = torch.tensor([[0.0, 0.0, -2.0]])  # on the optical axis, 2 units in front: projects to (cx, cy)
    pixel = torch.tensor([[8.0, 8.0]])
    assert torch.allclose(induced_flow(video, point, torch.tensor([1]), pixel), torch.zeros(1, 2), atol=1e-5)
    moved = point + torch.tensor([[0.1, 0.05, 0.0]])  # right and up: fx * 0.1 / 2 = 1 px right, 0.5 px up
    flow = induced_flow(video, moved, torch.tensor([1]), pixel)
    assert torch.allclose(flow, torch.tensor([[1.0, -0.5]]), atol=1e-5)


def test_expected_point_is_the_weighted_mean_and_flags_empty_rays():
    weights = torch.tensor([[[0.2], [0.2], [0.0]], [[0.0], [0.0], [0.01]]])
    points = torch.tensor([[[1.0, 0.0, 0.0], [3.0, 0.0, 2.0], [9.0, 9.0, 9.0]], [[1.0, 1.0, 1.0]] * 3])
    point, valid = expected_point(weights, points, min_accumulation=0.05)
    assert torch.allclose(point[0], torch.tensor([2.0, 0.0, 1.0]))  # not 0.4 x that, as Σ w x alone gives
    assert valid[:, 0].tolist() == [1.0, 0.0]
    assert torch.isfinite(point).all()
