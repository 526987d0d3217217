"""A runs root: the folder that holds ``results/results.parquet`` (one row per trained
(fold, seed)), ``results/predictions.parquet`` and ``train/<run_id>/``; and filling it.

Every notebook names it ``runs_root``, and :func:`resolve_runs_root` gives it one meaning for
every entry point (notebooks, ``--runs-root``, ``run_crossval`` and ``reproduce``): None is
:func:`workbench.paths.runs_dir` (``$WORKBENCH_RUNS``, default ``runs/`` in the project); a
leading ``~`` or ``$WORKBENCH_RUNS`` is expanded (the latter to ``runs_dir()`` even when the
variable is unset, so ``"$WORKBENCH_RUNS/reproduce"`` works in notebooks and grids alike); any
other relative path is relative to the current working directory, as every path is; an empty
string is an error. ``workbench batch`` makes a relative ``runs_root`` of a grid absolute
against its own working directory before a notebook (which runs in ``notebooks/``) sees it.

:func:`train_missing` cross-validates the models a runs root has no rows for (notebooks 05
and 06 call it for the models their ``train_missing`` parameter names), and
:func:`counterpart` trains (or finds) a run's twin on the other text source (oracle vs ASR).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from workbench.paths import RunsRootError, resolve_runs_root  # noqa: F401  (here first; one rule, in paths)
from workbench.training.recipes import Recipe
from workbench.training.results import read_results
from workbench.training.spec import CorpusOptions, RunSpec


def models_without_rows(runs_root: str | Path, models: Sequence[str]) -> list[str]:
    """The names of ``models`` (in their order) that have no row in the results table of the
    runs folder ``runs_root`` (already resolved; none yet is fine: every model is missing)."""
    table = read_results(runs_root, missing_ok=True)
    have = set(table["model"]) if len(table) else set()
    return [m for m in dict.fromkeys(models) if m not in have]


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
    (:func:`models_without_rows`): recipe ``recipe`` under each of ``protocols`` (None: the
    recipe's own), for each of the model's ``variants`` (default: its default configuration
    only), on ``folds`` x ``seeds``. A model with rows is left alone even if they came from
    another recipe: this fills gaps, it does not rerun. Returns the rows trained (empty when
    nothing was missing). ``crossval`` goes to :func:`~workbench.training.crossval.run_crossval`
    (``manifest=``, ``features=``, ``cache=``).
    """
    from workbench.training.crossval import run_crossval

    variants = variants or {}
    parts = []
    for model in models_without_rows(runs_root, models):
        for variant in variants.get(model, (None,)):
            for protocol in protocols:
                spec = RunSpec.create(model, recipe, variant=variant or None, protocol=protocol, folds=folds,
                                      seeds=seeds, text_source=text_source)
                parts.append(run_crossval(spec, corpus, runs_root=runs_root, progress=progress, **crossval))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def counterpart(config: Mapping[str, Any], text_source: str, runs_root: str | Path, root: str | Path | None = None,
                progress: bool = False, **crossval: Any) -> str:
    """Run directory of the run with the settings, protocol, fold and seed of a run's
    ``config.json`` (``config``) trained and tested on ``text_source`` text instead; reused when
    ``runs_root`` has it, trained there otherwise. ``root`` replaces the corpus folder the run
    recorded (a real corpus copied elsewhere since)."""
    from workbench.training.crossval import run_crossval

    spec = RunSpec.create(config["model"], Recipe.from_dict(config["settings"]), protocol=config["protocol"],
                          protocol_options=config["protocol_options"], folds=[config["fold"]], seeds=[config["seed"]],
                          model_options=config["model_config"], text_source=text_source)
    corpus = CorpusOptions.from_dict(config["corpus_options"])  # "preset" in runs trained before the rename
    if root is not None:
        corpus = replace(corpus, root=str(root))
    rows = run_crossval(spec, corpus, runs_root=runs_root, progress=progress, **crossval)
    return str(rows.iloc[0]["run_dir"])
