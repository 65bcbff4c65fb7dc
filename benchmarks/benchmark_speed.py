"""Training step time of this code against an earlier version, and nerfacto at the same batch, in one run.

Speed depends on the machine (the same commit ran the demo at 0.34 s per step on one machine and 1.2 s on
another), so versions are only compared within one run on one machine. The earlier version (``--reference``,
a git revision, by default the main branch before the speed work) is exported with ``git archive`` into a
temporary folder; every measurement is a fresh process (``PYTHONPATH`` selects the version) that builds the
default `semantic-flow` trainer on the scene, trains ``--warmup`` steps and times ``--steps`` more. The
versions take turns for ``--rounds`` rounds, so that a change in the machine's load hits both alike; the table
gives the median step time of each, their ratio, training rays per second and peak memory (RSS). nerfacto
(its defaults, but ``--rays`` rays per batch, as semantic-flow) is timed the same way.

    python benchmarks/benchmark_speed.py                                  # the demo
    python benchmarks/benchmark_speed.py --scenes data/car-shadow --demo  # a processed clip and the demo
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import tyro
from rich.console import Console
from rich.table import Table

CONSOLE = Console(width=140)
REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = "ddeedcb"
"""main before the profile-guided speed work (issue 20)."""


@dataclass
class Args:
    """Side-by-side speed options."""

    scenes: list[Path] = field(default_factory=list)
    """Scene folders (semflow format); none: the demo only."""
    demo: bool = False
    """Also the demo when scene folders are given."""
    reference: str = DEFAULT_REFERENCE
    """Git revision to compare with ("" : this code and nerfacto only)."""
    steps: int = 20
    """Timed steps per measurement."""
    warmup: int = 10
    """Steps before timing."""
    rounds: int = 3
    """Measurements per version (they alternate)."""
    rays: int = 1024
    """Rays per batch of both methods."""
    nerfacto: bool = True
    """Also time nerfacto."""
    threads: int = 0
    """torch.set_num_threads in the workers (0: PyTorch's default)."""
    json_path: Optional[Path] = None
    """Also write the results as JSON."""
    worker: Optional[str] = None
    """Internal: time one method ("semantic-flow" or "nerfacto") on --scenes[0] (or the demo) and print JSON."""


def _config(method: str, scene: Optional[Path], rays: int) -> Any:
    """The default trainer configuration of ``method`` on ``scene``, with ``rays`` rays per batch."""
    from semflow_ns.data.dataparsers.semflow_dataparser import SemanticFlowDataParserConfig

    if method == "nerfacto":
        from nerfstudio.configs.method_configs import method_configs

        config = method_configs["nerfacto"]
    else:
        try:
            from semflow_ns.configs.method_configs import semantic_flow_config
        except ImportError:  # versions before the package layout of issue 20
            from semflow_ns.method_config import semantic_flow_config  # type: ignore[no-redef]
        config = semantic_flow_config()
    config.machine.device_type = "cpu"
    config.pipeline.datamanager.train_num_rays_per_batch = rays
    config.pipeline.datamanager.dataparser = SemanticFlowDataParserConfig(**({} if scene is None else {"data": scene}))
    return config


def run_worker(args: Args) -> dict[str, Any]:
    """Builds the pipeline in this process and times its training steps."""
    import functools

    import torch
    from nerfstudio.engine.callbacks import TrainingCallbackAttributes, TrainingCallbackLocation
    from nerfstudio.engine.optimizers import Optimizers

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    assert args.worker is not None
    config = _config(args.worker, args.scenes[0] if args.scenes else None, args.rays)
    pipeline = config.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)
    pipeline.train()
    optimizers = Optimizers(config.optimizers, pipeline.get_param_groups())
    attributes = TrainingCallbackAttributes(optimizers=optimizers, grad_scaler=None, pipeline=pipeline, trainer=None)
    callbacks = pipeline.get_training_callbacks(attributes)
    times = []
    for step in range(args.warmup + args.steps):
        tick = time.perf_counter()
        for callback in callbacks:
            callback.run_callback_at_location(step, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        optimizers.zero_grad_all()
        _, loss_dict, _ = pipeline.get_train_loss_dict(step=step)
        functools.reduce(torch.add, loss_dict.values()).backward()
        optimizers.optimizer_step_all()
        optimizers.scheduler_step_all(step)
        for callback in callbacks:
            callback.run_callback_at_location(step, TrainingCallbackLocation.AFTER_TRAIN_ITERATION)
        times.append(time.perf_counter() - tick)
    return {"step_s": times[args.warmup :], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


SHIMS = {
    "semflow_ns/configs/__init__.py": "",
    "semflow_ns/configs/method_configs.py": "from semflow_ns.method_config import *  # noqa: F403\n",
    "semflow_ns/configs/dataparser_configs.py": "from semflow_ns.dataparser_config import *  # noqa: F403\n",
}
"""Modules that the installed entry points name, added to versions before the package layout of issue 20."""


def export_revision(revision: str) -> Path:
    """The files of git ``revision`` in a temporary folder (put it first on ``PYTHONPATH`` to run that version).

    The plugin's installed entry points name ``semflow_ns.configs.*``; an older version gets modules there that
    re-export its registrations, so that ``ns-train``-style config parsing finds its methods."""
    folder = Path(tempfile.mkdtemp(prefix="semflow-reference-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    if not (folder / "semflow_ns" / "configs").exists():
        for path, text in SHIMS.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text)
    return folder


def _spawn(args: Args, method: str, scene: Optional[Path], code: Path, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", method, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    cmd += ["--rays", str(args.rays), "--threads", str(args.threads)]
    if scene is not None:
        cmd += ["--scenes", str(scene)]
    env = {**env, "PYTHONPATH": str(code)}
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True, cwd=code).stdout
    return json.loads(out.strip().splitlines()[-1])


def _alexnet_home() -> str:
    """A TORCH_HOME with random AlexNet weights, so that nerfacto's LPIPS can be built offline."""
    sys.path.insert(0, str(Path(__file__).parent))
    from benchmark_training import _alexnet_home as home

    return home()


def measure(args: Args, scene: Optional[Path], reference: Optional[Path]) -> dict[str, Any]:
    """Alternating measurements of every version on one scene."""
    env = dict(os.environ)
    versions: dict[str, tuple[str, Path]] = {"this code": ("semantic-flow", REPO)}
    if reference is not None:
        versions[f"reference {args.reference}"] = ("semantic-flow", reference)
    if args.nerfacto:
        env["TORCH_HOME"] = _alexnet_home()
        versions["nerfacto"] = ("nerfacto", REPO)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in versions}
    for round_ in range(args.rounds):
        for name, (method, code) in versions.items():
            runs[name].append(_spawn(args, method, scene, code, env))
            median = statistics.median(runs[name][-1]["step_s"])
            CONSOLE.print(f"round {round_ + 1}: {name}: {median:.3f} s per step", style="dim")
    rows = {}
    for name, results in runs.items():
        steps = [s for r in results for s in r["step_s"]]
        median = statistics.median(steps)
        rows[name] = {
            "median_step_s": median,
            "round_medians_s": [statistics.median(r["step_s"]) for r in results],
            "rays_per_s": args.rays / median,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        }
    return {"scene": "demo" if scene is None else scene.name, "versions": rows}


def print_table(result: dict[str, Any]) -> None:
    versions = result["versions"]
    base = versions["this code"]["median_step_s"]
    table = Table(title=f"{result['scene']}: training step time (same machine, alternating runs)")
    for column in (
        "version",
        "s per step (median)",
        "round medians",
        "rays/s",
        "this code is ... faster",
        "peak RSS MB",
    ):
        table.add_column(column, justify="left" if column == "version" else "right")
    for name, row in versions.items():
        rounds = " ".join(f"{s:.3f}" for s in row["round_medians_s"])
        ratio = "–" if name == "this code" else f"{row['median_step_s'] / base:.2f}x"
        table.add_row(
            name, f"{row['median_step_s']:.3f}", rounds, f"{row['rays_per_s']:.0f}", ratio, f"{row['peak_rss_mb']:.0f}"
        )
    CONSOLE.print(table)


def main(args: Args) -> None:
    if args.worker is not None:
        print(json.dumps(run_worker(args)))
        return
    reference = export_revision(args.reference) if args.reference else None
    scenes: list[Optional[Path]] = [None] if (args.demo or not args.scenes) else []
    scenes += [scene.resolve() for scene in args.scenes]
    results = []
    for scene in scenes:
        result = measure(args, scene, reference)
        print_table(result)
        results.append(result)
    if args.json_path is not None:
        settings = {"reference": args.reference, "steps": args.steps, "warmup": args.warmup, "rays": args.rays}
        args.json_path.parent.mkdir(parents=True, exist_ok=True)
        args.json_path.write_text(json.dumps({"settings": settings, "scenes": results}, indent=1))


if __name__ == "__main__":
    main(tyro.cli(Args))
