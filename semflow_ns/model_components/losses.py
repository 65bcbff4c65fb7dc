"""Loss functions of Semantic Flow, as pure functions of tensors.

Weights and which rays they apply to are decided by the model; each function here computes one
term. References: DynNeRF (Gao et al. 2021) for the flow regularisers, Semantic Flow (Tian et al.
2024) for the semantic terms.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

IGNORE_INDEX = -1


def rgb_target(image: Float[Tensor, "*bs channels"], background: float) -> Float[Tensor, "*bs 3"]:
    """The colour a render is compared with: RGB as is; RGBA composited on the render's background colour.

    nerfstudio keeps the alpha channel unless the DataParser sets ``alpha_color``; the model renders
    ``background`` (0 = black, 1 = white) wherever its accumulation is below 1, so a transparent pixel must
    be compared with that colour, in the losses and in the metrics alike.
    """
    if image.shape[-1] == 4:
        alpha = image[..., 3:]
        return image[..., :3] * alpha + background * (1.0 - alpha)
    return image[..., :3]


def masked_mean(values: Float[Tensor, "*bs channels"], mask: Optional[Float[Tensor, "*bs 1"]] = None) -> Tensor:
    """Mean of ``values`` over the entries where ``mask`` is 1 (all entries without a mask); 0 if empty."""
    if mask is None:
        return values.mean()
    mask = mask.expand_as(values)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def masked_mse(
    pred: Float[Tensor, "*bs 3"], target: Float[Tensor, "*bs 3"], mask: Optional[Float[Tensor, "*bs 1"]] = None
) -> Tensor:
    """Mean squared colour error over masked rays."""
    return masked_mean((pred - target) ** 2, mask)


def semantic_cross_entropy(
    logits: Float[Tensor, "num_rays num_classes"],
    labels: Int[Tensor, "num_rays 1"],
    mask: Optional[Float[Tensor, "num_rays 1"]] = None,
    weights: Optional[Float[Tensor, "num_rays 1"]] = None,
) -> Tensor:
    """Cross entropy of rendered logits against class ids; ids of -1 (unlabelled) and masked rays are ignored.

    ``weights`` (in [0, 1]) scale each ray's term; the sum is still divided by the count of labelled, unmasked
    rays, so a ray of weight 1 counts as it does without weights."""
    ce = F.cross_entropy(logits, labels[:, 0].clamp(min=0), reduction="none")[:, None]
    keep = (labels != IGNORE_INDEX).to(logits.dtype)
    if mask is not None:
        keep = keep * mask
    if weights is None:
        return masked_mean(ce, keep)
    return (ce * weights * keep).sum() / keep.sum().clamp(min=1.0)


def pseudo_label_cross_entropy(
    logits: Float[Tensor, "num_rays num_classes"],
    teacher_logits: Float[Tensor, "num_rays num_classes"],
    mask: Float[Tensor, "num_rays 1"],
) -> Tensor:
    """Cross entropy of rendered logits against the (detached) class probabilities of other rendered logits."""
    target = F.softmax(teacher_logits.detach(), dim=-1)
    ce = -(target * F.log_softmax(logits, dim=-1)).sum(-1, keepdim=True)
    return masked_mean(ce, mask)


def optical_flow_loss(
    induced: Float[Tensor, "num_rays 2"], observed: Float[Tensor, "num_rays 2"], valid: Float[Tensor, "num_rays 1"]
) -> Tensor:
    """L1 in pixels between flow induced by the scene flow and estimated optical flow, on consistent pixels."""
    return masked_mean(torch.abs(induced - observed), valid)


def cycle_consistency_loss(
    there: Float[Tensor, "*bs 3"], back: Float[Tensor, "*bs 3"], mask: Optional[Float[Tensor, "*bs 1"]] = None
) -> Tensor:
    """L1 of (flow to the neighbour) + (flow back from the warped point): zero for exactly inverse flows."""
    return masked_mean(torch.abs(there + back), mask)


def slow_flow_loss(forward: Float[Tensor, "*bs 3"], backward: Float[Tensor, "*bs 3"]) -> Tensor:
    """L1 magnitude of the scene flow (prefers small motion)."""
    return torch.abs(forward).mean() + torch.abs(backward).mean()


def temporal_smoothness_loss(forward: Float[Tensor, "*bs 3"], backward: Float[Tensor, "*bs 3"]) -> Tensor:
    """L1 of forward + backward flow: zero for constant velocity (minimal acceleration)."""
    return torch.abs(forward + backward).mean()


def spatial_smoothness_loss(flow: Float[Tensor, "num_rays num_samples channels"]) -> Tensor:
    """L1 difference of flow between neighbouring samples along each ray."""
    return torch.abs(flow[:, 1:] - flow[:, :-1]).mean()


def entropy_loss(probabilities: Float[Tensor, "*bs 1"], eps: float = 1e-6) -> Tensor:
    """Mean binary-style entropy -p log p: pushes weights toward 0 or 1 (DynNeRF sparsity term)."""
    p = probabilities.clamp(eps, 1.0)
    return -(p * torch.log(p)).mean()


def depth_loss(
    depth: Float[Tensor, "num_rays 1"], target: Float[Tensor, "num_rays 2"], min_depth: float = 1e-3
) -> Tensor:
    """Confidence-weighted L1 between the logarithms of the rendered and the measured z-depth.

    ``target`` holds the measured depth and its confidence (0: no measurement) of every ray. Log depth makes the
    error relative, so near and far points weigh alike (SfM points lie anywhere between the near plane and the
    far background); rays without a measurement add nothing (0 when no ray has one).
    """
    confidence = target[:, 1:]
    error = torch.abs(torch.log(depth.clamp(min=min_depth)) - torch.log(target[:, :1].clamp(min=min_depth)))
    return (error * confidence).sum() / confidence.sum().clamp(min=1e-6)


def token_consistency_loss(
    tokens: Float[Tensor, "num_points window channels"],
    valid: Float[Tensor, "num_points window 1"],
    centre: int,
    temperature: float,
) -> Tensor:
    """Contrastive (InfoNCE) loss tying each point's frame feature at t to its features at the other frames of its
    trajectory window, against the features of the other points (in the other direction too).

    Row ``i`` holds one surface point's features looked up in the frames t-h .. t+h along its trajectory; the
    feature at ``centre`` (frame t) must pick out the same point's feature at t+k among those of every point, and
    back. Only pairs whose lookups are both valid take part. Cosine similarity over ``temperature``; 0 when no
    slot has two valid pairs.
    """
    anchor = F.normalize(tokens[:, centre], dim=-1)
    anchor_valid = valid[:, centre, 0] > 0
    terms = []
    for slot in range(tokens.shape[1]):
        if slot == centre:
            continue
        ok = anchor_valid & (valid[:, slot, 0] > 0)
        if int(ok.sum()) < 2:
            continue
        similarity = anchor[ok] @ F.normalize(tokens[ok, slot], dim=-1).T / temperature
        target = torch.arange(similarity.shape[0], device=similarity.device)
        terms.append(0.5 * (F.cross_entropy(similarity, target) + F.cross_entropy(similarity.T, target)))
    return torch.stack(terms).mean() if terms else tokens.sum() * 0.0
