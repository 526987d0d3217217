"""The trainer: overfitting, determinism, resume, NaN detection, class weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.models import create_model
from workbench.training.data import SERDataset, collate, make_loader
from workbench.training.recipes import Recipe
from workbench.training.trainer import TrainingError, class_weights_for, predict, train_model

CLASSES = ("neu", "hap", "ang", "sad")


def _dataset(manifest, features, ids=None):
    data = {k: v.data for k, v in features.items()}
    return SERDataset(manifest, ids or manifest.ids, data, CLASSES)


def _model(seed=0, **cfg):
    torch.manual_seed(seed)
    return create_model("unimodal_audio", audio_dim=6, hidden=8, dense_layers=0, **cfg)


def test_tiny_model_overfits_a_small_set(manifest, features, tmp_path, tiny_recipe):
    ds = _dataset(manifest, features, manifest.ids[:24])
    model = _model()
    res = train_model(model, ds, tiny_recipe(epochs=40, lr=2e-2), tmp_path, progress=False)
    assert res.history["train_loss"].iloc[-1] < 0.1
    p = predict(model, collate([ds[i] for i in range(len(ds))]))
    assert (p["probs"].argmax(1) == torch.tensor(ds.labels)).all()
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert list(metrics.columns) == ["epoch", "train_loss", "val_loss", "val_ua", "val_wa", "lr", "seconds"]
    assert metrics["epoch"].tolist() == list(range(1, 41))


def test_same_seed_same_weights(manifest, features, tmp_path, tiny_recipe):
    ds = _dataset(manifest, features)
    a, b = _model(dropout=0.3), _model(dropout=0.3)
    train_model(a, ds, tiny_recipe(), tmp_path / "a", seed=7, progress=False)
    train_model(b, ds, tiny_recipe(), tmp_path / "b", seed=7, progress=False)
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k


def test_resume_after_interruption_gives_identical_weights(manifest, features, tmp_path, tiny_recipe):
    ds = _dataset(manifest, features)
    settings = tiny_recipe(epochs=4, warmup_steps=5, grad_clip=1.0)
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
def test_trains_checkpoints_and_resumes_on_cuda(manifest, features, tmp_path, tiny_recipe):
    ds = _dataset(manifest, features)
    settings = tiny_recipe(epochs=4, lr=2e-2)
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


def test_nan_loss_names_epoch_step_and_utterances(manifest, features, tmp_path, tiny_recipe):
    bad = manifest.ids[5]
    features["audio"].data[bad] = features["audio"].data[bad].copy()
    features["audio"].data[bad][0, 0] = np.nan
    ds = _dataset(manifest, features)
    settings = tiny_recipe(batch_size=4)
    # The trainer reads losses in groups of steps; the error must still name the batch
    # that holds the NaN, and nothing of the epoch may be saved.
    _, sampler = make_loader(ds, settings.batch_size, seed=0, bucketing=settings.bucketing)
    sampler.set_epoch(0)
    step = next(k for k, idx in enumerate(sampler, start=1) if ds.ids.index(bad) in idx)
    with pytest.raises(TrainingError, match=rf"loss is nan at epoch 1, step {step} .*{bad}"):
        train_model(_model(), ds, settings, tmp_path, progress=False)
    assert not (tmp_path / "last.pt").exists() and not (tmp_path / "metrics.csv").exists()


def test_early_stopping_keeps_best_validation_epoch(manifest, features, tmp_path, tiny_recipe):
    train, val = _dataset(manifest, features, manifest.ids[:60]), _dataset(manifest, features, manifest.ids[60:])
    res = train_model(_model(), train, tiny_recipe(epochs=30, early_stopping_patience=2), tmp_path,
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


def _applied_learning_rates(model, ds, settings, run_dir) -> list[float]:
    """The learning rate of every optimiser step train_model takes, read as the step runs."""
    seen: list[float] = []
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: seen.append(float(opt.param_groups[0]["lr"])))
    try:
        train_model(model, ds, settings, run_dir, progress=False)
    finally:
        handle.remove()
    return seen


def test_lf_pt_has_no_warm_up_and_early_fusion_warms_up_over_40_steps(manifest, features, tmp_path):
    """Pepino et al. sec. 3: the learning rate rises linearly over the first 40 steps, except for
    late fusion with pre-training (LF-PT), which runs at 0.01 from its first step."""
    from workbench.training.recipes import get_recipe

    ds = _dataset(manifest, features)
    steps_per_epoch = -(-len(ds) // 4)
    epochs = -(-46 // steps_per_epoch)
    late = get_recipe("pepino_late", "paper")  # default variant: pretrained (LF-PT)
    early = get_recipe("pepino_early", "paper")
    assert (late.variant, early.variant) == ("pretrained", "pretrained")
    assert get_recipe("pepino_late", "paper", variant="scalar_weights").warmup_steps == 0
    runs = {}
    for name, recipe in (("late", late), ("early", early)):
        # the schedule is the recipe's; a tiny model and batches of 4 reach step 45 quickly
        settings = recipe.replace(batch_size=4, epochs=epochs)
        runs[name] = _applied_learning_rates(_model(), ds, settings, tmp_path / name)[:46]
    assert len(runs["late"]) == len(runs["early"]) == 46
    np.testing.assert_allclose(runs["late"], [0.01] * 46, rtol=1e-12)
    expected = [7e-4 * min(1.0, (k + 1) / 40) for k in range(46)]
    np.testing.assert_allclose(runs["early"], expected, rtol=1e-9)
    assert runs["early"][0] == pytest.approx(7e-4 / 40) and runs["early"][39] == pytest.approx(7e-4)
    # and the other pre-trained strategies keep the warm-up
    assert get_recipe("pepino_late", "paper", variant="warm_start").warmup_steps == 40
    assert get_recipe("pepino_late", "paper", variant="cold_start").warmup_steps == 40


def _cross_entropy_np(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    return np.log(np.exp(z).sum(1)) - z[np.arange(len(labels)), labels]


def test_class_weighted_loss_is_divided_by_the_batch_size_or_the_weight_sum(manifest, features, tmp_path):
    """``batch_size``: sum_i w[y_i] * CE_i / N (Pepino et al. sec. 3, Keras's class weights);
    ``weight_sum``: the same sum divided by sum_i w[y_i] (PyTorch's weighted mean)."""
    from workbench.training.trainer import classification_loss

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(7, 4))
    labels = np.array([0, 0, 0, 0, 1, 2, 3])
    w = np.array([0.5, 2.0, 1.5, 3.0])
    ce = _cross_entropy_np(logits, labels)
    by_n = float((w[labels] * ce).sum() / len(labels))
    by_w = float((w[labels] * ce).sum() / w[labels].sum())
    assert abs(by_n - by_w) > 0.05  # the two normalisations differ on this batch
    t = (torch.tensor(logits, dtype=torch.float64), torch.tensor(labels), torch.tensor(w, dtype=torch.float64))
    assert float(classification_loss(*t, mode="batch_size")) == pytest.approx(by_n, rel=1e-10)
    assert float(classification_loss(*t, mode="weight_sum")) == pytest.approx(by_w, rel=1e-10)
    assert float(classification_loss(t[0], t[1])) == pytest.approx(float(ce.mean()), rel=1e-10)
    with pytest.raises(TrainingError, match="class_weights must be"):
        train_model(_model(), _dataset(manifest, features), Recipe(name="t", model="m", features={},
                    class_weights="by_n"), tmp_path / "bad")  # type: ignore[arg-type]
    assert not (tmp_path / "bad").exists()


def test_train_model_applies_the_preset_class_weight_averaging(manifest, features, tmp_path, tiny_recipe):
    """The epoch's training loss, recomputed by hand from the untrained model (lr 0 keeps it):
    with ``class_weights="batch_size"`` each batch's loss is divided by its size."""
    ids = [i for i in manifest.ids if manifest[i].label != "sad"][:30] + \
          [i for i in manifest.ids if manifest[i].label == "sad"][:4]  # imbalanced: weights matter
    ds = _dataset(manifest, features, ids)

    def biased_model():
        # an output bias far from uniform: per-class losses differ, so the averaging matters
        m = _model()
        with torch.no_grad():
            m.out.bias.copy_(torch.tensor([3.0, 0.0, -1.0, -3.0]))
        return m

    model = biased_model()
    w = class_weights_for(ds.labels, len(CLASSES)).numpy().astype(np.float64)
    p = predict(model, collate([ds[i] for i in range(len(ds))]))
    logits, labels = p["logits"].numpy().astype(np.float64), np.asarray(ds.labels)
    _, sampler = make_loader(ds, 8, seed=0, bucketing=True)
    sampler.set_epoch(0)
    batches = [list(b) for b in sampler]
    expected = {}
    for mode in ("batch_size", "weight_sum"):
        total = 0.0
        for b in batches:
            wl, ce = w[labels[b]], _cross_entropy_np(logits[b], labels[b])
            loss = (wl * ce).sum() / (len(b) if mode == "batch_size" else wl.sum())
            total += loss * len(b)
        expected[mode] = total / len(ds)
    assert abs(expected["batch_size"] - expected["weight_sum"]) > 0.01  # far above the 1e-5 tolerance below
    for mode in ("batch_size", "weight_sum"):
        m = biased_model()
        res = train_model(m, ds, tiny_recipe(lr=0.0, epochs=1, batch_size=8, class_weights=mode), tmp_path / mode,
                          progress=False)
        assert res.history["train_loss"].iloc[0] == pytest.approx(expected[mode], rel=1e-5), mode
