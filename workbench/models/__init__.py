"""Models: one paper per file, all registered and all returning ModelOutput."""

from workbench.models.outputs import ModelOutput
from workbench.models.registry import create_model, list_models, register_model

__all__ = ["ModelOutput", "create_model", "list_models", "register_model"]
