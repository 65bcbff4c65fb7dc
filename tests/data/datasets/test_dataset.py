"""Tests of SemanticFlowDataset: per-pixel labels, motion and optical flow attached to every image."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig
from semflow_ns.data.datasets.semflow_dataset import IGNORE_ID, SemanticFlowDataset, chain_flows
from semflow_ns.data.format import (
    MOTION_UNKNOWN,
    SCENE_FILE,
    load_scene,
    read_flow,
    read_label_image,
    write_label_image,
)

H, W = 24, 32


def dataset(data: Path, split: str = "train", scale_factor: float = 1.0, **config: Any) -> SemanticFlowDataset:
    outputs = SemanticFlowDataParserConfig(data=data, **config).setup().get_dataparser_outputs(split)
    return SemanticFlowDataset(outputs, scale_factor=scale_factor)


def edit_meta(root: Path, change: Any) -> None:
    meta = json.loads((root / SCENE_FILE).read_text())
    change(meta)
    (root / SCENE_FILE).write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def train_set(tiny_scene: Path) -> SemanticFlowDataset:
    return dataset(tiny_scene)


def test_item_keys_shapes_and_types(train_set: SemanticFlowDataset, tiny_scene: Path) -> None:
    scene = load_scene(tiny_scene)
    assert len(train_set) == 8
    item = train_set[3]
    assert item["image_idx"] == 3
    assert item["image"].shape == (H, W, 3) and item["image"].dtype == torch.float32
    assert 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1
    semantics = item["semantics"]
    assert semantics.shape == (H, W, 1) and semantics.dtype == torch.int64
    assert int(semantics.min()) >= 0 and int(semantics.max()) < len(scene.classes)
    assert scene.frames[3].semantics is not None
    np.testing.assert_array_equal(semantics[..., 0].numpy(), read_label_image(scene.frames[3].semantics))
    instances = item["instances"]
    assert instances.shape == (H, W, 1) and instances.dtype == torch.int64
    assert set(instances.unique().tolist()) <= {0} | {i.id for i in scene.instances}
    for key in ("flow_fwd", "flow_bwd"):
        assert item[key].shape == (H, W, 2) and item[key].dtype == torch.float32
        assert item[f"{key}_valid"].shape == (H, W, 1) and item[f"{key}_valid"].dtype == torch.float32
        assert set(item[f"{key}_valid"].unique().tolist()) <= {0.0, 1.0}
    assert scene.frames[3].flow_fwd is not None
    flow, mask = read_flow(scene.frames[3].flow_fwd)
    np.testing.assert_array_equal(item["flow_fwd"].numpy(), flow)
    np.testing.assert_array_equal(item["flow_fwd_valid"][..., 0].numpy(), mask.astype(np.float32))


def test_chained_flow_adds_the_second_flow_where_the_first_lands() -> None:
    """Frame a -> b moves every pixel 1 right, b -> c 2 down: a -> c is (1, 2) wherever the pixel lands inside b
    next to valid flow of b; the last column lands outside, and pixels next to an invalid flow of b are invalid."""
    first = np.tile(np.array([1.0, 0.0], np.float32), (6, 8, 1))
    second = np.tile(np.array([0.0, 2.0], np.float32), (6, 8, 1))
    second_valid = np.ones((6, 8), bool)
    second_valid[3, 4] = False
    chained, valid = chain_flows(first, np.ones((6, 8), bool), second, second_valid)
    np.testing.assert_allclose(chained[valid], np.tile([1.0, 2.0], (int(valid.sum()), 1)))
    assert not valid[:, 7].any(), "lands beyond the right edge"
    assert not valid[3, 3] and valid[3, 2] and valid[2, 3], "lands on the invalid flow of b"


def test_two_frame_flow_chains_the_video_s_one_frame_flows(train_set: SemanticFlowDataset, tiny_scene: Path) -> None:
    scene = load_scene(tiny_scene)
    for index, key, step in ((3, "flow_fwd", 1), (3, "flow_bwd", -1)):
        item = train_set[index]
        first, second = (read_flow(getattr(f, key)) for f in (scene.frames[index], scene.frames[index + step]))
        expected, valid = chain_flows(first[0], first[1], second[0], second[1])
        assert item[f"{key}2"].shape == (H, W, 2) and item[f"{key}2_valid"].shape == (H, W, 1)
        assert item[f"{key}2"].dtype == torch.float16 and item[f"{key}2_valid"].dtype == torch.uint8
        np.testing.assert_allclose(item[f"{key}2"].float().numpy(), expected, rtol=1e-3, atol=1e-3)
        np.testing.assert_array_equal(item[f"{key}2_valid"][..., 0].numpy(), valid.astype(np.uint8))
        assert valid.any()
    # two frames on from frame 6 of 8 (or back from frame 1) is beyond the video
    assert not train_set[6]["flow_fwd2_valid"].any() and not train_set[1]["flow_bwd2_valid"].any()
    assert "flow_fwd2" not in dataset(tiny_scene, "val")[1], "an evaluation split is not the video"


def test_motion_marks_the_dynamic_classes(train_set: SemanticFlowDataset, tiny_scene: Path) -> None:
    dynamic = load_scene(tiny_scene).dynamic_class_ids
    seen_motion = False
    for index in range(len(train_set)):
        item = train_set[index]
        motion = item["motion"]
        assert motion.shape == (H, W, 1) and motion.dtype == torch.float32
        expected = np.isin(item["semantics"].numpy(), dynamic).astype(np.float32)
        np.testing.assert_array_equal(motion.numpy(), expected)
        seen_motion |= bool(motion.any())
    assert seen_motion


def test_first_and_last_frames_miss_one_flow_direction(train_set: SemanticFlowDataset) -> None:
    first, last = train_set[0], train_set[len(train_set) - 1]
    assert not first["flow_bwd_valid"].any() and not first["flow_bwd"].any()
    assert not last["flow_fwd_valid"].any() and not last["flow_fwd"].any()
    assert first["flow_fwd_valid"].any() and last["flow_bwd_valid"].any()
    middle = train_set[4]
    assert middle["flow_fwd_valid"].any() and middle["flow_bwd_valid"].any()


def test_unlabelled_frame_uses_ignore_ids_and_its_motion_mask(scene_copy: Path) -> None:
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[5:15, 10:20] = 255
    mask[0:3, :] = MOTION_UNKNOWN  # a flow-estimated mask marks pixels of unknown motion
    Image.fromarray(mask).save(scene_copy / "motion_00002.png")

    def change(meta: dict[str, Any]) -> None:
        for index in (2, 5):
            del meta["frames"][index]["semantics_path"]
            del meta["frames"][index]["instance_path"]
        meta["frames"][2]["motion_mask_path"] = "motion_00002.png"
        meta["frames"][3]["motion_mask_path"] = "motion_00002.png"  # ignored: frame 3 has labels

    edit_meta(scene_copy, change)
    data = dataset(scene_copy)
    with_mask, without_mask, labelled = data[2], data[5], data[3]
    for item in (with_mask, without_mask):
        assert item["semantics"].shape == (H, W, 1) and bool(torch.all(item["semantics"] == IGNORE_ID))
        assert item["instances"].shape == (H, W, 1) and bool(torch.all(item["instances"] == IGNORE_ID))
    expected = np.where(mask == MOTION_UNKNOWN, -1.0, (mask > 127).astype(np.float32))
    checked = (with_mask["flow_label_unchecked"][..., 0] == 0).numpy()
    carried_moving = torch.isin(with_mask["flow_labels"][..., 0], data.dynamic_ids).numpy() & checked
    expected = np.where(carried_moving, 1.0, expected)  # a moving class carried along the flow (checked) moves
    np.testing.assert_array_equal(with_mask["motion"][..., 0].numpy(), expected)
    # unknown: neither labels nor a motion mask, except where a moving class was carried along the flow (checked)
    carried_moving = torch.isin(without_mask["flow_labels"], data.dynamic_ids) & (
        without_mask["flow_label_unchecked"] == 0
    )
    assert (without_mask["motion"][~carried_moving] == -1).all() and (without_mask["motion"][carried_moving] == 1).all()
    dynamic = data.info.dynamic_class_ids
    np.testing.assert_array_equal(labelled["motion"].numpy(), np.isin(labelled["semantics"].numpy(), dynamic))
    assert bool(torch.all(labelled["semantics"] >= 0))


def test_unlabelled_pixels_of_a_labelled_frame_take_the_motion_mask(scene_copy: Path) -> None:
    """Pixels written as UNLABELLED_ID (labels made from motion) are ignored by the label losses, and their motion
    is the motion mask's: a pixel of unknown motion must not become static because its frame has labels."""
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[:, :8] = MOTION_UNKNOWN
    mask[:, 8:12] = 255
    Image.fromarray(mask).save(scene_copy / "motion_00003.png")
    labels = read_label_image(scene_copy / "semantics/00003.png")
    labels[:, :12] = -1
    write_label_image(scene_copy / "semantics/00003.png", labels)
    instances = read_label_image(scene_copy / "instances/00003.png")
    instances[:, :12] = -1
    write_label_image(scene_copy / "instances/00003.png", instances)
    edit_meta(scene_copy, lambda meta: meta["frames"][3].update(motion_mask_path="motion_00003.png"))
    data = dataset(scene_copy)
    item = data[3]
    assert bool(torch.all(item["semantics"][:, :12] == IGNORE_ID)) and bool(
        torch.all(item["instances"][:, :12] == IGNORE_ID)
    )
    motion = item["motion"][..., 0].numpy()
    assert (motion[:, :8] == -1).all() and (motion[:, 8:12] == 1).all()
    rest = np.isin(item["semantics"][:, 12:, 0].numpy(), data.info.dynamic_class_ids)
    np.testing.assert_array_equal(motion[:, 12:], rest)
    assert (data[4]["motion"] >= 0).all()  # a fully labelled frame still takes its motion from its labels


def test_no_instances_key_without_an_instance_list(scene_copy: Path) -> None:
    def change(meta: dict[str, Any]) -> None:
        del meta["instances"]
        for frame in [*meta["frames"], *meta["eval_frames"]]:
            del frame["instance_path"]

    edit_meta(scene_copy, change)
    item = dataset(scene_copy)[1]
    assert "instances" not in item and "semantics" in item and "motion" in item


def test_half_scale_halves_sizes_and_flow(train_set: SemanticFlowDataset, tiny_scene: Path) -> None:
    half = dataset(tiny_scene, scale_factor=0.5)
    assert int(half.cameras.height[0]) == H // 2 and int(half.cameras.width[0]) == W // 2
    full_item, item = train_set[3], half[3]
    assert item["image"].shape == (H // 2, W // 2, 3)
    for key in ("semantics", "instances", "motion", "flow_fwd_valid", "flow_bwd_valid"):
        assert item[key].shape == (H // 2, W // 2, 1), key
    assert int(item["semantics"].min()) >= 0 and int(item["semantics"].max()) < len(half.info.classes)
    assert set(item["semantics"].unique().tolist()) <= set(full_item["semantics"].unique().tolist())
    for key in ("flow_fwd", "flow_bwd"):
        full = full_item[key].numpy()
        assert item[key].shape == (H // 2, W // 2, 2)
        # halving the image: each new pixel covers 2x2 old ones, and its flow is half as long
        pooled = full.reshape(H // 2, 2, W // 2, 2, 2).mean(axis=(1, 3))
        np.testing.assert_allclose(item[key].numpy(), 0.5 * pooled, atol=1e-4)
        assert float(np.abs(full).mean()) > 0.1


def test_eval_split_dataset_has_labels_but_no_flow(tiny_scene: Path) -> None:
    data = dataset(tiny_scene, "val")
    assert len(data) == 8
    for index in range(len(data)):
        item = data[index]
        assert item["image"].shape == (H, W, 3)
        assert int(item["semantics"].min()) >= 0
        assert item["instances"].shape == (H, W, 1)
        for key in ("flow_fwd", "flow_bwd"):
            assert item[key].shape == (H, W, 2) and not item[key].any()
            assert item[f"{key}_valid"].shape == (H, W, 1) and not item[f"{key}_valid"].any()


def test_video_eval_split_keeps_the_flow(tiny_scene: Path) -> None:
    data = dataset(tiny_scene, "val", eval_source="video", eval_interval=3)
    assert [p.name for p in data.image_filenames] == ["00000.png", "00003.png", "00006.png"]
    assert data[1]["flow_fwd_valid"].any() and data[1]["flow_bwd_valid"].any()
