"""Camera poses and intrinsics of a video by structure from motion with pycolmap (CPU, no weights).

The measured recipe (README, ``semflow-process-data``, pose step ``sfm``): SIFT features with the moving objects
masked out (COLMAP ignores keypoints where the mask is 0; masks are ``<image name>.png``), one shared camera
(``CameraMode.SINGLE``, SIMPLE_RADIAL by default), sequential matching (overlap 10, no loop detection),
incremental mapping with several models allowed, and the model with the most registered frames kept (never
simply the first). Poses are converted from COLMAP's world-to-camera (OpenCV axes) to OpenGL
camera-to-world by inverting and negating the camera y and z axes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pycolmap
from scipy.spatial.transform import Rotation, Slerp

from semflow_ns.data.format import Intrinsics
from semflow_ns.process import ProcessError
from semflow_ns.process.observations import Observations, model_observations

CAMERA_MODELS = ("SIMPLE_RADIAL", "SIMPLE_PINHOLE", "PINHOLE", "RADIAL", "OPENCV")
"""COLMAP camera models that map onto the scene format's pinhole + OpenCV distortion intrinsics."""

SEED = 0
"""Random seed of RANSAC and mapping: the same clip gives the same poses."""
MAPPING_THREADS = 1
"""Threads of incremental mapping: pycolmap's mapping is deterministic only on one."""

ADVICE = (
    "What to try: a clip in which the camera moves (translates) more - SfM needs parallax, a static camera or "
    "one that only turns on the spot is not enough; a larger --frame-step (more motion between frames) or more frames; a "
    "larger --max-size (more features); masks/labels that cover every moving object; or supply the poses "
    "with --poses transforms.json | poses_bounds.npy."
)


@dataclass
class SfmResult:
    """What pycolmap reconstructed, in COLMAP's world (arbitrary scale) with OpenGL camera axes."""

    camera_to_world: np.ndarray
    """[N, 4, 4] per input frame; NaN for frames the model did not register."""
    registered: np.ndarray
    """bool [N]."""
    intrinsics: Intrinsics
    points: np.ndarray
    """[M, 3] triangulated scene points."""
    reprojection_error: float
    """Mean reprojection error in pixels."""
    num_models: int
    model: Optional[pycolmap.Reconstruction] = None
    """The model the poses came from (the largest one, for joined models), for the parallax guard."""
    observations: dict[int, Observations] = field(default_factory=dict)
    """Per registered frame (index into the frames) its triangulated keypoints, in the poses' world."""


def intrinsics_from_camera(camera: pycolmap.Camera) -> Intrinsics:
    """Scene-format intrinsics of a COLMAP camera (pixel centres at +0.5 in both conventions)."""
    p = [float(v) for v in camera.params]
    size = {"w": int(camera.width), "h": int(camera.height)}
    model = camera.model_name if hasattr(camera, "model_name") else str(camera.model).split(".")[-1]
    if model == "SIMPLE_PINHOLE":
        return Intrinsics(fl_x=p[0], fl_y=p[0], cx=p[1], cy=p[2], **size)
    if model == "PINHOLE":
        return Intrinsics(fl_x=p[0], fl_y=p[1], cx=p[2], cy=p[3], **size)
    if model == "SIMPLE_RADIAL":
        return Intrinsics(fl_x=p[0], fl_y=p[0], cx=p[1], cy=p[2], k1=p[3], **size)
    if model == "RADIAL":
        return Intrinsics(fl_x=p[0], fl_y=p[0], cx=p[1], cy=p[2], k1=p[3], k2=p[4], **size)
    if model == "OPENCV":
        return Intrinsics(fl_x=p[0], fl_y=p[1], cx=p[2], cy=p[3], k1=p[4], k2=p[5], p1=p[6], p2=p[7], **size)
    raise ProcessError(f"COLMAP camera model {model} is not supported; use one of {CAMERA_MODELS}")


def opengl_camera_to_world(image: pycolmap.Image) -> np.ndarray:
    """OpenGL camera-to-world [4, 4] of a registered COLMAP image."""
    world_to_camera = np.eye(4)
    world_to_camera[:3] = image.cam_from_world().matrix()
    c2w = np.linalg.inv(world_to_camera)
    c2w[:3, 1:3] *= -1.0
    return c2w


def prepare_database(work: Path, image_dir: Path, mask_dir: Path, names: Sequence[str], settings: dict) -> Path:
    """SIFT extraction (moving objects masked) and sequential matching into ``work/database.db``; returns its path.

    ``settings``: ``camera_model``, ``num_threads``, ``max_num_features``. The database is reused by every
    mapping attempt of the pose fallback chain (:mod:`semflow_ns.process.pose_chain`).
    """
    database = work / "database.db"
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = settings["camera_model"]
    reader.mask_path = str(mask_dir)
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = settings["num_threads"]
    extraction.use_gpu = False
    extraction.sift.max_num_features = settings["max_num_features"]
    pycolmap.extract_features(
        str(database), str(image_dir), image_names=list(names), camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu,
    )  # fmt: skip
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = settings["num_threads"]
    matching.use_gpu = False
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = 10
    pairing.loop_detection = False
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = SEED  # each pair's RANSAC is seeded: the same matches whatever the threads
    pycolmap.match_sequential(
        str(database), matching_options=matching, pairing_options=pairing, verification_options=verification,
        device=pycolmap.Device.cpu,
    )  # fmt: skip
    return database


def map_database(
    database: Path,
    image_dir: Path,
    output: Path,
    num_threads: int,
    configure: Optional[Callable[[pycolmap.IncrementalPipelineOptions], None]] = None,
) -> dict:
    """Incremental mapping of ``database`` into ``output`` (created); returns pycolmap's ``{id: Reconstruction}``.

    Without ``configure`` this is the measured default recipe with a fixed random seed (``SEED``); ``configure``
    may change the options first. pycolmap's incremental mapping is deterministic only on one thread (with
    several, relaxed SfM on the synthetic pure pan of the tests kept all 8 frames in about 1 run in 40), which
    is what the pose chain uses (``MAPPING_THREADS``).
    """
    pycolmap.set_random_seed(SEED)
    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.num_threads = num_threads
    mapping.random_seed = SEED
    if configure is not None:
        configure(mapping)
    output.mkdir(exist_ok=True)
    return pycolmap.incremental_mapping(str(database), str(image_dir), str(output), options=mapping)


def result_from_models(models: dict, names: Sequence[str]) -> SfmResult:
    """The model with the most registered frames as an ``SfmResult`` over ``names``.

    Raises:
        ProcessError: no model at all (no initial image pair found).
    """
    if not models:
        raise ProcessError(f"structure from motion registered no frames (no initial image pair found). {ADVICE}")
    best = max(models.values(), key=lambda rec: rec.num_reg_images())
    by_name = {image.name: image for image in best.images.values() if image.has_pose}
    seen = model_observations(best)
    c2w = np.full((len(names), 4, 4), np.nan)
    for i, name in enumerate(names):
        if name in by_name:
            c2w[i] = opengl_camera_to_world(by_name[name])
    points = np.array([p.xyz for p in best.points3D.values()], dtype=np.float64).reshape(-1, 3)
    return SfmResult(
        camera_to_world=c2w,
        registered=~np.isnan(c2w[:, 0, 0]),
        intrinsics=intrinsics_from_camera(next(iter(best.cameras.values()))),
        points=points,
        reprojection_error=float(best.compute_mean_reprojection_error()),
        num_models=len(models),
        model=best,
        observations={i: seen[name] for i, name in enumerate(names) if name in seen},
    )


@dataclass
class PoseCompletion:
    """Poses of every kept frame after dealing with the frames SfM did not register."""

    camera_to_world: np.ndarray
    """[K, 4, 4] for the kept frames ``first .. last`` (inclusive)."""
    first: int
    last: int
    interpolated: list[int]
    """Indices (into the input frames) whose poses were interpolated from their registered neighbours."""


def _interpolate(c2w: np.ndarray, registered: np.ndarray, index: int) -> np.ndarray:
    before = max(i for i in range(index) if registered[i])
    after = min(i for i in range(index + 1, len(registered)) if registered[i])
    weight = (index - before) / (after - before)
    rotations = Rotation.from_matrix(np.stack([c2w[before, :3, :3], c2w[after, :3, :3]]))
    out = np.eye(4)
    out[:3, :3] = Slerp([0.0, 1.0], rotations)([weight]).as_matrix()[0]
    out[:3, 3] = (1 - weight) * c2w[before, :3, 3] + weight * c2w[after, :3, 3]
    return out


def complete_poses(result: SfmResult, min_registered: float) -> PoseCompletion:
    """Drops unregistered frames at the start and end of the video and interpolates poses of interior ones.

    Raises:
        ProcessError: fewer than ``min_registered`` (a fraction) of the frames, or fewer than 3, registered.
    """
    registered = result.registered
    count, total = int(registered.sum()), len(registered)
    if count < max(3, min_registered * total):
        raise ProcessError(
            f"structure from motion registered only {count} of {total} frames (at least "
            f"{max(3, int(np.ceil(min_registered * total)))} needed, see --min-registered). {ADVICE}"
        )
    indices = np.flatnonzero(registered)
    first, last = int(indices[0]), int(indices[-1])
    c2w = result.camera_to_world.copy()
    interpolated = [i for i in range(first, last + 1) if not registered[i]]
    for i in interpolated:
        c2w[i] = _interpolate(result.camera_to_world, registered, i)
    return PoseCompletion(c2w[first : last + 1], first, last, interpolated)
