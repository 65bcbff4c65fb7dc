"""Scene adaptation and object removal, measured on demo variants.

Adaptation (tracking protocol: labels on the first 50 % of the target video, scored on the other frames):

1. a **source** run on the default demo (``--source-seed``, all labels), default length;
2. on a **target** demo with other textures (``--target-seed``; same classes, layout and motion), trained with
   ``configs/tracking-50.txt``:
   - ``scratch`` after each of ``--short-steps`` and after the full schedule;
   - ``adapted`` from the source (``configs/adaptation.txt``: frame encoder, attention and semantic heads
     loaded) after each of ``--short-steps``.

Removal, on the source run's held-out views (nearby and novel): each of ``--remove`` (``class:NAME`` or
``instance:NAME``) scored against the generator's render without the object (``semflow_ns.eval.removal``).

Multi-scene training (tracking protocol on every scene): one ``semantic-flow-multi`` run on the demos of
``--multi-seeds`` for ``--multi-steps`` steps per scene in all (``len(seeds) x multi-steps`` steps), against one
``semantic-flow`` run per scene of ``--multi-steps`` steps: the same total number of steps, each run's learning
rates decaying over its own length.

Every model trains in its own subprocess. ``--stages`` chooses what runs. Results go to
``<output>/results.json`` and one table per stage on the console.

    python benchmarks/benchmark_transfer.py                      # full run (about 2 h on an idle 2-core CPU)
    python benchmarks/benchmark_transfer.py --full-steps 600 --short-steps 100 200 --multi-steps 300
"""

import json
import math
import os
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import tyro
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_tasks import CONFIGS, task_args, train_and_score, trainer_config  # noqa: E402

CONSOLE = Console()
TASK = "tracking-50"
SCORES = ("j", "f", "jf", "miou", "miou_fg")


@dataclass
class Args:
    """Benchmark options."""

    source_seed: int = 0
    """Texture seed of the source demo."""
    target_seed: int = 1
    """Texture seed of the target demo (another scene with the same classes)."""
    full_steps: Optional[int] = None
    """Steps of the source run and of the full from-scratch run (default: the method's default)."""
    short_steps: tuple[int, ...] = (250, 500)
    """Steps of the short from-scratch and adapted runs."""
    remove: tuple[str, ...] = ("class:ball", "instance:cube")
    """Removals scored on the source run: class:NAME or instance:NAME."""
    multi_seeds: tuple[int, ...] = (0, 1, 2)
    """Texture seeds of the scenes of the multi-scene comparison."""
    multi_steps: int = 500
    """Steps per scene of the multi-scene comparison (the multi-scene run trains len(multi-seeds) times as long)."""
    stages: tuple[str, ...] = ("adaptation", "removal", "multi")
    """What to run: adaptation (also trains the source run), removal (needs the source run), multi."""
    demo_scale: float = 1.0
    """Scales the demo's frame count and image size (tests use small scenes)."""
    model_args: str = ""
    """Extra ns-train model options for every run, as one string (give it as --model-args="..." when it starts
    with --)."""
    output: Path = Path("outputs/benchmark_transfer")
    """Where scenes, runs and results.json go."""
    worker: Optional[str] = None
    """Internal: a JSON job to run in this process; prints its result as JSON."""


def demo_scene(args: Args, seed: int) -> Path:
    from semflow_ns.data.demo import DemoSceneConfig, ensure_demo_scene

    base = DemoSceneConfig()
    config = DemoSceneConfig(
        num_frames=max(4, round(base.num_frames * args.demo_scale)),
        width=max(16, round(base.width * args.demo_scale)),
        height=max(12, round(base.height * args.demo_scale)),
        num_eval_times=max(1, round(base.num_eval_times * args.demo_scale)),
        seed=seed,
    )
    return ensure_demo_scene(args.output / "scenes" / f"demo-seed{seed}", config, progress=False)


def run_training(job: dict, args: Args) -> dict:
    """Trains one run (in this process) and scores its evaluation split."""
    scenes = [Path(s) for s in job.get("scenes", [job["scene"]])]
    multi = len(scenes) > 1
    parser = (
        ["semflow-multi-data", "--data", *map(str, scenes)] if multi else ["semflow-data", "--data", str(scenes[0])]
    )
    run_args = [*shlex.split(args.model_args), *job["model_args"], *parser, *job["data_args"]]
    method = "semantic-flow-multi" if multi else "semantic-flow"
    config = trainer_config(run_args, f"{job['experiment']}-{job['name']}", job["steps"], args.output, method)
    if job.get("own_schedule"):  # learning rates decay over this run's length
        for group in config.optimizers.values():
            group["scheduler"].max_steps = config.max_num_iterations
    return train_and_score(config, scenes[0], scenes if multi else None)


def score_removals(config_path: Path, scene: Path, removals: tuple[str, ...]) -> list[dict]:
    from nerfstudio.utils.eval_utils import eval_setup

    from semflow_ns.data.format import load_scene
    from semflow_ns.eval.removal import mean_scores, score_removal
    from semflow_ns.scripts.eval import means_by_view_set

    _, pipeline, _, _ = eval_setup(config_path)
    results = []
    for spec in removals:
        kind, _, name = spec.partition(":")
        if kind not in ("class", "instance") or not name:
            raise SystemExit(f"--remove {spec!r}: expected class:NAME or instance:NAME")
        edit = {"classes": [name]} if kind == "class" else {"instances": [name]}
        _, rows = score_removal(pipeline, load_scene(scene), **edit)
        by_set = means_by_view_set(rows, mean_scores)
        results.append({"remove": spec, "scores": mean_scores(rows), "by_view_set": by_set, "per_view": rows})
    return results


def spawn(job: dict, args: Args) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps(job), "--output", str(args.output)]
    cmd += [f"--model-args={args.model_args}"]  # "=": the value may start with "--"
    out = subprocess.run(cmd, env=dict(os.environ), check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return "–" if value is None else ("∞" if math.isinf(value) else f"{value:.{digits}f}")


def print_tables(results: dict) -> None:
    if results.get("multi"):
        print_multi_table(results["multi"])
    if not results["adaptation"]:
        return
    table = Table(title=f"Adaptation: target demo, {TASK}, scored on the unlabelled frames")
    for column in ("run", "steps", "J", "F", "J&F", "mIoU", "fg mIoU", "wall (s)"):
        table.add_column(column)
    for r in results["adaptation"]:
        s = r["scores"]
        table.add_row(r["name"], str(r["steps"]), *(_fmt(s.get(k)) for k in SCORES), f"{r['wall_s']:.0f}")
    CONSOLE.print(table)
    if not results["removal"]:
        return
    table = Table(title="Removal on the source run's held-out views (PSNR in dB)")
    for column in ("remove", "views", "revealed PSNR", "revealed SSIM", "rest PSNR vs unedited", "rest PSNR vs truth"):
        table.add_column(column)
    for r in results["removal"]:
        for name, s in [("all", r["scores"]), *r["by_view_set"].items()]:
            table.add_row(
                r["remove"], name, _fmt(s.get("revealed_psnr"), 2), _fmt(s.get("revealed_ssim")),
                _fmt(s.get("rest_psnr_unchanged"), 2), _fmt(s.get("rest_psnr"), 2),
            )  # fmt: skip
    CONSOLE.print(table)


def print_multi_table(multi: dict) -> None:
    table = Table(title=f"Multi-scene vs single-scene runs at equal total steps, {TASK}, unlabelled frames")
    for column in ("scene", "run", "steps", "J&F", "mIoU", "fg mIoU", "PSNR", "mIoU multi - single"):
        table.add_column(column)
    for single in multi["single"]:
        name = single["scene_name"]
        own = multi["multi"]["scores_by_scene"][name]
        for run, scores, steps in (
            ("single", single["scores"], single["steps"]),
            ("multi", own, multi["multi"]["steps"]),
        ):
            delta = _fmt(own["miou"] - single["scores"]["miou"]) if run == "multi" else ""
            row = [_fmt(scores.get(k)) for k in ("jf", "miou", "miou_fg")] + [_fmt(scores.get("psnr"), 2)]
            table.add_row(name, run, str(steps), *row, delta)
    CONSOLE.print(table)


def main(args: Args) -> None:
    if args.worker is not None:
        job = json.loads(args.worker)
        if job["kind"] == "removal":
            print(json.dumps(score_removals(Path(job["config"]), Path(job["scene"]), tuple(job["remove"]))))
        else:
            print(json.dumps(run_training(job, args)))
        return
    args.output.mkdir(parents=True, exist_ok=True)
    unknown = set(args.stages) - {"adaptation", "removal", "multi"}
    if unknown:
        raise SystemExit(f"--stages: unknown {sorted(unknown)}; choose from adaptation, removal, multi")
    results: dict = {"args": {k: str(v) for k, v in asdict(args).items()}, "adaptation": [], "removal": []}

    def train(
        name: str, scene: Path, steps: Optional[int], model_args: list[str], data_args: list[str], **extra
    ) -> dict:
        job = {"kind": "train", "name": name, "scene": str(scene), "steps": steps, "experiment": scene.name, **extra}
        result = {"name": name, **spawn({**job, "model_args": model_args, "data_args": data_args}, args)}
        scores = ", ".join(f"{k} {_fmt(result['scores'].get(k))}" for k in SCORES)
        CONSOLE.print(f"{name} ({result['steps']} steps): {scores}, {result['wall_s']:.0f} s", highlight=False)
        (args.output / "results.json").write_text(json.dumps(results, indent=1))
        return result

    if "multi" in args.stages:
        scenes = [demo_scene(args, seed) for seed in args.multi_seeds]
        tracking = task_args(TASK)
        results["multi"] = {"single": [], "multi": None}
        for scene in scenes:
            single = train("single", scene, args.multi_steps, [], tracking, own_schedule=True)
            results["multi"]["single"].append({**single, "scene_name": scene.name})
        steps = args.multi_steps * len(scenes)
        extra = {"scenes": [str(s) for s in scenes], "own_schedule": True}
        results["multi"]["multi"] = train("multi", scenes[0], steps, [], tracking, **extra)
    if "adaptation" in args.stages or "removal" in args.stages:
        run_adaptation_and_removal(args, results, train)
    (args.output / "results.json").write_text(json.dumps(results, indent=1))
    print_tables(results)


def run_adaptation_and_removal(args: Args, results: dict, train) -> None:
    source_scene, target_scene = demo_scene(args, args.source_seed), demo_scene(args, args.target_seed)
    adaptation = shlex.split((CONFIGS / "adaptation.txt").read_text())
    source = train("source", source_scene, args.full_steps, [], [])
    results["source"] = source
    tracking = task_args(TASK)
    if "adaptation" in args.stages:
        for steps in args.short_steps:
            results["adaptation"].append(train(f"scratch-{steps}", target_scene, steps, [], tracking))
            loaded = [*adaptation, "--pipeline.model.adaptation.load-config", source["config"]]
            results["adaptation"].append(train(f"adapted-{steps}", target_scene, steps, loaded, tracking))
        results["adaptation"].append(train("scratch-full", target_scene, args.full_steps, [], tracking))
    if "removal" in args.stages:
        job = {"kind": "removal", "config": source["config"], "scene": str(source_scene), "remove": list(args.remove)}
        results["removal"] = spawn(job, args)


if __name__ == "__main__":
    main(tyro.cli(Args))
