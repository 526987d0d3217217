"""Word-level text embeddings: one row per word, in order, checked against the model itself."""

import numpy as np
import pytest
import torch

from workbench.features import get_extractor
from workbench.features.text import TextGlove, embed_words, is_empty_text, load_glove, load_minilm
from workbench.features.words import split_words
from workbench.testing.dummies import make_utterance


@pytest.fixture(scope="module")
def minilm():
    return load_minilm("cpu")


def _hidden_sum(minilm, text, layers=4):
    """Independent computation: plain tokenisation of the raw string, sum of the last layers."""
    tok, model = minilm
    enc = tok(text, return_tensors="pt")
    with torch.inference_mode():
        hs = model(**enc, output_hidden_states=True).hidden_states
    return torch.stack(hs[-layers:]).sum(0)[0].numpy(), tok.convert_ids_to_tokens(enc["input_ids"][0])


def test_contextual_is_sum_of_last_four_layers(minilm):
    text = "the dog barked"  # three single-piece words: rows = positions 1, 2, 3
    ref, pieces = _hidden_sum(minilm, text)
    assert pieces == ["[CLS]", "the", "dog", "barked", "[SEP]"]
    emb = embed_words([text], "contextual", device="cpu")[0]
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, ref[1:4], atol=2e-4)
    # Summing 4 layers is not the same as taking the last one.
    last, _ = _hidden_sum(minilm, text, layers=1)
    assert np.abs(emb - last[1:4]).max() > 1.0


def test_multi_piece_word_is_mean_of_its_pieces(minilm):
    tok, _ = minilm
    text = "Unbelievably, [LAUGHTER] the dog can't bark!"
    words = split_words(text)
    assert words == ["unbelievably", "the", "dog", "can't", "bark"]
    emb = embed_words([text], "contextual", device="cpu")[0]
    assert emb.shape == (5, 384)
    # Independent: the same word sequence tokenised as one string (no tag, no punctuation).
    ref, pieces = _hidden_sum(minilm, "unbelievably the dog can't bark")
    n_unbel = len(tok.tokenize("unbelievably"))
    assert n_unbel > 1
    np.testing.assert_allclose(emb[0], ref[1:1 + n_unbel].mean(0), atol=2e-4)
    k = pieces.index("dog")
    np.testing.assert_allclose(emb[2], ref[k], atol=2e-4)
    i = pieces.index("can")  # can ' t -> one word
    np.testing.assert_allclose(emb[3], ref[i:i + 3].mean(0), atol=2e-4)


def test_static_rows_are_table_rows(minilm):
    tok, model = minilm
    table = model.embeddings.word_embeddings.weight.detach().numpy()
    emb = embed_words(["Dog, the unbelievably"], "static", device="cpu")[0]
    ids = tok.convert_tokens_to_ids(["dog", "the"])
    np.testing.assert_allclose(emb[:2], table[ids], atol=1e-6)
    pieces = tok.convert_tokens_to_ids(tok.tokenize("unbelievably"))
    np.testing.assert_allclose(emb[2], table[pieces].mean(0), atol=1e-6)


def test_word_order_and_batch_independence():
    texts = ["the dog", "dog the", "a much longer sentence with many more words in it than the others"]
    batch = embed_words(texts, "contextual", device="cpu", batch_size=2)
    alone = [embed_words([t], "contextual", device="cpu")[0] for t in texts]
    for b, a, t in zip(batch, alone, texts):
        assert b.shape == (len(split_words(t)), 384)
        np.testing.assert_allclose(b, a, atol=2e-4)  # padding in a batch changes nothing
    static = embed_words(texts[:2], "static", device="cpu")
    np.testing.assert_array_equal(static[0], static[1][::-1])  # exact: rows copied from one table


def test_empty_text_gives_one_zero_row():
    out = embed_words(["", "?! ... [LAUGHTER]", "hi"], "contextual", device="cpu")
    assert is_empty_text("?! ... [LAUGHTER]") and not is_empty_text("hi")
    for e in out[:2]:
        assert e.shape == (1, 384) and not e.any()
    assert out[2].shape == (1, 384) and np.abs(out[2]).sum() > 0


def test_long_text_is_windowed_not_truncated():
    text = " ".join(["extraordinarily"] * 300)  # several pieces per word: > 512 positions
    emb = embed_words([text], "contextual", device="cpu")[0]
    assert emb.shape == (300, 384) and np.isfinite(emb).all() and np.abs(emb).sum(1).min() > 0


def test_registered_extractors():
    utt = make_utterance(text="Excuse me, sir.")
    for name in ("text_contextual", "text_static"):
        ex = get_extractor(name)
        assert ex.source == "text" and ex.frame_seconds is None and ex.dim == 384
        assert ex.extract(utt).shape == (3, 384)
    with pytest.raises(ValueError, match="layers"):
        get_extractor("text_contextual", layers=9).extract(utt)


# --------------------------------------------------------------------------- GloVe
def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_load_glove_tiny_file(tmp_path):
    p = _write(tmp_path / "g.txt", "the 0.1 0.2 0.3\ndog 1 2 3\nthe 9 9 9\nnew york 4 5 6\n")
    g = load_glove(p)
    assert len(g) == 3 and g.dim == 3 and "dog" in g and "cat" not in g
    np.testing.assert_array_equal(g["the"], np.array([0.1, 0.2, 0.3], np.float32))  # first kept
    np.testing.assert_array_equal(g["new york"], [4, 5, 6])
    h = load_glove(_write(tmp_path / "w2v.txt", "2 2\na 1 0\nb 0 1\n"))  # word2vec header
    assert len(h) == 2 and h.dim == 2 and load_glove(p, max_words=1).matrix.shape == (1, 3)


def test_load_glove_bad_line_names_file_and_line(tmp_path):
    p = _write(tmp_path / "bad.txt", "the 0.1 0.2\ndog 1 x\n")
    with pytest.raises(ValueError, match=r"bad.txt:2"):
        load_glove(p)
    with pytest.raises(ValueError, match=r"bad2.txt:2"):
        load_glove(_write(tmp_path / "bad2.txt", "the 0.1 0.2\ndog\n"))
    with pytest.raises(FileNotFoundError):
        load_glove(tmp_path / "missing.txt")


def test_glove_extractor_oov_zero_and_counted(tmp_path):
    p = _write(tmp_path / "g.txt", "the 1 0\ndog 0 1\n")
    ex = get_extractor("text_glove", path=str(p))
    assert isinstance(ex, TextGlove) and ex.dim == 2 and ex.frame_seconds is None
    out = ex.extract(make_utterance(text="The DOG barked!"))
    np.testing.assert_array_equal(out, [[1, 0], [0, 1], [0, 0]])
    assert (ex.n_words, ex.n_oov) == (3, 1)
    assert ex.extract(make_utterance(text="...")).shape == (1, 2)
    with pytest.raises(ValueError, match="path"):
        get_extractor("text_glove").dim


def test_loading_the_text_encoder_shows_no_transformers_bar_and_leaves_the_users_setting(capfd):
    from transformers.utils import logging as hf_logging

    from workbench.features import text

    text._MODELS.clear()  # load for real, not from this process's memo
    hf_logging.enable_progress_bar()
    capfd.readouterr()
    text.load_text_encoder("", device="cpu")
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # the user's own from_pretrained keeps its bar
