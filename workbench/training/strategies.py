"""Training strategies that train other models first, generic over the model cards.

A model whose card declares ``branches`` (branch name -> registered model) can be trained by
first training each branch model alone on the same fold, then handing the trained models to
the model's ``load_branches(strategy, **trained)``, which loads them and freezes what the
strategy freezes. Pepino et al.'s fusion models (sec. 2.3.3) are the case today: ``pretrained``
and ``warm_start`` pre-train ``pepino_text`` and ``pepino_audio``; ``cold_start`` (or None)
trains from scratch. The strategy is the recipe's ``fusion_strategy``.

Cross-validation calls, per run::

    if needs_pretraining(spec.model, spec.settings):   # once, before any run: raises StrategyError
        pretrain_branches(model, spec, fold_data, features, run_dir, seed)

>>> from workbench.training.recipes import get_recipe
>>> needs_pretraining("pepino_late", get_recipe("pepino_late", "paper"))
True
>>> needs_pretraining("pepino_late", get_recipe("pepino_late", "paper", variant="cold_start"))
False
>>> needs_pretraining("mcsan", get_recipe("pepino_late", "paper"))
Traceback (most recent call last):
...
workbench.training.strategies.StrategyError: fusion_strategy='pretrained' needs a model whose card declares branches to pre-train (pepino_early / pepino_late only), not 'mcsan'
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from workbench.errors import WorkbenchError
from workbench.models.registry import get_card, list_models
from workbench.training.build import FeatureShape, build_model
from workbench.training.inputs import FoldData
from workbench.training.recipes import RECIPE_NAMES, Recipe, get_recipe
from workbench.training.spec import RunSpec
from workbench.training.trainer import seed_everything, train_model

#: strategies that train the model as it is built, with nothing trained first
FROM_SCRATCH = (None, "cold_start")


class StrategyError(WorkbenchError, ValueError):
    """A training strategy asked of a model that cannot follow it; the message names both."""


def models_with_branches() -> list[str]:
    """Registered models whose card declares branches to pre-train."""
    return [m for m in list_models() if get_card(m).branches]


def needs_pretraining(model_name: str, settings: Recipe) -> bool:
    """Whether ``settings.fusion_strategy`` trains ``model_name``'s branches first; raises
    :class:`StrategyError` when it would but the model's card declares no branches."""
    strategy = settings.fusion_strategy
    if strategy in FROM_SCRATCH:
        return False
    if not get_card(model_name).branches:
        raise StrategyError(f"fusion_strategy={strategy!r} needs a model whose card declares branches to pre-train "
                            f"({' / '.join(models_with_branches())} only), not {model_name!r}")
    return True


def branch_settings(settings: Recipe, branch_model: str) -> Recipe:
    """The settings a branch of a model trained under ``settings`` trains with: the branch's own
    learning rate and warm-up where the settings are a named recipe (the model's stage keeps its
    own: Pepino et al.'s late fusion trains at 0.01 without warm-up, its branches at 7e-4 with
    40 warm-up steps, sec. 3), every other setting of ``settings``. Under a named recipe, and
    with no other change, these are exactly the branch model's own recipe (its variant and notes
    too), so a branch's training is the branch model's run of the same fold and seed and one
    trained run serves both (:func:`workbench.training.crossval.fit_fold`)."""
    if settings.name not in RECIPE_NAMES:
        return settings.replace(model=branch_model, fusion_strategy=None)
    own = get_recipe(branch_model, settings.name)
    # The recipe's notes (hashed into run ids) become the branch's own; notes changed since
    # (an encoder named) stay, so such a branch never passes for the default one.
    recipe_notes = get_recipe(settings.model, settings.name, variant=settings.variant or None).notes
    return settings.replace(model=branch_model, fusion_strategy=None, lr=own.lr, warmup_steps=own.warmup_steps,
                            variant=own.variant, notes=own.notes if settings.notes == recipe_notes else settings.notes)


def pretrain_branches(model: torch.nn.Module, spec: RunSpec, data: FoldData, features: Mapping[str, FeatureShape],
                      run_dir: Path, seed: int, progress: bool = True) -> None:
    """Train each branch model of ``spec.model``'s card alone on the fold's ``data``, in
    ``run_dir/branch_<branch>`` (resumable like any run), then hand them to
    ``model.load_branches(spec.settings.fusion_strategy, **trained)``, in place.

    A branch trains with its own recipe's learning rate and warm-up where the settings are a
    named recipe (the model's stage keeps its own: Pepino et al.'s late fusion trains at 0.01
    without warm-up, its branches at 7e-4 with 40 warm-up steps, sec. 3), every other setting
    of ``spec.settings``, and the same model options and ``features`` (a branch reads the
    inputs it needs of them)."""
    settings = spec.settings
    branches = get_card(spec.model).branches
    if not branches:
        raise StrategyError(f"model {spec.model!r}: its card declares no branches to pre-train")
    classes = data.train.classes
    validation = data.validation if len(data.validation) else None
    trained: dict[str, torch.nn.Module] = {}
    for branch, branch_model in branches.items():
        bset = branch_settings(settings, branch_model)
        seed_everything(seed)
        bmodel, _ = build_model(branch_model, bset, spec.model_options, features, len(classes))
        train_model(bmodel, data.train, bset, run_dir / f"branch_{branch}", seed=seed, device=spec.device,
                    progress=progress, validation=validation)
        trained[branch] = bmodel.cpu()
    model.load_branches(settings.fusion_strategy, **trained)


__all__ = ["FROM_SCRATCH", "StrategyError", "branch_settings", "models_with_branches", "needs_pretraining", "pretrain_branches"]
