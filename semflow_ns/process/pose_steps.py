"""What every step of the pose chain shares: its inputs, its result, the record of an attempt, and acceptance.

An SfM step's result is accepted (:func:`pose_result`) when its poses cover at least ``--min-registered`` of the
frames (at least 3), it triangulated at least ``MIN_POINTS`` points, and its model passes the parallax guard
(:mod:`semflow_ns.process.parallax`). Frames not registered at either end of the video are dropped; interior
ones get interpolated poses and make the result *approximate* (the scene is then marked ``approximate_poses``
and the model refines the poses in training), like ``rotation-only`` poses.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from semflow_ns.data.format import Intrinsics
from semflow_ns.data.producers.optical_flow import FrameFlow
from semflow_ns.process import ProcessError
from semflow_ns.process.observations import Observations
from semflow_ns.process.parallax import Parallax, measure_parallax
from semflow_ns.process.sfm import ADVICE, SfmResult, complete_poses

MIN_POINTS = 50
"""An SfM step with fewer triangulated points fails (as the default recipe always did)."""


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
    """sfm-flow: tracks and time split; sfm-subsampled: frames mapped; rotation-only: where rotations and focal
    length came from."""
    parallax: Optional[dict[str, float]] = None
    """The parallax guard's figures of the step's model (SfM steps that produced one)."""
    timing: Optional[dict[str, float]] = None
    """Where the step's time went (sfm-flow: tracks, database and verification, mapping, guard)."""
    figures: Optional[Parallax] = field(default=None, repr=False)
    """The guard's full measurement (with the rotation-only fit), not reported."""

    def as_dict(self) -> dict[str, Any]:
        """The report entry: step, registered, seconds (rounded), and error, note, parallax when present."""
        out: dict[str, Any] = {"step": self.step, "registered": self.registered, "seconds": round(self.seconds, 2)}
        for key in ("error", "note", "parallax"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.timing is not None:
            out["timing"] = {k: round(v, 2) for k, v in self.timing.items()}
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
    """SfM: mean reprojection error (px). rotation-only: mean or RMS residual (px) of the static tracks under
    the fitted rotations."""
    approximate: bool
    """rotation-only poses, or SfM poses with interpolated frames."""
    attempts: list[PoseAttempt] = field(default_factory=list)
    parallax: Optional[dict[str, float]] = None
    """The figures of the parallax guard for the model used (for ``rotation-only``: of the flow-track model that
    failed it, when there was one)."""
    observations: dict[int, Observations] = field(default_factory=dict)
    """Per frame with an exact SfM pose (index into the frames), its triangulated keypoints."""


@dataclass
class ChainInputs:
    """What the chain works on: the written frames, their COLMAP masks, the decoded images, masks and flow."""

    image_dir: Path
    mask_dir: Path
    names: list[str]
    work: Path
    """``colmap/`` folder of the scene being written."""
    rgb: Sequence[np.ndarray]
    static: Sequence[Optional[np.ndarray]]
    """Per frame, True where nothing moves (None: nothing known to move)."""
    flows: Sequence[FrameFlow] = ()
    """Forward-backward checked optical flow of every frame (for ``sfm-flow``; empty: the step is skipped)."""
    track_static: Sequence[np.ndarray] = ()
    """Per frame, True where flow tracks may be (not moving in the flow motion masks nor a moving class)."""


def guard(result: SfmResult, attempt: PoseAttempt) -> Optional[Parallax]:
    """Measures the parallax of ``result``'s model into ``attempt``; raises when the guard rejects it.

    Raises:
        ProcessError: the model's geometry is not constrained (the message gives the figure and threshold).
    """
    if result.model is None:
        return None
    figures = measure_parallax(result.model)
    if figures is None:
        return None
    attempt.parallax, attempt.figures = figures.as_dict(), figures
    failure = figures.failure()
    if failure is not None:
        raise ProcessError(failure)
    return figures


def pose_result(
    result: SfmResult, step: str, min_registered: float, attempts: list[PoseAttempt], start: float
) -> PoseResult:
    """``result`` as a PoseResult; records the attempt.

    Raises:
        ProcessError: too few frames registered, too few points (the message ends with what to try), or too
            little parallax.
    """
    attempt = PoseAttempt(step, int(result.registered.sum()), time.perf_counter() - start)
    attempts.append(attempt)
    completion = complete_poses(result, min_registered)
    if len(result.points) < MIN_POINTS:
        raise ProcessError(f"structure from motion triangulated only {len(result.points)} points. {ADVICE}")
    guard(result, attempt)
    attempt.seconds = time.perf_counter() - start
    return PoseResult(
        step, completion.camera_to_world, result.intrinsics, result.points, completion.first, completion.last,
        completion.interpolated, attempt.registered, result.reprojection_error,
        approximate=bool(completion.interpolated), attempts=attempts, parallax=attempt.parallax,
        observations=result.observations,
    )  # fmt: skip


def accept(
    result: SfmResult, step: str, min_registered: float, attempts: list[PoseAttempt], start: float
) -> Optional[PoseResult]:
    """``result`` as a PoseResult if it is good enough, else None; records the attempt either way."""
    try:
        return pose_result(result, step, min_registered, attempts, start)
    except ProcessError as err:
        attempts[-1].error = str(err).split(". What to try")[0]
        attempts[-1].seconds = time.perf_counter() - start
        return None
