"""Flow attention: self-attention over the K tokens of a point's trajectory (paper §3.2).

A token is the frame feature sampled at one trajectory point, its validity flag, and a sinusoidal
encoding of the displacement (Δx in normalised scene units, Δt in frames) from the current point.
Tokens are projected to ``d_model``, mixed by multi-head attention with a residual connection and
LayerNorm, and flattened into the semantic head's input. In the official code these weights were
never handed to the optimiser; here they are an ordinary trained submodule.

At the video's ends a window reaches frames that do not exist (t+1 at the last frame, t-1 at the first). Training
leaves their tokens empty (zero features, flagged invalid). Renders mirror them: the slot takes the token of the
opposite slot, with its displacement negated (under constant motion, the point one frame ahead lies opposite the
point one frame behind), so that the head sees a window like those inside the video.
Left empty, the slot t+1 is empty only on the last frame, which labels next to the first frame never teach: with
only the first frame labelled, the head called the whole last frame background (J below 0.02) in 6 of 18 runs on
the shared DAVIS clips. Mirroring in training as well was tried and lowered the first-frame protocol's mean J&F
(README, "Mirrored windows at the video's ends"). An end frame whose labels training used was taught with its
empty slot, so the dynamic branch marks its slots as existing and it renders as trained (mirrored, a labelled
first frame lost up to 0.03 J).
"""

from dataclasses import dataclass
from typing import Optional

import torch
from jaxtyping import Bool, Float
from nerfstudio.field_components.encodings import NeRFEncoding
from torch import Tensor, nn


@dataclass
class FlowAttentionConfig:
    """Flow attention size and ablation switch."""

    enabled: bool = True
    """Mix the trajectory tokens with attention; False keeps the projected tokens as they are (ablation)."""
    d_model: int = 32
    """Token width."""
    num_heads: int = 4
    """Attention heads."""
    head_dim: int = 4
    """Width of each head's queries, keys and values (the paper's d_k = d_v = 4)."""
    displacement_frequencies: int = 4
    """Frequencies of the sinusoidal displacement encoding."""
    mirror_at_video_ends: bool = True
    """Outside training (renders, evaluation, the viewer), tokens of frames beyond the video's ends take the token
    of the opposite slot, displacement negated, on end frames without training labels; False: they stay empty
    (zero features, flagged invalid), as in training and as in renders before 2026-12-07 (see the module
    docstring)."""


class FlowAttention(nn.Module):
    """Attends over trajectory tokens; returns the flattened tokens of every point."""

    def __init__(self, config: FlowAttentionConfig, feature_dim: int, window: int) -> None:
        super().__init__()
        self.config = config
        self.window = window
        self.displacement_encoding = NeRFEncoding(
            in_dim=4,
            num_frequencies=config.displacement_frequencies,
            min_freq_exp=0.0,
            max_freq_exp=config.displacement_frequencies - 1.0,
            include_input=True,
        )
        in_dim = feature_dim + 1 + self.displacement_encoding.get_out_dim()
        self.project = nn.Linear(in_dim, config.d_model)
        inner = config.num_heads * config.head_dim
        self.qkv = nn.Linear(config.d_model, 3 * inner, bias=False)
        self.out = nn.Linear(inner, config.d_model)
        self.norm = nn.LayerNorm(config.d_model, eps=1e-6)

    def get_out_dim(self) -> int:
        return self.window * self.config.d_model

    def forward(
        self,
        features: Float[Tensor, "*bs num_frames feat_dim"],
        valid: Float[Tensor, "*bs num_frames 1"],
        displacement: Float[Tensor, "*bs num_frames 4"],
        exists: Optional[Bool[Tensor, "*#bs num_frames"]] = None,
    ) -> Float[Tensor, "*bs out_dim"]:
        """Mixes the tokens of each point's trajectory.

        Args:
            features: frame features at the trajectory points (zero where invalid).
            valid: 1 where the point projects inside its frame, else 0.
            displacement: (Δx, Δy, Δz, Δt) from the current point; normalised scene units and frames.
            exists: False for slots whose frame lies beyond the video's ends (mirrored outside training, see the
                module docstring; the dynamic branch passes True for those of end frames whose labels were
                trained on, which keep their empty tokens); None: every frame exists.
        """
        if exists is not None and self.config.mirror_at_video_ends and not self.training:
            features, valid, displacement = mirror_missing(features, valid, displacement, exists)
        pe = self.displacement_encoding(displacement)
        tokens = self.project(torch.cat([features, valid, pe], dim=-1))
        if self.config.enabled:
            tokens = self.norm(tokens + self.out(self.mix(tokens)))
        return tokens.flatten(-2)  # (*bs, num_frames * d_model)

    def mix(self, tokens: Float[Tensor, "*bs num_frames d_model"]) -> Float[Tensor, "*bs num_frames inner"]:
        """Multi-head scaled dot-product attention among the K tokens of each point.

        Batched matrix products over (point, head) pairs instead of ``nn.MultiheadAttention``: with
        K = 3 tokens per point and ~10^5 points per batch, the fused kernels spend their time on
        bookkeeping (measured 3x slower on CPU).
        """
        heads, head_dim = self.config.num_heads, self.config.head_dim
        qkv = self.qkv(tokens).unflatten(-1, (3, heads, head_dim))  # (*bs, K, 3, heads, head_dim)
        qkv = qkv.movedim(-4, -2).flatten(0, -5)  # (points, 3, heads, K, head_dim)
        q, k, v = (t.flatten(0, 1) for t in qkv.unbind(1))  # each (points * heads, K, head_dim)
        scores = torch.bmm(q, k.transpose(1, 2)) / head_dim**0.5  # (points * heads, K, K)
        scores = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
        weights = scores / scores.sum(dim=-1, keepdim=True)  # softmax; the fused kernel is slow for rows of K = 3
        mixed = torch.bmm(weights, v).unflatten(0, (-1, heads)).transpose(1, 2)  # (points, K, heads, head_dim)
        return mixed.flatten(-2).reshape(*tokens.shape[:-1], heads * head_dim)


def mirror_missing(
    features: Float[Tensor, "*bs num_frames feat_dim"],
    valid: Float[Tensor, "*bs num_frames 1"],
    displacement: Float[Tensor, "*bs num_frames 4"],
    exists: Bool[Tensor, "*#bs num_frames"],
) -> tuple[Tensor, Tensor, Tensor]:
    """Tokens whose frame does not exist replaced by the token of the opposite slot (slot k by slot -k of a
    window centred on the current frame), with the displacement (Δx and Δt) negated. A slot whose opposite does
    not exist either keeps an empty token (its opposite's features are zero and flagged invalid)."""
    opposite = torch.arange(features.shape[-2] - 1, -1, -1, device=features.device)
    missing = ~exists[..., None]
    return (
        torch.where(missing, features[..., opposite, :], features),
        torch.where(missing, valid[..., opposite, :], valid),
        torch.where(missing, -displacement[..., opposite, :], displacement),
    )
