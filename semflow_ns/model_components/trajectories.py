"""The path of a surface point through the whole video, integrated from the scene flow.

A point seen at time t is a surface point of either field. The static field does not move, so a static
point's path is constant. A moving point belongs to the dynamic field, whose scene flow
(:class:`~semflow_ns.field_components.scene_flow.SceneFlowField`) says where a point at (x, t) is one frame
later and one frame earlier; its path is integrated from t to the last frame and from t back to the first
frame, one frame at a time with the timeline's intervals (Euler steps, as the model integrates its
trajectory windows in training), in the normalised coordinates the flow lives in. When t lies between two
frames, the first step covers the part of the interval up to the next (previous) frame: the one-frame
displacement is scaled by that fraction.

:func:`integrate_paths` gives the positions at every video frame; :class:`Paths` also keeps the clicked
moment itself, for drawing (:meth:`Paths.polyline`) and for the position at any time (:meth:`Paths.at`).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from semflow_ns.field_components.scene_flow import SceneFlowField

if TYPE_CHECKING:
    from semflow_ns.models.semflow_model import SemanticFlowModel

SAME_TIME = 1e-6
"""Times closer than this are the same moment (a click exactly on a frame)."""


@dataclass(frozen=True)
class Paths:
    """Paths of N points over the video's F frames (world coordinates)."""

    frame_times: Float[Tensor, "num_frames"]
    points: Float[Tensor, "num_points num_frames 3"]
    """Position of each point at each frame's time."""
    time: float
    """The moment the points were picked at."""
    start: Float[Tensor, "num_points 3"]
    """The picked points (their position at ``time``)."""

    def polyline(self, index: int) -> tuple[Float[Tensor, "num_vertices"], Float[Tensor, "num_vertices 3"]]:
        """Times and positions of point ``index``'s path: every frame, plus the picked moment in its place."""
        times = self.frame_times.cpu()
        points = self.points[index].cpu()
        distance = (times - self.time).abs()
        if float(distance.min()) < SAME_TIME:
            return times, points
        slot = int(torch.searchsorted(times, torch.tensor(self.time)))
        times = torch.cat([times[:slot], torch.tensor([self.time]), times[slot:]])
        points = torch.cat([points[:slot], self.start[index].cpu()[None], points[slot:]])
        return times, points

    def at(self, index: int, time: float) -> Float[Tensor, "3"]:
        """Position of point ``index`` at ``time`` (linear between the polyline's vertices, held beyond them)."""
        times, points = self.polyline(index)
        time = min(max(time, float(times[0])), float(times[-1]))
        slot = int(torch.searchsorted(times, torch.tensor(time)).clamp(1, len(times) - 1))
        t0, t1 = float(times[slot - 1]), float(times[slot])
        weight = 0.0 if t1 - t0 < SAME_TIME else (time - t0) / (t1 - t0)
        return points[slot - 1] * (1.0 - weight) + points[slot] * weight


def _advance(
    flow: SceneFlowField,
    unit: Float[Tensor, "num_points 3"],
    time: float,
    span: float,
    interval: float,
    direction: int,
) -> Float[Tensor, "num_points 3"]:
    """Moves points from ``time`` by ``span`` (at most one frame ``interval``) toward ``direction``."""
    times = unit.new_full((unit.shape[0], 1), time)
    if abs(span - interval) < SAME_TIME:
        return flow.step(unit, times, times.new_full(times.shape, interval), direction)
    return unit + flow(unit, times).toward(direction) * (span / interval)


def integrate_unit(
    flow: SceneFlowField,
    frame_times: Float[Tensor, "num_frames"],
    unit: Float[Tensor, "num_points 3"],
    time: float,
) -> Float[Tensor, "num_points num_frames 3"]:
    """Positions (normalised) of points at ``time`` at every frame time, by the scene flow (see module docstring)."""
    times = [float(t) for t in frame_times]
    out = unit.new_empty(unit.shape[0], len(times), 3)
    for index, frame_time in enumerate(times):
        if abs(frame_time - time) < SAME_TIME:
            out[:, index] = unit
    for direction in (1, -1):
        ahead = [i for i, t in enumerate(times) if direction * (t - time) >= SAME_TIME]
        order = ahead if direction > 0 else ahead[::-1]
        current, current_time = unit, time
        for index in order:
            neighbour = index - direction  # the frame on the other side of this frame's interval
            if 0 <= neighbour < len(times):
                interval = abs(times[index] - times[neighbour])
            else:  # the picked time lies outside the video's frame times
                interval = abs(times[index] - current_time)
            span = abs(times[index] - current_time)
            current = _advance(flow, current, current_time, span, max(interval, span), direction)
            out[:, index] = current
            current_time = times[index]
    return out


def integrate_paths(
    model: "SemanticFlowModel",
    points: Float[Tensor, "num_points 3"],
    moving: Bool[Tensor, "num_points"],
    time: float,
) -> Paths:
    """Paths of world ``points`` at ``time``: moving ones by the scene flow, static ones constant.

    Call it in evaluation mode without gradients (see :func:`~semflow_ns.model_components.inspect.querying`).
    """
    device = model.device
    points = points.to(device=device, dtype=torch.float32)
    moving = moving.to(device)
    frame_times = model.timeline.times.to(device)
    time = min(max(float(time), 0.0), 1.0)
    paths = points[:, None, :].expand(-1, len(frame_times), -1).clone()
    if bool(moving.any()):
        unit = model.normalizer.to_unit(points[moving])
        paths[moving] = model.normalizer.to_world(integrate_unit(model.dynamic.scene_flow, frame_times, unit, time))
    return Paths(frame_times=frame_times, points=paths, time=time, start=points)
