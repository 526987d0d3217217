"""Content-addressed on-disk feature cache: extract once, reload a whole corpus in one read.

Layout under the cache root (``$WORKBENCH_CACHE``, default ``.cache/features`` in the project)::

    <extractor name>/<store key>/      one store: index.json, data-<token>.npy, lock
    content-hashes.json                sha1 memo of source files (see below)

A store's files, how they are written atomically under a lock, verified (checksum,
finiteness, data-name check) and cleaned up after killed writers are described in
:mod:`workbench.features.store`. This module decides what goes into a store:

- An entry's key is the sha1 of what the extractor reads: the wav bytes plus the segment
  offset/duration (audio), the transcript (text), or the descriptor ``.npy`` bytes (visual).
  The store directory is named by the extractor's ``store_key()`` (its config hash, plus the
  weights hash of a model checkpoint the config names), so a config or checkpoint change uses
  a new store and a content change a new key: only missing keys are extracted, then merged.
- Extraction runs without a lock; only the merge (re-read the index, append what is still
  missing, write, commit) holds the store's lock. Two processes extracting at once both
  finish; the second merge keeps the first's entries and discards its own duplicates.
- Hashing 1.5 GB of wavs on every reload would cost more than the 50x reload budget allows,
  so file hashes are memoised by (path, size, mtime_ns), as git's index does.
- A corrupt store is discarded with a warning naming the file and re-extracted.
- A cache the user may read but not write (a shared one) still serves hits: when the hash memo
  is missing or stale the hashes stay in memory, with one CacheWarning. A miss there is one
  :class:`CacheNotWritable` error, raised before anything is extracted.
- Utterances whose audio or features hold NaN/inf are skipped, not cached, and reported; the
  rest is extracted and kept (see :meth:`FeatureCache.get`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import warnings
from concurrent.futures import Executor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from workbench import paths
from workbench.corpus.manifest import Manifest, Utterance
from workbench.errors import DiskFullError, WorkbenchError
from workbench.features.base import Extractor, get_extractor
from workbench.features.store import (
    CorruptStore,
    Store,
    discard,
    locked,
    read_store,
    remove_leftovers,
    tidy,
    write_store,
)
from workbench.io import atomic_write


class CacheWarning(UserWarning):
    """A cache store or memo file was unreadable and is being rebuilt (the message names it)."""


def default_cache_root() -> Path:
    """``$WORKBENCH_CACHE``, else ``.cache/features`` in the project (see workbench.paths)."""
    return paths.cache_dir()


# --------------------------------------------------------------------------- feature set
class FeatureSet(Mapping[str, np.ndarray]):
    """Features of one manifest: utterance id -> float32 (steps, dim) view of one memmap.

    ``lengths[i]`` is the number of rows of ``ids[i]``; ``valid_lengths[i]`` the rows holding
    real signal (smaller only for padded features such as ``waveform``). ``skipped`` maps the
    manifest's utterances left out (NaN/inf audio or features) to the reason.
    """

    def __init__(self, name: str, config: str, data: np.ndarray, ids: list[str], offsets: np.ndarray,
                 lengths: np.ndarray, valid_lengths: np.ndarray, frame_seconds: float | None,
                 skipped: Mapping[str, str] | None = None):
        self.name = name
        self.config = config
        self.data = data
        self.ids = ids
        self.offsets = offsets
        self.lengths = lengths
        self.valid_lengths = valid_lengths
        self.frame_seconds = frame_seconds
        self.skipped = dict(skipped or {})
        self._pos = {i: k for k, i in enumerate(ids)}

    @property
    def dim(self) -> int:
        return int(self.data.shape[1])

    def __getitem__(self, utt_id: str) -> np.ndarray:
        if utt_id in self.skipped:
            raise KeyError(f"{utt_id!r} was skipped at extraction: {self.skipped[utt_id]}")
        k = self._pos[utt_id]
        o = int(self.offsets[k])
        return self.data[o : o + int(self.lengths[k])]

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        fs = "words" if self.frame_seconds is None else f"{self.frame_seconds:g} s"
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        return f"FeatureSet({self.name}, {len(self)} utterances{skipped}, dim={self.dim}, step={fs})"


# --------------------------------------------------------------------------- content keys
def _sha1_file(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: The errors of writing where we may only read (permissions, a read-only mount).
_READ_ONLY_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)
_UNSAVED_MEMOS: set[Path] = set()  # memo files this process could not write (warned once each)


class _HashMemo:
    """sha1 of files memoised by (absolute path, size, mtime_ns), persisted as JSON."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, list[Any]] = {}
        self.dirty = False
        if path.is_file():
            try:
                self.entries = dict(json.loads(path.read_text()))
            except (ValueError, TypeError) as e:
                warnings.warn(f"feature cache: hash memo {path} is corrupt ({e}); rehashing files", CacheWarning, stacklevel=3)

    def sha1(self, path: str | Path, who: str) -> str:
        p = os.path.abspath(path)
        try:
            st = os.stat(p)
        except OSError as e:
            raise ValueError(f"utterance {who!r}: cannot read source file {path} ({e})") from e
        hit = self.entries.get(p)
        if hit is not None and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        digest = _sha1_file(Path(p))
        self.entries[p] = [st.st_size, st.st_mtime_ns, digest]
        self.dirty = True
        return digest

    def save(self) -> None:
        """Merge our entries into the memo file; a cache we may not write keeps them in memory."""
        if not self.dirty:
            return
        try:
            self._merge_into_file()
        except OSError as e:
            if e.errno not in _READ_ONLY_ERRNOS:
                raise
            # A shared cache read-only to us still serves hits: the hashes just are not kept.
            if self.path not in _UNSAVED_MEMOS:
                _UNSAVED_MEMOS.add(self.path)
                warnings.warn(f"feature cache: cannot save the hash memo {self.path} ({e.strerror}); source files are "
                              "rehashed on every run, ask the cache's owner to refresh it or set $WORKBENCH_CACHE",
                              CacheWarning, stacklevel=3)
        self.dirty = False

    def _merge_into_file(self) -> None:
        with locked(self.path.with_suffix(".lock")):
            for f in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                f.unlink(missing_ok=True)  # of a writer killed while holding this lock
            merged: dict[str, list[Any]] = {}
            if self.path.is_file():
                try:
                    merged = dict(json.loads(self.path.read_text()))
                except (ValueError, TypeError):
                    merged = {}
            merged.update(self.entries)
            atomic_write(self.path, lambda tmp: tmp.write_text(json.dumps(merged)))


def content_key(extractor: Extractor, utt: Utterance, memo: _HashMemo) -> str:
    """sha1 naming what ``extractor`` reads of ``utt`` (see the module docstring)."""
    if extractor.source == "text":
        payload = "text\0" + utt.text
    elif extractor.source == "visual":
        payload = "visual\0" + memo.sha1(extractor.source_path(utt), utt.id)
    else:
        payload = f"audio\0{memo.sha1(extractor.source_path(utt), utt.id)}\0{utt.start:.6f}\0{utt.duration:.6f}"
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- write errors
class CacheNotWritable(WorkbenchError, PermissionError):
    """The cache misses utterances but its folder cannot be written; the message says where."""


def _check_writable(sdir: Path, ext: Extractor, missing: int) -> None:
    """Raise :class:`CacheNotWritable` unless the store's lock file can be opened for writing."""
    try:
        with locked(sdir / "lock", wait=False):
            pass
    except OSError as e:
        if e.errno not in _READ_ONLY_ERRNOS:
            raise
        raise CacheNotWritable(f"feature cache {sdir} is read-only to you and lacks {missing} utterance(s) of "
                               f"{ext.name}; set WORKBENCH_CACHE (or FeatureCache(root=...)) to a writable folder") from e


@contextmanager
def _where_the_cache_lives() -> Iterator[None]:
    """Add to a full-disk error where the user can move the cache to."""
    try:
        yield
    except DiskFullError as e:
        raise DiskFullError(f"{e} (the feature cache's place is set by $WORKBENCH_CACHE)") from e


# --------------------------------------------------------------------------- extraction
#: One utterance's extraction result: (features, valid length), or why it was skipped.
Result = tuple[np.ndarray, int] | str


def _check(extractor: Extractor, utt: Utterance, arr: np.ndarray) -> np.ndarray | str:
    """``arr`` as float32, or the reason to skip it (NaN/inf); a wrong shape is a bug: raise."""
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != extractor.dim:
        raise ValueError(f"extractor {extractor.name!r} returned shape {arr.shape} for utterance {utt.id!r}; expected (steps, {extractor.dim})")
    if not np.all(np.isfinite(arr)):
        return f"utterance {utt.id!r}: extractor {extractor.name!r} produced NaN or infinite values ({utt.audio_path})"
    return arr


def _extract_arrays(extractor: Extractor, utts: Sequence[Utterance]) -> list[np.ndarray | str]:
    """``extract_batch`` of ``utts``, with the reason in place of an utterance whose audio is
    unusable (not finite, or no samples). One such clip fails a whole batch, so the batch is
    redone one by one."""
    from workbench.features.audio_io import UnusableAudioError

    try:
        return list(extractor.extract_batch(utts))
    except UnusableAudioError as e:
        if len(utts) == 1:
            return [str(e)]
    return [_extract_arrays(extractor, [u])[0] for u in utts]


def _extract_chunk(extractor: Extractor, utts: Sequence[Utterance]) -> tuple[list[Result], list[str]]:
    """Worker: features and valid lengths of a chunk (or skip reasons), and its audio warnings.

    Module level so it pickles. Warnings are returned rather than printed so that the parent
    reports them once per extraction, also when they were raised in a worker process.
    """
    from workbench.features.audio_io import AudioWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AudioWarning)
        out: list[Result] = []
        for u, a in zip(utts, _extract_arrays(extractor, utts)):
            a = a if isinstance(a, str) else _check(extractor, u, a)
            valid = None if isinstance(a, str) else extractor.valid_length(u)
            out.append(a if isinstance(a, str) else (a, a.shape[0] if valid is None else int(valid)))
    for w in caught:  # anything else passes through unchanged
        if not issubclass(w.category, AudioWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out, [str(w.message) for w in caught if issubclass(w.category, AudioWarning)]


def _summary(messages: Sequence[str], limit: int = 10) -> str:
    unique = list(dict.fromkeys(messages))
    more = f"\n  ... and {len(unique) - limit} more" if len(unique) > limit else ""
    return "\n  " + "\n  ".join(unique[:limit]) + more


def _warn_summary(extractor: Extractor, messages: list[str]) -> None:
    if not messages:
        return
    from workbench.features.audio_io import AudioWarning, audio_issues_summary

    text = audio_issues_summary(extractor.name, messages, verb=" while extracting")
    if text:
        warnings.warn(text, AudioWarning, stacklevel=4)


def _warn_skipped(extractor: Extractor, skipped: Mapping[str, str]) -> None:
    """One warning for every utterance left out of a FeatureSet (see FeatureCache.get)."""
    if not skipped:
        return
    from workbench.features.audio_io import AudioWarning

    warnings.warn(f"{extractor.name}: skipped {len(skipped)} utterance(s) whose audio or features hold NaN or "
                  "infinite values; they are not cached and are missing from the result (FeatureSet.skipped "
                  f"lists them); repair or drop them from the manifest:{_summary(list(skipped.values()))}",
                  AudioWarning, stacklevel=3)


def _pool(n_jobs: int) -> Executor:
    """A concurrent.futures process pool whose workers stay warm between calls.

    joblib's loky executor starts workers by spawning fresh interpreters (fork could deadlock
    on the torch/OpenMP threads of this process) without re-running an unguarded ``__main__``
    script or notebook, and keeps them for the next extractor, so imports are paid once.
    """
    from joblib.externals.loky import get_reusable_executor

    return get_reusable_executor(max_workers=n_jobs, timeout=300)


def _run_extraction(extractor: Extractor, utts: list[Utterance], n_jobs: int, progress: bool) -> list[Result]:
    from tqdm.auto import tqdm

    # ``batched = True`` on an extractor class (mfcc120; MiniLM text) means "call extract_batch
    # here on large chunks"; others are per-file and go to worker processes.
    in_process = extractor.batched or n_jobs <= 1 or len(utts) < 16
    if in_process:
        # Batched extractors parallelise inside (torch threads / GPU); chunks feed the bar.
        size = 4 * int(extractor.batch_size)
    else:
        size = max(1, min(32, -(-len(utts) // (4 * n_jobs))))
    chunks = [utts[b : b + size] for b in range(0, len(utts), size)]
    bar = tqdm(total=len(utts), desc=f"extract {extractor.name}", unit="utt", disable=not progress)
    results: list[Result] = []
    messages: list[str] = []
    try:
        # Both maps yield each chunk's results in order as they are ready, so the bar moves.
        mapper = map if in_process else _pool(n_jobs).map
        for chunk, (out, msgs) in zip(chunks, mapper(_extract_chunk, [extractor] * len(chunks), chunks)):
            results.extend(out)
            messages.extend(msgs)
            bar.update(len(chunk))
        return results
    finally:
        bar.close()
        _warn_summary(extractor, messages)


def _ensure_dim(ext: Extractor, manifest: Manifest) -> None:
    """Make ``ext.dim`` answerable: some extractors (``visual``) learn it from their first file."""
    try:
        ext.dim
    except ValueError:
        if len(manifest) == 0:
            raise
        ext.extract(manifest[0])
        ext.dim  # still unknown: let the extractor's own error through


def _memory_bounded_groups(ext: Extractor, utts: Mapping[str, Utterance], limit: int) -> list[list[str]]:
    """Split the keys of ``utts`` into consecutive groups whose estimated feature bytes stay
    under ``limit`` (a key over it alone is a group of its own)."""
    fs = ext.frame_seconds
    groups: list[list[str]] = []
    size = 0
    for k, u in utts.items():
        rows = 64 if fs is None else u.duration / fs + 1  # text: a few dozen words
        if ext.max_samples is not None:  # a waveform is cropped
            rows = min(rows, ext.max_samples)
        est = int(rows * ext.dim * 4)
        if not groups or size + est > limit:
            groups.append([])
            size = 0
        groups[-1].append(k)
        size += est
    return groups


class FeatureCache:
    """On-disk cache of extracted features under ``root`` (default :func:`default_cache_root`)."""

    def __init__(self, root: str | Path | None = None, max_pending_bytes: int = 1 << 30):
        self.root = Path(root) if root is not None else default_cache_root()
        # Extracted-but-unmerged features are committed once they would pass this size (est.),
        # so a full-size corpus of spectrograms or padded waveforms never sits in RAM at once.
        self.max_pending_bytes = max_pending_bytes

    def store_dir(self, extractor: Extractor) -> Path:
        return self.root / extractor.name / extractor.store_key()

    def get(
        self,
        extractor: Extractor | str,
        manifest: Manifest,
        n_jobs: int | None = None,
        progress: bool = True,
    ) -> FeatureSet:
        """Features of every utterance of ``manifest``, extracting only what the cache lacks.

        ``n_jobs`` worker processes extract per-file features (default: all CPU cores);
        batched extractors (``mfcc120``) run in this process, on the GPU when configured.
        Unreadable or empty audio raises ``ValueError`` naming the utterance (what was extracted
        with it in the same group is not cached). Audio or features holding NaN/inf are skipped
        instead: everything else is extracted and cached, the skipped utterances are left out of
        the result (``id in features`` is False), listed with their reasons in
        ``FeatureSet.skipped``, reported in one ``AudioWarning``, and retried on the next call.
        """
        ext = get_extractor(extractor) if isinstance(extractor, str) else extractor
        sdir = self.store_dir(ext)
        memo = _HashMemo(self.root / "content-hashes.json")
        keys = [content_key(ext, u, memo) for u in manifest]
        memo.save()
        _ensure_dim(ext, manifest)
        store = self._load(sdir, ext.dim)
        have = set(store.keys)
        todo: dict[str, Utterance] = {}  # missing key -> its first utterance
        for k, u in zip(keys, manifest):
            if k not in have:
                todo.setdefault(k, u)
        if todo:
            _check_writable(sdir, ext, len(todo))  # before extracting: the work could not be kept
        n_jobs = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
        failed: dict[str, str] = {}  # content key -> why it was skipped
        for group in _memory_bounded_groups(ext, todo, self.max_pending_bytes):
            # Extract a group, then merge it: pending results stay bounded in memory.
            results = _run_extraction(ext, [todo[k] for k in group], n_jobs, progress)
            failed.update((k, r) for k, r in zip(group, results) if isinstance(r, str))
            new = {k: r for k, r in zip(group, results) if not isinstance(r, str)}
            if not new:
                continue
            with locked(sdir / "lock"):
                remove_leftovers(sdir)
                current = self._load(sdir, ext.dim, lock_held=True)  # another process may have merged meanwhile
                present = set(current.keys)
                new = {k: v for k, v in new.items() if k not in present}
                if new:
                    meta = {"extractor": ext.name, "config": json.loads(ext.config.to_json()), "frame_seconds": ext.frame_seconds}
                    with _where_the_cache_lives():
                        write_store(sdir, current, new, ext.dim, meta)
            store = self._load(sdir, ext.dim)
        skipped = {u.id: failed[k] for k, u in zip(keys, manifest) if k in failed}
        _warn_skipped(ext, skipped)
        pos = store.pos
        kept = [(u.id, pos[k]) for k, u in zip(keys, manifest) if k not in failed]
        ids, rows = [i for i, _ in kept], [r for _, r in kept]
        return FeatureSet(ext.name, ext.config.to_json(), store.data, ids, store.offsets[rows],
                          store.lengths[rows], store.valid[rows], ext.frame_seconds, skipped)

    def _load(self, sdir: Path, dim: int, lock_held: bool = False) -> Store:
        """The store's committed state, or an empty one; a corrupt store is dropped with a warning."""
        try:
            store = read_store(sdir, dim)
        except CorruptStore as e:
            warnings.warn(f"feature cache: {e}; discarding the store and re-extracting", CacheWarning, stacklevel=3)
            return discard(sdir, dim, lock_held)
        if store is None:
            return Store.empty(dim)
        if not lock_held:
            tidy(sdir, store.data_file)
        return store

    def clear(self, extractor: Extractor | str | None = None) -> None:
        """Delete one extractor's stores (all configs), or the whole cache."""
        import shutil

        target = self.root if extractor is None else self.root / (extractor if isinstance(extractor, str) else extractor.name)
        shutil.rmtree(target, ignore_errors=True)
