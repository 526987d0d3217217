"""Test helpers: factories for in-memory test data (lhotse-style ``testing/``: no audio, no
disk, seeded), tiny notebooks for grid tests, and a Ctrl-C sent from inside a test."""

from workbench.testing.dummies import make_manifest, make_utterance
from workbench.testing.notebooks import write_notebook
from workbench.testing.signals import interrupt_when

__all__ = ["interrupt_when", "make_manifest", "make_utterance", "write_notebook"]
