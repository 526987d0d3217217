"""One entry point the notebooks use to get a manifest, whatever the corpus."""

from __future__ import annotations

from pathlib import Path

from workbench import paths
from workbench.corpus.labels import get_scheme
from workbench.corpus.manifest import Manifest


def synthetic_root(preset: str = "smoke", seed: int = 0, data_dir: str | Path | None = None) -> Path:
    """Where the built-in corpus for (preset, seed) lives; generated on first use."""
    from workbench.corpus.synthetic import generate_corpus

    out = Path(data_dir or paths.data_dir()) / f"synthetic-{preset}-seed{seed}"
    root = out / "IEMOCAP_full_release"
    if not (root / "SYNTHETIC_README.txt").is_file():
        generate_corpus(out, preset=preset, seed=seed, progress=True)
    return root


def load_corpus(
    corpus: str = "synthetic",
    root: str | Path | None = None,
    preset: str = "smoke",
    seed: int = 0,
    label_scheme: str | None = None,
    data_dir: str | Path | None = None,
) -> Manifest:
    """Load a corpus into a Manifest, optionally keeping only the classes of ``label_scheme``.

    ``corpus="synthetic"`` generates (once) and reads the built-in default corpus for
    ``preset``/``seed``; ``corpus="iemocap"`` reads a real IEMOCAP_full_release at ``root``.
    The loader's report of skipped items stays on ``manifest.report``.
    """
    from workbench.corpus.iemocap import prepare_iemocap

    if corpus == "synthetic":
        manifest = prepare_iemocap(synthetic_root(preset, seed, data_dir), corpus_name="synthetic")
    elif corpus == "iemocap":
        if root is None:
            raise ValueError("corpus='iemocap' needs root= pointing at IEMOCAP_full_release")
        manifest = prepare_iemocap(root)
    else:
        raise ValueError(f"unknown corpus {corpus!r}; known: synthetic, iemocap")
    if label_scheme is not None:
        report = manifest.report
        manifest = get_scheme(label_scheme).apply(manifest)
        manifest.report = report
    return manifest
