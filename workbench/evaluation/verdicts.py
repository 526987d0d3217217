"""The statistic of a claim, its interval and the one rule that turns them into a verdict.

A claim (:mod:`workbench.evaluation.claims`) is a weighted sum of condition scores. Its value
on a set of runs is ``D = sum over protocols of the mean over folds of d_f``, where ``d_f`` is
the weighted sum of each condition's score on fold ``f`` averaged over that condition's seeds.

**What the interval accounts for.** Three sources of variance are visible in a ledger's runs,
and the standard error of ``D`` is built from all three:

- *test utterances*: a bootstrap over each fold's test utterances, with **one** resample per
  (protocol, fold) shared by every seed and every condition tested on it (so paired
  comparisons stay paired, and copying a seed adds no information);
- *training (seeds)*: the sample variance over seeds of each fold's weighted sum, divided by
  the number of seeds;
- *folds*: folds are the outer unit. The spread of ``d_f`` over folds is inflated by the
  Nadeau-Bengio correction for the overlap of cross-validation training sets
  (``1/K + n_test/n_train``; the correlated t-test of Benavoli et al. 2017, as ``baycomp``'s
  ``CorrelatedTTest`` computes it) and read with ``K - 1`` degrees of freedom.

Per protocol the variance is the larger of the within-fold estimate (utterances + seeds) and
the between-fold estimate (which contains both, plus the training-set variation): the second
is the honest one, the first a floor when a few folds happen to agree. Protocols add (their
folds are different runs); the degrees of freedom follow Welch-Satterthwaite. A run with one
seed cannot estimate training variance and one with one fold cannot estimate fold variance:
:attr:`ClaimResult.lacks` says so and the verdict's label carries it.

**The rule** (:func:`verdict`), one for every claim, from the t interval of ``D``:

- ``beats``: *reproduced* when the 95 % interval lies above zero, *refuted* when below;
- ``worse``: the mirror image;
- ``similar`` (a region of practical equivalence of half-width ``margin``): *reproduced* when
  the 90 % interval lies inside ``(-margin, margin)`` (two one-sided tests at 5 %), *refuted*
  when the 95 % interval lies wholly outside it;
- *inconclusive* otherwise, with the smallest difference the run could have detected (80 %
  power at the 5 % level).

The p-value reported beside it is the same t statistic's, so interval, p and verdict never
disagree. The rule's false-positive rate under a simulated null is measured by
:mod:`workbench.evaluation.calibration` and asserted by the tests.

A *rank-change* claim ("the ranking of the systems changes with the seed") is a different
question: for each pair of systems and each pair of seeds, the change of their difference
between the two seeds is tested against its test-utterance bootstrap error (Bonferroni over
all the comparisons, family-wise 5 %). The claim is *reproduced* when at least one pair of
systems is ordered one way by one seed and the other way by another, beyond test-set noise;
*refuted* when every seed gives every system the same score (training that does not depend on
the seed); *inconclusive* otherwise. Its statistic is the share of system pairs that flip.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from workbench.evaluation.claims import Claim, ClaimError, Condition
from workbench.training.metrics import av_auc, confusions, metrics_from_confusion

Verdict = Literal["reproduced", "refuted", "inconclusive", "not run"]
#: the interval's level, and the equivalence test's (two one-sided tests at 5 % each)
LEVEL = 0.95
EQUIVALENCE_LEVEL = 0.90


@dataclass
class ClaimResult:
    """The statistic of one claim on one set of runs, with what its interval covers."""

    claim: str
    difference: float  # the claim's weighted sum (rank change: the share of system pairs that flip)
    ci_low: float  # 95 % t interval
    ci_high: float
    p_value: float  # two-sided, of the same t statistic (rank change: smallest Bonferroni-adjusted p)
    se: float
    n_units: int  # (protocol, fold, seed) units over all conditions' distinct keys
    scores: dict[str, float] = field(default_factory=dict)  # condition label -> mean score
    score_ci: dict[str, tuple[float, float]] = field(default_factory=dict)  # condition label -> 95 % interval
    statistic: str = "difference"
    relation: str = "beats"
    margin: float = math.nan
    df: float = math.inf
    n_folds: int = 0  # folds per protocol (the smallest)
    n_seeds: int = 0  # seeds per fold (the smallest over conditions)
    covers: tuple[str, ...] = ()  # the variance sources the interval accounts for
    lacks: tuple[str, ...] = ()  # those these runs cannot estimate
    eq_low: float = math.nan  # 90 % interval (the equivalence test's)
    eq_high: float = math.nan
    seeds_identical: bool = False  # rank change: every seed gave every system the same score

    @property
    def min_detectable(self) -> float:
        """The difference found 80 % of the time at the 5 % level with this standard error."""
        if not math.isfinite(self.se):
            return math.nan
        return float((stats.t.ppf(0.975, self.df) + stats.t.ppf(0.8, self.df)) * self.se)


# --------------------------------------------------------------------------- metrics on resamples
def _metric_rows(metric: str, labels: np.ndarray, preds: np.ndarray, probs: np.ndarray | None, n_classes: int,
                 idx: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The metric on each resample of one test set (rows of ``idx``, the drawn positions, and
    ``counts``, how often each utterance was drawn), by :mod:`workbench.training.metrics`'s
    conventions."""
    if metric in ("ua", "wa"):
        return metrics_from_confusion(confusions(labels, preds, n_classes, counts))[metric]
    if metric == "av_auc":
        if probs is None:
            raise ClaimError("av_auc needs class probabilities in the predictions")
        return np.array([av_auc(labels[i], probs[i], n_classes) for i in idx])
    raise ClaimError(f"unsupported metric {metric!r}; use ua, wa or av_auc")


# --------------------------------------------------------------------------- the runs of a claim
@dataclass
class _Run:
    """One condition's predictions on one (protocol, fold, seed) unit, in utterance-id order."""

    preds: np.ndarray
    probs: np.ndarray | None


@dataclass
class _Fold:
    """One (protocol, fold): its test labels, and every condition's runs on it by seed."""

    labels: np.ndarray
    ids: tuple[str, ...]
    runs: dict[Condition, dict[int, _Run]]


def _collect(claim: Claim, predictions: Mapping[Condition, pd.DataFrame], classes: Sequence[str]) -> dict[tuple, _Fold]:
    """(protocol, fold) -> its test set and the conditions' runs; refuses runs of one fold
    tested on other utterances (every seed and condition of a fold must share its test set)."""
    index = {c: i for i, c in enumerate(classes)}
    folds: dict[tuple, _Fold] = {}
    for cond in claim.conditions():
        df = predictions.get(cond)
        if df is None or df.empty:
            raise ClaimError(f"claim {claim.id}: no predictions for {cond.label()}")
        df = df.sort_values(["protocol", "fold", "seed", "utt_id"])
        coded = {col: df[col].map(index) for col in ("label", "pred")}
        for col, values in coded.items():
            if values.isna().any():
                raise ClaimError(f"claim {claim.id}: {cond.label()} has {col}s outside the classes {list(classes)}: "
                                 f"{sorted(set(df.loc[values.isna(), col].astype(str)))[:5]}")
        labels_all, preds_all = coded["label"].to_numpy(int), coded["pred"].to_numpy(int)
        utt = df["utt_id"].to_numpy()
        probs_all = (np.stack([np.asarray(p, float) for p in df["probs"]])
                     if "probs" in df and df["probs"].notna().all() else None)
        for (protocol, fold, seed), rows in df.groupby(["protocol", "fold", "seed"], sort=True).indices.items():
            ids = tuple(utt[rows])
            key = (protocol, fold)
            if key not in folds:
                folds[key] = _Fold(labels_all[rows], ids, {})
            elif folds[key].ids != ids:
                raise ClaimError(f"claim {claim.id}: {cond.label()} was tested on other utterances than another "
                                 f"run in fold {fold} (seed {seed}) of {protocol}")
            folds[key].runs.setdefault(cond, {})[int(seed)] = _Run(
                preds_all[rows], None if probs_all is None else probs_all[rows])
    return folds


def _fold_values(claim: Claim, fold: _Fold, resample: np.ndarray | None, k: int) -> dict[Condition, np.ndarray]:
    """Condition -> (replicates, seeds) scores on this fold (one row per resample of its test
    utterances, the same resample for every seed and condition; one row when ``resample`` is
    None: the full test set)."""
    n = len(fold.labels)
    idx = np.arange(n)[None] if resample is None else resample
    counts = np.ones((1, n)) if resample is None else np.stack([np.bincount(r, minlength=n) for r in resample])
    out = {}
    for cond, by_seed in fold.runs.items():
        cols = [_metric_rows(claim.metric, fold.labels, run.preds, run.probs, k, idx, counts)
                for _, run in sorted(by_seed.items())]
        out[cond] = np.stack(cols, axis=1)
    return out


def _t_interval(d: float, se: float, df: float, level: float) -> tuple[float, float]:
    if not math.isfinite(se):
        return math.nan, math.nan
    h = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return d - h, d + h


def evaluate_claim(claim: Claim, predictions: Mapping[Condition, pd.DataFrame], classes: Sequence[str],
                   n_boot: int = 1000, seed: int = 0, test_train_ratio: Mapping[str, float] | None = None) -> ClaimResult:
    """The statistic of ``claim`` from each condition's test predictions (columns ``protocol,
    fold, seed, utt_id, label, pred`` and, for AvAUC, ``probs``), with its interval (see the
    module docstring). ``test_train_ratio``: protocol -> test size / training size for the
    Nadeau-Bengio correction (default ``1/(K-1)``, a K-fold partition)."""
    k = len(classes)
    folds = _collect(claim, predictions, classes)
    rng = np.random.default_rng(seed)
    resamples = {key: rng.integers(0, len(f.labels), (n_boot, len(f.labels))) for key, f in sorted(folds.items())}
    full = {key: _fold_values(claim, f, None, k) for key, f in folds.items()}
    boot = {key: _fold_values(claim, f, resamples[key], k) for key, f in folds.items()} if n_boot else {}
    if claim.statistic == "rank_change":
        return _rank_change(claim, folds, full, boot)

    def combine(terms: Sequence[tuple[float, Condition]]) -> tuple[float, float, float, tuple, tuple]:
        """(D, se, df, covers, lacks) of a weighted sum of conditions."""
        by_protocol: dict[str, list[tuple]] = {}
        for key in sorted(folds):
            if any(c in folds[key].runs for _, c in terms):
                by_protocol.setdefault(key[0], []).append(key)
        total, parts, lacks = 0.0, [], set()
        n_seeds_min = min(full[key][c].shape[1] for key in full for _, c in terms if c in full[key])
        for protocol, keys in by_protocol.items():
            d_f, v_within = [], []
            for key in keys:
                present = [(w, c) for w, c in terms if c in folds[key].runs]
                # the fold's weighted sum, each condition averaged over its seeds
                d_f.append(sum(w * full[key][c].mean() for w, c in present))
                v_utt = float(np.var(sum(w * boot[key][c].mean(axis=1) for w, c in present), ddof=1)) if n_boot > 1 else 0.0
                seeds = {c: sorted(folds[key].runs[c]) for _, c in present}
                if len({tuple(s) for s in seeds.values()}) == 1 and len(next(iter(seeds.values()))) > 1:
                    per_seed = sum(w * full[key][c][0] for w, c in present)  # paired by seed
                    v_seed = float(np.var(per_seed, ddof=1) / len(per_seed))
                else:
                    v_seed = sum(w * w * (float(np.var(full[key][c][0], ddof=1)) / full[key][c].shape[1]
                                          if full[key][c].shape[1] > 1 else 0.0) for w, c in present)
                v_within.append(v_utt + v_seed)
            K = len(keys)
            mean_d = float(np.mean(d_f))
            within = float(np.sum(v_within)) / K**2
            if K >= 2:
                ratio = (test_train_ratio or {}).get(protocol, 1.0 / (K - 1))
                between = (1.0 / K + ratio) * float(np.var(d_f, ddof=1))
                parts.append((max(within, between), K - 1.0))
            else:
                parts.append((within, math.inf))
                lacks.add("one fold: fold variance not estimated")
            total += mean_d
        if n_seeds_min < 2:
            lacks.add("one seed: training variance not estimated")
        elif all(len({r.preds.tobytes() for r in folds[key].runs[c].values()}) == 1
                 for key in folds for _, c in terms if c in folds[key].runs):
            lacks.add("identical seeds: training variance not estimated")
        var = sum(v for v, _ in parts)
        denom = sum(v * v / df for v, df in parts if math.isfinite(df) and df > 0)
        df = var * var / denom if denom > 0 else math.inf
        covers = ["test utterances"] + (["seeds"] if n_seeds_min >= 2 and not any("training" in x for x in lacks)
                                        else []) + \
            (["folds (Nadeau-Bengio corrected)"] if all(math.isfinite(d) for _, d in parts) else [])
        return total, math.sqrt(var), df, tuple(covers), tuple(sorted(lacks))

    counted = tuple((w, c) for w, c in claim.terms if w != 0)
    diff, se, df, covers, lacks = combine(counted)
    lo, hi = _t_interval(diff, se, df, LEVEL)
    eq_lo, eq_hi = _t_interval(diff, se, df, EQUIVALENCE_LEVEL)
    p = float(2 * stats.t.sf(abs(diff) / se, df)) if se > 0 else (1.0 if diff == 0 else 0.0)
    scores, score_ci = {}, {}
    for cond in claim.conditions():
        s, s_se, s_df, _, _ = combine(((1.0, cond),))
        scores[cond.label()] = s
        score_ci[cond.label()] = _t_interval(s, s_se, s_df, LEVEL)
    n_units = len({(key, s) for key, f in folds.items() for r in f.runs.values() for s in r})
    n_folds = min(sum(1 for key in folds if key[0] == p_) for p_ in {key[0] for key in folds})
    n_seeds = min(len(r) for f in folds.values() for r in f.runs.values())
    return ClaimResult(claim.id, float(diff), lo, hi, p, se, n_units, scores, score_ci, claim.statistic,
                       claim.relation, claim.margin, df, n_folds, n_seeds, covers, lacks, eq_lo, eq_hi)


def _rank_change(claim: Claim, folds: Mapping[tuple, _Fold], full: Mapping[tuple, Mapping[Condition, np.ndarray]],
                 boot: Mapping[tuple, Mapping[Condition, np.ndarray]]) -> ClaimResult:
    """Pairs of systems whose order two seeds reverse beyond test-utterance noise (module docstring)."""
    conds = claim.conditions()
    seeds = sorted(set.intersection(*[set(f.runs[c]) for f in folds.values() for c in conds if c in f.runs]))
    if len(seeds) < 2:
        raise ClaimError(f"claim {claim.id}: a rank change over seeds needs runs of 2 or more seeds of every system")

    def per_seed(values: Mapping[tuple, Mapping[Condition, np.ndarray]]) -> np.ndarray:
        """(replicates, systems, seeds): each system's score per seed, the mean over its folds."""
        out = []
        for c in conds:
            keys = [key for key in values if c in values[key]]
            cols = [[values[key][c][:, sorted(folds[key].runs[c]).index(s)] for key in keys] for s in seeds]
            out.append(np.stack([np.mean(col, axis=0) for col in cols], axis=-1))
        return np.stack(out, axis=1)

    obs = per_seed(full)[0]  # (systems, seeds)
    reps = per_seed(boot) if boot else None
    pairs = list(itertools.combinations(range(len(conds)), 2))
    seed_pairs = list(itertools.combinations(range(len(seeds)), 2))
    n_tests = len(pairs) * len(seed_pairs)
    flips, p_min = 0, 1.0
    for i, j in pairs:
        diff = obs[i] - obs[j]  # per seed
        flipped = False
        for a, b in seed_pairs:
            change = diff[a] - diff[b]
            if reps is None or np.sign(diff[a]) * np.sign(diff[b]) >= 0:
                continue
            se = float(np.std((reps[:, i, a] - reps[:, j, a]) - (reps[:, i, b] - reps[:, j, b]), ddof=1))
            p = 1.0 if se == 0 and change == 0 else (0.0 if se == 0 else float(2 * stats.norm.sf(abs(change) / se)))
            p_min = min(p_min, min(1.0, p * n_tests))
            flipped |= p * n_tests < 0.05
        flips += flipped
    share = flips / len(pairs)
    identical = bool(np.all(obs == obs[:, :1]))
    scores = {c.label(): float(obs[n].mean()) for n, c in enumerate(conds)}
    n_units = len(seeds)
    lacks = () if len(seeds) >= 3 else ("two seeds only",)
    return ClaimResult(claim.id, share, math.nan, math.nan, p_min, math.nan, n_units, scores, {}, "rank_change",
                       claim.relation, math.nan, math.inf,
                       min(sum(1 for key in folds if key[0] == p_) for p_ in {key[0] for key in folds}),
                       len(seeds), ("test utterances",), lacks, seeds_identical=identical)


def verdict(result: ClaimResult) -> Verdict:
    """The one decision rule (module docstring)."""
    if result.statistic == "rank_change":
        if result.seeds_identical:
            return "refuted"  # every seed gives every system the same score
        return "reproduced" if result.difference > 0 else "inconclusive"
    if not (math.isfinite(result.ci_low) and math.isfinite(result.ci_high)):
        return "inconclusive"
    if result.relation == "similar":
        m = result.margin
        if -m < result.eq_low and result.eq_high < m:
            return "reproduced"
        if result.ci_low > m or result.ci_high < -m:
            return "refuted"
        return "inconclusive"
    above, below = result.ci_low > 0, result.ci_high < 0
    if result.relation == "worse":
        above, below = below, above
    return "reproduced" if above else "refuted" if below else "inconclusive"


__all__ = ["EQUIVALENCE_LEVEL", "LEVEL", "ClaimResult", "Verdict", "evaluate_claim", "verdict"]
