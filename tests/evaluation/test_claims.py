"""The claim statistic and its decision rule on constructed predictions with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.evaluation.claims import CLAIMS, Claim, ClaimError, Condition, get_claim
from workbench.evaluation.verdicts import evaluate_claim, verdict

CLASSES = ["neu", "hap", "ang", "sad"]
A, B = Condition("model_a"), Condition("model_b")
CLAIM = Claim("test.a_beats_b", "test", "Table 0", "a beats b", ((1, A), (-1, B)))


def _preds(accuracy: float, rng_seed: int, folds: int = 5, seeds: int = 2, n: int = 200, protocol: str = "p") -> pd.DataFrame:
    """Predictions right with probability ``accuracy``, wrong at random otherwise."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for f in range(folds):
        labels = np.random.default_rng(f).integers(0, 4, n)  # the fold's test set: the same for every model
        for s in range(seeds):
            right = rng.random(n) < accuracy
            pred = np.where(right, labels, (labels + rng.integers(1, 4, n)) % 4)
            rows += [dict(protocol=protocol, fold=f"f{f}", seed=s, utt_id=f"f{f}_u{i:03d}", label=CLASSES[t],
                          pred=CLASSES[q]) for i, (t, q) in enumerate(zip(labels, pred))]
    return pd.DataFrame(rows)


def test_a_true_difference_is_reproduced_with_a_small_p():
    r = evaluate_claim(CLAIM, {A: _preds(0.8, 1), B: _preds(0.6, 2)}, CLASSES, n_boot=300)
    assert r.difference == pytest.approx(0.2, abs=0.03)
    assert r.ci_low > 0.1 and verdict(r) == "reproduced"
    assert r.n_units == 10 and r.p_value == pytest.approx(2 / 1024)  # exact: every sign pattern of 10 units


def test_the_reverse_is_refuted():
    r = evaluate_claim(CLAIM, {A: _preds(0.55, 1), B: _preds(0.75, 2)}, CLASSES, n_boot=300)
    assert r.ci_high < 0 and verdict(r) == "refuted"


def test_no_difference_is_inconclusive_and_says_what_it_could_detect():
    same = _preds(0.7, 1)
    r = evaluate_claim(CLAIM, {A: same, B: same.copy()}, CLASSES, n_boot=200)
    assert r.difference == 0 and verdict(r) == "inconclusive" and r.p_value == 1.0
    r = evaluate_claim(CLAIM, {A: _preds(0.7, 1), B: _preds(0.7, 2)}, CLASSES, n_boot=300)
    assert r.ci_low < 0 < r.ci_high and verdict(r) == "inconclusive"
    # 10 units of 200 utterances: differences of a few points are detectable, not 1 point
    assert 0.01 < r.min_detectable < 0.06


def test_the_bootstrap_resamples_paired_units_together():
    """Two conditions with identical predictions on the same utterances: every replicate's
    difference is zero, so the interval collapses; unpaired resampling would widen it."""
    same = _preds(0.7, 1)
    r = evaluate_claim(CLAIM, {A: same, B: same.copy()}, CLASSES, n_boot=100)
    assert (r.ci_low, r.ci_high, r.se) == (0.0, 0.0, 0.0)


def test_a_leakage_claim_sums_four_conditions_over_different_protocols():
    text_r, text_s = Condition("t", protocol="r"), Condition("t", protocol="s")
    audio_r, audio_s = Condition("a", protocol="r"), Condition("a", protocol="s")
    claim = Claim("test.leak", "test", "Fig. 0", "r flatters text", ((1, text_r), (-1, text_s), (-1, audio_r), (1, audio_s)))
    preds = {text_r: _preds(0.9, 1, protocol="r"), text_s: _preds(0.6, 2, protocol="s"),
             audio_r: _preds(0.62, 3, protocol="r"), audio_s: _preds(0.6, 4, protocol="s")}
    r = evaluate_claim(claim, preds, CLASSES, n_boot=200)
    assert r.difference == pytest.approx(0.28, abs=0.04) and verdict(r) == "reproduced"
    assert np.isnan(r.p_value)  # no (fold, seed) pairing across four conditions


def test_conditions_tested_on_other_utterances_are_refused():
    b = _preds(0.6, 2)
    b.loc[b.index[:5], "utt_id"] = "other"
    with pytest.raises(ClaimError, match="model_b was tested on other utterances"):
        evaluate_claim(CLAIM, {A: _preds(0.8, 1), B: b}, CLASSES, n_boot=10)


def test_unknown_claims_suggest_close_ids():
    with pytest.raises(ClaimError, match=r"unknown claim 'xu2019.alignment_beats_concatt'; did you mean"):
        get_claim("xu2019.alignment_beats_concatt")


def test_every_claim_names_declared_variants_of_registered_models():
    from workbench.models import get_card

    assert len({c.id for c in CLAIMS}) == len(CLAIMS)
    for c in CLAIMS:
        for _, cond in c.terms:
            card = get_card(cond.model)
            assert not cond.variant or cond.variant in card.variants, (c.id, cond)
            assert cond.text_source in ("oracle", "asr")
        assert c.metric in ("ua", "wa", "av_auc")


def test_av_auc_from_ranks_equals_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    from workbench.evaluation.verdicts import _auc

    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.integers(0, 2, 60).astype(bool)
        s = np.round(rng.random(60), 1)  # many ties
        assert _auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_a_trend_claim_is_the_least_squares_slope_and_scores_the_whole_curve():
    from workbench.evaluation.claims import _slope_weights

    hops = (1, 3, 5, 7)
    conds = {h: Condition("amh", f"hops_{h}") for h in (*hops, 9)}
    claim = Claim("test.trend", "test", "Table 0", "rises", tuple((w, conds[h]) for h, w in _slope_weights(hops, extra=(9,))))
    acc = {1: 0.5, 3: 0.6, 5: 0.7, 7: 0.8, 9: 0.3}  # 0.05 per hop up to 7; 9 is off the line and weighted 0
    r = evaluate_claim(claim, {conds[h]: _preds(a, h) for h, a in acc.items()}, CLASSES, n_boot=200)
    scores = [r.scores[conds[h].label()] for h in hops]
    assert r.difference == pytest.approx(np.polyfit(hops, scores, 1)[0], abs=1e-9)  # numpy's fit, same numbers
    assert r.difference == pytest.approx(0.05, abs=0.01) and verdict(r) == "reproduced"
    lo, hi = r.score_ci[conds[9].label()]
    assert lo < r.scores[conds[9].label()] < hi and hi < 0.4  # the curve's last point, with its interval
    assert r.p_value == pytest.approx(2 / 1024)  # all five conditions share the 10 units: paired


def test_rankings_that_never_change_refute_a_rank_change_claim():
    a, b, c = Condition("a"), Condition("b"), Condition("c")
    claim = Claim("test.rank", "test", "sec. 0", "rankings change", ((1, a), (1, b), (1, c)), statistic="rank_change")
    r = evaluate_claim(claim, {a: _preds(0.9, 1, seeds=3), b: _preds(0.6, 2, seeds=3), c: _preds(0.3, 3, seeds=3)},
                       CLASSES, n_boot=200)
    assert (r.difference, r.ci_low, r.ci_high) == (0.0, 0.0, 0.0) and verdict(r) == "refuted"
    assert r.n_units == 3  # seeds


def test_a_ranking_that_flips_between_seeds_reproduces_a_rank_change_claim():
    a, b = Condition("a"), Condition("b")
    claim = Claim("test.rank", "test", "sec. 0", "rankings change", ((1, a), (1, b)), statistic="rank_change")
    # a is far better in seed 0, b in seed 1: the two seeds order the one pair differently
    pa = pd.concat([_preds(0.9, 1, seeds=1), _preds(0.4, 2, seeds=1).assign(seed=1)])
    pb = pd.concat([_preds(0.4, 3, seeds=1), _preds(0.9, 4, seeds=1).assign(seed=1)])
    r = evaluate_claim(claim, {a: pa, b: pb}, CLASSES, n_boot=200)
    assert r.difference == 1.0 and r.ci_low > 0 and verdict(r) == "reproduced"


def test_a_rank_change_claim_with_one_seed_is_refused():
    a, b = Condition("a"), Condition("b")
    claim = Claim("test.rank", "test", "sec. 0", "rankings change", ((1, a), (1, b)), statistic="rank_change")
    with pytest.raises(ClaimError, match="2 or more seeds"):
        evaluate_claim(claim, {a: _preds(0.9, 1, seeds=1), b: _preds(0.4, 2, seeds=1)}, CLASSES, n_boot=10)
