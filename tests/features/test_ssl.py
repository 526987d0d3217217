"""The ``ssl_layers`` extractor on tiny random wav2vec 2.0 / HuBERT / WavLM checkpoints saved in
tmp_path: real loading, layer selection against Hugging Face's own hidden states, chunking,
padded batches, resampling, caching by weights, and the errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from workbench.corpus.manifest import Manifest
from workbench.features import get_extractor
from workbench.features.audio_io import AudioWarning
from workbench.features.cache import FeatureCache
from workbench.features.checkpoints import CheckpointError
from workbench.features.ssl import SslConfigError
from workbench.testing import make_utterance
from workbench.testing.ssl_checkpoints import tiny_speech_model

SR = 16000


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssl")
    out = {arch: tiny_speech_model(root / arch, arch) for arch in ("wav2vec2", "hubert", "wavlm")}
    out["layer"] = tiny_speech_model(root / "layer", "wav2vec2", feat_extract_norm="layer")
    return out


def signal(seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f = rng.uniform(120, 300)
    return (0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def wav_utt(tmp_path, y, sr=SR, name="Ses01F_impro01_F000"):
    path = tmp_path / f"{name}.wav"
    sf.write(path, y, sr, subtype="FLOAT")
    return make_utterance(id=name, audio_path=str(path), duration=len(y) / sr)


def hf_hidden_states(path, y: np.ndarray) -> list[np.ndarray]:
    """Hugging Face's own pipeline: its feature extractor (normalisation) and output_hidden_states."""
    from transformers import AutoFeatureExtractor, AutoModel

    fe = AutoFeatureExtractor.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    x = fe(y, sampling_rate=SR, return_tensors="pt")["input_values"]
    with torch.no_grad():
        return [h[0].numpy() for h in model(x, output_hidden_states=True).hidden_states]


@pytest.mark.parametrize("arch", ["wav2vec2", "hubert", "wavlm"])
def test_selected_layers_equal_the_models_hidden_states(tmp_path, ckpts, arch):
    y = signal(2.3, seed=1)
    u = wav_utt(tmp_path, y)
    ext = get_extractor("ssl_layers", checkpoint=str(ckpts[arch]), layers=[2, 0], device="cpu")
    assert ext.layers == (2, 0) and ext.dim == 2 * 32 and ext.frame_seconds == pytest.approx(0.02)
    out = ext.extract(u)
    ref = hf_hidden_states(ckpts[arch], sf.read(u.audio_path, dtype="float32")[0])
    frames = 1 + (len(y) - 400) // 320  # 25 ms receptive field every 20 ms
    assert out.shape == (frames, 64) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :32], ref[2], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(out[:, 32:], ref[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_only_the_layers_up_to_the_deepest_selected_run(tmp_path, norm):
    """A subset of early layers runs a truncated encoder, with the full model's hidden states
    (also where a stable-layer-norm encoder normalises its last output)."""
    from workbench.features.ssl import load_speech_encoder

    path = tiny_speech_model(tmp_path / norm, "wav2vec2", feat_extract_norm=norm, layers=4)
    y = signal(1.6, seed=4)
    ref = hf_hidden_states(path, y)
    assert len(ref) == 5
    for layers, runs in (([1], 1 if norm == "group" else 2), ([2, 0], 2 if norm == "group" else 3), ([4, 3], 4)):
        ext = get_extractor("ssl_layers", checkpoint=str(path), layers=layers, device="cpu")
        out = ext.compute([y])[0]
        np.testing.assert_allclose(out, np.concatenate([ref[i] for i in layers], axis=1), atol=1e-5, rtol=1e-4)
        assert len(load_speech_encoder(ext.info, "cpu", runs).encoder.layers) == runs


def test_all_layers_by_default_and_short_clips_get_one_frame(tmp_path, ckpts):
    ext = get_extractor("ssl_layers", checkpoint=str(ckpts["wav2vec2"]), device="cpu")
    assert ext.layers == (0, 1, 2) and ext.n_layers == 3 and ext.dim == 96
    y = signal(1.0)
    ref = hf_hidden_states(ckpts["wav2vec2"], y)
    np.testing.assert_allclose(ext.compute([y])[0], np.concatenate(ref, axis=1), atol=1e-5, rtol=1e-4)
    with pytest.warns(AudioWarning, match="shorter"):
        short = ext.extract(wav_utt(tmp_path, signal(0.01)))  # 160 samples < the 400 of one frame
    assert short.shape == (1, 96)


def test_chunks_equal_the_model_on_their_window_and_keep_the_frame_grid(ckpts):
    """Chunked extraction equals, chunk by chunk, the model run on the chunk plus its context
    (the module docstring's statement), and has the unchunked frame count."""
    path = ckpts["wav2vec2"]
    y = signal(7.37, seed=2)
    whole = get_extractor("ssl_layers", checkpoint=str(path), device="cpu", chunk_seconds=100.0).compute([y])[0]
    chunked = get_extractor("ssl_layers", checkpoint=str(path), device="cpu", chunk_seconds=2.0,
                            chunk_context_seconds=0.5).compute([y])[0]
    assert chunked.shape == whole.shape == (1 + (len(y) - 400) // 320, 96)
    # independent: Hugging Face on each window of the normalised utterance
    from transformers import AutoModel

    model = AutoModel.from_pretrained(path).eval()
    z = (y - y.mean()) / np.sqrt(y.var() + 1e-7)
    total, chunk, ctx = len(whole), 100, 25
    for a in range(0, total, chunk):
        b = min(total, a + chunk)
        lo, hi = max(0, a - ctx), min(total, b + ctx)
        with torch.no_grad():
            hs = model(torch.from_numpy(z[lo * 320:(hi - 1) * 320 + 400])[None], output_hidden_states=True).hidden_states
        ref = torch.cat(hs, dim=-1)[0].numpy()
        assert len(ref) == hi - lo
        np.testing.assert_allclose(chunked[a:b], ref[a - lo:b - lo], atol=1e-5, rtol=1e-4)
    # and it is not the one-pass result (attention and the group norm see the whole utterance)
    assert not np.allclose(chunked, whole, atol=1e-3)


def test_chunking_keeps_the_local_layer_exact_with_a_per_frame_front_end(ckpts):
    """With a per-frame ("layer") normalised front end, hidden state 0 (CNN + positional
    convolution, 16 frames wide) depends only on nearby audio: with 0.2 s (10 frames) of context
    the chunked result equals one pass on every frame; the transformer layers differ (global
    attention), which is why chunks get context at all."""
    path = ckpts["layer"]
    y = signal(6.0, seed=3)
    whole = get_extractor("ssl_layers", checkpoint=str(path), device="cpu", chunk_seconds=100.0).compute([y])[0]
    chunked = get_extractor("ssl_layers", checkpoint=str(path), device="cpu", chunk_seconds=1.5,
                            chunk_context_seconds=0.2).compute([y])[0]
    np.testing.assert_allclose(chunked[:, :32], whole[:, :32], atol=1e-4, rtol=1e-4)
    assert not np.allclose(chunked[:, 64:], whole[:, 64:], atol=1e-3)


def test_padded_batches_with_the_mask_equal_one_at_a_time(ckpts):
    ys = [signal(s, seed=i) for i, s in enumerate((0.7, 2.9, 1.3, 2.2, 0.45))]
    ext = get_extractor("ssl_layers", checkpoint=str(ckpts["layer"]), device="cpu", batch_size=4)
    assert ext.info.attention_mask  # the per-frame front end's feature extractor asks for the mask
    batched = ext.compute(ys)
    single = get_extractor("ssl_layers", checkpoint=str(ckpts["layer"]), device="cpu", batch_size=1)
    for y, b in zip(ys, batched):
        np.testing.assert_allclose(b, single.compute([y])[0], atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(b, np.concatenate(hf_hidden_states(ckpts["layer"], y), axis=1), atol=1e-4, rtol=1e-4)


def test_other_sample_rates_are_resampled_with_one_warning(tmp_path, ckpts):
    utts = [wav_utt(tmp_path, signal(1.0 + 0.3 * i, seed=i, sr=8000), sr=8000, name=f"Ses01F_impro01_F00{i}")
            for i in range(5)]
    utts.append(wav_utt(tmp_path, signal(1.2, seed=9), name="Ses01F_impro01_M000"))
    ext = get_extractor("ssl_layers", checkpoint=str(ckpts["wav2vec2"]), device="cpu", batch_size=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fs = FeatureCache(tmp_path / "cache").get(ext, Manifest(utts), progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, AudioWarning)]
    assert len(messages) == 1 and messages[0].count("resampled") == 1, messages
    assert "8000 Hz resampled to 16000 Hz" in messages[0]
    # 8 kHz audio has as many 16 kHz frames as its duration says
    assert len(fs[utts[0].id]) == 1 + (16000 - 400) // 320


def test_cache_hits_for_the_same_weights_and_not_for_changed_ones(tmp_path, ckpts, monkeypatch):
    import shutil

    from workbench.features import ssl

    path = tmp_path / "model"
    shutil.copytree(ckpts["wav2vec2"], path)
    utts = Manifest([wav_utt(tmp_path, signal(1.1, seed=i), name=f"Ses01F_impro01_F00{i}") for i in range(3)])
    cache = FeatureCache(tmp_path / "cache")
    before = get_extractor("ssl_layers", checkpoint=str(path), device="cpu")
    first = cache.get(before, utts, progress=False)
    store_before = cache.store_dir(before)
    a = np.array(first[utts[0].id])
    calls = []
    real = ssl.SslLayers.compute
    monkeypatch.setattr(ssl.SslLayers, "compute", lambda self, ys: calls.append(len(ys)) or real(self, ys))
    again = cache.get(get_extractor("ssl_layers", checkpoint=str(path), device="cpu"), utts, progress=False)
    assert calls == [] and np.array_equal(again[utts[0].id], a)
    # other weights saved under the same directory: a new store, new features
    tiny_speech_model(path, "wav2vec2", seed=1)
    ext = get_extractor("ssl_layers", checkpoint=str(path), device="cpu")
    assert cache.store_dir(ext) != store_before
    changed = cache.get(ext, utts, progress=False)
    assert sum(calls) == 3 and not np.allclose(changed[utts[0].id], a, atol=1e-3)
    assert len(list((tmp_path / "cache" / "ssl_layers").iterdir())) == 2


def test_missing_empty_and_non_speech_checkpoints_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("WORKBENCH_ALLOW_DOWNLOADS", raising=False)
    with pytest.raises(CheckpointError, match="(?s)'ssl_layers'.*local directory.*Hugging Face cache") as e:
        get_extractor("ssl_layers")
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="no-such-org/no-such-wav2vec2") as e:
        get_extractor("ssl_layers", checkpoint="no-such-org/no-such-wav2vec2")
    assert "local directory" in str(e.value) and "Hugging Face cache" in str(e.value)
    from workbench.testing.hf_checkpoints import tiny_bert

    bert = tiny_bert(tmp_path / "bert")
    with pytest.raises(CheckpointError, match="'bert' model, not a self-supervised speech encoder") as e:
        get_extractor("ssl_layers", checkpoint=str(bert))
    assert str(bert) in str(e.value) and "\n" not in str(e.value)


def test_layer_indices_out_of_range_name_the_parameter_and_the_range(ckpts):
    for bad in ([0, 3], [-1], [], [1, 1]):
        with pytest.raises(SslConfigError, match=r"'ssl_layers': layers .*valid indices 0\.\.2") as e:
            get_extractor("ssl_layers", checkpoint=str(ckpts["hubert"]), layers=bad)
        assert "\n" not in str(e.value)
    with pytest.raises(SslConfigError, match="chunk_seconds"):
        get_extractor("ssl_layers", checkpoint=str(ckpts["hubert"]), chunk_seconds=0)


def test_runtime_settings_stay_out_of_the_cache_key(ckpts):
    cp = str(ckpts["wav2vec2"])
    key = get_extractor("ssl_layers", checkpoint=cp, device="cpu", batch_size=1).store_key()
    assert key == get_extractor("ssl_layers", checkpoint=cp, device="auto", batch_size=16).store_key()
    assert key != get_extractor("ssl_layers", checkpoint=cp, layers=[0]).store_key()
    assert key != get_extractor("ssl_layers", checkpoint=cp, chunk_seconds=5.0).store_key()


def test_a_zero_sample_wav_is_skipped_and_its_batch_kept(tmp_path, ckpts):
    """issue 28: a 0-sample wav raised a raw ValueError and lost its whole batch; now it is
    skipped with its reason, like NaN audio."""
    utts = [wav_utt(tmp_path, signal(0.6, seed=k), name=f"Ses01F_impro01_F00{k}") for k in range(3)]
    empty = tmp_path / "Ses01F_impro01_M009.wav"
    sf.write(empty, np.zeros(0, np.float32), SR)
    utts.insert(1, make_utterance(id="Ses01F_impro01_M009", audio_path=str(empty), duration=0.5))
    ext = get_extractor("ssl_layers", checkpoint=str(ckpts["wav2vec2"]), device="cpu", batch_size=4)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        fs = FeatureCache(tmp_path / "cache").get(ext, Manifest(utts), n_jobs=1, progress=False)
    assert sorted(fs.ids) == sorted(u.id for u in utts if u.id != "Ses01F_impro01_M009")
    assert list(fs.skipped) == ["Ses01F_impro01_M009"] and "holds no samples" in fs.skipped["Ses01F_impro01_M009"]
