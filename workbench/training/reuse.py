"""Checks on stored test predictions before anything reuses them.

Training checks its inputs; what is *reused* from a runs root (a ``workbench reproduce`` ledger,
cross-validation skipping a finished run, notebook 05's tables) is checked the same way, since
one damaged run averaged in moves a verdict (a NaN ``probs`` row once moved a claim from
*refuted* to *inconclusive* without a word). For every run of a results table,
:func:`prediction_problems` checks its rows of the predictions table:

- there is one row per (run, utterance), and as many as the run's ``n_test``;
- ``probs`` is a list of one probability per class of the run, each finite and in [0, 1],
  summing to 1 (the model's softmax; within :data:`SUM_TOLERANCE`);
- ``label`` and ``pred`` are classes of the run.

A run that fails is named with the first reason found. Cross-validation retrains it
(:func:`workbench.training.crossval.train_fold`, with a :class:`ReusedRunWarning`); readers that
cannot retrain (the ledger, :func:`workbench.evaluation.collect.load_results`) refuse it with an
error naming the run. The check is vectorised: see docs/robustness.md for its cost on a
5,000-run table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from workbench.training.results import ResultsError

#: How far the probabilities of one utterance may sum from 1 (float32 softmax is within 1e-6).
SUM_TOLERANCE = 1e-3


class ReusedRunWarning(UserWarning):
    """A finished run's stored predictions failed :func:`prediction_problems`; it is retrained."""


class BadPredictionsError(ResultsError):
    """Stored predictions that cannot be reused; the message names the run(s) and the reason."""


def _classes(value: object) -> list[str] | None:
    try:
        classes = json.loads(value) if isinstance(value, str) else list(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return [str(c) for c in classes] if isinstance(classes, list) and classes else None


def _row_probs(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: (length or -1 when not a list of numbers, all finite, all in [0, 1], sum)."""
    n = len(probs)
    try:  # the usual table: every row a 1-D numeric array (Parquet list<double>)
        lengths = np.fromiter(map(len, probs), dtype=np.int64, count=n)
        flat = np.concatenate(list(probs)).astype(np.float64, copy=False) if n else np.zeros(0)
        if flat.ndim != 1 or flat.size != lengths.sum():
            raise ValueError("not flat")
    except (TypeError, ValueError):  # None, scalars, strings, nested lists: row by row
        lengths = np.full(n, -1, dtype=np.int64)
        arrays = []
        for k, p in enumerate(probs):
            try:
                a = np.asarray(p, dtype=np.float64)
            except (TypeError, ValueError):
                continue
            if a.ndim == 1:
                lengths[k] = len(a)
                arrays.append(a)
        flat = np.concatenate(arrays) if arrays else np.zeros(0)
    finite = np.zeros(n, dtype=bool)
    in_range = np.zeros(n, dtype=bool)
    sums = np.full(n, np.nan)
    ok = lengths > 0
    if ok.any():
        starts = np.concatenate([[0], np.cumsum(lengths[ok])[:-1]])
        fin = np.isfinite(flat)
        finite[ok] = np.logical_and.reduceat(fin, starts)
        in_range[ok] = np.logical_and.reduceat((flat >= 0) & (flat <= 1) | ~fin, starts)
        sums[ok] = np.add.reduceat(np.where(fin, flat, 0.0), starts)
    return lengths, finite, in_range, sums


def prediction_problems(results: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, str]:
    """``run_id -> reason`` for every run of ``results`` whose rows of ``predictions`` cannot
    be reused (see the module docstring); runs that pass are absent.

    >>> r = pd.DataFrame({"run_id": ["a", "b"], "classes": ['["x", "y"]'] * 2, "n_test": [1, 1]})
    >>> p = pd.DataFrame({"run_id": ["a", "b"], "utt_id": ["u", "u"], "label": ["x", "x"],
    ...                   "pred": ["x", "y"], "probs": [[0.9, 0.1], [float("nan"), 0.5]]})
    >>> prediction_problems(r, p)
    {'b': '1 row(s) with non-finite probabilities, e.g. utterance u'}
    """
    problems: dict[str, str] = {}
    if results.empty:
        return problems
    missing_cols = [c for c in ("run_id", "utt_id", "label", "pred", "probs") if c not in predictions.columns]
    if missing_cols:
        return {str(r): f"the predictions table has no column(s) {missing_cols}" for r in results["run_id"]}
    runs = results.drop_duplicates("run_id").set_index("run_id")
    parsed = {c: _classes(c) for c in set(runs["classes"].astype(str))}  # a handful of distinct lists
    classes_of = {str(r): parsed[str(c)] for r, c in runs["classes"].items()}
    for run, classes in classes_of.items():
        if classes is None:
            problems[run] = f"its results row has no readable class list ({runs.at[run, 'classes']!r})"
    preds = predictions[predictions["run_id"].isin(list(classes_of))]
    counts = preds.groupby("run_id").size().reindex(runs.index, fill_value=0)
    expected = (pd.to_numeric(runs["n_test"], errors="coerce") if "n_test" in runs.columns
                else counts.astype(float))
    for run in counts.index[(counts == 0) | (counts != expected)]:  # few: the loop is over bad runs only
        got, want = int(counts[run]), expected[run]
        problems.setdefault(str(run), "no rows in the predictions table" if got == 0
                            else f"{got} prediction row(s) for n_test={want} test utterances")
    if preds.empty:
        return problems
    run_ids = preds["run_id"].astype(str).to_numpy()
    utts = preds["utt_id"].astype(str).to_numpy()
    n_classes = pd.Series(run_ids).map({r: len(c or ()) for r, c in classes_of.items()}).to_numpy()
    lengths, finite, in_range, sums = _row_probs(preds["probs"].to_numpy())
    label_ok = np.zeros(len(preds), dtype=bool)
    pred_ok = np.zeros(len(preds), dtype=bool)
    # runs share a handful of class lists: one vectorised isin per distinct list
    list_of_run = {r: json.dumps(c) for r, c in classes_of.items() if c}
    row_list = pd.Series(run_ids).map(list_of_run).to_numpy()
    for key in set(list_of_run.values()):
        rows = row_list == key
        allowed = json.loads(key)
        label_ok[rows] = preds["label"][rows].isin(allowed).to_numpy()
        pred_ok[rows] = preds["pred"][rows].isin(allowed).to_numpy()
    duplicate = preds.duplicated(["run_id", "utt_id"], keep="first").to_numpy()
    checks = [  # (bad rows, reason), the first that applies names the run
        (duplicate, "row(s) repeating an utterance"),
        (lengths != n_classes, "row(s) whose probabilities are not one number per class"),
        ((lengths == n_classes) & ~finite, "row(s) with non-finite probabilities"),
        ((lengths == n_classes) & finite & ~in_range, "row(s) with probabilities outside [0, 1]"),
        ((lengths == n_classes) & finite & in_range & ~(np.abs(sums - 1.0) <= SUM_TOLERANCE),
         "row(s) whose probabilities do not sum to 1"),
        (~label_ok, "row(s) whose label is not a class of the run"),
        (~pred_ok, "row(s) whose prediction is not a class of the run"),
    ]
    for bad, reason in checks:
        if not bad.any():
            continue
        frame = pd.DataFrame({"run": run_ids[bad], "utt": utts[bad]})
        for run, part in frame.groupby("run", sort=False):
            problems.setdefault(str(run), f"{len(part)} {reason}, e.g. utterance {part['utt'].iloc[0]}")
    return problems


def problems_line(problems: Mapping[str, str], where: str, limit: int = 3) -> str:
    """One line naming up to ``limit`` bad runs with their reasons (and how many more)."""
    shown = "; ".join(f"run {r}: {why}" for r, why in list(problems.items())[:limit])
    more = f"; and {len(problems) - limit} more run(s)" if len(problems) > limit else ""
    return f"{where}: stored predictions cannot be reused: {shown}{more}"


def check_predictions(results: pd.DataFrame, predictions: pd.DataFrame, where: str) -> None:
    """:class:`BadPredictionsError` naming the bad runs (:func:`prediction_problems`) and the
    fix; ``where`` names the table (the runs root's ``predictions.parquet``)."""
    problems = prediction_problems(results, predictions)
    if problems:
        raise BadPredictionsError(problems_line(problems, where) + "; retrain them (`workbench reproduce` or "
                                  "`workbench train` with the same settings retrains a run whose predictions "
                                  "fail this check) or delete their rows")
