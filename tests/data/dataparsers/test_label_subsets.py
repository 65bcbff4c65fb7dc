"""Label subsets (--label-frames) and the "unlabelled" evaluation split, on the tiny demo scene."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from semflow_ns.data.dataparsers.frame_selection import FrameSelectionError
from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig
from semflow_ns.data.datasets.semflow_dataset import IGNORE_ID, SemanticFlowDataset
from semflow_ns.data.format import SCENE_FILE, SceneFormatError, load_scene, read_label_image


def parse(data: Path, split: str = "train", **config: Any):
    return SemanticFlowDataParserConfig(data=data, **config).setup().get_dataparser_outputs(split)


def add_label_motion_masks(root: Path) -> None:
    """Gives every frame a motion mask derived from its labels, as semflow-process-data writes them."""
    scene = load_scene(root)
    meta = json.loads((root / SCENE_FILE).read_text())
    for i, frame in enumerate(scene.frames):
        assert frame.semantics is not None
        moving = np.isin(read_label_image(frame.semantics), scene.dynamic_class_ids)
        (root / "motion_masks").mkdir(exist_ok=True)
        Image.fromarray(moving.astype(np.uint8) * 255).save(root / "motion_masks" / f"{i:05d}.png")
        meta["frames"][i]["motion_mask_path"] = f"motion_masks/{i:05d}.png"
    meta["motion_masks_from_labels"] = True
    (root / SCENE_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("spec", "labelled"),
    [("all", list(range(8))), ("first:50%", [0, 1, 2, 3]), ("0,1,6-7", [0, 1, 6, 7]), ("every:3", [0, 3, 6])],
)
def test_training_keeps_every_frame_but_only_the_subset_keeps_labels(tiny_scene: Path, spec: str, labelled) -> None:
    out = parse(tiny_scene, label_frames=spec)
    scene = load_scene(tiny_scene)
    assert out.image_filenames == [f.image for f in scene.frames]  # RGB (and flow) of every frame
    frames = out.metadata["semflow_frames"]
    assert [i for i, f in enumerate(frames) if f.semantics is not None] == labelled
    assert [i for i, f in enumerate(frames) if f.instances is not None] == labelled
    assert all(f.flow_fwd == g.flow_fwd and f.flow_bwd == g.flow_bwd for f, g in zip(frames, scene.frames, strict=True))
    assert out.metadata["semantics"].filenames == [f.semantics for f in frames]
    assert out.metadata["semflow_scene"].has_labels
    video = out.metadata["semflow_video"]
    assert len(video) == 8
    assert [i for i, flag in enumerate(video.labelled) if flag] == labelled
    # frames to the nearest labelled frame: what label propagation runs outward along
    assert video.label_distance().tolist() == [min(abs(i - j) for j in labelled) for i in range(8)]


def test_dataset_ignores_labels_and_motion_outside_the_subset(scene_copy: Path) -> None:
    add_label_motion_masks(scene_copy)
    data = SemanticFlowDataset(parse(scene_copy, label_frames="0-1"))
    kept, withheld = data[1], data[2]
    assert bool(torch.all(kept["semantics"] >= 0)) and set(kept["motion"].unique().tolist()) <= {0.0, 1.0}
    assert bool(torch.all(withheld["semantics"] == IGNORE_ID)) and bool(torch.all(withheld["instances"] == IGNORE_ID))
    # the mask came from the labels: withheld too, except where a moving class was carried along the flow with
    # every hop checked
    carried_moving = torch.isin(withheld["flow_labels"], data.dynamic_ids) & (withheld["flow_label_unchecked"] == 0)
    assert bool(torch.all(withheld["motion"][~carried_moving] == -1))
    assert bool(torch.all(withheld["motion"][carried_moving] == 1))
    assert float(withheld["flow_fwd_valid"].sum()) > 0  # flow is still used


def test_independent_motion_masks_survive_a_label_subset(scene_copy: Path) -> None:
    add_label_motion_masks(scene_copy)
    meta = json.loads((scene_copy / SCENE_FILE).read_text())
    meta["motion_masks_from_labels"] = False  # e.g. DynNeRF's motion_masks/ from another source
    (scene_copy / SCENE_FILE).write_text(json.dumps(meta))
    withheld = SemanticFlowDataset(parse(scene_copy, label_frames="0-1"))[2]
    assert bool(torch.all(withheld["semantics"] == IGNORE_ID))
    assert set(withheld["motion"].unique().tolist()) == {0.0, 1.0}


def test_none_trains_without_any_label(tiny_scene: Path) -> None:
    out = parse(tiny_scene, label_frames="none")
    assert all(f.semantics is None for f in out.metadata["semflow_frames"])
    assert not out.metadata["semflow_scene"].has_labels
    assert out.metadata["semflow_video"].label_distance().tolist() == [0] * 8


@pytest.mark.parametrize("split", ["val", "test"])
def test_unlabelled_eval_split_holds_the_other_frames_with_ground_truth(tiny_scene: Path, split: str) -> None:
    out = parse(tiny_scene, split, label_frames="first:75%", eval_source="unlabelled")
    scene = load_scene(tiny_scene)
    assert out.image_filenames == [f.image for f in scene.frames[6:]]
    assert out.metadata["semantics"].filenames == [f.semantics for f in scene.frames[6:]]  # kept for scoring
    assert all(p is not None for p in out.metadata["semantics"].filenames)
    assert out.cameras.times is not None
    np.testing.assert_allclose(out.cameras.times[:, 0].numpy(), [f.time for f in scene.frames[6:]], atol=1e-7)
    data = SemanticFlowDataset(out)
    np.testing.assert_array_equal(data[0]["semantics"][..., 0].numpy(), read_label_image(scene.frames[6].semantics))


def test_eval_frames_selects_video_frames(tiny_scene: Path) -> None:
    out = parse(tiny_scene, "val", eval_source="video", eval_frames="2,5")
    assert [p.name for p in out.image_filenames] == ["00002.png", "00005.png"]


def test_eval_view_set_keeps_one_group_of_held_out_views(tiny_scene: Path) -> None:
    every = parse(tiny_scene, "val").image_filenames
    novel = parse(tiny_scene, "val", eval_view_set="novel").image_filenames
    nearby = parse(tiny_scene, "test", eval_view_set="nearby").image_filenames
    assert [p.name for p in novel] == ["t00002_n0.png", "t00002_n1.png", "t00006_n0.png", "t00006_n1.png"]
    assert [*nearby, *novel] == every and all(p.name.endswith(("_v0.png", "_v1.png")) for p in nearby)
    with pytest.raises(
        SceneFormatError, match=r"no held-out view has view_set 'far' \(the scene's view sets: nearby, novel\)"
    ):
        parse(tiny_scene, "val", eval_view_set="far")


def test_bad_subsets_fail_with_the_option_named(tiny_scene: Path) -> None:
    with pytest.raises(FrameSelectionError, match=r"--label-frames '0-8': frame 8 is out of range"):
        parse(tiny_scene, label_frames="0-8")
    with pytest.raises(FrameSelectionError, match="--eval-source unlabelled: .* every frame"):
        parse(tiny_scene, "val", eval_source="unlabelled")
    with pytest.raises(FrameSelectionError, match="--eval-frames 'every:x'"):
        parse(tiny_scene, "val", eval_source="video", eval_frames="every:x")
    with pytest.raises(FrameSelectionError, match="--eval-interval must be at least 1"):
        parse(tiny_scene, "val", eval_source="video", eval_interval=0)


def test_unlabelled_eval_needs_ground_truth(scene_copy: Path) -> None:
    meta = json.loads((scene_copy / SCENE_FILE).read_text())
    for frame in meta["frames"][4:]:
        del frame["semantics_path"], frame["instance_path"]
    (scene_copy / SCENE_FILE).write_text(json.dumps(meta))
    with pytest.raises(SceneFormatError, match="none of the 4 frames outside --label-frames has a ground-truth"):
        parse(scene_copy, "test", label_frames="0-3", eval_source="unlabelled")


def test_a_task_whose_frames_have_no_labels_stops_before_training(scene_copy: Path) -> None:
    meta = json.loads((scene_copy / SCENE_FILE).read_text())
    meta["frames"][0].pop("semantics_path")
    meta["frames"][0].pop("instance_path", None)
    (scene_copy / SCENE_FILE).write_text(json.dumps(meta))
    with pytest.raises(SceneFormatError, match=r"--label-frames 'first:1' keeps frame\(s\) 0 .*no labelled frame"):
        parse(scene_copy, label_frames="first:1", eval_source="unlabelled")
    parse(scene_copy, label_frames="first:2")  # frame 1 has labels: fine


def test_an_object_no_labelled_frame_shows_stops_a_task_before_training(scene_copy: Path) -> None:
    """The tracking task scores the objects of the training labels; one that appears only later cannot be
    tracked, and the run stops naming the frame where it appears."""
    scene = load_scene(scene_copy)
    first = read_label_image(scene.frames[0].instances)
    ids = sorted(int(i) for i in np.unique(first) if i > 0)
    hidden = ids[0]
    Image.fromarray(np.where(first == hidden, 0, first).astype(np.uint8)).save(scene.frames[0].instances)
    with pytest.raises(SceneFormatError, match=rf"instance id\(s\) \[{hidden}\] appear here but in none"):
        parse(scene_copy, split="val", label_frames="first:1", eval_source="unlabelled")


def test_withheld_frames_are_left_out_of_training_and_scored(tiny_scene: Path) -> None:
    """--withheld-frames: no ray of those frames is trained on, their neighbours' flow into them is dropped,
    and the evaluation scores them; the label subset still decides which frames count as labelled."""
    train = parse(tiny_scene, withheld_frames="every:4+2")
    frames, video = train.metadata["semflow_frames"], train.metadata["semflow_video"]
    assert video.withheld == [2, 6] and video.labelled == [True] * 8
    assert frames[2].semantics is None and frames[6].semantics is None
    assert frames[1].flow_fwd is None and frames[3].flow_bwd is None and frames[5].flow_fwd is None
    assert frames[1].flow_bwd is not None and frames[3].flow_fwd is not None
    dataset = SemanticFlowDataset(train)
    assert [int(dataset.get_metadata({"image_idx": i})["withheld"].max()) for i in range(8)] == [0, 0, 1, 0, 0, 0, 1, 0]
    val = parse(tiny_scene, split="val", withheld_frames="every:4+2")
    scene = load_scene(tiny_scene)
    assert val.image_filenames == [scene.frames[2].image, scene.frames[6].image]
    with pytest.raises(FrameSelectionError, match="leaves no frame to train on"):
        parse(tiny_scene, withheld_frames="all")
    assert "withheld" not in SemanticFlowDataset(parse(tiny_scene)).get_metadata({"image_idx": 0})
