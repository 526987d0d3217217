"""Multimodal dual recurrent encoder (MDRE), Yoon, Byun and Jung, "Multimodal speech emotion
recognition using audio and text", IEEE SLT 2018, and its extension to video by Yoon et al. 2020.

One GRU per modality; each keeps its last state. The audio recurrent encoder (ARE) appends an
utterance-level prosodic vector to its last state; the text recurrent encoder (TRE) reads word
vectors. The modalities' encodings are each projected by a fully connected layer to half their
size, concatenated and classified by a softmax layer. There is no attention.

Where each part comes from (MDRE's own paper is not on disk):

- From the MDRE paper, as we know it: a GRU over MFCC frames whose last hidden state is
  concatenated with prosodic features (ARE); a GRU over word embeddings (TRE); the two
  encodings concatenated and classified with a softmax layer.
- From the papers that cite it: Yoon et al. 2020 (Table 1, sec. 4.3) run MDRE on A+T, T+V, A+V
  and A+T+V ("multiple RNNs to encode multiple modalities and merge the results using another
  fully connect neural network layer"), under their sec. 4.1-4.2 set-up (MFCC-120, 7 classes,
  10 folds of 8:1:1, Adam 1e-3, clipping at norm 1). Sun et al. 2021 (sec. 3.3) and Xu et al.
  2019 (Tables 1-2, "Concat (Yoon et al., 2018)") describe the same dual-RNN concatenation.
- From the authors' public code (reference, not the papers): 200 GRU units for audio and text
  and 128 for video; dropout on the encoders' inputs with keep probabilities 0.7 (audio,
  video) and 0.3 (text); the per-modality projection to half size with no nonlinearity before
  the output layer; the first 750 audio frames (7.5 s), 128 words and 25 video frames; batch
  size 128; 35 prosodic functionals from openSMILE (mean, standard deviation, linear-regression
  slope, temporal centroid, 10th and 90th percentiles and their range of loudness, F0, log F0,
  voicing probability and harmonics-to-noise ratio).
- Ours: the prosodic vector is computed here, from the frame-level ``prosody36`` descriptors
  (``prosody`` input), as six of those seven functionals of the three contours the workbench
  extracts (pitch, log HNR, loudness): 18 values (``prosody_functionals``). The temporal
  centroid is left out because it divides by the contour's sum, which the z-normalised contours
  make near zero. Word vectors are MiniLM's (the papers train GloVe-300 embeddings); video is
  the ``visual`` descriptors (ResNet-101 features in Yoon et al. 2020). Training uses softmax
  cross-entropy (the 2018 code used a sigmoid cross-entropy; the 2020 code softmax) and the
  trainer's global gradient-norm clipping (the 2020 code clips each tensor's norm).

Attention maps: none. An attention-free model returns an empty ``attentions`` dict (as
``xu_alignment_concat`` and the Pepino models do), which the attention explorer lists as no
maps.

>>> m = mdre(audio_hidden=8, text_hidden=6).eval()
>>> b = {"audio": torch.randn(2, 30, 120), "prosody": torch.randn(2, 30, 36), "text": torch.randn(2, 5, 384)}
>>> out = m(**b)
>>> out.logits.shape, out.embeddings.shape, out.attentions
(torch.Size([2, 4]), torch.Size([2, 16]), {})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn as nn

from workbench.models.card import ModelCard, Variant
from workbench.models.layers import check_sequence, masked_mean, masked_std, run_rnn
from workbench.models.outputs import ModelOutput
from workbench.models.registry import build_from_config, register_model

MODALITIES = ("audio", "text", "video")

#: Yoon et al. 2020's set-up, used by MDRE and by the RNN-attn baselines of their Table 1
#: (``unimodal_*`` variant ``yoon2020``, ``unimodal_video``). From the paper: 7 classes and 10
#: folds of 8:1:1 train/dev/test (sec. 4.1); Adam, learning rate 1e-3, gradients clipped at
#: norm 1 (sec. 4.2). From the AMH reference code (not the paper): batch 128; at most 10,000
#: steps with a dev evaluation every 0.3 epoch, stopping 15 evaluations (about 4.5 epochs)
#: after the best dev WA. Ours: at most 50 epochs, stop 5 epochs after the best dev UA.
YOON2020_RECIPE: dict[str, Any] = dict(
    optimizer="adam", lr=1e-3, batch_size=128, epochs=50, grad_clip=1.0, early_stopping_patience=5,
    protocol="tenfold_811", label_scheme="iemocap7",
    source="Yoon et al. 2020, sec. 4.1-4.2",
    notes="batch 128 from the AMH reference code; epochs and patience are ours (the reference stops about "
          "4.5 epochs after the best dev WA; the trainer stops on dev UA); the dev fold picks the best epoch; "
          "Yoon et al. run 10 experiments per fold (sec. 4.3): 10 seeds, RunSpec seeds=range(10)",
)
#: Per-direction GRU/LSTM sizes and input dropout of the AMH reference code's encoders
#: (``train_reference_script.sh``: hidden 200/200/128, keep probabilities 0.7/0.3/0.7).
YOON2020_HIDDEN: dict[str, int] = {"audio": 200, "text": 200, "video": 128}
YOON2020_DROPOUT: dict[str, float] = {"audio": 0.3, "text": 0.7, "video": 0.3}

# prosody36's columns (workbench.features.prosody.LLD_NAMES): 0 pitch, 3 logHNR, 4 loudness
PROSODY_COLUMNS = (0, 3, 4)
N_FUNCTIONALS = 6


def prosody_functionals(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Utterance-level functionals of frame contours, over real frames only.

    x (B, T, C) contours, mask (B, T) True on real frames -> (B, 6 C): for each contour its
    mean, standard deviation (``sqrt(var + 1e-5)``: finite gradients on a flat contour),
    linear-regression slope over time scaled to [0, 1], 10th and
    90th percentiles (linearly interpolated, as openSMILE's ``Percentiles.interp``) and their
    range. A row of one frame has slope 0 and equal percentiles.

    >>> x = torch.tensor([[[0.0], [1.0], [2.0], [3.0], [99.0]]])
    >>> f = prosody_functionals(x, torch.tensor([[True, True, True, True, False]]))
    >>> [round(v, 3) for v in f[0].tolist()]
    [1.5, 1.118, 3.0, 0.3, 2.7, 2.4]
    """
    m = mask.to(x.dtype)
    n = m.sum(1)  # (B,), device-side: no host read
    mean = masked_mean(x, mask)
    std = masked_std(x, mask)
    t = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)
    tau = t[None, :] / (n - 1).clamp(min=1.0)[:, None] * m  # (B, T) in [0, 1] on real frames
    tau_c = (tau - (tau * m).sum(1, keepdim=True) / n.clamp(min=1.0)[:, None]) * m
    slope = torch.einsum("bt,btc->bc", tau_c, x - mean[:, None]) / (tau_c**2).sum(1).clamp(min=1e-6)[:, None]
    # padding sorts last (the largest float) and is never indexed: positions stay below each
    # row's length (a row without frames reads position 0 and is zeroed below)
    s = x.masked_fill(~mask[..., None], torch.finfo(x.dtype).max).sort(dim=1).values

    def percentile(q: float) -> torch.Tensor:
        pos = q * (n - 1).clamp(min=0.0)
        lo = pos.floor()
        frac = (pos - lo)[:, None]
        lo_i = lo.long()[:, None, None].expand(-1, 1, x.shape[2])
        hi_i = (lo + 1).clamp(max=(n - 1).clamp(min=0.0)).long()[:, None, None].expand(-1, 1, x.shape[2])
        a, b = s.gather(1, lo_i).squeeze(1), s.gather(1, hi_i).squeeze(1)
        return a + frac * (b - a)

    p10, p90 = percentile(0.1), percentile(0.9)
    out = torch.stack([mean, std, slope, p10, p90, p90 - p10], dim=-1)  # (B, C, 6)
    out = out.flatten(1)
    return torch.where((n > 0)[:, None], out, torch.zeros_like(out))


@dataclass
class MDREConfig:
    """Defaults follow Yoon et al. 2020's use of MDRE (audio + text) and the authors' code.

    - ``modalities``: any two or three of audio, text, video (Yoon et al. 2020, Table 1).
    - ``audio_dim`` 120: 40 MFCC + deltas + delta-deltas (Yoon et al. 2020, sec. 4.2; MDRE's
      2018 code used 39-d MFCC). ``text_dim`` 384: MiniLM word vectors for GloVe-300.
      ``video_dim`` 32: the simulated ``visual`` descriptors for ResNet-101's 2048.
    - ``prosody`` True: the ARE appends ``prosody_functionals`` of the ``prosody`` input's
      ``prosody_columns`` (``prosody_dim`` 36: ``prosody36`` frames) to its last state; False
      reads no prosody (ours, for corpora without it).
    - hidden sizes 200 / 200 / 128, unidirectional GRUs, one layer; dropout on each encoder's
      input 0.3 / 0.7 / 0.3: the authors' code (``YOON2020_HIDDEN`` / ``YOON2020_DROPOUT``).
    - ``max_audio_seconds`` 7.5 (750 frames of 10 ms), ``max_words`` 128, ``max_video_seconds``
      25/3 (25 frames at 3 fps): the authors' code reads only the first ones; None reads all.
    - ``n_classes`` 4 for the workbench's default label scheme (the recipe sets 7).
    """

    modalities: tuple[str, ...] = ("audio", "text")
    audio_dim: int = 120
    prosody_dim: int = 36
    text_dim: int = 384
    video_dim: int = 32
    prosody: bool = True
    prosody_columns: tuple[int, ...] = PROSODY_COLUMNS
    audio_hidden: int = YOON2020_HIDDEN["audio"]
    text_hidden: int = YOON2020_HIDDEN["text"]
    video_hidden: int = YOON2020_HIDDEN["video"]
    audio_dropout: float = YOON2020_DROPOUT["audio"]
    text_dropout: float = YOON2020_DROPOUT["text"]
    video_dropout: float = YOON2020_DROPOUT["video"]
    max_audio_seconds: float | None = 7.5
    max_words: int | None = 128
    max_video_seconds: float | None = 25 / 3
    n_classes: int = 4
    audio_frame_seconds: float = 0.01
    video_frame_seconds: float = 1.0 / 3.0


def _canonical(modalities: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(m for m in MODALITIES if m in modalities)


def _reads(modalities: tuple[str, ...], prosody: bool) -> tuple[str, ...]:
    mods = _canonical(modalities)
    extra = ("prosody",) if prosody and "audio" in mods else ()
    return tuple(k for k in ("audio", "prosody", "text", "video") if k in mods + extra)


def _crop(x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor | None, n: int | None):
    """The first ``n`` steps (the authors' encoders read no more); masks and lengths follow."""
    if n is None or x.shape[1] <= n:
        return x, mask, lengths
    return x[:, :n], mask[:, :n], (lengths.clamp(max=n) if lengths is not None else None)


class MDRE(nn.Module):
    """Dual (or triple) recurrent encoder: GRU last states, projected, concatenated, classified."""

    inputs: tuple[str, ...] = ("audio", "prosody", "text")
    name = "mdre"

    def __init__(self, config: MDREConfig) -> None:
        super().__init__()
        mods = tuple(config.modalities)
        if len(mods) < 2 or len(set(mods)) != len(mods) or not set(mods) <= set(MODALITIES):
            raise ValueError(f"model {self.name!r}: modalities must be 2 or 3 distinct of {MODALITIES}, got {mods}")
        cols = tuple(config.prosody_columns)
        if config.prosody and (not cols or min(cols) < 0 or max(cols) >= config.prosody_dim):
            raise ValueError(f"model {self.name!r}: prosody_columns {cols} must index the {config.prosody_dim} "
                             "prosody features (config prosody_dim)")
        self.config = c = config
        self.modalities = _canonical(mods)
        self.inputs = _reads(self.modalities, c.prosody)
        self.use_prosody = "prosody" in self.inputs
        dims = {"audio": c.audio_dim, "text": c.text_dim, "video": c.video_dim}
        hidden = {"audio": c.audio_hidden, "text": c.text_hidden, "video": c.video_hidden}
        drop = {"audio": c.audio_dropout, "text": c.text_dropout, "video": c.video_dropout}
        self.encoders = nn.ModuleDict({m: nn.GRU(dims[m], hidden[m], batch_first=True) for m in self.modalities})
        self.input_dropout = nn.ModuleDict({m: nn.Dropout(drop[m]) for m in self.modalities})
        self.register_buffer("prosody_index", torch.tensor(cols, dtype=torch.long), persistent=False)
        enc = {m: hidden[m] for m in self.modalities}
        if self.use_prosody:
            enc["audio"] += N_FUNCTIONALS * len(cols)  # e = [h_last; p]
        # the authors' code: each encoding -> half its size, no nonlinearity, then the output layer
        self.project = nn.ModuleDict({m: nn.Linear(enc[m], enc[m] // 2) for m in self.modalities})
        self.embed_dim = sum(enc[m] // 2 for m in self.modalities)
        self.classifier = nn.Linear(self.embed_dim, c.n_classes)

    def forward(self, **inputs: torch.Tensor) -> ModelOutput:
        """``audio`` (B, T, audio_dim) frames at ``audio_frame_seconds``, ``prosody`` (B, P,
        prosody_dim) prosodic frames, ``text`` (B, W, text_dim) words, ``video`` (B, V,
        video_dim) frames, each with ``<input>_mask`` (B, len) True on real positions and
        optionally ``<input>_lengths`` (B,) on the CPU (see
        :func:`~workbench.models.layers.run_rnn`); inputs the config does not read are ignored.

        Returns logits (B, n_classes), embeddings (B, embed_dim) = the concatenated projections
        (the input of the softmax layer) and no attention maps."""
        c = self.config
        dims = {"audio": c.audio_dim, "text": c.text_dim, "video": c.video_dim}
        limit = {
            "audio": None if c.max_audio_seconds is None else int(round(c.max_audio_seconds / c.audio_frame_seconds)),
            "text": c.max_words,
            "video": None if c.max_video_seconds is None else int(round(c.max_video_seconds / c.video_frame_seconds)),
        }
        parts = []
        for m in self.modalities:
            x, lengths = inputs.get(m), inputs.get(f"{m}_lengths")
            mask = check_sequence(self.name, m, x, inputs.get(f"{m}_mask"), dims[m], lengths=lengths)
            x, mask, lengths = _crop(x, mask, lengths, limit[m])
            x = self.input_dropout[m](x.masked_fill(~mask[..., None], 0.0))
            h = run_rnn(self.encoders[m], x, mask, lengths)  # (B, T, H), zeros on padding
            last = mask.long().sum(1).clamp(min=1) - 1  # each row's last real step, not the padded end
            e = h[torch.arange(h.shape[0], device=h.device), last]
            if m == "audio" and self.use_prosody:
                e = torch.cat([e, self._prosody(inputs)], dim=-1)
            parts.append(self.project[m](e))
        embeddings = torch.cat(parts, dim=-1)
        return ModelOutput(self.classifier(embeddings), {}, {}, embeddings)

    def _prosody(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        c = self.config
        x = inputs.get("prosody")
        mask = check_sequence(self.name, "prosody", x, inputs.get("prosody_mask"), c.prosody_dim,
                              lengths=inputs.get("prosody_lengths"))
        contours = x.index_select(-1, self.prosody_index).masked_fill(~mask[..., None], 0.0)
        return prosody_functionals(contours, mask)


def _reads_of(default: tuple[str, ...]) -> Any:
    def reads(config: Mapping[str, Any]) -> tuple[str, ...]:
        return _reads(tuple(config.get("modalities", default)), bool(config.get("prosody", True)))

    return reads


def _variant(mods: tuple[str, ...], row: str) -> Variant:
    return Variant(f"MDRE over {row} (Yoon et al. 2020, Table 1, MDRE [9] {row})", {"modalities": mods})


CARD = ModelCard(
    inputs={"audio": "mfcc120", "prosody": "prosody36", "text": "text_static", "video": "visual"},
    recipes={"paper": YOON2020_RECIPE},
    demo=dict(audio_hidden=48, text_hidden=48, video_hidden=32),
    smoke=dict(audio_hidden=24, text_hidden=24, video_hidden=16),
    dims={"audio": "audio_dim", "prosody": "prosody_dim", "text": "text_dim", "video": "video_dim"},
    frame_periods={"audio": "audio_frame_seconds", "video": "video_frame_seconds"},
    reads=_reads_of(("audio", "text")),
    variants={
        "text_video": _variant(("text", "video"), "T+V"),
        "audio_video": _variant(("audio", "video"), "A+V"),
        "audio_text_video": _variant(("audio", "text", "video"), "A+T+V"),
    },
)


@register_model(card=CARD)
def mdre(**config: Any) -> MDRE:
    """MDRE over audio (with prosody) and text; the variants add video or drop a modality."""
    return build_from_config(MDRE, MDREConfig, "mdre", **config)


__all__ = ["MDRE", "MDREConfig", "YOON2020_RECIPE", "mdre", "prosody_functionals"]
