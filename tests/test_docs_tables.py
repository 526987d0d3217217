"""The docs' tables of models and claims agree with the registries: every registered id is in
its page, and every id a table names is registered."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from workbench.evaluation.claims import CLAIMS
from workbench.models import list_models, list_variants

DOCS = Path(__file__).resolve().parents[1] / "docs"
CLAIM_ID = re.compile(r"`([a-z]+20\d\d\.[a-z0-9_]+)`")


def _tool():
    path = Path(__file__).resolve().parents[1] / "tools" / "docs_tables.py"
    spec = importlib.util.spec_from_file_location("docs_tables", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_claims_table_is_made_from_the_registry():
    tool = _tool()
    page = (DOCS / "reproduce.md").read_text(encoding="utf-8")
    assert tool.render(page) == page, "docs/reproduce.md's claims table is stale: run python tools/docs_tables.py"
    table = page.split(tool.BEGIN, 1)[1].split(tool.END, 1)[0]
    assert CLAIM_ID.findall(table) == [c.id for c in CLAIMS]


def test_every_claim_id_in_reproduce_md_is_registered_or_named_retired():
    page = (DOCS / "reproduce.md").read_text(encoding="utf-8")
    retired = {i for line in page.split("\n\n") if line.startswith("Retired claim ids") for i in CLAIM_ID.findall(line)}
    registered = {c.id for c in CLAIMS}
    assert not retired & registered, f"retired ids still registered: {sorted(retired & registered)}"
    unknown = sorted(set(CLAIM_ID.findall(page)) - registered - retired)
    assert not unknown, f"docs/reproduce.md names claims that are not registered: {unknown}"


def models_table() -> dict[str, list[str]]:
    """Model -> the variants its row names, from the "Registered names" column of docs/models.md."""
    lines = (DOCS / "models.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|") and "Registered names" in line)
    column = [c.strip() for c in lines[start].strip("|").split("|")].index("Registered names")
    found: dict[str, list[str]] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cell = [c.strip() for c in line.strip("|").split("|")][column]
        models, _, variants = cell.partition("variants")
        names = re.findall(r"`([^`]+)`", models)
        for name in names:
            found.setdefault(name, [])
        found[names[0]] += re.findall(r"`([^`]+)`", variants)
    return found


def test_the_models_table_lists_exactly_the_registered_models():
    table = models_table()
    assert sorted(table) == list_models(), (f"missing from docs/models.md: {sorted(set(list_models()) - set(table))}; "
                                            f"not registered: {sorted(set(table) - set(list_models()))}")
    for model, variants in table.items():
        unknown = sorted(set(variants) - set(list_variants(model)))
        assert not unknown, f"docs/models.md names variants of {model} it does not have: {unknown}"


def test_the_table_readers_see_a_stray_name(tmp_path, monkeypatch):
    (tmp_path / "models.md").write_text("| Model | Registered names |\n|---|---|\n| x | `amh`, `no_such_model` |\n"
                                        "| y | `cma_raw` variants `self_attn_audio`, `no_such_variant` |\n")
    monkeypatch.setitem(globals(), "DOCS", tmp_path)
    assert models_table() == {"amh": [], "no_such_model": [], "cma_raw": ["self_attn_audio", "no_such_variant"]}
