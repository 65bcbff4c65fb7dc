"""The parallax guard: the rotation-only fit, its figures on a model with a real baseline, and its verdicts."""

import numpy as np
import pycolmap
import pytest
from scipy.spatial.transform import Rotation

from semflow_ns.process.parallax import (
    MIN_BASELINE_RATIO,
    MIN_ROTATION_RATIO,
    MIN_TRIANGULATION_DEGREES,
    Parallax,
    RotationFit,
    fit_rotation_only,
    measure_parallax,
)

SIZE, FOCAL, K1 = (320, 240), 260.0, 0.08


def _observations(translation: float, noise: float) -> tuple[np.ndarray, ...]:
    """Pixel observations of 300 points in 12 cameras turning by up to 20 degrees and moving sideways by
    ``translation`` (points 2-6 units away), with Gaussian pixel noise; SIMPLE_RADIAL with FOCAL and K1."""
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.uniform(-2, 2, (300, 2)), rng.uniform(2, 6, (300, 1))], axis=1)
    centre = np.array(SIZE) / 2
    xy, frames, tracks, rotations = [], [], [], []
    for i in range(12):
        rotation = Rotation.from_euler("yx", [20.0 * i / 11 - 10, 2.0 * np.sin(i)], degrees=True).as_matrix()
        local = (points - [translation * i / 11, 0.0, 0.0]) @ rotation.T
        plane = local[:, :2] / local[:, 2:]
        pixels = FOCAL * plane * (1 + K1 * np.sum(plane**2, axis=1, keepdims=True)) + centre
        pixels += rng.normal(0.0, noise, pixels.shape)
        seen = np.all((pixels >= 0) & (pixels <= SIZE), axis=1) & (local[:, 2] > 0)
        xy.append(pixels[seen])
        frames.append(np.full(int(seen.sum()), i))
        tracks.append(np.flatnonzero(seen))
        rotations.append(rotation)
    start = np.stack([Rotation.from_rotvec(0.01 * np.ones(3)).as_matrix() @ r for r in rotations])
    return np.concatenate(xy), np.concatenate(frames), np.concatenate(tracks), start, np.stack(rotations)


def test_rotation_fit_recovers_the_calibration_of_a_turning_camera() -> None:
    xy, frames, tracks, start, truth = _observations(translation=0.0, noise=0.2)
    focal, k1, rotations, residuals = fit_rotation_only(xy, frames, tracks, start, SIZE, np.array(SIZE) / 2)
    assert focal == pytest.approx(FOCAL, rel=0.02) and k1 == pytest.approx(K1, abs=0.03)
    assert np.sqrt(np.mean(residuals**2)) < 0.3  # the noise (0.2 px per axis: 0.28 px)
    # gauge-free: rotations relative to frame 0
    relative = [
        Rotation.from_matrix((r @ rotations[0].T).T @ t @ truth[0].T) for r, t in zip(rotations, truth, strict=True)
    ]
    assert max(np.degrees(r.magnitude()) for r in relative) < 0.2


def test_rotation_fit_cannot_explain_a_moving_camera() -> None:
    xy, frames, tracks, start, _ = _observations(translation=0.5, noise=0.2)
    _, _, _, residuals = fit_rotation_only(xy, frames, tracks, start, SIZE, np.array(SIZE) / 2)
    assert np.sqrt(np.mean(residuals**2)) > 5 * 0.28


def test_guard_accepts_a_model_with_a_real_baseline() -> None:
    options = pycolmap.SyntheticDatasetOptions()
    options.num_rigs, options.num_cameras_per_rig, options.num_frames_per_rig = 1, 1, 8
    options.num_points3D = 200
    options.camera_width, options.camera_height = 320, 240
    options.camera_params = [260.0, 160.0, 120.0, 0.0]
    figures = measure_parallax(pycolmap.synthesize_dataset(options))
    assert figures is not None and figures.failure() is None
    assert figures.rotation_ratio > 10 * MIN_ROTATION_RATIO  # noise-free observations: the floor of 0.05 px
    assert figures.median_triangulation_deg > MIN_TRIANGULATION_DEGREES and figures.baseline_ratio > MIN_BASELINE_RATIO
    assert set(figures.as_dict()) == {"median_triangulation_deg", "baseline_ratio", "rotation_ratio"}


@pytest.mark.parametrize(
    ("ratio", "angle", "baseline", "reason"),
    [
        (
            1.5,
            5.0,
            0.3,
            r"no parallax: rotation alone explains the tracks nearly as well \(rotation ratio 1.50 < 2.0\)",
        ),
        (3.0, 0.5, 0.3, r"too little parallax: median triangulation angle 0.50 deg < 1.0"),
        (3.0, 2.0, 0.01, r"too little parallax: camera path / median depth 0.0100 < 0.0175"),
        (3.0, 2.0, 0.3, None),
    ],
)
def test_guard_verdicts(ratio: float, angle: float, baseline: float, reason) -> None:
    fit = RotationFit(500.0, 0.0, (160.0, 120.0), {}, 0.5)
    failure = Parallax(angle, baseline, ratio, 0.2, fit).failure()
    if reason is None:
        assert failure is None
    else:
        assert failure is not None and __import__("re").fullmatch(reason, failure)
