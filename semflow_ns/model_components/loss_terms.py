"""Assembly of the weighted training losses from the model's outputs (called by ``get_loss_dict``).

Each function turns one group of outputs into named, weighted loss terms, with the weights of
:class:`~semflow_ns.models.model_config.SemanticFlowModelConfig`; the per-term arithmetic is in
:mod:`semflow_ns.model_components.losses`. The groups:

- :func:`label_losses`: cross entropy of the full, dynamic and static semantic renders (the paper's semantic loss),
  against the labels and against the labels carried along the optical flow;
- :func:`warped_losses`: warped colour, semantic consistency (the paper's loss), label propagation to
  unlabelled frames and optical flow, per direction;
- :func:`static_flow_losses`: optical flow induced by the camera's motion at the static field's surface, per
  direction;
- :func:`regulariser_losses`: cycle consistency, slow flow, temporal and spatial smoothness, static flow,
  blending and sparsity (DynNeRF regularisers, Gao et al. 2021).
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

import torch
from jaxtyping import Float, Int, Shaped
from torch import Tensor

from semflow_ns.field_components.flow_aggregation import VideoCameras
from semflow_ns.model_components import losses
from semflow_ns.model_components.rendering import composite, induced_flow
from semflow_ns.model_components.warping import FlowRegularisers, WarpedRenders

if TYPE_CHECKING:
    from semflow_ns.models.model_config import SemanticFlowModelConfig

SplitLogits = Callable[[Tensor], tuple[Tensor, Optional[Tensor]]]
"""Splits the semantic heads' logits into (class logits, instance logits or None)."""

FLOW_LABEL_KEYS = ("flow_labels", "flow_label_hops", "flow_label_unchecked", "flow_instances")
"""Batch keys of the labels carried along the optical flow (see :class:`SemanticFlowDataset`)."""

OPTICAL_FLOW_KEYS = {"next": "flow_fwd", "prev": "flow_bwd"}
"""Batch key of the estimated optical flow toward each warped direction."""


def label_losses(
    config: "SemanticFlowModelConfig",
    split_logits: SplitLogits,
    outputs: dict[str, Any],
    labels: Int[Tensor, "num_rays 1"],
    instance_labels: Optional[Int[Tensor, "num_rays 1"]],
    static_rays: Float[Tensor, "num_rays 1"],
    carried: Optional[dict[str, Tensor]] = None,
    moving_rays: Optional[Float[Tensor, "num_rays 1"]] = None,
    class_weights: Optional[Float[Tensor, "num_classes"]] = None,
) -> dict[str, Tensor]:
    """Cross entropy of the full, dynamic and static (static pixels only) renders of class and instance logits;
    given ``carried`` (the batch's ``flow_labels``, ``flow_label_hops``, ``flow_label_unchecked`` and, with
    instances, ``flow_instances``), the same against the labels carried along the optical flow, weighted by how far
    they travelled (see :func:`carried_label_weight`).

    ``moving_rays`` (1 on pixels known to move; needs the outputs ``label_logits_static_part`` and
    ``label_logits_static_fixed_head``, the static field's share of the full render with and without the head's
    gradient): with ``config.static_semantics_from_moving`` False, the static semantic head is held fixed there,
    so that the labels of moving things do not teach it their classes; the static density still takes the
    gradient (a static field that covers a moving object with background logits loses its share there). A static
    head taught a moving object's class where the object was in the labelled frames predicts that class there at
    every time: a trail of the object over the background in the other frames.

    ``class_weights`` (see :func:`class_balance_weights`) scale each ray's class term by the weight of its label."""
    out = {}
    if moving_rays is not None and not config.static_semantics_from_moving:
        static_part, fixed_head = outputs["label_logits_static_part"], outputs["label_logits_static_fixed_head"]
        static_share = torch.lerp(static_part, fixed_head, moving_rays)  # the same values
        outputs = {**outputs, "label_logits": outputs["label_logits"] - static_part + static_share}
    weight = None
    if carried is not None and config.flow_label_loss_mult > 0:
        weight = config.flow_label_loss_mult * carried_label_weight(config, carried)
        if class_weights is not None:
            weight = weight * class_weights[carried["flow_labels"].clamp(min=0)]
    label_weight = class_weights[labels.clamp(min=0)] if class_weights is not None else None
    for suffix, mult, mask in (
        ("", config.semantic_loss_mult, None),
        ("_dynamic", config.semantic_dynamic_loss_mult, None),
        ("_static", config.semantic_static_loss_mult, static_rays),
    ):
        classes, instances = split_logits(outputs[f"label_logits{suffix}"])
        out[f"semantic{suffix}"] = mult * losses.semantic_cross_entropy(classes, labels, mask, label_weight)
        if instances is not None and instance_labels is not None and suffix != "_static":
            out[f"instance{suffix}"] = config.instance_loss_mult * losses.semantic_cross_entropy(
                instances, instance_labels
            )
        if weight is None:
            continue
        assert carried is not None
        out[f"semantic_flow_labels{suffix}"] = mult * losses.semantic_cross_entropy(
            classes, carried["flow_labels"], mask, weight
        )
        if instances is not None and "flow_instances" in carried and suffix != "_static":
            out[f"instance_flow_labels{suffix}"] = config.instance_loss_mult * losses.semantic_cross_entropy(
                instances, carried["flow_instances"], weights=weight
            )
    return out


def class_balance_weights(counts: Float[Tensor, "num_classes"], exponent: float) -> Float[Tensor, "num_classes"]:
    """Per-class loss weights proportional to each class's share of ``counts`` to the power ``-exponent``, scaled
    so that the rays counted weigh 1 on average; a class not counted yet weighs as much as the rarest counted one
    (all 1 before anything is counted)."""
    total = counts.sum()
    if total <= 0:
        return torch.ones_like(counts)
    share = counts / total
    seen = share > 0
    weights = torch.where(seen, share.clamp(min=1e-12) ** -exponent, torch.zeros_like(share))
    weights = weights / (share * weights).sum()
    return torch.where(seen, weights, weights.max())


def carried_label_weight(config: "SemanticFlowModelConfig", carried: dict[str, Tensor]) -> Tensor:
    """Weight of each carried label: halved every ``flow_label_half_life`` hops, each hop that failed the
    forward-backward check counting ``flow_label_unchecked_hops`` more (inf: such labels get no weight)."""
    hops, unchecked = carried["flow_label_hops"], carried.get("flow_label_unchecked")
    if unchecked is not None:
        hops = hops + torch.where(unchecked > 0, unchecked * config.flow_label_unchecked_hops, 0.0)  # 0 x inf is nan
    return torch.exp2(-hops / config.flow_label_half_life)


def warped_losses(
    config: "SemanticFlowModelConfig",
    warped: WarpedRenders,
    split_logits: SplitLogits,
    cameras: VideoCameras,
    image: Float[Tensor, "num_rays 3"],
    labels: Int[Tensor, "num_rays 1"],
    dynamic_logits: Float[Tensor, "num_rays num_logits"],
    pixels: Float[Tensor, "num_rays 2"],
    batch: dict[str, Any],
    label_distance: Optional[Int[Tensor, "num_frames"]] = None,
) -> dict[str, Tensor]:
    """Per direction: warped colour and semantic consistency against frame t (on the warped rays, where the
    neighbouring frame exists), label propagation, and L1 between the induced and the estimated optical flow
    (every ray).

    Label propagation: on warped rays of frames without labels that see the dynamic part
    (``WarpedRender.flow_valid``), the semantics rendered from the warped samples at t±1 are pulled toward the
    (detached) dynamic semantics rendered at t. Next to the labelled frames, the semantic consistency term fixes
    the neighbours' semantics; this term carries them on, frame by frame along the scene flow, into the frames
    without labels. Given ``label_distance`` (frames from each video frame to the nearest labelled one), it runs
    outward only: t teaches t±1 only when t±1 is farther from every labelled frame than t.
    """
    out = {}
    rays = warped.rays
    unlabelled = (labels[rays] == losses.IGNORE_INDEX).to(image.dtype)
    teacher, _ = split_logits(dynamic_logits[rays])
    sure = None  # the rays whose teacher passes the confidence gate (the same in both directions)
    if config.semantic_propagation_min_confidence > 0:
        sure = confident(teacher, config.semantic_propagation_min_confidence)
    for name, render in warped.directions():
        exists = render.exists
        induced = induced_flow(cameras, render.points, render.neighbour, pixels)
        out[f"rgb_warped_{name}"] = config.rgb_warped_loss_mult * losses.masked_mse(
            render.rgb, image[rays], exists[rays]
        )
        warped_classes, _ = split_logits(render.label_logits)
        out[f"semantic_consistency_{name}"] = config.semantic_consistency_loss_mult * losses.semantic_cross_entropy(
            warped_classes, labels[rays], exists[rays]
        )
        propagating = unlabelled * exists[rays] * render.flow_valid[rays]
        if config.semantic_propagation_flow_tolerance < float("inf"):
            propagating = (
                propagating * flow_agrees(induced, batch, name, config.semantic_propagation_flow_tolerance)[rays]
            )
        if sure is not None:
            propagating = propagating * sure
        if label_distance is not None:
            outward = label_distance[render.neighbour] > label_distance[warped.frames]
            propagating = propagating * outward[rays, None].to(propagating.dtype)
        propagation = config.semantic_propagation_loss_mult or 0.0  # None (left to the data) resolves to a number
        out[f"semantic_propagation_{name}"] = propagation * losses.pseudo_label_cross_entropy(
            warped_classes, teacher, propagating
        )
        out[f"optical_flow_{name}"] = config.optical_flow_loss_mult * flow_against_estimate(
            induced, batch, name, exists * render.flow_valid
        )
        if config.two_frame_flow_loss_mult > 0 and f"{OPTICAL_FLOW_KEYS[name]}2" in batch:
            induced_two = induced_flow(cameras, render.points_two, render.neighbour_two, pixels[rays])
            out[f"optical_flow_two_{name}"] = config.two_frame_flow_loss_mult * flow_against_estimate(
                induced_two, batch, name, render.exists_two * render.flow_valid_two, rays=rays, frames=2
            )
    return out


def flow_estimate(
    batch: dict[str, Any], direction: str, device: torch.device, frames: int = 1
) -> tuple[Shaped[Tensor, "num_rays 2"], Shaped[Tensor, "num_rays 1"]]:
    """The batch's estimated optical flow toward ``direction`` ("next" or "prev") over ``frames`` (1 or 2) frames,
    and its forward-backward consistency mask, on ``device``, as stored (the two-frame flow is half precision and
    its mask uint8)."""
    key = OPTICAL_FLOW_KEYS[direction] + ("2" if frames == 2 else "")
    return batch[key].to(device), batch[f"{key}_valid"].to(device)


def flow_against_estimate(
    induced: Float[Tensor, "num_rays 2"],
    batch: dict[str, Any],
    direction: str,
    mask: Float[Tensor, "num_rays 1"],
    rays: Optional[Int[Tensor, "num_chosen"]] = None,
    frames: int = 1,
) -> Tensor:
    """L1 (pixels) between ``induced`` flow and the batch's estimated optical flow toward ``direction`` ("next" or
    "prev") over ``frames`` (1 or 2) frames, on the rays in ``mask`` where the estimate is forward-backward
    consistent; ``rays``: the batch's rays that ``induced`` and ``mask`` belong to (all by default)."""
    estimate, valid = flow_estimate(batch, direction, induced.device, frames)
    if rays is not None:
        estimate, valid = estimate[rays], valid[rays]
    return losses.optical_flow_loss(induced, estimate, valid * mask)


def confident(logits: Float[Tensor, "num_rays num_classes"], threshold: float) -> Float[Tensor, "num_rays 1"]:
    """1 on rays whose most likely class has at least probability ``threshold`` under ``logits``; else 0 (no
    gradient)."""
    top = torch.softmax(logits.detach(), dim=-1).amax(dim=-1, keepdim=True)
    return (top >= threshold).to(logits.dtype)


def flow_agrees(
    induced: Float[Tensor, "num_rays 2"], batch: dict[str, Any], direction: str, tolerance: float
) -> Float[Tensor, "num_rays 1"]:
    """1 on rays whose ``induced`` flow lies within ``tolerance`` pixels of the batch's estimated optical flow toward
    ``direction``, where the estimate is forward-backward consistent; else 0 (no gradient)."""
    estimate, valid = flow_estimate(batch, direction, induced.device)
    close = (induced.detach() - estimate).norm(dim=-1, keepdim=True) <= tolerance
    return valid * close.to(valid.dtype)


def static_flow_losses(
    config: "SemanticFlowModelConfig",
    warped: WarpedRenders,
    cameras: VideoCameras,
    surface: tuple[Float[Tensor, "num_rays 3"], Float[Tensor, "num_rays 1"]],
    static_rays: Float[Tensor, "num_rays 1"],
    pixels: Float[Tensor, "num_rays 2"],
    batch: dict[str, Any],
) -> dict[str, Tensor]:
    """Per direction: L1 between the optical flow induced by seeing the static field's surface point of each ray
    (``surface``: the point and whether the static weights accumulate enough for it) from the neighbouring frame
    and the estimated optical flow, on static pixels where the flow is consistent and the neighbour exists. A
    still point moves in the image only by the camera's motion, so this is motion stereo for the static field."""
    points, valid = surface
    out = {}
    for name, render in warped.directions():
        induced = induced_flow(cameras, points, render.neighbour, pixels)
        out[f"static_optical_flow_{name}"] = config.static_optical_flow_loss_mult * flow_against_estimate(
            induced, batch, name, render.exists * valid * static_rays
        )
    return out


def regulariser_losses(
    config: "SemanticFlowModelConfig",
    warped: WarpedRenders,
    regularisers: FlowRegularisers,
    dynamic_mask: Float[Tensor, "num_rays 1"],
    motion: Float[Tensor, "num_rays 1"],
) -> dict[str, Tensor]:
    """Scene-flow regularisers, the blending loss against the motion mask, and the sparsity of the weights.

    ``motion`` is the batch's motion mask: 1 moving, 0 static, -1 unknown (no labels and no motion mask).
    """
    flow = regularisers.flow
    cycle = [losses.cycle_consistency_loss(render.flow_there, render.flow_back) for _, render in warped.directions()]
    flows = [flow, warped.next.flow, warped.prev.flow]
    slow = sum(losses.slow_flow_loss(f.forward, f.backward) for f in flows) / len(flows)
    temporal = sum(losses.temporal_smoothness_loss(f.forward, f.backward) for f in flows) / len(flows)
    magnitude = flow.forward.abs().sum(-1, keepdim=True) + flow.backward.abs().sum(-1, keepdim=True)
    static_rays, known = (motion == 0).float(), (motion >= 0).float()
    return {
        "cycle": config.cycle_loss_mult * (sum(cycle) / len(cycle)),
        "slow_flow": config.slow_flow_loss_mult * slow,
        "temporal_smooth": config.temporal_smooth_loss_mult * temporal,
        "spatial_smooth": config.spatial_smooth_loss_mult
        * losses.spatial_smoothness_loss(torch.cat([flow.forward, flow.backward], -1)),
        "static_flow": config.static_flow_loss_mult
        * losses.masked_mean(composite(regularisers.weights_dynamic, magnitude), static_rays),
        "blend": config.blend_loss_mult * losses.masked_mean(torch.abs(dynamic_mask - motion), known),
        "sparsity": config.sparsity_loss_mult
        * (losses.entropy_loss(regularisers.weights_dynamic) + losses.entropy_loss(regularisers.blend)),
    }
