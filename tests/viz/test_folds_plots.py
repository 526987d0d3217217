"""The fold and leakage figures carry the numbers they are built from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from workbench.leakage import leakage_report, share_columns, transcript_repeats
from workbench.protocols import make_folds
from workbench.testing import make_manifest
from workbench.viz.folds import (
    fold_composition,
    fold_composition_figure,
    overlap_heatmap,
    transcript_repeat_figure,
)


@pytest.fixture(scope="module")
def manifest():
    return make_manifest(sessions=3, dialogs_per_session=1, turns_per_dialog=4, seed=0)


def test_fold_composition_figure_stacks_label_counts(manifest):
    folds = make_folds(manifest, "loso_session", validation="other_speaker")
    fig = fold_composition_figure(manifest, folds)
    assert isinstance(fig, go.Figure) and fig.layout.barmode == "stack"
    assert sorted(t.name for t in fig.data) == sorted({u.label for u in manifest})
    assert all(isinstance(t, go.Bar) for t in fig.data)
    # 3 folds x (train, validation, test) bars; heights add up to every part's size
    assert len(fig.data[0].x[0]) == 9
    heights = np.sum([np.asarray(t.y) for t in fig.data], axis=0)
    assert heights.tolist() == [len(getattr(f, p)) for f in folds for p in ("train", "validation", "test")]
    comp = fold_composition(manifest, folds)
    test0 = comp[(comp.fold == "Ses01") & (comp.part == "test")].set_index("label")["utterances"]
    expected = pd.Series([manifest[i].label for i in folds[0].test]).value_counts()
    assert test0.sort_index().to_dict() == expected.sort_index().to_dict()


def test_overlap_heatmap_shows_the_report(manifest):
    report = pd.concat(
        [leakage_report(manifest, make_folds(manifest, p)) for p in ("loso_session", "session_script")]
    )
    fig = overlap_heatmap(report)
    (heat,) = fig.data
    assert isinstance(heat, go.Heatmap)
    assert np.allclose(np.asarray(heat.z, dtype=float), report[share_columns(report)].to_numpy(dtype=float))
    assert list(heat.y)[0] == "loso_session/Ses01" and list(heat.y)[-1] == "session_script/Ses03"
    assert "script" in heat.x and "text_same_label" in heat.x


def test_transcript_repeat_figure(manifest):
    fig = transcript_repeat_figure(manifest)
    (heat,) = fig.data
    assert np.array_equal(np.asarray(heat.z), transcript_repeats(manifest).to_numpy())
    assert list(heat.x) == ["Ses01", "Ses02", "Ses03"]
