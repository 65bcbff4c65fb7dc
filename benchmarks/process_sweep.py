"""From raw clips to trained scenes: `semflow-process-data`, a short `ns-train`, and `semflow-eval` on every clip.

For each clip the benchmark runs the three commands a user would run, each in its own process:

1. ``semflow-process-data --images <clip frames> --labels <clip masks> --max-size 480`` (the camera
   fallback chain included), timed;
2. ``ns-train semantic-flow`` for ``--steps`` steps on the written scene (CPU, no viewer);
3. ``semflow-eval`` on that run's video frames (every ``--eval-every``-th): PSNR and mIoU of training frames.

It prints one table (clip, frames, the step of the pose chain that produced the poses, frames mapped and
interpolated, the parallax guard's figures, processing time per 50 frames and its split, training-frame PSNR
and mIoU) and writes the same rows as JSON. A clip whose processing fails is reported with the error's first
line and the sweep goes on. With ``--reference`` (clip names, or ``all``), those clips are processed once more
with ``--pose-fallback sfm-only`` (plain SIFT SfM) and, when that registers every frame, the trajectory of the
default run is compared with it: RMS distance between camera centres after a similarity alignment, as a
percentage of the reference path length (``ate_vs_sfm_pct``).

Clip layouts (any mix of them can be given):

- a clip folder with ``images/`` and ``masks/`` (e.g. ``../shared/data/davis-car-shadow``);
- a folder of such clip folders (e.g. ``../shared/data/davis-sweep``);
- a DAVIS root with ``JPEGImages/480p/<clip>/`` and ``Annotations/480p/<clip>/`` (every clip, or those
  named with ``--names``).

    python benchmarks/process_sweep.py ../shared/data/davis-sweep ../shared/data/davis-car-shadow
    python benchmarks/process_sweep.py /data/DAVIS --names camel dog --steps 200
    python benchmarks/process_sweep.py ../shared/data/davis-sweep ../shared/data/davis-car-shadow --steps 0 \
        --reference all --output /tmp/sweep19
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np
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
    reference: list[str] = field(default_factory=list)
    """Clips (names, or ``all``) also processed with ``--pose-fallback sfm-only`` to compare trajectories with."""


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
    input_frames: int = 0
    pose_step: str = "-"
    approximate_poses: bool = False
    registered: Optional[int] = None
    interpolated: int = 0
    trimmed: int = 0
    reprojection_error_px: Optional[float] = None
    rotation_ratio: Optional[float] = None
    median_triangulation_deg: Optional[float] = None
    baseline_ratio: Optional[float] = None
    """The parallax guard's figures of the model used (or, for rotation-only, of the flow-track model)."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Processing time split: read, flow, motion_masks, poses (of which tracks, database, mapping, guard for
    sfm-flow, sift for the SIFT steps), write, total."""
    ate_vs_sfm_pct: Optional[float] = None
    """Trajectory error against plain SIFT SfM (``--reference``), % of its path length."""
    sfm_only: str = ""
    """What ``--pose-fallback sfm-only`` did on the clip (``--reference``)."""
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
    row.input_frames = report.get("input_frames", row.frames)
    row.pose_step = report.get("pose_step", report.get("pose_source", "sfm"))
    row.approximate_poses = bool(meta.get("approximate_poses", False))
    row.registered = report.get("registered")
    row.interpolated = len(report.get("interpolated", []))
    row.trimmed = report.get("trimmed", 0)
    row.reprojection_error_px = report.get("reprojection_error_px")
    figures = report.get("parallax") or {}
    row.rotation_ratio = figures.get("rotation_ratio")
    row.median_triangulation_deg = figures.get("median_triangulation_deg")
    row.baseline_ratio = figures.get("baseline_ratio")
    row.seconds = dict(report.get("seconds", {}))
    attempts = report.get("pose_attempts", [])
    for attempt in attempts:
        for key, value in (attempt.get("timing") or {}).items():
            row.seconds[key] = row.seconds.get(key, 0.0) + value
    row.seconds["sift"] = sum(a.get("seconds", 0.0) for a in attempts if a["step"] not in ("sfm-flow", "rotation-only"))
    row.attempts = "; ".join(f"{a['step']} {a.get('registered', '-')} ({a.get('seconds', 0):.0f} s)" for a in attempts)
    return scene


def camera_centres(scene: Path) -> dict[str, np.ndarray]:
    """Camera centre of every frame of a written scene, by image name."""
    meta = json.loads((scene / "transforms.json").read_text())
    return {Path(f["file_path"]).name: np.asarray(f["transform_matrix"])[:3, 3] for f in meta["frames"]}


def trajectory_error_pct(estimate: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> Optional[float]:
    """RMS distance (after the best similarity, Umeyama) between the camera centres of the frames in both, as a
    percentage of the reference path length; None with fewer than 3 shared frames."""
    names = sorted(set(estimate) & set(reference))
    if len(names) < 3:
        return None
    est, ref = np.stack([estimate[n] for n in names]), np.stack([reference[n] for n in names])
    est_c, ref_c = est - est.mean(0), ref - ref.mean(0)
    u, singular, vt = np.linalg.svd(ref_c.T @ est_c / len(names))
    sign = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation, scale = u @ sign @ vt, float(np.trace(np.diag(singular) @ sign) / est_c.var(0).sum())
    aligned = scale * est_c @ rotation.T + ref.mean(0)
    path = float(np.linalg.norm(np.diff(ref, axis=0), axis=1).sum())
    return 100.0 * float(np.sqrt(np.mean(np.sum((aligned - ref) ** 2, axis=1)))) / path


def reference_clip(clip: Clip, scene: Path, args: Args, row: Row) -> None:
    """``--reference``: the clip again with plain SIFT SfM; the default run's trajectory error against it."""
    reference = replace(args, process_args=args.process_args + " --pose-fallback sfm-only")
    other = Row(clip.name)
    found = process_clip(Clip(f"{clip.name}-sfm-only", clip.images, clip.masks), reference, other)
    if found is None:
        row.sfm_only = f"failed in {other.process_s:.0f} s: {other.error}"
        return
    row.sfm_only = f"{other.registered}/{other.frames} in {other.process_s:.0f} s"
    if other.registered == other.input_frames:
        row.ate_vs_sfm_pct = trajectory_error_pct(camera_centres(scene), camera_centres(found))


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


def _per_50(row: Row) -> str:
    return "-" if not row.input_frames else f"{50 * row.process_s / row.input_frames:.0f}"


def _split(row: Row) -> str:
    seconds = row.seconds
    flow = seconds.get("flow", 0.0) + seconds.get("motion_masks", 0.0)
    mapping = seconds.get("database", 0.0) + seconds.get("mapping", 0.0)
    parts = [f"flow {flow:.0f}", f"tracks {seconds.get('tracks', 0.0):.1f}", f"mapping {mapping:.0f}"]
    parts += [f"guard {seconds.get('guard', 0.0):.0f}", f"sift {seconds.get('sift', 0.0):.0f}"]
    return ", ".join(parts)


def print_table(rows: list[Row], args: Args) -> None:
    table = Table(title=f"process sweep: --max-size {args.max_size}, {args.steps} training steps")
    columns = ("clip", "frames", "poses from", "mapped + interp.", "parallax: rot. ratio / tri. deg / path/depth",
               "process s", "s / 50 fr.", "split s", "ATE vs sfm %", "train s", "PSNR", "mIoU")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("clip", "poses from", "split s") else "right")
    for row in rows:
        if row.error is not None and row.frames == 0:
            failed = f"[red]failed: {row.error}[/red]"
            table.add_row(row.clip, "-", failed, "-", "-", f"{row.process_s:.0f}", _per_50(row), *["-"] * 5)
            continue
        step = row.pose_step + (" (approx.)" if row.approximate_poses else "")
        mapped = "-" if row.registered is None else f"{row.registered} + {row.interpolated}"
        if row.pose_step == "rotation-only":
            mapped = f"0 + 0 ({row.registered} rotations)"
        parallax = (
            "-" if row.rotation_ratio is None
            else f"{row.rotation_ratio:.2f} / {row.median_triangulation_deg:.2f} / {row.baseline_ratio:.3f}"
        )  # fmt: skip
        psnr = _fmt(row.psnr, ".2f") if row.error is None else f"[red]{row.error}[/red]"
        table.add_row(
            row.clip, f"{row.input_frames} -> {row.frames}", step, mapped, parallax, f"{row.process_s:.0f}",
            _per_50(row), _split(row), _fmt(row.ate_vs_sfm_pct, ".2f"), _fmt(row.train_s, ".0f"), psnr,
            _fmt(row.miou, ".3f"),
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
        if scene is not None and ("all" in args.reference or clip.name in args.reference):
            reference_clip(clip, scene, args, row)
            CONSOLE.print(
                f"plain SfM: {row.sfm_only}; trajectory error {_fmt(row.ate_vs_sfm_pct, '.2f')} % of the path"
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
