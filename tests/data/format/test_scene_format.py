"""Tests of the semflow scene format: round trip, and one clear SceneFormatError per kind of bad input."""

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
from PIL import Image

from semflow_ns.data.format import (
    SCENE_FILE,
    UNLABELLED_ID,
    SceneFormatError,
    load_scene,
    read_flow,
    read_label_image,
    save_scene,
    write_flow,
    write_label_image,
)

H, W = 24, 32
"""Image size of the tiny scene."""


def read_meta(root: Path) -> dict[str, Any]:
    return json.loads((root / SCENE_FILE).read_text())


def write_meta(root: Path, meta: dict[str, Any]) -> None:
    (root / SCENE_FILE).write_text(json.dumps(meta, indent=1))


def edit_meta(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    meta = read_meta(root)
    change(meta)
    write_meta(root, meta)


def expect_error(root: Path, field: str, offending: Optional[Path] = None) -> pytest.ExceptionInfo[SceneFormatError]:
    """Loading ``root`` fails with a message naming transforms.json, the field (a regex) and the offending file."""
    pattern = re.escape(str(root / SCENE_FILE)) + ": " + field
    if offending is not None:
        pattern += ".*" + re.escape(str(offending.resolve()))
    with pytest.raises(SceneFormatError, match=pattern) as err:
        load_scene(root)
    return err


# ----------------------------------------------------------------------------------------------
# Round trip


def test_round_trip_reproduces_the_file_and_the_records(scene_copy: Path) -> None:
    original_text = (scene_copy / SCENE_FILE).read_text()
    first = load_scene(scene_copy)
    (scene_copy / SCENE_FILE).unlink()
    save_scene(first)
    assert (scene_copy / SCENE_FILE).read_text() == original_text
    second = load_scene(scene_copy)
    assert second.classes == first.classes and second.instances == first.instances
    assert second.near == first.near and second.far == first.far and second.extra == first.extra
    np.testing.assert_array_equal(second.scene_box, first.scene_box)
    for a, b in zip([*first.frames, *first.eval_frames], [*second.frames, *second.eval_frames], strict=True):
        for f in dataclasses.fields(a):
            if f.name == "camera_to_world":
                np.testing.assert_array_equal(a.camera_to_world, b.camera_to_world)
            else:
                assert getattr(a, f.name) == getattr(b, f.name), f.name


def test_loaded_scene_describes_the_tiny_demo(tiny_scene: Path) -> None:
    scene = load_scene(tiny_scene)
    assert scene.root == tiny_scene and len(scene.frames) == 8 and len(scene.eval_frames) == 8
    assert scene.has_labels and scene.has_instances
    assert [scene.classes[i].name for i in scene.dynamic_class_ids] == ["ball", "cube"]
    first, last = scene.frames[0], scene.frames[-1]
    assert first.flow_bwd is None and first.flow_fwd is not None
    assert last.flow_fwd is None and last.flow_bwd is not None
    assert all(f.image.is_absolute() and f.image.is_file() for f in scene.frames)
    assert first.camera_to_world.shape == (4, 4)


def test_per_frame_intrinsics_survive_a_round_trip_with_shared_distortion(scene_copy: Path) -> None:
    """Held-out views without distortion must not inherit the video's (top-level) distortion on reading."""
    scene = load_scene(scene_copy)
    distorted = dataclasses.replace(scene.frames[0].intrinsics, k1=0.05, p2=0.001)
    for frame in scene.frames:
        frame.intrinsics = distorted
    save_scene(scene)
    again = load_scene(scene_copy)
    assert all(f.intrinsics == distorted for f in again.frames)
    assert all(not f.intrinsics.has_distortion for f in again.eval_frames)


def test_3x4_matrices_and_frame_intrinsics_are_accepted(scene_copy: Path) -> None:
    def change(meta: dict[str, Any]) -> None:
        meta["frames"][2]["transform_matrix"] = meta["frames"][2]["transform_matrix"][:3]
        meta["frames"][2]["fl_x"] = 30.0  # overrides one shared value, inherits the others

    edit_meta(scene_copy, change)
    scene = load_scene(scene_copy)
    assert scene.frames[2].camera_to_world.shape == (4, 4)
    np.testing.assert_array_equal(scene.frames[2].camera_to_world[3], [0, 0, 0, 1])
    assert scene.frames[2].intrinsics.fl_x == 30.0 and scene.frames[2].intrinsics.cx == 16.0
    assert scene.frames[1].intrinsics.fl_x != 30.0


def test_label_and_flow_files_round_trip(tmp_path: Path) -> None:
    for top in (5, 300):  # 8-bit and 16-bit PNGs
        ids = np.arange(H * W).reshape(H, W) % (top + 1)
        write_label_image(tmp_path / f"ids{top}.png", ids)
        np.testing.assert_array_equal(read_label_image(tmp_path / f"ids{top}.png"), ids)
    flow = np.random.default_rng(0).normal(size=(H, W, 2)).astype(np.float32) * 4
    mask = flow[..., 0] > 0
    write_flow(tmp_path / "f.npz", flow, mask)
    read, read_mask = read_flow(tmp_path / "f.npz")
    assert read.dtype == np.float32 and read.shape == (H, W, 2)
    np.testing.assert_allclose(read, flow, atol=1e-2)
    np.testing.assert_array_equal(read_mask, mask)


def test_unlabelled_pixels_round_trip_as_minus_one(tmp_path: Path, scene_copy: Path) -> None:
    ids = np.arange(H * W).reshape(H, W) % 3
    ids[0, :4] = -1
    write_label_image(tmp_path / "ids.png", ids)
    with Image.open(tmp_path / "ids.png") as image:
        assert image.mode.startswith("I") and np.asarray(image)[0, 0] == UNLABELLED_ID
    np.testing.assert_array_equal(read_label_image(tmp_path / "ids.png"), ids)
    with pytest.raises(ValueError, match="no label"):
        write_label_image(tmp_path / "bad.png", ids - 1)
    path = scene_copy / "semantics/00003.png"
    labels = read_label_image(path)
    labels[:2] = -1
    write_label_image(path, labels)  # unlabelled pixels pass the id-range check
    np.testing.assert_array_equal(read_label_image(load_scene(scene_copy).frames[3].semantics), labels)


# ----------------------------------------------------------------------------------------------
# Bad inputs: each names transforms.json (or the offending file) and the field


def test_missing_transforms_json(scene_copy: Path) -> None:
    (scene_copy / SCENE_FILE).unlink()
    with pytest.raises(SceneFormatError, match=re.escape(str(scene_copy / SCENE_FILE)) + ": not found"):
        load_scene(scene_copy)


def test_malformed_json_reports_the_line(scene_copy: Path) -> None:
    lines = (scene_copy / SCENE_FILE).read_text().splitlines()
    lines[6] = lines[6] + " oops"
    (scene_copy / SCENE_FILE).write_text("\n".join(lines))
    expect_error(scene_copy, "invalid JSON at line 7,")


@pytest.mark.parametrize("frames", [None, [], {"0": {}}], ids=["missing", "empty", "not-a-list"])
def test_missing_frames(scene_copy: Path, frames: Any) -> None:
    def change(meta: dict[str, Any]) -> None:
        if frames is None:
            del meta["frames"]
        else:
            meta["frames"] = frames

    edit_meta(scene_copy, change)
    expect_error(scene_copy, "frames: expected a non-empty list")


@pytest.mark.parametrize(
    ("relative", "field"),
    [
        ("images/00003.png", r"frames\[3\]\.file_path"),
        ("semantics/00003.png", r"frames\[3\]\.semantics_path"),
        ("instances/00003.png", r"frames\[3\]\.instance_path"),
        ("flow/00003_fwd.npz", r"frames\[3\]\.flow_fwd_path"),
        ("flow/00003_bwd.npz", r"frames\[3\]\.flow_bwd_path"),
        ("eval/semantics/t00006_v0.png", r"eval_frames\[2\]\.semantics_path"),
        ("eval/depth/t00002_v0.npy", r"eval_frames\[0\]\.depth_path"),
    ],
    ids=["image", "semantics", "instances", "flow-fwd", "flow-bwd", "eval-semantics", "eval-depth"],
)
def test_missing_per_frame_file(scene_copy: Path, relative: str, field: str) -> None:
    (scene_copy / relative).unlink()
    err = expect_error(scene_copy, field, scene_copy / relative)
    assert "does not exist" in str(err.value)


def test_missing_path_field_for_the_image(scene_copy: Path) -> None:
    edit_meta(scene_copy, lambda meta: meta["frames"][3].pop("file_path"))
    expect_error(scene_copy, r"frames\[3\]: missing required field 'file_path'")


def test_image_of_the_wrong_size(scene_copy: Path) -> None:
    path = scene_copy / "images/00003.png"
    Image.new("RGB", (W - 2, H)).save(path)
    expect_error(scene_copy, r"frames\[3\]\.file_path", path)


@pytest.mark.parametrize(
    ("relative", "field"),
    [
        ("semantics/00003.png", r"frames\[3\]\.semantics_path"),
        ("instances/00005.png", r"frames\[5\]\.instance_path"),
        ("eval/semantics/t00002_v1.png", r"eval_frames\[1\]\.semantics_path"),
    ],
)
def test_label_of_the_wrong_size(scene_copy: Path, relative: str, field: str) -> None:
    write_label_image(scene_copy / relative, np.zeros((H, W + 1), dtype=np.int64))
    expect_error(scene_copy, field, scene_copy / relative)


@pytest.mark.parametrize(
    ("relative", "field"),
    [("flow/00003_fwd.npz", r"frames\[3\]\.flow_fwd_path"), ("flow/00004_bwd.npz", r"frames\[4\]\.flow_bwd_path")],
)
def test_flow_of_the_wrong_size(scene_copy: Path, relative: str, field: str) -> None:
    write_flow(scene_copy / relative, np.zeros((H // 2, W, 2), np.float32), np.ones((H // 2, W), bool))
    expect_error(scene_copy, field, scene_copy / relative)


def test_flow_without_a_flow_array_names_the_file(scene_copy: Path) -> None:
    path = scene_copy / "flow/00003_fwd.npz"
    np.savez(path, mask=np.ones((H, W), np.uint8))
    with pytest.raises(SceneFormatError, match=re.escape(str(path)) + ".*'flow'"):
        load_scene(scene_copy)


def test_label_id_outside_the_class_list(scene_copy: Path) -> None:
    path = scene_copy / "semantics/00003.png"
    ids = read_label_image(path)
    ids[0, 0] = len(read_meta(scene_copy)["classes"])
    write_label_image(path, ids)
    err = expect_error(scene_copy, r"frames\[3\]\.semantics_path", path)
    assert "contains id 6" in str(err.value)


def test_instance_id_outside_the_instance_list(scene_copy: Path) -> None:
    path = scene_copy / "instances/00002.png"
    ids = read_label_image(path)
    ids[1, 1] = 7
    write_label_image(path, ids)
    expect_error(scene_copy, r"frames\[2\]\.instance_path", path)


def test_colour_label_image_is_refused(scene_copy: Path) -> None:
    path = scene_copy / "semantics/00001.png"
    Image.new("RGB", (W, H)).save(path)
    with pytest.raises(SceneFormatError, match=re.escape(str(path)) + ".*single-channel"):
        load_scene(scene_copy)


@pytest.mark.parametrize("time", [1.5, -0.1, "0.5", None, True])
def test_time_outside_the_unit_interval_or_not_a_number(scene_copy: Path, time: Any) -> None:
    def change(meta: dict[str, Any]) -> None:
        if time is None:
            del meta["frames"][3]["time"]
        else:
            meta["frames"][3]["time"] = time

    edit_meta(scene_copy, change)
    field = r"frames\[3\]: missing required field 'time'" if time is None else r"frames\[3\]\.time"
    expect_error(scene_copy, field)


@pytest.mark.parametrize("change", ["equal", "swapped"])
def test_times_must_increase_with_frame_order(scene_copy: Path, change: str) -> None:
    def edit(meta: dict[str, Any]) -> None:
        frames = meta["frames"]
        if change == "equal":
            frames[4]["time"] = frames[3]["time"]
        else:
            frames[3]["time"], frames[4]["time"] = frames[4]["time"], frames[3]["time"]

    edit_meta(scene_copy, edit)
    expect_error(scene_copy, r"frames\[4\]\.time: .* is not greater than frames\[3\]\.time")


@pytest.mark.parametrize(
    "matrix",
    [
        np.eye(3).tolist(),
        np.eye(4)[:2].tolist(),
        [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, float("nan")], [0, 0, 0, 1]],
        [[1, 0, 0, float("inf")], [0, 1, 0, 0], [0, 0, 1, 0]],
        "identity",
        [[1, 0], [0, 1, 0]],
    ],
    ids=["3x3", "2x4", "nan", "inf", "string", "ragged"],
)
def test_bad_transform_matrix(scene_copy: Path, matrix: Any) -> None:
    edit_meta(scene_copy, lambda meta: meta["frames"][5].update(transform_matrix=matrix))
    expect_error(scene_copy, r"frames\[5\]\.transform_matrix")


def test_missing_transform_matrix(scene_copy: Path) -> None:
    edit_meta(scene_copy, lambda meta: meta["eval_frames"][1].pop("transform_matrix"))
    expect_error(scene_copy, r"eval_frames\[1\]: missing required field 'transform_matrix'")


@pytest.mark.parametrize("color", [[255, 0], [256, 0, 0], [-1, 0, 0], [0.5, 0.5, 0.5], "red", None])
def test_bad_class_colour(scene_copy: Path, color: Any) -> None:
    def change(meta: dict[str, Any]) -> None:
        if color is None:
            del meta["classes"][2]["color"]
        else:
            meta["classes"][2]["color"] = color

    edit_meta(scene_copy, change)
    expect_error(scene_copy, r"classes\[2\]\.color")


def test_bad_class_entries(scene_copy: Path) -> None:
    meta = read_meta(scene_copy)
    for classes, field in (
        ([], "classes: expected a non-empty list"),
        (None, "classes: expected a non-empty list"),
        ([*meta["classes"][:1], {"color": [1, 2, 3]}], r"classes\[1\]: expected an object with a non-empty 'name'"),
        ([{**meta["classes"][0], "dynamic": "yes"}], r"classes\[0\]\.dynamic"),
    ):
        write_meta(scene_copy, {**meta, "classes": classes})
        expect_error(scene_copy, field)


def test_duplicate_class_names(scene_copy: Path) -> None:
    edit_meta(scene_copy, lambda meta: meta["classes"][3].update(name=meta["classes"][1]["name"]))
    err = expect_error(scene_copy, "classes: duplicate class names")
    assert "'wall'" in str(err.value)


def test_instance_of_an_unknown_class(scene_copy: Path) -> None:
    edit_meta(scene_copy, lambda meta: meta["instances"][4].update({"class": "dragon"}))
    err = expect_error(scene_copy, r"instances\[4\]\.class")
    assert "'dragon'" in str(err.value)


@pytest.mark.parametrize(
    ("instances", "field"),
    [
        ([{"id": 0, "class": "ball"}], r"instances\[0\]\.id"),
        ([{"id": 1, "class": "ball"}, {"id": 1, "class": "cube"}], "instances: instance ids must be unique"),
        ({"1": "ball"}, "instances: expected a list"),
    ],
    ids=["id-zero", "duplicate-ids", "not-a-list"],
)
def test_bad_instance_list(scene_copy: Path, instances: Any, field: str) -> None:
    edit_meta(scene_copy, lambda meta: meta.update(instances=instances))
    expect_error(scene_copy, field)


@pytest.mark.parametrize(
    "box",
    [
        [[0, 0, 0]],
        [[0, 0, 0], [1, 1]],
        [[0, 0, 0], [1, 1, 0]],
        [[1, 1, 1], [0, 0, 0]],
        [[0, 0, 0], [1, float("nan"), 1]],
        "big",
    ],
    ids=["one-corner", "ragged", "flat", "min-above-max", "nan", "string"],
)
def test_bad_scene_box(scene_copy: Path, box: Any) -> None:
    edit_meta(scene_copy, lambda meta: meta.update(scene_box=box))
    expect_error(scene_copy, "scene_box")


def test_far_not_beyond_near(scene_copy: Path) -> None:
    edit_meta(scene_copy, lambda meta: meta.update(near=2.0, far=1.0))
    expect_error(scene_copy, "far: far")


def test_bad_intrinsics(scene_copy: Path) -> None:
    edit_meta(scene_copy, lambda meta: meta.update(fl_x=-3.0))
    expect_error(scene_copy, r"top level\.fl_x: must be positive")
    edit_meta(scene_copy, lambda meta: meta.update(fl_x=25.0, h="24"))
    expect_error(scene_copy, r"top level\.h: expected a finite number")


def test_file_checks_can_be_skipped(scene_copy: Path) -> None:
    Image.new("RGB", (W - 2, H)).save(scene_copy / "images/00003.png")
    assert len(load_scene(scene_copy, check_files=False).frames) == 8
    (scene_copy / "images/00003.png").unlink()
    with pytest.raises(SceneFormatError, match="does not exist"):  # existence is always checked
        load_scene(scene_copy, check_files=False)


def test_unbounded_and_label_motion_flags_round_trip(scene_copy: Path) -> None:
    scene = load_scene(scene_copy)
    assert not scene.unbounded and not scene.motion_masks_from_labels  # default: false when absent
    save_scene(dataclasses.replace(scene, unbounded=True, motion_masks_from_labels=True))
    meta = read_meta(scene_copy)
    assert meta["unbounded"] is True and meta["motion_masks_from_labels"] is True
    again = load_scene(scene_copy)
    assert again.unbounded and again.motion_masks_from_labels and "unbounded" not in again.extra


@pytest.mark.parametrize("key", ["unbounded", "motion_masks_from_labels"])
def test_flags_must_be_booleans(scene_copy: Path, key: str) -> None:
    edit_meta(scene_copy, lambda meta: meta.update({key: "yes"}))
    expect_error(scene_copy, f"{key}: expected true or false, got 'yes'")


def test_view_set_names_survive_a_round_trip_and_must_be_strings(scene_copy: Path) -> None:
    scene = load_scene(scene_copy)
    assert [f.view_set for f in scene.eval_frames] == ["nearby"] * 4 + ["novel"] * 4
    assert all(f.view_set == "" for f in scene.frames)
    frames = [dataclasses.replace(f, view_set="mine") for f in scene.eval_frames]
    save_scene(dataclasses.replace(scene, eval_frames=frames))
    assert {f["view_set"] for f in read_meta(scene_copy)["eval_frames"]} == {"mine"}
    assert "view_set" not in read_meta(scene_copy)["frames"][0]
    edit_meta(scene_copy, lambda meta: meta["eval_frames"][1].update({"view_set": 3}))
    expect_error(scene_copy, r"eval_frames\[1\]\.view_set: expected a name \(string\), got 3")
