"""Where generated data, feature caches and runs live.

Notebooks run with their own folder as working directory (JupyterLab, papermill, nbval all
do), so relative defaults would scatter copies of the corpus. Defaults therefore resolve to
the project checkout when the package is installed from one (``pip install -e .``), and to
the working directory otherwise. Environment variables override each:
``WORKBENCH_DATA``, ``WORKBENCH_CACHE``, ``WORKBENCH_RUNS``.
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.errors import WorkbenchError


def project_root() -> Path:
    """The checkout holding this package (editable install), else the working directory."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def data_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_DATA") or project_root() / "data")


def cache_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_CACHE") or project_root() / ".cache" / "features")


def runs_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_RUNS") or project_root() / "runs")


def worker_env() -> dict[str, str]:
    """What a worker on another node needs to find the driver's folders (which must be shared
    paths anyway) and to stay offline: handed to Ray tasks by batches and cross-validation."""
    return {"WORKBENCH_DATA": str(data_dir()), "WORKBENCH_CACHE": str(cache_dir()), "WORKBENCH_RUNS": str(runs_dir()),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


class RunsRootError(WorkbenchError, ValueError):
    """A ``runs_root`` that names no folder (an empty string)."""


def resolve_runs_root(runs_root: str | Path | None, default: str | None = None) -> Path:
    """The absolute runs folder a ``runs_root`` parameter names (the rule: :mod:`workbench.training.runs_root`);
    ``default``: a folder under ``$WORKBENCH_RUNS`` that None stands for instead of the runs
    directory itself (``reproduce`` for the ledger)."""
    if runs_root is None:
        return runs_dir() / default if default else runs_dir()
    text = str(runs_root)
    if not text.strip():
        raise RunsRootError("runs root is empty ('' is no folder); give a path, or leave it out for "
                            f"{runs_dir() / default if default else runs_dir()}")
    for var in ("$WORKBENCH_RUNS", "${WORKBENCH_RUNS}"):
        if text == var or text.startswith(var + "/"):
            text = str(runs_dir()) + text[len(var):]
    return Path(os.path.abspath(Path(text).expanduser()))
