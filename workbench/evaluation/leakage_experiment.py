"""The fold-leakage experiment of Pepino et al. 2020 (section 4.1, Fig. 2).

Train an audio-only and a text-only model under random folds, leave-one-session-out folds and
session+script folds (the test session's held-out script removed from training). Under the
first two the text model has seen the test utterances' scripted lines in training, so its
score is optimistic; the audio model shows how much of any drop is only the smaller training
set of ``session_script``.

As the paper ran it: Pepino's own audio and text models (``pepino_audio``, ``pepino_text``) in
two sizes (variants ``small`` and ``large``: half and twice the nodes of Figure 1), 5 folds
under each protocol, and AvAUC "computed on the merged test scores for all folds": per seed,
the test predictions of all folds are scored together
(:func:`~workbench.evaluation.aggregate.merged_fold_metrics`), then seeds are summarised
(median and IQR, as the paper reports its results).
:func:`workbench.experiments.leakage.run_leakage_experiment` trains the runs (reusing finished
ones); :func:`leakage_long` and :func:`leakage_table` here summarise any
table with ``model``, ``protocol`` and a metric column: the per-run results table (metric
per fold) or the merged per-seed table.

>>> import pandas as pd
>>> rows = [dict(model=m, protocol=p, fold=0, seed=0, ua=u) for m, p, u in [
...     ("unimodal_text", "random_kfold", 0.9), ("unimodal_text", "loso_session", 0.8),
...     ("unimodal_text", "session_script", 0.5), ("unimodal_audio", "random_kfold", 0.6),
...     ("unimodal_audio", "loso_session", 0.55), ("unimodal_audio", "session_script", 0.54)]]
>>> t = leakage_table(pd.DataFrame(rows))
>>> t[["random_kfold", "loso_session", "session_script"]].round(2).to_dict("index")["text"]
{'random_kfold': 0.9, 'loso_session': 0.8, 'session_script': 0.5}
>>> round(float(t.loc["text", "drop_loso_session"]), 2)
0.3
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import pandas as pd

from workbench.evaluation.aggregate import merged_fold_metrics

PROTOCOLS: tuple[str, ...] = ("random_kfold", "loso_session", "session_script")
#: Fig. 2's systems: Pepino et al.'s own single-branch models, in the two sizes of section 4.1.
FIG2_MODELS: tuple[str, ...] = ("pepino_audio", "pepino_text")
FIG2_SIZES: tuple[str, ...] = ("small", "large")
PROTOCOL_LABELS: dict[str, str] = {
    "random_kfold": "random (RAND)",
    "loso_session": "session (SP)",
    "session_script": "session + script (SP&SC)",
}


def modality_of(model: str) -> str:
    """``audio`` / ``text`` from a unimodal model name (``*_audio``, ``*_text``), else ValueError."""
    for modality in ("audio", "text"):
        if model.endswith(f"_{modality}"):
            return modality
    raise ValueError(
        f"cannot tell the modality of model {model!r} from its name; pass modalities={{{model!r}: 'audio'|'text'}}"
    )


def _with_modality(results: pd.DataFrame, modalities: Mapping[str, str] | None) -> pd.DataFrame:
    df = results.copy()
    mapping = dict(modalities or {})
    df["modality"] = [mapping.get(m) or modality_of(m) for m in df["model"]]
    return df


def select_runs(
    results: pd.DataFrame,
    models: Sequence[str] = FIG2_MODELS,
    variants: Sequence[str] | None = FIG2_SIZES,
    protocols: Sequence[str] = PROTOCOLS,
) -> pd.DataFrame:
    """The rows of ``results`` that belong to the experiment (``variants`` None: any)."""
    keep = results["model"].isin(models) & results["protocol"].isin(protocols)
    if variants is not None and "variant" in results.columns:
        keep &= results["variant"].fillna("").isin(variants)
    return results[keep]


def _group_keys(df: pd.DataFrame) -> list[str]:
    return ["modality", "model", *(["variant"] if "variant" in df.columns else []), "protocol"]


def leakage_long(
    results: pd.DataFrame,
    metric: str = "ua",
    protocols: Sequence[str] = PROTOCOLS,
    modalities: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Long table ``modality, model[, variant], system, protocol, n_runs, mean, std, median,
    q25, q75, iqr`` of ``metric`` over the rows of ``results`` (runs of a results table, or
    seeds of :func:`~workbench.evaluation.aggregate.merged_fold_metrics`). ``system`` names a modality and its variant
    (``"text (large)"``), the unit of Fig. 2's bars."""
    if metric not in results.columns:
        raise ValueError(f"metric {metric!r} is not a column of the results table")
    df = results[results["protocol"].isin(protocols)]
    if df.empty:
        raise ValueError(f"no results under protocols {list(protocols)} (found {sorted(results['protocol'].unique())})")
    df = _with_modality(df, modalities)
    if "variant" in df.columns:
        df = df.assign(variant=df["variant"].fillna(""))
    keys = _group_keys(df)
    g = df.groupby(keys, sort=False)[metric]
    q25, q75 = g.quantile(0.25), g.quantile(0.75)
    out = pd.DataFrame({"n_runs": g.size(), "mean": g.mean(), "std": g.std(ddof=1), "median": g.median(),
                        "q25": q25, "q75": q75, "iqr": q75 - q25}).reset_index()
    variant = out["variant"] if "variant" in out.columns else pd.Series("", index=out.index)
    out.insert(len(keys) - 1, "system", [f"{m} ({v})" if v else m for m, v in zip(out["modality"], variant)])
    order = {p: i for i, p in enumerate(protocols)}
    out = out.sort_values(keys, key=lambda col: col.map(order) if col.name == "protocol" else col)
    return out.reset_index(drop=True)


def leakage_table(
    results: pd.DataFrame,
    metric: str = "ua",
    protocols: Sequence[str] = PROTOCOLS,
    modalities: Mapping[str, str] | None = None,
    reference: str = "session_script",
    by: Sequence[str] = ("modality",),
    centre: Literal["mean", "median"] = "mean",
) -> pd.DataFrame:
    """Rows ``by`` (``modality``, or ``("modality", "variant")`` for Fig. 2's sizes) x protocol
    (columns): the ``centre`` of ``metric`` over the rows of ``results``, plus
    ``drop_<protocol>`` columns: how much each protocol's number exceeds the ``reference``
    protocol's (positive = the protocol overstates performance). Several models of one row are
    averaged; use :func:`leakage_long` to see them apart.
    """
    if centre not in ("mean", "median"):
        raise ValueError(f"centre must be 'mean' or 'median', got {centre!r}")
    long = leakage_long(results, metric, protocols, modalities)
    missing = [k for k in by if k not in long.columns]
    if missing:
        raise ValueError(f"cannot group the leakage table by {missing}: the table has no such column")
    wide = long.groupby([*by, "protocol"])[centre].mean().unstack("protocol")
    wide = wide.reindex(columns=[p for p in protocols if p in wide.columns])
    wide.columns.name = None
    if reference in wide.columns:
        for p in wide.columns:
            if p != reference and not p.startswith("drop_"):
                wide[f"drop_{p}"] = wide[p] - wide[reference]
    return wide


__all__ = ["FIG2_MODELS", "FIG2_SIZES", "PROTOCOLS", "PROTOCOL_LABELS", "leakage_long", "leakage_table",
           "merged_fold_metrics", "modality_of", "select_runs"]
