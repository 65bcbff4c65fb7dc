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

from jaxtyping import Float, Int
from torch import Tensor

from semflow_ns.field_components.scene_flow import SceneFlow


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
    neighbour_two: Int[Tensor, "num_warped"]
    """The video frame two frames away in this direction, of each warped ray (clamped into the video)."""
    exists_two: Float[Tensor, "num_warped 1"]
    """1 where that frame exists."""
    points_two: Float[Tensor, "num_warped 3"]
    """Expected world point of each warped ray's samples moved on by a second step of the scene flow (from the
    warped samples), for the optical flow over two frames."""
    flow_valid_two: Float[Tensor, "num_warped 1"]
    """1 where the dynamic weights of the ray accumulate enough for ``points_two`` to mean something."""


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
