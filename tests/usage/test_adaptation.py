"""Scene adaptation: a new run starts from another run's frame encoder, attention and semantic heads."""

import json
import shlex
import shutil
from pathlib import Path

import pytest
import torch
import tyro
from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion
from nerfstudio.engine.callbacks import TrainingCallbackAttributes, TrainingCallbackLocation

from semflow_ns.data.demo import DemoSceneConfig, generate_demo_scene
from semflow_ns.data.format import SCENE_FILE
from semflow_ns.model_components.adaptation import (
    AdaptationConfig,
    AdaptationError,
    class_rows,
    module_at,
    read_source,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def other_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new scene with the same classes: the tiny demo with other textures (seed 1)."""
    root = tmp_path_factory.mktemp("other") / "scene"
    generate_demo_scene(root, DemoSceneConfig(num_frames=8, width=32, height=24, num_eval_times=1, seed=1), False)
    return root


@pytest.fixture
def pipeline_of(tiny_model_args: list[str]):
    """Builds the tiny model's pipeline on a scene with extra ns-train options, as ns-train parses them."""
    return lambda scene, *options: _pipeline(tiny_model_args, scene, *options)


def _pipeline(model_args: list[str], scene: Path, *options: str):
    args = ["semantic-flow", *model_args, *options, "semflow-data", "--data", str(scene)]
    config = tyro.cli(AnnotatedBaseConfigUnion, args=args)
    return config.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)


def run_callbacks(pipeline, step: int) -> None:
    attributes = TrainingCallbackAttributes(optimizers=None, grad_scaler=None, pipeline=pipeline, trainer=None)
    for callback in pipeline.model.get_training_callbacks(attributes):
        callback.run_callback_at_location(step, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)


def head_out(model, path: str) -> torch.Tensor:
    return module_at(model, path).mlp.layers[-1].weight.detach().clone()


def test_class_rows_match_names_and_renames() -> None:
    assert class_rows(["b", "a"], ["a", "b", "c"], "") == [1, 0]
    assert class_rows(["bg", "car"], ["background", "car"], "bg=background") == [0, 1]
    with pytest.raises(AdaptationError, match=r"no class for 'box', 'bg' \(as 'ground'\)\. Source classes: \['a'\]"):
        class_rows(["box", "bg"], ["a"], "bg=ground")
    with pytest.raises(AdaptationError, match="'bg:ground' is not of the form new=old"):
        class_rows(["bg"], ["bg"], "bg:ground")


def test_part_names_are_checked() -> None:
    with pytest.raises(AdaptationError, match=r"adaptation.parts: unknown part\(s\) \['fields'\]"):
        AdaptationConfig(parts=("fields",)).check()
    with pytest.raises(AdaptationError, match=r"adaptation.freeze: \['attention'\] must also be in adaptation.parts"):
        AdaptationConfig(parts=("semantic-heads",), freeze=("attention",)).check()


def test_first_step_loads_the_scene_independent_parts(pipeline_of, trained_run: Path, other_scene: Path) -> None:
    source = read_source(trained_run)
    fresh = pipeline_of(other_scene).model
    pipeline = pipeline_of(other_scene, "--pipeline.model.adaptation.load-config", str(trained_run))
    model = pipeline.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run_callbacks(pipeline, 5)  # a resumed run: nothing is loaded again
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

    run_callbacks(pipeline, 0)
    after = model.state_dict()
    loaded = 0
    for key, value in after.items():
        if key.startswith(("dynamic.aggregator.bank.encoder.", "dynamic.attention.")):
            assert torch.equal(value, source.state[key]), key
            loaded += 1
        elif key.startswith(("static_field.", "dynamic.field.", "dynamic.scene_flow.", "proposal_field.")):
            assert torch.equal(value, before[key]), f"{key} is scene-specific and must start fresh"
    assert loaded > 0, "the encoder and attention weights were compared"
    num_classes = len(source.class_names)
    for name in ("dynamic.semantic_head", "static_semantic_head"):
        weight = head_out(model, name)
        assert torch.equal(weight[:num_classes], source.state[f"{name}.mlp.layers.2.weight"][:num_classes])
        # the instance logits belong to the source scene: the new run keeps its own initialisation
        assert torch.equal(weight[num_classes:], before[f"{name}.mlp.layers.2.weight"][num_classes:])
    assert not torch.equal(
        head_out(fresh, "dynamic.semantic_head")[:num_classes], head_out(model, "dynamic.semantic_head")[:num_classes]
    )


def test_renamed_classes_need_a_class_map(pipeline_of, trained_run: Path, other_scene: Path, tmp_path: Path) -> None:
    scene = tmp_path / "renamed"
    shutil.copytree(other_scene, scene)
    meta = json.loads((scene / SCENE_FILE).read_text())
    meta["classes"][2]["name"] = "box"  # the source calls it "crate"
    meta["instances"] = [dict(i, **{"class": "box"}) if i["class"] == "crate" else i for i in meta["instances"]]
    (scene / SCENE_FILE).write_text(json.dumps(meta))

    pipeline = pipeline_of(scene, "--pipeline.model.adaptation.load-config", str(trained_run))
    with pytest.raises(AdaptationError, match=r"the source run has no class for 'box'\..*class-map new=old"):
        run_callbacks(pipeline, 0)

    renamed = pipeline_of(
        scene, "--pipeline.model.adaptation.load-config", str(trained_run), "--pipeline.model.adaptation.class-map",
        "box=crate",
    )  # fmt: skip
    run_callbacks(renamed, 0)
    source = read_source(trained_run)
    assert torch.equal(
        head_out(renamed.model, "dynamic.semantic_head")[2],
        source.state["dynamic.semantic_head.mlp.layers.2.weight"][2],
    )


def test_frozen_parts_do_not_train(pipeline_of, trained_run: Path, other_scene: Path) -> None:
    pipeline = pipeline_of(
        other_scene, "--pipeline.model.adaptation.load-config", str(trained_run),
        "--pipeline.model.adaptation.freeze", "frame-encoder", "attention",
    )  # fmt: skip
    model = pipeline.model
    run_callbacks(pipeline, 0)
    frozen = [p for m in (model.dynamic.aggregator.bank.encoder, model.dynamic.attention) for p in m.parameters()]
    assert frozen and not any(p.requires_grad for p in frozen)
    before = [p.detach().clone() for p in frozen]
    head_before = head_out(model, "dynamic.semantic_head")
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for step in range(2):
        _, loss_dict, _ = pipeline.get_train_loss_dict(step)
        optimizer.zero_grad()
        sum(loss_dict.values()).backward()
        optimizer.step()
    assert all(torch.equal(a, p) for a, p in zip(before, frozen, strict=True))
    assert not torch.equal(head_before, head_out(model, "dynamic.semantic_head")), "the unfrozen heads still train"


def test_point_head_model_has_no_flow_parts(pipeline_of, trained_run: Path, other_scene: Path) -> None:
    with pytest.raises(AdaptationError, match="this model has no frame-encoder .*semantic-source flow"):
        pipeline_of(
            other_scene, "--pipeline.model.semantic-source", "point", "--pipeline.model.adaptation.load-config",
            str(trained_run), "--pipeline.model.adaptation.freeze", "frame-encoder",
        )  # fmt: skip


def test_ns_train_adapts_with_the_preset(
    trained_run: Path, other_scene: Path, tmp_path: Path, tiny_train_command, run_cli
):
    preset = shlex.split((CONFIGS / "adaptation.txt").read_text())
    command = tiny_train_command(3, tmp_path, "adapted")
    # the preset right after the method name; the tiny run's own --max-num-iterations (later) wins
    command[2:2] = [*preset, "--pipeline.model.adaptation.load-config", str(trained_run)]
    result = run_cli(*command, "semflow-data", "--data", str(other_scene))
    assert "adapting from" in result.stdout and "semantic_head" in result.stdout
    assert list((tmp_path / "adapted").glob("semantic-flow/run/nerfstudio_models/step-000000002.ckpt"))

    missing = tmp_path / "nowhere" / "config.yml"
    command = tiny_train_command(3, tmp_path, "bad")
    command[2:2] = ["--pipeline.model.adaptation.load-config", str(missing)]
    result = run_cli(*command, "semflow-data", "--data", str(other_scene), check=False)
    assert result.returncode != 0 and f"adaptation.load-config {missing}: no such file" in (
        result.stdout + result.stderr
    )
    assert not list((tmp_path / "bad").glob("semantic-flow/run/nerfstudio_models/*.ckpt"))
