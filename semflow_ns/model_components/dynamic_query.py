"""The dynamic query: everything the dynamic part of the model predicts at a set of samples (Semantic Flow paper, §3).

At normalised positions and times it evaluates the dynamic radiance field, the scene flow and the
trajectory over the K frames t-h .. t+h (Euler steps of the scene flow); the semantic head then sees
the frame features along that trajectory (flow feature aggregation, paper §3.2) mixed by flow
attention, plus the point's own field feature (paper §3.3).

The semantic head runs only on chosen samples, named by one flat index tensor over the samples
(:func:`semantic_sample_index`) and gathered once (:func:`take_samples`).

:class:`~semflow_ns.fields.dynamic_branch.DynamicBranch` computes the queries and runs the head; this module
holds the values it passes around and the choice of samples.
"""

from typing import NamedTuple

import torch
from jaxtyping import Float, Int
from torch import Tensor

from semflow_ns.field_components.scene_flow import SceneFlow
from semflow_ns.fields.radiance_field import RadianceSamples

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


def semantic_sample_index(
    weights: Float[Tensor, "num_rays num_samples 1"], keep: int, training: bool
) -> Int[Tensor, "num_kept"]:
    """The samples the dynamic semantic head runs on, as flat indices over ``num_rays * num_samples``.

    Args:
        weights: in training, the dynamic weights: the ``keep`` samples per ray with the largest ones are
            chosen (every sample if ``keep`` is 0 or at least ``num_samples``); their weights carry most of
            the rendered logits. At render time the samples whose value is above ``MIN_OPACITY``: given the
            dynamic samples' compositing weights, those are the samples the render shows (the others add less
            than ``MIN_OPACITY`` times their logits); given the dynamic opacities α_d (a removal edit, which
            changes the weights), every sample that any render could show (every dynamic weight has a factor
            α_d).
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


def split_query(query: DynamicQuery, parts: int) -> list[DynamicQuery]:
    """``query`` cut into ``parts`` equal queries along its first (ray) dimension."""
    radiance, flow = query.radiance, query.flow
    pieces = [query.unit.chunk(parts), query.trajectory.chunk(parts), query.frames.chunk(parts)]
    fields = [radiance.density, radiance.rgb, radiance.features, radiance.blend, flow.forward, flow.backward]
    split = [f.chunk(parts) if f is not None else (None,) * parts for f in fields]
    return [
        DynamicQuery(
            unit=pieces[0][i],
            radiance=RadianceSamples(*(s[i] for s in split[:4])),
            flow=SceneFlow(split[4][i], split[5][i]),
            trajectory=pieces[1][i],
            frames=pieces[2][i],
        )
        for i in range(parts)
    ]
