"""Forced alignment of a known transcript with pocketsphinx, and agreement with reference timings.

:func:`force_align` gives one ``(word, start_s, end_s)`` per word of
:func:`~workbench.features.words.split_words`, in order, so span i belongs to word i of the
text and to row i of its word embeddings. How each span was made is recorded:

1. words missing from the pronunciation dictionary (cmudict in the pocketsphinx wheel) are
   dropped from the alignment text (pocketsphinx cannot align a word it cannot pronounce) and
   listed in ``oov``; the remaining words are aligned with very wide beams
   (``beam=wbeam=pbeam=1e-150, bestpath=False``: the default beams often prune the only path
   through the alignment grammar);
2. a dropped word takes the gap the aligner left between its neighbours (it usually fills it
   with ``<sil>``); when there is no gap, the neighbours' spans are shared with it in
   proportion to characters. These spans are flagged in ``interpolated``;
3. when alignment fails (no result, silent or too short audio, no word in the dictionary),
   ``method="fallback"``: the voiced region (frames within 35 dB of the loudest) is split
   among all words in proportion to their characters (+1 for the gap), all flagged.

Texts with no words give ``method="empty"`` and no spans.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.corpus.manifest import Manifest, Utterance
from workbench.features.asr import (
    DECODER_SETTINGS,
    SAMPLE_RATE,
    Word,
    _as_audio,
    audio_key,
    clean_words,
    decode_segments,
    decoder,
    is_silent,
    run_cached,
    sphinx_version,
)
from workbench.features.words import match_word_timings, split_words

Method = Literal["forced", "fallback", "empty"]


@dataclass(frozen=True)
class AlignResult:
    """Spans for the words of a transcript; ``words[i]`` is ``(word i, start_s, end_s)``."""

    words: list[Word]
    method: Method
    interpolated: list[bool] = field(default_factory=list)  # span not placed by the aligner
    oov: list[str] = field(default_factory=list)  # words missing from the dictionary
    reason: str = ""  # why the fallback was used


def in_dictionary(word: str) -> bool:
    """Whether pocketsphinx can pronounce ``word`` (lower-case, as from ``split_words``)."""
    return decoder("align").lookup_word(word) is not None


def voiced_region(audio: np.ndarray, rel_db: float = -35.0, hop: float = 0.01) -> tuple[float, float]:
    """(start_s, end_s) from the first to the last 10 ms frame within ``rel_db`` of the loudest."""
    h = int(hop * SAMPLE_RATE)
    n = len(audio) // h
    if n == 0:
        return 0.0, len(audio) / SAMPLE_RATE
    rms = np.sqrt(np.mean(audio[: n * h].astype(np.float64).reshape(n, h) ** 2, axis=1))
    if rms.max() <= 0:
        return 0.0, len(audio) / SAMPLE_RATE
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (rel_db / 20))
    return loud[0] * hop, (loud[-1] + 1) * hop


def proportional_spans(words: Sequence[str], start: float, end: float) -> list[tuple[float, float]]:
    """Split ``[start, end]`` among ``words`` in proportion to ``len(word) + 1``.

    >>> proportional_spans(["a", "bcd"], 0.0, 0.6)
    [(0.0, 0.2), (0.2, 0.6)]
    """
    weights = np.array([len(w) + 1 for w in words], float)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    return [(round(float(a), 4), round(float(b), 4)) for a, b in zip(edges[:-1], edges[1:])]


def _fallback(words: list[str], audio: np.ndarray, oov: list[str], reason: str) -> AlignResult:
    lo, hi = voiced_region(audio)
    spans = proportional_spans(words, lo, hi)
    return AlignResult([(w, s, e) for w, (s, e) in zip(words, spans)], "fallback",
                       [True] * len(words), oov, reason)


def _fill_missing(words: list[str], spans: list, interp: list[bool], lo: float, hi: float) -> None:
    """Give runs of span-less words a share of their neighbours' spans, by characters (in place)."""
    n, i = len(words), 0
    while i < n:
        if spans[i] is not None:
            i += 1
            continue
        j = i
        while j < n and spans[j] is None:
            j += 1
        a = i - 1 if i > 0 else i  # include the aligned neighbours in the shared window
        b = j if j < n else j - 1
        start = spans[a][0] if spans[a] is not None else lo
        end = spans[b][1] if spans[b] is not None else hi
        members = list(range(a, b + 1))
        for k, sp in zip(members, proportional_spans([words[k] for k in members], start, max(start, end))):
            spans[k] = sp
            interp[k] = True
        i = j


def force_align(audio: np.ndarray | Utterance | str | Path, text: str) -> AlignResult:
    """Align the words of ``text`` to ``audio`` (16 kHz samples, an Utterance or a wav path)."""
    words = split_words(text)
    if not words:
        return AlignResult([], "empty", [], [], "the transcript has no words")
    audio = _as_audio(audio)
    dec = decoder("align")
    known = [w for w in words if dec.lookup_word(w) is not None]
    oov = [w for w in words if dec.lookup_word(w) is None]
    if is_silent(audio):
        return _fallback(words, audio, oov, "silent or shorter than 0.1 s")
    if not known:
        return _fallback(words, audio, oov, "no word of the transcript is in the dictionary")
    try:
        dec.set_align_text(" ".join(known))
        segs = decode_segments(dec, audio)
    except RuntimeError as e:  # pocketsphinx reports grammar/search failures this way
        return _fallback(words, audio, oov, f"alignment failed: {e}")
    if segs is None:
        return _fallback(words, audio, oov, "alignment found no path through the transcript")
    timed = clean_words(segs)
    spans = match_word_timings(words, timed, interpolate=True)
    exact = match_word_timings(words, timed, interpolate=False)
    interp = [e is None for e in exact]
    if any(s is None for s in spans):
        _fill_missing(words, spans, interp, *voiced_region(audio))
    return AlignResult([(w, float(s), float(e)) for w, (s, e) in zip(words, spans)], "forced",
                       interp, oov)


# --------------------------------------------------------------------------- corpus level
def _align_work(utt: Utterance) -> dict:
    t0 = time.perf_counter()
    res = force_align(utt, utt.text)
    return dict(method=res.method, words=json.dumps(res.words), interpolated=json.dumps(res.interpolated),
                oov=json.dumps(res.oov), reason=res.reason, align_s=time.perf_counter() - t0)


def align_manifest(manifest: Manifest | Sequence[Utterance], n_jobs: int = 1, progress: bool = True,
                   cache_path: str | Path | None = None) -> pd.DataFrame:
    """Force-align every utterance's oracle text; one row each, in manifest order.

    Columns: ``id, speaker, method, words`` (list of ``(word, start_s, end_s)``),
    ``interpolated`` (list of bool), ``oov`` (list), ``n_words, n_oov, n_interpolated,
    reason, align_s``. With ``cache_path`` results are kept in a Parquet table keyed by audio
    content hash, transcript words and aligner settings.
    """
    utts = list(manifest)
    engine = hashlib.sha1(json.dumps([sphinx_version(), DECODER_SETTINGS["align"]],
                                     sort_keys=True).encode()).hexdigest()[:8]
    keys = [f"{audio_key(u)}:{hashlib.sha1(' '.join(split_words(u.text)).encode()).hexdigest()[:12]}:{engine}"
            for u in utts]
    cols = ["method", "words", "interpolated", "oov", "reason", "align_s"]
    have = run_cached(utts, keys, _align_work, Path(cache_path) if cache_path else None, cols,
                      n_jobs, progress, "align")
    rows = []
    for u, k in zip(utts, keys):
        r = have[k]
        words = [tuple(w) for w in json.loads(r["words"])]
        interp, oov = json.loads(r["interpolated"]), json.loads(r["oov"])
        rows.append(dict(id=u.id, speaker=u.speaker, method=r["method"], words=words,
                         interpolated=interp, oov=oov, n_words=len(words), n_oov=len(oov),
                         n_interpolated=int(sum(interp)), reason=r["reason"],
                         align_s=float(r["align_s"])))
    return pd.DataFrame(rows, columns=["id", "speaker", "method", "words", "interpolated", "oov",
                                       "n_words", "n_oov", "n_interpolated", "reason", "align_s"])


# --------------------------------------------------------------------------- agreement
def _as_mapping(x: pd.DataFrame | Manifest | Mapping[str, Sequence[Word] | None]) -> dict:
    if isinstance(x, pd.DataFrame):
        return dict(zip(x["id"], x["words"]))
    if isinstance(x, Manifest):
        return {u.id: u.words for u in x}
    return dict(x)


def word_timing_errors(aligned: pd.DataFrame | Manifest | Mapping[str, Sequence[Word] | None],
                    reference: pd.DataFrame | Manifest | Mapping[str, Sequence[Word] | None]) -> pd.DataFrame:
    """One row per word found in both: ``id, index, word, start, end, ref_start, ref_end,
    onset_err_ms, offset_err_ms`` (signed: aligned minus reference).

    Both sides may be an :func:`align_manifest` table, a Manifest (its ``words``, e.g. from
    .wdseg files) or a mapping id -> ``[(word, start_s, end_s)]``. Reference tokens are matched
    to the aligned words in order (:func:`match_word_timings` without interpolation), so
    fillers and silences in the reference are ignored. Utterances missing on either side are
    skipped.
    """
    al, ref = _as_mapping(aligned), _as_mapping(reference)
    rows = []
    for uid, words in al.items():
        r = ref.get(uid)
        if not words or not r:
            continue
        matched = match_word_timings([w for w, _, _ in words], r, interpolate=False)
        for i, ((w, s, e), m) in enumerate(zip(words, matched)):
            if m is not None:
                rows.append(dict(id=uid, index=i, word=w, start=s, end=e, ref_start=m[0], ref_end=m[1],
                                 onset_err_ms=1000 * (s - m[0]), offset_err_ms=1000 * (e - m[1])))
    return pd.DataFrame(rows, columns=["id", "index", "word", "start", "end", "ref_start", "ref_end",
                                       "onset_err_ms", "offset_err_ms"])


def alignment_agreement(aligned: pd.DataFrame | Manifest | Mapping[str, Sequence[Word] | None],
                        reference: pd.DataFrame | Manifest | Mapping[str, Sequence[Word] | None]) -> dict:
    """Summary of :func:`word_timing_errors`: absolute onset/offset errors in ms.

    Keys: ``n_utts, n_words, mean_onset_ms, median_onset_ms, mean_offset_ms,
    median_offset_ms, onset_within_20ms, onset_within_50ms, offset_within_20ms,
    offset_within_50ms`` (shares in [0, 1]). With no word in common the statistics are None.

    >>> ref = {"u": [("<s>", 0, .2), ("HELLO", .2, .5), ("WORLD(2)", .5, .9)]}
    >>> al = {"u": [("hello", .21, .52), ("world", .52, .95)]}
    >>> a = alignment_agreement(al, ref)
    >>> a["n_words"], round(a["mean_onset_ms"], 1), a["onset_within_20ms"]
    (2, 15.0, 1.0)
    """
    t = word_timing_errors(aligned, reference)
    out: dict = dict(n_utts=int(t["id"].nunique()), n_words=len(t))
    on, off = t["onset_err_ms"].abs(), t["offset_err_ms"].abs()
    for name, v in (("onset", on), ("offset", off)):
        empty = len(v) == 0
        out[f"mean_{name}_ms"] = None if empty else float(v.mean())
        out[f"median_{name}_ms"] = None if empty else float(v.median())
        for lim in (20, 50):
            out[f"{name}_within_{lim}ms"] = None if empty else float((v <= lim + 1e-9).mean())
    return out
