"""Grid files (workbench/grid.py): expansion into cells, and every mistake is a one-line
GridError naming the file and the run, key or line:column, raised before anything runs."""

import json

import pytest

from workbench.errors import WorkbenchError
from workbench.grid import GridError, load_grid
from workbench.testing import write_notebook


def _grid_file(tmp_path, text):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    return path


def test_load_grid_expands_combinations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "good.ipynb", "print('x is', x)")
    write_notebook(tmp_path / "bad.ipynb", "raise RuntimeError('boom ' + str(x))")
    cells = load_grid(_grid_file(tmp_path, "defaults: {x: 5}\nruns:\n  - notebook: good.ipynb\n"
                                           "    grid: {x: [2, 3]}\n  - notebook: bad.ipynb\n"))
    assert [c.name for c in cells] == ["good__x=2", "good__x=3", "bad"]
    assert [c.parameters["x"] for c in cells] == [2, 3, 5]


def test_grid_errors_name_the_file(tmp_path):
    bad = _grid_file(tmp_path, "runs:\n  - notebook: missing.ipynb\n")
    with pytest.raises(GridError, match=r"g\.yaml: runs\[0\]: notebook missing\.ipynb"):
        load_grid(bad)


@pytest.mark.parametrize("name", ["../victim", "/tmp/victim", "sub/dir", "..", ".hidden", "a b", "x;rm", "",
                                  "index", "victim.FAILED", "victim.INTERRUPTED"])
def test_cell_names_outside_out_are_refused_and_nothing_is_deleted(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "good.ipynb", "print('x is', x)")
    victim = tmp_path / "victim.ipynb"
    victim.write_text("precious")
    grid = _grid_file(tmp_path, f"runs:\n  - notebook: good.ipynb\n    name: {json.dumps(name)}\n")
    with pytest.raises(GridError, match=r"g\.yaml: runs\[0\]: .*name") as err:
        load_grid(grid)  # before run_grid could write or delete anything
    assert "\n" not in str(err.value)
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("text, match", [
    ("defaults: {x: 1, epohcs: 2}\nruns:\n  - notebook: good.ipynb\n", r"g\.yaml: defaults: unknown key 'epohcs'"),
    ("defaults: {x: 1}\nruns:\n  - notebook: good.ipynb\n    paramters: {x: 2}\n",
     r"g\.yaml: runs\[0\]: unknown key 'paramters' \(did you mean 'parameters'\?\)"),
    ("default: {x: 1}\nruns:\n  - notebook: good.ipynb\n", r"g\.yaml: unknown top-level key 'default' \(did you mean 'defaults'\?"),
    ("runs:\n  - notebook: good.ipynb\n    grid: {x: abc}\n", r"g\.yaml: runs\[0\]: grid 'x' must be a list"),
    ("runs:\n  - notebook: good.ipynb\n    grid: {x: []}\n", r"g\.yaml: runs\[0\]: grid 'x' is an empty list"),
    ("runs:\n  - notebook: good.ipynb\n    grid: [x]\n", r"g\.yaml: runs\[0\]: 'grid' must be a mapping"),
    ("runs: good.ipynb\n", r"g\.yaml: 'runs' must be a non-empty list"),
    ("runs:\n  - good.ipynb\n", r"g\.yaml: runs\[0\] must be a mapping"),
    ("runs:\n  - notebook: good.ipynb\n    parameters: {x: 1]\n", r"g\.yaml:3:\d+: invalid YAML: expected ','"),
    ("runs:\n  - notebook: good.ipynb\n    notebook: bad.ipynb\n", r"g\.yaml:3:\d+: invalid YAML: duplicate key 'notebook'"),
    ("- 1\n", r"g\.yaml: a grid file is a mapping"),
])
def test_grid_mistakes_are_one_line_errors_naming_the_file(tmp_path, monkeypatch, text, match):
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "good.ipynb", "print('x is', x)")
    with pytest.raises(GridError, match=match) as err:
        load_grid(_grid_file(tmp_path, text))
    assert isinstance(err.value, WorkbenchError) and "\n" not in str(err.value)


def test_misspelt_default_suggests_close_matches(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "good.ipynb", "print('x is', x)")
    write_notebook(tmp_path / "other.ipynb", "print('x is', x)", parameters="epochs = 1\nx = 1")
    with pytest.raises(GridError, match=r"unknown key 'epohcs'.*did you mean 'epochs'"):
        load_grid(_grid_file(tmp_path, "defaults: {epohcs: 2}\nruns:\n  - notebook: good.ipynb\n"
                                       "  - notebook: other.ipynb\n"))


def test_missing_grid_file_is_one_line_error(tmp_path):
    with pytest.raises(GridError, match=r"grid file .*nope\.yaml does not exist"):
        load_grid(tmp_path / "nope.yaml")


def test_grid_names_are_still_importable_from_batch():
    import workbench.batch
    import workbench.grid

    for name in ("BatchError", "GridError", "GridCell", "load_grid", "name_problem", "check_parameters"):
        assert getattr(workbench.batch, name) is getattr(workbench.grid, name)


def test_python_tags_in_a_grid_are_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    grid = tmp_path / "g.yaml"
    grid.write_text(f"runs: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n")
    with pytest.raises(GridError, match=rf"{grid}:1:7: invalid YAML"):
        load_grid(grid)
    assert not marker.exists()


def test_the_full_study_runs_every_model_under_its_own_papers_set_up():
    """grids/full.yaml: each registered model once with its `paper` recipe's protocol (protocol
    None), with Pepino et al.'s 10 seeds for their models; and recipes that stop early get a
    validation split wherever the protocol is overridden."""
    from pathlib import Path

    from workbench.models import list_models
    from workbench.training.recipes import get_recipe, needs_user_encoder

    cells = load_grid(Path(__file__).resolve().parents[1] / "grids" / "full.yaml")
    assert not [c.problems for c in cells if c.problems]
    train = [c.parameters for c in cells if c.notebook.name == "04_train.ipynb"]
    own = {p["model"]: p for p in train if p.get("recipe") == "paper" and p.get("protocol") is None
           and p.get("text_source", "oracle") == "oracle"}
    # models without default weights (ssl_baseline, ssl_fusion) need the user's checkpoint: the
    # grid cannot name one, and its comments say how to add them
    need_encoder = {m for m in list_models() if needs_user_encoder(m)}
    assert need_encoder and not need_encoder & set(own)
    assert set(own) == set(list_models()) - need_encoder
    for model, p in own.items():
        seeds = 10 if model.startswith("pepino") else 5
        assert len(p["seeds"]) == seeds, model
    for p in train:
        recipe = get_recipe(p["model"], "paper")
        if p.get("protocol") is not None and recipe.early_stopping_patience is not None:
            assert p.get("protocol_options", {}).get("validation") == "random", p


# ------------------------------------------------------------------ bounds (issue 28)
LAUGHS = ("runs:\n  - notebook: good.ipynb\n    parameters:\n      x:\n"
          "        - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
          "        - &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
          "        - &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
          "        - &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
          "        - &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
          "        - [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n")


@pytest.mark.parametrize("text, match", [
    # nested anchors: 1 KB of YAML that expands to 10^6 strings (it wrote 125 MB notebooks)
    (LAUGHS, r"g\.yaml: runs\[0\]: parameter 'x': value too large \(over 10,000 items"),
    ("runs:\n  - notebook: good.ipynb\n    grid:\n      x: [&r [*r]]\n", r"g\.yaml: runs\[0\]: grid 'x'\[0\]: value too large"),
    ("defaults: {x: " + json.dumps("y" * 1_000_001) + "}\nruns:\n  - notebook: good.ipynb\n",
     r"g\.yaml: defaults: 'x': value too large"),
    # 5 axes of 40 values: 10^8 cells, once 300 s and 1.24 GB before anything ran
    ("runs:\n  - notebook: good.ipynb\n    grid:\n" + "".join(f"      {a}: {list(range(40))}\n" for a in "xyzuv"),
     r"g\.yaml: runs\[0\]: the grid expands to more than 10,000 cells \(axes 40 x 40 x 40"),
    # 20,001 cells over two runs
    ("runs:\n  - notebook: good.ipynb\n    grid: {x: " + str(list(range(10_000))) + "}\n"
     "  - notebook: good.ipynb\n    name: two\n    grid: {x: " + str(list(range(10_001))) + "}\n",
     r"g\.yaml: runs\[1\]: the grid expands to more than 10,000 cells \(axes 10001, after 10,000 from earlier runs"),
])
def test_oversized_grids_are_refused_before_expanding(tmp_path, monkeypatch, text, match):
    import time

    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "good.ipynb", "print('x is', x)")
    start = time.perf_counter()
    with pytest.raises(GridError, match=match) as err:
        load_grid(_grid_file(tmp_path, text))
    assert "\n" not in str(err.value)
    assert time.perf_counter() - start < 20  # generous on a shared machine; it took minutes before


def test_a_grid_at_the_cell_bound_still_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "good.ipynb", "print('x is', x)")
    cells = load_grid(_grid_file(tmp_path, "runs:\n  - notebook: good.ipynb\n    grid: {x: "
                                 + str(list(range(100))) + ", y: " + str(list(range(100))) + "}\n"))
    assert len(cells) == 10_000 and len({c.name for c in cells}) == 10_000


def test_a_relative_runs_root_means_the_batchs_working_directory(tmp_path, monkeypatch):
    """issue 28: one meaning for a relative runs root; a notebook runs in its own folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nb").mkdir()
    write_notebook(tmp_path / "nb" / "good.ipynb", "print(runs_root)", parameters="runs_root = None")
    cells = load_grid(_grid_file(tmp_path, "runs:\n  - notebook: nb/good.ipynb\n"
                                           "    grid: {runs_root: [runs/a, /abs/b, $WORKBENCH_RUNS/c]}\n"))
    assert [c.parameters["runs_root"] for c in cells] == [str(tmp_path / "runs" / "a"), "/abs/b", "$WORKBENCH_RUNS/c"]
