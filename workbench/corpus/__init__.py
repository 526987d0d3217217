"""Where utterances come from: corpus loaders and generators, all returning a Manifest.

``load_corpus(name, ...)`` reads any corpus by name (``workbench list corpora``); each real
corpus also has its own ``prepare_*`` function, and ``import_table`` turns any table into a
manifest file.
"""

from workbench.corpus.iemocap import prepare_iemocap
from workbench.corpus.load import load_corpus
from workbench.corpus.manifest import (
    Manifest,
    ManifestError,
    PrepareReport,
    Skipped,
    Utterance,
)
from workbench.corpus.manifest_csv import import_table
from workbench.corpus.meld import prepare_meld
from workbench.corpus.msp_podcast import prepare_msp_podcast

__all__ = ["Manifest", "ManifestError", "PrepareReport", "Skipped", "Utterance", "import_table", "load_corpus",
           "prepare_iemocap", "prepare_meld", "prepare_msp_podcast"]
