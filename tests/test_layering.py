"""Import contracts (as import-linter checks them): every import of the package, those inside
functions and under ``if TYPE_CHECKING`` included, goes down the layers or stays in its own, and
no modules import each other in a circle.

Layers, bottom to top (the rule is this docstring; docs/training.md, "Layering", explains it)::

    helpers (errors, io, paths)  <  corpus  <  protocols, leakage  <  features  <  models
    <  training  <  evaluation  <  experiments  <  viz  <  batch, grid, cli, bench, catalog, __main__
    <  testing

``evaluation`` scores runs that exist and ``viz`` draws them; planning, reusing and training runs
is the ``experiments`` floor's (``ensure_runs``). Neither ``evaluation`` nor ``viz`` imports a
training entry point (:data:`ENTRY_POINTS`), though the layers alone would let ``viz`` do so.

The helpers may be imported by every layer. ``workbench.distributed`` (the task executor) sits
beside them and imports nothing from ``workbench`` at all: what it needs from the library (the
worker environment, the task function) its callers hand it. ``workbench.testing`` is for tests:
it may import anything and nothing in the package imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"

LAYERS: list[tuple[str, ...]] = [
    ("errors", "io", "paths", "distributed"),
    ("corpus",),
    ("protocols", "leakage"),
    ("features",),
    ("models",),
    ("training",),
    ("evaluation",),
    ("experiments",),
    ("viz",),
    ("batch", "grid", "cli", "bench", "catalog", "__main__"),
    ("testing",),
]
#: What starts training: the cross-validation runner's module, every module of the experiments
#: floor, and these names wherever they are imported from.
ENTRY_POINT_MODULES = ("workbench.training.crossval", "workbench.training.tasks", "workbench.experiments")
ENTRY_POINTS = frozenset({"run_crossval", "train_model", "train_fold", "ensure_runs", "train_missing",
                          "train_for_evaluation", "counterpart", "choose_run", "reproduce", "run_leakage_experiment"})
#: The layers that must not start training.
NO_TRAINING = ("evaluation", "viz")
RANK = {top: i for i, tops in enumerate(LAYERS) for top in tops}
LEAVES = ("distributed",)  # import nothing from workbench


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(module: str) -> list[tuple[str, int]]:
    """``(imported workbench module, line)`` for every import in ``module``'s source, wherever it
    stands. ``from a import b`` names ``a.b`` when that is a module, else ``a``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            if len(subs) < len(node.names):  # some names are attributes of ``target`` itself
                subs.append(target)
            found += [(s, node.lineno) for s in subs]
    return [(name, line) for name, line in found if name == "workbench" or name.startswith("workbench.")]


GRAPH = {m: imports_of(m) for m in MODULES}


def layer(module: str) -> int | None:
    """Rank of ``module``'s layer; None for the package's own ``__init__`` (a version string)."""
    parts = module.split(".")
    return RANK[parts[1]] if len(parts) > 1 else None


def layer_name(module: str) -> str:
    return module.split(".")[1]


def where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}"


def test_every_module_has_a_layer():
    unplaced = sorted({m.split(".")[1] for m in MODULES if "." in m} - set(RANK))
    assert not unplaced, f"place these in LAYERS: {unplaced}"


def test_no_upward_imports():
    violations = []
    for module, imports in GRAPH.items():
        for imported, line in imports:
            a, b = layer(module), layer(imported)
            if a is not None and b is not None and b > a:
                violations.append(f"{module} -> {imported} ({layer_name(module)} < {layer_name(imported)}) "
                                  f"at {where(module, line)}")
    assert not violations, "upward imports:\n" + "\n".join(sorted(violations))


def imported_names(module: str) -> list[tuple[str, str, int]]:
    """``(module imported from, name, line)`` for every ``from workbench... import name`` and
    ``import workbench...`` (name ``""``) in ``module``, wherever it stands."""
    path = MODULES[module]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name.startswith("workbench")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("workbench"):
            found += [(node.module, a.name, node.lineno) for a in node.names]
    return found


def training_imports(modules) -> list[str]:
    found = []
    for m in modules:
        for source, name, line in imported_names(m):
            target = f"{source}.{name}" if name else source
            if name in ENTRY_POINTS or any(t == p or t.startswith(p + ".") for p in ENTRY_POINT_MODULES
                                           for t in (source, target)):
                found.append(f"{m} imports {target} at {where(m, line)}")
    return found


def test_scoring_and_drawing_import_no_training_entry_point():
    """evaluation/ scores runs that exist, viz/ draws them: training is experiments/'s."""
    found = training_imports(m for m in MODULES if "." in m and layer_name(m) in NO_TRAINING)
    assert not found, "training entry points imported:\n" + "\n".join(found)


def test_the_entry_point_check_sees_a_function_level_run_crossval(tmp_path, monkeypatch):
    pkg = tmp_path / "workbench"
    (pkg / "viz").mkdir(parents=True)
    (pkg / "viz" / "runs.py").write_text("def f():\n    from workbench.training.crossval import run_crossval\n")
    (pkg / "viz" / "fine.py").write_text("from workbench.training.results import read_results\n")
    monkeypatch.setitem(globals(), "PACKAGE", pkg)
    monkeypatch.setitem(globals(), "MODULES", {module_name(p): p for p in sorted(pkg.rglob("*.py"))})
    assert training_imports(["workbench.viz.runs", "workbench.viz.fine"]) == [
        "workbench.viz.runs imports workbench.training.crossval.run_crossval at workbench/viz/runs.py:2"]


def test_leaves_import_nothing_from_the_package():
    found = [f"{m} -> {i} at {where(m, line)}" for m in MODULES if m.split(".")[-1] in LEAVES and "." in m
             for i, line in GRAPH[m]]
    assert not found, "\n".join(found)


def test_nothing_in_the_package_imports_testing():
    found = [f"{m} -> {i} at {where(m, line)}" for m in MODULES if layer(m) != RANK["testing"]
             for i, line in GRAPH[m] if layer(i) == RANK["testing"]]
    assert not found, "\n".join(found)


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module importing
    itself), by Tarjan's algorithm, iteratively (no recursion limit on a deep package).

    >>> cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["e"]})
    [['a', 'b', 'c'], ['e']]
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(sorted(component))
    return sorted(found)


def test_no_import_cycles():
    edges = {m: sorted({i for i, _ in imports if i in MODULES}) for m, imports in GRAPH.items()}
    found = []
    for component in cycles(edges):
        members = set(component)
        links = [f"{m} -> {i} at {where(m, line)}" for m in component for i, line in GRAPH[m] if i in members]
        found.append(" | ".join(links))
    assert not found, "import cycles:\n" + "\n".join(found)


def test_the_walk_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "workbench"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("from . import amh\n")
    (pkg / "models" / "amh.py").write_text("def f():\n    from ..training import crossval\n")
    (pkg / "training").mkdir()
    (pkg / "training" / "__init__.py").write_text("")
    (pkg / "training" / "crossval.py").write_text("")
    monkeypatch.setitem(globals(), "PACKAGE", pkg)
    monkeypatch.setitem(globals(), "MODULES", {module_name(p): p for p in sorted(pkg.rglob("*.py"))})
    assert imports_of("workbench.models") == [("workbench.models.amh", 1)]
    assert imports_of("workbench.models.amh") == [("workbench.training.crossval", 2)]
