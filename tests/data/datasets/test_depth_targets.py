"""Depth to supervise: SfM points and depth maps of the training frames, checked on load, as per-pixel targets."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig
from semflow_ns.data.datasets.pixel_sampler import sample_indices
from semflow_ns.data.datasets.semflow_dataset import SemanticFlowDataset, depth_targets
from semflow_ns.data.format import SCENE_FILE, SceneFormatError, load_scene, write_sparse_depth


def _add_depth(root: Path, frames: dict[int, dict]) -> None:
    """Adds per-frame depth keys (e.g. {0: {"sparse_depth_path": ...}}) to a scene's transforms.json."""
    meta = json.loads((root / SCENE_FILE).read_text())
    for index, keys in frames.items():
        meta["frames"][index].update(keys)
    (root / SCENE_FILE).write_text(json.dumps(meta))


def test_sparse_points_go_to_their_pixels_with_a_confidence_and_maps_win(scene_copy: Path) -> None:
    scene = load_scene(scene_copy)
    w, h = scene.frames[0].intrinsics.w, scene.frames[0].intrinsics.h
    xy = np.array([[2.5, 3.5], [2.9, 3.1], [10.2, 7.7]], np.float32)  # the first two share pixel (x 2, y 3)
    write_sparse_depth(scene_copy / "sd0.npz", xy, np.array([2.0, 3.0, 4.0]), np.array([1.0, 0.2, 3.0]))
    dense = np.zeros((h, w), np.float32)
    dense[7, 10] = 5.0
    np.save(scene_copy / "d1.npy", dense)
    write_sparse_depth(scene_copy / "sd1.npz", xy[2:], np.array([4.0]), np.array([0.0]))
    _add_depth(
        scene_copy, {0: {"sparse_depth_path": "sd0.npz"}, 1: {"sparse_depth_path": "sd1.npz", "depth_path": "d1.npy"}}
    )
    frames = load_scene(scene_copy).frames
    first = depth_targets(frames[0], (h, w))
    assert first.shape == (h, w, 2) and int((first[..., 1] > 0).sum()) == 2
    assert first[3, 2].tolist() == pytest.approx([3.0, 1.0 / 1.04])  # the more confident point of the pixel
    assert first[7, 10].tolist() == pytest.approx([4.0, 0.1])
    second = depth_targets(frames[1], (h, w))
    assert second[7, 10].tolist() == [5.0, 1.0] and int((second[..., 1] > 0).sum()) == 1
    outputs = SemanticFlowDataParserConfig(data=scene_copy).setup().get_dataparser_outputs("train")
    assert outputs.metadata["semflow_scene"].has_depth
    assert SemanticFlowDataset(outputs).get_metadata({"image_idx": 0})["depth"].shape == (h, w, 2)


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.ones((3, 4), np.float32), r"depth map of shape \[3, 4\], expected"),
        (np.full((0, 0), 1.0), "depth map of shape"),
        ("nan", "NaN or inf"),
        ("negative", "negative values"),
        ("zero", "all zero"),
    ],
)
def test_a_bad_depth_map_is_named_before_training(scene_copy: Path, array, problem: str) -> None:
    scene = load_scene(scene_copy)
    w, h = scene.frames[0].intrinsics.w, scene.frames[0].intrinsics.h
    if isinstance(array, str):
        value = {"nan": np.nan, "negative": -1.0, "zero": 0.0}[array]
        array = np.ones((h, w), np.float32)
        array[0, 0] = value
        if value == 0.0:
            array[:] = 0.0
    np.save(scene_copy / "depth3.npy", array)
    _add_depth(scene_copy, {3: {"depth_path": "depth3.npy"}})
    with pytest.raises(SceneFormatError, match=rf"frames\[3\]\.depth_path.*depth3\.npy.*{problem}"):
        SemanticFlowDataParserConfig(data=scene_copy).setup().get_dataparser_outputs("train")


def test_a_share_of_the_rays_goes_to_pixels_with_depth() -> None:
    depth = torch.zeros(2, 6, 8, 2)
    depth[1, 2, 5] = torch.tensor([3.0, 0.5])
    torch.manual_seed(0)
    indices = sample_indices(None, 64, 2, 6, 8, 2, 0.0, depth=depth, depth_ray_fraction=0.25)
    assert len(indices) == 64
    on_depth = (indices[:, 0] == 1) & (indices[:, 1] == 2) & (indices[:, 2] == 5)
    assert int(on_depth.sum()) >= 16


def test_targets_follow_a_dataset_at_another_scale(scene_copy: Path) -> None:
    scene = load_scene(scene_copy)
    w, h = scene.frames[0].intrinsics.w, scene.frames[0].intrinsics.h
    write_sparse_depth(scene_copy / "sd0.npz", np.array([[w - 1.5, h - 0.5]]), np.array([2.0]), np.array([0.0]))
    _add_depth(scene_copy, {0: {"sparse_depth_path": "sd0.npz"}})
    frame = load_scene(scene_copy).frames[0]
    half = depth_targets(frame, (h // 2, w // 2))
    assert half.shape == (h // 2, w // 2, 2) and half[h // 2 - 1, w // 2 - 1].tolist() == [2.0, 1.0]
