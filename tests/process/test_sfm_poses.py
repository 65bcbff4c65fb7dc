"""Pieces of the SfM stage that need no reconstruction: camera conversion and unregistered frames."""

import numpy as np
import pycolmap
import pytest
from scipy.spatial.transform import Rotation

from semflow_ns.data.format import Intrinsics
from semflow_ns.process import ProcessError
from semflow_ns.process.sfm import SfmResult, complete_poses, intrinsics_from_camera


def result(registered: list[bool]) -> SfmResult:
    c2w = np.full((len(registered), 4, 4), np.nan)
    for i, ok in enumerate(registered):
        if ok:
            c2w[i] = np.eye(4)
            c2w[i, :3, :3] = Rotation.from_euler("y", 10 * i, degrees=True).as_matrix()
            c2w[i, :3, 3] = [i, 0.0, 0.0]
    intr = Intrinsics(fl_x=1.0, fl_y=1.0, cx=1.0, cy=1.0, w=2, h=2)
    return SfmResult(c2w, np.array(registered), intr, np.zeros((0, 3)), 0.3, 1)


def test_ends_are_dropped_and_interior_gaps_interpolated() -> None:
    done = complete_poses(result([False, True, True, False, True, True, False]), min_registered=0.5)
    assert (done.first, done.last, done.interpolated) == (1, 5, [3])
    assert done.camera_to_world.shape == (5, 4, 4)
    np.testing.assert_allclose(done.camera_to_world[2, :3, 3], [3.0, 0.0, 0.0])
    angle = Rotation.from_matrix(done.camera_to_world[2, :3, :3]).as_euler("xyz", degrees=True)
    np.testing.assert_allclose(angle, [0.0, 30.0, 0.0], atol=1e-9)


def test_too_few_registered_frames_fail_with_advice() -> None:
    with pytest.raises(ProcessError, match=r"registered only 4 of 7 frames \(at least 6 needed.*What to try"):
        complete_poses(result([False, True, True, False, True, True, False]), min_registered=0.8)
    with pytest.raises(ProcessError, match="registered only 2 of 3"):
        complete_poses(result([True, True, False]), min_registered=0.5)


@pytest.mark.parametrize(
    ("model", "params", "expected"),
    [
        ("SIMPLE_RADIAL", [500, 320, 240, 0.1], dict(fl_x=500, fl_y=500, cx=320, cy=240, k1=0.1)),
        ("PINHOLE", [500, 510, 321, 241], dict(fl_x=500, fl_y=510, cx=321, cy=241)),
        ("OPENCV", [500, 510, 321, 241, 0.1, 0.2, 0.01, 0.02], dict(fl_x=500, k2=0.2, p1=0.01, p2=0.02)),
    ],
)
def test_colmap_cameras_map_to_scene_intrinsics(model: str, params: list[float], expected: dict) -> None:
    camera = pycolmap.Camera.create_from_model_name(1, model, 500.0, 640, 480)
    camera.params = params
    intr = intrinsics_from_camera(camera)
    assert (intr.w, intr.h) == (640, 480)
    for key, value in expected.items():
        assert getattr(intr, key) == pytest.approx(value)
