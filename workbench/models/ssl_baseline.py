"""The self-supervised speech baseline of SUPERB / EmoBox, and its fusion with word vectors.

SUPERB's emotion recognition task (Yang et al., "SUPERB: Speech processing Universal
PERformance Benchmark", Interspeech 2021, sec. 3, task ER; the downstream settings of its
reference code, s3prl's emotion recipe) freezes the speech encoder and trains only a small
downstream model on its hidden states:

1. a learned weighted sum of every hidden layer, the weights a softmax over one learned scalar
   per layer (all equal at the start);
2. a linear projection of the summed frame vectors to ``proj_dim`` (256);
3. mean pooling over frames (``pooling="attentive"``: attention pooling with one learned
   scoring vector, the ``attentive`` variant, ours);
4. a classifier: SUPERB's is one linear layer (``classifier_hidden=0``); ``classifier_hidden``
   > 0 adds a ReLU hidden layer (a small MLP, as EmoBox-style baselines use; the ``mlp``
   variant).

Registered names:

- ``ssl_baseline``: the above, over ``audio`` = ``ssl_layers`` features;
- ``ssl_fusion``: the same audio branch, plus the contextual word vectors of the transcript
  (``text`` = ``text_contextual``, or a user checkpoint's, see ``workbench.features.text``)
  pooled by mean (or attention), concatenated with the pooled audio vector and classified by
  an MLP (``classifier_hidden`` 256 by default). The fusion is ours: SUPERB and EmoBox are
  speech only.

How the model knows the number of layers: ``ssl_layers`` stores ``n_layers`` hidden states of
size ``hidden`` concatenated per frame, ``audio_dim = n_layers * hidden``, and the model splits
each frame into ``n_layers`` blocks of ``audio_dim / n_layers``. Both numbers come from the
features when training builds the model: ``audio_dim`` through the card's ``dims``,
``n_layers`` through its ``layer_counts`` (the extractor's ``SslLayers.n_layers``: a layer
subset, a large model's 25 hidden states, the tiny test model's 3), so any checkpoint and
layer choice builds the matching model. The config defaults (13 x 768: every hidden state of
a base-size model, 12 transformer layers plus the CNN output) serve direct ``create_model``
calls; ``audio_dim`` not a multiple of ``n_layers`` is a one-line error.

Outputs: ``attentions["layer_weights"]`` (B, n_layers), the softmax layer weights (the same
for every utterance: they are parameters), ``attentions["frame_pool"]`` (B, T) with attentive
pooling, and ``attentions["word_pool"]`` (B, W) for ``ssl_fusion`` with attentive text pooling.

>>> from workbench.models import create_model
>>> m = create_model("ssl_baseline", audio_dim=12, n_layers=3, proj_dim=8)
>>> out = m(audio=torch.randn(2, 7, 12), audio_mask=torch.ones(2, 7, dtype=torch.bool))
>>> out.logits.shape, out.attentions["layer_weights"][0].tolist()
(torch.Size([2, 4]), [0.3333333432674408, 0.3333333432674408, 0.3333333432674408])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn as nn

from workbench.models.card import ModelCard, Variant
from workbench.models.layers import AttentionPooling, check_sequence, masked_mean
from workbench.models.outputs import AttentionInfo, ModelOutput
from workbench.models.registry import build_from_config, register_model

Pooling = Literal["mean", "attentive"]


@dataclass
class SslBaselineConfig:
    """SUPERB's ER downstream model where its recipe states it, else marked as ours.

    ``audio_dim``: the ``ssl_layers`` feature size, ``n_layers * hidden`` (13 x 768 for every
    hidden state of a base-size model). ``n_layers``: hidden states stored, set from the
    features by training (see the module docstring). ``proj_dim`` 256: s3prl's ``projector_dim``. ``pooling``: ``mean`` (SUPERB) or
    ``attentive``. ``layer_norm``: normalise each layer's vectors before the weighted sum
    (s3prl's featurizer option, off by default there and here). ``classifier_hidden``: 0 =
    SUPERB's linear classifier; > 0 one ReLU hidden layer of that size. ``dropout`` before the
    classifier (0: SUPERB has none). ``fusion``: read the transcript's word vectors too
    (``ssl_fusion``), ``text_dim`` their size, ``text_pooling`` how they are pooled.
    ``frame_seconds`` places the frame-pooling weights in time (0.02 s: 320 samples at 16 kHz).
    """

    audio_dim: int = 13 * 768
    n_layers: int = 13
    proj_dim: int = 256
    pooling: Pooling = "mean"
    layer_norm: bool = False
    classifier_hidden: int = 0
    dropout: float = 0.0
    fusion: bool = False
    text_dim: int = 384
    text_pooling: Pooling = "mean"
    n_classes: int = 4
    frame_seconds: float = 0.02

    def __post_init__(self) -> None:
        name = "ssl_fusion" if self.fusion else "ssl_baseline"
        if self.n_layers < 1 or self.audio_dim % self.n_layers:
            raise ValueError(f"model {name!r}: audio_dim {self.audio_dim} is not a multiple of n_layers "
                             f"{self.n_layers}; n_layers is the number of hidden states the ssl_layers extractor "
                             "stores (its n_layers; training sets it from the features)")
        for field, value in (("pooling", self.pooling), ("text_pooling", self.text_pooling)):
            if value not in ("mean", "attentive"):
                raise ValueError(f"model {name!r}: {field} must be 'mean' or 'attentive', got {value!r}")

    @property
    def layer_dim(self) -> int:
        return self.audio_dim // self.n_layers


class _Pool(nn.Module):
    """Masked mean, or attention pooling with one learned scoring vector (Mirsamadi et al. 2017)."""

    def __init__(self, dim: int, kind: Pooling) -> None:
        super().__init__()
        self.attention = AttentionPooling(dim) if kind == "attentive" else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.attention is None:
            return masked_mean(x, mask), None
        return self.attention(x, mask)


class SslBaseline(nn.Module):
    """Weighted sum of SSL layers, projection, pooling, classifier (optionally with pooled words)."""

    inputs: tuple[str, ...] = ("audio",)

    def __init__(self, config: SslBaselineConfig) -> None:
        super().__init__()
        self.config = c = config
        self.name = "ssl_fusion" if c.fusion else "ssl_baseline"
        self.inputs = ("audio", "text") if c.fusion else ("audio",)
        # zeros: every layer starts with the same weight, as s3prl's featurizer starts
        self.layer_logits = nn.Parameter(torch.zeros(c.n_layers))
        self.projection = nn.Linear(c.layer_dim, c.proj_dim)
        self.frame_pool = _Pool(c.proj_dim, c.pooling)
        width = c.proj_dim
        if c.fusion:
            self.word_pool = _Pool(c.text_dim, c.text_pooling)
            width += c.text_dim
        self.dropout = nn.Dropout(c.dropout)
        if c.classifier_hidden > 0:
            self.classifier: nn.Module = nn.Sequential(nn.Linear(width, c.classifier_hidden), nn.ReLU(),
                                                       nn.Dropout(c.dropout), nn.Linear(c.classifier_hidden, c.n_classes))
        else:
            self.classifier = nn.Linear(width, c.n_classes)

    def forward(self, **inputs: torch.Tensor) -> ModelOutput:
        """``audio`` (B, T, n_layers * hidden) with ``audio_mask`` (B, T); for ``ssl_fusion`` also
        ``text`` (B, W, text_dim) with ``text_mask``. Returns logits (B, n_classes), embeddings
        (the pooled vector(s) fed to the classifier) and the maps of the module docstring."""
        c = self.config
        mask = check_sequence(self.name, "audio", inputs.get("audio"), inputs.get("audio_mask"), c.audio_dim,
                              lengths=inputs.get("audio_lengths"))
        x = inputs["audio"].masked_fill(~mask[..., None], 0.0)
        layers = x.unflatten(-1, (c.n_layers, c.layer_dim))  # (B, T, L, H)
        if c.layer_norm:
            layers = nn.functional.layer_norm(layers, (c.layer_dim,))
        weights = torch.softmax(self.layer_logits, dim=0)
        summed = torch.einsum("btlh,l->bth", layers, weights.to(layers.dtype))
        frames = self.projection(summed)
        pooled, frame_weights = self.frame_pool(frames, mask)
        batch = x.shape[0]
        attentions = {"layer_weights": weights[None, :].expand(batch, -1)}
        info = {"layer_weights": AttentionInfo(
            axes=("batch", "layer"),
            description="softmax weight of each stored hidden layer in the weighted sum (learned; the same "
                        "for every utterance); layer i is the i-th of the extractor's layers")}
        if frame_weights is not None:
            attentions["frame_pool"] = frame_weights
            info["frame_pool"] = AttentionInfo(axes=("batch", "frame"), frame_seconds={"frame": c.frame_seconds},
                                               description="attention pooling weight of each SSL frame")
        parts = [pooled]
        if c.fusion:
            tmask = check_sequence(self.name, "text", inputs.get("text"), inputs.get("text_mask"), c.text_dim,
                                   lengths=inputs.get("text_lengths"))
            words = inputs["text"].masked_fill(~tmask[..., None], 0.0)
            text_vec, word_weights = self.word_pool(words, tmask)
            parts.append(text_vec)
            if word_weights is not None:
                attentions["word_pool"] = word_weights
                info["word_pool"] = AttentionInfo(axes=("batch", "word"),
                                                  description="attention pooling weight of each word")
        emb = torch.cat(parts, dim=-1)
        return ModelOutput(logits=self.classifier(self.dropout(emb)), attentions=attentions,
                           attention_info=info, embeddings=emb)


# s3prl's emotion recipe (downstream/emotion/config.yaml): Adam 1e-4, 30,000 updates of 4 x 8
# accumulated utterances, gradient norm clipped at 1, leave-one-session-out on IEMOCAP's four
# classes (excited merged into happy), 20 % of the training utterances (a random draw, not whole
# sessions) held out for model selection: the `superb` fold protocol draws that split as s3prl does.
SUPERB_ER_RECIPE: dict[str, Any] = dict(
    optimizer="adam", lr=1e-4, batch_size=32, epochs=270, grad_clip=1.0, protocol="loso_session",
    label_scheme="iemocap4",
    source="Yang et al. 2021 (SUPERB, Interspeech), sec. 3 task ER, with the downstream settings of its "
           "reference recipe (s3prl downstream/emotion)",
    notes="batch 32 = the recipe's 4 utterances x 8 accumulated steps; epochs ours: 30,000 updates of 32 are "
          "~270 passes over a ~3,500-utterance training split; the recipe picks the checkpoint with the best "
          "validation accuracy, here the last epoch is tested; section numbering of the paper as we recall it",
)

_VARIANTS = {
    "attentive": Variant("attention pooling over frames (and words) instead of the mean (ours; SUPERB pools by "
                         "the mean, sec. 3)", {"pooling": "attentive", "text_pooling": "attentive"}),
    "mlp": Variant("a ReLU hidden layer of 256 units before the output (ours; SUPERB classifies the pooled vector "
                   "with one linear layer)", {"classifier_hidden": 256}),
}

_AUDIO_CARD = ModelCard(
    inputs={"audio": "ssl_layers"},
    recipes={"paper": SUPERB_ER_RECIPE},
    demo=dict(proj_dim=128),
    smoke=dict(proj_dim=32),
    dims={"audio": "audio_dim"},
    frame_periods={"audio": "frame_seconds"},
    layer_counts={"audio": "n_layers"},
    variants=_VARIANTS,
)

_FUSION_CARD = ModelCard(
    inputs={"audio": "ssl_layers", "text": "text_contextual"},
    recipes={"paper": {**SUPERB_ER_RECIPE, "notes": SUPERB_ER_RECIPE["notes"] + "; the audio+text fusion (pooled word "
                                                                                  "vectors concatenated, MLP) is ours"}},
    demo=dict(proj_dim=128, classifier_hidden=128),
    smoke=dict(proj_dim=32, classifier_hidden=32),
    dims={"audio": "audio_dim", "text": "text_dim"},
    frame_periods={"audio": "frame_seconds"},
    layer_counts={"audio": "n_layers"},
    variants={"attentive": _VARIANTS["attentive"]},
)


@register_model(card=_AUDIO_CARD)
def ssl_baseline(**config: Any) -> SslBaseline:
    """SUPERB-style emotion downstream model over stored SSL hidden states."""
    if config.get("fusion", False):
        raise ValueError("model 'ssl_baseline': 'fusion' is fixed by the registered name (ssl_fusion reads text)")
    return build_from_config(SslBaseline, SslBaselineConfig, "ssl_baseline", **config)


@register_model(card=_FUSION_CARD)
def ssl_fusion(**config: Any) -> SslBaseline:
    """The SSL baseline's audio branch plus pooled contextual word vectors, classified by an MLP."""
    if not config.get("fusion", True):
        raise ValueError("model 'ssl_fusion': 'fusion' is fixed by the registered name (ssl_baseline is audio only)")
    return build_from_config(SslBaseline, SslBaselineConfig, "ssl_fusion",
                             **{"classifier_hidden": 256, **config, "fusion": True})


__all__ = ["SUPERB_ER_RECIPE", "SslBaseline", "SslBaselineConfig", "ssl_baseline", "ssl_fusion"]
