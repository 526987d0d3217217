"""tools/project_ledger.py projects the paper-recipe ledger from benchmark CSVs."""

from __future__ import annotations

import pandas as pd
import pytest
from tool_modules import load_tool


def _tool():
    return load_tool("project_ledger")


def test_per_model_timings_and_sharing_come_from_the_bench_csvs(tmp_path):
    tool = _tool()
    single = tmp_path / "bench.csv"
    pd.DataFrame([dict(model="xu_alignment", bucketing=True, seconds_per_epoch=2.0),
                  dict(model="xu_alignment", bucketing=False, seconds_per_epoch=5.0)]).to_csv(single, index=False)
    conc = tmp_path / "concurrent.csv"
    pd.DataFrame([dict(model="cma_raw", concurrent=n, seconds_per_epoch=e, speedup=s)
                  for n, e, s in [(1, 10.0, 1.0), (4, 14.0, 2.8), (8, 20.0, 3.6)]]).to_csv(conc, index=False)
    epoch, speedups = tool.read_bench([str(single), str(conc)])
    assert epoch == {"xu_alignment": 2.0, "cma_raw": 10.0} and speedups == {"cma_raw": {1: 1.0, 4: 2.8, 8: 3.6}}
    assert tool.speedup_of("cma_raw", 4, speedups) == (2.8, "measured")
    assert tool.speedup_of("amh", 8, speedups) == (3.6, "mean of measured")
    assert tool.speedup_of("amh", 2, speedups) == (1.0, "none")
    gpu = tool.gpu_projection(3, epoch).set_index("condition")
    xu = gpu.loc["xu_alignment"]
    assert xu.seconds_from == "bench" and xu.seconds == pytest.approx(2.0 * xu.epochs * xu.runs)
    assert gpu.loc["amh_at", "seconds_from"] == "H100 table"


def test_a_pretrained_fusion_costs_no_branch_the_ledger_trains_anyway():
    tool = _tool()
    gpu = tool.gpu_projection(1).set_index("condition")
    late = [c for c in gpu.index if c.startswith("pepino_late")]
    assert late
    for c in late:
        r = gpu.loc[c]
        assert r.seconds == pytest.approx(tool.H100_SECONDS_PER_EPOCH["pepino_late"] * r.epochs * r.runs), c
