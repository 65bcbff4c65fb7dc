"""``semflow-camera-path``: camera paths with times for `ns-render camera-path` on a Semantic Flow run.

Shots (subcommands)::

    # the input video re-rendered: training view 0, time sweeping over the video's frames
    semflow-camera-path video --load-config RUN/config.yml --output-path paths/video.json
    # bullet time: time frozen at 0.5, camera moving along the training trajectory (or --trajectory orbit)
    semflow-camera-path bullet-time --load-config RUN/config.yml --time 0.5 --output-path paths/bullet.json
    # novel path: camera on a 40-degree arc around the scene while time sweeps 0 -> 1
    semflow-camera-path novel --load-config RUN/config.yml --degrees 40 --output-path paths/novel.json
    # give a camera path made in the viewer (without times) a time sweep
    semflow-camera-path add-times --input camera_path.json --output-path paths/timed.json

Training views and trajectories use the poses the run learned when it refined its camera poses (scenes
marked ``approximate_poses``), read from its latest checkpoint.

then ``ns-render camera-path --load-config RUN/config.yml --camera-path-filename paths/video.json
--rendered-output-names rgb semantics_colormap --output-path renders/video.mp4``.
"""

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
import tyro
from rich.console import Console

from semflow_ns.scripts.runs import RunError, RunScene, load_run_config, load_run_scene, refined_video
from semflow_ns.utils.camera_paths import (
    camera_path_json,
    interpolate_poses,
    look_at_point,
    mean_up,
    orbit_poses,
    sweep_times,
    vertical_fov_degrees,
)


def _check_time(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise RunError(f"{name} must lie in [0, 1] (0 = first video frame, 1 = last), got {value}")


@dataclass
class _Shot:
    load_config: Path
    """config.yml of a trained semantic-flow run (its training cameras anchor the path)."""
    output_path: Path = Path("camera_path.json")
    """Camera-path JSON to write."""
    fps: float = 24.0
    """Frames per second of the rendered video."""
    scale: float = 1.0
    """Rendered resolution relative to the training images."""

    def check(self) -> None:
        """Raises RunError for options out of range (checked before the run is read)."""
        if self.fps <= 0 or self.scale <= 0:
            raise RunError(f"--fps and --scale must be positive, got {self.fps} and {self.scale}")

    def poses_and_times(self, scene: RunScene) -> tuple[np.ndarray, list[float]]:
        """Camera-to-world poses [N, 4, 4] and their render times."""
        raise NotImplementedError


@dataclass
class VideoShot(_Shot):
    """Fixed training view, time sweeping: the input video re-rendered (from another view with --camera)."""

    camera: int = 0
    """Video frame whose camera is used for the whole shot (0-based)."""
    num_frames: int = 0
    """Frames to render; 0 = one per video frame, at the video's own times."""
    start: float = 0.0
    """First time (with --num-frames)."""
    end: float = 1.0
    """Last time (with --num-frames)."""
    fps: float = 10.0

    def check(self) -> None:
        super().check()
        if self.num_frames < 0:
            raise RunError(f"--num-frames must be 0 (one per video frame) or more, got {self.num_frames}")
        _check_time("--start", self.start)
        _check_time("--end", self.end)

    def poses_and_times(self, scene: RunScene) -> tuple[np.ndarray, list[float]]:
        if not 0 <= self.camera < len(scene.video):
            raise RunError(f"--camera must be a video frame in [0, {len(scene.video) - 1}], got {self.camera}")
        times = (
            scene.video.times.tolist() if self.num_frames == 0 else sweep_times(self.start, self.end, self.num_frames)
        )
        return np.repeat(_poses(scene)[self.camera][None], len(times), axis=0), times


@dataclass
class _MovingShot(_Shot):
    trajectory: Literal["train", "orbit"] = "orbit"
    """train: the training cameras' trajectory; orbit: an arc of --degrees around the middle training view."""
    degrees: float = 40.0
    """Arc of the orbit (360 = a full turn)."""
    num_frames: int = 48
    """Frames to render."""

    def check(self) -> None:
        super().check()
        if self.num_frames < 1:
            raise RunError(f"--num-frames must be positive, got {self.num_frames}")

    def poses(self, scene: RunScene) -> np.ndarray:
        """The camera moving along the training trajectory or on an arc around what the video looks at."""
        poses = _poses(scene)
        if self.trajectory == "train":
            return interpolate_poses(poses, self.num_frames)
        centre = look_at_point(poses, scene.box.mean(0))
        return orbit_poses(poses[len(poses) // 2], centre, mean_up(poses), self.degrees, self.num_frames)


@dataclass
class BulletTimeShot(_MovingShot):
    """Time frozen, camera moving: along the training trajectory or on an arc around the scene."""

    time: float = 0.5
    """The frozen moment, in [0, 1]."""
    trajectory: Literal["train", "orbit"] = "train"

    def check(self) -> None:
        super().check()
        _check_time("--time", self.time)

    def poses_and_times(self, scene: RunScene) -> tuple[np.ndarray, list[float]]:
        return self.poses(scene), [self.time] * self.num_frames


@dataclass
class NovelShot(_MovingShot):
    """Camera moving and time moving: an arc around the scene (or the training trajectory) while time sweeps."""

    start: float = 0.0
    """Time at the first frame."""
    end: float = 1.0
    """Time at the last frame."""

    def check(self) -> None:
        super().check()
        _check_time("--start", self.start)
        _check_time("--end", self.end)

    def poses_and_times(self, scene: RunScene) -> tuple[np.ndarray, list[float]]:
        return self.poses(scene), sweep_times(self.start, self.end, self.num_frames)


@dataclass
class AddTimes:
    """Give every entry of an existing camera path (e.g. one made in the viewer) a render time."""

    input: Path
    """Camera-path JSON to read."""
    output_path: Path = Path("camera_path_timed.json")
    """Camera-path JSON to write."""
    start: float = 0.0
    """Time of the first entry."""
    end: float = 1.0
    """Time of the last entry (equal to --start for bullet time)."""


def _poses(scene: RunScene) -> np.ndarray:
    poses = np.tile(np.eye(4), (len(scene.video), 1, 1))
    poses[:, :3, :4] = scene.video.cameras.camera_to_worlds.numpy()
    return poses


def build_path(shot: _Shot) -> dict:
    """The camera-path JSON of ``shot``, at the training cameras' field of view.

    Raises:
        RunError: an option out of range (times outside [0, 1], an unknown camera, no frames) or a bad run.
    """
    shot.check()
    config = load_run_config(shot.load_config)
    scene = load_run_scene(config)
    scene = replace(scene, video=refined_video(config, scene.video))  # training cameras at their learned poses
    poses, times = shot.poses_and_times(scene)
    cameras = scene.video.cameras
    width = max(1, round(float(cameras.width[0, 0]) * shot.scale))
    height = max(1, round(float(cameras.height[0, 0]) * shot.scale))
    fov = vertical_fov_degrees(float(cameras.fy[0, 0]), float(cameras.height[0, 0]))
    return camera_path_json(poses, times, fov, width, height, shot.fps)


def add_times(command: AddTimes) -> dict:
    """The camera path in ``command.input`` with render times sweeping from --start to --end."""
    _check_time("--start", command.start)
    _check_time("--end", command.end)
    try:
        path = json.loads(command.input.read_text())
        entries = path["camera_path"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RunError(f"--input {command.input}: not a camera-path JSON with a 'camera_path' list ({err})") from err
    for entry, time in zip(entries, sweep_times(command.start, command.end, len(entries)), strict=True):
        entry["render_time"] = time
    return path


Command = Union[
    Annotated[VideoShot, tyro.conf.subcommand(name="video")],
    Annotated[BulletTimeShot, tyro.conf.subcommand(name="bullet-time")],
    Annotated[NovelShot, tyro.conf.subcommand(name="novel")],
    Annotated[AddTimes, tyro.conf.subcommand(name="add-times")],
]


def run(command: _Shot | AddTimes, console: Console | None = None) -> int:
    """Writes the camera path of ``command``; returns the exit code (0 ok, 1 bad input)."""
    console = console if console is not None else Console()
    try:
        path = add_times(command) if isinstance(command, AddTimes) else build_path(command)
    except RunError as err:
        console.print(f"[red]semflow-camera-path: {err}[/red]")
        return 1
    command.output_path.parent.mkdir(parents=True, exist_ok=True)
    command.output_path.write_text(json.dumps(path, indent=1), "utf8")
    entries = path["camera_path"]
    times = [e["render_time"] for e in entries]
    console.print(
        f"[green]Wrote[/green] {command.output_path}: {len(entries)} cameras, times {min(times):.3g} to "
        f"{max(times):.3g}, {path['render_width']}x{path['render_height']} px"
    )
    return 0


def entrypoint(args: Sequence[str] | None = None) -> None:
    """Console-script entry point; ``args`` defaults to the command line."""
    sys.exit(run(tyro.cli(Command, prog="semflow-camera-path", args=args)))  # type: ignore[arg-type]


if __name__ == "__main__":
    entrypoint()
