"""Agreement of word-frame attention with reference word timing, on hand-built maps whose
answers are worked out by hand in the comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.evaluation.alignment import (
    agreement_table,
    frame_overlap,
    reference_spans,
    span_map,
    uniform_map,
    utterance_scores,
    word_scores,
)


def test_frame_overlap_counts_partial_frames():
    # frames of 40 ms: [0, .04) [.04, .08) [.08, .12); span .02-.10 covers half, all, half
    np.testing.assert_allclose(frame_overlap(3, 0.04, (0.02, 0.10)), [0.5, 1.0, 0.5])
    np.testing.assert_allclose(frame_overlap(3, 0.04, (0.5, 0.6)), [0, 0, 0])
    np.testing.assert_allclose(frame_overlap(3, 0.04, (-1.0, 9.0)), [1, 1, 1])


def test_word_scores_known_answers():
    # 5 frames of 0.1 s (0.5 s). Word 0 true span [0.1, 0.3) = frames 1-2; word 1 [0.25, 0.5).
    w = np.array([
        [0.1, 0.4, 0.3, 0.2, 0.0],  # in span 0.7; +-0.1 s covers frames 0-3 -> 1.0; peak frame 1 inside
        [0.5, 0.0, 0.0, 0.25, 0.25],  # span [.25,.5): half of frame 2 (0) + frames 3, 4 -> 0.5; peak frame 0 out
        [1.0, 1.0, 1.0, 1.0, 1.0],  # no span: not scored
    ])
    s = word_scores(w, [(0.1, 0.3), (0.25, 0.5), None], 0.1, tolerance=0.1, words=["a", "b", "c"])
    assert s["word"].tolist() == ["a", "b"] and s["word_index"].tolist() == [0, 1]
    np.testing.assert_allclose(s["mass_in_span"], [0.7, 0.5])
    np.testing.assert_allclose(s["mass_in_tolerance"], [1.0, 0.5 + 0.0])  # word 1: [.15, .6) adds half of frame 1 (0)
    np.testing.assert_allclose(s["peak_in_span"], [1.0, 0.0])
    np.testing.assert_allclose(s["span_share"], [0.2 / 0.5, 0.25 / 0.5])
    # unnormalised rows give the same shares
    s2 = word_scores(w * 3, [(0.1, 0.3), (0.25, 0.5), None], 0.1)
    np.testing.assert_allclose(s2["mass_in_span"], s["mass_in_span"])


def test_ties_share_peak_credit_and_uniform_scores_chance():
    # 10 frames of 0.05 s; span [0.1, 0.25) holds frame centres 0.125, 0.175, 0.225 -> 3 of 10
    u = uniform_map(1, 10)
    s = word_scores(u, [(0.1, 0.25)], 0.05)
    assert s["mass_in_span"].iloc[0] == pytest.approx(0.3)
    assert s["mass_in_span"].iloc[0] == pytest.approx(s["span_share"].iloc[0])
    assert s["peak_in_span"].iloc[0] == pytest.approx(0.3)


def test_span_map_is_perfect_on_its_own_spans_and_partial_when_shifted():
    spans = [(0.0, 0.2), (0.2, 0.5)]
    hard = span_map(spans, 5, 0.1)
    np.testing.assert_allclose(hard.sum(1), [1, 1])
    s = word_scores(hard, spans, 0.1)
    np.testing.assert_allclose(s["mass_in_span"], [1, 1])
    np.testing.assert_allclose(s["peak_in_span"], [1, 1])
    # the forced span of word 0 is 0.1 s late: [0.1, 0.3) -> half its mass in [0, 0.2)
    late = span_map([(0.1, 0.3), (0.3, 0.5)], 5, 0.1)
    s = word_scores(late, spans, 0.1, tolerance=0.1)
    np.testing.assert_allclose(s["mass_in_span"], [0.5, 1.0])
    np.testing.assert_allclose(s["mass_in_tolerance"], [1.0, 1.0])
    np.testing.assert_allclose(s["peak_in_span"], [0.5, 1.0])  # two tied frames, one inside


def test_reference_spans_skip_words_without_a_true_counterpart():
    timings = [("<s>", 0.0, 0.1), ("EXCUSE", 0.1, 0.4), ("ME(2)", 0.4, 0.6), ("</s>", 0.6, 0.7)]
    assert reference_spans(["excuse", "me"], timings) == [(0.1, 0.4), (0.4, 0.6)]
    assert reference_spans(["excuse", "knee"], timings) == [(0.1, 0.4), None]  # an ASR substitution


def test_utterance_scores_and_tables_by_method_label_and_level():
    # Utterance A: 2 words, 4 frames of 0.1 s; the learned map puts all mass on each true span.
    a_words, a_timings = ["hi", "you"], [("HI", 0.0, 0.2), ("YOU", 0.2, 0.4)]
    a_map = np.array([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    a = utterance_scores({"learned": a_map}, a_words, a_timings, 0.1, forced=[(0.0, 0.2), (0.2, 0.4)])
    assert a["method"].unique().tolist() == ["learned", "uniform", "forced"]
    # Utterance B: 1 word spanning [0, 0.1) of 0.4 s; the learned map looks at the wrong frame.
    b = utterance_scores({"learned": np.array([[0, 0, 0, 1.0]])}, ["no"], [("NO", 0.0, 0.1)], 0.1)
    scores = pd.concat([a.assign(id="A", label="hap"), b.assign(id="B", label="sad")], ignore_index=True)

    t = agreement_table(scores).set_index("method")
    assert t.loc["learned", "n_utts"] == 2 and t.loc["learned", "n_words"] == 3
    assert t.loc["learned", "mass_in_span"] == pytest.approx((1 + 1 + 0) / 3)  # pooled over words
    assert t.loc["uniform", "mass_in_span"] == pytest.approx((0.5 + 0.5 + 0.25) / 3)
    assert t.loc["forced", "n_words"] == 2  # B had no forced spans
    u = agreement_table(scores, level="utterance").set_index("method")
    assert u.loc["learned", "mass_in_span"] == pytest.approx((1 + 0) / 2)  # mean of utterance means
    assert u.loc["uniform", "mass_in_span"] == pytest.approx((0.5 + 0.25) / 2)
    by = agreement_table(scores, by=("method", "label")).set_index(["method", "label"])
    assert by.loc[("learned", "hap"), "mass_in_span"] == pytest.approx(1.0)
    assert by.loc[("learned", "sad"), "mass_in_span"] == pytest.approx(0.0)
    assert by.loc[("learned", "sad"), "span_share"] == pytest.approx(0.25)


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="2 spans for a map with 1 word rows"):
        word_scores(np.ones((1, 3)), [(0, 1), (1, 2)], 0.1)
    with pytest.raises(ValueError, match="3 words for maps with 2 rows"):
        utterance_scores({"learned": np.ones((2, 3))}, ["a", "b", "c"], None, 0.1)
    with pytest.raises(ValueError, match="forced spans"):
        utterance_scores({"learned": np.ones((2, 3))}, ["a", "b"], None, 0.1, forced=[(0, 1)])
    with pytest.raises(ValueError, match="level"):
        agreement_table(pd.DataFrame({"method": [], "id": []}), level="speaker")
