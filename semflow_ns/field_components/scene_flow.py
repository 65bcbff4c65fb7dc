"""Scene-flow field: forward and backward 3D motion of a point over one video frame.

Semantic Flow (and MonoNeRF/DynNeRF before it) predicts, for a point x at time t, where it is one
frame later (forward) and one frame earlier (backward); trajectories over a window of K frames are
obtained by integrating these displacements with explicit Euler steps. The official code evaluates
the forward velocity from the backward state (a copy-paste bug); here both
directions go through one function with a ``direction`` argument.

The output layer is zero-initialised, so the field starts at the identity (every point is static):
``tests/field_components/test_scene_flow.py::test_zero_init_is_identity`` pins this.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import torch
from jaxtyping import Float
from nerfstudio.field_components.mlp import MLP
from torch import Tensor, nn

from semflow_ns.fields.encoding import MultiScalePlanes, PlaneEncodingConfig, spacetime


@dataclass
class SceneFlowFieldConfig:
    """Scene-flow field and trajectory integration."""

    planes: PlaneEncodingConfig = field(default_factory=lambda: PlaneEncodingConfig(resolutions=(64,)))
    """Plane grids encoding (x, y, z, t)."""
    hidden_dim: int = 64
    """Width of the flow MLP."""
    max_displacement: float = 0.25
    """Largest displacement per frame and axis, in normalised scene units (half the scene box); tanh-bounded."""
    num_substeps: int = 1
    """Euler sub-steps per frame interval (the paper uses 2; each costs one more field evaluation)."""
    window: int = 3
    """Frames in a trajectory (odd): 3 = t-1, t, t+1; 5 adds t-2 and t+2."""


class SceneFlow(NamedTuple):
    """Displacements over one frame interval, in normalised scene units."""

    forward: Float[Tensor, "*bs 3"]
    """x(t + one frame) - x(t)."""
    backward: Float[Tensor, "*bs 3"]
    """x(t - one frame) - x(t)."""

    def toward(self, direction: int) -> Float[Tensor, "*bs 3"]:
        return self.forward if direction > 0 else self.backward


class SceneFlowField(nn.Module):
    """Forward/backward displacement of normalised positions at normalised times.

    Args:
        config: grids, MLP and integration options.
        num_frames: frames of the video (the time resolution of the grids).
        grid_coords: maps normalised positions to the grids' [-1, 1] coordinates (default: clamped to the box).
    """

    def __init__(
        self,
        config: SceneFlowFieldConfig,
        num_frames: int,
        grid_coords: Optional[Callable[[Tensor], Tensor]] = None,
    ) -> None:
        super().__init__()
        self.grid_coords = grid_coords
        if config.window < 3 or config.window % 2 == 0:
            raise ValueError(f"scene flow window must be an odd number >= 3, got {config.window}")
        if config.num_substeps < 1:
            raise ValueError(f"num_substeps must be >= 1, got {config.num_substeps}")
        self.config = config
        self.encoding = MultiScalePlanes(config.planes, time_dependent=True, num_frames=num_frames)
        self.mlp = MLP(
            in_dim=self.encoding.get_out_dim(),
            num_layers=2,
            layer_width=config.hidden_dim,
            activation=nn.ReLU(),
        )
        self.head = nn.Linear(config.hidden_dim, 6)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, unit: Float[Tensor, "*bs 3"], times: Float[Tensor, "*bs 1"]) -> SceneFlow:
        """Displacements of points ``unit`` (normalised, uncontracted) at ``times`` in [0, 1]."""
        coords = spacetime(unit.clamp(-1.0, 1.0) if self.grid_coords is None else self.grid_coords(unit), times)
        raw = self.head(self.mlp(self.encoding(coords)))
        flow = self.config.max_displacement * torch.tanh(raw)
        return SceneFlow(forward=flow[..., :3], backward=flow[..., 3:])

    def step(
        self,
        unit: Float[Tensor, "*bs 3"],
        times: Float[Tensor, "*bs 1"],
        interval: Float[Tensor, "*bs 1"],
        direction: int,
        first: "SceneFlow | None" = None,
    ) -> Float[Tensor, "*bs 3"]:
        """Moves points by one frame forward (direction +1) or backward (-1) with Euler sub-steps.

        Args:
            unit: start positions (normalised).
            times: start times in [0, 1].
            interval: duration of one frame interval in that direction (positive, normalised time).
            direction: +1 or -1.
            first: the field already evaluated at (unit, times), to save the first evaluation.
        """
        num = self.config.num_substeps
        for k in range(num):
            flow = first if (k == 0 and first is not None) else self(unit, times + direction * interval * k / num)
            unit = unit + flow.toward(direction) / num
        return unit
