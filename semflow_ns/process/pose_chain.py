"""Camera poses for ``semflow-process-data``: a chain of steps, each tried only when the previous one failed.

A step *succeeds* when its poses cover at least ``--min-registered`` of the frames (at least 3) and, for the
SfM steps, triangulate at least ``MIN_POINTS`` points. The steps (names as in the report's ``pose_step``):

``sfm``
    The measured default recipe (:func:`~semflow_ns.process.sfm.prepare_database` and
    :func:`~semflow_ns.process.sfm.map_database` with default options): unchanged, so a clip on which it
    succeeds gets exactly the poses it always got.
``sfm-subsampled``
    Relaxed mapping (the ``RELAXED`` thresholds below) on one frame in ``SUBSAMPLE_STEP``, i.e. three times the
    baseline between neighbouring frames, which is what a slowly moving camera lacks; the frames in between get
    poses interpolated from their registered neighbours. Succeeds when ``--min-registered`` of the mapped
    frames are registered. Needs its own small database (see :func:`_subsampled`); mapping capped at
    ``SUBSAMPLED_MAX_SECONDS``.
``sfm-relaxed``
    Incremental mapping again on the *same* feature/match database, with the thresholds that stop
    low-parallax clips relaxed (``RELAXED``): a smaller triangulation angle and fewer inliers for the initial
    pair, fewer inliers to register a further frame, smaller triangulation angles for points. Capped at
    ``RELAXED_MAX_SECONDS`` of mapping.
``sfm-merged``
    The partial models of the two full mapping runs (``sfm``, ``sfm-relaxed``) joined into one: models that share at least
    ``MERGE_MIN_SHARED`` registered frames are brought into the largest model's world by a similarity
    estimated from the 2D-3D observations of the shared frames (``pycolmap.align_reconstructions_via_reprojections``),
    and frames missing from the largest model take their poses from the aligned ones. No extra mapping.
``rotation-only``
    The last resort (:mod:`semflow_ns.process.rotation_only`): per-frame rotations from tracked static
    features, all cameras at the origin, focal length from the largest plausible partial model or a
    field-of-view prior. Always gives every frame a pose unless the input has nothing static to track; the
    scene is marked ``approximate_poses``.

``--pose-fallback sfm-only`` runs only the first step and fails exactly as before.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pycolmap
from rich.console import Console

from semflow_ns.data.format import Intrinsics
from semflow_ns.process import ProcessError
from semflow_ns.process.rotation_only import (
    FOV_PRIOR_DEGREES,
    horizontal_fov_degrees,
    is_plausible,
    prior_intrinsics,
    rotation_only_poses,
)
from semflow_ns.process.sfm import (
    ADVICE,
    SfmResult,
    complete_poses,
    intrinsics_from_camera,
    map_database,
    opengl_camera_to_world,
    prepare_database,
    result_from_models,
)

POSE_STEPS = ("sfm", "sfm-subsampled", "sfm-relaxed", "sfm-merged", "rotation-only")
"""The steps of the chain, in the order they are tried."""
POSE_FALLBACKS = ("auto", "sfm-only")
"""``--pose-fallback`` values: the whole chain, or the default SfM recipe alone."""
MIN_POINTS = 50
"""An SfM step with fewer triangulated points fails (as the default recipe always did)."""
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
"""``IncrementalMapperOptions`` of ``sfm-relaxed`` (defaults: 16 degrees, 100, 30, 0.25, 6 degrees, 1.5 degrees):
COLMAP's defaults are tuned for photo collections with wide baselines; a video moves a little per frame."""


@dataclass
class PoseAttempt:
    """One step that was tried."""

    step: str
    registered: int
    """Frames with a pose from this step (for ``rotation-only``: every frame)."""
    seconds: float
    error: Optional[str] = None
    """Why the step was not accepted (None: accepted)."""
    note: Optional[str] = None
    """sfm-subsampled: how many frames were mapped; rotation-only: where the focal length came from."""

    def as_dict(self) -> dict[str, Any]:
        """The report entry: step, registered, seconds (rounded), and the error when there was one."""
        out: dict[str, Any] = {"step": self.step, "registered": self.registered, "seconds": round(self.seconds, 2)}
        if self.error is not None:
            out["error"] = self.error
        if self.note is not None:
            out["note"] = self.note
        return out


@dataclass
class PoseResult:
    """Poses of the kept frames ``first .. last`` and how they were obtained."""

    step: str
    camera_to_world: np.ndarray
    """[K, 4, 4] OpenGL camera-to-world of frames ``first .. last``."""
    intrinsics: Intrinsics
    points: Optional[np.ndarray]
    """[M, 3] SfM points in the poses' world (None for ``rotation-only``)."""
    first: int
    last: int
    interpolated: list[int]
    registered: int
    reprojection_error: Optional[float]
    """SfM: mean reprojection error (px). rotation-only: mean residual (px) of the static tracks under the
    fitted pair rotations."""
    approximate: bool
    attempts: list[PoseAttempt] = field(default_factory=list)


@dataclass
class ChainInputs:
    """What the chain works on: the written frames, their COLMAP masks, and the decoded images and masks."""

    image_dir: Path
    mask_dir: Path
    names: list[str]
    work: Path
    """``colmap/`` folder of the scene being written."""
    rgb: Sequence[np.ndarray]
    static: Sequence[Optional[np.ndarray]]
    """Per frame, True where nothing moves (None: no labels)."""


def _pose_result(
    result: SfmResult, step: str, min_registered: float, attempts: list[PoseAttempt], start: float
) -> PoseResult:
    """``result`` as a PoseResult; records the attempt.

    Raises:
        ProcessError: too few frames registered, or too few points (the message ends with what to try).
    """
    attempts.append(PoseAttempt(step, int(result.registered.sum()), time.perf_counter() - start))
    completion = complete_poses(result, min_registered)
    if len(result.points) < MIN_POINTS:
        raise ProcessError(f"structure from motion triangulated only {len(result.points)} points. {ADVICE}")
    return PoseResult(
        step, completion.camera_to_world, result.intrinsics, result.points, completion.first, completion.last,
        completion.interpolated, attempts[-1].registered, result.reprojection_error, approximate=False,
        attempts=attempts,
    )  # fmt: skip


def _accept(
    result: SfmResult, step: str, min_registered: float, attempts: list[PoseAttempt], start: float
) -> Optional[PoseResult]:
    """``result`` as a PoseResult if it is good enough, else None; records the attempt either way."""
    try:
        return _pose_result(result, step, min_registered, attempts, start)
    except ProcessError as err:
        attempts[-1].error = str(err).split(". What to try")[0]
        return None


def _relaxed_options(max_seconds: int) -> Callable[[pycolmap.IncrementalPipelineOptions], None]:
    """Sets the ``RELAXED`` thresholds and a wall-time cap on mapping options."""

    def configure(options: pycolmap.IncrementalPipelineOptions) -> None:
        for key, value in RELAXED.items():
            setattr(options.mapper, key, value)
        options.triangulation.min_angle = RELAXED["filter_min_tri_angle"]
        options.min_model_size = MERGE_MIN_SHARED
        options.max_runtime_seconds = int(max_seconds)
        options.random_seed = 0  # a fallback should be as reproducible as pycolmap allows (default recipe: -1)

    return configure


def _subsampled(
    inputs: ChainInputs, settings: dict[str, Any], min_registered: float, attempts: list[PoseAttempt]
) -> tuple[Optional[PoseResult], list[pycolmap.Reconstruction]]:
    """``sfm-subsampled``: relaxed SfM on every ``SUBSAMPLE_STEP``-th frame, the others interpolated.

    pycolmap 4.2.1 cannot restrict mapping to some images of a database (``image_names`` leaves the database
    cache empty), so the kept frames get their own small database (a third of the extraction work). Succeeds
    when ``min_registered`` of the kept frames are registered; frames between registered ones get slerp/linear
    interpolated poses, frames outside them are dropped. Returns the result (or None) and the models found.
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
        configure = _relaxed_options(SUBSAMPLED_MAX_SECONDS)
        models = map_database(database, inputs.image_dir, work / "sparse", settings["num_threads"], configure)
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
    attempt.seconds = time.perf_counter() - start
    if attempt.error is not None:
        shutil.rmtree(work, ignore_errors=True)
        return None, list(models.values())
    c2w = np.full((len(names), 4, 4), np.nan)
    c2w[keys] = found.camera_to_world
    full = SfmResult(c2w, ~np.isnan(c2w[:, 0, 0]), found.intrinsics, found.points, found.reprojection_error, 1)
    completion = complete_poses(full, min_registered=1e-9)  # coverage was checked on the kept frames above
    shutil.rmtree(inputs.work / "sparse", ignore_errors=True)
    (work / "sparse").rename(inputs.work / "sparse")
    shutil.rmtree(work, ignore_errors=True)
    result = PoseResult(
        "sfm-subsampled", completion.camera_to_world, found.intrinsics, found.points, completion.first,
        completion.last, completion.interpolated, attempt.registered, found.reprojection_error, False, attempts,
    )  # fmt: skip
    return result, list(models.values())


def _registered_names(model: pycolmap.Reconstruction) -> set[str]:
    return {image.name for image in model.images.values() if image.has_pose}


def merge_models(models: Sequence[pycolmap.Reconstruction], names: Sequence[str]) -> Optional[SfmResult]:
    """Joins partial models through shared frames into the largest one's world (see the module docstring).

    Models are visited largest first; a model is added when it shares ``MERGE_MIN_SHARED`` frames with the
    frames merged so far and pycolmap finds a similarity aligning it to the largest model; its frames that are
    still missing get its (transformed) poses, and its points are added. Returns None without any model.
    """
    ordered = sorted(models, key=lambda m: m.num_reg_images(), reverse=True)
    if not ordered:
        return None
    base = ordered[0]
    poses: dict[str, np.ndarray] = {im.name: opengl_camera_to_world(im) for im in base.images.values() if im.has_pose}
    points = [np.array([p.xyz for p in base.points3D.values()]).reshape(-1, 3)]
    errors = [base.compute_mean_reprojection_error()]
    merged = [base]
    pending = list(ordered[1:])
    grew = True
    while grew and pending:
        grew = False
        for model in list(pending):
            if len(_registered_names(model) & set(poses)) < MERGE_MIN_SHARED:
                continue
            transform = None
            for target in merged:
                if len(_registered_names(model) & _registered_names(target)) >= MERGE_MIN_SHARED:
                    transform = pycolmap.align_reconstructions_via_reprojections(model, target)
                    if transform is not None:
                        break
            pending.remove(model)
            if transform is None:
                continue
            aligned = pycolmap.Reconstruction(model)
            aligned.transform(transform)
            for image in aligned.images.values():
                if image.has_pose and image.name not in poses:
                    poses[image.name] = opengl_camera_to_world(image)
            points.append(np.array([p.xyz for p in aligned.points3D.values()]).reshape(-1, 3))
            errors.append(aligned.compute_mean_reprojection_error())
            merged.append(aligned)
            grew = True
    c2w = np.full((len(names), 4, 4), np.nan)
    for i, name in enumerate(names):
        if name in poses:
            c2w[i] = poses[name]
    return SfmResult(
        camera_to_world=c2w,
        registered=~np.isnan(c2w[:, 0, 0]),
        intrinsics=intrinsics_from_camera(next(iter(base.cameras.values()))),
        points=np.concatenate(points),
        reprojection_error=float(np.mean(errors)),
        num_models=len(merged),
    )


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


def estimate_poses(
    inputs: ChainInputs,
    settings: dict[str, Any],
    min_registered: float,
    fallback: str,
    console: Console,
) -> PoseResult:
    """Runs the chain (see the module docstring) and returns the first step that succeeds.

    Args:
        inputs: frames, masks and the work folder.
        settings: ``camera_model``, ``num_threads``, ``max_num_features`` of the SfM recipe.
        min_registered: the fraction of frames a step must give poses to.
        fallback: ``auto`` (the whole chain) or ``sfm-only`` (the default recipe, failing as it always did).

    Raises:
        ProcessError: every step failed (``sfm-only``: the default recipe failed); the message names the step.
    """
    attempts: list[PoseAttempt] = []
    names, threads = inputs.names, settings["num_threads"]
    start = time.perf_counter()
    try:
        database = prepare_database(inputs.work, inputs.image_dir, inputs.mask_dir, names, settings)
        models = map_database(database, inputs.image_dir, inputs.work / "sparse", threads)
    except (RuntimeError, ValueError, OSError) as err:
        raise ProcessError(f"pycolmap failed: {err}. {ADVICE}") from err
    if fallback == "sfm-only":
        return _pose_result(result_from_models(models, names), "sfm", min_registered, attempts, start)
    partial: list[pycolmap.Reconstruction] = list(models.values())
    if models:
        accepted = _accept(result_from_models(models, names), "sfm", min_registered, attempts, start)
        if accepted is not None:
            return accepted
    else:
        attempts.append(PoseAttempt("sfm", 0, time.perf_counter() - start, "no initial image pair found"))
    console.print(f"[yellow]SfM: {attempts[-1].error}; trying relaxed SfM on one frame in {SUBSAMPLE_STEP}...[/yellow]")
    accepted, subsampled = _subsampled(inputs, settings, min_registered, attempts)
    if accepted is not None:
        return accepted
    console.print(f"[yellow]Subsampled SfM: {attempts[-1].error}; relaxed SfM on all frames...[/yellow]")

    start = time.perf_counter()
    try:
        configure = _relaxed_options(RELAXED_MAX_SECONDS)
        relaxed = map_database(database, inputs.image_dir, inputs.work / "sparse-relaxed", threads, configure)
    except (RuntimeError, ValueError) as err:
        relaxed = {}
        console.print(f"[yellow]Relaxed SfM failed: {err}[/yellow]")
    partial += list(relaxed.values())
    if relaxed:
        accepted = _accept(result_from_models(relaxed, names), "sfm-relaxed", min_registered, attempts, start)
        if accepted is not None:
            _keep_model(inputs.work, "sparse-relaxed")
            return accepted
    else:
        attempts.append(PoseAttempt("sfm-relaxed", 0, time.perf_counter() - start, "no initial image pair found"))

    start = time.perf_counter()
    merged = merge_models(partial, names) if len(partial) > 1 else None
    if merged is not None:
        console.print(f"[yellow]Joining {len(partial)} partial SfM models through shared frames...[/yellow]")
        accepted = _accept(merged, "sfm-merged", min_registered, attempts, start)
        if accepted is not None:
            return accepted
    else:
        attempts.append(PoseAttempt("sfm-merged", 0, time.perf_counter() - start, "fewer than 2 partial models"))

    start = time.perf_counter()
    height, width = inputs.rgb[0].shape[:2]
    intrinsics, source = _focal_source(partial + subsampled, width, height)
    console.print(
        f"[yellow]SfM registered too few frames ({max(a.registered for a in attempts)} of {len(names)}): "
        f"rotation-only poses from static features, focal length from the {source}.[/yellow]"
    )
    try:
        rotations = rotation_only_poses(inputs.rgb, inputs.static, intrinsics)
    except ProcessError as err:
        attempts.append(PoseAttempt("rotation-only", 0, time.perf_counter() - start, str(err)))
        tried = ", ".join(f"{a.step}: {a.registered}" for a in attempts[:-1])
        raise ProcessError(f"{err} (frames registered by the earlier steps - {tried} of {len(names)})") from err
    attempts.append(PoseAttempt("rotation-only", len(names), time.perf_counter() - start, note=f"focal {source}"))
    shutil.rmtree(inputs.work / "sparse-relaxed", ignore_errors=True)
    return PoseResult(
        "rotation-only", rotations.camera_to_world, intrinsics, None, 0, len(names) - 1, [], len(names),
        rotations.residual_px, approximate=True, attempts=attempts,
    )  # fmt: skip


def _keep_model(work: Path, folder: str) -> None:
    """Makes ``work/<folder>`` the scene's ``colmap/sparse`` (the model the poses came from)."""
    shutil.rmtree(work / "sparse", ignore_errors=True)
    (work / folder).rename(work / "sparse")
