"""Project the wall time of a reproduction ledger (developer tool; numbers for docs/reproduce.md).

CPU: from the runs a ledger already trained (``train_seconds`` of each condition's runs in a
runs root's results table), scaled to every fold of its protocol and the asked seeds.
GPU: from the H100 training benchmark (seconds per epoch of each model's ``paper`` recipe,
``workbench bench train --recipe paper --epochs 2``, docs/performance.md), times the
recipe's epochs (the cap, for recipes that stop early: an upper bound), folds and seeds; a Ray
cluster of N GPUs divides the sum by N at best (one (fold, seed) training per GPU).

    python tools/project_ledger.py --runs runs/reproduce-demo --seeds 3 --gpus 1,4,8
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from workbench.experiments.reproduce import plan, select_claims
from workbench.training.results import read_results

# Seconds per epoch of the paper preset on one H100 80GB, full-size IEMOCAP folds (README table,
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


def gpu_projection(seeds: int) -> pd.DataFrame:
    rows = []
    for cond, spec in _distinct("paper").values():
        arch = BORROWED.get(cond.model, cond.model)
        s = spec.settings
        # a pre-trained fusion also trains its two branches first (Pepino sec. 2.3.3)
        branches = 2 if s.fusion_strategy in ("pretrained", "warm_start") else 0
        epoch = H100_SECONDS_PER_EPOCH[arch] + branches * H100_SECONDS_PER_EPOCH["pepino_audio"]
        rows.append(dict(condition=cond.label(), protocol=spec.protocol, epochs=s.epochs,
                         early_stopping=s.early_stopping_patience is not None, runs=FOLDS[spec.protocol] * seeds,
                         seconds=epoch * s.epochs * FOLDS[spec.protocol] * seeds, borrowed=arch != cond.model))
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="runs root of a ledger run (demo recipe)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--gpus", default="1,4,8")
    args = ap.parse_args()
    cpu = cpu_projection(args.runs, args.seeds)
    print(cpu.round(1).to_string(index=False))
    known = cpu["projected_seconds"].notna()
    print(f"CPU, demo recipe, {args.seeds} seeds: {cpu.loc[known, 'projected_seconds'].sum() / 3600:.2f} h of training "
          f"for {known.sum()} of {len(cpu)} conditions ({int(cpu.loc[known, 'runs'].sum())} trainings)")
    gpu = gpu_projection(args.seeds)
    print(gpu.round(0).to_string(index=False))
    total = gpu["seconds"].sum()
    capped = gpu.loc[gpu["early_stopping"], "seconds"].sum()
    for n in (int(g) for g in args.gpus.split(",")):
        print(f"GPU (H100 benchmark), paper recipe, {args.seeds} seeds, {n} GPU(s): {total / n / 3600:.1f} h "
              f"(of which {capped / n / 3600:.1f} h early-stopping recipes at their epoch cap: an upper bound)")
    print(json.dumps({"trainings": int(gpu["runs"].sum()), "borrowed_rows": gpu.loc[gpu["borrowed"], "condition"].tolist()}))


if __name__ == "__main__":
    main()
