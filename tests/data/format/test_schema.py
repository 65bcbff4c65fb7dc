"""The schema table drives the reader, the writer and the known-key check of transforms.json."""

import dataclasses
import json
from pathlib import Path

import pytest

from semflow_ns.data.format import SCENE_FILE, FrameRecord, SceneDescription, SceneFormatError, load_scene, save_scene
from semflow_ns.data.format.schema import FRAME_KEYS, SCENE_KEYS, Kind, known_keys


def test_every_record_field_has_a_row() -> None:
    assert {f.name for f in dataclasses.fields(FrameRecord)} == {key.attr for key in FRAME_KEYS}
    scene_attrs = {key.attr for key in SCENE_KEYS if key.attr}
    assert {f.name for f in dataclasses.fields(SceneDescription)} - {"root"} == scene_attrs


def test_rows_name_distinct_keys() -> None:
    for keys in (FRAME_KEYS, SCENE_KEYS):
        named = [key.json for key in keys if key.json]
        assert len(named) == len(set(named))
        assert all(key.json or key.kind in (Kind.INTRINSICS, Kind.EXTRA) for key in keys)


def test_written_keys_are_known_and_unknown_keys_round_trip_as_extra(scene_copy: Path) -> None:
    scene = load_scene(scene_copy)
    scene.unbounded = scene.motion_masks_from_labels = scene.approximate_poses = True
    scene.extra = {"my_tool": {"version": 3}}
    save_scene(scene)
    meta = json.loads((scene_copy / SCENE_FILE).read_text())
    assert set(meta) - known_keys() == {"my_tool"}
    again = load_scene(scene_copy)
    assert again.extra == {"my_tool": {"version": 3}}
    assert again.unbounded and again.motion_masks_from_labels and again.approximate_poses


def test_keys_are_written_in_table_order(scene_copy: Path) -> None:
    save_scene(load_scene(scene_copy))
    meta = json.loads((scene_copy / SCENE_FILE).read_text())
    order = [key.json for key in SCENE_KEYS if key.json in meta]
    assert [k for k in meta if k in order] == order
    frame_order = [key.json for key in FRAME_KEYS if key.json in meta["frames"][0]]
    assert [k for k in meta["frames"][0] if k in frame_order] == frame_order


def test_with_several_errors_the_first_checked_key_is_reported(scene_copy: Path) -> None:
    file = scene_copy / SCENE_FILE
    meta = json.loads(file.read_text())
    meta["frames"][1]["time"] = 2.0
    del meta["frames"][1]["file_path"]
    meta["near"] = "close"
    file.write_text(json.dumps(meta))
    with pytest.raises(SceneFormatError, match=r"frames\[1\]\.time"):
        load_scene(scene_copy)
    meta["classes"] = []
    file.write_text(json.dumps(meta))
    with pytest.raises(SceneFormatError, match="classes: expected a non-empty list"):
        load_scene(scene_copy)
