"""What notebook 05 reads: a runs root's results (filtered, newest configurations), the protocol
of its per-model sections, one confusion matrix per system."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.evaluation.collect import (
    ResultsNotFoundError,
    load_results,
    main_protocol,
    system_confusions,
)
from workbench.training.results import append_rows, results_dir

CLASSES = ["neu", "hap", "ang", "sad"]


def _write(root, runs: list[tuple[str, str, str, str]]) -> None:
    """runs: (run_id, model, config_hash, created); two test utterances each."""
    rows = pd.DataFrame([dict(run_id=r, model=m, variant="", config_hash=h, corpus="synthetic", protocol="loso_session",
                              text_source="oracle", fold="Ses01", seed=0, ua=0.5, created=c, classes='["neu", "hap"]',
                              n_test=2) for r, m, h, c in runs])
    preds = pd.DataFrame([dict(run_id=r, model=m, utt_id=f"u{k}", label="neu", pred="neu", probs=[0.9, 0.1])
                          for r, m, _, _ in runs for k in range(2)])
    append_rows(results_dir(root) / "results.parquet", rows)
    append_rows(results_dir(root) / "predictions.parquet", preds, key="utt_id")  # any key: one write


def test_load_results_keeps_the_newest_configuration_and_its_predictions(tmp_path):
    _write(tmp_path, [("a-old", "a", "old", "2026-01-01"), ("a-new", "a", "new", "2026-02-01"),
                      ("b-1", "b", "x", "2026-01-01")])
    table, preds = load_results(tmp_path)
    assert sorted(table["run_id"]) == ["a-new", "b-1"] and table.attrs["left_out"] == 1
    assert sorted(preds["run_id"].unique()) == ["a-new", "b-1"] and len(preds) == 4
    every, _ = load_results(tmp_path, latest_only=False)
    assert len(every) == 3 and every.attrs["left_out"] == 0
    only_b, preds_b = load_results(tmp_path, models=["b"])
    assert only_b["model"].tolist() == ["b"] and set(preds_b["run_id"]) == {"b-1"}


def test_missing_or_empty_results_name_the_runs_root(tmp_path):
    with pytest.raises(ResultsNotFoundError, match=rf"no results table at {tmp_path}/results/results.parquet"):
        load_results(tmp_path)
    _write(tmp_path, [("a-1", "a", "h", "2026-01-01")])
    with pytest.raises(ResultsNotFoundError, match=r"no rows for models \['zzz'\]") as err:
        load_results(tmp_path, models=["zzz"])
    assert isinstance(err.value, WorkbenchError) and "\n" not in str(err.value)


def test_main_protocol_is_the_given_one_or_the_most_run_with_ties_by_name():
    t = pd.DataFrame({"protocol": ["session_script", "loso_session", "session_script", "random_kfold"]})
    assert main_protocol(t) == "session_script"
    assert main_protocol(t, "random_kfold") == "random_kfold"
    tie = pd.DataFrame({"protocol": ["session_script", "random_kfold", "loso_session"] * 2})
    assert main_protocol(tie) == main_protocol(tie.iloc[::-1]) == "loso_session"


def test_system_confusions_count_what_a_crosstab_counts():
    rng = np.random.default_rng(0)
    n = 200
    preds = pd.DataFrame({"model": rng.choice(["m1", "m2[small]"], n), "label": rng.choice(CLASSES, n),
                          "pred": rng.choice(CLASSES, n)})
    counts = system_confusions(preds, CLASSES, normalise=False)
    norm = system_confusions(preds, CLASSES)
    assert list(counts) == ["m1", "m2[small]"]
    for name, part in preds.groupby("model"):
        expected = pd.crosstab(part["label"], part["pred"]).reindex(index=CLASSES, columns=CLASSES, fill_value=0)
        assert counts[name].to_numpy().tolist() == expected.to_numpy().tolist()
        rows = expected.to_numpy(float) / expected.to_numpy(float).sum(1, keepdims=True)
        assert norm[name].to_numpy(float) == pytest.approx(rows)
