"""Camera poses for ``semflow-process-data``: a chain of steps, each tried only when the previous one failed.

A step *succeeds* when its poses cover at least ``--min-registered`` of the frames (at least 3) and, for the
SfM steps, triangulate at least ``MIN_POINTS`` points and pass the parallax guard
(:mod:`semflow_ns.process.pose_steps`, :mod:`semflow_ns.process.parallax`). The steps (names as in the report's
``pose_step``):

``sfm-flow``
    Structure from motion on long point tracks through the optical flow (:mod:`semflow_ns.process.flow_tracks`,
    :mod:`semflow_ns.process.flow_sfm`): no feature extraction (the flow is computed for the scene anyway), far
    more correspondences than SIFT on blurry clips, and global mapping. First because it is the cheapest SfM
    step and, on the clips where plain SfM works, agrees with it (README, "Real data").
``sfm``, ``sfm-subsampled``, ``sfm-relaxed``, ``sfm-merged``
    The SIFT steps (:mod:`semflow_ns.process.sift_steps`). They run when ``sfm-flow`` failed for want of tracks
    or of a model, but not when its model failed the parallax guard: they see the same camera motion (on the
    synthetic pure pan, relaxed SIFT SfM returns made-up translations as ``sfm-flow`` does) and cost more.
``rotation-only``
    The last resort: rotations without translation. After an ``sfm-flow`` model without parallax, the rotations
    and the focal length / distortion of the best rotation-only fit to its tracks (the parallax guard's own fit);
    otherwise :mod:`semflow_ns.process.rotation_only` (tracked static corners; focal length from the guard's fit
    to the last SfM model rejected for want of parallax, a plausible partial model, or a field-of-view prior). Always gives every frame a pose unless the input has
    nothing static to track; the scene is marked ``approximate_poses``.

``--pose-fallback sfm-only`` runs only ``sfm`` and ``sfm-flow-only`` only ``sfm-flow``; both fail when it fails.
``--pose-fallback rotation-only`` skips SfM: rotation-only poses with a field-of-view prior focal length (a camera
known to turn on a tripod, or the scene a clip would get without translation, for comparison).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import pycolmap
from rich.console import Console

from semflow_ns.data.format import Intrinsics
from semflow_ns.data.producers.optical_flow import to_grey
from semflow_ns.process import ProcessError
from semflow_ns.process.flow_sfm import flow_sfm
from semflow_ns.process.flow_tracks import build_tracks, track_spacing
from semflow_ns.process.parallax import Parallax
from semflow_ns.process.pose_steps import ChainInputs, PoseAttempt, PoseResult, accept, pose_result
from semflow_ns.process.rotation_only import (
    FOV_PRIOR_DEGREES,
    horizontal_fov_degrees,
    is_plausible,
    prior_intrinsics,
    rotation_only_poses,
)
from semflow_ns.process.sfm import (
    ADVICE,
    MAPPING_THREADS,
    intrinsics_from_camera,
    map_database,
    prepare_database,
    result_from_models,
)
from semflow_ns.process.sift_steps import MERGE_MIN_SHARED, keep_model, sift_chain

POSE_STEPS = ("sfm-flow", "sfm", "sfm-subsampled", "sfm-relaxed", "sfm-merged", "rotation-only")
"""The steps of the chain, in the order they are tried."""
POSE_FALLBACKS = ("auto", "sfm-only", "sfm-flow-only", "rotation-only")
"""``--pose-fallback`` values: the whole chain, or one SfM step alone."""
MIN_TRACKS = 100
"""``sfm-flow`` needs at least this many static tracks (of 3 frames or more)."""


def _flow_step(
    inputs: ChainInputs, settings: dict[str, Any], min_registered: float, attempts: list[PoseAttempt]
) -> Optional[PoseResult]:
    """``sfm-flow`` (see the module docstring); records its attempt (with the guard's figures and time split)."""
    start = time.perf_counter()
    names = inputs.names
    if len(inputs.flows) != len(names) or not inputs.track_static:
        attempts.append(PoseAttempt("sfm-flow", 0, 0.0, "no optical flow"))
        return None
    greys = [to_grey(np.asarray(image)) for image in inputs.rgb]
    tracks = build_tracks(inputs.flows, greys, inputs.track_static, track_spacing(greys[0].shape[1]))
    timing = {"tracks": time.perf_counter() - start}
    note = f"{tracks.count} tracks, {float(np.mean(tracks.lengths)) if tracks.count else 0:.1f} frames long on average"
    if tracks.count < MIN_TRACKS:
        error = f"only {tracks.count} static tracks (at least {MIN_TRACKS} needed): no usable static region"
        attempts.append(PoseAttempt("sfm-flow", 0, time.perf_counter() - start, error, note, timing=timing))
        return None
    work = inputs.work / "flow"
    try:
        output = flow_sfm(work, inputs.image_dir, names, tracks, settings["camera_model"], settings["num_threads"])
    except (RuntimeError, ValueError, OSError) as err:
        attempts.append(PoseAttempt("sfm-flow", 0, time.perf_counter() - start, f"pycolmap failed: {err}", note))
        shutil.rmtree(work, ignore_errors=True)
        return None
    timing.update(output.seconds)
    note += f"; {output.verified} of {output.pairs} frame pairs verified"
    if not output.models:
        error = "global mapping found no model"
        attempts.append(PoseAttempt("sfm-flow", 0, time.perf_counter() - start, error, note, timing=timing))
        shutil.rmtree(work, ignore_errors=True)
        return None
    guard_start = time.perf_counter()
    accepted = accept(result_from_models(output.models, names), "sfm-flow", min_registered, attempts, start)
    attempts[-1].note, attempts[-1].timing = note, {**timing, "guard": time.perf_counter() - guard_start}
    if accepted is not None:
        keep_model(inputs.work, "flow/sparse")
    shutil.rmtree(work, ignore_errors=True)
    return accepted


def _no_parallax(attempt: PoseAttempt, count: int, min_registered: float) -> Optional[Parallax]:
    """The guard's figures when ``attempt`` covered the frames but failed the parallax guard, else None."""
    figures = attempt.figures
    covered = attempt.registered >= max(3, min_registered * count)
    if figures is None or not covered or figures.failure() is None:
        return None
    return figures


def _focal_source(models: Sequence[pycolmap.Reconstruction], width: int, height: int) -> tuple[Intrinsics, str]:
    """Intrinsics for rotation-only poses: the largest partial model's camera when plausible, else the prior."""
    for model in sorted(models, key=lambda m: m.num_reg_images(), reverse=True):
        if model.num_reg_images() < MERGE_MIN_SHARED:
            break
        camera = intrinsics_from_camera(next(iter(model.cameras.values())))
        if (camera.w, camera.h) == (width, height) and is_plausible(camera):
            fov = horizontal_fov_degrees(camera)
            return camera, f"partial SfM model ({model.num_reg_images()} frames, {fov:.0f} deg horizontal)"
        break
    return prior_intrinsics(width, height), f"{FOV_PRIOR_DEGREES:.0f} deg horizontal field-of-view prior"


def _fit_intrinsics(figures: Parallax, width: int, height: int) -> Intrinsics:
    fit = figures.rotation
    cx, cy = fit.principal_point
    return Intrinsics(fl_x=fit.focal, fl_y=fit.focal, cx=cx, cy=cy, w=width, h=height, k1=fit.k1)


def _fitted_rotations(
    inputs: ChainInputs, attempts: list[PoseAttempt], figures: Parallax, models: list, start: float
) -> PoseResult:
    """rotation-only poses from the parallax guard's rotation-only fit to a model of every frame: its calibration
    when plausible, else the usual focal-length source with the rotations fitted again under it."""
    names = inputs.names
    height, width = inputs.rgb[0].shape[:2]
    intrinsics = _fit_intrinsics(figures, width, height)
    rotations = figures.rotation.world_to_camera
    source = f"fitted to the tracks ({intrinsics.fl_x:.0f} px, k1 {intrinsics.k1:.2f})"
    if not is_plausible(intrinsics):
        fov = horizontal_fov_degrees(intrinsics)
        intrinsics, prior = _focal_source(models, width, height)
        rotations = figures.rotation.rotations_for(intrinsics.fl_x, intrinsics.k1)
        source = f"from the {prior} (the fit's {fov:.0f} deg is implausible)"
    c2w = np.tile(np.eye(4), (len(names), 1, 1))
    for i, name in enumerate(names):
        c2w[i, :3, :3] = rotations[name].T
    c2w[:, :3, 1:3] *= -1.0  # OpenCV -> OpenGL camera axes
    note = f"rotations fitted to the {attempts[-1].step} tracks, focal length {source}"
    attempts.append(PoseAttempt("rotation-only", len(names), time.perf_counter() - start, note=note))
    return PoseResult(
        "rotation-only", c2w, intrinsics, None, 0, len(names) - 1, [], len(names), figures.rotation.rms_px,
        approximate=True, attempts=attempts, parallax=figures.as_dict(),
    )  # fmt: skip


def _rotation_step(
    inputs: ChainInputs, attempts: list[PoseAttempt], figures: Optional[Parallax], models: list, console: Console
) -> PoseResult:
    """``rotation-only`` (see the module docstring).

    Raises:
        ProcessError: nothing static to track (the message lists what the earlier steps registered).
    """
    start = time.perf_counter()
    names = inputs.names
    height, width = inputs.rgb[0].shape[:2]
    if figures is not None and set(names) <= set(figures.rotation.world_to_camera):
        return _fitted_rotations(inputs, attempts, figures, models, start)
    fits = [(a, _fit_intrinsics(a.figures, width, height)) for a in attempts if a.figures is not None]
    fits = [(a, fit) for a, fit in fits if is_plausible(fit) and a.figures is not None and a.figures.failure()]
    if fits:
        intrinsics, source = fits[-1][1], f"rotation-only fit to the {fits[-1][0].step} model's tracks"
    else:
        intrinsics, source = _focal_source(models, width, height)
    console.print(f"[yellow]Rotation-only poses from static features, focal length from the {source}.[/yellow]")
    try:
        rotations = rotation_only_poses(inputs.rgb, inputs.static, intrinsics)
    except ProcessError as err:
        attempts.append(PoseAttempt("rotation-only", 0, time.perf_counter() - start, str(err)))
        tried = ", ".join(f"{a.step}: {a.registered}" for a in attempts[:-1])
        raise ProcessError(f"{err} (frames registered by the earlier steps - {tried} of {len(names)})") from err
    attempts.append(PoseAttempt("rotation-only", len(names), time.perf_counter() - start, note=f"focal {source}"))
    return PoseResult(
        "rotation-only", rotations.camera_to_world, intrinsics, None, 0, len(names) - 1, [], len(names),
        rotations.residual_px, approximate=True, attempts=attempts,
        parallax=None if figures is None else figures.as_dict(),
    )  # fmt: skip


def _single_step(
    inputs: ChainInputs, settings: dict[str, Any], min_registered: float, fallback: str, attempts: list
) -> PoseResult:
    """``--pose-fallback sfm-only`` / ``sfm-flow-only``: one step, failing with its reason."""
    if fallback == "sfm-flow-only":
        accepted = _flow_step(inputs, settings, min_registered, attempts)
        if accepted is None:
            raise ProcessError(f"sfm-flow failed: {attempts[-1].error}. {ADVICE}")
        return accepted
    start = time.perf_counter()
    try:
        database = prepare_database(inputs.work, inputs.image_dir, inputs.mask_dir, inputs.names, settings)
        models = map_database(database, inputs.image_dir, inputs.work / "sparse", MAPPING_THREADS)
    except (RuntimeError, ValueError, OSError) as err:
        raise ProcessError(f"pycolmap failed: {err}. {ADVICE}") from err
    return pose_result(result_from_models(models, inputs.names), "sfm", min_registered, attempts, start)


def estimate_poses(
    inputs: ChainInputs,
    settings: dict[str, Any],
    min_registered: float,
    fallback: str,
    console: Console,
) -> PoseResult:
    """Runs the chain (see the module docstring) and returns the first step that succeeds.

    Args:
        inputs: frames, masks, flow and the work folder.
        settings: ``camera_model``, ``num_threads``, ``max_num_features`` of the SfM recipe.
        min_registered: the fraction of frames a step must give poses to.
        fallback: ``auto`` (the whole chain), ``sfm-only`` or ``sfm-flow-only`` (that step alone, failing),
            ``rotation-only`` (no SfM).

    Raises:
        ProcessError: every step failed (single step: that step failed); the message names the step.
    """
    attempts: list[PoseAttempt] = []
    if fallback == "rotation-only":
        return _rotation_step(inputs, attempts, None, [], console)
    if fallback != "auto":
        return _single_step(inputs, settings, min_registered, fallback, attempts)
    accepted = _flow_step(inputs, settings, min_registered, attempts)
    if accepted is not None:
        return accepted
    figures = _no_parallax(attempts[-1], len(inputs.names), min_registered)
    partial: list[pycolmap.Reconstruction] = []
    if figures is None:
        console.print(f"[yellow]Flow-track SfM: {attempts[-1].error}; SfM with SIFT features...[/yellow]")
        accepted, partial = sift_chain(inputs, settings, min_registered, attempts, console)
        if accepted is not None:
            return accepted
    else:
        console.print(f"[yellow]Flow-track SfM: {attempts[-1].error}; rotation-only poses.[/yellow]")
    result = _rotation_step(inputs, attempts, figures, partial, console)
    shutil.rmtree(inputs.work / "sparse-relaxed", ignore_errors=True)
    shutil.rmtree(inputs.work / "sparse", ignore_errors=True)
    return result
