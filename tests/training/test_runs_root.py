"""Runs roots: what a ``runs_root`` parameter names, filling a root with the models it lacks,
and finding a run's twin on another text source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench import paths
from workbench.experiments.runs import counterpart, train_missing
from workbench.training.crossval import run_crossval
from workbench.training.results import ResultsNotFoundError, read_results
from workbench.training.runs_root import RunsRootError, models_without_rows, resolve_runs_root
from workbench.training.spec import CorpusOptions, RunSpec

CORPUS = CorpusOptions("dummy", size="test")


def test_runs_root_none_absolute_and_relative(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path / "..")
    assert resolve_runs_root(None) == tmp_path / "runs"
    assert resolve_runs_root(None, default="reproduce") == tmp_path / "runs" / "reproduce"
    # one rule for every entry point: a relative path is relative to the working directory
    assert resolve_runs_root("reproduce") == tmp_path.parent / "reproduce"
    assert resolve_runs_root(f"{tmp_path.name}/a/../b") == tmp_path / "b"
    assert resolve_runs_root("$WORKBENCH_RUNS/reproduce") == tmp_path / "runs" / "reproduce"
    monkeypatch.delenv("WORKBENCH_RUNS")
    assert resolve_runs_root("$WORKBENCH_RUNS/x") == paths.runs_dir() / "x"  # the default runs/ when unset
    assert resolve_runs_root(tmp_path / "elsewhere") == tmp_path / "elsewhere"
    assert resolve_runs_root(str(tmp_path / "elsewhere")) == tmp_path / "elsewhere"
    with pytest.raises(RunsRootError, match="runs root is empty"):
        resolve_runs_root("")


def test_run_crossval_and_readers_share_the_rule(manifest, features, tmp_path, tiny_recipe, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path)
    run_crossval(RunSpec.create("unimodal_audio", tiny_recipe(epochs=1), folds=[0]), CORPUS, manifest=manifest,
                 features=features, runs_root="runs/myexp", progress=False)
    assert len(read_results("runs/myexp")) == 1 and len(read_results(tmp_path / "runs" / "myexp")) == 1
    # a runs root without a results table is an error naming the folder, not an empty table
    with pytest.raises(ResultsNotFoundError, match=f"no results table in runs root {tmp_path / 'runs' / 'nope'}"):
        read_results("runs/nope")
    assert read_results("runs/nope", missing_ok=True).empty  # for callers about to fill it


def test_train_missing_trains_only_models_without_rows(manifest, features, tmp_path, tiny_recipe):
    recipe = tiny_recipe(epochs=1)
    run_crossval(RunSpec.create("unimodal_audio", recipe, folds=[0]), CORPUS, manifest=manifest, features=features,
                 runs_root=tmp_path, progress=False)
    assert models_without_rows(tmp_path, ["unimodal_audio", "unimodal_text", "unimodal_text"]) == ["unimodal_text"]
    rows = train_missing(["unimodal_audio", "unimodal_text"], CORPUS, tmp_path, recipe,
                         protocols=("loso_session", "random_kfold"), folds=[0], seeds=[0, 1],
                         manifest=manifest, features=features)
    # unimodal_audio had a row: left alone; unimodal_text: 2 protocols x 1 fold x 2 seeds
    assert set(rows["model"]) == {"unimodal_text"} and len(rows) == 4
    assert sorted(rows["protocol"].unique()) == ["loso_session", "random_kfold"]
    assert sorted(rows["seed"].unique()) == [0, 1]
    table = read_results(tmp_path)
    assert table.groupby("model").size().to_dict() == {"unimodal_audio": 1, "unimodal_text": 4}
    # nothing missing any more: nothing trained, the table unchanged
    again = train_missing(["unimodal_audio", "unimodal_text"], CORPUS, tmp_path, recipe, manifest=manifest,
                          features=features)
    assert again.empty and len(read_results(tmp_path)) == 5
    assert train_missing([], CORPUS, tmp_path, recipe).empty


def test_counterpart_rebuilds_the_same_run_from_its_config(manifest, features, tmp_path, tiny_recipe):
    """A run's config.json, turned back into a spec, names the same run: with the same text
    source the counterpart is the run itself, reused rather than trained again."""
    rows = run_crossval(RunSpec.create("unimodal_audio", tiny_recipe(epochs=1), folds=[1], seeds=[3]), CORPUS,
                        manifest=manifest, features=features, runs_root=tmp_path, progress=False)
    run_dir = rows.iloc[0]["run_dir"]
    config = json.loads((Path(run_dir) / "config.json").read_text())
    created = read_results(tmp_path)["created"].tolist()
    twin = counterpart(config, "oracle", tmp_path, manifest=manifest, features=features)
    assert Path(twin) == Path(run_dir)
    assert read_results(tmp_path)["created"].tolist() == created  # reused, not retrained
    with pytest.raises(Exception, match="text_source"):
        counterpart(config, "subtitles", tmp_path, manifest=manifest, features=features)


def test_readers_expand_the_runs_root_as_training_does(manifest, features, tmp_path, tiny_recipe, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "wr"))
    run_crossval(RunSpec.create("unimodal_audio", tiny_recipe(epochs=1), folds=[0]), CORPUS, manifest=manifest,
                 features=features, runs_root="$WORKBENCH_RUNS/exp", progress=False)
    assert (tmp_path / "wr" / "exp" / "results" / "results.parquet").is_file()
    assert len(read_results("$WORKBENCH_RUNS/exp")) == 1
