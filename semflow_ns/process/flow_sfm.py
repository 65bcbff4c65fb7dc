"""``sfm-flow``: structure from motion on point tracks from the optical flow (no SIFT), with global mapping.

The tracks of :mod:`semflow_ns.process.flow_tracks` are written into a COLMAP database as keypoints (one set per
frame) and matches: every frame against the frames ``MATCH_GAPS`` later, along the tracks they share. pycolmap
then verifies every pair geometrically (RANSAC fundamental / essential matrix and homography,
``pycolmap.geometric_verification``) and maps the verified matches with ``pycolmap.global_mapping`` (GLOMAP:
rotation averaging, global positioning of cameras and points, bundle adjustment).

Choices, measured on the shared DAVIS clips at 480 px (README, "Real data"):

* **Global, not incremental, mapping.** On the same verified matches, incremental mapping (COLMAP's default
  thresholds) registered all 40 frames of car-shadow but found no model for dog, camel and breakdance, and only
  pieces of blackswan (8 frames, no points) and kite-surf (15 + 15 + 2 frames); global mapping registered every
  frame of car-shadow, dog, camel and kite-surf, with trajectories within 0.5 % of the path of plain SIFT SfM on
  car-shadow and dog, in about the same time (car-shadow 6 s against 9 s).
* **At most ``TRACKS_PER_VIEW`` tracks per frame in the global stages** (``track_required_tracks_per_view``;
  the longest tracks are chosen): dog's mapping fell from 57 s to 14 s with the same trajectory.
* **Tight verification** (``VERIFY_MAX_ERROR_FRACTION`` of the image size, 1 px at 480 px, instead of COLMAP's
  4 px for SIFT): flow tracks are accurate to a fraction of a pixel, and a loose threshold lets drifted points in.
  Watermark detection is off: a static overlay moves against the background and is masked as moving.
* **Points down to ``MIN_TRIANGULATION_DEGREES``, no retriangulation.** GLOMAP keeps points of at least 1
  degree and retriangulates every track at the end with the same threshold: on a clip with little parallax
  (blackswan, breakdance) that deletes every point and the mapping fails, leaving no figure to say why. With
  0.1 degrees and the bundle-adjusted tracks kept as they are (the ``TRACKS_PER_VIEW`` longest per frame),
  such clips give a model, and the parallax guard (:mod:`semflow_ns.process.parallax`) decides whether its
  geometry is constrained. On car-shadow and dog the trajectories stayed within 0.56 % and 0.51 % of the path
  of plain SfM (0.50 % each with retriangulation), and mapping got faster.
* **Deterministic**: fixed seeds for RANSAC and every mapping stage, and mapping on one thread (with two, Ceres
  sums in a varying order and poses differ in the 10th digit between runs; one thread was no slower here).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pycolmap

from semflow_ns.process.flow_tracks import FlowTracks

MATCH_GAPS = (1, 2, 4, 8)
"""Each frame is matched with the frames this many frames later (along the tracks they share)."""
MIN_PAIR_MATCHES = 15
"""Pairs sharing fewer tracks are not written (COLMAP's least number of inliers for a verified pair)."""
VERIFY_MAX_ERROR_FRACTION = 1.0 / 480.0
"""RANSAC threshold of the verification as a fraction of the longer image side (1 px at 480 px)."""
TRACKS_PER_VIEW = 300
"""Tracks per frame used for global positioning and bundle adjustment (the longest ones): the model's points."""
MIN_TRIANGULATION_DEGREES = 0.1
"""GLOMAP drops points triangulated under this angle (default 1 degree); the parallax guard judges the model."""
SEED = 0
"""Random seed of RANSAC and of every mapping stage."""


@dataclass
class FlowSfmOutput:
    """Models of the flow-track database and where the time went."""

    models: dict
    """pycolmap's ``{id: Reconstruction}`` (possibly empty)."""
    pairs: int
    """Frame pairs written (sharing at least ``MIN_PAIR_MATCHES`` tracks)."""
    verified: int
    """Pairs that passed geometric verification."""
    seconds: dict[str, float] = field(default_factory=dict)
    """``database`` (keypoints, matches and verification) and ``mapping``."""


def write_database(
    database: Path, image_dir: Path, names: Sequence[str], tracks: FlowTracks, camera_model: str, threads: int
) -> tuple[int, int]:
    """Writes cameras, images, keypoints and matches of ``tracks`` into ``database`` and verifies the pairs.

    Returns (pairs written, pairs verified).
    """
    pycolmap.Database.open(str(database)).close()
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = camera_model
    pycolmap.import_images(str(database), str(image_dir), pycolmap.CameraMode.SINGLE, list(names), reader)
    pairs = 0
    db = pycolmap.Database.open(str(database))
    try:
        ids = {image.name: image.image_id for image in db.read_all_images()}
        for i, name in enumerate(names):
            db.write_keypoints(ids[name], (tracks.points[i] + 0.5).astype(np.float32))  # COLMAP: centres at +0.5
        for i in range(len(names)):
            for gap in MATCH_GAPS:
                if i + gap < len(names):
                    matches = tracks.matches(i, i + gap)
                    if len(matches) >= MIN_PAIR_MATCHES:
                        db.write_matches(ids[names[i]], ids[names[i + gap]], matches)
                        pairs += 1
        camera = next(iter(db.read_all_cameras()))
        size = max(camera.width, camera.height)
    finally:
        db.close()
    verifier = pycolmap.GeometricVerifierOptions()
    verifier.num_threads = threads
    geometry = pycolmap.TwoViewGeometryOptions()
    geometry.detect_watermark = False
    geometry.compute_relative_pose = True
    geometry.ransac.max_error = VERIFY_MAX_ERROR_FRACTION * size
    geometry.ransac.random_seed = SEED
    pycolmap.geometric_verification(str(database), verifier, two_view_geometry_options=geometry)
    db = pycolmap.Database.open(str(database))
    try:
        verified = int(db.num_verified_image_pairs())
    finally:
        db.close()
    return pairs, verified


def global_options() -> pycolmap.GlobalPipelineOptions:
    """``GlobalPipelineOptions`` of ``sfm-flow`` (see the module docstring)."""
    options = pycolmap.GlobalPipelineOptions()
    options.num_threads = 1
    options.random_seed = SEED
    mapper = options.mapper
    mapper.num_threads = 1
    mapper.random_seed = SEED
    mapper.rotation_averaging.random_seed = SEED
    mapper.global_positioning.random_seed = SEED
    mapper.retriangulation.random_seed = SEED
    mapper.global_positioning.use_gpu = False
    mapper.bundle_adjustment.ceres.use_gpu = False
    mapper.track_required_tracks_per_view = TRACKS_PER_VIEW
    mapper.min_tri_angle_deg = MIN_TRIANGULATION_DEGREES
    mapper.skip_retriangulation = True
    return options


def flow_sfm(
    work: Path, image_dir: Path, names: Sequence[str], tracks: FlowTracks, camera_model: str, threads: int
) -> FlowSfmOutput:
    """Database of ``tracks`` in ``work/database.db``, verified and globally mapped into ``work/sparse``."""
    start = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    database = work / "database.db"
    database.unlink(missing_ok=True)
    pairs, verified = write_database(database, image_dir, names, tracks, camera_model, threads)
    seconds = {"database": time.perf_counter() - start}
    start = time.perf_counter()
    (work / "sparse").mkdir(exist_ok=True)
    models = {}
    if verified:
        pycolmap.set_random_seed(SEED)
        models = pycolmap.global_mapping(str(database), str(image_dir), str(work / "sparse"), global_options())
    seconds["mapping"] = time.perf_counter() - start
    return FlowSfmOutput(dict(models), pairs, verified, seconds)
