"""Cross-modal attention on a raw-waveform CNN, Krishna D N and Patil, Interspeech 2020.

Audio encoder (sec. 2.1, sec. 4): three conv blocks (Conv1D, BatchNorm, ReLU, MaxPool; kernels
3/5/7, 64/100/100 filters) on the raw 16 kHz waveform, or on a 257-bin spectrogram (the
paper's "CMA+spec" row, Table 1; features in sec. 5), then a BiLSTM (100 per direction,
dropout 0.2). Text encoder (sec. 2.2, sec. 4): the first 50 words' embeddings, a 1x1
convolution projecting them to 100 dims, then a BiLSTM. Both 200-d sequences are projected to
100 dims (sec. 4). CMA-1 lets audio query text and CMA-2 text query audio (sec. 2.3), each
two pre-LayerNorm multi-head layers with 10 heads and a 100-d feed-forward (sec. 4), the
scores divided by d_q as eq. 5 writes it (not sqrt(d_q)). Statistics pooling (mean, std;
sec. 2.4) of both outputs, concatenated, feeds the output layer.

The unimodal models of Table 2 (sec. 5, last paragraph) are configurations of the same class:
``attention="self_audio"`` keeps only the audio encoder and feeds its output to the attention
block as query, key and value ("Self-Attn+LSTM (audio-only, ours)"); ``"self_text"`` does the
same with the text encoder ("Self-Attn+LSTM (text-only)").

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

from workbench.models.card import ModelCard, Variant
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


Attention = Literal["cross", "self_audio", "self_text"]


@dataclass
class CMAConfig:
    """Defaults from sec. 4 unless noted.

    - conv kernels (3, 5, 7), filters (64, 100, 100); BiLSTM hidden 100, dropout 0.2; text
      conv 100 filters of size 1; projection to ``dim`` 100; 2 layers x 10 heads per CMA;
      feed-forward hidden 100; ``n_classes`` 4 (angry, happy+excited, neutral, sad; sec. 3).
    - ``max_words`` 50: the text encoder reads the first N = 50 words (sec. 2.2 "We set N to
      be 50", sec. 4 "maximum of 50 words"); later words are masked out, so the LSTM, the
      attention and the pooling never see them and they get no attention weight. None reads
      every word.
    - ``attention_scale`` "d": eq. 5 divides the scores by d_q, the query size of a head
      (``dim / heads`` = 10), where Vaswani et al. and most code divide by sqrt(d_q)
      ("sqrt_d"). We follow the paper: it is the paper's model, and the larger divisor gives
      flatter attention at the start of training (scores 3.2x smaller at d_q = 10). The paper
      does not say whether Q_i has dim / heads or dim entries; ours has dim / heads (Vaswani
      et al.'s split, which eq. 6's concatenation and W_0 map back to dim).
    - ``attention`` "cross": CMA-1 and CMA-2 (Table 1). "self_audio" / "self_text": Table 2's
      unimodal models (sec. 5): one encoder, its output as query, key and value of the same
      attention block, statistics pooling of that stream only.
    - ``conv_strides`` (1, 1, 1) and ``pool_sizes`` (None: 8/8/8 for the waveform, 1/2/2 for
      the spectrogram) and ``dropout`` 0.1 in the attention layers are not given in the
      paper.
    - ``audio_dim`` 257: spectrogram bins (25 ms window, 10 ms shift; sec. 5), used only with
      ``front_end="spectrogram"``. ``text_dim`` 384: MiniLM's static word vectors (``text_static``) stand in for GloVe-300.
    - The paper crops or pads audio to 10 s (160,000 samples, first 10 s kept; sec. 4, and
      10 s of spectrogram, sec. 5): the ``waveform`` and ``spectrogram257`` extractors do
      that; the model takes any length with a mask.
    """

    front_end: Literal["waveform", "spectrogram"] = "waveform"
    attention: Attention = "cross"
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
    max_words: int | None = 50
    dim: int = 100
    heads: int = 10
    n_layers: int = 2
    ff_dim: int = 100
    attention_scale: Literal["d", "sqrt_d"] = "d"
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
    ``x = x + MHA(LN(x), LN(y)); x = x + FF(LN(x))``, queries from x, keys/values from y
    (y = x's own encoder output for the self-attention models of Table 2)."""

    def __init__(self, c: CMAConfig) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = nn.LayerNorm(c.dim), nn.LayerNorm(c.dim), nn.LayerNorm(c.dim)
        self.attn = MultiHeadAttention(c.dim, c.heads, dropout=c.dropout, scale=c.attention_scale)
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


def _inputs(front_end: str, attention: str = "cross") -> tuple[str, ...]:
    """What a config reads: the audio input of its front end, the text, or both."""
    audio = "waveform" if front_end == "waveform" else "audio"
    return {"self_audio": (audio,), "self_text": ("text",)}.get(attention, (audio, "text"))


_SELF_MAPS = {
    "self_audio": (("batch", "head", "frame", "frame"), "self-attention: audio frames attend to audio frames"),
    "self_text": (("batch", "head", "word", "word"), "self-attention: words attend to words"),
}


class CMA(nn.Module):
    """CMA-1 / CMA-2 cross-modal attention over a conv + BiLSTM audio encoder (waveform or
    spectrogram) and a 1x1 conv + BiLSTM text encoder; or, for Table 2's unimodal models,
    self-attention over one of the two encoders."""

    inputs: tuple[str, ...] = ("waveform", "text")
    name = "cma_raw"

    def __init__(self, config: CMAConfig) -> None:
        super().__init__()
        c = config
        if c.front_end not in _DEFAULT_POOLS:
            raise ValueError(f"model {self.name!r}: unknown front_end {c.front_end!r}")
        if c.attention not in ("cross", *_SELF_MAPS):
            raise ValueError(f"model {self.name!r}: unknown attention {c.attention!r}; "
                             f"choose 'cross', 'self_audio' or 'self_text'")
        if c.dim % c.heads:
            raise ValueError(f"model {self.name!r}: dim {c.dim} not divisible by heads {c.heads}")
        if c.max_words is not None and c.max_words < 1:
            raise ValueError(f"model {self.name!r}: max_words must be None or >= 1, got {c.max_words}")
        self.config = c
        self.inputs = _inputs(c.front_end, c.attention)
        self.pool_sizes = tuple(c.pool_sizes) if c.pool_sizes is not None else _DEFAULT_POOLS[c.front_end]
        self.lstm_dropout = nn.Dropout(c.lstm_dropout)
        if c.attention != "self_text":  # the audio encoder (ENC1)
            c_in = 1 if c.front_end == "waveform" else c.audio_dim
            chans = (c_in, *c.conv_channels)
            self.blocks = nn.ModuleList(
                ConvBlock(chans[i], chans[i + 1], c.conv_kernels[i], c.conv_strides[i], self.pool_sizes[i]) for i in range(3)
            )
            self.audio_lstm = nn.LSTM(chans[-1], c.lstm_hidden, batch_first=True, bidirectional=True)
            self.audio_proj = nn.Linear(2 * c.lstm_hidden, c.dim)
        else:
            self.blocks = nn.ModuleList()
        if c.attention != "self_audio":  # the text encoder (ENC2)
            self.text_conv = nn.Conv1d(c.text_dim, c.text_channels, kernel_size=1)
            self.text_lstm = nn.LSTM(c.text_channels, c.lstm_hidden, batch_first=True, bidirectional=True)
            self.text_proj = nn.Linear(2 * c.lstm_hidden, c.dim)
        if c.attention == "cross":
            self.cma1 = nn.ModuleList(CrossModalLayer(c) for _ in range(c.n_layers))  # audio queries text
            self.cma2 = nn.ModuleList(CrossModalLayer(c) for _ in range(c.n_layers))  # text queries audio
        else:
            self.self_attn = nn.ModuleList(CrossModalLayer(c) for _ in range(c.n_layers))
        self.stats = StatisticsPooling()
        self.embed_dim = (4 if c.attention == "cross" else 2) * c.dim
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
        Only the inputs of ``self.inputs`` are read (``attention`` decides).

        Returns logits (B, n_classes), embeddings (B, 4 x dim) = [mean, std of CMA-1; mean,
        std of CMA-2] ((B, 2 x dim) for self-attention), and maps (last layer, plus
        ``<name>_layer{l}`` per layer): ``cross_audio_text`` (B, heads, T', W) CMA-1,
        ``cross_text_audio`` (B, heads, W, T') CMA-2, T' encoded audio frames of
        ``frame_seconds`` each; or ``self_audio`` (B, heads, T', T') / ``self_text``
        (B, heads, W, W). Words past ``max_words`` are masked: zero weight, zero rows.
        """
        c = self.config
        if c.attention != "self_text":
            h_a, a_mask = self._encode_audio(waveform, waveform_mask, audio, audio_mask, waveform_lengths, audio_lengths)
        if c.attention != "self_audio":
            h_t, t_mask = self._encode_text(text, text_mask, text_lengths)

        if c.attention == "cross":
            a, t = h_a, h_t
            maps: dict[str, list[torch.Tensor]] = {"cross_audio_text": [], "cross_text_audio": []}
            for l1, l2 in zip(self.cma1, self.cma2):
                # Keys and values stay the encoder outputs of the other modality at every layer.
                a, w1 = l1(a, a_mask, h_t, t_mask)
                t, w2 = l2(t, t_mask, h_a, a_mask)
                maps["cross_audio_text"].append(w1)
                maps["cross_text_audio"].append(w2)
            embeddings = torch.cat([self.stats(a, a_mask), self.stats(t, t_mask)], dim=-1)
            layout = {
                "cross_audio_text": (("batch", "head", "frame", "word"), "CMA-1: audio frames attend to words"),
                "cross_text_audio": (("batch", "head", "word", "frame"), "CMA-2: words attend to audio frames"),
            }
        else:
            # Sec. 5: "we feed the audio [text] features itself as query, key, and value vectors
            # to cross-modal attention block": the same block, its key/value input the
            # stream's own encoder output at every layer, as CMA-1/2 keep theirs.
            h, mask = (h_a, a_mask) if c.attention == "self_audio" else (h_t, t_mask)
            x, maps = h, {c.attention: []}
            for layer in self.self_attn:
                x, w = layer(x, mask, h, mask)
                maps[c.attention].append(w)
            embeddings = self.stats(x, mask)
            layout = {c.attention: _SELF_MAPS[c.attention]}

        attentions, info = {}, {}
        for key, per_layer in maps.items():
            axes, what = layout[key]
            secs = {"frame": self.frame_seconds} if "frame" in axes else {}
            attentions[key] = per_layer[-1]
            info[key] = AttentionInfo(axes, secs, f"{what} (last layer)")
            if len(per_layer) > 1:
                for i, w in enumerate(per_layer, start=1):
                    attentions[f"{key}_layer{i}"] = w
                    info[f"{key}_layer{i}"] = AttentionInfo(axes, secs, f"{what} (layer {i})")
        return ModelOutput(self.classifier(embeddings), attentions, info, embeddings)

    def _encode_audio(
        self,
        waveform: torch.Tensor | None,
        waveform_mask: torch.Tensor | None,
        audio: torch.Tensor | None,
        audio_mask: torch.Tensor | None,
        waveform_lengths: torch.Tensor | None,
        audio_lengths: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ENC1: conv blocks + BiLSTM + projection -> (H^A (B, T', dim), mask (B, T'))."""
        c = self.config
        if c.front_end == "waveform":
            host = waveform_lengths
            a_mask = check_sequence(self.name, "waveform", waveform, waveform_mask, None, ndim=2, lengths=host)
            x = waveform.unsqueeze(1)  # (B, 1, S)
        else:
            host = audio_lengths
            a_mask = check_sequence(self.name, "audio", audio, audio_mask, c.audio_dim, lengths=host)
            x = audio.transpose(1, 2)  # (B, F, T)
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
        return h_a, a_mask

    def _encode_text(
        self, text: torch.Tensor | None, text_mask: torch.Tensor | None, text_lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ENC2 on the first ``max_words`` words -> (H^T (B, W, dim), mask (B, W)).

        Later words are masked rather than cut, so every map keeps one word row per word of
        the transcript (a viewer can label them) and those rows stay zero."""
        c = self.config
        t_mask = check_sequence(self.name, "text", text, text_mask, c.text_dim, lengths=text_lengths)
        if c.max_words is not None and text.shape[1] > c.max_words:
            t_mask = t_mask & (torch.arange(text.shape[1], device=t_mask.device) < c.max_words)[None, :]
            text_lengths = None if text_lengths is None else text_lengths.clamp(max=c.max_words)
        f_t = self.text_conv(text.transpose(1, 2)).transpose(1, 2)
        h_t = self.text_proj(self.lstm_dropout(run_rnn(self.text_lstm, f_t, t_mask, text_lengths)))
        return h_t, t_mask


CARD = ModelCard(
    inputs={"waveform": "waveform", "text": "text_static"},
    recipes={
        "paper": dict(optimizer="adam", lr=1e-3, batch_size=32, epochs=30, protocol="loso_session",
                      label_scheme="iemocap4",
                      source="Krishna & Patil 2020: Adam, lr 0.001 (sec. 4); leave-one-session-out over the "
                             "5 sessions, angry, happy+excited, neutral, sad (sec. 3)",
                      notes="batch size and epochs not stated (ours); no validation set or early stopping "
                            "stated: fixed epochs; GloVe-300 (sec. 2.2) replaced by MiniLM's static word vectors"),
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
    # Table 2's unimodal models: "the same audio encoder" (sec. 5) is the raw-waveform encoder
    # of sec. 2.1, so they are variants of cma_raw (the text-only one reads no audio at all).
    variants={
        "self_attn_audio": Variant(
            "Table 2 'Self-Attn+LSTM (audio-only, ours)', UA 55.60%: the raw-waveform audio encoder, its "
            "output as query, key and value of the attention block, statistics pooling (sec. 5)",
            config={"attention": "self_audio"}),
        "self_attn_text": Variant(
            "Table 2 'Self-Attn+LSTM (text-only)', UA 65.90%: the text encoder, its output as query, key "
            "and value of the attention block, statistics pooling (sec. 5)",
            config={"attention": "self_text"}),
    },
    reads=lambda config: _inputs(config.get("front_end", "waveform"), config.get("attention", "cross")),
)


@register_model(card=CARD)
def cma_raw(**config: object) -> CMA:
    """CMA on the raw 16 kHz waveform (the paper's best row, Table 1); variants
    ``self_attn_audio`` and ``self_attn_text`` are Table 2's unimodal models.

    >>> m = cma_raw().eval()
    >>> out = m(waveform=torch.randn(2, 16000), text=torch.randn(2, 5, 384))
    >>> out.logits.shape, out.attentions["cross_audio_text"].shape, m.frame_seconds
    (torch.Size([2, 4]), torch.Size([2, 10, 31, 5]), 0.032)
    """
    return build_from_config(CMA, CMAConfig, "cma_raw", **{"front_end": "waveform", **config})


_SPEC_CARD = dataclasses.replace(
    CARD,
    inputs={"audio": "spectrogram257", "text": "text_static"},
    demo=dict(conv_channels=(32, 48, 48), lstm_hidden=32, text_channels=48, dim=48, heads=4, ff_dim=48, n_layers=1),
    smoke=dict(conv_channels=(16, 24, 24), lstm_hidden=16, text_channels=24, dim=24, heads=4, ff_dim=24, n_layers=1),
    variants={},  # Table 2's unimodal models use the raw-waveform encoder: cma_raw's variants
    reads=lambda config: _inputs(config.get("front_end", "spectrogram"), config.get("attention", "cross")),
)


@register_model(card=_SPEC_CARD)
def cma_spec(**config: object) -> CMA:
    """CMA on 257-bin spectrogram frames (the paper's CMA+spec row, Table 1)."""
    model = build_from_config(CMA, CMAConfig, "cma_spec", **{"front_end": "spectrogram", **config})
    model.name = "cma_spec"
    return model
