"""Result figures (notebook 05): confusion matrices, per-class recall, model intervals, and
the fold-leakage experiment in the style of Pepino et al. 2020, Fig. 2.

Confusion matrices come as a plotly heatmap (interactive, hover shows counts), as one grid of
small multiples for every system (:func:`confusion_grid`, what notebook 05 shows). Nothing here computes metrics:
inputs are the tables of :mod:`workbench.evaluation`.

>>> import pandas as pd
>>> cm = pd.DataFrame([[3, 1], [0, 2]], index=["ang", "sad"], columns=["ang", "sad"])
>>> fig = confusion_heatmap(cm)
>>> fig.data[0].z.tolist(), list(fig.data[0].x)
([[3, 1], [0, 2]], ['ang', 'sad'])
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.evaluation.leakage_experiment import PROTOCOL_LABELS

_HEIGHT = 420


def _is_normalised(cm: pd.DataFrame) -> bool:
    values = cm.to_numpy(dtype=float)
    return bool(np.issubdtype(cm.to_numpy().dtype, np.floating) and np.all(values <= 1.0 + 1e-9))


def _cell_text(cm: pd.DataFrame) -> list[list[str]]:
    fmt = "{:.2f}" if _is_normalised(cm) else "{:.0f}"
    return [[fmt.format(v) for v in row] for row in cm.to_numpy(dtype=float)]


def confusion_heatmap(cm: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Plotly heatmap of a confusion matrix (rows true, columns predicted), as returned by
    :func:`workbench.training.metrics.confusion`; row-normalised matrices show 2 decimals
    on a 0-1 scale, counts show integers."""
    norm = _is_normalised(cm)
    fig = go.Figure(
        go.Heatmap(
            z=cm.to_numpy(),
            x=[str(c) for c in cm.columns],
            y=[str(i) for i in cm.index],
            colorscale="Blues",
            zmin=0,
            zmax=1 if norm else None,
            text=_cell_text(cm),
            texttemplate="%{text}",
            hovertemplate="true %{y}<br>predicted %{x}: %{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or ("Confusion matrix (row-normalised)" if norm else "Confusion matrix (counts)"),
        xaxis_title="predicted",
        yaxis_title="true",
        yaxis_autorange="reversed",
        height=_HEIGHT,
        width=_HEIGHT + 80,
    )
    return fig


def confusion_grid(matrices: Mapping[str, pd.DataFrame], counts: Mapping[str, pd.DataFrame] | None = None,
                   cols: int = 3, title: str | None = None, panel: int = 250) -> go.Figure:
    """Every system's confusion matrix (rows true, columns predicted) as one grid of small
    multiples on one colour scale, one panel per entry of ``matrices`` (titled with its key,
    in order), ``cols`` panels a row. Row-normalised matrices share the 0-1 scale (cells show
    2 decimals); counts share 0 to the largest count. ``counts`` (same keys) adds each cell's
    count to its hover text. ``panel`` is a panel's size in pixels.
    ``matrices``: e.g. :func:`workbench.evaluation.collect.system_confusions`."""
    names = list(matrices)
    if not names:
        raise ValueError("confusion_grid: no confusion matrices to draw")
    cols = max(1, min(cols, len(names)))
    rows = math.ceil(len(names) / cols)
    norm = all(_is_normalised(cm) for cm in matrices.values())
    top = 1.0 if norm else max(float(cm.to_numpy(dtype=float).max()) for cm in matrices.values())
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.3 / cols,
                        vertical_spacing=0.35 / rows)
    for i, name in enumerate(names):
        cm = matrices[name]
        row, col = divmod(i, cols)
        n = counts.get(name) if counts is not None else None
        hover = "true %{y}<br>predicted %{x}: %{text}" + (" (%{customdata} utterances)" if n is not None else "")
        fig.add_trace(go.Heatmap(
            z=cm.to_numpy(dtype=float), x=[str(c) for c in cm.columns], y=[str(c) for c in cm.index],
            text=_cell_text(cm), texttemplate="%{text}", coloraxis="coloraxis", name=name,
            customdata=None if n is None else n.reindex(index=cm.index, columns=cm.columns).to_numpy(),
            hovertemplate=hover + f"<extra>{name}</extra>"), row=row + 1, col=col + 1)
        fig.update_yaxes(autorange="reversed", title_text="true" if col == 0 else None, row=row + 1, col=col + 1)
        fig.update_xaxes(title_text="predicted" if row == rows - 1 else None, row=row + 1, col=col + 1)
    fig.update_layout(
        title=title or ("Confusion matrices (row-normalised: the diagonal is each class's recall)" if norm
                        else "Confusion matrices (counts)"),
        coloraxis=dict(colorscale="Blues", cmin=0, cmax=top), height=panel * rows + 140, width=panel * cols + 160)
    return fig


def recall_bars(recall: pd.DataFrame, title: str = "Recall per class") -> go.Figure:
    """Grouped bars: one trace per row of ``recall`` (a model), x = classes (the columns),
    as returned by :func:`workbench.evaluation.aggregate.per_class_recall`."""
    fig = go.Figure()
    for name, row in recall.iterrows():
        fig.add_trace(
            go.Bar(
                x=[str(c) for c in recall.columns],
                y=row.to_numpy(dtype=float),
                name=str(name),
                hovertemplate="%{x}: %{y:.3f}<extra>" + str(name) + "</extra>",
            )
        )
    fig.update_layout(barmode="group", title=title, yaxis_title="recall", yaxis_range=[0, 1], height=_HEIGHT)
    return fig


def model_interval_figure(table: pd.DataFrame, metric: str = "ua") -> go.Figure:
    """One point per model (the mean of ``metric`` over runs) with its interval: the bootstrap
    interval (``ci_low``/``ci_high``) when the table has one, else ± std. Hover shows the
    paired tests against the reference model. ``table`` is
    :func:`workbench.evaluation.aggregate.model_table`'s output."""
    t = table.sort_values("mean")
    models = [str(m) for m in t.index]
    mean = t["mean"].to_numpy(dtype=float)
    if {"ci_low", "ci_high"} <= set(t.columns):
        plus, minus, what = t["ci_high"].to_numpy(float) - mean, mean - t["ci_low"].to_numpy(float), "bootstrap CI"
        # the CI is around the pooled estimate, which can lie outside [mean - ..., mean + ...]
        plus, minus = np.clip(plus, 0, None), np.clip(minus, 0, None)
    else:
        plus = minus = np.nan_to_num(t["std"].to_numpy(float))
        what = "± std over runs"
    hover = []
    for m, row in t.iterrows():
        tests = ", ".join(f"{c} {row[c]:.3g}" for c in ("p_t", "p_wilcoxon", "p_perm") if c in row and pd.notna(row[c]))
        hover.append(f"{m}: {row['mean']:.3f}" + (f"<br>vs {row['reference']}: {tests}" if tests else ""))
    fig = go.Figure(
        go.Scatter(
            x=mean,
            y=models,
            mode="markers",
            marker=dict(size=10),
            error_x=dict(type="data", array=plus, arrayminus=minus, visible=True),
            text=hover,
            hovertemplate="%{text}<extra></extra>",
            name=metric,
        )
    )
    fig.update_layout(
        title=f"{metric.upper()} per model ({what})",
        xaxis_title=metric,
        height=max(250, 40 * len(models) + 150),
    )
    return fig


def leakage_figure(long: pd.DataFrame, metric: str = "ua", by: str = "modality") -> go.Figure:
    """Pepino et al. Fig. 2 style: grouped bars of ``metric`` per fold protocol, one trace per
    ``by`` value (``modality`` or ``model``), error bars ± std over runs.

    ``long`` is :func:`workbench.evaluation.leakage_experiment.leakage_long`'s output.
    """
    protocols = list(dict.fromkeys(long["protocol"]))
    x = [PROTOCOL_LABELS.get(p, p) for p in protocols]
    fig = go.Figure()
    for name, part in long.groupby(by, sort=True):
        g = part.groupby("protocol")
        mean = g["mean"].mean().reindex(protocols)
        std = g["std"].mean().reindex(protocols)
        fig.add_trace(
            go.Bar(
                x=x,
                y=mean.to_numpy(float),
                name=str(name),
                error_y=dict(type="data", array=np.nan_to_num(std.to_numpy(float)), visible=True),
                hovertemplate="%{x}: %{y:.3f}<extra>" + str(name) + "</extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        title=f"Effect of the fold criteria on {metric.upper()} (Pepino et al. 2020, Fig. 2)",
        yaxis_title=metric,
        xaxis_title="folds",
        height=_HEIGHT,
    )
    return fig


#: Verdict colours of the reproduction ledger (workbench.experiments.reproduce).
VERDICT_COLOURS = {"reproduced": "#2e7d32", "refuted": "#c62828", "inconclusive": "#b08800", "not run": "#757575"}


def claims_forest(ledger: pd.DataFrame, title: str = "The papers' claims, rerun") -> go.Figure:
    """Forest plot of a reproduction ledger: one row per claim, its difference (above zero: the
    claim holds) with the 95 % interval, coloured by verdict; the paper's own difference, where
    its tables give one, as an open diamond. Claims not run are listed at zero, greyed."""
    rows = ledger.iloc[::-1]  # first claim on top
    fig = go.Figure()
    for v, colour in VERDICT_COLOURS.items():
        sel = rows[rows["verdict"] == v]
        if sel.empty:
            continue
        x = sel["difference"].fillna(0.0)
        fig.add_trace(go.Scatter(
            x=x, y=sel["claim"], mode="markers", name=v, marker=dict(color=colour, size=9),
            error_x=dict(type="data", symmetric=False, array=(sel["ci_high"] - x).fillna(0.0),
                         arrayminus=(x - sel["ci_low"]).fillna(0.0), color=colour),
            hovertext=sel["text"] + "<br>" + sel["reason"].fillna(""), hoverinfo="text+x"))
    paper = rows[rows["paper_value"].notna()]
    fig.add_trace(go.Scatter(x=paper["paper_value"], y=paper["claim"], mode="markers", name="paper",
                             marker=dict(symbol="diamond-open", color="black", size=9)))
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(title=title, xaxis_title="difference (claim holds above 0)",
                      height=max(300, 26 * len(rows) + 120), margin=dict(l=280))
    return fig


def condition_curve(scores: pd.DataFrame, title: str, metric: str = "") -> go.Figure:
    """The conditions of one claim in its order (e.g. AMH's hop counts), each score with its
    95 % interval: the whole curve, not only the claim's summary number.
    ``scores``: :func:`workbench.experiments.reproduce.condition_scores`."""
    fig = go.Figure(go.Scatter(
        x=scores["condition"], y=scores["score"], mode="lines+markers",
        error_y=dict(type="data", symmetric=False, array=scores["ci_high"] - scores["score"],
                     arrayminus=scores["score"] - scores["ci_low"])))
    fig.update_layout(title=title, yaxis_title=metric or "score", height=360)
    return fig
