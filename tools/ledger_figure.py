"""Draw a ledger's forest plot as a PNG for the README (developer tool).

    python tools/ledger_figure.py runs/reproduce-demo/ledger/ledger.parquet docs/ledger.png

The notebook's interactive version is ``workbench.viz.results.claims_forest``; this one is
matplotlib, so the picture needs no browser to render.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from workbench.viz.results import VERDICT_COLOURS  # noqa: E402


def main(ledger_path: str, out: str) -> None:
    ledger = pd.read_parquet(ledger_path)
    ran = ledger[ledger["verdict"] != "not run"].iloc[::-1].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(ran) + 1.2), dpi=110)
    for i, r in ran.iterrows():
        colour = VERDICT_COLOURS[r["verdict"]]
        ax.errorbar(r["difference"], i, xerr=[[r["difference"] - r["ci_low"]], [r["ci_high"] - r["difference"]]],
                    fmt="o", color=colour, ms=4, capsize=2)
        if pd.notna(r["paper_value"]):
            ax.plot(r["paper_value"], i, marker="D", mfc="none", mec="black", ms=4)
    ax.axvline(0, color="grey", ls=":")
    ax.set_yticks(range(len(ran)), ran["claim"], fontsize=7)
    ax.set_xlabel("difference (the claim holds above 0); open diamond: the paper's own", fontsize=8)
    mode = " (quick: 1 seed, 2 folds)" if "mode" in ran and (ran["mode"] == "quick").any() else ""
    ax.set_title(f"The papers' claims rerun on the synthetic corpus{mode}", fontsize=9)
    for v, c in VERDICT_COLOURS.items():
        if v != "not run" and (ran["verdict"] == v).any():
            ax.plot([], [], "o", color=c, label=v)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
