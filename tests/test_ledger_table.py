"""tools/ledger_table.py renders a ledger's verdicts for docs/reproduce.md from the ledger itself."""

from __future__ import annotations

import pandas as pd
from tool_modules import load_tool


def _tool():
    return load_tool("ledger_table")


def test_every_relation_and_verdict_renders_from_the_ledgers_numbers():
    nan = float("nan")
    common = dict(p_value=nan, min_detectable=nan, lacks="", reason="", margin=nan, paper_value=nan)
    ledger = pd.DataFrame([
        {**common, "claim": "a.beats", "relation": "beats", "paper_value": 0.135, "difference": 0.19312,
         "ci_low": 0.1494, "ci_high": 0.2371, "min_detectable": 0.0594, "verdict": "reproduced"},
        {**common, "claim": "a.similar", "relation": "similar", "margin": 0.01, "difference": -0.0004,
         "ci_low": -0.0041, "ci_high": 0.0049, "verdict": "inconclusive", "lacks": "one seed: training variance not estimated"},
        {**common, "claim": "a.flips", "relation": "rank_change", "difference": 0.0476, "ci_low": nan, "ci_high": nan,
         "p_value": 0.00131, "verdict": "reproduced"},
        {**common, "claim": "a.missing", "relation": "beats", "difference": nan, "ci_low": nan, "ci_high": nan,
         "verdict": "not run", "reason": "cma_raw: 1 (fold, seed) training(s) failed"},
    ])
    lines = _tool().ledger_table(ledger).splitlines()
    assert lines[2] == "| `a.beats` | beats | +0.135 | +0.193 | [+0.149, +0.237] | 0.059 | **reproduced** |"
    assert lines[3] == ("| `a.similar` | similar ±0.01 |  | -0.000 | [-0.004, +0.005] |  | inconclusive "
                        "(one seed: training variance not estimated) |")
    assert lines[4] == "| `a.flips` | rank_change |  | 0.048 of pairs flip | adjusted p 0.0013 |  | **reproduced** |"
    assert lines[5] == "| `a.missing` | beats |  |  |  |  | not run: cma_raw: 1 (fold, seed) training(s) failed |"
    assert lines[-1] == "2 reproduced, 1 inconclusive, 1 not run (4 claims)"
