"""A runs root: the folder that holds ``results/results.parquet`` (one row per trained
(fold, seed)), ``results/predictions.parquet`` and ``train/<run_id>/``; and filling it.

Every notebook names it ``runs_root``. :func:`resolve_runs_root` turns that parameter into a
path: None is :func:`workbench.paths.runs_dir` (``$WORKBENCH_RUNS``, default ``runs/`` in the
project), an absolute path is itself, and a relative path is a folder *under* the runs
directory (notebooks run with ``notebooks/`` as their working directory, where a relative path
would scatter runs; ``runs_root = "reproduce"`` is where ``workbench reproduce`` writes).

:func:`train_missing` cross-validates the models a runs root has no rows for (notebooks 05
and 06 call it for the models their ``train_missing`` parameter names), and
:func:`counterpart` trains (or finds) a run's twin on the other text source (oracle vs ASR).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from workbench import paths
from workbench.training.presets import TrainPreset
from workbench.training.results import read_results
from workbench.training.spec import CorpusOptions, RunSpec


def resolve_runs_root(runs_root: str | Path | None) -> Path:
    """The runs folder a ``runs_root`` parameter names: None -> ``$WORKBENCH_RUNS``
    (:func:`workbench.paths.runs_dir`); absolute -> itself; relative -> under ``$WORKBENCH_RUNS``."""
    if runs_root is None:
        return paths.runs_dir()
    p = Path(runs_root).expanduser()
    return p if p.is_absolute() else paths.runs_dir() / p


def models_without_rows(runs_root: str | Path, models: Sequence[str]) -> list[str]:
    """The names of ``models`` (in their order) that have no row in the results table of the
    runs folder ``runs_root`` (already resolved)."""
    table = read_results(runs_root)
    have = set(table["model"]) if len(table) else set()
    return [m for m in dict.fromkeys(models) if m not in have]


def train_missing(
    models: Sequence[str],
    corpus: CorpusOptions,
    runs_root: str | Path,
    recipe: str | TrainPreset = "demo",
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

    spec = RunSpec.create(config["model"], TrainPreset.from_dict(config["settings"]), protocol=config["protocol"],
                          protocol_options=config["protocol_options"], folds=[config["fold"]], seeds=[config["seed"]],
                          model_options=config["model_config"], text_source=text_source)
    corpus = CorpusOptions.from_dict(config["corpus_options"])  # "preset" in runs trained before the rename
    if root is not None:
        corpus = replace(corpus, root=str(root))
    rows = run_crossval(spec, corpus, runs_root=runs_root, progress=progress, **crossval)
    return str(rows.iloc[0]["run_dir"])
