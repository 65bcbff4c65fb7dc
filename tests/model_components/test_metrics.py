"""Semantic metrics with the paper's per-image protocol, against hand-computed values."""

import math

import torch

from semflow_ns.model_components.metrics import semantic_metrics


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
