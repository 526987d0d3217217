"""Headless reruns: execute a grid of (notebook, parameters) with papermill.

A grid file is YAML::

    defaults:                 # parameters given to every notebook
      corpus: synthetic
      preset: smoke
    runs:
      - notebook: notebooks/01_explore.ipynb
      - notebook: notebooks/04_train.ipynb
        parameters: {epochs: 2}
        grid: {model: [xu_alignment, amh]}   # one executed copy per combination

Each cell of the grid becomes ``<out>/<stem>[__key=value...].ipynb``. ``defaults`` go to the
notebooks that declare them; a run's own ``parameters`` and ``grid`` names must exist in the
notebook's ``parameters`` cell and match the type of its default, or the cell fails without
running. A notebook executes under a temporary name and is renamed when it finishes: to
``<name>.ipynb`` on success, ``<name>.FAILED.ipynb`` (with the error in it) otherwise, so
nothing half-written ever sits under the final name. A failing notebook does not stop the
others; the summary says which failed and ``workbench batch`` exits non-zero. A cell whose
source notebook, parameters and library code are unchanged since its last successful run is
skipped unless ``force``.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import itertools
import json
import re
import time
import traceback
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import pandas as pd
import yaml

from workbench.io import atomic_write


@dataclass(frozen=True)
class GridCell:
    notebook: Path
    parameters: dict[str, Any]
    name: str
    problems: tuple[str, ...] = ()  # parameter errors found when the grid was loaded


@dataclass
class CellResult:
    name: str
    notebook: str
    output: Path
    status: str  # ok | failed | skipped
    seconds: float
    error: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)).strip("-")[:40]


def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """Names and default values of a notebook's ``parameters`` cell (defaults as Python values;
    a default that is not a literal maps to ``...``)."""
    import papermill as pm

    out = {}
    for name, info in pm.inspect_notebook(str(notebook)).items():
        try:
            out[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            out[name] = ...
    return out


def check_parameters(declared: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """Problems with ``given`` against a notebook's declared defaults: unknown names, and values
    whose type differs from a non-None default (an int where a float is expected is fine;
    None is accepted anywhere, as "use the notebook's own choice").

    >>> check_parameters({"epochs": 2, "lr": 0.1, "model": None}, {"epochs": "2", "lr": 1, "modle": "x"})
    ["parameter 'epochs': expected int like the default 2, got str '2'", "unknown parameter 'modle' (declared: epochs, lr, model)"]
    """
    problems = []
    for name, value in given.items():
        if name not in declared:
            problems.append(f"unknown parameter {name!r} (declared: {', '.join(sorted(declared))})")
            continue
        default = declared[name]
        if default is None or default is ... or value is None:
            continue
        expected = type(default)
        ok = isinstance(value, expected) and not (isinstance(value, bool) and expected is not bool)
        ok = ok or (expected is float and isinstance(value, int) and not isinstance(value, bool))
        ok = ok or (isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)))
        if not ok:
            problems.append(
                f"parameter {name!r}: expected {expected.__name__} like the default {default!r}, "
                f"got {type(value).__name__} {value!r}"
            )
    return problems


def load_grid(path: str | Path) -> list[GridCell]:
    """Expand a grid YAML into cells; notebook paths are relative to the current directory."""
    path = Path(path)
    spec = yaml.safe_load(path.read_text()) or {}
    if "runs" not in spec:
        raise ValueError(f"{path}: a grid file needs a 'runs' list")
    defaults = spec.get("defaults") or {}
    cells: list[GridCell] = []
    for i, run in enumerate(spec["runs"]):
        if "notebook" not in run:
            raise ValueError(f"{path}: runs[{i}] has no 'notebook'")
        nb = Path(run["notebook"]).resolve()
        if not nb.is_file():
            raise FileNotFoundError(f"{path}: runs[{i}]: notebook {run['notebook']} does not exist")
        declared = notebook_parameters(nb)
        axes = run.get("grid") or {}
        keys = list(axes)
        for combo in itertools.product(*(axes[k] for k in keys)) if keys else [()]:
            varying = dict(zip(keys, combo))
            own = {**(run.get("parameters") or {}), **varying}
            params = {**{k: v for k, v in defaults.items() if k in declared}, **own}
            suffix = "".join(f"__{k}={_slug(v)}" for k, v in varying.items())
            problems = tuple(f"{path}: runs[{i}]: {p}" for p in check_parameters(declared, params))
            cells.append(GridCell(nb, params, run.get("name", nb.stem) + suffix, problems))
    names = [c.name for c in cells]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"{path}: grid cells share output names {sorted(dup)}; give runs a 'name'")
    return cells


def _library_hash() -> str:
    """Hash of the workbench sources: a code change invalidates earlier runs."""
    h = hashlib.sha1()
    for p in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()


def _cell_key(cell: GridCell, lib_hash: str) -> str:
    h = hashlib.sha1(cell.notebook.read_bytes())
    h.update(json.dumps(cell.parameters, sort_keys=True, default=str).encode())
    h.update(lib_hash.encode())
    return h.hexdigest()


def run_cell(cell: GridCell, out_dir: Path, kernel: str = "python3", timeout: int = 1800) -> CellResult:
    """Execute one notebook with papermill; never raises for a failing notebook."""
    import papermill as pm

    output = out_dir / f"{cell.name}.ipynb"
    failed_copy = out_dir / f"{cell.name}.FAILED.ipynb"
    running = out_dir / f".{cell.name}.running.ipynb"
    if cell.problems:
        return CellResult(cell.name, str(cell.notebook), output, "failed", 0.0, "; ".join(cell.problems), cell.parameters)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(cell.notebook),
            str(running),
            parameters=cell.parameters,
            kernel_name=kernel,
            cwd=str(cell.notebook.parent),
            progress_bar=False,
            execution_timeout=timeout,
        )
        status, error = "ok", ""
    except Exception as e:  # papermill raises PapermillExecutionError carrying the cell's error
        status = "failed"
        if hasattr(e, "ename"):
            error = f"cell {getattr(e, 'exec_count', '?')}: {e.ename}: {e.evalue}"[:300]
        else:
            error = (traceback.format_exception_only(type(e), e)[-1]).strip()[:300]
    # the executed copy appears under its final name only once complete
    final = output if status == "ok" else failed_copy
    for stale in (output, failed_copy):
        stale.unlink(missing_ok=True)
    if running.is_file():
        os.replace(running, final)
    return CellResult(cell.name, str(cell.notebook), final, status, time.perf_counter() - t0, error, cell.parameters)


def export_html(results: list[CellResult], out_dir: Path) -> Path:
    """One HTML page per executed notebook plus an index linking them with their status."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    rows = []
    for r in results:
        link = ""
        if r.output.is_file():
            body, _ = exporter.from_filename(str(r.output))
            html_path = r.output.with_suffix(".html")
            atomic_write(html_path, lambda p, b=body: p.write_text(b, encoding="utf-8"))
            link = f'<a href="{html_path.name}">{r.name}</a>'
        rows.append(f"<tr><td>{link or r.name}</td><td>{r.status}</td><td>{r.seconds:.1f}</td><td>{r.error}</td></tr>")
    page = (
        "<html><head><meta charset='utf-8'><title>SER Workbench runs</title></head><body>"
        f"<h1>SER Workbench runs: {out_dir.name}</h1><table border=1 cellpadding=4>"
        "<tr><th>notebook</th><th>status</th><th>seconds</th><th>error</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    index = out_dir / "index.html"
    atomic_write(index, lambda p: p.write_text(page, encoding="utf-8"))
    return index


def run_grid(
    cells: list[GridCell],
    out_dir: str | Path,
    jobs: int = 1,
    force: bool = False,
    html: bool = True,
    kernel: str = "python3",
    backend: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    max_retries: int = 2,
    num_cpus: float = 1.0,
    num_gpus: float | None = None,
) -> list[CellResult]:
    """Run every cell (``jobs`` at a time), skipping unchanged successful ones unless ``force``.

    ``backend="ray"`` runs each cell as a Ray task instead (``jobs`` is then ignored: Ray runs
    as many as the cluster's CPUs/GPUs allow), asking for ``num_cpus`` and ``num_gpus`` each
    (None: a GPU fraction when the cluster has GPUs), retrying a failed cell ``max_retries``
    times; ``ray_address`` connects to an existing cluster (None starts a local one). See
    :mod:`workbench.distributed`. ``out_dir`` must then be on a filesystem every node sees.
    """
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    # absolute: papermill changes the working directory of the process while it runs
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / "batch_state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    lib_hash = _library_hash()

    todo, results = [], []
    for cell in cells:
        key = _cell_key(cell, lib_hash)
        output = out_dir / f"{cell.name}.ipynb"
        if not force and state.get(cell.name) == key and output.is_file():
            results.append(CellResult(cell.name, str(cell.notebook), output, "skipped", 0.0, "", cell.parameters))
        else:
            todo.append((cell, key))

    def record(cell: GridCell, key: str, r: CellResult) -> None:
        results.append(r)
        if r.status == "ok":
            state[cell.name] = key
        else:
            state.pop(cell.name, None)
        atomic_write(state_path, lambda p: p.write_text(json.dumps(state, indent=1, sort_keys=True)))

    if backend == "ray":
        _run_on_ray(todo, out_dir, kernel, record, ray_address, max_retries, num_cpus, num_gpus)
    else:
        from tqdm.auto import tqdm

        if jobs <= 1:  # in this process: papermill restores the working directory after each
            for cell, key in tqdm(todo, desc="notebooks", unit="nb"):
                record(cell, key, run_cell(cell, out_dir, kernel))
        else:
            # Processes, not threads: papermill chdirs the whole process to the notebook's folder.
            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [(pool.submit(run_cell, c, out_dir, kernel), c, k) for c, k in todo]
                for fut, cell, key in tqdm(futures, desc="notebooks", unit="nb"):
                    record(cell, key, fut.result())
    order = {c.name: i for i, c in enumerate(cells)}
    results.sort(key=lambda r: order[r.name])
    if html:
        export_html(results, out_dir)
    return results


def _run_on_ray(todo: list[tuple[GridCell, str]], out_dir: Path, kernel: str,
                record: Callable[[GridCell, str, CellResult], None], ray_address: str | None, max_retries: int,
                num_cpus: float, num_gpus: float | None) -> None:
    """Each cell a Ray task; results recorded (state file included) as they finish."""
    from workbench.distributed import TaskOutcome, TaskResources, run_cell_task, run_tasks

    by_name = {c.name: (c, k) for c, k in todo}

    def on_result(o: TaskOutcome) -> None:
        cell, key = by_name[o.key]
        if o.ok:  # ok, or failed before running (not retried)
            r = o.value
        elif isinstance(getattr(o.cause, "result", None), CellResult):  # the last attempt's result
            r = dataclasses.replace(o.cause.result, error=o.error)
        else:  # the worker died: no result came back
            r = CellResult(cell.name, str(cell.notebook), out_dir / f"{cell.name}.ipynb", "failed", 0.0, o.error,
                           cell.parameters)
        record(cell, key, r)

    run_tasks(run_cell_task, [(c.name, (c, out_dir, kernel), {}) for c, _ in todo],
              resources=TaskResources(num_cpus, num_gpus), max_retries=max_retries, ray_address=ray_address,
              desc="notebooks", on_result=on_result)


# parameter of a grid cell -> column of the results table it selects on
_RESULT_KEYS = {"model": "model", "protocol": "protocol", "preset": "corpus_preset", "corpus": "corpus"}
KEY_METRICS = ("wa", "ua", "macro_f1")


def summary_table(results: list[CellResult], results_table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per grid cell: status, seconds, error and, for cells that name a ``model``, the
    number of matching rows of the results table (same model, and protocol / corpus preset
    when the cell sets them) with their mean WA, UA and macro-F1."""
    rows = []
    for r in results:
        row: dict[str, Any] = {"notebook": r.name, "status": r.status, "seconds": round(r.seconds, 1)}
        if results_table is not None and not results_table.empty and "model" in r.parameters:
            sel = results_table
            for param, column in _RESULT_KEYS.items():
                if r.parameters.get(param) is not None and column in sel.columns:
                    sel = sel[sel[column] == r.parameters[param]]
            row["runs"] = len(sel)
            for m in KEY_METRICS:
                row[m] = round(float(sel[m].mean()), 3) if len(sel) else float("nan")
        row["error"] = r.error
        rows.append(row)
    return pd.DataFrame(rows)


def read_results_table(runs_root: str | Path) -> pd.DataFrame | None:
    """The results table under a runs root (``<root>/results/results.parquet``), if any."""
    path = Path(runs_root) / "results" / "results.parquet"
    return pd.read_parquet(path) if path.is_file() else None
