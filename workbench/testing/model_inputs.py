"""Random padded model inputs, so one registry-driven test can feed every model.

Every model class names what it reads in a class attribute ``inputs`` (e.g.
``("audio", "text")``, ``("waveform", "text")``, ``("audio", "text", "word_spans")``) and keeps
its dataclass config in ``model.config`` with the fields ``audio_dim``, ``text_dim``,
``video_dim``, ``prosody_dim`` (those it uses) and ``n_classes``. :func:`batch_for_model` reads both.

Keys follow ``workbench.models.outputs``: ``audio``/``audio_mask`` (B, T, F) / (B, T),
``text``/``text_mask``, ``video``/``video_mask``, ``prosody``/``prosody_mask`` (B, T, P),
``waveform``/``waveform_mask`` (B, S) / (B, S),
``word_spans`` (B, W, 2). Padding is filled with large noise (not zeros) so a model that
lets padding leak into its output fails the tests.

>>> b = random_batch(("audio", "text", "word_spans"), batch=2, audio_dim=3, text_dim=5, seed=0)
>>> sorted(b)
['audio', 'audio_mask', 'text', 'text_mask', 'word_spans']
>>> b["audio"].shape[-1], b["text"].shape[-1], b["word_spans"].shape[-1]
(3, 5, 2)
>>> bool((b["word_spans"][..., 1] <= b["audio_mask"].sum(1)[:, None]).all())
True
"""

from __future__ import annotations

import torch

from workbench.models.card import SEQUENCE_INPUTS
from workbench.models.layers import lengths_from_mask

__all__ = ["SEQUENCE_INPUTS", "batch_for_model", "pad_more", "random_batch", "with_host_lengths"]


_DEFAULT_LENGTHS = {"audio": (20, 60), "text": (3, 10), "video": (5, 15), "waveform": (4000, 16000), "prosody": (20, 60)}
_PAD_NOISE = 50.0


def random_batch(
    inputs: tuple[str, ...],
    batch: int = 4,
    *,
    audio_dim: int = 120,
    text_dim: int = 384,
    video_dim: int = 32,
    prosody_dim: int = 36,
    seed: int = 0,
    lengths: dict[str, tuple[int, int]] | None = None,
    labels: torch.Tensor | None = None,
    class_signal: float = 0.0,
    n_classes: int = 4,
) -> dict[str, torch.Tensor]:
    """Build a padded batch for the named ``inputs``.

    ``lengths`` maps an input to its (min, max) real length (defaults above); the first row
    always has the maximum length so the padded length is deterministic. With ``labels``
    (B,) and ``class_signal > 0`` a fixed per-class pattern of that amplitude is added to
    every real position of every input, so a model can learn the labels from any modality.
    ``word_spans`` are [first, last) audio frames splitting each row's real frames evenly
    among its real words (needs "audio" and "text").
    """
    unknown = set(inputs) - set(SEQUENCE_INPUTS) - {"word_spans"}
    if unknown:
        raise ValueError(f"random_batch: unknown inputs {sorted(unknown)}")
    g = torch.Generator().manual_seed(seed)
    lens = {**_DEFAULT_LENGTHS, **(lengths or {})}
    dims = {"audio": audio_dim, "text": text_dim, "video": video_dim, "waveform": None, "prosody": prosody_dim}
    out: dict[str, torch.Tensor] = {}
    for name in SEQUENCE_INPUTS:
        if name not in inputs:
            continue
        lo, hi = lens[name]
        n = torch.randint(lo, hi + 1, (batch,), generator=g)
        n[0] = hi
        shape = (batch, hi) if dims[name] is None else (batch, hi, dims[name])
        x = torch.randn(shape, generator=g)
        mask = torch.arange(hi)[None, :] < n[:, None]
        if labels is not None and class_signal > 0:
            pattern_shape = (n_classes,) if dims[name] is None else (n_classes, dims[name])
            patterns = torch.randn(pattern_shape, generator=torch.Generator().manual_seed(1000 + len(name)))
            p = patterns[labels]
            x = x + class_signal * (p[:, None] if dims[name] is None else p[:, None, :])
        m = mask if dims[name] is None else mask[..., None]
        x = torch.where(m, x, _PAD_NOISE * torch.randn(shape, generator=g))
        out[name], out[f"{name}_mask"] = x, mask
    if "word_spans" in inputs:
        if "audio" not in out or "text" not in out:
            raise ValueError("random_batch: word_spans needs both 'audio' and 'text' inputs")
        out["word_spans"] = _even_spans(out["audio_mask"].sum(1), out["text_mask"].sum(1), out["text"].shape[1])
    return out


def _even_spans(frames: torch.Tensor, words: torch.Tensor, max_words: int) -> torch.Tensor:
    """(B, W, 2) spans cutting ``frames[b]`` into ``words[b]`` contiguous non-empty pieces
    (needs frames >= words); padded words get the span [0, 0)."""
    spans = torch.zeros(len(frames), max_words, 2, dtype=torch.long)
    for b, (t, w) in enumerate(zip(frames.tolist(), words.tolist())):
        if t < w:
            raise ValueError(f"random_batch: row {b} has {t} frames for {w} words")
        edges = torch.linspace(0, t, w + 1).round().long()
        spans[b, :w, 0], spans[b, :w, 1] = edges[:-1], edges[1:]
    return spans


def pad_more(batch: dict[str, torch.Tensor], extra: int, seed: int = 1) -> dict[str, torch.Tensor]:
    """Append ``extra`` padded positions (filled with large noise, mask False) to every
    sequence input; other entries are unchanged. A model that respects masks gives the same
    output on both batches."""
    g = torch.Generator().manual_seed(seed)
    out = dict(batch)
    for name in SEQUENCE_INPUTS:
        if name not in batch:
            continue
        x, mask = batch[name], batch[f"{name}_mask"]
        noise = _PAD_NOISE * torch.randn((x.shape[0], extra, *x.shape[2:]), generator=g, dtype=x.dtype)
        out[name] = torch.cat([x, noise], dim=1)
        out[f"{name}_mask"] = torch.cat([mask, torch.zeros(mask.shape[0], extra, dtype=torch.bool)], dim=1)
    if "word_spans" in batch and "text" in batch:  # padded words get the empty span [0, 0)
        spans = batch["word_spans"]
        out["word_spans"] = torch.cat([spans, spans.new_zeros(spans.shape[0], extra, 2)], dim=1)
    return out


def with_host_lengths(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``batch`` plus ``<input>_lengths`` (B,) on the CPU, the mask's row sums, as
    ``workbench.training.data.collate`` adds them."""
    out = dict(batch)
    for name in SEQUENCE_INPUTS:
        if f"{name}_mask" in batch:
            out[f"{name}_lengths"] = lengths_from_mask(batch[f"{name}_mask"]).cpu()
    return out


def batch_for_model(model: torch.nn.Module, batch: int = 4, seed: int = 0, **kwargs) -> dict[str, torch.Tensor]:
    """``random_batch`` for ``model.inputs`` with the feature sizes of ``model.config``."""
    cfg = model.config
    dims = {k: getattr(cfg, k) for k in ("audio_dim", "text_dim", "video_dim", "prosody_dim") if hasattr(cfg, k)}
    return random_batch(tuple(model.inputs), batch, seed=seed, n_classes=cfg.n_classes, **dims, **kwargs)
