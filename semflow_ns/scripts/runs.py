"""A trained run as the command lines see it: its config.yml, its scene, and edited copies of its config.

nerfstudio's `ns-render`, `ns-eval` and `ns-export` read everything from a run's ``config.yml``. The
`semflow-*` commands reuse them unchanged and pass options the model reads from its config (scene
edits, the default render time, the evaluation split) by writing an edited copy of that file: the
copy still points at the run's checkpoints, because those are located from the config's
``output_dir``/``experiment_name``/``timestamp``, not from where the file lies.
"""

import dataclasses
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from nerfstudio.engine.trainer import TrainerConfig

from semflow_ns.data.dataparsers.metadata import SceneInfo, VideoFrames
from semflow_ns.model_components.edit_names import EditRequest, resolve_edit

METHODS = ("semantic-flow", "semantic-flow-multi")
"""The methods whose runs the commands read."""


class RunError(Exception):
    """A run or option that a command cannot use; the message says what to change."""


@dataclass(kw_only=True)
class EditOptions:
    """Command-line options for a scene edit (`semflow-render`, `semflow-export`)."""

    remove_classes: tuple[str, ...] = ()
    """Classes to remove from the rendered scene (names as in the scene, e.g. ball)."""
    remove_instances: tuple[str, ...] = ()
    """Instances to remove (names such as 'rolling ball', or instance ids)."""
    highlight_classes: tuple[str, ...] = ()
    """Classes kept bright while the rest of rgb is dimmed."""

    def request(self) -> EditRequest:
        return EditRequest(self.remove_classes, self.remove_instances, self.highlight_classes)


def load_run_config(path: Path) -> TrainerConfig:
    """The :class:`TrainerConfig` saved by `ns-train` in ``path`` (a run's config.yml).

    Raises:
        RunError: the file is missing or is not a saved nerfstudio config of a Semantic Flow run.
    """
    if not path.is_file():
        raise RunError(f"--load-config {path}: no such file (give the config.yml of a run made by ns-train)")
    config = yaml.load(path.read_text(), Loader=yaml.Loader)
    if not isinstance(config, TrainerConfig):
        raise RunError(f"--load-config {path}: not a nerfstudio config.yml")
    if config.method_name not in METHODS:
        raise RunError(
            f"--load-config {path}: a {config.method_name!r} run; these commands need a semantic-flow "
            "(or semantic-flow-multi) run"
        )
    return config


@dataclass
class RunScene:
    """What a command needs to know about a run's scene, without loading the model."""

    video: VideoFrames
    """The training video (cameras with times)."""
    info: SceneInfo
    class_names: list[str]
    box: np.ndarray
    """Scene box [2, 3] (min and max corners)."""


def load_run_scene(config: TrainerConfig) -> RunScene:
    """The scene of a run, as its DataParser gives it for training (cheap: no images are decoded); for a
    multi-scene run, the scene it renders for free cameras (``render_scene``)."""
    outputs = config.pipeline.datamanager.dataparser.setup().get_dataparser_outputs(split="train")
    metadata = outputs.metadata
    scenes = metadata.get("semflow_scenes")
    if scenes:  # a multi-scene run: the scene it renders for cameras of no scene
        scene = scenes[config.pipeline.model.render_scene]  # type: ignore[attr-defined]
        box = scene.scene_box.aabb.numpy().astype(np.float64)
        return RunScene(scene.video, scene.info, list(scene.semantics.classes), box)
    box = outputs.scene_box.aabb.numpy().astype(np.float64)
    return RunScene(metadata["semflow_video"], metadata["semflow_scene"], list(metadata["semantics"].classes), box)


POSE_CORRECTION_KEY = "_model.camera_optimizer.pose_adjustment"
"""Where a checkpoint keeps the learned pose corrections (runs that refined their poses)."""


def refined_video(config: TrainerConfig, video: VideoFrames) -> VideoFrames:
    """``video`` with the camera poses the run learned, read from its latest checkpoint.

    Returns ``video`` itself when the run did not refine its poses or has no checkpoint yet.
    """
    from semflow_ns.model_components.pose_refinement import corrected_camera_to_worlds

    checkpoints = sorted(config.get_checkpoint_dir().glob("step-*.ckpt"))
    if not checkpoints:
        return video
    state = torch.load(checkpoints[-1], map_location="cpu", weights_only=False)["pipeline"]
    if POSE_CORRECTION_KEY not in state:
        return video
    # the corrections exist, so refinement was on: "auto" had resolved to its refining mode
    optimizer = config.pipeline.model.camera_optimizer.resolve(approximate_poses=True).setup(  # type: ignore[attr-defined]
        num_cameras=len(video), device="cpu"
    )
    optimizer.load_state_dict({"pose_adjustment": state[POSE_CORRECTION_KEY]})
    with torch.no_grad():
        correction = optimizer(torch.arange(len(video)))
        c2w = corrected_camera_to_worlds(video.cameras.camera_to_worlds, correction)
    return dataclasses.replace(video, cameras=dataclasses.replace(video.cameras, camera_to_worlds=c2w))


def check_edit(scene: RunScene, request: EditRequest) -> None:
    """Checks the names of ``request`` against the run's scene.

    Raises:
        EditError: an unknown class or instance; the message lists the valid names.
    """
    resolve_edit(request, scene.class_names, scene.info.instances)


def apply_model_options(config: TrainerConfig, request: EditRequest, default_render_time: float | None) -> None:
    """Puts a scene edit (and a default render time) into the model part of ``config``."""
    model = config.pipeline.model
    model.remove_classes = request.remove_classes  # type: ignore[attr-defined]
    model.remove_instances = request.remove_instances  # type: ignore[attr-defined]
    model.highlight_classes = request.highlight_classes  # type: ignore[attr-defined]
    if default_render_time is not None:
        if not 0.0 <= default_render_time <= 1.0:
            raise RunError(f"--default-render-time must lie in [0, 1] (0 = first frame), got {default_render_time}")
        model.default_render_time = default_render_time  # type: ignore[attr-defined]


@contextmanager
def edited_config_file(path: Path, edit: Callable[[TrainerConfig], None]) -> Iterator[Path]:
    """A temporary copy of the config.yml at ``path`` with ``edit`` applied; removed on exit."""
    config = load_run_config(path)
    edit(config)
    with tempfile.TemporaryDirectory(prefix="semflow-") as folder:
        copy = Path(folder) / "config.yml"
        copy.write_text(yaml.dump(config), "utf8")
        yield copy
