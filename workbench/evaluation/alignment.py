"""How well a word-by-frame attention map agrees with the true word timing.

Xu et al. (2019) argue that their learned word-to-frame alignment serves emotion better than
forced alignment; these measures show how much it actually looks like an alignment. For every
word with a reference span ``[a, b)`` (from .wdseg files or another timing source) and its
attention row ``w`` over frames of period ``s`` (frame i covers ``[i s, (i + 1) s)``):

- ``mass_in_span``: share of the row's mass inside ``[a, b)``; a frame only partly inside
  counts with the part inside (so coarse, downsampled frames are scored fairly);
- ``mass_in_tolerance``: the same for ``[a - tol, b + tol)`` (default tol 0.1 s);
- ``peak_in_span``: whether the highest-weight frame's centre lies in ``[a, b)``; ties share
  the credit (the share of tied frames inside), so a flat map scores its expected value;
- ``span_share``: ``(b - a)`` over the map's duration: what a uniform map would get for
  ``mass_in_span``, the chance level to compare with.

Baselines scored the same way: a ``uniform`` map (every frame equal) and the ``forced`` map
(uniform over each word's span from forced alignment, i.e. the hard alignment a model would
get from pocketsphinx). :func:`agreement_table` averages over words (pooled) or over
utterances (mean of per-utterance means), per method and optionally per emotion.

>>> w = np.array([[0.0, 0.8, 0.2, 0.0]])  # one word, four 0.1 s frames
>>> s = word_scores(w, [(0.1, 0.2)], frame_seconds=0.1, tolerance=0.1)
>>> s[["mass_in_span", "mass_in_tolerance", "peak_in_span", "span_share"]].round(3).values.tolist()
[[0.8, 1.0, 1.0, 0.25]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.corpus.manifest import Manifest
from workbench.features.words import match_word_timings

Span = tuple[float, float]
SCORE_COLUMNS = ["word_index", "word", "ref_start", "ref_end", "mass_in_span", "mass_in_tolerance",
                 "peak_in_span", "span_share"]
METRICS = ["mass_in_span", "mass_in_tolerance", "peak_in_span", "span_share"]


def frame_overlap(n_frames: int, frame_seconds: float, span: Span) -> np.ndarray:
    """(n_frames,) share of each frame ``[i s, (i + 1) s)`` lying inside ``span`` (0-1).

    >>> frame_overlap(4, 0.1, (0.05, 0.2)).round(3).tolist()
    [0.5, 1.0, 0.0, 0.0]
    """
    starts = np.arange(n_frames) * frame_seconds
    inside = np.minimum(starts + frame_seconds, span[1]) - np.maximum(starts, span[0])
    return np.clip(inside / frame_seconds, 0.0, 1.0)


def word_scores(weights: np.ndarray, spans: Sequence[Span | None], frame_seconds: float,
                tolerance: float = 0.1, words: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-word agreement of a (W, T) map with reference ``spans`` (one (start_s, end_s) or
    None per row); rows without a span, or with no mass, are left out. Columns
    :data:`SCORE_COLUMNS`."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(f"weights must be (words, frames), got shape {weights.shape}")
    if len(spans) != weights.shape[0]:
        raise ValueError(f"{len(spans)} spans for a map with {weights.shape[0]} word rows")
    n_frames = weights.shape[1]
    duration = n_frames * frame_seconds
    centres = (np.arange(n_frames) + 0.5) * frame_seconds
    rows = []
    for i, span in enumerate(spans):
        if span is None:
            continue
        row = np.clip(weights[i], 0.0, None)
        total = row.sum()
        if total <= 0:
            continue
        row = row / total
        a, b = float(span[0]), float(span[1])
        peaks = np.flatnonzero(row >= row.max() * (1 - 1e-9))
        rows.append(dict(
            word_index=i, word=words[i] if words is not None else "", ref_start=a, ref_end=b,
            mass_in_span=float(row @ frame_overlap(n_frames, frame_seconds, (a, b))),
            mass_in_tolerance=float(row @ frame_overlap(n_frames, frame_seconds, (a - tolerance, b + tolerance))),
            peak_in_span=float(np.mean((centres[peaks] >= a) & (centres[peaks] < b))),
            span_share=float(np.clip(min(b, duration) - max(a, 0.0), 0.0, None) / duration),
        ))
    df = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    return df.astype({c: float for c in METRICS + ["ref_start", "ref_end"]}).astype({"word_index": int})


def uniform_map(n_words: int, n_frames: int) -> np.ndarray:
    """(n_words, n_frames) map with equal weight on every frame (the no-alignment baseline)."""
    return np.full((n_words, n_frames), 1.0 / n_frames)


def span_map(spans: Sequence[Span | None], n_frames: int, frame_seconds: float) -> np.ndarray:
    """(W, n_frames) hard-alignment map: row i spreads its mass evenly over span i (frames
    partly inside weighted by the part inside). A word without a span, or with a span outside
    the frames, gets a uniform row (the aligner told us nothing about it).

    >>> span_map([(0.0, 0.2), None], 4, 0.1).round(2).tolist()
    [[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]]
    """
    out = np.empty((len(spans), n_frames))
    for i, span in enumerate(spans):
        row = frame_overlap(n_frames, frame_seconds, span) if span is not None else np.zeros(n_frames)
        out[i] = row / row.sum() if row.sum() > 0 else 1.0 / n_frames
    return out


def reference_spans(words: Sequence[str], timings: Sequence[tuple[str, float, float]] | None) -> list[Span | None]:
    """True span of each of ``words`` (the words a model saw) from reference ``timings``
    (the corpus's ``Utterance.words``; for an utterance carrying ASR text
    :func:`workbench.training.texts.reference_timings`, not the recogniser's own timings):
    matched in order, no interpolation, so ASR words that do not match a reference word get
    None and are not scored."""
    return match_word_timings(list(words), timings, interpolate=False)


def utterance_scores(
    maps: Mapping[str, np.ndarray],
    words: Sequence[str],
    timings: Sequence[tuple[str, float, float]] | None,
    frame_seconds: float,
    forced: Sequence[Span | None] | None = None,
    tolerance: float = 0.1,
    uniform: bool = True,
) -> pd.DataFrame:
    """Scores of every method for one utterance: each of ``maps`` (method -> (W, T)), plus
    ``uniform`` and (with ``forced`` spans, one per word) ``forced``, all on the time grid of
    the first map. Adds a ``method`` column to :func:`word_scores`' columns."""
    if not maps:
        raise ValueError("utterance_scores: no maps given")
    first = next(iter(maps.values()))
    n_words, n_frames = np.shape(first)
    if len(words) != n_words:
        raise ValueError(f"{len(words)} words for maps with {n_words} rows")
    spans = reference_spans(words, timings)
    all_maps = dict(maps)
    if uniform:
        all_maps["uniform"] = uniform_map(n_words, n_frames)
    if forced is not None:
        if len(forced) != n_words:
            raise ValueError(f"{len(forced)} forced spans for {n_words} words")
        all_maps["forced"] = span_map(forced, n_frames, frame_seconds)
    parts = []
    for method, w in all_maps.items():
        if np.shape(w) != (n_words, n_frames):
            raise ValueError(f"map {method!r} has shape {np.shape(w)}, expected {(n_words, n_frames)}")
        df = word_scores(w, spans, frame_seconds, tolerance, words)
        df.insert(0, "method", method)
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def agreement_table(scores: pd.DataFrame, by: Sequence[str] = ("method",), level: str = "word") -> pd.DataFrame:
    """Mean scores per group of ``by`` (e.g. ``("method",)`` or ``("method", "label")``).

    ``scores`` are :func:`utterance_scores` rows with an ``id`` column (and ``label`` for a
    per-emotion breakdown). ``level="word"`` pools all words; ``"utterance"`` first averages
    each utterance's words, so long utterances do not dominate. Columns: ``by``, ``n_utts``,
    ``n_words`` and the :data:`METRICS`.
    """
    if level not in ("word", "utterance"):
        raise ValueError(f"level must be 'word' or 'utterance', got {level!r}")
    by = list(by)
    missing = [c for c in by + ["id"] if c not in scores.columns]
    if missing:
        raise ValueError(f"scores lack column(s) {missing}")
    counts = scores.groupby(by, sort=False).agg(n_utts=("id", "nunique"), n_words=("id", "size"))
    scores = scores.astype({c: float for c in METRICS})
    data = scores if level == "word" else scores.groupby(by + ["id"], sort=False)[METRICS].mean().reset_index()
    means = data.groupby(by, sort=False)[METRICS].mean()
    return counts.join(means).reset_index()


def forced_spans(manifest: Manifest, cache_path: str | Path | None = None, n_jobs: int = 1,
                 progress: bool = False) -> dict[str, list[Span]]:
    """Forced-alignment spans of each utterance's ``text`` (one per word of ``split_words``),
    from :func:`workbench.features.align.align_manifest` (pocketsphinx; cached at
    ``cache_path``). Utterances whose alignment fell back to splitting the voiced region keep
    those spans (the hard alignment a model would get); the method is in the align table."""
    from workbench.features.align import align_manifest

    table = align_manifest(manifest, n_jobs=n_jobs, progress=progress, cache_path=cache_path)
    return {r.id: [(float(s), float(e)) for _, s, e in r.words] for r in table.itertuples()}
