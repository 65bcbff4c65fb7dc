"""Volume rendering of the blended static/dynamic pair (DynNeRF), and flows induced in cameras.

For samples i along a ray with static density σ_s, dynamic density σ_d and blending weight b:
    α_s = 1 - exp(-σ_s δ),  α_d = 1 - exp(-σ_d δ)
    T_i = Π_{j<i} (1 - α_d,j b_j)(1 - α_s,j (1 - b_j))
    w_dyn = T α_d b,  w_stat = T α_s (1 - b)
and any per-sample quantity (colour, semantic logits) renders as Σ w_dyn v_d + w_stat v_s
(Gao et al. 2021, eq. 6; Semantic Flow renders raw logits the same way, paper eq. 7).
"""

from typing import NamedTuple

import torch
from jaxtyping import Float, Int
from nerfstudio.cameras.rays import RaySamples
from torch import Tensor

from semflow_ns.field_components.flow_aggregation import VideoCameras


class BlendedWeights(NamedTuple):
    """Per-sample compositing weights of the full (blended) render."""

    static: Float[Tensor, "*bs num_samples 1"]
    dynamic: Float[Tensor, "*bs num_samples 1"]

    @property
    def total(self) -> Float[Tensor, "*bs num_samples 1"]:
        return self.static + self.dynamic


def blended_weights(
    deltas: Float[Tensor, "num_rays num_samples 1"],
    density_static: Float[Tensor, "num_rays num_samples 1"],
    density_dynamic: Float[Tensor, "num_rays num_samples 1"],
    blend: Float[Tensor, "num_rays num_samples 1"],
) -> BlendedWeights:
    """Weights of the static and dynamic fields in the blended render (see module docstring)."""
    alpha_dynamic = (1.0 - torch.exp(-density_dynamic * deltas)) * blend
    alpha_static = (1.0 - torch.exp(-density_static * deltas)) * (1.0 - blend)
    alpha = 1.0 - (1.0 - alpha_dynamic) * (1.0 - alpha_static)
    _, transmittance = RaySamples.get_weights_and_transmittance_from_alphas(alpha)
    transmittance = transmittance[:, :-1]
    return BlendedWeights(static=transmittance * alpha_static, dynamic=transmittance * alpha_dynamic)


class RenderWeights(NamedTuple):
    """Compositing weights of the blended render and of each field alone."""

    blended: BlendedWeights
    static: Float[Tensor, "num_rays num_samples 1"]
    dynamic: Float[Tensor, "num_rays num_samples 1"]


def render_weights(
    ray_samples: RaySamples,
    density_static: Float[Tensor, "num_rays num_samples 1"],
    density_dynamic: Float[Tensor, "num_rays num_samples 1"],
    blend: Float[Tensor, "num_rays num_samples 1"],
) -> RenderWeights:
    """Weights of the blended render (see module docstring) and of the static and dynamic fields alone."""
    return RenderWeights(
        blended=blended_weights(ray_samples.deltas, density_static, density_dynamic, blend),
        static=ray_samples.get_weights(density_static),
        dynamic=ray_samples.get_weights(density_dynamic),
    )


def composite(
    weights: Float[Tensor, "*bs num_samples 1"], values: Float[Tensor, "*bs num_samples channels"]
) -> Float[Tensor, "*bs channels"]:
    """Σ_i w_i v_i along each ray."""
    return torch.sum(weights * values, dim=-2)


def render_logits(
    weights: Float[Tensor, "*bs num_samples 1"], logits: Float[Tensor, "*bs num_samples num_logits"], detach: bool
) -> Float[Tensor, "*bs num_logits"]:
    """Volume-renders raw logits (paper eq. 7), through detached weights if ``detach`` (no density prior)."""
    return composite(weights.detach() if detach else weights, logits)


def expected_point(
    weights: Float[Tensor, "num_rays num_samples 1"],
    points: Float[Tensor, "num_rays num_samples 3"],
    min_accumulation: float,
) -> tuple[Float[Tensor, "num_rays 3"], Float[Tensor, "num_rays 1"]]:
    """Weighted mean of the sample positions of each ray, and whether the ray has enough weight for it.

    Σ w_i x_i alone (the official ``induce_flow``) is only a point when the weights sum to 1: on rays that
    are partly transparent (sky, unbounded scenes, the dynamic field seen alone) it is pulled toward the
    world origin. Dividing by the accumulated weight Σ w_i gives the weighted mean of the positions; rays
    whose accumulation is at most ``min_accumulation`` get validity 0 (their mean is not meaningful).

    Args:
        weights: rendering weights of the samples.
        points: world positions of the samples (e.g. warped to a neighbouring frame's time).
        min_accumulation: accumulated weight a ray needs to be valid.

    Returns:
        The weighted mean position and a 0/1 validity per ray.
    """
    accumulation = weights.sum(dim=-2)
    point = composite(weights, points) / accumulation.clamp(min=max(min_accumulation, 1e-8))
    return point, (accumulation > min_accumulation).to(weights.dtype)


def induced_flow(
    cameras: VideoCameras,
    points: Float[Tensor, "num_rays 3"],
    frames: Int[Tensor, "num_rays"],
    pixels: Float[Tensor, "num_rays 2"],
) -> Float[Tensor, "num_rays 2"]:
    """Optical flow induced by moving a ray's surface point to ``points`` and seeing it from ``frames``.

    Args:
        cameras: the video cameras.
        points: expected world position of each ray's surface at the neighbouring frame's time.
        frames: the neighbouring video frame of each ray.
        pixels: pixel coordinates of each ray in its own frame (centres at +0.5).

    Returns:
        Displacement in pixels, comparable with optical flow estimated between the two frames.
    """
    uv, _ = cameras.project(points, frames)
    return uv - pixels
