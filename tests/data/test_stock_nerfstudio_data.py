"""Converted DynNeRF scenes and the demo open in nerfstudio's own ``nerfstudio-data`` DataParser with the cameras of
the plugin's DataParsers (see also ``tests/process/test_process_stock_nerfstudio.py``)."""

import json
from pathlib import Path

import numpy as np
from nerfstudio_data_helpers import assert_stock_parser_agrees, original_positions

from semflow_ns.data.dataparsers.dynnerf_dataparser import DynNeRFDataParserConfig
from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig
from semflow_ns.data.format import SCENE_FILE, SceneDescription, load_scene


def _meta(root: Path) -> dict:
    return json.loads((root / SCENE_FILE).read_text())


def test_converted_dynnerf_scene_opens_in_nerfstudio_data(
    make_dynnerf, dynnerf_source: SceneDescription, tmp_path: Path
) -> None:
    plugin = DynNeRFDataParserConfig(data=make_dynnerf(), cache_dir=tmp_path / "cache").setup().get_dataparser_outputs()
    root = plugin.image_filenames[0].parents[1]
    meta = _meta(root)
    assert np.shape(meta["applied_transform"]) == (3, 4) and "ply_file_path" not in meta
    assert not any("mask_path" in frame for frame in meta["frames"])
    stock, _ = assert_stock_parser_agrees(root, plugin)
    # the poses_bounds.npy world is the demo's (the fixture wrote its cameras there)
    source = np.stack([f.camera_to_world[:3, 3] for f in dynnerf_source.frames])
    np.testing.assert_allclose(original_positions(stock), source, atol=1e-4)


def test_demo_scene_opens_in_nerfstudio_data(tiny_scene: Path) -> None:
    """The demo's world is its own (no ``applied_transform``); nerfstudio reads the video, not the held-out views."""
    assert "applied_transform" not in _meta(tiny_scene)
    plugin = SemanticFlowDataParserConfig(data=tiny_scene).setup().get_dataparser_outputs("train")
    stock, _ = assert_stock_parser_agrees(tiny_scene, plugin)
    assert len(stock.image_filenames) == len(load_scene(tiny_scene).frames) == 8
    np.testing.assert_allclose(original_positions(stock), plugin.cameras.camera_to_worlds[:, :, 3].numpy(), atol=1e-5)
