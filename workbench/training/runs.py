"""Reloading a trained run from its run directory alone.

A run directory (written by :func:`workbench.training.crossval.train_fold`) holds the model's
config and weights, the protocol's folds and the fitted input normalisers, so
:func:`load_run` rebuilds the model and its test inputs exactly as they were evaluated: the
features come from the cache, the statistics from ``normalisation.npz`` (for runs written
before it existed, refitted on the same ids as training did). A run trained on ASR text
(``text_source`` "asr" in its config) reads ASR text again, transcribed (or taken from the
transcript cache) by :func:`workbench.training.texts.texts_for`.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.corpus.manifest import Manifest
from workbench.errors import WorkbenchError, deprecated
from workbench.features.normalise import check_normalisers, load_normalisers
from workbench.models.registry import create_model
from workbench.protocols import Fold, load_folds
from workbench.training.checkpoint import load_checkpoint
from workbench.training.data import SERDataset
from workbench.training.inputs import InputFeatures, fit_normalisers, load_input_features, make_dataset, training_ids
from workbench.training.recipes import Recipe
from workbench.training.results import STORED_NAMES
from workbench.training.spec import CorpusOptions
from workbench.training.texts import TextSourceError, TextSourceWarning, asr_engine_of, text_source_of, texts_for

# load_run reads run folders written by older versions; these branches go in version 0.3.
deprecated("run folders whose config.json has no corpus_options (read from corpus and corpus_preset)", "0.3")
deprecated("run folders without normalisation.npz (statistics refitted on the training ids)", "0.3")

class RunFolderError(WorkbenchError, ValueError):
    """A damaged run directory (unreadable config, fields of the wrong type, a path leaving the
    run folder, weights that do not fit the config); the message names the folder and file."""


def _read_config(run_dir: Path) -> dict[str, Any]:
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path} not found: {run_dir} is not a training run directory")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFolderError(f"{cfg_path}: damaged run configuration ({type(e).__name__}: {e}); retrain the run") from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), str) \
            or not isinstance(config.get("model_config"), dict):
        raise RunFolderError(f"{cfg_path}: damaged run configuration (no 'model' name and 'model_config' object); "
                             "retrain the run")
    return config


def _build_checked(config: dict[str, Any], state: Mapping[str, torch.Tensor], where: Path) -> torch.nn.Module:
    """The model of ``config`` with ``state`` loaded, after checking on the meta device (no
    memory) that every tensor's shape fits: a config edited to ``hidden = 10**9`` is refused
    before it allocates a terabyte."""
    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in create_model(config["model"], **config["model_config"])
                      .state_dict().items()}
    except WorkbenchError:
        raise
    except Exception as e:  # an unknown field or value in the config
        raise RunFolderError(f"{where / 'config.json'}: the model config does not build "
                             f"({type(e).__name__}: {' '.join(str(e).split())[:200]}); retrain the run") from None
    saved = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    bad = [k for k in shapes if k in saved and saved[k] != shapes[k]]
    missing = [k for k in shapes if k not in saved]
    if bad or missing:
        what = (f"tensor {bad[0]!r} is {saved[bad[0]]} in the weights but {shapes[bad[0]]} by the config" if bad
                else f"the weights lack {len(missing)} tensor(s) of the config, e.g. {missing[0]!r}")
        raise RunFolderError(f"{where}: config.json and the weights do not match: {what}; retrain the run")
    model = create_model(config["model"], **config["model_config"])
    model.load_state_dict(state)
    return model


def load_trained(run_dir: str | Path, device: str = "cpu", weights: str = "best.pt") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the trained model of a run directory: ``(model in eval mode, config dict)``.

    ``config`` is the run's ``config.json`` (model, model_config, settings, features, corpus,
    protocol, fold, seed ...). ``weights`` picks ``best.pt`` (default) or ``last.pt``. A damaged
    config, or one whose sizes do not fit the weights, is a :class:`RunFolderError` naming the
    file, raised before the model is allocated.
    """
    run_dir = Path(run_dir)
    config = _read_config(run_dir)
    wpath = run_dir / weights
    if not wpath.is_file():
        raise FileNotFoundError(f"{wpath} not found: the run has not finished an epoch yet")
    state = load_checkpoint(wpath, map_location="cpu").get("model")
    if not isinstance(state, Mapping):
        raise RunFolderError(f"{wpath}: holds no model weights; retrain the run")
    model = _build_checked(config, state, run_dir)
    return model.to(device).eval(), config


def _inside(run_dir: Path, name: Any, default: str, field: str) -> Path:
    """``run_dir / name`` when it stays in the run folder or its runs root (``<root>/train/<run>``);
    a ``folds_file`` of ``/etc/passwd`` once was opened."""
    if not isinstance(name, str) or not name:
        raise RunFolderError(f"{run_dir / 'config.json'}: {field} is {name!r}, not a file name; retrain the run")
    path = (run_dir / name).resolve()
    folder = run_dir.resolve()
    allowed = [folder, folder.parent.parent] if folder.parent.name == "train" else [folder]
    if not any(path.is_relative_to(a) for a in allowed):
        raise RunFolderError(f"{run_dir / 'config.json'}: {field} {name!r} points outside the run folder "
                             f"(and its runs root); refused")
    return path


@dataclass
class TrainedRun:
    """A trained model with its config, fold and test inputs as they were evaluated."""

    model: torch.nn.Module
    config: dict[str, Any]
    fold: Fold
    manifest: Manifest  # the test utterances with the text the model read (the run's source, or given texts)
    test: SERDataset


def load_run(run_dir: str | Path, manifest: Manifest | None = None, texts: Mapping[str, str] | None = None,
             cache: Any = None, features: Mapping[str, InputFeatures] | None = None,
             progress: bool = False) -> TrainedRun:
    """The run in ``run_dir`` with its test fold's inputs prepared as in training.

    ``manifest`` defaults to the run's corpus reloaded (``corpus_options`` of its config); pass
    it for a real corpus root. The model reads the text it was trained on: a run trained on
    ASR text gets the ASR transcripts (and the recogniser's word timings) of its utterances,
    from the transcript cache beside ``cache`` (decoded when missing). ``texts`` (id ->
    transcript) replaces that text (a what-if; the word timings stay the manifest's).
    ``features`` (input -> :class:`InputFeatures`, pooled as the run's recipe says) replaces
    the feature cache, as it may for ``run_crossval``: made from the run's text, so the
    manifest given with them must carry that text already.
    """
    run_dir = Path(run_dir)
    model, cfg = load_trained(run_dir)
    cfg_path = run_dir / "config.json"
    try:
        settings = Recipe.from_dict(cfg["settings"])
        fold_name, seed, classes = cfg["fold"], int(cfg["seed"]), list(cfg["classes"])
        label_scheme = cfg["label_scheme"]
    except WorkbenchError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise RunFolderError(f"{cfg_path}: damaged run configuration ({type(e).__name__}: {e}); retrain the run") from None
    folds_path = _inside(run_dir, cfg.get("folds_file", "folds.json"), "folds.json", "folds_file")
    norm_path = _inside(run_dir, cfg.get("normalisation_file", "normalisation.npz"), "normalisation.npz",
                        "normalisation_file")
    if manifest is None:
        from workbench.corpus import load_corpus

        # corpus_options holds "size" (runs trained before the rename: "preset"; older ones
        # have no corpus_options at all, only the corpus_preset of the hashed config)
        opts = CorpusOptions.from_dict(cfg.get("corpus_options")
                                       or {"name": cfg["corpus"], "size": cfg.get(STORED_NAMES["corpus_size"], "smoke")})
        manifest = load_corpus(opts.name, root=opts.root, corpus_size=opts.size, corpus_seed=opts.seed,
                               label_scheme=label_scheme)
    folds = {f.name: f for f in load_folds(folds_path)}
    if fold_name not in folds:
        raise RunFolderError(f"{folds_path}: no fold {fold_name!r} (the run's config.json names it; the file has "
                             f"{sorted(folds)[:6]}); retrain the run")
    fold = folds[fold_name]
    test_ids = [i for i in fold.test if i in manifest]
    saved = norm_path.is_file()
    # An older run has no saved statistics: refit them on the ids training used.
    train_ids = [] if saved else training_ids(fold, manifest, settings, seed)
    fit_ids = train_ids + [i for i in fold.validation if i in manifest] + test_ids
    sub = manifest.subset(sorted(set(test_ids) if saved else set(fit_ids)))
    source = cfg.get("text_source", "oracle")
    if features is not None and texts is None and text_source_of(sub) != source:
        raise TextSourceError(f"run {run_dir.name} read {source!r} text, but the features given were made from the "
                              f"manifest's {text_source_of(sub)!r} text; pass no features, or the manifest of "
                              f"texts_for(manifest, {source!r}) with its features")
    if text_source_of(sub) != source:
        from workbench.features.asr import asr_cache_path

        sub, _ = texts_for(sub, source, cache_path=asr_cache_path(getattr(cache, "root", None)), progress=progress,
                           warn=False)
    engine = asr_engine_of(sub)
    if source == "asr" and cfg.get("asr_engine") and engine != cfg["asr_engine"]:
        warnings.warn(f"run {run_dir.name} was trained on {cfg['asr_engine']} transcripts; this machine's "
                      f"recogniser is {engine}, whose transcripts may differ", TextSourceWarning, stacklevel=2)
    if texts is not None:
        sub = Manifest([dataclasses.replace(u, text=texts[u.id]) if u.id in texts else u for u in sub], sub.report)
    if features is None or texts is not None:  # given texts need their own text features
        features = load_input_features(sub, settings, tuple(model.inputs), cache=cache, progress=progress)
    features = {k: v for k, v in features.items() if k in model.inputs}
    if saved:
        normalisers = load_normalisers(norm_path)
        # the stored dimension: a spec with deltas doubles it after normalising
        check_normalisers(normalisers, norm_path, ids=test_ids,
                          dims={k: f.dim // (2 if f.spec.deltas else 1) for k, f in features.items()})
    else:
        normalisers = fit_normalisers(features, sub, fit_ids, train_ids)
    test = make_dataset(sub, test_ids, features, normalisers, classes, "word_spans" in model.inputs)
    return TrainedRun(model, cfg, fold, sub.subset(test_ids), test)
