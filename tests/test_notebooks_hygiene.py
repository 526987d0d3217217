"""Committed notebooks carry no outputs but keep their tags; nbval references stay in sync."""

from pathlib import Path

import nbformat
import pytest
from tool_modules import load_tool

ROOT = Path(__file__).resolve().parents[1]


_notebooks_tool = load_tool("notebooks")
keep_checked_outputs, problems, scrub = (_notebooks_tool.keep_checked_outputs, _notebooks_tool.problems,
                                         _notebooks_tool.scrub)
SOURCES = sorted((ROOT / "notebooks").glob("*.ipynb"))
REFERENCES = sorted((ROOT / "tests" / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_committed_notebook_is_clean(path):
    assert problems(path) == []


@pytest.mark.parametrize("path", REFERENCES, ids=lambda p: p.name)
def test_reference_matches_its_source(path):
    """A source edited without `make nbref` would leave nbval checking stale code."""
    source = ROOT / "notebooks" / path.name
    assert source.is_file(), f"reference {path.name} has no source notebook"
    src = [c.source for c in nbformat.read(source, as_version=4).cells]
    ref_cells = nbformat.read(path, as_version=4).cells
    ref = [c.source for c in ref_cells if "injected-parameters" not in c.metadata.get("tags", [])]
    assert ref == src, f"{path.name} is stale: run `make nbref` and review the diff"


def test_scrub_strips_outputs_and_keeps_tags(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"], "execution": {"iopub.status.idle": "2026-01-01T00:00:00Z"}})
    cell.outputs = [nbformat.v4.new_output("stream", text="1")]
    cell.execution_count = 3
    nb.cells = [cell]
    p = tmp_path / "n.ipynb"
    nbformat.write(nb, p)
    assert problems(p) == [f"{p}: cell 0 has outputs or an execution count (run `make scrub`)"]
    assert scrub(p) is True and scrub(p) is False
    cleaned = nbformat.read(p, as_version=4).cells[0]
    assert cleaned.outputs == [] and cleaned.execution_count is None
    assert cleaned.metadata == {"tags": ["parameters"]}
    assert problems(p) == []


def test_reference_keeps_only_checked_outputs():
    nb = nbformat.v4.new_notebook()
    keep = nbformat.v4.new_code_cell("print(1)", metadata={"tags": ["nbval-check-output"]})
    drop = nbformat.v4.new_code_cell("print(2)")
    for c, text in ((keep, "1\n"), (drop, "2\n")):
        c.outputs = [nbformat.v4.new_output("stream", text=text)]
    nb.cells = [keep, drop]
    out = keep_checked_outputs(nb)
    assert [len(c.outputs) for c in out.cells] == [1, 0]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_user_notebooks_show_no_test_markers_and_their_checked_cells_are_tagged(path):
    """nbval's comment markers would be the first line a user reads in a cell; its cell tag is not shown."""
    cells = nbformat.read(path, as_version=4).cells
    assert not [i for i, c in enumerate(cells) if "NBVAL" in c.source]
    reference = ROOT / "tests" / "notebooks" / path.name
    if reference.is_file():
        tagged = [i for i, c in enumerate(cells) if "nbval-check-output" in c.metadata.get("tags", [])]
        ref = [c for c in nbformat.read(reference, as_version=4).cells
               if "injected-parameters" not in c.metadata.get("tags", [])]
        assert tagged and tagged == [i for i, c in enumerate(ref) if "nbval-check-output" in c.metadata.get("tags", [])]
        assert all(ref[i].outputs for i in tagged)  # the reference holds what nbval compares
