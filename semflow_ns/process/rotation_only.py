"""Last-resort camera poses: per-frame rotations from static features, no translation.

Used by ``semflow-process-data`` when structure from motion cannot register enough frames - typically a camera
that pans on the spot or barely moves, so there is too little parallax to triangulate. Such a video still
fixes how the camera *turns*: for a rotating camera (or a distant background) the static image points of two
frames are related by the homography ``K R K^-1``. Per pair of consecutive frames:

1. corners (``cv2.goodFeaturesToTrack``) on the static part of frame ``t`` (the moving classes' masks, slightly
   grown, are excluded), tracked into ``t + 1`` with pyramidal Lucas-Kanade and back again; tracks that do not
   return within 1 px, or that land on a moving object, are dropped;
2. ``cv2.findHomography`` with RANSAC picks the tracks consistent with one homography (the background);
3. the rotation is the least-squares (Kabsch / orthogonal Procrustes) fit between the inliers' viewing rays
   (undistorted with the intrinsics), which is the SO(3) projection of ``K^-1 H K`` weighted by the data.

Rotations are chained from frame 0 (the world frame); every camera sits at the origin. The focal length comes
from a partial SfM model when one is plausible, otherwise from a horizontal field-of-view prior
(``FOV_PRIOR_DEGREES``). The poses are approximate: the scene is marked ``approximate_poses`` so the model
refines them in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np

from semflow_ns.data.format import Intrinsics
from semflow_ns.process import ProcessError

FOV_PRIOR_DEGREES = 57.0
"""Horizontal field of view assumed when no SfM model gives a focal length: the middle of the usual range of
phone main cameras and consumer camcorders (about 50-65 degrees for the long side of a 16:9 video)."""
PLAUSIBLE_FOV_DEGREES = (20.0, 110.0)
"""A focal length from a partial SfM model is used only when its horizontal field of view lies in this range."""
DEPTH_PRIOR = (1.0, 20.0)
"""Near and far depth of a scene with rotation-only poses (unless ``--bounds`` is given). A camera that only
turns tells nothing about depth, so only the ratio matters: the written world puts the nearest content at about
1 and samples densely out to 20 times that, in disparity, with everything farther contracted by the model. The
scene box then spans the frustums out to 20 (about 22 units across at a 57 degree field of view, instead of the
+-900 units that a 0.1-100 range gave)."""
MIN_PAIR_INLIERS = 20
"""A frame pair needs this many static tracks consistent with one homography to give a rotation."""
MIN_STATIC_FRACTION = 0.02
"""A frame whose static (unmasked) area is below this fraction of the image has nothing to track."""

ADVICE = (
    "What to try: masks that cover only the moving objects (the static background must stay visible and "
    "textured), fewer dropped frames (a smaller --frame-step, so consecutive frames overlap), a larger "
    "--max-size, or supply the cameras with --poses transforms.json | poses_bounds.npy."
)


@dataclass
class RotationOnlyResult:
    """Rotation-only cameras of every frame (all at the origin), in OpenGL camera-to-world convention."""

    camera_to_world: np.ndarray
    """[N, 4, 4]; frame 0 is the identity."""
    intrinsics: Intrinsics
    residual_px: float
    """Mean distance (px) between tracked static points and their position predicted by the pair rotation,
    over the homography inliers of all pairs: how well a pure rotation explains the background motion."""
    pair_inliers: list[int] = field(default_factory=list)
    """Inlier tracks per consecutive pair (0 for a pair whose rotation was bridged)."""
    bridged: list[int] = field(default_factory=list)
    """Pairs ``(t, t + 1)``, by ``t``, with too few tracks: their rotation is the mean of the neighbouring
    pairs' rotations (constant turning speed)."""


def prior_intrinsics(width: int, height: int, fov_degrees: float = FOV_PRIOR_DEGREES) -> Intrinsics:
    """Pinhole intrinsics with the given horizontal field of view and the principal point at the centre."""
    focal = 0.5 * width / np.tan(np.radians(fov_degrees) / 2.0)
    return Intrinsics(fl_x=focal, fl_y=focal, cx=width / 2.0, cy=height / 2.0, w=width, h=height)


def horizontal_fov_degrees(intrinsics: Intrinsics) -> float:
    """Horizontal field of view of ``intrinsics`` in degrees."""
    return float(np.degrees(2.0 * np.arctan(0.5 * intrinsics.w / intrinsics.fl_x)))


def is_plausible(intrinsics: Intrinsics) -> bool:
    """Whether a (possibly badly constrained) SfM camera is usable: field of view in ``PLAUSIBLE_FOV_DEGREES``,
    square pixels within 10 %, and a moderate radial distortion."""
    fov = horizontal_fov_degrees(intrinsics)
    square = abs(intrinsics.fl_x / intrinsics.fl_y - 1.0) < 0.1
    return PLAUSIBLE_FOV_DEGREES[0] <= fov <= PLAUSIBLE_FOV_DEGREES[1] and square and abs(intrinsics.k1) < 0.5


def _camera(intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    matrix = np.array([[intrinsics.fl_x, 0, intrinsics.cx], [0, intrinsics.fl_y, intrinsics.cy], [0, 0, 1.0]])
    distortion = np.array([intrinsics.k1, intrinsics.k2, intrinsics.p1, intrinsics.p2], dtype=np.float64)
    return matrix, distortion


def _rays(points: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Unit viewing rays [M, 3] (OpenCV camera axes) of pixel positions [M, 2]; pixel centres at +0.5."""
    matrix, distortion = _camera(intrinsics)
    normalised = cv2.undistortPoints(points.reshape(-1, 1, 2).astype(np.float64) + 0.5, matrix, distortion)
    rays = np.concatenate([normalised.reshape(-1, 2), np.ones((len(points), 1))], axis=1)
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def fit_rotation(rays_a: np.ndarray, rays_b: np.ndarray) -> np.ndarray:
    """The rotation ``R`` minimising ``sum |R a - b|^2`` over corresponding unit rays (Kabsch)."""
    u, _, vt = np.linalg.svd(rays_b.T @ rays_a)
    return u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt


def _static_mask(static: Optional[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """uint8 mask (255 = may track) of the static area, moving objects grown by about 1 % of the image size."""
    if static is None:
        return np.full(shape, 255, np.uint8)
    size = max(3, int(round(0.01 * max(shape))) | 1)
    return cv2.erode(static.astype(np.uint8) * 255, np.ones((size, size), np.uint8))


def track_static_points(
    gray_a: np.ndarray, gray_b: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Static corners of frame a and where they are in frame b ([M, 2] each, pixel coordinates), keeping only
    tracks that survive the forward-backward check (1 px) and land on the static area of frame b."""
    height, width = gray_a.shape
    corners = cv2.goodFeaturesToTrack(
        gray_a, maxCorners=1000, qualityLevel=0.005, minDistance=max(4, width // 120), mask=mask_a, blockSize=5
    )
    if corners is None or len(corners) < MIN_PAIR_INLIERS:
        return np.zeros((0, 2)), np.zeros((0, 2))
    lk = {"winSize": (21, 21), "maxLevel": 3, "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)}
    forward, ok_f, _ = cv2.calcOpticalFlowPyrLK(gray_a, gray_b, corners, None, **lk)
    back, ok_b, _ = cv2.calcOpticalFlowPyrLK(gray_b, gray_a, forward, None, **lk)
    a, b = corners.reshape(-1, 2), forward.reshape(-1, 2)
    good = (ok_f.ravel() == 1) & (ok_b.ravel() == 1) & (np.linalg.norm(back.reshape(-1, 2) - a, axis=1) < 1.0)
    inside = (b[:, 0] >= 0) & (b[:, 0] <= width - 1) & (b[:, 1] >= 0) & (b[:, 1] <= height - 1)
    good &= inside
    xb, yb = np.round(b[good]).astype(int).T
    keep = np.flatnonzero(good)[mask_b[yb, xb] > 0]
    return a[keep].astype(np.float64), b[keep].astype(np.float64)


def pair_rotation(
    points_a: np.ndarray, points_b: np.ndarray, intrinsics: Intrinsics
) -> Optional[tuple[np.ndarray, np.ndarray, int]]:
    """Rotation ``R`` (OpenCV camera axes, ``ray_b = R ray_a``) between two frames from tracked static points.

    Returns (R, per-inlier residuals in px, number of inliers), or None with fewer than ``MIN_PAIR_INLIERS``
    homography inliers.
    """
    if len(points_a) < MIN_PAIR_INLIERS:
        return None
    threshold = max(1.0, 0.004 * max(intrinsics.w, intrinsics.h))
    _, inlier_mask = cv2.findHomography(points_a, points_b, cv2.RANSAC, threshold, maxIters=2000, confidence=0.999)
    if inlier_mask is None or int(inlier_mask.sum()) < MIN_PAIR_INLIERS:
        return None
    inliers = inlier_mask.ravel().astype(bool)
    rays_a, rays_b = _rays(points_a[inliers], intrinsics), _rays(points_b[inliers], intrinsics)
    rotation = fit_rotation(rays_a, rays_b)
    matrix, distortion = _camera(intrinsics)
    predicted, _ = cv2.projectPoints(
        (rays_a @ rotation.T).reshape(-1, 1, 3), np.zeros(3), np.zeros(3), matrix, distortion
    )
    residuals = np.linalg.norm(predicted.reshape(-1, 2) - 0.5 - points_b[inliers], axis=1)
    return rotation, residuals, int(inliers.sum())


def _to_gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def rotation_only_poses(
    images: Sequence[np.ndarray], static: Sequence[Optional[np.ndarray]], intrinsics: Intrinsics
) -> RotationOnlyResult:
    """Chains consecutive-frame rotations into a trajectory (see the module docstring).

    Args:
        images: RGB (or grey) frames in video order, all of the intrinsics' size.
        static: per frame a bool mask, True where the scene is static (may be tracked), or None (all static).
        intrinsics: the camera shared by all frames.

    Raises:
        ProcessError: fewer than 3 frames, masks that leave (almost) nothing static, or fewer than half of the
            consecutive pairs with enough static tracks; the message says what to try.
    """
    count = len(images)
    if count < 3:
        raise ProcessError(f"rotation-only poses: {count} frame(s); at least 3 are needed. {ADVICE}")
    shape = images[0].shape[:2]
    masks = [_static_mask(s, shape) for s in static]
    empty = [i for i, m in enumerate(masks) if (m > 0).mean() < MIN_STATIC_FRACTION]
    if len(empty) > count // 2:
        raise ProcessError(
            f"rotation-only poses: the masks leave less than {MIN_STATIC_FRACTION:.0%} of the image static in "
            f"{len(empty)} of {count} frames, so there is no background to track the camera with. {ADVICE}"
        )
    grays = [_to_gray(np.asarray(image)) for image in images]
    relative: list[Optional[np.ndarray]] = []
    inlier_counts, residuals = [], []
    for t in range(count - 1):
        points_a, points_b = track_static_points(grays[t], grays[t + 1], masks[t], masks[t + 1])
        found = pair_rotation(points_a, points_b, intrinsics)
        relative.append(None if found is None else found[0])
        inlier_counts.append(0 if found is None else found[2])
        if found is not None:
            residuals.append(found[1])
    bridged = [t for t, r in enumerate(relative) if r is None]
    if len(bridged) > (count - 1) // 2:
        raise ProcessError(
            f"rotation-only poses: only {count - 1 - len(bridged)} of {count - 1} consecutive frame pairs share "
            f"{MIN_PAIR_INLIERS} or more static features (the background is masked, textureless, or changes too "
            f"much between frames). {ADVICE}"
        )
    filled = _bridge(relative)
    world_to_camera = np.eye(3)
    c2w = np.tile(np.eye(4), (count, 1, 1))
    for t in range(count):
        if t > 0:
            world_to_camera = filled[t - 1] @ world_to_camera
        c2w[t, :3, :3] = world_to_camera.T
    c2w[:, :3, 1:3] *= -1.0  # OpenCV -> OpenGL camera axes
    return RotationOnlyResult(
        camera_to_world=c2w,
        intrinsics=intrinsics,
        residual_px=float(np.concatenate(residuals).mean()),
        pair_inliers=inlier_counts,
        bridged=bridged,
    )


def _bridge(relative: list[Optional[np.ndarray]]) -> list[np.ndarray]:
    """Fills missing pair rotations with the chordal mean of the nearest known ones on both sides."""
    known = [t for t, r in enumerate(relative) if r is not None]
    out = []
    for t, rotation in enumerate(relative):
        if rotation is not None:
            out.append(rotation)
            continue
        before = [k for k in known if k < t][-1:]
        after = [k for k in known if k > t][:1]
        mean = sum(relative[k] for k in before + after)  # type: ignore[misc]
        u, _, vt = np.linalg.svd(mean)
        out.append(u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt)
    return out
