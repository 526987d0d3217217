"""Feature summaries of notebook 03 and the corpus samples it draws, against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.corpus.manifest import Manifest
from workbench.corpus.summary import sample_utterances, spread_utterances
from workbench.features.summaries import (
    embedding_projection,
    label_trajectories,
    project_2d,
    trajectories,
    utterance_means,
)
from workbench.testing import make_manifest, make_utterance


def _manifest(*specs: tuple[str, str]) -> Manifest:
    return Manifest(make_utterance(id=i, label=lab) for i, lab in specs)


def test_trajectories_sample_each_utterance_then_average_per_label():
    m = _manifest(("Ses01F_impro01_F000", "neu"), ("Ses01F_impro01_M000", "neu"), ("Ses01F_impro01_F001", "ang"),
                  ("Ses01F_impro01_M001", "ang"))
    feats = {
        "Ses01F_impro01_F000": np.c_[np.zeros(11), np.arange(11.0)],         # steps 0, 5, 10 -> 0, 5, 10
        "Ses01F_impro01_M000": np.c_[np.zeros(21), 2 * np.arange(21.0)],     # steps 0, 10, 20 -> 0, 20, 40
        "Ses01F_impro01_F001": np.c_[np.zeros(5), [7.0, 1, 2, 3, 9]],        # steps 0, 2, 4 -> 7, 2, 9
        "Ses01F_impro01_M001": np.c_[np.zeros(1), [100.0]],                  # one step: skipped
    }
    t = trajectories(feats, m, column=1, points=3)
    got = {lab: g.sort_values("t")["value"].tolist() for lab, g in t.groupby("label")}
    assert got["neu"] == pytest.approx([0.0, 12.5, 25.0])
    assert got["ang"] == pytest.approx([7.0, 2.0, 9.0])
    assert sorted(t["t"].unique()) == pytest.approx([0.0, 0.5, 1.0])


def test_voiced_only_leaves_unvoiced_steps_out_of_the_mean():
    m = _manifest(("Ses01F_impro01_F000", "hap"), ("Ses01F_impro01_M000", "hap"), ("Ses01F_impro01_F001", "sad"))
    feats = {
        "Ses01F_impro01_F000": np.array([[0.0], [100], [0], [200], [0]]),
        "Ses01F_impro01_M000": np.full((5, 1), 10.0),
        "Ses01F_impro01_F001": np.zeros((5, 1)),  # never voiced: skipped, no row for sad
    }
    t = trajectories(feats, m, column=0, points=5, voiced_only=True)
    assert set(t["label"]) == {"hap"}
    assert t.sort_values("t")["value"].tolist() == pytest.approx([10, 55, 10, 105, 10])
    # without voiced_only the zeros count
    plain = trajectories(feats, m, column=0, points=5)
    assert plain[plain["label"] == "hap"].sort_values("t")["value"].tolist() == pytest.approx([5, 55, 5, 105, 5])
    with pytest.raises(ValueError, match="points"):
        trajectories(feats, m, column=0, points=1)


def test_label_trajectories_draw_only_extractors_present():
    m = _manifest(("Ses01F_impro01_F000", "neu"))
    feats = {"frame34": {"Ses01F_impro01_F000": np.c_[np.zeros(3), [1.0, 2, 3]]}}
    t = label_trajectories(feats, m, points=3)
    assert set(t["feature"]) == {"energy (frame34)"} and t["value"].tolist() == pytest.approx([1, 2, 3])
    assert label_trajectories({}, m).empty


def test_utterance_means_plain_and_per_speaker():
    m = _manifest(("Ses01F_impro01_F000", "neu"), ("Ses01F_impro01_F001", "ang"), ("Ses01F_impro01_M000", "neu"),
                  ("Ses01F_impro01_M001", "sad"))
    rng = np.random.default_rng(0)
    feats = {u.id: rng.normal(loc=5 if u.speaker.endswith("F") else -3, size=(int(rng.integers(3, 9)), 4))
             for u in m}
    feats["Ses01F_impro01_M001"] = np.zeros((0, 4))  # an empty transcript: no steps
    keep, x = utterance_means(feats, m)
    assert [u.id for u in keep] == ["Ses01F_impro01_F000", "Ses01F_impro01_F001", "Ses01F_impro01_M000"]
    assert x == pytest.approx(np.stack([feats[u.id].mean(0) for u in keep]))
    # per speaker: z-scores over all of the speaker's frames, computed here by hand
    keep, z = utterance_means(feats, m, per_speaker=True)
    for u, row in zip(keep, z):
        frames = np.concatenate([feats[v.id] for v in m if v.speaker == u.speaker])
        expected = ((feats[u.id] - frames.mean(0)) / frames.std(0)).mean(0)
        assert row == pytest.approx(expected, abs=1e-4)


def test_project_2d_is_the_principal_components_of_the_standardised_means():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 5)) * [1, 10, 0.1, 3, 2] + [0, 5, 1, 0, -2]
    z = (x - x.mean(0)) / x.std(0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    expected = z @ vt[:2].T
    got = project_2d(x)
    for k in range(2):  # a component's sign is arbitrary
        assert np.abs(got[:, k]) == pytest.approx(np.abs(expected[:, k]), abs=1e-6)


def test_embedding_projection_normalises_acoustic_features_per_speaker_only():
    m = make_manifest(sessions=1, seed=0)
    rng = np.random.default_rng(2)
    arrays = {u.id: rng.normal(size=(4, 3)) + (10 if u.speaker.endswith("F") else 0) for u in m}
    points = embedding_projection({"mfcc120": arrays, "text_static": arrays}, m, names=("mfcc120", "text_static",
                                                                                      "visual"))
    assert list(points.columns) == ["feature", "id", "label", "speaker", "pc1", "pc2"]
    assert points.groupby("feature").size().to_dict() == {"mfcc120": len(m), "text_static": len(m)}
    _, x = utterance_means(arrays, m)
    plain = points[points["feature"] == "text_static"]
    assert np.abs(plain["pc1"].to_numpy()) == pytest.approx(np.abs(project_2d(x)[:, 0]), abs=1e-6)
    # the speaker offset dominates the raw means' first component, and per-speaker z-scores remove it
    female = plain["speaker"].str.endswith("F").to_numpy()
    gap = lambda p: abs(p[female].mean() - p[~female].mean()) / p.std()  # noqa: E731
    acoustic = points[points["feature"] == "mfcc120"]
    assert gap(plain["pc1"].to_numpy()) > 1.5 and gap(acoustic["pc1"].to_numpy()) < 0.5


def test_samples_are_fixed_sorted_and_the_whole_corpus_when_none():
    m = make_manifest(sessions=3, seed=0)
    a, b = sample_utterances(m, 10), sample_utterances(m, 10)
    assert a.ids == b.ids == sorted(a.ids) and len(a) == 10 and set(a.ids) <= set(m.ids)
    assert a.ids == sorted(np.random.default_rng(0).choice(m.ids, size=10, replace=False))
    assert sample_utterances(m, 10, seed=1).ids != a.ids
    assert sample_utterances(m, None) is m and sample_utterances(m, len(m) + 5) is m
    spread = spread_utterances(a, 3)
    assert spread.ids == [a.ids[0], a.ids[3], a.ids[6]]
    assert spread_utterances(a, None) is a and spread_utterances(a, 50).ids == a.ids
    with pytest.raises(ValueError, match="sample size"):
        sample_utterances(m, -1)
