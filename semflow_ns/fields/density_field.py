"""Small time-dependent density field for nerfstudio's proposal sampler.

nerfstudio's proposal density fields take positions only; a dynamic scene needs time too, so this one
encodes (x, y, z, t) with a coarse K-Planes grid and a linear decoder (as K-Planes does).
"""

from typing import Optional

from jaxtyping import Float
from nerfstudio.field_components.activations import trunc_exp
from torch import Tensor, nn

from semflow_ns.fields.encoding import MultiScalePlanes, PlaneEncodingConfig, SceneNormalizer, spacetime


class ProposalDensityField(nn.Module):
    """Density of (position, time) used only to place the samples of the main fields."""

    def __init__(self, planes: PlaneEncodingConfig, normalizer: SceneNormalizer, num_frames: int) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.encoding = MultiScalePlanes(planes, time_dependent=True, num_frames=num_frames)
        self.decoder = nn.Linear(self.encoding.get_out_dim(), 1)

    def forward(
        self, positions: Float[Tensor, "*bs 3"], times: Optional[Float[Tensor, "*#bs 1"]] = None
    ) -> Float[Tensor, "*bs 1"]:
        """Density at world positions and normalised times (broadcast over samples; time 0 when absent)."""
        coords = self.normalizer.grid_coords(self.normalizer.to_unit(positions))
        if times is None:
            times = coords.new_zeros(*coords.shape[:-1], 1)
        return trunc_exp(self.decoder(self.encoding(spacetime(coords, times.expand(*coords.shape[:-1], 1)))) - 1.0)
