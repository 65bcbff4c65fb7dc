"""Assembly of the regularisers from the typed training outputs."""

import pytest
import torch

from semflow_ns.field_components.scene_flow import SceneFlow
from semflow_ns.model_components.loss_terms import regulariser_losses
from semflow_ns.model_components.warping import FlowRegularisers, WarpedRender, WarpedRenders
from semflow_ns.semflow_model import SemanticFlowModelConfig

NUM_RAYS, NUM_SAMPLES = 4, 5


def _warped(flow: SceneFlow, there: torch.Tensor, back: torch.Tensor) -> WarpedRender:
    ones = torch.ones(NUM_RAYS, 1)
    return WarpedRender(
        neighbour=torch.zeros(NUM_RAYS, dtype=torch.long),
        exists=ones,
        points=torch.zeros(NUM_RAYS, 3),
        flow_valid=ones,
        rgb=torch.zeros(NUM_RAYS, 3),
        label_logits=torch.zeros(NUM_RAYS, 2),
        flow_there=there,
        flow_back=back,
        flow=flow,
    )


def test_a_constant_velocity_that_its_warps_undo_costs_only_slow_flow():
    """Forward v and backward -v everywhere: no acceleration, no spatial change, and the warped samples flow
    back exactly; only the slow-flow term (|v| per direction) and the static-flow term remain."""
    velocity = torch.tensor([0.1, -0.2, 0.05])
    forward = velocity.expand(NUM_RAYS, NUM_SAMPLES, 3)
    flow = SceneFlow(forward, -forward)
    warped = WarpedRenders(torch.arange(NUM_RAYS), _warped(flow, forward, -forward), _warped(flow, -forward, forward))
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
