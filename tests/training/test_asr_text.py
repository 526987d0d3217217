"""Training on ASR text (workbench.training.texts): the model reads the recogniser's transcript and
word timings in training, testing and reloading; rows say so and carry the test WER; empty
transcripts are kept and counted; transcripts are cached.

Most tests replace the recogniser by a fake (``_asr_work``, decoding in this process) and the
feature cache by features computed from the manifest's text, so they check which text reaches
the datasets in a second; one test decodes real speech with pocketsphinx.
"""

from __future__ import annotations

import json
import warnings
import zlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from workbench.cli import main
from workbench.corpus.manifest import Manifest
from workbench.features import asr as asr_mod
from workbench.features.words import split_words
from workbench.models import get_card, list_models
from workbench.testing import make_manifest
from workbench.training import crossval as crossval_mod
from workbench.training import runs as runs_mod
from workbench.training import texts as texts_mod
from workbench.training.bundle import BundleError, crossval_from_bundle, save_bundle
from workbench.training.crossval import CrossValError, FoldJob, run_crossval, train_fold
from workbench.training.data import SERDataset, collate, word_spans_frames
from workbench.training.inputs import InputFeatures
from workbench.training.recipes import FeatureSpec, Recipe, get_recipe
from workbench.training.results import RESULT_COLUMNS, read_results
from workbench.training.runs import load_run
from workbench.training.spec import CorpusOptions, RunSpec, SpecError
from workbench.training.texts import (
    TextSourceError,
    TextSourceWarning,
    pooled_wer,
    reference_timings,
    text_source_of,
    texts_for,
)

FRAME = 0.04  # seconds per fake audio frame
TEXT_DIM = 5
EMPTY_ID = "Ses01F_impro02_F000"  # the fake recogniser hears nothing in this one


# --------------------------------------------------------------------------- fakes
def fake_asr(utt) -> dict:
    """The fake recogniser: the oracle words with the first replaced and the last dropped, timed
    0.1 + 0.2 i .. 0.25 + 0.2 i (not the corpus's timing); nothing for EMPTY_ID."""
    fake_asr.calls += 1
    words = [] if utt.id == EMPTY_ID else ["banana", *split_words(utt.text)[1:-1]]
    timed = [(w, round(0.1 + 0.2 * i, 3), round(0.25 + 0.2 * i, 3)) for i, w in enumerate(words)]
    return dict(asr_text=" ".join(words), words=json.dumps(timed), decode_s=0.0, audio_s=float(utt.duration))


fake_asr.calls = 0


def word_vector(word: str) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(word.encode())).normal(size=TEXT_DIM).astype(np.float32)


def text_rows(text: str) -> np.ndarray:
    """What the fake text extractor gives: one vector per word, one zero row for no words (as
    the MiniLM and GloVe extractors do, tests/features/test_text.py)."""
    words = split_words(text)
    return np.stack([word_vector(w) for w in words]) if words else np.zeros((1, TEXT_DIM), np.float32)


def fake_load_input_features(seen: list):
    """A stand-in for load_input_features: features computed from the manifest it is given."""
    def load(manifest, settings, inputs, cache=None, progress=True):
        seen.append(manifest)
        audio = {u.id: np.random.default_rng(zlib.crc32(u.id.encode())).normal(
            size=(max(2, int(u.duration / FRAME)), 3)).astype(np.float32) for u in manifest}
        text = {u.id: text_rows(u.text) for u in manifest}
        feats = {"audio": InputFeatures(FeatureSpec("fake_audio"), audio, FRAME, 3),
                 "text": InputFeatures(FeatureSpec("fake_text"), text, None, TEXT_DIM)}
        return {k: v for k, v in feats.items() if k in inputs}
    return load


@pytest.fixture
def corpus(tmp_path) -> Manifest:
    """An IEMOCAP-shaped manifest whose utterances have their own (tiny) audio files, so the
    transcript cache's audio hashes differ, and no word timings."""
    m = make_manifest(sessions=3, seed=0)
    utts = []
    for k, u in enumerate(m):
        path = tmp_path / "wav" / f"{u.id}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, np.full(160, (k + 1) / 1000, np.float32), 16000)
        utts.append(type(u)(**{**u.to_dict(), "audio_path": str(path), "start": 0.0, "words": None}))
    return Manifest(utts)


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    """Fake recogniser and features; returns what they saw: manifests given to feature loading,
    the fold datasets built, and the cache root."""
    fake_asr.calls = 0
    monkeypatch.setattr(asr_mod, "_asr_work", fake_asr)
    monkeypatch.setattr(texts_mod, "default_jobs", lambda: 1)  # decode here, where the fake is
    seen = SimpleNamespace(manifests=[], folds=[], cache=SimpleNamespace(root=tmp_path / "cache"))
    monkeypatch.setattr(crossval_mod, "load_input_features", fake_load_input_features(seen.manifests))
    monkeypatch.setattr(runs_mod, "load_input_features", fake_load_input_features(seen.manifests))
    real = crossval_mod.fold_datasets

    def recording(*args, **kwargs):
        data = real(*args, **kwargs)
        seen.folds.append(data)
        return data

    monkeypatch.setattr(crossval_mod, "fold_datasets", recording)
    return seen


def xu_spec(text_source: str, model: str = "xu_alignment_hard") -> RunSpec:
    """Xu's model with the hard (word span) alignment, which reads audio, text and word spans."""
    recipe = Recipe(name="test", model=model, features={"audio": FeatureSpec("fake_audio"),
                                                                      "text": FeatureSpec("fake_text")},
                         lr=1e-2, batch_size=8, epochs=1, protocol="loso_session",
                         model_config={"hidden": 8, "heads": 2, "attn_dim": 4, "fc_dim": 8})
    return RunSpec.create(model, recipe, folds=[0], text_source=text_source, device="cpu")


def independent_wer(corpus: Manifest, ids) -> float:
    """Pooled WER of the fake recogniser on ``ids``, counted with jiwer directly."""
    import jiwer

    errors = n_ref = 0
    for i in ids:
        ref = split_words(corpus[i].text)
        hyp = split_words(fake_asr(corpus[i])["asr_text"])
        fake_asr.calls -= 1
        if not hyp:
            errors += len(ref)
        else:
            o = jiwer.process_words(" ".join(ref), " ".join(hyp))
            errors += o.substitutions + o.deletions + o.insertions
        n_ref += len(ref)
    return errors / n_ref


# --------------------------------------------------------------------------- tests
def test_an_asr_run_trains_and_tests_on_asr_text_and_says_so(corpus, fakes, tmp_path):
    with pytest.warns(TextSourceWarning, match=r"1 of \d+ transcript\(s\) are empty.*kept"):
        rows = run_crossval(xu_spec("asr"), manifest=corpus, cache=fakes.cache, runs_root=tmp_path / "runs",
                            progress=False)
    assert fake_asr.calls == len(corpus)
    # Features were made from the ASR transcripts.
    (given,) = fakes.manifests
    assert all(given[u.id].text == fake_asr(u)["asr_text"] for u in corpus)
    fake_asr.calls -= len(corpus)
    data = fakes.folds[0]
    assert EMPTY_ID in data.train.ids + data.test.ids  # the empty transcript is kept
    for ds in (data.train, data.test):
        for k, i in enumerate(ds.ids):
            asr = json.loads(fake_asr(corpus[i])["words"])
            fake_asr.calls -= 1
            item = ds[k]
            # text rows are those of the ASR words (normalise "none": as extracted)
            np.testing.assert_allclose(item["text"].numpy(), text_rows(" ".join(w for w, _, _ in asr)))
            # word spans come from the recogniser's timings (the corpus has none: they would be empty)
            expected = word_spans_frames([w for w, _, _ in asr], asr, FRAME, item["audio"].shape[0],
                                         item["text"].shape[0])
            np.testing.assert_array_equal(item["word_spans"].numpy(), expected)
            if i == EMPTY_ID:
                assert item["text"].shape[0] == 1 and not item["text"].any() and not item["word_spans"].any()
            elif len(asr) > 1:
                assert item["word_spans"][:, 1].max() > 0
    (row,) = rows.to_dict(orient="records")
    assert list(rows.columns) == RESULT_COLUMNS
    assert row["text_source"] == "asr" and json.loads(row["config_json"])["asr_engine"] == asr_mod.asr_engine()
    test_ids = list(data.test.ids)
    assert row["test_wer"] == pytest.approx(independent_wer(corpus, test_ids), abs=1e-12)
    report = rows.attrs["texts"]
    assert (report.n_empty, report.empty_ids, report.decoded) == (1, (EMPTY_ID,), len(corpus))
    assert report.wer == pytest.approx(independent_wer(corpus, corpus.ids), abs=1e-12)
    assert read_results(tmp_path / "runs").loc[0, "text_source"] == "asr"

    # Reloading the run gives ASR text again, from the transcript cache: nothing is decoded.
    fake_asr.calls = 0
    run = load_run(row["run_dir"], corpus, cache=fakes.cache)
    assert fake_asr.calls == 0 and text_source_of(run.manifest) == "asr"
    assert [u.text for u in run.manifest] == [given[i].text for i in run.manifest.ids]
    assert run.test.ids == test_ids
    for k in range(len(run.test)):
        np.testing.assert_array_equal(run.test[k]["word_spans"].numpy(), data.test[k]["word_spans"].numpy())
        np.testing.assert_allclose(run.test[k]["text"].numpy(), data.test[k]["text"].numpy())


def test_an_oracle_run_reads_the_human_transcript(corpus, fakes, tmp_path):
    rows = run_crossval(xu_spec("oracle"), manifest=corpus, cache=fakes.cache, runs_root=tmp_path / "runs",
                        progress=False)
    assert fake_asr.calls == 0
    (given,) = fakes.manifests
    assert [u.text for u in given] == [u.text for u in corpus]
    row = rows.iloc[0]
    assert row["text_source"] == "oracle" and np.isnan(row["test_wer"])
    assert "asr_engine" not in json.loads(row["config_json"])
    assert fakes.folds[0].test[0]["text"].shape[0] == max(1, len(split_words(corpus[fakes.folds[0].test.ids[0]].text)))


def test_the_row_cannot_claim_a_text_source_the_model_did_not_read(corpus, fakes, tmp_path):
    asr, _ = texts_for(corpus, "asr", cache_path=tmp_path / "asr.parquet", progress=False, warn=False)
    feats = fake_load_input_features([])(corpus, None, ("audio", "text"))
    # Features made from oracle text do not become an ASR run, nor the other way round.
    with pytest.raises(CrossValError, match="text_source='asr'.*'oracle' text"):
        run_crossval(xu_spec("asr"), manifest=corpus, features=feats, runs_root=tmp_path / "r", progress=False)
    with pytest.raises(CrossValError, match="text_source='oracle'.*'asr' text"):
        run_crossval(xu_spec("oracle"), manifest=asr, features=feats, runs_root=tmp_path / "r", progress=False)
    # train_fold reads the source off the manifest: a spec that says otherwise is refused.
    from workbench.protocols import make_folds

    folds = tuple(make_folds(corpus, "loso_session"))
    job = FoldJob(xu_spec("asr"), CorpusOptions(), folds, 0, 0, ("neu", "hap", "ang", "sad"), tmp_path / "r")
    with pytest.raises(CrossValError, match="asks for text_source='asr' but the manifest carries 'oracle'"):
        train_fold(job, corpus, feats, progress=False)
    # An ASR manifest with features made from it trains as given (no decoding).
    fake_asr.calls = 0
    asr_feats = fake_load_input_features([])(asr, None, ("audio", "text"))
    rows = run_crossval(xu_spec("asr"), manifest=asr, features=asr_feats, runs_root=tmp_path / "r", progress=False)
    assert fake_asr.calls == 0 and rows.iloc[0]["text_source"] == "asr"


def test_texts_for_round_trip_and_bad_sources(corpus, fakes, tmp_path):
    asr, report = texts_for(corpus, "asr", cache_path=tmp_path / "asr.parquet", progress=False, warn=False)
    u = asr[corpus.ids[3]]
    assert u.text.startswith("banana") and u.words[0] == ("banana", 0.1, 0.25)
    assert reference_timings(u) == corpus[u.id].words  # None here: attention is scored against the corpus
    back, oracle_report = texts_for(asr, "oracle")
    assert [x.to_dict() for x in back] == [x.to_dict() for x in corpus]
    assert np.isnan(oracle_report.wer) and np.isnan(pooled_wer(back, back.ids))
    assert report.summary().startswith("text: pocketsphinx-") and "1 empty" in report.summary()
    again, _ = texts_for(asr, "asr", cache_path=tmp_path / "asr.parquet", progress=False)
    assert [x.to_dict() for x in again] == [x.to_dict() for x in asr]
    with pytest.raises(TextSourceError, match="text_source must be one of .* got 'whisper'"):
        texts_for(corpus, "whisper")
    with pytest.raises(TextSourceError, match="mixes text sources"):
        text_source_of(Manifest([asr[0], corpus[1]]))
    with pytest.raises(SpecError, match="text_source must be one of"):
        RunSpec.create("xu_alignment", "smoke", text_source="whisper")


def test_the_cli_refuses_an_unknown_text_source(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "xu_alignment", "--recipe", "smoke", "--text-source", "whisper"])
    assert e.value.code == 2
    assert "--text-source: invalid choice: 'whisper'" in capsys.readouterr().err


def test_a_bundle_holds_one_text_source(corpus, fakes, tmp_path):
    feats = fake_load_input_features([])(corpus, None, ("audio", "text"))
    path = save_bundle(tmp_path / "b.npz", corpus, feats, {"model": "xu_alignment", "corpus": "dummy"})
    with pytest.raises(BundleError, match="holds 'oracle' text.*text_source='asr'"):
        crossval_from_bundle(path, xu_spec("asr"), runs_root=tmp_path / "r", progress=False)
    asr, _ = texts_for(corpus, "asr", cache_path=tmp_path / "asr.parquet", progress=False, warn=False)
    path = save_bundle(tmp_path / "a.npz", asr, fake_load_input_features([])(asr, None, ("audio", "text")),
                       {"model": "xu_alignment", "corpus": "dummy"})
    rows = crossval_from_bundle(path, xu_spec("asr"), runs_root=tmp_path / "r", progress=False)
    assert rows.iloc[0]["text_source"] == "asr"
    assert rows.iloc[0]["test_wer"] == pytest.approx(independent_wer(corpus, fakes.folds[-1].test.ids), abs=1e-12)


def test_old_results_tables_read_without_test_wer(tmp_path):
    from workbench.training.results import append_rows, results_dir

    old = pd.DataFrame([{c: 0 for c in RESULT_COLUMNS if c not in ("test_wer", "variant")}])
    old["run_id"], old["text_source"] = "r1", "oracle"
    append_rows(results_dir(tmp_path) / "results.parquet", old)
    table = read_results(tmp_path)
    assert np.isnan(table.loc[0, "test_wer"]) and list(table.columns) == RESULT_COLUMNS


TEXT_MODELS = sorted({(m, v or "") for m in list_models() for v in [None, *get_card(m).variants]
                      if "text" in get_card(m).model_inputs(get_recipe(m, "smoke", variant=v).model_config)})


@pytest.mark.parametrize("model, variant", TEXT_MODELS, ids=[f"{m}-{v}" for m, v in TEXT_MODELS])
def test_every_text_model_reads_an_empty_transcript(model, variant):
    """An empty ASR transcript reaches a model as one zero word vector (and an empty word span):
    every model that reads text gives finite outputs and gradients for it."""
    import torch

    from workbench.testing import make_utterance
    from workbench.training.build import build_model

    recipe = get_recipe(model, "smoke", variant=variant or None)
    shapes = {"audio": SimpleNamespace(dim=6, frame_seconds=0.04), "text": SimpleNamespace(dim=TEXT_DIM, frame_seconds=None),
              "video": SimpleNamespace(dim=4, frame_seconds=0.5), "prosody": SimpleNamespace(dim=36, frame_seconds=0.04),
              "waveform": SimpleNamespace(dim=1, frame_seconds=1 / 16000)}
    torch.manual_seed(0)
    net, _ = build_model(model, recipe, None, shapes, n_classes=4)
    utts = [make_utterance(id="Ses01F_impro01_F000", text="", label="neu", duration=1.0, words=[]),
            make_utterance(id="Ses01F_impro01_F001", text="well hello there", label="ang", duration=1.0,
                           words=[("well", 0.1, 0.3), ("hello", 0.3, 0.6), ("there", 0.6, 0.9)])]
    m = Manifest(utts)
    rng = np.random.default_rng(0)
    frames = {"audio": 25, "video": 2, "prosody": 25, "waveform": 16000}
    feats = {}
    for name in net.inputs:
        if name == "text":
            feats["text"] = {u.id: text_rows(u.text) for u in utts}
        elif name == "waveform":
            feats["waveform"] = {u.id: rng.normal(size=(16000, 1)).astype(np.float32) * 0.1 for u in utts}
        elif name != "word_spans":
            feats[name] = {u.id: rng.normal(size=(frames[name], shapes[name].dim)).astype(np.float32) for u in utts}
    ds = SERDataset(m, m.ids, feats, ["neu", "hap", "ang", "sad"], word_spans="word_spans" in net.inputs,
                    audio_frame_seconds=0.04)
    assert ds[0]["text"].shape[0] == 1 and not ds[0]["text"].any()
    batch = collate([ds[0], ds[1]])
    net.train()
    out = net(**{k: v for k, v in batch.items() if k not in ("labels", "ids")})
    logits = out.logits if hasattr(out, "logits") else out["logits"]
    assert torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, batch["labels"]).backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


# --------------------------------------------------------------------------- real recogniser
def test_real_pocketsphinx_transcripts_become_the_text_and_timings(tmp_path, monkeypatch):
    """pocketsphinx on a few espeak utterances (and a silent one): the manifest's text and word
    timings are the recogniser's, the WER matches jiwer's, the silent one is kept empty, and the
    second call decodes nothing (decoder calls counted)."""
    import jiwer

    from workbench.testing import make_utterance

    espeak = pytest.importorskip("workbench.corpus.espeak", reason="speech synthesis is missing")
    sentences = ["Thank you so much for helping me today.", "I am not going back there again.", "Where is the car?"]
    utts = []
    for k, text in enumerate(sentences):
        audio, _ = espeak.synthesize(text, voice="en-us+f2")
        path = tmp_path / f"u{k}.wav"
        sf.write(path, audio, 16000, subtype="FLOAT")
        utts.append(make_utterance(id=f"Ses01F_impro01_F00{k}", audio_path=str(path), text=text,
                                   duration=len(audio) / 16000, label="neu"))
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    utts.append(make_utterance(id="Ses01F_impro01_F009", audio_path=str(silent), text="Hello there.", duration=1.0))
    m = Manifest(utts)
    calls = []
    real = asr_mod.decode_segments
    monkeypatch.setattr(asr_mod, "decode_segments", lambda dec, audio: calls.append(1) or real(dec, audio))
    cache = tmp_path / "asr.parquet"
    with pytest.warns(TextSourceWarning, match=r"1 of 4 transcript\(s\) are empty"):
        asr, report = texts_for(m, "asr", cache_path=cache, n_jobs=1, progress=False)
    assert len(calls) == 3  # the silent utterance is not decoded
    errors = n_ref = 0
    for u, a in zip(m, asr):
        res = asr_mod.transcribe(u)
        assert a.text == res.text and a.words == res.words and a.extra["oracle_text"] == u.text
        ref, hyp = split_words(u.text), split_words(res.text)
        o = jiwer.process_words(" ".join(ref), " ".join(hyp)) if hyp else None
        errors += o.substitutions + o.deletions + o.insertions if o else len(ref)
        n_ref += len(ref)
    assert asr["Ses01F_impro01_F009"].text == "" and report.empty_ids == ("Ses01F_impro01_F009",)
    assert report.wer == pytest.approx(errors / n_ref) and pooled_wer(asr, asr.ids) == pytest.approx(errors / n_ref)
    assert report.decoded == 4 and report.wer < 0.6  # espeak's f2 voice: about 0.25-0.4 measured
    calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TextSourceWarning)
        again, report2 = texts_for(m, "asr", cache_path=cache, n_jobs=1, progress=False)
    assert calls == [] and report2.decoded == 0 and [u.to_dict() for u in again] == [u.to_dict() for u in asr]
