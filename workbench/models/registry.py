"""Model registry in the style of timm: ``@register_model(card=...)`` on a builder, registered
under the builder's name, then ``create_model(name, **config)``.

A model file may register several builders, e.g. ``xu_alignment`` and ``xu_alignment_hard``;
every registered name is covered by the registry-driven tests. Each name is registered with
its :class:`~workbench.models.card.ModelCard` (inputs, recipes, CPU sizes, variants), which
:func:`get_card` returns.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable

import torch.nn as nn

from workbench.models.card import ModelCard

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_CARDS: dict[str, ModelCard] = {}


def register_model(*, card: ModelCard) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder ``fn(**config) -> nn.Module`` under its own name (``fn.__name__``, as
    timm does), with its card: ``@register_model(card=CARD)`` over ``def amh(**config)``."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        if not isinstance(card, ModelCard):
            raise TypeError(f"model {name!r}: card must be a ModelCard, got {type(card).__name__}")
        _REGISTRY[name] = fn
        _CARDS[name] = card
        return fn

    return deco


#: The modules whose builders are the built-in models. Each must exist: a missing one is an
#: error (ModuleNotFoundError naming it), never a model silently gone from the registry.
MODEL_MODULES: tuple[str, ...] = ("amh", "cma_raw", "mcsan", "mdre", "pepino_fusion", "ssl_baseline", "unimodal",
                                  "xu_alignment")


def _import_all() -> None:
    # Importing the model files runs their @register_model decorators.
    for module in MODEL_MODULES:
        importlib.import_module(f"workbench.models.{module}")


def list_models() -> list[str]:
    _import_all()
    return sorted(_REGISTRY)


def list_variants(model: str) -> dict[str, str]:
    """The variants ``model``'s card declares: name -> note.

    >>> list_variants("xu_alignment")["fc_literal"][:26]
    'eq. 14 read literally: log'
    """
    return {k: v.note for k, v in get_card(model).variants.items()}


def get_card(name: str) -> ModelCard:
    """The card ``name`` was registered with."""
    _import_all()
    if name not in _CARDS:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(_REGISTRY)}")
    return _CARDS[name]


def create_model(name: str, **config: Any) -> nn.Module:
    """Build a registered model; unknown names or config fields raise naming both."""
    _import_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(_REGISTRY)}")
    try:
        return _REGISTRY[name](**config)
    except TypeError as e:
        raise ValueError(f"model {name!r}: bad config {sorted(config)}: {e}") from e


def build_from_config(model_cls: type[nn.Module], config_cls: type, name: str, **config: Any) -> nn.Module:
    """Helper for builders: check config fields against the dataclass before constructing."""
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"model {name!r}: unknown config field(s) {unknown}; known: {sorted(known)}")
    return model_cls(config_cls(**config))
