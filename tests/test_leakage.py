"""The leakage audit against hand-computed answers and an independent brute-force count."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from rapidfuzz import fuzz

from workbench.corpus.manifest import Manifest
from workbench.leakage import (
    leakage_report,
    near_duplicate_pairs,
    normalize_text,
    speaker_rule_check,
    transcript_repeats,
)
from workbench.protocols import Fold, make_folds
from workbench.testing import make_manifest, make_utterance

S1 = ["Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses01F_script01_1_F000", "Ses01F_script01_1_M000"]
S2 = [
    "Ses02M_impro01_F000",
    "Ses02M_impro01_M000",
    "Ses02M_script01_1_F000",
    "Ses02M_script01_1_M000",
    "Ses02M_script01_1_M001",
]


@pytest.fixture
def hand() -> Manifest:
    """Nine utterances whose overlaps are worked out by hand in the tests below."""
    texts = {
        S1[0]: ("Excuse me.", "neu"),
        S1[1]: ("Um, what is it?", "ang"),
        S1[2]: ("I love you.", "hap"),
        S1[3]: ("[LAUGHTER]", "neu"),  # empty after normalisation: never a match
        S2[0]: ("EXCUSE ME!", "neu"),  # exact after normalisation, same label
        S2[1]: ("What is it", "sad"),  # exact, different label
        S2[2]: ("I love you", "hap"),  # exact, same label
        S2[3]: ("Hmm.", "neu"),  # empty
        S2[4]: ("I love you so", "ang"),  # near "i love you": 2*10/23 = 0.870
    }
    return Manifest(make_utterance(id=i, text=t, label=lab) for i, (t, lab) in texts.items())


def hand_fold(train, test, validation=()) -> Fold:
    return Fold("hand", train, validation, test, "hand")


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Um, I can't BELIEVE it! [LAUGHTER]", "i cant believe it"),
        ("Uh... hmm -- okay.", "okay"),
        ("It\u2019s <noise> ++BREATHING++ fine", "its fine"),
        ("[GARBAGE]", ""),
        (None, ""),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_report_on_hand_built_manifest(hand):
    r = leakage_report(hand, [hand_fold(S1, S2)], threshold=0.85).iloc[0]
    assert (r.n_train, r.n_test) == (4, 5)
    assert (r.speaker_shared, r.session_shared, r.dialog_shared, r.script_shared) == (0, 0, 0, 1)
    assert (r.speaker_test_share, r.session_test_share, r.dialog_test_share) == (0, 0, 0)
    assert r.script_test_share == pytest.approx(3 / 5)
    assert r.text_exact_share == pytest.approx(3 / 5)
    assert r.text_near_share == pytest.approx(4 / 5)  # "i love you so" joins at 0.85
    assert r.text_same_label_share == pytest.approx(2 / 5)
    # train (neu .5, ang .25, hap .25) vs test (neu .4, sad .2, hap .2, ang .2)
    assert r.label_tvd == pytest.approx(0.5 * (0.1 + 0.05 + 0.05 + 0.2))
    strict = leakage_report(hand, [hand_fold(S1, S2)], threshold=0.9).iloc[0]
    assert strict.text_near_share == pytest.approx(3 / 5)


def test_speaker_session_and_dialog_overlap(hand):
    fold = hand_fold(S1 + [S2[0]], S2[1:])  # Ses02F's first line moves to train
    r = leakage_report(hand, [fold]).iloc[0]
    assert (r.speaker_shared, r.session_shared, r.dialog_shared) == (1, 1, 1)
    assert r.speaker_test_share == pytest.approx(1 / 4)  # only Ses02M_script01_1_F000
    assert r.session_test_share == 1.0
    assert r.dialog_test_share == pytest.approx(1 / 4)  # only Ses02M_impro01_M000


def test_reference_can_include_validation(hand):
    fold = hand_fold(S1[:1], S2, validation=S1[1:])
    only_train = leakage_report(hand, [fold]).iloc[0]
    with_val = leakage_report(hand, [fold], reference="train+validation").iloc[0]
    assert only_train.text_exact_share == pytest.approx(1 / 5)
    assert with_val.text_exact_share == pytest.approx(3 / 5)
    assert with_val.n_train == 4


def test_report_matches_brute_force_on_a_generated_manifest():
    m = make_manifest(sessions=5, dialogs_per_session=2, turns_per_dialog=6, text_noise=0.4, seed=11)
    folds = make_folds(m, "random_kfold", seed=2) + make_folds(m, "loso_session")
    report = leakage_report(m, folds, threshold=0.8)
    for fold, (_, row) in zip(folds, report.iterrows()):
        train = [m[i] for i in fold.train]
        test = [m[i] for i in fold.test]
        train_text = {normalize_text(u.text) for u in train} - {""}
        train_pairs = {(normalize_text(u.text), u.label) for u in train}
        exact = near = same = 0
        for u in test:
            t = normalize_text(u.text)
            if not t:
                continue
            exact += t in train_text
            same += (t, u.label) in train_pairs
            near += any(fuzz.ratio(t, s) >= 80 for s in train_text)
        assert row.text_exact_share == pytest.approx(exact / len(test))
        assert row.text_near_share == pytest.approx(near / len(test))
        assert row.text_same_label_share == pytest.approx(same / len(test))
        spk = {u.speaker for u in train}
        assert row.speaker_test_share == pytest.approx(np.mean([u.speaker in spk for u in test]))
        scripts = {u.script for u in train if u.script}
        assert row.script_test_share == pytest.approx(np.mean([u.script in scripts for u in test]))


def test_loso_session_leaks_scripts_and_session_script_does_not():
    m = make_manifest(seed=5)
    loso = leakage_report(m, make_folds(m, "loso_session"))
    pepino = leakage_report(m, make_folds(m, "session_script"))
    assert (loso["script_test_share"] > 0.3).all() and (loso["text_same_label_share"] > 0.2).all()
    assert (pepino[["script_test_share", "text_exact_share", "text_same_label_share"]] == 0).all().all()
    assert (pepino["speaker_test_share"] == 0).all()


def test_near_duplicate_pairs_are_symmetric_and_thresholded():
    texts = ["i love you", "i love you so", "go home now", "i love you"]
    pairs = {tuple(p) for p in near_duplicate_pairs(texts, threshold=0.85).tolist()}
    assert pairs == {(0, 1), (1, 0), (0, 3), (3, 0), (1, 3), (3, 1)}
    assert near_duplicate_pairs(texts, threshold=1.0).tolist() == [[0, 3], [3, 0]]
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_pairs(texts, threshold=0)


@pytest.mark.parametrize("threshold", [0.6, 0.8, 0.95])
def test_near_duplicate_pairs_match_all_pairs_brute_force(threshold):
    m = make_manifest(sessions=3, turns_per_dialog=6, text_noise=0.5, seed=4)
    base = sorted({normalize_text(u.text) for u in m} - {""})
    # add prefixes and extensions so lengths vary widely and near pairs straddle length bands
    texts = base + [t[: len(t) // 2] for t in base[:20]] + [t + " right now okay" for t in base[:20]]
    texts += [t + "s" for t in base[20:30]]
    got = {tuple(p) for p in near_duplicate_pairs(texts, threshold, chunk=7).tolist()}
    want = {
        (i, j)
        for i, a in enumerate(texts)
        for j, b in enumerate(texts)
        if i != j and fuzz.ratio(a, b) >= threshold * 100
    }
    assert got == want and len(want) > 0


def test_unknown_ids_and_missing_fields(hand):
    with pytest.raises(ValueError, match=r"fold 'hand'.*1 test id.*Ses09F_impro01_F000"):
        leakage_report(hand, [hand_fold(S1, ["Ses09F_impro01_F000"])])
    df = hand.to_frame().drop(columns=["script"])
    r = leakage_report(df, [hand_fold(S1, S2)]).iloc[0]
    assert np.isnan(r.script_test_share) and r.speaker_test_share == 0
    no_text = leakage_report(df.drop(columns=["text"]), [hand_fold(S1, S2)]).iloc[0]
    assert np.isnan(no_text.text_exact_share) and no_text.label_tvd == pytest.approx(0.2)
    with pytest.raises(ValueError, match="'label'"):
        leakage_report(df.drop(columns=["label"]), [hand_fold(S1, S2)])


def test_transcript_repeats(hand):
    t = transcript_repeats(hand)
    assert t.loc["Ses01", "Ses01"] == 3 and t.loc["Ses02", "Ses02"] == 4
    assert t.loc["Ses01", "Ses02"] == t.loc["Ses02", "Ses01"] == 3


def test_speaker_rule_check_flags_prefix_parsed_speakers():
    m = make_manifest(seed=1)
    good = speaker_rule_check(m)
    differ = sum(u.id[5] != u.id.rsplit("_", 1)[1][0] for u in m)
    assert good.ok and good.n_parsed == len(m) and good.n_rules_differ == differ > 0
    wrong = Manifest(dataclasses.replace(u, speaker=u.id[:6]) for u in m)  # the common bug
    bad = speaker_rule_check(wrong)
    assert not bad.ok
    assert bad.count("prefix_rule") == differ and bad.count("ok") == len(m) - differ
    assert f"prefix rule for {differ}" in str(bad)
    meld = Manifest([make_utterance(id="dia1_utt0", speaker="Joey")])
    assert speaker_rule_check(meld).n_parsed == 0 and "not applicable" in str(speaker_rule_check(meld))


@pytest.mark.slow
def test_default_corpus_leaks_scripts_under_loso_session_only(tmp_path_factory):
    """The issue's acceptance check on the built-in corpus.

    Reads the smoke corpus where ``make`` already generated it (only reading: nothing is written
    into the repository); otherwise synthesises it into a temp folder (about 20 s on 2 idle cores).
    """
    from workbench import paths
    from workbench.corpus import load_corpus

    ready = paths.data_dir() / "synthetic-smoke-seed0" / "IEMOCAP_full_release" / "SYNTHETIC_README.txt"
    data_dir = paths.data_dir() if ready.is_file() else tmp_path_factory.mktemp("synthetic")
    m = load_corpus(corpus="synthetic", corpus_size="smoke", corpus_seed=0, label_scheme="iemocap4", data_dir=data_dir)
    assert speaker_rule_check(m).ok
    loso = leakage_report(m, make_folds(m, "loso_session"))
    pepino = leakage_report(m, make_folds(m, "session_script"))
    assert (loso["script_test_share"] > 0).all() and loso["text_same_label_share"].mean() > 0.2
    assert (pepino[["script_test_share", "text_exact_share", "speaker_test_share"]] == 0).all().all()
