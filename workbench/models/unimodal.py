"""Unimodal baselines: frame-wise dense layers, an LSTM and attention pooling (Mirsamadi,
Barsoum and Zhang, "Automatic speech emotion recognition using recurrent neural networks
with local attention", ICASSP 2017), for audio frames or for words.

These are the "LSTM+Attn" rows of Xu et al. 2019, Table 1 (speech-only and text-only).

Registered names: ``unimodal_audio`` (reads ``audio``) and ``unimodal_text`` (reads ``text``).

>>> from workbench.models import create_model
>>> m = create_model("unimodal_text", text_dim=6, hidden=5)
>>> out = m(text=torch.randn(2, 4, 6), text_mask=torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool())
>>> out.logits.shape, out.attentions["word_pool"][1, 2:].tolist()
(torch.Size([2, 4]), [0.0, 0.0])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn as nn

from workbench.models.card import ModelCard
from workbench.models.layers import AttentionPooling, check_sequence, run_rnn
from workbench.models.outputs import AttentionInfo, ModelOutput
from workbench.models.pepino_fusion import PAPER_RECIPE
from workbench.models.registry import build_from_config, register_model


@dataclass
class UnimodalConfig:
    """LSTM + attention pooling over one modality.

    Audio defaults follow Mirsamadi et al. 2017 (section 4): two frame-wise fully connected
    ReLU layers of 512 units, one LSTM of 128 cells, attention pooling with a single learned
    vector u (``alpha_t = softmax(u^T y_t)``, eq. 4-5), softmax output. ``audio_dim`` 120 is
    our MFCC-120 default (the paper used 32 LLDs). Text defaults follow the text-only model
    of Xu et al. 2019 (section 4.3: "the same as the text encoder", a BiLSTM of 100 units
    per direction) on 384-d MiniLM word embeddings instead of 300-d GloVe.
    ``attention_hidden`` 0 is the paper's scoring; > 0 scores with a tanh layer.
    ``frame_seconds`` is the time step of the audio frames (10 ms hop).
    """

    modality: Literal["audio", "text"] = "audio"
    audio_dim: int = 120
    text_dim: int = 384
    dense_layers: int = 2
    dense_dim: int = 512
    hidden: int = 128
    bidirectional: bool = False
    attention_hidden: int = 0
    dropout: float = 0.0
    n_classes: int = 4
    frame_seconds: float = 0.01

    def __post_init__(self) -> None:
        if self.modality not in ("audio", "text"):
            raise ValueError(f"model 'unimodal': modality must be 'audio' or 'text', got {self.modality!r}")


_TEXT_DEFAULTS = {"dense_layers": 0, "hidden": 100, "bidirectional": True}


class UnimodalLSTMAttention(nn.Module):
    """Mirsamadi et al. 2017: dense layers, LSTM, attention pooling, linear output."""

    inputs: tuple[str, ...] = ("audio",)

    def __init__(self, config: UnimodalConfig) -> None:
        super().__init__()
        self.config = c = config
        self.name = f"unimodal_{c.modality}"
        self.inputs = (c.modality,)
        in_dim = c.audio_dim if c.modality == "audio" else c.text_dim
        layers: list[nn.Module] = []
        for _ in range(c.dense_layers):
            layers += [nn.Linear(in_dim, c.dense_dim), nn.ReLU(), nn.Dropout(c.dropout)]
            in_dim = c.dense_dim
        self.frame_net = nn.Sequential(*layers)
        self.rnn = nn.LSTM(in_dim, c.hidden, batch_first=True, bidirectional=c.bidirectional)
        state = c.hidden * (2 if c.bidirectional else 1)
        self.pool = AttentionPooling(state, hidden=c.attention_hidden)
        self.dropout = nn.Dropout(c.dropout)
        self.out = nn.Linear(state, c.n_classes)

    def forward(self, **inputs: torch.Tensor) -> ModelOutput:
        """``audio`` (B, T, audio_dim) with ``audio_mask`` (B, T), or ``text`` (B, W, text_dim)
        with ``text_mask`` (B, W), and optionally ``<input>_lengths`` (B,) on the CPU (see
        :func:`~workbench.models.layers.run_rnn`); other inputs are ignored. Returns logits (B, n_classes),
        embeddings (B, state) and the pooling weights ``frame_pool`` (B, T) or
        ``word_pool`` (B, W), summing to one over real positions."""
        c = self.config
        key = c.modality
        dim = c.audio_dim if key == "audio" else c.text_dim
        lengths = inputs.get(f"{key}_lengths")
        mask = check_sequence(self.name, key, inputs.get(key), inputs.get(f"{key}_mask"), dim, lengths=lengths)
        x = inputs[key].masked_fill(~mask[..., None], 0.0)
        y = run_rnn(self.rnn, self.frame_net(x), mask, lengths)
        pooled, weights = self.pool(y, mask)
        name, axis = ("frame_pool", "frame") if key == "audio" else ("word_pool", "word")
        info = AttentionInfo(
            axes=("batch", axis),
            frame_seconds={"frame": c.frame_seconds} if key == "audio" else {},
            description=f"attention pooling weight of each {axis} (Mirsamadi et al. 2017, eq. 5)",
        )
        return ModelOutput(
            logits=self.out(self.dropout(pooled)),
            attentions={name: weights},
            attention_info={name: info},
            embeddings=pooled,
        )


def _build(modality: str, config: dict[str, Any]) -> UnimodalLSTMAttention:
    name = f"unimodal_{modality}"
    if "modality" in config:
        raise ValueError(f"model {name!r}: 'modality' is fixed by the registered name")
    defaults = _TEXT_DEFAULTS if modality == "text" else {}
    return build_from_config(UnimodalLSTMAttention, UnimodalConfig, name, **{**defaults, **config, "modality": modality})


# The single-modality baselines train with Pepino et al.'s single-modality recipe.
_CARD = ModelCard(
    inputs={"audio": "mfcc120"},
    recipes={"paper": PAPER_RECIPE},
    demo=dict(dense_layers=1, dense_dim=128, hidden=48),
    smoke=dict(dense_layers=1, dense_dim=64, hidden=24),
    dims={"audio": "audio_dim"},
    frame_periods={"audio": "frame_seconds"},
)


@register_model("unimodal_audio", card=_CARD)
def unimodal_audio(**config: Any) -> UnimodalLSTMAttention:
    """Speech-only LSTM + attention pooling over frames (Mirsamadi et al. 2017)."""
    return _build("audio", config)


@register_model("unimodal_text", card=dataclasses.replace(_CARD, inputs={"text": "text_contextual"},
                                                            dims={"text": "text_dim"}, frame_periods={}))
def unimodal_text(**config: Any) -> UnimodalLSTMAttention:
    """Text-only BiLSTM + attention pooling over words (Xu et al. 2019, section 4.3)."""
    return _build("text", config)
