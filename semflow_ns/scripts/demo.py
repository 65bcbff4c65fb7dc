"""``semflow-demo``: render the procedural demo scene (a textured room with moving balls and a cube).

Examples::

    semflow-demo                                  # into $SEMFLOW_DEMO_DIR or ~/.cache/semflow_ns/demo
    semflow-demo --output data/demo --num-frames 24
    semflow-demo --output data/demo --seed 1 --overwrite
"""

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tyro
from rich.console import Console

from semflow_ns.data.demo import DemoSceneConfig, DemoStatus, default_demo_dir, demo_status, ensure_demo_scene
from semflow_ns.data.format import load_scene


@dataclass
class DemoCommand:
    """Render the Semantic Flow demo scene: a monocular video of a dynamic room with semantic and instance labels,
    estimated optical flow and held-out evaluation views."""

    output: Path | None = None
    """Scene folder (default: $SEMFLOW_DEMO_DIR, else ~/.cache/semflow_ns/demo)."""
    num_frames: int = 48
    """Frames of the training video."""
    width: int = 128
    """Image width in pixels."""
    height: int = 96
    """Image height in pixels."""
    num_eval_times: int = 12
    """Video times that get held-out views: two nearby views on the training arc each (and two novel views)."""
    novel_views: bool = True
    """Also render two novel views per evaluation time, 0.8 m above the arc (one between frame times)."""
    frames_per_sweep: int = 12
    """Frames per back-and-forth sweep of the camera along its arc (0: one slow pan over the whole video)."""
    seed: int = 0
    """Seed of the procedural textures."""
    overwrite: bool = False
    """Replace an existing demo scene. Folders that are not demo scenes are never replaced."""


def run(command: DemoCommand, console: Console | None = None) -> int:
    """Writes the scene described by ``command``; returns the process exit code (0 ok, 1 user error)."""
    console = console if console is not None else Console()
    path = (command.output if command.output is not None else default_demo_dir()).expanduser().absolute()
    config = DemoSceneConfig(
        num_frames=command.num_frames,
        width=command.width,
        height=command.height,
        num_eval_times=command.num_eval_times,
        novel_views=command.novel_views,
        frames_per_sweep=command.frames_per_sweep,
        seed=command.seed,
    )
    try:
        config.validate()
    except ValueError as err:
        console.print(f"[red]Invalid option: {err}[/red]")
        return 1
    status = demo_status(path, config)
    if status is DemoStatus.CURRENT and not command.overwrite:
        console.print(f"{path} already holds this demo scene; nothing to do (pass --overwrite to render it again).")
        return 0
    if status is DemoStatus.OUTDATED and not command.overwrite:
        console.print(
            f"[red]{path} holds a demo scene with other settings or from another version. "
            "Pass --overwrite to replace it, or choose another --output.[/red]"
        )
        return 1
    try:
        ensure_demo_scene(path, config, progress=True, overwrite=command.overwrite)
    except OSError as err:
        console.print(f"[red]{err}[/red]")
        return 1
    scene = load_scene(path, check_files=False)
    console.print(
        f"[green]Demo scene ready:[/green] {path} ({len(scene.frames)} frames, {len(scene.eval_frames)} held-out "
        f"views, {len(scene.classes)} classes)"
    )
    return 0


def entrypoint(args: Sequence[str] | None = None) -> None:
    """Console-script entry point; ``args`` defaults to the command line."""
    sys.exit(run(tyro.cli(DemoCommand, prog="semflow-demo", args=args)))


if __name__ == "__main__":
    entrypoint()
