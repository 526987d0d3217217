"""Checkpoints load with weights_only=True: a crafted file in a run folder runs no code, a
truncated one is named, and the RNG states survive the plain-container round trip."""

from __future__ import annotations

import errno
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.errors import DiskFullError
from workbench.models import create_model
from workbench.training.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from workbench.training.data import SERDataset
from workbench.training.runs import load_trained
from workbench.training.trainer import train_model

CLASSES = ("neu", "hap", "ang", "sad")
MARKER = "pwned.txt"


class _RunsCode:
    """Unpickling this calls ``Path.touch`` on the marker: what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _dataset(manifest, features):
    return SERDataset(manifest, manifest.ids, {k: v.data for k, v in features.items()}, CLASSES)


def _model():
    torch.manual_seed(0)
    return create_model("unimodal_audio", audio_dim=6, hidden=8, dense_layers=0)


def test_crafted_last_pt_runs_no_code_on_resume(manifest, features, tmp_path, tiny_recipe):
    marker = tmp_path / MARKER
    torch.save({"model": _RunsCode(marker)}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"last\.pt: refused to load"):
        train_model(_model(), _dataset(manifest, features), tiny_recipe(), tmp_path, progress=False)
    assert not marker.exists()


def test_crafted_best_pt_runs_no_code_in_load_trained(tmp_path):
    model = _model()
    config = {"model": "unimodal_audio", "model_config": {"audio_dim": 6, "hidden": 8, "dense_layers": 0}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    marker = tmp_path / MARKER
    torch.save({"model": _RunsCode(marker)}, tmp_path / "best.pt")
    with pytest.raises(CheckpointError, match=r"best\.pt: refused to load"):
        load_trained(tmp_path)
    assert not marker.exists()
    # the same run folder with a genuine checkpoint loads
    save_checkpoint(tmp_path / "best.pt", {"model": model.state_dict(), "epoch": 1})
    loaded, _ = load_trained(tmp_path)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k


def test_truncated_last_pt_names_the_file(manifest, features, tmp_path, tiny_recipe):
    train_model(_model(), _dataset(manifest, features), tiny_recipe(epochs=1), tmp_path, progress=False)
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=rf"{last}: unreadable checkpoint"):
        train_model(_model(), _dataset(manifest, features), tiny_recipe(epochs=2), tmp_path, progress=False)


def test_written_checkpoints_hold_only_plain_data(manifest, features, tmp_path, tiny_recipe):
    # weights_only=True is the whole check: it refuses any global it does not know
    train_model(_model(), _dataset(manifest, features), tiny_recipe(epochs=2), tmp_path, progress=False,
                validation=_dataset(manifest, features))
    for name in ("last.pt", "best.pt"):
        torch.load(tmp_path / name, weights_only=True)


def test_rng_state_round_trips_through_a_checkpoint(tmp_path):
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    np.random.normal()  # leaves a cached Gaussian in NumPy's legacy state
    save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})
    expected = (random.random(), np.random.normal(size=3), torch.rand(3))
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    got = (random.random(), np.random.normal(size=3), torch.rand(3))
    assert got[0] == expected[0]  # same generator state: the same bits, not just close values
    assert np.array_equal(got[1], expected[1]) and torch.equal(got[2], expected[2])


def test_not_a_dict_is_refused(tmp_path):
    torch.save(torch.zeros(2), tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not a workbench checkpoint"):
        load_checkpoint(tmp_path / "x.pt")


def test_full_disk_while_checkpointing_names_the_file(manifest, features, tmp_path, tiny_recipe, monkeypatch):
    def no_space(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", no_space)
    with pytest.raises(DiskFullError, match=rf"disk full while trying to write {tmp_path}/(best|last)\.pt"):
        train_model(_model(), _dataset(manifest, features), tiny_recipe(epochs=1), tmp_path, progress=False)
    assert not list(tmp_path.glob(".*.tmp"))
