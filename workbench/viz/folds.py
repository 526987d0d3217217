"""Plotly figures for fold protocols and their leakage audit (notebook 02).

>>> from workbench.testing import make_manifest
>>> from workbench.protocols import make_folds
>>> m = make_manifest(sessions=3, seed=0)
>>> fig = fold_composition_figure(m, make_folds(m, "loso_session"))
>>> sorted(t.name for t in fig.data)
['ang', 'hap', 'neu', 'sad']
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.graph_objects as go

from workbench.corpus.manifest import Manifest
from workbench.leakage import share_columns, transcript_repeats
from workbench.protocols import Fold

_HEIGHT = 420
_PARTS = ("train", "validation", "test")


def fold_composition(manifest: Manifest | pd.DataFrame, folds: Sequence[Fold]) -> pd.DataFrame:
    """Long table ``fold, part, label, utterances``: label counts of every fold's parts."""
    df = manifest.to_frame() if isinstance(manifest, Manifest) else manifest
    label = df.set_index("id")["label"].astype(str)
    rows = []
    for f in folds:
        for part in _PARTS:
            ids = getattr(f, part)
            if not ids:
                continue
            for lab, n in label.loc[list(ids)].value_counts().sort_index().items():
                rows.append(dict(fold=f.name, part=part, label=lab, utterances=int(n)))
    return pd.DataFrame(rows, columns=["fold", "part", "label", "utterances"])


def fold_composition_figure(manifest: Manifest | pd.DataFrame, folds: Sequence[Fold]) -> go.Figure:
    """Stacked bars of label counts for each fold's train / validation / test parts.

    One bar trace per label; the x axis is two-level (fold, part).
    """
    comp = fold_composition(manifest, folds)
    keys = [(f.name, p) for f in folds for p in _PARTS if getattr(f, p)]
    x = [[k[0] for k in keys], [k[1] for k in keys]]
    table = comp.pivot_table(index=["fold", "part"], columns="label", values="utterances", fill_value=0)
    fig = go.Figure()
    for lab in table.columns:
        y = [int(table[lab].get(k, 0)) for k in keys]
        fig.add_trace(go.Bar(x=x, y=y, name=str(lab)))
    protocol = folds[0].protocol if folds else ""
    fig.update_layout(
        barmode="stack", height=_HEIGHT, title=f"Fold composition: {protocol}", yaxis_title="utterances"
    )
    return fig


def overlap_heatmap(report: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Heatmap of a leakage report: folds (rows) x kind of leakage (columns), values in [0, 1].

    Rows are labelled ``protocol/fold`` so reports of several protocols can be concatenated.
    """
    cols = share_columns(report)
    z = report[cols].to_numpy(dtype=float)
    rows = [f"{p}/{f}" for p, f in zip(report["protocol"], report["fold"])]
    labels = [c.replace("_test_share", "").replace("_share", "") for c in cols]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=rows,
            zmin=0,
            zmax=1,
            colorscale="Reds",
            text=[[f"{v:.2f}" for v in r] for r in z],
            texttemplate="%{text}",
            hovertemplate="%{y}<br>%{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or "Share of test utterances leaking from train",
        height=max(_HEIGHT, 22 * len(rows) + 150),
        yaxis_autorange="reversed",
    )
    return fig


def transcript_repeat_figure(manifest: Manifest | pd.DataFrame) -> go.Figure:
    """Session x session heatmap of distinct normalised transcripts spoken in both sessions."""
    counts = transcript_repeats(manifest)
    fig = go.Figure(
        go.Heatmap(
            z=counts.to_numpy(),
            x=list(counts.columns),
            y=list(counts.index),
            colorscale="Blues",
            texttemplate="%{z}",
            hovertemplate="%{y} & %{x}: %{z} shared transcripts<extra></extra>",
        )
    )
    fig.update_layout(
        title="Transcripts repeated across sessions (diagonal: distinct transcripts per session)",
        height=_HEIGHT,
        yaxis_autorange="reversed",
    )
    return fig
