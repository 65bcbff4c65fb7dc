"""Spatial and spatio-temporal plane encodings shared by every field of the model.

All fields work in *normalised scene coordinates*: the scene box maps to [-1, 1]^3 and time [0, 1]
maps to [-1, 1]. For unbounded scenes, nerfstudio's :class:`SceneContraction` folds the outside of
the box into [-2, 2]^3 first. :class:`MultiScalePlanes` concatenates nerfstudio
:class:`KPlanesEncoding` grids at several resolutions (K-Planes, Fridovich-Keil et al. 2023): three
planes for (x, y, z), six for (x, y, z, t).
"""

from dataclasses import dataclass
from typing import Optional

import torch
from jaxtyping import Float
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.field_components.encodings import KPlanesEncoding
from nerfstudio.field_components.spatial_distortions import SceneContraction
from torch import Tensor, nn


@dataclass
class PlaneEncodingConfig:
    """Resolutions and width of a multi-scale plane encoding."""

    resolutions: tuple[int, ...] = (64, 128)
    """Spatial grid resolution of each scale."""
    time_resolution: int = 0
    """Grid resolution along time (time-dependent encodings only); 0 = one cell per video frame."""
    num_components: int = 16
    """Feature channels per scale; the encoding's output width is this times the number of scales."""


class MultiScalePlanes(nn.Module):
    """Concatenated K-Planes encodings of normalised (x, y, z) or (x, y, z, t) coordinates."""

    def __init__(self, config: PlaneEncodingConfig, time_dependent: bool, num_frames: int = 2) -> None:
        super().__init__()
        time_res = config.time_resolution or max(2, num_frames)
        self.time_dependent = time_dependent
        self.grids = nn.ModuleList(
            KPlanesEncoding(
                resolution=(res, res, res, time_res) if time_dependent else (res, res, res),
                num_components=config.num_components,
            )
            for res in config.resolutions
        )

    def get_out_dim(self) -> int:
        return sum(g.get_out_dim() for g in self.grids)

    def forward(self, coords: Float[Tensor, "*bs dim"]) -> Float[Tensor, "*bs out_dim"]:
        """Encodes coordinates in [-1, 1] (the last one being time for time-dependent encodings)."""
        return torch.cat([grid(coords) for grid in self.grids], dim=-1)


class SceneNormalizer(nn.Module):
    """Maps world positions to the [-1, 1] coordinates of the plane grids and back.

    Warping by scene flow happens in the *normalised* (uncontracted) space, so flows are in units of
    half the scene box; :meth:`to_world` undoes the normalisation for camera projections.
    """

    def __init__(self, scene_box: SceneBox, contract: bool) -> None:
        super().__init__()
        aabb = scene_box.aabb.float()
        self.register_buffer("center", (aabb[0] + aabb[1]) / 2, persistent=False)
        self.register_buffer("half_size", (aabb[1] - aabb[0]) / 2, persistent=False)
        self.contraction: Optional[SceneContraction] = SceneContraction(order=float("inf")) if contract else None

    def to_unit(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        return (positions - self.center) / self.half_size

    def to_world(self, unit: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        return unit * self.half_size + self.center

    def grid_coords(self, unit: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        """Coordinates for the grids: clamped to the box, or contracted into it for unbounded scenes."""
        if self.contraction is None:
            return unit.clamp(-1.0, 1.0)
        return self.contraction(unit) / 2.0


def spacetime(coords: Float[Tensor, "*bs 3"], times: Float[Tensor, "*bs 1"]) -> Float[Tensor, "*bs 4"]:
    """Appends time in [0, 1] as a fourth coordinate in [-1, 1]."""
    return torch.cat([coords, times * 2.0 - 1.0], dim=-1)
