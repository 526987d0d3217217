"""Checkpoints that load without unpickling code: ``last.pt``, ``best.pt`` and branch weights.

Run folders live on shared filesystems (a Ray cluster's workers all read them), so loading a
checkpoint must never execute what is in it. Every checkpoint is therefore written from
tensors and plain containers only and read back with ``torch.load(weights_only=True)``, which
refuses anything else. The random-number states, which Python and NumPy keep as tuples with
NumPy arrays inside, are stored as tensors and lists and rebuilt on load.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "last.pt"
>>> save_checkpoint(p, {"epoch": 3, "rng": rng_state()})
>>> load_checkpoint(p)["epoch"]
3
"""

from __future__ import annotations

import io
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.io import atomic_write


class CheckpointError(WorkbenchError, RuntimeError):
    """A checkpoint file is unreadable, truncated or holds objects other than tensors and plain
    containers; the message names the file."""


def save_checkpoint(path: str | Path, obj: dict[str, Any]) -> None:
    """Write ``obj`` (tensors, numbers, strings and containers of them) atomically to ``path``."""
    def write(tmp: Path) -> None:
        buf = io.BytesIO()
        torch.save(obj, buf)
        tmp.write_bytes(buf.getvalue())

    atomic_write(path, write)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; :class:`CheckpointError` names the file
    when it is truncated, corrupt or carries code."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses globals it does not know: a crafted file (or one written by an
        # older workbench that pickled NumPy objects). Never retry without the safeguard.
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: refused to load: it holds objects other than tensors and plain "
                              f"containers ({first}); delete it to retrain, it is not safe to load") from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(f"{path}: unreadable checkpoint (truncated or corrupt: {type(e).__name__}); "
                              "delete it to retrain from scratch") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a workbench checkpoint (holds a {type(obj).__name__}, not a dict)")
    return obj


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) RNG states as tensors and plain containers."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].cpu().numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    # RNG states are CPU byte tensors, but a checkpoint loaded with map_location="cuda" moves
    # them to the GPU, where the setters reject them: bring them back first.
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
