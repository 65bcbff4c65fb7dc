"""Helpers of the tests that open the plugin's scenes with nerfstudio's own ``nerfstudio-data`` DataParser
(``tests/`` is on ``sys.path`` while they run).

Each DataParser normalises the world its own way: the plugin's keeps the stored poses, nerfstudio's orients,
centres and scales them. The cameras agree when one similarity of the world (scale, rotation, translation) takes
every plugin camera onto nerfstudio's: rotations and positions both, so relative poses match up to one global scale.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

ATOL = 1e-5
"""Tolerance on rotations and, relative to the extent of the camera path, on positions (float32 cameras)."""


@dataclass
class Similarity:
    """``x -> scale * rotation @ x + translation``."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def points(self, points: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation


def stock_outputs(root: Path, load_points: bool = False) -> DataparserOutputs:
    """Every frame of the scene at ``root`` as nerfstudio's ``nerfstudio-data`` reads it (its defaults, no split)."""
    config = NerfstudioDataParserConfig(data=root, eval_mode="all", load_3D_points=load_points)
    return config.setup().get_dataparser_outputs("train")


def _poses(outputs: DataparserOutputs) -> tuple[np.ndarray, np.ndarray]:
    c2w = outputs.cameras.camera_to_worlds.double().numpy()
    return c2w[:, :, :3], c2w[:, :, 3]


def fit_similarity(plugin: DataparserOutputs, stock: DataparserOutputs) -> Similarity:
    """The similarity taking the plugin's cameras onto nerfstudio's (same images, in any order); asserts that it
    does, for every camera's rotation and position."""
    order = [[p.resolve() for p in plugin.image_filenames].index(p.resolve()) for p in stock.image_filenames]
    rot_p, pos_p = (x[order] for x in _poses(plugin))
    rot_s, pos_s = _poses(stock)
    rotation = rot_s[0] @ rot_p[0].T
    np.testing.assert_allclose(rot_s, rotation @ rot_p, atol=ATOL)
    moved = pos_p @ rotation.T
    system = np.concatenate([moved.reshape(-1, 1), np.tile(np.eye(3), (len(moved), 1))], axis=1)
    solution = np.linalg.lstsq(system, pos_s.reshape(-1), rcond=None)[0]
    similarity = Similarity(float(solution[0]), rotation, solution[1:])
    assert similarity.scale > 0
    extent = float(np.ptp(pos_s, axis=0).max())
    np.testing.assert_allclose(similarity.points(pos_p), pos_s, atol=ATOL * extent)
    return similarity


def assert_stock_parser_agrees(
    root: Path, plugin: DataparserOutputs, load_points: bool = False
) -> tuple[DataparserOutputs, Similarity]:
    """Reads the scene folder ``root`` with nerfstudio's stock DataParser; asserts that it gives the image files of
    ``plugin`` (the plugin DataParser's training outputs: the whole video) with the same intrinsics, and cameras
    related to the plugin's by one similarity (:func:`fit_similarity`). Returns nerfstudio's outputs and it."""
    stock = stock_outputs(root, load_points)
    names = sorted(p.resolve() for p in plugin.image_filenames)
    assert sorted(p.resolve() for p in stock.image_filenames) == names and len(set(names)) == len(names)
    order = [[p.resolve() for p in plugin.image_filenames].index(p.resolve()) for p in stock.image_filenames]
    for key in ("fx", "fy", "cx", "cy", "width", "height"):
        expected = getattr(plugin.cameras, key)[order].double()
        torch.testing.assert_close(getattr(stock.cameras, key).double(), expected, rtol=1e-6, atol=1e-4)
    distortion = plugin.cameras.distortion_params
    if distortion is not None:
        torch.testing.assert_close(stock.cameras.distortion_params, distortion[order], rtol=1e-6, atol=1e-6)
    else:
        assert not stock.cameras.distortion_params.any()
    return stock, fit_similarity(plugin, stock)


def original_positions(stock: DataparserOutputs) -> np.ndarray:
    """Camera positions [N, 3] that nerfstudio maps back to the source's world (``dataparser_transform`` and
    ``dataparser_scale``, i.e. the scene's ``applied_transform`` undone), as ``ns-export`` does for points."""
    poses = stock.transform_poses_to_original_space(stock.cameras.camera_to_worlds, camera_convention="opengl")
    return poses[:, :, 3].double().numpy()
