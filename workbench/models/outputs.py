"""What every model returns, so training, evaluation and the attention viewer need no special cases.

Input convention (keyword arguments of every model's ``forward``; a model takes the ones it
needs and raises a clear error when one is missing):

- ``audio``      float (B, T, F) frame features (e.g. MFCC-120 at 100 frames/s),
  ``audio_mask`` bool (B, T), True on real frames;
- ``waveform``   float (B, S) raw 16 kHz samples, ``waveform_mask`` bool (B, S);
- ``text``       float (B, W, E) word embeddings, ``text_mask`` bool (B, W);
- ``video``      float (B, V, D) visual descriptors, ``video_mask`` bool (B, V);
- ``word_spans`` long (B, W, 2) [first, last) audio frame of each word (hard alignment).

Masks are True where the position is real and False on padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class AttentionInfo:
    """How to read one attention map.

    ``axes`` names every dimension, e.g. ``("batch", "head", "word", "frame")``.
    ``frame_seconds`` maps index i of each time axis to seconds: position i covers
    ``[i * s, (i + 1) * s)`` where s is the value for that axis (None for non-time axes such
    as words). It includes any downsampling (conv strides, pooling) inside the model.
    """

    axes: tuple[str, ...]
    frame_seconds: dict[str, float] = field(default_factory=dict)
    description: str = ""


@dataclass
class ModelOutput:
    """``logits`` (B, C); ``attentions`` named maps (see ``attention_info``); ``embeddings``
    (B, D) the representation fed to the classifier, for projections and probes."""

    logits: torch.Tensor
    attentions: dict[str, torch.Tensor] = field(default_factory=dict)
    attention_info: dict[str, AttentionInfo] = field(default_factory=dict)
    embeddings: torch.Tensor | None = None
