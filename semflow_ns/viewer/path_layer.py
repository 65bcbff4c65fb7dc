"""Paths of inspected points drawn in the viewer's 3D scene (viser scene primitives).

Each path is a polyline through the point's positions at every video frame, coloured by time (turbo: blue at
the first frame, red at the last), with a dot per frame, a label at the inspected point, and a marker at the
position for the viewer's current time that follows the time slider (:meth:`PathLayer.set_time`).

Coordinates: nerfstudio's viewer draws its scene in world units times ``VISER_NERFSTUDIO_SCALE_RATIO`` (the
training cameras are placed at ``c2w[:3, 3] * VISER_NERFSTUDIO_SCALE_RATIO``), so paths are scaled the same way.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from jaxtyping import Float
from nerfstudio.viewer.viewer import VISER_NERFSTUDIO_SCALE_RATIO
from torch import Tensor
from viser import SceneNodeHandle, ViserServer

from semflow_ns.model_components.trajectories import Paths
from semflow_ns.utils.colors import time_colours

ROOT = "/semantic_flow_paths"
"""Scene-tree folder of the drawn paths."""
MARKER_COLOUR = (255, 255, 255)


@dataclass
class DrawnPath:
    """One path in the scene: its vertices (for the marker) and its scene nodes."""

    times: Float[Tensor, "num_vertices"]
    points: Float[Tensor, "num_vertices 3"]
    marker: SceneNodeHandle
    nodes: list[SceneNodeHandle] = field(default_factory=list)

    def at(self, time: float) -> np.ndarray:
        """World position at ``time`` (linear between vertices)."""
        return position_at(self.times, self.points, time)


def position_at(
    times: Float[Tensor, "num_vertices"], points: Float[Tensor, "num_vertices 3"], time: float
) -> np.ndarray:
    """Position on a polyline with vertex ``times`` at ``time`` (linear between vertices, held beyond them)."""
    times_np, points_np = times.cpu().numpy(), points.cpu().numpy()
    return np.array([np.interp(time, times_np, points_np[:, axis]) for axis in range(3)])


class PathLayer:
    """The drawn paths of one viewer.

    Args:
        server: the viewer's viser server.
        scene_size: diagonal of the scene box (world units); sets line width, dot and marker sizes.
    """

    def __init__(self, server: ViserServer, scene_size: float) -> None:
        self.server = server
        self.scale = VISER_NERFSTUDIO_SCALE_RATIO
        self.dot_size = 0.004 * scene_size * self.scale
        self.marker_radius = 0.008 * scene_size * self.scale
        self.paths: list[DrawnPath] = []
        self.count = 0
        """Paths drawn so far (names stay unique after clearing)."""

    def add(self, paths: Paths, index: int, label: str, time: float) -> DrawnPath:
        """Draws path ``index`` of ``paths`` with ``label`` at the inspected point; the marker at ``time``."""
        times, points = paths.polyline(index)
        scaled = points.numpy().astype(np.float64) * self.scale
        colours = time_colours(times)
        name = f"{ROOT}/path_{self.count:03d}"
        self.count += 1
        nodes: list[SceneNodeHandle] = []
        for i in range(len(times) - 1):
            if np.linalg.norm(scaled[i + 1] - scaled[i]) < 1e-6 * self.scale:
                continue  # a static stretch: nothing to draw
            segment = scaled[i : i + 2]
            colour = tuple(int(c) for c in ((colours[i].astype(int) + colours[i + 1]) // 2))
            nodes.append(
                self.server.scene.add_spline_catmull_rom(
                    f"{name}/segment_{i:03d}", segment, line_width=4.0, color=colour, segments=1
                )
            )
        nodes.append(
            self.server.scene.add_point_cloud(
                f"{name}/frames", scaled, colours, point_size=self.dot_size, point_shape="circle"
            )
        )
        nodes.append(
            self.server.scene.add_label(f"{name}/label", label, position=paths.start[index].cpu().numpy() * self.scale)
        )
        marker = self.server.scene.add_icosphere(
            f"{name}/marker",
            radius=self.marker_radius,
            color=MARKER_COLOUR,
            position=position_at(times, points, time) * self.scale,
        )
        drawn = DrawnPath(times.cpu(), points.cpu(), marker, nodes + [marker])
        self.paths.append(drawn)
        return drawn

    def set_time(self, time: float) -> None:
        """Moves every marker to its path's position at ``time``."""
        for path in self.paths:
            path.marker.position = path.at(time) * self.scale

    def clear(self) -> None:
        """Removes every drawn path."""
        for path in self.paths:
            for node in path.nodes:
                node.remove()
        self.paths = []


def scene_diagonal(aabb: Float[Tensor, "2 3"]) -> float:
    """Length of the diagonal of a scene box."""
    return float(torch.linalg.norm(aabb[1] - aabb[0]))
