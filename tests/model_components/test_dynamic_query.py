"""Choosing the samples of the dynamic semantic head: one flat index tensor, gathered once."""

import torch

from semflow_ns.field_components.scene_flow import SceneFlow
from semflow_ns.fields.radiance_field import RadianceSamples
from semflow_ns.model_components.dynamic_query import (
    MIN_OPACITY,
    DynamicQuery,
    semantic_sample_index,
    take_samples,
)


def test_training_keeps_the_samples_with_the_largest_weights_of_each_ray():
    weights = torch.tensor([[0.1, 0.5, 0.0, 0.3], [0.0, 0.0, 0.9, 0.2]])[..., None]
    index = semantic_sample_index(weights, keep=2, training=True)
    assert index.tolist() == [1, 3, 6, 7]  # flat over 2 rays x 4 samples, best first within a ray


def test_training_keeps_every_sample_when_asked_to():
    weights = torch.rand(3, 4, 1)
    for keep in (0, 4, 9):
        assert semantic_sample_index(weights, keep=keep, training=True).tolist() == list(range(12))


def test_rendering_keeps_the_visible_samples():
    opacity = torch.tensor([[MIN_OPACITY / 2, 0.5], [0.2, 0.0]])[..., None]
    assert semantic_sample_index(opacity, keep=1, training=False).tolist() == [1, 2]
    assert semantic_sample_index(torch.zeros(2, 3, 1), keep=1, training=False).numel() == 0


def test_take_samples_gathers_every_head_input_with_one_index():
    num_rays, num_samples, num_frames = 2, 3, 3
    unit = torch.arange(num_rays * num_samples * 3.0).view(num_rays, num_samples, 3)
    trajectory = unit[..., None, :] + torch.arange(num_frames)[:, None]
    features = -unit[..., :2]
    frames = torch.arange(num_rays * num_samples).view(num_rays, num_samples)
    zeros = torch.zeros(num_rays, num_samples, 1)
    radiance = RadianceSamples(density=zeros, rgb=unit, features=features, blend=zeros)
    query = DynamicQuery(unit, radiance, SceneFlow(unit, unit), trajectory, frames)
    picked = take_samples(query, torch.tensor([4, 0]))
    assert torch.equal(picked.unit, torch.stack([unit[1, 1], unit[0, 0]]))
    assert torch.equal(picked.trajectory, torch.stack([trajectory[1, 1], trajectory[0, 0]]))
    assert picked.frames.tolist() == [4, 0]
    assert torch.equal(picked.features, torch.stack([features[1, 1], features[0, 0]]))
