"""Build a registered model for training from its recipe, options and features.

The model's card (``workbench.models.card``) says which inputs it reads under a config and
which config fields take each input's feature size and frame period, so nothing here builds a
model to find out. The returned config is the exact keyword config (JSON-able) that rebuilds
the model; runs store it.

>>> from types import SimpleNamespace
>>> from workbench.training.recipes import get_recipe
>>> feats = {"audio": SimpleNamespace(dim=34, frame_seconds=0.04), "text": SimpleNamespace(dim=384, frame_seconds=None)}
>>> build_config("xu_alignment", get_recipe("xu_alignment", "smoke"), None, feats, n_classes=4)
{'hidden': 16, 'heads': 2, 'attn_dim': 8, 'fc_dim': 32, 'n_classes': 4, 'audio_dim': 34, 'text_dim': 384, 'frame_seconds': 0.04}
>>> model_inputs_of("pepino_text", get_recipe("pepino_text", "paper"))
('text',)
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Protocol

import torch

from workbench.errors import WorkbenchError
from workbench.models.registry import create_model, get_card
from workbench.training.recipes import Recipe


class FeatureShape(Protocol):
    """What building needs of an input's features (``crossval.InputFeatures`` has both)."""

    dim: int
    frame_seconds: float | None


def model_inputs_of(model: str, recipe: Recipe, model_options: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The inputs ``model`` reads with the recipe's config and these options (e.g. pepino_text
    reads only text), from its card: no model is built. Unknown option names are not checked
    here; :func:`build_model` rejects them."""
    return get_card(model).model_inputs({**recipe.model_config, **dict(model_options or {})})


def build_config(model: str, recipe: Recipe, model_options: Mapping[str, Any] | None,
                 features: Mapping[str, FeatureShape] | None, n_classes: int) -> dict[str, Any]:
    """The keyword config of ``model``: recipe overrides, then ``model_options``, then
    ``n_classes`` and the feature sizes, frame periods and layer counts of the inputs it reads
    (into the fields its card names). JSON-able: tuples become lists, as a stored config reads back."""
    base = {**recipe.model_config, **dict(model_options or {})}
    card = get_card(model)
    reads = card.model_inputs(base)
    given = {k: f for k, f in (features or {}).items() if k in reads}  # a branch model gets its parent's features
    derived: dict[str, Any] = {"n_classes": n_classes}
    derived.update({fld: given[k].dim for k, fld in card.dims.items() if k in given})
    derived.update({fld: given[k].frame_seconds for k, fld in card.frame_periods.items()
                    if k in given and given[k].frame_seconds is not None})
    # features that declare no layers (every extractor but the speech encoders') are one block
    derived.update({fld: int(getattr(given[k], "n_layers", 1)) for k, fld in card.layer_counts.items() if k in given})
    return json.loads(json.dumps({**base, **derived}))


def build_model(model: str, recipe: Recipe, model_options: Mapping[str, Any] | None,
                features: Mapping[str, FeatureShape] | None, n_classes: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Create ``model`` with :func:`build_config`; returns the model and that config."""
    config = build_config(model, recipe, model_options, features, n_classes)
    try:
        return create_model(model, **config), config
    except ValueError as e:  # an unknown or ill-typed field: most often from --model-options
        given = f" (model_options / --model-options gave {sorted(model_options)})" if model_options else ""
        raise ModelOptionsError(f"{' '.join(str(e).split())}{given}") from None


class ModelOptionsError(WorkbenchError, ValueError):
    """A model config the model does not accept (an unknown field from ``model_options``); the
    message names the model, the field and the known ones."""


__all__ = ["FeatureShape", "ModelOptionsError", "build_config", "build_model", "model_inputs_of"]
