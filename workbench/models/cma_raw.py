"""Cross-modal attention on a raw-waveform CNN, Krishna D N and Patil, Interspeech 2020.

Audio encoder (sec. 2.1): three conv blocks (Conv1D, BatchNorm, ReLU, MaxPool; kernels
3/5/7, 64/100/100 filters) on the raw 16 kHz waveform, or on a 257-bin spectrogram (the
paper's "CMA+spec" row, Table 1), then a BiLSTM (100 per direction, dropout 0.2). Text
encoder (sec. 2.2): a 1x1 convolution projecting word embeddings to 100 dims, then a BiLSTM.
Both 200-d sequences are projected to 100 dims (sec. 4). CMA-1 lets audio query text and
CMA-2 text query audio (sec. 2.3), each two pre-LayerNorm multi-head layers with 10 heads
and a 100-d feed-forward. Statistics pooling (mean, std; sec. 2.4) of both outputs,
concatenated, feeds the output layer.

Padding: every conv sees zeros on padded steps (as an unpadded sequence sees its own zero
padding), BatchNorm statistics in training use real steps only, and masks are shortened with
the same length formula as the convs and pools, so padding never changes a real output.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn

from workbench.models.card import ModelCard
from workbench.models.layers import (
    MaskedBatchNorm1d,
    MultiHeadAttention,
    StatisticsPooling,
    check_sequence,
    host_lengths,
    run_rnn,
)
from workbench.models.outputs import AttentionInfo, ModelOutput
from workbench.models.registry import build_from_config, register_model

# Not given in the paper (sec. 4 names kernels and filters only): pools that take the
# 16 kHz waveform to 31.25 frames/s (32 ms) and the 10 ms spectrogram to 25 frames/s (40 ms).
_DEFAULT_POOLS = {"waveform": (8, 8, 8), "spectrogram": (1, 2, 2)}


@dataclass
class CMAConfig:
    """Defaults from sec. 4 unless noted.

    - conv kernels (3, 5, 7), filters (64, 100, 100); BiLSTM hidden 100, dropout 0.2; text
      conv 100 filters of size 1; projection to ``dim`` 100; 2 layers x 10 heads per CMA;
      feed-forward hidden 100; ``n_classes`` 4 (angry, happy+excited, neutral, sad).
    - ``conv_strides`` (1, 1, 1) and ``pool_sizes`` (None: 8/8/8 for the waveform, 1/2/2 for
      the spectrogram) and ``dropout`` 0.1 in the attention layers are not given in the
      paper.
    - ``audio_dim`` 257: spectrogram bins (25 ms window, 10 ms shift), used only with
      ``front_end="spectrogram"``. ``text_dim`` 384: MiniLM stands in for GloVe-300.
    - The paper crops or pads audio to 10 s (160,000 samples); the feature pipeline does
      that, the model takes any length with a mask.
    """

    front_end: Literal["waveform", "spectrogram"] = "waveform"
    audio_dim: int = 257
    text_dim: int = 384
    sample_rate: int = 16000
    audio_frame_seconds: float = 0.01
    conv_channels: tuple[int, int, int] = (64, 100, 100)
    conv_kernels: tuple[int, int, int] = (3, 5, 7)
    conv_strides: tuple[int, int, int] = (1, 1, 1)
    pool_sizes: tuple[int, int, int] | None = None
    lstm_hidden: int = 100
    lstm_dropout: float = 0.2
    text_channels: int = 100
    dim: int = 100
    heads: int = 10
    n_layers: int = 2
    ff_dim: int = 100
    dropout: float = 0.1
    n_classes: int = 4


class ConvBlock(nn.Module):
    """Conv1D -> BatchNorm -> ReLU -> MaxPool (sec. 2.1), with lengths carried through."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, pool: int) -> None:
        super().__init__()
        self.kernel, self.stride, self.pool_size = kernel, stride, pool
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2)
        self.norm = MaskedBatchNorm1d(c_out)
        self.pool = nn.MaxPool1d(pool) if pool > 1 else nn.Identity()

    def conv_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Conv1d output length (padding kernel // 2) for input lengths."""
        return torch.div(lengths + 2 * (self.kernel // 2) - self.kernel, self.stride, rounding_mode="floor") + 1

    def out_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Block output length for input lengths, the formula Conv1d and MaxPool1d use."""
        return torch.div(self.conv_lengths(lengths), self.pool_size, rounding_mode="floor")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x * _steps(lengths, x.shape[-1])[:, None, :].to(x.dtype)  # padding reads as zeros
        x = self.conv(x)
        x = torch.relu(self.norm(x, _steps(self.conv_lengths(lengths), x.shape[-1])))
        # Pool windows that hold any padded step are dropped by the length formula (floor),
        # exactly as MaxPool1d drops a trailing partial window of an unpadded sequence.
        x = self.pool(x)
        lengths = self.out_lengths(lengths)
        return x * _steps(lengths, x.shape[-1])[:, None, :].to(x.dtype), lengths


def _steps(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """Left-aligned bool mask (B, total) with ``lengths`` real steps per row."""
    return torch.arange(total, device=lengths.device)[None, :] < lengths[:, None]


class CrossModalLayer(nn.Module):
    """Pre-LayerNorm cross-modal attention layer (sec. 2.3, Fig. 2):
    ``x = x + MHA(LN(x), LN(y)); x = x + FF(LN(x))``, queries from x, keys/values from y."""

    def __init__(self, c: CMAConfig) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = nn.LayerNorm(c.dim), nn.LayerNorm(c.dim), nn.LayerNorm(c.dim)
        self.attn = MultiHeadAttention(c.dim, c.heads, dropout=c.dropout)
        self.ff = nn.Sequential(nn.Linear(c.dim, c.ff_dim), nn.ReLU(), nn.Dropout(c.dropout), nn.Linear(c.ff_dim, c.dim))
        self.dropout = nn.Dropout(c.dropout)

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        kv = self.norm_kv(y)
        delta, weights = self.attn(self.norm_q(x), kv, key_mask=y_mask, query_mask=x_mask)
        x = x + self.dropout(delta)
        x = x + self.dropout(self.ff(self.norm_ff(x)))
        x = x * x_mask.unsqueeze(-1).to(x.dtype)
        return x, weights * x_mask[:, None, :, None].to(weights.dtype)  # padded query rows -> 0


def _inputs(front_end: str) -> tuple[str, ...]:
    return ("waveform", "text") if front_end == "waveform" else ("audio", "text")


class CMA(nn.Module):
    """CMA-1 / CMA-2 cross-modal attention over a conv + BiLSTM audio encoder (waveform or
    spectrogram) and a 1x1 conv + BiLSTM text encoder."""

    inputs: tuple[str, ...] = ("waveform", "text")
    name = "cma_raw"

    def __init__(self, config: CMAConfig) -> None:
        super().__init__()
        c = config
        if c.front_end not in _DEFAULT_POOLS:
            raise ValueError(f"model {self.name!r}: unknown front_end {c.front_end!r}")
        if c.dim % c.heads:
            raise ValueError(f"model {self.name!r}: dim {c.dim} not divisible by heads {c.heads}")
        self.config = c
        self.inputs = _inputs(c.front_end)
        self.pool_sizes = tuple(c.pool_sizes) if c.pool_sizes is not None else _DEFAULT_POOLS[c.front_end]
        c_in = 1 if c.front_end == "waveform" else c.audio_dim
        chans = (c_in, *c.conv_channels)
        self.blocks = nn.ModuleList(
            ConvBlock(chans[i], chans[i + 1], c.conv_kernels[i], c.conv_strides[i], self.pool_sizes[i]) for i in range(3)
        )
        self.audio_lstm = nn.LSTM(chans[-1], c.lstm_hidden, batch_first=True, bidirectional=True)
        self.text_conv = nn.Conv1d(c.text_dim, c.text_channels, kernel_size=1)
        self.text_lstm = nn.LSTM(c.text_channels, c.lstm_hidden, batch_first=True, bidirectional=True)
        self.lstm_dropout = nn.Dropout(c.lstm_dropout)
        self.audio_proj = nn.Linear(2 * c.lstm_hidden, c.dim)
        self.text_proj = nn.Linear(2 * c.lstm_hidden, c.dim)
        self.cma1 = nn.ModuleList(CrossModalLayer(c) for _ in range(c.n_layers))  # audio queries text
        self.cma2 = nn.ModuleList(CrossModalLayer(c) for _ in range(c.n_layers))  # text queries audio
        self.stats = StatisticsPooling()
        self.embed_dim = 4 * c.dim
        self.classifier = nn.Linear(self.embed_dim, c.n_classes)

    @property
    def frame_seconds(self) -> float:
        """Seconds per encoded audio frame: input period x product of conv strides and pools."""
        c = self.config
        period = 1.0 / c.sample_rate if c.front_end == "waveform" else c.audio_frame_seconds
        return period * math.prod(s * p for s, p in zip(c.conv_strides, self.pool_sizes))

    def encoded_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Encoded audio frames for input lengths (samples or spectrogram frames)."""
        for block in self.blocks:
            lengths = block.out_lengths(lengths)
        return lengths

    def forward(
        self,
        waveform: torch.Tensor | None = None,
        waveform_mask: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        waveform_lengths: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        text_lengths: torch.Tensor | None = None,
        **unused: torch.Tensor,
    ) -> ModelOutput:
        """waveform (B, S) at ``sample_rate`` with waveform_mask (B, S) for the waveform front
        end, or audio (B, T, audio_dim) spectrogram frames with audio_mask (B, T); text
        (B, W, text_dim) with text_mask (B, W). Masks bool, True on real steps, left-aligned;
        ``<input>_lengths`` (B,) optionally on the CPU (see :func:`~workbench.models.layers.run_rnn`).

        Returns logits (B, n_classes), embeddings (B, 4 x dim) = [mean, std of CMA-1; mean,
        std of CMA-2], and maps (last layer, plus ``<name>_layer{l}`` per layer):
        ``cross_audio_text`` (B, heads, T', W) CMA-1, ``cross_text_audio`` (B, heads, W, T')
        CMA-2, T' encoded audio frames of ``frame_seconds`` each.
        """
        c = self.config
        if c.front_end == "waveform":
            host = waveform_lengths
            a_mask = check_sequence(self.name, "waveform", waveform, waveform_mask, None, ndim=2, lengths=host)
            x = waveform.unsqueeze(1)  # (B, 1, S)
        else:
            host = audio_lengths
            a_mask = check_sequence(self.name, "audio", audio, audio_mask, c.audio_dim, lengths=host)
            x = audio.transpose(1, 2)  # (B, F, T)
        t_mask = check_sequence(self.name, "text", text, text_mask, c.text_dim, lengths=text_lengths)
        lengths = a_mask.long().sum(1)
        # The encoded lengths on the host: for the check and for packing the audio LSTM.
        encoded = self.encoded_lengths(host_lengths(a_mask, host))
        if bool((encoded < 1).any()):
            source = "waveform" if c.front_end == "waveform" else "audio"
            raise ValueError(f"model {self.name!r}: input {source!r} too short for the conv/pool stack")

        for block in self.blocks:
            x, lengths = block(x, lengths)
        a_mask = _steps(lengths, x.shape[-1])
        h_a = self.audio_proj(self.lstm_dropout(run_rnn(self.audio_lstm, x.transpose(1, 2), a_mask, encoded)))
        f_t = self.text_conv(text.transpose(1, 2)).transpose(1, 2)
        h_t = self.text_proj(self.lstm_dropout(run_rnn(self.text_lstm, f_t, t_mask, text_lengths)))

        a, t = h_a, h_t
        maps_at, maps_ta = [], []
        for l1, l2 in zip(self.cma1, self.cma2):
            # Keys and values stay the encoder outputs of the other modality at every layer.
            a, w1 = l1(a, a_mask, h_t, t_mask)
            t, w2 = l2(t, t_mask, h_a, a_mask)
            maps_at.append(w1)
            maps_ta.append(w2)
        embeddings = torch.cat([self.stats(a, a_mask), self.stats(t, t_mask)], dim=-1)

        attentions, info = {}, {}
        secs = {"frame": self.frame_seconds}
        for key, per_layer, axes, what in (
            ("cross_audio_text", maps_at, ("batch", "head", "frame", "word"), "CMA-1: audio frames attend to words"),
            ("cross_text_audio", maps_ta, ("batch", "head", "word", "frame"), "CMA-2: words attend to audio frames"),
        ):
            attentions[key] = per_layer[-1]
            info[key] = AttentionInfo(axes, secs, f"{what} (last layer)")
            if len(per_layer) > 1:
                for i, w in enumerate(per_layer, start=1):
                    attentions[f"{key}_layer{i}"] = w
                    info[f"{key}_layer{i}"] = AttentionInfo(axes, secs, f"{what} (layer {i})")
        return ModelOutput(self.classifier(embeddings), attentions, info, embeddings)


CARD = ModelCard(
    inputs={"waveform": "waveform", "text": "text_contextual"},
    recipes={
        # leave-one-session-out, Adam 1e-3
        "paper": dict(lr=1e-3, batch_size=32, epochs=30, protocol="loso_session",
                      source="Krishna & Patil 2020, sec. 4",
                      notes="batch size and epochs not stated (ours)"),
    },
    # Stride 2 and pools 4/8/8 downsample 512x: 31.25 frames/s, the paper-default frame rate
    # (pools 4/4/4 gave 125 frames/s: 5-fold demo UA 0.676 in 895 s; with 4/8/8 and per-speaker
    # waveform gain, 0.696).
    demo=dict(conv_channels=(16, 32, 32), conv_strides=(2, 1, 1), pool_sizes=(4, 8, 8), lstm_hidden=32,
              text_channels=48, dim=48, heads=4, ff_dim=48, n_layers=1),
    smoke=dict(conv_channels=(8, 16, 16), conv_strides=(2, 1, 1), pool_sizes=(4, 8, 8), lstm_hidden=16,
               text_channels=24, dim=24, heads=4, ff_dim=24, n_layers=1),
    # the waveform has one channel: no size field; its period is 1 / sample_rate
    dims={"audio": "audio_dim", "text": "text_dim"},
    frame_periods={"audio": "audio_frame_seconds"},
    reads=lambda config: _inputs(config.get("front_end", "waveform")),
)


@register_model("cma_raw", card=CARD)
def cma_raw(**config: object) -> CMA:
    """CMA on the raw 16 kHz waveform (the paper's best row, Table 1).

    >>> m = cma_raw().eval()
    >>> out = m(waveform=torch.randn(2, 16000), text=torch.randn(2, 5, 384))
    >>> out.logits.shape, out.attentions["cross_audio_text"].shape, m.frame_seconds
    (torch.Size([2, 4]), torch.Size([2, 10, 31, 5]), 0.032)
    """
    return build_from_config(CMA, CMAConfig, "cma_raw", **{"front_end": "waveform", **config})


_SPEC_CARD = dataclasses.replace(
    CARD,
    inputs={"audio": "spectrogram257", "text": "text_contextual"},
    demo=dict(conv_channels=(32, 48, 48), lstm_hidden=32, text_channels=48, dim=48, heads=4, ff_dim=48, n_layers=1),
    smoke=dict(conv_channels=(16, 24, 24), lstm_hidden=16, text_channels=24, dim=24, heads=4, ff_dim=24, n_layers=1),
    reads=lambda config: _inputs(config.get("front_end", "spectrogram")),
)


@register_model("cma_spec", card=_SPEC_CARD)
def cma_spec(**config: object) -> CMA:
    """CMA on 257-bin spectrogram frames (the paper's CMA+spec row, Table 1)."""
    model = build_from_config(CMA, CMAConfig, "cma_spec", **{"front_end": "spectrogram", **config})
    model.name = "cma_spec"
    return model
