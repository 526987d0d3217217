"""The fold-leakage experiment of Pepino et al. 2020 (section 4.1, Fig. 2).

Train an audio-only and a text-only model under random folds, leave-one-session-out folds and
session+script folds (the test session's held-out script removed from training). Under the
first two the text model has seen the test utterances' scripted lines in training, so its
score is optimistic; the audio model shows how much of any drop is only the smaller training
set of ``session_script``.

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

from typing import Mapping, Sequence

import pandas as pd

PROTOCOLS: tuple[str, ...] = ("random_kfold", "loso_session", "session_script")
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


def leakage_long(
    results: pd.DataFrame,
    metric: str = "ua",
    protocols: Sequence[str] = PROTOCOLS,
    modalities: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Long table ``modality, model, protocol, n_runs, mean, std`` of ``metric`` over runs."""
    if metric not in results.columns:
        raise ValueError(f"metric {metric!r} is not a column of the results table")
    df = results[results["protocol"].isin(protocols)]
    if df.empty:
        raise ValueError(f"no results under protocols {list(protocols)} (found {sorted(results['protocol'].unique())})")
    df = _with_modality(df, modalities)
    g = df.groupby(["modality", "model", "protocol"], sort=False)[metric]
    out = pd.DataFrame({"n_runs": g.size(), "mean": g.mean(), "std": g.std(ddof=1)}).reset_index()
    order = {p: i for i, p in enumerate(protocols)}
    out = out.sort_values(
        ["modality", "model", "protocol"], key=lambda col: col.map(order) if col.name == "protocol" else col
    )
    return out.reset_index(drop=True)


def leakage_table(
    results: pd.DataFrame,
    metric: str = "ua",
    protocols: Sequence[str] = PROTOCOLS,
    modalities: Mapping[str, str] | None = None,
    reference: str = "session_script",
) -> pd.DataFrame:
    """Modality (rows) x protocol (columns) mean ``metric``, plus ``drop_<protocol>`` columns:
    how much each protocol's number exceeds the ``reference`` protocol's (positive = the
    protocol overstates performance). Several models of one modality are averaged; use
    :func:`leakage_long` to see them apart.
    """
    long = leakage_long(results, metric, protocols, modalities)
    wide = long.groupby(["modality", "protocol"])["mean"].mean().unstack("protocol")
    wide = wide.reindex(columns=[p for p in protocols if p in wide.columns])
    wide.columns.name = None
    if reference in wide.columns:
        for p in wide.columns:
            if p != reference and not p.startswith("drop_"):
                wide[f"drop_{p}"] = wide[p] - wide[reference]
    return wide
