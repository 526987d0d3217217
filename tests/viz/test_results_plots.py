"""Result figures carry the numbers they are built from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from workbench.evaluation.leakage_experiment import leakage_long
from workbench.training.metrics import confusion
from workbench.viz.results import (
    confusion_heatmap,
    leakage_figure,
    model_interval_figure,
    recall_bars,
)

CLASSES = ["neu", "hap", "ang", "sad"]
Y = ["neu", "neu", "hap", "ang", "sad", "sad", "sad"]
P = ["neu", "hap", "hap", "neu", "sad", "sad", "ang"]


def test_plotly_confusion_counts_and_normalised():
    counts = confusion(Y, P, CLASSES)
    fig = confusion_heatmap(counts)
    (heat,) = fig.data
    assert isinstance(heat, go.Heatmap)
    assert np.array_equal(np.asarray(heat.z), counts.to_numpy())
    assert list(heat.x) == CLASSES and list(heat.y) == CLASSES
    assert heat.text[3] == ["0", "0", "1", "2"] and "counts" in fig.layout.title.text
    norm = confusion_heatmap(confusion(Y, P, CLASSES, normalise=True))
    assert norm.data[0].zmax == 1 and norm.data[0].text[3][3] == "0.67"
    assert "row-normalised" in norm.layout.title.text


def test_recall_bars_one_trace_per_model():
    rec = pd.DataFrame([[0.5, 1.0, 0.0, 0.67], [0.4, 0.6, 0.7, 0.8]], index=["a", "b"], columns=CLASSES)
    fig = recall_bars(rec)
    assert [t.name for t in fig.data] == ["a", "b"] and fig.layout.barmode == "group"
    assert list(fig.data[1].x) == CLASSES and list(fig.data[1].y) == [0.4, 0.6, 0.7, 0.8]


def test_model_interval_figure_uses_ci_or_std():
    t = pd.DataFrame(
        dict(mean=[0.7, 0.6], std=[0.02, 0.03], ci_low=[0.65, 0.52], ci_high=[0.74, 0.66], reference="a",
             p_t=[np.nan, 0.01], p_wilcoxon=[np.nan, 0.03]),
        index=pd.Index(["a", "b"], name="model"),
    )  # fmt: skip
    fig = model_interval_figure(t)
    (sc,) = fig.data
    assert list(sc.y) == ["b", "a"]  # ascending: best at the top
    assert np.allclose(sc.error_x.array, [0.06, 0.04]) and np.allclose(sc.error_x.arrayminus, [0.08, 0.05])
    assert "p_t 0.01" in sc.text[0] and "bootstrap" in fig.layout.title.text
    fig2 = model_interval_figure(t.drop(columns=["ci_low", "ci_high"]))
    assert np.allclose(fig2.data[0].error_x.array, [0.03, 0.02]) and "std" in fig2.layout.title.text


def test_leakage_figure_groups_protocols():
    rows = [
        dict(model=m, protocol=p, fold=f, seed=0, ua=v + 0.01 * f)
        for m, vals in {"unimodal_text": (0.9, 0.8, 0.5), "unimodal_audio": (0.6, 0.55, 0.53)}.items()
        for p, v in zip(("random_kfold", "loso_session", "session_script"), vals)
        for f in range(3)
    ]
    fig = leakage_figure(leakage_long(pd.DataFrame(rows)))
    assert [t.name for t in fig.data] == ["audio", "text"]
    text = fig.data[1]
    assert list(text.x) == ["random (RAND)", "session (SP)", "session + script (SP&SC)"]
    assert np.allclose(text.y, [0.91, 0.81, 0.51]) and np.allclose(text.error_y.array, [0.01] * 3)
    by_model = leakage_figure(leakage_long(pd.DataFrame(rows)), by="model")
    assert [t.name for t in by_model.data] == ["unimodal_audio", "unimodal_text"]


def test_claims_forest_has_one_trace_per_verdict_and_the_paper_values():
    from workbench.viz.results import claims_forest

    ledger = pd.DataFrame({
        "claim": ["a", "b", "c"], "text": ["A", "B", "C"], "verdict": ["reproduced", "inconclusive", "not run"],
        "difference": [0.1, 0.0, float("nan")], "ci_low": [0.05, -0.02, float("nan")],
        "ci_high": [0.2, 0.03, float("nan")], "paper_value": [0.02, float("nan"), 0.3], "reason": ["", "", "no video"]})
    fig = claims_forest(ledger)
    names = [t.name for t in fig.data]
    assert names == ["reproduced", "inconclusive", "not run", "paper"]
    rep = fig.data[0]
    assert list(rep.error_x.array) == pytest.approx([0.1]) and list(rep.error_x.arrayminus) == pytest.approx([0.05])
    assert list(fig.data[3].y) == ["c", "a"]  # reversed: the first claim is drawn on top


def test_condition_curve_draws_each_score_with_its_interval_in_claim_order():
    from workbench.viz.results import condition_curve

    scores = pd.DataFrame({"condition": ["amh[hops_1]", "amh[hops_3]", "amh[hops_9]"], "score": [0.5, 0.6, 0.55],
                           "ci_low": [0.45, 0.58, 0.5], "ci_high": [0.52, 0.7, 0.6]})
    fig = condition_curve(scores, "hops", "ua")
    (trace,) = fig.data
    assert list(trace.x) == ["amh[hops_1]", "amh[hops_3]", "amh[hops_9]"]
    assert list(trace.error_y.array) == pytest.approx([0.02, 0.1, 0.05])
    assert list(trace.error_y.arrayminus) == pytest.approx([0.05, 0.02, 0.05])


def test_confusion_grid_puts_every_system_on_one_scale():
    from workbench.viz.results import confusion_grid

    preds = {"a": (Y, P), "b": (Y[::-1], P), "c[small]": (Y, Y)}
    norm = {k: confusion(y, p, CLASSES, normalise=True) for k, (y, p) in preds.items()}
    counts = {k: confusion(y, p, CLASSES) for k, (y, p) in preds.items()}
    fig = confusion_grid(norm, counts, cols=2)
    assert [t.name for t in fig.data] == ["a", "b", "c[small]"]
    assert [a.text for a in fig.layout.annotations] == ["a", "b", "c[small]"]  # panel titles
    for trace, name in zip(fig.data, norm):
        assert np.allclose(np.asarray(trace.z, float), norm[name].to_numpy(float))
        assert np.array_equal(np.asarray(trace.customdata), counts[name].to_numpy())
        assert trace.coloraxis == "coloraxis" and list(trace.x) == CLASSES
    # 3 panels, 2 a row: 2 rows; the third panel sits in row 2, column 1
    assert fig.data[2].xaxis == "x3" and fig.layout.yaxis3.domain[1] < fig.layout.yaxis.domain[0]
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == 1
    assert fig.data[2].text[0] == ["1.00", "0.00", "0.00", "0.00"]
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.title.text == "true"
    # counts alone: the scale runs to the largest count of any panel
    raw = confusion_grid(counts)
    assert raw.layout.coloraxis.cmax == max(float(c.to_numpy().max()) for c in counts.values())
    assert "counts" in raw.layout.title.text and raw.data[0].customdata is None
    with pytest.raises(ValueError, match="no confusion matrices"):
        confusion_grid({})
