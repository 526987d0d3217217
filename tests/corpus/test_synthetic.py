"""The synthetic corpus generator writes IEMOCAP's exact layout and formats, deterministically.

The regexes here are written from the IEMOCAP format description (DESIGN.md section 3), not
copied from the generator, so a format drift in the generator fails these tests.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from workbench.corpus import espeak
from workbench.corpus.synthetic import CORPUS_SIZES, IEMOCAP_COUNTS, SynthConfig, generate_corpus, plan_corpus

UTT_ID = re.compile(r"^Ses(0[1-5])([FM])_(impro0[1-8][ab]?|script0[1-3]_[1-3]b?)_([FM])(\d{3})$")
SUMMARY = re.compile(r"^\[(\d+\.\d{4}) - (\d+\.\d{4})\]\t(\S+)\t([a-z]{3})\t"
                     r"\[(\d\.\d{4}), (\d\.\d{4}), (\d\.\d{4})\]$")
C_LINE = re.compile(r"^C-E[1-3]:\t((?:[A-Z][a-z]+; ?)+)\t\(\)$")
A_LINE = re.compile(r"^A-E[1-3]:\tval ([1-5]); act ([1-5]);(?: dom  ([1-5]);)?\t\(\)$")
TRANS = re.compile(r"^(\S+) \[(\d{3}\.\d{4})-(\d{3}\.\d{4})\]: (.+)$")
WDSEG_ROW = re.compile(r"^\t( {0,4}\d+) ( {0,4}\d+) ( *-?\d+) (\S+)$")
WORD_CODES = {"Neutral": "neu", "Happiness": "hap", "Anger": "ang", "Sadness": "sad",
              "Excited": "exc", "Frustration": "fru", "Fear": "fea", "Surprise": "sur",
              "Disgust": "dis", "Other": "oth"}

TINY = SynthConfig(n_sessions=2, dialogs=(("F", "impro05a"), ("M", "script01_1")),
                   utts_per_dialog=8, laughter_prob=0.25, extra_transcript_prob=1.0, workers=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return generate_corpus(tmp_path_factory.mktemp("a"), corpus_seed=3, progress=False, config=TINY)


def _eval_blocks(path: Path) -> list[list[str]]:
    text = path.read_text()
    head, _, rest = text.partition("\n\n")
    assert head == "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"
    return [b.split("\n") for b in rest.strip("\n").split("\n\n")]


def _all_blocks(root: Path) -> dict[str, list[str]]:
    out = {}
    for f in sorted(root.glob("Session*/dialog/EmoEvaluation/*.txt")):
        for b in _eval_blocks(f):
            m = SUMMARY.match(b[0])
            assert m, f"{f.name}: bad summary line {b[0]!r}"
            out[m.group(3)] = b
    return out


def _wdseg(path: Path) -> list[tuple[int, int, int, str]]:
    lines = path.read_text().split("\n")
    assert lines[0] == "\t SFrm  EFrm    SegAScr Word"
    assert lines[-1] == ""
    total = re.fullmatch(r" Total score: +(-?\d+)", lines[-2])
    assert total, lines[-2]
    rows = []
    for ln in lines[1:-2]:
        m = WDSEG_ROW.match(ln)
        assert m, f"{path.name}: bad row {ln!r}"
        assert len(ln) == 1 + 5 + 1 + 5 + 1 + 10 + 1 + len(m.group(4))  # fixed-width columns
        rows.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)))
    assert sum(r[2] for r in rows) == int(total.group(1))
    return rows


def test_layout_ids_and_speakers(tiny: Path) -> None:
    assert tiny.name == "IEMOCAP_full_release"
    assert "NOT IEMOCAP" in (tiny / "SYNTHETIC_README.txt").read_text()
    wavs = sorted(tiny.glob("Session*/sentences/wav/*/*.wav"))
    assert len(wavs) == TINY.n_utterances
    per_dialog = Counter(w.parent.name for w in wavs)
    # Scripted dialogs have exactly utts_per_dialog lines; improvised ones vary by <= 25 %.
    assert per_dialog["Ses01M_script01_1"] == per_dialog["Ses02M_script01_1"] == 8
    assert 6 <= per_dialog["Ses01F_impro05a"] <= 10 and 6 <= per_dialog["Ses02F_impro05a"] <= 10
    dialogs = {w.parent.name for w in wavs}
    assert dialogs == {"Ses01F_impro05a", "Ses01M_script01_1", "Ses02F_impro05a",
                       "Ses02M_script01_1"}
    speakers_per_dialog: dict[str, set[str]] = {}
    for w in wavs:
        m = UTT_ID.match(w.stem)
        assert m, w.stem
        assert w.parent.parent.parent.parent.name == f"Session{int(m.group(1))}"
        assert w.stem.startswith(w.parent.name + "_")
        # The speaker is SesNN + the LAST letter, not the marker letter after SesNN.
        speakers_per_dialog.setdefault(w.parent.name, set()).add(f"Ses{m.group(1)}{m.group(4)}")
        sess = w.parents[3]
        assert (sess / "sentences/ForcedAlignment" / w.parent.name / f"{w.stem}.wdseg").is_file()
        assert (sess / "sentences/visual" / w.parent.name / f"{w.stem}.npy").is_file()
    for d, spk in speakers_per_dialog.items():
        assert spk == {d[:5] + "F", d[:5] + "M"}, d


def test_emo_evaluation_format_and_majority(tiny: Path) -> None:
    blocks = _all_blocks(tiny)
    assert len(blocks) == TINY.n_utterances
    for utt, b in blocks.items():
        m = SUMMARY.match(b[0])
        assert UTT_ID.match(utt)
        start, end, label = float(m.group(1)), float(m.group(2)), m.group(4)
        assert end > start
        c_lines = [ln for ln in b if ln.startswith("C-")]
        a_lines = [ln for ln in b if ln.startswith("A-")]
        assert len(c_lines) == 3 and len(a_lines) == 3 and len(b) == 7
        votes: Counter[str] = Counter()
        for ln in c_lines:
            cm = C_LINE.match(ln)
            assert cm, ln
            votes.update(WORD_CODES[w.strip()] for w in cm.group(1).split(";") if w.strip())
        top, n = votes.most_common(1)[0]
        assert label == (top if n >= 2 else "xxx"), (utt, votes)
        vals = []
        for ln in a_lines:
            am = A_LINE.match(ln)
            assert am, ln
            vals.append([float(x) if x else np.nan for x in am.groups()])
        # The summary V/A/D is the evaluators' mean.
        np.testing.assert_allclose([float(m.group(i)) for i in (5, 6, 7)],
                                   np.nanmean(np.array(vals), axis=0), atol=6e-5)


def test_transcriptions_match_audio_and_labels(tiny: Path) -> None:
    blocks = _all_blocks(tiny)
    seen, extra, tags = set(), 0, 0
    for f in sorted(tiny.glob("Session*/dialog/transcriptions/*.txt")):
        prev = -1.0
        for ln in f.read_text().splitlines():
            m = TRANS.match(ln)
            assert m, f"{f.name}: {ln!r}"
            utt, start, end, text = m.group(1), float(m.group(2)), float(m.group(3)), m.group(4)
            assert start >= prev  # time order on the dialog's timeline
            prev = end
            if not UTT_ID.match(utt):
                assert re.fullmatch(re.escape(f.stem) + r"_[FM]XX\d", utt), utt
                extra += 1
                continue
            seen.add(utt)
            tags += "[LAUGHTER]" in text
            s, e = (float(x) for x in SUMMARY.match(blocks[utt][0]).group(1, 2))
            assert (s, e) == (start, end)
            wav = f.parents[2] / "sentences/wav" / f.stem / f"{utt}.wav"
            info = sf.info(wav)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert abs(info.frames / 16000 - (end - start)) < 2e-4
    assert seen == set(blocks)
    assert extra == 4  # extra_transcript_prob=1: one non-utterance line per dialog
    assert tags >= 1


def test_scripts_repeat_across_sessions(tiny: Path) -> None:
    def lines(session: int) -> list[str]:
        f = tiny / f"Session{session}/dialog/transcriptions/Ses0{session}M_script01_1.txt"
        return [TRANS.match(ln).group(4).replace("[LAUGHTER] ", "").replace(" [LAUGHTER]", "")
                for ln in f.read_text().splitlines() if UTT_ID.match(ln.split()[0])]

    assert lines(1) == lines(2)
    impro = [(tiny / f"Session{s}/dialog/transcriptions/Ses0{s}F_impro05a.txt").read_text()
             for s in (1, 2)]
    assert impro[0].split("]: ")[1:] != impro[1].split("]: ")[1:]  # fresh improvised text


def test_wdseg_matches_audio(tiny: Path) -> None:
    laughs = 0
    for w in sorted(tiny.glob("Session*/sentences/wav/*/*.wav")):
        rows = _wdseg(w.parents[3] / "sentences/ForcedAlignment" / w.parent.name
                      / f"{w.stem}.wdseg")
        audio, sr = sf.read(w, dtype="float64")
        n_frames = len(audio) // 160
        assert rows[0][0] == 0 and rows[0][3] == "<s>" and rows[-1][3] == "</s>"
        assert rows[-1][1] == n_frames - 1
        for (s0, e0, _, _), (s1, e1, _, _) in zip(rows, rows[1:]):
            assert s1 == e0 + 1 and e1 >= s1  # contiguous, non-empty
        for *_, word in rows[1:-1]:
            assert re.fullmatch(r"<sil>|\+\+LAUGHTER\+\+|[A-Z0-9']+(\(\d\))?", word), word
        laughs += any(r[3] == "++LAUGHTER++" for r in rows)
        power = (audio[: n_frames * 160].reshape(n_frames, 160) ** 2).mean(axis=1)
        lead = power[rows[0][0]: rows[0][1] + 1].mean()
        words = np.concatenate([power[s: e + 1] for s, e, _, wd in rows if not wd.startswith("<")])
        assert words.mean() > 5 * lead, w.stem  # speech frames are clearly louder than <s>
    assert laughs >= 1


def test_visual_descriptors(tiny: Path) -> None:
    for w in sorted(tiny.glob("Session*/sentences/wav/*/*.wav"))[:6]:
        v = np.load(w.parents[3] / "sentences/visual" / w.parent.name / f"{w.stem}.npy")
        assert v.dtype == np.float32 and v.shape == (math.ceil(sf.info(w).duration * 3), 32)
        assert np.isfinite(v).all()


def test_deterministic_bytes(tiny: Path, tmp_path: Path) -> None:
    # Another worker count and a process that has already used espeak: same bytes.
    espeak.synthesize("Warm up the engine in this process.", "en-us+m3")
    again = generate_corpus(tmp_path, corpus_seed=3, progress=False,
                            config=dataclasses.replace(TINY, workers=2))
    files_a = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (tiny / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = plan_corpus(TINY, seed=4)
    assert [u.text for d in other for u in d.utts] != [
        u.text for d in plan_corpus(TINY, seed=3) for u in d.utts]


def _largest_remainder(weights: dict[str, float], n: int) -> dict[str, int]:
    total = sum(weights.values())
    exact = {k: n * v / total for k, v in weights.items()}
    out = {k: math.floor(v) for k, v in exact.items()}
    by_fraction = sorted(exact, key=lambda k: exact[k] - out[k], reverse=True)
    for k in by_fraction[: n - sum(out.values())]:
        out[k] += 1
    return out


def test_label_counts_follow_config(tiny: Path) -> None:
    got = Counter(SUMMARY.match(b[0]).group(4) for b in _all_blocks(tiny).values())
    want = _largest_remainder(IEMOCAP_COUNTS, TINY.n_utterances)
    assert got == Counter({k: v for k, v in want.items() if v})
    # On the demo plan (no audio) the shares are IEMOCAP's within rounding.
    demo = Counter(u.label for d in plan_corpus(CORPUS_SIZES["demo"], seed=0) for u in d.utts)
    n = sum(demo.values())
    for code, count in IEMOCAP_COUNTS.items():
        assert abs(demo[code] - n * count / 10039) <= 1, code


def test_custom_weights_and_bad_config() -> None:
    cfg = SynthConfig(n_sessions=1, dialogs=(("F", "impro01"),), utts_per_dialog=10,
                      impro_jitter=0.0, label_weights={"ang": 3, "sad": 1})
    got = Counter(u.label for d in plan_corpus(cfg, 0) for u in d.utts)
    assert got == {"ang": 8, "sad": 2} or got == Counter({"ang": 8, "sad": 2})
    with pytest.raises(ValueError, match="unknown codes"):
        SynthConfig(label_weights={"joy": 1})
    with pytest.raises(ValueError, match="n_sessions"):
        SynthConfig(n_sessions=6)


def test_refuses_to_overwrite_a_real_corpus(tmp_path: Path) -> None:
    (tmp_path / "IEMOCAP_full_release" / "Session1").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not a synthetic corpus"):
        generate_corpus(tmp_path, config=TINY, progress=False)
    with pytest.raises(ValueError, match="unknown corpus_size 'huge'"):
        generate_corpus(tmp_path / "x", corpus_size="huge", progress=False)
    with pytest.raises(TypeError, match="preset"):  # the keyword before the rename is gone (issue 30)
        generate_corpus(tmp_path / "x", preset="smoke", progress=False)


def test_reconcile_words_rules() -> None:
    ev = [espeak.WordEvent(0.2, 1, 1), espeak.WordEvent(0.8, 9, 5)]
    spans = espeak.reconcile_words("I am so happy.", ev, end=1.4)
    # "am" and "so" have no event: they share I's span (0.2-0.8) in three equal parts.
    assert [w.token for w in spans] == ["I", "am", "so", "happy."]
    np.testing.assert_allclose([(w.start, w.end) for w in spans],
                               [(0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.4)], rtol=0, atol=1e-9)
    # An event whose position falls inside a token ("can't" reported with length 3) still
    # belongs to it; two events in one token keep the earliest onset.
    ev = [espeak.WordEvent(0.0, 1, 3), espeak.WordEvent(0.1, 4, 1), espeak.WordEvent(0.5, 7, 2)]
    got = espeak.reconcile_words("can't go", ev, 0.9)
    assert [w.token for w in got] == ["can't", "go"]
    np.testing.assert_allclose([(w.start, w.end) for w in got], [(0.0, 0.5), (0.5, 0.9)],
                               rtol=0, atol=1e-9)
    assert espeak.reconcile_words("  ", [], 1.0) == []


def test_espeak_synthesis_word_spans() -> None:
    audio, spans = espeak.synthesize("I am here. I can't wait, it's five o'clock!", "en-us")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert [w.token for w in spans] == "I am here. I can't wait, it's five o'clock!".split()
    starts = [w.start for w in spans]
    assert starts == sorted(starts) and all(w.end > w.start for w in spans)
    assert spans[-1].end <= len(audio) / 16000 + 1e-6
    # Slower speech lasts longer. (Repeated calls in one process are NOT sample-identical:
    # espeak keeps state between calls; the generator's determinism test covers that.)
    slow, _ = espeak.synthesize("I am here.", "en-us", rate=100)
    fast, _ = espeak.synthesize("I am here.", "en-us", rate=300)
    assert len(slow) > 1.8 * len(fast)
    with pytest.raises(espeak.EspeakError, match="voice"):
        espeak.synthesize("hi", voice="xx-nonexistent")


def test_prepare_iemocap_reads_back_the_plan(tiny: Path) -> None:
    """The real loader recovers every planned utterance with its speaker, script and label."""
    from workbench.corpus.iemocap import prepare_iemocap

    m = prepare_iemocap(tiny, corpus_name="synthetic")
    plans = plan_corpus(TINY, seed=3)
    expected = {u.utt_id: (d, u) for d in plans for u in d.utts}
    assert sorted(m.ids) == sorted(expected)
    for utt in m:
        d, plan = expected[utt.id]
        assert utt.speaker == f"Ses{d.session:02d}{plan.speaker_letter}"
        assert utt.kind == d.kind
        assert utt.script == ("script" + d.name.split("_script")[1][:2] if d.kind == "scripted" else None)
        assert utt.label == plan.label
        assert utt.label_votes == {f"C-E{i + 1}": v for i, v in enumerate(plan.votes)}
        assert utt.corpus == "synthetic" and utt.words
    skipped = [s.item for s in m.report.skipped]
    assert sorted(skipped) == sorted(d.extra_line[0] for d in plans if d.extra_line)


def test_synthetic_root_takes_corpus_size_and_corpus_seed(tmp_path: Path) -> None:
    """The notebooks' names (the old preset=/seed= are gone: issue 30)."""
    from workbench.corpus.load import synthetic_root

    root = tmp_path / "synthetic-full-seed5" / "IEMOCAP_full_release"
    root.mkdir(parents=True)
    (root / "SYNTHETIC_README.txt").write_text("stand-in: an existing corpus is not generated again")
    assert synthetic_root(corpus_size="full", corpus_seed=5, data_dir=tmp_path) == root
    assert synthetic_root("full", 5, tmp_path) == root
    with pytest.raises(TypeError, match="preset"):
        synthetic_root(preset="full", seed=5, data_dir=tmp_path)


def test_loud_utterances_are_scaled_below_full_scale_not_clipped(tmp_path: Path) -> None:
    """A gain that drives every utterance past full scale: the files peak at PEAK_LEVEL, keep
    their shape (not a flat top), and the loader warns about none of them."""
    import warnings

    from workbench.corpus.synthetic import PEAK_LEVEL
    from workbench.features.audio_io import AudioWarning, load_audio

    loud = dataclasses.replace(TINY, n_sessions=1, dialogs=TINY.dialogs[:1], utts_per_dialog=4, gain_db=(14.0, 16.0))
    root = generate_corpus(tmp_path, corpus_seed=3, progress=False, config=loud)
    wavs = sorted(root.glob("Session*/sentences/wav/*/*.wav"))
    assert len(wavs) >= 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", AudioWarning)
        for w in wavs:
            y = load_audio(w)
            assert np.abs(y).max() == pytest.approx(PEAK_LEVEL, abs=2 / 32767)
            assert np.mean(np.abs(y) >= PEAK_LEVEL - 1 / 32767) < 0.001  # one peak, not a clipped plateau


def test_two_generations_of_one_corpus_at_once_both_succeed(tiny: Path, tmp_path: Path) -> None:
    """Two processes generating one corpus at once (a batch and a test) once shared one partial
    folder, and both failed mid-way (a wav 'System error', a transcript gone); now each writes
    its own and the corpus is whole. A partial folder of a dead process is removed."""
    import subprocess
    import sys

    stale = tmp_path / ".IEMOCAP_full_release.partial-999999999"  # no such process
    stale.mkdir()
    code = ("import sys; from pathlib import Path; sys.path[:0] = [sys.argv[2]]\n"
            "from workbench.corpus.synthetic import generate_corpus, SynthConfig\n"
            "cfg = SynthConfig(n_sessions=2, dialogs=(('F', 'impro05a'), ('M', 'script01_1')), utts_per_dialog=8,"
            " laughter_prob=0.25, extra_transcript_prob=1.0, workers=1)\n"
            "generate_corpus(Path(sys.argv[1]), corpus_seed=3, progress=False, config=cfg)")
    root = str(Path(__file__).resolve().parents[2])
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), root], stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert not list(tmp_path.glob(".IEMOCAP_full_release.partial*"))
    made = tmp_path / "IEMOCAP_full_release"
    files = sorted(p.relative_to(made) for p in made.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    assert all((made / f).read_bytes() == (tiny / f).read_bytes() for f in files)
