"""The results and predictions tables (Parquet) that cross-validation appends to.

Layout (shared with ``workbench.evaluation``)::

    <runs root>/results/results.parquet      one row per run (RESULT_COLUMNS)
    <runs root>/results/predictions.parquet  one row per (run_id, utt_id) (PREDICTION_COLUMNS)

Two columns keep the names they had before the parameters were renamed, because stored tables
and the hashed run configuration (hence every run id) use them: :data:`STORED_NAMES` maps the
names the code uses (``recipe``, ``corpus_size``) to the stored ones, and every reader and
writer goes through it, so the old names live in this one place.

Appending reads the table, drops rows of the run ids being written (a rerun replaces its rows,
never duplicates them), concatenates and replaces the file with
:func:`workbench.io.atomic_write` under an exclusive ``fcntl`` lock: a crash mid-write leaves
the old table intact and concurrent writers do not lose each other's rows.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "t.parquet"
>>> _ = append_rows(p, pd.DataFrame({"run_id": ["a", "b"], "x": [1, 2]}))
>>> _ = append_rows(p, pd.DataFrame({"run_id": ["a"], "x": [3]}))
>>> pd.read_parquet(p).sort_values("run_id")["x"].tolist()
[3, 2]
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.io import atomic_write
from workbench.paths import resolve_runs_root

#: The name each idea has in stored artefacts, where it differs from the name the code uses.
#: Results tables and the hashed run configuration (``config.json``; hence every run id) store the
#: training recipe as ``train_preset`` and the synthetic corpus's size as ``corpus_preset``;
#: renaming them would change every run id, so they stay, and only this mapping spells them.
STORED_NAMES: dict[str, str] = {"recipe": "train_preset", "corpus_size": "corpus_preset"}
#: The same for the JSON header of a features bundle (:mod:`workbench.training.bundle`).
BUNDLE_STORED_NAMES: dict[str, str] = {"recipe": "preset", "corpus_size": "corpus_preset"}

RESULT_COLUMNS = [
    "run_id", "model", "variant", "config_hash", "config_json", STORED_NAMES["recipe"], "corpus",
    STORED_NAMES["corpus_size"], "label_scheme",
    "classes", "protocol", "fold", "seed", "text_source", "test_wer", "n_train", "n_val", "n_test", "epochs_run", "best_epoch",
    "wa", "ua", "macro_f1", "weighted_f1", "av_auc", "train_seconds", "utts_per_second", "device", "run_dir", "created",
]
PREDICTION_COLUMNS = ["run_id", "model", "config_hash", "protocol", "fold", "seed", "utt_id", "label", "pred", "probs"]


class ResultsError(WorkbenchError, ValueError):
    """A results or predictions table is unreadable; the message names the file."""


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one Parquet table; :class:`ResultsError` names the file when it is not Parquet.

    Never overwritten on failure: the caller stops, so the rows in a damaged table are not
    lost to the next append.
    """
    path = Path(path)
    try:
        # One open file: a concurrent append replaces the table by rename, and a reader that
        # opened the path twice (footer, then pages) could mix the old file with the new.
        with open(path, "rb") as fh:
            return pd.read_parquet(fh)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise ResultsError(f"{path}: unreadable results table ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
                           "move it aside to start a new table, or restore it from a backup") from e


class ResultsNotFoundError(ResultsError, FileNotFoundError):
    """A runs root holds no results table (or none with the rows asked for); the message names
    the folder."""


#: Columns every results table has (a Parquet file without them is some other table).
REQUIRED_RESULT_COLUMNS = ("run_id", "model")


def results_dir(runs_root: str | Path) -> Path:
    """``results/`` of a runs root, named as every entry point names it
    (:func:`workbench.paths.resolve_runs_root`: ``~`` and ``$WORKBENCH_RUNS/`` expanded, relative
    to the working directory)."""
    return resolve_runs_root(runs_root) / "results"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)


def append_rows(path: str | Path, rows: pd.DataFrame, key: str = "run_id") -> Path:
    """Add ``rows`` to the Parquet table at ``path``, replacing existing rows with the same
    ``key`` values; atomic and locked (see the module docstring)."""
    path = Path(path)
    if key not in rows.columns:
        raise ValueError(f"rows to append to {path} have no {key!r} column")
    with _locked(path):
        if path.is_file():
            old = read_table(path)
            if key not in old.columns:  # a Parquet file, but not one of ours: never overwritten
                raise ResultsError(f"{path}: a table without a {key!r} column (it has {list(old.columns)[:8]}): not a "
                                   "workbench table; move it aside to start a new one")
            old = old[~old[key].isin(set(rows[key]))]
            table = pd.concat([old, rows], ignore_index=True) if len(old) else rows.reset_index(drop=True)
        else:
            table = rows.reset_index(drop=True)
        atomic_write(path, lambda tmp: _write_parquet(table, tmp))
    return path


def read_results(runs_root: str | Path, missing_ok: bool = False) -> pd.DataFrame:
    """The results table under ``runs_root``. A root without one is a
    :class:`ResultsNotFoundError` naming the folder (a mistyped path must not read as "no runs
    yet"), or, with ``missing_ok`` (callers about to fill a new root), an empty table with the
    right columns. A Parquet file lacking :data:`REQUIRED_RESULT_COLUMNS` is a :class:`ResultsError`."""
    p = results_dir(runs_root) / "results.parquet"
    if not p.is_file():
        if missing_ok:
            return pd.DataFrame(columns=RESULT_COLUMNS)
        raise ResultsNotFoundError(f"no results table in runs root {p.parent.parent} (no {p.name} in its "
                                   "results/): train into it first, or check the path (a relative runs root is "
                                   "relative to the working directory)")
    table = read_table(p)
    missing = [c for c in REQUIRED_RESULT_COLUMNS if c not in table.columns]
    if missing:
        raise ResultsError(f"{p}: not a results table: no column(s) {missing} (it has {list(table.columns)[:8]}); "
                           "move it aside to start a new table")
    if "variant" not in table.columns:  # tables written before variants were recorded: defaults
        table.insert(2, "variant", "")
    if "test_wer" not in table.columns:  # tables written before ASR text existed: all oracle text
        at = list(table.columns).index("text_source") + 1 if "text_source" in table.columns else len(table.columns)
        table.insert(at, "test_wer", float("nan"))
    return table


def read_run_predictions(runs_root: str | Path, run_id: str) -> pd.DataFrame:
    """The rows of one run in the predictions table of ``runs_root`` (empty when absent); only
    those rows are decoded, so checking a run before reusing it stays cheap in a large table."""
    p = results_dir(runs_root) / "predictions.parquet"
    if not p.is_file():
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    try:
        with open(p, "rb") as fh:  # one open file, as in read_table
            return pd.read_parquet(fh, filters=[("run_id", "==", run_id)])
    except (OSError, ValueError) as e:
        raise ResultsError(f"{p}: unreadable predictions table ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
                           "move it aside to start a new table, or restore it from a backup") from e


def read_predictions(runs_root: str | Path) -> pd.DataFrame:
    p = results_dir(runs_root) / "predictions.parquet"
    return read_table(p) if p.is_file() else pd.DataFrame(columns=PREDICTION_COLUMNS)
