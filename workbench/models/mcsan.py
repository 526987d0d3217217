"""Multimodal cross- and self-attention network (MCSAN), Sun, Liu, Tao and Lian, ICASSP 2021.

Audio: two ConvBlocks (Conv1D then max-pooling, eq. 1) and a BiLSTM whose two directions
are averaged (eqs. 2-3). Text: a BiLSTM, directions averaged (eqs. 4-5). Sinusoidal
position embeddings, then in parallel a cross-attention module (each modality queries the
other, eqs. 6-14) and a self-attention module per modality (eqs. 15-17), each N layers of
multi-head attention and a feed-forward layer with residual + LayerNorm. The four outputs
are max-pooled over time, concatenated and classified (eqs. 18-19).

Ablations of Table 3 (sec. 3.5) are config fields: ``modalities`` (w/o audio, w/o text: the
remaining modality's encoder and self-attention module alone), ``use_cross`` / ``use_self``
(w/o cross, w/o self), ``arrangement`` ("parallel", or sequential "cross_self" / "self_cross")
and ``n_layers``; the card declares each as a variant, and MELD's recipe (sec. 3.2) as ``meld``.

The set-up (sec. 3.1-3.2): 7 IEMOCAP classes, 10-fold cross-validation with 8:1:1 train /
validation / test parts; 40-d MFCC (25 ms window, 10 ms hop, at most 1,000 frames,
z-normalised: the ``mfcc40`` extractor); Adam at 1e-3, batch 256, at most 30 epochs (MELD: 5e-4,
at most 20 epochs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

import torch
import torch.nn as nn

from workbench.models.card import ModelCard, Variant
from workbench.models.layers import (
    MultiHeadAttention,
    SinusoidalPositionEmbedding,
    check_sequence,
    host_lengths,
    masked_max,
    run_rnn,
)
from workbench.models.outputs import AttentionInfo, ModelOutput
from workbench.models.registry import build_from_config, register_model

MODALITIES = ("audio", "text")


@dataclass
class MCSANConfig:
    """Defaults from sec. 3.2 unless noted.

    - ``hidden`` 128 ("the number of hidden neurons"), ``heads`` 8, ``n_layers`` 1,
      conv and max-pool kernel 3.
    - ``pool_stride`` 2 and ``pool_padding`` 1: not given in the paper; each pool halves the
      frame rate, so the encoded audio runs at 4x the input hop (40 ms at 10 ms input).
    - ``ff_dim`` 512 (4 x hidden) and ``dropout`` 0.1: not given in the paper; the values of
      the Transformer it follows ([18], Vaswani et al. 2017).
    - ``audio_dim`` 40: 40 MFCC, no deltas (the ``mfcc40`` extractor, which also keeps at
      most the first 1,000 frames, as sec. 3.2 caps the sequence). ``text_dim`` 384 (MiniLM)
      stands in for GloVe-300. ``n_classes``: the paper's recipe trains 7 IEMOCAP classes
      (the training recipe sets it from the label scheme); 4 when built by hand.
    - ``modalities``: ("audio", "text"); one of them alone is Table 3's "w/o text" / "w/o
      audio" (cross-attention needs both, so it must then be off: ``use_cross=False``).
    """

    modalities: tuple[str, ...] = MODALITIES
    audio_dim: int = 40
    text_dim: int = 384
    hidden: int = 128
    heads: int = 8
    n_layers: int = 1
    ff_dim: int = 512
    dropout: float = 0.1
    conv_kernel: int = 3
    pool_kernel: int = 3
    pool_stride: int = 2
    pool_padding: int = 1
    use_cross: bool = True
    use_self: bool = True
    arrangement: Literal["parallel", "cross_self", "self_cross"] = "parallel"
    n_classes: int = 4
    audio_frame_seconds: float = 0.01


class FeedForward(nn.Module):
    """Position-wise feed-forward with residual and post-LayerNorm (eqs. 13-14, 17)."""

    def __init__(self, dim: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, ff_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim))
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.dropout(self.net(x)))


class AttentionLayer(nn.Module):
    """``x = LN(x + MHA(x, y, y)); x = LN(x + FF(x))``: cross (y = other modality) or self
    (y = x) attention layer of eqs. 11-17, post-norm as in the paper."""

    def __init__(self, c: MCSANConfig) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(c.hidden, c.heads, dropout=c.dropout)
        self.norm = nn.LayerNorm(c.hidden)
        self.dropout = nn.Dropout(c.dropout)
        self.ff = FeedForward(c.hidden, c.ff_dim, c.dropout)

    def forward(
        self, x: torch.Tensor, x_mask: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        delta, weights = self.attn(x, y, key_mask=y_mask, query_mask=x_mask)
        x = self.ff(self.norm(x + self.dropout(delta)))
        return x, weights * x_mask[:, None, :, None].to(weights.dtype)  # padded query rows -> 0


class MCSAN(nn.Module):
    """Cross- and self-attention over a conv+BiLSTM audio encoder and a BiLSTM text encoder."""

    inputs: tuple[str, ...] = MODALITIES
    name = "mcsan"

    def __init__(self, config: MCSANConfig) -> None:
        super().__init__()
        c = config
        mods = tuple(c.modalities)
        if not mods or len(set(mods)) != len(mods) or not set(mods) <= set(MODALITIES):
            raise ValueError(f"model {self.name!r}: modalities must be 1 or 2 distinct of {MODALITIES}, got {mods}")
        if not (c.use_cross or c.use_self):
            raise ValueError(f"model {self.name!r}: use_cross and use_self cannot both be False")
        if c.use_cross and len(mods) < 2:
            raise ValueError(f"model {self.name!r}: cross-attention needs both audio and text; with modalities={mods} "
                             "set use_cross=False")
        if c.arrangement not in ("parallel", "cross_self", "self_cross"):
            raise ValueError(f"model {self.name!r}: unknown arrangement {c.arrangement!r}")
        if c.arrangement != "parallel" and not (c.use_cross and c.use_self):
            raise ValueError(f"model {self.name!r}: sequential arrangement {c.arrangement!r} needs both modules")
        if c.n_layers < 1 or c.hidden % c.heads:
            raise ValueError(f"model {self.name!r}: need n_layers >= 1 and hidden divisible by heads")
        self.config = c
        self.modalities = tuple(m for m in MODALITIES if m in mods)
        self.inputs = self.modalities
        n = c.n_layers
        if "audio" in self.modalities:
            pad = c.conv_kernel // 2
            self.conv1 = nn.Conv1d(c.audio_dim, c.hidden, c.conv_kernel, padding=pad)
            self.conv2 = nn.Conv1d(c.hidden, c.hidden, c.conv_kernel, padding=pad)
            self.pool = nn.MaxPool1d(c.pool_kernel, c.pool_stride, c.pool_padding)
            self.audio_lstm = nn.LSTM(c.hidden, c.hidden, batch_first=True, bidirectional=True)
            if c.use_self:
                self.self_audio = nn.ModuleList(AttentionLayer(c) for _ in range(n))
        if "text" in self.modalities:
            self.text_lstm = nn.LSTM(c.text_dim, c.hidden, batch_first=True, bidirectional=True)
            if c.use_self:
                self.self_text = nn.ModuleList(AttentionLayer(c) for _ in range(n))
        self.position = SinusoidalPositionEmbedding(c.hidden)
        self.dropout = nn.Dropout(c.dropout)
        if c.use_cross:  # per layer: audio queries text (eq. 10), text queries audio (eq. 9)
            self.cross_audio = nn.ModuleList(AttentionLayer(c) for _ in range(n))
            self.cross_text = nn.ModuleList(AttentionLayer(c) for _ in range(n))
        # one pooled vector per (module, modality) output: 4 in parallel, 2 sequential or
        # with one module, 1 with one modality (eq. 18)
        n_modules = 2 if (c.use_cross and c.use_self and c.arrangement == "parallel") else 1
        self.embed_dim = n_modules * len(self.modalities) * c.hidden
        self.classifier = nn.Linear(self.embed_dim, c.n_classes)

    @property
    def frame_seconds(self) -> float:
        """Seconds per encoded audio frame: the input hop times both pools' strides."""
        return self.config.audio_frame_seconds * self.config.pool_stride**2

    def _pooled_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        c = self.config
        return torch.div(lengths + 2 * c.pool_padding - c.pool_kernel, c.pool_stride, rounding_mode="floor") + 1

    def _conv_block(self, conv: nn.Conv1d, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, T) -> (B, C', T'): ConvBlock = MaxPool(Conv1D(x)) (eq. 1), mask-aware.

        Padded steps are zeroed before the conv (so its 'same' padding sees the zeros an
        unpadded sequence would) and set to -inf before the pool (as the pool's own padding
        is), so the valid outputs do not depend on how much padding follows.
        """
        valid = torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None]
        x = conv(x * valid[:, None, :].to(x.dtype))
        x = self.pool(x.masked_fill(~valid[:, None, :], float("-inf")))
        lengths = self._pooled_lengths(lengths)
        valid = torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None]
        return x.masked_fill(~valid[:, None, :], 0.0), lengths

    def _stack(
        self, layers: nn.ModuleList, x: torch.Tensor, xm: torch.Tensor, y: torch.Tensor | None, ym: torch.Tensor | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = []
        for layer in layers:
            x, w = layer(x, xm, x if y is None else y, xm if ym is None else ym)
            maps.append(w)
        return x, maps

    def _encode_audio(
        self, audio: torch.Tensor | None, audio_mask: torch.Tensor | None, audio_lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Audio encoder (eqs. 1-3): (B, T', hidden) at the pooled rate and its mask (B, T')."""
        c = self.config
        a_mask = check_sequence(self.name, "audio", audio, audio_mask, c.audio_dim, lengths=audio_lengths)
        lengths = a_mask.long().sum(1)
        # The pooled lengths on the host: for the check and for packing the audio LSTM.
        pooled = self._pooled_lengths(self._pooled_lengths(host_lengths(a_mask, audio_lengths)))
        if bool((pooled < 1).any()):
            raise ValueError(f"model {self.name!r}: input 'audio' too short for two pooling layers")
        x, lengths = self._conv_block(self.conv1, audio.transpose(1, 2), lengths)
        x, lengths = self._conv_block(self.conv2, x, lengths)
        a_mask = torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None]
        h_a = run_rnn(self.audio_lstm, x.transpose(1, 2), a_mask, pooled)
        h_a = 0.5 * (h_a[..., : c.hidden] + h_a[..., c.hidden :])  # average directions (eq. 3)
        return self.dropout(self.position(h_a)) * a_mask.unsqueeze(-1), a_mask

    def _encode_text(
        self, text: torch.Tensor | None, text_mask: torch.Tensor | None, text_lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Text encoder (eqs. 4-5): (B, W, hidden) and its mask (B, W)."""
        c = self.config
        t_mask = check_sequence(self.name, "text", text, text_mask, c.text_dim, lengths=text_lengths)
        h_l = run_rnn(self.text_lstm, text, t_mask, text_lengths)
        h_l = 0.5 * (h_l[..., : c.hidden] + h_l[..., c.hidden :])  # eq. 5
        return self.dropout(self.position(h_l)) * t_mask.unsqueeze(-1), t_mask

    def forward(
        self,
        audio: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        text_lengths: torch.Tensor | None = None,
        **unused: torch.Tensor,
    ) -> ModelOutput:
        """audio (B, T, audio_dim) frames (10 ms hop), text (B, W, text_dim) words; masks bool
        (B, T) / (B, W), True on real positions, left-aligned; ``<input>_lengths`` (B,)
        optionally on the CPU (see :func:`~workbench.models.layers.run_rnn`). An input of a
        modality not in ``config.modalities`` is ignored.

        Returns logits (B, n_classes), embeddings (B, k x hidden: k pooled outputs, 1 to 4),
        and attention maps (last layer; with n_layers > 1 also ``<name>_layer{l}`` for every
        layer): ``cross_audio_text`` (B, heads, T', W) audio frames querying words,
        ``cross_text_audio`` (B, heads, W, T'), ``self_audio`` (B, heads, T', T'),
        ``self_text`` (B, heads, W, W), those of the modules and modalities the config keeps;
        T' is the pooled audio length (``frame_seconds`` per frame). Rows of padded queries
        and columns of padded keys are zero.
        """
        c = self.config
        h: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        if "audio" in self.modalities:
            h["audio"], masks["audio"] = self._encode_audio(audio, audio_mask, audio_lengths)
        if "text" in self.modalities:
            h["text"], masks["text"] = self._encode_text(text, text_mask, text_lengths)

        maps: dict[str, list[torch.Tensor]] = {}

        def cross(x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            # Both directions read the previous layer's a and l (parallel update, eqs. 9-14).
            a, l = x["audio"], x["text"]
            ca, cl = [], []
            for la, ll in zip(self.cross_audio, self.cross_text):
                (a, wa), (l, wl) = la(a, masks["audio"], l, masks["text"]), ll(l, masks["text"], a, masks["audio"])
                ca.append(wa)
                cl.append(wl)
            maps["cross_audio_text"], maps["cross_text_audio"] = ca, cl
            return {"audio": a, "text": l}

        def self_att(x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            out = {}
            for m in self.modalities:
                out[m], maps[f"self_{m}"] = self._stack(getattr(self, f"self_{m}"), x[m], masks[m], None, None)
            return out

        # (modality, output) pairs in the order of eq. 18: cross audio, cross text, self audio, self text
        if c.arrangement == "parallel":
            outs = []
            if c.use_cross:
                outs += list(cross(h).items())
            if c.use_self:
                outs += list(self_att(h).items())
        elif c.arrangement == "cross_self":
            outs = list(self_att(cross(h)).items())
        else:
            outs = list(cross(self_att(h)).items())
        # global max-pooling over real positions (eq. 18)
        embeddings = torch.cat([masked_max(o, masks[m]) for m, o in outs], dim=-1)

        attentions, info = {}, {}
        for key, per_layer in maps.items():
            axes = {
                "cross_audio_text": ("batch", "head", "frame", "word"),
                "cross_text_audio": ("batch", "head", "word", "frame"),
                "self_audio": ("batch", "head", "frame", "frame"),
                "self_text": ("batch", "head", "word", "word"),
            }[key]
            secs = {"frame": self.frame_seconds} if "frame" in axes else {}
            names = [key] + ([f"{key}_layer{i}" for i in range(1, len(per_layer) + 1)] if len(per_layer) > 1 else [])
            tensors = [per_layer[-1]] + (per_layer if len(per_layer) > 1 else [])
            for name, w in zip(names, tensors):
                attentions[name] = w
                info[name] = AttentionInfo(axes, secs, f"{key.replace('_', ' ')} attention ({name})")
        return ModelOutput(self.classifier(embeddings), attentions, info, embeddings)


def _reads(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The card's ``reads``: the modalities a config keeps, in the model's order."""
    kept = tuple(config.get("modalities", MODALITIES))
    return tuple(m for m in MODALITIES if m in kept)


_NOTES = ("the paper's 'at most 30 epochs' (MELD: 20) read as early stopping on the validation split "
          "(patience 5 is ours); GloVe-300 replaced by MiniLM's static word vectors")

CARD = ModelCard(
    inputs={"audio": "mfcc40", "text": "text_static"},
    recipes={
        # sec. 3.1: 7 IEMOCAP classes, 10-fold cross-validation with 8:1:1 train/validation/test;
        # sec. 3.2: 40-d MFCC (the audio extractor above), Adam at 1e-3, batch 256, at most 30 epochs
        "paper": dict(lr=1e-3, batch_size=256, epochs=30, protocol="tenfold_811", early_stopping_patience=5,
                      label_scheme="iemocap7", source="Sun et al. 2021, sec. 3.1-3.2", notes=_NOTES),
    },
    demo=dict(hidden=48, heads=4, ff_dim=96),
    smoke=dict(hidden=24, heads=4, ff_dim=48),
    dims={"audio": "audio_dim", "text": "text_dim"},
    frame_periods={"audio": "audio_frame_seconds"},
    reads=_reads,
    # Table 3 (sec. 3.5): every ablation; Table 2: the MELD recipe
    variants={
        "no_audio": Variant("w/o audio: text only, its BiLSTM encoder and self-attention module (Table 3)",
                            {"modalities": ("text",), "use_cross": False}),
        "no_text": Variant("w/o text: audio only, its conv+BiLSTM encoder and self-attention module (Table 3)",
                           {"modalities": ("audio",), "use_cross": False}),
        "no_self": Variant("w/o self: cross-attention module only (Table 3)", {"use_self": False}),
        "no_cross": Variant("w/o cross: self-attention modules only (Table 3)", {"use_cross": False}),
        "cross_self": Variant("cross+self (seq): self-attention over the cross-attention output (Table 3)",
                              {"arrangement": "cross_self"}),
        "self_cross": Variant("self+cross (seq): cross-attention over the self-attention output (Table 3)",
                              {"arrangement": "self_cross"}),
        "layers_2": Variant("N = 2 stacked attention layers (Table 3)", {"n_layers": 2}),
        "layers_3": Variant("N = 3 stacked attention layers (Table 3)", {"n_layers": 3}),
        "meld": Variant(
            "MELD (Table 2): its 7 emotions, official train/dev/test split, Adam at 5e-4, at most 20 epochs "
            "(sec. 3.1-3.2); the paper reports weighted F1 on the test split",
            recipe=dict(lr=5e-4, epochs=20, label_scheme="meld7", protocol="official", early_stopping_patience=5),
        ),
    },
)


@register_model(card=CARD)
def mcsan(**config: object) -> MCSAN:
    """MCSAN with the paper's settings (parallel modules, N = 1, 8 heads, 128 hidden, 40 MFCC).

    >>> m = mcsan().eval()
    >>> out = m(audio=torch.randn(2, 40, 40), text=torch.randn(2, 5, 384))
    >>> out.logits.shape, out.attentions["cross_text_audio"].shape
    (torch.Size([2, 4]), torch.Size([2, 8, 5, 10]))
    >>> sorted(mcsan(modalities=("text",), use_cross=False).eval()(text=torch.randn(2, 5, 384)).attentions)
    ['self_text']
    """
    return build_from_config(MCSAN, MCSANConfig, "mcsan", **config)
