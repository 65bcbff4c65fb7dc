"""2D label-propagation baselines for the label-subset tasks (semantic completion, tracking).

Both predict the label maps of the video frames whose labels were withheld from the labelled ones,
in image space, without any 3D model:

* ``copy``: every frame takes the labels of the nearest labelled frame (ties: the earlier one);
* ``flow``: the labels of the last labelled frame before a frame are carried forward with the scene's
  stored optical flow, one frame at a time (backward warping: pixel p of frame k takes the label
  found at p + flow_{k→k−1}(p) in frame k−1, nearest neighbour). Frames before the first labelled
  frame are reached the other way, from the first labelled frame with the forward flow.

Predictions are scored with :func:`semflow_ns.model_components.metrics.image_metrics`, the function
the model's evaluation uses, on the same frames (``--eval-source unlabelled``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Optional

import cv2
import numpy as np
import torch

from semflow_ns.data.dataparsers.splits import SplitOptions, labelled_indices
from semflow_ns.data.datasets.flow_labels import warp_labels
from semflow_ns.data.format import FrameRecord, SceneDescription, read_flow, read_label_image
from semflow_ns.model_components.metrics import image_metrics

Baseline = Literal["copy", "flow"]
"""The 2D baselines (see the module docstring)."""


@dataclass(frozen=True)
class LabelMaps:
    """Label maps of one frame: class ids and, when the scene has them, instance ids."""

    classes: np.ndarray
    instances: Optional[np.ndarray] = None


def read_labels(frame: FrameRecord) -> LabelMaps:
    """The ground-truth label maps of ``frame`` (which must have ``semantics``)."""
    assert frame.semantics is not None
    instances = None if frame.instances is None else read_label_image(frame.instances)
    return LabelMaps(read_label_image(frame.semantics).astype(np.int64), instances)


def _warp(maps: LabelMaps, flow: np.ndarray) -> LabelMaps:
    instances = None if maps.instances is None else warp_labels(maps.instances, flow)
    return LabelMaps(warp_labels(maps.classes, flow), instances)


def _flow_toward(frame: FrameRecord, direction: int, shape: tuple[int, int]) -> np.ndarray:
    """Flow from ``frame`` to its previous (direction +1: we came from the past) or next (-1) frame; zero if
    the scene has none (the labels are then copied)."""
    path = frame.flow_bwd if direction > 0 else frame.flow_fwd
    if path is None:
        return np.zeros((*shape, 2), dtype=np.float32)
    flow, _ = read_flow(path)
    return flow.astype(np.float32)


def copy_nearest(labelled: dict[int, LabelMaps], targets: Sequence[int]) -> dict[int, LabelMaps]:
    """Baseline ``copy``: each target frame gets the labels of the nearest labelled frame (ties: earlier)."""
    if not labelled:
        raise ValueError("the copy baseline needs at least one labelled frame")
    sources = sorted(labelled)
    return {t: labelled[min(sources, key=lambda s: (abs(s - t), s))] for t in targets}


def propagate_with_flow(
    frames: Sequence[FrameRecord], labelled: dict[int, LabelMaps], targets: Sequence[int]
) -> dict[int, LabelMaps]:
    """Baseline ``flow``: labels chained along the video with the scene's optical flow (module docstring).

    Args:
        frames: the video frames in order (their ``flow_fwd`` / ``flow_bwd`` files are read).
        labelled: label maps of the labelled frames, by frame index.
        targets: frame indices to predict.
    """
    if not labelled:
        raise ValueError("the flow baseline needs at least one labelled frame")
    wanted, out = set(targets), {}
    first = min(labelled)
    # forward sweep from the first labelled frame (backward flow), then backward sweep before it (forward flow)
    for direction, order in ((1, range(first, len(frames))), (-1, range(first, -1, -1))):
        current: Optional[LabelMaps] = None
        for index in order:
            if index in labelled:
                current = labelled[index]
            elif current is not None:
                current = _warp(current, _flow_toward(frames[index], direction, current.classes.shape))
            if index in wanted and current is not None and index not in out:
                out[index] = current
    return out


@dataclass(frozen=True)
class ObjectSpec:
    """Which ids the DAVIS scores J and F treat as objects (the same choice as the model's evaluation)."""

    ids: tuple[int, ...]
    """Object ids: instance ids when ``use_instances``, else class ids."""
    use_instances: bool

    @classmethod
    def of(cls, scene: SceneDescription) -> ObjectSpec:
        """Instances when the scene has instance labels, else its moving classes."""
        if scene.instances:
            return cls(tuple(i.id for i in scene.instances), True)
        return cls(tuple(i for i, c in enumerate(scene.classes) if c.dynamic), False)


def score_prediction(
    scene: SceneDescription, pred: LabelMaps, target: LabelMaps, objects: Optional[ObjectSpec] = None
) -> dict[str, float]:
    """Every score of one predicted frame (mIoU, foreground mIoU, accuracies, J, F, J&F)."""
    objects = objects or ObjectSpec.of(scene)
    fg = [i for i, c in enumerate(scene.classes) if c.dynamic]
    extra = {}
    if objects.use_instances and pred.instances is not None and target.instances is not None:
        extra = {"pred_objects": torch.from_numpy(pred.instances), "target_objects": torch.from_numpy(target.instances)}
    return image_metrics(
        torch.from_numpy(pred.classes),
        torch.from_numpy(target.classes),
        len(scene.classes),
        fg,
        object_ids=objects.ids if (extra or not objects.use_instances) else (),
        **extra,
    )


def evaluated_frames(scene: SceneDescription, label_frames: str) -> tuple[list[int], list[int]]:
    """(labelled frame indices, evaluated frame indices): the ``unlabelled`` split of ``label_frames``."""
    labelled = labelled_indices(scene, SplitOptions(label_frames=label_frames))
    keep = set(labelled)
    evaluated = [i for i, f in enumerate(scene.frames) if i not in keep and f.semantics is not None]
    return [i for i in labelled if scene.frames[i].semantics is not None], evaluated


def _resized(maps: LabelMaps, scale: float) -> LabelMaps:
    """Label maps resized by ``scale`` (nearest), as a model's renders at that scale are scored."""
    if scale == 1.0:
        return maps
    height, width = maps.classes.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))

    def resize(ids: np.ndarray) -> np.ndarray:
        return cv2.resize(ids.astype(np.int32), size, interpolation=cv2.INTER_NEAREST).astype(ids.dtype)

    return LabelMaps(resize(maps.classes), None if maps.instances is None else resize(maps.instances))


def run_baseline(
    scene: SceneDescription, label_frames: str, baseline: Baseline, scale: float = 1.0
) -> tuple[dict[int, LabelMaps], list[dict[str, Any]]]:
    """Predicts the frames outside ``label_frames`` with ``baseline`` and scores each against its ground truth
    (predictions and ground truth resized by ``scale`` first, nearest, to score as a model rendered at that scale).

    Returns:
        The predictions by frame index, and one row per evaluated frame: ``frame``, ``time`` and the scores.
    """
    labelled_ids, evaluated = evaluated_frames(scene, label_frames)
    labelled = {i: read_labels(scene.frames[i]) for i in labelled_ids}
    if baseline == "copy":
        predictions = copy_nearest(labelled, evaluated)
    else:
        predictions = propagate_with_flow(scene.frames, labelled, evaluated)
    objects = ObjectSpec.of(scene)
    rows = []
    for index in evaluated:
        target = _resized(read_labels(scene.frames[index]), scale)
        scores = score_prediction(scene, _resized(predictions[index], scale), target, objects)
        rows.append({"frame": index, "time": scene.frames[index].time, **scores})
    return predictions, rows
