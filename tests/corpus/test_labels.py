"""Label schemes applied to the IEMOCAP fixture (labels read with check_audio=False)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from workbench.corpus.iemocap import prepare_iemocap
from workbench.corpus.labels import (
    CODE_TO_IEMOCAP_WORD,
    IEMOCAP_CODES,
    IEMOCAP_WORD_TO_CODE,
    get_scheme,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "iemocap"

# The 14 summary labels of the fixture's well-formed blocks that have a transcript, in
# manifest order (read off the EmoEvaluation files by hand).
FIXTURE_LABELS = ["neu", "fru", "xxx", "ang", "sad",  # Ses01F_impro01
                  "neu", "ang", "exc", "neu",  # Ses01M_script01_1b
                  "hap", "sur", "neu",  # Ses03F_impro05a
                  "sad", "neu"]  # Ses03F_impro06


@pytest.fixture(scope="module")
def manifest():
    return prepare_iemocap(FIXTURE, check_audio=False)


def test_fixture_labels(manifest):
    assert [u.label for u in manifest] == FIXTURE_LABELS


def test_iemocap4_merges_exc_and_drops_fru_xxx(manifest):
    s = get_scheme("iemocap4")
    out = s.apply(manifest)
    kept = [c for c in FIXTURE_LABELS if c in ("neu", "hap", "exc", "ang", "sad")]
    assert len(out) == len(kept) == 11
    assert Counter(u.label for u in out) == {"neu": 5, "hap": 2, "ang": 2, "sad": 2}
    assert all(u.label in s.classes for u in out)
    exc = out["Ses01M_script01_1b_M001"]
    assert (exc.label, exc.extra["label_code"]) == ("hap", "exc")
    assert out["Ses03F_impro05a_M004"].extra["label_code"] == "hap"
    for dropped in ("Ses01F_impro01_M000", "Ses01F_impro01_M001", "Ses03F_impro05a_F003"):
        assert dropped not in out  # fru, xxx, sur
    # apply() copies: the input manifest keeps its codes and has no label_code
    assert manifest["Ses01M_script01_1b_M001"].label == "exc"
    assert "label_code" not in manifest["Ses01M_script01_1b_M001"].extra
    # other fields survive the relabelling
    assert exc.extra["times"] == manifest["Ses01M_script01_1b_M001"].extra["times"]


def test_iemocap4_noexc_drops_exc(manifest):
    out = get_scheme("iemocap4_noexc").apply(manifest)
    assert "Ses01M_script01_1b_M001" not in out and len(out) == 10


def test_iemocap7_class_order(manifest):
    s = get_scheme("iemocap7")
    assert s.classes == ("ang", "exc", "hap", "sad", "fru", "sur", "neu")
    assert [s.index(c) for c in ("ang", "neu")] == [0, 6]
    out = s.apply(manifest)
    assert len(out) == 13  # only xxx dropped
    assert {u.extra["label_code"] for u in out} == set(FIXTURE_LABELS) - {"xxx"}
    assert all(u.label == u.extra["label_code"] for u in out)


def test_unknown_scheme():
    with pytest.raises(ValueError, match="unknown label scheme 'iemocap5'"):
        get_scheme("iemocap5")


def test_word_tables_agree():
    assert set(CODE_TO_IEMOCAP_WORD) == set(IEMOCAP_CODES) - {"xxx"}
    for code, word in CODE_TO_IEMOCAP_WORD.items():
        assert IEMOCAP_WORD_TO_CODE[word.lower()] == code
