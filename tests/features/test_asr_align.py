"""ASR and forced alignment on espeak-synthesised speech whose words and timings are known."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from workbench.corpus.manifest import Manifest
from workbench.features import align as align_mod
from workbench.features import asr as asr_mod
from workbench.features.align import align_manifest, alignment_agreement, force_align, in_dictionary, word_timing_errors
from workbench.features.asr import transcribe, transcribe_manifest, wer_summary, word_errors
from workbench.features.words import split_words
from workbench.testing.dummies import make_utterance

espeak = pytest.importorskip("workbench.corpus.espeak", reason="workbench.corpus.espeak (speech synthesis) is missing")

CLEAN = "Thank you so much for helping me today."
# Measured with en-us+f2 at rate 175: 0 word errors of 8 on this sentence (0.40 pooled over 20
# varied sentences). The bound leaves room for other pocketsphinx/espeak builds.
CLEAN_WER_BOUND = 0.25


@pytest.fixture(scope="module")
def clean():
    audio, spans = espeak.synthesize(CLEAN, voice="en-us+f2")
    return audio, spans, transcribe(audio)


def _onset_errors(result, spans):
    assert [w for w, _, _ in result.words] == split_words(" ".join(s.token for s in spans))
    return np.abs([w[1] - s.start for w, s in zip(result.words, spans)])


def test_asr_on_clean_speech(clean):
    audio, spans, res = clean
    errors, n_ref = word_errors(CLEAN, res.text)
    assert n_ref == 8 and errors / n_ref <= CLEAN_WER_BOUND, res.text
    # Word timings are real words with increasing, in-range times.
    assert res.words and all(normalised == normalised.lower() for normalised, _, _ in res.words)
    starts = [s for _, s, _ in res.words]
    assert starts == sorted(starts) and res.words[-1][2] <= len(audio) / 16000 + 0.02
    assert " ".join(w for w, _, _ in res.words) == res.text


def test_asr_silent_and_short_audio_give_empty_result():
    assert transcribe(np.zeros(16000, np.float32)).text == ""
    assert transcribe(np.zeros(400, np.float32)).words == []
    with pytest.raises(ValueError, match="NaN"):
        transcribe(np.full(16000, np.nan, np.float32))


def test_forced_alignment_matches_espeak_word_onsets(clean):
    audio, spans, _ = clean
    res = force_align(audio, CLEAN)
    assert res.method == "forced" and res.oov == [] and not any(res.interpolated)
    err = _onset_errors(res, spans)
    # espeak onsets are ground truth to within its own event granularity; 13 ms mean measured.
    assert np.mean(err <= 0.060) >= 0.8 and np.median(err) <= 0.040, err


def test_word_missing_from_dictionary_is_interpolated():
    text = "Please call zorblax when you get home tonight."
    assert not in_dictionary("zorblax") and in_dictionary("please")
    audio, spans = espeak.synthesize(text, voice="en-us+f2")
    res = force_align(audio, text)
    assert res.method == "forced" and res.oov == ["zorblax"]
    assert res.interpolated[2] and not res.interpolated[0] and not res.interpolated[-1]
    assert [w for w, _, _ in res.words] == split_words(text)
    bounds = [t for _, s, e in res.words for t in (s, e)]
    assert bounds == sorted(bounds)  # spans in order, not overlapping
    # The unknown word takes the gap its neighbours left (measured: 25 ms off espeak's onset).
    assert abs(res.words[2][1] - spans[2].start) < 0.08 and abs(res.words[3][1] - spans[3].start) < 0.08


def test_fallback_and_empty_text():
    silent = force_align(np.zeros(16000, np.float32), "hello big world")
    assert silent.method == "fallback" and all(silent.interpolated) and "silent" in silent.reason
    assert [w for w, _, _ in silent.words] == ["hello", "big", "world"]
    assert silent.words[0][1] == 0.0 and silent.words[-1][2] == pytest.approx(1.0)
    audio, _ = espeak.synthesize("blorp zibble", voice="en-us+f2")
    oov_only = force_align(audio, "Blorp zibble!")
    assert oov_only.method == "fallback" and oov_only.oov == ["blorp", "zibble"]
    assert 0 <= oov_only.words[0][1] < oov_only.words[1][1] < oov_only.words[1][2] <= len(audio) / 16000
    empty = force_align(audio, " ... [LAUGHTER]")
    assert empty.method == "empty" and empty.words == []


def test_manifest_level_cache_and_agreement(clean, tmp_path, monkeypatch):
    audio, spans, res = clean
    wav = tmp_path / "Session1" / "sentences" / "wav" / "d" / "u.wav"
    wav.parent.mkdir(parents=True)
    sf.write(wav, audio, 16000, subtype="FLOAT")
    other = tmp_path / "other.wav"
    sf.write(other, espeak.synthesize("No.", voice="en-us")[0], 16000, subtype="FLOAT")
    ref_words = [(s.token.upper().strip("."), s.start, s.end) for s in spans]
    m = Manifest([make_utterance(id="Ses01F_impro01_F000", audio_path=str(other), text="No."),
                  make_utterance(id="Ses01F_impro01_F001", audio_path=str(wav), text=CLEAN,
                                 duration=len(audio) / 16000, words=ref_words)])
    cache = tmp_path / "cache" / "asr.parquet"
    df = transcribe_manifest(m, progress=False, cache_path=cache)
    assert list(df["id"]) == m.ids and cache.is_file()
    # Decoding is independent of what was decoded before (feature state is reset).
    assert df.loc[1, "asr_text"] == res.text and df.loc[1, "words"] == res.words
    assert df.loc[1, "wer"] == pytest.approx(df.loc[1, "errors"] / 8)
    summary = wer_summary(df)
    assert summary.loc["all", "n_ref"] == 9 and summary.loc["Ses01F", "n_utts"] == 2

    def boom(utt):
        raise AssertionError("cache miss")

    monkeypatch.setattr(asr_mod, "_asr_work", boom)
    again = transcribe_manifest(m, progress=False, cache_path=cache)  # every row from the cache
    pd.testing.assert_frame_equal(again, df)

    al = align_manifest(m, progress=False, cache_path=tmp_path / "cache" / "align.parquet")
    assert list(al["method"]) == ["forced", "forced"] and al.loc[1, "n_words"] == 8
    monkeypatch.setattr(align_mod, "_align_work", boom)
    assert align_manifest(m, progress=False, cache_path=tmp_path / "cache" / "align.parquet")["words"].tolist() \
        == al["words"].tolist()

    table = word_timing_errors(al, m)
    assert len(table) == 8 and (table["word"] == split_words(CLEAN)).all()
    ag = alignment_agreement(al, m)
    assert ag["n_utts"] == 1 and ag["n_words"] == 8
    assert ag["mean_onset_ms"] == pytest.approx(table["onset_err_ms"].abs().mean())
    assert ag["onset_within_50ms"] >= 0.8
    none = alignment_agreement(al, {})
    assert none["n_words"] == 0 and none["mean_onset_ms"] is None

    # A changed audio file is a cache miss: decoded again (here: the boom).
    sf.write(other, np.concatenate([audio, audio]), 16000, subtype="FLOAT")
    with pytest.raises(AssertionError, match="cache miss"):
        transcribe_manifest(m, progress=False, cache_path=cache)


def _warn_clipped(utt):
    """A module-level work function (spawned workers import it) that raises an AudioWarning."""
    import warnings

    from workbench.features.audio_io import AudioWarning

    warnings.warn(f"utterance {utt.id!r}: clipped", AudioWarning)
    return {"value": utt.id}


def test_worker_audio_warnings_reach_the_parents_summary():
    import warnings

    from workbench.features.asr import _run_work
    from workbench.features.audio_io import AudioWarning, summarised_audio_warnings
    from workbench.testing import make_utterance

    todo = [(f"k{i}", make_utterance(id=f"Ses01F_impro01_F00{i}")) for i in range(3)]
    rows: list[dict] = []

    class Bar:
        def update(self):
            pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with summarised_audio_warnings("ASR"):
            _run_work(todo, _warn_clipped, 2, rows, Bar())
    audio = [str(c.message) for c in caught if c.category is AudioWarning]
    assert len(audio) == 1 and audio[0].startswith("ASR: 3 audio issue(s):"), audio
    assert sorted(r["value"] for r in rows) == [u.id for _, u in todo]


# --------------------------------------------------------------------------- resumable cache
def _counting_work(utt):
    """A module-level fake decoder: counts its calls, stops (as Ctrl-C would) when told to."""
    _counting_work.calls.append(utt.id)
    if utt.id == _counting_work.interrupt_at:
        raise KeyboardInterrupt
    if _counting_work.check is not None:
        _counting_work.check(len(_counting_work.calls))
    return dict(asr_text=f"word{len(utt.id)}", words="[]", decode_s=0.0, audio_s=1.0)


def _wav_manifest(tmp_path, n: int) -> Manifest:
    utts = []
    for k in range(n):
        path = tmp_path / f"u{k}.wav"
        sf.write(path, np.full(160, (k + 1) / 1000, np.float32), 16000)
        utts.append(make_utterance(id=f"Ses01F_impro01_F{k:03d}", audio_path=str(path), duration=0.01))
    return Manifest(utts)


def test_transcription_writes_its_cache_in_chunks_and_resumes_after_an_interrupt(tmp_path, monkeypatch):
    m = _wav_manifest(tmp_path, 7)
    cache = tmp_path / "asr.parquet"
    monkeypatch.setattr(asr_mod, "_asr_work", _counting_work)
    monkeypatch.setattr(asr_mod, "FLUSH_ROWS", 2)
    seen_on_disk = []

    def check(n_calls):  # while decoding runs, finished chunks are on disk already (a kill keeps them)
        seen_on_disk.append((n_calls, len(pd.read_parquet(cache)) if cache.is_file() else 0))

    _counting_work.calls, _counting_work.interrupt_at, _counting_work.check = [], m.ids[5], check
    with pytest.raises(KeyboardInterrupt):
        transcribe_manifest(m, progress=False, cache_path=cache)
    assert seen_on_disk == [(1, 0), (2, 0), (3, 2), (4, 2), (5, 4)]
    assert len(pd.read_parquet(cache)) == 5  # the interrupt flushed the fifth row too
    _counting_work.calls, _counting_work.interrupt_at, _counting_work.check = [], None, None
    df = transcribe_manifest(m, progress=False, cache_path=cache)
    assert _counting_work.calls == m.ids[5:] and df.attrs["decoded"] == 2  # only what was missing
    assert list(df["asr_text"]) == [f"word{len(i)}" for i in m.ids]
    _counting_work.calls = []
    assert transcribe_manifest(m, progress=False, cache_path=cache).attrs["decoded"] == 0
    assert _counting_work.calls == []


def test_the_transcript_cache_lives_in_the_feature_cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "c"))
    assert asr_mod.asr_cache_path() == tmp_path / "c" / "asr.parquet"
    assert asr_mod.asr_cache_path(tmp_path / "x") == tmp_path / "x" / "asr.parquet"
    assert asr_mod.asr_engine().startswith("pocketsphinx-")


def test_real_decoder_calls_are_not_repeated_for_cached_audio(clean, tmp_path, monkeypatch):
    """Two espeak utterances through pocketsphinx: 2 decoder calls, then none from the cache."""
    audio, _, res = clean
    utts = []
    for k, (a, text) in enumerate([(audio, CLEAN), (espeak.synthesize("Where is the car?", voice="en-us+f2")[0],
                                                    "Where is the car?")]):
        sf.write(tmp_path / f"s{k}.wav", a, 16000, subtype="FLOAT")
        utts.append(make_utterance(id=f"Ses01F_impro01_F00{k}", audio_path=str(tmp_path / f"s{k}.wav"), text=text,
                                   duration=len(a) / 16000))  # the whole file (the default is 2 s)
    m = Manifest(utts)
    calls = []
    real = asr_mod.decode_segments
    monkeypatch.setattr(asr_mod, "decode_segments", lambda dec, a: calls.append(1) or real(dec, a))
    first = transcribe_manifest(m, progress=False, cache_path=tmp_path / "asr.parquet")
    assert len(calls) == 2 and first.attrs["decoded"] == 2 and first.loc[0, "asr_text"] == res.text
    calls.clear()
    second = transcribe_manifest(m, progress=False, cache_path=tmp_path / "asr.parquet")
    assert calls == [] and second.attrs["decoded"] == 0
    pd.testing.assert_frame_equal(second, first)
