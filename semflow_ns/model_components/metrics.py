"""Segmentation metrics of one image: the paper's semantic protocol and the DAVIS object scores.

Semantic (the paper's evaluation protocol): the confusion matrix is built over the classes present in the ground
truth or the prediction; total accuracy = trace / sum, class-average accuracy = mean of the
row-normalised diagonal, mIoU = mean of TP / (TP + FP + FN). The foreground-only mIoU merges every
static class into class 0 first.

Objects (DAVIS, Perazzi et al. 2016): for every object, region similarity J = IoU of the predicted
and true masks (1 when both are empty) and contour accuracy F = F-measure of the mask boundaries,
a boundary pixel counting as matched when the other boundary passes within a disk of radius
ceil(0.008 × image diagonal). J and F of an image are means over its objects; J&F = (J + F) / 2.

Images are averaged afterwards by the caller.
"""

import math
from collections.abc import Sequence
from typing import Optional

import cv2
import numpy as np
import torch
from jaxtyping import Bool, Int
from torch import Tensor

BOUNDARY_TOLERANCE = 0.008
"""DAVIS boundary tolerance as a fraction of the image diagonal."""


def confusion_matrix(pred: Int[Tensor, "*bs"], target: Int[Tensor, "*bs"], num_classes: int) -> Tensor:
    """[num_classes, num_classes] counts, rows = ground truth, columns = prediction."""
    index = target.reshape(-1) * num_classes + pred.reshape(-1)
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def semantic_metrics(
    pred: Int[Tensor, "*bs"],
    target: Int[Tensor, "*bs"],
    num_classes: int,
    merge_into_background: Optional[Sequence[int]] = None,
) -> dict[str, float]:
    """mIoU, total accuracy and class-average accuracy of one image.

    Args:
        pred: predicted class ids.
        target: ground-truth class ids; negative ids (unlabelled) are ignored.
        num_classes: size of the class list.
        merge_into_background: if given, the classes NOT in this list are merged into class 0 in both
            maps before scoring (the paper's foreground-only protocol passes the foreground classes).
    """
    keep = target >= 0
    pred, target = pred[keep].long(), target[keep].long()
    if merge_into_background is not None:
        fg = torch.zeros(num_classes, dtype=torch.bool, device=pred.device)
        fg[list(merge_into_background)] = True
        pred = torch.where(fg[pred], pred, torch.zeros_like(pred))
        target = torch.where(fg[target], target, torch.zeros_like(target))
    if target.numel() == 0:
        return {"miou": float("nan"), "total_accuracy": float("nan"), "class_accuracy": float("nan")}
    conf = confusion_matrix(pred, target, num_classes).double()
    present = (conf.sum(0) + conf.sum(1)) > 0
    conf = conf[present][:, present]
    tp = conf.diag()
    gt_count, pred_count = conf.sum(1), conf.sum(0)
    class_acc = tp[gt_count > 0] / gt_count[gt_count > 0]
    iou = tp / (gt_count + pred_count - tp)
    return {
        "miou": float(iou.mean()),
        "total_accuracy": float(tp.sum() / conf.sum()),
        "class_accuracy": float(class_acc.mean()),
    }


def boundary_pixels(mask: Bool[np.ndarray, "h w"]) -> Bool[np.ndarray, "h w"]:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image border does not make a boundary)."""
    inside = mask.astype(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    eroded = cv2.erode(inside, cross, borderType=cv2.BORDER_REPLICATE)
    return mask & (eroded == 0)


def region_similarity(pred: Bool[np.ndarray, "h w"], target: Bool[np.ndarray, "h w"]) -> float:
    """DAVIS J: intersection over union of two masks; 1 when both are empty."""
    union = np.logical_or(pred, target).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(pred, target).sum() / union)


def boundary_f_measure(
    pred: Bool[np.ndarray, "h w"], target: Bool[np.ndarray, "h w"], tolerance: float = BOUNDARY_TOLERANCE
) -> float:
    """DAVIS F: F-measure of the boundaries of two masks, matched within ``tolerance`` × image diagonal.

    Precision = share of predicted boundary pixels within the tolerance disk of the true boundary, recall the
    other way round. Both boundaries empty: 1; only one empty: 0.
    """
    radius = max(1, math.ceil(tolerance * math.hypot(*pred.shape)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    pred_edge, target_edge = boundary_pixels(pred), boundary_pixels(target)
    num_pred, num_target = int(pred_edge.sum()), int(target_edge.sum())
    if num_pred == 0 and num_target == 0:
        return 1.0
    if num_pred == 0 or num_target == 0:
        return 0.0
    near_target = cv2.dilate(target_edge.astype(np.uint8), disk) > 0
    near_pred = cv2.dilate(pred_edge.astype(np.uint8), disk) > 0
    precision = (pred_edge & near_target).sum() / num_pred
    recall = (target_edge & near_pred).sum() / num_target
    if precision + recall == 0:
        return 0.0
    return float(2.0 * precision * recall / (precision + recall))


def object_metrics(
    pred: Int[np.ndarray, "h w"], target: Int[np.ndarray, "h w"], object_ids: Sequence[int]
) -> dict[str, float]:
    """J, F and J&F of one image: means over ``object_ids`` of each object's scores.

    Args:
        pred: predicted id map (class or instance ids).
        target: true id map; negative ids (unlabelled) count as no object in both maps.
        object_ids: the ids scored as objects; an object absent from both maps scores J = F = 1 (DAVIS).
    """
    labelled = target >= 0
    if not object_ids or not labelled.any():
        return {"j": float("nan"), "f": float("nan"), "jf": float("nan")}
    js, fs = [], []
    for obj in object_ids:
        pred_mask, target_mask = (pred == obj) & labelled, target == obj
        js.append(region_similarity(pred_mask, target_mask))
        fs.append(boundary_f_measure(pred_mask, target_mask))
    j, f = float(np.mean(js)), float(np.mean(fs))
    return {"j": j, "f": f, "jf": (j + f) / 2.0}


def image_metrics(
    pred_classes: Int[Tensor, "h w"],
    target_classes: Int[Tensor, "h w"],
    num_classes: int,
    foreground_classes: Sequence[int],
    object_ids: Sequence[int] = (),
    pred_objects: Optional[Int[Tensor, "h w"]] = None,
    target_objects: Optional[Int[Tensor, "h w"]] = None,
) -> dict[str, float]:
    """Every segmentation score of one image (the model's evaluation and the 2D baselines share it).

    Args:
        pred_classes: predicted class ids.
        target_classes: true class ids (negative = unlabelled, ignored).
        num_classes: size of the class list.
        foreground_classes: the moving classes; the others are merged into class 0 for ``miou_fg`` (NaN when
            there is no moving class).
        object_ids: ids scored by J and F (instance ids, or class ids); empty: no J/F.
        pred_objects: id map the objects are read from (default: the class maps).
        target_objects: true id map of the objects (default: the class maps).

    Returns:
        ``miou``, ``total_accuracy``, ``class_accuracy`` (all classes), ``miou_fg`` (foreground protocol)
        and, with objects, ``j``, ``f``, ``jf``.
    """
    out = semantic_metrics(pred_classes, target_classes, num_classes)
    out["miou_fg"] = float("nan")  # undefined without moving classes: everything would merge into class 0
    if foreground_classes:
        out["miou_fg"] = semantic_metrics(pred_classes, target_classes, num_classes, foreground_classes)["miou"]
    if object_ids:
        pred_obj = pred_classes if pred_objects is None else pred_objects
        target_obj = target_classes if target_objects is None else target_objects
        out.update(object_metrics(pred_obj.cpu().numpy(), target_obj.cpu().numpy(), object_ids))
    return out
