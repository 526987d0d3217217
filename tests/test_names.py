"""Names that help texts, notebooks and guides give a user exist: `workbench list` nouns,
dotted Python names, and the names options accept, all checked against the registries."""

from __future__ import annotations

import argparse
import importlib
import json
import re
from pathlib import Path

import pytest

from workbench import cli
from workbench.catalog import LISTINGS, format_table, listing
from workbench.corpus.labels import SCHEMES
from workbench.corpus.registry import list_corpora
from workbench.corpus.synthetic import CORPUS_SIZES
from workbench.errors import WorkbenchError
from workbench.models import get_card, list_models, list_variants
from workbench.protocols import PROTOCOLS
from workbench.training.recipes import RECIPE_NAMES

ROOT = Path(__file__).resolve().parents[1]
DOTTED = re.compile(r"\bworkbench(?:\.[A-Za-z_]\w*)+")
LIST_COMMAND = re.compile(r"`workbench list ([a-z-]+)")


def parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def help_texts() -> list[str]:
    """Every help string, description and choice list of the CLI, whitespace collapsed."""
    texts = []
    for p in parsers(cli.build_parser()):
        texts.append(p.description or "")
        for a in p._actions:
            texts += [a.help or "", " ".join(map(str, a.choices or []))]
        for g in p._action_groups:
            texts.append(g.description or "")
    return [" ".join(t.split()) for t in texts if t and t != argparse.SUPPRESS]


def option(parser_path: list[str], dest: str) -> argparse.Action:
    p = cli.build_parser()
    for name in parser_path:
        p = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return next(a for a in p._actions if a.dest == dest)


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` is a module, or an attribute path under the longest importable module."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError:
            continue
        for attr in parts[k:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def notebook_sources() -> list[tuple[str, str]]:
    out = []
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        out += [(f"{nb.name} cell {i}", "".join(c["source"])) for i, c in enumerate(cells)]
    return out


def test_help_names_list_commands_that_exist() -> None:
    named = {m for t in help_texts() for m in LIST_COMMAND.findall(t)}
    assert {"models", "variants", "recipes", "protocols", "label-schemes", "corpora", "claims"} <= named
    assert named <= set(LISTINGS), named - set(LISTINGS)


def test_every_dotted_name_in_help_notebooks_and_guides_resolves() -> None:
    places = [("help", t) for t in help_texts()] + notebook_sources()
    places += [(p.name, p.read_text()) for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]]
    names = {(where, name.rstrip(".")) for where, text in places for name in DOTTED.findall(text)}
    assert len(names) > 20  # the scan finds the guides' names
    stale = sorted((where, name) for where, name in names if not resolves(name))
    assert not stale, stale


def test_resolves_tells_a_stale_name() -> None:
    assert resolves("workbench.models.list_variants") and resolves("workbench.corpus.registry.list_corpora")
    assert not resolves("workbench.training.list_variants")  # the name train --help once gave


def test_options_accept_what_the_registries_hold() -> None:
    assert option(["train"], "recipe").choices == list(RECIPE_NAMES) == cli.RECIPES
    assert option(["reproduce"], "recipe").choices == list(RECIPE_NAMES)
    assert option(["train"], "corpus_size").choices == list(CORPUS_SIZES)
    assert option(["corpus", "synth"], "corpus_size").choices == list(CORPUS_SIZES)
    corpus_help = option(["train"], "corpus").help
    assert re.findall(r"[a-z_]+(?=,| \()", corpus_help) == list(list_corpora())
    assert option(["train"], "corpus").choices == list(list_corpora())


@pytest.mark.parametrize("what", list(LISTINGS))
def test_every_listing_is_a_table_with_a_description_per_name(what: str) -> None:
    table = listing(what)
    assert len(table) and "name" in table.columns
    assert table["description"].str.len().gt(10).all(), table[table["description"].str.len() <= 10]
    assert table.columns[-1] == "description"


def test_listings_hold_exactly_the_registries() -> None:
    assert listing("models")["name"].tolist() == list_models()
    assert listing("protocols")["name"].tolist() == list(PROTOCOLS)
    assert listing("label-schemes")["name"].tolist() == list(SCHEMES)
    assert listing("corpora")["name"].tolist() == list(list_corpora())
    assert listing("recipes")["name"].tolist() == list(RECIPE_NAMES)
    amh = listing("variants", "amh")
    assert amh["name"].str.replace(" (default)", "").tolist() == list(list_variants("amh"))
    assert (amh["name"] == f"{get_card('amh').default_variant} (default)").sum() == 1
    every = listing("variants")
    assert len(every) == sum(len(list_variants(m)) for m in list_models())


def test_list_command_prints_the_table_and_refuses_unknown_names(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["list", "protocols"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "description"] and len(out) == 1 + len(PROTOCOLS)
    assert out[1].startswith("loso_session ")
    assert cli.main(["list", "variants", "no_such_model"]) == 1
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
    with pytest.raises(WorkbenchError, match="narrows only 'variants'"):
        listing("models", "amh")
    with pytest.raises(SystemExit):
        cli.main(["list", "nouns"])


def test_format_table_keeps_long_descriptions_whole() -> None:
    import pandas as pd

    text = format_table(pd.DataFrame({"name": ["x"], "description": ["w " * 100]}))
    assert text.splitlines()[1] == "x     " + ("w " * 100).rstrip()


def test_developer_tools_take_the_option_names_of_the_workbench_command() -> None:
    renamed = {"--preset": "--recipe or --corpus-size", "--corpus-preset": "--corpus-size", "--seed": "--corpus-seed"}
    found = {(tool.name, opt) for tool in sorted((ROOT / "tools").glob("*.py"))
             for opt in re.findall(r"add_argument\(\s*\"(--[a-z-]+)\"", tool.read_text())}
    assert any(opt == "--corpus-size" for _, opt in found)
    assert not [(t, o, renamed[o]) for t, o in found if o in renamed]


@pytest.mark.parametrize("package, names", [
    ("workbench.corpus", ["load_corpus", "prepare_iemocap", "prepare_meld", "prepare_msp_podcast", "import_table"]),
    ("workbench.models", ["list_models", "list_variants", "get_card", "create_model"]),
])
def test_the_guides_functions_are_public_names_of_their_package(package: str, names: list[str]) -> None:
    """The API reference documents a package's ``__all__`` (docs/api/*.md: ``::: package``)."""
    module = importlib.import_module(package)
    assert set(names) <= set(module.__all__)
    assert all(callable(getattr(module, n)) for n in names)
    pages = "".join(p.read_text() for p in (ROOT / "docs" / "api").glob("*.md"))
    assert f"::: {package}\n" in pages
