"""Summaries of extracted features for looking at them (notebook 03): a feature column's
trajectory over normalised time averaged per label, and each utterance's mean over its steps
projected to two dimensions.

Inputs are any mapping utterance id -> array (steps, dim): a
:class:`~workbench.features.base.FeatureSet` from the cache, or a plain dict.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.corpus.manifest import Manifest, Utterance
from workbench.features.normalise import normalise

#: The trajectories notebook 03 draws: name -> (extractor, column, voiced frames only).
#: ``prosody36`` column 0 is F0 in Hz (0 where unvoiced); ``frame34`` column 1 is energy.
PITCH_ENERGY: dict[str, tuple[str, int, bool]] = {
    "pitch (Hz)": ("prosody36", 0, True),
    "energy (frame34)": ("frame34", 1, False),
}
#: Frame-level acoustic extractors whose means are dominated by the speaker unless
#: z-normalised per speaker first.
PER_SPEAKER: tuple[str, ...] = ("mfcc120", "frame34", "prosody36")


def trajectories(features: Mapping[str, np.ndarray], manifest: Manifest, column: int, points: int = 50,
                 voiced_only: bool = False) -> pd.DataFrame:
    """Mean trajectory of one feature column per label: each utterance's column sampled at
    ``points`` evenly spaced steps (nearest step; ``t`` from 0 to 1), then averaged over the
    utterances of each label at each ``t``. With ``voiced_only`` values <= 0 (unvoiced pitch)
    are left out of the means. Utterances with fewer than 2 steps (or no voiced step) are
    skipped. Columns ``label, t, value``."""
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    rows = []
    t = np.linspace(0.0, 1.0, points)
    for u in manifest:
        x = np.asarray(features[u.id], dtype=float)[:, column]
        if voiced_only:
            x = np.where(x > 0, x, np.nan)
        if len(x) < 2 or np.all(np.isnan(x)):
            continue
        idx = np.round(np.linspace(0, len(x) - 1, points)).astype(int)
        rows.append(pd.DataFrame({"label": u.label, "t": t, "value": x[idx]}))
    if not rows:
        return pd.DataFrame(columns=["label", "t", "value"])
    return pd.concat(rows, ignore_index=True).groupby(["label", "t"], as_index=False)["value"].mean()


def label_trajectories(features: Mapping[str, Mapping[str, np.ndarray]], manifest: Manifest,
                       which: Mapping[str, tuple[str, int, bool]] = PITCH_ENERGY, points: int = 50) -> pd.DataFrame:
    """:func:`trajectories` of each entry of ``which`` (name -> (extractor, column, voiced
    only)) whose extractor is in ``features``, stacked with a ``feature`` column (its name)."""
    parts = [trajectories(features[ext], manifest, col, points, voiced).assign(feature=name)
             for name, (ext, col, voiced) in which.items() if ext in features]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["label", "t", "value", "feature"])


def utterance_means(features: Mapping[str, np.ndarray], manifest: Manifest,
                    per_speaker: bool = False) -> tuple[list[Utterance], np.ndarray]:
    """Each utterance's mean over its steps (frames or words), as ``(utterances, array (n, dim))``;
    with ``per_speaker`` the features are z-normalised per speaker first
    (:func:`~workbench.features.normalise.normalise`). Utterances with no step (an empty
    transcript has no words) are left out."""
    arrays = normalise(features, manifest, "speaker") if per_speaker else features
    keep = [u for u in manifest if len(arrays[u.id]) > 0]
    if not keep:
        return [], np.zeros((0, 0))
    return keep, np.stack([np.asarray(arrays[u.id], dtype=float).mean(0) for u in keep])


def project_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The first two principal components of ``x`` (n, dim) after standardising each column."""
    from sklearn.decomposition import PCA

    z = (x - x.mean(0)) / (x.std(0) + 1e-8)
    return PCA(n_components=2, random_state=seed).fit_transform(z)


def embedding_projection(features: Mapping[str, Mapping[str, np.ndarray]], manifest: Manifest,
                         names: Sequence[str] = ("mfcc120", "prosody36", "text_contextual", "text_static"),
                         per_speaker: Sequence[str] = PER_SPEAKER, seed: int = 0) -> pd.DataFrame:
    """For each of ``names`` in ``features``: every utterance's mean (:func:`utterance_means`,
    per-speaker normalised for the extractors in ``per_speaker``) projected to two dimensions
    (:func:`project_2d`). Columns ``feature, id, label, speaker, pc1, pc2``."""
    frames = []
    for name in (n for n in names if n in features):
        keep, x = utterance_means(features[name], manifest, per_speaker=name in per_speaker)
        if len(keep) < 2:
            continue
        xy = project_2d(x, seed)
        frames.append(pd.DataFrame({"feature": name, "id": [u.id for u in keep], "label": [u.label for u in keep],
                                    "speaker": [u.speaker for u in keep], "pc1": xy[:, 0], "pc2": xy[:, 1]}))
    cols = ["feature", "id", "label", "speaker", "pc1", "pc2"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
