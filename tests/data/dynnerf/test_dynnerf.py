"""The ``dynnerf-data`` DataParser on small DynNeRF-layout scenes written from the demo scene."""

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs

from semflow_ns.data.dataparsers.dynnerf_dataparser import DynNeRFDataParserConfig
from semflow_ns.data.datasets.semflow_dataset import SemanticFlowDataset
from semflow_ns.data.format import SceneDescription, load_scene, read_flow, read_label_image


def parse(root: Path, cache: Path, split: str = "train", **config: Any) -> DataparserOutputs:
    return DynNeRFDataParserConfig(data=root, cache_dir=cache, **config).setup().get_dataparser_outputs(split)


def test_reads_poses_labels_flow_and_times(
    make_dynnerf, dynnerf_source: SceneDescription, snapshot, tmp_path: Path
) -> None:
    root = make_dynnerf()
    before = snapshot(root)
    out = parse(root, tmp_path / "cache")
    assert snapshot(root) == before  # the input folder is only read
    cams, src = out.cameras, dynnerf_source.frames
    assert cams.shape == (6,) and int(cams.width[0]) == 32 and int(cams.height[0]) == 24  # images_2
    assert float(cams.fx[0]) == pytest.approx(src[0].intrinsics.fl_x / 2, rel=1e-6)
    assert float(cams.cx[0]) == pytest.approx(16.0) and float(cams.cy[0]) == pytest.approx(12.0)
    assert cams.times is not None
    np.testing.assert_allclose(cams.times[:, 0].numpy(), np.arange(6) / 5, atol=1e-6)
    # the LLFF round trip keeps the cameras up to a similarity transform (DynNeRF scaling + recentring)
    new = cams.camera_to_worlds.double().numpy()
    old = np.stack([f.camera_to_world for f in src])
    for i, j in ((0, 3), (2, 5)):
        np.testing.assert_allclose(new[i, :, :3].T @ new[j, :, :3], old[i, :3, :3].T @ old[j, :3, :3], atol=1e-5)
    ratios = np.linalg.norm(new[1:, :, 3] - new[0, :, 3], axis=1) / np.linalg.norm(
        old[1:, :3, 3] - old[0, :3, 3], axis=1
    )
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-4)
    info = out.metadata["semflow_scene"]
    assert info.unbounded and 0 < info.near < info.far
    assert [c.name for c in info.classes] == [c.name for c in dynnerf_source.classes]
    assert info.dynamic_class_ids == dynnerf_source.dynamic_class_ids
    box = out.scene_box.aabb.numpy()
    assert np.all(box[0] < new[:, :, 3].min(0)) and np.all(box[1] > new[:, :, 3].max(0))

    frames = out.metadata["semflow_frames"]
    ids = cv2.resize(read_label_image(src[2].semantics).astype(np.int32), (32, 24), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(read_label_image(frames[2].semantics), ids)
    flow, mask = read_flow(frames[2].flow_fwd)
    source_flow, _ = read_flow(src[2].flow_fwd)
    expected = cv2.resize(source_flow, (32, 24), interpolation=cv2.INTER_LINEAR) * 0.5
    np.testing.assert_allclose(flow, expected, atol=0.02)
    assert frames[0].flow_bwd is None and frames[5].flow_fwd is None and mask.dtype == bool
    item = SemanticFlowDataset(out)[2]
    assert item["semantics"].shape == (24, 32, 1) and item["flow_fwd"].shape == (24, 32, 2)


def test_the_conversion_is_cached_until_the_input_changes(make_dynnerf, tmp_path: Path) -> None:
    root = make_dynnerf()
    first = parse(root, tmp_path / "cache").image_filenames[0].parents[1]
    assert first.parent == tmp_path / "cache" and first.name.startswith("scene-")
    stamp = (first / "transforms.json").stat().st_mtime_ns
    assert parse(root, tmp_path / "cache", "val").image_filenames[0].parents[1] == first
    assert (first / "transforms.json").stat().st_mtime_ns == stamp
    assert parse(root, tmp_path / "cache", downscale_factor=1).image_filenames[0].parents[1] != first
    (root / "foreground_object.txt").write_text("ball\n")
    changed = parse(root, tmp_path / "cache").image_filenames[0].parents[1]
    assert changed != first and not any(p.name.startswith(".") for p in (tmp_path / "cache").iterdir())


def test_missing_images_2_and_flow_are_made_in_the_cache(make_dynnerf, snapshot, tmp_path: Path) -> None:
    root = make_dynnerf(flow=False, images_2=False)
    before = snapshot(root)
    out = parse(root, tmp_path / "cache")
    assert snapshot(root) == before and not (root / "images_2").exists() and not (root / "flow").exists()
    assert int(out.cameras.width[0]) == 32 and int(out.cameras.height[0]) == 24
    frames = out.metadata["semflow_frames"]
    assert all(f.flow_fwd is not None for f in frames[:-1]) and all(f.flow_bwd is not None for f in frames[1:])
    assert all(tmp_path / "cache" in f.flow_fwd.parents for f in frames[:-1])
    assert read_flow(frames[0].flow_fwd)[0].shape == (24, 32, 2)


def test_full_resolution_maps_in_the_dataset_root_and_motion_masks(make_dynnerf, tmp_path: Path) -> None:
    root = make_dynnerf(maps_in_parent=True, motion_masks=True, labels=False)
    assert not (root / "labelmap.txt").exists()
    out = parse(root, tmp_path / "cache", downscale_factor=1)
    assert int(out.cameras.width[0]) == 64
    info = out.metadata["semflow_scene"]
    assert len(info.classes) == 6 and not info.has_labels
    item = SemanticFlowDataset(out)[1]
    assert set(item["motion"].unique().tolist()) == {0.0, 1.0} and bool((item["semantics"] == -1).all())


def test_label_subsets_and_unlabelled_evaluation(make_dynnerf, tmp_path: Path) -> None:
    root = make_dynnerf()
    train = parse(root, tmp_path / "cache", label_frames="first:50%")
    assert [f.semantics is not None for f in train.metadata["semflow_frames"]] == [True] * 3 + [False] * 3
    test = parse(root, tmp_path / "cache", "test", label_frames="first:50%", eval_source="unlabelled")
    assert [p.name for p in test.image_filenames] == ["00003.png", "00004.png", "00005.png"]
    assert all(p is not None for p in test.metadata["semantics"].filenames)
    every = parse(root, tmp_path / "cache", "val", eval_interval=2)  # default: video frames, all trained on
    assert [p.name for p in every.image_filenames] == ["00000.png", "00002.png", "00004.png"]


def test_written_scene_is_a_valid_semflow_scene(make_dynnerf, tmp_path: Path) -> None:
    out = parse(make_dynnerf(), tmp_path / "cache")
    scene = load_scene(out.image_filenames[0].parents[1])
    assert scene.unbounded and scene.extra["source_format"] == "dynnerf" and len(scene.frames) == 6


def test_dynnerf_data_is_registered_with_nerfstudio() -> None:
    from nerfstudio.plugins.registry_dataparser import discover_dataparsers

    dataparsers, descriptions = discover_dataparsers()
    assert isinstance(dataparsers["dynnerf-data"], DynNeRFDataParserConfig)
    assert "DynNeRF" in descriptions["dynnerf-data"]
