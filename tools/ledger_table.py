"""A ledger's verdicts as a Markdown table, for docs/reproduce.md (developer tool).

``python tools/ledger_table.py <runs root>/ledger/ledger.parquet`` prints one row per claim:
relation, the paper's difference, the run's difference with its 95 % interval, the minimum
detectable difference, the verdict (with what the interval could not see, when anything), and
a count of the verdicts at the end. The numbers are the ledger's, unrounded beyond 3 decimals,
so a table in the docs can be regenerated from the run it describes.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from pathlib import Path

import pandas as pd


def _num(x: float, signed: bool = True) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else (f"{x:+.3f}" if signed else f"{x:.3f}")


def ledger_table(ledger: pd.DataFrame) -> str:
    """The Markdown table of ``ledger`` (the frame of ``ledger.parquet``)."""
    rows = ["| claim | relation | paper | run | 95 % interval | min. detectable | verdict |",
            "|---|---|---|---|---|---|---|"]
    for r in ledger.to_dict("records"):
        relation = r["relation"] + (f" ±{r['margin']:g}" if r["relation"] == "similar" else "")
        if r["verdict"] == "not run":
            run, interval = "", ""
        elif r["relation"] == "rank_change":
            run = f"{r['difference']:.3f} of pairs flip"
            interval = f"adjusted p {r['p_value']:.2g}"
        else:
            run, interval = _num(r["difference"]), f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]"
        verdict = f"**{r['verdict']}**" if r["verdict"] in ("reproduced", "refuted") else r["verdict"]
        if r.get("lacks"):
            verdict += f" ({r['lacks']})"
        if r["verdict"] == "not run" and r.get("reason"):
            verdict += f": {str(r['reason'])[:160]}"
        rows.append(f"| `{r['claim']}` | {relation} | {_num(r['paper_value'])} | {run} | {interval} | "
                    f"{_num(r['min_detectable'], signed=False)} | {verdict} |")
    counts = Counter(ledger["verdict"])
    rows.append("")
    rows.append(", ".join(f"{n} {v}" for v, n in counts.most_common()) + f" ({len(ledger)} claims)")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ledger", type=Path, help="ledger.parquet of a workbench reproduce run")
    print(ledger_table(pd.read_parquet(ap.parse_args().ledger)))


if __name__ == "__main__":
    main()
