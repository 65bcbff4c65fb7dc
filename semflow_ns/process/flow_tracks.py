"""Long point tracks through dense optical flow, over the static part of a video (the input of ``sfm-flow``).

ParticleSfM's idea without its learned parts: the forward-backward checked DIS flow that ``semflow-process-data``
computes anyway already says where every pixel goes, far more densely than SIFT finds matches on blurry,
low-texture clips. A track is a point followed through the one-frame forward flows:

1. **Seeding.** Every frame is cut into square cells of ``spacing`` pixels (every 8 px at 480 px width). A cell
   that holds no live track gets a new one at its most trackable static pixel (largest smaller eigenvalue of
   the structure tensor, Shi-Tomasi), when that pixel is textured at all (at least ``SEED_QUALITY`` of the
   frame's best). Flow in a textureless cell is interpolated by DIS from its surroundings, not measured.
2. **Following.** A live track at ``x`` in frame ``t`` goes to ``x + fwd_t(x)`` (bilinear), refined to subpixel
   accuracy by pyramidal Lucas-Kanade started from there (kept when it moves the point by less than 1 px and its
   window lies inside the image, so the flow decides where the point goes and Lucas-Kanade only sharpens it; on
   the demo scene this more than halves the drift after 10 frames, median 1.5 to 0.6 px). The track ends when
   the forward flow is not forward-backward consistent around ``x`` (any of the four neighbouring pixels fails
   the check: occlusion, disocclusion, unreliable flow), when it leaves the image, or when it lands on a pixel
   that is not static in ``t + 1``.
3. **Thinning.** When two live tracks drift into the same half-cell, the older one is kept, so a frame holds at
   most about two tracks per cell and memory stays proportional to frames times cells.
4. Tracks seen in fewer than ``min_length`` frames are dropped: a two-frame track constrains nothing that the
   pairwise matches do not.

"Static" is decided by the caller (:func:`static_for_tracking`: flow motion masks and moving classes of the
labels). Positions use the flow convention (pixel centres at integer coordinates).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from semflow_ns.data.producers.optical_flow import FrameFlow

TRACK_SPACING_FRACTION = 1.0 / 60.0
"""Seed cell as a fraction of the image width: every 8 px at 480 px (about 2000 cells at 480 x 270)."""
MIN_TRACK_LENGTH = 3
"""Tracks seen in fewer frames are dropped."""
SEED_QUALITY = 0.01
"""A cell is seeded only where the corner response reaches this fraction of the frame's largest one (the
``qualityLevel`` of ``cv2.goodFeaturesToTrack``)."""
MOVING_BORDER_FRACTION = 0.01
"""Pixels this close (fraction of the image diagonal) to a moving region are not tracked: flow is blurred across
motion boundaries (the band the flow motion masks mark unknown)."""
LUCAS_KANADE = {
    "winSize": (11, 11),
    "maxLevel": 1,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.01),
    "flags": cv2.OPTFLOW_USE_INITIAL_FLOW,
}
"""Subpixel refinement of each flow step (started from the flow's prediction, so one pyramid level suffices)."""


@dataclass
class FlowTracks:
    """Tracks as per-frame observations: frame ``t`` sees the tracks ``ids[t]`` at ``points[t]``."""

    points: list[np.ndarray]
    """Per frame float32 [K_t, 2], (x, y) in pixels, pixel centres at integer coordinates."""
    ids: list[np.ndarray]
    """Per frame int64 [K_t], the track of each observation."""
    lengths: np.ndarray
    """int64 [T], frames each track is seen in (only tracks of at least ``min_length`` frames are kept)."""

    @property
    def count(self) -> int:
        return len(self.lengths)

    def matches(self, first: int, second: int) -> np.ndarray:
        """uint32 [M, 2]: indices into ``points[first]`` and ``points[second]`` of the tracks seen in both."""
        _, index_a, index_b = np.intersect1d(self.ids[first], self.ids[second], return_indices=True)
        return np.stack([index_a, index_b], axis=1).astype(np.uint32).reshape(-1, 2)


def track_spacing(width: int) -> int:
    """Seed cell size in pixels for frames ``width`` pixels wide (at least 4)."""
    return max(4, round(TRACK_SPACING_FRACTION * width))


def static_for_tracking(motion: np.ndarray, label_static: Optional[np.ndarray]) -> np.ndarray:
    """Where tracks may be: not moving in the flow motion mask (``motion`` uint8 levels, 255 moving; grown by
    ``MOVING_BORDER_FRACTION`` of the diagonal) and, with labels, not on a moving class (``label_static``)."""
    height, width = motion.shape
    radius = max(1, round(MOVING_BORDER_FRACTION * float(np.hypot(height, width))))
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    static = cv2.dilate((motion == 255).astype(np.uint8), kernel) == 0
    return static if label_static is None else static & label_static


def _bilinear(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``field`` [H, W, C] sampled at ``points`` [K, 2] (clamped to the image)."""
    height, width = field.shape[:2]
    x = np.clip(points[:, 0], 0, width - 1.001)
    y = np.clip(points[:, 1], 0, height - 1.001)
    x0, y0 = x.astype(np.int64), y.astype(np.int64)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = field[y0, x0] * (1 - fx) + field[y0, x0 + 1] * fx
    bottom = field[y0 + 1, x0] * (1 - fx) + field[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _all_valid(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """True where the four pixels around each point are all True in ``mask``."""
    height, width = mask.shape
    x0 = np.clip(np.floor(points[:, 0]).astype(np.int64), 0, width - 2)
    y0 = np.clip(np.floor(points[:, 1]).astype(np.int64), 0, height - 2)
    return mask[y0, x0] & mask[y0, x0 + 1] & mask[y0 + 1, x0] & mask[y0 + 1, x0 + 1]


def _thin(points: np.ndarray, ids: np.ndarray, cell: float) -> np.ndarray:
    """Sorted indices of the tracks to keep: the oldest (smallest id) in each cell of size ``cell``."""
    keys = np.floor(points[:, 1] / cell).astype(np.int64) * 1_000_000 + np.floor(points[:, 0] / cell).astype(np.int64)
    order = np.lexsort((ids, keys))
    first = np.ones(len(order), bool)
    first[1:] = keys[order][1:] != keys[order][:-1]
    return np.sort(order[first])


def _seeds(points: np.ndarray, static: np.ndarray, grey: np.ndarray, spacing: int) -> np.ndarray:
    """New track positions [S, 2]: per cell without a live track, its most trackable static pixel."""
    height, width = static.shape
    rows, cols = height // spacing, width // spacing
    taken = np.zeros((rows, cols), bool)
    if len(points):
        r = np.clip((points[:, 1] // spacing).astype(np.int64), 0, rows - 1)
        c = np.clip((points[:, 0] // spacing).astype(np.int64), 0, cols - 1)
        taken[r, c] = True
    response = cv2.cornerMinEigenVal(grey, 3)
    score = np.where(static, response, -1.0)[: rows * spacing, : cols * spacing]
    cells = score.reshape(rows, spacing, cols, spacing).transpose(0, 2, 1, 3).reshape(rows, cols, -1)
    best = cells.argmax(-1)
    value = np.take_along_axis(cells, best[..., None], -1)[..., 0]
    r, c = np.nonzero(~taken & (value > SEED_QUALITY * max(float(response.max()), 1e-12)))
    offset = best[r, c]
    return np.stack([c * spacing + offset % spacing, r * spacing + offset // spacing], axis=1).astype(np.float32)


def _step(
    points: np.ndarray, flow: FrameFlow, grey_a: np.ndarray, grey_b: np.ndarray, static_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``points`` in the next frame and which tracks go on (see the module docstring, step 2)."""
    assert flow.fwd is not None and flow.fwd_mask is not None
    height, width = static_b.shape
    moved = points + _bilinear(flow.fwd, points).astype(np.float32)
    if len(points):
        refined, status, _ = cv2.calcOpticalFlowPyrLK(
            grey_a, grey_b, points.reshape(-1, 1, 2), moved.reshape(-1, 1, 2).copy(), **LUCAS_KANADE
        )
        refined = refined.reshape(-1, 2)
        margin = LUCAS_KANADE["winSize"][0] // 2 + 1  # windows cut by the border give biased positions
        inside = np.all((refined >= margin) & (refined <= [width - 1 - margin, height - 1 - margin]), axis=1)
        sharpened = (status.ravel() == 1) & inside & (np.linalg.norm(refined - moved, axis=1) < 1.0)
        moved = np.where(sharpened[:, None], refined, moved)
    ok = _all_valid(flow.fwd_mask, points)
    ok &= (moved[:, 0] >= 0) & (moved[:, 0] <= width - 1) & (moved[:, 1] >= 0) & (moved[:, 1] <= height - 1)
    landed = np.round(moved[ok]).astype(np.int64)
    ok[ok] = static_b[landed[:, 1], landed[:, 0]]
    return moved, ok


def build_tracks(
    flows: Sequence[FrameFlow],
    greys: Sequence[np.ndarray],
    static: Sequence[np.ndarray],
    spacing: int,
    min_length: int = MIN_TRACK_LENGTH,
) -> FlowTracks:
    """Tracks through the forward flows of a video (see the module docstring).

    Args:
        flows: per frame the flow of :func:`~semflow_ns.data.producers.optical_flow.estimate_video_flow`.
        greys: per frame the uint8 grey image [H, W].
        static: per frame bool [H, W], True where tracks may be.
        spacing: seed cell in pixels (:func:`track_spacing`).
        min_length: tracks seen in fewer frames are dropped.
    """
    points, ids = np.zeros((0, 2), np.float32), np.zeros(0, np.int64)
    next_id = 0
    seen_points: list[np.ndarray] = []
    seen_ids: list[np.ndarray] = []
    for t in range(len(flows)):
        seeds = _seeds(points, static[t], greys[t], spacing)
        points = np.concatenate([points, seeds])
        ids = np.concatenate([ids, np.arange(next_id, next_id + len(seeds))])
        next_id += len(seeds)
        seen_points.append(points)
        seen_ids.append(ids)
        if t + 1 == len(flows) or flows[t].fwd is None:
            break
        moved, ok = _step(points, flows[t], greys[t], greys[t + 1], static[t + 1])
        points, ids = moved[ok], ids[ok]
        keep = _thin(points, ids, spacing / 2.0)
        points, ids = points[keep], ids[keep]
    lengths = np.bincount(np.concatenate(seen_ids), minlength=next_id)
    long_enough = lengths >= min_length
    renumber = np.cumsum(long_enough) - 1
    out_points, out_ids = [], []
    for frame_points, frame_ids in zip(seen_points, seen_ids, strict=True):
        keep = long_enough[frame_ids]
        out_points.append(frame_points[keep].astype(np.float32))
        out_ids.append(renumber[frame_ids[keep]].astype(np.int64))
    return FlowTracks(out_points, out_ids, lengths[long_enough].astype(np.int64))
