"""Every deprecation names the version that removes it, and that version has not come yet.

``workbench.errors.DEPRECATIONS`` is filled at import time by ``deprecated`` and
``renamed_keywords``; this test imports every module of the package so that none is missed,
then fails for each entry whose removal version ``workbench.__version__`` has reached: remove
that shim (and its entry) before releasing the version.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest

import workbench
from workbench.errors import DEPRECATIONS, deprecated, renamed_keywords

ROOT = Path(__file__).resolve().parents[1]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.match(r"\d+(\.\d+)*", text).group(0).split("."))


def _import_everything() -> None:
    for module in pkgutil.walk_packages(workbench.__path__, "workbench."):
        if module.name.startswith("workbench.testing"):
            continue
        importlib.import_module(module.name)


def test_the_package_version_is_the_one_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert workbench.__version__ == declared


def test_no_deprecation_outlives_its_removal_version() -> None:
    _import_everything()
    assert DEPRECATIONS, "the registry is empty: the stored-name readers register themselves"
    current = _version(workbench.__version__)
    due = {what: version for what, version in DEPRECATIONS.items() if _version(version) <= current}
    assert not due, f"remove these deprecations, their version {workbench.__version__} has come: {due}"


def test_the_registry_fills_itself_and_refuses_a_deprecation_without_a_version() -> None:
    @renamed_keywords(version="0.9", old="new")
    def f(new: int = 0) -> int:
        return new

    try:
        assert DEPRECATIONS["test_the_registry_fills_itself_and_refuses_a_deprecation_without_a_version.<locals>.f(old=)"] == "0.9"
        with pytest.warns(DeprecationWarning, match=r"goes in version 0.9; use new="):
            assert f(old=3) == 3
    finally:
        DEPRECATIONS.pop("test_the_registry_fills_itself_and_refuses_a_deprecation_without_a_version.<locals>.f(old=)")
    with pytest.raises(TypeError):
        renamed_keywords(old="new")  # type: ignore[call-arg]  # no version: refused
    with pytest.raises(ValueError, match="not like"):
        deprecated("x", "soon")


def _parsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(parser.prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                out += _parsers(child)
    return out


def test_a_hidden_cli_option_is_a_registered_deprecation() -> None:
    """An old option name kept as a hidden alias (help=SUPPRESS) must be registered, as
    ``"workbench SUBCOMMAND --old"``, with the version that removes it."""
    from workbench.cli import build_parser

    hidden = [f"{prog} {name}" for prog, p in _parsers(build_parser()) for a in p._actions
              if a.help == argparse.SUPPRESS and a.option_strings and "--debug" not in a.option_strings
              for name in a.option_strings]
    assert [h for h in hidden if h not in DEPRECATIONS] == []
