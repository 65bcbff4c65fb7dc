"""Pose refinement in training wins back quality and pose accuracy lost to perturbed poses (1-2 min on 2 cores).

Three short runs on the tiny demo scene with the same seed and schedule (see
``benchmarks/benchmark_pose_refinement.py``): exact poses; every pose perturbed by 5 degrees and 5% of
the scene box without refinement; the same perturbed poses with refinement (the default for a scene
marked ``approximate_poses``). The perturbation is 2-3 pixels of image motion at 32x24 pixels. A model
that ignored the correction in training or in the renders of training frames scores like the noisy run
(with refinement off, the "refined" run is the noisy run exactly) and fails.

Schedule: 300 steps of 128 rays, with the pose corrections' learning rate at 1e-2 (the method's default,
1e-3, is sized for its 2200 steps), on one CPU thread, every random generator seeded (nerfstudio's pixel
sampler uses Python's). A run is reproducible in one environment, but single short runs of a tiny model
differ by a few tenths of a dB between environments. Measured recovered fractions of the PSNR gap
(0.7-1.4 dB): `benchmarks/benchmark_pose_refinement.py` seeds 0-3: 46%, 78%, 87%, 85%; this test (seed 2
under pytest): 43%; rotation errors fell from 5.0 to 2.8-3.4 degrees and translation errors from 0.200 to
0.131-0.179 world units in every run. Asking for half of the gap would fail in about one environment in
three, so the test asks for a quarter of it, a PSNR gain over the noisy run, and both pose errors to shrink
(by 5 % at least: one run here ended at 4.26 degrees while winning back the whole PSNR gap). With refinement
off both errors stay exactly where the perturbation put them.
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


def test_refinement_wins_back_psnr_and_pose_accuracy_lost_to_pose_noise(tmp_path):
    benchmark = load_benchmark()
    # a small, fast model and schedule; perturbation large enough that the gap stands out of the run noise
    experiment = benchmark.Experiment(
        rotation_deg=5.0,
        translation=0.05,
        steps=300,
        rays_per_batch=128,
        camera_lr=1e-2,
        plane_resolution=24,
        num_samples=8,
        hidden_dim=16,
        semantic_source="point",
        warped_ray_fraction=0.1,
        seed=2,
    )
    result = benchmark.compare(experiment, tmp_path)  # generates the tiny demo scene, as the benchmark does
    clean, noisy, refined = (result.runs[name] for name in benchmark.RUNS)
    summary = {
        name: (round(run.psnr, 2), round(run.rotation_error_deg, 2), round(run.translation_error, 3))
        for name, run in result.runs.items()
    }
    assert clean.psnr - noisy.psnr > 0.3, f"the perturbation must cost PSNR to test anything: {summary}"
    assert result.recovered >= 0.25, f"recovered {result.recovered:.0%} of the gap: {summary}"
    assert refined.psnr - noisy.psnr > 0.15, summary
    assert refined.rotation_error_deg < 0.95 * noisy.rotation_error_deg, summary
    assert refined.translation_error < 0.95 * noisy.translation_error, summary
    assert math.isclose(noisy.rotation_error_deg, 5.0, rel_tol=1e-3), "the noisy run trains on the stored poses"
