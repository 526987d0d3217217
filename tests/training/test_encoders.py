"""Choosing the encoders of a run: recipes, RunSpec, ``workbench train``, and a training on a tiny BERT."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench import paths
from workbench.training.recipes import get_recipe
from workbench.training.spec import RunSpec, SpecError


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> str:
    from workbench.testing.hf_checkpoints import tiny_bert

    return str(tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture
def glove(tmp_path) -> str:
    words = "the cat sat happy sad angry".split()
    rng = np.random.default_rng(0)
    path = tmp_path / "glove.6B.5d.txt"
    path.write_text("".join(f"{w} {' '.join(f'{v:.4f}' for v in rng.normal(size=5))}\n" for w in words))
    return str(path)


def test_a_checkpoint_becomes_the_text_extractors_checkpoint(bert):
    p = get_recipe("pepino_text", "paper", text_encoder=bert)
    assert p.features["text"].extractor == "text_contextual" and p.features["text"].config == {"checkpoint": bert}
    assert f"text encoder: {bert}" in p.notes
    # the GloVe variant reads the checkpoint's input-embedding table
    s = get_recipe("pepino_text", "smoke", variant="static_text", text_encoder=bert)
    assert s.features["text"].extractor == "text_static" and s.features["text"].config == {"checkpoint": bert}
    # a hub name stays a name; without an encoder nothing changes
    assert get_recipe("xu_alignment", "demo", text_encoder="bert-base-uncased").features["text"].config == {
        "checkpoint": "bert-base-uncased"}
    assert get_recipe("pepino_text", "paper") == get_recipe("pepino_text", "paper", text_encoder=None)


def test_the_weights_hash_is_part_of_the_settings_so_of_the_run_id(tmp_path):
    """A directory overwritten with other weights is another run, not the old result."""
    from workbench.testing.hf_checkpoints import tiny_bert

    d = str(tiny_bert(tmp_path / "enc", seed=0))
    before = get_recipe("pepino_text", "smoke", text_encoder=d)
    assert "weights sha1 " in before.notes
    tiny_bert(tmp_path / "enc", seed=1)
    after = get_recipe("pepino_text", "smoke", text_encoder=d)
    assert after.features == before.features and after.to_dict() != before.to_dict()


def test_a_glove_file_swaps_the_text_input_to_text_glove(glove):
    p = get_recipe("xu_alignment", "paper", text_encoder=glove)
    assert p.features["text"].extractor == "text_glove" and p.features["text"].config == {"path": glove}
    assert p.features["audio"] == get_recipe("xu_alignment", "paper").features["audio"]
    with pytest.raises(SpecError, match=r"xu_alignment.*no-such.*GloVe file does not exist"):
        RunSpec.create("xu_alignment", "smoke", text_encoder=glove.replace("glove.6B", "no-such"))


def test_an_encoder_for_an_input_the_model_does_not_have_is_a_spec_error(bert):
    with pytest.raises(SpecError, match=r"'unimodal_audio' reads no text.*text_encoder"):
        RunSpec.create("unimodal_audio", "smoke", text_encoder=bert)
    with pytest.raises(SpecError, match=r"'mcsan' \(variant no_text\) reads no text"):
        RunSpec.create("mcsan", "smoke", variant="no_text", text_encoder=bert)
    with pytest.raises(SpecError, match=r"'pepino_text' has no self-supervised speech input.*speech_encoder"):
        RunSpec.create("pepino_text", "smoke", speech_encoder=bert)
    with pytest.raises(SpecError, match=r"'xu_alignment' has no self-supervised speech input.*frame34"):
        RunSpec.create("xu_alignment", "smoke", speech_encoder=bert)
    # a ready-made recipe takes the encoders too
    spec = RunSpec.create("pepino_text", get_recipe("pepino_text", "smoke"), text_encoder=bert)
    assert spec.settings.features["text"].config["checkpoint"] == bert


def test_a_speech_encoder_sets_the_checkpoint_of_every_speech_input(tmp_path):
    from workbench.models.registry import get_card, list_models

    ssl_models = [m for m in list_models() if any(e == "ssl_layers" for e in get_card(m).inputs.values())]
    if not ssl_models:
        pytest.skip("no model reads ssl_layers features")
    for m in ssl_models:
        p = get_recipe(m, "smoke", speech_encoder="acme/speech-base")
        speech = [k for k, f in p.features.items() if f.extractor == "ssl_layers"]
        assert speech and all(p.features[k].config["checkpoint"] == "acme/speech-base" for k in speech)


def test_workbench_train_passes_the_encoders(monkeypatch, bert, capsys):
    import workbench.training
    from workbench.cli import main

    seen = []
    monkeypatch.setattr(workbench.training, "run_crossval", lambda spec, *a, **k: seen.append(spec) or pd.DataFrame())
    assert main(["train", "pepino_text", "--recipe", "smoke", "--text-encoder", bert]) == 0
    assert seen[-1].settings.features["text"].config == {"checkpoint": bert}
    assert main(["train", "unimodal_audio", "--text-encoder", bert]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "reads no text" in err[0] and "text_encoder" in err[0]


def _smoke_corpus_or_skip() -> None:
    if not (paths.data_dir() / "synthetic-smoke-seed0" / "IEMOCAP_full_release" / "SYNTHETIC_README.txt").is_file():
        pytest.skip("smoke corpus not generated (make corpus-smoke)")


def test_pepino_text_trains_on_a_tiny_bert_and_records_it(bert, tmp_path):
    """The real path: a recipe naming the checkpoint, extraction through the feature cache,
    the model sized by the checkpoint's hidden size, the encoder in the stored run config."""
    from workbench.features.cache import FeatureCache
    from workbench.training import CorpusOptions, run_crossval

    _smoke_corpus_or_skip()
    cache = FeatureCache(tmp_path / "cache")
    spec = RunSpec.create("pepino_text", "smoke", text_encoder=bert, folds=[0], epochs=1, device="cpu")
    rows = run_crossval(spec, CorpusOptions("synthetic", size="smoke"), cache=cache, runs_root=tmp_path / "runs",
                        progress=False)
    assert len(rows) == 1 and 0.0 <= float(rows["ua"].iloc[0]) <= 1.0
    config = json.loads(rows["config_json"].iloc[0])
    assert config["features"]["text"]["config"] == {"checkpoint": bert}
    assert config["features"]["text"]["dim"] == 32 and config["model_config"]["text_dim"] == 32
    assert len(list((tmp_path / "cache" / "text_contextual").iterdir())) == 1
    # the default (MiniLM) run is another configuration: other run id
    default = RunSpec.create("pepino_text", "smoke", folds=[0], epochs=1, device="cpu")
    assert default.settings.features["text"].config == {}


def test_a_glove_file_trains_through_text_glove(glove, tmp_path):
    from workbench.features.cache import FeatureCache
    from workbench.training import CorpusOptions, run_crossval

    _smoke_corpus_or_skip()
    spec = RunSpec.create("pepino_text", "smoke", variant="static_text", text_encoder=glove, folds=[0], epochs=1,
                          device="cpu")
    rows = run_crossval(spec, CorpusOptions("synthetic", size="smoke"), cache=FeatureCache(tmp_path / "cache"),
                        runs_root=tmp_path / "runs", progress=False)
    config = json.loads(rows["config_json"].iloc[0])
    assert config["features"]["text"]["extractor"] == "text_glove" and config["model_config"]["text_dim"] == 5


@pytest.mark.parametrize("argv, message", [
    (["ssl_fusion", "--speech-encoder", "/models/wavlm-base-plus"], "'/models/wavlm-base-plus' does not exist"),
    (["ssl_fusion"], "give your checkpoint with speech_encoder (--speech-encoder)"),
    (["pepino_text", "--text-encoder", "/models/x"], "'/models/x' does not exist"),
    (["xu_alignment", "--protocol", "no_such_protocol"], "unknown protocol 'no_such_protocol'"),
])
def test_train_refuses_a_bad_request_before_generating_the_corpus(monkeypatch, tmp_path, capsys, argv, message):
    """A missing checkpoint, or a protocol that does not exist, is reported before any corpus is
    generated or loaded (the demo corpus takes minutes to generate)."""
    import workbench.corpus.load
    from workbench.cli import main

    def no_corpus(*args, **kwargs):
        raise AssertionError("the corpus was generated or loaded before the request was checked")

    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(workbench.corpus.load, "load_corpus", no_corpus)
    monkeypatch.setattr("workbench.corpus.synthetic.generate_corpus", no_corpus)
    monkeypatch.setattr("workbench.corpus.iemocap.prepare_iemocap", no_corpus)
    assert main(["train", *argv, "--recipe", "demo", "--quiet", "--runs-root", str(tmp_path / "runs")]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "data").exists()


def test_bundle_refuses_a_model_without_its_checkpoint_before_the_corpus(monkeypatch, tmp_path, capsys):
    from workbench.cli import main

    monkeypatch.setattr("workbench.corpus.synthetic.generate_corpus",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("corpus generated")))
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path / "data"))
    assert main(["bundle", "ssl_baseline", "--out", str(tmp_path / "b.npz"), "--quiet"]) == 1
    assert "--speech-encoder" in capsys.readouterr().err
