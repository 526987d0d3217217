"""prepare_iemocap against the hand-written fixture in tests/fixtures/iemocap.

Expected values were read off the fixture files by hand (line numbers included); see
tests/fixtures/make_iemocap_fixture.py for the wavs (frames / 16000 = duration).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from workbench.corpus.iemocap import (
    is_filler,
    parse_utterance_id,
    prepare_iemocap,
    read_emo_evaluation,
    read_transcription,
    read_wdseg,
    speaker_from_dialog_prefix,
    speaker_from_id,
)
from workbench.corpus.manifest import Manifest, PrepareReport

FIXTURE = Path(__file__).parents[1] / "fixtures" / "iemocap"
RELEASE = FIXTURE / "IEMOCAP_full_release"
EMO1 = "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"

KEPT = [
    "Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses01F_impro01_M001", "Ses01F_impro01_M002",
    "Ses01M_script01_1b_M000", "Ses01M_script01_1b_M002",
    "Ses03F_impro05a_M004", "Ses03F_impro05a_F003",
    "Ses03F_impro06_F000",
]
# (path under the release folder, 1-based line or None, item, words in the reason)
EXPECTED_SKIPS = {
    (EMO1, 35, "Ses01F_impro01_F002", "2 V/A/D values"),
    (EMO1, 44, "Ses01F_impro01_M002", "duplicate id (first at line 39)"),
    ("Session1/dialog/transcriptions/Ses01F_impro01.txt", 5, "Ses01F_impro01_F002",
     "transcript without EmoEvaluation label"),
    ("Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F001.wav", None,
     "Ses01F_impro01_F001", "sample rate 8000 Hz"),
    ("Session1/dialog/transcriptions/Ses01M_script01_1b.txt", 5, "Ses01M_script01_1b_M000",
     "duplicate transcript id (first at line 1)"),
    ("Session1/dialog/transcriptions/Ses01M_script01_1b.txt", 6, "Ses01M_script01_1b_M003",
     "transcript without EmoEvaluation label"),
    ("Session1/sentences/wav/Ses01M_script01_1b/Ses01M_script01_1b_F000.wav", None,
     "Ses01M_script01_1b_F000", "wav file missing"),
    ("Session1/sentences/wav/Ses01M_script01_1b/Ses01M_script01_1b_M001.wav", None,
     "Ses01M_script01_1b_M001", "wav file is empty"),
    ("Session1/dialog/EmoEvaluation/Ses01M_script01_1b.txt", 17, "Ses01M_script01_1b_F001",
     "EmoEvaluation label without transcript"),
    ("Session3/sentences/wav/Ses03F_impro05a/Ses03F_impro05a_F004.wav", None,
     "Ses03F_impro05a_F004", "wav file unreadable"),
    ("Session3/dialog/EmoEvaluation/Ses03F_impro06.txt", 6, "this line is not an evaluation",
     "malformed EmoEvaluation line"),
    ("Session3/dialog/transcriptions/Ses03F_impro06.txt", 3, "Ses03F_impro06_FXX0",
     "non-utterance transcript id"),
    ("Session3/dialog/transcriptions/Ses03F_impro06.txt", 4,
     "Ses03F_impro06_F001 [007.0000-008.0000] Okay.", "malformed transcription line"),
    ("Session3/sentences/wav/Ses03F_impro06/Ses03F_impro06_M000.wav", None,
     "Ses03F_impro06_M000", "2 channels, expected mono"),
    ("Session3/dialog/EmoEvaluation/Ses03F_impro06.txt", 13, "Ses03F_impro06_F001",
     "EmoEvaluation label without transcript"),
}
EXPECTED_WARNINGS = {
    ("Session1/sentences/ForcedAlignment/Ses01M_script01_1b/Ses01M_script01_1b_M000.wdseg",
     None, "Ses01M_script01_1b_M000", "no .wdseg"),
    ("Session3/dialog/EmoEvaluation/Ses03F_impro05a.txt", 12, "Ses03F_impro05a_F003",
     "unknown emotion word 'amusement'"),
}


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return prepare_iemocap(FIXTURE)


def _entries(items, release: Path = RELEASE) -> set[tuple]:
    return {(Path(s.path).relative_to(release).as_posix(), s.line, s.item, s.reason) for s in items}


def _assert_words(got, expected) -> None:
    """Same tokens; times equal to within 1 ns (they are computed: frames / 100)."""
    assert [w for w, _, _ in got] == [w for w, _, _ in expected]
    np.testing.assert_allclose([(s, e) for _, s, e in got], [(s, e) for _, s, e in expected],
                               rtol=0, atol=1e-9)


def _matches(expected: set[tuple], got: set[tuple]) -> None:
    """Each expected entry matches exactly one reported entry (reason by substring)."""
    assert len(got) == len(expected), sorted(got)
    for path, line, item, words in expected:
        hits = [g for g in got if g[:3] == (path, line, item) and words in g[3]]
        assert len(hits) == 1, (path, line, item, words, sorted(got))


# --------------------------------------------------------------------------- ids
@pytest.mark.parametrize("utt_id, speaker, prefix", [
    ("Ses01F_impro01_M000", "Ses01M", "Ses01F"),
    ("Ses05M_script01_1b_F012", "Ses05F", "Ses05M"),
    ("Ses03F_impro05a_M004", "Ses03M", "Ses03F"),
    ("Ses02M_script03_2_M030", "Ses02M", "Ses02M"),
])
def test_speaker_rule_uses_last_letter(utt_id, speaker, prefix):
    assert speaker_from_id(utt_id) == speaker
    assert speaker_from_dialog_prefix(utt_id) == prefix


def test_parse_utterance_id_every_field():
    assert parse_utterance_id("Ses05M_script01_1b_F012") == {
        "session": "Ses05", "marker": "M", "dialog": "Ses05M_script01_1b", "kind": "scripted",
        "script": "script01", "speaker": "Ses05F", "gender": "F", "index": 12,
    }
    assert parse_utterance_id("Ses03F_impro05a_M004")["dialog"] == "Ses03F_impro05a"


@pytest.mark.parametrize("bad", ["Ses03F_impro06_FXX0", "Ses06F_impro01_F000", "Ses01F_impro09_F000",
                                 "Ses01F_script04_1_F000", "Ses01F_impro01_F000x", ""])
def test_parse_utterance_id_rejects(bad):
    with pytest.raises(ValueError, match="not an IEMOCAP utterance id"):
        parse_utterance_id(bad)


# --------------------------------------------------------------------------- the fixture
def test_kept_ids_in_time_order(manifest):
    assert manifest.ids == KEPT


def test_every_field_of_one_utterance(manifest):
    u = manifest["Ses01F_impro01_F000"]
    assert (u.corpus, u.session, u.dialog, u.speaker, u.gender, u.kind, u.script) == (
        "iemocap", "Ses01", "Ses01F_impro01", "Ses01F", "F", "improvised", None)
    assert Path(u.audio_path) == (RELEASE / "Session1/sentences/wav/Ses01F_impro01"
                                  / "Ses01F_impro01_F000.wav").absolute()
    assert u.start == 0.0
    assert u.duration == pytest.approx(3360 / 16000)  # from the wav header, not 8.2357 - 6.2901
    assert u.text == "Excuse me."
    assert u.label == "neu"
    assert u.label_votes == {"C-E2": ["neu"], "C-E3": ["neu"], "C-E4": ["neu"], "C-F1": ["neu"]}
    assert u.vad == (2.5, 2.5, 2.5)
    # EXCUSE frames 33..61, ME(2) 62..90; EFrm is inclusive: end = (EFrm + 1) / 100
    _assert_words(u.words, [("excuse", 0.33, 0.62), ("me", 0.62, 0.91)])
    assert u.split is None
    assert u.extra == {
        "marker_actor": "F",
        "times": (6.2901, 8.2357),
        "text_raw": "Excuse me.",
        "vad_votes": {"A-E3": [3.0, 2.0, 2.0], "A-E4": [2.0, 3.0, 3.0], "A-F1": [3.0, 2.0, None]},
        "vote_comments": {"A-E4": "Not sure how to rate this one"},
    }


def test_speaker_differs_from_marker_and_multilabel_votes(manifest):
    u = manifest["Ses01F_impro01_M000"]
    assert (u.speaker, u.gender, u.extra["marker_actor"]) == ("Ses01M", "M", "F")
    assert u.label == "fru"
    assert u.label_votes == {"C-E1": ["fru", "ang"], "C-E2": ["fru"], "C-E4": ["neu"],
                             "C-M1": ["fru"]}
    assert u.extra["vote_comments"] == {"C-E1": "a bit annoyed"}
    assert u.vad == (2.0, 3.5, 3.0)
    # the summary V/A/D is the mean of the external evaluators' ratings
    ext = [v for k, v in u.extra["vad_votes"].items() if k.startswith("A-E")]
    assert tuple(sum(col) / len(col) for col in zip(*ext)) == pytest.approx(u.vad)
    # HAVE(2) -> have; <sil> (frames 56..60) dropped, so 'your' starts at 0.61
    _assert_words(u.words, [("do", 0.10, 0.25), ("you", 0.25, 0.39), ("have", 0.39, 0.56),
                            ("your", 0.61, 0.76), ("forms", 0.76, 1.06)])


def test_tags_fillers_and_scripted(manifest):
    u = manifest["Ses01F_impro01_M001"]
    assert (u.text, u.extra["text_raw"]) == ("Yeah.", "Yeah. [LAUGHTER]")
    assert u.label == "xxx"
    assert u.label_votes["C-E3"] == ["exc"]  # `C-E3:  Excited ;` with odd spacing
    _assert_words(u.words, [("yeah", 0.15, 0.41), ("++laughter++", 0.41, 0.91)])
    assert [is_filler(w) for w, _, _ in u.words] == [False, True]
    s = manifest["Ses01M_script01_1b_M002"]
    assert (s.kind, s.script, s.speaker, s.extra["marker_actor"]) == ("scripted", "script01",
                                                                      "Ses01M", "M")
    assert s.label_votes["C-E2"] == ["neu"]  # "Neutral state"
    _assert_words(s.words[-1:], [("back", 0.59, 1.0)])
    assert manifest["Ses01M_script01_1b_M000"].words is None  # no .wdseg
    assert manifest["Ses03F_impro05a_F003"].label_votes["C-E2"] == ["oth"]  # "Amusement"


def test_wrong_rule_disagrees_on_fixture(manifest):
    differ = [u.id for u in manifest if u.speaker != speaker_from_dialog_prefix(u.id)]
    assert differ == ["Ses01F_impro01_M000", "Ses01F_impro01_M001", "Ses01F_impro01_M002",
                      "Ses03F_impro05a_M004"]


def test_every_bad_input_reported_with_file_and_line(manifest):
    _matches(EXPECTED_SKIPS, _entries(manifest.report.skipped))
    _matches(EXPECTED_WARNINGS, _entries(manifest.report.warnings))
    # nothing from EmoEvaluation/Categorical/ or the ._ AppleDouble file was read
    assert not any("Categorical" in s.path or "._" in s.path
                   for s in manifest.report.skipped + manifest.report.warnings)


def test_strict_raises_on_first_problem():
    with pytest.raises(ValueError, match=r"Ses01F_impro01\.txt:35: Ses01F_impro01_F002"):
        prepare_iemocap(FIXTURE, strict=True)


def test_strict_passes_on_clean_tree(tmp_path):
    src, dst = RELEASE / "Session1", tmp_path / "IEMOCAP_full_release" / "Session1"
    utt = "Ses01F_impro01_F000"
    lines = (src / "dialog/EmoEvaluation/Ses01F_impro01.txt").read_text().split("\n")
    for rel, text in [("dialog/EmoEvaluation/Ses01F_impro01.txt", "\n".join(lines[:11]) + "\n"),
                      ("dialog/transcriptions/Ses01F_impro01.txt",
                       (src / "dialog/transcriptions/Ses01F_impro01.txt").read_text().split("\n")[0])]:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_text(text)
    for rel in (f"sentences/wav/Ses01F_impro01/{utt}.wav",
                f"sentences/ForcedAlignment/Ses01F_impro01/{utt}.wdseg"):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, dst / rel)
    m = prepare_iemocap(tmp_path, strict=True)
    assert m.ids == [utt] and not m.report.skipped and not m.report.warnings


def test_check_audio_false_uses_summary_times(tmp_path):
    m = prepare_iemocap(RELEASE, check_audio=False, corpus_name="synthetic")
    assert len(m) == len(KEPT) + 5  # the 8 kHz, missing, empty, corrupt and stereo wavs
    assert {u.corpus for u in m} == {"synthetic"}
    assert m["Ses01F_impro01_F000"].duration == pytest.approx(8.2357 - 6.2901)
    assert m["Ses01M_script01_1b_F000"].duration == pytest.approx(1.9)
    assert not any("wav" in s.reason for s in m.report.skipped)
    assert any("check_audio=False" in w.reason for w in m.report.warnings)


def test_root_forms_and_sessions():
    assert prepare_iemocap(RELEASE).ids == KEPT  # the release folder itself
    assert prepare_iemocap(FIXTURE, sessions=[3]).ids == KEPT[6:]


def test_missing_paths_raise_naming_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        prepare_iemocap(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        prepare_iemocap(tmp_path)  # exists but holds no IEMOCAP tree
    with pytest.raises(FileNotFoundError, match="Session2"):
        prepare_iemocap(FIXTURE, sessions=[1, 2])
    with pytest.raises(ValueError, match="sessions"):
        prepare_iemocap(FIXTURE, sessions=[6])
    # a session folder without dialog/EmoEvaluation is reported, not raised: see
    # test_session_without_dialogs_reported_others_load


def test_missing_dialog_files_and_stray_files_reported(tmp_path):
    copy = tmp_path / "IEMOCAP_full_release"
    shutil.copytree(RELEASE, copy)
    (copy / "Session3/dialog/transcriptions/Ses03F_impro06.txt").unlink()
    (copy / "Session3/dialog/EmoEvaluation/notes.txt").write_text("not a dialog\n")
    m = prepare_iemocap(tmp_path, sessions=[3])
    assert m.ids == ["Ses03F_impro05a_M004", "Ses03F_impro05a_F003"]
    got = _entries(m.report.skipped, copy)
    emo6 = "Session3/dialog/EmoEvaluation/Ses03F_impro06.txt"
    assert ("Session3/dialog/EmoEvaluation/notes.txt", None, "notes",
            "not a dialog of Session3") in got
    assert ("Session3/dialog/transcriptions/Ses03F_impro06.txt", None, "Ses03F_impro06",
            "transcription file missing for an evaluated dialog") in got
    for line, utt in ((3, "Ses03F_impro06_F000"), (10, "Ses03F_impro06_M000"),
                      (13, "Ses03F_impro06_F001")):
        assert (emo6, line, utt, "EmoEvaluation label without transcript") in got


def test_manifest_round_trip_keeps_words_and_votes(manifest, tmp_path):
    back = Manifest.load(manifest.to_jsonl(tmp_path / "m.jsonl"))
    for a, b in zip(manifest, back):
        assert (a.words, a.vad, a.label_votes, a.extra["vad_votes"]) == (
            b.words, b.vad, b.label_votes, b.extra["vad_votes"])


# --------------------------------------------------------------------------- single files
def test_read_emo_evaluation_odd_lines(tmp_path):
    p = tmp_path / "Ses02M_impro03.txt"
    p.write_text(
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n"
        "C-E1:\tNeutral;\t()\n"  # 2: outside a block
        "\n"
        "[1.0000 - 2.0000]\tSes02M_impro03_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"  # 4
        "C-E1:\tNeutral;\t()\n"
        "C-E1:\tAnger;\t()\n"  # 6: duplicate evaluator
        "A-E1:\tval x; act 2;\t()\n"  # 7: malformed rating
        "C-E2:\t;\t()\n"  # 8: no label
        "\n"
        "[3.0000 - 4.0000]\tSes02M_impro03_F001\tabc\t[2.5000, 2.5000, 2.5000]\n"  # 10
        "[5.0000 - 6.0000]\tSes02M_impro04_F002\tneu\t[2.5000, 2.5000, 2.5000]\n"  # 11
        "[7.0000 - 6.0000]\tSes02M_impro03_F003\tneu\t[2.5000, 2.5000, 2.5000]\n"  # 12
    )
    report = PrepareReport()
    blocks = read_emo_evaluation(p, report)
    assert [(b.id, b.line, b.votes, b.vad_votes) for b in blocks] == [
        ("Ses02M_impro03_F000", 4, {"C-E1": ["neu"]}, {})]
    assert [(s.line, s.reason) for s in report.skipped] == [
        (2, "evaluator line outside a block"),
        (10, "unknown label code 'abc'"),
        (11, "utterance of another dialog than Ses02M_impro03"),
        (12, "summary line ends (6.0000) before it starts (7.0000)"),
    ]
    assert [(s.line, s.reason) for s in report.warnings] == [
        (6, "duplicate evaluator C-E1; first kept"),
        (7, "A-E1: malformed rating 'val x'"),
        (8, "C-E2 gives no label"),
    ]
    with pytest.raises(ValueError, match=r"Ses02M_impro03\.txt:2: "):
        read_emo_evaluation(p, strict=True)


def test_read_transcription_values():
    got = read_transcription(RELEASE / "Session1/dialog/transcriptions/Ses01F_impro01.txt")
    assert got["Ses01F_impro01_M001"] == (3, "Yeah. [LAUGHTER]")
    assert len(got) == 6


def test_read_wdseg_malformed_line(tmp_path):
    p = tmp_path / "x.wdseg"
    p.write_text("\t SFrm  EFrm    SegAScr Word\n\t    0    32    -512345 <s>\n"
                 "\t   33    -344017 EXCUSE\n Total score:    -856362\n")
    report = PrepareReport()
    assert read_wdseg(p, report) is None
    assert [(w.line, w.reason) for w in report.warnings] == [
        (3, "malformed .wdseg line; words set to None")]
    with pytest.raises(ValueError, match=r"x\.wdseg:3"):
        read_wdseg(p, strict=True)


def test_fixture_wavs_are_reproducible(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_iemocap_fixture", FIXTURE.parent / "make_iemocap_fixture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for p in mod.write_fixture(tmp_path):
        committed = RELEASE / p.relative_to(tmp_path)
        assert committed.read_bytes() == p.read_bytes(), committed


# --------------------------------------------------------------------------- hardening
def test_session_without_dialogs_reported_others_load(tmp_path):
    copy = tmp_path / "IEMOCAP_full_release"
    shutil.copytree(RELEASE, copy)
    (copy / "Session2").mkdir()  # empty session folder
    for sub in ("EmoEvaluation", "transcriptions"):  # folders present, no dialog files
        (copy / "Session4" / "dialog" / sub).mkdir(parents=True)
    (copy / "Session4" / "dialog" / "EmoEvaluation" / "Categorical").mkdir()
    shutil.rmtree(copy / "Session3" / "dialog" / "EmoEvaluation")  # labels missing
    m = prepare_iemocap(tmp_path)
    assert m.ids == KEPT[:6]  # Session1 as before
    sessions = {(Path(s.path).name, s.line, s.item, s.reason) for s in m.report.skipped
                if s.item.startswith("Session")}
    assert sessions == {
        ("Session2", None, "Session2",
         "no dialogs: dialog/EmoEvaluation, dialog/transcriptions missing; session not read"),
        ("Session3", None, "Session3",
         "no dialogs: dialog/EmoEvaluation missing; session not read"),
        ("Session4", None, "Session4",
         "no dialogs: dialog/EmoEvaluation and dialog/transcriptions hold no .txt files"),
    }
    # every other skip is one of Session1's, unchanged
    assert len(m.report.skipped) == 3 + sum(1 for p, *_ in EXPECTED_SKIPS if p.startswith("Session1"))
    with pytest.raises(ValueError, match=r"Session2: Session2: no dialogs"):
        prepare_iemocap(tmp_path, sessions=[2], strict=True)


def _float_wav(path: Path, values: np.ndarray, subtype: str) -> None:
    sf.write(path, values, 16000, subtype=subtype)


def test_non_finite_float_wavs_skipped(tmp_path):
    copy = tmp_path / "IEMOCAP_full_release"
    shutil.copytree(RELEASE, copy)
    wav_dir = copy / "Session1/sentences/wav/Ses01F_impro01"
    x = np.full(2400, 0.1)
    x[100] = np.nan
    _float_wav(wav_dir / "Ses01F_impro01_M000.wav", x, "FLOAT")
    x[100] = np.inf
    _float_wav(wav_dir / "Ses01F_impro01_M001.wav", x, "DOUBLE")
    x[100] = 0.5
    _float_wav(wav_dir / "Ses01F_impro01_M002.wav", x, "FLOAT")  # finite float wav: kept
    m = prepare_iemocap(tmp_path, sessions=[1])
    assert m.ids == ["Ses01F_impro01_F000", "Ses01F_impro01_M002", "Ses01M_script01_1b_M000",
                     "Ses01M_script01_1b_M002"]
    assert m["Ses01F_impro01_M002"].duration == pytest.approx(2400 / 16000)
    got = {(Path(s.path).name, s.line, s.item, s.reason) for s in m.report.skipped
           if "finite" in s.reason}
    assert got == {("Ses01F_impro01_M000.wav", None, "Ses01F_impro01_M000", "non-finite samples (1 of 2400)"),
                   ("Ses01F_impro01_M001.wav", None, "Ses01F_impro01_M001", "non-finite samples (1 of 2400)")}
