"""Training recipes: each paper's settings, plus ``smoke`` and ``demo`` sized for a CPU.

A recipe fixes everything a run needs besides the data: optimiser, learning rate, batch size,
epochs, clipping, warm-up, class weights, label scheme, fold protocol, which feature extractor
feeds each model input, how those features are normalised, and model config overrides.

Every number comes from the model's card (``workbench.models.card``, declared in the model's
own file); this module only derives the CPU recipes and prepares features per extractor.
``paper`` takes the numbers each paper states (sections cited in ``source``); where a paper
is silent (batch size for most, epochs for Xu/AMH/Krishna) the value is ours and the
``notes`` say so. ``demo`` keeps the paper's optimiser and protocol but shrinks hidden sizes,
pools audio frames and trains few epochs so that a 5-fold cross-validation of one model on the
demo corpus (~1,100 utterances) takes about a minute on 2 CPU cores. ``smoke`` is smaller
still (tests and notebook smoke runs).

>>> p = get_recipe("mcsan", "paper")
>>> p.lr, p.batch_size, p.epochs, p.protocol
(0.001, 256, 30, 'tenfold_811')
>>> get_recipe("pepino_early", "paper").features["text"].extractor
'text_contextual'
>>> get_recipe("pepino_early", "paper", text_features="text_static").features["text"].extractor
'text_static'
>>> get_recipe("pepino_text", "paper", text_encoder="bert-base-uncased").features["text"].config
{'checkpoint': 'bert-base-uncased'}
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workbench.models.card import ModelCard, Variant
from workbench.models.registry import get_card

Normalise = Literal["none", "global", "speaker"]
#: The training recipes, each with one line for ``workbench list recipes``.
RECIPE_NOTES: dict[str, str] = {
    "paper": "each paper's own settings (optimiser, epochs, folds, features); GPU-sized",
    "demo": "the paper's optimiser and protocol, smaller models and few epochs: minutes on a CPU",
    "smoke": "a plumbing check (2 epochs, 96 training utterances): scores are expected at chance",
}
RECIPE_NAMES = tuple(RECIPE_NOTES)


def smoke_note() -> str:
    """The line printed under smoke-recipe numbers (CLI, notebooks), which look broken without it."""
    return f"note: smoke recipe = {RECIPE_NOTES['smoke']}; use the demo recipe for numbers that mean something."


@dataclass(frozen=True)
class FeatureSpec:
    """Which extractor (with config) feeds one model input, and how it is prepared.

    ``normalise``: z-normalisation (``workbench.features.normalise``); ``"global"`` statistics
    are fitted on each fold's training utterances only. ``pool``: average every ``pool``
    consecutive frames (a CPU-budget knob; frame_seconds grows by the same factor).
    ``deltas``: append each dimension's first differences after normalising (the model reads
    twice the extractor's dimensions; Pepino et al. sec. 2.2).
    """

    extractor: str
    config: dict[str, Any] = field(default_factory=dict)
    normalise: Normalise = "none"
    pool: int = 1
    deltas: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Recipe:
    """All training settings of one (model, recipe) pair; ``to_dict`` is JSON-serialisable."""

    name: str
    model: str
    features: dict[str, FeatureSpec]
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    epochs: int = 30
    early_stopping_patience: int | None = None  # None: fixed epochs; else stop on val UA
    grad_clip: float | None = None  # max global L2 norm
    warmup_steps: int = 0  # linear warm-up from 0 to lr over this many optimiser steps
    # Loss weighted by the inverse class frequency of the training fold: False (none), True or
    # "weight_sum" (divided by the batch's sum of weights, PyTorch's weighted mean) or
    # "batch_size" (divided by the batch size, as Keras does); see trainer.CLASS_WEIGHT_MODES.
    class_weights: bool | Literal["weight_sum", "batch_size"] = False
    label_scheme: str = "iemocap4"
    protocol: str = "loso_session"
    protocol_options: dict[str, Any] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)
    bucketing: bool = True  # length-bucketed batches (less padding)
    # Only for models whose card declares ``branches`` (Pepino et al.'s fusion models, sec. 2.3.3):
    # "cold_start" (or None: train from scratch), "pretrained" (train the branch models alone on
    # the same fold, load them and train only the fusion layers) or "warm_start" (as pretrained,
    # but the layers right before pooling train too); see ``workbench.training.strategies``.
    fusion_strategy: str | None = None
    # The card's variant these settings realise ("" = the model's default configuration); it is
    # recorded with every result so a run is compared only with the paper rows of that variant.
    variant: str = ""
    max_train_utterances: int | None = None  # subsample training folds (smoke only)
    source: str = ""
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return json.loads(json.dumps(d))  # tuples -> lists: the stored form

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Recipe":
        d = dict(d)
        d["features"] = {k: FeatureSpec(**v) for k, v in d["features"].items()}
        return Recipe(**d)

    def replace(self, **changes: Any) -> "Recipe":
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- features
# How each extractor's features are prepared, whatever model reads them, is declared on the
# extractor (``preparation``, ``cpu_preparation``: workbench.features.base.Extractor): frame
# features are z-normalised with training-fold statistics; waveforms and word embeddings are
# used as they are.
#
# The CPU recipes (demo, smoke) change that per extractor. Recurrent encoders cost per frame,
# so MFCC-like frames are pooled 4x (25 frames/s) and spectrogram frames 2x. The waveform is not
# padded to 10 s and is cut at 4 s; its "speaker" z-normalisation divides by the speaker's RMS:
# a per-speaker gain, which keeps loudness differences between one speaker's utterances.
# Per-speaker z-normalisation of audio (label-free; a test speaker's own statistics) is common
# on IEMOCAP: with ~900 training utterances the models cannot learn to discount the speakers'
# different voices, which global statistics leave in. Measured on the demo corpus (5 folds):
# pepino_audio UA 0.466 -> 0.578, xu_alignment 0.677 -> 0.705. Audio only: the synthetic visual
# descriptors are a speaker vector plus the emotion, so per-speaker statistics would turn video
# into an oracle (amh UA 0.945).
def _feature_spec(extractor: str, cpu: bool) -> FeatureSpec:
    from workbench.features.base import extractor_class

    cls = extractor_class(extractor)
    spec = FeatureSpec(extractor, **copy.deepcopy(dict(cls.preparation)))
    return dataclasses.replace(spec, **copy.deepcopy(dict(cls.cpu_preparation))) if cpu else spec


def _features(card: ModelCard, text_features: str | None, variant: Variant | None, cpu: bool) -> dict[str, FeatureSpec]:
    """Extractor per model input (every input the model's configs may read)."""
    extractors = {k: (text_features or e if k == "text" else e) for k, e in card.inputs.items()}
    extractors.update(variant.inputs if variant else {})
    return {k: _feature_spec(e, cpu) for k, e in extractors.items()}


# --------------------------------------------------------------------------- encoders
def is_glove_file(text_encoder: str) -> bool:
    """Whether ``text_encoder`` names a GloVe text file (an existing file, or a ``.txt`` path)
    rather than a Hugging Face checkpoint (a directory or a name)."""
    path = Path(text_encoder).expanduser()
    return path.is_file() or path.suffix.lower() == ".txt"


def _local(name: str) -> str:
    """An existing local path made absolute (runs started elsewhere find it); names stay names."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def _weights(checkpoint: str) -> str:
    """``", weights sha1 <8 hex>"`` of a checkpoint found on this machine, else "".

    The recipe's notes go into a run's config and hence its run id: a checkpoint directory
    overwritten with other weights gives new runs instead of the old results. A checkpoint
    not found here fails later, at extraction, with the error that says how to provide it.
    """
    from workbench.features.checkpoints import CheckpointError, resolve_checkpoint

    try:
        return f", weights sha1 {resolve_checkpoint(checkpoint).weights_hash[:8]}"
    except CheckpointError:
        return ""


def apply_encoders(recipe: Recipe, text_encoder: str | None = None,
                   speech_encoder: str | None = None) -> Recipe:
    """``recipe`` with the user's encoders in place of the defaults (None keeps the recipe's).

    ``text_encoder``: a Hugging Face text checkpoint (a local directory or a name in the
    Hugging Face cache, ``bert-base-uncased``) becomes the ``checkpoint`` of the text input's
    extractor (``text_contextual`` / ``text_static``); a GloVe text file swaps the text input to
    ``text_glove`` reading it. ``speech_encoder`` becomes the ``checkpoint`` of every audio
    input whose extractor runs a speech model (``ssl_layers``). An encoder given to a model that
    reads no such input raises ``ValueError`` naming the model. Existing local paths are made
    absolute. ``notes`` name the encoders and, for a checkpoint found on this machine, a
    prefix of its weights' hash (so the run id changes with the weights); a checkpoint found
    nowhere fails when features are extracted (``workbench.features.checkpoints``).
    """
    from workbench.features.base import extractor_class, takes_checkpoint

    card = get_card(recipe.model)
    reads = set(card.model_inputs(recipe.model_config))
    features = dict(recipe.features)
    what = f"model {recipe.model!r}" + (f" (variant {recipe.variant})" if recipe.variant else "")
    notes = []
    if text_encoder:
        if "text" not in reads or "text" not in features:
            raise ValueError(f"{what} reads no text, so text_encoder={text_encoder!r} has nothing to replace; "
                             "give a text encoder only to a model with a text input")
        spec = features["text"]
        if is_glove_file(text_encoder):
            if not Path(text_encoder).expanduser().is_file():
                raise ValueError(f"{what}: text_encoder={text_encoder!r}: GloVe file does not exist")
            path = _local(text_encoder)
            features["text"] = dataclasses.replace(spec, extractor="text_glove", config={"path": path})
            notes.append(f"text encoder: GloVe vectors from {Path(path).name}")
        else:
            if not takes_checkpoint(spec.extractor):
                raise ValueError(f"{what}: text_encoder={text_encoder!r}: its text input uses {spec.extractor!r}, "
                                 "which takes no checkpoint; choose text_features='text_contextual' or 'text_static'")
            features["text"] = dataclasses.replace(spec, config={**spec.config, "checkpoint": _local(text_encoder)})
            notes.append(f"text encoder: {text_encoder} ({spec.extractor}{_weights(text_encoder)})")
    if speech_encoder:
        speech = [k for k in sorted(reads) if k in features and extractor_class(features[k].extractor).source == "audio"
                  and takes_checkpoint(features[k].extractor)]
        if not speech:
            audio = sorted(f"{k}: {features[k].extractor}" for k in reads if k in features
                           and extractor_class(features[k].extractor).source == "audio")
            raise ValueError(f"{what} has no self-supervised speech input (its audio inputs: {audio or 'none'}), "
                             f"so speech_encoder={speech_encoder!r} has nothing to replace; give it to a model whose audio "
                             "input is a self-supervised speech extractor")
        for k in speech:
            features[k] = dataclasses.replace(features[k], config={**features[k].config,
                                                                   "checkpoint": _local(speech_encoder)})
        weights = _weights(speech_encoder)
        notes.append(f"speech encoder: {speech_encoder}" + (f" ({weights[2:]})" if weights else ""))
    if not notes:
        return recipe
    return recipe.replace(features=features, notes=_join(recipe.notes, *notes))


# --------------------------------------------------------------------------- recipes
def get_recipe(model: str, name: str = "paper", text_features: str | None = None,
               variant: str | None = None, text_encoder: str | None = None,
               speech_encoder: str | None = None) -> Recipe:
    """The training recipe ``name`` (``paper``, ``demo`` or ``smoke``) for registered ``model``,
    built from the model's card (``workbench.models.card``).

    ``paper`` is the card's paper recipe. ``demo`` and ``smoke`` keep its optimiser and
    protocol (leave-one-session-out where the paper uses 10 folds of 8:1:1), keep the ratios
    of learning rates between the card's variants (:func:`cpu_learning_rate`), take the card's
    CPU model sizes and prepare the features for a CPU (each extractor's ``cpu_preparation``).

    ``text_features`` replaces the text extractor the card declares (None keeps it): the
    cards of papers that used GloVe declare ``text_static`` (static word vectors), those that
    used BERT ``text_contextual`` (see ``workbench.features.text``).
    ``text_encoder`` / ``speech_encoder``: the user's encoders (:func:`apply_encoders`).
    ``variant`` names one of the card's variants (None: the card's ``default_variant``, if any):
    its training settings replace the recipe's
    (the CPU recipes derive from the result), its config overrides go on top of the recipe's
    model sizes, its extractors replace the input's, and ``notes`` name it.

    >>> p = get_recipe("mcsan", "demo", variant="layers_2")
    >>> p.model_config["n_layers"], p.model_config["hidden"]
    (2, 48)
    """
    if name not in RECIPE_NAMES:
        raise ValueError(f"unknown training recipe {name!r}; choose one of {RECIPE_NAMES}")
    card = get_card(model)
    variant = variant or card.default_variant or None  # a run without a variant is the card's default
    var = card.variant(variant) if variant is not None else None
    paper = {**card.recipes["paper"], **(var.recipe if var else {})}
    tag = f"variant {variant}: {var.note}" if var else ""
    if tag:
        paper["notes"] = _join(paper.get("notes", ""), tag)
    overrides = dict(var.config) if var else {}
    base = Recipe(name="paper", model=model, features=_features(card, text_features, var, cpu=False),
                       model_config=overrides, variant=variant or "", **paper)
    if name == "paper":
        return apply_encoders(base, text_encoder, speech_encoder)
    common = dict(features=_features(card, text_features, var, cpu=True), early_stopping_patience=None,
                  batch_size=32, warmup_steps=0, lr=cpu_learning_rate(card, base.lr), grad_clip=1.0,
                  # paper 10-fold protocols are 10 trainings; on CPU the demo uses leave-one-session-out
                  protocol="loso_session" if base.protocol == "tenfold_811" else base.protocol)
    if name == "demo":
        cpu = base.replace(name="demo", epochs=6, model_config={**card.demo, **overrides},
                           notes=_join(f"CPU demo of: {base.source}", tag), **common)
    else:
        cpu = base.replace(name="smoke", epochs=2, model_config={**card.smoke, **overrides}, max_train_utterances=96,
                           notes=_join(f"smoke test of: {base.source}", tag), **common)
    return apply_encoders(cpu, text_encoder, speech_encoder)


def cpu_learning_rate(card: ModelCard, lr: float) -> float:
    """The CPU recipes' learning rate for a paper rate ``lr`` of ``card``'s model: twice the
    paper's general rate (at least 1e-3: the CPU recipes train few epochs), and every variant's
    rate by the same factor, so the ratios a paper sets between variants stay (Pepino et al.:
    EF-CS and EF-PT 7e-4, EF-WS 1e-4, LF-PT 0.01 become 2e-3, 2.9e-4 and 0.029).

    >>> from workbench.models import get_card
    >>> [cpu_learning_rate(get_card("pepino_early"), lr) for lr in (7e-4, 1e-4, 0.01)]
    [0.002, 0.000285714285714, 0.0285714285714]
    """
    base = card.base_lr or float(card.recipes["paper"].get("lr", lr))
    # rounded to 12 significant digits: the rate is part of the run id, so 2e-3 stays 2e-3
    return float(f"{lr * max(base, 1e-3) * 2 / base:.12g}")


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def needs_user_encoder(model: str) -> bool:
    """Whether ``model`` reads features of an extractor with no default weights (a
    self-supervised speech model): it runs only with ``speech_encoder`` (or ``text_encoder``)
    naming the user's checkpoint."""
    from workbench.features.base import extractor_class

    return any(extractor_class(e).needs_checkpoint for e in get_card(model).inputs.values())
