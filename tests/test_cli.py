"""The ``workbench`` command's error handling: user errors are one line on stderr and exit 1,
impossible numbers are argparse errors (exit 2) naming the option, ``--debug`` shows the
traceback, Ctrl-C exits 130, bugs keep their traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench import cli
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.testing import write_notebook


def _stderr_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.fixture
def stub_commands(monkeypatch):
    """Subcommands that only record their arguments: nothing trains or executes."""
    seen = []
    for name in ("_batch", "_train", "_bench_features", "_bench_train", "_corpus_synth", "_bundle"):
        monkeypatch.setattr(cli, name, lambda args: seen.append(args) or 0)
    return seen


def _raising(monkeypatch, exc: BaseException) -> None:
    def fail(args):
        raise exc

    monkeypatch.setattr(cli, "_batch", fail)


@pytest.mark.parametrize("exc, expected", [
    (WorkbenchError("grid.yaml: runs[0]: unknown key 'paramters'"), "grid.yaml: runs[0]: unknown key 'paramters'"),
    (WorkbenchError("first line\n  second line\n"), "first line; second line"),
    (FileNotFoundError(2, "No such file or directory", "/nope/g.yaml"), "No such file or directory: /nope/g.yaml"),
    (PermissionError(13, "Permission denied", "/root/out"), "Permission denied: /root/out"),
    (IsADirectoryError(21, "Is a directory", "grids"), "Is a directory: grids"),
    (NotADirectoryError(20, "Not a directory", "a.txt/out"), "Not a directory: a.txt/out"),
])
def test_user_errors_are_one_line_and_exit_1(monkeypatch, capsys, exc, expected):
    _raising(monkeypatch, exc)
    assert main(["batch", "g.yaml", "--out", "o"]) == 1
    assert _stderr_lines(capsys) == [f"workbench: error: {expected}"]


def test_debug_shows_the_traceback(monkeypatch):
    _raising(monkeypatch, WorkbenchError("bad grid"))
    with pytest.raises(WorkbenchError, match="bad grid"):
        main(["--debug", "batch", "g.yaml", "--out", "o"])
    with pytest.raises(WorkbenchError, match="bad grid"):  # after the subcommand too
        main(["batch", "g.yaml", "--out", "o", "--debug"])


def test_ctrl_c_prints_interrupted_and_exits_130(monkeypatch, capsys):
    _raising(monkeypatch, KeyboardInterrupt())
    assert main(["batch", "g.yaml", "--out", "o"]) == 130
    assert _stderr_lines(capsys) == ["interrupted"]


def test_bugs_keep_their_traceback(monkeypatch):
    _raising(monkeypatch, ZeroDivisionError("a bug"))
    with pytest.raises(ZeroDivisionError):
        main(["batch", "g.yaml", "--out", "o"])


def test_a_missing_grid_is_one_line(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 1
    lines = _stderr_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("workbench: error: grid file ") and "nope.yaml" in lines[0]


def test_a_misspelt_grid_key_is_one_line(tmp_path, capsys):
    (tmp_path / "g.yaml").write_text("runs:\n  - notebook: nb.ipynb\n    paramters: {x: 1}\n")
    assert main(["batch", str(tmp_path / "g.yaml"), "--out", str(tmp_path / "o")]) == 1
    (line,) = _stderr_lines(capsys)
    assert "g.yaml: runs[0]: unknown key 'paramters' (did you mean 'parameters'?)" in line


@pytest.mark.parametrize("argv, option", [
    (["train", "amh", "--epochs", "-1"], "--epochs"),
    (["train", "amh", "--epochs", "0"], "--epochs"),
    (["train", "amh", "--seeds", ""], "--seeds"),
    (["train", "amh", "--seeds", "0,,1"], "--seeds"),
    (["train", "amh", "--seeds", "zero"], "--seeds"),
    (["train", "amh", "--folds", "0,"], "--folds"),
    (["train", "amh", "--model-options", "{hidden: 64"], "--model-options"),
    (["train", "amh", "--model-options", "[1]"], "--model-options"),
    (["train", "amh", "--max-retries", "-1"], "--max-retries"),
    (["train", "amh", "--gpus-per-task", "-0.5"], "--gpus-per-task"),
    (["train", "amh", "--cpus-per-task", "nan"], "--cpus-per-task"),
    (["train", "amh", "--corpus-seed", "-3"], "--corpus-seed"),
    (["batch", "g.yaml", "--out", "o", "--jobs", "0"], "--jobs"),
    (["train", "amh", "--jobs", "0"], "--jobs"),
    (["reproduce", "--jobs", "-2"], "--jobs"),
    (["train", "amh", "--jobs", "2", "--threads", "0"], "--threads"),
    (["batch", "g.yaml", "--out", "o", "--jobs", "two"], "--jobs"),
    (["bench", "features", "--limit", "-5"], "--limit"),
    (["bench", "features", "--batch-size", "0"], "--batch-size"),
    (["bench", "train", "--epochs", "-2"], "--epochs"),
    (["bench", "train", "--utterances", "-1"], "--utterances"),
    (["corpus", "synth", "--out", "c", "--corpus-seed", "-1"], "--corpus-seed"),
])
def test_impossible_numbers_are_argparse_errors_naming_the_option(stub_commands, capsys, argv, option):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and not stub_commands
    assert f"error: argument {option}" in capsys.readouterr().err


def test_valid_numbers_are_parsed(stub_commands):
    assert main(["train", "amh", "--seeds", "0, 1,2", "--folds", "0,Ses02", "--epochs", "3",
                 "--model-options", '{"hidden": 64}']) == 0
    args = stub_commands[-1]
    assert (args.seeds, args.folds, args.epochs, args.model_options) == ([0, 1, 2], [0, "Ses02"], 3, {"hidden": 64})
    assert main(["train", "amh"]) == 0
    assert (stub_commands[-1].seeds, stub_commands[-1].folds) == ([0], None)
    assert main(["bench", "features", "--limit", "0"]) == 0 and stub_commands[-1].limit == 0
    assert main(["train", "amh", "--jobs", "2"]) == 0 and (stub_commands[-1].jobs, stub_commands[-1].threads) == (2, 1)


def test_ctrl_c_in_a_batch_writes_the_summary_of_what_finished(tmp_path, monkeypatch, capsys):
    import csv
    from pathlib import Path

    import papermill

    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "nb.ipynb", "print(x)")
    (tmp_path / "g.yaml").write_text("runs:\n  - notebook: nb.ipynb\n    grid: {x: [1, 2, 3]}\n")
    calls = []

    def execute(input_path, output_path, **kw):  # the second cell is Ctrl-C'd midway
        calls.append(output_path)
        Path(output_path).write_text(Path(input_path).read_text())
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    out = tmp_path / "runs"
    assert main(["batch", "g.yaml", "--out", str(out), "--no-html"]) == 130
    assert _stderr_lines(capsys)[-1] == "interrupted"
    assert not list(out.glob(".*.running.ipynb"))
    with open(out / "summary.csv") as f:
        rows = [(r["notebook"], r["status"]) for r in csv.DictReader(f)]
    assert rows == [("nb__x=1", "ok"), ("nb__x=2", "interrupted"), ("nb__x=3", "interrupted")]


def test_a_variant_for_another_corpus_is_one_line(tmp_path, capsys):
    """Before: mcsan's MELD recipe on the synthetic corpus ended in a raw ValueError traceback."""
    from workbench.cli import main

    argv = ["train", "mcsan", "--variant", "meld", "--recipe", "smoke", "--corpus-size", "smoke",
            "--runs-root", str(tmp_path), "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("workbench: error: label scheme 'meld7' keeps none of the")
    assert main(["train", "amh", "--variant", "hops_99", "--runs-root", str(tmp_path)]) == 1
    assert "model 'amh': unknown variant 'hops_99'" in capsys.readouterr().err


# ----------------------------------------------------------------- one vocabulary (issues 22, 30)
@pytest.mark.parametrize("argv, old", [
    (["train", "amh", "--preset", "smoke"], "--preset"),
    (["train", "amh", "--corpus-preset", "full"], "--corpus-preset"),
    (["train", "amh", "--out", "old"], "--out"),
    (["reproduce", "--out", "old"], "--out"),
    (["bundle", "amh", "--out", "b.npz", "--preset", "paper"], "--preset"),
    (["bench", "train", "--preset", "demo"], "--preset"),
    (["bench", "features", "--preset", "demo"], "--preset"),
    (["bench", "features", "--seed", "4"], "--seed"),
    (["corpus", "synth", "--out", "c", "--preset", "full"], "--preset"),
    (["corpus", "synth", "--out", "c", "--seed", "7"], "--seed"),
])
def test_the_option_names_before_the_rename_are_gone(stub_commands, capsys, argv, old):
    """Issue 30 removed the aliases of issue 22 (no release had them): an old name is refused
    by argparse (exit 2) naming it, and nothing runs."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and f"unrecognized arguments: {old}" in capsys.readouterr().err
    assert not stub_commands


def test_help_shows_the_one_name_of_each_option(capsys):
    parser = cli.build_parser()
    for argv, shown in ((["train", "--help"], ("--recipe", "--corpus-size", "--corpus-seed", "--runs-root")),
                        (["bench", "features", "--help"], ("--corpus-size", "--corpus-seed")),
                        (["corpus", "synth", "--help"], ("--corpus-size", "--corpus-seed"))):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        text = capsys.readouterr().out
        assert all(option in text for option in shown), text
        assert "--preset" not in text and "--corpus-preset" not in text and "--seed " not in text
        assert "--out" not in text or argv[0] == "corpus"  # corpus synth --out is its output folder
    with pytest.raises(SystemExit) as exit_:
        main(["train", "amh", "--recipe", "huge"])
    assert exit_.value.code == 2 and "invalid choice: 'huge'" in capsys.readouterr().err


def test_runs_root_is_relative_to_the_working_directory_everywhere(tmp_path, monkeypatch, capsys):
    """issue 28: `--runs-root runs/myexp` wrote $WORKBENCH_RUNS/runs/myexp and never said so."""
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    parse = cli.build_parser().parse_args
    assert cli._runs_root(parse(["train", "amh"])) == tmp_path / "runs"
    assert cli._runs_root(parse(["train", "amh", "--runs-root", "runs/myexp"])) == tmp_path / "runs" / "myexp"
    assert cli._runs_root(parse(["train", "amh", "--runs-root", str(tmp_path / "x")])) == tmp_path / "x"
    assert cli._runs_root(parse(["reproduce"])) == tmp_path / "runs" / "reproduce"
    assert cli._runs_root(parse(["reproduce", "--runs-root", "r2"])) == tmp_path / "r2"
    assert cli._runs_root(parse(["reproduce", "--runs-root", "$WORKBENCH_RUNS/r2"])) == tmp_path / "runs" / "r2"
    assert f"runs root: {tmp_path / 'runs' / 'myexp'}\n" in capsys.readouterr().out  # every folder is said
    assert main(["train", "amh", "--runs-root", ""]) == 1  # '' wrote into $WORKBENCH_RUNS itself
    assert "runs root is empty" in capsys.readouterr().err
    with pytest.raises(WorkbenchError, match="runs root is empty"):  # --debug after reproduce: argparse refused it
        main(["reproduce", "--runs-root", "", "--debug"])


# ------------------------------------------------------------------ no raw tracebacks (issue 28)
def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("workbench: error: "), err
    for n in needles:
        assert n in err[0], err[0]


def test_unknown_model_option_is_one_line(tmp_path, capsys, monkeypatch):
    import workbench.training.crossval as cv

    monkeypatch.setattr(cv, "_check_manifest", lambda *a: None)
    _one_line_error(capsys, ["train", "unimodal_audio", "--recipe", "smoke", "--corpus-size", "smoke", "--folds", "0",
                             "--model-options", '{"nosuch": 1}', "--runs-root", str(tmp_path), "--quiet"],
                    "unknown config field(s) ['nosuch']", "--model-options gave ['nosuch']")


def test_cuda_on_a_cpu_machine_is_one_line(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _one_line_error(capsys, ["train", "unimodal_audio", "--recipe", "smoke", "--device", "cuda",
                             "--runs-root", str(tmp_path), "--quiet"], "device 'cuda'", "--device cpu")
    _one_line_error(capsys, ["train", "unimodal_audio", "--recipe", "smoke", "--device", "gpu0",
                             "--runs-root", str(tmp_path), "--quiet"], "'gpu0' is not a device name")


def test_ray_backend_without_ray_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import sys

    from workbench.testing import write_notebook

    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "good.ipynb", "print(x)")
    (tmp_path / "g.yaml").write_text("runs:\n  - notebook: good.ipynb\n")
    _one_line_error(capsys, ["batch", "g.yaml", "--out", "demo", "--backend", "ray"], "pip install -e '.[ray]'")
    assert not (tmp_path / "demo").exists()  # once left an empty folder with only a lock file
    _one_line_error(capsys, ["train", "unimodal_audio", "--recipe", "smoke", "--backend", "ray",
                             "--runs-root", str(tmp_path / "runs"), "--quiet"], "pip install -e '.[ray]'")


def test_python_dash_m_workbench_runs_the_command(tmp_path):
    """issue 28: there was no workbench/__main__.py."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-m", "workbench", "train", "amh", "--runs-root", ""], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 1 and out.stderr.strip().splitlines() == [
        "workbench: error: runs root is empty ('' is no folder); give a path, or leave it out for "
        f"{os.environ.get('WORKBENCH_RUNS') or Path(__file__).resolve().parents[1] / 'runs'}"]


def test_train_says_where_results_went_what_it_reused_and_what_smoke_numbers_mean(tmp_path, monkeypatch, capsys):
    import pandas as pd

    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)  # a relative runs root is relative to the working directory

    def fake_crossval(spec, corpus, backend, runs_root, rerun, progress):
        rows = pd.DataFrame([{"run_id": f"r{k}", "n_train": 80, "n_test": 20, "epochs_run": 2, "wa": 0.25, "ua": 0.25,
                              "macro_f1": 0.1, "train_seconds": 1.0} for k in range(3)])
        rows.attrs.update(trained=1, reused=2, runs_root=runs_root)
        return rows

    monkeypatch.setattr("workbench.training.run_crossval", fake_crossval)
    assert main(["train", "unimodal_audio", "--recipe", "smoke", "--runs-root", "mine"]) == 0
    out = capsys.readouterr().out
    root = tmp_path / "mine"
    assert (f"runs trained 1, reused 2 (--rerun retrains them); runs folder {root} "
            f"(results table {root / 'results' / 'results.parquet'})") in out
    assert "smoke recipe = a plumbing check" in out and "expected at chance" in out
    assert main(["train", "unimodal_audio", "--recipe", "demo", "--runs-root", "mine"]) == 0
    assert "plumbing" not in capsys.readouterr().out
