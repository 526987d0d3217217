"""One entry point the notebooks use to get a manifest, whatever the corpus: the corpus is
looked up in the registry (:mod:`workbench.corpus.registry`) and its loader called."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.corpus.labels import get_scheme
from workbench.corpus.manifest import Manifest
from workbench.corpus.registry import CorpusChoiceError, get_corpus
from workbench.corpus.synthetic import synthetic_root  # noqa: F401  (lived here first)


def load_corpus(
    corpus: str = "synthetic",
    root: str | Path | None = None,
    corpus_size: str = "smoke",
    corpus_seed: int = 0,
    label_scheme: str | None = None,
    data_dir: str | Path | None = None,
    **options: Any,
) -> Manifest:
    """Load a corpus into a Manifest, optionally keeping only the classes of ``label_scheme``.

    ``corpus="synthetic"`` generates (once) and reads the built-in corpus of size
    ``corpus_size`` (smoke ~200 utterances, demo ~2,000, full ~10,000) and seed ``corpus_seed``
    (the names the notebooks' parameters have); ``corpus="iemocap"`` reads a real IEMOCAP_full_release at ``root``;
    ``"meld"`` a MELD.Raw folder (audio decoded once into ``<data_dir>/meld_audio``);
    ``"msp_podcast"`` an MSP-Podcast release folder; ``"csv"`` a CSV/TSV/Parquet table at
    ``root`` (``columns={field: column}`` maps its columns); any other registered corpus
    (:func:`~workbench.corpus.registry.register_corpus`) likewise. ``options`` go to the corpus's
    loader (e.g. ``splits=``, ``workers=`` for MELD; ``columns=``, ``labels=`` for
    csv; ``strict=`` for all real corpora). The loader's report of skipped items stays on
    ``manifest.report``.
    """
    entry = get_corpus(corpus)
    if entry.root is None:  # generated: sized, never read from a root
        manifest = entry.load(None, data_dir=data_dir, corpus_size=corpus_size, corpus_seed=corpus_seed, **options)
    elif root is None:
        raise CorpusChoiceError(f"corpus={corpus!r} needs root= pointing at {entry.root}")
    else:
        manifest = entry.load(root, data_dir=data_dir, **options)
    if label_scheme is not None:
        report = manifest.report
        scheme = get_scheme(label_scheme)
        kept = scheme.apply(manifest)
        if len(manifest) and not len(kept):
            seen = sorted({str(scheme.code_of(u)) for u in manifest})[:20]
            raise CorpusChoiceError(f"label scheme {label_scheme!r} keeps none of the {len(manifest)} "
                             f"utterances of corpus {corpus!r} (codes read from "
                             f"{scheme.source!r}: {seen}); choose a scheme for this corpus")
        manifest = kept
        manifest.report = report
    return manifest
