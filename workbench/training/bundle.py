"""Training bundles: one model's features and the manifest in a single file.

A GPU machine often lacks what feature extraction needs (espeak-ng, openSMILE, the text
model, the corpus audio). ``export_bundle`` runs the extractors here, through the feature
cache, and writes what ``run_crossval`` reads for one (model, recipe): the manifest and each
model input's pooled, not yet normalised features (normalisation statistics depend on the
fold, so they are computed where the training runs). ``workbench train MODEL --bundle FILE``
then trains on any machine with torch, numpy and pandas.

A bundle holds one text source: ``export_bundle(..., text_source="asr")`` transcribes the
corpus here (pocketsphinx is one more thing a GPU machine may lack) and stores the ASR manifest
(transcripts, recogniser timings, per-utterance word errors) with features made from it;
:func:`crossval_from_bundle` refuses a run whose ``text_source`` is not the bundle's.

The file is an ``.npz`` (uncompressed, or deflated with ``compress``; features shrink by
about an eighth) read with ``allow_pickle=False``: per input, all
utterances' arrays concatenated along their first axis plus one length per utterance, and a
JSON header (format version, corpus, model, recipe, feature specs, manifest records).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from workbench.corpus.manifest import Manifest, Utterance
from workbench.errors import WorkbenchError
from workbench.io import atomic_write
from workbench.training.build import model_inputs_of
from workbench.training.inputs import InputFeatures, check_extractors_ready, load_input_features
from workbench.training.recipes import FeatureSpec, Recipe, get_recipe
from workbench.training.results import BUNDLE_STORED_NAMES
from workbench.training.spec import BackendOptions, CorpusOptions, RunSpec
from workbench.training.texts import asr_engine_of, text_source_of, texts_for

FORMAT = "ser-workbench-bundle/1"


class BundleError(WorkbenchError, ValueError):
    """A bundle file cannot be read, or does not fit the recipe it is trained with."""


def save_bundle(path: str | Path, manifest: Manifest, features: Mapping[str, InputFeatures],
                meta: Mapping[str, Any] | None = None, compress: bool = False) -> Path:
    """Write ``manifest`` and ``features`` (input -> :class:`InputFeatures`) atomically to ``path``,
    deflated with ``compress`` (slower to write and read, smaller to copy)."""
    ids = manifest.ids
    header: dict[str, Any] = {"format": FORMAT, **dict(meta or {}), "inputs": {},
                              "manifest": [u.to_dict() for u in manifest]}
    arrays: dict[str, np.ndarray] = {}
    for name, f in features.items():
        missing = [i for i in ids if i not in f.data]
        if missing:
            raise BundleError(f"input {name!r} has no features for {len(missing)} utterance(s), e.g. {missing[:3]}")
        parts = [np.asarray(f.data[i], dtype=np.float32) for i in ids]
        arrays[f"{name}/values"] = np.concatenate(parts, axis=0) if parts else np.zeros((0,), np.float32)
        arrays[f"{name}/lengths"] = np.array([p.shape[0] for p in parts], dtype=np.int64)
        # one sum per utterance: a length table shifted between two utterances keeps the total
        # but moves rows from one to the other, which these sums catch on load
        arrays[f"{name}/sums"] = np.array([float(p.sum(dtype=np.float64)) for p in parts], dtype=np.float64)
        if f.valid_lengths is not None:
            arrays[f"{name}/valid"] = np.array([f.valid_lengths[i] for i in ids], dtype=np.int64)
        header["inputs"][name] = {"spec": f.spec.to_dict(), "frame_seconds": f.frame_seconds, "dim": f.dim,
                                  "n_layers": f.n_layers}
    arrays["header"] = np.array(json.dumps(header))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare name
            (np.savez_compressed if compress else np.savez)(fh, **arrays)

    return atomic_write(Path(path), write)


def load_bundle(path: str | Path) -> tuple[Manifest, dict[str, InputFeatures], dict[str, Any]]:
    """Read a bundle: (manifest, input -> :class:`InputFeatures`, header without the manifest)."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such bundle file (write one with `workbench bundle MODEL --out {path}`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            if not isinstance(header, dict):
                raise BundleError(f"{path}: the header is a JSON {type(header).__name__}, not an object")
            if header.get("format") != FORMAT:
                raise BundleError(f"{path}: format {header.get('format')!r}, expected {FORMAT!r}")
            manifest = Manifest(_utterances(header.pop("manifest", None), path))
            ids = manifest.ids
            if not isinstance(header.get("inputs"), dict):
                raise BundleError(f"{path}: the header's 'inputs' is not an object of input -> spec")
            features: dict[str, InputFeatures] = {}
            for name, info in header["inputs"].items():
                values, lengths = z[f"{name}/values"], z[f"{name}/lengths"]
                if len(lengths) != len(ids) or int(lengths.sum()) != values.shape[0] or (lengths < 0).any():
                    raise BundleError(f"{path}: input {name!r} holds {values.shape[0]} rows in {len(lengths)} "
                                      f"utterances, which does not match its lengths or the {len(ids)} manifest rows")
                parts = np.split(values, np.cumsum(lengths)[:-1]) if len(ids) else []
                if f"{name}/sums" in z:  # bundles written before the sums existed are not checked
                    sums = np.array([p.sum(dtype=np.float64) for p in parts])
                    off = np.flatnonzero(~np.isclose(sums, z[f"{name}/sums"], rtol=1e-9, atol=1e-6))
                    if len(off):
                        raise BundleError(f"{path}: input {name!r}: the rows of {len(off)} utterance(s) do not sum to "
                                          f"what was written, e.g. {ids[off[0]]!r} (a shifted or damaged length "
                                          "table); export the bundle again")
                data = dict(zip(ids, parts))
                valid = dict(zip(ids, (int(v) for v in z[f"{name}/valid"]))) if f"{name}/valid" in z else None
                features[name] = InputFeatures(FeatureSpec(**info["spec"]), data, info["frame_seconds"],
                                               int(info["dim"]), valid, n_layers=int(info.get("n_layers", 1)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, BundleError):
            raise
        raise BundleError(f"{path}: not a readable training bundle ({type(e).__name__}: {e})") from e
    return manifest, features, header


def _utterances(records: Any, path: Path) -> list[Utterance]:
    """The header's manifest records as utterances; :class:`BundleError` naming the record and
    the key a record does not fit (an extra key once gave a raw TypeError)."""
    if not isinstance(records, list):
        raise BundleError(f"{path}: the header's 'manifest' is not a list of utterance records")
    out = []
    for k, d in enumerate(records):
        if not isinstance(d, dict):
            raise BundleError(f"{path}: manifest record {k} is a {type(d).__name__}, not an object")
        try:
            out.append(Utterance.from_dict(d))
        except (TypeError, ValueError, KeyError) as e:
            raise BundleError(f"{path}: manifest record {k} ({d.get('id', '?')!r}) does not fit an utterance "
                              f"({' '.join(str(e).split())[:160]})") from None
    return out


def check_bundle(header: Mapping[str, Any], recipe: Recipe, inputs: tuple[str, ...], path: str | Path) -> None:
    """Raise :class:`BundleError` unless the bundle holds every input the model reads, made
    with the feature specs of ``recipe`` (another recipe pools or picks features differently)."""
    for name in inputs:
        if name == "word_spans":
            continue
        if name not in recipe.features:
            raise BundleError(f"recipe {recipe.name!r} of model {recipe.model!r} names no features for input {name!r}")
        if name not in header["inputs"]:
            raise BundleError(f"{path}: no features for input {name!r} of model {recipe.model!r} "
                              f"(the bundle has {sorted(header['inputs'])}; it was made for model "
                              f"{header.get('model')!r})")
        have, want = header["inputs"][name]["spec"], recipe.features[name].to_dict()
        if json.loads(json.dumps(want)) != have:
            raise BundleError(f"{path}: input {name!r} was made with {have}, but recipe {recipe.name!r} of model "
                              f"{recipe.model!r} reads {want}; export the bundle with that recipe (--recipe)")


def export_bundle(model: str, out: str | Path, recipe: str = "demo", corpus: CorpusOptions = CorpusOptions(),
                  cache: Any = None, progress: bool = True, compress: bool = False,
                  text_source: str = "oracle") -> Path:
    """Load ``corpus``, extract (or read from the cache) the inputs of ``model`` under training
    recipe ``recipe`` and write them with the manifest to the
    file ``out``; with ``text_source="asr"`` the manifest and the text inputs are those of the
    ASR transcripts (decoded here, cached). The header's keys for the recipe and the corpus size
    are their stored names (``workbench.training.results.BUNDLE_STORED_NAMES``)."""
    from workbench.features.asr import asr_cache_path

    settings = get_recipe(model, recipe)
    check_extractors_ready(model, settings, model_inputs_of(model, settings))  # before the corpus is generated
    manifest = corpus.load(settings.label_scheme)
    manifest, _ = texts_for(manifest, text_source, cache_path=asr_cache_path(getattr(cache, "root", None)),
                            progress=progress)
    inputs = model_inputs_of(model, settings)
    features = load_input_features(manifest, settings, inputs, cache=cache, progress=progress)
    meta = {"model": model, BUNDLE_STORED_NAMES["recipe"]: recipe, "corpus": corpus.name,
            BUNDLE_STORED_NAMES["corpus_size"]: corpus.size,
            "corpus_seed": corpus.seed, "label_scheme": settings.label_scheme, "text_source": text_source,
            "asr_engine": asr_engine_of(manifest)}
    return save_bundle(out, manifest, features, meta, compress=compress)


def crossval_from_bundle(path: str | Path, spec: RunSpec, backend: BackendOptions = BackendOptions(), *,
                         runs_root: str | Path | None = None, rerun: bool = False,
                         progress: bool = True) -> pd.DataFrame:
    """:func:`run_crossval` of ``spec`` on a bundle's manifest and features (no corpus, cache or
    extractor needed) into the runs folder ``runs_root``. Result
    rows name the bundle's corpus and corpus size."""
    from workbench.training.crossval import run_crossval

    manifest, features, header = load_bundle(path)
    if text_source_of(manifest) != spec.text_source:
        raise BundleError(f"{path}: the bundle holds {text_source_of(manifest)!r} text and features made from it, but "
                          f"the run asks for text_source={spec.text_source!r}; export a bundle with "
                          f"text_source={spec.text_source!r}")
    # Labels outside the recipe's scheme are refused by run_crossval's own manifest check.
    check_bundle(header, spec.settings, model_inputs_of(spec.model, spec.settings, spec.model_options), path)
    corpus = CorpusOptions(header.get("corpus", "bundle"), size=header.get(BUNDLE_STORED_NAMES["corpus_size"], "bundle"),
                           seed=int(header.get("corpus_seed", 0)))
    return run_crossval(spec, corpus, backend, runs_root=runs_root, manifest=manifest, features=features, rerun=rerun,
                        progress=progress)
