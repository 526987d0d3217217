"""The training loop: one model, one training set, optional validation, resumable.

:func:`train_model` runs fixed epochs or stops early on validation UA, with optional class
weights (averaged over the batch as the recipe says), gradient clipping and linear warm-up
(optimiser step k, counted from 0, runs at ``lr * min(1, (k + 1) / warmup_steps)``; no warm-up
with ``warmup_steps=0``), bf16 autocast on CUDA, a checkpoint (``last.pt``) after every epoch
and ``metrics.csv`` rewritten after every epoch. Started again
on the same run directory it resumes from ``last.pt`` and ends on the same weights as an
uninterrupted run: batches depend only on (seed, epoch) and the checkpoint restores every RNG.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from workbench.errors import WorkbenchError
from workbench.io import atomic_write
from workbench.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from workbench.training.data import SERDataset, make_loader
from workbench.training.metrics import classification_metrics
from workbench.training.recipes import Recipe

METRIC_COLUMNS = ["epoch", "train_loss", "val_loss", "val_ua", "val_wa", "lr", "seconds"]

#: Training steps between reads of the loss on the host. Each read waits for the GPU to
#: finish, so reading every step would keep the CPU from queueing kernels ahead of it;
#: the NaN check still names the exact step, and the steps after it are never saved.
LOSS_READ_EVERY = 25


class TrainingError(WorkbenchError, RuntimeError):
    """Training cannot go on (NaN loss, out of memory, bad data); the message says what to do."""


class DeviceError(WorkbenchError, ValueError):
    """A device this machine does not have (``--device cuda`` on a CPU build); the message says
    what to pass instead."""


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device, which must exist
    here (:class:`DeviceError` otherwise, before any training)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(f"device {device!r} is not a device name ({str(e).splitlines()[0]}); use auto, cpu, "
                          "cuda or cuda:N") from None
    if dev.type == "cuda":
        why = ("this torch build has no CUDA support" if torch.version.cuda is None
               else "no CUDA GPU is visible" if not torch.cuda.is_available() else None)
        if why is None and dev.index is not None and dev.index >= torch.cuda.device_count():
            why = f"there are {torch.cuda.device_count()} GPU(s)"
        if why:
            raise DeviceError(f"device {device!r}: {why}; use --device cpu (or auto, which picks a GPU when there is one)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {device!r}: MPS is not available here; use --device cpu or auto")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic(enabled: bool):
    """``torch.use_deterministic_algorithms(enabled)`` for the block, restoring the old state."""
    old = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(enabled)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old)


def _autocast(device: torch.device):
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch's tensors on ``device``, except ``<input>_lengths``: the models read those on
    the host (see :func:`workbench.models.layers.run_rnn`)."""
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) and not k.endswith("_lengths") else v)
            for k, v in batch.items()}


def model_inputs(model: nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The keyword arguments of ``model.forward`` from a collated batch (inputs, masks and
    host lengths)."""
    out: dict[str, torch.Tensor] = {}
    for name in model.inputs:
        if name not in batch:
            raise TrainingError(f"model needs input {name!r} but the batch has only {sorted(batch)}")
        out[name] = batch[name]
        for extra in (f"{name}_mask", f"{name}_lengths"):
            if extra in batch:
                out[extra] = batch[extra]
    return out


@torch.no_grad()
def predict(model: nn.Module, batch: dict[str, Any], device: str | torch.device | None = None,
            attentions: bool = True) -> dict[str, Any]:
    """Run ``model`` in eval mode on a collated batch: ``logits`` (B, C), ``probs`` (B, C)
    float32 on CPU, ``attentions`` (name -> tensor on CPU; empty with ``attentions=False``,
    which spares a GPU the copies), ``attention_info``, ``ids``."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        b = to_device(batch, device)
        with _autocast(device):
            out = model(**model_inputs(model, b))
    finally:
        model.train(was_training)
    logits = out.logits.float().cpu()
    return {"logits": logits, "probs": torch.softmax(logits, dim=-1),
            "attentions": {k: v.float().cpu() for k, v in out.attentions.items()} if attentions else {},
            "attention_info": out.attention_info, "ids": list(batch.get("ids", []))}


def evaluate(model: nn.Module, dataset: SERDataset, batch_size: int, device: torch.device,
             class_weights: torch.Tensor | None = None) -> dict[str, Any]:
    """Loss, probabilities (N, C) and metrics of ``model`` on every item of ``dataset``."""
    loader, _ = make_loader(dataset, batch_size, bucketing=True, shuffle=False)
    ids, labels, probs, loss_sum = [], [], [], 0.0
    for batch in loader:
        p = predict(model, batch, device, attentions=False)  # scores only: no attention maps to copy
        loss_sum += float(F.cross_entropy(p["logits"], batch["labels"], weight=class_weights, reduction="sum"))
        ids += batch["ids"]
        labels += batch["labels"].tolist()
        probs.append(p["probs"].numpy())
    probs_arr = np.concatenate(probs) if probs else np.zeros((0, len(dataset.classes)), np.float32)
    classes = dataset.classes
    metrics = classification_metrics(labels, probs_arr.argmax(1), classes, probs_arr) if ids else {}
    return {"ids": ids, "labels": np.array(labels, dtype=int), "probs": probs_arr,
            "loss": loss_sum / max(len(ids), 1), "metrics": metrics}


def _read_losses(pending: list[tuple[int, torch.Tensor, list[str]]], total: float, count: int, epoch: int,
                 lr: float) -> tuple[float, int]:
    """Read the pending losses in one device->host copy, add them to the running (sum, count)
    and empty ``pending``. A non-finite loss raises :class:`TrainingError` naming its step."""
    if not pending:
        return total, count
    values = torch.stack([loss for _, loss, _ in pending]).float().cpu().tolist()
    for (step, _, ids), value in zip(pending, values):
        if not math.isfinite(value):
            raise TrainingError(
                f"loss is {value} at epoch {epoch + 1}, step {step} (batch of {len(ids)} utterances: "
                f"{ids[:8]}{' ...' if len(ids) > 8 else ''}); check these utterances' features for NaN/inf, "
                f"or lower the learning rate (now {lr})")
        total += value * len(ids)
        count += len(ids)
    pending.clear()
    return total, count


#: How a class-weighted loss is averaged over a batch (``Recipe.class_weights``):
#: ``weight_sum`` divides the sum of weighted losses by the sum of the batch's weights
#: (PyTorch's weighted mean, ``F.cross_entropy(weight=...)``); ``batch_size`` divides it by the
#: number of utterances N (Keras's class weights; Pepino et al. sec. 3 multiply "the loss of
#: each instance with the inverse of the frequency of the class it belongs to").
CLASS_WEIGHT_MODES: tuple[str, ...] = ("weight_sum", "batch_size")


def class_weight_mode(value: bool | str) -> str | None:
    """The averaging of a recipe's ``class_weights``: None (no weights), ``weight_sum``
    (``True`` too) or ``batch_size``; anything else raises :class:`TrainingError`.

    >>> class_weight_mode(True), class_weight_mode("batch_size"), class_weight_mode(False)
    ('weight_sum', 'batch_size', None)
    """
    if value is False or value is None or value == "none":
        return None
    if value is True:
        return "weight_sum"
    if value in CLASS_WEIGHT_MODES:
        return str(value)
    raise TrainingError(f"class_weights must be True/False or one of {CLASS_WEIGHT_MODES}, got {value!r}")


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None,
                        mode: str | None = None) -> torch.Tensor:
    """Mean cross-entropy of a batch, each utterance's loss times its class's weight when
    ``weights`` (C,) are given, divided by the sum of those weights (``mode="weight_sum"``) or
    by the batch size (``mode="batch_size"``); see :data:`CLASS_WEIGHT_MODES`."""
    if weights is None:
        return F.cross_entropy(logits, labels)
    if mode == "batch_size":
        return F.cross_entropy(logits, labels, weight=weights, reduction="sum") / labels.shape[0]
    if mode == "weight_sum":
        return F.cross_entropy(logits, labels, weight=weights)
    raise TrainingError(f"class-weighted loss: unknown mode {mode!r}; choose one of {CLASS_WEIGHT_MODES}")


def class_weights_for(labels: list[int] | np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse class frequency, scaled so a balanced set gets weight 1 (Pepino et al. sec. 3).

    >>> [round(w, 4) for w in class_weights_for([0, 0, 0, 1], 2).tolist()]
    [0.6667, 2.0]
    """
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=n_classes).astype(np.float64)
    if (counts == 0).any():
        missing = np.flatnonzero(counts == 0).tolist()
        raise TrainingError(f"class index(es) {missing} have no training examples; class weights are undefined")
    return torch.tensor(counts.sum() / (n_classes * counts), dtype=torch.float32)


def _make_optimizer(model: nn.Module, s: Recipe) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)
    if s.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    if s.optimizer == "sgd":
        return torch.optim.SGD(params, lr=s.lr, momentum=0.9, weight_decay=s.weight_decay)
    raise ValueError(f"unknown optimizer {s.optimizer!r}; choose adam, adamw or sgd")


@dataclass
class TrainResult:
    """What :func:`train_model` did: the epoch whose weights are kept (``best_epoch``, 1-based),
    how many epochs ran, the per-epoch history and throughput (training utterances/s)."""

    best_epoch: int
    epochs_run: int
    history: pd.DataFrame
    train_seconds: float
    utts_per_second: float
    device: str


@dataclass
class _Optimisation:
    """The optimiser, its learning-rate schedule and the AMP grad scaler: the state that
    ``last.pt`` saves beside the weights so an interrupted training resumes where it stopped."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler

    @staticmethod
    def create(model: nn.Module, settings: Recipe, dev: torch.device) -> "_Optimisation":
        optimizer = _make_optimizer(model, settings)
        warm = max(int(settings.warmup_steps), 0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                      lambda step: min(1.0, (step + 1) / warm) if warm else 1.0)
        use_scaler = dev.type == "cuda" and not torch.cuda.is_bf16_supported()
        return _Optimisation(optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=use_scaler))

    def state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load(self, ck: Mapping[str, Any]) -> None:
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])


def _train_epoch(model: nn.Module, loader: Any, opt: _Optimisation, settings: Recipe, dev: torch.device,
                 weights: torch.Tensor | None, weight_mode: str | None, epoch: int, n_epochs: int, step: int,
                 inputs: Sequence[str], progress: bool) -> tuple[float, int]:
    """One pass over ``loader``; returns the mean training loss and the optimiser step reached."""
    total, count = 0.0, 0
    pending: list[tuple[int, torch.Tensor, list[str]]] = []  # (step, loss, ids) not yet read
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{n_epochs}", leave=False, disable=not progress)
    for batch in bar:
        step += 1
        b = to_device(batch, dev)
        try:
            with _autocast(dev):
                out = model(**model_inputs(model, b))
                loss = classification_loss(out.logits.float(), b["labels"], weights, weight_mode)
            opt.optimizer.zero_grad(set_to_none=True)
            opt.scaler.scale(loss).backward()
            if settings.grad_clip:
                opt.scaler.unscale_(opt.optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            opt.scaler.step(opt.optimizer)
            opt.scaler.update()
        except torch.cuda.OutOfMemoryError as e:
            raise TrainingError(
                f"out of GPU memory at epoch {epoch + 1}, step {step} with batch size {settings.batch_size} "
                f"(longest item {max(b[k].shape[1] for k in inputs)} steps); retry with a smaller "
                f"batch size, e.g. batch_size={max(1, settings.batch_size // 2)}") from e
        opt.scheduler.step()
        pending.append((step, loss.detach(), batch["ids"]))
        if len(pending) >= LOSS_READ_EVERY:
            total, count = _read_losses(pending, total, count, epoch, settings.lr)
            bar.set_postfix(loss=f"{total / count:.3f}")
    total, count = _read_losses(pending, total, count, epoch, settings.lr)
    return total / max(count, 1), step


def _save_epoch(run_dir: Path, model: nn.Module, opt: _Optimisation, epoch: int, history: list[dict[str, float]],
                best: dict[str, float]) -> None:
    """``last.pt`` (everything a resumed training needs) and ``metrics.csv`` after an epoch."""
    save_checkpoint(run_dir / "last.pt", {"model": model.state_dict(), **opt.state(), "epoch": epoch,
                                          "history": history, "best": best, "rng": rng_state()})
    frame = pd.DataFrame(history, columns=METRIC_COLUMNS)
    atomic_write(run_dir / "metrics.csv", lambda p: frame.to_csv(p, index=False))


def _check_training(settings: Recipe, train: SERDataset, epochs: int | None) -> int:
    """The number of epochs to run; an empty training set fails before anything runs."""
    n_epochs = int(epochs if epochs is not None else settings.epochs)
    if n_epochs < 1:
        raise TrainingError(f"epochs must be at least 1, got {n_epochs}: an untrained model has no results to report")
    if len(train) == 0:
        raise TrainingError("the training set is empty")
    return n_epochs


def train_model(
    model: nn.Module,
    train: SERDataset,
    settings: Recipe,
    run_dir: str | Path,
    validation: SERDataset | None = None,
    seed: int = 0,
    device: str = "auto",
    epochs: int | None = None,
    progress: bool = True,
    resume: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``train``; write ``last.pt``, ``best.pt`` and ``metrics.csv`` to ``run_dir``.

    Fixed ``epochs`` (default ``settings.epochs``), or, with ``settings.early_stopping_patience``
    and a ``validation`` set, stop after that many epochs without a better validation UA;
    ``best.pt`` holds the weights of the best validation epoch (the last epoch without
    validation) and is loaded into ``model`` before returning. ``on_epoch_end(epoch, row)``
    runs after each checkpoint (tests use it to simulate an interruption).
    """
    weight_mode = class_weight_mode(settings.class_weights)  # a bad setting fails before anything runs
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    n_epochs = _check_training(settings, train, epochs)
    seed_everything(seed)
    model.to(dev)
    opt = _Optimisation.create(model, settings, dev)
    weights = class_weights_for(train.labels, len(train.classes)).to(dev) if weight_mode else None
    loader, sampler = make_loader(train, settings.batch_size, seed=seed, bucketing=settings.bucketing,
                                  pin_memory=dev.type == "cuda")

    start_epoch, history, best = 0, [], {"ua": -1.0, "epoch": 0}
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if resume and last_path.is_file():
        ck = load_checkpoint(last_path, map_location=dev)
        model.load_state_dict(ck["model"])
        opt.load(ck)
        start_epoch, history, best = ck["epoch"], ck["history"], ck["best"]
        set_rng_state(ck["rng"])

    patience = settings.early_stopping_patience if validation is not None and len(validation) else None
    stopped = patience is not None and start_epoch - best["epoch"] >= patience
    step = start_epoch * len(sampler)
    with deterministic(dev.type == "cpu"):
        for epoch in range(start_epoch, n_epochs):
            if stopped:
                break
            t0 = time.perf_counter()
            model.train()
            sampler.set_epoch(epoch)
            train_loss, step = _train_epoch(model, loader, opt, settings, dev, weights, weight_mode, epoch, n_epochs,
                                            step, train.inputs, progress)
            row: dict[str, float] = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": float("nan"),
                                     "val_ua": float("nan"), "val_wa": float("nan"),
                                     "lr": float(opt.optimizer.param_groups[0]["lr"]),
                                     "seconds": time.perf_counter() - t0}
            if validation is not None and len(validation):
                ev = evaluate(model, validation, settings.batch_size, dev, weights)
                # plain floats: the history goes into last.pt, which loads with weights_only=True
                row.update(val_loss=float(ev["loss"]), val_ua=float(ev["metrics"]["ua"]),
                           val_wa=float(ev["metrics"]["wa"]))
                improved = ev["metrics"]["ua"] > best["ua"]
            else:
                improved = True  # no validation: keep the last epoch
            if improved:
                best = {"ua": row["val_ua"] if row["val_ua"] == row["val_ua"] else -1.0, "epoch": epoch + 1}
                save_checkpoint(best_path, {"model": model.state_dict(), "epoch": epoch + 1})
            history.append(row)
            _save_epoch(run_dir, model, opt, epoch + 1, history, best)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
            if patience is not None and epoch + 1 - best["epoch"] >= patience:
                stopped = True

    if best_path.is_file():
        model.load_state_dict(load_checkpoint(best_path, map_location=dev)["model"])
    frame = pd.DataFrame(history, columns=METRIC_COLUMNS)
    seconds = float(frame["seconds"].sum()) if len(frame) else 0.0
    utts = len(train) * len(frame)
    return TrainResult(best_epoch=int(best["epoch"]), epochs_run=len(frame), history=frame, train_seconds=seconds,
                       utts_per_second=utts / seconds if seconds > 0 else float("nan"), device=str(dev))
