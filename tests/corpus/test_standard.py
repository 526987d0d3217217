"""The shipped standard 4-class IEMOCAP list and the check of a user's copy against it.

The copy checked is the real-format fixture (tests/fixtures/iemocap) with planted differences;
the standard it is checked against is written out here by hand from the fixture files (wav
frames / 16000 = duration), so the expected report does not come from the code under test.
"""

from __future__ import annotations

import csv
import dataclasses
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from workbench.cli import EXIT_DIFFERENCES, main
from workbench.corpus.iemocap import prepare_iemocap
from workbench.corpus.labels import get_scheme
from workbench.corpus.manifest import Manifest, Utterance
from workbench.corpus.standard import STANDARD_COLUMNS, StandardListError, check_standard, load_standard

FIXTURE = Path(__file__).parents[1] / "fixtures" / "iemocap"
SHIPPED = Path(__file__).parents[2] / "workbench" / "corpus" / "reference" / "iemocap4_standard.csv"

# The fixture's standard: its 4-class utterances as the real list would hold them, plus one
# whose wav is 0 bytes in the fixture and one of a dialog the fixture does not have.
FIXTURE_STANDARD = pd.DataFrame(
    [
        ("Ses01F_impro01_F000", "neu", "neu", 1, "Ses01F", 3360 / 16000),
        ("Ses01F_impro01_M002", "sad", "sad", 1, "Ses01M", 2720 / 16000),
        ("Ses01M_script01_1b_M000", "neu", "neu", 1, "Ses01M", 3040 / 16000),
        ("Ses01M_script01_1b_M001", "hap", "exc", 1, "Ses01M", 1.5),  # empty wav in the fixture
        ("Ses01M_script01_1b_M002", "neu", "neu", 1, "Ses01M", 2080 / 16000),
        ("Ses03F_impro05a_M004", "hap", "hap", 3, "Ses03M", 3680 / 16000),
        ("Ses03F_impro06_F000", "sad", "sad", 3, "Ses03F", 2880 / 16000),
        ("Ses02F_impro01_F000", "neu", "neu", 2, "Ses02F", 2.0),  # no Session2 in the fixture
    ],
    columns=list(STANDARD_COLUMNS),
)
FIXTURE_UTTERANCES = 9  # what prepare_iemocap keeps of the fixture, every label


def _planted_copy(tmp_path: Path) -> Manifest:
    """The fixture with a changed label, a code turned 4-class, a longer wav, then a session and
    a speaker changed in the manifest (as a manifest built by another tool would have them)."""
    release = tmp_path / "IEMOCAP_full_release"
    shutil.copytree(FIXTURE / "IEMOCAP_full_release", release)
    emo = release / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    text = emo.read_text(encoding="utf-8")
    for utt, old, new in [("Ses01F_impro01_F000", "neu", "ang"), ("Ses01F_impro01_M000", "fru", "neu")]:
        text, n = re.subn(rf"(\t{utt}\t){old}\t", rf"\g<1>{new}\t", text)
        assert n == 1, utt
    emo.write_text(text, encoding="utf-8")
    wav = release / "Session3" / "sentences" / "wav" / "Ses03F_impro05a" / "Ses03F_impro05a_M004.wav"
    sf.write(wav, np.zeros(8000, dtype=np.int16), 16000, subtype="PCM_16")  # 0.5 s instead of 0.23 s
    m = prepare_iemocap(tmp_path)
    changed = {"Ses03F_impro06_F000": {"session": "Ses04"}, "Ses01F_impro01_M002": {"speaker": "Ses01F"}}
    return Manifest([dataclasses.replace(u, **changed.get(u.id, {})) for u in m], report=m.report)


def test_planted_differences_are_reported_exactly(tmp_path):
    r = check_standard(_planted_copy(tmp_path), FIXTURE_STANDARD, total_utterances=FIXTURE_UTTERANCES)
    assert r.missing["id"].tolist() == ["Ses01M_script01_1b_M001", "Ses02F_impro01_F000"]
    assert "wav file is empty" in r.missing["reason"][0] and "Ses01M_script01_1b_M001.wav" in r.missing["reason"][0]
    assert r.missing["reason"][1] == "not in the copy"
    assert r.extra[["id", "code", "label"]].values.tolist() == [["Ses01F_impro01_M000", "neu", "neu"]]
    assert r.labels[["id", "standard_label", "found_label"]].values.tolist() == [["Ses01F_impro01_F000", "neu", "ang"]]
    assert r.sessions.values.tolist() == [["Ses03F_impro06_F000", 3, 4]]
    assert r.speakers.values.tolist() == [["Ses01F_impro01_M002", "Ses01M", "Ses01F"]]
    assert r.durations["id"].tolist() == ["Ses03F_impro05a_M004"]
    assert r.durations["found_s"][0] == pytest.approx(0.5) and r.durations["standard_s"][0] == pytest.approx(0.23)
    assert r.differences == {"missing": 2, "extra": 1, "labels": 1, "sessions": 1, "speakers": 1, "durations": 1}
    assert not r.ok
    counts = r.counts.set_index("what")
    assert counts.loc["utterances, every label", "ok"] is True
    assert (counts.loc["utterances, 4 classes", "standard"], counts.loc["utterances, 4 classes", "found"]) == (8, 7)
    assert (counts.loc["dialogs", "standard"], counts.loc["dialogs", "found"]) == (5, 4)
    assert "dialog prefix" in r.summary()  # the planted speaker is the prefix rule's
    long = r.to_frame()
    assert Counter(long["kind"]) == {"missing": 2, "extra": 1, "label": 1, "session": 1, "speaker": 1, "duration": 1}


def test_the_untouched_fixture_matches_its_standard():
    m = prepare_iemocap(FIXTURE)
    present = FIXTURE_STANDARD[~FIXTURE_STANDARD["id"].isin(["Ses01M_script01_1b_M001", "Ses02F_impro01_F000"])]
    r = m.check_standard(standard=present, total_utterances=FIXTURE_UTTERANCES)
    assert r.ok, r.report()
    assert r.counts["ok"].tolist() == [True] * len(r.counts) and not r.notes
    assert r.summary() == "the copy matches the standard 4-class IEMOCAP list"
    # the same copy after a label scheme: the 4-class checks still hold, the total is not checked
    reduced = get_scheme("iemocap4").apply(m)
    r = check_standard(reduced, present, total_utterances=FIXTURE_UTTERANCES)
    assert r.ok and r.counts.set_index("what").loc["utterances, every label", "ok"] is None
    assert "not checked" in r.notes[0]


def test_tolerance_and_bad_standard():
    m = prepare_iemocap(FIXTURE)
    std = FIXTURE_STANDARD.iloc[[0]].assign(duration_s=0.21 + 0.02)
    assert len(check_standard(m, std, total_utterances=None).durations) == 1
    assert check_standard(m, std, total_utterances=None, duration_tolerance=0.03).durations.empty
    with pytest.raises(StandardListError, match=r"lacks column\(s\) \['speaker'\]"):
        check_standard(m, FIXTURE_STANDARD.drop(columns="speaker"))


# ----------------------------------------------------------------------------- the shipped list
def _read_shipped() -> list[dict[str, str]]:
    with open(SHIPPED, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_shipped_list_counts_by_an_independent_reading():
    rows = _read_shipped()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == 5531
    assert Counter(r["label"] for r in rows) == {"neu": 1708, "hap": 1636, "ang": 1103, "sad": 1084}
    assert Counter(r["code"] for r in rows) == {"neu": 1708, "exc": 1041, "hap": 595, "ang": 1103, "sad": 1084}
    assert all(r["label"] == ("hap" if r["code"] == "exc" else r["code"]) for r in rows)
    assert Counter(r["session"] for r in rows) == {"1": 1085, "2": 1023, "3": 1151, "4": 1031, "5": 1241}
    id_re = re.compile(r"Ses0([1-5])[FM]_(?:impro0[1-8][ab]?|script0[1-3]_[1-3]b?)_([FM])\d{3}")
    for r in rows:
        m = id_re.fullmatch(r["id"])
        assert m and r["session"] == m.group(1) and r["speaker"] == f"Ses0{m.group(1)}{m.group(2)}", r
    assert len({r["id"].rsplit("_", 1)[0] for r in rows}) == 151
    lengths = sorted(float(r["duration_s"]) for r in rows)
    assert 0.5 < lengths[0] and lengths[-1] == pytest.approx(34.1388) and lengths[2765] == pytest.approx(3.5765)
    # the package's reader gives the same table
    std = load_standard()
    assert std["id"].tolist() == ids and std["session"].tolist() == [int(r["session"]) for r in rows]
    # its code -> label merge is the workbench's iemocap4 scheme
    assert dict(zip(std["code"], std["label"])) == get_scheme("iemocap4").mapping


def test_speaker_rules_of_public_toolkits_on_the_shipped_list():
    """The numbers docs/corpora.md quotes: the dialog-prefix rule (s3prl, EmoBox) and
    SpeechBrain's fixed-position rule against the speaker of the standard list."""
    rows = _read_shipped()
    prefix_wrong = [r["id"] for r in rows if r["id"][:6] != r["speaker"]]
    assert len(prefix_wrong) == 2750

    def speechbrain(utt: str) -> str:  # recipes/IEMOCAP/emotion_recognition/iemocap_prepare.py
        letter = utt[18] if utt[7] == "s" else utt[15]
        return utt[:5] + ("F" if letter == "F" else "M")  # any other character counts as M

    wrong = [r["id"] for r in rows if speechbrain(r["id"]) != r["speaker"]]
    assert len(wrong) == 65
    assert {i.rsplit("_", 1)[0] for i in wrong} == {
        "Ses03M_impro05a", "Ses03M_impro05b", "Ses03M_impro08a", "Ses03M_impro08b", "Ses05M_script01_1b"}


def test_a_copy_with_prefix_speakers_is_flagged_against_the_shipped_list():
    std = load_standard()
    utts = [Utterance(id=r.id, corpus="iemocap", session=f"Ses0{r.session}", dialog=r.id.rsplit("_", 1)[0],
                      speaker=r.id[:6], gender=None, kind="improvised", script=None, audio_path="x.wav", start=0.0,
                      duration=r.duration_s, text="", label=r.code) for r in std.itertuples()]
    r = Manifest(utts).check_standard()
    assert r.differences == {"missing": 0, "extra": 0, "labels": 0, "sessions": 0, "speakers": 2750,
                             "durations": 0}
    assert "2750 of the 2750 speaker difference(s) equal the dialog prefix" in r.summary()
    assert r.counts.set_index("what").loc["utterances, every label", "found"] == 5531  # not 10,039: flagged


# ----------------------------------------------------------------------------- the command
def test_cli_corpus_check(tmp_path, capsys):
    standard = tmp_path / "standard.csv"
    FIXTURE_STANDARD.to_csv(standard, index=False)
    out = tmp_path / "diff.csv"
    code = main(["corpus", "check", "--root", str(FIXTURE), "--standard", str(standard), "--csv", str(out)])
    printed = capsys.readouterr().out
    assert code == EXIT_DIFFERENCES == 3
    assert "missing (2)" in printed and "Ses02F_impro01_F000" in printed and "wav file is empty" in printed
    assert pd.read_csv(out)["id"].tolist() == ["Ses01M_script01_1b_M001", "Ses02F_impro01_F000"]
    FIXTURE_STANDARD.iloc[[0, 1, 2, 4, 5, 6]].to_csv(standard, index=False)
    assert main(["corpus", "check", "--root", str(FIXTURE), "--standard", str(standard)]) == 0
    assert "the copy matches" in capsys.readouterr().out
    assert main(["corpus", "check"]) == 1
    assert "either --root" in capsys.readouterr().err
