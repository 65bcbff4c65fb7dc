"""Camera-path geometry and the JSON that `ns-render camera-path` reads back with its times."""

import math

import numpy as np
import torch
from nerfstudio.cameras.camera_paths import get_path_from_json
from viser import transforms as vtf

from semflow_ns.utils.camera_paths import (
    camera_path_json,
    interpolate_poses,
    look_at_point,
    mean_up,
    orbit_poses,
    sweep_times,
    vertical_fov_degrees,
)


def looking_at_origin(angle: float, radius: float = 3.0) -> np.ndarray:
    """OpenGL camera-to-world on a circle in the z = 1 plane, looking at the origin, +z up."""
    position = np.array([radius * math.cos(angle), radius * math.sin(angle), 1.0])
    back = position / np.linalg.norm(position)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, np.cross(back, right), back, position
    return pose


def test_interpolation_passes_through_the_first_and_last_pose():
    poses = np.stack([looking_at_origin(a) for a in (0.0, 0.5, 1.0)])
    path = interpolate_poses(poses, 9)
    assert path.shape == (9, 4, 4)
    assert np.allclose(path[0], poses[0]) and np.allclose(path[4], poses[1]) and np.allclose(path[-1], poses[2])
    for pose in path:
        assert np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-6)
    assert np.allclose(interpolate_poses(poses[:1], 3), poses[0])


def test_the_look_at_point_of_cameras_on_a_circle_is_its_centre():
    poses = np.stack([looking_at_origin(a) for a in np.linspace(0.0, 1.5, 6)])
    assert np.allclose(look_at_point(poses, np.array([5.0, 5.0, 5.0])), 0.0, atol=0.05)
    up = mean_up(poses)
    assert up[2] > 0.9 and np.isclose(np.linalg.norm(up), 1.0)


def test_an_orbit_keeps_the_distance_and_passes_through_the_start_pose():
    start = looking_at_origin(0.3)
    arc = orbit_poses(start, np.zeros(3), np.array([0.0, 0.0, 1.0]), 60.0, 5)
    assert np.allclose(arc[2], start), "the middle of the arc is the start pose"
    assert np.allclose(np.linalg.norm(arc[:, :3, 3], axis=-1), np.linalg.norm(start[:3, 3]))
    first, last = (math.atan2(p[1, 3], p[0, 3]) for p in (arc[0], arc[-1]))
    assert math.isclose(last - first, math.radians(60.0), abs_tol=1e-6)
    turn = orbit_poses(start, np.zeros(3), np.array([0.0, 0.0, 1.0]), 360.0, 4)
    assert np.allclose(turn[0], start) and not np.allclose(turn[-1], start)
    for pose in arc:  # still looking at the origin
        assert np.allclose(np.cross(-pose[:3, 2], -pose[:3, 3]), 0.0, atol=1e-6)
    assert vtf.SO3.from_matrix(arc[1, :3, :3]).wxyz.shape == (4,)


def test_the_json_is_read_back_by_nerfstudio_with_times_and_focal_length():
    poses = np.stack([looking_at_origin(a) for a in (0.0, 0.2, 0.4)])
    fov = vertical_fov_degrees(fy=20.0, height=24.0)
    path = camera_path_json(poses, sweep_times(0.0, 1.0, 3), fov, width=32, height=24, fps=6.0)
    assert path["seconds"] == 0.5
    cameras = get_path_from_json(path)
    assert cameras.times is not None and torch.allclose(cameras.times.flatten(), torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(cameras.fy.flatten().float(), torch.full((3,), 20.0))
    assert torch.allclose(cameras.camera_to_worlds, torch.from_numpy(poses[:, :3]).float(), atol=1e-6)
    assert sweep_times(0.3, 0.9, 1) == [0.3]
