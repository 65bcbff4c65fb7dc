"""The keys that nerfstudio's own ``nerfstudio-data`` reads in nerfstudio's meaning: ``applied_transform`` (3x4,
and the 4x4 of scenes written before still reads) and ``ply_file_path``."""

import json
from pathlib import Path

import numpy as np
import pytest
from nerfstudio_data_helpers import original_positions, stock_outputs

from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig
from semflow_ns.data.format import SCENE_FILE, SceneFormatError, load_scene, save_scene
from semflow_ns.data.producers.point_cloud import write_point_cloud

SIMILARITY = np.array([[0.0, -2.0, 0.0, 1.0], [2.0, 0.0, 0.0, -0.5], [0.0, 0.0, 2.0, 3.0], [0.0, 0.0, 0.0, 1.0]])
"""A similarity (scale 2, a quarter turn about z, a shift) as a 4x4 matrix."""


def _meta(root: Path) -> dict:
    return json.loads((root / SCENE_FILE).read_text())


def test_a_4x4_applied_transform_of_older_scenes_still_reads_and_is_rewritten_3x4(scene_copy: Path) -> None:
    meta = _meta(scene_copy)
    (scene_copy / SCENE_FILE).write_text(json.dumps({**meta, "applied_transform": SIMILARITY.tolist()}))
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        stock_outputs(scene_copy)  # what nerfstudio made of such scenes
    scene = load_scene(scene_copy)
    np.testing.assert_array_equal(scene.applied_transform, SIMILARITY)
    assert "applied_transform" not in scene.extra
    save_scene(scene)
    assert _meta(scene_copy)["applied_transform"] == SIMILARITY[:3].tolist()
    np.testing.assert_array_equal(load_scene(scene_copy).applied_transform, SIMILARITY)
    stock = stock_outputs(scene_copy)
    plugin = SemanticFlowDataParserConfig(data=scene_copy).setup().get_dataparser_outputs("train")
    stored = plugin.cameras.camera_to_worlds[:, :, 3].double().numpy()
    expected = (stored - SIMILARITY[:3, 3]) @ np.linalg.inv(SIMILARITY[:3, :3]).T
    np.testing.assert_allclose(original_positions(stock), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([[1, 0, 0, 0], [0, 1, 0, 0]], "expected a finite 3x4"),
        ([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]], r"the last row .* must be \[0, 0, 0, 1\]"),
        ([[1, 0, 0, "x"], [0, 1, 0, 0], [0, 0, 1, 0]], r"expected a 3x4 \(or 4x4\) matrix of numbers"),
    ],
)
def test_a_bad_applied_transform_is_named(scene_copy: Path, value: list, message: str) -> None:
    (scene_copy / SCENE_FILE).write_text(json.dumps({**_meta(scene_copy), "applied_transform": value}))
    with pytest.raises(SceneFormatError, match=f"{SCENE_FILE}: applied_transform: {message}"):
        load_scene(scene_copy)


def test_the_point_cloud_round_trips_and_must_exist(scene_copy: Path) -> None:
    scene = load_scene(scene_copy)
    points = np.array([[0.0, 0.5, 1.0], [1.0, 1.5, 2.0]])
    scene.point_cloud = write_point_cloud(scene_copy / "points" / "pc.ply", points, np.full((2, 3), 7, np.uint8))
    save_scene(scene)
    assert _meta(scene_copy)["ply_file_path"] == "points/pc.ply"
    assert load_scene(scene_copy).point_cloud == scene_copy / "points" / "pc.ply"
    (scene_copy / "points" / "pc.ply").unlink()
    with pytest.raises(SceneFormatError, match=r"ply_file_path: file .*pc\.ply does not exist"):
        load_scene(scene_copy)
