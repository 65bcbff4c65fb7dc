"""LLFF poses_bounds.npy conversion and the normalised world / box / near-far of real scenes."""

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from semflow_ns.data.dynnerf.llff import read_poses_bounds, to_poses_bounds
from semflow_ns.data.format import Intrinsics, SceneFormatError
from semflow_ns.data.producers.scene_geometry import (
    BOUND_FACTOR,
    average_pose,
    bounds_from_points,
    forward_facing_normalization,
    unbounded_scene_range,
)

INTR = Intrinsics(fl_x=50.0, fl_y=50.0, cx=32.0, cy=24.0, w=64, h=48)


def forward_cameras(num: int = 6) -> np.ndarray:
    """OpenGL cameras on a short line, all looking roughly down a common direction."""
    base = Rotation.from_euler("xyz", [10, 25, 5], degrees=True).as_matrix()
    c2w = np.tile(np.eye(4), (num, 1, 1))
    for i in range(num):
        c2w[i, :3, :3] = base @ Rotation.from_euler("y", 2 * i, degrees=True).as_matrix()
        c2w[i, :3, 3] = [3.0 + 0.2 * i, -1.0, 7.0 + 0.05 * i]
    return c2w


def test_llff_columns_become_opengl_axes(tmp_path: Path) -> None:
    # One LLFF camera: rotation columns (down, right, back) = (-y, x, z) of an identity OpenGL camera.
    row = np.zeros(17)
    mat = np.array([[0, 1, 0, 5, 480], [-1, 0, 0, 6, 640], [0, 0, 1, 7, 500]], dtype=float)
    row[:15], row[15:] = mat.ravel(), [2.0, 30.0]
    np.save(tmp_path / "poses_bounds.npy", np.stack([row, row]))
    cams = read_poses_bounds(tmp_path / "poses_bounds.npy")
    np.testing.assert_allclose(cams.camera_to_world[0][:3, :3], np.eye(3))
    np.testing.assert_allclose(cams.camera_to_world[0][:3, 3], [5, 6, 7])
    np.testing.assert_allclose(cams.hwf[0], [480, 640, 500])
    np.testing.assert_allclose(cams.bounds[1], [2, 30])


def test_round_trip(tmp_path: Path) -> None:
    c2w = forward_cameras()
    np.save(tmp_path / "pb.npy", to_poses_bounds(c2w, [48, 64, 50], np.tile([1.0, 9.0], (6, 1))))
    np.testing.assert_allclose(read_poses_bounds(tmp_path / "pb.npy").camera_to_world, c2w, atol=1e-12)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((4, 15)), r"expected an N x 17 array .* got shape \[4, 15\]"),
        (np.zeros((0, 17)), r"expected an N x 17 array .* got shape \[0, 17\]"),
        (np.zeros(17), r"expected an N x 17 array .* got shape \[17\]"),
    ],
)
def test_wrong_shape_is_reported(tmp_path: Path, data: np.ndarray, message: str) -> None:
    np.save(tmp_path / "poses_bounds.npy", data)
    with pytest.raises(SceneFormatError, match=rf"poses_bounds\.npy: {message}"):
        read_poses_bounds(tmp_path / "poses_bounds.npy")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_is_reported_with_its_row(tmp_path: Path, bad: float) -> None:
    data = to_poses_bounds(forward_cameras(), [48, 64, 50], np.tile([1.0, 9.0], (6, 1)))
    data[4, 7] = bad
    np.save(tmp_path / "poses_bounds.npy", data)
    with pytest.raises(SceneFormatError, match=r"poses_bounds\.npy: row 4 \(image 4\) contains NaN or inf"):
        read_poses_bounds(tmp_path / "poses_bounds.npy")


def test_bad_bounds_and_unreadable_files(tmp_path: Path) -> None:
    data = to_poses_bounds(forward_cameras(), [48, 64, 50], np.tile([1.0, 9.0], (6, 1)))
    data[2, 15:] = [5.0, 4.0]
    np.save(tmp_path / "poses_bounds.npy", data)
    with pytest.raises(SceneFormatError, match=r"row 2 \(image 2\): bounds must satisfy 0 < near < far"):
        read_poses_bounds(tmp_path / "poses_bounds.npy")
    (tmp_path / "junk.npy").write_text("not numpy")
    with pytest.raises(SceneFormatError, match=r"junk\.npy: cannot read"):
        read_poses_bounds(tmp_path / "junk.npy")


def test_normalization_scales_the_near_bound_and_recentres() -> None:
    c2w = forward_cameras()
    near = np.linspace(2.0, 3.0, 6)
    norm = forward_facing_normalization(c2w, near)
    assert norm.scale == pytest.approx(1.0 / (np.percentile(near, 5) * BOUND_FACTOR))
    poses = norm.poses(c2w)
    np.testing.assert_allclose(average_pose(poses), np.eye(4), atol=1e-9)  # the mean camera is the identity
    for pose in poses:
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
    # a point keeps its depth (times the scale) in every camera
    point = c2w[2, :3, 3] - 4.0 * c2w[2, :3, 2]
    new_point = norm.points(point[None])[0]
    assert -(poses[2, :3, :3].T @ (new_point - poses[2, :3, 3]))[2] == pytest.approx(4.0 * norm.scale)


def test_box_near_far_from_points_and_from_bounds() -> None:
    c2w = forward_cameras()
    rng = np.random.default_rng(0)
    local = rng.uniform([-0.5, -0.4, -8], [0.5, 0.4, -2], size=(500, 3))
    points = local @ c2w[0, :3, :3].T + c2w[0, :3, 3]
    bounds = bounds_from_points(c2w, [INTR] * 6, points)
    assert bounds is not None and bounds.shape == (6, 2) and np.all(bounds[:, 0] < bounds[:, 1])
    box, near, far = unbounded_scene_range(c2w, [INTR] * 6, bounds, points)
    assert np.all(box[0] <= c2w[:, :3, 3].min(0)) and np.all(box[1] >= c2w[:, :3, 3].max(0))
    inside = np.all((points >= box[0]) & (points <= box[1]), axis=1)
    assert inside.mean() > 0.95
    assert near == pytest.approx(0.9 * bounds[:, 0].min()) and far > bounds[:, 1].max()
    frustum_box, _, _ = unbounded_scene_range(c2w, [INTR] * 6, bounds)
    assert np.all(frustum_box[1] > frustum_box[0])
    assert bounds_from_points(c2w, [INTR] * 6, points[:5]) is None
