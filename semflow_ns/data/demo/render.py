"""Ray casting of the demo scene: RGB, labels, depth and ground-truth optical flow (vectorised numpy).

Camera conventions follow nerfstudio: OpenGL camera axes (x right, y up, looking down -z) and the ray of
pixel (row y, column x) passes through the image point (x + 0.5, y + 0.5). Shading is Lambertian with one
directional light plus a hemispherical ambient term, so appearance does not depend on the viewing direction.
"""

from dataclasses import dataclass

import numpy as np

from semflow_ns.data.demo.scene import DemoWorld, Pose
from semflow_ns.data.format import Intrinsics

LIGHT_DIRECTION = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
"""Unit vector from surfaces towards the directional light (world coordinates)."""
AMBIENT = 0.45
DIFFUSE = 0.6


@dataclass
class Hits:
    """Nearest surface hit by each of M rays (every ray hits something: the room is closed)."""

    distance: np.ndarray
    """float64 [M], distance along the unit world direction (metres)."""
    body: np.ndarray
    """int64 [M], index of the hit body in ``DemoWorld.bodies``."""
    local_points: np.ndarray
    """float64 [M, 3], hit point in the body's local frame (metres)."""
    local_normals: np.ndarray
    """float64 [M, 3], unit outward normal in the body's local frame."""


@dataclass
class RenderedView:
    """One rendered image with its pixel-centre labels."""

    rgb: np.ndarray
    """uint8 [H, W, 3], box-filtered over the supersampled rays."""
    semantics: np.ndarray
    """int64 [H, W] class ids (index into ``scene.CLASSES``)."""
    instances: np.ndarray
    """int64 [H, W] instance ids, 0 = no instance."""
    depth: np.ndarray
    """float32 [H, W] z-depth along the camera's viewing axis (metres)."""
    hits: Hits
    """Pixel-centre hits, row-major over [H, W]."""


def pixel_rays(c2w: np.ndarray, intr: Intrinsics, samples_per_side: int) -> tuple[np.ndarray, np.ndarray]:
    """World rays through a regular grid of samples_per_side^2 points inside every pixel.

    Args:
        c2w: OpenGL camera-to-world [4, 4].
        intr: pinhole intrinsics (distortion is ignored; the demo has none).
        samples_per_side: 1 gives the pixel-centre ray; s > 1 gives sample offsets (i + 0.5) / s.

    Returns:
        origins and unit directions, float64 [H * W * s * s, 3], ordered (row, column, sample).
    """
    offsets = (np.arange(samples_per_side) + 0.5) / samples_per_side
    sub_y, sub_x = np.meshgrid(offsets, offsets, indexing="ij")
    rows, cols = np.meshgrid(np.arange(intr.h), np.arange(intr.w), indexing="ij")
    u = (cols[..., None] + sub_x.reshape(-1)).reshape(-1)
    v = (rows[..., None] + sub_y.reshape(-1)).reshape(-1)
    cam_dirs = np.stack([(u - intr.cx) / intr.fl_x, -(v - intr.cy) / intr.fl_y, -np.ones_like(u)], axis=-1)
    dirs = cam_dirs @ c2w[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    return np.broadcast_to(c2w[:3, 3], dirs.shape).copy(), dirs


def project(c2w: np.ndarray, intr: Intrinsics, points: np.ndarray) -> np.ndarray:
    """Image points (u, v) [M, 2] of world points [M, 3]; pixel (row y, column x) spans [x, x+1] x [y, y+1]."""
    cam = (points - c2w[:3, 3]) @ c2w[:3, :3]
    depth = -cam[:, 2]
    return np.stack([intr.cx + intr.fl_x * cam[:, 0] / depth, intr.cy - intr.fl_y * cam[:, 1] / depth], axis=-1)


def trace(world: DemoWorld, poses: list[Pose], origins: np.ndarray, dirs: np.ndarray) -> Hits:
    """Nearest hit of every ray among all bodies at the given poses."""
    best = np.full(len(origins), np.inf)
    body = np.full(len(origins), -1, dtype=np.int64)
    for index, (item, (rot, centre)) in enumerate(zip(world.bodies, poses, strict=True)):
        distance = item.shape.intersect((origins - centre) @ rot, dirs @ rot)
        closer = distance < best
        best[closer], body[closer] = distance[closer], index
    if np.any(body < 0):
        raise RuntimeError(f"{int(np.sum(body < 0))} rays escaped the room; is a camera outside it?")
    local_points = np.zeros_like(origins)
    local_normals = np.zeros_like(origins)
    for index, (item, (rot, centre)) in enumerate(zip(world.bodies, poses, strict=True)):
        sel = body == index
        points = (origins[sel] + best[sel, None] * dirs[sel] - centre) @ rot
        local_points[sel], local_normals[sel] = points, item.shape.normal(points)
    return Hits(distance=best, body=body, local_points=local_points, local_normals=local_normals)


def shade(world: DemoWorld, poses: list[Pose], hits: Hits) -> np.ndarray:
    """Linear RGB radiance [M, 3] in [0, 1]: albedo x (hemispherical ambient + Lambertian diffuse)."""
    rgb = np.zeros_like(hits.local_points)
    for index, (item, (rot, _)) in enumerate(zip(world.bodies, poses, strict=True)):
        sel = hits.body == index
        if not np.any(sel):
            continue
        albedo = item.texture(hits.local_points[sel], hits.local_normals[sel])
        normals = hits.local_normals[sel] @ rot.T
        light = AMBIENT * (0.8 + 0.2 * normals[:, 2]) + DIFFUSE * np.maximum(normals @ LIGHT_DIRECTION, 0.0)
        rgb[sel] = albedo * light[:, None]
    return np.clip(rgb, 0.0, 1.0)


def render_view(world: DemoWorld, c2w: np.ndarray, intr: Intrinsics, time: float, supersample: int) -> RenderedView:
    """Renders one camera at normalised time ``time``.

    RGB averages ``supersample`` x ``supersample`` rays per pixel; semantics, instances and depth come from
    the pixel-centre ray.
    """
    poses = world.poses(time)
    origins, dirs = pixel_rays(c2w, intr, supersample)
    radiance = shade(world, poses, trace(world, poses, origins, dirs))
    radiance = radiance.reshape(intr.h, intr.w, supersample * supersample, 3).mean(axis=2)
    rgb = np.round(radiance * 255.0).astype(np.uint8)
    origins, dirs = pixel_rays(c2w, intr, 1)
    hits = trace(world, poses, origins, dirs)
    depth = hits.distance * (dirs @ -c2w[:3, 2])
    return RenderedView(
        rgb=rgb,
        semantics=world.class_ids[hits.body].reshape(intr.h, intr.w),
        instances=world.instance_ids[hits.body].reshape(intr.h, intr.w),
        depth=depth.reshape(intr.h, intr.w).astype(np.float32),
        hits=hits,
    )


def ground_truth_flow(
    world: DemoWorld, hits: Hits, intr: Intrinsics, c2w_next: np.ndarray, time_next: float
) -> np.ndarray:
    """Analytic forward flow float32 [H, W, 2] in pixels (dx, dy) from a view to the next one.

    The surface point seen at each pixel centre (the pixel-centre ``hits`` of the first view) is carried with its
    body to ``time_next`` and projected into the camera ``c2w_next``. Occlusion in the next frame is ignored,
    so the flow is defined everywhere.
    """
    points = np.zeros_like(hits.local_points)
    for index, (rot, centre) in enumerate(world.poses(time_next)):
        sel = hits.body == index
        points[sel] = hits.local_points[sel] @ rot.T + centre
    rows, cols = np.meshgrid(np.arange(intr.h), np.arange(intr.w), indexing="ij")
    start = np.stack([cols.reshape(-1) + 0.5, rows.reshape(-1) + 0.5], axis=-1)
    flow = project(c2w_next, intr, points) - start
    return flow.reshape(intr.h, intr.w, 2).astype(np.float32)
