"""Registry-driven checks of the model cards: every registered model declares a complete,
truthful card (its inputs, extractors, recipes, config fields, variants and branches)."""

from __future__ import annotations

import dataclasses

import pytest

from workbench.features.base import list_extractors
from workbench.models import create_model, get_card, list_models
from workbench.models.card import ModelCard
from workbench.testing.model_inputs import SEQUENCE_INPUTS

MODELS = list_models()
VARIANTS = [(m, v) for m in MODELS for v in get_card(m).variants]
# Inputs a model may read that no extractor makes: word spans come from the manifest's word timings.
NOT_EXTRACTED = {"word_spans"}
# Recipe's fields, spelled out so that this test needs nothing above the models layer.
PRESET_FIELDS = {"optimizer", "lr", "weight_decay", "batch_size", "epochs", "early_stopping_patience", "grad_clip",
                 "warmup_steps", "class_weights", "label_scheme", "protocol", "protocol_options", "bucketing",
                 "fusion_strategy", "max_train_utterances", "source", "notes"}


@pytest.mark.parametrize("name", MODELS)
def test_every_registered_model_has_a_complete_card(name: str) -> None:
    card = get_card(name)
    assert isinstance(card, ModelCard)
    assert card.inputs and set(card.inputs.values()) <= set(list_extractors()), card.inputs
    assert "paper" in card.recipes
    for recipe_name, recipe in card.recipes.items():
        assert recipe.get("source", "").strip(), f"{name}: recipe {recipe_name!r} names no source"
        assert "sec." in recipe["source"], f"{name}: recipe {recipe_name!r} source cites no section"
        assert set(recipe) <= PRESET_FIELDS, set(recipe) - PRESET_FIELDS
    assert card.demo and card.smoke, f"{name}: CPU sizes missing"
    # keyed by input names; cma_raw's "audio" size applies only under front_end="spectrogram"
    assert {*card.dims, *card.frame_periods} <= set(SEQUENCE_INPUTS)


@pytest.mark.parametrize("name", MODELS)
def test_card_fields_are_fields_of_the_model_config(name: str) -> None:
    card = get_card(name)
    fields = {f.name for f in dataclasses.fields(create_model(name).config)}
    declared = {*card.dims.values(), *card.frame_periods.values(), *card.demo, *card.smoke}
    for v in card.variants.values():
        declared |= set(v.config)
    assert declared <= fields, declared - fields


@pytest.mark.parametrize("name", MODELS)
def test_card_says_what_the_model_reads(name: str) -> None:
    """``card.model_inputs(config)`` is the built model's ``.inputs``, for every declared config."""
    card = get_card(name)
    configs = [{}, dict(card.demo), dict(card.smoke)]
    configs += [{**card.smoke, **v.config} for v in card.variants.values()]
    for config in configs:
        reads = card.model_inputs(config)
        assert reads == tuple(create_model(name, **config).inputs), config
        assert set(reads) <= set(card.inputs) | NOT_EXTRACTED, f"{name}: reads {reads}, declares {dict(card.inputs)}"


@pytest.mark.parametrize("name, variant", VARIANTS)
def test_variants_are_documented_and_name_known_things(name: str, variant: str) -> None:
    v = get_card(name).variant(variant)
    assert v.note.strip()
    assert v.config or v.recipe or v.inputs, f"{name}/{variant} changes nothing"
    assert set(v.recipe) <= PRESET_FIELDS
    assert set(v.inputs) <= set(get_card(name).inputs) and set(v.inputs.values()) <= set(list_extractors())


def test_unknown_variant_names_the_declared_ones() -> None:
    with pytest.raises(ValueError, match="layers_2"):
        get_card("mcsan").variant("no_such_variant")


@pytest.mark.parametrize("name", [m for m in MODELS if get_card(m).branches])
def test_models_with_branches_provide_the_hook(name: str) -> None:
    card = get_card(name)
    model = create_model(name)
    assert callable(getattr(type(model), "load_branches", None)), f"{name} declares branches but has no load_branches"
    for branch, branch_model in card.branches.items():
        assert branch_model in MODELS
        # a branch pre-trains on the parent's features
        assert set(get_card(branch_model).model_inputs()) <= set(card.inputs), branch


def test_some_model_declares_branches_and_variants() -> None:
    # guards the parametrised tests above against silently running on nothing
    assert any(get_card(m).branches for m in MODELS) and len(VARIANTS) > 10
