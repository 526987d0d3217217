"""The text a model reads: the corpus's human transcript ("oracle") or an ASR transcript ("asr").

Xu et al. (2019, Table 1) and Yoon et al. (AMH-ASR) train and test on what a recogniser heard.
:func:`texts_for` turns a manifest into the manifest of a text source: for ``"asr"`` each
utterance's ``text`` becomes the pocketsphinx transcript and its ``words`` the recogniser's own
word timings (which feed ``word_spans``), from :func:`workbench.features.asr.transcribe_manifest`
(cached beside the feature cache, resumable, parallel over processes). Everything downstream
(text features, whose cache key is the text; word spans; datasets) then reads ASR text without
knowing it.

Each ASR utterance keeps what the swap replaced and what a results row needs in ``extra``:
``text_source``, ``asr_engine``, ``oracle_text``, ``oracle_words`` (the reference timings,
still what attention maps are scored against) and ``asr_errors`` / ``asr_n_ref`` (word errors
against the oracle text). So the text source of a run and its test WER are read off the
manifest the model was given (:func:`text_source_of`, :func:`pooled_wer`), never off a request
that might not have been followed; and :func:`texts_for` maps an ASR manifest back to oracle.

An utterance whose transcript comes back empty (silence, or nothing the recogniser believed) is
kept with an empty text, as Xu et al. and AMH would with a recogniser that returns nothing: the
text extractors give it one all-zero word vector and its word span is empty. They are counted
in the :class:`TextReport` and a one-line :class:`TextSourceWarning` names the count.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.corpus.manifest import Manifest, Utterance
from workbench.errors import WorkbenchError
from workbench.features.words import split_words
from workbench.training.spec import TEXT_SOURCES

#: Keys of ``Utterance.extra`` written for ASR text (see the module docstring).
SOURCE, ENGINE, ORACLE_TEXT, ORACLE_WORDS, ERRORS, N_REF = (
    "text_source", "asr_engine", "oracle_text", "oracle_words", "asr_errors", "asr_n_ref")
_ASR_KEYS = (SOURCE, ENGINE, ORACLE_TEXT, ORACLE_WORDS, ERRORS, N_REF)


class TextSourceError(WorkbenchError, ValueError):
    """An unknown text source, or a manifest whose text is not the one asked for; the message
    names the source and what to do."""


class TextSourceWarning(UserWarning):
    """One line about the text a model reads, e.g. how many ASR transcripts came back empty."""


@dataclass(frozen=True)
class TextReport:
    """What :func:`texts_for` produced: the source, the engine, how many transcripts are empty
    (kept, with no words), the pooled word errors against the oracle text, and the decoding
    done by this call (``decoded`` utterances, 0 when every transcript was cached)."""

    text_source: str
    engine: str | None
    n_utts: int
    n_empty: int
    empty_ids: tuple[str, ...] = ()
    errors: int = 0
    n_ref: int = 0
    decoded: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def wer(self) -> float:
        """Pooled WER (errors / reference words); NaN for oracle text."""
        return float("nan") if self.text_source == "oracle" else self.errors / max(1, self.n_ref)

    def summary(self) -> str:
        """One line for a log or a notebook."""
        if self.text_source == "oracle":
            return f"text: oracle transcripts of {self.n_utts} utterance(s)"
        return (f"text: {self.engine} transcripts of {self.n_utts} utterance(s), pooled WER {self.wer:.3f}, "
                f"{self.n_empty} empty (kept with no words), {self.decoded} decoded now"
                + (f" in {self.wall_seconds:.0f} s" if self.decoded else " (all cached)"))


def check_text_source(text_source: str) -> str:
    if text_source not in TEXT_SOURCES:
        raise TextSourceError(f"text_source must be one of {TEXT_SOURCES}, got {text_source!r}")
    return text_source


def text_source_of(manifest: Iterable[Utterance]) -> str:
    """The text source the utterances carry ("oracle" unless :func:`texts_for` made them ASR);
    :class:`TextSourceError` when they mix sources."""
    sources = {u.extra.get(SOURCE, "oracle") for u in manifest}
    if len(sources) > 1:
        raise TextSourceError(f"the manifest mixes text sources {sorted(sources)}; build it with texts_for")
    return sources.pop() if sources else "oracle"


def asr_engine_of(manifest: Iterable[Utterance]) -> str | None:
    """The recogniser that made the manifest's ASR text (None for oracle text)."""
    engines = sorted({str(u.extra[ENGINE]) for u in manifest if u.extra.get(ENGINE)})
    return ", ".join(engines) or None


def pooled_wer(manifest: Manifest, ids: Sequence[str]) -> float:
    """Pooled WER of the utterances ``ids`` (their errors over their reference words); NaN for
    oracle text or no ids."""
    utts = [manifest[i] for i in ids]
    if not utts or text_source_of(utts) == "oracle":
        return float("nan")
    return sum(int(u.extra[ERRORS]) for u in utts) / max(1, sum(int(u.extra[N_REF]) for u in utts))


def reference_timings(utt: Utterance) -> list[tuple[str, float, float]] | None:
    """The utterance's reference word timings: those of the corpus, also for ASR text (whose
    ``words`` are the recogniser's). What attention maps are scored against."""
    words = utt.extra.get(ORACLE_WORDS, utt.words) if utt.extra.get(SOURCE) == "asr" else utt.words
    return None if words is None else [(str(w), float(s), float(e)) for w, s, e in words]


def oracle_text(utt: Utterance) -> str:
    """The human transcript of ``utt``, also when it carries ASR text."""
    return str(utt.extra.get(ORACLE_TEXT, utt.text)) if utt.extra.get(SOURCE) == "asr" else utt.text


def _to_oracle(utt: Utterance) -> Utterance:
    if utt.extra.get(SOURCE) != "asr":
        return utt
    extra = {k: v for k, v in utt.extra.items() if k not in _ASR_KEYS}
    return dataclasses.replace(utt, text=oracle_text(utt), words=reference_timings(utt), extra=extra)


def default_jobs() -> int:
    """Decoding processes: every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def texts_for(manifest: Manifest, text_source: str, *, cache_path: str | Path | None = None,
              n_jobs: int | None = None, progress: bool = True, warn: bool = True) -> tuple[Manifest, TextReport]:
    """``manifest`` with the text of ``text_source`` ("oracle" or "asr") and a :class:`TextReport`.

    For "asr", utterances are transcribed with pocketsphinx (cached at ``cache_path``, default
    :func:`workbench.features.asr.asr_cache_path`; ``n_jobs`` processes, default every core;
    a tqdm bar with ``progress``); utterances that carry ASR text already are kept as they are.
    For "oracle", ASR utterances get their human transcript and timings back. With ``warn``
    a :class:`TextSourceWarning` says how many ASR transcripts are empty (they are kept).
    """
    check_text_source(text_source)
    if text_source == "oracle":
        out = Manifest([_to_oracle(u) for u in manifest], manifest.report)
        return out, TextReport("oracle", None, len(out), sum(not split_words(u.text) for u in out))
    from workbench.features.asr import asr_cache_path, asr_engine, transcribe_manifest

    engine = asr_engine()
    todo = [u for u in manifest if u.extra.get(SOURCE) != "asr"]
    table = transcribe_manifest(todo, n_jobs=n_jobs or default_jobs(), progress=progress,
                                cache_path=cache_path if cache_path is not None else asr_cache_path())
    by_id = {r.id: r for r in table.itertuples(index=False)}
    utts = []
    for u in manifest:
        r = by_id.get(u.id)
        if r is None:  # ASR text already
            utts.append(u)
            continue
        extra = {**u.extra, SOURCE: "asr", ENGINE: engine, ORACLE_TEXT: u.text,
                 ORACLE_WORDS: None if u.words is None else [list(w) for w in u.words],
                 ERRORS: int(r.errors), N_REF: int(r.n_ref)}
        utts.append(dataclasses.replace(u, text=str(r.asr_text), words=[tuple(w) for w in r.words], extra=extra))
    out = Manifest(utts, manifest.report)
    empty = tuple(u.id for u in out if not split_words(u.text))
    report = TextReport("asr", asr_engine_of(out), len(out), len(empty), empty,
                        errors=sum(int(u.extra[ERRORS]) for u in out), n_ref=sum(int(u.extra[N_REF]) for u in out),
                        decoded=int(table.attrs.get("decoded", 0)), audio_seconds=float(table["audio_s"].sum()),
                        wall_seconds=float(table.attrs.get("wall_s", 0.0)))
    if warn and empty:
        warnings.warn(f"ASR text: {len(empty)} of {len(out)} transcript(s) are empty, e.g. {list(empty[:3])}; "
                      "kept with no words (one zero word vector, empty word span)", TextSourceWarning, stacklevel=2)
    return out, report


__all__ = ["TextReport", "TextSourceError", "TextSourceWarning", "asr_engine_of", "check_text_source",
           "oracle_text", "pooled_wer", "reference_timings", "text_source_of", "texts_for"]
