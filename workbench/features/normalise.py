"""Z-normalisation of frame features, applied after the cache loads them.

Normalisation needs statistics of many utterances (the whole corpus, a training fold, or
every utterance of one speaker), so it cannot live inside a per-utterance extractor without
making each cache entry depend on the rest of the corpus. It is a cheap post-processing step
instead, and ``fit_ids`` lets a protocol compute global statistics on training utterances
only, so that test audio does not leak into them.

>>> import numpy as np
>>> from workbench.testing.dummies import make_utterance
>>> from workbench.corpus.manifest import Manifest
>>> m = Manifest([make_utterance(id="Ses01F_impro01_F000"), make_utterance(id="Ses01F_impro01_M000")])
>>> feats = {"Ses01F_impro01_F000": np.array([[1.0], [3.0]]), "Ses01F_impro01_M000": np.array([[10.0], [30.0]])}
>>> out = normalise(feats, m, "speaker")
>>> out["Ses01F_impro01_F000"].ravel().tolist(), out["Ses01F_impro01_M000"].ravel().tolist()
([-1.0, 1.0], [-1.0, 1.0])
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Literal, Mapping

import numpy as np

from workbench.corpus.manifest import Manifest

Mode = Literal["none", "global", "speaker"]


def _stats(arrays: list[np.ndarray], eps: float) -> tuple[np.ndarray, np.ndarray]:
    # Accumulate in float64 over frames: sums of a few million float32 values lose digits.
    n = sum(a.shape[0] for a in arrays)
    s = sum(np.asarray(a, dtype=np.float64).sum(axis=0) for a in arrays)
    mean = s / n
    var = sum(((np.asarray(a, dtype=np.float64) - mean) ** 2).sum(axis=0) for a in arrays) / n
    return mean, np.maximum(np.sqrt(var), eps)


def normalise(
    features: Mapping[str, np.ndarray],
    manifest: Manifest,
    mode: Mode = "global",
    fit_ids: Iterable[str] | None = None,
    eps: float = 1e-8,
) -> dict[str, np.ndarray]:
    """Z-normalise every utterance of ``manifest`` per feature dimension; returns float32 copies.

    ``"global"``: one mean/std over all frames of ``fit_ids`` (default: every utterance).
    ``"speaker"``: each speaker's mean/std over all frames of that speaker's utterances
    (labels are never used, which is why per-speaker statistics on test speakers are the
    usual SER practice); ``fit_ids`` is ignored. ``"none"``: plain float32 copies.
    Constant dimensions (std below ``eps``) become 0.
    """
    if mode not in ("none", "global", "speaker"):
        raise ValueError(f"normalise: mode {mode!r} is not one of none/global/speaker")
    missing = [u.id for u in manifest if u.id not in features]
    if missing:
        raise KeyError(f"normalise: {len(missing)} utterance(s) have no features, e.g. {missing[:3]}")
    if mode == "none":
        return {u.id: np.array(features[u.id], dtype=np.float32) for u in manifest}
    if mode == "global":
        ids = list(fit_ids) if fit_ids is not None else manifest.ids
        if not ids:
            raise ValueError("normalise: fit_ids is empty")
        mean, std = _stats([features[i] for i in ids], eps)
        return {u.id: ((features[u.id] - mean) / std).astype(np.float32) for u in manifest}
    by_speaker: dict[str, list[str]] = defaultdict(list)
    for u in manifest:
        by_speaker[u.speaker].append(u.id)
    out: dict[str, np.ndarray] = {}
    for ids in by_speaker.values():
        mean, std = _stats([features[i] for i in ids], eps)
        for i in ids:
            out[i] = ((features[i] - mean) / std).astype(np.float32)
    return {u.id: out[u.id] for u in manifest}
