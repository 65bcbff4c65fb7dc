"""Spatial and spatio-temporal plane encodings shared by every field of the model.

All fields work in *normalised scene coordinates*: the scene box maps to [-1, 1]^3 and time [0, 1]
maps to [-1, 1]. For unbounded scenes, nerfstudio's :class:`SceneContraction` folds the outside of
the box into [-2, 2]^3 first. :class:`MultiScalePlanes` concatenates nerfstudio
:class:`KPlanesEncoding` grids at several resolutions (K-Planes, Fridovich-Keil et al. 2023): three
planes for (x, y, z), six for (x, y, z, t).
"""

import math
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


class ViewGrid(nn.Module):
    """Grid coordinates seen from the video's cameras: two angles and the inverse distance.

    A video is filmed from a small region looking one way, so a box around the scene wastes most of its cells
    on space no camera sees and gives the rest cells many pixels wide (on a panning shot, whose box must hold
    the frustums out to the far bound, tens of pixels). Here a point is placed by its direction from the
    cameras' mean centre, in the mean camera's frame (yaw and pitch, each scaled so that the angles the video
    sees fill [-1, 1]), and by its inverse distance from that centre (``1 - 2 near / r``: -1 at ``near``, 1 at
    infinity), like the normalised device coordinates the forward-facing NeRFs use, but valid for any pan. A
    grid cell then covers about the same few pixels everywhere in view, near or far.

    Args:
        cameras_to_world: every frame's camera (OpenGL convention), ``[num_frames, 3, 4]``.
        half_fov: the half field of view of each frame, horizontal and vertical (radians), ``[num_frames, 2]``.
        near: distance from the centre below which points share the first distance cell.
    """

    MARGIN = 0.05
    """Extra angle on each side of the angles the cameras see, as a fraction of their span."""

    def __init__(self, cameras_to_world: Float[Tensor, "num_frames 3 4"], half_fov: Tensor, near: float) -> None:
        super().__init__()
        c2w = cameras_to_world.float()
        center = c2w[:, :, 3].mean(0)
        back = c2w[:, :, 2].mean(0)  # the mean camera looks down -back
        back = back / back.norm()
        up = c2w[:, :, 1].mean(0)
        right = torch.linalg.cross(up, back)
        right = right / right.norm()
        rotation = torch.stack([right, torch.linalg.cross(back, right), back], dim=-1)  # reference c2w
        # directions of each frame's image corners and edge midpoints, in the reference frame
        sx, sy = torch.meshgrid(torch.tensor([-1.0, 0.0, 1.0]), torch.tensor([-1.0, 0.0, 1.0]), indexing="ij")
        tan = half_fov.float().tan()
        local = torch.stack(
            [sx.flatten() * tan[:, :1], sy.flatten() * tan[:, 1:], -torch.ones(len(tan), 9)], dim=-1
        )  # [num_frames, 9, 3]
        world_dirs = torch.einsum("fij,fkj->fki", c2w[:, :, :3], local)
        yaw, pitch = self._angles(world_dirs @ rotation)
        # a camera away from the centre sees near points at other angles than the centre does (allowed for at
        # twice the near distance: the near bound lies below nearly all of the content)
        offset = (c2w[:, :, 3] - center).norm(dim=-1).max()
        slack = float(torch.atan(offset / max(2.0 * near, 1e-6)))
        lows = torch.stack([yaw.min(), pitch.min()]) - slack
        highs = torch.stack([yaw.max(), pitch.max()]) + slack
        span = highs - lows
        limits = torch.tensor([math.pi, math.pi / 2])  # yaw, pitch
        lows = torch.maximum(lows - self.MARGIN * span, -limits)
        highs = torch.minimum(highs + self.MARGIN * span, limits)
        self.register_buffer("center", center, persistent=False)
        self.register_buffer("rotation", rotation, persistent=False)
        self.register_buffer("angle_center", (lows + highs) / 2, persistent=False)
        self.register_buffer("angle_half", ((highs - lows) / 2).clamp(min=1e-3), persistent=False)
        self.near = float(near)

    @staticmethod
    def _angles(local: Float[Tensor, "*bs 3"]) -> tuple[Float[Tensor, "*bs"], Float[Tensor, "*bs"]]:
        """Yaw (to the right of -z) and pitch (up) of directions in the reference camera's frame."""
        x, y, z = local.unbind(-1)
        return torch.atan2(x, -z), torch.atan2(y, torch.sqrt(x * x + z * z + 1e-12))

    def forward(self, world: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        local = (world - self.center) @ self.rotation
        yaw, pitch = self._angles(local)
        angles = (torch.stack([yaw, pitch], dim=-1) - self.angle_center) / self.angle_half
        distance = local.norm(dim=-1, keepdim=True).clamp(min=self.near)
        return torch.cat([angles.clamp(-1.0, 1.0), 1.0 - 2.0 * self.near / distance], dim=-1)


class SceneNormalizer(nn.Module):
    """Maps world positions to the [-1, 1] coordinates of the plane grids and back.

    Warping by scene flow happens in the *normalised* (uncontracted) space, so flows are in units of
    half the scene box; :meth:`to_world` undoes the normalisation for camera projections. The grids see
    either the box (clamped, or contracted for unbounded scenes) or, with ``view``, the scene as the cameras
    see it (:class:`ViewGrid`).
    """

    def __init__(self, scene_box: SceneBox, contract: bool, view: Optional[ViewGrid] = None) -> None:
        super().__init__()
        aabb = scene_box.aabb.float()
        self.register_buffer("center", (aabb[0] + aabb[1]) / 2, persistent=False)
        self.register_buffer("half_size", (aabb[1] - aabb[0]) / 2, persistent=False)
        self.contraction: Optional[SceneContraction] = SceneContraction(order=float("inf")) if contract else None
        self.view = view
        self._last_view: Optional[tuple[Tensor, Tensor]] = None
        """The last positions seen through the view grid and their coordinates: the static field, the dynamic
        field and the scene flow look up the same samples one after the other."""

    def to_unit(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        return (positions - self.center) / self.half_size

    def to_world(self, unit: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        return unit * self.half_size + self.center

    def grid_coords(self, unit: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        """Coordinates for the grids: clamped to the box, or contracted into it for unbounded scenes (or seen
        from the cameras, with a view grid)."""
        if self.view is not None:
            return self._view_coords(unit)
        if self.contraction is None:
            return unit.clamp(-1.0, 1.0)
        return self.contraction(unit) / 2.0

    def flow_coords(self, unit: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        """Coordinates for the scene-flow grids: clamped to the box (or seen from the cameras, with a view
        grid)."""
        if self.view is not None:
            return self._view_coords(unit)
        return unit.clamp(-1.0, 1.0)

    def _view_coords(self, unit: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        last = self._last_view
        if last is not None and last[0] is unit:
            return last[1]
        coords = self.view(self.to_world(unit))
        self._last_view = (unit, coords)
        return coords


def spacetime(coords: Float[Tensor, "*bs 3"], times: Float[Tensor, "*bs 1"]) -> Float[Tensor, "*bs 4"]:
    """Appends time in [0, 1] as a fourth coordinate in [-1, 1]."""
    return torch.cat([coords, times * 2.0 - 1.0], dim=-1)
