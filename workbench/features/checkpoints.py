"""Encoder checkpoints the user supplies: a local directory, or a name in the Hugging Face cache.

The workbench ships no encoder weights besides MiniLM; BERT, a self-supervised speech model or
any other Hugging Face encoder comes from the user as

- a local directory written by ``save_pretrained`` (``config.json`` and the weights), or
- a checkpoint name (``bert-base-uncased``, ``facebook/wav2vec2-base``) already present in the
  Hugging Face cache (``$HF_HOME``/``$HF_HUB_CACHE``).

Nothing is downloaded unless the user opts in, with ``allow_download=True`` or the environment
variable ``WORKBENCH_ALLOW_DOWNLOADS=1``: a run must not fetch hundreds of megabytes (or fail on a
machine without network) because of a typo. A checkpoint found nowhere raises
:class:`CheckpointError` naming it and the two ways to provide it.

A checkpoint's identity is its name plus a content hash of its weights file(s)
(:func:`checkpoint_identity`): the feature cache keys stores by it, so two checkpoints never
share cached features, even under one name (a directory overwritten with other weights).
Hashing a base-size model's weights reads ~400 MB, so hashes are memoised per process by
(path, size, mtime_ns).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "config.json").write_text("{}"); _ = (d / "model.safetensors").write_bytes(b"weights")
>>> cp = resolve_checkpoint(str(d))
>>> cp.path == d, len(cp.weights_hash)
(True, 40)
"""

from __future__ import annotations

import hashlib
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from workbench.errors import WorkbenchError

#: Set to 1 (or true/yes) to let the workbench download checkpoints that are not on disk.
ALLOW_DOWNLOADS_ENV = "WORKBENCH_ALLOW_DOWNLOADS"

# Weight files torch's ``from_pretrained`` reads (single or sharded); TF/Flax weights are not
# loaded by the workbench, so they do not count.
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
# What a download fetches: configs, tokenizer files and the weights (safetensors first).
_DOWNLOAD_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors"]


class CheckpointError(WorkbenchError, ValueError):
    """A checkpoint cannot be found or used; the message names it and what to do."""


@dataclass(frozen=True)
class Checkpoint:
    """A resolved checkpoint: the ``name`` the user gave, the directory holding its files, and
    the sha1 of its weights (all weight files, by name and content)."""

    name: str
    path: Path
    weights_hash: str

    @property
    def identity(self) -> str:
        """``name@weights_hash``: what cache keys hold."""
        return f"{self.name}@{self.weights_hash}"


@contextmanager
def no_loading_bars() -> Iterator[None]:
    """transformers' "Loading weights" bar off while the workbench loads a model it was not
    asked to show (the feature cache's own bar reports progress); restored afterwards, so a
    user's own ``from_pretrained`` calls keep theirs."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def downloads_allowed(allow_download: bool | None = None) -> bool:
    """``allow_download`` when given, else whether ``$WORKBENCH_ALLOW_DOWNLOADS`` opts in."""
    if allow_download is not None:
        return bool(allow_download)
    return os.environ.get(ALLOW_DOWNLOADS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _looks_like_path(name: str) -> bool:
    """A name the user meant as a directory (a hub name is ``org/model`` or ``model``)."""
    return (os.path.isabs(name) or name.startswith(("./", "../", "~", ".\\", "..\\")) or name in (".", "..")
            or name.count("/") > 1 or os.sep != "/" and os.sep in name)


def _how_to_provide(name: str) -> str:
    return (f"either give a local directory written by save_pretrained, or put {name!r} in the Hugging Face "
            f"cache beforehand (e.g. `hf download {name}` on a machine with network, then copy "
            f"$HF_HOME) or opt in to downloads with {ALLOW_DOWNLOADS_ENV}=1")


def weights_files(path: str | Path) -> list[Path]:
    """The weight files of a checkpoint directory (``*.safetensors``, ``pytorch_model*.bin``), sorted."""
    path = Path(path)
    found = {p for pattern in _WEIGHT_PATTERNS for p in path.glob(pattern) if p.is_file()}
    return sorted(found, key=lambda p: p.name)


_FILE_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def _sha1_file(path: Path) -> str:
    """sha1 of one file, memoised by (real path, size, mtime_ns) for this process."""
    real = os.path.realpath(path)  # the Hugging Face cache links snapshot files to blobs
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        if key in _FILE_HASHES:
            return _FILE_HASHES[key]
    h = hashlib.sha1()
    with open(real, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    with _HASH_LOCK:
        _FILE_HASHES[key] = h.hexdigest()
    return _FILE_HASHES[key]


def weights_hash(path: str | Path, name: str | None = None) -> str:
    """sha1 over the weight files of checkpoint directory ``path`` (each file's name and sha1)."""
    files = weights_files(path)
    if not files:
        raise CheckpointError(f"checkpoint {name or str(path)!r} ({path}) holds no weights file "
                              f"({' or '.join(_WEIGHT_PATTERNS)}); save the model with save_pretrained")
    h = hashlib.sha1()
    for f in files:
        h.update(f"{f.name}\0{_sha1_file(f)}\n".encode())
    return h.hexdigest()


def _from_hf_cache(name: str, allow_download: bool) -> Path:
    """The snapshot directory of hub checkpoint ``name``: from the cache, or downloaded if allowed."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(name, local_files_only=True))
        if weights_files(path) or not allow_download:
            return path
    except HFValidationError as e:
        raise CheckpointError(f"checkpoint {name!r} is not a directory and not a valid checkpoint name ({e}); "
                              + _how_to_provide(name)) from e
    except (LocalEntryNotFoundError, FileNotFoundError, OSError) as e:
        if not allow_download:
            raise CheckpointError(f"checkpoint {name!r} is neither a local directory nor in the Hugging Face "
                                  f"cache, and downloads are off; " + _how_to_provide(name)) from e
    try:
        path = Path(snapshot_download(name, allow_patterns=_DOWNLOAD_PATTERNS))
        if not weights_files(path):  # an older checkpoint with .bin weights only
            path = Path(snapshot_download(name, allow_patterns=_DOWNLOAD_PATTERNS + ["pytorch_model*.bin"]))
        return path
    except Exception as e:  # network, authentication, offline mode: all say the same to the user
        raise CheckpointError(f"checkpoint {name!r}: download failed ({type(e).__name__}: {e}); "
                              "check the name and the network (HF_HUB_OFFLINE must be unset), or give a "
                              "local directory written by save_pretrained") from e


def checkpoint_path(name_or_path: str, allow_download: bool | None = None) -> Path:
    """The directory of checkpoint ``name_or_path`` (see :func:`resolve_checkpoint`), weights not hashed."""
    name = str(name_or_path).strip()
    if not name:
        raise CheckpointError("checkpoint is empty; give a local directory or a Hugging Face checkpoint name")
    local = Path(os.path.expanduser(name))
    if local.is_dir():
        path = local
    elif local.exists():
        raise CheckpointError(f"checkpoint {name!r} is a file; give the directory written by save_pretrained")
    elif _looks_like_path(name):
        # a path, not a hub name: `hf download /models/x` would be no advice
        raise CheckpointError(f"checkpoint directory {name!r} does not exist; check the path, or give a directory "
                              "written by save_pretrained or the name of a checkpoint in the Hugging Face cache "
                              "(e.g. bert-base-uncased)")
    else:
        path = _from_hf_cache(name, downloads_allowed(allow_download))
    if not (path / "config.json").is_file():
        raise CheckpointError(f"checkpoint {name!r} ({path}) has no config.json; save the model with save_pretrained")
    return path


def resolve_checkpoint(name_or_path: str, allow_download: bool | None = None) -> Checkpoint:
    """Find checkpoint ``name_or_path`` on disk (see the module docstring) and hash its weights.

    ``allow_download`` None follows ``$WORKBENCH_ALLOW_DOWNLOADS`` (off unless set).
    Raises :class:`CheckpointError` naming the checkpoint when it is missing, not a directory,
    or holds no weights.
    """
    path = checkpoint_path(name_or_path, allow_download)
    name = str(name_or_path).strip()
    return Checkpoint(name=name, path=path, weights_hash=weights_hash(path, name))


def checkpoint_identity(name_or_path: str, allow_download: bool | None = None) -> str:
    """``name@sha1-of-weights`` of a checkpoint, for cache keys (see :func:`resolve_checkpoint`)."""
    return resolve_checkpoint(name_or_path, allow_download).identity
