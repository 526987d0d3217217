"""Training the fold-leakage experiment of Pepino et al. 2020 (section 4.1, Fig. 2): its runs
planned (:func:`leakage_specs`) and reused or trained (:func:`run_leakage_experiment`). The
summaries (:func:`~workbench.evaluation.leakage_experiment.leakage_table`, Fig. 2's medians) are
scoring, in :mod:`workbench.evaluation.leakage_experiment`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from workbench.evaluation.leakage_experiment import FIG2_MODELS, FIG2_SIZES, PROTOCOLS
from workbench.experiments.runs import ensure_runs
from workbench.training.results import read_predictions, results_dir
from workbench.training.reuse import check_predictions
from workbench.training.spec import CorpusOptions, RunSpec


def leakage_specs(
    recipe: str = "paper",
    models: Sequence[str] = FIG2_MODELS,
    variants: Sequence[str] = FIG2_SIZES,
    protocols: Sequence[str] = PROTOCOLS,
    folds: Sequence[int | str] | None = None,
    seeds: Sequence[int] = (0,),
) -> list[RunSpec]:
    """One :class:`~workbench.training.spec.RunSpec` per (model, variant, protocol) of the
    experiment under training ``recipe`` (variant ``""``: the model's default configuration)."""
    return [RunSpec.create(m, recipe, variant=v or None, protocol=p, folds=folds, seeds=seeds)
            for m in models for v in variants for p in protocols]


def run_leakage_experiment(corpus: CorpusOptions, runs_root: str | Path, specs: Sequence[RunSpec] | None = None,
                           progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cross-validate every run of ``specs`` (default: :func:`leakage_specs` with its defaults,
    the paper's experiment) on ``corpus`` under the runs folder ``runs_root`` (finished runs are
    reused); returns (results rows, their test predictions), the inputs of
    :func:`~workbench.evaluation.aggregate.merged_fold_metrics`."""
    results = ensure_runs(leakage_specs() if specs is None else specs, corpus, runs_root, progress=progress).table()
    predictions = read_predictions(runs_root)
    predictions = predictions[predictions["run_id"].isin(set(results["run_id"]))].reset_index(drop=True)
    check_predictions(results, predictions, str(results_dir(runs_root) / "predictions.parquet"))
    return results, predictions


__all__ = ["leakage_specs", "run_leakage_experiment"]
