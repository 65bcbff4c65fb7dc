"""Loss terms: zero at their optimum, masks and ignore labels respected."""

import math

import torch

from semflow_ns.model_components import losses


def test_masked_mse_ignores_masked_rays():
    pred, target = torch.zeros(4, 3), torch.zeros(4, 3)
    pred[1] = 1.0
    mask = torch.tensor([[1.0], [0.0], [1.0], [1.0]])
    assert losses.masked_mse(pred, target, mask) == 0
    assert torch.isclose(losses.masked_mse(pred, target), torch.tensor(0.25))


def test_masked_mean_of_an_empty_mask_is_zero():
    assert losses.masked_mean(torch.ones(3, 2), torch.zeros(3, 1)) == 0


def test_semantic_cross_entropy_ignores_unlabelled_and_masked_rays():
    logits = torch.tensor([[10.0, 0.0], [0.0, 10.0], [10.0, 0.0]])
    labels = torch.tensor([[0], [1], [-1]])
    assert losses.semantic_cross_entropy(logits, labels) < 1e-3
    wrong = torch.tensor([[1], [0], [-1]])
    assert losses.semantic_cross_entropy(logits, wrong) > 9
    only_third = torch.tensor([[0.0], [0.0], [1.0]])
    assert losses.semantic_cross_entropy(logits, wrong, only_third) == 0
    uniform = torch.zeros(1, 4)
    assert torch.isclose(losses.semantic_cross_entropy(uniform, torch.tensor([[2]])), torch.tensor(math.log(4)))


def test_optical_flow_loss_is_l1_on_valid_pixels():
    induced = torch.tensor([[1.0, 2.0], [5.0, 5.0]])
    observed = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    valid = torch.tensor([[1.0], [0.0]])
    assert torch.isclose(losses.optical_flow_loss(induced, observed, valid), torch.tensor(0.5))


def test_cycle_loss_is_zero_for_exact_inverse_flows():
    there = torch.randn(4, 8, 3)
    assert losses.cycle_consistency_loss(there, -there) == 0
    assert losses.cycle_consistency_loss(there, there) > 0


def test_flow_regularisers():
    forward = torch.randn(2, 5, 3)
    assert losses.temporal_smoothness_loss(forward, -forward) == 0
    assert losses.slow_flow_loss(torch.zeros(2, 3), torch.zeros(2, 3)) == 0
    constant = torch.ones(2, 5, 3) * torch.randn(2, 1, 3)
    assert losses.spatial_smoothness_loss(constant) == 0
    assert losses.spatial_smoothness_loss(forward) > 0


def test_entropy_is_zero_at_zero_and_one():
    assert losses.entropy_loss(torch.tensor([[0.0], [1.0]])) < 1e-4
    assert losses.entropy_loss(torch.tensor([[0.5]])) > 0.3


def test_pseudo_label_cross_entropy_trains_only_the_student_on_masked_rays():
    student = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]], requires_grad=True)
    teacher = torch.tensor([[0.0, 3.0], [0.0, 3.0], [0.0, 3.0]], requires_grad=True)
    mask = torch.tensor([[1.0], [1.0], [0.0]])
    loss = losses.pseudo_label_cross_entropy(student, teacher, mask)
    loss.backward()
    assert teacher.grad is None, "the teacher's logits are a target, not trained"
    assert torch.all(student.grad[2] == 0), "masked rays give no gradient"
    # the first ray disagrees with the teacher (class 1 likely): descending the gradient raises class 1
    assert student.grad[0, 1] < 0 < student.grad[0, 0]
    # agreeing with the teacher costs less than disagreeing
    assert float(loss.detach()) > float(losses.pseudo_label_cross_entropy(teacher.detach(), teacher, mask))


def test_depth_loss_weighs_log_depth_errors_by_confidence():
    depth = torch.tensor([[2.0], [1.0], [4.0]], requires_grad=True)
    target = torch.tensor([[1.0, 1.0], [1.0, 0.0], [2.0, 0.5]])  # the second ray has no measurement
    loss = losses.depth_loss(depth, target)
    expected = (math.log(2.0) * 1.0 + math.log(2.0) * 0.5) / 1.5
    assert math.isclose(float(loss), expected, rel_tol=1e-6)
    loss.backward()
    assert depth.grad[1, 0] == 0.0 and depth.grad[0, 0] > 0 and depth.grad[2, 0] > 0
    assert float(losses.depth_loss(depth, torch.zeros(3, 2))) == 0.0  # no measurement at all
    assert float(losses.depth_loss(torch.tensor([[3.0]]), torch.tensor([[3.0, 1.0]]))) == 0.0


def test_weighted_semantic_cross_entropy_counts_a_full_weight_ray_as_a_label_and_skips_unlabelled_ones():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [3.0, -3.0]], requires_grad=True)
    labels = torch.tensor([[1], [1], [-1], [0]])
    ones = torch.ones(4, 1)
    assert torch.isclose(
        losses.semantic_cross_entropy(logits, labels, weights=ones), losses.semantic_cross_entropy(logits, labels)
    )
    halves = losses.semantic_cross_entropy(logits, labels, weights=0.5 * ones)
    assert torch.isclose(halves, 0.5 * losses.semantic_cross_entropy(logits, labels))
    only_first = losses.semantic_cross_entropy(logits, labels, weights=torch.tensor([[1.0], [0.0], [1.0], [0.0]]))
    ce_first = torch.nn.functional.cross_entropy(logits[:1], labels[0])
    assert torch.isclose(only_first, ce_first / 3), "divided by the count of labelled rays, not by the weights"
    only_first.backward()
    assert logits.grad is not None and logits.grad[1:].abs().sum() == 0
    masked = losses.semantic_cross_entropy(logits, labels, torch.tensor([[1.0], [0.0], [1.0], [0.0]]), ones)
    assert torch.isclose(masked, ce_first)


def test_token_consistency_is_low_when_each_point_keeps_its_features_and_ignores_invalid_lookups():
    """Features that stay with their point along the window score far lower than the same features shuffled among
    the points; a slot whose lookup is invalid takes no part, and no valid pair gives zero."""
    torch.manual_seed(0)
    point = torch.randn(32, 1, 8)
    tokens = point.expand(32, 3, 8) + 0.01 * torch.randn(32, 3, 8)
    valid = torch.ones(32, 3, 1)
    kept = losses.token_consistency_loss(tokens, valid, centre=1, temperature=0.1)
    shuffled = tokens.clone()
    shuffled[:, 2] = tokens[torch.randperm(32), 2]
    assert kept < 0.2 and losses.token_consistency_loss(shuffled, valid, centre=1, temperature=0.1) > 10 * kept
    valid_next_off = valid.clone()
    valid_next_off[:, 2] = 0.0
    assert math.isclose(
        float(losses.token_consistency_loss(shuffled, valid_next_off, centre=1, temperature=0.1)),
        float(losses.token_consistency_loss(tokens[:, :2], valid[:, :2], centre=1, temperature=0.1)),
        rel_tol=1e-5,
    )
    assert losses.token_consistency_loss(tokens, torch.zeros(32, 3, 1), centre=1, temperature=0.1) == 0
