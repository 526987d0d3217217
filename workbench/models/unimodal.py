"""Unimodal baselines: an LSTM over one modality pooled by attention (Mirsamadi, Barsoum and
Zhang, "Automatic speech emotion recognition using recurrent neural networks with local
attention", ICASSP 2017), over audio frames, words or video frames.

Registered names and the paper rows they run (the variant in brackets, "" = the default):

- ``unimodal_audio`` [""]: Xu et al. 2019, Table 1, speech-only "LSTM+Attn (our
  implementation)": sec. 4.3, "an LSTM to model the sequence of speech frames and an attention
  mechanism to learn a weighted sum over the sequence ... the same as in [13] (Mirsamadi) but
  with different speech features", on Xu's 34-d frames (sec. 4.2) with Xu's recipe. The row
  "LSTM+Attn (Mirsamadi et al., 2017)" cited beside it (and in Krishna et al. 2020, Table 2) is
  the same architecture. [``yoon2020``]: Yoon et al. 2020, Table 1, "RNN-attn [17]", A.
- ``unimodal_text`` [""]: Xu et al. 2019, Table 1 (ASR text) and Table 2 (oracle text),
  text-only: sec. 4.3, "an LSTM with attention structure which is the same as the text encoder
  in our approach" (a BiLSTM of 100 units per direction, sec. 4.2). [``yoon2020``]: Yoon et al.
  2020, Table 1, "RNN-attn [17]", T.
- ``unimodal_video`` [""]: Yoon et al. 2020, Table 1, "RNN-attn [17]", V.

Yoon et al. 2020 (sec. 4.3) describe RNN-attn as "attention memory to compute and aggregate the
emotionally salient part while encoding a single modality using a bidirectional LSTM": a
BiLSTM with the single learned scoring vector of Mirsamadi's pooling (the "attention memory"
of the authors' code is one learned vector dotted with each state, the same form), trained with
Yoon's set-up (``workbench.models.mdre.YOON2020_RECIPE``: 7 classes, 10 folds of 8:1:1). The
authors' code (AMH's repository) builds its audio-only model with an attention memory over a GRU
and appends MDRE's 35 prosodic features to the pooled vector; the paper's description (an
attentive BiLSTM over one modality) is what runs here, without the prosodic vector.

>>> from workbench.models import create_model
>>> m = create_model("unimodal_text", text_dim=6, hidden=5)
>>> out = m(text=torch.randn(2, 4, 6), text_mask=torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool())
>>> out.logits.shape, out.attentions["word_pool"][1, 2:].tolist()
(torch.Size([2, 4]), [0.0, 0.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn as nn

from workbench.models.card import ModelCard, Variant
from workbench.models.layers import AttentionPooling, check_sequence, run_rnn
from workbench.models.mdre import YOON2020_DROPOUT, YOON2020_HIDDEN, YOON2020_RECIPE
from workbench.models.outputs import AttentionInfo, ModelOutput
from workbench.models.registry import build_from_config, register_model
from workbench.models.xu_alignment import XU_RECIPE

Modality = Literal["audio", "text", "video"]
_AXIS = {"audio": "frame", "text": "word", "video": "frame"}
_MAP = {"audio": "frame_pool", "text": "word_pool", "video": "video_pool"}


Setup = Literal["xu2019", "yoon2020"]

# The structure of each paper's baseline; explicit config fields win (the CPU recipes shrink
# ``hidden`` and ``dense_dim`` this way without changing the structure).
# Xu et al. 2019, sec. 4.3: speech as Mirsamadi et al. (two 512-unit ReLU layers, an LSTM of
# 128 cells); text as Xu's text encoder (a BiLSTM of 100 units per direction, sec. 4.2); no
# dropout is reported. Yoon et al. 2020, sec. 4.3: a bidirectional LSTM, no dense layers; the
# per-direction sizes and input dropout of the AMH reference code's encoders (200 audio/text,
# 128 video; keep probabilities 0.7 audio/video, 0.3 text), the baselines' own scripts being
# unpublished.
_SETUPS: dict[tuple[str, str], dict[str, Any]] = {
    ("audio", "xu2019"): dict(dense_layers=2, hidden=128, bidirectional=False, input_dropout=0.0),
    ("text", "xu2019"): dict(dense_layers=0, hidden=100, bidirectional=True, input_dropout=0.0),
    **{(m, "yoon2020"): dict(dense_layers=0, hidden=YOON2020_HIDDEN[m], bidirectional=True,
                             input_dropout=YOON2020_DROPOUT[m]) for m in ("audio", "text", "video")},
}
_FRAME_SECONDS = {"audio": 0.01, "text": 0.01, "video": 1.0 / 3.0}  # 10 ms hop; video at 3 fps (Yoon sec. 4.2)


@dataclass
class UnimodalConfig:
    """LSTM + attention pooling over one modality.

    ``setup`` picks the structure of one paper's baseline (``_SETUPS``); ``dense_layers``,
    ``hidden``, ``bidirectional`` and ``input_dropout`` left at None take it, given values win.

    - ``xu2019`` (Xu et al. 2019, sec. 4.3), audio: Mirsamadi et al.'s structure, two frame-wise
      fully connected ReLU layers of ``dense_dim`` 512, one LSTM of 128 cells, attention pooling
      with a single learned vector u (``alpha_t = softmax(u^T y_t)``), softmax output (the sizes
      as the workbench reads Mirsamadi et al. 2017, whose paper is not on disk); ``audio_dim``
      34: Xu's pyAudioAnalysis frames (sec. 4.2, the ``frame34`` extractor). Text: Xu's text
      encoder, a BiLSTM of 100 units per direction (sec. 4.2), the same pooling, on 384-d MiniLM
      word vectors where Xu uses 300-d GloVe.
    - ``yoon2020`` (Yoon et al. 2020, RNN-attn): a BiLSTM without dense layers, 200 units per
      direction for audio and text and 128 for video, input dropout 0.3 / 0.7 / 0.3.

    ``attention_hidden`` 0 is the single-vector scoring; > 0 scores with a tanh layer.
    ``input_dropout`` drops input features at every step; ``dropout`` acts after the dense
    layers and before the output (0: neither paper reports it there).
    ``frame_seconds``: time step of the modality's frames (None: 10 ms audio, 1/3 s video),
    which places the pooling weights in time; unused for words.
    """

    modality: Modality = "audio"
    setup: Setup = "xu2019"
    audio_dim: int = 34
    text_dim: int = 384
    video_dim: int = 32
    dense_layers: int | None = None
    dense_dim: int = 512
    hidden: int | None = None
    bidirectional: bool | None = None
    attention_hidden: int = 0
    input_dropout: float | None = None
    dropout: float = 0.0
    n_classes: int = 4
    frame_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.modality not in _AXIS:
            raise ValueError(f"model 'unimodal': modality must be one of {sorted(_AXIS)}, got {self.modality!r}")
        if (self.modality, self.setup) not in _SETUPS:
            known = sorted(s for m, s in _SETUPS if m == self.modality)
            raise ValueError(f"model 'unimodal_{self.modality}': setup must be one of {known}, got {self.setup!r}")
        for k, v in _SETUPS[(self.modality, self.setup)].items():
            if getattr(self, k) is None:
                setattr(self, k, v)
        if self.frame_seconds is None:
            self.frame_seconds = _FRAME_SECONDS[self.modality]


class UnimodalLSTMAttention(nn.Module):
    """Dense layers (optional), an LSTM (optionally bidirectional), attention pooling, a linear output."""

    inputs: tuple[str, ...] = ("audio",)

    def __init__(self, config: UnimodalConfig) -> None:
        super().__init__()
        self.config = c = config
        self.name = f"unimodal_{c.modality}"
        self.inputs = (c.modality,)
        in_dim = self._dim()
        self.input_dropout = nn.Dropout(c.input_dropout)
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

    def _dim(self) -> int:
        c = self.config
        return {"audio": c.audio_dim, "text": c.text_dim, "video": c.video_dim}[c.modality]

    def forward(self, **inputs: torch.Tensor) -> ModelOutput:
        """``audio`` (B, T, audio_dim), ``text`` (B, W, text_dim) or ``video`` (B, V, video_dim)
        with its ``<input>_mask`` (B, len), and optionally ``<input>_lengths`` (B,) on the CPU
        (see :func:`~workbench.models.layers.run_rnn`); other inputs are ignored. Returns logits
        (B, n_classes), embeddings (B, state) and the pooling weights ``frame_pool`` (B, T),
        ``word_pool`` (B, W) or ``video_pool`` (B, V), summing to one over real positions."""
        c = self.config
        key = c.modality
        lengths = inputs.get(f"{key}_lengths")
        mask = check_sequence(self.name, key, inputs.get(key), inputs.get(f"{key}_mask"), self._dim(), lengths=lengths)
        x = self.input_dropout(inputs[key].masked_fill(~mask[..., None], 0.0))
        y = run_rnn(self.rnn, self.frame_net(x), mask, lengths)
        pooled, weights = self.pool(y, mask)
        axis, name = _AXIS[key], _MAP[key]
        what = {"audio": "audio frame", "text": "word", "video": "video frame"}[key]
        info = AttentionInfo(
            axes=("batch", axis),
            frame_seconds={"frame": c.frame_seconds} if axis == "frame" else {},
            description=f"attention pooling weight of each {what} (Mirsamadi et al. 2017)",
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
    defaults = {"setup": "yoon2020"} if modality == "video" else {}  # only Yoon et al. report a video baseline
    return build_from_config(UnimodalLSTMAttention, UnimodalConfig, name, **{**defaults, **config, "modality": modality})


def _yoon_variant(modality: str, row: str, inputs: dict[str, str] | None = None) -> Variant:
    return Variant(f"Yoon et al. 2020, Table 1, RNN-attn [17], {row}: a BiLSTM with attention pooling under Yoon's "
                   "set-up (7 classes, 10 folds of 8:1:1, Adam 1e-3, gradient norm clipped at 1; sec. 4.1-4.2)",
                   config={"setup": "yoon2020"}, recipe=YOON2020_RECIPE, inputs=inputs or {})


_AUDIO_CARD = ModelCard(
    # Xu's 34-d pyAudioAnalysis frames; Yoon's variant reads the 120-d MFCC of AMH (sec. 4.2)
    inputs={"audio": "frame34"},
    recipes={"paper": XU_RECIPE},
    demo=dict(dense_dim=128, hidden=48),
    smoke=dict(dense_dim=64, hidden=24),
    dims={"audio": "audio_dim"},
    frame_periods={"audio": "frame_seconds"},
    variants={"yoon2020": _yoon_variant("audio", "A", {"audio": "mfcc120"})},
)

_TEXT_CARD = ModelCard(
    inputs={"text": "text_static"},
    recipes={"paper": XU_RECIPE},
    demo=dict(hidden=48),
    smoke=dict(hidden=24),
    dims={"text": "text_dim"},
    variants={"yoon2020": _yoon_variant("text", "T")},
)

_VIDEO_CARD = ModelCard(
    inputs={"video": "visual"},  # as AMH reads video: per-frame descriptors at 3 fps (ResNet-101 in the paper)
    recipes={"paper": YOON2020_RECIPE},
    demo=dict(hidden=32),
    smoke=dict(hidden=16),
    dims={"video": "video_dim"},
    frame_periods={"video": "frame_seconds"},
)


@register_model(card=_AUDIO_CARD)
def unimodal_audio(**config: Any) -> UnimodalLSTMAttention:
    """Speech-only LSTM + attention pooling over frames (Xu et al. 2019's speech-only model)."""
    return _build("audio", config)


@register_model(card=_TEXT_CARD)
def unimodal_text(**config: Any) -> UnimodalLSTMAttention:
    """Text-only BiLSTM + attention pooling over words (Xu et al. 2019, sec. 4.3)."""
    return _build("text", config)


@register_model(card=_VIDEO_CARD)
def unimodal_video(**config: Any) -> UnimodalLSTMAttention:
    """Video-only BiLSTM + attention pooling over video frames (Yoon et al. 2020, Table 1, V)."""
    return _build("video", config)


__all__ = ["UnimodalConfig", "UnimodalLSTMAttention", "unimodal_audio", "unimodal_text", "unimodal_video"]
