"""Flow attention over trajectory tokens."""

import torch

from semflow_ns.field_components.flow_attention import FlowAttention, FlowAttentionConfig, mirror_missing


def make(enabled: bool = True) -> FlowAttention:
    return FlowAttention(FlowAttentionConfig(enabled=enabled, d_model=8, num_heads=2, head_dim=4), 5, window=3)


def reference_mix(attn: FlowAttention, tokens: torch.Tensor) -> torch.Tensor:
    """Textbook multi-head attention written token by token."""
    heads, dim = attn.config.num_heads, attn.config.head_dim
    q, k, v = attn.qkv(tokens).split(heads * dim, dim=-1)
    out = []
    for h in range(heads):
        sl = slice(h * dim, (h + 1) * dim)
        scores = q[..., sl] @ k[..., sl].transpose(-1, -2) / dim**0.5
        out.append(torch.softmax(scores, dim=-1) @ v[..., sl])
    return torch.cat(out, dim=-1)


def inputs(*bs):
    return torch.randn(*bs, 3, 5), torch.ones(*bs, 3, 1), torch.randn(*bs, 3, 4) * 0.1


def test_mix_matches_textbook_attention():
    attn = make()
    tokens = torch.randn(4, 6, 3, 8)
    assert torch.allclose(attn.mix(tokens), reference_mix(attn, tokens), atol=1e-6)


def test_output_shape_is_flattened_tokens():
    attn = make()
    out = attn(*inputs(2, 7))
    assert out.shape == (2, 7, attn.get_out_dim()) == (2, 7, 24)


def test_permuting_tokens_permutes_the_output():
    """Self-attention is permutation-equivariant: order only matters through the displacement encoding."""
    attn = make()
    feats, valid, disp = inputs(5)
    perm = torch.tensor([2, 0, 1])
    out = attn(feats, valid, disp).reshape(5, 3, 8)
    out_perm = attn(feats[:, perm], valid[:, perm], disp[:, perm]).reshape(5, 3, 8)
    assert torch.allclose(out[:, perm], out_perm, atol=1e-6)


def test_tokens_are_mixed_only_when_enabled():
    """With attention, changing one token changes the others' outputs; without, it does not."""
    for enabled, mixes in ((True, True), (False, False)):
        attn = make(enabled)
        feats, valid, disp = inputs(3)
        before = attn(feats, valid, disp).reshape(3, 3, 8)
        feats2 = feats.clone()
        feats2[:, 0] += 1.0
        after = attn(feats2, valid, disp).reshape(3, 3, 8)
        assert torch.allclose(before[:, 1:], after[:, 1:]) != mixes


def test_every_parameter_gets_a_gradient():
    attn = make()
    attn(*inputs(4)).square().sum().backward()
    for name, param in attn.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_tokens_beyond_the_video_take_the_opposite_slot_with_negated_displacement():
    feats, valid, disp = inputs(4)
    exists = torch.tensor([[True, True, True], [True, True, False], [False, True, True], [True, True, True]])
    mirrored_feats, mirrored_valid, mirrored_disp = mirror_missing(feats, valid * 0.5, disp, exists)
    assert torch.equal(mirrored_feats[[0, 3]], feats[[0, 3]])  # whole windows untouched
    assert torch.equal(mirrored_feats[1, 2], feats[1, 0]) and torch.equal(mirrored_disp[1, 2], -disp[1, 0])
    assert torch.equal(mirrored_feats[2, 0], feats[2, 2]) and torch.equal(mirrored_disp[2, 0], -disp[2, 2])
    assert torch.equal(mirrored_feats[1, :2], feats[1, :2]) and torch.equal(mirrored_disp[2, 1:], disp[2, 1:])
    assert torch.equal(mirrored_valid, valid * 0.5)


def test_the_last_frame_sees_the_tokens_of_an_inner_frame_moving_steadily():
    """A point moving steadily: at the last frame, the mirrored window gives the head the tokens of a frame inside
    the video whose next frame exists (same features at the opposite slot, same displacements); left empty (the
    option off, or in training), it does not."""
    feats = torch.randn(1, 3, 5)
    valid = torch.ones(1, 3, 1)
    step = torch.tensor([0.1, 0.0, -0.05])
    disp = torch.cat([torch.stack([-step, torch.zeros(3), step]), torch.tensor([[-1.0], [0.0], [1.0]])], dim=-1)[None]
    inner_feats = torch.stack([feats[0, 0], feats[0, 1], feats[0, 0]])[None]
    for mirror, training in ((True, False), (False, False), (True, True)):
        attn = FlowAttention(FlowAttentionConfig(d_model=8, num_heads=2, head_dim=4, mirror_at_video_ends=mirror), 5, 3)
        attn.train(training)
        last = torch.tensor([[True, True, False]])
        empty = feats.clone()
        empty[:, 2] = 0.0
        at_last = attn(empty, valid * last[..., None], disp, last)
        inner = attn(inner_feats, valid, disp, torch.ones(1, 3, dtype=torch.bool))
        assert torch.allclose(at_last, inner, atol=1e-6) == (mirror and not training)
