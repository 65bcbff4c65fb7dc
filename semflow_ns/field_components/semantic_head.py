"""Semantic head: per-sample class logits (paper §3.3).

With ``semantic-source flow`` (the method) its input is the flattened flow-attention tokens plus the
radiance field's hidden feature; with ``point`` (the paper's "dynamic NeRF + semantic head"
baseline) only the hidden feature of the point itself.
"""

import torch
from jaxtyping import Float
from nerfstudio.field_components.mlp import MLP
from torch import Tensor, nn


class SemanticHead(nn.Module):
    """MLP from per-sample features to raw (unnormalised) class logits, optionally bounded softly to within
    ``logit_bound`` (``bound * tanh(logit / bound)``; 0: unbounded)."""

    def __init__(self, in_dim: int, num_classes: int, hidden_dim: int = 64, logit_bound: float = 0.0) -> None:
        super().__init__()
        self.mlp = MLP(in_dim=in_dim, num_layers=3, layer_width=hidden_dim, out_dim=num_classes, activation=nn.ReLU())
        self.logit_bound = logit_bound

    def forward(self, features: Float[Tensor, "*bs in_dim"]) -> Float[Tensor, "*bs num_classes"]:
        logits = self.mlp(features)
        if self.logit_bound > 0:
            logits = self.logit_bound * torch.tanh(logits / self.logit_bound)
        return logits
