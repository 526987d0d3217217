"""Reuse or train: the one place that turns planned runs into finished ones.

:func:`ensure_runs` cross-validates a list of :class:`~workbench.training.spec.RunSpec` into one
runs root. :func:`~workbench.training.crossval.run_crossval` reuses every (fold, seed) run the
results table already holds (the run id carries the configuration hash), so asking twice trains
once. Every "train if missing" of the workbench goes through it:

- :func:`train_missing`: the models a runs root has no rows for (notebooks 05 and 06);
- :func:`train_for_evaluation`: those models under the leakage experiment's protocols (notebook 05);
- :func:`counterpart`: a run's twin on the other text source (oracle vs ASR, notebook 06);
- :func:`choose_run`: the run notebook 06 shows, trained on fold 0 / seed 0 when asked and missing;
- :func:`workbench.experiments.reproduce.reproduce` and
  :func:`workbench.experiments.leakage.run_leakage_experiment`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.evaluation.leakage_experiment import FIG2_MODELS, FIG2_SIZES, PROTOCOLS
from workbench.training.recipes import Recipe
from workbench.training.runs_root import find_runs, models_without_rows
from workbench.training.spec import BackendOptions, CorpusOptions, RunSpec


class RunNotFoundError(WorkbenchError, FileNotFoundError):
    """No trained run of the model asked for; the message names the runs root and the fix."""


@dataclass
class EnsuredRuns:
    """What :func:`ensure_runs` did, one entry per spec in the order given: ``rows[i]`` the
    results rows of ``specs[i]`` (None when it could not run), ``errors[i]`` why not (None when
    it ran)."""

    specs: list[RunSpec]
    rows: list[pd.DataFrame | None] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """The rows of every spec that ran, in one table (empty when none did)."""
        parts = [r for r in self.rows if r is not None]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def ensure_runs(specs: Sequence[RunSpec], corpus: CorpusOptions, runs_root: str | Path,
                backend: BackendOptions = BackendOptions(), progress: bool = False, keep_going: bool = False,
                **crossval: Any) -> EnsuredRuns:
    """Every run of ``specs`` on ``corpus`` in the runs folder ``runs_root``: reused when the
    results table has it, trained otherwise (:func:`~workbench.training.crossval.run_crossval`,
    to which ``backend``, ``progress`` and ``crossval`` go: ``manifest=``, ``features=``,
    ``cache=``). ``keep_going``: a spec that cannot run (a :class:`~workbench.errors.WorkbenchError`)
    or whose (fold, seed) trainings failed (listed alike by every backend) is recorded in
    ``errors`` and the others still run; without it the first is raised (failed trainings as a
    :class:`TrainingsFailed` naming them, after the spec's other trainings ended)."""
    from workbench.training.crossval import failure_report, run_crossval  # looked up per call: tests stand in for it

    done = EnsuredRuns(list(specs))
    for spec in done.specs:
        try:
            got = run_crossval(spec, corpus, backend, runs_root=runs_root, progress=progress, **crossval)
            failed = got.attrs.get("failed", [])
            if failed:
                variant = f"[{spec.settings.variant}]" if spec.settings.variant else ""
                raise TrainingsFailed(f"{spec.model}{variant} under {spec.protocol}: {failure_report(failed)}")
        except WorkbenchError as e:
            if not keep_going:
                raise
            done.rows.append(None)
            done.errors.append(str(e))
            continue
        done.rows.append(got)
        done.errors.append(None)
    return done


class TrainingsFailed(WorkbenchError):
    """Trainings of a run specification failed (every backend reports them alike); the message
    names how many, and the first one's fold, seed and error."""


def train_missing(
    models: Sequence[str],
    corpus: CorpusOptions,
    runs_root: str | Path,
    recipe: str | Recipe = "demo",
    protocols: Sequence[str | None] = (None,),
    variants: Mapping[str, Sequence[str | None]] | None = None,
    folds: Sequence[int | str] | None = (0,),
    seeds: Sequence[int] = (0,),
    text_source: str = "oracle",
    progress: bool = False,
    **crossval: Any,
) -> pd.DataFrame:
    """Cross-validate into ``runs_root`` every model of ``models`` that has no row there yet
    (:func:`~workbench.training.runs_root.models_without_rows`): recipe ``recipe`` under each of
    ``protocols`` (None: the recipe's own), for each of the model's ``variants`` (default: its
    default configuration only), on ``folds`` x ``seeds``. A model with rows is left alone even
    if they came from another recipe: this fills gaps, it does not rerun. Returns the rows
    trained (empty when nothing was missing). ``crossval`` goes to :func:`ensure_runs`
    (``manifest=``, ``features=``, ``cache=``).
    """
    variants = variants or {}
    specs = [RunSpec.create(model, recipe, variant=variant or None, protocol=protocol, folds=folds, seeds=seeds,
                            text_source=text_source)
             for model in models_without_rows(runs_root, models)
             for variant in variants.get(model, (None,))
             for protocol in protocols]
    return ensure_runs(specs, corpus, runs_root, progress=progress, **crossval).table()


def train_for_evaluation(
    models: Sequence[str],
    corpus: CorpusOptions,
    runs_root: str | Path,
    recipe: str | Recipe = "demo",
    folds: Sequence[int | str] | None = (0,),
    seeds: Sequence[int] = (0,),
    sizes: Sequence[str] = FIG2_SIZES,
    progress: bool = False,
    **crossval: Any,
) -> pd.DataFrame:
    """:func:`train_missing` for notebook 05: each of ``models`` without rows in ``runs_root``
    is cross-validated with ``recipe`` under the leakage experiment's three protocols
    (:data:`~workbench.evaluation.leakage_experiment.PROTOCOLS`); Pepino's
    ``pepino_audio``/``pepino_text`` in each of ``sizes`` (the variants of Fig. 2). Returns the
    rows trained."""
    variants = {m: tuple(sizes) for m in FIG2_MODELS}
    return train_missing(models, corpus, runs_root, recipe, protocols=PROTOCOLS, variants=variants, folds=folds,
                         seeds=seeds, progress=progress, **crossval)


def counterpart(config: Mapping[str, Any], text_source: str, runs_root: str | Path, root: str | Path | None = None,
                progress: bool = False, **crossval: Any) -> str:
    """Run directory of the run with the settings, protocol, fold and seed of a run's
    ``config.json`` (``config``) trained and tested on ``text_source`` text instead; reused when
    ``runs_root`` has it, trained there otherwise. ``root`` replaces the corpus folder the run
    recorded (a real corpus copied elsewhere since)."""
    spec = RunSpec.create(config["model"], Recipe.from_dict(config["settings"]), protocol=config["protocol"],
                          protocol_options=config["protocol_options"], folds=[config["fold"]], seeds=[config["seed"]],
                          model_options=config["model_config"], text_source=text_source)
    corpus = CorpusOptions.from_dict(config["corpus_options"])  # "preset" in runs trained before the rename
    if root is not None:
        corpus = replace(corpus, root=str(root))
    rows = ensure_runs([spec], corpus, runs_root, progress=progress, **crossval).table()
    return str(rows.iloc[0]["run_dir"])


def choose_run(runs_root: str | Path, model: str, corpus: CorpusOptions, text_source: str = "oracle",
               run_dir: str | Path | None = None, train: bool = False, recipe: str | Recipe = "demo",
               progress: bool = False) -> tuple[str, pd.DataFrame]:
    """``(run directory, every run found)`` for ``model`` on ``corpus`` (its name, and its size
    for the synthetic corpus) read on ``text_source`` text under ``runs_root``, newest first
    (:func:`~workbench.training.runs_root.find_runs`). ``run_dir`` given: that one. None found
    and ``train``: ``recipe`` is cross-validated on fold 0 with seed 0 into ``runs_root`` first.
    Still none: :class:`RunNotFoundError`."""
    where = dict(corpus=corpus.name, corpus_size=corpus.size if corpus.name == "synthetic" else None)
    found = find_runs(runs_root, model, text_source=text_source, **where)
    if run_dir is not None:
        return str(run_dir), found
    if found.empty and train:
        ensure_runs([RunSpec.create(model, recipe, folds=[0], seeds=[0], text_source=text_source)], corpus,
                    runs_root, progress=progress)
        found = find_runs(runs_root, model, text_source=text_source, **where)
    if found.empty:
        raise RunNotFoundError(f"no trained {model!r} run on {text_source} text for corpus {corpus.name!r} under "
                               f"{runs_root}: train one with notebook 04 (text_source = {text_source!r}), or add "
                               f"{model!r} to train_missing")
    return str(found.iloc[0]["run_dir"]), found


__all__ = ["EnsuredRuns", "RunNotFoundError", "TrainingsFailed", "choose_run", "counterpart", "ensure_runs", "train_for_evaluation",
           "train_missing"]
