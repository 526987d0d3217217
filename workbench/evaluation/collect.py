"""What notebook 05 evaluates: the results of one runs root, the protocol its per-model
sections use, and one confusion matrix per system. (Filling gaps first, under the leakage
experiment's protocols, is :func:`workbench.experiments.runs.train_for_evaluation`'s.)

:func:`load_results` reads the results and predictions tables of a runs root, optionally only
some models and only each model's newest configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from workbench.evaluation.aggregate import latest_configurations, pooled_confusion

# ResultsNotFoundError lived here first: imported from here still
from workbench.training.results import ResultsNotFoundError, read_predictions, read_results, results_dir
from workbench.training.reuse import check_predictions


def load_results(runs_root: str | Path, models: Sequence[str] | None = None,
                 latest_only: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(results, predictions)`` of the runs folder ``runs_root``: only ``models`` when given,
    only each model's newest configuration with ``latest_only``
    (:func:`~workbench.evaluation.aggregate.latest_configurations`; ``results.attrs["left_out"]``
    counts the older runs left out), predictions only of the runs kept. A missing or (after the
    filters) empty table is a :class:`ResultsNotFoundError` naming ``runs_root``; a kept run
    whose stored predictions fail :func:`~workbench.training.reuse.prediction_problems` is a
    :class:`~workbench.training.reuse.BadPredictionsError` naming it."""
    path = results_dir(runs_root) / "results.parquet"
    if not path.is_file():
        raise ResultsNotFoundError(f"no results table at {path}: train models first (notebook 04, `workbench train`), "
                                   "name them in train_missing, or set runs_root to a runs folder that has one")
    table = read_results(runs_root)
    if models is not None:
        table = table[table["model"].isin(list(models))]
    left_out = 0
    if latest_only:
        kept = latest_configurations(table)
        left_out = len(table) - len(kept)
        table = kept
    if table.empty:
        raise ResultsNotFoundError(f"{path} has no rows for models {list(models) if models is not None else 'any'}; "
                                   "check models, or name them in train_missing")
    table = table.reset_index(drop=True)
    table.attrs["left_out"] = left_out
    preds = read_predictions(runs_root)
    preds = preds[preds["run_id"].isin(set(table["run_id"]))].reset_index(drop=True)
    # reused, so checked: a damaged run is named, never averaged in
    check_predictions(table, preds, str(results_dir(runs_root) / "predictions.parquet"))
    return table, preds


def main_protocol(results: pd.DataFrame, protocol: str | None = None) -> str:
    """``protocol`` when given, else the protocol with the most runs in ``results`` (a tie goes
    to the first name in alphabetical order, so the choice never depends on row order).

    >>> main_protocol(pd.DataFrame({"protocol": ["b", "a", "b", "a", "c"]}))
    'a'
    """
    if protocol is not None:
        return protocol
    counts = results["protocol"].value_counts()
    return str(sorted(counts[counts == counts.max()].index)[0])


def system_confusions(predictions: pd.DataFrame, classes: Sequence[str], normalise: bool = True,
                      by: str = "model") -> dict[str, pd.DataFrame]:
    """One pooled confusion matrix (every fold and seed; rows true, columns predicted) per
    value of ``by`` in ``predictions``, in sorted order; row-normalised with ``normalise``.
    Pass predictions through :func:`~workbench.evaluation.aggregate.name_systems` first so a
    model trained in several variants gives one matrix per variant."""
    return {str(name): pooled_confusion(part, classes, normalise=normalise)
            for name, part in predictions.groupby(by, sort=True)}
