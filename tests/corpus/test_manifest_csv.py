"""import_table: user-mapped CSV/TSV/Parquet tables -> Manifest, with bad rows reported by line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from workbench.corpus.load import load_corpus
from workbench.corpus.manifest import ManifestError, PrepareReport
from workbench.corpus.manifest_csv import import_table, read_csv_rows


@pytest.fixture
def audio(tmp_path) -> Path:
    d = tmp_path / "clips"
    d.mkdir()
    for name, secs in (("a", 0.5), ("b", 1.0), ("c", 0.25)):
        sf.write(d / f"{name}.wav", np.zeros(int(secs * 16000), np.float32), 16000)
    (d / "broken.wav").write_bytes(b"RIFF not really a wav")
    return d


CSV = (
    "wav,emotion,spk,sentence,set,val\n"                       # 1
    "clips/a.wav,happy,s1,\"Hello, there\",train,3.5\n"         # 2
    "clips/b.wav,sad,s2,\"two\nlines\",test,\n"                 # 3-4
    "clips/missing.wav,sad,s2,x,test,\n"                        # 5
    "clips/c.wav,,s3,no label,train,\n"                         # 6
    "clips/broken.wav,angry,s3,bad audio,train,\n"              # 7
    "clips/c.wav,bored,s3,unknown label,train,\n"               # 8
    "clips/a.wav,sad,s1,same id again,train,\n"                 # 9
    "clips/c.wav,angry,s3,too,many,cells,here\n"                # 10
    "\n"                                                        # 11 (blank)
    "clips/c.wav,angry,s3,last,dev,1.5\n"                       # 12
)
COLUMNS = {"audio_path": "wav", "label": "emotion", "speaker": "spk", "text": "sentence",
           "split": "set", "valence": "val"}


def test_mapped_csv(tmp_path, audio):
    (tmp_path / "t.csv").write_text(CSV)
    m = import_table(tmp_path / "t.csv", COLUMNS, corpus="mine",
                     labels=["happy", "sad", "angry"])
    assert m.ids == ["a", "b", "c"]
    a, b, c = m
    assert (a.label, a.speaker, a.text, a.split, a.corpus, a.kind) == (
        "happy", "s1", "Hello, there", "train", "mine", "other")
    assert a.duration == pytest.approx(0.5)  # frames / sample rate
    assert a.vad[0] == 3.5 and np.isnan(a.vad[1]) and b.vad is None
    assert b.text == "two\nlines" and c.duration == pytest.approx(0.25) and c.split == "dev"
    assert Path(a.audio_path) == audio / "a.wav"
    assert c.extra["row"] == {"wav": "clips/c.wav", "emotion": "angry", "spk": "s3",
                              "sentence": "last", "set": "dev", "val": "1.5"}
    assert c.extra["source_line"] == 12
    table = str(tmp_path / "t.csv")
    got = {(s.path, s.line, s.item, s.reason.split(":")[0]) for s in m.report.skipped}
    assert got == {
        (table, 5, "missing", "audio file missing"),
        (table, 6, "c", "empty label"),
        (table, 7, "broken", "audio unreadable (LibsndfileError)"),
        (table, 8, "c", "unknown label 'bored'"),
        (table, 9, "a", "duplicate id (first at line 2)"),
        (table, 10, "clips/c.wav", "7 cells, header has 6"),
    }


def test_auto_columns_tsv_and_no_speaker_warning(tmp_path, audio):
    (tmp_path / "t.tsv").write_text("path\tlabel\ttranscript\nclips/b.wav\tsad\tHi\n")
    m = import_table(tmp_path / "t.tsv")
    (u,) = m
    assert (u.id, u.label, u.text, u.speaker) == ("b", "sad", "Hi", "Unknown")
    assert u.duration == pytest.approx(1.0)
    assert "no speaker column" in m.report.warnings[0].reason


def test_parquet_rows_numbered_from_two(tmp_path, audio):
    df = pd.DataFrame({"file": [str(audio / "a.wav"), str(audio / "nope.wav")],
                       "emotion": ["ang", "neu"], "speaker": ["x", "y"], "duration": [0.4, 1.0]})
    df.to_parquet(tmp_path / "t.parquet")
    m = import_table(tmp_path / "t.parquet")
    assert m.ids == ["a"] and m["a"].duration == 0.4  # a duration column wins over the header
    (s,) = m.report.skipped
    assert (s.line, s.item) == (3, "nope")
    no_check = import_table(tmp_path / "t.parquet", check_audio=False)
    assert no_check.ids == ["a", "nope"]


def test_errors(tmp_path, audio):
    (tmp_path / "t.csv").write_text(CSV)
    (tmp_path / "nolabel.csv").write_text("wav,mood\nclips/a.wav,happy\n")
    with pytest.raises(ManifestError, match=r"no column for required field\(s\) \['label'\]"):
        import_table(tmp_path / "nolabel.csv")  # 'wav' is an alias of audio_path; 'mood' is none
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['emotions'\]"):
        import_table(tmp_path / "t.csv", {**COLUMNS, "label": "emotions"})
    with pytest.raises(ValueError, match="unknown manifest field"):
        import_table(tmp_path / "t.csv", {**COLUMNS, "mood": "emotion"})
    with pytest.raises(ValueError, match=r"t\.csv:5: missing: audio file missing"):
        import_table(tmp_path / "t.csv", COLUMNS, strict=True)
    (tmp_path / "t.xlsx").write_text("")
    with pytest.raises(ManifestError, match="unknown table format"):
        import_table(tmp_path / "t.xlsx")


def test_read_csv_rows_bom_and_cp1252(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes("\ufeffa,b\n1,caf\u00e9\n".encode("utf-8"))
    assert read_csv_rows(p) == (["a", "b"], [(2, {"a": "1", "b": "café"})])
    p.write_bytes("a,b\n1,caf\u00e9 \u2019\n".encode("cp1252"))
    report = PrepareReport()
    assert read_csv_rows(p, report=report)[1] == [(2, {"a": "1", "b": "café \u2019"})]
    assert [str(w) for w in report.warnings] == [
        f"{p}:2: x.csv: not UTF-8 on 1 line(s): 2; those lines read as cp1252"]
    with pytest.raises(ManifestError, match=r"x\.csv:2: x\.csv: not UTF-8"):
        read_csv_rows(p)  # no report to put the warning in: an error, never silent


def test_load_corpus_csv(tmp_path, audio):
    (tmp_path / "t.csv").write_text(CSV)
    m = load_corpus("csv", root=tmp_path / "t.csv", columns=COLUMNS, labels=["happy", "sad", "angry"])
    assert m.ids == ["a", "b", "c"] and len(m.report.skipped) == 6
    with pytest.raises(ValueError, match="needs root="):
        load_corpus("csv")


# ------------------------------------------------------------------ unterminated quotes
def _six_wavs(folder: Path) -> None:
    for i in range(1, 7):
        sf.write(folder / f"r{i}.wav", np.zeros(1600, np.float32), 16000)


ROWS6 = ["r1.wav,sad,s1,ok", 'r2.wav,sad,s2,"abc', "r3.wav,sad,s3,x", "r4.wav,sad,s4,y",
         "r5.wav,sad,s5,z", "r6.wav,sad,s6,w"]  # lines 2..7; line 3 opens a quote, never closed


@pytest.mark.parametrize("later_quote", [False, True])
def test_unterminated_quote_reported_later_rows_kept(tmp_path, later_quote):
    _six_wavs(tmp_path)
    rows = list(ROWS6)
    if later_quote:  # a properly quoted cell further down used to "close" the bad quote
        rows[3] = 'r4.wav,sad,s4,"y, quoted"'
    (tmp_path / "t.csv").write_text("wav,emotion,spk,text\n" + "\n".join(rows) + "\n")
    m = import_table(tmp_path / "t.csv")
    assert m.ids == ["r1", "r3", "r4", "r5", "r6"]
    assert m["r4"].text == ("y, quoted" if later_quote else "y")
    assert m["r3"].text == "x" and m["r3"].extra["source_line"] == 4
    (s,) = m.report.skipped
    assert (s.path, s.line, s.item) == (str(tmp_path / "t.csv"), 3, 'r2.wav,sad,s2,"abc')
    assert s.reason == ("unterminated quote: the quote opened on this line runs on to line 5; "
                        "row skipped" if later_quote else
                        "unterminated quote: the quote opened on this line never closes; row skipped")


def test_unterminated_quote_on_last_line_and_multiline_cell_still_read(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text('a,b\n1,"two\nlines"\n2,ok\n3,"open\n')
    report = PrepareReport()
    assert read_csv_rows(p, report=report) == (["a", "b"], [(2, {"a": "1", "b": "two\nlines"}),
                                                       (4, {"a": "2", "b": "ok"})])
    (s,) = report.skipped
    assert (s.line, s.item, s.reason) == (
        5, '3,"open', "unterminated quote: the quote opened on this line never closes; row skipped")
    with pytest.raises(ManifestError, match=r"x\.csv:5: .*unterminated quote"):
        read_csv_rows(p)  # no reporter: the first problem is an error naming file:line


# ------------------------------------------------------------------ start / end / duration
TIMES = (
    "id,wav,emotion,start,duration,end\n"   # 1
    "ok,two.wav,sad,0.5,1.0,\n"            # 2: kept, 0.5 .. 1.5 of a 2 s file
    "neg,two.wav,sad,-0.5,,\n"             # 3: used to read 2.5 s of a 2 s file
    "inf,two.wav,sad,0,inf,\n"             # 4
    "nan,two.wav,sad,0,nan,\n"             # 5
    "nanstart,two.wav,sad,nan,1.0,\n"      # 6
    "past,two.wav,sad,1.5,1.0,\n"          # 7: 1.5 + 1.0 > 2
    "after,two.wav,sad,2.5,,\n"            # 8: starts after the end
    "edge,two.wav,sad,1.995,0.01,\n"       # 9: ends 5 ms past the end: within the tolerance
    "backwards,two.wav,sad,0.2,,0.1\n"     # 10
    "ends,two.wav,sad,0.2,,0.7\n"          # 11: kept, duration from end - start
    "tail,two.wav,sad,1.5,,\n"             # 12: kept, duration = the rest of the file
    "word,two.wav,sad,abc,,\n"             # 13
    "clash,two.wav,sad,0.2,0.3,0.7\n"      # 14: duration disagrees with end - start
)


def test_impossible_times_skipped_with_line(tmp_path):
    sf.write(tmp_path / "two.wav", np.zeros(32000, np.float32), 16000)
    (tmp_path / "t.csv").write_text(TIMES)
    m = import_table(tmp_path / "t.csv")
    assert m.ids == ["ok", "edge", "ends", "tail"]
    assert (m["ok"].start, m["ok"].duration) == (0.5, 1.0)
    assert m["ends"].duration == pytest.approx(0.5)
    assert (m["tail"].start, m["tail"].duration) == (1.5, pytest.approx(0.5))
    assert sorted((s.line, s.item, s.reason) for s in m.report.skipped) == [
        (3, "neg", "start -0.5 is negative"),
        (4, "inf", "duration 'inf' is not a finite number"),
        (5, "nan", "duration 'nan' is not a finite number"),
        (6, "nanstart", "start 'nan' is not a finite number"),
        (7, "past", "start 1.5 + duration 1 = 2.5 s runs past the end of the audio (2 s)"),
        (8, "after", "start 2.5 is at or after the end of the audio (2 s)"),
        (10, "backwards", "end 0.1 is not after start 0.2"),
        (13, "word", "start 'abc' is not a number"),
        (14, "clash", "duration 0.3 disagrees with end - start = 0.5"),
    ]
    # without audio checks the numbers are still checked (the file length is not known)
    no_audio = import_table(tmp_path / "t.csv", check_audio=False)
    assert no_audio.ids == ["ok", "past", "edge", "ends"]  # "after", "tail": no duration


# ------------------------------------------------------------------ paths stay inside the root
def test_audio_paths_outside_root_refused(tmp_path):
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    for p in (root / "in.wav", root / "in2.wav", tmp_path / "outside.wav"):
        sf.write(p, np.zeros(1600, np.float32), 16000)
    (root / "link.wav").symlink_to(tmp_path / "outside.wav")
    (root / "t.csv").write_text(
        "id,wav,emotion\n"
        "u1,in.wav,sad\n"                              # 2
        "u2,../outside.wav,sad\n"                      # 3
        f"u3,{tmp_path / 'outside.wav'},sad\n"         # 4: absolute, outside
        "u4,link.wav,sad\n"                            # 5: symlink pointing outside
        "u5,sub/../in2.wav,sad\n"                      # 6: '..' that stays inside
        f"u6,{root / 'in2.wav'},sad\n"                 # 7: absolute, inside
    )
    m = import_table(root / "t.csv")
    assert m.ids == ["u1", "u5", "u6"]
    got = sorted((s.line, s.item, s.reason.split(":")[0]) for s in m.report.skipped)
    assert got == [(3, "u2", "outside root"), (4, "u3", "outside root"), (5, "u4", "outside root")]
    assert "allow_outside_root=True" in m.report.skipped[0].reason
    opted_out = import_table(root / "t.csv", allow_outside_root=True)
    assert opted_out.ids == ["u1", "u2", "u3", "u4", "u5", "u6"] and not opted_out.report.skipped
    # audio_root is the root: against the parent folder both absolute paths are inside (the
    # relative ones then name files that do not exist there)
    parent = import_table(root / "t.csv", audio_root=tmp_path)
    assert parent.ids == ["u3", "u6"]
    assert [s.reason.split(":")[0] for s in parent.report.skipped] == [
        "audio file missing", "outside root", "audio file missing", "audio file missing"]


# ------------------------------------------------------------------ V/A/D must be finite (issue 28)
def test_non_finite_vad_skipped_with_line(tmp_path):
    sf.write(tmp_path / "two.wav", np.zeros(32000, np.float32), 16000)
    (tmp_path / "t.csv").write_text(
        "id,wav,emotion,valence,arousal,dominance\n"
        "ok,two.wav,sad,3.5,,2\n"        # 2: kept, arousal not given (NaN)
        "pinf,two.wav,sad,inf,1,1\n"     # 3
        "ninf,two.wav,sad,1,-inf,1\n"    # 4
        "big,two.wav,sad,1,1,1e309\n"    # 5: overflows to inf
        "nan,two.wav,sad,nan,1,1\n"      # 6
        "word,two.wav,sad,high,1,1\n"    # 7
    )
    m = import_table(tmp_path / "t.csv")
    assert m.ids == ["ok"]
    assert sorted((s.line, s.item, s.reason) for s in m.report.skipped) == [
        (3, "pinf", "valence 'inf' is not a finite number"),
        (4, "ninf", "arousal '-inf' is not a finite number"),
        (5, "big", "dominance '1e309' is not a finite number"),
        (6, "nan", "valence 'nan' is not a finite number"),
        (7, "word", "valence 'high' is not a number"),
    ]
    assert all(s.path == str(tmp_path / "t.csv") for s in m.report.skipped)
