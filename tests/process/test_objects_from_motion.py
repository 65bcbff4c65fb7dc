"""``semflow-process-data`` without labels: moving objects found in the motion masks become labels (supplied
poses, so no SfM: fast). The clips are a demo frame with a patch moving over it, and the same frame still."""

from pathlib import Path

import numpy as np
from PIL import Image

from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig
from semflow_ns.data.datasets.semflow_dataset import SemanticFlowDataset
from semflow_ns.data.format import MOTION_UNKNOWN, UNLABELLED_ID, load_scene, read_label_image

STEP = 4
"""Pixels the patch moves per frame (about 5 % of the 64 x 48 image's diagonal)."""


def patch_box(index: int) -> tuple[slice, slice]:
    return slice(18, 32), slice(6 + STEP * index, 20 + STEP * index)


def clip(demo_inputs, folder: Path, moving: bool) -> Path:
    """Six frames named like the demo's (so its transforms.json pairs with them): its first frame as a still
    background, with a checkered patch moving right across it when ``moving``."""
    background = np.asarray(Image.open(demo_inputs.frames / "frame_000.png").convert("RGB"))
    yy, xx = np.mgrid[0:14, 0:14]
    patch = np.where(((yy // 3 + xx // 3) % 2 == 0)[..., None], [250, 30, 200], [20, 230, 60]).astype(np.uint8)
    folder.mkdir(parents=True)
    for index in range(6):
        frame = background.copy()
        if moving:
            frame[patch_box(index)] = patch
        Image.fromarray(frame).save(folder / f"frame_{index:03d}.png")
    return folder


def run(cli, demo_inputs, frames: Path, output: Path, *extra: str) -> str:
    code, text = cli("--images", str(frames), "--poses", str(demo_inputs.root / "transforms.json"),
                     "--bounds", "0.4", "9", "--output", str(output), *extra)  # fmt: skip
    assert code == 0, text
    return text


def test_a_video_without_labels_gets_moving_instances(demo_inputs, cli, tmp_path: Path) -> None:
    text = run(cli, demo_inputs, clip(demo_inputs, tmp_path / "frames", True), tmp_path / "scene")
    assert "objects from motion" in text and "1 found" in text
    scene = load_scene(tmp_path / "scene")
    assert [(c.name, c.dynamic) for c in scene.classes] == [("background", False), ("moving", True)]
    assert [(i.id, i.class_name, i.name) for i in scene.instances] == [(1, "moving", "moving 1")]
    assert scene.extra["processing"]["moving_objects"] == 1 and not scene.motion_masks_from_labels
    for index, frame in enumerate(scene.frames):
        assert frame.semantics is not None and frame.instances is not None and frame.motion_mask is not None
        semantics, instances = read_label_image(frame.semantics), read_label_image(frame.instances)
        with Image.open(frame.motion_mask) as image:
            levels = np.asarray(image)
        found, truth = instances == 1, np.zeros(semantics.shape, bool)
        truth[patch_box(index)] = True
        assert (found & truth).sum() / (found | truth).sum() > 0.7, index
        np.testing.assert_array_equal(semantics == 1, found)
        np.testing.assert_array_equal(semantics == 0, levels == 0)  # background only where the motion is static
        assert ((semantics == -1) == ((levels != 0) & ~found)).all()  # the rest has no label
        with Image.open(frame.semantics) as image:
            assert (np.asarray(image) == UNLABELLED_ID).any()
    outputs = SemanticFlowDataParserConfig(data=tmp_path / "scene").setup().get_dataparser_outputs("train")
    item = SemanticFlowDataset(outputs)[2]
    with Image.open(scene.frames[2].motion_mask) as image:
        levels = np.asarray(image)
    motion, semantics = item["motion"][..., 0].numpy(), item["semantics"][..., 0].numpy()
    assert (motion[levels == MOTION_UNKNOWN] == -1).all()  # unknown motion does not become static
    assert (motion[semantics == 1] == 1).all() and (motion[levels == 0] == 0).all()


def test_labels_win_and_the_option_turns_it_off(demo_inputs, cli, tmp_path: Path) -> None:
    frames = clip(demo_inputs, tmp_path / "frames", True)
    run(cli, demo_inputs, frames, tmp_path / "off", "--no-objects-from-motion")
    scene = load_scene(tmp_path / "off")
    assert [c.name for c in scene.classes] == ["background"] and not scene.instances
    assert all(f.semantics is None and f.motion_mask is not None for f in scene.frames)
    assert scene.extra["processing"]["moving_objects"] is None
    run(cli, demo_inputs, frames, tmp_path / "labelled", "--labels", str(demo_inputs.masks))
    scene = load_scene(tmp_path / "labelled")
    assert [c.name for c in scene.classes] == ["background", "object"] and not scene.instances
    assert scene.extra["processing"]["moving_objects"] is None


def test_a_still_video_gets_a_message_and_a_background_only_scene(demo_inputs, cli, tmp_path: Path) -> None:
    frames = clip(demo_inputs, tmp_path / "frames", False)
    text = run(cli, demo_inputs, frames, tmp_path / "scene")
    assert "nothing in this video moves" in " ".join(text.split())
    scene = load_scene(tmp_path / "scene")
    assert [c.name for c in scene.classes] == ["background"] and not scene.instances
    assert all(f.semantics is None for f in scene.frames) and scene.extra["processing"]["moving_objects"] == 0
    assert not (tmp_path / "scene" / "semantics").exists()
