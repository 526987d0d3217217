"""Training Pepino et al.'s fold-leakage experiment: its runs planned and reused or trained."""

from __future__ import annotations

from workbench.evaluation.aggregate import merged_fold_metrics
from workbench.evaluation.leakage_experiment import PROTOCOLS
from workbench.experiments.leakage import leakage_specs, run_leakage_experiment


def test_specs_are_pepino_s_own_models_in_both_sizes_under_the_three_protocols():
    specs = leakage_specs("paper", seeds=range(10))
    assert {(s.model, s.settings.variant, s.protocol) for s in specs} == {
        (m, v, p) for m in ("pepino_audio", "pepino_text") for v in ("small", "large") for p in PROTOCOLS}
    assert all(s.seeds == tuple(range(10)) for s in specs)
    widths = {(s.model, s.settings.variant): s.settings.model_config["width"] for s in specs}
    assert widths[("pepino_audio", "small")] == 0.5 and widths[("pepino_text", "large")] == 2.0


def test_run_leakage_experiment_trains_and_scores_merged_folds(tmp_path):
    """A tiny real run: pepino_audio small, two folds of two protocols on the smoke corpus."""
    from workbench.training import CorpusOptions

    specs = leakage_specs("smoke", models=("pepino_audio",), variants=("small",),
                          protocols=("loso_session", "session_script"), folds=[0, 1], seeds=(0,))
    results, preds = run_leakage_experiment(CorpusOptions("synthetic", size="smoke"), tmp_path, specs, progress=False)
    assert len(results) == 4 and set(results["variant"]) == {"small"}
    merged = merged_fold_metrics(results, preds)
    assert merged["n_folds"].tolist() == [2, 2]
    by_protocol = results.groupby("protocol")["n_test"].sum()
    assert merged.set_index("protocol")["n_utterances"].to_dict() == by_protocol.to_dict()
    assert merged["av_auc"].between(0, 1).all()
    # a second call reuses the finished runs
    again, _ = run_leakage_experiment(CorpusOptions("synthetic", size="smoke"), tmp_path, specs, progress=False)
    assert sorted(again["created"]) == sorted(results["created"])
