"""Attentive modality hopping (AMH), Yoon, Dey, Lee and Jung, ICASSP 2020.

One GRU encoder per modality (sec. 3.1, eq. 1); then N hops, each attending over the
sequence of one *target* modality with a context vector made from the current summaries of
the other modalities (sec. 3.2, eqs. 2-5). The target cycles video -> audio -> text -> video
..., and every hop replaces the target's summary (first the GRU's last state, then its
attended summary), so hop 4 attends video again with the updated audio and text summaries
(eq. 5). The classifier reads ``[audio; text; video]`` after the last hop (eq. 6).

With two modalities the same machinery is the multi-hop attention (MHA) of Yoon et al.
(ICASSP 2019): for audio + text the first hop attends text with the audio's last state as
context, the second attends audio with the text summary, and so on. Table 1 also reports MHA
over text + video and audio + video; neither the paper nor the authors' code (which has no
two-modality model) gives their hop order, so video, the modality AMH attends first, is
attended first there (``amh_at`` variants ``text_video`` and ``audio_video``).

The set-up (sec. 4.1-4.2): 7 IEMOCAP classes; 10-fold cross-validation, 8 parts train, 1
development, 1 test; Adam at 1e-3 with gradients clipped at norm 1. What the paper leaves out
comes from the authors' reference code (github.com/david-yoon/attentive-modality-hopping-for-SER,
``model/train_reference_script.sh`` and ``model/project_config.py``): batch 128, GRU sizes
200 / 200 / 128, input keep-probabilities 0.7 (audio, video) and 0.3 (text) with no output
dropout, at most 10,000 steps with early stopping on the development part (checked every 0.3
epochs, stopped after 15 checks without a better development WA). Also from it: the encoders
read the first 750 audio frames (7.5 s), 128 words and 25 video frames (as ``mdre`` does).
Not taken from it: the 35 prosodic features it appends to the classifier input, which the
paper does not describe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn as nn

from workbench.models.card import ModelCard, Variant
from workbench.models.layers import check_sequence, masked_softmax, run_rnn
from workbench.models.outputs import AttentionInfo, ModelOutput
from workbench.models.registry import build_from_config, register_model

MODALITIES = ("audio", "text", "video")

# The paper's hop order (Table 2): V, A, T, V, A, T, ...; MHA (two modalities) starts with
# text attended by the audio context, then audio (Yoon et al. 2019, sec. 2.3).
_DEFAULT_ORDER: dict[frozenset[str], tuple[str, ...]] = {
    frozenset(MODALITIES): ("video", "audio", "text"),
    frozenset(("audio", "text")): ("text", "audio"),
    frozenset(("text", "video")): ("video", "text"),
    frozenset(("audio", "video")): ("video", "audio"),
}


@dataclass
class AMHConfig:
    """Defaults follow the paper and the authors' reference training script.

    - ``n_hops`` 7: the best row of Table 2 (AMH-7, sec. 4.3).
    - ``n_classes``: the paper's recipe trains 7 IEMOCAP classes (sec. 3.3, 4.1; the training
      recipe sets it from the label scheme); 4 when built by hand.
    - ``audio_dim`` 120: 40 MFCC + deltas + delta-deltas (sec. 4.2).
    - ``text_dim`` 384: MiniLM's static word vectors (``text_static``) stand in for the paper's GloVe-300.
    - ``video_dim`` 32: simulated visual descriptors stand in for ResNet-101 (2048-d, 3 fps).
    - hidden sizes 200 / 200 / 128 and unidirectional GRUs: the authors' reference script
      (the paper does not state them).
    - ``audio_dropout`` 0.3, ``text_dropout`` 0.7, ``video_dropout`` 0.3: dropout on each
      GRU's input features (the reference script's ``DropoutWrapper`` input keep-probabilities
      ``dr_audio`` 0.7, ``dr_text`` 0.3, ``dr_video`` 0.7; output keep-probability 1.0, so
      nothing is dropped after the encoders).
    - ``hop_order``: target modality of hops 1, 2, 3, ... (repeated cyclically); None picks
      the paper's order for the chosen modalities.
    - ``max_audio_seconds`` 7.5 (750 frames of 10 ms), ``max_words`` 128, ``max_video_seconds``
      25/3 (25 frames at 3 fps): the reference script's encoder sizes; its batches hold the
      first steps of each sequence only. None reads all. In seconds, so pooled frames keep them.
    """

    modalities: tuple[str, ...] = MODALITIES
    n_hops: int = 7
    hop_order: tuple[str, ...] | None = None
    audio_dim: int = 120
    text_dim: int = 384
    video_dim: int = 32
    audio_hidden: int = 200
    text_hidden: int = 200
    video_hidden: int = 128
    audio_dropout: float = 0.3
    text_dropout: float = 0.7
    video_dropout: float = 0.3
    n_classes: int = 4
    audio_frame_seconds: float = 0.01
    video_frame_seconds: float = 1.0 / 3.0
    max_audio_seconds: float | None = 7.5
    max_words: int | None = 128
    max_video_seconds: float | None = 25 / 3


def _first(x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor | None,
           n: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The first ``n`` steps of a padded batch (None: all); mask and host lengths follow."""
    if n is None or x.shape[1] <= n:
        return x, mask, lengths
    return x[:, :n], mask[:, :n], (lengths.clamp(max=n) if lengths is not None else None)


def _canonical(modalities: tuple[str, ...]) -> tuple[str, ...]:
    # Canonical order audio, text, video for the classifier input [A; T; V] (eq. 2).
    return tuple(m for m in MODALITIES if m in modalities)


class HopAttention(nn.Module):
    """One hop (eq. 2): ``a_i = softmax_i(h_i^T (W C + b))``, ``H = sum_i a_i h_i``.

    ``C`` is the concatenation (the paper's fusion ``f``) of the other modalities' current
    summaries; ``W`` maps it to the target's hidden size, which is the bilinear form
    ``C^T W h_i`` of the paper (the authors' code uses the same Luong-style projection).
    """

    def __init__(self, context_dim: int, target_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(context_dim, target_dim)

    def forward(self, context: torch.Tensor, seq: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """context (B, C), seq (B, T, D), mask (B, T) -> (summary (B, D), weights (B, T))."""
        scores = torch.einsum("btd,bd->bt", seq, self.proj(context))
        weights = masked_softmax(scores, mask, dim=-1)
        return torch.einsum("bt,btd->bd", weights, seq), weights


class AMH(nn.Module):
    """Attentive modality hopping over GRU-encoded audio, text and (optionally) video."""

    inputs: tuple[str, ...] = MODALITIES
    name = "amh"

    def __init__(self, config: AMHConfig) -> None:
        super().__init__()
        mods = tuple(config.modalities)
        if len(mods) < 2 or len(set(mods)) != len(mods) or not set(mods) <= set(MODALITIES):
            raise ValueError(f"model {self.name!r}: modalities must be 2 or 3 distinct of {MODALITIES}, got {mods}")
        if config.n_hops < 1:
            raise ValueError(f"model {self.name!r}: n_hops must be >= 1, got {config.n_hops}")
        order = tuple(config.hop_order) if config.hop_order is not None else _DEFAULT_ORDER[frozenset(mods)]
        if not order or not set(order) <= set(mods):
            raise ValueError(f"model {self.name!r}: hop_order {order} must name only modalities in {mods}")
        self.config = config
        self.modalities = _canonical(mods)
        self.inputs = self.modalities
        self.hop_targets = tuple(order[i % len(order)] for i in range(config.n_hops))

        in_dim = {"audio": config.audio_dim, "text": config.text_dim, "video": config.video_dim}
        self.hidden = {"audio": config.audio_hidden, "text": config.text_hidden, "video": config.video_hidden}
        self.encoders = nn.ModuleDict({m: nn.GRU(in_dim[m], self.hidden[m], batch_first=True) for m in self.modalities})
        rates = {"audio": config.audio_dropout, "text": config.text_dropout, "video": config.video_dropout}
        bad = {m: p for m, p in rates.items() if not 0.0 <= p < 1.0}
        if bad:
            raise ValueError(f"model {self.name!r}: dropout rates must be in [0, 1), got {bad}")
        # dropout on each GRU's input features, per modality (the reference's input keep-probabilities)
        self.input_dropout = nn.ModuleDict({m: nn.Dropout(rates[m]) for m in self.modalities})
        c = config
        self.max_steps = {  # the reference's encoder sizes, in steps of this config's frame periods
            "audio": None if c.max_audio_seconds is None else int(round(c.max_audio_seconds / c.audio_frame_seconds)),
            "text": c.max_words,
            "video": None if c.max_video_seconds is None else int(round(c.max_video_seconds / c.video_frame_seconds)),
        }
        if any(n is not None and n < 1 for n in self.max_steps.values()):
            raise ValueError(f"model {self.name!r}: the sequence caps must keep at least one step, got {self.max_steps}")
        # A separate W, b per hop, as in the authors' code (each hop is its own layer).
        self.hops = nn.ModuleList(
            HopAttention(sum(self.hidden[m] for m in self.modalities if m != t), self.hidden[t]) for t in self.hop_targets
        )
        self.embed_dim = sum(self.hidden[m] for m in self.modalities)
        self.classifier = nn.Linear(self.embed_dim, config.n_classes)

    def forward(
        self,
        audio: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        video: torch.Tensor | None = None,
        video_mask: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        text_lengths: torch.Tensor | None = None,
        video_lengths: torch.Tensor | None = None,
        **unused: torch.Tensor,
    ) -> ModelOutput:
        """audio (B, T, audio_dim) frames at 10 ms, text (B, W, text_dim) words, video
        (B, V, video_dim) frames at 3 fps; each mask bool (B, len), True on real positions,
        left-aligned; ``<modality>_lengths`` (B,) optionally on the CPU (see
        :func:`~workbench.models.layers.run_rnn`). Inputs of modalities not in
        ``config.modalities`` are ignored.

        Returns logits (B, n_classes), embeddings (B, sum of hidden sizes) = H_hopN, and one
        attention map per hop, ``hop{k}_{target}`` (B, len of target, at most its cap), weights
        over the target's positions (zero on padding).
        """
        given = {"audio": (audio, audio_mask, audio_lengths), "text": (text, text_mask, text_lengths),
                 "video": (video, video_mask, video_lengths)}
        dims = {"audio": self.config.audio_dim, "text": self.config.text_dim, "video": self.config.video_dim}
        seqs: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        summary: dict[str, torch.Tensor] = {}
        for m in self.modalities:
            x, mask, lengths = given[m]
            mask = check_sequence(self.name, m, x, mask, dims[m], lengths=lengths)
            x, masks[m], lengths = _first(x, mask, lengths, self.max_steps[m])
            h = run_rnn(self.encoders[m], self.input_dropout[m](x), masks[m], lengths)  # (B, T, H), zeros on padding
            # h_last: the state at each row's last real step (eq. 2), not at the padded end.
            last = masks[m].long().sum(1) - 1
            summary[m] = h[torch.arange(h.shape[0], device=h.device), last]
            seqs[m] = h

        attentions: dict[str, torch.Tensor] = {}
        info: dict[str, AttentionInfo] = {}
        for k, (target, hop) in enumerate(zip(self.hop_targets, self.hops), start=1):
            # Context C = f(other summaries), concatenated in canonical order (eqs. 2-5).
            context = torch.cat([summary[m] for m in self.modalities if m != target], dim=-1)
            summary[target], weights = hop(context, seqs[target], masks[target])
            key = f"hop{k}_{target}"
            attentions[key] = weights
            info[key] = self._info(target, k)

        embeddings = torch.cat([summary[m] for m in self.modalities], dim=-1)
        return ModelOutput(self.classifier(embeddings), attentions, info, embeddings)

    def _info(self, target: str, hop: int) -> AttentionInfo:
        if target == "text":
            return AttentionInfo(("batch", "word"), {}, f"hop {hop}: weights over words")
        seconds = self.config.audio_frame_seconds if target == "audio" else self.config.video_frame_seconds
        return AttentionInfo(("batch", "frame"), {"frame": seconds}, f"hop {hop}: weights over {target} frames")


def _reads(default: tuple[str, ...]) -> Any:
    """The card's ``reads``: the modalities the config selects, in the model's order."""

    def reads(config: Mapping[str, Any]) -> tuple[str, ...]:
        return _canonical(tuple(config.get("modalities", default)))

    return reads


CARD = ModelCard(
    inputs={"audio": "mfcc120", "text": "text_static", "video": "visual"},
    recipes={
        # sec. 4.1: 7 classes, 10-fold cross-validation with 8:1:1 train/development/test parts;
        # sec. 4.2: Adam at 1e-3, gradients clipped at norm 1. Batch, epochs and patience: the
        # reference code (module docstring): 10,000 steps of 128 are ~213 epochs of the ~5,990
        # training utterances; 15 checks every 0.3 epochs without a better development score ~ 5 epochs.
        "paper": dict(lr=1e-3, batch_size=128, epochs=213, grad_clip=1.0, protocol="tenfold_811",
                      early_stopping_patience=5, label_scheme="iemocap7",
                      source="Yoon et al. 2020, sec. 4.1-4.2; batch, epochs, patience: the authors' reference code",
                      notes="the reference code stops on development WA, checked every 0.3 epochs, and clips "
                            "each gradient tensor at norm 1; here the development UA, checked every epoch, "
                            "and the global norm; GloVe-300 and ResNet-101 replaced (docs/models.md); the paper "
                            "runs 10 experiments per fold (sec. 4.3): 10 seeds, RunSpec seeds=range(10)"),
    },
    # no n_hops: a run without a variant is the default variant, hops_7, whose n_hops goes on top
    demo=dict(audio_hidden=48, text_hidden=48, video_hidden=32),
    smoke=dict(audio_hidden=24, text_hidden=24, video_hidden=16),
    dims={"audio": "audio_dim", "text": "text_dim", "video": "video_dim"},
    frame_periods={"audio": "audio_frame_seconds", "video": "video_frame_seconds"},
    reads=_reads(MODALITIES),
    variants={
        **{f"hops_{n}": Variant(f"AMH-{n}: {n} hop(s) (Table 2, sec. 4.3)", {"n_hops": n}) for n in range(1, 10)},
        "audio_text": Variant("A+T only: the hopping of AMH over two modalities (Table 1 compares A+T models)",
                              {"modalities": ("audio", "text")}),
    },
    default_variant="hops_7",  # n_hops 7 is the default config: AMH-7, the paper's AMH (Table 1)
)


@register_model(card=CARD)
def amh(**config: object) -> AMH:
    """AMH over audio, text and video (AMH-7 by default).

    >>> m = amh(n_hops=4).eval()
    >>> out = m(audio=torch.randn(2, 50, 120), text=torch.randn(2, 6, 384), video=torch.randn(2, 4, 32))
    >>> out.logits.shape, sorted(out.attentions)
    (torch.Size([2, 4]), ['hop1_video', 'hop2_audio', 'hop3_text', 'hop4_video'])
    """
    return build_from_config(AMH, AMHConfig, "amh", **config)


_AT_DEFAULTS = {"modalities": ("audio", "text"), "n_hops": 2}

# MHA's features may include video: its T+V and A+V rows of Table 1 are variants
_AT_CARD = dataclasses.replace(
    CARD,
    demo=dict(audio_hidden=48, text_hidden=48, video_hidden=32, n_hops=2),
    smoke=dict(audio_hidden=24, text_hidden=24, video_hidden=16, n_hops=2),
    reads=_reads(_AT_DEFAULTS["modalities"]),
    variants={
        "text_video": Variant("MHA over text and video (Table 1, T+V): video attended first",
                              {"modalities": ("text", "video")}),
        "audio_video": Variant("MHA over audio and video (Table 1, A+V): video attended first",
                               {"modalities": ("audio", "video")}),
    },
    default_variant="",  # the default config is MHA over audio and text (Table 1, A+T)
)


@register_model(card=_AT_CARD)
def amh_at(**config: object) -> AMH:
    """Two-modality hopping over audio and text (the MHA model; MHA-2 by default, its best
    setting in Yoon et al. 2019)."""
    config = {**_AT_DEFAULTS, **config}
    model = build_from_config(AMH, AMHConfig, "amh_at", **config)
    model.name = "amh_at"
    return model
