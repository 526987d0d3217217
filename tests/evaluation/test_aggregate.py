"""Aggregation over runs, bootstrap intervals, paired tests and the leakage table, checked
against hand computations and scipy / the metrics module."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workbench.evaluation.aggregate import (
    aggregate,
    bootstrap_ci,
    format_spread,
    model_table,
    paired_bootstrap,
    paired_test,
    per_class_recall,
    pooled_confusion,
)
from workbench.evaluation.leakage_experiment import leakage_long, leakage_table, modality_of
from workbench.training.metrics import classification_metrics, confusion, metrics_from_confusion

CLASSES = ["neu", "hap", "ang", "sad"]


def _results(values: dict[str, list[float]], folds: int = 2, seeds: int = 2, protocol: str = "loso_session") -> pd.DataFrame:
    rows = []
    for model, ua in values.items():
        for i, (f, s) in enumerate((f, s) for s in range(seeds) for f in range(folds)):
            rows.append(dict(model=model, config_hash="abc123", corpus="synthetic", protocol=protocol,
                             label_scheme="iemocap4", text_source="oracle", fold=f"Ses0{f + 1}", seed=s,
                             ua=ua[i], wa=ua[i] + 0.1))  # fmt: skip
    return pd.DataFrame(rows)


def _predictions(model: str, n: int, accuracy: float, seed: int, seeds: int = 1) -> pd.DataFrame:
    """n utterances (labels cycling over the classes) predicted right with prob. ``accuracy``."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(seeds):
        for i in range(n):
            label = CLASSES[i % 4]
            right = rng.random() < accuracy
            pred = label if right else CLASSES[(i + 1 + rng.integers(0, 3)) % 4]
            rows.append(dict(model=model, config_hash="abc123", protocol="loso_session", fold=f"Ses0{i % 5 + 1}",
                             seed=s, utt_id=f"u{i:04d}", label=label, pred=pred))  # fmt: skip
    return pd.DataFrame(rows)


def test_aggregate_matches_hand_computation():
    # 4 runs (2 folds x 2 seeds): UA 0.50 0.60 0.70 0.90
    r = _results({"m": [0.5, 0.6, 0.7, 0.9]})
    a = aggregate(r, metrics=["ua", "wa"])
    assert len(a) == 1
    row = a.iloc[0]
    assert (row.n_runs, row.n_folds, row.n_seeds) == (4, 2, 2)
    assert row.ua_mean == pytest.approx(0.675)
    # sample std: deviations -.175 -.075 .025 .225 -> sum of squares .0875, / 3, sqrt = .1708
    assert row.ua_std == pytest.approx(np.sqrt(0.0875 / 3))
    assert row.ua_median == pytest.approx(0.65)
    # linear quantiles of 4 sorted values: q25 at position .75 -> .575, q75 at 2.25 -> .75
    assert row.ua_q25 == pytest.approx(0.575) and row.ua_q75 == pytest.approx(0.75)
    assert row.ua_iqr == pytest.approx(0.175)
    assert row.wa_mean == pytest.approx(0.775)
    assert format_spread(a, "ua").iloc[0] == "0.675 ± 0.171"
    assert format_spread(a, "ua", kind="iqr").iloc[0] == "0.650 ± 0.175"


def test_aggregate_by_seed_averages_folds_first():
    # seed 0 folds: .5 .6 -> .55 ; seed 1: .7 .9 -> .80
    a = aggregate(_results({"m": [0.5, 0.6, 0.7, 0.9]}), metrics=["ua"], unit="seed").iloc[0]
    assert a.ua_mean == pytest.approx(0.675)
    assert a.ua_std == pytest.approx(np.std([0.55, 0.80], ddof=1))
    assert a.n_runs == 4


def test_aggregate_groups_models_and_protocols_apart():
    r = pd.concat([_results({"a": [0.5] * 4, "b": [0.6] * 4}), _results({"a": [0.4] * 4}, protocol="session_script")])
    a = aggregate(r, metrics=["ua"])
    got = {(m, p): v for m, p, v in zip(a.model, a.protocol, a.ua_mean)}
    assert got == pytest.approx({("a", "loso_session"): 0.5, ("b", "loso_session"): 0.6, ("a", "session_script"): 0.4})
    assert a.ua_std.tolist() == pytest.approx([0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="empty"):
        aggregate(r.iloc[:0])


def test_metrics_from_confusion_agrees_with_classification_metrics():
    p = _predictions("m", 203, 0.6, seed=1)
    conf = confusion(p.label.tolist(), p.pred.tolist(), CLASSES).to_numpy()
    ours = metrics_from_confusion(conf)
    ref = classification_metrics(p.label.tolist(), p.pred.tolist(), CLASSES)
    for k in ("wa", "ua", "macro_f1", "weighted_f1"):
        assert float(ours[k]) == pytest.approx(ref[k])
    # with a class absent from the truth, UA averages the present classes only
    y, q = ["neu", "neu", "hap"], ["neu", "sad", "hap"]
    assert float(metrics_from_confusion(confusion(y, q, CLASSES).to_numpy())["ua"]) == pytest.approx(
        classification_metrics(y, q, CLASSES)["ua"]
    )


def test_bootstrap_interval_contains_estimate_and_shrinks():
    small = _predictions("m", 80, 0.6, seed=2)
    large = _predictions("m", 2000, 0.6, seed=2)
    ci_s = bootstrap_ci(small, CLASSES, "ua", n_boot=400, seed=0)
    ci_l = bootstrap_ci(large, CLASSES, "ua", n_boot=400, seed=0)
    for ci, p in ((ci_s, small), (ci_l, large)):
        assert ci["low"] <= ci["estimate"] <= ci["high"]
        assert ci["estimate"] == pytest.approx(classification_metrics(p.label, p.pred, CLASSES)["ua"])
    # width scales like 1/sqrt(n): 25x the data -> about 1/5 the width
    assert (ci_l["high"] - ci_l["low"]) < 0.4 * (ci_s["high"] - ci_s["low"])
    assert bootstrap_ci(small, CLASSES, "ua", n_boot=400, seed=0) == ci_s  # seeded
    with pytest.raises(ValueError, match="metric must be one of"):
        bootstrap_ci(small, CLASSES, "av_auc")


def test_bootstrap_resamples_utterances_not_rows():
    # the same 100 utterances predicted under 10 identical seeds carry no more information
    one = _predictions("m", 100, 0.6, seed=3)
    ten = pd.concat([one.assign(seed=s) for s in range(10)], ignore_index=True)
    a = bootstrap_ci(one, CLASSES, "wa", n_boot=300, seed=0)
    b = bootstrap_ci(ten, CLASSES, "wa", n_boot=300, seed=0)
    assert b["n_utterances"] == 100
    assert b["high"] - b["low"] == pytest.approx(a["high"] - a["low"])


def test_paired_test_matches_scipy():
    a = [0.61, 0.58, 0.66, 0.70, 0.52, 0.63, 0.59, 0.68]
    b = [0.55, 0.57, 0.60, 0.62, 0.50, 0.64, 0.51, 0.60]
    r = _results({"a": a, "b": b}, folds=4, seeds=2)
    got = paired_test(r, "a", "b", "ua")
    t, p = stats.ttest_rel(a, b)
    w, pw = stats.wilcoxon(a, b)
    assert got["n_pairs"] == 8
    assert got["mean_diff"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert (got["t"], got["p_t"]) == pytest.approx((t, p))
    assert (got["w"], got["p_wilcoxon"]) == pytest.approx((w, pw))
    # by hand: differences .06 .01 .06 .08 .02 -.01 .08 .08
    d = np.subtract(a, b)
    assert got["t"] == pytest.approx(d.mean() / (d.std(ddof=1) / np.sqrt(8)))


def test_paired_test_uses_only_shared_pairs_and_refuses_mixed_protocols():
    r = _results({"a": [0.6, 0.7, 0.8, 0.9], "b": [0.5, 0.6, 0.7, 0.85]})
    r = r[~((r.model == "b") & (r.fold == "Ses02") & (r.seed == 1))]
    assert paired_test(r, "a", "b")["n_pairs"] == 3
    mixed = pd.concat([r, _results({"a": [0.1] * 4}, protocol="random_kfold")])
    with pytest.raises(ValueError, match="several values of 'protocol'"):
        paired_test(mixed, "a", "b")
    with pytest.raises(ValueError, match="has no rows"):
        paired_test(r, "a", "zzz")


def test_paired_bootstrap_and_permutation():
    truth = _predictions("good", 600, 0.75, seed=4)
    bad = _predictions("bad", 600, 0.45, seed=5)
    same = _predictions("same", 600, 0.75, seed=6)
    preds = pd.concat([truth, bad, same], ignore_index=True)
    r = paired_bootstrap(preds, "good", "bad", CLASSES, "ua", n_boot=300, seed=0)
    assert r["diff"] == pytest.approx(
        classification_metrics(truth.label, truth.pred, CLASSES)["ua"] - classification_metrics(bad.label, bad.pred, CLASSES)["ua"]
    )
    assert 0 < r["low"] <= r["diff"] <= r["high"]
    assert r["p_perm"] == pytest.approx(1 / 301)  # no permutation reaches a 0.3 gap
    r2 = paired_bootstrap(preds, "good", "same", CLASSES, "ua", n_boot=300, seed=0)
    assert r2["low"] < 0 < r2["high"] and r2["p_perm"] > 0.05


def test_model_table_reference_and_intervals():
    r = _results({"a": [0.6, 0.7, 0.65, 0.72], "b": [0.5, 0.55, 0.52, 0.6]})
    preds = pd.concat([_predictions("a", 200, 0.7, 7), _predictions("b", 200, 0.5, 8)], ignore_index=True)
    t = model_table(r, preds, CLASSES, "ua", n_boot=200)
    assert list(t.index) == ["a", "b"] and (t.reference == "a").all()
    assert np.isnan(t.loc["a", "p_t"]) and t.loc["b", "diff"] == pytest.approx(np.mean([-0.1, -0.15, -0.13, -0.12]))
    assert t.loc["b", "p_t"] == pytest.approx(paired_test(r, "b", "a")["p_t"])
    assert (t.ci_low < t.ci_high).all() and 0 < t.loc["b", "p_perm"] < 0.05


def test_model_table_on_several_protocols_says_how_to_filter():
    r = pd.concat([_results({"a": [0.6, 0.7]}, folds=2, seeds=1),
                   _results({"a": [0.5, 0.6]}, folds=2, seeds=1, protocol="random_kfold")], ignore_index=True)
    with pytest.raises(ValueError, match=r"one protocol at a time; got \['loso_session', 'random_kfold'\]; filter the "
                                         r"table first, e.g. model_table\(results\[results\['protocol'\] == 'loso_session'\]"):
        model_table(r)
    assert list(model_table(r[r["protocol"] == "random_kfold"]).index) == ["a"]


def test_pooled_confusion_and_recall():
    p = pd.DataFrame(dict(model=["m"] * 5, label=["neu", "neu", "hap", "ang", "ang"], pred=["neu", "hap", "hap", "ang", "neu"]))
    c = pooled_confusion(p, CLASSES)
    assert c.loc["neu"].tolist() == [1, 1, 0, 0] and int(c.values.sum()) == 5
    rec = per_class_recall(p, CLASSES)
    assert rec.loc["m", ["neu", "hap", "ang"]].tolist() == [0.5, 1.0, 0.5]
    assert np.isnan(rec.loc["m", "sad"])


def test_leakage_table_drops():
    rows = []
    for model, vals in {"unimodal_text": (0.9, 0.8, 0.5), "unimodal_audio": (0.6, 0.55, 0.53)}.items():
        for proto, v in zip(("random_kfold", "loso_session", "session_script"), vals):
            for f in range(3):
                rows.append(dict(model=model, protocol=proto, fold=f, seed=0, ua=v + 0.01 * (f - 1)))
    r = pd.DataFrame(rows)
    t = leakage_table(r)
    assert list(t.index) == ["audio", "text"]
    assert t.loc["text", "drop_loso_session"] == pytest.approx(0.3)
    assert t.loc["text", "drop_random_kfold"] == pytest.approx(0.4)
    assert t.loc["audio", "drop_loso_session"] == pytest.approx(0.02)
    long = leakage_long(r)
    assert long[long.model == "unimodal_text"].protocol.tolist() == ["random_kfold", "loso_session", "session_script"]
    assert long["std"].iloc[0] == pytest.approx(0.01)
    assert modality_of("pepino_audio") == "audio"
    with pytest.raises(ValueError, match="cannot tell the modality"):
        leakage_table(r.assign(model="mcsan"))
    assert leakage_table(r.assign(model="mcsan"), modalities={"mcsan": "text"}).shape[0] == 1


def test_name_systems_separates_variants_of_one_model():
    from workbench.evaluation.aggregate import name_systems

    res = pd.DataFrame({"run_id": ["a", "b", "c"], "model": ["m", "m", "n"], "variant": ["small", "large", ""]})
    preds = pd.DataFrame({"run_id": ["a", "b", "c", "a"], "model": ["m", "m", "n", "m"]})
    named, p = name_systems(res, preds)
    assert named["model"].tolist() == ["m[small]", "m[large]", "n"]
    assert p["model"].tolist() == ["m[small]", "m[large]", "n", "m[small]"]
    assert res["model"].tolist() == ["m", "m", "n"]  # the input is not changed
