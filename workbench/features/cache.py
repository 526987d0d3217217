"""Content-addressed on-disk feature cache: extract once, reload a whole corpus in one read.

Layout under the cache root (``$WORKBENCH_CACHE``, default ``.cache/features`` in the project)::

    <extractor name>/<config hash>/index.json         keys, offsets, lengths, valid lengths, checksum
    <extractor name>/<config hash>/data-<token>.npy   every entry's rows concatenated, float32
    <extractor name>/<config hash>/lock               flock'ed while a store is written
    content-hashes.json                               sha1 memo of source files (see below)

An entry's key is the sha1 of what the extractor reads: the wav bytes plus the segment
offset/duration (audio), the transcript (text), or the descriptor ``.npy`` bytes (visual).
The store directory is named by the config hash, so a config change uses a new store and a
content change a new key: only missing keys are extracted, then merged.

Why this shape:

- One data file per store: a corpus loads with one ``np.load(mmap_mode="r")`` and a JSON
  read, and each utterance's array is a zero-copy view (no per-file open).
- Atomic and concurrent: data files get fresh names and the index (the commit point) is
  replaced with :func:`workbench.io.atomic_write`; extraction runs without a lock, and only
  the merge (re-read index, append what is still missing, write, rename) holds an exclusive
  ``flock``. Two processes extracting at once both finish; the second merge keeps the
  first's entries and discards its own duplicates.
- Hashing 1.5 GB of wavs on every reload would cost more than the 50x reload budget allows,
  so file hashes are memoised by (path, size, mtime_ns), as git's index does.
- Corruption (bad JSON, inconsistent offsets, a truncated or missing data file) is detected
  on load; the store is discarded with a warning naming the file and re-extracted.
- Bytes overwritten inside the data file (random values, NaN, zeros; the header intact) are
  caught by a checksum: the index records a CRC-32 of every 16 MiB block of the payload,
  computed from the written file. A store is verified (checksum and finiteness, blocks on
  threads) on its first load in a process; the verified (path, inode, size, mtime_ns) is
  memoised so later loads cost nothing (a 318 MiB mfcc120 store: ~0.1 s on 2 cores). A store
  written before checksums (no ``checksum`` field) is checked for finiteness only and gains a
  checksum at its next merge.
- A writer killed mid-merge (SIGKILL, OOM, power loss) leaves a hidden ``.data-*.tmp`` file or
  an uncommitted ``data-*.npy``, possibly gigabytes. Every write into a store directory holds
  its lock from the temp file's first byte to the index commit, so whoever holds the lock
  knows nothing else there is in progress: the next merge removes such leftovers under the
  lock, and a load removes them when it can take the lock without waiting (it never blocks
  on a writer, and on a read-only cache it leaves them). No age threshold is needed.
- Before a store is written the free space is checked (:func:`workbench.io.check_free_space`)
  and the data file is written with ``write``, not a memory map: a full disk is then a
  :class:`~workbench.errors.DiskFullError` naming the file, not a "Bus error", and no temp
  file survives a failure or Ctrl-C.
- The index's ``data`` field must be a ``data-<12 hex>.npy`` name: a path (absolute, ``..``)
  marks the store corrupt instead of letting the cache read any file.
- A cache the user may read but not write (a shared one) still serves hits: when the hash memo
  is missing or stale the hashes stay in memory, with one CacheWarning.
- Utterances whose audio or features hold NaN/inf are skipped, not cached, and reported; the
  rest is extracted and kept (see :meth:`FeatureCache.get`).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import itertools
import json
import os
import re
import uuid
import warnings
import zlib
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from workbench import paths
from workbench.corpus.manifest import Manifest, Utterance
from workbench.features.base import Extractor, get_extractor
from workbench.errors import DiskFullError, WorkbenchError
from workbench.io import atomic_write, check_free_space

INDEX_VERSION = 1


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
            if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            # A shared cache read-only to us still serves hits: the hashes just are not kept.
            if self.path not in _UNSAVED_MEMOS:
                _UNSAVED_MEMOS.add(self.path)
                warnings.warn(f"feature cache: cannot save the hash memo {self.path} ({e.strerror}); source files are "
                              "rehashed on every run, ask the cache's owner to refresh it or set $WORKBENCH_CACHE",
                              CacheWarning, stacklevel=3)
        self.dirty = False

    def _merge_into_file(self) -> None:
        with _locked(self.path.with_suffix(".lock")):
            for f in _leftovers(self.path.parent, [f".{self.path.name}.*.tmp"]):
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
    custom = getattr(extractor, "content_key", None)
    if callable(custom):
        return str(custom(utt))
    if extractor.source == "text":
        payload = "text\0" + utt.text
    elif extractor.source == "visual":
        path_of = getattr(extractor, "source_path", None)
        if callable(path_of):
            path = path_of(utt)
        else:
            from workbench.features.visual import visual_path

            path = visual_path(utt)
        payload = "visual\0" + memo.sha1(path, utt.id)
    else:
        payload = f"audio\0{memo.sha1(utt.audio_path, utt.id)}\0{utt.start:.6f}\0{utt.duration:.6f}"
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- store files
@contextmanager
def _locked(lock_path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``lock_path``; yields False when ``wait`` is False and
    another process holds it."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class CacheNotWritable(WorkbenchError, PermissionError):
    """The cache misses utterances but its folder cannot be written; the message says where."""


def _check_writable(sdir: Path, ext: Extractor, missing: int) -> None:
    """Raise :class:`CacheNotWritable` unless the store's lock file can be opened for writing."""
    try:
        with _locked(sdir / "lock", wait=False):
            pass
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise CacheNotWritable(f"feature cache {sdir} is read-only to you and lacks {missing} utterance(s) of "
                               f"{ext.name}; set WORKBENCH_CACHE (or FeatureCache(root=...)) to a writable folder") from e


def _leftovers(directory: Path, patterns: Sequence[str], keep: str | None = None) -> list[Path]:
    """Files matching ``patterns`` in ``directory`` other than ``keep``."""
    return [f for pat in patterns for f in directory.glob(pat) if f.name != keep]


#: What a killed writer leaves in a store directory: :func:`atomic_write`'s hidden temp files
#: and a data file renamed into place whose index was never committed.
_STORE_LEFTOVERS = (".data-*.npy.*.tmp", ".index.json.*.tmp", "data-*.npy")


def _committed_data_name(sdir: Path) -> str | None:
    try:
        return str(json.loads((sdir / "index.json").read_text())["data"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove_leftovers(sdir: Path) -> None:
    """Delete what killed writers left in ``sdir``. The caller holds the store's lock.

    Every write into a store directory happens under its lock, from the first byte of the
    temp file to the index commit, so with the lock held no file here is in progress: only
    the data file the index names is live (readers' open memmaps survive the unlink).
    """
    for f in _leftovers(sdir, _STORE_LEFTOVERS, keep=_committed_data_name(sdir)):
        f.unlink(missing_ok=True)


def _tidy(sdir: Path, data_file: str | None) -> None:
    """Remove leftovers if there are any and no writer is active; a reader never waits for it."""
    if not _leftovers(sdir, _STORE_LEFTOVERS, keep=data_file):
        return
    try:
        with _locked(sdir / "lock", wait=False) as got:
            if got:
                _remove_leftovers(sdir)
    except OSError:
        pass  # a read-only cache: the leftovers are not ours to remove


class CorruptStore(Exception):
    pass


# --------------------------------------------------------------------------- checksums
#: Data files are checksummed in blocks of this many payload bytes: blocks are checked on
#: several threads (zlib and hashlib release the GIL), and a mismatch names the rows it covers.
CHECK_BLOCK_BYTES = 16 * 2**20
#: CRC-32 per block guards against damage (not an adversary) at the least cost: measured on a
#: 318 MiB mfcc120 store, 2 threads, 2 shared cores: crc32 76 ms, sha1 124-170 ms, blake2b-16
#: 250-480 ms, finiteness alone 13 ms.
CHECK_ALGO = "crc32"
_DIGESTS: dict[str, Callable[[memoryview], str]] = {
    "crc32": lambda b: f"{zlib.crc32(b):08x}",
    "sha1": lambda b: hashlib.sha1(b).hexdigest(),
}

# (real path, inode, size, mtime_ns) of data files verified in this process: a store is
# hashed on its first load only, as the hash memo does for source files.
_VERIFIED: set[tuple[str, int, int, int]] = set()


def _file_identity(path: Path) -> tuple[str, int, int, int]:
    st = os.stat(path)
    return (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)


def _scan_blocks(data: np.ndarray, block_bytes: int, algo: str | None) -> list[tuple[str | None, bool]]:
    """(hex digest or None when ``algo`` is None, all values finite) of each payload block."""
    flat = data.reshape(-1)  # a view: the store's arrays are C-contiguous
    per = block_bytes // flat.itemsize
    spans = [(b, min(b + per, flat.size)) for b in range(0, flat.size, per)]

    def scan(span: tuple[int, int]) -> tuple[str | None, bool]:
        part = flat[span[0] : span[1]]
        digest = _DIGESTS[algo](memoryview(part).cast("B")) if algo else None
        return digest, bool(np.isfinite(part).all())

    workers = min(len(spans), os.cpu_count() or 1, 8)
    if workers <= 1:
        return [scan(sp) for sp in spans]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(scan, spans))


def _checksum(data: np.ndarray) -> dict[str, Any]:
    """The ``checksum`` field of an index for ``data`` (see :func:`_verify_data`)."""
    blocks = [d for d, _ in _scan_blocks(data, CHECK_BLOCK_BYTES, CHECK_ALGO)]
    return {"algo": CHECK_ALGO, "block_bytes": CHECK_BLOCK_BYTES, "blocks": blocks}


def _verify_data(data_path: Path, data: np.ndarray, checksum: Any, index_path: Path) -> None:
    """Raise CorruptStore unless ``data`` matches ``checksum`` and is finite; once per process.

    A store written before checksums existed (``checksum`` None), or by a newer version with an
    algorithm this one lacks, is checked for finiteness only; the next merge adds a checksum.
    """
    ident = _file_identity(data_path)
    if ident in _VERIFIED:
        return
    try:
        algo = None if checksum is None else str(checksum["algo"])
        block_bytes = CHECK_BLOCK_BYTES if checksum is None else int(checksum["block_bytes"])
        expected = None if checksum is None else [str(d) for d in checksum["blocks"]]
        if algo not in _DIGESTS:
            algo, expected = None, None
        if block_bytes <= 0 or block_bytes % data.itemsize:
            raise ValueError(f"bad block size {block_bytes}")
    except (KeyError, TypeError, ValueError) as e:
        raise CorruptStore(f"index {index_path} has an unreadable checksum ({e})") from e
    scanned = _scan_blocks(data, block_bytes, algo)
    if expected is not None and len(expected) != len(scanned):
        raise CorruptStore(f"data file {data_path} does not match its checksum in {index_path} "
                           f"({len(scanned)} blocks, index lists {len(expected)})")
    rows_per_block = block_bytes / (data.itemsize * max(1, data.shape[1]))
    for k, (digest, finite) in enumerate(scanned):
        rows = f"rows {int(k * rows_per_block)}-{min(data.shape[0], int((k + 1) * rows_per_block)) - 1}"
        if expected is not None and digest != expected[k]:
            raise CorruptStore(f"data file {data_path} does not match its checksum in {index_path} ({rows} changed)")
        if not finite:
            raise CorruptStore(f"data file {data_path} holds NaN or infinite values ({rows})")
    _VERIFIED.add(ident)


@dataclass
class _Store:
    """The committed state of one (extractor, config) store."""

    data: np.ndarray  # (rows, dim) float32 memmap
    keys: list[str]
    offsets: np.ndarray
    lengths: np.ndarray
    valid: np.ndarray
    data_file: str | None

    @property
    def pos(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.keys)}

    @staticmethod
    def empty(dim: int) -> "_Store":
        z = np.zeros(0, dtype=np.int64)
        return _Store(np.zeros((0, dim), np.float32), [], z, z, z, None)


_DATA_NAME = re.compile(r"data-[0-9a-f]{12}\.npy")  # what _write_store names data files


def _data_name(name: Any, index_path: Path) -> str:
    """The index's ``data`` field if it is a data file name; a path (absolute, ``..``) could
    make the cache read any file, so it marks the index as corrupt."""
    if not isinstance(name, str) or not _DATA_NAME.fullmatch(name):
        raise CorruptStore(f"index {index_path} names data file {name!r}, not a data-<12 hex>.npy file of its directory")
    return name


def _read_store(sdir: Path, dim: int) -> _Store | None:
    """The store's committed state; None when there is none; CorruptStore when it is damaged."""
    index_path = sdir / "index.json"
    if not index_path.is_file():
        return None
    for _attempt in range(5):
        try:
            idx = json.loads(index_path.read_text())
            data_path = sdir / _data_name(idx["data"], index_path)
            keys = list(idx["keys"])
            offsets = np.asarray(idx["offsets"], dtype=np.int64)
            lengths = np.asarray(idx["lengths"], dtype=np.int64)
            valid = np.asarray(idx["valid"], dtype=np.int64)
            rows, idim = int(idx["rows"]), int(idx["dim"])
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptStore(f"index {index_path} is unreadable ({e})") from e
        if not data_path.is_file():
            # A concurrent merge may have replaced index + data between our two reads: retry.
            if json.loads(index_path.read_text()).get("data") != idx["data"]:
                continue
            raise CorruptStore(f"data file {data_path} named by {index_path} is missing")
        if idim != dim or not (len(keys) == len(offsets) == len(lengths) == len(valid)):
            raise CorruptStore(f"index {index_path} is inconsistent (dim {idim} vs {dim}, or ragged fields)")
        if len(keys) and (offsets.min() < 0 or (offsets + lengths).max() > rows or lengths.min() < 0):
            raise CorruptStore(f"index {index_path} has offsets outside the {rows} rows of {data_path}")
        try:
            data = np.load(data_path, mmap_mode="r")
        except (ValueError, OSError, EOFError) as e:
            raise CorruptStore(f"data file {data_path} is unreadable ({e})") from e
        if data.dtype != np.float32 or data.shape != (rows, dim):
            raise CorruptStore(f"data file {data_path} has {data.dtype} {data.shape}, index says float32 ({rows}, {dim})")
        _verify_data(data_path, data, idx.get("checksum"), index_path)
        return _Store(data, keys, offsets, lengths, valid, idx["data"])
    raise CorruptStore(f"index {index_path} keeps changing under us")


_WRITE_CHUNK_BYTES = 16 * 2**20


def _write_rows(f: Any, rows: np.ndarray) -> None:
    """Append float32 rows to an open data file, in chunks (bounded syscalls and memory)."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    step = max(1, _WRITE_CHUNK_BYTES // max(1, rows.itemsize * (rows.shape[1] if rows.ndim == 2 else 1)))
    for b in range(0, rows.shape[0], step):
        f.write(memoryview(rows[b : b + step]).cast("B"))


def _old_runs(old: _Store) -> Iterator[np.ndarray]:
    """The old store's rows in index order, coalesced into contiguous runs of its data file."""
    start = end = 0
    for o, n in zip(old.offsets.tolist(), old.lengths.tolist()):
        if o != end:
            if end > start:
                yield old.data[start:end]
            start = o
        end = o + n
    if end > start:
        yield old.data[start:end]


def _write_store(sdir: Path, old: _Store, new: dict[str, tuple[np.ndarray, int]], dim: int, meta: dict[str, Any]) -> None:
    """Write old + new entries to a fresh data file, then commit the index. Caller holds the lock.

    The free space is checked first, and the file is written with plain writes, not through a
    memory map: on a full disk a memmap write is a SIGBUS ("Bus error") that kills the process
    and strands the temp file, while ``write`` fails with ENOSPC, which ``atomic_write`` turns
    into a :class:`DiskFullError` after deleting the temp file.
    """
    keys = list(old.keys) + list(new)
    lengths = np.concatenate([old.lengths, np.array([a.shape[0] for a, _ in new.values()], dtype=np.int64)])
    valid = np.concatenate([old.valid, np.array([v for _, v in new.values()], dtype=np.int64)])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(keys) else lengths
    rows = int(lengths.sum())
    path = sdir / f"data-{uuid.uuid4().hex[:12]}.npy"
    index = dict(meta, version=INDEX_VERSION, data=path.name, rows=rows, dim=dim, keys=keys,
                 offsets=offsets.tolist(), lengths=lengths.tolist(), valid=valid.tolist())
    pieces = itertools.chain(_old_runs(old), (a for a, _ in new.values()))  # old entries keep their order
    with _where_the_cache_lives():
        # payload + .npy header + the index (a key, three integers and punctuation per entry)
        check_free_space(path, rows * dim * 4 + 4096 + 100 * len(keys), "write the feature store")
        _commit_store(sdir, path, pieces, index)
    for f in sdir.glob("data-*.npy"):
        if f != path:
            f.unlink(missing_ok=True)  # open memmaps of other readers stay valid on POSIX


@contextmanager
def _where_the_cache_lives() -> Iterator[None]:
    """Add to a full-disk error where the user can move the cache to."""
    try:
        yield
    except DiskFullError as e:
        raise DiskFullError(f"{e} (the feature cache's place is set by $WORKBENCH_CACHE)") from e


def _commit_store(sdir: Path, path: Path, pieces: Iterable[np.ndarray], index: dict[str, Any]) -> None:
    """Write the rows of ``pieces`` to ``path``, then ``index`` naming it (plus the checksum);
    on any failure, Ctrl-C included, neither file stays."""
    checksum: dict[str, Any] = {}

    def write_data(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            shape = (index["rows"], index["dim"])
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
            for part in pieces:
                _write_rows(f, part)
        # Hash what landed in the file (read back from the page cache), not what we meant to write.
        checksum.update(_checksum(np.load(tmp, mmap_mode="r")))

    atomic_write(path, write_data)
    try:
        text = json.dumps(dict(index, checksum=checksum))
        atomic_write(sdir / "index.json", lambda tmp: tmp.write_text(text))
    except BaseException:
        path.unlink(missing_ok=True)  # not committed: it would only be an orphan taking space
        raise
    _VERIFIED.add(_file_identity(path))  # just hashed: its first load need not rehash it


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
    not finite. One such clip fails a whole batch, so the batch is redone one by one."""
    from workbench.features.audio_io import NonFiniteAudioError

    try:
        return list(extractor.extract_batch(utts))
    except NonFiniteAudioError as e:
        if len(utts) == 1:
            return [str(e)]
    return [_extract_arrays(extractor, [u])[0] for u in utts]


def _extract_chunk(extractor: Extractor, utts: Sequence[Utterance]) -> tuple[list[Result], list[str]]:
    """Worker: features and valid lengths of a chunk (or skip reasons), and its audio warnings.

    Module level so it pickles. Warnings are returned rather than printed so that the parent
    reports them once per extraction, also when they were raised in a worker process.
    """
    from workbench.features.audio_io import AudioWarning

    valid_of = getattr(extractor, "valid_length", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AudioWarning)
        out: list[Result] = []
        for u, a in zip(utts, _extract_arrays(extractor, utts)):
            a = a if isinstance(a, str) else _check(extractor, u, a)
            out.append(a if isinstance(a, str) else (a, int(valid_of(u)) if callable(valid_of) else a.shape[0]))
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
    from workbench.features.audio_io import AudioWarning

    n = len(set(messages))
    warnings.warn(f"{extractor.name}: {n} audio issue(s) while extracting:{_summary(messages)}", AudioWarning, stacklevel=4)


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
    batched = extractor.batched
    bar = tqdm(total=len(utts), desc=f"extract {extractor.name}", unit="utt", disable=not progress)
    results: list[Result] = []
    messages: list[str] = []
    try:
        if batched or n_jobs <= 1 or len(utts) < 16:
            # Batched extractors parallelise inside (torch threads / GPU); chunks feed the bar.
            size = getattr(extractor, "batch_size", None) or getattr(extractor.config, "batch_size", 8)
            step = 4 * int(size)
            for b in range(0, len(utts), step):
                chunk = utts[b : b + step]
                out, msgs = _extract_chunk(extractor, chunk)
                results.extend(out)
                messages.extend(msgs)
                bar.update(len(chunk))
            return results
        size = max(1, min(32, -(-len(utts) // (4 * n_jobs))))
        chunks = [utts[b : b + size] for b in range(0, len(utts), size)]
        for chunk, (out, msgs) in zip(chunks, _pool(n_jobs).map(_extract_chunk, [extractor] * len(chunks), chunks)):
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


def _memory_bounded_groups(ext: Extractor, keys: list[str], utts: Mapping[str, Utterance], limit: int) -> list[list[str]]:
    """Split keys into consecutive groups whose estimated feature bytes stay under ``limit``."""
    groups: list[list[str]] = []
    size = limit  # start a new group on the first key
    for k in keys:
        fs = ext.frame_seconds
        rows = 64 if fs is None else utts[k].duration / fs + 1  # text: a few dozen words
        rows = min(rows, getattr(ext, "max_samples", rows))  # waveform is cropped
        est = int(rows * ext.dim * 4)
        if size + est > limit and (not groups or groups[-1]):
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
        return self.root / extractor.name / extractor.config.hash()

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
        todo: dict[str, Utterance] = {}
        for k, u in zip(keys, manifest):
            if k not in have and k not in todo:
                todo[k] = u
        if todo:
            _check_writable(sdir, ext, len(todo))  # before extracting: the work could not be kept
        n_jobs = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
        failed: dict[str, str] = {}  # content key -> why it was skipped
        for group in _memory_bounded_groups(ext, list(todo), todo, self.max_pending_bytes):
            # Extract a group, then merge it: pending results stay bounded in memory.
            results = _run_extraction(ext, [todo[k] for k in group], n_jobs, progress)
            failed.update((k, r) for k, r in zip(group, results) if isinstance(r, str))
            new = {k: r for k, r in zip(group, results) if not isinstance(r, str)}
            if not new:
                continue
            with _locked(sdir / "lock"):
                _remove_leftovers(sdir)
                current = self._load(sdir, ext.dim, locked=True)  # another process may have merged meanwhile
                present = set(current.keys)
                new = {k: v for k, v in new.items() if k not in present}
                if new:
                    meta = {"extractor": ext.name, "config": json.loads(ext.config.to_json()), "frame_seconds": ext.frame_seconds}
                    _write_store(sdir, current, new, ext.dim, meta)
            store = self._load(sdir, ext.dim)
        skipped = {u.id: failed[k] for k, u in zip(keys, manifest) if k in failed}
        _warn_skipped(ext, skipped)
        pos = store.pos
        kept = [(u.id, pos[k]) for k, u in zip(keys, manifest) if k not in failed]
        ids, rows = [i for i, _ in kept], [r for _, r in kept]
        return FeatureSet(ext.name, ext.config.to_json(), store.data, ids, store.offsets[rows],
                          store.lengths[rows], store.valid[rows], ext.frame_seconds, skipped)

    def _load(self, sdir: Path, dim: int, locked: bool = False) -> _Store:
        """The store's committed state, or an empty one; a corrupt store is dropped with a warning."""
        try:
            store = _read_store(sdir, dim)
            if store is not None and not locked:
                _tidy(sdir, store.data_file)
            return store or _Store.empty(dim)
        except CorruptStore as e:
            warnings.warn(f"feature cache: {e}; discarding the store and re-extracting", CacheWarning, stacklevel=3)
        if locked:
            (sdir / "index.json").unlink(missing_ok=True)
            return _Store.empty(dim)
        with _locked(sdir / "lock"):
            try:  # a writer may have repaired it while we waited for the lock
                return _read_store(sdir, dim) or _Store.empty(dim)
            except CorruptStore:
                (sdir / "index.json").unlink(missing_ok=True)
        return _Store.empty(dim)

    def clear(self, extractor: Extractor | str | None = None) -> None:
        """Delete one extractor's stores (all configs), or the whole cache."""
        import shutil

        target = self.root if extractor is None else self.root / (extractor if isinstance(extractor, str) else extractor.name)
        shutil.rmtree(target, ignore_errors=True)
