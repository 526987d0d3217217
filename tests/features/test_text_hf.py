"""Text encoders from the user's checkpoints, on tiny BERTs built here (nothing is downloaded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.features.base import get_extractor
from workbench.features.cache import FeatureCache
from workbench.features.checkpoints import ALLOW_DOWNLOADS_ENV, CheckpointError
from workbench.features.text import TextEncoderError, embed_words, load_text_encoder
from workbench.testing.dummies import make_utterance
from workbench.testing.hf_checkpoints import tiny_bert, tiny_vocab


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> str:
    return str(tiny_bert(tmp_path_factory.mktemp("tiny-bert"), seed=0))


@pytest.fixture(scope="module")
def other_bert(tmp_path_factory) -> str:
    return str(tiny_bert(tmp_path_factory.mktemp("tiny-bert-1"), seed=1))


def _pieces(word: str, vocab: list[str]) -> list[str]:
    """WordPiece by hand: the vocabulary's whole word, else its letters as ``c ##c ##c``."""
    return [word] if word in vocab else [word[0]] + [f"##{c}" for c in word[1:]]


def _reference(path: str, words: list[str], layers: int, pooling: str = "mean") -> np.ndarray:
    """Word vectors straight from the model's hidden states, ids built without the workbench's tokenizer."""
    from transformers import BertModel

    vocab = tiny_vocab()
    ids, owner = [vocab.index("[CLS]")], [-1]
    for w, word in enumerate(words):
        for p in _pieces(word, vocab):
            ids.append(vocab.index(p))
            owner.append(w)
    ids.append(vocab.index("[SEP]"))
    owner.append(-1)
    model = BertModel.from_pretrained(path).eval()
    with torch.no_grad():
        hs = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    summed = torch.stack(hs[-layers:]).sum(0)[0].numpy()
    owner_a = np.array(owner)
    rows = [np.flatnonzero(owner_a == w) for w in range(len(words))]
    return np.stack([summed[r].mean(0) if pooling == "mean" else summed[r[0]] for r in rows])


def test_word_vectors_equal_the_models_own_hidden_states(bert):
    words = ["cats", "sat", "on", "the", "mat"]  # 'the' is a whole word, the others are spelled in pieces
    (ours,) = embed_words(["Cats sat on the mat!"], checkpoint=bert, device="cpu")
    assert ours.shape == (5, 32)
    np.testing.assert_allclose(ours, _reference(bert, words, layers=4), rtol=1e-4, atol=1e-5)
    (two,) = embed_words(["Cats sat on the mat!"], layers=2, checkpoint=bert, device="cpu")
    np.testing.assert_allclose(two, _reference(bert, words, layers=2), rtol=1e-4, atol=1e-5)
    assert not np.allclose(two, ours, atol=1e-3)
    (first,) = embed_words(["Cats sat on the mat!"], pooling="first", checkpoint=bert, device="cpu")
    np.testing.assert_allclose(first, _reference(bert, words, layers=4, pooling="first"), rtol=1e-4, atol=1e-5)


def test_static_vectors_are_the_embedding_table_rows(bert):
    from transformers import BertModel

    vocab = tiny_vocab()
    table = BertModel.from_pretrained(bert).get_input_embeddings().weight.detach().numpy()
    (ours,) = embed_words(["the cat"], kind="static", checkpoint=bert, device="cpu")
    cat = table[[vocab.index(p) for p in _pieces("cat", vocab)]].mean(0)
    np.testing.assert_allclose(ours, np.stack([table[vocab.index("the")], cat]), rtol=1e-5, atol=1e-6)


def test_batches_and_long_texts_match_single_windows(tmp_path):
    """A 16-position BERT: 20 one-piece words are cut into windows of 14 (16 - [CLS] - [SEP])."""
    short = str(tiny_bert(tmp_path / "short", max_positions=16))
    long_text = " ".join(["the"] * 20)
    out = embed_words([long_text, "the cat", ""], checkpoint=short, device="cpu", batch_size=2)
    assert [o.shape for o in out] == [(20, 32), (2, 32), (1, 32)]
    (tail,) = embed_words([" ".join(["the"] * 6)], checkpoint=short, device="cpu")
    np.testing.assert_allclose(out[0][14:], tail, rtol=1e-4, atol=1e-5)
    (alone,) = embed_words(["the cat"], checkpoint=short, device="cpu")
    np.testing.assert_allclose(out[1], alone, rtol=1e-4, atol=1e-5)  # padding in a batch changes nothing
    assert not out[2].any()


def test_models_are_loaded_once_per_checkpoint_and_device(bert, other_bert):
    a = load_text_encoder(bert, "cpu")
    assert load_text_encoder(bert, "cpu") is a
    assert load_text_encoder(other_bert, "cpu") is not a


def test_extractor_dim_comes_from_the_checkpoint_config(bert):
    ext = get_extractor("text_contextual", checkpoint=bert)
    assert ext.dim == 32 and ext.frame_seconds is None
    assert get_extractor("text_contextual").dim == 384


def test_cache_two_checkpoints_two_stores_and_a_rerun_is_a_hit(bert, other_bert, tmp_path, monkeypatch):
    utts = [make_utterance(id=f"Ses01F_impro01_M00{i}", text=t) for i, t in enumerate(["the cat sat", "happy", ""])]
    cache = FeatureCache(tmp_path / "cache")
    a = cache.get(get_extractor("text_contextual", checkpoint=bert), utts, progress=False)
    b = cache.get(get_extractor("text_contextual", checkpoint=other_bert), utts, progress=False)
    stores = sorted(p.name for p in (tmp_path / "cache" / "text_contextual").iterdir())
    assert len(stores) == 2
    uid = utts[0].id
    assert a[uid].shape == b[uid].shape == (3, 32) and not np.allclose(a[uid], b[uid])
    np.testing.assert_allclose(a[uid], embed_words(["the cat sat"], checkpoint=bert, device="cpu")[0], atol=1e-5)

    def no_extraction(*args, **kwargs):
        raise AssertionError("a cached checkpoint was extracted again")

    monkeypatch.setattr("workbench.features.text.embed_words", no_extraction)
    again = cache.get(get_extractor("text_contextual", checkpoint=bert), utts, progress=False)
    np.testing.assert_array_equal(again[uid], a[uid])


# --------------------------------------------------------------------------- errors
def test_a_missing_checkpoint_offline_names_it(monkeypatch, tmp_path):
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv(ALLOW_DOWNLOADS_ENV, raising=False)
    with pytest.raises(CheckpointError, match=r"'nobody/bert-nowhere'.*local directory.*Hugging Face cache"):
        get_extractor("text_contextual", checkpoint="nobody/bert-nowhere").dim


def test_a_speech_checkpoint_is_not_a_text_encoder(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                         conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=4,
                         num_conv_pos_embedding_groups=2)
    Wav2Vec2Model(cfg).save_pretrained(tmp_path / "w2v")
    with pytest.raises(TextEncoderError, match=r"w2v.*wav2vec2.*not a text encoder") as e:
        embed_words(["the cat"], checkpoint=str(tmp_path / "w2v"), device="cpu")
    assert "\n" not in str(e.value)


def test_a_text_model_without_tokenizer_files(tmp_path):
    from transformers import BertModel

    d = tiny_bert(tmp_path / "b")
    BertModel.from_pretrained(d).save_pretrained(tmp_path / "bare")  # weights and config only
    with pytest.raises(TextEncoderError, match=r"bare.*no tokenizer files"):
        embed_words(["the cat"], checkpoint=str(tmp_path / "bare"), device="cpu")


def test_a_slow_only_tokenizer_is_refused(tmp_path):
    d = tiny_bert(tmp_path / "slow", fast_tokenizer=False)
    with pytest.raises(TextEncoderError, match=r"slow.*no fast.*word_ids"):
        embed_words(["the cat"], checkpoint=str(d), device="cpu")


def test_layers_beyond_the_checkpoint(bert):
    with pytest.raises(TextEncoderError, match=r"layers must be in 1\.\.4.*got 5"):
        embed_words(["the cat"], layers=5, checkpoint=bert, device="cpu")


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (self.marker,))


def test_a_crafted_pickle_as_text_weights_is_one_line_and_runs_no_code(tmp_path):
    """issue 28: a text checkpoint holding a crafted pickle gave a raw UnpicklingError."""
    d = tiny_bert(tmp_path / "crafted")
    for f in d.glob("*.safetensors"):
        f.unlink()
    marker = tmp_path / "ran"
    torch.save({"bert.embeddings.word_embeddings.weight": _RunsCode(marker)}, d / "pytorch_model.bin")
    with pytest.raises(TextEncoderError, match=r"crafted.*cannot load its weights from .*crafted \(") as e:
        embed_words(["the cat"], checkpoint=str(d), device="cpu")
    assert "\n" not in str(e.value) and not marker.exists()
