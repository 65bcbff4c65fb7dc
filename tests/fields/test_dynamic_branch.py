"""The dynamic branch as one module: one semantic pass for several queries, and checkpoints of the old layout."""

import torch
from model_helpers import tiny_pipeline

from semflow_ns.fields.dynamic_branch import LEGACY_STATE_KEYS, upgrade_state_keys


def test_old_checkpoint_keys_are_renamed_under_their_prefix():
    state = {
        "scenes.1.dynamic_field.mlp.w": torch.zeros(1),
        "scenes.1.aggregator.bank.encoder.out.bias": torch.ones(1),
        "scenes.1.static_semantic_head.w": torch.ones(2),
        "scenes.1.dynamic.field.x": torch.ones(3),
        "other.semantic_head.w": torch.ones(4),
    }
    upgraded = upgrade_state_keys(state, prefix="scenes.1.")
    assert set(upgraded) == {
        "scenes.1.dynamic.field.mlp.w",
        "scenes.1.dynamic.aggregator.bank.encoder.out.bias",
        "scenes.1.static_semantic_head.w",  # not a part of the branch
        "scenes.1.dynamic.field.x",  # already new
        "other.semantic_head.w",  # outside the prefix
    }


def test_a_model_loads_a_checkpoint_saved_before_the_branch_was_one_module(tiny_scene):
    _, source = tiny_pipeline(tiny_scene)
    _, target = tiny_pipeline(tiny_scene)
    state = source.model.state_dict()
    old_layout = {}
    for key, value in state.items():
        new_prefix = next((new for new in LEGACY_STATE_KEYS.values() if key.startswith(new)), None)
        if new_prefix is not None:
            old = next(o for o, n in LEGACY_STATE_KEYS.items() if n == new_prefix)
            key = old + key[len(new_prefix) :]
        old_layout[key] = value
    assert "dynamic_field.density_mlp.layers.0.weight" in old_layout
    target.model.load_state_dict(old_layout)
    for key, value in target.model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_one_semantic_pass_for_several_queries_equals_one_pass_each(tiny_scene):
    """The model sends the query at t and the warped queries through the semantic branch together; the logits
    and their gradients are those of separate passes."""
    _, pipeline = tiny_pipeline(tiny_scene)
    model = pipeline.model
    model.train()
    branch = model.dynamic
    generator = torch.Generator().manual_seed(0)
    requests = []
    for num_rays in (5, 3):
        unit = torch.rand(num_rays, 6, 3, generator=generator) * 1.6 - 0.8
        times = torch.rand(num_rays, 1, 1, generator=generator).expand(num_rays, 6, 1)
        requests.append((branch(unit, times), torch.rand(num_rays, 6, 1, generator=generator)))
    params = [p for p in branch.parameters() if p.requires_grad]

    def values_and_grads(logits):
        grads = torch.autograd.grad(
            sum(lg.square().sum() for lg in logits), params, retain_graph=True, allow_unused=True
        )
        return [lg.detach() for lg in logits], grads

    together, grads_together = values_and_grads(branch.logits(*requests))
    apart, grads_apart = values_and_grads([branch.logits(r)[0] for r in requests])
    for a, b in zip(together, apart, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
        assert (a != 0).any(dim=-1).sum() == 3 * a.shape[0]  # semantic_samples = 3 per ray in the tiny model
    for a, b in zip(grads_together, grads_apart, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-5)
