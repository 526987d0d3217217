"""Cross-validation of one model configuration over (folds x seeds).

For each fold and seed :func:`run_crossval` trains a fresh model (``workbench.training.trainer``)
in its own run directory ``<runs_root>/train/<run_id>`` and appends one row to
``<runs_root>/results/results.parquet`` and one row per test utterance to
``<runs_root>/results/predictions.parquet`` (``workbench.training.results``). A run already in the
results table is reused unless ``rerun=True``, once its stored predictions pass
:func:`workbench.training.reuse.prediction_problems` (one that fails is retrained, with a
:class:`~workbench.training.reuse.ReusedRunWarning` naming it); an interrupted run resumes
from its ``last.pt``.
Inputs come from the one fold pipeline (:mod:`workbench.training.inputs`); every (fold, seed)
is one :class:`FoldJob` run by :func:`train_fold`, here or on a Ray worker.

Text: ``spec.text_source`` "asr" trains and tests on pocketsphinx transcripts of the corpus
(:func:`workbench.training.texts.texts_for`: cached beside the feature cache, resumable, decoded
on every core); the results row's ``text_source`` and ``test_wer`` (pooled WER of the fold's
test set, NaN for oracle text) are read off the manifest the model was given.

A model whose training strategy pre-trains branches (Pepino et al.'s fusion) starts from the
branch models' own runs of the same fold and seed, reused from the results table or trained
and recorded first (:func:`branch_models`); its ``config.json`` names them (``branch_runs``).

Run directory: ``config.json`` and ``normalisation.npz`` (everything
:func:`workbench.training.runs.load_run` needs), ``folds.json``, ``metrics.csv``, ``last.pt``,
``best.pt``, ``predictions.parquet``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.corpus.labels import get_scheme
from workbench.corpus.manifest import Manifest
from workbench.errors import WorkbenchError
from workbench.features.normalise import save_normalisers
from workbench.io import atomic_write
from workbench.models.registry import get_card
from workbench.paths import resolve_runs_root
from workbench.protocols import Fold, check_protocol, make_folds, save_folds
from workbench.training.build import build_config, build_model, model_inputs_of
from workbench.training.checkpoint import load_checkpoint
from workbench.training.inputs import (
    InputFeatures,
    check_extractors_ready,
    check_features,
    fold_datasets,
    load_input_features,
)
from workbench.training.metrics import classification_metrics
from workbench.training.recipes import Recipe
from workbench.training.results import STORED_NAMES, append_rows, read_results, read_run_predictions, results_dir
from workbench.training.reuse import ReusedRunWarning, prediction_problems
from workbench.training.spec import BackendOptions, CorpusOptions, RunSpec
from workbench.training.strategies import branch_settings, needs_pretraining
from workbench.training.texts import asr_engine_of, pooled_wer, text_source_of, texts_for
from workbench.training.trainer import evaluate, resolve_device, seed_everything, train_model

#: File in a run directory holding the fitted input normalisers (workbench.features.normalise).
NORMALISATION_FILE = "normalisation.npz"


class CrossValError(WorkbenchError, ValueError):
    """A cross-validation cannot run as asked (empty fold, class missing from training, missing
    features); the message names the fold or input and what to change."""


def config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- checks
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


def check_validation(spec: RunSpec, folds: Sequence[Fold]) -> None:
    """A recipe that stops early needs a validation set in every fold: without one the trainer
    would silently run the recipe's fixed epochs instead of the paper's early stopping."""
    if spec.settings.early_stopping_patience is None:
        return
    empty = [f.name for f in folds if not f.validation]
    if empty:
        raise CrossValError(
            f"model {spec.model!r} ({spec.settings.name} recipe) stops early on validation UA, but protocol "
            f"{spec.protocol!r} gives fold(s) {empty[:3]} no validation set; pass protocol_options="
            "{'validation': 'random'} (or a protocol with one, e.g. tenfold_811)")


def select_folds(all_folds: list[Fold], folds: Sequence[int | str] | None) -> list[Fold]:
    """The folds named by index or name (None: all); :class:`CrossValError` for unknown ones."""
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


# --------------------------------------------------------------------------- runner
@dataclass(frozen=True)
class FoldJob:
    """One (fold, seed) training of a :class:`RunSpec`: everything :func:`train_fold` needs
    besides the manifest and the features (which a worker may hold already)."""

    spec: RunSpec
    corpus: CorpusOptions
    folds: tuple[Fold, ...]  # every fold of the protocol (saved with the run)
    fold_index: int
    seed: int
    classes: tuple[str, ...]
    out: Path
    rerun: bool = False

    @property
    def fold(self) -> Fold:
        return self.folds[self.fold_index]


def run_crossval(spec: RunSpec, corpus: CorpusOptions = CorpusOptions(), backend: BackendOptions = BackendOptions(),
                 *, runs_root: str | Path | None = None, manifest: Manifest | None = None,
                 features: Mapping[str, InputFeatures] | None = None, cache: Any = None, rerun: bool = False,
                 progress: bool = True, asr_jobs: int | None = None) -> pd.DataFrame:
    """Train and test ``spec`` on every selected fold x seed; returns the results rows.

    ``runs_root`` is the runs folder (default ``$WORKBENCH_RUNS``; a relative path is relative
    to the working directory, as for notebooks and the CLI:
    :func:`~workbench.training.runs_root.resolve_runs_root`).
    ``manifest`` and ``features`` (input -> :class:`InputFeatures`) may be given instead of
    loading ``corpus`` and the feature cache (tests and bundles do); ``corpus`` is still recorded with the results. Given
    ``features`` were made from the manifest's text, so with them the manifest must carry the
    text of ``spec.text_source`` already (:func:`~workbench.training.texts.texts_for` makes it).

    With ``spec.text_source == "asr"`` the model trains and tests on pocketsphinx transcripts:
    the manifest is transcribed first (``asr_jobs`` processes, default every core; cached in
    ``asr.parquet`` of the feature cache root, resumable). ``.attrs["texts"]`` of the result
    holds the :class:`~workbench.training.texts.TextReport` (WER, empty transcripts);
    ``.attrs["trained"]`` and ``.attrs["reused"]`` count the runs trained now and those taken
    from the results table (``rerun=True`` retrains them), ``.attrs["runs_root"]`` is the folder.

    Where the trainings run is ``backend`` (:class:`~workbench.distributed.BackendOptions`):
    here, one after another or ``jobs`` at a time, or one Ray task each
    (:mod:`workbench.training.tasks`; features loaded here from the cache are re-read from it by
    the workers, so ``runs_root``, the corpus and the cache must be on a filesystem every node
    sees). Every backend reports failures alike: what is wrong with the request (a fold, a
    feature, an option) raises before the first training; a training that fails (after its
    retries, on Ray) does not stop the others, its row is missing from the result and
    ``.attrs["failed"]`` lists it (fold, seed, error); :func:`failure_report` is one line for it.
    """
    backend.require()  # before the corpus loads: a missing Ray must not cost an extraction
    prepared = prepare_crossval(spec, corpus, runs_root=runs_root, manifest=manifest, features=features, cache=cache,
                                rerun=rerun, progress=progress, asr_jobs=asr_jobs)
    out = resolve_runs_root(runs_root)
    recorded = set() if rerun else set(read_results(out, missing_ok=True)["run_id"])
    rows = run_prepared([prepared], backend, progress)[0]
    reused = int(rows["run_id"].isin(recorded).sum()) if len(rows) else 0
    rows.attrs.update(trained=len(rows) - reused, reused=reused, runs_root=out)
    return rows


@dataclass
class PreparedCrossval:
    """A cross-validation checked and ready to train: its (fold, seed) jobs and what they read
    (``cache_inputs`` = (cache, inputs) when the features came from the feature cache)."""

    spec: RunSpec
    jobs: list[FoldJob]
    manifest: Manifest
    features: Mapping[str, InputFeatures]
    text_report: Any
    cache_inputs: tuple[Any, Sequence[str]] | None = None


def prepare_crossval(spec: RunSpec, corpus: CorpusOptions = CorpusOptions(), *, runs_root: str | Path | None = None,
                     manifest: Manifest | None = None, features: Mapping[str, InputFeatures] | None = None,
                     cache: Any = None, rerun: bool = False, progress: bool = True,
                     asr_jobs: int | None = None, feature_memo: dict | None = None) -> PreparedCrossval:
    """Everything :func:`run_crossval` does before the first training (the arguments are its
    own): load the manifest, texts and features, make the folds, run every check; the jobs.
    ``feature_memo``: shared by the preparations of one ledger, so conditions reading the same
    features hold one copy (:func:`~workbench.training.inputs.load_input_features`)."""
    settings = spec.settings
    # Cheap checks first: a strategy the model cannot follow, an unknown protocol or option, a
    # missing encoder checkpoint, a device the machine lacks must fail before a corpus is
    # generated or features extracted.
    needs_pretraining(spec.model, settings)
    check_protocol(spec.protocol, spec.protocol_options)
    resolve_device(spec.device)
    if features is None:
        check_extractors_ready(spec.model, settings, model_inputs_of(spec.model, settings, spec.model_options))
    out = resolve_runs_root(runs_root)
    classes = tuple(get_scheme(settings.label_scheme).classes)
    if manifest is None:
        manifest = corpus.load(settings.label_scheme)
    _check_manifest(manifest, corpus, settings, classes)
    if features is not None and text_source_of(manifest) != spec.text_source:
        raise CrossValError(f"text_source={spec.text_source!r}, but the features given were made from the manifest's "
                            f"{text_source_of(manifest)!r} text; pass the manifest of texts_for(manifest, "
                            f"{spec.text_source!r}) with features made from it, or no features (the cache is used)")
    manifest, text_report = texts_for(manifest, spec.text_source, cache_path=_asr_cache(cache), n_jobs=asr_jobs,
                                      progress=progress)
    if spec.text_source != "oracle" and progress:
        print(text_report.summary())
    all_folds = make_folds(manifest, spec.protocol, **spec.protocol_options)
    chosen = select_folds(all_folds, spec.folds)
    inputs = model_inputs_of(spec.model, settings, spec.model_options)
    features_from_cache = features is None
    if features is None:
        shared = {"memo": feature_memo} if feature_memo is not None else {}
        features = load_input_features(manifest, settings, inputs, cache=cache, progress=progress, **shared)
    features = {k: v for k, v in features.items() if k in inputs}
    missing_inputs = [k for k in inputs if k != "word_spans" and k not in features]
    if missing_inputs:
        raise CrossValError(f"model {spec.model!r} needs input(s) {missing_inputs}; no features were given for them")
    # Every check runs once, for all chosen folds, before any training starts: a bad fold or
    # utterance found after hours of training would waste them. The model is built once on the
    # meta device (no memory, no arithmetic) so that a model option it refuses is the request's
    # one-line error here, not a failed training per (fold, seed).
    with torch.device("meta"):
        build_model(spec.model, settings, spec.model_options, features, len(classes))
    for fold in chosen:
        check_fold(fold, manifest, classes)
    check_validation(spec, chosen)
    check_features(features, sorted({i for fold in chosen for part in (fold.train, fold.validation, fold.test)
                                     for i in part}))
    jobs = [FoldJob(spec, corpus, tuple(all_folds), all_folds.index(fold), seed, classes, out, rerun)
            for fold in chosen for seed in spec.seeds]
    return PreparedCrossval(spec, jobs, manifest, features, text_report,
                            (cache, inputs) if features_from_cache else None)


def run_prepared(prepared: Sequence[PreparedCrossval], backend: BackendOptions = BackendOptions(),
                 progress: bool = True) -> list[pd.DataFrame]:
    """Train every job of every prepared cross-validation; one results frame per prepared one,
    rows in job order. On every backend a training that fails does not stop the others: its
    (fold, seed) is missing from the rows and listed in ``.attrs["failed"]`` as ``{"fold",
    "seed", "error"}`` (the error as one line); ``.attrs["texts"]`` holds the text report.

    On the local backend every job of every cross-validation goes through one
    :func:`~workbench.distributed.run_tasks` call (:func:`run_jobs_locally`): with
    ``backend.jobs > 1`` to one pool of worker processes, so a ledger keeps the workers busy
    across its conditions instead of waiting for each condition's last fold.
    """
    if backend.backend == "ray":
        from workbench.training.tasks import run_jobs_on_ray

        # train_fold is looked up at call time, so a test may replace it (a failing task)
        frames = [run_jobs_on_ray(train_fold, p.jobs, p.manifest, p.features, backend,
                                  cache_inputs=p.cache_inputs, progress=progress) for p in prepared]
    else:
        frames = run_jobs_locally(prepared, backend, progress)
    for frame, p in zip(frames, prepared):
        frame.attrs["texts"] = p.text_report
        frame.attrs.setdefault("failed", [])
    return frames


def failure_report(failed: Sequence[Mapping[str, Any]]) -> str:
    """One line for the failed trainings of ``.attrs["failed"]`` (every backend lists them the
    same way): how many, and the first one's fold, seed and error."""
    first = failed[0]
    return f"{len(failed)} (fold, seed) training(s) failed; first fold {first['fold']} seed {first['seed']}: " \
           f"{first['error']}"


def _asr_cache(cache: Any) -> Path:
    """The transcript table beside the feature cache in use (``cache.root``, else the default)."""
    from workbench.features.asr import asr_cache_path

    return asr_cache_path(getattr(cache, "root", None))


def _check_manifest(manifest: Manifest, corpus: CorpusOptions, settings: Recipe, classes: Sequence[str]) -> None:
    if len(manifest) == 0:
        raise CrossValError(f"corpus {corpus.name!r} has no utterances under label scheme {settings.label_scheme!r}")
    bad = sorted({u.label for u in manifest} - set(classes))
    if bad:
        raise CrossValError(f"manifest labels {bad} are not classes of scheme {settings.label_scheme!r} {list(classes)}; "
                            "load the corpus with label_scheme= to map them")


def run_identity(job: FoldJob, manifest: Manifest, features: Mapping[str, InputFeatures]) -> tuple[str, str, dict]:
    """``(run_id, config_hash, config)`` of one (fold, seed) training, computed without building
    the model (so a parent process can tell finished and duplicate runs before handing any out)."""
    spec, settings, fold, seed = job.spec, job.spec.settings, job.fold, job.seed
    # What the model reads is read off the manifest it is given, not the request, so the row
    # cannot call oracle text ASR; a manifest that does not carry the requested text is refused.
    text_source = text_source_of(manifest)
    if text_source != spec.text_source:
        raise CrossValError(f"fold {fold.name!r}: the run asks for text_source={spec.text_source!r} but the manifest "
                            f"carries {text_source!r} text; build it with texts_for(manifest, {spec.text_source!r})")
    engine = asr_engine_of(manifest)
    model_config = build_config(spec.model, settings, spec.model_options, features, len(job.classes))
    config = {
        "model": spec.model, "model_config": model_config, STORED_NAMES["recipe"]: settings.name,
        "settings": settings.to_dict(), "label_scheme": settings.label_scheme, "classes": list(job.classes),
        STORED_NAMES["corpus_size"]: job.corpus.size, "text_source": text_source,
        # only for ASR text: oracle configs (and so run ids) stay as they were before ASR existed
        **({"asr_engine": engine} if engine else {}),
        "features": {k: {**f.spec.to_dict(), "frame_seconds": f.frame_seconds, "dim": f.dim} for k, f in features.items()},
    }
    if needs_pretraining(spec.model, settings):
        # Since 2026-12-07 the branches are the branch models' own runs (branch_models): the text
        # branch's batches are bucketed by text length, as pepino_text's own run, no longer by
        # the fusion's audio length, so the fusion trains from other weights. A new id keeps
        # older fusion runs from being reused beside these.
        config["branch_training"] = "own_runs"
    chash = config_hash(config)
    return f"{spec.model}-{chash[:8]}-{job.corpus.name}-{spec.protocol}-{fold.name}-s{seed}", chash, config


def finished_row(runs_root: Path, run_id: str, results: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """The results row of ``run_id`` when it finished (row and predictions written) and its
    stored predictions pass the reuse check, else None (a damaged run: :func:`damaged`)."""
    done = read_results(runs_root, missing_ok=True) if results is None else results
    if run_id in set(done["run_id"]) and (runs_root / "train" / run_id / "predictions.parquet").is_file():
        row = done[done["run_id"] == run_id]
        if damaged(runs_root, run_id, row) is None:
            return row.iloc[0].to_dict()
    return None


def damaged(runs_root: Path, run_id: str, row: pd.DataFrame) -> str | None:
    """Why a finished run's stored predictions cannot be reused (checked as training checks its
    inputs: :func:`~workbench.training.reuse.prediction_problems`), or None."""
    return prediction_problems(row, read_run_predictions(runs_root, run_id)).get(run_id)


def train_fold(job: FoldJob, manifest: Manifest, features: Mapping[str, InputFeatures],
               progress: bool = True) -> dict[str, Any]:
    """Train, test and record one (fold, seed) of a cross-validation; returns its results row."""
    return fit_fold(job, manifest, features, progress, commit=True)[0]


def commit_fold(runs_root: Path, row: Mapping[str, Any], preds: pd.DataFrame) -> None:
    """Append one finished training to the results tables of ``runs_root``."""
    # Predictions first, then the results row: the results row is the commit point of a run.
    rdir = results_dir(runs_root)
    append_rows(rdir / "predictions.parquet", preds)
    append_rows(rdir / "results.parquet", pd.DataFrame([dict(row)]))


def fit_fold(job: FoldJob, manifest: Manifest, features: Mapping[str, InputFeatures],
             progress: bool = True, commit: bool = False) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Train and test one (fold, seed) in its run directory: ``(row, predictions)`` for
    :func:`commit_fold` (a worker leaves the results tables to its parent), or ``(row, None)``
    for a run already finished (reused) or, with ``commit``, recorded here before the run's
    lock is released (so a process waiting for the run finds it finished)."""
    run_id, chash, config = run_identity(job, manifest, features)
    run_dir = job.out / "train" / run_id
    rerun = job.rerun
    if not rerun:
        done = finished_row(job.out, run_id)
        if done is not None:
            return done, None
        recorded = read_results(job.out, missing_ok=True)
        problem = damaged(job.out, run_id, recorded[recorded["run_id"] == run_id]) \
            if run_id in set(recorded["run_id"]) and (run_dir / "predictions.parquet").is_file() else None
        if problem is not None:  # a damaged run is retrained from scratch, and says so
            warnings.warn(f"run {run_id} in {job.out}: its stored predictions cannot be reused ({problem}); "
                          "retraining it", ReusedRunWarning, stacklevel=2)
            rerun = True
    # One process trains a run at a time: a worker that needs a branch run another worker is
    # training waits for it, then finds it finished (or resumes it from its last epoch).
    with run_lock(job.out, run_id):
        if not rerun:
            done = finished_row(job.out, run_id)
            if done is not None:
                return done, None
        else:  # start from scratch: a stale checkpoint must not be resumed
            for path in [run_dir / "last.pt", run_dir / "best.pt", *run_dir.glob("branch_*/*.pt")]:
                path.unlink(missing_ok=True)
        row, preds = _fit(job, manifest, features, run_id, chash, config, progress)
        if commit:
            commit_fold(job.out, row, preds)
            return row, None
        return row, preds


@contextmanager
def run_lock(runs_root: Path, run_id: str) -> Iterator[None]:
    """Hold the exclusive lock of one run (``<runs_root>/train/.<run_id>.lock``) while it trains."""
    folder = Path(runs_root) / "train"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{run_id}.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def branch_models(job: FoldJob, manifest: Manifest, features: Mapping[str, InputFeatures],
                  progress: bool = True) -> tuple[dict[str, torch.nn.Module], dict[str, str]]:
    """The trained branch models of ``job``'s model (its card's ``branches``) and the run id
    each came from: each branch is the branch model's own run of the same fold, seed, recipe
    and features (:func:`~workbench.training.strategies.branch_settings`), reused from the
    results table when it finished (its ``best.pt``, read with ``weights_only=True``), else
    trained now as a normal run, recorded in the results table so that the next strategy, and
    the branch model's own condition, reuse it."""
    spec = job.spec
    trained, runs = {}, {}
    for branch, branch_model in get_card(spec.model).branches.items():
        bset = branch_settings(spec.settings, branch_model)
        bspec = replace(spec, model=branch_model, settings=bset, folds=None, seeds=(job.seed,))
        inputs = model_inputs_of(branch_model, bset, spec.model_options)
        bfeatures = {k: v for k, v in features.items() if k in inputs}
        bjob = replace(job, spec=bspec, rerun=False)
        # trained here, a worker of a pool records it too (the tables are locked), while it holds the run
        row, _ = fit_fold(bjob, manifest, bfeatures, progress, commit=True)
        bmodel, _ = build_model(branch_model, bset, spec.model_options, bfeatures, len(job.classes))
        state = load_checkpoint(job.out / "train" / row["run_id"] / "best.pt")["model"]
        bmodel.load_state_dict(state)
        trained[branch], runs[branch] = bmodel.cpu(), str(row["run_id"])
    return trained, runs


def _fit(job: FoldJob, manifest: Manifest, features: Mapping[str, InputFeatures], run_id: str, chash: str,
         config: dict, progress: bool) -> tuple[dict[str, Any], pd.DataFrame]:
    spec, settings, fold, seed, classes = job.spec, job.spec.settings, job.fold, job.seed, list(job.classes)
    text_source = config["text_source"]
    run_dir = job.out / "train" / run_id
    seed_everything(seed)
    model, _ = build_model(spec.model, settings, spec.model_options, features, len(classes))
    data = fold_datasets(manifest, fold, features, classes, settings, seed, word_spans="word_spans" in model.inputs)
    run_dir.mkdir(parents=True, exist_ok=True)
    full_config = {**config, "run_id": run_id, "config_hash": chash, "corpus": job.corpus.name,
                   "corpus_options": job.corpus.to_dict(), "protocol": spec.protocol,
                   "protocol_options": dict(spec.protocol_options), "fold": fold.name, "fold_index": job.fold_index,
                   "folds_file": "folds.json", "normalisation_file": NORMALISATION_FILE, "seed": seed,
                   "train_ids": len(data.train)}
    atomic_write(run_dir / "config.json", lambda p: p.write_text(json.dumps(full_config, indent=1)))
    save_folds(list(job.folds), run_dir / "folds.json")
    save_normalisers(run_dir / NORMALISATION_FILE, data.normalisers)

    val = data.validation if len(data.validation) else None
    if needs_pretraining(spec.model, settings):
        trained, branch_runs = branch_models(job, manifest, features, progress)
        model.load_branches(settings.fusion_strategy, **trained)
        full_config["branch_runs"] = branch_runs  # which runs' weights it started from (not hashed)
        atomic_write(run_dir / "config.json", lambda p: p.write_text(json.dumps(full_config, indent=1)))
    result = train_model(model, data.train, settings, run_dir, validation=val, seed=seed, device=spec.device,
                         progress=progress)
    ev = evaluate(model, data.test, settings.batch_size, resolve_device(spec.device))
    pred = ev["probs"].argmax(1)
    m = classification_metrics(ev["labels"], pred, classes, ev["probs"])
    preds = pd.DataFrame({
        "run_id": run_id, "model": spec.model, "config_hash": chash, "protocol": spec.protocol, "fold": fold.name,
        "seed": seed, "utt_id": ev["ids"], "label": [classes[i] for i in ev["labels"]],
        "pred": [classes[i] for i in pred], "probs": [p.astype(float).tolist() for p in ev["probs"]],
    })
    atomic_write(run_dir / "predictions.parquet", lambda p: preds.to_parquet(p, index=False))
    row = {
        "run_id": run_id, "model": spec.model, "variant": settings.variant, "config_hash": chash, "config_json": json.dumps(config, sort_keys=True),
        STORED_NAMES["recipe"]: settings.name, "corpus": job.corpus.name, STORED_NAMES["corpus_size"]: job.corpus.size,
        "label_scheme": settings.label_scheme, "classes": json.dumps(classes), "protocol": spec.protocol,
        "fold": fold.name, "seed": seed, "text_source": text_source, "test_wer": pooled_wer(manifest, fold.test),
        "n_train": len(data.train),
        "n_val": len(data.validation), "n_test": len(data.test), "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch, "wa": m["wa"], "ua": m["ua"], "macro_f1": m["macro_f1"],
        "weighted_f1": m["weighted_f1"], "av_auc": m.get("av_auc", float("nan")),
        "train_seconds": result.train_seconds, "utts_per_second": result.utts_per_second, "device": result.device,
        "run_dir": str(run_dir), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return row, preds


def run_jobs_locally(prepared: Sequence[PreparedCrossval], backend: BackendOptions = BackendOptions(),
                     progress: bool = True) -> list[pd.DataFrame]:
    """Train the jobs of ``prepared`` on this machine: one after another in this process
    (``backend.jobs == 1``), else in ``backend.jobs`` spawned worker processes with
    ``backend.threads`` torch threads each. One frame per prepared cross-validation, rows in job
    order, failures in ``.attrs["failed"]`` (fold, seed, error) as on Ray.

    The run ids are decided here first (:func:`run_identity`): finished runs are reused without
    a worker, and a run asked twice (two conditions with one configuration) trains once. Workers
    write only their run directories; this process alone appends to the results tables, as each
    training ends. The manifests and features travel to each worker once, when it starts.
    """
    from workbench.distributed import run_tasks

    in_process = backend.jobs == 1
    groups = [(p.manifest, p.features) for p in prepared]
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    copies: dict[tuple[int, int], tuple[int, int]] = {}  # a duplicate run -> the job that trains it
    owner: dict[tuple[Path, str], tuple[int, int]] = {}
    calls = []
    results_of: dict[Path, pd.DataFrame] = {}
    for g, p in enumerate(prepared):
        for j, job in enumerate(p.jobs):
            run_id = run_identity(job, p.manifest, p.features)[0]
            if not job.rerun:
                if job.out not in results_of:
                    results_of[job.out] = read_results(job.out, missing_ok=True)
                done = finished_row(job.out, run_id, results_of[job.out])
                if done is not None:
                    rows[(g, j)] = done
                    continue
            if (job.out, run_id) in owner:
                copies[(g, j)] = owner[(job.out, run_id)]
                continue
            owner[(job.out, run_id)] = (g, j)
            # Trained in this process, a training shows its epochs.
            calls.append((f"{g}/{j}", (g, job, progress and in_process), {}))

    def commit(outcome: Any) -> None:
        # Here, not in the training's process, whichever that was: an error writing the tables
        # (a full disk) stops the whole run on every local backend instead of failing each
        # training in turn.
        if outcome.ok:
            row, preds = outcome.value
            if preds is not None:
                g, j = (int(x) for x in outcome.key.split("/"))
                commit_fold(prepared[g].jobs[j].out, row, preds)

    outcomes = run_tasks(_fit_job, calls, backend, shared={"groups": groups}, desc="trainings",
                         progress=progress and not in_process, on_result=commit)
    errors: dict[tuple[int, int], str] = {}
    for (key, _, _), outcome in zip(calls, outcomes):
        g, j = (int(x) for x in key.split("/"))
        if outcome.ok:
            rows[(g, j)] = outcome.value[0]
        else:
            errors[(g, j)] = outcome.error
    for copy, src in copies.items():
        if src in rows:
            rows[copy] = rows[src]
        else:
            errors[copy] = errors[src]
    frames = []
    for g, p in enumerate(prepared):
        frame = pd.DataFrame([rows[(g, j)] for j in range(len(p.jobs)) if (g, j) in rows])
        frame.attrs["failed"] = [{"fold": job.fold.name, "seed": int(job.seed), "error": errors[(g, j)]}
                                 for j, job in enumerate(p.jobs) if (g, j) in errors]
        frames.append(frame)
    return frames


def _fit_job(group: int, job: FoldJob, progress: bool, groups: Sequence[tuple[Manifest, Any]]) -> tuple:
    """One training of :func:`run_jobs_locally`, in this process or a worker (whose torch
    threads :func:`~workbench.distributed.run_tasks` has set)."""
    manifest, features = groups[group]
    return fit_fold(job, manifest, features, progress=progress)


__all__ = ["CrossValError", "FoldJob", "failure_report", "PreparedCrossval", "branch_models", "check_fold", "commit_fold", "finished_row", "fit_fold",
           "prepare_crossval", "run_crossval", "run_identity", "run_jobs_locally", "run_lock", "run_prepared", "select_folds",
           "train_fold"]
