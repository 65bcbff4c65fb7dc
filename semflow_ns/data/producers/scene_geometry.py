"""World frame, scene box and near/far of real (unbounded, mostly forward-facing) captures.

Every real scene the plugin writes (``dynnerf-data`` caches, ``semflow-process-data`` output) uses the
DynNeRF/LLFF normalisation, so that one set of model defaults fits them all:

* **scale** - world units are scaled by ``s = 1 / (0.9 * p5(near))``, where ``p5(near)`` is the 5th
  percentile of the per-frame near bounds: the nearest content sits at depth ~1.1;
* **recentring** - the average camera (mean centre, mean viewing direction, mean up vector) becomes the
  identity: cameras sit around the origin looking down -z, the scene lies at z < 0.

The scene box then bounds the well-observed content tightly (SfM points, or the camera frustums between
the near bounds and the median far bound), together with the camera centres; content outside it is
contracted by the model. ``near`` is 0.9 x the smallest near bound and ``far`` is ``FAR_MARGIN`` x the
largest far bound, both in the normalised world units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from semflow_ns.data.format import Intrinsics

BOUND_FACTOR = 0.9
"""DynNeRF's ``bd_factor``: the 5th-percentile near bound is mapped to 1 / BOUND_FACTOR."""
FAR_MARGIN = 2.0
"""``far`` = FAR_MARGIN x the largest far bound: room for background beyond the last SfM point."""
BOX_PADDING = 0.05
"""The scene box is grown by this fraction of its size on every side."""


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def average_pose(camera_to_world: np.ndarray) -> np.ndarray:
    """The mean camera (LLFF ``poses_avg``): mean centre, mean backward axis, mean up axis; [4, 4].

    When the cameras face all around (their backward axes cancel out), the rotation is left as the identity.
    """
    c2w = np.asarray(camera_to_world, dtype=np.float64)
    centre = c2w[:, :3, 3].mean(0)
    back_sum = c2w[:, :3, 2].sum(0)
    out = np.eye(4)
    out[:3, 3] = centre
    if np.linalg.norm(back_sum) < 0.3 * len(c2w):
        return out
    back = _normalize(back_sum)
    right = _normalize(np.cross(c2w[:, :3, 1].sum(0), back))
    out[:3, :3] = np.stack([right, np.cross(back, right), back], axis=1)
    return out


@dataclass
class Normalization:
    """A similarity transform of the world: ``x_new = transform @ [x_old, 1]`` (scale included)."""

    transform: np.ndarray
    """[4, 4]: rotation times ``scale`` in the top-left block, then the translation."""
    scale: float
    """World units are multiplied by this (depths and bounds too)."""

    def poses(self, camera_to_world: np.ndarray) -> np.ndarray:
        """Camera-to-world matrices [N, 4, 4] in the new world (rotations stay orthonormal)."""
        out = np.einsum("ij,njk->nik", self.transform, np.asarray(camera_to_world, dtype=np.float64))
        out[:, :3, :3] /= self.scale
        return out

    def points(self, points: np.ndarray) -> np.ndarray:
        """Points [M, 3] in the new world."""
        return np.asarray(points, dtype=np.float64) @ self.transform[:3, :3].T + self.transform[:3, 3]


def forward_facing_normalization(camera_to_world: np.ndarray, near_bounds: np.ndarray) -> Normalization:
    """DynNeRF's bound scaling followed by LLFF recentring (see the module docstring).

    Args:
        camera_to_world: [N, 4, 4] OpenGL camera-to-world matrices.
        near_bounds: [N] per-frame near depths in the same world units.
    """
    scale = 1.0 / (float(np.percentile(near_bounds, 5)) * BOUND_FACTOR)
    scaled = np.asarray(camera_to_world, dtype=np.float64).copy()
    scaled[:, :3, 3] *= scale
    transform = np.linalg.inv(average_pose(scaled)) @ np.diag([scale, scale, scale, 1.0])
    return Normalization(transform=transform, scale=scale)


def camera_depths(camera_to_world: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Depth (along the viewing direction) of every point in every camera: [N, M]; negative = behind."""
    c2w = np.asarray(camera_to_world, dtype=np.float64)
    offsets = points[None, :, :] - c2w[:, None, :3, 3]
    return -np.einsum("nmk,nk->nm", offsets, c2w[:, :3, 2])


def bounds_from_points(
    camera_to_world: np.ndarray, intrinsics: Sequence[Intrinsics], points: np.ndarray
) -> Optional[np.ndarray]:
    """Per-frame near/far depths [N, 2] as LLFF computes them: the 0.1st and 99.9th percentiles of the depth
    of the points in front of the camera and inside its image. A frame that sees fewer than 10 points gets
    the median bounds of the others; None when no frame sees 10 points."""
    c2w = np.asarray(camera_to_world, dtype=np.float64)
    bounds = np.full((len(c2w), 2), np.nan)
    for i, (pose, intr) in enumerate(zip(c2w, intrinsics, strict=True)):
        local = (points - pose[:3, 3]) @ pose[:3, :3]
        depth = -local[:, 2]
        safe = np.maximum(depth, 1e-9)
        u = intr.fl_x * local[:, 0] / safe + intr.cx
        v = -intr.fl_y * local[:, 1] / safe + intr.cy
        seen = (depth > 1e-6) & (u >= 0) & (u <= intr.w) & (v >= 0) & (v <= intr.h)
        if seen.sum() >= 10:
            bounds[i] = np.percentile(depth[seen], [0.1, 99.9])
    known = ~np.isnan(bounds[:, 0])
    if not known.any():
        return None
    bounds[~known] = np.median(bounds[known], axis=0)
    return bounds


def frustum_points(camera_to_world: np.ndarray, intrinsics: Sequence[Intrinsics], depths: np.ndarray) -> np.ndarray:
    """World positions [N * 4 * K, 3] of the image corners of every camera at each of its depths [N, K]."""
    out = []
    for pose, intr, ds in zip(np.asarray(camera_to_world), intrinsics, np.atleast_2d(depths), strict=True):
        for u, v in ((0, 0), (intr.w, 0), (0, intr.h), (intr.w, intr.h)):
            ray = np.array([(u - intr.cx) / intr.fl_x, -(v - intr.cy) / intr.fl_y, -1.0])
            out.extend(pose[:3, :3] @ (ray * d) + pose[:3, 3] for d in ds)
    return np.asarray(out)


def _padded_box(points: np.ndarray) -> np.ndarray:
    lo, hi = points.min(0), points.max(0)
    pad = BOX_PADDING * np.maximum(hi - lo, 1e-3 * max(float((hi - lo).max()), 1e-6))
    return np.stack([lo - pad, hi + pad])


def unbounded_scene_range(
    camera_to_world: np.ndarray,
    intrinsics: Sequence[Intrinsics],
    bounds: np.ndarray,
    points: Optional[np.ndarray] = None,
) -> tuple[np.ndarray, float, float]:
    """Scene box [2, 3], near and far of a real scene (see the module docstring), in the cameras' world.

    Args:
        camera_to_world: [N, 4, 4] OpenGL camera-to-world matrices.
        intrinsics: one per camera.
        bounds: [N, 2] per-frame near/far depths.
        points: optional [M, 3] SfM points: the box then covers their 1st-99th percentiles on every axis.
    """
    c2w = np.asarray(camera_to_world, dtype=np.float64)
    centres = c2w[:, :3, 3]
    if points is not None and len(points) >= 10:
        content = np.percentile(points, [1.0, 99.0], axis=0)
    else:
        depths = np.stack([bounds[:, 0], np.full(len(bounds), np.median(bounds[:, 1]))], axis=1)
        content = frustum_points(c2w, intrinsics, depths)
    box = _padded_box(np.concatenate([content, centres], axis=0))
    return box, BOUND_FACTOR * float(bounds[:, 0].min()), FAR_MARGIN * float(bounds[:, 1].max())
