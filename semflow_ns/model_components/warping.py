"""Training-only terms from the samples warped by the scene flow, as typed values for the loss pass.

In training, :meth:`SemanticFlowModel.get_outputs` adds two entries to its outputs (never at render time,
so the renderers only ever see tensors):

- ``outputs["warped"]``: :class:`WarpedRenders`, one :class:`WarpedRender` per direction (t+1, t-1).
  Each holds the dynamic part rendered again from the samples warped to the neighbouring frame (warped
  colour and the paper's semantic consistency), the expected warped point of every ray (optical flow,
  DynNeRF) and the flows a cycle-consistency term compares;
- ``outputs["flow_regularisers"]``: :class:`FlowRegularisers`, the per-sample scene flow and weights
  the regularisers (slow, temporal and spatial smoothness, static flow, sparsity; DynNeRF, Gao et al.
  2021) reduce.

Every reduction and weight is applied in :meth:`SemanticFlowModel.get_loss_dict`, through
:func:`~semflow_ns.model_components.loss_terms.warped_losses` and
:func:`~semflow_ns.model_components.loss_terms.regulariser_losses`.
Both are dataclasses, so DDP (``find_unused_parameters``) finds the tensors in them.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from nerfstudio.cameras.rays import RaySamples
from torch import Tensor

from semflow_ns.field_components.scene_flow import SceneFlow
from semflow_ns.model_components.dynamic_query import DynamicQuery, dynamic_logits, dynamic_query
from semflow_ns.model_components.rendering import composite, expected_point

if TYPE_CHECKING:
    from semflow_ns.models.semflow_model import SemanticFlowModel


@dataclass
class WarpedRender:
    """The batch seen one frame away (direction +1: t+1, -1: t-1)."""

    neighbour: Int[Tensor, "num_rays"]
    """The neighbouring video frame of each ray (clamped into the video)."""
    exists: Float[Tensor, "num_rays 1"]
    """1 where that frame exists (not beyond the ends of the video)."""
    points: Float[Tensor, "num_rays 3"]
    """Expected world point of each ray's samples warped to the neighbouring frame (every ray)."""
    flow_valid: Float[Tensor, "num_rays 1"]
    """1 where the dynamic weights of the ray accumulate enough for ``points`` to mean something."""
    rgb: Float[Tensor, "num_warped 3"]
    """Dynamic colour rendered from the warped samples of the rays ``WarpedRenders.rays``."""
    label_logits: Float[Tensor, "num_warped num_logits"]
    """Dynamic class (and instance) logits rendered from the same warped samples."""
    flow_there: Float[Tensor, "num_warped num_samples 3"]
    """Scene flow from the samples toward the neighbouring frame."""
    flow_back: Float[Tensor, "num_warped num_samples 3"]
    """Scene flow from the warped samples back (cycle consistency: ``flow_there + flow_back`` = 0)."""
    flow: SceneFlow
    """Forward and backward scene flow at the warped samples (slow and temporally smooth flow)."""


@dataclass
class WarpedRenders:
    """Both warped directions of a training batch."""

    rays: Int[Tensor, "num_warped"]
    """Rays whose samples are warped and rendered again (a random ``warped_ray_fraction`` of the batch)."""
    next: WarpedRender
    prev: WarpedRender
    frames: Int[Tensor, "num_rays"]
    """The video frame of each ray of the batch (the one the neighbours are one frame away from)."""

    def directions(self) -> tuple[tuple[str, WarpedRender], ...]:
        """(name, render) pairs, t+1 first: the order of the loss terms."""
        return (("next", self.next), ("prev", self.prev))


@dataclass
class FlowRegularisers:
    """Per-sample inputs of the scene-flow and sparsity regularisers, at every sample of the batch."""

    flow: SceneFlow
    """Scene flow at the samples."""
    weights_dynamic: Float[Tensor, "num_rays num_samples 1"]
    """Compositing weights of the dynamic field alone."""
    blend: Float[Tensor, "num_rays num_samples 1"]
    """DynNeRF blending weights."""


def render_warped(
    model: "SemanticFlowModel",
    ray_samples: RaySamples,
    times: Float[Tensor, "num_rays num_samples 1"],
    query: DynamicQuery,
    weights_dynamic: Float[Tensor, "num_rays num_samples 1"],
) -> WarpedRenders:
    """Renders from the samples warped to the neighbouring frames, and the expected warped points.

    The expected points use every ray (they need no extra field evaluation); the renders from warped
    samples, which query the dynamic part again at t-1 and t+1, use a random subset of
    ``warped_ray_fraction`` of the rays.
    """
    num_rays = ray_samples.shape[0]
    rays = torch.randperm(num_rays, device=times.device)[: max(1, round(num_rays * model.config.warped_ray_fraction))]
    ray_frames = query.frames[:, 0]
    subset = ray_samples[rays]
    renders = {}
    for direction in (1, -1):
        interval = model.timeline.interval(query.frames, direction)
        warped_unit = query.trajectory[..., model.half_window + direction, :]
        neighbour, exists = model.timeline.neighbour(ray_frames, direction)
        points, flow_valid = expected_point(
            weights_dynamic, model.normalizer.to_world(warped_unit), model.config.flow_min_accumulation
        )
        warped = dynamic_query(model, warped_unit[rays], (times + direction * interval)[rays])
        weights = subset.get_weights(warped.radiance.density)
        logits = dynamic_logits(model, warped, weights)
        renders[direction] = WarpedRender(
            neighbour=neighbour,
            exists=exists[:, None].float(),
            points=points,
            flow_valid=flow_valid,
            rgb=composite(weights, warped.radiance.rgb),
            label_logits=model.render_logits(weights, logits),
            flow_there=query.flow.toward(direction)[rays],
            flow_back=warped.flow.toward(-direction),
            flow=warped.flow,
        )
    return WarpedRenders(rays=rays, next=renders[1], prev=renders[-1], frames=ray_frames)
