"""From raw clips to trained scenes: `semflow-process-data`, a short `ns-train`, and `semflow-eval` on every clip.

For each clip the benchmark runs the three commands a user would run, each in its own process:

1. ``semflow-process-data --images <clip frames> --labels <clip masks> --max-size 480`` (the camera
   fallback chain included), timed;
2. ``ns-train semantic-flow`` for ``--steps`` steps on the written scene (CPU, no viewer);
3. ``semflow-eval`` on that run's video frames (every ``--eval-every``-th): PSNR and mIoU of training frames.

It prints one table (clip, frames, the step of the fallback chain that produced the poses, frames
registered by SfM, reprojection error, processing time, training-frame PSNR and mIoU) and writes the same
rows as JSON. A clip whose processing fails is reported with the error's first line and the sweep goes on.

Clip layouts (any mix of them can be given):

- a clip folder with ``images/`` and ``masks/`` (e.g. ``../shared/data/davis-car-shadow``);
- a folder of such clip folders (e.g. ``../shared/data/davis-sweep``);
- a DAVIS root with ``JPEGImages/480p/<clip>/`` and ``Annotations/480p/<clip>/`` (every clip, or those
  named with ``--names``).

    python benchmarks/process_sweep.py ../shared/data/davis-sweep ../shared/data/davis-car-shadow
    python benchmarks/process_sweep.py /data/DAVIS --names camel dog --steps 200
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import tyro
from rich.console import Console
from rich.table import Table

CONSOLE = Console(width=max(Console().width, 140))


@dataclass
class Args:
    """Sweep options."""

    clips: tyro.conf.Positional[list[Path]]
    """Clip folders, folders of clip folders, or DAVIS roots."""
    names: list[str] = field(default_factory=list)
    """Only these clips (default: every clip found)."""
    output: Path = Path("outputs/process_sweep")
    """Scenes, runs, logs and results.json go here."""
    max_size: int = 480
    """`semflow-process-data --max-size`."""
    steps: int = 400
    """Training steps of the short run (0: process only)."""
    eval_every: int = 16
    """Score every k-th video frame (0-based frames 0, k, 2k, ...; full-resolution renders are slow on a CPU)."""
    process_args: str = ""
    """More `semflow-process-data` options, as one shell-quoted string (write --process-args="--frame-step 2")."""
    train_args: str = ""
    """More `ns-train semantic-flow` options, before the data parser (--train-args="--pipeline.model.num-samples 16")."""
    json_copy: Optional[Path] = None
    """Also write the rows to this file (e.g. benchmarks/results_sweep_cpu.json)."""


@dataclass
class Clip:
    """One input clip: its name, frames and masks."""

    name: str
    images: Path
    masks: Optional[Path]


@dataclass
class Row:
    """The sweep's result for one clip."""

    clip: str
    frames: int = 0
    pose_step: str = "-"
    approximate_poses: bool = False
    registered: Optional[int] = None
    reprojection_error_px: Optional[float] = None
    attempts: str = ""
    """Every pose step tried: ``step registered (seconds)``, separated by ``; ``."""
    process_s: float = 0.0
    train_s: Optional[float] = None
    psnr: Optional[float] = None
    miou: Optional[float] = None
    steps: int = 0
    error: Optional[str] = None


def find_clips(roots: list[Path], names: list[str]) -> list[Clip]:
    """Every clip under ``roots`` (layouts in the module docstring), in the order given, filtered by ``names``."""
    clips: list[Clip] = []
    for root in roots:
        root = root.expanduser()
        if not root.is_dir():
            raise SystemExit(f"process_sweep: {root} is not a folder")
        davis = root / "JPEGImages" / "480p"
        if davis.is_dir():
            for folder in sorted(p for p in davis.iterdir() if p.is_dir()):
                masks = root / "Annotations" / "480p" / folder.name
                clips.append(Clip(folder.name, folder, masks if masks.is_dir() else None))
        elif (root / "images").is_dir():
            clips.append(Clip(root.name, root / "images", root / "masks" if (root / "masks").is_dir() else None))
        else:
            for folder in sorted(p for p in root.iterdir() if (p / "images").is_dir()):
                clips.append(
                    Clip(folder.name, folder / "images", folder / "masks" if (folder / "masks").is_dir() else None)
                )
    if names:
        unknown = sorted(set(names) - {c.name for c in clips})
        if unknown:
            raise SystemExit(f"process_sweep: no clip named {unknown}; found {[c.name for c in clips]}")
        clips = [c for c in clips if c.name in names]
    if not clips:
        raise SystemExit(f"process_sweep: no clips (a folder with images/, or JPEGImages/480p/) under {roots}")
    return clips


def _run(command: list[str], log: Path) -> tuple[int, float]:
    """Runs ``command`` with its output in ``log``; returns (exit code, seconds)."""
    start = time.perf_counter()
    with log.open("w") as out:
        out.write(shlex.join(command) + "\n")
        out.flush()
        env = {**os.environ, "COLUMNS": "1000"}  # one line per message in the log
        code = subprocess.run(
            command, check=False, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        ).returncode
    return code, time.perf_counter() - start


def _first_error(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("Error", "ProcessError", "RuntimeError")) or "Error:" in line]
    return (errors or lines or ["(no output)"])[-1][:300]


def process_clip(clip: Clip, args: Args, row: Row) -> Optional[Path]:
    """Step 1: the scene folder, or None (``row.error`` says why)."""
    scene = args.output / "scenes" / clip.name
    command = [sys.executable, "-m", "semflow_ns.scripts.process_data", "--images", str(clip.images)]
    command += ["--labels", str(clip.masks)] if clip.masks is not None else []
    command += [
        "--max-size",
        str(args.max_size),
        "--output",
        str(scene),
        "--overwrite",
        *shlex.split(args.process_args),
    ]
    code, row.process_s = _run(command, args.output / "logs" / f"{clip.name}-process.log")
    if code != 0:
        row.error = _first_error(args.output / "logs" / f"{clip.name}-process.log")
        return None
    meta = json.loads((scene / "transforms.json").read_text())
    report = meta.get("processing", {})
    row.frames = len(meta["frames"])
    row.pose_step = report.get("pose_step", report.get("pose_source", "sfm"))
    row.approximate_poses = bool(meta.get("approximate_poses", False))
    row.registered = report.get("registered")
    row.reprojection_error_px = report.get("reprojection_error_px")
    row.attempts = "; ".join(
        f"{a['step']} {a.get('registered', '-')} ({a.get('seconds', 0):.0f} s)" for a in report.get("pose_attempts", [])
    )
    return scene


def train_clip(clip: Clip, scene: Path, args: Args, row: Row) -> None:
    """Steps 2 and 3: a short run on ``scene`` and its training-frame PSNR."""
    never = str(10**9)
    command = [
        sys.executable,
        "-m",
        "nerfstudio.scripts.train",
        "semantic-flow",
        "--max-num-iterations",
        str(args.steps),
    ]
    command += ["--vis", "tensorboard", "--machine.device-type", "cpu", "--output-dir", str(args.output / "runs")]
    command += ["--experiment-name", clip.name, "--timestamp", "sweep", "--steps-per-save", never]
    command += ["--steps-per-eval-image", never, "--steps-per-eval-batch", never, "--steps-per-eval-all-images", never]
    command += [*shlex.split(args.train_args), "semflow-data", "--data", str(scene), "--eval-source", "video"]
    command += ["--eval-frames", f"every:{args.eval_every}"]
    log = args.output / "logs" / f"{clip.name}-train.log"
    code, row.train_s = _run(command, log)
    if code != 0:
        row.error = f"training: {_first_error(log)}"
        return
    row.steps = args.steps
    config = args.output / "runs" / clip.name / "semantic-flow" / "sweep" / "config.yml"
    scores = args.output / "evals" / f"{clip.name}.json"
    log = args.output / "logs" / f"{clip.name}-eval.log"
    command = [sys.executable, "-m", "semflow_ns.scripts.eval", "--load-config", str(config)]
    command += ["--output-path", str(scores), "--eval-source", "video"]
    code, _ = _run(command, log)
    if code != 0:
        row.error = f"evaluation: {_first_error(log)}"
        return
    results = json.loads(scores.read_text())["results"]
    row.psnr, row.miou = float(results["psnr"]), float(results["miou"])


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[Row], args: Args) -> None:
    table = Table(title=f"process sweep: --max-size {args.max_size}, {args.steps} training steps")
    for column in ("clip", "frames", "poses from", "registered", "reproj. px", "process s", "train s", "PSNR", "mIoU"):
        table.add_column(column, justify="left" if column in ("clip", "poses from") else "right")
    for row in rows:
        if row.error is not None and row.frames == 0:
            table.add_row(
                row.clip, "-", f"[red]failed: {row.error}[/red]", "-", "-", f"{row.process_s:.0f}", "-", "-", "-"
            )
            continue
        step = row.pose_step + (" (approx.)" if row.approximate_poses else "")
        registered = "-" if row.registered is None else f"{row.registered} / {row.frames}"
        psnr = _fmt(row.psnr, ".2f") if row.error is None else f"[red]{row.error}[/red]"
        table.add_row(
            row.clip, str(row.frames), step, registered, _fmt(row.reprojection_error_px, ".3f"),
            f"{row.process_s:.0f}", _fmt(row.train_s, ".0f"), psnr, _fmt(row.miou, ".3f"),
        )  # fmt: skip
    CONSOLE.print(table)
    done = sum(r.error is None and r.frames > 0 for r in rows)
    CONSOLE.print(f"{done} of {len(rows)} clips processed" + (" and trained" if args.steps else ""))


def main(args: Args) -> list[Row]:
    clips = find_clips(args.clips, args.names)
    for sub in ("logs", "evals", "scenes"):
        (args.output / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for number, clip in enumerate(clips, start=1):
        CONSOLE.rule(f"[{number}/{len(clips)}] {clip.name}")
        row = Row(clip.name)
        scene = process_clip(clip, args, row)
        CONSOLE.print(
            f"processing: {row.process_s:.0f} s, "
            + (
                f"[red]failed[/red]: {row.error}"
                if scene is None
                else f"{row.frames} frames, poses from {row.pose_step}"
            )
        )
        if scene is not None and args.steps > 0:
            train_clip(clip, scene, args, row)
            CONSOLE.print(
                f"training + eval: {_fmt(row.train_s, '.0f')} s, PSNR {_fmt(row.psnr, '.2f')}"
                + (f", {row.error}" if row.error else "")
            )
        rows.append(row)
        results = [asdict(r) for r in rows]
        (args.output / "results.json").write_text(json.dumps(results, indent=2))
    if args.json_copy is not None:
        args.json_copy.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    print_table(rows, args)
    return rows


if __name__ == "__main__":
    main(tyro.cli(Args))
