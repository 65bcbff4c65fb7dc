"""The SIFT steps of the pose chain: ``sfm``, ``sfm-subsampled``, ``sfm-relaxed`` and ``sfm-merged``.

``sfm``
    The measured default recipe (:func:`~semflow_ns.process.sfm.prepare_database` and
    :func:`~semflow_ns.process.sfm.map_database` with default options, seeded and on one mapping thread so that
    it is deterministic), with the moving objects masked out of the features (moving classes of the labels;
    without labels, what the flow motion masks mark moving).
``sfm-subsampled``
    Relaxed mapping (the ``RELAXED`` thresholds below) on one frame in ``SUBSAMPLE_STEP``, i.e. three times the
    baseline between neighbouring frames, which is what a slowly moving camera lacks; the frames in between get
    poses interpolated from their registered neighbours (approximate). Succeeds when ``--min-registered`` of
    the mapped frames are registered. Needs its own small database (see :func:`subsampled_step`); mapping capped
    at ``SUBSAMPLED_MAX_SECONDS``.
``sfm-relaxed``
    Incremental mapping again on the *same* feature/match database, with the thresholds that stop
    low-parallax clips relaxed (``RELAXED``): a smaller triangulation angle and fewer inliers for the initial
    pair, fewer inliers to register a further frame, smaller triangulation angles for points. Capped at
    ``RELAXED_MAX_SECONDS`` of mapping.
``sfm-merged``
    The partial models of the two full mapping runs (``sfm``, ``sfm-relaxed``) joined into one: models that
    share at least ``MERGE_MIN_SHARED`` registered frames are brought into the largest model's world by a
    similarity estimated from the 2D-3D observations of the shared frames
    (``pycolmap.align_reconstructions_via_reprojections``), and frames missing from the largest model take their
    poses from the aligned ones. No extra mapping.

Every model also has to pass the parallax guard (:mod:`semflow_ns.process.pose_steps`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pycolmap
from rich.console import Console

from semflow_ns.process import ProcessError
from semflow_ns.process.observations import image_observations
from semflow_ns.process.pose_steps import MIN_POINTS, ChainInputs, PoseAttempt, PoseResult, accept, guard
from semflow_ns.process.sfm import (
    MAPPING_THREADS,
    SfmResult,
    complete_poses,
    intrinsics_from_camera,
    map_database,
    opengl_camera_to_world,
    prepare_database,
    result_from_models,
)

RELAXED_MAX_SECONDS = 30
"""Wall-time cap of the relaxed mapping run (its partial models are kept when it is reached)."""
MERGE_MIN_SHARED = 3
"""Partial models are joined only through at least this many frames registered in both."""
SUBSAMPLE_STEP = 3
"""``sfm-subsampled`` maps every this-many-th frame (three times the baseline between neighbours)."""
SUBSAMPLE_MIN_FRAMES = 8
"""``sfm-subsampled`` is skipped when the subsampled clip would have fewer frames."""
SUBSAMPLED_MAX_SECONDS = 60
"""Wall-time cap of the subsampled mapping run."""
RELAXED: dict[str, float] = {
    "init_min_tri_angle": 4.0,
    "init_min_num_inliers": 50,
    "abs_pose_min_num_inliers": 15,
    "abs_pose_min_inlier_ratio": 0.15,
    "ba_local_min_tri_angle": 2.0,
    "filter_min_tri_angle": 0.5,
}
"""``IncrementalMapperOptions`` of the relaxed steps (defaults: 16 degrees, 100, 30, 0.25, 6 degrees, 1.5 degrees):
COLMAP's defaults are tuned for photo collections with wide baselines; a video moves a little per frame."""


def relaxed_options(max_seconds: int) -> Callable[[pycolmap.IncrementalPipelineOptions], None]:
    """Sets the ``RELAXED`` thresholds and a wall-time cap on mapping options."""

    def configure(options: pycolmap.IncrementalPipelineOptions) -> None:
        for key, value in RELAXED.items():
            setattr(options.mapper, key, value)
        options.triangulation.min_angle = RELAXED["filter_min_tri_angle"]
        options.min_model_size = MERGE_MIN_SHARED
        options.max_runtime_seconds = int(max_seconds)

    return configure


def keep_model(work: Path, folder: str) -> None:
    """Makes ``work/<folder>`` the scene's ``colmap/sparse`` (the model the poses came from)."""
    shutil.rmtree(work / "sparse", ignore_errors=True)
    (work / folder).rename(work / "sparse")


def _subsampled_result(found: SfmResult, keys: list[int], count: int, attempt: PoseAttempt) -> PoseResult:
    """The subsampled model's poses spread over all ``count`` frames, the others interpolated."""
    c2w = np.full((count, 4, 4), np.nan)
    c2w[keys] = found.camera_to_world
    full = SfmResult(c2w, ~np.isnan(c2w[:, 0, 0]), found.intrinsics, found.points, found.reprojection_error, 1)
    completion = complete_poses(full, min_registered=1e-9)  # coverage was checked on the mapped frames
    return PoseResult(
        "sfm-subsampled", completion.camera_to_world, found.intrinsics, found.points, completion.first,
        completion.last, completion.interpolated, attempt.registered, found.reprojection_error,
        approximate=bool(completion.interpolated), parallax=attempt.parallax,
        observations={keys[i]: seen for i, seen in found.observations.items()},
    )  # fmt: skip


def subsampled_step(
    inputs: ChainInputs, settings: dict[str, Any], min_registered: float, attempts: list[PoseAttempt]
) -> tuple[Optional[PoseResult], list[pycolmap.Reconstruction]]:
    """``sfm-subsampled``: relaxed SfM on every ``SUBSAMPLE_STEP``-th frame, the others interpolated.

    pycolmap 4.2.1 cannot restrict mapping to some images of a database (``image_names`` leaves the database
    cache empty), so the kept frames get their own small database (a third of the extraction work). Succeeds
    when ``min_registered`` of the kept frames are registered and the model passes the parallax guard; frames
    between registered ones get slerp/linear interpolated poses, frames outside them are dropped. Returns the
    result (or None) and the models found.
    """
    start = time.perf_counter()
    names = inputs.names
    keys = list(range(0, len(names), SUBSAMPLE_STEP))
    if len(keys) < SUBSAMPLE_MIN_FRAMES:
        attempts.append(PoseAttempt("sfm-subsampled", 0, 0.0, f"fewer than {SUBSAMPLE_MIN_FRAMES} frames to map"))
        return None, []
    work = inputs.work / "subsampled"
    work.mkdir()
    subset = [names[i] for i in keys]
    try:
        database = prepare_database(work, inputs.image_dir, inputs.mask_dir, subset, settings)
        configure = relaxed_options(SUBSAMPLED_MAX_SECONDS)
        models = map_database(database, inputs.image_dir, work / "sparse", MAPPING_THREADS, configure)
    except (RuntimeError, ValueError, OSError) as err:
        models, error = {}, f"pycolmap failed: {err}"
    else:
        error = "no initial image pair found"
    (work / "database.db").unlink(missing_ok=True)
    attempt = PoseAttempt("sfm-subsampled", 0, 0.0, error, note=f"{len(keys)} frames mapped (one in {SUBSAMPLE_STEP})")
    attempts.append(attempt)
    if models:
        found = result_from_models(models, subset)
        attempt.registered = int(found.registered.sum())
        need = max(3, int(np.ceil(min_registered * len(keys))))
        attempt.error = None
        if attempt.registered < need:
            attempt.error = (
                f"registered only {attempt.registered} of the {len(keys)} frames mapped (one in {SUBSAMPLE_STEP}; "
                f"at least {need} needed)"
            )
        elif len(found.points) < MIN_POINTS:
            attempt.error = f"triangulated only {len(found.points)} points"
        else:
            try:
                guard(found, attempt)
            except ProcessError as err:
                attempt.error = str(err)
    attempt.seconds = time.perf_counter() - start
    if attempt.error is not None:
        shutil.rmtree(work, ignore_errors=True)
        return None, list(models.values())
    keep_model(inputs.work, "subsampled/sparse")
    shutil.rmtree(work, ignore_errors=True)
    result = _subsampled_result(found, keys, len(names), attempt)
    result.attempts = attempts
    return result, list(models.values())


def _registered_names(model: pycolmap.Reconstruction) -> set[str]:
    return {image.name for image in model.images.values() if image.has_pose}


def _aligned(
    model: pycolmap.Reconstruction, merged: list[pycolmap.Reconstruction]
) -> Optional[pycolmap.Reconstruction]:
    """``model`` moved into the world of the models merged so far, or None when no similarity is found."""
    for target in merged:
        if len(_registered_names(model) & _registered_names(target)) >= MERGE_MIN_SHARED:
            transform = pycolmap.align_reconstructions_via_reprojections(model, target)
            if transform is not None:
                aligned = pycolmap.Reconstruction(model)
                aligned.transform(transform)
                return aligned
    return None


def merge_models(models: Sequence[pycolmap.Reconstruction], names: Sequence[str]) -> Optional[SfmResult]:
    """Joins partial models through shared frames into the largest one's world (see the module docstring).

    Models are visited largest first; a model is added when it shares ``MERGE_MIN_SHARED`` frames with the
    frames merged so far and pycolmap finds a similarity aligning it to the largest model; its frames that are
    still missing get its (transformed) poses and observations, and its points are added. Returns None without
    any model.
    """
    ordered = sorted(models, key=lambda m: m.num_reg_images(), reverse=True)
    if not ordered:
        return None
    base = ordered[0]
    sources: dict[str, tuple[pycolmap.Reconstruction, pycolmap.Image]] = {
        im.name: (base, im) for im in base.images.values() if im.has_pose
    }
    points = [np.array([p.xyz for p in base.points3D.values()]).reshape(-1, 3)]
    errors = [base.compute_mean_reprojection_error()]
    merged = [base]
    pending = list(ordered[1:])
    grew = True
    while grew and pending:
        grew = False
        for model in list(pending):
            if len(_registered_names(model) & set(sources)) < MERGE_MIN_SHARED:
                continue
            pending.remove(model)
            aligned = _aligned(model, merged)
            if aligned is None:
                continue
            for image in aligned.images.values():
                if image.has_pose and image.name not in sources:
                    sources[image.name] = (aligned, image)
            points.append(np.array([p.xyz for p in aligned.points3D.values()]).reshape(-1, 3))
            errors.append(aligned.compute_mean_reprojection_error())
            merged.append(aligned)
            grew = True
    c2w = np.full((len(names), 4, 4), np.nan)
    observations = {}
    for i, name in enumerate(names):
        if name in sources:
            model, image = sources[name]
            c2w[i] = opengl_camera_to_world(image)
            observations[i] = image_observations(model, image)
    return SfmResult(
        camera_to_world=c2w, registered=~np.isnan(c2w[:, 0, 0]),
        intrinsics=intrinsics_from_camera(next(iter(base.cameras.values()))), points=np.concatenate(points),
        reprojection_error=float(np.mean(errors)), num_models=len(merged), model=base, observations=observations,
    )  # fmt: skip


def sift_chain(
    inputs: ChainInputs, settings: dict[str, Any], min_registered: float, attempts: list[PoseAttempt], console: Console
) -> tuple[Optional[PoseResult], list[pycolmap.Reconstruction]]:
    """``sfm``, ``sfm-subsampled``, ``sfm-relaxed``, ``sfm-merged`` in turn: the first accepted result (or None)
    and every partial model found (for the focal length of ``rotation-only``).

    Raises:
        ProcessError: pycolmap failed to extract or match features.
    """
    names = inputs.names
    start = time.perf_counter()
    try:
        database = prepare_database(inputs.work, inputs.image_dir, inputs.mask_dir, names, settings)
        models = map_database(database, inputs.image_dir, inputs.work / "sparse", MAPPING_THREADS)
    except (RuntimeError, ValueError, OSError) as err:
        raise ProcessError(f"pycolmap failed: {err}") from err
    partial: list[pycolmap.Reconstruction] = list(models.values())
    if models:
        accepted = accept(result_from_models(models, names), "sfm", min_registered, attempts, start)
        if accepted is not None:
            return accepted, partial
    else:
        attempts.append(PoseAttempt("sfm", 0, time.perf_counter() - start, "no initial image pair found"))
    console.print(f"[yellow]SfM: {attempts[-1].error}; trying relaxed SfM on one frame in {SUBSAMPLE_STEP}...[/yellow]")
    accepted, subsampled = subsampled_step(inputs, settings, min_registered, attempts)
    if accepted is not None:
        return accepted, partial
    console.print(f"[yellow]Subsampled SfM: {attempts[-1].error}; relaxed SfM on all frames...[/yellow]")
    start = time.perf_counter()
    try:
        configure = relaxed_options(RELAXED_MAX_SECONDS)
        relaxed = map_database(database, inputs.image_dir, inputs.work / "sparse-relaxed", MAPPING_THREADS, configure)
    except (RuntimeError, ValueError) as err:
        relaxed = {}
        console.print(f"[yellow]Relaxed SfM failed: {err}[/yellow]")
    partial += list(relaxed.values())
    if relaxed:
        accepted = accept(result_from_models(relaxed, names), "sfm-relaxed", min_registered, attempts, start)
        if accepted is not None:
            keep_model(inputs.work, "sparse-relaxed")
            return accepted, partial
    else:
        attempts.append(PoseAttempt("sfm-relaxed", 0, time.perf_counter() - start, "no initial image pair found"))
    start = time.perf_counter()
    merged = merge_models(partial, names) if len(partial) > 1 else None
    if merged is not None:
        console.print(f"[yellow]Joining {len(partial)} partial SfM models through shared frames...[/yellow]")
        accepted = accept(merged, "sfm-merged", min_registered, attempts, start)
        if accepted is not None:
            return accepted, partial
    else:
        attempts.append(PoseAttempt("sfm-merged", 0, time.perf_counter() - start, "fewer than 2 partial models"))
    return None, partial + subsampled
