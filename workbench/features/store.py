"""One feature store on disk: the features of one (extractor, config), read and written whole.

A store directory (``<cache root>/<extractor name>/<config hash>/``, see
:mod:`workbench.features.cache`) holds::

    index.json         keys, offsets, lengths, valid lengths, checksum; names the data file
    data-<token>.npy   every entry's rows concatenated, float32 (rows, dim)
    lock               flock'ed while the store is written

Why this shape:

- One data file per store: a corpus loads with one ``np.load(mmap_mode="r")`` and a JSON
  read, and each utterance's array is a zero-copy view (no per-file open).
- Atomic and concurrent: data files get fresh names and the index (the commit point) is
  replaced with :func:`workbench.io.atomic_write`; a merge (re-read the index, append what is
  still missing, write, rename) holds an exclusive ``flock`` on ``lock``, so two processes
  merging at once both finish and the second keeps the first's entries. Readers never lock.
- Corruption (bad JSON, inconsistent offsets, a truncated or missing data file) is detected
  on load as :class:`CorruptStore`; the cache then discards the store and re-extracts.
- Bytes overwritten inside the data file (random values, NaN, zeros; the header intact) are
  caught by a checksum: the index records an XXH3-128 digest of every 16 MiB block of the
  payload, computed from the written file. A store is verified (blocks on threads) on its
  first load in a process; the verified (path, inode, size, mtime_ns) is memoised so later
  loads cost nothing. Writers store finite values only, so a store that verifies is finite. A
  store whose index has no checksum (written before checksums, or the field was deleted) is
  rebuilt: the cache discards it and re-extracts, with a warning, since a zeroed body is finite
  and would pass a scan. One whose checksum uses an algorithm this version does not know (a
  newer writer's) is scanned for NaN/inf instead.
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
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import re
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import xxhash

from workbench.io import atomic_write, check_free_space

INDEX_VERSION = 1


class CorruptStore(Exception):
    """A store's index or data file is damaged; the message names the file."""


@dataclass
class Store:
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
    def empty(dim: int) -> Store:
        z = np.zeros(0, dtype=np.int64)
        return Store(np.zeros((0, dim), np.float32), [], z, z, z, None)


# --------------------------------------------------------------------------- lock and leftovers
@contextmanager
def locked(lock_path: Path, wait: bool = True) -> Iterator[bool]:
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


#: What a killed writer leaves in a store directory: :func:`atomic_write`'s hidden temp files
#: and a data file renamed into place whose index was never committed.
_LEFTOVERS = (".data-*.npy.*.tmp", ".index.json.*.tmp", "data-*.npy")


def _leftovers(sdir: Path, patterns: Sequence[str], keep: str | None) -> list[Path]:
    """Files matching ``patterns`` in ``sdir`` other than ``keep``."""
    return [f for pat in patterns for f in sdir.glob(pat) if f.name != keep]


def _committed_data_name(sdir: Path) -> str | None:
    try:
        return str(json.loads((sdir / "index.json").read_text())["data"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_leftovers(sdir: Path) -> None:
    """Delete what killed writers left in ``sdir``. The caller holds the store's lock.

    Every write into a store directory happens under its lock, from the first byte of the
    temp file to the index commit, so with the lock held no file here is in progress: only
    the data file the index names is live (readers' open memmaps survive the unlink).
    """
    for f in _leftovers(sdir, _LEFTOVERS, keep=_committed_data_name(sdir)):
        f.unlink(missing_ok=True)


def tidy(sdir: Path, data_file: str | None) -> None:
    """Remove leftovers if there are any and no writer is active; a reader never waits for it."""
    if not _leftovers(sdir, _LEFTOVERS, keep=data_file):
        return
    try:
        with locked(sdir / "lock", wait=False) as got:
            if got:
                remove_leftovers(sdir)
    except OSError:
        pass  # a read-only cache: the leftovers are not ours to remove


# --------------------------------------------------------------------------- checksums
#: Data files are checksummed in blocks of this many payload bytes: blocks are checked on
#: several threads (xxhash, zlib and hashlib release the GIL), and a mismatch names the rows
#: it covers.
CHECK_BLOCK_BYTES = 16 * 2**20
#: XXH3-128 per block guards against damage (not an adversary) at the least cost. On the
#: 318 MiB demo mfcc120 store, one thread: xxh3_128 15 ms, crc32 120 ms, finiteness scan
#: 46 ms; the first load of a store in a process pays this once.
CHECK_ALGO = "xxh3_128"
_DIGESTS: dict[str, Callable[[memoryview], str]] = {
    "xxh3_128": lambda b: xxhash.xxh3_128_hexdigest(b),
    "crc32": lambda b: f"{zlib.crc32(b):08x}",
    "sha1": lambda b: hashlib.sha1(b).hexdigest(),
}

# (real path, inode, size, mtime_ns) of data files verified in this process: a store is
# hashed on its first load only, as the cache's hash memo does for source files.
_VERIFIED: set[tuple[str, int, int, int]] = set()


def _file_identity(path: Path) -> tuple[str, int, int, int]:
    st = os.stat(path)
    return (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)


def _scan_blocks(data: np.ndarray, block_bytes: int, algo: str | None) -> list[tuple[str | None, bool | None]]:
    """(hex digest, None) of each payload block, or (None, all values finite) when ``algo`` is
    None. A store whose checksum verifies holds exactly the bytes its writer wrote, and writers
    store finite values only (extraction skips the rest), so finiteness is scanned only where
    there is no checksum to check."""
    flat = data.reshape(-1)  # a view: the store's arrays are C-contiguous
    per = block_bytes // flat.itemsize
    spans = [(b, min(b + per, flat.size)) for b in range(0, flat.size, per)]

    def scan(span: tuple[int, int]) -> tuple[str | None, bool | None]:
        part = flat[span[0] : span[1]]
        if algo:
            return _DIGESTS[algo](memoryview(part).cast("B")), None
        return None, bool(np.isfinite(part).all())

    workers = min(len(spans), os.cpu_count() or 1, 8)
    if workers <= 1:
        return [scan(sp) for sp in spans]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(scan, spans))


def _checksum(data: np.ndarray) -> dict[str, Any]:
    """The ``checksum`` field of an index for ``data`` (see :func:`_verify_data`)."""
    blocks = [d for d, _ in _scan_blocks(data, CHECK_BLOCK_BYTES, CHECK_ALGO)]
    return {"algo": CHECK_ALGO, "block_bytes": CHECK_BLOCK_BYTES, "blocks": blocks}


def _parse_checksum(checksum: Any, itemsize: int, index_path: Path) -> tuple[str | None, int, list[str] | None]:
    """(algorithm, block bytes, expected digests) of an index's ``checksum`` field.

    Algorithm and digests are None where this version can check finiteness only: a store
    written before checksums existed (no field), or by a newer version with another algorithm.
    """
    if checksum is None:
        return None, CHECK_BLOCK_BYTES, None
    try:
        algo, block_bytes = str(checksum["algo"]), int(checksum["block_bytes"])
        expected = [str(d) for d in checksum["blocks"]]
        if block_bytes <= 0 or block_bytes % itemsize:
            raise ValueError(f"bad block size {block_bytes}")
    except (KeyError, TypeError, ValueError) as e:
        raise CorruptStore(f"index {index_path} has an unreadable checksum ({e})") from e
    return (algo, block_bytes, expected) if algo in _DIGESTS else (None, block_bytes, None)


def _verify_data(data_path: Path, data: np.ndarray, checksum: Any, index_path: Path) -> None:
    """Raise CorruptStore unless ``data`` matches ``checksum`` and is finite; once per process.

    With a checksum of an algorithm this version does not know (see :func:`_parse_checksum`)
    only finiteness is checked; :func:`read_store` refuses an index without any checksum.
    """
    ident = _file_identity(data_path)
    if ident in _VERIFIED:
        return
    algo, block_bytes, expected = _parse_checksum(checksum, data.itemsize, index_path)
    scanned = _scan_blocks(data, block_bytes, algo)
    if expected is not None and len(expected) != len(scanned):
        raise CorruptStore(f"data file {data_path} does not match its checksum in {index_path} "
                           f"({len(scanned)} blocks, index lists {len(expected)})")
    rows_per_block = block_bytes / (data.itemsize * max(1, data.shape[1]))
    for k, (digest, finite) in enumerate(scanned):
        rows = f"rows {int(k * rows_per_block)}-{min(data.shape[0], int((k + 1) * rows_per_block)) - 1}"
        if expected is not None and digest != expected[k]:
            raise CorruptStore(f"data file {data_path} does not match its checksum in {index_path} ({rows} changed)")
        if finite is False:
            raise CorruptStore(f"data file {data_path} holds NaN or infinite values ({rows})")
    _VERIFIED.add(ident)


# --------------------------------------------------------------------------- reading
_DATA_NAME = re.compile(r"data-[0-9a-f]{12}\.npy")  # what _new_data_name makes


def _new_data_name() -> str:
    return f"data-{uuid.uuid4().hex[:12]}.npy"


def _data_name(name: Any, index_path: Path) -> str:
    """The index's ``data`` field if it is a data file name; a path (absolute, ``..``) could
    make the cache read any file, so it marks the index as corrupt."""
    if not isinstance(name, str) or not _DATA_NAME.fullmatch(name):
        raise CorruptStore(f"index {index_path} names data file {name!r}, not a data-<12 hex>.npy file of its directory")
    return name


def read_store(sdir: Path, dim: int) -> Store | None:
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
        if idx.get("checksum") is None:
            # Without a checksum only finiteness could be checked, and a zeroed body is finite:
            # such a store is rebuilt (the cache re-extracts it, saying so), never served unverified.
            raise CorruptStore(f"index {index_path} has no checksum (written before checksums, or it was removed), "
                               f"so {data_path.name} cannot be verified; rebuilding the store")
        _verify_data(data_path, data, idx.get("checksum"), index_path)
        return Store(data, keys, offsets, lengths, valid, idx["data"])
    raise CorruptStore(f"index {index_path} keeps changing under us")


def discard(sdir: Path, dim: int, lock_held: bool) -> Store:
    """Delete a corrupt store's index (its data files become leftovers); the empty store.

    Without ``lock_held`` the lock is taken first and the store read again: a writer may
    have repaired it while we waited, and then that store is returned.
    """
    if not lock_held:
        with locked(sdir / "lock"):
            try:
                return read_store(sdir, dim) or Store.empty(dim)
            except CorruptStore:
                return discard(sdir, dim, lock_held=True)
    (sdir / "index.json").unlink(missing_ok=True)
    return Store.empty(dim)


# --------------------------------------------------------------------------- writing
_WRITE_CHUNK_BYTES = 16 * 2**20


def _write_rows(f: Any, rows: np.ndarray) -> None:
    """Append float32 rows to an open data file, in chunks (bounded syscalls and memory)."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    step = max(1, _WRITE_CHUNK_BYTES // max(1, rows.itemsize * (rows.shape[1] if rows.ndim == 2 else 1)))
    for b in range(0, rows.shape[0], step):
        f.write(memoryview(rows[b : b + step]).cast("B"))


def _old_runs(old: Store) -> Iterator[np.ndarray]:
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


def write_store(sdir: Path, old: Store, new: dict[str, tuple[np.ndarray, int]], dim: int, meta: dict[str, Any]) -> None:
    """Write old + new entries to a fresh data file, then commit the index. Caller holds the lock.

    ``new`` maps keys to (rows, valid length); ``meta`` is stored in the index as it is. The
    free space is checked first, and the file is written with plain writes, not through a
    memory map: on a full disk a memmap write is a SIGBUS ("Bus error") that kills the process
    and strands the temp file, while ``write`` fails with ENOSPC, which ``atomic_write`` turns
    into a :class:`~workbench.errors.DiskFullError` after deleting the temp file.
    """
    keys = list(old.keys) + list(new)
    lengths = np.concatenate([old.lengths, np.array([a.shape[0] for a, _ in new.values()], dtype=np.int64)])
    valid = np.concatenate([old.valid, np.array([v for _, v in new.values()], dtype=np.int64)])
    offsets = np.cumsum(lengths) - lengths
    rows = int(lengths.sum())
    path = sdir / _new_data_name()
    index = dict(meta, version=INDEX_VERSION, data=path.name, rows=rows, dim=dim, keys=keys,
                 offsets=offsets.tolist(), lengths=lengths.tolist(), valid=valid.tolist())
    pieces = itertools.chain(_old_runs(old), (a for a, _ in new.values()))  # old entries keep their order
    # payload + .npy header + the index (a key, three integers and punctuation per entry)
    check_free_space(path, rows * dim * 4 + 4096 + 100 * len(keys), "write the feature store")
    _commit(sdir, path, pieces, index)
    for f in _leftovers(sdir, ["data-*.npy"], keep=path.name):
        f.unlink(missing_ok=True)  # open memmaps of other readers stay valid on POSIX


def _commit(sdir: Path, path: Path, pieces: Iterable[np.ndarray], index: dict[str, Any]) -> None:
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
