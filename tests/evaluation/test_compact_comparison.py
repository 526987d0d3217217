"""The compact paper comparison of notebook 05 keeps side_by_side's numbers, formatted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.evaluation.papers import compact_comparison


def test_compact_comparison_formats_side_by_sides_numbers():
    side = pd.DataFrame([
        dict(model="pepino_audio", variant="small", text_source="oracle", protocol="session_script", n_runs=3,
             run_ua=0.61234, run_wa=0.6, run_spread=0.0456, unit="median ± IQR over seeds", paper="pepino2020",
             table="Table 2", paper_model="Audio", paper_ua=0.5, paper_wa=np.nan, paper_spread=0.01,
             differs="corpus: synthetic vs iemocap"),
        dict(model="pepino_late", variant="", text_source="oracle", protocol="loso_session", n_runs=1,
             run_ua=0.4, run_wa=0.45, run_spread=np.nan, unit="mean ± std over folds x seeds", paper=np.nan,
             table=np.nan, paper_model=np.nan, paper_ua=np.nan, paper_wa=np.nan, paper_spread=np.nan,
             differs=np.nan),
    ])
    c = compact_comparison(side)
    assert list(c.columns) == ["system", "protocol", "text", "UA run", "UA paper", "WA run", "WA paper", "paper",
                               "unit", "differs"]
    first, second = c.iloc[0], c.iloc[1]
    assert first["system"] == "pepino_audio[small]" and second["system"] == "pepino_late"
    assert (first["UA run"], first["UA paper"], first["WA run"], first["WA paper"]) == (
        "0.612 ± 0.046", "0.500 ± 0.010", "0.600", "")
    assert first["paper"] == "pepino2020, Table 2" and first["differs"] == "corpus: synthetic vs iemocap"
    # a configuration no paper reports: its own numbers, empty paper columns
    assert (second["UA run"], second["UA paper"], second["paper"], second["differs"]) == ("0.400", "", "", "")
    assert compact_comparison(side, digits=1).iloc[0]["UA run"] == "0.6 ± 0.0"
