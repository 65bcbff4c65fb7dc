"""Training speed and quality of `semantic-flow` against nerfstudio's `nerfacto`, on one machine in one run.

Each method trains in its own subprocess (so that peak memory is its own) through nerfstudio's
Trainer, with the same data (the demo scene unless --data is given). Reported per method:

- training rays per second (rays per batch / wall time of the training iterations, evaluation excluded)
  and the ratio semantic-flow / nerfacto;
- peak resident memory of the process;
- for semantic-flow, held-out PSNR / SSIM / mIoU / foreground mIoU / accuracies on the scene's evaluation
  views at regular wall-clock times, over all views and per view set (the demo: ``nearby`` views on the
  training arc, ``novel`` views above it, some between frame times), and the total wall time of the run.
  Wall times leave out the benchmark's own evaluations (setup, data loading and training are in), so they
  are what a plain `ns-train` run of as many steps takes; the evaluations' time, the last one included, is
  reported separately.

    python benchmarks/benchmark_training.py                        # full default run (~20 min on 2 cores)
    python benchmarks/benchmark_training.py --nerfacto-steps 0     # semantic-flow only

nerfacto builds LPIPS in its constructor, which downloads AlexNet weights; offline, the benchmark
points TORCH_HOME at a temporary folder holding randomly initialised AlexNet weights so that nerfacto
can start (LPIPS is not reported). nerfacto keeps its own defaults (4096 rays per batch, parallel
data manager) except for the data.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import tyro
from rich.console import Console
from rich.table import Table

CONSOLE = Console()


@dataclass
class Args:
    """Benchmark options."""

    data: Optional[Path] = None
    """Scene folder (semflow format); default: the demo scene."""
    steps: Optional[int] = None
    """Training steps of semantic-flow (default: the method's default)."""
    nerfacto_steps: int = 30
    """Training steps of nerfacto (0 skips it)."""
    eval_every_seconds: float = 120.0
    """Wall-clock interval between held-out evaluations of semantic-flow."""
    eval_every_steps: int = 0
    """Evaluate every this many steps instead (not affected by other load on the machine; 0: by wall time)."""
    model_args: str = ""
    """More `ns-train semantic-flow` options (e.g. "--pipeline.model.semantic-field-features False")."""
    output: Path = Path("outputs/benchmark")
    """Where runs and results.json go."""
    worker: Optional[str] = None
    """Internal: run one method in this process and print its results as JSON."""


def _trainer(method: str, args: Args, steps: int):
    import shlex

    import tyro
    from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion, all_methods
    from nerfstudio.scripts.train import _set_random_seed

    from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig

    config = all_methods[method]
    if method == "semantic-flow" and args.model_args:
        config = tyro.cli(AnnotatedBaseConfigUnion, args=[method, *shlex.split(args.model_args)])
    config.machine.device_type = "cpu"
    config.vis = "tensorboard"
    config.output_dir = args.output / "runs"
    config.max_num_iterations = steps
    config.steps_per_eval_image = config.steps_per_eval_batch = config.steps_per_eval_all_images = 10**9
    config.steps_per_save = 10**9
    config.pipeline.datamanager.dataparser = SemanticFlowDataParserConfig(
        **({} if args.data is None else {"data": args.data})
    )
    config.set_timestamp()
    config.save_config()
    _set_random_seed(config.machine.seed)  # as ns-train does before building the trainer
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


def _evaluate(trainer) -> dict:
    """Held-out scores over all evaluation views, and per view set (the demo: ``nearby`` and ``novel``)."""
    from semflow_ns.scripts.eval import RunVideos, means_by_view_set, score_images

    pipeline = trainer.pipeline
    video = pipeline.datamanager.eval_dataset.metadata["semflow_video"]
    means, rows = score_images(pipeline, RunVideos([video.times.cpu().numpy()]))
    pipeline.train()
    by_set = {name: _without_std(m) for name, m in means_by_view_set(rows).items()}
    return {**_without_std(means), **({"by_view_set": by_set} if by_set else {})}


def _without_std(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items() if not k.endswith("_std")}


def run_worker(method: str, args: Args) -> dict:
    """Trains one method and returns its measurements."""

    steps = args.nerfacto_steps if method == "nerfacto" else (args.steps or _default_steps(method))
    start = time.perf_counter()
    trainer = _trainer(method, args, steps)
    steps = trainer.config.max_num_iterations  # the automatic schedule (0) is resolved when the data is loaded
    rays_per_batch = trainer.pipeline.datamanager.get_train_rays_per_batch()
    train_time, eval_time, curve, next_eval = 0.0, 0.0, [], args.eval_every_seconds
    for step in range(steps):
        trainer.step = step
        tick = time.perf_counter()
        trainer_step(trainer, step)
        train_time += time.perf_counter() - tick
        wall = time.perf_counter() - start - eval_time  # what a plain ns-train run would have taken so far
        due = (step + 1) % args.eval_every_steps == 0 if args.eval_every_steps > 0 else wall >= next_eval
        if method == "semantic-flow" and (due or step == steps - 1):
            tick = time.perf_counter()
            curve.append({"step": step + 1, "wall_s": wall, **_evaluate(trainer)})
            eval_time += time.perf_counter() - tick
            next_eval += args.eval_every_seconds
            print(f"{method} step {step + 1}: {curve[-1]}", file=sys.stderr, flush=True)
    trainer.save_checkpoint(steps - 1)
    return {
        "method": method,
        "steps": steps,
        "rays_per_batch": rays_per_batch,
        "train_rays_per_s": rays_per_batch * steps / train_time,
        "train_s": train_time,
        "wall_s": time.perf_counter() - start - eval_time,
        "eval_s": eval_time,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "curve": curve,
    }


def trainer_step(trainer, step: int) -> None:
    """One training step as ``Trainer.train`` runs it: the callbacks around ``train_iteration``."""
    from nerfstudio.engine.callbacks import TrainingCallbackLocation

    trainer.pipeline.train()
    for callback in trainer.callbacks:
        callback.run_callback_at_location(step, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
    trainer.train_iteration(step)
    for callback in trainer.callbacks:
        callback.run_callback_at_location(step, location=TrainingCallbackLocation.AFTER_TRAIN_ITERATION)


def _default_steps(method: str) -> int:
    from nerfstudio.configs.method_configs import all_methods

    return all_methods[method].max_num_iterations


def _alexnet_home() -> str:
    """A TORCH_HOME with random AlexNet weights, so that nerfacto's LPIPS can be built offline."""
    home = Path(tempfile.mkdtemp(prefix="semflow-bench-torch-"))
    target = home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    target.parent.mkdir(parents=True)
    import torch
    import torchvision

    torch.save(torchvision.models.alexnet(weights=None).state_dict(), target)
    return str(home)


def _spawn(method: str, args: Args, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--output", str(args.output)]
    cmd += ["--nerfacto-steps", str(args.nerfacto_steps), "--eval-every-seconds", str(args.eval_every_seconds)]
    cmd += ["--eval-every-steps", str(args.eval_every_steps), f"--model-args={args.model_args}"]
    if args.steps is not None:
        cmd += ["--steps", str(args.steps)]
    if args.data is not None:
        cmd += ["--data", str(args.data)]
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def print_tables(results: list) -> None:
    table = Table(title="Training speed (CPU)")
    for column in ("method", "rays/batch", "steps", "train rays/s", "peak RSS (MB)", "wall (s)", "evaluations (s)"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r["method"],
            str(r["rays_per_batch"]),
            str(r["steps"]),
            f"{r['train_rays_per_s']:.0f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['wall_s']:.0f}",
            f"{r['eval_s']:.0f}",
        )
    CONSOLE.print(table)
    speeds = {r["method"]: r["train_rays_per_s"] for r in results}
    if "nerfacto" in speeds and "semantic-flow" in speeds:
        CONSOLE.print(f"semantic-flow / nerfacto training rays/s: {speeds['semantic-flow'] / speeds['nerfacto']:.2f}x")
    for r in results:
        if not r["curve"]:
            continue
        sets = r["curve"][0].get("by_view_set") or {"all": None}
        for name in sets:
            curve = Table(title=f"{r['method']}: held-out views ({name}) against wall time")
            for column in ("wall (s)", "step", "PSNR", "SSIM", "mIoU", "fg mIoU", "total acc.", "class acc."):
                curve.add_column(column)
            for p in r["curve"]:
                m = p if name == "all" else p["by_view_set"][name]
                curve.add_row(
                    f"{p['wall_s']:.0f}",
                    str(p["step"]),
                    f"{m['psnr']:.2f}",
                    f"{m['ssim']:.3f}",
                    f"{m['miou']:.3f}",
                    f"{m['miou_fg']:.3f}",
                    f"{m['total_accuracy']:.3f}",
                    f"{m['class_accuracy']:.3f}",
                )
            CONSOLE.print(curve)


def main(args: Args) -> None:
    if args.worker is not None:
        result = run_worker(args.worker, args)
        print(json.dumps(result))
        return
    args.output.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    results = [_spawn("semantic-flow", args, env)]
    if args.nerfacto_steps > 0:
        env["TORCH_HOME"] = _alexnet_home()
        results.append(_spawn("nerfacto", args, env))
    (args.output / "results.json").write_text(json.dumps(results, indent=1))
    print_tables(results)


if __name__ == "__main__":
    main(tyro.cli(Args))
