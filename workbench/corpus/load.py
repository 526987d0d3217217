"""One entry point the notebooks use to get a manifest, whatever the corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench import paths
from workbench.corpus.labels import get_scheme
from workbench.corpus.manifest import Manifest
from workbench.errors import WorkbenchError


class CorpusChoiceError(WorkbenchError, ValueError):
    """An unknown corpus, a missing root, or a label scheme that keeps none of a corpus's utterances."""


def synthetic_root(corpus_size: str = "smoke", corpus_seed: int = 0, data_dir: str | Path | None = None) -> Path:
    """Where the built-in corpus of size ``corpus_size`` (smoke, demo or full) and seed
    ``corpus_seed`` lives; generated on first use."""
    from workbench.corpus.synthetic import generate_corpus

    out = Path(data_dir or paths.data_dir()) / f"synthetic-{corpus_size}-seed{corpus_seed}"
    root = out / "IEMOCAP_full_release"
    if not (root / "SYNTHETIC_README.txt").is_file():
        generate_corpus(out, corpus_size=corpus_size, corpus_seed=corpus_seed, progress=True)
    return root


#: Every corpus ``load_corpus`` reads, with one line for ``workbench list corpora``.
CORPORA: dict[str, str] = {
    "synthetic": "the built-in IEMOCAP-shaped corpus (espeak-ng speech), generated on first use; not IEMOCAP",
    "iemocap": "IEMOCAP_full_release at root= (evaluations, transcripts, .wdseg timings, optional video)",
    "meld": "the MELD.Raw folder at root= (CSVs and mp4 clips; audio decoded once)",
    "msp_podcast": "an MSP-Podcast release at root= (Labels/, Audios/)",
    "csv": "any corpus as a CSV/TSV/Parquet table at root= (columns= maps its columns)",
}


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
    ``root`` (``columns={field: column}`` maps its columns). ``options`` go to the corpus's
    prepare function (e.g. ``splits=``, ``workers=`` for MELD; ``columns=``, ``labels=`` for
    csv; ``strict=`` for all real corpora). The loader's report of skipped items stays on
    ``manifest.report``.
    """
    from workbench.corpus.iemocap import prepare_iemocap

    if corpus not in CORPORA:
        raise CorpusChoiceError(f"unknown corpus {corpus!r}; known: {', '.join(CORPORA)}")
    if corpus != "synthetic" and root is None:
        what = {"iemocap": "IEMOCAP_full_release", "meld": "the MELD.Raw folder",
                "msp_podcast": "the MSP-Podcast folder (Labels/, Audios/)",
                "csv": "the CSV/TSV/Parquet table"}[corpus]
        raise CorpusChoiceError(f"corpus={corpus!r} needs root= pointing at {what}")
    if corpus == "synthetic":
        manifest = prepare_iemocap(synthetic_root(corpus_size, corpus_seed, data_dir), corpus_name="synthetic",
                                   **options)
    elif corpus == "iemocap":
        manifest = prepare_iemocap(root, **options)
    elif corpus == "meld":
        from workbench.corpus.meld import prepare_meld

        if "audio_cache" not in options and data_dir is not None:
            options["audio_cache"] = Path(data_dir) / "meld_audio"
        manifest = prepare_meld(root, **options)
    elif corpus == "msp_podcast":
        from workbench.corpus.msp_podcast import prepare_msp_podcast

        manifest = prepare_msp_podcast(root, **options)
    else:
        from workbench.corpus.manifest_csv import import_table

        manifest = import_table(root, **options)
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
