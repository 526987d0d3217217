"""Pepino et al.'s Fig. 2 as the paper computes it: Pepino's own audio and text models in two
sizes, AvAUC on the merged test scores of all folds of a seed, then the median over seeds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from workbench.evaluation.aggregate import aggregate, merged_fold_metrics
from workbench.evaluation.leakage_experiment import (
    FIG2_MODELS,
    FIG2_SIZES,
    PROTOCOLS,
    leakage_long,
    leakage_table,
    select_runs,
)

CLASSES = ["neu", "hap", "ang", "sad"]


def _runs(model: str = "pepino_text", variant: str = "large", protocol: str = "session_script", seeds: int = 3,
          folds: int = 4, n: int = 30, shift: float = 0.0, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Results and predictions of ``folds`` x ``seeds`` runs whose scores are calibrated
    differently per fold (a per-fold offset), so merged and per-fold AUCs differ."""
    rng = np.random.default_rng(seed)
    results, preds = [], []
    for s in range(seeds):
        for f in range(folds):
            run_id = f"{model}-{variant}-{protocol}-f{f}-s{s}"
            labels = rng.integers(0, 4, size=n)
            logits = rng.normal(size=(n, 4)) + (1.0 + shift) * np.eye(4)[labels] + rng.normal(scale=2.0, size=4)
            probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            results.append(dict(run_id=run_id, model=model, variant=variant, config_hash="h", corpus="synthetic",
                                protocol=protocol, label_scheme="iemocap4", text_source="oracle", fold=f"Ses0{f + 1}",
                                seed=s, classes=json.dumps(CLASSES), ua=0.5, av_auc=0.7))
            preds += [dict(run_id=run_id, utt_id=f"u{f}_{i}", label=CLASSES[k], probs=list(p))
                      for i, (k, p) in enumerate(zip(labels, probs))]
    return pd.DataFrame(results), pd.DataFrame(preds)


def test_av_auc_is_computed_on_the_merged_scores_of_all_folds_of_a_seed():
    results, preds = _runs()
    merged = merged_fold_metrics(results, preds)
    assert len(merged) == 3 and merged["n_folds"].tolist() == [4, 4, 4] and merged["n_utterances"].tolist() == [120] * 3
    for s in range(3):
        part = preds[preds["run_id"].str.endswith(f"-s{s}")]
        y = np.array([CLASSES.index(c) for c in part["label"]])
        p = np.stack(part["probs"].to_numpy())
        expected = np.mean([roc_auc_score(y == c, p[:, c]) for c in range(4)])  # sklearn, one-vs-all, concatenated
        row = merged[merged["seed"] == s].iloc[0]
        assert row["av_auc"] == pytest.approx(expected, abs=1e-12)
        recall = np.mean([np.mean(p[y == c].argmax(1) == c) for c in range(4)])
        assert row["ua"] == pytest.approx(recall, abs=1e-12)
        per_fold = [np.mean([roc_auc_score(y[f * 30:(f + 1) * 30] == c, p[f * 30:(f + 1) * 30, c]) for c in range(4)])
                    for f in range(4)]
        assert abs(np.mean(per_fold) - expected) > 1e-3  # merging is not the mean of the fold AUCs
    # median and IQR over seeds, the paper's summary
    agg = aggregate(merged, metrics=["av_auc"], unit="seed")
    assert agg.loc[0, "av_auc_median"] == pytest.approx(merged["av_auc"].median())
    assert int(agg.loc[0, "n_seeds"]) == 3


def test_merged_scores_need_every_run_s_predictions():
    results, preds = _runs(seeds=1)
    with pytest.raises(ValueError, match="1 run\\(s\\) have no stored predictions"):
        merged_fold_metrics(results, preds[preds["run_id"] != results["run_id"].iloc[2]])


def test_fig2_table_has_a_row_per_modality_and_size_with_the_median_over_seeds():
    parts = [_runs(m, v, p, seeds=3, shift=float(i), seed=i)
             for i, (m, v, p) in enumerate((m, v, p) for m in FIG2_MODELS for v in FIG2_SIZES for p in PROTOCOLS)]
    results = pd.concat([r for r, _ in parts], ignore_index=True)
    preds = pd.concat([p for _, p in parts], ignore_index=True)
    merged = merged_fold_metrics(results, preds)
    long = leakage_long(merged, metric="av_auc")
    assert len(long) == 12 and set(long["n_runs"]) == {3}  # one value per seed
    assert long["system"].unique().tolist() == ["audio (large)", "audio (small)", "text (large)", "text (small)"]
    assert long[long["system"] == "text (small)"]["protocol"].tolist() == list(PROTOCOLS)
    one = long[(long["system"] == "text (large)") & (long["protocol"] == "loso_session")].iloc[0]
    vals = merged[(merged["model"] == "pepino_text") & (merged["variant"] == "large")
                  & (merged["protocol"] == "loso_session")]["av_auc"]
    assert one["median"] == pytest.approx(vals.median()) and one["iqr"] == pytest.approx(
        vals.quantile(0.75) - vals.quantile(0.25))
    table = leakage_table(merged, metric="av_auc", by=("modality", "variant"), centre="median")
    assert table.index.tolist() == [("audio", "large"), ("audio", "small"), ("text", "large"), ("text", "small")]
    assert table.loc[("text", "large"), "loso_session"] == pytest.approx(vals.median())
    assert table.loc[("text", "large"), "drop_loso_session"] == pytest.approx(
        vals.median() - table.loc[("text", "large"), "session_script"])
    with pytest.raises(ValueError, match="centre must be"):
        leakage_table(merged, metric="av_auc", centre="mode")  # type: ignore[arg-type]
    # UA stays available, per seed on the same merged scores
    assert leakage_long(merged, metric="ua")["n_runs"].tolist() == [3] * 12
    # the selection keeps only the experiment's runs
    other = results.assign(model="pepino_late", variant="pretrained")
    assert len(select_runs(pd.concat([results, other]))) == len(results)
