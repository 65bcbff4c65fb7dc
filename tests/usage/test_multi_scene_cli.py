"""`ns-train semantic-flow-multi` on three tiny scenes, then `ns-eval` and `semflow-eval` report every scene."""

import csv
import json

import numpy as np
import pytest
import torch
import tyro
from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion
from nerfstudio.engine.callbacks import TrainingCallbackAttributes, TrainingCallbackLocation
from PIL import Image

from semflow_ns.scripts import camera_path
from semflow_ns.scripts import eval as semflow_eval

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def multi_run(tiny_scene_variants, tiny_train_command, run_cli, tmp_path_factory):
    output = tmp_path_factory.mktemp("multi_runs")
    command = tiny_train_command(30, output, "multi")
    command[1] = "semantic-flow-multi"
    result = run_cli(
        *command, "semflow-multi-data", "--data", *map(str, tiny_scene_variants), "--label-frames", "first:50%"
    )
    assert "semflow-multi-data: 3 scenes (scene, seed1, seed2)" in result.stdout
    config = output / "multi" / "semantic-flow-multi" / "run" / "config.yml"
    assert config.is_file()
    return config


NAMES = ("scene", "seed1", "seed2")


def test_ns_eval_reports_each_scene_and_all_images(multi_run, run_cli, tmp_path):
    output = tmp_path / "eval.json"
    run_cli("ns-eval", "--load-config", str(multi_run), "--output-path", str(output))
    results = json.loads(output.read_text())["results"]
    for key in ("psnr", "miou", "miou_fg"):
        per_scene = [results[f"{key}/{name}"] for name in NAMES]
        assert all(np.isfinite(per_scene)), key
        assert results[key] == pytest.approx(np.mean(per_scene)), "the scenes have as many images each"


def test_semflow_eval_scores_every_scene_on_its_unlabelled_frames(multi_run, tmp_path):
    output = tmp_path / "eval.json"
    command = tyro.cli(semflow_eval.SemanticEval, args=["--load-config", str(multi_run), "--output-path", str(output)])
    assert semflow_eval.run(command) == 0
    report = json.loads(output.read_text())
    assert report["scenes"] == [name for name in NAMES for _ in range(8)]
    assert report["frames_unlabelled"] == [4, 5, 6, 7] * 3, "each scene's frames, numbered in its own video"
    assert set(report["results_unlabelled_by_scene"]) == set(NAMES)
    with open(tmp_path / "eval.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "unlabelled"]
    for name in NAMES:
        own = [float(r["miou"]) for r in rows if r["scene"] == name]
        assert len(own) == 4
        assert np.isclose(np.mean(own), report["results_unlabelled_by_scene"][name]["miou"])
    assert np.isclose(np.mean([float(r["miou"]) for r in rows]), report["results_unlabelled"]["miou"])


def test_a_new_scene_adapts_from_the_multi_scene_run(multi_run, tiny_scene, tiny_model_args):
    """The shared parts of a multi-scene run are what a single-scene run on a new scene starts from."""
    args = ["semantic-flow", *tiny_model_args, "--pipeline.model.adaptation.load-config", str(multi_run)]
    config = tyro.cli(AnnotatedBaseConfigUnion, args=[*args, "semflow-data", "--data", str(tiny_scene)])
    pipeline = config.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)
    attributes = TrainingCallbackAttributes(optimizers=None, grad_scaler=None, pipeline=pipeline, trainer=None)
    for callback in pipeline.model.get_training_callbacks(attributes):
        callback.run_callback_at_location(0, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
    (checkpoint,) = (multi_run.parent / "nerfstudio_models").glob("step-*.ckpt")
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)["pipeline"]
    for key, value in pipeline.model.dynamic.aggregator.bank.encoder.state_dict().items():
        for scene in range(3):  # one encoder, saved once per scene model
            assert torch.equal(value, saved[f"_model.scenes.{scene}.dynamic.aggregator.bank.encoder.{key}"]), (
                scene,
                key,
            )
    for key, value in pipeline.model.dynamic.attention.state_dict().items():
        assert torch.equal(value, saved[f"_model.scenes.0.dynamic.attention.{key}"]), key


def test_camera_paths_and_removal_render_the_render_scene(multi_run, run_cli, tmp_path):
    """`semflow-camera-path` anchors its path on the run's render scene, and `semflow-render` removes a class
    there (the classes are shared by all scenes)."""
    path = tmp_path / "bullet.json"
    args = [
        "bullet-time",
        "--time",
        "0",
        "--num-frames",
        "1",
        "--load-config",
        str(multi_run),
        "--output-path",
        str(path),
    ]
    assert camera_path.run(tyro.cli(camera_path.Command, args=args)) == 0  # type: ignore[arg-type]
    common = ["--load-config", str(multi_run), "--camera-path-filename", str(path)]
    images = ["--output-format", "images", "--image-format", "png", "--rendered-output-names", "rgb"]
    run_cli("ns-render", "camera-path", *common, *images, "--output-path", str(tmp_path / "plain.mp4"))
    run_cli(
        "semflow-render", "camera-path", *common, *images, "--remove-classes", "floor", "wall",
        "--output-path", str(tmp_path / "removed.mp4"),
    )  # fmt: skip
    (plain,) = [np.asarray(Image.open(p), dtype=float) for p in (tmp_path / "plain").glob("*.png")]
    (removed,) = [np.asarray(Image.open(p), dtype=float) for p in (tmp_path / "removed").glob("*.png")]
    assert np.abs(plain - removed).max() > 30, "nothing was removed"
