"""The papers' claims as data.

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

Each claim reads one sentence of its paper (``quote``, verbatim: a test finds it in the paper
text) with the relation the paper states: ``beats``, ``worse`` or ``similar`` (a region of
practical equivalence of ``margin``). The statistic, its interval and the verdict live in
:mod:`workbench.evaluation.verdicts`.
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
Relation = Literal["beats", "worse", "similar"]
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
    #: how the paper states it: ``beats`` (the sum is above zero), ``worse`` (below zero) or
    #: ``similar`` (within ``margin`` of zero either way: a region of practical equivalence)
    relation: Relation = "beats"
    margin: float = math.nan  # the equivalence margin of a ``similar`` claim, in the metric's units
    quote: str = ""  # the paper's own sentence (or table caption) the claim reads, verbatim

    def conditions(self) -> tuple[Condition, ...]:
        return tuple(c for _, c in self.terms)


def _vs(claim_id: str, paper: str, source: str, text: str, a: Condition, b: Condition, paper_value: float = math.nan,
        metric: str = "ua", note: str = "", relation: Relation = "beats", margin: float = math.nan,
        quote: str = "") -> Claim:
    """``a`` beats ``b`` (``relation="beats"``), is worse, or performs similarly within ``margin``."""
    return Claim(claim_id, paper, source, text, ((1, a), (-1, b)), metric, paper_value, note,
                 relation=relation, margin=margin, quote=quote)


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


__all__ = ["CLAIMS", "Claim", "ClaimError", "Condition", "Relation", "Statistic", "get_claim"]
