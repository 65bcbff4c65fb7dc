"""Semantic metrics (the paper's per-image protocol) and DAVIS J/F, against hand-computed values."""

import math

import numpy as np
import torch

from semflow_ns.model_components.metrics import (
    boundary_f_measure,
    boundary_pixels,
    image_metrics,
    object_metrics,
    region_similarity,
    semantic_metrics,
)


def test_perfect_prediction():
    labels = torch.tensor([[0, 1], [2, 2]])
    m = semantic_metrics(labels, labels, num_classes=5)
    assert m == {"miou": 1.0, "total_accuracy": 1.0, "class_accuracy": 1.0}


def test_hand_computed_example():
    # gt:   0 0 1 1     pred: 0 1 1 3
    gt = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 1, 1, 3])
    m = semantic_metrics(pred, gt, num_classes=4)
    # classes present in gt or pred: 0, 1, 3
    # IoU: class 0 = 1/(2+1-1) = 0.5, class 1 = 1/(2+2-1) = 1/3, class 3 = 0/(0+1-0) = 0
    assert math.isclose(m["miou"], (0.5 + 1 / 3 + 0.0) / 3)
    assert math.isclose(m["total_accuracy"], 0.5)
    # class accuracy over classes with ground truth: class 0 = 1/2, class 1 = 1/2
    assert math.isclose(m["class_accuracy"], 0.5)


def test_unlabelled_pixels_are_ignored():
    gt = torch.tensor([0, -1, 1])
    pred = torch.tensor([0, 1, 1])
    assert semantic_metrics(pred, gt, num_classes=2)["miou"] == 1.0


def test_foreground_protocol_merges_other_classes_into_zero():
    gt = torch.tensor([1, 2, 3, 3])
    pred = torch.tensor([2, 1, 3, 3])  # confuses two background classes: no error once merged
    m = semantic_metrics(pred, gt, num_classes=4, merge_into_background=[3])
    assert m["miou"] == 1.0


def test_no_labelled_pixel_gives_nan():
    m = semantic_metrics(torch.tensor([0, 1]), torch.tensor([-1, -1]), num_classes=2)
    assert all(math.isnan(v) for v in m.values())


def square(shape, top, left, size):
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


def test_boundary_of_a_square_is_its_outer_ring():
    mask = square((7, 7), 2, 2, 3)
    edge = boundary_pixels(mask)
    assert edge.sum() == 8 and not edge[3, 3]
    assert boundary_pixels(np.ones((4, 4), dtype=bool)).sum() == 0, "the image border is no boundary"


def test_region_similarity_by_hand_and_empty_masks_score_one():
    a, b = square((10, 10), 0, 0, 4), square((10, 10), 0, 2, 4)  # overlap 4x2 = 8, union 16 + 16 - 8 = 24
    assert math.isclose(region_similarity(a, b), 8 / 24)
    empty = np.zeros((10, 10), dtype=bool)
    assert region_similarity(empty, empty) == 1.0
    assert region_similarity(a, empty) == 0.0


def test_boundary_f_uses_the_davis_tolerance_of_the_image_diagonal():
    shape = (480, 854)  # diagonal 979.8 px: tolerance ceil(0.008 * 979.8) = 8 px
    gt = square(shape, 100, 100, 200)
    assert boundary_f_measure(gt, gt) == 1.0
    assert boundary_f_measure(square(shape, 100, 108, 200), gt) == 1.0, "8 px off: every boundary pixel matches"
    assert boundary_f_measure(square(shape, 100, 112, 200), gt) < 0.8
    empty = np.zeros(shape, dtype=bool)
    assert boundary_f_measure(empty, empty) == 1.0
    assert boundary_f_measure(gt, empty) == 0.0 and boundary_f_measure(empty, gt) == 0.0


def test_object_metrics_average_objects_and_score_absent_objects_as_perfect():
    target = np.zeros((20, 20), dtype=np.int64)
    target[2:8, 2:8] = 1
    pred = target.copy()
    pred[2:8, 2:8] = 0  # object 1 missed entirely; object 2 absent from both maps
    m = object_metrics(pred, target, [1, 2])
    assert m == {"j": 0.5, "f": 0.5, "jf": 0.5}
    assert math.isnan(object_metrics(pred, np.full_like(target, -1), [1])["j"])


def test_image_metrics_report_all_class_and_foreground_miou():
    target = torch.tensor([[0, 1, 2, 2]])
    pred = torch.tensor([[1, 0, 2, 2]])  # confuses the static classes 0 and 1
    m = image_metrics(pred, target, num_classes=3, foreground_classes=[2], object_ids=[2])
    assert math.isclose(m["miou"], 1 / 3) and m["miou_fg"] == 1.0
    assert m["j"] == 1.0 and m["jf"] == 1.0
    assert "j" not in image_metrics(pred, target, num_classes=3, foreground_classes=[2])
    assert math.isnan(image_metrics(pred, target, num_classes=3, foreground_classes=[])["miou_fg"])
