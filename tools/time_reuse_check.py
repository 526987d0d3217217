"""Time the reuse check on stored predictions (workbench.training.reuse) on a large runs root.

Writes a synthetic runs root of ``--runs`` runs with ``--utterances`` test predictions each
(4 classes), then times what each reader pays:

- ``load_results`` / the ledger: read the whole predictions table and check every run;
- cross-validation reusing one finished run: read that run's rows and check them.

    python tools/time_reuse_check.py --runs 5000 --utterances 100
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.training.results import append_rows, read_predictions, read_results, read_run_predictions, results_dir
from workbench.training.reuse import prediction_problems

CLASSES = ["neu", "hap", "ang", "sad"]


def write_root(root: Path, runs: int, utterances: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    run_ids = [f"model-{k:05d}" for k in range(runs)]
    append_rows(results_dir(root) / "results.parquet", pd.DataFrame({
        "run_id": run_ids, "model": "model", "classes": json.dumps(CLASSES), "n_test": utterances}))
    logits = rng.normal(size=(runs * utterances, len(CLASSES)))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, len(CLASSES), runs * utterances)
    append_rows(results_dir(root) / "predictions.parquet", pd.DataFrame({
        "run_id": np.repeat(run_ids, utterances), "utt_id": [f"u{k:04d}" for k in range(utterances)] * runs,
        "label": np.array(CLASSES)[labels], "pred": np.array(CLASSES)[probs.argmax(1)], "probs": list(probs)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--utterances", type=int, default=100, help="test predictions per run")
    ap.add_argument("--repeat", type=int, default=3, help="timings are the best of this many")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_root(root, args.runs, args.utterances)
        results = read_results(root)

        def whole() -> None:
            assert prediction_problems(results, read_predictions(root)) == {}

        def check_only(preds=read_predictions(root)) -> None:
            assert prediction_problems(results, preds) == {}

        def one_run() -> None:
            run = results.iloc[[len(results) // 2]]
            assert prediction_problems(run, read_run_predictions(root, run["run_id"].iloc[0])) == {}

        for name, fn in [("read + check every run (load_results, ledger)", whole),
                         ("check every run, table already read", check_only),
                         ("read + check one run (crossval reuse)", one_run)]:
            best = min(_time(fn) for _ in range(args.repeat))
            print(f"{name:50s} {best:7.3f} s  ({args.runs} runs x {args.utterances} predictions)")


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
