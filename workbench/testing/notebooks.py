"""Tiny notebooks on disk for tests of papermill grids (``workbench.grid``, ``workbench.batch``)."""

from __future__ import annotations

from pathlib import Path


def write_notebook(path: str | Path, body: str, parameters: str = "x = 1") -> Path:
    """Write a two-cell notebook: ``parameters`` in a cell tagged ``parameters`` (what a grid
    can override), then ``body``; a python3 kernelspec so papermill can run it."""
    import nbformat  # here: importing workbench.testing stays light for the doctests that use it

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return Path(path)
