"""prepare_msp_podcast on fixture trees in the release layout (CSV, old CSV name, JSON)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from workbench.corpus.labels import get_scheme
from workbench.corpus.load import load_corpus
from workbench.corpus.manifest import ManifestError
from workbench.corpus.msp_podcast import prepare_msp_podcast
from workbench.protocols import make_folds

HEADER = "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set\n"
ROWS = [  # line 2 onwards
    "MSP-PODCAST_0001_0008.wav,N,4.2,4.0,4.4,127,Male,Train",
    "MSP-PODCAST_0001_0009.wav,H,5.0,5.5,4.0,Unknown,Unknown,Development",
    "MSP-PODCAST_0002_0001.wav,C,3.6,2.2,5.0,88,Female,Test1",
    "MSP-PODCAST_0002_0002.wav,Z,3.0,3.0,3.0,88,Female,Test1",  # line 5: unknown class
    "MSP-PODCAST_0003_0001.wav,,,,,Unknown,Unknown,Test3",  # line 6: hidden labels
    "MSP-PODCAST_0003_0002.wav,A,6.0,2.0,6.0,12,Male,Train",  # line 7: no audio file
    "MSP-PODCAST_0004_0001.wav,S,2.0,2.0,2.0,12,Male,Test9",  # line 8: unknown split
    "MSP-PODCAST_0004_0002.wav,S,abc,2.0,2.0,12,Male,Train",  # line 9: bad number
    "MSP-PODCAST_0001_0008.wav,A,4.2,4.0,4.4,127,Male,Train",  # line 10: duplicate
    "MSP-PODCAST_0005_0001.wav,S,1.8,1.5,2.5,301,Female,Test2",
]
DURATIONS = {"MSP-PODCAST_0001_0008": 1.25, "MSP-PODCAST_0001_0009": 0.5,
             "MSP-PODCAST_0002_0001": 0.75, "MSP-PODCAST_0002_0002": 0.5,
             "MSP-PODCAST_0004_0001": 0.5, "MSP-PODCAST_0004_0002": 0.5,
             "MSP-PODCAST_0005_0001": 2.0}
SUBFOLDER = {"MSP-PODCAST_0001_0009", "MSP-PODCAST_0005_0001"}  # Audios/<sub>/ layout


def _tree(root: Path, labels_name: str = "labels_consensus.csv") -> Path:
    (root / "Labels").mkdir(parents=True)
    if labels_name.endswith(".csv"):
        (root / "Labels" / labels_name).write_text(HEADER + "\n".join(ROWS) + "\n")
    for stem, secs in DURATIONS.items():
        folder = root / "Audios" / ("Audio_part2" if stem in SUBFOLDER else "")
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{stem}.wav", np.zeros(int(secs * 16000), np.float32), 16000)
    (root / "Transcripts").mkdir()
    (root / "Transcripts" / "MSP-PODCAST_0001_0008.txt").write_text("  Well, I think\nso. \n")
    return root


KEPT = ["MSP-PODCAST_0001_0008", "MSP-PODCAST_0001_0009", "MSP-PODCAST_0002_0001",
        "MSP-PODCAST_0005_0001"]


def test_fields(tmp_path):
    m = prepare_msp_podcast(_tree(tmp_path))
    assert m.ids == KEPT
    u = m["MSP-PODCAST_0001_0008"]
    assert (u.label, u.vad, u.speaker, u.gender, u.split, u.session, u.dialog, u.kind) == (
        "N", (4.0, 4.2, 4.4), "127", "M", "Train", "MSP-PODCAST_0001", "MSP-PODCAST_0001", "other")
    assert u.text == "Well, I think so." and u.duration == pytest.approx(1.25)
    unknown = m["MSP-PODCAST_0001_0009"]
    assert (unknown.speaker, unknown.gender, unknown.split) == ("Unknown", None, "Development")
    assert Path(unknown.audio_path).parent.name == "Audio_part2"
    assert unknown.text == ""  # no transcript file: noted, not skipped
    assert m["MSP-PODCAST_0005_0001"].duration == pytest.approx(2.0)
    assert u.extra["row"]["SpkrID"] == "127" and u.extra["emotion"] == "neutral"


def test_skips_name_the_line(tmp_path):
    m = prepare_msp_podcast(_tree(tmp_path))
    labels = str(tmp_path / "Labels" / "labels_consensus.csv")
    got = {(s.path, s.line, s.item, s.reason) for s in m.report.skipped}
    assert got == {
        (labels, 5, "MSP-PODCAST_0002_0002", "unknown EmoClass 'Z'"),
        (labels, 6, "MSP-PODCAST_0003_0001", "no EmoClass (hidden test labels)"),
        (labels, 7, "MSP-PODCAST_0003_0002",
         f"audio file MSP-PODCAST_0003_0002.wav not found under {tmp_path / 'Audios'}"),
        (labels, 8, "MSP-PODCAST_0004_0001", "unknown Split_Set 'Test9'"),
        (labels, 9, "MSP-PODCAST_0004_0002", "malformed EmoVal/EmoAct/EmoDom '2.0'/'abc'/'2.0'"),
        (labels, 10, "MSP-PODCAST_0001_0008", "duplicate file name (first at line 2)"),
    }
    notes = [(Path(w.path).name, w.reason) for w in m.report.warnings]
    assert ("MSP-PODCAST_0001_0009.txt", "no transcript; text=''") in notes


def test_official_folds_one_per_test_set(tmp_path):
    m = prepare_msp_podcast(_tree(tmp_path))
    folds = make_folds(m, "official")
    assert [(f.name, f.test) for f in folds] == [("test1", ("MSP-PODCAST_0002_0001",)),
                                                 ("test2", ("MSP-PODCAST_0005_0001",))]
    assert folds[0].train == ("MSP-PODCAST_0001_0008",)
    assert folds[0].validation == ("MSP-PODCAST_0001_0009",)


def test_old_label_file_name_and_json_variant(tmp_path):
    old = prepare_msp_podcast(_tree(tmp_path / "old", "labels_concensus.csv"))
    assert old.ids == KEPT
    root = _tree(tmp_path / "json", "labels_consensus.json")
    records = {}
    for row in ROWS[:3] + ROWS[9:]:
        name, cls, act, val, dom, spk, gender, split = row.split(",")
        records[name] = {"EmoClass": cls, "EmoAct": float(act), "EmoVal": float(val),
                         "EmoDom": float(dom), "SpkrID": spk, "Gender": gender, "Split_Set": split}
    records["MSP-PODCAST_0002_0002.wav"] = {**records["MSP-PODCAST_0002_0001.wav"], "EmoClass": "Q"}
    (root / "Labels" / "labels_consensus.json").write_text(json.dumps(records))
    m = prepare_msp_podcast(root)
    assert m.ids == KEPT and m["MSP-PODCAST_0002_0001"].vad == (2.2, 3.6, 5.0)
    (skip,) = m.report.skipped
    assert (skip.line, skip.item, skip.reason) == (None, "MSP-PODCAST_0002_0002", "unknown EmoClass 'Q'")


def test_bad_input_errors(tmp_path):
    root = _tree(tmp_path)
    text = (root / "Labels" / "labels_consensus.csv").read_text().replace(",Split_Set", "")
    (root / "Labels" / "labels_consensus.csv").write_text(text)
    with pytest.raises(ManifestError, match=r"labels_consensus\.csv: missing column\(s\) \['Split_Set'\]"):
        prepare_msp_podcast(root)
    shutil.rmtree(root / "Labels")
    with pytest.raises(FileNotFoundError, match="labels_consensus.csv"):
        prepare_msp_podcast(root)


def test_schemes_and_load_corpus(tmp_path):
    _tree(tmp_path)
    m = load_corpus("msp_podcast", root=tmp_path, label_scheme="msp_podcast")
    assert [(u.id, u.label, u.extra["label_code"]) for u in m] == [
        ("MSP-PODCAST_0001_0008", "neu", "N"), ("MSP-PODCAST_0001_0009", "hap", "H"),
        ("MSP-PODCAST_0002_0001", "con", "C"), ("MSP-PODCAST_0005_0001", "sad", "S")]
    four = get_scheme("msp_podcast4")
    assert four.apply(prepare_msp_podcast(tmp_path)).ids == [
        "MSP-PODCAST_0001_0008", "MSP-PODCAST_0001_0009", "MSP-PODCAST_0005_0001"]
    assert m.report is not None and len(m.report.skipped) == 6


def test_unterminated_quote_reported_later_rows_kept(tmp_path):
    root = _tree(tmp_path)
    rows = list(ROWS)
    rows[1] = rows[1].replace(",Unknown,Unknown,", ',"Unknown,Unknown,')  # line 3: quote never closed
    (root / "Labels" / "labels_consensus.csv").write_text(HEADER + "\n".join(rows) + "\n")
    m = prepare_msp_podcast(root)
    assert m.ids == [KEPT[0], KEPT[2], KEPT[3]]  # every row after line 3 still read
    labels = str(root / "Labels" / "labels_consensus.csv")
    bad = [s for s in m.report.skipped if s.line == 3]
    assert [(s.path, s.item) for s in bad] == [(labels, rows[1][:60])]
    assert bad[0].reason.startswith("unterminated quote")
    assert len(m.report.skipped) == 7  # the six of test_skips_name_the_line, plus line 3


def test_transcript_not_utf8_reported_with_line(tmp_path):
    root = _tree(tmp_path)
    txt = root / "Transcripts" / "MSP-PODCAST_0001_0008.txt"
    txt.write_bytes(b"Well,\nI don\x92t know\n")  # line 2: cp1252 apostrophe
    m = prepare_msp_podcast(root)
    assert m["MSP-PODCAST_0001_0008"].text == "Well, I don\u2019t know"
    enc = [(w.path, w.line, w.item, w.reason) for w in m.report.warnings if "UTF-8" in w.reason]
    assert enc == [(str(txt), 2, "MSP-PODCAST_0001_0008",
                    "not UTF-8 on 1 line(s): 2; those lines read as cp1252")]


def _json_tree(tmp_path: Path, records: dict) -> Path:
    root = _tree(tmp_path, "labels_consensus.json")
    (root / "Labels" / "labels_consensus.json").write_text(json.dumps(records))
    return root


def _record(cls: str = "N", act: object = 4.2, val: object = 4.0, dom: object = 4.4) -> dict:
    return {"EmoClass": cls, "EmoAct": act, "EmoVal": val, "EmoDom": dom, "SpkrID": "127", "Gender": "Male",
            "Split_Set": "Train"}


def test_non_finite_vad_skipped(tmp_path):
    """issue 28: "Infinity" / "NaN" in JSON and inf/nan/1e309 in CSV were kept as V/A/D."""
    root = _json_tree(tmp_path / "json", {
        "MSP-PODCAST_0001_0008.wav": _record(),
        "MSP-PODCAST_0001_0009.wav": _record(act="Infinity"),
        "MSP-PODCAST_0002_0001.wav": _record(val="NaN"),
    })
    m = prepare_msp_podcast(root)
    assert m.ids == ["MSP-PODCAST_0001_0008"]
    assert sorted((s.item, s.reason) for s in m.report.skipped) == [
        ("MSP-PODCAST_0001_0009", "non-finite EmoVal/EmoAct/EmoDom '4.0'/'Infinity'/'4.4'"),
        ("MSP-PODCAST_0002_0001", "non-finite EmoVal/EmoAct/EmoDom 'NaN'/'4.2'/'4.4'"),
    ]
    csv_root = _tree(tmp_path / "csv")
    labels = csv_root / "Labels" / "labels_consensus.csv"
    labels.write_text(HEADER + "MSP-PODCAST_0001_0008.wav,N,4.2,4.0,4.4,127,Male,Train\n"
                      "MSP-PODCAST_0001_0009.wav,N,inf,4.0,4.4,127,Male,Train\n"
                      "MSP-PODCAST_0002_0001.wav,N,4.2,1e309,4.4,127,Male,Train\n"
                      "MSP-PODCAST_0005_0001.wav,N,4.2,4.0,-inf,127,Male,Train\n")
    m = prepare_msp_podcast(csv_root)
    assert m.ids == ["MSP-PODCAST_0001_0008"]
    assert [(s.path, s.line) for s in m.report.skipped] == [(str(labels), 3), (str(labels), 4), (str(labels), 5)]
    assert all(s.reason.startswith("non-finite EmoVal/EmoAct/EmoDom") for s in m.report.skipped)


def test_json_labels_not_utf8_or_too_deep(tmp_path):
    """issue 28: a cp1252 byte gave a raw UnicodeDecodeError naming no file; a deep JSON a raw
    RecursionError. Now: read as cp1252 with a warning naming file:line; a one-line error."""
    root = _json_tree(tmp_path / "latin", {"MSP-PODCAST_0001_0008.wav": {**_record(), "SpkrID": "Jos\u00e9"}})
    labels = root / "Labels" / "labels_consensus.json"
    labels.write_bytes(labels.read_text().replace("\\u00e9", "\u00e9").encode("cp1252"))
    m = prepare_msp_podcast(root)
    assert m.ids == ["MSP-PODCAST_0001_0008"] and m["MSP-PODCAST_0001_0008"].speaker == "Jos\u00e9"
    (warning,) = [w for w in m.report.warnings if w.path == str(labels)]
    assert warning.line == 1 and "not UTF-8 on 1 line(s)" in warning.reason
    with pytest.raises(ValueError, match="not UTF-8"):
        prepare_msp_podcast(root, strict=True)
    deep = _json_tree(tmp_path / "deep", {})
    (deep / "Labels" / "labels_consensus.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ManifestError, match=r"labels_consensus\.json: JSON nested too deeply") as e:
        prepare_msp_podcast(deep)
    assert "\n" not in str(e.value)
