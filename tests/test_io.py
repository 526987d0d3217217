"""workbench.io: atomic writes that name the path on a full disk and clean up after kills."""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections import namedtuple

import pytest

from workbench import io as wio
from workbench.errors import DiskFullError


def test_a_full_disk_names_the_target_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "table.parquet"
    target.write_text("old")

    def no_space(tmp):
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=f"disk full while trying to write {target}"):
        wio.atomic_write(target, no_space)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]


def test_other_os_errors_pass_through_unchanged(tmp_path):
    def denied(tmp):
        raise PermissionError(errno.EACCES, "denied")

    with pytest.raises(PermissionError):
        wio.atomic_write(tmp_path / "x", denied)


def test_temp_files_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "results.parquet"
    stale = tmp_path / ".results.parquet.abc123.tmp"  # what kill -9 mid-write leaves
    fresh = tmp_path / ".results.parquet.def456.tmp"  # a live writer's file: must survive
    other = tmp_path / ".predictions.parquet.abc123.tmp"  # another target's: not ours to touch
    for p in (stale, fresh, other):
        p.write_bytes(b"x" * 1000)
    old = time.time() - 2 * wio.STALE_TEMP_SECONDS
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    wio.atomic_write(target, lambda p: p.write_text("new"))
    assert not stale.exists() and fresh.exists() and other.exists()
    assert target.read_text() == "new"


def test_free_space_check_names_path_and_size(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
    with pytest.raises(DiskFullError, match=rf"to write {tmp_path}/store\.npy: needs 100\.0 MiB .*1\.0 MiB free"):
        wio.check_free_space(tmp_path / "store.npy", 100 * 2**20)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 * 2**30, 0, 10 * 2**30))
    wio.check_free_space(tmp_path / "nested" / "dir" / "store.npy", 100 * 2**20)  # a missing dir checks its parent


def test_a_file_size_limit_names_the_file(tmp_path):
    """issue 28: `ulimit -f` during training gave `OSError [Errno 27] File too large` and no path."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    code = textwrap.dedent(f"""
        import resource
        from workbench.errors import WriteError
        from workbench.io import atomic_write
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            atomic_write({str(tmp_path / 'big.bin')!r}, lambda p: p.write_bytes(bytes(100_000)))
        except WriteError as e:
            print("ERR", e)
    """)
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"cannot write {tmp_path / 'big.bin'}: File too large; the file size limit was reached (ulimit -f)" in out.stdout
    assert not list(tmp_path.glob(".big.bin.*.tmp"))  # the temp file is removed
