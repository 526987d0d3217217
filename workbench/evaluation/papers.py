"""The papers' reported numbers as data, and a table that puts a run beside them.

Every number below is copied from a table of one of the five papers the models come from
(``table`` says which); percentages are stored as fractions. ``model`` is the workbench model
that implements the row's system (None for systems the workbench does not have: cited
baselines such as MDRE or E-Vector). Protocol names are the workbench's
(:mod:`workbench.protocols`):

- ``loso_session``: leave one session out, 5 folds (Xu, Krishna);
- ``tenfold_811``: 10 folds of 8:1:1 train/validation/test over utterances (AMH, MCSAN);
- ``session_script``: by-speaker and by-script folds, script 3 tested (Pepino et al.);
- ``official``: the corpus's own split (MSP-Podcast v1.4, MELD).

>>> t = paper_table()
>>> row = t[(t.paper == "xu2019") & (t.model == "xu_alignment") & (t.text_source == "oracle")].iloc[0]
>>> float(row.wa), float(row.ua), row.protocol
(0.725, 0.709, 'loso_session')
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from workbench.evaluation.aggregate import GROUP_KEYS, aggregate
from workbench.models.registry import get_card
from workbench.training.recipes import get_recipe
from workbench.training.results import STORED_NAMES

NAN = float("nan")

PAPERS: dict[str, str] = {
    "xu2019": "Xu et al., Learning alignment for multimodal emotion recognition from speech, Interspeech 2019",
    "yoon2020": "Yoon, Dey, Lee, Jung, Attentive modality hopping mechanism for speech emotion recognition, ICASSP 2020",
    "sun2021": "Sun, Liu, Tao, Lian, Multimodal cross- and self-attention network (MCSAN), ICASSP 2021",
    "krishna2020": "Krishna D N, Patil, Multimodal emotion recognition using cross-modal attention and 1D CNN on raw waveform, Interspeech 2020",
    "pepino2020": "Pepino, Riera, Ferrer, Gravano, Fusion approaches for emotion recognition from speech using acoustic and text-based features, ICASSP 2020",
}


@dataclass(frozen=True)
class PaperResult:
    """One reported number set. Metrics are fractions in [0, 1]; NaN where not reported.

    ``spread`` names what ``*_spread`` holds: ``"std"`` (mean ± std over folds), ``"iqr"``
    (median ± interquartile range over seeds) or ``""`` (none reported).
    """

    paper: str
    paper_model: str  # the system's name in the paper
    model: str | None  # workbench model name, None if the workbench has no such model
    variant: str  # configuration within the model (ablation, hops, embeddings, strategy)
    modalities: str  # "A", "T", "A+T", "A+T+V"
    text_source: str  # "oracle" | "asr" | "" (no text)
    corpus: str  # "IEMOCAP" | "MSP-Podcast" | "MELD"
    label_scheme: str  # workbench label scheme (iemocap4, iemocap7) or a description
    protocol: str  # workbench protocol name
    table: str  # where the number is printed
    wa: float = NAN
    ua: float = NAN
    f1: float = NAN  # weighted F1 (MELD)
    av_auc: float = NAN
    wa_spread: float = NAN
    ua_spread: float = NAN
    spread: str = ""
    note: str = ""
    text_encoder: str = ""  # the paper's text representation ("" without text)
    reason: str = ""  # why no workbench configuration runs this row (``model`` is None)


#: What each paper's set-up fixes beyond a row: the ASR engine of its "asr" rows, how many
#: seeds its numbers come from (None: not stated, one training per fold) and what its spread is.
PAPER_SETUP: dict[str, dict[str, object]] = {
    "xu2019": dict(asr="Google Cloud Speech-to-Text (WER 14.7%, sec. 4.2)", seeds=None, spread_unit=""),
    # sec. 4.3: "We perform 10-fold cross-validation (10 experiments for each fold)"
    "yoon2020": dict(asr="commercial ASR, Google Cloud Speech-to-Text (WER 5.53%, sec. 4.2)", seeds=10,
                     spread_unit="std over 10 folds of 10 experiments each"),
    "sun2021": dict(asr="", seeds=None, spread_unit="std over 10 folds"),
    "krishna2020": dict(asr="", seeds=None, spread_unit=""),
    "pepino2020": dict(asr="Google Cloud Speech-to-Text (MSP-Podcast only, sec. 4)", seeds=10,
                       spread_unit="IQR over 10 seeds"),
}


def _cited(source: str, more: str = "") -> str:
    """The reason a row runs nowhere: the paper quotes another paper's number."""
    return f"cited from {source}, not rerun by this paper" + (f"; {more}" if more else "; not implemented here")


_MDRE_CITED = _cited("Yoon et al. 2018 (MDRE) under that paper's own set-up",
                     "mdre runs MDRE; compare with Yoon 2020's rerun of it (yoon2020 rows)")


def _pct(value: float) -> float:
    """A percentage as printed -> a fraction, without float noise (70.9 -> 0.709)."""
    return round(value / 100, 6)


def _xu(
    paper_model: str, model: str | None, variant: str, mods: str, text: str, table: str, wa: float, ua: float,
    note: str = "", reason: str = "",
) -> PaperResult:
    return PaperResult(
        "xu2019", paper_model, model, variant, mods, text, "IEMOCAP", "iemocap4", "loso_session", table,
        wa=_pct(wa), ua=_pct(ua),
        note=note or "4 sessions train, 1 test (sec. 4.1); the paper does not say whether excited is merged into happy",
        text_encoder="GloVe-300" if "T" in mods else "", reason=reason,
    )  # fmt: skip


def _krishna(paper_model: str, model: str | None, mods: str, table: str, ua: float, note: str = "",
             variant: str = "", reason: str = "") -> PaperResult:
    return PaperResult(
        "krishna2020", paper_model, model, variant, mods, "oracle" if "T" in mods else "", "IEMOCAP", "iemocap4",
        "loso_session", table, ua=_pct(ua), note=note or "5-fold leave-one-session-out, average of test sessions (sec. 3)",
        text_encoder="GloVe" if "T" in mods else "", reason=reason,
    )  # fmt: skip


def _yoon(
    paper_model: str, model: str | None, variant: str, mods: str, text: str, table: str,
    wa: float, wa_sd: float, ua: float, ua_sd: float, note: str = "",
) -> PaperResult:
    return PaperResult(
        "yoon2020", paper_model, model, variant, mods, text, "IEMOCAP", "iemocap7", "tenfold_811", table,
        wa=wa, ua=ua, wa_spread=wa_sd, ua_spread=ua_sd, spread="std", note=note,
        # sec. 4.2: "the same feature extraction ... as in our previous work [12]" (GloVe-300 there)
        text_encoder="GloVe-300 (as in [12])" if "T" in mods else "",
    )  # fmt: skip


def _sun(
    paper_model: str, model: str | None, variant: str, mods: str, table: str,
    wa: float, wa_sd: float, ua: float, ua_sd: float, note: str = "", reason: str = "",
) -> PaperResult:
    return PaperResult(
        "sun2021", paper_model, model, variant, mods, "oracle" if "T" in mods else "", "IEMOCAP", "iemocap7",
        "tenfold_811", table, wa=wa, ua=ua, wa_spread=wa_sd, ua_spread=ua_sd, spread="std", note=note,
        text_encoder="GloVe-300" if "T" in mods else "", reason=reason,
    )  # fmt: skip


def _pepino(
    paper_model: str, model: str, variant: str, mods: str, corpus: str, ua: float, ua_iqr: float, auc: float
) -> PaperResult:
    iemocap = corpus == "IEMOCAP"
    return PaperResult(
        "pepino2020", paper_model, model, variant, mods, ("oracle" if iemocap else "asr") if "T" in mods else "",
        corpus, "iemocap4" if iemocap else "msp_podcast4", "session_script" if iemocap else "official",
        "Table 1", ua=_pct(ua), ua_spread=_pct(ua_iqr), av_auc=auc, spread="iqr",
        note="median over 10 seeds; UA = AvRec; spread = IQR of AvRec (AvAUC's IQR not stored)" + (
            "; human transcripts" if iemocap else "; MSP-Podcast v1.4 official split, Google ASR text"),
        text_encoder=("GloVe" if variant == "static_text" else "BERT-base (sum of the last 4 layers)") if "T" in mods else "",
    )  # fmt: skip


_O, _ASR = "oracle", "asr"
_T3 = "Table 3"

RESULTS: tuple[PaperResult, ...] = (
    # Xu et al. 2019, Table 1 (recognised text) and Table 2 (oracle text)
    _xu("LSTM+Attn (speech-only, our implementation)", "unimodal_audio", "", "A", "", "Table 1", 63.4, 57.4),
    _xu("LSTM+Attn (Mirsamadi et al., 2017)", None, "", "A", "", "Table 1", 63.5, 58.8,
        reason=_cited("Mirsamadi et al. 2017", "unimodal_audio runs its architecture; compare with Xu's own "
                      "implementation, the row above")),
    _xu("CNN+LSTM (Satt et al., 2018)", None, "", "A", "", "Table 1", 68, 59.4, reason=_cited("Satt et al. 2018")),
    _xu("TDNN+LSTM (Sarma et al., 2018)", None, "", "A", "", "Table 1", 70.1, 60.7, reason=_cited("Sarma et al. 2018")),
    _xu("LSTM+Attn (text-only, ASR text)", "unimodal_text", "", "T", _ASR, "Table 1", 60.3, 54.8),
    _xu("Concat (our implementation)", "xu_alignment_concat", "", "A+T", _ASR, "Table 1", 68.1, 66.0),
    _xu("Concat (Yoon et al., 2018)", None, "", "A+T", _ASR, "Table 1", 69.1, NAN, reason=_MDRE_CITED),
    _xu("Proposed", "xu_alignment", "", "A+T", _ASR, "Table 1", 70.4, 69.5),
    _xu("Text-only (oracle text)", "unimodal_text", "", "T", _O, "Table 2", 63.3, 57.8),
    _xu("Concat (our implementation)", "xu_alignment_concat", "", "A+T", _O, "Table 2", 71, 67.7),
    _xu("Concat (Yoon et al., 2018)", None, "", "A+T", _O, "Table 2", 71.8, NAN, reason=_MDRE_CITED),
    _xu("Hard alignment", "xu_alignment_hard", "", "A+T", _O, "Table 2", 71.5, 68.6),
    _xu("Proposed", "xu_alignment", "", "A+T", _O, "Table 2", 72.5, 70.9),
    # Krishna & Patil 2020, Tables 1 and 2 (UA only)
    _krishna("E-Vector [29]", None, "A+T", "Table 1", 57.25, reason=_cited("reference [29]")),
    _krishna("MCNN + LSTM [13]", None, "A+T", "Table 1", 64.33, reason=_cited("reference [13]")),
    _krishna("MCCN+phoneme embeddings [14]", None, "A+T", "Table 1", 68.50, reason=_cited("reference [14]")),
    _krishna("H.Xu et al. [2]", None, "A+T", "Table 1", 70.90,
             reason=_cited("Xu et al. 2019 (oracle text)", "xu_alignment runs it; see the xu2019 rows")),
    _krishna("CMA+spec (proposed)", "cma_spec", "A+T", "Table 1", 72.24),
    _krishna("CMA+Raw waveform (proposed)", "cma_raw", "A+T", "Table 1", 72.82),
    _krishna("TDNN+LSTM [18]", None, "A", "Table 2", 60.70, reason=_cited("reference [18]")),
    _krishna("LSTM+Attn [28]", None, "A", "Table 2", 58.80,
             reason=_cited("Mirsamadi et al. 2017", "unimodal_audio runs its architecture; see the xu2019 rows")),
    _krishna("Self-Attn+LSTM (audio-only, ours)", "cma_raw", "A", "Table 2", 55.60,
             "CMA audio branch with self-attention", variant="self_attn_audio"),
    _krishna("H.Xu et al. [2] (text-only)", None, "T", "Table 2", 57.80,
             reason=_cited("Xu et al. 2019", "unimodal_text runs it; see the xu2019 rows")),
    _krishna("Speech-Embedding [15]", None, "T", "Table 2", 60.40, reason=_cited("reference [15]")),
    _krishna("Self-Attn+LSTM (text-only)", "cma_raw", "T", "Table 2", 65.90, "CMA text branch with self-attention",
             variant="self_attn_text"),
    # Yoon et al. 2020 (AMH), Table 1 (mean ± std over 10 folds) and Table 2 (hops)
    _yoon("RNN-attn [17]", "unimodal_audio", "yoon2020", "A", "", "Table 1", 0.359, 0.058, 0.319, 0.065),
    _yoon("RNN-attn [17]", "unimodal_text", "yoon2020", "T", _O, "Table 1", 0.528, 0.018, 0.525, 0.031),
    _yoon("RNN-attn [17]", "unimodal_video", "", "V", "", "Table 1", 0.467, 0.046, 0.412, 0.066),
    _yoon("MDRE [9]", "mdre", "", "A+T", _O, "Table 1", 0.557, 0.018, 0.536, 0.030),
    _yoon("MDRE [9]", "mdre", "text_video", "T+V", _O, "Table 1", 0.585, 0.040, 0.561, 0.046),
    _yoon("MDRE [9]", "mdre", "audio_video", "A+V", "", "Table 1", 0.481, 0.049, 0.415, 0.047),
    _yoon("MHA [12]", "amh_at", "", "A+T", _O, "Table 1", 0.583, 0.025, 0.555, 0.040),
    _yoon("MHA [12]", "amh_at", "text_video", "T+V", _O, "Table 1", 0.590, 0.017, 0.560, 0.032),
    _yoon("MHA [12]", "amh_at", "audio_video", "A+V", "", "Table 1", 0.490, 0.049, 0.434, 0.060),
    _yoon("MDRE [9]", "mdre", "audio_text_video", "A+T+V", _O, "Table 1", 0.602, 0.033, 0.575, 0.046),
    _yoon("AMH (ours)", "amh", "hops_7", "A+T+V", _O, "Table 1", 0.624, 0.022, 0.597, 0.040),
    _yoon("AMH-ASR (ours)", "amh", "hops_7", "A+T+V", _ASR, "Table 1", 0.611, 0.024, 0.595, 0.036,
          "commercial ASR, 5.53% WER"),
    *(
        _yoon(f"AMH-{h}", "amh", f"hops_{h}", "A+T+V", _O, "Table 2", wa, wsd, ua, usd)
        for h, wa, wsd, ua, usd in [
            (1, 0.599, 0.015, 0.579, 0.032), (2, 0.610, 0.024, 0.589, 0.047), (3, 0.605, 0.033, 0.581, 0.051),
            (4, 0.612, 0.030, 0.586, 0.041), (5, 0.600, 0.038, 0.581, 0.054), (6, 0.610, 0.023, 0.584, 0.046),
            (7, 0.624, 0.022, 0.597, 0.040), (8, 0.603, 0.034, 0.576, 0.047), (9, 0.608, 0.034, 0.583, 0.048),
        ]
    ),
    # Sun et al. 2021 (MCSAN), Table 1 (baselines revised from AMH's repository), Table 3 (ablations)
    _sun("MDRE [11]", "mdre", "", "A+T", "Table 1", 0.498, 0.059, 0.418, 0.077, "revised result from AMH's repository"),
    _sun("MHA [16]", "amh_at", "", "A+T", "Table 1", 0.543, 0.026, 0.491, 0.028, "revised result from AMH's repository"),
    _sun("Xu et al. [17]", "xu_alignment", "", "A+T", "Table 1", 0.560, 0.028, 0.450, 0.028, "result from CAN [14]"),
    _sun("CAN [14]", None, "", "A+T", "Table 1", 0.579, 0.019, 0.487, 0.017,
         reason=_cited("CAN [14]", "the workbench does not implement CAN")),
    _sun("AMH [20]", "amh", "hops_7", "A+T+V", "Table 1", 0.617, 0.016, 0.547, 0.025,
         "revised result from AMH's repository (its default, 7 hops)"),
    _sun("MCSAN (ours)", "mcsan", "", "A+T", "Table 1", 0.612, 0.012, 0.560, 0.019),
    _sun("MCSAN w/o audio", "mcsan", "no_audio", "T", _T3, 0.509, 0.010, 0.469, 0.028),
    _sun("MCSAN w/o text", "mcsan", "no_text", "A", _T3, 0.491, 0.011, 0.404, 0.010),
    _sun("MCSAN w/o self", "mcsan", "no_self", "A+T", _T3, 0.605, 0.013, 0.550, 0.026),
    _sun("MCSAN w/o cross", "mcsan", "no_cross", "A+T", _T3, 0.596, 0.012, 0.536, 0.028),
    _sun("MCSAN cross + self (seq)", "mcsan", "cross_self", "A+T", _T3, 0.606, 0.011, 0.552, 0.025),
    _sun("MCSAN self + cross (seq)", "mcsan", "self_cross", "A+T", _T3, 0.602, 0.012, 0.554, 0.024),
    _sun("MCSAN N = 2", "mcsan", "layers_2", "A+T", _T3, 0.601, 0.015, 0.551, 0.025),
    _sun("MCSAN N = 3", "mcsan", "layers_3", "A+T", _T3, 0.595, 0.012, 0.541, 0.018),
    *(
        PaperResult("sun2021", name, model, "meld" if model else "", "A+T", "oracle", "MELD", "meld7", "official",
                    "Table 2", f1=f1, note="weighted-average F1 on the MELD test set", text_encoder="GloVe-300",
                    reason="" if model else _cited(name))
        for name, model, f1 in [
            ("cMKL [25]", None, 0.555), ("Liang et al. [22]", None, 0.561),
            ("Liang et al. [22] (semi)", None, 0.571), ("MCSAN (ours)", "mcsan", 0.592),
        ]
    ),
    # Pepino et al. 2020, Table 1: median ± IQR over 10 seeds
    *(
        _pepino(name, model, variant, mods, corpus, ua, iqr, auc)
        for corpus, rows in [
            ("IEMOCAP", [(56.0, 1.9, 0.782), (47.8, 0.1, 0.736), (55.2, 1.0, 0.792), (65.1, 0.5, 0.857),
                         (64.7, 1.6, 0.863), (64.9, 1.0, 0.859), (63.9, 0.5, 0.857)]),
            ("MSP-Podcast", [(45.7, 1.4, 0.726), (49.8, 0.4, 0.736), (51.0, 0.9, 0.749), (58.2, 2.4, 0.817),
                             (59.1, 1.8, 0.823), (56.5, 0.3, 0.817), (58.0, 0.7, 0.819)]),
        ]
        for (name, model, variant, mods), (ua, iqr, auc) in zip(
            [
                ("Audio", "pepino_audio", "", "A"),
                ("Glove", "pepino_text", "static_text", "T"),
                ("BERT", "pepino_text", "", "T"),
                ("EF-CS", "pepino_early", "cold_start", "A+T"),
                ("EF-WS", "pepino_early", "warm_start", "A+T"),
                ("EF-PT", "pepino_early", "pretrained", "A+T"),
                ("LF-PT", "pepino_late", "pretrained", "A+T"),
            ],
            rows,
        )
    ),
)  # fmt: skip


def paper_table(papers: Sequence[str] | None = None) -> pd.DataFrame:
    """All reported rows as a DataFrame (one column per :class:`PaperResult` field)."""
    rows = [asdict(r) for r in RESULTS if papers is None or r.paper in papers]
    return pd.DataFrame(rows, columns=[f.name for f in fields(PaperResult)])


def _norm(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip().lower()


#: What the workbench's offline text extractors stand in for (a paper's GloVe or BERT).
TEXT_EXTRACTORS: dict[str, str] = {
    "text_contextual": "MiniLM-L6 contextual word embeddings",
    "text_static": "MiniLM-L6 input-embedding table (static word vectors)",
}

#: The config of BERT-base (Devlin et al. 2019), the BERT the papers used; uncased is
#: recognised by its tokenizer (``is_bert_base_uncased``).
BERT_BASE_CONFIG: dict[str, object] = dict(model_type="bert", hidden_size=768, num_hidden_layers=12,
                                           vocab_size=30522)
BERT_BASE_NAME = "bert-base-uncased"


def _lowercases(path: Path) -> bool:
    """Whether the tokenizer saved in ``path`` lower-cases its input (an uncased model)."""
    tok_config = path / "tokenizer_config.json"
    if tok_config.is_file():
        lower = json.loads(tok_config.read_text(encoding="utf-8")).get("do_lower_case")
        if lower is not None:
            return bool(lower)
    tok_json = path / "tokenizer.json"
    if tok_json.is_file():
        normalizer = json.loads(tok_json.read_text(encoding="utf-8")).get("normalizer") or {}
        return bool(normalizer.get("lowercase"))
    return False


def is_bert_base_uncased(checkpoint: str) -> bool:
    """Whether text checkpoint ``checkpoint`` is BERT-base uncased: by its config and tokenizer
    when it is on this machine (a directory, or a name in the Hugging Face cache), else by its
    name (``bert-base-uncased``, ``google-bert/bert-base-uncased``), as for results of a run
    made elsewhere. Nothing is downloaded."""
    from workbench.features.checkpoints import CheckpointError, checkpoint_path

    try:
        path = checkpoint_path(checkpoint, allow_download=False)
    except CheckpointError:
        return Path(str(checkpoint).rstrip("/")).name.lower() == BERT_BASE_NAME
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except ValueError:
        return False
    return all(config.get(k) == v for k, v in BERT_BASE_CONFIG.items()) and _lowercases(path)


def describe_text_encoder(text: Mapping[str, Any]) -> str:
    """What a run's text input (its stored feature spec: ``extractor``, ``config``, ``dim``) read."""
    extractor = str(text.get("extractor", ""))
    config = dict(text.get("config") or {})
    dim = text.get("dim")
    if extractor == "text_glove":
        name = Path(str(config.get("path", "?"))).name
        return f"GloVe vectors from {name}" + (f" ({dim}-d)" if dim else "")
    checkpoint = config.get("checkpoint")
    if checkpoint and extractor == "text_contextual":
        return f"{checkpoint} contextual word embeddings (sum of the last {config.get('layers', 4)} layers)"
    if checkpoint and extractor == "text_static":
        return f"{checkpoint} input-embedding table (static word vectors)"
    return TEXT_EXTRACTORS.get(extractor, extractor)


def text_encoder_difference(paper_encoder: str, text: Mapping[str, Any] | None) -> str | None:
    """How a run's text input (stored feature spec) differs from the paper's text encoder, or
    None when it is the paper's: BERT-base uncased (:func:`is_bert_base_uncased`) as
    ``text_contextual`` summing the paper's number of layers for a BERT paper; a GloVe file
    (``text_glove``, of the paper's dimension when it names one: GloVe-300) for a GloVe paper."""
    if not paper_encoder or not text or not text.get("extractor"):
        return None
    extractor = str(text["extractor"])
    config = dict(text.get("config") or {})
    if "bert" in paper_encoder.lower():
        layers = re.search(r"last (\d+) layers", paper_encoder)
        same = (extractor == "text_contextual" and bool(config.get("checkpoint"))
                and (layers is None or int(config.get("layers", 4)) == int(layers.group(1)))
                and is_bert_base_uncased(str(config["checkpoint"])))
    elif "glove" in paper_encoder.lower():
        dim = re.search(r"glove-(\d+)", paper_encoder.lower())
        same = extractor == "text_glove" and (dim is None or text.get("dim") in (None, int(dim.group(1))))
    else:
        same = False
    return None if same else f"text encoder: {describe_text_encoder(text)} stand in for {paper_encoder}"


def exact_text_encoder(paper_encoder: str) -> str:
    """The ``--text-encoder`` value that runs a paper's text encoder exactly ("" if none does)."""
    low = paper_encoder.lower()
    if "bert" in low:
        return BERT_BASE_NAME
    dim = re.search(r"glove-(\d+)", low)
    if dim:
        return f"<a {dim.group(1)}-d GloVe .txt file>"
    return "<a GloVe .txt file>" if "glove" in low else ""


def _config(run: pd.Series) -> dict:
    raw = run.get("config_json")
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}


#: The training settings on which a run is compared with the recipe it names.
RECIPE_FIELDS: tuple[str, ...] = (
    "epochs", "batch_size", "lr", "optimizer", "weight_decay", "grad_clip", "warmup_steps", "early_stopping_patience",
    "class_weights", "fusion_strategy", "max_train_utterances", "bucketing",
)


def _derived_fields(model: str) -> set[str]:
    """Model config fields filled from the data (class count, feature sizes, frame periods),
    not chosen by a recipe or the user."""
    card = get_card(model)
    return {"n_classes", *card.dims.values(), *card.frame_periods.values(), *card.layer_counts.values()}


def recipe_overrides(config: Mapping[str, Any], model: str, variant: str = "", recipe: str = "paper") -> list[str]:
    """Where a run's stored config (``config.json``, the results' ``config_json``) departs from
    ``recipe`` of its ``model`` and ``variant``: each training setting of :data:`RECIPE_FIELDS`
    (``--epochs``, a changed batch size or learning rate) and each model option (``--model-options``:
    a config field the recipe does not set, or sets otherwise). Empty when the config stores no
    settings (results written by hand), or the run is the recipe's."""
    settings = config.get("settings")
    if not isinstance(settings, Mapping):
        return []
    try:
        ref = get_recipe(model, recipe, variant=variant or None)
    except ValueError as e:
        return [f"recipe: {e}"]
    out = [f"{name}: {settings[name]!r} vs the {recipe} recipe's {getattr(ref, name)!r}" for name in RECIPE_FIELDS
           if name in settings and settings[name] != getattr(ref, name)]
    ours = {k: v for k, v in dict(config.get("model_config") or settings.get("model_config") or {}).items()
            if k not in _derived_fields(model)}
    theirs = json.loads(json.dumps(dict(ref.model_config)))  # tuples -> lists, as stored
    for key in sorted(set(ours) | set(theirs)):
        if key not in ours:
            out.append(f"model option {key}: the model's default vs the {recipe} recipe's {theirs[key]!r}")
        elif key not in theirs:
            out.append(f"model option {key}: {ours[key]!r} vs the model's default (the {recipe} recipe sets none)")
        elif ours[key] != theirs[key]:
            out.append(f"model option {key}: {ours[key]!r} vs the {recipe} recipe's {theirs[key]!r}")
    return out


def differences(run: pd.Series, paper: pd.Series) -> list[str]:
    """Everything that keeps a run (an aggregated row) from being the paper's experiment:
    corpus (a synthetic corpus is always listed: it is a stand-in, not IEMOCAP), protocol,
    label scheme, text source, the text encoder that stands in for the paper's (none when the
    run read the paper's BERT or GloVe: :func:`text_encoder_difference`), the ASR engine, a
    CPU-sized training recipe, every override of the recipe the run names (epochs, batch
    size, learning rate, model options: :func:`recipe_overrides`), the number of seeds.
    Empty: the same setting.
    """
    out = []
    corpus = _norm(run.get("corpus"))
    if corpus in ("synthetic", "") or "synth" in corpus:
        out.append(f"corpus: synthetic stand-in vs {paper['corpus']}")
    elif corpus != _norm(paper["corpus"]).replace("-", "_"):
        out.append(f"corpus: {run.get('corpus')} vs {paper['corpus']}")
    for col, name in (("protocol", "protocol"), ("label_scheme", "label scheme"), ("text_source", "text source")):
        ours, theirs = _norm(run.get(col)), _norm(paper[col])
        if col == "text_source" and not theirs:
            continue  # the paper row reads no text: our text source cannot differ from it
        if ours != theirs:
            out.append(f"{name}: {run.get(col) if ours else '?'} vs {paper[col] or '?'}")
    config = _config(run)
    text_diff = text_encoder_difference(str(paper.get("text_encoder") or ""), config.get("features", {}).get("text"))
    if text_diff:
        out.append(text_diff)
    setup = PAPER_SETUP.get(str(paper["paper"]), {})
    if _norm(paper["text_source"]) == "asr" and _norm(run.get("text_source")) == "asr":
        out.append(f"ASR: {config.get('asr_engine', 'pocketsphinx')} vs {setup.get('asr') or '?'}")
    recipe = _norm(run.get(STORED_NAMES["recipe"]))
    if recipe and recipe != "paper":
        out.append(f"training recipe: {run.get(STORED_NAMES['recipe'])} (CPU-sized) vs the paper's")
    if run.get("model") and recipe:
        out += recipe_overrides(config, str(run["model"]), str(run.get("variant") or ""), recipe)
    seeds, n_seeds = setup.get("seeds"), run.get("n_seeds")
    if seeds and n_seeds is not None and not pd.isna(n_seeds) and int(n_seeds) != int(seeds):
        out.append(f"seeds: {int(n_seeds)} vs {seeds}")
    return out


def _dedupe(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per number: a paper printing the same result in two tables (AMH-7 is Table 1's
    AMH) is listed once, under its first table."""
    key = ["paper", "model", "variant", "text_source", "corpus", "wa", "ua", "f1", "av_auc"]
    return rows[~rows[key].astype(str).duplicated()]


def paper_rows(papers: pd.DataFrame, model: str, variant: str) -> pd.DataFrame:
    """The paper rows a run of ``model`` / ``variant`` is compared with: the same model and
    the same variant, nothing else (``""`` is the default of a model without a default variant)."""
    sel = papers[(papers["model"] == model) & (papers["variant"].fillna("") == (variant or ""))]
    return _dedupe(sel)


def _run_stats(res: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Aggregated run rows with the first run's config attached; ``unit`` is "run" (every fold
    x seed one value) or "seed" (folds averaged per seed first, as Pepino et al. spread)."""
    agg = aggregate(res, metrics=("wa", "ua", "weighted_f1", "av_auc"), unit=unit)  # type: ignore[arg-type]
    first = res.drop_duplicates("config_hash").set_index("config_hash")
    for col in ("config_json", STORED_NAMES["recipe"]):
        if col in first.columns:
            agg[col] = agg["config_hash"].map(first[col])
    if "variant" not in agg.columns:
        agg["variant"] = ""
    return agg


def comparison_table(
    results: pd.DataFrame,
    papers: pd.DataFrame | None = None,
    models: Sequence[str] | None = None,
    spread: str = "std",
) -> pd.DataFrame:
    """Each run configuration beside the paper rows of the same model AND variant.

    ``results``: the results table (one row per run). For each configuration (model, variant,
    config hash, corpus, protocol, label scheme, text source) one ``source="run"`` row with the
    mean and std over runs (every fold x seed one value, as AMH and MCSAN spread) or, with
    ``spread="iqr"``, the median and IQR over seeds of each seed's mean over folds (as Pepino
    et al. spread, Table 1) of WA, UA, weighted-F1 and AvAUC, followed by each paper row with the same model and variant (a number a paper prints
    twice is listed once), with a ``differs`` column listing every remaining difference
    (:func:`differences`; empty = the same setting). Models no paper reports keep their run row.
    """
    if spread not in ("std", "iqr"):
        raise ValueError(f"spread must be 'std' or 'iqr', got {spread!r}")
    papers = paper_table() if papers is None else papers
    res = results if models is None else results[results["model"].isin(models)]
    if res.empty:
        raise ValueError(f"no results for models {list(models or [])}")
    agg = _run_stats(res, "run" if spread == "std" else "seed")
    centre = "mean" if spread == "std" else "median"
    rows: list[dict] = []
    for _, run in agg.iterrows():
        cfg = str(run.get("config_hash", ""))[:8]

        def val(metric: str, stat: str) -> float:
            return float(run.get(f"{metric}_{stat}", np.nan))

        rows.append(
            dict(
                source="run", model=run["model"], paper_model=f"{run['model']}@{cfg}" if cfg else run["model"],
                variant=run.get("variant", "") or "", corpus=run.get("corpus", ""), protocol=run.get("protocol", ""),
                label_scheme=run.get("label_scheme", ""), text_source=run.get("text_source", ""),
                wa=val("wa", centre), ua=val("ua", centre), f1=val("weighted_f1", centre), av_auc=val("av_auc", centre),
                wa_spread=val("wa", spread), ua_spread=val("ua", spread), spread=spread,
                n_runs=int(run["n_runs"]), table="", differs="",
            )
        )  # fmt: skip
        for _, p in paper_rows(papers, run["model"], run.get("variant", "")).iterrows():
            rows.append(
                dict(
                    source=p["paper"], model=p["model"], paper_model=p["paper_model"], variant=p["variant"],
                    corpus=p["corpus"], protocol=p["protocol"], label_scheme=p["label_scheme"],
                    text_source=p["text_source"], wa=p["wa"], ua=p["ua"], f1=p["f1"], av_auc=p["av_auc"],
                    wa_spread=p["wa_spread"], ua_spread=p["ua_spread"], spread=p["spread"], n_runs=np.nan,
                    table=p["table"], differs="; ".join(differences(run, p)),
                )
            )  # fmt: skip
    return pd.DataFrame(rows)


def side_by_side(results: pd.DataFrame, papers: pd.DataFrame | None = None) -> pd.DataFrame:
    """The compact comparison: one row per run configuration, beside the closest paper row of
    the same model and variant (fewest differences), both numbers in the paper's own unit (mean
    ± std over runs, or Pepino et al.'s median ± IQR over seeds), and what still differs.

    Columns: ``model, variant, text_source, protocol, n_runs, run_ua, run_wa, run_spread,
    paper, table, paper_model, paper_ua, paper_wa, paper_spread, unit, differs``; the paper
    columns are empty for a configuration no paper reports.
    """
    papers = paper_table() if papers is None else papers
    if results.empty:
        raise ValueError("the results table is empty: nothing to compare")
    runs = _run_stats(results, "run")
    # one configuration is one group of the aggregate (a config hash can run under several protocols)
    keys = [k for k in GROUP_KEYS if k in runs.columns]
    per_seed = {tuple(str(r[k]) for k in keys): r for _, r in _run_stats(results, "seed").iterrows()}
    out = []
    for _, run in runs.iterrows():
        candidates = paper_rows(papers, run["model"], run.get("variant", ""))
        best, diffs = None, []
        for _, p in candidates.iterrows():
            d = differences(run, p)
            if best is None or len(d) < len(diffs):
                best, diffs = p, d
        unit = "seed" if best is not None and best["spread"] == "iqr" else "run"
        stats = per_seed[tuple(str(run[k]) for k in keys)] if unit == "seed" else run
        centre, spread = ("median", "iqr") if unit == "seed" else ("mean", "std")
        row = dict(model=run["model"], variant=run.get("variant", "") or "", text_source=run.get("text_source", ""),
                   protocol=run.get("protocol", ""), n_runs=int(run["n_runs"]),
                   run_ua=float(stats.get(f"ua_{centre}", np.nan)), run_wa=float(stats.get(f"wa_{centre}", np.nan)),
                   run_spread=float(stats.get(f"ua_{spread}", np.nan)),
                   unit=f"{centre} ± {spread.upper() if spread == 'iqr' else spread} over "
                        f"{'seeds' if unit == 'seed' else 'folds x seeds'}")
        if best is not None:
            row.update(paper=best["paper"], table=best["table"], paper_model=best["paper_model"],
                       paper_ua=best["ua"], paper_wa=best["wa"], paper_spread=best["ua_spread"],
                       differs="; ".join(diffs))
        out.append(row)
    cols = ["model", "variant", "text_source", "protocol", "n_runs", "run_ua", "run_wa", "run_spread", "unit",
            "paper", "table", "paper_model", "paper_ua", "paper_wa", "paper_spread", "differs"]
    return pd.DataFrame(out).reindex(columns=cols)


def _plus_minus(centre: float, spread: float, digits: int) -> str:
    if centre is None or not np.isfinite(centre):
        return ""
    return f"{centre:.{digits}f} ± {spread:.{digits}f}" if spread is not None and np.isfinite(spread) \
        else f"{centre:.{digits}f}"


def compact_comparison(side: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """:func:`side_by_side` trimmed to what a reader compares: the system (``model[variant]``),
    protocol and text, UA of the run and of the paper as ``centre ± spread`` strings in the
    paper's unit, WA of both, where the paper number comes from (``paper, table``), the unit,
    and what still differs. The numbers are side_by_side's, only formatted (``digits``)."""
    def num(row: pd.Series, col: str) -> float:
        v = row.get(col)
        return float(v) if v is not None and pd.notna(v) else float("nan")

    rows = []
    for _, r in side.iterrows():
        variant = r.get("variant") or ""
        paper = r.get("paper")
        rows.append({
            "system": f"{r['model']}[{variant}]" if variant else r["model"],
            "protocol": r.get("protocol", ""),
            "text": r.get("text_source", "") or "",
            "UA run": _plus_minus(num(r, "run_ua"), num(r, "run_spread"), digits),
            "UA paper": _plus_minus(num(r, "paper_ua"), num(r, "paper_spread"), digits),
            "WA run": _plus_minus(num(r, "run_wa"), float("nan"), digits),
            "WA paper": _plus_minus(num(r, "paper_wa"), float("nan"), digits),
            "paper": f"{paper}, {r.get('table')}" if isinstance(paper, str) and paper else "",
            "unit": r.get("unit", ""),
            "differs": r.get("differs") if isinstance(r.get("differs"), str) else "",
        })
    return pd.DataFrame(rows, columns=["system", "protocol", "text", "UA run", "UA paper", "WA run", "WA paper",
                                       "paper", "unit", "differs"])
