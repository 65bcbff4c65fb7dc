"""Assembly of the warped terms and the regularisers from the typed training outputs."""

import math
from typing import Optional

import pytest
import torch
from nerfstudio.cameras.cameras import Cameras

from semflow_ns.field_components.flow_aggregation import VideoCameras
from semflow_ns.field_components.scene_flow import SceneFlow
from semflow_ns.model_components.loss_terms import (
    class_balance_weights,
    label_losses,
    regulariser_losses,
    static_flow_losses,
    warped_losses,
)
from semflow_ns.model_components.rendering import induced_flow
from semflow_ns.model_components.warping import FlowRegularisers, WarpedRender, WarpedRenders
from semflow_ns.models.model_config import SemanticFlowModelConfig

NUM_RAYS, NUM_SAMPLES = 4, 5
FRAMES = torch.ones(NUM_RAYS, dtype=torch.long)
"""Video frame of every test ray (frame 1 of 4: both neighbours exist)."""
INF = float("inf")
"""A flow tolerance that gates nothing."""


def _warped(flow: SceneFlow, there: torch.Tensor, back: torch.Tensor, **fields) -> WarpedRender:
    ones = torch.ones(NUM_RAYS, 1)
    values = dict(
        neighbour=torch.zeros(NUM_RAYS, dtype=torch.long),
        exists=ones,
        points=torch.zeros(NUM_RAYS, 3),
        flow_valid=ones,
        rgb=torch.zeros(NUM_RAYS, 3),
        label_logits=torch.zeros(NUM_RAYS, 2),
        flow_there=there,
        flow_back=back,
        flow=flow,
        neighbour_two=torch.zeros(NUM_RAYS, dtype=torch.long),
        exists_two=ones,
        points_two=torch.zeros(NUM_RAYS, 3),
        flow_valid_two=ones,
    )
    return WarpedRender(**{**values, **fields})


def _unsplit(logits: torch.Tensor) -> tuple[torch.Tensor, None]:
    """A model's ``split_logits`` for logits with classes only (no instances)."""
    return logits, None


def _propagation_losses(
    config: SemanticFlowModelConfig,
    warped: WarpedRenders,
    labels: torch.Tensor,
    dynamic_logits: torch.Tensor,
    label_distance: Optional[torch.Tensor] = None,
    flow: Optional[torch.Tensor] = None,
    flow_valid: Optional[torch.Tensor] = None,
    pixels: Optional[torch.Tensor] = None,
) -> dict[str, torch.Tensor]:
    """``warped_losses`` on a still, 4-frame video; the estimated optical flow (both directions) is ``flow`` with
    ``flow_valid`` (default: zero, all valid) and the rays' pixels ``pixels`` (default: the corner)."""
    flow = torch.zeros(NUM_RAYS, 2) if flow is None else flow
    flow_valid = torch.ones(NUM_RAYS, 1) if flow_valid is None else flow_valid
    batch = {key: flow for key in ("flow_fwd", "flow_bwd")}
    batch.update({f"{key}_valid": flow_valid for key in ("flow_fwd", "flow_bwd")})
    pixels = torch.zeros(NUM_RAYS, 2) if pixels is None else pixels
    return warped_losses(
        config,
        warped,
        _unsplit,
        _still_video(),
        torch.zeros(NUM_RAYS, 3),
        labels,
        dynamic_logits,
        pixels,
        batch,
        label_distance,
    )


def _still_video() -> VideoCameras:
    cameras = torch.eye(4)[None, :3].expand(4, 3, 4)
    return VideoCameras(Cameras(camera_to_worlds=cameras, fx=10.0, fy=10.0, cx=5.0, cy=5.0, width=10, height=10))


def test_a_constant_velocity_that_its_warps_undo_costs_only_slow_flow():
    """Forward v and backward -v everywhere: no acceleration, no spatial change, and the warped samples flow
    back exactly; only the slow-flow term (|v| per direction) and the static-flow term remain."""
    velocity = torch.tensor([0.1, -0.2, 0.05])
    forward = velocity.expand(NUM_RAYS, NUM_SAMPLES, 3)
    flow = SceneFlow(forward, -forward)
    warped = WarpedRenders(
        torch.arange(NUM_RAYS), _warped(flow, forward, -forward), _warped(flow, -forward, forward), FRAMES
    )
    weights = torch.full((NUM_RAYS, NUM_SAMPLES, 1), 0.2)  # sums to 1 along each ray
    regularisers = FlowRegularisers(flow, weights, torch.full_like(weights, 0.5))
    motion = torch.tensor([[0.0], [0.0], [1.0], [-1.0]])
    dynamic_mask = torch.tensor([[0.0], [0.5], [1.0], [0.3]])
    config = SemanticFlowModelConfig()
    loss = regulariser_losses(config, warped, regularisers, dynamic_mask, motion)
    assert list(loss) == ["cycle", "slow_flow", "temporal_smooth", "spatial_smooth", "static_flow", "blend", "sparsity"]
    assert float(loss["cycle"]) == 0.0 and float(loss["temporal_smooth"]) == 0.0
    assert float(loss["spatial_smooth"]) == 0.0
    speed = float(velocity.abs().mean())
    assert float(loss["slow_flow"]) == pytest.approx(config.slow_flow_loss_mult * 2 * speed)
    # the rendered flow magnitude |v|_1 per direction, on the two static rays
    assert float(loss["static_flow"]) == pytest.approx(config.static_flow_loss_mult * 2 * float(velocity.abs().sum()))
    # |mask - motion| on the rays whose motion is known: 0, 0.5, 0
    assert float(loss["blend"]) == pytest.approx(config.blend_loss_mult * 0.5 / 3)
    entropy = -(0.2 * torch.log(torch.tensor(0.2))) - (0.5 * torch.log(torch.tensor(0.5)))
    assert float(loss["sparsity"]) == pytest.approx(config.sparsity_loss_mult * float(entropy))


def test_label_propagation_pulls_warped_semantics_toward_frame_t_only_on_unlabelled_dynamic_rays():
    """Rays: labelled; unlabelled and dynamic; unlabelled but no dynamic content; unlabelled, dynamic, but
    its neighbouring frame lies outside the video. Only the second one propagates."""
    zeros = torch.zeros(NUM_RAYS, NUM_SAMPLES, 3)
    flow = SceneFlow(zeros, zeros)
    warped_logits = torch.zeros(NUM_RAYS, 2, requires_grad=True)
    render = _warped(
        flow,
        zeros,
        zeros,
        label_logits=warped_logits,
        flow_valid=torch.tensor([[1.0], [1.0], [0.0], [1.0]]),
        exists=torch.tensor([[1.0], [1.0], [1.0], [0.0]]),
    )
    warped = WarpedRenders(torch.arange(NUM_RAYS), render, _warped(flow, zeros, zeros), FRAMES)
    dynamic_logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [0.0, 4.0], [0.0, 4.0]], requires_grad=True)
    labels = torch.tensor([[0], [-1], [-1], [-1]])
    loss = _propagation_losses(
        SemanticFlowModelConfig(semantic_propagation_loss_mult=1.0, semantic_propagation_flow_tolerance=INF),
        warped,
        labels,
        dynamic_logits,
    )
    assert {"semantic_propagation_next", "semantic_propagation_prev"} <= set(loss)
    # uniform warped logits against the teacher of ray 1 only: cross entropy log(2)
    assert float(loss["semantic_propagation_next"]) == pytest.approx(float(torch.log(torch.tensor(2.0))))
    loss["semantic_propagation_next"].backward()
    assert dynamic_logits.grad is None or torch.all(dynamic_logits.grad == 0)
    moved = warped_logits.grad.abs().sum(-1) > 0
    assert moved.tolist() == [False, True, False, False]
    assert warped_logits.grad[1, 1] < 0, "descending the gradient raises the teacher's class"
    off = _propagation_losses(
        SemanticFlowModelConfig(semantic_propagation_loss_mult=0.0), warped, labels, dynamic_logits
    )
    assert float(off["semantic_propagation_next"]) == 0.0, "0 turns it off"


def test_label_propagation_with_a_flow_tolerance_runs_only_where_the_scene_flow_follows_the_image():
    """Four unlabelled dynamic rays whose mean warped point moves 1 px in the image; the estimated flow says 1 px
    (ray 0), 2.5 px (ray 1), 4 px (ray 2), or failed its check (ray 3). Within 2 px rays 0 and 1 propagate."""
    still = torch.zeros(NUM_RAYS, NUM_SAMPLES, 3)
    points = torch.tensor([[0.0, 0.0, -2.0]]).expand(NUM_RAYS, 3)
    pixels = torch.full((NUM_RAYS, 2), 5.0)  # the image centre, where (0, 0, -2) projects
    moved = points + torch.tensor([0.2, 0.0, 0.0])  # 10 px x 0.2 / 2 = 1 px to the right
    warped_logits = torch.zeros(NUM_RAYS, 2, requires_grad=True)
    render = _warped(SceneFlow(still, still), still, still, label_logits=warped_logits, points=moved)
    warped = WarpedRenders(torch.arange(NUM_RAYS), render, _warped(SceneFlow(still, still), still, still), FRAMES)
    assert torch.allclose(induced_flow(_still_video(), moved, render.neighbour, pixels), torch.tensor([1.0, 0.0]))
    estimate = torch.tensor([[1.0, 0.0], [2.5, 0.0], [4.0, 0.0], [1.0, 0.0]])
    estimate_valid = torch.tensor([[1.0], [1.0], [1.0], [0.0]])
    labels, teacher = torch.full((NUM_RAYS, 1), -1), torch.tensor([[0.0, 4.0]]).expand(NUM_RAYS, 2)
    for tolerance, propagating in [
        (2.0, [True, True, False, False]),
        (float("inf"), [True] * 4),
        (1.0, [True, False, False, False]),
    ]:
        config = SemanticFlowModelConfig(
            semantic_propagation_loss_mult=1.0, semantic_propagation_flow_tolerance=tolerance
        )
        warped_logits.grad = None
        loss = _propagation_losses(
            config, warped, labels, teacher, flow=estimate, flow_valid=estimate_valid, pixels=pixels
        )
        loss["semantic_propagation_next"].backward()
        assert (warped_logits.grad.abs().sum(-1) > 0).tolist() == propagating, tolerance


def test_label_propagation_with_a_confidence_gate_runs_only_where_the_teacher_is_sure():
    """Four unlabelled dynamic rays whose teachers give their top class 0.5, 0.73, 0.88 and 0.98 (the warped
    semantics, 0.95 for class 0, differ from every teacher)."""
    zeros = torch.zeros(NUM_RAYS, NUM_SAMPLES, 3)
    flow = SceneFlow(zeros, zeros)
    warped_logits = torch.tensor([[3.0, 0.0]]).repeat(NUM_RAYS, 1).requires_grad_(True)
    render = _warped(flow, zeros, zeros, label_logits=warped_logits)
    warped = WarpedRenders(torch.arange(NUM_RAYS), render, _warped(flow, zeros, zeros), FRAMES)
    teacher = torch.tensor([[0.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 4.0]])
    labels = torch.full((NUM_RAYS, 1), -1)
    for threshold, propagating in [(0.0, [True] * 4), (0.7, [False, True, True, True]), (0.9, [False] * 3 + [True])]:
        config = SemanticFlowModelConfig(
            semantic_propagation_loss_mult=1.0,
            semantic_propagation_flow_tolerance=INF,
            semantic_propagation_min_confidence=threshold,
        )
        warped_logits.grad = None
        _propagation_losses(config, warped, labels, teacher)["semantic_propagation_next"].backward()
        assert (warped_logits.grad.abs().sum(-1) > 0).tolist() == propagating, threshold


@pytest.mark.parametrize(
    ("distance", "propagates"), [([0, 1, 2, 3], True), ([3, 2, 1, 0], False), ([1, 1, 1, 1], False)]
)
def test_outward_label_propagation_teaches_only_frames_farther_from_the_labels(distance: list[int], propagates: bool):
    """A ray of frame 2 warped to frame 3 teaches frame 3 only when frame 3 is farther from every labelled frame."""
    zeros = torch.zeros(NUM_RAYS, NUM_SAMPLES, 3)
    flow = SceneFlow(zeros, zeros)
    warped_logits = torch.zeros(NUM_RAYS, 2, requires_grad=True)
    render = _warped(flow, zeros, zeros, label_logits=warped_logits, neighbour=torch.full((NUM_RAYS,), 3))
    warped = WarpedRenders(torch.arange(NUM_RAYS), render, _warped(flow, zeros, zeros), torch.full((NUM_RAYS,), 2))
    config = SemanticFlowModelConfig(semantic_propagation_loss_mult=1.0, semantic_propagation_flow_tolerance=INF)
    labels, teacher = torch.full((NUM_RAYS, 1), -1), torch.tensor([[0.0, 4.0]]).expand(NUM_RAYS, 2)
    loss = _propagation_losses(config, warped, labels, teacher, torch.tensor(distance))
    assert (float(loss["semantic_propagation_next"]) > 0) == propagates
    assert float(_propagation_losses(config, warped, labels, teacher)["semantic_propagation_next"]) > 0, "both ways"


def _carried_label_losses(hops: float, unchecked: float = 0.0, **config) -> dict[str, torch.Tensor]:
    """label_losses of 4 unlabelled rays whose carried labels (class 1, instance 2) travelled ``hops`` frames,
    ``unchecked`` of them failing the forward-backward check."""
    cfg = SemanticFlowModelConfig(**config)
    logits = torch.zeros(4, 2 + 3)  # 2 classes, 3 instance ids: uniform
    outputs = {f"label_logits{s}": logits for s in ("", "_dynamic", "_static")}
    carried = {
        "flow_labels": torch.ones(4, 1, dtype=torch.long),
        "flow_label_hops": torch.full((4, 1), hops),
        "flow_label_unchecked": torch.full((4, 1), unchecked),
        "flow_instances": torch.full((4, 1), 2, dtype=torch.long),
    }
    unlabelled = torch.full((4, 1), -1, dtype=torch.long)
    return label_losses(cfg, lambda x: (x[:, :2], x[:, 2:]), outputs, unlabelled, unlabelled, torch.ones(4, 1), carried)


def test_carried_labels_train_every_render_and_halve_their_weight_every_half_life():
    near, far = _carried_label_losses(1.0), _carried_label_losses(4.0)
    cfg = SemanticFlowModelConfig()
    assert near["semantic"] == 0, "no ray has a label"
    for suffix, mult in (("", cfg.semantic_loss_mult), ("_dynamic", cfg.semantic_dynamic_loss_mult)):
        expected = mult * cfg.flow_label_loss_mult * 2 ** (-1 / cfg.flow_label_half_life) * math.log(2)
        assert near[f"semantic_flow_labels{suffix}"].item() == pytest.approx(expected)
        ratio = far[f"semantic_flow_labels{suffix}"] / near[f"semantic_flow_labels{suffix}"]
        assert ratio.item() == pytest.approx(2 ** (-3 / cfg.flow_label_half_life))
        assert near[f"instance_flow_labels{suffix}"].item() == pytest.approx(
            cfg.instance_loss_mult * 2 ** (-1 / cfg.flow_label_half_life) * math.log(3)
        )
    assert "semantic_flow_labels_static" in near and "instance_flow_labels_static" not in near
    off = _carried_label_losses(1.0, flow_label_loss_mult=0.0)
    assert not any("flow_labels" in key for key in off)


def test_each_unchecked_hop_of_a_carried_label_counts_as_more_travel():
    checked, unchecked = _carried_label_losses(2.0), _carried_label_losses(2.0, unchecked=1.0)
    cfg = SemanticFlowModelConfig()
    ratio = unchecked["semantic_flow_labels"] / checked["semantic_flow_labels"]
    assert ratio.item() == pytest.approx(2 ** (-cfg.flow_label_unchecked_hops / cfg.flow_label_half_life))
    dropped = _carried_label_losses(2.0, unchecked=1.0, flow_label_unchecked_hops=math.inf)
    assert dropped["semantic_flow_labels"].item() == 0.0
    kept = _carried_label_losses(2.0, flow_label_unchecked_hops=math.inf)  # checked labels keep their weight
    assert kept["semantic_flow_labels"].item() == pytest.approx(checked["semantic_flow_labels"].item())


def test_class_balance_weighs_classes_by_a_power_of_their_share_with_mean_one_over_the_rays_counted():
    counts = torch.tensor([90.0, 10.0, 0.0])
    weights = class_balance_weights(counts, 1.0)  # every class counted weighs as much in total
    assert (counts * weights)[0].item() == pytest.approx((counts * weights)[1].item())
    assert (counts * weights).sum().item() == pytest.approx(counts.sum().item())
    assert weights[2] == weights.max(), "a class not counted yet weighs as much as the rarest"
    half = class_balance_weights(counts, 0.5)
    assert (half[1] / half[0]).item() == pytest.approx(3.0)  # (0.9 / 0.1) ** 0.5
    assert torch.equal(class_balance_weights(torch.zeros(3), 0.5), torch.ones(3))


def test_class_weights_scale_each_labelled_ray_and_each_carried_label_by_its_class():
    cfg = SemanticFlowModelConfig()
    logits = torch.zeros(NUM_RAYS, 2)
    outputs = {f"label_logits{s}": logits for s in ("", "_dynamic", "_static")}
    labels = torch.tensor([[0], [0], [1], [-1]])
    carried = {
        "flow_labels": torch.tensor([[-1], [-1], [-1], [1]]),
        "flow_label_hops": torch.tensor([[0.0], [0.0], [0.0], [1.0]]),
    }
    static = torch.ones(NUM_RAYS, 1)
    plain = label_losses(cfg, lambda x: (x, None), outputs, labels, None, static, carried)
    weights = torch.tensor([0.5, 2.0])
    balanced = label_losses(cfg, lambda x: (x, None), outputs, labels, None, static, carried, class_weights=weights)
    assert (balanced["semantic_flow_labels"] / plain["semantic_flow_labels"]).item() == pytest.approx(2.0)
    labels = torch.tensor([[0], [0], [0], [1]])
    plain = label_losses(cfg, lambda x: (x, None), outputs, labels, None, static)
    balanced = label_losses(cfg, lambda x: (x, None), outputs, labels, None, static, class_weights=weights)
    assert (balanced["semantic"] / plain["semantic"]).item() == pytest.approx((3 * 0.5 + 2.0) / 4)


@pytest.mark.parametrize("from_moving", [False, True])
def test_labels_of_moving_pixels_teach_the_static_semantic_head_only_when_asked(from_moving: bool):
    """Two labelled rays, the first moving: the static head's logits get the full render's semantic gradient of
    the static ray only (default) or of both (the paper's loss); the static weights and the dynamic branch get
    theirs on both rays, and the loss value is the same either way."""
    cfg = SemanticFlowModelConfig(static_semantics_from_moving=from_moving)
    dynamic_part = torch.tensor([[0.3, -0.2], [0.1, 0.4]], requires_grad=True)
    static_weight = torch.tensor([[0.4], [0.7]], requires_grad=True)
    static_head = torch.tensor([[0.5, 0.1], [-0.3, 0.2]], requires_grad=True)
    static_part = static_weight * static_head
    outputs = {
        "label_logits": dynamic_part + static_part,
        "label_logits_static_part": static_part,
        "label_logits_static_fixed_head": static_weight * static_head.detach(),
    }
    outputs |= {f"label_logits{s}": torch.zeros(2, 2) for s in ("_dynamic", "_static")}
    labels = torch.tensor([[1], [0]])
    moving = torch.tensor([[1.0], [0.0]])
    out = label_losses(cfg, lambda x: (x, None), outputs, labels, None, 1.0 - moving, None, moving)
    expected = cfg.semantic_loss_mult * torch.nn.functional.cross_entropy(dynamic_part + static_part, labels[:, 0])
    assert out["semantic"].item() == pytest.approx(expected.item())
    out["semantic"].backward()
    assert dynamic_part.grad is not None and static_weight.grad is not None and static_head.grad is not None
    assert torch.all(dynamic_part.grad != 0) and torch.all(static_weight.grad != 0)
    assert torch.all(static_head.grad[1] != 0)
    assert torch.all(static_head.grad[0] != 0) if from_moving else torch.all(static_head.grad[0] == 0)


def test_static_flow_loss_is_zero_at_the_true_depth_and_pulls_a_wrong_depth_toward_it():
    """A camera sliding along x past a wall 2 units away: the optical flow of a still point is the camera's
    parallax. Rays: static at the true depth; static 20 % too near; moving (masked); static without a surface
    (masked). Only the second costs, and descending its gradient moves its point away from the camera."""
    step = 0.1
    poses = torch.eye(4)[None, :3].repeat(4, 1, 1)
    poses[:, 0, 3] = step * torch.arange(4)  # frame i at x = 0.1 i, looking down -z
    video = VideoCameras(Cameras(camera_to_worlds=poses, fx=20.0, fy=20.0, cx=8.0, cy=8.0, width=16, height=16))
    centre = torch.tensor([0.1, 0.0, 0.0])  # frame 1
    direction = torch.tensor([0.0, 0.0, -1.0])
    depths = torch.tensor([2.0, 1.6, 1.6, 1.6])
    points = (centre + depths[:, None] * direction).requires_grad_(True)
    pixels = torch.full((NUM_RAYS, 2), 8.0)
    # true flow of a point 2 units away: the camera moves +0.1 in x, the point -fx * 0.1 / 2 = -1 px
    true_flow = {"flow_fwd": torch.tensor([-1.0, 0.0]), "flow_bwd": torch.tensor([1.0, 0.0])}
    batch = {key: value.expand(NUM_RAYS, 2) for key, value in true_flow.items()}
    batch.update({f"{key}_valid": torch.ones(NUM_RAYS, 1) for key in true_flow})
    zeros = torch.zeros(NUM_RAYS, NUM_SAMPLES, 3)
    flow = SceneFlow(zeros, zeros)
    warped = WarpedRenders(
        torch.arange(NUM_RAYS),
        _warped(flow, zeros, zeros, neighbour=torch.full((NUM_RAYS,), 2)),
        _warped(flow, zeros, zeros, neighbour=torch.full((NUM_RAYS,), 0)),
        FRAMES,
    )
    surface = (points, torch.tensor([[1.0], [1.0], [1.0], [0.0]]))
    static_rays = torch.tensor([[1.0], [1.0], [0.0], [1.0]])
    config = SemanticFlowModelConfig(static_optical_flow_loss_mult=0.02)
    loss = static_flow_losses(config, warped, video, surface, static_rays, pixels, batch)
    assert sorted(loss) == ["static_optical_flow_next", "static_optical_flow_prev"]
    # ray 1 sees a parallax of 20 * 0.1 / 1.6 = 1.25 px: 0.25 px too much in x, over the 2 unmasked rays x 2 axes
    expected = config.static_optical_flow_loss_mult * 0.25 / 4
    assert float(loss["static_optical_flow_next"]) == pytest.approx(expected, rel=1e-4)
    assert float(loss["static_optical_flow_prev"]) == pytest.approx(expected, rel=1e-4)
    sum(loss.values()).backward()
    grad = points.grad
    assert torch.all(grad[[0, 2, 3]] == 0), "true depth, moving and surface-less rays take no gradient"
    assert float((-grad[1]) @ direction) > 0, "descending the gradient moves the too-near point farther away"


def test_two_frame_flow_loss_compares_the_second_step_with_the_chained_flow():
    """A still camera and a point 2 units ahead of frame 1 that moves +0.1 in x per frame: seen from frame 3 it
    lies fx * 0.2 / 2 = 2 px to the right. Ray 0 predicts that exactly, ray 1 0.1 too short in x (1 px); ray 2
    has no chained flow and ray 3 too few dynamic weights (both off by 1 px too). Only ray 1 costs, and its
    gradient lengthens the second step. Without the chained flow in the batch, or at weight 0, no term."""
    poses = torch.eye(4)[None, :3].repeat(4, 1, 1)
    video = VideoCameras(Cameras(camera_to_worlds=poses, fx=20.0, fy=20.0, cx=8.0, cy=8.0, width=16, height=16))
    points_two = torch.tensor([[0.2, 0.0, -2.0], [0.1, 0.0, -2.0], [0.1, 0.0, -2.0], [0.1, 0.0, -2.0]])
    points_two.requires_grad_(True)
    pixels = torch.full((NUM_RAYS, 2), 8.0)
    batch = {key: torch.zeros(NUM_RAYS, 2) for key in ("flow_fwd", "flow_bwd", "flow_bwd2")}
    batch["flow_fwd2"] = torch.tensor([[2.0, 0.0]]).expand(NUM_RAYS, 2)
    batch.update({f"{key}_valid": torch.ones(NUM_RAYS, 1) for key in ("flow_fwd", "flow_bwd", "flow_bwd2")})
    batch["flow_fwd2_valid"] = torch.tensor([[1.0], [1.0], [0.0], [1.0]])
    zeros = torch.zeros(NUM_RAYS, NUM_SAMPLES, 3)
    flow = SceneFlow(zeros, zeros)
    ones = torch.ones(NUM_RAYS, 1)
    two = dict(
        neighbour_two=torch.full((NUM_RAYS,), 3), exists_two=ones, flow_valid_two=torch.tensor([[1.0]] * 3 + [[0.0]])
    )
    warped = WarpedRenders(
        torch.arange(NUM_RAYS),
        _warped(flow, zeros, zeros, neighbour=torch.full((NUM_RAYS,), 2), points_two=points_two, **two),
        _warped(flow, zeros, zeros, **{**two, "exists_two": torch.zeros(NUM_RAYS, 1)}),
        FRAMES,
    )
    image, labels = torch.zeros(NUM_RAYS, 3), torch.zeros(NUM_RAYS, 1, dtype=torch.long)

    def run(config: SemanticFlowModelConfig, batch: dict) -> dict[str, torch.Tensor]:
        return warped_losses(config, warped, _unsplit, video, image, labels, torch.zeros(NUM_RAYS, 2), pixels, batch)

    config = SemanticFlowModelConfig(two_frame_flow_loss_mult=0.02)
    loss = run(config, batch)
    # 1 px off in x on ray 1, over the 2 counted rays x 2 axes; two frames back does not exist
    assert float(loss["optical_flow_two_next"]) == pytest.approx(0.02 * 1.0 / 4, rel=1e-4)
    assert float(loss["optical_flow_two_prev"]) == 0.0
    loss["optical_flow_two_next"].backward()
    assert points_two.grad is not None
    assert torch.all(points_two.grad[[0, 2, 3]] == 0) and float(points_two.grad[1, 0]) < 0, "pulls ray 1 on in x"
    assert "optical_flow_two_next" not in run(SemanticFlowModelConfig(), batch)
    one_frame_only = {k: v for k, v in batch.items() if "2" not in k}
    assert "optical_flow_two_next" not in run(config, one_frame_only)
