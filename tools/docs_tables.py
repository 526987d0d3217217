"""Tables of the docs made from the registries, so they cannot drift from them.

``python tools/docs_tables.py`` rewrites the claims table of ``docs/reproduce.md`` (between
its ``<!-- claims table ... -->`` markers) from :data:`workbench.evaluation.claims.CLAIMS`;
``--check`` only reports whether it is current (``tests/test_docs_tables.py`` does the same).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPRODUCE = ROOT / "docs" / "reproduce.md"
BEGIN = "<!-- claims table: made by tools/docs_tables.py from workbench.evaluation.claims; do not edit -->"
END = "<!-- end of claims table -->"


def claims_table() -> str:
    """One row per library claim: id, paper, where in the paper, what it says, relation, metric,
    and the paper's own difference where its tables give one."""
    from workbench.evaluation.claims import CLAIMS

    rows = ["| claim | paper | source | what it says | relation | metric | paper's difference |",
            "|---|---|---|---|---|---|---|"]
    for c in CLAIMS:
        relation = c.relation if c.statistic == "difference" else "rank change"
        if relation == "similar":
            relation = f"similar (±{c.margin:g})"
        value = "" if c.paper_value is None or math.isnan(c.paper_value) else f"{c.paper_value:+.3f}"
        text = c.text.replace("|", "\\|")
        rows.append(f"| `{c.id}` | {c.paper} | {c.source} | {text} | {relation} | {c.metric} | {value} |")
    return "\n".join(rows)


def render(page: str) -> str:
    """``page`` with the text between the markers replaced by :func:`claims_table`."""
    if BEGIN not in page or END not in page:
        raise SystemExit(f"{REPRODUCE}: the claims table markers are missing ({BEGIN!r} ... {END!r})")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{claims_table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the tables are current")
    args = parser.parse_args(argv)
    page = REPRODUCE.read_text(encoding="utf-8")
    new = render(page)
    if args.check:
        if new != page:
            print(f"{REPRODUCE} is stale: run python tools/docs_tables.py", file=sys.stderr)
            return 1
        return 0
    if new != page:
        REPRODUCE.write_text(new, encoding="utf-8")
        print(f"wrote {REPRODUCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
