"""FeatureCache: hits, misses, invalidation, atomic writes, concurrent writers, corruption, checksums,
full disks, leftovers of killed writers, read-only caches, index paths, NaN/inf audio and features.

The store format (workbench.features.store) is tested here through FeatureCache, whose fixtures
and extractors these tests share; failures are injected by patching that module's internals."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf

from workbench.corpus.manifest import Manifest, Utterance
from workbench.features import get_extractor
from workbench.features.audio import Frame34
from workbench.features.audio_io import load_audio
from workbench.features.base import Extractor, ExtractorConfig, register_extractor
from workbench.features.cache import CacheNotWritable, CacheWarning, FeatureCache, FeatureSet
from workbench.testing.dummies import make_utterance

SR = 16000


@dataclass(frozen=True)
class _BlockConfig(ExtractorConfig):
    block: int = 800  # samples per output row


@register_extractor("test_block_rms")
class _BlockRms(Extractor):
    """RMS of consecutive blocks: cheap, exact, and it counts its calls."""

    config_cls = _BlockConfig
    source = "audio"
    calls: ClassVar[list[str]] = []

    @property
    def frame_seconds(self) -> float:
        return self.config.block / SR

    @property
    def dim(self) -> int:
        return 2

    def extract(self, utt: Utterance) -> np.ndarray:
        type(self).calls.append(utt.id)
        y = load_audio(utt)
        n = len(y) // self.config.block
        blocks = y[: n * self.config.block].reshape(n, self.config.block)
        return np.stack([np.sqrt((blocks**2).mean(1)), blocks.max(1)], axis=1)


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    utts = []
    for i in range(6):
        uid = f"Ses01F_impro01_{'FM'[i % 2]}{i:03d}"
        path = tmp_path / "wav" / f"{uid}.wav"
        path.parent.mkdir(exist_ok=True)
        n = int(rng.integers(4000, 12000))
        sf.write(path, (0.2 * rng.standard_normal(n)).astype(np.float32), SR)
        utts.append(make_utterance(id=uid, audio_path=str(path), duration=n / SR))
    _BlockRms.calls.clear()
    return Manifest(utts)


def _store_files(cache: FeatureCache, ext: Extractor) -> list[str]:
    return sorted(p.name for p in cache.store_dir(ext).iterdir())


def assert_recomputed(got: np.ndarray, want: np.ndarray) -> None:
    """Features computed twice (another process, another memory alignment) may differ in the last
    bit where numpy's SIMD loops peel or block differently; a value read back from the cache is
    compared exactly instead (it is a copy)."""
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_miss_then_hit_zero_copy(tmp_path, corpus):
    cache = FeatureCache(tmp_path / "cache")
    ext = get_extractor("test_block_rms")
    fs = cache.get(ext, corpus, n_jobs=1, progress=False)
    assert sorted(_BlockRms.calls) == sorted(corpus.ids)
    assert isinstance(fs, FeatureSet) and len(fs) == 6 and fs.dim == 2 and fs.frame_seconds == 0.05
    for u, n in zip(corpus, fs.lengths):
        assert_recomputed(fs[u.id], ext.extract(u))
        assert n == round(u.duration * SR) // 800
    _BlockRms.calls.clear()
    again = cache.get("test_block_rms", corpus, progress=False)
    assert _BlockRms.calls == []  # a hit extracts nothing
    assert isinstance(again.data, np.memmap) and np.shares_memory(again[corpus.ids[2]], again.data)
    np.testing.assert_array_equal(again[corpus.ids[2]], fs[corpus.ids[2]])
    # committed state only: the index, one data file, the lock; no temp files left behind
    files = _store_files(cache, ext)
    assert files[0].startswith("data-") and files[1:] == ["index.json", "lock"]


def test_config_and_content_changes_reextract_only_what_changed(tmp_path, corpus):
    cache = FeatureCache(tmp_path / "cache")
    cache.get("test_block_rms", corpus, n_jobs=1, progress=False)
    _BlockRms.calls.clear()
    other = cache.get(get_extractor("test_block_rms", block=400), corpus, n_jobs=1, progress=False)
    assert sorted(_BlockRms.calls) == sorted(corpus.ids) and other.frame_seconds == 0.025
    _BlockRms.calls.clear()
    changed = corpus[3]
    sf.write(changed.audio_path, np.full(8000, 0.5, np.float32), SR)
    st = os.stat(changed.audio_path)
    os.utime(changed.audio_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # coarse-mtime filesystems
    fs = cache.get("test_block_rms", corpus, n_jobs=1, progress=False)
    assert _BlockRms.calls == [changed.id]
    np.testing.assert_allclose(fs[changed.id], 0.5, atol=1e-4)
    # a subset and a superset reuse the same store; a duplicate wav is extracted once
    _BlockRms.calls.clear()
    dup = dataclasses.replace(corpus[0], id="Ses01F_impro01_F099")
    fs2 = cache.get("test_block_rms", Manifest([*corpus.utterances[:2], dup]), n_jobs=1, progress=False)
    assert _BlockRms.calls == [] and np.array_equal(fs2[dup.id], fs2[corpus.ids[0]])


@pytest.mark.parametrize("failure", ["oserror", "enospc", "interrupt", "interrupt_commit"])
def test_failed_write_keeps_previous_state(tmp_path, corpus, monkeypatch, failure):
    """Any failure while writing a store (a device error, a disk filling up under us, Ctrl-C
    while writing the data or committing the index) leaves the previous store as it was and
    no temp or orphan file behind."""
    import workbench.features.store as store_mod
    from workbench.errors import DiskFullError

    cache = FeatureCache(tmp_path / "cache")
    ext = get_extractor("test_block_rms")
    first = Manifest(corpus.utterances[:3])
    cache.get(ext, first, n_jobs=1, progress=False)
    before = _store_files(cache, ext)

    real_write_rows, real_atomic_write = store_mod._write_rows, store_mod.atomic_write
    error = {"oserror": OSError("device error"), "enospc": OSError(errno.ENOSPC, "No space left on device"),
             "interrupt": KeyboardInterrupt(), "interrupt_commit": KeyboardInterrupt()}[failure]

    def write_some_then_fail(f, rows):
        real_write_rows(f, rows[:1])  # part of the data is on disk already
        raise error

    def fail_on_index(path, write):
        if Path(path).name == "index.json":
            raise error
        return real_atomic_write(path, write)

    if failure == "interrupt_commit":
        monkeypatch.setattr(store_mod, "atomic_write", fail_on_index)
    else:
        monkeypatch.setattr(store_mod, "_write_rows", write_some_then_fail)
    expected = {"oserror": pytest.raises(OSError, match="device error"),
                "enospc": pytest.raises(DiskFullError, match=rf"disk full .*{cache.store_dir(ext)}/data-\w+\.npy"),
                }.get(failure, pytest.raises(KeyboardInterrupt))
    with expected:
        cache.get(ext, corpus, n_jobs=1, progress=False)
    monkeypatch.undo()
    assert _store_files(cache, ext) == before  # no half-written or orphan data file, old index intact
    _BlockRms.calls.clear()
    cache.get(ext, first, n_jobs=1, progress=False)
    assert _BlockRms.calls == []


def test_too_little_free_space_is_refused_before_writing(tmp_path, corpus, monkeypatch):
    """Writing a store onto a full disk once died with "Bus error" (a memory-mapped write) and
    left a hidden temp file keeping the disk full; now the space is checked first."""
    from workbench.errors import DiskFullError

    cache = FeatureCache(tmp_path / "cache")
    ext = get_extractor("test_block_rms")
    first = Manifest(corpus.utterances[:3])
    cache.get(ext, first, n_jobs=1, progress=False)
    before = _store_files(cache, ext)
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=4096))
    with pytest.raises(DiskFullError, match=rf"{cache.store_dir(ext)}/data-\w+\.npy: needs [\d.]+ \w+ .*4.0 KiB free.*WORKBENCH_CACHE"):
        cache.get(ext, corpus, n_jobs=1, progress=False)
    monkeypatch.undo()
    assert _store_files(cache, ext) == before
    cache.get(ext, corpus, n_jobs=1, progress=False)  # with room again, the merge goes through
    assert len(json.loads((cache.store_dir(ext) / "index.json").read_text())["keys"]) == 6


@pytest.mark.parametrize("damage", ["truncate_data", "bad_index", "missing_data"])
def test_corrupt_store_is_detected_and_reextracted(tmp_path, corpus, damage):
    cache = FeatureCache(tmp_path / "cache")
    ext = get_extractor("test_block_rms")
    good = {i: np.array(a) for i, a in cache.get(ext, corpus, n_jobs=1, progress=False).items()}
    sdir = cache.store_dir(ext)
    data = next(sdir.glob("data-*.npy"))
    if damage == "truncate_data":
        data.write_bytes(data.read_bytes()[:-40])
        match = data.name
    elif damage == "bad_index":
        (sdir / "index.json").write_text('{"data": "x", "keys": [')
        match = "index.json"
    else:
        data.unlink()
        match = data.name
    _BlockRms.calls.clear()
    with pytest.warns(CacheWarning, match=match):
        fs = cache.get(ext, corpus, n_jobs=1, progress=False)
    assert sorted(_BlockRms.calls) == sorted(corpus.ids)
    for i in corpus.ids:
        assert_recomputed(fs[i], good[i])


def test_bad_audio_names_the_utterance_and_caches_nothing(tmp_path, corpus):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    m = Manifest([*corpus.utterances, make_utterance(id="Ses01F_impro01_M042", audio_path=str(bad))])
    cache = FeatureCache(tmp_path / "cache")
    with pytest.raises(ValueError, match="Ses01F_impro01_M042"):
        cache.get("test_block_rms", m, n_jobs=1, progress=False)
    assert not (cache.store_dir(get_extractor("test_block_rms")) / "index.json").exists()


_WRITER = textwrap.dedent(
    """
    import sys
    from workbench.corpus.manifest import Manifest
    from workbench.features.cache import FeatureCache
    fs = FeatureCache(sys.argv[1]).get("frame34", Manifest.load(sys.argv[2]), n_jobs=1, progress=False)
    print(len(fs))
    """
)


def test_two_concurrent_writers_end_with_one_consistent_store(tmp_path, corpus, monkeypatch):
    root = tmp_path / "cache"
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    Manifest(corpus.utterances[:4]).to_jsonl(a)
    Manifest(corpus.utterances[2:]).to_jsonl(b)  # overlapping: both extract utterances 2 and 3
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(root), str(m)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for m in (a, b)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ext = get_extractor("frame34")
    index = json.loads((FeatureCache(root).store_dir(ext) / "index.json").read_text())
    assert len(index["keys"]) == len(set(index["keys"])) == 6
    assert len(list(FeatureCache(root).store_dir(ext).glob("data-*.npy"))) == 1

    def no_extraction(self, utt):
        raise AssertionError(f"{utt.id} should have been cached")

    monkeypatch.setattr(Frame34, "extract", no_extraction)
    fs = FeatureCache(root).get(ext, corpus, n_jobs=1, progress=False)
    monkeypatch.undo()
    for u in corpus:
        assert_recomputed(fs[u.id], ext.extract(u))


def test_parallel_extraction_equals_serial(tmp_path, corpus):
    many = Manifest(dataclasses.replace(u, id=f"{u.id[:-3]}{k}{u.id[-2:]}") for k in range(3) for u in corpus)
    serial = FeatureCache(tmp_path / "one").get("frame34", many, n_jobs=1, progress=False)
    parallel = FeatureCache(tmp_path / "two").get("frame34", many, n_jobs=2, progress=False)
    for i in many.ids:
        assert_recomputed(serial[i], parallel[i])


def test_waveform_valid_lengths_survive_the_cache(tmp_path, corpus):
    fs = FeatureCache(tmp_path / "cache").get("waveform", corpus, n_jobs=1, progress=False)
    assert fs.lengths.tolist() == [160000] * 6
    assert fs.valid_lengths.tolist() == [round(u.duration * SR) for u in corpus]


def test_an_extractor_declares_its_hooks_and_the_cache_asks_no_other_way(tmp_path, corpus):
    """The hooks the cache uses are the base class's, with defaults (no getattr probes): a
    minimal extractor stores every step as valid; one overriding valid_length is believed."""
    import ast

    import workbench.features.cache as cache_module

    tree = ast.parse(Path(cache_module.__file__).read_text(encoding="utf-8"))
    probes = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "getattr"]
    assert probes == [], f"getattr capability probes in features/cache.py at lines {probes}"
    ext = get_extractor("test_block_rms")
    assert ext.valid_length(corpus[corpus.ids[0]]) is None and ext.max_samples is None and ext.batch_size == 8
    assert ext.source_path(corpus[corpus.ids[0]]) == corpus[corpus.ids[0]].audio_path
    fs = FeatureCache(tmp_path / "cache").get(ext, corpus, n_jobs=1, progress=False)
    assert fs.valid_lengths.tolist() == fs.lengths.tolist()

    class Halved(_BlockRms):
        def valid_length(self, utt):
            return len(self.extract(utt)) // 2

    Halved.name = "test_block_rms_halved"
    fs = FeatureCache(tmp_path / "cache2").get(Halved(), corpus, n_jobs=1, progress=False)
    assert fs.valid_lengths.tolist() == [n // 2 for n in fs.lengths.tolist()]


def test_bounded_memory_commits_in_groups(tmp_path, corpus):
    cache = FeatureCache(tmp_path / "cache", max_pending_bytes=200)  # about two utterances per merge
    ext = get_extractor("test_block_rms")
    fs = cache.get(ext, corpus, n_jobs=1, progress=False)
    assert sorted(_BlockRms.calls) == sorted(corpus.ids)
    assert len(list(cache.store_dir(ext).glob("data-*.npy"))) == 1
    for u in corpus:
        assert_recomputed(fs[u.id], ext.extract(u))


def test_audio_issues_are_reported_once_per_extraction(tmp_path, corpus):
    from workbench.features.audio_io import AudioWarning

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(4000, np.float32), SR)
    m = Manifest([*corpus.utterances[:2], make_utterance(id="Ses01F_impro01_M077", audio_path=str(silent), duration=0.25)])
    with pytest.warns(AudioWarning) as record:
        fs = FeatureCache(tmp_path / "cache").get("frame34", m, n_jobs=1, progress=False)
    assert len(record) == 1 and "Ses01F_impro01_M077" in str(record[0].message)
    assert np.isfinite(fs["Ses01F_impro01_M077"]).all()


# --------------------------------------------------------------------------- checksum (hardening)
def _overwrite_rows(data_file, damage: str) -> None:
    """Damage rows 3..9 of a store's data file in place, leaving the .npy header intact."""
    m = np.load(data_file, mmap_mode="r+")
    if damage == "random":
        m[3:10] = np.random.default_rng(1).standard_normal((7, m.shape[1])).astype(np.float32)
    elif damage == "random_bytes":
        m[3:10].view(np.uint8)[:] = np.random.default_rng(1).integers(0, 256, m[3:10].nbytes, dtype=np.uint8).reshape(7, -1)
    elif damage == "nan":
        m[3:10] = np.nan
    else:
        m[3:10] = 0.0
    m.flush()
    del m
    st = os.stat(data_file)  # a later write: coarse-mtime filesystems may not have moved it
    os.utime(data_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


@pytest.mark.parametrize("damage", ["random", "random_bytes", "nan", "zeros"])
def test_overwritten_data_fails_its_checksum_and_is_reextracted(tmp_path, corpus, damage):
    cache = FeatureCache(tmp_path / "cache")
    ext = get_extractor("test_block_rms")
    good = {i: np.array(a) for i, a in cache.get(ext, corpus, n_jobs=1, progress=False).items()}
    data = next(cache.store_dir(ext).glob("data-*.npy"))
    _overwrite_rows(data, damage)
    _BlockRms.calls.clear()
    with pytest.warns(CacheWarning, match=rf"{data.name}.*(checksum|NaN).*re-extracting"):
        fs = cache.get(ext, corpus, n_jobs=1, progress=False)
    assert sorted(_BlockRms.calls) == sorted(corpus.ids)
    for i in corpus.ids:
        assert_recomputed(fs[i], good[i])
    _BlockRms.calls.clear()
    cache.get(ext, corpus, n_jobs=1, progress=False)  # the rebuilt store verifies
    assert _BlockRms.calls == []


@pytest.mark.parametrize("damage", [None, "zeros", "nan"])
def test_store_without_checksum_is_rebuilt_and_says_so(tmp_path, corpus, damage):
    """issue 28: a store whose checksum was deleted from index.json and whose body was zeroed
    was served (only NaN/inf were scanned for). A store without a checksum is rebuilt."""
    cache = FeatureCache(tmp_path / "cache")
    ext = get_extractor("test_block_rms")
    first = cache.get(ext, corpus, n_jobs=1, progress=False)
    expected = {i: np.array(first[i]) for i in corpus.ids}
    index_path = cache.store_dir(ext) / "index.json"
    index = json.loads(index_path.read_text())
    index.pop("checksum", None)  # written before checksums existed, or removed
    index_path.write_text(json.dumps(index))
    if damage:
        _overwrite_rows(next(cache.store_dir(ext).glob("data-*.npy")), damage)
    _BlockRms.calls.clear()
    with pytest.warns(CacheWarning, match=r"index\.json has no checksum .* cannot be verified; rebuilding"):
        again = FeatureCache(tmp_path / "cache").get(ext, corpus, n_jobs=1, progress=False)
    assert sorted(_BlockRms.calls) == sorted(corpus.ids)
    for i in corpus.ids:
        np.testing.assert_allclose(again[i], expected[i], rtol=0, atol=0)
    assert "checksum" in json.loads(index_path.read_text())  # the rebuilt store has one


def test_store_is_verified_once_per_process(tmp_path, corpus, monkeypatch):
    import workbench.features.store as store_mod

    cache = FeatureCache(tmp_path / "cache")
    ext = get_extractor("test_block_rms")
    cache.get(ext, corpus, n_jobs=1, progress=False)
    seen = []
    real = store_mod._scan_blocks
    monkeypatch.setattr(store_mod, "_scan_blocks", lambda data, *a, **k: seen.append(len(data)) or real(data, *a, **k))
    monkeypatch.setattr(store_mod, "_VERIFIED", set())  # as in a fresh process
    for _ in range(3):
        cache.get(ext, corpus, n_jobs=1, progress=False)
    assert len(seen) == 1  # hashed on first use only
    data = next(cache.store_dir(ext).glob("data-*.npy"))
    _overwrite_rows(data, "zeros")  # a changed (size, mtime) is verified again
    with pytest.warns(CacheWarning, match=data.name):
        cache.get(ext, corpus, n_jobs=1, progress=False)


# --------------------------------------------------------------------------- leftovers of killed writers
_KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import workbench.features.store as store_mod
    from workbench.corpus.manifest import Manifest
    from workbench.features.cache import FeatureCache
    real = store_mod._write_rows
    def write_then_die(f, rows):
        real(f, rows)
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a full disk's SIGBUS would
    store_mod._write_rows = write_then_die
    FeatureCache(sys.argv[1]).get("frame34", Manifest.load(sys.argv[2]), n_jobs=1, progress=False)
    """
)


def _plant_leftovers(cache: FeatureCache, ext: Extractor) -> list[Path]:
    """What a killed writer leaves behind: atomic_write temp files and an uncommitted data file."""
    sdir = cache.store_dir(ext)
    files = [sdir / ".data-0123456789ab.npy.k2j3h4x_.tmp", sdir / ".index.json.a8b7c6d5.tmp",
             sdir / "data-0123456789ab.npy", cache.root / ".content-hashes.json.q1w2e3r4.tmp"]
    for f in files:
        f.write_bytes(b"\0" * 4096)
    return files


def test_a_killed_writers_temp_file_is_removed_on_next_use(tmp_path, corpus):
    root = tmp_path / "cache"
    m = tmp_path / "m.jsonl"
    Manifest(corpus.utterances[:3]).to_jsonl(m)
    FeatureCache(root).get("frame34", Manifest.load(m), n_jobs=1, progress=False)  # a committed store
    corpus.to_jsonl(m)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(root), str(m)], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    sdir = FeatureCache(root).store_dir(get_extractor("frame34"))
    assert [p.name for p in sdir.glob(".data-*.tmp")]  # the killed merge left its temp file
    fs = FeatureCache(root).get("frame34", Manifest(corpus.utterances[:3]), n_jobs=1, progress=False)  # a hit
    assert len(fs) == 3
    assert sorted(p.name for p in sdir.iterdir() if p.name not in ("index.json", "lock")) == [
        json.loads((sdir / "index.json").read_text())["data"]]


def test_leftovers_are_removed_on_a_hit_and_at_a_merge(tmp_path, corpus):
    cache = FeatureCache(tmp_path / "cache")
    ext = get_extractor("test_block_rms")
    first = Manifest(corpus.utterances[:3])
    cache.get(ext, first, n_jobs=1, progress=False)
    committed = _store_files(cache, ext)
    stale = _plant_leftovers(cache, ext)
    cache.get(ext, first, n_jobs=1, progress=False)  # a hit
    assert _store_files(cache, ext) == committed
    stale = _plant_leftovers(cache, ext)
    cache.get(ext, corpus, n_jobs=1, progress=False)  # a merge (and a hash memo update)
    assert not any(f.exists() for f in stale)
    assert len(list(cache.store_dir(ext).iterdir())) == 3  # index, data, lock


def test_leftovers_are_kept_while_another_process_holds_the_lock(tmp_path, corpus):
    """A writer holds the store's lock from its first byte to its commit: its files are not stale."""
    import fcntl

    cache = FeatureCache(tmp_path / "cache")
    ext = get_extractor("test_block_rms")
    cache.get(ext, corpus, n_jobs=1, progress=False)
    stale = _plant_leftovers(cache, ext)[:3]
    with open(cache.store_dir(ext) / "lock", "a+") as held:  # a separate open file: flock conflicts
        fcntl.flock(held, fcntl.LOCK_EX)
        cache.get(ext, corpus, n_jobs=1, progress=False)  # a hit must neither wait nor delete
        assert all(f.exists() for f in stale)
    cache.get(ext, corpus, n_jobs=1, progress=False)
    assert not any(f.exists() for f in stale)


# --------------------------------------------------------------------------- read-only caches
def _make_read_only(root: Path, monkeypatch) -> None:
    """chmod the cache read-only; where chmod does not bind (root), refuse writes under it too."""
    import builtins
    import io

    for d, _, files in os.walk(root):
        for f in files:
            os.chmod(Path(d) / f, 0o444)
        os.chmod(d, 0o555)
    if os.geteuid() != 0:
        return
    inside = lambda p: os.path.abspath(os.fspath(p)).startswith(str(root))  # noqa: E731

    def refuse(path):
        raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    real_os_open, real_open = os.open, builtins.open

    def os_open(path, flags, *a, **k):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *a, **k)

    def open_(file, mode="r", *a, **k):
        if isinstance(file, (str, os.PathLike)) and inside(file) and set(mode) & set("wax+"):
            refuse(file)
        return real_open(file, mode, *a, **k)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    for name in ("unlink", "remove", "rename", "replace", "mkdir", "rmdir"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda p, *a, _real=real, **k: refuse(p) if inside(p) else _real(p, *a, **k))


@pytest.mark.parametrize("memo", ["missing", "stale"])
def test_read_only_cache_serves_hits_without_a_usable_hash_memo(tmp_path, corpus, monkeypatch, memo):
    root = tmp_path / "cache"
    cache = FeatureCache(root)
    ext = get_extractor("test_block_rms")
    good = {i: np.array(a) for i, a in cache.get(ext, corpus, n_jobs=1, progress=False).items()}
    memo_path = root / "content-hashes.json"
    if memo == "missing":
        memo_path.unlink()
    else:  # the wavs were copied or touched since: every (size, mtime) misses
        entries = json.loads(memo_path.read_text())
        memo_path.write_text(json.dumps({p: [size, mtime - 1, digest] for p, (size, mtime, digest) in entries.items()}))
    _make_read_only(root, monkeypatch)
    _BlockRms.calls.clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(2):
                fs = FeatureCache(root).get(ext, corpus, n_jobs=1, progress=False)
    finally:
        monkeypatch.undo()
        for d, _, _ in os.walk(root):
            os.chmod(d, 0o755)
    assert _BlockRms.calls == []
    for i in corpus.ids:
        np.testing.assert_array_equal(fs[i], good[i])  # exact: read back from the same store
    cache_warnings = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert len(cache_warnings) <= 1, cache_warnings  # at most once per process
    assert all("content-hashes.json" in m for m in cache_warnings)


# --------------------------------------------------------------------------- index fields
@pytest.mark.parametrize("where", ["../../elsewhere.npy", "absolute", "data-0123456789ab.npy/../x", "index.json"])
def test_index_data_field_outside_the_store_is_corrupt(tmp_path, corpus, where):
    """The index's ``data`` names a file in the store directory, never a path: an index that
    points elsewhere (even at a valid copy) is treated as corrupt and rebuilt."""
    cache = FeatureCache(tmp_path / "cache")
    ext = get_extractor("test_block_rms")
    cache.get(ext, corpus, n_jobs=1, progress=False)
    sdir = cache.store_dir(ext)
    index = json.loads((sdir / "index.json").read_text())
    outside = tmp_path / "cache" / "elsewhere.npy"  # == sdir / "../../elsewhere.npy"
    shutil.copy(sdir / index["data"], outside)  # a perfect copy: only its place is wrong
    index["data"] = str(outside) if where == "absolute" else where
    (sdir / "index.json").write_text(json.dumps(index))
    _BlockRms.calls.clear()
    with pytest.warns(CacheWarning, match=r"index\.json.*data.*re-extracting"):
        cache.get(ext, corpus, n_jobs=1, progress=False)
    assert sorted(_BlockRms.calls) == sorted(corpus.ids)
    assert json.loads((sdir / "index.json").read_text())["data"].startswith("data-")


# --------------------------------------------------------------------------- non-finite audio / features
@register_extractor("test_nan_for_one")
class _NanForOne(_BlockRms):
    """Block RMS, but NaN in one row of the utterances whose id ends in 003 (a buggy extractor)."""

    def extract(self, utt: Utterance) -> np.ndarray:
        out = super().extract(utt)
        if utt.id.endswith("003"):
            out[1, 0] = np.nan
        return out


def _non_finite_wavs(tmp_path) -> list[Utterance]:
    utts = []
    for uid, bad in [("Ses01F_impro01_M090", np.nan), ("Ses01F_impro01_F091", np.inf)]:
        y = 0.1 * np.ones(6400, np.float32)
        y[3000] = bad
        path = tmp_path / f"{uid}.wav"
        sf.write(path, y, SR, subtype="FLOAT")  # only float wavs can hold NaN/inf
        utts.append(make_utterance(id=uid, audio_path=str(path), duration=0.4))
    return utts


@pytest.mark.parametrize("extractor, n_jobs", [("test_block_rms", 1), ("mfcc120", 1), ("frame34", 2)])
def test_non_finite_audio_is_skipped_reported_once_and_the_rest_kept(tmp_path, corpus, extractor, n_jobs):
    from workbench.features.audio_io import AudioWarning

    bad = _non_finite_wavs(tmp_path)
    # bad clips in the middle: a batched extractor (mfcc120) meets them inside a batch; with
    # n_jobs=2 and 3 copies of the corpus (20 utterances) they go through worker processes
    good = [dataclasses.replace(u, id=f"{u.id[:-3]}{k}{u.id[-2:]}") for k in range(3 if n_jobs > 1 else 1) for u in corpus]
    m = Manifest([*good[:3], *bad, *good[3:]])
    ext = get_extractor(extractor, device="cpu") if extractor == "mfcc120" else get_extractor(extractor)
    cache = FeatureCache(tmp_path / "cache")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fs = cache.get(ext, m, n_jobs=n_jobs, progress=False)
    skipped_warnings = [str(w.message) for w in caught if issubclass(w.category, AudioWarning) and "skipped" in str(w.message)]
    assert len(skipped_warnings) == 1, skipped_warnings  # one summary
    assert all(b.id in skipped_warnings[0] for b in bad)
    assert fs.ids == [u.id for u in good] and all(b.id not in fs for b in bad)
    assert sorted(fs.skipped) == sorted(b.id for b in bad)
    assert all("NaN or infinite" in reason for reason in fs.skipped.values())
    with pytest.raises(KeyError, match="Ses01F_impro01_M090.*skipped"):
        fs["Ses01F_impro01_M090"]
    # the good work is kept (cached); the bad ones are tried again, and reported again
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        again = FeatureCache(tmp_path / "cache").get(ext, Manifest(good), n_jobs=1, progress=False)
    assert again.skipped == {} and len(again) == len(good)
    index = json.loads((cache.store_dir(ext) / "index.json").read_text())
    assert len(index["keys"]) == len(corpus)  # the copies share their content keys


def test_non_finite_extractor_output_is_skipped_not_cached(tmp_path, corpus):
    from workbench.features.audio_io import AudioWarning

    cache = FeatureCache(tmp_path / "cache")
    with pytest.warns(AudioWarning, match=r"(?s)skipped 1 utterance.*NaN.*Ses01F_impro01_M003.*test_nan_for_one"):
        fs = cache.get("test_nan_for_one", corpus, n_jobs=1, progress=False)
    assert list(fs.skipped) == ["Ses01F_impro01_M003"] and len(fs) == 5
    assert np.isfinite(fs.data).all()
    _BlockRms.calls.clear()
    with pytest.warns(AudioWarning, match="Ses01F_impro01_M003"):
        cache.get("test_nan_for_one", corpus, n_jobs=1, progress=False)
    assert _BlockRms.calls == ["Ses01F_impro01_M003"]  # the others come from the cache


@pytest.mark.filterwarnings("ignore::workbench.features.cache.CacheWarning")  # the memo cannot be saved: expected
def test_a_miss_on_a_read_only_cache_is_one_clear_error_before_extracting(tmp_path, corpus, monkeypatch):
    root = tmp_path / "cache"
    ext = get_extractor("test_block_rms")
    FeatureCache(root).get(ext, corpus.subset(corpus.ids[:2]), n_jobs=1, progress=False)
    _make_read_only(root, monkeypatch)
    _BlockRms.calls.clear()
    try:
        with pytest.raises(CacheNotWritable, match=rf"feature cache {root}/\S+ is read-only to you and lacks "
                                                   rf"{len(corpus) - 2} utterance\(s\) of test_block_rms; set WORKBENCH_CACHE"):
            FeatureCache(root).get(ext, corpus, n_jobs=1, progress=False)
    finally:
        monkeypatch.undo()
        for d, _, _ in os.walk(root):
            os.chmod(d, 0o755)
    assert _BlockRms.calls == []  # nothing extracted that could not be kept
