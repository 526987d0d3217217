"""The reproduction ledger: plan the runs a set of claims needs, run what is missing, and
give every claim its verdict (:mod:`workbench.evaluation.claims`, scored by
:mod:`workbench.evaluation.verdicts`).

:func:`plan` turns the claims into the union of their conditions, one
:class:`~workbench.training.spec.RunSpec` each: a condition that several claims share is
trained once. :func:`reproduce` reuses or trains every planned spec under one runs root
(:func:`~workbench.experiments.runs.ensure_runs`: a (fold, seed) run already in the results
table is reused, its run id holding the configuration hash), then evaluates each claim on
the test predictions. A condition that cannot run (a model input the corpus lacks, a protocol
it cannot support) is recorded with its error, and every claim that needs it gets the verdict
*not run* with that reason; the other claims still run.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.evaluation.claims import CLAIMS, Claim, ClaimError, Condition, get_claim
from workbench.evaluation.verdicts import evaluate_claim, verdict
from workbench.experiments.runs import ensure_runs
from workbench.io import atomic_write
from workbench.training.results import read_predictions, read_results
from workbench.training.reuse import check_predictions
from workbench.training.spec import BackendOptions, CorpusOptions, RunSpec

LEDGER_COLUMNS = ["claim", "paper", "source", "text", "quote", "relation", "margin", "metric", "paper_value",
                  "difference", "ci_low", "ci_high", "p_value", "min_detectable", "df", "n_units", "n_folds", "n_seeds",
                  "covers", "lacks", "verdict", "reason", "recipe", "corpus", "seeds", "mode", "scores", "score_ci"]
#: ``quick`` mode: the first seed only, and these folds of every protocol. Its verdicts rest on
#: 2 units per condition and are marked ``mode="quick"`` in the ledger.
QUICK_FOLDS: tuple[int, ...] = (0, 1)


def select_claims(papers: Sequence[str] | None = None, claims: Sequence[str] | None = None) -> list[Claim]:
    """Claims by id (each checked) and/or every claim of ``papers``; all claims when neither."""
    chosen = [get_claim(c) for c in claims or []]
    if papers:
        known = {c.paper for c in CLAIMS}
        bad = sorted(set(papers) - known)
        if bad:
            raise ClaimError(f"no claims for paper(s) {bad}; papers with claims: {sorted(known)}")
        chosen += [c for c in CLAIMS if c.paper in papers and c not in chosen]
    return chosen if (papers or claims) else list(CLAIMS)


def spec_for(cond: Condition, recipe: str, seeds: Sequence[int], folds: Sequence[int | str] | None = None) -> RunSpec:
    """The run of one condition under ``recipe`` (``paper``, ``demo`` or ``smoke``)."""
    return RunSpec.create(cond.model, recipe, variant=cond.variant or None, protocol=cond.protocol,
                          label_scheme=cond.label_scheme, text_source=cond.text_source, seeds=seeds, folds=folds)


@dataclass
class Plan:
    """The union of the chosen claims' conditions, each with its spec or why it has none."""

    claims: list[Claim]
    specs: dict[Condition, RunSpec]
    errors: dict[Condition, str]


def plan(claims: Sequence[Claim], recipe: str = "demo", seeds: Sequence[int] = (0,),
         folds: Sequence[int | str] | None = None) -> Plan:
    """One spec per distinct condition (a condition shared by claims is planned once)."""
    specs, errors = {}, {}
    for claim in claims:
        for cond in claim.conditions():
            if cond in specs or cond in errors:
                continue
            try:
                specs[cond] = spec_for(cond, recipe, seeds, folds)
            except WorkbenchError as e:
                errors[cond] = str(e)
    return Plan(list(claims), specs, errors)


def _predictions_of(rows: pd.DataFrame, preds: pd.DataFrame) -> pd.DataFrame:
    """The predictions of ``rows``' runs, checked (run_crossval retrained damaged ones already;
    one damaged since is refused, naming it: the claim is *not run*, never averaged over it)."""
    mine = preds[preds["run_id"].isin(set(rows["run_id"]))]
    check_predictions(rows, mine, "predictions.parquet")
    return mine


def _test_train_ratio(rows: Sequence[pd.DataFrame]) -> dict[str, float]:
    """protocol -> mean test size / mean training size of its runs: the Nadeau-Bengio
    correction's ratio (training sets of two folds overlap by about this much more)."""
    table = pd.concat([r[["protocol", "n_test", "n_train"]] for r in rows if {"n_test", "n_train"} <= set(r.columns)])
    if table.empty:
        return {}
    means = table.groupby("protocol")[["n_test", "n_train"]].mean()
    return {str(p): float(r.n_test / r.n_train) for p, r in means.iterrows() if r.n_train > 0}


def quick_settings(seeds: Sequence[int], folds: Sequence[int | str] | None) -> tuple[list[int], list[int | str]]:
    """What ``quick`` mode runs: the first of ``seeds`` and ``folds`` (default :data:`QUICK_FOLDS`)."""
    return list(seeds)[:1], list(folds) if folds is not None else list(QUICK_FOLDS)


def reproduce(claims: Sequence[Claim], corpus: CorpusOptions, runs_root: str | Path, recipe: str = "demo",
              seeds: Sequence[int] = (0,), folds: Sequence[int | str] | None = None,
              backend: BackendOptions = BackendOptions(), n_boot: int = 1000, progress: bool = True,
              quick: bool = False) -> pd.DataFrame:
    """Run what the claims need under the runs folder ``runs_root`` and return the ledger (one
    row per claim, :data:`LEDGER_COLUMNS`); ``.attrs`` holds the ``trained`` and ``reused`` run counts
    and ``wall_seconds``. ``quick``: one seed and two folds (:func:`quick_settings`), every
    verdict marked ``mode="quick"``."""
    start = time.perf_counter()
    if quick:
        seeds, folds = quick_settings(seeds, folds)
    mode = "quick" if quick else "full"
    p = plan(claims, recipe, seeds, folds)
    before = set(read_results(runs_root, missing_ok=True)["run_id"])  # a new root is fine
    rows: dict[Condition, pd.DataFrame] = {}
    if backend.backend == "local" and backend.jobs > 1:
        from workbench.training import crossval

        # Every condition is prepared (and checked) first, then one pool of workers trains
        # every condition's (fold, seed); a failed training is reported in its frame.
        frames: dict[Condition, pd.DataFrame] = {}
        prepared, memo = {}, {}  # memo: conditions reading the same features share one copy
        for cond, spec in p.specs.items():
            try:
                prepared[cond] = crossval.prepare_crossval(spec, corpus, runs_root=runs_root, progress=progress,
                                                           feature_memo=memo)
            except WorkbenchError as e:
                p.errors[cond] = str(e)
        frames = dict(zip(prepared, crossval.run_prepared(list(prepared.values()), backend, progress=progress)))
        for cond, got in frames.items():
            failed = got.attrs.get("failed", [])
            if failed:
                p.errors[cond] = crossval.failure_report(failed)
                continue
            rows[cond] = got
    else:  # one condition at a time: only its features are held in memory
        done = ensure_runs(list(p.specs.values()), corpus, runs_root, backend, progress=progress, keep_going=True)
        for cond, got, error in zip(p.specs, done.rows, done.errors):
            if error is not None:
                p.errors[cond] = error
            else:
                rows[cond] = got
    all_runs = pd.concat(list(rows.values()), ignore_index=True) if rows else pd.DataFrame(columns=["run_id"])
    preds = read_predictions(runs_root)
    ledger = []
    for claim in p.claims:
        base = dict(claim=claim.id, paper=claim.paper, source=claim.source, text=claim.text, quote=claim.quote,
                    relation=claim.relation if claim.statistic == "difference" else "rank_change",
                    margin=claim.margin, metric=claim.metric, paper_value=claim.paper_value, recipe=recipe,
                    corpus=corpus.name, seeds=len(seeds), mode=mode)
        missing = [f"{c.label()}: {p.errors[c]}" for c in claim.conditions() if c in p.errors]
        if missing:
            ledger.append({**base, "verdict": "not run", "reason": "; ".join(missing)})
            continue
        try:
            class_lists = {c.label(): tuple(json.loads(rows[c]["classes"].iloc[0])) for c in claim.conditions()}
            if len(set(class_lists.values())) > 1:
                raise ClaimError(f"claim {claim.id}: its conditions were trained on different class sets {class_lists}")
            classes = list(next(iter(class_lists.values())))
            result = evaluate_claim(claim, {c: _predictions_of(rows[c], preds) for c in claim.conditions()},
                                    classes, n_boot=n_boot,
                                    test_train_ratio=_test_train_ratio([rows[c] for c in claim.conditions()]))
        except (ClaimError, ValueError) as e:
            ledger.append({**base, "verdict": "not run", "reason": str(e)})
            continue
        ledger.append({**base, "difference": result.difference, "ci_low": result.ci_low, "ci_high": result.ci_high,
                       "p_value": result.p_value, "min_detectable": result.min_detectable, "df": result.df,
                       "n_units": result.n_units, "n_folds": result.n_folds, "n_seeds": result.n_seeds,
                       "covers": ", ".join(result.covers), "lacks": "; ".join(result.lacks),
                       "verdict": verdict(result), "reason": claim.note,
                       "scores": json.dumps({k: round(v, 4) for k, v in result.scores.items()}),
                       "score_ci": json.dumps({k: [round(lo, 4), round(hi, 4)] for k, (lo, hi) in result.score_ci.items()})})
    out_df = pd.DataFrame(ledger).reindex(columns=LEDGER_COLUMNS)
    out_df.attrs["trained"] = int(len(set(all_runs["run_id"]) - before))
    out_df.attrs["reused"] = int(len(set(all_runs["run_id"]) & before))
    out_df.attrs["wall_seconds"] = round(time.perf_counter() - start, 1)
    return out_df


def condition_scores(ledger: pd.DataFrame, claim: str) -> pd.DataFrame:
    """One claim's conditions in its order, each with its score and 95 % interval (e.g. the
    whole AMH hop curve of ``yoon2020.hops_rise_to_7``); empty when the claim did not run."""
    row = ledger[ledger["claim"] == claim]
    if row.empty or not isinstance(row["scores"].iloc[0], str):
        return pd.DataFrame(columns=["condition", "score", "ci_low", "ci_high"])
    scores = json.loads(row["scores"].iloc[0])
    ci = json.loads(row["score_ci"].iloc[0]) if isinstance(row["score_ci"].iloc[0], str) else {}
    rows = []
    for k, v in scores.items():
        lo, hi = ci.get(k, (math.nan, math.nan))
        rows.append(dict(condition=k, score=v, ci_low=lo, ci_high=hi))
    return pd.DataFrame(rows)


def write_ledger(ledger: pd.DataFrame, folder: str | Path) -> tuple[Path, Path]:
    """``ledger.parquet`` and a readable ``ledger.html`` in ``folder`` (both written atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pq, page = folder / "ledger.parquet", folder / "ledger.html"
    atomic_write(pq, lambda tmp: ledger.to_parquet(tmp, index=False))
    atomic_write(page, lambda tmp: tmp.write_text(ledger_html(ledger), encoding="utf-8"))
    return pq, page


def verdict_label(row: Mapping[str, object]) -> str:
    """The verdict as shown to a reader, with what it cannot account for: a quick-mode verdict
    and one from a single seed say so (a one-seed run is never plainly "reproduced")."""
    v = str(row["verdict"])
    if v == "not run":
        return v
    notes = []
    if row.get("mode") == "quick":
        notes.append("quick")
    lacks = row.get("lacks")
    if isinstance(lacks, str) and lacks:
        notes.append(lacks)
    return f"{v} ({'; '.join(notes)})" if notes else v


def _fmt(x: object, digits: int = 3) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def _interval(r: Mapping[str, object]) -> str:
    """The interval cell: a rank change has none (its statistic is the share of pairs that flip)."""
    if r.get("relation") == "rank_change":
        return "share of system pairs that flip"
    return f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]" if r.get("verdict") != "not run" else ""


def ledger_html(ledger: pd.DataFrame) -> str:
    """A self-contained page: one table per paper, one row per claim."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    colours = {"reproduced": "#2e7d32", "refuted": "#c62828", "inconclusive": "#8d6e00", "not run": "#616161"}
    parts = ["<!doctype html><meta charset='utf-8'><title>Reproduction ledger</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}td,th{padding:4px 8px;"
             "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}</style>",
             f"<h1>Reproduction ledger</h1><p>{stamp}. Difference = the claim's signed sum of scores "
             "(above zero: the first side is better). The 95 % t interval accounts for test utterances (one "
             "bootstrap resample per fold shared by every seed and condition), seeds, and folds (Nadeau-Bengio "
             "corrected for overlapping training sets); p is the same t statistic's. <i>beats</i>: reproduced when "
             "the interval is above zero; <i>similar</i>: when the 90 % interval lies within the margin. A "
             "rank-change claim's statistic is the share of system pairs two seeds order oppositely beyond "
             "test-set noise. What a verdict could not account for is said beside it.</p>"]
    if "mode" in ledger and (ledger["mode"] == "quick").any():  # ledgers written before quick mode have no column
        parts.append(f"<p><b>Quick mode:</b> one seed and folds {list(QUICK_FOLDS)} of each protocol; verdicts marked "
                     "(quick) rest on 2 units per condition.</p>")
    for paper, group in ledger.groupby("paper", sort=False):
        parts.append(f"<h2>{html.escape(str(paper))}</h2><table><tr><th>claim</th><th>source</th><th>metric</th>"
                     "<th>paper</th><th>run</th><th>95 % interval</th><th>p</th><th>verdict</th><th>notes</th></tr>")
        for _, r in group.iterrows():
            colour = colours.get(str(r["verdict"]), "#000")
            parts.append(
                f"<tr><td>{html.escape(str(r['text']))}<br><small>{html.escape(str(r['claim']))}</small>"
                + (f"<br><small><i>“{html.escape(str(r['quote']))}”</i></small>" if r.get("quote") else "") + "</td>"
                f"<td>{html.escape(str(r['source']))}</td><td>{r['metric']}</td><td>{_fmt(r['paper_value'])}</td>"
                f"<td>{_fmt(r['difference'])}</td><td>{_interval(r)}</td>"
                f"<td>{_fmt(r['p_value'])}</td><td style='color:{colour}'><b>{verdict_label(r)}</b></td>"
                f"<td>{html.escape(_fmt(r['reason']))}</td></tr>")
        parts.append("</table>")
    return "\n".join(parts)


__all__ = ["LEDGER_COLUMNS", "QUICK_FOLDS", "Plan", "condition_scores", "ledger_html", "plan", "quick_settings",
           "reproduce", "select_claims", "spec_for", "verdict_label", "write_ledger"]
