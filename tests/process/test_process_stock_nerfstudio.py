"""Scenes written by ``semflow-process-data`` open in nerfstudio's own ``nerfstudio-data`` DataParser, with the
cameras (and SfM points) of the plugin's DataParser, and ``applied_transform`` leading back to the source's world."""

import json
from pathlib import Path

import numpy as np
from nerfstudio_data_helpers import ATOL, assert_stock_parser_agrees, original_positions
from scipy.spatial.transform import Rotation

from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig
from semflow_ns.data.format import FrameRecord, load_scene
from semflow_ns.data.producers.point_cloud import POINT_CLOUD_FILE, read_point_cloud
from semflow_ns.process import writing
from semflow_ns.process.pose_chain import PoseResult

SFM_SCALE, SFM_ROTATION, SFM_SHIFT = 0.37, Rotation.from_euler("xyz", [20, -35, 60], degrees=True), [1.0, -2.0, 0.5]
"""The similarity from the demo's world to the world of the fake SfM reconstruction."""


def _to_sfm(points: np.ndarray) -> np.ndarray:
    return SFM_SCALE * SFM_ROTATION.apply(points) + SFM_SHIFT


def _seen_points(frames: list[FrameRecord]) -> np.ndarray:
    """[96, 3] points in the demo's world, in front of frames 0 and 3: their pixel grids at depths 2 and 3.5."""
    out = []
    for frame in (frames[0], frames[3]):
        intr, c2w = frame.intrinsics, frame.camera_to_world
        for u in np.linspace(4, intr.w - 4, 6):
            for v in np.linspace(4, intr.h - 4, 4):
                ray = np.array([(u - intr.cx) / intr.fl_x, -(v - intr.cy) / intr.fl_y, -1.0])
                out.extend(c2w[:3, :3] @ (ray * depth) + c2w[:3, 3] for depth in (2.0, 3.5))
    return np.asarray(out)


def _transformed(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def test_processed_scene_opens_in_nerfstudio_data(demo_inputs, cli, tmp_path: Path) -> None:
    """Supplied poses and no points: no ``ply_file_path``; nerfstudio maps its cameras back onto the supplied ones."""
    out = tmp_path / "scene"
    code, text = cli("--images", str(demo_inputs.frames), "--labels", str(demo_inputs.masks),
                     "--poses", str(demo_inputs.root / "transforms.json"), "--bounds", "0.4", "9", "--output", str(out))  # fmt: skip
    assert code == 0, text
    meta = json.loads((out / "transforms.json").read_text())
    assert np.shape(meta["applied_transform"]) == (3, 4) and "ply_file_path" not in meta
    assert not any("mask_path" in frame for frame in meta["frames"])  # nerfstudio's loss masks: 0 = ignore
    assert all("motion_mask_path" in frame for frame in meta["frames"])
    plugin = SemanticFlowDataParserConfig(data=out).setup().get_dataparser_outputs("train")
    stock, _ = assert_stock_parser_agrees(out, plugin)
    assert [p.name for p in stock.image_filenames] == [f"frame_{i:03d}.png" for i in range(6)]
    supplied = np.stack([f.camera_to_world[:3, 3] for f in demo_inputs.scene.frames])
    np.testing.assert_allclose(original_positions(stock), supplied, atol=1e-4)


def test_sfm_points_are_written_for_nerfstudio(demo_inputs, cli, monkeypatch, tmp_path: Path) -> None:
    """SfM (replaced by the demo's cameras and points moved into another world): the points go to ``sparse_pc.ply``
    in the world of the written poses, and nerfstudio's ``--load-3D-points`` puts them where its cameras see them."""
    frames = demo_inputs.scene.frames
    sfm_c2w = np.stack([f.camera_to_world for f in frames])
    sfm_c2w[:, :3, :3] = SFM_ROTATION.as_matrix() @ sfm_c2w[:, :3, :3]
    sfm_c2w[:, :3, 3] = _to_sfm(sfm_c2w[:, :3, 3])
    sfm_points = _to_sfm(_seen_points(frames))

    def fake_sfm(inputs, settings, min_registered, fallback, console) -> PoseResult:
        assert inputs.names == [f"frame_{i:03d}.png" for i in range(6)]
        return PoseResult("sfm", sfm_c2w, frames[0].intrinsics, sfm_points, 0, 5, [], 6, 0.5, approximate=False)

    monkeypatch.setattr(writing, "estimate_poses", fake_sfm)
    out = tmp_path / "scene"
    code, text = cli("--images", str(demo_inputs.frames), "--labels", str(demo_inputs.masks), "--output", str(out))
    assert code == 0, text
    assert json.loads((out / "transforms.json").read_text())["ply_file_path"] == POINT_CLOUD_FILE
    scene = load_scene(out)
    assert scene.point_cloud == out / POINT_CLOUD_FILE and scene.applied_transform is not None
    points, colors = read_point_cloud(scene.point_cloud)
    np.testing.assert_allclose(points, _transformed(scene.applied_transform, sfm_points), atol=1e-5)
    centres = np.stack([f.camera_to_world[:3, 3] for f in scene.frames])
    np.testing.assert_allclose(_transformed(scene.applied_transform, sfm_c2w[:, :3, 3]), centres, atol=1e-9)

    plugin = SemanticFlowDataParserConfig(data=out).setup().get_dataparser_outputs("train")
    stock, similarity = assert_stock_parser_agrees(out, plugin, load_points=True)
    extent = float(np.ptp(stock.cameras.camera_to_worlds[:, :, 3].numpy(), axis=0).max())
    np.testing.assert_allclose(stock.metadata["points3D_xyz"].numpy(), similarity.points(points), atol=ATOL * extent)
    np.testing.assert_array_equal(stock.metadata["points3D_rgb"].numpy(), colors)
    np.testing.assert_allclose(original_positions(stock), sfm_c2w[:, :3, 3], atol=1e-4)
