"""``semflow-render``: nerfstudio's `ns-render` with scene edits, in one command.

Same subcommands and options as `ns-render` (``camera-path``, ``interpolate``, ``spiral``,
``dataset``) plus:

- ``--remove-classes NAME ...`` / ``--remove-instances NAME_OR_ID ...``: render the scene without
  them (their density is zeroed, so what was behind them shows through);
- ``--highlight-classes NAME ...``: dim everything else in ``rgb``;
- ``--default-render-time T``: the time of cameras that come without one (``interpolate``).

Example: the input video without the balls, next to the semantics::

    semflow-camera-path video --load-config RUN/config.yml --output-path paths/video.json
    semflow-render camera-path --load-config RUN/config.yml --camera-path-filename paths/video.json \\
        --remove-classes ball --rendered-output-names rgb semantics_colormap --output-path renders/no_ball.mp4

Names are checked against the run's scene before anything is loaded; an unknown name stops the
command with the list of valid names. The rendering itself is nerfstudio's, run on a temporary
copy of the run's config.yml that carries the edit (see :mod:`semflow_ns.scripts.runs`).
"""

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Optional, Union

import tyro
from nerfstudio.scripts.render import DatasetRender, RenderCameraPath, RenderInterpolated, SpiralRender
from rich.console import Console

from semflow_ns.model_components.edit_names import EditError
from semflow_ns.scripts.runs import (
    EditOptions,
    RunError,
    apply_model_options,
    check_edit,
    edited_config_file,
    load_run_config,
    load_run_scene,
)


@dataclass(kw_only=True)
class RenderOptions(EditOptions):
    """The options `semflow-render` adds to each `ns-render` subcommand."""

    default_render_time: Optional[float] = None
    """Time in [0, 1] for cameras without times (e.g. interpolate); default: the model's (0)."""


def _edited_main(command: RenderOptions, nerfstudio_main: Callable[[], None]) -> None:
    """Checks the edit against the run's scene, then runs nerfstudio's ``main`` on an edited config copy."""
    load_config = command.load_config  # type: ignore[attr-defined]
    request = command.request()
    check_edit(load_run_scene(load_run_config(load_config)), request)
    edit = partial(apply_model_options, request=request, default_render_time=command.default_render_time)
    with edited_config_file(load_config, edit) as copy:
        command.load_config = copy  # type: ignore[attr-defined]
        try:
            nerfstudio_main()
        finally:
            command.load_config = load_config  # type: ignore[attr-defined]


@dataclass
class EditedCameraPath(RenderCameraPath, RenderOptions):
    """ns-render camera-path (a camera path JSON, e.g. from semflow-camera-path), with scene edits."""

    def main(self) -> None:
        _edited_main(self, super().main)


@dataclass
class EditedInterpolated(RenderInterpolated, RenderOptions):
    """ns-render interpolate (between dataset cameras; nerfstudio drops their times), with scene edits."""

    def main(self) -> None:
        _edited_main(self, super().main)


@dataclass
class EditedSpiral(SpiralRender, RenderOptions):
    """ns-render spiral (time sweeping 0 -> 1 along the spiral), with scene edits."""

    def main(self) -> None:
        _edited_main(self, super().main)


@dataclass
class EditedDataset(DatasetRender, RenderOptions):
    """ns-render dataset (every image of a split at its own time), with scene edits."""

    def main(self) -> None:
        _edited_main(self, super().main)


Command = tyro.conf.FlagConversionOff[
    Union[
        Annotated[EditedCameraPath, tyro.conf.subcommand(name="camera-path")],
        Annotated[EditedInterpolated, tyro.conf.subcommand(name="interpolate")],
        Annotated[EditedSpiral, tyro.conf.subcommand(name="spiral")],
        Annotated[EditedDataset, tyro.conf.subcommand(name="dataset")],
    ]
]


def run(command: RenderOptions, console: Optional[Console] = None) -> int:
    """Runs ``command``; returns the exit code (0 ok, 1 bad input, reported without a traceback)."""
    console = console if console is not None else Console()
    try:
        command.main()  # type: ignore[attr-defined]
    except (EditError, RunError) as err:
        console.print(f"[red]semflow-render: {err}[/red]")
        return 1
    return 0


def entrypoint(args: Sequence[str] | None = None) -> None:
    """Console-script entry point; ``args`` defaults to the command line."""
    tyro.extras.set_accent_color("bright_yellow")
    sys.exit(run(tyro.cli(Command, prog="semflow-render", args=args)))  # type: ignore[arg-type]


if __name__ == "__main__":
    entrypoint()
