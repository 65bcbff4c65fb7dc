"""Semantic segmentation metrics with the paper's per-image protocol (METHOD.md §4.1).

For each image, the confusion matrix is built over the classes present in the ground truth or the
prediction; total accuracy = trace / sum, class-average accuracy = mean of the row-normalised
diagonal, mIoU = mean of TP / (TP + FP + FN). Images are averaged afterwards by the caller.
"""

from collections.abc import Sequence
from typing import Optional

import torch
from jaxtyping import Int
from torch import Tensor


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
