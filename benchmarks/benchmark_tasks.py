"""The paper's label-subset tasks, scored on the frames whose labels were withheld, for six predictors.

Tasks (presets in ``configs/``): ``tracking-first`` (DAVIS's semi-supervised protocol: only frame 0 labelled),
``tracking-25`` and ``tracking-50`` (labels on the first 25 % or 50 % of the frames) and ``completion-every-2``
(labels on every 2nd frame), each evaluated with ``--eval-source unlabelled``; and ``withheld-every-8`` (every 8th
frame left out of training and scored: new views along the camera path, for the models only).

Predictors, on the same frames and scored by the same code (``image_metrics``):

- ``semantic-flow``: the default model, trained with ``ns-train``'s Trainer (with labels on some frames only, it
  trains on the labels carried along the optical flow too: see ``SemanticFlowModelConfig.flow_label_loss_mult``);
- ``point-head``: the same with ``configs/ablation-point-semantics.txt`` (the head sees only the point's
  own feature: the paper's "dynamic NeRF + semantic head" baseline);
- ``semantic-flow-detached``: the default model with ``configs/trajectory-detached.txt`` (semantic losses do
  not reach the scene flow through the trajectory; the official code's choice);
- ``semantic-flow-propagation``: ``configs/label-propagation.txt`` (label propagation along the scene flow on,
  outward, gated neither by the optical flow nor by how many frames are labelled, with the flow-features-only
  head: the default for partial labels until 2026-12-06);
- ``semantic-flow-no-propagation``: the model as it was before label propagation first became the default for
  partial labels (no propagation, the head also sees the field features);
- ``copy``: 2D baseline, labels of the nearest labelled frame;
- ``flow``: 2D baseline, labels of the last labelled frame carried along the scene's optical flow.

Reported per scene, task and predictor: J, F, J&F, mIoU (all classes), foreground mIoU, PSNR, and the wall
time to produce and score the predictions (training included). Every model run trains in its own
subprocess, once per ``--seeds`` value (``--machine.seed``); the table gives each run and, with several seeds,
their mean. ``--reference REV`` also trains every model with the code of git revision ``REV`` (exported into a
temporary folder), to compare versions at equal steps; ``--eval-every K`` scores the model every K steps while
it trains (wall time without the evaluations: a time-to-quality curve). Results go to
``<output>/results.json`` and a table on the console.

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
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import tyro
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_speed import export_revision  # noqa: E402
from benchmark_training import trainer_step  # noqa: E402

CONSOLE = Console()
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TASKS = ("tracking-first", "tracking-25", "tracking-50", "completion-every-2", "withheld-every-8")
"""Task presets (``configs/<task>.txt``)."""
METHODS = (
    "semantic-flow",
    "semantic-flow-detached",
    "semantic-flow-propagation",
    "semantic-flow-no-propagation",
    "point-head",
    "copy",
    "flow",
)
DEFAULT_METHODS = ("semantic-flow", "point-head", "copy", "flow")
MODEL_PRESETS: dict[str, Optional[str]] = {
    "semantic-flow": None,
    "semantic-flow-detached": "trajectory-detached.txt",
    "semantic-flow-propagation": "label-propagation.txt",
    "semantic-flow-no-propagation": None,
    "point-head": "ablation-point-semantics.txt",
}
EXTRA_ARGS = {
    "semantic-flow-no-propagation": [
        "--pipeline.model.semantic-propagation-loss-mult",
        "0",
        "--pipeline.model.semantic-field-features",
        "True",
    ]
}
"""Trained predictors and the model preset each adds to ``ns-train semantic-flow``."""
SCORES = ("j", "f", "jf", "miou", "miou_fg", "psnr")


@dataclass
class Args:
    """Benchmark options."""

    data: tuple[Path, ...] = ()
    """Scene folders (semflow format) to benchmark besides the demo."""
    demo: bool = True
    """Include the built-in demo scene."""
    tasks: tuple[str, ...] = ("tracking-first", "tracking-50")
    """Task presets from configs/: tracking-first, tracking-25, tracking-50, completion-every-2, withheld-every-8."""
    methods: tuple[str, ...] = DEFAULT_METHODS
    """Predictors: semantic-flow, semantic-flow-detached, semantic-flow-propagation, semantic-flow-no-propagation,
    point-head, copy, flow."""
    steps: Optional[int] = None
    """Training steps of the models (default: the method's default)."""
    seeds: tuple[int, ...] = (0,)
    """Seeds of the model runs (each model trains once per seed)."""
    model_args: str = ""
    """More `ns-train semantic-flow` options for every model run (e.g. "--pipeline.model.num-samples 16")."""
    reference: str = ""
    """Git revision whose code also trains every model (rows "METHOD @ REV")."""
    eval_every: int = 0
    """Score the models every this many steps while they train (0: at the end only)."""
    parallel: int = 1
    """Model runs at a time (each in its own process)."""
    threads: int = 0
    """Threads per model run (OMP_NUM_THREADS; 0: PyTorch's default). With --parallel 2 on 2 cores, use 1."""
    resume: bool = False
    """Keep the runs already in <output>/results.json and run only the missing ones."""
    render_scale: float = 1.0
    """Score every predictor at this fraction of the resolution (models render at it; the 2D baselines' labels
    and the ground truth are resized, nearest). 0.5 scores four times faster."""
    output: Path = Path("outputs/benchmark_tasks")
    """Where the runs and results.json go."""
    worker: Optional[str] = None
    """Internal: a JSON job (scene, task, method) to run in this process; prints its result as JSON."""


def task_args(task: str) -> list[str]:
    """The DataParser options of a task preset."""
    return shlex.split((CONFIGS / f"{task}.txt").read_text())


def label_frames(task: str) -> Optional[str]:
    """The ``--label-frames`` value of a task preset; None for a task that labels every frame."""
    args = task_args(task)
    return args[args.index("--label-frames") + 1] if "--label-frames" in args else None


def model_config(scene: Path, task: str, method: str, steps: Optional[int], output: Path, job: dict):
    """The trainer config of ``ns-train semantic-flow [model preset] semflow-data --data scene [task preset]``."""
    preset = MODEL_PRESETS[method]
    model_args = [] if preset is None else shlex.split((CONFIGS / preset).read_text())
    model_args += EXTRA_ARGS.get(method, []) + shlex.split(job.get("model_args", ""))
    args = [*model_args, "semflow-data", "--data", str(scene), *task_args(task)]
    name = f"{scene.name}-{task}-{method}-seed{job.get('seed', 0)}{'-ref' if job.get('reference') else ''}"
    config = trainer_config(args, name, steps, output)
    config.machine.seed = job.get("seed", 0)
    return config


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


def run_model(job: dict, steps: Optional[int], output: Path, eval_every: int = 0, scale: float = 1.0) -> dict:
    """Trains one model on a task and scores it on the unlabelled frames."""
    scene = Path(job["scene"])
    config = model_config(scene, job["task"], job["method"], steps, output, job)
    return train_and_score(config, scene, eval_every=eval_every, scale=scale)


def _scale_arg(scale: float) -> dict:
    """``score_images``'s scale argument, left out at full resolution (versions before it have none)."""
    return {} if scale == 1.0 else {"scale": scale}


def _train_with_curve(trainer, scene: Path, eval_every: int, start: float, scale: float) -> tuple[list[dict], float]:
    """Trains as ``Trainer.train`` does, scoring the evaluation split every ``eval_every`` steps; returns the
    points (wall time of each without the evaluations before it) and the time the evaluations took."""

    from semflow_ns.scripts.eval import RunVideos, score_images

    curve, eval_s = [], 0.0
    steps = trainer.config.max_num_iterations
    for step in range(steps):
        trainer_step(trainer, step)
        if (step + 1) % eval_every == 0 and step + 1 < steps:
            tick = time.perf_counter()
            means, _ = score_images(trainer.pipeline, RunVideos([video_times(scene)]), **_scale_arg(scale))
            curve.append({"step": step + 1, "wall_s": tick - start - eval_s, **means})
            eval_s += time.perf_counter() - tick
            print(f"step {step + 1}: {curve[-1]}", file=sys.stderr, flush=True)
    trainer.save_checkpoint(steps - 1)
    return curve, eval_s


def train_and_score(
    config, scene: Path, scenes: Optional[list[Path]] = None, eval_every: int = 0, scale: float = 1.0
) -> dict:
    """Trains ``config`` (saving its last checkpoint) and scores its evaluation split; ``scenes``: the scenes of
    a multi-scene run (then ``scene`` is not used and the scores are also given per scene); ``eval_every``: also
    score it every this many steps while it trains (``curve``; times leave out those evaluations)."""
    from nerfstudio.scripts.train import _set_random_seed

    from semflow_ns.scripts.eval import RunVideos, means_by_scene, score_images

    start = time.perf_counter()
    config.set_timestamp()
    config.save_config()
    _set_random_seed(config.machine.seed)  # as ns-train does before building the trainer
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    curve, eval_s = [], 0.0
    if eval_every > 0:
        curve, eval_s = _train_with_curve(trainer, scene, eval_every, start, scale)
    else:
        trainer.train()
    train_s = time.perf_counter() - start - eval_s
    videos = RunVideos([video_times(scene)])
    if scenes is not None:
        videos = RunVideos([video_times(s) for s in scenes], trainer.pipeline.model.scene_names)
    means, rows = score_images(trainer.pipeline, videos, **_scale_arg(scale))
    return {
        **({"scores_by_scene": means_by_scene(rows)} if scenes is not None else {}),
        "steps": config.max_num_iterations,
        "train_s": train_s,
        "wall_s": time.perf_counter() - start - eval_s,
        "scores": means,
        "curve": curve + [{"step": config.max_num_iterations, "wall_s": train_s, **means}] if curve else [],
        "frames": [r["frame"] for r in rows],
        "per_frame": rows,
        "config": str(config.get_base_dir() / "config.yml"),
    }


def run_baseline(scene: Path, task: str, method: str, scale: float = 1.0) -> dict:
    """Runs a 2D baseline on a task and scores it on the unlabelled frames."""
    from semflow_ns.data.format import load_scene
    from semflow_ns.eval import baselines
    from semflow_ns.scripts.eval import mean_scores

    start = time.perf_counter()
    _, rows = baselines.run_baseline(load_scene(scene), label_frames(task), method, scale)  # type: ignore[arg-type]
    keys = [k for k in rows[0] if k not in ("frame", "time")] if rows else []
    return {
        "wall_s": time.perf_counter() - start,
        "scores": mean_scores(rows, keys),
        "frames": [r["frame"] for r in rows],
        "per_frame": rows,
    }


def run_job(job: dict, args: Args, code: Optional[Path] = None) -> dict:
    """One (scene, task, method, seed) measurement; models train in a subprocess (with the code in ``code`` for
    a reference run), baselines run here."""
    scene, task, method = Path(job["scene"]), job["task"], job["method"]
    if method in MODEL_PRESETS:
        cmd = [sys.executable, __file__, "--worker", json.dumps(job), "--output", str(args.output)]
        cmd += ["--eval-every", str(args.eval_every), "--render-scale", str(args.render_scale)]
        if args.steps is not None:
            cmd += ["--steps", str(args.steps)]
        env = dict(os.environ)
        if code is not None:
            env["PYTHONPATH"] = str(code)
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
    else:
        result = run_baseline(scene, task, method, args.render_scale)
    return {**job, **result}


def jobs_of(args: Args) -> list[dict]:
    """Every measurement to run: scenes x tasks x methods, models once per seed (and per version)."""
    jobs = []
    for scene in scenes_of(args):
        for task in args.tasks:
            for method in args.methods:
                if method not in MODEL_PRESETS:
                    if label_frames(task) is not None:  # the 2D baselines carry labels from labelled frames
                        jobs.append({"scene": str(scene), "task": task, "method": method})
                    continue
                for reference in [""] + ([args.reference] if args.reference else []):
                    for seed in args.seeds:
                        job = {"scene": str(scene), "task": task, "method": method, "seed": seed}
                        if args.model_args:
                            job["model_args"] = args.model_args
                        if reference:
                            job["reference"] = reference
                        jobs.append(job)
    return jobs


def scenes_of(args: Args) -> list[Path]:
    scenes = []
    if args.demo:
        from semflow_ns.data.demo.cache import default_demo_dir, ensure_demo_scene

        scenes.append(ensure_demo_scene(default_demo_dir(), progress=False))
    return scenes + [Path(p).resolve() for p in args.data]


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _label(r: dict) -> str:
    name = r["method"] + (f" @ {r['reference']}" if r.get("reference") else "")
    return name + (f" ({r['model_args']})" if r.get("model_args") else "")


def print_table(results: list[dict]) -> None:
    """One row per run, and the mean of every model over its seeds."""
    table = Table(title="Label-subset tasks, scored on the unlabelled frames")
    columns = (
        "scene",
        "task",
        "method",
        "seed",
        "steps",
        "frames",
        "J",
        "F",
        "J&F",
        "mIoU",
        "fg mIoU",
        "PSNR",
        "wall (s)",
    )
    for column in columns:
        table.add_column(column)
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((Path(r["scene"]).name, r["task"], _label(r)), []).append(r)
    for (scene, task, label), runs in groups.items():
        rows = runs if len(runs) == 1 else [*runs, {"mean": True, "scores": _mean_scores(runs), **runs[0]}]
        for r in rows:
            s = r["scores"] if not r.get("mean") else _mean_scores(runs)
            seed = "mean" if r.get("mean") else str(r.get("seed", "–"))
            digits = [_fmt(s.get(k), 2 if k == "psnr" else 3) for k in SCORES]
            wall = "–" if r.get("mean") else f"{r['wall_s']:.0f}"
            table.add_row(scene, task, label, seed, str(r.get("steps", "–")), str(len(r["frames"])), *digits, wall)
    Console(width=max(CONSOLE.width, 170)).print(table)


def _job_key(job: dict) -> str:
    """What identifies a run (``--resume`` skips those already in results.json)."""
    return json.dumps({k: job.get(k) for k in ("scene", "task", "method", "seed", "reference", "model_args")})


def _mean_scores(runs: list[dict]) -> dict:
    keys = {k for r in runs for k in r["scores"]}
    return {k: float(np.mean([r["scores"][k] for r in runs if k in r["scores"]])) for k in keys}


def main(args: Args) -> None:
    unknown = [m for m in args.methods if m not in METHODS] + [t for t in args.tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"unknown method or task: {unknown}; methods {METHODS}, tasks {TASKS}")
    if args.worker is not None:
        job = json.loads(args.worker)
        print(json.dumps(run_model(job, args.steps, args.output, args.eval_every, args.render_scale)))
        return
    args.output.mkdir(parents=True, exist_ok=True)
    results_path = args.output / "results.json"
    done = json.loads(results_path.read_text()) if (args.resume and results_path.is_file()) else []
    key = _job_key
    finished = {key(r) for r in done}
    todo = [job for job in jobs_of(args) if key(job) not in finished]
    reference = export_revision(args.reference) if args.reference else None
    results = list(done)

    def run(job: dict) -> dict:
        return run_job(job, args, reference if job.get("reference") else None)

    # Each run is saved as soon as it finishes (a short run need not wait for the longer ones listed before it),
    # the finished ones in job order.
    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        futures = {pool.submit(run, job): position for position, job in enumerate(todo)}
        by_position: dict[int, dict] = {}
        for future in as_completed(futures):
            result = by_position[futures[future]] = future.result()
            scores = ", ".join(f"{k} {_fmt(result['scores'].get(k))}" for k in SCORES)
            CONSOLE.print(f"{Path(result['scene']).name} {result['task']} {_label(result)} seed {result.get('seed', '–')}: "
                          f"{scores}, {result['wall_s']:.0f} s", highlight=False)  # fmt: skip
            results = done + [by_position[position] for position in sorted(by_position)]
            results_path.write_text(json.dumps(results, indent=1))
    print_table(results)


if __name__ == "__main__":
    main(tyro.cli(Args))
