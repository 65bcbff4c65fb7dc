"""The dynamic query: everything the dynamic part of the model predicts at a set of samples (Semantic Flow paper, §3).

At normalised positions and times it evaluates the dynamic radiance field, the scene flow and the
trajectory over the K frames t-h .. t+h (Euler steps of the scene flow); the semantic head then sees
the frame features along that trajectory (flow feature aggregation, paper §3.2) mixed by flow
attention, plus the point's own field feature (paper §3.3).

The semantic head runs only on chosen samples, named by one flat index tensor over the samples
(:func:`semantic_sample_index`) and gathered once (:func:`take_samples`).

The functions take the model, whose submodules (fields, scene flow, timeline, aggregator, attention,
semantic head) they use; they hold no state of their own.
"""

from typing import TYPE_CHECKING, NamedTuple

import torch
from jaxtyping import Float, Int
from torch import Tensor

from semflow_ns.field_components.scene_flow import SceneFlow
from semflow_ns.fields.radiance_field import RadianceSamples

if TYPE_CHECKING:
    from semflow_ns.models.semflow_model import SemanticFlowModel

MIN_OPACITY = 1e-4
"""Dynamic samples with a lower opacity α_d get no semantic prediction at render time (zero logits)."""


class DynamicQuery(NamedTuple):
    """Everything the dynamic part predicts at a set of samples, except semantics."""

    unit: Float[Tensor, "*bs 3"]
    """Normalised positions of the samples."""
    radiance: RadianceSamples
    flow: SceneFlow
    trajectory: Float[Tensor, "*bs num_frames 3"]
    """Normalised positions of the sample over the window t-h .. t+h."""
    frames: Int[Tensor, "*bs"]
    """Video frame nearest to each sample's time."""


class HeadSamples(NamedTuple):
    """The inputs of the dynamic semantic head at the chosen samples (flattened: one row per sample)."""

    unit: Float[Tensor, "num_kept 3"]
    trajectory: Float[Tensor, "num_kept num_frames 3"]
    frames: Int[Tensor, "num_kept"]
    features: Float[Tensor, "num_kept feature_dim"]


def trajectory(
    model: "SemanticFlowModel",
    unit: Float[Tensor, "*bs 3"],
    times: Float[Tensor, "*bs 1"],
    frames: Int[Tensor, "*bs"],
    flow: SceneFlow,
) -> Float[Tensor, "*bs num_frames 3"]:
    """Positions over t-h .. t+h by integrating the scene flow frame by frame (Euler steps)."""
    points = {0: unit}
    for direction in (1, -1):
        cur, cur_times, cur_frames, first = unit, times, frames, flow
        for k in range(1, model.half_window + 1):
            interval = model.timeline.interval(cur_frames, direction)
            cur = model.scene_flow.step(cur, cur_times, interval, direction, first=first)
            cur_times, cur_frames, first = cur_times + direction * interval, cur_frames + direction, None
            points[direction * k] = cur
    return torch.stack([points[k] for k in range(-model.half_window, model.half_window + 1)], dim=-2)


def dynamic_query(
    model: "SemanticFlowModel", unit: Float[Tensor, "*bs 3"], times: Float[Tensor, "*bs 1"]
) -> DynamicQuery:
    """Dynamic field, scene flow and trajectory at normalised positions and times."""
    frames = model.timeline.nearest_frame(times)
    flow = model.scene_flow(unit, times)
    radiance = model.dynamic_field(model.normalizer.grid_coords(unit), times)
    return DynamicQuery(unit, radiance, flow, trajectory(model, unit, times, frames, flow), frames)


def semantic_sample_index(
    weights: Float[Tensor, "num_rays num_samples 1"], keep: int, training: bool
) -> Int[Tensor, "num_kept"]:
    """The samples the dynamic semantic head runs on, as flat indices over ``num_rays * num_samples``.

    Args:
        weights: in training, the dynamic weights: the ``keep`` samples per ray with the largest ones are
            chosen (every sample if ``keep`` is 0 or at least ``num_samples``); their weights carry almost
            all of the rendered logits. Otherwise the dynamic opacities α_d: samples with α_d above
            ``MIN_OPACITY`` are chosen; the others cannot contribute to any render (every dynamic weight
            has a factor α_d).
        keep: samples per ray in training (the ``semantic_samples`` option).
        training: which of the two rules applies.
    """
    num_rays, num_samples = weights.shape[:2]
    if not training:
        return (weights[..., 0] > MIN_OPACITY).flatten().nonzero()[:, 0]
    if 0 < keep < num_samples:
        top = weights[..., 0].detach().topk(keep, dim=-1).indices
        return (top + num_samples * torch.arange(num_rays, device=weights.device)[:, None]).flatten()
    return torch.arange(num_rays * num_samples, device=weights.device)


def take_samples(query: DynamicQuery, index: Int[Tensor, "num_kept"]) -> HeadSamples:
    """The head inputs of the samples ``index`` (flat indices over the query's sample dimensions)."""
    rows = query.frames.numel()
    return HeadSamples(
        unit=query.unit.reshape(rows, -1)[index],
        trajectory=query.trajectory.reshape(rows, *query.trajectory.shape[-2:])[index],
        frames=query.frames.reshape(rows)[index],
        features=query.radiance.features.reshape(rows, -1)[index],
    )


def semantic_input(model: "SemanticFlowModel", samples: HeadSamples) -> Float[Tensor, "num_kept out_dim"]:
    """Flow feature aggregation + flow attention over the trajectory tokens (paper §3.2)."""
    assert model.aggregator is not None and model.attention is not None
    unit, points = samples.unit, samples.trajectory
    if model.config.detach_trajectory_features:
        points = points.detach()
    offsets = torch.arange(-model.half_window, model.half_window + 1, device=unit.device)
    token_frames, exists = model.timeline.neighbour(samples.frames[..., None], offsets)
    feats, valid = model.aggregator(model.normalizer.to_world(points), token_frames, exists)
    displacement = torch.cat(
        [points - unit[..., None, :], offsets.to(unit.dtype).expand(*token_frames.shape)[..., None]], dim=-1
    )
    return model.attention(feats, valid, displacement)


def dynamic_head(
    model: "SemanticFlowModel", query: DynamicQuery, index: Int[Tensor, "num_kept"]
) -> Float[Tensor, "num_kept num_logits"]:
    """Semantic head on the samples ``index`` of the query (paper §3.3)."""
    samples = take_samples(query, index)
    config = model.config
    if config.semantic_source != "flow":
        return model.semantic_head(samples.features)
    flow = semantic_input(model, samples)
    return model.semantic_head(torch.cat([flow, samples.features], dim=-1) if config.semantic_field_features else flow)


def dynamic_logits(
    model: "SemanticFlowModel", query: DynamicQuery, weights: Float[Tensor, "num_rays num_samples 1"]
) -> Float[Tensor, "num_rays num_samples num_logits"]:
    """Semantic (and instance) logits of the dynamic part at every sample; zero where the head did not run.

    ``weights`` chooses the samples, see :func:`semantic_sample_index`; the zero logits of the others
    contribute nothing to a render.
    """
    index = semantic_sample_index(weights, model.config.semantic_samples, model.training)
    num_rays, num_samples = weights.shape[:2]
    logits = weights.new_zeros(num_rays * num_samples, model.num_classes + model.num_instance_ids)
    if index.numel():
        logits = logits.index_put((index,), dynamic_head(model, query, index))
    return logits.view(num_rays, num_samples, -1)
