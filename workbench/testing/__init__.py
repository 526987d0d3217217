"""Factories for in-memory test data (lhotse-style ``testing/``): no audio, no disk, seeded."""

from workbench.testing.dummies import make_manifest, make_utterance

__all__ = ["make_manifest", "make_utterance"]
