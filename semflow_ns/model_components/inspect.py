"""Ask the scene about a point: what the ray through a pixel (or a viewer click) hits at one moment of the video.

:func:`inspect_rays` casts rays at a time through the model's own render (``get_outputs`` in evaluation mode,
with the scene edit the viewer shows) and reads, per ray:

- whether there is a surface at all: the accumulated opacity must reach ``min_accumulation`` (a ray into
  the sky or empty space has none, and gets no invented point);
- the class with its probability (softmax of the rendered class logits) and, for scenes with instance
  labels, the instance (the ``instances`` output mapped back to its id);
- the depth along the ray and the expected surface point (weighted mean of the sample positions);
- the dynamic share: how much of the render comes from the dynamic field (``dynamic_mask`` divided by the
  accumulation, i.e. the blend weight along the ray). Above ``MOVING_MIN_SHARE`` the point is "moving" and
  its path follows the scene flow (:mod:`~semflow_ns.model_components.trajectories`).

Everything runs without a browser; the viewer panel, `semflow-export trajectories` and the benchmark call it.
:func:`querying` is how a caller that shares the model with training (the viewer) runs such queries: under
the training lock, in evaluation mode, without gradients, restoring training mode afterwards.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import torch
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from torch import Tensor

from semflow_ns.model_components.pose_refinement import refine_camera

if TYPE_CHECKING:
    from semflow_ns.models.semflow_model import SemanticFlowModel

MIN_SURFACE_ACCUMULATION = 0.5
"""Rays whose accumulated opacity is lower hit no surface (sky, empty space)."""
MOVING_MIN_SHARE = 0.5
"""A surface point is moving when the dynamic field renders more than this share of it."""
PIXEL_AREA = 1e-6
"""Pixel footprint given to the cast rays (the model's fields ignore it)."""


@dataclass(frozen=True)
class PointInspection:
    """What the scene says about one ray at one time."""

    time: float
    """Video time in [0, 1] at which the ray was cast."""
    accumulation: float
    """Accumulated opacity along the ray."""
    surface: bool
    """Whether the ray hits a surface (accumulation >= the threshold); the fields below are meaningless if not."""
    depth: float
    """Expected distance along the ray (world units)."""
    point: tuple[float, float, float]
    """Expected surface point (world coordinates)."""
    class_id: int
    class_name: str
    class_probability: float
    instance_id: Optional[int]
    """Instance id (0 = none); None when the scene has no instance labels."""
    instance_name: Optional[str]
    dynamic_share: float
    """Share of the render that comes from the dynamic field (the blend weight along the ray)."""

    @property
    def moving(self) -> bool:
        return self.surface and self.dynamic_share > MOVING_MIN_SHARE

    def describe(self) -> str:
        """Markdown for the viewer panel."""
        if not self.surface:
            return (
                f"**No surface here** at t = {self.time:.3f}: the ray's accumulated opacity is "
                f"{self.accumulation:.2f} (< {MIN_SURFACE_ACCUMULATION}), so it hits sky or empty space."
            )
        x, y, z = self.point
        lines = [f"**{self.class_name}** ({100 * self.class_probability:.0f} %)"]
        if self.instance_id is not None:
            lines.append(f"instance: {self.instance_name or 'none'} (id {self.instance_id})")
        lines.append(f"depth {self.depth:.3f} at ({x:.3f}, {y:.3f}, {z:.3f})")
        state = "moving" if self.moving else "static"
        lines.append(f"{state}: dynamic share {self.dynamic_share:.2f} · t = {self.time:.3f}")
        return "  \n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON values (class and instance by name and id)."""
        out: dict[str, Any] = {"time": self.time, "surface": self.surface, "accumulation": self.accumulation}
        if self.surface:
            out.update(
                {
                    "class": self.class_name,
                    "class_id": self.class_id,
                    "class_probability": self.class_probability,
                    "instance": self.instance_name,
                    "instance_id": self.instance_id,
                    "depth": self.depth,
                    "xyz": list(self.point),
                    "dynamic_share": self.dynamic_share,
                    "moving": self.moving,
                }
            )
        return out


@contextmanager
def querying(model: torch.nn.Module, lock: Optional[Any] = None) -> Iterator[None]:
    """Runs the body as the viewer's callbacks run: under ``lock`` (the training lock, if any), in evaluation
    mode and without gradients; the model's training mode is restored afterwards."""
    with lock if lock is not None else nullcontext():
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            if was_training:
                model.train()


def cast_rays(
    model: "SemanticFlowModel",
    origins: Float[Tensor, "num_rays 3"],
    directions: Float[Tensor, "num_rays 3"],
    time: float,
) -> dict[str, Tensor]:
    """The model's per-ray outputs (``get_outputs``) for rays at ``time`` (clamped to [0, 1]); call it in
    evaluation mode without gradients (see :func:`querying`)."""
    device = model.device
    origins = origins.to(device=device, dtype=torch.float32)
    directions = torch.nn.functional.normalize(directions.to(device=device, dtype=torch.float32), dim=-1)
    num_rays = origins.shape[0]
    bundle = RayBundle(
        origins=origins,
        directions=directions,
        pixel_area=torch.full((num_rays, 1), PIXEL_AREA, device=device),
        camera_indices=torch.zeros((num_rays, 1), dtype=torch.long, device=device),
        times=torch.full((num_rays, 1), min(max(float(time), 0.0), 1.0), device=device),
    )
    chunk = model.config.eval_num_rays_per_chunk
    parts = [model.get_outputs(bundle[i : i + chunk]) for i in range(0, num_rays, chunk)]
    return {key: torch.cat([p[key] for p in parts]) for key, value in parts[0].items() if isinstance(value, Tensor)}


def instance_ids(model: "SemanticFlowModel", colours: Float[Tensor, "num_rays 3"]) -> Tensor:
    """Instance ids of the ``instances`` output (its colours are the model's instance palette)."""
    palette = model.instance_colors[: model.num_instance_ids].to(colours)
    return (colours[:, None, :] - palette[None]).abs().sum(-1).argmin(dim=-1)


def inspect_rays(
    model: "SemanticFlowModel",
    origins: Float[Tensor, "num_rays 3"],
    directions: Float[Tensor, "num_rays 3"],
    time: float,
    min_accumulation: float = MIN_SURFACE_ACCUMULATION,
) -> list[PointInspection]:
    """One :class:`PointInspection` per ray (see the module docstring); call it under :func:`querying`."""
    outputs = cast_rays(model, origins, directions, time)
    accumulation = outputs["accumulation"][:, 0].clamp(min=1e-8)
    probabilities = torch.softmax(outputs["semantics"], dim=-1)
    class_probability, class_ids = probabilities.max(dim=-1)
    share = (outputs["dynamic_mask"][:, 0] / accumulation).clamp(0.0, 1.0)
    names = {inst.id: inst.name for inst in model.scene_info.instances}
    instances = instance_ids(model, outputs["instances"]).tolist() if "instances" in outputs else None
    clamped = min(max(float(time), 0.0), 1.0)
    found = []
    for i in range(origins.shape[0]):
        instance = None if instances is None else int(instances[i])
        found.append(
            PointInspection(
                time=clamped,
                accumulation=float(outputs["accumulation"][i, 0]),
                surface=bool(outputs["accumulation"][i, 0] >= min_accumulation),
                depth=float(outputs["depth"][i, 0]),
                point=tuple(float(v) for v in outputs["expected_points"][i]),  # type: ignore[arg-type]
                class_id=int(class_ids[i]),
                class_name=model.class_names[int(class_ids[i])],
                class_probability=float(class_probability[i]),
                instance_id=instance,
                instance_name=None if instance is None else names.get(instance),
                dynamic_share=float(share[i]),
            )
        )
    return found


def frame_camera(model: "SemanticFlowModel", frame: int) -> Cameras:
    """The camera of video frame ``frame`` at its refined pose (as evaluation renders it)."""
    cameras: Cameras = model.kwargs["metadata"]["semflow_video"].cameras
    if not 0 <= frame < len(cameras):
        raise IndexError(f"frame {frame} is not in the video (frames 0..{len(cameras) - 1})")
    return refine_camera(cameras[frame : frame + 1], model.video_cameras.refined_camera_to_worlds().cpu())


def pixel_rays(
    camera: Cameras, pixels: Sequence[tuple[int, int]]
) -> tuple[Float[Tensor, "num_pixels 3"], Float[Tensor, "num_pixels 3"]]:
    """Origins and directions of the rays through the centres of ``pixels`` (x = column, y = row) of a camera."""
    width, height = int(camera.width.flatten()[0]), int(camera.height.flatten()[0])
    for x, y in pixels:
        if not (0 <= x < width and 0 <= y < height):
            raise IndexError(f"pixel ({x}, {y}) lies outside the {width}x{height} image")
    coords = torch.tensor([[y + 0.5, x + 0.5] for x, y in pixels], dtype=torch.float32)
    rays = camera.generate_rays(camera_indices=0, coords=coords)
    return rays.origins, rays.directions
