"""How often the verdict rule is wrong: constructed predictions with known truth.

:func:`simulate_predictions` draws the test predictions of one condition over folds and seeds
from a model with every source of variance the rule claims to handle:

- each fold has its own test utterances (labels uniform over the classes), each with a
  difficulty shared by every condition and seed (what makes paired comparisons worth pairing);
- each (condition, fold) has a training-set effect (``fold_sd``, on the logit of being right):
  the part of a fold's result that no number of seeds averages away;
- each (condition, fold, seed) has a training effect (``seed_sd``), and every prediction its
  own coin;
- optionally each condition has an effect shared by all its folds (``shared_sd``): what the
  overlap of cross-validation training sets makes folds share, the correlation the
  Nadeau-Bengio correction is for.

:func:`null_rate` measures the share of decisive verdicts when the claim is false at the
boundary (two conditions from one distribution for ``beats``; a true difference of exactly the
margin for ``similar``), with its Monte Carlo standard error; :func:`power` the share of
*reproduced* for a true difference. Both are what docs/reproduce.md reports and the tests assert.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.evaluation.claims import Claim, Condition, Relation
from workbench.evaluation.verdicts import evaluate_claim, verdict

CLASSES = ("neu", "hap", "ang", "sad")
A, B = Condition("condition_a"), Condition("condition_b")


@dataclass(frozen=True)
class Design:
    """The shape of a ledger: folds, seeds, test utterances per fold, and the variances."""

    folds: int = 5
    seeds: int = 3
    utterances: int = 200  # per fold
    accuracy: float = 0.6  # chance of being right at zero effects
    difficulty_sd: float = 1.0  # per utterance, shared by every condition and seed (logit scale)
    fold_sd: float = 0.15  # per (condition, fold): the training set's effect (logit scale)
    seed_sd: float = 0.1  # per (condition, fold, seed): training randomness (logit scale)
    shared_sd: float = 0.0  # per condition, shared by its folds (overlapping training sets; logit scale)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def simulate_predictions(design: Design, shift: float, rng: np.random.Generator,
                         difficulty: list[np.ndarray], labels: list[np.ndarray],
                         copies: int = 1) -> pd.DataFrame:
    """One condition's predictions (``protocol, fold, seed, utt_id, label, pred``); ``shift``
    moves its logit of being right; ``copies`` repeats each seed's predictions that many times
    under new seed numbers (the copy experiment: more rows, no new information)."""
    parts = []
    base = _logit(design.accuracy) + shift + rng.normal(0, design.shared_sd)
    k = len(CLASSES)
    names = np.asarray(CLASSES)
    for f in range(design.folds):
        fold_effect = rng.normal(0, design.fold_sd)
        y = labels[f]
        ids = np.array([f"f{f}_u{i:04d}" for i in range(len(y))])
        for s in range(design.seeds):
            p = 1 / (1 + np.exp(-(base + fold_effect + rng.normal(0, design.seed_sd) + difficulty[f])))
            right = rng.random(len(y)) < p
            pred = np.where(right, y, (y + rng.integers(1, k, len(y))) % k)
            for c in range(copies):
                parts.append((f, s * copies + c, ids, names[y], names[pred]))
    return pd.DataFrame({"protocol": "p",
                         "fold": np.concatenate([np.full(len(p[2]), p[0]) for p in parts]),
                         "seed": np.concatenate([np.full(len(p[2]), p[1]) for p in parts]),
                         "utt_id": np.concatenate([p[2] for p in parts]),
                         "label": np.concatenate([p[3] for p in parts]),
                         "pred": np.concatenate([p[4] for p in parts])})


def _shift_for(design: Design, difference: float) -> float:
    """The logit shift that moves accuracy (and, with uniform labels, about UA) by ``difference``."""
    return _logit(min(0.99, design.accuracy + difference)) - _logit(design.accuracy)


def simulate_pair(design: Design, difference: float, rng: np.random.Generator,
                  copies: int = 1) -> dict[Condition, pd.DataFrame]:
    """Predictions of A and B on the same folds, A better by about ``difference`` UA."""
    k = len(CLASSES)
    labels = [rng.integers(0, k, design.utterances) for _ in range(design.folds)]
    difficulty = [rng.normal(0, design.difficulty_sd, design.utterances) for _ in range(design.folds)]
    return {A: simulate_predictions(design, _shift_for(design, difference), rng, difficulty, labels, copies),
            B: simulate_predictions(design, 0.0, rng, difficulty, labels, copies)}


def claim_of(relation: Relation = "beats", margin: float = math.nan) -> Claim:
    return Claim(f"calibration.{relation}", "calibration", "-", f"A {relation} B", ((1, A), (-1, B)),
                 relation=relation, margin=margin)


@dataclass
class Rate:
    """A share of replicates with its Monte Carlo standard error."""

    rate: float
    mc_se: float
    replicates: int

    def __str__(self) -> str:
        return f"{self.rate:.3f} ± {self.mc_se:.3f} (MC s.e., {self.replicates} replicates)"


def _rate(hits: int, n: int) -> Rate:
    p = hits / n
    return Rate(p, math.sqrt(max(p * (1 - p), 1 / n) / n), n)


def null_rate(design: Design, replicates: int = 200, relation: Relation = "beats", margin: float = 0.02,
              n_boot: int = 200, seed: int = 0) -> Rate:
    """The share of decisive verdicts on a false claim at its boundary: for ``beats`` both
    conditions from one distribution (any *reproduced* or *refuted* is wrong); for ``similar``
    a true difference of exactly ``margin`` (a *reproduced* is wrong)."""
    rng = np.random.default_rng(seed)
    claim = claim_of(relation, margin if relation == "similar" else math.nan)
    wrong = 0
    for _ in range(replicates):
        preds = simulate_pair(design, margin if relation == "similar" else 0.0, rng)
        v = verdict(evaluate_claim(claim, preds, CLASSES, n_boot=n_boot, seed=int(rng.integers(2**31))))
        wrong += v == "reproduced" if relation == "similar" else v in ("reproduced", "refuted")
    return _rate(wrong, replicates)


def power(design: Design, difference: float, replicates: int = 100, n_boot: int = 200, seed: int = 0) -> Rate:
    """The share of *reproduced* for a ``beats`` claim with a true difference of about ``difference`` UA."""
    rng = np.random.default_rng(seed)
    hits = sum(verdict(evaluate_claim(claim_of(), simulate_pair(design, difference, rng), CLASSES, n_boot=n_boot,
                                      seed=int(rng.integers(2**31)))) == "reproduced" for _ in range(replicates))
    return _rate(hits, replicates)


def seed_split_null(predictions: pd.DataFrame, classes: list[str] | tuple[str, ...], metric: str = "ua",
                    n_boot: int = 200, max_splits: int = 200, seed: int = 0) -> Rate:
    """The null on real runs: the runs of ONE configuration (``predictions`` of 4 or more seeds)
    split into two halves of seeds in every way (up to ``max_splits``), each split scored as
    "half A beats half B". Both halves come from one distribution, so every decisive verdict is
    wrong. Splits share runs, so the replicates are not independent: the standard error is a
    lower bound."""
    import itertools

    seeds = sorted(predictions["seed"].unique())
    if len(seeds) < 4:
        raise ValueError(f"a seed-split null needs runs of 4 or more seeds; got {len(seeds)}")
    half = len(seeds) // 2
    splits = [c for c in itertools.combinations(seeds, half) if seeds[0] in c][:max_splits]
    claim = Claim("calibration.seed_split", "calibration", "-", "half A beats half B", ((1, A), (-1, B)), metric=metric)
    wrong = 0
    for i, first in enumerate(splits):
        second = [s for s in seeds if s not in first][:half]
        preds = {A: predictions[predictions["seed"].isin(first)], B: predictions[predictions["seed"].isin(second)]}
        wrong += verdict(evaluate_claim(claim, preds, list(classes), n_boot=n_boot, seed=seed + i)) != "inconclusive"
    return _rate(wrong, len(splits))


__all__ = ["A", "B", "CLASSES", "Design", "Rate", "claim_of", "null_rate", "power", "seed_split_null", "simulate_pair",
           "simulate_predictions"]
