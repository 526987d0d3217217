"""Small file helpers shared by every layer (manifests, caches, result tables)."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from workbench.errors import DiskFullError, WriteError

#: A temp file of :func:`atomic_write` this much older than now belongs to a killed writer
#: (the writes it serves take seconds), so the next write to the same target removes it.
STALE_TEMP_SECONDS = 3600

#: Free space kept back when checking before a write, so the rest of the system (and the
#: rename that follows) still has room.
DISK_MARGIN_BYTES = 16 * 2**20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and then rename the temp file onto ``path``.

    The temp file lives in the same directory, so the rename is atomic: readers see the old
    file or the new one, never half of one, even if the process is killed mid-write.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = atomic_write(d / "x.txt", lambda p: p.write_text("hi"))
    >>> (d / "x.txt").read_text(), sorted(q.name for q in d.iterdir())
    ('hi', ['x.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise disk_full_error(path, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temps(path: str | Path, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete temp files that :func:`atomic_write` left beside ``path`` when its process was
    killed (``kill -9`` runs no cleanup), if older than ``older_than`` seconds; returns them.

    A live writer's temp file is younger than that, so concurrent writers are never disturbed.
    """
    path = Path(path)
    cutoff = time.time() - older_than
    removed = []
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # another writer cleaned it first
            continue
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped, for ``Path.glob``."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def check_free_space(path: str | Path, nbytes: int, what: str = "write") -> None:
    """Raise :class:`DiskFullError` unless ``nbytes`` (plus a margin) fit where ``path`` goes.

    Checked before a large write so that a full disk is a one-line error naming the path and
    the size instead of a ``Bus error`` from a memory-mapped file or a half-written table.

    >>> check_free_space(tempfile.gettempdir(), 1)
    >>> check_free_space(tempfile.gettempdir(), 2**62)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    workbench.errors.DiskFullError: not enough free space to write ...
    """
    path = Path(path)
    probe = path if path.is_dir() else path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < nbytes + DISK_MARGIN_BYTES:
        raise DiskFullError(f"not enough free space to {what} {path}: needs {_size(nbytes)} "
                            f"(+{_size(DISK_MARGIN_BYTES)} margin), {_size(free)} free on {probe}; "
                            "free some space or point the output elsewhere")


#: errno -> what to tell the user when a write fails for a reason of the machine.
_WRITE_FAILURES = {
    errno.EFBIG: "the file size limit was reached (ulimit -f); raise it or write smaller files",
    errno.EROFS: "the filesystem is read-only; point the output elsewhere",
    errno.EIO: "an I/O error (failing disk or network filesystem); check the device",
}


def disk_full_error(path: str | Path, exc: OSError, what: str = "write") -> OSError:
    """The error to raise for ``exc`` while writing ``path``: a :class:`DiskFullError` for
    ``ENOSPC``/``EDQUOT``, a :class:`~workbench.errors.WriteError` naming ``path`` for a file
    size limit, a read-only filesystem or an I/O error (``OSError [Errno 27] File too large``
    named no file); other errors as they are."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"disk full while trying to {what} {path}: free some space or "
                             "point the output elsewhere")
    if exc.errno in _WRITE_FAILURES:
        return WriteError(exc.errno, f"cannot {what} {path}: {exc.strerror or exc}; {_WRITE_FAILURES[exc.errno]}")
    return exc


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
