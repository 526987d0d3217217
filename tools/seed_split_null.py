"""The verdict rule's null on real runs (developer tool; docs/reproduce.md).

The runs of ONE configuration (one model, variant, recipe and protocol, 4 or more seeds) are
split into two halves of seeds in every way; each split is scored as "half A beats half B".
Both halves come from one distribution, so every decisive verdict is a false positive.

    python tools/seed_split_null.py --runs runs/ledger-xu --model unimodal_text
"""

from __future__ import annotations

import argparse
import json

from workbench.evaluation.calibration import seed_split_null
from workbench.training.results import read_predictions, read_results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="runs root holding the configuration's runs")
    ap.add_argument("--model", required=True)
    ap.add_argument("--variant", default="")
    ap.add_argument("--metric", default="ua")
    args = ap.parse_args()
    rows = read_results(args.runs)
    rows = rows[(rows["model"] == args.model) & (rows["variant"].fillna("") == args.variant)]
    if rows.empty:
        raise SystemExit(f"no runs of {args.model}[{args.variant}] under {args.runs}")
    preds = read_predictions(args.runs)
    preds = preds[preds["run_id"].isin(set(rows["run_id"]))]
    classes = json.loads(rows["classes"].iloc[0])
    rate = seed_split_null(preds, classes, metric=args.metric)
    print(f"{args.model}[{args.variant}]: {rows['seed'].nunique()} seeds x {rows['fold'].nunique()} folds; "
          f"decisive verdicts over the seed splits: {rate}")


if __name__ == "__main__":
    main()
