"""Classical dense optical flow (OpenCV DIS) with a forward-backward consistency check.

This is the only flow estimator used for training data, for the procedural demo scene as well as for real
videos, so that the demo exercises exactly the code path of a real capture.

Conventions used throughout:

* Flow fields are float32 arrays of shape [H, W, 2] in pixels, ordered (dx, dy) with x to the right and y
  down. ``flow[y, x]`` is the displacement of pixel (row y, column x) of the *source* frame: its content is
  found at ``(x + dx, y + dy)`` in the *target* frame. Forward flow goes from frame t to t + 1, backward flow
  from t to t - 1.
* Pixel (row y, column x) has its centre at integer coordinates (x, y) here, so the image covers
  [-0.5, W - 0.5] x [-0.5, H - 0.5]. (nerfstudio puts the same pixel centre at (x + 0.5, y + 0.5); flow is a
  difference of positions and does not depend on that offset.)
* Consistency masks are bool [H, W], True where the forward-backward check passes.

DIS (Kroeger et al., ECCV 2016) builds an image pyramid whose depth depends on the image size and patch size;
on small images (a few dozen to ~100 pixels per side) it has too few levels to follow motions of several
pixels. Small inputs are therefore upsampled internally to at least ``MIN_WORKING_SIDE`` pixels on the short
side and the result is resampled back, with the vectors divided by the same factor.
"""

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

PRESETS: dict[str, int] = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
"""DIS presets by name. "medium" is the most accurate (about 46 ms per 854x480 field on one core)."""

MIN_WORKING_SIDE = 192
"""Inputs whose shorter side is below this many pixels are upsampled by an integer factor before DIS runs."""


@dataclass
class FrameFlow:
    """Optical flow attached to one video frame (see the module docstring for conventions).

    The forward entries are None for the last frame, the backward entries None for the first frame.
    """

    fwd: np.ndarray | None
    """float32 [H, W, 2] pixels, this frame -> next frame."""
    fwd_mask: np.ndarray | None
    """bool [H, W], True where the forward flow passes the forward-backward check."""
    bwd: np.ndarray | None
    """float32 [H, W, 2] pixels, this frame -> previous frame."""
    bwd_mask: np.ndarray | None
    """bool [H, W], True where the backward flow passes the forward-backward check."""


def to_grey(image: np.ndarray) -> np.ndarray:
    """Converts an RGB uint8 [H, W, 3] (or already grey [H, W]) image to grey uint8 [H, W]."""
    if image.dtype != np.uint8:
        raise ValueError(f"optical flow expects uint8 images, got dtype {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    raise ValueError(f"expected an image of shape [H, W, 3] or [H, W], got {list(image.shape)}")


def working_scale(height: int, width: int) -> int:
    """Integer upsampling factor applied before DIS so that the shorter side reaches ``MIN_WORKING_SIDE``."""
    return max(1, math.ceil(MIN_WORKING_SIDE / max(1, min(height, width))))


def _dis(preset: str) -> cv2.DISOpticalFlow:
    if preset not in PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; choose one of {sorted(PRESETS)}")
    return cv2.DISOpticalFlow_create(PRESETS[preset])


def _estimate_grey(dis: cv2.DISOpticalFlow, grey_a: np.ndarray, grey_b: np.ndarray) -> np.ndarray:
    """Runs DIS on two grey uint8 images of equal size, upsampling small inputs (see ``working_scale``)."""
    height, width = grey_a.shape
    scale = working_scale(height, width)
    if scale > 1:
        size = (width * scale, height * scale)
        grey_a = cv2.resize(grey_a, size, interpolation=cv2.INTER_CUBIC)
        grey_b = cv2.resize(grey_b, size, interpolation=cv2.INTER_CUBIC)
    flow = dis.calc(grey_a, grey_b, None)
    if scale > 1:
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_AREA) / float(scale)
    return np.ascontiguousarray(flow, dtype=np.float32)


def estimate_flow(img_a: np.ndarray, img_b: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Dense optical flow from ``img_a`` to ``img_b`` with OpenCV's DIS.

    Args:
        img_a: source frame, uint8 RGB [H, W, 3] or grey [H, W].
        img_b: target frame of the same size.
        preset: DIS preset name, one of ``PRESETS``.

    Returns:
        float32 [H, W, 2] flow in pixels, (dx, dy): the content of pixel x in ``img_a`` is at x + flow[x] in
        ``img_b``.
    """
    grey_a, grey_b = to_grey(img_a), to_grey(img_b)
    if grey_a.shape != grey_b.shape:
        raise ValueError(f"images differ in size: {list(grey_a.shape)} and {list(grey_b.shape)}")
    return _estimate_grey(_dis(preset), grey_a, grey_b)


def warp_by_flow(values: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Samples ``values`` at x + flow(x) bilinearly (edge values are repeated outside the image).

    Args:
        values: [H, W] or [H, W, C] array (C <= 4) defined on the target frame.
        flow: float32 [H, W, 2] pixels, from the source frame to the target frame.

    Returns:
        float32 array of the shape of ``values``: ``values`` pulled back to the source frame's pixels.
    """
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x = grid_x + flow[..., 0].astype(np.float32)
    map_y = grid_y + flow[..., 1].astype(np.float32)
    return cv2.remap(values.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistency_mask(fwd: np.ndarray, bwd: np.ndarray, alpha1: float = 0.01, alpha2: float = 0.5) -> np.ndarray:
    """Forward-backward consistency check of Sundaram, Brox and Keutzer (ECCV 2010, "Dense point trajectories").

    A pixel x is consistent when its target x + fwd(x) lies inside the image and the backward flow read there,
    ``b = bwd(x + fwd(x))`` (bilinear), nearly cancels the forward flow:
    ``|fwd + b|^2 < alpha1 * (|fwd|^2 + |b|^2) + alpha2``.

    Args:
        fwd: float32 [H, W, 2] pixels, frame a -> frame b.
        bwd: float32 [H, W, 2] pixels, frame b -> frame a.
        alpha1: relative tolerance (squared error per squared flow magnitude).
        alpha2: absolute tolerance in squared pixels.

    Returns:
        bool [H, W], True where the forward flow of frame a is consistent.
    """
    if fwd.shape != bwd.shape or fwd.ndim != 3 or fwd.shape[2] != 2:
        raise ValueError(f"expected two flows of equal shape [H, W, 2], got {list(fwd.shape)} and {list(bwd.shape)}")
    height, width = fwd.shape[:2]
    bwd_warped = warp_by_flow(bwd, fwd)
    error = np.sum((fwd + bwd_warped) ** 2, axis=-1)
    bound = alpha1 * (np.sum(fwd**2, axis=-1) + np.sum(bwd_warped**2, axis=-1)) + alpha2
    target_x = np.arange(width, dtype=np.float32)[None, :] + fwd[..., 0]
    target_y = np.arange(height, dtype=np.float32)[:, None] + fwd[..., 1]
    inside = (target_x >= -0.5) & (target_x <= width - 0.5) & (target_y >= -0.5) & (target_y <= height - 0.5)
    return (error < bound) & inside


@contextmanager
def opencv_threads(num_threads: int | None = None) -> Iterator[None]:
    """Sets OpenCV's thread count for the block and restores the previous value afterwards.

    Args:
        num_threads: threads to use; None uses every core of the machine (``os.cpu_count()``).
    """
    previous = cv2.getNumThreads()
    cv2.setNumThreads(num_threads if num_threads is not None else max(1, os.cpu_count() or 1))
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def progress_bar(enabled: bool = True) -> Progress:
    """A rich progress bar (description, bar, done/total, elapsed time); a silent no-op when not ``enabled``."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, disable=not enabled)


def estimate_video_flow(
    frames: Sequence[np.ndarray],
    preset: str = "medium",
    progress: bool = True,
    num_threads: int | None = None,
) -> list[FrameFlow]:
    """Forward and backward flow between consecutive frames of a video, with consistency masks.

    Args:
        frames: the video in time order, uint8 RGB [H, W, 3] (or grey [H, W]) images of equal size.
        preset: DIS preset name, one of ``PRESETS``.
        progress: show a rich progress bar.
        num_threads: OpenCV threads (None: all cores).

    Returns:
        One :class:`FrameFlow` per frame: frame i holds the flow i -> i + 1 (``fwd``) and i -> i - 1 (``bwd``),
        each with its forward-backward consistency mask; missing ends are None.
    """
    greys = [to_grey(frame) for frame in frames]
    if any(g.shape != greys[0].shape for g in greys):
        raise ValueError("all frames of a video must have the same size")
    dis = _dis(preset)
    flows = [FrameFlow(None, None, None, None) for _ in greys]
    with opencv_threads(num_threads), progress_bar(progress) as bar:
        task = bar.add_task(f"Optical flow (DIS {preset})", total=max(0, len(greys) - 1))
        for i in range(len(greys) - 1):
            fwd = _estimate_grey(dis, greys[i], greys[i + 1])
            bwd = _estimate_grey(dis, greys[i + 1], greys[i])
            flows[i].fwd, flows[i].fwd_mask = fwd, consistency_mask(fwd, bwd)
            flows[i + 1].bwd, flows[i + 1].bwd_mask = bwd, consistency_mask(bwd, fwd)
            bar.advance(task)
    return flows
