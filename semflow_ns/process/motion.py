"""Motion masks estimated from optical flow alone (no labels): the moving pixels of a frame.

A processed scene needs to know, on frames without labels, which pixels move: the model's blend and static
losses use it (README, "Scene format"). Deriving it from the labels would leak withheld labels into label
subset tasks, so ``semflow-process-data`` estimates it from the flow instead.

For each pair of frames the dominant image motion, a homography fitted robustly (MAGSAC) to the consistent
flow, stands for the background: exact for a rotating camera or a distant background, the usual case for
casual clips that pan or follow a subject. A frame is compared with the frames ``gaps`` steps before and after
it (one-frame flows composed), so slow objects stand out over several frames. Pixels whose flow departs from
the background's by more than ``moving_fraction`` of the image diagonal in any comparison move; pixels within
``static_fraction`` in every comparison, with consistent flow, are static; the rest (occlusions, inconsistent
flow, a band around moving regions, parallax between the two thresholds) is unknown.

Masks are 8-bit images: 0 static, 255 moving, ``MOTION_UNKNOWN`` (128) unknown (read by
:func:`semflow_ns.data.format.motion_levels`).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from semflow_ns.data.format import MOTION_UNKNOWN
from semflow_ns.data.producers.optical_flow import FrameFlow, warp_by_flow


@dataclass(frozen=True)
class MotionOptions:
    """Thresholds of the flow-based motion masks, as fractions of the image diagonal (resolution independent)."""

    moving_fraction: float = 0.01
    """A pixel moves when its flow departs from the background motion by more than this (1 % ~ 5 px at 480 px)."""
    static_fraction: float = 0.0025
    """A pixel is static when its flow departs from the background motion by less than this."""
    border_fraction: float = 0.01
    """Pixels this close to a moving region are unknown (flow is blurred across motion boundaries)."""
    min_region_fraction: float = 0.0005
    """Moving regions smaller than this fraction of the image are dropped (flow noise)."""
    gaps: tuple[int, ...] = (1, 3)
    """Frame distances compared, before and after the frame (flows composed over the gap)."""
    fit_stride: int = 4
    """Every fit_stride-th pixel (in x and y) with consistent flow enters the homography fit."""


def background_residual(flow: np.ndarray, valid: np.ndarray, stride: int, threshold: float) -> np.ndarray | None:
    """Distance in pixels [H, W] between each pixel's flow target and the background homography's, or None.

    Args:
        flow: float [H, W, 2] flow to the other frame (x right, y down).
        valid: bool [H, W], True where the flow passes the forward-backward check.
        stride: grid step of the pixels used for the fit.
        threshold: MAGSAC inlier threshold in pixels.

    Returns None when too few consistent pixels remain to fit a homography.
    """
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    source = np.stack([xs, ys], -1)
    target = source + flow.astype(np.float32)
    grid = np.zeros_like(valid)
    grid[::stride, ::stride] = True
    fit = valid & grid
    if fit.sum() < 16:
        return None
    homography, _ = cv2.findHomography(source[fit], target[fit], cv2.USAC_MAGSAC, threshold, maxIters=2000)
    if homography is None:
        return None
    mapped = cv2.perspectiveTransform(source.reshape(-1, 1, 2), homography).reshape(height, width, 2)
    return np.linalg.norm(mapped - target, axis=-1)


def _drop_small(moving: np.ndarray, min_pixels: int) -> np.ndarray:
    count, regions, stats, _ = cv2.connectedComponentsWithStats(moving.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_pixels
    return keep[regions]


def chained_flow(flows: Sequence[FrameFlow], start: int, gap: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Flow and validity from frame ``start`` to frame ``start + gap`` (negative: backward), by composing the
    one-frame flows; None when that frame is outside the video."""
    step = 1 if gap > 0 else -1
    if not 0 <= start + gap < len(flows):
        return None
    flow, valid = None, None
    for i in range(start, start + gap, step):
        one, one_valid = (flows[i].fwd, flows[i].fwd_mask) if step > 0 else (flows[i].bwd, flows[i].bwd_mask)
        if one is None or one_valid is None:
            return None
        if flow is None:
            flow, valid = one.astype(np.float32), one_valid.copy()
            continue
        assert valid is not None
        flow = flow + warp_by_flow(one, flow)
        valid &= warp_by_flow(one_valid.astype(np.float32), flow) > 0.99
    assert flow is not None and valid is not None
    return flow, valid


def motion_mask(flows: Sequence[FrameFlow], index: int, options: MotionOptions = MotionOptions()) -> np.ndarray:
    """uint8 [H, W] mask of frame ``index``: 0 static, 255 moving, 128 unknown.

    Compares the frame with the frames ``options.gaps`` steps before and after it (composed flow), so that
    objects too slow to leave the background motion in one frame still do over several.
    """
    pairs = [chained_flow(flows, index, sign * gap) for gap in options.gaps for sign in (1, -1)]
    pairs = [p for p in pairs if p is not None]
    if not pairs:
        raise ValueError(f"motion_mask: frame {index} has neither forward nor backward flow")
    height, width = pairs[0][0].shape[:2]
    diagonal = float(np.hypot(height, width))
    moving = np.zeros((height, width), dtype=bool)
    static = np.ones((height, width), dtype=bool)
    fitted = False
    for values, valid in pairs:
        residual = background_residual(values, valid, options.fit_stride, options.static_fraction * diagonal)
        if residual is None:
            static[:] = False
            continue
        fitted = True
        moving |= residual > options.moving_fraction * diagonal
        static &= valid & (residual < options.static_fraction * diagonal)
    out = np.full((height, width), MOTION_UNKNOWN, dtype=np.uint8)
    if not fitted:
        return out
    kernel = np.ones((3, 3), np.uint8)
    moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    moving = _drop_small(moving, max(1, round(options.min_region_fraction * height * width)))
    radius = max(1, round(options.border_fraction * diagonal))
    near_moving = cv2.dilate(moving.astype(np.uint8), np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)) > 0
    out[static & ~near_moving] = 0
    out[moving] = 255
    return out
