"""Griffe extension for the docs site (mkdocs.yml): show docstring doctests as code.

The library's docstrings hold bare doctests (``>>>`` lines and their output, run by
``pytest --doctest-modules``). Markdown reads a ``>>>`` line as a nested blockquote and a printed
list as a link reference, so each doctest block (from its first ``>>>`` line to the next blank
line) is wrapped in a ``pycon`` fence before mkdocstrings renders the docstring. The source
files are not changed.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """Wrap every bare doctest block of ``text`` in a ``pycon`` fence; text already fenced is kept."""
    out: list[str] = []
    in_fence = in_doctest = False
    indent = ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if in_doctest and not stripped:
            out.append(f"{indent}```")
            in_doctest = False
        elif not in_doctest and stripped.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and not in_doctest and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
            in_doctest = True
        out.append(line)
    if in_doctest:
        out.append(f"{indent}```")
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


class FenceDoctests(griffe.Extension):
    """Fence the doctests of every loaded object's docstring."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
