"""Model cards: what each registered model declares for the rest of the library (timm's
``default_cfgs``), so that training code reads a declaration instead of guessing from names.

A card sits next to its ``@register_model`` entry in the model's own file. Everything in it
is plain data: extractor names are strings because models sit above ``workbench.features``
and below ``workbench.training`` and import neither; recipes are plain dicts of
``workbench.training.recipes.Recipe`` fields, which the recipes turn into settings.

>>> card = ModelCard(inputs={"audio": "mfcc120"}, recipes={"paper": {"lr": 1e-3, "source": "X et al., sec. 4"}},
...                  dims={"audio": "audio_dim"}, variants={"wide": Variant("twice the width", {"hidden": 256})})
>>> card.model_inputs(), card.variant("wide").config
(('audio',), {'hidden': 256})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

#: The model inputs that are (batch, steps, ...) sequences with a ``<name>_mask``: the keys a
#: card's ``inputs`` may use. The one definition: batching (``workbench.training.data``) and
#: the test batches (``workbench.testing.model_inputs``) read it from here. "prosody": frame-level
#: prosodic descriptors read beside the audio frames (MDRE, Yoon et al. 2018).
SEQUENCE_INPUTS: tuple[str, ...] = ("audio", "text", "video", "waveform", "prosody")


@dataclass(frozen=True)
class Variant:
    """A named alternative of a registered model (an ablation, a hop count, a training
    strategy): ``config`` overrides the model config, ``recipe`` overrides training settings
    (``Recipe`` fields, e.g. ``fusion_strategy`` and ``lr``), ``inputs`` swaps the
    extractor of an input. ``note`` says what it is and where the paper reports it."""

    note: str
    config: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelCard:
    """The data contract of one registered model.

    - ``inputs``: every input any config of the model may read -> the extractor that feeds it
      (``text`` names the default text extractor; recipes let the caller swap it).
    - ``recipes``: ``"paper"`` (required) and any other named recipe -> ``Recipe``
      settings, with ``source`` citing the paper section and ``notes`` for what is ours.
    - ``demo`` / ``smoke``: model config overrides that fit a CPU (demo) or a test (smoke).
    - ``dims``: input -> config field that receives its feature size; ``frame_periods``:
      input -> config field that receives its frame period in seconds; ``layer_counts``: input
      -> config field that receives the number of equal blocks (encoder layers) each of its
      frames concatenates (the extractor's ``n_layers``; 1 for features without layers).
    - ``variants``: name -> :class:`Variant`; ``default_variant`` names the one that *is* the
      default configuration (e.g. AMH's ``hops_7``), so a run without a variant is recorded,
      and compared with the papers, as that variant ("" when none is).
    - ``branches``: for models trained by first training sub-models (Pepino et al.'s
      pre-trained fusion), branch name -> registered model; the model class then provides
      ``load_branches(strategy, **trained)`` (see ``workbench.training.strategies``).
    - ``reads``: the inputs the model reads under a config (its ``.inputs``), when they
      depend on the config; None: the keys of ``inputs``.
    - ``base_lr``: the paper's general learning rate, the one its variants' rates depart from
      (Pepino et al. sec. 3: 7e-4, with 1e-4 to fine-tune and 0.01 for LF-PT). The CPU recipes
      scale every variant's rate by the one factor that takes ``base_lr`` to the CPU rate, so
      the ratios the paper sets between variants stay. None: the paper recipe's ``lr``.

    Consumers copy what they take from a card: cards are shared, module-level values.
    """

    inputs: Mapping[str, str]
    recipes: Mapping[str, Mapping[str, Any]]
    demo: Mapping[str, Any] = field(default_factory=dict)
    smoke: Mapping[str, Any] = field(default_factory=dict)
    dims: Mapping[str, str] = field(default_factory=dict)
    frame_periods: Mapping[str, str] = field(default_factory=dict)
    layer_counts: Mapping[str, str] = field(default_factory=dict)
    variants: Mapping[str, Variant] = field(default_factory=dict)
    default_variant: str = ""
    branches: Mapping[str, str] = field(default_factory=dict)
    reads: Callable[[Mapping[str, Any]], tuple[str, ...]] | None = None
    base_lr: float | None = None

    def __post_init__(self) -> None:
        if self.default_variant and self.default_variant not in self.variants:
            raise ValueError(f"default_variant {self.default_variant!r} is not one of the variants {sorted(self.variants)}")

    def model_inputs(self, config: Mapping[str, Any] | None = None) -> tuple[str, ...]:
        """What the model built with ``config`` (overrides of its defaults) reads, in its order."""
        return tuple(self.reads(dict(config or {}))) if self.reads is not None else tuple(self.inputs)

    def variant(self, name: str) -> Variant:
        if name not in self.variants:
            raise ValueError(f"unknown variant {name!r}; declared: {sorted(self.variants) or 'none'}")
        return self.variants[name]
