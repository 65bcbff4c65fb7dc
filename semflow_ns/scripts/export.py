"""``semflow-export``: a point cloud of the scene at one moment, coloured by semantics (or any colour output).

nerfstudio's `ns-export pointcloud` works on Semantic Flow runs (``--normal-method open3d``, and
``--rgb-output-name semantics_colormap`` for class colours), but it casts the training rays at their
own times, so moving objects are smeared along their paths. `semflow-export` runs nerfstudio's
point-cloud generator on the same training rays with every ray at the chosen ``--time``, so the cloud
is one moment of the dynamic scene; it also accepts the scene edits of `semflow-render`.

Example::

    semflow-export --load-config RUN/config.yml --time 0.5 --output-path exports/t050.ply
    semflow-export --load-config RUN/config.yml --time 0.5 --rgb-output-name rgb --remove-classes ball

``semflow-export trajectories`` (see :mod:`~semflow_ns.scripts.export_trajectories`) writes instead the paths
through the video of the points seen at given pixels of a frame::

    semflow-export trajectories --load-config RUN/config.yml --frame 10 --pixels 64,48 100,20
"""

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Optional

import torch
import tyro
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.models.base_model import Model
from nerfstudio.utils.eval_utils import eval_setup
from rich.console import Console

from semflow_ns.model_components.edit_names import EditError
from semflow_ns.scripts.export_trajectories import ExportTrajectories
from semflow_ns.scripts.runs import (
    EditOptions,
    RunError,
    apply_model_options,
    check_edit,
    edited_config_file,
    load_run_config,
    load_run_scene,
)


class RaysAtTime:
    """Stands in for a pipeline in nerfstudio's ``generate_point_cloud``: its training rays, at one time.

    The generator only uses ``pipeline.datamanager.next_train`` and ``pipeline.model``.
    """

    def __init__(self, datamanager: Any, model: Model, time: float) -> None:
        self._datamanager = datamanager
        self.model = model
        self.time = time

    @property
    def datamanager(self) -> "RaysAtTime":
        return self

    def next_train(self, step: int) -> tuple[RayBundle, dict]:
        ray_bundle, batch = self._datamanager.next_train(step)
        ray_bundle.times = torch.full_like(ray_bundle.origins[..., :1], self.time)
        return ray_bundle, batch


@dataclass(kw_only=True)
class ExportSemanticPointCloud(EditOptions):
    """Export the scene at one time as a coloured point cloud (.ply). `semflow-export trajectories --help`: the
    paths of the points seen at chosen pixels of a frame instead."""

    load_config: Path
    """config.yml of a trained semantic-flow run."""
    output_path: Path = Path("exports/pointcloud.ply")
    """Point cloud to write (.ply)."""
    time: float = 0.5
    """Moment of the video to export, in [0, 1]."""
    rgb_output_name: str = "semantics_colormap"
    """Colour of the points: semantics_colormap (class colours), rgb, instances, dynamic rgb, ..."""
    num_points: int = 100_000
    """Points to generate (fewer if outliers are removed)."""
    remove_outliers: bool = True
    """Drop statistical outliers (Open3D)."""
    num_rays_per_batch: int = 4096
    """Rays per model call; lower it if memory runs out."""

    def main(self) -> None:
        if not 0.0 <= self.time <= 1.0:
            raise RunError(f"--time must lie in [0, 1] (0 = first video frame, 1 = last), got {self.time}")
        if self.output_path.suffix != ".ply":
            raise RunError(f"--output-path must end in .ply, got {self.output_path}")
        check_edit(load_run_scene(load_run_config(self.load_config)), self.request())
        edit = partial(apply_model_options, request=self.request(), default_render_time=None)
        with edited_config_file(self.load_config, edit) as copy:
            _, pipeline, _, _ = eval_setup(copy)
        pipeline.datamanager.train_pixel_sampler.num_rays_per_batch = self.num_rays_per_batch  # type: ignore[union-attr]
        import open3d as o3d  # imported here: it needs the system library libusb-1.0
        from nerfstudio.exporter.exporter_utils import generate_point_cloud

        cloud = generate_point_cloud(
            pipeline=RaysAtTime(pipeline.datamanager, pipeline.model, self.time),  # type: ignore[arg-type]
            num_points=self.num_points,
            remove_outliers=self.remove_outliers,
            rgb_output_name=self.rgb_output_name,
            depth_output_name="depth",
        )
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        o3d.io.write_point_cloud(str(self.output_path), cloud)
        Console().print(f"[green]Saved[/green] {len(cloud.points)} points at t = {self.time:g} to {self.output_path}")


def run(command: ExportSemanticPointCloud | ExportTrajectories, console: Optional[Console] = None) -> int:
    """Runs ``command``; returns the exit code (0 ok, 1 bad input, reported without a traceback)."""
    console = console if console is not None else Console()
    try:
        if isinstance(command, ExportTrajectories):
            command.main(console)
        else:
            command.main()
    except (EditError, RunError) as err:
        console.print(f"[red]semflow-export: {err}[/red]")
        return 1
    return 0


TRAJECTORIES = "trajectories"
"""First argument that selects the trajectory export (without it: the point cloud, as before)."""


def entrypoint(args: Sequence[str] | None = None) -> None:
    """Console-script entry point; ``args`` defaults to the command line."""
    tyro.extras.set_accent_color("bright_yellow")
    args = list(sys.argv[1:] if args is None else args)
    if args[:1] == [TRAJECTORIES]:
        command = tyro.cli(ExportTrajectories, prog=f"semflow-export {TRAJECTORIES}", args=args[1:])
        sys.exit(run(command))
    sys.exit(run(tyro.cli(ExportSemanticPointCloud, prog="semflow-export", args=args)))


if __name__ == "__main__":
    entrypoint()
