"""Cross-validation of one model config over (folds x seeds), writing run dirs and result tables.

For each fold and seed :func:`run_crossval` trains a fresh model (``workbench.training.trainer``)
in its own run directory ``<out>/train/<run_id>`` and appends one row to
``<out>/results/results.parquet`` and one row per test utterance to
``<out>/results/predictions.parquet`` (``workbench.training.results``). A run already in the
results table is reused unless ``rerun=True``; an interrupted run resumes from its ``last.pt``.

Run directory: ``config.json`` (everything :func:`load_trained` needs), ``folds.json``,
``metrics.csv``, ``last.pt``, ``best.pt``, ``predictions.parquet``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from workbench.errors import WorkbenchError
from workbench import paths
from workbench.corpus.labels import get_scheme
from workbench.corpus.manifest import Manifest
from workbench.evaluation.metrics import classification_metrics
from workbench.io import atomic_write
from workbench.models.registry import create_model
from workbench.protocols import Fold, make_folds, save_folds
from workbench.training.data import SERDataset, pool_frames
from workbench.training.presets import FeatureSpec, TrainPreset, get_preset
from workbench.training.results import append_rows, read_results, results_dir
from workbench.training.checkpoint import load_checkpoint
from workbench.training.trainer import evaluate, resolve_device, seed_everything, train_model


class CrossValError(WorkbenchError, ValueError):
    """A cross-validation cannot run as asked (empty fold, class missing from training, missing
    features); the message names the fold or input and what to change."""


# --------------------------------------------------------------------------- features
@dataclass
class InputFeatures:
    """Features of one model input for a whole manifest, after pooling (not yet normalised)."""

    spec: FeatureSpec
    data: Mapping[str, np.ndarray]
    frame_seconds: float | None
    dim: int
    valid_lengths: Mapping[str, int] | None = None
    skipped: Mapping[str, str] = field(default_factory=dict)  # id -> why extraction skipped it


def load_input_features(manifest: Manifest, preset: TrainPreset, inputs: Sequence[str], cache: Any = None,
                        progress: bool = True) -> dict[str, InputFeatures]:
    """Read (extracting what is missing) the features of every model input from the cache."""
    from workbench.features.base import get_extractor
    from workbench.features.cache import FeatureCache

    cache = cache if cache is not None else FeatureCache()
    out: dict[str, InputFeatures] = {}
    for name in inputs:
        if name == "word_spans":
            continue
        if name not in preset.features:
            raise CrossValError(f"preset {preset.name!r} of model {preset.model!r} names no feature extractor for "
                                f"input {name!r}; it has {sorted(preset.features)}")
        spec = preset.features[name]
        fs = cache.get(get_extractor(spec.extractor, **spec.config), manifest, progress=progress)
        valid = {i: int(v) for i, v in zip(fs.ids, fs.valid_lengths)} if name == "waveform" else None
        out[name] = _pooled(InputFeatures(spec, fs, fs.frame_seconds, fs.dim, valid, fs.skipped))
    return out


def _pooled(f: InputFeatures) -> InputFeatures:
    k = f.spec.pool
    if k <= 1:
        return f
    if f.frame_seconds is None:
        raise CrossValError(f"feature {f.spec.extractor!r} has word steps; pool={k} applies to frames only")
    data = {i: pool_frames(np.asarray(a), k) for i, a in f.data.items()}
    return InputFeatures(f.spec, data, f.frame_seconds * k, f.dim, None, f.skipped)


class _Normalised(Mapping[str, np.ndarray]):
    """A lazy z-normalised view: ``(x - mean) / std`` per dimension, stats per group."""

    def __init__(self, data: Mapping[str, np.ndarray], stats: dict[str, tuple[np.ndarray, np.ndarray]],
                 group_of: Mapping[str, str]):
        self.data, self.stats, self.group_of = data, stats, group_of

    def __getitem__(self, key: str) -> np.ndarray:
        mean, std = self.stats[self.group_of[key]]
        return ((np.asarray(self.data[key], dtype=np.float32) - mean) / std).astype(np.float32)

    def __iter__(self):
        return iter(self.group_of)

    def __len__(self) -> int:
        return len(self.group_of)


def _stats(arrays: list[np.ndarray], eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    # float64 sums: millions of float32 frames lose digits otherwise.
    x = [np.asarray(a, dtype=np.float64) for a in arrays if len(a)]
    n = sum(a.shape[0] for a in x)
    mean = sum(a.sum(0) for a in x) / n
    var = sum(((a - mean) ** 2).sum(0) for a in x) / n
    std = np.sqrt(var)
    std[std < eps] = np.inf  # constant dimensions become 0
    return mean.astype(np.float32), std.astype(np.float32)


def normalised_features(f: InputFeatures, manifest: Manifest, ids: Sequence[str], fit_ids: Sequence[str]) -> Mapping[str, np.ndarray]:
    """``f.data`` for ``ids``, z-normalised per ``f.spec.normalise``: ``global`` statistics from
    ``fit_ids`` (the training fold), ``speaker`` statistics per speaker (label-free), ``none``."""
    mode = f.spec.normalise
    if mode == "none":
        return f.data
    if mode == "global":
        return _Normalised(f.data, {"all": _stats([f.data[i] for i in fit_ids])}, {i: "all" for i in ids})
    if mode == "speaker":
        groups: dict[str, list[str]] = defaultdict(list)
        for i in ids:
            groups[manifest[i].speaker].append(i)
        stats = {s: _stats([f.data[i] for i in g]) for s, g in groups.items()}
        return _Normalised(f.data, stats, {i: manifest[i].speaker for i in ids})
    raise CrossValError(f"feature {f.spec.extractor!r}: unknown normalise mode {mode!r}")


# --------------------------------------------------------------------------- models
def build_model(model: str, preset: TrainPreset, model_options: Mapping[str, Any] | None,
                features: Mapping[str, InputFeatures] | None, n_classes: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Create ``model`` with preset overrides, then ``model_options``, then the feature sizes and
    frame periods of ``features`` (only fields the model's config has). Returns the model and the
    exact keyword config (JSON-able) that rebuilds it."""
    base = {**preset.model_config, **dict(model_options or {})}
    probe = create_model(model, **{**base, "n_classes": n_classes})
    fields = {f.name for f in dataclasses.fields(probe.config)} if dataclasses.is_dataclass(probe.config) else set()
    derived: dict[str, Any] = {"n_classes": n_classes}
    if features:
        for name, dim_field in (("audio", "audio_dim"), ("text", "text_dim"), ("video", "video_dim")):
            if name in features and name in probe.inputs and dim_field in fields:
                derived[dim_field] = features[name].dim
        fs = features["audio"].frame_seconds if "audio" in features and "audio" in probe.inputs else None
        if fs is not None:
            for fld in ("audio_frame_seconds", "frame_seconds"):
                if fld in fields:
                    derived[fld] = fs
        if "video" in features and "video" in probe.inputs and "video_frame_seconds" in fields:
            derived["video_frame_seconds"] = features["video"].frame_seconds
    config = json.loads(json.dumps({**base, **derived}))
    return create_model(model, **config), config


def model_inputs_of(model: str, preset: TrainPreset, model_options: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The inputs ``model`` reads with these options (e.g. pepino_text reads only text)."""
    return tuple(create_model(model, **{**preset.model_config, **dict(model_options or {})}).inputs)


def config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- checks
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


def check_fold(fold: Fold, manifest: Manifest, classes: Sequence[str]) -> None:
    """Raise :class:`CrossValError` for an empty train/test part or a class without training data."""
    for part in ("train", "test"):
        if not getattr(fold, part):
            raise CrossValError(f"fold {fold.name!r} of protocol {fold.protocol!r} has an empty {part} set; "
                                "choose another protocol or check the manifest's sessions/scripts")
    present = {manifest[i].label for i in fold.train}
    missing = [c for c in classes if c not in present]
    if missing:
        raise CrossValError(f"fold {fold.name!r} of protocol {fold.protocol!r}: class(es) {missing} have no training "
                            "utterances; use a label scheme without them or a protocol whose training folds cover them")


def _check_features(features: Mapping[str, InputFeatures], ids: Sequence[str]) -> None:
    """Every utterance has finite features for every input, checked on the stored (pooled,
    not yet normalised) arrays: per-speaker statistics would spread one utterance's NaN to the
    whole speaker, so only here can the error name the utterance that carries it."""
    for name, f in features.items():
        missing = [i for i in ids if i not in f.data]
        skipped = [f"{i} ({f.skipped[i]})" for i in missing if i in f.skipped]
        if skipped:
            raise CrossValError(f"input {name!r} ({f.spec.extractor}): {len(skipped)} utterance(s) were skipped at "
                                f"extraction, e.g. {skipped[:3]}; repair their audio or drop them from the manifest")
        if missing:
            raise CrossValError(f"input {name!r} ({f.spec.extractor}): {len(missing)} utterance(s) have no features, "
                                f"e.g. {missing[:3]}; extract them with FeatureCache.get")
        bad = [i for i in ids if not np.isfinite(f.data[i]).all()]
        if bad:
            raise CrossValError(f"input {name!r} ({f.spec.extractor}): {len(bad)} utterance(s) have NaN/inf features: "
                                f"{bad[:5]}{' ...' if len(bad) > 5 else ''}; check their audio/text, or leave them "
                                "out of the manifest (Manifest.subset)")


# --------------------------------------------------------------------------- runner
def run_crossval(
    model: str,
    preset: str | TrainPreset = "demo",
    corpus: str = "synthetic",
    root: str | Path | None = None,
    corpus_preset: str = "demo",
    corpus_seed: int = 0,
    protocol: str | None = None,
    protocol_options: Mapping[str, Any] | None = None,
    folds: Sequence[int | str] | None = None,
    seeds: Sequence[int] = (0,),
    out: str | Path | None = None,
    model_options: Mapping[str, Any] | None = None,
    epochs: int | None = None,
    device: str = "auto",
    text_source: str = "oracle",
    manifest: Manifest | None = None,
    features: Mapping[str, InputFeatures] | None = None,
    cache: Any = None,
    rerun: bool = False,
    progress: bool = True,
    backend: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    max_retries: int = 2,
    num_cpus: float = 1.0,
    num_gpus: float | None = None,
) -> pd.DataFrame:
    """Train and test ``model`` on every selected fold x seed; returns the results rows.

    ``preset`` is a training preset name (``paper``, ``demo``, ``smoke``) or a
    :class:`TrainPreset`; ``protocol`` (default: the preset's) and ``protocol_options`` go to
    :func:`workbench.protocols.make_folds`; ``folds`` selects folds by index or name (None:
    all). ``out`` is the runs root (default ``$WORKBENCH_RUNS``). ``manifest`` and
    ``features`` (input -> :class:`InputFeatures`) may be given instead of loading the corpus
    and the feature cache (tests do). ``epochs`` overrides the preset's.

    ``backend="ray"`` trains each (fold, seed) as a Ray task (:mod:`workbench.distributed`)
    asking for ``num_cpus`` and ``num_gpus`` (None: a GPU fraction when the cluster has GPUs),
    retried ``max_retries`` times; ``ray_address`` connects to a running cluster (None starts
    a local one). Rows of tasks that still failed are missing from the result, which lists
    them in ``.attrs["failed"]`` (fold, seed, error). Features loaded here from the cache are
    re-read from it by the workers: ``out``, the corpus and the cache must be on a filesystem
    every node sees.
    """
    if backend not in ("local", "ray"):
        raise CrossValError(f"backend must be 'local' or 'ray', got {backend!r}")
    features_from_cache = features is None
    settings = preset if isinstance(preset, TrainPreset) else get_preset(model, preset)
    if settings.fusion_strategy not in (None, "cold_start") and model not in ("pepino_early", "pepino_late"):
        raise CrossValError(f"fusion_strategy={settings.fusion_strategy!r} applies to pepino_early / pepino_late only, "
                            f"not {model!r}")
    if epochs is not None:
        if int(epochs) < 1:
            raise CrossValError(f"epochs must be at least 1, got {epochs}")
        settings = settings.replace(epochs=int(epochs))
    protocol = protocol or settings.protocol
    popts = {**settings.protocol_options, **dict(protocol_options or {})}
    out = Path(out) if out is not None else paths.runs_dir()
    scheme = get_scheme(settings.label_scheme)
    classes = list(scheme.classes)
    if manifest is None:
        from workbench.corpus import load_corpus

        manifest = load_corpus(corpus, root=root, preset=corpus_preset, seed=corpus_seed, label_scheme=settings.label_scheme)
    if len(manifest) == 0:
        raise CrossValError(f"corpus {corpus!r} has no utterances under label scheme {settings.label_scheme!r}")
    bad = sorted({u.label for u in manifest} - set(classes))
    if bad:
        raise CrossValError(f"manifest labels {bad} are not classes of scheme {settings.label_scheme!r} {classes}; "
                            "load the corpus with label_scheme= to map them")
    all_folds = make_folds(manifest, protocol, **popts)
    chosen = _select_folds(all_folds, folds)
    inputs = model_inputs_of(model, settings, model_options)
    if features is None:
        features = load_input_features(manifest, settings, inputs, cache=cache, progress=progress)
    features = {k: v for k, v in features.items() if k in inputs}
    missing_inputs = [k for k in inputs if k != "word_spans" and k not in features]
    if missing_inputs:
        raise CrossValError(f"model {model!r} needs input(s) {missing_inputs}; no features were given for them")

    # Every input checked once for all chosen folds, before any training starts: a bad
    # utterance found after hours of training would waste them.
    _check_features(features, sorted({i for fold in chosen for part in (fold.train, fold.validation, fold.test)
                                      for i in part}))
    if backend == "ray":
        return _run_on_ray(model, settings, manifest, corpus, corpus_preset, protocol, popts, all_folds, chosen,
                           seeds, out, model_options, features, classes, device, text_source, rerun, progress,
                           (cache, inputs) if features_from_cache else None, ray_address, max_retries, num_cpus,
                           num_gpus)

    rows = []
    for fold in chosen:
        check_fold(fold, manifest, classes)
        for seed in seeds:
            rows.append(_run_one(model, settings, manifest, corpus, corpus_preset, protocol, popts, all_folds, fold,
                                 int(seed), out, model_options, features, classes, device, text_source, rerun, progress))
    return pd.DataFrame(rows)


def _run_on_ray(model_name: str, settings: TrainPreset, manifest: Manifest, corpus: str, corpus_preset: str,
                protocol: str, popts: Mapping[str, Any], all_folds: list[Fold], chosen: list[Fold],
                seeds: Sequence[int], out: Path, model_options: Mapping[str, Any] | None,
                features: Mapping[str, InputFeatures], classes: list[str], device: str, text_source: str,
                rerun: bool, progress: bool, cache_source: tuple[Any, Sequence[str]] | None,
                ray_address: str | None, max_retries: int, num_cpus: float, num_gpus: float | None) -> pd.DataFrame:
    """The (fold, seed) loop of :func:`run_crossval` as Ray tasks, each calling :func:`_run_one`."""
    from workbench.distributed import TaskResources, crossval_on_ray

    for fold in chosen:  # bad folds fail here, before any task starts
        check_fold(fold, manifest, classes)
    if cache_source is not None and cache_source[0] is None:
        from workbench.features.cache import FeatureCache

        # resolved here: a worker's environment may name another default cache root
        cache_source = (FeatureCache(), cache_source[1])
    common = dict(model_name=model_name, settings=settings, corpus=corpus, corpus_preset=corpus_preset,
                  protocol=protocol, popts=popts, all_folds=all_folds, out=out, model_options=model_options,
                  classes=classes, device=device, text_source=text_source, rerun=rerun)
    rows, failed = crossval_on_ray(_run_one, [(f, int(s)) for f in chosen for s in seeds], common, manifest,
                                   features, cache_source, resources=TaskResources(num_cpus, num_gpus),
                                   max_retries=max_retries, ray_address=ray_address, progress=progress)
    frame = pd.DataFrame(rows)
    frame.attrs["failed"] = failed
    return frame


def _select_folds(all_folds: list[Fold], folds: Sequence[int | str] | None) -> list[Fold]:
    if folds is None:
        return all_folds
    names = [f.name for f in all_folds]
    chosen = []
    for f in folds:
        if isinstance(f, (int, np.integer)):
            if not 0 <= int(f) < len(all_folds):
                raise CrossValError(f"fold index {f} out of range: the protocol has {len(all_folds)} folds {names}")
            chosen.append(all_folds[int(f)])
        elif f in names:
            chosen.append(all_folds[names.index(f)])
        else:
            raise CrossValError(f"unknown fold {f!r}; folds are {names}")
    if not chosen:
        raise CrossValError("no folds selected (folds=[]); pass None for all folds")
    return chosen


def _run_one(model_name: str, settings: TrainPreset, manifest: Manifest, corpus: str, corpus_preset: str,
             protocol: str, popts: Mapping[str, Any], all_folds: list[Fold], fold: Fold, seed: int, out: Path,
             model_options: Mapping[str, Any] | None, features: Mapping[str, InputFeatures], classes: list[str],
             device: str, text_source: str, rerun: bool, progress: bool) -> dict[str, Any]:
    seed_everything(seed)
    model, model_config = build_model(model_name, settings, model_options, features, len(classes))
    config = {
        "model": model_name, "model_config": model_config, "train_preset": settings.name,
        "settings": settings.to_dict(), "label_scheme": settings.label_scheme, "classes": classes,
        "corpus_preset": corpus_preset, "text_source": text_source,
        "features": {k: {**f.spec.to_dict(), "frame_seconds": f.frame_seconds, "dim": f.dim} for k, f in features.items()},
    }
    chash = config_hash(config)
    run_id = f"{model_name}-{chash[:8]}-{corpus}-{protocol}-{fold.name}-s{seed}"
    run_dir = out / "train" / run_id
    done = read_results(out)
    if not rerun and run_id in set(done["run_id"]) and (run_dir / "predictions.parquet").is_file():
        return done[done["run_id"] == run_id].iloc[0].to_dict()
    if rerun:  # start from scratch: a stale checkpoint must not be resumed
        for path in [run_dir / "last.pt", run_dir / "best.pt", *run_dir.glob("branch_*/*.pt")]:
            path.unlink(missing_ok=True)

    train_ids = list(fold.train)
    if settings.max_train_utterances:
        train_ids = subsample_ids(train_ids, [manifest[i].label for i in train_ids], settings.max_train_utterances, seed)
    fold_ids = train_ids + list(fold.validation) + list(fold.test)
    data = {k: normalised_features(f, manifest, fold_ids, train_ids) for k, f in features.items()}
    valid = {k: f.valid_lengths for k, f in features.items() if f.valid_lengths is not None}
    spans = "word_spans" in model.inputs
    afs = features["audio"].frame_seconds if "audio" in features else None

    def dataset(ids: Sequence[str]) -> SERDataset:
        return SERDataset(manifest, ids, data, classes, valid, word_spans=spans, audio_frame_seconds=afs)

    train_ds, val_ds, test_ds = dataset(train_ids), dataset(fold.validation), dataset(fold.test)

    run_dir.mkdir(parents=True, exist_ok=True)
    full_config = {**config, "run_id": run_id, "config_hash": chash, "corpus": corpus, "protocol": protocol,
                   "protocol_options": dict(popts), "fold": fold.name, "fold_index": all_folds.index(fold),
                   "folds_file": "folds.json", "seed": seed, "train_ids": len(train_ids)}
    atomic_write(run_dir / "config.json", lambda p: p.write_text(json.dumps(full_config, indent=1)))
    save_folds(all_folds, run_dir / "folds.json")

    if settings.fusion_strategy not in (None, "cold_start"):
        pretrain_branches(model, settings, model_options, features, classes, train_ds, val_ds, run_dir, seed, device,
                          progress)
    result = train_model(model, train_ds, settings, run_dir, validation=val_ds if len(val_ds) else None, seed=seed,
                         device=device, progress=progress)
    dev = resolve_device(device)
    ev = evaluate(model, test_ds, settings.batch_size, dev)
    pred = ev["probs"].argmax(1)
    m = classification_metrics(ev["labels"], pred, classes, ev["probs"])
    preds = pd.DataFrame({
        "run_id": run_id, "model": model_name, "config_hash": chash, "protocol": protocol, "fold": fold.name,
        "seed": seed, "utt_id": ev["ids"], "label": [classes[i] for i in ev["labels"]],
        "pred": [classes[i] for i in pred], "probs": [p.astype(float).tolist() for p in ev["probs"]],
    })
    atomic_write(run_dir / "predictions.parquet", lambda p: preds.to_parquet(p, index=False))
    row = {
        "run_id": run_id, "model": model_name, "config_hash": chash, "config_json": json.dumps(config, sort_keys=True),
        "train_preset": settings.name, "corpus": corpus, "corpus_preset": corpus_preset,
        "label_scheme": settings.label_scheme, "classes": json.dumps(classes), "protocol": protocol,
        "fold": fold.name, "seed": seed, "text_source": text_source, "n_train": len(train_ds),
        "n_val": len(val_ds), "n_test": len(test_ds), "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
        "wa": m["wa"], "ua": m["ua"], "macro_f1": m["macro_f1"], "weighted_f1": m["weighted_f1"],
        "av_auc": m.get("av_auc", float("nan")), "train_seconds": result.train_seconds,
        "utts_per_second": result.utts_per_second, "device": result.device, "run_dir": str(run_dir),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    # Predictions first, then the results row: the results row is the commit point of a run.
    rdir = results_dir(out)
    append_rows(rdir / "predictions.parquet", preds)
    append_rows(rdir / "results.parquet", pd.DataFrame([row]))
    return row


def pretrain_branches(model: torch.nn.Module, settings: TrainPreset, model_options: Mapping[str, Any] | None,
                      features: Mapping[str, InputFeatures], classes: Sequence[str], train: SERDataset,
                      validation: SERDataset, run_dir: Path, seed: int, device: str, progress: bool) -> None:
    """Pepino et al.'s ``pretrained`` / ``warm_start`` fusion (sec. 2.3.3), in place: train
    ``pepino_text`` and ``pepino_audio`` alone on the same fold (in ``run_dir/branch_text`` and
    ``run_dir/branch_audio``, resumable like any run), load them into ``model``'s branches and
    freeze what the strategy freezes. The branches train with their own preset's learning rate
    (the fusion stage keeps ``settings.lr``) and every other setting of ``settings``."""
    from workbench.models.pepino_fusion import configure_strategy
    from workbench.training.presets import PRESET_NAMES

    trained = {}
    for branch in ("text", "audio"):
        name = f"pepino_{branch}"
        lr = get_preset(name, settings.name).lr if settings.name in PRESET_NAMES else settings.lr
        bset = settings.replace(model=name, fusion_strategy=None, lr=lr)
        seed_everything(seed)
        bmodel, _ = build_model(name, bset, model_options, features, len(classes))
        train_model(bmodel, train, bset, run_dir / f"branch_{branch}", seed=seed, device=device, progress=progress,
                    validation=validation if len(validation) else None)
        trained[branch] = bmodel.cpu()
    configure_strategy(model, settings.fusion_strategy, text_ckpt=trained["text"], audio_ckpt=trained["audio"])


# --------------------------------------------------------------------------- reloading
def load_trained(run_dir: str | Path, device: str = "cpu", weights: str = "best.pt") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the trained model of a run directory: ``(model in eval mode, config dict)``.

    ``config`` is the run's ``config.json`` (model, model_config, settings, features, corpus,
    protocol, fold, seed ...). ``weights`` picks ``best.pt`` (default) or ``last.pt``.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path} not found: {run_dir} is not a training run directory")
    config = json.loads(cfg_path.read_text())
    model = create_model(config["model"], **config["model_config"])
    wpath = run_dir / weights
    if not wpath.is_file():
        raise FileNotFoundError(f"{wpath} not found: the run has not finished an epoch yet")
    model.load_state_dict(load_checkpoint(wpath, map_location=device)["model"])
    return model.to(device).eval(), config


__all__ = ["CrossValError", "InputFeatures", "build_model", "check_fold", "load_input_features", "load_trained",
           "normalised_features", "pretrain_branches", "run_crossval"]
