"""The argument presets in ``configs/`` parse as ``ns-train semantic-flow`` arguments and change what they say.

Model presets go right after the method name; task presets (label subsets and their evaluation split) are
DataParser options and go after ``semflow-data`` or ``dynnerf-data``."""

import shlex
from pathlib import Path

import pytest
import tyro
from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion

from semflow_ns.configs.method_configs import semantic_flow_config
from semflow_ns.data.dataparsers.frame_selection import parse_frame_set

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPECTED = {
    "ablation-point-semantics.txt": lambda c: c.pipeline.model.semantic_source == "point",
    "ablation-no-attention.txt": lambda c: c.pipeline.model.attention.enabled is False,
    "window-5.txt": lambda c: c.pipeline.model.scene_flow.window == 5,
    "trajectory-detached.txt": lambda c: c.pipeline.model.detach_trajectory_features is True,
    "label-propagation.txt": lambda c: (
        (c.pipeline.model.semantic_propagation_loss_mult or 0) > 0
        and c.pipeline.model.semantic_propagation_outward is True
        and c.pipeline.model.semantic_field_features is False
        and c.pipeline.model.semantic_propagation_flow_tolerance == float("inf")
        and c.pipeline.model.semantic_propagation_max_labelled_fraction == 1.0
    ),
    "adaptation.txt": lambda c: (
        c.max_num_iterations == 500
        and c.pipeline.model.adaptation.parts == ("frame-encoder", "attention", "semantic-heads")
    ),
    "multi-scene-3.txt": lambda c: (
        c.max_num_iterations == c.steps_per_eval_all_images == 6600
        and all(group["scheduler"].max_steps == 6600 for group in c.optimizers.values())
    ),
}
MULTI_SCENE = {"multi-scene-3.txt"}
"""Presets for `ns-train semantic-flow-multi` (they also parse for `semantic-flow`)."""
TASKS = {
    "tracking-first.txt": "first:1",
    "tracking-25.txt": "first:25%",
    "tracking-50.txt": "first:50%",
    "tracking-75.txt": "first:75%",
    "completion-every-2.txt": "every:2",
    "completion-every-4.txt": "every:4",
}
"""Task presets and the label subset each one sets (every one evaluates on the unlabelled frames)."""
TASK_FRAMES_OF_12 = {
    "tracking-first.txt": [0],
    "tracking-25.txt": [0, 1, 2],
    "tracking-50.txt": [0, 1, 2, 3, 4, 5],
    "tracking-75.txt": [0, 1, 2, 3, 4, 5, 6, 7, 8],
    "completion-every-2.txt": [0, 2, 4, 6, 8, 10],
    "completion-every-4.txt": [0, 4, 8],
}
"""Labelled frames on a 12-frame video: the paper's tracking splits (README, "Label subsets and evaluation
splits") and two completion densities."""


def test_every_preset_is_checked() -> None:
    assert sorted(p.name for p in CONFIGS.glob("*.txt")) == sorted([*EXPECTED, *TASKS, *VIEW_TASKS])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_parses_and_applies(name: str) -> None:
    default = semantic_flow_config()
    assert not EXPECTED[name](default)
    args = shlex.split((CONFIGS / name).read_text())
    config = tyro.cli(AnnotatedBaseConfigUnion, args=["semantic-flow", *args])  # what ns-train parses
    assert EXPECTED[name](config)


VIEW_TASKS = {"withheld-every-8.txt": ("every:8+4", [4])}
"""Presets that leave frames out of training and score them (new views along the camera path)."""


@pytest.mark.parametrize("name", sorted(VIEW_TASKS))
def test_withheld_frame_preset_parses_as_dataparser_options(name: str) -> None:
    args = shlex.split((CONFIGS / name).read_text())
    config = tyro.cli(AnnotatedBaseConfigUnion, args=["semantic-flow", "semflow-data", "--data", "scene", *args])
    parser = config.pipeline.datamanager.dataparser
    spec, frames_of_12 = VIEW_TASKS[name]
    assert (parser.withheld_frames, parser.eval_source) == (spec, "withheld")
    assert parse_frame_set(parser.withheld_frames, 12) == frames_of_12


@pytest.mark.parametrize("dataparser", ["semflow-data", "dynnerf-data"])
@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_preset_parses_as_dataparser_options(name: str, dataparser: str) -> None:
    args = shlex.split((CONFIGS / name).read_text())
    config = tyro.cli(AnnotatedBaseConfigUnion, args=["semantic-flow", dataparser, "--data", "scene", *args])
    parser = config.pipeline.datamanager.dataparser
    assert (parser.label_frames, parser.eval_source) == (TASKS[name], "unlabelled")
    assert parse_frame_set(parser.label_frames, 12) == TASK_FRAMES_OF_12[name]


@pytest.mark.parametrize("name", sorted(MULTI_SCENE))
def test_multi_scene_preset_parses_for_the_multi_scene_method(name: str) -> None:
    args = shlex.split((CONFIGS / name).read_text())
    config = tyro.cli(
        AnnotatedBaseConfigUnion, args=["semantic-flow-multi", *args, "semflow-multi-data", "--data", "a", "b"]
    )
    assert config.method_name == "semantic-flow-multi" and EXPECTED[name](config)
    assert config.pipeline.datamanager.dataparser.data == (Path("a"), Path("b"))
