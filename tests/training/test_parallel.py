"""Local parallel training (``BackendOptions(jobs=N)``): the same runs, rows and predictions as
one training after another, the results tables written by the parent alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.distributed import BackendOptionsError
from workbench.training.crossval import prepare_crossval, run_crossval, run_prepared
from workbench.training.results import read_predictions, read_results
from workbench.training.spec import BackendOptions, CorpusOptions, RunSpec

CORPUS = CorpusOptions("dummy", size="test")


def _run(manifest, features, out, recipe, jobs, **spec):
    spec = RunSpec.create("unimodal_audio", recipe, **{"folds": [0, 2], "seeds": [0, 1], **spec})
    return run_crossval(spec, CORPUS, BackendOptions(jobs=jobs), manifest=manifest, features=features,
                        runs_root=out, progress=False)


def test_jobs_2_gives_the_runs_rows_and_predictions_of_jobs_1(manifest, features, tmp_path, tiny_recipe):
    serial = _run(manifest, features, tmp_path / "serial", tiny_recipe(), 1)
    parallel = _run(manifest, features, tmp_path / "parallel", tiny_recipe(), 2)
    assert parallel.attrs["failed"] == []
    assert list(parallel["run_id"]) == list(serial["run_id"])  # same ids, in job order
    for col in ("wa", "ua", "macro_f1", "weighted_f1", "av_auc"):
        np.testing.assert_allclose(parallel[col].to_numpy(float), serial[col].to_numpy(float), atol=1e-6)
    assert (parallel["epochs_run"] == serial["epochs_run"]).all()
    a, b = (read_predictions(tmp_path / k).sort_values(["run_id", "utt_id"]).reset_index(drop=True)
            for k in ("serial", "parallel"))
    assert len(a) == len(b) == 2 * 2 * 30
    pd.testing.assert_frame_equal(a.drop(columns="probs"), b.drop(columns="probs"))
    np.testing.assert_allclose(np.stack(a["probs"].to_numpy()), np.stack(b["probs"].to_numpy()), atol=1e-5)
    # every row once in the table the parent wrote, each run's directory complete
    table = read_results(tmp_path / "parallel")
    assert sorted(table["run_id"]) == sorted(serial["run_id"]) and table["run_id"].is_unique
    for run_id in table["run_id"]:
        assert (tmp_path / "parallel" / "train" / run_id / "predictions.parquet").is_file()
    # a second parallel run reuses every finished run: nothing retrained
    created = table.set_index("run_id")["created"].to_dict()
    again = _run(manifest, features, tmp_path / "parallel", tiny_recipe(), 2)
    assert list(again["run_id"]) == list(serial["run_id"])
    assert read_results(tmp_path / "parallel").set_index("run_id")["created"].to_dict() == created


def test_one_pool_over_several_specs_trains_a_shared_run_once(manifest, features, tmp_path, tiny_recipe):
    # Two conditions that resolve to one configuration (as two claims' conditions can) share
    # their runs: trained once, both frames get the rows.
    specs = [RunSpec.create("unimodal_audio", tiny_recipe(), folds=[0], seeds=[0]),
             RunSpec.create("unimodal_audio", tiny_recipe(), folds=[0, 1], seeds=[0]),
             RunSpec.create("unimodal_audio", tiny_recipe(lr=5e-3), folds=[1], seeds=[0])]
    prepared = [prepare_crossval(s, CORPUS, runs_root=tmp_path, manifest=manifest, features=features, progress=False)
                for s in specs]
    frames = run_prepared(prepared, BackendOptions(jobs=2), progress=False)
    assert [len(f) for f in frames] == [1, 2, 1]
    assert frames[0]["run_id"].iloc[0] == frames[1]["run_id"].iloc[0]
    assert len(read_results(tmp_path)) == 3


def test_jobs_and_threads_below_one_are_refused():
    with pytest.raises(BackendOptionsError, match="jobs must be a whole number >= 1, got 0"):
        BackendOptions(jobs=0)
    with pytest.raises(BackendOptionsError, match="threads must be a whole number >= 1, got 1.5"):
        BackendOptions(threads=1.5)
    with pytest.raises(BackendOptionsError, match="jobs must be a whole number >= 1, got True"):
        BackendOptions(jobs=True)
    assert BackendOptions(jobs=np.int64(2)).jobs == 2  # a notebook parameter may be a numpy int


def test_two_strategies_in_one_pool_share_their_branch_runs(manifest, features, tmp_path, tiny_recipe):
    small = {"text_dense": 8, "text_filters": 8, "audio_filters": 8, "fusion_hidden": 8}
    specs = [RunSpec.create("pepino_late", tiny_recipe("pepino_late", model_config=small, fusion_strategy=s, epochs=2),
                            folds=[0], seeds=[0]) for s in ("pretrained", "warm_start")]
    prepared = [prepare_crossval(s, CORPUS, runs_root=tmp_path, manifest=manifest, features=features, progress=False)
                for s in specs]
    frames = run_prepared(prepared, BackendOptions(jobs=2), progress=False)
    assert [f.attrs["failed"] for f in frames] == [[], []]
    table = read_results(tmp_path)
    assert sorted(table["model"]) == ["pepino_audio", "pepino_late", "pepino_late", "pepino_text"]
    for run_id in table.loc[table["model"] != "pepino_late", "run_id"]:
        epochs = pd.read_csv(tmp_path / "train" / run_id / "metrics.csv")["epoch"].tolist()
        assert epochs == [1, 2], run_id  # one run of 2 epochs, recorded once, whichever worker trained it


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failed_training_is_reported_alike_on_every_local_backend(manifest, features, tmp_path, tiny_recipe, jobs):
    # One run folder cannot be made (a file stands in its place), so that training fails in
    # whichever process trains it. One after another used to stop at it with a traceback and
    # lose the other fold; every backend now trains the rest and lists the failure.
    from workbench.training.crossval import failure_report, run_identity

    spec = RunSpec.create("unimodal_audio", tiny_recipe(), folds=[0, 2], seeds=[0])
    prepared = prepare_crossval(spec, CORPUS, runs_root=tmp_path, manifest=manifest, features=features, progress=False)
    blocked = run_identity(prepared.jobs[0], manifest, prepared.features)[0]
    (tmp_path / "train").mkdir(parents=True)
    (tmp_path / "train" / blocked).write_text("not a folder")
    rows = run_crossval(spec, CORPUS, BackendOptions(jobs=jobs), manifest=manifest, features=features,
                        runs_root=tmp_path, progress=False)
    assert list(rows["fold"]) == [prepared.jobs[1].fold.name]
    (failed,) = rows.attrs["failed"]
    assert (failed["fold"], failed["seed"]) == (prepared.jobs[0].fold.name, 0)
    assert failed["error"].startswith("FileExistsError: ") and failed["error"].endswith("(1 attempt)")
    assert blocked in failed["error"]
    assert list(read_results(tmp_path)["fold"]) == [prepared.jobs[1].fold.name]
    assert failure_report(rows.attrs["failed"]).startswith(
        f"1 (fold, seed) training(s) failed; first fold {prepared.jobs[0].fold.name} seed 0: FileExistsError")
