"""The docs site's griffe extension (tools/griffe_doctests.py): docstring doctests become code."""

from tool_modules import load_tool


def _fence_doctests():
    return load_tool("griffe_doctests").fence_doctests


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
