"""A fold's model inputs: the one path from cached features to the datasets a model sees.

Cross-validation, training bundles, the training benchmark and the attention explorer all go
through here, so nothing else re-derives inputs:

1. :func:`load_input_features` reads (extracting what is missing) each model input's features
   from the feature cache and pools frames as the recipe says (:class:`InputFeatures`);
2. :func:`fold_datasets` picks the fold's (possibly subsampled) training ids, fits one
   :class:`~workbench.features.normalise.Normaliser` per input (global statistics on the
   training ids, per-speaker statistics on each speaker's utterances of the fold; first
   differences appended after normalising where the spec says ``deltas``) and builds the
   train / validation / test :class:`~workbench.training.data.SERDataset`;
3. the fitted normalisers are saved in the run directory (``normalisation.npz``) and
   :func:`workbench.training.runs.load_run` applies them again, so a reloaded model sees the
   inputs it was evaluated on, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.corpus.manifest import Manifest
from workbench.errors import WorkbenchError
from workbench.features.normalise import Normaliser, fit_normaliser
from workbench.protocols import Fold
from workbench.training.data import SERDataset, pool_frames
from workbench.training.recipes import FeatureSpec, Recipe

#: Model inputs that are not features (word spans come from the manifest's word timings).
NON_FEATURE_INPUTS = ("word_spans",)


class InputError(WorkbenchError, ValueError):
    """A model input has no features, or features that cannot be used; the message names the
    input, the utterances and what to do."""


@dataclass
class InputFeatures:
    """Features of one model input for a whole manifest, after pooling (not yet normalised).
    ``dim`` is the size the model reads: twice the stored arrays' with ``spec.deltas``.
    ``n_layers``: equal blocks each frame concatenates (encoder layers of ``ssl_layers``; 1 else)."""

    spec: FeatureSpec
    data: Mapping[str, np.ndarray]
    frame_seconds: float | None
    dim: int
    valid_lengths: Mapping[str, int] | None = None
    skipped: Mapping[str, str] = field(default_factory=dict)  # id -> why extraction skipped it
    n_layers: int = 1


def check_extractors_ready(model: str, recipe: Recipe, inputs: Sequence[str]) -> None:
    """Refuse, before any corpus is generated or feature extracted, an input whose extractor
    needs a checkpoint the recipe does not name, or names one that is not on this machine
    (:class:`~workbench.features.checkpoints.CheckpointError`, naming it and how to provide it)."""
    from workbench.features.base import extractor_class
    from workbench.features.checkpoints import checkpoint_path

    for name in inputs:
        spec = recipe.features.get(name)
        if spec is None:
            continue
        checkpoint = str(spec.config.get("checkpoint") or "")
        try:
            cls = extractor_class(spec.extractor)
        except ValueError:  # not registered here: a cache of the caller's serves it, and says so itself
            continue
        if cls.needs_checkpoint and not checkpoint:
            option = "speech_encoder (--speech-encoder)" if cls.source == "audio" else "text_encoder (--text-encoder)"
            raise InputError(f"model {model!r}: its {name} input ({spec.extractor}) runs an encoder the workbench does "
                             f"not ship; give your checkpoint with {option} (docs/encoders.md)")
        if checkpoint:
            checkpoint_path(checkpoint)


def load_input_features(manifest: Manifest, recipe: Recipe, inputs: Sequence[str], cache: Any = None,
                        progress: bool = True, memo: dict | None = None) -> dict[str, InputFeatures]:
    """Read (extracting what is missing) the features of every model input from the cache.

    ``memo`` (a dict the caller keeps) hands back the same :class:`InputFeatures` object for
    the same feature spec, cache and manifest (ids and text), so several conditions of a ledger
    held in memory at once share one copy, and a pickle of all of them (a worker's start) holds
    it once."""
    from workbench.features.base import get_extractor
    from workbench.features.cache import FeatureCache

    cache = cache if cache is not None else FeatureCache()
    out: dict[str, InputFeatures] = {}
    for name in inputs:
        if name in NON_FEATURE_INPUTS:
            continue
        if name not in recipe.features:
            raise InputError(f"recipe {recipe.name!r} of model {recipe.model!r} names no feature extractor for "
                             f"input {name!r}; it has {sorted(recipe.features)}")
        spec = recipe.features[name]
        key = None
        if memo is not None:
            key = (str(getattr(cache, "root", "")), json.dumps(spec.to_dict(), sort_keys=True, default=str),
                   name == "waveform", _manifest_key(manifest))
            if key in memo:
                out[name] = memo[key]
                continue
        ext = get_extractor(spec.extractor, **spec.config)
        fs = cache.get(ext, manifest, progress=progress)
        valid = {i: int(v) for i, v in zip(fs.ids, fs.valid_lengths)} if name == "waveform" else None
        data = fs if name == "waveform" else _unpadded(fs)
        dim = fs.dim * 2 if spec.deltas else fs.dim  # deltas are appended after normalisation
        layers = int(getattr(ext, "n_layers", 1)) * (2 if spec.deltas else 1)
        out[name] = _pooled(InputFeatures(spec, data, fs.frame_seconds, dim, valid, fs.skipped, layers))
        if key is not None:
            memo[key] = out[name]
    return out


def _manifest_key(manifest: Manifest) -> str:
    """A digest of the utterance ids and texts (the text features depend on the text read)."""
    digest = hashlib.sha1()
    for u in manifest:
        digest.update(f"{u.id}\t{u.text}\n".encode())
    return digest.hexdigest()


def _unpadded(fs: Any) -> Mapping[str, np.ndarray]:
    """A feature set without the frames its extractor padded (``valid_lengths`` below
    ``lengths``: the spectrogram padded to 10 s), cut here so that pooling, normalisation
    statistics and the model see real frames only, as the waveform's padding is cut by
    :class:`SERDataset`; the batch mask stands for the padding."""
    if np.array_equal(fs.valid_lengths, fs.lengths):
        return fs
    return {i: fs[i][: int(v)] for i, v in zip(fs.ids, fs.valid_lengths) if i not in fs.skipped}


def _pooled(f: InputFeatures) -> InputFeatures:
    k = f.spec.pool
    if k <= 1:
        return f
    if f.frame_seconds is None:
        raise InputError(f"feature {f.spec.extractor!r} has word steps; pool={k} applies to frames only")
    data = {i: pool_frames(np.asarray(a), k) for i, a in f.data.items()}
    return InputFeatures(f.spec, data, f.frame_seconds * k, f.dim, None, f.skipped, f.n_layers)


def check_features(features: Mapping[str, InputFeatures], ids: Sequence[str]) -> None:
    """Every utterance has finite features for every input, checked on the stored (pooled,
    not yet normalised) arrays: per-speaker statistics would spread one utterance's NaN to the
    whole speaker, so only here can the error name the utterance that carries it."""
    for name, f in features.items():
        missing = [i for i in ids if i not in f.data]
        skipped = [f"{i} ({f.skipped[i]})" for i in missing if i in f.skipped]
        if skipped:
            raise InputError(f"input {name!r} ({f.spec.extractor}): {len(skipped)} utterance(s) were skipped at "
                             f"extraction, e.g. {skipped[:3]}; repair their audio or drop them from the manifest")
        if missing:
            raise InputError(f"input {name!r} ({f.spec.extractor}): {len(missing)} utterance(s) have no features, "
                             f"e.g. {missing[:3]}; extract them with FeatureCache.get")
        bad = [i for i in ids if not np.isfinite(f.data[i]).all()]
        if bad:
            raise InputError(f"input {name!r} ({f.spec.extractor}): {len(bad)} utterance(s) have NaN/inf features: "
                             f"{bad[:5]}{' ...' if len(bad) > 5 else ''}; check their audio/text, or leave them "
                             "out of the manifest (Manifest.subset)")


def subsample_ids(ids: Sequence[str], labels: Sequence[str], n: int, seed: int) -> list[str]:
    """At most ``n`` ids, classes interleaved so every class stays present (seeded)."""
    if len(ids) <= n:
        return list(ids)
    rng = np.random.default_rng(seed)
    by: dict[str, list[str]] = defaultdict(list)
    for i, lab in zip(ids, labels):
        by[lab].append(i)
    queues = [list(rng.permutation(v)) for _, v in sorted(by.items())]
    out: list[str] = []
    while len(out) < n:
        for q in queues:
            if q and len(out) < n:
                out.append(str(q.pop()))
    keep = set(out)
    return [i for i in ids if i in keep]


def training_ids(fold: Fold, manifest: Manifest, settings: Recipe, seed: int) -> list[str]:
    """The fold's training ids, subsampled (seeded) when the recipe caps them."""
    ids = list(fold.train)
    if settings.max_train_utterances:
        ids = subsample_ids(ids, [manifest[i].label for i in ids], settings.max_train_utterances, seed)
    return ids


def fit_normalisers(features: Mapping[str, InputFeatures], manifest: Manifest, ids: Sequence[str],
                    train_ids: Sequence[str]) -> dict[str, Normaliser]:
    """One normaliser per input over ``ids`` (the fold's utterances), global statistics fitted
    on ``train_ids``, first differences appended after normalising where the spec says
    ``deltas`` (see :mod:`workbench.features.normalise`)."""
    return {name: fit_normaliser(f.data, manifest, f.spec.normalise, ids, train_ids, f.spec.deltas)
            for name, f in features.items()}


def make_dataset(manifest: Manifest, ids: Sequence[str], features: Mapping[str, InputFeatures],
                 normalisers: Mapping[str, Normaliser], classes: Sequence[str], word_spans: bool) -> SERDataset:
    """The :class:`SERDataset` of ``ids`` with every input normalised by its fitted normaliser."""
    data = {k: normalisers[k].apply(f.data) for k, f in features.items()}
    valid = {k: f.valid_lengths for k, f in features.items() if f.valid_lengths is not None}
    afs = features["audio"].frame_seconds if "audio" in features else None
    return SERDataset(manifest, ids, data, classes, valid, word_spans=word_spans, audio_frame_seconds=afs)


@dataclass
class FoldData:
    """A fold's datasets and the normalisers fitted for them (saved with the run)."""

    train: SERDataset
    validation: SERDataset
    test: SERDataset
    normalisers: dict[str, Normaliser]


def fold_datasets(manifest: Manifest, fold: Fold, features: Mapping[str, InputFeatures], classes: Sequence[str],
                  settings: Recipe, seed: int, word_spans: bool = False) -> FoldData:
    """Train / validation / test datasets of ``fold``, normalised with statistics fitted here."""
    train_ids = training_ids(fold, manifest, settings, seed)
    fold_ids = train_ids + list(fold.validation) + list(fold.test)
    normalisers = fit_normalisers(features, manifest, fold_ids, train_ids)

    def dataset(ids: Sequence[str]) -> SERDataset:
        return make_dataset(manifest, ids, features, normalisers, classes, word_spans)

    return FoldData(dataset(train_ids), dataset(fold.validation), dataset(fold.test), normalisers)
