"""Where utterances come from: corpus loaders and generators, all returning a Manifest."""

from workbench.corpus.load import load_corpus
from workbench.corpus.manifest import (
    Manifest,
    ManifestError,
    PrepareReport,
    Skipped,
    Utterance,
)

__all__ = ["Manifest", "ManifestError", "PrepareReport", "Skipped", "Utterance", "load_corpus"]
