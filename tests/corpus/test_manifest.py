import json

import pytest

from workbench.corpus.manifest import Manifest, ManifestError, PrepareReport, Utterance


def _utt(i: int, **kw) -> Utterance:
    base = dict(
        id=f"Ses01F_impro01_M{i:03d}",
        corpus="iemocap",
        session="Ses01",
        dialog="Ses01F_impro01",
        speaker="Ses01M",
        gender="M",
        kind="improvised",
        script=None,
        audio_path=f"wav/{i}.wav",
        start=0.0,
        duration=1.25 + i,
        text="Excuse me.",
        label="neu",
        label_votes={"C-E1": ["neu"], "C-E2": ["fru", "ang"]},
        vad=(2.5, 3.0, 3.5),
        words=[("excuse", 0.33, 0.62), ("me", 0.62, 0.91)],
        extra={"marker_actor": "F"},
    )
    base.update(kw)
    return Utterance(**base)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_round_trip_is_exact(tmp_path, suffix):
    m = Manifest([_utt(0), _utt(1, vad=None, words=None, label_votes={}, script=None)])
    path = tmp_path / f"m{suffix}"
    (m.to_parquet if suffix == ".parquet" else m.to_jsonl)(path)
    back = Manifest.load(path)
    assert back.utterances == m.utterances
    assert back["Ses01F_impro01_M001"].vad is None
    assert back[0].words[1] == ("me", 0.62, 0.91)
    assert back[0].label_votes["C-E2"] == ["fru", "ang"]


def test_atomic_write_leaves_no_temp_files(tmp_path):
    Manifest([_utt(0)]).to_parquet(tmp_path / "m.parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["m.parquet"]


def test_validate_lists_every_problem():
    bad = Manifest(
        [
            _utt(0),
            _utt(0),  # duplicate id
            _utt(2, speaker=""),
            _utt(3, duration=0.0),
            _utt(4, kind="scripted", script=None),
            _utt(5, words=[("late", 1.0, 0.5)]),
        ]
    )
    with pytest.raises(ManifestError) as e:
        bad.validate()
    msg = str(e.value)
    assert "5 problem(s)" in msg
    for needle in ("duplicate ids", "M002: empty speaker", "M003: duration 0.0", "without script name", "'late' ends"):
        assert needle in msg


def test_jsonl_error_names_file_and_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text(json.dumps(_utt(0).to_dict()) + "\n{not json\n")
    with pytest.raises(ManifestError, match=r"m\.jsonl:2"):
        Manifest.from_jsonl(p)


def test_report_summary_counts_reasons():
    r = PrepareReport()
    r.skip("a.txt", 3, "x", "malformed line")
    r.skip("a.txt", 9, "y", "malformed line")
    r.warn("b.wdseg", None, "z", "no .wdseg")
    assert r.summary().splitlines() == ["skipped 2: malformed line", "warning 1: no .wdseg"]
    lines = r.to_frame()["line"]
    assert list(lines[:2]) == [3, 9] and lines.isna().tolist() == [False, False, True]
    assert str(r.skipped[0]) == "a.txt:3: x: malformed line"
