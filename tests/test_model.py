"""The assembled model: parameter groups, outputs, gradients, ablation switches."""

import copy
import dataclasses
import hashlib
import json

import pytest
import torch
from model_helpers import shrink_model, tiny_pipeline

from semflow_ns.configs.method_configs import semantic_flow_config
from semflow_ns.model_components.dynamic_query import take_samples
from semflow_ns.model_components.warping import FlowRegularisers, WarpedRenders

DISPLAY_OUTPUTS = {
    "rgb": 3,
    "depth": 1,
    "accumulation": 1,
    "semantics_colormap": 3,
    "rgb_static": 3,
    "rgb_dynamic": 3,
    "dynamic_mask": 1,
    "optical_flow": 3,
    "instances": 3,
}


@pytest.fixture(scope="module")
def shared(tiny_scene):
    """A tiny pipeline in evaluation mode, shared by the tests of this module: read-only. Tests that train,
    switch modes or change the config build their own pipeline or work on a deep copy of the model; the
    teardown checks that nobody changed the shared one."""
    config, pipeline = tiny_pipeline(tiny_scene)
    pipeline.eval()
    before = _snapshot(pipeline.model)
    yield config, pipeline
    assert _snapshot(pipeline.model) == before, "a test changed the shared pipeline"


def _snapshot(model) -> tuple:
    """What a test could change on a model: its mode, config, scene edit, parameters and buffers."""
    state = tuple(
        (name, hashlib.sha256(value.detach().cpu().contiguous().numpy().tobytes()).hexdigest())
        for name, value in model.state_dict().items()
    )
    return model.training, repr(model.config), repr(model.edit), state


def train_step(pipeline, optimizer):
    _, loss_dict, _ = pipeline.get_train_loss_dict(0)
    optimizer.zero_grad()
    sum(loss_dict.values()).backward()
    optimizer.step()
    return loss_dict


def test_every_parameter_is_in_exactly_one_group(shared):
    config, pipeline = shared
    groups = pipeline.model.get_param_groups()
    # the tiny scene has exact poses: no pose refinement, so no camera_opt group (tests/test_pose_refinement.py)
    assert set(groups) == set(config.optimizers) - {"camera_opt"}
    seen = [id(p) for params in groups.values() for p in params]
    assert len(seen) == len(set(seen)), "a parameter is in two groups"
    model_params = {id(p) for p in pipeline.model.parameters() if p.numel() > 0}
    assert model_params == set(seen), "a parameter is in no group (it would never be trained)"
    attention_params = {id(p) for p in pipeline.model.dynamic.attention.parameters()}
    assert attention_params <= {id(p) for p in groups["semantics"]}


def test_training_losses_are_finite_and_gradients_reach_every_parameter(tiny_scene):
    _, pipeline = tiny_pipeline(tiny_scene)
    model = pipeline.model
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train_step(pipeline, optimizer)  # moves the zero-initialised flow head off zero
    loss_dict = train_step(pipeline, optimizer)
    expected = {
        "rgb",
        "semantic",
        "semantic_consistency_next",
        "semantic_consistency_prev",
        "semantic_propagation_next",
        "optical_flow_next",
        "cycle",
        "static_flow",
        "rgb_warped_prev",
        "blend",
        "sparsity",
        "interlevel",
    }
    assert expected <= set(loss_dict)
    assert all(torch.isfinite(v) for v in loss_dict.values())
    missing = [n for n, p in model.named_parameters() if p.numel() and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"no gradient reaches {missing}"


def optional_terms(tiny_scene, prefix: str, **weight: float):
    """Checks that a tiny model's first training losses have no terms named ``prefix``_next / _prev by default
    and finite, positive ones with ``weight`` set; returns that model after back-propagating their sum."""
    _, pipeline = tiny_pipeline(tiny_scene)
    _, loss_dict, _ = pipeline.get_train_loss_dict(0)
    assert not any(key.startswith(prefix) for key in loss_dict)
    _, pipeline = tiny_pipeline(tiny_scene, **weight)
    _, loss_dict, _ = pipeline.get_train_loss_dict(0)
    terms = [loss_dict[f"{prefix}_next"], loss_dict[f"{prefix}_prev"]]
    assert all(torch.isfinite(t) for t in terms) and sum(terms) > 0
    sum(terms).backward()
    return pipeline.model


def test_static_optical_flow_loss_is_off_by_default_and_when_on_trains_the_static_field(tiny_scene):
    """The static surface's flow terms appear only when their weight is set, and their gradient alone reaches
    the static field (the density that places its surface), not the dynamic one."""
    model = optional_terms(tiny_scene, "static_optical_flow", static_optical_flow_loss_mult=0.02)
    static = [p.grad for p in model.static_field.encoding.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in static)
    dynamic = [p.grad for p in model.dynamic.parameters()]
    assert all(g is None or not g.abs().sum() > 0 for g in dynamic)


def test_training_outputs_carry_the_warped_terms_as_typed_values_ddp_can_see(tiny_scene):
    """The warped renders and the regularisers' inputs travel in two typed outputs, found by DDP's output
    traversal (``find_unused_parameters``); every other output of a training pass is a tensor or one of
    nerfstudio's proposal lists."""
    from torch.nn.parallel.distributed import _find_tensors

    _, pipeline = tiny_pipeline(tiny_scene)
    outputs, _, _ = pipeline.get_train_loss_dict(0)
    warped, regularisers = outputs["warped"], outputs["flow_regularisers"]
    assert isinstance(warped, WarpedRenders) and isinstance(regularisers, FlowRegularisers)
    found = {id(t) for t in _find_tensors(outputs)}
    for _, render in warped.directions():
        assert {id(render.rgb), id(render.label_logits), id(render.flow_back), id(render.flow.forward)} <= found
    assert {id(regularisers.flow.backward), id(regularisers.weights_dynamic), id(regularisers.blend)} <= found
    num_rays = outputs["rgb"].shape[0]
    assert warped.next.points.shape == (num_rays, 3) and warped.prev.exists.shape == (num_rays, 1)
    assert warped.next.rgb.shape == (len(warped.rays), 3)
    others = set(outputs) - {"warped", "flow_regularisers", "weights_list", "ray_samples_list"}
    assert all(isinstance(outputs[k], torch.Tensor) for k in others)


def test_evaluation_outputs_are_tensors_only(shared):
    """Renderers (nerfstudio concatenates per-chunk outputs) only ever see tensors: the warped terms exist
    only in training passes."""
    _, pipeline = shared
    camera, _ = pipeline.datamanager.next_eval_image(0)
    with torch.no_grad():
        outputs = pipeline.model(camera.generate_rays(camera_indices=0).flatten())
    assert all(isinstance(v, torch.Tensor) for v in outputs.values()), sorted(outputs)


def test_the_viewer_panel_is_on_the_built_model(shared):
    from semflow_ns.viewer.panel import SemanticFlowPanel

    _, pipeline = shared
    assert isinstance(pipeline.model.semantic_flow_panel, SemanticFlowPanel)


def test_outputs_for_a_camera_are_per_pixel_images(shared):
    _, pipeline = shared
    model = pipeline.model
    camera, batch = pipeline.datamanager.next_eval_image(0)
    outputs = model.get_outputs_for_camera(camera)
    height, width = batch["image"].shape[:2]
    for name, channels in DISPLAY_OUTPUTS.items():
        assert outputs[name].shape == (height, width, channels), name
    assert outputs["semantics"].shape == (height, width, len(model.class_names))
    assert not any(k.startswith("expected_points") for k in outputs)
    metrics, images = model.get_image_metrics_and_images(outputs, batch)
    assert {"psnr", "ssim", "miou", "total_accuracy", "class_accuracy", "miou_fg", "j", "f", "jf"} <= set(metrics)
    assert {"img", "semantics", "depth"} <= set(images)


@pytest.mark.parametrize("render_samples", [8, None])
def test_renders_use_render_samples_and_training_num_samples(tiny_scene, render_samples):
    """Training samples each ray `num_samples` times; renders (eval mode) `render_samples` times, or
    `num_samples` when it is None."""
    _, pipeline = tiny_pipeline(tiny_scene, render_samples=render_samples)
    model = pipeline.model
    seen = []
    original = model.static_field.forward
    model.static_field.forward = lambda coords, *a, **k: seen.append(coords.shape[-2]) or original(coords, *a, **k)
    model.train()
    pipeline.get_train_loss_dict(0)
    assert set(seen) == {model.config.num_samples}
    seen.clear()
    model.eval()
    camera, _ = pipeline.datamanager.next_eval_image(0)
    model.get_outputs_for_camera(camera)
    assert seen and set(seen) == {render_samples or model.config.num_samples}


def test_semantics_colormap_uses_the_class_colours(shared):
    _, pipeline = shared
    model = pipeline.model
    camera, _ = pipeline.datamanager.next_eval_image(0)
    outputs = model.get_outputs_for_camera(camera)
    expected = model.class_colors[outputs["semantics"].argmax(-1)]
    assert torch.equal(outputs["semantics_colormap"], expected)


@pytest.mark.parametrize(
    "overrides",
    [{"semantic_source": "point"}, {"detach_semantic_weights": True}, {"semantic_field_features": False}],
)
def test_ablation_switches_train(tiny_scene, overrides):
    _, pipeline = tiny_pipeline(tiny_scene, **overrides)
    model = pipeline.model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_dict = train_step(pipeline, optimizer)
    assert all(torch.isfinite(v) for v in loss_dict.values())
    if overrides.get("semantic_source") == "point":
        assert model.dynamic.attention is None and model.dynamic.aggregator is None
    head_in = model.dynamic.semantic_head.mlp.layers[0].in_features
    if overrides.get("semantic_field_features") is False:  # the head sees the flow features only
        assert head_in == model.dynamic.attention.get_out_dim()
    elif model.dynamic.attention is not None:
        assert head_in == model.dynamic.attention.get_out_dim() + model.config.dynamic_field.feature_dim


def test_attention_switch_off_still_trains(tiny_scene):
    config = semantic_flow_config().pipeline.model.attention
    config.enabled = False
    _, pipeline = tiny_pipeline(tiny_scene, attention=config)
    loss_dict = train_step(pipeline, torch.optim.Adam(pipeline.model.parameters(), lr=1e-2))
    assert all(torch.isfinite(v) for v in loss_dict.values())


def _rays_at(model, unit_point: torch.Tensor, num_rays: int, num_samples: int):
    """RaySamples of ``num_rays`` rays whose samples all sit at one normalised point, at time 0.5."""
    from nerfstudio.cameras.rays import Frustums, RaySamples

    ones = torch.ones(num_rays, num_samples, 1)
    frustums = Frustums(
        origins=torch.zeros(num_rays, num_samples, 3),
        directions=torch.tensor([0.0, 0.0, -1.0]).expand(num_rays, num_samples, 3),
        starts=ones,
        ends=ones * 1.1,
        pixel_area=ones,
    )
    ray_samples = RaySamples(frustums=frustums, deltas=ones * 0.1)
    unit = unit_point.expand(num_rays, num_samples, 3).clone()
    times = ones * 0.5
    return ray_samples, unit, times, model.dynamic(unit, times)


def test_induced_flow_target_is_normalised_by_the_accumulated_weight(tiny_scene):
    """Where the dynamic weights sum to less than 1 (sky, unbounded scenes), the flow target is the weighted
    mean of the warped points, not a point pulled toward the world origin; rays with almost no weight are
    left out of the optical-flow loss."""
    _, pipeline = tiny_pipeline(tiny_scene)
    model = pipeline.model
    model.train()
    with torch.no_grad():
        model.dynamic.scene_flow.head.weight.normal_(std=0.3)  # a non-zero flow, so the warped point is not the origin
        model.dynamic.scene_flow.head.bias.normal_(std=0.3)
        num_samples = 6
        ray_samples, unit, times, query = _rays_at(model, torch.tensor([0.2, -0.1, 0.3]), 3, num_samples)
        weights = torch.zeros(3, num_samples, 1)
        weights[0, 2] = 0.5  # half-transparent ray
        weights[1, 1], weights[1, 4] = 0.25, 0.25
        weights[2, 3] = 1e-6  # (almost) empty ray
        warped = model.dynamic.warped_queries(ray_samples, times, query)
        (warped_logits,) = model.dynamic.logits((warped.query, warped.weights))
        renders = model.dynamic.warped_renders(warped, query, weights, warped_logits)
        for (name, render), direction in zip(renders.directions(), (1, -1), strict=True):
            warped = model.normalizer.to_world(query.trajectory[..., model.dynamic.half_window + direction, :])
            assert torch.allclose(render.points[0], warped[0, 2], atol=1e-5), name
            assert torch.allclose(render.points[1], (warped[1, 1] + warped[1, 4]) / 2, atol=1e-5), name
            assert render.flow_valid[:, 0].tolist() == [1.0, 1.0, 0.0], name


@pytest.mark.parametrize("detach", [False, True])
def test_semantic_gradients_reach_the_scene_flow_only_without_detached_trajectory_features(tiny_scene, detach):
    """``detach_trajectory_features`` stops the semantic branch's gradient at the trajectory (as the official
    code detaches the sampled features); without it the semantic loss also moves the scene flow."""
    _, pipeline = tiny_pipeline(tiny_scene, detach_trajectory_features=detach)
    model = pipeline.model
    model.train()
    with torch.no_grad():
        model.dynamic.scene_flow.head.weight.normal_(std=0.3)
    _, unit, times, query = _rays_at(model, torch.tensor([0.1, 0.2, -0.1]), 4, 5)
    logits = model.dynamic.head(take_samples(query, torch.arange(query.frames.numel())))
    logits.square().sum().backward()
    flow_grad = sum(float(p.grad.abs().sum()) for p in model.dynamic.scene_flow.parameters() if p.grad is not None)
    assert (flow_grad == 0.0) == detach, flow_grad
    encoder_grad = sum(float(p.grad.abs().sum()) for p in model.dynamic.aggregator.parameters() if p.grad is not None)
    assert encoder_grad > 0, "the frame encoder still learns from the semantic loss"


@pytest.mark.parametrize("from_near_plane", [True, False])
def test_renders_sample_from_the_training_near_plane(scene_copy, from_near_plane):
    """Evaluation and viewer renders start their samples at the scene's near plane, as training does
    (nerfstudio's NearFarCollider moves it to the camera outside training unless told otherwise: on real videos
    that space is never trained and fills with floaters). ``render_from_near_plane False`` keeps nerfstudio's
    behaviour."""
    transforms = json.loads((scene_copy / "transforms.json").read_text())
    transforms["near"] = 1.5
    (scene_copy / "transforms.json").write_text(json.dumps(transforms))
    _, pipeline = tiny_pipeline(scene_copy, render_from_near_plane=from_near_plane)
    model = pipeline.model
    model.eval()
    camera, _ = pipeline.datamanager.next_eval_image(0)
    rays = camera.generate_rays(camera_indices=0)
    assert torch.all(model.collider(rays).nears == (1.5 if from_near_plane else 0.0))
    if from_near_plane:
        with torch.no_grad():
            depth = model.get_outputs_for_camera(camera)["depth"]
        assert bool((depth >= 1.5 - 1e-4).all())


def test_removing_a_class_no_sample_predicts_changes_nothing(tiny_scene):
    """Removal touches only samples predicted as the removed class. Dynamic samples too transparent to be
    seen get all-zero logits, whose argmax is class 0: removing class 0 must still leave them alone."""
    _, pipeline = tiny_pipeline(tiny_scene)
    model = pipeline.model
    model.eval()
    with torch.no_grad():
        for head in (model.dynamic.semantic_head, model.static_semantic_head):
            last = head.mlp.layers[-1]
            last.weight.zero_()
            last.bias.zero_()
            last.bias[1] = 5.0  # every visible sample predicts class 1
        model.dynamic.field.density_mlp.layers[-1].bias[0] = -30.0  # no dynamic sample is visible
    camera, _ = pipeline.datamanager.next_eval_image(0)
    before = model.get_outputs_for_camera(camera)
    model.edit.removed_classes = {0}
    after = model.get_outputs_for_camera(camera)
    model.edit.removed_classes = set()
    for name in ("rgb", "accumulation", "dynamic_mask", "semantics"):
        assert torch.allclose(before[name], after[name]), name
    model.edit.removed_classes = {1}
    removed = model.get_outputs_for_camera(camera)
    model.edit.removed_classes = set()
    assert removed["accumulation"].max() < 1e-3, "removing the class every sample predicts removes everything"


@pytest.mark.parametrize("bound", [10.0, 0.0])
def test_a_faint_static_share_cannot_outvote_an_opaque_moving_object(tiny_scene, bound):
    """A static head whose labels held one class is driven to huge margins (measured: 10^5). With the default
    bound on its logits, an opaque dynamic object of another class still wins where a faint static share is left
    (0.5 % of the weight); unbounded (``static-logit-bound 0``), the static share outvotes it."""
    _, pipeline = tiny_pipeline(tiny_scene, static_logit_bound=bound)
    model = pipeline.model
    model.eval()
    with torch.no_grad():
        for head, kept, margin in ((model.dynamic.semantic_head, 2, 8.0), (model.static_semantic_head, 1, 1e5)):
            last = head.mlp.layers[-1]
            last.weight.zero_()
            last.bias.zero_()
            last.bias[kept] = margin
        model.dynamic.field.density_mlp.layers[-1].bias[0] = 30.0  # an opaque object on every ray
        model.dynamic.field.blend_head.weight.zero_()
        model.dynamic.field.blend_head.bias.fill_(5.3)  # blend sigmoid(5.3) = 0.995: a faint static share
    camera, _ = pipeline.datamanager.next_eval_image(0)
    with torch.no_grad():
        predicted = model.get_outputs_for_camera(camera)["semantics"].argmax(-1)
    assert bool((predicted == (2 if bound else 1)).all())


def test_removing_the_dynamic_class_reveals_the_static_scene_behind_it(tiny_scene):
    """An opaque dynamic object (every dynamic sample fully blended in and predicting class 2) in front of a
    static scene predicting class 1: removing class 2 leaves exactly the static field's render, which lies
    behind the object's surface, and removing class 1 then as well leaves nothing."""
    _, pipeline = tiny_pipeline(tiny_scene)
    model = pipeline.model
    model.eval()
    with torch.no_grad():
        for head, kept in ((model.dynamic.semantic_head, 2), (model.static_semantic_head, 1)):
            last = head.mlp.layers[-1]
            last.weight.zero_()
            last.bias.zero_()
            last.bias[kept] = 5.0
        model.dynamic.field.density_mlp.layers[-1].bias[0] = 30.0  # the object fills every ray from the start
        model.dynamic.field.blend_head.weight.zero_()
        model.dynamic.field.blend_head.bias.fill_(30.0)  # and hides the static scene where it is
        model.static_field.density_mlp.layers[-1].bias[0] = 2.0  # a half-transparent static scene
    camera, _ = pipeline.datamanager.next_eval_image(0)
    before = model.get_outputs_for_camera(camera)
    assert (before["dynamic_mask"] > 0.99).all() and (before["semantics"].argmax(-1) == 2).all()
    model.edit.removed_classes = {2}
    after = model.get_outputs_for_camera(camera)
    model.edit.removed_classes = {1, 2}
    nothing = model.get_outputs_for_camera(camera)
    model.edit.removed_classes = set()
    assert (after["semantics"].argmax(-1) == 1).all()
    assert after["dynamic_mask"].max() < 1e-3
    assert torch.allclose(
        after["rgb"], after["rgb_static"] + model.background() * (1 - after["accumulation"]), atol=1e-4
    )
    assert (after["depth"] > before["depth"] + 1e-3).all(), "the static scene shows from behind the object"
    assert nothing["accumulation"].max() < 1e-3


@pytest.mark.parametrize("background", ["black", "white"])
def test_rgba_targets_are_composited_the_same_way_for_losses_and_metrics(shared, background):
    """An RGBA image is compared, in the loss and in every metric, with its colour composited on the model's
    background colour (what the model renders where it is transparent)."""
    _, pipeline = shared
    model = copy.deepcopy(pipeline.model)  # the config change stays on the copy
    model.config.background_color = background
    height, width = 16, 16
    rgba = torch.rand(height, width, 4)
    rgba[0, 0, 3], rgba[0, 1, 3] = 0.0, 1.0
    bg = 1.0 if background == "white" else 0.0
    target = rgba[..., :3] * rgba[..., 3:] + bg * (1.0 - rgba[..., 3:])
    labels = torch.zeros(height, width, 1, dtype=torch.long)
    logits = torch.zeros(height, width, len(model.class_names))
    outputs = {"rgb": target, "semantics": logits, "semantics_colormap": torch.zeros(height, width, 3)}
    outputs |= {"depth": torch.ones(height, width, 1), "accumulation": torch.ones(height, width, 1)}
    flat = {k: v.reshape(-1, v.shape[-1]) for k, v in outputs.items()}
    batch = {"image": rgba.reshape(-1, 4), "semantics": labels.reshape(-1, 1)}
    assert model.get_loss_dict(flat, batch)["rgb"] < 1e-10
    assert model.get_metrics_dict(flat, batch)["psnr"] > 60
    metrics, _ = model.get_image_metrics_and_images(outputs, {"image": rgba, "semantics": labels})
    assert metrics["psnr"] > 60


LEARNING_STEPS = 60
"""Training steps of the learning test (64 rays each); ~0.3 training-frame mIoU here against ~0.07 by chance."""


@pytest.mark.slow
def test_a_short_training_learns_the_semantics_of_the_training_frames(tiny_scene):
    """A silent break anywhere on the semantic path (heads, rendering of logits, labels, losses) leaves the
    training-frame mIoU at chance level; a short training must lift it far above that."""
    from semflow_ns.model_components.metrics import semantic_metrics

    _, pipeline = tiny_pipeline(tiny_scene)
    model = pipeline.model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(LEARNING_STEPS):
        train_step(pipeline, optimizer)
    model.eval()
    dataset = pipeline.datamanager.train_dataset
    learned, chance = [], []
    for index in range(len(dataset)):
        labels = dataset[index]["semantics"][..., 0]
        pred = model.get_outputs_for_camera(dataset.cameras[index : index + 1])["semantics"].argmax(dim=-1)
        learned.append(semantic_metrics(pred, labels, len(model.class_names))["miou"])
        majority = torch.full_like(labels, int(torch.bincount(labels[labels >= 0]).argmax()))
        chance.append(semantic_metrics(majority, labels, len(model.class_names))["miou"])
    learned_miou, chance_miou = sum(learned) / len(learned), sum(chance) / len(chance)
    assert learned_miou > max(0.2, 3.0 * chance_miou), (learned_miou, chance_miou)


def test_outward_label_propagation_reaches_the_loss_with_the_frames_distances(tiny_scene, monkeypatch):
    """With labels on frames 0-3 of 8 and outward propagation on, the model hands the warped losses each frame's
    distance to the nearest labelled frame; by default it hands none (propagation both ways)."""
    import semflow_ns.models.semflow_model as semflow_model

    original, seen = semflow_model.warped_losses, []

    def spy(*args):
        seen.append(args[9] if len(args) > 9 else None)
        return original(*args)

    monkeypatch.setattr(semflow_model, "warped_losses", spy)
    for outward in (True, False):
        config = semantic_flow_config()
        config.pipeline.datamanager.dataparser.data = tiny_scene
        config.pipeline.datamanager.dataparser.label_frames = "0-3"
        config.pipeline.datamanager.train_num_rays_per_batch = 64
        shrink_model(config.pipeline.model)
        config.pipeline.model.semantic_propagation_loss_mult = 1.0
        config.pipeline.model.semantic_propagation_outward = outward
        pipeline = config.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)
        pipeline.train()
        pipeline.get_train_loss_dict(0)
    assert seen[0] is not None and seen[0].tolist() == [0, 0, 0, 0, 1, 2, 3, 4]
    assert seen[1] is None


def test_labels_carried_along_the_optical_flow_reach_the_loss_of_a_label_subset(tiny_scene):
    """Frames 0-3 of 8 labelled: batches carry the flow-propagated labels of the others and the loss trains on
    them (with gradients); every frame labelled: there is nothing to carry."""
    losses_of = {}
    for label_frames in ("0-3", "all"):
        config = semantic_flow_config()
        config.pipeline.datamanager.dataparser.data = tiny_scene
        config.pipeline.datamanager.dataparser.label_frames = label_frames
        config.pipeline.datamanager.train_num_rays_per_batch = 256
        shrink_model(config.pipeline.model)
        pipeline = config.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)
        pipeline.train()
        _, losses_of[label_frames], _ = pipeline.get_train_loss_dict(0)
    subset = losses_of["0-3"]
    for key in ("semantic_flow_labels", "semantic_flow_labels_dynamic", "instance_flow_labels"):
        assert subset[key].requires_grad and subset[key].item() > 0, key
    assert not any("flow_labels" in key for key in losses_of["all"])


@pytest.mark.parametrize(
    ("label_frames", "propagation", "legacy_propagation", "field_features"),
    [("all", 0.0, 0.0, True), ("first:50%", 0.0, 0.3, False), ("first:1", 0.0, 0.3, False)],
)
def test_the_default_model_follows_which_frames_have_labels(
    tiny_scene, label_frames, propagation, legacy_propagation, field_features
):
    """With labels on some frames only, the default model has a head on the flow features only and holds the
    static head fixed on moving pixels; with every frame labelled the static head learns from every pixel (the
    paper's loss). Label propagation is off; configs saved when it was left to the data (None) resolve as they
    were trained: on with labels on some frames only, with neither gate."""
    config = semantic_flow_config()
    config.pipeline.datamanager.dataparser.data = tiny_scene
    config.pipeline.datamanager.dataparser.label_frames = label_frames
    shrink_model(config.pipeline.model)
    model = config.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0).model
    assert model.config.semantic_propagation_loss_mult == propagation
    assert model.config.semantic_propagation_flow_tolerance == float("inf")
    legacy = copy.deepcopy(config)
    legacy.pipeline.model.semantic_propagation_loss_mult = None  # a config saved before 2026-12-06
    del legacy.pipeline.model.semantic_propagation_flow_tolerance  # ... which had no gates: the class defaults
    del legacy.pipeline.model.semantic_propagation_max_labelled_fraction  # fill in
    legacy_model = legacy.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0).model
    assert legacy_model.config.semantic_propagation_loss_mult == legacy_propagation
    assert legacy_model.config.semantic_propagation_flow_tolerance == float("inf")
    assert legacy_model.config.semantic_propagation_max_labelled_fraction == 1.0
    assert model.config.semantic_propagation_outward is True
    assert model.config.semantic_field_features is field_features
    assert config.pipeline.model.static_semantics_from_moving is None  # left to the data
    assert model.config.static_semantics_from_moving is field_features  # the same rule: False only when partial
    assert config.pipeline.model.token_consistency_loss_mult is None  # left to the data: on only when partial
    assert model.config.token_consistency_loss_mult == (0.0 if field_features else 0.01)
    head_in = model.dynamic.semantic_head.mlp.layers[0].in_features
    flow_only = model.dynamic.attention.get_out_dim()
    assert head_in == flow_only + (model.config.dynamic_field.feature_dim if field_features else 0)
    explicit = copy.deepcopy(config)
    explicit.pipeline.model.semantic_propagation_loss_mult = 0.05  # an explicit value is kept wherever there is a
    # frame to propagate into
    explicit_model = explicit.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0).model
    assert explicit_model.config.semantic_propagation_loss_mult == (0.05 if legacy_propagation else 0.0)


def test_renders_predict_semantics_only_where_the_render_shows_them(shared):
    """Without a removal edit, a render runs the dynamic semantic head only on the samples whose compositing
    weight is above MIN_OPACITY; the semantics it renders are those of running it on every sample any render
    could show (what a removal edit needs), up to those samples' negligible share."""
    _, pipeline = shared
    model = copy.deepcopy(pipeline.model)
    with torch.no_grad():
        model.dynamic.field.density_mlp.layers[-1].bias[0] = 1.5  # a dynamic field that is seen
    camera, _ = pipeline.datamanager.next_eval_image(0)
    shown = model.get_outputs_for_camera(camera)
    model.edit.removed_classes = {len(model.class_names) + 5}  # removes nothing, but selects like a removal
    every = model.get_outputs_for_camera(camera)
    assert torch.equal(shown["rgb"], every["rgb"])
    assert torch.allclose(shown["semantics"], every["semantics"], atol=5e-3)
    assert (shown["semantics"].argmax(-1) == every["semantics"].argmax(-1)).float().mean() > 0.99


def test_depth_supervision_reaches_the_fields_where_the_scene_measures_depth(scene_copy):
    """A scene with SfM points per frame trains with the depth loss (rays drawn on the points too); the loss
    pulls the rendered z-depth and moves the static field's density."""
    import numpy as np

    from semflow_ns.data.format import SCENE_FILE, load_scene, write_sparse_depth

    scene = load_scene(scene_copy)
    meta = json.loads((scene_copy / SCENE_FILE).read_text())
    rng = np.random.default_rng(0)
    for i, frame in enumerate(scene.frames):
        intr = frame.intrinsics
        xy = rng.uniform([0, 0], [intr.w, intr.h], size=(40, 2))
        write_sparse_depth(scene_copy / f"sd{i}.npz", xy, np.full(40, 1.7), np.full(40, 0.3))
        meta["frames"][i]["sparse_depth_path"] = f"sd{i}.npz"
    (scene_copy / SCENE_FILE).write_text(json.dumps(meta))
    _, pipeline = tiny_pipeline(scene_copy)
    pipeline.train()
    _, loss_dict, _ = pipeline.get_train_loss_dict(step=0)
    assert "depth" in loss_dict and float(loss_dict["depth"]) > 0
    loss_dict["depth"].backward()
    grad = pipeline.model.static_field.encoding.grids[0].plane_coefs[0].grad
    assert grad is not None and grad.abs().sum() > 0
    _, plain = tiny_pipeline(scene_copy, depth_loss_mult=0.0)
    plain.train()
    assert float(plain.get_train_loss_dict(step=0)[1]["depth"]) == 0.0


def test_the_step_with_kept_neighbour_features_computes_the_reference_losses(tiny_scene):
    """Kept (detached) features of neighbour frames are the speed path; ``neighbour_refresh_steps`` 0 the
    reference path that encodes every frame with gradients. While the kept features are current, both give the
    same losses, and the frames of the batch's rays train the encoder on both."""
    torch.manual_seed(0)
    _, fast = tiny_pipeline(tiny_scene)
    _, reference = tiny_pipeline(tiny_scene)
    reference.model.dynamic.aggregator.bank.refresh_steps = 0
    reference.model.load_state_dict(fast.model.state_dict())
    ray_bundle, batch = fast.datamanager.next_train(0)
    losses = []
    for pipeline in (fast, reference):
        model = pipeline.model
        model.train()
        torch.manual_seed(1)  # the same proposal and semantic samples
        outputs = model(ray_bundle)
        loss_dict = model.get_loss_dict(outputs, batch, model.get_metrics_dict(outputs, batch))
        sum(loss_dict.values()).backward()
        encoder_grad = sum(p.grad.abs().sum() for p in model.dynamic.aggregator.bank.encoder.parameters())
        losses.append(({k: float(v) for k, v in loss_dict.items()}, float(encoder_grad)))
    (fast_losses, fast_grad), (reference_losses, reference_grad) = losses
    assert fast_losses.keys() == reference_losses.keys()
    for key, value in fast_losses.items():
        assert value == pytest.approx(reference_losses[key], rel=1e-4, abs=1e-6), key
    assert fast_grad > 0 and reference_grad > 0


@pytest.mark.parametrize(
    "grid_space, unbounded, one_centre, uses_view",
    [
        ("box", True, True, False),
        ("auto", False, True, False),
        ("auto", True, False, False),
        ("auto", True, True, True),
        ("view", False, False, True),
    ],
)
def test_the_grid_space_puts_every_field_on_the_box_or_the_view_grid(
    scene_copy, grid_space, unbounded, one_centre, uses_view
):
    """auto: the view grid for unbounded scenes whose cameras share one centre (rotation-only poses), the box
    otherwise; with the view grid every field (proposal, static, dynamic, scene flow) looks its grids up
    through it, and training reaches every parameter."""
    transforms = json.loads((scene_copy / "transforms.json").read_text())
    transforms["unbounded"] = unbounded
    if one_centre:  # every camera moved to the first one's centre, turned as before
        centre = [row[3] for row in transforms["frames"][0]["transform_matrix"][:3]]
        for frame in transforms["frames"]:
            for row, value in zip(frame["transform_matrix"][:3], centre, strict=True):
                row[3] = value
    (scene_copy / "transforms.json").write_text(json.dumps(transforms))
    _, pipeline = tiny_pipeline(scene_copy, grid_space=grid_space)
    model = pipeline.model
    assert (model.normalizer.view is not None) == uses_view
    if not uses_view:
        return
    assert model.dynamic.scene_flow.grid_coords == model.normalizer.flow_coords
    calls = []
    original = model.normalizer.view.forward
    model.normalizer.view.forward = lambda world: calls.append(world.shape) or original(world)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train_step(pipeline, optimizer)
    calls.clear()
    loss_dict = train_step(pipeline, optimizer)
    assert all(torch.isfinite(v) for v in loss_dict.values())
    num_rays = pipeline.datamanager.config.train_num_rays_per_batch
    sizes = sorted({torch.Size(shape[:-1]).numel() for shape in calls})
    assert num_rays * model.config.num_proposal_samples in sizes  # the proposal field
    assert num_rays * model.config.num_samples in sizes  # static and dynamic fields, scene flow
    missing = [n for n, p in model.named_parameters() if p.numel() and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"no gradient reaches {missing}"


def test_two_frame_flow_loss_is_off_by_default_and_when_on_trains_the_scene_flow(tiny_scene):
    """The two-frame flow terms appear only when their weight is set; their gradient reaches the scene flow (both
    steps of the warped samples) and the dynamic density (the weights of the expected point)."""
    model = optional_terms(tiny_scene, "optical_flow_two", two_frame_flow_loss_mult=0.02)
    for module in (model.dynamic.scene_flow, model.dynamic.field):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_token_consistency_trains_the_frame_encoder_by_default_only_with_partial_labels(tiny_scene):
    """The token-consistency term appears by default only when some frames have no labels (or when its weight is
    set), and its gradient alone reaches the frame encoder (the features it compares), not the semantic head."""
    _, pipeline = tiny_pipeline(tiny_scene)  # every frame labelled
    _, loss_dict, _ = pipeline.get_train_loss_dict(0)
    assert "token_consistency" not in loss_dict
    _, pipeline = tiny_pipeline(tiny_scene, token_consistency_loss_mult=0.02)
    _, loss_dict, _ = pipeline.get_train_loss_dict(0)
    assert "token_consistency" in loss_dict  # set: on with every frame labelled too
    _, pipeline = tiny_pipeline(tiny_scene, dataparser={"label_frames": "first:1"})
    _, loss_dict, _ = pipeline.get_train_loss_dict(0)
    term = loss_dict["token_consistency"]
    assert torch.isfinite(term) and term > 0
    term.backward()
    branch = pipeline.model.dynamic
    encoder = [p.grad for p in branch.aggregator.bank.encoder.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in encoder)
    assert all(p.grad is None or not p.grad.abs().sum() > 0 for p in branch.semantic_head.parameters())


def test_field_scales_follow_the_frame_size_unless_given() -> None:
    from semflow_ns.models.model_config import resolve_field_resolutions

    default = semantic_flow_config().pipeline.model
    assert default.static_field.planes.resolutions == () and default.dynamic_field.planes.resolutions == ()
    demo = resolve_field_resolutions(default, 128)
    clip = resolve_field_resolutions(default, 480)
    panorama = resolve_field_resolutions(default, 480, view_grid=True)
    assert panorama.static_field.planes.resolutions == panorama.dynamic_field.planes.resolutions == (64, 128)
    for field_name in ("static_field", "dynamic_field"):
        assert getattr(demo, field_name).planes.resolutions == (64, 128)
        assert getattr(clip, field_name).planes.resolutions == (64, 128, 256)
        assert getattr(clip, field_name).planes.num_components == 16  # the rest of the config is kept
    assert default.static_field.planes.resolutions == ()  # the given config is not changed
    # resolutions given (on the command line, or in a config saved before they were automatic) are kept
    given = resolve_field_resolutions(clip, 128)
    assert given.static_field.planes.resolutions == (64, 128, 256)


@pytest.mark.parametrize(
    ("labelled", "propagation"),
    [
        ([True] + [False] * 9, 0.3),  # the first frame only: DAVIS's protocol
        ([True] + [False] * 4 + [True] + [False] * 4, 0.3),  # two keyframes of ten: at the limit
        ([True] * 3 + [False] * 7, 0.0),  # three of ten: above a fifth
        ([True] * 5 + [False] * 5, 0.0),  # tracking-50
        ([True] * 10, 0.0),  # every frame labelled: nothing to propagate into
        ([False] * 10, 0.0),  # no frame labelled: nothing to propagate from
        (None, 0.3),  # not known: the config's value
    ],
)
def test_label_propagation_can_run_only_where_labels_are_sparse(labelled, propagation) -> None:
    from semflow_ns.models.model_config import resolve_label_defaults

    default = semantic_flow_config().pipeline.model
    sparse = dataclasses.replace(
        default, semantic_propagation_loss_mult=0.3, semantic_propagation_max_labelled_fraction=0.2
    )
    assert resolve_label_defaults(sparse, labelled).semantic_propagation_loss_mult == propagation
    assert resolve_label_defaults(default, labelled).semantic_propagation_loss_mult == 0.0  # off by default
    anywhere = dataclasses.replace(sparse, semantic_propagation_max_labelled_fraction=1.0)
    partial = labelled is not None and any(labelled) and not all(labelled)
    assert resolve_label_defaults(anywhere, labelled).semantic_propagation_loss_mult == (
        0.3 if partial or labelled is None else 0.0
    )


def test_model_sizes_empty_field_scales_from_its_frames(tiny_scene, monkeypatch) -> None:
    from semflow_ns.fields.encoding import PlaneEncodingConfig
    from semflow_ns.models import model_config

    def build(small_frames: bool, grid_space: str = "auto"):
        config = semantic_flow_config()
        config.pipeline.datamanager.dataparser.data = tiny_scene
        model = config.pipeline.model
        shrink_model(model)
        model.grid_space = grid_space
        for field_config in (model.static_field, model.dynamic_field):
            field_config.planes = PlaneEncodingConfig(resolutions=(), num_components=2)
        # the tiny scene's frames are 32 px wide: move the threshold to just below or above them
        monkeypatch.setattr(model_config, "FINE_SCALE_MIN_PIXELS", 32 if small_frames else 31)
        return config.pipeline.setup(device="cpu", test_mode="val", world_size=1, local_rank=0).model

    cameras = build(True).kwargs["metadata"]["semflow_video"].cameras
    assert int(max(cameras.width.max(), cameras.height.max())) == 32
    for small_frames, grid_space, expected in (
        (True, "auto", [64, 128]),
        (False, "auto", [64, 128, 256]),  # the tiny scene's grids live in its box
        (False, "view", [64, 128]),
    ):
        model = build(small_frames, grid_space)
        for module in (model.static_field, model.dynamic.field):
            assert [grid.resolution[0] for grid in module.encoding.grids] == expected
        assert list(model.config.static_field.planes.resolutions) == expected


def test_class_balance_counts_the_labels_trained_on_and_reweighs_only_the_semantic_terms(tiny_scene):
    """With ``semantic_class_balance`` the model counts the classes of the labelled rays of each training step and
    weighs the semantic terms by them; without it nothing is counted. Same outputs and batch, both settings."""
    torch.manual_seed(0)
    _, pipeline = tiny_pipeline(tiny_scene)
    model = pipeline.model
    model.train()
    ray_bundle, batch = pipeline.datamanager.next_train(0)
    outputs = model(ray_bundle)
    metrics = model.get_metrics_dict(outputs, batch)
    plain = model.get_loss_dict(outputs, batch, metrics)
    assert model.label_counts.sum() == 0
    model.config.semantic_class_balance = 1.0
    balanced = model.get_loss_dict(outputs, batch, metrics)
    labels = batch["semantics"][batch["semantics"] >= 0]
    assert torch.equal(model.label_counts, torch.bincount(labels, minlength=model.num_classes).float())
    assert (model.label_counts > 0).sum() >= 2, "the tiny scene's batch holds several classes"
    assert torch.isfinite(balanced["semantic"]) and float(balanced["semantic"]) != float(plain["semantic"])
    for key in ("rgb", "rgb_dynamic", "interlevel"):
        assert float(balanced[key]) == float(plain[key]), key


def test_the_windows_of_the_first_and_last_frames_are_mirrored_only_there(tiny_scene):
    """The semantic branch hands the attention which trajectory frames exist: at the video's ends the missing
    tokens of renders are mirrored (``attention.mirror_at_video_ends``), so the head's input there changes with
    the option and nowhere else, and not in training (the mirroring itself:
    ``tests/field_components/test_flow_attention.py``). An end frame whose labels were trained on keeps the empty
    tokens it was trained with."""
    _, pipeline = tiny_pipeline(tiny_scene)
    model = pipeline.model
    model.eval()
    branch = model.dynamic
    video = model.kwargs["metadata"]["semflow_video"]
    assert branch.labelled_frames.tolist() == (video.labelled or [False] * len(video))
    branch.labelled_frames[:] = False  # as if no frame's labels were trained on
    timeline_times = branch.timeline.times
    unit = torch.tensor([0.1, 0.2, -0.1]).expand(3, 4, 3).clone()
    times = torch.stack([timeline_times[0], timeline_times[len(timeline_times) // 2], timeline_times[-1]])
    query = branch(unit, times.view(3, 1, 1).expand(3, 4, 1))
    samples = take_samples(query, torch.arange(query.frames.numel()))
    with torch.no_grad():
        mirrored = branch.semantic_input(samples).view(3, 4, -1)
        model.train()
        in_training = branch.semantic_input(samples).view(3, 4, -1)
        model.eval()
        branch.attention.config.mirror_at_video_ends = False
        empty = branch.semantic_input(samples).view(3, 4, -1)
    assert torch.equal(mirrored[1], empty[1])
    assert not torch.allclose(mirrored[0], empty[0]) and not torch.allclose(mirrored[2], empty[2])
    assert torch.allclose(in_training, empty, atol=1e-6)
    branch.attention.config.mirror_at_video_ends = True
    branch.labelled_frames[0] = True  # the first frame's labels trained on (DAVIS's protocol), the last not
    with torch.no_grad():
        first_labelled = branch.semantic_input(samples).view(3, 4, -1)
    assert torch.equal(first_labelled[0], empty[0]) and torch.equal(first_labelled[2], mirrored[2])
