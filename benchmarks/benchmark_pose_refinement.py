"""How much of the quality lost to noisy camera poses pose refinement wins back.

The training poses of a demo scene are perturbed (every frame: a rotation of ``--rotation-deg`` degrees
about a random axis through the camera centre, and a shift of ``--translation`` times the scene box's
largest side in a random direction), and the scene is marked ``approximate_poses``. Three runs with the
same seed and schedule are compared:

- ``clean``: the exact poses, no refinement;
- ``noisy``: the perturbed poses, refinement off (``--pipeline.model.camera-optimizer.mode off``);
- ``refined``: the perturbed poses, refinement on (the default for approximate scenes).

Reported per run: PSNR of the training frames rendered at the run's own poses (the stored ones, refined
when refining), the fraction of the clean/noisy PSNR gap that refinement recovers, and the mean rotation
(degrees) and translation (world units) errors of the poses used against the exact ones.

    python benchmarks/benchmark_pose_refinement.py        # tiny demo scene, seeds 0-3: about 5 minutes on 2 cores
    python benchmarks/benchmark_pose_refinement.py --seeds 0 --experiment.steps 600 --experiment.width 64

The defaults are a small model (no flow feature aggregation: `semantic_source point`) on the tiny 32x24
demo, 300 steps each; they are the settings of the test.

``tests/test_pose_refinement_training.py`` runs :func:`compare` with a short schedule.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

RUNS = ("clean", "noisy", "refined")


@dataclass
class Experiment:
    """Scene, perturbation and schedule of a comparison."""

    num_frames: int = 8
    """Video frames of the generated demo scene."""
    width: int = 32
    """Image width of the generated demo scene."""
    height: int = 24
    """Image height of the generated demo scene."""
    rotation_deg: float = 5.0
    """Rotation of every training camera about a random axis through its centre (degrees)."""
    translation: float = 0.05
    """Shift of every training camera, as a fraction of the scene box's largest side."""
    steps: int = 300
    """Training steps of each run."""
    rays_per_batch: int = 128
    """Rays per training batch."""
    camera_lr: float = 1e-2
    """Initial learning rate of the pose corrections (the method's default, 1e-3, is sized for its 2200 steps)."""
    plane_resolution: int = 24
    """Spatial resolution of the fields' plane grids (small model for a quick comparison)."""
    num_samples: int = 8
    """Samples per ray of the fields (twice as many for the proposal sampler)."""
    hidden_dim: int = 16
    """Width of the fields' MLPs."""
    semantic_source: str = "point"
    """The model's semantic_source: flow (the method) or point (cheaper: no flow feature aggregation)."""
    warped_ray_fraction: float = 0.1
    """The model's warped_ray_fraction (lower is cheaper)."""
    seed: int = 0
    """Seed of the perturbation and of the training runs."""
    threads: int = 1
    """CPU threads of torch during the runs (0: leave as is). The tiny model's tensors are small: one thread
    is faster than several, far more so when other processes share the cores."""


@dataclass
class RunResult:
    name: str
    psnr: float
    rotation_error_deg: float
    translation_error: float
    seconds: float


@dataclass
class Comparison:
    experiment: Experiment
    runs: dict[str, RunResult] = field(default_factory=dict)

    @property
    def recovered(self) -> float:
        """Fraction of the PSNR lost to the noise that refinement wins back (1 = all of it)."""
        gap = self.runs["clean"].psnr - self.runs["noisy"].psnr
        return (self.runs["refined"].psnr - self.runs["noisy"].psnr) / gap if gap > 0 else math.nan


def random_rotation(rng: np.random.Generator, degrees: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = math.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k  # Rodrigues


def perturb_poses(scene: Path, rotation_deg: float, translation: float, seed: int) -> None:
    """Perturbs the video poses of the scene folder in place and marks it ``approximate_poses``."""
    path = scene / "transforms.json"
    data = json.loads(path.read_text())
    box = np.asarray(data["scene_box"], dtype=np.float64)
    shift = translation * float((box[1] - box[0]).max())
    rng = np.random.default_rng(seed)
    for frame in data["frames"]:
        c2w = np.asarray(frame["transform_matrix"], dtype=np.float64)
        direction = rng.normal(size=3)
        c2w[:3, :3] = random_rotation(rng, rotation_deg) @ c2w[:3, :3]
        c2w[:3, 3] += shift * direction / np.linalg.norm(direction)
        frame["transform_matrix"] = c2w.tolist()
    data["approximate_poses"] = True
    path.write_text(json.dumps(data, indent=1))


def pose_errors(poses: torch.Tensor, exact: torch.Tensor) -> tuple[float, float]:
    """Mean rotation angle (degrees) and mean centre distance between two sets of [N, 3, 4] poses."""
    relative = poses[:, :3, :3].transpose(1, 2) @ exact[:, :3, :3]
    cosine = ((relative.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1.0, 1.0)
    angles = torch.rad2deg(torch.arccos(cosine))
    return float(angles.mean()), float((poses[:, :3, 3] - exact[:, :3, 3]).norm(dim=-1).mean())


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)  # nerfstudio's pixel sampler draws with Python's random


def train_and_score(scene: Path, mode: str, experiment: Experiment, exact: torch.Tensor) -> RunResult:
    """Trains on ``scene`` with camera-optimizer ``mode`` and scores the training frames at the run's poses."""
    from nerfstudio.engine.callbacks import TrainingCallbackAttributes, TrainingCallbackLocation
    from nerfstudio.engine.optimizers import Optimizers

    from semflow_ns.configs.method_configs import _optimizer, semantic_flow_config  # noqa: PLC2701
    from semflow_ns.fields.encoding import PlaneEncodingConfig

    start = time.perf_counter()
    seed_everything(experiment.seed)
    config = semantic_flow_config()
    config.pipeline.datamanager.dataparser.data = scene
    config.pipeline.datamanager.train_num_rays_per_batch = experiment.rays_per_batch
    model = config.pipeline.model
    model.camera_optimizer.mode = mode  # type: ignore[assignment]
    model.num_proposal_samples, model.num_samples = 2 * experiment.num_samples, experiment.num_samples
    model.render_samples = None  # renders sample as this small model trains
    model.semantic_samples = max(1, experiment.num_samples // 4)
    model.semantic_source = experiment.semantic_source  # type: ignore[assignment]
    model.warped_ray_fraction = experiment.warped_ray_fraction
    planes = PlaneEncodingConfig(resolutions=(experiment.plane_resolution,), num_components=8)
    for field_config in (model.static_field, model.dynamic_field):
        field_config.planes, field_config.hidden_dim, field_config.feature_dim = planes, experiment.hidden_dim, 15
    model.scene_flow.planes = model.proposal_planes = planes
    model.proposal_warmup = experiment.steps
    for group in config.optimizers.values():  # the method's optimizers, with schedules as long as the run
        group["scheduler"].max_steps = experiment.steps
    config.optimizers["camera_opt"] = _optimizer(experiment.camera_lr, experiment.steps)
    pipeline = config.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)
    optimizers = Optimizers(config.optimizers, pipeline.get_param_groups())
    attributes = TrainingCallbackAttributes(optimizers=optimizers, grad_scaler=None, pipeline=pipeline, trainer=None)
    callbacks = pipeline.get_training_callbacks(attributes)
    for step in range(experiment.steps):
        pipeline.train()
        for callback in callbacks:
            callback.run_callback_at_location(step, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        _, loss_dict, _ = pipeline.get_train_loss_dict(step)
        optimizers.zero_grad_all()
        sum(loss_dict.values()).backward()  # type: ignore[union-attr]
        optimizers.optimizer_step_all()
        optimizers.scheduler_step_all(step)
        for callback in callbacks:
            callback.run_callback_at_location(step, TrainingCallbackLocation.AFTER_TRAIN_ITERATION)

    pipeline.eval()
    dataset = pipeline.datamanager.train_dataset
    psnrs = []
    with torch.no_grad():
        for index in range(len(dataset)):
            outputs = pipeline.model.get_outputs_for_camera(dataset.cameras[index : index + 1])
            image = dataset[index]["image"][..., :3].float()
            mse = torch.mean((outputs["rgb"] - image) ** 2)
            psnrs.append(float(-10 * torch.log10(mse)))
        poses = pipeline.model.video_cameras.refined_camera_to_worlds()
    rotation, translation = pose_errors(poses, exact)
    return RunResult(mode, float(np.mean(psnrs)), rotation, translation, time.perf_counter() - start)


def compare(experiment: Experiment, workdir: Path, scene: Optional[Path] = None) -> Comparison:
    """The three runs of the module docstring; ``scene`` (default: a generated demo scene) is not modified."""
    from semflow_ns.data.demo import DemoSceneConfig, generate_demo_scene
    from semflow_ns.data.format import load_scene

    seed_everything(experiment.seed)
    if scene is None:
        scene = workdir / "clean"
        demo = DemoSceneConfig(num_frames=experiment.num_frames, width=experiment.width, height=experiment.height)
        demo.num_eval_times = min(2, experiment.num_frames)
        generate_demo_scene(scene, demo, progress=False)
    noisy = Path(shutil.copytree(scene, workdir / "noisy"))
    perturb_poses(noisy, experiment.rotation_deg, experiment.translation, experiment.seed)
    exact = torch.from_numpy(np.stack([f.camera_to_world[:3, :4] for f in load_scene(scene).frames])).float()
    result = Comparison(experiment)
    threads = torch.get_num_threads()
    if experiment.threads > 0:
        torch.set_num_threads(experiment.threads)
    try:
        for name, data, mode in (("clean", scene, "off"), ("noisy", noisy, "off"), ("refined", noisy, "auto")):
            result.runs[name] = train_and_score(data, mode, experiment, exact)
            result.runs[name].name = name
    finally:
        torch.set_num_threads(threads)
    return result


def print_table(results: list[Comparison]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Pose refinement on perturbed poses: PSNR of the training frames, pose errors")
    for column in (
        "seed",
        "clean PSNR",
        "noisy PSNR",
        "refined PSNR",
        "gap recovered",
        "rotation error (deg)",
        "translation error",
        "time (s)",
    ):
        table.add_column(column)
    for result in results:
        clean, noisy, refined = (result.runs[name] for name in RUNS)
        table.add_row(
            str(result.experiment.seed),
            f"{clean.psnr:.2f}",
            f"{noisy.psnr:.2f}",
            f"{refined.psnr:.2f}",
            f"{100 * result.recovered:.0f}%",
            f"{noisy.rotation_error_deg:.2f} -> {refined.rotation_error_deg:.2f}",
            f"{noisy.translation_error:.3f} -> {refined.translation_error:.3f}",
            f"{sum(run.seconds for run in result.runs.values()):.0f}",
        )
    Console().print(table)


@dataclass
class Args:
    """Benchmark options: the experiment, repeated for several seeds."""

    experiment: Experiment = field(default_factory=Experiment)
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    """Seeds to run (each: its own perturbation and training runs); replaces --experiment.seed."""
    output: Optional[Path] = None
    """JSON file for the raw numbers (default: none)."""


def main() -> None:
    import dataclasses

    import tyro

    args = tyro.cli(Args)
    results = []
    for seed in args.seeds:
        experiment = dataclasses.replace(args.experiment, seed=seed)
        with tempfile.TemporaryDirectory() as workdir:
            results.append(compare(experiment, Path(workdir)))
    print_table(results)
    raw = [
        {
            "experiment": asdict(r.experiment),
            "runs": {k: asdict(v) for k, v in r.runs.items()},
            "recovered": r.recovered,
        }
        for r in results
    ]
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(raw, indent=1))
    json.dump(raw, sys.stdout)
    print()


if __name__ == "__main__":
    main()
