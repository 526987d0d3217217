"""Blocks shared by several models (and only those): masked pooling and softmax, additive and
multi-head attention with padding masks, statistics and attention pooling, position
embeddings, a length-aware RNN runner and input checks.

Conventions: masks are bool, True on real positions, and every sequence is left-aligned
(real positions first, padding after). A row with no real position is defined to give
zeros (pooled vectors, attention weights and attended outputs), never NaN; models that
cannot use such a row reject it earlier with :func:`check_sequence`.

>>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
>>> m = torch.tensor([[True, True, False]])
>>> masked_mean(x, m), masked_max(x, m)
(tensor([[2.]]), tensor([[3.]]))
>>> masked_softmax(torch.zeros(1, 3), m)
tensor([[0.5000, 0.5000, 0.0000]])
>>> masked_softmax(torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.bool))
tensor([[0., 0., 0.]])
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = [
    "AdditiveAttention",
    "AttentionPooling",
    "LearnedPositionEmbedding",
    "MaskedBatchNorm1d",
    "MultiHeadAttention",
    "SinusoidalPositionEmbedding",
    "StatisticsPooling",
    "check_sequence",
    "host_lengths",
    "lengths_from_mask",
    "masked_max",
    "masked_mean",
    "masked_softmax",
    "masked_std",
    "run_rnn",
]


# ----------------------------------------------------------------------------- masked ops


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None, dim: int = -1) -> torch.Tensor:
    """Softmax of ``scores`` over ``dim`` with masked-out positions at exactly 0.

    ``mask`` broadcasts to ``scores`` (True = may receive weight). Rows with no True
    position return all zeros (not NaN, not uniform).
    """
    if mask is None:
        return torch.softmax(scores, dim=dim)
    mask = mask.expand_as(scores)
    # A large finite negative instead of -inf: an all-masked row then softmaxes to uniform
    # (finite gradients) and the final multiply sets it to zero.
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=dim) * mask.to(scores.dtype)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over time of ``x`` (B, T, D) using ``mask`` (B, T) -> (B, D); zeros for empty rows."""
    if mask is None:
        return x.mean(dim=1)
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)


def masked_max(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Max over time of ``x`` (B, T, D) using ``mask`` (B, T) -> (B, D); zeros for empty rows."""
    if mask is None:
        return x.max(dim=1).values
    m = mask.unsqueeze(-1)
    out = x.masked_fill(~m, torch.finfo(x.dtype).min).max(dim=1).values
    return torch.where(m.any(dim=1), out, torch.zeros_like(out))


def masked_std(x: torch.Tensor, mask: torch.Tensor | None, eps: float = 1e-5) -> torch.Tensor:
    """Population standard deviation over time of ``x`` (B, T, D) -> (B, D).

    ``sqrt(var + eps)`` keeps the gradient finite when all frames are equal; empty rows
    give zeros.
    """
    mean = masked_mean(x, mask)
    sq = (x - mean.unsqueeze(1)) ** 2
    std = torch.sqrt(masked_mean(sq, mask) + eps)
    if mask is None:
        return std
    return std * mask.any(dim=1, keepdim=True).to(x.dtype)


class StatisticsPooling(nn.Module):
    """Concatenated masked mean and std over time: (B, T, D), (B, T) -> (B, 2D)."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat([masked_mean(x, mask), masked_std(x, mask)], dim=-1)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """Batch norm over channels of x (B, C, T) whose statistics use real frames only.

    Plain BatchNorm1d would count padded frames, so the batch statistics (and the training
    output) would change with the amount of padding. forward(x (B, C, T), mask (B, T) or
    None) -> (B, C, T) with padded frames set to 0; (B, C) input without mask behaves as
    ``nn.BatchNorm1d``. In eval mode the running statistics are used, as usual.

    >>> bn = MaskedBatchNorm1d(2)
    >>> x = torch.tensor([[[1.0, 3.0, 99.0], [2.0, 2.0, -99.0]]])
    >>> bn(x, torch.tensor([[True, True, False]]))[0, 0].round(decimals=4).tolist()
    [-1.0, 1.0, 0.0]
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if mask is None or x.dim() == 2:
            return super().forward(x)
        m = mask[:, None, :].to(x.dtype)
        if self.training:
            n = m.sum().clamp(min=1.0)
            mean = (x * m).sum(dim=(0, 2)) / n
            var = (((x - mean[None, :, None]) ** 2) * m).sum(dim=(0, 2)) / n
            if self.track_running_stats and self.running_mean is not None:
                with torch.no_grad():
                    # running variance is unbiased, as in nn.BatchNorm1d
                    unbiased = var * n / (n - 1).clamp(min=1.0)
                    self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
                    self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)
                    self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None] + self.bias[None, :, None]
        return y * m


# ----------------------------------------------------------------------------- attention


class AttentionPooling(nn.Module):
    """Attention pooling of Mirsamadi et al. (ICASSP 2017, eq. 4-5): ``alpha_t =
    softmax_t(u^T y_t)``, ``z = sum_t alpha_t y_t``.

    ``hidden=0`` is the paper's form (a single learned vector u); ``hidden>0`` scores
    with ``w^T tanh(W y_t + b)`` instead (a common variant).

    forward(x (B, T, D), mask (B, T)) -> (pooled (B, D), weights (B, T)); weights sum to one
    over real frames and are 0 on padding.

    >>> pool = AttentionPooling(4)
    >>> z, a = pool(torch.randn(2, 5, 4), torch.tensor([[1, 1, 1, 0, 0], [1] * 5]).bool())
    >>> z.shape, a.shape, a[0, 3:].tolist()
    (torch.Size([2, 4]), torch.Size([2, 5]), [0.0, 0.0])
    """

    def __init__(self, dim: int, hidden: int = 0) -> None:
        super().__init__()
        if hidden > 0:
            self.score: nn.Module = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=False))
        else:
            self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        weights = masked_softmax(self.score(x).squeeze(-1), mask, dim=-1)
        return torch.einsum("bt,btd->bd", weights, x), weights


class AdditiveAttention(nn.Module):
    """Multi-head additive (Bahdanau) attention of queries over keys.

    Head h scores ``a[h, q, k] = w_h^T tanh(U_h key_k + V_h query_q + b_h)`` with
    ``attn_dim`` weights per head, normalises over real keys and sums the h-th slice of
    the values (``value_dim / heads`` dims each); the slices are concatenated, so the
    output has ``value_dim`` dims whatever the number of heads.

    forward(query (B, Q, Dq), key (B, K, Dk), value (B, K, Dv) or None (= key),
    key_mask (B, K)) -> (context (B, Q, Dv), weights (B, heads, Q, K)).

    Memory is O(B * Q * K * heads * attn_dim): the tanh is taken for every (query, key)
    pair, as in the original formulation.

    >>> att = AdditiveAttention(query_dim=6, key_dim=8, attn_dim=3, heads=2)
    >>> ctx, w = att(torch.randn(2, 4, 6), torch.randn(2, 7, 8), key_mask=torch.ones(2, 7).bool())
    >>> ctx.shape, w.shape, bool(torch.allclose(w.sum(-1), torch.ones(2, 2, 4)))
    (torch.Size([2, 4, 8]), torch.Size([2, 2, 4, 7]), True)
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int, heads: int = 1, value_dim: int | None = None) -> None:
        super().__init__()
        value_dim = key_dim if value_dim is None else value_dim
        if value_dim % heads:
            raise ValueError(f"AdditiveAttention: value_dim {value_dim} not divisible by heads {heads}")
        self.heads, self.attn_dim = heads, attn_dim
        self.key_proj = nn.Linear(key_dim, heads * attn_dim, bias=True)  # U_h and b_h
        self.query_proj = nn.Linear(query_dim, heads * attn_dim, bias=False)  # V_h
        self.w = nn.Parameter(torch.empty(heads, attn_dim))
        nn.init.normal_(self.w, std=1.0 / math.sqrt(attn_dim))

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        value = key if value is None else value
        b, q, _ = query.shape
        k = key.shape[1]
        h, d = self.heads, self.attn_dim
        pk = self.key_proj(key).view(b, 1, k, h, d)
        pq = self.query_proj(query).view(b, q, 1, h, d)
        scores = torch.einsum("bqkhd,hd->bhqk", torch.tanh(pk + pq), self.w)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        weights = masked_softmax(scores, mask, dim=-1)
        v = value.view(b, k, h, -1).transpose(1, 2)  # (B, H, K, Dv/H)
        context = (weights @ v).transpose(1, 2).reshape(b, q, -1)
        return context, weights


class MultiHeadAttention(nn.Module):
    """Scaled dot-product multi-head attention with key padding masks and per-head weights.

    Written out (rather than wrapping ``nn.MultiheadAttention``) so that keys that are all
    padding give zero weights and zero context instead of NaN.

    forward(query (B, Q, D), key (B, K, Dk), value (B, K, Dk) or None (= key),
    key_mask (B, K), query_mask (B, Q) optional: zeroes the output at padded queries)
    -> (out (B, Q, D), weights (B, heads, Q, K)); weights are taken before dropout.

    ``scale`` divides each head's scores ``Q_h K_h^T`` by ``sqrt(d)`` (``"sqrt_d"``, Vaswani
    et al.'s scaled dot product) or by ``d`` itself (``"d"``, Krishna and Patil's eq. 5), d
    being the per-head query size ``dim / heads``.

    >>> mha = MultiHeadAttention(dim=8, heads=2)
    >>> x = torch.randn(1, 5, 8); m = torch.tensor([[True, True, True, False, False]])
    >>> out, w = mha(x, x, key_mask=m)
    >>> out.shape, w.shape, w[0, :, :, 3:].abs().sum().item()
    (torch.Size([1, 5, 8]), torch.Size([1, 2, 5, 5]), 0.0)
    """

    def __init__(self, dim: int, heads: int, key_dim: int | None = None, dropout: float = 0.0, bias: bool = True,
                 scale: Literal["sqrt_d", "d"] = "sqrt_d") -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"MultiHeadAttention: dim {dim} not divisible by heads {heads}")
        if scale not in ("sqrt_d", "d"):
            raise ValueError(f"MultiHeadAttention: scale must be 'sqrt_d' or 'd', got {scale!r}")
        key_dim = dim if key_dim is None else key_dim
        self.heads, self.head_dim = heads, dim // heads
        self.scale = scale
        self.score_divisor = math.sqrt(self.head_dim) if scale == "sqrt_d" else float(self.head_dim)
        self.q_proj = nn.Linear(dim, dim, bias=bias)
        self.k_proj = nn.Linear(key_dim, dim, bias=bias)
        self.v_proj = nn.Linear(key_dim, dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        query_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        value = key if value is None else value
        b, q, _ = query.shape
        k = key.shape[1]
        h, d = self.heads, self.head_dim
        qh = self.q_proj(query).view(b, q, h, d).transpose(1, 2)
        kh = self.k_proj(key).view(b, k, h, d).transpose(1, 2)
        vh = self.v_proj(value).view(b, k, h, d).transpose(1, 2)
        scores = qh @ kh.transpose(-1, -2) / self.score_divisor  # (B, H, Q, K)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        weights = masked_softmax(scores, mask, dim=-1)
        out = (self.dropout(weights) @ vh).transpose(1, 2).reshape(b, q, h * d)
        out = self.out_proj(out)
        if query_mask is not None:
            out = out * query_mask.unsqueeze(-1).to(out.dtype)
        return out, weights


# ----------------------------------------------------------------------------- positions


class SinusoidalPositionEmbedding(nn.Module):
    """Fixed sine/cosine position encodings (Vaswani et al. 2017) added to x (B, T, D).

    No length limit and no parameters. ``dim`` must be even.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"SinusoidalPositionEmbedding: dim must be even, got {dim}")
        self.register_buffer("inv_freq", torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2).float() / dim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(x.shape[1], device=x.device, dtype=self.inv_freq.dtype)
        ang = pos[:, None] * self.inv_freq[None, :]
        pe = torch.stack([ang.sin(), ang.cos()], dim=-1).flatten(1)  # interleaved sin, cos
        return x + pe.to(x.dtype)


class LearnedPositionEmbedding(nn.Module):
    """A learned vector per position added to x (B, T, D); T > ``max_len`` raises."""

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.table = nn.Embedding(max_len, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.max_len:
            raise ValueError(f"LearnedPositionEmbedding: sequence length {x.shape[1]} exceeds max_len {self.max_len}")
        return x + self.table.weight[: x.shape[1]].to(x.dtype)


# ----------------------------------------------------------------------------- RNNs, checks


def lengths_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Number of real positions per row of a left-aligned mask (B, T) -> long (B,)."""
    return mask.long().sum(dim=1)


# Host lengths. Packing an RNN batch needs each row's length on the host. Read from a
# CUDA mask, that length costs a device->host copy, and each such copy stalls the CPU
# until the GPU queue drains, so kernel launches cannot run ahead of the GPU.
# The collate already knows the lengths: it passes them as CPU tensors,
# ``<input>_lengths``, and a model hands them to :func:`check_sequence` and
# :func:`run_rnn`. Then a forward and backward pass reads no GPU value on the host
# (tests/models/test_models.py runs every model on the meta device to prove it).


def run_rnn(
    rnn: nn.RNNBase, x: torch.Tensor, mask: torch.Tensor | None, lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """Run a batch_first LSTM/GRU over the real frames only, so padding never changes the
    states (the backward direction starts at each row's last real frame).

    x (B, T, F), mask (B, T) -> (B, T, hidden * directions), zeros on padded steps. Rows
    with no real frame give zeros. ``lengths`` (B,) on the CPU, when given, must be the
    mask's row sums; without it they are read from the mask (a device->host copy on GPU).
    """
    if mask is None:
        return rnn(x)[0]
    host = host_lengths(mask, lengths).clamp(min=1)
    # Sort on the host and move only the permutations, so the packing reads nothing back:
    # pack_padded_sequence(enforce_sorted=False) would copy its permutation to the GPU and
    # back with a sync each way.
    sorted_lengths, order = torch.sort(host, descending=True, stable=True)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel())
    order_d, inverse_d = _to_device(order, x.device), _to_device(inverse, x.device)
    packed = pack_padded_sequence(x.index_select(0, order_d), sorted_lengths, batch_first=True, enforce_sorted=True)
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out.index_select(0, inverse_d) * mask.unsqueeze(-1).to(out.dtype)


def host_lengths(mask: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """The collate's host ``lengths`` when given, else the mask's row sums read back to the
    CPU (a device->host copy on GPU)."""
    return lengths_from_mask(mask).cpu() if lengths is None else lengths


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor on ``device`` without a stream sync (pinned, non-blocking copy)."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def check_sequence(
    model: str,
    name: str,
    x: torch.Tensor | None,
    mask: torch.Tensor | None,
    dim: int | None,
    ndim: int = 3,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Validate one input of ``model`` and return its mask (all True when ``mask`` is None).

    Raises ValueError naming the model and the input when ``x`` is missing, has the wrong
    rank or feature size, when the mask has the wrong shape or is not left-aligned
    (padding must follow the real positions), or when a row is all padding.

    With host ``lengths`` (B,) (see :func:`run_rnn`) the row checks read those instead of
    the mask, and the mask is trusted to be ``arange(T) < lengths`` as the collate builds it,
    so the check costs no device->host copy.

    >>> check_sequence("demo", "text", torch.zeros(2, 3, 5), None, 4)
    Traceback (most recent call last):
    ...
    ValueError: model 'demo': input 'text' has feature size 5, expected 4 (config text_dim)
    """
    if x is None:
        raise ValueError(f"model {model!r}: missing input {name!r}")
    if x.dim() != ndim:
        raise ValueError(f"model {model!r}: input {name!r} must have {ndim} dims, got shape {tuple(x.shape)}")
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(f"model {model!r}: input {name!r} has feature size {x.shape[-1]}, expected {dim} (config {name}_dim)")
    if mask is None:
        if lengths is not None:
            raise ValueError(f"model {model!r}: {name}_lengths given without {name}_mask")
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"model {model!r}: {name}_mask shape {tuple(mask.shape)} does not match {name} {tuple(x.shape[:2])}")
    mask = mask.bool()
    if lengths is not None:
        if lengths.device.type != "cpu" or lengths.shape != mask.shape[:1]:
            raise ValueError(f"model {model!r}: {name}_lengths must be a CPU tensor of shape {tuple(mask.shape[:1])}, "
                             f"got {tuple(lengths.shape)} on {lengths.device}")
        if lengths.numel() and int(lengths.max()) > mask.shape[1]:
            raise ValueError(f"model {model!r}: {name}_lengths exceed the padded length {mask.shape[1]}")
    else:
        lengths = lengths_from_mask(mask)
        left = torch.arange(mask.shape[1], device=mask.device)[None, :] < lengths[:, None]
        if not torch.equal(left, mask):
            raise ValueError(f"model {model!r}: {name}_mask is not left-aligned (padding must follow the real positions)")
    if bool((lengths == 0).any()):
        rows = torch.nonzero(lengths == 0).flatten().tolist()
        raise ValueError(f"model {model!r}: input {name!r} is all padding in batch row(s) {rows}")
    return mask
