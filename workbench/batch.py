"""Headless reruns: execute a grid of (notebook, parameters) with papermill.

The grid file's format and the checks made when it loads are :mod:`workbench.grid`; this module
runs the cells. Each cell becomes ``<out>/<name>[__key=value...].ipynb``, and every file
:func:`run_cell` writes, renames or deletes is checked to lie directly in ``--out`` (cells need
not come from a grid file, so their names are checked again here).

A notebook executes under a temporary name, ``.<name>.<batch id>.running.ipynb``, and is renamed
when it finishes: to ``<name>.ipynb`` on success, ``<name>.FAILED.ipynb`` (with the error in
it) otherwise, so nothing half-written ever sits under the final name. A failing notebook does
not stop the others; the summary says which failed and ``workbench batch`` exits non-zero. A
cell whose source notebook, parameters and library code are unchanged since its last
successful run is skipped unless ``force``. The cells are tasks of
:func:`workbench.distributed.run_tasks`: one after another here, ``jobs`` at a time in worker
processes, or as Ray tasks, through the same code and with the same results.

Interrupts: on Ctrl-C the executing copies are renamed to ``<name>.INTERRUPTED.ipynb`` (kept,
not deleted: they show how far each notebook got; the cell's next run removes it), queued cells
are cancelled, the HTML index covers what finished, and :class:`BatchInterrupted` (a
``KeyboardInterrupt``) carries the results so far; ``workbench batch`` writes ``summary.csv``
from them and exits 130. A batch killed outright leaves its ``.running`` copies: the next batch
into the same ``--out`` renames them to ``.INTERRUPTED.ipynb`` when it starts, but only when no
other batch is live there (each live batch holds a shared lock on ``<out>/.batch.lock``; the
cleanup takes it exclusively, so a live batch's executing copies are never touched).

Concurrent batches into one ``--out``: the skip-if-unchanged record ``batch_state.json`` is
changed under an exclusive lock on ``<out>/.batch_state.lock`` by re-reading it and updating
only the finished cell's entry, so two batches of different cells keep each other's records.
Each finished cell's result is recorded in ``batch_cells.json`` under the same lock, so the
``index.html`` and ``summary.csv`` a batch writes also list the cells a concurrent batch
finished while it ran (:class:`BatchResults`).
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from workbench import paths
from workbench.distributed import BackendOptions, TaskFailed, TaskOutcome, run_tasks

# Re-exported: these lived here before workbench.grid, and callers (tests/e2e) import them from here.
from workbench.grid import (  # noqa: F401
    BatchError,
    GridCell,
    GridError,
    check_parameters,
    load_grid,
    name_problem,
    notebook_parameters,
)
from workbench.io import atomic_write

log = logging.getLogger(__name__)

STATE_FILE = "batch_state.json"
#: The last result of every cell run into ``--out`` (status, seconds, error, when it ended), kept
#: under the state lock, so a batch's index and summary also show a concurrent batch's cells.
CELLS_FILE = "batch_cells.json"
STATE_LOCK = ".batch_state.lock"
LIVE_LOCK = ".batch.lock"
_RUNNING = re.compile(r"\.(?P<name>.+?)(?:\.(?P<batch>[0-9a-f]{8}))?\.running\.ipynb")


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_grid`; ``results`` holds every cell: finished, skipped, and
    ``interrupted`` for those it stopped or never started."""

    def __init__(self, results: list[CellResult]):
        super().__init__("interrupted")
        self.results = results


@dataclass
class CellResult:
    """What became of one cell: where its executed copy is, its status, time and error."""

    name: str
    notebook: str
    output: Path
    status: str  # ok | failed | skipped | interrupted
    seconds: float
    error: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- files of a cell
@dataclass(frozen=True)
class CellFiles:
    """Where one cell's executed copies go; every path lies directly in ``out_dir``."""

    output: Path
    failed: Path
    interrupted: Path
    running: Path


def new_batch_id() -> str:
    """Tag of one batch's temporary copies, so that two batches never write the same file."""
    return uuid.uuid4().hex[:8]


def cell_files(name: str, out_dir: Path, batch_id: str) -> CellFiles:
    """The files of cell ``name`` in ``out_dir``; :class:`BatchError` unless each is a plain
    file directly inside it (a name like ``../x`` would otherwise write and delete outside)."""
    problem = name_problem(name)
    if problem or not re.fullmatch(r"[0-9a-f]{8}", batch_id):
        raise BatchError(f"cell name {name!r} {problem or 'has a bad batch id ' + repr(batch_id)}: refusing to "
                         f"write or delete files outside {out_dir}; use a plain file name")
    files = CellFiles(out_dir / f"{name}.ipynb", out_dir / f"{name}.FAILED.ipynb",
                      out_dir / f"{name}.INTERRUPTED.ipynb", out_dir / f".{name}.{batch_id}.running.ipynb")
    home = os.path.normpath(out_dir)
    for p in dataclasses.astuple(files):  # belt and braces: the name check already implies this
        if os.path.dirname(os.path.normpath(p)) != home:
            raise BatchError(f"cell {name!r}: {p} is not directly inside {out_dir}; refusing to write it")
    return files


def _set_aside(files: CellFiles) -> bool:
    """Rename a half-executed copy to ``.INTERRUPTED.ipynb`` (it shows how far the notebook
    got); True if there was one."""
    try:
        os.replace(files.running, files.interrupted)
        return True
    except FileNotFoundError:
        return False


def _set_aside_stale(out_dir: Path) -> list[Path]:
    """Rename every ``.running`` copy in ``out_dir`` to ``.INTERRUPTED.ipynb``. Only called
    while no other batch is live there, so each was left by a killed batch."""
    moved = []
    for p in sorted(out_dir.glob(".*.running.ipynb")):
        m = _RUNNING.fullmatch(p.name)
        if not m or name_problem(m["name"]) or not p.is_file():
            continue
        target = out_dir / f"{m['name']}.INTERRUPTED.ipynb"
        os.replace(p, target)
        moved.append(target)
    return moved


# --------------------------------------------------------------------------- locks and state
def _flock(fd: int, op: int, where: Path) -> bool:
    """``fcntl.flock``; False (with a warning) where the filesystem has no locks, so a batch
    still runs there, unprotected against a concurrent one."""
    try:
        fcntl.flock(fd, op)
        return True
    except BlockingIOError:
        raise
    except OSError as e:
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        log.warning("no file locks on the filesystem of %s (%s): concurrent batches into it may clash",
                    where, e.strerror)
        return False


@contextmanager
def _locked(path: Path, op: int = fcntl.LOCK_EX) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _flock(fd, op, path)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def live_batch(out_dir: Path) -> Iterator[list[Path]]:
    """Mark a batch as live in ``out_dir`` for the ``with`` block (a shared lock on
    ``.batch.lock``) and yield the stale ``.running`` copies it set aside first.

    Stale copies are only touched when the lock can be taken exclusively, i.e. no other batch
    is live there: a concurrent batch's executing copies look exactly like a killed one's.
    """
    fd = os.open(out_dir / LIVE_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        moved: list[Path] = []
        try:
            alone = _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, out_dir)
        except BlockingIOError:
            alone = False
            log.info("another batch is live in %s: its .running copies are left alone", out_dir)
        if alone:
            moved = _set_aside_stale(out_dir)
        _flock(fd, fcntl.LOCK_SH, out_dir)  # from exclusive to shared: other batches may start now
        yield moved
    finally:
        os.close(fd)


def read_state(out_dir: Path) -> dict[str, str]:
    """``batch_state.json`` of ``out_dir``: cell name -> key of its last successful run."""
    path = out_dir / STATE_FILE
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        state = None
    if not isinstance(state, dict):
        raise BatchError(f"{path} is not a JSON object of cell name -> key; delete it (every cell then reruns)")
    return state


def _update_state(out_dir: Path, name: str, key: str | None, result: "CellResult | None" = None) -> None:
    """Set (or, for ``key=None``, drop) one cell's entry, and record its ``result``. Re-reads
    the files under the lock and changes only that entry, so records written meanwhile by a
    concurrent batch survive."""
    with _locked(out_dir / STATE_LOCK):
        state = read_state(out_dir)
        if key is None:
            state.pop(name, None)
        else:
            state[name] = key
        atomic_write(out_dir / STATE_FILE, lambda p: p.write_text(json.dumps(state, indent=1, sort_keys=True)))
        if result is not None:
            cells = read_cells(out_dir)
            cells[name] = {"notebook": result.notebook, "output": result.output.name, "status": result.status,
                           "seconds": result.seconds, "error": result.error, "parameters": result.parameters,
                           "ended": time.time()}
            atomic_write(out_dir / CELLS_FILE, lambda p: p.write_text(json.dumps(cells, indent=1, sort_keys=True,
                                                                                 default=str)))


def read_cells(out_dir: Path) -> dict[str, dict[str, Any]]:
    """``batch_cells.json`` of ``out_dir`` (empty when absent or unreadable: it only adds the
    cells of concurrent batches to an index, so a damaged one costs nothing but that)."""
    try:
        cells = json.loads((out_dir / CELLS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cells if isinstance(cells, dict) else {}


class BatchResults(list):
    """The results of a batch's own cells (a list of :class:`CellResult`); ``others`` holds the
    cells a concurrent batch into the same ``--out`` finished meanwhile, which the batch's
    ``index.html`` and ``summary.csv`` show too."""

    others: list["CellResult"]


def _with_others(results: list["CellResult"], out_dir: Path, since: float) -> BatchResults:
    mine = {r.name for r in results}
    out = BatchResults(results)
    out.others = []
    for name, c in sorted(read_cells(out_dir).items()):
        try:
            if name in mine or float(c["ended"]) < since or not (out_dir / str(c["output"])).is_file():
                continue
            out.others.append(CellResult(name, str(c["notebook"]), out_dir / str(c["output"]), str(c["status"]),
                                         float(c["seconds"]), str(c.get("error", "")), dict(c.get("parameters") or {})))
        except (KeyError, TypeError, ValueError):  # a damaged entry: left out
            continue
    return out


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


# --------------------------------------------------------------------------- running
#: Command-line arguments of every batch kernel (see run_cell).
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def run_cell(cell: GridCell, out_dir: str | Path, kernel: str = "python3", timeout: int = 1800,
             batch_id: str | None = None) -> CellResult:
    """Execute one notebook with papermill; never raises for a failing notebook. Raises
    :class:`BatchError` for a cell name that would put a file outside ``out_dir``; on
    ``KeyboardInterrupt`` renames the half-executed copy to ``.INTERRUPTED.ipynb`` and re-raises."""
    import papermill as pm

    out_dir = Path(out_dir)
    files = cell_files(cell.name, out_dir, batch_id or new_batch_id())
    if cell.problems:
        return CellResult(cell.name, str(cell.notebook), files.output, "failed", 0.0, "; ".join(cell.problems),
                          cell.parameters)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(cell.notebook),
            str(files.running),
            parameters=cell.parameters,
            kernel_name=kernel,
            cwd=str(cell.notebook.parent),
            progress_bar=False,
            execution_timeout=timeout,
            # the kernel's own log (its "running over TCP without encryption" notice, once per
            # notebook) is not the batch's business; errors still show. Cells' output is unaffected.
            extra_arguments=KERNEL_ARGUMENTS,
        )
        status, error = "ok", ""
    except KeyboardInterrupt:
        _set_aside(files)
        raise
    except Exception as e:  # papermill raises PapermillExecutionError carrying the cell's error
        status = "failed"
        if hasattr(e, "ename"):
            error = f"cell {getattr(e, 'exec_count', '?')}: {e.ename}: {e.evalue}"[:300]
        else:
            error = (traceback.format_exception_only(type(e), e)[-1]).strip()[:300]
    # the executed copy appears under its final name only once complete
    final = files.output if status == "ok" else files.failed
    for stale in (files.output, files.failed, files.interrupted):
        stale.unlink(missing_ok=True)
    if files.running.is_file():
        os.replace(files.running, final)
    return CellResult(cell.name, str(cell.notebook), final, status, time.perf_counter() - t0, error, cell.parameters)


#: plotly.js for every HTML page of a run folder: one copy beside ``index.html``.
PLOTLY_JS = "plotly.min.js"
PLOTLY_MIME = "application/vnd.plotly.v1+json"

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"

# The notebook pages load the run folder's plotly.js and nothing from the network: nbconvert's
# lab page would load require.js, MathJax, mermaid and the widget manager from CDNs, which fail
# silently offline (and a page without a widget manager shows a widget as blank). Widgets are
# exported as their static fallback instead (figures_as_html); math stays as its TeX source.
_PAGE_TEMPLATE = "workbench_batch.html.j2"
_PAGE_TEMPLATE_SOURCE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}
<script src="{{ resources.workbench_plotly_js }}"></script>
{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def write_plotly_js(out_dir: Path) -> Path:
    """Write the installed plotly package's plotly.js into ``out_dir`` (no CDN: pages render
    offline); an identical copy already there is left as it is."""
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    dest = out_dir / PLOTLY_JS
    if not (dest.is_file() and dest.stat().st_size == len(js.encode()) and dest.read_text(encoding="utf-8") == js):
        atomic_write(dest, lambda p: p.write_text(js, encoding="utf-8"))
    return dest


def html_exporter() -> Any:
    """nbconvert's HTML exporter (lab template) whose pages first load ``resources['workbench_plotly_js']``
    and draw plotly figures (:func:`figures_as_html`)."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(extra_loaders=[jinja2.DictLoader({_PAGE_TEMPLATE: _PAGE_TEMPLATE_SOURCE})],
                            template_file=_PAGE_TEMPLATE)
    exporter.register_preprocessor(lambda nb, resources: (figures_as_html(nb), resources), enabled=True)
    return exporter


def _holds_plotly_js(html: str) -> bool:
    # plotly.js starts with a "* plotly.js vX.Y.Z" licence comment and is megabytes long
    return len(html) > 1_000_000 and "* plotly.js v" in html


def figures_as_html(nb: Any) -> Any:
    """Make ``nb``'s plotly figures drawable in an HTML export, in place, and return it.

    Each output holding a plotly figure as its JSON mimetype (what JupyterLab draws) gains an
    HTML figure div with its ``Plotly.newPlot`` call, which needs plotly.js on the page but holds
    no copy of it; an output that is a copy of plotly.js (what plotly's ``notebook`` renderer
    displays in each notebook) is dropped, the HTML beside a figure's mimetype replaced. A
    widget's view is replaced by its static fallback (the other mimetypes of its output, e.g.
    the explorer's figure of its current view), as the page loads no widget manager.
    """
    from plotly.io import to_html

    nb.metadata.pop("widgets", None)  # widget state: only a widget manager would read it
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            data.pop(WIDGET_VIEW_MIME, None)
            if _holds_plotly_js(data.get("text/html", "")):
                if PLOTLY_MIME not in data:
                    continue
                del data["text/html"]
            if PLOTLY_MIME in data and "Plotly.newPlot(" not in data.get("text/html", ""):
                data["text/html"] = to_html(dict(data[PLOTLY_MIME]), include_plotlyjs=False, include_mathjax=False,
                                            full_html=False, default_width="100%", default_height=525, validate=False)
            kept.append(out)
        cell.outputs = kept
    return nb


def export_html(results: list[CellResult], out_dir: Path) -> Path:
    """One HTML page per executed notebook plus an index linking them with their status.

    The pages draw each plotly figure from a div and its ``Plotly.newPlot`` call
    (:func:`figures_as_html`) and load plotly.js by a relative ``<script src>`` from the one copy
    written beside ``index.html``: a run folder holds the 4.7 MB library once, not once per
    notebook, and its pages render with no network."""
    exporter = html_exporter()
    rows = []
    plotly_js = write_plotly_js(out_dir)
    for r in results:
        link = ""
        if r.output.is_file():
            html_path = r.output.with_suffix(".html")
            src = Path(os.path.relpath(plotly_js, html_path.parent)).as_posix()
            body, _ = exporter.from_filename(str(r.output), resources={"workbench_plotly_js": src})
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
    backend: BackendOptions = BackendOptions(),
    force: bool = False,
    html: bool = True,
    kernel: str = "python3",
) -> list[CellResult]:
    """Run every cell, skipping unchanged successful ones unless ``force``.

    ``backend`` (:class:`~workbench.distributed.BackendOptions`) says where: here, ``jobs``
    notebooks at once (each kernel with ``threads`` torch threads when ``jobs`` > 1), or one Ray
    task per cell (``jobs`` is then not used: Ray runs as many as the cluster's CPUs/GPUs allow),
    retried ``max_retries`` times; ``out_dir`` must then be on a filesystem every node sees. A
    notebook that fails does not stop the others, on any backend: its result says so.

    Ctrl-C raises :class:`BatchInterrupted` after setting the executing copies aside (see the
    module docstring); the results so far ride on it.
    """
    backend.require()  # Ray missing: refused before anything is written
    # absolute: papermill changes the working directory of the process while it runs
    out_dir = Path(out_dir).resolve()
    batch_id, started = new_batch_id(), time.time()
    for cell in cells:  # refuse before anything is written: cells need not come from load_grid
        cell_files(cell.name, out_dir, batch_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    with live_batch(out_dir) as stale:
        if stale:
            log.warning("%d copy(ies) left executing by an interrupted earlier batch renamed to *.INTERRUPTED.ipynb "
                        "in %s: %s", len(stale), out_dir, ", ".join(p.name for p in stale))
        results, todo = _plan(cells, out_dir, force)
        print(plan_line(len(cells), [c.name for c, _ in todo], out_dir), file=sys.stderr, flush=True)

        by_name = {c.name: (c, k) for c, k in todo}

        def record(o: TaskOutcome) -> None:  # as each cell ends: its result and skip-if-unchanged state
            cell, key = by_name[o.key]
            r = _cell_result(o, cell, out_dir)
            results.append(r)
            _update_state(out_dir, cell.name, key if r.status == "ok" else None, r)

        try:
            with _sigterm_as_interrupt():
                run_tasks(run_cell_task, [(c.name, (c, out_dir, kernel), {"batch_id": batch_id}) for c, _ in todo],
                          backend, env=paths.worker_env(), desc="notebooks", on_result=record)
        except KeyboardInterrupt:
            results += _interrupted(todo, {r.name for r in results}, out_dir, batch_id, started - 1)
            results = _finish(results, cells, out_dir, html, started)
            raise BatchInterrupted(results) from None
        results = _finish(results, cells, out_dir, html, started)
    return results


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's kill, ``timeout``) handled as Ctrl-C is: executing copies set
    aside, ``summary.csv`` written, no ``.running.ipynb`` left. Only the main thread can set a
    signal handler; elsewhere SIGTERM keeps its default."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_cell_task(cell: GridCell, out_dir: Path, kernel: str, batch_id: str | None = None) -> CellResult:
    """:func:`run_cell` as a task of :func:`workbench.distributed.run_tasks`: a failed notebook
    raises :class:`TaskFailed` carrying its result (so Ray retries it); a cell rejected before
    running (bad parameters) is returned as failed, since retrying cannot help.

    ``run_cell`` refuses a cell whose files would leave ``out_dir`` and, on an interrupt (a
    cancel without ``force``), sets its executing copy aside; ``batch_id`` tags that copy so the
    driver can set it aside too when a forced cancel or a terminated worker cut it short."""
    result = run_cell(cell, out_dir, kernel, batch_id=batch_id)
    if result.status != "ok" and not cell.problems:
        raise TaskFailed(result.error, result)
    return result


def _cell_result(o: TaskOutcome, cell: GridCell, out_dir: Path) -> CellResult:
    """The :class:`CellResult` of a finished :func:`run_cell_task`; a failure's error says how
    many attempts it had."""
    if o.ok:  # ok, or failed before running (not retried)
        return o.value
    if isinstance(o.value, CellResult):  # the last attempt's result
        return dataclasses.replace(o.value, error=o.error)
    # the worker died: no result came back
    return CellResult(cell.name, str(cell.notebook), out_dir / f"{cell.name}.ipynb", "failed", 0.0, o.error,
                      cell.parameters)


def _plan(cells: list[GridCell], out_dir: Path, force: bool) -> tuple[list[CellResult], list[tuple[GridCell, str]]]:
    """``(skipped results, cells to run with their keys)``."""
    state = read_state(out_dir)
    lib_hash = _library_hash()
    skipped, todo = [], []
    for cell in cells:
        key = _cell_key(cell, lib_hash)
        output = out_dir / f"{cell.name}.ipynb"
        if not force and state.get(cell.name) == key and output.is_file():
            skipped.append(CellResult(cell.name, str(cell.notebook), output, "skipped", 0.0, "", cell.parameters))
        else:
            todo.append((cell, key))
    return skipped, todo


def plan_line(n_cells: int, to_run: list[str], out_dir: Path) -> str:
    """What a batch is about to do, said before it starts: how many cells, how many run, and how
    long they took the last time ``summary.csv`` of ``out_dir`` recorded them (a long batch is
    announced, never started without a word)."""
    line = f"workbench batch: {n_cells} cell(s), {len(to_run)} to run, {n_cells - len(to_run)} unchanged, into {out_dir}"
    try:
        last = pd.read_csv(out_dir / "summary.csv", usecols=["notebook", "status", "seconds"])
    except (OSError, ValueError):  # no earlier summary, or one from another version
        return line
    seconds = last[last["status"] == "ok"].groupby("notebook")["seconds"].last()
    known = [float(seconds[n]) for n in to_run if n in seconds.index]
    if known:
        per_cell = sum(known) / len(known)
        line += (f"; {len(known)} of them ran before, {per_cell:.0f} s each on average (summary.csv), so about "
                 f"{per_cell * len(to_run) / 60:.0f} min one at a time")
    return line


def _finish(results: list[CellResult], cells: list[GridCell], out_dir: Path, html: bool, since: float) -> BatchResults:
    order = {c.name: i for i, c in enumerate(cells)}
    results.sort(key=lambda r: order[r.name])
    merged = _with_others(results, out_dir, since)
    if html:
        export_html([*merged, *merged.others], out_dir)
    return merged


def _interrupted(todo: list[tuple[GridCell, str]], done: set[str], out_dir: Path, batch_id: str,
                 since: float) -> list[CellResult]:
    """Results for the cells an interrupt stopped or never started; their executing copies
    (this batch's only) are renamed to ``.INTERRUPTED.ipynb``. ``since``: the batch's start
    (a cell's own run_cell may have set its copy aside already; its mtime tells it from an
    earlier batch's)."""
    out = []
    for cell, _ in todo:
        if cell.name in done:
            continue
        files = cell_files(cell.name, out_dir, batch_id)
        partial = _set_aside(files) or (files.interrupted.is_file() and files.interrupted.stat().st_mtime >= since)
        error = (f"interrupted while running; partial copy in {files.interrupted.name}" if partial
                 else "not run: the batch was interrupted")
        out.append(CellResult(cell.name, str(cell.notebook), files.interrupted, "interrupted", 0.0, error,
                              cell.parameters))
    return out


# --------------------------------------------------------------------------- summaries
# parameters of a grid cell (the notebooks' names) that select rows of the results table; the
# column of each is its stored name (workbench.training.results.STORED_NAMES) where that differs
_RESULT_KEYS = ("model", "variant", "text_source", "label_scheme", "protocol", "corpus_size", "recipe", "corpus")
KEY_METRICS = ("wa", "ua", "macro_f1")


def summary_table(results: list[CellResult], results_table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per grid cell: status, seconds, error and, for cells that name a ``model``, the
    number of matching rows of the results table (same model, and protocol / corpus /
    ``corpus_size`` / ``recipe`` ... when the cell sets them) with their mean WA, UA and macro-F1."""
    rows = []
    for r in results:
        row: dict[str, Any] = {"notebook": r.name, "status": r.status, "seconds": round(r.seconds, 1)}
        if results_table is not None and not results_table.empty and "model" in r.parameters:
            from workbench.training.results import STORED_NAMES  # here: the training package imports torch

            sel = results_table
            for param in _RESULT_KEYS:
                column = STORED_NAMES.get(param, param)
                if r.parameters.get(param) is not None and column in sel.columns:
                    sel = sel[sel[column] == r.parameters[param]]
            row["runs"] = len(sel)
            for m in KEY_METRICS:
                row[m] = round(float(sel[m].mean()), 3) if len(sel) else float("nan")
        row["error"] = r.error
        rows.append(row)
    return pd.DataFrame(rows)


def write_summary(results: list[CellResult], out_dir: str | Path,
                  results_table: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`summary_table` written (atomically) to ``<out_dir>/summary.csv``; returns it.
    Cells a concurrent batch finished meanwhile (``results.others`` of :func:`run_grid`) are
    rows too."""
    table = summary_table([*results, *getattr(results, "others", [])], results_table)
    atomic_write(Path(out_dir) / "summary.csv", lambda p: table.to_csv(p, index=False))
    return table


def read_results_table(runs_root: str | Path) -> pd.DataFrame | None:
    """The results table under a runs root (``<root>/results/results.parquet``), if any."""
    from workbench.training.results import read_table  # here: the training package imports torch

    path = Path(runs_root) / "results" / "results.parquet"
    return read_table(path) if path.is_file() else None
