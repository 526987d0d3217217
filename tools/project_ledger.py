"""Project the wall time of a reproduction ledger (developer tool; numbers for docs/reproduce.md).

CPU: from the runs a ledger already trained (``train_seconds`` of each condition's runs in a
runs root's results table), scaled to every fold of its protocol and the asked seeds.
GPU: seconds per epoch of each model's ``paper`` recipe times the recipe's epochs (the cap,
for recipes that stop early: an upper bound), folds and seeds. The seconds per epoch are read
from benchmark CSVs where given (``--bench``: what ``workbench bench train --recipe paper
--epochs 2 --csv B.csv`` writes, the bucketed row; and rows of ``--concurrent`` runs), else
from the hand-kept H100 table below (each row says which). Several trainings sharing one GPU
(``--jobs N``): the CSV's ``--concurrent`` rows give the total rate of N at once over one at a
time (``speedup``; a model without rows takes the mean of the measured ones), which divides
the sum; G GPUs divide it by G at best. A pre-trained Pepino fusion adds its two branches only
when the ledger has no run of the branch model to reuse (it has: ``pepino_text`` and
``pepino_audio`` are conditions of their own).

    python tools/project_ledger.py --runs runs/reproduce-demo --seeds 3 --gpus 1,4,8 \
        --bench bench.csv --bench concurrent.csv
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from workbench.experiments.reproduce import plan, select_claims
from workbench.training.results import read_results

# Seconds per epoch of the paper recipe on one H100 80GB, full-size IEMOCAP folds (README table,
# measured 2026). Variants and models without a row borrow the row of their architecture.
H100_SECONDS_PER_EPOCH = {
    "amh": 4.1, "amh_at": 3.0, "cma_raw": 14.7, "cma_spec": 11.3, "mcsan": 1.8, "pepino_audio": 2.0,
    "pepino_early": 1.9, "pepino_late": 1.8, "pepino_text": 1.2, "unimodal_audio": 5.7, "unimodal_text": 1.1,
    "xu_alignment": 8.3, "xu_alignment_concat": 7.1, "xu_alignment_hard": 8.3,
}
BORROWED = {"mdre": "amh"}  # an RNN over audio, text and video: AMH's row, flagged in the output
FOLDS = {"loso_session": 5, "session_script": 5, "random_kfold": 5, "tenfold_811": 10}


def _distinct(recipe: str) -> dict[tuple, tuple]:
    """One entry per distinct run configuration: two conditions that name the recipe's own
    protocol explicitly and implicitly (``pepino_text`` and ``pepino_text@session_script``) are
    the same runs, trained once."""
    p = plan(select_claims(), recipe, (0,))
    out: dict[tuple, tuple] = {}
    for cond, spec in p.specs.items():
        out.setdefault((cond.model, spec.settings.variant, spec.protocol, spec.text_source), (cond, spec))
    return out


def cpu_projection(runs: str, seeds: int) -> pd.DataFrame:
    results = read_results(runs)
    rows = []
    for cond, spec in _distinct("demo").values():
        got = results[(results["model"] == cond.model) & (results["protocol"] == spec.protocol)
                      & (results["variant"] == spec.settings.variant) & (results["text_source"] == spec.text_source)]
        per_run = float(got["train_seconds"].mean()) if len(got) else float("nan")
        rows.append(dict(condition=cond.label(), runs=FOLDS[spec.protocol] * seeds, seconds_per_run=per_run,
                         measured_runs=len(got)))
    df = pd.DataFrame(rows)
    df["projected_seconds"] = df["runs"] * df["seconds_per_run"]
    return df


def read_bench(paths: list[str]) -> tuple[dict[str, float], dict[str, dict[int, float]]]:
    """Seconds per epoch per model (the bucketed single-training rows, or the N=1 row of a
    concurrent run) and, per model, N -> speed-up of N trainings at once, from bench CSVs."""
    if not paths:
        return {}, {}
    frame = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    epoch: dict[str, float] = {}
    speedups: dict[str, dict[int, float]] = {}
    if "concurrent" in frame.columns:
        conc = frame[frame["concurrent"].notna()]
        for model, g in conc.groupby("model"):
            speedups[str(model)] = {int(n): float(s) for n, s in zip(g["concurrent"], g["speedup"]) if s == s}
            one = g[g["concurrent"] == 1]
            if len(one):
                epoch[str(model)] = float(one["seconds_per_epoch"].iloc[0])
        frame = frame[frame["concurrent"].isna()]
    if "bucketing" in frame.columns:
        single = frame[frame["bucketing"].astype(str).str.lower() == "true"]
        for model, g in single.groupby("model"):
            epoch[str(model)] = float(g["seconds_per_epoch"].iloc[-1])  # single-training rows win
    return epoch, speedups


def speedup_of(model: str, n: int, speedups: dict[str, dict[int, float]]) -> tuple[float, str]:
    """The speed-up of ``n`` trainings at once for ``model``: measured, the mean of the
    measured models at that N, or 1 (no measurement: no sharing assumed)."""
    if n == 1:
        return 1.0, "-"
    if n in speedups.get(model, {}):
        return speedups[model][n], "measured"
    others = [s[n] for s in speedups.values() if n in s]
    return (sum(others) / len(others), "mean of measured") if others else (1.0, "none")


def gpu_projection(seeds: int, bench_epoch: dict[str, float] | None = None) -> pd.DataFrame:
    bench_epoch = bench_epoch or {}
    distinct = _distinct("paper")
    present = {(m, v, p, t) for (m, v, p, t) in distinct}
    rows = []
    for cond, spec in distinct.values():
        arch = BORROWED.get(cond.model, cond.model)
        s = spec.settings

        def per_epoch(model: str) -> tuple[float, str]:
            return (bench_epoch[model], "bench") if model in bench_epoch else (H100_SECONDS_PER_EPOCH[model], "H100 table")

        epoch, source = per_epoch(arch)
        # a pre-trained fusion trains its two branches first (Pepino sec. 2.3.3), unless the
        # ledger trains the branch models anyway: then their runs are reused, trained once
        if s.fusion_strategy in ("pretrained", "warm_start"):
            for branch in ("pepino_audio", "pepino_text"):
                if (branch, "", spec.protocol, spec.text_source) not in present:
                    epoch += per_epoch(branch)[0]
        rows.append(dict(condition=cond.label(), model=arch, protocol=spec.protocol, epochs=s.epochs,
                         early_stopping=s.early_stopping_patience is not None, runs=FOLDS[spec.protocol] * seeds,
                         seconds=epoch * s.epochs * FOLDS[spec.protocol] * seeds, borrowed=arch != cond.model,
                         seconds_from=source))
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="runs root of a ledger run (demo recipe)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--gpus", default="1,4,8")
    ap.add_argument("--bench", action="append", default=[],
                    help="CSV of `workbench bench train --recipe paper [--concurrent 1,4,8] --csv` (repeatable)")
    ap.add_argument("--jobs", default="1,4,8", help="trainings sharing each GPU at once (--jobs N)")
    args = ap.parse_args()
    cpu = cpu_projection(args.runs, args.seeds)
    print(cpu.round(1).to_string(index=False))
    known = cpu["projected_seconds"].notna()
    print(f"CPU, demo recipe, {args.seeds} seeds: {cpu.loc[known, 'projected_seconds'].sum() / 3600:.2f} h of training "
          f"for {known.sum()} of {len(cpu)} conditions ({int(cpu.loc[known, 'runs'].sum())} trainings)")
    bench_epoch, speedups = read_bench(args.bench)
    gpu = gpu_projection(args.seeds, bench_epoch)
    print(gpu.round(0).to_string(index=False))
    capped_share = gpu.loc[gpu["early_stopping"], "seconds"].sum() / gpu["seconds"].sum()
    for jobs in (int(j) for j in args.jobs.split(",")):
        factors = {m: speedup_of(m, jobs, speedups) for m in gpu["model"].unique()}
        shared = sum(r.seconds / factors[r.model][0] for r in gpu.itertuples())
        how = sorted({f"{m}: {f:.2f}x ({src})" for m, (f, src) in factors.items() if src not in ("-", "none")})
        for n in (int(g) for g in args.gpus.split(",")):
            print(f"GPU, paper recipe, {args.seeds} seeds, {n} GPU(s), {jobs} training(s) per GPU at once: "
                  f"{shared / n / 3600:.1f} h ({capped_share:.0%} of it early-stopping recipes at their epoch cap: "
                  f"an upper bound)")
        if jobs > 1:
            print(f"  speed-ups of {jobs} at once: " + ("; ".join(how) if how else "none measured (1x assumed)"))
    print(json.dumps({"trainings": int(gpu["runs"].sum()), "borrowed_rows": gpu.loc[gpu["borrowed"], "condition"].tolist()}))


if __name__ == "__main__":
    main()
