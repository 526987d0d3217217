"""What a cross-validation run is, as three frozen values that travel together.

They mirror the option groups of ``workbench train``: :class:`RunSpec` (model, training recipe,
protocol, folds, seeds, options), :class:`CorpusOptions` (which corpus, where, which size) and
:class:`~workbench.distributed.BackendOptions` (where the trainings execute; it lives with
the executor, :mod:`workbench.distributed`, and is re-exported here). ``run_crossval`` takes
these instead of two dozen keyword arguments, and a worker on another machine receives them
whole.

>>> spec = RunSpec.create("mcsan", "demo", seeds=(0, 1), epochs=2)
>>> spec.protocol, spec.settings.epochs, spec.seeds
('loso_session', 2, (0, 1))
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.corpus.manifest import Manifest
from workbench.distributed import BackendOptions  # noqa: F401  (re-exported: the training API names all three values)
from workbench.errors import WorkbenchError, deprecated
from workbench.training.recipes import Recipe, apply_encoders, get_recipe


class SpecError(WorkbenchError, ValueError):
    """A run specification asks for something impossible; the message names the field."""


#: The texts a model can read: the corpus's human transcript or the ASR transcript.
TEXT_SOURCES = ("oracle", "asr")


@dataclass(frozen=True)
class RunSpec:
    """One model configuration to cross-validate: which folds, which seeds, which settings.

    ``settings`` is the resolved training recipe, a :class:`Recipe` (epochs already
    overridden); ``folds`` selects folds by index or name (None: all); ``text_source``
    ("oracle" or "asr") is the text the model reads, in training and in testing. The model's variant is ``settings.variant``.
    """

    model: str
    settings: Recipe
    protocol: str
    protocol_options: Mapping[str, Any] = field(default_factory=dict)
    folds: tuple[int | str, ...] | None = None
    seeds: tuple[int, ...] = (0,)
    model_options: Mapping[str, Any] = field(default_factory=dict)
    device: str = "auto"
    text_source: str = "oracle"

    @staticmethod
    def create(model: str, recipe: str | Recipe = "demo", *, protocol: str | None = None,
               protocol_options: Mapping[str, Any] | None = None, folds: Sequence[int | str] | None = None,
               seeds: Sequence[int] = (0,), model_options: Mapping[str, Any] | None = None,
               epochs: int | None = None, device: str = "auto", text_source: str = "oracle",
               variant: str | None = None, label_scheme: str | None = None, text_encoder: str | None = None,
               speech_encoder: str | None = None) -> "RunSpec":
        """Resolve the training ``recipe`` (paper, demo or smoke, or a :class:`Recipe`) for ``model``
        and ``variant`` (one the model's card declares; None: the default configuration);
        ``epochs`` overrides the recipe's; ``protocol`` and ``label_scheme`` default to the recipe's.
        ``text_encoder`` (a Hugging Face text checkpoint, name or directory, or a GloVe file)
        and ``speech_encoder`` (a self-supervised speech checkpoint) replace the recipe's
        encoders (:func:`~workbench.training.recipes.apply_encoders`); one given to a model
        without such an input is a :class:`SpecError`."""
        if text_source not in TEXT_SOURCES:
            raise SpecError(f"text_source must be one of {TEXT_SOURCES}, got {text_source!r}")
        if isinstance(recipe, Recipe):
            if variant is not None and variant != recipe.variant:
                raise SpecError(f"variant {variant!r} given with a recipe built for variant {recipe.variant!r}; "
                                "build the recipe with get_recipe(..., variant=...)")
            try:
                settings = apply_encoders(recipe, text_encoder, speech_encoder)
            except ValueError as e:
                raise SpecError(str(e)) from e
        else:
            try:
                settings = get_recipe(model, recipe, variant=variant, text_encoder=text_encoder,
                                      speech_encoder=speech_encoder)
            except ValueError as e:
                msg = str(e)  # encoder errors name the model already
                raise SpecError(msg if msg.startswith(f"model {model!r}") else f"model {model!r}: {msg}") from e
        if label_scheme is not None:
            from workbench.corpus.labels import SCHEMES

            if label_scheme not in SCHEMES:
                raise SpecError(f"unknown label_scheme {label_scheme!r}; choose one of {sorted(SCHEMES)}")
            settings = settings.replace(label_scheme=label_scheme)
        if epochs is not None:
            if int(epochs) < 1:
                raise SpecError(f"epochs must be at least 1, got {epochs}")
            settings = settings.replace(epochs=int(epochs))
        if not seeds:
            raise SpecError("seeds is empty; give at least one seed")
        options = {**settings.protocol_options, **dict(protocol_options or {})}
        return RunSpec(model=model, settings=settings, protocol=protocol or settings.protocol,
                       protocol_options=options, folds=None if folds is None else tuple(folds),
                       seeds=tuple(int(s) for s in seeds), model_options=dict(model_options or {}),
                       device=device, text_source=text_source)


#: The key of the corpus size in the ``corpus_options`` of runs trained before the rename.
_OLD_SIZE_KEY = "preset"
deprecated("config.json corpus_options key 'preset' (runs trained before the rename; read as 'size')", "0.3")


@dataclass(frozen=True)
class CorpusOptions:
    """Which corpus a run reads: ``name`` for :func:`workbench.corpus.load_corpus`, its ``root``
    (real corpora), and the synthetic corpus's ``size`` (smoke, demo or full) and ``seed`` —
    the notebooks' ``corpus_size`` and ``corpus_seed``, the CLI's ``--corpus-size`` and
    ``--corpus-seed`` (recorded with the results of any corpus; the results column that holds
    the size is ``corpus_preset``: ``workbench.training.results.STORED_NAMES``).

    ``size`` was called ``preset``: :meth:`from_dict` reads the ``"preset"`` key that the
    ``config.json`` of runs trained before the rename hold (until the version in
    :data:`~workbench.errors.DEPRECATIONS`).

    >>> CorpusOptions("synthetic", None, "smoke") == CorpusOptions.from_dict({"name": "synthetic", "preset": "smoke"})
    True
    """

    name: str = "synthetic"
    root: str | None = None
    size: str = "demo"
    seed: int = 0

    def load(self, label_scheme: str) -> Manifest:
        from workbench.corpus import load_corpus

        return load_corpus(self.name, root=self.root, corpus_size=self.size, corpus_seed=self.seed,
                           label_scheme=label_scheme)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps({"name": self.name, "root": None if self.root is None else str(Path(self.root)),
                                      "size": self.size, "seed": self.seed}))

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> "CorpusOptions":
        """The inverse of :meth:`to_dict`; also reads the ``"preset"`` key of older runs'
        ``config.json`` (the size before the rename). Unknown keys are a :class:`SpecError`."""
        options = dict(options)
        if _OLD_SIZE_KEY in options:
            size = options.pop(_OLD_SIZE_KEY)
            options.setdefault("size", size)
        unknown = sorted(set(options) - {"name", "root", "size", "seed"})
        if unknown:
            raise SpecError(f"corpus options: unknown key(s) {unknown}; expected name, root, size, seed")
        return cls(**options)

