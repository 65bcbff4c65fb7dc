"""Tests of the ``semflow-data`` DataParser on the tiny demo scene."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs, Semantics

from semflow_ns.data.dataparsers.metadata import SceneInfo, VideoFrames
from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParser, SemanticFlowDataParserConfig
from semflow_ns.data.demo import DemoSceneConfig, default_demo_dir
from semflow_ns.data.demo import cache as demo_cache
from semflow_ns.data.format import SCENE_FILE, SceneFormatError, load_scene


def outputs(data: Path, split: str = "train", **config: Any) -> DataparserOutputs:
    return SemanticFlowDataParserConfig(data=data, **config).setup().get_dataparser_outputs(split)


def edit_meta(root: Path, **changes: Any) -> None:
    meta = json.loads((root / SCENE_FILE).read_text())
    meta.update(changes)
    (root / SCENE_FILE).write_text(json.dumps(meta))


def test_train_split_has_timed_cameras_and_semantics(tiny_scene: Path) -> None:
    parser = SemanticFlowDataParserConfig(data=tiny_scene).setup()
    assert isinstance(parser, SemanticFlowDataParser) and parser.includes_time
    out = parser.get_dataparser_outputs("train")
    scene = load_scene(tiny_scene)
    assert out.image_filenames == [f.image for f in scene.frames]
    cameras = out.cameras
    assert cameras.shape == (8,) and cameras.times is not None
    times = cameras.times
    assert times.shape == (8, 1) and times.dtype == torch.float32
    assert times.min() >= 0 and times.max() <= 1 and bool(torch.all(times[1:] > times[:-1]))
    np.testing.assert_allclose(times[:, 0].numpy(), [f.time for f in scene.frames], atol=1e-7)
    assert int(cameras.width[0]) == 32 and int(cameras.height[0]) == 24
    np.testing.assert_allclose(cameras.camera_to_worlds[3].numpy(), scene.frames[3].camera_to_world[:3], atol=1e-6)

    assert {"semantics", "semflow_frames", "semflow_video", "semflow_scene"} <= set(out.metadata)
    semantics = out.metadata["semantics"]
    assert isinstance(semantics, Semantics)
    assert semantics.classes == [c.name for c in scene.classes]
    assert semantics.colors.shape == (len(scene.classes), 3)
    assert semantics.colors.min() >= 0 and semantics.colors.max() <= 1
    np.testing.assert_allclose(semantics.colors[4].numpy() * 255, scene.classes[4].color, atol=1e-4)
    assert semantics.filenames == [f.semantics for f in scene.frames]

    assert [f.image for f in out.metadata["semflow_frames"]] == out.image_filenames
    video = out.metadata["semflow_video"]
    assert isinstance(video, VideoFrames) and len(video) == 8
    assert torch.equal(video.times, times[:, 0])
    info = out.metadata["semflow_scene"]
    assert isinstance(info, SceneInfo) and info.has_labels
    assert info.dynamic_class_ids == scene.dynamic_class_ids and info.instances == scene.instances
    assert info.near == scene.near and info.far == scene.far


def test_scene_box_comes_from_transforms_json(tiny_scene: Path, scene_copy: Path) -> None:
    box = outputs(tiny_scene).scene_box.aabb
    np.testing.assert_allclose(box.numpy(), load_scene(tiny_scene).scene_box)
    edit_meta(scene_copy, scene_box=[[-1.0, -2.0, -3.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(outputs(scene_copy).scene_box.aabb.numpy(), [[-1, -2, -3], [1, 2, 3]])


def test_scene_box_without_one_encloses_the_cameras(scene_copy: Path) -> None:
    edit_meta(scene_copy, scene_box=None)
    box = outputs(scene_copy, box_margin=0.5).scene_box.aabb
    centres = outputs(scene_copy).cameras.camera_to_worlds[:, :, 3]
    assert bool(torch.all(box[0] < centres.min(0).values)) and bool(torch.all(box[1] > centres.max(0).values))


@pytest.mark.parametrize("split", ["val", "test"])
@pytest.mark.parametrize("source", ["auto", "held-out"])
def test_eval_split_holds_the_held_out_views(tiny_scene: Path, split: str, source: str) -> None:
    out = outputs(tiny_scene, split, eval_source=source)
    scene = load_scene(tiny_scene)
    assert out.image_filenames == [f.image for f in scene.eval_frames]
    assert out.cameras.shape == (8,) and out.cameras.times is not None
    np.testing.assert_allclose(out.cameras.times[:, 0].numpy(), [f.time for f in scene.eval_frames], atol=1e-7)
    assert out.metadata["semantics"].filenames == [f.semantics for f in scene.eval_frames]
    assert len(out.metadata["semflow_video"]) == 8  # the video is attached to every split


@pytest.mark.parametrize("interval", [1, 3, 8])
def test_eval_split_from_the_video(tiny_scene: Path, interval: int) -> None:
    out = outputs(tiny_scene, "val", eval_source="video", eval_interval=interval)
    frames = load_scene(tiny_scene).frames
    assert out.image_filenames == [f.image for f in frames[::interval]]
    assert out.cameras.times is not None
    np.testing.assert_allclose(out.cameras.times[:, 0].numpy(), [f.time for f in frames[::interval]], atol=1e-7)


def test_auto_falls_back_to_the_video_without_held_out_views(scene_copy: Path) -> None:
    edit_meta(scene_copy, eval_frames=[])
    out = outputs(scene_copy, "test", eval_interval=4)
    assert [p.name for p in out.image_filenames] == ["00000.png", "00004.png"]
    with pytest.raises(SceneFormatError, match=r"transforms\.json: eval_frames: .*held-out"):
        outputs(scene_copy, "test", eval_source="held-out")
    assert len(outputs(scene_copy, "train", eval_source="held-out").image_filenames) == 8


def test_a_malformed_scene_fails_when_outputs_are_requested(scene_copy: Path) -> None:
    edit_meta(scene_copy, classes=[{"name": "thing", "color": [300, 0, 0]}])
    parser = SemanticFlowDataParserConfig(data=scene_copy).setup()  # nothing is read yet
    with pytest.raises(SceneFormatError, match=r"transforms\.json: classes\[0\]\.color"):
        parser.get_dataparser_outputs("train")


def test_a_missing_folder_fails_with_the_file_name(tmp_path: Path) -> None:
    with pytest.raises(SceneFormatError, match=r"nowhere/transforms\.json: not found"):
        outputs(tmp_path / "nowhere")


def test_default_data_is_read_from_the_environment_when_the_config_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMFLOW_DEMO_DIR", str(tmp_path / "demo"))
    assert default_demo_dir() == tmp_path / "demo"
    assert SemanticFlowDataParserConfig().data == tmp_path / "demo"


def test_generates_the_demo_scene_when_data_is_the_demo_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The default demo takes seconds to render: make the default configuration tiny for this test.
    tiny = DemoSceneConfig(num_frames=6, width=32, height=24, num_eval_times=1)
    monkeypatch.setattr(demo_cache, "DemoSceneConfig", lambda: tiny)
    monkeypatch.setenv("SEMFLOW_DEMO_DIR", str(tmp_path / "demo"))
    out = outputs(default_demo_dir())
    assert (tmp_path / "demo" / SCENE_FILE).is_file()
    assert len(out.image_filenames) == 6 and all(p.is_file() for p in out.image_filenames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # no staging folder left behind
    stamp = (tmp_path / "demo" / SCENE_FILE).stat().st_mtime_ns
    outputs(default_demo_dir(), "val")  # reused, not regenerated
    assert (tmp_path / "demo" / SCENE_FILE).stat().st_mtime_ns == stamp


def test_refuses_a_foreign_folder_at_the_demo_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    monkeypatch.setenv("SEMFLOW_DEMO_DIR", str(folder))
    with pytest.raises(FileExistsError, match="not a semflow demo scene"):
        outputs(default_demo_dir())
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_a_real_scene_elsewhere_is_never_regenerated(
    scene_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMFLOW_DEMO_DIR", str(tmp_path / "demo"))
    before = (scene_copy / SCENE_FILE).read_text()
    assert len(outputs(scene_copy).image_filenames) == 8
    assert (scene_copy / SCENE_FILE).read_text() == before and not (tmp_path / "demo").exists()
