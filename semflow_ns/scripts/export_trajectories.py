"""``semflow-export trajectories``: the paths through the video of the points seen at given pixels of a frame.

What the viewer's "inspect point + path" does for a click, for scripts and plots: each pixel's ray of video
frame ``--frame`` is cast at that frame's time and pose (:mod:`~semflow_ns.model_components.inspect`), and
the surface point it hits is followed through every frame by the scene flow (static points stay put;
:mod:`~semflow_ns.model_components.trajectories`).

Example::

    semflow-export trajectories --load-config RUN/config.yml --frame 10 --pixels 64,48 100,20 \\
        --output-path exports/paths.json

writes

- ``paths.json``: the frame, its time and, per pixel, ``pixel`` [x, y], ``surface`` (False: the ray hits sky
  or empty space and has no path), ``class``, ``class_probability``, ``instance``, ``depth``, ``xyz``,
  ``dynamic_share``, ``moving`` and ``trajectory``: one ``{"frame", "time", "xyz"}`` per video frame;
- ``paths.ply`` (next to it): every path as vertices (x, y, z, colour by time, ``time``, ``point``, ``frame``)
  joined by edges, for MeshLab, Open3D or any PLY reader.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from nerfstudio.utils.eval_utils import eval_setup
from rich.console import Console

from semflow_ns.model_components.inspect import (
    MIN_SURFACE_ACCUMULATION,
    frame_camera,
    inspect_rays,
    pixel_rays,
    querying,
)
from semflow_ns.model_components.trajectories import Paths, integrate_paths
from semflow_ns.scripts.runs import RunError, load_run_config
from semflow_ns.utils.colors import time_colours


def parse_pixel(text: str) -> tuple[int, int]:
    """``"x,y"`` (column, row) -> (x, y)."""
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.lstrip("-").isdigit() for p in parts):
        raise RunError(f"--pixels: {text!r} is not x,y (column,row in pixels, e.g. 64,48)")
    return int(parts[0]), int(parts[1])


def write_ply(path: Path, paths: Paths, keep: list[int]) -> None:
    """The paths of points ``keep`` as an ASCII PLY: vertices coloured by time, edges between frames."""
    times = paths.frame_times.cpu()
    colours = time_colours(times)
    vertices, edges = [], []
    for number, index in enumerate(keep):
        first = len(vertices)
        for frame, (xyz, colour) in enumerate(zip(paths.points[index].cpu().tolist(), colours, strict=True)):
            r, g, b = (int(c) for c in colour)
            vertices.append(
                f"{xyz[0]:.6f} {xyz[1]:.6f} {xyz[2]:.6f} {r} {g} {b} {float(times[frame]):.6f} {number} {frame}"
            )
        edges += [f"{first + k} {first + k + 1}" for k in range(len(times) - 1)]
    header = [
        "ply",
        "format ascii 1.0",
        "comment semflow-export trajectories: one path per picked point, vertices at the video frames",
        f"element vertex {len(vertices)}",
        *[f"property float {name}" for name in ("x", "y", "z")],
        *[f"property uchar {name}" for name in ("red", "green", "blue")],
        "property float time",
        "property int point",
        "property int frame",
        f"element edge {len(edges)}",
        "property int vertex1",
        "property int vertex2",
        "end_header",
    ]
    path.write_text("\n".join(header + vertices + edges) + "\n")


@dataclass(kw_only=True)
class ExportTrajectories:
    """Export the paths through the video of the points seen at given pixels of one frame (.json and .ply)."""

    load_config: Path
    """config.yml of a trained semantic-flow run."""
    frame: int
    """Video frame (0-based) whose pixels are picked; its time and camera are used."""
    pixels: tuple[str, ...]
    """Pixels as x,y (column,row), e.g. --pixels 64,48 100,20."""
    output_path: Path = Path("exports/trajectories.json")
    """JSON to write; the PLY goes next to it (same name, .ply)."""
    min_accumulation: float = MIN_SURFACE_ACCUMULATION
    """Rays with less accumulated opacity hit no surface (sky, empty space) and get no path."""

    def main(self, console: Console) -> dict[str, Any]:
        if self.output_path.suffix != ".json":
            raise RunError(f"--output-path must end in .json, got {self.output_path}")
        if not self.pixels:
            raise RunError("--pixels: give at least one pixel as x,y")
        pixels = [parse_pixel(p) for p in self.pixels]
        config = load_run_config(self.load_config)
        if config.method_name != "semantic-flow":
            raise RunError("trajectories need a semantic-flow run (a multi-scene run: export from its scenes' runs)")
        _, pipeline, _, _ = eval_setup(self.load_config, test_mode="test")
        model: Any = pipeline.model
        try:
            camera = frame_camera(model, self.frame)
            origins, directions = pixel_rays(camera, pixels)
        except IndexError as err:
            raise RunError(f"--frame/--pixels: {err}") from None
        time = float(camera.times.flatten()[0])  # type: ignore[union-attr]
        with querying(model):
            found = inspect_rays(model, origins, directions, time, self.min_accumulation)
            surface = [i for i, f in enumerate(found) if f.surface]
            points = torch.tensor([f.point for f in found])
            moving = torch.tensor([f.moving for f in found])
            paths = integrate_paths(model, points, moving, time)
        frame_times = paths.frame_times.cpu().tolist()
        records = []
        for i, (pixel, inspection) in enumerate(zip(pixels, found, strict=True)):
            record: dict[str, Any] = {"pixel": list(pixel), **inspection.to_json(), "trajectory": []}
            if inspection.surface:
                record["trajectory"] = [
                    {"frame": f, "time": t, "xyz": xyz}
                    for f, (t, xyz) in enumerate(zip(frame_times, paths.points[i].cpu().tolist(), strict=True))
                ]
            records.append(record)
        report = {"load_config": str(self.load_config), "frame": self.frame, "time": time, "points": records}
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        self.output_path.write_text(json.dumps(report, indent=1))
        write_ply(self.output_path.with_suffix(".ply"), paths, surface)
        missed = len(found) - len(surface)
        note = f"; {missed} pixel(s) hit no surface (no path)" if missed else ""
        console.print(
            f"[green]Saved[/green] {len(surface)} path(s) over {len(frame_times)} frames from frame {self.frame} "
            f"(t = {time:.3f}) to {self.output_path} and {self.output_path.with_suffix('.ply')}{note}"
        )
        return report
