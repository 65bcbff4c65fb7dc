"""The point cloud written for nerfstudio's ``ply_file_path``: colours sampled from the frames, PLY round trip."""

from pathlib import Path

import cv2
import numpy as np

from semflow_ns.data.format import Intrinsics
from semflow_ns.data.producers.point_cloud import (
    UNSEEN_COLOR,
    _pixels,
    point_colors,
    read_point_cloud,
    write_point_cloud,
)

INTR = Intrinsics(fl_x=10.0, fl_y=12.0, cx=4.0, cy=3.0, w=8, h=6)


def _pixel_centre_point(col: int, row: int, depth: float) -> np.ndarray:
    """The point at ``depth`` in front of the identity camera that lands on the centre of pixel (col, row)."""
    u, v = col + 0.5, row + 0.5
    return np.array([(u - INTR.cx) / INTR.fl_x * depth, -(v - INTR.cy) / INTR.fl_y * depth, -depth])


def test_colours_are_the_median_of_the_frames_that_see_the_point() -> None:
    rows, cols = np.mgrid[0:6, 0:8]
    rgb = np.stack([rows * 40, cols * 30, np.full_like(rows, 7)], axis=-1).astype(np.uint8)
    red = np.zeros_like(rgb)
    red[..., 0] = 255  # something hides every point in one frame
    points = np.stack([_pixel_centre_point(5, 2, 2.0), _pixel_centre_point(0, 5, 7.5), [0.0, 0.0, 1.0]])
    poses = np.tile(np.eye(4), (3, 1, 1))
    colors = point_colors(points, poses, [INTR] * 3, [rgb, red, rgb])
    np.testing.assert_array_equal(colors, [rgb[2, 5], rgb[5, 0], [UNSEEN_COLOR] * 3])  # the last one is behind


def test_projection_matches_opencv_with_distortion() -> None:
    intr = Intrinsics(fl_x=300.0, fl_y=310.0, cx=160.0, cy=120.0, w=320, h=240, k1=-0.2, k2=0.05, p1=0.01, p2=-0.02)
    rng = np.random.default_rng(0)
    c2w = np.eye(4)
    c2w[:3, :3] = cv2.Rodrigues(np.array([0.1, -0.2, 0.05]))[0]
    c2w[:3, 3] = [0.3, -0.1, 0.2]
    local = np.stack([rng.uniform(-1, 1, 50), rng.uniform(-0.8, 0.8, 50), -rng.uniform(2, 5, 50)], axis=1)
    points = local @ c2w[:3, :3].T + c2w[:3, 3]
    col, row, seen = _pixels(points, c2w, intr)
    opencv = local * [1.0, -1.0, -1.0]  # OpenGL -> OpenCV camera axes
    matrix = np.array([[intr.fl_x, 0, intr.cx], [0, intr.fl_y, intr.cy], [0, 0, 1]])
    image = cv2.projectPoints(opencv, np.zeros(3), np.zeros(3), matrix, np.array([-0.2, 0.05, 0.01, -0.02]))[0]
    inside = (image[:, 0, 0] >= 0) & (image[:, 0, 0] < 320) & (image[:, 0, 1] >= 0) & (image[:, 0, 1] < 240)
    np.testing.assert_array_equal(seen, inside)
    np.testing.assert_array_equal(col[seen], np.floor(image[seen, 0, 0]))
    np.testing.assert_array_equal(row[seen], np.floor(image[seen, 0, 1]))


def test_ply_round_trip(tmp_path: Path) -> None:
    points = np.array([[0.25, -1.5, 3.0], [1e3, 2e-3, -7.0]])
    colors = np.array([[1, 2, 3], [250, 128, 0]], dtype=np.uint8)
    path = write_point_cloud(tmp_path / "sub" / "pc.ply", points, colors)
    read_points, read_colors = read_point_cloud(path)
    np.testing.assert_allclose(read_points, points, rtol=1e-7)
    np.testing.assert_array_equal(read_colors, colors)
