"""The papers' claims as data, and the statistic and decision rule that give each a verdict.

A :class:`Claim` compares conditions (:class:`Condition`: model, variant, text source,
protocol, class set) through a weighted sum of their scores, e.g. ``+ multimodal - audio-only``
("multimodal beats audio-only"), for a leakage claim ``+ text@random - text@session_script
- audio@random + audio@session_script`` ("random folds flatter text more than audio"), or for
a trend the least-squares slope over a curve (``-0.15 AMH-1 - 0.05 AMH-3 + 0.05 AMH-5 + 0.15
AMH-7``: UA rises with the hop count). The claim holds when that sum is above zero. A term of
weight 0 is scored and reported but does not count (the rest of a curve).

A *rank-change* claim (``statistic="rank_change"``) is about a set of systems instead: its
statistic is how often the seeds rank them differently (the mean, over pairs of seeds, of
the fraction of system pairs the two seeds order differently: 0 = every seed ranks them the
same way, 1 = reversed).

The statistic (:func:`evaluate_claim`) is computed from the per-utterance predictions of the
runs of each condition:

- each condition's score is the paper's metric on each (protocol, fold, seed) unit's test
  utterances, averaged over its units; the statistic is the signed sum of these averages;
- the 95 % interval is a percentile bootstrap over utterances: in every replicate each unit's
  test utterances are resampled once, and conditions that share a unit (same protocol, fold
  and seed: the same test utterances) see the same resample, so paired comparisons stay
  paired;
- the p-value is a paired permutation test over (fold, seed) units (random sign flips of the
  per-unit differences; exact when there are few units) for two conditions on the same units;
  NaN otherwise;
- the verdict (:func:`verdict`): *reproduced* when the interval lies above zero, *refuted*
  when below, *inconclusive* when it includes zero, with the smallest difference the run could
  have detected (80 % power at the 5 % level: 2.8 bootstrap standard errors). A rank-change
  statistic cannot go below zero: it is *refuted* when every bootstrap replicate ranks the
  systems the same way in every seed (interval [0, 0]).

Every condition's score also gets its own bootstrap interval (``ClaimResult.score_ci``), so a
curve (AMH's hop counts) can be drawn with its uncertainty.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError

Verdict = Literal["reproduced", "refuted", "inconclusive", "not run"]
Statistic = Literal["difference", "rank_change"]
#: z(0.975) + z(0.8): a difference of this many standard errors is found 80 % of the time.
MDE_FACTOR = 1.959964 + 0.841621


class ClaimError(WorkbenchError, ValueError):
    """An unknown claim, or runs that cannot be compared; the message names the claim."""


@dataclass(frozen=True)
class Condition:
    """One side of a comparison: what was trained and how it was evaluated. ``protocol`` and
    ``label_scheme`` None: those of the model's paper recipe."""

    model: str
    variant: str = ""
    text_source: str = "oracle"
    protocol: str | None = None
    label_scheme: str | None = None

    def label(self) -> str:
        parts = [self.model + (f"[{self.variant}]" if self.variant else "")]
        parts += [p for p in (self.text_source if self.text_source != "oracle" else "", self.protocol or "") if p]
        return "@".join(parts)


@dataclass(frozen=True)
class Claim:
    """A sentence of a paper turned into ``sum(sign * score(condition)) > 0``."""

    id: str
    paper: str
    source: str  # the table or sentence it comes from
    text: str  # the claim in words
    terms: tuple[tuple[float, Condition], ...]
    metric: str = "ua"
    paper_value: float = math.nan  # the paper's own difference, where its tables give one
    note: str = ""
    statistic: Statistic = "difference"

    def conditions(self) -> tuple[Condition, ...]:
        return tuple(c for _, c in self.terms)


def _vs(claim_id: str, paper: str, source: str, text: str, a: Condition, b: Condition, paper_value: float = math.nan,
        metric: str = "ua", note: str = "") -> Claim:
    """``a`` beats ``b``."""
    return Claim(claim_id, paper, source, text, ((1, a), (-1, b)), metric, paper_value, note)


_C = Condition


def _slope_weights(xs: Sequence[float], extra: Sequence[float] = ()) -> list[tuple[float, float]]:
    """(x, weight) such that sum(weight * y) is the least-squares slope of y over ``xs``;
    ``extra`` points get weight 0 (scored and reported, not counted)."""
    mean = sum(xs) / len(xs)
    ss = sum((x - mean) ** 2 for x in xs)
    return [(x, (x - mean) / ss) for x in xs] + [(x, 0.0) for x in extra]


# The systems of Pepino et al.'s Fig. 3 (audio, GloVe and BERT text, EF-CS, EF-PT, EF-WS, LF-PT).
_PEPINO_FIG3 = (Condition("pepino_audio"), Condition("pepino_text", "static_text"), Condition("pepino_text"),
                Condition("pepino_early", "cold_start"), Condition("pepino_early", "pretrained"),
                Condition("pepino_early", "warm_start"), Condition("pepino_late", "pretrained"))
# Conditions leave protocol and class set to the recipe (each model's own paper's under the
# `paper` recipe, the CPU demo's otherwise) except where the claim is about the protocol.

CLAIMS: tuple[Claim, ...] = (
    # Xu et al. 2019 (Tables 1 and 2; UA)
    _vs("xu2019.multimodal_beats_audio", "xu2019", "Table 2 / Table 1", "the proposed model beats speech-only",
        _C("xu_alignment"), _C("unimodal_audio"), paper_value=0.709 - 0.574),
    _vs("xu2019.multimodal_beats_text", "xu2019", "Table 2", "the proposed model beats text-only (oracle text)",
        _C("xu_alignment"), _C("unimodal_text"), paper_value=0.709 - 0.578),
    _vs("xu2019.alignment_beats_concat", "xu2019", "Table 2", "learned alignment beats concatenation",
        _C("xu_alignment"), _C("xu_alignment_concat"), paper_value=0.709 - 0.677),
    _vs("xu2019.learned_beats_hard", "xu2019", "Table 2", "learned alignment beats hard alignment from word timings",
        _C("xu_alignment"), _C("xu_alignment_hard"), paper_value=0.709 - 0.686),
    _vs("xu2019.oracle_beats_asr_text", "xu2019", "Tables 1-2", "oracle text beats ASR text for text-only",
        _C("unimodal_text"), _C("unimodal_text", text_source="asr"), paper_value=0.578 - 0.548),
    _vs("xu2019.oracle_beats_asr_multimodal", "xu2019", "Tables 1-2", "oracle text beats ASR text for the proposed model",
        _C("xu_alignment"), _C("xu_alignment", text_source="asr"), paper_value=0.709 - 0.695),
    # Yoon et al. 2020 (Table 1, Table 2; UA over 10 folds of 8:1:1, 7 classes)
    _vs("yoon2020.amh_beats_mdre", "yoon2020", "Table 1", "AMH (A+T+V) beats MDRE with the same modalities",
        _C("amh", "hops_7"), _C("mdre", "audio_text_video"), paper_value=0.597 - 0.575),
    _vs("yoon2020.video_helps", "yoon2020", "Table 1", "adding video to audio+text helps (AMH over MHA A+T)",
        _C("amh", "hops_7"), _C("amh_at"), paper_value=0.597 - 0.555),
    *(
        _vs(f"yoon2020.hops_{h}_vs_1", "yoon2020", "Table 2", f"AMH-{h} beats AMH-1 (the hop curve)",
            _C("amh", f"hops_{h}"), _C("amh", "hops_1"), paper_value=ua - 0.579)
        for h, ua in [(3, 0.581), (5, 0.581), (7, 0.597), (9, 0.583)]
    ),
    Claim("yoon2020.hops_rise_to_7", "yoon2020", "Table 2", "UA rises with the number of hops up to 7 "
          "(least-squares slope per hop over AMH-1, -3, -5, -7; AMH-9 is scored for the curve, weight 0)",
          tuple((w, _C("amh", f"hops_{h}")) for h, w in _slope_weights((1, 3, 5, 7), extra=(9,))),
          paper_value=sum(w * ua for (_, w), ua in zip(_slope_weights((1, 3, 5, 7)), (0.579, 0.581, 0.581, 0.597)))),
    # Sun et al. 2021 (Table 3; UA over 10 folds of 8:1:1, 7 classes)
    *(
        _vs(f"sun2021.{v}_lowers", "sun2021", "Table 3", f"MCSAN beats its {v} ablation",
            _C("mcsan"), _C("mcsan", v), paper_value=0.560 - ua)
        for v, ua in [("no_cross", 0.536), ("no_self", 0.550), ("no_audio", 0.469), ("no_text", 0.404)]
    ),
    _vs("sun2021.one_layer_not_worse_than_2", "sun2021", "Table 3", "N=1 layer is not worse than N=2",
        _C("mcsan"), _C("mcsan", "layers_2"), paper_value=0.560 - 0.551,
        note="'not worse': reproduced or inconclusive both support it; refuted contradicts it"),
    # Krishna & Patil 2020 (Tables 1-2; UA, leave-one-session-out)
    _vs("krishna2020.raw_at_least_spec", "krishna2020", "Table 1", "the raw-waveform encoder is at least as good as "
        "the spectrogram one", _C("cma_raw"), _C("cma_spec"), paper_value=0.7282 - 0.7224,
        note="'at least as good': reproduced or inconclusive both support it; refuted contradicts it"),
    _vs("krishna2020.cma_beats_self_audio", "krishna2020", "Tables 1-2", "cross-modal attention beats audio "
        "self-attention", _C("cma_raw"), _C("cma_raw", "self_attn_audio"),
        paper_value=0.7282 - 0.556),
    _vs("krishna2020.cma_beats_self_text", "krishna2020", "Tables 1-2", "cross-modal attention beats text "
        "self-attention", _C("cma_raw"), _C("cma_raw", "self_attn_text"),
        paper_value=0.7282 - 0.659),
    # Pepino et al. 2020 (Table 1, Fig. 2; the paper's metric is AvAUC, UA is reported beside it)
    _vs("pepino2020.contextual_beats_static", "pepino2020", "Table 1", "BERT (contextual) beats GloVe (static) "
        "for text-only", _C("pepino_text"), _C("pepino_text", "static_text"),
        paper_value=0.792 - 0.736, metric="av_auc"),
    _vs("pepino2020.fusion_beats_text", "pepino2020", "Table 1", "fusion (EF-PT) beats the best single modality "
        "(text)", _C("pepino_early", "pretrained"), _C("pepino_text"), paper_value=0.859 - 0.792,
        metric="av_auc"),
    _vs("pepino2020.pretrained_beats_cold", "pepino2020", "Table 1", "pre-trained fusion beats cold start",
        _C("pepino_early", "pretrained"), _C("pepino_early", "cold_start"),
        paper_value=0.859 - 0.857, metric="av_auc"),
    *(
        Claim(f"pepino2020.{proto}_flatters_text", "pepino2020", "Fig. 2",
              f"{proto} folds overstate text-only more than audio-only, relative to session+script folds",
              ((1, _C("pepino_text", protocol=proto)), (-1, _C("pepino_text", protocol="session_script")),
               (-1, _C("pepino_audio", protocol=proto)), (1, _C("pepino_audio", protocol="session_script"))),
              metric="av_auc")
        for proto in ("random_kfold", "loso_session")
    ),
    Claim("pepino2020.rankings_change_with_seed", "pepino2020", "sec. 4.2, Fig. 3", "the ranking of the systems "
          "changes with the seed", tuple((1, c) for c in _PEPINO_FIG3), metric="av_auc", statistic="rank_change",
          note="needs 2 or more seeds; the paper shows no numbers ('results not shown due to lack of space')"),
)


def get_claim(claim_id: str) -> Claim:
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    import difflib

    close = difflib.get_close_matches(claim_id, [c.id for c in CLAIMS], n=3)
    raise ClaimError(f"unknown claim {claim_id!r}" + (f"; did you mean {close}?" if close else
                                                        f"; claims of papers {sorted({c.paper for c in CLAIMS})}"))


# --------------------------------------------------------------------------- statistics
@dataclass
class ClaimResult:
    """The statistic of one claim on one set of runs."""

    claim: str
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float
    n_units: int
    scores: dict[str, float] = field(default_factory=dict)  # condition label -> mean score
    score_ci: dict[str, tuple[float, float]] = field(default_factory=dict)  # condition label -> 95 % interval
    statistic: Statistic = "difference"

    @property
    def min_detectable(self) -> float:
        return MDE_FACTOR * self.se


def _metric(metric: str, labels: np.ndarray, preds: np.ndarray, probs: np.ndarray | None, n_classes: int) -> float:
    if metric == "wa":
        return float(np.mean(labels == preds))
    if metric == "ua":
        present = np.unique(labels)
        return float(np.mean([np.mean(preds[labels == c] == c) for c in present]))
    if metric == "av_auc":
        if probs is None:
            raise ClaimError("av_auc needs class probabilities in the predictions")
        aucs = [_auc(labels == c, probs[:, c]) for c in range(n_classes) if 0 < np.sum(labels == c) < len(labels)]
        return float(np.mean(aucs)) if aucs else float("nan")
    raise ClaimError(f"unsupported metric {metric!r}; use ua, wa or av_auc")


def _auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC from ranks (Mann-Whitney U; ties count half), sklearn's value without its
    per-call overhead: the bootstrap calls this ~10^5 times per claim."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass
class _Unit:
    labels: np.ndarray
    preds: np.ndarray
    probs: np.ndarray | None


def _units(preds: pd.DataFrame, classes: Sequence[str]) -> dict[tuple, _Unit]:
    """(protocol, fold, seed) -> arrays in utterance-id order (so paired units line up)."""
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for key, g in preds.groupby(["protocol", "fold", "seed"], sort=True):
        g = g.sort_values("utt_id")
        probs = np.stack([np.asarray(p, float) for p in g["probs"]]) if "probs" in g and g["probs"].notna().all() else None
        out[key] = _Unit(g["label"].map(index).to_numpy(), g["pred"].map(index).to_numpy(), probs)
    return out


def evaluate_claim(claim: Claim, predictions: Mapping[Condition, pd.DataFrame], classes: Sequence[str],
                   n_boot: int = 1000, seed: int = 0, n_perm: int = 10000) -> ClaimResult:
    """The statistic of ``claim`` from each condition's test predictions (columns ``protocol,
    fold, seed, utt_id, label, pred`` and, for AvAUC, ``probs``).

    Conditions on the same (protocol, fold, seed) unit must have been tested on the same
    utterances (same folds): :class:`ClaimError` otherwise.
    """
    k = len(classes)
    units = {cond: _units(predictions[cond], classes) for cond in claim.conditions()}
    for cond, us in units.items():
        if not us:
            raise ClaimError(f"claim {claim.id}: no predictions for {cond.label()}")
    ids = {cond: {key: tuple(sorted(predictions[cond].loc[
        (predictions[cond]["protocol"] == key[0]) & (predictions[cond]["fold"] == key[1])
        & (predictions[cond]["seed"] == key[2]), "utt_id"])) for key in us} for cond, us in units.items()}
    sizes: dict[tuple, int] = {}
    seen: dict[tuple, tuple] = {}
    for cond, us in units.items():
        for key, u in us.items():
            if key in seen and seen[key] != ids[cond][key]:
                raise ClaimError(f"claim {claim.id}: {cond.label()} was tested on other utterances than another "
                                 f"condition in fold {key[1]} seed {key[2]} of {key[0]}")
            seen[key], sizes[key] = ids[cond][key], len(u.labels)

    def scores_of(resample: Mapping[tuple, np.ndarray] | None) -> dict[Condition, dict[tuple, float]]:
        """Condition -> (protocol, fold, seed) unit -> the metric on that unit's (resampled) test set."""
        out: dict[Condition, dict[tuple, float]] = {}
        for cond, us in units.items():
            out[cond] = {}
            for key, u in us.items():
                i = resample[key] if resample is not None else slice(None)
                out[cond][key] = _metric(claim.metric, u.labels[i], u.preds[i], None if u.probs is None else u.probs[i], k)
        return out

    def statistic(per_unit: Mapping[Condition, Mapping[tuple, float]]) -> float:
        if claim.statistic == "rank_change":
            return _rank_change(claim, per_unit)
        return float(sum(w * np.nanmean(list(per_unit[cond].values())) for w, cond in claim.terms))

    if claim.statistic == "rank_change" and len({key[2] for us in units.values() for key in us}) < 2:
        raise ClaimError(f"claim {claim.id}: a rank change over seeds needs runs of 2 or more seeds")
    observed = scores_of(None)
    diff = statistic(observed)
    rng = np.random.default_rng(seed)
    labels = [cond.label() for cond in claim.conditions()]
    boots, cond_boots = [], []
    for _ in range(n_boot):
        per_unit = scores_of({key: rng.integers(0, n, n) for key, n in sizes.items()})
        boots.append(statistic(per_unit))
        cond_boots.append([np.nanmean(list(per_unit[c].values())) for c in claim.conditions()])
    boots_arr = np.array(boots)
    boots_arr = boots_arr[np.isfinite(boots_arr)]
    lo, hi = (np.percentile(boots_arr, [2.5, 97.5]) if len(boots_arr) else (np.nan, np.nan))
    cb = np.array(cond_boots).reshape(len(cond_boots), len(labels))
    score_ci = {lab: (float(np.nanpercentile(cb[:, j], 2.5)), float(np.nanpercentile(cb[:, j], 97.5)))
                for j, lab in enumerate(labels)} if n_boot else {}
    scores = {cond.label(): float(np.nanmean(list(observed[cond].values()))) for cond in claim.conditions()}
    p = _permutation_p(claim, units, k, n_perm, rng) if claim.statistic == "difference" else float("nan")
    n_units = len({key[2] for key in sizes}) if claim.statistic == "rank_change" else len(sizes)
    return ClaimResult(claim.id, float(diff), float(lo), float(hi), p,
                       float(np.std(boots_arr, ddof=1)) if len(boots_arr) > 1 else float("nan"), n_units, scores,
                       score_ci, claim.statistic)


def _rank_change(claim: Claim, per_unit: Mapping[Condition, Mapping[tuple, float]]) -> float:
    """The mean, over pairs of seeds, of the fraction of system pairs the two seeds order
    differently (a normalised Kendall distance between the seeds' rankings; ties count half).
    Each system's score in a seed is its mean over that seed's (protocol, fold) units."""
    conds = claim.conditions()
    seeds = sorted({key[2] for c in conds for key in per_unit[c]})
    by_seed = np.array([[np.nanmean([v for key, v in per_unit[c].items() if key[2] == s]) for c in conds]
                        for s in seeds])
    pairs = list(itertools.combinations(range(len(conds)), 2))
    # sign of (system i - system j) in every seed; a pair of seeds disagrees where the signs differ
    signs = np.stack([np.sign(by_seed[:, i] - by_seed[:, j]) for i, j in pairs], axis=1)
    dist = [np.mean(np.abs(signs[a] - signs[b]) / 2) for a, b in itertools.combinations(range(len(seeds)), 2)]
    return float(np.mean(dist))


def _permutation_p(claim: Claim, units: Mapping[Condition, Mapping[tuple, _Unit]], k: int, n_perm: int,
                   rng: np.random.Generator) -> float:
    """Paired sign-flip permutation over (protocol, fold, seed) units of the per-unit weighted
    sum; only when every condition was run on the same units (NaN otherwise)."""
    conds = claim.conditions()
    keys = set(units[conds[0]])
    if any(set(units[c]) != keys for c in conds):
        return float("nan")
    d = np.array([sum(w * _metric(claim.metric, units[c][key].labels, units[c][key].preds, units[c][key].probs, k)
                      for w, c in claim.terms) for key in sorted(keys)])
    n = len(d)
    observed = abs(d.mean())
    if n <= 16:  # every sign pattern
        signs = np.array(list(itertools.product((1, -1), repeat=n)))
    else:
        signs = rng.choice((1, -1), size=(n_perm, n))
    null = np.abs((signs * d).mean(axis=1))
    return float(np.mean(null >= observed - 1e-12))


def verdict(result: ClaimResult) -> Verdict:
    """*reproduced* (interval above zero), *refuted* (below; for a rank change: exactly [0, 0])
    or *inconclusive* (includes zero)."""
    if not (np.isfinite(result.ci_low) and np.isfinite(result.ci_high)):
        return "inconclusive"
    if result.statistic == "rank_change" and result.ci_high <= 0:
        return "refuted"  # no replicate of any seed ranks the systems differently
    if result.ci_low > 0:
        return "reproduced"
    if result.ci_high < 0:
        return "refuted"
    return "inconclusive"


__all__ = ["CLAIMS", "Claim", "ClaimError", "ClaimResult", "Condition", "evaluate_claim", "get_claim", "verdict"]
