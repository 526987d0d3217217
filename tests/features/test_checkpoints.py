"""Checkpoint resolution and the feature-cache store key (no model is loaded, nothing downloaded)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from workbench.corpus.manifest import Utterance
from workbench.errors import WorkbenchError
from workbench.features.base import Extractor, ExtractorConfig
from workbench.features.cache import FeatureCache
from workbench.features.checkpoints import (
    ALLOW_DOWNLOADS_ENV,
    CheckpointError,
    checkpoint_identity,
    resolve_checkpoint,
)
from workbench.testing.dummies import make_utterance


def _checkpoint(d: Path, weights: bytes = b"weights-1") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text('{"model_type": "bert"}')
    (d / "model.safetensors").write_bytes(weights)
    return d


def test_local_directory_resolves_with_the_sha1_of_its_weights(tmp_path):
    d = _checkpoint(tmp_path / "enc", b"abc")
    cp = resolve_checkpoint(str(d))
    assert cp.path == d and cp.name == str(d)
    expected = hashlib.sha1(f"model.safetensors\0{hashlib.sha1(b'abc').hexdigest()}\n".encode()).hexdigest()
    assert cp.weights_hash == expected
    assert checkpoint_identity(str(d)) == f"{d}@{expected}"


def test_weights_hash_changes_when_the_weights_change(tmp_path):
    d = _checkpoint(tmp_path / "enc", b"abc")
    before = resolve_checkpoint(str(d)).weights_hash
    (d / "model.safetensors").write_bytes(b"abd")  # same size: the memo must see the mtime change
    st = os.stat(d / "model.safetensors")
    os.utime(d / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    after = resolve_checkpoint(str(d)).weights_hash
    assert after != before
    # a config-only change does not change the weights hash
    (d / "config.json").write_text('{"model_type": "bert", "x": 1}')
    assert resolve_checkpoint(str(d)).weights_hash == after


def test_sharded_and_bin_weights_all_count(tmp_path):
    d = _checkpoint(tmp_path / "enc")
    one = resolve_checkpoint(str(d)).weights_hash
    (d / "pytorch_model.bin").write_bytes(b"more")
    assert resolve_checkpoint(str(d)).weights_hash != one


def test_missing_checkpoint_offline_names_it_and_the_two_ways(monkeypatch, tmp_path):
    monkeypatch.delenv(ALLOW_DOWNLOADS_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(CheckpointError) as e:
        resolve_checkpoint("no-such-org/no-such-bert")
    msg = str(e.value)
    assert "'no-such-org/no-such-bert'" in msg
    assert "local directory" in msg and "Hugging Face cache" in msg and ALLOW_DOWNLOADS_ENV in msg
    assert "\n" not in msg
    assert isinstance(e.value, WorkbenchError)


def test_missing_directory_and_bad_directories(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "nowhere" / "bert"))
    with pytest.raises(CheckpointError, match="'/models/x' does not exist; check the path") as e:
        resolve_checkpoint("/models/x")
    assert "hf download" not in str(e.value)  # a download command for a local path is no advice
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no weights file"):
        resolve_checkpoint(str(empty))
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="is a file"):
        resolve_checkpoint(str(tmp_path / "f.bin"))
    with pytest.raises(CheckpointError, match="empty"):
        resolve_checkpoint("")


def test_a_name_in_the_hugging_face_cache_resolves_offline(monkeypatch, tmp_path):
    """A hub-cache layout (refs/main -> snapshots/<rev>) is found by name without network."""
    hub = tmp_path / "hub"
    snap = _checkpoint(hub / "models--acme--tiny-enc" / "snapshots" / "0123abcd", b"cached")
    (hub / "models--acme--tiny-enc" / "refs").mkdir()
    (hub / "models--acme--tiny-enc" / "refs" / "main").write_text("0123abcd")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(hub))
    monkeypatch.delenv(ALLOW_DOWNLOADS_ENV, raising=False)
    cp = resolve_checkpoint("acme/tiny-enc")
    assert cp.path.resolve() == snap.resolve() and cp.name == "acme/tiny-enc"


# --------------------------------------------------------------------------- store keys
@dataclass(frozen=True)
class _Cfg(ExtractorConfig):
    checkpoint: str = ""
    scale: float = 1.0


class _FakeEncoder(Extractor):
    """Reads its 'weights' (the checkpoint's safetensors bytes) so each checkpoint gives other features."""

    name = "fake_encoder"
    config_cls = _Cfg
    source = "text"

    @property
    def frame_seconds(self):
        return None

    @property
    def dim(self) -> int:
        return 2

    def extract(self, utt: Utterance) -> np.ndarray:
        w = (Path(self.config.checkpoint) / "model.safetensors").read_bytes()
        return np.array([[len(utt.text), w[-1]]], np.float32) * self.config.scale


def _utts(n: int = 3) -> list[Utterance]:
    return [make_utterance(id=f"Ses01F_impro01_M00{i}", text="word " * (i + 1)) for i in range(n)]


def test_two_checkpoints_give_two_stores_and_a_rewrite_a_third(tmp_path):
    a = _checkpoint(tmp_path / "a", b"weights-A")
    b = _checkpoint(tmp_path / "b", b"weights-B")
    cache = FeatureCache(tmp_path / "cache")
    ea, eb = _FakeEncoder(_Cfg(checkpoint=str(a))), _FakeEncoder(_Cfg(checkpoint=str(b)))
    assert cache.store_dir(ea) != cache.store_dir(eb)
    fa = cache.get(ea, _utts(), n_jobs=1, progress=False)
    fb = cache.get(eb, _utts(), n_jobs=1, progress=False)
    assert fa["Ses01F_impro01_M000"][0, 1] == ord("A") and fb["Ses01F_impro01_M000"][0, 1] == ord("B")
    # same name, other weights: a new store, not the old features
    old_dir = cache.store_dir(ea)
    (a / "model.safetensors").write_bytes(b"weights-C")
    st = os.stat(a / "model.safetensors")
    os.utime(a / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert cache.store_dir(ea) != old_dir
    assert cache.get(ea, _utts(), n_jobs=1, progress=False)["Ses01F_impro01_M000"][0, 1] == ord("C")


def test_without_a_checkpoint_the_store_key_is_the_config_hash():
    assert _FakeEncoder(_Cfg()).store_key() == _Cfg().hash()
    assert _FakeEncoder(_Cfg(scale=2.0)).store_key() != _Cfg().hash()


def test_minilm_default_keeps_its_store_key():
    """Caches written before the ``checkpoint`` field existed stay valid (hashes of the old JSON)."""
    from workbench.features.base import get_extractor
    from workbench.features.text import TextContextualConfig, TextStaticConfig

    assert TextContextualConfig().to_json() == '{"layers": 4, "pooling": "mean"}'
    assert get_extractor("text_contextual").store_key() == "17426dc0e639b6b8"
    assert get_extractor("text_static").store_key() == "90d7712e8f0f0930"
    assert TextStaticConfig(checkpoint="x").hash() != TextStaticConfig().hash()
