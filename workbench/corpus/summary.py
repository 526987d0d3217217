"""Tables that describe a corpus: counts, durations, evaluator agreement, repeated transcripts.

These back the exploration notebook; they read only the manifest.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np
import pandas as pd

from workbench.corpus.manifest import Manifest
from workbench.corpus.text import normalize_text


def counts(manifest: Manifest, by: str | list[str], columns: str | None = "label") -> pd.DataFrame:
    """Utterance counts grouped by manifest field(s), optionally spread over ``columns``.

    Adds a ``total`` column (and row) so shares can be read at a glance.
    """
    df = manifest.to_frame()
    by = [by] if isinstance(by, str) else list(by)
    if columns is None:
        return df.groupby(by).size().rename("utterances").to_frame()
    table = pd.crosstab([df[b] for b in by], df[columns], margins=True, margins_name="total")
    return table


def length_table(manifest: Manifest) -> pd.DataFrame:
    """Per-utterance duration (s) and word count with label, speaker, kind: for histograms."""
    df = manifest.to_frame()
    return pd.DataFrame(
        {
            "id": df["id"],
            "label": df["label"],
            "speaker": df["speaker"],
            "kind": df["kind"],
            "duration": df["duration"].astype(float),
            "words": [len(t.split()) for t in df["text"]],
        }
    )


def fleiss_kappa(ratings: np.ndarray) -> float:
    """Fleiss' kappa from an (items, categories) matrix of rater counts.

    Every item must have the same number of raters.

    >>> # Fleiss (1971) / the standard worked example: 10 items, 14 raters, 5 categories
    >>> m = np.array([[0,0,0,0,14],[0,2,6,4,2],[0,0,3,5,6],[0,3,9,2,0],[2,2,8,1,1],
    ...               [7,7,0,0,0],[3,2,6,3,0],[2,5,3,2,2],[6,5,2,1,0],[0,2,2,3,7]])
    >>> round(fleiss_kappa(m), 3)
    0.21
    """
    ratings = np.asarray(ratings, dtype=float)
    n = ratings.sum(axis=1)
    if ratings.size == 0 or not np.allclose(n, n[0]) or n[0] < 2:
        raise ValueError("fleiss_kappa needs >= 2 raters per item and the same count for every item")
    n = n[0]
    p_j = ratings.sum(axis=0) / ratings.sum()
    p_i = ((ratings**2).sum(axis=1) - n) / (n * (n - 1))
    p_bar, p_e = p_i.mean(), (p_j**2).sum()
    return float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else 1.0


_EXTERNAL = re.compile(r"^C-E\d+$")


def evaluator_agreement(manifest: Manifest) -> dict[str, float]:
    """How much the categorical evaluators agree.

    Uses the first code of each external evaluator (``C-E*``; self-evaluations ``C-F*``/``C-M*``
    are excluded, as in IEMOCAP's majority vote) on utterances rated by the most common number
    of evaluators, so Fleiss' kappa is defined. Also reports the share of utterances with a
    majority label (not ``xxx``) and with unanimous votes.
    """
    votes = [[v[0] for k, v in sorted(u.label_votes.items()) if _EXTERNAL.match(k) and v] for u in manifest]
    if not any(votes):
        raise ValueError("no external evaluator votes (C-E*) in the manifest")
    n_raters = Counter(len(v) for v in votes if v).most_common(1)[0][0]
    rated = [v for v in votes if len(v) == n_raters]
    cats = sorted({c for v in rated for c in v})
    mat = np.array([[v.count(c) for c in cats] for v in rated])
    labels = [u.label for u in manifest]
    return {
        "evaluators": float(n_raters),
        "items": float(len(rated)),
        "fleiss_kappa": fleiss_kappa(mat) if n_raters >= 2 else float("nan"),
        "unanimous_share": float(np.mean([len(set(v)) == 1 for v in rated])),
        "majority_share": float(np.mean([lab != "xxx" for lab in labels])),
    }


def vad_table(manifest: Manifest) -> pd.DataFrame:
    """Valence, arousal, dominance per utterance with its label (rows without V/A/D dropped)."""
    rows = [
        {"id": u.id, "label": u.label, "valence": u.vad[0], "arousal": u.vad[1], "dominance": u.vad[2]}
        for u in manifest
        if u.vad is not None
    ]
    return pd.DataFrame(rows, columns=["id", "label", "valence", "arousal", "dominance"])


def repeated_transcripts(manifest: Manifest, top: int = 20) -> pd.DataFrame:
    """The most repeated (normalised) transcripts and where they occur.

    Repeats across sessions are what leaks into leave-one-session-out test folds.
    """
    where: dict[str, list] = defaultdict(list)
    for u in manifest:
        key = normalize_text(u.text)
        if key:
            where[key].append(u)
    rows = []
    for text, us in where.items():
        if len(us) < 2:
            continue
        rows.append(
            {
                "text": text,
                "count": len(us),
                "sessions": len({u.session for u in us}),
                "speakers": len({u.speaker for u in us}),
                "labels": dict(Counter(u.label for u in us).most_common()),
                "scripts": ",".join(sorted({u.script for u in us if u.script})) or "-",
            }
        )
    cols = ["text", "count", "sessions", "speakers", "labels", "scripts"]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows, columns=cols).sort_values(["count", "sessions", "text"], ascending=[False, False, True])
    return df.head(top).reset_index(drop=True)


def sample_utterances(manifest: Manifest, n: int | None, seed: int = 0) -> Manifest:
    """``n`` utterances drawn at random without replacement (the same ids for the same
    ``seed``), in id order; the whole manifest when ``n`` is None or not smaller than it."""
    if n is None or n >= len(manifest):
        return manifest
    if n < 0:
        raise ValueError(f"sample size must be None or at least 0, got {n}")
    rng = np.random.default_rng(seed)
    return manifest.subset(sorted(rng.choice(manifest.ids, size=n, replace=False)))


def spread_utterances(manifest: Manifest, n: int | None) -> Manifest:
    """``n`` utterances spread evenly over the manifest's order (every k-th, k = len // n), so a
    small sample still covers every session; the whole manifest when ``n`` is None.

    >>> from workbench.testing import make_manifest
    >>> m = make_manifest(sessions=2, seed=0)
    >>> [m.ids.index(i) for i in spread_utterances(m, 4).ids], len(m)
    ([0, 15, 30, 45], 60)
    """
    if n is None:
        return manifest
    if n < 0:
        raise ValueError(f"sample size must be None or at least 0, got {n}")
    return manifest.subset(manifest.ids[:: max(1, len(manifest) // max(n, 1))][:n])
