"""Classification metrics as emotion papers report them.

They live in the training layer because training needs them (validation UA picks the best
epoch); ``workbench.evaluation`` builds its aggregates and tables on them.

WA (weighted accuracy) is plain accuracy; UA (unweighted accuracy) is the mean of per-class
recalls, so rare classes count as much as frequent ones. AvRec is the same number under the
name the MCSAN/AMH papers use; AvAUC averages one-vs-rest ROC AUCs.

This is the one module that computes them. Its conventions hold for every caller (training,
aggregates, bootstrap intervals, the ledger's verdicts):

- classes are encoded by their position in ``classes`` (:func:`encode`; a label outside them
  is an error naming it);
- UA, macro-F1 and weighted-F1 average over the classes *present* in the true labels (a class
  absent from a test fold has no recall); the precision of a class never predicted is 0;
- AvAUC averages the one-vs-rest AUC of every class present with both positives and negatives;
  ties count half (:func:`roc_auc`, scikit-learn's value without importing it).

:func:`classification_metrics` scores one test set; :func:`confusions` and
:func:`metrics_from_confusion` score many resamples of one at once (the bootstrap).

>>> m = classification_metrics(["a", "a", "b", "c"], ["a", "b", "b", "c"], classes=["a", "b", "c"])
>>> round(m["wa"], 3), round(m["ua"], 3)
(0.75, 0.833)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

# No scikit-learn here: importing it costs about 1.6 s per process (2-core laptop), paid by
# every training process for four small formulas; tests check these against scikit-learn's.


def f1_scores(t: np.ndarray, p: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Per-label F1 of integer labels ``t`` (true) and ``p`` (predicted), 0 where undefined
    (scikit-learn's ``f1_score(..., average=None, zero_division=0)``)."""
    out = np.zeros(len(labels))
    for i, c in enumerate(labels):
        tp = float(np.sum((t == c) & (p == c)))
        denom = 2 * tp + float(np.sum((t != c) & (p == c))) + float(np.sum((t == c) & (p != c)))
        out[i] = 2 * tp / denom if denom > 0 else 0.0
    return out


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of a binary ``positive`` mask under ``score``: the Mann-Whitney statistic with
    tied scores counted one half (equal to scikit-learn's ``roc_auc_score``); both classes
    must be present."""
    positive = np.asarray(positive, dtype=bool)
    score = np.asarray(score, dtype=float)
    order = np.argsort(score, kind="mergesort")
    _, first, counts = np.unique(score[order], return_index=True, return_counts=True)
    ranks = np.empty(len(score))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)  # 1-based, ties averaged
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both classes")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def encode(labels: Sequence, classes: Sequence[str]) -> np.ndarray:
    """Class names (or integer codes) -> codes by position in ``classes``."""
    index = {c: i for i, c in enumerate(classes)}
    try:
        return np.array([index[x] if isinstance(x, str) else int(x) for x in labels], dtype=int)
    except KeyError as e:
        raise ValueError(f"label {e.args[0]!r} is not one of the classes {list(classes)}") from None


def confusion(y_true: Sequence, y_pred: Sequence, classes: Sequence[str], normalise: bool = False) -> pd.DataFrame:
    """Confusion matrix, rows = true class, columns = predicted; ``normalise`` divides each row
    by its total (rows with no examples stay 0)."""
    t, p = encode(y_true, classes), encode(y_pred, classes)
    k = len(classes)
    mat = np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(float)
    if normalise:
        totals = mat.sum(axis=1, keepdims=True)
        mat = np.divide(mat, totals, out=np.zeros_like(mat), where=totals > 0)
    else:
        mat = mat.astype(int)
    return pd.DataFrame(mat, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))


def classification_metrics(
    y_true: Sequence,
    y_pred: Sequence,
    classes: Sequence[str],
    probs: np.ndarray | None = None,
) -> dict[str, float]:
    """WA, UA (= AvRec), macro-F1, weighted-F1 and, given class probabilities (N, C), AvAUC.

    UA averages recall over the classes present in ``y_true``: a class absent from a test fold
    has no recall to average (papers do the same; the count of classes used is returned).
    """
    t, p = encode(y_true, classes), encode(y_pred, classes)
    if len(t) == 0:
        raise ValueError("no predictions to score")
    present = np.unique(t)
    recalls = [float(np.mean(p[t == c] == c)) for c in present]
    f1 = f1_scores(t, p, present)
    support = np.array([np.sum(t == c) for c in present], dtype=float)
    out = {
        "wa": float(np.mean(t == p)),
        "ua": float(np.mean(recalls)),
        "macro_f1": float(np.mean(f1)),
        "weighted_f1": float(np.sum(f1 * support) / support.sum()),
        "n": float(len(t)),
        "classes_present": float(len(present)),
    }
    out["av_rec"] = out["ua"]
    if probs is not None:
        probs = np.asarray(probs, dtype=float)
        if probs.shape != (len(t), len(classes)):
            raise ValueError(f"probs has shape {probs.shape}, expected {(len(t), len(classes))}")
        out["av_auc"] = av_auc(t, probs, len(classes))
    return out


def av_auc(codes: np.ndarray, probs: np.ndarray, n_classes: int) -> float:
    """Mean one-vs-rest AUC over the classes present with both positives and negatives (NaN
    when none is)."""
    aucs = [roc_auc(codes == c, probs[:, c]) for c in range(n_classes) if 0 < np.sum(codes == c) < len(codes)]
    return float(np.mean(aucs)) if aucs else float("nan")


def confusions(t: np.ndarray, p: np.ndarray, k: int, weights: np.ndarray) -> np.ndarray:
    """Weighted confusion matrices, one per row of ``weights`` (B, N) -> (B, k, k); a bootstrap
    resample is a row of counts (how often each utterance was drawn)."""
    cell = t * k + p
    out = np.empty((weights.shape[0], k * k))
    for b in range(weights.shape[0]):
        out[b] = np.bincount(cell, weights=weights[b], minlength=k * k)
    return out.reshape(-1, k, k)


def metrics_from_confusion(conf: np.ndarray) -> dict[str, np.ndarray]:
    """WA, UA, macro-F1 and weighted-F1 of confusion matrices (..., k, k), rows = true class,
    with this module's conventions (classes present only; unpredicted precision 0)."""
    conf = np.asarray(conf, dtype=float)
    diag = np.diagonal(conf, axis1=-2, axis2=-1)
    support = conf.sum(axis=-1)
    predicted = conf.sum(axis=-2)
    total = support.sum(axis=-1)
    present = support > 0
    n_present = present.sum(axis=-1)
    recall = np.divide(diag, support, out=np.zeros_like(diag), where=present)
    precision = np.divide(diag, predicted, out=np.zeros_like(diag), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(diag), where=denom > 0)
    return {
        "wa": diag.sum(axis=-1) / total,
        "ua": recall.sum(axis=-1) / n_present,
        "macro_f1": (f1 * present).sum(axis=-1) / n_present,
        "weighted_f1": (f1 * support).sum(axis=-1) / total,
    }
