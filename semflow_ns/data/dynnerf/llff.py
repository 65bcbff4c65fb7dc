"""LLFF ``poses_bounds.npy``: reading, validating and converting to OpenGL camera-to-world matrices.

The file holds an N x 17 float array, one row per image in sorted file-name order: a 3 x 5 matrix
flattened row-major, then the near and far depth bounds of the image's scene points. The 3 x 5 matrix is
``[R | t | hwf]``: a camera-to-world rotation whose columns are the camera's (down, right, backwards)
axes, the camera centre, and (image height, image width, focal length) in pixels of the full-resolution
``images/`` folder. nerfstudio (and this plugin) use OpenGL camera axes (right, up, backwards), so the
rotation columns are reordered to ``[right, -down, backwards]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from semflow_ns.data.format import SceneFormatError


@dataclass
class LLFFCameras:
    """The content of a ``poses_bounds.npy`` file, converted to OpenGL axes."""

    camera_to_world: np.ndarray
    """float64 [N, 4, 4] camera-to-world, OpenGL camera axes, in the file's world units."""
    hwf: np.ndarray
    """float64 [N, 3] image height, width (pixels) and focal length (pixels) at the full resolution."""
    bounds: np.ndarray
    """float64 [N, 2] near and far depth (world units) of each image's scene points."""

    def __len__(self) -> int:
        return len(self.camera_to_world)


def _check_array(path: Path, data: np.ndarray) -> None:
    if data.ndim != 2 or data.shape[1] != 17 or data.shape[0] == 0:
        raise SceneFormatError(
            f"{path}: expected an N x 17 array (3x5 pose-and-hwf matrix + near, far per image), "
            f"got shape {list(data.shape)}"
        )
    bad_rows = np.flatnonzero(~np.all(np.isfinite(data), axis=1))
    if bad_rows.size:
        raise SceneFormatError(
            f"{path}: row {int(bad_rows[0])} (image {int(bad_rows[0])}) contains NaN or inf "
            f"({bad_rows.size} bad row(s) in all)"
        )
    near, far = data[:, 15], data[:, 16]
    for row in range(len(data)):
        if not 0.0 < near[row] < far[row]:
            raise SceneFormatError(
                f"{path}: row {row} (image {row}): bounds must satisfy 0 < near < far, "
                f"got near={near[row]:g}, far={far[row]:g}"
            )
        h, w, f = data[row, 4], data[row, 9], data[row, 14]
        if min(h, w, f) <= 0:
            raise SceneFormatError(f"{path}: row {row} (image {row}): hwf must be positive, got ({h:g}, {w:g}, {f:g})")


def read_poses_bounds(path: Path) -> LLFFCameras:
    """Reads and validates ``poses_bounds.npy``.

    Raises:
        SceneFormatError: naming the file (and the row) when the file does not load, has the wrong shape,
            holds NaN/inf, non-positive hwf or bounds with near >= far.
    """
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise SceneFormatError(f"{path}: cannot read as a .npy array ({err})") from err
    if not np.issubdtype(data.dtype, np.number):
        raise SceneFormatError(f"{path}: expected a numeric array, got dtype {data.dtype}")
    data = data.astype(np.float64)
    _check_array(path, data)
    mats = data[:, :15].reshape(-1, 3, 5)
    c2w = np.tile(np.eye(4), (len(data), 1, 1))
    c2w[:, :3, 0] = mats[:, :, 1]
    c2w[:, :3, 1] = -mats[:, :, 0]
    c2w[:, :3, 2] = mats[:, :, 2]
    c2w[:, :3, 3] = mats[:, :, 3]
    return LLFFCameras(camera_to_world=c2w, hwf=mats[:, :, 4].copy(), bounds=data[:, 15:17].copy())


def to_poses_bounds(camera_to_world: ArrayLike, hwf: ArrayLike, bounds: ArrayLike) -> np.ndarray:
    """The inverse of :func:`read_poses_bounds`: an N x 17 LLFF array from OpenGL camera-to-world matrices.

    Args:
        camera_to_world: [N, 4, 4] or [N, 3, 4], OpenGL camera axes.
        hwf: [N, 3] or [3] image height, width and focal length in pixels.
        bounds: [N, 2] near and far depths.
    """
    c2w = np.asarray(camera_to_world, dtype=np.float64)[:, :3, :4]
    num = len(c2w)
    mats = np.zeros((num, 3, 5))
    mats[:, :, 0] = -c2w[:, :, 1]
    mats[:, :, 1] = c2w[:, :, 0]
    mats[:, :, 2] = c2w[:, :, 2]
    mats[:, :, 3] = c2w[:, :, 3]
    mats[:, :, 4] = np.broadcast_to(np.asarray(hwf, dtype=np.float64), (num, 3))
    return np.concatenate([mats.reshape(num, 15), np.asarray(bounds, dtype=np.float64).reshape(num, 2)], axis=1)
