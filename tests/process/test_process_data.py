"""``semflow-process-data`` on inputs rendered from the demo scene, with supplied poses (no SfM: fast)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig
from semflow_ns.data.format import MOTION_UNKNOWN, load_scene, read_label_image


def relative_rotations_match(scene, source) -> None:
    new = np.stack([f.camera_to_world for f in scene.frames])
    old = np.stack([f.camera_to_world for f in source.frames])
    for i, j in ((0, 2), (1, 5)):
        np.testing.assert_allclose(new[i, :3, :3].T @ new[j, :3, :3], old[i, :3, :3].T @ old[j, :3, :3], atol=1e-6)


def test_frames_masks_and_transforms_json(demo_inputs, cli, snapshot, tmp_path: Path) -> None:
    before = snapshot(demo_inputs.root)
    out = tmp_path / "scene"
    code, text = cli("--images", str(demo_inputs.frames), "--labels", str(demo_inputs.masks),
                     "--poses", str(demo_inputs.root / "transforms.json"), "--bounds", "0.4", "9", "--output", str(out))  # fmt: skip
    assert code == 0, text
    assert snapshot(demo_inputs.root) == before and not list(tmp_path.glob(".*"))
    assert "frames written" in text and "flow forward-backward consistent" in text
    scene = load_scene(out)
    assert scene.unbounded and not scene.motion_masks_from_labels and len(scene.frames) == 6
    assert [(c.name, c.dynamic) for c in scene.classes] == [("background", False), ("object", True)]
    assert [f.time for f in scene.frames] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert [f.image.name for f in scene.frames] == [f"frame_{i:03d}.png" for i in range(6)]
    relative_rotations_match(scene, demo_inputs.scene)
    ids = read_label_image(scene.frames[3].semantics)
    expected = np.isin(read_label_image(demo_inputs.scene.frames[3].semantics), demo_inputs.scene.dynamic_class_ids)
    np.testing.assert_array_equal(ids, expected)
    assert all(f.motion_mask is not None for f in scene.frames)  # estimated from the flow, not the labels
    for frame in scene.frames:
        with Image.open(frame.motion_mask) as image:
            assert set(np.unique(np.asarray(image)).tolist()) <= {0, MOTION_UNKNOWN, 255}
    assert scene.frames[0].flow_bwd is None and all(f.flow_fwd is not None for f in scene.frames[:-1])
    report = scene.extra["processing"]
    assert report["frames"] == 6 and 0 < report["flow_consistent_fraction"] <= 1 and report["registered"] is None
    assert report["motion_masks"] == "flow" and 0 <= report["moving_fraction"] < 1
    box = scene.scene_box
    centres = np.stack([f.camera_to_world[:3, 3] for f in scene.frames])
    assert box is not None and np.all(box[0] < centres.min(0)) and np.all(box[1] > centres.max(0))
    assert scene.near is not None and scene.far is not None and 0 < scene.near < scene.far
    outputs = SemanticFlowDataParserConfig(data=out).setup().get_dataparser_outputs("train")
    assert outputs.metadata["semflow_scene"].unbounded


def test_motion_masks_from_labels_or_none(demo_inputs, cli, tmp_path: Path) -> None:
    common = ("--images", str(demo_inputs.frames), "--labels", str(demo_inputs.masks),
              "--poses", str(demo_inputs.root / "transforms.json"), "--bounds", "0.4", "9")  # fmt: skip
    code, text = cli(*common, "--motion-masks", "labels", "--output", str(tmp_path / "labels"))
    assert code == 0, text
    scene = load_scene(tmp_path / "labels")
    assert scene.motion_masks_from_labels and scene.extra["processing"]["motion_masks"] == "labels"
    frame = scene.frames[3]
    assert frame.motion_mask is not None and frame.semantics is not None
    with Image.open(frame.motion_mask) as image:
        np.testing.assert_array_equal(np.asarray(image) > 127, read_label_image(frame.semantics) == 1)
    code, text = cli(*common, "--motion-masks", "none", "--output", str(tmp_path / "none"))
    assert code == 0, text
    scene = load_scene(tmp_path / "none")
    assert all(f.motion_mask is None for f in scene.frames) and not scene.motion_masks_from_labels
    assert scene.extra["processing"]["motion_masks"] == "none" and not (tmp_path / "none" / "motion_masks").exists()


def test_id_labels_with_class_names_and_llff_poses(demo_inputs, cli, tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("background\ncrate\ncrate\npillar\nball\nball\ncube\n")
    code, text = cli("--images", str(demo_inputs.frames), "--labels", str(demo_inputs.ids), "--class-names", str(names),
                     "--dynamic-classes", "ball,cube", "--poses", str(demo_inputs.root / "poses_bounds.npy"),
                     "--output", str(tmp_path / "scene"))  # fmt: skip
    assert code == 0, text
    scene = load_scene(tmp_path / "scene")
    assert [(c.name, c.dynamic) for c in scene.classes] == [
        ("background", False), ("crate", False), ("pillar", False), ("ball", True), ("cube", True),
    ]  # fmt: skip
    assert [(i.id, i.class_name) for i in scene.instances] == [(4, "ball"), (5, "ball"), (6, "cube")]
    source = read_label_image(demo_inputs.scene.frames[2].instances)
    np.testing.assert_array_equal(read_label_image(scene.frames[2].instances), np.where(source >= 4, source, 0))
    np.testing.assert_array_equal(read_label_image(scene.frames[2].semantics), np.array([0, 1, 1, 2, 3, 3, 4])[source])
    relative_rotations_match(scene, demo_inputs.scene)


def test_id_labels_default_to_one_moving_class_per_id(demo_inputs, cli, tmp_path: Path) -> None:
    code, text = cli("--images", str(demo_inputs.frames), "--labels", str(demo_inputs.ids),
                     "--poses", str(demo_inputs.root / "poses_bounds.npy"), "--output", str(tmp_path / "s"))  # fmt: skip
    assert code == 0, text
    scene = load_scene(tmp_path / "s")
    assert [c.name for c in scene.classes] == ["background"] + [f"object_{i}" for i in range(1, 7)]
    assert scene.dynamic_class_ids == list(range(1, 7)) and [i.id for i in scene.instances] == list(range(1, 7))


def test_colour_labels_and_frame_selection(demo_inputs, cli, tmp_path: Path) -> None:
    code, text = cli("--images", str(demo_inputs.frames), "--labels", str(demo_inputs.colour),
                     "--labelmap", str(demo_inputs.root / "labelmap.txt"), "--dynamic-classes", "ball,cube",
                     "--poses", str(demo_inputs.root / "transforms.json"), "--frame-step", "2", "--max-size", "32",
                     "--output", str(tmp_path / "s"))  # fmt: skip
    assert code == 0, text
    scene = load_scene(tmp_path / "s")
    assert [f.image.stem for f in scene.frames] == ["frame_000", "frame_002", "frame_004"]
    assert [f.time for f in scene.frames] == pytest.approx([0, 0.5, 1])
    assert (scene.frames[0].intrinsics.w, scene.frames[0].intrinsics.h) == (32, 24)
    assert scene.frames[0].intrinsics.fl_x == pytest.approx(demo_inputs.scene.frames[0].intrinsics.fl_x / 2)
    assert [c.name for c in scene.classes] == [c.name for c in demo_inputs.scene.classes]
    assert scene.dynamic_class_ids == demo_inputs.scene.dynamic_class_ids


def test_video_input_with_labels_paired_by_frame_number(demo_inputs, cli, tmp_path: Path) -> None:
    code, text = cli("--video", str(demo_inputs.root / "clip.mp4"), "--labels", str(demo_inputs.masks),
                     "--poses", str(demo_inputs.root / "transforms.json"), "--frame-step", "1", "--max-frames", "4",
                     "--output", str(tmp_path / "s"))  # fmt: skip
    assert code == 0, text
    scene = load_scene(tmp_path / "s")
    assert [f.image.name for f in scene.frames] == ["00000.png", "00001.png", "00002.png", "00003.png"]
    assert scene.extra["processing"]["input_frames"] == 6
    assert "Warning: kept the first 4 of the 6 frames that --frame-step 1 selects" in " ".join(text.split())
    new, old = scene.frames, demo_inputs.scene.frames
    np.testing.assert_allclose(
        new[0].camera_to_world[:3, :3].T @ new[3].camera_to_world[:3, :3],
        old[0].camera_to_world[:3, :3].T @ old[3].camera_to_world[:3, :3],
        atol=1e-6,
    )
    assert all(f.semantics is not None for f in scene.frames)


def test_overwrite_replaces_an_existing_scene(demo_inputs, cli, tmp_path: Path) -> None:
    args = ["--images", str(demo_inputs.frames), "--poses", str(demo_inputs.root / "transforms.json")]
    assert cli(*args, "--output", str(tmp_path / "s"))[0] == 0
    (tmp_path / "s" / "notes.txt").write_text("old")
    code, text = cli(*args, "--output", str(tmp_path / "s"))
    assert code == 1 and "exists and is not empty; pass --overwrite" in text
    assert cli(*args, "--output", str(tmp_path / "s"), "--overwrite")[0] == 0
    assert not (tmp_path / "s" / "notes.txt").exists() and len(load_scene(tmp_path / "s").frames) == 6
    assert [p.name for p in tmp_path.iterdir()] == ["s"]
