"""Tiny randomly initialised Hugging Face text checkpoints for tests (nothing is downloaded).

:func:`tiny_bert` writes a 4-layer BERT (4: the papers sum the last four layers) with a small
WordPiece vocabulary (the letters and their ``##`` continuations, so every lower-case word
splits into pieces and none is unknown, plus some whole words) into a directory with
``save_pretrained``, as a user's local copy of ``bert-base-uncased`` would look. Seeded, so two
calls with one seed write the same weights.
"""

from __future__ import annotations

import string
from pathlib import Path

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Whole words of the synthetic corpus's vocabulary (workbench.testing.dummies) and a few more;
# every other word is spelled out in single-letter pieces.
_WORDS = ("i you we they the a this that it is was are not never always really so very just think know want "
          "need feel said told going home work money car job house time today happy sad angry fine okay "
          "sorry love hate").split()


def tiny_vocab() -> list[str]:
    """The WordPiece vocabulary of :func:`tiny_bert` (specials, letters, ``##``-letters, words, punctuation)."""
    letters = list(string.ascii_lowercase + string.digits)
    punctuation = list(".,!?'-")
    words = [w for w in dict.fromkeys(_WORDS) if w not in letters]
    return _SPECIAL + letters + [f"##{c}" for c in letters] + punctuation + words


def tiny_bert(out_dir: str | Path, seed: int = 0, hidden: int = 32, layers: int = 4, heads: int = 2,
              max_positions: int = 128, fast_tokenizer: bool = True) -> Path:
    """Save a randomly initialised ``layers``-layer BERT (hidden size ``hidden``) with an uncased
    WordPiece fast tokenizer to ``out_dir`` (created); returns ``out_dir``.

    ``fast_tokenizer=False`` saves a tokenizer that has no fast implementation instead (a
    byte-level one), to test that the workbench refuses it.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=2 * hidden,
                        max_position_embeddings=max_positions, pad_token_id=0)
    torch.manual_seed(seed)
    BertModel(config).eval().save_pretrained(out)
    if fast_tokenizer:
        tok = BertTokenizerFast(vocab=str(out / "vocab.txt"), do_lower_case=True, model_max_length=max_positions)
    else:
        from transformers import ByT5Tokenizer  # python-only: no Rust implementation exists

        tok = ByT5Tokenizer()
    tok.save_pretrained(out)
    return out


__all__ = ["tiny_bert", "tiny_vocab"]
