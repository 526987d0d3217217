"""Notebook hygiene: committed notebooks carry no outputs but keep their tags.

Developer tool (not part of the library), run from the repository root:

``python tools/notebooks.py check notebooks``      fail if any notebook has outputs or lacks a
                                                  ``parameters`` cell
``python tools/notebooks.py scrub notebooks``      strip outputs/execution counts in place
``python tools/notebooks.py reference GRID DIR``   execute each notebook of a grid with its
                                                  parameters and keep only the outputs of cells
                                                  tagged ``nbval-check-output``: the reference
                                                  copies nbval compares against

The cells nbval compares carry nbval's cell tag ``nbval-check-output`` rather than its
``# NBVAL_CHECK_OUTPUT`` comment, so a user reading a notebook sees no test markers.

Errors follow the ``workbench`` command's policy (:func:`workbench.cli.run_reporting_errors`):
a grid mistake is one line on stderr and exit 1, Ctrl-C exits 130. Notebooks are rewritten
atomically, so an interrupted scrub or reference run never leaves a truncated notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from workbench.io import atomic_write

CHECK_TAG = "nbval-check-output"  # nbval --nbval-lax compares the outputs of cells with this tag
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (workbench)", "language": "python"}


def problems(path: str | Path) -> list[str]:
    """What is wrong with a committed notebook: outputs, execution counts, missing parameters tag."""
    nb = nbformat.read(path, as_version=4)
    found = []
    tagged = 0
    for i, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tagged += 1
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            found.append(f"{path}: cell {i} has outputs or an execution count (run `make scrub`)")
    if tagged != 1:
        found.append(f"{path}: expected exactly one cell tagged 'parameters', found {tagged}")
    return found


def scrub(path: str | Path) -> bool:
    """Strip outputs and execution counts, keep tags, pin the kernelspec. True if changed."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        # papermill/nbclient write execution timings here; they make diffs noisy
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    after = nbformat.writes(nb)
    if after != before:
        atomic_write(path, lambda p: p.write_text(after, encoding="utf-8"))
        return True
    return False


def keep_checked_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop the outputs of every cell not marked for comparison (keeps references small)."""
    for cell in nb.cells:
        # timings and random ids would make every regeneration a diff
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
        if cell.cell_type == "code" and CHECK_TAG not in cell.metadata.get("tags", []):
            cell.outputs = []
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)  # widget state: random model ids, never compared
    return nb


def _notebooks(target: str) -> list[Path]:
    p = Path(target)
    return sorted(p.glob("*.ipynb")) if p.is_dir() else [p]


def main(argv: list[str] | None = None) -> int:
    from workbench.cli import run_reporting_errors

    argv = list(sys.argv[1:] if argv is None else argv)
    return run_reporting_errors(lambda: _main(argv), prog="python tools/notebooks.py")


def _main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, target = argv[0], argv[1]
    if cmd == "check":
        found = [msg for nb in _notebooks(target) for msg in problems(nb)]
        print("\n".join(found) or f"{len(_notebooks(target))} notebooks clean")
        return 1 if found else 0
    if cmd == "scrub":
        for nb in _notebooks(target):
            if scrub(nb):
                print(f"scrubbed {nb}")
        return 0
    if cmd == "reference":
        from workbench.batch import run_grid
        from workbench.grid import load_grid

        if len(argv) < 3:
            print(__doc__)
            return 2
        out = Path(argv[2])
        cells = load_grid(target)
        results = run_grid(cells, out, force=True, html=False)
        for r in results:
            if r.status == "ok":
                nb = keep_checked_outputs(nbformat.read(r.output, as_version=4))
                atomic_write(r.output, lambda p, nb=nb: nbformat.write(nb, str(p)))
        return 0 if all(r.status == "ok" for r in results) else 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
