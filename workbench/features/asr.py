"""ASR transcripts with pocketsphinx, word error rates against the oracle text, and a result cache.

pocketsphinx 5 ships a US-English acoustic model, the CMU dictionary and a trigram LM in its
wheel; ``Decoder(samprate=16000)`` loads them offline. Its transcripts are the "ASR text"
condition of Xu et al. and AMH: noisy on purpose (on espeak speech WER runs from about 0.25 for
a clear female voice to 0.9 for male voices).

WER compares the words of :func:`~workbench.features.words.split_words` of the oracle text and
of the ASR text (both lower-cased, punctuation and tags removed). Per utterance
``wer = errors / max(1, n_ref)`` (substitutions + deletions + insertions), so an empty
reference gives the number of inserted words, never NaN; per speaker and per corpus WER pool
errors and reference words (:func:`wer_summary`).

Decoding costs about 0.2-0.4 x real time per core, so :func:`transcribe_manifest` keeps results
in a Parquet table keyed by the audio's content hash (:func:`audio_key`) and the engine
(:func:`asr_engine`): a rerun only decodes new or changed audio. The table is written in chunks
while decoding runs (and once more when it is interrupted), so an interrupted transcription of
a whole corpus resumes where it stopped. Its default place is beside the feature cache
(:func:`asr_cache_path`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from workbench import paths
from workbench.corpus.manifest import Manifest, Utterance
from workbench.features.words import normalise_timing_token, split_words
from workbench.io import atomic_write

SAMPLE_RATE = 16000
MIN_SECONDS = 0.1  # shorter audio gives an empty transcript (the decoder needs a few frames)
SILENCE_PEAK = 1e-4  # a peak below this (about -80 dBFS) counts as silence: no words
Word = tuple[str, float, float]
#: File name of the transcript table in the cache root (:func:`asr_cache_path`).
ASR_CACHE_FILE = "asr.parquet"
# A long transcription writes its cache at least this often (rows, seconds), so a kill loses
# at most one chunk; each write rewrites the table, so not after every utterance.
FLUSH_ROWS = 200
FLUSH_SECONDS = 30.0


# --------------------------------------------------------------------------- decoders
_DECODERS: dict[tuple[int, str], Any] = {}
_CMN_INIT: dict[int, str] = {}  # id(decoder) -> its initial cepstral mean

# Decoder settings by purpose. Forced alignment needs very wide beams: with the defaults the
# search often prunes the only path through the grammar ("Final result does not match the
# grammar") and seg() returns None; with 1e-150 and no bestpath 20/20 test sentences aligned.
DECODER_SETTINGS: dict[str, dict[str, Any]] = {
    "asr": {},
    "align": dict(beam=1e-150, wbeam=1e-150, pbeam=1e-150, bestpath=False),
}


def sphinx_version() -> str:
    from importlib.metadata import version

    return version("pocketsphinx")


def asr_engine() -> str:
    """Name of the recogniser and its models, part of every cache key and recorded with runs
    trained on ASR text (another pocketsphinx version may give other transcripts)."""
    return f"pocketsphinx-{sphinx_version()}-default"


def asr_cache_path(root: str | Path | None = None) -> Path:
    """The transcript table: ``asr.parquet`` in ``root`` (default: the feature cache root,
    ``$WORKBENCH_CACHE``), one file for every corpus, keyed by audio hash and engine."""
    return Path(root if root is not None else paths.cache_dir()) / ASR_CACHE_FILE


def decoder(purpose: str = "asr"):
    """A pocketsphinx Decoder for ``purpose`` ("asr" or "align"), one per process."""
    key = (os.getpid(), purpose)  # decoders are not fork-safe: each process builds its own
    if key not in _DECODERS:
        from pocketsphinx import Decoder

        dec = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **DECODER_SETTINGS[purpose])
        _CMN_INIT[id(dec)] = dec.get_cmn(False)
        _DECODERS[key] = dec
    return _DECODERS[key]


def to_pcm(audio: np.ndarray) -> bytes:
    """float audio in [-1, 1] -> 16-bit PCM bytes, with a fixed +-1 LSB dither.

    Digital silence (runs of exact zeros) makes the acoustic model hallucinate words ("dog"
    on one second of zeros); a tiny deterministic dither, as Kaldi adds, avoids it.
    """
    dither = np.random.default_rng(0).integers(-1, 2, size=len(audio))
    pcm = np.clip(np.round(np.asarray(audio, np.float64) * 32767.0) + dither, -32768, 32767)
    return pcm.astype(np.int16).tobytes()


def decode_segments(dec, audio: np.ndarray) -> list[tuple[str, float, float]] | None:
    """Run ``dec`` over ``audio`` (16 kHz float) -> raw ``(token, start_s, end_s)`` or None.

    None when the search found no result (e.g. an alignment that does not match its grammar).
    Tokens are as the decoder gives them (``<s>``, ``<sil>``, ``word(2)``). The utterance is
    always ended, so a failure leaves the decoder usable.

    The decoder's feature state is reset first: pocketsphinx otherwise carries its noise
    estimate and cepstral mean over from the previous utterance, so a transcript would depend
    on which utterance was decoded before it (and on how work was split among processes).
    """
    frate = float(dec.config["frate"])  # frames per second (100)
    dec.reinit_feat()
    if id(dec) in _CMN_INIT:
        dec.set_cmn(_CMN_INIT[id(dec)])
    dec.start_utt()
    try:
        dec.process_raw(to_pcm(audio), full_utt=True)
    finally:
        dec.end_utt()
    segs = dec.seg()
    if segs is None:
        return None
    # end_frame is inclusive: a word over frames 33..61 ends at 62 / frate.
    return [(s.word, s.start_frame / frate, (s.end_frame + 1) / frate) for s in segs]


def clean_words(segments: Iterable[tuple[str, float, float]]) -> list[Word]:
    """Keep real words only: silence, sentence markers and noise dropped, ``(n)`` variants stripped."""
    out = []
    for tok, s, e in segments:
        w = normalise_timing_token(tok)
        if w is not None:
            out.append((w, round(s, 3), round(e, 3)))
    return out


def is_silent(audio: np.ndarray) -> bool:
    return len(audio) < MIN_SECONDS * SAMPLE_RATE or float(np.max(np.abs(audio))) < SILENCE_PEAK


def _as_audio(src: np.ndarray | Utterance | str | Path) -> np.ndarray:
    if isinstance(src, np.ndarray):
        audio = np.asarray(src, np.float32)
        if audio.ndim != 1:
            raise ValueError(f"audio must be 1-D mono samples at 16 kHz, got shape {audio.shape}")
        if not np.all(np.isfinite(audio)):
            raise ValueError("audio contains NaN or infinite samples")
        return audio
    from workbench.features.audio_io import load_audio

    return load_audio(src, sr=SAMPLE_RATE)


# --------------------------------------------------------------------------- transcription
@dataclass(frozen=True)
class AsrResult:
    """An ASR transcript: ``text`` (lower-case words joined by spaces) and word timings in s."""

    text: str
    words: list[Word] = field(default_factory=list)


def transcribe(audio: np.ndarray | Utterance | str | Path) -> AsrResult:
    """Decode one utterance (16 kHz float samples, an Utterance or a wav path) with the LM.

    Silent audio or audio shorter than 0.1 s gives an empty result.
    """
    audio = _as_audio(audio)
    if is_silent(audio):
        return AsrResult("", [])
    segs = decode_segments(decoder("asr"), audio)
    words = clean_words(segs or [])
    return AsrResult(" ".join(w for w, _, _ in words), words)


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(errors, reference word count) between two texts, both normalised with ``split_words``.

    >>> word_errors("Excuse me, sir.", "excuse sir now")
    (2, 3)
    >>> word_errors("", "uh")
    (1, 0)
    """
    import jiwer

    ref, hyp = split_words(reference), split_words(hypothesis)
    if not ref or not hyp:  # jiwer needs no special case, but this is exact and cheaper
        return max(len(ref), len(hyp)), len(ref)
    o = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return o.substitutions + o.deletions + o.insertions, len(ref)


# --------------------------------------------------------------------------- result tables
def audio_key(utt: Utterance) -> str:
    """Content hash of the utterance's audio: sha1 of the file's bytes plus its segment."""
    h = hashlib.sha1()
    try:
        with open(utt.audio_path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise ValueError(f"utterance {utt.id!r}: cannot read audio file {utt.audio_path} ({e})") from e
    h.update(f"@{utt.start:.4f}+{utt.duration:.4f}".encode())
    return h.hexdigest()[:20]


def read_table(path: Path | None, columns: Sequence[str]) -> pd.DataFrame:
    """A result table, or an empty one (also when the file is unreadable: it is then rebuilt)."""
    if path is not None and Path(path).is_file():
        try:
            df = pd.read_parquet(path)
            if set(columns) <= set(df.columns):
                return df
        except Exception:  # a corrupt cache is recomputed, not fatal  # noqa: BLE001
            pass
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def merge_table(path: Path, new: pd.DataFrame, key: str) -> None:
    """Add ``new`` rows to the table at ``path`` (replacing rows with the same ``key``).

    A lock file serialises writers, and the re-read under the lock means two processes that
    extract at once both keep their rows; the write itself is atomic (temp file + rename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            old = read_table(path, list(new.columns))
            merged = pd.concat([old[~old[key].isin(new[key])], new], ignore_index=True)
            atomic_write(path, lambda tmp: merged.to_parquet(tmp, index=False))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_cached(utts: Sequence[Utterance], keys: Sequence[str], work: Callable, cache_path: Path | None,
               columns: Sequence[str], n_jobs: int, progress: bool, desc: str,
               stats: dict[str, Any] | None = None) -> dict[str, dict]:
    """Rows for every key: cached ones read, the rest computed by ``work(utt)`` (in parallel).

    ``work`` must be a module-level function returning a dict with ``columns`` (minus "key").
    Computed rows are merged into ``cache_path`` every :data:`FLUSH_ROWS` rows or
    :data:`FLUSH_SECONDS` seconds and when the work stops (finished, failed or interrupted), so
    a rerun computes only what is still missing. ``stats`` (a dict) receives ``computed`` (rows
    computed here) and ``seconds`` (wall time of computing them).
    """
    cached = read_table(cache_path, ["key", *columns])
    have = {r["key"]: r for r in cached.to_dict(orient="records")}
    todo = [(k, u) for k, u in zip(keys, utts) if k not in have]
    todo = list({k: (k, u) for k, u in todo}.values())  # identical audio decoded once
    rows: list[dict] = []
    t0 = time.perf_counter()
    if todo:
        from tqdm.auto import tqdm

        from workbench.features.audio_io import summarised_audio_warnings

        flush = _Flusher(Path(cache_path) if cache_path is not None else None, ["key", *columns])
        bar = tqdm(total=len(todo), desc=desc, disable=not progress)
        try:
            with summarised_audio_warnings(desc):
                _run_work(todo, work, n_jobs, rows, bar, on_row=flush.add)
        finally:  # an interrupt keeps what was computed
            flush.flush()
            bar.close()
    if stats is not None:
        stats.update(computed=len(rows), seconds=time.perf_counter() - t0)
    have.update({r["key"]: r for r in rows})
    return have


class _Flusher:
    """Merges computed rows into the cache table in chunks (see :func:`run_cached`)."""

    def __init__(self, path: Path | None, columns: list[str]):
        self.path, self.columns = path, columns
        self.pending: list[dict] = []
        self.last = time.monotonic()

    def add(self, row: dict) -> None:
        self.pending.append(row)
        if len(self.pending) >= FLUSH_ROWS or time.monotonic() - self.last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.path is not None and self.pending:
            merge_table(self.path, pd.DataFrame(self.pending, columns=self.columns), "key")
        self.pending = []
        self.last = time.monotonic()


def _run_work(todo: list[tuple[str, Utterance]], work: Callable, n_jobs: int, rows: list[dict], bar: Any,
              on_row: Callable[[dict], None] | None = None) -> None:
    def done(row: dict) -> None:
        rows.append(row)
        if on_row is not None:
            on_row(row)
        bar.update()

    if n_jobs > 1 and len(todo) > 1:
        from workbench.features.audio_io import AudioWarning

        # spawn, not fork: the parent may hold torch/OpenMP threads, and each worker builds
        # its own decoder anyway.
        ex = ProcessPoolExecutor(min(n_jobs, len(todo)), mp_context=get_context("spawn"))
        try:
            jobs = ex.map(partial(_with_audio_warnings, work), [u for _, u in todo], chunksize=4)
            for (k, _), (row, messages) in zip(todo, jobs):
                for message in messages:  # re-raised here, where the caller summarises them
                    warnings.warn(message, AudioWarning, stacklevel=2)
                done({"key": k, **row})
        except BaseException:
            # Interrupted or failed: queued chunks are dropped instead of decoded to the end.
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        ex.shutdown()
    else:
        for k, u in todo:
            done({"key": k, **work(u)})


def _with_audio_warnings(work: Callable, utt: Utterance) -> tuple[dict, list[str]]:
    """``work(utt)`` in a worker process, with the AudioWarnings it raised as messages: a
    worker's own warnings would print there, a line each, past the parent's summary."""
    from workbench.features.audio_io import AudioWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AudioWarning)
        row = work(utt)
    for w in caught:
        if not issubclass(w.category, AudioWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return row, [str(w.message) for w in caught if issubclass(w.category, AudioWarning)]


def _asr_work(utt: Utterance) -> dict:
    audio = _as_audio(utt)
    t0 = time.perf_counter()
    res = transcribe(audio)
    return dict(asr_text=res.text, words=json.dumps(res.words), decode_s=time.perf_counter() - t0,
                audio_s=len(audio) / SAMPLE_RATE)


def transcribe_manifest(manifest: Manifest | Sequence[Utterance], n_jobs: int = 1,
                        progress: bool = True, cache_path: str | Path | None = None) -> pd.DataFrame:
    """Transcribe every utterance; one row each, in manifest order.

    Columns: ``id, speaker, ref`` (oracle words joined), ``asr_text``, ``words`` (list of
    ``(word, start_s, end_s)``), ``n_ref, errors, wer``, ``audio_s`` (duration) and
    ``decode_s`` (decoding time when it was decoded). With ``cache_path`` (a ``.parquet``
    file) decoded results are stored by :func:`audio_key` and pocketsphinx version, so only
    new or changed audio is decoded (written in chunks: an interrupted call resumes);
    ``n_jobs`` worker processes decode in parallel. ``.attrs`` holds ``engine``, ``decoded``
    (utterances decoded by this call) and ``wall_s`` (its decoding wall time).
    """
    utts = list(manifest)
    engine = asr_engine()
    keys = [f"{audio_key(u)}:{engine}" for u in utts]
    stats: dict[str, Any] = {}
    have = run_cached(utts, keys, _asr_work, Path(cache_path) if cache_path else None,
                      ["asr_text", "words", "decode_s", "audio_s"], n_jobs, progress, "ASR", stats)
    rows = []
    for u, k in zip(utts, keys):
        r = have[k]
        errors, n_ref = word_errors(u.text, r["asr_text"])
        rows.append(dict(id=u.id, speaker=u.speaker, ref=" ".join(split_words(u.text)),
                         asr_text=r["asr_text"], words=[tuple(w) for w in json.loads(r["words"])],
                         n_ref=n_ref, errors=errors, wer=errors / max(1, n_ref),
                         audio_s=float(r["audio_s"]), decode_s=float(r["decode_s"])))
    out = pd.DataFrame(rows, columns=["id", "speaker", "ref", "asr_text", "words", "n_ref",
                                      "errors", "wer", "audio_s", "decode_s"])
    out.attrs.update(engine=engine, decoded=int(stats.get("computed", 0)), wall_s=float(stats.get("seconds", 0.0)))
    return out


def wer_summary(asr: pd.DataFrame, by: str | None = "speaker") -> pd.DataFrame:
    """Pooled WER (total errors / total reference words) per ``by`` group, plus an "all" row.

    Columns: ``n_utts, n_ref, errors, wer, mean_utt_wer, rtf`` (decoding seconds per second
    of audio).

    >>> df = pd.DataFrame(dict(speaker=["a", "a", "b"], n_ref=[4, 6, 5], errors=[1, 2, 5],
    ...                        wer=[.25, 1/3, 1.0], audio_s=[1., 1., 1.], decode_s=[.3, .3, .3]))
    >>> wer_summary(df)["wer"].round(3).tolist()
    [0.3, 1.0, 0.533]
    """
    def agg(g: pd.DataFrame) -> dict:
        return dict(n_utts=len(g), n_ref=int(g["n_ref"].sum()), errors=int(g["errors"].sum()),
                    wer=g["errors"].sum() / max(1, g["n_ref"].sum()), mean_utt_wer=g["wer"].mean(),
                    rtf=g["decode_s"].sum() / max(1e-9, g["audio_s"].sum()))

    rows = {name: agg(g) for name, g in asr.groupby(by, sort=True)} if by else {}
    rows["all"] = agg(asr)
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = by or "group"
    return out
