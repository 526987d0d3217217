"""ensure_runs, the one "reuse or train" of the workbench, and the helpers built on it."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.evaluation.leakage_experiment import PROTOCOLS
from workbench.experiments import runs
from workbench.experiments.runs import ensure_runs, train_for_evaluation
from workbench.training.spec import BackendOptions, CorpusOptions, RunSpec

SMOKE = CorpusOptions("synthetic", size="smoke")


def _fake_crossval(calls: list, broken: str = "", failed: str = ""):
    def fake(spec, corpus, backend, runs_root, progress, **crossval):  # stands in for a real training run
        calls.append((spec.model, corpus, backend, runs_root, progress, crossval))
        if spec.model == broken:
            raise WorkbenchError(f"{broken} cannot run here")
        rows = pd.DataFrame({"run_id": [f"{spec.model}-r"], "model": [spec.model]})
        if spec.model == failed:
            rows.attrs["failed"] = [dict(fold=0, seed=0, error="out of memory")]
        return rows
    return fake


def test_ensure_runs_hands_every_spec_to_run_crossval_in_order(monkeypatch, tmp_path):
    from workbench.training import crossval

    calls: list = []
    monkeypatch.setattr(crossval, "run_crossval", _fake_crossval(calls))
    specs = [RunSpec.create(m, "smoke", folds=[0]) for m in ("unimodal_audio", "unimodal_text")]
    backend = BackendOptions()
    done = ensure_runs(specs, SMOKE, tmp_path, backend, progress=False, cache="c")
    assert [c[0] for c in calls] == ["unimodal_audio", "unimodal_text"]
    assert all(c[1] == SMOKE and c[2] is backend and c[3] == tmp_path and c[5] == {"cache": "c"} for c in calls)
    assert done.errors == [None, None] and done.table()["model"].tolist() == ["unimodal_audio", "unimodal_text"]
    assert ensure_runs([], SMOKE, tmp_path).table().empty


def test_ensure_runs_raises_the_first_error_unless_asked_to_keep_going(monkeypatch, tmp_path):
    from workbench.training import crossval

    calls: list = []
    monkeypatch.setattr(crossval, "run_crossval", _fake_crossval(calls, broken="unimodal_audio",
                                                                 failed="unimodal_text"))
    specs = [RunSpec.create(m, "smoke", folds=[0]) for m in ("unimodal_audio", "unimodal_text", "pepino_audio")]
    with pytest.raises(WorkbenchError, match="unimodal_audio cannot run here"):
        ensure_runs(specs, SMOKE, tmp_path)
    assert len(calls) == 1  # stopped at the first
    done = ensure_runs(specs, SMOKE, tmp_path, keep_going=True)
    assert done.errors[0] == "unimodal_audio cannot run here"
    assert done.errors[1] == ("unimodal_text under loso_session: 1 (fold, seed) training(s) failed; "
                              "first fold 0 seed 0: out of memory") and done.rows[1] is None
    assert done.errors[2] is None and done.table()["model"].tolist() == ["pepino_audio"]


def test_failed_trainings_raise_without_keep_going_whatever_the_backend(monkeypatch, tmp_path):
    """Every backend lists failed trainings in .attrs["failed"]; without keep_going that is an
    error naming them, not rows quietly missing from the table."""
    from workbench.experiments.runs import TrainingsFailed
    from workbench.training import crossval

    calls: list = []
    monkeypatch.setattr(crossval, "run_crossval", _fake_crossval(calls, failed="unimodal_text"))
    specs = [RunSpec.create(m, "smoke", folds=[0]) for m in ("unimodal_text", "pepino_audio")]
    with pytest.raises(TrainingsFailed, match=r"unimodal_text under loso_session: 1 \(fold, seed\) training\(s\) "
                                              r"failed; first fold 0 seed 0: out of memory"):
        ensure_runs(specs, SMOKE, tmp_path)
    assert [c[0] for c in calls] == ["unimodal_text"]


def test_train_for_evaluation_covers_the_leakage_protocols_and_pepinos_sizes(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(runs, "train_missing", lambda *a, **k: calls.append((a, k)) or pd.DataFrame())
    corpus = CorpusOptions("synthetic", size="smoke")
    train_for_evaluation(["unimodal_text", "pepino_audio"], corpus, tmp_path, recipe="smoke", folds=[0], seeds=[1],
                         sizes=["small"])
    (args, kwargs), = calls
    assert args == (["unimodal_text", "pepino_audio"], corpus, tmp_path, "smoke")
    assert kwargs["protocols"] == PROTOCOLS == ("random_kfold", "loso_session", "session_script")
    assert kwargs["variants"] == {"pepino_audio": ("small",), "pepino_text": ("small",)}
    assert kwargs["folds"] == [0] and kwargs["seeds"] == [1]
