"""Per-frame sparse depths of a processed scene: the SfM points each frame with an exact pose sees.

For a depth loss: every frame whose pose came straight from an SfM model (not interpolated, not rotation-only)
gets ``sparse_depth/<name>.npz`` (``sparse_depth_path`` in transforms.json) with, per observation of a
triangulated point, its keypoint position ``xy`` (pixels, x right, y down, pixel centres at +0.5, the format's
convention and COLMAP's), the point's z-depth along the camera's viewing axis in the written (normalised) world
and the observation's reprojection error in the SfM model. Observations behind the camera or outside the image
are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semflow_ns.data.format import Intrinsics, write_sparse_depth
from semflow_ns.data.producers.scene_geometry import Normalization
from semflow_ns.process.observations import Observations


def frame_depths(observations: Observations, camera_to_world: np.ndarray, norm: Normalization) -> np.ndarray:
    """z-depths [P] of the observed points seen from ``camera_to_world`` (OpenGL, normalised world)."""
    points = norm.points(observations.xyz)
    return -(points - camera_to_world[:3, 3]) @ camera_to_world[:3, 2]


def write_sparse_depths(
    root: Path,
    names: Sequence[str],
    camera_to_world: np.ndarray,
    intrinsics: Sequence[Intrinsics],
    observations: Sequence[Observations | None],
    norm: Normalization,
) -> list[dict[str, Path]]:
    """Writes ``root/sparse_depth/<name>.npz`` for each frame with observations; returns per frame the
    FrameRecord keyword arguments (``sparse_depth``, or nothing)."""
    files: list[dict[str, Path]] = []
    for name, pose, intr, seen in zip(names, camera_to_world, intrinsics, observations, strict=True):
        if seen is None or len(seen.xy) == 0:
            files.append({})
            continue
        depth = frame_depths(seen, pose, norm)
        x, y = seen.xy[:, 0], seen.xy[:, 1]
        keep = (depth > 0) & np.isfinite(depth) & (x >= 0) & (x <= intr.w) & (y >= 0) & (y <= intr.h)
        path = root / "sparse_depth" / f"{name}.npz"
        write_sparse_depth(path, seen.xy[keep], depth[keep], seen.error[keep])
        files.append({"sparse_depth": path})
    return files
