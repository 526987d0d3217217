"""A runs root: the folder that holds ``results/results.parquet`` (one row per trained
(fold, seed)), ``results/predictions.parquet`` and ``train/<run_id>/``; and reading what it holds.

Every notebook names it ``runs_root``, and :func:`resolve_runs_root` gives it one meaning for
every entry point (notebooks, ``--runs-root``, ``run_crossval`` and ``reproduce``): None is
:func:`workbench.paths.runs_dir` (``$WORKBENCH_RUNS``, default ``runs/`` in the project); a
leading ``~`` or ``$WORKBENCH_RUNS`` is expanded (the latter to ``runs_dir()`` even when the
variable is unset, so ``"$WORKBENCH_RUNS/reproduce"`` works in notebooks and grids alike); any
other relative path is relative to the current working directory, as every path is; an empty
string is an error. ``workbench batch`` makes a relative ``runs_root`` of a grid absolute
against its own working directory before a notebook (which runs in ``notebooks/``) sees it.

:func:`models_without_rows` and :func:`find_runs` read what a runs root holds; filling it
(reuse or train) is :mod:`workbench.experiments.runs`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from workbench.paths import RunsRootError, resolve_runs_root  # noqa: F401  (here first; one rule, in paths)
from workbench.training.results import STORED_NAMES, read_results


def models_without_rows(runs_root: str | Path, models: Sequence[str]) -> list[str]:
    """The names of ``models`` (in their order) that have no row in the results table of the
    runs folder ``runs_root`` (already resolved; none yet is fine: every model is missing)."""
    table = read_results(runs_root, missing_ok=True)
    have = set(table["model"]) if len(table) else set()
    return [m for m in dict.fromkeys(models) if m not in have]


def find_runs(runs_root: str | Path, model: str, corpus: str | None = None,
              corpus_size: str | None = None, text_source: str | None = None) -> pd.DataFrame:
    """Rows of the results table under ``runs_root`` for ``model`` (and corpus / corpus
    size, stored as ``STORED_NAMES["corpus_size"]`` / the text the model read when given) whose
    run directory still holds ``best.pt``, newest first."""
    r = read_results(runs_root, missing_ok=True)  # none yet: the caller may train one
    keep = r["model"] == model
    if corpus is not None:
        keep &= r["corpus"] == corpus
    if corpus_size is not None:
        keep &= r[STORED_NAMES["corpus_size"]] == corpus_size
    if text_source is not None:
        keep &= r["text_source"].fillna("oracle") == text_source
    r = r[keep]
    # a boolean Series, not a list: an empty list would select columns instead of rows
    r = r[r["run_dir"].map(lambda d: (Path(d) / "best.pt").is_file()).astype(bool)]
    return r.sort_values("created", ascending=False).reset_index(drop=True)
