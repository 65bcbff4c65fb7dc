"""Pose refinement in training wins back most of the quality lost to perturbed poses (about 3 minutes on 2 cores).

Three short runs on the tiny demo scene with the same seed and schedule (see
``benchmarks/benchmark_pose_refinement.py``): exact poses; every pose perturbed by 5 degrees and 5% of
the scene box without refinement; the same perturbed poses with refinement (the default for a scene
marked ``approximate_poses``). The perturbation is a few pixels of image motion at 32x24 pixels; the
refined run must recover at least half of the training-frame PSNR lost to it and move the poses
towards the exact ones. A model that ignored the correction anywhere in training (rays, projections)
or in the renders of training frames scores like the noisy run and fails.
"""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "benchmark_pose_refinement.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_pose_refinement", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_refinement_recovers_most_of_the_psnr_lost_to_pose_noise(tiny_scene, tmp_path):
    benchmark = load_benchmark()
    # a small, fast model and schedule; perturbation large enough that the gap stands out of the run noise
    experiment = benchmark.Experiment(
        rotation_deg=5.0,
        translation=0.05,
        steps=120,
        rays_per_batch=128,
        camera_lr=5e-3,
        plane_resolution=24,
        num_samples=8,
        hidden_dim=16,
        semantic_source="point",
        warped_ray_fraction=0.1,
    )
    result = benchmark.compare(experiment, tmp_path, scene=tiny_scene)
    clean, noisy, refined = (result.runs[name] for name in benchmark.RUNS)
    summary = {
        name: (round(run.psnr, 2), round(run.rotation_error_deg, 2), round(run.translation_error, 3))
        for name, run in result.runs.items()
    }
    assert clean.psnr - noisy.psnr > 0.3, f"the perturbation must cost PSNR to test anything: {summary}"
    assert result.recovered >= 0.5, f"recovered {result.recovered:.0%} of the gap: {summary}"
    assert refined.rotation_error_deg < 0.9 * noisy.rotation_error_deg, summary
    assert refined.translation_error < 0.9 * noisy.translation_error, summary
    assert math.isclose(noisy.rotation_error_deg, 5.0, rel_tol=1e-3), "the noisy run trains on the stored poses"
