"""``semflow-process-data``: a monocular video (or frame folder) plus optional masks/labels -> a semflow scene.

Examples::

    semflow-process-data --images davis/car-shadow/images --labels davis/car-shadow/masks --output data/car-shadow
    semflow-process-data --video clip.mp4 --output data/clip              # <= 100 frames over the clip, 480 px
    semflow-process-data --video clip.mp4 --frame-step 2 --max-frames 60 --output data/clip
    semflow-process-data --images frames --labels labels --label-format color --labelmap labelmap.txt --output out
    semflow-process-data --images frames --poses transforms.json --output out      # skip SfM
    semflow-process-data --images frames --no-objects-from-motion --output out    # no labels: one static class
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional

import tyro
from rich.console import Console
from rich.table import Table

from semflow_ns.data.format import SceneFormatError
from semflow_ns.process import ProcessError
from semflow_ns.process.options import ProcessOptions, ProcessReport
from semflow_ns.process.run import process

POSE_STEP_NAMES = {
    "sfm-flow": "pycolmap global SfM on optical-flow tracks",
    "sfm": "pycolmap SfM",
    "sfm-subsampled": "pycolmap SfM on one frame in 3, relaxed thresholds, others interpolated",
    "sfm-relaxed": "pycolmap SfM, relaxed thresholds",
    "sfm-merged": "pycolmap SfM, partial models joined",
    "rotation-only": "rotation only",
}


def _motion_row(report: ProcessReport) -> str:
    if report.motion_masks == "flow":
        return f"from the optical flow ({100 * (report.moving_fraction or 0):.1f} % of pixels moving)"
    return {"labels": "from the labels' moving classes", "none": "none"}[report.motion_masks]


def _input_row(report: ProcessReport) -> str:
    parts = ["every frame" if report.frame_step == 1 else f"one frame in {report.frame_step}"]
    if report.rotation or report.mirrored:
        parts.append(f"turned {report.rotation}° clockwise" + (", mirrored" if report.mirrored else ""))
    parts.append(f"times from the {report.time_source}")
    return "; ".join(parts)


def _attempt(entry: dict, frames: int) -> str:
    status = "used" if entry.get("error") is None else "no parallax" if "parallax" in entry["error"] else "failed"
    return f"{entry['step']} {entry['registered']}/{frames} in {entry['seconds']:.1f} s ({status})"


def _parallax_row(report: ProcessReport) -> str:
    figures = report.parallax
    if not figures:
        return "-"
    return (
        f"rotation ratio {figures['rotation_ratio']:.2f}, median triangulation angle "
        f"{figures['median_triangulation_deg']:.2f} deg, path / median depth {figures['baseline_ratio']:.3f}"
    )


def print_report(report: ProcessReport, console: Console) -> None:
    """The summary table printed at the end of a run."""
    table = Table(title=f"semflow-process-data: {report.output}", show_header=False)
    registered = "supplied" if report.registered is None else f"{report.registered} / {report.input_frames}"
    if report.registered is not None and report.input_frames != report.frames + report.trimmed:
        registered = f"{report.registered} / {report.frames + report.trimmed} kept frames"
    poses = report.pose_source
    if report.pose_source == "sfm":
        poses = f"{POSE_STEP_NAMES.get(report.pose_step or 'sfm', report.pose_step)} (step {report.pose_step})"
        if report.approximate_poses:
            poses += ", approximate: refined in training"
        if report.pose_step == "rotation-only" and report.parallax:
            poses += " - no parallax"
    rows = [
        ("frames written", f"{report.frames} (of {report.input_frames} input frames)"),
        ("input frames kept", _input_row(report)),
        ("poses", poses),
        (
            "pose steps tried",
            "; ".join(_attempt(a, report.frames + report.trimmed) for a in report.pose_attempts) or "-",
        ),
        ("frames registered by SfM" if report.pose_step != "rotation-only" else "frames with a pose", registered),
        ("dropped at the ends / interpolated", f"{report.trimmed} / {len(report.interpolated)}"),
        (
            "mean reprojection error" if report.pose_step != "rotation-only" else "rotation residual",
            "-" if report.reprojection_error_px is None else f"{report.reprojection_error_px:.3f} px",
        ),
        ("SfM points", "-" if report.points is None else str(report.points)),
        ("parallax", _parallax_row(report)),
        ("flow forward-backward consistent", f"{100 * report.flow_consistent_fraction:.1f} % of pixels"),
        ("motion masks", _motion_row(report)),
        ("labelled frames", f"{report.labelled_frames} / {report.frames}"),
        ("classes", ", ".join(report.classes)),
        ("time", ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())),
    ]
    if report.moving_objects is not None:
        found = f"{report.moving_objects} found in the motion masks, written as labels (instances 'moving 1', ...)"
        rows.insert(9, ("objects from motion", found if report.moving_objects else "none: nothing moves"))
    rows += [("warnings", warning) for warning in report.warnings]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def run(command: ProcessOptions, console: Optional[Console] = None) -> int:
    """Runs the command; returns the exit code (0 done, 1 user error, printed without a traceback)."""
    console = console if console is not None else Console()
    try:
        report = process(command, console)
    except (SceneFormatError, ProcessError) as err:
        console.print(f"[bold red]Error:[/bold red] {err}", highlight=False)
        return 1
    print_report(report, console)
    console.print(
        f"[green]Scene written to {report.output}[/green]; train with: ns-train semantic-flow semflow-data --data {report.output}"
    )
    return 0


def entrypoint(args: Sequence[str] | None = None) -> None:
    """Console-script entry point; ``args`` defaults to the command line."""
    sys.exit(run(tyro.cli(ProcessOptions, prog="semflow-process-data", args=args)))


if __name__ == "__main__":
    entrypoint()
