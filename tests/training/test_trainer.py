"""The trainer: overfitting, determinism, resume, NaN detection, class weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.models import create_model
from workbench.training.data import SERDataset, collate, make_loader
from workbench.training.trainer import TrainingError, class_weights_for, predict, train_model

CLASSES = ("neu", "hap", "ang", "sad")


def _dataset(manifest, features, ids=None):
    data = {k: v.data for k, v in features.items()}
    return SERDataset(manifest, ids or manifest.ids, data, CLASSES)


def _model(seed=0, **cfg):
    torch.manual_seed(seed)
    return create_model("unimodal_audio", audio_dim=6, hidden=8, dense_layers=0, **cfg)


def test_tiny_model_overfits_a_small_set(manifest, features, tmp_path, tiny_preset):
    ds = _dataset(manifest, features, manifest.ids[:24])
    model = _model()
    res = train_model(model, ds, tiny_preset(epochs=40, lr=2e-2), tmp_path, progress=False)
    assert res.history["train_loss"].iloc[-1] < 0.1
    p = predict(model, collate([ds[i] for i in range(len(ds))]))
    assert (p["probs"].argmax(1) == torch.tensor(ds.labels)).all()
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert list(metrics.columns) == ["epoch", "train_loss", "val_loss", "val_ua", "val_wa", "lr", "seconds"]
    assert metrics["epoch"].tolist() == list(range(1, 41))


def test_same_seed_same_weights(manifest, features, tmp_path, tiny_preset):
    ds = _dataset(manifest, features)
    a, b = _model(dropout=0.3), _model(dropout=0.3)
    train_model(a, ds, tiny_preset(), tmp_path / "a", seed=7, progress=False)
    train_model(b, ds, tiny_preset(), tmp_path / "b", seed=7, progress=False)
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k


def test_resume_after_interruption_gives_identical_weights(manifest, features, tmp_path, tiny_preset):
    ds = _dataset(manifest, features)
    settings = tiny_preset(epochs=4, warmup_steps=5, grad_clip=1.0)
    full = _model(dropout=0.3)
    train_model(full, ds, settings, tmp_path / "full", seed=1, progress=False)

    class Interrupted(Exception):
        pass

    def stop_after_2(epoch, row):
        if epoch == 2:
            raise Interrupted

    part = _model(dropout=0.3)
    with pytest.raises(Interrupted):
        train_model(part, ds, settings, tmp_path / "part", seed=1, progress=False, on_epoch_end=stop_after_2)
    # A fresh process would build a fresh model (other init): resume must not depend on it.
    resumed = _model(seed=99, dropout=0.3)
    res = train_model(resumed, ds, settings, tmp_path / "part", seed=1, progress=False)
    assert res.epochs_run == 4
    for (k, x), (_, y) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(x, y), k
    assert pd.read_csv(tmp_path / "part" / "metrics.csv")["epoch"].tolist() == [1, 2, 3, 4]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_checkpoints_and_resumes_on_cuda(manifest, features, tmp_path, tiny_preset):
    ds = _dataset(manifest, features)
    settings = tiny_preset(epochs=4, lr=2e-2)
    full = _model()
    res = train_model(full, ds, settings, tmp_path / "full", seed=1, device="cuda", progress=False)
    assert res.device.startswith("cuda") and next(full.parameters()).is_cuda
    assert res.history["train_loss"].iloc[-1] < res.history["train_loss"].iloc[0]

    def stop_after_2(epoch, row):
        if epoch == 2:
            raise KeyboardInterrupt

    part = _model()
    with pytest.raises(KeyboardInterrupt):
        train_model(part, ds, settings, tmp_path / "part", seed=1, device="cuda", progress=False,
                    on_epoch_end=stop_after_2)
    resumed = _model(seed=99)
    assert train_model(resumed, ds, settings, tmp_path / "part", seed=1, device="cuda", progress=False).epochs_run == 4
    # cuDNN kernels need not be bit-reproducible; the resumed run must still land on the same weights.
    for (k, x), (_, y) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(x, y, atol=1e-4), k


def test_nan_loss_names_epoch_step_and_utterances(manifest, features, tmp_path, tiny_preset):
    bad = manifest.ids[5]
    features["audio"].data[bad] = features["audio"].data[bad].copy()
    features["audio"].data[bad][0, 0] = np.nan
    ds = _dataset(manifest, features)
    settings = tiny_preset(batch_size=4)
    # The trainer reads losses in groups of steps; the error must still name the batch
    # that holds the NaN, and nothing of the epoch may be saved.
    _, sampler = make_loader(ds, settings.batch_size, seed=0, bucketing=settings.bucketing)
    sampler.set_epoch(0)
    step = next(k for k, idx in enumerate(sampler, start=1) if ds.ids.index(bad) in idx)
    with pytest.raises(TrainingError, match=rf"loss is nan at epoch 1, step {step} .*{bad}"):
        train_model(_model(), ds, settings, tmp_path, progress=False)
    assert not (tmp_path / "last.pt").exists() and not (tmp_path / "metrics.csv").exists()


def test_early_stopping_keeps_best_validation_epoch(manifest, features, tmp_path, tiny_preset):
    train, val = _dataset(manifest, features, manifest.ids[:60]), _dataset(manifest, features, manifest.ids[60:])
    res = train_model(_model(), train, tiny_preset(epochs=30, early_stopping_patience=2), tmp_path,
                      validation=val, progress=False)
    h = res.history
    assert res.best_epoch == int(h.loc[h["val_ua"].idxmax(), "epoch"])
    assert res.epochs_run <= 30 and res.epochs_run - res.best_epoch <= 2
    assert h["val_ua"].notna().all()


def test_class_weights_are_inverse_frequency():
    w = class_weights_for([0, 0, 0, 1, 2, 2], 3)
    np.testing.assert_allclose(w.numpy(), [6 / 9, 6 / 3, 6 / 6], rtol=1e-6)
    with pytest.raises(TrainingError, match=r"\[1\] have no training examples"):
        class_weights_for([0, 2], 3)
