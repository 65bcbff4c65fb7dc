"""Labels carried along the optical flow: a square moving by a known flow, a broken forward-backward check,
frames between two labelled ones, and the dataset keys of a label subset of the tiny demo."""

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch

from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig
from semflow_ns.data.datasets.flow_labels import NO_LABEL, flow_labels
from semflow_ns.data.datasets.semflow_dataset import SemanticFlowDataset
from semflow_ns.data.format import FrameRecord, Intrinsics, load_scene, read_label_image, write_flow, write_label_image

SIZE, STEP, NUM_FRAMES = 16, 2, 5
"""A 4x4 square (class 1, instance 7) on a 16x16 image moving STEP px to the right per frame."""


def square(frame: int, value: int = 1) -> np.ndarray:
    ids = np.zeros((SIZE, SIZE), dtype=np.int64)
    ids[6:10, 2 + STEP * frame : 6 + STEP * frame] = value
    return ids


def square_video(root: Path, labelled: set[int], invalid_bwd: Optional[tuple[int, np.ndarray]] = None):
    """Frames whose flow is the square's exact motion; ``invalid_bwd`` (frame, mask) fails the check there."""
    intr = Intrinsics(fl_x=10.0, fl_y=10.0, cx=8.0, cy=8.0, w=SIZE, h=SIZE)
    frames = []
    for k in range(NUM_FRAMES):
        fwd = bwd = semantics = instances = None
        if k + 1 < NUM_FRAMES:
            fwd = root / f"{k}_fwd.npz"
            write_flow(fwd, np.tile(np.array([STEP, 0.0], np.float32), (SIZE, SIZE, 1)), np.ones((SIZE, SIZE), bool))
        if k > 0:
            bwd = root / f"{k}_bwd.npz"
            valid = np.ones((SIZE, SIZE), bool)
            if invalid_bwd is not None and invalid_bwd[0] == k:
                valid &= ~invalid_bwd[1]
            write_flow(bwd, np.tile(np.array([-STEP, 0.0], np.float32), (SIZE, SIZE, 1)), valid)
        if k in labelled:
            semantics, instances = root / f"{k}_sem.png", root / f"{k}_inst.png"
            write_label_image(semantics, square(k))
            write_label_image(instances, square(k, 7))
        frames.append(
            FrameRecord(
                image=root / f"{k}.png",
                camera_to_world=np.eye(4),
                time=k / (NUM_FRAMES - 1),
                intrinsics=intr,
                flow_fwd=fwd,
                flow_bwd=bwd,
                semantics=semantics,
                instances=instances,
            )
        )
    return frames


def test_labels_follow_the_square_and_count_their_hops(tmp_path):
    carried = flow_labels(square_video(tmp_path, {0}), instances=True)
    assert carried[0] is None, "a labelled frame gets no guess"
    for t in range(1, NUM_FRAMES):
        guess = carried[t]
        assert guess is not None
        np.testing.assert_array_equal(guess.classes[:, 4:], square(t)[:, 4:])  # left border: clamped source
        np.testing.assert_array_equal(guess.instances[:, 4:], square(t, 7)[:, 4:])
        assert np.all(guess.hops[guess.classes != NO_LABEL] == t)
        assert np.all(guess.unchecked == 0)


def test_a_failed_forward_backward_check_is_counted_and_carried_on(tmp_path):
    broken = np.zeros((SIZE, SIZE), bool)
    broken[:, :8] = True  # frame 2's left half: occluded
    carried = flow_labels(square_video(tmp_path, {0}, invalid_bwd=(2, broken)))
    assert np.all(carried[1].unchecked == 0)
    np.testing.assert_array_equal(carried[2].classes[:, 4:], square(2)[:, 4:])  # the labels still travel
    assert np.all(carried[2].unchecked[:, :8] == 1) and np.all(carried[2].unchecked[:, 8:] == 0)
    assert np.all(carried[2].hops == 2)
    # frame 3 samples frame 2 two pixels to the left: the unchecked band moves with the flow
    assert np.all(carried[3].unchecked[:, :10] == 1) and np.all(carried[3].unchecked[:, 10:] == 0)


def test_between_two_labelled_frames_the_nearer_one_wins(tmp_path):
    carried = flow_labels(square_video(tmp_path, {0, 4}))
    assert carried[0] is None and carried[4] is None
    assert np.all(carried[1].hops == 1) and np.all(carried[3].hops == 1)  # 3 is reached from 4, backwards
    assert np.all(carried[2].hops == 2)
    np.testing.assert_array_equal(carried[3].classes[:, :12], square(3)[:, :12])  # right border: clamped


def test_between_two_labelled_frames_a_checked_guess_wins_over_a_nearer_unchecked_one(tmp_path):
    broken = np.ones((SIZE, SIZE), bool)
    broken[:, 8:] = False
    carried = flow_labels(square_video(tmp_path, {0, 3}, invalid_bwd=(1, broken)))  # frame 1's left half fails
    # frame 1: the forward guess (1 hop) is unchecked on the left half; the backward one (2 hops) is checked
    assert np.all(carried[1].hops[:, :8] == 2) and np.all(carried[1].hops[:, 8:] == 1)
    assert np.all(carried[1].unchecked == 0)


def test_nothing_to_carry_without_a_label_subset_or_past_a_missing_flow(tmp_path):
    assert flow_labels(square_video(tmp_path / "all", set(range(NUM_FRAMES)))) == [None] * NUM_FRAMES
    assert flow_labels(square_video(tmp_path / "none", set())) == [None] * NUM_FRAMES
    frames = square_video(tmp_path / "gap", {0})
    frames[2] = dataclasses.replace(frames[2], flow_bwd=None)  # e.g. frame 1 is left out of training
    carried = flow_labels(frames)
    assert carried[1] is not None and carried[2] is None and carried[3] is None


def test_the_dataset_carries_the_labels_of_a_label_subset(tiny_scene: Path):
    outputs = SemanticFlowDataParserConfig(data=tiny_scene, label_frames="first:50%").setup()
    subset = SemanticFlowDataset(outputs.get_dataparser_outputs("train"))
    scene = load_scene(tiny_scene)
    labelled = subset[1]
    assert np.all(labelled["flow_labels"].numpy() == NO_LABEL) and torch.isinf(labelled["flow_label_hops"]).all()
    item = subset[5]
    carried, hops = item["flow_labels"][..., 0], item["flow_label_hops"][..., 0]
    assert item["flow_labels"].dtype == torch.int64 and hops.dtype == torch.float32
    assert "flow_instances" in item
    known, checked = carried != NO_LABEL, item["flow_label_unchecked"][..., 0] == 0
    assert known.all() and set(hops.unique().tolist()) == {2.0}  # frame 3 is the last labelled
    assert checked.float().mean() > 0.5
    truth = torch.from_numpy(read_label_image(scene.frames[5].semantics))
    assert (carried[checked] == truth[checked]).float().mean() > 0.9
    assert (carried[~checked] == truth[~checked]).float().mean() < (carried[checked] == truth[checked]).float().mean()
    assert int((item["semantics"] >= 0).sum()) == 0, "the withheld labels stay withheld"
    moving_class = torch.isin(carried, subset.dynamic_ids) & checked
    assert moving_class.any() and (item["motion"][..., 0][moving_class] == 1).all(), "a carried moving class moves"
    motion_mask = subset._motion(subset.frames[5], item["semantics"], 5)[..., 0]  # without the carried labels
    assert torch.equal(item["motion"][..., 0][~moving_class], motion_mask[~moving_class]), "unless unchecked"
    assert (torch.isin(carried, subset.dynamic_ids) & ~checked & (motion_mask != 1)).any(), "the case is tested"


def test_no_carried_labels_when_every_frame_is_labelled(tiny_scene: Path):
    full = SemanticFlowDataset(SemanticFlowDataParserConfig(data=tiny_scene).setup().get_dataparser_outputs("train"))
    assert "flow_labels" not in full[5] and "flow_label_hops" not in full[5]


@pytest.mark.parametrize("split", ["val"])
def test_evaluation_splits_carry_nothing(tiny_scene: Path, split: str):
    config = SemanticFlowDataParserConfig(data=tiny_scene, label_frames="first:50%", eval_source="unlabelled")
    evaluation = SemanticFlowDataset(config.setup().get_dataparser_outputs(split))
    assert "flow_labels" not in evaluation[0]
