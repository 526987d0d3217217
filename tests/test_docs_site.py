"""The docs site's griffe extension (tools/griffe_doctests.py): docstring doctests become code."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fence_doctests():
    spec = importlib.util.spec_from_file_location("tools_griffe_doctests", ROOT / "tools" / "griffe_doctests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fence_doctests


def test_doctest_blocks_are_fenced_up_to_the_blank_line():
    fence = _fence_doctests()
    text = "Why a name is refused.\n\n>>> f('a b')\n... # continued\n'has a space'\n\nMore prose.\n  >>> g()\n  1"
    assert fence(text).splitlines() == [
        "Why a name is refused.", "",
        "```pycon", ">>> f('a b')", "... # continued", "'has a space'", "```", "",
        "More prose.",
        "  ```pycon", "  >>> g()", "  1", "  ```",
    ]


def test_text_without_doctests_and_fenced_code_are_left_as_they_are():
    fence = _fence_doctests()
    plain = "A [link](x.md) and a list:\n\n- one\n- two"
    fenced = "Example:\n\n```python\n>>> not a doctest here\n```\n"
    assert fence(plain) == plain
    assert fence(fenced) == fenced
