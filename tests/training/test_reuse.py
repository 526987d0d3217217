"""Stored predictions are checked before they are reused (issue 28): a damaged run is named
and retrained by cross-validation, refused by the readers that cannot retrain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.evaluation.collect import load_results
from workbench.training.crossval import run_crossval
from workbench.training.results import read_predictions, read_results, results_dir
from workbench.training.reuse import BadPredictionsError, ReusedRunWarning, prediction_problems
from workbench.training.spec import CorpusOptions, RunSpec


def _run(manifest, features, out, tiny_recipe, **spec):
    spec = RunSpec.create("unimodal_audio", tiny_recipe(), **{"folds": [0, 1], "seeds": [0], **spec})
    return run_crossval(spec, CorpusOptions("dummy", size="test"), manifest=manifest, features=features, runs_root=out,
                        progress=False)


def _edit_predictions(root, change):
    path = results_dir(root) / "predictions.parquet"
    table = pd.read_parquet(path)
    table = change(table)
    table.to_parquet(path, index=False)


def _nan_first_row_of(run_id):
    def change(t):
        k = t.index[t["run_id"] == run_id][0]
        t.at[k, "probs"] = [float("nan")] * len(t.at[k, "probs"])
        return t
    return change


BAD = [  # (change to the first run's rows, reason it is named with)
    (lambda t, r: _nan_first_row_of(r)(t), "1 row(s) with non-finite probabilities"),
    (lambda t, r: t[~((t["run_id"] == r) & (t.index == t.index[t["run_id"] == r][0]))],
     "29 prediction row(s) for n_test=30"),
    (lambda t, r: pd.concat([t, t[t["run_id"] == r].iloc[:1]], ignore_index=True),
     "31 prediction row(s) for n_test=30"),
    (lambda t, r: t.assign(probs=[p[:2] if rid == r else p for p, rid in zip(t["probs"], t["run_id"])]),
     "30 row(s) whose probabilities are not one number per class"),
    (lambda t, r: t.assign(probs=[np.array(p) * 2 if rid == r else p for p, rid in zip(t["probs"], t["run_id"])]),
     "row(s) with probabilities outside [0, 1]"),
    (lambda t, r: t.assign(label=["xyz" if rid == r else v for v, rid in zip(t["label"], t["run_id"])]),
     "30 row(s) whose label is not a class of the run"),
    (lambda t, r: t[t["run_id"] != r], "no rows in the predictions table"),
]


@pytest.mark.parametrize("change, reason", BAD)
def test_each_kind_of_damage_names_the_run(manifest, features, tmp_path, tiny_recipe, change, reason):
    rows = _run(manifest, features, tmp_path, tiny_recipe)
    bad, good = rows["run_id"]
    _edit_predictions(tmp_path, lambda t: change(t, bad))
    problems = prediction_problems(read_results(tmp_path), read_predictions(tmp_path))
    assert list(problems) == [bad] and reason in problems[bad]


def test_a_duplicated_utterance_row_is_named(tmp_path):
    r = pd.DataFrame({"run_id": ["a"], "classes": ['["x", "y"]'], "n_test": [2]})
    p = pd.DataFrame({"run_id": ["a", "a"], "utt_id": ["u", "u"], "label": ["x", "x"], "pred": ["x", "x"],
                      "probs": [[0.5, 0.5], [0.5, 0.5]]})
    assert prediction_problems(r, p) == {"a": "1 row(s) repeating an utterance, e.g. utterance u"}


def test_crossval_retrains_a_run_whose_predictions_are_damaged(manifest, features, tmp_path, tiny_recipe):
    """The probe: NaN probs for one run were reused as they were and moved a ledger's verdict."""
    rows = _run(manifest, features, tmp_path, tiny_recipe)
    bad, good = rows["run_id"]
    before = read_predictions(tmp_path)
    _edit_predictions(tmp_path, _nan_first_row_of(bad))
    with pytest.warns(ReusedRunWarning, match=f"run {bad} in .*: its stored predictions cannot be reused "
                                              r"\(1 row\(s\) with non-finite probabilities.*\); retraining it"):
        again = _run(manifest, features, tmp_path, tiny_recipe)
    after = read_predictions(tmp_path)
    assert prediction_problems(read_results(tmp_path), after) == {}
    assert len(after) == len(before) and not after.duplicated(["run_id", "utt_id"]).any()
    # retrained from scratch with the same seed: the same predictions as the first time
    a = np.stack(after.set_index(["run_id", "utt_id"]).sort_index()["probs"].to_numpy())
    b = np.stack(before.set_index(["run_id", "utt_id"]).sort_index()["probs"].to_numpy())
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert again.set_index("run_id").loc[good, "created"] == rows.set_index("run_id").loc[good, "created"]  # reused


def test_readers_that_cannot_retrain_refuse_the_run(manifest, features, tmp_path, tiny_recipe):
    rows = _run(manifest, features, tmp_path, tiny_recipe)
    bad = rows["run_id"].iloc[0]
    results, preds = load_results(tmp_path)  # undamaged: read as before
    assert len(results) == 2 and len(preds) == 60
    _edit_predictions(tmp_path, _nan_first_row_of(bad))
    with pytest.raises(BadPredictionsError, match=f"predictions.parquet: stored predictions cannot be reused: run {bad}: "
                                                  r"1 row\(s\) with non-finite probabilities") as e:
        load_results(tmp_path)
    assert "\n" not in str(e.value)
