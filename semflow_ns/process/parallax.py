"""The parallax guard: is the geometry of an SfM model really constrained, or could the camera only have turned?

A camera that turns on the spot moves the image of every static point by a homography, whatever its depth, so
its video says nothing about depth or translation. SfM still often returns a model for such a clip: with the
focal length and distortion free, a made-up translation and made-up depths explain the tracks as well as the
true rotation does (a synthetic pure pan of the demo scene gave a model of all 30 frames, 0.12 px reprojection
error, median triangulation angle 5 degrees and a path of 0.29 times the median depth: all invented). The
model's own figures cannot tell, so the guard also asks the data:

``rotation_ratio``
    The best explanation of the model's observations by rotation alone (every camera at one point, every
    track a direction instead of a point; one focal length and radial distortion fitted by a search, see
    :func:`fit_rotation_only`) leaves an RMS residual this many times the SfM model's RMS reprojection error
    on the same observations. A pure rotation gives about 1.4 (the free depths of SfM absorb part of the
    tracks' drift), the demo scene seen from a translating camera 14 or more. At least ``MIN_ROTATION_RATIO``
    (2) is required: translation must account for at least half of what rotation leaves unexplained.
``median_triangulation_deg``
    Median over the model's points of the largest angle between two of its viewing rays. Depth error grows as
    the pixel noise over this angle (0.5 px at a 500 px focal length and 1 degree: about 6 %); at least
    ``MIN_TRIANGULATION_DEGREES`` (1 degree, GLOMAP's own threshold for keeping a point).
``baseline_ratio``
    Camera path extent (largest distance between two camera centres) over the median depth of the observed
    points: the triangulation angle a point at the median depth can have at most. At least
    ``MIN_BASELINE_RATIO`` (tan 1 degree), for the same reason.

Only a model that passes all three is accepted as exact; the report carries the three figures of every SfM
step tried (``pose_attempts``) and of the step used (``parallax``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pycolmap
from scipy.optimize import minimize, minimize_scalar

from semflow_ns.process.observations import model_observations
from semflow_ns.process.rotation_only import fit_rotation

MIN_ROTATION_RATIO = 2.0
"""Least ratio of the rotation-only residual to the SfM reprojection error (RMS over the same observations)."""
MIN_TRIANGULATION_DEGREES = 1.0
"""Least median triangulation angle of the model's points."""
MIN_BASELINE_RATIO = math.tan(math.radians(MIN_TRIANGULATION_DEGREES))
"""Least camera path extent over median point depth."""
MAX_POINTS = 1500
"""The figures are computed on at most this many points (every k-th by id), to bound the time (about 1 s)."""
MIN_RESIDUAL_PX = 0.05
"""Floor of the SfM residual in the ratio: tracks are not more precise than this."""
MAX_K1 = 0.5
"""Radial distortion searched by the rotation-only fit: |k1| up to this."""
ALTERNATIONS = 4
"""Rotation / direction alternations per evaluation of a calibration during the search."""
FINAL_ALTERNATIONS = 20
"""Alternations at the calibration found (the residual and rotations reported; 4 left it 15 % too high on the
synthetic pure pan)."""


@dataclass
class RotationFit:
    """The best rotation-only explanation of a model's observations."""

    focal: float
    k1: float
    """SIMPLE_RADIAL distortion of the fitted calibration."""
    principal_point: tuple[float, float]
    """The model's principal point (kept)."""
    world_to_camera: dict[str, np.ndarray]
    """Per image name, the fitted rotation [3, 3] (OpenCV camera axes, world = the model's)."""
    rms_px: float
    """Root mean square residual (px) of the observations."""
    observations: Optional[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(repr=False, default=None)
    """(xy, frames, tracks, start rotations) the fit was made on, for :meth:`rotations_for`."""

    def rotations_for(self, focal: float, k1: float) -> dict[str, np.ndarray]:
        """The best rotations (as ``world_to_camera``) under another calibration, e.g. a field-of-view prior when
        the fitted focal length is implausible (small pans hardly constrain it)."""
        assert self.observations is not None, "a fit without its observations cannot be redone"
        xy, frames, tracks, start = self.observations
        centre = np.asarray(self.principal_point)
        _, rotations = _rotation_residuals(xy, frames, tracks, start, (focal, k1, centre), FINAL_ALTERNATIONS)
        return dict(zip(self.world_to_camera, rotations, strict=True))


@dataclass
class Parallax:
    """The three figures of the guard for one model (see the module docstring)."""

    median_triangulation_deg: float
    baseline_ratio: float
    rotation_ratio: float
    sfm_rms_px: float
    rotation: RotationFit

    def as_dict(self) -> dict[str, Any]:
        """The report entry (rounded)."""
        return {
            "median_triangulation_deg": round(self.median_triangulation_deg, 3),
            "baseline_ratio": round(self.baseline_ratio, 4),
            "rotation_ratio": round(self.rotation_ratio, 2),
        }

    def failure(self) -> Optional[str]:
        """Why the model is not accepted as exact, or None."""
        if self.rotation_ratio < MIN_ROTATION_RATIO:
            return (
                f"no parallax: rotation alone explains the tracks nearly as well (rotation ratio "
                f"{self.rotation_ratio:.2f} < {MIN_ROTATION_RATIO})"
            )
        if self.median_triangulation_deg < MIN_TRIANGULATION_DEGREES:
            return (
                f"too little parallax: median triangulation angle {self.median_triangulation_deg:.2f} deg < "
                f"{MIN_TRIANGULATION_DEGREES}"
            )
        if self.baseline_ratio < MIN_BASELINE_RATIO:
            return (
                f"too little parallax: camera path / median depth {self.baseline_ratio:.4f} < {MIN_BASELINE_RATIO:.4f}"
            )
        return None


def _undistort(xy: np.ndarray, focal: float, k1: float, centre: np.ndarray) -> np.ndarray:
    """Unit viewing rays [M, 3] (OpenCV axes) of pixel positions under a SIMPLE_RADIAL calibration."""
    distorted = (xy - centre) / focal
    normalised = distorted.copy()
    for _ in range(8):  # fixed point of u (1 + k1 |u|^2) = distorted
        normalised = distorted / (1.0 + k1 * np.sum(normalised**2, axis=1, keepdims=True))
    rays = np.concatenate([normalised, np.ones((len(xy), 1))], axis=1)
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def _rotation_residuals(
    xy: np.ndarray,
    frames: np.ndarray,
    tracks: np.ndarray,
    start: np.ndarray,
    calibration: tuple[float, float, np.ndarray],
    alternations: int = ALTERNATIONS,
) -> tuple[np.ndarray, np.ndarray]:
    """Residuals (px) of the best rotations and track directions for one calibration, and the rotations, after
    ``alternations`` rounds of directions-then-rotations from ``start``. ``frames`` must be sorted."""
    focal, k1, centre = calibration
    rays = _undistort(xy, focal, k1, centre)
    rotations = start.copy()
    directions = np.zeros((int(tracks.max()) + 1, 3))
    for _ in range(alternations):
        directions[:] = 0.0
        np.add.at(directions, tracks, np.einsum("nji,nj->ni", rotations[frames], rays))
        directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
        bounds = np.searchsorted(frames, np.arange(len(rotations) + 1))
        for frame in range(len(rotations)):
            mine = slice(bounds[frame], bounds[frame + 1])
            if bounds[frame + 1] - bounds[frame] >= 3:
                rotations[frame] = fit_rotation(directions[tracks[mine]], rays[mine])
    local = np.einsum("nij,nj->ni", rotations[frames], directions[tracks])
    ahead = local[:, 2] > 1e-6
    plane = local[:, :2] / np.where(ahead, local[:, 2], 1.0)[:, None]
    projected = focal * plane * (1.0 + k1 * np.sum(plane**2, axis=1, keepdims=True)) + centre
    residuals = np.where(ahead, np.linalg.norm(projected - xy, axis=1), 1e3)
    return residuals, rotations


def fit_rotation_only(
    xy: np.ndarray, frames: np.ndarray, tracks: np.ndarray, start: np.ndarray, size: tuple[int, int], centre: np.ndarray
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """The calibration (focal, k1) and rotations for which rotation alone best explains the observations.

    Observation ``n`` is pixel ``xy[n]`` of track ``tracks[n]`` in frame ``frames[n]``; ``start`` [F, 3, 3] are the
    initial world-to-camera rotations. The focal length is first searched alone over horizontal fields of view
    of about 14-120 degrees, then together with k1 (|k1| <= ``MAX_K1``, Nelder-Mead), minimising the RMS
    residual. Returns (focal, k1, rotations [F, 3, 3], residuals [N] in px).
    """
    longer = float(max(size))

    def cost(focal: float, k1: float) -> float:
        return float(np.sqrt(np.mean(_rotation_residuals(xy, frames, tracks, start, (focal, k1, centre))[0] ** 2)))

    def best_focal(k1: float) -> float:
        found = minimize_scalar(
            lambda log_f: cost(math.exp(log_f), k1),
            bounds=(math.log(0.3 * longer), math.log(4.0 * longer)),
            method="bounded",
            options={"xatol": 0.01},
        )
        return math.exp(float(found.x))

    focal = best_focal(0.0)
    found = minimize(  # focal length and distortion trade off along a valley: search both at once from there
        lambda p: cost(math.exp(p[0]), float(np.clip(p[1], -MAX_K1, MAX_K1))) + max(0.0, abs(p[1]) - MAX_K1),
        np.array([math.log(focal), 0.0]),
        method="Nelder-Mead",
        options={"initial_simplex": [[math.log(focal), 0.0], [math.log(focal) + 0.1, 0.0], [math.log(focal), 0.1]],
                 "xatol": 0.002, "fatol": 1e-4, "maxfev": 120},
    )  # fmt: skip
    focal, k1 = math.exp(float(found.x[0])), float(np.clip(found.x[1], -MAX_K1, MAX_K1))
    residuals, rotations = _rotation_residuals(xy, frames, tracks, start, (focal, k1, centre), FINAL_ALTERNATIONS)
    return focal, k1, rotations, residuals


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values**2)))


def _triangulation_angles(points: dict[int, list[np.ndarray]], centres: dict[int, list[np.ndarray]]) -> np.ndarray:
    angles = []
    for point_id, xyz in points.items():
        rays = xyz[0] - np.asarray(centres[point_id])
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        angles.append(math.degrees(math.acos(float(np.clip((rays @ rays.T).min(), -1.0, 1.0)))))
    return np.asarray(angles)


def measure_parallax(model: pycolmap.Reconstruction) -> Optional[Parallax]:
    """The guard's figures for ``model`` (None when it has fewer than 2 registered images or no points)."""
    images = sorted((im for im in model.images.values() if im.has_pose), key=lambda im: im.name)
    observations = model_observations(model)
    ids = np.unique(np.concatenate([observations[im.name].point_ids for im in images] or [np.zeros(0, np.int64)]))
    if len(images) < 2 or len(ids) == 0:
        return None
    chosen = set(ids[:: max(1, math.ceil(len(ids) / MAX_POINTS))].tolist())
    xy, frames, tracks, errors, depths = [], [], [], [], []
    seen: dict[int, list[np.ndarray]] = {}
    centres: dict[int, list[np.ndarray]] = {}
    for index, image in enumerate(images):
        obs = observations[image.name]
        keep = np.array([i in chosen for i in obs.point_ids], bool)
        pose = image.cam_from_world()
        depths.append((np.asarray(pose * obs.xyz[keep]).reshape(-1, 3))[:, 2])
        xy.append(obs.xy[keep])
        frames.append(np.full(int(keep.sum()), index))
        tracks.append(obs.point_ids[keep])
        errors.append(obs.error[keep])
        for point_id, xyz in zip(obs.point_ids[keep], obs.xyz[keep], strict=True):
            seen.setdefault(int(point_id), [xyz])
            centres.setdefault(int(point_id), []).append(image.projection_center())
    _, track_index = np.unique(np.concatenate(tracks), return_inverse=True)
    centre_xyz = np.array([im.projection_center() for im in images])
    extent = float(np.max(np.linalg.norm(centre_xyz[:, None] - centre_xyz[None], axis=-1)))
    depth = np.concatenate(depths)
    camera = model.cameras[images[0].camera_id]
    start = np.stack([im.cam_from_world().rotation.matrix() for im in images])
    principal = np.array([camera.principal_point_x, camera.principal_point_y])
    data = (np.concatenate(xy), np.concatenate(frames), track_index, start)
    focal, k1, rotations, residuals = fit_rotation_only(*data, (camera.width, camera.height), principal)
    sfm_rms = float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))
    named = {im.name: r for im, r in zip(images, rotations, strict=True)}
    fit = RotationFit(focal, k1, (float(principal[0]), float(principal[1])), named, _rms(residuals), data)
    return Parallax(
        median_triangulation_deg=float(np.median(_triangulation_angles(seen, centres))),
        baseline_ratio=extent / max(float(np.median(depth[depth > 0])) if (depth > 0).any() else math.inf, 1e-12),
        rotation_ratio=fit.rms_px / max(sfm_rms, MIN_RESIDUAL_PX),
        sfm_rms_px=sfm_rms,
        rotation=fit,
    )
