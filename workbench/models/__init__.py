"""Models: one paper per file, all registered and all returning ModelOutput."""

from workbench.models.card import ModelCard, Variant
from workbench.models.outputs import ModelOutput
from workbench.models.registry import create_model, get_card, list_models, list_variants, register_model

__all__ = ["ModelCard", "ModelOutput", "Variant", "create_model", "get_card", "list_models", "list_variants",
           "register_model"]
