"""Where the time of one `semantic-flow` training step goes: every part, forward and backward, with its share.

For each scene (the demo by default, or scene folders such as a processed DAVIS clip) the benchmark builds the
default training pipeline in this process, trains ``--warmup`` steps, then runs ``--steps`` steps under
PyTorch's profiler. Every part of the step is wrapped in a labelled profiler range (nothing in the model is
changed): data and sampling, the proposal sampler and its density field, the static field, the dynamic field,
the scene flow and the trajectory integration, the queries at t±1 for the warped renders, the frame encoder,
feature sampling along the trajectories, flow attention, the semantic heads, the renders and blending, each
group of losses, the camera optimiser and the optimiser step.

Forward time goes to the innermost labelled part that ran it (the queries at t±1 keep all of theirs). Backward
time is traced to the part whose forward created each autograd node (the profiler records the autograd
sequence number of both), so a part's backward column is the gradient work of what it computed. Times are
CPU (or CUDA host) times per step, averaged over the profiled steps; the profiler adds some overhead, so the
total is a little above an unprofiled step.

    python benchmarks/profile_step.py                                   # the demo
    python benchmarks/profile_step.py data/car-shadow --steps 5         # a processed clip
    python benchmarks/profile_step.py --demo data/car-shadow --json-path outputs/profile.json
"""

from __future__ import annotations

import functools
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import tyro
from rich.console import Console
from rich.table import Table
from torch.profiler import ProfilerActivity, profile, record_function

CONSOLE = Console(width=140)
CAPTURING = ("queries at t±1 (warped renders)",)
"""Parts that keep the time of everything they call (the fields they query again are theirs)."""


@dataclass
class Args:
    """Profile options."""

    scenes: tyro.conf.Positional[list[Path]] = field(default_factory=list)
    """Scene folders (semflow format); none: the demo only."""
    demo: bool = False
    """Also profile the demo when scene folders are given."""
    steps: int = 5
    """Profiled training steps per scene."""
    warmup: int = 20
    """Training steps before profiling (proposal warm-up, allocator, caches)."""
    threads: int = 0
    """torch.set_num_threads (0: PyTorch's default)."""
    seed: int = 0
    json_path: Optional[Path] = None
    """Also write the tables as JSON."""


def build(scene: Optional[Path], seed: int) -> tuple[Any, Any, list]:
    """The default training pipeline on ``scene`` (None: the demo), its optimizers and training callbacks."""
    from nerfstudio.engine.callbacks import TrainingCallbackAttributes
    from nerfstudio.engine.optimizers import Optimizers

    from semflow_ns.configs.method_configs import semantic_flow_config

    torch.manual_seed(seed)
    config = semantic_flow_config()
    if scene is not None:
        config.pipeline.datamanager.data = scene
    pipeline = config.pipeline.setup(device=config.machine.device_type, test_mode="val", world_size=1, local_rank=0)
    pipeline.train()
    optimizers = Optimizers(config.optimizers, pipeline.get_param_groups())
    attributes = TrainingCallbackAttributes(optimizers=optimizers, grad_scaler=None, pipeline=pipeline, trainer=None)
    return pipeline, optimizers, pipeline.get_training_callbacks(attributes)


def train_step(pipeline: Any, optimizers: Any, callbacks: list, step: int) -> None:
    """One step as nerfstudio's Trainer runs it (callbacks, forward and losses, backward, optimiser)."""
    from nerfstudio.engine.callbacks import TrainingCallbackLocation

    for callback in callbacks:
        callback.run_callback_at_location(step, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
    optimizers.zero_grad_all()
    _, loss_dict, _ = pipeline.get_train_loss_dict(step=step)
    functools.reduce(torch.add, loss_dict.values()).backward()
    with record_function("optimizer"):
        optimizers.optimizer_step_all()
        optimizers.scheduler_step_all(step)
    for callback in callbacks:
        callback.run_callback_at_location(step, TrainingCallbackLocation.AFTER_TRAIN_ITERATION)


def _labelled(label: str, fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with record_function(label):
            return fn(*args, **kwargs)

    return wrapped


def label_parts(pipeline: Any) -> set[str]:
    """Wraps every part of the step in a labelled profiler range (instance attributes; the classes are untouched);
    returns the labels."""
    import semflow_ns.models.semflow_model as model_module

    model = pipeline.model
    branch = model.dynamic
    targets: list[tuple[str, Any, str]] = [
        ("data: pixels, rays", pipeline.datamanager, "next_train"),
        ("proposal sampler", model.proposal_sampler, "forward"),
        ("proposal field", model.proposal_field, "forward"),
        ("static field", model.static_field, "forward"),
        ("dynamic field", branch.field, "forward"),
        ("scene flow", branch.scene_flow, "forward"),
        ("trajectory integration", branch, "trajectory"),
        ("queries at t±1 (warped renders)", branch, "warped_queries"),
        ("renders from warped samples", branch, "warped_renders"),
        ("semantic heads", branch.semantic_head, "forward"),
        ("semantic heads", model.static_semantic_head, "forward"),
        ("semantic branch: gather, scatter", branch, "logits"),
        ("camera optimiser", model.camera_optimizer, "forward"),
        ("rendering and blending", model, "get_outputs"),
        ("losses: colour, proposal", model, "get_loss_dict"),
        ("losses: interlevel, distortion", model, "get_metrics_dict"),
    ]
    if branch.aggregator is not None and branch.attention is not None:
        targets += [
            ("frame encoder", branch.aggregator.bank.encoder, "forward"),
            ("feature sampling", branch.aggregator, "forward"),
            ("flow attention", branch.attention, "forward"),
        ]
    for label, owner, name in targets:
        if getattr(type(owner), name, None) is torch.nn.Module.forward:  # a module without a forward of its own
            raise AttributeError(f"profile part {label!r}: {type(owner).__name__} does not implement {name}")
        setattr(owner, name, _labelled(label, getattr(owner, name)))
    functions = (
        ("label_losses", "losses: semantic"),
        ("warped_losses", "losses: warped, flow"),
        ("regulariser_losses", "losses: regularisers"),
    )
    for name, label in functions:
        setattr(model_module, name, _labelled(label, getattr(model_module, name)))
    return {label for label, _, _ in targets} | {label for _, label in functions}


def _part_of(event: Any, labels: set[str]) -> str:
    """The labelled part an event ran in: the innermost label, unless a capturing part encloses it."""
    found = None
    parent = event
    while parent is not None:
        if parent.name in labels:
            if parent.name in CAPTURING:
                return parent.name
            found = found or parent.name
        parent = parent.cpu_parent
    return found or "other"


def attribute(events: Any, labels: set[str]) -> tuple[dict[str, float], dict[str, float]]:
    """Forward and backward microseconds per part (see the module docstring)."""
    forward: dict[str, float] = defaultdict(float)
    backward: dict[str, float] = defaultdict(float)
    creator: dict[int, str] = {}
    for event in events:
        if event.name.startswith("autograd::engine::evaluate_function") or event.name in labels:
            continue
        if event.sequence_nr >= 0 and event.sequence_nr not in creator:
            creator[event.sequence_nr] = _part_of(event, labels)
    for event in events:
        if event.name.startswith("autograd::engine::evaluate_function"):
            if "AccumulateGrad" in event.name:
                part = "optimizer"
            else:
                part = creator.get(event.sequence_nr, "other")
            backward[part] += event.cpu_time_total
        elif event.name not in labels and not _inside_backward(event):
            forward[_part_of(event, labels)] += event.self_cpu_time_total
    return dict(forward), dict(backward)


def _inside_backward(event: Any) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("autograd::engine::evaluate_function"):
            return True
        parent = parent.cpu_parent
    return False


def profile_scene(scene: Optional[Path], args: Args) -> dict[str, Any]:
    """Rows of the table of one scene: part, forward and backward milliseconds per step, share."""
    pipeline, optimizers, callbacks = build(scene, args.seed)
    for step in range(args.warmup):
        train_step(pipeline, optimizers, callbacks, step)
    start = time.perf_counter()
    for step in range(args.warmup, args.warmup + args.steps):
        train_step(pipeline, optimizers, callbacks, step)
    unprofiled = (time.perf_counter() - start) / args.steps
    labels = label_parts(pipeline) | {"optimizer"}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for step in range(args.warmup + args.steps, args.warmup + 2 * args.steps):
            train_step(pipeline, optimizers, callbacks, step)
    forward, backward = attribute(prof.events(), labels)
    total = sum(forward.values()) + sum(backward.values())
    rows = []
    for part in sorted(set(forward) | set(backward), key=lambda p: -(forward.get(p, 0) + backward.get(p, 0))):
        fwd, bwd = forward.get(part, 0.0) / args.steps / 1e3, backward.get(part, 0.0) / args.steps / 1e3
        rows.append(
            {"part": part, "forward_ms": fwd, "backward_ms": bwd, "share": (fwd + bwd) * 1e3 * args.steps / total}
        )
    name = "demo" if scene is None else scene.name
    return {
        "scene": name,
        "step_seconds_unprofiled": unprofiled,
        "profiled_ms_per_step": total / args.steps / 1e3,
        "rows": rows,
    }


def print_table(result: dict[str, Any]) -> None:
    table = Table(
        title=f"{result['scene']}: {result['profiled_ms_per_step']:.0f} ms per profiled step "
        f"({result['step_seconds_unprofiled'] * 1e3:.0f} ms unprofiled)"
    )
    for column in ("part", "forward ms", "backward ms", "total ms", "share"):
        table.add_column(column, justify="left" if column == "part" else "right")
    for row in result["rows"]:
        total = row["forward_ms"] + row["backward_ms"]
        table.add_row(
            row["part"], f"{row['forward_ms']:.1f}", f"{row['backward_ms']:.1f}", f"{total:.1f}", f"{row['share']:.1%}"
        )
    CONSOLE.print(table)


def main(args: Args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    scenes: list[Optional[Path]] = [None] if (args.demo or not args.scenes) else []
    scenes += list(args.scenes)
    results = []
    for scene in scenes:
        result = profile_scene(scene, args)
        print_table(result)
        results.append(result)
    if args.json_path is not None:
        args.json_path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"threads": torch.get_num_threads(), "steps": args.steps, "warmup": args.warmup}
        args.json_path.write_text(json.dumps({"settings": meta, "scenes": results}, indent=1))


if __name__ == "__main__":
    main(tyro.cli(Args))
