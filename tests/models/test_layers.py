"""Shared blocks checked against independent computations (torch reference modules, loops)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from workbench.models.layers import (
    AdditiveAttention,
    AttentionPooling,
    MaskedBatchNorm1d,
    MultiHeadAttention,
    SinusoidalPositionEmbedding,
    check_sequence,
    masked_max,
    masked_mean,
    masked_softmax,
    masked_std,
    run_rnn,
)

LENGTHS = torch.tensor([5, 3, 1])
MASK = torch.arange(5)[None, :] < LENGTHS[:, None]


def test_masked_pooling_matches_slices_and_empty_rows_are_zero() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, generator=g)
    x[~MASK] = 1e6  # padding that would dominate if it leaked
    for b, n in enumerate(LENGTHS.tolist()):
        real = x[b, :n]
        torch.testing.assert_close(masked_mean(x, MASK)[b], real.mean(0))
        torch.testing.assert_close(masked_max(x, MASK)[b], real.max(0).values)
        torch.testing.assert_close(masked_std(x, MASK, eps=0.0)[b], real.std(0, unbiased=False))
    empty = torch.zeros(3, 5, dtype=torch.bool)
    for f in (masked_mean, masked_max, masked_std):
        assert f(x, empty).abs().sum() == 0
    s = masked_softmax(torch.randn(3, 5, generator=g, requires_grad=True), empty)
    assert s.abs().sum() == 0
    s.sum().backward()  # finite gradients even with nothing to attend


def test_multi_head_attention_matches_torch_reference() -> None:
    torch.manual_seed(0)
    ours = MultiHeadAttention(dim=8, heads=2)
    ref = nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    q, k = torch.randn(3, 4, 8), torch.randn(3, 5, 8)
    out, w = ours(q, k, key_mask=MASK)
    ref_out, ref_w = ref(q, k, k, key_padding_mask=~MASK, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)


def test_additive_attention_matches_loop() -> None:
    torch.manual_seed(0)
    att = AdditiveAttention(query_dim=6, key_dim=4, attn_dim=3, heads=2)
    q, k = torch.randn(3, 2, 6), torch.randn(3, 5, 4)
    ctx, w = att(q, k, key_mask=MASK)
    U, V, b = att.key_proj.weight.view(2, 3, 4), att.query_proj.weight.view(2, 3, 6), att.key_proj.bias.view(2, 3)
    for bi, n in enumerate(LENGTHS.tolist()):
        for h in range(2):
            for j in range(2):
                scores = torch.stack([att.w[h] @ torch.tanh(U[h] @ k[bi, i] + V[h] @ q[bi, j] + b[h]) for i in range(n)])
                alpha = torch.softmax(scores, 0)
                torch.testing.assert_close(w[bi, h, j, :n], alpha, atol=1e-6, rtol=1e-5)
                assert w[bi, h, j, n:].abs().sum() == 0
                # head h sums the h-th slice of the values (keys here)
                torch.testing.assert_close(ctx[bi, j, 2 * h : 2 * h + 2], alpha @ k[bi, :n, 2 * h : 2 * h + 2], atol=1e-6, rtol=1e-5)


def test_attention_pooling_is_mirsamadi_softmax_of_u_dot_y() -> None:
    torch.manual_seed(0)
    pool = AttentionPooling(4)
    x = torch.randn(3, 5, 4)
    z, a = pool(x, MASK)
    u = pool.score.weight[0]
    for b, n in enumerate(LENGTHS.tolist()):
        alpha = torch.softmax(x[b, :n] @ u, 0)
        torch.testing.assert_close(a[b, :n], alpha)
        torch.testing.assert_close(z[b], alpha @ x[b, :n])


def test_masked_batch_norm_uses_real_frames_only() -> None:
    torch.manual_seed(0)
    ours, ref = MaskedBatchNorm1d(4), nn.BatchNorm1d(4)
    x = torch.randn(3, 4, 5)
    x.masked_fill_(~MASK[:, None, :], 1e3)
    y = ours(x, MASK)
    real = torch.cat([x[b, :, :n] for b, n in enumerate(LENGTHS.tolist())], dim=1)[None]  # (1, 4, 9)
    y_ref = ref(real)
    torch.testing.assert_close(torch.cat([y[b, :, :n] for b, n in enumerate(LENGTHS.tolist())], 1)[None], y_ref, atol=1e-5, rtol=1e-4)
    assert y[~MASK[:, None, :].expand_as(y)].abs().sum() == 0
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)


def test_run_rnn_equals_each_row_alone() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    lengths = torch.tensor([3, 5, 1, 3])  # unsorted, with a tie: run_rnn sorts and unsorts rows
    mask = torch.arange(5)[None, :] < lengths[:, None]
    x = torch.randn(4, 5, 3)
    out = run_rnn(lstm, x, mask)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out[b, :n], lstm(x[b : b + 1, :n])[0][0], atol=1e-6, rtol=1e-5)
        assert out[b, n:].abs().sum() == 0
    # the collate's host lengths give exactly the mask's result
    torch.testing.assert_close(run_rnn(lstm, x, mask, lengths), out, atol=0, rtol=0)


def test_check_sequence_refuses_bad_host_lengths() -> None:
    x = torch.zeros(3, 5, 2)
    with pytest.raises(ValueError, match="'m': text_lengths must be a CPU tensor of shape \\(3,\\), got \\(2,\\)"):
        check_sequence("m", "text", x, MASK, 2, lengths=LENGTHS[:2])
    with pytest.raises(ValueError, match="text_lengths exceed the padded length 5"):
        check_sequence("m", "text", x, MASK, 2, lengths=torch.tensor([6, 3, 1]))
    with pytest.raises(ValueError, match="input 'text' is all padding in batch row\\(s\\) \\[2\\]"):
        check_sequence("m", "text", x, MASK, 2, lengths=torch.tensor([5, 3, 0]))
    with pytest.raises(ValueError, match="text_lengths given without text_mask"):
        check_sequence("m", "text", x, None, 2, lengths=LENGTHS)
    assert torch.equal(check_sequence("m", "text", x, MASK, 2, lengths=LENGTHS), MASK)


def test_sinusoidal_positions_follow_vaswani() -> None:
    pe = SinusoidalPositionEmbedding(6)(torch.zeros(1, 7, 6))[0]
    pos, i = 5, 2
    assert math.isclose(pe[pos, 2 * i].item(), math.sin(pos / 10000 ** (2 * i / 6)), abs_tol=1e-6)
    assert math.isclose(pe[pos, 2 * i + 1].item(), math.cos(pos / 10000 ** (2 * i / 6)), abs_tol=1e-6)
