"""2D baselines: label copy and flow propagation, on a square moving by a known flow and on the tiny demo."""

from pathlib import Path

import numpy as np
import pytest
import torch

from semflow_ns.data.format import FrameRecord, Intrinsics, load_scene, write_flow
from semflow_ns.eval.baselines import (
    LabelMaps,
    copy_nearest,
    propagate_with_flow,
    run_baseline,
    warp_labels,
)
from semflow_ns.model_components.metrics import image_metrics

SIZE, STEP, NUM_FRAMES = 16, 2, 5
"""A 4x4 square on a 16x16 image moving STEP px to the right per frame."""


def square_labels(frame: int) -> np.ndarray:
    labels = np.zeros((SIZE, SIZE), dtype=np.int64)
    labels[6:10, 2 + STEP * frame : 6 + STEP * frame] = 1
    return labels


def moving_square_video(root: Path) -> list[FrameRecord]:
    """Frames whose stored flow is the square's exact motion (the whole image moves with it)."""
    intr = Intrinsics(fl_x=10.0, fl_y=10.0, cx=8.0, cy=8.0, w=SIZE, h=SIZE)
    ones = np.ones((SIZE, SIZE), dtype=bool)
    frames = []
    for k in range(NUM_FRAMES):
        fwd = bwd = None
        if k + 1 < NUM_FRAMES:
            fwd = root / f"{k}_fwd.npz"
            write_flow(fwd, np.tile(np.array([STEP, 0.0], np.float32), (SIZE, SIZE, 1)), ones)
        if k > 0:
            bwd = root / f"{k}_bwd.npz"
            write_flow(bwd, np.tile(np.array([-STEP, 0.0], np.float32), (SIZE, SIZE, 1)), ones)
        frames.append(
            FrameRecord(
                image=root / f"{k}.png",
                camera_to_world=np.eye(4),
                time=k / 4,
                intrinsics=intr,
                flow_fwd=fwd,
                flow_bwd=bwd,
            )
        )
    return frames


def j_of(pred: np.ndarray, target: np.ndarray) -> float:
    return image_metrics(torch.from_numpy(pred), torch.from_numpy(target), 2, [1], object_ids=[1])["j"]


def test_warp_labels_samples_the_nearest_source_pixel():
    labels = np.arange(12).reshape(3, 4)
    flow = np.zeros((3, 4, 2), np.float32)
    flow[..., 0] = 1.4  # every pixel looks 1.4 px to the right: rounds to 1, the border is clamped
    assert warp_labels(labels, flow).tolist() == [[1, 2, 3, 3], [5, 6, 7, 7], [9, 10, 11, 11]]


def test_flow_propagation_follows_a_moving_square_and_beats_copying(tmp_path):
    frames = moving_square_video(tmp_path)
    labelled = {0: LabelMaps(square_labels(0))}
    targets = [1, 2, 3, 4]
    propagated = propagate_with_flow(frames, labelled, targets)
    copied = copy_nearest(labelled, targets)
    for t in targets:
        assert np.array_equal(propagated[t].classes, square_labels(t)), t
        assert j_of(propagated[t].classes, square_labels(t)) == 1.0
        assert j_of(copied[t].classes, square_labels(t)) < 1.0
    assert j_of(copied[1].classes, square_labels(1)) == pytest.approx(8 / 24)  # shifted by half its width


def test_frames_before_the_first_labelled_frame_are_reached_with_the_forward_flow(tmp_path):
    frames = moving_square_video(tmp_path)
    labelled = {2: LabelMaps(square_labels(2)), 4: LabelMaps(square_labels(4))}
    propagated = propagate_with_flow(frames, labelled, [0, 1, 3])
    for t in (0, 1, 3):
        assert np.array_equal(propagated[t].classes, square_labels(t)), t


def test_copy_takes_the_nearest_labelled_frame_ties_to_the_earlier():
    labelled = {0: LabelMaps(np.zeros((2, 2), np.int64)), 4: LabelMaps(np.ones((2, 2), np.int64))}
    copied = copy_nearest(labelled, [1, 2, 3])
    assert [int(copied[t].classes[0, 0]) for t in (1, 2, 3)] == [0, 0, 1]


@pytest.mark.parametrize("baseline", ["copy", "flow"])
def test_baselines_score_the_unlabelled_frames_of_a_scene(tiny_scene, baseline):
    scene = load_scene(tiny_scene)
    predictions, rows = run_baseline(scene, "first:50%", baseline)
    assert [r["frame"] for r in rows] == [4, 5, 6, 7] == sorted(predictions)
    for row in rows:
        assert {"miou", "miou_fg", "total_accuracy", "class_accuracy", "j", "f", "jf"} <= set(row)
        assert 0.0 <= row["jf"] <= 1.0 and 0.0 <= row["miou"] <= 1.0
    assert predictions[4].instances is not None, "the demo's instance maps are propagated too"
