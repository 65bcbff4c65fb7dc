"""Camera paths for dynamic scenes, written in the JSON that `ns-render camera-path` reads.

A path is a list of camera-to-world poses (OpenGL camera axes, as nerfstudio uses) each with a
render time in [0, 1]. The shots a dynamic scene needs combine two motions:

- the camera: fixed at a training view, along the training trajectory (:func:`interpolate_poses`),
  or on an arc around the point the video looks at (:func:`orbit_poses`);
- the time: sweeping the video (:func:`sweep_times`) or frozen ("bullet time").

nerfstudio's reader (``cameras/camera_paths.py::get_path_from_json``) keeps the times only if every
entry has ``render_time``; :func:`camera_path_json` always writes them.
"""

import math

import numpy as np
from jaxtyping import Float
from viser import transforms as vtf


def sweep_times(start: float, end: float, count: int) -> list[float]:
    """``count`` times evenly spaced from ``start`` to ``end`` (both included; one value: ``start``)."""
    return [float(t) for t in np.linspace(start, end, count)] if count > 1 else [float(start)]


def _as_4x4(pose: Float[np.ndarray, "3 4"] | Float[np.ndarray, "4 4"]) -> Float[np.ndarray, "4 4"]:
    out = np.eye(4)
    out[:3, :4] = pose[:3, :4]
    return out


def interpolate_poses(poses: Float[np.ndarray, "num_poses 4 4"], count: int) -> Float[np.ndarray, "count 4 4"]:
    """``count`` poses evenly spaced along a trajectory: positions linearly, rotations by slerp."""
    if len(poses) == 1:
        return np.repeat(_as_4x4(poses[0])[None], count, axis=0)
    out = []
    for s in np.linspace(0.0, len(poses) - 1.0, count):
        i = min(int(math.floor(s)), len(poses) - 2)
        f = float(s - i)
        rot_a = vtf.SO3.from_matrix(poses[i, :3, :3])
        rot_b = vtf.SO3.from_matrix(poses[i + 1, :3, :3])
        rotation = rot_a @ vtf.SO3.exp((rot_a.inverse() @ rot_b).log() * f)
        pose = np.eye(4)
        pose[:3, :3] = rotation.as_matrix()
        pose[:3, 3] = (1.0 - f) * poses[i, :3, 3] + f * poses[i + 1, :3, 3]
        out.append(pose)
    return np.stack(out)


def look_at_point(
    poses: Float[np.ndarray, "num_poses 4 4"], fallback: Float[np.ndarray, "3"]
) -> Float[np.ndarray, "3"]:
    """The point closest (least squares) to every camera's optical axis.

    Cameras looking in nearly the same direction do not pin the point down along that direction; a
    weak pull towards ``fallback`` (e.g. the scene box centre) keeps the answer finite.
    """
    origins = poses[:, :3, 3]
    directions = -poses[:, :3, 2] / np.linalg.norm(poses[:, :3, 2], axis=-1, keepdims=True)
    projectors = np.eye(3)[None] - directions[:, :, None] * directions[:, None, :]
    weight = 1e-3 * len(poses)
    lhs = projectors.sum(0) + weight * np.eye(3)
    rhs = np.einsum("nij,nj->i", projectors, origins) + weight * fallback
    return np.linalg.solve(lhs, rhs)


def mean_up(poses: Float[np.ndarray, "num_poses 4 4"]) -> Float[np.ndarray, "3"]:
    """Unit average of the cameras' up axes (+y in OpenGL camera axes)."""
    up = poses[:, :3, 1].sum(0)
    return up / max(float(np.linalg.norm(up)), 1e-12)


def orbit_poses(
    start: Float[np.ndarray, "4 4"],
    centre: Float[np.ndarray, "3"],
    up: Float[np.ndarray, "3"],
    degrees: float,
    count: int,
) -> Float[np.ndarray, "count 4 4"]:
    """``start`` turned about the axis ``up`` through ``centre``, over an arc of ``degrees`` centred on it.

    At angle 0 the pose is ``start`` itself, so the arc passes through a training view. A full turn
    (360 degrees or more) starts at ``start`` and does not repeat it at the end.
    """
    if degrees >= 360.0:
        angles = np.linspace(0.0, 2.0 * math.pi, count, endpoint=False)
    else:
        half = math.radians(degrees) / 2.0
        angles = np.linspace(-half, half, count) if count > 1 else np.zeros(1)
    out = []
    for angle in angles:
        turn = np.eye(4)
        turn[:3, :3] = vtf.SO3.exp(up * angle).as_matrix()
        shift_in, shift_out = np.eye(4), np.eye(4)
        shift_in[:3, 3], shift_out[:3, 3] = -centre, centre
        out.append(shift_out @ turn @ shift_in @ _as_4x4(start))
    return np.stack(out)


def vertical_fov_degrees(fy: float, height: float) -> float:
    """Vertical field of view of a pinhole camera, in degrees (the camera path's ``fov``)."""
    return math.degrees(2.0 * math.atan(height / (2.0 * fy)))


def camera_path_json(
    poses: Float[np.ndarray, "count 4 4"],
    times: list[float],
    fov: float,
    width: int,
    height: int,
    fps: float,
) -> dict:
    """The camera-path JSON of ``ns-render camera-path``: one entry per frame, each with a render time.

    Args:
        poses: camera-to-world poses, OpenGL camera axes.
        times: render time of each pose, in [0, 1].
        fov: vertical field of view in degrees.
        width: rendered width in pixels.
        height: rendered height in pixels.
        fps: frames per second of the video (nerfstudio stores its length, ``seconds``).
    """
    if len(poses) != len(times):
        raise ValueError(f"{len(poses)} poses but {len(times)} times")
    return {
        "camera_type": "perspective",
        "render_height": int(height),
        "render_width": int(width),
        "fps": float(fps),
        "seconds": len(poses) / float(fps),
        "camera_path": [
            {
                "camera_to_world": [float(v) for v in pose.reshape(-1)],
                "fov": float(fov),
                "aspect": width / height,
                "render_time": float(t),
            }
            for pose, t in zip(poses, times, strict=True)
        ],
    }
