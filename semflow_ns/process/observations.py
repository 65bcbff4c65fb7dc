"""What each registered frame of a pycolmap model sees: its triangulated keypoints, their 3D points and errors.

Used by the parallax guard (:mod:`semflow_ns.process.parallax`) and for the per-frame sparse depths written with
the scene (:mod:`semflow_ns.process.sparse_depth`). Pixel coordinates are COLMAP's, which are also the scene
format's: pixel centres at +0.5, x right, y down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pycolmap


@dataclass
class Observations:
    """The triangulated keypoints of one frame."""

    xy: np.ndarray
    """float64 [P, 2] keypoint positions in pixels."""
    xyz: np.ndarray
    """float64 [P, 3] their 3D points in the model's world."""
    error: np.ndarray
    """float64 [P] reprojection error of each observation in pixels."""
    point_ids: np.ndarray
    """int64 [P] the model's 3D point ids."""


def image_observations(model: pycolmap.Reconstruction, image: pycolmap.Image) -> Observations:
    """Observations of a registered ``image`` of ``model``."""
    pairs = [(p.xy, p.point3D_id) for p in image.points2D if p.has_point3D()]
    if not pairs:
        empty = np.zeros((0, 2))
        return Observations(empty, np.zeros((0, 3)), np.zeros(0), np.zeros(0, np.int64))
    xy = np.array([xy for xy, _ in pairs], dtype=np.float64)
    ids = np.array([i for _, i in pairs], dtype=np.int64)
    xyz = np.array([model.points3D[int(i)].xyz for i in ids], dtype=np.float64)
    camera = model.cameras[image.camera_id]
    local = np.asarray(image.cam_from_world() * xyz).reshape(-1, 3)
    projected = np.asarray(camera.img_from_cam(local, check_cheirality=False)).reshape(-1, 2)
    return Observations(xy, xyz, np.linalg.norm(projected - xy, axis=1), ids)


def model_observations(model: pycolmap.Reconstruction) -> dict[str, Observations]:
    """Observations of every registered image of ``model``, by image name."""
    return {image.name: image_observations(model, image) for image in model.images.values() if image.has_pose}
