"""Multi-scene runs: the DataParser that joins scenes, the model with per-scene fields and shared semantic
parts, ray routing and per-scene batching, the pipeline's per-scene metrics and the viewer's scene choice."""

import copy
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import shrink_model

from semflow_ns.configs.method_configs import semantic_flow_multi_config
from semflow_ns.data.dataparsers.multi_scene import SCENE_KEY, MultiSceneDataParserConfig
from semflow_ns.data.datasets.pixel_sampler import sample_indices
from semflow_ns.data.format import SceneFormatError
from semflow_ns.models.multi_scene_model import SHARED_PARTS, MultiSceneModel
from semflow_ns.pipelines.multi_scene_pipeline import pooled


def multi_pipeline(scenes: list[Path], test_mode: str = "val"):
    config = semantic_flow_multi_config()
    config.pipeline.datamanager.dataparser.data = tuple(scenes)
    config.pipeline.datamanager.train_num_rays_per_batch = 96
    shrink_model(config.pipeline.model)
    return config.pipeline.setup(device="cpu", test_mode=test_mode, world_size=1, local_rank=0)


@pytest.fixture(scope="module")
def pipeline(tiny_scene_variants):
    return multi_pipeline(tiny_scene_variants)


def _get(module, path):
    for name in path.split("."):
        module = getattr(module, name)
    return module


# ------------------------------------------------------------------------------------------------
# data


def test_scenes_are_concatenated_with_their_index_in_the_camera_metadata(tiny_scene_variants):
    parser = MultiSceneDataParserConfig(data=tuple(tiny_scene_variants)).setup()
    outputs = parser.get_dataparser_outputs("train")
    scenes = outputs.metadata["semflow_scenes"]
    assert [s.root for s in scenes] == tiny_scene_variants
    assert [s.name for s in scenes] == ["scene", "seed1", "seed2"]
    counts = [s.num_train_images for s in scenes]
    assert len(outputs.image_filenames) == sum(counts) == len(outputs.cameras)
    index = outputs.cameras.metadata[SCENE_KEY][:, 0]
    assert index.tolist() == [i for i, n in enumerate(counts) for _ in range(n)]
    # each scene keeps its own video numbering and its own image files
    frames = outputs.cameras.metadata["video_frame"][:, 0]
    assert frames.tolist() == [f for n in counts for f in range(n)]
    start = counts[0]
    assert outputs.image_filenames[start].is_relative_to(tiny_scene_variants[1])
    assert len(outputs.metadata["semantics"].filenames) == len(outputs.image_filenames)
    evals = parser.get_dataparser_outputs("test")
    assert set(evals.cameras.metadata[SCENE_KEY][:, 0].tolist()) == {0, 1, 2}


def test_scenes_with_other_classes_are_refused_naming_the_scene_and_field(tiny_scene, tmp_path):
    other = Path(shutil.copytree(tiny_scene, tmp_path / "other"))
    transforms = json.loads((other / "transforms.json").read_text())
    transforms["classes"][1]["name"] = "ceiling"
    (other / "transforms.json").write_text(json.dumps(transforms))
    parser = MultiSceneDataParserConfig(data=(tiny_scene, other)).setup()
    with pytest.raises(SceneFormatError, match=r"other: field 'classes' is \[floor, ceiling.*same class list"):
        parser.get_dataparser_outputs("train")


def test_fewer_than_two_or_missing_folders_are_refused(tiny_scene, tmp_path):
    with pytest.raises(SceneFormatError, match="at least two"):
        MultiSceneDataParserConfig(data=(tiny_scene,)).setup().get_dataparser_outputs("train")
    with pytest.raises(SceneFormatError, match="missing.*not found"):
        MultiSceneDataParserConfig(data=(tiny_scene, tmp_path / "missing")).setup().get_dataparser_outputs("train")


def test_batches_take_a_frame_from_every_scene_first():
    torch.manual_seed(0)
    groups = torch.tensor([0] * 20 + [1] * 3 + [2] * 5)
    for _ in range(20):
        indices = sample_indices(None, 64, len(groups), 6, 8, 4, 0.0, groups=groups)
        frames = indices[:, 0].unique()
        assert len(frames) == 4
        assert set(groups[frames].tolist()) == {0, 1, 2}
    without = [set(groups[sample_indices(None, 64, 28, 6, 8, 3, 0.0)[:, 0].unique()].tolist()) for _ in range(20)]
    assert any(len(g) < 3 for g in without), "without groups the frames are drawn at random"


def test_the_dataset_gives_every_image_its_scene(pipeline):
    dataset = pipeline.datamanager.train_dataset
    scenes = [int(dataset[i]["scene"].unique()) for i in range(len(dataset))]
    assert scenes == dataset.cameras.metadata[SCENE_KEY][:, 0].tolist()
    ray_bundle, batch = pipeline.datamanager.next_train(0)
    assert torch.equal(ray_bundle.metadata[SCENE_KEY][:, 0].long(), batch["scene"][:, 0].long())


# ------------------------------------------------------------------------------------------------
# model


def test_each_scene_has_its_own_fields_and_shares_the_semantic_parts(pipeline):
    model = pipeline.model
    assert isinstance(model, MultiSceneModel) and len(model.scenes) == 3
    assert model.shared_parts == list(SHARED_PARTS)
    first, second = model.scenes[0], model.scenes[1]
    for path in SHARED_PARTS:
        assert _get(first, path) is _get(second, path), path
    for own in ("static_field", "dynamic.field", "dynamic.scene_flow", "proposal_field"):
        assert _get(first, own) is not _get(second, own), own
    groups = model.get_param_groups()
    params = [id(p) for group in groups.values() for p in group]
    assert len(params) == len(set(params)), "a shared parameter is in two groups"
    expected = {id(p) for scene in model.scenes for p in scene.parameters() if p.requires_grad}
    expected -= {id(scene.device_indicator_param) for scene in model.scenes}
    assert set(params) == expected, "every trainable parameter of every scene is optimised once"


def test_rays_are_rendered_by_their_own_scene(pipeline):
    """A ray batch mixing scenes renders each ray exactly as its scene's model renders it alone."""
    model = pipeline.model
    pipeline.eval()
    ray_bundle, _ = pipeline.datamanager.next_train(0)
    scenes = ray_bundle.metadata[SCENE_KEY][:, 0]
    assert len(scenes.unique()) == 3
    assert model.collider is None, "each scene model sets its own near and far"
    with torch.no_grad():
        together = model(copy.deepcopy(ray_bundle))  # (colliders write nears and fars into the bundle)
        for index in range(3):
            rows = torch.nonzero(scenes == index)[:, 0]
            alone = model.scenes[index](copy.deepcopy(ray_bundle)[rows])
            for key in ("rgb", "depth", "semantics"):
                assert torch.allclose(together[key][rows], alone[key], atol=1e-6), (index, key)


def test_the_loss_is_the_ray_weighted_sum_of_the_scene_losses(tiny_scene_variants):
    pipeline = multi_pipeline(tiny_scene_variants)
    model = pipeline.model
    pipeline.train()
    ray_bundle, batch = pipeline.datamanager.next_train(0)
    torch.manual_seed(1)
    outputs = model(ray_bundle)
    metrics = model.get_metrics_dict(outputs, batch)
    losses = model.get_loss_dict(outputs, batch, metrics)
    num_rays = len(batch["image"])
    expected = {}
    for index, rows, out in outputs["per_scene"]:
        sub = {k: v[rows] if isinstance(v, torch.Tensor) and len(v) == num_rays else v for k, v in batch.items()}
        sub["indices"] = sub["indices"].clone()
        sub["indices"][:, 0] -= int(model.train_starts[index])
        own_metrics = model.scenes[index].get_metrics_dict(out, sub)
        assert torch.isclose(metrics[f"psnr_{model.scene_names[index]}"], own_metrics["psnr"])
        for key, value in model.scenes[index].get_loss_dict(out, sub, metrics).items():
            expected[key] = expected.get(key, 0.0) + len(rows) / num_rays * value
    assert set(losses) == set(expected)
    for key in losses:
        assert torch.isclose(losses[key], expected[key], rtol=1e-5), key
    sum(losses.values()).backward()
    for index in range(3):  # every scene's fields and the shared head learn from this batch
        assert model.scenes[index].static_field.density_mlp.layers[0].weight.grad.abs().sum() > 0
    assert model.scenes[0].dynamic.semantic_head.mlp.layers[0].weight.grad.abs().sum() > 0


def test_training_cameras_are_renumbered_for_their_scene(tiny_scene_variants):
    """The scene models see their own camera numbers (pose refinement, warping index by them)."""
    pipeline = multi_pipeline(tiny_scene_variants)
    model = pipeline.model
    pipeline.train()
    seen = {}
    for index, scene in enumerate(model.scenes):
        original = scene.get_outputs

        def spy(rays, index=index, original=original):
            seen[index] = rays.camera_indices[:, 0].clone()
            return original(rays)

        scene.get_outputs = spy
    ray_bundle, _ = pipeline.datamanager.next_train(0)
    model(ray_bundle)
    for index, cameras in seen.items():
        assert 0 <= int(cameras.min()) and int(cameras.max()) < model.scenes[index].video_cameras.num_frames


# ------------------------------------------------------------------------------------------------
# whole images: evaluation and viewer


def test_evaluation_reports_each_scene_and_the_pooled_mean(pipeline):
    metrics = pipeline.get_average_eval_image_metrics(get_std=True)
    names = pipeline.model.scene_names
    for key in ("psnr", "miou", "miou_fg"):
        per_scene = [metrics[f"{key}/{name}"] for name in names]
        counts = np.bincount(pipeline.datamanager.eval_dataset.cameras.metadata[SCENE_KEY][:, 0].numpy())
        assert metrics[key] == pytest.approx(float(np.dot(counts, per_scene) / counts.sum()), rel=1e-6)
        assert f"{key}_std" in metrics


def test_evaluations_during_training_run_on_every_scene(pipeline):
    """ns-train's periodic evaluations: a ray batch from the evaluation images and one whole image."""
    _, losses, metrics = pipeline.get_eval_loss_dict(0)
    assert set(losses) == {"rgb", "semantic"} and all(torch.isfinite(v) for v in losses.values())
    assert {f"psnr_{name}" for name in pipeline.model.scene_names} <= set(metrics)
    image_metrics, images = pipeline.get_eval_image_metrics_and_images(0)
    assert "miou" in image_metrics and "img" in images


def test_pooled_statistics_equal_those_of_all_values():
    rng = np.random.default_rng(0)
    groups = [rng.normal(size=n) for n in (3, 5, 1)]
    mean, std = pooled(
        [len(g) for g in groups], [float(g.mean()) for g in groups], [float(g.std(ddof=1)) for g in groups]
    )
    joined = np.concatenate(groups)
    assert mean == pytest.approx(joined.mean()) and std == pytest.approx(joined.std(ddof=1))
    assert math.isfinite(std)


def test_cameras_without_a_scene_render_the_scene_chosen_in_the_panel(pipeline):
    model = pipeline.model
    pipeline.eval()  # no sample jitter
    camera = pipeline.datamanager.eval_dataset.cameras[0:1]
    free = type(camera)(
        camera_to_worlds=camera.camera_to_worlds, fx=camera.fx, fy=camera.fy, cx=camera.cx, cy=camera.cy,
        width=camera.width, height=camera.height, times=camera.times,
    )  # fmt: skip
    panel = model.semantic_flow_panel
    assert panel.scene.options == model.scene_names
    panel.scene.value = model.scene_names[2]
    panel.apply()
    assert model.viewer_scene == 2
    outputs = model.get_outputs_for_camera(free)
    assert int(outputs["scene"].unique()) == 2
    alone = model.scenes[2].get_outputs_for_camera(free)
    assert torch.allclose(outputs["rgb"], alone["rgb"])
    panel.scene.value = model.scene_names[0]
    panel.apply()
    assert int(model.get_outputs_for_camera(free)["scene"].unique()) == 0
    # a dataset camera renders its own scene whatever the panel shows
    own = pipeline.datamanager.eval_dataset.cameras[-1:]
    assert int(model.get_outputs_for_camera(own)["scene"].unique()) == 2


def test_unticking_a_class_in_the_panel_removes_it_in_every_scene(pipeline):
    model = pipeline.model
    panel = model.semantic_flow_panel
    panel.class_boxes[4].value = False
    panel.apply()
    try:
        assert all(scene.edit.removed_classes == {4} for scene in model.scenes)
    finally:
        panel.class_boxes[4].value = True
        panel.apply()
    assert not any(scene.edit.removes for scene in model.scenes)
    # instances are per scene: unticking one scene's instance leaves the same id in the others
    first = panel.instance_scenes.index(1)
    panel.instance_boxes[first].value = False
    panel.apply()
    try:
        removed = [scene.edit.removed_instances for scene in model.scenes]
        assert removed[1] == {panel.instances[first].id} and not removed[0] and not removed[2]
    finally:
        panel.instance_boxes[first].value = True
        panel.apply()
