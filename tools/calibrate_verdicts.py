"""The verdict rule's calibration and power on constructed predictions (developer tool; the
tables of docs/reproduce.md).

    python tools/calibrate_verdicts.py --replicates 400 > /tmp/calibration.md

Null rate: the share of decisive verdicts when the claim is false at its boundary, with its
Monte Carlo standard error. Power: the share of *reproduced* for a true difference, with the
minimum detectable difference (80 % power at 5 %) the rule reports for that design.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from workbench.evaluation.calibration import CLASSES, Design, claim_of, null_rate, power, simulate_pair
from workbench.evaluation.verdicts import evaluate_claim


def _mde(design: Design, n_boot: int, draws: int = 20) -> float:
    """The median over ``draws`` simulated ledgers of the minimum detectable difference the rule
    reports (one ledger's estimate moves with its few degrees of freedom)."""
    rng = np.random.default_rng(0)
    return float(np.median([evaluate_claim(claim_of(), simulate_pair(design, 0.0, rng), list(CLASSES),
                                           n_boot=n_boot).min_detectable for _ in range(draws)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=400)
    ap.add_argument("--power-replicates", type=int, default=100)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--power-only", action="store_true", help="skip the null-rate table")
    args = ap.parse_args()
    start = time.perf_counter()
    if not args.power_only:
        null_table(args)
    power_table(args)
    print(f"\n(wall time {time.perf_counter() - start:.0f} s)")


def null_table(args: argparse.Namespace) -> None:
    print("| null: design | folds | seeds | utterances/fold | fold sd | seed sd | shared sd | relation | decisive rate |")
    print("|---|---|---|---|---|---|---|---|---|")
    nulls = {
        "demo ledger (5 folds x 3 seeds)": Design(),
        "one seed": Design(seeds=1),
        "quick (2 folds x 1 seed)": Design(folds=2, seeds=1),
        "no training variance": Design(fold_sd=0.0, seed_sd=0.0),
        "large training variance": Design(fold_sd=0.4, seed_sd=0.3),
        "10 folds x 1 seed (Yoon, Sun)": Design(folds=10, seeds=1),
        "folds correlated (shared sd 0.1)": Design(shared_sd=0.1),
    }
    for name, d in nulls.items():
        r = null_rate(d, args.replicates, n_boot=args.n_boot, seed=1)
        print(f"| {name} | {d.folds} | {d.seeds} | {d.utterances} | {d.fold_sd} | {d.seed_sd} | {d.shared_sd} | beats "
              f"| {r} |")
    r = null_rate(Design(), args.replicates, relation="similar", margin=0.03, n_boot=args.n_boot, seed=2)
    print(f"| at the margin (true difference = margin 0.03) | 5 | 3 | 200 | 0.15 | 0.1 | 0.0 | similar | {r} |")
    print()


def power_table(args: argparse.Namespace) -> None:
    print("| power: design | folds | seeds | utterances/fold | fold sd | true difference (UA) | reproduced | "
          "min. detectable (median) |")
    print("|---|---|---|---|---|---|---|---|")
    designs = {
        "IEMOCAP loso_session, 1 seed": Design(folds=5, seeds=1, utterances=1100, fold_sd=0.05, seed_sd=0.05),
        "IEMOCAP loso_session, 10 seeds": Design(folds=5, seeds=10, utterances=1100, fold_sd=0.05, seed_sd=0.05),
        "IEMOCAP 10 folds 8:1:1, 1 seed": Design(folds=10, seeds=1, utterances=550, fold_sd=0.05, seed_sd=0.05),
        "demo corpus loso_session, 3 seeds": Design(folds=5, seeds=3, utterances=300, fold_sd=0.05, seed_sd=0.05),
    }
    for name, d in designs.items():
        mde = _mde(d, args.n_boot)
        for diff in (0.02, 0.03, 0.05):
            r = power(d, diff, args.power_replicates, n_boot=args.n_boot, seed=3)
            print(f"| {name} | {d.folds} | {d.seeds} | {d.utterances} | {d.fold_sd} | {diff} | {r} | {mde:.3f} |")


if __name__ == "__main__":
    main()
