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
