"""Aggregate results over folds and seeds; bootstrap intervals; paired tests between models.

Two tables come in (see the results contract of the training runner):

- the **results table**, one row per run ``(model, config_hash, corpus, protocol, fold,
  seed)`` with its test metrics (``wa``, ``ua``, ``macro_f1``, ``weighted_f1``, ``av_auc``);
- the **predictions table**, one row per ``(run_id, utt_id)`` with ``label`` and ``pred``.

Which tool answers which question:

- :func:`aggregate`: spread of a configuration over runs, as papers report it: mean ± std
  (AMH, MCSAN: over 10 folds) and median ± IQR (Pepino et al.: over 10 seeds).
- :func:`merged_fold_metrics`: one value per seed from the merged test scores of all folds
  (Pepino et al.'s Fig. 2); ``aggregate(merged_fold_metrics(results, predictions),
  unit="seed")`` then gives the median ± IQR over seeds.
- :func:`bootstrap_ci`: uncertainty of one configuration's metric due to the finite test set:
  percentile interval from resampling test **utterances** (all of an utterance's predictions
  over seeds move together, so repeated seeds do not shrink the interval artificially).
- :func:`paired_test`: is model A better than model B *across runs*? Paired over the same
  ``(fold, seed)`` pairs, with the paired t-test (assumes roughly normal differences) and the
  Wilcoxon signed-rank test (no normality; needs about 6+ pairs to reach p < 0.05).
- :func:`paired_bootstrap`: is A better than B *on these test utterances*? Utterance-level
  paired bootstrap interval of the metric difference and a paired permutation (label-swap)
  test; useful when there are too few runs for the run-level tests.

>>> import pandas as pd
>>> r = pd.DataFrame({"model": ["m"] * 4, "config_hash": ["h"] * 4, "protocol": ["p"] * 4,
...                   "fold": [0, 1, 0, 1], "seed": [0, 0, 1, 1], "ua": [0.5, 0.6, 0.7, 0.8]})
>>> a = aggregate(r, metrics=["ua"])
>>> round(float(a.loc[0, "ua_mean"]), 3), round(float(a.loc[0, "ua_median"]), 3), int(a.loc[0, "n_runs"])
(0.65, 0.65, 4)
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from workbench.training.metrics import confusions, metrics_from_confusion

METRICS: tuple[str, ...] = ("wa", "ua", "macro_f1", "weighted_f1", "av_auc")
# What identifies one configuration; columns absent from a table are skipped.
GROUP_KEYS: tuple[str, ...] = ("model", "variant", "config_hash", "corpus", "protocol", "label_scheme", "text_source")
# Metrics computable from a confusion matrix (what the fast bootstrap supports).
CONFUSION_METRICS: tuple[str, ...] = ("wa", "ua", "macro_f1", "weighted_f1")


def _keys(df: pd.DataFrame, by: Sequence[str] | None) -> list[str]:
    keys = [k for k in (GROUP_KEYS if by is None else by) if k in df.columns]
    if not keys:
        raise ValueError(f"none of the grouping columns {list(by or GROUP_KEYS)} is in the table")
    return keys


def aggregate(
    results: pd.DataFrame,
    by: Sequence[str] | None = None,
    metrics: Sequence[str] = METRICS,
    unit: Literal["run", "seed"] = "run",
) -> pd.DataFrame:
    """One row per configuration: ``n_runs``, ``n_folds``, ``n_seeds`` and, for each metric,
    ``{m}_mean``, ``{m}_std`` (sample std, ddof=1; NaN with one value), ``{m}_median``,
    ``{m}_q25``, ``{m}_q75``, ``{m}_iqr`` (= q75 - q25, linear interpolation).

    ``by``: grouping columns (default :data:`GROUP_KEYS` present in the table).
    ``unit="run"`` treats every (fold, seed) row as one value (the spread over folds, as AMH
    and MCSAN report); ``unit="seed"`` first averages the folds of each seed, then spreads over
    seeds (seed-to-seed variation of a cross-validated number, as Pepino et al. report).
    Metrics missing from the table are skipped; NaN values (e.g. AUC without probabilities)
    are ignored.
    """
    if results.empty:
        raise ValueError("the results table is empty: nothing to aggregate")
    if unit not in ("run", "seed"):
        raise ValueError(f"unit must be 'run' or 'seed', got {unit!r}")
    keys = _keys(results, by)
    mets = [m for m in metrics if m in results.columns]
    if not mets:
        raise ValueError(f"none of the metrics {list(metrics)} is a column of the results table")
    df = results
    counts = df.groupby(keys, sort=True, dropna=False).agg(
        n_runs=(keys[0], "size"),
        **({"n_folds": ("fold", "nunique")} if "fold" in df.columns else {}),
        **({"n_seeds": ("seed", "nunique")} if "seed" in df.columns else {}),
    )
    if unit == "seed":
        if "seed" not in df.columns:
            raise ValueError("unit='seed' needs a 'seed' column")
        df = df.groupby([*keys, "seed"], sort=True, dropna=False)[mets].mean().reset_index()
    g = df.groupby(keys, sort=True, dropna=False)[mets]
    q25, q75 = g.quantile(0.25), g.quantile(0.75)
    parts = {
        "mean": g.mean(),
        "std": g.std(ddof=1),
        "median": g.median(),
        "q25": q25,
        "q75": q75,
        "iqr": q75 - q25,
    }
    cols = {f"{m}_{stat}": parts[stat][m] for m in mets for stat in parts}
    out = counts.join(pd.DataFrame(cols))
    return out.reset_index()


def merged_fold_metrics(results: pd.DataFrame, predictions: pd.DataFrame,
                        by: Sequence[str] | None = None) -> pd.DataFrame:
    """Metrics of each configuration and seed on the merged test scores of all its folds.

    Pepino et al. (sec. 4.1, Fig. 2): "Results are computed on the merged test scores for all
    folds": the test predictions of every fold of one seed are concatenated and scored once
    (AvAUC ranks all utterances together, so this is not the mean of the per-fold AUCs). One row
    per configuration (``by``, default :data:`GROUP_KEYS` present in ``results``) and seed, with
    ``n_folds``, ``n_utterances`` and ``wa``, ``ua``, ``macro_f1``, ``weighted_f1``, ``av_auc``;
    a table :func:`aggregate` spreads over seeds like any results table.

    ``results`` names each run's configuration, seed and ``classes``; ``predictions`` holds the
    runs' test utterances (``run_id``, ``label``, ``probs`` in the classes' order).
    """
    from workbench.training.metrics import classification_metrics

    if results.empty:
        raise ValueError("the results table is empty: nothing to score")
    for col, table in (("run_id", results), ("run_id", predictions), ("probs", predictions), ("label", predictions)):
        if col not in table.columns:
            raise ValueError(f"merged_fold_metrics needs a {col!r} column in the {'predictions' if table is predictions else 'results'} table")
    keys = _keys(results, by)
    runs = results[[*keys, "seed", "fold", "run_id", "classes"]].drop_duplicates("run_id")
    preds = predictions[predictions["run_id"].isin(set(runs["run_id"]))]
    missing = sorted(set(runs["run_id"]) - set(preds["run_id"]))
    if missing:
        raise ValueError(f"{len(missing)} run(s) have no stored predictions, e.g. {missing[:3]}; "
                         "merged scores need every fold's test predictions")
    preds = preds[["run_id", "label", "probs"]].merge(runs, on="run_id")
    rows = []
    for group, part in preds.groupby([*keys, "seed"], sort=True, dropna=False):
        classes = classes_of(part)
        probs = np.stack([np.asarray(p, dtype=float) for p in part["probs"]])
        m = classification_metrics(part["label"].tolist(), [classes[i] for i in probs.argmax(1)], classes, probs)
        rows.append({**dict(zip([*keys, "seed"], group)), "n_folds": part["fold"].nunique(),
                     "n_utterances": len(part), **{k: m.get(k, float("nan")) for k in METRICS}})
    return pd.DataFrame(rows)


def latest_configurations(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of the newest configuration of each (model, variant, corpus, protocol, text source).

    A results table keeps every configuration ever trained, so after a recipe or a model
    option changes and a model is trained again, it holds two ``config_hash`` values for that
    model; "newest" is the configuration whose latest run was ``created`` last. Older rows are
    only left out of the returned frame (name one as ``model@hash`` to compare it).

    >>> t = pd.DataFrame({"model": ["m", "m", "n"], "corpus": "c", "protocol": "p",
    ...                   "config_hash": ["old", "new", "x"], "created": ["2026-01-01", "2026-02-01", "2026-01-01"]})
    >>> latest_configurations(t)["config_hash"].tolist()
    ['new', 'x']
    """
    if results.empty:
        return results
    # Each variant and text source is its own experiment: a newer ablation must not hide another.
    keys = [k for k in ("model", "variant", "corpus", "protocol", "text_source") if k in results.columns]
    last = results.groupby(keys + ["config_hash"], sort=False)["created"].max().reset_index()
    newest = last.loc[last.groupby(keys, sort=False)["created"].idxmax(), keys + ["config_hash"]]
    keep = results.merge(newest.assign(_keep=True), on=keys + ["config_hash"], how="left")["_keep"].fillna(False)
    return results[keep.to_numpy(dtype=bool)]


def classes_of(results: pd.DataFrame) -> list[str]:
    """The class list of a results table (its ``classes`` column holds a JSON list per run);
    a table mixing class lists is an error, since their metrics are not comparable."""
    import json

    if "classes" not in results.columns or results.empty:
        raise ValueError("the results table has no 'classes' column (or no rows)")
    found = {tuple(json.loads(c)) if isinstance(c, str) else tuple(c) for c in results["classes"]}
    if len(found) > 1:
        raise ValueError(f"the results table mixes class lists {sorted(found)}: filter it to one label scheme")
    return list(found.pop())


def format_spread(agg: pd.DataFrame, metric: str, kind: Literal["std", "iqr"] = "std", digits: int = 3) -> pd.Series:
    """Strings like ``0.612 ± 0.012`` (mean ± std) or, with ``kind="iqr"``, median ± IQR."""
    centre, spread = (f"{metric}_mean", f"{metric}_std") if kind == "std" else (f"{metric}_median", f"{metric}_iqr")
    return pd.Series(
        [f"{c:.{digits}f} ± {s:.{digits}f}" if np.isfinite(s) else f"{c:.{digits}f}" for c, s in zip(agg[centre], agg[spread])],
        index=agg.index,
        name=metric,
    )


# ---------------------------------------------------------------------------------------------
# Utterance-level tools (predictions table)


def _encode(values: pd.Series, classes: Sequence[str], what: str) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    codes = values.map(index)
    if codes.isna().any():
        bad = values[codes.isna()].iloc[0]
        raise ValueError(f"{what} {bad!r} is not one of the classes {list(classes)}")
    return codes.to_numpy(dtype=int)


def _check_metric(metric: str) -> None:
    if metric not in CONFUSION_METRICS:
        raise ValueError(f"metric must be one of {CONFUSION_METRICS} for utterance-level resampling, got {metric!r}")


def _clusters(utt_ids: pd.Series) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(utt_ids)
    return codes, len(uniques)


def bootstrap_ci(
    predictions: pd.DataFrame,
    classes: Sequence[str],
    metric: str = "ua",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Percentile bootstrap interval of ``metric`` over the test utterances of one configuration.

    ``predictions`` holds that configuration's rows (``utt_id``, ``label``, ``pred``), pooled
    over folds and seeds: the estimate is the metric of all rows together. Each bootstrap
    replicate draws utterance ids with replacement and keeps all rows of a drawn id (so an
    utterance predicted under 10 seeds is one unit, not 10). Returns ``estimate``, ``low``,
    ``high``, ``n_utterances``, ``n_boot``, ``level``. Deterministic for a given ``seed``.
    """
    _check_metric(metric)
    if predictions.empty:
        raise ValueError("no predictions to bootstrap")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    k = len(classes)
    t = _encode(predictions["label"], classes, "label")
    p = _encode(predictions["pred"], classes, "prediction")
    cluster, n = _clusters(predictions["utt_id"])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    # weight of a row = how often its utterance was drawn
    weights = np.stack([np.bincount(d, minlength=n)[cluster] for d in draws]).astype(float)
    boot = metrics_from_confusion(confusions(t, p, k, weights))[metric]
    est = float(metrics_from_confusion(confusions(t, p, k, np.ones((1, len(t)))))[metric][0])
    alpha = (1 - level) / 2
    low, high = np.nanquantile(boot, [alpha, 1 - alpha])
    return dict(estimate=est, low=float(low), high=float(high), n_utterances=float(n), n_boot=float(n_boot), level=level)


def pooled_confusion(predictions: pd.DataFrame, classes: Sequence[str], normalise: bool = False) -> pd.DataFrame:
    """Confusion matrix of all rows of ``predictions`` (summed over folds and seeds)."""
    from workbench.training.metrics import confusion

    return confusion(predictions["label"].tolist(), predictions["pred"].tolist(), classes, normalise=normalise)


def per_class_recall(predictions: pd.DataFrame, classes: Sequence[str], by: str = "model") -> pd.DataFrame:
    """Recall of each class (columns, in ``classes`` order) for each value of ``by`` (rows),
    over all rows (folds and seeds pooled). Classes absent from the labels give NaN."""
    rows = {}
    for key, part in predictions.groupby(by, sort=True):
        conf = pooled_confusion(part, classes).to_numpy(dtype=float)
        support = conf.sum(axis=1)
        rows[key] = np.where(support > 0, np.diag(conf) / np.maximum(support, 1), np.nan)
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(classes)).rename_axis(by)


# ---------------------------------------------------------------------------------------------
# Paired comparisons


def _select(df: pd.DataFrame, model: str) -> pd.DataFrame:
    """Rows of ``model``: a model name, or ``name@hashprefix`` to pick one configuration."""
    name, _, prefix = model.partition("@")
    part = df[df["model"] == name]
    if prefix:
        part = part[part["config_hash"].astype(str).str.startswith(prefix)]
    if part.empty:
        raise ValueError(f"model {model!r} has no rows (models: {sorted(df['model'].unique())})")
    for col in ("config_hash", "corpus", "protocol"):
        if col in part.columns and part[col].nunique() > 1:
            raise ValueError(
                f"model {model!r} has several values of {col!r} {sorted(part[col].astype(str).unique())}: "
                "filter the table first (one protocol / corpus) or name a configuration as 'model@hash'"
            )
    return part


def paired_test(results: pd.DataFrame, a: str, b: str, metric: str = "ua") -> dict[str, float]:
    """Run-level paired comparison of models ``a`` and ``b`` on the same ``(fold, seed)`` pairs.

    ``a``/``b`` name a model (or ``model@hashprefix``). Returns ``n_pairs``, ``mean_a``,
    ``mean_b``, ``mean_diff`` (a - b), ``t``, ``p_t`` (two-sided paired t-test,
    :func:`scipy.stats.ttest_rel`), ``w``, ``p_wilcoxon`` (two-sided Wilcoxon signed-rank,
    :func:`scipy.stats.wilcoxon`, NaN when all differences are 0 or fewer than 2 pairs).
    Pairs present for only one model are dropped; none in common is an error.
    """
    ra, rb = _select(results, a), _select(results, b)
    on = ["fold", "seed"]
    for name, part in ((a, ra), (b, rb)):
        if part.duplicated(on).any():
            raise ValueError(f"model {name!r} has several rows for one (fold, seed): filter to one protocol / corpus")
    merged = ra[on + [metric]].merge(rb[on + [metric]], on=on, suffixes=("_a", "_b")).dropna()
    n = len(merged)
    if n == 0:
        raise ValueError(f"models {a!r} and {b!r} share no (fold, seed) pair: they were not run on the same folds")
    xa, xb = merged[f"{metric}_a"].to_numpy(float), merged[f"{metric}_b"].to_numpy(float)
    diff = xa - xb
    out = dict(n_pairs=float(n), mean_a=float(xa.mean()), mean_b=float(xb.mean()), mean_diff=float(diff.mean()))
    t = p_t = w = p_w = float("nan")
    constant = bool(np.allclose(diff, diff[0], rtol=0, atol=1e-12))
    if n >= 2 and not constant:
        t, p_t = (float(v) for v in stats.ttest_rel(xa, xb))
    elif n >= 2 and abs(diff[0]) > 1e-12:
        # constant non-zero difference: infinitely significant for the t-test
        t, p_t = float(np.sign(diff[0]) * np.inf), 0.0
    if n >= 2 and np.any(diff != 0):
        w, p_w = (float(v) for v in stats.wilcoxon(xa, xb))
    out.update(t=t, p_t=p_t, w=w, p_wilcoxon=p_w)
    return out


def _paired_predictions(predictions: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    on = [c for c in ("fold", "seed", "utt_id") if c in predictions.columns]
    pa, pb = _select(predictions, a), _select(predictions, b)
    merged = pa[on + ["label", "pred"]].merge(pb[on + ["label", "pred"]], on=on, suffixes=("_a", "_b"))
    if merged.empty:
        raise ValueError(f"models {a!r} and {b!r} share no test utterance on the same (fold, seed)")
    if (merged["label_a"] != merged["label_b"]).any():
        raise ValueError(f"models {a!r} and {b!r} disagree on the true label of some utterances")
    return merged


def paired_bootstrap(
    predictions: pd.DataFrame,
    a: str,
    b: str,
    classes: Sequence[str],
    metric: str = "ua",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Utterance-level comparison of ``a`` and ``b`` on the test utterances both predicted
    (matched on fold, seed and utterance).

    - Paired bootstrap: resample utterances (all their rows together) and recompute
      ``metric(a) - metric(b)``; ``low``/``high`` is the percentile interval of the difference.
    - Paired permutation test: under H0 the two models are exchangeable, so each row's two
      predictions are swapped with probability 1/2; ``p_perm`` = (1 + #|diff*| >= |diff|) /
      (1 + n_boot), two-sided.

    Returns ``n_rows``, ``metric_a``, ``metric_b``, ``diff``, ``low``, ``high``, ``p_perm``.
    """
    _check_metric(metric)
    m = _paired_predictions(predictions, a, b)
    k = len(classes)
    t = _encode(m["label_a"], classes, "label")
    pa = _encode(m["pred_a"], classes, "prediction")
    pb = _encode(m["pred_b"], classes, "prediction")
    ones = np.ones((1, len(t)))
    ma = float(metrics_from_confusion(confusions(t, pa, k, ones))[metric][0])
    mb = float(metrics_from_confusion(confusions(t, pb, k, ones))[metric][0])
    diff = ma - mb
    rng = np.random.default_rng(seed)
    cluster, n = _clusters(m["utt_id"]) if "utt_id" in m.columns else (np.arange(len(m)), len(m))
    draws = rng.integers(0, n, size=(n_boot, n))
    weights = np.stack([np.bincount(d, minlength=n)[cluster] for d in draws]).astype(float)
    boot = (
        metrics_from_confusion(confusions(t, pa, k, weights))[metric]
        - metrics_from_confusion(confusions(t, pb, k, weights))[metric]
    )
    alpha = (1 - level) / 2
    low, high = np.nanquantile(boot, [alpha, 1 - alpha])
    # permutation: swap the two models' predictions on random rows
    swap = rng.random((n_boot, len(t))) < 0.5
    perm = np.empty(n_boot)
    for i in range(n_boot):
        qa, qb = np.where(swap[i], pb, pa), np.where(swap[i], pa, pb)
        perm[i] = (
            metrics_from_confusion(confusions(t, qa, k, ones))[metric][0]
            - metrics_from_confusion(confusions(t, qb, k, ones))[metric][0]
        )
    p_perm = (1 + np.sum(np.abs(perm) >= abs(diff) - 1e-12)) / (1 + n_boot)
    return dict(
        n_rows=float(len(t)), metric_a=ma, metric_b=mb, diff=diff, low=float(low), high=float(high), p_perm=float(p_perm)
    )


def model_table(
    results: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    classes: Sequence[str] | None = None,
    metric: str = "ua",
    reference: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Model-vs-model table for one protocol and corpus: a row per model with ``n_runs``, mean,
    std, median, IQR of ``metric`` over runs, a bootstrap interval over utterances
    (``ci_low``/``ci_high``, when ``predictions`` and ``classes`` are given), and the paired
    tests against ``reference`` (default: the model with the best mean): ``diff``, ``p_t``,
    ``p_wilcoxon`` and, from predictions, ``p_perm``.

    Runs of different protocols or corpora are not comparable, so ``results`` must hold one of
    each: filter a results table first, e.g. ``model_table(t[t["protocol"] == "loso_session"], ...)``
    (``aggregate(t)`` summarises every protocol side by side).
    """
    for col in ("protocol", "corpus"):
        if col in results.columns and results[col].nunique() > 1:
            values = sorted(results[col].unique())
            raise ValueError(f"model_table compares one {col} at a time; got {values}; filter the table first, e.g. "
                             f"model_table(results[results[{col!r}] == {values[0]!r}], ...)")
    agg = aggregate(results, by=["model"], metrics=[metric]).set_index("model")
    table = pd.DataFrame(
        {
            "n_runs": agg["n_runs"],
            "mean": agg[f"{metric}_mean"],
            "std": agg[f"{metric}_std"],
            "median": agg[f"{metric}_median"],
            "iqr": agg[f"{metric}_iqr"],
        }
    )
    if predictions is not None and "run_id" in predictions.columns and "run_id" in results.columns:
        # only the utterances of the runs being compared (the table may hold other protocols)
        predictions = predictions[predictions["run_id"].isin(set(results["run_id"]))]
    use_preds = predictions is not None and classes is not None and not predictions.empty
    if use_preds:
        cis = {mdl: bootstrap_ci(_select(predictions, mdl), classes, metric, n_boot=n_boot, seed=seed) for mdl in table.index}
        table["ci_low"] = [cis[mdl]["low"] for mdl in table.index]
        table["ci_high"] = [cis[mdl]["high"] for mdl in table.index]
    ref = reference or str(table["mean"].idxmax())
    if ref not in table.index:
        raise ValueError(f"reference model {ref!r} is not in the results ({list(table.index)})")
    table["reference"] = ref
    for col in ("diff", "p_t", "p_wilcoxon") + (("p_perm",) if use_preds else ()):
        table[col] = np.nan
    for mdl in table.index:
        if mdl == ref:
            continue
        pt = paired_test(results, mdl, ref, metric)
        table.loc[mdl, ["diff", "p_t", "p_wilcoxon"]] = [pt["mean_diff"], pt["p_t"], pt["p_wilcoxon"]]
        if use_preds:
            table.loc[mdl, "p_perm"] = paired_bootstrap(predictions, mdl, ref, classes, metric, n_boot=n_boot, seed=seed)["p_perm"]
    return table.sort_values("mean", ascending=False)


def name_systems(results: pd.DataFrame, predictions: pd.DataFrame | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Copies of the results (and predictions) where a model present in several variants is
    named ``model[variant]``, so per-model views (confusion matrices, the model-vs-model table)
    treat each variant as its own system instead of mixing them; other models keep their name."""
    if "variant" not in results.columns or results.empty:
        return results, predictions
    variants = results.fillna({"variant": ""}).groupby("model")["variant"].nunique()
    several = set(variants[variants > 1].index)
    if not several:
        return results, predictions
    out = results.copy()
    mask = out["model"].isin(several)
    out.loc[mask, "model"] = out.loc[mask, "model"] + "[" + out.loc[mask, "variant"].fillna("") + "]"
    if predictions is not None and "run_id" in predictions.columns:
        names = dict(zip(out["run_id"], out["model"]))
        predictions = predictions.assign(model=predictions["run_id"].map(names).fillna(predictions["model"]))
    return out, predictions
