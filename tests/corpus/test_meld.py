"""prepare_meld on a fixture tree in the MELD.Raw layout, with tiny mp4 clips made by ffmpeg.

Each clip carries a tone of its own frequency, so the decoded wav can be traced to its mp4.
Expected line numbers were counted by hand from the CSV text below (row 5 spans two lines).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import soundfile as sf
from media_fixtures import flat_frames, peak_frequency, tone, write_video

from workbench.corpus.load import load_corpus
from workbench.corpus.manifest import ManifestError
from workbench.corpus.meld import fix_mojibake, normalise_text, parse_time, prepare_meld
from workbench.protocols import make_folds

HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
# Time stamps hold a comma, so the real CSVs quote them; row 5 (Sr No. 7) spans two lines.
TRAIN_CSV = HEADER + (
    '1,also I was the point person on my companyâ€™s transition,Chandler,neutral,neutral,0,0,8,21,"00:16:16,059","00:16:21,731"\n'
    '2,You must’ve had your hands full.,The Interviewer,Neutral,neutral,0,1,8,21,"0:16:21,940","0:16:23,442"\n'
    '5,"Oh, yeah, right.",Chandler,joy,positive,1,0,3,7,"0:01:02,003","0:01:03,500"\n'
    '7,"Wait\nwhat?",Joey,surprise,negative,1,1,3,7,"0:01:04,000","0:01:05,000"\n'
    '8,Hi.,Ross,happiness,positive,1,2,3,7,"0:01:06,000","0:01:07,000"\n'
    '9,Where is it?,Ross,anger,negative,1,3,3,7,"0:01:08,000","0:01:09,000"\n'
    '10,Again.,Ross,neutral,neutral,0,1,8,21,"0:16:21,940","0:16:23,442"\n'
    '11,Broken clip.,Monica,fear,negative,1,4,3,7,"0:01:10,000","0:01:11,000"\n'
    '12,Bad time.,Monica,sadness,negative,1,5,3,7,16:16,"0:01:12,000"\n'
)


# (split, dia, utt) -> tone Hz and seconds; None = a file of garbage bytes
CLIPS = {
    ("train", 0, 0): (440.0, 1.0), ("train", 0, 1): (660.0, 0.6), ("train", 1, 0): (880.0, 0.8),
    ("train", 1, 1): (550.0, 0.5), ("train", 1, 2): (300.0, 0.5), ("train", 1, 5): (350.0, 0.7),
    ("train", 1, 4): None,  # undecodable
    ("dev", 0, 0): (1000.0, 0.5), ("test", 2, 3): (1200.0, 0.9),
}  # ("train", 1, 3) has no mp4 at all


@pytest.fixture(scope="module")
def meld_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("meld") / "MELD.Raw"
    (root / "train").mkdir(parents=True)
    (root / "train" / "train_sent_emo.csv").write_text(TRAIN_CSV, encoding="utf-8")
    (root / "dev").mkdir()
    (root / "dev" / "dev_sent_emo.csv").write_text(
        HEADER + '1,See you.,Rachel,sadness,negative,0,0,1,2,"0:00:01,000","0:00:02,000"\n')
    # the test split in the flat layout of the release tarball: CSV and media folder in root
    (root / "test_sent_emo.csv").write_text(
        HEADER + '4,Okay!,Phoebe,disgust,negative,2,3,5,9,"0:10:00,500","0:10:01,400"\n')
    media = {"train": root / "train" / "train_splits", "dev": root / "dev" / "dev_splits_complete",
             "test": root / "output_repeated_splits_test"}
    for (split, dia, utt), spec in CLIPS.items():
        path = media[split] / f"dia{dia}_utt{utt}.mp4"
        if spec is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
            continue
        freq, secs = spec
        write_video(path, flat_frames(int(secs * 10), 16, 16, (90, 90, 90)), 10,
                    audio=tone(freq, secs, 48000), sr=48000)
    return root


@pytest.fixture(scope="module")
def meld(meld_root, tmp_path_factory):
    cache = tmp_path_factory.mktemp("meld_cache")
    return prepare_meld(meld_root, audio_cache=cache, workers=2), cache


def test_ids_fields_and_official_splits(meld):
    m, _ = meld
    assert m.ids == ["train_dia0_utt0", "train_dia0_utt1", "train_dia1_utt0", "train_dia1_utt1",
                     "train_dia1_utt5", "dev_dia0_utt0", "test_dia2_utt3"]
    u = m["train_dia0_utt1"]
    assert (u.speaker, u.label, u.split, u.dialog, u.session, u.kind, u.gender) == (
        "The Interviewer", "neutral", "train", "train_dia0", "S08E21", "other", None)
    assert u.extra["sentiment"] == "neutral" and u.extra["sr_no"] == 2
    assert u.extra["row"]["Emotion"] == "Neutral"  # every cell kept as written
    assert m["test_dia2_utt3"].split == "test" and m["test_dia2_utt3"].session == "S05E09"
    folds = make_folds(m, "official")
    assert [(f.name, len(f.train), len(f.validation), len(f.test)) for f in folds] == [("test", 5, 1, 1)]


def test_text_normalised_raw_kept(meld):
    m, _ = meld
    u = m["train_dia0_utt0"]
    assert u.text == "also I was the point person on my company's transition"
    assert u.extra["text_raw"] == "also I was the point person on my companyâ€™s transition"
    assert m["train_dia0_utt1"].text == "You must've had your hands full."
    assert m["train_dia1_utt0"].text == "Oh, yeah, right."
    assert m["train_dia1_utt1"].text == "Wait what?"  # quoted cell spanning two lines


def test_times_with_and_without_leading_zero(meld):
    m, _ = meld
    # computed (h, m, s, ms -> seconds): equal to within a microsecond
    assert m["train_dia0_utt0"].extra["times"] == pytest.approx((976.059, 981.731), rel=0, abs=1e-6)
    assert m["train_dia0_utt1"].extra["times"] == pytest.approx((981.94, 983.442), rel=0, abs=1e-6)


def test_skips_and_warnings_name_file_and_line(meld, meld_root):
    m, _ = meld
    csv = str(meld_root / "train" / "train_sent_emo.csv")
    skipped = {(s.path, s.line, s.item, s.reason.split(":")[0].split(" (")[0]) for s in m.report.skipped}
    assert skipped == {
        (csv, 7, "train_dia1_utt2", "unknown emotion 'happiness'"),
        (csv, 8, "train_dia1_utt3", "media file missing"),
        (csv, 9, "train_dia0_utt1", "duplicate id"),
        (csv, 10, "train_dia1_utt4", "audio not decodable"),
    }
    dup = next(s for s in m.report.skipped if s.line == 9)
    assert dup.reason == "duplicate id (first at line 3)"
    (warning,) = m.report.warnings
    assert (warning.line, warning.item) == (11, "train_dia1_utt5")
    assert "malformed time '16:16'" in warning.reason
    assert "times" not in m["train_dia1_utt5"].extra


def test_audio_decoded_to_16k_mono_from_the_right_clip(meld):
    m, cache = meld
    for u in m:
        split, dia, utt = u.id.split("_")
        freq, secs = CLIPS[(split, int(dia[3:]), int(utt[3:]))]
        y, sr = sf.read(u.audio_path, always_2d=True)
        assert (sr, y.shape[1]) == (16000, 1)
        assert Path(u.audio_path).parent == cache / split
        assert u.duration == pytest.approx(y.shape[0] / 16000)
        assert u.duration == pytest.approx(secs, abs=0.05)  # AAC priming may shift a few ms
        assert peak_frequency(y[:, 0], 16000) == pytest.approx(freq, abs=3.0)


def test_cached_audio_is_reused(meld, meld_root):
    m, cache = meld
    wav = Path(m["dev_dia0_utt0"].audio_path)
    before = os.stat(wav).st_mtime_ns
    again = prepare_meld(meld_root, splits=["dev"], audio_cache=cache)
    assert again.ids == ["dev_dia0_utt0"] and os.stat(wav).st_mtime_ns == before


def test_missing_column_is_an_error(tmp_path):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "dev_sent_emo.csv").write_text(HEADER.replace("Sentiment,", "") + "\n")
    (tmp_path / "dev" / "dev_splits_complete").mkdir()
    with pytest.raises(ManifestError, match=r"dev_sent_emo\.csv: missing column\(s\) \['Sentiment'\]"):
        prepare_meld(tmp_path, splits=["dev"], audio_cache=tmp_path / "c")


def test_strict_raises_on_first_bad_row(meld_root, tmp_path):
    with pytest.raises(ValueError, match=r"train_sent_emo\.csv:7: train_dia1_utt2: unknown emotion"):
        prepare_meld(meld_root, splits=["train"], audio_cache=tmp_path, strict=True)


def test_load_corpus_with_schemes(meld_root, meld):
    _, cache = meld
    emo = load_corpus("meld", root=meld_root, label_scheme="meld7", audio_cache=cache)
    assert len(emo) == 7 and emo.report is not None
    senti = load_corpus("meld", root=meld_root, label_scheme="sentiment", audio_cache=cache)
    assert [u.label for u in senti] == ["neutral", "neutral", "positive", "negative", "negative",
                                        "negative", "negative"]
    assert senti["train_dia1_utt0"].extra["label_before_scheme"] == "joy"
    with pytest.raises(ValueError, match="keeps none"):
        load_corpus("meld", root=meld_root, label_scheme="iemocap4", audio_cache=cache)


def test_text_helpers():
    assert fix_mojibake("donâ€™t â€œgoâ€\x9d Ã©") == "don’t “go” é"
    assert normalise_text("  it’s – “fine”…  ") == "it's - \"fine\"..."
    assert parse_time("1:02:03,4") == pytest.approx(3723.4, rel=0, abs=1e-6)
    with pytest.raises(ValueError):
        parse_time("00:61:00,000")


def test_unterminated_quote_reported_later_rows_kept(meld_root, meld, tmp_path):
    _, cache = meld
    lines = TRAIN_CSV.split("\n")
    # line 3: the Utterance cell opens a quote that is never closed (the next quote, on the
    # time stamp, "closes" it): reported as such, not as a malformed Dialogue_ID; the later
    # lines keep their own numbers, and line 9 (same id as line 3) is no longer a duplicate
    lines[2] = lines[2].replace("2,You must", '2,"You must')
    (tmp_path / "train").mkdir()
    csv = tmp_path / "train" / "train_sent_emo.csv"
    csv.write_text("\n".join(lines), encoding="utf-8")
    (tmp_path / "train" / "train_splits").symlink_to(meld_root / "train" / "train_splits")
    m = prepare_meld(tmp_path, splits=["train"], audio_cache=cache)
    assert m.ids == ["train_dia0_utt0", "train_dia1_utt0", "train_dia1_utt1", "train_dia0_utt1",
                     "train_dia1_utt5"]
    got = {(s.line, s.reason.split(":")[0].split(" (")[0]) for s in m.report.skipped}
    assert got == {(3, "unterminated quote"), (7, "unknown emotion 'happiness'"),
                   (8, "media file missing"), (10, "audio not decodable")}
    bad = next(s for s in m.report.skipped if s.line == 3)
    assert (bad.path, bad.item) == (str(csv), lines[2][:60])
    assert m["train_dia1_utt1"].extra["source_line"] == 5
    assert m["train_dia0_utt1"].extra["source_line"] == 9


def test_cp1252_lines_decoded_and_reported_once(meld_root, meld, tmp_path):
    _, cache = meld
    lines = TRAIN_CSV.split("\n")
    data = [ln.encode("utf-8") for ln in lines]
    data[2] = lines[2].encode("cp1252")  # line 3: "must’ve" with ’ as the single byte 0x92
    data[3] = lines[3].replace("right.", "right\u2026").encode("cp1252")  # line 4: … as 0x85
    data[5] = data[5].replace(b"what?", b"what\x81?")  # line 6 (inside a quoted cell): 0x81, undefined in cp1252
    (tmp_path / "train").mkdir()
    csv = tmp_path / "train" / "train_sent_emo.csv"
    csv.write_bytes(b"\n".join(data))
    (tmp_path / "train" / "train_splits").symlink_to(meld_root / "train" / "train_splits")
    m = prepare_meld(tmp_path, splits=["train"], audio_cache=cache)
    assert len(m) == 5
    assert m["train_dia0_utt1"].extra["text_raw"] == "You must\u2019ve had your hands full."
    assert m["train_dia0_utt1"].text == "You must've had your hands full."
    assert m["train_dia1_utt0"].text == "Oh, yeah, right..."
    assert m["train_dia1_utt1"].extra["text_raw"] == "Wait\nwhat\x81?"  # kept, not U+FFFD
    # the UTF-8 lines are read as UTF-8, not as cp1252 mojibake
    assert m["train_dia0_utt0"].extra["text_raw"] == "also I was the point person on my companyâ€™s transition"
    enc = [w for w in m.report.warnings if "UTF-8" in w.reason]
    assert [(w.path, w.line, w.reason) for w in enc] == [
        (str(csv), 3, "not UTF-8 on 3 line(s): 3, 4, 6; those lines read as cp1252")]
    with pytest.raises(ValueError, match=r"train_sent_emo\.csv:3: .*not UTF-8"):
        prepare_meld(tmp_path, splits=["train"], audio_cache=cache, strict=True)
