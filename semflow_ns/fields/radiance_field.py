"""Static and dynamic radiance fields (DynNeRF-style pair) on plane encodings.

One class serves both roles:
- the **static field** encodes (x, y, z) and predicts density, colour and a hidden feature;
- the **dynamic field** encodes (x, y, z, t) and additionally predicts the DynNeRF blending weight
  ``b`` in [0, 1] that decides, per sample, how much of the dynamic field is composited with the
  static one (Gao et al. 2021, eq. 6; Semantic Flow keeps it).

The hidden feature feeds the semantic head. The paper's fields are deep ResNet MLPs conditioned on
pretrained image features; ours are K-Planes grids with small MLPs, which train in minutes on a CPU.
"""

from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import torch
from jaxtyping import Float
from nerfstudio.field_components.activations import trunc_exp
from nerfstudio.field_components.encodings import SHEncoding
from nerfstudio.field_components.mlp import MLP
from torch import Tensor, nn

from semflow_ns.fields.encoding import MultiScalePlanes, PlaneEncodingConfig, spacetime


@dataclass
class RadianceFieldConfig:
    """Size of one radiance field."""

    planes: PlaneEncodingConfig = field(default_factory=lambda: PlaneEncodingConfig(resolutions=()))
    """Plane grids encoding the position (and time for the dynamic field). Resolutions left empty (the default)
    are sized to the video's frames by the model: see :func:`~semflow_ns.models.model_config.field_resolutions`."""
    hidden_dim: int = 64
    """Width of the density and colour MLPs."""
    feature_dim: int = 31
    """Width of the hidden feature passed from the density MLP to the colour and semantic heads."""
    view_dependent: bool = False
    """Condition colour on the viewing direction (spherical harmonics, degree 3)."""


class RadianceSamples(NamedTuple):
    """Per-sample outputs of a radiance field."""

    density: Float[Tensor, "*bs 1"]
    rgb: Float[Tensor, "*bs 3"]
    features: Float[Tensor, "*bs feature_dim"]
    blend: Optional[Float[Tensor, "*bs 1"]]
    """DynNeRF blending weight (dynamic field only)."""


class RadianceField(nn.Module):
    """Density, colour and a hidden feature from plane-encoded position (and time)."""

    def __init__(self, config: RadianceFieldConfig, time_dependent: bool, num_frames: int = 2) -> None:
        super().__init__()
        self.config = config
        self.time_dependent = time_dependent
        self.encoding = MultiScalePlanes(config.planes, time_dependent=time_dependent, num_frames=num_frames)
        self.density_mlp = MLP(
            in_dim=self.encoding.get_out_dim(),
            num_layers=2,
            layer_width=config.hidden_dim,
            out_dim=1 + config.feature_dim,
            activation=nn.ReLU(),
        )
        self.direction_encoding = SHEncoding(levels=3) if config.view_dependent else None
        dir_dim = 0 if self.direction_encoding is None else self.direction_encoding.get_out_dim()
        self.rgb_mlp = MLP(
            in_dim=config.feature_dim + dir_dim,
            num_layers=2,
            layer_width=config.hidden_dim,
            out_dim=3,
            activation=nn.ReLU(),
            out_activation=nn.Sigmoid(),
        )
        self.blend_head = nn.Linear(config.feature_dim, 1) if time_dependent else None

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    def forward(
        self,
        coords: Float[Tensor, "*bs 3"],
        times: Optional[Float[Tensor, "*bs 1"]] = None,
        directions: Optional[Float[Tensor, "*bs 3"]] = None,
    ) -> RadianceSamples:
        """Evaluates the field.

        Args:
            coords: grid coordinates in [-1, 1] (see :class:`SceneNormalizer`).
            times: normalised times in [0, 1]; required for the dynamic field.
            directions: unit viewing directions in world space; used if the field is view dependent.
        """
        if self.time_dependent:
            if times is None:
                raise ValueError("the dynamic field needs times")
            coords = spacetime(coords, times)
        raw = self.density_mlp(self.encoding(coords))
        density = trunc_exp(raw[..., :1] - 1.0)
        features = raw[..., 1:]
        rgb_in = features
        if self.direction_encoding is not None and directions is not None:
            rgb_in = torch.cat([features, self.direction_encoding((directions + 1.0) / 2.0)], dim=-1)
        blend = None if self.blend_head is None else torch.sigmoid(self.blend_head(features))
        return RadianceSamples(density=density, rgb=self.rgb_mlp(rgb_in), features=features, blend=blend)
