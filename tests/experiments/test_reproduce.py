"""The ledger plans each condition once, reuses finished runs, and never drops a claim."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.evaluation.claims import Claim, ClaimError, Condition
from workbench.experiments.reproduce import condition_scores, plan, reproduce, select_claims, write_ledger
from workbench.training import CorpusOptions

SMOKE = CorpusOptions("synthetic", None, "smoke")
SHARED = ["xu2019.alignment_beats_concat", "xu2019.learned_beats_hard"]  # both need xu_alignment


def test_the_plan_is_the_union_of_conditions():
    p = plan(select_claims(claims=SHARED), "smoke")
    assert sorted(c.model for c in p.specs) == ["xu_alignment", "xu_alignment_concat", "xu_alignment_hard"]
    assert len(plan(select_claims(papers=["yoon2020"]), "smoke").specs) == 12  # AMH-1..9, AMH-7 ASR, MDRE, MHA


def test_runs_are_reused_never_trained_twice_and_missing_ones_are_named(tmp_path):
    bad = Claim("test.needs_official", "test", "-", "needs a split the corpus lacks",
                ((1, Condition("xu_alignment")), (-1, Condition("xu_alignment_concat", protocol="official"))))
    claims = select_claims(claims=SHARED) + [bad]
    first = reproduce(claims, SMOKE, tmp_path, recipe="smoke", folds=[0], n_boot=20, progress=False)
    assert (first.attrs["trained"], first.attrs["reused"]) == (3, 0)  # xu_alignment once for both claims
    assert first["claim"].tolist() == [*SHARED, "test.needs_official"]
    not_run = first.set_index("claim").loc["test.needs_official"]
    assert not_run.verdict == "not run" and "xu_alignment_concat@official: protocol 'official'" in not_run.reason
    assert first.set_index("claim").loc[SHARED, "verdict"].isin(["reproduced", "refuted", "inconclusive"]).all()
    again = reproduce(claims[:2], SMOKE, tmp_path, recipe="smoke", folds=[0], n_boot=20, progress=False)
    assert (again.attrs["trained"], again.attrs["reused"]) == (0, 3)
    assert (again["mode"] == "full").all() and again.attrs["wall_seconds"] >= 0
    pq, page = write_ledger(again, tmp_path / "ledger")
    assert pd.read_parquet(pq)["claim"].tolist() == SHARED and "Reproduction ledger" in page.read_text()


def test_unknown_claims_and_papers_are_one_line_errors():
    with pytest.raises(ClaimError, match="no claims for paper"):
        select_claims(papers=["xu2020"])
    with pytest.raises(ClaimError, match="unknown claim 'nope'"):
        select_claims(claims=["nope"])


def test_a_claim_over_different_class_sets_is_not_run(tmp_path, monkeypatch):
    """Conditions trained on 4 and on 7 classes cannot be scored on the same utterances."""
    import json

    from workbench.training import crossval

    def fake(spec, corpus, backend, runs_root, progress):  # one finished run per condition, no training
        classes = ["neu", "hap", "ang", "sad"] + (["fru", "sur", "fea"] if spec.model == "xu_alignment_hard" else [])
        return pd.DataFrame({"run_id": [f"{spec.model}-r"], "classes": [json.dumps(classes)]})

    monkeypatch.setattr(crossval, "run_crossval", fake)
    led = reproduce(select_claims(claims=["xu2019.learned_beats_hard"]), SMOKE, tmp_path, recipe="smoke",
                    progress=False)
    row = led.iloc[0]
    assert row.verdict == "not run" and "different class sets" in row.reason


def test_quick_mode_runs_one_seed_on_two_folds_and_marks_its_verdicts(tmp_path):
    from workbench.experiments.reproduce import QUICK_FOLDS, verdict_label
    from workbench.training.results import read_results

    claim = Claim("test.quick", "test", "-", "contextual beats static",
                  ((1, Condition("pepino_text")), (-1, Condition("pepino_text", "static_text"))), metric="av_auc")
    led = reproduce([claim], SMOKE, tmp_path, recipe="smoke", seeds=[3, 4], n_boot=20, progress=False, quick=True)
    runs = read_results(tmp_path)
    assert sorted(runs["seed"].unique()) == [3] and runs["fold"].nunique() == len(QUICK_FOLDS) == 2
    assert led.attrs["trained"] == 4 and led.iloc[0]["mode"] == "quick" and led.iloc[0]["seeds"] == 1
    label = verdict_label(led.iloc[0])
    assert "(quick; one seed: training variance not estimated)" in label
    _, page = write_ledger(led, tmp_path / "ledger")
    assert "Quick mode" in page.read_text()
    curve = condition_scores(led, "test.quick")
    assert curve["condition"].tolist() == ["pepino_text", "pepino_text[static_text]"]
    assert ((curve["ci_low"] <= curve["score"]) & (curve["score"] <= curve["ci_high"])).all()


def test_a_ledger_written_before_quick_mode_still_renders():
    from workbench.experiments.reproduce import ledger_html

    old = pd.DataFrame({"claim": ["a"], "paper": ["p"], "source": ["T1"], "text": ["A"], "metric": ["ua"],
                        "paper_value": [0.1], "difference": [0.05], "ci_low": [0.01], "ci_high": [0.09],
                        "p_value": [0.2], "reason": [""], "verdict": ["reproduced"]})  # no "mode" column
    page = ledger_html(old)
    assert "reproduced" in page and "Quick mode" not in page


def test_a_run_whose_predictions_were_damaged_is_refused_not_averaged_in(tmp_path, monkeypatch):
    """issue 28: NaN probs of one reused run moved a verdict silently. run_crossval retrains a
    damaged run (tests/training/test_reuse.py); one damaged after it returned is refused here."""
    import json

    from workbench.training import crossval
    from workbench.training.results import append_rows, results_dir

    classes = ["neu", "hap", "ang", "sad"]

    def fake(spec, corpus, backend, runs_root, progress):  # one finished run per condition, no training
        return pd.DataFrame({"run_id": [f"{spec.model}-r"], "classes": [json.dumps(classes)], "n_test": [2]})

    preds = pd.DataFrame([dict(run_id=f"{m}-r", utt_id=f"u{k}", label="neu", pred="neu", fold="Ses01", seed=0,
                               probs=[float("nan") if (m, k) == ("xu_alignment_hard", 1) else 0.7, 0.1, 0.1, 0.1])
                          for m in ("xu_alignment", "xu_alignment_hard") for k in range(2)])
    append_rows(results_dir(tmp_path) / "predictions.parquet", preds)
    monkeypatch.setattr(crossval, "run_crossval", fake)
    led = reproduce(select_claims(claims=["xu2019.learned_beats_hard"]), SMOKE, tmp_path, recipe="smoke",
                    progress=False)
    row = led.iloc[0]
    assert row.verdict == "not run"
    assert "run xu_alignment_hard-r: 1 row(s) with non-finite probabilities, e.g. utterance u1" in row.reason
