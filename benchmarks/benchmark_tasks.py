"""The paper's label-subset tasks, scored on the frames whose labels were withheld, for six predictors.

Tasks (presets in ``configs/``): ``tracking-50`` (labels on the first 50 % of the frames) and
``completion-every-2`` (labels on every 2nd frame), each evaluated with ``--eval-source unlabelled``.

Predictors, on the same frames and scored by the same code (``image_metrics``):

- ``semantic-flow``: the default model, trained with ``ns-train``'s Trainer;
- ``point-head``: the same with ``configs/ablation-point-semantics.txt`` (the head sees only the point's
  own feature: the paper's "dynamic NeRF + semantic head" baseline);
- ``semantic-flow-detached``: the default model with ``configs/trajectory-detached.txt`` (semantic losses do
  not reach the scene flow through the trajectory; the official code's choice);
- ``semantic-flow-propagation``: the default model with ``configs/label-propagation.txt`` (label propagation:
  on frames without labels, the semantics of the neighbouring frame farther from the labels follow the frame's
  own along the scene flow; the dynamic semantic head sees the flow features only);
- ``copy``: 2D baseline, labels of the nearest labelled frame;
- ``flow``: 2D baseline, labels of the last labelled frame carried along the scene's optical flow.

Reported per scene, task and predictor: J, F, J&F, mIoU (all classes), foreground mIoU, and the wall
time to produce and score the predictions (training included). Every model run trains in its own
subprocess. Results go to ``<output>/results.json`` and a table on the console.

    python benchmarks/benchmark_tasks.py                                    # the demo, default length
    python benchmarks/benchmark_tasks.py --no-demo --data data/car-shadow   # a processed real video
    python benchmarks/benchmark_tasks.py --steps 300 --data data/a data/b   # shorter runs, demo + two scenes
"""

import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import tyro
from rich.console import Console
from rich.table import Table

CONSOLE = Console()
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TASKS = ("tracking-50", "completion-every-2")
"""Task presets (``configs/<task>.txt``)."""
METHODS = ("semantic-flow", "semantic-flow-detached", "semantic-flow-propagation", "point-head", "copy", "flow")
MODEL_PRESETS = {
    "semantic-flow": None,
    "semantic-flow-detached": "trajectory-detached.txt",
    "semantic-flow-propagation": "label-propagation.txt",
    "point-head": "ablation-point-semantics.txt",
}
"""Trained predictors and the model preset each adds to ``ns-train semantic-flow``."""
SCORES = ("j", "f", "jf", "miou", "miou_fg")


@dataclass
class Args:
    """Benchmark options."""

    data: tuple[Path, ...] = ()
    """Scene folders (semflow format) to benchmark besides the demo."""
    demo: bool = True
    """Include the built-in demo scene."""
    tasks: tuple[str, ...] = TASKS
    """Task presets from configs/."""
    methods: tuple[str, ...] = METHODS
    """Predictors: semantic-flow, semantic-flow-detached, semantic-flow-propagation, point-head, copy, flow."""
    steps: Optional[int] = None
    """Training steps of the models (default: the method's default)."""
    output: Path = Path("outputs/benchmark_tasks")
    """Where the runs and results.json go."""
    worker: Optional[str] = None
    """Internal: a JSON job (scene, task, method) to run in this process; prints its result as JSON."""


def task_args(task: str) -> list[str]:
    """The DataParser options of a task preset."""
    return shlex.split((CONFIGS / f"{task}.txt").read_text())


def model_config(scene: Path, task: str, method: str, steps: Optional[int], output: Path):
    """The trainer config of ``ns-train semantic-flow [model preset] semflow-data --data scene [task preset]``."""
    preset = MODEL_PRESETS[method]
    model_args = [] if preset is None else shlex.split((CONFIGS / preset).read_text())
    args = [*model_args, "semflow-data", "--data", str(scene), *task_args(task)]
    return trainer_config(args, f"{scene.name}-{task}-{method}", steps, output)


def trainer_config(args: list[str], experiment: str, steps: Optional[int], output: Path, method: str = "semantic-flow"):
    """The trainer config of ``ns-train METHOD ARGS`` on the CPU, into
    ``output/runs/experiment/METHOD/<timestamp>``, without evaluations or checkpoints during training
    (Trainer.train still saves the last step), so that semflow-eval and the other commands can load it."""
    from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion

    config = tyro.cli(AnnotatedBaseConfigUnion, args=[method, *args])
    config.machine.device_type = "cpu"
    config.vis = "tensorboard"
    config.output_dir = output / "runs"
    config.experiment_name = experiment
    if steps is not None:
        config.max_num_iterations = steps
    config.steps_per_eval_image = config.steps_per_eval_batch = config.steps_per_eval_all_images = 10**9
    config.steps_per_save = 10**9
    return config


def video_times(scene: Path) -> np.ndarray:
    from semflow_ns.data.format import load_scene

    return np.array([f.time for f in load_scene(scene, check_files=False).frames])


def run_model(scene: Path, task: str, method: str, steps: Optional[int], output: Path) -> dict:
    """Trains one model on a task and scores it on the unlabelled frames."""
    return train_and_score(model_config(scene, task, method, steps, output), scene)


def train_and_score(config, scene: Path, scenes: Optional[list[Path]] = None) -> dict:
    """Trains ``config`` (saving its last checkpoint) and scores its evaluation split; ``scenes``: the scenes of
    a multi-scene run (then ``scene`` is not used and the scores are also given per scene)."""
    from semflow_ns.scripts.eval import RunVideos, means_by_scene, score_images

    start = time.perf_counter()
    config.set_timestamp()
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.train()
    train_s = time.perf_counter() - start
    videos = RunVideos([video_times(scene)])
    if scenes is not None:
        videos = RunVideos([video_times(s) for s in scenes], trainer.pipeline.model.scene_names)
    means, rows = score_images(trainer.pipeline, videos)
    return {
        **({"scores_by_scene": means_by_scene(rows)} if scenes is not None else {}),
        "steps": config.max_num_iterations,
        "train_s": train_s,
        "wall_s": time.perf_counter() - start,
        "scores": means,
        "frames": [r["frame"] for r in rows],
        "per_frame": rows,
        "config": str(config.get_base_dir() / "config.yml"),
    }


def run_baseline(scene: Path, task: str, method: str) -> dict:
    """Runs a 2D baseline on a task and scores it on the unlabelled frames."""
    from semflow_ns.data.format import load_scene
    from semflow_ns.eval import baselines
    from semflow_ns.scripts.eval import mean_scores

    start = time.perf_counter()
    label_frames = task_args(task)[task_args(task).index("--label-frames") + 1]
    _, rows = baselines.run_baseline(load_scene(scene), label_frames, method)  # type: ignore[arg-type]
    keys = [k for k in rows[0] if k not in ("frame", "time")] if rows else []
    return {
        "wall_s": time.perf_counter() - start,
        "scores": mean_scores(rows, keys),
        "frames": [r["frame"] for r in rows],
        "per_frame": rows,
    }


def run_job(job: dict, args: Args) -> dict:
    """One (scene, task, method) measurement; models train in a subprocess, baselines run here."""
    scene, task, method = Path(job["scene"]), job["task"], job["method"]
    if method in MODEL_PRESETS:
        cmd = [sys.executable, __file__, "--worker", json.dumps(job), "--output", str(args.output)]
        if args.steps is not None:
            cmd += ["--steps", str(args.steps)]
        out = subprocess.run(cmd, env=dict(os.environ), check=True, stdout=subprocess.PIPE, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
    else:
        result = run_baseline(scene, task, method)
    return {"scene": str(scene), "task": task, "method": method, **result}


def scenes_of(args: Args) -> list[Path]:
    scenes = []
    if args.demo:
        from semflow_ns.data.demo.cache import default_demo_dir, ensure_demo_scene

        scenes.append(ensure_demo_scene(default_demo_dir(), progress=False))
    return scenes + [Path(p).resolve() for p in args.data]


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def print_table(results: list[dict]) -> None:
    table = Table(title="Label-subset tasks, scored on the unlabelled frames")
    for column in ("scene", "task", "method", "steps", "frames", "J", "F", "J&F", "mIoU", "fg mIoU", "wall (s)"):
        table.add_column(column)
    for r in results:
        s = r["scores"]
        table.add_row(
            Path(r["scene"]).name,
            r["task"],
            r["method"],
            str(r.get("steps", "–")),
            str(len(r["frames"])),
            *(_fmt(s.get(k)) for k in SCORES),
            f"{r['wall_s']:.0f}",
        )
    Console(width=max(CONSOLE.width, 150)).print(table)


def main(args: Args) -> None:
    unknown = [m for m in args.methods if m not in METHODS] + [t for t in args.tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"unknown method or task: {unknown}; methods {METHODS}, tasks {TASKS}")
    if args.worker is not None:
        job = json.loads(args.worker)
        print(json.dumps(run_model(Path(job["scene"]), job["task"], job["method"], args.steps, args.output)))
        return
    args.output.mkdir(parents=True, exist_ok=True)
    results = []
    for scene in scenes_of(args):
        for task in args.tasks:
            for method in args.methods:
                results.append(run_job({"scene": str(scene), "task": task, "method": method}, args))
                scores = ", ".join(f"{k} {_fmt(results[-1]['scores'].get(k))}" for k in SCORES)
                CONSOLE.print(f"{scene.name} {task} {method}: {scores}, {results[-1]['wall_s']:.0f} s", highlight=False)
                (args.output / "results.json").write_text(json.dumps(results, indent=1))
    print_table(results)


if __name__ == "__main__":
    main(tyro.cli(Args))
