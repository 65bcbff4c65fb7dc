"""The semantic head: raw per-sample logits from features."""

import torch

from semflow_ns.field_components.semantic_head import SemanticHead


def test_logits_keep_the_batch_dimensions():
    head = SemanticHead(in_dim=12, num_classes=5, hidden_dim=8)
    assert head(torch.randn(3, 4, 12)).shape == (3, 4, 5)
    assert head(torch.randn(7, 12)).shape == (7, 5)


def test_logits_are_raw_scores():
    """No output activation: logits of either sign and any size, to be rendered before the softmax."""
    head = SemanticHead(in_dim=4, num_classes=3, hidden_dim=8)
    last = head.mlp.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([-7.0, 0.0, 12.5]))
    assert torch.equal(head(torch.randn(5, 4)), torch.tensor([[-7.0, 0.0, 12.5]]).expand(5, 3))


def test_three_layers_of_the_given_width():
    head = SemanticHead(in_dim=6, num_classes=2, hidden_dim=10)
    shapes = [tuple(layer.weight.shape) for layer in head.mlp.layers]
    assert shapes == [(10, 6), (10, 10), (2, 10)]


def test_gradients_reach_every_layer():
    head = SemanticHead(in_dim=6, num_classes=4, hidden_dim=16)
    features = torch.randn(64, 6, requires_grad=True)
    torch.nn.functional.cross_entropy(head(features), torch.randint(0, 4, (64,))).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    assert features.grad is not None and features.grad.abs().sum() > 0


def test_a_logit_bound_keeps_logits_within_it_and_their_order():
    """``logit_bound`` maps each logit through ``bound * tanh(logit / bound)``: within the bound however large the
    raw score, nearly unchanged where it is small, and in the same order."""
    head = SemanticHead(in_dim=4, num_classes=4, hidden_dim=8, logit_bound=10.0)
    with torch.no_grad():
        head.mlp.layers[-1].weight.zero_()
        head.mlp.layers[-1].bias.copy_(torch.tensor([-1e5, -0.5, 3.0, 1e5]))
    logits = head(torch.randn(2, 4))
    assert logits.abs().max() <= 10.0
    assert torch.allclose(logits[0, 1:3], torch.tensor([-0.5, 3.0]), atol=0.1)
    assert torch.equal(logits[0].argsort(), torch.arange(4))
