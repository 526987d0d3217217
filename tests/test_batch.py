import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from workbench.batch import load_grid, run_grid, summary_table
from workbench.cli import main


def _notebook(path, body):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1  # overridden by the grid", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def grid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _notebook(tmp_path / "good.ipynb", "print('x is', x)")
    _notebook(tmp_path / "bad.ipynb", "raise RuntimeError('boom ' + str(x))")
    (tmp_path / "grid.yaml").write_text(
        "defaults: {x: 5}\n"
        "runs:\n"
        "  - notebook: good.ipynb\n"
        "    grid: {x: [2, 3]}\n"
        "  - notebook: bad.ipynb\n"
    )
    return tmp_path / "grid.yaml"


def test_load_grid_expands_combinations(grid):
    cells = load_grid(grid)
    assert [c.name for c in cells] == ["good__x=2", "good__x=3", "bad"]
    assert [c.parameters["x"] for c in cells] == [2, 3, 5]


def test_grid_runs_continue_past_failures_and_skip_unchanged(grid, tmp_path, monkeypatch):
    import workbench.batch

    monkeypatch.setattr(workbench.batch, "_library_hash", lambda: "v1")
    out = tmp_path / "runs"
    results = run_grid(load_grid(grid), out, jobs=2, html=True)
    assert [r.status for r in results] == ["ok", "ok", "failed"]
    assert "boom 5" in results[2].error
    executed = nbformat.read(out / "good__x=3.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "x is 3" in printed
    index = (out / "index.html").read_text()
    assert 'href="good__x=2.html"' in index and "failed" in index
    # second run: unchanged ok cells are skipped, the failed one is retried
    again = run_grid(load_grid(grid), out, jobs=1, html=False)
    assert [r.status for r in again] == ["skipped", "skipped", "failed"]
    assert set(json.loads((out / "batch_state.json").read_text())) == {"good__x=2", "good__x=3"}
    # a library change invalidates earlier runs
    monkeypatch.setattr(workbench.batch, "_library_hash", lambda: "v2")
    assert [r.status for r in run_grid(load_grid(grid)[:1], out, html=False)] == ["ok"]
    table = summary_table(again)
    assert list(table.columns) == ["notebook", "status", "seconds", "error"]


def test_cli_exit_code_reflects_failures(grid, tmp_path):
    assert main(["batch", str(grid), "--out", str(tmp_path / "r"), "--no-html"]) == 1


def test_grid_errors_name_the_file(tmp_path):
    bad = tmp_path / "g.yaml"
    bad.write_text("runs:\n  - notebook: missing.ipynb\n")
    with pytest.raises(FileNotFoundError, match=r"g\.yaml: runs\[0\]: notebook missing\.ipynb"):
        load_grid(bad)


def test_bad_parameters_fail_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _notebook(tmp_path / "good.ipynb", "print('x is', x)")
    (tmp_path / "g.yaml").write_text(
        "defaults: {x: 1, only_elsewhere: true}\n"  # defaults a notebook lacks are not passed
        "runs:\n"
        "  - notebook: good.ipynb\n"
        "  - notebook: good.ipynb\n    name: typo\n    parameters: {y: 2}\n"
        "  - notebook: good.ipynb\n    name: wrongtype\n    parameters: {x: 'one'}\n"
    )
    cells = load_grid(tmp_path / "g.yaml")
    assert cells[0].parameters == {"x": 1} and cells[0].problems == ()
    results = run_grid(cells, tmp_path / "out", html=False)
    assert [r.status for r in results] == ["ok", "failed", "failed"]
    assert "unknown parameter 'y'" in results[1].error
    assert "parameter 'x': expected int" in results[2].error and results[2].seconds == 0.0
    assert not (tmp_path / "out" / "typo.ipynb").exists()


def test_failed_notebook_never_sits_under_its_final_name(grid, tmp_path):
    out = tmp_path / "runs"
    results = run_grid(load_grid(grid), out, html=False)
    assert results[2].output.name == "bad.FAILED.ipynb" and results[2].output.is_file()
    assert not (out / "bad.ipynb").exists()
    assert not list(out.glob(".*.running.ipynb"))


def test_summary_reads_key_metrics_of_matching_runs():
    from workbench.batch import CellResult

    cells = [
        CellResult("train__model=a", "nb", Path("x"), "ok", 1.0, "", {"model": "a", "preset": "demo"}),
        CellResult("train__model=b", "nb", Path("y"), "ok", 2.0, "", {"model": "b", "protocol": "p2"}),
        CellResult("explore", "nb", Path("z"), "failed", 3.0, "boom", {"preset": "demo"}),
    ]
    table = pd.DataFrame({
        "model": ["a", "a", "a", "b", "b"],
        "corpus_preset": ["demo", "demo", "smoke", "demo", "demo"],
        "protocol": ["p1", "p2", "p1", "p1", "p2"],
        "wa": [0.5, 0.7, 0.9, 0.1, 0.3], "ua": [0.4, 0.6, 0.9, 0.2, 0.35], "macro_f1": [0.3, 0.5, 0.9, 0.1, 0.25],
    })
    s = summary_table(cells, table)
    assert s["runs"].tolist()[:2] == [2, 1] and pd.isna(s["runs"].iloc[2])
    assert s.loc[0, ["wa", "ua", "macro_f1"]].tolist() == [0.6, 0.5, 0.4]  # demo rows of model a only
    assert s.loc[1, "ua"] == 0.35 and s.loc[2, "error"] == "boom"
