"""``sparse_depth_path``: per-frame SfM points (xy, depth, error) of a scene, written, read back and checked."""

import re
from pathlib import Path

import numpy as np
import pytest

from semflow_ns.data.format import SCENE_FILE, SceneFormatError, load_scene, read_sparse_depth, save_scene
from semflow_ns.data.format import write_sparse_depth as write

W, H = 32, 24
"""Image size of the tiny scene."""


def _with_sparse_depth(root: Path, frame: int = 2) -> Path:
    """Gives frame ``frame`` of the scene at ``root`` a valid sparse-depth file; returns its path."""
    scene = load_scene(root)
    path = root / "sparse_depth" / f"{frame:05d}.npz"
    write(
        path, np.array([[0.5, 0.5], [31.5, 23.5], [10.25, 7.0]]), np.array([1.0, 2.5, 8.0]), np.array([0.1, 0.3, 0.0])
    )
    scene.frames[frame].sparse_depth = path
    save_scene(scene)
    return path


def test_sparse_depth_round_trips(scene_copy: Path) -> None:
    path = _with_sparse_depth(scene_copy)
    scene = load_scene(scene_copy)
    assert scene.frames[2].sparse_depth == path and all(f.sparse_depth is None for f in scene.frames[3:])
    assert '"sparse_depth_path": "sparse_depth/00002.npz"' in (scene_copy / SCENE_FILE).read_text()
    arrays = read_sparse_depth(path, (W, H))
    assert {k: (v.dtype, v.shape) for k, v in arrays.items()} == {
        "xy": (np.float32, (3, 2)),
        "depth": (np.float32, (3,)),
        "error": (np.float32, (3,)),
    }
    np.testing.assert_allclose(arrays["depth"], [1.0, 2.5, 8.0])
    save_scene(scene)
    assert load_scene(scene_copy).frames[2].sparse_depth == path


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"xy": np.zeros((2, 2)), "depth": np.ones(2)}, r"missing \['error'\]"),
        ({"xy": np.zeros((2, 3)), "depth": np.ones(2), "error": np.zeros(2)}, r"'xy' must have shape \[P, 2\]"),
        ({"xy": np.zeros((2, 2)), "depth": np.ones(3), "error": np.zeros(2)}, r"'depth' must have shape \[2\]"),
        ({"xy": np.zeros((2, 2)), "depth": np.ones(2), "error": [0.0, np.nan]}, r"'error' contains NaN or inf"),
        ({"xy": np.zeros((2, 2)), "depth": [1.0, 0.0], "error": np.zeros(2)}, r"'depth' must be positive"),
        ({"xy": [[1.0, 1.0], [32.5, 3.0]], "depth": np.ones(2), "error": np.zeros(2)}, r"'xy' has 1 positions outside"),
    ],
    ids=["missing", "xy-shape", "depth-shape", "nan", "depth", "outside"],
)
def test_bad_sparse_depth_names_the_file_the_field_and_the_array(scene_copy: Path, arrays: dict, message: str) -> None:
    path = _with_sparse_depth(scene_copy)
    np.savez(path, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
    field = re.escape(f"{scene_copy / SCENE_FILE}: frames[2].sparse_depth_path: {path}")
    with pytest.raises(SceneFormatError, match=field + ".*" + message):
        load_scene(scene_copy)


def test_missing_sparse_depth_file(scene_copy: Path) -> None:
    path = _with_sparse_depth(scene_copy)
    path.unlink()
    with pytest.raises(SceneFormatError, match=re.escape("frames[2].sparse_depth_path: file ") + ".*does not exist"):
        load_scene(scene_copy)
