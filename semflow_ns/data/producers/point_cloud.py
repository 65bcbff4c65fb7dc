"""The scene's points as a PLY file, as nerfstudio's ``ply_file_path`` expects them.

nerfstudio's ``nerfstudio-data`` DataParser (``--load-3D-points``, which splatfacto turns on) reads the file with
open3d and moves the points with the same orientation, centring and scale as the frames' ``transform_matrix``:
the points must be in the world of the stored poses (for ``semflow-process-data``: the normalised world, after
``applied_transform``), with colours (``red, green, blue``, 0-255), since splatfacto starts its Gaussians' colours
from them. SfM points come without colours here, so each point takes the colour it shows in the frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from jaxtyping import Float, UInt8
from plyfile import PlyData, PlyElement

from semflow_ns.data.format import Intrinsics

POINT_CLOUD_FILE = "sparse_pc.ply"
"""File name of the point cloud in a scene folder (nerfstudio's ``ns-process-data`` name)."""
UNSEEN_COLOR = 128
"""Grey level of points that no frame sees."""


def _pixels(
    points: Float[np.ndarray, "m 3"], camera_to_world: Float[np.ndarray, "4 4"], intr: Intrinsics
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column and row (int) of every point in one OpenGL camera, with OpenCV distortion, and whether it is seen
    (in front of the camera and inside the image)."""
    local = (points - camera_to_world[:3, 3]) @ camera_to_world[:3, :3]
    depth = -local[:, 2]
    safe = np.maximum(depth, 1e-9)
    x, y = local[:, 0] / safe, -local[:, 1] / safe  # OpenCV image axes: y down
    r2 = x * x + y * y
    radial = 1.0 + intr.k1 * r2 + intr.k2 * r2 * r2
    xd = x * radial + 2 * intr.p1 * x * y + intr.p2 * (r2 + 2 * x * x)
    yd = y * radial + intr.p1 * (r2 + 2 * y * y) + 2 * intr.p2 * x * y
    u, v = intr.fl_x * xd + intr.cx, intr.fl_y * yd + intr.cy
    seen = (depth > 1e-6) & (u >= 0) & (u < intr.w) & (v >= 0) & (v < intr.h)
    col = np.clip(np.floor(u), 0, intr.w - 1).astype(np.int64)
    row = np.clip(np.floor(v), 0, intr.h - 1).astype(np.int64)
    return col, row, seen


def point_colors(
    points: Float[np.ndarray, "m 3"],
    camera_to_world: Float[np.ndarray, "n 4 4"],
    intrinsics: Sequence[Intrinsics],
    images: Sequence[UInt8[np.ndarray, "h w 3"]],
) -> UInt8[np.ndarray, "m 3"]:
    """Colour of every point: the per-channel median of the pixels it falls on in the frames that see it.

    Occlusion is not tested; the median keeps out what hides a point in a minority of the frames that see it.
    Points that no frame sees are grey (``UNSEEN_COLOR``).
    """
    samples = np.full((len(images), len(points), 3), np.nan, dtype=np.float32)
    for i, (pose, intr, rgb) in enumerate(zip(camera_to_world, intrinsics, images, strict=True)):
        col, row, seen = _pixels(points, pose, intr)
        samples[i, seen] = rgb[row[seen], col[seen]]
    seen_any = ~np.isnan(samples[:, :, 0]).all(axis=0)
    colors = np.full((len(points), 3), UNSEEN_COLOR, dtype=np.uint8)
    if seen_any.any():
        colors[seen_any] = np.round(np.nanmedian(samples[:, seen_any], axis=0)).astype(np.uint8)
    return colors


def write_point_cloud(path: Path, points: Float[np.ndarray, "m 3"], colors: UInt8[np.ndarray, "m 3"]) -> Path:
    """Writes a binary PLY with ``x, y, z`` (float32) and ``red, green, blue`` (uint8) per vertex; returns ``path``."""
    vertices = np.empty(len(points), dtype=[(k, "f4") for k in "xyz"] + [(k, "u1") for k in ("red", "green", "blue")])
    for k, name in enumerate("xyz"):
        vertices[name] = points[:, k]
    for k, name in enumerate(("red", "green", "blue")):
        vertices[name] = colors[:, k]
    path.parent.mkdir(parents=True, exist_ok=True)
    PlyData([PlyElement.describe(vertices, "vertex")]).write(str(path))
    return path


def read_point_cloud(path: Path) -> tuple[Float[np.ndarray, "m 3"], UInt8[np.ndarray, "m 3"]]:
    """Points (float64) and colours (uint8; ``UNSEEN_COLOR`` when the file has none) of a PLY file."""
    vertices = PlyData.read(str(path))["vertex"]
    points = np.stack([np.asarray(vertices[k], dtype=np.float64) for k in "xyz"], axis=1)
    names = vertices.data.dtype.names or ()
    if all(k in names for k in ("red", "green", "blue")):
        colors = np.stack([np.asarray(vertices[k], dtype=np.uint8) for k in ("red", "green", "blue")], axis=1)
    else:
        colors = np.full((len(points), 3), UNSEEN_COLOR, dtype=np.uint8)
    return points, colors
