"""Labels carried along the optical flow from the labelled frames into the frames without labels.

When only some frames of a video keep training labels, the stored optical flow gives every unlabelled frame a
guess of its labels: the labels of the nearest labelled frame, warped one frame at a time (backward warping,
nearest neighbour, as the ``flow`` baseline of :mod:`semflow_ns.eval.baselines` does). Each guess carries its
``hops`` (how many frames it travelled) and, of those, how many were ``unchecked``: hops whose flow failed the
forward-backward check at the pixel (an occlusion, a disocclusion, or motion too fast for the flow to agree
with itself, e.g. a dancer's legs). The model trains on the guesses with a weight that halves every
``flow_label_half_life`` hops, each unchecked hop counting ``flow_label_unchecked_hops`` more
(``SemanticFlowModelConfig``): next to the labels 2D propagation is nearly exact, and far from them its drift is
what the 3D field must correct.

Between two labelled frames a pixel takes the guess with fewer unchecked hops, then the one with fewer hops
(the forward sweep wins ties).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from semflow_ns.data.format import FrameRecord, read_flow, read_label_image

NO_LABEL = -1
"""Id of pixels without a guess (ignored by the losses)."""


@dataclass(frozen=True)
class FlowLabels:
    """The guess of one frame: ids [H, W] int32 (``NO_LABEL`` where there is none), hops [H, W] float16 (inf
    where there is none; small to keep a long video's guesses in memory) and, of those, the unchecked hops
    [H, W] float16 (0 where every hop passed the forward-backward check)."""

    classes: np.ndarray
    instances: Optional[np.ndarray]
    hops: np.ndarray
    unchecked: np.ndarray


def warp_labels(labels: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warping with nearest-neighbour sampling: ``out[y, x] = labels[y + dy, x + dx]`` (rounded).

    Args:
        labels: map [H, W] of the source frame (any dtype).
        flow: [H, W, 2] (dx, dy) in pixels from each pixel of the *target* frame to the source frame.
            Positions outside the image take the nearest border pixel.
    """
    height, width = labels.shape
    ys, xs = np.mgrid[0:height, 0:width]
    src_x = np.clip(np.rint(xs + flow[..., 0]), 0, width - 1).astype(np.int64)
    src_y = np.clip(np.rint(ys + flow[..., 1]), 0, height - 1).astype(np.int64)
    return labels[src_y, src_x]


def read_ids(path, shape: tuple[int, int]) -> np.ndarray:
    """A label image as int32 ids [H, W], resized to ``shape`` (nearest) when its size differs."""
    ids = read_label_image(path)
    if ids.shape != shape:
        ids = cv2.resize(ids.astype(np.int32), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return ids.astype(np.int32)


def _flow_shape(frames: Sequence[FrameRecord]) -> Optional[tuple[int, int]]:
    for frame in frames:
        for path in (frame.flow_fwd, frame.flow_bwd):
            if path is not None:
                return read_flow(path)[0].shape[:2]
    return None


def _sweep(
    frames: Sequence[FrameRecord], order: Sequence[int], direction: int, shape: tuple[int, int], instances: bool
) -> dict[int, FlowLabels]:
    """Guesses of the unlabelled frames along ``order`` (direction +1: forward in time, with each frame's
    backward flow; -1: backward, with the forward flow). A missing flow file ends the chain."""
    out: dict[int, FlowLabels] = {}
    current: Optional[FlowLabels] = None
    for index in order:
        frame = frames[index]
        if frame.semantics is not None:
            current = FlowLabels(
                read_ids(frame.semantics, shape),
                read_ids(frame.instances, shape) if instances and frame.instances is not None else None,
                np.zeros(shape, dtype=np.float16),
                np.zeros(shape, dtype=np.float16),
            )
            continue
        path = frame.flow_bwd if direction > 0 else frame.flow_fwd
        if current is None or path is None:
            current = None
            continue
        flow, valid = read_flow(path)
        if flow.shape[:2] != shape:
            current = None
            continue
        classes = warp_labels(current.classes, flow)
        kept = classes != NO_LABEL
        carried = None if current.instances is None else np.where(kept, warp_labels(current.instances, flow), NO_LABEL)
        hops = np.where(kept, warp_labels(current.hops, flow) + 1.0, np.inf).astype(np.float16)
        unchecked = np.where(kept, warp_labels(current.unchecked, flow) + ~valid, 0.0).astype(np.float16)
        current = FlowLabels(classes, carried, hops, unchecked)
        out[index] = current
    return out


def flow_labels(frames: Sequence[FrameRecord], instances: bool = False) -> list[Optional[FlowLabels]]:
    """The guesses of every frame of a video (in order) that has no labels; None for labelled frames, and for
    every frame when no frame or every frame has labels or the video has no optical flow.

    Args:
        frames: the video's frames in order, labels withheld where training does not use them.
        instances: carry the instance maps too (frames with labels but no instance file give none).
    """
    has = [f.semantics is not None for f in frames]
    shape = _flow_shape(frames)
    if not any(has) or all(has) or shape is None:
        return [None] * len(frames)
    forward = _sweep(frames, range(len(frames)), 1, shape, instances)
    backward = _sweep(frames, range(len(frames) - 1, -1, -1), -1, shape, instances)
    out: list[Optional[FlowLabels]] = []
    for index in range(len(frames)):
        a, b = forward.get(index), backward.get(index)
        if a is None or b is None:
            out.append(a if a is not None else b)
            continue
        take_b = (b.unchecked < a.unchecked) | ((b.unchecked == a.unchecked) & (b.hops < a.hops))
        out.append(
            FlowLabels(
                np.where(take_b, b.classes, a.classes),
                None if a.instances is None or b.instances is None else np.where(take_b, b.instances, a.instances),
                np.where(take_b, b.hops, a.hops),
                np.where(take_b, b.unchecked, a.unchecked),
            )
        )
    return out
