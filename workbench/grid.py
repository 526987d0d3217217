"""Grid files: the YAML that ``workbench batch`` runs, loaded and checked into :class:`GridCell` s.

A grid file is YAML::

    defaults:                 # parameters given to every notebook that declares them
      corpus: synthetic
      corpus_size: smoke
    runs:
      - notebook: notebooks/01_explore.ipynb
      - notebook: notebooks/04_train.ipynb
        name: train               # optional; default: the notebook's stem
        parameters: {epochs: 2}
        grid: {model: [xu_alignment, amh]}   # one executed copy per combination

Each combination is a cell named ``<name>[__key=value...]``. :func:`load_grid` checks, before
anything runs, and raises a one-line :class:`GridError` naming the grid file (with
``line:column`` for YAML syntax) and the run and key at fault:

- the top-level keys are ``defaults`` and ``runs``; a run's keys are ``notebook``, ``name``,
  ``parameters`` and ``grid``; anything else (``paramters:``) is an error that suggests the
  close matches, and so is a key given twice in one mapping;
- every ``defaults`` key must be a parameter of at least one notebook of the grid (a notebook
  gets the defaults it declares); a run's own ``parameters`` and ``grid`` names must exist in
  its notebook's ``parameters`` cell and match the type of the default, or that cell fails
  without running;
- each ``grid`` value is a non-empty list (``label: abc`` is an error, not cells a, b, c);
- a cell name is a plain file name inside ``--out`` and nothing else: letters, digits and
  ``_ . + = -``, not starting with a dot, no ``..``, at most 150 characters, not ``index``
  (the batch's ``index.html``) and not ending in ``.FAILED`` / ``.INTERRUPTED``. So ``name: ../x``
  or ``name: /tmp/x`` is refused, and :func:`workbench.batch.run_cell` checks again that every
  file it writes, renames or deletes lies directly in ``--out``.

Bounds, checked before anything is expanded (a 1 KB grid of nested YAML anchors once expanded
to gigabytes, and 5 axes of 40 values to 10^8 cells, before a word was printed):

- a grid has at most :data:`MAX_CELLS` cells, counted from the axes' lengths before expanding;
- a parameter value (a default, a run's parameter, one value of a grid axis) holds at most
  :data:`MAX_VALUE_ITEMS` items (lists, mappings and scalars, with every YAML alias counted as
  the copy it becomes) and :data:`MAX_VALUE_CHARS` characters of text; a recursive alias
  (``&a [*a]``) is over any bound.

Running the cells is :mod:`workbench.batch`.
"""

from __future__ import annotations

import ast
import collections
import difflib
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workbench.errors import WorkbenchError

TOP_KEYS = ("defaults", "runs")
RUN_KEYS = ("notebook", "name", "parameters", "grid")
MAX_NAME = 150  # leaves room for ".<batch id>.running.ipynb" and ".INTERRUPTED.ipynb" under 255
_SAFE_CHAR = r"A-Za-z0-9_.+=-"
RESERVED_NAMES = ("index",)
RESERVED_SUFFIXES = (".FAILED", ".INTERRUPTED")
#: Most cells one grid file may expand to (each is an executed notebook).
MAX_CELLS = 10_000
#: Most items (containers and scalars, aliases expanded) and characters in one parameter value.
MAX_VALUE_ITEMS = 10_000
MAX_VALUE_CHARS = 1_000_000


# BatchError lives here, not in batch.py, because GridError derives from it and batch.py
# imports this module.
class BatchError(WorkbenchError, ValueError):
    """A batch that cannot run as asked (an unsafe cell name, a corrupt state file)."""


class GridError(BatchError):
    """A mistake in a grid file; the message names the file and the run, key or line:column."""


@dataclass(frozen=True)
class GridCell:
    """One executed copy to make: a notebook (absolute path), its parameters and its name."""

    notebook: Path
    parameters: dict[str, Any]
    name: str
    problems: tuple[str, ...] = ()  # parameter errors found when the grid was loaded


# --------------------------------------------------------------------------- cell names
def _slug(value: Any) -> str:
    """A grid value as it appears in a cell name (``__model=amh``): safe characters, at most 40."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)).strip("-")[:40]


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a cell name (a plain file name inside ``--out``), or None.

    >>> [name_problem(n) for n in ["train__model=amh", "../x", ".x", "a b"]]
    [None, "contains a path separator ('/')", 'starts with a dot', "has characters not safe in a file name: ' '"]
    """
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a string"
    if not name:
        return "is empty"
    seps = sorted({c for c in name if c in ("/", "\\", os.sep)})
    if seps:
        return f"contains a path separator ({', '.join(map(repr, seps))})"
    if ".." in name:
        return "contains '..'"
    if name.startswith("."):
        return "starts with a dot"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    bad = sorted({c for c in name if not re.fullmatch(f"[{_SAFE_CHAR}]", c)})
    if bad:
        return f"has characters not safe in a file name: {' '.join(map(repr, bad))}"
    if name in RESERVED_NAMES:  # its HTML page would be the batch's index.html
        return "is reserved for the batch's own files"
    suffix = next((s for s in RESERVED_SUFFIXES if name.endswith(s)), None)
    if suffix:  # "a.FAILED" would be cell a's failed copy
        return f"ends with {suffix}, which marks another cell's copies"
    return None


def _check_name(name: Any, where: str, from_stem: bool) -> None:
    problem = name_problem(name)
    if problem:
        fix = "give the run a 'name'" if from_stem else "change the run's 'name'"
        raise GridError(f"{where}: cell name {name!r} {problem}; a name is a file name inside --out "
                        f"(letters, digits, _ . + = -): {fix}")


# --------------------------------------------------------------------------- reading the YAML
class _GridLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently, so ``notebook:`` twice in a run would drop the first)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: construct_mapping below reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_GridLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> Any:
    """The grid file parsed; a one-line GridError naming the file (and line:column) otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GridError(f"grid file {path} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise GridError(f"cannot read grid file {path}: {reason}") from None
    try:
        loader = _GridLoader(text)  # a SafeLoader: python/* tags are refused, not constructed
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise GridError(f"{where}: invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise GridError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None


# --------------------------------------------------------------------------- bounds
def value_size(value: Any, max_items: int = MAX_VALUE_ITEMS, max_chars: int = MAX_VALUE_CHARS) -> tuple[int, int]:
    """``(items, characters)`` of a parsed YAML value as it would be written out (aliases count
    once per use), counted without recursion and stopping once either bound is passed (so a
    recursive alias ends too).

    >>> value_size({"a": [1, 2, "xyz"]})
    (5, 4)
    """
    items = chars = 0
    stack = [value]
    while stack and items <= max_items and chars <= max_chars:
        v = stack.pop()
        items += 1
        if isinstance(v, dict):
            for k, x in v.items():
                chars += len(str(k))
                stack.append(x)
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, (str, bytes)):
            chars += len(v)
    return items, chars


def _check_value(value: Any, where: str) -> None:
    items, chars = value_size(value)
    if items > MAX_VALUE_ITEMS or chars > MAX_VALUE_CHARS:  # counting stopped there: it is larger still
        raise GridError(f"{where}: value too large (over {MAX_VALUE_ITEMS:,} items or {MAX_VALUE_CHARS:,} "
                        "characters once YAML aliases are expanded); give a smaller value, or a path to a file")


def _check_bounds(defaults: dict, runs: list[dict], path: Path) -> int:
    """The number of cells the grid expands to; :class:`GridError` when it, or a parameter
    value, is over the bounds of the module docstring. Nothing is expanded to count."""
    for key, value in defaults.items():
        _check_value(value, f"{path}: defaults: {key!r}")
    total = 0
    for i, run in enumerate(runs):
        where = f"{path}: runs[{i}]"
        for key, value in (run.get("parameters") or {}).items():
            _check_value(value, f"{where}: parameter {key!r}")
        n = 1
        for axis, values in (run.get("grid") or {}).items():
            n *= len(values)
            if total + n > MAX_CELLS:  # stop multiplying: 40**5 is 10^8
                sizes = " x ".join(str(len(v)) for v in (run.get("grid") or {}).values())
                raise GridError(f"{where}: the grid expands to more than {MAX_CELLS:,} cells (axes {sizes}"
                                f"{f', after {total:,} from earlier runs' if total else ''}); split it into "
                                "several grid files or use fewer values")
            for k, value in enumerate(values):
                _check_value(value, f"{where}: grid {axis!r}[{k}]")
        total += n
    return total


# --------------------------------------------------------------------------- checking it
def _unknown(where: str, what: str, key: Any, known: list[str] | tuple[str, ...], why: str = "") -> GridError:
    close = difflib.get_close_matches(str(key), list(known), n=3)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return GridError(f"{where}: unknown {what} {key!r}{hint}; {why or 'expected one of: ' + ', '.join(known)}")


def _mapping(value: Any, where: str, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GridError(f"{where}: {what} must be a mapping (key: value), got {type(value).__name__} {value!r}")
    return value


def _check_shape(spec: Any, path: Path) -> tuple[dict, list[dict]]:
    """``(defaults, runs)`` of a parsed grid, after checking every key and type but the
    parameter names (those need the notebooks)."""
    if not isinstance(spec, dict):
        raise GridError(f"{path}: a grid file is a mapping with 'defaults' and 'runs', got {type(spec).__name__}")
    for key in spec:
        if key not in TOP_KEYS:
            raise _unknown(str(path), "top-level key", key, TOP_KEYS)
    runs = spec.get("runs")
    if runs is None:
        raise GridError(f"{path}: a grid file needs a 'runs' list")
    if not isinstance(runs, list) or not runs:
        raise GridError(f"{path}: 'runs' must be a non-empty list of runs (- notebook: ...), got {runs!r}")
    defaults = _mapping(spec.get("defaults"), str(path), "'defaults'")
    for i, run in enumerate(runs):
        where = f"{path}: runs[{i}]"
        if not isinstance(run, dict):
            raise GridError(f"{where} must be a mapping with a 'notebook', got {type(run).__name__} {run!r}")
        for key in run:
            if key not in RUN_KEYS:
                raise _unknown(where, "key", key, RUN_KEYS)
        if not isinstance(run.get("notebook"), str):
            raise GridError(f"{where} has no 'notebook' path")
        _mapping(run.get("parameters"), where, "'parameters'")
        for axis, values in _mapping(run.get("grid"), where, "'grid'").items():
            if not isinstance(values, list):
                raise GridError(f"{where}: grid {axis!r} must be a list of values, e.g. {axis}: [{values!r}], "
                                f"got {type(values).__name__} {values!r}")
            if not values:
                raise GridError(f"{where}: grid {axis!r} is an empty list; give it at least one value")
    return defaults, runs


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


def _declared(run: dict, where: str, memo: dict[Path, dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """The run's notebook (absolute) and its declared parameters; one read per notebook."""
    nb = Path(run["notebook"]).resolve()
    if not nb.is_file():
        raise GridError(f"{where}: notebook {run['notebook']} does not exist (paths are relative to the "
                        f"current directory, {Path.cwd()})")
    if nb not in memo:
        try:
            memo[nb] = notebook_parameters(nb)
        except Exception as e:  # not JSON, not a notebook: papermill/nbformat say why
            raise GridError(f"{where}: cannot read notebook {run['notebook']}: "
                            f"{' '.join(str(e).split())[:200]}") from None
    return nb, memo[nb]


# --------------------------------------------------------------------------- loading
#: Parameters that name a folder: a relative one means the batch's working directory, as it does
#: on the command line, so it is made absolute before the notebook (run in its own folder) sees it.
PATH_PARAMETERS = ("runs_root",)


def _absolute_paths(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    for key in PATH_PARAMETERS:
        value = out.get(key)
        if isinstance(value, str) and value.strip() and not value.startswith(("$", "~", "/")):
            out[key] = os.path.abspath(value)
    return out


def load_grid(path: str | Path) -> list[GridCell]:
    """Expand a grid YAML into cells; notebook paths are relative to the current directory.
    Every mistake the module docstring lists raises :class:`GridError` before anything runs."""
    path = Path(path)
    defaults, runs = _check_shape(_read_yaml(path), path)
    _check_bounds(defaults, runs, path)
    memo: dict[Path, dict[str, Any]] = {}
    resolved = [_declared(run, f"{path}: runs[{i}]", memo) for i, run in enumerate(runs)]
    known = sorted({name for _, declared in resolved for name in declared})
    for key in defaults:
        if key not in known:
            raise _unknown(f"{path}: defaults", "key", key, known,
                           "no notebook of the grid declares it in its parameters cell")
    cells: list[GridCell] = []
    for i, (run, (nb, declared)) in enumerate(zip(runs, resolved)):
        where = f"{path}: runs[{i}]"
        base = run.get("name", nb.stem)
        _check_name(base, where, from_stem="name" not in run)
        axes = run.get("grid") or {}
        keys = list(axes)
        for combo in itertools.product(*(axes[k] for k in keys)) if keys else [()]:
            varying = dict(zip(keys, combo))
            own = {**(run.get("parameters") or {}), **varying}
            params = _absolute_paths({**{k: v for k, v in defaults.items() if k in declared}, **own})
            name = base + "".join(f"__{k}={_slug(v)}" for k, v in varying.items())
            _check_name(name, where, from_stem="name" not in run)
            problems = tuple(f"{where}: {p}" for p in check_parameters(declared, params))
            cells.append(GridCell(nb, params, name, problems))
    counts = collections.Counter(c.name for c in cells)  # names.count per cell was quadratic
    dup = {n for n, k in counts.items() if k > 1}
    if dup:
        raise GridError(f"{path}: grid cells share output names {sorted(dup)}; give runs a 'name'")
    return cells

